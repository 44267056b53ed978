"""The benchmark gate's logic (bench/_gate.py, bench/_counted.py), without benchmarks.

The client rows gate on instruction counts where valgrind is installed, on CPU time
where it is not; these tests hold the choice between the two, the one line a run
without valgrind prints, and callgrind's windows on this interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _gate  # noqa: E402
from _counted import NotCounted, count, valgrind, windows  # noqa: E402
from _ratios import RATIOS, Ratio  # noqa: E402

TIME = Ratio("cpu-8k", "ours", "floor", 0.5, 0.35, "CPU/msg vs floor")
COUNTED = Ratio("ir-8k", "ours", "floor", 0.5, 0.7, "Ir/msg vs floor", replaces="cpu-8k")
#: A run on a loaded machine: the time ratio under its floor (0.30), the count not.
LOADED = {
    ("cpu-8k", "ours"): 20e-6,
    ("cpu-8k", "floor"): 6e-6,
    ("ir-8k", "ours"): 8_600.0,
    ("ir-8k", "floor"): 6_900.0,
}


def test_an_instruction_row_gates_in_place_of_the_time_row_it_replaces() -> None:
    table = _gate.rows([TIME, COUNTED], LOADED)
    assert _gate.under_floor(table) == []
    by_claim = {row.ratio.claim: row for row in table}
    assert not by_claim["CPU/msg vs floor"].gated
    assert by_claim["Ir/msg vs floor"].gated
    printed = "\n".join(_gate.lines(table))
    # The time ratio is still printed, marked as not the one gated.
    assert "CPU/msg vs floor" in printed
    assert "0.30" in printed and "gated on instructions" in printed


def test_without_counts_the_time_row_gates() -> None:
    # No valgrind: bench_counted.py records nothing, and the time row is the gate.
    time_only = {key: v for key, v in LOADED.items() if key[0] == "cpu-8k"}
    table = _gate.rows([TIME, COUNTED], time_only)
    assert _gate.under_floor(table) == ["CPU/msg vs floor: 0.30 < floor 0.35"]
    assert "UNDER FLOOR" in "\n".join(_gate.lines(table))


def test_an_instruction_row_under_its_floor_fails_the_gate() -> None:
    regressed = {**LOADED, ("ir-8k", "ours"): 10_500.0}  # 0.66 < 0.7
    failed = _gate.under_floor(_gate.rows([TIME, COUNTED], regressed))
    assert failed == ["Ir/msg vs floor: 0.66 < floor 0.70"]


def test_every_instruction_row_replaces_a_time_row_of_the_same_claim() -> None:
    # A misspelt group would leave the time row gating and the count unused.
    time_rows = {(r.group, r.subject, r.peer): r for r in RATIOS if not r.replaces}
    counted = [r for r in RATIOS if r.replaces]
    assert counted
    for row in counted:
        replaced = time_rows.get((row.replaces, row.subject, row.peer))
        assert replaced is not None, row
        # The same promise, and gated where the time row was.
        assert row.target == replaced.target, row
        assert (row.floor > 0) == (replaced.floor > 0), row


def _bench_counted(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench/bench_counted.py", "-p", "no:cacheprovider",
         "-q", "--gate"],
        cwd=BENCH.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_valgrind_the_gate_says_so_in_one_line_and_passes(tmp_path: Path) -> None:
    pytest.importorskip("pytest_benchmark")
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH without valgrind
    env.pop("HPGFAST_REQUIRE_VALGRIND", None)
    done = _bench_counted(env)
    assert done.returncode == 0, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if "valgrind" in line]
    assert said == [
        "instruction counts: valgrind not found on PATH; the client and AsyncClient rows "
        "gate on CPU time instead (bench/bench_counted.py)"
    ], done.stdout


def test_without_valgrind_a_run_that_requires_it_fails(tmp_path: Path) -> None:
    pytest.importorskip("pytest_benchmark")
    env = {**os.environ, "PATH": str(tmp_path), "HPGFAST_REQUIRE_VALGRIND": "1"}
    done = _bench_counted(env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "HPGFAST_REQUIRE_VALGRIND=1, yet no instruction counts" in done.stdout


def test_count_without_valgrind_raises_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotCounted, match="valgrind not found"):
        count(["-c", "pass"])


PROGRAM = """
import sys, threading
sys.path.insert(0, {bench!r})
from _counted import window

def work(n):
    total = 0
    for i in range(n):
        total += i

window(lambda: work(20_000))
window(lambda: work(20_000))
window(lambda: work(40_000))

def in_a_thread():
    thread = threading.Thread(target=work, args=(40_000,))
    thread.start()
    thread.join()

window(in_a_thread)
"""


@pytest.mark.skipif(valgrind() is None, reason="valgrind is not installed")
def test_callgrind_counts_each_window_alone_in_the_calling_thread() -> None:
    counts, _ = count(["-c", PROGRAM.format(bench=str(BENCH))])
    same, again, double, threaded = windows(counts, ["a", "b", "c", "d"]).values()
    # Start-up (about 10^8 instructions) is left out: the window is the work alone,
    # and the same work counts the same.
    assert abs(same - again) < 0.01 * same
    assert 1.9 < double / same < 2.1
    # Another thread's work is left out, even while the window is open (as the sync
    # client's deadline watchdog, which wakes on the clock, not per message).
    assert threaded < 0.05 * same


NESTED = """
import sys, functools
sys.path.insert(0, {bench!r})
from _counted import window

def work(n):
    total = 0
    for i in range(n):
        total += i

def with_the_mark_inside():
    work(20_000)
    functools.reduce(lambda a, b: a + b, [1, 2, 3])
    work(20_000)

window(lambda: work(40_000))
window(with_the_mark_inside)
functools.reduce(lambda a, b: a + b, [1, 2, 3])  # outside any window
"""


@pytest.mark.skipif(valgrind() is None, reason="valgrind is not installed")
def test_the_mark_called_inside_a_window_counts_in_it_and_outside_is_refused() -> None:
    counts, _ = count(["-c", NESTED.format(bench=str(BENCH))])
    # Inside a window, a call of functools.reduce neither toggles nor dumps: it is
    # counted with the rest of the window's work.
    plain, nested = counts[:2]
    assert abs(plain - nested) < 0.01 * plain
    # Outside one it dumps a count of its own: counts and windows no longer pair up.
    with pytest.raises(NotCounted, match="3 counts for 2 windows"):
        windows(counts, ["plain", "nested"])
