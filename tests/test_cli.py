"""The ``hpgfast`` command against the emulator on loopback, in-process and as a process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpgfast.cli import main
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal

PASSWORD = "P@ssw0rd"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=2000.0, deny_addresses=["79999999999"]) as emulator:
        yield emulator


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> Emulator:
    monkeypatch.setenv("HPGFAST_URL", emu.url)
    monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
    monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
    for name in ("HPGFAST_PASSWORD_FILE", "HPGFAST_SUBJECT", "HPGFAST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    return emu


def _csv(path: Path, n: int, *, deny: int | None = None, dup: int | None = None) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["address", "text", "client_id", "priority"])
        for i in range(n):
            address = "79999999999" if i == deny else f"7900{i:07d}"
            client_id = "c0" if i == dup else f"c{i}"
            w.writerow([address, f"Привет, {i} 👋", client_id, "high" if i % 2 else ""])
    return path


def test_help_everywhere() -> None:
    out = subprocess.run([sys.executable, "-m", "hpgfast", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "exit codes:" in out and "demo" in out
    for command in ("send", "status", "report", "receive", "emulate", "demo", "bench"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0


def test_send_one_message(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["send", "--to", "79031111111", "--text", "Hello", "--subject", "ACME",
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["code"] == "ok"
    entry = env.ledger.by_provider_id(result["provider_id"])
    assert entry is not None and (entry.text, entry.subject) == ("Hello", "ACME")


def test_send_file_without_journal(env: Emulator, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path / "m.csv", 300, deny=5)
    assert main(["send", "--file", str(path), "--subject", "ACME", "--chunk", "100"]) == 1
    out = capsys.readouterr().out
    assert "error-address-unknown" in out and "299" in out
    assert len(env.ledger) == 299
    entry = next(e for e in env.ledger.messages() if e.client_id == "c1")
    assert entry.params == {"priority": "high"}


def test_journal_send_resume_report_status(env: Emulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(500):
            f.write(json.dumps({"address": 79000000000 + i, "text": f"t{i}", "client_id": i,
                                "params": {"priority": "low"}}) + "\n")
    db = tmp_path / "run.db"
    argv = ["send", "--file", str(path), "--journal", str(db), "--subject", "ACME",
            "--chunk", "128", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["this_run"]["accepted"] == 500 and first["journal"]["states"]["accepted"] == 500
    # Rerunning sends nothing.
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["this_run"]["attempted"] == 0
    assert len(env.ledger) == 500
    # A changed input is refused with a clear error.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"address": "79000000999", "text": "new"}) + "\n")
    assert main(argv) == 2
    assert "different input" in capsys.readouterr().err
    # Statuses, followed to final and recorded.
    assert main(["status", "--journal", str(db), "--follow", "--interval", "0.05",
                 "--deadline", "30", "--json"]) == 0
    followed = json.loads(capsys.readouterr().out)
    assert followed["open"] == 0 and followed["changes"] >= 500
    # The report and its CSV.
    assert main(["report", str(db)]) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and "delivered" in out
    assert main(["report", str(db), "--csv", str(tmp_path / "rows.csv")]) == 0
    with open(tmp_path / "rows.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 500 and rows[0]["state"] == "accepted" and rows[0]["status"]
    with Journal(db) as journal:
        assert len(journal.history()) >= 500


def test_invalid_message_is_set_aside(env: Emulator, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path / "m.csv", 50, dup=7)  # c0 twice in one request
    db = tmp_path / "run.db"
    assert main(["send", "--file", str(path), "--journal", str(db), "--subject", "ACME",
                 "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["journal"]["states"]["invalid"] == 1
    assert summary["journal"]["states"]["accepted"] == 49
    assert len(env.ledger) == 49


def test_exit_codes(env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    one = ["send", "--to", "79031111111", "--text", "x", "--subject", "ACME"]
    monkeypatch.setenv("HPGFAST_PASSWORD", "wrong")
    assert main(one) == 3
    monkeypatch.delenv("HPGFAST_PASSWORD")
    assert main(one) == 2
    assert "no password" in capsys.readouterr().err
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    assert main([*one, "--password-file", str(secret)]) == 0
    assert main([*one, "--password", PASSWORD]) == 0
    err = capsys.readouterr().err
    assert "visible" in err and PASSWORD not in err
    monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
    monkeypatch.setenv("HPGFAST_URL", "http://127.0.0.1:9/CLIENT/connectorX/")
    assert main([*one, "--timeout", "2"]) == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("addr,text\n1,x\n")
    assert main(["send", "--file", str(bad)]) == 2
    assert "bad.csv:1" in capsys.readouterr().err
    assert main(["send"]) == 2
    assert main([]) == 2


def test_receive_bad_allow_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receive", "--no-secret", "--allow", "nonsense", "--port", "0"]) == 2
    assert "not an IP address" in capsys.readouterr().err


def test_status_of_ids(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--to", "79031111110", "--text", "x", "--subject", "ACME",
                 "--json"]) == 0
    pid = json.loads(capsys.readouterr().out)["provider_id"]
    assert main(["status", pid, "999999", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["provider_id"] == pid and rows[0]["code"] == "ok"
    assert rows[1]["code"] == "error-provider-id-unknown"
    assert main(["status", pid, "--follow", "--interval", "0.05", "--deadline", "20"]) == 0
    assert "delivered" in capsys.readouterr().out


def test_demo_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "3000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # Every 250th demo address is malformed: 12 of 3000 are rejected, as planned.
    assert result["states"]["accepted"] == 2988 and result["not_final"] == 0
    assert result["states"]["rejected"] == 12
    assert result["rejected_by_code"] == {"error-address-format": 12}
    assert sum(result["delivery_statuses"].values()) == 2988
    assert result["figures"]["messages_per_second"] > 0


# -- progress as a person sees it: plain lines in a log, a bar on a terminal --------------


def _demo_command(n: int) -> list[str]:
    return [sys.executable, "-m", "hpgfast", "demo", "-n", str(n), "--speed", "2000"]


def _summary_fields(out: str) -> dict[str, str]:
    """The summary tables' rows as name -> value (the text before the last column)."""
    fields = {}
    for line in out.splitlines():
        name, sep, value = line.rpartition("  ")
        if sep and name.strip() and not set(line) <= {"-", " "}:
            fields[name.strip()] = value.strip()
    return fields


def test_demo_plain_progress_lines_and_summary() -> None:
    done = subprocess.run(_demo_command(500), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    assert err[0].startswith("emulator running at http://127.0.0.1:")
    # Short runs write no periodic line, but always the last one, with the final counts.
    sending = [line for line in err if line.startswith("sending: ")]
    assert len(sending) == 1
    assert sending[0].startswith("sending: 500/500 msg (100%), ")
    assert sending[0].endswith("; accepted=498 other=2")  # 2 malformed addresses
    following = [line for line in err if line.startswith("following statuses: ")]
    assert len(following) == 1 and " changes" in following[0]
    assert "\r" not in done.stderr and "\x1b" not in done.stderr  # no bar drawn
    fields = _summary_fields(done.stdout)
    assert fields["accepted"] == "498" and fields["messages sent"] == "500"
    assert fields["rejected"] == fields["error-address-format"] == "2"
    assert fields["unknown"] == fields["not sent"] == "0"
    statuses = ("delivered", "undelivered", "failed", "cancelled")
    assert sum(int(fields.get(s, "0")) for s in statuses) == 498
    assert int(fields["status rounds"]) >= 1
    assert fields["send time"].endswith(" s") and fields["client CPU per message"].endswith("µs")
    # The figures' column is right-aligned: every value ends in the same column.
    figures = done.stdout[done.stdout.index("\nfigure ") + 1 :]
    table_lines = figures.split("\n\n", 1)[0].splitlines()
    assert len(table_lines) >= 8
    assert len({len(line) for line in table_lines}) == 1


def test_progress_plain_lines_never_lag_the_count() -> None:
    import io

    from hpgfast.cli._output import Progress

    stream = io.StringIO()
    with Progress(30, "sending", stream=stream) as progress:
        progress.PLAIN_EVERY = 0.0  # a line at every tick
        progress.tick(10, "accepted=10")
        progress.tick(20, "accepted=29 other=1")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("sending: 10/30 msg (33%), ") and lines[0].endswith("accepted=10")
    assert lines[1].startswith("sending: 30/30 msg (100%), ")
    assert lines[1].endswith("; accepted=29 other=1")
    assert len(lines) == 2  # close() does not repeat the last line
    stream = io.StringIO()
    with Progress(None, "following", count=False, stream=stream) as progress:
        progress.tick(0, "round 1: 5 changes")
    assert stream.getvalue().startswith("following: ")
    assert stream.getvalue().rstrip().endswith(" s; round 1: 5 changes")
    stream = io.StringIO()
    with Progress(None, "sending", quiet=True, stream=stream) as progress:
        progress.tick(5, "accepted=5")
    assert stream.getvalue() == ""


def test_demo_draws_a_bar_on_a_terminal() -> None:
    pytest.importorskip("tqdm")
    pty = pytest.importorskip("pty")
    import fcntl
    import os
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        process = subprocess.Popen(_demo_command(500), stdout=subprocess.PIPE,
                                   stderr=slave, stdin=subprocess.DEVNULL)
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        out, _ = process.communicate(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "sending: 100%|" in screen and "500/500" in screen and "accepted=498" in screen
    assert "\r" in screen  # redrawn in place, tqdm's way
    assert "following statuses: " in screen
    assert "accepted" in out.decode() and "status rounds" in out.decode()


def test_receive_json_field_must_name_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("providerId", "when=at", "status="):
        assert main(["receive", "--no-secret", "--allow", "127.0.0.1", "--port", "0",
                     "--json-field", bad]) == 2
        assert "json" in capsys.readouterr().err.lower()


# -- replies seen in the field, on the command line -----------------------------------


def test_account_stop_has_an_exit_code_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(speed=None, balance=3) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
        monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
        source = _csv(tmp_path / "in.csv", 20)
        code = main(["send", "--file", str(source), "--subject", "ACME", "--max-batch", "2",
                     "--journal", str(tmp_path / "run.db")])
        assert code == 5
        out = capsys.readouterr()
        assert "error-insufficient-balance" in out.out + out.err
        assert len(emu.ledger) == 3
        assert emu.requests["send"] == 2  # nothing started after the stop
        with Journal(tmp_path / "run.db") as journal:
            counts = journal.counts()
        assert counts["accepted"] == 3 and counts["not_sent"] + counts["pending"] >= 16
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    assert "the account cannot send" in capsys.readouterr().out


def test_messages_refused_for_the_account_are_sent_on_the_next_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A message the platform answered error-insufficient-balance on its own line was
    # not processed because of the account, not because of itself: once the balance
    # is topped up, the same command sends it (it is not "rejected" for good).
    monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
    monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
    source = _csv(tmp_path / "in.csv", 30)
    args = ["send", "--file", str(source), "--subject", "ACME", "--max-batch", "10",
            "--journal", str(tmp_path / "run.db")]
    with Emulator(speed=None, balance=3) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        assert main(args) == 5
        assert len(emu.ledger) == 3
    with Journal(tmp_path / "run.db") as journal:
        counts = journal.counts()
        assert counts["accepted"] == 3 and counts["rejected"] == 0
        refused = [journal.by_line(line) for line in range(1, 31)]
        assert sum(r is not None and r["code"] == "error-insufficient-balance"
                   for r in refused) == 7  # the code is kept for the report
    with Emulator(speed=None) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        assert main(args) == 0, capsys.readouterr()
        assert len(emu.ledger) == 27  # the rest, each once: nothing accepted is resent
    with Journal(tmp_path / "run.db") as journal:
        assert journal.counts()["accepted"] == 30


def test_status_follow_ends_on_upper_case_statuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Emulator(speed=2000.0, status_case="upper") as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
        monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
        source = _csv(tmp_path / "in.csv", 10)
        journal = str(tmp_path / "run.db")
        assert main(["send", "--file", source.as_posix(), "--subject", "ACME",
                     "--journal", journal, "--rate", "1000"]) == 0
        code = main(["status", "--journal", journal, "--follow", "--deadline", "20",
                     "--interval", "0.05"])
        assert code == 0  # DELIVERED is final: the follow ended before its deadline
        with Journal(journal) as j:
            assert j.open_provider_ids() == []


def test_a_password_echoed_in_reasons_and_extra_fields_never_reaches_journal_or_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "Uniq-s3cret-7Qx"
    with Emulator(speed=2000.0, password=secret, send_extra=secret,
                  reasons={"6": f"echo {secret}"}) as emu:  # fmt: skip
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
        monkeypatch.setenv("HPGFAST_PASSWORD", secret)
        source = tmp_path / "in.csv"
        source.write_text("address,text\n79031234566,undelivered one\n79031234561,ok one\n")
        journal = str(tmp_path / "run.db")
        assert main(["send", "--file", str(source), "--subject", "ACME", "--journal", journal,
                     "--json"]) == 0
        assert main(["status", "--journal", journal, "--follow", "--deadline", "20",
                     "--interval", "0.05", "--json"]) == 0
        assert main(["report", journal, "--csv", str(tmp_path / "out.csv")]) == 0
        assert main(["report", journal, "--json"]) == 0
    printed = capsys.readouterr()
    with Journal(journal) as j:
        stored = repr(list(j.rows())) + repr(j.history())
    outputs = [printed.out, printed.err, (tmp_path / "out.csv").read_text(), stored]
    assert "echo ***" in stored  # the reason was kept, masked
    for text in outputs:
        assert secret not in text


@pytest.mark.parametrize("max_batch", ["4", "1"])
def test_an_account_stop_is_one_state_in_the_journal_the_results_and_the_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    max_batch: str,
) -> None:
    # The journal, the --results file and the summary tell a message's state by one
    # rule: a message the platform refused for the account (its own line
    # error-insufficient-balance) is not_sent, code kept, in all three.
    monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
    monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
    source = _csv(tmp_path / "in.csv", 4)
    db, results = tmp_path / "run.db", tmp_path / "results.csv"
    with Emulator(speed=None, balance=1) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        code = main(["send", "--file", str(source), "--subject", "ACME", "--max-batch",
                     max_batch, "--journal", str(db), "--results", str(results), "--json"])
        assert code == 5
    summary = json.loads(capsys.readouterr().out)
    with Journal(db) as journal:
        counts = journal.counts()
        rows = {line: journal.by_line(line) for line in range(1, 5)}
    with open(results, encoding="utf-8", newline="") as f:
        written = {int(r["line"]): r for r in csv.DictReader(f)}
    stopped = [line for line, r in rows.items()
               if r is not None and r["code"] == "error-insufficient-balance"]
    # (With one message a request, the refusal is the whole request's: not-sent.)
    assert (stopped or max_batch == "1") and counts["rejected"] == 0
    assert counts["accepted"] == 1
    for line in stopped:
        assert rows[line]["state"] == "not_sent"
        assert (written[line]["outcome"], written[line]["code"]) == (
            "not_sent", "error-insufficient-balance")
    run = summary["this_run"]
    assert run["rejected"] == 0 and run["rejected_by_code"] == {}
    assert run["not_sent"] == counts["not_sent"] >= len(stopped) and run["accepted"] == 1
    for state in ("accepted", "rejected", "unknown", "not_sent"):
        assert run[state] == summary["journal"]["states"].get(state, 0), state
        assert run[state] == sum(r["outcome"] == state for r in written.values()), state
