"""The cleaner's general methods against chrome, and the per-source overrides (#5)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.clean import clean, extract
from monitor.config import load
from monitor.errors import ConfigError
from monitor.models import Item, Page

PROSE = (
    "The ministry said on Tuesday that the new water agreement would cover the irrigation "
    "of some forty thousand hectares in the south of the country over the next five years."
)


def _paragraphs(prefix: str, count: int) -> str:
    return "".join(f"<p>{prefix} {index}. {PROSE}</p>" for index in range(count))


def test_a_body_split_by_ads_into_sibling_containers_is_read_whole() -> None:
    html = (
        "<html><body><h1>Water deal</h1>"
        f'<div class="article__body">{_paragraphs("First part", 3)}</div>'
        '<div class="ad-slot"><span>Advertisement</span></div>'
        f'<div class="article__body">{_paragraphs("Second part", 3)}</div>'
        "</body></html>"
    )
    text = extract(html, "https://example.org/news/1").text
    assert "First part 0." in text
    assert "Second part 2." in text


def test_other_stories_articles_beside_the_story_are_dropped() -> None:
    cards = "".join(
        f'<article class="card"><h3><a href="/news/{n}">Other story {n}</a></h3>'
        f"<p>Teaser of another story number {n}, about football.</p></article>"
        for n in range(4)
    )
    html = (
        f"<html><body><article><h1>Water deal</h1>{_paragraphs('Story', 4)}</article>"
        f"<section><h3>You may like</h3>{cards}</section></body></html>"
    )
    text = extract(html, "https://example.org/news/1").text
    assert "Story 3." in text
    assert "football" not in text


def test_a_body_printed_twice_is_kept_once() -> None:
    body = _paragraphs("Paragraph", 4)
    html = (
        f"<html><body><article><h1>Water deal</h1>{body}<div>{body}</div></article></body></html>"
    )
    text = extract(html, "https://example.org/news/1").text
    assert text.count("Paragraph 1.") == 1
    assert text.count("Paragraph 3.") == 1


def test_a_short_line_that_repeats_is_kept() -> None:
    recipe = "".join(
        f"<h3>Meal {n}</h3><p>{PROSE}</p><p>Portion: 1 cup, 1 tsp.</p>" for n in range(3)
    )
    text = extract(f"<html><body><article><h1>Plan</h1>{recipe}</article></body></html>").text
    assert text.count("Portion: 1 cup, 1 tsp.") == 3


def test_the_author_comes_from_the_pages_structured_data() -> None:
    html = (
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
        '"author": [{"@type": "Person", "name": "Aigerim Sadykova"}, {"name": "John Doe"}]}'
        f"</script></head><body><article><h1>Deal</h1>{_paragraphs('P', 3)}</article>"
        "</body></html>"
    )
    assert extract(html).author == "Aigerim Sadykova, John Doe"


def test_an_author_meta_that_is_a_url_is_not_an_author() -> None:
    html = (
        '<html><head><meta name="author" content="https://example.org/staff/7"></head>'
        f"<body><article><h1>Deal</h1>{_paragraphs('P', 3)}</article></body></html>"
    )
    assert extract(html).author is None


# -- per-source overrides -------------------------------------------------------------------


def _overridden_page() -> str:
    return (
        "<html><body><h1>Water deal</h1>"
        '<div class="story">'
        f"{_paragraphs('Body', 3)}"
        '<div class="press-box"><p>Press office: Human Rights and Democracy unit, '
        "call us for interviews about elections and sanctions any day of the week.</p></div>"
        "</div>"
        f'<div class="sidebar-list">{_paragraphs("Elsewhere", 6)}</div>'
        "</body></html>"
    )


def test_the_body_override_takes_only_its_container() -> None:
    text = extract(_overridden_page(), "https://example.org/n/1", body="div.story").text
    assert "Body 2." in text
    assert "Elsewhere" not in text


def test_the_drop_override_removes_its_blocks() -> None:
    text = extract(
        _overridden_page(), "https://example.org/n/1", body="div.story", drop=(".press-box",)
    ).text
    assert "Body 0." in text
    assert "Press office" not in text


def test_a_body_override_that_matches_nothing_leaves_the_generic_extraction() -> None:
    text = extract(_overridden_page(), "https://example.org/n/1", body="#gone").text
    assert "Body 1." in text


def test_clean_applies_the_sources_overrides() -> None:
    page = Page(url="https://example.org/n/1", body=_overridden_page().encode())
    item = Item(url="https://example.org/n/1", title="Water deal")
    article = clean(item, page, source="EU", body="div.story", drop=(".press-box",))
    assert "Body 1." in article.text
    assert "Press office" not in article.text
    assert "Elsewhere" not in article.text


def test_the_config_reads_body_and_drop(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(
        '[[source]]\nname = "EU"\nurl = "https://eu.example/"\n'
        'body = "div.story"\ndrop = [".press-box", "#comments"]\n',
        encoding="utf-8",
    )
    (source,) = load(path).sources
    assert source.body == "div.story"
    assert source.drop == (".press-box", "#comments")


def test_the_overrides_default_to_none(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[[source]]\nname = "EU"\nurl = "https://eu.example/"\n', encoding="utf-8")
    (source,) = load(path).sources
    assert (source.body, source.drop) == (None, ())


def test_the_config_names_a_bad_selector_and_where(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(
        '[[source]]\nname = "EU"\nurl = "https://eu.example/"\n'
        'body = "div..story"\ndrop = [".ok", "p[["]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert 'source[1] "EU": body: not a CSS selector: "div..story"' in message
    assert 'source[1] "EU": drop[1]: not a CSS selector: "p[["' in message


def test_the_config_wants_a_list_for_drop(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(
        '[[source]]\nname = "EU"\nurl = "https://eu.example/"\ndrop = ".promo"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"drop: expected a list of CSS selectors; got '\.promo'"):
        load(path)


# -- bad input: bounded, never an exception --------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_10_mb_page_is_cut_and_cleaned_in_bounded_time() -> None:
    scripts = "<script>var x = 1;</script>" * 100_000  # 2.7 MB of code before the text
    head = f"<html><head>{scripts}</head><body><article><h1>Deal</h1>{_paragraphs('Lead', 3)}"
    head += "</article>"
    filler = "<div><span>menu item</span></div>" * 300_000  # ~10 MB of chrome
    started = time.perf_counter()
    article = extract((head + filler + "</body></html>").encode(), "https://example.org/n/1")
    assert time.perf_counter() - started < 30  # shared CI cores; unbounded took minutes
    assert "Lead 2." in article.text


def test_a_meta_refresh_page_has_no_text_and_says_so() -> None:
    html = (
        '<html><head><meta http-equiv="refresh" content="0; url=https://example.org/n/2">'
        "</head><body></body></html>"
    )
    article = extract(html, "https://example.org/n/1")
    assert (article.text, article.reason) == ("", "no main text")


def test_broken_utf8_bytes_give_text_not_an_exception() -> None:
    body = f"<html><body><article><h1>Deal</h1>{_paragraphs('Text', 3)}</article></body></html>"
    broken = body.encode().replace(b"Text 1", b"Text \xff\xfe 1")
    assert "Text 2." in extract(broken).text
