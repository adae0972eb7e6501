"""The long-lived objects a flow needs, made in one place and closed in ``finally``.

``cli.py`` (one-shot commands) and ``daemon.py`` (`monitor run`) both open them with
:func:`open_services`, so the daemon and `poll --once` share one code path (STYLE §6.11).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from monitor import fetch, match, notify
from monitor.cleaners import POOL_AFTER_ONCE, Cleaners
from monitor.config import Config
from monitor.log import event

if TYPE_CHECKING:
    from monitor.fetch.http import HttpClient
    from monitor.match.rules import RuleFiles, RuleSet
    from monitor.metrics import Metrics
    from monitor.notify.channels import Channel
    from monitor.notify.render import Templates
    from monitor.store import Store

log = logging.getLogger("monitor.runtime")
#: See Services.pages: enough to keep every cleaner busy while pages are fetched (a clean
#: takes ~20 ms, a fetch ~50 ms and more), and a few tens of MiB of pages at most.
PAGES_WAITING = 64
P = ParamSpec("P")
T = TypeVar("T")


class Backlog:
    """A bound on the articles held between their request and the end of their cleaning.

    An article takes a place when its request is about to be made (HttpClient.get's
    ``admit``, after its host's slot and pace), not when its fetch begins: an article waiting
    for a slow host's pace holds nothing, so one big source never starves the cleaners of the
    pages of others. ``acquire`` waits while ``limit`` places are taken."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self.most = 0
        self._free = asyncio.Condition()

    def __repr__(self) -> str:
        return f"<Backlog taken={self.taken} limit={self.limit} most={self.most}>"

    async def acquire(self) -> None:
        async with self._free:
            await self._free.wait_for(lambda: self.taken < self.limit)
            self.taken += 1
            self.most = max(self.most, self.taken)

    async def release(self) -> None:
        async with self._free:
            self.taken -= 1
            self._free.notify()

    def place(self) -> Place:
        """One article's place: ``await place.take()`` (once, or not at all), then
        ``await place.give_back()`` in a ``finally``."""
        return Place(self)


class Place:
    """One article's place in a :class:`Backlog`; taking it twice takes it once."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog
        self.held = False

    async def take(self) -> None:
        if not self.held:
            await self.backlog.acquire()
            self.held = True

    async def give_back(self) -> None:
        if self.held:
            self.held = False
            await self.backlog.release()


class Writer:
    """The one thread that talks to the store, so the event loop never waits on SQLite.

    A PostgreSQL store (issue #9) gets as many threads as its connection pool: each call
    waits on network round trips, and one thread would queue every poll's calls behind the
    others' (its writes are safe side by side: row and advisory locks, see postgres.py)."""

    def __init__(self, store: Store, threads: int = 1) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._thread.shutdown(wait=True)


@dataclass
class Services:
    """What the flows need, made and closed by cli.py or daemon.py (no module-level state)."""

    config: Config
    client: HttpClient
    store: Store
    db: Writer
    #: The current rule set (the daemon swaps it when rule files change).
    rules: Callable[[], RuleSet]
    templates: Templates
    #: CPU-bound cleaning and matching run here, off the event loop (processes, issue #4).
    cleaners: Cleaners = field(default_factory=Cleaners)
    #: The daemon's Prometheus metrics (/metrics); None in one-shot commands (issue #8).
    metrics: Metrics | None = None
    #: Held while alerts are sent, so that concurrent polls never alert an article twice.
    alerting: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Fetched pages waiting for a cleaner: fetching outruns cleaning (#4: a cold catch of
    #: 4,000 articles peaked at 746 MiB with every fetched page waiting for a cleaner).
    pages: Backlog = field(default_factory=lambda: Backlog(PAGES_WAITING))
    #: The digests' other channels (apprise, issue #7), by their id in the store.
    channels: dict[int, Channel] = field(default_factory=dict)

    async def clean(
        self, fn: Callable[Concatenate[RuleSet, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(the current rules, *args)`` in a cleaner process; ``fn`` and args must pickle."""
        return await self.cleaners.run(self.rules(), fn, *args, **kwargs)


def load_rules(
    config: Config, files: RuleFiles | None = None, now: datetime | None = None
) -> RuleSet:
    """Load the rule files; log each broken file (its rules are left out, the rest run) and
    each rule that can never match or needs none of its terms.

    With ``files`` (the daemon's RuleFiles), a broken file keeps its last good version."""
    rules = files.load(now) if files is not None else match.load_rules(config.monitor.rules_dir)
    for error in rules.errors:
        file = next((f for f in rules.files if error in f.errors), None)
        kept = f"last good version ({file.rules} rules)" if file and file.kept else "nothing"
        event(log, "rules.error", logging.ERROR, error=str(error), kept=kept)
    for warning in rules.warnings:
        event(log, "rules.warning", logging.WARNING, warning=str(warning))
    return rules


def _rules_of(config: Config, rules: RuleSet | None, *, lazy: bool) -> Callable[[], RuleSet]:
    """What Services.rules calls: the rules given, or those of the rule files, loaded now or
    (``lazy``) at the first call."""
    if rules is None and not lazy:
        rules = load_rules(config)
    if rules is not None:
        given = rules
        return lambda: given
    return cache(lambda: load_rules(config))


@asynccontextmanager
async def open_services(
    config: Config, rules: RuleSet | None = None, *, one_shot: bool = False
) -> AsyncIterator[Services]:
    """Open the store, the HTTP client, the templates and the rules; close them all after.

    ``one_shot`` (`poll --once`): pay only for what the poll uses. The rules load when the
    first article is matched and the templates are checked when the first alert is rendered
    (a poll that brings nothing new needs neither: together a tenth of a cold poll's CPU, #4),
    and articles are cleaned in threads until many wait (:data:`POOL_AFTER_ONCE`).
    """
    from monitor.store import open_configured

    templates = notify.load_templates(config.monitor.templates_dir, check=not one_shot)
    # A bad channel URL stops start-up, like a bad template (apprise loads its plugins: slow).
    channels = await asyncio.to_thread(notify.open_channels, config)
    current = _rules_of(config, rules, lazy=one_shot)
    pool_after = POOL_AFTER_ONCE if one_shot else 1
    store = open_configured(config)
    db = Writer(store, 1 if config.store.url is None else config.store.pool_size)
    try:
        # Registered before any poll: a new channel is alerted what is found from now on.
        now = datetime.now(UTC)
        ids = [await db(store.register_channel, c.digest, c.key, c.label, now) for c in channels]
        async with fetch.open_client(config.monitor) as client:
            cleaners = Cleaners(config.monitor.clean_workers, pool_after=pool_after)
            services = Services(config, client, store, db, current, templates, cleaners)
            services.channels = dict(zip(ids, channels, strict=True))
            try:
                yield services
            finally:
                await asyncio.to_thread(services.cleaners.close)
    finally:
        db.close()
        await asyncio.to_thread(store.close)
