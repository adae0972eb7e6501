"""The flows of press-monitor, in the order they run.

poll_source:  state = store.source_state(source)
              fetched = await fetch.fetch_source(source, state)    # 304 → not_modified
              items = store.unseen_items(fetched.items)            # seen before: dropped
              too old (max_age): remembered, not fetched
              per item: page = await fetch.fetch_page(item.url)    # failure → teaser kept
                        article = clean.clean(item, page)          # worker thread
                        matches = match.match(article, rules)      # worker thread
                        stored = store.save_article(article, matches)  # the one writer; dedupes
              store.record_poll(source, result)                    → PollResult
after_polls:  feed files rewritten when there were matches; immediate alerts sent
send_digest:  per subscriber: entries = store.digest_entries(subscriber, now)
              message = notify.compose_digest(entries)             # pure
              store.begin_delivery → notify.deliver → store.finish_delivery
              failure: retry_at by RETRY_BACKOFF (never for 5xx: subscriber bounced)
              then per channel (apprise, #7): store.channel_digest_entries → compose_post
              → store.begin_channel_delivery → channel.send (thread) → store.finish_delivery
retries:      store.claim_retries(now) → notify.deliver(same bytes) → store.finish_delivery
start-up:     recover_deliveries: 'sending' left by a crash → digest resent, alert not

One poll of one source is a self-contained unit of work (DESIGN §1). A failure of one item
never fails its source, and a failure of one source never fails the run (STYLE §2).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from monitor import clean, fetch, notify
from monitor.config import DELIVERY_RETRY, DigestConfig, SourceConfig
from monitor.errors import DeliveryError, FetchError, SourceError, StoreError
from monitor.log import event
from monitor.models import (
    Article,
    Delivery,
    DigestEntry,
    Item,
    Match,
    Page,
    PollResult,
    SourceState,
    Stored,
    Subscriber,
)

if TYPE_CHECKING:
    from monitor.match.rules import RuleSet
    from monitor.notify.channels import Channel, Post
    from monitor.runtime import Services
    from monitor.store import DeliveryKind, Store

log = logging.getLogger("monitor.pipeline")

#: How far back a new article is compared with other sources' articles for a near-duplicate
#: (the same press release republished days later is still the same story).
NEAR_DUPLICATE_WINDOW = timedelta(days=7)


def _where(source: SourceConfig) -> str:
    return f'source "{source.name}" ({source.url})'


async def poll_source(
    services: Services, source: SourceConfig, now: datetime, state: SourceState | None = None
) -> PollResult:
    """Poll one source: fetch, remember, fetch and clean new articles, match, store.
    ``state``: the source's state as :func:`poll_due` just read it (else read here)."""
    db, store = services.db, services.store
    if state is None:
        state = await db(store.source_state, source.name)
    try:
        fetched = await fetch.fetch_source(services.client, source, state)
    except SourceError as exc:
        retry = exc.retry_after if isinstance(exc, FetchError) else None
        due = fetch.next_poll(now, source.every, state.failures + 1, retry_after=retry)
        await db(store.record_poll, source.name, now, None, str(exc), due)
        event(
            log,
            "poll.failed",
            logging.WARNING,
            source=source.name,
            failures=state.failures + 1,
            next_poll=due.isoformat(timespec="seconds"),
            error=str(exc),
        )
        return PollResult(source.name, "error", error=str(exc))
    due = fetch.next_poll(now, source.every, 0)
    if fetched.status == "not_modified":
        await db(store.record_poll, source.name, now, fetched, None, due)
        event(log, "poll.not_modified", source=source.name)
        return PollResult(source.name, "not_modified")

    unseen = await db(store.unseen_items, source.name, list(fetched.items))
    fresh, old = _split_by_age(unseen, source, now)
    outcomes: list[tuple[bool, list[Match], bool]] = []
    if not fresh:
        # Nothing to fetch: the two writes go side by side (one round trip's wait, not two,
        # for a PostgreSQL worker, #9). Their order does not matter here: new validators
        # stored without the old items only means those are remembered at the next change.
        writes = [db(store.record_poll, source.name, now, fetched, None, due)]
        if old:
            writes.append(db(store.remember_items, source.name, old, "old", now))
        await asyncio.gather(*writes)
    else:
        if old:
            await db(store.remember_items, source.name, old, "old", now)
        services.cleaners.expect(len(fresh))
        outcomes = await asyncio.gather(
            *(_process_item(services, source, item, now) for item in fresh)
        )
        # Only now: a poll recorded (its validators) before its items were stored would
        # lose them to a 304 after a crash.
        await db(store.record_poll, source.name, now, fetched, None, due)

    topics: Counter[str] = Counter()
    stored = errors = 0
    for new, matches, failed in outcomes:
        stored += new
        errors += failed
        topics.update(match.topic for match in matches)
    event(
        log,
        "poll.done",
        source=source.name,
        items=len(fetched.items),
        new_items=len(unseen),
        old=len(old),
        articles=stored,
        matches=sum(topics.values()),
    )
    return PollResult(
        source.name,
        "ok",
        new_items=len(unseen),
        new_articles=stored,
        matches=dict(topics),
        article_errors=errors,
    )


def _split_by_age(
    items: list[Item], source: SourceConfig, now: datetime
) -> tuple[list[Item], list[Item]]:
    """Items within max_age (or undated) to fetch, and older ones only to remember."""
    if source.max_age is None:
        return items, []
    oldest = now - source.max_age
    fresh = [i for i in items if i.published is None or i.published >= oldest]
    old = [i for i in items if i.published is not None and i.published < oldest]
    return fresh, old


async def _process_item(
    services: Services, source: SourceConfig, item: Item, now: datetime
) -> tuple[bool, list[Match], bool]:
    """Fetch, clean, match and store one item: (stored as new, its matches, page failed)."""
    db, store = services.db, services.store
    known = await db(store.known_article, clean.canonical_url(item.url), clean.url_key(item.url))
    if known is not None:
        services.cleaners.expect(-1)  # nothing to clean after all
        await db(store.remember_items, source.name, [item], "known", now)
        return False, [], False
    page: Page | None = None
    reason = ""
    place = services.pages.place()  # fetched pages wait for a cleaner in a bounded number
    try:
        try:
            page = await fetch.fetch_page(
                services.client, item.url, source=source.name, admit=place.take
            )
        except FetchError as exc:
            reason = exc.what
            event(
                log,
                "article.fetch_failed",
                logging.WARNING,
                source=source.name,
                url=item.url,
                error=str(exc),
            )
        article, matches, signature = await services.clean(
            _clean_and_match, item, page, source, reason
        )
    finally:
        await place.give_back()
    stored = await db(_save, store, source.name, item, article, matches, signature, now)
    if not stored.new:
        return False, [], page is None
    event(
        log,
        "article.stored",
        source=source.name,
        url=article.url,
        chars=len(article.text),
        lang=article.language or "",
        topics=",".join(sorted({m.topic for m in matches})),
    )
    return True, matches, page is None


def _save(
    store: Store,
    source: str,
    item: Item,
    article: Article,
    matches: list[Match],
    signature: str | None,
    now: datetime,
) -> Stored:
    """save_article, linked to the other sources' recent original it near-duplicates, if any.

    On the writer thread, so no other source's article is saved between the look-up and the
    save (two sources publishing the same release in one run still make one entry)."""
    near = None
    if signature is not None:
        candidates = store.recent_signatures(source, now - NEAR_DUPLICATE_WINDOW)
        near = clean.near_duplicate(signature, candidates)
    return store.save_article(
        source,
        item,
        article,
        matches,
        now,
        signature=signature,
        near_duplicate_of=near,
        url_key=clean.url_key(article.url),
    )


def _clean_and_match(
    rules: RuleSet, item: Item, page: Page | None, source: SourceConfig, reason: str
) -> tuple[Article, list[Match], str | None]:
    """The article, its matches and its text's near-duplicate signature (a cleaner process,
    see monitor.cleaners: everything here is pure and its arguments pickle)."""
    from monitor import match

    article = clean.clean(
        item, page, source=source.name, reason=reason, body=source.body, drop=source.drop
    )
    if not article.text and not article.title:
        return article, [], None
    return article, match.match(article, rules), clean.signature(article)


async def poll_due(services: Services, source: SourceConfig, now: datetime) -> SourceState | None:
    """The source's state when the daemon's tick at ``now`` should poll it, for the poll to
    go on with (one store call fewer, #9: a PostgreSQL worker's poll is its round trips);
    None while a failing source backs off (`poll --once` polls regardless)."""
    state = await services.db(services.store.source_state, source.name)
    return state if fetch.is_due(state, source.every, now) else None


async def guarded_poll(
    services: Services, source: SourceConfig, now: datetime, state: SourceState | None = None
) -> PollResult:
    """The job boundary: poll_source, with a bug logged loudly and kept as the source's error."""
    try:
        return await poll_source(services, source, now, state)
    except StoreError as exc:  # locked, full, read-only: not a bug; the next poll tries again
        event(log, "poll.store_error", logging.ERROR, source=source.name, error=str(exc))
        return PollResult(source.name, "error", error=str(exc))
    except Exception as exc:  # the one broad except: a bug must not stop the other sources
        error = f"internal error: {type(exc).__name__}: {exc}"
        log.critical("poll.crashed source=%s", source.name, exc_info=True)
        await services.db(services.store.record_poll, source.name, now, None, error)
        return PollResult(source.name, "error", error=error)


async def poll_sources(
    services: Services,
    sources: Iterable[SourceConfig],
    now: datetime,
    on_result: Callable[[PollResult], None] | None = None,
) -> list[PollResult]:
    """Poll several sources side by side, then rewrite feeds and send alerts (after_polls)."""

    async def one(source: SourceConfig) -> PollResult:
        result = await guarded_poll(services, source, now)
        if on_result is not None:
            on_result(result)
        return result

    results = list(await asyncio.gather(*(one(source) for source in sources)))
    await after_polls(services, results, now)
    return results


async def after_polls(services: Services, results: list[PollResult], now: datetime) -> None:
    """Rewrite the feed files and send immediate alerts when the polls found matches."""
    if not any(result.matches for result in results):
        return
    await write_feeds(services, now)
    await send_alerts(services, now)


async def write_feeds(services: Services, now: datetime) -> None:
    """Rewrite state/feeds/all.xml and one file per topic (RSS, and Atom beside it)."""
    db, store = services.db, services.store
    feeds: dict[str | None, list[DigestEntry]] = {None: await db(store.recent_entries, None, 100)}
    for topic in await db(store.topics):
        feeds[topic] = await db(store.recent_entries, topic, 100)
    config = services.config
    try:
        paths = await asyncio.to_thread(
            notify.write_feeds, feeds, config.monitor.feeds_dir, config.web.base_url, now
        )
    except OSError as exc:  # disk full, read-only: the old files stay; the next poll retries
        event(
            log,
            "feeds.failed",
            logging.ERROR,
            dir=str(config.monitor.feeds_dir),
            error=f"{type(exc).__name__}: {exc}",
        )
        return
    event(log, "feeds.written", files=len(paths), dir=str(config.monitor.feeds_dir))


async def send_alerts(services: Services, now: datetime) -> int:
    """Send each subscriber one message with their not-yet-alerted immediate matches.

    One at a time: polls finishing together each call this, and two runs side by side would
    both read the same not-yet-alerted articles and alert them twice (found by the crash
    test of issue #8)."""
    db, store = services.db, services.store
    sent = 0
    async with services.alerting:
        for subscriber in await db(store.subscribers, None):
            entries = await db(store.alert_entries, subscriber)
            if not entries:
                continue
            message = notify.compose_alert(
                services.templates, services.config, subscriber, entries, now
            )
            try:
                await _deliver(services, subscriber, "alert", message, entries, 0, now)
                sent += 1
            except DeliveryError:
                continue  # logged by _deliver; the alert is not sent twice (DESIGN §9)
        await post_alerts(services, now)
    return sent


@dataclass(frozen=True, slots=True)
class DigestResult:
    """What sending one digest came to."""

    digest: str
    sent: int = 0
    failed: int = 0
    #: Subscribers with nothing new (no message).
    empty: int = 0
    errors: tuple[str, ...] = ()
    #: Posts to the digest's other channels (apprise, issue #7): delivered, and failed
    #: (their errors are in ``errors`` too; retried later).
    posted: int = 0
    post_failed: int = 0


async def send_digest(services: Services, digest: DigestConfig, now: datetime) -> DigestResult:
    """Send the digest to each of its subscribers with something new; record every delivery."""
    db, store = services.db, services.store
    sent = failed = empty = 0
    errors: list[str] = []
    for subscriber in await db(store.subscribers, digest.name):
        # A failed digest still waiting for a retry is covered by this one (its cursor did
        # not move): drop the retry rather than send the same articles twice.
        await db(store.drop_retries, subscriber, "digest", "superseded by the next digest")
        entries, cursor = await db(store.digest_entries, subscriber, now)
        if not entries:
            empty += 1
            continue
        message = notify.compose_digest(
            services.templates, services.config, digest, subscriber, entries, now
        )
        try:
            await _deliver(services, subscriber, "digest", message, entries, cursor, now)
            sent += 1
        except DeliveryError as exc:
            failed += 1
            errors.append(str(exc))
    # After the e-mail: a failing channel never holds up the subscribers' digests.
    posted, post_errors = await post_digest(services, digest, now)
    event(
        log,
        "digest.done",
        digest=digest.name,
        sent=sent,
        failed=failed,
        empty=empty,
        posted=posted,
        post_failed=len(post_errors),
    )
    return DigestResult(
        digest.name, sent, failed, empty, (*errors, *post_errors), posted, len(post_errors)
    )


async def _deliver(
    services: Services,
    subscriber: Subscriber,
    kind: DeliveryKind,
    message: EmailMessage,
    entries: list[DigestEntry],
    cursor: int,
    now: datetime,
) -> None:
    """The outbox: record the message, send it, record the outcome. Raises DeliveryError."""
    db, store = services.db, services.store
    ids = [entry.article_id for entry in entries]
    delivery = await db(
        store.begin_delivery,
        subscriber,
        kind,
        str(message["Message-ID"]),
        ids,
        cursor,
        now,
        message.as_bytes(),
    )
    try:
        await notify.deliver(message, services.config)
    except DeliveryError as exc:
        if services.metrics is not None:
            services.metrics.mails.labels(kind, "failed").inc()
        await _failed(services, delivery, kind, subscriber.email, exc, 1, now)
        raise
    if services.metrics is not None:
        services.metrics.mails.labels(kind, "sent").inc()
    await db(store.finish_delivery, delivery, now, None)
    event(log, f"{kind}.sent", to=subscriber.email, articles=len(ids))


# -- retries and recovery (issue #7) ----------------------------------------------------------
#: The wait before the 2nd, 3rd, 4th and 5th attempt; a 5th failure is final (a digest's
#: articles then come in the next digest: its cursor did not move). ``[smtp] retry`` sets it.
RETRY_BACKOFF = DELIVERY_RETRY


def retry_time(
    kind: str,
    error: DeliveryError,
    attempts: int,
    now: datetime,
    backoff: tuple[timedelta, ...] = RETRY_BACKOFF,
) -> datetime | None:
    """When to try a failed message again; None: never.

    A permanent failure (5xx) is final. An alert that the server may have taken (a timeout
    or a dropped connection after the connection was made) is not resent: alerts are at most
    once (DESIGN §9). Digests and confirmations are resent: at least once, with the same
    Message-ID, so a client that got the first copy shows one.
    """
    if error.permanent or attempts > len(backoff):
        return None
    if kind == "alert" and error.maybe_sent:
        return None
    return now + backoff[attempts - 1]


async def _failed(
    services: Services,
    delivery: int,
    kind: str,
    recipient: str,
    error: DeliveryError,
    attempts: int,
    now: datetime,
) -> None:
    """Record a failed attempt, with its retry time; a permanent failure stops all mail to
    the subscriber until they subscribe again."""
    db, store = services.db, services.store
    smtp = services.config.smtp
    backoff = smtp.retry if smtp is not None else RETRY_BACKOFF
    retry_at = retry_time(kind, error, attempts, now, backoff)
    await db(store.finish_delivery, delivery, now, str(error), retry_at)
    if error.permanent and kind != "confirm":
        await db(store.mark_bounced, recipient, str(error), now)
    event(
        log,
        f"{kind}.failed",
        logging.WARNING,
        to=recipient,
        attempt=attempts,
        retry_at=retry_at.isoformat() if retry_at else "never",
        bounced=error.permanent and kind != "confirm",
        error=str(error),
    )


async def retry_deliveries(services: Services, now: datetime) -> int:
    """Send again the failed messages whose retry time has come (the same bytes, the same
    Message-ID); how many went out."""
    db, store = services.db, services.store
    sent = 0
    for delivery in await db(store.claim_retries, now):
        if not delivery.message:
            await db(store.finish_delivery, delivery.id, now, "nothing kept to resend")
            continue
        if delivery.channel_id is not None:
            sent += await _repost(services, delivery, now)
            continue
        message = email.message_from_bytes(delivery.message, policy=email.policy.SMTP)
        assert isinstance(message, EmailMessage)  # the SMTP policy builds EmailMessage
        try:
            await notify.deliver(message, services.config)
        except DeliveryError as exc:
            await _failed(
                services,
                delivery.id,
                delivery.kind,
                delivery.recipient,
                exc,
                delivery.attempts,
                now,
            )
            continue
        await db(store.finish_delivery, delivery.id, now, None)
        event(log, f"{delivery.kind}.sent", to=delivery.recipient, attempt=delivery.attempts)
        sent += 1
    return sent


async def recover_deliveries(services: Services, now: datetime) -> int:
    """Resolve the deliveries a stopped process left 'sending' (run at start-up, before any
    other sending): whether the server took the message cannot be known, so

    - a digest or a confirmation is queued to be sent again now by ``retry_deliveries``
      (at least once; the same Message-ID, so the reader's client shows one);
    - an alert is recorded failed and not resent (at most once, DESIGN §9).

    Returns how many were queued to be sent again."""
    db, store = services.db, services.store
    queued = 0
    for delivery in await db(store.interrupted_deliveries):
        if delivery.kind == "alert":
            what = "interrupted; not resent: an alert is sent at most once"
            await db(store.finish_delivery, delivery.id, now, what)
        else:
            what = "interrupted before the outcome was recorded; sent again"
            await db(store.finish_delivery, delivery.id, now, what, now)
            # It may have gone out: the next digest must not repeat its articles in another
            # message, and this resend (same Message-ID) must survive it (#8).
            await db(store.cover_digest, delivery.id)
            queued += 1
        event(log, "delivery.interrupted", kind=delivery.kind, to=delivery.recipient, what=what)
    return queued


async def send_confirm(services: Services, subscriber: Subscriber, now: datetime) -> None:
    """Send the double opt-in message for a subscription asked for on the web page (recorded
    in the outbox like any message; a transient failure is retried). Raises DeliveryError."""
    message = notify.compose_confirm(services.templates, services.config, subscriber, now)
    await _deliver(services, subscriber, "confirm", message, [], 0, now)


# -- other channels: a digest's apprise URLs (issue #7) ---------------------------------------
# The same outbox as e-mail: recorded before and after, retried with backoff, an interrupted
# digest resent and an interrupted alert not. apprise is synchronous: posts run in a thread.


async def post_digest(
    services: Services, digest: DigestConfig, now: datetime
) -> tuple[int, list[str]]:
    """Post the digest to each of its channels with something new since its last delivered
    one; how many went, and the errors of those that did not (retried later)."""
    db, store = services.db, services.store
    posted, errors = 0, []
    for channel_id, channel in services.channels.items():
        if channel.digest != digest.name:
            continue
        await db(store.drop_channel_retries, channel_id, "superseded by the next digest")
        topics = channel.config.topics
        entries, cursor = await db(store.channel_digest_entries, channel_id, topics, now)
        if not entries:
            continue
        base_url = services.config.web.base_url
        post = notify.compose_post("digest", digest.name, channel.config, entries, base_url)
        try:
            await _post(services, channel_id, channel, "digest", post, entries, cursor, now)
            posted += 1
        except DeliveryError as exc:
            errors.append(str(exc))
    return posted, errors


async def post_alerts(services: Services, now: datetime) -> int:
    """Post the immediate matches not yet alerted to each channel that takes alerts, on its
    topics (every digest's channels: a rule's topic reaches the channels that follow it).
    Called by send_alerts, under its lock."""
    db, store = services.db, services.store
    posted = 0
    for channel_id, channel in services.channels.items():
        if not channel.config.alerts:
            continue
        entries, cursor = await db(store.channel_alert_entries, channel_id, channel.config.topics)
        if not entries:
            continue
        base_url = services.config.web.base_url
        post = notify.compose_post("alert", channel.digest, channel.config, entries, base_url)
        try:
            await _post(services, channel_id, channel, "alert", post, entries, cursor, now)
            posted += 1
        except DeliveryError:
            continue  # logged by _post; retried later, never twice at once
    return posted


async def _post(
    services: Services,
    channel_id: int,
    channel: Channel,
    kind: DeliveryKind,
    post: Post,
    entries: list[DigestEntry],
    cursor: int,
    now: datetime,
) -> None:
    """The outbox for a post: record it, send it, record the outcome. Raises DeliveryError."""
    db, store = services.db, services.store
    ids = [entry.article_id for entry in entries]
    post_id = f"<{kind}.{uuid.uuid4().hex}@press-monitor.channel>"
    delivery = await db(
        store.begin_channel_delivery, channel_id, kind, post_id, ids, cursor, now, post.to_bytes()
    )
    try:
        await asyncio.to_thread(channel.send, post)
    except DeliveryError as exc:
        await _failed(services, delivery, kind, channel.label, exc, 1, now)
        raise
    await db(store.finish_delivery, delivery, now, None)
    event(log, f"channel.{kind}.posted", channel=channel.label, articles=len(ids))


async def _repost(services: Services, delivery: Delivery, now: datetime) -> int:
    """Send a failed post again (its kept title and body); 1 when it went, else 0."""
    channel = services.channels.get(delivery.channel_id or 0)
    if channel is None:
        what = "not resent: the channel is no longer configured"
        await services.db(services.store.finish_delivery, delivery.id, now, what)
        return 0
    try:
        await asyncio.to_thread(channel.send, notify.post_from_bytes(delivery.message))
    except DeliveryError as exc:
        await _failed(
            services, delivery.id, delivery.kind, delivery.recipient, exc, delivery.attempts, now
        )
        return 0
    await services.db(services.store.finish_delivery, delivery.id, now, None)
    event(
        log,
        f"channel.{delivery.kind}.posted",
        channel=channel.label,
        attempt=delivery.attempts,
    )
    return 1
