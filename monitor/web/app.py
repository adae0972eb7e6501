"""The aiohttp application: routes and handlers.

    GET  /                      topics with their recent matches and feed links (web/home.html)
    GET  /subscribe             the form: address, topics, digest (web/subscribe.html)
    POST /subscribe             CSRF + rate limit + checks → confirmation e-mail (double opt-in)
    GET  /confirm/{token}       a good, unexpired token → the subscriber is added
    GET  /unsubscribe/{token}   a page with one button (web/unsubscribe.html)
    POST /unsubscribe/{token}   the button (CSRF-checked), or RFC 8058 one-click from a mail
                                client ("List-Unsubscribe=One-Click", no cookie, no CSRF: the
                                signed token is the authority)
    GET  /feeds/{name}          state/feeds/ files, ETag and Last-Modified, 304 when unchanged
    GET  /healthz               JSON: ok, sources, failing

Answers: a bad address, topic or digest 400 (the form again, with the reason); a missing or
wrong CSRF field 403; too many POST /subscribe from one client 429 with Retry-After; another
confirmation to the same address within CONFIRM_EVERY 429; a tampered token 400; an expired
one 410. Whether an address is subscribed is never revealed to the form: a confirmation goes
out either way, and its link says "already subscribed" when nothing changes.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from aiohttp import web

from monitor import metrics, notify, pipeline
from monitor.config import Config
from monitor.errors import DeliveryError, MonitorError
from monitor.log import event
from monitor.models import Subscriber
from monitor.notify import tokens
from monitor.runtime import Services

log = logging.getLogger("monitor.web")

SERVICES = web.AppKey("services", Services)
CONFIG = web.AppKey("config", Config)

#: The cookie holding the CSRF nonce; the form carries the nonce signed.
CSRF_COOKIE = "pm_csrf"
#: How long a form stays valid after it was shown.
CSRF_FOR = timedelta(hours=12)
#: At most one confirmation per address in this time (no mail-bombing through the form).
CONFIRM_EVERY = timedelta(minutes=10)
#: Longest address accepted (RFC 5321's path limit less the brackets).
MAX_ADDRESS = 254
_ADDRESS = re.compile(
    r"^[^\s@<>(),;:\"\[\]\\]+@[^\s@<>(),;:\"\[\]\\]+\.[^\s@<>(),;:\"\[\]\\.]{2,}$"
)


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window)."""

    def __init__(self, limit: int, window: float = 3600.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}

    def __repr__(self) -> str:
        return f"<RateLimiter limit={self.limit} window={self.window:g}s keys={len(self._events)}>"

    def hit(self, key: str, now: float | None = None) -> float:
        """Count one event; 0 when allowed, else the seconds until one more is allowed."""
        now = time.monotonic() if now is None else now
        if len(self._events) > 10_000:  # forget idle clients so the table cannot grow forever
            self._events = {
                k: q for k, q in self._events.items() if q and q[-1] > now - self.window
            }
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(1.0, events[0] + self.window - now)
        events.append(now)
        return 0.0


LIMITER = web.AppKey("limiter", RateLimiter)


def make_app(config: Config, services: Services) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SERVICES] = services
    app[CONFIG] = config
    app[LIMITER] = RateLimiter(config.web.subscribe_limit)
    app.router.add_get("/", home)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics.handle)  # issue #8: the daemon's Prometheus metrics
    app.router.add_get("/feeds/{name}", feed_file)
    app.router.add_get("/subscribe", subscribe_form)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_get("/confirm/{token}", confirm)
    app.router.add_get("/unsubscribe/{token}", unsubscribe_form)
    app.router.add_post("/unsubscribe/{token}", unsubscribe)
    return app


async def start(config: Config, services: Services) -> web.AppRunner:
    """Start listening; raise MonitorError naming the address when it cannot bind."""
    runner = web.AppRunner(make_app(config, services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.web.host, config.web.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise MonitorError(
            f"web.listen {config.web.host}:{config.web.port}", "cannot listen"
        ) from exc
    addresses = [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in site._server.sockets]  # type: ignore[union-attr]  # aiohttp keeps the bound sockets here
    event(log, "web.listening", address=",".join(addresses))
    return runner


# -- pages --------------------------------------------------------------------------------
def _page(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """Render templates/web/<name> with the context every page gets."""
    config = request.app[CONFIG]
    context.setdefault("title", "Press Monitor")
    context.update(timezone=config.monitor.timezone, base_url=config.web.base_url)
    text = request.app[SERVICES].templates.render(f"web/{name}", context)
    return web.Response(text=text, status=status, content_type="text/html")


def _message(
    request: web.Request, status: int, title: str, text: str, **headers: str
) -> web.Response:
    response = _page(request, "page.html", status, title=title, text=text)
    response.headers.update(headers)
    return response


async def home(request: web.Request) -> web.Response:
    """The topics with their feed links and recent matches."""
    services = request.app[SERVICES]
    stored = await services.db(services.store.topics)
    names = list(dict.fromkeys([*services.rules().topics, *stored]))
    topics = []
    for topic in names:
        entries = await services.db(services.store.recent_entries, topic, 5)
        topics.append({"name": topic, "slug": notify.topic_slug(topic), "entries": entries})
    return _page(request, "home.html", topics=topics)


async def healthz(request: web.Request) -> web.Response:
    """200 with the sources' health; 503 when the database cannot be read."""
    services = request.app[SERVICES]
    try:
        health = await services.db(services.store.sources_health)
    except MonitorError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=503)
    failing = sorted(name for name, state in health.items() if state.failures)
    return web.json_response(
        {
            "ok": True,
            "time": datetime.now(UTC).isoformat(),
            "sources": len(request.app[CONFIG].sources),
            "failing": failing,
        }
    )


async def feed_file(request: web.Request) -> web.StreamResponse:
    """A file of state/feeds/, with ETag and Last-Modified (conditional GET answered 304)."""
    name = request.match_info["name"]
    feeds_dir = request.app[CONFIG].monitor.feeds_dir
    path = feeds_dir / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound(text=f"no feed named {name}")
    content_type = "application/rss+xml" if name.endswith(".xml") else "application/atom+xml"
    return web.FileResponse(path, headers={"Content-Type": content_type + "; charset=utf-8"})


# -- subscribing ----------------------------------------------------------------------------
def _secret(request: web.Request) -> bytes:
    return tokens.load_secret(request.app[CONFIG].monitor.state_dir)


def _with_csrf(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """A page with a form: a fresh nonce in a cookie, the same nonce signed in the form."""
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce):
        nonce = secrets.token_urlsafe(16)
    expires = datetime.now(UTC) + CSRF_FOR
    context["csrf"] = tokens.sign(_secret(request), "csrf", {"n": nonce}, expires)
    response = _page(request, name, status, **context)
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Strict", path="/")
    return response


def _csrf_ok(request: web.Request, form: Any) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    try:
        data = tokens.verify(_secret(request), "csrf", str(form.get("csrf", "")), _now())
    except tokens.TokenError:
        return False
    return bool(nonce) and secrets.compare_digest(str(data.get("n", "")), nonce)


def _form_context(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    return {
        "title": "Subscribe",
        "topics": request.app[SERVICES].rules().topics,
        "digests": [d.name for d in config.digests],
    }


async def subscribe_form(request: web.Request) -> web.Response:
    context = _form_context(request)
    default = request.app[CONFIG].digests[0].name
    return _with_csrf(
        request, "subscribe.html", **context, email="", chosen=(), digest=default, error=""
    )


async def subscribe(request: web.Request) -> web.Response:
    """Check the form, then send the confirmation e-mail; nothing is stored until it is
    confirmed (the signed link carries the address, digest and topics)."""
    client = request.remote or "unknown"
    wait = request.app[LIMITER].hit(client)
    if wait:
        event(log, "web.rate_limited", logging.WARNING, client=client, path=request.path)
        return _message(
            request,
            429,
            "Too many requests",
            "Too many subscription requests came from your address. Please try again later.",
            **{"Retry-After": str(math.ceil(wait))},
        )
    form = await request.post()
    if not _csrf_ok(request, form):
        return _message(
            request,
            403,
            "The form has expired",
            "This form was not sent from this site, or it is too old. Open the subscribe "
            "page again and send it from there.",
        )
    context = _form_context(request)
    email = str(form.get("email", "")).strip()
    chosen = tuple(str(t) for t in form.getall("topic", []))
    digest = str(form.get("digest", ""))
    error = _form_error(email, chosen, digest, context)
    if error:
        return _with_csrf(
            request, "subscribe.html", 400, **context, email=email, chosen=chosen,
            digest=digest, error=error,
        )  # fmt: skip
    services = request.app[SERVICES]
    now = _now()
    subscriber = Subscriber(email=email, digest=digest, topics=chosen)
    recent = await services.db(services.store.confirmations_since, email, now - CONFIRM_EVERY)
    if recent:
        minutes = math.ceil(CONFIRM_EVERY.total_seconds() / 60)
        return _message(
            request,
            429,
            "Confirmation already sent",
            f"A confirmation was sent to {email} in the last {minutes} minutes. Please look "
            "for it in your inbox (and your spam folder) before asking for another.",
            **{"Retry-After": str(int(CONFIRM_EVERY.total_seconds()))},
        )
    try:
        await pipeline.send_confirm(services, subscriber, now)
    except DeliveryError as exc:
        if exc.permanent:
            return _message(
                request,
                400,
                "This address cannot receive mail",
                f"The mail server refused {email}. Please check the address.",
            )
        return _message(
            request,
            200,
            "Confirmation delayed",
            f"The confirmation e-mail to {email} could not be sent just now; it will be sent "
            "again in a few minutes. Open the link in it to start your subscription.",
        )
    event(log, "web.subscribe", to=email, digest=digest, topics=",".join(chosen))
    return _message(
        request,
        200,
        "Check your inbox",
        f"We sent a message to {email}. Open the link in it to confirm your subscription; "
        "nothing is sent to you before that.",
    )


def _form_error(email: str, chosen: tuple[str, ...], digest: str, context: dict[str, Any]) -> str:
    """Why the form cannot be accepted; "" when it can."""
    if not valid_address(email):
        return "Please enter a valid e-mail address, such as name@example.org."
    unknown = [t for t in chosen if t not in context["topics"]]
    if unknown:
        return f"Unknown topic: {unknown[0]}."
    if digest not in context["digests"]:
        return "Please choose one of the digests."
    return ""


def valid_address(email: str) -> bool:
    """A plausible single address: one @, a dotted domain, nothing a header could misread."""
    if not email or len(email) > MAX_ADDRESS or not _ADDRESS.match(email):
        return False
    try:
        Address(addr_spec=email)
    except (ValueError, IndexError):
        return False
    return True


async def confirm(request: web.Request) -> web.Response:
    """The link in the confirmation e-mail: add (or update) the subscriber."""
    now = _now()
    try:
        data = tokens.verify(_secret(request), "confirm", request.match_info["token"], now)
    except tokens.TokenError as exc:
        return _token_page(request, exc, "subscribe again on the subscribe page")
    email, digest, topics = str(data["e"]), str(data["d"]), tuple(str(t) for t in data["t"])
    services = request.app[SERVICES]
    known = await services.db(services.store.subscriber, email)
    if known is not None and known[1] == "active" and known[0].digest == digest:
        if set(known[0].topics) == set(topics):
            return _message(
                request,
                200,
                "Already subscribed",
                f"{email} already receives the {digest} digest on these topics.",
            )
    subscriber = await services.db(services.store.add_subscriber, email, digest, topics, now)
    event(log, "web.confirmed", to=subscriber.email, digest=digest)
    unsubscribe = notify.unsubscribe_url(request.app[CONFIG], subscriber)
    return _page(
        request,
        "page.html",
        title="Subscription confirmed",
        text=f"{subscriber.email} will receive the {digest} digest on "
        f"{', '.join(topics) if topics else 'every topic'}.",
        link=unsubscribe,
        link_text="Changed your mind? Unsubscribe",
    )


def _token_page(request: web.Request, exc: tokens.TokenError, then: str) -> web.Response:
    if exc.expired:
        return _message(request, 410, "This link has expired", f"Please {then}.")
    return _message(
        request,
        400,
        "This link is not valid",
        f"It may have been cut short by your mail program. Please {then}.",
    )


async def unsubscribe_form(request: web.Request) -> web.Response:
    """The page behind List-Unsubscribe: one button (a GET never unsubscribes: link
    checkers and mail scanners open links)."""
    try:
        data = tokens.verify(_secret(request), "unsubscribe", request.match_info["token"], _now())
    except tokens.TokenError as exc:
        return _token_page(request, exc, "use the link in your latest message")
    return _with_csrf(request, "unsubscribe.html", title="Unsubscribe", email=str(data["e"]))


async def unsubscribe(request: web.Request) -> web.Response:
    """Remove the subscriber: the page's button, or a mail client's RFC 8058 one-click POST."""
    try:
        data = tokens.verify(_secret(request), "unsubscribe", request.match_info["token"], _now())
    except tokens.TokenError as exc:
        return _token_page(request, exc, "use the link in your latest message")
    form = await request.post()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    if not one_click and not _csrf_ok(request, form):
        return _message(
            request,
            403,
            "The form has expired",
            "Open the unsubscribe link from your message again and press the button there.",
        )
    services = request.app[SERVICES]
    email = str(data["e"])
    removed = await services.db(services.store.remove_subscriber, email)
    event(log, "web.unsubscribed", to=email, one_click=one_click, removed=removed)
    if one_click:
        return web.Response(text=f"{email} is unsubscribed.\n")
    return _message(
        request,
        200,
        "You are unsubscribed",
        f"{email} will receive no more messages from Press Monitor.",
    )


def _now() -> datetime:
    return datetime.now(UTC)
