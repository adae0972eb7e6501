"""Publication dates on a set of pages in many formats and time zones (#5).

tests/data/pages/dates/cases.json: each case a page and its known publication date (ISO
8601 with the zone the page gave; day-only dates at midnight UTC; null when the page names
none, which must stay None and never become the crawl time or a copyright year).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.clean import extract

CASES = json.loads(
    (Path(__file__).parent.parent / "data" / "pages" / "dates" / "cases.json").read_text("utf-8")
)


def _found(case: dict[str, str | None]) -> str | None:
    published = extract(str(case["html"]), "https://eu.example/news/1").published
    return published.isoformat() if published else None


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_publication_date_is_read_with_its_zone(case: dict[str, str | None]) -> None:
    assert _found(case) == case["published"]


def test_the_dates_set_covers_structured_data_datelines_and_unknown_dates() -> None:
    names = " ".join(case["name"] for case in CASES)
    assert all(kind in names for kind in ("json-ld", "dateline", "Russian", "no date", "<time>"))
    assert sum(case["published"] is None for case in CASES) >= 3
