"""`monitor run` as a service (issue #8): metrics, SIGHUP, and faults it must live through."""

from __future__ import annotations

import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitor import cli
from tests.e2e.test_daemon import REPO, Daemon
from tests.servers import LocalSite

pytestmark = pytest.mark.timeout(120)


def write_config(
    project: Path,
    site: LocalSite,
    extra: str = "",
    sources: str = "",
    timeout: float = 2,
    shutdown: str = "10s",
) -> Path:
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "UTC"
max_age = "0"
shutdown_timeout = "{shutdown}"
timeout = {timeout}
{extra}

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
every = "1s"
{sources}

[web]
listen = "127.0.0.1:0"
""",
        encoding="utf-8",
    )
    return config


def web_address(daemon: Daemon) -> str:
    line = daemon.wait_for("web.listening")
    found = re.search(r"address=([0-9.]+:[0-9]+)", line)
    assert found, line
    return "http://" + found.group(1)


def test_metrics_count_polls_matches_and_durations(project: Path, site: LocalSite) -> None:
    daemon = Daemon(write_config(project, site))
    try:
        base = web_address(daemon)
        daemon.wait_for("poll.done")
        daemon.wait_for("poll.not_modified")
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
    finally:
        assert daemon.stop() == 0

    def value(sample: str) -> float:
        found = re.search(re.escape(sample) + r" ([0-9.e+]+)", text)
        assert found, f"{sample} not in:\n{text}"
        return float(found.group(1))

    assert value('monitor_polls_total{status="ok"}') == 1
    assert value('monitor_polls_total{status="not_modified"}') >= 1
    assert value("monitor_articles_stored_total") >= 1
    assert value("monitor_poll_duration_seconds_count") >= 2
    assert value("monitor_poll_lag_seconds_count") >= 2
    assert "monitor_matches_total{topic=" in text
    assert value("monitor_jobs_in_flight") >= 0


def test_sighup_reloads_rules_and_keeps_old_templates_when_new_ones_are_broken(
    project: Path, site: LocalSite
) -> None:
    daemon = Daemon(write_config(project, site))
    try:
        started = daemon.wait_for("daemon.started")
        rules = int(re.search(r"rules=(\d+)", started).group(1))  # type: ignore[union-attr]
        (project / "rules" / "extra.toml").write_text(
            '[[rule]]\nid = "extra"\nquery = "freight"\n', encoding="utf-8"
        )
        good = (project / "templates" / "digest.txt").read_text(encoding="utf-8")
        (project / "templates" / "digest.txt").write_text("{% if %}", encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)

        assert f"rules={rules + 1}" in daemon.wait_for("rules.loaded")
        error = daemon.wait_for("templates.error")
        assert "digest.txt" in error
        assert "kept=" in error

        (project / "templates" / "digest.txt").write_text(good, encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("templates.loaded")
    finally:
        assert daemon.stop() == 0


def test_a_source_that_hangs_times_out_and_the_others_go_on(project: Path, site: LocalSite) -> None:
    site.route("hang.xml", hang=True, headers={"Content-Type": "application/xml"}, body=b"<rss")
    hanging = f'[[source]]\nname = "Hangs"\nurl = "{site.url("hang.xml")}"\nevery = "1s"\n'
    daemon = Daemon(write_config(project, site, sources=hanging))
    try:
        failed = daemon.wait_for("poll.failed source=Hangs")
        assert "timed out" in failed
        daemon.wait_for('poll.not_modified source="Test RSS"')  # still polling on schedule
    finally:
        assert daemon.stop() == 0


def test_a_rule_file_deleted_while_running_is_dropped_and_polling_goes_on(
    project: Path, site: LocalSite
) -> None:
    daemon = Daemon(write_config(project, site))
    try:
        started = daemon.wait_for("daemon.started")
        rules = int(re.search(r"rules=(\d+)", started).group(1))  # type: ignore[union-attr]
        daemon.wait_for("poll.done")
        (project / "rules" / "elections.toml").unlink()
        assert f"rules={rules - 1}" in daemon.wait_for("rules.loaded")
        daemon.wait_for("poll.not_modified")
    finally:
        assert daemon.stop() == 0


def test_a_database_locked_by_another_process_is_logged_and_retried(
    project: Path, site: LocalSite
) -> None:
    daemon = Daemon(write_config(project, site))
    try:
        daemon.wait_for("poll.done")
        locker = sqlite3.connect(project / "state" / "monitor.db", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # this process now holds the database
            error = daemon.wait_for("store_error")
            assert "database is locked" in error or "cannot" in error
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        daemon.wait_for("poll.not_modified")  # the next poll works again
    finally:
        assert daemon.stop() == 0
    assert not any(" critical " in line for line in daemon.log)


def test_a_full_disk_is_a_clear_error_and_leaves_the_database_intact(
    project: Path, site: LocalSite
) -> None:
    config = write_config(project, site)
    assert cli.main(["--config", str(config), "subscribers", "add", "a@example.org"]) == 0
    db = project / "state" / "monitor.db"
    # No file may grow past 16 KiB (the database is larger already): the "disk" is full for
    # every write of the database, its WAL, the feed files and the outbox.
    limit = 16384
    assert db.stat().st_size > limit

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "poll", "--once"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=small_disk,
        timeout=90,
    )
    assert result.returncode == 1, result.stderr
    assert "monitor.db: cannot" in result.stderr
    assert "Traceback" not in result.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT email FROM subscribers").fetchall() == [("a@example.org",)]
    finally:
        conn.close()


def test_status_shows_the_daemon_failing_sources_next_digest_and_rule_errors(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = f'[[source]]\nname = "Gone"\nurl = "{site.url("gone.xml")}"\nevery = "1s"\n'
    digest = '[[digest]]\nname = "daily"\nat = "08:00"\n'
    config = write_config(project, site, sources=broken + "\n" + digest)
    (project / "rules" / "bad.toml").write_text('[[rule]]\nid = "bad"\nquery = "a OR"\n')
    daemon = Daemon(config)
    try:
        daemon.wait_for("poll.failed source=Gone")
        daemon.wait_for('poll.done source="Test RSS"')
        assert cli.main(["--config", str(config), "status"]) == 0
    finally:
        assert daemon.stop() == 0
    out = capsys.readouterr().out
    assert f"daemon: running (PID {daemon.process.pid})" in out
    assert "sources: 1 healthy, 1 failing" in out
    assert "HTTP 404" in out
    assert "next digest: daily at " in out
    assert "bad.toml:3:" in out

    assert cli.main(["--config", str(config), "status"]) == 0
    assert "daemon: not running" in capsys.readouterr().out


def test_sigterm_lets_a_poll_in_flight_finish(project: Path, site: LocalSite) -> None:
    feed = (site.root / "feeds" / "rss.xml").read_bytes()
    site.route("slow.xml", delay=3, body=feed, headers={"Content-Type": "application/xml"})
    slow = f'[[source]]\nname = "Slow"\nurl = "{site.url("slow.xml")}"\nevery = "1s"\n'
    # A generous drain bound: the machine running the tests may be slow.
    daemon = Daemon(write_config(project, site, sources=slow, timeout=20, shutdown="80s"))
    try:
        daemon.wait_for("daemon.started")
        deadline = time.monotonic() + 30
        while not site.hits("slow.xml"):  # the poll of "Slow" is waiting for its answer
            assert time.monotonic() < deadline
            daemon.wait_for("")  # the next log line, whatever it says
    finally:
        assert daemon.stop(timeout=100) == 0
    log = "".join(daemon.log)
    assert "daemon.draining" in log
    assert "poll.done source=Slow" in log.split("daemon.draining", 1)[1]
    assert "raised an exception" not in log
    assert "abandoned" not in log
