"""Chrome never matches, the body always does: press pages whose menus, tag lines, related
boxes, cookie banner, press contact, comment form and footer name every starter topic (#5).

tests/data/pages/boilerplate/: ``chrome_only_*`` pages have a body on another subject;
``body_topics_*`` pages have the same chrome and a body with one paragraph per topic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import match
from monitor.clean import extract
from monitor.match.rules import RuleSet

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "tests" / "data" / "pages" / "boilerplate"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return match.load_rules(REPO / "rules")


def _topics(name: str, rules: RuleSet) -> set[str]:
    article = extract((PAGES / name).read_bytes(), f"https://eu.example/{name}")
    return {found.topic for found in match.match(article, rules)}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_chrome_that_names_every_topic_matches_nothing(language: str, rules: RuleSet) -> None:
    assert _topics(f"chrome_only_{language}.html", rules) == set()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_body_that_names_every_topic_matches_them_all(language: str, rules: RuleSet) -> None:
    every_topic = {rule.topic for rule in rules.rules}
    assert _topics(f"body_topics_{language}.html", rules) == every_topic
