"""The emulator's field shapes over real loopback HTTP: balance, account stops, 429s,
code-only replies, field statuses, reasons with ``;``, extra fields, clientId modes,
trickling replies and stray late bytes.

Requests are built with ``urllib.parse.quote`` and sent with ``http.client`` or a raw
socket, never with hpgfast's codec. Every test checks what reached the ledger too.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

import pytest

from hpgfast.emulator import FIELD_LIFECYCLE, Emulator, Fault, Faults, Lifecycle
from hpgfast.emulator._cli import add_arguments, emulator_from_args
from hpgfast.emulator._lifecycle import Schedule, Timing, transitions

CREDS = "login=CLIENT&password=P%40ssw0rd"
PATH = "/CLIENT/connectorX/"
S, F, D = 1.0, 2.0, 60.0
DOTS = "%Y.%m.%d %H:%M:%S"


def send_target(*rows: Sequence[str], password: str = "P%40ssw0rd") -> str:
    """A SEND target for messages given as (address,), (address, clientId) or
    (address, clientId, text)."""
    parts = [f"login=CLIENT&password={password}"]
    for i, row in enumerate(rows):
        text = row[2] if len(row) > 2 else f"text {i}"
        parts.append(f"subject[{i}]=SUBJ&address[{i}]={row[0]}&text[{i}]={quote(text, safe='')}")
        if len(row) > 1 and row[1] is not None:
            parts.append(f"clientId[{i}]={quote(row[1], safe='')}")
    return f"{PATH}send?" + "&".join(parts)


def status_target(*ids: str) -> str:
    pairs = "&".join(f"providerId[{i}]={p}" for i, p in enumerate(ids))
    return f"{PATH}status?{CREDS}&{pairs}"


class Conn:
    """One keep-alive ``http.client`` connection to an emulator."""

    def __init__(self, emu: Emulator, timeout: float = 5.0) -> None:
        self.conn = http.client.HTTPConnection(emu.host, emu.port, timeout=timeout)

    def get(self, target: str) -> tuple[int, bytes, http.client.HTTPResponse]:
        self.conn.request("GET", target)
        response = self.conn.getresponse()
        return response.status, response.read(), response

    def body(self, target: str) -> bytes:
        status, body, _ = self.get(target)
        assert status == 200, body
        return body

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def conn_factory() -> Iterator[list[Conn]]:
    made: list[Conn] = []
    yield made
    for c in made:
        c.close()


def connect(made: list[Conn], emu: Emulator, timeout: float = 5.0) -> Conn:
    c = Conn(emu, timeout)
    made.append(c)
    return c


def ledger_ids(emu: Emulator) -> list[Optional[str]]:
    return [e.client_id for e in emu.ledger]


GOOD = "79031111110"


# -- 1. balance ------------------------------------------------------------------------


def test_balance_runs_out_mid_request_then_whole_request(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, balance=2) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"), (GOOD, "b"), (GOOD, "c"))) == (
            b"ok;a;1001\nok;b;1002\nerror-insufficient-balance;c;\n"
        )
        assert ledger_ids(emu) == ["a", "b"] and emu.balance == 0
        # Arriving with none left: the single code-only line, nothing applied.
        assert c.body(send_target((GOOD, "d"))) == b"error-insufficient-balance\n"
        assert c.body(send_target((GOOD, "e"), ("123", "f"))) == b"error-insufficient-balance\n"
        assert ledger_ids(emu) == ["a", "b"]
        # STATUS costs nothing and still answers.
        assert c.body(status_target("1001")).startswith(b"ok;1001;enqueued;")
        emu.balance = 1  # a top-up
        assert c.body(send_target((GOOD, "g"))) == b"ok;g;1003\n"
        assert ledger_ids(emu) == ["a", "b", "g"] and emu.balance == 0


def test_balance_counts_accepted_messages_only(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, balance=1) as emu:
        c = connect(conn_factory, emu)
        # Indexes stand in for missing clientIds on the balance line too.
        assert c.body(send_target(("123",), (GOOD,), (GOOD,))) == (
            b"error-address-format;0;\nok;1;1001\nerror-insufficient-balance;2;\n"
        )
        assert [e.text for e in emu.ledger] == ["text 1"]


def test_balance_comes_after_authentication(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, balance=0) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"), password="wrong")) == b"error-auth\n"
        assert c.body(send_target((GOOD, "a"))) == b"error-insufficient-balance\n"
        assert len(emu.ledger) == 0
    with pytest.raises(ValueError):
        Emulator(balance=-1)


# -- 2. account stops ------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["error-account-locked", "error-system-blocked", "error-some-new-stop"]
)
def test_account_state_answers_every_request(conn_factory: list[Conn], code: str) -> None:
    with Emulator(speed=0) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"))) == b"ok;a;1001\n"
        emu.account_state = code
        assert c.body(send_target((GOOD, "b"), (GOOD, "c"))) == code.encode() + b"\n"
        assert c.body(status_target("1001")) == code.encode() + b"\n"
        assert c.body(send_target((GOOD, "b"), password="x")) == b"error-auth\n"
        assert ledger_ids(emu) == ["a"]
        emu.account_state = None
        assert c.body(send_target((GOOD, "d"))) == b"ok;d;1002\n"


def test_account_state_from_the_start_and_checked() -> None:
    with Emulator(speed=0, account_state="error-account-locked") as emu:
        conn = Conn(emu)
        try:
            assert conn.body(send_target((GOOD,))) == b"error-account-locked\n"
        finally:
            conn.close()
        assert len(emu.ledger) == 0
    for bad in ("", "error;locked", "error locked\n"):
        with pytest.raises(ValueError):
            Emulator(account_state=bad)


# -- 3. code-only replies on demand ------------------------------------------------------


@pytest.mark.parametrize("code", ["error-system", "error-address-format", "ok"])
def test_code_only_fault_applies_nothing(conn_factory: list[Conn], code: str) -> None:
    with Emulator(speed=0, faults=Faults(code_only=Fault(schedule={1, 3}, code=code))) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"))) == code.encode() + b"\n"
        assert c.body(send_target((GOOD, "b"))) == b"ok;b;1001\n"
        assert c.body(status_target("1001")) == code.encode() + b"\n"
        assert ledger_ids(emu) == ["b"]


def test_code_only_fault_that_applies_the_request(conn_factory: list[Conn]) -> None:
    fault = Fault(schedule={1}, code="error-system", variant="apply")
    with Emulator(speed=0, faults={"code_only": fault}) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"), ("123", "b"), (GOOD, "c"))) == b"error-system\n"
        assert ledger_ids(emu) == ["a", "c"]  # taken in part, as a platform may
        assert c.body(send_target((GOOD, "d"))) == b"ok;d;1003\n"


@pytest.mark.parametrize(
    "body",
    [b"ok;;1001\n", b"ok;0;\n", b"ok;0;1001\nerror-system;0;\n", b"<html>busy</html>"],
    ids=["no-client-id", "no-provider-id", "two-lines-one-id", "html"],
)
def test_raw_reply_fault_answers_any_body(conn_factory: list[Conn], body: bytes) -> None:
    faults = Faults(raw_reply=Fault(schedule={1, 2}, body=body))
    with Emulator(speed=0, faults=faults) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD,))) == body
        assert len(emu.ledger) == 0
        emu.faults.raw_reply = Fault(schedule={2}, body=body, variant="apply")
        assert c.body(send_target((GOOD,))) == body
        assert [(e.provider_id, e.text) for e in emu.ledger] == [("1001", "text 0")]
        assert c.body(send_target((GOOD,))) == b"ok;0;1002\n"


def test_whole_request_faults_at_a_seeded_rate() -> None:
    def pattern() -> tuple[list[tuple[int, bytes]], int]:
        faults = Faults(code_only=0.3, http_429=0.2)
        with Emulator(speed=0, seed=7, faults=faults) as emu:
            conn = Conn(emu)
            try:
                seen = []
                for n in range(40):
                    status, body, _ = conn.get(send_target((GOOD, f"m{n}")))
                    seen.append((status, body))
            finally:
                conn.close()
            return seen, len(emu.ledger)

    first, accepted = pattern()
    codes = [body for status, body in first if status == 200 and body == b"error-system\n"]
    assert 3 <= len(codes) <= 25 and 1 <= [s for s, _ in first].count(429) <= 20
    assert accepted == sum(body.startswith(b"ok;") for _, body in first)
    assert pattern() == (first, accepted)


def test_code_only_fault_checks_its_knobs() -> None:
    faults = Faults()
    faults.code_only = Fault(rate=0.5)
    assert faults.code_only.variant == "drop" and faults.code_only.code == "error-system"
    with pytest.raises(ValueError):
        Fault(code="error;system")
    with pytest.raises(ValueError):
        faults.code_only = Fault(schedule={1}, variant="429")
    with pytest.raises(ValueError):
        faults.delay = Fault(schedule={1}, variant="apply")


# -- 4. HTTP 429 and 503 ----------------------------------------------------------------


def test_rate_limit_answers_429_and_processes_nothing(conn_factory: list[Conn]) -> None:
    # A bucket of 2 refilled once in 1000 s: the third request finds it empty.
    with Emulator(speed=0, rate_limit=0.001, rate_burst=2, retry_after=7) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"))) == b"ok;a;1001\n"
        assert c.body(status_target("1001")).startswith(b"ok;1001;")
        status, body, response = c.get(send_target((GOOD, "b")))
        assert (status, response.reason) == (429, "Too Many Requests")
        assert response.getheader("Retry-After") == "7" and body
        assert ledger_ids(emu) == ["a"]
        assert emu.rate_limited == 1 and emu.requests == {"send": 2, "status": 1}
        # The connection stays usable, and other paths are not limited.
        status, _, _ = c.get("/elsewhere")
        assert status == 404


def test_rate_limit_refills(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, rate_limit=20) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"))) == b"ok;a;1001\n"
        time.sleep(0.2)  # at 20 a second, a token is back after 0.05 s
        assert c.body(send_target((GOOD, "b"))) == b"ok;b;1002\n"
        assert ledger_ids(emu) == ["a", "b"]
    with pytest.raises(ValueError):
        Emulator(rate_limit=0)


def test_http_429_fault_with_retry_after(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, faults=Faults(http_429=Fault(schedule={2}, seconds=2.5))) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"))) == b"ok;a;1001\n"
        status, _, response = c.get(send_target((GOOD, "b")))
        assert status == 429 and response.getheader("Retry-After") == "3"
        assert c.body(send_target((GOOD, "c"))) == b"ok;c;1002\n"
        assert ledger_ids(emu) == ["a", "c"] and emu.rate_limited == 0
        emu.faults.http_429 = {4}  # a bare schedule: Retry-After 1
        status, _, response = c.get(send_target((GOOD, "d")))
        assert status == 429 and response.getheader("Retry-After") == "1"
        assert ledger_ids(emu) == ["a", "c"]


def test_http_429_fault_that_applies_then_a_resend_meets_its_ids(
    conn_factory: list[Conn],
) -> None:
    faults = Faults(http_429=Fault(schedule={1}, variant="apply"))
    with Emulator(speed=0, unique_client_ids=True, faults=faults) as emu:
        c = connect(conn_factory, emu)
        target = send_target((GOOD, "r1"), (GOOD, "r2"))
        status, _, response = c.get(target)
        assert status == 429 and response.getheader("Retry-After") == "1"
        assert ledger_ids(emu) == ["r1", "r2"]  # the platform behind took them
        assert c.body(target) == b"error-id-not-unique;r1;\nerror-id-not-unique;r2;\n"
        assert ledger_ids(emu) == ["r1", "r2"]
    with Emulator(speed=0, faults={"http_503": Fault(schedule={1}, variant="apply")}) as emu:
        c = connect(conn_factory, emu)
        assert c.get(send_target((GOOD, "s1")))[0] == 503
        assert ledger_ids(emu) == ["s1"]


def test_http_503_fault(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, faults=Faults(http_503={1})) as emu:
        c = connect(conn_factory, emu)
        status, _, response = c.get(send_target((GOOD, "a")))
        assert (status, response.reason) == (503, "Service Unavailable")
        assert response.getheader("Retry-After") is None
        emu.faults.http_503 = Fault(schedule={2}, seconds=5)
        status, _, response = c.get(send_target((GOOD, "a")))
        assert status == 503 and response.getheader("Retry-After") == "5"
        assert c.body(send_target((GOOD, "a"))) == b"ok;a;1001\n"
        assert ledger_ids(emu) == ["a"]


# -- 5. and 6. statuses and reasons as seen in the field --------------------------------


def status_line(emu: Emulator, c: Conn, pid: str, accepted: float, age: float) -> bytes:
    emu.advance(accepted + age - emu.now())
    return c.body(status_target(pid))


def test_upper_case_statuses(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, status_case="upper") as emu:
        c = connect(conn_factory, emu)
        emu.advance(100)
        assert c.body(send_target(("79031111110",), ("79031111116",))) == b"ok;0;1001\nok;1;1002\n"
        when = emu.datetime_at(100).strftime(DOTS).encode()
        assert c.body(status_target("1001", "1002")) == (
            b"ok;1001;ENQUEUED;%s;\nok;1002;ENQUEUED;%s;\n" % (when, when)
        )
        emu.advance(F)
        when = emu.datetime_at(100 + F).strftime(DOTS).encode()
        assert c.body(status_target("1001", "1002")) == (
            b"ok;1001;DELIVERED;%s;\nok;1002;UNDELIVERED;%s;unknown-subscriber\n" % (when, when)
        )
        assert emu.status(1001) == ("DELIVERED", emu.datetime_at(100 + F), "")
    with pytest.raises(ValueError):
        Emulator(status_case="title")


#: Field statuses: last digit -> (age, status, began, reason), spelled out by hand.
FIELD_EXPECTED = {
    "1": [(0, "enqueued", 0, ""), (S, "sent", S, ""), (F, "delivered", F, ""),
          (F + S, "read", F + S, ""), (100, "read", F + S, "")],
    "2": [(S, "sent", S, ""), (F, "expired", F, "not-delivered-in-time")],
    "3": [(S, "sent", S, ""), (F, "vp_expired", F, "validity-period-over")],
    "4": [(S, "sent", S, ""), (F, "rejected", F, "user-blocked")],
    "5": [(S, "enqueued", 0, ""), (F, "no-match-template", F, "template-not-found")],
    "0": [(S, "sent", S, ""), (F, "delivered", F, "")],
    "6": [(F, "undelivered", F, "unknown-subscriber")],
    "8": [(F, "delayed", 0, ""), (D + F, "delivered", D + F, "")],
}


@pytest.mark.parametrize("digit", sorted(FIELD_EXPECTED))
def test_field_statuses_by_last_digit(conn_factory: list[Conn], digit: str) -> None:
    with Emulator(speed=0, field_statuses=True) as emu:
        c = connect(conn_factory, emu)
        emu.advance(100)
        assert c.body(send_target((f"7903111111{digit}",))) == b"ok;0;1001\n"
        for age, status, began, reason in FIELD_EXPECTED[digit]:
            when = emu.datetime_at(100 + began).strftime(DOTS)
            line = status_line(emu, c, "1001", 100, age)
            assert line == f"ok;1001;{status};{when};{reason}\n".encode()
        assert FIELD_LIFECYCLE[digit][0] == FIELD_EXPECTED[digit][-1][1]


def test_field_statuses_upper_case_in_the_schedule_for_pushes() -> None:
    lifecycle = Lifecycle(field_statuses=True, status_case="upper")
    assert transitions(ord("1"), Timing(S, F, D), lifecycle) == [
        (0.0, "ENQUEUED", ""), (S, "SENT", ""), (F, "DELIVERED", ""), (F + S, "READ", ""),
    ]
    schedule = Schedule(Timing(S, F, D), lifecycle)
    schedule.add(1001, 0.0, b"15")
    assert schedule.take(F + S, 100) == [
        (1001, "ENQUEUED", 0.0, ""), (1002, "ENQUEUED", 0.0, ""), (1001, "SENT", S, ""),
        (1001, "DELIVERED", F, ""), (1002, "NO-MATCH-TEMPLATE", F, "template-not-found"),
        (1001, "READ", F + S, ""),
    ]
    assert schedule.take(D + F, 100) == []  # the delayed kinds' cursors pass by
    assert schedule.next_due() is None


class PushCatcher(http.server.ThreadingHTTPServer):
    """A bare HTTP server on loopback keeping every pushed body as bytes."""

    daemon_threads = True

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                catcher.bodies.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def lines(self) -> list[bytes]:
        return b"".join(self.bodies).splitlines()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def test_pushes_share_the_case_and_the_field_statuses(conn_factory: list[Conn]) -> None:
    catcher = PushCatcher()
    try:
        url = f"http://127.0.0.1:{catcher.server_address[1]}/push"
        with Emulator(
            speed=0, status_case="upper", field_statuses=True, semicolon_reasons=True,
            push_url=url, push_interval=0.01,
        ) as emu:
            c = connect(conn_factory, emu)
            assert c.body(send_target(("79031111111",), ("79031111116",))) == (
                b"ok;0;1001\nok;1;1002\n"
            )
            emu.advance(F + S)
            deadline = time.monotonic() + 10
            while len(catcher.lines()) < 7 and time.monotonic() < deadline:
                time.sleep(0.01)
            when = emu.datetime_at(F).strftime(DOTS).encode()
            lines = catcher.lines()
            assert b"ok;1001;DELIVERED;%s;" % when in lines
            assert b"ok;1002;UNDELIVERED;%s;absent;subscriber" % when in lines
            assert [line.split(b";")[2] for line in lines if line.startswith(b"ok;1001;")] == [
                b"ENQUEUED", b"SENT", b"DELIVERED", b"READ"
            ]
    finally:
        catcher.stop()


def test_reasons_with_semicolons_and_set_by_hand(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, semicolon_reasons=True, reasons={"7": "сбой;платформы"}) as emu:
        c = connect(conn_factory, emu)
        addresses = [(f"7903111111{d}",) for d in "679"]
        assert c.body(send_target(*addresses)) == b"ok;0;1001\nok;1;1002\nok;2;1003\n"
        emu.advance(F)
        when = emu.datetime_at(F).strftime(DOTS)
        assert c.body(status_target("1001", "1002", "1003")).decode() == (
            f"ok;1001;undelivered;{when};absent;subscriber\n"
            f"ok;1002;failed;{when};сбой;платформы\n"
            f"ok;1003;cancelled;{when};cancelled;by-operator\n"
        )
    with pytest.raises(ValueError):
        Emulator(reasons={"6": "two\nlines"})
    with pytest.raises(ValueError):
        Emulator(reasons={"x": "no such digit"})


# -- 7. extra fields on SEND lines --------------------------------------------------------


def test_send_extra_field_on_ok_lines_only(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, send_extra="2") as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD,), ("123",), (GOOD, "x9"))) == (
            b"ok;0;1001;2\nerror-address-format;1;\nok;x9;1002;2\n"
        )
        assert [e.provider_id for e in emu.ledger] == ["1001", "1002"]
    for bad in ("", "2\n"):
        with pytest.raises(ValueError):
            Emulator(send_extra=bad)


# -- 8. stray late bytes ------------------------------------------------------------------


def read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """One whole HTTP response (by its Content-Length) and the bytes read past it."""
    data = buffered
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) >= length:
                return head + sep + rest[:length], rest[length:]
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk


def read_exactly(sock: socket.socket, size: int, buffered: bytes = b"") -> bytes:
    data = buffered
    while len(data) < size:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def request_bytes(target: str, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (target.encode(), extra)


LATE_200 = (
    b"HTTP/1.1 200 OK\r\nServer: hpgfast-emulator\r\nContent-Type: text/plain; "
    b"charset=utf-8\r\nContent-Length: 24\r\n\r\nok;0;999999\nok;1;999998\n"
)


@pytest.mark.parametrize(
    ("fault", "stale"),
    [
        (Fault(schedule={1}), LATE_200),
        (Fault(schedule={1}, variant="line", code="error-insufficient-balance"),
         b"error-insufficient-balance\n"),
        (Fault(schedule={1}, variant="response", body=b"ok;abc;5\n", seconds=0.0),
         LATE_200.replace(b"24\r\n\r\nok;0;999999\nok;1;999998\n", b"9\r\n\r\nok;abc;5\n")),
    ],
    ids=["response", "line", "custom-body"],
)
def test_late_bytes_follow_the_reply_on_the_same_connection(fault: Fault, stale: bytes) -> None:
    with Emulator(speed=0, faults=Faults(late_bytes=fault)) as emu:
        with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
            sock.sendall(request_bytes(send_target((GOOD,), (GOOD,))))
            reply, rest = read_response(sock)
            assert reply.endswith(b"\r\n\r\nok;0;1001\nok;1;1002\n")
            assert read_exactly(sock, len(stale), rest) == stale
            # The connection goes on: the next request's reply comes after the stale bytes.
            sock.sendall(request_bytes(send_target((GOOD,))))
            reply, rest = read_response(sock)
            assert reply.endswith(b"\r\n\r\nok;0;1003\n") and rest == b""
        assert len(emu.ledger) == 3


def test_late_429_is_read_by_a_naive_client_as_the_next_reply() -> None:
    # A naive client reads one response per request, in order. A raw socket plays it:
    # http.client would drop bytes its buffered reader took past a response, so what it
    # saw would depend on how the bytes happened to arrive.
    with Emulator(speed=0, faults={"late_bytes": Fault(schedule={1}, variant="429")}) as emu:
        with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
            sock.sendall(request_bytes(send_target((GOOD, "a"))))
            reply, rest = read_response(sock)
            assert reply.endswith(b"\r\n\r\nok;a;1001\n")
            sock.sendall(request_bytes(send_target((GOOD, "b"))))
            # The hazard the fault plays: a stale 429 taken for request 2's answer,
            # and request 2's own reply for request 3's.
            stale, rest = read_response(sock, rest)
            assert stale.startswith(b"HTTP/1.1 429 ") and b"\r\nRetry-After: 1\r\n" in stale
            sock.sendall(request_bytes(send_target((GOOD, "c"))))
            reply, rest = read_response(sock, rest)
            assert reply.endswith(b"\r\n\r\nok;b;1002\n")
            reply, rest = read_response(sock, rest)
            assert reply.endswith(b"\r\n\r\nok;c;1003\n") and rest == b""
        # Every request was applied all the same.
        wait_until(lambda: len(emu.ledger) == 3)
        assert ledger_ids(emu) == ["a", "b", "c"]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_late_bytes_only_on_keep_alive_connections() -> None:
    with Emulator(speed=0, faults=Faults(late_bytes={1})) as emu:
        with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
            sock.sendall(request_bytes(send_target((GOOD,)), close=True))
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.endswith(b"Connection: close\r\n\r\nok;0;1001\n")
        assert data.count(b"HTTP/1.1") == 1
        assert len(emu.ledger) == 1


# -- 9. trickling replies ---------------------------------------------------------------


def test_trickle_sends_a_byte_then_waits() -> None:
    # One byte, then a pause far beyond the client's patience: deterministic.
    with Emulator(speed=0, faults=Faults(trickle=Fault(schedule={1}, seconds=60))) as emu:
        with socket.create_connection((emu.host, emu.port), timeout=0.5) as sock:
            sock.sendall(request_bytes(send_target((GOOD, "a"))))
            assert sock.recv(65536) == b"H"
            # socket.timeout: TimeoutError from Python 3.10, its own OSError on 3.9.
            with pytest.raises(socket.timeout):
                sock.recv(65536)
            assert ledger_ids(emu) == ["a"]  # applied before the reply began
            closing = threading.Thread(target=emu.close)
            closing.start()
            closing.join(10)
            assert not closing.is_alive()  # close() cut the pause short


def test_trickle_to_a_client_that_left(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, faults=Faults(trickle=Fault(schedule={1}, seconds=0.01))) as emu:
        with socket.create_connection((emu.host, emu.port), timeout=5) as sock:
            sock.sendall(request_bytes(send_target((GOOD, "a"))))
            assert sock.recv(1) == b"H"
        wait_until(lambda: emu.connections == 0)  # the next byte found it gone
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "b"))) == b"ok;b;1002\n"
        assert ledger_ids(emu) == ["a", "b"]


def test_trickle_is_bounded_and_the_reply_whole(conn_factory: list[Conn]) -> None:
    faults = Faults(trickle=Fault(schedule={1}, seconds=0.005, limit=0.05))
    with Emulator(speed=0, faults=faults) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a"), (GOOD, "b"))) == b"ok;a;1001\nok;b;1002\n"
        assert c.body(send_target((GOOD, "c"))) == b"ok;c;1003\n"  # same connection
        emu.faults.trickle = Fault(schedule={3}, seconds=60, limit=0)  # the rest at once
        assert c.body(send_target((GOOD, "d"))) == b"ok;d;1004\n"
        assert ledger_ids(emu) == ["a", "b", "c", "d"]


# -- 10. clientIds ------------------------------------------------------------------------


def test_client_ids_ignored(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, client_ids="ignore") as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "a1"), ("123", "b2"), (GOOD, "a1"))) == (
            b"ok;0;1001\nerror-address-format;1;\nok;2;1002\n"
        )
        assert ledger_ids(emu) == ["a1", "a1"]  # as sent; the platform just ignores them
    with pytest.raises(ValueError):
        Emulator(client_ids="drop")


def test_client_ids_truncated_in_the_reply(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, max_client_id_length=4) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "abcdefgh"), ("123", "xyz12345"), (GOOD, "ab"))) == (
            b"ok;abcd;1001\nerror-address-format;xyz1;\nok;ab;1002\n"
        )
        assert ledger_ids(emu) == ["abcdefgh", "ab"]
    with pytest.raises(ValueError):
        Emulator(max_client_id_length=0)


def test_unique_client_ids_across_requests(conn_factory: list[Conn]) -> None:
    with Emulator(speed=0, unique_client_ids=True, balance=3) as emu:
        c = connect(conn_factory, emu)
        assert c.body(send_target((GOOD, "x1"), ("123", "y1"))) == (
            b"ok;x1;1001\nerror-address-format;y1;\n"
        )
        emu.ledger.clear()  # the platform's memory of ids outlives the ledger
        # x1 was accepted: refused, not applied, no balance spent; y1 never was.
        assert c.body(send_target((GOOD, "x1"), (GOOD, "y1"), (GOOD,))) == (
            b"error-id-not-unique;x1;\nok;y1;1002\nok;2;1003\n"
        )
        assert ledger_ids(emu) == ["y1", None] and emu.balance == 0
        emu.balance = 5
        assert c.body(send_target((GOOD, "y1"), (GOOD, "z1"))) == (
            b"error-id-not-unique;y1;\nok;z1;1004\n"
        )
        assert ledger_ids(emu) == ["y1", None, "z1"]
        # Counted: the fleet test's proof that no sender tried a message twice.
        assert emu.repeated_client_ids == 2
    with pytest.raises(ValueError):
        Emulator(unique_client_ids=True, client_ids="ignore")


def test_unique_client_ids_under_concurrent_requests() -> None:
    with Emulator(speed=0, unique_client_ids=True) as emu:
        bodies: list[bytes] = []
        lock = threading.Lock()

        def worker() -> None:
            conn = Conn(emu)
            try:
                for _ in range(10):
                    body = conn.body(send_target(*[(GOOD, f"id{n}") for n in range(20)]))
                    with lock:
                        bodies.append(body)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        oks = sum(body.count(b"ok;") for body in bodies)
        assert oks == 20 == len(emu.ledger)
        assert emu.ledger.duplicates("client_id") == {}
        assert emu.repeated_client_ids == 4 * 10 * 20 - 20


# -- command line ---------------------------------------------------------------------


def args_of(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--port", "0", *argv])


def test_command_line_settings(tmp_path: Path) -> None:
    body_file = tmp_path / "reply.txt"
    body_file.write_bytes(b"ok;;1001\n")
    args = args_of(
        "--balance", "5", "--account-state", "error-system-blocked", "--rate-limit", "50",
        "--rate-burst", "3", "--retry-after", "4", "--status-case", "upper",
        "--field-statuses", "--semicolon-reasons", "--reason", "6=gone;away",
        "--send-extra", "2", "--client-ids", "echo", "--max-client-id-length", "8",
        "--unique-client-ids", "--code-only-rate", "0.1", "--code-only-code",
        "error-address-format", "--code-only-apply", "--trickle-seconds", "0.3",
        "--trickle-limit", "2", "--late-bytes-variant", "line", "--late-bytes-seconds",
        "0.01", "--late-bytes-code", "ok", "--fault-schedule", "http-429=2,5", "--http-429-apply",
        "--fault-schedule", "late_bytes=3", "--fault-schedule", "reset=9",
        "--http-503-rate", "0.2", "--raw-reply-file", str(body_file), "--raw-reply-apply",
        "--fault-schedule", "raw-reply=4",
    )
    with emulator_from_args(args) as emu:
        assert emu.balance == 5 and emu.account_state == "error-system-blocked"
        assert (emu.rate_limit, emu.rate_burst, emu.retry_after) == (50, 3, 4)
        assert emu.lifecycle.status_case == "upper" and emu.lifecycle.field_statuses
        assert emu.lifecycle.table["6"] == ("UNDELIVERED", "gone;away")
        assert emu.lifecycle.table["7"] == ("FAILED", "platform;error")
        assert emu.send_extra == "2" and emu.max_client_id_length == 8
        assert emu.unique_client_ids and emu.client_ids == "echo"
        faults = emu.faults
        assert faults.http_429 == Fault(schedule=frozenset({2, 5}), seconds=4, variant="apply")
        assert faults.http_503.rate == 0.2
        assert faults.code_only == Fault(rate=0.1, code="error-address-format", variant="apply")
        assert (faults.trickle.seconds, faults.trickle.limit) == (0.3, 2)
        assert faults.late_bytes == Fault(
            schedule=frozenset({3}), seconds=0.01, variant="line", code="ok"
        )
        assert faults.reset_after_accept.schedule == frozenset({9})
        assert faults.raw_reply == Fault(
            schedule=frozenset({4}), body=b"ok;;1001\n", variant="apply"
        )
    for bad in (["--fault-schedule", "nope=1"], ["--fault-schedule", "delay=x"],
                ["--reason", "x=y"], ["--account-state", "bad code"]):
        with pytest.raises(ValueError):
            emulator_from_args(args_of(*bad))


def test_command_line_serves_them_over_http() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast.emulator", "--port", "0", "--balance", "1",
         "--send-extra", "2", "--max-client-id-length", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = urlsplit(proc.stdout.readline().strip())
        assert url.hostname and url.port
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            conn.request("GET", send_target((GOOD, "abcdef"), (GOOD, "ghijkl")))
            assert conn.getresponse().read() == (
                b"ok;abc;1001;2\nerror-insufficient-balance;ghi;\n"
            )
            conn.request("GET", send_target((GOOD, "x")))
            assert conn.getresponse().read() == b"error-insufficient-balance\n"
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_help_names_every_setting() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hpgfast.emulator", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for option in (
        "--balance", "--account-state", "--rate-limit", "--rate-burst", "--retry-after",
        "--status-case", "--field-statuses", "--semicolon-reasons", "--reason",
        "--send-extra", "--client-ids", "--max-client-id-length", "--unique-client-ids",
        "--http-503-rate", "--http-429-rate", "--code-only-rate", "--code-only-code",
        "--http-429-apply", "--trickle-rate", "--trickle-seconds", "--late-bytes-rate",
        "--late-bytes-variant", "--fault-schedule", "--raw-reply-rate", "--raw-reply-file",
        "--raw-reply-status", "--raw-reply-header", "--http-503-retry-after",
        "--http-503-apply", "--late-bytes-file",
    ):
        assert option in out, option
