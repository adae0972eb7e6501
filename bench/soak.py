"""Soak benchmark (issue #8): `monitor run` with thousands of sources under the real scheduler.

    .venv/bin/python bench/soak.py [--sources 2000] [--ports 10] [--every 60] [--minutes 3]
                                   [--tracemalloc]

A feed farm runs in a child process (aiohttp, one loop, --ports ports on 127.0.0.1 to model
many hosts): one RSS feed per source, 5 items 90 days old (remembered, not fetched: max_age
"30d"), ETag/304. Each minute 1% of the feeds gain an item dated now, whose article page is
fetched, cleaned, matched and stored. `monitor run` (a subprocess, as a user runs it) polls
every source each --every seconds. The script samples the daemon's RSS and open file
descriptors from /proc after its first full round and at the end, and reads its /metrics:

    poll lag    how late polls started after their scheduled time (monitor_poll_lag_seconds)
    polls       done per minute against the schedule's sources * 60 / every
    skipped     scheduler ticks skipped because the source's previous poll still ran

With --tracemalloc the daemon runs under ``python -X tracemalloc=1`` (one frame: the
allocating line; deeper tracebacks make each snapshot take minutes) and dumps a snapshot on
SIGUSR1; the script takes one after the first full round and one at the end and adds the
allocation sites that grew most between them (a slow run: tracing costs time and memory).

Prints one JSON object on the last line. Peers: none run here (no other self-hosted monitor
runs a scheduler we could drive the same way); the figures are against the schedule itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 5


def serve_farm(sources: int, ports: int, ready: Any, started: float) -> None:
    """The farm's process: one aiohttp app on ``ports`` ports; writes the ports to ``ready``."""
    import asyncio

    from aiohttp import web
    from farm import listen  # bench/farm.py, beside this script

    old = datetime.now(UTC) - timedelta(days=90)

    def fresh_items(source: int) -> int:
        """New items so far: 1% of the sources gain one a minute (source-dependent phase)."""
        minutes = int((time.monotonic() - started) // 60)
        return sum(1 for m in range(minutes) if (source + m * 7) % 100 == 0)

    async def feed(request: web.Request) -> web.Response:
        source = int(request.match_info["n"])
        fresh = fresh_items(source)
        items = [
            (f"/a/{source}-new{k}.html", datetime.now(UTC) - timedelta(minutes=k))
            for k in range(fresh)
        ] + [(f"/a/{source}-{j}.html", old - timedelta(hours=j)) for j in range(ITEMS)]
        body = "".join(
            f"<item><title>Story {path}</title><link>{request.url.origin()}{path}</link>"
            f"<guid>{path}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
            for path, when in items
        )
        xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S{source}</title>{body}'
        data = (xml + "</channel></rss>").encode()
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=data, content_type="application/rss+xml", headers={"ETag": etag})

    async def article(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        text = "".join(
            f"<p>Paragraph {k} of {name}: the parliamentary elections in Kazakhstan were"
            f" observed by a mission that reported on polling stations in Astana.</p>"
            for k in range(6)
        )
        page = f"<html><head><title>{name}</title></head><body><article>{text}</article></body>"
        return web.Response(text=page + "</html>", content_type="text/html")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        app.router.add_get("/a/{name}", article)
        ready.send(await listen(app, ports))
        await asyncio.Event().wait()

    asyncio.run(main())


def proc_sample(pid: int) -> dict[str, int]:
    """RSS (KiB) and open file descriptors of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def scrape(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=120) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def lag_quantile(metrics: dict[str, float], q: float) -> float:
    """An upper bound of the q-quantile of the poll lag, from the histogram's buckets."""
    buckets = sorted(
        (float(m.group(1)), v)
        for k, v in metrics.items()
        if (m := re.fullmatch(r'monitor_poll_lag_seconds_bucket\{le="([0-9.e+]+)"\}', k))
    )
    total = metrics.get("monitor_poll_lag_seconds_count", 0)
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return float("inf")


#: The daemon under --tracemalloc: `monitor run` with a SIGUSR1 handler that dumps a snapshot
#: to <work>/snap-new (the script renames it once complete).
SNAPSHOTTING = """
import signal, sys, tracemalloc
from pathlib import Path
work = Path(sys.argv[1])
def dump(signum, frame):
    tracemalloc.take_snapshot().dump(str(work / "snap-new.partial"))
    (work / "snap-new.partial").rename(work / "snap-new")
signal.signal(signal.SIGUSR1, dump)
from monitor import cli
sys.exit(cli.main(["--config", str(work / "monitor.toml"), "run"]))
"""


def snapshot(pid: int, target: Path) -> None:
    """Ask the daemon for a tracemalloc snapshot and wait until it is written."""
    import signal

    done = target.parent / "snap-new"
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 900
    while not done.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the daemon wrote no tracemalloc snapshot in 900 s")
        time.sleep(0.5)
    done.rename(target)


def grown(before: Path, after: Path, top: int = 12) -> list[str]:
    """The allocation sites (file:line) whose live memory grew most between two snapshots."""
    import tracemalloc

    old, new = tracemalloc.Snapshot.load(str(before)), tracemalloc.Snapshot.load(str(after))
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = new.filter_traces(skip).compare_to(old.filter_traces(skip), "lineno")
    return [str(stat) for stat in stats[:top]]


def second_half_slope(series: list[tuple[int, int, int]], seconds: float) -> float:
    """MiB per minute: the least-squares slope of the (seconds, RSS KiB) samples taken in the
    second half of the run."""
    points = [(t / 60, rss / 1024) for t, rss, _ in series if t >= seconds / 2]
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return round(sum((x - mx) * (y - my) for x, y in points) / sxx, 3) if sxx else 0.0


def follow_log(
    daemon: subprocess.Popen[str],
) -> tuple[dict[str, int], Counter[str], list[str]]:
    """Keep reading the daemon's log in a thread so the pipe never fills; count the lines,
    the error lines by event, and keep a few examples."""
    import threading

    counted = {"lines": 0, "errors": 0}
    errors: Counter[str] = Counter()
    examples: list[str] = []

    def drain() -> None:
        assert daemon.stderr is not None
        for line in daemon.stderr:
            counted["lines"] += 1
            if " error " in line or " critical " in line:
                counted["errors"] += 1
                errors[line.split()[2] if len(line.split()) > 2 else line] += 1
                if len(examples) < 3:
                    examples.append(line.strip()[:300])

    threading.Thread(target=drain, daemon=True).start()
    return counted, errors, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--every", type=int, default=60, help="poll interval, seconds")
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--tracemalloc", action="store_true", help="diff allocation snapshots")
    parser.add_argument(
        "--warmup", type=float, help="seconds before the start sample (default: every + 15)"
    )
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    farm = multiprocessing.Process(
        target=serve_farm, args=(args.sources, args.ports, child, time.monotonic()), daemon=True
    )
    farm.start()
    ports: list[int] = parent.recv()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    (work / "rules").mkdir()
    (work / "rules" / "elections.toml").write_text(
        '[[rule]]\nid = "elections"\nquery = "elections NEAR/5 Kazakhstan"\n', encoding="utf-8"
    )
    sources = "".join(
        f'[[source]]\nname = "S{n}"\nurl = "http://127.0.0.1:{ports[n % len(ports)]}'
        f'/feed/{n}.xml"\nkind = "feed"\nevery = "{args.every}s"\n'
        for n in range(args.sources)
    )
    (work / "monitor.toml").write_text(
        f'[monitor]\nmax_age = "30d"\ntemplates_dir = "{ROOT / "templates"}"\n'
        f'\n{sources}\n[web]\nlisten = "127.0.0.1:0"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "monitor", "--config", str(work / "monitor.toml"), "run"]
    if args.tracemalloc:
        command = [sys.executable, "-X", "tracemalloc=1", "-c", SNAPSHOTTING, str(work)]
    daemon = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert daemon.stderr is not None
    base = ""
    for line in daemon.stderr:
        if "web.listening" in line:
            base = "http://" + re.search(r"address=(\S+)", line).group(1)  # type: ignore[union-attr]
            break
    counted, errors, examples = follow_log(daemon)
    started = time.monotonic()
    end = started + args.minutes * 60
    series = []  # (seconds, RSS KiB, fds) every 30 s, to tell warm-up from a leak
    warmup = args.warmup if args.warmup is not None else args.every + 15  # a full round
    first_at = started + min(warmup, args.minutes * 60 / 2)
    first: dict[str, int] = {}
    load_start = os.getloadavg()[0]
    first_metrics: dict[str, float] = {}
    while time.monotonic() < end:
        time.sleep(max(0.0, min(30.0, end - time.monotonic())))
        sample = {**proc_sample(daemon.pid), **{"t": round(time.monotonic() - started)}}
        series.append((sample["t"], sample["rss_kib"], sample["fds"]))
        if not first and time.monotonic() >= first_at:
            first, first_metrics = sample, scrape(base)
            if args.tracemalloc:
                snapshot(daemon.pid, work / "snap-1")
    last = {**proc_sample(daemon.pid), **{"t": round(time.monotonic() - started)}}
    metrics = scrape(base)
    growth = []
    if args.tracemalloc:
        snapshot(daemon.pid, work / "snap-2")
        growth = grown(work / "snap-1", work / "snap-2")
    daemon.terminate()
    stop_started = time.monotonic()
    try:
        daemon.wait(timeout=300)
    except subprocess.TimeoutExpired:  # report it with the figures rather than lose them
        daemon.kill()
        daemon.wait(timeout=60)
    stop_seconds = round(time.monotonic() - stop_started, 1)
    farm.terminate()

    polls = sum(v for k, v in metrics.items() if k.startswith("monitor_polls_total"))
    polls_between = polls - sum(
        v for k, v in first_metrics.items() if k.startswith("monitor_polls_total")
    )
    minutes_between = (last["t"] - first["t"]) / 60
    expected = args.sources * 60 / args.every
    result = {
        "sources": args.sources,
        "ports": args.ports,
        "every_s": args.every,
        "minutes": args.minutes,
        "polls": int(polls),
        "polls_per_min_steady": round(polls_between / minutes_between, 1),
        # The whole run against the schedule: the window from the first sample to the last
        # holds a whole number of intervals per source, not its length in minutes, so its
        # rate reads low by up to one interval's polls.
        "polls_per_min_whole": round(polls / args.minutes, 1),
        "polls_per_min_scheduled": expected,
        "on_schedule_ratio": round(polls_between / minutes_between / expected, 3),
        "lag_mean_s": round(
            metrics["monitor_poll_lag_seconds_sum"] / metrics["monitor_poll_lag_seconds_count"], 3
        ),
        "lag_p50_le_s": lag_quantile(metrics, 0.5),
        "lag_p99_le_s": lag_quantile(metrics, 0.99),
        "ticks_skipped": int(metrics.get("monitor_ticks_skipped_total", 0)),
        "articles": int(metrics.get("monitor_articles_stored_total", 0)),
        "load_avg_start": load_start,
        "rss_kib_start": first["rss_kib"],
        "rss_kib_end": last["rss_kib"],
        "rss_end_over_start": round(last["rss_kib"] / first["rss_kib"], 3),
        # Flat means no growth over the second half beyond noise: the least-squares slope of
        # the RSS samples taken in the second half of the run, in MiB per minute.
        "rss_slope_second_half_mib_per_min": second_half_slope(series, args.minutes * 60),
        "load_avg_end": os.getloadavg()[0],
        "fds_start": first["fds"],
        "fds_end": last["fds"],
        "series_t_rss_fds": series,
        "log_errors": counted["errors"],
        "log_errors_by_event": dict(errors),
        "log_error_examples": examples,
        "exit_status": daemon.returncode,
        "stop_seconds": stop_seconds,
    }
    if args.tracemalloc:
        result["tracemalloc_growth_top"] = growth
    print(json.dumps(result))


if __name__ == "__main__":
    main()
