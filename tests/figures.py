"""The figures the fault and hostile suites print at the end of a run, one line per category
(`crash-resume: 5 kills, 2000 recipients, 0 lost, 1 duplicate`): what the suite proved, in
numbers, for the README's Reliability section and for whoever reads the CI log.

A test calls `report(category, text)` once it has asserted what the figure claims; a category
reported twice (e.g. on SQLite and PostgreSQL) keeps every line.

The lines travel on the test's own report (`user_properties`, which pytest-xdist sends from
its worker processes to the controller), and the process that prints the summary collects
them from every report it logs: each line is printed once, with one process or several, in
the order of the tests in the collection (as one process runs them), not of their ending."""

from __future__ import annotations

from collections.abc import Generator
from typing import cast

import pytest

PROPERTY = "reliability figure"

_PENDING: list[str] = []  # reported in this process, not yet on a test report
_LINES: list[tuple[int, str]] = []  # from the reports logged: (the test's place, line)


def report(category: str, text: str) -> None:
    _PENDING.append(f"{category}: {text}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    made = yield
    if _PENDING:
        place = item.session.items.index(item)  # every worker collects the whole suite
        made.user_properties.extend((PROPERTY, (place, line)) for line in _PENDING)
    _PENDING.clear()
    return made


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == PROPERTY:
            place, line = cast("tuple[int, str]", value)
            _LINES.append((place, line))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    placed = sorted(_LINES, key=lambda found: found[0])  # stable: a test's lines in order
    lines = [line for _, line in placed] + _PENDING  # _PENDING: reported outside any test
    if not lines:
        return
    terminalreporter.section("reliability figures")
    for line in lines:
        terminalreporter.write_line(line)
