"""A journal of the previous schema (version 1) keeps its duplicate protection.

Version 1 did not record the clientIds it sent: the client made them, the journal
kept none. A message that was in flight or unknown when such a journal is migrated
went out under an id nobody knows; sent again under the journal's own id, a
platform that refuses a repeated clientId would accept it a second time. So
``--resend-unknown`` refuses those messages (listing their lines, sending nothing)
unless ``--resend-unknown-without-ids`` says the risk is taken.

The journal is built as version 1 built it: its very tables (the DDL below is the
previous release's, copied as it was), its meta (``schema_version`` 1, the input's
fingerprint, ``loaded``; no id prefix), and messages sent to the emulator by a
``Client`` making its own clientIds, as version 1's sender did.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpgfast import Client, Message
from hpgfast._wire import base62
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal, JournalError, JournalIdsNotRecorded, State

ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
N = 300
#: Lines given a clientId of their own in the input: recorded, so never refused.
OWN_IDS = (150, 160)

# The previous release's schema (journal schema version 1), exactly as it was.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    line      INTEGER PRIMARY KEY,   -- 1-based number of the message in the input
    address   TEXT NOT NULL,
    text      TEXT NOT NULL,
    subject   TEXT,
    client_id TEXT,
    params    TEXT                   -- JSON object of extra parameters, or NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    line          INTEGER PRIMARY KEY REFERENCES messages(line),
    state         TEXT NOT NULL,
    provider_id   TEXT,
    code          TEXT,              -- the platform's code, or not-sent / unknown
    status        TEXT,              -- the last delivery status seen
    status_time   TEXT,              -- when that status began (platform's clock)
    reason        TEXT,              -- why: undelivered reason, invalid input, ...
    status_source TEXT,              -- poll or push
    updated_at    REAL NOT NULL      -- Unix time of the row's last change
);
CREATE VIEW IF NOT EXISTS journal AS
    SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params,
           COALESCE(o.state, 'pending') AS state, o.provider_id, o.code,
           o.status, o.status_time, o.reason, o.status_source, o.updated_at
    FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line;
CREATE TABLE IF NOT EXISTS status_history (
    id          INTEGER PRIMARY KEY,
    line        INTEGER NOT NULL,
    provider_id TEXT NOT NULL,
    status      TEXT,
    status_time TEXT,
    reason      TEXT,
    source      TEXT,
    recorded_at REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outcomes_status_change
AFTER UPDATE OF status, status_time ON outcomes
WHEN NEW.status IS NOT OLD.status OR NEW.status_time IS NOT OLD.status_time
BEGIN
    INSERT INTO status_history (line, provider_id, status, status_time, reason, source,
                                recorded_at)
    VALUES (NEW.line, NEW.provider_id, NEW.status, NEW.status_time, NEW.reason,
            NEW.status_source, NEW.updated_at);
END;

CREATE TABLE IF NOT EXISTS costs (
    line           INTEGER PRIMARY KEY,  -- messages.line
    segments       INTEGER NOT NULL,
    encoding       TEXT NOT NULL,        -- gsm7 or ucs2
    transliterated INTEGER NOT NULL      -- 1: counted (and sent) in Latin letters
);
"""


def _write_csv(path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,subject,client_id\n")
        for line in range(1, N + 1):
            own = f"own{line}" if line in OWN_IDS else ""
            f.write(f"7900{line:07d},message {line},hpgfast,{own}\n")


def _send(url: str, csv_path: Path, journal: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", "CLIENT",
        "--file", str(csv_path), "--journal", str(journal), "--max-batch", "50",
        "--quiet", *extra,
    ]


def _version_1_journal(path: Path, csv_path: Path, emu: Emulator) -> None:
    """A version-1 journal whose sender died: 1-100 accepted, 101-150 unknown,
    151-200 in flight, 201-300 pending; 1-200 reached the platform."""
    # The input as version 1 loaded it (the load and the fingerprint are unchanged):
    # from a journal the current code loads without reaching any platform.
    loaded = path.parent / "loaded.db"
    subprocess.run(
        _send("http://127.0.0.1:9/", csv_path, loaded), env=ENV, capture_output=True,
        timeout=60,
    )
    source = sqlite3.connect(loaded)
    fingerprint = source.execute("SELECT key, value FROM meta WHERE key LIKE 'input:%'").fetchall()
    # Version 1's columns (the current schema has more).
    messages = source.execute(
        "SELECT line, address, text, subject, client_id, params FROM messages ORDER BY line"
    ).fetchall()
    costs = source.execute("SELECT * FROM costs ORDER BY line").fetchall()
    source.close()
    assert len(messages) == N and len(fingerprint) >= 3

    # Version 1's sender: the client made the clientIds; the journal kept none.
    with Client(emu.url, "CLIENT", "P@ssw0rd") as client:
        results = client.send([Message(*m[1:5]) for m in messages[:200]])
    assert all(r[0] == "ok" for r in results)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA)
    now = time.time()
    with db:
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                       [("schema_version", "1"), *fingerprint, ("loaded", str(N))])
        db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", messages)
        db.executemany("INSERT INTO costs VALUES (?, ?, ?, ?)", costs)
        for line, r in zip(range(1, 201), results):
            if line <= 100:
                row = ("accepted", r[2], "ok", None)
            elif line <= 150:
                row = ("unknown", None, "unknown", "send failed: read timed out")
            else:
                row = ("in_flight", None, None, None)
            db.execute("INSERT INTO outcomes (line, state, provider_id, code, reason, "
                       "updated_at) VALUES (?, ?, ?, ?, ?, ?)", (line, *row, now))
        db.execute("COMMIT")
    db.close()


def _ledger_lines(emu: Emulator) -> list[int]:
    return sorted(int(e.text.split()[1]) for e in emu.ledger)


WITHOUT_IDS = [line for line in range(101, 201) if line not in OWN_IDS]


@pytest.mark.slow
def test_resend_unknown_refuses_messages_sent_before_ids_were_recorded(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path)
    journal = tmp_path / "v1.db"
    with Emulator(speed=None, unique_client_ids=True) as emu:
        _version_1_journal(journal, csv_path, emu)
        assert _ledger_lines(emu) == list(range(1, 201))

        refused = subprocess.run(_send(emu.url, csv_path, journal, "--resend-unknown"),
                                 env=ENV, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "lines 101-149, 151-159, 161-200" in refused.stderr, refused.stderr
        assert "--resend-unknown-without-ids" in refused.stderr
        assert _ledger_lines(emu) == list(range(1, 201)), "the refused run sent messages"

        # Without --resend-unknown the rest goes out; the unknown ones stay unknown.
        rest = subprocess.run(_send(emu.url, csv_path, journal), env=ENV,
                              capture_output=True, text=True, timeout=120)
        assert rest.returncode == 1, rest.stdout + rest.stderr
        assert _ledger_lines(emu) == list(range(1, 301))

        # Still refused on a later run: the journal remembers which ones they are.
        again = subprocess.run(_send(emu.url, csv_path, journal, "--resend-unknown"),
                               env=ENV, capture_output=True, text=True, timeout=120)
        assert again.returncode == 2, again.stdout + again.stderr
        assert "lines 101-149, 151-159, 161-200" in again.stderr
        assert len(emu.ledger) == N

        # Taking the risk, by name: they go again, under the journal's ids, and the
        # platform (which never saw those ids) accepts them a second time.
        taken = subprocess.run(
            _send(emu.url, csv_path, journal, "--resend-unknown-without-ids"),
            env=ENV, capture_output=True, text=True, timeout=120,
        )
        assert taken.returncode == 1, taken.stdout + taken.stderr
        ledger = _ledger_lines(emu)
    # The 98 without ids are in the ledger twice; the 2 with their own ids were
    # refused by the platform (error-id-not-unique), not sent twice.
    assert ledger == sorted([*range(1, 301), *WITHOUT_IDS])
    with Journal(journal) as j:
        assert j.meta()["schema_version"] == "4"
        counts = j.counts()
        assert counts[State.ACCEPTED] == 100 + 100 + len(WITHOUT_IDS)
        assert counts[State.REJECTED] == len(OWN_IDS)


def test_the_library_refuses_them_too_and_takes_the_risk_when_told(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path)
    journal = tmp_path / "v1.db"
    with Emulator(speed=None, unique_client_ids=True) as emu:
        _version_1_journal(journal, csv_path, emu)
        with Journal(journal, lock=True) as j:
            with pytest.raises(JournalIdsNotRecorded) as refused:
                j.recover(resend_unknown=True)
            assert refused.value.lines == WITHOUT_IDS
            assert isinstance(refused.value, JournalError)
            # Nothing was changed by the refusal; a plain recovery still works.
            assert j.counts()[State.IN_FLIGHT] == 50
            with Client(emu.url, "CLIENT", "P@ssw0rd") as client:
                with pytest.raises(JournalIdsNotRecorded):
                    j.send(client, resend_unknown=True)
                assert len(emu.ledger) == 200
                outcome = j.send(client, resend_unknown_without_ids=True)
            assert outcome.recovered["unknown_to_pending"] == 100
            assert len(emu.ledger) == 300 + len(WITHOUT_IDS)


# The previous release's schema (journal schema version 2), exactly as it was: version
# 1's tables and the list of messages whose first clientId was not recorded.
V2_SCHEMA = V1_SCHEMA.replace(
    "CREATE TABLE IF NOT EXISTS status_history (",
    """-- Messages sent before the journal recorded clientIds (schema 1) and in flight or
-- unknown when it was migrated: their first clientId is not known, so a resend under
-- the journal's own id could be accepted twice. Filled once, by the migration.
CREATE TABLE IF NOT EXISTS ids_not_recorded (
    line INTEGER PRIMARY KEY             -- messages.line
);
CREATE TABLE IF NOT EXISTS status_history (""",
)


def _version_2_journal(path: Path) -> None:
    """A version-2 journal: line 1 accepted (with a delivery status), 2 unknown, 3-4
    pending; made by the input's load, so no message has a key."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V2_SCHEMA)
    now = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
        ("schema_version", "2"), ("id_prefix", "Abcdefghij0"), ("input:input_sha256", "x"),
        ("loaded", "4"),
    ])
    db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", [
        (line, f"7900000000{line}", f"old {line}", "hpgfast", None, None) for line in range(1, 5)
    ])
    db.execute("INSERT INTO outcomes (line, state, provider_id, code, updated_at) "
               "VALUES (1, 'accepted', 'p1', 'ok', ?)", (now,))
    db.execute("INSERT INTO outcomes (line, state, code, updated_at) "
               "VALUES (2, 'unknown', 'unknown', ?)", (now,))
    db.execute("UPDATE outcomes SET status = 'delivered', status_source = 'poll' WHERE line = 1")
    db.execute("COMMIT")
    db.close()


def test_a_version_2_journal_gets_keys_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_2_journal(path)
    # A reader migrates it too (one transaction), and sees what was there.
    with Journal(path, create=False) as j:
        assert j.meta()["schema_version"] == "4"
        assert j.meta()["id_prefix"] == "Abcdefghij0"
        first = j.by_line(1)
        assert first is not None
        assert (first["state"], first["provider_id"], first["status"], first["key"]) == (
            "accepted", "p1", "delivered", None)
        assert [r[6] for r in j.rows()] == ["accepted", "unknown", "pending", "pending"]
        assert len(j.history(1)) == 1
    db = sqlite3.connect(path)
    indexes = {r[1]: r[2] for r in db.execute("PRAGMA index_list(messages)")}
    db.close()
    assert indexes.get("messages_key") == 1  # unique
    with Emulator(speed=None, unique_client_ids=True) as emu, Journal(path, lock=True) as j:
        # Keyed messages go after the old ones, once each however often they are fed.
        orders = [(f"order-{i}", Message(f"7911000000{i}", f"new {i}", "hpgfast"))
                  for i in range(2)]
        assert j.add(orders) == 2 and j.add(orders) == 0
        assert j.by_key("order-1")["line"] == 6  # type: ignore[index]
        with Client(emu.url, "CLIENT", "P@ssw0rd") as client:
            summary = j.send(client)
        assert summary.states[State.ACCEPTED] == 4
        assert sorted(e.text for e in emu.ledger) == ["new 0", "new 1", "old 3", "old 4"]
        # The old rows' clientIds are still the journal's prefix and their line.
        assert {e.client_id for e in emu.ledger if e.text.startswith("old")} == {
            j.made_id(3), j.made_id(4)}
        assert j.counts()[State.UNKNOWN] == 1


# The previous release's schema (journal schema version 3), exactly as it was: version
# 2's tables, the caller's key on each message (and its partial unique index), and
# the journal view that shows it. Each message's cost had a row in ``costs``, each
# message marked in flight an outcome row of its own.
V3_SCHEMA = V2_SCHEMA.replace(
    """    params    TEXT                   -- JSON object of extra parameters, or NULL
);""",
    """    params    TEXT,                  -- JSON object of extra parameters, or NULL
    key       TEXT                   -- the caller's key (Journal.add), unique, or NULL
);""",
).replace(
    """           o.status, o.status_time, o.reason, o.status_source, o.updated_at
    FROM messages""",
    """           o.status, o.status_time, o.reason, o.status_source, o.updated_at, m.key
    FROM messages""",
) + """
CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages(key) WHERE key IS NOT NULL;
"""


def _version_3_journal(path: Path, csv_path: Path, emu: Emulator) -> list[tuple[int, ...]]:
    """A version-3 journal whose sender died: 1-100 accepted, 101-150 unknown, 151-200
    in flight (each an outcome row), 201-300 pending; 1-200 reached the platform under
    the journal's clientIds, as version 3's sender sent them. Returns its costs rows."""
    loaded = path.parent / "loaded.db"
    subprocess.run(
        _send("http://127.0.0.1:9/", csv_path, loaded), env=ENV, capture_output=True,
        timeout=60,
    )
    source = sqlite3.connect(loaded)
    fingerprint = source.execute("SELECT key, value FROM meta WHERE key LIKE 'input:%'").fetchall()
    messages = source.execute(
        "SELECT line, address, text, subject, client_id, params FROM messages ORDER BY line"
    ).fetchall()
    costs = source.execute("SELECT * FROM costs ORDER BY line").fetchall()
    source.close()
    assert len(messages) == N and len(costs) == N and len(fingerprint) >= 3

    prefix = "Abcdefghij0"
    made = [m[4] or prefix + base62(m[0], 9) for m in messages]
    with Client(emu.url, "CLIENT", "P@ssw0rd") as client:
        results = client.send([Message(*m[1:4], made[i]) for i, m in enumerate(messages[:200])])
    assert all(r[0] == "ok" for r in results)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V3_SCHEMA)
    now = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
        ("schema_version", "3"), ("id_prefix", prefix), *fingerprint, ("loaded", str(N)),
    ])
    db.executemany("INSERT INTO messages (line, address, text, subject, client_id, params) "
                   "VALUES (?, ?, ?, ?, ?, ?)", messages)
    db.executemany("INSERT INTO costs VALUES (?, ?, ?, ?)", costs)
    for line, r in zip(range(1, 201), results):
        if line <= 100:
            row = ("accepted", r[2], "ok", None)
        elif line <= 150:
            row = ("unknown", None, "unknown", "send failed: read timed out")
        else:
            row = ("in_flight", None, None, None)
        db.execute("INSERT INTO outcomes (line, state, provider_id, code, reason, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)", (line, *row, now))
    db.execute("COMMIT")
    db.close()
    return costs


@pytest.mark.slow
def test_a_version_3_journal_moves_its_costs_and_resumes_exactly(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path)
    journal = tmp_path / "v3.db"
    with Emulator(speed=None, unique_client_ids=True) as emu:
        costs = _version_3_journal(journal, csv_path, emu)
        with Journal(journal, create=False) as j:  # a reader migrates it, and sees it all
            assert j.meta()["schema_version"] == "4"
            counts = j.counts()
            assert (counts[State.ACCEPTED], counts[State.UNKNOWN], counts[State.IN_FLIGHT],
                    counts[State.PENDING]) == (100, 50, 50, 100)
            assert j.cost_totals()["messages"] == N
            accepted = j.by_line(100)
            assert accepted is not None and accepted["provider_id"]
        db = sqlite3.connect(journal)
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master "
                                "WHERE name IN ('costs', 'in_flight')").fetchall())
        assert db.execute("SELECT * FROM costs ORDER BY line").fetchall() == costs
        db.close()
        assert kinds == {"costs": "view", "in_flight": "table"}

        # The rest goes out once; what was in flight is unknown, and not sent again.
        rest = subprocess.run(_send(emu.url, csv_path, journal), env=ENV,
                              capture_output=True, text=True, timeout=120)
        assert rest.returncode == 1, rest.stdout + rest.stderr
        assert _ledger_lines(emu) == list(range(1, 301))
        with Journal(journal) as j:
            counts = j.counts()
            assert (counts[State.ACCEPTED], counts[State.UNKNOWN]) == (200, 100)
            assert j.by_line(100) == accepted

        # Resent under the ids the journal made for them: the platform had them all.
        again = subprocess.run(_send(emu.url, csv_path, journal, "--resend-unknown"),
                               env=ENV, capture_output=True, text=True, timeout=120)
        assert again.returncode == 1, again.stdout + again.stderr  # two own ids refused
        assert _ledger_lines(emu) == list(range(1, 301))
    with Journal(journal) as j:
        counts = j.counts()
        assert counts[State.ACCEPTED] + counts[State.ACCEPTED_EARLIER] == N - len(OWN_IDS)
        assert counts[State.ACCEPTED_EARLIER] == 100 - len(OWN_IDS)
        assert counts[State.REJECTED] == len(OWN_IDS)  # their own ids: refused, not resent
        assert j.cost_totals()["messages"] == N
