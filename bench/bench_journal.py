"""What the journal costs: ``hpgfast send --file`` with and without ``--journal``.

Run as a script for the figures quoted in docs/performance.md::

    python bench/bench_journal.py                 # 200,000 messages, 3 runs each
    python bench/bench_journal.py -n 1000000 -r 1 # a million

or under pytest (``python -m pytest bench -m slow -k journal``). Both runs are the
real command in a subprocess, end to end (reading the CSV, the client, the journal),
against one emulator in its own process with the fault rates at zero; the figure is
the ratio of median wall times, and the journal's overhead is how much lower the
send rate is with it: ``1 - rate_with / rate_without``. The budget is 25%.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from hpgfast._sample import standard_batch

LOGIN, PASSWORD = "CLIENT", "P@ssw0rd"
BUDGET = 0.25


def write_csv(path: Path, n: int) -> None:
    """``n`` of the standard messages, each with a unique client id, as CSV."""
    batch = standard_batch(min(n, 100_000))
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["address", "text", "subject", "client_id"])
        for i in range(n):
            m = batch[i % len(batch)]
            writer.writerow([m.address, m.text, m.subject, f"m{i}"])


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast.emulator", "--port", "0", "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    return proc, url


def run_send(url: str, csv_path: Path, journal: Path | None, concurrency: int) -> float:
    """Wall seconds of one ``hpgfast send`` run."""
    env = {**os.environ, "HPGFAST_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        "-m",
        "hpgfast",
        "send",
        "--url",
        url,
        "--login",
        LOGIN,
        "--file",
        str(csv_path),
        "--concurrency",
        str(concurrency),
        "--quiet",
        "--json",
    ]
    if journal is not None:
        command += ["--journal", str(journal)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"hpgfast send failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def measure(n: int = 200_000, rounds: int = 3, concurrency: int = 2) -> dict[str, Any]:
    """Median wall times with and without the journal, and the overhead."""
    with tempfile.TemporaryDirectory(prefix="hpgfast-bench-journal-") as tmp:
        csv_path = Path(tmp) / "messages.csv"
        write_csv(csv_path, n)
        plain: list[float] = []
        journaled: list[float] = []
        for r in range(rounds):
            # A fresh emulator per pair keeps its ledger (and memory) equal for both.
            proc, url = start_emulator()
            try:
                # Alternate which goes first, so neither always meets the fuller ledger.
                order = (None, Path(tmp) / f"run{r}.db")
                for journal in order if r % 2 == 0 else order[::-1]:
                    seconds = run_send(url, csv_path, journal, concurrency)
                    (plain if journal is None else journaled).append(seconds)
            finally:
                proc.terminate()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
    without, with_ = statistics.median(plain), statistics.median(journaled)
    return {
        "messages": n,
        "concurrency": concurrency,
        "seconds_without": round(without, 3),
        "seconds_with": round(with_, 3),
        "rate_without": round(n / without),
        "rate_with": round(n / with_),
        "overhead": round(1 - without / with_, 4),
        "runs_without": [round(x, 3) for x in plain],
        "runs_with": [round(x, 3) for x in journaled],
    }


@pytest.mark.slow
def bench_journal_overhead() -> None:
    """The journal's cost on 200,000 messages, end to end (reported, not gated)."""
    result = measure(200_000, rounds=1)
    print(
        f"\njournal overhead: {result['overhead']:.1%} "
        f"({result['rate_with']:,} vs {result['rate_without']:,} msg/s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=200_000)
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    args = parser.parse_args()
    result = measure(args.messages, args.rounds, args.concurrency)
    for key, value in result.items():
        print(f"{key:>16}: {value}")
    verdict = "within" if result["overhead"] <= BUDGET else "OVER"
    print(f"journal overhead {result['overhead']:.1%}: {verdict} the {BUDGET:.0%} budget")
    return 0 if result["overhead"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
