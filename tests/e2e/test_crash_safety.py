"""kill -9 at random moments: nothing lost, nothing stored or mailed twice (issue #8).

The fault-injection run: a LocalSite with several feeds that gain items between runs, and a
LocalSMTP. `monitor run` is started and killed with SIGKILL after a random number of its log
lines (so at random points: start-up, mid-fetch, mid-write, mid-alert), and now and then
`monitor digest send --now` is killed the moment the SMTP server has accepted a message
(before the sender can record it as sent). Finally a run is left to finish and a digest sent.
The outcome is compared with a clean run on a fresh state directory over the same site.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from monitor import cli
from tests.servers import LocalSite, LocalSMTP, MonitorProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FEEDS = 4
SEED = 8
DAEMON_KILLS = 12
DIGEST_KILLS = 4

TOPICS = [
    # (title words, body sentence): death penalty is an immediate rule; elections a digest one.
    ("death penalty", "The court in Almaty discussed the death penalty in Kazakhstan again."),
    ("elections", "Observers said the parliamentary elections in Kazakhstan were orderly."),
    ("trade", "Rail freight across the Caspian grew by a tenth this year."),
]


# Words for each article's own prose: texts that differed only in their numbers would be
# near-duplicates of each other (issue #5) and linked instead of alerted on their own.
FILLER = (
    "ministry delegation harvest railway budget river school museum forum treaty winter grain"
    " bridge tariff museum library pipeline village council harbour festival archive lecture"
    " clinic orchestra satellite vineyard textile glacier ferry bakery highway telescope"
).split()


def article_html(feed: int, number: int) -> str:
    words, sentence = TOPICS[(feed + number) % len(TOPICS)]
    title = f"Feed {feed} story {number} on {words}"
    rng = random.Random(feed * 1000 + number)
    paragraphs = "".join(
        f"<p>{sentence} " + " ".join(rng.choice(FILLER) for _ in range(40)) + ".</p>"
        for _ in range(4)
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    )


def write_feed(root: Path, site: LocalSite, feed: int, count: int) -> None:
    items = "".join(
        f"<item><title>Feed {feed} story {n}</title>"
        f"<link>{site.url(f'a/{feed}-{n}.html')}</link><guid>f{feed}-{n}</guid>"
        f"<pubDate>Mon, 23 Nov 2026 {n % 24:02d}:00:00 +0000</pubDate></item>"
        for n in range(count)
    )
    for n in range(count):
        (root / "a" / f"{feed}-{n}.html").write_text(article_html(feed, n), encoding="utf-8")
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>{items}'
    tmp = root / "feeds" / f"f{feed}.xml.tmp"
    tmp.write_text(body + "</channel></rss>", encoding="utf-8")
    tmp.replace(root / "feeds" / f"f{feed}.xml")


def make_project(root: Path, project: Path, site: LocalSite, smtp: LocalSMTP) -> Path:
    state = root / "state"
    state.mkdir(parents=True)
    for name in ("rules", "templates"):
        os.symlink(project / name, root / name)
    sources = "".join(
        f'[[source]]\nname = "Feed {i}"\nurl = "{site.url(f"feeds/f{i}.xml")}"\n'
        f'kind = "feed"\nevery = "1s"\n\n'
        for i in range(FEEDS)
    )
    config = root / "monitor.toml"
    config.write_text(
        f"""
[monitor]
timezone = "UTC"
max_age = "0"
shutdown_timeout = "10s"

{sources}
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
sender = "Press Monitor <monitor@example.org>"

[[digest]]
name = "daily"
at = "03:00"

[web]
listen = "127.0.0.1:0"
""",
        encoding="utf-8",
    )
    for email, topics in (("all@example.org", ""), ("dp@example.org", "Death penalty")):
        argv = ["--config", str(config), "subscribers", "add", email]
        assert cli.main([*argv, "--topics", topics] if topics else argv) == 0
    return config


def run_to_quiet(config: Path) -> None:
    """Start `monitor run`, wait until every feed answers 'not modified', stop it cleanly."""
    daemon = MonitorProcess(config, "run")
    waiting = {f'source="Feed {i}"' for i in range(FEEDS)}
    deadline = time.monotonic() + 60
    while waiting and time.monotonic() < deadline:
        line = daemon.next_line(timeout=max(0.1, deadline - time.monotonic()))
        if line and "poll.not_modified" in line:
            waiting = {w for w in waiting if w not in line}
    assert daemon.stop() == 0, "".join(daemon.log)
    assert not waiting, "".join(daemon.log)


def send_digest(config: Path) -> None:
    digest = MonitorProcess(config, "digest", "send", "--now")
    assert digest.process.wait(timeout=60) == 0
    digest.reader.join(timeout=5)


def links(message: EmailMessage, site: LocalSite) -> list[str]:
    """The article URLs a message names, each once (DESIGN §9: once per message)."""
    part = message.get_body(("plain",))
    assert part is not None
    found = re.findall(re.escape(site.base) + r"/a/[0-9]+-[0-9]+\.html", part.get_content())
    return list(dict.fromkeys(found))


def mailed(smtp: LocalSMTP, site: LocalSite, kind: str) -> Counter[tuple[str, str]]:
    """In how many distinct messages of this kind each (recipient, article URL) was mailed.

    A message sent again after a crash keeps its Message-ID (issue #7: a digest whose outcome
    a kill left unknown is resent, at least once, and the reader's client shows one copy), so
    messages are told apart by Message-ID."""
    seen: dict[tuple[str, str], set[str]] = {}
    for message in smtp.messages:
        if message["X-Press-Monitor-Kind"] == kind:
            for url in links(message, site):
                seen.setdefault((str(message["To"]), url), set()).add(str(message["Message-ID"]))
    return Counter({key: len(ids) for key, ids in seen.items()})


def stored(root: Path) -> tuple[list[str], str, set[tuple[str, str]]]:
    """Stored article URLs, the integrity check, and (recipient, URL) of digests cut off."""
    conn = sqlite3.connect(root / "state" / "monitor.db")
    try:
        urls = [row[0] for row in conn.execute("SELECT url FROM articles ORDER BY url")]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        interrupted = conn.execute(
            "SELECT d.recipient, a.url FROM deliveries d, json_each(d.article_ids) j"
            " JOIN articles a ON a.id = j.value"
            " WHERE d.kind = 'digest' AND d.error LIKE 'interrupted%'"
        ).fetchall()
    finally:
        conn.close()
    return urls, check, {(row[0], row[1]) for row in interrupted}


def test_kill_9_at_random_moments_loses_and_repeats_nothing(
    tmp_path: Path, project: Path, site: LocalSite
) -> None:
    rng = random.Random(SEED)
    root = site.root
    (root / "a").mkdir()
    counts = [2] * FEEDS
    for feed in range(FEEDS):
        write_feed(root, site, feed, counts[feed])

    with LocalSMTP() as smtp:
        crashed = make_project(tmp_path / "crashed", project, site, smtp)
        kills = Counter[str]()
        for round_ in range(DAEMON_KILLS):
            for feed in rng.sample(range(FEEDS), 2):  # new items appear between runs
                counts[feed] += 1
                write_feed(root, site, feed, counts[feed])
            daemon = MonitorProcess(crashed, "run")
            for _ in range(rng.randint(1, 25)):
                if daemon.next_line(timeout=3) is None:
                    break  # the daemon is idle: kill it anyway
            daemon.kill()
            kills["daemon"] += 1
            if round_ % 3 == 2 and kills["digest"] < DIGEST_KILLS:
                before = len(smtp.messages)
                digest = MonitorProcess(crashed, "digest", "send", "--now")
                deadline = time.monotonic() + 30
                while len(smtp.messages) == before and digest.process.poll() is None:
                    assert time.monotonic() < deadline, "".join(digest.log)
                    digest.next_line(timeout=0.005)
                digest.kill()  # right after the server accepted a message, if one went
                kills["digest"] += 1
        run_to_quiet(crashed)
        send_digest(crashed)
        send_digest(crashed)  # nothing new: sends nothing
        crash_alerts = mailed(smtp, site, "alert")
        crash_digests = mailed(smtp, site, "digest")

    with LocalSMTP() as clean_smtp:
        clean = make_project(tmp_path / "clean", project, site, clean_smtp)
        run_to_quiet(clean)
        send_digest(clean)
        clean_alerts = mailed(clean_smtp, site, "alert")
        clean_digests = mailed(clean_smtp, site, "digest")

    crash_urls, check, interrupted = stored(tmp_path / "crashed")
    clean_urls, _, _ = stored(tmp_path / "clean")
    assert check == "ok"
    assert crash_urls == clean_urls  # nothing lost; the url is unique, so none stored twice
    assert len(clean_urls) == sum(counts)
    assert clean_alerts  # the comparison has something to compare
    assert clean_digests
    # At most once: no (subscriber, article) alerted or digested twice...
    assert max(crash_alerts.values()) == 1
    assert max(crash_digests.values()) == 1
    # ...and nothing mailed that the clean run did not mail.
    assert set(crash_alerts) <= set(clean_alerts)
    # Every digest entry of the clean run went out, unless its message was cut off by a kill
    # (then the delivery is recorded as interrupted, and not sent again: at most once).
    lost = set(clean_digests) - set(crash_digests)
    assert lost <= interrupted
    assert kills == {"daemon": DAEMON_KILLS, "digest": DIGEST_KILLS}
