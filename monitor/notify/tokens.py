"""Signed tokens for the links in e-mails (confirm, unsubscribe) and the forms' CSRF field.

    token = base64url(JSON payload) "." base64url(HMAC-SHA256(secret, purpose "." payload))

The payload carries the purpose's data and, for an expiring token, ``x`` (a Unix time). The
secret is 32 random bytes generated once into ``state/secret.key`` (mode 0600): it never
leaves the state directory, survives restarts (links in old e-mails keep working) and is
shared by the daemon and the one-shot commands that compose mail.

Why the standard library's ``hmac`` and not itsdangerous: the whole scheme is these few
lines, the token format stays ours (documented here), and it adds no dependency. The purpose
is inside the MAC, so a token made for one use (unsubscribe) is refused for another (confirm).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import MonitorError

SECRET_FILE = "secret.key"


class TokenError(MonitorError):
    """A token that was tampered with, made for another purpose, or has expired."""

    def __init__(self, what: str, *, expired: bool = False) -> None:
        super().__init__("token", what)
        #: True when the signature is good but the token is too old.
        self.expired = expired


@functools.lru_cache(maxsize=8)
def load_secret(state_dir: Path) -> bytes:
    """The installation's secret from ``state_dir/secret.key``, created on first use."""
    path = Path(state_dir) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise MonitorError(str(path), "the secret is too short; delete the file to make a new one")
    return text.encode("ascii")


def sign(secret: bytes, purpose: str, data: dict[str, Any], expires: datetime | None = None) -> str:
    """A token carrying ``data`` for ``purpose``, valid until ``expires`` (None: forever)."""
    payload = dict(data)
    if expires is not None:
        payload["x"] = int(expires.timestamp())
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def verify(secret: bytes, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The data of a good token; TokenError when tampered, for another purpose, or expired."""
    body, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(mac.encode(), _mac(secret, purpose, body).encode()):
        raise TokenError("the link is not valid (it was changed or cut short)")
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError as exc:  # cannot happen with our own MAC: a bug or a leaked secret
        raise TokenError("the link is not valid") from exc
    if not isinstance(payload, dict):
        raise TokenError("the link is not valid")
    expires = payload.pop("x", None)
    if isinstance(expires, int) and now.timestamp() > expires:
        raise TokenError("the link has expired", expired=True)
    return payload


def _mac(secret: bytes, purpose: str, body: str) -> str:
    digest = hmac.new(secret, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
