"""The running daemon's view of its rule files, kept in ``state/rules.json`` for `monitor status`.

    daemon loads or reloads rules/ ─► write(state_dir, rules, now) ─► state/rules.json
    monitor status (another process) ─► read(state_dir) ─► lines() ─► the "rules:" section

`monitor status` is a separate process and cannot see the daemon's memory. Which version of a
broken file runs (its last good one, or none) is known only to the daemon, so the daemon writes
it down after every load (atomically: a temporary file renamed over the old one). A file and
not a table: the daemon's rule set is not data to keep or back up, it is rewritten whole on
every reload, and status reads it without opening the database (#6).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.match.rules import RuleSet

FILE_NAME = "rules.json"


@dataclass(frozen=True, slots=True)
class FileView:
    """One rule file as the daemon runs it."""

    name: str
    #: Rules in force from it (its last good version's when it is broken).
    rules: int
    #: Its current errors, each ``file:line:col: what`` with the line and a caret.
    errors: tuple[str, ...]
    #: When the version in force was loaded; None when none of its rules run.
    loaded_at: datetime | None


@dataclass(frozen=True, slots=True)
class RulesView:
    """The daemon's rule set, as last written."""

    written: datetime
    pid: int
    rules: int
    topics: int
    files: tuple[FileView, ...]

    @property
    def errors(self) -> int:
        return sum(len(file.errors) for file in self.files)


def write(state_dir: Path, rules: RuleSet, now: datetime) -> Path:
    """Write the rule set's files, counts and errors to ``state_dir/rules.json``."""
    data: dict[str, Any] = {
        "written": now.isoformat(),
        "pid": os.getpid(),
        "rules": len(rules.rules),
        "topics": len(rules.topics),
        "files": [
            {
                "name": file.name,
                "rules": file.rules,
                "errors": [str(error) for error in file.errors],
                "loaded_at": file.loaded_at.isoformat() if file.loaded_at else None,
            }
            for file in rules.files
        ],
        # A missing rules directory has no file to pin its error on.
        "other_errors": [
            str(error) for error in rules.errors if not any(error in f.errors for f in rules.files)
        ],
    }
    path = state_dir / FILE_NAME
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=state_dir, prefix=f".{FILE_NAME}.", delete=False
        )
    except OSError as exc:  # read-only, or no such directory
        raise MonitorError(str(path), "cannot write the rules' status") from exc
    try:
        with handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
        os.replace(handle.name, path)
    except OSError as exc:  # disk full: the old file stays, the temporary one goes
        Path(handle.name).unlink(missing_ok=True)
        raise MonitorError(str(path), "cannot write the rules' status") from exc
    return path


def read(state_dir: Path) -> RulesView | None:
    """What the daemon last wrote; None when there is no such file (or it is unreadable)."""
    try:
        data = json.loads((state_dir / FILE_NAME).read_text(encoding="utf-8"))
        files = [
            FileView(
                name=str(file["name"]),
                rules=int(file["rules"]),
                errors=tuple(str(error) for error in file["errors"]),
                loaded_at=datetime.fromisoformat(file["loaded_at"]) if file["loaded_at"] else None,
            )
            for file in data["files"]
        ]
        other = [FileView("", 0, tuple(str(e) for e in data.get("other_errors", [])), None)]
        return RulesView(
            written=datetime.fromisoformat(data["written"]),
            pid=int(data["pid"]),
            rules=int(data["rules"]),
            topics=int(data["topics"]),
            files=tuple(files + [f for f in other if f.errors]),
        )
    except (OSError, ValueError, KeyError, TypeError):  # absent, half-written by hand, old
        return None


def lines(view: RulesView, when: Any) -> list[str]:
    """The status lines: counts, then each broken file with its errors and what runs instead.

    ``when`` formats a datetime for display (admin's ``_when`` in [monitor] timezone)."""
    out = [
        f"rules: {view.rules} on {view.topics} topics in force (daemon, loaded"
        f" {when(view.written)}); errors: {view.errors}"
    ]
    for file in view.files:
        if not file.errors:
            continue
        if not file.name:
            out += [f"  {error}" for error in file.errors]
            continue
        if file.rules:
            running = f"its last good version runs ({file.rules} rules, loaded"
            running += f" {when(file.loaded_at)})"
        else:
            running = "none of its rules run"
        out.append(f"  {file.name}: broken; {running}")
        out += ["    " + error.replace("\n", "\n    ") for error in file.errors]
    return out
