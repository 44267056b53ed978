"""What a file costs on the command line: ``send --dry-run``, ``--transliterate``, the
journal's segment counts and ``report``'s totals, against a file counted by hand."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpgfast.cli import main
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal

# A password exactly as long as the dry run assumes one to be, so that with --url and
# --login its request count is the client's to the byte.
PASSWORD = "x" * 64

RUSSIAN = (
    "Ваш заказ 4521 готов к выдаче. Ждём вас до 20:00 в пункте выдачи на ул. Ленина, 5."
)

# The file, counted by hand (3GPP TS 23.038 / 23.040: one SMS holds 160 septets or 70
# UTF-16 units; a part of a concatenated one 153 or 67; a two-unit character is never
# split between parts):
TEXTS = [
    # 1: 160 GSM characters = 160 septets: one SMS.                      gsm7, 1
    "a" * 160,
    # 2: 161 septets > 160: concatenated, 153 | 8.                        gsm7, 2
    "a" * 161,
    # 3: 70 Cyrillic letters = 70 units: one SMS.                         ucs2, 1
    "я" * 70,
    # 4: 71 units > 70: concatenated, 67 | 4.                             ucs2, 2
    "я" * 71,
    # 5: 36 emoji, 2 units each = 72 > 70; a part takes 33 of them (66 units: the
    #    34th would split its pair across the 67th unit), then 3: 66 | 6.  ucs2, 2
    "🎉" * 36,
    # 6: 159 GSM characters + € (an extension character: escape + code, 2 septets)
    #    = 161 septets > 160: 153 | 8.                                    gsm7, 2
    "a" * 159 + "€",
    # 7: 85 characters, Cyrillic among them: 85 units > 70: 67 | 18.      ucs2, 2
    RUSSIAN,
]
# Without transliteration: gsm7 3 messages, 1 + 2 + 2 = 5 segments; ucs2 4 messages,
# 1 + 2 + 2 + 2 = 7 segments; 12 in all. The largest takes 2 segments; message 2 is
# the first to.
PLAIN = {"messages": 7, "segments": 12, "gsm7": (3, 5), "ucs2": (4, 7), "largest": (2, 2)}
# With --transliterate (ICAO Doc 9303), only where Latin letters need fewer segments:
#   3: "ia" * 70 = 140 septets, 1 segment: no cheaper than 1 UCS-2 segment: unchanged;
#   4: "ia" * 71 = 142 septets <= 160: 1 segment instead of 2: changed, saves 1;
#   5: emoji have no Latin form: unchanged;
#   7: "Vash zakaz 4521 gotov k vydache. Zhdem vas ..." = 87 septets: 1 instead of 2:
#      changed, saves 1.
# gsm7 5 messages, 5 + 1 + 1 = 7 segments; ucs2 2 messages (3, 5), 1 + 2 = 3; 10 in
# all; 2 messages changed, 12 - 10 = 2 segments saved.
LATIN = {"messages": 7, "segments": 10, "gsm7": (5, 7), "ucs2": (2, 3), "largest": (2, 2)}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # Message 2 of the file goes to an address the platform refuses.
    with Emulator(speed=2000.0, password=PASSWORD, deny_addresses=["79030000001"]) as emulator:
        yield emulator


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HPGFAST_URL", "HPGFAST_LOGIN", "HPGFAST_PASSWORD", "HPGFAST_PASSWORD_FILE",
                 "HPGFAST_SUBJECT", "HPGFAST_MAX_REQUEST_BYTES", "HPGFAST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, clean_env: None, emu: Emulator) -> Emulator:
    monkeypatch.setenv("HPGFAST_URL", emu.url)
    monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
    monkeypatch.setenv("HPGFAST_PASSWORD", PASSWORD)
    return emu


def _file(path: Path, texts: list[str] = TEXTS) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["address", "text", "subject"])
        for i, text in enumerate(texts):
            w.writerow([f"7903{i:07d}", text, "ACME"])
    return path


def _dry(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["send", "--dry-run", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _check(figures: dict, expected: dict) -> None:
    assert figures["messages"] == expected["messages"]
    assert figures["segments"] == expected["segments"]
    for enc in ("gsm7", "ucs2"):
        got = figures["by_encoding"][enc]
        assert (got["messages"], got["segments"]) == expected[enc]
    assert (figures["largest"]["segments"], figures["largest"]["line"]) == expected["largest"]


def test_dry_run_counts_the_file_as_worked_out_by_hand(
    clean_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_file(tmp_path / "m.csv"))
    plain = _dry(capsys, "--file", path)
    _check(plain, PLAIN)
    assert plain["transliterate"] is False and "segments_saved" not in plain
    # Some 3 KB of percent-encoded text fit one 8 KiB request; at most 3 messages a
    # request: 3 + 3 + 1 = 3 requests.
    assert plain["requests"] == 1 and plain["max_request_bytes"] == 8192
    assert _dry(capsys, "--file", path, "--max-batch", "3")["requests"] == 3

    latin = _dry(capsys, "--file", path, "--transliterate")
    _check(latin, LATIN)
    assert latin["transliterated"] == 2
    assert latin["segments_without_transliteration"] == 12
    assert latin["segments_saved"] == 2

    # The table says the same, and nothing needed a URL or a password.
    assert main(["send", "--dry-run", "--file", path, "--transliterate"]) == 0
    out = capsys.readouterr().out
    assert "nothing sent" in out
    lines = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()
             if len(line.split()) > 1}
    assert lines["segments 10"]
    assert "segments saved" in out and " 2  of 12" in out


def test_dry_run_requests_are_the_clients(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With --url and --login the head is the client's own (the password is as long as
    # the one assumed): the dry run's count is the number of requests a send makes.
    path = str(_file(tmp_path / "m.csv", TEXTS * 3))
    figures = _dry(capsys, "--file", path, "--max-request-bytes", "1500")
    assert figures["messages"] == 21 and figures["segments"] == 36
    assert figures["requests"] > 3  # 1500 bytes hold a few messages, not 21
    assert env.requests["send"] == 0  # a dry run sends nothing
    assert main(["send", "--file", path, "--max-request-bytes", "1500", "-q"]) == 1
    capsys.readouterr()
    assert env.requests["send"] == figures["requests"]


def test_dry_run_input_errors_name_the_line(
    clean_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("address,text,subject\n79031111111,Hello,ACME\n79032222222,,ACME\n",
                    encoding="utf-8")
    assert main(["send", "--dry-run", "--file", str(path)]) == 2
    assert f"{path}:3" in capsys.readouterr().err
    # A URL and credentials that leave no room for a message: a usage error.
    good = str(_file(tmp_path / "m.csv"))
    assert main(["send", "--dry-run", "--file", good, "--max-request-bytes", "200"]) == 2
    assert "no room" in capsys.readouterr().err


@pytest.mark.parametrize("transliterate", [False, True])
def test_report_totals_the_journals_segments(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], transliterate: bool
) -> None:
    # Message 2 goes to an address the platform refuses: its 2 segments are rejected,
    # not billed.
    expected = LATIN if transliterate else PLAIN
    path = str(_file(tmp_path / "m.csv"))
    db = str(tmp_path / "run.db")
    flags = ["--transliterate"] if transliterate else []
    assert main(["send", "--file", path, "--journal", db, "-q", *flags]) == 1
    capsys.readouterr()

    assert main(["report", db, "--json"]) == 0
    costs = json.loads(capsys.readouterr().out)["costs"]
    assert (costs["messages"], costs["segments"]) == (expected["messages"], expected["segments"])
    for enc in ("gsm7", "ucs2"):
        got = costs["by_encoding"][enc]
        assert (got["messages"], got["segments"]) == expected[enc]
    assert costs["by_state"]["rejected"] == {"messages": 1, "segments": 2}
    billed = expected["segments"] - 2
    assert costs["by_state"]["accepted"] == {"messages": 6, "segments": billed}
    assert costs["transliterated"] == (2 if transliterate else 0)

    # What went out is what was counted: the platform saw the Latin texts.
    sent = {e.address: e.text for e in env.ledger.messages()}
    assert (sent["79030000006"] != RUSSIAN) is transliterate
    assert (sent["79030000003"] == "ia" * 71) is transliterate

    assert main(["report", db]) == 0
    out = capsys.readouterr().out
    assert f"{billed:,} segments accepted: what the platform bills" in out

    out_csv = tmp_path / "rows.csv"
    assert main(["report", db, "--csv", str(out_csv)]) == 0
    capsys.readouterr()
    with open(out_csv, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["segments"]) for r in rows) == expected["segments"]
    assert sum(int(r["segments"]) for r in rows if r["state"] == "accepted") == billed
    assert [r["encoding"] for r in rows[:2]] == ["gsm7", "gsm7"]
    assert rows[3]["transliterated"] == ("1" if transliterate else "0")


def test_transliterate_is_part_of_the_fingerprint(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_file(tmp_path / "m.csv"))
    db = str(tmp_path / "run.db")
    assert main(["send", "--file", path, "--journal", db, "-q", "--chunk", "3",
                 "--max-batch", "3"]) == 1  # message 2 rejected
    capsys.readouterr()
    # Resuming with --transliterate would send other texts than the journal counted.
    assert main(["send", "--file", path, "--journal", db, "-q", "--transliterate"]) == 2
    err = capsys.readouterr().err
    assert "transliterate" in err and "different input or settings" in err
    with Journal(db) as journal:
        assert "input:transliterate" not in journal.meta()
    # And the other way round.
    db2 = str(tmp_path / "run2.db")
    assert main(["send", "--file", path, "--journal", db2, "-q", "--transliterate"]) == 1
    capsys.readouterr()
    assert main(["send", "--file", path, "--journal", db2, "-q"]) == 2
    assert "transliterate" in capsys.readouterr().err
    with Journal(db2) as journal:
        assert journal.meta()["input:transliterate"] == "yes"
    # The same settings resume (nothing left to send; message 2 stays rejected).
    assert main(["send", "--file", path, "--journal", db2, "-q", "--transliterate"]) == 1


def test_a_rebound_journal_counts_only_its_new_input(tmp_path: Path) -> None:
    # bind() empties a journal whose input changed before anything was sent; the
    # segment counts of the old input go with it.
    from hpgfast import Message

    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"input_sha256": "old"})
        journal.load((i, Message(f"7903{i:07d}", "я" * 71, "ACME")) for i in range(1, 4))
        assert journal.cost_totals()["segments"] == 3 * 2  # 71 units: 2 segments each
        journal.bind({"input_sha256": "new"})
        journal.load([(1, Message("79030000001", "я" * 71, "ACME"))], transliterate=True)
        totals = journal.cost_totals()
        # "ia" * 71: 142 septets, 1 segment, counted as sent (transliterated).
        assert (totals["messages"], totals["segments"], totals["transliterated"]) == (1, 1, 1)
        assert totals["by_encoding"] == {"gsm7": {"messages": 1, "segments": 1}}
        assert totals["by_state"]["pending"] == {"messages": 1, "segments": 1}
