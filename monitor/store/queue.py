"""The job queue's tables (procrastinate's, in the PostgreSQL database), read and set up.

Workers, the scheduler and the web role share one PostgreSQL database with the store (issue
#9). procrastinate owns its tables and runs its own queries; the few reads press-monitor makes
of them for `monitor status` and ``/metrics`` (the workers and their heartbeats, the queue's
depth) live here, so that SQL stays in ``store/`` (STYLE §1.3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.errors import StoreConnectError, StoreError
from monitor.log import event

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("monitor.store.queue")

#: Held while the queue's tables are created, so that roles starting together create them once.
_SCHEMA_LOCK = 0x706D_7130  # "pmq0"

#: Indexes of ours on procrastinate's tables, made with them and on databases made before.
#: procrastinate_fetch_job_v2 skips a job whose lock another job holds or waits for, with
#: ``NOT EXISTS (… other_jobs.lock = jobs.lock AND status todo/doing …)``; the only index
#: procrastinate gives that check is on (id, lock), so each check read the whole index.
#: procrastinate-org/procrastinate#393 and #1242 report the same query.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS monitor_jobs_lock_idx ON procrastinate_jobs (lock)"
    " WHERE status IN ('todo', 'doing')",
)
#: procrastinate's job fetch function, planned without sorts (see ensure_schema).
_FETCH_JOB = "procrastinate_fetch_job_v2(character varying[], bigint)"


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker process as the queue knows it."""

    #: procrastinate's id of the worker (its log lines say ``worker.started worker_id=…``).
    id: int
    #: When it last said it was alive.
    last_seen: datetime
    #: Whether it said so within ``[workers] stalled_after``.
    alive: bool
    #: Jobs it is running now.
    running: int


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The workers and the jobs waiting for them."""

    workers: tuple[WorkerStatus, ...]
    #: Jobs waiting to run ('todo'), due now or later.
    depth: int
    #: Of those, jobs whose time has come.
    due: int
    #: Jobs running ('doing'), on live or dead workers.
    running: int


def where(url: str) -> str:
    """The database a URL names, without its password: ``postgresql://user@host:port/db``."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # unreadable: shown as nothing more than its kind
        return "postgresql://…"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


@contextmanager
def _connect(url: str, doing: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection; StoreConnectError (a configuration problem, exit status 2) when the
    server cannot be reached or refuses the login, StoreError when it fails later."""
    import psycopg

    try:
        conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:  # unreachable, refused, wrong password
        raise StoreConnectError(where(url), f"cannot connect to the database to {doing}") from exc
    except psycopg.ProgrammingError:  # its message may quote the URL, password included
        raise StoreConnectError(where(url), "not a valid PostgreSQL URL") from None
    with conn:
        try:
            yield conn
        except psycopg.OperationalError as exc:  # the connection broke, the server restarted
            raise StoreError(where(url), f"cannot {doing}") from exc


def job_pool(**kwargs: Any) -> AsyncConnectionPool[Any]:
    """procrastinate's connection pool (its connector's ``pool_factory``), checking a
    connection before handing it out only when it has been idle, as the store's pool does
    (PgConnection.CHECK_IDLE).

    procrastinate's own pool checks every connection, a round trip (an empty query) before
    each of its queries: one more for each job fetch, job finish and defer. A connection
    that died within the last seconds (a server restart) fails its query instead; the
    worker then starts its job loop again (``worker.reconnecting``)."""
    from psycopg_pool import AsyncConnectionPool

    from monitor.store.postgres_conn import PgConnection

    returned: dict[int, float] = {}

    class JobPool(AsyncConnectionPool[Any]):
        async def putconn(self, conn: Any) -> None:
            returned[id(conn)] = time.monotonic()
            await super().putconn(conn)

    async def check(conn: Any) -> None:
        at = returned.pop(id(conn), None)
        if at is None or time.monotonic() - at > PgConnection.CHECK_IDLE:
            await AsyncConnectionPool.check_connection(conn)

    kwargs["check"] = check
    return JobPool(**kwargs)


def ensure_schema(url: str) -> bool:
    """Create procrastinate's tables in the database unless they are there, and our indexes on
    them unless they are there; True if the tables were created."""
    from procrastinate.schema import SchemaManager

    with _connect(url, "set up the job queue") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            created = not (row is not None and row[0])
            if created:
                conn.execute(SchemaManager.get_schema())
            _tune(conn)
            return created
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def _tune(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Our index and the fetch function's planner settings (see _INDEXES); a warning, not a
    failure, when this user may not change procrastinate's objects or the function is gone.

    The fetch wants the head of the queue: the first waiting job in (priority, id) order whose
    lock is free, read from procrastinate's index in that order. With statistics taken while
    the table was near empty (a new queue, or any queue between autovacuum's visits) the
    planner sorted every waiting job instead and checked each one's lock: measured with
    bench/workers_bench.py --stats at 2,000 polls queued, 18.7 ms and 10,080 buffers per fetch
    (37 s of the run's 59, growing with the queue); with the index 1.3 ms and 1,494 buffers;
    with enable_sort off too, 0.37 ms and 51. The query was also planned again at every fetch
    (a custom plan for its parameters): one generic plan, made once per session, took the
    fetch from 0.85 to 0.37 ms at 20,000 queued jobs (in a loop of fetch and finish). Both
    apply to this one function only, and are set again at every start (a procrastinate
    upgrade that redefines the function drops them; tests/unit/test_store_postgres.py checks
    they are there and the plan it gets)."""
    import psycopg

    settings = ["enable_sort=off", "plan_cache_mode=force_generic_plan"]
    row = conn.execute(
        "SELECT to_regclass('monitor_jobs_lock_idx') IS NOT NULL AND coalesce("
        " (SELECT proconfig @> %s::text[] FROM pg_proc WHERE oid = to_regprocedure(%s)), false)",
        (settings, _FETCH_JOB),
    ).fetchone()
    if row is not None and row[0]:  # as a start before left it (which a non-owner may not do)
        return
    try:
        for statement in _INDEXES:
            conn.execute(statement)
        row = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (_FETCH_JOB,)).fetchone()
        if row is None or not row[0]:  # a procrastinate release that renamed it
            why = "not in this procrastinate version; fetches may slow down with the queue"
        else:
            conn.execute(
                f"ALTER FUNCTION {_FETCH_JOB} SET "
                + " SET ".join(setting.replace("=", " = ") for setting in settings)
            )
            return
    except psycopg.errors.InsufficientPrivilege:
        why = "this database user does not own procrastinate's tables; fetches may be slow"
    event(log, "queue.fetch_not_tuned", logging.WARNING, function=_FETCH_JOB, why=why)


def status(url: str, stalled_after: timedelta) -> QueueStatus:
    """Every registered worker (alive or not yet pruned), and the queue's depth."""
    with _connect(url, "read the job queue") as conn:
        workers = conn.execute(
            """
            SELECT w.id, w.last_heartbeat,
                   w.last_heartbeat >= now() - %s AS alive,
                   count(j.id) AS running
              FROM procrastinate_workers w
              LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing'
             GROUP BY w.id, w.last_heartbeat
             ORDER BY w.id
            """,
            (stalled_after,),
        ).fetchall()
        counts = conn.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'todo'),
                   count(*) FILTER (WHERE status = 'todo'
                                    AND (scheduled_at IS NULL OR scheduled_at <= now())),
                   count(*) FILTER (WHERE status = 'doing')
              FROM procrastinate_jobs
             WHERE status IN ('todo', 'doing')
            """
        ).fetchone()
    assert counts is not None
    depth, due, running = counts
    return QueueStatus(
        workers=tuple(
            WorkerStatus(id_, last, bool(alive), jobs) for id_, last, alive, jobs in workers
        ),
        depth=depth,
        due=due,
        running=running,
    )


class SourceLocks:
    """PostgreSQL advisory locks, one per source being polled, held on a pooled connection.

    procrastinate's job lock keeps two polls of a source apart as long as heartbeats are on
    time; a live worker taken for dead (its heartbeat late on an overloaded machine) would
    have its poll run again beside it. This lock holds in that case too: it lives exactly as
    long as the session of the worker that polls, and dies with it (a kill -9 closes the
    socket, and PostgreSQL ends the session).
    """

    def __init__(self, url: str, size: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.url = url
        self.pool: AsyncConnectionPool = AsyncConnectionPool(
            url, min_size=1, max_size=size, open=False, kwargs={"autocommit": True}
        )

    def __repr__(self) -> str:
        return f"<SourceLocks {where(self.url)}>"

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def wait(self, key: str) -> AsyncIterator[None]:
        """Take the lock ``key``, waiting while another session holds it; let go after."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self.pool.connection() as conn:
                await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
                try:
                    yield
                finally:
                    if not conn.broken:
                        await conn.execute(
                            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,)
                        )
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreError(where(self.url), f"cannot hold the lock {key}") from exc

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        """Try to take the lock ``key``; yield whether this process holds it now."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
                )
                row = await cursor.fetchone()
                held = bool(row and row[0])
                try:
                    yield held
                finally:
                    if held:
                        await conn.execute(
                            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,)
                        )
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # A broken session has lost its locks with it: nothing is left held.
            raise StoreError(where(self.url), f"cannot hold the lock {key}") from exc
