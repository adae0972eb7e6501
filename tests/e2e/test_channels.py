"""Other channels (apprise) end to end, against a real webhook on loopback: LocalSite records
each POST that apprise's json:// sends. Digests by `monitor digest send --now` and by the
daemon, immediate alerts, a failing endpoint retried and delivered once, a refused one that
never holds up e-mail, and posts cut off by a crash."""

from __future__ import annotations

import json
import mailbox
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import cli, notify, pipeline, runtime
from monitor.config import Config, load
from monitor.models import Article, Item, Match
from monitor.runtime import Services
from monitor.store import open_store
from tests.servers import LocalSite, MonitorProcess

NOW = datetime.now(UTC)
SECRET = "s3cret-webhook-password"

pytestmark = pytest.mark.timeout(120)  # each command opens apprise's ~100 plugins


def hook(site: LocalSite, path: str = "hook") -> str:
    """The apprise URL of a JSON webhook on LocalSite, with a password from the environment."""
    return f"json://monitor:${{PM_E2E_HOOK_PASSWORD}}@127.0.0.1:{site.port}/{path}"


def write_config(project: Path, channels: list[Any], extra: str = "") -> Path:
    """A monitor.toml with one digest and these channels; no rules (tests store matches)."""
    for rules in (project / "rules").glob("*.toml"):
        rules.unlink()
    path = project / "monitor.toml"
    path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"
{extra}
[[digest]]
name = "daily"
at = "08:00"
channels = [{", ".join(map(toml_value, channels))}]

[web]
enabled = false
base_url = "https://monitor.example.org"
""",
        encoding="utf-8",
    )
    return path


def toml_value(value: Any) -> str:
    """A channel as TOML: a string, or an inline table (JSON writes strings, lists and
    booleans as TOML does)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def save(project: Path, url: str, title: str, topic: str, alert: str = "digest") -> None:
    """An article matched on ``topic``, stored as a poll would store it."""
    store = open_store(project / "state" / "monitor.db")
    try:
        article = Article(url=url, title=title, text="Text.", source="Agency")
        match = Match(rule_id=topic.lower(), topic=topic, alert=alert)  # type: ignore[arg-type]
        store.save_article("Agency", Item(url=url), article, [match], datetime.now(UTC))
    finally:
        store.close()


def posts(site: LocalSite, path: str = "hook") -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in site.hits(path)]


def send_now(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["--config", str(path), "digest", "send", "--now"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _hook_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_E2E_HOOK_PASSWORD", SECRET)


def test_digest_send_posts_once_and_nothing_when_nothing_is_new(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.route("hook", status=200, body=b"ok")
    config = write_config(project, [hook(site)])
    save(project, "https://news.example.org/court", "Court frees rights defender", "Human rights")
    save(project, "https://news.example.org/vote", "Observers report on the vote", "Elections")

    code, out, _ = send_now(config, capsys)
    assert code == 0
    assert "channels: 1 posted, 0 failed" in out
    (post,) = posts(site)
    assert post["title"] == "Press Monitor daily: 2 new articles: Elections (1), Human rights (1)"
    assert (
        "[Court frees rights defender](https://news.example.org/court) — Agency" in post["message"]
    )
    assert "**Elections** (1)" in post["message"]
    assert "Basic " in site.hits("hook")[0].headers["Authorization"]  # the password was sent

    code, out, _ = send_now(config, capsys)
    assert (code, len(site.hits("hook"))) == (0, 1)
    assert "channels: 0 posted, 0 failed" in out

    save(project, "https://news.example.org/later", "A later article", "Elections")
    assert send_now(config, capsys)[0] == 0
    later = posts(site)[1]
    assert later["title"] == "Press Monitor daily: 1 new article: Elections (1)"
    assert "court" not in later["message"]


def test_a_refused_channel_never_holds_up_the_mail_and_its_url_stays_redacted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"json://monitor:${{PM_E2E_HOOK_PASSWORD}}@127.0.0.1:{port}/hook"
    config = write_config(project, [url])
    save(project, "https://news.example.org/court", "Court frees rights defender", "Human rights")
    assert cli.main(["--config", str(config), "subscribers", "add", "reader@example.org"]) == 0

    code, out, err = send_now(config, capsys)
    assert code == 1
    assert "1 sent, 0 failed" in out
    assert "channels: 0 posted, 1 failed" in out
    assert f"failed: json://monitor:****@127.0.0.1:{port}/hook: not delivered:" in err
    outbox = mailbox.Maildir(project / "state" / "outbox", create=False)
    assert [m["To"] for m in outbox] == ["reader@example.org"]
    (logged,) = [line for line in err.splitlines() if "digest.failed" in line]
    assert f"to=json://monitor:****@127.0.0.1:{port}/hook" in logged
    assert "retry_at=20" in logged  # retried later
    assert cli.main(["--config", str(config), "status"]) == 0
    shown = capsys.readouterr()
    assert f"digest to json://monitor:****@127.0.0.1:{port}/hook: 1 attempt(s)" in shown.out
    assert SECRET not in out + err + shown.out + shown.err


@pytest.fixture
async def opened(project: Path, site: LocalSite) -> AsyncIterator[Services]:
    site.route("hook", status=500, body=b"busy")
    config: Config = load(write_config(project, [hook(site)]))
    async with runtime.open_services(config) as services:
        yield services


async def test_a_failing_endpoint_is_retried_after_the_backoff_then_delivered_once(
    opened: Services, project: Path, site: LocalSite
) -> None:
    save(project, "https://news.example.org/court", "Court frees rights defender", "Human rights")
    daily = opened.config.digests[0]

    result = await pipeline.send_digest(opened, daily, NOW)
    assert (result.posted, result.post_failed) == (0, 1)
    assert "HTTP Error 500" in result.errors[0] or "500" in result.errors[0]
    assert len(site.hits("hook")) == 1

    site.route("hook", status=200, body=b"ok")
    assert await pipeline.retry_deliveries(opened, NOW + timedelta(seconds=30)) == 0
    assert await pipeline.retry_deliveries(opened, NOW + timedelta(minutes=1)) == 1
    first, second = posts(site)
    assert first == second  # the same post, kept in the outbox
    # Delivered once: later retries and the next digest find nothing left to post.
    assert await pipeline.retry_deliveries(opened, NOW + timedelta(hours=3)) == 0
    later = await pipeline.send_digest(opened, daily, NOW + timedelta(days=1))
    assert (later.posted, later.post_failed) == (0, 0)
    assert len(site.hits("hook")) == 2


async def test_a_failed_digest_post_is_superseded_by_the_next_digest_not_posted_twice(
    opened: Services, project: Path, site: LocalSite
) -> None:
    save(project, "https://news.example.org/court", "Court frees rights defender", "Human rights")
    daily = opened.config.digests[0]
    assert (await pipeline.send_digest(opened, daily, NOW)).post_failed == 1

    site.route("hook", status=200, body=b"ok")
    save(project, "https://news.example.org/vote", "Observers report on the vote", "Elections")
    assert (await pipeline.send_digest(opened, daily, NOW + timedelta(hours=1))).posted == 1
    assert await pipeline.retry_deliveries(opened, NOW + timedelta(hours=3)) == 0
    (_, post) = posts(site)
    assert "court" in post["message"]
    assert "vote" in post["message"]


async def test_an_interrupted_digest_post_is_resent_once_and_an_interrupted_alert_never(
    opened: Services, project: Path, site: LocalSite
) -> None:
    site.route("hook", status=200, body=b"ok")
    db, store = opened.db, opened.store
    save(
        project,
        "https://news.example.org/dp",
        "Death sentence upheld",
        "Death penalty",
        "immediate",
    )
    ((channel_id, channel),) = opened.channels.items()
    # A crash right after begin: both posts recorded 'sending', neither finished.
    entries, cursor = await db(store.channel_digest_entries, channel_id, (), NOW)
    digest = notify.compose_post("digest", "daily", channel.config, entries, "")
    ids = [e.article_id for e in entries]
    args = (ids, cursor, NOW, digest.to_bytes())
    await db(store.begin_channel_delivery, channel_id, "digest", "<d@x>", *args)
    alerts, cursor = await db(store.channel_alert_entries, channel_id, ())
    alert = notify.compose_post("alert", "daily", channel.config, alerts, "")
    args = (ids, cursor, NOW, alert.to_bytes())
    await db(store.begin_channel_delivery, channel_id, "alert", "<a@x>", *args)

    assert await pipeline.recover_deliveries(opened, NOW) == 1
    assert await pipeline.retry_deliveries(opened, NOW) == 1
    assert [p["title"] for p in posts(site)] == [digest.title]
    # Neither comes again: not by the alerts, not by the next digest.
    await pipeline.send_alerts(opened, NOW)
    assert (await pipeline.send_digest(opened, opened.config.digests[0], NOW)).posted == 0
    assert len(site.hits("hook")) == 1


async def test_immediate_alerts_reach_the_channels_following_the_topic_once(
    project: Path, site: LocalSite
) -> None:
    for path in ("death", "elections", "quiet"):
        site.route(path, status=200, body=b"ok")
    channels = [
        {"url": hook(site, "death"), "topics": ["Death penalty"], "format": "text"},
        {"url": hook(site, "elections"), "topics": ["Elections"]},
        {"url": hook(site, "quiet"), "alerts": False},
    ]
    config = load(write_config(project, channels))
    async with runtime.open_services(config) as services:
        url = "https://news.example.org/dp"
        save(project, url, "Death sentence upheld", "Death penalty", "immediate")
        await pipeline.send_alerts(services, NOW)
        await pipeline.send_alerts(services, NOW + timedelta(minutes=1))

    (alert,) = posts(site, "death")
    assert alert["title"] == "Press Monitor Alert: Death sentence upheld"
    assert alert["message"] == f"Death penalty (1)\n- Death sentence upheld — Agency\n  {url}"
    assert posts(site, "elections") == posts(site, "quiet") == []


@pytest.mark.slow
@pytest.mark.timeout(300)  # a minute for the cron, start-up on a busy machine
def test_the_daemon_posts_alerts_at_once_and_the_digest_on_schedule(
    project: Path, site: LocalSite
) -> None:
    site.route("hook", status=200, body=b"ok")
    source = f"""
[[source]]
name = "Test RSS"
url = "{site.url("feeds/rss.xml")}"
kind = "feed"
every = "1h"
"""
    config = write_config(project, [hook(site)], extra=source)
    (project / "rules" / "torture.toml").write_text(
        '[[rule]]\nid = "torture"\ntopic = "Human rights"\nquery = "torture"\n'
        'alert = "immediate"\n',
        encoding="utf-8",
    )
    # Every minute: the next run is at most a minute away.
    text = config.read_text(encoding="utf-8").replace('at = "08:00"', 'cron = "* * * * *"')
    config.write_text(text, encoding="utf-8")

    daemon = MonitorProcess(config)
    try:
        # In either order: a digest run may fall between storing the match and alerting it.
        waiting = {"channel.alert.posted", "channel.digest.posted"}
        while waiting:
            line = daemon.next_line(timeout=150)
            assert line is not None, f"still waiting for {waiting} in:\n{''.join(daemon.log)}"
            waiting -= {name for name in waiting if name in line}
    finally:
        assert daemon.stop() == 0
    (alert,) = [p for p in posts(site) if "Alert" in p["title"]]
    (digest,) = [p for p in posts(site) if "Alert" not in p["title"]]
    assert alert["title"].startswith("Press Monitor Alert: EU raises political prisoners")
    assert digest["title"] == "Press Monitor daily: 1 new article: Human rights (1)"
    assert "/articles/hr-dialogue.html" in digest["message"]
    assert SECRET not in "".join(daemon.log)


def test_channels_test_posts_to_each_channel_and_names_the_one_that_failed(
    project: Path, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.route("hook", status=200, body=b"ok")
    site.route("down", status=503, body=b"down")
    config = write_config(project, [hook(site), {"url": hook(site, "down"), "topics": ["A"]}])

    assert cli.main(["--config", str(config), "channels", "test"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"daily: json://monitor:****@127.0.0.1:{site.port}/hook: posted"
    assert out[1].startswith(f"daily: json://monitor:****@127.0.0.1:{site.port}/down: not deliv")
    (post,) = posts(site)
    assert post["title"] == "Press Monitor: test of the daily digest's channel"
    # Nothing recorded: the first digest is still to come, with nothing in it yet.
    assert send_now(config, capsys)[1].endswith("channels: 0 posted, 0 failed\n")


def test_a_channel_apprise_cannot_use_stops_the_command_with_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(project, ["json://127.0.0.1/ok", "nosuchservice://x/y"])
    assert cli.main(["--config", str(config), "digest", "send", "--now"]) == 2
    err = capsys.readouterr().err
    assert f'{config}: digest[1].channels[2]: unknown scheme "nosuchservice://"' in err
