"""Items and articles in PostgreSQL: what save_article writes, in the caller's transaction.

The same rules as articles.py (SQLite), with what several writers at once need: items are
remembered with one upsert; an article's URL and fingerprint are locked (transaction-level
advisory locks) before they are looked up, so two workers saving the same article, or the same
text from two sources, at the same moment store it once and link the other; and matches are
inserted under one more lock so that match ids are committed in id order (digest cursors rely on
"every match at or below the cursor is visible", see postgres.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from monitor.models import Article, Item, Match, Signatures, Stored
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
from monitor.store.signatures import from_rows

Conn = psycopg.Connection[dict[str, Any]]

#: Advisory lock key held while inserting matches (commits match ids in order).
MATCH_LOCK = 0x7072_6D6F_6E01


def remember(
    conn: Conn, source: str, items: list[Item], outcome: ItemOutcome, now: datetime
) -> None:
    """Remember items; one remembered before keeps its first ``seen_at`` and takes the new
    outcome. New ones are counted in the source's ``items_seen``."""
    firsts: dict[str, str] = {}
    for item in items:
        firsts.setdefault(item_key(item), item.url)
    if not firsts:
        return
    conn.execute(  # one statement: a single round trip, alone or in a transaction
        """
        WITH upserted AS (
            INSERT INTO items (source, key, url, outcome, seen_at)
            SELECT %(source)s, k, u, %(outcome)s, %(now)s
            FROM unnest(%(keys)s::text[], %(urls)s::text[]) AS t (k, u)
            ON CONFLICT (source, key) DO UPDATE SET outcome = excluded.outcome
            RETURNING (xmax = 0) AS inserted
        ), new AS (SELECT count(*) FILTER (WHERE inserted) AS n FROM upserted)
        INSERT INTO sources (name, items_seen)
        SELECT %(source)s, n FROM new WHERE n > 0
        ON CONFLICT (name) DO UPDATE SET items_seen = sources.items_seen + excluded.items_seen
        """,
        {
            "source": source,
            "outcome": outcome,
            "now": to_text(now),
            "keys": list(firsts),
            "urls": list(firsts.values()),
        },
    )


def save(
    conn: Conn,
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
    """The body of PostgresStore.save_article (SqliteStore.save_article says what it does)."""
    text_print = fingerprint(article)
    names = sorted({article.url, url_key or article.url, text_print or article.url})
    conn.execute(  # in one order, so two writers cannot deadlock
        "SELECT pg_advisory_xact_lock(hashtextextended(n, 0))"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS t (n, i) ORDER BY i",
        (names,),
    )
    row = find_url(conn, article.url, url_key)
    if row is not None:
        remember(conn, source, [item], "known", now)
        return Stored(int(row["id"]), new=False, duplicate_of=row["duplicate_of"])
    original = None
    if text_print is not None:
        original = conn.execute(
            "SELECT id FROM articles WHERE fingerprint = %s AND duplicate_of IS NULL"
            " ORDER BY id LIMIT 1",
            (text_print,),
        ).fetchone()
    if original is None and near_duplicate_of is not None:
        original = conn.execute(
            "SELECT id FROM articles WHERE id = %s AND duplicate_of IS NULL",
            (near_duplicate_of,),
        ).fetchone()
    if original is not None:
        original_id = int(original["id"])
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


def find_url(conn: Conn, url: str, key: str | None) -> dict[str, Any] | None:
    """The (id, duplicate_of) row stored under ``url``, or else under the URL key ``key``."""
    row = conn.execute("SELECT id, duplicate_of FROM articles WHERE url = %s", (url,)).fetchone()
    if row is None and key is not None:
        row = conn.execute(
            "SELECT id, duplicate_of FROM articles WHERE url_key = %s ORDER BY id LIMIT 1",
            (key,),
        ).fetchone()
    return row


def recent_signatures(conn: Conn, source: str, since: datetime) -> Signatures:
    """The signatures of the originals found since ``since`` from sources other than
    ``source``, oldest id first."""
    rows = conn.execute(
        "SELECT id, signature FROM articles"
        " WHERE found_at >= %s AND duplicate_of IS NULL AND signature IS NOT NULL"
        " AND teaser_only = 0 AND source != %s ORDER BY id",
        (to_text(since), source),
    ).fetchall()
    return from_rows((int(row["id"]), bytes(row["signature"])) for row in rows)


def page_since(
    conn: Conn, since: datetime, after: tuple[str, int] | None, size: int
) -> list[tuple[int, Article, str]]:
    """Up to ``size`` original articles found since ``since``, newest found first, starting
    after the (found_at, id) position ``after``; each with its id and found_at text."""
    if after is None:
        rows = conn.execute(
            "SELECT * FROM articles WHERE duplicate_of IS NULL AND found_at >= %s"
            " ORDER BY found_at DESC, id DESC LIMIT %s",
            (to_text(since), size),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM articles WHERE duplicate_of IS NULL AND found_at >= %s"
            " AND (found_at, id) < (%s, %s) ORDER BY found_at DESC, id DESC LIMIT %s",
            (to_text(since), after[0], after[1], size),
        ).fetchall()
    return [(int(row["id"]), _article(row), row["found_at"]) for row in rows]


def _article(row: dict[str, Any]) -> Article:
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
    conn: Conn,
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
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
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
    assert row is not None
    return int(row["id"])


def _insert_matches(conn: Conn, article_id: int, matches: list[Match], now: datetime) -> None:
    if not matches:
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MATCH_LOCK,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO matches (article_id, rule_id, topic, alert, terms, spans, found_at, why)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
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


def add_matches(
    conn: Conn, found: list[tuple[int, Match]], now: datetime
) -> list[tuple[int, Match]]:
    """Backfilled matches (#6; backfill.py says which are added), filed for the digest; those
    inserted. Under the match lock, like every match insert (ids committed in order)."""
    if not found:
        return []
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MATCH_LOCK,))
    added = []
    for article_id, match in found:
        cur = conn.execute(
            """
            INSERT INTO matches (article_id, rule_id, topic, alert, terms, spans, found_at, why)
            SELECT %(article)s, %(rule)s, %(topic)s, 'digest', %(terms)s, %(spans)s, %(now)s,
                   %(why)s
            WHERE EXISTS (SELECT 1 FROM articles WHERE id = %(article)s AND duplicate_of IS NULL)
              AND NOT EXISTS (SELECT 1 FROM matches WHERE article_id = %(article)s
                              AND (rule_id = %(rule)s OR topic = %(topic)s))
            """,
            {
                "article": article_id,
                "rule": match.rule_id,
                "topic": match.topic,
                "terms": dump_strings(match.terms),
                "spans": dump_spans(match.spans),
                "now": to_text(now),
                "why": match.why,
            },
        )
        if cur.rowcount == 1:
            added.append((article_id, match))
    return added
