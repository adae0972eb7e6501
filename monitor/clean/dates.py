"""Publication dates: a page's date strings → aware datetimes, never the clock.

    "2024-05-14T11:30:00+05:00"  → 2024-05-14 11:30 +05:00   (the zone the page gave is kept)
    "2024-05-14"                 → 2024-05-14 00:00 UTC      (a day with no time: midnight UTC)
    "2024-05-14T11:30:00"        → 2024-05-14 11:30 UTC      (a time with no zone: taken as UTC)
    "Tue, 14 May 2024 06:30 GMT" → 2024-05-14 06:30 UTC      (RFC 2822, as in some <meta>)

A press release's dateline ("Brussels, 14 May 2024 - The EU…", or the same in Russian with a
genitive month name) is read from the first lines of its text when the markup names no date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

#: Dates before this are typos or placeholders ("0001-01-01", "1970-01-01").
MIN_YEAR = 1990
MONTHS = {
    **{
        name: number
        for number, names in enumerate(
            [
                ("jan", "january"),
                ("feb", "february"),
                ("mar", "march"),
                ("apr", "april"),
                ("may",),
                ("jun", "june"),
                ("jul", "july"),
                ("aug", "august"),
                ("sep", "sept", "september"),
                ("oct", "october"),
                ("nov", "november"),
                ("dec", "december"),
            ],
            start=1,
        )
        for name in names
    },
    # Russian month names in the genitive, as datelines write them ("14 мая 2024").
    **{
        name: number
        for number, name in enumerate(
            [
                "января",
                "февраля",
                "марта",
                "апреля",
                "мая",
                "июня",
                "июля",
                "августа",
                "сентября",
                "октября",
                "ноября",
                "декабря",
            ],
            start=1,
        )
    },
}
#: Where a dateline's date may start: the line's start, or after a place name and a comma.
_LEAD = r"^(?:[^\W\d][^\d\n,]{0,40},\s*)?"
_DAY_MONTH_YEAR = re.compile(
    _LEAD + r"(\d{1,2})(?:st|nd|rd|th)?\s+([^\W\d_]{3,9})\.?,?\s+(\d{4})\b"
)
_MONTH_DAY_YEAR = re.compile(_LEAD + r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,\s+(\d{4})\b")
_NUMERIC = re.compile(_LEAD + r"(?:(\d{1,2})[./](\d{1,2})[./](\d{4})|(\d{4})-(\d{2})-(\d{2}))\b")
_SPACED_ZONE = re.compile(r"\s+([+-]\d{2}:?\d{2}|Z)$")
#: How many of the text's first lines a dateline may sit in.
DATELINE_LINES = 2


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime for a date string a page wrote, or None when it is not a date."""
    if not value:
        return None
    value = value.strip()
    parsed = _iso(value) or _rfc2822(value)
    if parsed is None or parsed.year < MIN_YEAR:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def midnight_utc(day: date) -> datetime:
    """The start of ``day`` in UTC: how a date without a time is stored."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def dateline(text: str) -> datetime | None:
    """The date a press release's opening line gives ("Brussels, 14 May 2024 - …"), or None.

    Only a date that opens a line, or follows a place name and a comma there, counts: "On 12
    March the Council…" names an event's day, not the publication's.
    """
    for line in text.split("\n", DATELINE_LINES)[:DATELINE_LINES]:
        day = _line_date(line.strip())
        if day is not None:
            return midnight_utc(day)
    return None


def _line_date(line: str) -> date | None:
    found = _DAY_MONTH_YEAR.match(line)
    if found:
        return _day(found.group(3), MONTHS.get(found.group(2).lower()), found.group(1))
    found = _MONTH_DAY_YEAR.match(line)
    if found:
        return _day(found.group(3), MONTHS.get(found.group(1).lower()), found.group(2))
    found = _NUMERIC.match(line)
    if found is None:
        return None
    if found.group(4):
        return _day(found.group(4), int(found.group(5)), found.group(6))
    # dd.mm.yyyy: the European order, as EU and Russian-language sites write it
    return _day(found.group(3), int(found.group(2)), found.group(1))


def _iso(value: str) -> datetime | None:
    compact = _SPACED_ZONE.sub(r"\1", value)  # "2024-05-14 11:30 +05:00" → "…11:30+05:00"
    for candidate in (compact, compact.replace(" ", "T", 1)):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    return None


def _rfc2822(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _day(year: str, month: int | None, day: str) -> date | None:
    if month is None or int(year) < MIN_YEAR:
        return None
    try:
        return date(int(year), month, int(day))
    except ValueError:
        return None
