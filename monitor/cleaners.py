"""Cleaning and matching off the event loop, in worker processes (issue #4).

    run(rules, fn, *args) ─ no pool yet, and fewer than ``pool_after`` tasks under way or
                            announced (``expect``) ─► a thread
                          ─ no pool yet, or rules not the pool's ─► a new pool (rules installed)
                          ─ fn(rules, *args) in a worker process ─► its result
                          ─ processes cannot start ─► the same call in a thread, from then on

Cleaning (trafilatura, lxml) and matching are CPU-bound and pure: in threads they share one
GIL, so a poll that cleans many articles used one core. Here they run in a process pool, one
process per core by default (``[monitor] clean_workers``); on one core, or where processes
cannot start (no /dev/shm, a sandbox), in threads as before. ``clean_workers = 0`` asks for
threads.

The rule set is shipped once per worker process, when it starts, not with every article; a
rule reload (a new RuleSet object) starts a new pool, and the old one finishes what it was
given. Workers come from a forkserver (a clean single-threaded process that imported the
cleaning libraries once), so a pool starts in milliseconds and no worker is forked from our
threaded event loop. They ignore SIGINT and SIGTERM: the main process drains and stops them.
Nothing starts before the first article to clean: a poll that finds nothing new (or a daemon
that has not yet found anything) runs no worker process and no forkserver. A one-shot
command goes further (``pool_after``): it cleans in threads until many articles wait at once,
since a pool costs ~0.6 s to start (the forkserver imports trafilatura, then forks) and a poll
that brings a handful of articles is done before that (#4: a warm `poll --once` of 200 sources
with 20 new articles took 2.0-2.2 s with the pool, 1.7 s in threads). A pool starts in a
thread, every worker at once: starting the forkserver and waiting for each worker's pid are
blocking calls that would otherwise stall the event loop (seconds on a loaded machine).
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from monitor.log import event

if TYPE_CHECKING:
    from monitor.match.rules import RuleSet

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Imported once by the forkserver, so that each worker starts with them loaded.
PRELOAD = [
    "monitor.pipeline",
    "monitor.clean.article",
    "monitor.match.rules",
    "trafilatura",
    "htmldate",
    "lxml.html",
    "cssselect",
    "monitor.clean.preload",
]
#: Seconds between a worker's checks that the main process still runs (without pidfd).
ORPHAN_CHECK = 1.0
#: Threads when processes are not used (one core, or processes failed to start).
THREADS = 2
#: `poll --once`: tasks waiting at once before a pool is worth starting. A thread cleans an
#: article in ~15-20 ms; a pool takes ~0.6 s to start: about the time of 32 articles (#4).
POOL_AFTER_ONCE = 32

#: The rule set of this worker process, installed by ``_install`` when it starts.
_worker_rules: RuleSet | None = None


def default_size() -> int:
    """One worker process per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Cleaners:
    """The pool that runs ``fn(rules, *args)`` off the event loop; see the module docstring.

    ``size``: worker processes; 0: threads; None: one process per core, threads on one core.
    ``pool_after``: the pool starts once this many tasks are under way at once; until then
    tasks run in threads (1: at the first task)."""

    def __init__(self, size: int | None = None, *, pool_after: int = 1) -> None:
        chosen = default_size() if size is None else size
        #: 0 means threads (asked for, one core, or processes failed to start).
        self.processes = chosen if size is not None or chosen > 1 else 0
        self.pool_after = max(1, pool_after)
        self.tasks = 0
        #: Tasks under way now (in threads, in the pool or waiting for it), and tasks announced
        #: by :meth:`expect` and not yet begun.
        self.running = 0
        self.expected = 0
        self.pools = 0
        self._pool: Executor | None = None
        self._rules: RuleSet | None = None
        self._threads: ThreadPoolExecutor | None = None
        #: Whether a worker process ever returned a result (then a broken pool is a crash).
        self._worked = False
        #: Held while a pool starts, so that the articles waiting for it start one pool.
        self._starting = asyncio.Lock()

    def __repr__(self) -> str:
        mode = f"processes={self.processes}" if self.processes else f"threads={THREADS}"
        return f"<Cleaners {mode} pools={self.pools} tasks={self.tasks}>"

    async def run(
        self,
        rules: RuleSet,
        fn: Callable[Concatenate[RuleSet, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(rules, *args, **kwargs)`` in a worker; ``fn`` and its arguments must pickle."""
        loop = asyncio.get_running_loop()
        self.tasks += 1
        self.running += 1
        self.expected = max(0, self.expected - 1)
        try:
            due = self.running + self.expected >= self.pool_after
            if self.processes and (self._pool is not None or due):
                pool = await self._process_pool(rules)
                if pool is not None:
                    try:
                        result = await loop.run_in_executor(pool, _call, fn, args, kwargs)
                    except BrokenProcessPool as exc:
                        if self._worked:  # a worker died (killed, out of memory): a new pool
                            self._pool = None
                            raise
                        self._no_processes(exc)  # none ever worked: processes cannot start here
                    else:
                        self._worked = True
                        return result
            threads = self._thread_pool()
            return await loop.run_in_executor(threads, lambda: fn(rules, *args, **kwargs))
        finally:
            self.running -= 1

    def expect(self, count: int) -> None:
        """``count`` more tasks are coming (a poll found that many new items; negative: fewer
        than announced), so that a big catch starts the pool with its first task instead of
        after ``pool_after`` of them ran in threads."""
        self.expected = max(0, self.expected + count)

    async def _process_pool(self, rules: RuleSet) -> Executor | None:
        """The pool for ``rules``: started on first use and again when the rules change;
        None (and threads from now on) when processes cannot start."""
        async with self._starting:
            if self._pool is not None and self._rules is rules:
                return self._pool
            if not self.processes:  # the pool failed to start while this call waited
                return None
            old = self._pool
            try:
                self._pool = await asyncio.to_thread(self._start, rules)
            except (OSError, ValueError, ImportError, BrokenProcessPool) as exc:
                self._no_processes(exc)
                return None
            finally:
                if old is not None:  # a rule reload: the old pool finishes what it was given
                    old.shutdown(wait=False)
            self._rules = rules
            self.pools += 1
            return self._pool

    def _start(self, rules: RuleSet) -> Executor:
        """A new pool with every worker running and its rules installed (in a thread)."""
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        context = get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        pool = ProcessPoolExecutor(
            self.processes, context, initializer=_install, initargs=(rules, os.getpid())
        )
        try:
            # No worker is idle yet, so each submission starts one.
            for started in [pool.submit(os.getpid) for _ in range(self.processes)]:
                started.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    def _no_processes(self, exc: BaseException) -> None:
        event(
            log,
            "cleaners.threads",
            logging.WARNING,
            reason=f"worker processes cannot start: {type(exc).__name__}: {exc}",
        )
        self.processes = 0
        self._pool = None

    def _thread_pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="clean")
        return self._threads

    def close(self) -> None:
        """Wait for the work given, then stop the workers."""
        for pool in (self._pool, self._threads):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._threads = None


def _install(rules: RuleSet, main: int) -> None:
    """A worker process starts: keep the rule set; leave signals to the main process, and
    exit when it is gone."""
    global _worker_rules  # one per process, by design
    _worker_rules = rules
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(main,), name="orphan-watch", daemon=True).start()


def _exit_with(main: int) -> None:
    """Exit when the main process ``main`` does. After a kill -9 of it nothing else would
    end a worker: the forkserver stays while its children hold its "alive" pipe, and a
    worker waiting for work holds both ends of its own queue."""
    try:
        handle = os.pidfd_open(main)  # readable once the process has ended (Linux 5.3+)
    except (AttributeError, OSError):
        while _alive(main):
            time.sleep(ORPHAN_CHECK)
    else:
        select.select([handle], [], [])
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """In a worker process: ``fn`` with the worker's rule set."""
    if _worker_rules is None:
        raise RuntimeError("a cleaner process without its rule set")
    return fn(_worker_rules, *args, **kwargs)
