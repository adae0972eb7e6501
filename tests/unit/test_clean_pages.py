"""extract() on the press pages in tests/data/pages/, each beside its *.expected.json.

The pages were written for this project after EU institutions' sites: menus, sidebars, tag
lines, "Related articles" boxes, press contacts, comment forms and cookie banners that name
the monitored topics around a body about something else, and bodies that do talk about the
topics. What matters most: no word of the chrome in the text, no paragraph of the body lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.clean.article import extract
from monitor.models import Article

PAGES = Path(__file__).parent.parent / "data" / "pages"
EXPECTED = sorted(PAGES.glob("*.expected.json"))


@dataclass(frozen=True)
class Case:
    name: str
    expected: dict[str, Any]
    article: Article


def _input_for(expected: Path) -> Path:
    stem = expected.name.removesuffix(".expected.json")
    exact = PAGES / stem
    if exact.exists():  # "press_release.pdf.expected.json" is beside "press_release.pdf"
        return exact
    return PAGES / f"{stem}.html"


@pytest.fixture(scope="module", params=EXPECTED, ids=lambda path: path.name.split(".")[0])
def case(request: pytest.FixtureRequest) -> Case:
    path: Path = request.param
    expected = json.loads(path.read_text(encoding="utf-8"))
    body = _input_for(path).read_bytes()
    article = extract(body, expected["url"], charset=expected["header_charset"])
    return Case(path.name, expected, article)


def test_there_is_a_page_beside_every_expectation() -> None:
    assert len(EXPECTED) >= 10
    for path in EXPECTED:
        assert _input_for(path).exists(), path


def test_text_keeps_the_body_sentences(case: Case) -> None:
    for sentence in case.expected.get("text_contains", []):
        assert sentence in case.article.text, f"{case.name}: lost {sentence!r}"


def test_text_has_no_word_of_the_chrome(case: Case) -> None:
    text = case.article.text.casefold()
    for phrase in case.expected.get("text_excludes", []):
        assert phrase.casefold() not in text, f"{case.name}: boilerplate {phrase!r} in text"


def test_text_ends_with_the_last_paragraph(case: Case) -> None:
    last = case.expected.get("last_paragraph")
    if last is None:  # no text, or no prose (the gallery)
        return
    assert case.article.text.split("\n")[-1] == last


def test_text_is_one_paragraph_per_line(case: Case) -> None:
    for line in case.article.text.split("\n") if case.article.text else []:
        assert line, f"{case.name}: blank line"
        assert line == line.strip(), f"{case.name}: untrimmed line {line!r}"
        assert "  " not in line, f"{case.name}: runs of spaces in {line!r}"


def test_text_does_not_repeat_the_title(case: Case) -> None:
    if case.article.title:
        assert not case.article.text.startswith(case.article.title)


def test_a_page_without_text_says_why(case: Case) -> None:
    reason = case.expected.get("reason")
    if reason is None:
        assert case.article.text, f"{case.name}: no text ({case.article.reason})"
        assert case.article.reason == ""
    else:
        assert case.article.text == ""
        assert case.article.reason == reason


def test_title_is_the_articles_own_without_the_site_name(case: Case) -> None:
    assert case.article.title == case.expected["title"]


def test_published_is_the_pages_date_in_its_own_zone(case: Case) -> None:
    expected = case.expected["published"]
    published = case.article.published
    if expected is None:
        assert published is None
        return
    assert published is not None
    assert published == datetime.fromisoformat(expected)
    assert published.utcoffset() == datetime.fromisoformat(expected).utcoffset()


def test_author(case: Case) -> None:
    assert case.article.author == case.expected["author"]


def test_language(case: Case) -> None:
    assert case.article.language == case.expected["language"]


def test_url_is_the_same_site_canonical_or_the_given_url_tidied(case: Case) -> None:
    assert case.article.url == case.expected["article_url"]
