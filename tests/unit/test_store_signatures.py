"""Store.recent_signatures: the originals a new article may near-duplicate (the week's
signatures of other sources), as both stores give them; SQLite's are read once and then
only the rows added since (store/signatures.py), which must come to the same answer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.clean.dedupe import HASHES, most_similar, signature
from monitor.models import Article, Item, Signatures
from monitor.store import open_store
from monitor.store.signatures import SIGNATURE_BYTES, from_rows

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def random_signature(rng: random.Random) -> str:
    return rng.randbytes(SIGNATURE_BYTES).hex()


def save(store: Any, n: int, source: str, sig: str | None, now: datetime, **kw: Any) -> int:
    url = f"https://{source.lower()}.example/{n}"
    text = f"Article {n} of {source}: " + "a text long enough to be an original. " * 8
    stored = store.save_article(
        source,
        Item(url=url),
        Article(url=url, title=f"{source} {n}", text=text, source=source, **kw),
        [],
        now,
        signature=sig,
    )
    return int(stored.article_id)


def as_pairs(found: Signatures) -> list[tuple[int, str]]:
    return [
        (int(i), row.astype(">u8").tobytes().hex())
        for i, row in zip(found.ids, found.values, strict=True)
    ]


def test_the_stored_length_is_the_signatures() -> None:
    assert SIGNATURE_BYTES * 2 == len(signature("word " * 100) or "") == HASHES * 16


def test_other_sources_originals_of_the_week_oldest_first(store: Any) -> None:
    rng = random.Random(1)
    mine = save(store, 1, "Mine", random_signature(rng), NOW - timedelta(hours=1))
    old = save(store, 2, "Other", random_signature(rng), NOW - WEEK - timedelta(hours=1))
    sig_a, sig_b = random_signature(rng), random_signature(rng)
    a = save(store, 3, "Other", sig_a, NOW - timedelta(hours=3))
    save(store, 4, "Other", None, NOW)  # no signature: nothing to compare
    save(store, 5, "Third", random_signature(rng), NOW, teaser_only=True)
    b = save(store, 6, "Third", sig_b, NOW)
    found = store.recent_signatures("Mine", NOW - WEEK)
    assert as_pairs(found) == [(a, sig_a), (b, sig_b)]
    assert mine not in found.ids
    assert old not in found.ids


def test_rows_saved_after_a_read_are_in_the_next_one(store: Any) -> None:
    rng = random.Random(2)
    first = random_signature(rng)
    one = save(store, 1, "Other", first, NOW)
    assert as_pairs(store.recent_signatures("Mine", NOW - WEEK)) == [(one, first)]
    second = random_signature(rng)
    two = save(store, 2, "Other", second, NOW + timedelta(minutes=5))
    mine = save(store, 3, "Mine", random_signature(rng), NOW + timedelta(minutes=5))
    later = NOW + timedelta(minutes=5) - WEEK
    assert as_pairs(store.recent_signatures("Mine", later)) == [(one, first), (two, second)]
    # The same rows seen from the other side: "Mine"'s article is a candidate for "Other".
    assert [int(i) for i in store.recent_signatures("Other", later).ids] == [mine]
    # A window further back than any read so far, and one that has moved past the first.
    assert len(store.recent_signatures("Mine", NOW - 2 * WEEK)) == 2
    assert list(store.recent_signatures("Mine", NOW + timedelta(minutes=1)).ids) == [two]


@pytest.mark.sqlite_only
def test_rows_another_process_saves_are_seen(tmp_path: Path) -> None:
    # The daemon's store and, say, `monitor poll --once` run by hand on the same file.
    path = tmp_path / "state" / "monitor.db"
    rng = random.Random(3)
    daemon, other = open_store(path), open_store(path)
    try:
        first = random_signature(rng)
        one = save(daemon, 1, "Other", first, NOW)
        assert as_pairs(daemon.recent_signatures("Mine", NOW - WEEK)) == [(one, first)]
        second = random_signature(rng)
        two = save(other, 2, "Other", second, NOW)
        assert as_pairs(daemon.recent_signatures("Mine", NOW - WEEK)) == [
            (one, first),
            (two, second),
        ]
    finally:
        daemon.close()
        other.close()


@pytest.mark.sqlite_only
def test_what_is_remembered_agrees_with_a_fresh_read(tmp_path: Path) -> None:
    # Saves from 4 sources over a month, a read for a random source after each: the store
    # that remembers what it read answers as one opened afresh (which reads the table).
    path = tmp_path / "state" / "monitor.db"
    rng = random.Random(4)
    store = open_store(path)
    try:
        now = NOW
        for n in range(300):
            now += timedelta(hours=rng.choice([0, 1, 2, 6]))
            source = rng.choice(["A", "B", "C", "D"])
            sig = random_signature(rng) if rng.random() < 0.9 else None
            save(store, n, source, sig, now, teaser_only=rng.random() < 0.05)
            reader = rng.choice(["A", "B", "C", "D"])
            remembered = as_pairs(store.recent_signatures(reader, now - WEEK))
            fresh = open_store(path)
            try:
                assert remembered == as_pairs(fresh.recent_signatures(reader, now - WEEK))
            finally:
                fresh.close()
    finally:
        store.close()


def test_a_new_article_is_compared_with_them(store: Any) -> None:
    text = "The EU and Kazakhstan held their annual human rights dialogue in Astana. " * 6
    original = signature(text)
    rewritten = signature(text + " The next round is planned for the spring.")
    assert original is not None
    assert rewritten is not None
    rng = random.Random(5)
    save(store, 1, "Other", random_signature(rng), NOW)
    first = save(store, 2, "Other", original, NOW)
    found = store.recent_signatures("Mine", NOW - WEEK)
    assert most_similar(rewritten, found) == first
    assert most_similar(rewritten, from_rows([])) is None
