"""A throwaway PostgreSQL cluster for tests: Debian's ``postgresql`` binaries, no Docker.

``PgCluster`` runs ``initdb`` into a fresh directory under the system temp dir, starts the
server with ``pg_ctl start -w`` listening on 127.0.0.1 (a free port) and on a socket in that
directory, and ``close()`` stops it and removes the directory. initdb and postgres refuse to run
as root, so when the tests run as root every server command runs as the ``postgres`` user
(``runuser``) on a directory it owns; that is also why the directory is not under pytest's
``tmp_path``, which only root can enter.

Each test gets its own database (``create_database``); its URL is a plain string, so it works
the same in the test process and in ``monitor`` subprocesses. The server is tuned for tests
(``fsync = off``): a crash of the machine loses it, a crash or restart of the server does not.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: Where Debian's postgresql package puts the server programs; the newest major version wins.
DEBIAN_BIN = Path("/usr/lib/postgresql")
#: The superuser's name and password (scram-sha-256 over TCP, so wrong passwords fail).
USER = "postgres"
PASSWORD = "pm-test-secret"
#: Settings for a fast, disposable server; a restart keeps them (postgresql.conf).
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def server_bin() -> Path:
    """The directory with initdb, pg_ctl and postgres (AssertionError naming the package)."""
    versions = sorted(
        (p for p in DEBIAN_BIN.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    assert versions, "Debian's postgresql is not installed: apt-get install postgresql"
    return versions[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgCluster:
    """One PostgreSQL server in a temporary directory; ``with PgCluster() as pg:``."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        """``settings``: postgresql.conf lines beyond SETTINGS (the benches add
        pg_stat_statements this way)."""
        self.bin = server_bin()
        self.extra_settings = dict(settings or {})
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pm-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        self._running = False

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> PgCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init(self) -> None:
        """initdb with a password-protected superuser, and the test settings."""
        self.socket_dir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        pwfile.unlink()
        settings = dict(
            SETTINGS,
            **self.extra_settings,
            port=str(self.port),
            unix_socket_directories=f"'{self.socket_dir}'",
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg.py\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start", "-l", str(self.log))
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, roll back; ``immediate``: abort)."""
        self._pg_ctl("stop", "-m", mode)
        self._running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port: every client connection is cut."""
        self._pg_ctl("restart", "-m", mode, "-l", str(self.log))
        self._running = True

    def close(self) -> None:
        """Stop the server if it runs and remove its directory."""
        try:
            if self._running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, password: str | None = PASSWORD) -> str:
        """A libpq URL for ``database`` over TCP (``password=None``: without one)."""
        auth = USER if password is None else f"{USER}:{quote(password, safe='')}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test", *, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (a URL this made); its URL."""
        name = f"{prefix}_{next(self._names)}"
        copy = "" if template is None else f' TEMPLATE "{template.rsplit("/", 1)[1]}"'
        self.sql(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database``, closing its clients' connections."""
        name = url.rsplit("/", 1)[1]
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql over the socket (trusted); its unaligned output."""
        psql = [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        where = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", USER, "-d", database]
        done = self._run([*psql, *where, "-c", statement])
        return done.stdout.strip()

    def wait_ready(self, deadline: float = 30.0) -> None:
        """Poll until the server accepts connections (after a start by other means)."""
        end = time.monotonic() + deadline
        while True:
            done = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if done.returncode == 0:
                return
            assert time.monotonic() < end, f"PostgreSQL not ready on port {self.port}"
            time.sleep(0.05)

    def _pg_ctl(self, command: str, *options: str) -> None:
        self._run(
            [str(self.bin / "pg_ctl"), command, "-w", "-t", "60", "-D", str(self.data), *options]
        )

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=self.root)
        if done.returncode != 0:
            log = (
                self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
            )
            raise AssertionError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{log}"
            )
        return done


def query(target: Any, statement: str) -> list[tuple[Any, ...]]:
    """Rows of one SQL statement against a store's database, whichever the backend:
    ``target`` is a SQLite file's path, a SqliteStore or a PostgresStore. For store tests
    that look at the tables directly."""
    from monitor.store.sqlite import SqliteStore

    if isinstance(target, SqliteStore):
        target = target.path
    if isinstance(target, Path):
        conn = sqlite3.connect(target)
        try:
            return conn.execute(statement).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(target.url) as pg:
        return pg.execute(statement).fetchall()
