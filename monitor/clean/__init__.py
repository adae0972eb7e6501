"""clean: a fetched page → an Article with the page's own text and metadata. Sync and pure.

Entry points (DESIGN §8; nothing heavy is imported until one is called):

- ``extract(html, url=None)`` → Article: ``.text``, ``.title``, ``.published``, ``.author``,
  ``.language``, ``.url``; never raises for a bad page (``text == ""`` and a ``reason``);
- ``clean(item, page, source=name, body=None, drop=())`` → Article as the pipeline stores it: the
  page's text, or the item's teaser (``teaser_only``) when the page is missing or has no text;
  ``body`` and ``drop`` are the source's CSS overrides (``monitor.toml``);
- ``canonical_url(url)`` → the URL articles are stored under; ``url_key(url)`` → the key that
  its http/https, "www.", trailing-slash and AMP variants share (for dedup, not a link);
- ``signature(article)`` → the MinHash signature (hex) of a stored article's text, None for
  a teaser or a short text; ``near_duplicate(signature, candidates)`` → the id of the
  candidate (the store's recent ``Signatures``) it near-duplicates best, or None
  (clean/dedupe.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.models import Article, Item, Page, Signatures


def extract(
    html: str | bytes,
    url: str | None = None,
    *,
    charset: str | None = None,
    body: str | None = None,
    drop: tuple[str, ...] = (),
) -> Article:
    from monitor.clean.article import extract as run

    return run(html, url, charset=charset, body=body, drop=drop)


def clean(
    item: Item,
    page: Page | None,
    *,
    source: str,
    reason: str = "",
    body: str | None = None,
    drop: tuple[str, ...] = (),
) -> Article:
    from monitor.clean.article import clean as run

    return run(item, page, source=source, reason=reason, body=body, drop=drop)


def canonical_url(url: str) -> str:
    from monitor.clean.urls import canonical_url as run

    return run(url)


def url_key(url: str) -> str:
    from monitor.clean.urls import url_key as run

    return run(url)


def signature(article: Article) -> str | None:
    from monitor.clean.dedupe import signature as run

    return None if article.teaser_only else run(article.text)


def near_duplicate(new: str | None, candidates: Signatures) -> int | None:
    from monitor.clean.dedupe import most_similar

    return most_similar(new, candidates)
