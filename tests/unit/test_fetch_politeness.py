"""Politeness and health: the pace between requests to one host, Retry-After on 429/503, and
the backoff of a failing source (fetch/http.py, fetch/health.py, the store's next_poll)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import MonitorSettings
from monitor.errors import FetchError
from monitor.fetch import health, is_due, next_poll
from monitor.fetch.http import HttpClient, retry_after
from monitor.models import FetchResult, SourceState
from tests.servers import LocalSite, Request

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
EVERY = timedelta(minutes=30)
WHERE = 'source "Steppe News"'


@pytest.fixture
def web(tmp_path: Path) -> Iterator[LocalSite]:
    with LocalSite(tmp_path) as site:
        yield site


def settings(tmp_path: Path) -> MonitorSettings:
    return MonitorSettings(state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path)


def timed(answers: list[tuple[int, dict[str, str]]]) -> tuple[list[float], Callable[..., Any]]:
    """A route handler giving ``answers`` in turn (the last one after that), and the
    monotonic times of the requests it saw."""
    seen: list[float] = []

    def handler(request: Request) -> tuple[int, dict[str, str], bytes]:
        seen.append(time.monotonic())
        status, headers = answers[min(len(seen), len(answers)) - 1]
        return status, {"Content-Type": "text/plain", **headers}, b"hello"

    return seen, handler


# -- the pace per host ---------------------------------------------------------------------


async def test_requests_to_one_host_are_spaced_by_the_host_delay(
    web: LocalSite, tmp_path: Path
) -> None:
    seen, handler = timed([(200, {})])
    for n in range(4):
        web.route(f"p{n}", handler=handler)
    async with HttpClient(settings(tmp_path), host_delay=0.5) as client:
        await asyncio.gather(*(client.get(web.url(f"p{n}"), where=WHERE) for n in range(4)))
    assert len(seen) == 4
    # Four requests started 3 delays apart; on a loaded machine the first one can reach the
    # server late, so allow a margin (unpaced, all four arrive within milliseconds).
    assert seen[-1] - seen[0] >= 1.0, seen


# -- Retry-After ---------------------------------------------------------------------------


async def test_429_with_a_short_retry_after_is_waited_out_and_retried_once(
    web: LocalSite, tmp_path: Path
) -> None:
    seen, handler = timed([(429, {"Retry-After": "1"}), (200, {})])
    web.route("feed", handler=handler)
    async with HttpClient(settings(tmp_path), host_delay=0) as client:
        page = await client.get(web.url("feed"), where=WHERE)
    assert page is not None
    assert page.body == b"hello"
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.95


async def test_503_with_a_long_retry_after_fails_and_the_host_gets_no_more_requests(
    web: LocalSite, tmp_path: Path
) -> None:
    seen, handler = timed([(503, {"Retry-After": "600"})])
    web.route("feed", handler=handler)
    web.route("other", handler=handler)
    async with HttpClient(settings(tmp_path), host_delay=0) as client:
        with pytest.raises(FetchError, match=r"HTTP 503 .*retry after 600s") as first:
            await client.get(web.url("feed"), where=WHERE)
        with pytest.raises(FetchError, match="asked for no requests") as second:
            await client.get(web.url("other"), where=WHERE)
    assert first.value.retry_after == 600
    assert second.value.retry_after is not None
    assert second.value.retry_after > 590
    assert len(seen) == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120
    later = datetime.now(UTC) + timedelta(seconds=300)
    assert 290 < (retry_after(format_datetime(later, usegmt=True)) or 0) <= 300
    assert retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0
    assert retry_after("soon") is None
    assert retry_after(None) is None


# -- backoff of a failing source -------------------------------------------------------------


def test_a_healthy_source_is_due_after_its_interval() -> None:
    assert next_poll(NOW, EVERY, 0) == NOW + EVERY


def test_backoff_doubles_with_each_failure_within_the_jitter() -> None:
    for failures, factor in ((1, 1), (2, 2), (3, 4), (4, 8)):
        low = next_poll(NOW, EVERY, failures, jitter=lambda: 0.0)
        high = next_poll(NOW, EVERY, failures, jitter=lambda: 1.0)
        assert low == NOW + EVERY * factor * 0.75
        assert high == NOW + EVERY * factor * 1.25


def test_backoff_is_capped_and_never_before_the_servers_retry_after() -> None:
    assert next_poll(NOW, EVERY, 50, jitter=lambda: 0.5) == NOW + timedelta(hours=12)
    assert next_poll(NOW, timedelta(days=2), 5, jitter=lambda: 0.5) == NOW + timedelta(days=2)
    assert next_poll(NOW, EVERY, 1, retry_after=7200, jitter=lambda: 0.5) == NOW + timedelta(
        hours=2
    )


def test_the_daemon_skips_a_tick_while_the_source_backs_off() -> None:
    backing_off = SourceState(failures=3, next_poll=NOW + timedelta(hours=2))
    assert not is_due(backing_off, EVERY, NOW + EVERY)
    assert is_due(backing_off, EVERY, NOW + timedelta(hours=2))
    assert is_due(SourceState(), EVERY, NOW)


def test_health_flags_a_source_failing_for_long() -> None:
    assert health(None) == "not polled"
    assert health(SourceState(last_poll=NOW)) == "ok"
    assert health(SourceState(last_poll=NOW, failures=2)) == "failing"
    assert health(SourceState(last_poll=NOW, failures=3)).startswith("FAILING (3 in a row)")


def test_the_store_keeps_next_poll_and_resets_failures_on_success(store: Any) -> None:
    later = NOW + timedelta(hours=1)
    store.record_poll("Steppe News", NOW, None, "HTTP 500", later)
    store.record_poll("Steppe News", NOW, None, "HTTP 500", later + EVERY)
    failing = store.source_state("Steppe News")
    assert (failing.failures, failing.next_poll) == (2, later + EVERY)

    store.record_poll("Steppe News", NOW, FetchResult("not_modified"), None, NOW + EVERY)
    healed = store.source_state("Steppe News")
    assert (healed.failures, healed.next_poll, healed.last_success) == (0, NOW + EVERY, NOW)
