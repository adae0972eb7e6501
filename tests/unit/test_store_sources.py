"""SqliteStore: what it remembers about sources and their items between polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.models import FetchResult, Item, SourceState

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


def test_never_polled_source_has_default_state(store: Any) -> None:
    assert store.source_state("Nobody") == SourceState()


def test_successful_poll_stores_validators_and_resets_failures(store: Any) -> None:
    store.record_poll("Agency", NOW, None, "HTTP 503 Service Unavailable")
    fetched = FetchResult(status="ok", etag='"abc"', last_modified="Tue, 24 Nov", body_hash="h1")
    store.record_poll("Agency", LATER, fetched, None)
    state = store.source_state("Agency")
    assert (state.etag, state.last_modified, state.body_hash) == ('"abc"', "Tue, 24 Nov", "h1")
    assert state.failures == 0
    assert state.last_success == LATER
    assert state.last_poll == LATER
    assert state.last_success.tzinfo is not None


def test_failed_polls_count_in_a_row_and_keep_validators(store: Any) -> None:
    store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"abc"'), None)
    store.record_poll("Agency", LATER, None, "timeout")
    store.record_poll("Agency", LATER + timedelta(hours=1), None, "HTTP 500")
    state = store.source_state("Agency")
    assert state.failures == 2
    assert state.last_error == "HTTP 500"
    assert state.etag == '"abc"'
    assert state.last_success == NOW
    assert state.last_poll == LATER + timedelta(hours=1)


def test_not_modified_keeps_stored_validators(store: Any) -> None:
    store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"abc"', body_hash="h"), None)
    store.record_poll("Agency", LATER, FetchResult(status="not_modified"), None)
    state = store.source_state("Agency")
    assert (state.etag, state.body_hash) == ('"abc"', "h")
    assert state.last_success == LATER


def test_ok_poll_without_validators_forgets_old_ones(store: Any) -> None:
    store.record_poll("Agency", NOW, FetchResult(status="ok", etag='"abc"'), None)
    store.record_poll("Agency", LATER, FetchResult(status="ok"), None)
    assert store.source_state("Agency").etag is None


def test_sources_health_lists_every_polled_source_by_name(store: Any) -> None:
    store.record_poll("Zeta", NOW, FetchResult(status="ok"), None)
    store.record_poll("Alpha", NOW, None, "refused by robots.txt")
    health = store.sources_health()
    assert list(health) == ["Alpha", "Zeta"]
    assert health["Alpha"].failures == 1


def test_remembered_items_are_no_longer_unseen(store: Any) -> None:
    a = Item(url="https://news.example/a", guid="guid-a")
    b = Item(url="https://news.example/b")
    c = Item(url="https://news.example/c")
    assert store.unseen_items("Agency", [a, b, c]) == [a, b, c]
    store.remember_items("Agency", [a, b], "old", NOW)
    assert store.unseen_items("Agency", [c, b, a]) == [c]


def test_items_are_keyed_by_guid_before_url(store: Any) -> None:
    store.remember_items("Agency", [Item(url="https://news.example/a", guid="g1")], "old", NOW)
    moved = Item(url="https://news.example/a-renamed", guid="g1")
    other = Item(url="https://news.example/a", guid="g2")
    assert store.unseen_items("Agency", [moved, other]) == [other]


def test_items_are_remembered_per_source(store: Any) -> None:
    item = Item(url="https://news.example/a")
    store.remember_items("Agency", [item], "old", NOW)
    assert store.unseen_items("Other agency", [item]) == [item]


def test_an_item_listed_twice_is_unseen_once(store: Any) -> None:
    item = Item(url="https://news.example/a")
    assert store.unseen_items("Agency", [item, item]) == [item]


def test_items_seen_counts_each_item_once(store: Any) -> None:
    a, b = Item(url="https://news.example/a"), Item(url="https://news.example/b")
    store.remember_items("Agency", [a], "old", NOW)
    store.remember_items("Agency", [a, b], "known", LATER)
    assert store.source_state("Agency").items_seen == 2


def test_many_items_are_checked_in_one_go(store: Any) -> None:
    items = [Item(url=f"https://news.example/{i}") for i in range(5000)]
    store.remember_items("Agency", items[::2], "old", NOW)
    assert store.unseen_items("Agency", items) == items[1::2]
