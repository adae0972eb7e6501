"""docs/cli.md is every command's --help; stale docs fail (regenerate with --update-golden)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from monitor.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def commands(group: click.Group, prefix: list[str]) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = [(prefix, group)]
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            found += commands(command, [*prefix, name])
        else:
            found.append(([*prefix, name], command))
    return found


def render() -> str:
    parts = [
        "# Command line\n\n",
        "Generated from each command's `--help` by `pytest tests/unit/test_cli_docs.py "
        "--update-golden`; do not edit by hand.\n",
    ]
    for path, command in commands(cli, []):
        name = " ".join(["monitor", *path])
        # -h as well as --help, as the group's context_settings give every command when run
        # (click caches a command's help option: a command run in process before this test
        # would otherwise render differently, #8).
        with click.Context(
            command, info_name=name, terminal_width=100, help_option_names=["-h", "--help"]
        ) as ctx:
            text = command.get_help(ctx)
        parts.append(f"\n## `{name}`\n\n```\n{text}\n```\n")
    return "".join(parts)


def test_cli_docs_match_the_help(update_golden: bool) -> None:
    text = render()
    if update_golden:
        DOCS.write_text(text, encoding="utf-8")
    assert DOCS.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("path", "command"), commands(cli, []), ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_every_command_opens_with_one_line_and_an_example(
    path: list[str], command: click.Command
) -> None:
    help_text = command.help or ""
    assert help_text.strip(), f"monitor {' '.join(path)} has no help"
    if not isinstance(command, click.Group) or path == []:
        first = help_text.strip().splitlines()[0]
        assert first.endswith("."), first
    if not isinstance(command, click.Group) or command.invoke_without_command:
        assert "Example" in help_text or path == [], f"monitor {' '.join(path)} shows no example"
