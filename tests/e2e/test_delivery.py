"""Delivery robustness against a real SMTP server on loopback: retries with backoff,
permanent failures, crashes between recording and sending, a server that hangs."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import notify, pipeline, runtime
from monitor.config import Config, load
from monitor.models import Article, Item, Match
from monitor.runtime import Services
from tests.servers import LocalSMTP

NOW = datetime.now(UTC)


def config_for(project: Path, port: int, timeout: float = 5) -> Config:
    path = project / "monitor.toml"
    path.write_text(
        f"""
[monitor]
timezone = "Asia/Almaty"
max_age = "0"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "Press Monitor <monitor@monitor.test>"
timeout = {timeout}

[web]
enabled = false
base_url = "https://monitor.example.org"
""",
        encoding="utf-8",
    )
    return load(path)


@pytest.fixture
async def services(project: Path, smtp: LocalSMTP) -> AsyncIterator[Services]:
    async with runtime.open_services(config_for(project, smtp.port)) as opened:
        yield opened


async def subscribe_with_news(services: Services, alert: str = "digest") -> None:
    db, store = services.db, services.store
    await db(store.add_subscriber, "reader@example.org", "daily", (), NOW - timedelta(hours=1))
    url = "https://news.example.org/court"
    article = Article(url=url, title="Court frees rights defender", text="Text.", source="Agency")
    match = Match(rule_id="r", topic="Human rights", alert=alert)  # type: ignore[arg-type]
    await db(store.save_article, "Agency", Item(url=url), article, [match], NOW)


async def test_a_4xx_digest_is_retried_after_the_backoff_with_the_same_message_id(
    services: Services, smtp: LocalSMTP
) -> None:
    await subscribe_with_news(services)
    smtp.reject["reader@example.org"] = "450 mailbox busy, try later"

    result = await pipeline.send_digest(services, services.config.digests[0], NOW)
    assert (result.sent, result.failed) == (0, 1)
    assert "450" in result.errors[0]

    del smtp.reject["reader@example.org"]
    assert await pipeline.retry_deliveries(services, NOW + timedelta(seconds=30)) == 0
    assert await pipeline.retry_deliveries(services, NOW + timedelta(minutes=1)) == 1
    (message,) = smtp.wait_for(1)
    assert message["X-Press-Monitor-Kind"] == "digest"
    # Sent once: a later retry run and the next digest find nothing left to send.
    assert await pipeline.retry_deliveries(services, NOW + timedelta(hours=3)) == 0
    later = await pipeline.send_digest(services, services.config.digests[0], NOW + timedelta(1))
    assert (later.sent, later.empty) == (0, 1)
    assert len(smtp.messages) == 1


async def test_a_5xx_marks_the_subscriber_bounced_until_they_subscribe_again(
    services: Services, smtp: LocalSMTP
) -> None:
    await subscribe_with_news(services)
    smtp.reject["reader@example.org"] = "550 no such user"

    result = await pipeline.send_digest(services, services.config.digests[0], NOW)
    assert result.failed == 1
    assert await services.db(services.store.subscribers) == []
    assert await pipeline.retry_deliveries(services, NOW + timedelta(hours=3)) == 0

    del smtp.reject["reader@example.org"]
    await services.db(services.store.add_subscriber, "reader@example.org", "daily", (), NOW)
    again = await pipeline.send_digest(services, services.config.digests[0], NOW)
    assert again.sent == 1
    assert smtp.wait_for(1)[0]["To"] == "reader@example.org"


async def test_an_interrupted_digest_is_resent_once_and_an_interrupted_alert_never(
    services: Services, smtp: LocalSMTP
) -> None:
    db, store = services.db, services.store
    await subscribe_with_news(services, alert="immediate")
    (subscriber,) = await db(store.subscribers)
    # A crash right after begin_delivery: both messages recorded 'sending', neither finished.
    entries, cursor = await db(store.digest_entries, subscriber, NOW)
    digest = notify.compose_digest(
        services.templates, services.config, services.config.digests[0], subscriber, entries, NOW
    )
    ids = [e.article_id for e in entries]
    args = (ids, cursor, NOW, digest.as_bytes())
    await db(store.begin_delivery, subscriber, "digest", str(digest["Message-ID"]), *args)
    alert = notify.compose_alert(services.templates, services.config, subscriber, entries, NOW)
    args = (ids, 0, NOW, alert.as_bytes())
    await db(store.begin_delivery, subscriber, "alert", str(alert["Message-ID"]), *args)

    assert await pipeline.recover_deliveries(services, NOW) == 1
    assert await pipeline.retry_deliveries(services, NOW) == 1
    (resent,) = smtp.wait_for(1)
    assert resent["Message-ID"] == digest["Message-ID"]
    assert resent["X-Press-Monitor-Kind"] == "digest"
    # Nothing is left: no second copy, no alert, and the digest cursor moved on.
    assert await pipeline.recover_deliveries(services, NOW) == 0
    assert await pipeline.retry_deliveries(services, NOW + timedelta(hours=3)) == 0
    assert await pipeline.send_alerts(services, NOW) == 0
    assert (await db(store.digest_entries, subscriber, NOW))[0] == []
    assert len(smtp.messages) == 1


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


async def test_a_hanging_smtp_server_times_out_and_the_digest_is_retried_later(
    project: Path, hanging_server: int
) -> None:
    config = config_for(project, hanging_server, timeout=1)
    async with runtime.open_services(config) as services:
        await subscribe_with_news(services)
        result = await pipeline.send_digest(services, config.digests[0], NOW)
        assert (result.sent, result.failed) == (0, 1)
        assert "reader@example.org" in result.errors[0]
        # The delivery is queued for another attempt, not lost and not marked bounced.
        assert [s.email for s in await services.db(services.store.subscribers)] == [
            "reader@example.org"
        ]
        claimed = await services.db(services.store.claim_retries, NOW + timedelta(minutes=1))
        assert [(d.kind, d.attempts) for d in claimed] == [("digest", 2)]
