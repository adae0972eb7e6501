"""notify.deliver: into the outbox Maildir, or over SMTP to the real LocalSMTP server."""

from __future__ import annotations

import email
import email.policy
import mailbox
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from monitor import notify
from monitor.config import Config, load
from monitor.errors import DeliveryError
from monitor.models import DigestEntry, Subscriber
from tests.servers import LocalSMTP

TEMPLATES = Path(__file__).parent.parent.parent / "templates"
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def message_to(address: str, config: Config) -> EmailMessage:
    text = "The delegation raised human rights and the detained journalists."
    start = text.index("human rights")
    item = DigestEntry(
        article_id=1,
        url="https://news.example.kz/2026/11/dialogue.html",
        title="EU and Kazakhstan hold a dialogue",
        source="Kursiv",
        published=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        found=NOW,
        topics=("Human rights",),
        text=text,
        spans=(("text", start, start + len("human rights")),),
    )
    templates = notify.load_templates(TEMPLATES)
    return notify.compose_digest(
        templates, config, config.digest(None), Subscriber(address, "daily"), [item], NOW
    )


def config_with(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "monitor.toml"
    path.write_text('[monitor]\ntimezone = "Asia/Almaty"\n' + extra, encoding="utf-8")
    return load(path)


def smtp_section(port: int, security: str = "none") -> str:
    return (
        f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
        'sender = "Press Monitor <monitor@desk.example.org>"\ntimeout = 10\n'
    )


def closed_port() -> int:
    """A loopback port nothing listens on: bound, read back, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_without_smtp_the_message_lands_in_outbox_new(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    message = message_to("desk@example.org", config)

    await notify.deliver(message, config)

    outbox = tmp_path / "state" / "outbox"
    [delivered] = list((outbox / "new").iterdir())
    assert list((outbox / "tmp").iterdir()) == []
    parsed = email.message_from_bytes(delivered.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["To"] == "desk@example.org"
    assert "https://news.example.kz/2026/11/dialogue.html" in delivered.read_text("utf-8")
    assert len(mailbox.Maildir(outbox, create=False)) == 1


async def test_every_message_gets_its_own_maildir_file(tmp_path: Path) -> None:
    config = config_with(tmp_path)

    await notify.deliver(message_to("desk@example.org", config), config)
    await notify.deliver(message_to("editor@example.org", config), config)

    assert len(list((tmp_path / "state" / "outbox" / "new").iterdir())) == 2


async def test_with_smtp_the_server_receives_the_message(tmp_path: Path, smtp: LocalSMTP) -> None:
    config = config_with(tmp_path, smtp_section(smtp.port))
    message = message_to("desk@example.org", config)

    await notify.deliver(message, config)

    [received] = smtp.wait_for(1)
    assert smtp.envelopes == [("monitor@desk.example.org", ["desk@example.org"])]
    assert received["Message-ID"] == message["Message-ID"]
    assert received["Subject"] == "1 new article: Human rights (1)"
    assert received.get_content_type() == "multipart/alternative"
    assert not (tmp_path / "state" / "outbox").exists()


async def test_recipient_rejected_with_550_is_a_permanent_failure_naming_it(
    tmp_path: Path, smtp: LocalSMTP
) -> None:
    smtp.reject["gone@example.org"] = "550 no such user"
    config = config_with(tmp_path, smtp_section(smtp.port))

    with pytest.raises(DeliveryError) as caught:
        await notify.deliver(message_to("gone@example.org", config), config)

    assert caught.value.permanent
    assert caught.value.where == "gone@example.org"
    assert str(caught.value).startswith("gone@example.org: SMTP 550 no such user")
    assert smtp.messages == []


async def test_recipient_deferred_with_450_is_a_temporary_failure(
    tmp_path: Path, smtp: LocalSMTP
) -> None:
    smtp.reject["busy@example.org"] = "450 mailbox busy, try later"
    config = config_with(tmp_path, smtp_section(smtp.port))

    with pytest.raises(DeliveryError) as caught:
        await notify.deliver(message_to("busy@example.org", config), config)

    assert not caught.value.permanent
    assert "SMTP 450" in str(caught.value)


async def test_refused_connection_is_a_temporary_failure_naming_the_server(
    tmp_path: Path,
) -> None:
    port = closed_port()
    config = config_with(tmp_path, smtp_section(port))

    with pytest.raises(DeliveryError) as caught:
        await notify.deliver(message_to("desk@example.org", config), config)

    assert not caught.value.permanent
    assert caught.value.where == "desk@example.org"
    assert caught.value.what == f"cannot connect to smtp 127.0.0.1:{port}"
    assert caught.value.__cause__ is not None


async def test_starttls_required_but_not_offered_sends_nothing(
    tmp_path: Path, smtp: LocalSMTP
) -> None:
    config = config_with(tmp_path, smtp_section(smtp.port, security="starttls"))

    with pytest.raises(DeliveryError) as caught:
        await notify.deliver(message_to("desk@example.org", config), config)

    assert f"127.0.0.1:{smtp.port}" in caught.value.what
    assert smtp.messages == []
