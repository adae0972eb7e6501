"""Matches added after the fact (`monitor rules test ID --backfill`, #6), in the caller's
transaction.

A backfilled match is filed as a digest match whatever the rule's ``alert`` says: it reaches
the next digest and the feeds, never an immediate alert (the article is old news by now). It
is not added when the article already has a match of the same rule, or on the same topic (the
article is already filed there: a digest would list it a second time), or when the article is
gone or is a duplicate row.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from monitor.models import Match
from monitor.store.rows import dump_spans, dump_strings, to_text


def add_matches(
    conn: sqlite3.Connection, found: list[tuple[int, Match]], now: datetime
) -> list[tuple[int, Match]]:
    """Insert each (article id, match) that is new as described above; those inserted."""
    added = []
    for article_id, match in found:
        cur = conn.execute(
            """
            INSERT INTO matches (article_id, rule_id, topic, alert, terms, spans, found_at, why)
            SELECT :article, :rule, :topic, 'digest', :terms, :spans, :now, :why
            WHERE EXISTS (SELECT 1 FROM articles WHERE id = :article AND duplicate_of IS NULL)
              AND NOT EXISTS (SELECT 1 FROM matches WHERE article_id = :article
                              AND (rule_id = :rule OR topic = :topic))
            """,
            {
                "article": article_id,
                "rule": match.rule_id,
                "topic": match.topic,
                "terms": dump_strings(match.terms),
                "spans": dump_spans(match.spans),
                "now": to_text(now),
                "why": match.why,
            },
        )
        if cur.rowcount == 1:
            added.append((article_id, match))
    return added
