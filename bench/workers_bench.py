"""Workers benchmark (issue #9): polls per minute with 1, 2 and 4 worker processes against one
PostgreSQL, and the SQLite single process, on one farm of sources.

    .venv/bin/python bench/workers_bench.py [--sources 20000] [--ports 8] [--workers 1,2,4]
        [--concurrency 4]

The farm (a subprocess) serves ``--sources`` feeds and listing pages (bench/farm.py's documents:
20 items each, 90 days old) spread over ``--ports`` ports, 50 ms latency per response, and
counts the requests per source. PostgreSQL is a throwaway cluster (tests/pg.py: Debian's
postgresql, as the postgres user when run as root).

Each PostgreSQL run: a fresh database; N `monitor run --role worker` processes with
``[workers] concurrency`` polls each at once; once they are up, one poll job per source is
queued (as the scheduler would, with its per-source locks) and the clock runs until the queue
is empty. The SQLite run: `poll_sources` in this process, the same polls with ``[monitor]
concurrency`` requests in flight (the single process's limit), so each side has the same
number of polls in flight per process.

Every source must be requested exactly once per run (no poll lost, none duplicated).
The database's share: PostgreSQL runs, the server's CPU time (its postmaster and backends)
against all CPU time (server and workers); SQLite, the CPU time of the one store thread
(where every SQLite call runs) against the process's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from tests.pg import PgCluster  # noqa: E402
from tests.servers import MonitorProcess  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

# -- the farm -----------------------------------------------------------------------------------


async def serve_farm(sources: int, ports: int, ports_file: Path) -> None:
    """Many sources per port at /s/<n>; GET /__counts gives the requests per source."""
    from aiohttp import web
    from farm import KINDS, LATENCY, Farm

    farm = Farm([b"<html><body><p>unused</p></body></html>"], sources)
    counts: Counter[int] = Counter()

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/__counts":
            return web.json_response({str(k): v for k, v in counts.items()})
        await asyncio.sleep(LATENCY)
        if not request.path.startswith("/s/"):  # robots.txt: none, so everything is allowed
            return web.Response(status=404, text="not found")
        number = int(request.path.rsplit("/", 1)[1])
        counts[number] += 1
        content_type, body = farm.document(number, f"http://127.0.0.1:{request.url.port}")
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    bound = []
    for _ in range(ports):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        bound.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    lines = [f"{KINDS[n % 3]} http://127.0.0.1:{bound[n % ports]}/s/{n}" for n in range(sources)]
    ports_file.write_text("\n".join(lines) + "\n")  # noqa: ASYNC240
    await asyncio.Event().wait()


class FarmProcess:
    def __init__(self, sources: int, ports: int, workdir: Path) -> None:
        self.ports_file = workdir / "farm.txt"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-farm",
                str(sources),
                str(ports),
                str(self.ports_file),
            ]
        )
        deadline = time.monotonic() + 120
        while not self.ports_file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the farm did not start")
            time.sleep(0.05)
        self.sources = [tuple(line.split()) for line in self.ports_file.read_text().splitlines()]

    def counts(self) -> Counter[int]:
        base = self.sources[0][1].rsplit("/s/", 1)[0]
        with urllib.request.urlopen(f"{base}/__counts", timeout=30) as response:
            return Counter({int(k): v for k, v in json.loads(response.read()).items()})

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- configuration ------------------------------------------------------------------------------


def write_config(farm: FarmProcess, directory: Path, tail: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "rules").mkdir()
    for rule in (ROOT / "rules").glob("*.toml"):
        (directory / "rules" / rule.name).write_bytes(rule.read_bytes())
    parts = [
        f'[monitor]\nstate_dir = "state"\ntemplates_dir = "{ROOT / "templates"}"\n'
        'max_age = "30d"\ntimezone = "UTC"\nshutdown_timeout = "10s"\n'
        "\n[web]\nenabled = false\n" + tail
    ]
    for n, (kind, url) in enumerate(farm.sources):
        parts.append(f'\n[[source]]\nname = "source {n}"\nurl = "{url}"\nevery = "1h"\n')
        if kind == "page":
            parts.append(
                'kind = "page"\nitems = ".views-row"\nlink = "a"\ntitle = "h3"\ndate = ".date"\n'
            )
        else:
            parts.append('kind = "feed"\n')
    config = directory / "monitor.toml"
    config.write_text("".join(parts), encoding="utf-8")
    return config


# -- CPU time -----------------------------------------------------------------------------------


def cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (and of its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / TICK


def server_cpu(cluster: PgCluster) -> float:
    """CPU seconds of the cluster's postmaster, its reaped backends and its live ones."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = cpu_of(postmaster, children=True)
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        try:
            total += cpu_of(int(child))
        except FileNotFoundError:
            continue
    return total


# -- runs ---------------------------------------------------------------------------------------


def check_once(farm: FarmProcess, before: Counter[int], label: str) -> int:
    """How many sources were not requested exactly once in this run (0 is right)."""
    after = farm.counts()
    wrong = [n for n in range(len(farm.sources)) if after[n] - before[n] != 1]
    if wrong:
        print(f"  {label}: {len(wrong)} sources not polled exactly once, e.g. {wrong[:5]}")
    return len(wrong)


async def queue_polls(url: str, names: list[str]) -> None:
    from monitor import workers

    app = workers.make_app(url)
    async with app.open_async():
        pending = iter(names)

        async def feeder() -> None:
            for name in pending:
                lock, key = f"source:{name}", f"poll:{name}"
                await workers.defer(app, workers.POLL, lock=lock, queueing_lock=key, source=name)

        await asyncio.gather(*(feeder() for _ in range(8)))


def run_postgres(
    cluster: PgCluster, farm: FarmProcess, workdir: Path, count: int, concurrency: int
) -> dict[str, Any]:
    from monitor.store import queue

    url = cluster.create_database("bench")
    config = write_config(
        farm,
        workdir / f"pg{count}",
        f'\n[store]\nurl = "{url}"\n\n[workers]\nconcurrency = {concurrency}\n',
    )
    queue.ensure_schema(url)
    processes = [MonitorProcess(config, "run", "--role", "worker") for _ in range(count)]
    try:
        for process in processes:
            process.wait_for("worker.started", timeout=300)
        names = [f"source {n}" for n in range(len(farm.sources))]
        before = farm.counts()
        server0 = server_cpu(cluster)
        workers0 = sum(cpu_of(p.process.pid) for p in processes)
        start = time.perf_counter()
        asyncio.run(queue_polls(url, names))
        while True:
            found = queue.status(url, timedelta_seconds(60))
            if found.depth == 0 and found.running == 0:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        server = server_cpu(cluster) - server0
        worker_cpu = sum(cpu_of(p.process.pid) for p in processes) - workers0
    finally:
        for process in processes:
            process.stop()
    wrong = check_once(farm, before, f"{count} worker(s)")
    return {
        "label": f"PostgreSQL, {count} worker{'s' if count > 1 else ''}",
        "seconds": elapsed,
        "polls_per_minute": len(names) / elapsed * 60,
        "db_share": server / (server + worker_cpu) if server + worker_cpu else 0.0,
        "cpu_ms_per_poll": (server + worker_cpu) / len(names) * 1000,
        "not_once": wrong,
    }


def timedelta_seconds(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def run_sqlite(farm: FarmProcess, workdir: Path, concurrency: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from monitor import config as config_module
    from monitor import pipeline, runtime

    path = write_config(farm, workdir / "sqlite", "")
    text = path.read_text().replace("[monitor]\n", f"[monitor]\nconcurrency = {concurrency}\n", 1)
    path.write_text(text)
    config = config_module.load(path)

    async def poll() -> tuple[float, float, float]:
        async with runtime.open_services(config) as services:
            store0 = await services.db(time.thread_time)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            await pipeline.poll_sources(services, config.sources, datetime.now(UTC))
            elapsed = time.perf_counter() - start
            store = await services.db(time.thread_time) - store0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            return elapsed, store, cpu

    before = farm.counts()
    elapsed, store, cpu = asyncio.run(poll())
    wrong = check_once(farm, before, "SQLite")
    return {
        "label": "SQLite, single process",
        "seconds": elapsed,
        "polls_per_minute": len(config.sources) / elapsed * 60,
        "db_share": store / cpu if cpu else 0.0,
        "cpu_ms_per_poll": cpu / len(config.sources) * 1000,
        "not_once": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=20000)
    parser.add_argument("--ports", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=4, help="polls in flight per process")
    parser.add_argument("--serve-farm", nargs=3, metavar=("SOURCES", "PORTS", "FILE"))
    args = parser.parse_args()
    if args.serve_farm:
        sources, ports, file = args.serve_farm
        asyncio.run(serve_farm(int(sources), int(ports), Path(file)))
        return
    counts = [int(n) for n in args.workers.split(",")]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the cluster on SIGTERM too
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp, PgCluster() as cluster:
        workdir = Path(tmp)
        farm = FarmProcess(args.sources, args.ports, workdir)
        try:
            results = [run_sqlite(farm, workdir, args.concurrency)]
            print(json.dumps(results[-1]), flush=True)
            for count in counts:
                results.append(run_postgres(cluster, farm, workdir, count, args.concurrency))
                print(json.dumps(results[-1]), flush=True)
        finally:
            farm.close()
    base = next(r for r in results if r["label"].endswith(", 1 worker"))
    sqlite = results[0]
    print(
        f"\n{args.sources} sources on {args.ports} ports, 50 ms latency,"
        f" {args.concurrency} polls in flight per process"
    )
    print(
        "| run | seconds | polls/min | vs 1 worker | vs SQLite | DB share of CPU"
        " | CPU ms per poll | not once |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['label']} | {r['seconds']:.1f} | {r['polls_per_minute']:,.0f} |"
            f" {r['polls_per_minute'] / base['polls_per_minute']:.2f}x |"
            f" {r['polls_per_minute'] / sqlite['polls_per_minute']:.2f}x |"
            f" {r['db_share']:.0%} | {r['cpu_ms_per_poll']:.0f} | {r['not_once']} |"
        )


if __name__ == "__main__":
    main()
