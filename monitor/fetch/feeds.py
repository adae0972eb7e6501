"""Feed bytes → Items: RSS 0.9x/1.0/2.0 and Atom, JSON Feed 1.x as JSON.

    bytes ─ JSON Feed? ─► parse_json_feed
          ─ decoded (charset.py) ─ well-formed XML, no xml:base ─► fastfeedparser
          ─ anything else, or fastfeedparser found nothing ─────► feedparser

Two libraries, one result. fastfeedparser (lxml and a compiled core) reads a well-formed feed
in about a fortieth of feedparser's time: feedparser's SAX callbacks were a quarter of the CPU
of a cold poll of 200 sources, 3.5 to 6 ms per 20-item feed (#4, bench/poll_bench.py). feedparser
stays for what it alone does well: malformed feeds (its tolerant parser and its verdict on
what is not a feed), and xml:base, against which it resolves relative links. Both see only
bytes we fetched ourselves, never the network, and both give the same Items on every feed in
tests/data (tests/unit/test_fetch_feeds.py compares them).

Relative links resolve against the feed's URL; titles and summaries come out as plain text;
dates as aware datetimes in UTC; an entry whose link is not http(s) is dropped, and the log
says why.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urljoin, urlsplit

from monitor.errors import ParseError
from monitor.fetch.charset import detect
from monitor.fetch.dates import parse_date
from monitor.fetch.markup import collapse, plain_text
from monitor.log import event
from monitor.models import Item

if TYPE_CHECKING:
    from lxml.etree import XMLParser

log = logging.getLogger(__name__)

JSON_FEED_VERSION = "https://jsonfeed.org/version/"
#: The XML declaration, rewritten for the UTF-8 bytes fastfeedparser is given.
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
#: feedparser's test for a title written as HTML: a closing tag or an entity reference left
#: after the XML parser decoded its own (``AT&T <rocks>`` stays text).
_LOOKS_LIKE_HTML = re.compile(r"</\w+>|&#?\w+;")
Engine = Literal["auto", "feedparser"]


def parse_feed(
    body: bytes,
    url: str,
    *,
    where: str | None = None,
    charset: str | None = None,
    engine: Engine = "auto",
) -> tuple[Item, ...]:
    """The entries of an RSS, Atom or JSON feed at ``url``, in the feed's order.

    ``charset`` is the one the HTTP response named, if any (see charset.py for the order).
    ``engine="feedparser"`` skips the fast path (the tests compare the two).
    Raises ParseError (``where``, by default the URL) when the body is not a feed at all.
    """
    where = where or url
    if is_json_feed(body):
        return parse_json_feed(body, url, where=where)
    encoding = detect(body, charset)
    if engine == "auto":
        fast = _fast(body, url, encoding)
        if fast is not None:
            return fast
    return _feedparser(body, url, encoding, where)


def _fast(body: bytes, url: str, encoding: str) -> tuple[Item, ...] | None:
    """fastfeedparser's entries of a well-formed feed; None when feedparser is to read it."""
    import fastfeedparser
    from lxml.etree import XMLSyntaxError, fromstring

    text = body.decode(encoding, errors="replace").removeprefix("\ufeff")
    if "xml:base" in text:
        return None
    data = _DECLARATION.sub("", text, count=1).encode("utf-8")
    try:
        fromstring(data, parser=_strict())
    except XMLSyntaxError:
        return None
    options = {"include_tags": False, "include_media": False, "include_enclosures": False}
    try:
        # Without content, "description" is the entry's own summary (or ""): with content,
        # fastfeedparser fills it from a cut of the content, and a teaser is the whole of it.
        entries = fastfeedparser.parse(data, include_content=False, **options).entries
        if not entries:
            return None  # feedparser says whether an empty result is a feed
        full = None
        if any(not entry.get("description") for entry in entries):
            full = fastfeedparser.parse(data, include_content=True, **options).entries
    except ValueError:  # not RSS, Atom or RDF after all
        return None
    if full is not None and len(full) != len(entries):
        return None
    contents = full if full is not None else [None] * len(entries)
    items = (_fast_item(entry, whole, url) for entry, whole in zip(entries, contents, strict=True))
    return tuple(_keep_http(items, url))


@cache
def _strict() -> XMLParser:
    from lxml.etree import XMLParser

    # The well-formedness check only: no entities expanded, nothing fetched.
    return XMLParser(resolve_entities=False, no_network=True, huge_tree=True, recover=False)


def _fast_item(entry: Mapping[str, Any], whole: Mapping[str, Any] | None, url: str) -> Item:
    raw_link = str(entry.get("link") or "")
    link = urljoin(url, raw_link) if raw_link else ""
    # Without a guid, fastfeedparser takes the link as written for the id; feedparser has
    # none, and we take the link, resolved.
    guid = str(entry.get("id") or "")
    guid = link if not guid or guid == raw_link else guid
    title = str(entry.get("title") or "")
    teaser = str(entry.get("description") or "")
    if not teaser and whole is not None:
        teaser = _whole_content(whole)
    else:
        teaser = plain_text(teaser)
    return Item(
        url=link,
        title=plain_text(title) if _LOOKS_LIKE_HTML.search(title) else collapse(title),
        teaser=teaser,
        published=_iso(str(entry.get("published") or entry.get("updated") or "")),
        guid=guid,
    )


def _whole_content(entry: Mapping[str, Any]) -> str:
    for content in entry.get("content") or []:
        value = str(content.get("value") or "")
        if value:
            kind = str(content.get("type") or "")
            return plain_text(value) if "html" in kind else collapse(value)
    return ""


def _iso(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _feedparser(body: bytes, url: str, encoding: str, where: str) -> tuple[Item, ...]:
    import feedparser

    parsed = feedparser.parse(
        body,
        # We checked the Content-Type and the encoding ourselves; the feed URL is the base of
        # relative links.
        response_headers={
            "content-location": url,
            "content-type": f"application/xml; charset={encoding}",
        },
        sanitize_html=True,
    )
    items = tuple(_keep_http(_entry_items(parsed.get("entries") or []), url))
    if not items and (parsed.get("bozo") or not parsed.get("version")):
        _refuse(parsed, where)
    return items


def _refuse(parsed: Mapping[str, Any], where: str) -> NoReturn:
    problem = parsed.get("bozo_exception")
    if isinstance(problem, Exception) and parsed.get("bozo"):
        raise ParseError(where, "not a readable feed") from problem
    raise ParseError(where, "not a feed (no RSS, Atom or RDF document found)")


def _entry_items(entries: list[Mapping[str, Any]]) -> Iterator[Item]:
    for entry in entries:
        link = str(entry.get("link") or "")
        guid = str(entry.get("id") or "") or link
        yield Item(
            url=link,
            title=_text(entry, "title"),
            # Without a summary, feedparser copies the content into "summary", with no type.
            teaser=_text(entry, "summary") if entry.get("summary_detail") else _content(entry),
            published=_published(entry),
            guid=guid,
        )


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = str(entry.get(key) or "")
    detail = entry.get(f"{key}_detail") or {}
    if "html" in str(detail.get("type", "")):
        return plain_text(value)
    return collapse(value)


def _content(entry: Mapping[str, Any]) -> str:
    """An Atom entry's <content> as text, for entries without a summary."""
    for content in entry.get("content") or []:
        value = str(content.get("value") or "")
        if value:
            return plain_text(value) if "html" in str(content.get("type", "")) else collapse(value)
    return ""


def _published(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # The dict's own look-up: FeedParserDict's maps a missing updated_parsed to
        # published_parsed with a DeprecationWarning (feedparser issue 310).
        parsed: time.struct_time | None = (
            dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)
        )
        if parsed is not None:
            # feedparser's *_parsed tuples are in UTC already.
            return datetime(*parsed[:6], tzinfo=UTC)
    return None


def _keep_http(items: Iterator[Item], url: str) -> Iterator[Item]:
    """Only items pointing at http(s) pages; each one left out is logged with the reason."""
    for item in items:
        if not item.url:
            event(log, "feed.entry_dropped", feed=url, guid=item.guid, reason="no link")
        elif urlsplit(item.url).scheme.lower() not in ("http", "https"):
            event(log, "feed.entry_dropped", feed=url, link=item.url, reason="not an http(s) link")
        else:
            yield item


def is_json_feed(body: bytes) -> bool:
    """True when the body looks like a JSON Feed (an object naming a jsonfeed.org version)."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and JSON_FEED_VERSION.encode() in head.replace(b"\\/", b"/")


def parse_json_feed(body: bytes, url: str, *, where: str | None = None) -> tuple[Item, ...]:
    """The items of a JSON Feed 1.0 or 1.1 (https://jsonfeed.org/version/1.1)."""
    where = where or url
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(where, "not a readable JSON Feed") from exc
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError(where, 'not a JSON Feed: no "items" list')
    base = str(data.get("feed_url") or url)
    items = (_json_item(entry, base) for entry in data["items"] if isinstance(entry, dict))
    return tuple(_keep_http(items, url))


def _json_item(entry: dict[str, Any], base: str) -> Item:
    link = _string(entry.get("url")) or _string(entry.get("external_url"))
    link = urljoin(base, link) if link else ""
    summary = _string(entry.get("summary"))
    if not summary and entry.get("content_text"):
        summary = _string(entry.get("content_text"))
    elif not summary and entry.get("content_html"):
        summary = plain_text(_string(entry.get("content_html")))
    published = _string(entry.get("date_published")) or _string(entry.get("date_modified"))
    return Item(
        url=link,
        title=collapse(_string(entry.get("title"))),
        teaser=collapse(summary),
        published=parse_date(published) if published else None,
        guid=_string(entry.get("id")) or link,
    )


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
