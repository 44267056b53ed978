"""The delivery-report receiver, over real HTTP on loopback: valid, forged, garbage, oversize."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
import urllib3

from hpgfast import SendResult, StatusResult
from hpgfast.journal import Journal
from hpgfast.receiver import Receiver, make_app, push, status_lines

SECRET = "s3cret-K3y_~.-"


@pytest.fixture
def got() -> list[StatusResult]:
    return []


@pytest.fixture
def receiver(got: list[StatusResult]) -> Iterator[Receiver]:
    with Receiver(got.append, secret=SECRET, max_body=4096) as server:
        yield server


def _raw(server: Receiver, method: str, target: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        conn.close()


REPORTS = [
    ("ok", "1001", "delivered", datetime(2026, 11, 28, 9, 30, 1), ""),
    ("ok", "1002", "undelivered", datetime(2026, 11, 28, 9, 30, 2), "unknown-subscriber"),
]


@pytest.mark.parametrize("shape", ["lines", "form", "query"])
def test_valid_pushes_each_shape(receiver: Receiver, got: list[StatusResult], shape: str) -> None:
    status, text = push(receiver.url, REPORTS, secret=SECRET, shape=shape)
    assert (status, text) == (200, "ok")
    assert [tuple(r) for r in got] == [
        ("ok", "1001", "delivered", datetime(2026, 11, 28, 9, 30, 1), None),
        ("ok", "1002", "undelivered", datetime(2026, 11, 28, 9, 30, 2), "unknown-subscriber"),
    ]


def test_plain_parameters_and_secret_in_path(
    receiver: Receiver, got: list[StatusResult], caplog: pytest.LogCaptureFixture
) -> None:
    target = f"/hpg/{SECRET}?providerId=77&status=sent&dateTime=2026-11-28%2010:00:00"
    with caplog.at_level("DEBUG", logger="hpgfast.receiver"):
        status, text = _raw(receiver, "GET", target)
        # The request is logged after the answer went out: wait for that line.
        for _ in range(200):
            if " GET 200 " in caplog.text:
                break
            time.sleep(0.01)
    assert (status, text) == (200, "ok")
    assert " GET 200 " in caplog.text and SECRET not in caplog.text
    assert got == [StatusResult("ok", "77", "sent", datetime(2026, 11, 28, 10, 0, 0), None)]


@pytest.mark.parametrize(
    "headers, target",
    [
        ({}, "/"),
        ({"X-HPG-Secret": "wrong"}, "/"),
        ({"X-HPG-Secret": SECRET[:-1]}, "/"),
        ({}, "/hpg/not-the-secret"),
    ],
)
def test_forged_pushes_are_refused(
    receiver: Receiver, got: list[StatusResult], headers: dict[str, str], target: str
) -> None:
    body = status_lines(REPORTS)
    status, text = _raw(receiver, "POST", target, body, headers)
    assert status == 401
    assert "secret" in text
    assert got == []


def test_source_allow_list(got: list[StatusResult]) -> None:
    with Receiver(got.append, secret=SECRET, allow=["10.0.0.0/8"]) as server:
        status, text = push(server.url, REPORTS, secret=SECRET)
        assert (status, text) == (403, "source address not allowed")
    with Receiver(got.append, secret=None, allow=["127.0.0.1/32"]) as server:
        assert push(server.url, REPORTS) == (200, "ok")
    assert len(got) == 2


@pytest.mark.parametrize(
    "body, content_type, target, reason",
    [
        (b"\x00\xff garbage \xfe", "text/plain", "/", "unreadable body"),
        (b"<html>oops</html>", "text/plain", "/", "unreadable body"),
        (b"", "text/plain", "/", "no report"),
        (b"", "text/plain", "/?status=delivered", "without 'providerId'"),
        (b"", "text/plain", "/?providerId=1&providerId=2&status=sent", "given twice"),
        (b"", "text/plain", "/?providerId=1&status=sent&providerId[0]=2", "mixed"),
        (b"", "text/plain", "/?providerId=1%3B2&status=sent", "';'"),
        (b"providerId=%FF&status=sent", "application/x-www-form-urlencoded", "/", "UTF-8"),
        (b"providerId=1&status=s%FFnt", "application/x-www-form-urlencoded", "/", "UTF-8"),
        (b"ok;\xff;sent;;\n", "text/plain; charset=windows-1251", "/", "unreadable body"),
        (b"ok;1;sent;;\n", "text/plain", "/?providerId=1&status=sent", "mixed"),
    ],
)
def test_garbage_gets_400_with_a_reason(
    receiver: Receiver, got: list[StatusResult], body: bytes, content_type: str,
    target: str, reason: str,
) -> None:
    status, text = _raw(receiver, "POST", target, body,
                        {"X-HPG-Secret": SECRET, "Content-Type": content_type})
    assert status == 400, text
    assert reason in text
    assert got == []


def test_non_ascii_query_is_400(receiver: Receiver) -> None:
    # A raw byte above 0x7F in the request line.
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        sock.sendall(
            b"GET /?providerId=\xff&status=sent HTTP/1.1\r\nHost: x\r\n"
            b"X-HPG-Secret: " + SECRET.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")


def test_oversize_bodies_get_413(receiver: Receiver, got: list[StatusResult]) -> None:
    big = status_lines([("ok", str(i), "delivered", None, "") for i in range(1000)])
    assert len(big) > 4096
    status, text = _raw(receiver, "POST", "/", big, {"X-HPG-Secret": SECRET})
    assert status == 413 and "4096" in text
    # A huge declared length is refused before anything is read.
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n"
            b"X-HPG-Secret: " + SECRET.encode() + b"\r\n\r\nok;1;sent;;\n"
        )
        reply = sock.recv(4096)
    assert b" 413 " in reply.split(b"\r\n", 1)[0]
    assert got == []


def test_methods_length_and_chunked(receiver: Receiver) -> None:
    assert _raw(receiver, "PUT", "/", b"x", {"X-HPG-Secret": SECRET})[0] == 405
    assert _raw(receiver, "DELETE", "/")[0] == 405
    status, _ = _raw(receiver, "POST", "/", b"", {
        "X-HPG-Secret": SECRET, "Transfer-Encoding": "chunked",
    })
    assert status == 411
    status, text = _raw(receiver, "POST", "/", b"", {
        "X-HPG-Secret": SECRET, "Content-Length": "12abc",
    })
    assert status == 400 and "Content-Length" in text
    for length in ("\u00b2", "9" * 5000):  # a latin-1 digit int() refuses; too many digits
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "CONTENT_LENGTH": length, "PATH_INFO": "/",
            "wsgi.input": io.BytesIO(b""), "HTTP_X_HPG_SECRET": SECRET,
        }
        answers: list[str] = []
        out = b"".join(make_app(secret=SECRET)(environ, lambda s, h, a=answers: a.append(s)))
        assert answers == ["400 Bad Request"] and b"Content-Length" in out


def test_callback_failure_is_500_and_the_server_lives_on() -> None:
    calls: list[Any] = []

    def callback(report: StatusResult) -> None:
        calls.append(report)
        if len(calls) == 1:
            raise RuntimeError("boom")

    with Receiver(callback, secret=SECRET) as server:
        status, text = push(server.url, REPORTS[:1], secret=SECRET)
        assert (status, text) == (500, "report not taken")
        assert "boom" not in text
        assert push(server.url, REPORTS[:1], secret=SECRET) == (200, "ok")


def test_reports_go_into_the_journal(tmp_path: Path) -> None:
    from hpgfast import Message

    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"x": "1"})
        journal.load([(1, Message("79000000001", "hi", "S")),
                      (2, Message("79000000002", "yo", "S"))])
        journal.finish_load(2)
        journal.mark_in_flight([1, 2])
        journal.record_results([1, 2], [SendResult("ok", "0", "1001"),
                                        SendResult("ok", "1", "1002")])
        with Receiver(secret=SECRET, journal=journal) as server:
            assert push(server.url, REPORTS, secret=SECRET, shape="form") == (200, "ok")
            # A late push of an earlier status does not replace a final one.
            late = [("ok", "1001", "sent", datetime(2026, 11, 28, 9, 0, 0), "")]
            assert push(server.url, late, secret=SECRET) == (200, "ok")
        row = journal.by_line(2)
        assert row is not None
        assert (row["status"], row["reason"]) == ("undelivered", "unknown-subscriber")
        history = journal.history()
        assert [(h[0], h[2], h[5]) for h in history] == [(1, "delivered", "push"),
                                                         (2, "undelivered", "push")]
        assert journal.open_provider_ids() == []


def test_app_mounts_in_any_wsgi_server() -> None:
    from wsgiref.util import setup_testing_defaults

    got: list[StatusResult] = []
    app = make_app(got.append, secret=SECRET)
    body = status_lines(REPORTS)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/plain", "wsgi.input": io.BytesIO(body),
        "HTTP_X_HPG_SECRET": SECRET,
    }
    setup_testing_defaults(environ)
    answers: list[str] = []
    out = b"".join(app(environ, lambda status, headers: answers.append(status)))
    assert (answers, out) == (["200 OK"], b"ok\n")
    assert len(got) == 2


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_app(secret=None)
    with pytest.raises(ValueError, match="empty"):
        make_app(secret="")
    with pytest.raises(ValueError, match="printable ASCII"):
        make_app(secret="Ключ")
    with pytest.raises(ValueError, match="not an IP"):
        make_app(secret="x", allow=["nonsense"])


def test_plain_urllib3_client(receiver: Receiver, got: list[StatusResult]) -> None:
    with urllib3.PoolManager() as pool:
        r = pool.request("GET", receiver.url + "?providerId[0]=5&status[0]=failed&reason[0]=x",
                         headers={"X-HPG-Secret": SECRET})
        assert (r.status, r.data) == (200, b"ok\n")
    assert got == [StatusResult("ok", "5", "failed", None, "x")]



def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server ends the connection (EOF or reset) before our timeout."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_a_stalling_client_is_cut_at_the_request_deadline(got: list[StatusResult]) -> None:
    # Each read is within the handler's 30 s timeout; the whole request is not.
    with Receiver(got.append, secret=SECRET, request_deadline=0.5) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(b"GET /?providerId=1")  # and never the rest
            assert _closed_by_server(sock)
        # The server still answers others.
        push(server.url, [("ok", "7", "sent", None, None)], secret=SECRET)
    assert [r.provider_id for r in got] == ["7"]


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _connect(server: Receiver, n: int, source: str = "127.0.0.1") -> list[socket.socket]:
    return [socket.create_connection((server.host, server.port), timeout=10,
                                     source_address=(source, 0)) for _ in range(n)]


def _push_from(server: Receiver, source: str, secret: str | None = SECRET,
               pid: str = "9") -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("POST", "/", body=f"ok;{pid};delivered;;\n".encode(),
                     headers={} if secret is None else {"X-HPG-Secret": secret})
        response = conn.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        conn.close()


def test_500_idle_connections_do_not_starve_a_push(got: list[StatusResult]) -> None:
    # No allow-list: the attackers look like anyone until they send. They wait in
    # the selector, holding no slot: a push with the secret is answered at once.
    with Receiver(got.append, secret=SECRET) as server:
        attackers = _connect(server, 500)
        try:
            for sock in attackers[:100]:  # and some trickle a head they never finish
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
            _wait(lambda: server.waiting == 500)
            assert _push_from(server, "127.0.0.1") == (200, "ok")
            assert push(server.url, REPORTS, secret=SECRET) == (200, "ok")
            assert server.waiting == 500  # not saved by evicting them: they still wait
        finally:
            for sock in attackers:
                sock.close()
    assert [r.provider_id for r in got] == ["9", "1001", "1002"]


@pytest.mark.parametrize("secret", [SECRET, None])
def test_500_idle_connections_from_outside_the_allow_list(
    got: list[StatusResult], secret: str | None
) -> None:
    # Only 127.0.0.2 may push; the attackers come from 127.0.0.1 (all of 127/8 is
    # loopback). They are refused at accept, before a byte is read.
    with Receiver(got.append, secret=secret, allow=["127.0.0.2"]) as server:
        attackers = _connect(server, 500, "127.0.0.1")
        try:
            for sock in attackers[:5]:
                reply = sock.recv(4096)
                assert reply.startswith(b"HTTP/1.0 403 ")
                assert reply.endswith(b"source address not allowed\n")
                assert _closed_by_server(sock)
            assert server.waiting == 0
            assert _push_from(server, "127.0.0.2", secret) == (200, "ok")
            assert _push_from(server, "127.0.0.1", secret) == (403, "source address not allowed")
        finally:
            for sock in attackers:
                sock.close()
    assert [r.provider_id for r in got] == ["9"]


def test_a_slot_is_taken_only_once_the_head_arrived(got: list[StatusResult]) -> None:
    release = threading.Event()

    def busy(report: StatusResult) -> None:
        got.append(report)
        if report.provider_id.startswith("slow"):
            release.wait(20)

    with Receiver(busy, secret=SECRET, max_connections=2) as server:
        idle = _connect(server, 20)
        # Two whole requests with the secret, whose callback is still busy, hold
        # both slots...
        slow = [threading.Thread(target=_push_from, args=(server, "127.0.0.1", SECRET, pid))
                for pid in ("slow1", "slow2")]
        try:
            for thread in slow:
                thread.start()
            _wait(lambda: server.serving == 2)
            _wait(lambda: server.waiting == 20)
            # ... so a third whole request is answered 503 at once, without a thread.
            status, text = _raw(server, "POST", "/", b"ok;1;sent;;\n", {"X-HPG-Secret": SECRET})
            assert (status, text) == (503, "busy, push again later")
            # A request without the secret is answered 401 from its head, without a slot.
        finally:
            release.set()
            for thread in slow:
                thread.join()
        _wait(lambda: push(server.url, [("ok", "8", "sent", None, None)],
                           secret=SECRET) == (200, "ok"))
        for sock in idle:
            sock.close()
    assert sorted(r.provider_id for r in got) == ["8", "slow1", "slow2"]


def _heads(server: Receiver, n: int, length: int, extra: bytes = b"") -> list[socket.socket]:
    """``n`` connections that send a whole head with the secret and ``Content-Length:
    length``, then ``extra`` and nothing more."""
    socks = _connect(server, n)
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nX-HPG-Secret: " + SECRET.encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % length + extra)
    for sock in socks:
        sock.sendall(head)
    return socks


def test_requests_that_never_send_their_body_do_not_starve_a_push(
    got: list[StatusResult],
) -> None:
    # Seventy authenticated requests (more than the 64 slots) send their head and
    # never their body; a real push that arrives whole is still taken at once.
    with Receiver(got.append, secret=SECRET) as server:
        slow = _heads(server, 70, 100, b"ok;1;")
        try:
            _wait(lambda: server.waiting == 0)  # every head has arrived
            time.sleep(0.2)
            started = time.monotonic()
            assert _push_from(server, "127.0.0.1") == (200, "ok")
            assert push(server.url, REPORTS, secret=SECRET) == (200, "ok")
            assert time.monotonic() - started < 2.0
        finally:
            for sock in slow:
                sock.close()
    assert [r.provider_id for r in got] == ["9", "1001", "1002"]


def test_a_body_that_does_not_arrive_in_time_is_answered_408(got: list[StatusResult]) -> None:
    with Receiver(got.append, secret=SECRET, body_deadline=0.5) as server:
        (sock,) = _heads(server, 1, 100, b"ok;1;")
        with sock:
            started = time.monotonic()
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            waited = time.monotonic() - started
        assert reply.startswith(b"HTTP/1.0 408 "), reply
        assert reply.endswith(b"body not received within 0.5 s\n"), reply
        assert 0.4 < waited < 3.0
        assert push(server.url, REPORTS, secret=SECRET) == (200, "ok")
    assert [r.provider_id for r in got] == ["1001", "1002"]


def test_the_oldest_request_still_reading_its_body_makes_room(
    got: list[StatusResult],
) -> None:
    with Receiver(got.append, secret=SECRET, max_reading=3) as server:
        first, *others = _heads(server, 4, 100)
        try:
            reply = first.recv(4096)
            assert reply.startswith(b"HTTP/1.0 503 "), reply
            assert push(server.url, REPORTS, secret=SECRET) == (200, "ok")
        finally:
            for sock in [first, *others]:
                sock.close()
    assert [r.provider_id for r in got] == ["1001", "1002"]


def test_a_body_over_max_body_takes_no_slot(
    got: list[StatusResult],
) -> None:
    # A body over max_body is refused from its head, 413 at once: no thread reads
    # (drains) it, so the one slot stays free for a push.
    with Receiver(got.append, secret=SECRET, max_body=100, max_connections=1,
                  body_deadline=5.0) as server:
        (sock,) = _heads(server, 1, 5000, b"x" * 10)
        with sock:
            started = time.monotonic()
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            assert time.monotonic() - started < 1.0
        assert reply.startswith(b"HTTP/1.0 413 "), reply
        assert reply.endswith(b"body over 100 bytes\n"), reply
        assert server.serving == 0
        # The slot is free: a push is taken.
        assert push(server.url, REPORTS, secret=SECRET) == (200, "ok")
    assert [r.provider_id for r in got] == ["1001", "1002"]


@pytest.mark.parametrize(
    "name, status",
    [("X-HPG-Secret", 200), ("x-hpg-secret", 200), ("X_HPG_Secret", 401),
     ("X_HPG-Secret", 401), ("x-hpg_secret", 401)],
)
def test_the_secret_header_is_read_only_under_its_dashed_name(
    got: list[StatusResult], name: str, status: int
) -> None:
    # WSGI turns "-" into "_" in HTTP_* names: "X_HPG_Secret" would be read as the
    # secret, past a proxy that strips (or sets) the real "X-HPG-Secret".
    with Receiver(got.append, secret=SECRET) as server:
        assert _raw(server, "POST", "/", b"ok;5;sent;;\n", {name: SECRET})[0] == status
        # Beside a real header with a wrong value, it is not read either.
        if status == 401:
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(b"GET /?providerId=6&status=sent HTTP/1.0\r\n"
                             + f"X-HPG-Secret: wrong\r\n{name}: {SECRET}\r\n\r\n".encode())
                assert sock.recv(4096).startswith(b"HTTP/1.0 401 ")
    assert len(got) == (status == 200)


def test_a_secret_header_name_with_an_underscore_is_refused() -> None:
    with pytest.raises(ValueError, match="underscore"):
        make_app(secret=SECRET, secret_header="X_HPG_Secret")


def test_the_oldest_waiting_connection_makes_room(got: list[StatusResult]) -> None:
    with Receiver(got.append, secret=SECRET, max_waiting=3) as server:
        first, *others = _connect(server, 3)
        _wait(lambda: server.waiting == 3)
        newest = _connect(server, 1)
        try:
            assert _closed_by_server(first)
            assert push(server.url, [("ok", "8", "sent", None, None)], secret=SECRET) == (200, "ok")
        finally:
            for sock in [first, *others, *newest]:
                sock.close()
    assert [r.provider_id for r in got] == ["8"]


def test_an_oversize_head_gets_431(receiver: Receiver) -> None:
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.0 431 ")


def test_server_tracebacks_go_to_the_log_redacted(
    got: list[StatusResult], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    from hpgfast import receiver as receiver_module

    def broken(self: Any) -> None:
        raise RuntimeError(f"a fault quoting /hpg/{SECRET}")

    monkeypatch.setattr(receiver_module._Handler, "handle", broken)
    caplog.set_level("DEBUG", logger="hpgfast")
    with Receiver(got.append, secret=SECRET) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            # With the secret: a head without it is answered 401 before any handler.
            sock.sendall(b"GET / HTTP/1.1\r\nX-HPG-Secret: " + SECRET.encode() + b"\r\n\r\n")
            assert _closed_by_server(sock)
        _wait(lambda: "error serving" in caplog.text)
    assert "RuntimeError: a fault quoting /hpg/***" in caplog.text
    assert SECRET not in caplog.text
    out, err = capfd.readouterr()
    assert "Traceback" not in err and SECRET not in err + out


def test_malformed_request_lines_do_not_log_the_secret(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="hpgfast")
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        sock.sendall(f"GET /{SECRET} extra HTTP/1.1\r\n\r\n".encode())  # 4 words
        sock.recv(1024)
    deadline = time.monotonic() + 5
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert caplog.records  # http.server did log the bad request
    assert all(SECRET not in r.getMessage() for r in caplog.records)


# -- JSON pushes, ISO-8601 times, repeats ------------------------------------------------

PLUS3 = timezone(timedelta(hours=3))
WHEN = datetime(2020, 1, 10, 19, 3, 52, 355000, tzinfo=PLUS3)


def _post_json(server: Receiver, payload: Any, content_type: str = "application/json",
               body: bytes | None = None) -> tuple[int, str]:
    data = json.dumps(payload).encode() if body is None else body
    return _raw(server, "POST", "/", data, {"X-HPG-Secret": SECRET, "Content-Type": content_type})


def test_json_push_as_the_platform_sends_it(receiver: Receiver, got: list[StatusResult]) -> None:
    one = {"imOutMessageId": 1001, "dlvStatus": "delivered",
           "dlvStatusAt": "2020-01-10T19:03:52.355+0300"}
    assert _post_json(receiver, one) == (200, "ok")
    several = [
        {"imOutMessageId": "1002", "dlvStatus": "undelivered",
         "dlvStatusAt": "2020-01-10T16:03:52.355Z", "reason": "unknown-subscriber"},
        {"providerId": "1003", "status": "sent", "dateTime": "2020.01.10 19:03:52"},
        {"providerId": "1004", "status": "enqueued"},
    ]
    # Any body starting with '[' or '{' is JSON, whatever its declared type.
    assert _post_json(receiver, several, "text/plain") == (200, "ok")
    assert got == [
        StatusResult("ok", "1001", "delivered", WHEN, None),
        StatusResult("ok", "1002", "undelivered", WHEN, "unknown-subscriber"),
        StatusResult("ok", "1003", "sent", datetime(2020, 1, 10, 19, 3, 52), None),
        StatusResult("ok", "1004", "enqueued", None, None),
    ]
    assert got[1].time is not None and got[1].time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020-01-10T19:03:52.355+0300", WHEN),
        ("2020-01-10T19:03:52.355+03:00", WHEN),
        ("2020-01-10T19:03:52.355+03", WHEN),
        ("2020-01-10T16:03:52.355Z", WHEN),
        ("2020-01-10T16:03:52,355000Z", WHEN),
        ("2020-01-10T19:03:52.3551234+03:00", WHEN.replace(microsecond=355123)),
        ("2020-01-10T19:03:52", datetime(2020, 1, 10, 19, 3, 52)),
        ("2020-01-10T19:03", datetime(2020, 1, 10, 19, 3)),
        ("2020-01-10 19:03:52.5", datetime(2020, 1, 10, 19, 3, 52, 500000)),
        ("2020-01-10 19:03:52-0130",
         datetime(2020, 1, 10, 19, 3, 52, tzinfo=timezone(-timedelta(hours=1, minutes=30)))),
        ("2020-01-10 19:03:52", datetime(2020, 1, 10, 19, 3, 52)),  # HPG's, by the codec
        ("2020.01.10 19:03:52", datetime(2020, 1, 10, 19, 3, 52)),
    ],
)
def test_iso_8601_times_in_parameters_and_json(
    receiver: Receiver, got: list[StatusResult], text: str, expected: datetime
) -> None:
    assert _post_json(receiver, {"providerId": "1", "status": "sent", "dateTime": text}) == (
        200, "ok")
    target = "/?" + urlencode({"providerId": "2", "status": "sent", "dateTime": text})
    assert _raw(receiver, "GET", target, b"", {"X-HPG-Secret": SECRET}) == (200, "ok")
    assert [r.time for r in got] == [expected, expected]
    assert [r.time.tzinfo is None for r in got if r.time] == [expected.tzinfo is None] * 2


def test_a_time_without_offset_takes_the_platform_zone(got: list[StatusResult]) -> None:
    with Receiver(got.append, secret=SECRET, tz=PLUS3) as server:
        one = {"providerId": "1", "status": "sent", "dateTime": "2020-01-10T19:03:52.355"}
        assert _post_json(server, one) == (200, "ok")
    assert got[0].time == WHEN and got[0].time.tzinfo is PLUS3


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "unreadable JSON"),
        (b"[" * 4000, "unreadable JSON"),  # deeper than the recursion limit
        (b'{"providerId": "\xff", "status": "sent"}', "not UTF-8"),
        (b'{"providerId": "\\ud800", "status": "sent"}', "not UTF-8"),
        (b"[]", "no report"),
        (b"[1, 2]", "not an object"),
        (b'{"imOutMessageId": 1}', "without 'status'"),
        (b'{"dlvStatus": "sent"}', "without 'providerId'"),
        (b'{"imOutMessageId": true, "dlvStatus": "sent"}', "not a string"),
        (b'{"imOutMessageId": 1.5, "dlvStatus": "sent"}', "not a string"),
        (b'{"imOutMessageId": "1;2", "dlvStatus": "sent"}', "';'"),
        (b'{"imOutMessageId": "1", "providerId": "2", "status": "sent"}', "twice"),
    ],
)
def test_garbage_json_gets_400(
    receiver: Receiver, got: list[StatusResult], body: bytes, reason: str
) -> None:
    status, text = _post_json(receiver, None, body=body)
    assert status == 400, text
    assert reason in text
    assert got == []


def test_json_field_names_are_configurable(got: list[StatusResult]) -> None:
    fields = {"providerId": "msgId", "status": ["state", "dlvStatus"], "reason": "why"}
    with Receiver(got.append, secret=SECRET, json_fields=fields) as server:
        ok = {"msgId": "5", "state": "failed", "why": "platform-error",
              "dlvStatusAt": "2020-01-10T19:03:52.355+0300"}
        assert _post_json(server, ok) == (200, "ok")
        assert _post_json(server, {"msgId": "6", "dlvStatus": "sent"}) == (200, "ok")
        # Replaced, not added to: the default name for providerId is not read.
        status, text = _post_json(server, {"imOutMessageId": "7", "state": "sent"})
        assert status == 400 and "providerId" in text
    assert got == [StatusResult("ok", "5", "failed", WHEN, "platform-error"),
                   StatusResult("ok", "6", "sent", None, None)]
    with pytest.raises(ValueError, match="not one of"):
        make_app(secret=SECRET, json_fields={"when": "x"})


def test_a_repeated_push_is_answered_ok_and_taken_once(tmp_path: Path) -> None:
    from hpgfast import Message

    got: list[StatusResult] = []
    retry = [{"imOutMessageId": "1001", "dlvStatus": "delivered",
              "dlvStatusAt": "2020-01-10T19:03:52.355+0300"},
             {"imOutMessageId": "1002", "dlvStatus": "sent",
              "dlvStatusAt": "2020-01-10T19:03:50.000+0300"}]
    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"x": "1"})
        journal.load([(1, Message("79000000001", "hi", "S")),
                      (2, Message("79000000002", "yo", "S"))])
        journal.finish_load(2)
        journal.mark_in_flight([1, 2])
        journal.record_results([1, 2], [SendResult("ok", "0", "1001"),
                                        SendResult("ok", "1", "1002")])
        with Receiver(got.append, secret=SECRET, journal=journal) as server:
            for _ in range(10):  # the platform retries up to 10 times
                assert _post_json(server, retry) == (200, "ok")
            # The same time written another way is the same report.
            same = dict(retry[0], dlvStatusAt="2020-01-10T16:03:52.355Z")
            assert _post_json(server, same) == (200, "ok")
            # Another time (or status) is another report.
            later = dict(retry[1], dlvStatusAt="2020-01-10T19:03:51.000+0300")
            assert _post_json(server, later) == (200, "ok")
            # A late retry of the first push: without the memory the journal would
            # take 1002's earlier time back as a change.
            assert _post_json(server, retry) == (200, "ok")
        history = journal.history()
        row = journal.by_line(2)
        assert row is not None and row["status_time"] == "2020-01-10 19:03:51+03:00"
    assert [(r.provider_id, r.status, r.time) for r in got] == [
        ("1001", "delivered", WHEN),
        ("1002", "sent", datetime(2020, 1, 10, 19, 3, 50, tzinfo=PLUS3)),
        ("1002", "sent", datetime(2020, 1, 10, 19, 3, 51, tzinfo=PLUS3)),
    ]
    assert [(h[0], h[2], h[3]) for h in history] == [
        (1, "delivered", "2020-01-10 19:03:52.355000+03:00"),
        (2, "sent", "2020-01-10 19:03:50+03:00"),
        (2, "sent", "2020-01-10 19:03:51+03:00"),
    ]


def test_the_memory_of_repeats_is_bounded_and_a_failure_is_not_remembered() -> None:
    got: list[StatusResult] = []
    fail = [True]

    def callback(report: StatusResult) -> None:
        if fail[0] and report.provider_id == "2":
            fail[0] = False
            raise RuntimeError("boom")
        got.append(report)

    with Receiver(callback, secret=SECRET, remember=2) as server:
        def one(pid: str) -> tuple[int, str]:
            return _post_json(server, {"providerId": pid, "status": "sent"})

        assert one("1") == (200, "ok")
        assert one("2") == (500, "report not taken")  # not remembered: taken on retry
        assert one("2") == (200, "ok")
        assert one("2") == (200, "ok")  # a repeat
        assert one("3") == (200, "ok")  # remembers 2 and 3; 1 is forgotten
        assert one("1") == (200, "ok")  # taken again: the memory is bounded
    assert [r.provider_id for r in got] == ["1", "2", "3", "1"]


def test_json_push_shape(receiver: Receiver, got: list[StatusResult]) -> None:
    reports = [("ok", "1001", "delivered", WHEN, ""), ("ok", "1002", "sent", None, "x")]
    assert push(receiver.url, reports, secret=SECRET, shape="json") == (200, "ok")
    assert got == [StatusResult("ok", "1001", "delivered", WHEN, None),
                   StatusResult("ok", "1002", "sent", None, "x")]


def test_hpgfast_receive_takes_a_body_deadline() -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    env = dict(os.environ, HPGFAST_RECEIVER_SECRET=SECRET)
    bad = subprocess.run([sys.executable, "-m", "hpgfast", "receive", "--port", "0",
                          "--body-deadline", "0"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "body_deadline" in bad.stderr, bad.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "receive", "--port", "0", "--body-deadline", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"listening at http://127\.0\.0\.1:(\d+)/;", proc.stderr.readline())
        assert match is not None
        port = int(match.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nX-HPG-Secret: " + SECRET.encode()
                         + b"\r\nContent-Length: 10\r\n\r\nok;")
            started = time.monotonic()
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            assert time.monotonic() - started < 3.0
        assert reply.startswith(b"HTTP/1.0 408 "), reply
        url = f"http://127.0.0.1:{port}/"
        assert push(url, REPORTS, secret=SECRET) == (200, "ok")
        with urllib3.PoolManager() as pool:
            r = pool.request("POST", url, body=b"ok;7;sent;;\n", headers={"X_HPG_Secret": SECRET})
            assert r.status == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.splitlines() == ["1001;ok;delivered;2026-11-28 09:30:01;",
                                "1002;ok;undelivered;2026-11-28 09:30:02;unknown-subscriber"]


# -- the application as a class, its settings as one value --------------------------------


def _call(app: Any, target: str, body: bytes = b"", **environ: str) -> tuple[str, bytes]:
    """One WSGI call, as a server makes it."""
    from wsgiref.util import setup_testing_defaults

    path, _, query = target.partition("?")
    env: dict[str, Any] = {"REQUEST_METHOD": "POST" if body else "GET", "PATH_INFO": path,
                           "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
                           "wsgi.input": io.BytesIO(body), **environ}
    setup_testing_defaults(env)
    answer: list[str] = []
    chunks = app(env, lambda status, headers: answer.append(status))
    return answer[0], b"".join(chunks)


def test_make_app_is_a_receiver_app_built_from_one_settings_value() -> None:
    from hpgfast.receiver import JSON_FIELDS, ReceiverApp, ReceiverSettings

    got: list[StatusResult] = []
    app = make_app(got.append, secret=SECRET, allow=["127.0.0.1/32"], max_body=100,
                   json_fields={"providerId": "msgId"}, remember=5)
    assert isinstance(app, ReceiverApp)
    assert app.settings == ReceiverSettings(secret=SECRET, allow=("127.0.0.1/32",),
                                            max_body=100, json_fields={"providerId": ["msgId"]},
                                            remember=5)
    assert app.settings.json_fields == {**JSON_FIELDS, "providerId": ("msgId",)}
    assert SECRET not in repr(app) and SECRET not in repr(app.settings)
    with pytest.raises(AttributeError):
        app.settings.max_body = 1  # type: ignore[misc]
    status, body = _call(app, f"/hpg/{SECRET}?providerId=7&status=sent",
                         REMOTE_ADDR="127.0.0.1")
    assert (status, body) == ("200 OK", b"ok\n")
    assert [r.provider_id for r in got] == ["7"]
    status, _ = _call(app, f"/hpg/{SECRET}?providerId=7&status=sent", REMOTE_ADDR="10.0.0.1")
    assert status == "403 Forbidden"
    # Given whole, the same value makes an application that behaves the same.
    again = ReceiverApp(got.append, app.settings)
    status, _ = _call(again, f"/hpg/{SECRET}", b"x" * 101, REMOTE_ADDR="127.0.0.1")
    assert status == "413 Content Too Large"
    with pytest.raises(TypeError, match="ReceiverSettings"):
        ReceiverApp(got.append, {"secret": SECRET})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "error", "named"),
    [
        ({}, ValueError, "secret"),
        ({"secret": ""}, ValueError, "secret"),
        ({"secret": "a b"}, ValueError, "secret"),
        ({"secret": SECRET, "secret_header": "X_Secret"}, ValueError, "header"),
        ({"secret": SECRET, "max_body": 0}, ValueError, "max_body"),
        ({"secret": SECRET, "max_body": 1.5}, TypeError, "max_body"),
        ({"secret": SECRET, "remember": -1}, ValueError, "remember"),
        ({"secret": SECRET, "json_fields": {"nope": "x"}}, ValueError, "json_fields"),
        ({"secret": SECRET, "allow": ["not-a-net"]}, ValueError, "allow"),
    ],
)
def test_receiver_settings_are_checked_once_naming_the_setting(
    settings: dict[str, Any], error: type[Exception], named: str
) -> None:
    from hpgfast.receiver import ReceiverSettings

    with pytest.raises(error, match=named):
        ReceiverSettings(**settings)
    with pytest.raises(error, match=named):
        make_app(None, **{"secret": None, **settings})


def test_the_server_reads_its_limits_from_one_settings_value(got: list[StatusResult]) -> None:
    from hpgfast.receiver import ReceiverApp, ServerSettings

    with Receiver(got.append, secret=SECRET, max_connections=3, body_deadline=2.5,
                  max_body=4096) as server:
        assert server.settings == ServerSettings(max_connections=3, body_deadline=2.5)
        assert isinstance(server.app, ReceiverApp) and server.app.settings.max_body == 4096
        with pytest.raises(AttributeError):
            server.settings.max_connections = 9  # type: ignore[misc]
        assert push(server.url, REPORTS[:1], secret=SECRET) == (200, "ok")
    for name, bad, error in [("max_connections", 0, ValueError), ("max_waiting", 1.0, TypeError),
                             ("body_deadline", 0, ValueError), ("port", -1, ValueError)]:
        with pytest.raises(error, match=name):
            ServerSettings(**{name: bad})
        with pytest.raises(error, match=name):
            Receiver(got.append, secret=SECRET, **{name: bad})


def _read_all(sock: socket.socket) -> bytes:
    reply = b""
    try:
        while chunk := sock.recv(4096):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def test_oversized_bodies_are_refused_at_once_and_take_no_slot(
    got: list[StatusResult],
) -> None:
    # No secret to check: a body over max_body is refused from its head alone, 413,
    # and the connection closed; nothing is drained in a thread. Sixty-four of them
    # (every slot, were they handed over) leave a real push its slot.
    with Receiver(got.append, secret=None, allow=["127.0.0.1/32"], max_body=4096) as server:
        heads = _connect(server, 64)
        try:
            started = time.monotonic()
            for sock in heads:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
            for sock in heads:
                reply = _read_all(sock)
                assert reply.startswith(b"HTTP/1.0 413 "), reply
                assert reply.endswith(b"body over 4096 bytes\n"), reply
            assert time.monotonic() - started < 3.0
            assert server.serving == 0
            started = time.monotonic()
            assert _push_from(server, "127.0.0.1", secret=None) == (200, "ok")
            assert time.monotonic() - started < 1.0
        finally:
            for sock in heads:
                sock.close()
    assert [r.provider_id for r in got] == ["9"]


def test_an_oversized_body_flood_does_not_starve_a_push(got: list[StatusResult]) -> None:
    # The heads stay open, never sending their body: they hold neither a slot nor
    # a place among the requests waiting for a body.
    with Receiver(got.append, secret=None, allow=["127.0.0.1/32"]) as server:
        heads = _connect(server, 70)
        try:
            for sock in heads:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
            _wait(lambda: server.waiting == 0)
            time.sleep(0.2)
            assert server.serving == 0 and server.reading == 0
            started = time.monotonic()
            assert _push_from(server, "127.0.0.1", secret=None) == (200, "ok")
            assert time.monotonic() - started < 1.0
        finally:
            for sock in heads:
                sock.close()
    assert [r.provider_id for r in got] == ["9"]


@pytest.mark.parametrize("where", ["header", "path", "none"])
def test_a_request_without_the_secret_is_refused_from_its_head(
    got: list[StatusResult], where: str
) -> None:
    # 401 as soon as the head is in, the body never waited for; with the right
    # secret (header or last path segment) the same head waits for its body.
    with Receiver(got.append, secret=SECRET) as server:
        (sock,) = _connect(server, 1)
        with sock:
            target = b"/hpg/wrong" if where == "path" else b"/"
            extra = b"X-HPG-Secret: wrong\r\n" if where == "header" else b""
            sock.sendall(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra
                         + b"Content-Length: 100\r\n\r\n")
            started = time.monotonic()
            reply = _read_all(sock)
            assert time.monotonic() - started < 1.0
        assert reply.startswith(b"HTTP/1.0 401 "), reply
        assert b'WWW-Authenticate: X-HPG-Secret realm="hpgfast"' in reply
        assert server.reading == 0
        for pid, target, headers in (("5", f"/hpg/{SECRET}", {}),
                                     ("6", "/", {"X-HPG-Secret": SECRET})):
            status, _ = _raw(server, "POST", target, f"ok;{pid};sent;;\n".encode(), headers)
            assert status == 200
    assert [r.provider_id for r in got] == ["5", "6"]


def _trailing_push(server: Receiver, pid: str, gap: float) -> str:
    """A POST push with the secret whose body follows its head ``gap`` seconds later."""
    body = f"ok;{pid};delivered;;\n".encode()
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-HPG-Secret: " + SECRET.encode()
                     + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(gap)
        sock.sendall(body)
        return _read_all(sock).split(b"\r\n", 1)[0].decode()


def test_an_unauthenticated_flood_does_not_evict_real_pushes(got: list[StatusResult]) -> None:
    # 200 head-only requests without the secret, reopened as they are answered,
    # while 30 real pushes each send their body 200 ms after their head: every push
    # is taken.
    with Receiver(got.append, secret=SECRET) as server:
        stop = threading.Event()
        opened = [0]

        def flood() -> None:
            socks: list[socket.socket] = []
            while not stop.is_set():
                try:
                    sock = socket.create_connection((server.host, server.port), timeout=2)
                    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
                except OSError:
                    time.sleep(0.01)
                    continue
                socks.append(sock)
                opened[0] += 1
                if len(socks) > 50:
                    socks.pop(0).close()
            for sock in socks:
                sock.close()

        flooders = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
        for thread in flooders:
            thread.start()
        try:
            _wait(lambda: opened[0] >= 200)
            answers = [_trailing_push(server, str(i), 0.2) for i in range(30)]
        finally:
            stop.set()
            for thread in flooders:
                thread.join()
        assert opened[0] >= 400, opened  # the flood ran all along
        assert answers == ["HTTP/1.0 200 OK"] * 30, answers
    assert sorted(int(r.provider_id) for r in got) == list(range(30))


def test_one_address_cannot_evict_the_bodies_others_wait_for(
    got: list[StatusResult],
) -> None:
    # Authenticated heads from one address fill the requests waiting for a body;
    # the next from that address evicts its own oldest, not another address's.
    with Receiver(got.append, secret=SECRET, max_reading=4) as server:
        body = b"ok;7;sent;;\n"
        (other,) = _connect(server, 1, "127.0.0.2")
        other.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-HPG-Secret: " + SECRET.encode()
                      + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        _wait(lambda: server.reading == 1)
        hogs = _heads(server, 10, 100)
        try:
            time.sleep(0.3)
            other.sendall(body)
            reply = _read_all(other)
            assert reply.startswith(b"HTTP/1.0 200 "), reply
        finally:
            other.close()
            for sock in hogs:
                sock.close()
    assert [r.provider_id for r in got] == ["7"]


# -- a time or a reason that cannot be read costs only itself ---------------------------


@pytest.mark.parametrize(
    "body, content_type, target",
    [
        (b"ok;1001;delivered;2026.13.45 99:99:99;\n", "text/plain", "/"),
        (b"ok;1001;delivered;sometime today;\n", "text/plain", "/"),
        (b"", "text/plain", "/?providerId=1001&status=delivered&dateTime=yesterday"),
        (b'{"providerId": "1001", "status": "delivered", "dateTime": "2020-13-10T19:03:52Z"}',
         "application/json", "/"),
        (b'{"providerId": "1001", "status": "delivered", "dateTime": "2020-01-10T19:03:52+2500"}',
         "application/json", "/"),
        (b'{"providerId": "1001", "status": "delivered", "dateTime": "yesterday"}',
         "application/json", "/"),
    ],
)
def test_a_report_whose_time_cannot_be_read_is_taken(
    receiver: Receiver, got: list[StatusResult], body: bytes, content_type: str, target: str
) -> None:
    status, text = _raw(receiver, "POST", target, body,
                        {"X-HPG-Secret": SECRET, "Content-Type": content_type})
    assert (status, text) == (200, "ok")
    [report] = got
    assert report[:5] == ("ok", "1001", "delivered", None, None)
    assert report.final and report.raw is not None and report.raw.startswith(b"ok;1001;")


_REASON = "абонент недоступен"
_CP = _REASON.encode("cp1251")
_MANGLED = _CP.decode("utf-8", "replace")


@pytest.mark.parametrize(
    "body, content_type, target, expected",
    [
        (b"ok;1001;undelivered;2020.01.10 19:03:52;" + _CP, "text/plain; charset=windows-1251",
         "/", _REASON),
        (b"ok;1001;undelivered;2020.01.10 19:03:52;" + _CP, "text/plain", "/", _MANGLED),
        (b"providerId=1001&status=undelivered&dateTime=2020.01.10%2019:03:52&reason="
         + quote_from_bytes(_CP).encode(),
         "application/x-www-form-urlencoded; charset=windows-1251", "/", _REASON),
        (b"", "text/plain", "/?providerId=1001&status=undelivered"
         "&dateTime=2020.01.10%2019:03:52&reason=" + quote_from_bytes(_CP), _MANGLED),
        (b'{"providerId": "1001", "status": "undelivered", "dateTime": "2020.01.10 19:03:52",'
         b' "reason": "' + _CP + b'"}', "application/json; charset=windows-1251", "/", _REASON),
        (b'{"providerId": "1001", "status": "undelivered", "dateTime": "2020.01.10 19:03:52",'
         b' "reason": "' + _CP + b'"}', "application/json", "/", _MANGLED),
    ],
)
def test_a_reason_in_another_charset_is_read_by_the_declared_one(
    receiver: Receiver, got: list[StatusResult], body: bytes, content_type: str, target: str,
    expected: str,
) -> None:
    status, text = _raw(receiver, "POST", target, body,
                        {"X-HPG-Secret": SECRET, "Content-Type": content_type})
    assert (status, text) == (200, "ok")
    [report] = got
    assert report[:5] == (
        "ok", "1001", "undelivered", datetime(2020, 1, 10, 19, 3, 52), expected
    )
    assert report.raw is not None and report.raw.endswith(_CP)


def test_an_iso_time_in_a_body_of_lines_is_read(
    receiver: Receiver, got: list[StatusResult]
) -> None:
    body = b"ok;1001;delivered;2020-01-10T16:03:52.355Z;\nok;1002;sent;2020.01.10 19:03:52;\n"
    status, text = _raw(receiver, "POST", "/", body,
                        {"X-HPG-Secret": SECRET, "Content-Type": "text/plain"})
    assert (status, text) == (200, "ok")
    assert got[0].time == WHEN and got[0].raw == body.split(b"\n")[0]
    assert got[1].raw is None and len(got[1]) == 5
