"""A fetched page → an Article: the page's own text and metadata, never its chrome.

extract:  bytes ─decode─► text ─check─► HTML? ─parse─► tree ─read_meta─► PageMeta
                                                          └─trafilatura (one pass)─► text,
                                                            title, author, day
          → Article(url = same-site rel=canonical or the given URL, title without the site's
            name, published from JSON-LD/<meta> (zone kept) → htmldate → dateline, language
            from the page if the script agrees, else detected)
clean:    Item + Page → extract(page), or the item's teaser when the page is missing, is not
          HTML or has no text (teaser_only=True, reason says why)

Never raises for a bad page: an empty, binary, non-HTML or textless page gives text "" and a
reason. Bugs still propagate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from monitor.clean.dates import dateline, midnight_utc, parse_date
from monitor.clean.decode import check_html, decode_html, sniff_binary, strip_controls
from monitor.clean.language import choose_language, detect, dominant_script
from monitor.clean.meta import PageMeta, read_meta
from monitor.clean.prune import (
    drop_element,
    drop_link_lines,
    drop_other_articles,
    link_texts,
    merge_split_bodies,
    prune_chrome,
    unwrap_layout_tables,
)
from monitor.clean.urls import canonical_url, resolve_canonical
from monitor.models import Article, Item, Page

#: A parsed page, an ``lxml.html.HtmlElement``. Typed Any so that mypy gives the same verdict
#: with and without lxml-stubs installed (it is in the test extra, not in every venv).
HtmlElement = Any

#: The fixed options of the one trafilatura pass. On the public article-extraction benchmark
#: (/work/shared/data/aeb, 181 pages; measured 2026-11 with this module's pruning) the
#: balanced mode scores F1 0.965, favor_precision 0.966, but precision drops body paragraphs
#: that sit in a bare <div> (tests/data/pages/statement_elections_ru.html): a lost paragraph
#: is a missed alert, so balanced it is. Dates come from markup only: htmldate's "extensive"
#: search falls back to the footer's copyright year, which is not a publication date.
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "with_metadata": False,
    "favor_precision": False,
    "fast": True,
    # Given, so that trafilatura does not compute today's date at every call (a local-time
    # conversion, a few ms): its date search is off (with_metadata) and htmldate runs apart.
    "date_extraction_params": {"original_date": True, "extensive_search": False},
}
#: The second opinion: trafilatura's full cascade (its comparison with readability and
#: jusText), run only when the fast pass's text looks wrong (see ``_looks_wrong``).
SECOND_OPINION: dict[str, Any] = {**TRAFILATURA_OPTIONS, "fast": False}
#: A text shorter than this (characters) is too short to be a press article's body.
MIN_TEXT = 250
#: A text whose lines of prose (``PROSE_LINE`` characters and more) hold less than this
#: share of its characters is a menu, an archive list or a tag cloud, not an article.
MIN_PROSE_SHARE = 0.5
PROSE_LINE = 80
#: " | Site", " - Site" (and en and em dashes): how titles append or prepend the site's name.
TITLE_SEPARATORS = (" | ", " \u2013 ", " \u2014 ", " - ", " :: ", " \u00b7 ", " \u00bb ", " / ")
#: Bytes (or characters) of a page read at most, after a larger page's scripts and styles are
#: removed; the rest is ignored (10 MB pages exist, and time grows with the size).
MAX_INPUT = 1_000_000
_CODE = re.compile(r"<(script|style|svg)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_CODE_BYTES = re.compile(rb"<(script|style|svg)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
#: Lines at least this long that repeat earlier ones, two or more in a row, are a second copy.
REPEAT_MIN = 80
_T = TypeVar("_T")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
#: A line that is a value for machines, not prose: an ISO timestamp or a bare URL.
_MACHINE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?|https?://\S+)$")


@dataclass(frozen=True, slots=True)
class _Extracted:
    text: str
    title: str
    author: str | None
    day: str | None
    site_name: str | None


def extract(
    html: str | bytes,
    url: str | None = None,
    *,
    charset: str | None = None,
    body: str | None = None,
    drop: tuple[str, ...] = (),
) -> Article:
    """The article in ``html`` (DESIGN §8); ``charset`` is the HTTP header's, if any; ``body``
    and ``drop`` are a source's CSS overrides: the article's container (when it matches) and
    blocks removed before extraction."""
    page_url = canonical_url(url) if url else ""
    source_text, reason = _as_text(html, charset)
    if reason:
        return Article(url=page_url, title="", text="", reason=reason)
    tree, failure = _guarded(lambda: _parse(source_text))
    if tree is None:
        return Article(url=page_url, title="", text="", reason=_reason("not HTML", failure))
    meta = read_meta(tree)
    article_url = resolve_canonical(meta.canonical or "", url) or page_url
    if meta.frameset:
        found, failure = None, "frameset"
    else:
        _apply_overrides(tree, body, drop)
        found, failure = _run_trafilatura(tree, url)
    if found is None:
        reason = _reason("no main text", failure)
        return Article(url=article_url, title=_title(meta, None, url), text="", reason=reason)
    title = _title(meta, found, url)
    text = _without_title(found.text, title)
    published = parse_date(meta.published) or dateline(text) or _markup_day(tree, url)
    return Article(
        url=article_url,
        title=title,
        text=text,
        published=published,
        author=meta.author,
        language=choose_language(meta.language, text),
        reason="" if text else "no main text",
    )


def clean(
    item: Item,
    page: Page | None,
    *,
    source: str,
    reason: str = "",
    body: str | None = None,
    drop: tuple[str, ...] = (),
) -> Article:
    """What the pipeline stores for ``item``: its page's article, or its teaser."""
    if page is None:
        return _teaser(item, source, reason or "page not fetched")
    if page.content_type and not _is_html_type(page.content_type):
        return _teaser(item, source, f"not HTML ({page.content_type})")
    article = extract(page.body, page.url or item.url, charset=page.charset, body=body, drop=drop)
    if not article.text:
        return _teaser(item, source, article.reason or "no main text")
    return Article(
        url=article.url or canonical_url(item.url),
        title=article.title or item.title,
        text=article.text,
        published=article.published or item.published,
        author=article.author,
        language=article.language,
        source=source,
    )


def _teaser(item: Item, source: str, reason: str) -> Article:
    sample = f"{item.title}\n{item.teaser}"
    language = detect(sample, dominant_script(sample)) if item.teaser.strip() else None
    return Article(
        url=canonical_url(item.url),
        title=item.title,
        text=item.teaser,
        published=item.published,
        language=language,
        source=source,
        teaser_only=True,
        reason=reason,
    )


def _is_html_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in {"text/html", "application/xhtml+xml"} or media.endswith("+html")


def _as_text(html: str | bytes, charset: str | None) -> tuple[str, str]:
    """The document as text and "", or "" and the reason it is no web page. A page larger
    than ``MAX_INPUT`` is cut there first: parsing and extraction time grow with the input,
    and an article's text sits near the start of any page this large."""
    if len(html) > MAX_INPUT:
        html = _without_code(html)[:MAX_INPUT]
    if isinstance(html, bytes):
        if not html.strip():
            return "", "empty page"
        binary = sniff_binary(html)
        if binary:
            return "", binary
        html = decode_html(html, charset)
    html = html.lstrip("\ufeff")
    reason = check_html(html)
    return ("", reason) if reason else (strip_controls(html), "")


def _without_code(html: str | bytes) -> str | bytes:
    """A large page without its scripts, styles and comments (they hold no article text and
    can be most of its size), so that the cut keeps more of what matters."""
    if isinstance(html, bytes):
        return _CODE_BYTES.sub(b"", html)
    return _CODE.sub("", html)


def _guarded(call: Callable[[], _T]) -> tuple[_T | None, str]:
    """``call()``, or None and "Type: message" when a malformed page makes lxml or trafilatura
    give up (what the extractor turns into a reason rather than an exception)."""
    # lxml-stubs may be missing (import-untyped) or present (then the ignore is unused).
    from lxml.etree import LxmlError  # type: ignore[import-untyped, unused-ignore]

    try:
        return call(), ""
    except (ValueError, LxmlError, RecursionError) as exc:  # what a malformed page provokes
        return None, f"{type(exc).__name__}: {exc}"[:100]


def _parse(text: str) -> HtmlElement | None:
    from trafilatura.utils import load_html

    # trafilatura rejects a document whose first 50 characters do not say "html" and that
    # parses to a single block (a fragment); a doctype in front makes it read the fragment.
    if "html" not in text[:50].lower():
        text = "<!DOCTYPE html>\n" + text
    tree: HtmlElement | None = load_html(text)
    return tree


def _apply_overrides(tree: HtmlElement, body: str | None, drop: tuple[str, ...]) -> None:
    """A source's overrides: ``drop`` blocks removed; when ``body`` matches, the page's body
    holds only its matches (in page order). A ``body`` that matches nothing (the site
    changed its template) leaves the page to the generic extraction."""
    for selector in drop:
        for element in _select(tree, selector):
            drop_element(element)
    if body is None:
        return
    found = _select(tree, body)
    chosen = set(found)
    outermost = [e for e in found if not any(a in chosen for a in e.iterancestors())]
    page_body = tree.find(".//body")
    if not outermost or page_body is None:
        return
    for element in outermost:
        drop_element(element)  # detached, with its tail left in place
        element.tail = None
    for child in list(page_body):
        page_body.remove(child)
    page_body.text = None
    page_body.extend(outermost)


def _select(tree: HtmlElement, selector: str) -> list[HtmlElement]:
    from cssselect import GenericTranslator

    found: list[HtmlElement] = tree.xpath(GenericTranslator().css_to_xpath(selector))
    return found


def _run_trafilatura(tree: HtmlElement, url: str | None) -> tuple[_Extracted | None, str]:
    from trafilatura import bare_extraction

    links = link_texts(tree)
    unwrap_layout_tables(tree)
    prune_chrome(tree)
    drop_other_articles(tree)
    merge_split_bodies(tree)
    document: Any
    document, failure = _guarded(lambda: bare_extraction(tree, url=url, **TRAFILATURA_OPTIONS))
    text = _tidy(getattr(document, "text", "") or "", links)
    if _looks_wrong(text):
        # bare_extraction works on a copy, so the pruned tree is still whole here.
        second, second_failure = _guarded(lambda: bare_extraction(tree, url=url, **SECOND_OPINION))
        second_text = _tidy(getattr(second, "text", "") or "", links)
        better = not _looks_wrong(second_text) or _prose(second_text) > _prose(text)
        if second_text and (not text or better):
            document, failure, text = second, second_failure, second_text
    if document is None:
        return None, failure
    found = _Extracted(
        text=text,
        title=" ".join((document.title or "").split()),
        author=None,
        day=None,
        site_name=None,
    )
    return found, ""


def _looks_wrong(text: str) -> bool:
    """True for a text that is too short, or mostly short lines (menus, lists of links)."""
    return len(text) < MIN_TEXT or _prose(text) < len(text) * MIN_PROSE_SHARE


def _prose(text: str) -> int:
    """How many characters of ``text`` are in lines long enough to be prose."""
    return sum(len(line) for line in text.split("\n") if len(line) >= PROSE_LINE)


def _reason(what: str, detail: str) -> str:
    return f"{what} ({detail})" if detail else what


def _tidy(text: str, links: frozenset[str]) -> str:
    """One paragraph per line; blank lines, lines made only of links, bare machine values
    (a timestamp, a URL) and repeats of an earlier paragraph dropped."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    kept = drop_link_lines([line for line in lines if line and not _MACHINE.match(line)], links)
    return "\n".join(_without_repeats(kept))


def _without_repeats(lines: list[str]) -> list[str]:
    """``lines`` without a second copy of a run of paragraphs (a page that prints its body
    twice, as a "print" or AMP copy). A single repeated line stays: lists and recipes repeat
    lines ("Portion: 1 cup, 1 tsp."), a copied body repeats runs of them."""
    seen: set[str] = set()
    repeat = []
    for line in lines:
        repeat.append(len(line) >= REPEAT_MIN and line in seen)
        seen.add(line)
    return [
        line
        for i, line in enumerate(lines)
        if not (repeat[i] and ((i > 0 and repeat[i - 1]) or (i + 1 < len(lines) and repeat[i + 1])))
    ]


def _without_title(text: str, title: str) -> str:
    """``text`` without a first line that repeats the title (extractors keep the <h1>)."""
    first, _, rest = text.partition("\n")
    return rest if title and _folded(first) == _folded(title) else text


def _title(meta: PageMeta, found: _Extracted | None, url: str | None) -> str:
    # The page's own statements first; trafilatura's guess (it cuts <title> at separators,
    # "Kazakhstan - EU: deal signed" → "Kazakhstan") only when the page makes none.
    title = meta.headline or meta.h1 or meta.title or (found.title if found else "")
    title = " ".join(title.split())
    names = [name for name in (meta.site_name, found.site_name if found else None) if name]
    return _strip_site_name(title, names, url)


def _strip_site_name(title: str, names: list[str], url: str | None) -> str:
    """ "Water deal signed | EEAS" → "Water deal signed", when "EEAS" names the site."""
    labels = set()
    if url:
        from urllib.parse import urlsplit

        labels = {label for label in (urlsplit(url).hostname or "").split(".") if len(label) > 2}
    wanted = {_folded(name) for name in names} | labels
    for separator in TITLE_SEPARATORS:
        head, found, tail = title.rpartition(separator)
        if found and head and _is_site(tail, wanted):
            return head.strip()
        head, found, tail = title.partition(separator)
        if found and tail and _is_site(head, wanted):
            return tail.strip()
    return title


def _is_site(part: str, names: set[str]) -> bool:
    folded = _folded(part)
    if len(folded) < 2:
        return False
    return any(folded == name or folded.replace(" ", "") == name for name in names)


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _markup_day(tree: HtmlElement, url: str | None) -> datetime | None:
    """htmldate's reading of the markup (its "extensive" search is off: it falls back to the
    footer's copyright year, which is not a publication date); only when the page's
    structured data and dateline named no date."""
    from htmldate import find_date

    found, _ = _guarded(
        lambda: find_date(tree, url=url, extensive_search=False, original_date=True)
    )
    return _day(found)


def _day(value: str | None) -> datetime | None:
    found = _DAY.match(value or "")
    if found is None:
        return None
    try:
        return midnight_utc(date(int(found[1]), int(found[2]), int(found[3])))
    except ValueError:
        return None
