"""``hpgfast send`` without ``--journal`` does not import the journal.

The journal package (its dozen modules and SQLite) was a third of the command's
start-up above a user's own script; a send without a journal counts its results
with ``hpgfast._states``, which the journal re-exports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hpgfast.emulator import Emulator

ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}

# A real run of the command, in a process of its own; then what it imported.
SCRIPT = """
import sys
from hpgfast.cli import main
code = main(sys.argv[1:])
print(sorted(m for m in sys.modules if m.startswith("hpgfast.journal") or "sqlite" in m))
sys.exit(code)
"""


def _run(args: list[str]) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_a_send_without_a_journal_does_not_import_it(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("address,text,subject\n79001234567,hello,hpgfast\n79001234568,hi,hpgfast\n")
    results = tmp_path / "results.csv"
    with Emulator(speed=None) as emu:
        for extra in ([], ["--results", str(results)]):
            shown = _run(["send", "--url", emu.url, "--login", "CLIENT", "--file", str(path),
                          "--quiet", *extra])
            assert shown == "[]", (extra, shown)
        assert len(emu.ledger) == 4
    assert results.read_text().count("accepted") == 2


def test_the_chunk_without_a_journal_is_the_journals() -> None:
    from hpgfast.cli._run import DEFAULT_CHUNK
    from hpgfast.journal import DEFAULT_CHUNK as JOURNALS

    assert DEFAULT_CHUNK == JOURNALS
