"""The selector server behind ``Receiver``: accepting, waiting for heads and bodies, slots.

Strategy: a push endpoint is exposed to the network, so a connection costs a thread
only once it has proven something (see ``hpgfast.receiver`` for the four steps):
one selector thread accepts, refuses peers outside the allow-list from their
address alone, and holds every other connection, with no thread, until its request
head and then its body have arrived; only then does it take one of
``max_connections`` slots, a thread running the WSGI application (``ReceiverApp``)
through wsgiref's handler. Timeouts and caps bound each step.
"""

from __future__ import annotations

import http.client
import io
import logging
import selectors
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ._app import ReceiverSettings, _allowed, _secret_given

# One logger for the whole receiver, under the name users configure.
log = logging.getLogger("hpgfast.receiver")



#: Requests served at once: each holds a thread. A connection takes a slot only once
#: its whole request head has arrived; over the cap it is answered 503 at once.
MAX_CONNECTIONS = 64
#: Connections waiting for their request head at once (they hold no thread, only a
#: socket in the selector); when a new one comes over the cap, the oldest is closed.
MAX_WAITING = 1024
#: Seconds a connection has to deliver its request line and headers.
HEADER_DEADLINE = 10.0
#: The largest request head (request line and headers), bytes: 431 over it.
MAX_HEAD = 64 * 1024
#: Seconds a request has, once its head has arrived, to deliver its whole body.
BODY_DEADLINE = 10.0
#: Requests whose head has arrived and whose body has not yet, at once (they hold no
#: thread, only a socket and the bytes so far, at most max_body each); when a new
#: one comes over the cap, the oldest of the address holding the most is answered
#: 503. Only a request that has shown the secret (when there is one) waits here.
MAX_READING = 64
#: Seconds a connection may take for its whole request and answer. The handler's
#: timeout bounds each read only: a client sending a byte every 29 s would hold a
#: thread for ever without this.
REQUEST_DEADLINE = 60.0
#: A refused connection (403 at accept, 431, 503, 408) gets its short answer, then
#: its further bytes are read and dropped for this long (so that the answer is not
#: lost to a reset), in the selector, at most _MAX_LINGERING of them at once.
_LINGER = 1.0
_MAX_LINGERING = 256
_ACCEPTS_PER_WAKE = 64
#: The end of a request head: an empty line (http.server accepts bare LF lines too).
_HEAD_ENDS = (b"\n\r\n", b"\n\n")


@dataclass(frozen=True)
class ServerSettings:
    """How ``Receiver`` listens and what each connection may hold: one frozen value,
    checked once (see ``Receiver`` for each; ``ReceiverSettings`` for the application).

    Raises:
        ValueError: a limit below 1 or a deadline not positive, naming it.
        TypeError: a limit that is not a whole number, or a deadline not a number.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_connections: int = MAX_CONNECTIONS
    max_waiting: int = MAX_WAITING
    max_reading: int = MAX_READING
    header_deadline: float = HEADER_DEADLINE
    body_deadline: float = BODY_DEADLINE
    request_deadline: float = REQUEST_DEADLINE

    def __post_init__(self) -> None:
        if not isinstance(self.host, str):
            raise TypeError(f"host must be a string, got {self.host!r}")
        for name in ("port", "max_connections", "max_waiting", "max_reading"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a whole number, got {value!r}")
            if name == "port" and value > 65535:
                raise ValueError(f"port must be 0 to 65535, got {value}")
            if value < (0 if name == "port" else 1):
                raise ValueError(f"port must be 0 to 65535, got {value}" if name == "port"
                                 else f"{name} must be at least 1, got {value}")
        for name in ("header_deadline", "body_deadline", "request_deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")


class _Conn:
    """A connection the selector holds: waiting for its head or its body, or lingering
    after a refusal."""

    __slots__ = ("address", "deadline", "head", "need", "sock", "started")

    def __init__(self, sock: socket.socket, address: Any, now: float, deadline: float) -> None:
        self.sock = sock
        self.address = address
        self.started = now
        self.deadline = deadline
        self.head = bytearray()  # the bytes read so far: the head, then the body
        self.need = 0  # while reading the body: the bytes of head and body in all


def _head_end(data: bytearray, start: int = 0) -> int:
    """Where the request head in ``data`` ends (after its empty line), or -1."""
    ends = [i + len(end) for end in _HEAD_ENDS if (i := data.find(end, start)) >= 0]
    return min(ends, default=-1)


#: What ``_body_length`` says of a ``Content-Length`` over ``max_body``.
_TOO_LARGE = -1


def _body_length(head: bytes, max_body: int) -> Optional[int]:
    """The body's length as the application will read it, when the selector should
    wait for it: ``None`` for a body the application refuses without reading it
    (chunked, a bad or missing-digit ``Content-Length``), which goes to a thread at
    once; ``_TOO_LARGE`` for one over ``max_body``, refused from the head alone.

    Headers are read as ``http.server`` reads them, the first ``Content-Length``
    counting; a name that is not exactly one (a space before the colon) is not one.
    """
    length: Optional[bytes] = None
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.lower()
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return None
        if name == b"content-length" and length is None:
            length = value.strip()
    if length is None:
        return 0
    if not (length.isdigit() and len(length) <= 18):
        return None
    size = int(length)
    return size if size <= max_body else _TOO_LARGE


#: A refusal the selector answers itself: status, reason, extra header lines.
_Refusal = tuple[str, str, tuple[str, ...]]


def _unauthenticated(head: bytes, settings: ReceiverSettings) -> Optional[_Refusal]:
    """The 401 for a request head without the secret, or ``None`` (shown, or no
    secret, or a head the handler refuses itself without reading a body).

    Both places the secret may be are in the head (the header, the last path
    segment), so a request without it is answered before its body is waited for:
    else anyone could fill the requests waiting for a body with heads. Read as the
    handler and the application will read them (``http.server``'s header parser,
    names holding "_" dropped, repeated headers joined with "," as wsgiref joins
    them, the path percent-decoded as latin-1), and checked by the application's
    own ``_secret_given``: the two cannot disagree.
    """
    if settings.secret is None:
        return None
    line, _, rest = head.partition(b"\n")
    words = line.decode("latin-1").split()
    if len(words) != 3 or words[0] not in ("GET", "POST"):
        return None  # 400 or 405 from the handler or the application, no body read
    try:
        headers = http.client.parse_headers(io.BytesIO(rest))
    except (http.client.HTTPException, ValueError):
        return None  # 431 or 400 from the handler
    name = settings.secret_header.lower()
    values = [v.strip() for k, v in headers.items() if "_" not in k and k.lower() == name]
    path = unquote(words[1].split("?", 1)[0], "iso-8859-1")
    if _secret_given(settings.secret.encode("utf-8"), ",".join(values) if values else None,
                     path):
        return None
    return ("401 Unauthorized", "wrong or missing secret",
            (f'WWW-Authenticate: {settings.secret_header} realm="hpgfast"',))


class _Prefixed(io.RawIOBase):
    """A socket's reading side with the bytes the selector already read put back in front."""

    def __init__(self, prefix: bytes, sock: socket.socket, deadline: float = float("inf"),
                 timeout: Optional[float] = None) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._sock = sock
        self._raw = socket.SocketIO(sock, "rb")
        # Past the bytes the selector read, every read must end by ``deadline``: a
        # body that trickles in from a thread holds a slot no longer than that.
        self._deadline = deadline
        self._timeout = timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the body did not arrive in time")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        try:
            return self._raw.readinto(buffer)
        finally:
            self._sock.settimeout(self._timeout)  # the answer is written as before

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Server(WSGIServer):
    """wsgiref's server for binding and the WSGI environment; serving is ``serve()``'s."""

    allow_reuse_address = True
    # A flood's SYNs must not fill the kernel's accept queue before serve() sees them.
    request_queue_size = 1024

    #: Set by ``Receiver`` before ``server_activate``: the server's settings and the
    #: application's (for the body cap and the allow-list, checked before a thread).
    limits: ServerSettings
    app_settings: ReceiverSettings
    #: The secret as it may appear in text (plain, percent-encoded): masked in logs.
    secret_forms: tuple[str, ...] = ()

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self.socket, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._waiting: dict[socket.socket, _Conn] = {}  # in accept order: oldest first
        self._reading: dict[socket.socket, _Conn] = {}  # in head order: oldest first
        self._lingering: dict[socket.socket, _Conn] = {}
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()
        self._stopping = False
        self._evicted = 0
        self._evicted_logged = float("-inf")
        self._evicted_reading = 0
        self._evicted_reading_logged = float("-inf")

    # -- the selector thread: accept, collect heads, hand complete ones to a worker

    def serve(self) -> None:
        """Serve until ``stop()``: the selector loop (run it in one thread)."""
        try:
            while not self._stopping:
                timeout = self._next_deadline() - time.monotonic()
                events = self._selector.select(max(0.0, min(timeout, 1.0)))
                for key, _ in events:
                    conn = key.data
                    if conn is not None:
                        self._read(conn)
                    elif key.fileobj is self.socket:
                        self._accept()
                    else:
                        try:
                            self._wake_r.recv(64)
                        except OSError:
                            pass
                self._expire(time.monotonic())
        except Exception:  # a bug of ours: logged (not a raw traceback), then stop
            self.handle_error(None, ("the selector loop", 0))
        finally:
            for pool in (self._waiting, self._reading, self._lingering):
                for conn in list(pool.values()):
                    self._drop(conn, pool)

    def stop(self) -> None:
        """Make ``serve()`` return at once."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already woken, or closed

    def join_workers(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the requests being served to finish."""
        end = time.monotonic() + timeout
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, end - time.monotonic()))

    def server_close(self) -> None:
        super().server_close()
        if not hasattr(self, "_selector"):
            return  # never activated: the bind failed (port in use, no such address)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _next_deadline(self) -> float:
        # Every pool is in deadline order (one fixed delay each): the first is next.
        first = [next(iter(pool.values())).deadline
                 for pool in (self._waiting, self._reading, self._lingering) if pool]
        return min(first, default=time.monotonic() + 1.0)

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: make room, try later
                log.warning("receiver: accept failed: %s", exc)
                if self._waiting:
                    self._drop(next(iter(self._waiting.values())), self._waiting)
                return
            sock.setblocking(False)
            now = time.monotonic()
            conn = _Conn(sock, address, now, now + min(self.limits.header_deadline,
                                                       self.limits.request_deadline))
            nets = self.app_settings.networks
            # The allow-list is the one check possible before a byte is read: a peer
            # outside it never waits in the selector, let alone takes a slot.
            if nets is not None and not _allowed(str(address[0]), nets):
                self._refuse(conn, "403 Forbidden", "source address not allowed")
                continue
            if len(self._waiting) >= self.limits.max_waiting:
                self._drop(next(iter(self._waiting.values())), self._waiting)
                # A flood evicts thousands a second: one line every few seconds.
                self._evicted += 1
                if now - self._evicted_logged >= 5.0:
                    log.warning("receiver: %d connections waiting for a request; %d of the "
                                "oldest closed to make room", self.limits.max_waiting,
                                self._evicted)
                    self._evicted, self._evicted_logged = 0, now
            self._waiting[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        lingering = conn.sock in self._lingering
        reading = not lingering and conn.sock in self._reading
        pool = self._lingering if lingering else self._reading if reading else self._waiting
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn, pool)
            return
        if not data:
            self._drop(conn, pool)
            return
        if lingering:
            return  # dropped: the answer is out already
        seen = len(conn.head)
        conn.head += data
        if reading:
            if len(conn.head) >= conn.need:
                del self._reading[conn.sock]
                self._selector.unregister(conn.sock)
                self._hand_over(conn)
            return
        end = _head_end(conn.head, max(0, seen - 2))
        if end < 0:
            if len(conn.head) > MAX_HEAD:
                del self._waiting[conn.sock]
                self._selector.unregister(conn.sock)
                self._refuse(conn, "431 Request Header Fields Too Large",
                             f"request head over {MAX_HEAD} bytes")
            return
        del self._waiting[conn.sock]
        head = bytes(conn.head[:end])
        # Refused from the head, neither waiting for a body nor taking a slot: a
        # request without the secret, or announcing a body over max_body (drained in
        # a thread, a few dozen of those would hold every slot).
        refusal = _unauthenticated(head, self.app_settings)
        length = _body_length(head, self.app_settings.max_body)
        if refusal is None and length == _TOO_LARGE:
            refusal = ("413 Content Too Large",
                       f"body over {self.app_settings.max_body} bytes", ())
        if refusal is not None:
            self._selector.unregister(conn.sock)
            self._refuse(conn, *refusal)
            return
        # The body is waited for here too, holding no thread: a request that sends
        # its head and never its body (or trickles it) must not hold a slot, or a few
        # dozen of them starve every real push. Only a request whose bytes have all
        # arrived takes a slot.
        if length is not None and len(conn.head) < end + length:
            conn.need = end + length
            self._wait_for_body(conn, time.monotonic())
            return
        self._selector.unregister(conn.sock)
        self._hand_over(conn)

    def _wait_for_body(self, conn: _Conn, now: float) -> None:
        """Keep ``conn`` in the selector until its body has arrived, for the body deadline."""
        if len(self._reading) >= self.limits.max_reading:
            # A flood of bodies that never come evicts its own oldest members; a real
            # push, whose body follows its head at once, is never the oldest for long.
            # The oldest of the address holding the most: one address filling the
            # pool evicts its own requests, not another's.
            oldest = self._to_evict(conn)
            del self._reading[oldest.sock]
            self._selector.unregister(oldest.sock)
            self._refuse(oldest, "503 Service Unavailable", "busy, push again later",
                         ("Retry-After: 1",))
            self._evicted_reading += 1
            if now - self._evicted_reading_logged >= 5.0:
                log.warning("receiver: %d requests waiting for their body; %d of the oldest "
                            "answered 503 to make room", self.limits.max_reading,
                            self._evicted_reading)
                self._evicted_reading, self._evicted_reading_logged = 0, now
        conn.deadline = now + self.limits.body_deadline
        self._reading[conn.sock] = conn

    def _to_evict(self, newcomer: _Conn) -> _Conn:
        """The request waiting for its body that makes room for ``newcomer``."""
        counts = Counter(c.address[0] for c in self._reading.values())
        mine = counts[newcomer.address[0]]
        top = max(counts.values())
        address = newcomer.address[0] if mine and mine + 1 >= top else None
        for conn in self._reading.values():  # oldest first
            if conn.address[0] == address or (address is None
                                               and counts[conn.address[0]] == top):
                return conn
        raise AssertionError("unreachable: the pool is full")

    def _hand_over(self, conn: _Conn) -> None:
        """Serve a request whose bytes have arrived from a thread: one of the slots."""
        if not self._slots.acquire(blocking=False):
            log.warning("receiver: %d requests being served; one from %s answered 503",
                        self.limits.max_connections, conn.address[0])
            self._refuse(conn, "503 Service Unavailable", "busy, push again later",
                         ("Retry-After: 1",))
            return
        try:
            conn.sock.setblocking(True)
            worker = threading.Thread(target=self._serve_one, args=(conn,),
                                      name="hpgfast-receiver:request", daemon=True)
            with self._workers_lock:
                self._workers.add(worker)
            worker.start()
        except BaseException:
            with self._workers_lock:
                self._workers.discard(worker)
            self._slots.release()
            _close(conn.sock)
            raise

    def _expire(self, now: float) -> None:
        while self._waiting:
            conn = next(iter(self._waiting.values()))
            if conn.deadline > now:
                break
            # No answer: an idle or trickling peer is most likely not a platform.
            log.info("receiver: no request from %s within %.1f s; closed",
                     conn.address[0], conn.deadline - conn.started)
            self._drop(conn, self._waiting)
        while self._reading:
            conn = next(iter(self._reading.values()))
            if conn.deadline > now:
                break
            # The head came, so this may be a platform with a slow link: it is told.
            del self._reading[conn.sock]
            self._selector.unregister(conn.sock)
            self._refuse(conn, "408 Request Timeout",
                         f"body not received within {self.limits.body_deadline:g} s")
        while self._lingering:
            conn = next(iter(self._lingering.values()))
            if conn.deadline > now:
                break
            self._drop(conn, self._lingering)

    def _refuse(self, conn: _Conn, status: str, reason: str, headers: Sequence[str] = ()) -> None:
        """Answer ``status`` without a thread, then linger (read and drop) briefly."""
        log.info("push refused (%s) from %s: %s", status, conn.address[0], reason)
        body = reason + "\n"
        answer = "".join(
            (f"HTTP/1.0 {status}\r\n", "Content-Type: text/plain; charset=utf-8\r\n",
             f"Content-Length: {len(body)}\r\n", "Connection: close\r\n",
             *(h + "\r\n" for h in headers), "\r\n", body)
        ).encode("ascii")
        try:
            # Non-blocking: a fresh socket's buffer takes these few bytes whole, and a
            # peer that does not read gets nothing more of our time.
            conn.sock.send(answer)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close(conn.sock)
            return
        if len(self._lingering) >= _MAX_LINGERING:
            self._drop(next(iter(self._lingering.values())), self._lingering)
        conn.deadline = time.monotonic() + _LINGER
        conn.head = bytearray()
        self._lingering[conn.sock] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Conn, pool: dict[socket.socket, _Conn]) -> None:
        if pool.pop(conn.sock, None) is not None:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        _close(conn.sock)

    # -- a worker thread: one request whose head has arrived

    def _serve_one(self, conn: _Conn) -> None:
        sock = conn.sock
        # Past the deadline the socket is shut down under the handler, whose next
        # read or write then fails and ends the thread.
        left = self.limits.request_deadline - (time.monotonic() - conn.started)
        watchdog = threading.Timer(max(left, 0.0), _cut, (sock,))
        watchdog.daemon = True
        watchdog.start()
        try:
            _Handler(sock, conn.address, self, bytes(conn.head),
                     time.monotonic() + self.limits.body_deadline)
        except Exception:
            self.handle_error(sock, conn.address)
        finally:
            watchdog.cancel()
            self.shutdown_request(sock)
            self._slots.release()
            with self._workers_lock:
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr; here it goes to the log, with
        # the secret masked (an exception may quote the request line, whose path may
        # end with it).
        log.error("receiver: error serving %s\n%s", client_address[0],
                  self.redact(traceback.format_exc().rstrip()))

    def redact(self, text: str) -> str:
        """``text`` with the secret masked."""
        for form in self.secret_forms:
            text = text.replace(form, "***")
        return text


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Handler(WSGIRequestHandler):
    timeout = 30  # seconds a connection may stall: a slow client holds one thread only

    def __init__(self, request: Any, client_address: Any, server: Any, prefix: bytes = b"",
                 body_by: float = float("inf")) -> None:
        self._prefix = prefix
        self._body_by = body_by
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        if self._prefix:
            # The selector read the head (and maybe more): the handler reads it first,
            # and whatever more it reads, by the body deadline.
            self.rfile.close()
            self.rfile = io.BufferedReader(
                _Prefixed(self._prefix, self.connection, self._body_by, self.timeout))

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # WSGI names a header HTTP_ + its name upper-cased with "-" made "_", so
        # "X_HPG_Secret" would be read as "X-HPG-Secret": a peer could pass the secret
        # under a name that a proxy in front, stripping or setting the real header,
        # does not know. A name with "_" is dropped, as nginx and gunicorn do.
        dropped = {name for name in self.headers.keys() if "_" in name}
        for name in dropped:
            del self.headers[name]
        if dropped:
            log.debug("%s %d header(s) dropped: a name with '_'", self.address_string(),
                      len(dropped))
        return True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # Not the request line: its path may end with the secret.
        log.debug("%s %s %s %s", self.address_string(), self.command, code, size)

    def log_message(self, format: str, *args: Any) -> None:
        # Only the template and the numbers: http.server's error texts quote the
        # request line, whose path may end with the secret.
        shown = tuple(a if isinstance(a, int) else "..." for a in args)
        log.debug("%s %s", self.address_string(), format % shown)

    def get_stderr(self) -> Any:
        # wsgiref prints its own errors here: route them to logging instead.
        return _LogStream(getattr(self.server, "redact", None))


class _LogStream:
    def __init__(self, redact: Optional[Callable[[str], str]] = None) -> None:
        self._redact = redact or (lambda text: text)

    def write(self, text: str) -> None:
        if text.strip():
            log.warning("receiver: %s", self._redact(text.rstrip()))

    def flush(self) -> None:
        pass
