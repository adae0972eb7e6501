"""Digests and alerts as e-mail: entries → an EmailMessage, text and HTML (pure, no I/O).

compose_digest:  followed = the subscriber's topics (all when they follow none)
                 groups   = per followed topic, most articles first, each article once
                           (in its first group, tagged with all its topics), newest first
                 subject  = "3 new articles: Human rights (2), Elections (1)"
                 text     = digest.txt; html = digest.html with its CSS inlined
                 message  = multipart/alternative (text/plain, text/html) + list headers
compose_alert:   the same with alert.txt / alert.html, subject "Alert: <title>" for one
                 article, "Alert: 3 new articles on Death penalty" for several

Anything that reaches a header (titles, topics, names) has its line breaks collapsed to
spaces first, so an article title cannot add a header; the email package encodes non-ASCII.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Literal

import css_inline

from monitor.config import Config, DigestConfig
from monitor.errors import DeliveryError, TemplateError
from monitor.models import DigestEntry, Subscriber
from monitor.notify import tokens
from monitor.notify.feeds import topic_slug
from monitor.notify.render import Templates
from monitor.notify.snippet import Snippet, make_snippet

#: The From address when no [smtp] section names one (messages then go to the outbox).
DEFAULT_SENDER = "Press Monitor <monitor@localhost>"
#: Topics named in a subject before "and N more".
SUBJECT_TOPICS = 4
#: Longest article title quoted in an alert's subject.
SUBJECT_TITLE = 150

MessageKind = Literal["digest", "alert", "confirm"]

# Everything a header could take as a line break, and other control characters.
_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class EntryView:
    """One article as a template sees it (``entry.…`` in templates/)."""

    #: The original article URL: every link in a message points here.
    url: str
    #: The article's title; its URL when it has none.
    title: str
    #: The source that published it.
    source: str
    #: When it was published (None: unknown; render with ``| date``).
    published: datetime | None
    #: When press-monitor found it.
    found: datetime
    #: Every topic it matched, sorted.
    topics: tuple[str, ...]
    #: The highlighted excerpt: ``snippet.pieces``, ``snippet.html``, ``snippet.text``.
    snippet: Snippet
    #: Other sources that published the same text.
    also_published_by: tuple[str, ...]
    #: True when only the source's teaser could be read, not the article page.
    teaser_only: bool
    #: ISO 639-1 language code, if known.
    language: str | None
    #: Why it matched, as query text ("torture AND Astana"), one per matching rule, distinct;
    #: empty when unknown. Shown as "Matched: …" (#6).
    why: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicGroup:
    """One topic's section of a message (``group.…`` in templates/)."""

    topic: str
    #: The topic's feed name: ``{base_url}/feeds/{slug}.xml``.
    slug: str
    #: The articles shown in this section, newest first.
    entries: tuple[EntryView, ...]
    #: Articles in the message on this topic, counting those shown under an earlier topic.
    total: int


def compose_digest(
    templates: Templates,
    config: Config,
    digest: DigestConfig,
    subscriber: Subscriber,
    entries: list[DigestEntry],
    now: datetime,
) -> EmailMessage:
    """The digest message for one subscriber (see the module's docstring)."""
    groups = group_by_topic(entries, subscriber.topics)
    count = sum(len(group.entries) for group in groups)
    subject = digest_subject(count, groups)
    list_id = f"Press Monitor {digest.name} digest <{_list_slug(digest.name)}.press-monitor.local>"
    context = _context(config, subscriber, "digest", subject, groups, now)
    context["digest"] = digest.name
    message = _message(config, subscriber, "digest", subject, list_id, now)
    _add_bodies(message, templates, "digest", context)
    return message


def compose_alert(
    templates: Templates,
    config: Config,
    subscriber: Subscriber,
    entries: list[DigestEntry],
    now: datetime,
) -> EmailMessage:
    """One alert message for one subscriber's batch of immediate matches."""
    groups = group_by_topic(entries, subscriber.topics)
    subject = alert_subject(groups)
    context = _context(config, subscriber, "alert", subject, groups, now)
    context["digest"] = None
    list_id = "Press Monitor alerts <alerts.press-monitor.local>"
    message = _message(config, subscriber, "alert", subject, list_id, now)
    _add_bodies(message, templates, "alert", context)
    return message


def compose_confirm(
    templates: Templates,
    config: Config,
    subscriber: Subscriber,
    now: datetime,
) -> EmailMessage:
    """The double opt-in message: a signed link, valid ``[web] confirm_within``, that
    subscribes ``subscriber`` (address, digest, topics) when it is opened."""
    expires = now + config.web.confirm_within
    subject = "Confirm your subscription to Press Monitor"
    context: dict[str, Any] = {
        "kind": "confirm",
        "subject": subject,
        "subscriber": subscriber,
        "email": subscriber.email,
        "digest": subscriber.digest,
        "topics": subscriber.topics,
        "confirm_url": confirm_url(config, subscriber, expires),
        "expires": expires,
        "now": now,
        "timezone": config.monitor.timezone,
        "base_url": config.web.base_url.rstrip("/"),
        # No unsubscribe link: there is no subscription yet. _layout.html's default footer
        # needs the name; confirm.html replaces that footer.
        "unsubscribe_url": "",
    }
    message = _message(config, subscriber, "confirm", subject, None, now)
    _add_bodies(message, templates, "confirm", context)
    return message


def unsubscribe_url(config: Config, subscriber: Subscriber) -> str:
    """Where a subscriber stops their mail (the page, and the RFC 8058 one-click POST): the
    one place this URL is built. The token is signed and does not expire, so the link in an
    old message keeps working."""
    secret = tokens.load_secret(config.monitor.state_dir)
    token = tokens.sign(secret, "unsubscribe", {"e": subscriber.email})
    return f"{config.web.base_url.rstrip('/')}/unsubscribe/{token}"


def confirm_url(config: Config, subscriber: Subscriber, expires: datetime) -> str:
    """The signed, expiring link that confirms a subscription asked for on the web page."""
    secret = tokens.load_secret(config.monitor.state_dir)
    data = {"e": subscriber.email, "d": subscriber.digest, "t": list(subscriber.topics)}
    token = tokens.sign(secret, "confirm", data, expires)
    return f"{config.web.base_url.rstrip('/')}/confirm/{token}"


def header_text(value: str) -> str:
    """``value`` fit for a header: line breaks and control characters as single spaces."""
    return _SPACES.sub(" ", _BREAKS.sub(" ", value)).strip()


# -- deciding what the message shows ------------------------------------------------------
def group_by_topic(entries: Iterable[DigestEntry], follows: Sequence[str]) -> list[TopicGroup]:
    """Entries in sections per followed topic (every topic when ``follows`` is empty).

    Topics with more articles come first (ties: the subscriber's order, else by name); each
    article appears once, in the first section it belongs to; newest first in a section.
    """
    unique = _unique(entries)
    followed = list(follows) or sorted({t for e in unique for t in e.topics}, key=str.casefold)
    shown = [e for e in unique if set(e.topics) & set(followed)]
    totals = {topic: sum(topic in e.topics for e in shown) for topic in followed}
    order = sorted(
        (topic for topic in followed if totals[topic]),
        key=lambda topic: (-totals[topic], followed.index(topic)),
    )
    groups: list[TopicGroup] = []
    placed: set[int] = set()
    for topic in order:
        section = [e for e in shown if topic in e.topics and e.article_id not in placed]
        placed.update(e.article_id for e in section)
        section.sort(key=_newest, reverse=True)
        views = tuple(_view(e) for e in section)
        if views:
            groups.append(TopicGroup(topic, topic_slug(topic), views, totals[topic]))
    return groups


def digest_subject(count: int, groups: Sequence[TopicGroup]) -> str:
    """ "3 new articles: Human rights (2), Elections (1)"; "No new articles" for none."""
    if count == 0:
        return "No new articles"
    named = [f"{header_text(g.topic)} ({g.total})" for g in groups[:SUBJECT_TOPICS]]
    more = len(groups) - SUBJECT_TOPICS
    tail = f" and {more} more topic{'s' if more > 1 else ''}" if more > 0 else ""
    return f"{count} new {_articles(count)}: {', '.join(named)}{tail}"


def alert_subject(groups: Sequence[TopicGroup]) -> str:
    """ "Alert: <title>" for one article; "Alert: 3 new articles on Death penalty" for more."""
    views = [view for group in groups for view in group.entries]
    if not views:
        return "Alert: no new articles"
    if len(views) == 1:
        return f"Alert: {_shorten(header_text(views[0].title), SUBJECT_TITLE)}"
    topics = [header_text(group.topic) for group in groups]
    if len(topics) > 3:
        topics = [*topics[:2], f"{len(topics) - 2} more topics"]
    on = topics[0] if len(topics) == 1 else f"{', '.join(topics[:-1])} and {topics[-1]}"
    return f"Alert: {len(views)} new {_articles(len(views))} on {on}"


def _unique(entries: Iterable[DigestEntry]) -> list[DigestEntry]:
    """One entry per article, its topics the union of the entries given for it."""
    by_id: dict[int, DigestEntry] = {}
    for entry in entries:
        seen = by_id.get(entry.article_id)
        if seen is None:
            by_id[entry.article_id] = entry
        elif not set(entry.topics) <= set(seen.topics):
            topics = tuple(sorted(set(seen.topics) | set(entry.topics)))
            by_id[entry.article_id] = replace(seen, topics=topics)
    return list(by_id.values())


def _newest(entry: DigestEntry) -> datetime:
    return entry.published or entry.found


def _view(entry: DigestEntry) -> EntryView:
    return EntryView(
        url=entry.url,
        title=_SPACES.sub(" ", entry.title).strip() or entry.url,
        source=entry.source,
        published=entry.published,
        found=entry.found,
        topics=entry.topics,
        snippet=make_snippet(entry),
        also_published_by=entry.also_published_by,
        teaser_only=entry.teaser_only,
        language=entry.language,
        why=entry.why,
    )


def _articles(count: int) -> str:
    return "article" if count == 1 else "articles"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-") + "…"


def _list_slug(name: str) -> str:
    """An ASCII dot-atom part for List-Id (RFC 2919) from a digest name."""
    return (
        re.sub(r"[^a-z0-9]+", "-", topic_slug(name).encode("ascii", "ignore").decode()).strip("-")
        or "digest"
    )


# -- building the message -----------------------------------------------------------------
def _context(
    config: Config,
    subscriber: Subscriber,
    kind: MessageKind,
    subject: str,
    groups: list[TopicGroup],
    now: datetime,
) -> dict[str, Any]:
    """What the templates see; templates/ documents each name at the top of each file."""
    entries = tuple(view for group in groups for view in group.entries)
    return {
        "kind": kind,
        "subject": subject,
        "subscriber": subscriber,
        "groups": groups,
        "entries": entries,
        "count": len(entries),
        "now": now,
        "timezone": config.monitor.timezone,
        "base_url": config.web.base_url.rstrip("/"),
        "unsubscribe_url": unsubscribe_url(config, subscriber),
    }


def _message(
    config: Config,
    subscriber: Subscriber,
    kind: MessageKind,
    subject: str,
    list_id: str | None,
    now: datetime,
) -> EmailMessage:
    sender = header_text(config.smtp.sender if config.smtp else DEFAULT_SENDER)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    recipient = header_text(subscriber.email)
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = header_text(subject)
    message["From"] = sender
    try:
        message["To"] = Address(addr_spec=recipient)
    except (ValueError, IndexError) as exc:
        raise DeliveryError(recipient, "not a valid e-mail address") from exc
    message["Date"] = format_datetime(now.astimezone(config.monitor.timezone))
    message["Message-ID"] = make_msgid(idstring=kind, domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Press-Monitor-Kind"] = kind
    if list_id is not None:  # a confirmation belongs to no list yet
        message["List-Id"] = header_text(list_id)
        message["List-Unsubscribe"] = f"<{unsubscribe_url(config, subscriber)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def _add_bodies(
    message: EmailMessage, templates: Templates, kind: MessageKind, context: dict[str, Any]
) -> None:
    text = templates.render(f"{kind}.txt", context)
    html = _inline_css(templates, f"{kind}.html", templates.render(f"{kind}.html", context))
    message.set_content(text, subtype="plain", charset="utf-8", cte=_text_cte(text))
    # Inlined CSS makes long lines: quoted-printable keeps them within SMTP's limit.
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")


def _text_cte(text: str) -> str:
    """7bit or 8bit while every line fits SMTP's 998 octets, so the text part stays greppable
    (URLs whole); quoted-printable past that. Without 8BITMIME aiosmtplib re-encodes it."""
    if max((len(line.encode()) for line in text.splitlines()), default=0) > 998:
        return "quoted-printable"
    return "7bit" if text.isascii() else "8bit"


def _inline_css(templates: Templates, name: str, html: str) -> str:
    """Move the <style> rules into style attributes: Gmail and Outlook ignore most <style>.

    @media rules (dark mode, narrow screens) cannot be inlined and stay in a <style> tag for
    the clients that honour them.
    """
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        return inliner.inline(html)
    except ValueError as exc:
        raise TemplateError(templates.where(name), f"cannot inline its CSS: {exc}") from exc
