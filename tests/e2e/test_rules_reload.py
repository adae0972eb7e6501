"""`monitor run` follows rule-file edits: a new topic matches the next poll, a broken file
keeps its last good version running and shows in `monitor status`, a fix clears it (#6)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from monitor.cli import main
from tests.servers import LocalSite, MonitorProcess

pytestmark = [pytest.mark.timeout(480), pytest.mark.slow]

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><article><h1>{title}</h1>
<p>{body} Farmers in the Kostanay region brought in the harvest early this year, and the
cooperative says the yield per hectare was the best in a decade.</p>
<p>Buyers from three countries came to the regional fair to sign contracts for next season,
and the regional government promised to repair the roads to the grain elevators.</p>
<p>Agronomists warned that the dry spring may not repeat itself and advised farmers to keep
part of the seed in reserve for a colder year.</p>
</article></body></html>
"""


class Feed:
    """An RSS file on the LocalSite that the test adds items to."""

    def __init__(self, site: LocalSite) -> None:
        self.site = site
        self.items: list[str] = []

    def add(self, slug: str, title: str, body: str) -> None:
        page = ARTICLE.format(title=title, body=body)
        (self.site.root / f"{slug}.html").write_text(page, encoding="utf-8")
        self.items.insert(
            0,
            f"<item><title>{title}</title><link>{self.site.url(slug + '.html')}</link>"
            f"<guid>{slug}</guid><description>{body}</description></item>",
        )
        (self.site.root / "news.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            "<title>Farm news</title><link>http://example.org/</link>"
            f"<description>test</description>{''.join(self.items)}</channel></rss>",
            encoding="utf-8",
        )


def config(project: Path, site: LocalSite) -> Path:
    path = project / "monitor.toml"
    path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
shutdown_timeout = "10s"

[[source]]
name = "Farm news"
url = "{site.url("news.xml")}"
kind = "feed"
every = "1s"

[web]
listen = "127.0.0.1:0"
""",
        encoding="utf-8",
    )
    return path


def wait_for(daemon: MonitorProcess, text: str, within: float = 150) -> str:
    """The first stderr line containing ``text`` within ``within`` seconds, however busy the
    log is (MonitorProcess.wait_for's timeout is per line, and polls log every second)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        line = daemon.next_line(left)
        if line is not None and text in line:
            return line
    raise AssertionError(f"no line with {text!r} within {within}s in:\n{''.join(daemon.log)}")


def status(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["--config", str(path), "status"]) == 0
    return capsys.readouterr().out


def rules_count(line: str) -> int:
    found = re.search(r"rules=(\d+)", line)
    assert found, line
    return int(found.group(1))


GOOD = '[[rule]]\nid = "quinoa"\ntopic = "Crops"\nquery = "quinoa"\n'
BROKEN = GOOD + '\n[[rule]]\nid = "barley"\ntopic = "Crops"\nquery = "barley OR"\n'
FIXED = GOOD + '\n[[rule]]\nid = "barley"\ntopic = "Crops"\nquery = "barley OR rye"\n'


def test_rule_edits_apply_to_the_next_poll_and_a_broken_file_keeps_its_last_good_version(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = Feed(site)
    feed.add("fair", "Regional fair opens", "The regional fair opened on Monday.")
    path = config(project, site)
    daemon = MonitorProcess(path)
    try:
        rules = rules_count(wait_for(daemon, "daemon.started"))
        stored = wait_for(daemon, "article.stored")
        assert "topics=Crops" not in stored

        # A new file with a new topic: loaded, and the next new article matches it.
        (project / "rules" / "crops.toml").write_text(GOOD, encoding="utf-8")
        assert rules_count(wait_for(daemon, "rules.loaded")) == rules + 1
        feed.add("quinoa-1", "Quinoa harvest in Kostanay", "Quinoa grew well this year.")
        assert "quinoa-1" in wait_for(daemon, "topics=Crops")

        # Broken: the error (file:line:col) is logged, and the last good version still runs.
        (project / "rules" / "crops.toml").write_text(BROKEN, encoding="utf-8")
        error = wait_for(daemon, "rules.error")
        assert "rules/crops.toml:9:17: expected a term after OR" in error
        assert 'kept="last good version (1 rules)"' in error
        loaded = wait_for(daemon, "rules.loaded")
        assert rules_count(loaded) == rules + 1
        assert "kept=rules/crops.toml" in loaded
        feed.add("quinoa-2", "Quinoa prices rise", "Quinoa buyers paid more.")
        assert "quinoa-2" in wait_for(daemon, "topics=Crops")

        shown = status(path, capsys)
        assert "rules/crops.toml: broken; its last good version runs (1 rules" in shown
        assert "rules/crops.toml:9:17: expected a term after OR" in shown
        assert re.search(r"\n +query = \"barley OR\"\n +\^", shown), shown
        assert "errors: 1" in shown

        # Fixed: both rules run, and the error is gone from the log's count and from status.
        (project / "rules" / "crops.toml").write_text(FIXED, encoding="utf-8")
        loaded = wait_for(daemon, "rules.loaded")
        assert rules_count(loaded) == rules + 2
        assert "errors=0" in loaded
        shown = status(path, capsys)
        assert "broken" not in shown
        assert f"rules: {rules + 2} on" in shown
        assert "errors: 0" in shown
        feed.add("rye", "Rye for the winter", "Rye was sown late.")
        assert "rye" in wait_for(daemon, "topics=Crops")

        # Deleted: its rules go.
        (project / "rules" / "crops.toml").unlink()
        assert rules_count(wait_for(daemon, "rules.loaded")) == rules
    finally:
        assert daemon.stop() == 0
