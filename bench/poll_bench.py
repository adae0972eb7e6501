"""Polling benchmark (issue #4): `monitor poll --once` against its peers on a local farm.

    .venv/bin/python bench/poll_bench.py [AEB_DIR] [--sources 200] [--ports N] [--rounds 3]
        [--polls 50] [--all-sources N] [--no-sequential] [--no-peers] [--pin [--lower-floors]]

AEB_DIR (default ../shared/data/aeb) holds the aeb benchmark's html/*.html.gz, used as article
pages. bench/farm.py serves 200 sources (RSS, Atom, listing pages; 20 items each, 90 days old),
one port each, 50 ms latency per response, ETag/304. In one run:

  start-up  `monitor --version`, to subtract from our subprocess times
  cold      empty state; max_age = "30d" so the old items are remembered, not fetched
  warm      2 new items dated now in 10 sources (fetched, cleaned, matched); the rest 304
  peers     (a) a sequential feedparser loop, (b) lemon24's reader with parallel workers,
            (c) a bare aiohttp fetch of the same URLs, nothing parsed (the floor)
  articles  cold with max_age = "0": all 4,000 articles; articles/s against trafilatura's
            single-process extraction rate over the same pages
  memory    RSS of one process across repeated polls (--polls)

The machine is shared: cold and warm run in --rounds interleaved rounds (each tool right after
the other on fresh state) and the medians of the per-round ratios are reported, wall time with
our start-up subtracted and CPU time (ours: the subprocess; reader: this process, threads
included, its imports already done after round one).

reader is an optional `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # bench/baseline.py, beside this script

import baseline  # noqa: E402

#: `monitor` as a user runs it (the package's __main__, the same entry point).
MONITOR = [sys.executable, "-m", "monitor"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


#: Floors pinned in bench/baseline.json under "poll" (see bench/baseline.py): ratios to reader
#: must not grow, the rate against trafilatura must not shrink.
KINDS: dict[str, baseline.Kind] = {
    "cold_vs_reader": "max",
    "warm_vs_reader": "max",
    "articles_vs_trafilatura": "min",
}
MARGIN = 1.3

# -- the farm -----------------------------------------------------------------------------------


class FarmProcess:
    def __init__(self, aeb: Path, sources: int, workdir: Path, ports: int | None = None) -> None:
        self.ports_file = workdir / "farm.txt"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "farm.py"),
                str(aeb),
                "--sources",
                str(sources),
                *(["--ports", str(ports)] if ports else []),
                "--ports-file",
                str(self.ports_file),
            ],
            # Its own session, so its own scheduler group (Linux autogroup): the farm stands
            # for remote sites, and its CPU must not come out of the share of the process
            # measured (on a loaded machine a group's share is far below its process count).
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self.ports_file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the farm did not start")
            time.sleep(0.05)
        self.sources = [tuple(line.split()) for line in self.ports_file.read_text().splitlines()]
        self.urls = [url for _, url in self.sources]

    def control(self, what: str) -> None:
        first = urllib.parse.urlsplit(self.urls[0])
        urllib.request.urlopen(f"{first.scheme}://{first.netloc}/__{what}", timeout=10).read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- ours ---------------------------------------------------------------------------------------


def write_config(
    farm: FarmProcess, directory: Path, max_age: str, count: int | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules").mkdir(exist_ok=True)
    rules = ROOT / "rules"
    for rule in rules.glob("*.toml"):
        (directory / "rules" / rule.name).write_bytes(rule.read_bytes())
    parts = [
        f'[monitor]\nstate_dir = "state"\ntemplates_dir = "{ROOT / "templates"}"\n'
        f'max_age = "{max_age}"\ntimezone = "UTC"\n'
    ]
    for n, (kind, url) in enumerate(farm.sources[:count]):
        parts.append(f'\n[[source]]\nname = "source {n}"\nurl = "{url}"\n')
        if kind == "page":
            parts.append(
                'kind = "page"\nitems = ".views-row"\nlink = "a"\ntitle = "h3"\ndate = ".date"\n'
            )
        else:
            parts.append('kind = "feed"\n')
    config = directory / "monitor.toml"
    config.write_text("".join(parts), encoding="utf-8")
    return config


def monitor_poll(config: Path) -> tuple[float, dict[str, Any]]:
    """(seconds, the --json summary with "max_rss_mib": the peak RSS of the main process, and
    "cleaners_cpu_s": the CPU of its cleaner processes, read from /proc while it runs)."""

    def run() -> dict[str, Any]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [*MONITOR, "--config", str(config), "poll", "--once", "--json"],
                stdout=out,
                stderr=err,
            )
            seen: dict[int, float] = {}
            done = threading.Event()
            watcher = threading.Thread(target=_watch_cpu, args=(proc.pid, seen, done))
            watcher.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                done.set()
                watcher.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0:
                sys.stderr.write(err.read().decode(errors="replace")[-3000:])
            summary = dict(json.loads(out.read().decode().strip().splitlines()[-1]))
        summary["max_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
        summary["cleaners_cpu_s"] = round(sum(seen.values()), 2)
        return summary

    return timed(run)


def _watch_cpu(root: int, seen: dict[int, float], done: threading.Event) -> None:
    """Keep the latest user + system CPU seconds of every process below ``root`` (the
    forkserver and its cleaner processes) in ``seen`` until ``done``; a process's last
    ~0.2 s before it ends are missed."""
    tick = os.sysconf("SC_CLK_TCK")
    while not done.wait(0.2):
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # ended while we looked
                continue
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        todo = [root]
        while todo:
            parent = todo.pop()
            for pid, ppid in parents.items():
                if ppid == parent:
                    seen[pid] = max(seen.get(pid, 0.0), cpu[pid])
                    todo.append(pid)


def startup() -> float:
    runs = [
        timed(lambda: subprocess.run([*MONITOR, "--version"], capture_output=True, check=True))[0]
        for _ in range(3)
    ]
    return min(runs)


# -- peers --------------------------------------------------------------------------------------


def sequential_feedparser(urls: list[str]) -> int:
    import feedparser

    entries = 0
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as response:
            entries += len(feedparser.parse(response.read()).entries)
    return entries


def reader_update(urls: list[str], db: Path, workers: int) -> int:
    from reader import make_reader

    reader = make_reader(str(db))
    try:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        reader.update_feeds(workers=workers, scheduled=False)
        return reader.get_entry_counts().total or 0
    finally:
        reader.close()


def aiohttp_floor(urls: list[str]) -> int:
    import aiohttp

    async def go() -> int:
        async with aiohttp.ClientSession() as session:

            async def one(url: str) -> int:
                async with session.get(url) as response:
                    return len(await response.read())

            return sum(await asyncio.gather(*(one(url) for url in urls)))

    return asyncio.run(go())


def trafilatura_rate(aeb: Path, seconds: float = 20.0) -> tuple[float, float]:
    """Pages/s of trafilatura.extract in one process over the aeb pages (as served), and
    its CPU seconds per page."""
    import trafilatura

    pages = [gzip.decompress(f.read_bytes()) for f in sorted((aeb / "html").glob("*.html.gz"))]
    trafilatura.extract(pages[0])  # imports and first-call set-up are not counted
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        trafilatura.extract(pages[done % len(pages)])
        done += 1
    return done / (time.perf_counter() - start), (time.process_time() - cpu) / done


# -- memory -------------------------------------------------------------------------------------


MEMORY_SCRIPT = """
import json, resource, sys
from pathlib import Path
from monitor import admin, config as cfg

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

config = cfg.load(sys.argv[1])
out = []
for n in range(int(sys.argv[2])):
    admin.poll_once(config, config.sources, progress=False)
    out.append(round(rss_mib(), 1))
print(json.dumps(out))
"""


def memory(config: Path, polls: int) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(config), str(polls)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the run ------------------------------------------------------------------------------------


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(fn: Callable[[], Any], child: bool) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, value): CPU of the subprocesses ``fn`` ran when ``child``,
    else of this process (reader's worker threads included)."""
    cpu = cpu_children() if child else time.process_time()
    wall, value = timed(fn)
    used = (cpu_children() if child else time.process_time()) - cpu
    return wall, used, value


def one_round(
    farm: FarmProcess, work: Path, n: int, workers: int, sequential: bool, peers: bool = True
) -> dict[str, Any]:
    """Cold then warm, each tool right after the other, on fresh state."""
    urls = farm.urls
    out: dict[str, Any] = {"startup_s": startup()}
    config = write_config(farm, work / f"ours{n}", "30d")
    db = work / f"reader{n}.sqlite"
    for phase in ("cold", "warm"):
        if phase == "warm":
            farm.control("warm")
        out[f"ours_{phase}_s"], out[f"ours_{phase}_cpu_s"], summary = measured(
            lambda: monitor_poll(config)[1], child=True
        )
        keys = ("sources_ok", "sources_failed", "not_modified", "new_items", "new_articles")
        out[f"ours_{phase}_summary"] = {k: summary.get(k) for k in keys}
        out[f"ours_{phase}_max_rss_mib"] = summary["max_rss_mib"]
        if not peers:
            continue
        out[f"reader_{phase}_s"], out[f"reader_{phase}_cpu_s"], entries = measured(
            lambda: reader_update(urls, db, workers), child=False
        )
        out[f"reader_{phase}_entries"] = entries
        out[f"floor_{phase}_s"], _ = timed(lambda: aiohttp_floor(urls))
        if sequential:
            out[f"sequential_{phase}_s"], _ = timed(lambda: sequential_feedparser(urls))
        ours = out[f"ours_{phase}_s"] - out["startup_s"]
        out[f"ratio_{phase}_vs_reader"] = round(ours / out[f"reader_{phase}_s"], 3)
        out[f"cpu_ratio_{phase}_vs_reader"] = round(
            out[f"ours_{phase}_cpu_s"] / max(out[f"reader_{phase}_cpu_s"], 1e-9), 3
        )
    farm.control("reset")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "aeb", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "aeb"
    )
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument(
        "--ports", type=int, help="spread the sources over this many ports (default: one each)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="cold+warm rounds, interleaved")
    parser.add_argument("--polls", type=int, default=50, help="polls in the memory run; 0: none")
    parser.add_argument("--workers", type=int, default=16, help="reader's update workers")
    parser.add_argument(
        "--all-sources",
        type=int,
        default=None,
        help="sources in the max_age=0 run (default: all; 0 skips it)",
    )
    parser.add_argument("--no-sequential", action="store_true", help="skip the feedparser loop")
    parser.add_argument(
        "--no-peers", action="store_true", help="cold and warm: ours only (growth runs)"
    )
    parser.add_argument("--pin", action="store_true", help="pin this run's ratios as floors")
    parser.add_argument(
        "--lower-floors", action="store_true", help="with --pin: also loosen pinned floors"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="poll-bench-"))
    farm = FarmProcess(args.aeb.resolve(), args.sources, work, args.ports)
    results: dict[str, Any] = {"sources": args.sources, "rounds": []}
    try:
        for n in range(args.rounds):
            # The slow sequential loop once: it only shows the order of magnitude.
            results["rounds"].append(
                one_round(
                    farm,
                    work,
                    n,
                    args.workers,
                    n == 0 and not args.no_sequential and not args.no_peers,
                    peers=not args.no_peers,
                )
            )
            print(json.dumps(results["rounds"][-1]), file=sys.stderr, flush=True)
        for key in (
            "ratio_cold_vs_reader",
            "ratio_warm_vs_reader",
            "cpu_ratio_cold_vs_reader",
            "cpu_ratio_warm_vs_reader",
        ):
            values = [r[key] for r in results["rounds"] if key in r]
            results[f"median_{key}"] = statistics.median(values) if values else None

        if args.polls:
            # memory: repeated polls in one process (after the first, all 304)
            rss = memory(write_config(farm, work / "memory", "30d"), args.polls)
            results["memory_mib"] = rss

        count = args.sources if args.all_sources is None else args.all_sources
        if count:
            every = write_config(farm, work / "all", "0", count)
            start = startup()
            seconds, cpu, summary = measured(lambda: monitor_poll(every)[1], child=True)
            # Every new item's page is fetched, cleaned, matched and checked for duplicates;
            # the farm reuses 181 aeb bodies, so most are then linked to an earlier copy, not
            # stored as new (new_articles): the rate counts the pages cleaned.
            articles = int(summary.get("new_items") or 0) - int(summary.get("article_errors") or 0)
            rate, page_cpu = trafilatura_rate(args.aeb)
            cleaners_cpu = float(summary.get("cleaners_cpu_s") or 0.0)
            results["all_articles"] = {
                "sources": count,
                "articles": articles,
                "stored_new": summary.get("new_articles"),
                "article_errors": summary.get("article_errors"),
                "max_rss_mib": summary.get("max_rss_mib"),
                "seconds": seconds,
                "cpu_s": cpu,
                "cleaners_cpu_s": cleaners_cpu,
                # CPU per article: what a machine with free cores would divide among them.
                "ours_cpu_ms_per_article": 1000 * (cpu + cleaners_cpu) / max(articles, 1),
                "cleaners_cpu_ms_per_article": 1000 * cleaners_cpu / max(articles, 1),
                "trafilatura_cpu_ms_per_page": 1000 * page_cpu,
                "startup_s": start,
                "ours_articles_per_s": articles / max(seconds - start, 1e-9),
                "trafilatura_pages_per_s": rate,
            }
            results["all_articles"]["ratio_vs_trafilatura"] = (
                results["all_articles"]["ours_articles_per_s"] / rate
            )
    finally:
        farm.close()
    figures = {
        name: float(value)
        for name, value in (
            ("cold_vs_reader", results.get("median_ratio_cold_vs_reader")),
            ("warm_vs_reader", results.get("median_ratio_warm_vs_reader")),
            (
                "articles_vs_trafilatura",
                results.get("all_articles", {}).get("ratio_vs_trafilatura"),
            ),
        )
        if value is not None
    }
    if args.pin:
        about = (
            "bench/poll_bench.py checks these on every run (issue #4); --pin tightens them and"
            f" only --pin --lower-floors loosens one. Ratios of a run with a margin of {MARGIN}x."
        )
        for line in baseline.pin(
            "poll", figures, KINDS, margin=MARGIN, about=about, lower=args.lower_floors
        ):
            print(f"baseline: {line}", file=sys.stderr)
    lines, failed = baseline.check("poll", figures)
    for line in lines:
        print(f"baseline: {line}", file=sys.stderr)
    results["baseline"] = {"checked": lines, "failed": failed}
    print(json.dumps(results, indent=2, default=str))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
