"""HTML → plain text, for titles, summaries and teasers: tags dropped, entities decoded,
whitespace collapsed, and a space kept where a block element or a <br> separated words.

Parsing is lxml's HTML parser (libxml2, tolerant of broken markup), on the document or the
fragment as UTF-8 bytes: a ``str`` with an ``<?xml encoding?>`` declaration is refused by lxml,
bytes never are. (#4: lxml builds a listing page's tree ~40 times faster than BeautifulSoup
over the same parser, and imports in a fraction of the time; bench/poll_bench.py.)
"""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement, HTMLParser

#: Elements that separate words even when the markup has no whitespace between them.
BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6"
    " header hr li main nav ol p pre section table td th tr ul".split()
)
#: Elements whose text is never shown.
INVISIBLE = frozenset("script style noscript template head title".split())


def collapse(text: str) -> str:
    """Whitespace runs → one space, trimmed."""
    return " ".join(text.split())


@cache
def _parser() -> HTMLParser:
    from lxml.html import HTMLParser

    # No network, no DTD; comments and processing instructions are not text anyway.
    return HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)


def parse_html(text: str) -> HtmlElement | None:
    """An HTML document (or fragment) as a tree; None when it holds no element at all."""
    from lxml.etree import ParserError
    from lxml.html import document_fromstring

    try:
        return document_fromstring(text.encode("utf-8", "replace"), parser=_parser())
    except ParserError:  # "Document is empty": only whitespace, or nothing lxml keeps
        return None


def plain_text(markup: str) -> str:
    """An HTML fragment (a feed title or summary) → its text on one line."""
    if "<" not in markup:
        return collapse(html.unescape(markup))  # no tags: only entities to decode
    root = parse_html(markup)
    return element_text(root) if root is not None else ""


def element_text(root: HtmlElement, skip: Callable[[HtmlElement], bool] | None = None) -> str:
    """The visible text under ``root``, leaving out elements for which ``skip`` is true (an
    element left out keeps the text that follows it, its tail)."""
    parts: list[str] = []
    _collect(root, skip, parts)
    return collapse("".join(parts))


def _collect(
    node: HtmlElement, skip: Callable[[HtmlElement], bool] | None, parts: list[str]
) -> None:
    if node.text:
        parts.append(node.text)
    for child in node:
        tag = child.tag
        # Comments and processing instructions have a function as their tag: no text of
        # theirs is shown, but the text after them is.
        if isinstance(tag, str) and tag not in INVISIBLE and (skip is None or not skip(child)):
            block = tag in BLOCKS
            if block:
                parts.append(" ")
            _collect(child, skip, parts)
            if block:
                parts.append(" ")
        if child.tail:
            parts.append(child.tail)
