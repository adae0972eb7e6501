"""The dependency rules of STYLE §1, checked by walking imports with ast."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "monitor"
STAGES = ("fetch", "clean", "match", "store", "notify")
FLOOR = ("errors", "models", "config", "log")


def imports_of(path: Path) -> set[str]:
    """Every monitor.* module a file imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("monitor"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("monitor"))
    return found


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stages_import_only_the_floor_and_themselves(path: Path) -> None:
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if here not in STAGES and here not in FLOOR:
        return
    allowed = set(FLOOR) | {here}
    for module in imports_of(path):
        target = part_of(module)
        if target and target in (*STAGES, *FLOOR, "pipeline", "cli", "daemon", "web", "admin"):
            assert target in allowed, f"{path.relative_to(PACKAGE)} imports {module}"


def test_sql_lives_only_in_store() -> None:
    for path in modules():
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        text = path.read_text(encoding="utf-8")
        assert "import sqlite3" not in text, path


def test_help_and_entry_points_load_no_heavy_library() -> None:
    heavy = ["trafilatura", "lxml", "bs4", "feedparser", "lark", "aiohttp", "apscheduler", "jinja2"]
    code = (
        "import sys\n"
        "import monitor.clean, monitor.match\n"
        "from monitor.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
