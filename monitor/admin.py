"""What the one-shot commands do, so that cli.py stays thin: one call per command.

Tables and progress use rich on a terminal, and plain tab-separated lines otherwise, so
scripts can read them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import clean, fetch, match, pipeline, rulestatus, runtime
from monitor.config import Config, DigestConfig, MonitorSettings, SourceConfig
from monitor.errors import ConfigError, MonitorError
from monitor.models import Article, PollResult, Subscriber

if TYPE_CHECKING:
    from monitor.store import Store
    from monitor.store.sqlite import SqliteStore

PACKAGE = Path(__file__).parent


# -- init -------------------------------------------------------------------------------------


def starter_dir(name: str) -> Path:
    """The starter ``rules`` or ``templates``: in the wheel, or at the top of a checkout."""
    for candidate in (PACKAGE / "_starter" / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise MonitorError(str(PACKAGE), f"the starter {name}/ is missing from this installation")


def init_project(directory: Path, *, force: bool = False) -> list[Path]:
    """Write monitor.toml, rules/, templates/ and state/ into ``directory``."""
    config = directory / "monitor.toml"
    if config.exists() and not force:
        raise MonitorError(str(config), "already exists (use --force to overwrite)")
    directory.mkdir(parents=True, exist_ok=True)
    written = [config]
    config.write_text((PACKAGE / "starter.toml").read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("rules", "templates"):
        target = directory / name
        shutil.copytree(starter_dir(name), target, dirs_exist_ok=True)
        written.append(target)
    (directory / "state").mkdir(exist_ok=True)
    return written


# -- poll -------------------------------------------------------------------------------------


def poll_once(
    config: Config, sources: Sequence[SourceConfig], *, progress: bool
) -> list[PollResult]:
    """`poll --once`: every source polled once, side by side; feeds and alerts after."""

    async def go() -> list[PollResult]:
        async with runtime.open_services(config, one_shot=True) as services:
            now = datetime.now(UTC)
            with _progress(len(sources), progress) as advance:
                return await pipeline.poll_sources(services, sources, now, advance)

    return asyncio.run(go())


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[PollResult], None]]:
    if not enabled:
        yield lambda result: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=total)

        def advance(result: PollResult) -> None:
            bar.update(task, advance=1, description=result.source)

        yield advance


def poll_summary(results: list[PollResult]) -> dict[str, Any]:
    """The `poll --once --json` object (DESIGN §5)."""
    topics: dict[str, int] = {}
    for result in results:
        for topic, count in result.matches.items():
            topics[topic] = topics.get(topic, 0) + count
    failed = [r for r in results if r.status == "error"]
    return {
        "sources_ok": len(results) - len(failed),
        "sources_failed": len(failed),
        "failed": {r.source: r.error for r in failed},
        "not_modified": sum(r.status == "not_modified" for r in results),
        "new_items": sum(r.new_items for r in results),
        "new_articles": sum(r.new_articles for r in results),
        "article_errors": sum(r.article_errors for r in results),
        "matches": sum(topics.values()),
        "topics": dict(sorted(topics.items())),
    }


# -- tables -----------------------------------------------------------------------------------


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; tab-separated lines with a header otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    print("\t".join(headers))
    for row in rows:
        print("\t".join(row))


def _when(moment: datetime | None, config: Config) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(config.monitor.timezone).strftime("%Y-%m-%d %H:%M")


@contextmanager
def _reading(config: Config) -> Iterator[Store]:
    from monitor.store import open_configured

    store = open_configured(config, readonly=True)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _writing(config: Config) -> Iterator[Store]:
    from monitor.store import open_configured

    store = open_configured(config)
    try:
        yield store
    finally:
        store.close()


def _has_store(config: Config) -> bool:
    """Whether there is a database to read: PostgreSQL (#9), or the SQLite file once made."""
    return config.store.url is not None or config.monitor.db_path.exists()


def _source_rows(config: Config, store: Store | None) -> list[list[str]]:
    health = store.sources_health() if store is not None else {}
    rows = []
    for source in config.sources:
        state = health.get(source.name)
        last_poll = state.last_poll if state else None
        due = state.next_poll if state and state.next_poll else None
        if due is None and last_poll is not None:
            due = last_poll + source.every
        next_poll = _when(due, config) if due else "at start"
        rows.append(
            [
                source.name,
                source.kind,
                fetch.health(state),
                _when(state.last_success if state else None, config),
                (state.last_error or "") if state and state.failures else "",
                str(state.failures if state else 0),
                str(state.items_seen if state else 0),
                next_poll,
            ]
        )
    return rows


SOURCE_HEADERS = (
    "source",
    "kind",
    "health",
    "last success",
    "last error",
    "failures",
    "items",
    "next poll",
)


def print_sources(config: Config) -> None:
    """`monitor sources list`."""
    if not _has_store(config):
        print_table("Sources", SOURCE_HEADERS, _source_rows(config, None))
        return
    with _reading(config) as store:
        print_table("Sources", SOURCE_HEADERS, _source_rows(config, store))


def print_status(config: Config) -> None:
    """`monitor status`: sources, matches today, subscribers, last delivery, rule errors."""
    rules = match.load_rules(config.monitor.rules_dir)
    state = daemon_state(config.monitor.state_dir)
    print(f"daemon: {state}")
    pid = state.removeprefix("running (PID ").removesuffix(")")
    running_pid = int(pid) if pid.isdigit() else None
    if not _has_store(config):
        print("no polls yet: run `monitor poll --once` or `monitor run`")
        print_table("Sources", SOURCE_HEADERS, _source_rows(config, None))
    else:
        with _reading(config) as store:
            source_rows = _source_rows(config, store)
            failing = [row for row in source_rows if row[SOURCE_HEADERS.index("last error")]]
            print(f"sources: {len(source_rows) - len(failing)} healthy, {len(failing)} failing")
            print_table("Sources", SOURCE_HEADERS, source_rows)
            tz = config.monitor.timezone
            midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
            today = store.match_counts(midnight)
            print(
                f"matches today: {sum(today.values())}"
                + "".join(f"; {t}: {n}" for t, n in sorted(today.items()))
            )
            print(f"subscribers: {len(store.subscribers())}")
            last = store.last_delivery()
            print(
                "last delivery: "
                + (f"{_when(last[0], config)} {last[2]} to {last[1]}" if last else "none")
            )
            pending = store.pending_deliveries()
            print(f"outbox: {len(pending)} pending" if pending else "outbox: empty")
            for kind, recipient, attempts, retry_at, reason in pending[:10]:
                print(
                    f"  {kind} to {recipient}: {attempts} attempt(s), next at"
                    f" {_when(retry_at, config)}; last error: {reason}"
                )
    for digest, when in next_digests(config, datetime.now(UTC)).items():
        print(f"next digest: {digest} at {_when(when, config)}")
    # The running daemon's rule set, with the broken files' kept versions (#6); else the files.
    running = rulestatus.read(config.monitor.state_dir) if running_pid else None
    if running is not None and running.pid == running_pid:
        print("\n".join(rulestatus.lines(running, lambda moment: _when(moment, config))))
        return
    print(f"rules: {len(rules.rules)} on {len(rules.topics)} topics; errors: {len(rules.errors)}")
    for error in rules.errors:
        print(f"  {error}")


def daemon_state(state_dir: Path) -> str:
    """ "running (PID n)" when a `monitor run` holds the state directory's lock, else
    "not running"; the lock is tried, never taken for long (issue #8)."""
    import fcntl

    path = state_dir / "monitor.pid"
    try:
        with path.open("r", encoding="ascii") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"running (PID {handle.read().strip() or 'unknown'})"
            return "not running"
    except FileNotFoundError:
        return "not running"


def next_digests(config: Config, now: datetime) -> dict[str, datetime]:
    """When each digest is due next, by name."""
    from apscheduler.triggers.cron import CronTrigger

    due = {}
    for digest in config.digests:
        trigger = CronTrigger(timezone=config.monitor.timezone, **digest.cron_fields)
        when = trigger.get_next_fire_time(None, now.astimezone(config.monitor.timezone))
        if when is not None:
            due[digest.name] = when
    return due


# -- sources check, extract -------------------------------------------------------------------


def _settings(settings: MonitorSettings | None) -> MonitorSettings:
    if settings is not None:
        return settings
    here = Path.cwd()
    return MonitorSettings(
        state_dir=here / "state", rules_dir=here / "rules", templates_dir=here / "templates"
    )


def check_source(url: str, settings: MonitorSettings | None) -> None:
    """`monitor sources check URL`: what kind it is and the items it would yield."""

    async def go() -> tuple[str, tuple[Any, ...]]:
        async with fetch.open_client(_settings(settings)) as client:
            return await fetch.check_url(client, url)

    kind, items = asyncio.run(go())
    print(f"{url}: {kind}, {len(items)} items")
    rows = [[i.published.isoformat() if i.published else "no date", i.title, i.url] for i in items]
    print_table("Items", ("published", "title", "url"), rows)


def extract_target(target: str, url: str | None, settings: MonitorSettings | None) -> Article:
    """The cleaned article of a URL (fetched) or a saved file."""
    if target.startswith(("http://", "https://")):

        async def go() -> Article:
            async with fetch.open_client(_settings(settings)) as client:
                page = await fetch.fetch_page(client, target, source="extract")
            return clean.extract(page.body, url or page.url, charset=page.charset)

        return asyncio.run(go())
    path = Path(target)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise MonitorError(target, "cannot read the file") from exc
    return clean.extract(body, url)


def format_article(article: Article, *, as_json: bool) -> str:
    data = {
        "title": article.title,
        "text": article.text,
        "published": article.published.isoformat() if article.published else None,
        "author": article.author,
        "language": article.language,
        "url": article.url,
        # As stored: a teaser stands in for the text, and why there is no text.
        "teaser_only": article.teaser_only,
        "reason": article.reason,
    }
    if as_json:
        return json.dumps(data, ensure_ascii=False)
    head = [
        f"{key}: {value if value is not None else '-'}"
        for key, value in data.items()
        if key not in ("text", "teaser_only", "reason")
    ]
    if not article.text:
        head.append(f"no text: {article.reason or 'no main text'}")
    return "\n".join(head) + "\n\n" + article.text


# -- digests and subscribers ------------------------------------------------------------------


def send_digest_now(config: Config, digest: DigestConfig) -> pipeline.DigestResult:
    if config.store.url is not None:  # shared with workers: their outbox lock (issue #9)
        from monitor import workers

        return workers.send_digest_now(config, digest)

    async def go() -> pipeline.DigestResult:
        async with runtime.open_services(config) as services:
            return await pipeline.send_digest(services, digest, datetime.now(UTC))

    return asyncio.run(go())


def preview_digest(
    config: Config, digest: DigestConfig, email: str | None, out: Path | None
) -> list[Path]:
    """Write the digest a subscriber would get now as HTML and text; mark nothing sent."""
    from monitor import notify

    templates = notify.load_templates(config.monitor.templates_dir)
    now = datetime.now(UTC)
    with _reading(config) as store:
        subscriber = Subscriber(email="preview@localhost", digest=digest.name)
        if email is not None:
            found = [s for s in store.subscribers() if s.email.lower() == email.strip().lower()]
            if not found:
                raise MonitorError(email, "not a subscriber")
            subscriber = found[0]
        entries, _ = store.digest_entries(subscriber, now)
    message = notify.compose_digest(templates, config, digest, subscriber, entries, now)
    out = out or config.monitor.state_dir / "preview"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{digest.name}-{subscriber.email.replace('@', '_at_')}"
    written = []
    for part, suffix in (("plain", "txt"), ("html", "html")):
        body = message.get_body((part,))
        if body is None:
            continue
        path = out / f"{stem}.{suffix}"
        path.write_text(body.get_content(), encoding="utf-8")
        written.append(path)
    return written


def add_subscriber(config: Config, email: str, digest: DigestConfig, topics: str) -> Subscriber:
    _, address = parseaddr(email)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or address != email.strip():
        raise ConfigError(email, "not an e-mail address")
    wanted = tuple(t.strip() for t in topics.split(",") if t.strip())
    known = match.load_rules(config.monitor.rules_dir).topics
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise ConfigError(
            "--topics",
            f"no rule has the topic {', '.join(map(repr, unknown))}"
            f" (topics: {', '.join(sorted(known))})",
        )
    with _writing(config) as store:
        return store.add_subscriber(address, digest.name, wanted, datetime.now(UTC))


def remove_subscriber(config: Config, email: str) -> bool:
    with _writing(config) as store:
        return store.remove_subscriber(email)


def print_subscribers(config: Config) -> None:
    if not _has_store(config):
        print_table("Subscribers", ("email", "digest", "topics"), [])
        return
    with _reading(config) as store:
        rows = [
            [s.email, s.digest, ", ".join(s.topics) or "every topic"] for s in store.subscribers()
        ]
    print_table("Subscribers", ("email", "digest", "topics"), rows)


# -- database maintenance (issue #8) ----------------------------------------------------------


#: What to use on a PostgreSQL store instead of the SQLite file commands (issue #9).
POSTGRES_INSTEAD = {
    "backup": "use pg_dump, e.g. pg_dump -Fc -f monitor.dump 'postgresql://user@host/dbname'",
    "vacuum": "PostgreSQL's autovacuum does it; run VACUUM (ANALYZE) in psql if you must",
}


@contextmanager
def _sqlite_file(config: Config, command: str, *, readonly: bool) -> Iterator[SqliteStore]:
    """The SQLite store, for the commands that work on its file; ConfigError naming what to
    use instead when monitor.toml names a PostgreSQL store."""
    from monitor.store import open_store

    if config.store.url is not None:
        raise ConfigError(
            "store.url",
            f"`monitor db {command}` works on the SQLite file; this is a PostgreSQL store: "
            + POSTGRES_INSTEAD[command],
        )
    store = open_store(config.monitor.db_path, readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def backup_db(config: Config, target: Path) -> str:
    """`monitor db backup PATH`: a consistent copy, also while `monitor run` writes."""
    with _sqlite_file(config, "backup", readonly=True) as store:
        size = store.backup(target)
    return f"backed up {config.monitor.db_path} to {target} ({size:,} bytes)"


def vacuum_db(config: Config) -> str:
    """`monitor db vacuum`."""
    with _sqlite_file(config, "vacuum", readonly=False) as store:
        result = store.vacuum()
    return f"vacuumed {config.monitor.db_path}: {result.before:,} → {result.after:,} bytes"


def prune_db(config: Config) -> str:
    """`monitor db prune`: what `monitor run` does daily when [monitor] keep is set."""
    keep = config.monitor.keep
    if keep is None:
        return 'nothing to prune: [monitor] keep is not set (e.g. keep = "365d")'
    with _writing(config) as store:
        count = store.prune(datetime.now(UTC) - keep)
    return f"pruned the text of {count} article(s) found more than {keep.days} days ago"


def copy_db(source: Path, url: str, *, replace: bool, password_env: str | None) -> str:
    """`monitor db copy SQLITE-PATH POSTGRES-URL` (issue #9): progress on stderr, a line per
    table; the verified counts as the result."""
    import os

    from monitor.store import open_postgres
    from monitor.store.postgres_copy import copy_sqlite

    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(
                "--password-env", f"the environment variable {password_env} is not set"
            )
    open_postgres(url, password=password).close()  # fails early, and cleanly, on a bad login
    shown: dict[str, int] = {}

    def progress(table: str, done: int, total: int) -> None:
        if done == total or done - shown.get(table, -PROGRESS_STEP) >= PROGRESS_STEP:
            shown[table] = done
            print(f"{table}: {done:,}/{total:,}", file=sys.stderr, flush=True)

    result = copy_sqlite(source, url, password=password, replace=replace, progress=progress)
    tables = ", ".join(f"{table} {count:,}" for table, count in result.target.items())
    return f"copied {source} into PostgreSQL; counts verified: {tables}"


#: Rows between two progress lines of `monitor db copy`.
PROGRESS_STEP = 10_000
