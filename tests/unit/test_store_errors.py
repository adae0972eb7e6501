"""SqliteStore: operational failures become StoreError naming the file; bugs stay bugs."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StoreError
from monitor.models import Article, FetchResult, Item, Match
from monitor.store import open_store
from monitor.store.sqlite import SqliteStore, sqlite_errors

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "monitor.db"
    open_store(path).close()
    return path


@pytest.fixture
def exclusive_lock(db_path: Path) -> Iterator[None]:
    """Another connection holding the write lock, as a second writer would."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_read_only_store_cannot_write(db_path: Path) -> None:
    store = open_store(db_path, readonly=True)
    try:
        with pytest.raises(StoreError) as caught:
            store.record_poll("Agency", NOW, FetchResult(status="ok"), None)
    finally:
        store.close()
    assert str(caught.value).startswith(f'{db_path}: cannot record a poll of source "Agency"')
    assert "readonly" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


def test_read_only_store_reads_what_the_writer_wrote(db_path: Path) -> None:
    writer = open_store(db_path)
    reader = open_store(db_path, readonly=True)
    try:
        writer.record_poll("Agency", NOW, FetchResult(status="ok", etag='"e"'), None)
        assert reader.source_state("Agency").etag == '"e"'
    finally:
        reader.close()
        writer.close()


def test_read_only_store_of_a_missing_database_says_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "state" / "monitor.db"
    with pytest.raises(StoreError, match=r"does not exist yet; run `monitor poll --once`"):
        open_store(path, readonly=True)
    assert not path.exists()
    assert not path.parent.exists()


def test_locked_database_gives_store_error_naming_the_path(
    db_path: Path, exclusive_lock: None
) -> None:
    store = SqliteStore(db_path, busy_timeout=0.05)
    try:
        with pytest.raises(StoreError) as caught:
            store.save_article(
                "Agency",
                Item(url="https://a.example/1"),
                Article(url="https://a.example/1", title="t", text="x"),
                [],
                NOW,
            )
    finally:
        store.close()
    assert str(caught.value) == (
        f"{db_path}: cannot save article: OperationalError: database is locked"
    )


def test_failed_write_is_rolled_back(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        same_rule_twice = [Match(rule_id="r", topic="t"), Match(rule_id="r", topic="t")]
        with pytest.raises(sqlite3.IntegrityError):  # a bug: not disguised as StoreError
            store.save_article(
                "Agency",
                Item(url="https://a.example/1"),
                Article(url="https://a.example/1", title="t", text="x"),
                same_rule_twice,
                NOW,
            )
        assert store.known_article("https://a.example/1") is None
        assert store.unseen_items("Agency", [Item(url="https://a.example/1")]) != []
    finally:
        store.close()


def test_file_that_is_not_a_database_gives_store_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    path.write_bytes(b"From: someone\nSubject: not a database at all\n\n" * 100)
    with pytest.raises(StoreError) as caught:
        open_store(path)
    assert str(caught.value) == (
        f"{path}: cannot open the database: DatabaseError: file is not a database"
    )


def test_integrity_errors_pass_through_sqlite_errors() -> None:
    with pytest.raises(sqlite3.IntegrityError), sqlite_errors("x.db", "do it"):
        raise sqlite3.IntegrityError("UNIQUE constraint failed")


def test_store_can_be_used_from_another_thread(store: Any) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            store.record_poll("Agency", NOW, FetchResult(status="ok"), None)
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert failures == []
    assert store.source_state("Agency").last_success == NOW


def test_naive_datetime_is_refused(store: Any) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.record_poll("Agency", datetime(2026, 1, 1), None, "x")  # noqa: DTZ001


def test_repr_counts_articles(store: Any) -> None:
    store.save_article(
        "A",
        Item(url="https://a.example/1"),
        Article(url="https://a.example/1", title="t", text="x"),
        [],
        NOW,
    )
    assert repr(store) == f"<{type(store).__name__} path={store.path} articles=1>"
