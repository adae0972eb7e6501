"""One poll of one source, and article pages; the decisions in order:

    fetch_source:  GET with the remembered ETag/Last-Modified ─ 304 → not_modified
                   sha256(body) = the remembered hash → not_modified (validators renewed)
                   kind: as configured, or sniffed ("auto"): feed │ sitemap │ HTML
                   feed → parse_feed │ sitemap → parse_sitemap (an index: its newest children)
                   HTML → its <link rel=alternate> feed ("auto", no selectors) │ parse_listing
                   ─► FetchResult("ok", items, kind, validators, hash)
    fetch_page:    GET an article → Page
    check_url:     fetch_source on a bare URL, for `monitor sources check`

Parsing runs in a worker thread, so a big page never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable

from monitor.config import SourceConfig
from monitor.errors import FetchError, ParseError, SourceError
from monitor.fetch.feeds import is_json_feed, parse_feed
from monitor.fetch.http import HttpClient
from monitor.fetch.pages import feed_links, parse_listing
from monitor.fetch.sitemaps import GZIP_MAGIC, newest_first, parse_sitemap
from monitor.log import event
from monitor.models import FetchResult, Item, Page, SourceState

log = logging.getLogger(__name__)

#: Media types that are feeds whatever the body looks like.
FEED_MEDIA_TYPES = frozenset(
    (
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/x-rss+xml",
    )
)
XML_MEDIA_TYPES = frozenset(("application/xml", "text/xml"))
#: The children of a sitemap index read per poll: the most recently modified ones.
SITEMAP_CHILDREN = 3
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL | re.IGNORECASE)
_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")


def where_source(source: SourceConfig, url: str | None = None) -> str:
    """How messages name a source: `source "EU Delegation" (https://…/news_en)`; a bare URL
    being checked is named by itself."""
    if source.name == source.url:
        return url or source.url
    return f'source "{source.name}" ({url or source.url})'


async def fetch_source(client: HttpClient, source: SourceConfig, state: SourceState) -> FetchResult:
    """Poll ``source``; raises FetchError or ParseError naming the source and its URL."""
    where = where_source(source)
    page = await client.get(
        source.url, where=where, etag=state.etag, last_modified=state.last_modified
    )
    known = "" if source.kind == "auto" else source.kind
    if page is None:
        return FetchResult(
            "not_modified",
            kind=known,
            etag=state.etag,
            last_modified=state.last_modified,
            body_hash=state.body_hash,
        )
    digest = hashlib.sha256(page.body).hexdigest()
    if digest == state.body_hash:
        return FetchResult(
            "not_modified",
            kind=known,
            etag=page.etag,
            last_modified=page.last_modified,
            body_hash=digest,
        )
    kind, items = await _read(client, source, page, where, state)
    return FetchResult("ok", items, kind, page.etag, page.last_modified, digest)


async def fetch_page(
    client: HttpClient,
    url: str,
    *,
    source: str,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> Page:
    """An article page of the source named ``source``; raises FetchError. ``admit``: see
    HttpClient.get."""
    where = f'source "{source}": article {url}'
    page = await client.get(url, where=where, admit=admit)
    if page is None:
        raise FetchError(where, "HTTP 304 Not Modified to an unconditional request")
    return page


async def check_url(client: HttpClient, url: str) -> tuple[str, tuple[Item, ...]]:
    """What ``url`` is ("feed", "page" or "sitemap") and the items a source on it would yield."""
    result = await fetch_source(client, SourceConfig(name=url, url=url), SourceState())
    return result.kind, result.items


def sniff(page: Page) -> str:
    """ "feed", "sitemap" or "html", from the body first (servers mislabel feeds), then the
    Content-Type."""
    root = _root_element(page.body)
    if root in ("rss", "feed", "rdf:rdf", "rdf"):
        return "feed"
    if root in ("urlset", "sitemapindex") or page.body.startswith(GZIP_MAGIC):
        return "sitemap"
    if is_json_feed(page.body) or page.content_type in FEED_MEDIA_TYPES:
        return "feed"
    if page.content_type in XML_MEDIA_TYPES and root not in (None, "html"):
        return "feed"  # some other XML: parse_feed says what is wrong with it
    return "html"


def _root_element(body: bytes) -> str | None:
    """The name of the first element, past a BOM, the XML declaration, comments, a doctype."""
    head = body[:65536].removeprefix(b"\xef\xbb\xbf")
    pos = 0
    while found := _PROLOG.match(head, pos):
        pos = found.end()
    root = _ROOT.match(head, pos)
    return root.group(1).decode("ascii").lower() if root else None


async def _read(
    client: HttpClient, source: SourceConfig, page: Page, where: str, state: SourceState
) -> tuple[str, tuple[Item, ...]]:
    kind = source.kind if source.kind != "auto" else sniff(page)
    if kind == "feed":
        return "feed", await asyncio.to_thread(
            parse_feed, page.body, page.url, where=where, charset=page.charset
        )
    if kind == "sitemap":
        return "sitemap", await _sitemap(client, source, page, where)
    if source.kind == "auto" and not source.items:
        found = await _linked_feed(client, source, page)
        if found is not None:
            return "feed", found
    items = await asyncio.to_thread(
        parse_listing, page.body, page.url, source, charset=page.charset, where=where
    )
    if not items:
        raise ParseError(where, _nothing_found(source, state))
    return "page", items


def _nothing_found(source: SourceConfig, state: SourceState) -> str:
    """Why a listing page gave nothing; flagged as a likely layout change when the source
    gave items before (an empty listing is never taken as "no news")."""
    if source.items:
        what = f'no items: the selector items = "{source.items}" matched nothing with a link'
    else:
        what = "no article links found"
    if state.items_seen:
        return (
            f"{what}, though {state.items_seen} items were found before:"
            " has the page's layout changed? (check the selectors)"
        )
    if source.items:
        return what
    return f"{what} (give the source items/link/title selectors)"


async def _linked_feed(
    client: HttpClient, source: SourceConfig, page: Page
) -> tuple[Item, ...] | None:
    """The items of the feed an HTML page links with rel=alternate; None when it links none
    or the feed fails (logged), so that the page is read as a listing instead."""
    links = await asyncio.to_thread(feed_links, page.body, page.url, charset=page.charset)
    if not links:
        return None
    where = where_source(source, links[0])
    try:
        feed = await client.get(links[0], where=where)
        if feed is None:
            raise FetchError(where, "HTTP 304 Not Modified to an unconditional request")
        return await asyncio.to_thread(
            parse_feed, feed.body, feed.url, where=where, charset=feed.charset
        )
    except SourceError as exc:
        event(log, "source.feed_failed", logging.WARNING, source=source.name, error=str(exc))
        return None


async def _sitemap(
    client: HttpClient, source: SourceConfig, page: Page, where: str
) -> tuple[Item, ...]:
    sitemap = await asyncio.to_thread(parse_sitemap, page.body, page.url, where=where)
    if not sitemap.children:
        return sitemap.items

    items: list[Item] = []
    for url in sitemap.children[:SITEMAP_CHILDREN]:
        child_where = where_source(source, url)
        fetched = await client.get(url, where=child_where)
        if fetched is not None:
            child = await asyncio.to_thread(parse_sitemap, fetched.body, url, where=child_where)
            items += child.items  # an index inside an index is not followed
    return newest_first(items)
