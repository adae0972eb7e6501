"""fetch/feeds.py: feed bytes from tests/data/fetch/feeds/ → Items, compared with the
*.expected.json beside each input."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.fetch.feeds import parse_feed
from monitor.models import Item

FEEDS = Path(__file__).parent.parent / "data" / "fetch" / "feeds"


def as_json(items: tuple[Item, ...]) -> list[dict[str, str | None]]:
    return [
        {
            "url": item.url,
            "title": item.title,
            "teaser": item.teaser,
            "published": item.published.isoformat() if item.published else None,
            "guid": item.guid,
        }
        for item in items
    ]


def expected(name: str) -> list[dict[str, str | None]]:
    path = FEEDS / (name.rsplit(".", 1)[0] + ".expected.json")
    data: list[dict[str, str | None]] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("rss20.xml", "https://news.example.org/feeds/rss20.xml"),
        ("rss10.xml", "https://ombudsman.example.kz/feed.rdf"),
        ("atom.xml", "https://hr-bureau.example.org/feed.atom"),
        ("jsonfeed.json", "https://civic.example.org/feed.json"),
    ],
)
def test_feed_parses_to_expected_items(name: str, url: str) -> None:
    items = parse_feed((FEEDS / name).read_bytes(), url)
    assert as_json(items) == expected(name)


def test_relative_links_resolve_against_the_feed_url() -> None:
    items = parse_feed((FEEDS / "rss20.xml").read_bytes(), "http://127.0.0.1:8123/x/feed.xml")
    assert items[0].url == "http://127.0.0.1:8123/news/2021/05/astana-human-rights-forum.html"
    assert items[2].url == "http://127.0.0.1:8123/x/news/water-policy.html"


def test_html_in_titles_and_summaries_becomes_plain_text() -> None:
    item = parse_feed((FEEDS / "rss20.xml").read_bytes(), "https://news.example.org/rss")[0]
    assert item.title == "Astana hosts regional human rights forum"
    assert item.teaser == "Delegates from five countries met in Astana on Monday."


def test_published_is_aware_utc() -> None:
    items = parse_feed((FEEDS / "atom.xml").read_bytes(), "https://hr-bureau.example.org/")
    published = items[0].published
    assert published is not None
    assert published.utcoffset() is not None
    assert published.isoformat() == "2021-06-02T07:45:00+00:00"  # 13:45 at +06:00


def test_entries_without_http_links_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = parse_feed((FEEDS / "rss20.xml").read_bytes(), "https://news.example.org/rss")
    assert all(not item.url.startswith("mailto:") for item in items)
    dropped = [r for r in caplog.records if r.getMessage() == "feed.entry_dropped"]
    assert [r.__dict__["fields"]["link"] for r in dropped] == ["mailto:editors@news.example.org"]
    assert dropped[0].levelno == logging.INFO


def test_guid_falls_back_to_the_link() -> None:
    items = parse_feed((FEEDS / "rss20.xml").read_bytes(), "https://news.example.org/rss")
    assert items[0].guid == "sna-2021-0531-001"
    assert items[1].guid == items[1].url


def test_invalid_xml_raises_parse_error_naming_the_url() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed((FEEDS / "broken.xml").read_bytes(), "https://news.example.org/broken.xml")
    message = str(caught.value)
    assert message.startswith("https://news.example.org/broken.xml: not a readable feed")
    assert caught.value.__cause__ is not None


def test_html_page_is_not_a_feed() -> None:
    body = b"<!DOCTYPE html><html><body><p>Welcome</p></body></html>"
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, "https://news.example.org/", where='source "News" (https://n/)')


def test_empty_but_valid_feed_gives_no_items() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
    assert parse_feed(body, "https://news.example.org/rss") == ()


# -- fastfeedparser and feedparser: one result -------------------------------------------------

VARIANTS = FEEDS / "variants"
#: Every XML feed in the test data: the feeds above, the edge cases in variants/ (RSS 0.91 in
#: Latin-1, permalink guids, CDATA, content only, Atom 0.3, RDF, windows-1251, double escapes),
#: the charset cases and the sample sites'.
EVERY_FEED = sorted(
    [
        *FEEDS.glob("*.xml"),
        *VARIANTS.glob("*.xml"),
        *(FEEDS.parent / "charset").glob("*.xml"),
        *(FEEDS.parents[1] / "site" / "feeds").glob("*.xml"),
        *(FEEDS.parents[3] / "monitor" / "demo" / "site").glob("*/*.xml"),
    ]
)


@pytest.mark.parametrize("path", sorted(VARIANTS.glob("*.xml")), ids=lambda p: p.name)
def test_feed_variants_give_their_expected_items(path: Path) -> None:
    items = parse_feed(path.read_bytes(), "https://base.example/feeds/f.xml")
    assert as_json(items) == json.loads(path.with_suffix(".expected.json").read_text("utf-8"))


@pytest.mark.parametrize("path", EVERY_FEED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_fast_path_and_feedparser_read_every_feed_alike(path: Path) -> None:
    body = path.read_bytes()
    url = "https://base.example/feeds/f.xml"
    try:
        expected: object = parse_feed(body, url, engine="feedparser")
    except ParseError as exc:
        expected = str(exc)
    try:
        got: object = parse_feed(body, url)
    except ParseError as exc:
        got = str(exc)
    assert got == expected


def test_a_well_formed_feed_is_read_without_feedparser_and_a_broken_one_with_it() -> None:
    # What makes the comparison above mean something: the fast path is the one taken.
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from monitor.errors import ParseError\n"
        "from monitor.fetch.feeds import parse_feed\n"
        f"assert parse_feed(Path({str(FEEDS / 'rss20.xml')!r}).read_bytes(), 'https://a/f')\n"
        "print('feedparser' in sys.modules)\n"
        "try:\n"
        f"    parse_feed(Path({str(FEEDS / 'broken.xml')!r}).read_bytes(), 'https://a/f')\n"
        "except ParseError:\n"
        "    pass\n"
        "print('feedparser' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "True"]
