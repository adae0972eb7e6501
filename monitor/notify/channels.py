"""Other channels through apprise: digests and alerts posted to Slack, Telegram, Matrix, Teams,
webhooks… configured per ``[[digest]]`` as ``channels`` (issue #7).

    open_channels(config)  → [Channel], at start-up of any command that sends: each URL has its
                             ${NAME}s filled from the environment and is parsed by apprise now,
                             so a bad one stops the command (ConfigError naming the key path)
    compose_post(…)        → Post(title, body, format): pure; one message per channel, its
                             topics' articles grouped as the e-mail digest groups them
    Channel.send(post)     → apprise, synchronously (the caller runs it off the event loop);
                             DeliveryError naming the channel's redacted label
    try_channels(config)  → `monitor channels test`: a test post to each, nothing recorded

A URL may hold a token, so it is never shown: logs, errors, `monitor status` and the outbox
name a channel by its *label*, apprise's privacy form of the URL without its query string
("tgram://1...9/-100123/"). apprise's own log lines are captured per send and folded, with
the URL's secrets removed, into our DeliveryError; they never reach stderr raw.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote, urlsplit

from monitor.config import CHANNEL_VARIABLE, CHANNELS_INSTALL, ChannelConfig, Config
from monitor.errors import ConfigError, DeliveryError
from monitor.models import DigestEntry
from monitor.notify.digest import alert_subject, digest_subject, group_by_topic, header_text

if TYPE_CHECKING:
    from apprise import NotifyBase

log = logging.getLogger(__name__)

PostKind = Literal["digest", "alert"]

#: Articles listed in one post; past this, "… and N more" with a link to the web pages
#: (chat services cut long messages: Telegram at 4,096 characters, Slack at 40,000).
MAX_ARTICLES = 40
#: Markdown's special characters, escaped in titles and source names.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


@dataclass(frozen=True, slots=True)
class Post:
    """What one channel gets: the outbox keeps it (as JSON) to send the same post again."""

    title: str
    body: str
    #: apprise's body format: "markdown" or "text".
    format: str

    def to_bytes(self) -> bytes:
        return json.dumps({"title": self.title, "body": self.body, "format": self.format}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Post:
        raw = json.loads(data)
        return cls(str(raw["title"]), str(raw["body"]), str(raw["format"]))


@dataclass(slots=True)
class Channel:
    """One configured channel, its URL resolved and parsed by apprise."""

    #: The ``[[digest]]`` it belongs to.
    digest: str
    config: ChannelConfig
    #: The redacted URL: what logs, errors and the outbox show.
    label: str
    #: Its identity in the database: a hash of the digest's name and the URL *as written*,
    #: so a rotated token (a new value of its ${NAME}) keeps the channel's cursor.
    key: str
    _service: NotifyBase = field(repr=False)
    #: Strings that must not appear in what is logged: the resolved URL and its secrets.
    _secrets: tuple[str, ...] = field(repr=False, default=())

    def send(self, post: Post) -> None:
        """Post it now (blocking: call it in a thread); DeliveryError when it did not go."""
        import apprise

        box = apprise.Apprise()
        box.add(self._service)
        said = _Said()
        logger = logging.getLogger("apprise")
        logger.addHandler(said)
        try:
            ok = box.notify(body=post.body, title=post.title, body_format=post.format)
        finally:
            logger.removeHandler(said)
        if not ok:
            why = " ".join(" ".join(said.lines).split()) or "failed"
            raise DeliveryError(self.label, f"not delivered: {self.redact(why)}")

    def redact(self, text: str) -> str:
        """``text`` with the URL's secrets replaced by "***"."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _Said(logging.Handler):
    """Collects what apprise logs, at WARNING and above, while one post is sent."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def channel_key(digest: str, url: str) -> str:
    return hashlib.sha256(f"{digest}\0{url}".encode()).hexdigest()[:32]


def open_channels(config: Config) -> list[Channel]:
    """Resolve and parse every digest's channels (see the module's docstring)."""
    configured = [
        (digest.name, channel) for digest in config.digests for channel in digest.channels
    ]
    if not configured:
        return []
    try:
        import apprise
    except ImportError as exc:  # config.load says so too; this is for a changed environment
        where = configured[0][1].where
        raise ConfigError(where, f"channels need apprise: {CHANNELS_INSTALL}") from exc
    # apprise logs to the root logger; its lines are captured per send instead (Channel.send)
    # and would otherwise go to stderr unformatted, with whatever the service's reply held.
    logging.getLogger("apprise").propagate = False
    problems: list[str] = []
    channels: list[Channel] = []
    for digest, channel in configured:
        try:
            channels.append(_open(apprise, digest, channel))
        except ConfigError as exc:
            problems.append(f"{config.path}: {exc}")
    if problems:
        raise ConfigError("", "\n".join(problems))
    return channels


def try_channels(config: Config, digest: str | None = None) -> list[tuple[Channel, str | None]]:
    """`monitor channels test`: post a short test message to each channel (of ``digest``);
    each channel with its error, None when it took the post. Nothing is recorded."""
    results: list[tuple[Channel, str | None]] = []
    for channel in open_channels(config):
        if digest is not None and channel.digest != digest:
            continue
        topics = ", ".join(channel.config.topics) or "every topic"
        alerts = " and their immediate alerts" if channel.config.alerts else ""
        post = Post(
            f"Press Monitor: test of the {channel.digest} digest's channel",
            f"This channel gets the {channel.digest} digest on {topics}{alerts}.",
            channel.config.format,
        )
        try:
            channel.send(post)
        except DeliveryError as exc:
            results.append((channel, exc.what))
            continue
        results.append((channel, None))
    return results


def _open(apprise: Any, digest: str, channel: ChannelConfig) -> Channel:
    scheme = channel.url.partition("://")[0].lower()
    url = channel.resolved_url()
    # A service's own webhook URL (https://hooks.slack.com/services/…, Discord's…) works too.
    service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if service is None and scheme not in apprise.NotificationManager():
        raise ConfigError(
            channel.where,
            f'unknown scheme "{scheme}://" (apprise\'s services and the webhook URLs it '
            "recognises: https://github.com/caronc/apprise/wiki)",
        )
    if service is None:
        raise ConfigError(
            channel.where,
            f"apprise cannot use this {scheme}:// URL (a part is missing or malformed; "
            f"https://github.com/caronc/apprise/wiki/Notify_{scheme})",
        )
    if "overflow=" not in url:
        # apprise's default hands an over-long post to the service, which may refuse it
        # (Telegram past 4,096 characters, Mattermost past 4,000): then the post would fail
        # on every retry and the next digest, holding more, too. Split it into several.
        service.overflow_mode = apprise.OverflowMode.SPLIT
    return Channel(
        digest=digest,
        config=channel,
        label=label_of(service.url(privacy=True), _variables(channel.url)),
        key=channel_key(digest, channel.url),
        _service=service,
        _secrets=_secrets_of(url, channel.url),
    )


def label_of(private_url: str, secrets: Sequence[str] = ()) -> str:
    """apprise's privacy URL without its query string (options, some of them secret), and
    with ``secrets`` (the values of the URL's ${NAME}s) as "***": apprise masks what it knows
    to be secret, such as a password or a bot token, but not a webhook's path."""
    label = private_url.split("?", 1)[0]
    for secret in sorted(secrets, key=len, reverse=True):
        label = label.replace(quote(secret, safe=""), "***").replace(secret, "***")
    return label


def _variables(written: str) -> list[str]:
    """The values the URL's ${NAME}s take now (long enough to be worth hiding)."""
    values = [os.environ.get(name, "") for name in CHANNEL_VARIABLE.findall(written)]
    return [value for value in values if len(value) >= 4]


def _secrets_of(resolved: str, written: str) -> tuple[str, ...]:
    """The parts of a URL to keep out of logs: the whole URL, the values its ${NAME}s took,
    its password and its path segments and host parts long enough to be tokens."""
    parts = urlsplit(resolved)
    found = {resolved, unquote(resolved)}
    found.update(_variables(written))
    for piece in (parts.password or "", parts.username or "", *parts.path.split("/")):
        if len(piece) >= 8:
            found.add(piece)
    # Longest first, so a secret inside another is not replaced half.
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


# -- composing (pure) -------------------------------------------------------------------------


def compose_post(
    kind: PostKind,
    digest: str,
    channel: ChannelConfig,
    entries: list[DigestEntry],
    base_url: str,
) -> Post:
    """The post for one channel: a title (the e-mail's subject), then per topic its count and
    each article once: title linked to the original, source, "also published by"."""
    groups = group_by_topic(entries, channel.topics)
    count = sum(len(group.entries) for group in groups)
    if kind == "digest":
        title = f"Press Monitor {digest}: {digest_subject(count, groups)}"
    else:
        title = f"Press Monitor {alert_subject(groups)}"
    markdown = channel.format == "markdown"
    lines: list[str] = []
    listed = 0
    for group in groups:
        if lines:
            lines.append("")
        topic = header_text(group.topic)
        lines.append(
            f"**{_md(topic)}** ({group.total})" if markdown else f"{topic} ({group.total})"
        )
        for view in group.entries:
            if listed == MAX_ARTICLES:
                break
            listed += 1
            lines.extend(
                _article(view.title, view.url, view.source, view.also_published_by, markdown)
            )
    if count > listed:
        more = f"… and {count - listed} more"
        lines += ["", f"[{more}]({_md_url(base_url)})" if markdown else f"{more}: {base_url}"]
    return Post(header_text(title), "\n".join(lines), channel.format)


def _article(title: str, url: str, source: str, others: Sequence[str], markdown: bool) -> list[str]:
    title, source = header_text(title) or url, header_text(source)
    also = f" (also: {', '.join(header_text(o) for o in others)})" if others else ""
    if markdown:
        also = _md(also)
        return [f"- [{_md(title)}]({_md_url(url)}) — {_md(source)}{also}"]
    return [f"- {title} — {source}{also}", f"  {url}"]


def _md(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    """A URL fit for ``[…](url)``: parentheses and spaces percent-encoded."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
