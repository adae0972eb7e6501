"""Golden inflection cases (tests/data/match/inflections.toml): English and Russian forms,
Kazakh letters, hyphenated and apostrophised words, each matched or not as expected (#6)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from monitor.match import compile_queries

CASES: list[dict[str, Any]] = tomllib.loads(
    (Path(__file__).parent.parent / "data" / "match" / "inflections.toml").read_text("utf-8")
)["case"]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['query']}~{c['text']}~{c.get('lang', '')}" for c in CASES]
)
def test_inflection_case(case: dict[str, Any]) -> None:
    found = compile_queries([case["query"]]).match(case["text"], case.get("lang"))
    assert (found == {0}) is case["match"], case.get("note", "")


def test_every_case_is_checked_with_all_its_keys() -> None:
    assert len(CASES) >= 40
    for case in CASES:
        assert set(case) <= {"query", "lang", "text", "match", "note"}, case
        assert isinstance(case["match"], bool)
