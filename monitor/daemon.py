"""`monitor run`: the event loop, signals, start, stop, drain, and the shutdown summary.

    lock state/ ─► signal handlers ─► open services ─► scheduler + web ─► wait for a signal
    ─► stop scheduling ─► drain in-flight jobs (shutdown_timeout) ─► cancel the rest ─► summary

SIGINT/SIGTERM at any moment, start-up included, stops it with exit status 0 (DESIGN §9).
SIGHUP reloads the rules and the templates (a template set that fails to load is refused).
A second instance on the same state directory refuses to start; the lock is an flock, so it
dies with its holder and a kill -9 never blocks a restart.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from monitor import notify, pipeline, rulestatus, runtime, scheduler
from monitor.config import Config, DigestConfig, SourceConfig
from monitor.errors import MonitorError, StoreError, TemplateError
from monitor.log import event
from monitor.metrics import Metrics

if TYPE_CHECKING:
    from monitor.match.rules import RuleFiles, RuleSet

log = logging.getLogger("monitor.daemon")


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``state/monitor.pid``; refuse when another process holds it."""
    path = state_dir / "monitor.pid"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = path.open("a+", encoding="ascii")
    except OSError as exc:  # read-only, full, not ours: nothing could be stored; say so, exit 1
        raise StoreError(
            str(path), "cannot write the lock file (the state directory must be writable)"
        ) from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise MonitorError(
                str(state_dir), f"another `monitor run` (PID {pid}) is using this state directory"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


class Daemon:
    """One running `monitor run`: its jobs in flight and its counters."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.counts: Counter[str] = Counter()
        self.services: runtime.Services | None = None
        self._rules_signature: tuple[tuple[str, int, int], ...] = ()
        #: The rule files, each broken one keeping its last good version (made in run()).
        self.rule_files: RuleFiles | None = None
        #: Held while rules load: the watcher and a SIGHUP must not load them side by side.
        self._rules_lock = asyncio.Lock()
        #: This daemon's Prometheus registry, served at /metrics (issue #8).
        self.metrics = Metrics()
        #: SIGHUP reloads under way.
        self.reloads: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        counts = " ".join(f"{key}={value}" for key, value in sorted(self.counts.items()))
        return f"<Daemon in_flight={len(self.tasks)} {counts}>"

    async def job(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run one job tracked for draining; the boundary for unexpected exceptions."""
        if self.stopping.is_set():
            work.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.metrics.in_flight.inc()
        try:
            await work
        except StoreError as exc:  # locked, full, read-only: logged; the next run tries again
            self.counts["store_errors"] += 1
            event(log, "job.store_error", logging.ERROR, job=name, error=str(exc))
        except Exception:  # the job boundary: a bug is logged loudly, the daemon goes on
            self.counts["crashed"] += 1
            log.critical("job.crashed job=%s", name, exc_info=True)
        finally:
            self.metrics.in_flight.dec()
            self.tasks.discard(task)

    async def poll(self, source: SourceConfig) -> None:
        await self.job(f"poll {source.name}", self._poll(source))

    async def _poll(self, source: SourceConfig) -> None:
        assert self.services is not None
        now = datetime.now(UTC)
        state = await pipeline.poll_due(self.services, source, now)
        if state is None:  # a failing source backs off
            self.counts["polls_deferred"] += 1
            self.metrics.polls.labels("deferred").inc()
            return
        started = asyncio.get_running_loop().time()
        result = await pipeline.guarded_poll(self.services, source, now, state)
        self.metrics.poll_done(result, asyncio.get_running_loop().time() - started)
        self.counts[f"polls_{result.status}"] += 1
        self.counts["articles"] += result.new_articles
        self.counts["matches"] += sum(result.matches.values())
        await pipeline.after_polls(self.services, [result], now)

    async def digest(self, digest: DigestConfig) -> None:
        await self.job(f"digest {digest.name}", self._digest(digest))

    async def _digest(self, digest: DigestConfig) -> None:
        assert self.services is not None
        result = await pipeline.send_digest(self.services, digest, datetime.now(UTC))
        self.counts["mails_sent"] += result.sent
        self.counts["mails_failed"] += result.failed
        self.counts["posts_sent"] += result.posted  # other channels (#7)
        self.counts["posts_failed"] += result.post_failed

    async def retry_deliveries(self) -> None:
        await self.job("retry deliveries", self._retry_deliveries())

    async def _retry_deliveries(self) -> None:
        assert self.services is not None
        now = datetime.now(UTC)
        self.counts["mails_retried"] += await pipeline.retry_deliveries(self.services, now)

    async def watch_rules(self) -> None:
        await self.job("watch rules", self._watch_rules())

    async def _watch_rules(self) -> None:
        """Reload the rule set when a rule file changed; keep running on a broken file."""
        async with self._rules_lock:
            signature = rules_signature(self.config.monitor.rules_dir)
            if signature == self._rules_signature or self.services is None:
                return
            self._rules_signature = signature
            now = datetime.now(UTC)
            rules = await asyncio.to_thread(runtime.load_rules, self.config, self.rule_files, now)
            self.services.rules = lambda: rules  # one assignment: polls take the old or the new
            await self._rules_loaded(rules, now)

    async def _rules_loaded(self, rules: RuleSet, now: datetime) -> None:
        """Log the loaded rule set and write it down for `monitor status` (state/rules.json)."""
        kept = [file.name for file in rules.files if file.kept]
        event(
            log,
            "rules.loaded",
            rules=len(rules.rules),
            errors=len(rules.errors),
            kept=",".join(kept) or "none",
        )
        try:
            await asyncio.to_thread(rulestatus.write, self.config.monitor.state_dir, rules, now)
        except MonitorError as exc:  # disk full, read-only: status shows less; rules still run
            event(log, "rules.status_failed", logging.ERROR, error=str(exc))

    async def reload(self) -> None:
        """SIGHUP: reload the rules and the templates now. A template set that fails to
        load is not taken: the old one stays, and the error is logged."""
        await self.job("reload", self._reload())

    async def _reload(self) -> None:
        if self.services is None:
            return
        self._rules_signature = ()  # whatever the files' times say
        await self._watch_rules()
        try:
            templates = await asyncio.to_thread(
                notify.load_templates, self.config.monitor.templates_dir
            )
        except TemplateError as exc:
            event(log, "templates.error", logging.ERROR, error=str(exc), kept="the old ones")
            return
        self.services.templates = templates
        event(log, "templates.loaded", dir=str(self.config.monitor.templates_dir))

    async def maintain(self) -> None:
        await self.job("maintain", self._maintain())

    async def _maintain(self) -> None:
        """Daily: prune article text older than [monitor] keep (issue #8)."""
        assert self.services is not None
        keep = self.config.monitor.keep
        if keep is None:
            return
        store = self.services.store
        pruned = await self.services.db(store.prune, datetime.now(UTC) - keep)
        self.metrics.pruned.inc(pruned)
        event(log, "store.pruned", articles=pruned, older_than=f"{keep.days}d")

    async def run(self) -> None:
        """Serve until a signal; then drain and stop."""
        from monitor.match.rules import RuleFiles
        from monitor.web import serve

        self._rules_signature = rules_signature(self.config.monitor.rules_dir)
        self.rule_files = RuleFiles(self.config.monitor.rules_dir)
        now = datetime.now(UTC)
        rules = await asyncio.to_thread(runtime.load_rules, self.config, self.rule_files, now)
        async with runtime.open_services(self.config, rules) as services:
            self.services = services
            await self._rules_loaded(rules, now)
            services.metrics = self.metrics
            if self.stopping.is_set():
                return
            # Messages a crash left 'sending' are resolved before anything new is sent; the
            # retry job then sends them, and failed ones when due, every minute (issue #7).
            await pipeline.recover_deliveries(services, datetime.now(UTC))
            # A kill between storing a match and alerting it leaves the alert pending: send it
            # now, not only after the next poll that happens to match something (#8).
            await pipeline.send_alerts(services, datetime.now(UTC))
            jobs = scheduler.build(
                self.config, datetime.now(UTC), self.poll, self.digest, self.watch_rules
            )
            jobs.add_job(
                self.retry_deliveries,
                "interval",
                seconds=retry_every(self.config),
                id="retry deliveries",
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
            )
            if self.config.monitor.keep is not None:
                jobs.add_job(
                    self.maintain,
                    "interval",
                    hours=24,
                    id="maintain",
                    next_run_time=datetime.now(UTC),
                    max_instances=1,
                    coalesce=True,
                )
            scheduler.observe(jobs, self.metrics)
            jobs.start()
            event(
                log,
                "daemon.started",
                pid=os.getpid(),
                sources=len(self.config.sources),
                digests=len(self.config.digests),
                rules=len(services.rules().rules),
            )
            clock = asyncio.create_task(scheduler.watch_clock(jobs, self.config))
            try:
                async with serve(self.config, services):
                    await self.stopping.wait()
            finally:
                clock.cancel()
                # Pause, drain, then shut down: APScheduler's shutdown cancels the jobs still
                # running, which would cut the drain short (found by bench/soak.py, #8).
                jobs.pause()
                await self.drain()
                jobs.shutdown(wait=False)

    async def drain(self) -> None:
        """Let in-flight jobs finish within shutdown_timeout, then cancel what is left."""
        timeout = self.config.monitor.shutdown_timeout.total_seconds()
        pending = set(self.tasks)
        if pending:
            event(log, "daemon.draining", jobs=len(pending), timeout=f"{timeout:g}s")
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
            self.counts["abandoned"] += len(pending)


def retry_every(config: Config) -> float:
    """Seconds between two looks for messages due to be sent again: a minute, or the shortest
    `[smtp] retry` wait when that is shorter, so that no retry waits longer than it should."""
    waits = [60.0]
    if config.smtp is not None:
        waits += [wait.total_seconds() for wait in config.smtp.retry]
    return min(waits)


def rules_signature(rules_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the rule files: a change means reload."""
    try:
        files = sorted(rules_dir.glob("*.toml"))
        return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return ()


def run(config: Config) -> int:
    """`monitor run`: lock the state directory and serve until SIGINT/SIGTERM.

    Until the event loop takes the signals over, SIGTERM acts like SIGINT (KeyboardInterrupt),
    so a stop requested during start-up is still a clean stop with exit status 0.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # A reload asked for during start-up (SIGHUP's default is to terminate) is moot: the
    # rules and templates are being loaded anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        event(log, "daemon.starting", pid=os.getpid(), config=str(config.path))
        with state_lock(config.monitor.state_dir):
            return asyncio.run(_main(config))
    except KeyboardInterrupt:
        event(log, "daemon.stopped", during="start-up")
        return 0


async def _main(config: Config) -> int:
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, daemon, signum)
    loop.add_signal_handler(signal.SIGHUP, _on_hangup, daemon)
    started = loop.time()
    try:
        await daemon.run()
    finally:
        event(
            log,
            "daemon.stopped",
            uptime=f"{loop.time() - started:.0f}s",
            **dict(sorted(daemon.counts.items())),
        )
    return 0


def _on_signal(daemon: Daemon, signum: int) -> None:
    event(log, "daemon.signal", signal=signal.Signals(signum).name)
    daemon.stopping.set()


def _on_hangup(daemon: Daemon) -> None:
    event(log, "daemon.signal", signal="SIGHUP", action="reload rules and templates")
    task = asyncio.ensure_future(daemon.reload())
    daemon.reloads.add(task)  # keep a reference until it is done
    task.add_done_callback(daemon.reloads.discard)
