"""APScheduler wiring: an interval job per source, a cron job per digest, a rules watcher.

The jobs are coroutines on the daemon's one event loop. Each runs inside ``Daemon.job``, which
tracks it (so shutdown can drain it) and is the job boundary for unexpected exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.config import Config
from monitor.log import event

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.metrics import Metrics

log = logging.getLogger("monitor.scheduler")

Job = Callable[..., Coroutine[Any, Any, None]]


def build(
    config: Config,
    now: datetime,
    poll: Job,
    digest: Job,
    watch_rules: Job,
) -> AsyncIOScheduler:
    """A scheduler with every job added (not started): first polls at once, then every `every`."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = AsyncIOScheduler(timezone=config.monitor.timezone)
    for index, source in enumerate(config.sources):
        if source.every < timedelta(minutes=1):
            event(
                log,
                "source.short_interval",
                logging.WARNING,
                source=source.name,
                every=f"{source.every.total_seconds():g}s",
                note="polling more often than once a minute; fine for tests, rude to real sites",
            )
        scheduler.add_job(
            poll,
            IntervalTrigger(seconds=source.every.total_seconds(), timezone=config.monitor.timezone),
            args=[source],
            id=f"poll:{source.name}",
            name=f"poll {source.name}",
            # Spread the first polls over a few seconds so a restart is not a burst.
            next_run_time=now + timedelta(seconds=min(index * 0.05, 10)),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    for item in config.digests:
        scheduler.add_job(
            digest,
            CronTrigger(timezone=config.monitor.timezone, **item.cron_fields),
            args=[item],
            id=f"digest:{item.name}",
            name=f"digest {item.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    scheduler.add_job(
        watch_rules,
        IntervalTrigger(seconds=2),
        id="rules:watch",
        name="watch rules",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


def next_runs(scheduler: AsyncIOScheduler) -> dict[str, datetime | None]:
    """When each job runs next, by job id."""
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}


def observe(scheduler: AsyncIOScheduler, metrics: Metrics) -> None:
    """Count into ``metrics`` how late each job starts and the ticks skipped (issue #8)."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent

    def on_event(found: JobSubmissionEvent) -> None:
        if found.code == EVENT_JOB_MAX_INSTANCES:
            metrics.skipped.inc()
            return
        if found.job_id.startswith("poll:") and found.scheduled_run_times:
            late = datetime.now(UTC) - max(found.scheduled_run_times)
            metrics.poll_lag.observe(max(late.total_seconds(), 0.0))

    scheduler.add_listener(on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
