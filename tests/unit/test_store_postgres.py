"""PostgresStore beyond the shared store tests: schema versions, login errors, several writers
at once, and a server that restarts or goes away (issue #9)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from monitor import cli
from monitor.errors import SchemaVersionError, StoreConnectError, StoreError
from monitor.models import Article, FetchResult, Item, Match
from monitor.store import open_postgres
from monitor.store import postgres_schema as pg_schema
from monitor.store.postgres import PostgresStore
from monitor.store.postgres_conn import PgConnection
from monitor.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.pg import PASSWORD, USER, PgCluster

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
MATCH = Match(rule_id="kz", topic="Kazakhstan", alert="immediate", terms=("Astana",))


def article(n: int) -> Article:
    return Article(url=f"https://news.example/{n}", title=f"Title {n}", text=f"Astana news {n}")


def stamped(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM monitor_schema").fetchone()
    assert row is not None
    return int(row[0])


# -- schema ---------------------------------------------------------------------------------


def test_postgres_has_a_migration_for_every_sqlite_migration() -> None:
    assert len(pg_schema.MIGRATIONS) == len(MIGRATIONS) == SCHEMA_VERSION


def test_an_empty_database_is_migrated_and_stamped(pg_cluster: PgCluster) -> None:
    url = pg_cluster.create_database()
    open_postgres(url).close()
    assert stamped(url) == SCHEMA_VERSION
    tables = {row[0] for row in query_url(url, "SELECT tablename FROM pg_tables")}
    assert {"articles", "matches", "subscribers", "deliveries", "channels"} <= tables


def test_stores_opened_at_once_on_an_empty_database_all_open_and_stamp_it_once(
    pg_cluster: PgCluster,
) -> None:
    # Workers started together on a new database: each waits for the migration lock, then
    # must see the schema the first one made (before the fix, all but one failed with
    # DuplicateTable in every round).
    for _ in range(3):
        url = pg_cluster.create_database()
        ready = threading.Barrier(4)
        errors: list[BaseException] = []

        def open_one(
            url: str = url, ready: threading.Barrier = ready, errors: list[BaseException] = errors
        ) -> None:
            ready.wait()
            try:
                PostgresStore(url).close()
            except BaseException as exc:  # recorded, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert stamped(url) == SCHEMA_VERSION
        assert query_url(url, "SELECT count(*) FROM monitor_schema") == [(1,)]


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_database_of_every_earlier_version_is_upgraded_keeping_its_rows(
    pg_cluster: PgCluster, version: int
) -> None:
    url = pg_cluster.create_database()
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        assert pg_schema.migrate(conn, "test", target=version) == version
        conn.execute("INSERT INTO sources (name, etag, failures) VALUES ('Agency', '\"v1\"', 2)")
    store = open_postgres(url)
    try:
        assert stamped(url) == SCHEMA_VERSION
        state = store.source_state("Agency")
        assert (state.etag, state.failures) == ('"v1"', 2)
        stored = store.save_article(
            "Agency", Item(url="https://a.example/1"), article(1), [MATCH], NOW
        )
        assert stored.new
        assert [e.article_id for e in store.recent_entries()] == [stored.article_id]
    finally:
        store.close()


def test_a_database_newer_than_the_code_is_refused_and_left_alone(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE monitor_schema SET version = %s", (SCHEMA_VERSION + 3,))
    with pytest.raises(SchemaVersionError) as caught:
        open_postgres(pg_url)
    message = str(caught.value)
    assert f"schema {SCHEMA_VERSION + 3}, this one knows {SCHEMA_VERSION}" in message
    assert "upgrade press-monitor on this machine" in message
    assert PASSWORD not in message
    assert stamped(pg_url) == SCHEMA_VERSION + 3


def test_a_worker_with_an_older_schema_refuses_to_start_and_says_why(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE monitor_schema SET version = %s", (SCHEMA_VERSION + 1,))
    config = write_config(tmp_path, f'url = "{pg_url}"')
    assert cli.main(["--config", str(config), "subscribers", "list"]) == 1
    err = capsys.readouterr().err
    assert "written by a newer press-monitor" in err
    assert PASSWORD not in err


def test_read_only_store_cannot_write_and_refuses_an_unmigrated_database(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    reader = open_postgres(pg_url, readonly=True)
    try:
        with pytest.raises(StoreError, match="cannot prune old article text"):
            reader.prune(NOW)
        assert reader.sources_health() == {}
    finally:
        reader.close()
    with pytest.raises(StoreError, match="needs upgrading"):
        open_postgres(pg_cluster.create_database(), readonly=True)


# -- login errors ---------------------------------------------------------------------------


def test_a_wrong_password_names_server_and_database_but_never_the_password(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(StoreConnectError) as caught:
        open_postgres(wrong)
    message = str(caught.value)
    database = pg_url.rsplit("/", 1)[1]
    assert message.startswith(
        f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{database}: cannot connect"
    )
    assert "password authentication failed" in message
    assert "not-the-password" not in message


def test_an_unreachable_server_and_a_missing_database_are_connect_errors(
    pg_cluster: PgCluster,
) -> None:
    with pytest.raises(StoreConnectError, match=r"127\.0\.0\.1:1/x: cannot connect"):
        open_postgres(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x")
    with pytest.raises(StoreConnectError, match='database "absent" does not exist'):
        open_postgres(pg_cluster.url("absent"))


def write_config(root: Path, store_table: str) -> Path:
    path = root / "monitor.toml"
    path.write_text(f'[monitor]\nstate_dir = "state"\n\n[store]\n{store_table}\n', encoding="utf-8")
    return path


def test_cli_exits_2_on_a_wrong_password_from_the_environment(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = pg_url.replace(f":{PASSWORD}@", "@")
    config = write_config(tmp_path, f'url = "{bare}"\npassword_env = "PM_DB_PASSWORD"')
    monkeypatch.setenv("PM_DB_PASSWORD", "wrong-secret")
    assert cli.main(["--config", str(config), "subscribers", "list"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the database" in err
    assert "wrong-secret" not in err
    monkeypatch.setenv("PM_DB_PASSWORD", PASSWORD)
    assert cli.main(["--config", str(config), "subscribers", "add", "a@example.org"]) == 0
    assert cli.main(["--config", str(config), "subscribers", "list"]) == 0
    assert "a@example.org" in capsys.readouterr().out


def test_config_refuses_a_store_url_that_is_not_postgresql(tmp_path: Path) -> None:
    from monitor.config import load
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"store\.url: expected a \"postgresql://"):
        load(write_config(tmp_path, 'url = "mysql://db/monitor"'))


# -- several writers ------------------------------------------------------------------------


def test_two_writers_saving_the_same_article_at_once_store_it_once(pg_url: str) -> None:
    stores = [open_postgres(pg_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    results = []

    def save(store: PostgresStore) -> None:
        start.wait()
        item = Item(url="https://a.example/1")
        results.append(store.save_article("Agency", item, article(1), [MATCH], NOW))

    threads = [threading.Thread(target=save, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert sorted(r.new for r in results) == [False, False, False, True]
    assert query_url(pg_url, "SELECT count(*) FROM matches") == [(1,)]


def test_a_retry_another_process_is_claiming_is_skipped_not_claimed_twice(pg_url: str) -> None:
    store = open_postgres(pg_url)
    try:
        reader = store.add_subscriber("r@example.org", "daily", (), NOW)
        ids = [
            store.begin_delivery(reader, "confirm", f"<{n}@x>", [], 0, NOW, b"m") for n in range(2)
        ]
        for delivery_id in ids:
            store.finish_delivery(delivery_id, NOW, "421 busy", retry_at=NOW)
        with psycopg.connect(pg_url) as other:  # another process, in the middle of its claim
            other.execute("SELECT id FROM deliveries WHERE id = %s FOR UPDATE", (ids[0],))
            claimed = store.claim_retries(NOW + timedelta(minutes=1))
            assert [d.id for d in claimed] == [ids[1]]
        assert [d.id for d in store.claim_retries(NOW + timedelta(minutes=1))] == [ids[0]]
        assert store.claim_retries(NOW + timedelta(minutes=2)) == []
    finally:
        store.close()


def test_a_match_committed_late_under_a_lower_id_is_not_skipped_by_a_digest(pg_url: str) -> None:
    first, second = open_postgres(pg_url), open_postgres(pg_url)
    try:
        reader = first.add_subscriber("r@example.org", "daily", (), NOW)
        first.save_article("A", Item(url="https://a.example/0"), article(0), [MATCH], NOW)
        entries, cursor = first.digest_entries(reader, NOW)
        first.finish_delivery(
            first.begin_delivery(reader, "digest", "<d1@x>", [], cursor, NOW), NOW
        )
        # Writer 1 holds the match lock mid-transaction; writer 2 must wait for it, so the
        # ids are committed in order and a digest read meanwhile cannot pass over either.
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("SELECT pg_advisory_xact_lock(%s)", (0x7072_6D6F_6E01,))
            saved = threading.Thread(
                target=second.save_article,
                args=("B", Item(url="https://b.example/1"), article(1), [MATCH], NOW),
            )
            saved.start()
            saved.join(timeout=0.5)
            assert saved.is_alive()  # waiting for the lock, nothing committed yet
            assert first.digest_entries(reader, NOW)[0] == []
        saved.join()
        entries, _ = first.digest_entries(reader, NOW)
        assert [e.url for e in entries] == ["https://news.example/1"]
    finally:
        first.close()
        second.close()


# -- the server restarts or goes away ------------------------------------------------------


def test_the_store_reconnects_after_the_server_restarts(
    pg_cluster: PgCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worst timing: the pool hands its connection out again unchecked, as it does when
    # the connection came back a moment ago, so the first call meets the dead connection.
    monkeypatch.setattr(PgConnection, "CHECK_IDLE", 3600.0)
    store = open_postgres(pg_url)
    try:
        store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"1"'), None)
        pg_cluster.restart()
        store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"2"'), None)
        assert store.source_state("Agency").etag == '"2"'
    finally:
        store.close()


def test_while_the_server_is_down_calls_fail_with_store_error_then_work_again(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    store = PostgresStore(pg_url, connect_timeout=2)
    try:
        pg_cluster.stop()
        try:
            with pytest.raises(StoreError) as caught:
                store.add_subscriber("r@example.org", "daily", (), NOW)
            assert str(caught.value).startswith("postgresql://postgres@127.0.0.1:")
            assert "cannot add subscriber r@example.org" in str(caught.value)
            assert PASSWORD not in str(caught.value)
        finally:
            pg_cluster.start()
        assert store.add_subscriber("r@example.org", "daily", (), NOW).id == 1
    finally:
        store.close()


def query_url(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement).fetchall()


# -- db commands on a PostgreSQL store -----------------------------------------------------


def test_db_prune_works_and_backup_and_vacuum_name_what_to_use_instead(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_postgres(pg_url)
    try:
        old = datetime.now(UTC) - timedelta(days=800)
        store.save_article("A", Item(url="https://a.example/1"), article(1), [], old)
    finally:
        store.close()
    config = write_config(tmp_path, f'url = "{pg_url}"')
    config.write_text(
        config.read_text(encoding="utf-8").replace("[monitor]\n", '[monitor]\nkeep = "365d"\n'),
        encoding="utf-8",
    )
    capsys.readouterr()
    assert cli.main(["--config", str(config), "db", "prune"]) == 0
    assert "pruned the text of 1 article(s)" in capsys.readouterr().out
    assert query_url(pg_url, "SELECT text FROM articles") == [("",)]

    assert cli.main(["--config", str(config), "db", "backup", str(tmp_path / "b.db")]) == 2
    assert "use pg_dump" in capsys.readouterr().err
    assert not (tmp_path / "b.db").exists()
    assert cli.main(["--config", str(config), "db", "vacuum"]) == 2
    assert "autovacuum" in capsys.readouterr().err


# -- the job queue's tables (store/queue.py) -------------------------------------------------


def test_a_job_queue_made_before_gets_the_lock_index_and_a_fetch_planned_without_sorts(
    pg_cluster: PgCluster,
) -> None:
    # As an earlier press-monitor left it: procrastinate's tables only.
    from procrastinate.schema import SchemaManager

    from monitor.store import queue

    url = pg_cluster.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())
    assert queue.ensure_schema(url) is False  # the tables were there
    assert queue.ensure_schema(url) is False  # and a second start changes nothing
    indexes = query_url(url, "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'monitor_%'")
    assert [row[0] for row in indexes] == [
        "CREATE INDEX monitor_jobs_lock_idx ON public.procrastinate_jobs USING btree (lock)"
        " WHERE (status = ANY (ARRAY['todo'::procrastinate_job_status,"
        " 'doing'::procrastinate_job_status]))"
    ]
    settings = query_url(
        url, "SELECT proconfig FROM pg_proc WHERE proname = 'procrastinate_fetch_job_v2'"
    )
    assert settings == [(["enable_sort=off", "plan_cache_mode=force_generic_plan"],)]


def test_a_procrastinate_without_the_fetch_function_we_tune_still_starts_and_says_so(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    from procrastinate.schema import SchemaManager

    from monitor.store import queue

    url = pg_cluster.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())
        conn.execute("DROP FUNCTION procrastinate_fetch_job_v2(character varying[], bigint)")
    assert queue.ensure_schema(url) is False
    [warned] = [r for r in caplog.records if r.getMessage() == "queue.fetch_not_tuned"]
    assert warned.levelname == "WARNING"
    assert "procrastinate_fetch_job_v2" in str(getattr(warned, "fields", {}))


def test_a_database_user_who_does_not_own_the_queue_still_starts_and_says_so(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    from procrastinate.schema import SchemaManager

    from monitor.store import queue

    url = pg_cluster.create_database()
    name = url.rsplit("/", 1)[1]
    pg_cluster.sql(
        "DO $$ BEGIN CREATE ROLE pm_not_owner LOGIN PASSWORD 'pm-other';"
        " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    pg_cluster.sql(f'GRANT ALL ON DATABASE "{name}" TO pm_not_owner')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())  # made by the owner, without our tuning
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO pm_not_owner")
    other = url.replace(f"{USER}:{PASSWORD}@", "pm_not_owner:pm-other@")
    assert queue.ensure_schema(other) is False
    [warned] = [r for r in caplog.records if r.getMessage() == "queue.fetch_not_tuned"]
    assert "does not own" in str(getattr(warned, "fields", {}))
    caplog.clear()
    queue.ensure_schema(url)  # the owner tunes it; the other user's next start is quiet
    queue.ensure_schema(other)
    assert "queue.fetch_not_tuned" not in caplog.text


def test_the_job_fetch_takes_the_queue_head_not_a_sort_of_every_waiting_job(
    pg_cluster: PgCluster,
) -> None:
    # The plan a worker's fetch gets when the table's statistics are from when it was empty
    # (a new queue, 2,000 polls queued since): without enable_sort = off it sorted every
    # waiting job and checked each one's lock (bench/workers_bench.py --stats: 10,080 buffers
    # read per fetch at 2,000 jobs, 18.7 ms).
    from monitor.store import queue

    url = pg_cluster.create_database()
    queue.ensure_schema(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args)"
            " SELECT 'default', 'monitor.poll', 'source:' || n, 'poll:' || n, '{}'"
            " FROM generate_series(1, 2000) AS n"
        )
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_analyze = on")
        conn.execute("SET auto_explain.log_buffers = on")
        conn.execute("SET client_min_messages = log")
        plans: list[str] = []
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        for _ in range(3):
            row = conn.execute("SELECT id FROM procrastinate_fetch_job_v2(NULL, NULL)").fetchone()
            assert row is not None
            assert row[0] is not None
    fetches = [plan for plan in plans if "priority_idx" in plan or "Sort" in plan]
    assert fetches, plans
    for plan in fetches:
        assert "Sort" not in plan
        assert "Index Scan using procrastinate_jobs_priority_idx" in plan
        assert "Index Scan using monitor_jobs_lock_idx" in plan
