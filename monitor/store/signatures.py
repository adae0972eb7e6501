"""The recent originals' MinHash signatures, which a new article is compared with.

``pipeline._save`` asks the store for them before every save (clean.near_duplicate). Read from
the table each time, that is every signature of the week, once per article: a cold catch of
4,000 articles read 8 million rows, and a week of tens of thousands of articles would make
each save read megabytes (#4). :class:`RecentSignatures` reads them once and then only the
rows added since, for the SQLite store; the PostgreSQL store reads them per call (its ids,
taken by several workers at once, are not committed in order, so "the rows added since the
highest id seen" could miss one).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from monitor.models import Signatures
from monitor.store.rows import to_text

__all__ = ["SIGNATURE_BYTES", "RecentSignatures", "from_rows"]

#: A stored signature's length: clean.dedupe's HASHES values of 8 bytes. A row of another
#: length (a signature made with another hash count) cannot be compared and is left out.
SIGNATURE_BYTES = 64 * 8


def from_rows(rows: Iterable[tuple[int, bytes]]) -> Signatures:
    """(id, signature bytes) pairs, in order, as :class:`Signatures`."""
    import numpy as np

    kept = [(article_id, bytes(sig)) for article_id, sig in rows if len(sig) == SIGNATURE_BYTES]
    ids = np.fromiter((article_id for article_id, _ in kept), dtype=np.int64, count=len(kept))
    values = _matrix(b"".join(sig for _, sig in kept))
    return Signatures(ids=ids, values=values)


def _matrix(raw: bytes) -> Any:
    import numpy as np

    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, SIGNATURE_BYTES // 8)


class RecentSignatures:
    """A SQLite store's signatures of originals, read once and then only the new rows.

    Exact because of how SQLite and our schema behave: rows of ``articles`` are never
    deleted, and a row's signature, source, ``found_at``, ``duplicate_of`` and
    ``teaser_only`` never change once written (retention empties texts only); an
    ``INTEGER PRIMARY KEY`` takes the highest id + 1 inside the one write transaction SQLite
    allows at a time, so every row with an id at most the highest one read has been read,
    whichever process wrote it. A call asking for older rows than were loaded reads again.
    """

    _QUERY = (
        "SELECT id, signature, source, found_at FROM articles"
        " WHERE duplicate_of IS NULL AND signature IS NOT NULL AND teaser_only = 0"
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: datetime | None = None  # the window loaded: found at or after this
        self._highest = 0  # the highest id read
        self._codes: dict[str, int] = {}  # source name → its code in ``_sources``
        self._size = 0
        self._ids: Any = None
        self._sources: Any = None
        self._found: Any = None  # POSIX seconds
        self._values: Any = None

    def __repr__(self) -> str:
        return f"<RecentSignatures {self._size} since={self._since}>"

    def read(self, conn: Any, source: str, since: datetime) -> Signatures:
        """The signatures of originals found since ``since`` from other sources than
        ``source``, oldest id first; ``conn`` is the store's connection, in a transaction."""
        with self._lock:
            if self._since is None or since < self._since:
                self._reset(since)
                # Every row up to the highest id now is in this window's query (one snapshot).
                top = conn.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()
                self._highest = int(top[0])
                rows = conn.execute(
                    self._QUERY + " AND found_at >= ? ORDER BY id", (to_text(since),)
                ).fetchall()
            else:
                rows = conn.execute(
                    self._QUERY + " AND id > ? ORDER BY id", (self._highest,)
                ).fetchall()
            if rows:
                self._add(rows)
            size, cutoff = self._size, since.timestamp()
            recent = self._found[:size] >= cutoff
            wanted = recent & (self._sources[:size] != self._codes.get(source, -1))
            found = Signatures(ids=self._ids[:size][wanted], values=self._values[:size][wanted])
            if size - int(recent.sum()) > max(64, size // 2):  # mostly out of the window now
                self._keep(recent)
            return found

    def _reset(self, since: datetime) -> None:
        import numpy as np

        self._since, self._highest, self._size = since, 0, 0
        self._codes.clear()
        self._ids = np.empty(0, dtype=np.int64)
        self._sources = np.empty(0, dtype=np.int32)
        self._found = np.empty(0, dtype=np.float64)
        self._values = np.empty((0, SIGNATURE_BYTES // 8), dtype=np.uint64)

    def _add(self, rows: list[Any]) -> None:
        self._highest = max(self._highest, max(int(row[0]) for row in rows))
        kept = [row for row in rows if len(row[1]) == SIGNATURE_BYTES]
        if not kept:
            return
        end = self._size + len(kept)
        if end > len(self._ids):  # grow by doubling: appending stays cheap
            capacity = max(64, 2 * end)
            self._ids = _grown(self._ids, capacity)
            self._sources = _grown(self._sources, capacity)
            self._found = _grown(self._found, capacity)
            self._values = _grown(self._values, capacity)
        at = slice(self._size, end)
        self._ids[at] = [int(row[0]) for row in kept]
        self._sources[at] = [self._codes.setdefault(row[2], len(self._codes)) for row in kept]
        self._found[at] = [datetime.fromisoformat(row[3]).timestamp() for row in kept]
        self._values[at] = _matrix(b"".join(bytes(row[1]) for row in kept))
        self._size = end

    def _keep(self, recent: Any) -> None:
        """Keep only the rows ``recent`` marks (the window has moved on)."""
        kept = int(recent.sum())
        for name in ("_ids", "_sources", "_found", "_values"):
            array = getattr(self, name)
            array[:kept] = array[: self._size][recent]
        self._size = kept


def _grown(array: Any, capacity: int) -> Any:
    import numpy as np

    bigger = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
