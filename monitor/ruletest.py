"""`monitor rules test QUERY-or-ID [--since 30d] [--backfill]`: a rule on the stored articles.

    the rule with that id in rules/, else the text as a query ─► a RuleSet of one
    per stored article found since --since, newest first (the stored text; nothing refetched):
        matches = rules.match(article)          the first --limit hits printed, highlighted,
                                                with "Matched: …" (the clause that matched)
    --backfill (a rule id only): every BATCH articles, store.add_matches(found) in one short
        write transaction; an article already matched by the rule, or already on its topic,
        is skipped; the rest are filed for the next digest and the feeds, never alerted
    feed files rewritten when matches were added; counts per source and per topic at the end

Backfilled matches are stored with alert "digest" whatever the rule says: an immediate alert
for an article found days ago would be noise, and the daily digest is the record (#6).

Running beside `monitor run`: both write through SQLite's lock (WAL, 5 s busy timeout). Each
batch here is one short transaction, so the daemon's writer waits for at most one batch, and
this command waits for the daemon's own short transactions. Should the lock still time out
(StoreError, exit status 1), running the command again is safe: what was stored is skipped.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor import match
from monitor.config import Config
from monitor.errors import ConfigError
from monitor.models import Article, DigestEntry, Match

if TYPE_CHECKING:
    from monitor.store import Store

#: Articles checked between two writes of backfilled matches: one short transaction each.
BATCH = 200


@dataclass
class Outcome:
    """What a `rules test` run found, and with --backfill stored."""

    #: Articles checked.
    checked: int = 0
    #: Matching articles per source and per topic.
    sources: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)
    #: --backfill: new matches stored per topic; articles skipped (already on the topic).
    stored: Counter[str] = field(default_factory=Counter)
    skipped: int = 0

    @property
    def hits(self) -> int:
        return sum(self.sources.values())


def run(
    config: Config,
    query: str,
    since: timedelta,
    limit: int,
    now: datetime,
    *,
    backfill: bool = False,
    show: Callable[[str], None] = print,
) -> Outcome:
    """Test ``query`` (a rule id, else a query) on the articles found since ``now - since``;
    print the first ``limit`` hits and the counts; with ``backfill`` store the new matches."""
    from monitor.match.rules import RuleSet
    from monitor.store import open_configured

    loaded = match.load_rules(config.monitor.rules_dir)
    known = {rule.id: rule for rule in loaded.rules}
    if query in known:
        rules = RuleSet.from_rules([known[query]])
    elif backfill:
        broken = "".join(f"\n{error}" for error in loaded.errors)
        raise ConfigError(
            "--backfill",
            f'"{query}" is not the id of a rule in {config.monitor.rules_dir}: backfill files'
            f" matches under a rule's id and topic{broken}",
        )
    else:
        rules = RuleSet.from_query(query)
    outcome = Outcome()
    store = open_configured(config, readonly=not backfill)
    try:
        pending: list[tuple[int, Match]] = []
        with _progress(sys.stderr.isatty()) as tick:
            for article_id, article in store.articles_since(now - since):
                outcome.checked += 1
                found = rules.match(article)
                tick(outcome.checked, outcome.hits + bool(found))
                if not found:
                    continue
                outcome.sources[article.source] += 1
                outcome.topics.update({m.topic for m in found})
                if outcome.hits <= limit:
                    show(hit(article, found[0], config))
                pending += [(article_id, m) for m in found]
                if backfill and outcome.checked % BATCH == 0:
                    _store(store, pending, now, outcome)
            if backfill:
                _store(store, pending, now, outcome)
        if outcome.stored:
            _write_feeds(config, store, now)
    finally:
        store.close()
    for line in summary(outcome, backfill):
        show(line)
    return outcome


def _store(store: Store, pending: list[tuple[int, Match]], now: datetime, out: Outcome) -> None:
    if not pending:
        return
    added = store.add_matches(list(pending), now)
    out.stored.update(m.topic for _, m in added)
    out.skipped += len(pending) - len(added)
    pending.clear()


def _write_feeds(config: Config, store: Store, now: datetime) -> None:
    """Rewrite the feed files, so that backfilled matches appear in them now."""
    from monitor import notify

    feeds: dict[str | None, list[DigestEntry]] = {None: store.recent_entries(None, 100)}
    for topic in store.topics():
        feeds[topic] = store.recent_entries(topic, 100)
    notify.write_feeds(feeds, config.monitor.feeds_dir, config.web.base_url, now)


def summary(outcome: Outcome, backfill: bool) -> list[str]:
    """The closing lines: hits per source and per topic; what backfill stored."""

    def counts(counter: Counter[str]) -> str:
        return "".join(f"; {name}: {n}" for name, n in sorted(counter.items()))

    lines = [
        f"{outcome.hits} matching articles of {outcome.checked} checked{counts(outcome.sources)}",
        f"per topic{counts(outcome.topics) or ': none'}",
    ]
    if backfill:
        lines.append(
            f"backfill: {sum(outcome.stored.values())} new matches stored{counts(outcome.stored)}"
            f"; {outcome.skipped} skipped (already matched on the topic); filed for the next"
            " digest and the feeds, not alerted"
        )
    return lines


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A live "N articles checked, M hits" line on stderr when it is a terminal."""
    if not enabled:
        yield lambda checked, hits: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.completed} articles checked, {task.fields[hits]} hits"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None, hits=0)

        def tick(checked: int, hits: int) -> None:
            if checked % 50 == 0 or hits:
                bar.update(task, completed=checked, hits=hits)

        yield tick


def hit(article: Article, found: Match, config: Config) -> str:
    """One hit: the title and an excerpt with the matched terms marked, and what matched."""
    bold, plain = ("\033[1;33m", "\033[0m") if sys.stdout.isatty() else ("[", "]")
    spans = found.spans
    text_spans = sorted((s, e) for name, s, e in spans if name == "text")
    title_spans = sorted((s, e) for name, s, e in spans if name == "title")

    def mark(text: str, marks: list[tuple[int, int]]) -> str:
        out, pos = [], 0
        for start, end in marks:
            if start < pos:
                continue
            out += [text[pos:start], bold, text[start:end], plain]
            pos = end
        return "".join(out) + text[pos:]

    snippet = ""
    if text_spans:
        start = max(0, text_spans[0][0] - 120)
        end = min(len(article.text), text_spans[0][1] + 160)
        window = [(s - start, e - start) for s, e in text_spans if s >= start and e <= end]
        snippet = "\n  …" + mark(article.text[start:end], window).replace("\n", " ") + "…"
    if article.published:
        date = article.published.astimezone(config.monitor.timezone).strftime("%Y-%m-%d %H:%M")
    else:
        date = "date unknown"
    why = f"\n  Matched: {found.why}" if found.why else ""
    title = mark(article.title, title_spans)
    return f"\n{title}\n  {article.source} · {date} · {article.url}{snippet}{why}"
