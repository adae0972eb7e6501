"""fetch: sources and article pages over HTTP → Items and Pages. Async; the one aiohttp client.

Entry points (nothing heavy is imported until one is called):

- ``open_client(settings)`` — the HTTP client, an async context manager, made in cli/daemon;
- ``fetch_source(client, source, state)`` → FetchResult (feed, listing page); raises SourceError;
- ``fetch_page(client, url, source=name)`` → Page; raises FetchError;
- ``check_url(client, url)`` → (kind, items) for `monitor sources check`;
- ``next_poll``, ``is_due``, ``health`` — when a (failing) source is due, how it looks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from monitor.fetch.health import health, is_due, next_poll

__all__ = [
    "check_url",
    "fetch_page",
    "fetch_source",
    "health",
    "is_due",
    "next_poll",
    "open_client",
]

if TYPE_CHECKING:
    from monitor.config import MonitorSettings, SourceConfig
    from monitor.fetch.http import HttpClient
    from monitor.models import FetchResult, Item, Page, SourceState


def open_client(settings: MonitorSettings) -> HttpClient:
    from monitor.fetch.http import HttpClient

    return HttpClient(settings)


async def fetch_source(client: HttpClient, source: SourceConfig, state: SourceState) -> FetchResult:
    from monitor.fetch.sources import fetch_source as run

    return await run(client, source, state)


async def fetch_page(
    client: HttpClient,
    url: str,
    *,
    source: str,
    admit: Callable[[], Awaitable[None]] | None = None,
) -> Page:
    from monitor.fetch.sources import fetch_page as run

    return await run(client, url, source=source, admit=admit)


async def check_url(client: HttpClient, url: str) -> tuple[str, tuple[Item, ...]]:
    from monitor.fetch.sources import check_url as run

    return await run(client, url)
