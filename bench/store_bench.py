"""Store benchmark (issue #9): the store's share of a poll, SQLite against PostgreSQL.

    .venv/bin/python bench/store_bench.py [--sources 300] [--rounds 3] [--url POSTGRES-URL]

One "poll" makes the calls pipeline.poll_source makes of the store for a source with 20 items
of which 2 are new: source_state, unseen_items (20), remember_items (18 old), recent_signatures,
known_article and save_article (2 new articles, one with 2 matches), record_poll. Each round
runs --sources such polls against a fresh SQLite file and a fresh PostgreSQL database (Debian's
postgresql started by tests/pg.py on 127.0.0.1, fsync off as in the tests; or --url), one after
the other, from one thread as the daemon's store thread does. Reported: polls per second of
each and the median over rounds of the per-round ratio PostgreSQL/SQLite in time per poll.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.models import Article, FetchResult, Item, Match
from monitor.store import open_postgres, open_store

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
MATCHES = [
    Match(rule_id="kz", topic="Kazakhstan", terms=("Astana",), spans=(("text", 0, 6),)),
    Match(rule_id="hr", topic="Human rights", alert="immediate", terms=("torture",)),
]


def poll(store: Any, source: str, round_no: int) -> None:
    """The store calls of one poll that finds 2 new items among 20."""
    items = [Item(url=f"https://{source}.example/{round_no}/{n}") for n in range(20)]
    store.source_state(source)
    unseen = store.unseen_items(source, items)
    store.remember_items(source, unseen[2:], "old", NOW)
    store.recent_signatures(source, NOW - timedelta(days=2))
    for n, item in enumerate(unseen[:2]):
        store.known_article(item.url)
        text = f"Astana {source} {round_no} {n} " + "torture and the courts " * 20
        article = Article(url=item.url, title=f"{source} {n}", text=text, source=source)
        store.save_article(source, item, article, MATCHES if n == 0 else [], NOW)
    store.record_poll(source, NOW, FetchResult(status="ok", etag=f'"{round_no}"'), None)


def run(opener: Callable[[], Any], sources: int, round_no: int) -> float:
    """Seconds for ``sources`` polls on a fresh store."""
    store = opener()
    try:
        started = time.perf_counter()
        for s in range(sources):
            poll(store, f"source{s}", round_no)
        return time.perf_counter() - started
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="a PostgreSQL server to use instead of a throwaway one")
    args = parser.parse_args()

    from tests.pg import PgCluster

    cluster = None if args.url else PgCluster().__enter__()
    try:
        ratios: list[float] = []
        lite: list[float] = []
        pg: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                path = Path(tmp) / f"r{r}.db"
                url = args.url or (cluster.create_database() if cluster else "")
                sqlite_s = run(functools.partial(open_store, path), args.sources, r)
                pg_s = run(functools.partial(open_postgres, url), args.sources, r)
                lite.append(args.sources / sqlite_s)
                pg.append(args.sources / pg_s)
                ratios.append(pg_s / sqlite_s)
                print(
                    f"round {r + 1}: sqlite {lite[-1]:.0f} polls/s, postgresql {pg[-1]:.0f}"
                    f" polls/s, ratio {ratios[-1]:.2f}",
                    flush=True,
                )
        print(
            f"median: sqlite {statistics.median(lite):.0f} polls/s, postgresql"
            f" {statistics.median(pg):.0f} polls/s; PostgreSQL/SQLite time per poll"
            f" {statistics.median(ratios):.2f}x"
        )
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
