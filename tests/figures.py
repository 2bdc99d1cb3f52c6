"""The figures the fault and hostile suites print at the end of a run, one line per category
(`crash-resume: 5 kills, 2000 recipients, 0 lost, 1 duplicate`): what the suite proved, in
numbers, for the README's Reliability section and for whoever reads the CI log.

A test calls `report(category, text)` once it has asserted what the figure claims; a category
reported twice (e.g. on SQLite and PostgreSQL) keeps every line."""

from __future__ import annotations

import pytest

_LINES: list[tuple[str, str]] = []


def report(category: str, text: str) -> None:
    _LINES.append((category, text))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _LINES:
        return
    terminalreporter.section("reliability figures")
    for category, text in _LINES:
        terminalreporter.write_line(f"{category}: {text}")
