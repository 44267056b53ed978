"""The client against replies seen in the field, over real HTTP.

Each test plays one shape with the emulator and asserts every message's outcome
and, through the ledger, what reached the platform. The numbers in the test names
follow the cases of docs/outcomes.md's table.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hpgfast import (
    AccountError,
    AuthError,
    Client,
    Code,
    Message,
    ProtocolError,
    StatusResult,
)
from hpgfast.emulator import Emulator, Fault, Faults
from ledger_checks import assert_truthful

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")

GOOD = "79031234560"


def numbered(n: int, *, start: int = 0) -> list[Message]:
    return [Message(f"7903{i:07d}", f"field text #{i}") for i in range(start, start + n)]


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=None) as emulator:
        yield emulator


def codes(results: list[Any]) -> list[str]:
    return [r.code for r in results]


# -- 1. a reply of one code-only line speaks for the whole request -------------------------


@pytest.mark.parametrize(
    ("code", "count", "expected"),
    [
        ("error-system", 3, Code.UNKNOWN),
        ("error-nobody-knows", 3, Code.UNKNOWN),
        ("ok", 3, Code.UNKNOWN),
        ("error-syntax", 3, Code.NOT_SENT),
        ("error-address-format", 3, Code.UNKNOWN),
        ("error-address-format", 1, "error-address-format"),
    ],
)
def test_1_code_only_line(code: str, count: int, expected: str) -> None:
    with Emulator(speed=None, faults={"code_only": Fault(schedule={1}, code=code)}) as emu:
        messages = numbered(count)
        with client_for(emu) as client:
            results = client.send(messages)
            assert codes(results) == [expected] * count
            assert all(r.error.code == code for r in results)  # the code is kept
            assert client.send(numbered(1, start=50))[0].ok  # the client goes on
        assert len(emu.ledger) == 1
        assert_truthful(emu, messages, results)


# -- 2. account stops: nothing starts after them ---------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
def test_2_balance_runs_out_and_the_batch_stops(concurrency: int) -> None:
    with Emulator(speed=None, balance=7) as emu:
        messages = numbered(50)
        with client_for(emu, max_batch=5, concurrency=concurrency) as client:
            with pytest.raises(AccountError) as info:
                client.send(messages)
        assert info.value.code == Code.ERROR_INSUFFICIENT_BALANCE
        results = info.value.results  # type: ignore[attr-defined]
        assert len(emu.ledger) == 7
        assert codes(results).count(Code.OK) == 7
        assert set(codes(results)) <= {Code.OK, Code.ERROR_INSUFFICIENT_BALANCE, Code.NOT_SENT}
        # At concurrency 1 exactly the two requests up to the one that ran out went out.
        if concurrency == 1:
            assert emu.requests["send"] == 2
        assert emu.requests["send"] <= 2 + concurrency  # no request starts after a stop
        assert_truthful(emu, messages, results)


@pytest.mark.parametrize("state", ["error-account-locked", "error-system-blocked"])
def test_2_locked_account_stops_at_the_first_request(state: str) -> None:
    with Emulator(speed=None, account_state=state) as emu:
        with client_for(emu, max_batch=5) as client:
            with pytest.raises(AccountError) as info:
                client.send(numbered(50))
            assert not isinstance(info.value, AuthError) and info.value.code == state
            assert codes(info.value.results) == [Code.NOT_SENT] * 50  # type: ignore[attr-defined]
            assert emu.requests["send"] == 1
            with pytest.raises(AccountError):
                client.status(["1001", "1002"])


# -- 3. one odd line costs only its own message ------------------------------------------


def test_3_extra_fields_and_reasons_with_semicolons() -> None:
    with Emulator(speed=None, send_extra="2", semicolon_reasons=True) as emu:
        messages = [Message("79031234566", "to be undelivered"), *numbered(3)]
        with client_for(emu) as client:
            results = client.send(messages)
            assert codes(results) == [Code.OK] * 4
            assert [r.extra for r in results] == ["2"] * 4
            emu.advance(10)
            statuses = client.status([r.provider_id for r in results])
        assert statuses[0].status == "undelivered" and ";" in statuses[0].reason
        assert all(s.ok for s in statuses)


def test_3_a_garbage_line_costs_only_its_message() -> None:
    body = b"ok;0;1001\n<html>not a line</html>\nok;1;1002\n"
    faults = Faults(raw_reply=Fault(schedule={1}, body=body, variant="apply"))
    with Emulator(speed=None, faults=faults) as emu:
        with client_for(emu, client_ids=False) as client:
            results = client.send(numbered(3))
    assert codes(results) == [Code.OK, Code.OK, Code.UNKNOWN]
    assert "not a line" in str(results[2].error)


# -- 4. missing fields ---------------------------------------------------------------------


def test_4_no_client_id_for_one_message_and_no_provider_id() -> None:
    faults = Faults(raw_reply=Fault(schedule={1}, body=b"ok;;5001\n", variant="apply"))
    with Emulator(speed=None, faults=faults) as emu:
        with client_for(emu, client_ids=False) as client:
            (one,) = client.send(numbered(1))
            assert one.ok and one.provider_id == "5001"
            emu.faults.raw_reply = Fault(schedule={2}, body=b"ok;0;\n", variant="apply")
            (two,) = client.send(numbered(1, start=1))
            assert two.ok and two.provider_id is None  # accepted: never resent
            statuses = client.status([r.provider_id for r in (one, two)])  # type: ignore[misc]
    assert statuses[1].code == Code.NOT_SENT and statuses[1].provider_id is None
    assert "without a provider id" in str(statuses[1].error)  # type: ignore[attr-defined]


# -- 5. two lines for one message -------------------------------------------------------------


def test_5_conflicting_lines_make_the_message_unknown() -> None:
    body = b"ok;0;1001\nerror-address-format;0;\nok;1;1002\n"
    faults = Faults(raw_reply=Fault(schedule={1}, body=body, variant="apply"))
    with Emulator(speed=None, faults=faults) as emu:
        with client_for(emu, client_ids=False) as client:
            results = client.send(numbered(2))
    assert codes(results) == [Code.UNKNOWN, Code.OK]
    assert "ok;0;1001" in str(results[0].error)
    assert "error-address-format;0;" in str(results[0].error)


# -- 6. statuses seen in the field ---------------------------------------------------------


def test_6_field_statuses_in_upper_case_are_final() -> None:
    with Emulator(speed=None, status_case="upper", field_statuses=True) as emu:
        messages = [Message(f"790312345{d}{d}", f"status digit {d}") for d in range(10)]
        with client_for(emu) as client:
            results = client.send(messages)
            emu.advance(100)
            statuses = client.status([r.provider_id for r in results])
            finals = [client.is_final(s) for s in statuses]
    assert all(s.status == s.status.upper() for s in statuses)
    assert {s.status for s in statuses} >= {"DELIVERED", "EXPIRED", "VP_EXPIRED", "REJECTED"}
    assert finals == [s.final for s in statuses]
    assert all(finals)


def test_6_final_statuses_are_a_setting(emu: Emulator) -> None:
    with client_for(emu, final_statuses={"delivered"}) as client:
        results = client.send(numbered(1))
        emu.advance(100)
        (status,) = client.status([results[0].provider_id])  # type: ignore[list-item]
        assert client.is_final(status)
        assert not client.is_final(StatusResult("ok", status.provider_id, "undelivered"))


# -- 7. HTTP 429 -----------------------------------------------------------------------------------


def test_7_429_is_sent_again_after_retry_after_and_never_doubles() -> None:
    faults = Faults(http_429=Fault(schedule={2}, seconds=1))
    with Emulator(speed=None, faults=faults) as emu:
        messages = numbered(20)
        with client_for(emu, max_batch=5) as client:
            results = client.send(messages)
        assert codes(results) == [Code.OK] * 20
        assert emu.requests["send"] == 5  # four requests and one sent again
        assert_truthful(emu, messages, results)


def test_7_retry_on_429_false_is_unknown_and_never_repeated() -> None:
    with Emulator(speed=None, faults={"http_429": Fault(schedule={1})}) as emu:
        with client_for(emu, retry_on_429=False) as client:
            results = client.send(numbered(3))
        assert codes(results) == [Code.UNKNOWN] * 3
        assert emu.requests["send"] == 1


def test_7_a_429_that_the_platform_processed_is_reported_accepted() -> None:
    # A gateway answered 429 though the platform took the request; the platform
    # enforces unique clientIds, so the resend meets error-id-not-unique: accepted.
    faults = Faults(http_429=Fault(schedule={1}, variant="apply"))
    with Emulator(speed=None, unique_client_ids=True, faults=faults) as emu:
        messages = numbered(3)
        with client_for(emu) as client:
            results = client.send(messages)
        assert codes(results) == [Code.OK] * 3
        assert all(r.provider_id is None for r in results)  # not known: taken earlier
        assert len(emu.ledger) == 3
        assert_truthful(emu, messages, results)


def test_7_503_stays_unknown_for_send(emu: Emulator) -> None:
    emu.faults.http_503 = Fault(schedule={1}, variant="apply")
    with client_for(emu) as client:
        results = client.send(numbered(2))
    assert codes(results) == [Code.UNKNOWN] * 2
    assert emu.requests["send"] == 1


# -- 8. a reply that trickles in ----------------------------------------------------------


def test_8_a_trickling_reply_ends_at_the_request_deadline() -> None:
    faults = Faults(trickle=Fault(schedule={1}, seconds=0.3, limit=30))
    with Emulator(speed=None, faults=faults) as emu:
        with client_for(emu, timeout=1.0, request_deadline=1.5) as client:
            started = time.monotonic()
            results = client.send(numbered(2))
            took = time.monotonic() - started
            assert codes(results) == [Code.UNKNOWN] * 2
            assert "request_deadline" in str(results[0].error)
            assert client.send(numbered(1, start=9))[0].ok  # a fresh connection serves
    # Within the deadline plus one read timeout, not the trickle's 30 s.
    assert took < 1.5 + 1.0 + 1.0


# -- 9. stale bytes on a keep-alive connection --------------------------------------------


def test_9_late_index_lines_never_match_made_client_ids() -> None:
    # After a clean reply the emulator writes a whole stale response whose lines
    # ("ok;0;999999", "ok;1;999998") would match a request that sent no clientIds.
    faults = Faults(late_bytes=Fault(rate=1.0, seconds=0.0))
    with Emulator(speed=None, faults=faults) as emu:
        messages = numbered(40)
        with client_for(emu, max_batch=2) as client:
            results = client.send(messages)
        assert Code.OK in codes(results)
        assert "999999" not in {r.provider_id for r in results}
        assert set(codes(results)) <= {Code.OK, Code.UNKNOWN}
        assert_truthful(emu, messages, results)


@pytest.mark.parametrize(
    "late",
    [
        Fault(schedule={1}, variant="429", seconds=0.05),
        Fault(schedule={1}, variant="line", code="error-insufficient-balance", seconds=0.05),
    ],
    ids=["late-429", "late-code-only-line"],
)
def test_9_after_a_reply_that_is_not_clean_the_connection_is_closed(late: Fault) -> None:
    # Request 1 is answered with a code-only error-system (unknown) and then stale
    # bytes; request 2 must go out on a fresh connection and never read them.
    faults = Faults(code_only=Fault(schedule={1}, code="error-system"), late_bytes=late)
    with Emulator(speed=None, faults=faults) as emu:
        messages = numbered(4)
        with client_for(emu, max_batch=2) as client:
            results = client.send(messages)
        assert codes(results) == [Code.UNKNOWN, Code.UNKNOWN, Code.OK, Code.OK]
        assert emu.requests["send"] == 2
        assert_truthful(emu, messages, results)


# -- clientIds the platform ignores or cuts ------------------------------------------------


def test_ignored_client_ids_are_unknown_with_a_warning_naming_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Emulator(speed=None, client_ids="ignore") as emu:
        messages = numbered(3)
        with client_for(emu) as client:
            results = client.send(messages)
        assert codes(results) == [Code.UNKNOWN] * 3
        assert any("client_ids=False" in r.getMessage() for r in caplog.records)
        with client_for(emu, client_ids=False) as client:
            again = client.send(numbered(3, start=3))
        assert codes(again) == [Code.OK] * 3


def test_cut_client_ids_are_unknown_and_the_lines_kept() -> None:
    with Emulator(speed=None, max_client_id_length=12) as emu:
        with client_for(emu) as client:
            results = client.send(numbered(2))
    assert codes(results) == [Code.UNKNOWN] * 2
    assert isinstance(results[0].error, ProtocolError)
    assert "match nothing sent" in str(results[0].error)


# -- the client-side rate limit ---------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
def test_max_rate_paces_the_batch(concurrency: int) -> None:
    with Emulator(speed=None) as emu:
        messages = numbered(10_000)
        # The same send without a limit, in the same conditions: what the work itself
        # takes on this machine now (a loaded machine stretches it), so that the upper
        # bound below tests the pacing, not the machine.
        with client_for(emu, max_batch=100, concurrency=concurrency) as client:
            started = time.monotonic()
            assert all(r.ok for r in client.send(messages))
            work = time.monotonic() - started
        with client_for(emu, max_rate=2000, max_batch=100, concurrency=concurrency) as client:
            started = time.monotonic()
            results = client.send(messages)
            took = time.monotonic() - started
        assert all(r.ok for r in results)
    # The window asked for: 10,000 messages at 2,000 a second, a burst of one request;
    # the pacing waits overlap the work, so it never costs the window and the work both.
    assert 4.75 <= took <= 5.0 + max(work, 1.0), (took, work)


# -- prefork workers ---------------------------------------------------------------------------


def test_a_forked_worker_sends_ids_of_its_own() -> None:
    with Emulator(speed=None, unique_client_ids=True) as emu:
        with client_for(emu) as client:
            assert all(r.ok for r in client.send(numbered(3)))
            pid = os.fork()
            if pid == 0:  # the worker: the same client object, after fork
                try:
                    ok = all(r.ok for r in client.send(numbered(3, start=3)))
                finally:
                    os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert all(r.ok for r in client.send(numbered(3, start=6)))
        ids = [e.client_id for e in emu.ledger]
        assert len(ids) == 9 and len(set(ids)) == 9
        assert len({cid[:11] for cid in ids}) == 2  # two processes, two random parts


def test_warnings_are_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    body = b"ok;0;1001\nok;7;1099\n"
    faults = Faults(raw_reply=Fault(schedule={1}, body=body, variant="apply"))
    with Emulator(speed=None, faults=faults) as emu:
        with client_for(emu, client_ids=False) as client:
            results = client.send(numbered(2))
    assert codes(results) == [Code.OK, Code.UNKNOWN]
    assert "ok;7;1099" in str(results[1].error)  # kept so a person can reconcile
    assert any("ok;7;1099" in r.getMessage() for r in caplog.records)


# -- transliteration ------------------------------------------------------------------------


def test_transliterate_only_where_it_saves_segments(emu: Emulator) -> None:
    long_russian = "Ваш заказ доставлен в пункт выдачи, код получения 4821, срок хранения 3 дня"
    messages = [
        Message("79031234561", long_russian),  # 76 UCS-2 units: 2 SMS; in Latin 1
        Message("79031234562", "Привет"),  # 1 SMS either way: kept
        Message("79031234563", long_russian + " 😊"),  # the emoji keeps it UCS-2: kept
        Message("79031234564", "Plain ASCII text"),
    ]
    with client_for(emu, transliterate=True) as client:
        results = client.send(messages)
    assert all(r.ok for r in results)
    sent = {e.address: e.text for e in emu.ledger}
    assert sent["79031234561"].startswith("Vash zakaz dostavlen")
    assert sent["79031234562"] == "Привет"
    assert sent["79031234563"] == messages[2].text
    assert sent["79031234564"] == "Plain ASCII text"
