"""The README's commands are the ones CI runs, and every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test_command = readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci


def test_readme_test_command_installs_the_servers_the_tests_start() -> None:
    _, test_command = readme_commands()
    install = re.search(r"apt-get install -y -qq ([^&]+)&&", test_command)
    assert install, test_command
    assert {"chromium", "postgresql", "faketime"} <= set(install.group(1).split())


def test_first_readme_command_installs_and_runs_the_demo() -> None:
    demo_command, _ = readme_commands()
    assert "pip install ." in demo_command
    assert demo_command.endswith("monitor demo")
