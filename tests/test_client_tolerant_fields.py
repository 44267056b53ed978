"""A field that cannot be read costs only that field, over real HTTP.

The emulator plays each shape seen in the field (a STATUS time in ISO-8601 or no
time at all; a SEND rejection's description and a STATUS reason in windows-1251,
with and without the charset in Content-Type), and both clients must read every
line: each message's outcome, the requests the server saw, and no SEND repeated.
The rows of docs/outcomes.md are 39 to 42.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hpgfast import Client, Code, Message
from hpgfast.cli import main
from hpgfast.emulator import Emulator, Fault
from ledger_checks import assert_truthful

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")

DESCRIPTION = "Неверный формат адреса"
REASON = "абонент недоступен"


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


def messages(digits: str) -> list[Message]:
    """A message per digit: the address's last digit picks its lifecycle."""
    return [Message(f"790312345{i:01d}{d}", f"text #{i}") for i, d in enumerate(digits)]


@pytest.mark.parametrize("style", ["iso_z", "iso_offset", "garbage"])
def test_status_lines_with_another_date_shape_are_read(style: str) -> None:
    sent = messages("0166")
    with Emulator(speed=None, date_style=style) as emu:
        with client_for(emu) as client:
            results = client.send(sent)
            assert [r.code for r in results] == [Code.OK] * 4
            emu.advance(10)
            statuses = client.status([r.provider_id for r in results])
        assert emu.requests["send"] == 1 and emu.requests["status"] == 1
        assert_truthful(emu, sent, results)
    # Every line read: the status decides, the time is read or None, the line kept.
    assert [s.code for s in statuses] == [Code.OK] * 4
    assert [s.status for s in statuses] == ["delivered", "delivered", "undelivered", "undelivered"]
    assert all(s.final for s in statuses)
    assert statuses[2].reason == "unknown-subscriber"
    assert all(s.raw is not None and s.raw.startswith(b"ok;") for s in statuses)
    if style == "garbage":
        assert all(s.time is None for s in statuses)
    else:
        offset = timedelta(0) if style == "iso_z" else timedelta(hours=3)
        assert all(s.time is not None and s.time.utcoffset() == offset for s in statuses)


def test_an_iso_time_is_given_in_the_platform_zone() -> None:
    moscow = timezone(timedelta(hours=3))
    with Emulator(speed=None, date_style="iso_z") as emu:
        with client_for(emu, status_tz=moscow) as client:
            results = client.send(messages("0"))
            emu.advance(10)
            [status] = client.status([results[0].provider_id])
        naive = emu.status(results[0].provider_id)[1]  # type: ignore[index,arg-type]
        assert emu.requests["send"] == 1 and emu.requests["status"] == 1
    assert status.time == naive.replace(tzinfo=timezone.utc)
    assert status.time is not None and status.time.tzinfo is moscow


_PLUS3 = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("style", "zone", "second"),
    [
        ("iso_basic", _PLUS3, True),
        ("iso_week", timezone.utc, True),
        ("iso_ordinal", timezone.utc, True),
        ("iso_minutes", None, False),
        ("padded", None, True),
    ],
)
def test_status_lines_with_every_iso_form_are_read(
    style: str, zone: Any, second: bool
) -> None:
    # The time each line says, in the form the emulator writes it: the same moment as
    # the emulator's own (naive, wall-clock) time, in the zone the form names.
    sent = messages("0166")
    with Emulator(speed=None, date_style=style) as emu:
        with client_for(emu) as client:
            results = client.send(sent)
            assert [r.code for r in results] == [Code.OK] * 4
            emu.advance(10)
            statuses = client.status([r.provider_id for r in results])
        naive = [emu.status(r.provider_id)[1] for r in results]  # type: ignore[index,arg-type]
        assert emu.requests["send"] == 1 and emu.requests["status"] == 1
        assert_truthful(emu, sent, results)
    assert [s.code for s in statuses] == [Code.OK] * 4
    assert [s.status for s in statuses] == ["delivered", "delivered", "undelivered", "undelivered"]
    assert all(s.final for s in statuses)
    expected = [t if second else t.replace(second=0) for t in naive]
    assert [s.time for s in statuses] == [t.replace(tzinfo=zone) for t in expected]
    assert all(s.time is not None and s.time.tzinfo == zone for s in statuses)
    assert all(s.raw is not None and s.raw.startswith(b"ok;") for s in statuses)


def test_status_times_at_the_edges_of_iso_8601() -> None:
    # 24:00 (the next day), a leap second (clamped), U+2212 as the minus, HPG's shape
    # with a trailing space, and an expanded year (no datetime: None, the line kept).
    times = [
        b"2024-05-01T24:00:00",
        b"2016-12-31T23:59:60Z",
        "2024-05-01T10:00:00\u221203:00".encode(),
        b"2012.03.15 19:53:14 ",
        b"+12012-05-01T10:00:00Z",
    ]
    expected = [
        datetime(2024, 5, 2),
        datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        datetime(2024, 5, 1, 10, tzinfo=timezone(-timedelta(hours=3))),
        datetime(2012, 3, 15, 19, 53, 14),
        None,
    ]
    sent = messages("00000")
    with Emulator(speed=None) as emu:
        with client_for(emu) as client:
            results = client.send(sent)
            assert [r.code for r in results] == [Code.OK] * 5
            ids = [r.provider_id for r in results]
            body = b"".join(
                b"ok;%s;delivered;%s;\n" % (pid.encode(), when)  # type: ignore[union-attr]
                for pid, when in zip(ids, times)
            )
            emu.faults.raw_reply = Fault(schedule=frozenset({2}), body=body)
            statuses = client.status(ids)  # type: ignore[arg-type]
        assert emu.requests["send"] == 1 and emu.requests["status"] == 1
        assert_truthful(emu, sent, results)
    assert [s.status for s in statuses] == ["delivered"] * 5
    assert [s.provider_id for s in statuses] == ids
    assert all(s.final for s in statuses)
    assert [s.time for s in statuses] == expected
    assert [s.time.utcoffset() if s.time else None for s in statuses] == [
        e.utcoffset() if e else None for e in expected
    ]
    assert all(s.raw is not None for s in statuses)


@pytest.mark.parametrize("declared", [True, False])
def test_send_rejection_with_a_windows_1251_description(declared: bool) -> None:
    content_type = "text/plain; charset=windows-1251" if declared else "text/plain"
    sent = [*messages("00"), Message("12345", "a bad address")]
    with Emulator(
        speed=None,
        reject_description=DESCRIPTION,
        text_charset="windows-1251",
        content_type=content_type,
    ) as emu:
        with client_for(emu) as client:
            results = client.send(sent)
        assert emu.requests["send"] == 1
        assert_truthful(emu, sent, results)
    # Before: the line was unreadable and the rejection became unknown.
    assert [r.code for r in results] == [Code.OK, Code.OK, Code.ERROR_ADDRESS_FORMAT]
    rejected = results[2]
    assert rejected.raw == b"error-address-format;" + rejected.client_id.encode() + (
        b";;" + DESCRIPTION.encode("cp1251")
    )
    if declared:
        assert rejected.extra == DESCRIPTION
    else:
        assert rejected.extra == DESCRIPTION.encode("cp1251").decode("utf-8", "replace")
    assert results[0].raw is None and results[0].extra is None


@pytest.mark.parametrize("declared", [True, False])
def test_status_undelivered_with_a_windows_1251_reason(declared: bool) -> None:
    content_type = "text/plain; charset=windows-1251" if declared else "text/plain"
    sent = messages("06")
    with Emulator(
        speed=None,
        reasons={"6": REASON},
        text_charset="windows-1251",
        content_type=content_type,
    ) as emu:
        with client_for(emu) as client:
            results = client.send(sent)
            emu.advance(10)
            statuses = client.status([r.provider_id for r in results])
        assert emu.requests["send"] == 1 and emu.requests["status"] == 1
        assert_truthful(emu, sent, results)
    # Before: the line was unreadable and the id's outcome unknown.
    assert [(s.code, s.status) for s in statuses] == [
        (Code.OK, "delivered"),
        (Code.OK, "undelivered"),
    ]
    assert statuses[1].final and isinstance(statuses[1].time, datetime)
    assert statuses[0].raw is None
    assert statuses[1].raw is not None and statuses[1].raw.endswith(REASON.encode("cp1251"))
    expected = REASON if declared else REASON.encode("cp1251").decode("utf-8", "replace")
    assert statuses[1].reason == expected


@pytest.mark.sync_only
def test_status_follow_settles_an_id_whose_date_is_iso(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(speed=2000.0, date_style="iso_z") as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", emu.login)
        monkeypatch.setenv("HPGFAST_PASSWORD", emu.password)
        for name in ("HPGFAST_PASSWORD_FILE", "HPGFAST_SUBJECT", "HPGFAST_CONCURRENCY"):
            monkeypatch.delenv(name, raising=False)
        assert main(["send", "--to", "79031111110", "--text", "x", "--subject", "ACME",
                     "--json"]) == 0
        pid = json.loads(capsys.readouterr().out)["provider_id"]
        code = main(["status", pid, "--follow", "--interval", "0.05", "--deadline", "20",
                     "--json"])
        out = capsys.readouterr().out
        assert emu.requests["send"] == 1
    # Before: the line was unreadable, the id unknown, and --follow never settled it.
    assert code == 0, out
    assert "delivered" in out and "unknown" not in out


@pytest.mark.sync_only
def test_status_follow_with_a_journal_records_an_iso_date_and_a_windows_1251_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    db = tmp_path / "run.db"
    with Emulator(
        speed=2000.0,
        date_style="iso_offset",
        reasons={"6": REASON},
        text_charset="windows-1251",
        content_type="text/plain; charset=windows-1251",
    ) as emu:
        monkeypatch.setenv("HPGFAST_URL", emu.url)
        monkeypatch.setenv("HPGFAST_LOGIN", emu.login)
        monkeypatch.setenv("HPGFAST_PASSWORD", emu.password)
        for name in ("HPGFAST_PASSWORD_FILE", "HPGFAST_SUBJECT", "HPGFAST_CONCURRENCY"):
            monkeypatch.delenv(name, raising=False)
        path = tmp_path / "messages.jsonl"
        path.write_text("".join(
            json.dumps({"address": address, "text": f"x{address}"}) + "\n"
            for address in ("79031111110", "79031111116")
        ), encoding="utf-8")
        assert main(["send", "--file", str(path), "--journal", str(db), "--subject", "ACME",
                     "--json"]) == 0
        capsys.readouterr()
        code = main(["status", "--journal", str(db), "--follow", "--interval", "0.05",
                     "--deadline", "20", "--json"])
        out = capsys.readouterr().out
        assert emu.requests["send"] == 1 and len(emu.ledger) == 2
    assert code == 0, out
    assert json.loads(out)["open"] == 0
    assert main(["report", str(db), "--csv", str(tmp_path / "rows.csv")]) == 0
    rows = (tmp_path / "rows.csv").read_text(encoding="utf-8")
    assert "undelivered" in rows and REASON in rows and "delivered" in rows
