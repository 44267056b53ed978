"""Replies that must stop a batch, over real HTTP with both clients.

A redirect, a page that is not HPG, an account-stop code anywhere in a reply, and
a platform that keeps answering 5xx: each stops the batch at the first such reply
(the third 5xx in a row; requests already on the wire are settled by their own
replies), so that a thousand messages do not each meet it. Every
test asserts each message's outcome, the number of requests the server saw, and
(through the ledger) that no SEND was repeated.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpgfast import (
    AccountError,
    AuthError,
    Client,
    Code,
    HTTPStatusError,
    Message,
    PlatformUnavailable,
    UnexpectedReply,
)
from hpgfast.cli._exit import ExitCode
from hpgfast.emulator import Emulator, Fault
from ledger_checks import assert_truthful

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")

PER_REQUEST = 10


def numbered(n: int, *, start: int = 0) -> list[Message]:
    return [Message(f"7903{i:07d}", f"stop text #{i}") for i in range(start, start + n)]


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    kw.setdefault("max_batch", PER_REQUEST)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


def codes(results: list[Any]) -> list[str]:
    return [r.code for r in results]


def following(emu: Emulator, *offsets: int) -> set[int]:
    """The numbers of the emulator's next requests (1: the next one), for a schedule."""
    seen = sum(emu.requests.values())
    return {seen + k for k in offsets}


def sent_ids(emu: Emulator, n: int) -> list[str]:
    """``n`` provider ids the emulator knows (for STATUS tests)."""
    with client_for(emu) as client:
        results = client.send(numbered(n, start=9000))
    assert all(r.ok for r in results)
    return [r.provider_id for r in results]


@pytest.fixture
def elsewhere() -> Iterator[socket.socket]:
    """A listening socket a followed redirect would connect to (nobody accepts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def nobody_came(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def assert_stopped(results: list[Any], answered: int, total: int) -> None:
    """The first ``answered`` requests' messages unknown, the rest not-sent."""
    assert len(results) == total
    unknown = codes(results).count(Code.UNKNOWN)
    assert unknown == answered * PER_REQUEST
    assert codes(results) == [Code.UNKNOWN] * unknown + [Code.NOT_SENT] * (total - unknown) or (
        # concurrency > 1: requests already on the wire settle by their own replies,
        # in whatever order the threads or tasks took them
        set(codes(results)) <= {Code.UNKNOWN, Code.NOT_SENT}
    )


# -- 1. a reply that is not HPG: a redirect, a login page, plain text ---------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_redirect_stops_and_is_never_followed(
    status: int, concurrency: int, elsewhere: socket.socket
) -> None:
    total = 1000
    with Emulator(speed=None) as emu:
        port = elsewhere.getsockname()[1]
        # An http-to-https redirect that echoes the whole target, password included.
        location = (
            f"https://127.0.0.1:{port}/CLIENT/connectorX/send?login={emu.login}"
            f"&password={emu.password}&address=7903"
        )
        redirect = Fault(rate=1.0, status=status, headers={"Location": location},
                         body=b"<html><body>Moved</body></html>\n")
        emu.faults.raw_reply = redirect
        with client_for(emu, concurrency=concurrency) as client:
            with pytest.raises(UnexpectedReply) as info:
                client.send(numbered(total))
        seen = emu.requests["send"]
        assert 1 <= seen <= concurrency
        error = info.value
        assert isinstance(error, HTTPStatusError)  # a configuration error, as a 404
        assert error.status == status
        assert error.location is not None and "password=***" in error.location
        assert emu.password not in str(error) and emu.password not in repr(error)
        assert emu.password not in error.location
        assert "Moved" in error.body
        assert_stopped(error.results, seen, total)
        assert nobody_came(elsewhere)  # not followed: the password went nowhere else
        assert len(emu.ledger) == 0


LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html>\n<head><title>Wi-Fi login</title></head>\n<body>\n"
    b"<form method=post>\nLogin\n<input name=user>\n</form>\nok\n</body>\n</html>\n"
)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", LOGIN_PAGE),  # a captive portal, a proxy login
        ("text/plain", b"Service temporarily unavailable, try again later.\n"),
        ("text/html", b"<html><body>Service unavailable</body></html>"),
        ("text/plain", b""),  # an empty 200: no HPG line either
        (None, b"\n \r\n"),
    ],
)
def test_a_200_that_is_not_hpg_stops(content_type: Any, body: bytes) -> None:
    total = 100
    headers = {} if content_type is None else {"Content-Type": content_type}
    page = Fault(rate=1.0, headers=headers, body=body)
    with Emulator(speed=None, faults={"raw_reply": page}) as emu:
        with client_for(emu) as client:
            with pytest.raises(UnexpectedReply) as info:
                client.send(numbered(total))
        assert emu.requests["send"] == 1
        error = info.value
        assert error.status == 200
        assert error.content_type == (content_type or "text/plain; charset=utf-8")
        assert error.location is None
        assert_stopped(error.results, 1, total)
        assert all(isinstance(r.error, UnexpectedReply) for r in error.results[:PER_REQUEST])
        assert len(emu.ledger) == 0


def test_login_page_body_is_quoted_bounded_and_redacted() -> None:
    with Emulator(speed=None) as emu:
        body = b"<html>you sent password=" + emu.password.encode() + b"</html>\n" + b"x" * 9000
        emu.faults.raw_reply = Fault(schedule={1}, body=body, headers={"Content-Type": "text/html"})
        with client_for(emu) as client:
            with pytest.raises(UnexpectedReply) as info:
                client.send(numbered(3))
    error = info.value
    assert emu.password not in error.body and emu.password not in str(error)
    assert "you sent password=***" in error.body
    assert len(error.body) <= 500


def test_hpg_lines_served_as_html_are_read_as_today() -> None:
    # Platforms often send HPG lines as text/html; a stray markup line among them
    # (row 13) changes nothing.
    body = b"ok;0;1001\n<html>oops</html>\nok;1;1002\n"
    reply = Fault(schedule={1}, headers={"Content-Type": "text/html"}, body=body)
    with Emulator(speed=None, faults={"raw_reply": reply}) as emu:
        with client_for(emu, client_ids=False) as client:
            assert codes(client.send(numbered(2))) == [Code.OK, Code.OK]
            assert client.send(numbered(1, start=5))[0].ok  # goes on
        assert emu.requests["send"] == 2


def test_status_redirect_stops(elsewhere: socket.socket) -> None:
    with Emulator(speed=None) as emu:
        ids = sent_ids(emu, 30)
        port = elsewhere.getsockname()[1]
        location = f"http://127.0.0.1:{port}/status?password={emu.password}"
        emu.faults.raw_reply = Fault(rate=1.0, status=302, headers={"Location": location})
        with client_for(emu) as client:
            with pytest.raises(UnexpectedReply) as info:
                client.status(ids)
        assert emu.requests["status"] == 1  # never repeated, STATUS as SEND
        results = info.value.results
        assert codes(results) == [Code.UNKNOWN] * PER_REQUEST + [Code.NOT_SENT] * 20
        assert nobody_came(elsewhere)


# -- 2. an account-stop code anywhere in a reply --------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [("error-insufficient-balance", AccountError), ("error-auth", AuthError)],
)
@pytest.mark.parametrize("where", ["after", "before"])
def test_code_only_stop_line_beside_message_lines(code: str, error: type, where: str) -> None:
    lines = [b"ok;0;5001", code.encode()]
    if where == "before":
        lines.reverse()
    reply = Fault(schedule={1}, body=b"\n".join(lines) + b"\n")
    with Emulator(speed=None, faults={"raw_reply": reply}) as emu:
        with client_for(emu, client_ids=False, max_batch=2) as client:
            with pytest.raises(error) as info:
                client.send(numbered(16))
        assert emu.requests["send"] == 1
        results = info.value.results  # type: ignore[attr-defined]
        assert info.value.code == code  # type: ignore[attr-defined]
        # Message 0 has its own line; message 1 none: nobody knows.
        assert codes(results) == [Code.OK, Code.UNKNOWN] + [Code.NOT_SENT] * 14


def test_stop_line_beside_status_lines() -> None:
    with Emulator(speed=None) as emu:
        ids = sent_ids(emu, 6)
        body = f"ok;{ids[0]};sent;2012.03.15 19:53:14;\nerror-account-locked\n".encode()
        emu.faults.raw_reply = Fault(schedule=following(emu, 1), body=body)
        with client_for(emu, max_batch=2) as client:
            with pytest.raises(AccountError) as info:
                client.status(ids)
        assert emu.requests["status"] == 1
        assert codes(info.value.results) == [Code.OK, Code.UNKNOWN] + [Code.NOT_SENT] * 4


def test_a_stop_code_among_unreadable_lines_still_stops() -> None:
    reply = Fault(schedule={1}, body=b"<html>\nerror-insufficient-balance\n</html>\n")
    with Emulator(speed=None, faults={"raw_reply": reply}) as emu:
        with client_for(emu, max_batch=2) as client:
            with pytest.raises(AccountError) as info:
                client.send(numbered(6))
        assert emu.requests["send"] == 1
        assert codes(info.value.results) == [Code.NOT_SENT] * 6


# -- 3. service unavailable: a pause, not a storm --------------------------------------------


def test_send_503_retry_after_pauses_the_next_requests() -> None:
    unavailable = Fault(schedule={1}, status=503, headers={"Retry-After": "1"},
                        body=b"busy\n")
    with Emulator(speed=None, faults={"raw_reply": unavailable}) as emu:
        messages = numbered(30)
        with client_for(emu) as client:
            started = time.monotonic()
            results = client.send(messages)
            took = time.monotonic() - started
        assert took >= 1.0  # the second request waited for Retry-After
        assert codes(results) == [Code.UNKNOWN] * 10 + [Code.OK] * 20  # never repeated
        assert emu.requests["send"] == 3
        assert_truthful(emu, messages, results)


def test_status_503_is_repeated_no_sooner_than_retry_after() -> None:
    with Emulator(speed=None) as emu:
        ids = sent_ids(emu, 3)
        emu.faults.raw_reply = Fault(
            schedule=following(emu, 1), status=503, headers={"Retry-After": "1"}
        )
        with client_for(emu) as client:
            started = time.monotonic()
            results = client.status(ids)
            took = time.monotonic() - started
        assert took >= 1.0
        assert codes(results) == [Code.OK] * 3
        assert emu.requests["status"] == 2


def test_retry_after_is_capped_by_retry_after_max() -> None:
    unavailable = Fault(schedule={1}, status=503, headers={"Retry-After": "3600"})
    with Emulator(speed=None, faults={"raw_reply": unavailable}) as emu:
        with client_for(emu, retry_after_max=0.5) as client:
            started = time.monotonic()
            results = client.send(numbered(20))
            took = time.monotonic() - started
        assert 0.5 <= took < 5
        assert codes(results) == [Code.UNKNOWN] * 10 + [Code.OK] * 10
        assert emu.requests["send"] == 2


@pytest.mark.parametrize("kind", ["http_503", "http_500"])
def test_three_5xx_in_a_row_stop_a_send_batch(kind: str) -> None:
    with Emulator(speed=None, faults={kind: {1, 2, 3}}) as emu:
        messages = numbered(100)
        with client_for(emu) as client:
            with pytest.raises(PlatformUnavailable) as info:
                client.send(messages)
        assert emu.requests["send"] == 3
        error = info.value
        assert error.status in (500, 503) and error.count == 3
        assert codes(error.results) == [Code.UNKNOWN] * 30 + [Code.NOT_SENT] * 70
        assert len(emu.ledger) == 0  # no SEND repeated, nothing applied
        assert_truthful(emu, messages, error.results)


@pytest.mark.parametrize("concurrency", [4, 16])
def test_a_platform_that_is_down_costs_at_most_stop_plus_concurrency_minus_one(
    concurrency: int,
) -> None:
    # Requests already on the wire when the third 5xx comes are settled by their own
    # replies: up to stop_after_5xx + concurrency - 1 requests, never one per request.
    with Emulator(speed=None, faults={"http_503": Fault(rate=1.0)}) as emu:
        messages = numbered(1000)
        with client_for(emu, concurrency=concurrency) as client:
            with pytest.raises(PlatformUnavailable) as info:
                client.send(messages)
        seen = emu.requests["send"]
        assert 3 <= seen <= 3 + concurrency - 1, seen
        results = info.value.results
        assert codes(results).count(Code.UNKNOWN) == seen * PER_REQUEST
        assert codes(results).count(Code.NOT_SENT) == 1000 - seen * PER_REQUEST
        assert len(emu.ledger) == 0  # no SEND repeated, nothing applied
        assert_truthful(emu, messages, results)


def test_a_reply_between_5xx_resets_the_count() -> None:
    with Emulator(speed=None, faults={"http_503": {1, 2, 4, 5, 7}}) as emu:
        messages = numbered(60)
        with client_for(emu) as client:
            results = client.send(messages)
        assert emu.requests["send"] == 6  # never repeated
        expected = ["u", "u", "o", "u", "u", "o"]
        assert codes(results) == [
            Code.UNKNOWN if e == "u" else Code.OK for e in expected for _ in range(PER_REQUEST)
        ]
        assert_truthful(emu, messages, results)


def test_status_repeats_count_toward_the_stop() -> None:
    with Emulator(speed=None) as emu:
        ids = sent_ids(emu, 20)
        emu.faults.http_503 = following(emu, 1, 2, 3)
        with client_for(emu, retries=5) as client:
            with pytest.raises(PlatformUnavailable) as info:
                client.status(ids)
        assert emu.requests["status"] == 3  # one request, repeated twice, then the stop
        assert codes(info.value.results) == [Code.UNKNOWN] * 10 + [Code.NOT_SENT] * 10


def test_the_count_is_a_setting() -> None:
    with Emulator(speed=None, faults={"http_503": {1, 2, 3}}) as emu:
        with client_for(emu, stop_after_5xx=4) as client:
            results = client.send(numbered(40))
        assert codes(results) == [Code.UNKNOWN] * 30 + [Code.OK] * 10
        assert emu.requests["send"] == 4


# -- the CLI: the exit code of each stop ----------------------------------------------------


def hpgfast_send(url: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env.update({"HPGFAST_LOGIN": "CLIENT", "HPGFAST_PASSWORD": "P@ssw0rd",
                "HPGFAST_SUBJECT": "ACME", "HPGFAST_TIMEOUT": "5"})
    return subprocess.run(
        [sys.executable, "-m", "hpgfast", "send", "--url", url, "--file", str(path),
         "--max-batch", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(rate=1.0, status=302, headers={"Location": "https://x.test/"}), ExitCode.USAGE),
        (Fault(rate=1.0, headers={"Content-Type": "text/html"}, body=LOGIN_PAGE), ExitCode.USAGE),
        (Fault(rate=1.0, body=b"ok;0;7001\nerror-insufficient-balance\n"), ExitCode.ACCOUNT),
        (Fault(rate=1.0, status=503, headers={"Retry-After": "0"}), ExitCode.TRANSPORT),
    ],
    ids=["redirect", "login-page", "stop-line", "503s"],
)
@pytest.mark.sync_only  # the CLI runs one client
def test_cli_exit_code(fault: Fault, code: ExitCode, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("address,text\n" + "".join(f"7903111{i:04d},hi\n" for i in range(20)))
    with Emulator(speed=None, faults={"raw_reply": fault}) as emu:
        done = hpgfast_send(emu.url, path)
        assert done.returncode == code, done.stderr
        assert emu.requests["send"] <= 3
    assert "P@ssw0rd" not in done.stdout + done.stderr
