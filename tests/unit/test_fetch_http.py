"""fetch/http.py: the one HTTP client, on the wire of a real LocalSite on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.config import MonitorSettings
from monitor.errors import FetchError
from monitor.fetch import open_client
from monitor.fetch.http import HttpClient
from tests.servers import LocalSite, Request

DATA = Path(__file__).parent.parent / "data" / "fetch"
WHERE = 'source "Steppe News" (https://news.example.org/)'


def settings_for(tmp_path: Path, timeout: float = 2.0) -> MonitorSettings:
    return MonitorSettings(
        state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path, timeout=timeout
    )


@pytest.fixture
def web() -> Iterator[LocalSite]:
    with LocalSite(DATA) as site:
        yield site


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[HttpClient]:
    async with open_client(settings_for(tmp_path)) as http:
        yield http


async def test_user_agent_is_sent_on_the_wire(web: LocalSite, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with open_client(settings) as client:
        await client.get(web.url("feeds/rss20.xml"), where=WHERE)
    assert web.hits("feeds/rss20.xml")[0].headers["User-Agent"] == settings.user_agent
    assert web.hits("robots.txt")[0].headers["User-Agent"] == settings.user_agent


async def test_page_records_media_type_charset_and_etag(web: LocalSite, client: HttpClient) -> None:
    page = await client.get(web.url("site/home.html"), where=WHERE)
    assert page is not None
    assert page.body == (DATA / "site" / "home.html").read_bytes()
    assert (page.content_type, page.charset, page.status) == ("text/html", "utf-8", 200)
    assert page.etag is not None
    assert page.etag.startswith('"')


async def test_page_url_is_the_final_url_after_redirects(
    web: LocalSite, client: HttpClient
) -> None:
    web.route("/moved", status=301, headers={"Location": "/site/home.html"})
    page = await client.get(web.url("moved"), where=WHERE)
    assert page is not None
    assert page.url == web.url("site/home.html")


async def test_conditional_get_sends_validators_and_returns_none_on_304(
    web: LocalSite, client: HttpClient
) -> None:
    first = await client.get(web.url("feeds/atom.xml"), where=WHERE)
    assert first is not None
    assert first.etag
    modified = "Wed, 02 Jun 2021 08:00:00 GMT"
    again = await client.get(
        web.url("feeds/atom.xml"), where=WHERE, etag=first.etag, last_modified=modified
    )
    assert again is None
    sent = web.hits("feeds/atom.xml")[1].headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == (first.etag, modified)
    assert "If-None-Match" not in web.hits("feeds/atom.xml")[0].headers


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
async def test_error_status_raises_fetch_error_naming_where_and_status(
    web: LocalSite, client: HttpClient, status: int, reason: str
) -> None:
    web.route("/gone", status=status, body=b"oops")
    with pytest.raises(FetchError) as caught:
        await client.get(web.url("gone"), where=WHERE)
    assert str(caught.value) == f"{WHERE}: HTTP {status} {reason}"


async def test_slow_response_times_out(web: LocalSite, tmp_path: Path) -> None:
    web.route("/slow", delay=5, body=b"late")
    async with open_client(settings_for(tmp_path, timeout=0.5)) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(web.url("slow"), where=WHERE)
    assert str(caught.value).startswith(f"{WHERE}: timed out after 0.5s")
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_stalled_body_times_out(web: LocalSite, tmp_path: Path) -> None:
    web.route("/stall", body=b"<rss>", hang=True)
    async with open_client(settings_for(tmp_path, timeout=0.5)) as client:
        with pytest.raises(FetchError, match=r"timed out after 0\.5s"):
            await client.get(web.url("stall"), where=WHERE)


async def test_body_over_the_cap_is_refused(web: LocalSite, client: HttpClient) -> None:
    web.route("/huge", body=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "text/html"})
    with pytest.raises(FetchError) as caught:
        await client.get(web.url("huge"), where=WHERE)
    assert str(caught.value) == f"{WHERE}: response larger than 10 MiB"


async def test_decompression_bomb_is_refused_while_streaming(
    web: LocalSite, client: HttpClient
) -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    assert len(bomb) < 100_000
    web.route("/bomb", body=bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="response larger than 10 MiB"):
        await client.get(web.url("bomb"), where=WHERE)


async def test_gzip_bodies_are_inflated(web: LocalSite, client: HttpClient) -> None:
    body = (DATA / "feeds" / "rss20.xml").read_bytes()
    web.route("/gz", body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    page = await client.get(web.url("gz"), where=WHERE)
    assert page is not None
    assert page.body == body


async def test_only_http_urls_are_fetched(client: HttpClient) -> None:
    with pytest.raises(FetchError, match=r'not an http\(s\) URL: "ftp://example\.org/feed"'):
        await client.get("ftp://example.org/feed", where=WHERE)


async def test_five_redirects_are_followed(web: LocalSite, client: HttpClient) -> None:
    for hop in range(5):
        target = f"/hop{hop + 1}" if hop < 4 else "/site/home.html"
        web.route(f"/hop{hop}", status=302, headers={"Location": target})
    page = await client.get(web.url("hop0"), where=WHERE)
    assert page is not None
    assert page.url == web.url("site/home.html")


async def test_redirect_loop_stops_after_five(web: LocalSite, client: HttpClient) -> None:
    web.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="too many redirects"):
        await client.get(web.url("loop"), where=WHERE)
    assert len(web.hits("loop")) == 6  # the request and five redirects


async def test_refused_connection_says_cannot_connect(client: HttpClient) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        await client.get(f"http://127.0.0.1:{port}/feed", where=WHERE)
    assert str(caught.value).startswith(f"{WHERE}: cannot connect: ClientConnectorError")


async def test_robots_txt_disallow_refuses_without_requesting(
    web: LocalSite, client: HttpClient
) -> None:
    web.route("/robots.txt", body=b"User-agent: *\nDisallow: /site/\n")
    with pytest.raises(FetchError) as caught:
        await client.get(web.url("site/home.html"), where=WHERE)
    assert str(caught.value) == f"{WHERE}: refused by robots.txt"
    assert web.hits("site/home.html") == []
    assert await client.get(web.url("feeds/rss20.xml"), where=WHERE) is not None


async def test_robots_txt_is_fetched_once_per_host(web: LocalSite, client: HttpClient) -> None:
    web.route("/robots.txt", body=b"User-agent: *\nDisallow: /private/\n")
    for path in ("feeds/rss20.xml", "feeds/atom.xml", "site/home.html"):
        await client.get(web.url(path), where=WHERE)
    assert len(web.hits("robots.txt")) == 1


async def test_robots_txt_for_our_user_agent_applies(web: LocalSite, client: HttpClient) -> None:
    rules = b"User-agent: press-monitor\nDisallow: /feeds/\n\nUser-agent: *\nAllow: /\n"
    web.route("/robots.txt", body=rules)
    with pytest.raises(FetchError, match=r"refused by robots\.txt"):
        await client.get(web.url("feeds/rss20.xml"), where=WHERE)


async def test_robots_txt_server_error_allows_everything_and_is_logged(
    web: LocalSite, client: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    web.route("/robots.txt", status=503)
    assert await client.get(web.url("feeds/rss20.xml"), where=WHERE) is not None
    logged = [r for r in caplog.records if r.getMessage() == "robots.unavailable"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.WARNING


async def test_repr_counts_requests_not_modified_and_errors(
    web: LocalSite, client: HttpClient
) -> None:
    web.route("/gone", status=404)
    page = await client.get(web.url("feeds/rss20.xml"), where=WHERE)
    assert page is not None
    await client.get(web.url("feeds/rss20.xml"), where=WHERE, etag=page.etag)
    with pytest.raises(FetchError):
        await client.get(web.url("gone"), where=WHERE)
    assert repr(client) == "<HttpClient requests=3 not_modified=1 errors=1 hosts=1>"


async def test_no_more_requests_in_flight_than_the_concurrency(
    web: LocalSite, tmp_path: Path
) -> None:
    lock = threading.Lock()
    pairs = threading.Barrier(2)  # each request waits for a partner: two at a time get through
    current = peak = 0

    def count(request: Request) -> tuple[int, dict[str, str], bytes]:
        nonlocal current, peak
        with lock:
            current += 1
            peak = max(peak, current)
        try:
            pairs.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        with lock:
            current -= 1
        return 200, {"Content-Type": "text/plain"}, b"ok"

    web.route("/count", handler=count)
    settings = MonitorSettings(
        state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path, concurrency=2
    )
    async with open_client(settings) as client:
        await asyncio.gather(*(client.get(web.url("count"), where=WHERE) for _ in range(6)))
    assert peak == 2


async def test_admit_is_awaited_before_the_request_is_made(
    web: LocalSite, client: HttpClient
) -> None:
    admitted = asyncio.Event()
    asked = asyncio.Event()

    async def admit() -> None:
        asked.set()
        await admitted.wait()

    fetch = asyncio.create_task(client.get(web.url("feeds/rss20.xml"), where=WHERE, admit=admit))
    await asyncio.wait_for(asked.wait(), 5)
    assert web.hits("robots.txt")  # robots.txt is not what the caller limits
    assert not web.hits("feeds/rss20.xml")  # no request while the caller holds it back
    admitted.set()
    assert await asyncio.wait_for(fetch, 5) is not None
    assert len(web.hits("feeds/rss20.xml")) == 1
