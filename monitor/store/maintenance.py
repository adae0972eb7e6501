"""Keeping the database healthy for months: backup, vacuum, retention, integrity (issue #8).

backup:    sqlite3's online backup API into PATH.partial, checked, then renamed to PATH; the
           daemon may write meanwhile (WAL: the copy is one consistent snapshot).
vacuum:    checkpoint the WAL, rebuild the file (VACUUM), truncate the WAL.
prune:     article text found before a cutoff becomes "" (reason "pruned …"); title, URL,
           dates, source, fingerprint and matches stay, so duplicates are still linked and
           old items never fetched again. Articles the feed files or a pending digest still
           show keep their text.

Each function takes the store's connection inside the caller's transaction (or none, for
VACUUM and backup, which cannot run in one).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.errors import StoreError
from monitor.store import entries
from monitor.store.rows import to_text

#: Articles each feed file shows (pipeline.write_feeds): their text stays.
FEED_ENTRIES = 100
PRUNED = "pruned: older than [monitor] keep"


@dataclass(frozen=True, slots=True)
class VacuumResult:
    """The database file's size before and after, in bytes (WAL included)."""

    before: int
    after: int


def file_size(path: Path) -> int:
    """The database and its WAL, in bytes."""
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def backup(conn: sqlite3.Connection, source: Path, target: Path) -> int:
    """Copy the database to ``target`` with the online backup API; its size in bytes.

    Written to ``target.partial`` and renamed when complete and checked, so ``target`` is
    never half a database, even if the copy is interrupted."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        copy = sqlite3.connect(partial)
    except sqlite3.OperationalError as exc:
        raise StoreError(str(target), "cannot create the backup file") from exc
    try:
        try:
            # pages=-1: the whole database in one step, so it is one snapshot of the source.
            conn.backup(copy, pages=-1)
        except sqlite3.OperationalError as exc:
            raise StoreError(str(target), f"cannot back up {source}") from exc
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise StoreError(str(target), f"the backup fails its integrity check: {check}")
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        copy.close()
    try:
        os.replace(partial, target)
    except OSError as exc:
        raise StoreError(str(target), "cannot move the finished backup into place") from exc
    return target.stat().st_size


def vacuum(conn: sqlite3.Connection, path: Path) -> VacuumResult:
    """Rebuild the database file without free pages and truncate the WAL."""
    before = file_size(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return VacuumResult(before, file_size(path))


def still_shown(conn: sqlite3.Connection) -> set[int]:
    """Articles that the feed files show, or that a subscriber's next digest will."""
    shown = set(entries.recent_ids(conn, None, FEED_ENTRIES))
    for (topic,) in conn.execute("SELECT DISTINCT topic FROM matches").fetchall():
        shown.update(entries.recent_ids(conn, topic, FEED_ENTRIES))
    row = conn.execute(
        "SELECT min(digest_cursor) FROM subscribers WHERE status = 'active'"
    ).fetchone()
    if row[0] is not None:
        shown.update(
            int(r[0])
            for r in conn.execute(
                "SELECT DISTINCT article_id FROM matches WHERE id > ?", (int(row[0]),)
            )
        )
    return shown


def prune(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """Empty the text of articles found before ``cutoff``, except those still shown; how
    many were pruned."""
    keep = sorted(still_shown(conn))
    cur = conn.execute(
        """
        UPDATE articles SET text = '', reason = ?
        WHERE found_at < ? AND text != ''
          AND id NOT IN (SELECT value FROM json_each(?))
        """,
        (PRUNED, to_text(cutoff), "[" + ",".join(map(str, keep)) + "]"),
    )
    return cur.rowcount
