"""The emulator's HTTP/1.1 server: accepting, reading requests, writing replies, faults.

Strategy: the stdlib ``http.server`` costs most of a request's time in header
parsing (``email`` machinery), writes headers and body in two segments (40 ms per
request with Nagle's algorithm and delayed ACKs) and stops only at its next poll.
So the server here is its own: one accept thread waiting in a selector together
with a wake-up socket (``close()`` returns at once), a thread per connection, the
request line and headers read with ``readline`` on a buffered socket file, and
each reply written with one ``sendall`` on a ``TCP_NODELAY`` socket. What a request
asks of the platform is the HPG part's (``_platform``); the rate limit and the
faults, which stand in front of the platform, are this part's.
"""

from __future__ import annotations

import itertools
import logging
import math
import selectors
import socket
import ssl
import struct
import threading
import time
from http import HTTPStatus
from typing import BinaryIO, NamedTuple, Optional, cast

from .._wire import SEND
from ._core import EmulatorCore
from ._encoding import encode
from ._faults import Fault

log = logging.getLogger(__name__)

#: The most bytes read (and thrown away) of a request line over the limit before
#: the emulator gives up on answering 414 politely and closes.
_DRAIN_CAP = 16 * 1024 * 1024
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100
_MAX_BODY = 1024 * 1024
_HANDSHAKE_TIMEOUT = 10.0
_LINGER_RST = struct.pack("ii", 1, 0)

_OK_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: hpgfast-emulator\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: "
)
_OK_TYPE = "text/plain; charset=utf-8"


def _ok_head(content_type: str) -> bytes:
    """The head of a 200 reply, up to its Content-Length's value (``content_type``:
    the setting; the usual one costs a compare)."""
    if content_type == _OK_TYPE:
        return _OK_HEAD
    return (
        b"HTTP/1.1 200 OK\r\nServer: hpgfast-emulator\r\nContent-Type: "
        + content_type.encode("ascii")
        + b"\r\nContent-Length: "
    )


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    414: "URI Too Long",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
#: The faults that answer a whole request, in the order they are drawn, with the
#: HTTP status they answer.
_WHOLE_REQUEST_FAULTS = (
    ("http_503", 503),
    ("http_429", 429),
    ("code_only", 200),
    ("raw_reply", 200),
)


def _reason(status: int) -> str:
    try:
        return _REASONS.get(status) or HTTPStatus(status).phrase
    except ValueError:  # a status no standard names: any phrase will do
        return "Unknown"


def _response(
    status: int,
    body: bytes,
    keep_alive: bool,
    headers: str = "",
    encoding: Optional[str] = None,
) -> bytes:
    """A whole HTTP/1.1 response (``headers``: extra lines, each ending in CRLF; a
    ``Content-Type`` among them replaces the default one; ``encoding``: a
    ``reply_encoding`` the body is sent in)."""
    if encoding is not None:
        body, coding = encode(encoding, body)
        headers += f"Content-Encoding: {coding}\r\n"
    head = f"HTTP/1.1 {status} {_reason(status)}\r\nServer: hpgfast-emulator\r\n"
    if not headers.lower().startswith("content-type:") and "\ncontent-type:" not in headers.lower():
        head += "Content-Type: text/plain; charset=utf-8\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    if status == 405:
        head += "Allow: GET\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + headers).encode() + b"\r\n" + body


def _retry_after(seconds: Optional[float]) -> str:
    return f"Retry-After: {math.ceil(seconds or 0.0)}\r\n"


def _stale_bytes(fault: Fault) -> bytes:
    """What a ``late_bytes`` fault writes after the reply (see ``Faults``)."""
    if fault.variant == "line":
        return fault.code.encode() + b"\n"
    if fault.variant == "429":
        return _response(429, b"too many requests\n", True, _retry_after(1))
    return _response(200, fault.body, True)


class _Head(NamedTuple):
    """A request read up to its body: what the server needs to answer it."""

    method: bytes
    target: bytes
    version: bytes
    keep_alive: bool
    #: The request line's length without its line end.
    length: int


class HttpServer(EmulatorCore):
    """The HTTP side of ``Emulator`` (a mixin): its sockets and threads."""

    _ssl: Optional[ssl.SSLContext]
    _listener: socket.socket
    _selector: selectors.BaseSelector
    _wake_r: socket.socket
    _wake_w: socket.socket
    _port: int
    #: Request path -> operation (``send``, ``status``).
    _paths: dict[bytes, str]
    _connection_count: itertools.count[int]
    _conn_ids: itertools.count[int]
    _conns: dict[int, tuple[threading.Thread, socket.socket]]

    # -- accepting ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.fileobj is self._wake_r:
                    return
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # pragma: no cover - EMFILE and such
                    log.warning("emulator: accept failed: %s", exc)
                    time.sleep(0.01)
                    continue
                self._start_connection(sock)

    def _start_connection(self, sock: socket.socket) -> None:
        number = next(self._connection_count)
        if self._faults.refuse.strikes(number, self._rng):
            log.debug("emulator: fault refuse on connection %d", number)
            sock.close()
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn_id = next(self._conn_ids)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn_id, sock),
            name=f"hpgfast-emulator:{self._port}:{conn_id}",
            daemon=True,
        )
        with self._lock:
            if self._closing.is_set():  # pragma: no cover - a race with close()
                sock.close()
                return
            self._conns[conn_id] = (thread, sock)
        thread.start()

    # -- one connection ----------------------------------------------------------------

    def _serve_connection(self, conn_id: int, sock: socket.socket) -> None:
        rfile: Optional[BinaryIO] = None  # the buffered reader over the socket
        try:
            if self._ssl is not None:
                sock.settimeout(_HANDSHAKE_TIMEOUT)
                sock = self._ssl.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
                with self._lock:
                    self._conns[conn_id] = (self._conns[conn_id][0], sock)
            rfile = cast(BinaryIO, sock.makefile("rb", buffering=65536))
            while not self._closing.is_set() and self._serve_request(sock, rfile):
                pass
        except (OSError, ValueError) as exc:
            # A peer gone, a failed handshake, or close() shutting the socket down.
            log.debug("emulator: connection %d ends: %s", conn_id, exc)
        except Exception:  # pragma: no cover - a bug; keep serving others
            log.exception("emulator: connection %d failed", conn_id)
        finally:
            if rfile is not None:
                rfile.close()
            sock.close()
            with self._lock:
                self._conns.pop(conn_id, None)

    def _serve_request(self, sock: socket.socket, rfile: BinaryIO) -> bool:
        """Read one request and answer it; False when the connection must close."""
        settings = self._settings
        limit = settings.max_request_line
        head = self._read_head(sock, rfile, limit)
        if head is None:
            return False
        keep_alive = head.keep_alive
        if head.length > limit:
            self._number("other")
            text = f"request line of {head.length} bytes, more than {limit}\n"
            self._reply(sock, 414, text.encode(), keep_alive)
            return keep_alive
        path, _, query = head.target.partition(b"?")
        operation = self._paths.get(path)
        if operation is None:
            self._number("other")
            self._reply(sock, 404, b"no such operation: " + path[:200] + b"\n", keep_alive)
            return keep_alive
        if head.method != b"GET":
            self._number("other")
            self._reply(sock, 405, b"HPG takes GET requests only\n", keep_alive)
            return keep_alive
        if settings.rate_limit is not None and not self._take_token(settings.rate_limit):
            self._number(operation)
            with self._lock:
                self._rate_limited += 1
            self._reply(
                sock,
                429,
                b"rate limit exceeded\n",
                keep_alive,
                f"Retry-After: {settings.retry_after}\r\n",
            )
            return keep_alive
        number = self._number(operation)
        return self._process(sock, number, operation, query, head)

    def _read_head(self, sock: socket.socket, rfile: BinaryIO, limit: int) -> Optional[_Head]:
        """Read a request's line and headers (and skip its body); None when the
        connection must close (answered already, when there was something to answer)."""
        line = rfile.readline(limit + 2)
        if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore a CRLF before a request
            line = rfile.readline(limit + 2)
        if not line:
            return None
        length = len(line)
        end = line[-2:]
        if line[-1:] != b"\n":
            while True:  # read the rest of an over-long line, to answer 414 politely
                chunk = rfile.readline(65536)
                if not chunk:
                    return None
                length += len(chunk)
                end = (end + chunk)[-2:]
                if chunk[-1:] == b"\n":
                    break
                if length > _DRAIN_CAP:
                    self._refuse(sock, 414, b"request line too long\n")
                    return None
        length -= 2 if end == b"\r\n" else 1

        # Headers: only Connection, Content-Length and Transfer-Encoding matter.
        parts = line.split() if length <= limit else [b"GET", b"", b"HTTP/1.1"]
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._refuse(sock, 400, b"malformed request line\n")
            return None
        method, target, version = parts
        keep_alive = version != b"HTTP/1.0"
        body_length = 0
        for _ in range(_MAX_HEADERS):
            header = rfile.readline(_MAX_HEADER_LINE + 1)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                return None
            if header[-1:] != b"\n":
                self._refuse(sock, 431, b"header line too long\n")
                return None
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"connection":
                value = value.strip().lower()
                if b"close" in value:
                    keep_alive = False
                elif b"keep-alive" in value:
                    keep_alive = True
            elif name == b"content-length":
                try:
                    body_length = int(value)
                except ValueError:
                    body_length = -1
                if not 0 <= body_length <= _MAX_BODY:
                    self._refuse(sock, 413, b"bad or too large Content-Length\n")
                    return None
            elif name == b"transfer-encoding":
                self._refuse(sock, 501, b"Transfer-Encoding is not supported\n")
                return None
        else:
            self._refuse(sock, 431, b"too many header lines\n")
            return None
        if body_length:
            rfile.read(body_length)  # a GET has no use for a body
        return _Head(method, target, version, keep_alive, length)

    def _refuse(self, sock: socket.socket, status: int, text: bytes) -> None:
        """Answer a request that cannot be read on, and say that the connection closes."""
        self._number("other")
        self._reply(sock, status, text, False)

    def _process(
        self, sock: socket.socket, number: int, operation: str, query: bytes, head: _Head
    ) -> bool:
        """Process request ``number`` and answer it, through the faults that strike it."""
        keep_alive = head.keep_alive
        faults = self._faults
        rng = self._rng
        # A fault that answers the whole request ("apply" ones after processing it):
        # (HTTP status, the fault, the 200's body).
        whole: Optional[tuple[int, Fault, bytes]] = None
        if faults.active:
            if faults.http_500.strikes(number, rng):
                text = f"error-system: injected fault http_500 at request {number}\n"
                self._reply(sock, 500, text.encode(), keep_alive)
                return keep_alive
            for kind, status in _WHOLE_REQUEST_FAULTS:
                fault = getattr(faults, kind)
                if fault.strikes(number, rng):
                    log.debug("emulator: fault %s (%s) at request %d", kind, fault.variant, number)
                    if kind == "raw_reply":
                        status, body = fault.status, fault.body
                    else:
                        body = fault.code.encode() + b"\n"
                    whole = (status, fault, body)
                    break
            if whole is not None and whole[1].variant == "drop":
                return self._answer_whole(sock, number, whole, keep_alive)
        try:
            if operation == SEND:
                body = self._send(query, number)
            else:
                body = self._status(query)
        except Exception as exc:
            log.exception("emulator: request %d failed", number)
            text = f"error-system: {type(exc).__name__}: {exc}\n"
            self._reply(sock, 500, text.encode("utf-8", "replace"), keep_alive)
            return keep_alive
        if whole is not None:
            if whole[0] != 200:
                return self._answer_whole(sock, number, whole, keep_alive)
            body = whole[2]
        encoding = self._settings.reply_encoding
        content_type = self._settings.content_type
        if encoding is not None:
            typed = f"Content-Type: {content_type}\r\n"
            data = _response(200, body, keep_alive, typed, encoding)
        else:
            ok_head = _ok_head(content_type)
            if not keep_alive:
                data = b"%s%d\r\nConnection: close\r\n\r\n%s" % (ok_head, len(body), body)
            elif head.version == b"HTTP/1.0":
                data = b"%s%d\r\nConnection: keep-alive\r\n\r\n%s" % (ok_head, len(body), body)
            else:
                data = b"%s%d\r\n\r\n%s" % (ok_head, len(body), body)
        if faults.active:
            return self._faulty_reply(sock, number, body, data, keep_alive)
        self._wait_latency()
        sock.sendall(data)
        return keep_alive

    def _answer_whole(
        self, sock: socket.socket, number: int, whole: tuple[int, Fault, bytes], keep_alive: bool
    ) -> bool:
        """Answer with an ``http_503`` or ``http_429`` fault's status, a ``code_only``
        fault's 200, or a ``raw_reply`` fault's status, headers and body (a 200 then
        goes through the other faults, as any reply)."""
        status, fault, body = whole
        headers = "".join(f"{name}: {value}\r\n" for name, value in fault.headers)
        if status == 200:
            data = _response(200, body, keep_alive, headers, self._settings.reply_encoding)
            if self._faults.active:
                return self._faulty_reply(sock, number, body, data, keep_alive)
            self._wait_latency()
            sock.sendall(data)
            return keep_alive
        if fault.status == status:  # a raw_reply's own status (503 and 429 faults: 200)
            self._reply(sock, status, body, keep_alive, headers)
            return keep_alive
        if status == 503:
            text = f"service unavailable: injected fault http_503 at request {number}\n"
            headers = "" if fault.seconds is None else _retry_after(fault.seconds)
        else:
            text = f"too many requests: injected fault http_429 at request {number}\n"
            headers = _retry_after(fault.seconds)
        self._reply(sock, status, text.encode(), keep_alive, headers)
        return keep_alive

    def _faulty_reply(
        self, sock: socket.socket, number: int, body: bytes, data: bytes, keep_alive: bool
    ) -> bool:
        """Send a processed request's reply (``data``: the whole response) as the
        faults struck at request ``number`` say; False when the connection must close."""
        faults = self._faults
        rng = self._rng
        if faults.delay.strikes(number, rng):
            log.debug("emulator: fault delay at request %d", number)
            if self._closing.wait(faults.delay.seconds or 0.0):
                return False
        if faults.reset_after_accept.strikes(number, rng):
            log.debug("emulator: fault reset_after_accept at request %d", number)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            return False
        if faults.cut_reply.strikes(number, rng):
            log.debug("emulator: fault cut_reply at request %d", number)
            cut = len(body) // 2
            if body[cut - 1 : cut] == b"\n":
                cut -= 1
            ok_head = _ok_head(self._settings.content_type)
            head = b"%s%d\r\nConnection: close\r\n\r\n" % (ok_head, len(body))
            self._wait_latency()
            sock.sendall(head + body[:cut])
            return False
        trickle = faults.trickle
        late = faults.late_bytes
        trickles = trickle.strikes(number, rng)
        stale = late.strikes(number, rng) and keep_alive
        self._wait_latency()
        if trickles:
            log.debug("emulator: fault trickle at request %d", number)
            if not self._trickle(sock, data, trickle):
                return False
        else:
            sock.sendall(data)
        if stale:
            log.debug("emulator: fault late_bytes (%s) at request %d", late.variant, number)
            if self._closing.wait(late.seconds or 0.0):
                return False
            sock.sendall(_stale_bytes(late))
        return keep_alive

    def _trickle(self, sock: socket.socket, data: bytes, fault: Fault) -> bool:
        """Send ``data`` a byte every ``fault.seconds``, the rest at once after
        ``fault.limit`` seconds; False when close() cut it short."""
        pause = fault.seconds or 0.0
        stop = time.monotonic() + fault.limit
        for i in range(len(data)):
            if time.monotonic() >= stop:
                sock.sendall(data[i:])
                return True
            sock.sendall(data[i : i + 1])
            if i + 1 < len(data) and self._closing.wait(pause):
                return False
        return True

    def _take_token(self, rate_limit: float) -> bool:
        """Take one request's token from the rate limit's bucket; False when empty."""
        now = time.monotonic()
        burst = self._settings.rate_burst
        with self._lock:
            tokens = self._tokens + (now - self._tokens_at) * rate_limit
            self._tokens_at = now
            if tokens > burst:
                tokens = burst
            if tokens >= 1.0:
                self._tokens = tokens - 1.0
                return True
            self._tokens = tokens
            return False

    def _number(self, operation: str) -> int:
        with self._lock:
            self._request_count += 1
            self._requests[operation] += 1
            return self._request_count

    def _wait_latency(self) -> None:
        latency = self._settings.latency
        if latency:
            self._closing.wait(latency)

    def _reply(
        self, sock: socket.socket, status: int, body: bytes, keep_alive: bool, headers: str = ""
    ) -> None:
        self._wait_latency()
        encoding = self._settings.reply_encoding
        sock.sendall(_response(status, body, keep_alive, headers, encoding))
