"""The one HTTP client of press-monitor: every request to a source or an article goes through it.

    get(url) ─ http(s) only ─ robots.txt (fetched once per host, cached) ─ a host slot
             ─ the host's pace (HOST_DELAY between starts; longer after a Retry-After)
             ─ a global slot ─ GET with the user agent, validators, timeouts, ≤ 5 redirects
             ─ 304 → None │ 429/503 → the host waits (Retry-After), one retry when short
             │ status ≥ 300 → FetchError │ body read in chunks up to the cap ─► Page

Failures a user can act on (network, timeout, status, size, robots.txt) become FetchError here,
with the cause chained; nothing above this module sees an aiohttp exception.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
import protego
from aiohttp.abc import AbstractResolver
from yarl import URL

from monitor.config import MonitorSettings
from monitor.errors import FetchError
from monitor.log import event
from monitor.models import Page

log = logging.getLogger(__name__)

#: Bodies larger than this are refused; counted after decompression, so it also stops
#: decompression bombs (aiohttp inflates while streaming).
MAX_BODY = 10 * 1024 * 1024
MAX_REDIRECTS = 5
#: aiohttp counts responses, not redirects: it stops when its history reaches this many.
_AIOHTTP_MAX_REDIRECTS = MAX_REDIRECTS + 1
CONNECT_TIMEOUT = 10.0
#: Requests in flight to one host at once: polite to small sites, enough for big ones.
PER_HOST = 4
#: Google reads the first 500 KiB of a robots.txt; so do we.
ROBOTS_MAX = 512 * 1024
#: How long a host's robots.txt is trusted before it is fetched again.
ROBOTS_TTL = 24 * 3600.0
CHUNK = 64 * 1024
#: Seconds between the starts of two requests to one host (scheme, name and port).
HOST_DELAY = 0.1
#: A Retry-After this short (seconds) is waited out and the request tried once more; a longer
#: one fails the request, and the host gets no request until it has passed.
RETRY_WAIT = 10.0
#: Retry-After values are capped at this (seconds): a typo on the server must not stop a
#: source for a week.
MAX_RETRY_AFTER = 6 * 3600.0
#: Hosts whose state (robots.txt rules, pace, Retry-After, slots) is kept. A daemon whose
#: feeds link to articles on ever new hosts would otherwise keep them all, each with its
#: parsed robots.txt (up to ROBOTS_MAX), forever (#8). Beyond it the idle hosts are
#: forgotten, least recently used first; a host still waiting out a Retry-After is not.
MAX_HOSTS = 1000
ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/feed+json,application/xml;q=0.9,*/*;q=0.8"
)


class HttpClient:
    """An async context manager owning one aiohttp session; see the module docstring."""

    def __init__(
        self,
        settings: MonitorSettings,
        *,
        max_body: int = MAX_BODY,
        host_delay: float = HOST_DELAY,
        max_hosts: int = MAX_HOSTS,
    ) -> None:
        self.settings = settings
        self.max_body = max_body
        self.host_delay = host_delay
        self.max_hosts = max_hosts
        #: Counters for ``repr`` and the shutdown summary.
        self.requests = 0
        self.not_modified = 0
        self.errors = 0
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, tuple[float, protego.Protego | None]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        #: Per host: the monotonic time the next request may start (pace and Retry-After).
        self._next_start: dict[str, float] = {}
        #: Per host: the monotonic time before which a Retry-After forbids any request.
        self._not_before: dict[str, float] = {}
        #: Per host: requests and robots.txt look-ups under way (a busy host is never
        #: forgotten); and the hosts by last use, least recent first (see MAX_HOSTS).
        self._busy: Counter[str] = Counter()
        self._used: dict[str, None] = {}

    def __repr__(self) -> str:
        return (
            f"<HttpClient requests={self.requests} not_modified={self.not_modified}"
            f" errors={self.errors} hosts={self.hosts}>"
        )

    @property
    def hosts(self) -> int:
        """Hosts whose state is kept now (at most ``max_hosts`` plus the busy ones)."""
        return len(self._used)

    @contextmanager
    def _using(self, host: str) -> Iterator[None]:
        """Mark ``host`` busy and most recently used; forget idle hosts beyond max_hosts."""
        self._used.pop(host, None)
        self._used[host] = None
        self._busy[host] += 1
        try:
            if len(self._used) > self.max_hosts:
                self._forget_idle()
            yield
        finally:
            self._busy[host] -= 1
            if not self._busy[host]:
                del self._busy[host]

    def _forget_idle(self) -> None:
        """Forget the least recently used idle hosts down to three quarters of max_hosts (so
        that the walk is not made at every new host)."""
        now = time.monotonic()
        excess = len(self._used) - self.max_hosts * 3 // 4
        for host in list(self._used):
            if excess <= 0:
                break
            if host in self._busy or self._not_before.get(host, 0.0) > now:
                continue
            for table in (
                self._used,
                self._host_slots,
                self._robots,
                self._robots_locks,
                self._next_start,
                self._not_before,
            ):
                table.pop(host, None)
            excess -= 1

    async def __aenter__(self) -> HttpClient:
        timeout = self.settings.timeout
        self._session = aiohttp.ClientSession(
            # Our own slots bound concurrency before the clock starts (see _slot); the
            # connector's limits only back them up.
            connector=aiohttp.TCPConnector(
                limit=self.settings.concurrency + 1,
                limit_per_host=PER_HOST + 1,
                resolver=_resolver(self.settings.nameservers),
            ),
            timeout=aiohttp.ClientTimeout(
                total=timeout, connect=min(CONNECT_TIMEOUT, timeout), sock_read=timeout
            ),
            headers={"User-Agent": self.settings.user_agent, "Accept": ACCEPT},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside `async with`")
        return self._session

    async def get(
        self,
        url: str,
        *,
        where: str,
        etag: str | None = None,
        last_modified: str | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> Page | None:
        """GET ``url``: a Page, or None when the server says 304 Not Modified.

        ``where`` opens every error message (`source "EU Delegation" (https://…)`).
        ``admit`` is awaited once the host's slot and pace allow the request, right before it
        is made: the caller's own limit on what it holds (articles waiting for a cleaner),
        which a request waiting for its host's pace does not take up.
        """
        self.requests += 1
        try:
            target = _checked_url(url, where)
            if not await self._robots_allow(target):
                raise FetchError(where, "refused by robots.txt")
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            try:
                async with self._slot(target, where, admit):
                    page = await self._fetch(target, where, headers)
            except FetchError as exc:
                if exc.retry_after is None or exc.retry_after > RETRY_WAIT:
                    raise
                event(log, "http.retry", url=url, after=f"{exc.retry_after:g}s")
                async with self._slot(target, where):  # waits out the Retry-After
                    page = await self._fetch(target, where, headers)
        except FetchError:
            self.errors += 1
            raise
        if page is None:
            self.not_modified += 1
        return page

    @staticmethod
    def _host(url: URL) -> str:
        return f"{url.scheme}://{url.host}:{url.port}"

    @asynccontextmanager
    async def _slot(
        self, url: URL, where: str, admit: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        """A host slot, the host's pace, the caller's ``admit``, then a global slot (so that
        a busy or slow host never holds the others' slots). Raises FetchError, without a
        request, while the host's Retry-After has longer than RETRY_WAIT to run."""
        host = self._host(url)
        with self._using(host):
            async with self._host_slot(host, url, where, admit):
                yield

    @asynccontextmanager
    async def _host_slot(
        self, host: str, url: URL, where: str, admit: Callable[[], Awaitable[None]] | None
    ) -> AsyncIterator[None]:
        if host not in self._host_slots:
            self._host_slots[host] = asyncio.Semaphore(PER_HOST)
        async with self._host_slots[host]:
            now = time.monotonic()
            blocked = self._not_before.get(host, 0.0) - now
            if blocked > RETRY_WAIT:
                raise FetchError(
                    where,
                    f"the server asked for no requests for another {blocked:.0f}s (Retry-After)",
                    retry_after=blocked,
                )
            start = max(now, self._next_start.get(host, 0.0), self._not_before.get(host, 0.0))
            self._next_start[host] = start + self.host_delay
            if start > now:
                await asyncio.sleep(start - now)
            if admit is not None:
                await admit()
            async with self._slots:
                yield

    def _refused(self, url: URL, where: str, response: aiohttp.ClientResponse) -> FetchError:
        """The error for a status ≥ 300; on 429 and 503 the host waits as the server asks."""
        what = f"HTTP {response.status} {response.reason or ''}".strip()
        if response.status not in (429, 503):
            return FetchError(where, what)
        after = retry_after(response.headers.get("Retry-After"))
        if after is None:
            return FetchError(where, what)
        after = min(after, MAX_RETRY_AFTER)
        host = self._host(url)
        self._not_before[host] = max(self._not_before.get(host, 0.0), time.monotonic() + after)
        event(log, "http.retry_after", logging.WARNING, url=str(url), after=f"{after:g}s")
        return FetchError(where, f"{what} (retry after {after:g}s)", retry_after=after)

    async def _fetch(self, url: URL, where: str, headers: dict[str, str]) -> Page | None:
        with _client_errors(where, self.settings.timeout):
            async with self.session.get(
                url, headers=headers, max_redirects=_AIOHTTP_MAX_REDIRECTS
            ) as response:
                if response.status == 304:
                    return None
                if response.status >= 300:
                    raise self._refused(url, where, response)
                body = await self._read(response, where)
                media = response.content_type.lower() if "Content-Type" in response.headers else ""
                return Page(
                    url=str(response.url),
                    body=body,
                    content_type=media,
                    charset=response.charset,
                    status=response.status,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )

    async def _read(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        too_large = f"response larger than {self.max_body / 2**20:g} MiB"
        # Content-Length counts compressed bytes: over the cap, the body surely is too.
        if response.content_length is not None and response.content_length > self.max_body:
            raise FetchError(where, too_large)
        body = bytearray()
        async for chunk in response.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > self.max_body:
                raise FetchError(where, too_large)
        return bytes(body)

    async def _robots_allow(self, url: URL) -> bool:
        host = self._host(url)
        with self._using(host):
            return await self._robots_allow_host(host, url)

    async def _robots_allow_host(self, host: str, url: URL) -> bool:
        lock = self._robots_locks.setdefault(host, asyncio.Lock())
        async with lock:
            cached = self._robots.get(host)
            if cached is None or cached[0] < time.monotonic():
                rules = await self._load_robots(url)
                self._robots[host] = (time.monotonic() + ROBOTS_TTL, rules)
            rules = self._robots[host][1]
        return rules is None or bool(rules.can_fetch(str(url), self.settings.user_agent))

    async def _load_robots(self, url: URL) -> protego.Protego | None:
        """The host's robots.txt rules; None (everything allowed) when it has none."""
        robots = url.with_path("/robots.txt").with_query(None).with_fragment(None)
        try:
            async with self._slot(robots, str(robots)):
                with _client_errors(str(robots), self.settings.timeout):
                    async with self.session.get(
                        robots, max_redirects=_AIOHTTP_MAX_REDIRECTS
                    ) as response:
                        status = response.status
                        body = bytearray()
                        async for chunk in response.content.iter_chunked(CHUNK):
                            body += chunk
                            if len(body) >= ROBOTS_MAX:
                                break
        except FetchError as exc:
            event(log, "robots.unavailable", logging.WARNING, url=str(robots), error=str(exc))
            return None
        if status >= 500:
            event(
                log, "robots.unavailable", logging.WARNING, url=str(robots), error=f"HTTP {status}"
            )
            return None
        if status >= 300:  # 4xx: the site has no robots.txt, so everything is allowed
            return None
        return protego.Protego.parse(bytes(body[:ROBOTS_MAX]).decode("utf-8", "replace"))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None when absent or
    unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _checked_url(url: str, where: str) -> URL:
    """The URL as aiohttp takes it; FetchError unless it is an absolute http(s) URL."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(where, f'not an http(s) URL: "{url}"')
    try:
        parsed = URL(url)
    except (ValueError, UnicodeError) as exc:
        raise FetchError(where, f'invalid URL: "{url}"') from exc
    if not parsed.host:
        raise FetchError(where, f'invalid URL: "{url}"')
    return parsed


def _resolver(nameservers: tuple[str, ...]) -> AbstractResolver:
    """The system's resolver (getaddrinfo in a thread) unless ``[monitor] nameservers`` names
    DNS servers: then c-ares (aiodns) asks those, and only those. Chosen explicitly, because
    aiohttp's default changes to c-ares whenever aiodns happens to be installed."""
    if not nameservers:
        return aiohttp.ThreadedResolver()
    return aiohttp.AsyncResolver(nameservers=list(nameservers))


@contextmanager
def _client_errors(where: str, timeout: float) -> Iterator[None]:
    """aiohttp's and the clock's failures → FetchError, cause chained; the boundary."""
    try:
        yield
    except TimeoutError as exc:  # also aiohttp's ServerTimeoutError and ConnectionTimeoutError
        raise FetchError(where, f"timed out after {timeout:g}s") from exc
    except aiohttp.TooManyRedirects as exc:
        raise FetchError(where, "too many redirects") from exc
    except aiohttp.InvalidUrlRedirectClientError as exc:
        raise FetchError(where, "redirected to an invalid or non-http(s) URL") from exc
    except aiohttp.ClientConnectorDNSError as exc:  # before its base, ClientConnectorError
        raise FetchError(where, f"DNS: cannot resolve host {exc.host}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise FetchError(where, "cannot connect") from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise FetchError(where, "the server closed the connection") from exc
    except aiohttp.ClientPayloadError as exc:
        raise FetchError(where, "broken response body") from exc
    except aiohttp.ClientError as exc:
        raise FetchError(where, "request failed") from exc
