"""SqliteStore: subscribers, digest cursors, alerts at most once, the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.models import Article, Item, Match, Subscriber

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
RIGHTS = Match(rule_id="rights", topic="Human rights", alert="immediate")
RIGHTS_DIGEST = Match(rule_id="rights-digest", topic="Human rights")
COURTS = Match(rule_id="courts", topic="Courts")
COURTS_ALERT = Match(rule_id="courts-alert", topic="Courts", alert="immediate")


def save(store: Any, url: str, matches: tuple[Match, ...], now: datetime) -> int:
    art = Article(url=url, title=url.rsplit("/", 1)[-1], text=f"text of {url}", source="Agency")
    article_id: int = store.save_article(
        "Agency", Item(url=url), art, list(matches), now
    ).article_id
    return article_id


def ids(entries: list[Any]) -> list[int]:
    return [entry.article_id for entry in entries]


def send(
    store: Any,
    sub: Subscriber,
    kind: str,
    article_ids: list[int],
    cursor: int,
    now: datetime,
    error: str | None = None,
) -> None:
    delivery = store.begin_delivery(
        sub, kind, f"<{kind}-{now.timestamp()}@x>", article_ids, cursor, now
    )
    store.finish_delivery(delivery, now, error)


# -- subscribers -----------------------------------------------------------------------------


def test_add_subscriber_normalises_the_address(store: Any) -> None:
    sub = store.add_subscriber("  Anna.K@Example.ORG \n", "daily", ("Courts",), NOW)
    assert sub.email == "Anna.K@example.org"
    assert store.subscribers() == [sub]


def test_adding_an_address_again_updates_it(store: Any) -> None:
    first = store.add_subscriber("anna@example.org", "daily", ("Courts",), NOW)
    again = store.add_subscriber("anna@EXAMPLE.org", "weekly", ("Human rights",), NOW)
    assert again.id == first.id
    assert store.subscribers() == [
        Subscriber(email="anna@example.org", digest="weekly", topics=("Human rights",), id=first.id)
    ]


def test_subscribers_by_digest_in_address_order(store: Any) -> None:
    store.add_subscriber("zoe@example.org", "daily", (), NOW)
    store.add_subscriber("bob@example.org", "daily", (), NOW)
    store.add_subscriber("eve@example.org", "weekly", (), NOW)
    assert [s.email for s in store.subscribers("daily")] == ["bob@example.org", "zoe@example.org"]
    assert len(store.subscribers()) == 3


def test_remove_subscriber(store: Any) -> None:
    store.add_subscriber("anna@example.org", "daily", (), NOW)
    assert store.remove_subscriber(" anna@Example.org") is True
    assert store.remove_subscriber("anna@example.org") is False
    assert store.subscribers() == []


# -- digests ---------------------------------------------------------------------------------


def test_first_digest_covers_the_last_seven_days(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW - timedelta(days=30))
    save(store, "https://news.example/old", (COURTS,), NOW - timedelta(days=8))
    recent = save(store, "https://news.example/recent", (COURTS,), NOW - timedelta(days=6))
    entries, cursor = store.digest_entries(sub, NOW)
    assert ids(entries) == [recent]
    assert cursor == 2  # the old match was considered, and is skipped for good


def test_digest_after_a_sent_one_has_nothing_new(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (COURTS, RIGHTS_DIGEST), NOW)
    entries, cursor = store.digest_entries(sub, NOW + timedelta(hours=1))
    assert ids(entries) == [a]  # one entry per article, however many matches
    assert entries[0].topics == ("Courts", "Human rights")
    send(store, sub, "digest", ids(entries), cursor, NOW + timedelta(hours=1))
    assert store.digest_entries(sub, NOW + timedelta(days=1)) == ([], cursor)
    b = save(store, "https://news.example/b", (COURTS,), NOW + timedelta(days=1))
    entries, _ = store.digest_entries(sub, NOW + timedelta(days=1))
    assert ids(entries) == [b]


def test_failed_digest_leaves_the_cursor(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (COURTS,), NOW)
    entries, cursor = store.digest_entries(sub, NOW)
    send(store, sub, "digest", ids(entries), cursor, NOW, error="550 mailbox unavailable")
    assert ids(store.digest_entries(sub, NOW)[0]) == [a]
    assert store.last_delivery() is None


def test_unfinished_digest_leaves_the_cursor_but_is_not_repeated(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (COURTS,), NOW)
    entries, cursor = store.digest_entries(sub, NOW)
    delivery = store.begin_delivery(sub, "digest", "<d@x>", ids(entries), cursor, NOW)
    # While it is 'sending' (in flight, or cut off by a kill), another digest must not put
    # its articles in a second message (#8: found by the kill -9 test)...
    assert store.digest_entries(sub, NOW)[0] == []
    # ...and once it has failed, the next digest covers them again (the cursor stayed).
    store.finish_delivery(delivery, NOW, "421 try later")
    assert ids(store.digest_entries(sub, NOW)[0]) == [a]


def test_digest_lists_only_the_subscribers_topics(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", ("Courts",), NOW)
    courts = save(store, "https://news.example/courts", (COURTS,), NOW)
    save(store, "https://news.example/rights", (RIGHTS,), NOW + timedelta(minutes=1))
    both = save(store, "https://news.example/both", (RIGHTS, COURTS), NOW + timedelta(minutes=2))
    entries, _ = store.digest_entries(sub, NOW + timedelta(hours=1))
    assert ids(entries) == [both, courts]  # newest found first
    assert entries[0].topics == ("Courts", "Human rights")  # all its topics are shown


def test_empty_topics_mean_every_topic(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (COURTS,), NOW)
    b = save(store, "https://news.example/b", (RIGHTS,), NOW + timedelta(minutes=1))
    assert ids(store.digest_entries(sub, NOW + timedelta(hours=1))[0]) == [b, a]


def test_digest_preview_for_an_unstored_subscriber(store: Any) -> None:
    a = save(store, "https://news.example/a", (COURTS,), NOW)
    preview = Subscriber(email="preview@example.org", digest="daily")
    entries, cursor = store.digest_entries(preview, NOW)
    assert ids(entries) == [a]
    assert cursor == 1


def test_sent_digest_is_the_last_delivery(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    send(store, sub, "digest", [], 0, NOW + timedelta(minutes=5))
    assert store.last_delivery() == (NOW + timedelta(minutes=5), "anna@example.org", "digest")


# -- alerts ----------------------------------------------------------------------------------


def test_alert_entries_are_immediate_matches_on_the_subscribers_topics(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", ("Courts",), NOW)
    save(store, "https://news.example/digest-only", (COURTS,), NOW)
    save(store, "https://news.example/other-topic", (RIGHTS,), NOW)
    alert = save(store, "https://news.example/alert", (COURTS_ALERT,), NOW)
    assert ids(store.alert_entries(sub)) == [alert]


def test_alerts_start_when_the_subscriber_subscribed(store: Any) -> None:
    save(store, "https://news.example/before", (RIGHTS,), NOW - timedelta(minutes=1))
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    after = save(store, "https://news.example/after", (RIGHTS,), NOW)
    assert ids(store.alert_entries(sub)) == [after]


def test_an_article_is_alerted_at_most_once(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (RIGHTS, COURTS_ALERT), NOW)
    assert ids(store.alert_entries(sub)) == [a]
    send(store, sub, "alert", [a], 0, NOW)
    assert store.alert_entries(sub) == []
    assert store.last_delivery() == (NOW, "anna@example.org", "alert")


def test_alert_begun_but_never_finished_is_not_repeated(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (RIGHTS,), NOW)
    store.begin_delivery(sub, "alert", "<alert@x>", [a], 0, NOW)  # then the process dies
    assert store.alert_entries(sub) == []
    other = store.add_subscriber("bob@example.org", "daily", (), NOW)
    assert ids(store.alert_entries(other)) == [a]  # alerted is per subscriber


def test_alerted_article_still_appears_in_the_digest(store: Any) -> None:
    sub = store.add_subscriber("anna@example.org", "daily", (), NOW)
    a = save(store, "https://news.example/a", (RIGHTS,), NOW)
    send(store, sub, "alert", [a], 0, NOW)
    assert ids(store.digest_entries(sub, NOW + timedelta(hours=1))[0]) == [a]


def test_alert_to_an_unknown_subscriber_is_a_bug(store: Any) -> None:
    with pytest.raises(LookupError):
        store.begin_delivery(
            Subscriber(email="x@example.org", digest="daily"), "alert", "<a@x>", [1], 0, NOW
        )


def test_confirmation_to_an_address_not_stored_is_recorded(store: Any) -> None:
    pending = Subscriber(email="new@example.org", digest="daily")
    send(store, pending, "confirm", [], 0, NOW)
    assert store.last_delivery() == (NOW, "new@example.org", "confirm")
