"""A farm of news sources on 127.0.0.1 for bench/poll_bench.py: one aiohttp process, one port
per source (each source its own host, as in real life), RSS, Atom and HTML listing pages with
20 items each, article pages made of the aeb benchmark's real HTML, 50 ms added latency per
response, ETag/304.

    python bench/farm.py AEB_DIR --sources 200 [--ports N] --ports-file PATH

writes the source URLs (one "kind url" a line) to PATH once it listens. With --ports N fewer
than the sources, the sources are spread over N ports (N hosts) as /source/<n>. Control on the first
port: GET /__warm adds 2 items dated now to the first 10 sources; GET /__reset undoes it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

LATENCY = 0.05
ITEMS = 20
KINDS = ("rss", "atom", "page")


class Farm:
    def __init__(self, bodies: list[bytes], sources: int) -> None:
        self.bodies = bodies
        self.sources = sources
        self.warm = False
        self.ports: list[int] = []
        self.old = datetime.now(UTC) - timedelta(days=90)
        self.now = datetime.now(UTC)

    def items(self, source: int) -> list[tuple[str, str, datetime]]:
        """(path, title, published) per item, newest first."""
        items = [
            (
                f"/articles/{source}-{j}.html",
                f"Article {j} of source {source}",
                self.old - timedelta(hours=j),
            )
            for j in range(ITEMS)
        ]
        if self.warm and source < 10:
            items = [
                (f"/articles/{source}-new{j}.html", f"New article {j} of source {source}", self.now)
                for j in range(2)
            ] + items
        return items

    def document(self, source: int, base: str) -> tuple[str, bytes]:
        kind = KINDS[source % len(KINDS)]
        items = self.items(source)
        if kind == "rss":
            entries = "".join(
                f"<item><title>{escape(t)}</title><link>{base}{p}</link><guid>{base}{p}</guid>"
                f"<pubDate>{format_datetime(d, usegmt=True)}</pubDate>"
                f"<description>Teaser of {escape(t)}</description></item>"
                for p, t, d in items
            )
            body = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Source {source}</title><link>{base}/</link>{entries}</channel></rss>'  # noqa: E501
            return "application/rss+xml", body.encode()
        if kind == "atom":
            entries = "".join(
                f'<entry><title>{escape(t)}</title><link href="{base}{p}"/><id>{base}{p}</id>'
                f"<updated>{d.isoformat()}</updated><summary>Teaser of {escape(t)}</summary></entry>"  # noqa: E501
                for p, t, d in items
            )
            body = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Source {source}</title><id>{base}/</id><updated>{items[0][2].isoformat()}</updated>{entries}</feed>'  # noqa: E501
            return "application/atom+xml", body.encode()
        rows = "".join(
            f'<div class="views-row"><h3><a href="{p}">{escape(t)}</a></h3>'
            f'<span class="date">{d:%d/%m/%Y - %H:%M}</span><p>Teaser of {escape(t)}</p></div>'
            for p, t, d in items
        )
        body = f"<html><head><title>Source {source}</title></head><body><nav><a href='/'>Home</a></nav><div class='view'>{rows}</div></body></html>"  # noqa: E501
        return "text/html; charset=utf-8", body.encode()

    def article(self, path: str) -> bytes:
        name = path.rsplit("/", 1)[-1].removesuffix(".html")
        digest = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
        body = self.bodies[digest % len(self.bodies)]
        # A sentence of its own, so that no two articles are exact duplicates.
        return body.replace(b"<p>", f"<p>Reference {name}. ".encode(), 1)

    async def handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(LATENCY)
        path = request.path
        port = request.url.port or 0
        if path == "/__warm":
            self.warm, self.now = True, datetime.now(UTC)
            return web.Response(text="warm")
        if path == "/__reset":
            self.warm = False
            return web.Response(text="reset")
        if path.startswith("/articles/"):
            return web.Response(body=self.article(path), content_type="text/html", charset="utf-8")
        if path == "/source":
            source = self.ports.index(port)
        elif path.startswith("/source/") and path[8:].isdigit() and int(path[8:]) < self.sources:
            source = int(path[8:])
        else:
            return web.Response(status=404, text="not found")
        content_type, body = self.document(source, f"http://127.0.0.1:{port}")
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"Content-Type": content_type, "ETag": etag})


def load_bodies(aeb: Path) -> list[bytes]:
    files = sorted((aeb / "html").glob("*.html.gz"))
    if not files:
        raise SystemExit(f"no aeb pages under {aeb}/html")
    return [gzip.decompress(f.read_bytes()) for f in files]


async def listen(app: web.Application, ports: int, backlog: int = 128) -> list[int]:
    """Serve ``app`` on ``ports`` free ports of 127.0.0.1 (one per modelled host); their
    numbers. The benches' farms (here, soak.py, memory_bench.py) all start this way."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    bound = []
    for _ in range(ports):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=backlog)
        await site.start()
        bound.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return bound


async def serve(aeb: Path, sources: int, ports_file: Path, ports: int | None = None) -> None:
    farm = Farm(load_bodies(aeb), sources)  # before serving: blocking is fine
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", farm.handle)
    if ports is None or ports >= sources:
        farm.ports.extend(await listen(app, sources, backlog=512))
        urls = [f"http://127.0.0.1:{port}/source" for port in farm.ports]
    else:
        farm.ports.extend(await listen(app, ports, backlog=512))
        urls = [f"http://127.0.0.1:{farm.ports[i % ports]}/source/{i}" for i in range(sources)]
    lines = [f"{KINDS[i % 3]} {url}" for i, url in enumerate(urls)]
    ports_file.write_text(  # noqa: ASYNC240
        "\n".join(lines) + "\n"
    )
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("aeb", type=Path)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--ports", type=int, help="spread the sources over this many ports")
    parser.add_argument("--ports-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.aeb, args.sources, args.ports_file, args.ports))


if __name__ == "__main__":
    main()
