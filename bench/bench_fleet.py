"""Journal throughput: SQLite and PostgreSQL, one sender and four.

Run as a script for the figures quoted in docs/performance.md::

    python bench/bench_fleet.py                  # 100,000 messages, 3 rounds
    python bench/bench_fleet.py -n 200000 -r 5

or under pytest (``python -m pytest bench -m slow -k fleet``). Every row is the real
command, ``hpgfast send --file F --journal J``, in subprocesses, end to end, against
one emulator in its own process (no faults, no latency):

- ``sqlite x1``: one sender, one SQLite journal;
- ``sqlite x4``: four senders, each a quarter of the input and a SQLite journal of
  its own (a SQLite journal admits one sender);
- ``postgres x1``: one sender on a PostgreSQL journal;
- ``postgres x4``: four senders on one PostgreSQL journal, the whole input, started at
  once (the first loads it, all send).

Each row gives messages per second (wall, first start to last end) and the senders'
CPU per message (user + system of the sender processes, start-up and loading
included; the database server's own CPU is not counted, and is given apart for
PostgreSQL). Rounds are interleaved (every row once per round), and the figures are
medians. The PostgreSQL server is a real one the benchmark starts in a temporary
folder (``tests/pg_server.py``), with ``fsync`` on.
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
from typing import Any, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hpgfast._sample import standard_batch

LOGIN, PASSWORD = "CLIENT", "P@ssw0rd"
ROWS = ("sqlite x1", "sqlite x4", "postgres x1", "postgres x4")


def write_csv(path: Path, first: int, n: int) -> None:
    """Messages ``first .. first + n - 1`` of the standard batch, as CSV."""
    batch = standard_batch(100_000)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["address", "text", "subject"])
        for i in range(first, first + n):
            m = batch[i % len(batch)]
            writer.writerow([m.address, f"{m.text} #{i}", m.subject])


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast.emulator", "--port", "0", "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().decode().strip()


def run_senders(url: str, jobs: list[tuple[Path, str]], concurrency: int) -> tuple[float, float]:
    """Start one ``hpgfast send`` per (file, journal) at once; (wall s, CPU s of them all)."""
    env = {**os.environ, "HPGFAST_PASSWORD": PASSWORD}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", LOGIN,
                "--file", str(csv_path), "--journal", journal,
                "--concurrency", str(concurrency), "--quiet",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for csv_path, journal in jobs
    ]
    cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if proc.returncode != 0:
            raise RuntimeError(f"hpgfast send failed ({proc.returncode}): {err}")
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu


def _server_cpu(server: Any) -> float:
    """CPU seconds the PostgreSQL server has used so far: the postmaster's own and its
    reaped children's (a backend's CPU joins its parent's when it ends), and the
    children alive now (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    master = server.process.pid

    def fields(pid: str) -> list[str]:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    own = fields(str(master))
    # After the ")": state, ppid, ... utime is the 12th, stime, cutime, cstime follow.
    total = sum(int(x) for x in own[11:15])
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == master:
            continue
        try:
            theirs = fields(pid)
        except OSError:
            continue
        if int(theirs[1]) == master:
            total += int(theirs[11]) + int(theirs[12])
    return total / tick


def measure(n: int = 100_000, rounds: int = 3, concurrency: int = 2) -> dict[str, Any]:
    """Medians per row: messages/s, sender CPU us/message (and the server's, for PG)."""
    from pg_server import PostgresServer, unavailable

    why = unavailable()
    runs: dict[str, list[tuple[float, float, float]]] = {row: [] for row in ROWS}
    with tempfile.TemporaryDirectory(prefix="hpgfast-bench-fleet-") as tmp:
        whole = Path(tmp) / "all.csv"
        write_csv(whole, 0, n)
        quarters = []
        for q in range(4):
            part = Path(tmp) / f"part{q}.csv"
            write_csv(part, q * n // 4, (q + 1) * n // 4 - q * n // 4)
            quarters.append(part)
        server: Optional[PostgresServer] = None if why else PostgresServer().start()
        try:
            for r in range(rounds):
                proc, url = start_emulator()
                try:
                    for row in ROWS if r % 2 == 0 else ROWS[::-1]:
                        engine, senders = row.split(" x")
                        if engine == "postgres":
                            if server is None:
                                continue
                            journal = server.url(server.new_database())
                            jobs = [(whole, journal)] * int(senders)
                        elif senders == "1":
                            jobs = [(whole, str(Path(tmp) / f"r{r}.db"))]
                        else:
                            jobs = [
                                (part, str(Path(tmp) / f"r{r}q{q}.db"))
                                for q, part in enumerate(quarters)
                            ]
                        before = _server_cpu(server) if engine == "postgres" else 0.0
                        wall, cpu = run_senders(url, jobs, concurrency)
                        after = _server_cpu(server) if engine == "postgres" else 0.0
                        runs[row].append((wall, cpu, after - before))
                finally:
                    proc.terminate()
                    proc.wait()
                    if proc.stdout is not None:
                        proc.stdout.close()
        finally:
            if server is not None:
                server.close()
    result: dict[str, Any] = {"messages": n, "concurrency": concurrency, "rounds": rounds}
    for row, got in runs.items():
        if not got:
            result[row] = f"not measured: {why}"
            continue
        wall = statistics.median(g[0] for g in got)
        result[row] = {
            "messages_per_second": round(n / wall),
            "sender_cpu_us_per_message": round(statistics.median(g[1] for g in got) / n * 1e6, 1),
            "server_cpu_us_per_message": round(statistics.median(g[2] for g in got) / n * 1e6, 1),
            "wall_seconds": [round(g[0], 2) for g in got],
        }
    return result


@pytest.mark.slow
def bench_journal_fleet() -> None:
    """Journal throughput rows (reported, not gated)."""
    for key, value in measure(50_000, rounds=1).items():
        print(f"\n{key:>12}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=100_000)
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    args = parser.parse_args()
    for key, value in measure(args.messages, args.rounds, args.concurrency).items():
        print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
