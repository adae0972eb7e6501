"""What a page's markup says about itself: canonical link, language, date, headline, site name.

Read from the parsed tree before the extractor runs. Trafilatura finds most metadata too, but
it cuts dates to the day and drops their time zone, and it takes the page's word for its
language; the fields here keep what the page declared, exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: A parsed page, an ``lxml.html.HtmlElement``. Typed Any so that mypy gives the same verdict
#: with and without lxml-stubs installed (it is in the test extra, not in every venv).
HtmlElement = Any

#: schema.org types whose datePublished/headline describe the page's own article.
ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "backgroundnewsarticle",
        "opinionnewsarticle",
        "blogposting",
        "socialmediaposting",
        "report",
        "scholarlyarticle",
        "techarticle",
        "liveblogposting",
        "webpage",
        "itempage",
        "event",
    }
)
#: <meta> names and properties that carry the publication time, most trusted first.
DATE_METAS = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "dcterms.issued",
    "dc.date.issued",
)
LANG_METAS = ("content-language", "language", "dc.language", "dcterms.language")
_LANG_CODE = re.compile(r"^([a-z]{2})(?:$|[-_])")


@dataclass(frozen=True, slots=True)
class PageMeta:
    """The page's own statements about itself; None where it makes none."""

    #: The rel=canonical href, as written (maybe relative).
    canonical: str | None = None
    #: ISO 639-1 code from <html lang>, a content-language <meta> or JSON-LD inLanguage.
    language: str | None = None
    #: The publication date as written (ISO 8601 in well-kept pages), from JSON-LD or <meta>.
    published: str | None = None
    #: JSON-LD headline or og:title.
    headline: str | None = None
    #: The text of the page's <h1>, when it has exactly one.
    h1: str | None = None
    #: The <title> element's text (often with the site's name).
    title: str | None = None
    #: og:site_name or the JSON-LD publisher's name.
    site_name: str | None = None
    #: True when the document is a <frameset>: its text lives in other documents.
    frameset: bool = False
    #: The author's or authors' names ("A. Smith, B. Jones"), from JSON-LD or <meta>.
    author: str | None = None


def read_meta(tree: HtmlElement) -> PageMeta:
    """Collect the page's statements about itself from its parsed tree."""
    metas = _meta_values(tree)
    ld_items = list(_json_ld_items(tree))
    article = next((item for item in ld_items if _types(item) & ARTICLE_TYPES), {})
    published = _text(article.get("datePublished")) or _first(metas, DATE_METAS)
    if published is None:
        published = _itemprop_date(tree) or _time_element(tree)
    headline = _text(article.get("headline")) or metas.get("og:title")
    return PageMeta(
        canonical=_canonical(tree),
        language=_language(tree, metas, article),
        published=published,
        headline=headline or metas.get("twitter:title"),
        h1=_single_h1(tree),
        title=_title_element(tree),
        site_name=metas.get("og:site_name") or _publisher(article),
        frameset=bool(tree.xpath("//frameset")),
        author=_authors(article.get("author")) or _meta_author(metas),
    )


def language_code(value: str | None) -> str | None:
    """ "en-GB", "ru_RU", "EN" → "en", "ru", "en"; None for "", "und", "x-default", "rus"."""
    if not value:
        return None
    found = _LANG_CODE.match(value.strip().lower())
    return found.group(1) if found else None


def _meta_values(tree: HtmlElement) -> dict[str, str]:
    """Every <meta> name, property or http-equiv (lower-cased) → its first non-empty content."""
    values: dict[str, str] = {}
    for element in tree.iter("meta"):
        content = " ".join((element.get("content") or "").split())
        if not content:
            continue
        for attribute in ("property", "name", "http-equiv", "itemprop"):
            key = (element.get(attribute) or "").strip().lower()
            if key:
                values.setdefault(key, content)
    return values


def _first(values: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((values[key] for key in keys if key in values), None)


def _single_h1(tree: HtmlElement) -> str | None:
    headings = tree.findall(".//h1")
    if len(headings) != 1:  # none, or one per teaser on a listing-like page
        return None
    return " ".join(headings[0].text_content().split()) or None


def _title_element(tree: HtmlElement) -> str | None:
    element = tree.find(".//title")
    text = " ".join((element.text_content() if element is not None else "").split())
    return text or None


def _canonical(tree: HtmlElement) -> str | None:
    for link in tree.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        href = str(link.get("href") or "").strip()
        if "canonical" in rel and href:
            return href
    return None


def _language(tree: HtmlElement, metas: dict[str, str], article: dict[str, Any]) -> str | None:
    root = tree.getroottree().getroot()
    candidates = [
        root.get("lang"),
        root.get("{http://www.w3.org/XML/1998/namespace}lang"),
        root.get("xml:lang"),
        *(metas.get(key) for key in LANG_METAS),
        _text(article.get("inLanguage")),
    ]
    return next((code for code in map(language_code, candidates) if code), None)


def _itemprop_date(tree: HtmlElement) -> str | None:
    for element in tree.xpath("//*[@itemprop='datePublished']"):
        value = str(element.get("datetime") or element.get("content") or "").strip()
        if value:
            return value
    return None


def _time_element(tree: HtmlElement) -> str | None:
    """The ``datetime`` of the article's first ``<time>``, or of the page's only one (a page
    with several outside an article lists other stories' dates)."""
    found = tree.xpath("//article//time[@datetime]") or tree.xpath("//time[@datetime]")
    if not found or (len(found) > 1 and not tree.xpath("//article//time[@datetime]")):
        return None
    return str(found[0].get("datetime")).strip() or None


def _json_ld_items(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object on the page, @graph members included; broken blocks skipped."""
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = (script.text or "").strip()
        raw = raw.removeprefix("<![CDATA[").removesuffix("]]>").strip()
        try:
            data = json.loads(raw)
        except ValueError:  # hand-written JSON-LD is often invalid; it is only a hint
            continue
        yield from _objects(data)


def _objects(data: object) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for entry in data:
            yield from _objects(entry)
    elif isinstance(data, dict):
        yield data
        yield from _objects(data.get("@graph"))


def _types(item: dict[str, Any]) -> set[str]:
    kind = item.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def _publisher(article: dict[str, Any]) -> str | None:
    publisher = article.get("publisher")
    if isinstance(publisher, list):
        publisher = publisher[0] if publisher else None
    if isinstance(publisher, dict):
        return _text(publisher.get("name"))
    return _text(publisher)


def _authors(value: object) -> str | None:
    """JSON-LD ``author``: a name, a Person, or a list of them → "A, B"; None for none."""
    entries = value if isinstance(value, list) else [value]
    names = [_text(entry) for entry in entries]
    found = [name for name in dict.fromkeys(names) if name and not _is_url(name)]
    return ", ".join(found) or None


def _meta_author(metas: dict[str, str]) -> str | None:
    for key in ("author", "article:author", "dc.creator", "dcterms.creator", "sailthru.author"):
        value = metas.get(key)
        if value and not _is_url(value):
            return value
    return None


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "/"))


def _text(value: object) -> str | None:
    """A JSON-LD value as one stripped line: strings, the first of a list, {"@value": …}."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    if isinstance(value, str):
        text = " ".join(value.split())
        return text or None
    return None
