"""The journal's disk fills up mid-run: the run stops, the journal resumes.

A real process with a file-size limit (``RLIMIT_FSIZE``: writes past it fail with
``EFBIG``, as on a full disk; Python ignores ``SIGXFSZ``) runs a journaled send:
it stops with exit 6 and a clear message, no traceback. The same command run again
with room resumes: every message reaches the platform exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator
from hpgfast.journal import Journal

resource = pytest.importorskip("resource")

N = 30_000
LIMIT = 3_000_000  # bytes: the input loads, the disk fills while sending


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.slow
def test_a_full_disk_stops_with_exit_6_and_the_journal_resumes(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write("address,text,subject\n")
        for i in range(N):
            f.write(f"7900{i:07d},message number {i} for you,hpgfast\n")
    journal = tmp_path / "run.db"
    env = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
    with Emulator(speed=None) as emu:
        command = [
            sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--file", str(csv_path), "--journal", str(journal), "--max-batch", "500",
            "--quiet",
        ]
        full = subprocess.run(
            command, env=env, preexec_fn=_limit, capture_output=True, text=True, timeout=120
        )
        assert full.returncode == 6, full.stderr
        assert "cannot write the journal" in full.stderr and "run the same command" in full.stderr
        assert "Traceback" not in full.stderr
        assert 0 < len(emu.ledger) < N, "the limit should bite while sending"
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode in (0, 1), again.stderr
        assert emu.ledger.duplicates("text") == {}
        texts = {e.text for e in emu.ledger}
    with Journal(journal) as j:
        assert j.integrity_check() == "ok"
        for row in j.rows():
            text, state = row[2], row[6]
            if state == "accepted":
                assert text in texts
            else:  # in flight when the disk filled: unknown, never sent twice
                assert state == "unknown", (row[0], state)
        counts = j.counts()
    assert counts["accepted"] + counts["unknown"] == N
    assert len(texts) >= counts["accepted"]
