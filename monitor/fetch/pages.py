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
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import parse_qsl, urldefrag, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag
from bs4.filter import SoupStrainer

from monitor.config import SourceConfig
from monitor.errors import ParseError
from monitor.fetch.charset import detect
from monitor.fetch.dates import find_date, parse_date
from monitor.fetch.markup import element_text
from monitor.log import event
from monitor.models import Item

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
    soup = BeautifulSoup(body, "lxml", from_encoding=detect(body, charset))
    base = _base_url(soup, url)
    if source.items:
        items = _selected(soup, base, source, where or url)
    else:
        items = _discovered(soup, base, url)
    return _dedupe(items)


def feed_links(body: bytes, url: str, *, charset: str | None = None) -> tuple[str, ...]:
    """The RSS, Atom and JSON feeds an HTML page names in <link rel="alternate">, in page order,
    comment feeds last."""
    head = SoupStrainer(["link", "base"])
    soup = BeautifulSoup(body, "lxml", parse_only=head, from_encoding=detect(body, charset))
    base = _base_url(soup, url)
    feeds: list[tuple[bool, str]] = []
    for link in soup.find_all("link", href=True):
        if not isinstance(link, Tag) or "alternate" not in [r.lower() for r in _rel(link)]:
            continue
        if _attribute(link, "type").lower() not in FEED_TYPES:
            continue
        target = _absolute(base, link.get("href"))
        if target is not None:
            comments = "comment" in (_attribute(link, "title") + target).lower()
            feeds.append((comments, target))
    return tuple(dict.fromkeys(target for _, target in sorted(feeds, key=lambda f: f[0])))


def _base_url(soup: BeautifulSoup, url: str) -> str:
    base = soup.find("base", href=True)
    if isinstance(base, Tag):
        return urljoin(url, str(base["href"]))
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


def _selected(soup: BeautifulSoup, base: str, source: SourceConfig, where: str) -> Iterator[Item]:
    items = _compile(source.items or "", "items", where)
    link_selector = _compile(source.link or "a[href]", "link", where)
    title_selector = _compile(source.title, "title", where) if source.title else None
    date_selector = _compile(source.date, "date", where) if source.date else None
    for block in items.select(soup):
        if source.link is None and block.name == "a" and block.has_attr("href"):
            link: Tag | None = block
        else:
            link = link_selector.select_one(block)
        target = _absolute(base, link.get("href")) if link is not None else None
        if link is None or target is None:
            if link is not None:
                _skipped(link.get("href"), where)
            continue
        title_element = title_selector.select_one(block) if title_selector else link
        title = element_text(title_element) if title_element is not None else ""
        date_element = date_selector.select_one(block) if date_selector else None
        published = _element_date(date_element) if date_element is not None else None
        teaser = _teaser(block, title_element or link)
        yield Item(
            url=target,
            title=title or _attribute(link, "title"),
            teaser=teaser,
            published=published or (None if date_selector else _block_date(block, teaser)),
            guid=target,
        )


def _compile(selector: str, key: str, where: str) -> soupsieve.SoupSieve:
    try:
        return soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        raise ParseError(where, f'{key} = "{selector}" is not a valid CSS selector') from exc


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


def _attribute(tag: Tag, name: str) -> str:
    value = tag.get(name)
    return " ".join(value.split()) if isinstance(value, str) else ""


def _element_date(element: Tag) -> datetime | None:
    """The date an element gives in a datetime/content/title attribute (its own or a <time>
    inside it), else in its text."""
    inner = [time for time in element.find_all("time") if isinstance(time, Tag)]
    for tag in (element, *inner):
        for name in ("datetime", "content", "title"):
            value = _attribute(tag, name)
            if value and (found := parse_date(value)) is not None:
                return found
    return parse_date(element_text(element))


def _teaser(block: Tag, title: Tag) -> str:
    """The block's text without its title, page chrome or "Read more" links."""

    def skip(tag: Tag) -> bool:
        if tag is title or _is_chrome(tag):
            return True
        return tag.name == "a" and bool(MORE.match(element_text(tag)))

    return "" if block is title else element_text(block, skip)


def _block_date(block: Tag, teaser: str) -> datetime | None:
    time = block.find("time")
    if isinstance(time, Tag):
        found = _element_date(time)
        if found is not None:
            return found
    return find_date(teaser)


# --- automatic discovery -----------------------------------------------------------------------


def _discovered(soup: BeautifulSoup, base: str, page_url: str) -> Iterator[Item]:
    links = [link for link in soup.find_all("a", href=True) if isinstance(link, Tag)]
    candidates = [
        (link, target, title)
        for link in links
        if not _in_chrome(link)
        and (target := _article_target(link, base, page_url)) is not None
        and _reads_like_title(link, title := _link_title(link))
    ]
    headed = [c for c in candidates if _in_heading(c[0])]
    if len(headed) >= 3 and len({c[1] for c in headed}) * 2 >= len({c[1] for c in candidates}):
        candidates = headed  # titles are in headings here: the other links are categories, tags…
    done: set[int] = set()
    blocks: dict[int, bool] = {}
    for link, target, title in candidates:
        block = _block_of(link, blocks)
        if block is None or id(block) in done:
            continue
        done.add(id(block))
        teaser = _teaser(block, link)
        yield Item(
            url=target,
            title=title,
            teaser=teaser,
            published=_block_date(block, teaser),
            guid=target,
        )


def _in_chrome(link: Tag) -> bool:
    node: Tag | None = link
    while node is not None and node.name != "[document]":
        if _is_chrome(node):
            return True
        node = node.parent
    return False


def _is_chrome(tag: Tag) -> bool:
    """Navigation, page header and footer, sidebars, pagers, share and tag lists, cookie notes."""
    if tag.name in ("nav", "aside"):
        return True
    if tag.name in ("header", "footer"):
        return tag.find_parent("article") is None  # an article's own header holds its title
    if _attribute(tag, "role") in CHROME_ROLES:
        return True
    if tag.name in ("html", "body", "main", "article"):
        return False
    names = [*_values(tag, "class"), _attribute(tag, "id")]
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", " ".join(names)).lower()
    previous = ""
    for word in re.split(r"[^a-z0-9]+", spaced):
        if word in CHROME_WORDS and previous not in NEGATIONS:
            return True
        previous = word
    return False


def _article_target(link: Tag, base: str, page_url: str) -> str | None:
    """The link's absolute URL when it may lead to an article of this site; else None."""
    href = link.get("href")
    if not isinstance(href, str) or href.strip().startswith("#"):
        return None
    if any(part in ("tag", "next", "prev", "category") for part in _rel(link)):
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


def _values(tag: Tag, name: str) -> list[str]:
    """A multi-valued attribute (class, rel) as a list of strings; [] when absent."""
    value = tag.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _rel(link: Tag) -> list[str]:
    return _values(link, "rel")


def _site(netloc: str) -> str:
    host = netloc.lower().rsplit("@", 1)[-1]
    return host[4:] if host.startswith("www.") else host


def _link_title(link: Tag) -> str:
    text = element_text(link)
    if text:
        return text
    image = link.find("img", alt=True)
    return _attribute(link, "title") or (_attribute(image, "alt") if isinstance(image, Tag) else "")


def _in_heading(link: Tag) -> bool:
    return link.find_parent(HEADINGS) is not None or link.find(HEADINGS) is not None


def _reads_like_title(link: Tag, title: str) -> bool:
    if not title or MORE.match(title):
        return False
    return _in_heading(link) or len(title.split()) >= 3 or len(title) >= 20


def _block_of(link: Tag, blocks: dict[int, bool]) -> Tag | None:
    """The nearest repeated block around the link that is small enough to be one teaser.

    ``blocks`` caches the answer per element across the links of one page."""
    node: Tag | None = link
    while node is not None and node.name not in ("body", "html", "main", "[document]"):
        if id(node) not in blocks:
            blocks[id(node)] = _repeated(node) and len(node.get_text()) <= MAX_BLOCK_TEXT
        if blocks[id(node)]:
            return node
        node = node.parent
    return None


def _repeated(tag: Tag) -> bool:
    if tag.name in ("article", "li"):
        return True
    parent = tag.parent
    if parent is None:
        return False
    signature = _signature(tag)
    siblings = parent.find_all(tag.name, recursive=False)
    return sum(1 for s in siblings if isinstance(s, Tag) and _signature(s) == signature) >= 3


def _signature(tag: Tag) -> tuple[str, ...]:
    return (tag.name, *sorted(_values(tag, "class")))
