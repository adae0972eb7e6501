"""The whole pipeline through the `monitor` command: poll → store → feeds → digest e-mail.

A small site on 127.0.0.1 (tests/data/site, described in its README.md) with an RSS feed, an
Atom feed and a listing page; article pages whose menus and sidebars mention every topic; a
real SMTP server. Only what a user sees is asserted: stdout/stderr, exit status, the e-mail
received, the feed files.
"""

from __future__ import annotations

import json
import sys
from email.message import EmailMessage
from pathlib import Path

import feedparser
import pytest

from monitor.cli import main
from tests.servers import LocalSite, LocalSMTP

pytestmark = pytest.mark.timeout(90)


def write_config(project: Path, site: LocalSite, extra: str = "") -> Path:
    config = project / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
timeout = 5

[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"

[[source]]
name = "Test Atom"
url = "{site.url("feeds/atom.xml")}"

[[source]]
name = "Test Delegation"
url = "{site.url("listing.html")}"
kind = "page"
items = ".views-row"
link = "a"
title = "h3"
date = ".date"

[web]
listen = "127.0.0.1:0"
base_url = "http://monitor.test"
{extra}
""",
        encoding="utf-8",
    )
    return config


def smtp_section(smtp: LocalSMTP) -> str:
    return f"""
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "Press Monitor <monitor@monitor.test>"
"""


def poll_json(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    """Run `poll --once --json`; stderr is left in capsys for the caller."""
    status = main(["--config", str(config), "poll", "--once", "--json"])
    captured = capsys.readouterr()
    print(captured.err, end="", file=sys.stderr)
    return status, json.loads(captured.out.strip().splitlines()[-1])


def html_part(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def text_part(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_poll_matches_topics_in_article_bodies_not_in_page_chrome(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site)

    status, summary = poll_json(config, capsys)

    assert status == 0
    assert summary["sources_ok"] == 3
    assert summary["sources_failed"] == 0
    topics = summary["topics"]
    assert isinstance(topics, dict)
    assert set(topics) == {"Human rights", "Elections", "Death penalty", "Media freedom"}
    feed = feedparser.parse((project / "state/feeds/all.xml").read_bytes())
    assert not feed.bozo
    links = {entry.link for entry in feed.entries}
    assert site.url("articles/hr-dialogue.html") in links
    assert site.url("articles/ru-media.html") in links
    # Off-topic bodies inside chrome that names every topic never match.
    assert site.url("articles/trade-forum.html") not in links
    assert site.url("articles/aral-water.html") not in links


def test_feed_files_per_topic_carry_categories(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site)
    poll_json(config, capsys)

    feeds = project / "state" / "feeds"
    for slug in ("human-rights", "elections", "death-penalty", "media-freedom"):
        rss = feedparser.parse((feeds / f"{slug}.xml").read_bytes())
        atom = feedparser.parse((feeds / f"{slug}.atom").read_bytes())
        assert not rss.bozo
        assert not atom.bozo
        assert rss.entries
        assert len(rss.entries) == len(atom.entries)
    human = feedparser.parse((feeds / "human-rights.xml").read_bytes())
    entry = next(e for e in human.entries if e.link == site.url("articles/hr-dialogue.html"))
    assert "Human rights" in {tag.term for tag in entry.tags}


def test_second_poll_is_conditional_and_fetches_no_article_twice(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site)
    poll_json(config, capsys)

    status, summary = poll_json(config, capsys)

    assert status == 0
    assert summary["new_items"] == 0
    assert summary["new_articles"] == 0
    assert summary["matches"] == 0
    second = site.hits("feeds/rss.xml")[-1]
    assert second.headers.get("If-None-Match")
    assert len(site.hits("articles/hr-dialogue.html")) == 1
    assert len(site.hits("articles/elections-statement.html")) == 1


def test_digest_over_smtp_lists_matches_once_then_nothing(
    project: Path, site: LocalSite, smtp: LocalSMTP, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site, smtp_section(smtp))
    poll_json(config, capsys)
    args = ["--config", str(config)]
    assert (
        main(
            [*args, "subscribers", "add", "desk@example.org", "--topics", "Human rights,Elections"]
        )
        == 0
    )

    assert main([*args, "digest", "send", "--now"]) == 0

    [message] = smtp.wait_for(1)
    assert message["To"] == "desk@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Press-Monitor-Kind"] == "digest"
    html, text = html_part(message), text_part(message)
    assert site.url("articles/hr-dialogue.html") in html
    assert site.url("articles/elections-statement.html") in html
    assert site.url("articles/hr-dialogue.html") in text
    assert "<mark" in html
    # Not on the subscriber's topics, or on no topic at all.
    assert site.url("articles/death-penalty.html") not in html
    assert site.url("articles/trade-forum.html") not in html

    assert main([*args, "digest", "send", "--now"]) == 0
    assert "0 sent" in capsys.readouterr().out
    assert len(smtp.messages) == 1


def test_digest_without_smtp_lands_in_the_outbox_maildir(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site)
    poll_json(config, capsys)
    args = ["--config", str(config)]
    assert main([*args, "subscribers", "add", "desk@example.org"]) == 0

    assert main([*args, "digest", "send", "--now"]) == 0

    delivered = list((project / "state" / "outbox" / "new").iterdir())
    assert len(delivered) == 1
    assert b"hr-dialogue.html" in delivered[0].read_bytes()


def test_unreachable_source_fails_alone_with_its_name(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.route("feeds/atom.xml", status=500, body=b"boom")
    config = write_config(project, site)

    status = main(["--config", str(config), "poll", "--once"])

    captured = capsys.readouterr()
    assert status == 1
    assert 'source "Test Atom"' in captured.err
    assert "HTTP 500" in captured.err
    assert "2 sources ok, 1 failed" in captured.out


def test_malformed_feed_is_a_parse_error_naming_the_source(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.route(
        "feeds/rss.xml",
        body=b"<rss><channel><item><title>broken",
        headers={"Content-Type": "application/rss+xml"},
    )
    config = write_config(project, site)

    status, summary = poll_json(config, capsys)

    assert status == 1
    assert summary["sources_failed"] == 1
    failed = summary["failed"]
    assert isinstance(failed, dict)
    assert "Test RSS" in failed


def test_missing_article_page_keeps_the_feed_teaser(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, site)
    poll_json(config, capsys)

    status = main(["--config", str(config), "rules", "test", "observers", "--since", "3650d"])

    out = capsys.readouterr().out
    assert status == 0
    assert site.url("articles/missing.html") in out


def test_unknown_config_key_exits_2_naming_the_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "monitor.toml"
    config.write_text(
        '[monitor]\ntimezone = "Asia/Almaty"\n'
        '[[source]]\nname = "A"\nurl = "https://a.example/"\nevry = "1h"\n'
    )

    status = main(["--config", str(config), "poll", "--once"])

    err = capsys.readouterr().err
    assert status == 2
    assert 'source[1] "A": evry: unknown key (did you mean "every"?)' in err


def test_broken_rule_file_is_reported_and_other_rules_still_match(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "rules" / "broken.toml").write_text(
        '[[rule]]\nid = "broken"\nquery = "(torture OR"\n', encoding="utf-8"
    )
    config = write_config(project, site)

    status, summary = poll_json(config, capsys)

    assert status == 0
    assert "rules/broken.toml:3:" in capsys.readouterr().err
    topics = summary["topics"]
    assert isinstance(topics, dict)
    assert "Human rights" in topics
    assert main(["--config", str(config), "rules", "check"]) == 2


def test_immediate_rule_alerts_once_and_the_digest_still_lists_it(
    project: Path, site: LocalSite, smtp: LocalSMTP, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "rules" / "alerts.toml").write_text(
        '[[rule]]\nid = "dp-now"\ntopic = "Death penalty"\n'
        'query = \'"death penalty" AND Kazakhstan\'\nalert = "immediate"\n',
        encoding="utf-8",
    )
    config = write_config(project, site, smtp_section(smtp))
    args = ["--config", str(config)]
    assert main([*args, "subscribers", "add", "desk@example.org", "--topics", "Death penalty"]) == 0

    poll_json(config, capsys)

    [alert] = smtp.wait_for(1)
    assert alert["X-Press-Monitor-Kind"] == "alert"
    assert site.url("articles/death-penalty.html") in html_part(alert)
    poll_json(config, capsys)
    assert main([*args, "digest", "send", "--now"]) == 0
    messages = smtp.wait_for(2)
    assert [m["X-Press-Monitor-Kind"] for m in messages] == ["alert", "digest"]
    assert site.url("articles/death-penalty.html") in html_part(messages[1])


def test_a_rule_that_can_never_match_is_warned_about_when_polling(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "rules" / "never.toml").write_text(
        '[[rule]]\nid = "never"\nquery = "torture -torture"\n', encoding="utf-8"
    )
    config = write_config(project, site)

    status, _ = poll_json(config, capsys)

    err = capsys.readouterr().err
    assert status == 0
    assert "rules.warning" in err
    assert "never.toml" in err
