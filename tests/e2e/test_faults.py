"""Faults a server does to `monitor run`, each against the real daemon (issue #8): a host that
does not resolve, SMTP down for a while, a read-only or full state directory, the clock jumping.
Each must give a clear message naming where, and leave a daemon that keeps running."""

from __future__ import annotations

import errno
import json
import re
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import cli
from tests.servers import LocalDNS, LocalSite, LocalSMTP, MonitorProcess

# The machine running them may be slow and shared: generous bounds, never a sleep.
pytestmark = pytest.mark.timeout(300)


def write_config(project: Path, site: LocalSite, extra: str = "", sources: str = "") -> Path:
    """One healthy feed polled every second, plus ``sources``; ``extra`` goes in [monitor]."""
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "UTC"
max_age = "0"
shutdown_timeout = "10s"
timeout = 5
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


def metrics_of(daemon: MonitorProcess) -> str:
    seen = [line for line in daemon.log if "web.listening" in line]
    line = seen[0] if seen else daemon.wait_for("web.listening")
    found = re.search(r"address=([0-9.]+:[0-9]+)", line)
    assert found, line
    with urllib.request.urlopen(f"http://{found.group(1)}/metrics", timeout=10) as response:
        return str(response.read().decode())


def metric(text: str, sample: str) -> float:
    found = re.search(re.escape(sample) + r" ([0-9.e+]+)", text)
    return float(found.group(1)) if found else 0.0


# -- DNS -------------------------------------------------------------------------------------


def test_a_host_that_does_not_resolve_is_a_dns_error_and_the_source_backs_off(
    project: Path, site: LocalSite
) -> None:
    # The daemon asks only the DNS server on 127.0.0.1 ([monitor] nameservers), which knows
    # no name: NXDOMAIN for one source's host, SERVFAIL for the other's.
    with LocalDNS(servfail=("broken.test",)) as dns:
        port = site.port
        sources = f"""
[[source]]
name = "Nowhere"
url = "http://news.nowhere.test:{port}/feed.xml"
every = "1s"

[[source]]
name = "Broken DNS"
url = "http://press.broken.test:{port}/feed.xml"
every = "1s"
"""
        extra = f'nameservers = ["127.0.0.1:{dns.port}"]'
        daemon = MonitorProcess(write_config(project, site, extra=extra, sources=sources))
        try:
            nxdomain = daemon.wait_for("poll.failed source=Nowhere")
            servfail = daemon.wait_for('poll.failed source="Broken DNS"')
            # The others go on polling on schedule, several times over.
            for _ in range(3):
                daemon.wait_for('poll.not_modified source="Test RSS"')
            text = metrics_of(daemon)
        finally:
            assert daemon.stop() == 0

    assert f"news.nowhere.test:{port}/feed.xml" in nxdomain
    assert "DNS: cannot resolve host news.nowhere.test" in nxdomain
    assert "DNS: cannot resolve host press.broken.test" in servfail
    # Both failing sources back off: ticks pass without a poll (and without a lookup).
    assert metric(text, 'monitor_fetch_errors_total{kind="dns"}') >= 2
    assert metric(text, 'monitor_polls_total{status="deferred"}') >= 1
    assert set(dns.names) == {"news.nowhere.test", "press.broken.test"}
    assert not any(" critical " in line.lower() for line in daemon.log)


# -- SMTP down, then up ----------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (yet): where the SMTP server will come up later."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_mail_waits_in_the_outbox_while_smtp_is_down_and_goes_out_once_when_it_is_back(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "rules" / "alerts.toml").write_text(
        '[[rule]]\nid = "torture-now"\ntopic = "Human rights"\n'
        'query = "torture AND Kazakhstan"\nalert = "immediate"\n',
        encoding="utf-8",
    )
    port = free_port()
    # Short waits between attempts ([smtp] retry) so that the retries happen in test time.
    smtp = f"""
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "Press Monitor <monitor@monitor.test>"
timeout = 5
retry = {json.dumps(["1s"] * 12)}
"""
    config = write_config(project, site, sources=smtp)
    args = ["--config", str(config)]
    assert (
        cli.main([*args, "subscribers", "add", "desk@example.org", "--topics", "Human rights"]) == 0
    )
    capsys.readouterr()

    daemon = MonitorProcess(config)
    try:
        first = daemon.wait_for("alert.failed", timeout=120)
        assert "desk@example.org" in first
        assert f"cannot connect to smtp 127.0.0.1:{port}" in first
        daemon.wait_for("attempt=2")  # retried, still down
        assert cli.main([*args, "status"]) == 0
        status = capsys.readouterr().out

        with LocalSMTP(port=port) as server:
            (alert,) = server.wait_for(1, timeout=60)
            daemon.wait_for("alert.sent")
            # Another poll and more retry rounds pass: nothing more is sent.
            daemon.wait_for('poll.not_modified source="Test RSS"')
            daemon.wait_for('poll.not_modified source="Test RSS"')
            assert cli.main([*args, "status"]) == 0
            after = capsys.readouterr().out
            assert daemon.stop() == 0
            assert len(server.messages) == 1
    finally:
        if daemon.process.poll() is None:
            daemon.stop()

    assert "outbox: 1 pending" in status
    pending = status.split("outbox: 1 pending", 1)[1]
    assert "alert to desk@example.org" in pending
    assert f"last error: desk@example.org: cannot connect to smtp 127.0.0.1:{port}" in pending
    assert alert["X-Press-Monitor-Kind"] == "alert"
    assert alert["To"] == "desk@example.org"
    assert "outbox: empty" in after
    assert "alert to desk@example.org" in after  # the last delivery


# -- a full disk, a read-only state directory ------------------------------------------------


@pytest.fixture
def small_disk(project: Path) -> Iterator[Path]:
    """state/ on a tmpfs of 16 MiB (root can mount; the tests run as root), unmounted after."""
    state = project / "state"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=True)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its file system says it is full (ENOSPC)."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    failed = 0
    with filler.open("wb", buffering=0) as out:
        while not failed:
            try:
                out.write(chunk)
            except OSError as exc:
                failed = exc.errno or -1
    assert failed == errno.ENOSPC
    return filler


def add_item(site: LocalSite, article: str) -> None:
    """Put one more item, linking ``articles/<article>``, at the top of the test feed."""
    feed = site.root / "feeds" / "rss.xml"
    item = (
        f"<item><title>New: {article}</title><link>{site.url('articles/' + article)}</link>"
        "<pubDate>Mon, 23 Nov 2026 09:00:00 GMT</pubDate></item>"
    )
    feed.write_text(
        feed.read_text(encoding="utf-8").replace("<item>", item + "<item>", 1), encoding="utf-8"
    )


def integrity(db: Path) -> tuple[str, int]:
    """PRAGMA integrity_check and how many articles are stored."""
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return check, conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        conn.close()


def test_a_full_disk_fails_polls_clearly_and_they_succeed_once_there_is_room(
    project: Path, site: LocalSite, small_disk: Path
) -> None:
    daemon = MonitorProcess(write_config(project, site))
    try:
        daemon.wait_for("poll.done", timeout=120)
        daemon.wait_for('poll.not_modified source="Test RSS"')
        filler = fill(small_disk)
        add_item(site, "death-penalty.html")

        error = daemon.wait_for("store_error", timeout=120)
        assert "monitor.db: cannot" in error
        assert "full" in error
        daemon.wait_for("store_error")  # the next poll tries again, and fails again

        filler.unlink()
        stored = daemon.wait_for("article.stored", timeout=120)
        assert "death-penalty.html" in stored
        daemon.wait_for('poll.not_modified source="Test RSS"')
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in "".join(daemon.log)
    assert integrity(small_disk / "monitor.db") == ("ok", 4)


def test_a_read_only_state_directory_stops_the_daemon_at_start_with_a_clear_message(
    project: Path, site: LocalSite
) -> None:
    config = write_config(project, site)
    assert cli.main(["--config", str(config), "subscribers", "add", "a@example.org"]) == 0
    state = project / "state"
    # A read-only bind mount of state/ onto itself: read-only even for root.
    subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        daemon = MonitorProcess(config)
        code = daemon.process.wait(timeout=120)
        daemon.reader.join(timeout=5)
    finally:
        subprocess.run(["umount", str(state)], check=True)
    log = "".join(daemon.lines.queue)
    assert code == 1, log
    assert f"{state / 'monitor.pid'}: cannot write the lock file" in log
    assert "Read-only file system" in log
    assert "Traceback" not in log
    assert integrity(state / "monitor.db") == ("ok", 0)


@contextmanager
def read_only(state: Path) -> Iterator[None]:
    """``state`` read-only for a running daemon, then writable again.

    Linux refuses to remount read-only a file system (or a mount) with files open for writing,
    which the daemon's database is; when the kernel does it anyway (a disk error, ext4's
    errors=remount-ro), writes through the open files fail too. So: the database and its WAL
    made immutable (writes through the open files fail: SQLITE_IOERR), and a read-only bind
    mount of ``state`` over itself (new files fail: EROFS). The shared-memory index stays
    writable, as it stays in memory on a real read-only remount."""
    files = [str(p) for p in (state / "monitor.db", state / "monitor.db-wal") if p.exists()]
    subprocess.run(["chattr", "+i", *files], check=True)
    subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(state)], check=True)
        subprocess.run(["chattr", "-i", *files], check=True)


@pytest.mark.slow
def test_a_state_directory_turned_read_only_while_running_fails_clearly_and_recovers(
    project: Path, site: LocalSite
) -> None:
    state = project / "state"
    daemon = MonitorProcess(write_config(project, site))
    try:
        daemon.wait_for("poll.done", timeout=120)
        daemon.wait_for('poll.not_modified source="Test RSS"')
        with read_only(state):
            add_item(site, "death-penalty.html")
            error = daemon.wait_for("store_error", timeout=120)
            daemon.wait_for("store_error", timeout=60)  # the next poll tries again
            # Still serving while it cannot write.
            assert 'monitor_polls_total{status="error"}' in metrics_of(daemon)
        stored = daemon.wait_for("article.stored", timeout=120)
        daemon.wait_for('poll.not_modified source="Test RSS"')
    finally:
        assert daemon.stop() == 0
    assert f"{state / 'monitor.db'}: cannot" in error
    assert "state directory read-only" in error
    assert "death-penalty.html" in stored
    assert "Traceback" not in "".join(daemon.log)
    assert integrity(state / "monitor.db") == ("ok", 4)


# -- the clock jumping -----------------------------------------------------------------------

#: Debian's libfaketime (package `faketime`): preloaded, it adds the offset written in
#: FAKETIME_TIMESTAMP_FILE to the wall clock, re-read while the process runs; the monotonic
#: clock stays real, as when NTP or an operator steps a server's clock.
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def jump_of(line: str) -> int:
    found = re.search(r"by=([+-][0-9]+)s", line)
    assert found, line
    return int(found.group(1))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_clock_jumping_forward_and_back_keeps_polls_on_schedule_and_the_digest_sent_once(
    project: Path, site: LocalSite, tmp_path: Path
) -> None:
    assert LIBFAKETIME.exists(), "Debian's libfaketime is missing: apt-get install faketime"
    offset = tmp_path / "faketime"
    offset.write_text("+0\n", encoding="ascii")
    # The daily digest is due 90 minutes from now: the jump forward passes it.
    due = (datetime.now(UTC) + timedelta(minutes=90)).strftime("%H:%M")
    config = write_config(project, site, sources=f'[[digest]]\nname = "daily"\nat = "{due}"\n')
    assert cli.main(["--config", str(config), "subscribers", "add", "reader@example.org"]) == 0
    outbox = project / "state" / "outbox" / "new"
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    daemon = MonitorProcess(config, env=env)
    try:
        daemon.wait_for("poll.done", timeout=120)
        daemon.wait_for('poll.not_modified source="Test RSS"')

        offset.write_text("+3h\n", encoding="ascii")
        # The digest's time was jumped over: it is sent late, not skipped. The scheduler may
        # run it before the clock watch logs the jump, so the two lines come in either order.
        started = time.monotonic()
        forward = daemon.wait_for_each("clock.jumped", "digest.sent")["clock.jumped"]
        for _ in range(3):
            daemon.wait_for('poll.not_modified source="Test RSS"')

        offset.write_text("+0\n", encoding="ascii")
        back = daemon.wait_for("clock.jumped")
        for _ in range(3):  # within seconds, not three hours
            daemon.wait_for('poll.not_modified source="Test RSS"')
        seconds = time.monotonic() - started
    finally:
        assert daemon.stop() == 0

    assert abs(jump_of(forward) - 10800) < 60  # three hours, give or take the check's delay
    assert abs(jump_of(back) + 10800) < 60
    assert re.search(r"rescheduled=[1-9]", back), back
    # No storm: at most one poll per second of real time (every = "1s"). (A tick skipped
    # because the previous poll still ran is no storm: a loaded machine polls slowly.)
    after = "".join(daemon.log).split(forward, 1)[1]
    assert after.count("poll.not_modified") + after.count("poll.done") <= seconds + 3
    # The digest went out once, and not again when the clock went back over its time.
    assert len(list(outbox.iterdir())) == 1
    assert "reader@example.org" in next(outbox.iterdir()).read_text(encoding="utf-8")
