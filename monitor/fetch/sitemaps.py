"""Sitemap bytes → Items, kept small: a <urlset>'s pages with their <lastmod> (or Google News
publication date, and title when given), or a <sitemapindex>'s child sitemaps, newest first.

Sitemaps may come gzipped (sitemap.xml.gz); they are inflated here, up to the same 10 MiB cap
the HTTP client applies. The stdlib parser (expat ≥ 2.4) refuses entity-expansion bombs and
never loads external entities.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

from monitor.errors import ParseError
from monitor.fetch.dates import parse_date
from monitor.fetch.markup import collapse
from monitor.log import event
from monitor.models import Item

log = logging.getLogger(__name__)

MAX_SITEMAP = 10 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Sitemap:
    """What one sitemap document lists."""

    #: The pages of a <urlset>, newest first (undated ones last, in document order).
    items: tuple[Item, ...] = ()
    #: The child sitemaps of a <sitemapindex>, newest first.
    children: tuple[str, ...] = ()


def parse_sitemap(body: bytes, url: str, *, where: str | None = None) -> Sitemap:
    """Read a sitemap or sitemap index; ParseError (naming ``where``, else the URL) if it is
    neither."""
    where = where or url
    if body.startswith(GZIP_MAGIC):
        body = _gunzip(body, where)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ParseError(where, "not a readable sitemap") from exc
    name = _local(root.tag)
    if name == "urlset":
        return Sitemap(items=newest_first(_urls(root)))
    if name == "sitemapindex":
        children = [
            Item(url=loc, published=_date(entry, "lastmod"))
            for entry in root
            for loc in _locs(entry)
        ]
        return Sitemap(children=tuple(child.url for child in newest_first(children)))
    raise ParseError(where, f"not a sitemap: the document is <{name}>")


def _gunzip(body: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_SITEMAP)
    except zlib.error as exc:
        raise ParseError(where, "not a readable gzipped sitemap") from exc
    if inflater.unconsumed_tail:
        raise ParseError(where, f"sitemap larger than {MAX_SITEMAP // 2**20} MiB when inflated")
    return data


def _local(tag: str) -> str:
    """The element name without its namespace: "{http://…/0.9}urlset" → "urlset"."""
    return tag.rsplit("}", 1)[-1]


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in element.iter():
        if child is not element and _local(child.tag) == name:
            return child
    return None


def _text(element: ElementTree.Element, name: str) -> str:
    child = _child(element, name)
    return collapse(child.text or "") if child is not None else ""


def _date(element: ElementTree.Element, name: str) -> datetime | None:
    text = _text(element, name)
    return parse_date(text) if text else None


def _locs(entry: ElementTree.Element) -> list[str]:
    loc = _text(entry, "loc")
    if urlsplit(loc).scheme in ("http", "https"):
        return [loc]
    if loc:
        event(log, "item.skipped", logging.INFO, link=loc[:200], reason="not an http(s) URL")
    return []


def _urls(root: ElementTree.Element) -> list[Item]:
    items: list[Item] = []
    for entry in root:
        for loc in _locs(entry):
            # Google News sitemaps: <news:news><news:publication_date>, <news:title>.
            published = _date(entry, "publication_date") or _date(entry, "lastmod")
            items.append(Item(url=loc, title=_text(entry, "title"), published=published, guid=loc))
    return items


def newest_first(items: Iterable[Item]) -> tuple[Item, ...]:
    """Dated items newest first, then the undated ones in their original order."""
    items = list(items)
    dated = [item for item in items if item.published is not None]
    dated.sort(key=lambda item: item.published or EPOCH, reverse=True)
    return (*dated, *(item for item in items if item.published is None))
