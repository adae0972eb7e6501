"""monitor.toml → a frozen, typed :class:`Config`. The only loader of the configuration.

Values come out final: durations as ``timedelta``, the timezone as ``ZoneInfo``, paths resolved
against the file's directory, per-source defaults from ``[monitor]`` filled in. Unknown keys and
wrong types are errors; every problem in the file is reported in one go, each with its key path::

    monitor.toml: source[3] "EU Delegation": evry: unknown key (did you mean "every"?)
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import ConfigError

T = TypeVar("T")

SourceKind = Literal["auto", "feed", "page", "sitemap"]
SOURCE_KINDS: tuple[str, ...] = ("auto", "feed", "page", "sitemap")
Security = Literal["none", "starttls", "tls"]
SECURITY: tuple[str, ...] = ("none", "starttls", "tls")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: ``[smtp] retry`` by default: a failed message is tried again after 1 min, 5 min, 30 min, 2 h.
DELIVERY_RETRY = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)


def _is_nameserver(text: str) -> bool:
    """Whether ``text`` is an IP address with an optional port ("[::1]:53" for IPv6)."""
    import ipaddress

    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port.isdigit() and 0 < int(port) < 65536


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1h30m"``, ``"45s"``, ``"7d"``, ``"0"`` → a timedelta; ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return timedelta(0)
    pos, seconds = 0, 0.0
    for found in _DURATION.finditer(text):
        if text[pos : found.start()].strip():
            break
        seconds += float(found.group(1)) * _UNITS[found.group(2).lower()]
        pos = found.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f'expected a duration such as "30s", "15m", "2h" or "7d"; got "{text}"')
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """The ``[monitor]`` table."""

    state_dir: Path
    rules_dir: Path
    templates_dir: Path
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    #: Items older than this are remembered, not fetched; None means no limit.
    max_age: timedelta | None = timedelta(days=30)
    shutdown_timeout: timedelta = timedelta(seconds=30)
    user_agent: str = "press-monitor/0.1 (+https://github.com/press-monitor/press-monitor)"
    #: Requests in flight at once, over all sources. A poll mostly waits on other hosts: with
    #: 16, a poll of 200 sources (robots.txt and the feed each, 50 ms away) waited 1.25 s on
    #: round trips alone (#4, bench/poll_bench.py). Politeness to each host is PER_HOST and
    #: HOST_DELAY in fetch/http.py, whatever this is.
    concurrency: int = 64
    #: Seconds a whole request may take.
    timeout: float = 30.0
    #: Article text older than this is pruned daily (title, URL and dates stay); None: never.
    keep: timedelta | None = None
    #: Processes that clean and match articles; None: one per core (threads on one core).
    clean_workers: int | None = None
    #: DNS servers ("IP" or "IP:PORT") to resolve source hosts with, instead of the system's
    #: resolver; empty: the system's (getaddrinfo, /etc/hosts and /etc/resolv.conf).
    nameservers: tuple[str, ...] = ()

    @property
    def db_path(self) -> Path:
        return self.state_dir / "monitor.db"

    @property
    def feeds_dir(self) -> Path:
        return self.state_dir / "feeds"

    @property
    def outbox_dir(self) -> Path:
        return self.state_dir / "outbox"


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[source]]`` table, with the ``[monitor]`` defaults filled in."""

    name: str
    url: str
    kind: SourceKind = "auto"
    every: timedelta = timedelta(minutes=30)
    #: Older dated items are remembered, not fetched or alerted; None means no limit.
    max_age: timedelta | None = timedelta(days=30)
    #: Listing-page selectors (``kind = "page"``); None means links are discovered.
    items: str | None = None
    link: str | None = None
    title: str | None = None
    date: str | None = None
    #: Article-page overrides for sites where the generic extraction is wrong: a CSS selector
    #: for the article's body (None: found by the cleaner) and selectors of blocks to drop.
    body: str | None = None
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The ``[smtp]`` table; absent means messages go to ``state/outbox/``."""

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str = "Press Monitor <monitor@localhost>"
    timeout: float = 60.0
    #: The waits before the 2nd, 3rd, … attempt of a message that failed; after the last,
    #: it is given up (a digest's articles then come in the next digest).
    retry: tuple[timedelta, ...] = DELIVERY_RETRY

    def password(self) -> str | None:
        """The password from the environment variable ``password_env`` names, if any."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                "smtp.password_env", f"the environment variable {self.password_env} is not set"
            )
        return value


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The ``[store]`` table (issue #9); absent means the SQLite file ``state/monitor.db``."""

    #: ``postgresql://user@host:port/dbname``: the shared PostgreSQL store instead of SQLite.
    url: str | None = None
    #: The environment variable holding the database password (never the password itself).
    password_env: str | None = None
    #: Connections the PostgreSQL store keeps open per process.
    pool_size: int = 4

    def password(self) -> str | None:
        """The password from the environment variable ``password_env`` names, if any."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                "store.password_env", f"the environment variable {self.password_env} is not set"
            )
        return value


ChannelFormat = Literal["markdown", "text"]
CHANNEL_FORMATS: tuple[str, ...] = ("markdown", "text")
#: ``${NAME}`` in a channel URL: replaced by the environment variable NAME when sending.
CHANNEL_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: What `pip` needs for channels (apprise is an optional dependency, issue #7).
CHANNELS_INSTALL = "pip install 'press-monitor[channels]'"


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One of a ``[[digest]]``'s ``channels``: an apprise URL (Slack, Telegram, Matrix, Teams,
    a webhook…) that gets the digest's news, and its topics' immediate alerts (issue #7)."""

    #: Where it is written, for messages: ``digest[1].channels[2]``.
    where: str
    #: The URL as written; ``${NAME}`` is replaced from the environment when it is used, so
    #: tokens need not sit in the file. Never logged: see ``notify.channels`` for the label.
    url: str = field(repr=False)
    #: The topics it gets; empty: every topic.
    topics: tuple[str, ...] = ()
    #: The body's format: "markdown" (links, bold topics) or "text".
    format: ChannelFormat = "markdown"
    #: Whether immediate alerts on its topics are posted too, not only the digest.
    alerts: bool = True

    def resolved_url(self) -> str:
        """The URL with each ``${NAME}`` replaced; ConfigError when a variable is unset."""

        def value(found: re.Match[str]) -> str:
            name = found.group(1)
            if name not in os.environ:
                raise ConfigError(self.where, f"the environment variable {name} is not set")
            return os.environ[name]

        return CHANNEL_VARIABLE.sub(value, self.url)


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """One ``[[digest]]``: when it goes out, in ``[monitor] timezone``."""

    name: str
    #: "HH:MM" every day, or None when ``cron`` is given.
    at: str | None = "08:00"
    #: A five-field crontab expression ("0 8 * * mon-fri").
    cron: str | None = None
    #: Where else the digest is posted, through apprise (issue #7).
    channels: tuple[ChannelConfig, ...] = ()

    @property
    def cron_fields(self) -> dict[str, str]:
        """The schedule as APScheduler's CronTrigger keyword arguments."""
        if self.cron:
            minute, hour, day, month, dow = self.cron.split()
            return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": dow}
        hour, minute = (self.at or "08:00").split(":")
        return {"hour": str(int(hour)), "minute": str(int(minute))}


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The ``[web]`` table."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://localhost:8080"
    enabled: bool = True
    #: How long the link in a subscription's confirmation e-mail works.
    confirm_within: timedelta = timedelta(hours=48)
    #: POST /subscribe requests one client address may make per hour (then 429).
    subscribe_limit: int = 10


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    """The ``[workers]`` table: `monitor run --role worker` processes (issue #9)."""

    #: Jobs (polls, digests) one worker process runs at once.
    concurrency: int = 8
    #: How often a worker tells the database it is alive.
    heartbeat: timedelta = timedelta(seconds=10)
    #: A worker silent this long is taken for dead: its jobs are run again by another.
    stalled_after: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, as ``config.load`` returns it."""

    path: Path
    monitor: MonitorSettings
    sources: tuple[SourceConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = (DigestConfig(name="daily"),)
    smtp: SmtpConfig | None = None
    web: WebConfig = field(default_factory=WebConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(str(self.path), f'no source named "{name}"')

    def digest(self, name: str | None) -> DigestConfig:
        if name is None:
            return self.digests[0]
        for digest in self.digests:
            if digest.name == name:
                return digest
        names = ", ".join(d.name for d in self.digests)
        raise ConfigError(str(self.path), f'no digest named "{name}" (configured: {names})')


def find(path: str | os.PathLike[str] | None) -> Path:
    """The config file: PATH, else ``$MONITOR_CONFIG``, else ``./monitor.toml``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("MONITOR_CONFIG")
    return Path(env) if env else Path("monitor.toml")


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check a monitor.toml; raise ConfigError naming every problem in it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            str(path), "no such file (run `monitor init` to write a starter configuration)"
        ) from exc
    except OSError as exc:
        raise ConfigError(str(path), "cannot read the configuration") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"TOML syntax error: {exc}") from exc
    reader = _Reader(path)
    config = reader.config(data)
    if reader.problems:
        raise ConfigError("", "\n".join(f"{path}: {problem}" for problem in reader.problems))
    assert config is not None
    return config


class _Reader:
    """Builds the records, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}" if where else what)

    def table(self, value: object, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(where, f"expected a table; got {_type_name(value)}")
            return {}
        for key in value:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                if where == "smtp" and key == "password":
                    hint = " (never write the password here: name a variable with password_env)"
                self.problem(_key(where, key), f"unknown key{hint}")
        return value

    def get(self, table: Mapping[str, Any], key: str, where: str, kind: type[T], default: T) -> T:
        if key not in table:
            return default
        value: object = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.problem(_key(where, key), f"expected {_kind_name(kind)}; got {_type_name(value)}")
        return default

    def optional(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        """A string that may be absent."""
        if key not in table:
            return None
        return self.get(table, key, where, str, "")

    def convert(
        self, table: Mapping[str, Any], key: str, where: str, fn: Callable[[str], T], default: T
    ) -> T:
        text = self.optional(table, key, where)
        if text is None:
            return default
        try:
            return fn(text)
        except ValueError as exc:
            self.problem(_key(where, key), str(exc))
            return default

    def path_of(self, table: Mapping[str, Any], key: str, default: str) -> Path:
        return self.base / self.get(table, key, "monitor", str, default)

    def config(self, data: dict[str, Any]) -> Config | None:
        self.table(data, "", ("monitor", "source", "smtp", "digest", "web", "workers", "store"))
        settings = self.settings(data.get("monitor", {}))
        sources = self.sources(data.get("source", []), settings)
        digests = self.digests(data.get("digest", []))
        smtp = self.smtp(data["smtp"]) if "smtp" in data else None
        web = self.web(data.get("web", {}))
        workers = self.workers(data.get("workers", {}))
        store = self.store(data.get("store", {}))
        return Config(self.path, settings, sources, digests, smtp, web, workers, store=store)

    def store(self, raw: object) -> StoreConfig:
        table = self.table(raw, "store", tuple(StoreConfig.__dataclass_fields__))
        url = self.optional(table, "url", "store")
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            self.problem(
                "store.url", f'expected a "postgresql://user@host/dbname" URL; got "{url}"'
            )
            url = None
        return StoreConfig(
            url=url,
            password_env=self.optional(table, "password_env", "store"),
            pool_size=self.positive(table, "pool_size", "store", 4),
        )

    def workers(self, raw: object) -> WorkersConfig:
        table = self.table(raw, "workers", tuple(WorkersConfig.__dataclass_fields__))
        defaults = WorkersConfig()
        return WorkersConfig(
            concurrency=self.positive(table, "concurrency", "workers", defaults.concurrency),
            heartbeat=self.convert(
                table, "heartbeat", "workers", parse_duration, defaults.heartbeat
            ),
            stalled_after=self.convert(
                table, "stalled_after", "workers", parse_duration, defaults.stalled_after
            ),
        )

    def settings(self, raw: object) -> MonitorSettings:
        keys = tuple(MonitorSettings.__dataclass_fields__)
        table = self.table(raw, "monitor", keys)
        state_dir = self.path_of(table, "state_dir", "state")
        defaults = MonitorSettings(state_dir, state_dir, state_dir)
        return MonitorSettings(
            state_dir=state_dir,
            rules_dir=self.path_of(table, "rules_dir", "rules"),
            templates_dir=self.path_of(table, "templates_dir", "templates"),
            timezone=self.convert(table, "timezone", "monitor", _zone, defaults.timezone),
            max_age=self.convert(table, "max_age", "monitor", _max_age, defaults.max_age),
            shutdown_timeout=self.convert(
                table, "shutdown_timeout", "monitor", parse_duration, defaults.shutdown_timeout
            ),
            user_agent=self.get(table, "user_agent", "monitor", str, defaults.user_agent),
            concurrency=self.positive(table, "concurrency", "monitor", defaults.concurrency),
            timeout=self.get(table, "timeout", "monitor", float, defaults.timeout),
            keep=self.convert(table, "keep", "monitor", _max_age, defaults.keep),
            clean_workers=self.clean_workers(table),
            nameservers=self.nameservers(table.get("nameservers", [])),
        )

    def nameservers(self, value: object) -> tuple[str, ...]:
        """``nameservers = ["192.0.2.53", "127.0.0.1:5353"]``: IP addresses, each with an
        optional port."""
        where = "monitor.nameservers"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, f'expected a list such as ["192.0.2.53"]; got {value!r}')
            return ()
        for index, server in enumerate(value):
            if not _is_nameserver(server):
                self.problem(f"{where}[{index}]", f'expected "IP" or "IP:PORT"; got "{server}"')
        return tuple(value)

    def clean_workers(self, table: Mapping[str, Any]) -> int | None:
        """``clean_workers``: processes that clean articles; 0: threads; absent: per core."""
        if "clean_workers" not in table:
            return None
        value = self.get(table, "clean_workers", "monitor", int, 0)
        if value < 0:
            self.problem("monitor.clean_workers", f"expected 0 or more; got {value}")
            return None
        return value

    def positive(self, table: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = self.get(table, key, where, int, default)
        if value < 1:
            self.problem(_key(where, key), f"expected a positive number; got {value}")
            return default
        return value

    def sources(self, raw: object, settings: MonitorSettings) -> tuple[SourceConfig, ...]:
        if not isinstance(raw, list):
            self.problem("source", "expected [[source]] tables")
            return ()
        keys = tuple(SourceConfig.__dataclass_fields__)
        sources: list[SourceConfig] = []
        names: set[str] = set()
        for index, entry in enumerate(raw, start=1):
            label = f"source[{index}]"
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                label += f' "{entry["name"]}"'
            table = self.table(entry, label, keys)
            source = self.source(table, label, settings)
            if source is None:
                continue
            if source.name in names:
                self.problem(f"{label}: name", f'"{source.name}" is used by another source')
            names.add(source.name)
            sources.append(source)
        return tuple(sources)

    def source(
        self, table: dict[str, Any], label: str, settings: MonitorSettings
    ) -> SourceConfig | None:
        name = self.get(table, "name", label, str, "")
        url = self.get(table, "url", label, str, "")
        if not name.strip():
            self.problem(f"{label}: name", "missing: every source needs a unique name")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            self.problem(f"{label}: url", f'expected an http(s) URL; got "{url}"')
        kind = self.get(table, "kind", label, str, "auto")
        if kind not in SOURCE_KINDS:
            self.problem(
                f"{label}: kind", f'expected one of {", ".join(SOURCE_KINDS)}; got "{kind}"'
            )
            kind = "auto"
        every = self.convert(table, "every", label, parse_duration, timedelta(minutes=30))
        if every <= timedelta(0):
            self.problem(f"{label}: every", "expected a positive duration")
        selectors = {k: self.optional(table, k, label) for k in ("items", "link", "title", "date")}
        for key, selector in selectors.items():
            if selector is not None:
                self.css(selector, f"{label}: {key}")
        body = self.optional(table, "body", label)
        drop = self.css_list(table, "drop", label)
        if body is not None:
            self.css(body, f"{label}: body")
        if not name.strip() or not url:
            return None
        return SourceConfig(
            name=name,
            url=url,
            kind=cast(SourceKind, kind),  # checked against SOURCE_KINDS above
            every=every,
            max_age=self.convert(table, "max_age", label, _max_age, settings.max_age),
            body=body,
            drop=drop,
            **selectors,
        )

    def css_list(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        """A list of CSS selectors (``drop = [".promo", "#comments"]``), each checked."""
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(_key(where, key), f"expected a list of CSS selectors; got {value!r}")
            return ()
        for index, selector in enumerate(value):
            self.css(selector, f"{_key(where, key)}[{index}]")
        return tuple(value)

    def css(self, selector: str, where: str) -> None:
        """Report a CSS selector that cssselect (the dialect of every selector in the file:
        the listing page's and the cleaner's) cannot read."""
        from cssselect import GenericTranslator, SelectorError

        try:
            GenericTranslator().css_to_xpath(selector)
        except SelectorError as exc:
            self.problem(where, f'not a CSS selector: "{selector}" ({exc})')

    def digests(self, raw: object) -> tuple[DigestConfig, ...]:
        if not isinstance(raw, list):
            self.problem("digest", "expected [[digest]] tables")
            return (DigestConfig(name="daily"),)
        digests: list[DigestConfig] = []
        for index, entry in enumerate(raw, start=1):
            label = f"digest[{index}]"
            table = self.table(entry, label, ("name", "at", "cron", "channels"))
            name = self.get(table, "name", label, str, "daily")
            at = self.optional(table, "at", label)
            cron = self.optional(table, "cron", label)
            if at is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", at):
                self.problem(f"{label}.at", f'expected a time such as "08:00"; got "{at}"')
            if cron is not None and len(cron.split()) != 5:
                self.problem(
                    f"{label}.cron",
                    f'expected five crontab fields ("0 8 * * mon-fri"); got "{cron}"',
                )
            if at is not None and cron is not None:
                self.problem(label, 'give "at" or "cron", not both')
            channels = self.channels(table.get("channels", []), f"{label}.channels")
            digests.append(DigestConfig(name, at if cron is None else None, cron, channels))
        return tuple(digests) or (DigestConfig(name="daily"),)

    def channels(self, raw: object, where: str) -> tuple[ChannelConfig, ...]:
        """A digest's ``channels``: apprise URLs, or tables ``{url = …, topics = […],
        format = "text", alerts = false}``. Only their shape is checked here; apprise
        checks each URL when a command that sends starts (``notify.open_channels``), so
        that commands which send nothing never pay for loading its ~100 plugins."""
        if not isinstance(raw, list):
            self.problem(where, f"expected a list of apprise URLs; got {_type_name(raw)}")
            return ()
        if raw and importlib.util.find_spec("apprise") is None:
            self.problem(where, f"channels need apprise, not installed: {CHANNELS_INSTALL}")
        channels: list[ChannelConfig] = []
        for index, entry in enumerate(raw, start=1):
            at = f"{where}[{index}]"
            if not isinstance(entry, str | dict):
                self.problem(at, f"expected an apprise URL or a table; got {_type_name(entry)}")
                continue
            table = self.table({"url": entry} if isinstance(entry, str) else entry, at, _CHANNEL)
            url = self.get(table, "url", at, str, "")
            what = _channel_url_problem(url)
            if what:
                self.problem(at, what)
                continue
            topics = table.get("topics", [])
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                self.problem(f"{at}.topics", f"expected a list of topics; got {topics!r}")
                topics = []
            fmt = self.get(table, "format", at, str, "markdown")
            if fmt not in CHANNEL_FORMATS:
                self.problem(
                    f"{at}.format", f'expected one of {", ".join(CHANNEL_FORMATS)}; got "{fmt}"'
                )
                fmt = "markdown"
            if any(channel.url == url for channel in channels):
                self.problem(at, "the same URL as another of this digest's channels")
            channels.append(
                ChannelConfig(
                    where=at,
                    url=url,
                    topics=tuple(t.strip() for t in topics if t.strip()),
                    format=cast(ChannelFormat, fmt),  # checked against CHANNEL_FORMATS above
                    alerts=self.get(table, "alerts", at, bool, True),
                )
            )
        return tuple(channels)

    def smtp(self, raw: object) -> SmtpConfig | None:
        table = self.table(raw, "smtp", tuple(SmtpConfig.__dataclass_fields__))
        host = self.get(table, "host", "smtp", str, "")
        if not host:
            self.problem("smtp.host", "missing")
        security = self.get(table, "security", "smtp", str, "starttls")
        if security not in SECURITY:
            self.problem(
                "smtp.security", f'expected one of {", ".join(SECURITY)}; got "{security}"'
            )
            security = "starttls"
        return SmtpConfig(
            host=host,
            port=self.get(table, "port", "smtp", int, 587),
            security=cast(Security, security),  # checked against SECURITY above
            username=self.optional(table, "username", "smtp"),
            password_env=self.optional(table, "password_env", "smtp"),
            sender=self.get(table, "sender", "smtp", str, "Press Monitor <monitor@localhost>"),
            timeout=self.get(table, "timeout", "smtp", float, 60.0),
            retry=self.waits(table.get("retry"), "smtp.retry", DELIVERY_RETRY),
        )

    def waits(
        self, value: object, where: str, default: tuple[timedelta, ...]
    ) -> tuple[timedelta, ...]:
        """``retry = ["1m", "5m", "30m", "2h"]``: one or more positive durations."""
        if value is None:
            return default
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.problem(where, f'expected a list of durations such as ["1m", "5m"]; got {value!r}')
            return default
        waits: list[timedelta] = []
        for index, text in enumerate(value):
            try:
                wait = parse_duration(text)
            except ValueError as exc:
                self.problem(f"{where}[{index}]", str(exc))
                return default
            if wait <= timedelta(0):
                self.problem(f"{where}[{index}]", f'expected a positive duration; got "{text}"')
                return default
            waits.append(wait)
        return tuple(waits)

    def web(self, raw: object) -> WebConfig:
        table = self.table(
            raw,
            "web",
            ("listen", "base_url", "enabled", "confirm_within", "subscribe_limit"),
        )
        listen = self.get(table, "listen", "web", str, "127.0.0.1:8080")
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            self.problem("web.listen", f'expected "HOST:PORT"; got "{listen}"')
            host, port = "127.0.0.1", "8080"
        base_url = self.get(table, "base_url", "web", str, f"http://{host}:{port}")
        return WebConfig(
            host=host.strip("[]"),
            port=int(port),
            base_url=base_url.rstrip("/"),
            enabled=self.get(table, "enabled", "web", bool, True),
            confirm_within=self.convert(
                table, "confirm_within", "web", parse_duration, timedelta(hours=48)
            ),
            subscribe_limit=self.get(table, "subscribe_limit", "web", int, 10),
        )


_CHANNEL = ("url", "topics", "format", "alerts")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://\S+")


def _channel_url_problem(url: str) -> str | None:
    """What is wrong with a channel URL's shape, if anything. The URL itself is never quoted:
    it may hold a token."""
    if not url:
        return 'missing url: an apprise URL such as "json://host/path" or "tgram://${TOKEN}/CHAT"'
    found = _URL.fullmatch(url.strip())
    if found is None:
        return 'not a URL: expected "scheme://…", such as "json://host/path"'
    if "$" in found.group(1):
        return "the scheme cannot come from the environment"
    unclosed = CHANNEL_VARIABLE.sub("", url)
    if "${" in unclosed:
        return "expected ${NAME} (letters, digits, _) for an environment variable"
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f'unknown timezone "{name}" (expected a name such as "Asia/Almaty")'
        ) from exc


def _max_age(text: str) -> timedelta | None:
    age = parse_duration(text)
    return age if age > timedelta(0) else None


def _key(where: str, key: str) -> str:
    return (
        f"{where}.{key}"
        if where and not where.startswith("source[")
        else f"{where}: {key}"
        if where
        else key
    )


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _kind_name(kind: type) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false"}
    return names.get(kind, kind.__name__)
