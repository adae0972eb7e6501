"""`monitor run --role scheduler|worker|web` on a real PostgreSQL server (issue #9).

Real processes: one scheduler and worker processes (MonitorProcess), a LocalSite with a farm of
feeds whose every request is watched (two polls of one feed at the same time would show as two
requests in flight), and a LocalSMTP that receives the alerts.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import cli
from tests.pg import PASSWORD, PgCluster
from tests.servers import LocalSite, LocalSMTP, MonitorProcess, Request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

FILLER = (
    "ministry harvest railway budget river school museum forum treaty winter grain bridge"
    " tariff library pipeline village council harbour festival archive lecture clinic ferry"
).split()


def article_html(feed: int, number: int) -> str:
    """An article on the death penalty (an immediate-alert topic of the starter rules), with
    prose of its own so no two are near-duplicates."""
    title = f"Feed {feed} story {number}: the death penalty in Kazakhstan"
    rng = random.Random(feed * 1000 + number)
    paragraphs = "".join(
        "<p>The court in Almaty discussed the death penalty in Kazakhstan again. "
        + " ".join(rng.choice(FILLER) for _ in range(40))
        + ".</p>"
        for _ in range(3)
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    )


class Farm:
    """Feeds on a LocalSite, each answering after ``delay`` seconds, with the most requests
    one feed ever had in flight at once."""

    def __init__(self, site: LocalSite, feeds: int, items: int, delay: float) -> None:
        self.site = site
        self.feeds = feeds
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.polls: Counter[str] = Counter()
        root = site.root
        (root / "a").mkdir(exist_ok=True)
        for feed in range(feeds):
            entries = ""
            for n in range(items):
                path = f"a/{feed}-{n}.html"
                (root / path).write_text(article_html(feed, n), encoding="utf-8")
                entries += (
                    f"<item><title>Feed {feed} story {n}</title><link>{site.url(path)}</link>"
                    f"<guid>f{feed}-{n}</guid></item>"
                )
            body = (
                '<?xml version="1.0"?><rss version="2.0"><channel>'
                f"<title>Feed {feed}</title>{entries}</channel></rss>"
            ).encode()
            site.route(f"feeds/f{feed}.xml", handler=self._answer(f"f{feed}", body, delay))

    def _answer(
        self, name: str, body: bytes, delay: float
    ) -> Callable[[Request], tuple[int, dict[str, str], bytes]]:
        def answer(request: Request) -> tuple[int, dict[str, str], bytes]:
            with self.lock:
                self.in_flight[name] += 1
                self.polls[name] += 1
                self.most[name] = max(self.most[name], self.in_flight[name])
            try:
                time.sleep(delay)  # a slow server, so overlapping polls would overlap here
                return 200, {"Content-Type": "application/rss+xml"}, body
            finally:
                with self.lock:
                    self.in_flight[name] -= 1

        return answer

    def sources(self, every: str) -> str:
        return "".join(
            f'[[source]]\nname = "Feed {i}"\nurl = "{self.site.url(f"feeds/f{i}.xml")}"\n'
            f'kind = "feed"\nevery = "{every}"\n\n'
            for i in range(self.feeds)
        )


def write_config(project: Path, pg_url: str, smtp: LocalSMTP, sources: str, extra: str) -> Path:
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "UTC"
max_age = "0"
shutdown_timeout = "10s"

[store]
url = "{pg_url}"

{sources}
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "Press Monitor <monitor@example.org>"

[[digest]]
name = "daily"
at = "03:00"

[web]
listen = "127.0.0.1:0"

{extra}
""",
        encoding="utf-8",
    )
    argv = ["--config", str(config), "subscribers", "add", "dp@example.org"]
    assert cli.main([*argv, "--topics", "Death penalty"]) == 0
    return config


def alerted_urls(smtp: LocalSMTP) -> Counter[str]:
    """How many alert messages named each article (by its link)."""
    named: Counter[str] = Counter()
    for message in smtp.messages:
        if message["X-Press-Monitor-Kind"] != "alert":
            continue
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        named.update({word for word in text.split() if "/a/" in word})
    return named


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_workers_share_the_polls_never_poll_one_source_at_once_and_alert_once(
    project: Path, site: LocalSite, smtp: LocalSMTP, pg_url: str
) -> None:
    farm = Farm(site, feeds=4, items=2, delay=0.3)
    config = write_config(
        project, pg_url, smtp, farm.sources(every="1s"), "[workers]\nconcurrency = 4\n"
    )
    scheduler = MonitorProcess(config, "run", "--role", "scheduler")
    workers = [MonitorProcess(config, "run", "--role", "worker") for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_for("worker.started", timeout=120)
        wait_until(lambda: len(alerted_urls(smtp)) == 8, 120, "8 articles alerted")
        # More rounds of polls: none may alert anything again.
        rounds = min(farm.polls.values())
        wait_until(lambda: min(farm.polls.values()) >= rounds + 2, 60, "2 more rounds of polls")
    finally:
        for process in (scheduler, *workers):
            assert process.stop() == 0, "".join(process.log)
    polled_by = [sum("job.polled" in line for line in worker.log) for worker in workers]
    assert max(farm.most.values()) == 1, f"a feed polled twice at once: {farm.most}"
    assert all(count > 0 for count in polled_by), f"one worker did every poll: {polled_by}"
    named = alerted_urls(smtp)
    assert len(named) == 8
    assert set(named.values()) == {1}, f"articles alerted more than once: {named}"


def test_a_worker_killed_mid_poll_has_its_job_finished_by_another(
    project: Path, site: LocalSite, smtp: LocalSMTP, pg_url: str
) -> None:
    farm = Farm(site, feeds=1, items=3, delay=1.0)
    config = write_config(
        project,
        pg_url,
        smtp,
        farm.sources(every="1h"),  # one poll only, unless a dead worker's job is run again
        '[workers]\nheartbeat = "0.5s"\nstalled_after = "2s"\n',
    )
    scheduler = MonitorProcess(config, "run", "--role", "scheduler")
    doomed = MonitorProcess(config, "run", "--role", "worker")
    survivor: MonitorProcess | None = None
    try:
        doomed.wait_for("worker.started", timeout=120)
        wait_until(lambda: farm.in_flight["f0"] == 1, 30, "the poll to start")
        doomed.kill()  # SIGKILL in the middle of the poll: no clean-up of any kind
        survivor = MonitorProcess(config, "run", "--role", "worker")
        survivor.wait_for("job.rescued", timeout=60)
        survivor.wait_for("job.polled", timeout=60)
        wait_until(lambda: len(alerted_urls(smtp)) == 3, 30, "3 articles alerted")
    finally:
        assert scheduler.stop() == 0, "".join(scheduler.log)
        if survivor is not None:
            assert survivor.stop() == 0, "".join(survivor.log)
    assert farm.polls["f0"] == 2  # the killed poll, and its rescue
    assert set(alerted_urls(smtp).values()) == {1}


def test_roles_other_than_all_need_a_postgresql_store(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "monitor.toml"
    assert cli.main(["--config", str(config), "run", "--role", "worker"]) == 2
    err = capsys.readouterr().err
    assert "store.url" in err
    assert "PostgreSQL" in err


def test_status_and_metrics_show_each_worker_and_the_queue(
    project: Path,
    site: LocalSite,
    smtp: LocalSMTP,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    farm = Farm(site, feeds=2, items=1, delay=0.0)
    config = write_config(
        project,
        pg_url,
        smtp,
        farm.sources(every="1h"),
        '[workers]\nheartbeat = "0.5s"\nstalled_after = "2s"\n',
    )
    web = MonitorProcess(config, "run", "--role", "web")
    worker = MonitorProcess(config, "run", "--role", "worker")
    try:
        line = worker.wait_for("worker.started", timeout=120)
        worker_id = line.split("worker_id=")[1].split()[0]
        base = "http://" + web.wait_for("web.listening", timeout=60).split("address=")[1].strip()

        def status() -> str:
            capsys.readouterr()
            assert cli.main(["--config", str(config), "status"]) == 0
            return capsys.readouterr().out

        def metrics() -> str:
            with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
                text: str = response.read().decode()
                return text

        assert "workers: 1 alive, 0 stalled; queue: 0 waiting" in status()
        assert f"worker {worker_id}: alive, 0 job(s) running" in status()
        wait_until(lambda: 'monitor_workers{state="alive"} 1.0' in metrics(), 30, "metrics")
        assert f'monitor_worker_up{{worker="{worker_id}"}} 1.0' in metrics()
        worker.kill()
        wait_until(lambda: "0 alive, 1 stalled" in status(), 30, "the dead worker to show")
        assert f"worker {worker_id}: STALLED" in status()
        wait_until(
            lambda: f'monitor_worker_up{{worker="{worker_id}"}} 0.0' in metrics(),
            30,
            "the dead worker in /metrics",
        )
        # No worker alive: the scheduler's polls wait in the queue.
        scheduler = MonitorProcess(config, "run", "--role", "scheduler")
        try:
            wait_until(lambda: "queue: 2 waiting (2 due)" in status(), 30, "2 polls waiting")
            wait_until(
                lambda: 'monitor_queue_jobs{state="waiting"} 2.0' in metrics(), 30, "depth 2"
            )
        finally:
            assert scheduler.stop() == 0, "".join(scheduler.log)
    finally:
        assert web.stop() == 0, "".join(web.log)


def test_workers_killed_at_random_points_lose_no_article_and_alert_none_twice(
    project: Path,
    site: LocalSite,
    smtp: LocalSMTP,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    farm = Farm(site, feeds=4, items=3, delay=0.5)
    config = write_config(
        project,
        pg_url,
        smtp,
        farm.sources(every="1s"),
        # Not shorter: on a loaded machine a live worker's heartbeat can be seconds late, and
        # a live worker taken for dead has its job run twice at once.
        '[workers]\nheartbeat = "0.5s"\nstalled_after = "6s"\n',
    )
    rng = random.Random(9)
    scheduler = MonitorProcess(config, "run", "--role", "scheduler")
    steady = MonitorProcess(config, "run", "--role", "worker")
    try:
        steady.wait_for("worker.started", timeout=120)
        for _ in range(3):
            doomed = MonitorProcess(config, "run", "--role", "worker")
            doomed.wait_for("worker.started", timeout=120)
            for _ in range(rng.randint(1, 25)):  # a random point: after its n-th log line
                if doomed.next_line(timeout=10) is None:
                    break
            doomed.kill()
        steady.wait_for("job.rescued", timeout=60)  # at least one kill came mid-job
        rounds = min(farm.polls.values())
        wait_until(lambda: min(farm.polls.values()) >= rounds + 3, 60, "3 more rounds of polls")
    finally:
        assert scheduler.stop() == 0, "".join(scheduler.log)
        assert steady.stop() == 0, "".join(steady.log)
    assert max(farm.most.values()) == 1, f"a feed polled twice at once: {farm.most}"
    # An alert is sent at most once (DESIGN §9), whoever dies when.
    alerted = alerted_urls(smtp)
    assert set(alerted.values()) <= {1}, f"articles alerted more than once: {alerted}"
    # Nothing lost: a last poll finds every item already stored (an item is remembered in
    # the transaction that stores its article).
    capsys.readouterr()
    assert cli.main(["--config", str(config), "poll", "--once", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sources_ok"] == 4
    assert summary["new_items"] == 0


def test_a_worker_older_than_the_database_schema_refuses_to_start_and_says_why(
    project: Path, smtp: LocalSMTP, pg_url: str
) -> None:
    import psycopg

    from monitor.store.schema import SCHEMA_VERSION

    config = write_config(project, pg_url, smtp, "", "")  # the store is made and migrated
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as a newer press-monitor leaves it
        conn.execute("UPDATE monitor_schema SET version = %s", (SCHEMA_VERSION + 1,))
    worker = MonitorProcess(config, "run", "--role", "worker")
    assert worker.process.wait(timeout=60) == 1
    worker.stop()
    log = "".join(worker.log)
    assert f"schema {SCHEMA_VERSION + 1}, this one knows {SCHEMA_VERSION}" in log
    assert "upgrade press-monitor on this machine" in log
    assert "pm-test-secret" not in log  # the password is never shown
    with psycopg.connect(pg_url) as conn:  # it never joined the workers
        assert conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone() in (
            None,
            (0,),
        )


def test_a_wrong_database_password_stops_a_role_with_exit_status_2(
    project: Path, pg_cluster: PgCluster, pg_url: str
) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    config = project / "monitor.toml"
    config.write_text(
        f'[monitor]\ntimezone = "UTC"\n\n[store]\nurl = "{wrong}"\n', encoding="utf-8"
    )
    scheduler = MonitorProcess(config, "run", "--role", "scheduler")
    assert scheduler.process.wait(timeout=60) == 2
    scheduler.stop()
    log = "".join(scheduler.log)
    assert f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/" in log
    assert "cannot connect to the database" in log
    assert "not-the-password" not in log


class SilentSMTP:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word: a sender
    connected to it waits for the greeting, in the middle of sending, as long as the test
    likes. ``connected`` is set when the first sender arrives."""

    def __init__(self) -> None:
        import socket

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.port = int(self.socket.getsockname()[1])
        self.connected = threading.Event()
        self.held: list[Any] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.held.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.socket.close()
        for conn in self.held:
            conn.close()


def queue_digest(pg_url: str, digest: str) -> None:
    """Queue one digest job, as the scheduler does at the digest's time."""
    import asyncio

    from monitor import workers

    async def defer() -> None:
        app = workers.make_app(pg_url)
        async with app.open_async():
            await workers.defer(
                app,
                workers.DIGEST,
                lock=workers.OUTBOX,
                queueing_lock=f"digest:{digest}",
                digest=digest,
            )

    asyncio.run(defer())


def test_a_digest_cut_off_by_a_killed_worker_goes_out_with_the_next_digest_send(
    project: Path,
    site: LocalSite,
    smtp: LocalSMTP,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    farm = Farm(site, feeds=1, items=2, delay=0.0)
    config = write_config(project, pg_url, smtp, farm.sources(every="1h"), "")
    argv = ["--config", str(config)]
    assert cli.main([*argv, "poll", "--once"]) == 0  # 2 articles stored, matched and alerted
    smtp.wait_for(1)
    silent = SilentSMTP()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f"port = {smtp.port}", f"port = {silent.port}"), "utf-8")
    worker = MonitorProcess(config, "run", "--role", "worker")
    try:
        worker.wait_for("worker.started", timeout=120)
        queue_digest(pg_url, "daily")
        assert silent.connected.wait(60), "".join(worker.log)  # the digest is being sent
        worker.kill()  # SIGKILL mid-send: its digest is recorded 'sending', never finished
    finally:
        silent.close()
    config.write_text(text, "utf-8")  # the mail server is back; no worker is running
    capsys.readouterr()
    assert cli.main([*argv, "digest", "send", "--now"]) == 0
    out = capsys.readouterr().out
    digests = [m for m in smtp.wait_for(2, timeout=30) if m["X-Press-Monitor-Kind"] == "digest"]
    assert len(digests) == 1, out
    body = digests[0].get_body(("plain",))
    assert body is not None
    named = {word for word in body.get_content().split() if "/a/0-" in word}
    assert len(named) == 2, out  # both articles of feed 0


def test_a_job_whose_end_was_never_recorded_is_run_again_by_its_own_worker(
    project: Path, site: LocalSite, smtp: LocalSMTP, pg_url: str
) -> None:
    # PostgreSQL restarting as a job finishes leaves it "doing" under a worker that is alive
    # (procrastinate only logs the failed update). Its heartbeat is on time, so no other worker
    # takes the job for stalled, and its lock would hold back every later poll of the source.
    # The state is made here directly: a poll job of this worker, "doing", that nothing runs.
    import asyncio

    import psycopg

    from monitor.workers import POLL, make_app

    farm = Farm(site, feeds=1, items=2, delay=0.0)
    config = write_config(
        project, pg_url, smtp, farm.sources(every="1h"), '[workers]\nheartbeat = "0.5s"\n'
    )
    worker = MonitorProcess(config, "run", "--role", "worker")
    try:
        started = worker.wait_for("worker.started", timeout=120)
        worker_id = int(started.split("worker_id=")[1].split()[0])

        async def defer_later() -> int:
            app = make_app(pg_url)
            async with app.open_async():
                task = app.configure_task(
                    POLL,
                    lock="source:Feed 0",
                    queueing_lock="poll:Feed 0",
                    schedule_in={"hours": 1},
                )
                return int(await task.defer_async(source="Feed 0"))

        job_id = asyncio.run(defer_later())
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s,"
                " scheduled_at = NULL WHERE id = %s",
                (worker_id, job_id),
            )
        wait_until(lambda: len(alerted_urls(smtp)) == 2, 40, "the source polled, 2 alerts")
    finally:
        assert worker.stop() == 0, "".join(worker.log)
    assert farm.polls["f0"] == 1
    assert any("job.orphan_rescued" in line for line in worker.log), "".join(worker.log)


def test_the_daily_maintenance_clears_ended_jobs_older_than_a_week(
    project: Path, site: LocalSite, smtp: LocalSMTP, pg_url: str
) -> None:
    # Months unattended: the queue keeps the jobs that did not succeed (for a look at why),
    # but not forever. A failed job from 8 days ago goes, one from an hour ago stays.
    import asyncio

    import psycopg

    from monitor.workers import MAINTAIN, POLL, defer, make_app

    farm = Farm(site, feeds=1, items=1, delay=0.0)
    config = write_config(project, pg_url, smtp, farm.sources(every="1h"), "")

    async def failed_jobs() -> list[int]:
        app = make_app(pg_url)
        async with app.open_async():
            ids = []
            for n in range(2):
                task = app.configure_task(POLL, schedule_in={"hours": 1})
                ids.append(int(await task.defer_async(source=f"gone {n}")))
            return ids

    worker = MonitorProcess(config, "run", "--role", "worker")
    try:
        worker.wait_for("worker.started", timeout=120)  # the queue's schema is in place
        old, recent = asyncio.run(failed_jobs())
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE procrastinate_jobs SET status = 'failed' WHERE id = ANY(%s)",
                ([old, recent],),
            )
            conn.execute(
                "UPDATE procrastinate_events SET at = now() - interval '8 days' WHERE job_id = %s",
                (old,),
            )

        async def queue_maintenance() -> None:
            app = make_app(pg_url)
            async with app.open_async():
                await defer(app, MAINTAIN, lock="maintain", queueing_lock="maintain")

        asyncio.run(queue_maintenance())
        worker.wait_for("queue.pruned", timeout=30)
    finally:
        assert worker.stop() == 0, "".join(worker.log)
    with psycopg.connect(pg_url) as conn:
        left = {row[0] for row in conn.execute("SELECT id FROM procrastinate_jobs")}
    assert old not in left
    assert recent in left
