"""Resends that cannot double and the schema migration.

The journal sends every message without a clientId of its own with one it makes
(its random prefix and the line: 20 characters of [0-9A-Za-z]), the same on every
resend. A sender is SIGKILLed with requests on the wire against an emulator that
enforces unique clientIds; ``--resend-unknown`` then sends the unknown ones again
with the same ids: those that had reached the platform come back
``error-id-not-unique`` and are recorded ``accepted_earlier``; the ledger holds
every message exactly once.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpgfast import Client, Code, Message, SendResult
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal, State

N = 3_000
ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}


def _write_csv(path: Path, n: int, *, own_ids: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,subject" + (",client_id" if own_ids else "") + "\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i},hpgfast" + (f",own{i}" if own_ids else "") + "\n")


def _send(url: str, csv_path: Path, journal: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", "CLIENT",
        "--file", str(csv_path), "--journal", str(journal), "--concurrency", "2",
        "--max-batch", "50", "--quiet", *extra,
    ]


def test_made_ids_follow_the_scheme_and_are_stable(tmp_path: Path) -> None:
    with Journal(tmp_path / "a.db") as a, Journal(tmp_path / "b.db") as b:
        ids = {a.made_id(line) for line in (1, 2, 61, 62, 10**9)}
        assert len(ids) == 5
        for i in ids:
            assert re.fullmatch(r"[0-9A-Za-z]{20}", i)
        assert a.made_id(1) != b.made_id(1), "each journal draws its own prefix"
        prefix = a.meta()["id_prefix"]
        assert len(prefix) == 11 and a.made_id(7).startswith(prefix)
        first = a.made_id(1)
    with Journal(tmp_path / "a.db") as again:
        assert again.made_id(1) == first, "the prefix is kept in the journal"


@pytest.mark.slow
def test_resend_unknown_cannot_double(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path, N)
    with Emulator(speed=None, latency=0.3, unique_client_ids=True) as emu:
        first = subprocess.Popen(
            _send(emu.url, csv_path, journal_path), env=ENV,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 300 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # Kill while requests are on the wire: the emulator has them, the journal
        # has them in flight (the latency is before the reply).
        time.sleep(0.1)
        first.kill()
        first.wait()
        with Journal(journal_path) as j:
            j.recover()
            unknown = {r[0] for r in j.rows(states=[State.UNKNOWN])}
            sent_ids = {j.made_id(line) for line in unknown}
        in_ledger = {e.client_id for e in emu.ledger} & sent_ids
        assert in_ledger, "the kill came with nothing on the wire: slow the emulator"
        done = subprocess.run(
            _send(emu.url, csv_path, journal_path, "--resend-unknown"), env=ENV,
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(emu.ledger) == N
        assert emu.ledger.duplicates("text") == {}
        assert emu.ledger.duplicates("client_id") == {}
        ledger_ids = {e.client_id for e in emu.ledger}
    with Journal(journal_path) as j:
        counts = j.counts()
        earlier = {r[0] for r in j.rows(states=[State.ACCEPTED_EARLIER])}
        assert {j.made_id(line) for line in earlier} == in_ledger
        assert counts[State.ACCEPTED] + counts[State.ACCEPTED_EARLIER] == N
        assert ledger_ids == {j.made_id(line) for line in range(1, N + 1)}


def test_id_not_unique_elsewhere_stays_a_rejection(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        j.bind({"input_sha256": "x"})
        j.load([(1, Message("79000000001", "a", "s")), (2, Message("79000000002", "b", "s")),
                (3, Message("79000000003", "c", "s", "own3"))])
        j.finish_load(3)
        j.mark_in_flight([1, 2, 3])
        # Line 1 was unknown (its reply lost), lines 2 and 3 are sent for the first time.
        j.record_results([1], [SendResult(Code.UNKNOWN, j.made_id(1), None)])
        with j._transaction() as db:
            db.execute("UPDATE outcomes SET state = 'in_flight' WHERE line = 1")
        not_unique = Code.ERROR_ID_NOT_UNIQUE
        counts = j.record_results(
            [1, 2, 3],
            [SendResult(not_unique, j.made_id(1), None), SendResult(not_unique, j.made_id(2), None),
             SendResult(not_unique, "own3", None)],
        )
        assert counts == {State.ACCEPTED_EARLIER: 1, State.REJECTED: 2}
        # An id the journal did not make (another message's echo) is a rejection too.
        assert [r[6] for r in j.rows()] == ["accepted_earlier", "rejected", "rejected"]


def test_the_runs_counts_take_the_journals_accepted_earlier(tmp_path: Path, transport: str) -> None:
    # A resend answered error-id-not-unique for an id the journal made and had
    # unknown is accepted_earlier in the journal; the run's own counts ("this run"
    # in the summary) must say so too, not "rejected".
    n = 20
    with Emulator(speed=None, unique_client_ids=True) as emu, Journal(tmp_path / "j.db") as j:
        j.bind({"input_sha256": "x"})
        j.load([(i, Message(f"7900{i:07d}", f"message {i}", "s")) for i in range(1, n + 1)])
        j.finish_load(n)
        with Client(emu.url, "CLIENT", "P@ssw0rd") as c:
            first = j.send(c)
            assert first.states[State.ACCEPTED] == n
            # As after a crash with the requests on the wire: the platform has them,
            # the journal calls them unknown.
            with j._transaction() as db:
                db.execute("UPDATE outcomes SET state = 'unknown', code = 'unknown', "
                           "provider_id = NULL")
            again = j.send(c, resend_unknown=True)
        assert len(emu.ledger) == n
        assert j.counts()[State.ACCEPTED_EARLIER] == n
    assert again.states[State.ACCEPTED_EARLIER] == n
    assert again.states[State.REJECTED] == 0
    assert dict(again.rejected_by_code) == {}
    assert again.attempted == n


def test_a_half_done_version_1_journal_resumes_without_a_duplicate(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path, 300)
    with Emulator(speed=None, unique_client_ids=True) as emu:
        # Make a version-1 journal, half done: version 1 had these very tables and
        # no id prefix. Lines 1-100 accepted, 101-200 in flight when the sender
        # died, 201-300 pending. The ledger is then cleared: what counts is what
        # the resumed run sends.
        done = subprocess.run(
            _send(emu.url, csv_path, journal_path), env=ENV,
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        db = sqlite3.connect(journal_path)
        with db:
            db.execute("DELETE FROM meta WHERE key = 'id_prefix'")
            db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
            db.execute("UPDATE outcomes SET state = 'in_flight', code = NULL, provider_id = NULL "
                       "WHERE line BETWEEN 101 AND 200")
            db.execute("DELETE FROM outcomes WHERE line > 200")
        db.close()
        emu.ledger.clear()
        resumed = subprocess.run(
            _send(emu.url, csv_path, journal_path), env=ENV, capture_output=True, text=True,
            timeout=60,
        )
        assert resumed.returncode == 1, resumed.stderr  # the 100 in flight are unknown
        sent = sorted(int(e.text.split()[1]) for e in emu.ledger)
    # Only the pending ones went out, once each: 201-300 are messages 200-299.
    assert sent == list(range(200, 300))
    with Journal(journal_path) as j:
        assert j.meta()["schema_version"] == "4" and len(j.meta()["id_prefix"]) == 11
        counts = j.counts()
    assert (counts[State.ACCEPTED], counts[State.UNKNOWN]) == (200, 100)
