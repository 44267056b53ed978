"""hpgfast leaves the host's logging alone, and no logger in the process sees the password.

The contract: importing hpgfast and sending change nothing process-wide (no log
record factory, no handler or level on the root, no filter on another library's
logger); hpgfast redacts what it logs itself where it formats the message, and
never hands a request target (which holds the password) to urllib3 or to anything
else that logs. The proof: every logger of the process at DEBUG (the root with a
capturing handler, every logger's level set, asyncio's loop in debug mode) through
every way a send can fail, over both clients; no record holds the password in any
form a server or library may write it in.
"""

from __future__ import annotations

import base64
import html
import logging
import quopri
import re
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

# Imported here so that every logger they make exists when the fixture below sets
# every logger's level.
import httptools  # noqa: F401
import pytest
import trustme
import urllib3  # noqa: F401

from hpgfast import Client, HPGError, Message
from hpgfast._redact import Redactor
from hpgfast.emulator import Emulator, Fault

#: The async client's loop runs in debug mode: asyncio logs all it can.
ASYNCIO_DEBUG = True

CORE = uuid.uuid4().hex
#: Characters that every encoder writes differently, around a unique core.
SECRET = f"Zq~{CORE}é/&= +%*<>"
#: Every form of the password a record might hold, spelled out: the redactor below
#: catches these and more, and this list keeps the test honest if it ever did not.
FORMS = {
    SECRET,
    CORE,
    quote(SECRET, safe=""),
    quote(SECRET),
    quote_plus(SECRET),
    html.escape(SECRET),
    base64.b64encode(SECRET.encode()).decode(),
    base64.urlsafe_b64encode(SECRET.encode()).decode(),
    base64.b64encode(f"CLIENT:{SECRET}".encode()).decode()[8:],
    quopri.encodestring(SECRET.encode(), quotetabs=True).decode().replace("=\n", ""),
}
#: Every form hpgfast's redactor knows (percent in any case, base64 at any
#: alignment, quoted-printable, HTML and JSON escapes...): a record it would change
#: holds the password.
DETECT = Redactor(SECRET)


def leaks(text: str) -> bool:
    return DETECT(text) != text or any(form in text for form in FORMS)


# -- every logger of the process at DEBUG ------------------------------------------------


class Capture(logging.Handler):
    """Keeps every record, and its text as a handler formats it (traceback and all)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts += [self.format(record), repr(record.args), repr(record.msg)]


def _all_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]


@pytest.fixture
def every_logger() -> Iterator[Capture]:
    """``logging.basicConfig(level=DEBUG)``, and more: every logger's level at DEBUG
    and the capture on the loggers that do not propagate too."""
    capture = Capture()
    root = logging.getLogger()
    saved = [(lg, lg.level, lg.disabled) for lg in _all_loggers()]
    saved_root = root.level
    added: list[logging.Logger] = [root]
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    for logger in _all_loggers():
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(capture)
            added.append(logger)
    try:
        yield capture
    finally:
        for logger in added:
            logger.removeHandler(capture)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled
        root.setLevel(saved_root)


def assert_clean(capture: Capture) -> None:
    # Records of the test's own servers are the platform's side, and hold what the
    # client sent: only the emulator logs, and it logs no request target.
    assert capture.records, "nothing was logged: the test proves nothing"
    for text in capture.texts:
        assert not leaks(text), text
    # Nothing process-wide changed under the capture.
    assert logging.getLogRecordFactory() is logging.LogRecord
    for logger in [logging.getLogger(), *_all_loggers()]:
        assert not logger.filters, (logger.name, logger.filters)


# -- servers that fail every way ---------------------------------------------------------


def _echo_forms(password: str) -> str:
    """The password as servers echo it: raw, percent, HTML, JSON, base64, QP."""
    raw = password.encode()
    return " | ".join(
        [
            password,
            re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(password, safe="")),
            quote_plus(password, safe="*"),
            html.escape(password),
            "".join(f"\\u{ord(c):04x}" for c in password),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(b"CLIENT:" + raw).decode(),
            quopri.encodestring(raw, quotetabs=True).decode(),
        ]
    )


def _reply(kind: str, line: bytes) -> bytes | None:
    """What the hostile server answers a request line with (None: no answer)."""
    target = line.split(b" ")[1] if line.count(b" ") >= 2 else line
    query = parse_qs(urlsplit(target.decode("latin-1")).query, encoding="utf-8")
    forms = _echo_forms(query.get("password", [""])[0]).encode()
    if kind == "echo500":  # an error page quoting the request, and a broken header
        body = b"error processing " + line + b"\n" + forms
        return (
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n"
            b"Connection: close\r\nthis line is no header\r\n\r\n%s" % (len(body), body)
        )
    if kind == "echo200":  # a 200 whose lines are the echo: the parser quotes them
        body = line + b"\n" + forms + b"\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    if kind == "redirect":  # to the very URL, password and all
        body = b"moved to " + target
        return (
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1" + target + b"\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
    if kind == "header":  # the echo in a header
        return (
            b"HTTP/1.1 500 Oops\r\nX-Echo: " + line.strip() + b"\r\nX-Forms: " + forms
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    if kind == "garbage":  # not HTTP at all
        return b"SSH-2.0-what " + line + forms
    if kind == "cut":  # the status line and half a header
        return b"HTTP/1.1 200 OK\r\nContent-Le"
    return None  # "reset", "close", "silent"


def serve(kind: str) -> tuple[str, Callable[[], None]]:
    """A hostile server on loopback; returns its base URL and its stopper."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def handle(sock: socket.socket) -> None:
        with sock, sock.makefile("rb") as rfile:
            line = rfile.readline(1 << 20)
            while rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                pass
            try:
                if kind == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif kind == "silent":
                    stopped.wait(2.0)
                else:
                    answer = _reply(kind, line)
                    if answer is not None:
                        sock.sendall(answer)
            except OSError:
                pass

    def loop() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(sock,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join()

    return f"http://127.0.0.1:{listener.getsockname()[1]}", stop


def messages(n: int = 3) -> list[Message]:
    return [Message(f"7903{i:07d}", f"text {i}") for i in range(n)]


def exercise(client: Any, texts: list[str]) -> None:
    """A send and a status, whatever they end in; their errors' texts kept."""
    for call in (lambda: client.send(messages()), lambda: client.status(["1001", "1002"])):
        try:
            results = call()
        except HPGError as exc:
            texts.append(str(exc))
            results = getattr(exc, "results", None) or []
        texts += [repr(r) for r in results]


HOSTILE = ["echo500", "echo200", "redirect", "header", "garbage", "cut", "reset", "close", "silent"]


# Over both clients (sync, async): see conftest.transport.
def test_no_logger_sees_the_password_whatever_fails(
    every_logger: Capture, tmp_path: Any, transport: str
) -> None:
    texts: list[str] = []
    common: dict[str, Any] = {"default_subject": "Shop", "backoff": 0.0, "timeout": 0.3}

    # The platform: success, then each of its faults.
    with Emulator(password=SECRET, speed=None) as emu:
        with Client(emu.url, "CLIENT", SECRET, max_batch=1, retries=2, **common) as client:
            exercise(client, texts)
            done = sum(emu.requests.values())
            emu.faults.http_500 = {done + 1}
            emu.faults.reset_after_accept = {done + 2}
            emu.faults.cut_reply = {done + 3}
            emu.faults.delay = Fault(schedule=frozenset({done + 4}), seconds=0.6)
            emu.faults.refuse = {3, 4}
            emu.faults.raw_reply = Fault(schedule=frozenset({done + 7}), body=b"<html>garbage")
            client.send(messages(6))
            exercise(client, texts)
    # A wrong password.
    with Emulator() as emu, Client(emu.url, "CLIENT", SECRET, **common) as client:
        exercise(client, texts)
    # Nobody listening.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}/C/x/", "CLIENT", SECRET, retries=1, **common) as c:
        exercise(c, texts)
    # A certificate nobody trusts, and TLS spoken to a plain HTTP server.
    ca = trustme.CA()
    chain = tmp_path / "chain.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
    with Emulator(certfile=str(chain)) as emu, Client(emu.url, "CLIENT", SECRET, **common) as c:
        exercise(c, texts)
    with Emulator() as emu:
        https = emu.url.replace("http://", "https://")
        with Client(https, "CLIENT", SECRET, retries=0, **common) as c:
            exercise(c, texts)
    # Servers that echo the request back, in every shape, or break off.
    for kind in HOSTILE:
        base, stop = serve(kind)
        try:
            with Client(f"{base}/{kind}/x/", "CLIENT", SECRET, retries=1, **common) as c:
                exercise(c, texts)
        finally:
            stop()

    names = {r.name for r in every_logger.records}
    ours = {"sync": "hpgfast.client", "async": "hpgfast.aio"}[transport]
    assert ours in names and "hpgfast.core" in names, names
    if transport == "sync":
        assert any(n.startswith("urllib3") for n in names), names
    else:
        assert "asyncio" in names, names
    assert texts
    for text in texts:
        assert not leaks(text), text
    assert_clean(every_logger)


def test_the_detector_sees_every_form() -> None:
    # The check above proves something only if it would see the password.
    assert all(leaks(f"x {form} y") for form in FORMS)
    assert leaks(_echo_forms(SECRET))
    assert not leaks("GET /C/x/send?login=CLIENT&password=*** (12 bytes)")


# -- nothing process-wide ------------------------------------------------------------------

PROBE = r"""
import logging
# The libraries first, with whatever they do to logging on import (urllib3 adds a
# NullHandler to its own logger): what is compared is what hpgfast changes.
import asyncio, ssl, urllib3, httptools

def snapshot():
    loggers = [("", logging.getLogger())] + sorted(
        (name, lg) for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger) and not name.startswith("hpgfast")
    )
    return {name: (list(lg.handlers), list(lg.filters), lg.level, lg.disabled, lg.propagate)
            for name, lg in loggers}

factory = logging.getLogRecordFactory()
before = snapshot()
import hpgfast, hpgfast.aio, hpgfast.client
from hpgfast.emulator import Emulator
from hpgfast import Client, AsyncClient, Message
with Emulator() as emu:
    with Client(emu.url, emu.login, emu.password, default_subject="S") as client:
        assert client.send([Message("79031234567", "hi")])[0].ok
    async def main():
        async with AsyncClient(emu.url, emu.login, emu.password, default_subject="S") as c:
            assert (await c.send([Message("79031234567", "hi")]))[0].ok
    asyncio.run(main())
    # A client left open, as a long-running program keeps one.
    kept = Client(emu.url, emu.login, emu.password, default_subject="S")
    kept.send([Message("79031234567", "hi")])
    problems = []
    if logging.getLogRecordFactory() is not factory:
        problems.append(f"the log record factory is now {logging.getLogRecordFactory()!r}")
    after = snapshot()
    for name, state in before.items():
        if after.get(name) != state:
            problems.append(f"logger {name or 'root'!r}: {state!r} -> {after.get(name)!r}")
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.filters:
            problems.append(f"logger {name!r} has filters {logger.filters!r}")
    kept.close()
print("\n".join(problems) or "untouched")
"""


def test_importing_and_sending_leave_process_logging_untouched() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "untouched", done.stdout
