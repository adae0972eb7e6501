"""Shared fixtures: real servers on loopback, real files under tmp_path.

Any CRITICAL log record fails the test that produced it (STYLE §2: bugs stay loud).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PgCluster
from tests.servers import LocalSite, LocalSMTP

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _no_critical_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="monitor")
    yield
    critical = [r for r in caplog.get_records("call") if r.levelno >= logging.CRITICAL]
    assert not critical, f"CRITICAL log records: {[r.getMessage() for r in critical]}"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    """An HTTP server on 127.0.0.1 serving a copy of tests/data/site/ (tests may add files)."""
    root = tmp_path / "site"
    shutil.copytree(DATA / "site", root)
    with LocalSite(root) as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[LocalSMTP]:
    with LocalSMTP() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh installation: monitor.toml, the starter rules/ and templates/, an empty state/."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "rules", root / "rules")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "state").mkdir()
    (root / "monitor.toml").write_text(
        '[monitor]\ntimezone = "Asia/Almaty"\nmax_age = "0"\n', encoding="utf-8"
    )
    return root


#: The session's PostgreSQL server, once a test has asked for it.
PG_CLUSTER = pytest.StashKey[PgCluster]()


@pytest.fixture(scope="session")
def pg_cluster(request: pytest.FixtureRequest) -> PgCluster:
    """One throwaway PostgreSQL server for the whole session (tests/pg.py). It is stopped and
    removed by pytest_sessionfinish, not by this fixture: a session fixture's teardown runs
    inside the last test's, under that test's timeout, and removing the files can be slow."""
    cluster = PgCluster().__enter__()
    request.config.stash[PG_CLUSTER] = cluster
    return cluster


def pytest_sessionfinish(session: pytest.Session) -> None:
    cluster = session.config.stash.get(PG_CLUSTER, None)
    if cluster is not None:
        cluster.close()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A database with press-monitor's schema applied, that ``pg_url`` copies."""
    from monitor.store import open_postgres

    url = pg_cluster.create_database("template")
    open_postgres(url).close()
    return url


@pytest.fixture
def pg_url(pg_cluster: PgCluster, pg_template: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database of its own (the password in it), with the
    current schema and no rows; ``pg_cluster.create_database()`` gives an empty one."""
    url = pg_cluster.create_database(template=pg_template)
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A real store, migrated, closed in teardown: SQLite under tmp_path; in the store's own
    tests (tests/unit/test_store_*.py) each test runs twice, on SQLite and on PostgreSQL
    (issue #9: the proof that both implement one interface), unless marked sqlite_only."""
    from monitor.store import open_postgres, open_store

    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        db: Any = open_postgres(request.getfixturevalue("pg_url"))
    else:
        db = open_store(tmp_path / "state" / "monitor.db")
    try:
        yield db
    finally:
        db.close()


#: pytest-timeout limit for tests on PostgreSQL: the first one starts the server (initdb) and the
#: last one stops it and removes its files, which take tens of seconds on a busy machine.
PG_TIMEOUT = 180


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store") == "postgres"
        if ("pg_cluster" in names or on_postgres) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PG_TIMEOUT))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the store's tests that take ``store`` on both backends (see ``store``)."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if (
        "store" in metafunc.fixturenames
        and module.startswith("test_store_")
        and metafunc.definition.get_closest_marker("sqlite_only") is None
    ):
        metafunc.parametrize("store", ["sqlite", "postgres"], indirect=True)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Playwright driving Debian's chromium; no browser download."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: apt-get install chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite golden files (docs/cli.md, *.expected.json); then read the diff.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
