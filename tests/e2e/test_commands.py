"""The commands a new user runs first: init, demo, rules check, status, extract, sources."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import feedparser
import pytest

from monitor.cli import main
from tests.servers import LocalSite

pytestmark = pytest.mark.timeout(90)


def test_init_writes_a_working_starter_installation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "desk"

    assert main(["init", str(target)]) == 0

    assert (target / "monitor.toml").is_file()
    assert (target / "state").is_dir()
    assert sorted(p.name for p in (target / "templates").iterdir())
    config = str(target / "monitor.toml")
    assert main(["--config", config, "rules", "check"]) == 0
    out = capsys.readouterr().out
    assert "on 4 topics, 0 errors" in out
    assert main(["init", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_demo_runs_the_whole_pipeline_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["demo", "--dir", str(tmp_path / "demo")])

    out = capsys.readouterr().out
    assert status == 0
    for topic in ("Human rights", "Elections", "Death penalty", "Media freedom"):
        assert f"  {topic}: " in out
    state = tmp_path / "demo" / "state"
    [message] = list(mailbox.Maildir(state / "outbox", create=False))
    assert message["X-Press-Monitor-Kind"] == "digest"
    feed = feedparser.parse((state / "feeds" / "all.xml").read_bytes())
    assert not feed.bozo
    assert len(feed.entries) >= 4


def test_extract_prints_the_article_as_json(
    site: LocalSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "--config",
            str(tmp_path / "none.toml"),
            "extract",
            site.url("articles/hr-dialogue.html"),
            "--json",
        ]
    )

    article = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0
    assert article["url"] == site.url("articles/hr-dialogue.html")
    assert article["language"] == "en"
    assert article["published"].startswith("2026-11-19T10:00:00+05:00")
    assert "Related articles" not in article["text"]


def test_sources_check_lists_the_items_of_a_feed(
    site: LocalSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["--config", str(tmp_path / "none.toml"), "sources", "check", site.url("feeds/rss.xml")]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "feed, 3 items" in out
    assert site.url("articles/hr-dialogue.html") in out


def test_status_and_sources_after_a_poll(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "monitor.toml"
    config.write_text(
        f'[monitor]\nmax_age = "0"\n'
        f'[[source]]\nname = "Test RSS"\nurl = "{site.url("feeds/rss.xml")}"\n'
        f'[[source]]\nname = "Gone"\nurl = "{site.url("nothing.xml")}"\n',
        encoding="utf-8",
    )
    args = ["--config", str(config)]
    assert main([*args, "poll", "--once"]) == 1
    capsys.readouterr()

    assert main([*args, "sources"]) == 0
    rows = capsys.readouterr().out.splitlines()
    gone = next(row for row in rows if row.startswith("Gone\t"))
    assert "HTTP 404" in gone
    assert main([*args, "status"]) == 0
    assert "matches today:" in capsys.readouterr().out


def test_subscribing_to_an_unknown_topic_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(project / "monitor.toml")]

    assert main([*args, "subscribers", "add", "a@example.org", "--topics", "Weather"]) == 2
    assert "no rule has the topic 'Weather'" in capsys.readouterr().err
    assert main([*args, "subscribers", "add", "not-an-address"]) == 2


def test_extract_json_is_the_record_the_pipeline_stores_with_teaser_flag_and_reason(
    site: LocalSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor import clean

    saved = tmp_path / "saved.html"
    saved.write_bytes((site.root / "articles/hr-dialogue.html").read_bytes())
    empty = tmp_path / "empty.html"
    empty.write_text("<html><head><title>x</title></head><body></body></html>", "utf-8")
    args = ["--config", str(tmp_path / "none.toml"), "extract"]

    assert main([*args, str(saved), "--json"]) == 0
    good = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*args, str(empty), "--json"]) == 0
    bad = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    record = clean.extract(saved.read_bytes())
    assert good["text"] == record.text
    assert good["title"] == record.title
    assert good["teaser_only"] is False
    assert good["reason"] == ""
    assert bad["text"] == ""
    assert bad["teaser_only"] is False
    assert bad["reason"] == clean.extract(empty.read_bytes()).reason != ""
