"""`monitor run` as a real subprocess: jobs fire, signals stop it cleanly, one instance only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO, LocalSite, MonitorProcess

pytestmark = pytest.mark.timeout(90)


#: `monitor run` as a subprocess (kept under this name for the other service tests).
Daemon = MonitorProcess


def daemon_config(project: Path, site: LocalSite) -> Path:
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
""",
        encoding="utf-8",
    )
    return config


def test_run_polls_on_schedule_and_stops_on_sigterm(project: Path, site: LocalSite) -> None:
    daemon = Daemon(daemon_config(project, site))
    daemon.wait_for("daemon.started")
    daemon.wait_for("poll.done")
    daemon.wait_for("poll.not_modified")  # the interval job fired again

    assert daemon.stop(signal.SIGTERM) == 0
    assert any("daemon.stopped" in line for line in daemon.log)
    assert (project / "state" / "feeds" / "all.xml").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_start_up_exits_0(project: Path, site: LocalSite, signum: int) -> None:
    daemon = Daemon(daemon_config(project, site))
    daemon.wait_for("daemon.starting")

    assert daemon.stop(signum) == 0
    assert any("daemon.stopped" in line for line in daemon.log)


def test_second_instance_refuses_naming_the_first(project: Path, site: LocalSite) -> None:
    config = daemon_config(project, site)
    first = Daemon(config)
    first.wait_for("daemon.started")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=30,
        )
        assert second.returncode == 1
        assert f"PID {first.process.pid}" in second.stderr
    finally:
        assert first.stop() == 0


def test_restart_after_kill_9_is_not_blocked(project: Path, site: LocalSite) -> None:
    config = daemon_config(project, site)
    first = Daemon(config)
    first.wait_for("daemon.started")
    first.process.kill()
    first.process.wait(timeout=10)
    first.reader.join(timeout=5)

    second = Daemon(config)
    second.wait_for("daemon.started")
    assert second.stop() == 0
