"""match: rules/*.toml → a RuleSet; an Article + RuleSet → Matches. Sync and pure.

Entry points (DESIGN §8; nothing heavy is imported until one is called):

- ``compile_queries(queries)`` → an object whose ``.match(text, lang=None)`` returns the set of
  indices of the queries matching ``text`` (an article body, no title); a bad query raises
  RuleError naming its index;
- ``load_rules(rules_dir)`` → RuleSet; a bad file does not raise: its errors are in
  ``RuleSet.errors`` and the other files' rules are loaded;
- ``match(article, rules)`` → list of Match, with the matched terms and their offsets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.match.engine import CompiledQueries
    from monitor.match.rules import RuleSet
    from monitor.models import Article, Match


def compile_queries(queries: list[str]) -> CompiledQueries:
    from monitor.match.engine import compile_queries as run

    return run(queries)


def load_rules(rules_dir: Path) -> RuleSet:
    from monitor.match.rules import load_rules as run

    return run(rules_dir)


def match(article: Article, rules: RuleSet) -> list[Match]:
    return rules.match(article)
