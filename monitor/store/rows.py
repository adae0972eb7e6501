"""Conversions between our records and SQLite values; no SQL here.

Datetimes are stored as ISO-8601 UTC text of fixed width (``2026-11-24T08:00:01.000000+00:00``),
so that text order is time order and ``found_at >= ?`` compares correctly; they come back as
aware datetimes in UTC. Lists (terms, spans, topics, article ids) are stored as JSON text.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from monitor.models import Article, Item, SourceState

#: Texts shorter than this (after collapsing whitespace) get no fingerprint: short texts such as
#: "Photo: Reuters" or a one-line teaser are too often the same on unrelated articles.
FINGERPRINT_MIN_CHARS = 200

Span = tuple[str, int, int]


def to_text(when: datetime) -> str:
    """An aware datetime → fixed-width ISO-8601 UTC text. A naive datetime is a bug."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime given to the store: {when.isoformat()}")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def to_text_opt(when: datetime | None) -> str | None:
    return None if when is None else to_text(when)


def from_text(text: str) -> datetime:
    """Stored text → an aware datetime in UTC."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:  # not written by us; read it as UTC rather than guess a zone
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def from_text_opt(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def fingerprint(article: Article) -> str | None:
    """SHA-256 (hex) of the article's normalised text: NFKC, casefolded, punctuation dropped,
    whitespace collapsed, so that a story reposted with other quotes and line breaks is the
    same (clean/dedupe.py normalises alike). None when the article cannot be a duplicate
    target: a teaser, or a normalised text under FINGERPRINT_MIN_CHARS characters."""
    if article.teaser_only:
        return None
    folded = unicodedata.normalize("NFKC", article.text).casefold()
    normal = " ".join(_without_punctuation(folded).split())
    if len(normal) < FINGERPRINT_MIN_CHARS:
        return None
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def _without_punctuation(text: str) -> str:
    """``text`` without Unicode's punctuation (P*), as clean/dedupe.py removes it (the two
    stages may not share code): one pattern of the BMP's punctuation, built on first use, 8x
    faster than ``str.translate`` (#4); beyond the BMP, character by character."""
    if text and max(text) > "\uffff":
        drop = {ord(ch): None for ch in set(text) if unicodedata.category(ch).startswith("P")}
        return text.translate(drop)
    return _punctuation().sub("", text)


@cache
def _punctuation() -> re.Pattern[str]:
    codes = [c for c in range(0x10000) if unicodedata.category(chr(c)).startswith("P")]
    return re.compile("[" + "".join(f"\\u{c:04x}" for c in codes) + "]+")


def item_key(item: Item) -> str:
    """What identifies an item within its source: the feed's guid, else the URL."""
    return item.guid or item.url


def normalise_email(email: str) -> str:
    """Strip the address and lower-case its domain (the local part may be case-sensitive)."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    return f"{local}@{domain.lower()}"


def dump_spans(spans: tuple[Span, ...]) -> str:
    return json.dumps([list(span) for span in spans])


def load_spans(text: str) -> tuple[Span, ...]:
    return tuple((str(f), int(s), int(e)) for f, s, e in json.loads(text))


def dump_strings(values: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def dump_ids(ids: list[int]) -> str:
    return json.dumps([int(i) for i in ids])


def load_strings(text: str) -> tuple[str, ...]:
    return tuple(str(value) for value in json.loads(text))


def source_state(row: sqlite3.Row | Mapping[str, Any]) -> SourceState:
    """A ``sources`` row → SourceState."""
    return SourceState(
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_success=from_text_opt(row["last_success"]),
        last_error=row["last_error"],
        failures=int(row["failures"]),
        items_seen=int(row["items_seen"]),
        last_poll=from_text_opt(row["last_poll"]),
        next_poll=from_text_opt(row["next_poll"]),
    )
