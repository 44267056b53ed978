"""``hpgfast send --file`` without a journal stopped before its first request.

Two stops an outside tester found, each with a real process and a real signal:

- ``kill -9`` while standard input is being copied: the copy (in ``TMPDIR``) has
  no name, so nothing is left behind;
- Ctrl-C or SIGTERM during the whole-file check (with ``--journal``: while the
  input is loaded into the journal): nothing sent, exit 130, and the summary
  docs/cli.md promises for a ``send --file`` stopped that way (every count 0,
  ``"interrupted": true``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator

ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
HEADER = b"address,text,subject\n"


def _rows(start: int, n: int) -> bytes:
    return b"".join(f"7900{i:07d},message {i},hpgfast\n".encode() for i in range(start, start + n))


def _holds_a_file_in(pid: int, directory: Path, timeout: float = 60) -> bool:
    """Whether process ``pid`` comes to hold open a file of ``directory`` (named or not)."""
    deadline = time.monotonic() + timeout
    fds = Path(f"/proc/{pid}/fd")
    while time.monotonic() < deadline:
        try:
            targets = [os.readlink(fd) for fd in fds.iterdir()]
        except OSError:  # an fd closed while listed
            continue
        if any(t.startswith(str(directory)) for t in targets):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_kill_9_while_standard_input_is_copied_leaves_nothing(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with Emulator(speed=None) as emu:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
             "--file", "-", "--format", "csv", "--quiet"],
            env={**ENV, "TMPDIR": str(tmpdir)}, stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        try:
            # Standard input stays open: the command is copying it when killed.
            proc.stdin.write(HEADER + _rows(0, 20_000))
            proc.stdin.flush()
            assert _holds_a_file_in(proc.pid, tmpdir), "standard input's copy never opened"
        finally:
            proc.kill()
            proc.wait(timeout=60)
            proc.stdin.close()
        assert proc.returncode == -signal.SIGKILL
        assert len(emu.ledger) == 0
    assert list(tmpdir.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("journal", [False, True])
def test_an_interrupt_during_the_check_prints_the_summary(
    tmp_path: Path, signum: int, as_json: bool, journal: bool
) -> None:
    # A named pipe as the file: the check reads what is written, then waits for the
    # rest, and is interrupted there.
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)
    opened = threading.Event()
    release = threading.Event()

    def feed() -> None:
        with open(fifo, "wb") as f:  # returns once the command opened the file
            opened.set()
            f.write(HEADER + _rows(0, 7_000))
            f.flush()
            release.wait(120)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with Emulator(speed=None) as emu:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
             "--file", str(fifo), "--format", "csv", "--quiet",
             *(["--json"] if as_json else []),
             *(["--journal", str(tmp_path / "run.db")] if journal else [])],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert opened.wait(60), "the command never opened its input"
            time.sleep(0.5)  # it reads the rows written, then waits for more
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        writer.join(10)
        assert len(emu.ledger) == 0
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    text = out.decode()
    if as_json:
        summary = json.loads(text)
        assert summary["interrupted"] is True
        assert summary["this_run"]["attempted"] == 0
        assert summary["this_run"]["accepted"] == 0
        assert summary["this_run"]["not_sent"] == 0
    else:
        assert "nothing sent" in text, text
        assert "interrupted (Ctrl-C or SIGTERM)" in text, text
