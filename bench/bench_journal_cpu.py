"""What ``hpgfast send --file F --journal J.db`` costs in CPU, against a user's script.

The yardstick is what a user would otherwise write without any journal: the
``csv`` module, ``Message``s, ``Client.send`` 5,000 at a time
(``bench/_user_send.py``). Three sides run as separate processes on the same CSV
(``bench_journal.write_csv``: the standard messages, a client id each) against one
emulator in its own process (no faults), in interleaved rounds (the order rotates
each round, a fresh emulator and a fresh journal file per round):

- ``journaled``: ``hpgfast send --file F --journal J.db`` (SQLite, ``synchronous``
  FULL: every commit fsynced);
- ``unjournaled``: ``hpgfast send --file F``;
- ``csv-script``: the script.

Each side runs once first, untimed, so that every module's byte code is written
(``PYTHONDONTWRITEBYTECODE`` is left out of the children's environment), as an
installed package has it. The figures are whole-process CPU (user + sys from
``os.wait4``, start-up included) per message and wall seconds, medians of the
rounds; the ratios are of the medians: the journaled CPU against the script's
(target 2.5x) and the journaled wall time against the unjournaled one's (target
1.5x). With ``--callgrind N`` the journaled command also runs once under
``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``; the emulator natively) on N
messages: the process's instructions per message, which load does not move. Run
as a script for the figures in docs/performance.md::

    python bench/bench_journal_cpu.py                      # 100,000 messages, 5 rounds
    python bench/bench_journal_cpu.py --callgrind -r 0     # instructions only (20,000)

or under pytest (``python -m pytest bench/bench_journal_cpu.py -s``, marked slow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

from _process import USER_SCRIPT, run_cpu, run_instructions
from bench_journal import LOGIN, PASSWORD, write_csv  # bench/ is on the path (conftest, or run)
from hpgfast._bench import EmulatorProcess

#: The journaled command's CPU per message at most this many times the script's.
TARGET_CPU = 2.5
#: Its wall time at most this many times the unjournaled command's.
TARGET_WALL = 1.5
GROUP = "journal-send-cpu"
#: The sides counted in instructions: the journaled command and its yardstick.
CALLGRIND_SIDES = ("journaled", "csv-script")

def commands(url: str, csv_path: Path, journal: Path) -> dict[str, list[str]]:
    """The three sides, by name."""
    send = [sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", LOGIN,
            "--file", str(csv_path), "--quiet"]
    return {
        "journaled": [*send, "--journal", str(journal)],
        "unjournaled": send,
        "csv-script": [sys.executable, str(USER_SCRIPT), url, LOGIN, str(csv_path)],
    }


def measure(
    n: int = 100_000, rounds: int = 5, *, callgrind: int = 0, keep: str = "",
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """CPU per message and wall time of the three sides (medians of interleaved
    rounds) and the ratios; with ``callgrind`` messages, the instructions per
    message of the journaled command and of the script, and their ratio (the
    callgrind output files kept in the directory ``keep`` if given)."""
    # Byte code written and read, as an installed package has it: a shell with
    # PYTHONDONTWRITEBYTECODE would compile every module at each start.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HPGFAST_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["HPGFAST_PASSWORD"] = PASSWORD
    out: dict[str, Any] = {"messages": n, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="hpgfast-bench-jcpu-") as tmp:
        warm = Path(tmp) / "warm.csv"
        write_csv(warm, 200)
        emulator = EmulatorProcess()
        try:  # once each, untimed: the byte code of every module they import
            for command in commands(emulator.url, warm, Path(tmp) / "warm.db").values():
                run_cpu(command, env)
        finally:
            emulator.close()
        csv_path = Path(tmp) / "messages.csv"
        if rounds:
            write_csv(csv_path, n)
        cpu: dict[str, list[float]] = {"journaled": [], "unjournaled": [], "csv-script": []}
        wall: dict[str, list[float]] = {name: [] for name in cpu}
        for r in range(rounds):
            emulator = EmulatorProcess()
            try:
                sides = list(commands(emulator.url, csv_path, Path(tmp) / f"j{r}.db").items())
                for name, command in sides[r % 3:] + sides[: r % 3]:
                    seconds, elapsed = run_cpu(command, env)
                    cpu[name].append(seconds / n)
                    wall[name].append(elapsed)
            finally:
                emulator.close()
            say(f"round {r + 1}: " + ", ".join(
                f"{name} {cpu[name][-1] * 1e6:.2f} us/msg {wall[name][-1]:.2f} s"
                for name in cpu))
        if rounds:
            med = {name: statistics.median(values) for name, values in cpu.items()}
            walls = {name: statistics.median(values) for name, values in wall.items()}
            out.update({f"us_per_message_{name}": round(v * 1e6, 3) for name, v in med.items()})
            out.update({f"seconds_{name}": round(v, 3) for name, v in walls.items()})
            out.update(
                cpu_ratio=round(med["journaled"] / med["csv-script"], 3),
                wall_ratio=round(walls["journaled"] / walls["unjournaled"], 3),
                round_cpu_ratios=[
                    round(a / b, 3) for a, b in zip(cpu["journaled"], cpu["csv-script"])
                ],
            )
        if callgrind:
            csv_path = Path(tmp) / "callgrind.csv"
            write_csv(csv_path, callgrind)
            counted: dict[str, int] = {}
            for name in CALLGRIND_SIDES:  # an emulator each: the same start for both
                emulator = EmulatorProcess()
                try:
                    command = commands(emulator.url, csv_path, Path(tmp) / "cg.db")
                    cg_out = Path(keep or tmp) / f"callgrind.{name}.out"
                    counted[name] = run_instructions(command[name], env, cg_out)
                finally:
                    emulator.close()
            out["callgrind_messages"] = callgrind
            out.update({f"instructions_per_message_{name}": round(ir / callgrind)
                        for name, ir in counted.items()})
            out["instruction_ratio"] = round(counted["journaled"] / counted["csv-script"], 3)
    return out


@pytest.mark.slow
def bench_journal_cpu_per_message(
    record: Callable[[str, str, float], None], note: Callable[[str], None]
) -> None:
    """``hpgfast send --journal`` vs the csv script: CPU per message, interleaved rounds."""
    result = measure(100_000, rounds=5, say=print)
    for name in ("journaled", "unjournaled", "csv-script"):
        record(GROUP, name, result[f"us_per_message_{name}"])
    note(f"hpgfast send --journal: {result['us_per_message_journaled']} us/msg, the csv "
         f"script {result['us_per_message_csv-script']} us/msg ({result['cpu_ratio']}x; "
         f"rounds {result['round_cpu_ratios']}); wall {result['wall_ratio']}x unjournaled")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def bench_journal_instructions(note: Callable[[str], None]) -> None:
    """The journaled command under callgrind: instructions per message."""
    result = measure(rounds=0, callgrind=20_000)
    note(f"hpgfast send --journal: {result['instructions_per_message_journaled']:,} "
         f"instructions/msg, the csv script "
         f"{result['instructions_per_message_csv-script']:,} "
         f"({result['instruction_ratio']}x; {result['callgrind_messages']:,} messages)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=100_000)
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--callgrind", type=int, nargs="?", const=20_000, default=0,
                        metavar="N", help="also count instructions, N messages (20,000)")
    parser.add_argument("--keep", default="", metavar="DIR",
                        help="keep the callgrind output files in DIR (callgrind_annotate)")
    args = parser.parse_args()
    result = measure(args.messages, args.rounds, callgrind=args.callgrind, keep=args.keep,
                     say=print)
    for key, value in result.items():
        print(f"{key:>36}: {value}")
    if "instruction_ratio" in result:
        print(f"journaled: {result['instruction_ratio']}x the script's instructions per "
              f"message (target {TARGET_CPU}x for CPU)")
    if "cpu_ratio" in result:
        ok = result["cpu_ratio"] <= TARGET_CPU and result["wall_ratio"] <= TARGET_WALL
        print(f"journaled: {result['cpu_ratio']}x the script's CPU per message (target "
              f"{TARGET_CPU}x), {result['wall_ratio']}x the unjournaled wall time (target "
              f"{TARGET_WALL}x): {'within' if ok else 'OVER'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
