"""The aiohttp application: routes and handlers."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime

from aiohttp import web

from monitor.config import Config
from monitor.errors import MonitorError
from monitor.log import event
from monitor.runtime import Services

log = logging.getLogger("monitor.web")

SERVICES = web.AppKey("services", Services)
CONFIG = web.AppKey("config", Config)


def make_app(config: Config, services: Services) -> web.Application:
    app = web.Application()
    app[SERVICES] = services
    app[CONFIG] = config
    app.router.add_get("/", home)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/feeds/{name}", feed_file)
    return app


async def start(config: Config, services: Services) -> web.AppRunner:
    """Start listening; raise MonitorError naming the address when it cannot bind."""
    runner = web.AppRunner(make_app(config, services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.web.host, config.web.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise MonitorError(
            f"web.listen {config.web.host}:{config.web.port}", "cannot listen"
        ) from exc
    addresses = [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in site._server.sockets]  # type: ignore[union-attr]  # aiohttp keeps the bound sockets here
    event(log, "web.listening", address=",".join(addresses))
    return runner


async def healthz(request: web.Request) -> web.Response:
    """200 with the sources' health; 503 when the database cannot be read."""
    services = request.app[SERVICES]
    try:
        health = await services.db(services.store.sources_health)
    except MonitorError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=503)
    failing = sorted(name for name, state in health.items() if state.failures)
    return web.json_response(
        {
            "ok": True,
            "time": datetime.now(UTC).isoformat(),
            "sources": len(request.app[CONFIG].sources),
            "failing": failing,
        }
    )


async def feed_file(request: web.Request) -> web.StreamResponse:
    """A file of state/feeds/, with ETag and Last-Modified (conditional GET answered 304)."""
    name = request.match_info["name"]
    feeds_dir = request.app[CONFIG].monitor.feeds_dir
    path = feeds_dir / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound(text=f"no feed named {name}")
    content_type = "application/rss+xml" if name.endswith(".xml") else "application/atom+xml"
    return web.FileResponse(path, headers={"Content-Type": content_type + "; charset=utf-8"})


async def home(request: web.Request) -> web.Response:
    """The topics with their feed links and recent matches."""
    from monitor import notify

    services = request.app[SERVICES]
    topics = await services.db(services.store.topics)
    rows = []
    for topic in topics:
        slug = notify.topic_slug(topic)
        entries = await services.db(services.store.recent_entries, topic, 5)
        items = "".join(
            f'<li><a href="{html.escape(e.url)}">{html.escape(e.title or e.url)}</a>'
            f" — {html.escape(e.source)}</li>"
            for e in entries
        )
        rows.append(
            f"<section><h2>{html.escape(topic)}</h2>"
            f'<p><a href="/feeds/{slug}.xml">RSS</a> · <a href="/feeds/{slug}.atom">Atom</a></p>'
            f"<ul>{items}</ul></section>"
        )
    body = "".join(rows) or "<p>No matches yet.</p>"
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Press Monitor</title></head><body><h1>Press Monitor</h1>"
        '<p><a href="/feeds/all.xml">All topics (RSS)</a> · '
        '<a href="/feeds/all.atom">Atom</a></p>'
        f"{body}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")
