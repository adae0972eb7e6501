"""What notify shows, from PostgreSQL: the queries of entries.py in PostgreSQL's dialect.

A subscriber's topics come as a text array (empty: every topic) instead of SQLite's JSON list;
``build_entries`` turns ordered article ids into DigestEntry records with three queries.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from monitor.models import DigestEntry
from monitor.store.postgres_articles import Conn
from monitor.store.rows import Span, from_text, from_text_opt, load_spans, to_text

_ON_TOPICS = "(cardinality(%(topics)s::text[]) = 0 OR m.topic = ANY(%(topics)s::text[]))"


def recent_ids(conn: Conn, topic: str | None, limit: int) -> list[int]:
    """Matched articles (on ``topic``, or any), newest found first."""
    rows = conn.execute(
        """
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id
                        AND (%(topic)s::text IS NULL OR m.topic = %(topic)s::text))
        ORDER BY a.found_at DESC, a.id DESC
        LIMIT %(limit)s
        """,
        {"topic": topic, "limit": limit},
    ).fetchall()
    return [int(row["id"]) for row in rows]


def digest_ids(
    conn: Conn, topics: list[str], cursor: int, window_start: datetime | None
) -> tuple[list[int], int]:
    """Articles with matches above ``cursor`` on ``topics``, found since ``window_start`` when
    given, newest found first; and the highest match id considered (see entries.digest_ids)."""
    params: dict[str, Any] = {"topics": topics, "cursor": cursor}
    row = conn.execute(
        f"SELECT max(m.id) AS top FROM matches AS m WHERE m.id > %(cursor)s AND {_ON_TOPICS}",
        params,
    ).fetchone()
    highest = cursor if row is None or row["top"] is None else int(row["top"])
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.id > %(cursor)s AND m.id <= %(highest)s
                        AND {_ON_TOPICS}
                        AND (%(start)s::text IS NULL OR m.found_at >= %(start)s::text))
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {
            **params,
            "highest": highest,
            "start": None if window_start is None else to_text(window_start),
        },
    ).fetchall()
    return [int(r["id"]) for r in rows], highest


def alert_ids(conn: Conn, subscriber_id: int, topics: list[str], created_at: str) -> list[int]:
    """Articles with immediate matches on ``topics``, found since ``created_at``, not yet
    alerted to the subscriber; newest found first."""
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND a.found_at >= %(created_at)s
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.alert = 'immediate' AND {_ON_TOPICS})
          AND NOT EXISTS (SELECT 1 FROM alerted AS al
                          WHERE al.subscriber_id = %(subscriber)s AND al.article_id = a.id)
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {"topics": topics, "created_at": created_at, "subscriber": subscriber_id},
    ).fetchall()
    return [int(row["id"]) for row in rows]


def build_entries(conn: Conn, ids: list[int]) -> list[DigestEntry]:
    """DigestEntry records for these article ids, in the same order."""
    if not ids:
        return []
    articles = {
        int(row["id"]): row
        for row in conn.execute(
            "SELECT id, url, title, source, published, found_at, text, teaser_only, language"
            " FROM articles WHERE id = ANY(%s)",
            (ids,),
        ).fetchall()
    }
    topics: dict[int, set[str]] = defaultdict(set)
    spans: dict[int, set[Span]] = defaultdict(set)
    why: dict[int, dict[str, None]] = defaultdict(dict)  # distinct, in match order
    for row in conn.execute(
        "SELECT article_id, topic, spans, why FROM matches WHERE article_id = ANY(%s) ORDER BY id",
        (ids,),
    ).fetchall():
        topics[int(row["article_id"])].add(row["topic"])
        spans[int(row["article_id"])].update(load_spans(row["spans"]))
        if row["why"]:
            why[int(row["article_id"])][row["why"]] = None
    others: dict[int, set[str]] = defaultdict(set)
    for row in conn.execute(
        "SELECT duplicate_of, source FROM articles WHERE duplicate_of = ANY(%s)", (ids,)
    ).fetchall():
        others[int(row["duplicate_of"])].add(row["source"])
    return [
        _entry(articles[i], topics[i], spans[i], others[i], tuple(why[i]))
        for i in ids
        if i in articles
    ]


def _entry(
    row: dict[str, Any], topics: set[str], spans: set[Span], others: set[str], why: tuple[str, ...]
) -> DigestEntry:
    return DigestEntry(
        article_id=int(row["id"]),
        url=row["url"],
        title=row["title"],
        source=row["source"],
        published=from_text_opt(row["published"]),
        found=from_text(row["found_at"]),
        topics=tuple(sorted(topics)),
        text=row["text"],
        spans=tuple(sorted(spans)),
        teaser_only=bool(row["teaser_only"]),
        language=row["language"],
        also_published_by=tuple(sorted(others - {row["source"]})),
        why=why,
    )


def alert_ids_above(conn: Conn, topics: list[str], cursor: int) -> tuple[list[int], int]:
    """Articles with immediate matches on ``topics`` above the match id ``cursor``, newest
    found first, and the highest such match id (``cursor`` when there is none)."""
    params: dict[str, Any] = {"topics": topics, "cursor": cursor}
    row = conn.execute(
        "SELECT max(m.id) AS top FROM matches AS m"
        f" WHERE m.id > %(cursor)s AND m.alert = 'immediate' AND {_ON_TOPICS}",
        params,
    ).fetchone()
    if row is None or row["top"] is None:
        return [], cursor
    highest = int(row["top"])
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.alert = 'immediate'
                        AND m.id > %(cursor)s AND m.id <= %(highest)s AND {_ON_TOPICS})
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {**params, "highest": highest},
    ).fetchall()
    return [int(r["id"]) for r in rows], highest
