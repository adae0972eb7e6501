"""`monitor run` as a real subprocess: jobs fire, signals stop it cleanly, one instance only."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.servers import LocalSite

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]


class Daemon:
    """`python -m monitor run` with its stderr read line by line in a thread."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Wait for a stderr line containing ``text``; fail with the log so far."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in:\n{''.join(self.log)}") from None
            self.log.append(line)
            if text in line:
                return line

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 35) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=5)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code


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
