"""Fingerprints for exact-duplicate detection: the same text published twice, re-formatted.

Two texts get the same fingerprint when they differ only in case, accents' composition,
whitespace and punctuation (an agency story reposted with curly quotes and other line
breaks). Near duplicates are the store's business; this only makes "the same" cheap to see.
"""

from __future__ import annotations

import hashlib
import unicodedata

#: Below this many characters (after normalising) a text is a teaser or a caption, and two
#: unrelated articles could share it ("Read more", "Press release"), so it gets no fingerprint.
MIN_CHARS = 200


def normalise_text(text: str) -> str:
    """Casefolded, NFKC, punctuation removed, runs of whitespace as one space, stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = [
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or not unicodedata.category(ch).startswith("P")
    ]
    return " ".join("".join(kept).split())


def text_fingerprint(text: str) -> str | None:
    """SHA-256 (hex) of the normalised text; None when it is shorter than ``MIN_CHARS``."""
    normal = normalise_text(text)
    if len(normal) < MIN_CHARS:
        return None
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()
