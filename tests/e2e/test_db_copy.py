"""`monitor db copy`: a real installation (polled from a LocalSite, a digest sent) moved from
SQLite to PostgreSQL without losing a match, a subscriber or a delivery record (issue #9)."""

from __future__ import annotations

import mailbox
import sqlite3
from pathlib import Path

import psycopg
import pytest

from monitor import cli
from monitor.store.postgres import TABLES
from tests.pg import PgCluster
from tests.servers import LocalSite


def sqlite_table(path: Path, table: str) -> tuple[list[str], list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        columns = [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()
    return columns, rows


def pg_table(url: str, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2").fetchall()


def pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def installation(project: Path, site: LocalSite) -> Path:
    """A SQLite installation after a real poll and a digest: articles, matches, a subscriber,
    a delivered digest."""
    config = project / "monitor.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[[source]]\nname = "Test RSS"\nurl = "{site.url("feeds/rss.xml")}"\nevery = "1h"\n',
        encoding="utf-8",
    )
    assert cli.main(["--config", str(config), "subscribers", "add", "reader@example.org"]) == 0
    assert cli.main(["--config", str(config), "poll", "--once"]) == 0
    assert cli.main(["--config", str(config), "digest", "send", "--now"]) == 0
    return project


def test_copy_moves_every_row_and_the_installation_runs_on_postgres(
    installation: Path, pg_cluster: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    db = installation / "state" / "monitor.db"
    config = installation / "monitor.toml"
    _, matches = sqlite_table(db, "matches")
    _, deliveries = sqlite_table(db, "deliveries")
    assert matches  # the poll matched
    assert deliveries  # and the digest went out
    url = pg_cluster.create_database()
    capsys.readouterr()

    assert cli.main(["db", "copy", str(db), url]) == 0
    out, err = capsys.readouterr()
    assert f"matches: {len(matches)}/{len(matches)}" in err  # progress, per table
    assert "counts verified" in out
    for table in TABLES:
        columns, rows = sqlite_table(db, table)
        assert pg_table(url, table, columns) == rows, table

    # Now on PostgreSQL: the same subscriber, nothing new to poll, the digest already sent.
    with config.open("a", encoding="utf-8") as file:
        file.write(f'\n[store]\nurl = "{url}"\n')
    outbox = mailbox.Maildir(installation / "state" / "outbox", create=False)
    sent = len(outbox)
    assert cli.main(["--config", str(config), "subscribers", "list"]) == 0
    assert "reader@example.org" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "poll", "--once", "--json"]) == 0
    assert '"new_articles": 0' in capsys.readouterr().out
    assert cli.main(["--config", str(config), "digest", "send", "--now"]) == 0
    assert len(outbox) == sent  # the cursor came along: nothing sent twice
    _, after = sqlite_table(db, "matches")
    assert pg_count(url, "matches") == len(after)


def test_copy_refuses_a_database_that_holds_rows_unless_told_to_replace(
    installation: Path, pg_cluster: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    db = installation / "state" / "monitor.db"
    url = pg_cluster.create_database()
    assert cli.main(["db", "copy", str(db), url]) == 0
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sources (name) VALUES ('Extra')")
    capsys.readouterr()

    assert cli.main(["db", "copy", str(db), url]) == 1
    err = capsys.readouterr().err
    assert "is not empty" in err
    assert "--replace" in err
    assert pg_count(url, "sources") == 2  # left as it was

    assert cli.main(["db", "copy", str(db), url, "--replace"]) == 0
    columns, rows = sqlite_table(db, "sources")
    assert pg_table(url, "sources", columns) == rows
    # New ids continue after the copied ones.
    with psycopg.connect(url) as conn:
        top = conn.execute("SELECT max(id) FROM matches").fetchone()
        assert top is not None
        row = conn.execute("SELECT nextval(pg_get_serial_sequence('matches', 'id'))").fetchone()
        assert row is not None
        assert row[0] == top[0] + 1


def test_copy_with_a_wrong_password_exits_2_without_showing_it(
    installation: Path, pg_cluster: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_cluster.create_database().replace("pm-test-secret", "hunter2")
    assert cli.main(["db", "copy", str(installation / "state" / "monitor.db"), url]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the database" in err
    assert "hunter2" not in err
