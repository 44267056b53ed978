"""The wall time of ``hpgfast send --file F --journal J.db`` against the same run without.

Both sides (and, with ``--before SRC``, the journaled command run from another
source tree: ``SRC`` goes first on ``PYTHONPATH``, e.g. ``src`` of a ``git worktree``
of an earlier commit) run as separate processes on the same CSV
(``bench_journal.write_csv``: 100,000 standard messages, a client id each) against
one emulator process per round, in turn, the order rotating each round, a fresh
journal file each run: every side meets the same moments of a loaded machine. The
figures are wall seconds (and whole-process CPU per message), medians of the
rounds, and the journaled sides' wall time over the unjournaled one's (target
1.5x)::

    python bench/bench_journal_wall.py -r 6
    python bench/bench_journal_wall.py -r 6 --before ../main-checkout/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _process import run_cpu
from bench_journal import LOGIN, PASSWORD, write_csv  # bench/ is on the path (run)
from hpgfast._bench import EmulatorProcess

#: The journaled run's wall time at most this many times the unjournaled one's.
TARGET_WALL = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=100_000)
    parser.add_argument("-r", "--rounds", type=int, default=6)
    parser.add_argument("--before", metavar="SRC", help="also run the journaled command "
                        "from this source tree (first on PYTHONPATH)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HPGFAST_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["HPGFAST_PASSWORD"] = PASSWORD
    sides = {"unjournaled": env, "journaled": env}
    if args.before:
        path = os.pathsep.join(filter(None, [str(Path(args.before).resolve()),
                                             env.get("PYTHONPATH")]))
        sides["journaled-before"] = {**env, "PYTHONPATH": path}
    names = list(sides)
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="hpgfast-bench-jwall-") as tmp:
        csv_path = Path(tmp) / "messages.csv"
        write_csv(csv_path, args.messages)
        for r in range(-1, args.rounds):  # round -1: untimed, the byte code written
            emulator = EmulatorProcess()
            try:
                order = names[r % len(names):] + names[: r % len(names)]
                for name in order:
                    command = [sys.executable, "-m", "hpgfast", "send", "--url", emulator.url,
                               "--login", LOGIN, "--file", str(csv_path), "--quiet"]
                    if name != "unjournaled":
                        command += ["--journal", str(Path(tmp) / f"{name}-{r}.db")]
                    cpu, wall = run_cpu(command, sides[name])
                    if r >= 0:
                        walls[name].append(wall)
                        cpus[name].append(cpu / args.messages)
            finally:
                emulator.close()
            if r >= 0:
                print(f"round {r + 1}: " + ", ".join(
                    f"{name} {walls[name][-1]:.2f} s" for name in names), flush=True)
    base = statistics.median(walls["unjournaled"])
    ok = True
    for name in names:
        wall = statistics.median(walls[name])
        ratio = wall / base
        ok = ok and (name != "journaled" or ratio <= TARGET_WALL)
        print(f"{name:>17}: {wall:.2f} s, {statistics.median(cpus[name]) * 1e6:.2f} us/msg "
              f"CPU, {ratio:.2f}x the unjournaled wall time")
    print(f"journaled: target {TARGET_WALL}x: {'within' if ok else 'OVER'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
