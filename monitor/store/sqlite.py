"""The SQLite store: everything press-monitor remembers, in one WAL database file.

One writer (DESIGN §7): the daemon owns one SqliteStore and calls it from one dedicated thread,
which need not be the thread that opened it (``check_same_thread=False``). Read-only commands
and web pages open their own store, ``readonly=True``; WAL lets them read while the daemon
writes. Every write method is one ``BEGIN IMMEDIATE`` transaction; multi-query reads run in one
read transaction, so they see one snapshot.

Operational failures (locked, disk full, read-only, not a database) become StoreError naming
the file and what was being done; IntegrityError and misuse propagate, because they are bugs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.errors import StoreError
from monitor.models import (
    Article,
    Delivery,
    DigestEntry,
    FetchResult,
    Item,
    Match,
    Signatures,
    SourceState,
    Stored,
    Subscriber,
)
from monitor.store import (
    DeliveryKind,
    ItemOutcome,
    articles,
    backfill,
    entries,
    maintenance,
    schema,
)
from monitor.store import channels as channel_rows
from monitor.store.rows import (
    dump_ids,
    dump_strings,
    from_text,
    item_key,
    load_strings,
    normalise_email,
    to_text,
    to_text_opt,
)
from monitor.store.rows import (
    source_state as state_from_row,
)
from monitor.store.signatures import RecentSignatures

#: SQLite result codes (the low byte of the extended code) that mean "this file is not a
#: usable database": the user must restore or move it, it is not a bug of ours.
_NOT_A_DATABASE = {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}
#: Rows fetched per query by articles_since, which may walk the whole table.
_BATCH = 200


@contextmanager
def sqlite_errors(path: Path | str, doing: str) -> Iterator[None]:
    """Turn the failures a user can act on into ``StoreError(path, "cannot <doing>")``.

    OperationalError: locked, disk full, read-only, cannot open. DatabaseError with
    SQLITE_NOTADB or SQLITE_CORRUPT: the file is not (or no longer) a database. Anything else,
    IntegrityError and ProgrammingError included, is a bug and propagates."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreError(str(path), f"cannot {doing}{_hint(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError or (exc.sqlite_errorcode & 0xFF) not in (
            _NOT_A_DATABASE
        ):
            raise
        raise StoreError(str(path), f"cannot {doing}") from exc


def _hint(exc: sqlite3.OperationalError) -> str:
    """What to check, for the failures that come from the file system rather than SQLite:
    an I/O error is what SQLite reports when a file it has open can no longer be written
    (a file system remounted read-only after a disk error, an immutable file; #8)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY):
        return " (is the state directory read-only, or its disk failing?)"
    return ""


class SqliteStore:
    """The Store protocol (monitor.store.Store) over one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        readonly: bool = False,
        trace: Callable[[str], object] | None = None,
        busy_timeout: float = 5.0,
    ) -> None:
        """Open the database at ``path``, creating it and its directory and migrating it unless
        ``readonly``. ``trace`` receives every SQL statement run; ``busy_timeout`` is how many
        seconds to wait for another writer's lock before giving up with StoreError."""
        self.path = Path(path)
        self.readonly = readonly
        self._signatures = RecentSignatures()
        self._conn = self._connect(busy_timeout)
        try:
            if trace is not None:
                self._conn.set_trace_callback(trace)
            with sqlite_errors(self.path, "open the database"):
                self._setup(busy_timeout)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.exists():
                raise StoreError(
                    str(self.path),
                    "the database does not exist yet; run `monitor poll --once` to create it",
                )
            target = self.path.resolve().as_uri() + "?mode=ro"
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(str(self.path), "cannot create the database directory") from exc
            target = str(self.path)
        with sqlite_errors(self.path, "open the database"):
            conn = sqlite3.connect(
                target,
                uri=self.readonly,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
        conn.row_factory = sqlite3.Row
        return conn

    def _setup(self, busy_timeout: float) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.readonly:
            schema.check_version(conn, self.path, readonly=True)
            return
        schema.check_version(conn, self.path, readonly=False)  # before writing anything
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        schema.migrate(conn, self.path)

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        self._conn.close()

    def __repr__(self) -> str:
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM articles WHERE duplicate_of IS NULL"
            ).fetchone()
            count = str(row[0])
        except sqlite3.Error:  # closed, or locked: a repr must not raise
            count = "?"
        return f"<SqliteStore path={self.path} articles={count}>"

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, StoreError on operational failure, rolled back on any."""
        with sqlite_errors(self.path, doing), self._transaction("BEGIN IMMEDIATE"):
            yield self._conn

    @contextmanager
    def _read(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with sqlite_errors(self.path, doing), self._transaction("BEGIN"):
            yield self._conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        conn = self._conn
        if conn.in_transaction:  # nested: the outer transaction commits
            yield
            return
        conn.execute(begin)
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- sources -------------------------------------------------------------------------

    def source_state(self, source: str) -> SourceState:
        """The remembered validators and health of a source (all defaults if never polled)."""
        with self._read(f'read the state of source "{source}"') as conn:
            row = conn.execute("SELECT * FROM sources WHERE name = ?", (source,)).fetchone()
        return SourceState() if row is None else state_from_row(row)

    def record_poll(
        self,
        source: str,
        now: datetime,
        fetched: FetchResult | None,
        error: str | None,
        next_poll: datetime | None = None,
    ) -> None:
        """Remember one poll, and when the source is due again (``next_poll``).

        On error: the message, one more consecutive failure; validators kept. On success
        (``error is None``): the success time, zero failures, and the fetched validators and
        body hash; a ``not_modified`` result (or none) keeps the stored ones where it brings
        none. ``last_error`` keeps the most recent error after a success, for `monitor
        sources`; ``failures`` says whether it is current."""
        with self._write(f'record a poll of source "{source}"') as conn:
            conn.execute("INSERT INTO sources (name) VALUES (?) ON CONFLICT DO NOTHING", (source,))
            if error is not None:
                conn.execute(
                    "UPDATE sources SET last_error = ?, failures = failures + 1, last_poll = ?,"
                    " next_poll = ? WHERE name = ?",
                    (error, to_text(now), to_text_opt(next_poll), source),
                )
                return
            replace = fetched is not None and fetched.status == "ok"
            conn.execute(
                f"""
                UPDATE sources SET
                    etag = {"?" if replace else "coalesce(?, etag)"},
                    last_modified = {"?" if replace else "coalesce(?, last_modified)"},
                    body_hash = {"?" if replace else "coalesce(?, body_hash)"},
                    last_success = ?, last_poll = ?, failures = 0, next_poll = ?
                WHERE name = ?
                """,
                (
                    fetched.etag if fetched else None,
                    fetched.last_modified if fetched else None,
                    fetched.body_hash if fetched else None,
                    to_text(now),
                    to_text(now),
                    to_text_opt(next_poll),
                    source,
                ),
            )

    def sources_health(self) -> dict[str, SourceState]:
        """Every source ever polled, by name (in name order)."""
        with self._read("read the sources' health") as conn:
            found = conn.execute("SELECT * FROM sources ORDER BY name").fetchall()
        return {row["name"]: state_from_row(row) for row in found}

    # -- items and articles ----------------------------------------------------------------

    def unseen_items(self, source: str, items: list[Item]) -> list[Item]:
        """The items this source has not had remembered (by guid, else URL), in order; an
        item listed twice in ``items`` is returned once."""
        keys = [item_key(item) for item in items]
        with self._read(f'read the items of source "{source}"') as conn:
            seen = {
                row[0]
                for row in conn.execute(
                    "SELECT key FROM items"
                    " WHERE source = ? AND key IN (SELECT value FROM json_each(?))",
                    (source, dump_strings(keys)),
                )
            }
        unseen = []
        for key, item in zip(keys, items, strict=True):
            if key not in seen:
                seen.add(key)
                unseen.append(item)
        return unseen

    def remember_items(
        self, source: str, items: list[Item], outcome: ItemOutcome, now: datetime
    ) -> None:
        """Remember items so that later polls skip them; an item remembered before keeps its
        first ``seen_at`` and takes the new outcome. Counts new ones in ``items_seen``."""
        with self._write(f'remember the items of source "{source}"') as conn:
            articles.remember(conn, source, items, outcome, now)

    def known_article(self, url: str, key: str | None = None) -> int | None:
        """The id of the stored article (or duplicate row) with this canonical URL, or else
        with this URL key (clean.url_key: another scheme, slash or AMP variant), if any."""
        with self._read("look up an article") as conn:
            row = articles.find_url(conn, url, key)
        return None if row is None else int(row[0])

    def save_article(
        self,
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
        """Store an article and its matches, and remember the item, in one transaction.

        - The canonical URL is stored already: only the item is remembered (outcome "known");
          ``Stored(id, new=False, duplicate_of=…)`` as that row has it.
        - Its text has the fingerprint of a stored original (rows.fingerprint: at least 200
          characters, not a teaser): a duplicate row is stored (url, source, title, dates,
          ``duplicate_of``; no text, no matches) so that the original can show "also published
          by"; ``Stored(new_row_id, new=False, duplicate_of=original_id)``.
        - Otherwise the article and its matches, the item remembered as "stored":
          ``Stored(id, new=True)``.
        - ``near_duplicate_of``: the caller found the text a near-duplicate of that stored
          original (``recent_signatures`` and clean.dedupe): linked like an exact duplicate,
          unless that row is gone or is itself a copy. ``signature`` (hex) is kept on a new
          original (not a teaser) for later comparisons.
        - ``url_key`` (clean.url_key of the URL): kept, and a row stored under that key counts
          as the same URL (an AMP or http variant of a stored article).
        """
        with self._write("save article") as conn:
            return articles.save(
                conn,
                source,
                item,
                article,
                matches,
                now,
                signature=signature,
                near_duplicate_of=near_duplicate_of,
                url_key=url_key,
            )

    def recent_signatures(self, source: str, since: datetime) -> Signatures:
        """The signatures of the originals found since ``since`` from other sources than
        ``source`` that have one (not teasers, not duplicates), oldest first: read from the
        table once, then only the rows added since (store.signatures)."""
        with self._read("read recent signatures") as conn:
            return self._signatures.read(conn, source, since)

    def articles_since(self, since: datetime) -> Iterator[tuple[int, Article]]:
        """Stored articles (not duplicates) found since ``since``, newest found first.

        Read in batches of a few hundred, each its own short query, so that a consumer that
        stops early holds no statement open."""
        after: tuple[str, int] | None = None
        while True:
            with self._read("read stored articles") as conn:
                page = articles.page_since(conn, since, after, _BATCH)
            for article_id, article, _ in page:
                yield article_id, article
            if len(page) < _BATCH:
                return
            after = (page[-1][2], page[-1][0])

    def add_matches(self, found: list[tuple[int, Match]], now: datetime) -> list[tuple[int, Match]]:
        """Backfill (#6): store each (article id, match) whose article has no match of that
        rule or topic yet, filed for the digest (never an immediate alert); those stored."""
        with self._write("store backfilled matches") as conn:
            return backfill.add_matches(conn, found, now)

    # -- what notify shows -------------------------------------------------------------------

    def recent_entries(self, topic: str | None = None, limit: int = 100) -> list[DigestEntry]:
        """The newest matched articles (on ``topic``, or on any), newest *found* first (not
        by published date: a feed shows what is new to us at the top). Each entry lists all
        the topics its article matched."""
        with self._read("read recent matches") as conn:
            return entries.build_entries(conn, entries.recent_ids(conn, topic, limit))

    def topics(self) -> list[str]:
        """Every topic with at least one match, sorted."""
        with self._read("read topics") as conn:
            rows = conn.execute("SELECT DISTINCT topic FROM matches ORDER BY topic").fetchall()
        return [row[0] for row in rows]

    def match_counts(self, since: datetime) -> dict[str, int]:
        """Matches recorded since ``since``, per topic (topics without any are absent)."""
        with self._read("count matches") as conn:
            rows = conn.execute(
                "SELECT topic, count(*) FROM matches WHERE found_at >= ?"
                " GROUP BY topic ORDER BY topic",
                (to_text(since),),
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    # -- subscribers and deliveries ------------------------------------------------------------

    def add_subscriber(
        self, email: str, digest: str, topics: tuple[str, ...], now: datetime
    ) -> Subscriber:
        """Add a subscriber, or update the digest and topics of an existing address.

        The address is stripped and its domain lower-cased; topics are stripped, empty and
        repeated ones dropped. An existing subscriber keeps their id, cursor and ``created_at``
        (so alerts still start from when they first subscribed)."""
        email = normalise_email(email)
        kept = tuple(dict.fromkeys(t.strip() for t in topics if t.strip()))
        with self._write(f"add subscriber {email}") as conn:
            row = conn.execute(
                """
                INSERT INTO subscribers (email, digest, topics, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (email) DO UPDATE SET
                    digest = excluded.digest, topics = excluded.topics, status = 'active',
                    bounced_at = NULL, bounce_reason = NULL
                RETURNING id
                """,
                (email, digest, dump_strings(kept), to_text(now)),
            ).fetchone()
        return Subscriber(email=email, digest=digest, topics=kept, id=int(row[0]))

    def remove_subscriber(self, email: str) -> bool:
        """Remove a subscriber (and what was alerted to them); False when there was none.
        Their past deliveries stay, with the address."""
        email = normalise_email(email)
        with self._write(f"remove subscriber {email}") as conn:
            cur = conn.execute("DELETE FROM subscribers WHERE email = ?", (email,))
        return cur.rowcount > 0

    def subscribers(self, digest: str | None = None) -> list[Subscriber]:
        """Active subscribers (of one digest), by address."""
        with self._read("read subscribers") as conn:
            rows = conn.execute(
                "SELECT id, email, digest, topics FROM subscribers"
                " WHERE status = 'active' AND bounced_at IS NULL"
                " AND (:digest IS NULL OR digest = :digest)"
                " ORDER BY email",
                {"digest": digest},
            ).fetchall()
        return [
            Subscriber(
                email=row["email"],
                digest=row["digest"],
                topics=load_strings(row["topics"]),
                id=int(row["id"]),
            )
            for row in rows
        ]

    def digest_entries(
        self, subscriber: Subscriber, now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """Matched articles on the subscriber's topics (``subscriber.topics``; empty means
        every topic) with match ids above their digest cursor, newest found first, each
        article once with all its topics; and the highest match id considered (the current
        cursor when there is none), to hand to ``begin_delivery``.

        A subscriber never sent a digest (cursor 0, no sent digest; or not in the store, as
        for a preview) gets only matches found in the 7 days before ``now``; older ones are
        skipped for good (they are below the returned cursor)."""
        with self._read(f"read the digest of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            cursor = 0 if row is None else int(row["digest_cursor"])
            if row is not None:  # a digest still 'sending' (in flight, or cut off by a kill)
                # covers its matches: they must not go out again in another message (#8)
                cursor = max(cursor, _sending_digest_cursor(conn, int(row["id"])))
            window_start = None
            if cursor == 0 and (row is None or not _sent_a_digest(conn, int(row["id"]))):
                window_start = now - timedelta(days=entries.FIRST_DIGEST_DAYS)
            ids, highest = entries.digest_ids(
                conn, dump_strings(subscriber.topics), cursor, window_start
            )
            return entries.build_entries(conn, ids), highest

    def alert_entries(self, subscriber: Subscriber) -> list[DigestEntry]:
        """Articles with immediate-alert matches on the subscriber's topics (empty: every
        topic), found since they subscribed, never alerted to them yet; newest found first.
        Nothing for an address that is not a subscriber."""
        with self._read(f"read the alerts of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None:
                return []
            ids = entries.alert_ids(
                conn, int(row["id"]), dump_strings(subscriber.topics), row["created_at"]
            )
            return entries.build_entries(conn, ids)

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
        """Record a message about to be sent ('sending') and return its delivery id; for an
        alert, mark its articles alerted to the subscriber in the same transaction, so an
        article is alerted at most once whatever crash follows (a failed alert is not
        retried). A digest or alert needs a stored subscriber (LookupError otherwise, a bug);
        a confirmation may go to an address not stored yet."""
        with self._write(f"record a {kind} to {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None and kind != "confirm":
                raise LookupError(f"no subscriber {subscriber.email!r} (id {subscriber.id})")
            subscriber_id = None if row is None else int(row["id"])
            delivery_id = conn.execute(
                """
                INSERT INTO deliveries (subscriber_id, recipient, kind, message_id, article_ids,
                                        cursor, started_at, message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
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
            ).fetchone()[0]
            if kind == "alert":
                conn.executemany(
                    "INSERT INTO alerted (subscriber_id, article_id, delivery_id, alerted_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(subscriber_id, i, delivery_id, to_text(now)) for i in article_ids],
                )
        return int(delivery_id)

    def finish_delivery(
        self,
        delivery_id: int,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record the outcome: 'sent' when ``error`` is None, and a sent digest moves its
        subscriber's cursor to the delivery's (never backwards); else 'failed' with the error,
        the cursor unchanged, so the next digest covers the same matches again, and sent
        again at ``retry_at`` if one is given (see ``claim_retries``)."""
        with self._write(f"record the outcome of delivery {delivery_id}") as conn:
            row = conn.execute(
                "UPDATE deliveries SET status = ?, error = ?, finished_at = ?, retry_at = ?"
                " WHERE id = ? RETURNING kind, subscriber_id, cursor, channel_id",
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
                    "UPDATE subscribers SET digest_cursor = max(digest_cursor, ?) WHERE id = ?",
                    (row["cursor"], row["subscriber_id"]),
                )
            if error is None and row["channel_id"] is not None:
                channel_rows.delivered(conn, delivery_id)

    def claim_retries(self, now: datetime) -> list[Delivery]:
        """Failed deliveries whose retry time has come, marked 'sending' again (one attempt
        more) in the same transaction. A digest or alert whose subscriber was removed or has
        bounced is dropped instead (its retry cleared)."""
        with self._write("claim deliveries to retry") as conn:
            conn.execute(
                """
                UPDATE deliveries SET retry_at = NULL,
                    error = coalesce(error, '') || '; not retried: the subscriber is gone'
                WHERE retry_at IS NOT NULL AND retry_at <= :now AND kind != 'confirm'
                  AND channel_id IS NULL
                  AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = subscriber_id
                                  AND s.status = 'active' AND s.bounced_at IS NULL)
                """,
                {"now": to_text(now)},
            )
            rows = conn.execute(
                """
                UPDATE deliveries SET status = 'sending', retry_at = NULL,
                    attempts = attempts + 1, started_at = :now, finished_at = NULL
                WHERE retry_at IS NOT NULL AND retry_at <= :now
                RETURNING id, kind, recipient, message, attempts, subscriber_id, channel_id
                """,
                {"now": to_text(now)},
            ).fetchall()
        return [_delivery(row) for row in sorted(rows, key=lambda row: int(row["id"]))]

    def interrupted_deliveries(self) -> list[Delivery]:
        """Deliveries left 'sending' by a process that stopped before it recorded the outcome."""
        with self._read("read interrupted deliveries") as conn:
            rows = conn.execute(
                "SELECT id, kind, recipient, message, attempts, subscriber_id, channel_id"
                " FROM deliveries WHERE status = 'sending' ORDER BY id"
            ).fetchall()
        return [_delivery(row) for row in rows]

    def cover_digest(self, delivery_id: int) -> None:
        """Move the subscriber's digest cursor past a digest that may have gone out (a kill
        cut it off after it was handed over): the next digest starts after it, and its resend
        (the same Message-ID) is the only copy that may still go (issue #8)."""
        with self._write(f"move the digest cursor past delivery {delivery_id}") as conn:
            conn.execute(
                "UPDATE subscribers SET digest_cursor = max(digest_cursor, d.cursor)"
                " FROM (SELECT subscriber_id, cursor FROM deliveries"
                "       WHERE id = ? AND kind = 'digest') AS d"
                " WHERE subscribers.id = d.subscriber_id",
                (delivery_id,),
            )
            channel_rows.delivered(conn, delivery_id)

    def drop_retries(self, subscriber: Subscriber, kind: DeliveryKind, reason: str) -> int:
        """Clear the pending retries of a subscriber's messages of one kind (a new digest
        covers what a failed one held); how many were cleared."""
        with self._write(f"drop the retries of {subscriber.email}") as conn:
            row = _subscriber_row(conn, subscriber)
            if row is None:
                return 0
            cur = conn.execute(
                "UPDATE deliveries SET retry_at = NULL, error = coalesce(error, '') || '; ' || ?"
                " WHERE subscriber_id = ? AND kind = ? AND retry_at IS NOT NULL"
                # a digest the cursor has passed (cover_digest) is not covered by the next (#8)
                " AND NOT (kind = 'digest' AND cursor <= ?)",
                (reason, int(row["id"]), kind, int(row["digest_cursor"])),
            )
        return cur.rowcount

    def mark_bounced(self, email: str, reason: str, now: datetime) -> bool:
        """Stop mail to an address that failed permanently, until it subscribes again."""
        with self._write(f"mark {email} bounced") as conn:
            cur = conn.execute(
                "UPDATE subscribers SET bounced_at = ?, bounce_reason = ? WHERE email = ?",
                (to_text(now), reason, normalise_email(email)),
            )
        return cur.rowcount > 0

    def subscriber(self, email: str) -> tuple[Subscriber, str] | None:
        """The stored subscriber with this address (any status) and its status: "active",
        "pending" or "bounced"; None when there is none."""
        with self._read(f"read subscriber {email}") as conn:
            row = conn.execute(
                "SELECT id, email, digest, topics, status, bounced_at FROM subscribers"
                " WHERE email = ?",
                (normalise_email(email),),
            ).fetchone()
        if row is None:
            return None
        found = Subscriber(
            email=row["email"],
            digest=row["digest"],
            topics=load_strings(row["topics"]),
            id=int(row["id"]),
        )
        return found, "bounced" if row["bounced_at"] else str(row["status"])

    def confirmations_since(self, email: str, since: datetime) -> int:
        """Confirmation messages recorded for this address since ``since``."""
        with self._read(f"count confirmations to {email}") as conn:
            row = conn.execute(
                "SELECT count(*) FROM deliveries WHERE kind = 'confirm' AND recipient = ?"
                " AND started_at >= ?",
                (normalise_email(email), to_text(since)),
            ).fetchone()
        return int(row[0])

    # -- other channels (issue #7; the queries are in channels.py) ---------------------------

    def register_channel(self, digest: str, key: str, label: str, now: datetime) -> int:
        """The id of a digest's channel (known by ``key``), added when new."""
        with self._write(f"register channel {label}") as conn:
            return channel_rows.register(conn, digest, key, label, now)

    def channel_digest_entries(
        self, channel_id: int, topics: tuple[str, ...], now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """The channel's next digest, as ``digest_entries`` is a subscriber's."""
        with self._read(f"read the digest of channel {channel_id}") as conn:
            return channel_rows.digest_entries(conn, channel_id, topics, now)

    def channel_alert_entries(
        self, channel_id: int, topics: tuple[str, ...]
    ) -> tuple[list[DigestEntry], int]:
        """Articles with immediate matches not yet alerted to the channel, and the cursor."""
        with self._read(f"read the alerts of channel {channel_id}") as conn:
            return channel_rows.alert_entries(conn, channel_id, topics)

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
        same transaction (at most once, whatever crash follows)."""
        with self._write(f"record a {kind} to channel {channel_id}") as conn:
            return channel_rows.begin_delivery(
                conn, channel_id, kind, message_id, article_ids, cursor, now, message
            )

    def drop_channel_retries(self, channel_id: int, reason: str) -> int:
        """Clear the pending retries of the channel's digests that the next one covers."""
        with self._write(f"drop the retries of channel {channel_id}") as conn:
            return channel_rows.drop_retries(conn, channel_id, reason)

    # -- maintenance (issue #8; the work is in maintenance.py) -------------------------------

    def backup(self, target: Path) -> int:
        """Copy the database, consistent while others write, to ``target``; its size."""
        with sqlite_errors(self.path, f"back up to {target}"):
            return maintenance.backup(self._conn, self.path, target)

    def vacuum(self) -> maintenance.VacuumResult:
        """Rebuild the file without free pages; the sizes before and after."""
        with sqlite_errors(self.path, "vacuum the database"):
            return maintenance.vacuum(self._conn, self.path)

    def prune(self, cutoff: datetime) -> int:
        """Empty the text of articles found before ``cutoff`` that no feed file or pending
        digest shows (title, URL, dates and matches stay); how many were pruned."""
        with self._write("prune old article text") as conn:
            return maintenance.prune(conn, cutoff)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok", or SQLite's list of problems."""
        with self._read("check the database's integrity") as conn:
            return "\n".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))

    def last_delivery(self) -> tuple[datetime, str, str] | None:
        """When, to whom and what kind the last message was delivered (sent, not failed)."""
        with self._read("read the last delivery") as conn:
            row = conn.execute(
                "SELECT finished_at, recipient, kind FROM deliveries WHERE status = 'sent'"
                " ORDER BY finished_at DESC, id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return from_text(row["finished_at"]), row["recipient"], row["kind"]

    def pending_deliveries(self) -> list[tuple[str, str, int, datetime, str]]:
        """Messages waiting to be sent again, soonest first: kind, recipient, attempts made,
        when the next attempt is due, and why the last one failed (issue #8)."""
        with self._read("read the pending deliveries") as conn:
            rows = conn.execute(
                "SELECT kind, recipient, attempts, retry_at, error FROM deliveries"
                " WHERE retry_at IS NOT NULL ORDER BY retry_at, id"
            ).fetchall()
        return [
            (r["kind"], r["recipient"], r["attempts"], from_text(r["retry_at"]), r["error"] or "")
            for r in rows
        ]


# -- queries ---------------------------------------------------------------------------------


def _subscriber_row(conn: sqlite3.Connection, subscriber: Subscriber) -> sqlite3.Row | None:
    """The stored row of a subscriber: by id when the record has one, else by address."""
    key: int | str
    if subscriber.id:
        query, key = "SELECT * FROM subscribers WHERE id = ?", subscriber.id
    else:
        query, key = "SELECT * FROM subscribers WHERE email = ?", normalise_email(subscriber.email)
    row: sqlite3.Row | None = conn.execute(query, (key,)).fetchone()
    return row


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        kind=str(row["kind"]),
        recipient=str(row["recipient"]),
        message=bytes(row["message"] or b""),
        attempts=int(row["attempts"]),
        subscriber_id=None if row["subscriber_id"] is None else int(row["subscriber_id"]),
        channel_id=None if row["channel_id"] is None else int(row["channel_id"]),
    )


def _sending_digest_cursor(conn: sqlite3.Connection, subscriber_id: int) -> int:
    """The highest cursor of the subscriber's digests still 'sending' (0: none)."""
    row = conn.execute(
        "SELECT coalesce(max(cursor), 0) FROM deliveries"
        " WHERE subscriber_id = ? AND kind = 'digest' AND status = 'sending'",
        (subscriber_id,),
    ).fetchone()
    return int(row[0])


def _sent_a_digest(conn: sqlite3.Connection, subscriber_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM deliveries WHERE subscriber_id = ? AND kind = 'digest' AND status = 'sent'"
        " LIMIT 1",
        (subscriber_id,),
    ).fetchone()
    return row is not None


if TYPE_CHECKING:
    from monitor.store import Store

    def _is_a_store(store: SqliteStore) -> Store:  # mypy checks the class against the protocol
        return store
