"""The database schema as numbered migrations, and the code that applies them.

``MIGRATIONS[n - 1]`` brings a database from ``PRAGMA user_version`` n-1 to n. Each runs in
one transaction that also stamps the new version, so a crash leaves the database at the last
complete version. A database stamped higher than ``SCHEMA_VERSION`` was written by a newer
press-monitor and is refused (SchemaVersionError) rather than misread. Never edit a released
migration: append a new one.

Datetimes are ISO-8601 UTC text (see rows.py); lists are JSON text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from monitor.errors import SchemaVersionError, StoreError

_V1 = """
-- What we remember about each source between polls (models.SourceState).
CREATE TABLE sources (
    name          TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    body_hash     TEXT,
    last_success  TEXT,
    last_error    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    items_seen    INTEGER NOT NULL DEFAULT 0,
    last_poll     TEXT
);

-- Every item a source ever listed, so that later polls skip it. key = guid, else URL.
CREATE TABLE items (
    source  TEXT NOT NULL,
    key     TEXT NOT NULL,
    url     TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('stored', 'old', 'known')),
    seen_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;

-- One row per canonical URL. A row with duplicate_of set is another source's copy of the
-- same text: it keeps only what "also published by" needs and never has matches.
CREATE TABLE articles (
    id           INTEGER PRIMARY KEY,
    url          TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    text         TEXT NOT NULL,
    published    TEXT,
    author       TEXT,
    language     TEXT,
    source       TEXT NOT NULL,
    teaser_only  INTEGER NOT NULL DEFAULT 0,
    reason       TEXT NOT NULL DEFAULT '',
    fingerprint  TEXT,
    found_at     TEXT NOT NULL,
    duplicate_of INTEGER REFERENCES articles (id) ON DELETE CASCADE
);
CREATE INDEX articles_fingerprint ON articles (fingerprint)
    WHERE fingerprint IS NOT NULL AND duplicate_of IS NULL;
CREATE INDEX articles_duplicate_of ON articles (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX articles_found ON articles (found_at, id);

-- AUTOINCREMENT: ids are never reused, so a digest cursor (the highest id delivered) is
-- safe even after rows are deleted.
CREATE TABLE matches (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    rule_id    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    alert      TEXT NOT NULL CHECK (alert IN ('digest', 'immediate')),
    terms      TEXT NOT NULL DEFAULT '[]',
    spans      TEXT NOT NULL DEFAULT '[]',
    found_at   TEXT NOT NULL,
    UNIQUE (article_id, rule_id)
);
CREATE INDEX matches_topic ON matches (topic, id);
CREATE INDEX matches_found ON matches (found_at);

CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    digest        TEXT NOT NULL,
    topics        TEXT NOT NULL DEFAULT '[]',
    created_at    TEXT NOT NULL,
    digest_cursor INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('pending', 'active'))
);

-- Every message, written before it is sent ('sending') and updated after. recipient keeps
-- the address when the subscriber is removed later.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    recipient     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('digest', 'alert', 'confirm')),
    message_id    TEXT NOT NULL,
    article_ids   TEXT NOT NULL DEFAULT '[]',
    cursor        INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'sending' CHECK (status IN ('sending', 'sent', 'failed')),
    error         TEXT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, kind, status);
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE status = 'sent';

-- Articles alerted to a subscriber: written with the delivery, before sending, so that an
-- article is alerted at most once whatever crash follows (DESIGN §9).
CREATE TABLE alerted (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    article_id    INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    delivery_id   INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    alerted_at    TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, article_id)
) WITHOUT ROWID;
"""

# Issue #7: delivery retries and permanent failures. A subscriber whose address bounced
# permanently (5xx) gets no mail until re-subscribed; a failed delivery with retry_at set is
# sent again then, from the bytes kept in message (same Message-ID, so clients dedupe).
_V2 = """
ALTER TABLE subscribers ADD COLUMN bounced_at TEXT;
ALTER TABLE subscribers ADD COLUMN bounce_reason TEXT;
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE deliveries ADD COLUMN retry_at TEXT;
ALTER TABLE deliveries ADD COLUMN message BLOB;
CREATE INDEX deliveries_retry ON deliveries (retry_at) WHERE retry_at IS NOT NULL;
CREATE INDEX deliveries_sending ON deliveries (status) WHERE status = 'sending';
"""

# Issue #4: source health. When a source is due again: after a failure, later and later
# (exponential backoff with jitter, and never before the server's Retry-After).
_V3 = """
ALTER TABLE sources ADD COLUMN next_poll TEXT;
"""

# Issue #5: near-duplicates. An original article's MinHash signature of its text (the
# values of clean.dedupe.signature as raw bytes, 512 for 64 hashes), compared with a new
# article from another source to link the same press release republished, lightly edited.
# And the key its URL's variants share (clean.url_key: http/https, "www.", trailing slash,
# AMP), so that an AMP or http link to a stored article is known; NULL on older rows.
_V4 = """
ALTER TABLE articles ADD COLUMN signature BLOB;
ALTER TABLE articles ADD COLUMN url_key TEXT;
CREATE INDEX articles_url_key ON articles (url_key) WHERE url_key IS NOT NULL;
"""

# Issue #7: other channels (apprise). A digest's channel is known by a hash of the digest's
# name and its URL as written (no secret is stored); like a subscriber it has a digest cursor
# (the highest match id delivered) and, for immediate alerts, an alert cursor moved when the
# alert is recorded, before it is sent (at most once). Its messages go through deliveries
# like e-mail (channel_id set, subscriber_id NULL, recipient the redacted URL).
_V5 = """
CREATE TABLE channels (
    id            INTEGER PRIMARY KEY,
    digest        TEXT NOT NULL,
    key           TEXT NOT NULL,
    label         TEXT NOT NULL,
    digest_cursor INTEGER NOT NULL DEFAULT 0,
    alert_cursor  INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    UNIQUE (digest, key)
);
ALTER TABLE deliveries ADD COLUMN channel_id INTEGER REFERENCES channels (id) ON DELETE SET NULL;
CREATE INDEX deliveries_channel ON deliveries (channel_id, kind, status)
    WHERE channel_id IS NOT NULL;
"""

# Issue #6: "why this alert". The satisfied part of the rule's query as query text
# (models.Match.why: "torture AND Astana"), shown under each article in digests, alerts and
# feeds; '' for matches stored before this column, or when the engine could not say.
_V6 = """
ALTER TABLE matches ADD COLUMN why TEXT NOT NULL DEFAULT '';
"""

#: Migration n (1-based) brings user_version n-1 to n.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6]
#: The schema version this code reads and writes.
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_version(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> int:
    """The database's version; SchemaVersionError when it is newer than this code, and for a
    read-only store a StoreError when it is older (it cannot be migrated read-only)."""
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            str(path),
            f"written by a newer press-monitor (schema {version}, this one knows {SCHEMA_VERSION})",
        )
    if readonly and version < SCHEMA_VERSION:
        raise StoreError(
            str(path),
            f"the database has schema {version} and needs upgrading to {SCHEMA_VERSION}; "
            "run a command that writes, such as `monitor poll --once`",
        )
    return version


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the missing migrations, one transaction each; return the final version.

    The version is read again under the write lock, so two processes opening a new database
    at once do not both apply migration 1. The connection must be in autocommit mode
    (``isolation_level=None``)."""
    version = check_version(conn, path, readonly=False)
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = check_version(conn, path, readonly=False)
            if version < SCHEMA_VERSION:
                for statement in split_statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return version


def split_statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script, one at a time (triggers included).

    ``executescript`` would commit the transaction we opened, so statements are run one by one
    with ``execute`` instead."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_sql(pending):
                yield pending.strip()
            pending = ""
    if _has_sql(pending.rstrip(";")):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")


def _has_sql(text: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in text.splitlines())
    return any(line and line != ";" for line in lines)
