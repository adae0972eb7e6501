"""The daemon's web pages on a real socket: subscribe with double opt-in, unsubscribe, feeds.

The web app runs in process on 127.0.0.1 with the real services (SQLite under tmp_path, the
starter templates and rules, LocalSMTP), on its own event loop in a thread, as `monitor run`
serves it; pages are driven by Debian's chromium (Playwright) or plain urllib.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, load
from monitor.models import Article, Item, Match
from monitor.notify import tokens
from monitor.store import open_store
from tests.servers import LocalSMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(project: Path, smtp: LocalSMTP, port: int, extra: str = "") -> Path:
    path = project / "monitor.toml"
    path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"

[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "Press Monitor <monitor@monitor.test>"
timeout = 5

[[digest]]
name = "daily"
at = "08:00"

[[digest]]
name = "weekly"
cron = "0 8 * * mon"

[web]
listen = "127.0.0.1:{port}"
base_url = "http://127.0.0.1:{port}"
{extra}
""",
        encoding="utf-8",
    )
    return path


class WebApp:
    """The daemon's web app with real services, on a loop in a background thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{config.web.port}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        from monitor import runtime
        from monitor.web import serve

        self.stop = asyncio.Event()
        try:
            async with runtime.open_services(self.config) as services, serve(self.config, services):
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def __enter__(self) -> WebApp:
        self.thread.start()
        assert self.ready.wait(30), "the web app did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture
def web(project: Path, smtp: LocalSMTP) -> Iterator[WebApp]:
    path = write_config(project, smtp, free_port(), "subscribe_limit = 3")
    with WebApp(load(path)) as app:
        yield app


def links(message: EmailMessage) -> list[str]:
    body = message.get_body(("plain",))
    assert body is not None
    return re.findall(r"https?://\S+", body.get_content())


def request(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, lower(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, lower(exc.headers), exc.read().decode()


def lower(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def form_session(url: str) -> tuple[str, str]:
    """GET the subscribe form: (cookie header, csrf field) as a browser would keep them."""
    with urllib.request.urlopen(url + "/subscribe", timeout=10) as response:
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
        page = response.read().decode()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return cookie, match.group(1)


def add_article(config: Config, topic: str, title: str) -> None:
    store = open_store(config.monitor.db_path)
    try:
        url = f"https://news.example.org/{title.lower().replace(' ', '-')}"
        article = Article(url=url, title=title, text=f"{title}: the full text.", source="Agency")
        match = Match(rule_id="test", topic=topic, spans=(("text", 0, len(title)),))
        store.save_article("Agency", Item(url=url), article, [match], datetime.now(UTC))
    finally:
        store.close()


# -- the whole flow in a browser ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_subscribe_confirm_and_receive_a_digest_in_a_browser(
    web: WebApp, smtp: LocalSMTP, browser: Any, project: Path
) -> None:
    page = browser.new_page()
    page.goto(web.url + "/")
    assert page.locator("h2", has_text="Human rights").count() == 1
    page.click("text=subscribe to a digest")

    page.fill("input[name=email]", "reader@example.org")
    page.check("input[name=topic][value='Human rights']")
    page.check("input[name=digest][value=weekly]")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Check your inbox"

    (confirm,) = smtp.wait_for(1)
    assert confirm["X-Press-Monitor-Kind"] == "confirm"
    assert confirm["To"] == "reader@example.org"
    assert "List-Unsubscribe" not in confirm
    (link,) = [u for u in links(confirm) if "/confirm/" in u]
    page.goto(link)
    assert page.locator("h1").inner_text() == "Subscription confirmed"

    add_article(web.config, "Human rights", "Court frees rights defender")
    # As a command beside the running daemon (Playwright's loop owns this thread).
    argv = ["--config", str(web.config.path), "digest", "send", "--digest", "weekly", "--now"]
    done = subprocess.run([sys.executable, "-m", "monitor", *argv], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    digest = smtp.wait_for(2)[1]
    assert digest["X-Press-Monitor-Kind"] == "digest"
    assert digest["To"] == "reader@example.org"
    assert "Court frees rights defender" in str(digest["Subject"]) + digest.as_string()

    # The List-Unsubscribe URL works in the browser too: a page with a button, then gone.
    unsubscribe = digest["List-Unsubscribe"].strip().strip("<>")
    page.goto(unsubscribe)
    assert page.locator("strong").inner_text() == "reader@example.org"
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    store = open_store(web.config.monitor.db_path)
    try:
        assert store.subscribers() == []
    finally:
        store.close()
    page.close()


# -- bad input ---------------------------------------------------------------------------------
def test_invalid_address_shows_the_form_again_with_400(web: WebApp, smtp: LocalSMTP) -> None:
    cookie, csrf = form_session(web.url)
    status, _, body = request(
        web.url + "/subscribe",
        {"csrf": csrf, "email": "not an address", "digest": "daily"},
        {"Cookie": cookie},
    )
    assert status == 400
    assert "valid e-mail address" in body
    assert 'value="not an address"' in body
    assert smtp.messages == []


def test_subscribe_without_the_csrf_field_is_refused_403(web: WebApp, smtp: LocalSMTP) -> None:
    cookie, csrf = form_session(web.url)
    form = {"email": "reader@example.org", "digest": "daily"}
    assert request(web.url + "/subscribe", form, {"Cookie": cookie})[0] == 403
    # The field without its cookie (another site's page posting here) is refused too.
    assert request(web.url + "/subscribe", {**form, "csrf": csrf})[0] == 403
    assert smtp.messages == []


def test_a_post_flood_on_subscribe_gets_429_with_retry_after(web: WebApp) -> None:
    statuses = [request(web.url + "/subscribe", {"email": "x@example.org"})[0] for _ in range(3)]
    status, headers, _ = request(web.url + "/subscribe", {"email": "x@example.org"})
    assert statuses == [403, 403, 403]
    assert status == 429
    assert 3000 < int(headers["retry-after"]) <= 3600


def test_a_second_confirmation_to_the_same_address_waits(web: WebApp, smtp: LocalSMTP) -> None:
    cookie, csrf = form_session(web.url)
    form = {"csrf": csrf, "email": "reader@example.org", "digest": "daily"}
    assert request(web.url + "/subscribe", form, {"Cookie": cookie})[0] == 200
    status, headers, body = request(web.url + "/subscribe", form, {"Cookie": cookie})
    assert status == 429
    assert "Confirmation already sent" in body
    assert headers["retry-after"] == "600"
    assert len(smtp.wait_for(1)) == 1


def test_tampered_and_expired_confirm_links_are_refused(web: WebApp, smtp: LocalSMTP) -> None:
    secret = tokens.load_secret(web.config.monitor.state_dir)
    data = {"e": "reader@example.org", "d": "daily", "t": []}
    expired = tokens.sign(secret, "confirm", data, datetime.now(UTC) - timedelta(minutes=1))
    good = tokens.sign(secret, "confirm", data, datetime.now(UTC) + timedelta(hours=1))
    mac = good.partition(".")[2]
    other = {**data, "e": "victim@example.org"}
    forged_body = tokens.sign(secret, "confirm", other, datetime.now(UTC)).partition(".")[0]

    status, _, page = request(f"{web.url}/confirm/{expired}")
    assert (status, "This link has expired" in page) == (410, True)
    status, _, page = request(f"{web.url}/confirm/{forged_body}.{mac}")
    assert (status, "This link is not valid" in page) == (400, True)
    # An unsubscribe token is no confirmation, though both are signed with the same secret.
    unsubscribe = tokens.sign(secret, "unsubscribe", {"e": "reader@example.org"})
    assert request(f"{web.url}/confirm/{unsubscribe}")[0] == 400

    assert request(f"{web.url}/confirm/{good}")[0] == 200
    status, _, page = request(f"{web.url}/confirm/{good}")
    assert (status, "Already subscribed" in page) == (200, True)


def test_one_click_unsubscribe_post_needs_no_cookie(web: WebApp) -> None:
    from monitor.models import Subscriber
    from monitor.notify import unsubscribe_url

    store = open_store(web.config.monitor.db_path)
    try:
        store.add_subscriber("reader@example.org", "daily", (), datetime.now(UTC))
    finally:
        store.close()
    url = unsubscribe_url(web.config, Subscriber(email="reader@example.org", digest="daily"))
    status, _, body = request(url, {"List-Unsubscribe": "One-Click"})
    assert (status, body) == (200, "reader@example.org is unsubscribed.\n")
    store = open_store(web.config.monitor.db_path)
    try:
        assert store.subscribers() == []
    finally:
        store.close()
    # A plain POST without the form's CSRF field does not unsubscribe anyone else's way.
    assert request(url, {})[0] == 403
    assert request(url[:-3] + "abc", {"List-Unsubscribe": "One-Click"})[0] == 400


def test_feeds_are_served_with_etag_and_answer_304(web: WebApp) -> None:
    feeds = web.config.monitor.feeds_dir
    feeds.mkdir(parents=True, exist_ok=True)
    (feeds / "all.xml").write_text("<rss version='2.0'><channel/></rss>", encoding="utf-8")
    status, headers, _ = request(web.url + "/feeds/all.xml")
    assert status == 200
    assert headers["content-type"].startswith("application/rss+xml")
    etag, modified = headers["etag"], headers["last-modified"]
    assert request(web.url + "/feeds/all.xml", headers={"If-None-Match": etag})[0] == 304
    assert request(web.url + "/feeds/all.xml", headers={"If-Modified-Since": modified})[0] == 304


def test_a_template_with_a_jinja_error_stops_monitor_run_with_file_and_line(
    project: Path,
) -> None:
    page = project / "templates" / "web" / "home.html"
    page.write_text(page.read_text(encoding="utf-8") + "{% for x in %}\n", encoding="utf-8")
    (project / "monitor.toml").write_text(
        '[monitor]\ntimezone = "UTC"\n\n[web]\nlisten = "127.0.0.1:0"\n', encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(project / "monitor.toml"), "run"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = page.read_text(encoding="utf-8").count("\n")
    assert f"templates/web/home.html:{lines}" in done.stderr.decode()
    assert not (project / "state" / "outbox").exists()
