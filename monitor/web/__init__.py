"""web: the daemon's HTTP face (aiohttp.web) — home page, feeds, /healthz.

``serve(config, services)`` is an async context manager that listens on ``[web] listen`` while
the daemon runs. Pages read the database through the store; they never write to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.runtime import Services


@asynccontextmanager
async def serve(config: Config, services: Services) -> AsyncIterator[None]:
    """Listen on ``[web] listen`` (unless ``enabled = false``) until the block ends."""
    if not config.web.enabled:
        yield
        return
    from monitor.web.app import start

    runner = await start(config, services)
    try:
        yield
    finally:
        await runner.cleanup()
