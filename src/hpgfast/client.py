"""``hpgfast.Client``: the urllib3 transport of the HPG exchange.

Strategy: every rule (what a reply means for each message, what is repeated and
when, what stops a batch, the redacted view of each request) lives in the sans-IO
core, ``hpgfast.core``. This module only moves bytes: it takes requests from a
``core.Batch``, writes them on urllib3's pooled connections, and reports what came
back (a ``Reply``) or what went wrong (a ``Failure`` of a named kind).

- **Thin per-request path.** urllib3's ``urlopen()`` re-parses and re-encodes the
  whole target in pure Python (milliseconds for an 8 KiB query), and http.client
  builds, scans and parses every request and reply line by line in Python (about
  three quarters of the client's CPU at 8 KiB requests). The client keeps urllib3's
  connection pool, connect, TLS and timeouts, takes a connection from the pool,
  writes the request with one ``sendall`` (the codec's ready target and headers
  built once) and reads the reply with llhttp (``_response.ResponseReader``, the
  asyncio client's reader too). ``retries=False`` everywhere: urllib3 never repeats
  anything on its own (its default ``Retry`` would repeat a GET after a read
  timeout, which for SEND is a second SMS).
- **Connect, then send.** A fresh connection is opened (and its TLS handshake done)
  before any byte of the request is written, so "connect failed" certainly means
  "nothing sent": the ``CONNECT`` failure the core may repeat.
- **No password anywhere.** URLs shown in logs and errors are the core's redacted
  view; foreign error texts go through its redactor; errors are made outside
  ``except`` blocks so no urllib3 exception rides along as ``__context__``. urllib3
  is never given a request target (it pools and connects; the client writes the
  request), so none of its log records can hold the password, and hpgfast changes
  nothing in the process's logging (see ``_redact``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any, Literal, Optional, Union, cast, overload

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ClosedPoolError
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.util.wait import wait_for_read

from . import _redact
from ._base import (
    DEFAULT_MAX_REPLY_BYTES,
    FRESH_GRACE,
    INTERRUPT_GRACE,
    BaseClient,
    settings_doc,
)
from ._pool import TunnelConnection, TunnelPool, drop_inherited, give_back, take, tunnelled
from ._records import Message, Params, SendResult, StatusResult
from ._response import ResponseReader
from ._watchdog import PAST_DEADLINE, Watchdog
from .core import (
    CONNECT,
    SEND,
    SENT,
    STATUS,
    Batch,
    CompactResults,
    Failure,
    Reply,
    Request,
    SendFailure,
    StatusFailure,
    Subscriber,
)
from .exceptions import ConnectError, TransportError

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "INTERRUPT_GRACE", "Client", "SendFailure", "StatusFailure"]

log = logging.getLogger(__name__)

#: Bytes asked of each read of a reply: a whole 8 KiB request's reply in one.
_RECV_SIZE = 65536
_monotonic = time.monotonic

#: The attribute of a urllib3 connection holding ``(socket, ResponseReader)`` of its
#: last exchange (``Client._reader_for``).
_KEPT_READER = "_hpgfast_reader"

#: How long ``close()`` waits for the worker threads to end.
_CLOSE_WAIT = 1.0


# -- connections ---------------------------------------------------------------------


#: Every open ``Client`` of this process: each starts afresh in a child after
#: ``fork()`` (``_after_fork_in_child``). Weak: the registry keeps no client alive.
_LIVE: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_LIVE):
        if not client._closed:
            client._forked()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Client(BaseClient):
    __doc__ = settings_doc(
        """A client of one HPG connector: ``send()`` messages, ask their ``status()``.

        Thread-safe; use it as a context manager or call ``close()``. A child
        process after ``fork()`` may go on using it: the child gets connections,
        threads and locks of its own, and the parent keeps its connections.
        """
    )

    _rate_lock = threading.Lock
    _log = log

    def _open(self) -> None:
        self._start()
        _LIVE.add(self)

    def _start(self) -> None:
        """Make the pool, the watchdog and the lazily started executor: in ``_open()``,
        and again in a child after ``fork()`` (``_forked()``)."""
        settings = self._settings
        self._watchdog = Watchdog(settings.deadline)
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_lock = threading.Lock()

        pool_timeout = urllib3.Timeout(connect=settings.connect_timeout, read=settings.timeout)
        self._pool: urllib3.HTTPConnectionPool
        route = self._proxy_route
        if self._scheme == "https":
            verify = settings.verify
            pool_class = urllib3.HTTPSConnectionPool if route is None else TunnelPool
            self._pool = pool_class(
                self._host,
                self._port,
                maxsize=settings.concurrency,
                block=True,
                retries=False,
                timeout=pool_timeout,
                cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                assert_hostname=None if verify else False,
                ssl_context=self._ssl_context,
                # urllib3 opens the socket to the proxy; the tunnel is ours (_pool).
                **({} if route is None else tunnelled(route.host, route.port)),
            )
        else:
            # Through a proxy, every connection is to the proxy (absolute-form targets).
            host, port = (self._host, self._port) if route is None else (route.host, route.port)
            self._pool = urllib3.HTTPConnectionPool(
                host,
                port,
                maxsize=settings.concurrency,
                block=True,
                retries=False,
                timeout=pool_timeout,
            )

    def _forked(self) -> None:
        """Start afresh in a child after ``fork()``: nothing of the parent's is used.

        The pooled sockets are the parent's too: a child writing on one would read
        (or steal) replies meant for the parent or a sibling. The worker and watchdog
        threads stayed in the parent, and a lock held by one of its threads at the
        fork would stay held forever. So the child makes a new pool, watchdog,
        executor and locks. The inherited connections are only closed here, never
        shut down: closing a descriptor the parent still holds sends nothing (no
        FIN, and an ``SSLSocket`` closes without a close_notify), so the parent's
        connections stay open for the parent.
        """
        inherited = self._pool
        self._start()
        if self._core.rate_limit is not None:
            self._core.rate_limit.relock(self._rate_lock())
        drop_inherited(inherited)  # its close() now does nothing

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection and stop the worker threads. Idempotent.

        Waits at most about a second for the worker threads: after an interrupt, the
        exchanges its grace left out were cut already and their threads end at
        once; a thread still busy then (connecting, say) ends on its own.
        """
        if self._closed:
            return
        self._closed = True
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            deadline = _monotonic() + _CLOSE_WAIT
            for thread in list(executor._threads):
                thread.join(max(0.0, deadline - _monotonic()))
        self._watchdog.stop()
        self._pool.close()
        _LIVE.discard(self)
        _redact.unregister(id(self))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public operations -------------------------------------------------------------

    @overload
    def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: Literal[False] = False,
    ) -> list[SendResult]: ...
    @overload
    def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: Literal[True],
    ) -> CompactResults: ...
    @overload
    def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: bool,
    ) -> Union[list[SendResult], CompactResults]: ...
    def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: bool = False,
    ) -> Union[list[SendResult], CompactResults]:
        """Send a batch of messages of any size; one result per message, in order.

        The batch is checked and cut into requests (by ``max_request_bytes`` and
        ``max_batch``) before anything is sent. Replies are matched to messages by
        ``clientId``. A message's result is one of:

        - ``code == "ok"`` with a ``provider_id``: accepted;
        - a platform code (``error-address-format``...): rejected;
        - ``"not-sent"``: the request never left; safe to send again;
        - ``"unknown"``: the request may have reached the platform (a timeout, a cut
          reply, a missing reply line, HTTP 500...); sending again may deliver a
          second SMS.

        Results hpgfast made up (no reply line for them) are ``SendFailure``
        records whose ``error`` holds the cause. ``client_id`` of every result is
        the id the platform answers with: the message's own, or the one hpgfast
        made for it (``client_ids=False``: its index within its request). A SEND
        is never repeated once a byte of it may have left, but for a 429 (see
        ``retry_on_429``); a failure to connect is retried (``retries``,
        ``backoff``), and when even that fails the platform is taken to be down:
        the rest of the batch is reported ``not-sent`` without being tried. A
        reply is read line by line: a bad or missing line costs only its own
        message (``unknown``), a code-only line speaks for the whole request, and
        an account-stop code stops the batch (``AccountError``). The whole table
        is ``docs/outcomes.md``.

        Args:
            messages: ``Message`` records or tuples ``(address, text[, subject[,
                client_id[, params]]])``.
            params: request-level parameters for this call's requests, after the
                client's ``extra_params``.
            results: a list that gets the results however the call ends: returned,
                or raised mid-batch, interrupted or cancelled (its items are
                replaced). For code where the exception caught may be another one
                than the batch's (asyncio's around a cancellation: see
                ``hpgfast.results_of``). Left as it was by an error raised before
                anything is sent.
            compact: return a ``CompactResults`` instead of a list: a read-only
                sequence of the same results at about 14 bytes per message instead
                of about 200, for large batches (the records are made as they are
                read). An exception's ``results`` is then one too.

        Returns:
            A list of ``SendResult``, one per message, in input order (with
            ``compact=True``, a ``CompactResults`` of them).

        Raises:
            MessageError: a message that cannot be sent as given (``index`` and
                ``field`` say which and why), or one too large for any request
                (``MessageTooLarge``). Raised before anything is sent.
            AuthError: the platform refused the credentials.
            TLSError: the platform's certificate could not be verified.
            ProxyError: the proxy refused to carry the request (407, a refused
                ``CONNECT``): nothing reached the platform.
            RequestTooLarge: the server refused the request line as too long
                (``max_request_bytes`` is above its limit).
            HTTPStatusError: any other 4xx reply: a misconfigured URL, say.

            An exception raised after some requests were sent carries ``results``:
            the list of every message's result so far (``not-sent`` for the ones
            never tried).

            Ctrl-C (``KeyboardInterrupt``) stops the batch the same way at any
            ``concurrency``: no request starts after it, the requests on the wire
            get ``INTERRUPT_GRACE`` seconds to finish (a second Ctrl-C ends the
            wait; those still out are ``unknown``), and the ``KeyboardInterrupt``
            raised carries ``results``.
        """
        return self._drive(self._plan(SEND, messages, params, results, subscribers, compact))

    def status(
        self,
        provider_ids: Iterable[str],
        *,
        params: Optional[Params] = None,
        results: Optional[list[StatusResult]] = None,
        subscribers: Sequence[Subscriber] = (),
    ) -> list[StatusResult]:
        """Ask the delivery status of messages, by provider id; one result per id, in order.

        Split into requests like ``send()``. Replies are matched by provider id; an
        id given twice gets the same answer. A STATUS request is repeated after any
        transient failure (connect, timeout, reset, cut or garbled reply, HTTP 5xx,
        408, 429) up to ``retries`` times; ids still unanswered then get
        ``StatusFailure`` results with code ``"unknown"`` (or ``"not-sent"`` if no
        connection could be made), with the cause in ``error``.

        Args:
            provider_ids: the ``provider_id`` values ``send()`` returned.
            params: request-level parameters for this call's requests.
            results: a list that gets the results however the call ends, as for
                ``send()``.

        Returns:
            A list of ``StatusResult``, one per id, in input order.

        Raises:
            MessageError: an id that cannot be sent (raised before anything is sent).
            AuthError, TLSError, ProxyError, RequestTooLarge, HTTPStatusError: as for
                ``send()``.
        """
        return cast(
            list[StatusResult],
            self._drive(self._plan(STATUS, provider_ids, params, results, subscribers)),
        )

    # -- driving the core -----------------------------------------------------------------

    def _drive(self, batch: Batch) -> Union[list[Any], CompactResults]:
        """Send a planned batch (``_plan``); its results, or the error that stopped it."""
        concurrency = self._settings.concurrency
        if concurrency == 1 or len(batch.requests) == 1:
            # One at a time, in the calling thread: no thread hop per request (it
            # would cost about a third more CPU per message). An interrupt then lands
            # in the exchange itself, which gives the request on the wire the same
            # grace as the worker threads get (_exchange, _grace).
            try:
                while (request := batch.next(_monotonic())) is not None:
                    self._run(batch, request)
            except BaseException as exc:  # between two requests: none is on the wire
                batch.stop(exc)
        else:
            executor = self._get_executor()
            # A bounded window of queued requests keeps memory flat for any batch.
            window = 2 * concurrency
            inflight: deque[tuple[Future[None], Request]] = deque()
            # Set at an interrupt: ends the workers' waits (rate limit, Retry-After).
            wake = threading.Event()
            try:
                # A request leaves ``inflight`` only once its future is done: an
                # interrupt while waiting for it must find it there, on the wire.
                while (request := batch.next(_monotonic())) is not None:
                    future = executor.submit(self._run, batch, request, wake)
                    inflight.append((future, request))
                    if len(inflight) >= window:
                        inflight[0][0].result()
                        inflight.popleft()
                while inflight:
                    inflight[0][0].result()
                    inflight.popleft()
            except BaseException as exc:  # Ctrl-C (or SystemExit) in the calling thread
                self._interrupted(batch, inflight, exc, wake)
        return batch.finish()

    def _interrupted(
        self,
        batch: Batch,
        inflight: deque[tuple[Future[None], Request]],
        exc: BaseException,
        wake: threading.Event,
    ) -> None:
        """Stop a batch at once; give the requests on the wire a short grace period.

        No request starts after an interrupt (queued ones are cancelled or see the
        stop in ``begin()`` and stay ``not-sent``); those already on the wire get
        ``INTERRUPT_GRACE`` seconds to finish (a second interrupt ends the wait), and
        whatever is still out then is ``unknown``; a worker waiting to send (rate
        limit, ``Retry-After``) is woken and sends nothing. The batch is then sealed: a reply
        that comes later changes nothing the caller was given; and the exchanges
        still out are cut (their sockets shut down), so their worker threads are
        free at once instead of waiting for the read timeout. (One request at a
        time runs in the calling thread: there ``_exchange`` gives the same grace.)
        """
        batch.stop(exc)
        wake.set()
        pending = [(f, r) for f, r in inflight if not f.cancel()]
        deadline = _monotonic() + INTERRUPT_GRACE
        try:
            for future, _ in pending:
                remaining = deadline - _monotonic()
                if remaining > 0:
                    futures_wait([future], timeout=remaining)
        except BaseException:  # a second interrupt: no more waiting
            pass
        batch.seal(exc, [request for future, request in pending if not future.done()])
        self._watchdog.cut(batch)

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise RuntimeError("this hpgfast.Client is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._settings.concurrency, thread_name_prefix="hpgfast"
                )
            return self._executor

    def _run(self, batch: Batch, request: Request, wake: Optional[threading.Event] = None) -> None:
        """Send one request until the core calls it settled; wait where it says.

        A worker thread waits on ``wake``, which an interrupt sets (the calling
        thread's own waits end with the interrupt itself).
        """
        on_wire = False
        results = batch.results
        sleep = time.sleep if wake is None else wake.wait
        try:
            # The rate limit, or a batch-wide Retry-After (which may grow meanwhile).
            while (wait := batch.start_in(request, _monotonic())) > 0:
                if sleep(wait):
                    break  # woken: an interrupt
            line = batch.begin_line(request, _monotonic())
            if line is None:
                return
            while True:
                before = results[request.start]
                on_wire = True
                event, conn, received = self._exchange(line, batch, request.max_reply)
                keep_alive = False
                try:
                    # The wall clock too: a Retry-After may be an HTTP-date.
                    step = batch.report(request, event, _monotonic(), received, time.time())
                    on_wire = False
                    keep_alive = step.keep_alive
                finally:
                    if conn is not None:
                        self._release(conn, keep_alive)
                if step.retry_at is None:
                    return
                delay = step.retry_at - _monotonic()
                if delay > 0:
                    sleep(delay)
                if batch.stopped:
                    return  # stopped while waiting: what the last attempt established stands
                if not batch.begin_retry(request, _monotonic()):
                    return  # a subscriber refused it (a journal's lease ran out)
        except BaseException as exc:  # a bug, or an interrupt: the batch stops with it
            if on_wire and results[request.start] is not before:
                # Interrupted after the reply had settled the request (in a
                # subscriber, a journal write): what the reply said stands.
                on_wire = False
            batch.abort(request, exc, on_wire=on_wire)

    def _exchange(
        self, line: bytes, batch: Batch, max_reply: int
    ) -> tuple[Union[Reply, Failure], Optional[HTTPConnection], int]:
        """One GET on a pooled connection: what happened, and the connection to release.

        The connection comes back (still checked out of the pool) with a ``Reply``;
        after a ``Failure`` it is already closed and returned, and ``None`` comes back.
        An interrupt (Ctrl-C in the calling thread) stops the batch; before the
        request is written, the request is a ``CONNECT`` failure (nothing sent);
        once it is written, its reply gets ``INTERRUPT_GRACE`` seconds (``_grace``).
        """
        shown = batch.shown
        pool = self._pool
        try:
            # urllib3's own pooling, without urlopen() (which would re-encode the
            # whole target): see _pool.
            conn = cast(HTTPConnection, take(pool))
        except ClosedPoolError:
            raise RuntimeError("this hpgfast.Client is closed") from None
        started = time.perf_counter()
        failure: Optional[Failure] = None
        watch: Optional[list[Any]] = None
        reader: Optional[ResponseReader] = None
        phase = "connect"
        data = b""
        interrupt: Optional[BaseException] = None
        try:
            if conn.sock is None:  # urllib3's is_closed, without its Python frame
                conn.timeout = self._settings.connect_timeout
                tunnel = self._connect_request
                if tunnel is not None:
                    # Per connection: urllib3's close() forgets the tunnel.
                    conn.set_tunnel(self._host.strip("[]"), self._port)
                    cast(TunnelConnection, conn).hpgfast_connect = tunnel.value.encode("latin-1")
                conn.connect()
                # A server that closed the connection on accept has read nothing:
                # if that shows within FRESH_GRACE, it is a connect failure. Only for
                # plain HTTP: TLS 1.3 sends tickets after the handshake, which would
                # look the same (and there the handshake itself proves the accept).
                if self._scheme == "http" and conn.sock is not None:
                    if wait_for_read(conn.sock, timeout=FRESH_GRACE):
                        raise ConnectionResetError("connection closed by the server on connect")
            sock = conn.sock
            timeout = self._settings.timeout
            if sock.gettimeout() != timeout:
                # Once per connection (settimeout is a system call every time).
                sock.settimeout(timeout)
            watch = self._watchdog.watch(sock, batch)
            phase = "send"
            # One write of a request built once: the codec made the target ready to
            # send and the headers never change (http.client would build and check
            # them again, line by line, and scan the whole target, for every request).
            if self._absolute:
                # Through a proxy: the whole URL as the target (absolute form).
                line = line[:4] + self._absolute + line[4:]
            sock.sendall(line + self._tail)
            phase = "reply"
            reader = self._reader_for(conn, sock, max_reply)
            recv = sock.recv
            while True:
                data = recv(_RECV_SIZE)
                if not data:
                    reader.eof()
                    break
                if reader.feed(data):
                    break
                data = b""  # fed: an interrupt from here on has lost no byte
        except (OSError, _Urllib3Error) as exc:
            failure = self._failure(exc, phase, shown)
        except BaseException as exc:
            interrupt = exc
        if interrupt is not None:
            # An interrupt in the calling thread (a worker thread never gets one).
            batch.stop(interrupt)
            if phase == "connect" and not isinstance(interrupt, Exception):
                failure = Failure(
                    CONNECT,
                    ConnectError("interrupted before the request was sent", url=shown, sent=False),
                )
            else:
                # Not for a bug, nor with bytes read but maybe not fed (the reply can
                # no longer be read whole): those, and no whole reply within the
                # grace, leave the request unknown.
                whole = None
                if not isinstance(interrupt, Exception) and not data:
                    whole = self._grace(conn, reader, max_reply)
                if whole is None:
                    self._watchdog.done(watch)
                    conn.close()
                    give_back(pool, conn)
                    raise interrupt
                reader = whole
        cut = self._watchdog.done(watch)
        if cut:
            # The watchdog cut the exchange: whatever error it left is the cut's.
            if cut == PAST_DEADLINE:
                cause = f"no whole reply within request_deadline={self.request_deadline}s"
            else:
                cause = f"no whole reply within the interrupt's grace of {INTERRUPT_GRACE}s"
            failure = Failure(SENT, TransportError(cause, url=shown, sent=True))
        elif failure is None and reader is not None and not reader.ok:
            failure = reader.failure(shown, self._core.scrub)
        elif self._absolute and failure is None and reader is not None and reader.status == 407:
            failure = self.proxy_refused(407, "Proxy Authentication Required", shown)
        received = 0 if reader is None else reader.received
        if log.isEnabledFor(logging.DEBUG):
            status = None if reader is None else reader.status
            self._log_exchange(shown, line, failure, status, received, started)
        if failure is not None or reader is None:
            conn.close()
            give_back(pool, conn)
            assert failure is not None
            return failure, None, received
        if not reader.keep_alive:
            conn.close()
        return reader.reply(), conn, received

    def _grace(
        self, conn: HTTPConnection, reader: Optional[ResponseReader], max_reply: int
    ) -> Optional[ResponseReader]:
        """After an interrupt with the request written: read the rest of its reply.

        The reader, done, when the reply ended within ``INTERRUPT_GRACE`` seconds
        (what the worker threads get at concurrency > 1: ``_interrupted``); None
        when it did not, the connection broke, or a second interrupt ended the wait.
        """
        sock = conn.sock
        if sock is None:
            return None
        try:
            if reader is None:  # interrupted before the reader was made: nothing read
                reader = self._reader_for(conn, sock, max_reply)
            deadline = _monotonic() + INTERRUPT_GRACE
            while not reader.done:
                left = deadline - _monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)  # set back to timeout by the next exchange
                data = sock.recv(_RECV_SIZE)
                if not data:
                    reader.eof()
                elif reader.feed(data):
                    break
        except BaseException:  # a second interrupt, a timeout, a broken connection
            return None
        return reader

    def _reader_for(self, conn: HTTPConnection, sock: Any, max_reply: int) -> ResponseReader:
        """The connection's reply reader, reading within ``max_reply`` bytes (the
        request's cap, ``Request.max_reply``): the last one, if it may read the next
        reply.

        A reader's llhttp parser costs more to make than a reply costs to read at
        8 KiB requests, so a kept-alive connection keeps its reader (as an attribute
        of urllib3's connection object, with the socket it read from: a reconnected
        connection gets a new one).
        """
        kept = getattr(conn, _KEPT_READER, None)
        if kept is not None and kept[0] is sock and kept[1].reuse():
            reader = cast(ResponseReader, kept[1])
            reader.max_body = max_reply
            return reader
        reader = ResponseReader(max_reply)
        setattr(conn, _KEPT_READER, (sock, reader))
        return reader

    def _release(self, conn: HTTPConnection, keep_alive: bool) -> None:
        """Put a connection back in the pool; closed first unless it may serve again."""
        if not keep_alive:
            conn.close()
        give_back(self._pool, conn)
