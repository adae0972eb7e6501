"""notify.write_feeds and topic_slug: RSS and Atom files, parsed back with feedparser."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from monitor import notify
from monitor.models import DigestEntry

ARTICLE = (Path(__file__).parent.parent / "data" / "notify" / "article.txt").read_text("utf-8")
BASE = "https://monitor.example.org"
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
FOUND = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def entry(
    article_id: int,
    topics: tuple[str, ...],
    published: datetime | None = datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
) -> DigestEntry:
    start = ARTICLE.index("human rights")
    return DigestEntry(
        article_id=article_id,
        url=f"https://news.example.kz/2026/11/article-{article_id}.html",
        title=f"Report {article_id}: EU <dialogue> & Kazakhstan",
        source="Kursiv",
        published=published,
        found=FOUND,
        topics=topics,
        text=ARTICLE,
        spans=(("text", start, start + len("human rights")),),
    )


def timestamp(parsed: object) -> datetime:
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)  # type: ignore[arg-type]  # struct_time


@pytest.mark.parametrize(
    ("topic", "slug"),
    [
        ("Human rights", "human-rights"),
        ("Death penalty", "death-penalty"),
        ("Média — freedom!", "media-freedom"),
        ("Права человека", "права-человека"),
        ("  Elections / 2026 ", "elections-2026"),
        ("Свобода собраний: Алматы", "свобода-собраний-алматы"),
        ("Войны", "войны"),  # й is a letter of its own, not an accented и
        ("!!!", "topic"),
    ],
)
def test_topic_slug(topic: str, slug: str) -> None:
    assert notify.topic_slug(topic) == slug


def test_feeds_are_written_for_all_topics_and_each_topic(tmp_path: Path) -> None:
    both = entry(1, ("Elections", "Human rights"))
    feeds: dict[str | None, list[DigestEntry]] = {
        None: [both, entry(2, ("Elections",))],
        "Human rights": [both],
    }

    paths = notify.write_feeds(feeds, tmp_path / "feeds", BASE, NOW)

    names = sorted(path.name for path in paths)
    assert names == ["all.atom", "all.xml", "human-rights.atom", "human-rights.xml"]
    assert all(path.is_file() for path in paths)


def test_rss_feed_reads_back_with_links_guids_categories_and_dates(tmp_path: Path) -> None:
    item = entry(1, ("Elections", "Human rights"))
    notify.write_feeds({"Human rights": [item]}, tmp_path, BASE, NOW)

    raw = (tmp_path / "human-rights.xml").read_bytes()
    # Unsanitised: feedparser's sanitizer drops <mark>, which is ours to check.
    feed = feedparser.parse(raw, sanitize_html=False)

    assert feed.bozo == 0
    assert feed.version == "rss20"
    assert feed.feed.title == "Press Monitor: Human rights"
    assert feed.feed.link == BASE
    assert {link.href for link in feed.feed.links if link.rel == "self"} == {
        f"{BASE}/feeds/human-rights.xml"
    }
    assert timestamp(feed.feed.updated_parsed) == NOW
    [parsed] = feed.entries
    assert parsed.link == item.url
    assert parsed.id == item.url
    assert b'<guid isPermaLink="true">' + item.url.encode() + b"</guid>" in raw
    assert parsed.title == item.title
    assert [tag.term for tag in parsed.tags] == ["Elections", "Human rights"]
    assert timestamp(parsed.published_parsed) == item.published
    assert "<mark>human rights</mark>" in parsed.summary


def test_atom_feed_reads_back_with_ids_categories_and_dates(tmp_path: Path) -> None:
    item = entry(1, ("Elections", "Human rights"))
    notify.write_feeds({None: [item]}, tmp_path, BASE, NOW)

    feed = feedparser.parse((tmp_path / "all.atom").read_bytes(), sanitize_html=False)

    assert feed.bozo == 0
    assert feed.version == "atom10"
    assert feed.feed.title == "Press Monitor: all topics"
    assert {link.href for link in feed.feed.links if link.rel == "self"} == {
        f"{BASE}/feeds/all.atom"
    }
    [parsed] = feed.entries
    assert parsed.link == item.url
    assert parsed.id == item.url
    assert [tag.term for tag in parsed.tags] == ["Elections", "Human rights"]
    assert timestamp(parsed.published_parsed) == item.published
    assert timestamp(parsed.updated_parsed) == item.published
    assert "<mark>human rights</mark>" in parsed.summary


def test_item_without_a_published_date_is_dated_when_found(tmp_path: Path) -> None:
    notify.write_feeds({None: [entry(1, ("Elections",), published=None)]}, tmp_path, BASE, NOW)

    rss = feedparser.parse((tmp_path / "all.xml").read_bytes())
    atom = feedparser.parse((tmp_path / "all.atom").read_bytes())

    assert timestamp(rss.entries[0].published_parsed) == FOUND
    assert timestamp(atom.entries[0].updated_parsed) == FOUND


def test_a_feed_holds_at_most_100_items_newest_given_first(tmp_path: Path) -> None:
    many = [entry(i, ("Elections",), published=NOW - timedelta(hours=i)) for i in range(1, 131)]

    notify.write_feeds({None: many}, tmp_path, BASE, NOW)

    feed = feedparser.parse((tmp_path / "all.xml").read_bytes())
    assert len(feed.entries) == 100
    assert feed.entries[0].link == many[0].url
    assert feed.entries[-1].link == many[99].url


def test_rewriting_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    notify.write_feeds({None: [entry(1, ("Elections",))]}, tmp_path, BASE, NOW)

    notify.write_feeds(
        {None: [entry(2, ("Elections",)), entry(1, ("Elections",))]}, tmp_path, BASE, NOW
    )

    assert sorted(path.name for path in tmp_path.iterdir()) == ["all.atom", "all.xml"]
    feed = feedparser.parse((tmp_path / "all.xml").read_bytes())
    assert [e.link for e in feed.entries] == [
        "https://news.example.kz/2026/11/article-2.html",
        "https://news.example.kz/2026/11/article-1.html",
    ]


def test_control_characters_in_a_title_do_not_break_the_feed(tmp_path: Path) -> None:
    broken = DigestEntry(
        article_id=9,
        url="https://news.example.kz/broken.html",
        title="Vote\x0b count\r\ndisputed\x00",
        source="Kursiv",
        published=None,
        found=FOUND,
        topics=("Elections",),
        text="The vote\x0c count was disputed.",
    )

    notify.write_feeds({None: [broken]}, tmp_path, BASE, NOW)

    feed = feedparser.parse((tmp_path / "all.xml").read_bytes())
    assert feed.bozo == 0
    assert feed.entries[0].title == "Vote count disputed"
