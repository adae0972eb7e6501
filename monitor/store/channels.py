"""The queries behind other channels (issue #7): a channel's cursors, entries and outbox rows.

A channel (``channels``) is a digest's apprise URL, known by ``key`` (a hash of the digest's
name and the URL as written) and shown by ``label`` (the URL redacted). Its messages are
``deliveries`` rows with ``channel_id`` set, so they share the e-mail outbox: begin before
sending, finish after, retries with backoff, interrupted ones resolved at start-up.

- digest: the matches above ``digest_cursor`` (the highest match id delivered); a channel
  that never got a digest gets the 7 days before ``now`` (like a subscriber's first digest);
- alert: the immediate matches above ``alert_cursor``, which moves when the alert is
  recorded, before it is sent, so an article is alerted to a channel at most once. A new
  channel's alert cursor starts at the newest match: it is alerted what is found after it
  was added.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from monitor.models import DigestEntry
from monitor.store import entries
from monitor.store.rows import dump_ids, dump_strings, to_text

# The channel's topics as a JSON list in :topics; '[]' means every topic.
_ON_TOPICS = "(:topics = '[]' OR m.topic IN (SELECT value FROM json_each(:topics)))"


def register(conn: sqlite3.Connection, digest: str, key: str, label: str, now: datetime) -> int:
    """The channel's id, adding it when new (its label kept up to date)."""
    row = conn.execute(
        """
        INSERT INTO channels (digest, key, label, alert_cursor, created_at)
        VALUES (:digest, :key, :label, (SELECT coalesce(max(id), 0) FROM matches), :now)
        ON CONFLICT (digest, key) DO UPDATE SET label = excluded.label
        RETURNING id
        """,
        {"digest": digest, "key": key, "label": label, "now": to_text(now)},
    ).fetchone()
    return int(row[0])


def digest_entries(
    conn: sqlite3.Connection, channel_id: int, topics: tuple[str, ...], now: datetime
) -> tuple[list[DigestEntry], int]:
    """The articles of the channel's next digest, newest first, and the cursor it reaches."""
    row = conn.execute(
        """
        SELECT c.digest_cursor,
               (SELECT coalesce(max(d.cursor), 0) FROM deliveries AS d
                WHERE d.channel_id = c.id AND d.kind = 'digest' AND d.status = 'sending'),
               EXISTS (SELECT 1 FROM deliveries AS d
                       WHERE d.channel_id = c.id AND d.kind = 'digest' AND d.status = 'sent')
        FROM channels AS c WHERE c.id = ?
        """,
        (channel_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"no channel {channel_id}")
    # A digest still 'sending' (in flight, or cut off by a kill) covers its matches (#8).
    cursor = max(int(row[0]), int(row[1]))
    window_start = None
    if cursor == 0 and not row[2]:
        window_start = now - timedelta(days=entries.FIRST_DIGEST_DAYS)
    ids, highest = entries.digest_ids(conn, dump_strings(topics), cursor, window_start)
    return entries.build_entries(conn, ids), highest


def alert_entries(
    conn: sqlite3.Connection, channel_id: int, topics: tuple[str, ...]
) -> tuple[list[DigestEntry], int]:
    """Articles with immediate matches on ``topics`` above the channel's alert cursor, newest
    found first, and the highest such match id (the cursor's next value)."""
    found = conn.execute("SELECT alert_cursor FROM channels WHERE id = ?", (channel_id,)).fetchone()
    if found is None:
        raise LookupError(f"no channel {channel_id}")
    params = {"topics": dump_strings(topics), "cursor": int(found[0])}
    row = conn.execute(
        "SELECT max(m.id) FROM matches AS m"
        f" WHERE m.id > :cursor AND m.alert = 'immediate' AND {_ON_TOPICS}",
        params,
    ).fetchone()
    if row[0] is None:
        return [], int(found[0])
    highest = int(row[0])
    rows = conn.execute(
        f"""
        SELECT a.id FROM articles AS a
        WHERE a.duplicate_of IS NULL
          AND EXISTS (SELECT 1 FROM matches AS m
                      WHERE m.article_id = a.id AND m.alert = 'immediate'
                        AND m.id > :cursor AND m.id <= :highest AND {_ON_TOPICS})
        ORDER BY a.found_at DESC, a.id DESC
        """,
        {**params, "highest": highest},
    )
    return entries.build_entries(conn, [int(r[0]) for r in rows]), highest


def begin_delivery(
    conn: sqlite3.Connection,
    channel_id: int,
    kind: str,
    message_id: str,
    article_ids: list[int],
    cursor: int,
    now: datetime,
    message: bytes,
) -> int:
    """Record a post about to be sent; an alert moves the alert cursor now (at most once)."""
    label = conn.execute("SELECT label FROM channels WHERE id = ?", (channel_id,)).fetchone()
    if label is None:
        raise LookupError(f"no channel {channel_id}")
    delivery_id = conn.execute(
        """
        INSERT INTO deliveries (channel_id, recipient, kind, message_id, article_ids, cursor,
                                started_at, message)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
        """,
        (
            channel_id,
            label[0],
            kind,
            message_id,
            dump_ids(article_ids),
            cursor,
            to_text(now),
            message,
        ),
    ).fetchone()[0]
    if kind == "alert":
        conn.execute(
            "UPDATE channels SET alert_cursor = max(alert_cursor, ?) WHERE id = ?",
            (cursor, channel_id),
        )
    return int(delivery_id)


def delivered(conn: sqlite3.Connection, delivery_id: int) -> None:
    """Move the channel's digest cursor past a digest delivered (or that may have gone out)."""
    conn.execute(
        "UPDATE channels SET digest_cursor = max(digest_cursor, d.cursor)"
        " FROM (SELECT channel_id, cursor FROM deliveries"
        "       WHERE id = ? AND kind = 'digest') AS d"
        " WHERE channels.id = d.channel_id",
        (delivery_id,),
    )


def drop_retries(conn: sqlite3.Connection, channel_id: int, reason: str) -> int:
    """Clear the pending retries of the channel's digests that the next digest covers (those
    the cursor has not passed)."""
    cur = conn.execute(
        "UPDATE deliveries SET retry_at = NULL, error = coalesce(error, '') || '; ' || ?"
        " WHERE channel_id = ? AND kind = 'digest' AND retry_at IS NOT NULL"
        " AND cursor > (SELECT digest_cursor FROM channels WHERE id = ?)",
        (reason, channel_id, channel_id),
    )
    return cur.rowcount
