"""notify.snippet: a few lines around the matched terms, highlighted, cut at words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.models import DigestEntry
from monitor.notify.snippet import TEASER_NOTE, make_snippet

ARTICLE = (Path(__file__).parent.parent / "data" / "notify" / "article.txt").read_text("utf-8")


def entry(text: str, spans: tuple[tuple[str, int, int], ...], **kwargs: object) -> DigestEntry:
    return DigestEntry(
        article_id=1,
        url="https://news.example.kz/a.html",
        title=str(kwargs.pop("title", "EU and Kazakhstan hold human rights dialogue")),
        source="Kursiv",
        published=None,
        found=datetime(2026, 11, 24, tzinfo=UTC),
        topics=("Human rights",),
        text=text,
        spans=spans,
        **kwargs,  # type: ignore[arg-type]  # test factory
    )


def span(text: str, word: str, field: str = "text") -> tuple[str, int, int]:
    start = text.index(word)
    return (field, start, start + len(word))


def test_snippet_is_about_280_characters_around_the_first_match() -> None:
    snippet = make_snippet(entry(ARTICLE, (span(ARTICLE, "human rights"),)))

    text = snippet.text
    assert 200 <= len(text) <= 300
    assert "human rights" in text
    # The article's opening is far before the match: the snippet starts later, with "…".
    assert text.startswith("…")
    assert "ASTANA" not in text


def test_snippet_is_cut_at_word_boundaries() -> None:
    snippet = make_snippet(entry(ARTICLE, (span(ARTICLE, "human rights"),)))

    body = snippet.text.strip("…")
    words = set(ARTICLE.replace("\n", " ").split(" "))
    first, *_, last = body.split(" ")
    assert first in words
    assert last in words


def test_snippet_goes_to_the_densest_run_of_terms() -> None:
    lone = "Almaty"  # first mentioned in a paragraph of its own
    text = ARTICLE
    spans = (
        span(text, "Caspian Sea"),
        span(text, "journalists"),
        span(text, "observers"),
        span(text, "elections"),
        span(text, "peaceful assemblies"),
    )

    snippet = make_snippet(entry(text, spans))

    highlighted = [segment for segment, hit in snippet.pieces if hit]
    assert highlighted == ["journalists", "observers", "elections", "peaceful assemblies"]
    assert lone in snippet.text


def test_highlights_are_marked_in_html_and_plain_in_text() -> None:
    text = "Lawyers said <b>human rights</b> & due process were ignored."
    snippet = make_snippet(entry(text, (span(text, "human rights"), span(text, "due process"))))

    assert snippet.text == text
    assert snippet.html == (
        "Lawyers said &lt;b&gt;<mark>human rights</mark>&lt;/b&gt; &amp; "
        "<mark>due process</mark> were ignored."
    )
    assert snippet.marked() == "Lawyers said <b>*human rights*</b> & *due process* were ignored."


def test_markup_in_a_highlight_is_escaped_inside_the_mark() -> None:
    text = "The hashtag <#justice> trended."
    snippet = make_snippet(entry(text, (span(text, "<#justice>"),)))

    assert "<mark>&lt;#justice&gt;</mark>" in snippet.html


def test_title_spans_are_used_only_when_the_text_has_none() -> None:
    title = "Journalists detained in Almaty"
    snippet = make_snippet(entry(ARTICLE, (span(title, "Almaty", "title"),), title=title))

    assert [segment for segment, hit in snippet.pieces if hit] == ["Almaty"]


def test_text_without_any_match_gives_its_opening_without_highlights() -> None:
    snippet = make_snippet(entry(ARTICLE, ()))

    assert snippet.text.startswith("ASTANA, 23 November.")
    assert snippet.text.endswith("…")
    assert not any(hit for _, hit in snippet.pieces)


def test_short_text_is_shown_whole_without_ellipsis() -> None:
    text = "Short teaser on human rights."
    snippet = make_snippet(entry(text, (span(text, "human rights"),)))

    assert snippet.text == text
    assert "…" not in snippet.text


def test_line_breaks_in_the_text_become_spaces() -> None:
    snippet = make_snippet(entry(ARTICLE, (span(ARTICLE, "human rights"),)))

    assert "\n" not in snippet.text
    assert "  " not in snippet.text


def test_teaser_only_snippet_carries_the_note() -> None:
    text = "Short teaser on human rights."
    teaser = make_snippet(entry(text, (span(text, "human rights"),), teaser_only=True))
    full = make_snippet(entry(text, (span(text, "human rights"),)))

    assert teaser.teaser_only
    assert teaser.note == TEASER_NOTE
    assert not full.teaser_only
    assert full.note == ""


def test_spans_out_of_range_are_ignored() -> None:
    text = "Short teaser on human rights."
    snippet = make_snippet(entry(text, (("text", 500, 510), span(text, "human rights"))))

    assert [segment for segment, hit in snippet.pieces if hit] == ["human rights"]
