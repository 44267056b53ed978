"""``AsyncClient``'s asyncio protocols: a connection's reply reading and a proxy tunnel.

``Connection`` hands each chunk the loop reads straight to the reply reader and
wakes the waiting task once, when the reply is whole or failed (or, for a batch
sent one request at a time, hands a whole reply to the client's ``chain``, which
may write the next request without waking the task); the client's tick
(``check``) ends an exchange past its time limits. ``Tunnel`` reads a proxy's reply
to ``CONNECT`` until the TLS layer takes the connection over (``open_connection``
makes either). Neither decides an outcome: ``aio.AsyncClient`` hands what they
read to the core.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Callable
from typing import Optional

from urllib3.util.wait import wait_for_read

from . import _redact
from ._base import PROXY_HEAD_MAX, TunnelRefused, tunnel_reply
from ._response import ResponseReader
from .core import SENT

__all__ = ["Connection", "Tunnel", "open_connection"]

_POLL = getattr(select, "poll", None)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: feeds what arrives to the current reply's reader."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.reader: Optional[ResponseReader] = None
        #: The reader of the last exchange, kept for the next one (``reuse()``).
        self.spare: Optional[ResponseReader] = None
        self.waiter: Optional[asyncio.Future[None]] = None
        #: Called with this connection when the reply is whole, in place of waking
        #: the waiter; True when it took the reply over (``AsyncClient._chain``).
        self.chain: Optional[Callable[[Connection], bool]] = None
        self.closed = False
        #: Bytes arrived while no request was waiting: never reuse the connection.
        self.stray = False
        self.last = 0.0  # the loop time of the last bytes read
        self.deadline_at = 0.0
        self.timeout = 0.0
        self.deadline = 0.0
        self._seen = False
        #: The idle check's poll object, registered once (``dropped``).
        self._poll: Optional[select.poll] = None

    def __repr__(self) -> str:
        return f"<hpgfast connection closed={self.closed}>"

    # -- asyncio's side ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is None:
            self.stray = True
            return
        self._seen = True  # for the ticks: cheaper than reading the clock per chunk
        if reader.feed(data):
            chain = self.chain
            if chain is None or not chain(self):
                self._wake()

    def eof_received(self) -> Optional[bool]:
        self.closed = True
        reader = self.reader
        if reader is not None:
            reader.eof()
            self._wake()
        return None  # let the transport close

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.closed = True
        reader = self.reader
        if reader is not None and not reader.done:
            if exc is None:
                reader.eof()
            else:
                reader.fail(SENT, f"connection broken: {type(exc).__name__}: {exc}")
            self._wake()

    # -- the client's side ---------------------------------------------------------------

    def start(
        self,
        reader: ResponseReader,
        waiter: asyncio.Future[None],
        now: float,
        timeout: float,
        deadline: float,
        chain: Optional[Callable[[Connection], bool]] = None,
    ) -> None:
        """Read the reply to a request about to be written (``now``: ``time.monotonic()``,
        as the tick's)."""
        self.reader = reader
        self.waiter = waiter
        self.chain = chain
        self._seen = False
        self.timeout = timeout
        self.deadline = deadline
        self.deadline_at = now + deadline
        self.last = now

    def stop(self) -> None:
        """The reply was read (or given up): forget it."""
        self.reader = None
        self.waiter = None
        self.chain = None

    def check(self, now: float) -> None:
        """The client's tick: end the exchange if it is past a time limit."""
        # Reads do not touch the clock (that would cost a call per chunk): a tick
        # sees whether bytes came since the last one.
        reader = self.reader
        if reader is None or reader.done:
            return
        if self._seen:
            self._seen = False
            self.last = now
        if now >= self.deadline_at:
            reader.fail(SENT, f"no whole reply within request_deadline={self.deadline}s")
            self._wake()
        elif now - self.last >= self.timeout:
            reader.fail(SENT, f"no reply within timeout={self.timeout}s")
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def dropped(self) -> bool:
        """True when the socket is readable while idle: a close (or bytes) the loop
        has not seen yet. urllib3's pool makes the same check before each reuse."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return True  # a closing transport drops writes without a word
        poll = self._poll
        if poll is None:
            sock = transport.get_extra_info("socket")
            if sock is None:
                return True
            if _POLL is None:  # no poll(2): urllib3's select() fallback each time
                try:
                    return bool(wait_for_read(sock, timeout=0.0))
                except (OSError, ValueError):
                    return True
            # One poll object per connection, not one per check (urllib3's): the
            # check runs before every request on a kept connection.
            poll = self._poll = _POLL()
            try:
                poll.register(sock.fileno(), select.POLLIN)
            except (OSError, ValueError):
                return True
        try:
            return bool(poll.poll(0))
        except OSError:
            return True

    def close(self) -> None:
        """Close the connection now (nothing more will be read from it)."""
        self.closed = True
        transport = self.transport
        if transport is not None:
            try:
                transport.abort()
            except RuntimeError:  # its loop is closed: the socket went with it
                pass


class Tunnel(asyncio.Protocol):
    """The proxy's side of a connection until its reply to ``CONNECT`` is read.

    ``done`` gets what was read once the reply head is whole (``tunnel_reply``
    judges it), or the error: a close, a head over ``PROXY_HEAD_MAX``. The TLS
    layer then replaces this protocol (``loop.start_tls``).
    """

    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done
        self.head = b""

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        # The cap on where the head ends, however the bytes came (one read may hold
        # a whole over-long head): as the sync client's reads of at most the cap.
        if (end + 4 if end >= 0 else len(self.head)) > PROXY_HEAD_MAX:
            self.done.set_exception(
                TunnelRefused(None, f"a reply head over {PROXY_HEAD_MAX} bytes")
            )
        elif end >= 0:
            self.done.set_result(self.head)  # tunnel_reply() judges it

    def eof_received(self) -> Optional[bool]:
        self.connection_lost(None)
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if not self.done.done():
            self.done.set_exception(
                ConnectionResetError("the proxy closed the connection after CONNECT")
            )


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    dial: tuple[str, int],
    ssl_context: Optional[ssl.SSLContext],
    server_hostname: Optional[str],
    connect_request: Optional[_redact.Secret],
) -> Connection:
    """A new connection to the platform: direct (to ``dial``), or to the proxy
    there (through a ``CONNECT`` tunnel for https://, with TLS to the platform
    over it)."""
    if connect_request is None:
        _, conn = await loop.create_connection(
            Connection, *dial, ssl=ssl_context, server_hostname=server_hostname
        )
        return conn
    assert ssl_context is not None  # a tunnel is for https:// only
    done: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: Tunnel(done), *dial)
    try:
        transport.write(connect_request.value.encode("latin-1"))
        tunnel_reply(await done)
        conn = Connection()
        # TLS to the platform over the tunnel: its name for SNI and the check.
        tls = await loop.start_tls(transport, conn, ssl_context, server_hostname=server_hostname)
    except BaseException:
        transport.abort()
        raise
    if tls is None:  # only for a transport already closing
        raise ConnectionResetError("the tunnel closed during the TLS handshake")
    conn.connection_made(tls)
    return conn
