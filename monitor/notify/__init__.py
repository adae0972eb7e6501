"""notify: stored matches → digests and alerts (e-mail) and RSS/Atom feed files.

Entry points (nothing heavy is imported until one is called):

- ``load_templates(templates_dir)`` → Templates; a template error raises TemplateError now,
  so the daemon refuses to start rather than send broken mail;
- ``compose_digest(…)`` / ``compose_alert(…)`` / ``compose_confirm(…)`` → an EmailMessage;
- ``unsubscribe_url(config, subscriber)`` → the signed link (``notify/tokens.py``);
- ``deliver(message, config)`` → over SMTP, or into the ``state/outbox/`` Maildir;
- ``write_feeds(feeds, feeds_dir, base_url)`` → RSS 2.0 and Atom files, written atomically;
- ``topic_slug(topic)`` → "human-rights";
- ``open_channels(config)`` → the digests' other channels (apprise), checked now;
  ``compose_post(…)`` → what one channel gets (``notify/channels.py``, issue #7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from email.message import EmailMessage
    from pathlib import Path

    from monitor.config import ChannelConfig, Config, DigestConfig
    from monitor.models import DigestEntry, Subscriber
    from monitor.notify.channels import Channel, Post, PostKind
    from monitor.notify.render import Templates


def load_templates(templates_dir: Path, *, check: bool = True) -> Templates:
    """The templates of ``templates_dir``, compiled and checked now or (``check=False``) at
    the first render."""
    from monitor.notify.render import Templates

    return Templates(templates_dir, check=check)


def compose_digest(
    templates: Templates,
    config: Config,
    digest: DigestConfig,
    subscriber: Subscriber,
    entries: list[DigestEntry],
    now: datetime,
) -> EmailMessage:
    from monitor.notify.digest import compose_digest as run

    return run(templates, config, digest, subscriber, entries, now)


def compose_alert(
    templates: Templates,
    config: Config,
    subscriber: Subscriber,
    entries: list[DigestEntry],
    now: datetime,
) -> EmailMessage:
    from monitor.notify.digest import compose_alert as run

    return run(templates, config, subscriber, entries, now)


def compose_confirm(
    templates: Templates, config: Config, subscriber: Subscriber, now: datetime
) -> EmailMessage:
    from monitor.notify.digest import compose_confirm as run

    return run(templates, config, subscriber, now)


def unsubscribe_url(config: Config, subscriber: Subscriber) -> str:
    from monitor.notify.digest import unsubscribe_url as run

    return run(config, subscriber)


async def deliver(message: EmailMessage, config: Config) -> None:
    from monitor.notify.mail import deliver as run

    await run(message, config)


def write_feeds(
    feeds: dict[str | None, list[DigestEntry]], feeds_dir: Path, base_url: str, now: datetime
) -> list[Path]:
    from monitor.notify.feeds import write_feeds as run

    return run(feeds, feeds_dir, base_url, now)


def topic_slug(topic: str) -> str:
    from monitor.notify.feeds import topic_slug as run

    return run(topic)


def open_channels(config: Config) -> list[Channel]:
    from monitor.notify.channels import open_channels as run

    return run(config)


def compose_post(
    kind: PostKind,
    digest: str,
    channel: ChannelConfig,
    entries: list[DigestEntry],
    base_url: str,
) -> Post:
    from monitor.notify.channels import compose_post as run

    return run(kind, digest, channel, entries, base_url)


def post_from_bytes(data: bytes) -> Post:
    from monitor.notify.channels import Post

    return Post.from_bytes(data)
