"""One sender per journal file, whatever the path.

A sender runs against a slow emulator; a second ``hpgfast send --resend-unknown``
through a symlink to the same database, and one through a relative path, are
refused (exit 2, "another process is sending"); a hard link to the journal is
refused outright; ``report`` keeps working beside the running sender. The ledger
then holds every message once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator
from hpgfast.journal import Journal, JournalError

N = 3_000


def _write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,subject\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i},hpgfast\n")


def _send(url: str, csv_path: Path, journal: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", "CLIENT",
        "--file", str(csv_path), "--journal", journal, "--concurrency", "2",
        "--max-batch", "25", "--quiet", *extra,
    ]


@pytest.mark.slow
def test_a_second_sender_through_another_path_is_refused(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, N)
    real = tmp_path / "data" / "run.db"
    real.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    env = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
    with Emulator(speed=None, latency=0.2) as emu:
        first = subprocess.Popen(
            _send(emu.url, csv_path, str(real)), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 100 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "the first sender ended too soon"
        for path, cwd in ((str(link), None), (os.path.join("data", "run.db"), tmp_path)):
            second = subprocess.run(
                _send(emu.url, csv_path, path, "--resend-unknown"), env=env, cwd=cwd,
                capture_output=True, text=True, timeout=60,
            )
            assert second.returncode == 2, second.stderr
            assert "another process is sending" in second.stderr
        # Readers keep working beside the sender.
        report = subprocess.run(
            [sys.executable, "-m", "hpgfast", "report", str(link), "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert report.returncode == 0, report.stderr
        assert first.poll() is None, "the sender ended before the checks: slow it down"
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert len(emu.ledger) == N
        assert emu.ledger.duplicates("text") == {}


def test_a_journal_with_two_hard_links_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    Journal(path).close()
    os.link(path, tmp_path / "other.db")
    for name in (path, tmp_path / "other.db"):
        with pytest.raises(JournalError, match="hard links"):
            Journal(name)
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, 3)
    done = subprocess.run(
        _send("http://127.0.0.1:9/", csv_path, str(path)),
        env={**os.environ, "HPGFAST_PASSWORD": "x"}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "hard links" in done.stderr, done.stderr


def test_the_lock_follows_the_file_not_the_name(tmp_path: Path) -> None:
    real = tmp_path / "run.db"
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with Journal(real, lock=True):
        with pytest.raises(JournalError, match="another process"):
            Journal(link, lock=True)
        with Journal(link) as reader:  # a reader needs no lock
            assert reader.path == str(real)
