"""Dates, language and titles: what extract() reports about an article besides its text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.clean import extract
from monitor.clean.dates import dateline, parse_date
from monitor.clean.language import choose_language

ASTANA = timezone(timedelta(hours=5))
ENGLISH = (
    "The government approved a plan to modernise the railway between Almaty and Astana, "
    "with new signalling, electrified sections and faster passenger trains from next year."
)
RUSSIAN = (
    "Правительство одобрило план модернизации железной дороги между Алматы и Астаной: "
    "новая сигнализация, электрификация участков и скоростные поезда в будущем году."
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-14T11:30:00+05:00", datetime(2024, 5, 14, 11, 30, tzinfo=ASTANA)),
        ("2024-05-14 11:30:00 +05:00", datetime(2024, 5, 14, 11, 30, tzinfo=ASTANA)),
        ("2024-05-14T06:30:00Z", datetime(2024, 5, 14, 6, 30, tzinfo=UTC)),
        ("2024-05-14", datetime(2024, 5, 14, tzinfo=UTC)),
        ("2024-05-14T11:30:00", datetime(2024, 5, 14, 11, 30, tzinfo=UTC)),
        ("Tue, 14 May 2024 06:30:00 GMT", datetime(2024, 5, 14, 6, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        ("0001-01-01", None),
        ("2024-13-40", None),
    ],
)
def test_parse_date_keeps_the_zone_and_never_invents_one(
    value: str | None, expected: datetime | None
) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    if expected is not None:
        assert parsed is not None
        assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Brussels, 14 May 2024 - The Council adopted", datetime(2024, 5, 14, tzinfo=UTC)),
        ("Астана, 14 мая 2024 года. Совет принял", datetime(2024, 5, 14, tzinfo=UTC)),
        ("14.05.2024\nThe Council adopted", datetime(2024, 5, 14, tzinfo=UTC)),
        ("Statement\nBrussels, May 14, 2024", datetime(2024, 5, 14, tzinfo=UTC)),
        ("On 12 March 2023, the Council adopted", None),
        ("In 2024 the Council adopted", None),
        ("Brussels, 31 February 2024", None),
        ("One\nTwo\n14 May 2024", None),
    ],
)
def test_a_dateline_opens_the_text(text: str, expected: datetime | None) -> None:
    assert dateline(text) == expected


def test_a_page_dated_only_by_its_dateline_gets_that_day() -> None:
    html = (
        "<html><body><article><p>Brussels, 3 June 2024</p><p>The Council adopted new rules on "
        "the transit of goods through the Caspian ports and the railways of Central Asia.</p>"
        "</article><footer>© European Union, 2024</footer></body></html>"
    )
    assert extract(html).published == datetime(2024, 6, 3, tzinfo=UTC)


def test_the_footer_copyright_year_is_not_a_date() -> None:
    html = (
        "<html><body><article><p>The Council adopted new rules on the transit of goods "
        "through the Caspian ports and the railways of Central Asia.</p></article>"
        "<footer><p>Copyright © 2023 Council of the European Union</p></footer></body></html>"
    )
    assert extract(html).published is None


def test_a_time_element_gives_the_day_when_markup_has_nothing_better() -> None:
    html = (
        '<html><body><article><p class="date"><time datetime="2024-02-01">1 Feb</time></p>'
        "<p>The Council adopted new rules on the transit of goods through the Caspian ports "
        "and the railways of Central Asia.</p></article></body></html>"
    )
    assert extract(html).published == datetime(2024, 2, 1, tzinfo=UTC)


def test_the_declared_language_is_kept_when_the_script_agrees() -> None:
    assert choose_language("kk", RUSSIAN) == "kk"
    assert choose_language("de", ENGLISH) == "de"


def test_cyrillic_text_is_never_english_whatever_the_page_says() -> None:
    assert choose_language("en", RUSSIAN) == "ru"
    assert choose_language(None, RUSSIAN) == "ru"


def test_latin_text_is_never_russian_whatever_the_page_says() -> None:
    assert choose_language("ru", ENGLISH) == "en"
    assert choose_language(None, ENGLISH) == "en"


def test_mixed_text_follows_the_majority_script() -> None:
    mostly_russian = RUSSIAN + " EU, OSCE, Astana International Financial Centre."
    assert choose_language(None, mostly_russian) == "ru"


def test_no_text_has_no_language() -> None:
    assert choose_language("en", "") is None
    assert choose_language("en", "  \n ") is None


def test_short_english_is_not_taken_for_a_creole() -> None:
    # py3langid's full ranking puts Guianese Creole first for this one.
    assert choose_language(None, "The EU and Kazakhstan signed") == "en"


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("en-GB", ENGLISH, "en"),
        ("DE", ENGLISH, "de"),
        ("ru_RU", RUSSIAN, "ru"),
        ("kk-Cyrl-KZ", RUSSIAN, "kk"),
        ("und", RUSSIAN, "ru"),
        ("x-default", ENGLISH, "en"),
    ],
)
def test_the_pages_language_tag_is_cut_to_iso_639_1(lang: str, text: str, expected: str) -> None:
    html = f'<html lang="{lang}"><body><p>{text}</p></body></html>'
    assert extract(html).language == expected


def test_the_content_language_meta_is_read_when_html_has_no_lang() -> None:
    html = (
        '<html><head><meta http-equiv="Content-Language" content="kk"></head>'
        f"<body><p>{RUSSIAN}</p></body></html>"
    )
    assert extract(html).language == "kk"


@pytest.mark.parametrize(
    ("title", "site", "expected"),
    [
        ("Water deal signed | EEAS", "EEAS", "Water deal signed"),
        ("EEAS - Water deal signed", "EEAS", "Water deal signed"),
        ("Water deal signed \u2013 EU Delegation", "EU Delegation", "Water deal signed"),
        ("Water deal signed - a first for the region", "EEAS", None),
        ("Kazakhstan - EU: water deal signed", "EEAS", None),
    ],
)
def test_the_site_name_is_cut_from_the_title(title: str, site: str, expected: str | None) -> None:
    html = (
        f'<html><head><title>{title}</title><meta property="og:site_name" content="{site}">'
        f"</head><body><h1>x</h1><h1>y</h1><p>{ENGLISH}</p></body></html>"
    )
    assert extract(html, "https://www.example.org/a").title == (expected or title)


def test_the_host_name_counts_as_the_site_name() -> None:
    html = f"<html><head><title>Water deal signed | Consilium</title></head><body><p>{ENGLISH}</p>"
    article = extract(html, "https://www.consilium.europa.eu/en/press/")
    assert article.title == "Water deal signed"


@pytest.mark.parametrize(
    ("declared", "text", "expected"),
    [
        (None, "Astana hosts talks", "en"),
        (None, "Переговоры в Астане", "ru"),
        ("ru", "EU statement on elections", "en"),
        ("en", "Заявление ЕС о выборах", "ru"),
        (None, ENGLISH * 20, "en"),
        (None, RUSSIAN * 20, "ru"),
        ("ru", ENGLISH * 20, "en"),
        ("en", RUSSIAN * 20, "ru"),
        (None, "OSCE " + RUSSIAN, "ru"),
        (None, "ОБСЕ " + ENGLISH, "en"),
    ],
)
def test_english_and_russian_are_never_confused_short_or_long(
    declared: str | None, text: str, expected: str
) -> None:
    assert choose_language(declared, text) == expected


def test_a_russian_page_marked_lang_en_is_russian() -> None:
    paragraphs = "".join(f"<p>{RUSSIAN} {n}</p>" for n in range(6))
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>'
        '<meta http-equiv="content-language" content="en"/><title>Новости</title></head>'
        f"<body><article><h1>Модернизация железной дороги</h1>{paragraphs}</article></body></html>"
    )
    assert extract(html, "https://example.kz/ru/news/1").language == "ru"
