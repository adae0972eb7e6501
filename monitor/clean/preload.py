"""Imported once by the cleaner processes' forkserver (``monitor.cleaners.PRELOAD``), never
by the main process: extracting one small page here builds what the cleaning libraries build
lazily on first use (py3langid's language model, trafilatura's and htmldate's tables), so
that every worker forked afterwards starts with them loaded and shares their memory, instead
of each worker loading them with its first article.
"""

from __future__ import annotations

from monitor.clean.article import extract

#: Long enough to pass the extractor's checks; no <html lang>, so the language is detected.
_PAGE = (
    "<!DOCTYPE html><html><head><title>Warm-up</title></head><body><main><article>"
    "<h1>Warm-up</h1><time datetime='2026-01-02'>2 January 2026</time>"
    + "<p>This paragraph is long enough to be read as the prose of a press article, and it"
    " is written in English so that the language model is consulted.</p>"
    * 4
    + "</article></main></body></html>"
)

extract(_PAGE, "https://example.org/warm-up")
