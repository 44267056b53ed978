"""Every reply shape the emulator's Python API plays, played from ``hpgfast emulate``.

Each test starts a real ``hpgfast emulate`` process with command-line options only
and reads its replies over real HTTP.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from hpgfast.emulator import Emulator

TIMEOUT = 30


def send_target(address: str = "79031111110", client_id: str = "a1") -> str:
    return (
        "/CLIENT/connectorX/send?login=CLIENT&password=P%40ssw0rd&subject=SUBJ"
        f"&address={address}&text={quote('hi')}&clientId={client_id}"
    )


@contextmanager
def emulate(*options: str) -> Iterator[tuple[str, int]]:
    """A real ``hpgfast emulate --port 0 OPTIONS``: its host and port while it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "emulate", "--port", "0", *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = urlsplit(proc.stdout.readline().strip())
        if not url.hostname:
            proc.wait(TIMEOUT)
            pytest.fail(f"hpgfast emulate did not start: {proc.stderr.read()}")
        seen = ""
        deadline = time.monotonic() + TIMEOUT
        while "Ctrl-C stops" not in seen and proc.poll() is None and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert url.port
        yield url.hostname, url.port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def get(host: str, port: int, target: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", target)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_raw_reply_status_and_headers_from_the_command_line(tmp_path: Path) -> None:
    page = tmp_path / "login.html"
    page.write_bytes(b"<html><body>Sign in</body></html>\n")
    with emulate(
        "--fault-schedule", "raw-reply=1,2", "--raw-reply-file", str(page),
        "--raw-reply-status", "302",
        "--raw-reply-header", "Location: https://portal.example/login?next=%2F",
        "--raw-reply-header", "Content-Type: text/html; charset=utf-8",
    ) as (host, port):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("GET", send_target())
            reply = conn.getresponse()
            body = reply.read()
            assert reply.status == 302
            assert reply.getheader("Location") == "https://portal.example/login?next=%2F"
            assert reply.getheader("Content-Type") == "text/html; charset=utf-8"
            assert reply.getheader("Retry-After") is None
            assert body == page.read_bytes()
        finally:
            conn.close()
        # Request 3 is not scheduled: the platform answers as usual.
        get(host, port, send_target(client_id="a2"))
        normal = http.client.HTTPConnection(host, port, timeout=10)
        try:
            normal.request("GET", send_target(client_id="a3"))
            reply = normal.getresponse()
            assert reply.status == 200
            assert reply.read().startswith(b"ok;a3;")
        finally:
            normal.close()


def test_raw_reply_503_with_retry_after_from_the_command_line() -> None:
    with emulate(
        "--fault-schedule", "raw-reply=1", "--raw-reply-status", "503",
        "--raw-reply-header", "Retry-After: 2",
    ) as (host, port):
        reply = get(host, port, send_target())
        assert reply.status == 503
        assert reply.getheader("Retry-After") == "2"


def test_http_503_retry_after_and_apply_from_the_command_line() -> None:
    with emulate(
        "--fault-schedule", "http-503=1", "--http-503-retry-after", "2", "--http-503-apply",
    ) as (host, port):
        reply = get(host, port, send_target(client_id="z1"))
        assert reply.status == 503
        assert reply.getheader("Retry-After") == "2"
        # Applied all the same: the unique clientId meets itself.
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("GET", send_target(client_id="z2"))
            assert conn.getresponse().read().startswith(b"ok;z2;1002")
        finally:
            conn.close()


def test_http_503_without_retry_after_by_default() -> None:
    with emulate("--fault-schedule", "http-503=1", "--retry-after", "2") as (host, port):
        reply = get(host, port, send_target())
        assert reply.status == 503
        # --retry-after is the 429s' alone.
        assert reply.getheader("Retry-After") is None


def test_late_bytes_body_from_the_command_line(tmp_path: Path) -> None:
    stale = tmp_path / "stale.txt"
    stale.write_bytes(b"ok;a9;424242\n")
    with emulate(
        "--fault-schedule", "late-bytes=1", "--late-bytes-file", str(stale),
        "--late-bytes-seconds", "0.05",
    ) as (host, port):
        # A raw socket: every byte on the connection, the reply and what follows it.
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(
                f"GET {send_target(client_id='a1')} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            )
            seen = b""
            deadline = time.monotonic() + 10
            while seen.count(b"HTTP/1.1 200") < 2 or not seen.endswith(b"ok;a9;424242\n"):
                assert time.monotonic() < deadline, seen
                data = sock.recv(65536)
                assert data, seen
                seen += data
        reply, late = seen.split(b"HTTP/1.1 200", 2)[1:]
        assert b"\r\n\r\nok;a1;" in reply, seen
        assert late.endswith(b"\r\n\r\nok;a9;424242\n"), seen


@pytest.mark.parametrize("bad", [
    ["--raw-reply-header", "no colon here"],
    ["--raw-reply-header", "Bad Name: x"],
    ["--raw-reply-status", "99"],
    ["--http-503-retry-after", "-1"],
])
def test_bad_shape_options_are_usage_errors(bad: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    done = subprocess.run(
        [sys.executable, "-m", "hpgfast", "emulate", "--port", "0", *bad],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


# -- reasons keyed by int digits ------------------------------------------------------


def test_reasons_take_int_digits_too() -> None:
    with Emulator(speed=0, reasons={6: "gone", "7": "broken"}) as emu:
        assert emu.reasons == {"6": "gone", "7": "broken"}
        assert emu.lifecycle.table["6"][1] == "gone"
        assert emu.lifecycle.table["7"][1] == "broken"
    for bad in ({10: "x"}, {-1: "x"}, {True: "x"}, {6.0: "x"}):
        with pytest.raises(ValueError, match="0-9"):
            Emulator(reasons=bad)
