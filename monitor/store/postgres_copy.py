"""`monitor db copy SQLITE-PATH POSTGRES-URL`: an installation moved from SQLite to PostgreSQL.

Every table is copied column for column (the two schemas are the same version by version,
postgres_schema.py), ids included, so every cursor stays valid as it is: subscribers' and
channels' digest and alert cursors (match ids), deliveries' cursors and article id lists,
duplicates' links. The identities then continue after the highest id (for matches, after the
highest id SQLite ever gave, deleted rows included: cursors rely on ids never reused).

The source is read in one read transaction (a consistent snapshot, even while `monitor run`
still writes), and the target is written in one transaction, so a failed copy leaves it as it
was. A target that holds rows is refused unless ``replace``; the counts of every table are
compared at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from monitor.errors import StoreError
from monitor.store import schema
from monitor.store.postgres import TABLES, PostgresStore
from monitor.store.sqlite import sqlite_errors

#: Every table, parents before children: the order they are filled in.
COPY_ORDER = TABLES
#: Rows between two progress reports.
PROGRESS_EVERY = 2000

Progress = Callable[[str, int, int], object]


@dataclass(frozen=True, slots=True)
class CopyResult:
    """Rows per table in the source and, after the copy, in the target."""

    source: dict[str, int]
    target: dict[str, int]


def copy_sqlite(
    sqlite_path: Path,
    url: str,
    *,
    password: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy the SQLite store at ``sqlite_path`` into the PostgreSQL database at ``url``
    (migrated first). ``progress(table, rows_done, rows_total)`` is called as rows go.
    StoreError when the source is missing or not at this code's schema version, when the
    target holds rows and not ``replace``, or when the counts differ at the end."""
    if not sqlite_path.is_file():
        raise StoreError(str(sqlite_path), "no such database file")
    source = _open_source(sqlite_path)
    try:
        target = PostgresStore(url, password=password, pool_size=1)
        try:
            with sqlite_errors(sqlite_path, "read the database"):
                source.execute("BEGIN")  # one snapshot for the whole copy
                counts = {t: _count(source, t) for t in COPY_ORDER}
                _copy(source, target, counts, replace, progress or _quiet)
                source.execute("COMMIT")
            copied = target.counts()
        finally:
            target.close()
    finally:
        source.close()
    if copied != counts:
        differ = ", ".join(
            f"{t}: {counts[t]} → {copied.get(t)}" for t in COPY_ORDER if copied.get(t) != counts[t]
        )
        raise StoreError(target.where, f"the copy's row counts differ from the source's: {differ}")
    return CopyResult(counts, copied)


def _open_source(path: Path) -> sqlite3.Connection:
    with sqlite_errors(path, "open the database"):
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        version = schema.user_version(conn)
    if version != schema.SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            str(path),
            f"the database has schema {version} and this press-monitor copies schema "
            f"{schema.SCHEMA_VERSION}: "
            + (
                "run `monitor poll --once` with this version on it first"
                if version < schema.SCHEMA_VERSION
                else "use the press-monitor that wrote it"
            ),
        )
    return conn


def _copy(
    source: sqlite3.Connection,
    target: PostgresStore,
    counts: dict[str, int],
    replace: bool,
    progress: Progress,
) -> None:
    with target._write("copy into the database") as conn:  # one transaction
        held = _target_rows(conn)
        if held and not replace:
            raise StoreError(
                target.where,
                f"the database is not empty ({held:,} rows); copy into an empty database, or "
                "pass --replace to delete what it holds first",
            )
        if held:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(map(sql.Identifier, COPY_ORDER))
                )
            )
        for table in COPY_ORDER:
            _copy_table(source, conn, table, counts[table], progress)
        _continue_identities(source, conn)


def _copy_table(
    source: sqlite3.Connection,
    conn: psycopg.Connection[dict[str, object]],
    table: str,
    total: int,
    progress: Progress,
) -> None:
    columns = [str(row[1]) for row in source.execute(f"PRAGMA table_info({table})")]
    order = " ORDER BY id" if "id" in columns else ""
    rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}{order}")
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    done = 0
    progress(table, 0, total)
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            done += 1
            if done % PROGRESS_EVERY == 0:
                progress(table, done, total)
    progress(table, done, total)


def _continue_identities(
    source: sqlite3.Connection, conn: psycopg.Connection[dict[str, object]]
) -> None:
    """Each identity continues after the highest id copied (or SQLite ever gave)."""
    ever = {
        str(name): int(seq)
        for name, seq in source.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    }
    for table in ("articles", "matches", "subscribers", "channels", "deliveries"):
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(id), 0) AS top FROM {}").format(sql.Identifier(table))
        ).fetchone()
        top = max(int(str(row["top"])) if row else 0, ever.get(table, 0))
        if top:
            conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, top))


def _target_rows(conn: psycopg.Connection[dict[str, object]]) -> int:
    held = 0
    for table in COPY_ORDER:
        row = conn.execute(
            sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
        ).fetchone()
        held += int(str(row["n"])) if row else 0
    return held


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _quiet(table: str, done: int, total: int) -> None:
    pass
