"""Items and articles: what save_article writes, in the caller's transaction.

item seen  → items (source, key): later polls skip it; sources.items_seen counts it
article    → articles: one row per canonical URL
             same URL stored already       → nothing but the item ("known")
             same fingerprint as original  → a duplicate row, for "also published by"
             near-duplicate (the caller's) → a duplicate row likewise
             otherwise                     → the article and its matches
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from monitor.models import Article, Item, Match, Stored
from monitor.store import ItemOutcome
from monitor.store.rows import (
    dump_spans,
    dump_strings,
    fingerprint,
    from_text_opt,
    item_key,
    to_text,
    to_text_opt,
)


def remember(
    conn: sqlite3.Connection, source: str, items: list[Item], outcome: ItemOutcome, now: datetime
) -> None:
    """Remember items; one remembered before keeps its first ``seen_at`` and takes the new
    outcome. New ones are counted in the source's ``items_seen``."""
    new = 0
    for item in items:
        key = item_key(item)
        cur = conn.execute(
            "INSERT INTO items (source, key, url, outcome, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (source, key, item.url, outcome, to_text(now)),
        )
        if cur.rowcount == 1:
            new += 1
        else:
            conn.execute(
                "UPDATE items SET outcome = ? WHERE source = ? AND key = ?",
                (outcome, source, key),
            )
    if new:
        conn.execute(
            "INSERT INTO sources (name, items_seen) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET items_seen = items_seen + excluded.items_seen",
            (source, new),
        )


def save(
    conn: sqlite3.Connection,
    source: str,
    item: Item,
    article: Article,
    matches: list[Match],
    now: datetime,
    *,
    signature: str | None = None,
    near_duplicate_of: int | None = None,
    url_key: str | None = None,
) -> Stored:
    """The body of SqliteStore.save_article (see there), inside its transaction."""
    row = find_url(conn, article.url, url_key)
    if row is not None:
        remember(conn, source, [item], "known", now)
        return Stored(int(row["id"]), new=False, duplicate_of=row["duplicate_of"])
    text_print = fingerprint(article)
    original = None
    if text_print is not None:
        original = conn.execute(
            "SELECT id FROM articles WHERE fingerprint = ? AND duplicate_of IS NULL"
            " ORDER BY id LIMIT 1",
            (text_print,),
        ).fetchone()
    if original is None and near_duplicate_of is not None:
        # Still an original? (pruned since the caller compared, or itself a copy: not linked)
        original = conn.execute(
            "SELECT id FROM articles WHERE id = ? AND duplicate_of IS NULL",
            (near_duplicate_of,),
        ).fetchone()
    if original is not None:
        original_id = int(original[0])
        copy_id = _insert_article(
            conn, source, article, now, duplicate_of=original_id, url_key=url_key
        )
        stored = Stored(copy_id, new=False, duplicate_of=original_id)
    else:
        article_id = _insert_article(
            conn,
            source,
            article,
            now,
            fingerprint=text_print,
            signature=None if article.teaser_only or signature is None else signature,
            url_key=url_key,
        )
        _insert_matches(conn, article_id, matches, now)
        stored = Stored(article_id, new=True)
    remember(conn, source, [item], "stored", now)
    return stored


def find_url(conn: sqlite3.Connection, url: str, key: str | None) -> sqlite3.Row | None:
    """The (id, duplicate_of) row stored under ``url``, or else under the URL key ``key``."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, duplicate_of FROM articles WHERE url = ?", (url,)
    ).fetchone()
    if row is None and key is not None:
        row = conn.execute(
            "SELECT id, duplicate_of FROM articles WHERE url_key = ? ORDER BY id LIMIT 1",
            (key,),
        ).fetchone()
    return row


def page_since(
    conn: sqlite3.Connection, since: datetime, after: tuple[str, int] | None, size: int
) -> list[tuple[int, Article, str]]:
    """Up to ``size`` original articles found since ``since``, newest found first, starting
    after the (found_at, id) position ``after``; each with its id and found_at text."""
    rows = conn.execute(
        """
        SELECT * FROM articles
        WHERE duplicate_of IS NULL AND found_at >= :since
          AND (:found IS NULL OR found_at < :found OR (found_at = :found AND id < :id))
        ORDER BY found_at DESC, id DESC LIMIT :size
        """,
        {
            "since": to_text(since),
            "found": after[0] if after else None,
            "id": after[1] if after else None,
            "size": size,
        },
    ).fetchall()
    return [(int(row["id"]), _article(row), row["found_at"]) for row in rows]


def _article(row: sqlite3.Row) -> Article:
    return Article(
        url=row["url"],
        title=row["title"],
        text=row["text"],
        published=from_text_opt(row["published"]),
        author=row["author"],
        language=row["language"],
        source=row["source"],
        teaser_only=bool(row["teaser_only"]),
        reason=row["reason"],
    )


def _insert_article(
    conn: sqlite3.Connection,
    source: str,
    article: Article,
    now: datetime,
    *,
    fingerprint: str | None = None,
    signature: str | None = None,
    duplicate_of: int | None = None,
    url_key: str | None = None,
) -> int:
    """Insert an article row; a duplicate row keeps no text (its original has it)."""
    row = conn.execute(
        """
        INSERT INTO articles (url, title, text, published, author, language, source,
                              teaser_only, reason, fingerprint, found_at, duplicate_of,
                              signature, url_key)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
        """,
        (
            article.url,
            article.title,
            "" if duplicate_of is not None else article.text,
            to_text_opt(article.published),
            article.author,
            article.language,
            article.source or source,
            int(article.teaser_only),
            article.reason,
            fingerprint,
            to_text(now),
            duplicate_of,
            None if signature is None else bytes.fromhex(signature),
            url_key,
        ),
    ).fetchone()
    return int(row[0])


def _insert_matches(
    conn: sqlite3.Connection, article_id: int, matches: list[Match], now: datetime
) -> None:
    conn.executemany(
        "INSERT INTO matches (article_id, rule_id, topic, alert, terms, spans, found_at, why)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                article_id,
                m.rule_id,
                m.topic,
                m.alert,
                dump_strings(m.terms),
                dump_spans(m.spans),
                to_text(now),
                m.why,
            )
            for m in matches
        ],
    )
