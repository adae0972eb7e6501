"""APScheduler wiring: an interval job per source, a cron job per digest, a rules watcher.

The jobs are coroutines on the daemon's one event loop. Each runs inside ``Daemon.job``, which
tracks it (so shutdown can drain it) and is the job boundary for unexpected exceptions.
"""

from __future__ import annotations

import asyncio
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
            # Late is better than never: after the clock jumped forward past a digest's time
            # (or the loop stalled) it goes out once, at once; coalesce keeps it to one (#8).
            misfire_grace_time=None,
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


#: How often (monotonic seconds) the wall clock is compared with the monotonic one.
CLOCK_CHECK = 2.0
#: A difference between the two clocks' progress larger than this is a jump.
CLOCK_TOLERANCE = 2.0


async def watch_clock(
    scheduler: AsyncIOScheduler, config: Config, *, every: float = CLOCK_CHECK
) -> None:
    """Notice the wall clock jumping (NTP stepping it, a VM resumed, an operator's `date`) and
    keep the polls on schedule; runs until cancelled.

    APScheduler keeps each job's next run as a wall-clock time and sleeps on the monotonic
    clock until then. Forward, it copes: the due jobs run once (coalesced), never a storm.
    Backward by hours, every poll would wait those hours; so each interval job due later than
    one interval from now is rescheduled from now. Cron jobs (digests) keep their next run:
    a digest that went out before the clock went back is not sent again.
    """
    from apscheduler.triggers.interval import IntervalTrigger

    loop = asyncio.get_running_loop()
    wall, mono = datetime.now(UTC), loop.time()
    while True:
        await asyncio.sleep(every)
        now, now_mono = datetime.now(UTC), loop.time()
        skew = (now - wall).total_seconds() - (now_mono - mono)
        wall, mono = now, now_mono
        if abs(skew) <= CLOCK_TOLERANCE:
            continue
        moved = 0
        if skew < 0:
            polls = [
                job for job in scheduler.get_jobs() if isinstance(job.trigger, IntervalTrigger)
            ]
            for index, job in enumerate(polls):
                interval = job.trigger.interval
                if job.next_run_time is not None and job.next_run_time > now + interval:
                    start = now + timedelta(seconds=min(index * 0.05, 10))
                    trigger = IntervalTrigger(
                        seconds=interval.total_seconds(),
                        start_date=start,
                        timezone=config.monitor.timezone,
                    )
                    scheduler.reschedule_job(job.id, trigger=trigger)
                    moved += 1
        event(
            log,
            "clock.jumped",
            logging.WARNING,
            by=f"{skew:+.0f}s",
            now=now.isoformat(timespec="seconds"),
            rescheduled=moved,
        )
