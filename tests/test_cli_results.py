"""``hpgfast send --results FILE``: every message's outcome in a CSV a user can act on.

A send without ``--journal`` once reported counts alone: no rejected row, no
provider id, and a run stopped half way left no record of what went. The results
file gets a row per message (its line, address, clientId, outcome, code, provider
id, reason) as each request ends, flushed at once, so a run stopped by Ctrl-C or
killed leaves every outcome it knew. Checked against the emulator's ledger, with
the real command in a subprocess and real signals.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from hpgfast.cli._results import RESULT_COLUMNS
from hpgfast.emulator import Emulator, Fault
from hpgfast.journal import Journal

PASSWORD = "Res-ult$ s3cret&=9"
#: The password as a URL carries it, and other forms a reply could echo.
PASSWORD_FORMS = (PASSWORD, "Res-ult%24%20s3cret%26%3D9", "Res-ult$+s3cret", "s3cret")
DENIED = "79000000003"


def _write_csv(path: Path, n: int, *, client_ids: bool = False) -> list[str]:
    addresses = [f"7900{i:07d}" for i in range(n)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text" + (",client_id" if client_ids else "") + "\n")
        for i, address in enumerate(addresses):
            f.write(f"{address},message {i}" + (f",c{i}" if client_ids else "") + "\n")
    return addresses


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == RESULT_COLUMNS
        return list(reader)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env["HPGFAST_PASSWORD"] = PASSWORD
    return env


def _command(emu: Emulator, *args: str) -> list[str]:
    return [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--subject", "hpgfast", *args]


def _send(emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(emu, *args), env=_env(), capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=None, password=PASSWORD, deny_addresses=[DENIED]) as emulator:
        yield emulator


def _no_password(path: Path) -> None:
    raw = path.read_bytes().decode("utf-8")
    assert not [form for form in PASSWORD_FORMS if form in raw]


def _matches_ledger(rows: list[dict[str, str]], emu: Emulator) -> None:
    """Accepted rows are the ledger's messages, with their provider ids and clientIds."""
    ledger = {e.address: e for e in emu.ledger.messages()}
    for row in rows:
        if row["outcome"] == "accepted":
            entry = ledger[row["address"]]
            assert (row["code"], row["provider_id"], row["client_id"]) == (
                "ok", entry.provider_id, entry.client_id
            ), row


def test_without_journal_every_message_has_its_row(emu: Emulator, tmp_path: Path) -> None:
    addresses = _write_csv(tmp_path / "m.csv", 30)
    results = tmp_path / "results.csv"
    done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                 "--max-batch", "7", "--quiet")
    assert done.returncode == 1, done.stderr  # one rejected
    rows = _read(results)
    assert sorted(int(r["line"]) for r in rows) == list(range(1, 31))
    by_line = {int(r["line"]): r for r in rows}
    for line, address in enumerate(addresses, 1):
        assert by_line[line]["address"] == address
    denied = by_line[addresses.index(DENIED) + 1]
    assert (denied["outcome"], denied["code"], denied["provider_id"]) == (
        "rejected", "error-address-unknown", ""
    )
    accepted = [r for r in rows if r["outcome"] == "accepted"]
    assert len(accepted) == 29 == len(emu.ledger)
    assert all(r["client_id"] and r["time"] for r in rows)
    _matches_ledger(rows, emu)
    _no_password(results)
    assert str(results) in done.stderr  # named, so the user finds it


def test_a_file_without_journal_is_said_to_be_unresumable(
    emu: Emulator, tmp_path: Path
) -> None:
    _write_csv(tmp_path / "m.csv", 3)
    done = _send(emu, "--file", str(tmp_path / "m.csv"), "--quiet")
    assert done.returncode == 0, done.stderr
    # Said before anything was sent, and plainly: what goes wrong, and the way out.
    assert "without --journal" in done.stderr
    assert "cannot be resumed" in done.stderr and "twice" in done.stderr
    assert "--journal" in done.stderr and "--results" in done.stderr
    with_journal = _send(emu, "--file", str(tmp_path / "m.csv"), "--quiet",
                         "--journal", str(tmp_path / "run.db"))
    assert "cannot be resumed" not in with_journal.stderr
    one = _send(emu, "--to", "79000000001", "--text", "hi", "--quiet")
    assert one.returncode == 0, one.stderr
    assert "cannot be resumed" not in one.stderr


def test_with_journal_rows_agree_with_the_journal(emu: Emulator, tmp_path: Path) -> None:
    _write_csv(tmp_path / "m.csv", 30)
    results = tmp_path / "results.csv"
    db = tmp_path / "run.db"
    done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                 "--journal", str(db), "--max-batch", "7", "--quiet")
    assert done.returncode == 1, done.stderr
    rows = _read(results)
    with Journal(db) as journal:
        journaled = {row[0]: row for row in journal.rows()}
        made = {line: journal.made_id(line) for line in journaled}
    assert sorted(int(r["line"]) for r in rows) == sorted(journaled)
    for r in rows:
        line = int(r["line"])
        row = journaled[line]
        # address, state, provider_id, code as the journal has them; the clientId sent
        # (the input's, else the one the journal made)
        assert (r["address"], r["client_id"], r["outcome"], r["provider_id"] or None,
                r["code"]) == (row[1], row[4] or made[line], row[6], row[7], row[8]), r
    _matches_ledger(rows, emu)
    _no_password(results)

    # The same command again: nothing left to send, nothing added but the header kept.
    again = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                  "--journal", str(db), "--max-batch", "7", "--quiet")
    assert again.returncode == 1, again.stderr
    assert _read(results) == rows


def test_accepted_earlier_as_the_journal_records_it(tmp_path: Path) -> None:
    _write_csv(tmp_path / "m.csv", 8)
    results = tmp_path / "results.csv"
    db = tmp_path / "run.db"
    args = ("--file", str(tmp_path / "m.csv"), "--results", str(results), "--journal",
            str(db), "--max-batch", "4", "--quiet")
    # The first request's reply is cut: the platform has its messages, the run does
    # not know (unknown). Sent again, a platform that keeps clientIds unique answers
    # error-id-not-unique: the journal records them accepted earlier, and so does
    # the results file.
    faults = {"cut_reply": Fault(schedule=frozenset({1}))}
    with Emulator(speed=None, password=PASSWORD, faults=faults,
                  unique_client_ids=True) as emu:
        first = _send(emu, *args)
        assert first.returncode == 4, first.stderr  # a cut reply (the exit code table)
        again = _send(emu, *args, "--resend-unknown")
        assert again.returncode == 0, again.stderr
        assert len(emu.ledger) == 8
    rows = _read(results)
    assert [(r["line"], r["outcome"]) for r in rows] == [
        *((str(n), "unknown") for n in range(1, 5)),
        *((str(n), "accepted") for n in range(5, 9)),
        *((str(n), "accepted_earlier") for n in range(1, 5)),
    ]
    assert {r["code"] for r in rows[-4:]} == {"error-id-not-unique"}
    with Journal(db) as journal:
        assert journal.counts()["accepted_earlier"] == 4


def test_one_message(emu: Emulator, tmp_path: Path) -> None:
    results = tmp_path / "one.csv"
    done = _send(emu, "--to", "79000000001", "--text", "hi", "--client-id", "mine",
                 "--results", str(results), "--quiet")
    assert done.returncode == 0, done.stderr
    (row,) = _read(results)
    (entry,) = emu.ledger.messages()
    assert (row["line"], row["address"], row["client_id"], row["outcome"], row["code"],
            row["provider_id"]) == ("1", "79000000001", "mine", "accepted", "ok",
                                    entry.provider_id)


def test_runs_append_and_a_foreign_file_is_refused(emu: Emulator, tmp_path: Path) -> None:
    _write_csv(tmp_path / "m.csv", 3)
    results = tmp_path / "results.csv"
    for _ in range(2):
        done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--quiet")
        assert done.returncode == 0, done.stderr
    rows = _read(results)  # one header: a second run appends its rows
    assert [r["line"] for r in rows] == ["1", "2", "3"] * 2
    foreign = tmp_path / "orders.csv"
    foreign.write_text("order,amount\n1,100\n", encoding="utf-8")
    done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(foreign))
    assert done.returncode == 2
    assert "not a results file" in done.stderr
    assert foreign.read_text(encoding="utf-8") == "order,amount\n1,100\n"
    assert len(emu.ledger) == 6  # the refused run sent nothing
    done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", "-")
    assert done.returncode == 2 and "--results" in done.stderr


def test_unknown_and_not_sent_rows_say_why_without_the_password(tmp_path: Path) -> None:
    _write_csv(tmp_path / "m.csv", 12)
    results = tmp_path / "results.csv"
    # Request 2 gets a reply that echoes the password and matches nothing (unknown;
    # an HPG line, so the run goes on);
    # request 3 is refused with a code-only error-syntax (not sent: safe to resend).
    faults: dict[str, Any] = {
        "raw_reply": Fault(schedule=frozenset({2}),
                           body=f"ok;nothing-sent;1\n<html>password={PASSWORD}</html>\n"
                           .encode()),
        "code_only": Fault(schedule=frozenset({3}), code="error-syntax"),
    }
    with Emulator(speed=None, password=PASSWORD, faults=faults) as emu:
        done = _send(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--max-batch", "4", "--quiet")
        assert done.returncode == 4, done.stderr  # an unreadable reply (the exit code table)
        rows = _read(results)
        _matches_ledger(rows, emu)
    outcomes = {int(r["line"]): r["outcome"] for r in rows}
    assert outcomes == {**dict.fromkeys(range(1, 5), "accepted"),
                        **dict.fromkeys(range(5, 9), "unknown"),
                        **dict.fromkeys(range(9, 13), "not_sent")}
    assert all(r["reason"] for r in rows if r["outcome"] != "accepted")
    _no_password(results)


def _wait_for(emu: Emulator, proc: subprocess.Popen[Any], n: int) -> None:
    deadline = time.monotonic() + 60
    while len(emu.ledger) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


N = 6_000
CONCURRENCY = 2
MAX_BATCH = 100
#: Messages per client.send() call (send's --chunk default).
CHUNK = 5_000


@pytest.mark.slow
@pytest.mark.parametrize("journal", [False, True], ids=["plain", "journal"])
def test_interrupt_leaves_every_outcome_the_run_knew(tmp_path: Path, journal: bool) -> None:
    addresses = _write_csv(tmp_path / "m.csv", N)
    results = tmp_path / "results.csv"
    extra = ["--journal", str(tmp_path / "run.db")] if journal else []
    # 50 ms per request: 60 requests over 2 threads take about 1.5 s.
    with Emulator(speed=None, password=PASSWORD, latency=0.05) as emu:
        proc = subprocess.Popen(
            _command(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--concurrency", str(CONCURRENCY), "--max-batch", str(MAX_BATCH),
                     "--quiet", *extra),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        _wait_for(emu, proc, 1_000)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        ledger = {e.address: e for e in emu.ledger.messages()}
    assert 0 < len(ledger) < CHUNK, "the interrupt came too late or too early"
    rows = _read(results)
    lines = [int(r["line"]) for r in rows]
    # One row for each message handed to the client (the first chunk), none twice:
    # the requests never begun are there too, not sent.
    assert sorted(lines) == list(range(1, CHUNK + 1))
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        assert r["address"] == addresses[int(r["line"]) - 1]
        if r["address"] in ledger:
            # The platform has it: accepted with its provider id, or unknown (cut).
            entry = ledger[r["address"]]
            if r["outcome"] != "unknown":
                assert (r["outcome"], r["provider_id"], r["client_id"]) == (
                    "accepted", entry.provider_id, entry.client_id
                ), r
        else:
            assert r["outcome"] in ("not_sent", "unknown"), r
    # Every message the platform took is in the file: the run knew of each.
    assert set(ledger) <= {r["address"] for r in rows}
    assert outcomes.get("unknown", 0) <= CONCURRENCY * MAX_BATCH, outcomes
    assert outcomes.get("accepted", 0) >= len(ledger) - CONCURRENCY * MAX_BATCH, outcomes
    assert outcomes.get("not_sent", 0) >= CHUNK - len(ledger) - CONCURRENCY * MAX_BATCH
    _no_password(results)


@pytest.mark.slow
def test_a_killed_run_leaves_every_request_that_ended(tmp_path: Path) -> None:
    addresses = _write_csv(tmp_path / "m.csv", N)
    results = tmp_path / "results.csv"
    with Emulator(speed=None, password=PASSWORD, latency=0.05) as emu:
        proc = subprocess.Popen(
            _command(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--concurrency", str(CONCURRENCY), "--max-batch", str(MAX_BATCH),
                     "--quiet"),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        _wait_for(emu, proc, 1_000)
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        ledger = {e.address: e for e in emu.ledger.messages()}
    assert 0 < len(ledger) < N, "the kill came too late or too early"
    rows = _read(results)
    written: dict[str, Optional[str]] = {}
    for r in rows:
        assert r["address"] == addresses[int(r["line"]) - 1]
        assert (r["outcome"], r["provider_id"]) == ("accepted", ledger[r["address"]].provider_id)
        written[r["address"]] = r["provider_id"]
    # Only the requests on the wire when the process died are missing.
    missing = set(ledger) - set(written)
    assert len(missing) <= CONCURRENCY * MAX_BATCH, len(missing)
    assert written


@pytest.mark.slow
def test_an_interrupted_journaled_run_says_how_file_summary_and_journal_relate(
    tmp_path: Path,
) -> None:
    """The file and "this run" tell this run's outcome; the journal each line's state.

    A line this run did not send (``not_sent``, with a reason) is ``pending`` in the
    journal (or ``not_sent``, the mark of a request that never began), and the
    summary says so in those words; the "went out" line counts
    against the input's messages, not the chunk handed to the client so far.
    """
    _write_csv(tmp_path / "m.csv", N)
    results = tmp_path / "results.csv"
    journal_path = tmp_path / "run.db"
    with Emulator(speed=None, password=PASSWORD, latency=0.05) as emu:
        proc = subprocess.Popen(
            _command(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--concurrency", str(CONCURRENCY), "--max-batch", str(MAX_BATCH),
                     "--journal", str(journal_path)),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        _wait_for(emu, proc, 1_000)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    rows = _read(results)
    by_outcome: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_outcome.setdefault(r["outcome"], []).append(r)
    not_sent = by_outcome.get("not_sent", [])
    assert not_sent, "the interrupt came too late"
    # Every made-up outcome says why, an interrupt's too.
    for r in not_sent:
        assert r["reason"] == "interrupted before it was sent", r
    for r in by_outcome.get("unknown", []):
        assert r["reason"] == "interrupted while in flight", r
    with Journal(str(journal_path)) as journal:
        for r in not_sent:
            row = journal.by_line(int(r["line"]))
            assert row is not None and row["state"] in ("pending", "not_sent"), (r, row)
        states = journal.summary()["states"]
    # Still to send in the journal: the lines this run did not send, and the rest.
    assert states["pending"] + states["not_sent"] == N - len(rows) + len(not_sent)
    # The summary says what the two columns mean for these lines, and the whole input.
    assert (f"the {len(not_sent):,} messages this run did not send are pending or not "
            "sent in the journal: the next run with this journal sends them" in out), out
    went = [line for line in out.splitlines() if "went out" in line]
    assert went and f"of the input's {N:,} messages went out" in went[0], out


@pytest.mark.slow
def test_an_interrupted_plain_run_counts_against_the_input(tmp_path: Path) -> None:
    """Without a journal too: "went out" of the input's messages, each made-up row says why."""
    _write_csv(tmp_path / "m.csv", N)
    results = tmp_path / "results.csv"
    with Emulator(speed=None, password=PASSWORD, latency=0.05) as emu:
        proc = subprocess.Popen(
            _command(emu, "--file", str(tmp_path / "m.csv"), "--results", str(results),
                     "--concurrency", str(CONCURRENCY), "--max-batch", str(MAX_BATCH)),
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        _wait_for(emu, proc, 1_000)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    rows = _read(results)
    assert any(r["outcome"] == "not_sent" for r in rows), "the interrupt came too late"
    for r in rows:
        if r["outcome"] in ("not_sent", "unknown"):
            assert r["reason"].startswith("interrupted "), r
    went = [line for line in out.splitlines() if "went out" in line]
    assert went and f"of the input's {N:,} messages went out" in went[0], out
