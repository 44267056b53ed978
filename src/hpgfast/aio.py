"""``hpgfast.AsyncClient``: the asyncio transport of the HPG exchange (the ``async`` extra).

Strategy: as for ``hpgfast.Client``, every rule lives in the sans-IO core
(``hpgfast.core``); this module only moves bytes, on asyncio's own transports with
llhttp reading the replies (``_response.ResponseReader``):

- **One small protocol per connection.** ``Connection`` (``_aio_conn``) hands each chunk the loop
  reads straight to the reply reader; the waiting task wakes once, when the reply
  is whole or failed. No streams, no per-chunk task switch.
- **One request at a time, from the callback.** When a batch goes one request at
  a time (``concurrency=1``, the default), the connection's callback reports a
  whole reply to the core itself and, when the core hands out the next request
  and it may go at once on the same kept connection, writes it (``_chain``, the
  ``Lane`` of ``_aio_lane``): one loop turn per request instead of two, and no
  task step. Anything else (a failure, a retry, a wait, a new connection, a
  stop, a slot another call waits for) wakes the task, which goes on from there.
- **A pool of keep-alive connections**, at most ``concurrency`` kept, last used
  first. A connection is reused only when the core and the reply both allow it and
  nothing arrived on it while it was idle (a stale or extra reply).
- **Connect, then send.** A connection (and its TLS handshake) is made before any
  byte of the request is written, and a fresh plain-HTTP connection is watched for
  ``FRESH_GRACE`` for a close on accept: "connect failed" always means "nothing
  sent", the ``CONNECT`` failure the core may repeat.
- **Time limits on one timer per client**: while exchanges are on the wire, one
  loop timer a few times a second (``_TICKS`` per ``timeout``, at least four a
  second) checks them all for the read timeout (``timeout`` without a byte) and
  the request deadline (first written byte to the end of the reply, however the
  reply trickles in). A timer per exchange cost more than reading an 8 KiB
  request's reply; a limit now fires up to two ticks late.
- **Cancellation is an interrupt.** A cancelled ``send()`` starts no further
  request; the requests on the wire get ``INTERRUPT_GRACE`` seconds to finish (a second
  cancel ends the grace); what was known is reported: the ``CancelledError``
  raised carries ``.results`` like every error of a batch (``results_of`` and
  ``send(results=...)`` for the exceptions asyncio raises in its place).
- **No password anywhere**: URLs shown are the core's redacted view, foreign error
  texts go through its redactor, errors are made outside ``except`` blocks, and
  asyncio never sees a request target (the client writes the request bytes itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Optional, Union, cast, overload

from . import _redact
from ._aio_conn import Connection, open_connection
from ._aio_lane import BEGUN, FAILED, NEXT, SETTLED, WIRE, Lane, Slots, start_held, wind_down
from ._base import (
    FRESH_GRACE,
    INTERRUPT_GRACE,
    BaseClient,
    settings_doc,
)
from ._records import Message, Params, SendResult, StatusResult
from ._response import ResponseReader
from .core import (
    CONNECT,
    SEND,
    STATUS,
    Batch,
    CompactResults,
    Failure,
    Reply,
    Request,
    Step,
    Subscriber,
)
from .exceptions import ConnectError

__all__ = ["AsyncClient"]

log = logging.getLogger(__name__)

#: Ticks per ``timeout`` (and per ``request_deadline``) while exchanges are on the
#: wire, within these bounds (seconds between ticks).
_TICKS = 4
_MAX_TICK = 0.25
_MIN_TICK = 0.001

_monotonic = time.monotonic


class AsyncClient(BaseClient):
    __doc__ = settings_doc(
        """The asyncio client of one HPG connector: ``await send()``, ``await status()``.

    The same constructor arguments as ``hpgfast.Client`` (below), the same outcomes
    and exceptions (the core decides them). Use it as ``async with
    AsyncClient(...) as client:`` or call ``await client.aclose()``.
    One client serves one event loop at a time; ``concurrency`` bounds the
    requests in flight (and the connections kept) over all its calls.

    Cancelling a ``send()`` (or ``status()``) works like an interrupt of the sync
    client: no request starts after it, requests on the wire get two seconds to
    finish (a second cancel ends that at once), and the ``CancelledError`` raised
    carries ``results``: what is known of every message (``unknown`` for those cut
    on the wire, ``not-sent`` for those never begun). The exception the caller
    catches may be asyncio's own (``asyncio.wait_for``'s ``TimeoutError``, the
    ``KeyboardInterrupt`` of ``asyncio.run()`` on Ctrl-C): ``hpgfast.results_of``
    finds the results through it, and a list passed as ``send(results=...)`` gets
    them however the call ends (docs/outcomes.md, "When the caller stops a batch").
    """
    )

    _log = log
    _timeouts = (asyncio.TimeoutError,)  # not yet the builtin TimeoutError before 3.11

    def _open(self) -> None:
        host = self._host
        # parse_url keeps an IPv6 literal's brackets: the Host header wants them,
        # the socket does not.
        self._connect_host = host[1:-1] if host.startswith("[") else host
        self._server_hostname = self._connect_host if self._ssl_context is not None else None
        route = self._proxy_route
        #: Where sockets go: the platform, or the proxy.
        self._dial = (
            (self._connect_host, self._port) if route is None else (route.host, route.port)
        )
        self._idle: list[Connection] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._slots: Optional[Slots] = None
        self._pid = os.getpid()
        self._keeper: Optional[asyncio.Task[None]] = None
        #: Connections with an exchange on the wire, and the tick that watches them.
        self._watched: set[Connection] = set()
        self._ticking: Optional[asyncio.TimerHandle] = None
        settings = self._settings
        self._tick_every = max(
            _MIN_TICK, min(_MAX_TICK, settings.timeout / _TICKS, settings.deadline / _TICKS)
        )

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close every kept connection. Idempotent; ``aclose()`` is the same, awaitable."""
        if self._closed:
            return
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._stop_keeper()
        self._stop_ticking()
        _redact.unregister(id(self))

    async def aclose(self) -> None:
        """Close every kept connection. Idempotent."""
        keeper = self._keeper
        self.close()
        if keeper is not None and keeper.get_loop() is asyncio.get_running_loop():
            await asyncio.wait({keeper})  # let it end before the loop may close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- public operations -------------------------------------------------------------

    @overload
    async def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: Literal[False] = False,
    ) -> list[SendResult]: ...
    @overload
    async def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: Literal[True],
    ) -> CompactResults: ...
    @overload
    async def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: bool,
    ) -> Union[list[SendResult], CompactResults]: ...
    async def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
        results: Optional[list[SendResult]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: bool = False,
    ) -> Union[list[SendResult], CompactResults]:
        """Send a batch of messages of any size; one result per message, in order.

        Exactly ``hpgfast.Client.send()``, awaited: same arguments, results and
        exceptions (errors raised after something was sent carry ``results``).
        The exception the caller catches after a cancellation may be asyncio's own
        (``asyncio.wait_for``'s ``TimeoutError``, ``KeyboardInterrupt`` from
        ``asyncio.run``): ``hpgfast.results_of(exc)`` finds the results through
        it, and a list passed as ``results`` gets them however the call ends.
        ``compact=True``: a ``CompactResults`` instead of a list, as there.
        """
        return await self._drive(self._plan(SEND, messages, params, results, subscribers, compact))

    async def status(
        self,
        provider_ids: Iterable[str],
        *,
        params: Optional[Params] = None,
        results: Optional[list[StatusResult]] = None,
        subscribers: Sequence[Subscriber] = (),
    ) -> list[StatusResult]:
        """Ask the delivery status of messages, by provider id; one result per id, in order.

        Exactly ``hpgfast.Client.status()``, awaited (``results`` as for ``send()``).
        """
        return cast(
            list[StatusResult],
            await self._drive(self._plan(STATUS, provider_ids, params, results, subscribers)),
        )

    # -- driving the core -----------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; connections of an earlier loop are dropped."""
        loop = asyncio.get_running_loop()
        if os.getpid() != self._pid:
            # A forked child: the connections are the parent's, and so is the epoll
            # set their sockets are in (shared across fork). Closing them here would
            # take them out of the parent's loop: forget them untouched.
            self._pid = os.getpid()
            self._idle = []
            self._loop = None
            self._keeper = None
            self._watched = set()
            self._ticking = None
        if loop is not self._loop:
            idle, self._idle = self._idle, []
            for conn in idle:
                conn.close()
            self._stop_keeper()
            self._stop_ticking()
            self._loop = loop
            self._slots = Slots(self._settings.concurrency)
            self._keeper = loop.create_task(self._keep(loop))
        return loop

    async def _keep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Closes the kept connections when the loop winds down.

        ``asyncio.run()`` cancels every task left when its coroutine returns, then
        closes the loop: this task's cancellation closes the connections while the
        loop can still do it, so none is left open on a closed loop.
        """
        try:
            await loop.create_future()
        finally:
            if self._loop is loop:
                idle, self._idle = self._idle, []
                for conn in idle:
                    conn.close()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = _monotonic()  # the clock Connection.start is given
        for conn in list(self._watched):
            conn.check(now)
        # Only while something is on the wire: an idle client leaves the loop alone.
        self._ticking = (
            loop.call_later(self._tick_every, self._tick, loop) if self._watched else None
        )

    def _stop_ticking(self) -> None:
        ticking, self._ticking = self._ticking, None
        self._watched = set()
        if ticking is not None:
            ticking.cancel()

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.done():
            try:
                keeper.cancel()
            except RuntimeError:  # its loop is closed
                pass

    async def _drive(self, batch: Batch) -> Union[list[Any], CompactResults]:
        """Send a planned batch (``_plan``); its results, or the error that stopped it."""
        loop = self._bind()
        tasks: dict[asyncio.Task[None], Request] = {}
        limit = self._settings.concurrency
        stop: Optional[BaseException] = None
        try:
            if limit == 1 or len(batch.requests) == 1:
                # One at a time: in this task, no task per request (each costs loop
                # turns), and most requests go out from the connection's callback
                # (_chain). A cancellation meets the exchange itself, whose grace
                # period lets the request on the wire finish (_exchange_on).
                lane: Optional[Lane] = None
                request = batch.next(_monotonic())
                while request is not None:
                    if lane is None:
                        lane = Lane(batch, self._chain, request)
                    await self._run(batch, request, lane)
                    request = lane.next_request()
            else:
                while (request := batch.next(_monotonic())) is not None:
                    tasks[loop.create_task(self._run(batch, request))] = request
                    if len(tasks) >= limit:
                        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            del tasks[task]
                if tasks:
                    await asyncio.wait(tasks)
        except BaseException as exc:  # a cancellation (or an interrupt): stop the batch
            stop = exc
        if stop is not None:
            batch.stop(stop)
            await wind_down(batch, stop, tasks)
        return batch.finish()

    async def _run(self, batch: Batch, request: Request, lane: Optional[Lane] = None) -> None:
        """Send one request until the core calls it settled; wait where it says.

        With a ``lane`` (one request at a time), the connection's callback may have
        settled it and gone on to later requests while this task waited: the lane
        says which request is this task's now, and where to go on from.
        """
        on_wire = False
        if lane is not None:
            lane.request = request
        try:
            # The rate limit, or a batch-wide Retry-After (which may grow meanwhile).
            while (wait := batch.start_in(request, _monotonic())) > 0:
                await asyncio.sleep(wait)
            line = batch.begin_line(request, _monotonic(), hold=True)
            if line is None:
                return
            slots = self._slots
            assert slots is not None
            while True:
                if request.held is not None and not await start_held(batch, request):
                    return
                on_wire = True
                # A slot of the client's concurrency for the exchange (no coroutine
                # when one is free: the usual case).
                if not slots.take():
                    await slots.wait()
                try:
                    exchanged = await self._exchange_on(line, batch, request, lane)
                finally:
                    slots.release()
                on_wire = False
                if lane is not None:
                    # The lane's callback may have settled this request and gone on
                    # to later ones meanwhile: the task's request is the lane's.
                    request, line = lane.request, lane.line
                if exchanged is not None:
                    step = self._report(batch, request, *exchanged)
                else:  # the callback stopped where the lane says
                    assert lane is not None
                    phase, pending, lane.step = lane.phase, lane.step, None
                    if phase == BEGUN:
                        continue  # a later request, begun: its blocking subscribers first
                    if phase == FAILED:
                        error, lane.error = lane.error, None
                        on_wire = lane.on_wire
                        assert error is not None
                        raise error
                    if pending is None:
                        return  # settled (and perhaps the next one handed out: _drive)
                    step = pending
                if step.retry_at is None:
                    return
                delay = step.retry_at - _monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if batch.stopped:
                    return  # stopped while waiting: what the last attempt established stands
                if not batch.begin_retry(request, _monotonic()):
                    return  # a subscriber refused it (a journal's lease ran out)
        except BaseException as exc:  # a bug, or a cancellation: the batch stops with it
            if lane is not None:
                request = lane.request  # the lane's request is the one this task had
            batch.abort(request, exc, on_wire=on_wire)

    def _report(
        self,
        batch: Batch,
        request: Request,
        event: Union[Reply, Failure],
        conn: Optional[Connection],
        received: int,
    ) -> Step:
        """Tell the core what an exchange came to; keep or close its connection."""
        keep_alive = False
        try:
            # The wall clock too: a Retry-After may be an HTTP-date.
            step = batch.report(request, event, _monotonic(), received, time.time())
            keep_alive = step.keep_alive
        finally:
            if conn is not None:
                self._release(conn, keep_alive)
        return step

    async def _exchange_on(
        self, line: bytes, batch: Batch, request: Request, lane: Optional[Lane] = None
    ) -> Optional[tuple[Union[Reply, Failure], Optional[Connection], int]]:
        """One GET, in a slot: what happened, and the connection to release (None
        after a failure); None when the lane's callback took the reply over."""
        shown = batch.shown
        loop = self._loop
        assert loop is not None
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        if lane is not None:
            lane.request, lane.line, lane.started, lane.phase = request, line, started, WIRE
        conn = None
        idle = self._idle
        while idle:
            candidate = idle.pop()
            if candidate.closed or candidate.stray or candidate.dropped():
                candidate.close()
            else:
                conn = candidate
                break
        if conn is None:
            made = await self._connect(shown)
            if isinstance(made, Failure):
                # Logged as the sync client logs it: a refused CONNECT (407) or a
                # platform that cannot be reached is an exchange too.
                if debug:
                    self._log_exchange(shown, line, made, None, 0, started)
                return made, None, 0
            conn = made
        # The connection's last reader, when it may read the next reply (a new
        # llhttp parser costs more than reading an 8 KiB request's reply), set to
        # this request's cap.
        reader = conn.spare
        if reader is None or not reader.reuse():
            reader = conn.spare = ResponseReader(request.max_reply)
        else:
            reader.max_body = request.max_reply
        waiter: asyncio.Future[None] = loop.create_future()
        self._watched.add(conn)
        if self._ticking is None:
            self._ticking = loop.call_later(self._tick_every, self._tick, loop)
        cancelled: Optional[BaseException] = None
        try:
            line = self._send(conn, reader, waiter, line, lane)
            await waiter
        except BaseException as exc:  # cancelled (or interrupted) with the request on the wire
            cancelled = exc
        if lane is not None:
            if lane.phase != WIRE:
                # The callback settled the request (and perhaps went on): no reply
                # of this task's is on the wire.
                if cancelled is not None:
                    batch.stop(cancelled)
                return None
            # The request on the wire may be a later one the callback wrote, on the
            # same connection (its reader is the connection's).
            reader = conn.spare
            assert reader is not None
            line, started = lane.line, lane.started
            if self._absolute:
                line = line[:4] + self._absolute + line[4:]
        if cancelled is not None:
            # The grace period: the batch stops, but the reply to what was sent may
            # still come and say what became of its messages. A second
            # cancellation cuts it at once, and so does a sealed batch: its grace
            # (_wind_down's) is over.
            batch.stop(cancelled)
            if (
                isinstance(cancelled, asyncio.CancelledError)
                and not reader.done
                and not batch.sealed
            ):
                # The cancellation cancelled the waiter too: wait on a new one.
                grace: asyncio.Future[None] = loop.create_future()
                conn.waiter = grace
                try:
                    await asyncio.wait({grace}, timeout=INTERRUPT_GRACE)
                except BaseException:  # a second cancellation: no more grace
                    pass
            if not reader.done:
                conn.stop()
                self._watched.discard(conn)
                conn.close()
                raise cancelled
        conn.stop()
        self._watched.discard(conn)
        received = reader.received
        failure = None if reader.ok else reader.failure(shown, self._core.scrub)
        if failure is None and self._absolute and reader.status == 407:
            # The proxy's own refusal, in place of the platform's reply: nothing
            # reached the platform.
            failure = self.proxy_refused(407, "Proxy Authentication Required", shown)
        if debug:
            self._log_exchange(shown, line, failure, reader.status, received, started)
        if failure is not None:
            conn.close()
            return failure, None, received
        if not reader.keep_alive:
            conn.close()
        return reader.reply(), conn, received

    def _send(
        self,
        conn: Connection,
        reader: ResponseReader,
        waiter: asyncio.Future[None],
        line: bytes,
        lane: Optional[Lane],
    ) -> bytes:
        """Write a request on ``conn``, its reply to ``reader``; the request line as
        written. (The caller has the tick watch ``conn``.)"""
        settings = self._settings
        conn.start(
            reader,
            waiter,
            _monotonic(),
            settings.timeout,
            settings.deadline,
            None if lane is None else lane.chain,
        )
        transport = conn.transport
        assert transport is not None
        if self._absolute:
            # Through a proxy: the whole URL as the target (absolute form).
            line = line[:4] + self._absolute + line[4:]
        transport.write(line + self._tail)
        return line

    def _chain(self, lane: Lane, conn: Connection) -> bool:
        """A whole reply on ``conn``, the lane's: the task's next steps, done here.

        Called by the connection as the reply's last bytes are read, in place of
        waking the task, in the caller's context (``Lane.chain``): it reports the
        reply to the core and, when the core settles the request and hands out the
        next one, which may start at once on this same connection, writes it. The
        task sleeps on: one loop turn per request instead of two, and no task step.
        Whatever else happens (a failure, a retry, a wait, a connection to make, a
        stop, a slot another call waits for) wakes the task, with the lane saying
        how far this got. False: nothing was done, the connection wakes the task.
        """
        reader = conn.reader
        waiter = conn.waiter
        batch = lane.batch
        slots = self._slots
        if (
            reader is None
            or waiter is None
            or waiter.done()  # cancelled: the task takes it from here
            or not reader.ok
            or not reader.keep_alive
            or reader.extra
            or (self._absolute and reader.status == 407)
            or batch.stopped
            or conn.stray
            or (slots is not None and slots.waiters)
        ):
            return False
        debug = log.isEnabledFor(logging.DEBUG)
        received = reader.received
        try:
            if debug:
                written = lane.line
                if self._absolute:
                    written = written[:4] + self._absolute + written[4:]
                self._log_exchange(
                    batch.shown, written, None, reader.status, received, lane.started
                )
            # The wall clock too: a Retry-After may be an HTTP-date.
            step = batch.report(lane.request, reader.reply(), _monotonic(), received, time.time())
        except BaseException as exc:  # a bug (or an interrupt): the task aborts the request
            self._end(conn)
            conn.close()
            return lane.failed(waiter, exc, on_wire=False)
        # The task would release the connection and take it again at once (the
        # pool is last in, first out): the same checks, without the trip.
        if (
            step.retry_at is not None
            or not step.keep_alive
            or conn.closed
            or self._closed
            or len(self._idle) >= self._settings.concurrency
            or conn.dropped()
        ):
            self._end(conn)
            self._release(conn, step.keep_alive)
            if step.retry_at is not None:
                lane.step = step
            return lane.wake(waiter, SETTLED)
        nxt: Optional[Request] = None
        line: Optional[bytes] = None
        try:
            while line is None:  # begin_line's None: not to be sent, the next one
                nxt = None
                now = _monotonic()
                nxt = batch.next(now)
                if nxt is None or batch.start_in(nxt, now) > 0:
                    break
                line = batch.begin_line(nxt, now, hold=True)
        except BaseException as exc:  # a bug (or an interrupt)
            self._end(conn)
            self._release(conn, True)
            if nxt is None:  # batch.next() raised: the batch stops with it (_drive)
                lane.next, lane.error = None, exc
                return lane.wake(waiter, NEXT)
            lane.request = nxt
            return lane.failed(waiter, exc, on_wire=False)
        if nxt is None or line is None or nxt.held is not None:
            # None left, the next one to wait, or begun with blocking subscribers to
            # run first: the task goes on from here.
            self._end(conn)
            self._release(conn, True)
            if nxt is None or line is None:
                lane.next = nxt
                return lane.wake(waiter, NEXT)
            lane.request, lane.line = nxt, line
            return lane.wake(waiter, BEGUN)
        lane.request, lane.line = nxt, line
        lane.started = time.perf_counter() if debug else 0.0
        if not reader.reuse():
            reader = conn.spare = ResponseReader(nxt.max_reply)
        else:
            reader.max_body = nxt.max_reply
        try:
            self._send(conn, reader, waiter, line, lane)  # (conn is still watched)
        except BaseException as exc:  # as the task: the request may have gone out
            self._end(conn)
            conn.close()
            batch.stop(exc)
            return lane.failed(waiter, exc, on_wire=True)
        return True

    def _end(self, conn: Connection) -> None:
        """The exchange on ``conn`` is over: forget its reply, stop watching it."""
        conn.stop()
        self._watched.discard(conn)

    async def _connect(self, shown: str) -> Union[Connection, Failure]:
        """A new connection (TLS done), or the ``CONNECT``/``TLS`` failure: nothing sent."""
        loop = self._loop
        assert loop is not None
        error: Optional[BaseException] = None
        conn: Optional[Connection] = None
        try:
            opening = open_connection(
                loop, self._dial, self._ssl_context, self._server_hostname, self._connect_request
            )
            conn = await asyncio.wait_for(opening, self._settings.connect_timeout)
            if self._ssl_context is None and conn is not None:
                # A server that closes on accept has read nothing (see FRESH_GRACE).
                await asyncio.sleep(FRESH_GRACE)
                if conn.closed or conn.stray:
                    conn.close()
                    return Failure(
                        CONNECT,
                        ConnectError(
                            "could not connect: the server closed the connection on connect",
                            url=shown,
                            sent=False,
                        ),
                    )
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ssl.CertificateError) as exc:
            # (TunnelRefused is an OSError: the proxy's refusal.)
            error = exc
        if error is None:
            assert conn is not None
            return conn
        return self._failure(error, "connect", shown)

    def _release(self, conn: Connection, keep_alive: bool) -> None:
        """Keep a connection for the next request, or close it."""
        if keep_alive and not conn.closed and not conn.stray and not self._closed:
            if len(self._idle) < self._settings.concurrency:
                self._idle.append(conn)
                return
        conn.close()
