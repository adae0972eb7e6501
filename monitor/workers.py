"""`monitor run --role scheduler|worker|web`: one installation over several processes (#9).

    scheduler ──defer──► procrastinate's job queue (PostgreSQL) ──fetch──► worker (any number)
      poll:<source>   every `every`; one job per poll of one source (DESIGN §1)
      digest:<name>   on its schedule;  retries: every minute;  maintain: daily
    worker: runs the jobs with the pipeline, against the shared PostgreSQL store
      a poll that matched defers one "alerts" job
    web: the pages and /metrics (with every worker and the queue's depth); the feed files
      are rewritten here from the store, since the workers may be on other machines

The locks that make it safe (procrastinate's ``lock``: no two jobs with one lock run at once;
``queueing_lock``: no two wait in the queue):

- ``source:<name>``: a source is never polled by two workers at once.
- ``outbox``: every job that sends mail (alerts, digests, retries) holds it, so only one
  worker sends at a time. Beside it each such job holds a PostgreSQL advisory lock of the same
  name for as long as it runs, which ends with the worker's session: a live worker taken for
  dead (its heartbeat late) still keeps its rescued job from running beside it, so no alert
  and no digest goes out twice (`monitor digest send --now` takes the same lock).
- Deliveries left 'sending' are resolved as interrupted only when no live process is sending
  (the store's outbox lock, postgres_conn.OUTBOX_LOCK): the web role's confirmations and a
  `digest send --now` are not cut short by a worker's recovery.

A worker that dies (kill -9, a lost machine) stops beating its heart; after ``[workers]
stalled_after`` any other worker puts its jobs back in the queue (procrastinate's
``get_stalled_jobs`` and ``retry_job``), and the lock it held is free again. A job whose end
was never recorded (the connection broke as it finished: PostgreSQL restarted) stays
"doing" under a worker that is alive and no longer runs it; that worker puts it back itself
(``Worker.orphans``), or its lock would hold back every later job of that source.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from monitor import pipeline, runtime
from monitor.config import Config, DigestConfig
from monitor.errors import ConfigError, StoreError
from monitor.log import event
from monitor.store import queue

if TYPE_CHECKING:
    from procrastinate import App

log = logging.getLogger("monitor.workers")

Role = Literal["all", "scheduler", "worker", "web"]
ROLES: tuple[Role, ...] = ("all", "scheduler", "worker", "web")

#: Task names: the scheduler defers by name, the workers register them.
POLL = "monitor.poll"
DIGEST = "monitor.digest"
ALERTS = "monitor.alerts"
RETRIES = "monitor.retries"
MAINTAIN = "monitor.maintain"
#: The lock of every job that sends mail.
OUTBOX = "outbox"
#: How often the web role looks for new matches to rewrite the feed files with.
FEEDS_EVERY = 10.0
#: How often the web role refreshes the workers and the queue depth for /metrics.
QUEUE_EVERY = 5.0
#: Ended jobs (failed, cancelled, aborted) stay in the queue this long, for a look at why.
JOBS_KEPT = timedelta(days=7)
#: A worker whose connection to PostgreSQL broke starts again after this many seconds.
RECONNECT_AFTER = 2.0


def database_url(config: Config) -> str:
    """The PostgreSQL database of ``[store]`` (with the password of ``password_env``, if
    any); ConfigError (exit 2) when the store is SQLite."""
    url = config.store.url
    if not url:
        raise ConfigError(
            f"{config.path}: store.url",
            'roles other than "all" need a PostgreSQL store shared by every process: '
            'set [store] url = "postgresql://…"',
        )
    password = config.store.password()
    if password:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(url, password=password)
    return url


def make_app(url: str) -> App:
    """A procrastinate app on the database at ``url`` (not opened)."""
    from procrastinate import App, PsycopgConnector

    # Every query procrastinate runs is one statement: in autocommit each is one round trip,
    # where the pool's default (a transaction per query) added a BEGIN and a COMMIT to each.
    # (Set by ``configure``: procrastinate's listener connects with the pool's kwargs and an
    # autocommit of its own, and would get two.)
    connector = PsycopgConnector(
        conninfo=url,
        min_size=1,
        max_size=8,
        configure=_autocommit,
        pool_factory=queue.job_pool,  # no check round trip before each query
    )
    return App(connector=connector)


async def _autocommit(conn: Any) -> None:
    await conn.set_autocommit(True)


def run(config: Config, role: Role) -> int:
    """`monitor run --role ROLE`: serve until SIGINT/SIGTERM; exit status 0."""
    from monitor import daemon

    if role == "all":
        return daemon.run(config)
    url = database_url(config)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        event(log, "role.starting", role=role, pid=os.getpid(), database=queue.where(url))
        return asyncio.run(_main(config, role, url))
    except KeyboardInterrupt:
        event(log, "role.stopped", role=role, during="start-up")
        return 0


async def _main(config: Config, role: Role, url: str) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await asyncio.to_thread(queue.ensure_schema, url)
    roles: dict[Role, Callable[[Config, str, asyncio.Event], Awaitable[None]]] = {
        "scheduler": run_scheduler,
        "worker": run_worker,
        "web": run_web,
    }
    await roles[role](config, url, stopping)
    event(log, "role.stopped", role=role, pid=os.getpid())
    return 0


def status_lines(config: Config, now: datetime) -> list[str]:
    """`monitor status` with a PostgreSQL store: every worker and the queue's depth."""
    found = queue.status(database_url(config), config.workers.stalled_after)
    alive = sum(worker.alive for worker in found.workers)
    lines = [
        f"workers: {alive} alive, {len(found.workers) - alive} stalled; queue: {found.depth}"
        f" waiting ({found.due} due), {found.running} running"
    ]
    for worker in found.workers:
        ago = max((now - worker.last_seen).total_seconds(), 0.0)
        state = "alive" if worker.alive else "STALLED (its jobs go to another worker)"
        lines.append(
            f"  worker {worker.id}: {state}, {worker.running} job(s) running,"
            f" last seen {ago:.0f}s ago"
        )
    return lines


# -- scheduler ----------------------------------------------------------------------------------


async def defer(app: App, task: str, *, lock: str, queueing_lock: str, **args: Any) -> bool:
    """Queue one job; False when one with the same ``queueing_lock`` is already waiting."""
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        await app.configure_task(task, lock=lock, queueing_lock=queueing_lock).defer_async(**args)
    except AlreadyEnqueued:
        return False
    return True


async def run_scheduler(config: Config, url: str, stopping: asyncio.Event) -> None:
    """Queue one job per due poll, digest, retry round and daily maintenance until stopped."""
    from procrastinate.exceptions import ConnectorException

    from monitor import scheduler

    app = make_app(url)

    async def queued(what: str, task: str, lock: str, key: str, **args: Any) -> None:
        try:
            if not await defer(app, task, lock=lock, queueing_lock=key, **args):
                event(log, "job.already_queued", logging.DEBUG, job=what)
        except ConnectorException as exc:  # the database is away: the next tick tries again
            event(log, "job.defer_failed", logging.ERROR, job=what, error=_cause(exc))

    async def poll(source: Any) -> None:
        name = source.name
        await queued(f"poll {name}", POLL, f"source:{name}", f"poll:{name}", source=name)

    async def digest(item: Any) -> None:
        name = item.name
        await queued(f"digest {name}", DIGEST, OUTBOX, f"digest:{name}", digest=name)

    async def retries() -> None:
        await queued("retries", RETRIES, OUTBOX, "retries")

    async def maintain() -> None:
        await queued("maintain", MAINTAIN, "maintain", "maintain")

    async def no_rules() -> None:
        """The scheduler runs no rules: the workers load and reload them."""

    async with app.open_async():
        jobs = scheduler.build(config, datetime.now(UTC), poll, digest, no_rules)
        jobs.add_job(retries, "interval", minutes=1, id="retries", coalesce=True)
        jobs.add_job(maintain, "interval", hours=24, id="maintain", coalesce=True)
        jobs.start()
        event(
            log,
            "scheduler.started",
            pid=os.getpid(),
            sources=len(config.sources),
            digests=len(config.digests),
        )
        try:
            await stopping.wait()
        finally:
            jobs.shutdown(wait=False)


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}".strip()


# -- worker -------------------------------------------------------------------------------------


class Worker:
    """One `monitor run --role worker` process: the tasks, run with the pipeline's flows."""

    def __init__(self, config: Config, url: str, services: runtime.Services) -> None:
        self.config = config
        self.url = url
        self.services = services
        self.app = make_app(url)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        #: The sources by name: Config.source walks the list, once per job (20,000 sources).
        self.sources = {source.name: source for source in config.sources}
        #: Held per source while it is polled (opened by ``run``).
        self.locks: queue.SourceLocks | None = None
        #: The ids of the jobs this process is running now (``_track``).
        self.running: set[int] = set()
        #: Jobs found "doing" under this worker but not running, at the last look.
        self.suspects: set[int] = set()
        self._register()

    def __repr__(self) -> str:
        return f"<Worker {self.name}>"

    def _register(self) -> None:
        app = self.app
        app.task(name=POLL)(self.poll)
        app.task(name=DIGEST)(self.digest)
        app.task(name=ALERTS)(self.alerts)
        app.task(name=RETRIES)(self.retries)
        app.task(name=MAINTAIN)(self.maintain)

    async def _boundary(self, name: str, work: Awaitable[None]) -> None:
        """The job boundary: a store failure is logged, a bug logged loudly; the worker goes on
        (the job is done either way: its next run comes from the scheduler)."""
        try:
            await work
        except StoreError as exc:
            event(log, "job.store_error", logging.ERROR, job=name, error=str(exc))
        except Exception:  # the job boundary: a bug is logged loudly, the worker goes on
            log.critical("job.crashed job=%s", name, exc_info=True)

    async def poll(self, source: str) -> None:
        await self._boundary(f"poll {source}", self._poll(source))

    async def _poll(self, name: str) -> None:
        services = self.services
        source = self.sources.get(name)
        if source is None:
            event(log, "poll.unknown_source", logging.ERROR, source=name, worker=self.name)
            return
        assert self.locks is not None
        async with self.locks.hold(f"source:{name}") as mine:
            if not mine:  # a live worker taken for dead still polls it: it finishes the job
                event(log, "poll.skipped", logging.WARNING, source=name, why="being polled")
                return
            now = datetime.now(UTC)
            state = await pipeline.poll_due(services, source, now)
            if state is None:  # a failing one backs off
                return
            result = await pipeline.guarded_poll(services, source, now, state)
        event(log, "job.polled", source=name, status=result.status, worker=self.name)
        if result.matches:
            await defer(self.app, ALERTS, lock=OUTBOX, queueing_lock="alerts")

    async def _outbox(self) -> None:
        """Resolve the deliveries a dead worker left 'sending' (this job holds the outbox
        lock, so no live process is sending)."""
        await pipeline.recover_deliveries(self.services, datetime.now(UTC))

    async def alerts(self) -> None:
        async def work() -> None:
            await self._outbox()
            sent = await pipeline.send_alerts(self.services, datetime.now(UTC))
            event(log, "job.alerted", messages=sent, worker=self.name)

        await self._boundary("alerts", self._sending(work))

    async def digest(self, digest: str) -> None:
        async def work() -> None:
            await self._outbox()
            await pipeline.send_digest(self.services, self.config.digest(digest), _now())

        await self._boundary(f"digest {digest}", self._sending(work))

    async def retries(self) -> None:
        async def work() -> None:
            await self._outbox()
            await pipeline.retry_deliveries(self.services, _now())

        await self._boundary("retries", self._sending(work))

    async def _sending(self, work: Callable[[], Awaitable[None]]) -> None:
        """``work`` with the outbox's advisory lock held (one sending job at a time, even
        when a live worker is taken for dead and its job rescued)."""
        assert self.locks is not None
        async with self.locks.wait(OUTBOX):
            await work()

    async def maintain(self) -> None:
        """Daily: retention in the store (``[monitor] keep``), and the queue's ended jobs
        older than ``JOBS_KEPT``: the successful ones are deleted as they end, the others
        (a poll that failed, one put back twice) would pile up over months unattended."""

        async def work() -> None:
            keep = self.config.monitor.keep
            if keep is not None:
                store = self.services.store
                pruned = await self.services.db(store.prune, _now() - keep)
                event(log, "store.pruned", articles=pruned, older_than=f"{keep.days}d")
            await self.app.job_manager.delete_old_jobs(
                nb_hours=int(JOBS_KEPT.total_seconds() // 3600),
                include_failed=True,
                include_cancelled=True,
                include_aborted=True,
            )
            event(log, "queue.pruned", older_than=f"{JOBS_KEPT.days}d")

        await self._boundary("maintain", work())

    async def rescue(self, own: int | None) -> int:
        """Put back in the queue the jobs of workers silent for ``stalled_after``; how many.

        Every worker does this; two doing it at once is harmless (the second finds the job
        no longer running). A stalled poll whose source already has a newer poll waiting is
        marked failed instead: the waiting one does the work. A worker never takes its own
        jobs (worker id ``own``) for stalled: it knows they run, however late its heartbeat."""
        manager = self.app.job_manager
        seconds = self.config.workers.stalled_after.total_seconds()
        rescued = 0
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            if own is not None and job.worker_id == own:
                continue
            if await self._put_back(job):  # else another worker rescued it first
                rescued += 1
                event(
                    log,
                    "job.rescued",
                    logging.WARNING,
                    job=job.call_string,
                    dead_worker=job.worker_id or "",
                    by=self.name,
                )
        return rescued

    async def _put_back(self, job: Any) -> bool:
        """Queue a running ``job`` again, or mark it failed when a newer job of its source
        waits (that one does the work); False when it is no longer running."""
        from procrastinate.exceptions import ConnectorException, UniqueViolation
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            await manager.finish_job(job, Status.FAILED, delete_job=False)
        except ConnectorException:
            return False
        return True

    async def orphans(self, own: int) -> int:
        """Put back in the queue the jobs the database has as running under this worker
        (``own``) that it does not run; how many.

        Their end was never recorded: the connection broke as the job finished (procrastinate
        then only logs the error), and no other worker takes them for stalled since this one's
        heartbeat is on time. A job is put back when found so at two looks in a row, a
        heartbeat apart: between a job's end and the record of it there are milliseconds.
        Putting back a job that had run is harmless: a poll again finds nothing new, a
        delivery is in the outbox once."""
        doing = await self.app.job_manager.list_jobs_async(status="doing", worker_id=own)
        found = {job.id: job for job in doing if job.id is not None and job.id not in self.running}
        again = [job for job_id, job in found.items() if job_id in self.suspects]
        self.suspects = set(found) - {job.id for job in again}
        put_back = 0
        for job in again:
            if await self._put_back(job):  # else it ended meanwhile after all
                put_back += 1
                event(log, "job.orphan_rescued", logging.WARNING, job=job.call_string, by=self.name)
        return put_back

    async def _track(self, call_next: Callable[[], Awaitable[Any]], context: Any, _: Any) -> Any:
        """procrastinate's worker middleware around every job: which ones run now."""
        job_id = context.job.id
        self.running.add(job_id)
        try:
            return await call_next()
        finally:
            self.running.discard(job_id)

    async def run(self, stopping: asyncio.Event) -> None:
        """Run jobs until ``stopping``; start again when the database connection breaks."""
        self.locks = queue.SourceLocks(self.url, self.config.workers.concurrency + 1)
        await self.locks.open()
        try:
            while not stopping.is_set():
                async with self.app.open_async():
                    await self._run_once(stopping)
                if not stopping.is_set():
                    event(
                        log, "worker.reconnecting", logging.WARNING, after=f"{RECONNECT_AFTER:g}s"
                    )
                    await _wait(stopping, RECONNECT_AFTER)
        finally:
            await self.locks.close()

    async def _run_once(self, stopping: asyncio.Event) -> None:
        from procrastinate.worker import Worker as JobWorker

        settings = self.config.workers
        worker: Any = JobWorker(  # procrastinate's Worker has untyped methods
            self.app,
            name=self.name,
            concurrency=settings.concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=settings.heartbeat.total_seconds(),
            stalled_worker_timeout=settings.stalled_after.total_seconds(),
            shutdown_graceful_timeout=self.config.monitor.shutdown_timeout.total_seconds(),
            delete_jobs="successful",  # the queue keeps failures only: 20,000 polls a round
            worker_middleware=[self._track],
        )
        running = asyncio.create_task(worker.run(), name="jobs")
        side = asyncio.create_task(self._side(worker, stopping, running), name="rescue")
        try:
            await asyncio.wait({running, asyncio.ensure_future(stopping.wait())}, **_FIRST)
        finally:
            side.cancel()
            worker.stop()
            await asyncio.gather(running, side, return_exceptions=True)

    async def _side(
        self, worker: Any, stopping: asyncio.Event, running: asyncio.Task[None]
    ) -> None:
        """Say which worker this is once registered; rescue stalled jobs; reload rules."""
        from procrastinate.exceptions import ConnectorException

        from monitor.daemon import rules_signature

        announced = False
        signature = rules_signature(self.config.monitor.rules_dir)
        every = self.config.workers.heartbeat.total_seconds()
        while not stopping.is_set() and not running.done():
            if not announced and worker.worker_id is not None:
                announced = True
                event(log, "worker.started", worker_id=worker.worker_id, worker=self.name)
            try:
                await self.rescue(worker.worker_id)
                if worker.worker_id is not None:
                    await self.orphans(worker.worker_id)
            except ConnectorException as exc:  # the database is away; procrastinate reconnects
                event(log, "worker.rescue_failed", logging.WARNING, error=_cause(exc))
            now = rules_signature(self.config.monitor.rules_dir)
            if now != signature:
                signature = now
                await self._reload_rules()
            await _wait(stopping, min(every, 2.0) if not announced else every)

    async def _reload_rules(self) -> None:
        rules = await asyncio.to_thread(runtime.load_rules, self.config)
        self.services.rules = lambda: rules
        event(log, "rules.loaded", rules=len(rules.rules), errors=len(rules.errors))


_FIRST: dict[str, Any] = {"return_when": asyncio.FIRST_COMPLETED}


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stopping`` is set, whichever comes first."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return


def _now() -> datetime:
    return datetime.now(UTC)


async def run_worker(config: Config, url: str, stopping: asyncio.Event) -> None:
    """Run polls, digests and alerts from the queue until stopped."""
    async with runtime.open_services(config) as services:
        if stopping.is_set():
            return
        worker = Worker(config, url, services)
        await worker.run(stopping)


def send_digest_now(config: Config, digest: DigestConfig) -> pipeline.DigestResult:
    """`monitor digest send --now` on a PostgreSQL store: as a worker's digest job does it,
    with the outbox lock held (no worker sends meanwhile), deliveries a dead process left
    'sending' resolved first (a cut-off digest is sent again, not taken for sent), and
    retries that are due sent."""
    url = database_url(config)

    async def go() -> pipeline.DigestResult:
        locks = queue.SourceLocks(url, 1)
        await locks.open()
        try:
            async with runtime.open_services(config) as services, locks.wait(OUTBOX):
                now = _now()
                await pipeline.recover_deliveries(services, now)
                await pipeline.retry_deliveries(services, now)
                return await pipeline.send_digest(services, digest, now)
        finally:
            await locks.close()

    return asyncio.run(go())


# -- web ----------------------------------------------------------------------------------------


async def run_web(config: Config, url: str, stopping: asyncio.Event) -> None:
    """Serve the pages and /metrics; rewrite the feed files when new matches are stored."""
    from monitor.metrics import Metrics
    from monitor.web import serve

    async with runtime.open_services(config) as services:
        services.metrics = Metrics()
        async with serve(config, services):
            event(log, "web.started", listen=f"{config.web.host}:{config.web.port}")
            await asyncio.gather(
                _keep_feeds(services, stopping), _observe_queue(services, url, stopping)
            )


async def _keep_feeds(services: runtime.Services, stopping: asyncio.Event) -> None:
    """Rewrite state/feeds/ when the newest matched articles change."""
    seen: list[int] | None = None
    while not stopping.is_set():
        try:
            newest = await services.db(services.store.recent_entries, None, 100)
            ids = [entry.article_id for entry in newest]
            if ids != seen:
                await pipeline.write_feeds(services, _now())
                seen = ids
        except StoreError as exc:  # the database is away: try again on the next round
            event(log, "feeds.store_error", logging.ERROR, error=str(exc))
        await _wait(stopping, FEEDS_EVERY)


class QueueCollector:
    """/metrics of the web role: every worker and the queue's depth, as last read.

        monitor_workers{state}                       alive | stalled (not yet pruned)
        monitor_worker_up{worker}                    1 alive, 0 stalled
        monitor_worker_jobs_running{worker}          jobs it runs now
        monitor_worker_last_seen_timestamp_seconds{worker}
        monitor_queue_jobs{state}                    waiting | due | running

    ``collect`` only reads what ``refresh`` stored, so a scrape never waits on the database.
    """

    def __init__(self) -> None:
        self.status: queue.QueueStatus | None = None

    def __repr__(self) -> str:
        return f"<QueueCollector {self.status!r}>"

    def refresh(self, url: str, stalled_after: timedelta) -> None:
        self.status = queue.status(url, stalled_after)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        found = self.status
        if found is None:
            return
        alive = sum(worker.alive for worker in found.workers)
        workers = GaugeMetricFamily("monitor_workers", "Registered workers.", labels=["state"])
        workers.add_metric(["alive"], alive)
        workers.add_metric(["stalled"], len(found.workers) - alive)
        up = GaugeMetricFamily("monitor_worker_up", "1: heartbeat on time.", labels=["worker"])
        running = GaugeMetricFamily(
            "monitor_worker_jobs_running", "Jobs the worker runs now.", labels=["worker"]
        )
        seen = GaugeMetricFamily(
            "monitor_worker_last_seen_timestamp_seconds",
            "When the worker's heartbeat was last recorded.",
            labels=["worker"],
        )
        for worker in found.workers:
            label = [str(worker.id)]
            up.add_metric(label, int(worker.alive))
            running.add_metric(label, worker.running)
            seen.add_metric(label, worker.last_seen.timestamp())
        jobs = GaugeMetricFamily("monitor_queue_jobs", "Jobs in the queue.", labels=["state"])
        jobs.add_metric(["waiting"], found.depth)
        jobs.add_metric(["due"], found.due)
        jobs.add_metric(["running"], found.running)
        yield from (workers, up, running, seen, jobs)


async def _observe_queue(services: runtime.Services, url: str, stopping: asyncio.Event) -> None:
    """Refresh the workers and the queue's depth shown at /metrics."""
    collector = QueueCollector()
    if services.metrics is not None:
        services.metrics.registry.register(collector)
    stalled_after = services.config.workers.stalled_after
    while not stopping.is_set():
        try:
            await asyncio.to_thread(collector.refresh, url, stalled_after)
        except StoreError as exc:
            event(log, "queue.unreadable", logging.WARNING, error=str(exc))
        await _wait(stopping, QUEUE_EVERY)
