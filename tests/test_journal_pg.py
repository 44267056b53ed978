"""The PostgreSQL journal against a real server: the SQLite journal's expectations
(tests/test_journal.py), and what a fleet of senders sharing one database needs:
claims, leases, lapses, one load, errors that say what happened and never the
password."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from hpgfast import Message, RequestRejected, SendResult, StatusResult
from hpgfast.client import SendFailure
from hpgfast.journal import (
    JournalAccessDenied,
    JournalClaimLost,
    JournalError,
    JournalMismatch,
    JournalUnavailable,
    PostgresJournal,
)

psycopg = pytest.importorskip("psycopg")

from pg_server import PASSWORD  # noqa: E402


def _messages(n: int) -> list[tuple[int, Message]]:
    return [(i, Message(f"7900000000{i % 10}", f"text {i}", "S", f"c{i}",
                        {"priority": "high"} if i == 2 else None)) for i in range(1, n + 1)]


@pytest.fixture
def journal(pg_journal_url: str) -> Iterator[PostgresJournal]:
    j = PostgresJournal(pg_journal_url)
    j.bind({"input_sha256": "abc"})
    j.load(_messages(10), batch=3)
    j.finish_load(10)
    yield j
    j.close()


def _sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """A statement on a connection of the test's own (not the journal's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, args or None)
        return cursor.fetchall() if cursor.description else []


# -- the SQLite journal's expectations -------------------------------------------------


def test_schema_and_load(journal: PostgresJournal, pg_journal_url: str) -> None:
    assert journal.loaded == 10 and journal.last_line == 10
    assert journal.counts()["pending"] == 10
    assert journal.by_line(2)["params"] == '{"priority":"high"}'  # type: ignore[index]
    assert journal.by_line(2)["key"] is None  # type: ignore[index]
    assert journal.integrity_check() == "ok"
    meta = journal.meta()
    assert meta["schema_version"] == "3" and len(meta["id_prefix"]) == 11
    assert meta["input:input_sha256"] == "abc"
    assert journal._conn is not None
    assert journal._conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    assert journal.by_line(11) is None


def test_state_machine(journal: PostgresJournal) -> None:
    lines, messages = journal.next_chunk(4)
    assert lines == [1, 2, 3, 4]
    assert messages[1] == Message("79000000002", "text 2", "S", "c2", {"priority": "high"})
    journal.mark_in_flight(lines)
    assert journal.counts()["in_flight"] == 4
    whole = SendFailure("error-auth", "c4", None, RequestRejected("error-auth"))
    counts = journal.record_results(lines, [
        SendResult("ok", "c1", "1001"),
        SendResult("error-address-format", "c2"),
        SendResult("unknown", "c3"),
        whole,
    ])
    assert counts == {"accepted": 1, "rejected": 1, "unknown": 1, "not_sent": 1}
    row = journal.by_line(1)
    assert row is not None and (row["state"], row["provider_id"]) == ("accepted", "1001")
    # not_sent comes back; accepted, rejected and unknown do not.
    assert journal.next_chunk(100)[0] == [4, 5, 6, 7, 8, 9, 10]
    summary = journal.summary()
    assert summary["rejected_by_code"] == {"error-address-format": 1}
    assert summary["messages"] == 10 and summary["loaded"] == 10
    rows = list(journal.rows(states=["accepted", "rejected"]))
    assert [r[0] for r in rows] == [1, 2] and rows[0][6] == "accepted"


def test_recovery_in_flight_becomes_unknown(pg_journal_url: str, journal: PostgresJournal) -> None:
    with PostgresJournal(pg_journal_url, lease=3) as crashed:
        lines, _ = crashed.next_chunk(3)
        crashed.mark_in_flight(lines)
        # The "crash": its connection goes with nothing recorded (close keeps the
        # in-flight claims: they lapse with the lease).
    with PostgresJournal(pg_journal_url) as again:
        assert again.bind({"input_sha256": "abc"}) is False
        # Its lease has not lapsed yet: the rows are left alone, and not sendable.
        assert again.recover() == {"in_flight_to_unknown": 0, "unknown_to_pending": 0}
        assert again.next_chunk(100)[0] == [4, 5, 6, 7, 8, 9, 10]
        assert again.counts()["in_flight"] == 3
        deadline = time.monotonic() + 30
        while (recovered := again.recover())["in_flight_to_unknown"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert recovered == {"in_flight_to_unknown": 3, "unknown_to_pending": 0}
        assert again.by_line(1)["state"] == "unknown"  # type: ignore[index]
        assert again.next_chunk(100)[0] == [4, 5, 6, 7, 8, 9, 10]
        assert again.recover(resend_unknown=True)["unknown_to_pending"] == 3
        assert again.next_chunk(100)[0] == list(range(1, 11))


_KILLED_SENDER = """
import sys, time
from hpgfast.journal import PostgresJournal
journal = PostgresJournal(sys.argv[1], lease=600)
lines, _ = journal.next_chunk(5)
journal.mark_in_flight(lines[:3])
print("claimed", flush=True)
time.sleep(600)
"""


def test_a_killed_sender_on_this_machine_holds_nothing(
    pg_journal_url: str, journal: PostgresJournal
) -> None:
    # What the SQLite journal knows from its lock, a sender knows of another one on
    # the same machine from its process: once that is gone (SIGKILL), its claims
    # and its rows in flight are settled at once, not after its 600 s lease. (A
    # sender whose process lives keeps them until its lease lapses: see above.)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SENDER, pg_journal_url],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "claimed\n"
        assert journal.next_chunk(100)[0] == [6, 7, 8, 9, 10]  # its claims are its own
        journal.release()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    assert journal.recover() == {"in_flight_to_unknown": 3, "unknown_to_pending": 0}
    assert [journal.by_line(i)["state"] for i in (1, 2, 3)] == ["unknown"] * 3  # type: ignore[index]
    assert journal.next_chunk(100)[0] == [4, 5, 6, 7, 8, 9, 10]


def test_changed_input_is_refused_once_anything_went_out(journal: PostgresJournal) -> None:
    assert journal.bind({"input_sha256": "other"}) is True  # nothing sent: rebinds
    assert journal.last_line == 0 and journal.loaded is None
    assert journal.cost_totals()["messages"] == 0
    journal.load(_messages(3))
    lines, _ = journal.next_chunk(1)
    journal.mark_in_flight(lines)
    with pytest.raises(JournalMismatch, match="input_sha256: journal has 'other', now 'new'"):
        journal.bind({"input_sha256": "new"})
    assert journal.last_line == 3


def test_restart_load_only_while_nothing_was_sent(journal: PostgresJournal) -> None:
    journal.restart_load()
    assert journal.last_line == 0 and journal.loaded is None
    journal.load(_messages(3))
    journal.mark_in_flight(journal.next_chunk(1)[0])
    journal.restart_load()
    assert journal.last_line == 3


def test_invalid_and_settle(journal: PostgresJournal) -> None:
    lines, _ = journal.next_chunk(3)
    journal.mark_in_flight(lines)
    journal.record_invalid(2, "message 1: field 'text': must not be empty")
    assert journal.settle_in_flight(lines, "pending", code=None, reason=None) == 2
    assert journal.next_chunk(3)[0] == [1, 3, 4]
    assert journal.counts()["invalid"] == 1


def test_statuses_and_history(journal: PostgresJournal) -> None:
    journal.mark_in_flight(journal.next_chunk(2)[0])
    journal.record_results([1, 2], [SendResult("ok", "c1", "1001"), SendResult("ok", "c2", "1002")])
    assert journal.open_provider_ids() == ["1001", "1002"]
    t = datetime(2026, 1, 1, 12, 0, 0)
    assert journal.record_statuses([StatusResult("ok", "1001", "sent", t, None)]) == 1
    assert journal.record_statuses([StatusResult("ok", "1001", "sent", t, None)]) == 0
    assert journal.record_statuses([
        StatusResult("ok", "1001", "undelivered", t, "absent"),
        StatusResult("error-provider-id-unknown", "1002"),
        StatusResult("error-system", "1002"),  # a failed query: not recorded
    ]) == 2
    assert journal.open_provider_ids() == []
    assert [(h[0], h[2], h[4]) for h in journal.history()] == [
        (1, "sent", None), (1, "undelivered", "absent"), (2, "error-provider-id-unknown", None)
    ]
    assert [h[5] for h in journal.history(1)] == ["poll", "poll"]
    assert journal.summary()["statuses"] == {"error-provider-id-unknown": 1, "undelivered": 1}
    assert journal.summary()["status_changes"] == 3


def test_final_statuses_in_any_case_and_accepted_without_provider_id(
    journal: PostgresJournal,
) -> None:
    lines, _ = journal.next_chunk(3)
    journal.mark_in_flight(lines)
    journal.record_results(
        lines,
        [SendResult("ok", "c1", "1001"), SendResult("ok", "c2", "1002"), SendResult("ok", "c3")],
    )
    assert journal.by_line(3)["state"] == "accepted"  # type: ignore[index]
    assert journal.open_provider_ids() == ["1001", "1002"]
    when = datetime(2012, 3, 15, 19, 53, 14)
    journal.record_statuses(
        [
            StatusResult("ok", "1001", "DELIVERED", when, None),
            StatusResult("ok", "1002", "vp_expired", when, None),
        ]
    )
    assert journal.open_provider_ids() == []
    # A final status is never replaced, whatever its case.
    assert journal.record_statuses([StatusResult("ok", "1001", "sent", when, None)]) == 0


def test_final_statuses_are_a_setting(pg_journal_url: str) -> None:
    with PostgresJournal(pg_journal_url, final_statuses={"delivered"}) as j:
        j.load(_messages(2), batch=10)
        lines, _ = j.next_chunk(2)
        j.mark_in_flight(lines)
        j.record_results(lines, [SendResult("ok", "c1", "1001"), SendResult("ok", "c2", "1002")])
        when = datetime(2012, 3, 15, 19, 53, 14)
        j.record_statuses(
            [
                StatusResult("ok", "1001", "Delivered", when, None),
                StatusResult("ok", "1002", "expired", when, None),
            ]
        )
        assert j.open_provider_ids() == ["1002"]
    with pytest.raises(ValueError, match="not a status name"):
        PostgresJournal(pg_journal_url, final_statuses={"x') OR 1=1 --"})


def test_every_row_keeps_its_segment_count_past_one_load_batch(pg_journal_url: str) -> None:
    n = 25_001
    with PostgresJournal(pg_journal_url) as journal:
        journal.bind({"input_sha256": "costs"})
        journal.load((i, Message(f"7903{i:07d}", "я" * 71, "ACME")) for i in range(1, n + 1))
        journal.finish_load(n)
        totals = journal.cost_totals()
        assert (totals["messages"], totals["segments"]) == (n, 2 * n)
        assert totals["by_state"]["pending"] == {"messages": n, "segments": 2 * n}
        costs = journal.costs_between(1, n)
        assert sorted(costs) == list(range(1, n + 1))
        assert set(costs.values()) == {(2, "ucs2", False)}
        assert sum(1 for _ in journal.rows()) == n
        assert journal.counts()["pending"] == n


def test_made_ids_and_a_resend_keeps_its_client_id(journal: PostgresJournal) -> None:
    # Lines 1-3 without a clientId of their own: the journal makes one from the line.
    journal.add([Message("79001", "a"), Message("79002", "b")])
    assert sorted(journal.made_ids_between(1, 20)) == [11, 12]
    lines, messages = journal.next_chunk(20, after=10)
    assert lines == [11, 12] and messages[0].client_id == journal.made_id(11)
    journal.mark_in_flight(lines)
    journal.settle_in_flight(lines, "unknown", code="unknown", reason="cut")
    assert journal.recover(resend_unknown=True)["unknown_to_pending"] == 2
    again, resent = journal.next_chunk(20, after=10)
    assert again == [11, 12] and [m.client_id for m in resent] == [m.client_id for m in messages]
    journal.mark_in_flight(again)
    counts = journal.record_results(again, [
        SendResult("error-id-not-unique", journal.made_id(11)),  # it had it: accepted earlier
        SendResult("error-id-not-unique", "someone-else's"),
    ])
    assert counts == {"accepted_earlier": 1, "rejected": 1}
    assert journal.by_line(11)["state"] == "accepted_earlier"  # type: ignore[index]
    # The same results written again change nothing and count the same.
    assert journal.record_results(again, [
        SendResult("error-id-not-unique", journal.made_id(11)),
        SendResult("error-id-not-unique", "someone-else's"),
    ]) == {"accepted_earlier": 1, "rejected": 1}


def test_add_with_keys_is_idempotent(pg_journal_url: str) -> None:
    with PostgresJournal(pg_journal_url) as j:
        assert j.add([("order-1", Message("79001", "a")), ("order-2", Message("79002", "b")),
                      ("order-1", Message("79001", "again")), Message("79003", "c")]) == 3
        assert j.add([("order-2", Message("79002", "b")), ("order-3", Message("79004", "d"))]) == 1
        row = j.by_key("order-3")
        assert row is not None and (row["line"], row["text"], row["key"]) == (4, "d", "order-3")
        assert j.by_key("order-1")["text"] == "a"  # type: ignore[index]
        assert j.by_key("nope") is None
        assert j.last_line == 4 and j.counts()["pending"] == 4
        assert j.cost_totals()["messages"] == 4
        # One transaction per 10,000: a second batch sees the keys of the first.
        items = [(f"k{i % 12_000}", Message("79005", f"m{i}")) for i in range(15_000)]
        assert j.add(items) == 12_000
        assert j.last_line == 12_004
        with pytest.raises(TypeError, match="Message or"):
            j.add([(1, Message("79", "x"))])  # type: ignore[list-item]


def test_not_a_journal(pg_journal_url: str) -> None:
    # create=False: a database without the journal's tables is refused, left as it was.
    with pytest.raises(JournalError, match="no journal at"):
        PostgresJournal(pg_journal_url, create=False)
    assert _sql(pg_journal_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [
        (0,)
    ]
    _sql(pg_journal_url, "CREATE TABLE messages (id int)")
    with pytest.raises(JournalError, match=r"not an hpgfast journal.*messages"):
        PostgresJournal(pg_journal_url)


def test_a_newer_schema_is_refused(pg_journal_url: str) -> None:
    PostgresJournal(pg_journal_url).close()
    _sql(pg_journal_url, "UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match="has schema 4, expected 3: a newer hpgfast"):
        PostgresJournal(pg_journal_url)


def test_journals_in_two_schemas_of_one_database(pg_journal_url: str) -> None:
    _sql(pg_journal_url, "CREATE SCHEMA a")
    _sql(pg_journal_url, "CREATE SCHEMA b")
    with PostgresJournal(pg_journal_url + "?options=-csearch_path%3Da") as a, \
            PostgresJournal(pg_journal_url + "?options=-csearch_path%3Db") as b:
        a.load(_messages(3))
        b.load(_messages(5))
        assert (a.last_line, b.last_line) == (3, 5)
        assert a.made_id(1) != b.made_id(1)


def test_lease_is_validated(pg_journal_url: str) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lease"):
            PostgresJournal(pg_journal_url, lease=bad)


def test_the_lease_outlasts_the_requests_of_the_client_a_run_sends_with(
    pg_journal_url: str,
) -> None:
    # A sender lets a request leave only with more than request_deadline +
    # connect_timeout of its lease left. A lease not given is made to fit the
    # client of each run (a default Client's requests may take 300 + 10 s), so a
    # journal and a client opened with their defaults send; a lease given is kept.
    from hpgfast import Client
    from hpgfast.emulator import Emulator

    with Emulator(speed=None) as emu:
        with PostgresJournal(pg_journal_url) as journal, \
                Client(emu.url, "CLIENT", "P@ssw0rd") as client:
            journal.add(m for _, m in _messages(5))
            summary = journal.send(client)
            assert summary.error is None and summary.states["accepted"] == 5
            needed = client.request_deadline + client.connect_timeout
            assert journal.lease > needed
            assert journal.lease_deadline() - time.monotonic() > needed
        with PostgresJournal(pg_journal_url, lease=45) as journal, \
                Client(emu.url, "CLIENT", "P@ssw0rd", timeout=2) as client:
            journal.add(m for _, m in _messages(5))
            assert journal.send(client).states["accepted"] == 5
            assert journal.lease == 45
        assert len(emu.ledger) == 10


_WITHOUT_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # as if the postgres extra were not installed
import hpgfast.journal
assert "psycopg" not in [m for m in sys.modules if sys.modules[m] is not None]
try:
    hpgfast.journal.PostgresJournal("postgresql://u:s3cret@127.0.0.1:1/db")
except hpgfast.journal.JournalError as exc:
    print(exc)
"""


def test_without_psycopg_the_error_names_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PSYCOPG], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'hpgfast[postgres]'" in done.stdout and "s3cret" not in done.stdout


# -- a fleet: claims, leases, lapses -----------------------------------------------------


def test_two_senders_claim_disjoint_rows(pg_journal_url: str, journal: PostgresJournal) -> None:
    with PostgresJournal(pg_journal_url) as other:
        mine, _ = journal.next_chunk(4)
        theirs, _ = other.next_chunk(4)
        assert (mine, theirs) == ([1, 2, 3, 4], [5, 6, 7, 8])
        # Claimed rows stay pending, and another sender cannot mark them.
        assert journal.counts()["pending"] == 10
        with pytest.raises(JournalClaimLost) as lost:
            other.mark_in_flight([5, 6, 1])
        assert lost.value.lines == [1] and "lines 1" in str(lost.value)
        assert journal.counts()["in_flight"] == 0  # all or none: 5 and 6 not marked
        other.mark_in_flight([5, 6])
        journal.mark_in_flight(mine)
        assert journal.counts()["in_flight"] == 6
        # What one sender gave back, the other claims at once.
        assert other.release() == 2
        assert journal.next_chunk(10, after=4)[0] == [7, 8, 9, 10]


def test_many_senders_drain_a_journal_each_row_once(pg_journal_url: str) -> None:
    n = 3_000
    with PostgresJournal(pg_journal_url) as loader:
        loader.load((i, Message("7900", f"m{i}")) for i in range(1, n + 1))
    claimed: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def sender() -> None:
        got: list[int] = []
        try:
            with PostgresJournal(pg_journal_url) as j:
                start.wait()
                after = 0
                while True:
                    lines, messages = j.next_chunk(20, after=after)
                    if not lines:
                        break
                    j.mark_in_flight(lines)
                    j.advance((), [(lines, [SendResult("ok", m.client_id, f"p{line}")
                                            for line, m in zip(lines, messages)])])
                    got += lines
                    after = lines[-1]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        claimed.append(got)

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    every = [line for got in claimed for line in got]
    assert sorted(every) == list(range(1, n + 1))  # each row once, none twice
    assert sum(1 for got in claimed if got) >= 2  # they shared the work
    with PostgresJournal(pg_journal_url) as j:
        assert j.counts()["accepted"] == n


def test_a_lapsed_claim_becomes_unknown_while_the_other_sender_goes_on(
    pg_journal_url: str, journal: PostgresJournal
) -> None:
    with PostgresJournal(pg_journal_url, lease=1) as stalled:
        lines, _ = stalled.next_chunk(2)
        stalled.mark_in_flight(lines)
        mine, _ = journal.next_chunk(2)
        journal.mark_in_flight(mine)
        time.sleep(1.2)  # the stalled sender's lease lapses; this one's does not
        assert journal.recover() == {"in_flight_to_unknown": 2, "unknown_to_pending": 0}
        assert [journal.by_line(x)["state"] for x in (1, 2, 3, 4)] == [  # type: ignore[index]
            "unknown", "unknown", "in_flight", "in_flight"
        ]
        # Never pending: no sender claims them.
        assert journal.next_chunk(10)[0] == [5, 6, 7, 8, 9, 10]
        journal.record_results(mine, [SendResult("ok", "c3", "3"), SendResult("ok", "c4", "4")])
        # The stalled sender's request ended after all: its results are written
        # over the unknown its lapse left.
        assert stalled.record_results(
            lines, [SendResult("ok", "c1", "1"), SendResult("error-address-format", "c2")]
        ) == {"accepted": 1, "rejected": 1}
        assert [journal.by_line(x)["state"] for x in (1, 2)] == [  # type: ignore[index]
            "accepted", "rejected"
        ]


def test_advance_raises_claim_lost_after_a_lapse(
    pg_journal_url: str, journal: PostgresJournal
) -> None:
    with PostgresJournal(pg_journal_url, lease=1) as stalled:
        first, _ = stalled.next_chunk(2)
        stalled.mark_in_flight(first)
        rest, _ = stalled.next_chunk(4, after=2)
        assert rest == [3, 4, 5, 6]
        time.sleep(1.2)
        # Another sender finds the lapsed pending claims claimable.
        assert journal.next_chunk(2, after=2)[0] == [3, 4]
        with pytest.raises(JournalClaimLost) as lost:
            stalled.advance(rest, [(first, [SendResult("ok", "c1", "1"), SendResult("ok", "c2")])])
        assert lost.value.lines == [3, 4]
        counts = stalled.counts()
        # Nothing of ``rest`` was marked; the finished results were committed.
        assert (counts["in_flight"], counts["accepted"]) == (0, 2)
        # The lease was renewed in that transaction: 5 and 6 are still its own.
        stalled.mark_in_flight([5, 6])
        assert stalled.counts()["in_flight"] == 2


def test_lease_deadline_counts_from_before_the_transaction(
    pg_journal_url: str, journal: PostgresJournal
) -> None:
    assert journal.lease_deadline() == float("-inf")
    with PostgresJournal(pg_journal_url, lease=2) as short:
        before = time.monotonic()
        short.next_chunk(1)
        left = short.lease_deadline() - time.monotonic()
        assert 0 < left <= 2
        assert short.lease_deadline() <= before + 2 + 0.01
        # A commit that stalls (the sender's row locked by someone else) only
        # shortens what is left after it.
        assert short._conn is not None
        with psycopg.connect(pg_journal_url) as blocker:
            blocker.execute("SELECT 1 FROM senders WHERE id = %s FOR UPDATE", (short.sender_id,))
            threading.Timer(0.3, blocker.commit).start()
            started = time.monotonic()
            short.advance((), ())
            stalled = time.monotonic() - started
        assert stalled >= 0.25
        assert short.lease_deadline() - time.monotonic() <= 2 - 0.25
    assert journal.next_chunk(1)[0] == [1] and journal.lease_deadline() > time.monotonic() + 50


def test_results_never_overwrite_a_final_state(journal: PostgresJournal) -> None:
    lines, _ = journal.next_chunk(3)
    journal.mark_in_flight(lines)
    journal.record_results(lines, [SendResult("ok", "c1", "1001"),
                                   SendResult("error-address-format", "c2"),
                                   SendResult("not-sent", "c3")])
    journal.record_results(lines, [SendResult("error-system", "c1"), SendResult("ok", "c2", "9"),
                                   SendResult("ok", "c3", "9")])
    journal.record_invalid(1, "late")
    states = [(r["state"], r["provider_id"]) for r in map(journal.by_line, lines)]  # type: ignore[index]
    # not_sent is not final, but it is not in flight either: a result needs a mark.
    assert states == [("accepted", "1001"), ("rejected", None), ("not_sent", None)]
    # A row never marked gets no result.
    journal.record_results([5], [SendResult("ok", "c5", "5")])
    assert journal.by_line(5)["state"] == "pending"  # type: ignore[index]


# -- loading ---------------------------------------------------------------------------


def test_two_senders_starting_at_once_load_once(pg_journal_url: str) -> None:
    n = 25_000
    start = threading.Barrier(2)
    loaded: list[int] = []
    errors: list[BaseException] = []

    def slow_rows() -> Iterator[tuple[int, Message]]:
        for i in range(1, n + 1):
            if i % 10_000 == 0:
                time.sleep(0.2)  # the other sender arrives while this one loads
            yield i, Message("7900", f"m{i}")

    def sender() -> None:
        try:
            start.wait()
            with PostgresJournal(pg_journal_url) as j, j.loading():
                if j.loaded is None:
                    loaded.append(j.load(slow_rows()))
                    j.bind({"input_sha256": "x"})
                    j.finish_load(n)
                else:
                    loaded.append(0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(loaded) == [0, n]
    with PostgresJournal(pg_journal_url) as j:
        assert (j.loaded, j.last_line, j.counts()["pending"]) == (n, n, n)


def test_load_input_loads_once_for_a_fleet(pg_journal_url: str) -> None:
    # Senders that start together on one file (the command line's load_input):
    # the first loads it and binds it, the others wait, then find it loaded and
    # read none of it.
    n = 25_000
    start = threading.Barrier(3)
    read: list[int] = []
    binds: list[int] = []
    totals: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def slow_rows() -> Iterator[tuple[int, Message]]:
        count = 0
        try:
            for i in range(1, n + 1):
                if i % 10_000 == 0:
                    time.sleep(0.2)  # the others arrive while this one loads
                count += 1
                yield i, Message("7900", f"m{i}")
        finally:
            with lock:
                read.append(count)

    def fingerprint() -> dict[str, str]:
        with lock:
            binds.append(1)
        return {"input_sha256": "x"}

    def sender() -> None:
        try:
            with PostgresJournal(pg_journal_url) as j:
                start.wait()
                totals.append(j.load_input(slow_rows(), bind=fingerprint))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert totals == [n, n, n] and binds == [1]
    # The others' inputs were never read (a generator not started reports nothing).
    assert read == [n]
    with PostgresJournal(pg_journal_url) as j:
        assert (j.loaded, j.last_line, j.counts()["pending"]) == (n, n, n)


_STALLED_LOADER = """
import sys, time
from hpgfast import Message
from hpgfast.journal import PostgresJournal

def rows():
    for i in range(1, 30_001):
        if i == 25_000:  # two batches committed, the third half read: stalls
            print("stalled", flush=True)
            time.sleep(600)
        yield i, Message("7900", "m%d" % i)

with PostgresJournal(sys.argv[1]) as j:
    j.load_input(rows())
"""


def test_load_input_waiting_takes_over_from_a_killed_loader(pg_journal_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _STALLED_LOADER, pg_journal_url], stdout=subprocess.PIPE
    ) as loader:
        assert loader.stdout is not None
        assert loader.stdout.readline() == b"stalled\n"
        totals: list[int] = []
        with PostgresJournal(pg_journal_url) as j:
            waiting = threading.Thread(target=lambda: totals.append(
                j.load_input((i, Message("7900", f"m{i}")) for i in range(1, 30_001))
            ))
            waiting.start()
            waiting.join(1.0)
            assert waiting.is_alive() and j.loaded is None  # it waits for the loader
            loader.kill()
            waiting.join(60)
            assert totals == [30_000]
            assert (j.loaded, j.last_line) == (30_000, 30_000)
            assert j.counts()["pending"] == 30_000 and j.integrity_check() == "ok"


_KILLED_LOADER = """
import os, signal, sys
from hpgfast import Message
from hpgfast.journal import PostgresJournal

def rows():
    for i in range(1, 30_001):
        if i == 25_000:  # two batches committed, the third half read
            os.kill(os.getpid(), signal.SIGKILL)
        yield i, Message("7900", "m%d" % i)

j = PostgresJournal(sys.argv[1])
with j.loading():
    print("loading", flush=True)
    j.load(rows())
"""


def test_a_loader_that_dies_mid_load_is_resumed(pg_journal_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_LOADER, pg_journal_url], stdout=subprocess.PIPE
    ) as loader:
        assert loader.stdout is not None
        assert loader.stdout.readline() == b"loading\n"
        _resume(pg_journal_url, loader)


def _resume(pg_journal_url: str, loader: subprocess.Popen[bytes]) -> None:
    with PostgresJournal(pg_journal_url) as j:
        # Waits for the loader's lock: its connection ends with it.
        with j.loading():
            assert loader.poll() == -signal.SIGKILL
            assert j.loaded is None and j.last_line == 20_000
            assert j.load((i, Message("7900", f"m{i}")) for i in range(1, 30_001)) == 10_000
            j.finish_load(30_000)
        assert j.last_line == 30_000 and j.counts()["pending"] == 30_000
        assert j.integrity_check() == "ok"


# -- the server's errors, and the password ---------------------------------------------


def test_the_password_is_never_shown(
    pg_server: Any, pg_journal_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, psycopg's too
    with PostgresJournal(pg_journal_url) as j:
        assert PASSWORD not in repr(j) and PASSWORD not in j.path
        assert j.path.startswith("postgresql://hpgfast:***@127.0.0.1:")
        j.load(_messages(3))
    wrong = pg_journal_url.replace(PASSWORD, PASSWORD + "x")
    with pytest.raises(JournalAccessDenied) as denied:
        PostgresJournal(wrong)
    assert "password authentication failed" in str(denied.value)
    nowhere = f"postgresql://hpgfast:{PASSWORD}@127.0.0.1:1/db"
    with pytest.raises(JournalUnavailable) as unreachable:
        PostgresJournal(nowhere)
    assert not isinstance(unreachable.value, JournalAccessDenied)
    no_database = pg_server.url("no_such_database")
    with pytest.raises(JournalAccessDenied, match="does not exist"):
        PostgresJournal(no_database)
    # A password in a query parameter (libpq takes it there too) is masked as well.
    with pytest.raises(JournalUnavailable) as in_query:
        PostgresJournal(f"postgresql://hpgfast@127.0.0.1:1/db?password={PASSWORD}")
    refused: list[BaseException] = [denied.value, unreachable.value, in_query.value]
    # URLs libpq cannot read: it echoes them, or the piece it took for a host.
    for bad in (f"postgresql://hpgfast:{PASSWORD}@[::1/db",
                f"postgresql://hpgfast:{PASSWORD}@127.0.0.1:1/db?bogus=1",
                f"postgresql://hpgfast:{PASSWORD}%zz@127.0.0.1:1/db",
                "postgresql://hpgfast:pg-secret@5e1f@127.0.0.1:1/db"):
        with pytest.raises(JournalError) as unreadable:
            PostgresJournal(bad, connect_timeout=2)
        refused.append(unreadable.value)
    assert "5e1f@127" not in str(refused[-1])
    for exc in refused:
        assert PASSWORD not in str(exc) and PASSWORD not in repr(exc)
        assert PASSWORD not in repr(exc.args)
    assert caplog.records
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


def _pieces(secret: str) -> list[str]:
    """The password and every piece of it a parser may cut off (what must never show)."""
    pieces = [secret, *(p for p in re.split(r"[@:/?#&=]", secret) if len(p) >= 3)]
    if "@" in secret:  # libpq takes what follows the first '@' for the host
        pieces.append(secret.split("@", 1)[1] + "@")
    return pieces


def _shown(exc: BaseException) -> str:
    """All an error shows: its text, repr, arguments, causes and formatted traceback."""
    texts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def _mistakes(port: int) -> list[tuple[str, str, bool]]:
    """(URL, its password, whether no postgresql:// URL at all): a user's mistakes."""
    at = f"@127.0.0.1:{port}/db"
    typos = [f"postgres:/hpgfast:{PASSWORD}{at}", f"postgresql:hpgfast:{PASSWORD}{at}",
             f"postgresql//hpgfast:{PASSWORD}{at}", f"postgres/hpgfast:{PASSWORD}{at}"]
    unencoded = ["Qx7#Wv3", "Qx7?Wv3", "Qx7/Wv3", "Sekr1t@PW", "Sekr1t@P#W/x?y"]
    return [(url, PASSWORD, True) for url in typos] + [
        (f"postgresql://hpgfast:{pw}{at}", pw, False) for pw in unencoded]


def test_a_mistyped_url_never_shows_its_password(
    pg_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpgfast.journal import open_journal
    from hpgfast.journal._pg_url import masked_url

    monkeypatch.chdir(tmp_path)
    for url, password, typo in _mistakes(pg_server.port):
        masked = masked_url(url)
        assert not [p for p in _pieces(password) if p in masked], (url, masked)
        with pytest.raises(JournalError) as caught:
            open_journal(url, connect_timeout=2)
        shown = _shown(caught.value)
        assert not [p for p in _pieces(password) if p in shown], (url, shown)
        if typo:
            # Not a postgresql:// URL at all: refused before anything reads it,
            # saying which form is expected, and never taken for a file.
            assert type(caught.value) is JournalError, url
            assert "postgresql://USER@HOST:PORT/DBNAME" in str(caught.value), url
    assert list(tmp_path.iterdir()) == []


def test_a_url_libpq_does_not_take_is_a_configuration_error(
    pg_server: Any, pg_journal_url: str
) -> None:
    """A wrong setting is no unreachable server: running again never helps."""
    base = f"postgresql://hpgfast:{PASSWORD}@127.0.0.1:{pg_server.port}/db"
    for url in (base + "?sslmode=bogus", base.replace(f":{pg_server.port}/", ":99999/"),
                base + "?target_session_attrs=zz"):
        with pytest.raises(JournalError) as caught:
            PostgresJournal(url, connect_timeout=2)
        assert type(caught.value) is JournalError, (url, repr(caught.value))
        assert "invalid" in str(caught.value)
        assert PASSWORD not in _shown(caught.value)


def test_libpqs_lines_read_as_sentences() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(JournalUnavailable) as caught:
        PostgresJournal(f"postgresql://hpgfast:{PASSWORD}@127.0.0.1:{port}/db")
    assert "Connection refused. Is the server running" in str(caught.value)
    assert "connections?." not in str(caught.value)
    assert PASSWORD not in _shown(caught.value)


def test_a_password_from_pgpassword_or_pgpass(
    pg_server: Any, pg_journal_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bare = pg_journal_url.replace(f":{PASSWORD}@", "@")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(JournalAccessDenied):
        PostgresJournal(bare)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with PostgresJournal(bare) as j:
        assert j.path == bare
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:hpgfast:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with PostgresJournal(bare) as j:
        assert j.last_line == 0


def test_a_reader_with_a_read_only_role(pg_journal_url: str, journal: PostgresJournal) -> None:
    role = "reader_" + uuid.uuid4().hex[:8]
    database = pg_journal_url.rsplit("/", 1)[1]
    _sql(pg_journal_url, f"CREATE ROLE {role} LOGIN PASSWORD 'r-{PASSWORD}'")
    _sql(pg_journal_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    url = pg_journal_url.replace(f"hpgfast:{PASSWORD}@", f"{role}:r-{PASSWORD}@")
    with PostgresJournal(url, create=False) as reader:  # reads, and writes nothing
        assert reader.counts()["pending"] == 10 and reader.loaded == 10
        assert reader.made_id(1) == journal.made_id(1)
        # A write it has no right to is refused as such, the password masked.
        with pytest.raises(JournalAccessDenied, match="permission denied") as denied:
            reader.next_chunk(1)
        assert PASSWORD not in str(denied.value) and database in str(denied.value)
    assert journal.next_chunk(10)[0] == list(range(1, 11))


def test_a_server_that_goes_away_mid_run(pg_own_server: Any) -> None:
    url = pg_own_server.url(pg_own_server.new_database())
    with PostgresJournal(url) as j:
        j.load(_messages(10))
        lines, _ = j.next_chunk(4)
        pg_own_server.stop()
        with pytest.raises(JournalUnavailable) as gone:
            j.mark_in_flight(lines)
        assert PASSWORD not in str(gone.value)
        with pytest.raises(JournalUnavailable):
            j.counts()
    pg_own_server.start()
    with PostgresJournal(url) as again:
        # Nothing was marked that was not committed.
        assert again.counts()["in_flight"] == 0 and again.counts()["pending"] == 10


def test_a_server_that_goes_away_mid_load(pg_own_server: Any) -> None:
    url = pg_own_server.url(pg_own_server.new_database())

    def rows() -> Iterator[tuple[int, Message]]:
        for i in range(1, 30_001):
            if i == 15_000:  # one batch committed, the second half read
                pg_own_server.stop()
            yield i, Message("7900", f"m{i}")

    with PostgresJournal(url) as j, pytest.raises(JournalUnavailable):
        j.load(rows())
    pg_own_server.start()
    with PostgresJournal(url) as again:
        assert again.last_line == 10_000 and again.loaded is None
        assert again.load((i, Message("7900", f"m{i}")) for i in range(1, 30_001)) == 20_000
        assert again.counts()["pending"] == 30_000 and again.integrity_check() == "ok"


class _Trace:
    """libpq's own record of every message the client sends the server (PQtrace)."""

    def __init__(self, journal: PostgresJournal) -> None:
        assert journal._conn is not None
        self.pgconn = journal._conn.pgconn
        self.file = tempfile.TemporaryFile()
        self.sent: list[list[str]] = []

    def __enter__(self) -> _Trace:
        from psycopg import pq

        self.pgconn.trace(self.file.fileno())
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pgconn.untrace()
        self.file.seek(0)
        lines = self.file.read().decode(errors="replace").splitlines()
        self.file.close()
        self.sent = [f for f in (line.split("\t") for line in lines) if f[0] == "F"]

    def count(self, *kinds: str) -> int:
        return sum(1 for f in self.sent if len(f) > 2 and f[2] in kinds)


def test_no_round_trip_per_message(pg_journal_url: str) -> None:
    n = 1_000
    with PostgresJournal(pg_journal_url) as j:
        with _Trace(j) as load:
            j.load((i, Message("7900", f"m{i}")) for i in range(1, 20 * n + 1))
        # Two transactions of 10,000 rows, each a few statements and two COPYs.
        assert load.count("Query", "Parse") <= 20, load.sent
        assert load.count("CopyDone") == 4  # messages and costs, twice
        lines, messages = j.next_chunk(n)
        j.mark_in_flight(lines)
        ahead, _ = j.next_chunk(n, after=lines[-1])
        results = [SendResult("ok", m.client_id, f"p{i}") for i, m in enumerate(messages)]
        with _Trace(j) as advance:
            counts = j.advance(ahead, [(lines, results)])
        assert counts == {"accepted": n}
        assert j.counts()["accepted"] == n and j.counts()["in_flight"] == n
        # BEGIN, the lease, the results, the marks, COMMIT.
        assert advance.count("Query", "Parse") <= 5, advance.sent
        when = datetime(2026, 1, 1, 12, 0, 0)
        with _Trace(j) as statuses:
            changed = j.record_statuses(
                StatusResult("ok", f"p{i}", "delivered", when, None) for i in range(n)
            )
        assert changed == n
        # One statement per status, pipelined: the client waits for the server a
        # few times, not once per status.
        assert statuses.count("Sync") <= 5, statuses.count("Sync")


# -- the same answers as the SQLite journal ----------------------------------------------


def _one_run(journal: Any) -> dict[str, Any]:
    """The same calls on either engine; what every reading says after each step."""
    seen: dict[str, Any] = {}
    journal.bind({"input_sha256": "same"})
    # Lines 3, 6, 9 and 12 without a clientId of their own: the journal makes one.
    journal.load(
        [(i, m if i % 3 else Message(m[0], m[1], m[2], None, m[4])) for i, m in _messages(12)],
        batch=5, transliterate=True,
    )
    journal.finish_load(12)
    lines, messages = journal.next_chunk(6)
    seen["chunk"] = (lines, [(*m[:3], m[4]) for m in messages])
    journal.mark_in_flight(lines[:5])
    whole = SendFailure("error-auth", "c5", None, RequestRejected("error-auth"))
    seen["written"] = journal.advance(lines[5:6], [(lines[:5], [
        SendResult("ok", "c1", "1001"), SendResult("error-address-format", "c2"),
        SendResult("unknown", "c3"), SendResult("error-insufficient-balance", "c4"), whole,
    ])])
    journal.record_invalid(6, "bad text")
    seen["settled"] = journal.settle_in_flight([6], "pending", code=None, reason=None)
    t = datetime(2026, 1, 1, 12, 0, 0)
    seen["statuses"] = journal.record_statuses([
        StatusResult("ok", "1001", "sent", t, None),
        StatusResult("ok", "1001", "delivered", t, None),
    ])
    seen["recovered"] = journal.recover(resend_unknown=True)
    lines, _ = journal.next_chunk(3)
    seen["chunk2"] = lines
    journal.mark_in_flight(lines)
    seen["written2"] = journal.record_results(lines, [
        SendResult("error-id-not-unique", journal.made_id(lines[0])),
        SendResult("ok", "c4", "1004"), SendResult("ok", "c5", "1005"),
    ])
    seen["counts"] = journal.counts()
    summary = journal.summary()
    seen["summary"] = summary
    seen["rows"] = [row[:12] for row in journal.rows()]  # all but updated_at
    seen["by_line"] = {
        k: v for k, v in (journal.by_line(3) or {}).items()
        if k not in ("updated_at", "key", "client_id")
    }
    seen["costs"] = (journal.cost_totals(), journal.costs_between(1, 12))
    seen["made"] = sorted(journal.made_ids_between(1, 12))
    seen["open"] = journal.open_provider_ids()
    seen["history"] = [h[:6] for h in journal.history()]
    seen["loaded"] = (journal.loaded, journal.last_line)
    return seen


def test_the_same_answers_as_the_sqlite_journal(pg_journal_url: str, tmp_path: Any) -> None:
    from hpgfast.journal import Journal

    with Journal(tmp_path / "run.db", lock=True) as sqlite:
        expected = _one_run(sqlite)
    with PostgresJournal(pg_journal_url) as pg:
        got = _one_run(pg)
    assert expected["counts"]["accepted_earlier"] == 1 and expected["history"]
    for key in expected:
        assert got[key] == expected[key], key


def test_another_input_never_empties_rows_another_sender_claimed(pg_journal_url: str) -> None:
    # A sender that loaded and claimed, not yet marked: a second sender with another
    # input must not empty the journal under it (its marks would vanish with the
    # rows, and the new input's lines would reuse their clientIds).
    from hpgfast import Message
    from hpgfast.journal import JournalMismatch, open_journal

    with open_journal(pg_journal_url) as a, open_journal(pg_journal_url) as b:
        a.bind({"input": "one"})
        a.load((n, Message(f"7903123{n:04d}", f"t{n}", "S")) for n in range(1, 11))
        a.finish_load(10)
        lines, _ = a.next_chunk(5)
        assert lines == [1, 2, 3, 4, 5]
        with pytest.raises(JournalMismatch):
            b.bind({"input": "two"})
        a.advance(lines, [])
        assert a.counts()["in_flight"] == 5 and a.loaded == 10


def test_a_sender_takes_up_what_a_peer_that_died_during_its_pass_held(
    pg_journal_url: str,
) -> None:
    # The peer holds lines 1-50 when this sender passes them; it dies mid-pass. At
    # the end of its pass the sender looks once more from the start and sends them:
    # one run drains the journal, not "done" with 50 left pending.
    import signal
    import subprocess
    import sys
    import textwrap

    from hpgfast import Client, Message
    from hpgfast.core import RequestStarting, Subscriber
    from hpgfast.emulator import Emulator
    from hpgfast.journal import open_journal

    with open_journal(pg_journal_url) as journal:
        journal.add((f"k{n}", Message(f"7903123{n:04d}", f"t{n}", "S")) for n in range(100))
    peer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from hpgfast.journal import open_journal
            j = open_journal({pg_journal_url!r})
            print(len(j.next_chunk(50)[0]), flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "50"

        class KillThePeer(Subscriber):
            def request_starting(self, event: RequestStarting) -> None:
                if peer.poll() is None:
                    peer.send_signal(signal.SIGKILL)
                    peer.wait()

        with Emulator(speed=None, unique_client_ids=True) as emu, open_journal(
            pg_journal_url
        ) as journal, Client(emu.url, "CLIENT", emu.password, max_batch=10,
                             subscribers=[KillThePeer()]) as client:
            summary = journal.send(client, chunk=10)
            assert summary.states["accepted"] == 100, (summary.states, summary.error)
            assert journal.counts()["accepted"] == 100
            assert len(emu.ledger) == 100 and emu.repeated_client_ids == 0
    finally:
        if peer.poll() is None:
            peer.kill()
        peer.wait()
        if peer.stdout is not None:
            peer.stdout.close()


@pytest.mark.parametrize("damage", [
    "DELETE FROM meta WHERE key = 'id_prefix'",
    "UPDATE meta SET value = '' WHERE key = 'id_prefix'",
    "UPDATE meta SET value = 'x' WHERE key = 'loaded'",
])
def test_a_journal_whose_ids_or_counts_were_damaged_is_refused(
    pg_journal_url: str, damage: str
) -> None:
    # Without its prefix, its made clientIds would be other ids (a resend not refused
    # as a repeat), or another journal's: refused, never used with line-only ids.
    import psycopg

    from hpgfast import Message
    from hpgfast.journal import JournalError, open_journal

    with open_journal(pg_journal_url) as journal:
        journal.add([Message("79031234567", "t", "S")])
        journal.finish_load(1)
    with psycopg.connect(pg_journal_url, autocommit=True) as conn:
        conn.execute(damage)
    with pytest.raises(JournalError, match="damaged"):
        with open_journal(pg_journal_url) as journal:
            journal.loaded  # noqa: B018 - the count is read when asked for


def test_a_password_parameter_with_an_encoded_name_is_masked(pg_server: Any) -> None:
    # libpq decodes the names of a URL's parameters: ``%70assword`` is ``password``.
    from hpgfast.journal import JournalError, open_journal

    secret = "EncName-Secret-77"
    url = pg_server.url("postgres", password=None) + f"?%70assword={secret}"
    with pytest.raises(JournalError) as info:
        open_journal(url)
    assert secret not in str(info.value) + repr(info.value)
    good = pg_server.url("postgres", password=None) + "?%70assword=" + pg_server.url(
        "postgres").split(":")[2].split("@")[0]
    with open_journal(good) as journal:
        assert "%70assword=***" in journal.path and secret not in journal.path


def test_a_nul_in_a_text_is_refused_by_its_line(pg_journal_url: str) -> None:
    # PostgreSQL stores no NUL in a text: the load says which message, exit 2 in the
    # command line (a JournalError, not an unreachable server), nothing half-loaded.
    from hpgfast import Message
    from hpgfast.journal import JournalError, JournalUnavailable, open_journal

    with open_journal(pg_journal_url) as journal:
        rows = [(n, Message(f"7903123{n:04d}", "t\x00x" if n == 7 else "t", "S"))
                for n in range(1, 11)]
        with pytest.raises(JournalError, match="line 7 holds a NUL") as info:
            journal.load(rows)
        assert not isinstance(info.value, JournalUnavailable)
        assert journal.last_line == 0
