"""`monitor rules test ID --backfill` (#6): a new rule applied to the stored articles, while
`monitor run` runs; its matches reach the next digest and the feeds, never an alert, never
twice. And "why this alert": a real poll's digest says what matched."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest

from monitor.cli import main
from tests.e2e.test_rules_reload import wait_for
from tests.servers import LocalSite, LocalSMTP, MonitorProcess

pytestmark = [pytest.mark.timeout(480), pytest.mark.slow]

FREIGHT = (
    '[[rule]]\nid = "freight"\ntopic = "Logistics"\n'
    'query = \'"rail freight" AND customs\'\nalert = "immediate"\n'
)


def write_config(project: Path, site: LocalSite, smtp: LocalSMTP) -> Path:
    path = project / "monitor.toml"
    path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
shutdown_timeout = "10s"

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
every = "1s"

[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "Press Monitor <monitor@monitor.test>"

[web]
listen = "127.0.0.1:0"
base_url = "http://monitor.test"
""",
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_backfill_while_running_files_matches_for_the_digest_once_and_never_alerts(
    project: Path, site: LocalSite, smtp: LocalSMTP, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site, smtp)
    args = ("--config", str(config))
    assert run(capsys, *args, "subscribers", "add", "desk@example.org")[0] == 0
    trade = site.url("articles/trade-forum.html")

    daemon = MonitorProcess(config)
    try:
        wait_for(daemon, "poll.done")
        (project / "rules" / "freight.toml").write_text(FREIGHT, encoding="utf-8")
        # Written while the daemon runs (and reloads the rules): the lock is shared politely.
        status, out, _ = run(capsys, *args, "rules", "test", "freight", "--backfill")
        assert status == 0
        assert trade in out
        assert 'Matched: "rail freight" AND customs' in out
        assert "1 matching articles of" in out
        assert "Test RSS: 1" in out
        assert "per topic; Logistics: 1" in out
        assert "backfill: 1 new matches stored; Logistics: 1; 0 skipped" in out
        wait_for(daemon, "rules.loaded")
        wait_for(daemon, "poll.not_modified")  # still polling after the backfill
    finally:
        assert daemon.stop() == 0
    assert not any("store_error" in line for line in daemon.log), "".join(daemon.log)

    # Run again: nothing is stored twice.
    status, out, _ = run(capsys, *args, "rules", "test", "freight", "--backfill")
    assert "backfill: 0 new matches stored; 1 skipped" in out

    # The feed for the new topic lists the article.
    parsed = feedparser.parse((project / "state" / "feeds" / "logistics.xml").read_bytes())
    assert not parsed.bozo
    assert [entry.link for entry in parsed.entries] == [trade]
    assert "Matched: " in parsed.entries[0].summary

    # A restart sends the pending immediate alerts at once: the backfilled match is not one.
    daemon = MonitorProcess(config)
    try:
        wait_for(daemon, "daemon.started")
        wait_for(daemon, "poll.not_modified")
    finally:
        assert daemon.stop() == 0
    assert smtp.messages == []

    # The next digest lists it under its topic, says why, and lists the polled articles with
    # the clause their rules matched on.
    assert run(capsys, *args, "digest", "send", "--now")[0] == 0
    [digest] = smtp.wait_for(1)
    assert digest["X-Press-Monitor-Kind"] == "digest"
    text = digest.get_body(("plain",))
    assert text is not None
    body = text.get_content()  # type: ignore[attr-defined]
    assert "== Logistics (1) ==" in body
    assert 'Matched: "rail freight" AND customs' in body
    assert site.url("articles/hr-dialogue.html") in body
    assert body.count("Matched: ") >= 2


def test_backfill_needs_a_rule_id_not_a_query(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "monitor.toml"
    status, _, err = run(capsys, "--config", str(config), "rules", "test", "freight", "--backfill")
    assert status == 2
    assert '--backfill: "freight" is not the id of a rule in' in err
