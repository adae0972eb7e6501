"""The PostgreSQL store's connection: the pool, transactions and error wrapping.

The base class of PostgresStore (postgres.py), shared by the modules its methods live in
(postgres.py, postgres_deliveries.py) so that each stays under 500 lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from monitor.errors import StoreConnectError, StoreError
from monitor.store import postgres_schema as schema
from monitor.store.postgres_articles import Conn

#: The advisory lock of the outbox: every process holds it shared while it has a delivery
#: 'sending'; ``interrupted_deliveries`` reads the 'sending' rows only once it holds it
#: exclusively, that is when no live process is in the middle of a send. A session's advisory
#: locks end with the session, so a process that dies (kill -9, a lost machine) lets go at once.
OUTBOX_LOCK = 0x7072_6D6F_6E02


def describe(url: str) -> str:
    """``postgresql://user@host:port/dbname`` for messages: what the URL names, no password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


@contextmanager
def pg_errors(where: str, doing: str) -> Iterator[None]:
    """Turn what a user can act on into ``StoreError(where, "cannot <doing>")``: no server,
    refused login, lost connection, a pool that cannot connect, a read-only transaction. SQL
    and constraint errors are bugs and propagate."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
        raise StoreError(where, f"cannot {doing}") from exc
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise StoreError(where, f"cannot {doing}: the store is open read-only") from exc


class PgConnection:
    """A pool of connections to one database, checked against the schema when opened."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        readonly: bool = False,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
    ) -> None:
        """Connect to ``url`` (``password`` from the environment, if not in the URL), check
        the schema version and, unless ``readonly``, migrate. StoreError when the server
        cannot be reached or refuses the login; SchemaVersionError when a newer press-monitor
        wrote the database."""
        self.where = describe(url)
        #: The URL as given; it may hold the password, so it is never shown (``where`` is).
        self.url = url
        #: The Store protocol's ``path``: here what the URL names (no password), for messages.
        self.path = Path(self.where)
        self.readonly = readonly
        kwargs: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout))}
        if password is not None:
            kwargs["password"] = password
        if readonly:
            kwargs["options"] = "-c default_transaction_read_only=on"
        self._connect_timeout = connect_timeout
        self._kwargs = kwargs
        self._idle_since: dict[int, float] = {}
        #: The session that holds OUTBOX_LOCK (opened with the first delivery), the ids of
        #: this process's deliveries now 'sending', and the begins under way.
        self._outbox: Conn | None = None
        self._outbox_mutex = threading.Lock()
        self._in_flight: set[int] = set()
        self._beginning = 0
        self._outbox_held = False
        try:
            first = psycopg.connect(url, autocommit=True, row_factory=dict_row, **kwargs)
        except psycopg.OperationalError as exc:
            raise StoreConnectError(self.where, "cannot connect to the database") from exc
        except psycopg.ProgrammingError:  # its message may quote the URL, password included
            raise StoreConnectError(self.where, "not a valid PostgreSQL URL") from None
        try:
            with pg_errors(self.where, "open the database"):
                if readonly:
                    schema.check_version(first, self.where, readonly=True)
                else:
                    schema.migrate(first, self.where)
        finally:
            first.close()
        self._pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True, **kwargs},
            check=self._check,
            timeout=connect_timeout,
            reconnect_timeout=0,  # keep trying while the server is away; calls fail meanwhile
            open=True,
            name="monitor-store",
        )

    #: A connection back in the pool for less than this is handed out again unchecked: under
    #: load each call saves a round trip, and a connection that died in that moment fails one
    #: call with StoreError (and is replaced) like any connection lost mid-call.
    CHECK_IDLE = 2.0

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        """A pooled connection, its return time noted for ``_check``.

        Noted here, as the block ends, not in a ``reset`` callback of the pool: with one, the
        pool hands every returned connection to its worker thread, so each store call's
        connection went back one thread hop (and a wait for the GIL) later; measured with 4
        polls in flight, a store call took 1.3 to 4.5 ms on average for 0.01 to 0.3 ms of server
        time (bench/workers_bench.py, 1,000 sources)."""
        with self._pool.connection() as conn:
            try:
                yield conn
            finally:
                self._idle_since[id(conn)] = time.monotonic()

    def _check(self, conn: Conn) -> None:
        """The pool's check before handing out ``conn``: one round trip when it has been idle,
        so that after a server restart a dead connection is replaced, not used."""
        returned = self._idle_since.pop(id(conn), None)
        if returned is None or time.monotonic() - returned > self.CHECK_IDLE:
            psycopg_pool.ConnectionPool.check_connection(conn)

    def close(self) -> None:
        """Close the pool's connections; closing twice is harmless."""
        self._pool.close()
        with self._outbox_mutex:
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None

    # -- the outbox lock ------------------------------------------------------------------

    def _outbox_session(self) -> Conn:
        """The connection whose session holds OUTBOX_LOCK; a new one if it broke (the lock
        went with the old session)."""
        if self._outbox is None or self._outbox.closed or self._outbox.broken:
            self._outbox = psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row, **self._kwargs
            )
            self._outbox_held = False
        return self._outbox

    @contextmanager
    def _sending(self, doing: str) -> Iterator[set[int]]:
        """Around recording deliveries as 'sending': OUTBOX_LOCK held shared before they are
        written (so an exclusive holder never sees them half-begun); the block adds their
        ids to the yielded set, and the lock is kept until the last is finished."""
        added: set[int] = set()
        with self._outbox_mutex, pg_errors(self.where, doing):
            conn = self._outbox_session()
            if not self._outbox_held:
                conn.execute("SELECT pg_advisory_lock_shared(%s)", (OUTBOX_LOCK,))
                self._outbox_held = True
            self._beginning += 1
        ok = False
        try:
            yield added
            ok = True
        finally:
            with self._outbox_mutex:
                self._beginning -= 1
                if ok:  # committed: 'sending' until finished (else rolled back: nothing)
                    self._in_flight.update(added)
                self._let_go()

    def _finished(self, delivery_id: int) -> None:
        """A delivery of this process is no longer 'sending'."""
        with self._outbox_mutex:
            self._in_flight.discard(delivery_id)
            self._let_go()

    def _let_go(self) -> None:
        """Release OUTBOX_LOCK when nothing of this process is 'sending' (mutex held)."""
        if self._in_flight or self._beginning or not self._outbox_held:
            return
        conn = self._outbox
        self._outbox_held = False
        if conn is not None and not conn.closed and not conn.broken:
            try:
                conn.execute("SELECT pg_advisory_unlock_shared(%s)", (OUTBOX_LOCK,))
            except psycopg.OperationalError:  # the session is gone, and its lock with it
                conn.close()

    @contextmanager
    def _no_sender(self, doing: str) -> Iterator[Conn | None]:
        """OUTBOX_LOCK held exclusively for the block: yields the connection when no other
        live process has a delivery 'sending' (this one's own are in ``_in_flight``), else
        None."""
        with self._outbox_mutex, pg_errors(self.where, doing):
            conn = self._outbox_session()
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (OUTBOX_LOCK,)).fetchone()
            if row is None or not row["got"]:
                yield None
                return
            try:
                yield conn
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (OUTBOX_LOCK,))

    def __repr__(self) -> str:
        try:
            with self._read("count articles") as conn:
                row = conn.execute(
                    "SELECT count(*) AS n FROM articles WHERE duplicate_of IS NULL"
                ).fetchone()
            count = "?" if row is None else str(row["n"])
        except StoreError:  # closed, or the server is away: a repr must not raise
            count = "?"
        return f"<{type(self).__name__} path={self.path} articles={count}>"

    @contextmanager
    def _write(self, doing: str) -> Iterator[Conn]:
        """One write transaction, StoreError on operational failure, rolled back on any."""
        with self._transaction(doing, "BEGIN") as conn:
            yield conn

    @contextmanager
    def _read(self, doing: str) -> Iterator[Conn]:
        """One read-only transaction: every query inside sees the same snapshot."""
        with self._transaction(doing, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") as conn:
            yield conn

    @contextmanager
    def _query(self, doing: str) -> Iterator[Conn]:
        """A connection in autocommit mode, for reads of one statement (their own snapshot):
        no BEGIN and COMMIT round trips."""
        with pg_errors(self.where, doing), self._connection() as conn:
            yield conn

    @contextmanager
    def _opened_with(self, sql: str, params: Any = None) -> Iterator[Conn]:
        """A pooled connection on which ``sql`` has just run.

        A connection that died while idle in the pool (the server restarted) fails at that
        first statement, before anything was done: the pool's idle connections are then
        checked and the statement runs once more on a live one, so a restart costs the
        caller nothing."""
        for attempt in range(2):
            with self._connection() as conn:
                try:
                    conn.execute(sql, params)
                except psycopg.OperationalError:
                    if attempt or not conn.broken:
                        raise
                else:
                    yield conn
                    return
            self._pool.check()

    def _statement(self, doing: str, sql: str, params: Any) -> None:
        """One write statement in autocommit (its own transaction: one round trip), run again
        on a live connection when the pool's was dead (``_opened_with``)."""
        with pg_errors(self.where, doing), self._opened_with(sql, params):
            pass

    @contextmanager
    def _transaction(self, doing: str, begin: str) -> Iterator[Conn]:
        """BEGIN on a pooled connection (a live one: ``_opened_with``), COMMIT when the block
        ends, ROLLBACK on any error."""
        with pg_errors(self.where, doing), self._opened_with(begin) as conn:
            try:
                yield conn
            except BaseException:
                if not conn.broken:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
