"""Without ``--journal`` bad input is found before the first request.

A cp1251 row at record 6,001, or a short row at 7,001, of a UTF-8 CSV: nothing
reaches the emulator, exit 2, and the error names the file's line. Standard input
is spooled to an unnamed temporary file and checked the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpgfast.emulator import Emulator

ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}


def _rows(n: int) -> list[bytes]:
    return [f"7900{i:07d},message {i},hpgfast\n".encode() for i in range(n)]


@pytest.mark.parametrize(
    ("bad_record", "bad", "message"),
    [
        (6_001, "79000000001,Привет,hpgfast\n".encode("cp1251"), "not utf-8 text"),
        (7_001, b"79000000001,short\n", "2 fields, but the header has 3"),
    ],
)
@pytest.mark.parametrize("stdin", [False, True])
def test_bad_input_is_found_before_anything_is_sent(
    tmp_path: Path, bad_record: int, bad: bytes, message: str, stdin: bool
) -> None:
    rows = _rows(10_000)
    rows[bad_record - 1] = bad
    data = b"address,text,subject\n" + b"".join(rows)
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    with Emulator(speed=None) as emu:
        command = [
            sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--file", "-" if stdin else str(path), "--format", "csv", "--json", "--quiet",
        ]
        done = subprocess.run(
            command, env={**ENV, "TMPDIR": str(tmp_path)}, input=data if stdin else None,
            capture_output=True, timeout=120,
        )
        assert len(emu.ledger) == 0, "a message went out before the input was checked"
    err = done.stderr.decode()
    assert done.returncode == 2, err
    shown = "<stdin>" if stdin else str(path)
    # The header is line 1: record N is on line N + 1.
    assert f"{shown}:{bad_record + 1}" in err, err
    assert message in err, err
    assert not list(tmp_path.glob("hpgfast-stdin-*"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_the_journaled_path_reads_its_input_once(tmp_path: Path) -> None:
    """Through a named pipe, which can be read only once: fingerprint and load in one pass."""
    import hashlib
    import threading

    from hpgfast.journal import Journal

    data = b"address,text,subject\n" + b"".join(_rows(2_000))
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:  # blocks until the sender opens it
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with Emulator(speed=None) as emu:
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
             "--file", str(fifo), "--format", "csv", "--journal", str(tmp_path / "j.db"),
             "--quiet"],
            env=ENV, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert len(emu.ledger) == 2_000
    writer.join(5)
    with Journal(tmp_path / "j.db") as j:
        meta = j.meta()
    assert meta["input:input_sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["input:input_size"] == str(len(data))
