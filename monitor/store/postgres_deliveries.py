"""Subscribers and deliveries in PostgreSQL: the part of PostgresStore that notify uses.

The methods behave as SqliteStore's of the same names (their docstrings there say exactly
what each does); what differs is what several processes at once need: ``claim_retries`` claims
with ``FOR UPDATE SKIP LOCKED``, and the cursor moves use ``greatest`` so that two outcomes
recorded in either order leave the cursor at the higher one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitor.models import Delivery, DigestEntry, Subscriber
from monitor.store import DeliveryKind, entries
from monitor.store import postgres_entries as pg_entries
from monitor.store.postgres_articles import Conn
from monitor.store.postgres_channels import PgChannels, delivered
from monitor.store.rows import (
    dump_ids,
    dump_strings,
    from_text,
    load_strings,
    normalise_email,
    to_text,
)


class PgDeliveries(PgChannels):
    """Subscribers, digest and alert entries, the delivery log."""

    def add_subscriber(
        self, email: str, digest: str, topics: tuple[str, ...], now: datetime
    ) -> Subscriber:
        """Add a subscriber, or update the digest and topics of an existing address."""
        email = normalise_email(email)
        kept = tuple(dict.fromkeys(t.strip() for t in topics if t.strip()))
        with self._write(f"add subscriber {email}") as conn:
            row = conn.execute(
                """
                INSERT INTO subscribers (email, digest, topics, created_at)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (email) DO UPDATE SET
                    digest = excluded.digest, topics = excluded.topics, status = 'active',
                    bounced_at = NULL, bounce_reason = NULL
                RETURNING id
                """,
                (email, digest, dump_strings(kept), to_text(now)),
            ).fetchone()
        assert row is not None
        return Subscriber(email=email, digest=digest, topics=kept, id=int(row["id"]))

    def remove_subscriber(self, email: str) -> bool:
        """Remove a subscriber (and what was alerted to them); False when there was none."""
        email = normalise_email(email)
        with self._write(f"remove subscriber {email}") as conn:
            cur = conn.execute("DELETE FROM subscribers WHERE email = %s", (email,))
        return cur.rowcount > 0

    def subscribers(self, digest: str | None = None) -> list[Subscriber]:
        """Active subscribers (of one digest), by address."""
        with self._query("read subscribers") as conn:
            rows = conn.execute(
                "SELECT id, email, digest, topics FROM subscribers"
                " WHERE status = 'active' AND bounced_at IS NULL"
                " AND (%(digest)s::text IS NULL OR digest = %(digest)s::text)"
                ' ORDER BY email COLLATE "C"',
                {"digest": digest},
            ).fetchall()
        return [_subscriber(row) for row in rows]

    def digest_entries(
        self, subscriber: Subscriber, now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """Matched articles on the subscriber's topics above their digest cursor (a first
        digest: the 7 days before ``now``), newest found first; and the cursor to hand back."""
        with self._read(f"read the digest of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            cursor = 0 if row is None else int(row["digest_cursor"])
            if row is not None:  # a digest still 'sending' covers its matches (#8)
                cursor = max(cursor, _sending_digest_cursor(conn, int(row["id"])))
            window_start = None
            if cursor == 0 and (row is None or not _sent_a_digest(conn, int(row["id"]))):
                window_start = now - timedelta(days=entries.FIRST_DIGEST_DAYS)
            ids, highest = pg_entries.digest_ids(
                conn, list(subscriber.topics), cursor, window_start
            )
            return pg_entries.build_entries(conn, ids), highest

    def alert_entries(self, subscriber: Subscriber) -> list[DigestEntry]:
        """Articles with immediate-alert matches on the subscriber's topics, found since they
        subscribed, never alerted to them yet; newest found first."""
        with self._read(f"read the alerts of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None:
                return []
            ids = pg_entries.alert_ids(
                conn, int(row["id"]), list(subscriber.topics), row["created_at"]
            )
            return pg_entries.build_entries(conn, ids)

    def begin_delivery(
        self,
        subscriber: Subscriber,
        kind: DeliveryKind,
        message_id: str,
        article_ids: list[int],
        cursor: int,
        now: datetime,
        message: bytes | None = None,
    ) -> int:
        """Record a message about to be sent; for an alert, mark its articles alerted in the
        same transaction. LookupError for a digest or alert to an unknown subscriber."""
        doing = f"record a {kind} to {subscriber.email}"
        with self._sending(doing) as sending, self._write(doing) as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None and kind != "confirm":
                raise LookupError(f"no subscriber {subscriber.email!r} (id {subscriber.id})")
            subscriber_id = None if row is None else int(row["id"])
            inserted = conn.execute(
                """
                INSERT INTO deliveries (subscriber_id, recipient, kind, message_id, article_ids,
                                        cursor, started_at, message)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
                """,
                (
                    subscriber_id,
                    normalise_email(subscriber.email),
                    kind,
                    message_id,
                    dump_ids(article_ids),
                    cursor,
                    to_text(now),
                    message,
                ),
            ).fetchone()
            assert inserted is not None
            delivery_id = int(inserted["id"])
            sending.add(delivery_id)
            if kind == "alert" and article_ids:
                conn.execute(
                    "INSERT INTO alerted (subscriber_id, article_id, delivery_id, alerted_at)"
                    " SELECT %s, a, %s, %s FROM unnest(%s::bigint[]) AS a"
                    " ON CONFLICT DO NOTHING",
                    (subscriber_id, delivery_id, to_text(now), list(article_ids)),
                )
        return delivery_id

    def finish_delivery(
        self,
        delivery_id: int,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record the outcome; a sent digest moves its subscriber's cursor (never back)."""
        with self._write(f"record the outcome of delivery {delivery_id}") as conn:
            row = conn.execute(
                "UPDATE deliveries SET status = %s, error = %s, finished_at = %s, retry_at = %s"
                " WHERE id = %s RETURNING kind, subscriber_id, cursor, channel_id",
                (
                    "sent" if error is None else "failed",
                    error,
                    to_text(now),
                    None if error is None or retry_at is None else to_text(retry_at),
                    delivery_id,
                ),
            ).fetchone()
            if row is None:
                raise LookupError(f"no delivery {delivery_id}")
            if error is None and row["kind"] == "digest" and row["subscriber_id"] is not None:
                conn.execute(
                    "UPDATE subscribers SET digest_cursor = greatest(digest_cursor, %s)"
                    " WHERE id = %s",
                    (row["cursor"], row["subscriber_id"]),
                )
            if error is None and row["channel_id"] is not None:
                delivered(conn, delivery_id)
        self._finished(delivery_id)

    def claim_retries(self, now: datetime) -> list[Delivery]:
        """Failed deliveries whose retry time has come, marked 'sending' again (one attempt
        more); rows another process is claiming at the same moment are skipped, not waited
        for, so each retry is claimed by one process. A digest or alert whose subscriber is
        gone or bounced is dropped instead."""
        with self._sending("claim deliveries to retry") as sending:
            rows = self._claim(now)
            sending.update(int(row["id"]) for row in rows)
        return [_delivery(row) for row in sorted(rows, key=lambda row: int(row["id"]))]

    def _claim(self, now: datetime) -> list[dict[str, Any]]:
        with self._write("claim deliveries to retry") as conn:
            conn.execute(
                """
                UPDATE deliveries SET retry_at = NULL,
                    error = coalesce(error, '') || '; not retried: the subscriber is gone'
                WHERE id IN (
                    SELECT d.id FROM deliveries AS d
                    WHERE d.retry_at IS NOT NULL AND d.retry_at <= %(now)s
                      AND d.kind != 'confirm' AND d.channel_id IS NULL
                      AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = d.subscriber_id
                                      AND s.status = 'active' AND s.bounced_at IS NULL)
                    FOR UPDATE SKIP LOCKED)
                """,
                {"now": to_text(now)},
            )
            rows = conn.execute(
                """
                UPDATE deliveries SET status = 'sending', retry_at = NULL,
                    attempts = attempts + 1, started_at = %(now)s, finished_at = NULL
                WHERE id IN (
                    SELECT id FROM deliveries
                    WHERE retry_at IS NOT NULL AND retry_at <= %(now)s
                    ORDER BY id FOR UPDATE SKIP LOCKED)
                RETURNING id, kind, recipient, message, attempts, subscriber_id, channel_id
                """,
                {"now": to_text(now)},
            ).fetchall()
        return rows

    def interrupted_deliveries(self) -> list[Delivery]:
        """Deliveries left 'sending' by a process that stopped before it recorded the outcome.

        Several processes send (workers, the web role's confirmations, `digest send --now`):
        a row is taken for interrupted only while no other live process has one 'sending'
        (the outbox lock, postgres_conn.OUTBOX_LOCK); while one has, none is returned, and a
        later call finds them. This process's own deliveries in flight are never returned."""
        with self._no_sender("read interrupted deliveries") as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT id, kind, recipient, message, attempts, subscriber_id, channel_id"
                " FROM deliveries WHERE status = 'sending' ORDER BY id"
            ).fetchall()
            mine = set(self._in_flight)
        return [_delivery(row) for row in rows if int(row["id"]) not in mine]

    def cover_digest(self, delivery_id: int) -> None:
        """Move the subscriber's digest cursor past a digest that may have gone out."""
        with self._write(f"move the digest cursor past delivery {delivery_id}") as conn:
            conn.execute(
                "UPDATE subscribers SET digest_cursor = greatest(digest_cursor, d.cursor)"
                " FROM (SELECT subscriber_id, cursor FROM deliveries"
                "       WHERE id = %s AND kind = 'digest') AS d"
                " WHERE subscribers.id = d.subscriber_id",
                (delivery_id,),
            )
            delivered(conn, delivery_id)

    def drop_retries(self, subscriber: Subscriber, kind: DeliveryKind, reason: str) -> int:
        """Clear the pending retries of a subscriber's messages of one kind; how many."""
        with self._write(f"drop the retries of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None:
                return 0
            cur = conn.execute(
                "UPDATE deliveries SET retry_at = NULL,"
                " error = coalesce(error, '') || '; ' || %s"
                " WHERE subscriber_id = %s AND kind = %s AND retry_at IS NOT NULL"
                " AND NOT (kind = 'digest' AND cursor <= %s)",
                (reason, int(row["id"]), kind, int(row["digest_cursor"])),
            )
        return cur.rowcount

    def mark_bounced(self, email: str, reason: str, now: datetime) -> bool:
        """Stop mail to an address that failed permanently, until it subscribes again."""
        with self._write(f"mark {email} bounced") as conn:
            cur = conn.execute(
                "UPDATE subscribers SET bounced_at = %s, bounce_reason = %s WHERE email = %s",
                (to_text(now), reason, normalise_email(email)),
            )
        return cur.rowcount > 0

    def subscriber(self, email: str) -> tuple[Subscriber, str] | None:
        """The stored subscriber with this address (any status) and its status."""
        with self._query(f"read subscriber {email}") as conn:
            row = conn.execute(
                "SELECT id, email, digest, topics, status, bounced_at FROM subscribers"
                " WHERE email = %s",
                (normalise_email(email),),
            ).fetchone()
        if row is None:
            return None
        return _subscriber(row), "bounced" if row["bounced_at"] else str(row["status"])

    def confirmations_since(self, email: str, since: datetime) -> int:
        """Confirmation messages recorded for this address since ``since``."""
        with self._query(f"count confirmations to {email}") as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM deliveries WHERE kind = 'confirm'"
                " AND recipient = %s AND started_at >= %s",
                (normalise_email(email), to_text(since)),
            ).fetchone()
        return 0 if row is None else int(row["n"])

    def last_delivery(self) -> tuple[datetime, str, str] | None:
        """When, to whom and what kind the last message was delivered (sent, not failed)."""
        with self._query("read the last delivery") as conn:
            row = conn.execute(
                "SELECT finished_at, recipient, kind FROM deliveries WHERE status = 'sent'"
                " ORDER BY finished_at DESC, id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return from_text(row["finished_at"]), row["recipient"], row["kind"]

    def pending_deliveries(self) -> list[tuple[str, str, int, datetime, str]]:
        """Messages waiting to be sent again, soonest first: kind, recipient, attempts made,
        when the next attempt is due, and why the last one failed."""
        with self._query("read the pending deliveries") as conn:
            rows = conn.execute(
                "SELECT kind, recipient, attempts, retry_at, error FROM deliveries"
                " WHERE retry_at IS NOT NULL ORDER BY retry_at, id"
            ).fetchall()
        return [
            (r["kind"], r["recipient"], r["attempts"], from_text(r["retry_at"]), r["error"] or "")
            for r in rows
        ]


def _subscriber(row: dict[str, Any]) -> Subscriber:
    return Subscriber(
        email=row["email"],
        digest=row["digest"],
        topics=load_strings(row["topics"]),
        id=int(row["id"]),
    )


def _subscriber_row(conn: Conn, subscriber: Subscriber) -> dict[str, Any] | None:
    """The stored row of a subscriber: by id when the record has one, else by address."""
    if subscriber.id:
        return conn.execute("SELECT * FROM subscribers WHERE id = %s", (subscriber.id,)).fetchone()
    return conn.execute(
        "SELECT * FROM subscribers WHERE email = %s", (normalise_email(subscriber.email),)
    ).fetchone()


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        kind=str(row["kind"]),
        recipient=str(row["recipient"]),
        message=bytes(row["message"] or b""),
        attempts=int(row["attempts"]),
        subscriber_id=None if row["subscriber_id"] is None else int(row["subscriber_id"]),
        channel_id=None if row["channel_id"] is None else int(row["channel_id"]),
    )


def _sending_digest_cursor(conn: Conn, subscriber_id: int) -> int:
    row = conn.execute(
        "SELECT coalesce(max(cursor), 0) AS c FROM deliveries"
        " WHERE subscriber_id = %s AND kind = 'digest' AND status = 'sending'",
        (subscriber_id,),
    ).fetchone()
    return 0 if row is None else int(row["c"])


def _sent_a_digest(conn: Conn, subscriber_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 AS one FROM deliveries WHERE subscriber_id = %s AND kind = 'digest'"
        " AND status = 'sent' LIMIT 1",
        (subscriber_id,),
    ).fetchone()
    return row is not None
