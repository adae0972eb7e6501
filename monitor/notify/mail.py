"""Delivery: a composed message over SMTP, or into the outbox Maildir when there is no [smtp].

    deliver(message, config)
      no [smtp]:  state/outbox/ (stdlib mailbox.Maildir: written in tmp/, renamed into new/),
                  in a thread so the event loop never waits on the disk
      [smtp]:     aiosmtplib.send: security "tls" (implicit TLS), "starttls" (required, not
                  opportunistic), "none" (plain, not even opportunistic STARTTLS); AUTH with
                  the password from the environment variable password_env names

Failures raise DeliveryError naming the recipient and the server's reply, ``permanent`` for a
5xx reply (retrying will not help), ``maybe_sent`` when the server may have taken the message
before the failure (a read timeout, a dropped connection)::

    anna@example.org: SMTP 550 no such user
    anna@example.org: cannot connect to smtp mail.example.org:587: SMTPConnectError: …
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from monitor.config import Config, SmtpConfig
from monitor.errors import DeliveryError
from monitor.log import event

log = logging.getLogger(__name__)


async def deliver(message: EmailMessage, config: Config) -> None:
    """Send ``message`` (see the module's docstring); DeliveryError when it cannot go."""
    recipient = _recipient(message)
    kind = str(message.get("X-Press-Monitor-Kind", ""))
    if config.smtp is None:
        outbox = config.monitor.outbox_dir
        key = await asyncio.to_thread(write_to_maildir, message, outbox, recipient)
        event(log, "mail.outbox", to=recipient, kind=kind, file=str(outbox / "new" / key))
        return
    await _send(message, config.smtp, recipient)
    event(log, "mail.sent", to=recipient, kind=kind, smtp=f"{config.smtp.host}:{config.smtp.port}")


def write_to_maildir(message: EmailMessage, outbox: Path, recipient: str) -> str:
    """Add ``message`` to the Maildir at ``outbox`` (created if missing); its key."""
    try:
        outbox.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(outbox, create=True)
        # Maildir files use the local line ending; the message itself is built for SMTP (CRLF).
        data = message.as_bytes(policy=message.policy.clone(linesep="\n"))
        return box.add(data)
    except OSError as exc:
        raise DeliveryError(recipient, f"cannot write to the outbox {outbox}") from exc


async def _send(message: EmailMessage, smtp: SmtpConfig, recipient: str) -> None:
    password = smtp.password()  # ConfigError when its variable is unset: not a delivery failure
    try:
        errors, _ = await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=password,
            use_tls=smtp.security == "tls",
            # False, not None: None would upgrade whenever the server offers it.
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout,
        )
    except aiosmtplib.SMTPException as exc:
        raise _smtp_error(exc, smtp, recipient) from exc
    except OSError as exc:  # the socket or TLS failing outside aiosmtplib's own wrapping
        raise DeliveryError(
            recipient, f"cannot talk to smtp {smtp.host}:{smtp.port}", maybe_sent=True
        ) from exc
    for address, reply in errors.items():  # some recipients refused, others accepted
        raise DeliveryError(
            address, f"SMTP {reply.code} {reply.message}", permanent=reply.code >= 500
        )


def _smtp_error(exc: aiosmtplib.SMTPException, smtp: SmtpConfig, recipient: str) -> DeliveryError:
    """The DeliveryError for one aiosmtplib failure."""
    server = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return DeliveryError(
            refused.recipient,
            f"SMTP {refused.code} {refused.message}",
            permanent=refused.code >= 500,
        )
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return DeliveryError(
            recipient,
            f"smtp {server} refused the connection: SMTP {exc.code} {exc.message}",
            permanent=exc.code >= 500,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(recipient, f"SMTP {exc.code} {exc.message}", permanent=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return DeliveryError(recipient, f"cannot connect to smtp {server}")
    # Past the connection, a timeout or a dropped connection may come after the server took
    # the message: maybe_sent, so an alert is not resent (at most once, DESIGN §9).
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return DeliveryError(recipient, f"smtp {server} timed out", maybe_sent=True)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return DeliveryError(recipient, f"smtp {server} closed the connection", maybe_sent=True)
    return DeliveryError(recipient, f"smtp {server} failed", maybe_sent=True)


def _recipient(message: EmailMessage) -> str:
    return ", ".join(str(value) for value in message.get_all("To", [])) or "(no recipient)"
