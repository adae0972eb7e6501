"""Feed bytes → Items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.x as JSON.

feedparser only ever sees bytes we fetched ourselves (it never touches the network), with the
feed's URL as its Content-Location so that relative links ("/news/a.html") resolve against it.
Titles and summaries come out as plain text; dates as aware datetimes in UTC; an entry whose
link is not http(s) is dropped, and the log says why.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.errors import ParseError
from monitor.fetch.charset import detect
from monitor.fetch.dates import parse_date
from monitor.fetch.markup import collapse, plain_text
from monitor.log import event
from monitor.models import Item

log = logging.getLogger(__name__)

JSON_FEED_VERSION = "https://jsonfeed.org/version/"


def parse_feed(
    body: bytes, url: str, *, where: str | None = None, charset: str | None = None
) -> tuple[Item, ...]:
    """The entries of an RSS, Atom or JSON feed at ``url``, in the feed's order.

    ``charset`` is the one the HTTP response named, if any (see charset.py for the order).
    Raises ParseError (``where``, by default the URL) when the body is not a feed at all.
    """
    where = where or url
    if is_json_feed(body):
        return parse_json_feed(body, url, where=where)
    encoding = detect(body, charset)
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
        parsed: time.struct_time | None = entry.get(key)
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
