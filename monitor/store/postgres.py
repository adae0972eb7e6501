"""The PostgreSQL store: the Store protocol over a database that several processes share.

Selected by ``[store] url = "postgresql://…"`` in monitor.toml (store.open_configured). The
Store protocol is synchronous and the daemon calls it from its one store thread
(runtime.Writer), so this uses psycopg 3's synchronous API with a small connection pool
(psycopg_pool): the pool checks a connection before handing it out, so after the server
restarts the next call gets a fresh connection instead of the dead one (docs/design.md says why
not the async API).

Transactions and concurrency (several workers on several machines write at once):

- every write method is one transaction (READ COMMITTED, row locks); every multi-query read
  one REPEATABLE READ, READ ONLY transaction, so it sees one snapshot, as SQLite's do;
- saving an article locks its URL and fingerprint first (postgres_articles.py): the same
  article saved by two workers at once is stored once;
- match ids are committed in id order (a lock around inserting matches), so a digest cursor
  (the highest match id delivered) never skips a match committed late under a lower id;
- ``claim_retries`` claims failed deliveries with ``FOR UPDATE SKIP LOCKED``: two processes
  claiming at once never get the same delivery.

Operational failures (server unreachable, wrong password, connection lost, database missing,
read-only) become StoreError naming ``postgresql://user@host:port/db`` (never the password);
constraint violations and SQL errors propagate, because they are bugs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.models import (
    Article,
    DigestEntry,
    FetchResult,
    Item,
    Match,
    Signatures,
    SourceState,
    Stored,
)
from monitor.store import ItemOutcome
from monitor.store import postgres_articles as articles
from monitor.store import postgres_entries as pg_entries
from monitor.store import postgres_schema as schema
from monitor.store.postgres_articles import Conn
from monitor.store.postgres_conn import describe, pg_errors
from monitor.store.postgres_deliveries import PgDeliveries
from monitor.store.rows import source_state as state_from_row
from monitor.store.rows import to_text, to_text_opt

__all__ = ["PostgresStore", "describe", "pg_errors"]

#: Rows fetched per query by articles_since, which may walk the whole table.
_BATCH = 200


class PostgresStore(PgDeliveries):
    """The Store protocol (monitor.store.Store) over one PostgreSQL database."""

    # -- sources -------------------------------------------------------------------------

    def source_state(self, source: str) -> SourceState:
        """The remembered validators and health of a source (all defaults if never polled)."""
        with self._query(f'read the state of source "{source}"') as conn:
            row = conn.execute("SELECT * FROM sources WHERE name = %s", (source,)).fetchone()
        return SourceState() if row is None else state_from_row(row)

    def record_poll(
        self,
        source: str,
        now: datetime,
        fetched: FetchResult | None,
        error: str | None,
        next_poll: datetime | None = None,
    ) -> None:
        """Remember one poll (SqliteStore.record_poll says what is kept), in one statement
        (an upsert, in autocommit: one round trip, where a transaction took four)."""
        doing = f'record a poll of source "{source}"'
        if error is not None:
            self._statement(
                doing,
                """
                    INSERT INTO sources (name, last_error, failures, last_poll, next_poll)
                    VALUES (%s, %s, 1, %s, %s)
                    ON CONFLICT (name) DO UPDATE SET
                        last_error = excluded.last_error, failures = sources.failures + 1,
                        last_poll = excluded.last_poll, next_poll = excluded.next_poll
                    """,
                (source, error, to_text(now), to_text_opt(next_poll)),
            )
            return
        ok = fetched is not None and fetched.status == "ok"
        keep = "excluded.{0}" if ok else "coalesce(excluded.{0}, sources.{0})"
        self._statement(
            doing,
            f"""
                INSERT INTO sources (name, etag, last_modified, body_hash, last_success,
                                     last_poll, failures, next_poll)
                VALUES (%s, %s, %s, %s, %s, %s, 0, %s)
                ON CONFLICT (name) DO UPDATE SET
                    etag = {keep.format("etag")},
                    last_modified = {keep.format("last_modified")},
                    body_hash = {keep.format("body_hash")},
                    last_success = excluded.last_success, last_poll = excluded.last_poll,
                    failures = 0, next_poll = excluded.next_poll
                """,
            (
                source,
                fetched.etag if fetched else None,
                fetched.last_modified if fetched else None,
                fetched.body_hash if fetched else None,
                to_text(now),
                to_text(now),
                to_text_opt(next_poll),
            ),
        )

    def sources_health(self) -> dict[str, SourceState]:
        """Every source ever polled, by name (in name order)."""
        with self._query("read the sources' health") as conn:
            found = conn.execute("SELECT * FROM sources ORDER BY name").fetchall()
        return {row["name"]: state_from_row(row) for row in found}

    # -- items and articles ----------------------------------------------------------------

    def unseen_items(self, source: str, items: list[Item]) -> list[Item]:
        """The items this source has not had remembered (by guid, else URL), in order; an
        item listed twice in ``items`` is returned once."""
        keys = [item.guid or item.url for item in items]
        with self._query(f'read the items of source "{source}"') as conn:
            seen = {
                row["key"]
                for row in conn.execute(
                    "SELECT key FROM items WHERE source = %s AND key = ANY(%s)", (source, keys)
                ).fetchall()
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
        """Remember items so that later polls skip them (see SqliteStore.remember_items); one
        statement, in autocommit."""
        with self._query(f'remember the items of source "{source}"') as conn:
            articles.remember(conn, source, items, outcome, now)

    def known_article(self, url: str, key: str | None = None) -> int | None:
        """The id of the stored article (or duplicate row) with this canonical URL, or else
        with this URL key, if any."""
        with self._query("look up an article") as conn:
            row = articles.find_url(conn, url, key)
        return None if row is None else int(row["id"])

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
        """Store an article and its matches, and remember the item, in one transaction
        (SqliteStore.save_article says how duplicates are linked)."""
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
        """The signatures of the originals found since ``since`` from other sources, oldest
        first (read per call: see store.signatures)."""
        with self._query("read recent signatures") as conn:
            return articles.recent_signatures(conn, source, since)

    def articles_since(self, since: datetime) -> Iterator[tuple[int, Article]]:
        """Stored articles (not duplicates) found since ``since``, newest found first, read
        in batches, each its own short query."""
        after: tuple[str, int] | None = None
        while True:
            with self._query("read stored articles") as conn:
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
            return articles.add_matches(conn, found, now)

    # -- what notify shows -------------------------------------------------------------------

    def recent_entries(self, topic: str | None = None, limit: int = 100) -> list[DigestEntry]:
        """The newest matched articles (on ``topic``, or on any), newest found first."""
        with self._read("read recent matches") as conn:
            return pg_entries.build_entries(conn, pg_entries.recent_ids(conn, topic, limit))

    def topics(self) -> list[str]:
        """Every topic with at least one match, sorted."""
        with self._query("read topics") as conn:
            rows = conn.execute(
                'SELECT topic FROM matches GROUP BY topic ORDER BY topic COLLATE "C"'
            ).fetchall()
        return [row["topic"] for row in rows]

    def match_counts(self, since: datetime) -> dict[str, int]:
        """Matches recorded since ``since``, per topic (topics without any are absent)."""
        with self._query("count matches") as conn:
            rows = conn.execute(
                "SELECT topic, count(*) AS n FROM matches WHERE found_at >= %s"
                ' GROUP BY topic ORDER BY topic COLLATE "C"',
                (to_text(since),),
            ).fetchall()
        return {row["topic"]: int(row["n"]) for row in rows}

    def prune(self, cutoff: datetime) -> int:
        """Empty the text of articles found before ``cutoff`` that no feed file or pending
        digest shows (title, URL, dates and matches stay); how many were pruned."""
        from monitor.store.maintenance import FEED_ENTRIES, PRUNED

        with self._write("prune old article text") as conn:
            shown = set(pg_entries.recent_ids(conn, None, FEED_ENTRIES))
            for topic in conn.execute("SELECT DISTINCT topic FROM matches").fetchall():
                shown.update(pg_entries.recent_ids(conn, topic["topic"], FEED_ENTRIES))
            row = conn.execute(
                "SELECT min(digest_cursor) AS low FROM subscribers WHERE status = 'active'"
            ).fetchone()
            if row is not None and row["low"] is not None:
                shown.update(
                    int(r["article_id"])
                    for r in conn.execute(
                        "SELECT DISTINCT article_id FROM matches WHERE id > %s", (row["low"],)
                    ).fetchall()
                )
            cur = conn.execute(
                "UPDATE articles SET text = '', reason = %s"
                " WHERE found_at < %s AND text != '' AND NOT (id = ANY(%s))",
                (PRUNED, to_text(cutoff), sorted(shown)),
            )
        return cur.rowcount

    def schema_version(self) -> int:
        """The database's stamped schema version."""
        with self._read("read the schema version") as conn:
            return schema.version(conn)

    def counts(self) -> dict[str, int]:
        """Rows per table, for `monitor db copy` and `monitor db status`."""
        with self._read("count rows") as conn:
            return _counts(conn)


def _counts(conn: Conn) -> dict[str, int]:
    found = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
        found[table] = 0 if row is None else int(row["n"])
    return found


#: The tables, parents before children (the order a copy fills them in).
TABLES = (
    "sources",
    "items",
    "articles",
    "matches",
    "subscribers",
    "channels",
    "deliveries",
    "alerted",
)

if TYPE_CHECKING:
    from monitor.store import Store

    def _is_a_store(store: PostgresStore) -> Store:  # mypy checks the class against the protocol
        return store
