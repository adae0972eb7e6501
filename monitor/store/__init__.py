"""store: everything press-monitor remembers, behind one narrow interface.

SQL lives only in this package (DESIGN §7): ``sqlite.py`` is the embedded implementation, and a
PostgreSQL one can later sit beside it. Stages never see a connection: ``pipeline.py`` reads
records out, passes them to the stages, and writes results back through a :class:`Store`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from monitor.models import (
    Article,
    Delivery,
    DigestEntry,
    FetchResult,
    Item,
    Match,
    Signatures,
    SourceState,
    Stored,
    Subscriber,
)

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.postgres import PostgresStore
    from monitor.store.sqlite import SqliteStore

#: How an item seen in a source ended: its article stored (or already known), or too old.
ItemOutcome = Literal["stored", "old", "known"]
#: What kind of message a delivery is.
DeliveryKind = Literal["digest", "alert", "confirm"]


class Store(Protocol):
    """What the pipeline, the notifier, the CLI and the web pages need from the database.

    One writer: the daemon owns one Store and calls it from one thread. Read-only commands
    open their own. Operational failures (locked, full, read-only) raise StoreError.
    """

    path: Path

    def close(self) -> None: ...

    # -- sources -------------------------------------------------------------------------
    def source_state(self, source: str) -> SourceState:
        """The remembered validators and health of a source (all defaults if never polled)."""

    def record_poll(
        self,
        source: str,
        now: datetime,
        fetched: FetchResult | None,
        error: str | None,
        next_poll: datetime | None = None,
    ) -> None:
        """Remember one poll: new validators on success (kept when not modified), the error
        and one more consecutive failure on error, the success time and zero failures on ok;
        and when the source is due again."""

    def sources_health(self) -> dict[str, SourceState]:
        """Every source ever polled, by name."""

    # -- items and articles ----------------------------------------------------------------
    def unseen_items(self, source: str, items: list[Item]) -> list[Item]:
        """The items this source has not had remembered (by guid, else URL), in order."""

    def remember_items(
        self, source: str, items: list[Item], outcome: ItemOutcome, now: datetime
    ) -> None:
        """Remember items so that later polls skip them."""

    def known_article(self, url: str, key: str | None = None) -> int | None:
        """The id of the stored article with this canonical URL, or else with this URL key
        (clean.url_key), if any."""

    def save_article(
        self,
        source: str,
        item: Item,
        article: Article,
        matches: list[Match],
        now: datetime,
        *,
        signature: str | None = None,
        near_duplicate_of: int | None = None,
        url_key: str | None = None,
    ) -> Stored:
        """Store an article and its matches, and remember the item, in one transaction.

        The same canonical URL (or ``url_key``) again: nothing is written,
        ``Stored(id, new=False)``. The same non-empty text as a stored article, or
        ``near_duplicate_of`` a stored original: linked to it (``duplicate_of``), its
        matches not recorded again. Otherwise stored with its matches (and its text's
        ``signature``), ``new=True``."""

    def recent_signatures(self, source: str, since: datetime) -> Signatures:
        """The MinHash signatures of the originals found since ``since`` from sources other
        than ``source``, oldest first: the candidates a new article may near-duplicate."""

    def articles_since(self, since: datetime) -> Iterator[tuple[int, Article]]:
        """Stored articles (not duplicates) found since ``since``, newest first."""

    def add_matches(self, found: list[tuple[int, Match]], now: datetime) -> list[tuple[int, Match]]:
        """Backfill (#6): store each (article id, match) whose article has no match of that
        rule or topic yet, filed for the digest whatever the rule's alert mode (an old
        article is never alerted); return those stored."""

    # -- what notify shows -------------------------------------------------------------------
    def recent_entries(self, topic: str | None = None, limit: int = 100) -> list[DigestEntry]:
        """The newest matched articles (on ``topic``, or on any), newest found first."""

    def topics(self) -> list[str]:
        """Every topic with at least one match, sorted."""

    def match_counts(self, since: datetime) -> dict[str, int]:
        """Matches recorded since ``since``, per topic."""

    # -- subscribers and deliveries ------------------------------------------------------------
    def add_subscriber(
        self, email: str, digest: str, topics: tuple[str, ...], now: datetime
    ) -> Subscriber:
        """Add a subscriber, or update the digest and topics of an existing address."""

    def remove_subscriber(self, email: str) -> bool:
        """Remove a subscriber; False when there was none."""

    def subscribers(self, digest: str | None = None) -> list[Subscriber]:
        """Subscribers (of one digest), by address."""

    def digest_entries(
        self, subscriber: Subscriber, now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """Matched articles on the subscriber's topics since their last delivered digest
        (a first digest covers the 7 days before ``now``), newest first, each article once;
        and the cursor (the highest match id covered) to hand back to ``begin_delivery``."""

    def alert_entries(self, subscriber: Subscriber) -> list[DigestEntry]:
        """Articles with immediate-alert matches on the subscriber's topics, found after they
        subscribed, never alerted to them yet."""

    def begin_delivery(
        self,
        subscriber: Subscriber,
        kind: DeliveryKind,
        message_id: str,
        article_ids: list[int],
        cursor: int,
        now: datetime,
        message: bytes | None = None,
    ) -> int:
        """Record a message about to be sent (its bytes kept for retries); for an alert, mark
        its articles alerted to the subscriber now (an article is alerted at most once,
        whatever crash follows)."""

    def finish_delivery(
        self,
        delivery_id: int,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record the outcome; a delivered digest moves the subscriber's cursor; a failure
        with ``retry_at`` is claimed again by ``claim_retries`` from then on."""

    def claim_retries(self, now: datetime) -> list[Delivery]:
        """Failed deliveries due for another attempt, marked 'sending' (one attempt more)."""

    def interrupted_deliveries(self) -> list[Delivery]:
        """Deliveries left 'sending' by a process that stopped before recording the outcome."""

    def prune(self, cutoff: datetime) -> int:
        """Empty the text of articles found before ``cutoff`` that nothing shows any more."""

    def cover_digest(self, delivery_id: int) -> None:
        """Move the subscriber's digest cursor past a digest that may have gone out."""

    def drop_retries(self, subscriber: Subscriber, kind: DeliveryKind, reason: str) -> int:
        """Clear the pending retries of a subscriber's messages of one kind (not those of
        digests the cursor has passed: see ``cover_digest``)."""

    def mark_bounced(self, email: str, reason: str, now: datetime) -> bool:
        """Stop all mail to an address that failed permanently, until it subscribes again."""

    def subscriber(self, email: str) -> tuple[Subscriber, str] | None:
        """The subscriber with this address and its status (active, pending, bounced)."""

    def confirmations_since(self, email: str, since: datetime) -> int:
        """Confirmation messages recorded for this address since ``since``."""

    def last_delivery(self) -> tuple[datetime, str, str] | None:
        """When, to whom and what kind the last message was delivered."""

    def pending_deliveries(self) -> list[tuple[str, str, int, datetime, str]]:
        """Messages waiting to be sent again, soonest first: kind, recipient, attempts made,
        when the next attempt is due, and why the last one failed."""

    # -- other channels (issue #7): a digest's apprise URLs, through the same outbox --------
    def register_channel(self, digest: str, key: str, label: str, now: datetime) -> int:
        """The id of a digest's channel (``key``: a hash of the digest and the URL as
        written; ``label``: the URL redacted), added when new with its alert cursor at the
        newest match (it is alerted what is found after it was added)."""

    def channel_digest_entries(
        self, channel_id: int, topics: tuple[str, ...], now: datetime
    ) -> tuple[list[DigestEntry], int]:
        """Matched articles on ``topics`` (empty: every topic) since the channel's last
        delivered digest (a first digest covers the 7 days before ``now``), newest first;
        and the cursor to hand to ``begin_channel_delivery``."""

    def channel_alert_entries(
        self, channel_id: int, topics: tuple[str, ...]
    ) -> tuple[list[DigestEntry], int]:
        """Articles with immediate matches on ``topics`` not yet alerted to the channel, and
        the cursor to hand to ``begin_channel_delivery``."""

    def begin_channel_delivery(
        self,
        channel_id: int,
        kind: DeliveryKind,
        message_id: str,
        article_ids: list[int],
        cursor: int,
        now: datetime,
        message: bytes,
    ) -> int:
        """Record a post about to be sent (``finish_delivery`` records the outcome and, for a
        digest, moves the channel's cursor); an alert moves the channel's alert cursor now."""

    def drop_channel_retries(self, channel_id: int, reason: str) -> int:
        """Clear the pending retries of the channel's digests that the next one covers."""


def open_store(path: Path, *, readonly: bool = False) -> SqliteStore:
    """Open (creating and migrating if needed) the SQLite store at ``path``."""
    from monitor.store.sqlite import SqliteStore

    return SqliteStore(path, readonly=readonly)


def open_configured(config: Config, *, readonly: bool = False) -> SqliteStore | PostgresStore:
    """The store monitor.toml names: PostgreSQL when ``[store] url`` is set (issue #9),
    else the SQLite file ``state/monitor.db``."""
    if config.store.url is None:
        return open_store(config.monitor.db_path, readonly=readonly)
    return open_postgres(
        config.store.url,
        password=config.store.password(),
        readonly=readonly,
        pool_size=config.store.pool_size,
    )


def open_postgres(
    url: str, *, password: str | None = None, readonly: bool = False, pool_size: int = 4
) -> PostgresStore:
    """Open (migrating if needed) the PostgreSQL store at ``url``. StoreError when psycopg is
    not installed (the ``postgres`` extra), the server cannot be reached or the login fails."""
    from monitor.errors import StoreError

    try:
        from monitor.store.postgres import PostgresStore
    except ImportError as exc:
        raise StoreError(
            "store.url", "the PostgreSQL store needs psycopg: pip install 'press-monitor[postgres]'"
        ) from exc
    return PostgresStore(url, password=password, readonly=readonly, pool_size=pool_size)
