"""Every exception press-monitor raises on purpose.

Each message says where it came from (a source name and URL, ``file:line:col``, a key path,
a recipient) and what went wrong; the cause is chained with ``raise … from exc``::

    source "EU Delegation" (https://…/news_en): HTTP 503 Service Unavailable
    rules/elections.toml:4:21: expected a term after OR
"""

from __future__ import annotations


class MonitorError(Exception):
    """The root: ``"<where>: <what>[: <CauseType>: <cause>]"``."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(where, what)
        #: Where the problem is: a source, a file position, a key path, a recipient.
        self.where = where
        #: What is wrong, in a few words.
        self.what = what

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        cause = self.__cause__
        if cause is not None and not isinstance(cause, MonitorError):
            detail = str(cause).strip()
            text += f": {type(cause).__name__}" + (f": {detail}" if detail else "")
        return text


class ConfigError(MonitorError):
    """A user file is wrong: ``monitor.toml``, a rule file, a template. Exit status 2."""


class RuleError(ConfigError):
    """A rule file or query is wrong; ``where`` is ``file:line:col`` or ``query[i]``."""

    def __init__(self, where: str, what: str, *, excerpt: str = "") -> None:
        super().__init__(where, what)
        #: The offending line with a caret under the spot, when the position is known.
        self.excerpt = excerpt

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.excerpt}" if self.excerpt else text


class TemplateError(ConfigError):
    """A template in ``templates/`` cannot be loaded or rendered: file and line."""


class SourceError(MonitorError):
    """A source cannot be polled; kept as the source's last error."""


class FetchError(SourceError):
    """Network, timeout, HTTP status, too large, not allowed by robots.txt."""

    def __init__(self, where: str, what: str, *, retry_after: float | None = None) -> None:
        super().__init__(where, what)
        #: Seconds the server asked us to wait (429/503 with Retry-After), if it did.
        self.retry_after = retry_after


class ParseError(SourceError):
    """Feed, listing page or sitemap bytes that cannot be read."""


class StoreError(MonitorError):
    """An operational database failure the user can act on: locked, disk full, read-only."""


class SchemaVersionError(StoreError):
    """The database was written by a newer press-monitor."""


class StoreConnectError(StoreError, ConfigError):
    """The configured database server cannot be reached or refuses the login (wrong URL, host,
    database or password): a configuration problem, exit status 2 (issue #9)."""


class DeliveryError(MonitorError):
    """A message could not be delivered; ``where`` names the recipient."""

    def __init__(
        self, where: str, what: str, *, permanent: bool = False, maybe_sent: bool = False
    ) -> None:
        super().__init__(where, what)
        #: True for a 5xx reply: retrying will not help.
        self.permanent = permanent
        #: True when the server may have accepted the message before the failure (a timeout or
        #: a dropped connection after DATA): resending might deliver it twice.
        self.maybe_sent = maybe_sent
