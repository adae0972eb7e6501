"""The records that travel between the stages, each named for its place in the flow.

    SourceConfig + SourceState ─fetch─► FetchResult  items, or not_modified; new validators
    Item + Page                ─clean─► Article      text may be "" with a reason
    Article + RuleSet          ─match─► [Match]      rule id, topic, terms and offsets
    Article + [Match]          ─store─► Stored       new, or linked to the article it duplicates
    recent originals           ─store─► Signatures   what a new article may near-duplicate
    stored matches             ─notify► DigestEntry  what a digest, an alert or a feed shows
    one poll of one source     ───────► PollResult   ok | not_modified | error, counts

All records are frozen and picklable, so cleaning and matching can run in a worker pool.
Every datetime is timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: How a rule's matches reach subscribers.
AlertMode = Literal["digest", "immediate"]
#: What one poll of one source came to.
PollStatus = Literal["ok", "not_modified", "error"]


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed, a listing page or a sitemap: a pointer to an article."""

    #: Absolute http(s) URL of the article page, as the source gave it (not yet canonical).
    url: str
    #: Plain-text title; "" when the source gives none.
    title: str = ""
    #: Plain-text summary or teaser from the source; "" when none.
    teaser: str = ""
    #: When the source says it was published; None when it does not say.
    published: datetime | None = None
    #: The source's stable id for the entry (feed guid/id); the URL when there is none.
    guid: str = ""


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about a source between polls."""

    #: Validators from the last successful fetch, sent back as If-None-Match/If-Modified-Since.
    etag: str | None = None
    last_modified: str | None = None
    #: SHA-256 of the last body, to notice unchanged content behind changed validators.
    body_hash: str | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    #: Failed polls in a row; 0 after a success.
    failures: int = 0
    #: Items ever seen from this source.
    items_seen: int = 0
    last_poll: datetime | None = None
    #: When the source is due again; later than `every` while it fails (backoff).
    next_poll: datetime | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A polled source: its items, or word that nothing changed."""

    status: Literal["ok", "not_modified"]
    #: The items, newest first as the source lists them; empty when not modified.
    items: tuple[Item, ...] = ()
    #: What the source turned out to be: "feed", "page" or "sitemap".
    kind: str = ""
    #: The validators and body hash to remember for the next poll.
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched HTTP response body."""

    #: The final URL, after redirects.
    url: str
    body: bytes
    #: The Content-Type's media type, lower-cased ("text/html"); "" when absent.
    content_type: str = ""
    #: The charset named by the Content-Type header, if any.
    charset: str | None = None
    status: int = 200
    #: ETag and Last-Modified response headers, if any.
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article: the page's own text and metadata, never its menus or sidebars."""

    #: Canonical URL: the page's rel=canonical when it is on the same site, tidied.
    url: str
    title: str
    #: Main text, paragraphs separated by newlines; "" when there is none (see ``reason``).
    text: str
    published: datetime | None = None
    author: str | None = None
    #: ISO 639-1 code, from the page or detected; None when unknown.
    language: str | None = None
    #: The name of the source it came from ("" outside a poll).
    source: str = ""
    #: True when ``text`` is the item's teaser because the page gave no text.
    teaser_only: bool = False
    #: Why the page gave no text ("not HTML", "no main text", "HTTP 404"…); "" when it did.
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]`` table of a rule file."""

    #: Unique slug, as written.
    id: str
    #: The topic it files matches under; the id when the rule names none.
    topic: str
    query: str
    alert: AlertMode = "digest"
    #: Where it was written: the file and the line of its query, for messages.
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """One rule matching one article: made by match/, kept by store/, shown by notify/."""

    #: The rule's id, as written in rules/*.toml.
    rule_id: str
    #: The rule's topic; its id when the rule names none.
    topic: str
    #: The matched words as they appear in the article, in order of first appearance.
    terms: tuple[str, ...] = ()
    #: (field, start, end) for every matched term, field "title" or "text", for highlighting.
    spans: tuple[tuple[str, int, int], ...] = ()
    alert: AlertMode = "digest"
    #: Why the rule matched, as query text: the satisfied part of the query with the OR
    #: alternatives that did not match left out (``torture AND Astana``); "" when unknown.
    why: str = ""


@dataclass(frozen=True, slots=True)
class Stored:
    """What saving an article did."""

    article_id: int
    #: True when the article was not in the store before.
    new: bool
    #: The id of the stored article this one duplicates (same text), if any.
    duplicate_of: int | None = None


@dataclass(frozen=True, slots=True)
class Signatures:
    """Recent originals' MinHash signatures, which a new article's is compared with
    (clean.near_duplicate): their ids (a numpy int64 array, oldest first) and their values,
    a numpy uint64 matrix with a row per article (built by store.signatures)."""

    ids: Any
    values: Any

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class PollResult:
    """One poll of one source, as the summary and `monitor sources` report it."""

    source: str
    status: PollStatus
    #: Items seen for the first time (old ones included).
    new_items: int = 0
    #: Articles fetched, cleaned and stored.
    new_articles: int = 0
    #: New matches per topic.
    matches: dict[str, int] = field(default_factory=dict)
    #: The error message when status is "error".
    error: str | None = None
    #: Articles whose page could not be fetched or cleaned (their teaser was kept instead).
    article_errors: int = 0


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Someone who receives digests (and alerts) on some topics."""

    email: str
    #: The name of the ``[[digest]]`` they receive.
    digest: str
    #: The topics they follow; empty means every topic.
    topics: tuple[str, ...] = ()
    id: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message in the outbox (``deliveries``) that is to be sent again or resolved."""

    id: int
    #: "digest", "alert" or "confirm".
    kind: str
    recipient: str
    #: The message as sent the first time (same Message-ID on every attempt); b"" if unknown.
    message: bytes
    #: Attempts made so far, this one included once it is claimed.
    attempts: int
    #: The subscriber's id; None for a confirmation to an address not subscribed yet.
    subscriber_id: int | None = None
    #: For a post to another channel (issue #7): the channel's id; ``recipient`` is then its
    #: redacted URL and ``message`` the post as JSON.
    channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One matched article as a digest, an alert or a feed shows it."""

    article_id: int
    url: str
    title: str
    source: str
    published: datetime | None
    #: When press-monitor stored it (feeds fall back to it for the date).
    found: datetime
    #: Every topic it matched, sorted.
    topics: tuple[str, ...]
    #: The text the spans point into (the article text, or its teaser when ``teaser_only``).
    text: str
    #: (field, start, end) of every matched term, over ``title`` and ``text``.
    spans: tuple[tuple[str, int, int], ...] = ()
    teaser_only: bool = False
    language: str | None = None
    #: Names of other sources that published the same text.
    also_published_by: tuple[str, ...] = ()
    #: Why it matched: each matching rule's satisfied query part (Match.why), distinct, in
    #: rule order of storing; empty when unknown (#6).
    why: tuple[str, ...] = ()
