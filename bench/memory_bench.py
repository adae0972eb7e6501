"""Memory over repeated polls (issues #4 and #8): RSS of one process, poll after poll.

    .venv/bin/python bench/memory_bench.py [--sources 200] [--ports 10] [--polls 50]
        [--mode service|once] [--trim] [--arena-max N] [--tracemalloc]

A feed farm runs in a child process (aiohttp, --ports ports on 127.0.0.1 to model several
hosts): one RSS feed per source with 5 items 90 days old (remembered, never fetched) and, from
the second poll on, a new item dated now in a tenth of the sources at each poll (their
article pages are fetched, cleaned, matched and stored; the feed keeps its last 3 new items,
so its size stays the same). ETag/304 for the others.

The measured process is a subprocess of its own (so that this script's memory stays out):

    service   one set of services (store, HTTP client, cleaner pool) and one Daemon, every
              source polled through ``Daemon.poll`` at each round: the daemon's code path
              without the scheduler's clock
    once      ``admin.poll_once`` at each round: `monitor poll --once` run again and again in
              one process (new services each time)

After each poll it records its RSS, the RSS of its children (the cleaner processes), its open
file descriptors and the number of objects the garbage collector tracks. ``--trim`` also
calls glibc's ``malloc_trim(0)`` after each poll and records the RSS after it: memory that
trimming gives back was free but kept by the allocator (fragmentation, arenas), not live.
``--arena-max N`` runs it with ``MALLOC_ARENA_MAX=N``. ``--tracemalloc`` traces Python
allocations (one frame) and prints the allocation sites that grew most between the middle
poll and the last.

Prints one JSON object on the last line: the series, and for each of them the slope over the
second half of the polls (least squares, per poll) and the growth from the middle to the end.
There is no peer here: the figure is a process against its own earlier self.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OLD_ITEMS = 5
#: New items a feed keeps (older new ones drop off the feed, as on a real site).
KEEP_NEW = 3
#: One source in this many gains an item at each poll.
FRESH_ONE_IN = 10
WORDS = (
    "parliament election observers Astana Almaty ministry budget river harvest court appeal"
    " journalist festival delegation university railway bank drought embassy treaty museum"
).split()


def serve_farm(ports: int, ready: Any, current: Any, one_in: int) -> None:
    """The farm's process: one aiohttp app on ``ports`` ports; sends the ports to ``ready``.
    ``current`` (a shared integer) is the poll round the bench is in; one source in
    ``one_in`` gains an item per round (0: none)."""
    import asyncio
    import hashlib

    from aiohttp import web
    from farm import listen  # bench/farm.py, beside this script

    old = datetime.now(UTC) - timedelta(days=90)
    born: dict[tuple[int, int], datetime] = {}

    def items(source: int) -> list[tuple[str, datetime]]:
        rounds = [r for r in range(1, current.value + 1) if one_in and (source + r) % one_in == 0]
        fresh = [
            (f"/a/{source}-r{r}.html", born.setdefault((source, r), datetime.now(UTC)))
            for r in rounds[-KEEP_NEW:]
        ]
        return fresh + [
            (f"/a/{source}-{j}.html", old - timedelta(hours=j)) for j in range(OLD_ITEMS)
        ]

    async def feed(request: web.Request) -> web.Response:
        source = int(request.match_info["n"])
        body = "".join(
            f"<item><title>Story {path}</title><link>{request.url.origin()}{path}</link>"
            f"<guid>{path}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
            for path, when in items(source)
        )
        xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S{source}</title>{body}'
        data = (xml + "</channel></rss>").encode()
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=data, content_type="application/rss+xml", headers={"ETag": etag})

    async def article(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        seed = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
        # Different words per article, so that no two are near-duplicates of each other.
        paragraphs = "".join(
            "<p>"
            + " ".join(
                WORDS[(seed >> (k + i)) % len(WORDS)] + f"{(seed + i * k) % 997}" for i in range(40)
            )
            + f". Elections in Kazakhstan, paragraph {k} of {name}.</p>"
            for k in range(6)
        )
        page = f"<html><head><title>{name}</title></head><body><article>{paragraphs}</article>"
        return web.Response(text=page + "</body></html>", content_type="text/html")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}.xml", feed)
        app.router.add_get("/a/{name}", article)
        ready.send(await listen(app, ports))
        await asyncio.Event().wait()

    asyncio.run(main())


#: The measured process. argv: config, polls, mode, trim (0/1), tracemalloc (0/1). Before each
#: poll it prints "round N" and waits for a line on stdin: the bench has told the farm.
MEASURED = r"""
import asyncio, ctypes, gc, json, os, sys, tracemalloc
from pathlib import Path
from monitor import admin, config as cfg, daemon as dmn, runtime

path, polls, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
trim, traced = sys.argv[4] == "1", sys.argv[5] == "1"
if traced:
    tracemalloc.start(1)
config = cfg.load(path)
libc = ctypes.CDLL("libc.so.6")
sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library _sqlite3 links: its global counters
sqlite.sqlite3_memory_used.restype = ctypes.c_int64

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc.mallinfo2.restype = MallInfo2

def rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

def children_rss():
    total = 0.0
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[1] == me or _grand(fields[1], me):
                    total += rss(entry.name)
            except OSError:
                continue
    return total

def _grand(ppid, me):
    try:
        return (Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == me
    except OSError:
        return False

samples, snaps = [], {}

def sample(n, ok, articles):
    gc.collect()
    row = {
        "poll": n,
        "rss": round(rss("self"), 2),
        "children_rss": round(children_rss(), 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "objects": len(gc.get_objects()),
        # SQLite's own allocations (page cache, statements), and glibc's bytes in use
        # (allocated chunks of every arena plus mmapped blocks) and free but kept.
        "sqlite": round(sqlite.sqlite3_memory_used() / 2**20, 2),
        "malloc_used": round((info := libc.mallinfo2()).uordblks / 2**20 + info.hblkhd / 2**20, 2),
        "malloc_free": round(info.fordblks / 2**20, 2),
        "ok": ok,
        "articles": articles,
    }
    if traced:
        row["traced"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
        if n in (polls // 2, polls - 1):
            snaps[n] = tracemalloc.take_snapshot()
    if trim:
        libc.malloc_trim(0)
        row["rss_trimmed"] = round(rss("self"), 2)
    samples.append(row)

def next_round(n):
    print(f"round {n}", flush=True)
    sys.stdin.readline()

async def service():
    d = dmn.Daemon(config)
    async with runtime.open_services(config) as services:
        d.services = services
        services.metrics = d.metrics
        for n in range(polls):
            next_round(n)
            before = dict(d.counts)
            await asyncio.gather(*(d.poll(source) for source in config.sources))
            done = {k: v - before.get(k, 0) for k, v in d.counts.items()}
            ok = done.get("polls_ok", 0) + done.get("polls_not_modified", 0)
            sample(n, ok, done.get("articles", 0))
            await asyncio.sleep(1.05)  # every = 1s: each source is due again

if mode == "service":
    asyncio.run(service())
else:
    for n in range(polls):
        next_round(n)
        results = admin.poll_once(config, config.sources, progress=False)
        ok = sum(r.status != "error" for r in results)
        sample(n, ok, sum(r.new_articles for r in results))
out = {"samples": samples}
if traced:
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    a, b = (snaps[k].filter_traces(skip) for k in (polls // 2, polls - 1))
    out["grown"] = [str(s) for s in b.compare_to(a, "lineno")[:15]]
print("RESULT " + json.dumps(out), flush=True)
"""


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument(
        "--fresh-one-in",
        type=int,
        default=FRESH_ONE_IN,
        help="one source in this many gains an item per poll; 0: none (all 304)",
    )
    parser.add_argument("--mode", choices=("service", "once"), default="service")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each poll")
    parser.add_argument("--arena-max", type=int, help="run with MALLOC_ARENA_MAX=N")
    parser.add_argument("--tracemalloc", action="store_true", help="diff Python allocations")
    args = parser.parse_args()

    current = multiprocessing.Value("i", 0)
    parent, child = multiprocessing.Pipe()
    farm = multiprocessing.Process(
        target=serve_farm, args=(args.ports, child, current, args.fresh_one_in), daemon=True
    )
    farm.start()
    ports: list[int] = parent.recv()
    work = Path(tempfile.mkdtemp(prefix="memory-"))
    (work / "rules").mkdir()
    (work / "rules" / "elections.toml").write_text(
        '[[rule]]\nid = "elections"\nquery = "elections NEAR/5 Kazakhstan"\n', encoding="utf-8"
    )
    every = "1s" if args.mode == "service" else "30m"
    sources = "".join(
        f'[[source]]\nname = "S{n}"\nurl = "http://127.0.0.1:{ports[n % len(ports)]}'
        f'/feed/{n}.xml"\nkind = "feed"\nevery = "{every}"\n'
        for n in range(args.sources)
    )
    (work / "monitor.toml").write_text(
        f'[monitor]\nmax_age = "30d"\ntemplates_dir = "{ROOT / "templates"}"\n\n{sources}',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    command = [
        sys.executable,
        "-c",
        MEASURED,
        str(work / "monitor.toml"),
        str(args.polls),
        args.mode,
        "1" if args.trim else "0",
        "1" if args.tracemalloc else "0",
    ]
    started = time.monotonic()
    measured = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=work,
    )
    assert measured.stdin is not None
    assert measured.stdout is not None
    found: dict[str, Any] = {}
    for line in measured.stdout:
        if line.startswith("round "):
            current.value = int(line.split()[1])
            measured.stdin.write("go\n")
            measured.stdin.flush()
        elif line.startswith("RESULT "):
            found = json.loads(line[len("RESULT ") :])
    measured.wait(timeout=120)
    farm.terminate()
    samples = found["samples"]
    half = samples[len(samples) // 2 :]
    result: dict[str, Any] = {
        "sources": args.sources,
        "ports": args.ports,
        "polls": args.polls,
        "mode": args.mode,
        "arena_max": args.arena_max,
        "fresh_one_in": args.fresh_one_in,
        "seconds": round(time.monotonic() - started, 1),
        "load_avg": os.getloadavg()[0],
        "exit_status": measured.returncode,
        "articles": sum(s["articles"] for s in samples),
    }
    keys = ("rss", "rss_trimmed", "malloc_used", "malloc_free", "sqlite", "traced", "objects")
    for key in (*keys, "children_rss", "fds"):
        if key not in samples[0]:
            continue
        result[key] = {
            "first": samples[0][key],
            "middle": half[0][key],
            "last": samples[-1][key],
            "slope_second_half_per_poll": round(slope([(s["poll"], s[key]) for s in half]), 4),
        }
    result["series_rss"] = [s["rss"] for s in samples]
    if "rss_trimmed" in samples[0]:
        result["series_rss_trimmed"] = [s["rss_trimmed"] for s in samples]
    if "grown" in found:
        result["tracemalloc_grown"] = found["grown"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
