"""fetch/charset.py: the encoding order (header, BOM, the document's own word, detection), and
Cyrillic listing pages and feeds in windows-1251 and KOI8-R polled from a real LocalSite."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.config import MonitorSettings, SourceConfig, SourceKind
from monitor.fetch import fetch_source, open_client
from monitor.fetch.charset import detect
from monitor.fetch.http import HttpClient
from monitor.models import SourceState
from tests.servers import LocalSite

DATA = Path(__file__).parent.parent / "data" / "fetch" / "charset"
TITLES = (
    "Президент Казахстана провёл встречу с послом Европейского союза",
    "Делегация ЕС приветствует освобождение журналиста",
    "Выборы в мажилис: заявление пресс-секретаря",
)


@pytest.fixture
def web() -> Iterator[LocalSite]:
    with LocalSite(DATA) as site:
        yield site


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[HttpClient]:
    settings = MonitorSettings(
        state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path, timeout=2.0
    )
    async with open_client(settings) as http:
        yield http


def serve(web: LocalSite, name: str, content_type: str) -> str:
    web.route(name, body=(DATA / name).read_bytes(), headers={"Content-Type": content_type})
    return web.url(name)


async def poll(client: HttpClient, url: str, kind: SourceKind = "auto") -> list[str]:
    result = await fetch_source(
        client, SourceConfig(name="Посольство", url=url, kind=kind), SourceState()
    )
    return [item.title for item in result.items]


def test_header_charset_comes_first() -> None:
    body = "<meta charset='koi8-r'>Новости".encode("cp1251")
    assert detect(body, "windows-1251") == "cp1251"


def test_a_byte_order_mark_beats_the_document_declaration() -> None:
    assert detect(codecs.BOM_UTF8 + b"<meta charset='koi8-r'>") == "utf-8"


def test_the_documents_own_declaration_beats_detection() -> None:
    assert detect("<meta charset=koi8-r>Новости".encode("cp1251")) == "koi8-r"
    assert detect(b'<?xml version="1.0" encoding="windows-1251"?><rss/>') == "cp1251"


def test_an_unknown_header_charset_falls_through_to_the_document() -> None:
    assert detect(b"<meta charset=koi8-r>", "x-no-such-charset") == "koi8-r"


def test_undeclared_bytes_are_detected() -> None:
    text = "Наблюдатели отметили нарушения при подсчёте голосов на избирательных участках."
    assert detect(text.encode("cp1251")) == "cp1251"
    assert detect(text.encode("koi8_r")) == "koi8-r"
    assert detect(text.encode("utf-8")) == "utf-8"


@pytest.mark.parametrize(
    "name",
    ["listing-cp1251-undeclared.html", "listing-koi8r-undeclared.html", "listing-koi8r-meta.html"],
)
async def test_cyrillic_listing_pages_come_out_right(
    web: LocalSite, client: HttpClient, name: str
) -> None:
    url = serve(web, name, "text/html")
    assert await poll(client, url, "page") == list(TITLES)


async def test_header_charset_wins_over_detection_on_a_listing(
    web: LocalSite, client: HttpClient
) -> None:
    url = serve(web, "listing-koi8r-undeclared.html", "text/html; charset=KOI8-R")
    assert await poll(client, url, "page") == list(TITLES)


@pytest.mark.parametrize("name", ["rss-cp1251-declared.xml", "rss-koi8r-undeclared.xml"])
async def test_cyrillic_feeds_come_out_right(web: LocalSite, client: HttpClient, name: str) -> None:
    url = serve(web, name, "application/rss+xml")
    assert await poll(client, url) == [
        "Президент Казахстана провёл встречу с послом",
        "Выборы в мажилис: заявление пресс-секретаря",
    ]
