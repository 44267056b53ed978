"""The command line's cost: ``hpgfast send --file F`` (no journal) against a user's script.

The yardstick is what a user would otherwise write (``bench/_user_send.py``: the
``csv`` module, ``Message``s, ``Client.send`` 5,000 at a time). Both run as
separate processes on the same CSV (``bench_journal.write_csv``: the standard
messages, a client id each) against one emulator in its own process (no lifecycle
clock, no faults), in interleaved rounds (the order flips each round, a fresh
emulator per round); the figure is whole-process CPU (user + sys from ``os.wait4``,
start-up included) per message, medians of the rounds, and the ratio of the medians.
hpgfast's modules are compiled to bytecode first (``compileall``), as an installed
hpgfast's are: with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` (a source
checkout) every run would compile them from source again, which weighs on the side
that imports more of them (the command: its own modules, the argument parser's).
With ``--callgrind`` each also runs once under ``valgrind --tool=callgrind``
(``PYTHONHASHSEED=0``; the emulator natively): total instructions of the process
over the messages, which load does not move. Run as a script for the figures quoted
in docs/performance.md::

    python bench/bench_cli_send.py                      # 200,000 messages, 7 rounds
    python bench/bench_cli_send.py --callgrind -r 0     # instructions only (20,000)
    python bench/bench_cli_send.py --before OLD/src     # and another hpgfast's command

or under pytest (``python -m pytest bench/bench_cli_send.py -s``, marked slow).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

import hpgfast
from _process import USER_SCRIPT, run_cpu, run_instructions
from bench_journal import LOGIN, PASSWORD, write_csv  # bench/ is on the path (conftest, or run)
from hpgfast._bench import EmulatorProcess

#: The target: the command at most this many times the script's CPU per message.
TARGET = 1.15
GROUP = "cli-send-cpu"
GROUP_IR = "cli-send-instructions"


def commands(url: str, csv_path: Path) -> dict[str, list[str]]:
    """The two sides, by the names the ratio table uses."""
    return {
        "hpgfast-send": [
            sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", LOGIN,
            "--file", str(csv_path),
        ],
        "csv-script": [sys.executable, str(USER_SCRIPT), url, LOGIN, str(csv_path)],
    }


def compile_hpgfast() -> None:
    """hpgfast's modules as bytecode, so that no run of either side compiles them."""
    compileall.compile_dir(os.path.dirname(hpgfast.__file__), quiet=1)


def measure(
    n: int = 200_000, rounds: int = 7, *, callgrind: int = 0,
    say: Callable[[str], None] = lambda line: None, before: str = "",
) -> dict[str, Any]:
    """CPU per message of both sides (medians of interleaved rounds) and their ratio;
    with ``callgrind`` messages, instructions per message too. ``before``: the
    ``src`` directory of another hpgfast (an older commit's, its extensions built),
    whose command runs in the same rounds too, for a change's effect under load."""
    env = {**os.environ, "HPGFAST_PASSWORD": PASSWORD}
    env = {k: v for k, v in env.items() if not k.startswith("HPGFAST_") or k == "HPGFAST_PASSWORD"}
    out: dict[str, Any] = {"messages": n, "rounds": rounds}
    compile_hpgfast()
    if before:
        compileall.compile_dir(os.path.join(before, "hpgfast"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="hpgfast-bench-cli-") as tmp:
        csv_path = Path(tmp) / "messages.csv"
        if rounds:
            write_csv(csv_path, n)
        cpu: dict[str, list[float]] = {"hpgfast-send": [], "csv-script": []}
        if before:
            cpu["hpgfast-send-before"] = []
        for r in range(rounds):
            emulator = EmulatorProcess()
            try:
                sides = [(name, command, env)
                         for name, command in commands(emulator.url, csv_path).items()]
                if before:
                    sides.insert(0, ("hpgfast-send-before", sides[0][1],
                                     {**env, "PYTHONPATH": before}))
                for name, command, side_env in sides if r % 2 == 0 else sides[::-1]:
                    cpu[name].append(run_cpu(command, side_env)[0] / n)
            finally:
                emulator.close()
            say(f"round {r + 1}: hpgfast send {cpu['hpgfast-send'][-1] * 1e6:.2f} us/msg, "
                f"script {cpu['csv-script'][-1] * 1e6:.2f} us/msg, ratio "
                f"{cpu['hpgfast-send'][-1] / cpu['csv-script'][-1]:.3f}"
                + (f"; before {cpu['hpgfast-send-before'][-1] * 1e6:.2f} us/msg" if before
                   else ""))
        if rounds:
            send = statistics.median(cpu["hpgfast-send"])
            script = statistics.median(cpu["csv-script"])
            out.update(
                us_per_message_send=round(send * 1e6, 3),
                us_per_message_script=round(script * 1e6, 3),
                ratio=round(send / script, 3),
                round_ratios=[
                    round(a / b, 3) for a, b in zip(cpu["hpgfast-send"], cpu["csv-script"])
                ],
            )
            if before:
                old = statistics.median(cpu["hpgfast-send-before"])
                out.update(
                    us_per_message_before=round(old * 1e6, 3),
                    ratio_before=round(old / script, 3),
                    round_ratios_to_before=[
                        round(a / b, 3)
                        for a, b in zip(cpu["hpgfast-send"], cpu["hpgfast-send-before"])
                    ],
                )
        if callgrind:
            csv_path = Path(tmp) / "callgrind.csv"
            write_csv(csv_path, callgrind)
            emulator = EmulatorProcess()
            try:
                ir = {
                    name: run_instructions(command, env, Path(tmp) / f"{name}.out") / callgrind
                    for name, command in commands(emulator.url, csv_path).items()
                }
            finally:
                emulator.close()
            out.update(
                callgrind_messages=callgrind,
                instructions_per_message_send=round(ir["hpgfast-send"]),
                instructions_per_message_script=round(ir["csv-script"]),
                instruction_ratio=round(ir["hpgfast-send"] / ir["csv-script"], 3),
            )
    return out


@pytest.mark.slow
def bench_cli_send_cpu_per_message(
    record: Callable[[str, str, float], None], note: Callable[[str], None]
) -> None:
    """``hpgfast send --file`` vs the csv script: CPU per message, interleaved rounds."""
    result = measure(100_000, rounds=5, say=print)
    record(GROUP, "hpgfast-send", result["us_per_message_send"])
    record(GROUP, "csv-script", result["us_per_message_script"])
    note(f"hpgfast send --file: {result['us_per_message_send']} us/msg, the csv script "
         f"{result['us_per_message_script']} us/msg ({result['ratio']}x; rounds "
         f"{result['round_ratios']})")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def bench_cli_send_instructions(
    record: Callable[[str, str, float], None], note: Callable[[str], None]
) -> None:
    """The same two processes under callgrind: instructions per message."""
    result = measure(rounds=0, callgrind=20_000)
    record(GROUP_IR, "hpgfast-send", result["instructions_per_message_send"])
    record(GROUP_IR, "csv-script", result["instructions_per_message_script"])
    note(f"hpgfast send --file: {result['instructions_per_message_send']:,} instructions/msg, "
         f"the csv script {result['instructions_per_message_script']:,} "
         f"({result['instruction_ratio']}x, {result['callgrind_messages']:,} messages)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=200_000)
    parser.add_argument("-r", "--rounds", type=int, default=7)
    parser.add_argument("--callgrind", type=int, nargs="?", const=20_000, default=0,
                        metavar="N", help="also count instructions, N messages (20,000)")
    parser.add_argument("--before", metavar="SRC", default="",
                        help="also run the command of the hpgfast in SRC (another "
                        "checkout's src directory, extensions built) in the same rounds")
    args = parser.parse_args()
    result = measure(args.messages, args.rounds, callgrind=args.callgrind, say=print,
                     before=args.before)
    for key, value in result.items():
        print(f"{key:>32}: {value}")
    if "ratio" in result:
        verdict = "within" if result["ratio"] <= TARGET else "OVER"
        print(f"hpgfast send at {result['ratio']}x the script's CPU per message: {verdict} "
              f"the {TARGET}x target")
        return 0 if result["ratio"] <= TARGET else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
