"""notify/channels.py and the channels of monitor.toml: config errors with key paths, URLs
checked by apprise at start-up, secrets kept out of labels and errors, the post's content."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ChannelConfig, load
from monitor.errors import ConfigError, DeliveryError
from monitor.models import Article, DigestEntry, Item, Match
from monitor.notify.channels import MAX_ARTICLES, Post, compose_post, open_channels
from tests.servers import REPO, LocalSite

# The first open_channels in a process loads apprise's ~100 plugins: seconds on a busy machine.
pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TOKEN = "123456789:ABCdefGHIjklMNOpqrSTUvwxYZ123456789"


def write(tmp_path: Path, channels: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f'[[digest]]\nname = "daily"\nchannels = {channels}\n', encoding="utf-8")
    return path


def entry(article_id: int, title: str, topics: tuple[str, ...], **kw: object) -> DigestEntry:
    return DigestEntry(
        article_id=article_id,
        url=f"https://news.example.org/{article_id}",
        title=title,
        source=str(kw.get("source", "Agency")),
        published=NOW - timedelta(hours=article_id),
        found=NOW,
        topics=topics,
        text="",
        also_published_by=tuple(kw.get("also", ())),  # type: ignore[arg-type]
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- monitor.toml ------------------------------------------------------------------------------


def test_channels_load_as_urls_or_tables_with_topics_format_and_alerts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '["json://127.0.0.1:9/hook",'
        ' {url = "tgram://${TG_TOKEN}/-100123", topics = ["Elections"], format = "text",'
        " alerts = false}]",
    )
    (digest,) = load(path).digests
    first, second = digest.channels
    assert (first.where, first.url, first.topics, first.format, first.alerts) == (
        "digest[1].channels[1]",
        "json://127.0.0.1:9/hook",
        (),
        "markdown",
        True,
    )
    assert (second.topics, second.format, second.alerts) == (("Elections",), "text", False)
    assert "tgram" not in repr(second)  # the URL (a token, maybe) stays out of repr


def test_channel_shape_errors_name_the_key_path_and_never_quote_the_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '["secret-token-not-a-url", {url = "json://h/p", formt = "text"}, 3,'
        ' {url = "json://h/q", format = "html"}, {url = "json://h/r", topics = "Elections"},'
        ' "json://${BROKEN", "json://h/p"]',
    )
    with pytest.raises(ConfigError) as caught:
        load(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: digest[1].channels") for line in lines)
    text = "\n".join(lines)
    assert 'digest[1].channels[1]: not a URL: expected "scheme://…"' in text
    assert 'digest[1].channels[2].formt: unknown key (did you mean "format"?)' in text
    assert "digest[1].channels[3]: expected an apprise URL or a table; got a number" in text
    assert 'digest[1].channels[4].format: expected one of markdown, text; got "html"' in text
    assert "digest[1].channels[5].topics: expected a list of topics" in text
    assert "digest[1].channels[6]: expected ${NAME}" in text
    assert "digest[1].channels[7]: the same URL as another of this digest's channels" in text
    assert "secret-token" not in text


def test_channels_without_apprise_installed_fail_at_load_with_the_install_command(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '["json://127.0.0.1:9/hook"]')
    # A Python where `import apprise` finds nothing (None in sys.modules blocks the import).
    code = (
        "import sys; sys.modules['apprise'] = None\n"
        "from monitor.cli import main\n"
        f"sys.exit(main(['--config', {str(path)!r}, 'digest', 'send', '--now']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 2
    assert (
        "digest[1].channels: channels need apprise, not installed:"
        " pip install 'press-monitor[channels]'"
    ) in done.stderr
    assert "Traceback" not in done.stderr


def test_a_config_without_channels_never_imports_apprise(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[[digest]]\nname = "daily"\n', encoding="utf-8")
    code = (
        "import sys\nfrom monitor import config, notify\n"
        f"notify.open_channels(config.load({str(path)!r}))\n"
        "print('apprise' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == "False"


# -- open_channels: apprise checks each URL at start-up ------------------------------------


def test_an_unknown_scheme_or_a_url_apprise_cannot_use_stops_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, '["nosuchservice://host/x", "tgram://short/1", "json://127.0.0.1/ok"]')
    with pytest.raises(ConfigError) as caught:
        open_channels(load(path))
    text = str(caught.value)
    assert f'{path}: digest[1].channels[1]: unknown scheme "nosuchservice://"' in text
    assert f"{path}: digest[1].channels[2]: apprise cannot use this tgram:// URL" in text
    assert "channels[3]" not in text


def test_a_services_own_webhook_url_is_taken_and_shown_redacted(tmp_path: Path) -> None:
    native = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    (slack,) = open_channels(load(write(tmp_path, json.dumps([native]))))
    assert slack.label.startswith("slack://T...2/A...D/T...Q")
    with pytest.raises(ConfigError, match=r'channels\[1\]: unknown scheme "https://"'):
        open_channels(load(write(tmp_path, '["https://example.org/not-a-service"]')))


def test_an_unset_environment_variable_is_named_with_the_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PM_TEST_TG_TOKEN", raising=False)
    path = write(tmp_path, '["json://127.0.0.1/ok", "tgram://${PM_TEST_TG_TOKEN}/-100123"]')
    with pytest.raises(ConfigError) as caught:
        open_channels(load(path))
    assert str(caught.value) == (
        f"{path}: digest[1].channels[2]: the environment variable PM_TEST_TG_TOKEN is not set"
    )


def test_labels_hide_tokens_and_passwords_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_TEST_TG_TOKEN", TOKEN)
    monkeypatch.setenv("PM_TEST_HOOK_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("PM_TEST_HOOK_PATH", "T0KEN-in-the-path-8f3a9c")
    path = write(
        tmp_path,
        '["tgram://${PM_TEST_TG_TOKEN}/-100123",'
        ' "json://monitor:${PM_TEST_HOOK_PASSWORD}@127.0.0.1:8/hook?x=1",'
        ' "json://127.0.0.1:8/hooks/${PM_TEST_HOOK_PATH}"]',
    )
    telegram, hook, in_path = open_channels(load(path))
    # apprise masks what it knows to be secret; a value from the environment is masked too.
    assert in_path.label == "json://127.0.0.1:8/hooks/***"
    assert TOKEN not in telegram.label
    assert telegram.label.startswith("tgram://")
    assert "-100123" in telegram.label
    assert hook.label == "json://monitor:****@127.0.0.1:8/hook"
    # The identity is the URL as written: a new token value keeps the channel's cursors.
    monkeypatch.setenv("PM_TEST_TG_TOKEN", TOKEN.replace("1", "2"))
    assert open_channels(load(path))[0].key == telegram.key


def test_a_refused_connection_is_a_delivery_error_naming_the_label_not_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_TEST_HOOK_PASSWORD", "hunter2-very-secret")
    url = f"json://monitor:${{PM_TEST_HOOK_PASSWORD}}@127.0.0.1:{closed_port()}/hook"
    (channel,) = open_channels(load(write(tmp_path, json.dumps([url]))))
    with pytest.raises(DeliveryError) as caught:
        channel.send(Post("title", "body", "text"))
    text = str(caught.value)
    assert text.startswith(f"{channel.label}: not delivered: ")
    assert "hunter2" not in text


def test_send_posts_title_and_body_to_a_json_webhook(tmp_path: Path, site: LocalSite) -> None:
    site.route("hook", status=200, body=b"ok")
    url = site.url("hook").replace("http://", "json://")
    (channel,) = open_channels(load(write(tmp_path, json.dumps([url]))))
    channel.send(Post("Press Monitor daily: 1 new article", "- [A](https://a.example)", "text"))
    (request,) = site.hits("hook")
    sent = json.loads(request.body)
    assert (sent["title"], sent["message"]) == (
        "Press Monitor daily: 1 new article",
        "- [A](https://a.example)",
    )


@pytest.mark.parametrize(("overflow", "posts"), [("", 3), ("?overflow=upstream", 1)])
def test_a_post_longer_than_the_service_takes_is_split_unless_the_url_says_otherwise(
    tmp_path: Path, site: LocalSite, overflow: str, posts: int
) -> None:
    token = "abcdefghijklmnopqrstuvwxyz"
    site.route(f"hooks/{token}", status=200, body=b"ok")
    url = f"mmost://127.0.0.1:{site.port}/{token}{overflow}"  # Mattermost: 4,000 characters
    (channel,) = open_channels(load(write(tmp_path, json.dumps([url]))))
    body = "\n".join(f"- [Article {i}](https://news.example.org/{i}) — Agency" for i in range(180))
    assert 8000 < len(body) < 12000
    channel.send(Post("Press Monitor daily: 180 new articles", body, "markdown"))
    assert len(site.hits(f"hooks/{token}")) == posts


# -- compose_post (pure) -----------------------------------------------------------------------


def test_a_digest_post_counts_per_topic_and_links_each_article_once() -> None:
    channel = ChannelConfig("digest[1].channels[1]", "json://h/p")
    entries = [
        entry(1, "Court frees [rights] defender", ("Human rights",), also=("Radio Azattyq",)),
        entry(2, "Observers report on the vote", ("Elections", "Human rights")),
        entry(3, "Turnout was 60%", ("Elections",), source="Vlast.kz"),
    ]
    post = compose_post("digest", "daily", channel, entries, "https://monitor.example.org")
    assert post.title == "Press Monitor daily: 3 new articles: Elections (2), Human rights (2)"
    assert post.format == "markdown"
    assert post.body.splitlines() == [
        "**Elections** (2)",
        "- [Observers report on the vote](https://news.example.org/2) — Agency",
        "- [Turnout was 60%](https://news.example.org/3) — Vlast\\.kz",
        "",
        "**Human rights** (2)",
        "- [Court frees \\[rights\\] defender](https://news.example.org/1) — Agency"
        " \\(also: Radio Azattyq\\)",
    ]


def test_a_text_post_follows_its_topics_only() -> None:
    channel = ChannelConfig("digest[1].channels[1]", "json://h/p", ("Elections",), "text")
    entries = [
        entry(1, "Court frees defender", ("Human rights",)),
        entry(2, "Vote", ("Elections",)),
    ]
    post = compose_post("digest", "daily", channel, entries, "https://m.example.org")
    assert post.title == "Press Monitor daily: 1 new article: Elections (1)"
    assert post.body == "Elections (1)\n- Vote — Agency\n  https://news.example.org/2"


def test_an_alert_post_is_titled_like_the_alert_mail() -> None:
    channel = ChannelConfig("digest[1].channels[1]", "json://h/p")
    post = compose_post(
        "alert", "daily", channel, [entry(1, "Death sentence", ("Death penalty",))], ""
    )
    assert post.title == "Press Monitor Alert: Death sentence"


def test_a_long_digest_lists_the_first_articles_and_links_the_rest() -> None:
    channel = ChannelConfig("digest[1].channels[1]", "json://h/p", format="text")
    entries = [entry(i, f"Article {i}", ("Elections",)) for i in range(1, MAX_ARTICLES + 6)]
    post = compose_post("digest", "daily", channel, entries, "https://m.example.org")
    assert post.body.count("https://news.example.org/") == MAX_ARTICLES
    assert post.body.endswith("… and 5 more: https://m.example.org")


def test_a_post_survives_the_outbox_round_trip() -> None:
    post = Post("Title «ü»", "- line\n- line", "markdown")
    assert Post.from_bytes(post.to_bytes()) == post


# -- the store's channel cursors ----------------------------------------------------------------


def stored(store: Any, url: str, topic: str, alert: str, found: datetime) -> None:
    article = Article(url=url, title=url.rsplit("/", 1)[-1], text="Text.", source="Agency")
    match = Match(rule_id=topic.lower(), topic=topic, alert=alert)  # type: ignore[arg-type]
    store.save_article("Agency", Item(url=url), article, [match], found)


def test_a_new_channel_is_alerted_only_what_is_found_after_it_was_added(store: Any) -> None:
    stored(store, "https://n.example.org/before", "Death penalty", "immediate", NOW)
    channel = store.register_channel("daily", "key", "json://h/p", NOW)
    assert store.register_channel("daily", "key", "json://h/p", NOW) == channel  # known again
    assert store.channel_alert_entries(channel, ())[0] == []

    stored(store, "https://n.example.org/after", "Death penalty", "immediate", NOW)
    stored(store, "https://n.example.org/vote", "Elections", "immediate", NOW)
    entries, cursor = store.channel_alert_entries(channel, ("Death penalty",))
    assert [e.url for e in entries] == ["https://n.example.org/after"]
    store.begin_channel_delivery(
        channel, "alert", "<a@x>", [entries[0].article_id], cursor, NOW, b"{}"
    )
    # Recorded, not yet finished: still never alerted again (at most once).
    assert store.channel_alert_entries(channel, ("Death penalty",))[0] == []


def test_a_channel_digest_moves_its_cursor_only_when_delivered(store: Any) -> None:
    stored(store, "https://n.example.org/old", "Elections", "digest", NOW - timedelta(days=8))
    stored(store, "https://n.example.org/new", "Elections", "digest", NOW - timedelta(days=1))
    channel = store.register_channel("daily", "key", "json://h/p", NOW)
    entries, cursor = store.channel_digest_entries(channel, (), NOW)
    assert [e.url for e in entries] == ["https://n.example.org/new"]  # a first digest: 7 days

    ids = [e.article_id for e in entries]
    failed = store.begin_channel_delivery(channel, "digest", "<d@x>", ids, cursor, NOW, b"{}")
    store.finish_delivery(failed, NOW, "HTTP 500", NOW + timedelta(minutes=1))
    assert [e.url for e in store.channel_digest_entries(channel, (), NOW)[0]] == [
        "https://n.example.org/new"
    ]
    assert store.drop_channel_retries(channel, "superseded") == 1
    sent = store.begin_channel_delivery(channel, "digest", "<d2@x>", ids, cursor, NOW, b"{}")
    store.finish_delivery(sent, NOW, None)
    assert store.channel_digest_entries(channel, (), NOW)[0] == []
    assert store.last_delivery() == (NOW, "json://h/p", "digest")
