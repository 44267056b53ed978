"""Benchmark plumbing: medians are recorded per (group, name) and turned into ratios.

Every benchmark calls ``measure(group, name, fn, ...)`` (or ``record`` for a value it
measured itself, such as CPU per message). At the end of the run a table of the
ratios in ``bench/_ratios.py`` is printed; with ``--gate`` a ratio under its floor fails the
run. The cyclic garbage collector stays on, as users run it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

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


def ratio_rows() -> list[tuple[Any, float | None]]:
    rows = []
    for ratio in RATIOS:
        subject = MEDIANS.get((ratio.group, ratio.subject))
        peer = MEDIANS.get((ratio.group, ratio.peer))
        value = peer / subject if subject and peer else None
        rows.append((ratio, value))
    return rows


def under_floor() -> list[str]:
    return [
        f"{ratio.claim}: {value:.2f} < floor {ratio.floor:.2f}"
        for ratio, value in ratio_rows()
        if value is not None and value < ratio.floor
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Runs before the terminal summary is written, so the verdict is made here.
    if session.config.getoption("--gate") and under_floor() and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = [(r, v) for r, v in ratio_rows() if v is not None]
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hpgfast ratios (peer median / hpgfast median)")
    write(f"{'claim':<48} {'measured':>9} {'target':>7} {'floor':>7}  verdict")
    for ratio, value in rows:
        verdict = "meets target" if value >= ratio.target else "under target"
        if not ratio.target:
            verdict = "reported"
        if value < ratio.floor:
            verdict = "UNDER FLOOR"
        write(
            f"{ratio.claim:<48} {value:>9.2f} {ratio.target:>7.2f} {ratio.floor:>7.2f}  {verdict}"
        )
    for line in NOTES:
        write(line)
    failed = under_floor()
    if config.getoption("--gate") and failed:
        write("")
        write("GATE FAILED: " + "; ".join(failed), red=True)
