"""A sender killed at any moment leaves at most the crash window in flight.

The window W = 4 x concurrency requests' messages (``docs/journal.md``): real
``hpgfast send --journal`` processes, killed with SIGKILL at seeded random moments
while they send, against the emulator over loopback HTTP (in this process, so that
its ledger of what the platform received survives the sender); the journal file
read after each kill with a connection of the test's own, as another process would.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator
from hpgfast.journal import State

PASSWORD = "P@ssw0rd"


def _states(path: Path, first: int, last: int) -> dict[int, str]:
    """The journal's state of lines ``first..last``, read (its ``journal`` view, as
    ``Journal.rows`` reads it) with a connection of the test's own, as another
    process would."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        found = dict(db.execute(
            "SELECT line, state FROM journal WHERE line BETWEEN ? AND ?", (first, last)
        ).fetchall())
    finally:
        db.close()
    assert len(found) == last - first + 1
    return found


N = 12_000
MAX_BATCH = 20
KILLS = 4


def _write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["address", "text", "subject", "client_id"])
        for i in range(n):
            writer.writerow([f"79{i:09d}", f"Order {i} shipped", "hpgfast", f"c{i}"])


@pytest.mark.parametrize("concurrency", [1, 2])
def test_sigkill_leaves_at_most_the_window_in_flight(tmp_path: Path, concurrency: int) -> None:
    # A sender killed at random moments: every message the platform received was
    # marked in flight (or settled) on disk before it left, and the rows in flight
    # are at most W = 4 x concurrency requests' worth, whatever the moment.
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path, N)
    env = {**os.environ, "HPGFAST_PASSWORD": PASSWORD}
    rng = random.Random(20261207 + concurrency)
    window = 4 * concurrency * MAX_BATCH
    # A platform that takes 10 ms a request: a run lasts seconds, whatever the load.
    with Emulator(speed=None, latency=0.01) as emu:
        command = [
            sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--file", str(csv_path), "--journal", str(journal_path),
            "--concurrency", str(concurrency), "--max-batch", str(MAX_BATCH),
            "--quiet", "--timeout", "5",
        ]
        kills = 0
        for _ in range(KILLS):
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            before = len(emu.ledger)
            deadline = time.monotonic() + 60
            # Killed once it is sending (a kill in the load proves nothing here).
            while len(emu.ledger) == before and proc.poll() is None:
                assert time.monotonic() < deadline, "the sender never sent"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
            received = {e.client_id for e in emu.ledger.messages()}
            states = _states(journal_path, 1, N)
            in_flight = [line for line, s in states.items() if s == State.IN_FLIGHT]
            assert len(in_flight) <= window, (len(in_flight), window)
            # The mark preceded the bytes: nothing the platform has is pending.
            pending_sent = [c for c in received
                            if states[int(c[1:]) + 1] == State.PENDING]  # type: ignore[index]
            assert pending_sent == [], pending_sent[:10]
        assert kills >= 3, "the sender finished before it could be killed: raise N"
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 1), done.stderr  # 1: unknown ones the kills left
        assert emu.ledger.duplicates("client_id") == {}
        states = _states(journal_path, 1, N)
        assert State.PENDING not in states.values()
        assert State.IN_FLIGHT not in states.values()
