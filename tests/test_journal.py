"""The journal's state machine, fingerprints, recovery and status history."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from hpgfast import Message, RequestRejected, SendResult, StatusResult
from hpgfast.client import SendFailure
from hpgfast.journal import (
    Journal,
    JournalError,
    JournalLocked,
    JournalMismatch,
    file_fingerprint,
)


def _messages(n: int) -> list[tuple[int, Message]]:
    return [(i, Message(f"7900000000{i % 10}", f"text {i}", "S", f"c{i}",
                        {"priority": "high"} if i == 2 else None)) for i in range(1, n + 1)]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "run.db", lock=True)
    j.bind({"input_sha256": "abc"})
    j.load(_messages(10), batch=3)
    j.finish_load(10)
    yield j  # type: ignore[misc]
    j.close()


def test_wal_and_schema(journal: Journal) -> None:
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert journal.loaded == 10 and journal.last_line == 10
    assert journal.counts()["pending"] == 10
    assert journal.by_line(2)["params"] == '{"priority":"high"}'  # type: ignore[index]
    assert journal.integrity_check() == "ok"


def test_state_machine(journal: Journal) -> None:
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


def test_lines_marked_in_flight_read_in_flight_everywhere(journal: Journal) -> None:
    # The mark is a row for the span (7-9 first, then 2-5 around line 4's result);
    # every reading shows its lines in flight, and no chunk gives them again.
    journal.mark_in_flight([4])
    journal.record_results([4], [SendResult("not-sent", "c4")])
    journal.mark_in_flight([2, 3, 4, 5])
    journal.mark_in_flight([7, 8, 9])
    assert journal.counts()["in_flight"] == 7 and journal.counts()["pending"] == 3
    assert [r[0] for r in journal.rows(states=["in_flight"])] == [2, 3, 4, 5, 7, 8, 9]
    assert journal.by_line(3)["state"] == "in_flight"  # type: ignore[index]
    assert journal.by_line(6)["state"] == "pending"  # type: ignore[index]
    assert journal.cost_totals()["by_state"]["in_flight"]["messages"] == 7
    assert journal.next_chunk(100)[0] == [1, 6, 10]
    with pytest.raises(JournalError, match="rows would go in flight"):
        journal.mark_in_flight([8, 9])  # already in flight: refused, nothing written
    journal.record_results([2, 3], [SendResult("ok", "c2", "1002"), SendResult("ok", "c3", "1003")])
    assert journal.counts()["in_flight"] == 5 and journal.counts()["accepted"] == 2
    assert journal.settle_in_flight([7, 8, 9], "pending", code=None, reason=None) == 3
    assert journal.next_chunk(100)[0] == [1, 6, 7, 8, 9, 10]
    assert journal.recover()["in_flight_to_unknown"] == 2  # 4 and 5
    assert journal.counts()["unknown"] == 2 and journal.counts()["in_flight"] == 0


def test_recovery_in_flight_becomes_unknown(tmp_path: Path, journal: Journal) -> None:
    journal.mark_in_flight([1, 2, 3])
    journal.close()  # the "crash": nothing recorded
    with Journal(tmp_path / "run.db", lock=True) as again:
        assert again.bind({"input_sha256": "abc"}) is False
        assert again.recover() == {"in_flight_to_unknown": 3, "unknown_to_pending": 0}
        assert again.next_chunk(100)[0] == [4, 5, 6, 7, 8, 9, 10]
        assert again.recover(resend_unknown=True)["unknown_to_pending"] == 3
        assert again.next_chunk(100)[0] == list(range(1, 11))


def test_changed_input_is_refused_once_anything_went_out(tmp_path: Path, journal: Journal) -> None:
    assert journal.bind({"input_sha256": "other"}) is True  # nothing sent: rebinds
    assert journal.last_line == 0
    journal.load(_messages(3))
    journal.mark_in_flight([1])
    with pytest.raises(JournalMismatch, match="input_sha256: journal has 'other', now 'new'"):
        journal.bind({"input_sha256": "new"})


def test_one_sender_at_a_time(tmp_path: Path, journal: Journal) -> None:
    with pytest.raises(JournalLocked):
        Journal(tmp_path / "run.db", lock=True)
    with Journal(tmp_path / "run.db") as reader:  # readers need no lock
        assert reader.counts()["pending"] == 10


def test_invalid_and_settle(journal: Journal) -> None:
    lines, _ = journal.next_chunk(3)
    journal.mark_in_flight(lines)
    journal.record_invalid(2, "message 1: field 'text': must not be empty")
    assert journal.settle_in_flight(lines, "pending", code=None, reason=None) == 2
    assert journal.next_chunk(3)[0] == [1, 3, 4]
    assert journal.counts()["invalid"] == 1


def test_statuses_and_history(journal: Journal) -> None:
    journal.mark_in_flight([1, 2])
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
    assert journal.summary()["statuses"] == {"error-provider-id-unknown": 1, "undelivered": 1}


def test_file_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"address,text\n1,a\n")
    fp = file_fingerprint(path)
    assert fp["input_size"] == "17" and len(fp["input_sha256"]) == 64


def test_not_a_journal(tmp_path: Path) -> None:
    from hpgfast.journal import JournalError

    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not an hpgfast journal"):
        Journal(path)


def test_final_statuses_in_any_case_and_accepted_without_provider_id(journal: Journal) -> None:
    lines, _ = journal.next_chunk(3)
    journal.mark_in_flight(lines)
    journal.record_results(
        lines,
        [SendResult("ok", "c1", "1001"), SendResult("ok", "c2", "1002"), SendResult("ok", "c3")],
    )
    # Accepted without a provider id: kept accepted, never asked about.
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


def test_final_statuses_are_a_setting(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db", final_statuses={"delivered"}) as j:
        j.bind({"input_sha256": "abc"})
        j.load(_messages(2), batch=10)
        j.finish_load(2)
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
        Journal(tmp_path / "k.db", final_statuses={"x') OR 1=1 --"})


def test_every_row_keeps_its_segment_count_past_one_load_batch(tmp_path: Path) -> None:
    # The load writes 10,000 rows per transaction; each transaction must keep the
    # counts the earlier ones wrote (a 100,000-row file once kept only its last
    # batch's). 25,001 rows: two full batches and one row.
    n = 25_001
    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"input_sha256": "costs"})
        journal.load((i, Message(f"7903{i:07d}", "я" * 71, "ACME")) for i in range(1, n + 1))
        journal.finish_load(n)
        totals = journal.cost_totals()
        assert (totals["messages"], totals["segments"]) == (n, 2 * n)
        assert totals["by_state"]["pending"] == {"messages": n, "segments": 2 * n}
        costs = journal.costs_between(1, n)
        assert sorted(costs) == list(range(1, n + 1))
        assert set(costs.values()) == {(2, "ucs2", False)}


def test_a_journal_opened_without_the_lock_takes_it_to_send(tmp_path: Path) -> None:
    # open_journal(path) opens without the sender's lock (readers use it too); a
    # send takes it at its recovery, so a second process cannot send at the same
    # time, nor turn the first one's requests on the wire into "unknown".
    from hpgfast import Client, open_journal
    from hpgfast.emulator import Emulator

    path = tmp_path / "outbox.db"
    with open_journal(path) as first, open_journal(path) as second, \
            Emulator(speed=None) as emu:
        first.add([(f"k{i}", Message(f"7900000000{i}", f"m {i}", "s")) for i in range(5)])
        with Client(emu.url, "CLIENT", "P@ssw0rd") as client:
            assert first.send(client).states["accepted"] == 5
            second.add([("k9", Message("79000000009", "m 9", "s"))])
            with pytest.raises(JournalLocked):
                second.send(client)
        assert len(emu.ledger) == 5
        assert second.counts()["pending"] == 1


@pytest.mark.parametrize("damage", [
    "DELETE FROM meta WHERE key = 'id_prefix'",
    "UPDATE meta SET value = '' WHERE key = 'id_prefix'",
    "UPDATE meta SET value = 'x' WHERE key = 'loaded'",
])
def test_a_journal_whose_ids_or_counts_were_damaged_is_refused(
    tmp_path: Path, damage: str
) -> None:
    import sqlite3
    from contextlib import closing

    from hpgfast import Message
    from hpgfast.journal import JournalError, open_journal

    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        journal.add([Message("79031234567", "t", "S")])
        journal.finish_load(1)
    # A connection's ``with`` commits but does not close: ``closing`` does.
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(damage)
    with pytest.raises(JournalError, match="damaged"):
        with open_journal(path) as journal:
            journal.loaded  # noqa: B018 - the count is read when asked for


@pytest.mark.parametrize("gap", [False, True])
def test_ok_results_keep_every_provider_id_exactly(journal: Journal, gap: bool) -> None:
    """A chunk of ok results is written in one statement (a JSON array) when its lines
    follow one another and no id needs a JSON escape; any other, row by row: either
    way every provider id reads back as the platform gave it, and the states,
    codes and the rows left alone are as a row-by-row write leaves them."""
    lines = [1, 2, 4, 5] if gap else [1, 2, 3, 4]
    ids = (["Код-1", "🚚 2", 'with "quotes"', "back\\slash"] if gap
           else ["Код-1", "🚚 2", "p3", "p4"])
    journal.mark_in_flight([1, 2, 3, 4, 5])
    counts = journal.record_results(lines, [
        SendResult("ok", f"c{line}", pid) for line, pid in zip(lines, ids)
    ])
    assert counts == {"accepted": 4}
    for line, pid in zip(lines, ids):
        row = journal.by_line(line)
        assert row is not None
        assert (row["state"], row["code"], row["provider_id"]) == ("accepted", "ok", pid)
    left = journal.by_line(3 if gap else 5)
    assert left is not None and left["state"] == "in_flight" and left["provider_id"] is None
    # Escapes, at consecutive lines: the row-by-row write, the same answer.
    journal.mark_in_flight([6, 7])
    journal.record_results([6, 7], [SendResult("ok", "c6", 'a"b'), SendResult("ok", "c7", "\x01")])
    assert [journal.by_line(n)["provider_id"] for n in (6, 7)] == ['a"b', "\x01"]  # type: ignore[index]


def test_summary_statuses_in_the_order_of_their_counts(journal: Journal) -> None:
    """The accepted messages by last status, most first, names in order among equal
    counts: as one ``GROUP BY status ORDER BY COUNT(*) DESC, status`` over every
    accepted row with a status gives; those without one yet are counted apart
    (``no_status_yet``), never under a label as a key."""
    lines = list(range(1, 9))
    journal.mark_in_flight(lines)
    journal.record_results(lines, [SendResult("ok", f"c{n}", f"p{n}") for n in lines])
    t = datetime(2026, 1, 1, 12, 0, 0)
    journal.record_statuses(
        [StatusResult("ok", f"p{n}", "delivered", t, None) for n in (1, 2, 3)]
        + [StatusResult("ok", f"p{n}", "sent", t, None) for n in (4, 5)]
        + [StatusResult("ok", "p6", "enroute", t, None)]
    )
    expected = {"delivered": 3, "sent": 2, "enroute": 1}
    summary = journal.summary()
    assert summary["statuses"] == expected
    assert list(summary["statuses"]) == list(expected)
    assert summary["no_status_yet"] == 2
    rows = journal._db.execute(
        "SELECT status, COUNT(*) FROM outcomes WHERE state = 'accepted' GROUP BY status "
        "ORDER BY COUNT(*) DESC, status"
    ).fetchall()
    assert [(s, n) for s, n in rows if s is not None] == list(expected.items())
    assert [n for s, n in rows if s is None] == [2]


def test_chunks_of_lines_with_gaps_and_params(tmp_path: Path) -> None:
    # A chunk whose lines run without a gap is read without them; one with a gap
    # (lines a library user gave) is read line by line: the same messages either way.
    loaded = [(line, Message(f"7900000000{line}", f"t{line}", "S", None,
                             {"n": str(line)} if line in (5, 9) else None))
              for line in (1, 2, 5, 6, 9)]
    with Journal(tmp_path / "gaps.db", lock=True) as j:
        j.load(loaded)
        lines, messages = j.next_chunk(2)
        assert lines == [1, 2]
        assert [m[:3] for m in messages] == [m[:3] for _, m in loaded[:2]]
        lines, messages = j.next_chunk(10, after=2)
        assert lines == [5, 6, 9]
        assert [m.params for m in messages] == [{"n": "5"}, None, {"n": "9"}]
        assert [m.client_id for m in messages] == [j.made_id(line) for line in lines]
        assert j.next_chunk(2, after=5)[0] == [6, 9]
