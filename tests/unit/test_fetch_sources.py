"""fetch/sources.py: polling sources and fetching articles from a real LocalSite serving
tests/data/fetch/."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.config import MonitorSettings, SourceConfig, SourceKind
from monitor.errors import FetchError, ParseError
from monitor.fetch import check_url, fetch_page, fetch_source, open_client
from monitor.fetch.http import HttpClient
from monitor.models import FetchResult, SourceState
from tests.servers import LocalSite, Request

DATA = Path(__file__).parent.parent / "data" / "fetch"


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


def source(
    web: LocalSite,
    path: str,
    kind: SourceKind = "auto",
    items: str | None = None,
    title: str | None = None,
) -> SourceConfig:
    url = web.url(path)
    return SourceConfig(name="Steppe News", url=url, kind=kind, items=items, title=title)


def remembered(result: FetchResult) -> SourceState:
    """What the store keeps of a poll for the next one."""
    return SourceState(
        etag=result.etag, last_modified=result.last_modified, body_hash=result.body_hash
    )


async def test_feed_source_yields_items_with_links_on_the_feeds_site(
    web: LocalSite, client: HttpClient
) -> None:
    result = await fetch_source(client, source(web, "feeds/rss20.xml", "feed"), SourceState())
    assert (result.status, result.kind) == ("ok", "feed")
    assert [item.url for item in result.items] == [
        web.url("news/2021/05/astana-human-rights-forum.html"),
        "https://news.example.org/news/2021/05/election-law.html",
        web.url("feeds/news/water-policy.html"),
    ]
    body = (DATA / "feeds" / "rss20.xml").read_bytes()
    assert result.body_hash == hashlib.sha256(body).hexdigest()
    assert result.etag is not None


async def test_second_poll_sends_if_none_match_and_is_not_modified(
    web: LocalSite, client: HttpClient
) -> None:
    feed = source(web, "feeds/atom.xml", "feed")
    first = await fetch_source(client, feed, SourceState())
    second = await fetch_source(client, feed, remembered(first))
    assert second.status == "not_modified"
    assert second.items == ()
    assert (second.etag, second.body_hash) == (first.etag, first.body_hash)
    assert web.hits("feeds/atom.xml")[1].headers["If-None-Match"] == first.etag


async def test_same_body_behind_a_new_etag_is_not_modified(
    web: LocalSite, client: HttpClient
) -> None:
    body = (DATA / "feeds" / "rss10.xml").read_bytes()
    counter = itertools.count()

    def fresh_etag(request: Request) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/rdf+xml", "ETag": f'"v{next(counter)}"'}, body

    web.route("/rotating.rdf", handler=fresh_etag)
    feed = source(web, "rotating.rdf")
    first = await fetch_source(client, feed, SourceState())
    second = await fetch_source(client, feed, remembered(first))
    assert (first.status, len(first.items)) == ("ok", 2)
    assert second.status == "not_modified"
    assert (first.etag, second.etag) == ('"v0"', '"v1"')
    assert web.hits("rotating.rdf")[1].headers["If-None-Match"] == '"v0"'


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
async def test_http_error_names_the_source_its_url_and_the_status(
    web: LocalSite, client: HttpClient, status: int, reason: str
) -> None:
    web.route("/news_en", status=status)
    with pytest.raises(FetchError) as caught:
        await fetch_source(client, source(web, "news_en"), SourceState())
    assert (
        str(caught.value) == f'source "Steppe News" ({web.url("news_en")}): HTTP {status} {reason}'
    )


async def test_timeout_names_the_source(web: LocalSite, tmp_path: Path) -> None:
    web.route("/slow", delay=5)
    settings = MonitorSettings(
        state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path, timeout=0.5
    )
    async with open_client(settings) as client:
        with pytest.raises(FetchError) as caught:
            await fetch_source(client, source(web, "slow"), SourceState())
    assert str(caught.value).startswith(f'source "Steppe News" ({web.url("slow")}): timed out')


async def test_refused_by_robots_txt_names_the_source(web: LocalSite, client: HttpClient) -> None:
    web.route("/robots.txt", body=b"User-agent: *\nDisallow: /feeds/\n")
    with pytest.raises(FetchError) as caught:
        await fetch_source(client, source(web, "feeds/rss20.xml"), SourceState())
    url = web.url("feeds/rss20.xml")
    assert str(caught.value) == f'source "Steppe News" ({url}): refused by robots.txt'


@pytest.mark.parametrize("kind", ["feed", "auto"])
async def test_invalid_xml_served_as_a_feed_raises_parse_error(
    web: LocalSite, client: HttpClient, kind: SourceKind
) -> None:
    with pytest.raises(ParseError) as caught:
        await fetch_source(client, source(web, "feeds/broken.xml", kind), SourceState())
    url = web.url("feeds/broken.xml")
    assert str(caught.value).startswith(f'source "Steppe News" ({url}): not a readable feed')


async def test_auto_sniffs_a_feed_served_as_text_html(web: LocalSite, client: HttpClient) -> None:
    body = (DATA / "feeds" / "atom.xml").read_bytes()
    web.route("/news.html", body=body, headers={"Content-Type": "text/html; charset=utf-8"})
    result = await fetch_source(client, source(web, "news.html"), SourceState())
    assert result.kind == "feed"
    assert [item.url for item in result.items] == [
        web.url("ru/news/statement-42"),
        web.url("ru/news/elections-2021"),
    ]


async def test_auto_follows_the_feed_a_home_page_links(web: LocalSite, client: HttpClient) -> None:
    result = await fetch_source(client, source(web, "site/home.html"), SourceState())
    assert result.kind == "feed"
    assert len(result.items) == 3
    assert len(web.hits("feeds/rss20.xml")) == 1
    assert web.hits("comments/feed.xml") == []
    # The validators and hash are the home page's, the URL polled next time.
    assert result.body_hash == hashlib.sha256((DATA / "site/home.html").read_bytes()).hexdigest()


async def test_auto_reads_an_html_listing_as_a_page(web: LocalSite, client: HttpClient) -> None:
    result = await fetch_source(client, source(web, "pages/eu-delegation.html"), SourceState())
    assert result.kind == "page"
    assert len(result.items) == 10
    assert result.items[0].url == web.url(
        "delegations/kazakhstan/eu-and-kazakhstan-hold-annual-human-rights-dialogue_en"
    )


async def test_page_source_uses_its_selectors(web: LocalSite, client: HttpClient) -> None:
    releases = source(
        web, "pages/press-releases.html", "page", items="tr.release", title=".headline"
    )
    result = await fetch_source(client, releases, SourceState())
    assert [item.title for item in result.items] == [
        "Briefing by the Spokesperson",
        "Kazakhstan invites OSCE/ODIHR to observe the elections",
        "Visa-free regime extended",
    ]


async def test_page_with_nothing_found_raises_parse_error(
    web: LocalSite, client: HttpClient
) -> None:
    with pytest.raises(ParseError, match="no article links found"):
        await fetch_source(client, source(web, "site/home.html", "page"), SourceState())


async def test_sitemap_items_come_newest_first(web: LocalSite, client: HttpClient) -> None:
    result = await fetch_source(client, source(web, "site/sitemap.xml"), SourceState())
    assert result.kind == "sitemap"
    assert [(item.url.rsplit("/", 1)[1], item.title) for item in result.items] == [
        ("astana-human-rights-forum.html", ""),
        ("election-law.html", "Parliament passes amendments to the election law"),
        ("about.html", ""),
    ]
    published = result.items[1].published
    assert published is not None
    assert published.isoformat() == "2021-05-30T09:00:00+00:00"


async def test_sitemap_index_reads_its_newest_children(web: LocalSite, client: HttpClient) -> None:
    index = (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{web.url('old.xml')}</loc><lastmod>2020-12-31</lastmod></sitemap>"
        f"<sitemap><loc>{web.url('site/sitemap.xml')}</loc><lastmod>2021-06-01</lastmod></sitemap>"
        "</sitemapindex>"
    )
    old = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
        "<loc>https://news.example.org/2020/old.html</loc><lastmod>2020-12-30</lastmod></url></urlset>"
    )
    web.route("/index.xml", body=index.encode(), headers={"Content-Type": "application/xml"})
    web.route("/old.xml", body=old.encode(), headers={"Content-Type": "application/xml"})
    result = await fetch_source(client, source(web, "index.xml", "sitemap"), SourceState())
    assert [item.url.rsplit("/", 1)[1] for item in result.items] == [
        "astana-human-rights-forum.html",
        "election-law.html",
        "old.html",
        "about.html",
    ]
    assert web.hits("site/sitemap.xml")[0].path == "/site/sitemap.xml"


async def test_fetch_page_returns_the_article(web: LocalSite, client: HttpClient) -> None:
    page = await fetch_page(client, web.url("site/home.html"), source="Steppe News")
    assert page.content_type == "text/html"
    assert b"Steppe News Agency" in page.body


async def test_fetch_page_error_names_the_source_and_the_article(
    web: LocalSite, client: HttpClient
) -> None:
    url = web.url("news/missing.html")
    with pytest.raises(FetchError) as caught:
        await fetch_page(client, url, source="Steppe News")
    assert str(caught.value) == f'source "Steppe News": article {url}: HTTP 404 Not Found'


async def test_check_url_says_what_a_url_is(web: LocalSite, client: HttpClient) -> None:
    assert (await check_url(client, web.url("feeds/rss10.xml")))[0] == "feed"
    kind, items = await check_url(client, web.url("pages/eu-delegation.html"))
    assert (kind, len(items)) == ("page", 10)
