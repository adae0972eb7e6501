"""state/rules.json (#6): what the daemon runs, written for `monitor status` and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor import rulestatus
from monitor.errors import MonitorError
from monitor.match.rules import RuleFiles

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def when(moment: datetime | None) -> str:
    return moment.strftime("%H:%M") if moment else "never"


def test_a_broken_file_is_shown_with_its_error_and_what_runs_instead(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.toml").write_text('[[rule]]\nid = "a"\nquery = "torture"\n', encoding="utf-8")
    files = RuleFiles(rules)
    files.load(T0)
    (rules / "a.toml").write_text('[[rule]]\nid = "a"\nquery = "(torture"\n', encoding="utf-8")
    (rules / "b.toml").write_text("[[rule]\n", encoding="utf-8")

    rulestatus.write(tmp_path, files.load(T0), T0)
    view = rulestatus.read(tmp_path)

    assert view is not None
    assert (view.rules, view.errors) == (1, 2)
    shown = "\n".join(rulestatus.lines(view, when))
    assert shown.startswith("rules: 1 on 1 topics in force (daemon, loaded 08:00); errors: 2")
    assert "  rules/a.toml: broken; its last good version runs (1 rules, loaded 08:00)" in shown
    assert "    rules/a.toml:3:10: unclosed (\n" in shown
    assert "  rules/b.toml: broken; none of its rules run" in shown


def test_a_missing_rules_directory_is_shown_too(tmp_path: Path) -> None:
    rulestatus.write(tmp_path, RuleFiles(tmp_path / "nowhere").load(T0), T0)
    view = rulestatus.read(tmp_path)
    assert view is not None
    assert "nowhere: no such directory" in "\n".join(rulestatus.lines(view, when))


def test_an_unreadable_file_reads_as_none_and_an_unwritable_directory_raises(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules.json").write_text("{not json", encoding="utf-8")
    assert rulestatus.read(tmp_path) is None
    with pytest.raises(MonitorError, match="cannot write the rules' status"):
        rulestatus.write(tmp_path / "missing", RuleFiles(tmp_path).load(T0), T0)
