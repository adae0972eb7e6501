"""SqliteStore.add_matches (`rules test --backfill`, #6): new matches filed for the digest,
never twice, never on an article already on the topic, never on a duplicate row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.models import Article, Item, Match

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
TEXT = "Rail freight through Kazakhstan grew again this year, customs officials said. " * 4


def save(store: Any, url: str, *matches: Match, text: str = TEXT) -> int:
    article = Article(url, "Rail freight", text, source="EEAS")
    return int(store.save_article("EEAS", Item(url), article, list(matches), NOW).article_id)


def test_backfilled_matches_are_stored_once_and_filed_for_the_digest(store: Any) -> None:
    plain = save(store, "https://example.org/1")
    freight = Match("freight", "Logistics", ("freight",), (("text", 5, 12),), "immediate", "x")

    assert store.add_matches([(plain, freight)], LATER) == [(plain, freight)]
    assert store.add_matches([(plain, freight)], LATER) == []  # the second run adds nothing

    [entry] = store.recent_entries("Logistics", 10)
    assert entry.article_id == plain
    assert entry.why == ("x",)
    subscriber = store.add_subscriber("desk@example.org", "daily", (), NOW - timedelta(days=1))
    assert store.alert_entries(subscriber) == []  # filed as "digest": never alerted
    entries, _ = store.digest_entries(subscriber, LATER)
    assert [e.article_id for e in entries] == [plain]


def test_an_article_already_on_the_topic_or_a_duplicate_gets_no_backfilled_match(
    store: Any,
) -> None:
    on_topic = save(store, "https://example.org/1", Match("old-rule", "Logistics"))
    copy = save(store, "https://example.org/2")  # the same text: stored as a duplicate row
    other = save(store, "https://example.org/3", text="Something else entirely. " * 12)
    freight = Match("freight", "Logistics")

    added = store.add_matches([(on_topic, freight), (copy, freight), (other, freight)], LATER)

    assert added == [(other, freight)]
    assert [e.article_id for e in store.recent_entries("Logistics", 10)] == [other, on_topic]
