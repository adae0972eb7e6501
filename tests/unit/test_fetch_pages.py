"""fetch/pages.py and fetch/dates.py: listing pages from tests/data/fetch/pages/ → Items,
compared with the *.expected.json beside each page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import SourceConfig
from monitor.errors import ParseError
from monitor.fetch.dates import find_date
from monitor.fetch.pages import feed_links, parse_listing
from monitor.models import Item

PAGES = Path(__file__).parent.parent / "data" / "fetch" / "pages"
EU_URL = "https://www.eeas.example.eu/delegations/kazakhstan/news_en"
RU_URL = "https://vestnik.example.kz/ru/news"
MFA_URL = "https://mfa.example.kz/en/press"


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
    path = PAGES / (name.rsplit(".", 1)[0] + ".expected.json")
    data: list[dict[str, str | None]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def listing(name: str, source: SourceConfig) -> tuple[Item, ...]:
    return parse_listing((PAGES / name).read_bytes(), source.url, source)


def test_discovers_the_ten_articles_of_an_eu_delegation_listing() -> None:
    items = listing("eu-delegation.html", SourceConfig(name="EU Delegation", url=EU_URL))
    assert as_json(items) == expected("eu-delegation.html")
    assert len(items) == 10


def test_discovery_skips_navigation_footer_sidebar_pager_tags_and_cookie_links() -> None:
    urls = {item.url for item in listing("eu-delegation.html", SourceConfig(name="EU", url=EU_URL))}
    chrome = (
        "about-delegation_en",  # main navigation
        "contact_en",  # footer
        "eu-strategy-central-asia_en",  # sidebar
        "page=",  # pager
        "/tags/",  # tag lists inside each teaser
        "cookies-policy_en",  # cookie banner
        "delegations_en",  # breadcrumb
    )
    assert not [url for url in urls if any(part in url for part in chrome)]
    assert EU_URL not in urls
    assert "https://www.eeas.example.eu/" not in urls


def test_discovered_items_keep_dates_and_teasers() -> None:
    items = listing("eu-delegation.html", SourceConfig(name="EU", url=EU_URL))
    blog = next(item for item in items if "hrvp-blog" in item.url)
    assert blog.published == datetime(2021, 1, 15, 14, 10, tzinfo=UTC)
    assert blog.teaser.startswith("15/01/2021 - 14:10 \u2013 HR/VP Blog \u2013 The EU strategy")
    assert blog.title not in blog.teaser
    assert "Read more" not in blog.teaser


def test_discovers_a_russian_listing_with_russian_month_names() -> None:
    items = listing("ru-listing.html", SourceConfig(name="Vestnik", url=RU_URL))
    assert as_json(items) == expected("ru-listing.html")
    assert items[0].published == datetime(2021, 5, 31, 14, 30, tzinfo=UTC)


def test_listing_with_selectors_takes_exactly_what_they_select() -> None:
    source = SourceConfig(
        name="MFA",
        url=MFA_URL,
        items="tr.release",
        link="td.text a",
        title=".headline",
        date=".when",
    )
    assert as_json(listing("press-releases.html", source)) == expected("press-releases.html")


def test_selectors_default_link_and_title_to_the_first_link() -> None:
    items = listing(
        "press-releases.html", SourceConfig(name="MFA", url=MFA_URL, items="tr.release")
    )
    assert [item.title for item in items] == [
        "Briefing by the Spokesperson Weekly",
        "Kazakhstan invites OSCE/ODIHR to observe the elections",
        "Visa-free regime extended",
    ]


def test_invalid_selector_raises_parse_error_naming_the_key() -> None:
    source = SourceConfig(name="MFA", url=MFA_URL, items="tr.release[")
    with pytest.raises(ParseError, match=r'items = "tr.release\[" is not a valid CSS selector'):
        listing("press-releases.html", source)


def test_page_without_articles_gives_no_items() -> None:
    body = b"<html><body><nav><a href='/a/b/c'>A long navigation link here</a></nav></body></html>"
    assert parse_listing(body, "https://example.org/news", SourceConfig(name="x", url="x")) == ()


def test_feed_links_prefer_the_main_feed_over_comments() -> None:
    body = (PAGES.parent / "site" / "home.html").read_bytes()
    assert feed_links(body, "http://127.0.0.1:1/home.html") == (
        "http://127.0.0.1:1/feeds/rss20.xml",
        "http://127.0.0.1:1/comments/feed.xml",
    )


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("01/06/2021 - 08:32", datetime(2021, 6, 1, 8, 32, tzinfo=UTC)),
        ("Published 31 May 2021", datetime(2021, 5, 31, tzinfo=UTC)),
        ("31.05.2021", datetime(2021, 5, 31, tzinfo=UTC)),
        ("15/01/2021 \u2013 HR/VP Blog", datetime(2021, 1, 15, tzinfo=UTC)),
        ("31 мая 2021", datetime(2021, 5, 31, tzinfo=UTC)),
        ("14:05, 2 сентября 2020", datetime(2020, 9, 2, 14, 5, tzinfo=UTC)),
        ("May 31, 2021", datetime(2021, 5, 31, tzinfo=UTC)),
        ("2021-05-06T10:00:00+06:00", datetime(2021, 5, 6, 4, 0, tzinfo=UTC)),
        ("2021-05-06", datetime(2021, 5, 6, tzinfo=UTC)),  # ISO is never read day-first
        ("14:05, 02.09.2020", datetime(2020, 9, 2, 14, 5, tzinfo=UTC)),  # the time first
        ("1-2-2020 | 23:59:59", datetime(2020, 2, 1, 23, 59, 59, tzinfo=UTC)),
        ("05/13/2021", datetime(2021, 5, 13, tzinfo=UTC)),  # no 13th month: month first
    ],
)
def test_find_date_reads_the_formats_listing_pages_use(text: str, when: datetime) -> None:
    assert find_date(text) == when


@pytest.mark.parametrize("text", ["Displaying 1 - 10 of 538", "31/02/2021", "Room 12 May"])
def test_find_date_ignores_what_is_not_a_date(text: str) -> None:
    assert find_date(text) is None


def test_discovery_skips_links_to_the_page_itself_home_anchors_and_non_http() -> None:
    body = b"""<html><body><ul class="latest">
      <li><a href="/news/2021/06/budget-hearings">Public hearings on the city budget</a></li>
      <li><a href="https://www.example.org/">Home page of the agency</a></li>
      <li><a href="/en/">Home page of the agency in English</a></li>
      <li><a href="/news">All the news of the agency</a></li>
      <li><a href="/news?page=2">Older news on the next page</a></li>
      <li><a href="#top">Back to the top of the page</a></li>
      <li><a href="mailto:desk@example.org">Write to the news desk</a></li>
      <li><a href="javascript:openSearch()">Search all the news</a></li>
      <li><a href="https://elsewhere.example.net/story">A story on another site entirely</a></li>
      <li><a href="/news/2021/06/air-quality#comments">Air quality report for May</a></li>
    </ul></body></html>"""
    items = parse_listing(body, "https://example.org/news", SourceConfig(name="x", url="x"))
    assert [item.url for item in items] == [
        "https://example.org/news/2021/06/budget-hearings",
        "https://example.org/news/2021/06/air-quality",
    ]


def test_discovery_prefers_the_heading_link_of_each_block() -> None:
    block = """<article><a href="/section/politics-and-society">Politics and society section</a>
      <h2><a href="/news/{n}">Story number {n} of the day</a></h2><p>Teaser {n}.</p></article>"""
    body = "<html><body><main>" + "".join(block.format(n=n) for n in range(3)) + "</main></body>"
    items = parse_listing(body.encode(), "https://example.org/", SourceConfig(name="x", url="x"))
    assert [(item.url, item.title, item.teaser) for item in items] == [
        (
            f"https://example.org/news/{n}",
            f"Story number {n} of the day",
            f"Politics and society section Teaser {n}.",  # the block's text minus the title
        )
        for n in range(3)
    ]
