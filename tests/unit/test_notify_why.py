""" "Why this alert" (#6): Match.why stored, read back per article, and shown as a short line
"Matched: …" in digest and alert e-mails (text and HTML) and in feed entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bs4 import BeautifulSoup

from monitor import notify
from monitor.config import Config
from monitor.models import Article, DigestEntry, Item, Match, Subscriber
from monitor.notify.feeds import entry_html
from tests.unit.test_notify_digest import (  # the same fixtures and helpers
    config,
    digest,
    entry,
    parts,
    reparse,
    templates,
)

__all__ = ["config", "templates"]  # fixtures, used by name

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def save(store: Any, url: str, *matches: Match) -> int:
    article = Article(url, "EU raises torture in Astana", "Torture cases were raised in Astana.")
    return int(store.save_article("EEAS", Item(url), article, list(matches), NOW).article_id)


def test_the_store_keeps_each_matchs_why_and_gives_it_back_per_article_once(store: Any) -> None:
    first = save(
        store,
        "https://example.org/1",
        Match("hr", "Human rights", why="torture AND Astana"),
        Match("hr-2", "Human rights", why="torture AND Astana"),
        Match("old", "Elections"),  # stored before #6, or the engine could not say
    )
    save(store, "https://example.org/2", Match("dp", "Death penalty", why='"death penalty"'))

    entries = {e.article_id: e for e in store.recent_entries(None, 10)}
    assert entries[first].why == ("torture AND Astana",)
    assert [e.why for e in store.recent_entries("Death penalty", 10)] == [('"death penalty"',)]


def test_digest_text_and_html_show_the_matched_line(templates: Any, config: Config) -> None:
    why = ("torture AND Astana", '"death penalty" AND <Kazakh*>')
    text, html = parts(digest(templates, config, [entry(1, "EU dialogue", ("HR",), why=why)]))

    assert 'Matched: torture AND Astana; "death penalty" AND <Kazakh*>' in text
    line = BeautifulSoup(html, "html.parser").select_one(".why")
    assert line is not None
    assert line.get_text() == 'Matched: torture AND Astana; "death penalty" AND <Kazakh*>'


def test_an_entry_without_why_shows_no_matched_line(templates: Any, config: Config) -> None:
    text, html = parts(digest(templates, config, [entry(1, "EU dialogue", ("HR",))]))
    assert "Matched:" not in text
    assert "Matched:" not in html


def test_alert_text_and_html_show_the_matched_line(templates: Any, config: Config) -> None:
    alert = notify.compose_alert(
        templates,
        config,
        Subscriber("desk@example.org", "daily"),
        [entry(1, "Death sentence", ("Death penalty",), why=('title:"death sentence"',))],
        NOW,
    )
    text, html = parts(reparse(alert))
    assert 'Matched: title:"death sentence"' in text
    line = BeautifulSoup(html, "html.parser").select_one(".why")
    assert line is not None
    assert line.get_text() == 'Matched: title:"death sentence"'


def test_a_feed_entry_says_what_matched_escaped() -> None:
    described = entry_html(
        DigestEntry(
            article_id=1,
            url="https://example.org/1",
            title="EU raises torture",
            source="EEAS",
            published=None,
            found=NOW,
            topics=("Human rights",),
            text="",
            why=("torture AND <Astana>",),
        )
    )
    assert "<p>Matched: torture AND &lt;Astana&gt;</p>" in described
