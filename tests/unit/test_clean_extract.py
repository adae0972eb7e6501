"""extract() on bad input, and clean(): what the pipeline stores for an item and its page."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import monitor.clean
from monitor.clean import clean, extract
from monitor.models import Item, Page

PAGES = Path(__file__).parent.parent / "data" / "pages"
REPO = Path(__file__).parent.parent.parent


def _page(name: str, url: str, content_type: str = "text/html", charset: str | None = None) -> Page:
    body = (PAGES / name).read_bytes()
    return Page(url=url, body=body, content_type=content_type, charset=charset)


# -- extract() never raises for a bad page ------------------------------------------------


@pytest.mark.parametrize("body", [b"", "", b"   \r\n\t  ", "\n\n"])
def test_empty_page_gives_no_text_and_says_so(body: str | bytes) -> None:
    article = extract(body, "https://example.org/a")
    assert (article.text, article.reason) == ("", "empty page")
    assert article.url == "https://example.org/a"


def test_random_bytes_are_not_html() -> None:
    junk = random.Random(20240514).randbytes(8192)
    article = extract(junk, "https://example.org/file")
    assert article.text == ""
    assert article.reason == "not HTML (binary data)"


def test_random_bytes_without_nul_are_not_html() -> None:
    junk = bytes(b for b in random.Random(7).randbytes(8192) if b)
    article = extract(junk)
    assert article.text == ""
    assert article.reason == "not HTML (binary data)"


def test_pdf_bytes_are_not_html() -> None:
    article = extract((PAGES / "press_release.pdf").read_bytes(), "https://example.org/r.pdf")
    assert (article.text, article.reason) == ("", "not HTML (PDF)")


def test_plain_text_is_not_html() -> None:
    article = extract(b"Elections were held on Sunday. Media freedom was limited.\n")
    assert (article.text, article.reason) == ("", "not HTML (no markup)")


def test_an_rss_feed_is_not_an_article_page() -> None:
    feed = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        b"<title>News</title><item><title>Elections</title><description>&lt;p&gt;Media "
        b"freedom&lt;/p&gt;</description></item></channel></rss>"
    )
    article = extract(feed)
    assert (article.text, article.reason) == ("", "not HTML (XML)")


def test_a_page_with_a_stray_nul_byte_still_gives_its_text() -> None:
    html = b"<html><body><p>Grain exports through the port of Aktau rose\x00 again.</p></body>"
    article = extract(html)
    assert article.text == "Grain exports through the port of Aktau rose again."


def test_a_page_with_only_a_head_has_no_main_text() -> None:
    article = extract("<html><head><title>Notice</title></head><body></body></html>")
    assert (article.text, article.reason) == ("", "no main text")
    assert article.title == "Notice"
    assert article.language is None


def test_very_deep_nesting_does_not_raise() -> None:
    html = "<html><body>" + "<div>" * 5000 + "<p>Deep.</p>" + "</div>" * 5000 + "</body></html>"
    article = extract(html)
    assert article.reason in {"", "no main text"}


def test_a_fragment_without_html_element_is_read() -> None:
    article = extract("<p>Wheat harvest in the north is expected to reach record levels.</p>")
    assert article.text == "Wheat harvest in the north is expected to reach record levels."


def test_a_utf16_page_with_byte_order_mark_is_decoded() -> None:
    html = "<html><body><p>Экспорт пшеницы через порт Актау вырос вдвое.</p></body></html>"
    article = extract(html.encode("utf-16"))
    assert article.text == "Экспорт пшеницы через порт Актау вырос вдвое."
    assert article.language == "ru"


def test_a_utf8_page_with_byte_order_mark_is_decoded() -> None:
    html = "<html><body><p>Экспорт пшеницы через порт Актау вырос вдвое.</p></body></html>"
    article = extract(html.encode("utf-8-sig"))
    assert article.text == "Экспорт пшеницы через порт Актау вырос вдвое."


def test_a_string_with_an_xml_declaration_is_read() -> None:
    html = (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        "<body><p>Rail freight between Khorgos and Duisburg doubled this year.</p></body></html>"
    )
    assert extract(html).text == "Rail freight between Khorgos and Duisburg doubled this year."


def test_the_entry_point_can_be_called_again_through_the_package() -> None:
    # DESIGN §8 callers write monitor.clean.extract(html); importing the implementation
    # module must not leave a module in the function's place.
    first = monitor.clean.extract("<html><body><p>One line of text.</p></body></html>")
    second = monitor.clean.extract("<html><body><p>One line of text.</p></body></html>")
    assert first.text == second.text == "One line of text."


def test_importing_clean_loads_no_heavy_library() -> None:
    code = (
        "import sys, monitor.clean\n"
        "heavy = {'trafilatura', 'lxml', 'py3langid', 'numpy', 'charset_normalizer'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


# -- charsets -------------------------------------------------------------------------------


def test_header_charset_decodes_bytes_that_declare_none() -> None:
    page = _page("short_koi8r_undeclared.html", "https://portal.example.kz/b/1", charset="koi8-r")
    article = clean(Item(url=page.url), page, source="Portal")
    assert article.text == "Выборы в Мажилис прошли спокойно"
    assert article.language == "ru"


def test_the_pages_own_charset_beats_a_wrong_header() -> None:
    page = _page("culture_ru_cp1251.html", "http://eu.example.kz/news/1024.html", charset="utf-8")
    article = clean(Item(url=page.url), page, source="EU")
    assert article.title == "Дни европейского кино открываются в Алматы"
    assert "кинотеатре «Арман»" in article.text


# -- clean(): the page's article, or the item's teaser ------------------------------------

ITEM = Item(
    url="https://www.eeas.europa.eu/delegations/kazakhstan/news-1_en?utm_source=rss#top",
    title="EU and Kazakhstan sign water agreement",
    teaser="The agreement covers irrigation canals in the Syr Darya basin.",
    published=datetime(2024, 5, 14, 6, 30, tzinfo=UTC),
)


def test_clean_keeps_the_teaser_when_the_page_could_not_be_fetched() -> None:
    article = clean(ITEM, None, source="EU Delegation", reason="HTTP 404")
    assert article.teaser_only is True
    assert article.reason == "HTTP 404"
    assert article.text == ITEM.teaser
    assert article.title == ITEM.title
    assert article.published == ITEM.published
    assert article.url == "https://www.eeas.europa.eu/delegations/kazakhstan/news-1_en"
    assert article.source == "EU Delegation"
    assert article.language == "en"


def test_clean_says_the_page_was_not_fetched_when_given_no_reason() -> None:
    article = clean(ITEM, None, source="EU Delegation")
    assert article.teaser_only is True
    assert article.reason == "page not fetched"


def test_clean_keeps_the_teaser_for_a_pdf() -> None:
    page = _page("press_release.pdf", "https://example.org/r.pdf", "application/pdf")
    article = clean(ITEM, page, source="EU Delegation")
    assert article.teaser_only is True
    assert article.reason == "not HTML (application/pdf)"
    assert article.text == ITEM.teaser


def test_clean_keeps_the_teaser_for_pdf_bytes_labelled_html() -> None:
    page = _page("press_release.pdf", "https://example.org/r", "text/html")
    article = clean(ITEM, page, source="EU Delegation")
    assert (article.teaser_only, article.reason) == (True, "not HTML (PDF)")


def test_clean_keeps_the_teaser_when_the_page_has_no_text() -> None:
    page = _page("frameset.html", "http://www.kazembassy.example.org/")
    article = clean(ITEM, page, source="Embassy")
    assert article.teaser_only is True
    assert article.reason == "no main text (frameset)"
    assert article.title == ITEM.title


def test_clean_returns_the_pages_article_with_its_source() -> None:
    url = "https://www.eeas.europa.eu/delegations/kazakhstan/node/311_en"
    page = _page("blog_death_penalty_en.html", url)
    article = clean(ITEM, page, source="EU Delegation")
    assert article.teaser_only is False
    assert article.reason == ""
    assert article.source == "EU Delegation"
    assert article.title == "Why abolition of the death penalty matters for Central Asia"
    assert article.published == datetime.fromisoformat("2024-06-10T09:00:00+02:00")
    assert article.text.startswith("Three years ago Kazakhstan removed the death penalty")


def test_clean_takes_title_and_date_from_the_item_when_the_page_has_none() -> None:
    url = "https://www.eeas.europa.eu/delegations/kazakhstan/notice-visa-centre_en"
    article = clean(ITEM, _page("untitled_note_en.html", url), source="EU Delegation")
    assert article.teaser_only is False
    assert article.text.startswith("The visa centre in Almaty will be closed on Friday")
    assert article.title == ITEM.title
    assert article.published == ITEM.published


def test_clean_accepts_xhtml() -> None:
    url = "https://www.eeas.europa.eu/delegations/kazakhstan/notice-visa-centre_en"
    page = _page("untitled_note_en.html", url, "application/xhtml+xml")
    assert clean(ITEM, page, source="EU").teaser_only is False


def test_a_wrapper_with_a_chrome_like_class_does_not_take_the_text_with_it() -> None:
    html = (
        '<html><body><div class="page-wrapper cookies-accepted"><div class="content">'
        "<p>Grain exports through the port of Aktau rose by a third in the first quarter, "
        "the port authority said on Monday.</p><p>Most of the wheat went to Iran and "
        "Azerbaijan.</p></div></div></body></html>"
    )
    article = extract(html)
    assert article.text == (
        "Grain exports through the port of Aktau rose by a third in the first quarter, "
        "the port authority said on Monday.\nMost of the wheat went to Iran and Azerbaijan."
    )
