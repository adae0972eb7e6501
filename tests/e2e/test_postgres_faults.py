"""`monitor run` on the PostgreSQL store while the server restarts and while it is away: the
daemon keeps running, logs the store errors, reconnects by itself, and loses no article
(issue #9)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.pg import PgCluster
from tests.servers import LocalSite, MonitorProcess

pytestmark = [pytest.mark.timeout(480), pytest.mark.slow]  # slow on a busy machine


def add_item(site: LocalSite, page: str) -> None:
    """Put a new item for ``articles/<page>`` at the top of the feed, atomically."""
    feed = site.root / "feeds" / "rss.xml"
    text = feed.read_text(encoding="utf-8")
    item = (
        f"<item><title>New: {page}</title><link>/articles/{page}</link>"
        f'<guid isPermaLink="false">new-{page}</guid></item>\n  '
    )
    at = text.index("<item>")
    partial = feed.with_suffix(".partial")
    partial.write_text(text[:at] + item + text[at:], encoding="utf-8")
    partial.replace(feed)


def stored(url: str, page: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM items WHERE url LIKE %s AND outcome = 'stored'", (f"%/{page}",)
        ).fetchone()
    assert row is not None
    return int(row[0]) == 1


def wait_until_stored(url: str, page: str, daemon: MonitorProcess, deadline: float = 90) -> None:
    end = time.monotonic() + deadline
    while not stored(url, page):
        assert daemon.process.poll() is None, "".join(daemon.log)
        assert time.monotonic() < end, f"{page} never stored:\n{''.join(daemon.log)}"
        daemon.next_line(timeout=0.5)  # keep the log, and wait a little meanwhile


def test_daemon_reconnects_after_a_restart_and_an_outage_and_loses_nothing(
    project: Path, site: LocalSite, pg_cluster: PgCluster, pg_url: str
) -> None:
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
shutdown_timeout = "10s"

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
every = "1s"

[web]
listen = "127.0.0.1:0"

[store]
url = "{pg_url}"
""",
        encoding="utf-8",
    )
    daemon = MonitorProcess(config)
    try:
        daemon.wait_for("daemon.started", timeout=60)
        wait_until_stored(pg_url, "hr-dialogue.html", daemon)

        pg_cluster.restart()  # every connection cut while the daemon polls each second
        add_item(site, "death-penalty.html")
        wait_until_stored(pg_url, "death-penalty.html", daemon)

        pg_cluster.stop()  # the database away for a while
        try:
            daemon.wait_for("store_error", timeout=60)
            add_item(site, "aral-water.html")
            daemon.wait_for("store_error", timeout=60)  # polls keep failing, the daemon runs
            assert daemon.process.poll() is None
        finally:
            pg_cluster.start()
        wait_until_stored(pg_url, "aral-water.html", daemon)
        assert "cannot" in "".join(line for line in daemon.log if "store_error" in line)
        assert "pm-test-secret" not in "".join(daemon.log)
    finally:
        assert daemon.stop() == 0, "".join(daemon.log)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT key) FROM items").fetchone()
    assert row is not None
    assert row[0] == row[1] == 5  # the three first items and the two added, each once


def test_a_scheduler_and_a_worker_go_on_polling_after_the_server_restarts(
    project: Path, site: LocalSite, pg_cluster: PgCluster, pg_url: str
) -> None:
    # The worker's job queue connections are checked only after a few idle seconds
    # (store.queue.job_pool): one that a restart cut while busy fails its query, and the
    # worker starts its job loop again; the polls go on either way.
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
shutdown_timeout = "10s"

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
every = "1s"

[web]
enabled = false

[store]
url = "{pg_url}"

[workers]
heartbeat = "1s"
""",
        encoding="utf-8",
    )
    scheduler = MonitorProcess(config, "run", "--role", "scheduler")
    worker = MonitorProcess(config, "run", "--role", "worker")
    try:
        scheduler.wait_for("scheduler.started", timeout=60)
        worker.wait_for("worker.started", timeout=60)
        wait_until_stored(pg_url, "hr-dialogue.html", worker)

        pg_cluster.restart()  # every connection of both cut while the worker polls each second
        add_item(site, "death-penalty.html")
        wait_until_stored(pg_url, "death-penalty.html", worker)
        assert scheduler.process.poll() is None, "".join(scheduler.log)
    finally:
        assert worker.stop() == 0, "".join(worker.log)
        assert scheduler.stop() == 0, "".join(scheduler.log)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT key) FROM items").fetchone()
    assert row is not None
    assert row[0] == row[1] == 4  # the feed's three items and the one added, each once
