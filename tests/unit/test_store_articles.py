"""SqliteStore.save_article: one row per canonical URL, duplicates linked, matches kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.models import Article, Item, Match, Stored
from tests.pg import query

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TEXT = (
    "The court in Almaty sentenced the journalist to seven years in prison on Tuesday.\n"
    "Human rights groups called the trial a reprisal for her reporting on torture in "
    "pre-trial detention, and the EU Delegation asked for her release."
)
MATCH = Match(
    rule_id="human-rights-kz",
    topic="Human rights",
    terms=("Human rights", "torture"),
    spans=(("text", 82, 94), ("text", 150, 157), ("title", 0, 5)),
    alert="immediate",
)


def article(url: str, text: str = TEXT, source: str = "Agency", **kw: Any) -> Article:
    return Article(
        url=url, title=kw.pop("title", "Journalist sentenced"), text=text, source=source, **kw
    )


def save(
    store: Any,
    url: str,
    source: str = "Agency",
    matches: tuple[Match, ...] = (MATCH,),
    now: datetime = NOW,
    **kw: Any,
) -> Stored:
    stored: Stored = store.save_article(
        source, Item(url=url), article(url, source=source, **kw), list(matches), now
    )
    return stored


def count(store: Any, table: str) -> int:
    return int(query(store, f"SELECT count(*) FROM {table}")[0][0])


def test_new_article_is_stored_and_known_by_url(store: Any) -> None:
    stored = save(store, "https://news.example/a")
    assert stored == Stored(stored.article_id, new=True)
    assert store.known_article("https://news.example/a") == stored.article_id
    assert store.known_article("https://news.example/unknown") is None


def test_saving_the_same_url_twice_writes_one_row(store: Any) -> None:
    first = save(store, "https://news.example/a")
    again = save(store, "https://news.example/a", source="Other", text="Another text entirely.")
    assert again == Stored(first.article_id, new=False)
    assert count(store, "articles") == 1
    assert count(store, "matches") == 1


def test_saving_remembers_the_item(store: Any) -> None:
    item = Item(url="https://news.example/a", guid="feed-guid-1")
    store.save_article("Agency", item, article("https://news.example/a"), [MATCH], NOW)
    assert store.unseen_items("Agency", [item]) == []
    assert store.source_state("Agency").items_seen == 1


def test_stored_article_round_trips(store: Any) -> None:
    published = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
    save(
        store,
        "https://news.example/a",
        published=published,
        author="A. Writer",
        language="en",
        reason="",
    )
    [(_, got)] = list(store.articles_since(NOW - timedelta(days=1)))
    assert got == article(
        "https://news.example/a", published=published, author="A. Writer", language="en"
    )


def test_same_text_from_another_source_is_linked_not_stored_again(store: Any) -> None:
    original = save(store, "https://agency.example/a", source="Agency")
    copy = save(
        store,
        "https://paper.example/b",
        source="Paper",
        text=TEXT.upper().replace("\n", "  \n "),
        now=NOW + timedelta(hours=1),
    )
    assert copy.new is False
    assert copy.duplicate_of == original.article_id
    assert copy.article_id != original.article_id
    assert count(store, "matches") == 1  # the copy's matches are not recorded


def test_duplicate_shows_as_also_published_by_and_not_as_an_entry(store: Any) -> None:
    original = save(store, "https://agency.example/a", source="Agency")
    save(store, "https://paper.example/b", source="Paper")
    save(store, "https://agency.example/a-copy", source="Agency")  # own source: not listed
    [entry] = store.recent_entries()
    assert entry.article_id == original.article_id
    assert entry.also_published_by == ("Paper",)
    since = [i for i, _ in store.articles_since(NOW - timedelta(days=1))]
    assert since == [original.article_id]


def test_a_duplicate_of_a_duplicate_links_to_the_original(store: Any) -> None:
    original = save(store, "https://agency.example/a", source="Agency")
    save(store, "https://paper.example/b", source="Paper")
    third = save(store, "https://radio.example/c", source="Radio")
    assert third.duplicate_of == original.article_id
    assert store.recent_entries()[0].also_published_by == ("Paper", "Radio")


def test_the_duplicate_url_again_reports_its_original(store: Any) -> None:
    original = save(store, "https://agency.example/a", source="Agency")
    copy = save(store, "https://paper.example/b", source="Paper")
    again = save(store, "https://paper.example/b", source="Paper")
    assert again == Stored(copy.article_id, new=False, duplicate_of=original.article_id)


def test_short_texts_are_never_duplicates(store: Any) -> None:
    save(store, "https://agency.example/a", text="Photo: Reuters")
    second = save(store, "https://paper.example/b", source="Paper", text="Photo: Reuters")
    assert second == Stored(second.article_id, new=True)


def test_teaser_only_article_is_not_a_duplicate_target(store: Any) -> None:
    save(store, "https://agency.example/a", teaser_only=True, reason="HTTP 404")
    second = save(store, "https://paper.example/b", source="Paper")
    assert second == Stored(second.article_id, new=True)


def test_matches_keep_terms_and_spans(store: Any) -> None:
    other = Match(rule_id="courts", topic="Courts", terms=("court",), spans=(("text", 4, 9),))
    stored = save(store, "https://news.example/a", matches=(MATCH, other))
    [entry] = store.recent_entries()
    assert entry.article_id == stored.article_id
    assert entry.topics == ("Courts", "Human rights")
    assert entry.spans == (("text", 4, 9), ("text", 82, 94), ("text", 150, 157), ("title", 0, 5))
    assert entry.text == TEXT
    terms = query(store, "SELECT terms FROM matches WHERE rule_id = 'human-rights-kz'")
    assert terms == [('["Human rights", "torture"]',)]


def test_article_without_matches_is_not_an_entry(store: Any) -> None:
    save(store, "https://news.example/a", matches=())
    assert store.recent_entries() == []
    assert len(list(store.articles_since(NOW - timedelta(days=1)))) == 1


def test_recent_entries_filter_by_topic_newest_found_first(store: Any) -> None:
    courts = Match(rule_id="courts", topic="Courts")
    a = save(store, "https://news.example/a", text="a", matches=(MATCH,))
    b = save(
        store, "https://news.example/b", text="b", matches=(courts,), now=NOW + timedelta(hours=1)
    )
    c = save(
        store,
        "https://news.example/c",
        text="c",
        matches=(MATCH, courts),
        now=NOW + timedelta(hours=2),
    )
    assert [e.article_id for e in store.recent_entries()] == [
        c.article_id,
        b.article_id,
        a.article_id,
    ]
    assert [e.article_id for e in store.recent_entries("Human rights")] == [
        c.article_id,
        a.article_id,
    ]
    assert [e.article_id for e in store.recent_entries(limit=1)] == [c.article_id]
    assert store.topics() == ["Courts", "Human rights"]
    assert store.match_counts(NOW + timedelta(minutes=30)) == {"Courts": 2, "Human rights": 1}


def test_articles_since_is_newest_first_and_bounded(store: Any) -> None:
    for i in range(450):  # more than one internal batch
        save(
            store,
            f"https://news.example/{i}",
            text=f"text {i}",
            matches=(),
            now=NOW + timedelta(minutes=i),
        )
    ids = [a.url for _, a in store.articles_since(NOW + timedelta(minutes=10))]
    assert ids == [f"https://news.example/{i}" for i in range(449, 9, -1)]


def test_text_reposted_with_other_quotes_and_breaks_is_a_duplicate(store: Any) -> None:
    quoted = TEXT.replace("Human rights groups", "“Human rights” groups,")
    original = save(store, "https://agency.example/a", text=TEXT.replace("groups", '"groups"'))
    copy = save(
        store, "https://paper.example/b", source="Paper", text=quoted.replace(" ", "\u00a0 \n")
    )
    assert copy.duplicate_of == original.article_id
