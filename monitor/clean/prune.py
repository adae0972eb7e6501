"""Tree surgery before extraction: the chrome trafilatura's heuristics miss.

Two kinds of page defeat a general-purpose extractor on press sites:

- chrome *inside* the article container (tag lines, share bars, "Related articles" boxes,
  press contacts, comment forms, cookie banners), which it keeps because it sits beside the
  text; these are removed by class and id;
- pages laid out with tables (older ministry and embassy sites), where keeping tables
  (our option, for real data tables) makes it emit the menus and footer as table rows;
  such layout tables become plain blocks.

Both change the tree in place; the caller passes its own parse.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: A parsed page, an ``lxml.html.HtmlElement`` (Any: see extract.py).
HtmlElement = Any

#: Short words must be a whole class token or the id ("tags" prunes class="tags", not
#: class="stages"); compound names may be part of one ("field--name-field-press-contacts").
CHROME_TOKENS = frozenset(
    {"tags", "share", "sharing", "comments", "breadcrumb", "breadcrumbs", "consent"}
)
CHROME_FRAGMENTS = (
    "press-contact",
    "related-article",
    "related-content",
    "related-news",
    "related-post",
    "related-link",
    "social-share",
    "social-media-share",
    "share-button",
    "sharing-button",
    "cookie",
    "comment-form",
    "comment-respond",
    "field-tags",
    "tags-links",
    "newsletter",
)
#: The same kind of names, matched with "-" and "_" removed ("jp-relatedposts",
#: "related_stories", "youMayAlsoLike"): lists of other articles, whatever the CMS.
CHROME_JOINED = (
    "related",
    "recommended",
    "morestories",
    "mostpopular",
    "mostread",
    "youmayalsolike",
    "youmightlike",
)
CHROME_ROLES = frozenset({"navigation", "contentinfo", "complementary", "dialog"})
#: Page-level chrome by element: trafilatura drops these itself, but its fallback extractors
#: (run when the main pass finds little text) do not, and would return the menus.
CHROME_TAGS = frozenset({"nav", "aside", "footer", "header"})
#: Never the page's frame or the article: a body class such as "cookie-consent-given" must
#: not take the text with it.
KEPT_TAGS = frozenset({"html", "body", "main", "article"})
#: Pruning that would leave less than this share of the page's text is a misfire (a wrapper
#: with an unlucky class name), and is not done.
MIN_TEXT_LEFT = 1 / 7
#: Lines longer than this are prose, whatever links they hold: not tested by drop_link_lines.
LINK_LINE_MAX = 300
#: A table is for layout when it is marked so, has a single cell, or a cell of it holds
#: headings, other tables, forms or several paragraphs: data tables hold values.
#: Class names of an article body's container, for merge_split_bodies.
BODY_CLASS_WORDS = re.compile(r"body|content|text|article|story|entry|post")
#: A paragraph this long is prose, not a teaser's line or a caption.
PROSE_PARAGRAPH = 150
#: Prose is mostly not links: a block whose paragraphs' text is more than this share link
#: text is a list of links (related articles, a menu) however long.
MAX_LINK_SHARE = 0.3
LAYOUT_TABLE_XPATH = (
    "//table[@role='presentation' or @role='none' or count(.//td) = 1"
    " or .//td[.//h1 or .//h2 or .//h3 or .//table or .//form or count(.//p) >= 3]]"
)


def prune_chrome(tree: HtmlElement) -> int:
    """Remove the chrome blocks (see the module docstring); returns how many were removed."""
    found = _chrome_elements(tree)
    chosen = set(found)
    outermost = [
        element
        for element in found
        if not any(a in chosen for a in element.iterancestors())
        and element.find(".//h1") is None
        and element.find(".//main") is None
    ]
    total = len(tree.text_content())
    removed = sum(len(element.text_content()) for element in outermost)
    if total and total - removed < total * MIN_TEXT_LEFT:
        return 0
    for element in outermost:
        drop_element(element)
    return len(outermost)


def _chrome_elements(tree: HtmlElement) -> list[HtmlElement]:
    """What ``prune_chrome`` removes: chrome elements, roles, and class or id names."""
    found = []
    for element in tree.iter():
        tag = element.tag
        if not isinstance(tag, str) or tag in KEPT_TAGS:  # comments, processing instructions
            continue
        if tag in CHROME_TAGS:
            found.append(element)
            continue
        attributes = element.attrib
        if not attributes:
            continue
        if attributes.get("role") in CHROME_ROLES:
            found.append(element)
        elif (attributes.get("aria-label") or "").lower() == "breadcrumb":
            found.append(element)
        else:
            names = f"{attributes.get('class') or ''} {attributes.get('id') or ''}".lower()
            if names.strip() and _is_chrome_name(names):
                found.append(element)
    return found


_FRAGMENTS = re.compile("|".join(re.escape(part) for part in CHROME_FRAGMENTS))
_JOINED = re.compile("|".join(re.escape(part) for part in CHROME_JOINED))


@lru_cache(maxsize=4096)
def _is_chrome_name(names: str) -> bool:
    """Whether class and id names (lower-cased, space-separated) name chrome. Remembered:
    a page repeats a few dozen class names over thousands of elements (#4: this test, run
    per element, was a fifth of a cleaner's time)."""
    if not CHROME_TOKENS.isdisjoint(names.split()):
        return True
    if _FRAGMENTS.search(names):
        return True
    return _JOINED.search(names.replace("-", "").replace("_", "")) is not None


def unwrap_layout_tables(tree: HtmlElement) -> int:
    """Turn layout tables, their rows and cells into <div>s; returns how many tables."""
    tables = tree.xpath(LAYOUT_TABLE_XPATH)
    for table in tables:
        for section in table.xpath("./thead | ./tbody | ./tfoot"):
            section.tag = "div"
        for row in table.xpath("./tr | ./div/tr"):
            for cell in row.xpath("./td | ./th"):
                cell.tag = "div"
            row.tag = "div"
        table.tag = "div"
    return len(tables)


def drop_other_articles(tree: HtmlElement) -> int:
    """Remove the ``<article>`` elements that are other stories (teasers, "you may like").

    Applies when the page's only ``<h1>`` sits in an ``<article>`` that holds more text than
    any other story's: that one is the page's story, and an ``<article>`` that neither holds it nor
    sits inside it is another story's card. Returns how many were removed.
    """
    headings = tree.findall(".//h1")
    if len(headings) != 1:
        return 0
    own = next((a for a in headings[0].iterancestors("article")), None)
    if own is None:
        return 0
    # The outermost article around the heading is the story; its inner articles are parts.
    for outer in own.iterancestors("article"):
        own = outer
    inside = set(own.iter("article"))
    mine = set(own.iterancestors("article")) | inside
    others = [a for a in tree.iter("article") if a not in mine]
    # An <h1> in a featured card beside the story (the story's own heading an <h2>): the
    # story is then not the article that holds most text, and nothing is removed.
    # (Compared with the innermost articles: a box of many cards holds much text, a card not.)
    longest = len(own.text_content())
    leaves = [a for a in others if a.find(".//article") is None]
    if any(len(leaf.text_content()) > longest for leaf in leaves):
        return 0
    removed = 0
    chosen = set(others)
    for article in others:
        if not any(p in chosen for p in article.iterancestors("article")):
            drop_element(article)
            removed += 1
    return removed


def merge_split_bodies(tree: HtmlElement) -> int:
    """Join an article body that the page split into sibling containers (ads between them).

    Pages built from one template repeat the body's container (same tag, same class) every
    few paragraphs; an extractor then picks one piece and loses the rest. When several such
    containers hold prose (long paragraphs, few links) and none holds another, the later
    ones' content is moved into the first. Returns how many containers were merged.
    """
    groups: dict[tuple[str, str], list[HtmlElement]] = {}
    for element in tree.iter("div", "section", "article"):
        names = (element.get("class") or "").lower()
        if BODY_CLASS_WORDS.search(names) is None:
            continue
        groups.setdefault((element.tag, " ".join(names.split())), []).append(element)
    merged = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        chosen = set(members)
        if any(a in chosen for m in members for a in m.iterancestors()):
            continue
        if not all(_is_prose(member) for member in members):
            continue
        first = members[0]
        for member in members[1:]:
            for child in list(member):
                first.append(child)
            drop_element(member)
            merged += 1
    return merged


def _is_prose(element: HtmlElement) -> bool:
    paragraphs = [" ".join(p.text_content().split()) for p in element.iter("p")]
    long = [text for text in paragraphs if len(text) >= PROSE_PARAGRAPH]
    if not long:
        return False
    text = sum(len(t) for t in paragraphs)
    links = sum(len(" ".join(a.text_content().split())) for a in element.iter("a"))
    return links <= text * MAX_LINK_SHARE


def drop_element(element: HtmlElement) -> None:
    """Remove ``element`` and its subtree, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def link_texts(tree: HtmlElement) -> frozenset[str]:
    """The text of every link on the page, whitespace collapsed (taken before pruning)."""
    texts = (" ".join(a.text_content().split()) for a in tree.iter("a"))
    return frozenset(text for text in texts if len(text) > 1)


def drop_link_lines(lines: list[str], links: frozenset[str]) -> list[str]:
    """``lines`` without those made only of link texts ("Elections", "Rights | Elections")
    or of punctuation (the "|" between two menu links).

    A menu, a tag line or a list of related titles that reached the text (the extractor's
    fallbacks take them on pages with little prose) is nothing but links; a paragraph of the
    article is not, even when it holds a link.
    """
    return [line for line in lines if _has_words(line) and not _only_links(line, links)]


def _has_words(line: str) -> bool:
    """False for what is left of a menu between its links: "|", "·", "»"."""
    return any(ch.isalnum() for ch in line)


def _only_links(line: str, links: frozenset[str]) -> bool:
    item = line.removeprefix("- ").strip()
    if item in links:
        return True
    if len(item) > LINK_LINE_MAX or not links:
        return False
    rest = item
    for text in sorted((t for t in links if t in rest), key=len, reverse=True):
        rest = rest.replace(text, " ")
    return rest != item and not any(ch.isalnum() for ch in rest)
