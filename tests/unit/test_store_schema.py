"""store/schema.py: numbered migrations, the user_version stamp, newer databases refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import SchemaVersionError, StoreError
from monitor.models import FetchResult
from monitor.store import open_store
from monitor.store.schema import MIGRATIONS, SCHEMA_VERSION, split_statements
from monitor.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_new_database_is_created_with_its_directory_and_stamped(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "monitor.db"
    open_store(path).close()
    assert path.is_file()
    assert _pragma(path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)


def test_new_database_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    open_store(path).close()
    assert _pragma(path, "journal_mode") == "wal"


def test_reopening_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = open_store(path)
    store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"v1"'), None)
    store.close()
    store = open_store(path)
    try:
        assert store.source_state("Agency").etag == '"v1"'
    finally:
        store.close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_newer_database_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(SchemaVersionError) as caught:
        open_store(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: written by a newer press-monitor")
    assert f"schema {SCHEMA_VERSION + 5}, this one knows {SCHEMA_VERSION}" in message
    assert _pragma(path, "user_version") == SCHEMA_VERSION + 5  # untouched


def test_newer_database_is_refused_read_only_too(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError):
        open_store(path, readonly=True)


def test_read_only_store_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    sqlite3.connect(path).close()  # an empty file: schema 0
    with pytest.raises(StoreError, match="needs upgrading"):
        open_store(path, readonly=True)


def test_trace_callback_sees_the_migration(tmp_path: Path) -> None:
    statements: list[str] = []
    SqliteStore(tmp_path / "monitor.db", trace=statements.append).close()
    assert any("CREATE TABLE articles" in s for s in statements)
    assert any(s.startswith(f"PRAGMA user_version = {SCHEMA_VERSION}") for s in statements)


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = """
    CREATE TABLE t (x);  -- a comment; with a semicolon
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = 1; UPDATE t SET x = 2;
    END;
    """
    statements = list(split_statements(script))
    assert len(statements) == 2
    assert statements[1].endswith("UPDATE t SET x = 2;\n    END;")
    conn = sqlite3.connect(":memory:")
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO t VALUES (0)")
    assert conn.execute("SELECT x FROM t").fetchall() == [(2,)]
    conn.close()
