"""Store maintenance (issue #8): online backup, vacuum, retention, and failures as StoreError."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import cli
from monitor.errors import StoreError
from monitor.models import Article, Item, Match
from monitor.store import open_store
from monitor.store.maintenance import FEED_ENTRIES, PRUNED
from tests.pg import query

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
MATCH = Match(rule_id="r", topic="Elections", terms=("vote",), spans=(("text", 0, 4),))


def text(n: int) -> str:
    return f"Vote number {n}. " + " ".join(f"word{n}x{k}" for k in range(120))


def save(store: Any, n: int, found: datetime, *, matched: bool = False) -> int:
    url = f"https://news.example/{n}"
    article = Article(url=url, title=f"Title {n}", text=text(n), source="Agency")
    stored = store.save_article("Agency", Item(url=url), article, [MATCH] if matched else [], found)
    return int(stored.article_id)


def rows(target: Any, statement: str) -> list[tuple[Any, ...]]:
    return query(target, statement)


@pytest.mark.sqlite_only
def test_backup_is_one_consistent_copy_while_another_writer_commits(
    store: Any, tmp_path: Path
) -> None:
    for n in range(300):
        save(store, n, NOW)
    writer = open_store(store.path)  # a second process's connection, writing all along
    stop = threading.Event()

    def write() -> None:
        n = 1000
        while not stop.is_set():
            save(writer, n, NOW)
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        size = store.backup(tmp_path / "copy.db")
    finally:
        stop.set()
        thread.join(timeout=10)
        writer.close()

    copy = tmp_path / "copy.db"
    assert size == copy.stat().st_size
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    # Every article the copy has is whole: a snapshot, never a half-written transaction.
    assert rows(copy, "SELECT count(*) FROM articles WHERE text = ''") == [(0,)]
    assert rows(copy, "SELECT count(*) FROM articles")[0][0] >= 300
    assert not (tmp_path / "copy.db.partial").exists()


def test_db_backup_command_copies_the_database(project: Path, capsys: Any) -> None:
    db = open_store(project / "state" / "monitor.db")
    save(db, 1, NOW)
    db.close()
    target = project / "backup.db"

    assert cli.main(["--config", str(project / "monitor.toml"), "db", "backup", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert rows(target, "SELECT url FROM articles") == [("https://news.example/1",)]


@pytest.mark.sqlite_only
def test_vacuum_gives_back_the_space_of_pruned_text(store: Any) -> None:
    for n in range(400):
        save(store, n, NOW - timedelta(days=400))
    assert store.prune(NOW - timedelta(days=365)) == 400

    result = store.vacuum()
    assert result.after < result.before / 2
    assert store.integrity_check() == "ok"


def test_prune_empties_old_text_but_keeps_title_url_dates_and_what_feeds_show(
    store: Any,
) -> None:
    old = NOW - timedelta(days=400)
    plain = [save(store, n, old) for n in range(3)]
    shown = [save(store, 100 + n, old, matched=True) for n in range(FEED_ENTRIES + 5)]
    recent = save(store, 999, NOW)

    pruned = store.prune(NOW - timedelta(days=365))

    by_id = {
        row[0]: row[1:]
        for row in rows(store, "SELECT id, title, url, found_at, text, reason FROM articles")
    }
    assert pruned == 3 + 5
    for article_id in plain:
        title, url, found, body, reason = by_id[article_id]
        assert (body, reason) == ("", PRUNED)
        assert title.startswith("Title")
        assert url.startswith("https://")
        assert found
    # The newest FEED_ENTRIES matched articles are still in the feed files: text kept.
    kept = [i for i in shown if by_id[i][3]]
    assert sorted(kept) == sorted(shown)[5:]
    assert by_id[recent][3] == text(999)
    # Feeds can still be built from pruned and kept articles alike.
    assert len(store.recent_entries(None, 200)) == FEED_ENTRIES + 5


def test_prune_keeps_the_text_a_pending_digest_will_show(store: Any) -> None:
    store.add_subscriber("reader@example.org", "daily", (), NOW - timedelta(days=500))
    pending = save(store, 1, NOW - timedelta(days=400), matched=True)
    store.prune(NOW - timedelta(days=365))
    assert rows(store, f"SELECT text FROM articles WHERE id = {pending}") == [(text(1),)]


def test_prune_is_a_no_op_without_keep(project: Path, capsys: Any) -> None:
    assert cli.main(["--config", str(project / "monitor.toml"), "db", "prune"]) == 0
    assert "keep is not set" in capsys.readouterr().out


@pytest.mark.sqlite_only  # PostgreSQL: test_store_postgres.py
def test_writing_through_a_read_only_database_is_a_store_error(store: Any) -> None:
    save(store, 1, NOW)
    readonly = open_store(store.path, readonly=True)
    try:
        with pytest.raises(StoreError, match=r"monitor\.db: cannot prune old article text"):
            readonly.prune(NOW)
    finally:
        readonly.close()
    assert store.integrity_check() == "ok"


def test_a_state_dir_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot create the database directory"):
        open_store(tmp_path / "state" / "monitor.db")


def test_a_digest_cut_off_by_a_kill_is_never_repeated_in_another_message(store: Any) -> None:
    reader = store.add_subscriber("reader@example.org", "daily", (), NOW - timedelta(days=1))
    save(store, 1, NOW, matched=True)
    entries, cursor = store.digest_entries(reader, NOW)
    assert len(entries) == 1
    delivery = store.begin_delivery(
        reader, "digest", "<m1@x>", [entries[0].article_id], cursor, NOW
    )
    # Killed here: the message may or may not have gone. A digest sent now skips it...
    assert store.digest_entries(reader, NOW)[0] == []
    # ...and after recovery (resend queued, the cursor moved past it) so does the next one,
    # whose drop_retries leaves the resend of the cut-off message alone.
    store.finish_delivery(delivery, NOW, "interrupted", NOW)
    store.cover_digest(delivery)
    assert store.digest_entries(reader, NOW)[0] == []
    assert store.drop_retries(reader, "digest", "superseded") == 0
    assert [d.id for d in store.claim_retries(NOW)] == [delivery]
