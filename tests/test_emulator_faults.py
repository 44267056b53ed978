"""The emulator's faults, TLS, clean shutdown and command line, over real loopback.

Every fault test checks the ledger too: it must hold exactly what was applied.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
import trustme

from hpgfast.emulator import Emulator, Fault, Faults

CREDS = "login=CLIENT&password=P%40ssw0rd"


def send_target(*texts: str, first_id: int = 0) -> str:
    parts = [CREDS]
    for i, text in enumerate(texts):
        parts.append(
            f"subject[{i}]=S&address[{i}]=7903111{i:04d}&text[{i}]={quote(text, safe='')}"
            f"&clientId[{i}]={first_id + i}"
        )
    return "/CLIENT/connectorX/send?" + "&".join(parts)


def exchange(emu: Emulator, target: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=timeout)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0) as emulator:
        yield emulator


def test_http_500_applies_nothing(emu: Emulator) -> None:
    emu.faults.http_500 = Fault(schedule={1, 3})
    status, body = exchange(emu, send_target("a"))
    assert status == 500 and b"http_500" in body and b"request 1" in body
    assert len(emu.ledger) == 0
    assert exchange(emu, send_target("b")) == (200, b"ok;0;1001\n")
    assert exchange(emu, "/CLIENT/connectorX/status?" + CREDS + "&providerId=1001")[0] == 500
    assert [e.text for e in emu.ledger] == ["b"]


def test_reset_after_accept_loses_the_reply_not_the_messages(emu: Emulator) -> None:
    emu.faults.reset_after_accept = {1}
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        exchange(emu, send_target("a", "b"))
    assert [(e.text, e.request) for e in emu.ledger] == [("a", 1), ("b", 1)]
    assert exchange(emu, send_target("c"))[1] == b"ok;0;1003\n"


def test_cut_reply_mid_line(emu: Emulator) -> None:
    emu.faults.cut_reply = Fault(schedule={1})
    with pytest.raises(http.client.IncompleteRead) as caught:
        exchange(emu, send_target("a", "b", "c"))
    partial = caught.value.partial
    assert partial and not partial.endswith(b"\n")
    assert b"ok;0;1001\nok;1;1002\nok;2;1003\n".startswith(partial)
    assert len(emu.ledger) == 3


def test_delay_past_the_clients_timeout(emu: Emulator) -> None:
    emu.faults.delay = Fault(schedule={1}, seconds=30)
    # socket.timeout: TimeoutError itself from Python 3.10, an OSError of its own on 3.9.
    with pytest.raises(socket.timeout):
        exchange(emu, send_target("a"), timeout=0.3)
    assert len(emu.ledger) == 1
    assert exchange(emu, send_target("b"))[1] == b"ok;0;1002\n"
    start = time.monotonic()
    emu.close()  # cuts the 30-second wait short
    assert time.monotonic() - start < 5


def test_refuse_closes_before_reading(emu: Emulator) -> None:
    emu.faults.refuse = Fault(schedule={1})
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        exchange(emu, send_target("a"))
    assert len(emu.ledger) == 0 and emu.requests == {}
    assert exchange(emu, send_target("b"))[1] == b"ok;0;1001\n"


def test_fault_rates_are_seeded_and_repeatable() -> None:
    def pattern() -> tuple[list[int], int]:
        with Emulator(speed=0, seed=42, faults=Faults(http_500=0.5)) as emu:
            statuses = [exchange(emu, send_target(f"m{i}"))[0] for i in range(30)]
            return statuses, len(emu.ledger)

    first, accepted = pattern()
    assert 5 <= first.count(500) <= 25
    assert accepted == first.count(200)
    assert pattern() == (first, accepted)


def test_faults_coerce_and_repr() -> None:
    faults = Faults.coerce({"cut_reply": 0.25, "refuse": [2, 4]})
    assert faults.cut_reply == Fault(rate=0.25)
    assert faults.refuse.schedule == frozenset({2, 4})
    assert "cut_reply" in repr(faults) and "http_500" not in repr(faults)
    assert faults.active
    faults.clear()
    assert not faults.active and not faults.refuse.active
    assert Faults.coerce(faults) is faults


def test_the_ledger_stays_truthful_under_every_fault() -> None:
    # Each request carries unique clientIds; whatever the fault, the ledger holds
    # exactly the messages of the requests that were applied.
    faults = Faults(
        http_500=0.15, reset_after_accept=0.15, cut_reply=0.15, delay=Fault(0.1, seconds=5)
    )
    outcome: dict[int, str] = {}
    with Emulator(speed=0, seed=7, faults=faults) as emu:
        for r in range(40):
            target = send_target(*(f"r{r}m{i}" for i in range(5)), first_id=100 * r)
            try:
                status, body = exchange(emu, target, timeout=0.5)
                outcome[r] = "ok" if status == 200 else "rejected"
                if status == 200:
                    assert body.count(b"\n") == 5
            except (OSError, http.client.HTTPException):
                outcome[r] = "unknown"
        applied = {int(e.client_id) // 100 for e in emu.ledger if e.client_id is not None}
        assert emu.ledger.duplicates("client_id") == {}
        counts = emu.ledger.count_by("request")
    assert set(outcome.values()) == {"ok", "rejected", "unknown"}
    assert {r for r, o in outcome.items() if o == "ok"} <= applied
    assert not {r for r, o in outcome.items() if o == "rejected"} & applied
    # Every fault after a request applies all of it: "unknown" ones are all there.
    assert {r for r, o in outcome.items() if o == "unknown"} <= applied
    assert set(counts.values()) == {5}


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_tls_with_a_real_ca(ca: trustme.CA) -> None:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with cert.private_key_and_cert_chain_pem.tempfile() as pem:
        emu = Emulator(speed=0, certfile=pem, keyfile=pem)
    with emu:
        assert emu.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        conn = http.client.HTTPSConnection(emu.host, emu.port, context=context, timeout=5)
        try:
            conn.request("GET", send_target("secure ✓"))
            assert conn.getresponse().read() == b"ok;0;1001\n"
            conn.request("GET", send_target("again"))  # keep-alive over TLS
            assert conn.getresponse().read() == b"ok;0;1002\n"
        finally:
            conn.close()

        wrong = ssl.create_default_context()
        trustme.CA().configure_trust(wrong)
        conn = http.client.HTTPSConnection(emu.host, emu.port, context=wrong, timeout=5)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                conn.request("GET", send_target("never"))
        finally:
            conn.close()
        assert [e.text for e in emu.ledger] == ["secure ✓", "again"]


def test_tls_with_a_context_and_open_connections_at_close(ca: trustme.CA) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with Emulator(speed=0, ssl_context=server) as emu:
        conn = http.client.HTTPSConnection(emu.host, emu.port, context=context, timeout=5)
        conn.request("GET", send_target("x"))
        assert conn.getresponse().read() == b"ok;0;1001\n"
        emu.close()  # with the TLS connection still open and idle
        conn.close()
    with pytest.raises(ValueError):
        Emulator(ssl_context=server, certfile="x.pem")


# -- start and stop --------------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_hundred_start_stop_cycles_leak_nothing() -> None:
    with Emulator() as warm:  # imports and lazy allocations happen before counting
        exchange(warm, send_target("warm"))
    threads = set(threading.enumerate())
    fds = _fds()
    ports = []
    for i in range(100):
        with Emulator(speed=0) as emu:
            ports.append(emu.port)
            idle = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
            idle.request("GET", send_target(f"m{i}"))
            assert idle.getresponse().read() == b"ok;0;1001\n"
            # ``idle`` stays open through close(): the emulator must drop it anyway.
        idle.close()
    assert set(threading.enumerate()) == threads
    assert _fds() == fds
    # The last port is free again: nothing listens there, and it can be bound.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[-1]), timeout=1).close()
    socket.create_server(("127.0.0.1", ports[-1])).close()


def test_given_port_and_close_twice() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emu = Emulator(port=port)
    assert emu.port == port and f":{port}/" in emu.url and "open" in repr(emu)
    emu.close()
    emu.close()
    assert "closed" in repr(emu)
    with Emulator(port=port):  # and at once again
        pass


# -- the command line ---------------------------------------------------------------------


def test_command_line_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpgfast.emulator",
            "--port",
            "0",
            "--password-param",
            "pass",
            "--date-style",
            "dashes",
            "--http-500-rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = urlsplit(proc.stdout.readline().strip())
        assert url.scheme == "http" and url.path == "/CLIENT/connectorX/"
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        try:
            target = (
                f"{url.path}send?login=CLIENT&pass=P%40ssw0rd&subject=S&address=79031111111&text=hi"
            )
            conn.request("GET", target)
            assert conn.getresponse().read() == b"ok;0;1001\n"
        finally:
            conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "accepted 1 message\n" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_command_line_rejects_a_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpgfast.emulator", "--port", "0", "--max-request-line", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "max_request_line" in result.stderr
