"""HTML → plain text, for titles, summaries and teasers: tags dropped, entities decoded,
whitespace collapsed, and a space kept where a block element or a <br> separated words."""

from __future__ import annotations

import html
from collections.abc import Callable

from bs4 import BeautifulSoup, Tag
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction

#: Elements that separate words even when the markup has no whitespace between them.
BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6"
    " header hr li main nav ol p pre section table td th tr ul".split()
)
#: Elements whose text is never shown.
INVISIBLE = frozenset("script style noscript template head title".split())
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)


def collapse(text: str) -> str:
    """Whitespace runs → one space, trimmed."""
    return " ".join(text.split())


def plain_text(markup: str) -> str:
    """An HTML fragment (a feed title or summary) → its text on one line."""
    if "<" not in markup:
        # No tags: only entities to decode. (bs4 also warns on markup that looks like a URL.)
        return collapse(html.unescape(markup))
    soup = BeautifulSoup(markup, "lxml")
    return element_text(soup)


def element_text(root: Tag, skip: Callable[[Tag], bool] | None = None) -> str:
    """The visible text under ``root``, leaving out elements for which ``skip`` is true."""
    parts: list[str] = []
    _collect(root, skip, parts)
    return collapse("".join(parts))


def _collect(node: Tag, skip: Callable[[Tag], bool] | None, parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, _NOT_TEXT):
                parts.append(str(child))
        elif isinstance(child, Tag):
            if child.name in INVISIBLE or (skip is not None and skip(child)):
                continue
            block = child.name in BLOCKS
            if block:
                parts.append(" ")
            _collect(child, skip, parts)
            if block:
                parts.append(" ")
