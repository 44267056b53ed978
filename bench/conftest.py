"""Benchmark plumbing: medians are recorded per (group, name) and turned into ratios.

Every benchmark calls ``measure(group, name, fn, ...)`` (or ``record`` for a value it
measured itself, such as CPU per message). At the end of the run a table of the
ratios in ``bench/_ratios.py`` is printed; with ``--gate`` a ratio under its floor fails the
run (``_gate.py``: where an instruction-count row was measured, it gates in place of the
CPU-time row it replaces). The cyclic garbage collector stays on, as users run it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _gate
from _ratios import RATIOS

MEDIANS: dict[tuple[str, str], float] = {}
NOTES: list[str] = []  # lines printed after the ratio table (see the ``note`` fixture)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gate",
        action="store_true",
        default=False,
        help="Fail the run when a ratio of bench/_ratios.py falls under its floor.",
    )


@pytest.fixture
def measure(benchmark: Any) -> Callable[..., Any]:
    """Run ``fn(*args)`` under pytest-benchmark in ``group`` and record its median."""

    def run(
        group: str, name: str, fn: Callable[..., Any], *args: Any, rounds: int | None = None
    ) -> Any:
        benchmark.group = group
        benchmark.extra_info["name"] = name
        if rounds is None:
            result = benchmark(fn, *args)
        else:
            result = benchmark.pedantic(fn, args=args, rounds=rounds, warmup_rounds=1)
        if benchmark.stats is not None:
            MEDIANS[(group, name)] = run.last_median = benchmark.stats.stats.median
        return result

    run.last_median = float("nan")  # type: ignore[attr-defined]
    return run


@pytest.fixture
def record() -> Callable[[str, str, float], None]:
    """Record a median measured by other means (CPU seconds per message, ...)."""

    def put(group: str, name: str, value: float) -> None:
        MEDIANS[(group, name)] = value

    return put


@pytest.fixture
def note() -> Callable[[str], None]:
    """Print a line after the ratio table (figures that are not ratios of medians)."""
    return NOTES.append


@pytest.fixture(scope="session")
def warmed() -> dict[str, int]:
    """The heap of a long-running sender: ``_warmup.churn()``, once per session.

    The codec benchmarks request it, so their figures are those of a process that
    has churned memory for a while, not of a fresh one (``bench_longrun.py`` shows
    both side by side).
    """
    from _warmup import churn

    return churn()


def ratio_rows() -> list[_gate.Row]:
    return _gate.rows(RATIOS, MEDIANS)


def under_floor() -> list[str]:
    return _gate.under_floor(ratio_rows())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Runs before the terminal summary is written, so the verdict is made here.
    if session.config.getoption("--gate") and under_floor() and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    table = ratio_rows()
    write = terminalreporter.write_line
    if any(row.value is not None for row in table):
        terminalreporter.section("hpgfast ratios (peer median / hpgfast median)")
        for line in _gate.lines(table):
            write(line)
    elif NOTES:
        terminalreporter.section("hpgfast ratios")
    for line in NOTES:
        write(line)
    failed = _gate.under_floor(table)
    if config.getoption("--gate") and failed:
        write("")
        write("GATE FAILED: " + "; ".join(failed), red=True)
