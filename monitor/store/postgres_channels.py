"""Other channels (issue #7) in PostgreSQL: channels.py's queries in PostgreSQL's dialect.

A channel is a digest's apprise URL; its posts are ``deliveries`` rows with ``channel_id`` set,
sharing the outbox with e-mail. The alert cursor moves when the alert is recorded, before it is
sent, so an article is alerted to a channel at most once (``greatest``: never backwards).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.models import DigestEntry
from monitor.store import DeliveryKind, entries
from monitor.store import postgres_entries as pg_entries
from monitor.store.postgres_articles import Conn
from monitor.store.postgres_conn import PgConnection
from monitor.store.rows import dump_ids, to_text


class PgChannels(PgConnection):
    """The channel methods of PostgresStore (SqliteStore's of the same names say more)."""

    def register_channel(self, digest: str, key: str, label: str, now: datetime) -> int:
        """The id of a digest's channel (known by ``key``), added when new."""
        with self._write(f"register channel {label}") as conn:
            row = conn.execute(
                """
                INSERT INTO channels (digest, key, label, alert_cursor, created_at)
                VALUES (%(digest)s, %(key)s, %(label)s,
                        (SELECT coalesce(max(id), 0) FROM matches), %(now)s)
                ON CONFLICT (digest, key) DO UPDATE SET label = excluded.label
                RETURNING id
                """,
                {"digest": digest, "key": key, "label": label, "now": to_text(now)},
            ).fetchone()
        assert row is not None
        return int(row["id"])

    def channel_digest_entries(
        self, channel_id: int, topics: tuple[str, ...], now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """The channel's next digest, as ``digest_entries`` is a subscriber's."""
        with self._read(f"read the digest of channel {channel_id}") as conn:
            row = conn.execute(
                """
                SELECT c.digest_cursor AS cursor,
                       (SELECT coalesce(max(d.cursor), 0) FROM deliveries AS d
                        WHERE d.channel_id = c.id AND d.kind = 'digest'
                          AND d.status = 'sending') AS sending,
                       EXISTS (SELECT 1 FROM deliveries AS d
                               WHERE d.channel_id = c.id AND d.kind = 'digest'
                                 AND d.status = 'sent') AS sent
                FROM channels AS c WHERE c.id = %s
                """,
                (channel_id,),
            ).fetchone()
            if row is None:
                raise LookupError(f"no channel {channel_id}")
            cursor = max(int(row["cursor"]), int(row["sending"]))
            window_start = None
            if cursor == 0 and not row["sent"]:
                window_start = now - timedelta(days=entries.FIRST_DIGEST_DAYS)
            ids, highest = pg_entries.digest_ids(conn, list(topics), cursor, window_start)
            return pg_entries.build_entries(conn, ids), highest

    def channel_alert_entries(
        self, channel_id: int, topics: tuple[str, ...]
    ) -> tuple[list[DigestEntry], int]:
        """Articles with immediate matches not yet alerted to the channel, and the cursor."""
        with self._read(f"read the alerts of channel {channel_id}") as conn:
            found = conn.execute(
                "SELECT alert_cursor FROM channels WHERE id = %s", (channel_id,)
            ).fetchone()
            if found is None:
                raise LookupError(f"no channel {channel_id}")
            cursor = int(found["alert_cursor"])
            ids, highest = pg_entries.alert_ids_above(conn, list(topics), cursor)
            return pg_entries.build_entries(conn, ids), highest

    def begin_channel_delivery(
        self,
        channel_id: int,
        kind: DeliveryKind,
        message_id: str,
        article_ids: list[int],
        cursor: int,
        now: datetime,
        message: bytes,
    ) -> int:
        """Record a post about to be sent; an alert moves the channel's alert cursor in the
        same transaction."""
        doing = f"record a {kind} to channel {channel_id}"
        with self._sending(doing) as sending, self._write(doing) as conn:
            label = conn.execute(
                "SELECT label FROM channels WHERE id = %s", (channel_id,)
            ).fetchone()
            if label is None:
                raise LookupError(f"no channel {channel_id}")
            row = conn.execute(
                """
                INSERT INTO deliveries (channel_id, recipient, kind, message_id, article_ids,
                                        cursor, started_at, message)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
                """,
                (
                    channel_id,
                    label["label"],
                    kind,
                    message_id,
                    dump_ids(article_ids),
                    cursor,
                    to_text(now),
                    message,
                ),
            ).fetchone()
            assert row is not None
            sending.add(int(row["id"]))
            if kind == "alert":
                conn.execute(
                    "UPDATE channels SET alert_cursor = greatest(alert_cursor, %s) WHERE id = %s",
                    (cursor, channel_id),
                )
        return int(row["id"])

    def drop_channel_retries(self, channel_id: int, reason: str) -> int:
        """Clear the pending retries of the channel's digests that the next one covers."""
        with self._write(f"drop the retries of channel {channel_id}") as conn:
            cur = conn.execute(
                "UPDATE deliveries SET retry_at = NULL, error = coalesce(error, '') || '; ' || %s"
                " WHERE channel_id = %s AND kind = 'digest' AND retry_at IS NOT NULL"
                " AND cursor > (SELECT digest_cursor FROM channels WHERE id = %s)",
                (reason, channel_id, channel_id),
            )
        return cur.rowcount


def delivered(conn: Conn, delivery_id: int) -> None:
    """Move the channel's digest cursor past a digest delivered (or that may have gone out)."""
    conn.execute(
        "UPDATE channels SET digest_cursor = greatest(digest_cursor, d.cursor)"
        " FROM (SELECT channel_id, cursor FROM deliveries"
        "       WHERE id = %s AND kind = 'digest') AS d"
        " WHERE channels.id = d.channel_id",
        (delivery_id,),
    )
