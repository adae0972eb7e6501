"""RuleFiles: the daemon's reload, each broken rule file keeping its last good version (#6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.match.rules import RuleFiles
from monitor.models import Article

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    return directory


def write(directory: Path, name: str, *rules: tuple[str, str]) -> None:
    body = "".join(f'[[rule]]\nid = "{rule_id}"\nquery = "{query}"\n\n' for rule_id, query in rules)
    (directory / name).write_text(body, encoding="utf-8")


def ids(files: RuleFiles, now: datetime) -> list[str]:
    return [rule.id for rule in files.load(now).rules]


def test_a_broken_file_keeps_its_last_good_version_while_other_edits_apply(rules: Path) -> None:
    write(rules, "a.toml", ("torture", "torture"))
    write(rules, "b.toml", ("trade", "trade"))
    files = RuleFiles(rules)
    assert ids(files, T0) == ["torture", "trade"]

    (rules / "a.toml").write_text('[[rule]]\nid = "torture"\nquery = "torture OR"\n')
    write(rules, "b.toml", ("trade", "trade"), ("freight", "freight"))
    loaded = files.load(T1)

    assert [rule.id for rule in loaded.rules] == ["torture", "trade", "freight"]
    assert [str(error).split("\n")[0] for error in loaded.errors] == [
        "rules/a.toml:3:18: expected a term after OR"
    ]
    status = {file.name.split("/")[-1]: file for file in loaded.files}
    assert status["a.toml"].kept
    assert status["a.toml"].loaded_at == T0
    assert status["a.toml"].rules == 1
    assert not status["b.toml"].errors
    assert status["b.toml"].loaded_at == T1
    hit = Article("https://example.org/1", "Torture", "Reports of torture.")
    assert [m.rule_id for m in loaded.match(hit)] == ["torture"]


def test_a_fixed_file_clears_its_error_and_a_deleted_file_drops_its_rules(rules: Path) -> None:
    write(rules, "a.toml", ("torture", "torture"))
    write(rules, "b.toml", ("trade", "trade"))
    files = RuleFiles(rules)
    files.load(T0)
    (rules / "a.toml").write_text("[[rule]\n", encoding="utf-8")
    assert files.load(T1).errors

    write(rules, "a.toml", ("torture", "torture"), ("prisoners", '\\"political prisoner*\\"'))
    fixed = files.load(T1)
    assert fixed.errors == ()
    assert [rule.id for rule in fixed.rules] == ["torture", "prisoners", "trade"]

    (rules / "a.toml").unlink()
    assert ids(files, T1) == ["trade"]
    # Broken after it came back: there is no last good version of it any more.
    (rules / "a.toml").write_text("[[rule]\n", encoding="utf-8")
    again = files.load(T1)
    assert [rule.id for rule in again.rules] == ["trade"]
    assert [(f.rules, f.kept, f.loaded_at) for f in again.files if f.errors] == [(0, False, None)]


def test_a_file_broken_from_the_start_runs_nothing(rules: Path) -> None:
    (rules / "a.toml").write_text('[[rule]]\nid = "x"\nquery = "(x"\n', encoding="utf-8")
    loaded = RuleFiles(rules).load(T0)
    assert loaded.rules == ()
    assert len(loaded.errors) == 1


def test_a_kept_version_is_dropped_when_another_file_takes_its_id(rules: Path) -> None:
    write(rules, "b.toml", ("torture", "torture"))
    files = RuleFiles(rules)
    files.load(T0)
    (rules / "b.toml").write_text("[[rule]\n", encoding="utf-8")
    write(rules, "a.toml", ("torture", "torture AND Astana"))
    loaded = files.load(T1)
    assert [(rule.id, rule.query) for rule in loaded.rules] == [("torture", "torture AND Astana")]
    assert [f.rules for f in loaded.files] == [1, 0]
