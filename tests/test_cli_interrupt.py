"""``hpgfast send --journal`` stopped by Ctrl-C or SIGTERM records what the client knew.

Issue 11, item 1: an interrupt once marked the whole 5,000-message chunk
``unknown``. Now every request that ended keeps its results (accepted with the
provider id, rejected, not sent); a request never begun stays sendable; only
requests cut on the wire may be ``unknown``: at most ``--concurrency`` requests
of at most ``--max-batch`` messages. Checked against the emulator's ledger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator
from hpgfast.journal import Journal

N = 6_000
CONCURRENCY = 2
MAX_BATCH = 100


def _write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,client_id\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i},c{i}\n")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_what_the_client_knew(tmp_path: Path, signum: int) -> None:
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path, N)
    env = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
    # 50 ms per request: 60 requests over 2 threads take about 1.5 s.
    with Emulator(speed=None, latency=0.05) as emu:
        command = [
            sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--file", str(csv_path), "--journal", str(journal_path),
            "--concurrency", str(CONCURRENCY), "--max-batch", str(MAX_BATCH), "--quiet",
            "--subject", "hpgfast",
        ]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 1_000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        ledger = {e.client_id: e.provider_id for e in emu.ledger.messages()}
    assert 0 < len(ledger) < N, "the interrupt came too late or too early"
    with Journal(journal_path) as journal:
        states: dict[str, int] = {}
        for row in journal.rows():
            client_id, state, provider_id = row[4], row[6], row[7]
            states[state] = states.get(state, 0) + 1
            if client_id in ledger:
                # What the client knew is kept: accepted, with the provider id.
                if state != "unknown":
                    assert (state, provider_id) == ("accepted", ledger[client_id])
            else:
                assert state in ("pending", "not_sent", "unknown"), (client_id, state)
    assert states.get("in_flight", 0) == 0
    # Only requests cut on the wire are unknown: far from the 5,000 of a chunk.
    assert states.get("unknown", 0) <= CONCURRENCY * MAX_BATCH, states
    assert states.get("accepted", 0) >= len(ledger) - CONCURRENCY * MAX_BATCH, states
