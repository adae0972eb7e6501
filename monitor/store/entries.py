"""What notify shows: the queries behind recent, digest and alert entries, and DigestEntry.

Each query first picks article ids in the order they are shown, then ``build_entries`` turns
them into DigestEntry records with three more queries (articles, their matches, their
duplicates), whatever the number of articles.

Only original articles (``duplicate_of IS NULL``) are ever entries: a duplicate row shows up
as a name in its original's ``also_published_by``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime

from monitor.models import DigestEntry
from monitor.store.rows import Span, from_text, from_text_opt, load_spans, to_text

#: The window a subscriber's first digest covers (DESIGN: "a first digest covers 7 days").
FIRST_DIGEST_DAYS = 7

# A subscriber's topics as a JSON list in parameter :topics; '[]' means every topic.
_ON_TOPICS = "(:topics = '[]' OR m.topic IN (SELECT value FROM json_each(:topics)))"


def recent_ids(conn: sqlite3.Connection, topic: str | None, limit: int) -> list[int]:
    """Matched articles (on ``topic``, or any), newest found first."""
    rows = conn.execute(
        """
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND (:topic IS NULL OR m.topic = :topic))
        ORDER BY a.found_at DESC, a.id DESC
        LIMIT :limit
        """,
        {"topic": topic, "limit": limit},
    )
    return [int(row[0]) for row in rows]


def digest_ids(
    conn: sqlite3.Connection, topics: str, cursor: int, window_start: datetime | None
) -> tuple[list[int], int]:
    """Articles with matches above ``cursor`` on ``topics`` (JSON list), found since
    ``window_start`` when given, newest found first; and the highest match id considered.

    Matches skipped because they are older than the window still count as considered, so
    they are not delivered by the next digest either."""
    params = {"topics": topics, "cursor": cursor}
    row = conn.execute(
        f"SELECT max(m.id) FROM matches AS m WHERE m.id > :cursor AND {_ON_TOPICS}", params
    ).fetchone()
    highest = cursor if row[0] is None else int(row[0])
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.id > :cursor AND m.id <= :highest
                        AND {_ON_TOPICS}
                        AND (:start IS NULL OR m.found_at >= :start))
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {
            **params,
            "highest": highest,
            "start": None if window_start is None else to_text(window_start),
        },
    )
    return [int(r[0]) for r in rows], highest


def alert_ids(
    conn: sqlite3.Connection, subscriber_id: int, topics: str, created_at: str
) -> list[int]:
    """Articles with immediate matches on ``topics``, found since ``created_at``, not yet
    alerted to the subscriber; newest found first."""
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND a.found_at >= :created_at
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.alert = 'immediate' AND {_ON_TOPICS})
          AND NOT EXISTS (SELECT 1 FROM alerted AS al
                          WHERE al.subscriber_id = :subscriber AND al.article_id = a.id)
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {"topics": topics, "created_at": created_at, "subscriber": subscriber_id},
    )
    return [int(row[0]) for row in rows]


def build_entries(conn: sqlite3.Connection, ids: list[int]) -> list[DigestEntry]:
    """DigestEntry records for these article ids, in the same order."""
    if not ids:
        return []
    wanted = json.dumps(ids)
    articles = {
        int(row["id"]): row
        for row in conn.execute(
            """
            SELECT id, url, title, source, published, found_at, text, teaser_only, language
            FROM articles WHERE id IN (SELECT value FROM json_each(?))
            """,
            (wanted,),
        )
    }
    topics: dict[int, set[str]] = defaultdict(set)
    spans: dict[int, set[Span]] = defaultdict(set)
    why: dict[int, dict[str, None]] = defaultdict(dict)  # distinct, in match order
    for row in conn.execute(
        "SELECT article_id, topic, spans, why FROM matches"
        " WHERE article_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (wanted,),
    ):
        topics[row["article_id"]].add(row["topic"])
        spans[row["article_id"]].update(load_spans(row["spans"]))
        if row["why"]:
            why[row["article_id"]][row["why"]] = None
    others: dict[int, set[str]] = defaultdict(set)
    for row in conn.execute(
        "SELECT duplicate_of, source FROM articles"
        " WHERE duplicate_of IN (SELECT value FROM json_each(?))",
        (wanted,),
    ):
        others[row["duplicate_of"]].add(row["source"])
    return [
        _entry(articles[i], topics[i], spans[i], others[i], tuple(why[i]))
        for i in ids
        if i in articles
    ]


def _entry(
    row: sqlite3.Row, topics: set[str], spans: set[Span], others: set[str], why: tuple[str, ...]
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
