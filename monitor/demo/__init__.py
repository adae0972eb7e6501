"""`monitor demo`: the whole pipeline, offline, on a bundled sample site.

serve monitor/demo/site on 127.0.0.1 ─► write a demo installation (monitor.toml pointing at
it, the starter rules and templates) ─► poll --once ─► subscribe demo@example.org ─►
send the digest into state/outbox/ ─► say where the digest, the feeds and the database are
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE = Path(__file__).parent / "site"

CONFIG = """\
# A demo installation written by `monitor demo`: its sources are the sample site on {base}.
[monitor]
timezone = "Asia/Almaty"
max_age = "0"          # the sample articles are fetched however old they are

[[source]]
name = "EU Delegation to Kazakhstan (demo)"
url = "{base}/delegation/news.html"
kind = "page"
items = ".views-row"
link = "a"
title = "h3"
date = ".date"

[[source]]
name = "European Parliament press releases (demo)"
url = "{base}/parliament/press.xml"
kind = "feed"

[[source]]
name = "Steppe Monitor (demo)"
url = "{base}/blog/atom.xml"
kind = "feed"

[[digest]]
name = "daily"
at = "08:00"

[web]
listen = "127.0.0.1:8080"
base_url = "http://localhost:8080"
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_site(root: Path = SITE) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_demo(directory: Path | None, *, keep: bool, echo: Callable[[str], None]) -> int:
    """Run the demo; return the exit status."""
    from monitor import admin, config

    root = directory or Path(tempfile.mkdtemp(prefix="press-monitor-demo-"))
    with serve_site() as base:
        echo(f"sample site: {base}/ (served from {SITE})")
        admin.init_project(root, force=True)
        (root / "monitor.toml").write_text(CONFIG.format(base=base), encoding="utf-8")
        settings = config.load(root / "monitor.toml")
        results = admin.poll_once(settings, list(settings.sources), progress=False)
        summary = admin.poll_summary(results)
        echo(
            f"polled {summary['sources_ok']} sources: {summary['new_articles']} articles stored, "
            f"{summary['matches']} matches"
        )
        for topic, count in summary["topics"].items():
            echo(f"  {topic}: {count}")
        for name, error in summary["failed"].items():
            echo(f"  failed: {name}: {error}")
        admin.add_subscriber(settings, "demo@example.org", settings.digests[0], "")
        digest = admin.send_digest_now(settings, settings.digests[0])
        outbox = settings.monitor.outbox_dir / "new"
        echo(f"digest: {digest.sent} e-mail written to {outbox}")
        preview = admin.preview_digest(settings, settings.digests[0], None, None)
        echo(f"digest as a web page: {preview[-1]}" if preview else "digest: nothing to preview")
        echo(f"feeds: {settings.monitor.feeds_dir / 'all.xml'} (and one per topic)")
        echo(f"database: {settings.monitor.db_path}")
        echo(f"try: monitor --config {root / 'monitor.toml'} rules test '\"death penalty\"'")
        if keep:
            echo("serving the sample site until Ctrl-C …")
            threading.Event().wait()
    return 1 if summary["sources_failed"] else 0
