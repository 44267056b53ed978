"""The emulator proper: settings, the HPG operations, and a small HTTP/1.1 server.

Strategy: the stdlib ``http.server`` costs most of a request's time in header
parsing (``email`` machinery), writes headers and body in two segments (40 ms per
request with Nagle's algorithm and delayed ACKs) and stops only at its next poll.
So the server here is its own: one accept thread waiting in a selector together
with a wake-up socket (``close()`` returns at once), a thread per connection, the
request line and headers read with ``readline`` on a buffered socket file, and
each reply written with one ``sendall`` on a ``TCP_NODELAY`` socket. The HPG side
decodes queries with ``urllib.parse.parse_qsl`` only, never with hpgfast's codec,
so that the emulator stays an independent oracle for the encoder.

Field shapes (balance, account stops, the rate limit, clientId modes, extra
fields, and the faults that answer a whole request): each is decided once per
request from a plain attribute, and whatever works per message (the balance, the
clientIds already seen, truncated ids, an extra field) runs only when its
setting is on, so that the emulator off them is as fast as without them. The
balance and the clientIds seen are settled for a whole request under one lock,
so concurrent requests never spend a message twice.

Push mode (``push_url``): one more thread takes the status changes that came due
on the emulator's clock from a ``Schedule`` (see ``_lifecycle``) and pushes them
with ``hpgfast.receiver.push``, in time order, ``push_batch`` at a time. A
failed push (no connection, a timeout, an answer other than 200) is counted and
retried with the same reports after a doubling pause, so that the order holds, up
to ``push_attempts`` attempts in all (as the platform gives up after 10); then its
reports are dropped and counted. Nothing it does can reach the HTTP server's threads.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import BinaryIO, Optional, Union, cast
from urllib.parse import parse_qsl

from .._wire import (
    ADDRESS,
    CLIENT_ID,
    LOGIN,
    PASSWORD,
    PROVIDER_ID,
    SEND,
    SEND_FIELDS,
    STATUS,
    SUBJECT,
    TEXT,
    Code,
)
from ._faults import Fault, FaultLike, Faults, check_code
from ._ledger import Accepted, Ledger
from ._lifecycle import SEMICOLON_REASONS, Change, Lifecycle, Schedule, Timing, status_at

__all__ = ["Emulator"]

log = logging.getLogger(__name__)

_REPLY_ORDERS = ("sent", "shuffled")
_DATE_FORMATS = {"dots": "%Y.%m.%d %H:%M:%S", "dashes": "%Y-%m-%d %H:%M:%S"}
#: The most bytes read (and thrown away) of a request line over the limit before
#: the emulator gives up on answering 414 politely and closes.
_DRAIN_CAP = 16 * 1024 * 1024
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100
_MAX_BODY = 1024 * 1024
_HANDSHAKE_TIMEOUT = 10.0
_LINGER_RST = struct.pack("ii", 1, 0)
_UNSAFE_ECHO = frozenset(";\r\n")

_OK_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: hpgfast-emulator\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: "
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
#: The code a SEND gets when the account's balance is spent (not in the
#: specification's table; seen in the field).
INSUFFICIENT_BALANCE = Code.ERROR_INSUFFICIENT_BALANCE
CLIENT_ID_MODES = ("echo", "ignore")
#: The faults that answer a whole request, in the order they are drawn, with the
#: HTTP status they answer.
_WHOLE_REQUEST_FAULTS = (
    ("http_503", 503),
    ("http_429", 429),
    ("code_only", 200),
    ("raw_reply", 200),
)

_SUBJECT_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))

PUSH_SHAPES = ("lines", "form", "query", "json")
#: Real seconds one push may take; close() waits for a push under way at most this.
_PUSH_TIMEOUT = 5.0
#: The longest pause between two attempts at a failing push, real seconds.
_PUSH_BACKOFF_MAX = 2.0
#: The longest query string a ``query`` push sends (a GET's request line).
_PUSH_QUERY_MAX = 8000

Names = Optional[Iterable[str]]


def _response(status: int, body: bytes, keep_alive: bool, headers: str = "") -> bytes:
    """A whole HTTP/1.1 response (``headers``: extra lines, each ending in CRLF)."""
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: hpgfast-emulator\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    )
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


class _Rejected(Exception):
    """A whole request refused with one code line (``error-auth``, ``error-syntax``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Emulator:
    """A local HPG platform on loopback: ``with Emulator() as emu: ... emu.url ...``.

    Args:
        host, port: where to listen; port 0 picks a free one (see ``.port``).
        client, connector: the two path segments of the connector's base URL.
        login, password: the credentials the connector accepts.
        login_param, password_param: the credential parameters' names (a connector
            may expect ``pass`` instead of ``password``).
        max_request_line: the longest request line answered; longer ones get 414.
        reply_order: ``"sent"`` (request index order) or ``"shuffled"``.
        date_style: ``"dots"`` (``2012.03.15 19:53:14``) or ``"dashes"``.
        allow_addresses, allow_subjects: when given, only these are allowed (others
            get ``error-address-unknown`` / ``error-subject-unknown``).
        deny_addresses, deny_subjects: these are never allowed.
        system_error_addresses: messages to these get ``error-system``.
        subject_max_length: the longest alphanumeric subject (numeric ones: 15).
        speed: emulator seconds per real second for the lifecycle clock; ``None``
            or 0 stops it, so it moves only by ``advance()``.
        sent_after, final_after, delayed_for: the lifecycle's durations
            (emulator seconds; see ``hpgfast.emulator`` for the rule table).
        first_provider_id: the first providerId given.
        latency: real seconds added before every reply.
        certfile, keyfile: serve HTTPS with this certificate chain and key.
        ssl_context: serve HTTPS with this server-side context instead.
        seed: seeds the generator behind fault rates and shuffled replies.
        faults: a ``Faults``, or a mapping of fault kinds (see ``Faults``).
        push_url: push every status change of accepted messages to this URL (an
            ``hpgfast receive`` server, ``hpgfast.receiver.Receiver``), as the
            platform does; None: no pushes.
        push_secret: the shared secret sent in the ``X-HPG-Secret`` header; the
            ``push_secret`` attribute may be changed while running.
        push_shape: ``"lines"`` (POST, STATUS lines), ``"form"`` (POST, indexed form),
            ``"query"`` (GET, indexed query; split to keep the query under 8000
            bytes) or ``"json"`` (POST, a JSON list of the platform's later
            callbacks: ``imOutMessageId``, ``dlvStatus``, ``dlvStatusAt`` in ISO-8601,
            ``reason``).
        push_batch: the most reports per push.
        push_interval: real seconds between looks at the clock for due changes.
        push_attempts: attempts at one push (the first included) before its
            reports are dropped (counted in ``pushes["dropped"]``).
        balance: messages the account may still send (None: no limit); see
            ``hpgfast.emulator`` for the code-only and per-line answers once it is
            spent. The ``balance`` attribute reads what is left and may be set
            (a top-up) while running.
        account_state: None, or a code (``error-account-locked``,
            ``error-system-blocked``, any) answered as the single code-only line
            to every authenticated SEND and STATUS; may be set while running.
        rate_limit: requests per second let through (a token bucket in front of
            the platform); more get ``429 Too Many Requests`` and nothing is
            processed. None: no limit.
        rate_burst: the bucket's size, requests (1: evenly spaced requests only).
        retry_after: the ``Retry-After`` seconds of the rate limit's 429s.
        status_case: ``"lower"`` (``delivered``) or ``"upper"`` (``DELIVERED``)
            statuses in STATUS replies and pushes.
        field_statuses: digits 1 to 5 play ``read``, ``expired``, ``vp_expired``,
            ``rejected``, ``no-match-template`` (see ``hpgfast.emulator``).
        semicolon_reasons: final reasons holding ``;`` (``absent;subscriber``).
        reasons: digit -> reason of its final status, over the defaults.
        send_extra: a field appended to every ``ok`` SEND line (``"2"``:
            ``ok;0;1001;2``, a part count); None: none.
        client_ids: ``"echo"`` (reply lines carry the clientId sent) or
            ``"ignore"`` (they carry the message's index even when one was sent).
        max_client_id_length: echo at most this many characters of a clientId.
        unique_client_ids: a clientId accepted in any earlier request (for the
            emulator's lifetime) is answered ``error-id-not-unique``, not applied.

    Raises:
        ValueError: an unknown ``reply_order`` or ``date_style``, or a bad number.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client: str = "CLIENT",
        connector: str = "connectorX",
        login: str = "CLIENT",
        password: str = "P@ssw0rd",
        login_param: str = LOGIN,
        password_param: str = PASSWORD,
        max_request_line: int = 8192,
        reply_order: str = "sent",
        date_style: str = "dots",
        allow_addresses: Names = None,
        deny_addresses: Iterable[str] = (),
        allow_subjects: Names = None,
        deny_subjects: Iterable[str] = (),
        system_error_addresses: Iterable[str] = (),
        subject_max_length: int = 11,
        speed: Optional[float] = 1.0,
        sent_after: float = 1.0,
        final_after: float = 2.0,
        delayed_for: float = 60.0,
        first_provider_id: int = 1001,
        latency: float = 0.0,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        seed: Optional[int] = None,
        faults: Union[Faults, Mapping[str, FaultLike], None] = None,
        push_url: Optional[str] = None,
        push_secret: Optional[str] = None,
        push_shape: str = "lines",
        push_batch: int = 500,
        push_interval: float = 0.05,
        push_attempts: int = 10,
        balance: Optional[int] = None,
        account_state: Optional[str] = None,
        rate_limit: Optional[float] = None,
        rate_burst: float = 1.0,
        retry_after: int = 1,
        status_case: str = "lower",
        field_statuses: bool = False,
        semicolon_reasons: bool = False,
        reasons: Optional[Mapping[str, str]] = None,
        send_extra: Optional[str] = None,
        client_ids: str = "echo",
        max_client_id_length: Optional[int] = None,
        unique_client_ids: bool = False,
    ) -> None:
        if push_url is not None and not push_url.startswith(("http://", "https://")):
            raise ValueError("push_url must be an http:// or https:// URL")
        if push_shape not in PUSH_SHAPES:
            raise ValueError(f"push_shape must be one of {PUSH_SHAPES}, got {push_shape!r}")
        if push_secret is not None and not (
            push_secret and push_secret.isascii() and push_secret.isprintable()
        ):
            # Never echoed: the message names the rule, not the value.
            raise ValueError("push_secret must be non-empty printable ASCII")
        if push_batch < 1 or not push_interval > 0 or push_attempts < 1:
            raise ValueError(
                "push_batch and push_attempts must be at least 1 and push_interval positive"
            )
        if reply_order not in _REPLY_ORDERS:
            raise ValueError(f"reply_order must be one of {_REPLY_ORDERS}, got {reply_order!r}")
        if date_style not in _DATE_FORMATS:
            raise ValueError(f"date_style must be 'dots' or 'dashes', got {date_style!r}")
        if max_request_line < 64:
            raise ValueError(f"max_request_line must be at least 64, got {max_request_line}")
        if not 0.0 <= sent_after <= final_after or delayed_for < 0:
            raise ValueError("need 0 <= sent_after <= final_after and delayed_for >= 0")
        if latency < 0 or (speed is not None and speed < 0):
            raise ValueError("latency and speed must not be negative")
        if account_state is not None:
            check_code(account_state, "account_state")
        if rate_limit is not None and not rate_limit > 0:
            raise ValueError(f"rate_limit must be positive, got {rate_limit!r}")
        if not rate_burst >= 1:
            raise ValueError(f"rate_burst must be at least 1, got {rate_burst!r}")
        if not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError(f"retry_after must be whole seconds >= 0, got {retry_after!r}")
        if send_extra is not None and (not send_extra or any(c in "\r\n" for c in send_extra)):
            raise ValueError("send_extra must be non-empty text without CR or LF")
        if client_ids not in CLIENT_ID_MODES:
            raise ValueError(f"client_ids must be one of {CLIENT_ID_MODES}, got {client_ids!r}")
        if max_client_id_length is not None and max_client_id_length < 1:
            raise ValueError(f"max_client_id_length must be at least 1, got {max_client_id_length}")
        if unique_client_ids and client_ids != "echo":
            raise ValueError("unique_client_ids needs client_ids='echo'")
        self.lifecycle = Lifecycle(
            field_statuses=field_statuses,
            status_case=status_case,
            reasons={**(SEMICOLON_REASONS if semicolon_reasons else {}), **(reasons or {})},
        )
        self.client = client
        self.connector = connector
        self.login = login
        self.password = password
        self.login_param = login_param
        self.password_param = password_param
        self.max_request_line = max_request_line
        self.reply_order = reply_order
        self.date_style = date_style
        self.allow_addresses = None if allow_addresses is None else frozenset(allow_addresses)
        self.deny_addresses = frozenset(deny_addresses)
        self.allow_subjects = None if allow_subjects is None else frozenset(allow_subjects)
        self.deny_subjects = frozenset(deny_subjects)
        self.system_error_addresses = frozenset(system_error_addresses)
        self.subject_max_length = subject_max_length
        self.timing = Timing(sent_after, final_after, delayed_for)
        self.latency = latency
        self.faults = Faults.coerce(faults)
        self.push_url = push_url
        self.push_secret = push_secret
        self.push_shape = push_shape
        self.push_batch = push_batch
        self.push_interval = push_interval
        self.push_attempts = push_attempts
        self.ledger = Ledger(first_provider_id)
        self.account_state = account_state
        self.rate_limit = rate_limit
        self.rate_burst = float(rate_burst)
        self.retry_after = retry_after
        self.send_extra = send_extra
        self.client_ids = client_ids
        self.max_client_id_length = max_client_id_length
        self.unique_client_ids = unique_client_ids
        self._check_balance(balance)
        self._balance = balance
        # Balance and unique clientIds: decided for a whole request under one lock.
        self._account_lock = threading.Lock()
        self._seen_ids: set[str] = set()
        self._tokens = self.rate_burst
        self._tokens_at = time.monotonic()
        self._rate_limited = 0

        self._date_format = _DATE_FORMATS[date_style]
        self._rng = random.Random(seed)
        self._speed = float(speed or 0.0)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self.start_time = datetime.now().replace(microsecond=0)
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._request_count = 0
        self._connection_count = itertools.count(1)
        self._conn_ids = itertools.count()
        self._conns: dict[int, tuple[threading.Thread, socket.socket]] = {}
        self._closing = threading.Event()
        self._closed = False
        # Push mode: the schedule of changes (under _push_lock), the counters
        # (under _lock), and an event that wakes the pushing thread early.
        self._push_lock = threading.Lock()
        self._schedule = None if push_url is None else Schedule(self.timing, self.lifecycle)
        self._pushes: Counter[str] = Counter(sent=0, failed=0, reports=0, dropped=0)
        self._push_wake = threading.Event()
        self._push_thread: Optional[threading.Thread] = None
        self._paths = {
            f"/{client}/{connector}/{SEND}".encode(): SEND,
            f"/{client}/{connector}/{STATUS}".encode(): STATUS,
        }

        if ssl_context is None and certfile is not None:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(certfile, keyfile)
        elif certfile is not None:
            raise ValueError("give certfile/keyfile or ssl_context, not both")
        self._ssl = ssl_context

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        try:
            self._listener.setblocking(False)
            self._selector.register(self._listener, selectors.EVENT_READ)
            self._selector.register(self._wake_r, selectors.EVENT_READ)
            self.host = host
            self.port: int = self._listener.getsockname()[1]
            self._thread = threading.Thread(
                target=self._accept_loop, name=f"hpgfast-emulator:{self.port}", daemon=True
            )
            self._thread.start()
            if push_url is not None:
                self._push_thread = threading.Thread(
                    target=self._push_loop, name=f"hpgfast-emulator:{self.port}:push",
                    daemon=True,
                )
                self._push_thread.start()
        except BaseException:
            self._closing.set()
            accepting = getattr(self, "_thread", None)
            if accepting is not None and accepting.ident is not None:
                self._wake_w.send(b"x")
                accepting.join()
            self._release()
            raise
        log.debug("emulator listening at %s", self.url)

    # -- public ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The connector's base URL, with a trailing slash (``https`` when serving TLS)."""
        scheme = "https" if self._ssl is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.client}/{self.connector}/"

    @property
    def requests(self) -> Counter[str]:
        """Requests served so far per operation (``send``, ``status``, ``other``): a copy."""
        with self._lock:
            return Counter(self._requests)

    @property
    def pushes(self) -> Counter[str]:
        """Push mode's counters, a copy: ``sent`` and ``failed`` pushes (HTTP requests),
        ``reports`` delivered by the sent ones, ``dropped`` reports given up on after
        ``push_attempts`` failed attempts, ``pending`` changes due but not pushed."""
        with self._lock:
            return Counter(self._pushes)

    @property
    def balance(self) -> Optional[int]:
        """Messages the account may still send; None: no limit. May be set (a top-up)."""
        with self._account_lock:
            return self._balance

    @balance.setter
    def balance(self, value: Optional[int]) -> None:
        self._check_balance(value)
        with self._account_lock:
            self._balance = value

    @staticmethod
    def _check_balance(value: Optional[int]) -> None:
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"balance must be a whole number >= 0 or None, got {value!r}")

    @property
    def rate_limited(self) -> int:
        """Requests the rate limit (``rate_limit``) answered 429 so far."""
        with self._lock:
            return self._rate_limited

    @property
    def connections(self) -> int:
        """Connections open right now."""
        with self._lock:
            return len(self._conns)

    def now(self) -> float:
        """The lifecycle clock: emulator seconds since the emulator started."""
        if self._speed:
            return (time.monotonic() - self._mono0) * self._speed + self._offset
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move the lifecycle clock forward (whatever its speed)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        self._push_wake.set()

    def datetime_at(self, emulator_seconds: float) -> datetime:
        """The wall-clock time the emulator shows for a point on its clock."""
        return self.start_time + timedelta(seconds=int(emulator_seconds))

    def status(self, provider_id: Union[str, int]) -> Optional[tuple[str, datetime, str]]:
        """(status, since when, reason) of a message now, as STATUS would tell; or None."""
        key = self._lookup(str(provider_id))
        if key is None:
            return None
        last, accepted = key
        status, since, reason = status_at(last, self.now() - accepted, self.timing, self.lifecycle)
        return status, self.datetime_at(accepted + since), reason

    def close(self) -> None:
        """Stop serving: close the listening socket and every connection, join threads."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        try:
            self._wake_w.send(b"x")
        except OSError:  # pragma: no cover - the pair is ours and open
            pass
        self._push_wake.set()
        self._thread.join()
        if self._push_thread is not None:
            self._push_thread.join()
        with self._lock:
            conns = list(self._conns.values())
        for _, sock in conns:
            try:
                # The plain socket's shutdown, even on an SSLSocket: it wakes the
                # handler's blocked read without touching the TLS state it uses.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in conns:
            thread.join()
        self._release()
        log.debug("emulator at port %d closed", self.port)

    def _release(self) -> None:
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Emulator {self.url} {state}, {len(self.ledger)} messages>"

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
        if self.faults.refuse.strikes(number, self._rng):
            log.debug("emulator: fault refuse on connection %d", number)
            sock.close()
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn_id = next(self._conn_ids)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn_id, sock),
            name=f"hpgfast-emulator:{self.port}:{conn_id}",
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
        limit = self.max_request_line
        line = rfile.readline(limit + 2)
        if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore a CRLF before a request
            line = rfile.readline(limit + 2)
        if not line:
            return False
        length = len(line)
        end = line[-2:]
        if line[-1:] != b"\n":
            while True:  # read the rest of an over-long line, to answer 414 politely
                chunk = rfile.readline(65536)
                if not chunk:
                    return False
                length += len(chunk)
                end = (end + chunk)[-2:]
                if chunk[-1:] == b"\n":
                    break
                if length > _DRAIN_CAP:
                    self._number("other")
                    self._reply(sock, 414, b"request line too long\n", False)
                    return False
        length -= 2 if end == b"\r\n" else 1

        # Headers: only Connection, Content-Length and Transfer-Encoding matter.
        parts = line.split() if length <= limit else [b"GET", b"", b"HTTP/1.1"]
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._number("other")
            self._reply(sock, 400, b"malformed request line\n", False)
            return False
        method, target, version = parts
        keep_alive = version != b"HTTP/1.0"
        body_length = 0
        for _ in range(_MAX_HEADERS):
            header = rfile.readline(_MAX_HEADER_LINE + 1)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                return False
            if header[-1:] != b"\n":
                self._number("other")
                self._reply(sock, 431, b"header line too long\n", False)
                return False
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
                    self._number("other")
                    self._reply(sock, 413, b"bad or too large Content-Length\n", False)
                    return False
            elif name == b"transfer-encoding":
                self._number("other")
                self._reply(sock, 501, b"Transfer-Encoding is not supported\n", False)
                return False
        else:
            self._number("other")
            self._reply(sock, 431, b"too many header lines\n", False)
            return False
        if body_length:
            rfile.read(body_length)  # a GET has no use for a body

        if length > limit:
            self._number("other")
            text = f"request line of {length} bytes, more than {limit}\n"
            self._reply(sock, 414, text.encode(), keep_alive)
            return keep_alive
        path, _, query = target.partition(b"?")
        operation = self._paths.get(path)
        if operation is None:
            self._number("other")
            self._reply(sock, 404, b"no such operation: " + path[:200] + b"\n", keep_alive)
            return keep_alive
        if method != b"GET":
            self._number("other")
            self._reply(sock, 405, b"HPG takes GET requests only\n", keep_alive)
            return keep_alive
        if self.rate_limit is not None and not self._take_token():
            self._number(operation)
            with self._lock:
                self._rate_limited += 1
            self._reply(
                sock,
                429,
                b"rate limit exceeded\n",
                keep_alive,
                f"Retry-After: {self.retry_after}\r\n",
            )
            return keep_alive
        number = self._number(operation)

        faults = self.faults
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
                    body = fault.body if kind == "raw_reply" else fault.code.encode() + b"\n"
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
        if keep_alive:
            if version == b"HTTP/1.0":
                data = b"%s%d\r\nConnection: keep-alive\r\n\r\n%s" % (_OK_HEAD, len(body), body)
            else:
                data = b"%s%d\r\n\r\n%s" % (_OK_HEAD, len(body), body)
        else:
            data = b"%s%d\r\nConnection: close\r\n\r\n%s" % (_OK_HEAD, len(body), body)
        if faults.active:
            return self._faulty_reply(sock, number, body, data, keep_alive)
        self._wait_latency()
        sock.sendall(data)
        return keep_alive

    def _answer_whole(
        self, sock: socket.socket, number: int, whole: tuple[int, Fault, bytes], keep_alive: bool
    ) -> bool:
        """Answer with an ``http_503`` or ``http_429`` fault's status, or a ``code_only``
        or ``raw_reply`` fault's 200 (then through the other faults, as any reply)."""
        status, fault, body = whole
        if status == 200:
            data = _response(200, body, keep_alive)
            if self.faults.active:
                return self._faulty_reply(sock, number, body, data, keep_alive)
            self._wait_latency()
            sock.sendall(data)
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
        faults = self.faults
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
            head = b"%s%d\r\nConnection: close\r\n\r\n" % (_OK_HEAD, len(body))
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

    def _take_token(self) -> bool:
        """Take one request's token from the rate limit's bucket; False when empty."""
        now = time.monotonic()
        assert self.rate_limit is not None
        with self._lock:
            tokens = self._tokens + (now - self._tokens_at) * self.rate_limit
            self._tokens_at = now
            if tokens > self.rate_burst:
                tokens = self.rate_burst
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
        if self.latency:
            self._closing.wait(self.latency)

    def _reply(
        self, sock: socket.socket, status: int, body: bytes, keep_alive: bool, headers: str = ""
    ) -> None:
        self._wait_latency()
        sock.sendall(_response(status, body, keep_alive, headers))

    # -- HPG -----------------------------------------------------------------------------

    def _parse(self, query: bytes) -> tuple[list[tuple[str, str]], bool]:
        """The query's pairs, and whether the credentials are right."""
        try:
            pairs = parse_qsl(
                query.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=False,
                encoding="utf-8",
                errors="strict",
            )
        except UnicodeDecodeError:
            raise _Rejected(Code.ERROR_SYNTAX) from None
        login = password = None
        login_param = self.login_param
        password_param = self.password_param
        for name, value in pairs:
            if name == login_param:
                if login is not None:
                    raise _Rejected(Code.ERROR_SYNTAX)
                login = value
            elif name == password_param:
                if password is not None:
                    raise _Rejected(Code.ERROR_SYNTAX)
                password = value
        return pairs, login == self.login and password == self.password

    def _send(self, query: bytes, number: int) -> bytes:
        try:
            return self._send_lines(query, number)
        except _Rejected as exc:
            return exc.code.encode() + b"\n"

    def _send_lines(self, query: bytes, number: int) -> bytes:
        pairs, authentic = self._parse(query)
        indexed: dict[int, dict[str, str]] = {}
        single: dict[str, str] = {}
        request_params: dict[str, str] = {}
        credentials = (self.login_param, self.password_param)
        for name, value in pairs:
            if name[-1:] == "]":
                base, bracket, index = name[:-1].partition("[")
                if not bracket or not base or not index.isdigit() or not index.isascii():
                    raise _Rejected(Code.ERROR_SYNTAX)
                fields = indexed.get(int(index))
                if fields is None:
                    fields = indexed[int(index)] = {}
                if base in fields:
                    raise _Rejected(Code.ERROR_SYNTAX)
                fields[base] = value
            elif name in credentials:
                continue
            elif "[" in name or "]" in name:
                raise _Rejected(Code.ERROR_SYNTAX)
            elif name in SEND_FIELDS:
                if name in single:
                    raise _Rejected(Code.ERROR_SYNTAX)
                single[name] = value
            else:
                if name in request_params:
                    raise _Rejected(Code.ERROR_SYNTAX)
                request_params[name] = value
        if not authentic:
            raise _Rejected(Code.ERROR_AUTH)
        account_state = self.account_state
        if account_state is not None:
            raise _Rejected(account_state)
        if single:
            if indexed:
                raise _Rejected(Code.ERROR_SYNTAX)
            indexed = {0: single}
        elif not indexed:
            raise _Rejected(Code.ERROR_SYNTAX)

        ordered = sorted(indexed.items()) if len(indexed) > 1 else list(indexed.items())
        # The id each reply line carries: the clientId, else the message's index.
        if self.client_ids == "echo":
            ids = [fields.get(CLIENT_ID, str(index)) for index, fields in ordered]
        else:
            ids = [str(index) for index, _ in ordered]
        repeated = {i for i, n in Counter(ids).items() if n > 1} if len(ids) > 1 else set()
        codes: list[str] = []
        accepted: list[Accepted] = []
        for (_, fields), reply_id in zip(ordered, ids):
            code = self._check(fields, reply_id, repeated)
            codes.append(code)
            if code == Code.OK:
                extra = None
                if len(fields) > 4 or (len(fields) == 4 and CLIENT_ID not in fields):
                    extra = {k: v for k, v in fields.items() if k not in SEND_FIELDS}
                accepted.append(
                    (
                        fields[ADDRESS],
                        fields[SUBJECT],
                        fields[TEXT],
                        fields.get(CLIENT_ID),
                        extra,
                    )
                )
        if self._balance is not None or self.unique_client_ids:
            accepted = self._settle(ordered, codes)
        schedule = self._schedule
        if schedule is None:
            pid = self.ledger.append(number, self.now(), request_params, accepted)
        else:
            lasts = "".join([message[0][-1] for message in accepted]).encode("ascii")
            # One lock around reading the clock and scheduling keeps the schedule's
            # acceptance times in order across connections.
            with self._push_lock:
                now = self.now()
                pid = self.ledger.append(number, now, request_params, accepted)
                schedule.add(pid, now, lasts)
            if accepted:
                self._push_wake.set()
        limit = self.max_client_id_length
        if limit is not None:
            ids = [reply_id[:limit] for reply_id in ids]
        lines = []
        for code, reply_id in zip(codes, ids):
            if any(c in _UNSAFE_ECHO for c in reply_id):
                reply_id = ""
            if code == Code.OK:
                lines.append(f"ok;{reply_id};{pid}\n")
                pid += 1
            else:
                lines.append(f"{code};{reply_id};\n")
        extra_field = self.send_extra
        if extra_field is not None:
            end = f";{extra_field}\n"
            lines = [line[:-1] + end if line[:3] == "ok;" else line for line in lines]
        if self.reply_order == "shuffled":
            self._rng.shuffle(lines)
        return "".join(lines).encode()

    def _settle(
        self, ordered: Sequence[tuple[int, dict[str, str]]], codes: list[str]
    ) -> list[Accepted]:
        """Apply the account's rules to a request's codes (in place): clientIds
        accepted before, then the balance; returns the messages still accepted.

        Raises:
            _Rejected: the balance was spent before the request came.
        """
        with self._account_lock:
            seen = self._seen_ids if self.unique_client_ids else None
            if seen is not None:
                for n, code in enumerate(codes):
                    if code == Code.OK and ordered[n][1].get(CLIENT_ID) in seen:
                        codes[n] = Code.ERROR_ID_NOT_UNIQUE
            left = self._balance
            if left is not None:
                if left == 0:
                    raise _Rejected(INSUFFICIENT_BALANCE)
                for n, code in enumerate(codes):
                    if code == Code.OK:
                        if left:
                            left -= 1
                        else:
                            codes[n] = INSUFFICIENT_BALANCE
                self._balance = left
            accepted: list[Accepted] = []
            for (_, fields), code in zip(ordered, codes):
                if code != Code.OK:
                    continue
                client_id = fields.get(CLIENT_ID)
                if seen is not None and client_id is not None:
                    seen.add(client_id)
                extra = {k: v for k, v in fields.items() if k not in SEND_FIELDS} or None
                accepted.append((fields[ADDRESS], fields[SUBJECT], fields[TEXT], client_id, extra))
        return accepted

    def _check(self, fields: dict[str, str], reply_id: str, repeated: set[str]) -> str:
        """The code for one message."""
        address = fields.get(ADDRESS)
        subject = fields.get(SUBJECT)
        if not address or not subject or not fields.get(TEXT):
            return Code.ERROR_SYNTAX
        if any(c in _UNSAFE_ECHO for c in reply_id):
            return Code.ERROR_SYNTAX
        if reply_id in repeated:
            return Code.ERROR_ID_NOT_UNIQUE
        digits = address[1:] if address[0] == "+" else address
        if not (10 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
            return Code.ERROR_ADDRESS_FORMAT
        numeric = subject[1:] if subject[0] == "+" else subject
        if numeric.isascii() and numeric.isdigit():
            if len(numeric) > 15:
                return Code.ERROR_SUBJECT_FORMAT
        elif len(subject) > self.subject_max_length or not _SUBJECT_CHARS.issuperset(subject):
            return Code.ERROR_SUBJECT_FORMAT
        if address in self.deny_addresses or (
            self.allow_addresses is not None and address not in self.allow_addresses
        ):
            return Code.ERROR_ADDRESS_UNKNOWN
        if subject in self.deny_subjects or (
            self.allow_subjects is not None and subject not in self.allow_subjects
        ):
            return Code.ERROR_SUBJECT_UNKNOWN
        if address in self.system_error_addresses:
            return Code.ERROR_SYSTEM
        return Code.OK

    def _status(self, query: bytes) -> bytes:
        try:
            pairs, authentic = self._parse(query)
            ids: dict[int, str] = {}
            single: Optional[str] = None
            for name, value in pairs:
                if name == PROVIDER_ID:
                    if single is not None:
                        raise _Rejected(Code.ERROR_SYNTAX)
                    single = value
                elif name[-1:] == "]" and name.startswith(PROVIDER_ID + "["):
                    index = name[len(PROVIDER_ID) + 1 : -1]
                    if not index.isdigit() or not index.isascii() or int(index) in ids:
                        raise _Rejected(Code.ERROR_SYNTAX)
                    ids[int(index)] = value
            if not authentic:
                raise _Rejected(Code.ERROR_AUTH)
            account_state = self.account_state
            if account_state is not None:
                raise _Rejected(account_state)
            if single is not None:
                if ids:
                    raise _Rejected(Code.ERROR_SYNTAX)
                ids = {0: single}
            elif not ids:
                raise _Rejected(Code.ERROR_SYNTAX)
        except _Rejected as exc:
            return exc.code.encode() + b"\n"
        now = self.now()
        timing = self.timing
        lifecycle = self.lifecycle
        date_format = self._date_format
        lines = []
        for _, provider_id in sorted(ids.items()):
            key = self._lookup(provider_id)
            if key is None:
                if any(c in _UNSAFE_ECHO for c in provider_id):
                    provider_id = ""
                lines.append(f"{Code.ERROR_PROVIDER_ID_UNKNOWN};{provider_id};;;\n")
                continue
            last, accepted = key
            status, since, reason = status_at(last, now - accepted, timing, lifecycle)
            when = self.datetime_at(accepted + since).strftime(date_format)
            lines.append(f"{Code.OK};{provider_id};{status};{when};{reason}\n")
        if self.reply_order == "shuffled":
            self._rng.shuffle(lines)
        return "".join(lines).encode()

    def _lookup(self, provider_id: str) -> Optional[tuple[int, float]]:
        if not (provider_id.isascii() and provider_id.isdigit()) or len(provider_id) > 19:
            return None
        number = int(provider_id)
        if str(number) != provider_id:
            return None
        return self.ledger.lifecycle_key(number)

    # -- push mode ---------------------------------------------------------------------

    def _push_loop(self) -> None:
        """The pushing thread: due changes to ``push_url``, in order, until close()."""
        from ..receiver import push

        schedule = self._schedule
        assert schedule is not None and self.push_url is not None
        pending: deque[tuple[str, str, str, str, str]] = deque()
        pause = 0.0
        attempts = 0  # failed attempts at the push now at the head of ``pending``
        when_cache: dict[int, str] = {}
        while not self._closing.is_set():
            try:
                self._push_wake.clear()
                if len(pending) < self.push_batch:
                    with self._push_lock:
                        due = schedule.take(self.now(), self.push_batch - len(pending))
                    pending.extend(self._reports(due, when_cache))
                    if len(when_cache) > 4096:
                        when_cache.clear()
                with self._lock:
                    self._pushes["pending"] = len(pending)
                if not pending:
                    self._push_wake.wait(self.push_interval)
                    continue
                batch = self._push_slice(pending)
                try:
                    status, text = push(
                        self.push_url, batch, secret=self.push_secret,
                        shape=self.push_shape, timeout=_PUSH_TIMEOUT,
                    )
                except Exception as exc:  # no connection, a timeout, a reset...
                    status, text = 0, f"{type(exc).__name__}: {exc}"
                if status == 200:
                    for _ in batch:
                        pending.popleft()
                    pause, attempts = 0.0, 0
                    with self._lock:
                        self._pushes["sent"] += 1
                        self._pushes["reports"] += len(batch)
                        self._pushes["pending"] = len(pending)
                    continue
                attempts += 1
                why = f"HTTP {status}: {text[:200]}" if status else text[:200]
                with self._lock:
                    self._pushes["failed"] += 1
                    if attempts >= self.push_attempts:
                        # Given up, as the platform does: the next reports go on.
                        for _ in batch:
                            pending.popleft()
                        self._pushes["dropped"] += len(batch)
                        self._pushes["pending"] = len(pending)
                if attempts >= self.push_attempts:
                    log.warning("emulator: push of %d report(s) failed %d times (%s); dropped",
                                len(batch), attempts, why)
                    pause, attempts = 0.0, 0
                    continue
                pause = min(max(pause * 2, self.push_interval), _PUSH_BACKOFF_MAX)
                log.warning(
                    "emulator: push of %d report(s) failed (%s), again in %.2f s",
                    len(batch), why, pause,
                )
                self._closing.wait(pause)
            except Exception:  # pragma: no cover - a bug of ours; keep going
                log.exception("emulator: push thread error")
                self._closing.wait(_PUSH_BACKOFF_MAX)

    def _reports(
        self, changes: Sequence[Change], when_cache: dict[int, str]
    ) -> list[tuple[str, str, str, str, str]]:
        """Changes as STATUS reply fields (code, providerId, status, dateTime, reason)."""
        out = []
        # JSON pushes carry ISO-8601 times with milliseconds, as the platform's do.
        fmt = "%Y-%m-%dT%H:%M:%S.000" if self.push_shape == "json" else self._date_format
        for pid, status, at, reason in changes:
            second = int(at)
            when = when_cache.get(second)
            if when is None:
                when = when_cache[second] = self.datetime_at(second).strftime(fmt)
            out.append((Code.OK, str(pid), status, when, reason))
        return out

    def _push_slice(
        self, pending: deque[tuple[str, str, str, str, str]]
    ) -> list[tuple[str, str, str, str, str]]:
        """The next push's reports: up to push_batch, and for ``query`` pushes no more
        than fit a query string of _PUSH_QUERY_MAX bytes (one at least)."""
        batch = list(itertools.islice(pending, self.push_batch))
        if self.push_shape != "query":
            return batch
        from ..receiver import status_params

        size = 0
        for n, report in enumerate(batch):
            # One report's parameters at index n: four names carry the index.
            size += len(status_params([report])) + 4 * (len(str(n)) - 1) + 1
            if size > _PUSH_QUERY_MAX and n:
                return batch[:n]
        return batch
