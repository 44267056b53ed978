"""The command line as a new user meets it: encodings, addresses, subjects, a wrong
password, help texts, report times, the demo's and bench's exit codes. Each against
the emulator on loopback, through ``hpgfast.cli.main``."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from hpgfast import _bench
from hpgfast.cli import build_parser, main
from hpgfast.cli._input import normalize_address
from hpgfast.emulator import Emulator

PASSWORD = "P@ssw0rd"
CONNECTING = ("send", "status")
LOCAL = ("report", "receive", "emulate", "demo", "bench")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(speed=2000.0) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
        monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
        for name in ("HPGFAST_PASSWORD_FILE", "HPGFAST_SUBJECT", "HPGFAST_CONCURRENCY"):
            monkeypatch.delenv(name, raising=False)
        yield emu


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return str(sub.choices[command].format_help())


# -- encodings ----------------------------------------------------------------------------


def test_cp1251_file_is_read_with_encoding(env: Emulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["address", "text", "subject"], ["79031111111", "Привет, мир", "ACME"],
            ["79031111112", "Ваш код 1234", "ACME"]]
    path = _write_csv(tmp_path / "excel.csv", rows, encoding="cp1251")
    # As UTF-8 it is refused before anything is sent, and the error says what to do.
    assert main(["send", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not utf-8 text" in err and "--encoding" in err and "cp1251" in err
    assert len(env.ledger) == 0
    assert main(["send", "--file", str(path), "--encoding", "cp1251"]) == 0
    assert sorted(e.text for e in env.ledger.messages()) == ["Ваш код 1234", "Привет, мир"]


def test_unknown_encoding_is_a_usage_error(env: Emulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "m.csv", [["address", "text", "subject"],
                                           ["79031111111", "x", "ACME"]])
    assert main(["send", "--file", str(path), "--encoding", "klingon"]) == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


# -- addresses -----------------------------------------------------------------------------


def test_normalize_address_never_changes_a_digit() -> None:
    assert normalize_address("+7 (903) 111-11-11") == "79031111111"
    assert normalize_address("8 903 111 11 11") == "89031111111"  # no 8 -> 7 rewrite
    assert normalize_address("+44 20 7946 0958") == "442079460958"
    assert normalize_address("79031111111") == "79031111111"
    for raw in ("+7 (903) 111-11-11", "8-903-111", "+1 (555) 010 9999"):
        digits = [c for c in raw if c.isdigit()]
        assert list(normalize_address(raw)) == digits


def test_addresses_sent_as_written_unless_normalized(env: Emulator, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["address", "text", "subject"], ["+7 903 111-11-11", "a", "ACME"],
            ["8 (903) 222-22-22", "b", "ACME"]]
    path = _write_csv(tmp_path / "m.csv", rows)
    assert main(["send", "--file", str(path), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["this_run"]["rejected_by_code"] == {"error-address-format": 2}
    assert len(env.ledger) == 0
    assert main(["send", "--file", str(path), "--normalize-addresses"]) == 0
    assert sorted(e.address for e in env.ledger.messages()) == ["79031111111", "89032222222"]
    assert main(["send", "--to", "+7 (903) 333-33-33", "--text", "c", "--subject", "ACME",
                 "--normalize-addresses"]) == 0
    assert "79033333333" in {e.address for e in env.ledger.messages()}


def test_help_says_what_an_address_looks_like() -> None:
    text = " ".join(_help("send").split())
    assert "digits only, the country code first, no + or spaces (79031111111)" in text
    assert "--normalize-addresses" in text and "never changes a digit" in text


# -- subjects --------------------------------------------------------------------------------


@pytest.mark.parametrize("journal", [False, True], ids=["plain", "journal"])
def test_missing_subject_is_an_input_error_before_sending(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal: bool
) -> None:
    path = _write_csv(tmp_path / "m.csv", [["address", "text"], ["79031111111", "x"]])
    argv = ["send", "--file", str(path)]
    if journal:
        argv += ["--journal", str(tmp_path / "run.db")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "m.csv:1: no subject" in captured.err
    assert "--subject" in captured.err and "HPGFAST_SUBJECT" in captured.err
    assert captured.out == ""  # no all-zero table
    assert len(env.ledger) == 0


def test_missing_subject_in_a_row_and_for_one_message(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"address": "79031111111", "text": "x", "subject": "ACME"}\n'
                    '{"address": "79031111112", "text": "y"}\n', encoding="utf-8")
    assert main(["send", "--file", str(path), "--journal", str(tmp_path / "j.db")]) == 2
    err = capsys.readouterr().err
    assert "m.jsonl:2: no subject" in err and "HPGFAST_SUBJECT" in err
    assert len(env.ledger) == 0
    assert main(["send", "--to", "79031111111", "--text", "x"]) == 2
    err = capsys.readouterr().err
    assert "--subject" in err and "HPGFAST_SUBJECT" in err
    # The environment's default subject is enough.
    monkeypatch.setenv("HPGFAST_SUBJECT", "ACME")
    assert main(["send", "--file", str(path)]) == 0
    assert len(env.ledger) == 2


# -- a wrong password ----------------------------------------------------------------------


def test_wrong_password_says_so(env: Emulator, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HPGFAST_PASSWORD", "wrong")
    path = _write_csv(tmp_path / "m.csv", [["address", "text", "subject"],
                                           ["79031111111", "x", "ACME"],
                                           ["79031111112", "y", "ACME"]])
    for argv in (["send", "--file", str(path)],
                 ["send", "--file", str(path), "--journal", str(tmp_path / "j.db")],
                 ["send", "--to", "79031111111", "--text", "x", "--subject", "ACME"],
                 ["status", "1001"]):
        assert main(argv) == 3, argv
        captured = capsys.readouterr()
        assert "wrong login or password" in captured.out + captured.err, argv
        assert "wrong" not in (captured.out + captured.err).replace("wrong login", ""), argv
    assert len(env.ledger) == 0


# -- help texts ----------------------------------------------------------------------------


def test_connection_variables_only_where_they_apply() -> None:
    for command in CONNECTING:
        assert "HPGFAST_URL" in _help(command) and "HPGFAST_MAX_REQUEST_BYTES" in _help(command)
    for command in LOCAL:
        assert "HPGFAST_URL" not in _help(command), command
        assert "HPGFAST_LOGIN" not in _help(command), command


def test_every_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in sub.choices.items()
        for action in command._actions
        if not action.help  # argparse.SUPPRESS is a (hidden) help string
    ]
    assert not missing


def test_receiver_secret_variable_holds_the_secret(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    text = " ".join(_help("receive").split())
    assert "HPGFAST_RECEIVER_SECRET to the secret itself (not a path)" in text
    monkeypatch.delenv("HPGFAST_RECEIVER_SECRET", raising=False)
    assert main(["receive", "--port", "0"]) == 2
    assert "set HPGFAST_RECEIVER_SECRET to the secret" in capsys.readouterr().err


# -- report, demo, bench ------------------------------------------------------------------


def test_report_times_are_iso(env: Emulator, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "m.csv", [["address", "text", "subject"],
                                           ["79031111111", "x", "ACME"]])
    db = tmp_path / "run.db"
    assert main(["send", "--file", str(path), "--journal", str(db)]) == 0
    assert main(["status", "--journal", str(db), "--follow", "--interval", "0.05",
                 "--deadline", "30"]) == 0
    capsys.readouterr()
    assert main(["report", str(db), "--csv", "-"]) == 0
    (row,) = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    updated = datetime.fromisoformat(row["updated_at"])
    assert updated.utcoffset() is not None and updated.year >= 2024
    assert row["status_time"] and datetime.fromisoformat(row["status_time"])
    assert len(row["updated_at"]) == len("2026-11-30 15:00:00+00:00")


def test_demo_says_its_rejections_are_deliberate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-n", "1000", "--speed", "2000", "--no-journal"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "4 rejections are deliberate: every 250th address is cut short on purpose" in out
    # ... and the help says exit 0 includes them.
    text = " ".join(_help("demo").split())
    assert "malformed on purpose" in text
    assert "0 every message ended as the emulator's rules say, the deliberate" in text


def test_bench_names_missing_peers_and_documents_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(_help("bench").split())
    assert "1 at least one claim is under its target" in text
    assert "requests" in text and "yarl" in text
    assert _bench.missing_peers({}) == ["requests", "yarl"]
    assert _bench.missing_peers({k: 1.0 for k in _bench.OPTIONAL_PEERS}) == []

    # A machine without yarl: the codec cases run and yarl is named, not dropped.
    real = _bench._codec_cases

    def without_yarl(hpg: object) -> Iterator[tuple[str, str, object]]:
        return ((g, n, f) for g, n, f in real(hpg) if n != "yarl")

    monkeypatch.setattr(_bench, "_codec_cases", without_yarl)
    monkeypatch.setattr(_bench, "_client_case", lambda: iter(()))
    code = main(["bench", "--budget", "0.01", "--quiet"])
    out = capsys.readouterr().out
    assert "not measured (not installed): requests, yarl" in out
    assert code in (0, 1)  # 1 only when a claim is under target on a busy machine


# -- the journal's fingerprint ---------------------------------------------------------


CP = ["--encoding", "cp1251"]


@pytest.mark.parametrize(
    ("first", "then", "setting"),
    [
        (CP, [], "encoding"),
        (CP, ["--encoding", "latin-1"], "encoding"),
        ([*CP, "--normalize-addresses"], CP, "normalize_addresses"),
        (CP, [*CP, "--normalize-addresses"], "normalize_addresses"),
    ],
    ids=["encoding-dropped", "encoding-changed", "normalize-dropped", "normalize-added"],
)
def test_resume_with_other_input_settings_is_refused(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    first: list[str], then: list[str], setting: str,
) -> None:
    rows = [["address", "text", "subject"]] + [[f"7903111111{i}", "Код", "ACME"]
                                               for i in range(5)]
    path = _write_csv(tmp_path / "m.csv", rows, encoding="cp1251")
    base = ["send", "--file", str(path), "--journal", str(tmp_path / "run.db")]
    assert main([*base, *first]) == 0
    assert len(env.ledger) == 5
    assert main([*base, *then]) == 2
    err = capsys.readouterr().err
    assert "different input" in err and setting in err
    # The same settings resume (nothing left to send).
    assert main([*base, *first]) == 0
    assert len(env.ledger) == 5
