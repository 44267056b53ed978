"""What a new user met on a first try of the command line, each as a real ``hpgfast``
process against real files and the emulator on loopback.

A command that reads a journal never makes one of an empty or foreign file; a port
out of range, an unknown ``--state`` or a budget that is not positive is a usage
error; an interrupted ``send`` still says what it did; a ``;``-separated CSV (what
spreadsheets write where the comma is the decimal mark) is read; the emulator does
not show its password; counts read as English; ``-v`` works after the command;
``report --csv`` shows the clientId the journal sent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from hpgfast.emulator import Emulator

PASSWORD = "P@ssw0rd"
TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env.update({"HPGFAST_LOGIN": "CLIENT", "HPGFAST_PASSWORD": PASSWORD,
                "HPGFAST_SUBJECT": "ACME", "HPGFAST_TIMEOUT": "5",
                "HPGFAST_RECEIVER_SECRET": "s3cret"})
    env.update(extra)
    return env


def hpgfast(*args: str, env: Optional[dict[str, str]] = None,
            **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpgfast", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env or _env(), **kw)


def _csv(path: Path, addresses: list[str], header: str = "address,text") -> Path:
    sep = header[len("address")]
    path.write_text(header + "\n" + "".join(f"{a}{sep}hello\n" for a in addresses),
                    encoding="utf-8")
    return path


@pytest.fixture()
def journal(tmp_path: Path) -> Path:
    """A journal of two accepted messages, made by ``hpgfast send``."""
    path = _csv(tmp_path / "in.csv", ["79031111111", "79031111112"])
    db = tmp_path / "run.db"
    with Emulator(speed=None) as emu:
        done = hpgfast("send", "--url", emu.url, "--file", str(path), "--journal", str(db))
    assert done.returncode == 0, done.stderr
    return db


# -- a command that reads a journal makes none ------------------------------------------


FOREIGN = {
    "empty": b"",
    "text": b"address,text\n79031111111,hello\n",
}


def _sqlite_foreign(path: Path) -> bytes:
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    return path.read_bytes()


def _reader_commands(db: Path) -> dict[str, list[str]]:
    return {
        "report": ["report", str(db)],
        "report-csv": ["report", str(db), "--csv", "-"],
        "status": ["status", "--journal", str(db), "--url", "http://127.0.0.1:9/C/c/"],
        "receive": ["receive", "--port", "0", "--journal", str(db)],
    }


@pytest.mark.parametrize("kind", [*FOREIGN, "sqlite"])
@pytest.mark.parametrize("command", ["report", "report-csv", "status", "receive"])
def test_a_reader_refuses_a_file_that_is_no_journal_and_leaves_it_as_it_was(
    tmp_path: Path, kind: str, command: str
) -> None:
    db = tmp_path / "x.db"
    if kind == "sqlite":
        before = _sqlite_foreign(db)
    else:
        db.write_bytes(FOREIGN[kind])
        before = FOREIGN[kind]
    done = hpgfast(*_reader_commands(db)[command])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "not an hpgfast journal" in done.stderr or "no journal at" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]  # no -wal, no -shm


def test_a_reader_still_reads_a_journal(journal: Path) -> None:
    done = hpgfast("report", str(journal))
    assert done.returncode == 0, done.stderr
    assert "2 messages" in done.stdout


# -- ports -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["receive", "emulate"])
@pytest.mark.parametrize("port", ["99999", "-5", "65536"])
def test_a_port_out_of_range_is_a_usage_error(command: str, port: str) -> None:
    done = hpgfast(command, "--port", port)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "0 to 65535" in done.stderr, done.stderr


def test_the_receiver_refuses_a_port_out_of_range_by_name() -> None:
    from hpgfast.receiver import Receiver

    with pytest.raises(ValueError, match="port must be 0 to 65535, got 99999"):
        Receiver(lambda r: None, port=99999, secret="s")


# -- report --state --------------------------------------------------------------------


def test_report_refuses_an_unknown_state_naming_the_valid_ones(journal: Path) -> None:
    done = hpgfast("report", str(journal), "--state", "bogus", "--csv", "-")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "bogus" in done.stderr and "accepted" in done.stderr and "not_sent" in done.stderr
    assert done.stdout == ""


def test_report_state_without_csv_is_refused(journal: Path) -> None:
    done = hpgfast("report", str(journal), "--state", "accepted")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "--csv" in done.stderr


def test_report_state_filters_the_csv(journal: Path) -> None:
    done = hpgfast("report", str(journal), "--state", "accepted", "--csv", "-")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["state"] for r in rows] == ["accepted", "accepted"]
    done = hpgfast("report", str(journal), "--state", "rejected", "--csv", "-")
    assert done.returncode == 0, done.stderr
    assert list(csv.DictReader(io.StringIO(done.stdout))) == []


# -- bench --budget --------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["0", "-1", "nan", "inf"])
def test_bench_refuses_a_budget_that_is_not_positive(budget: str) -> None:
    done = hpgfast("bench", f"--budget={budget}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "--budget" in done.stderr


# -- an interrupted send says what it did ----------------------------------------------


def _big_csv(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i}\n")
    return path


@pytest.mark.parametrize("journaled", [False, True], ids=["plain", "journal"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_an_interrupted_send_prints_its_summary(
    tmp_path: Path, journaled: bool, signum: int, as_json: bool
) -> None:
    n = 3_000
    path = _big_csv(tmp_path / "big.csv", n)
    with Emulator(speed=None, latency=0.05) as emu:
        command = [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--file",
                   str(path), "--max-batch", "50", "--quiet"]
        if journaled:
            command += ["--journal", str(tmp_path / "run.db")]
        if as_json:
            command.append("--json")
        proc = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=TIMEOUT)
        accepted = len(emu.ledger)
    assert proc.returncode == 130, err
    assert 0 < accepted < n, "the interrupt came too late or too early"
    if as_json:
        summary = json.loads(out)
        assert summary["interrupted"] is True
        run = summary["this_run"]
        # What the platform took is what the summary counts accepted (the request
        # cut on the wire, if any, is unknown).
        assert run["accepted"] <= accepted <= run["accepted"] + run["unknown"], (run, accepted)
        assert run["attempted"] >= run["accepted"]
    else:
        assert "interrupted" in out, out
        assert "accepted" in out, out


# -- CSV delimiters and line numbers ---------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_a_csv_separated_by_semicolons_or_tabs_is_read(tmp_path: Path, sep: str) -> None:
    path = _csv(tmp_path / "semi.csv", ["79031111111", "79031111112"],
                header=f"address{sep}text")
    with Emulator(speed=None) as emu:
        done = hpgfast("send", "--url", emu.url, "--file", str(path), "--json")
        assert done.returncode == 0, done.stderr
        assert sorted(m.address for m in emu.ledger.messages()) == ["79031111111",
                                                                    "79031111112"]
        assert {m.text for m in emu.ledger.messages()} == {"hello"}


def test_a_semicolon_csv_keeps_its_line_numbers_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text('address;text\n79031111111;"two\nlines"\n;empty address\n',
                    encoding="cp1251")
    done = hpgfast("send", "--url", "http://127.0.0.1:9/C/c/", "--file", str(path),
                   "--dry-run")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "semi.csv:4:" in done.stderr, done.stderr
    assert "address and text must not be empty" in done.stderr


def test_a_comma_in_a_semicolon_header_does_not_confuse_it(tmp_path: Path) -> None:
    # A header of ';' fields, one of which holds a comma, is still ';'-separated.
    path = tmp_path / "semi.csv"
    path.write_text('address;text;"note, internal"\n79031111111;hi;x\n', encoding="utf-8")
    with Emulator(speed=None) as emu:
        done = hpgfast("send", "--url", emu.url, "--file", str(path))
        assert done.returncode == 0, done.stderr
        (message,) = emu.ledger.messages()
        assert (message.address, message.text) == ("79031111111", "hi")


# -- the password in help and on the emulator's banner ---------------------------------


@pytest.mark.parametrize("command", ["send", "status"])
def test_password_flag_is_in_help_with_its_warning(command: str) -> None:
    done = hpgfast(command, "--help")
    assert done.returncode == 0
    entry = done.stdout.split("\n  --password PASSWORD", 1)[1].split("\n  --", 1)[0]
    assert "(ps, /proc)" in " ".join(entry.split()), entry


def test_emulate_does_not_show_its_password(tmp_path: Path) -> None:
    secret = "TrialPw+7781/z"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "emulate", "--port", "0", "--password", secret],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Ctrl-C stops" not in seen and proc.poll() is None and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert secret not in out + seen + err
    assert "password:***" in seen, seen
    assert "--password" in seen, seen


# -- counts in words -------------------------------------------------------------------


def test_one_message_reads_singular(tmp_path: Path) -> None:
    path = _csv(tmp_path / "one.csv", ["79031111111"])
    with Emulator(speed=None) as emu:
        done = hpgfast("send", "--url", emu.url, "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert "1 message went out" in done.stdout, done.stdout
    assert "1 messages" not in done.stdout


def test_nothing_out_quotes_no_rate(tmp_path: Path) -> None:
    path = _csv(tmp_path / "two.csv", ["79031111111", "79031111112"])
    done = hpgfast("send", "--url", "http://127.0.0.1:9/C/connectorX/", "--file", str(path))
    assert done.returncode == 4, done.stderr
    assert "none of 2 messages went out" in done.stdout, done.stdout
    assert "msg/s" not in done.stdout


def test_emulate_counts_one_message_singular(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "emulate", "--port", "0"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    url = proc.stdout.readline().strip()
    seen = ""
    while "Ctrl-C stops" not in seen and proc.poll() is None:
        seen += proc.stderr.readline()
    done = hpgfast("send", "--url", url, "--to", "79031111111", "--text", "hi")
    assert done.returncode == 0, done.stderr
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert "accepted 1 message\n" in err or err.rstrip().endswith("accepted 1 message"), err


# -- -v after the command --------------------------------------------------------------


@pytest.mark.parametrize("flags", [["-v"], ["-vv"], ["-v", "-v"]])
def test_verbose_after_the_command(journal: Path, flags: list[str]) -> None:
    done = hpgfast("report", str(journal), *flags)
    assert done.returncode == 0, done.stderr
    if flags != ["-v"]:
        assert "DEBUG" in done.stderr, done.stderr


def test_verbose_before_and_after_add_up(journal: Path) -> None:
    done = hpgfast("-v", "report", str(journal), "-v")
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr, done.stderr


# -- report --csv shows the clientId sent ----------------------------------------------


def test_report_csv_shows_the_client_id_the_journal_sent(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", ["79031111111", "79031111112"])
    db = tmp_path / "run.db"
    results = tmp_path / "results.csv"
    with Emulator(speed=None) as emu:
        done = hpgfast("send", "--url", emu.url, "--file", str(path), "--journal", str(db),
                       "--results", str(results))
        assert done.returncode == 0, done.stderr
        sent = {m.address: m.client_id for m in emu.ledger.messages()}
    report = hpgfast("report", str(db), "--csv", "-")
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert {r["address"]: r["client_id"] for r in rows} == sent
    assert all(sent.values())
    with open(results, encoding="utf-8", newline="") as f:
        from_results = {r["address"]: r["client_id"] for r in csv.DictReader(f)}
    assert from_results == sent
