"""Dates as listing pages write them → aware datetimes in UTC.

Regular expressions only *find* candidates ("01/06/2021 - 08:32", "31 May 2021", "31.05.2021",
"31 мая 2021", "2021-05-31T10:00+06:00"); python-dateutil parses them, day first. Russian
month names are mapped to English through a small table first. A date without a zone is
taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import dateutil.parser

#: Russian month names and abbreviations, by their first three letters ("мая" → May).
RUSSIAN_MONTHS = {
    "янв": "January",
    "фев": "February",
    "мар": "March",
    "апр": "April",
    "май": "May",
    "мая": "May",
    "июн": "June",
    "июл": "July",
    "авг": "August",
    "сен": "September",
    "окт": "October",
    "ноя": "November",
    "дек": "December",
}
ENGLISH_MONTHS = (
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june"
    " july august september october november december"
).split()

#: Dashes as pages write them: hyphen, en dash, em dash.
DASHES = "-\u2013\u2014"
_TIME = r"(?:\s*(?:[" + DASHES + r",|]|\s)\s*\d{1,2}:\d{2}(?::\d{2})?)?"
_CANDIDATES = re.compile(
    "|".join(
        (
            # ISO 8601: 2021-05-31, 2021-05-31T10:00:00+06:00
            r"(?P<iso>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?)",
            # 31/05/2021, 31.05.2021, 31-05-2021, each maybe with a time after it
            r"(?P<numeric>\b\d{1,2}[./-]\d{1,2}[./-]\d{4}\b" + _TIME + ")",
            # 31 May 2021, 31 мая 2021 года, 31 Dec. 2021, 14:30
            r"(?P<dmy>\b\d{1,2}\s+(?P<m1>[^\W\d_]{3,})\.?,?\s+\d{4}\b" + _TIME + ")",
            # May 31, 2021
            r"(?P<mdy>\b(?P<m2>[^\W\d_]{3,})\.?\s+\d{1,2},?\s+\d{4}\b" + _TIME + ")",
        )
    )
)
#: The parts of a "numeric" candidate: day, month, year, and the time if one follows.
_NUMERIC = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?:\D+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
# A leading time, as in "14:30, 31 мая 2021": moved after the date for dateutil.
_LEADING_TIME = re.compile(r"(\d{1,2}:\d{2})\s*[,|" + DASHES + r"]?\s*$")


def parse_date(text: str) -> datetime | None:
    """One date string (an attribute value, a selected element's text) → UTC, or None."""
    text = " ".join(text.split())
    if not text:
        return None
    return find_date(text)


def find_date(text: str) -> datetime | None:
    """The first date written somewhere in ``text``, in UTC; None when there is none."""
    for found in _CANDIDATES.finditer(text):
        if found["iso"]:
            value = _iso(found["iso"])
        else:
            month = found["m1"] or found["m2"]
            if month is not None and _month(month) is None:
                continue
            candidate = found.group(0)
            if month is not None:
                candidate = candidate.replace(month, _month(month) or month, 1)
            leading = _LEADING_TIME.search(text[: found.start()])
            if leading and not re.search(r"\d:\d{2}", candidate):
                candidate += " " + leading.group(1)
            value = _numeric(candidate) if found["numeric"] else None
            value = value or _dateutil(candidate)
        if value is not None:
            return value
    return None


def _month(word: str) -> str | None:
    """An English month name for ``word``, or None when it names no month."""
    lower = word.lower()
    if lower in ENGLISH_MONTHS:
        return word
    if lower[:3] in RUSSIAN_MONTHS and re.fullmatch(r"[\u0430-\u044f\u0451]+", lower):
        return RUSSIAN_MONTHS[lower[:3]]
    return None


def _iso(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _utc(value)


def _numeric(text: str) -> datetime | None:
    """A numeric day-first date ("01/06/2021 - 08:32") read directly: most listing dates are
    these, and dateutil took 0.3 ms for each, 9% of a cold poll's CPU (#4). None when the
    numbers are no date (dateutil then decides, as it does for every other form)."""
    found = _NUMERIC.match(text)
    if found is None:
        return None
    day, month, year, hour, minute, second = (int(part or 0) for part in found.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _dateutil(text: str) -> datetime | None:
    cleaned = re.sub(r"\s*[" + DASHES + r"|,]\s+|\s+[" + DASHES + r"|]\s*", " ", text)
    try:
        value = dateutil.parser.parse(cleaned, dayfirst=True)
    except (ValueError, OverflowError):  # "31/02/2021", out-of-range years
        return None
    return _utc(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
