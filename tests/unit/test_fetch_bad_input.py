"""Bad input from real servers on 127.0.0.1, polled together with a good source through
`monitor poll --once`: nothing crashes the others' polls, and every failure shows in
`monitor sources` with its reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from monitor.cli import main
from tests.servers import LocalSite, Request

pytestmark = pytest.mark.timeout(60)

RSS = (Path(__file__).parent.parent / "data" / "site" / "feeds" / "rss.xml").read_bytes()
LAYOUT_CHANGED = (
    b"<html><body><main><p>We have a new website! Coming soon.</p></main></body></html>"
)


def redirect_to_itself(request: Request) -> tuple[int, dict[str, str], bytes]:
    return 302, {"Location": request.path}, b""


def bad_routes(site: LocalSite) -> dict[str, str]:
    """Serve one bad answer per path; the expected reason in `monitor sources`, per source."""
    site.route("slow.xml", delay=10, body=RSS)
    site.route("endless.xml", hang=True, body=b"<rss><channel>")
    bomb = gzip.compress(b"\0" * (12 * 2**20))
    site.route("bomb.xml", body=bomb, headers={"Content-Encoding": "gzip"})
    site.route("loop.xml", handler=redirect_to_itself)
    site.route("invalid.xml", body=b"<rss><channel><item><title>broken</rss", headers={})
    site.route("html-as-feed.xml", body=b"<html><body><p>Hello</p></body></html>")
    site.route("empty.xml", body=b"", headers={"Content-Type": "application/rss+xml"})
    site.route("gone.xml", status=404, body=b"not here")
    site.route("broken.xml", status=500, body=b"oops")
    return {
        "slow": "timed out",
        "endless": "timed out",
        "bomb": "larger than",
        "loop": "too many redirects",
        "invalid": "not a readable feed",
        "html-as-feed": "not a feed",
        "empty": "not a feed",
        "gone": "HTTP 404",
        "broken": "HTTP 500",
    }


def write_config(project: Path, site: LocalSite, names: list[str]) -> Path:
    """Sources on ``names`` (bad ones), two mislabelled feeds, a good feed and a listing; their
    items are days old, so only remembered (no articles fetched: these tests are about sources)."""
    site.route("feed-as-html", body=RSS, headers={"Content-Type": "text/html; charset=utf-8"})
    site.route("wrong-type", body=RSS, headers={"Content-Type": "application/octet-stream"})
    sources = "".join(
        f'\n[[source]]\nname = "{name}"\nurl = "{site.url(name + ".xml")}"\nkind = "feed"\n'
        for name in names
    )
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "UTC"
max_age = "1h"
timeout = 3
{sources}
[[source]]
name = "feed as html"
url = "{site.url("feed-as-html")}"

[[source]]
name = "wrong type"
url = "{site.url("wrong-type")}"

[[source]]
name = "good"
url = "{site.url("feeds/rss.xml")}"

[[source]]
name = "listing"
url = "{site.url("listing.html")}"
kind = "page"
items = ".views-row"
""",
        encoding="utf-8",
    )
    return config


def sources_table(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    assert main(["--config", str(config), "sources"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    headers = lines[0].split("\t")
    return {
        row.split("\t")[0]: dict(zip(headers, row.split("\t"), strict=True)) for row in lines[1:]
    }


def poll(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    status = main(["--config", str(config), "poll", "--once", "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out.strip().splitlines()[-1])


def test_every_bad_source_fails_alone_and_shows_its_reason(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = bad_routes(site)
    config = write_config(project, site, list(expected))

    status, summary = poll(config, capsys)

    assert status == 1
    assert summary["sources_failed"] == len(expected)
    assert summary["sources_ok"] == 4  # good, listing, and the mislabelled feeds read as feeds
    table = sources_table(config, capsys)
    for name, reason in expected.items():
        row = table[name]
        assert reason in row["last error"], (name, row)
        assert row["health"] == "failing"
        assert row["failures"] == "1"
    for name in ("good", "listing", "feed as html", "wrong type"):
        assert table[name]["health"] == "ok", table[name]
        assert int(table[name]["items"]) > 0


def test_listing_whose_layout_changed_is_flagged_not_silently_empty(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site, [])
    assert poll(config, capsys)[1]["sources_failed"] == 0

    site.route("listing.html", body=LAYOUT_CHANGED, headers={"Content-Type": "text/html"})
    status, summary = poll(config, capsys)

    assert status == 1
    assert summary["sources_failed"] == 1
    row = sources_table(config, capsys)["listing"]
    assert "has the page's layout changed?" in row["last error"]
    assert "items were found before" in row["last error"]
    assert row["health"] == "failing"


def test_a_source_failing_three_times_is_flagged_and_polled_less_often(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_routes(site)
    config = write_config(project, site, ["gone"])
    for _ in range(3):
        poll(config, capsys)

    table = sources_table(config, capsys)

    assert table["gone"]["health"] == "FAILING (3 in a row), polled less often"
    assert table["gone"]["failures"] == "3"
    # every = 30m: the third failure waits 2h ± 25%, the healthy source 30m.
    assert table["gone"]["next poll"] > table["good"]["next poll"]
    assert main(["--config", str(config), "status"]) == 0
    assert "FAILING (3 in a row)" in capsys.readouterr().out
