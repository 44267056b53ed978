"""``Retry-After`` in every form a gateway sends: seconds, an HTTP-date, nonsense.

The unit tests read the header through ``retry_after_seconds`` (the rules read no
clock: the wall-clock time of the reply is passed in); the others run over real
HTTP with both clients (see conftest.transport), asserting each message's outcome,
the number of requests the server saw, and (through the ledger) that no SEND was
repeated.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, Optional

import pytest

from hpgfast import Client, Code, Message
from hpgfast.core._retry_after import retry_after_seconds
from hpgfast.emulator import Emulator, Fault
from ledger_checks import assert_truthful

PER_REQUEST = 10
WALL = 1_790_997_600.0  # a fixed wall-clock time for the unit tests: 2026-10-03 03:20:00 UTC


def http_date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


# -- the header, read --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("\t7", 7.0),
        ("0", 0.0),
        ("007", 7.0),
        ("86400", 60.0),  # capped
        ("100000000000", 60.0),  # more than nine digits: capped, not ignored
        ("99999999999999999999999", 60.0),
        ("9" * 5000, 60.0),  # beyond int()'s digit limit
        ("3.5", 4.0),  # not delay-seconds, but a pause was asked for: rounded up
        ("0.2", 1.0),
        ("2.0", 2.0),
        ("2, 2", 2.0),  # the header twice, joined by a proxy
        ("3,5", 3.0),
    ],
)
def test_delay_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, 60.0, WALL) == seconds
    assert retry_after_seconds(value, 60.0) == seconds  # no clock needed for seconds


@pytest.mark.parametrize(
    "value",
    ["", " ", "-1", "+5", "-0", "soon", "1e3", "0x10", "٣", "5 s", ".5", "5.", "1.2.3",
     "inf", "nan", "Wed, 32 Oct 2026 07:28:00 GMT", "Wed, 21 Foo 2026 07:28:00 GMT",
     "21 Oct", "Wed, 21 Oct 2026 25:61:00 GMT", "Sat, 03 Oct 2026 03:20:30 XYZ",
     "Sat, 03 Oct 2026 03:20:30 +9999", "Sat, 03 Oct 0000 03:20:30 GMT",
     "Sat, 03 Oct 2026 03:20 GMT", "Sat, 03 Oct 2026", "Sat, 03 Oct 2026 03:20:30 GMT junk",
     "03 Oct 2026 03:20:30 GMT, 03 Oct 2026 03:20:30 GMT", "2, soon", ", 2", "2,"],
)
def test_unreadable_is_as_if_absent(value: str) -> None:
    assert retry_after_seconds(value, 60.0, WALL) is None
    assert retry_after_seconds(None, 60.0, WALL) is None


def test_http_date_forms() -> None:
    ahead = WALL + 30  # 2026-10-03 03:20:30 UTC, a Saturday
    for value in [
        "Sat, 03 Oct 2026 03:20:30 GMT",  # IMF-fixdate
        "  Sat, 03 Oct 2026 03:20:30 GMT\t",  # whitespace around it
        "Saturday, 03-Oct-26 03:20:30 GMT",  # obsolete RFC 850
        "Sat Oct  3 03:20:30 2026",  # obsolete asctime (no zone: GMT)
        "Sat, 03 Oct 2026 03:20:30",  # a date without GMT: HTTP-dates are GMT
        "Sat, 03 Oct 2026 03:20:30 UTC",
        "Sat, 03 Oct 2026 05:20:30 +0200",  # an offset, read as such
        "sat, 03 oct 2026 03:20:30 gmt",
        "03 Oct 2026 03:20:30 GMT",  # no weekday
        "Sat,  3 Oct 2026 03:20:30 GMT",
        "Sat, 03-Oct-2026 03:20:30 GMT",
        http_date(ahead),
    ]:
        assert retry_after_seconds(value, 60.0, WALL) == pytest.approx(ahead - WALL), value


def test_http_date_is_capped_and_a_past_one_is_no_wait() -> None:
    assert retry_after_seconds(http_date(WALL + 3600), 60.0, WALL) == 60.0
    assert retry_after_seconds(http_date(WALL + 2.5), 60.0, WALL) == pytest.approx(2.0)
    assert retry_after_seconds(http_date(WALL - 3600), 60.0, WALL) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 60.0, WALL) == 0.0
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", 60.0, WALL) == 0.0
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT", 60.0, WALL) == 60.0


def test_rfc_850_two_digit_year_is_within_fifty_years() -> None:
    # "94": 1994, not 2094 (more than 50 years ahead of 2026): long past, no wait.
    assert retry_after_seconds("Sunday, 06-Nov-94 08:49:37 GMT", 60.0, WALL) == 0.0
    # "76": 2076, within 50 years ahead: capped.
    assert retry_after_seconds("Sunday, 06-Nov-76 08:49:37 GMT", 60.0, WALL) == 60.0


def test_http_date_without_a_clock_is_unreadable() -> None:
    # The core reads no clock: a date means nothing without the reply's wall time.
    assert retry_after_seconds(http_date(WALL + 30), 60.0) is None


# -- over HTTP, both clients -------------------------------------------------------------------

#: Over both clients (sync, async): see conftest.transport.
over_both_clients = pytest.mark.usefixtures("transport")


def numbered(n: int) -> list[Message]:
    return [Message(f"7903{i:07d}", f"retry text #{i}") for i in range(n)]


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_batch", PER_REQUEST)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


def codes(results: list[Any]) -> list[str]:
    return [r.code for r in results]


def date_ahead(seconds: int) -> str:
    """An HTTP-date ``seconds`` ahead, from the next whole second (dates have no
    fraction): the wait it asks for is at least ``seconds - 1``."""
    return http_date(int(time.time()) + seconds)


def send_timed(emu: Emulator, messages: list[Message], **kw: Any) -> tuple[list[Any], float]:
    with client_for(emu, **kw) as client:
        started = time.monotonic()
        results = client.send(messages)
        return results, time.monotonic() - started


def status_timed(emu: Emulator, ids: list[str], **kw: Any) -> tuple[list[Any], float]:
    with client_for(emu, **kw) as client:
        started = time.monotonic()
        results = client.status(ids)
        return results, time.monotonic() - started


def sent_ids(emu: Emulator, n: int) -> list[str]:
    with client_for(emu) as client:
        results = client.send(numbered(n))
    assert codes(results) == [Code.OK] * n
    return [r.provider_id for r in results]


def following(emu: Emulator, *offsets: int) -> set[int]:
    seen = sum(emu.requests.values())
    return {seen + offset for offset in offsets}


@over_both_clients
def test_send_503_with_a_date_ahead_pauses_the_next_requests() -> None:
    unavailable = Fault(schedule={1}, status=503, headers={"Retry-After": date_ahead(3)},
                        body=b"busy\n")
    with Emulator(speed=None, faults={"raw_reply": unavailable}) as emu:
        messages = numbered(20)
        results, took = send_timed(emu, messages, retry_after_max=5)
        assert 1.5 <= took < 5  # the second request waited for the date
        assert codes(results) == [Code.UNKNOWN] * 10 + [Code.OK] * 10  # never repeated
        assert emu.requests["send"] == 2
        assert_truthful(emu, messages, results)


@over_both_clients
def test_status_503_with_a_date_ahead_is_repeated_no_sooner() -> None:
    with Emulator(speed=None) as emu:
        ids = sent_ids(emu, 3)
        emu.faults.raw_reply = Fault(
            schedule=following(emu, 1), status=503, headers={"Retry-After": date_ahead(3)}
        )
        results, took = status_timed(emu, ids, retry_after_max=5)
        assert 1.5 <= took < 5
        assert codes(results) == [Code.OK] * 3
        assert emu.requests["status"] == 2


@over_both_clients
def test_send_429_with_a_date_ahead_is_sent_again_after_the_date() -> None:
    too_many = Fault(schedule={1}, status=429, headers={"Retry-After": date_ahead(3)},
                     body=b"slow down\n")
    with Emulator(speed=None, faults={"raw_reply": too_many}) as emu:
        messages = numbered(10)
        results, took = send_timed(emu, messages, retry_after_max=5)
        assert 1.5 <= took < 5  # not the backoff (0.01 s)
        assert codes(results) == [Code.OK] * 10
        assert emu.requests["send"] == 2  # the 429 was sent again once
        assert_truthful(emu, messages, results)


@over_both_clients
@pytest.mark.parametrize("value", ["100000000000", "99999999999999999999999"])
def test_huge_delay_seconds_is_capped_not_ignored(value: str) -> None:
    unavailable = Fault(schedule={1}, status=503, headers={"Retry-After": value})
    with Emulator(speed=None, faults={"raw_reply": unavailable}) as emu:
        messages = numbered(20)
        results, took = send_timed(emu, messages, retry_after_max=1)
        assert 1.0 <= took < 5
        assert codes(results) == [Code.UNKNOWN] * 10 + [Code.OK] * 10
        assert emu.requests["send"] == 2
        assert_truthful(emu, messages, results)


@over_both_clients
@pytest.mark.parametrize("status", [503, 429])
def test_a_past_date_is_no_wait(status: int) -> None:
    past = Fault(schedule={1}, status=status,
                 headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    expected: Optional[list[str]] = None
    with Emulator(speed=None, faults={"raw_reply": past}) as emu:
        messages = numbered(20)
        results, took = send_timed(emu, messages, retry_after_max=5, backoff=2)
        assert took < 1.5  # neither a pause nor the backoff: the date has passed
        if status == 503:
            expected = [Code.UNKNOWN] * 10 + [Code.OK] * 10
            assert emu.requests["send"] == 2
        else:
            expected = [Code.OK] * 20
            assert emu.requests["send"] == 3
        assert codes(results) == expected
        assert_truthful(emu, messages, results)
