"""An HTML listing page → Items, by the source's CSS selectors or by discovering article links.

With ``items`` (and optionally ``link``, ``title``, ``date``) selectors: one Item per element
``items`` selects, exactly as told. Without: automatic discovery, a first version that works on
ordinary news listings:

    every <a href> ─ not in page chrome (nav, aside, page header/footer, menu/pager/share/tags…)
                   ─ same site; not the page itself, the home page, "#", mailto:, a pager link
                   ─ reads like a title (inside a heading, or several words)
                   ─ inside a repeated block (<article>, <li>, or 3+ siblings of one tag + class)
                   ─► one Item per block: its title link, teaser (the block's text minus the
                      title) and date (a <time datetime>, or a date written in the block)

Items come in page order, deduplicated by URL. A page where nothing is found gives ().

The page is parsed with lxml and selectors are cssselect's dialect, compiled to XPath once per
selector (the same dialect as the cleaner's ``body`` and ``drop``; config.py checks them all
when it loads).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urldefrag, urljoin, urlsplit

from monitor.config import SourceConfig
from monitor.errors import ParseError
from monitor.fetch.charset import detect
from monitor.fetch.dates import find_date, parse_date
from monitor.fetch.markup import element_text, parse_html
from monitor.log import event
from monitor.models import Item

if TYPE_CHECKING:
    from lxml.html import HtmlElement

log = logging.getLogger(__name__)

#: Media types of <link rel="alternate"> that name a feed.
FEED_TYPES = frozenset(
    ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json")
)
#: Class or id words that mark page chrome rather than content.
CHROME_WORDS = frozenset(
    "menu menus nav navbar navigation footer breadcrumb breadcrumbs pager pagination share"
    " sharing social tags cookie cookies sidebar".split()
)
#: A chrome word right after one of these describes something else ("has-sidebar").
NEGATIONS = frozenset("has no with without".split())
CHROME_ROLES = frozenset("navigation banner contentinfo complementary search".split())
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
#: Query keys of pager, sort and filter links to the listing itself.
PAGER_KEYS = frozenset("page p pg start offset sort order lang from limit per_page view".split())
SKIPPED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".css", ".js")
#: "Read more" links: never a title, and left out of teasers.
MORE = re.compile(
    r"^(read more|more|continue reading|learn more|details|"
    r"\u043f\u043e\u0434\u0440\u043e\u0431\u043d\u0435\u0435|"  # podrobnee
    r"\u0447\u0438\u0442\u0430\u0442\u044c \u0434\u0430\u043b\u0435\u0435|"  # chitat dalee
    r"\u0434\u0430\u043b\u0435\u0435)\W*$",  # dalee
    re.IGNORECASE,
)
#: A block is a teaser, not a wrapper, when its text is at most this long.
MAX_BLOCK_TEXT = 3000

#: A compiled selector: the elements it selects under (never including) the element given.
Select = Callable[["HtmlElement"], list["HtmlElement"]]


def parse_listing(
    body: bytes,
    url: str,
    source: SourceConfig,
    *,
    charset: str | None = None,
    where: str | None = None,
) -> tuple[Item, ...]:
    """The items of the listing page ``body`` fetched from ``url``; see the module docstring.

    ``charset`` is the one the HTTP response named, if any. A bad CSS selector raises
    ParseError naming ``where`` (by default the URL).
    """
    root = _document(body, charset)
    if root is None:
        return ()
    base = _base_url(root, url)
    if source.items:
        items = _selected(root, base, source, where or url)
    else:
        items = _discovered(root, base, url)
    return _dedupe(items)


def feed_links(body: bytes, url: str, *, charset: str | None = None) -> tuple[str, ...]:
    """The RSS, Atom and JSON feeds an HTML page names in <link rel="alternate">, in page order,
    comment feeds last."""
    root = _document(body, charset)
    if root is None:
        return ()
    base = _base_url(root, url)
    feeds: list[tuple[bool, str]] = []
    for link in root.iter("link"):
        if "alternate" not in [r.lower() for r in _values(link, "rel")]:
            continue
        if _attribute(link, "type").lower() not in FEED_TYPES:
            continue
        target = _absolute(base, link.get("href"))
        if target is not None:
            comments = "comment" in (_attribute(link, "title") + target).lower()
            feeds.append((comments, target))
    return tuple(dict.fromkeys(target for _, target in sorted(feeds, key=lambda f: f[0])))


def _document(body: bytes, charset: str | None) -> HtmlElement | None:
    """The page's tree, decoded as charset.py decides (BOM dropped); None when empty."""
    text = body.decode(detect(body, charset), errors="replace").removeprefix("\ufeff")
    return parse_html(text)


def _base_url(root: HtmlElement, url: str) -> str:
    for base in root.iter("base"):
        href = base.get("href")
        if href is not None:
            return urljoin(url, str(href))
    return url


def _dedupe(items: Iterator[Item]) -> tuple[Item, ...]:
    """First occurrence of each URL wins; a title or date it lacks is taken from a later one."""
    found: dict[str, Item] = {}
    for item in items:
        first = found.get(item.url)
        if first is None:
            found[item.url] = item
        elif not first.title or first.published is None:
            found[item.url] = Item(
                url=first.url,
                title=first.title or item.title,
                teaser=first.teaser if first.title else item.teaser,
                published=first.published or item.published,
                guid=first.guid,
            )
    return tuple(found.values())


# --- with the source's selectors ---------------------------------------------------------------


def _selected(root: HtmlElement, base: str, source: SourceConfig, where: str) -> Iterator[Item]:
    items = _compile(source.items or "", "items", where)
    link_selector = _compile(source.link or "a[href]", "link", where)
    title_selector = _compile(source.title, "title", where) if source.title else None
    date_selector = _compile(source.date, "date", where) if source.date else None
    for block in items(root):
        if source.link is None and block.tag == "a" and block.get("href") is not None:
            link: HtmlElement | None = block
        else:
            link = _first(link_selector, block)
        target = _absolute(base, link.get("href")) if link is not None else None
        if link is None or target is None:
            if link is not None:
                _skipped(link.get("href"), where)
            continue
        title_element = _first(title_selector, block) if title_selector else link
        title = element_text(title_element) if title_element is not None else ""
        date_element = _first(date_selector, block) if date_selector else None
        published = _element_date(date_element) if date_element is not None else None
        teaser = _teaser(block, title_element if title_element is not None else link)
        yield Item(
            url=target,
            title=title or _attribute(link, "title"),
            teaser=teaser,
            published=published or (None if date_selector else _block_date(block, teaser)),
            guid=target,
        )


def _first(select: Select, block: HtmlElement) -> HtmlElement | None:
    found = select(block)
    return found[0] if found else None


def _compile(selector: str, key: str, where: str) -> Select:
    from cssselect import SelectorError

    try:
        return _selector(selector)
    except SelectorError as exc:
        raise ParseError(where, f'{key} = "{selector}" is not a valid CSS selector') from exc


@lru_cache(maxsize=256)
def _selector(selector: str) -> Select:
    """A CSS selector (cssselect's dialect, as for the cleaner's ``body`` and ``drop``) as a
    compiled XPath over the descendants of the element it is given, in document order."""
    from cssselect import HTMLTranslator
    from lxml.etree import XPath

    path = HTMLTranslator().css_to_xpath(selector, prefix="descendant::")
    compiled = XPath(path)

    def select(element: HtmlElement) -> list[HtmlElement]:
        found = compiled(element)
        assert isinstance(found, list)
        return [node for node in found if isinstance(getattr(node, "tag", None), str)]

    return select


def _skipped(href: object, where: str) -> None:
    """Log an item link that is not fetched because it is not an http(s) URL."""
    event(
        log,
        "item.skipped",
        logging.INFO,
        where=where,
        link=str(href or "")[:200],
        reason="not an http(s) link",
    )


def _absolute(base: str, href: object) -> str | None:
    """``href`` made absolute, without its fragment; None unless it is an http(s) URL."""
    if not isinstance(href, str) or not href.strip():
        return None
    target = urldefrag(urljoin(base, href.strip()))[0]
    return target if urlsplit(target).scheme in ("http", "https") else None


def _attribute(tag: HtmlElement, name: str) -> str:
    value = tag.get(name)
    return " ".join(value.split()) if isinstance(value, str) else ""


def _element_date(element: HtmlElement) -> datetime | None:
    """The date an element gives in a datetime/content/title attribute (its own or a <time>
    inside it), else in its text."""
    inner = list(element.iterdescendants("time"))
    for tag in (element, *inner):
        for name in ("datetime", "content", "title"):
            value = _attribute(tag, name)
            if value and (found := parse_date(value)) is not None:
                return found
    return parse_date(element_text(element))


def _teaser(block: HtmlElement, title: HtmlElement) -> str:
    """The block's text without its title, page chrome or "Read more" links."""

    def skip(tag: HtmlElement) -> bool:
        if tag is title or _is_chrome(tag):
            return True
        return tag.tag == "a" and bool(MORE.match(element_text(tag)))

    return "" if block is title else element_text(block, skip)


def _block_date(block: HtmlElement, teaser: str) -> datetime | None:
    time = next(block.iterdescendants("time"), None)
    if time is not None:
        found = _element_date(time)
        if found is not None:
            return found
    return find_date(teaser)


# --- automatic discovery -----------------------------------------------------------------------


def _discovered(root: HtmlElement, base: str, page_url: str) -> Iterator[Item]:
    candidates = [
        (link, target, title)
        for link in root.iter("a")
        if link.get("href") is not None
        and not _in_chrome(link)
        and (target := _article_target(link, base, page_url)) is not None
        and _reads_like_title(link, title := _link_title(link))
    ]
    headed = [c for c in candidates if _in_heading(c[0])]
    if len(headed) >= 3 and len({c[1] for c in headed}) * 2 >= len({c[1] for c in candidates}):
        candidates = headed  # titles are in headings here: the other links are categories, tags…
    # Keyed by the element itself, never by id(): lxml makes a Python object per element on
    # demand, so an id can be reused by another element once its object is freed; a key keeps
    # the object alive, and lxml then hands out that same object for its element.
    done: set[HtmlElement] = set()
    blocks: dict[HtmlElement, bool] = {}
    for link, target, title in candidates:
        block = _block_of(link, blocks)
        if block is None or block in done:
            continue
        done.add(block)
        teaser = _teaser(block, link)
        yield Item(
            url=target,
            title=title,
            teaser=teaser,
            published=_block_date(block, teaser),
            guid=target,
        )


def _in_chrome(link: HtmlElement) -> bool:
    node: HtmlElement | None = link
    while node is not None:
        if _is_chrome(node):
            return True
        node = node.getparent()
    return False


def _is_chrome(tag: HtmlElement) -> bool:
    """Navigation, page header and footer, sidebars, pagers, share and tag lists, cookie notes."""
    name = tag.tag
    if name in ("nav", "aside"):
        return True
    if name in ("header", "footer"):
        # an article's own header holds its title
        return next(tag.iterancestors("article"), None) is None
    if _attribute(tag, "role") in CHROME_ROLES:
        return True
    if name in ("html", "body", "main", "article"):
        return False
    names = [*_values(tag, "class"), _attribute(tag, "id")]
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", " ".join(names)).lower()
    previous = ""
    for word in re.split(r"[^a-z0-9]+", spaced):
        if word in CHROME_WORDS and previous not in NEGATIONS:
            return True
        previous = word
    return False


def _article_target(link: HtmlElement, base: str, page_url: str) -> str | None:
    """The link's absolute URL when it may lead to an article of this site; else None."""
    href = link.get("href")
    if not isinstance(href, str) or href.strip().startswith("#"):
        return None
    if any(part in ("tag", "next", "prev", "category") for part in _values(link, "rel")):
        return None
    target = _absolute(base, href)
    if target is None:
        if ":" in href.split("/", 1)[0]:  # javascript:, mailto:, ftp:, file: and the like
            event(log, "link.skipped", logging.DEBUG, link=href[:200], reason="not http(s)")
        return None
    here, there = urlsplit(page_url), urlsplit(target)
    if _site(here.netloc) != _site(there.netloc):
        return None
    path = there.path or "/"
    if re.fullmatch(r"/(?:[a-z]{2}(?:[-_][a-z]{2})?/?|index\.\w+)?", path, re.IGNORECASE):
        return None  # the home page, in some language
    if path.lower().endswith(SKIPPED_EXTENSIONS):
        return None
    if path.rstrip("/") == (here.path or "/").rstrip("/"):
        keys = {key.lower() for key, _ in parse_qsl(there.query, keep_blank_values=True)}
        if keys <= PAGER_KEYS:
            return None  # the page itself, another page of it, or it sorted or filtered
    return target


def _values(tag: HtmlElement, name: str) -> list[str]:
    """A space-separated attribute (class, rel) as a list of words; [] when absent."""
    value = tag.get(name)
    return value.split() if isinstance(value, str) else []


def _site(netloc: str) -> str:
    host = netloc.lower().rsplit("@", 1)[-1]
    return host[4:] if host.startswith("www.") else host


def _link_title(link: HtmlElement) -> str:
    text = element_text(link)
    if text:
        return text
    image = next((img for img in link.iterdescendants("img") if img.get("alt") is not None), None)
    return _attribute(link, "title") or (_attribute(image, "alt") if image is not None else "")


def _in_heading(link: HtmlElement) -> bool:
    return (
        next(link.iterancestors(*HEADINGS), None) is not None
        or next(link.iterdescendants(*HEADINGS), None) is not None
    )


def _reads_like_title(link: HtmlElement, title: str) -> bool:
    if not title or MORE.match(title):
        return False
    return _in_heading(link) or len(title.split()) >= 3 or len(title) >= 20


def _block_of(link: HtmlElement, blocks: dict[HtmlElement, bool]) -> HtmlElement | None:
    """The nearest repeated block around the link that is small enough to be one teaser.

    ``blocks`` caches the answer per element across the links of one page."""
    node: HtmlElement | None = link
    while node is not None and node.tag not in ("body", "html", "main"):
        known = blocks.get(node)
        if known is None:
            known = blocks[node] = _repeated(node) and len(node.text_content()) <= MAX_BLOCK_TEXT
        if known:
            return node
        node = node.getparent()
    return None


def _repeated(tag: HtmlElement) -> bool:
    if tag.tag in ("article", "li"):
        return True
    parent = tag.getparent()
    if parent is None:
        return False
    signature = _signature(tag)
    siblings = [s for s in parent if s.tag == tag.tag]
    return sum(1 for s in siblings if _signature(s) == signature) >= 3


def _signature(tag: HtmlElement) -> tuple[str, ...]:
    return (str(tag.tag), *sorted(_values(tag, "class")))
