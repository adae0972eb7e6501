"""When to poll a source next, and how healthy it looks: pure functions of its state.

    ok               next poll = now + every
    failure n        next poll = now + every · 2^(n-1) · jitter, at most MAX_BACKOFF (or every
                     itself when that is longer), and never before the server's Retry-After
    n ≥ LONG_FAILURES  flagged "failing" in `monitor sources` and `monitor status`

Jitter (a factor between 0.75 and 1.25) keeps sources that failed together, say behind one
broken host, from all coming back in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from monitor.models import SourceState

#: The longest a failing source waits between two polls (unless its own `every` is longer).
MAX_BACKOFF = timedelta(hours=12)
#: Consecutive failures after which a source is flagged as failing for long.
LONG_FAILURES = 3


def next_poll(
    now: datetime,
    every: timedelta,
    failures: int,
    *,
    retry_after: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> datetime:
    """When a source polled at ``now`` with ``failures`` consecutive failures (0: it just
    succeeded) is due again."""
    if failures <= 0:
        return now + every
    cap = max(MAX_BACKOFF, every)
    delay = min(every * (1 << min(failures - 1, 20)), cap) * (0.75 + 0.5 * jitter())
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return now + delay


def is_due(state: SourceState, every: timedelta, now: datetime) -> bool:
    """Whether the daemon's interval tick at ``now`` should poll the source: always unless a
    backoff set its next poll later (a tenth of `every` of slack for the tick's own jitter).
    A last poll later than ``now`` means the clock went back: the source is due, or it would
    wait as long as the clock jumped (#8)."""
    if state.last_poll is not None and state.last_poll > now:
        return True
    return state.next_poll is None or state.next_poll <= now + every / 10


def health(state: SourceState | None) -> str:
    """One word or two for `monitor sources`: "not polled", "ok", "failing" or, after
    LONG_FAILURES in a row, "FAILING (n in a row), polled less often"."""
    if state is None or state.last_poll is None:
        return "not polled"
    if state.failures == 0:
        return "ok"
    if state.failures < LONG_FAILURES:
        return "failing"
    return f"FAILING ({state.failures} in a row), polled less often"
