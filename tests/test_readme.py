"""The README documents every command and option the CLI has, and the quick start exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from syndicate.cli import app
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: Any, path: str = "syndicate") -> Iterator[tuple[str, Any]]:
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, f"{path} {name}")


def test_every_command_is_in_the_readme() -> None:
    leaves = [
        path
        for path, cmd in commands(typer.main.get_command(app))
        if not getattr(cmd, "commands", None)
    ]
    assert len(leaves) >= 5
    missing = [path for path in leaves if f"`{path}" not in README]
    assert missing == []


def test_every_option_is_in_the_readme() -> None:
    options = {
        opt
        for _, cmd in commands(typer.main.get_command(app))
        for param in cmd.params
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    }
    assert {"--config", "--now", "--json", "--reclassify", "--topic", "--all"} <= options
    assert sorted(opt for opt in options if f"`{opt}" not in README) == []


def test_the_quick_start_commands_exist_and_ci_runs_the_test_one() -> None:
    for script in ("scripts/run", "scripts/test"):
        assert f"{script}" in README
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
