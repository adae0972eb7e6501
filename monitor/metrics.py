"""Prometheus metrics of one `monitor run`, served at ``/metrics`` (issue #8).

One :class:`Metrics` per daemon, with its own ``CollectorRegistry`` (no module-level
registry, STYLE §1.6): the daemon makes it, counts into it, and hands it to the web app
through ``Services.metrics``. prometheus_client is imported only when a daemon starts.

    monitor_polls_total{status}              ok | not_modified | error | deferred
    monitor_fetch_errors_total{kind}         timeout | dns | connect | http_4xx | http_5xx |
                                             robots | too_large | parse | other
    monitor_poll_duration_seconds            histogram of whole polls
    monitor_poll_lag_seconds                 histogram: how late a poll started
    monitor_articles_stored_total
    monitor_matches_total{topic}
    monitor_mails_total{kind,outcome}        (digest, alert, confirm) and (sent, failed)
    monitor_jobs_in_flight                   gauge
    monitor_ticks_skipped_total              a tick skipped: the previous run still going
    monitor_maintenance_pruned_total         article texts pruned by retention
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from monitor.models import PollResult

#: Error text → kind, first match wins (the messages fetch/http.py and the parsers raise).
_KINDS = (
    ("timeout", re.compile(r"timed out")),
    ("dns", re.compile(r"DNS: cannot resolve")),
    ("connect", re.compile(r"cannot connect|closed the connection|request failed|broken")),
    ("http_5xx", re.compile(r"HTTP 5\d\d")),
    ("http_4xx", re.compile(r"HTTP 4\d\d")),
    ("robots", re.compile(r"robots\.txt")),
    ("too_large", re.compile(r"larger than|too large")),
    ("parse", re.compile(r"not a (readable )?(feed|sitemap|JSON Feed)|no items|nothing found")),
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def error_kind(error: str) -> str:
    """The kind of a poll's error message, for ``monitor_fetch_errors_total{kind}``."""
    for kind, pattern in _KINDS:
        if pattern.search(error):
            return kind
    return "other"


class Metrics:
    """The counters of one daemon, in a registry of its own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Polls by outcome.", ["status"], registry=r)
        self.fetch_errors = Counter(
            "monitor_fetch_errors", "Failed polls by kind of error.", ["kind"], registry=r
        )
        buckets = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
        self.poll_seconds = Histogram(
            "monitor_poll_duration_seconds", "Time a poll took.", buckets=buckets, registry=r
        )
        self.poll_lag = Histogram(
            "monitor_poll_lag_seconds",
            "How late a poll started after its scheduled time.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.articles = Counter("monitor_articles_stored", "Articles stored.", registry=r)
        self.matches = Counter("monitor_matches", "New matches by topic.", ["topic"], registry=r)
        self.mails = Counter(
            "monitor_mails", "Messages by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.in_flight = Gauge("monitor_jobs_in_flight", "Jobs running now.", registry=r)
        self.skipped = Counter(
            "monitor_ticks_skipped",
            "Scheduled runs skipped because the previous run of the job was still going.",
            registry=r,
        )
        self.pruned = Counter(
            "monitor_maintenance_pruned", "Article texts pruned by retention.", registry=r
        )

    def __repr__(self) -> str:
        return f"<Metrics polls={self._total(self.polls):g}>"

    @staticmethod
    def _total(counter: object) -> float:
        from prometheus_client import Counter

        assert isinstance(counter, Counter)
        return sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    def poll_done(self, result: PollResult, seconds: float) -> None:
        """Count one finished poll."""
        self.polls.labels(result.status).inc()
        self.poll_seconds.observe(seconds)
        if result.status == "error":
            self.fetch_errors.labels(error_kind(result.error or "")).inc()
        self.articles.inc(result.new_articles)
        for topic, count in result.matches.items():
            self.matches.labels(topic).inc(count)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


async def handle(request: web.Request) -> web.Response:
    """``GET /metrics``: this daemon's metrics; 404 where none are kept (not a daemon)."""
    from aiohttp import web

    from monitor.web.app import SERVICES

    metrics = request.app[SERVICES].metrics
    if metrics is None:
        raise web.HTTPNotFound(text="no metrics: only `monitor run` keeps them")
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})
