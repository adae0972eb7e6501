"""A few lines of an article around its matched terms, as highlighted pieces.

A snippet is about 280 characters of the text, cut at word boundaries, taken around the
densest run of matched terms (the first such run on a tie). It is a sequence of
``(segment, is_highlight)`` pieces, so that HTML wraps highlights in ``<mark>`` (each segment
escaped) and plain text shows them as they are::

    …the court sentenced the [journalist] to five years; [human rights] groups said…

Where the spans point only into the title, the words they cover are looked for in the text;
where nothing is found, the snippet is the text's opening.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape

from monitor.models import DigestEntry

#: What a snippet is shown with when the article page could not be read.
TEASER_NOTE = "teaser only: the article page could not be read"
#: The snippet's target length in characters: two to three lines of a mail client.
LENGTH = 280
ELLIPSIS = "…"

_SPACE = re.compile(r"\s+")
_SENTENCE_START = re.compile(r"(?:(?<=[.!?…])\s+|\n\s*)(?=\S)")


@dataclass(frozen=True, slots=True)
class Snippet:
    """Highlighted excerpt of an article, for a digest, an alert or a feed."""

    #: (segment, is_highlight), in order; ellipses are in non-highlighted segments.
    pieces: tuple[tuple[str, bool], ...]
    #: True when the text is the source's teaser: the page itself could not be read.
    teaser_only: bool = False

    @property
    def text(self) -> str:
        """The snippet as plain text, highlights unmarked."""
        return "".join(segment for segment, _ in self.pieces)

    @property
    def html(self) -> Markup:
        """The snippet as HTML: every segment escaped, highlights in ``<mark>``."""
        return Markup("").join(
            Markup("<mark>{}</mark>").format(segment) if hit else escape(segment)
            for segment, hit in self.pieces
        )

    @property
    def note(self) -> str:
        """TEASER_NOTE for a teaser-only article, else ""."""
        return TEASER_NOTE if self.teaser_only else ""

    def marked(self, before: str = "*", after: str = "*") -> str:
        """Plain text with each highlight between ``before`` and ``after`` (``*term*``)."""
        return "".join(f"{before}{s}{after}" if hit else s for s, hit in self.pieces)


def make_snippet(entry: DigestEntry, length: int = LENGTH) -> Snippet:
    """The snippet of one entry's text around its matched terms."""
    text = entry.text
    spans = _text_spans(entry)
    start, end = _window(text, spans, length)
    inside = [(max(s, start), min(e, end)) for s, e in spans if s < end and e > start]
    pieces = _pieces(text, start, end, inside)
    return Snippet(pieces=pieces, teaser_only=entry.teaser_only)


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> tuple[tuple[str, bool], ...]:
    """The whole of ``text`` as pieces, with ``spans`` (start, end) highlighted."""
    return _pieces(text, 0, len(text), _merge(_clamp(spans, len(text))))


# -- choosing the spans --------------------------------------------------------------------
def _clamp(spans: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    clamped = [(max(0, s), min(size, e)) for s, e in spans]
    return sorted((s, e) for s, e in clamped if e > s)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _text_spans(entry: DigestEntry) -> list[tuple[int, int]]:
    """The text's matched spans; else the title's matched words found in the text."""
    size = len(entry.text)
    spans = _clamp(((s, e) for field, s, e in entry.spans if field == "text"), size)
    if not spans:
        spans = _clamp(_title_words_in_text(entry), size)
    return _merge([_strip(entry.text, s, e) for s, e in spans if entry.text[s:e].strip()])


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without whitespace at its edges, so no highlight starts or ends in a gap."""
    while text[start].isspace():
        start += 1
    while text[end - 1].isspace():
        end -= 1
    return start, end


def _title_words_in_text(entry: DigestEntry) -> list[tuple[int, int]]:
    words = {
        entry.title[s:e].strip()
        for field, s, e in entry.spans
        if field == "title" and 0 <= s < e <= len(entry.title)
    }
    found: list[tuple[int, int]] = []
    for word in filter(None, words):
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        found += [(m.start(), m.end()) for m in pattern.finditer(entry.text)]
    return found


# -- choosing the window -------------------------------------------------------------------
def _densest(spans: list[tuple[int, int]], length: int) -> tuple[int, int]:
    """(first, last) indices of the run of spans that fits in ``length`` with the most spans."""
    best, best_count, last = (0, 0), 0, 0
    for first, (start, _) in enumerate(spans):
        last = max(last, first)
        while last + 1 < len(spans) and spans[last + 1][1] <= start + length:
            last += 1
        if last - first + 1 > best_count:
            best, best_count = (first, last), last - first + 1
    return best


def _window(text: str, spans: list[tuple[int, int]], length: int) -> tuple[int, int]:
    """The [start, end) of the text to show, at word boundaries."""
    size = len(text)
    if not spans:
        return 0, _word_end(text, min(size, length), 0)
    first, last = _densest(spans, length)
    cluster_start, cluster_end = spans[first][0], spans[last][1]
    # A third of the room before the terms and the rest after reads naturally.
    slack = max(0, length - (cluster_end - cluster_start))
    start = max(0, cluster_start - slack // 3)
    sentence = _SENTENCE_START.search(text, start, cluster_start)
    if sentence is not None and start > 0:
        start = sentence.end()
    end = min(size, max(start + length, cluster_end))
    if end == size:
        start = max(0, min(start, size - length))
    return _word_start(text, start, cluster_start), _word_end(text, end, cluster_end)


def _word_start(text: str, start: int, limit: int) -> int:
    """Move ``start`` off the middle of a word: forward if that stays before ``limit``."""
    if start <= 0 or text[start - 1].isspace() or text[start].isspace():
        return start
    space = _SPACE.search(text, start, limit)
    if space is not None:
        return space.end()
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return start


def _word_end(text: str, end: int, limit: int) -> int:
    """Move ``end`` off the middle of a word: back if that stays after ``limit``."""
    if end >= len(text) or text[end].isspace() or text[end - 1].isspace():
        return end
    back = end
    while back > limit and not text[back - 1].isspace():
        back -= 1
    if back > limit:
        return back
    while end < len(text) and not text[end].isspace():
        end += 1
    return end


def _pieces(
    text: str, start: int, end: int, spans: list[tuple[int, int]]
) -> tuple[tuple[str, bool], ...]:
    raw: list[tuple[str, bool]] = []
    at = start
    for s, e in spans:
        raw += [(text[at:s], False), (text[s:e], True)]
        at = e
    raw.append((text[at:end], False))
    pieces = [(_SPACE.sub(" ", segment), hit) for segment, hit in raw]
    pieces = _trim(pieces)
    if start > 0 and pieces:
        pieces.insert(0, (ELLIPSIS, False))
    if end < len(text) and pieces:
        pieces.append((ELLIPSIS, False))
    return tuple(_join(pieces))


def _trim(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    pieces = [(segment, hit) for segment, hit in pieces if segment]
    if pieces:
        pieces[0] = (pieces[0][0].lstrip(), pieces[0][1])
        pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
    return [(segment, hit) for segment, hit in pieces if segment]


def _join(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    joined: list[tuple[str, bool]] = []
    for segment, hit in pieces:
        if joined and joined[-1][1] == hit:
            joined[-1] = (joined[-1][0] + segment, hit)
        else:
            joined.append((segment, hit))
    return joined
