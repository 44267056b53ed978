"""A batch as a transport drives it: requests out, events in, results at the end.

Strategy:

- **Plan, then send.** A whole batch is cut into requests and *validated* before
  the first request leaves, so bad input raises at once naming the message. The
  plan is a list of ``(start, end)`` bounds; the encoded queries of the first
  requests are kept (up to ``PLAN_CACHE_BYTES``) and the rest are encoded again when
  their turn comes (encoding is deterministic, so the bounds hold). Memory stays
  bounded for any batch size while small batches are encoded once. The cut is
  public as ``plan()`` (what ``hpgfast send --dry-run`` counts), from the same
  ``target_head()`` and ``room()`` the batch uses.
- **The operation is an object.** ``Exchange.batch`` takes ``SEND`` or ``STATUS``
  (``_operations``) and everything after asks it; nothing compares names.
- **The transport only moves bytes.** It takes ``Request`` objects from the batch
  (``next()``), asks ``begin_line()`` for the request line (subscribers hear of it
  first), writes it, and hands what happened to ``report()``, which answers "done"
  or "again at ``t``"; an interrupt is ``stop()``, then ``seal()`` after the grace.
  It never decides an outcome, and the batch never sleeps or reads a clock: the
  transport passes ``now`` in (``time.monotonic()``), with the wall-clock time of a
  reply (``time.time()``) that a ``Retry-After`` date is read against, and waits as
  it waits.
- **No locks.** Each request's results land in their own slice of the batch's
  list; the flags that stop a batch are plain attributes set once. A transport's
  threads or tasks never wait on the core.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

from .._fields import charset_of
from .._wire import Code
from ..exceptions import HPGError, MessageError, ProtocolError
from ._coding import CodingError, decode_body, reply_cap
from ._compact import CompactResults
from ._events import SENT, Failure, Reply, RequestFinished, RequestStarting, Subscriber
from ._operations import Encode, Operation
from ._plan import LINE_OVERHEAD, NO_IDS, PLAN_CACHE_BYTES, Request, cut
from ._results import StatusFailure
from ._rules import TOO_MANY_REQUESTS, RequestFacts, fill, judge, plain_results, unavailable

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["Batch", "Step"]

log = logging.getLogger("hpgfast.core")

_NOT_SENT = Code.NOT_SENT
_UNKNOWN = Code.UNKNOWN


class Step(NamedTuple):
    """The core's answer to a reported attempt.

    ``retry_at``: ``None`` when the request is settled, else the time (on the
    transport's monotonic clock) to send it again. ``keep_alive``: whether the
    connection the attempt used may serve another request.
    """

    retry_at: Optional[float]
    keep_alive: bool = True


#: ``RequestFacts(*fields)`` without the Python frame of a NamedTuple's ``__new__``
#: (made once a request).
_new_facts = partial(tuple.__new__, RequestFacts)

_DONE = Step(None, True)
_FAILED = Step(None, False)

#: What stands in the batch's list for a result moved into its ``CompactResults``:
#: not ``None`` (never settled), and the same object for every one (no memory).
_PACKED = object()


class Batch:
    """One ``send()``/``status()`` call: its plan, its results, and when it stops.

    A transport iterates over it for requests (``for request in batch``), calls
    ``begin(request, now)`` for each (``None``: do not send it), sends the target,
    reports each attempt with ``report(request, event, now)`` and, at the end,
    returns ``finish()``. Iteration stops handing out requests once the batch must
    stop; ``finish()`` fills what was never tried with ``not-sent``.
    """

    def __init__(
        self,
        exchange: Exchange,
        op: Operation,
        items: Sequence[Any],
        head: str,
        shown: str,
        max_bytes: int,
        holes: Optional[list[int]] = None,
        subscribers: Sequence[Subscriber] = (),
        compact: bool = False,
    ) -> None:
        self.exchange = exchange
        settings = exchange.settings
        # Read once a batch, used once a request: the client's, then the call's own.
        self._subscribers: Sequence[Subscriber] = (
            (*settings.subscribers, *subscribers) if subscribers else settings.subscribers
        )
        self._blocking = any(getattr(s, "blocking", False) for s in self._subscribers)
        self._holes = holes
        #: Indexes of the messages sent transliterated (``Settings.transliterate``).
        self.transliterated: list[int] = []
        self._sealed = False  # finished or interrupted: no result changes any more
        self._next = 0  # the plan's next request to hand out
        #: A batch-wide pause (the Retry-After of a 429 or a 5xx): no request starts
        #: before it.
        self.pause_until = float("-inf")
        #: 5xx replies in a row, over the batch's requests and their repeats; at
        #: ``stop_after_5xx`` the batch stops (``PlatformUnavailable``).
        self.unavailable = 0
        self.op = op
        self.items = items
        self.head = head  # the target up to the items: holds the password
        self._head_line = b"GET " + head.encode("ascii")  # the same, as written
        self.shown = shown  # the same, redacted, for logs and errors
        self.results: list[Any] = [None] * len(items)
        #: A configuration failure (or a bug, or an interrupt) that stops the batch.
        self.fatal: Optional[BaseException] = None
        #: The caller's list that ``finish()`` fills (``send(results=...)``): the
        #: results reach it even when the exception the caller catches is another
        #: one than ``fatal`` (asyncio's, around a cancellation).
        self.sink: Optional[list[Any]] = None
        #: Set when a request could not connect even after its retries: the platform
        #: is taken to be down and the remaining requests are not attempted.
        self.down: Optional[HPGError] = None
        self._made_ids = op.makes_ids and settings.client_ids
        self._max_reply = settings.max_reply_bytes  # None: the cap follows the request
        self._encode: Encode = op.encoder(
            items, max_bytes, settings.default_subject, settings.quote_brackets
        )
        self._read = op.reader(settings.status_tz)
        self.requests = (
            cut(self._encode, len(items), settings.max_batch, self._made_ids, PLAN_CACHE_BYTES)
            if items
            else []
        )
        #: ``send(compact=True)``: each request's results move here as it settles
        #: (its slots in ``results`` then hold ``_PACKED``), so that the results of
        #: a large batch never all exist as records at once; ``finish()`` returns it.
        self.compact: Optional[CompactResults] = (
            CompactResults._spans(
                len(items),
                [request.start for request in self.requests],
                [request.prefix for request in self.requests],
            )
            if compact
            else None
        )

    @property
    def sealed(self) -> bool:
        """True once the results stay as they are (``seal()``, ``finish()``): a
        request still on the wire then gets no grace period of its own."""
        return self._sealed

    @property
    def stopped(self) -> bool:
        """True once no further request may start."""
        return self.fatal is not None or self.down is not None

    def next(self, now: float) -> Optional[Request]:
        """The next request to send, with ``not_before`` set; ``None`` when none is left.

        ``None`` also once the batch must stop: no request starts after a stop.
        Called from one thread (or task) per batch, in order.
        """
        if self.stopped or self._next >= len(self.requests):
            return None
        request = self.requests[self._next]
        self._next += 1
        limit = self.exchange.rate_limit
        if limit is not None:
            request.not_before = limit.reserve(request.end - request.start, now, self.pause_until)
        else:
            request.not_before = max(now, self.pause_until)
        return request

    def start_in(self, request: Request, now: float) -> float:
        """Seconds to wait before ``request`` may begin (0 once the batch stopped).

        Its ``not_before``, or a batch-wide pause (``Retry-After``) set since it was
        handed out: a transport waits, then asks again, as a pause may grow meanwhile.
        """
        if self.stopped:
            return 0.0
        return max(request.not_before, self.pause_until) - now

    def _ids(self, request: Request) -> list[Any]:
        # SEND: effective_ids itself, without its Python frame (once per request).
        return self.op.ids(self.items, request.start, request.end, request.prefix)

    def _facts(self, request: Request) -> RequestFacts:
        # Made once per request (they change only with its ids or after a 429).
        facts = request.facts
        if facts is not None and facts.ids is request.ids and facts.after_429 == request.after_429:
            return facts
        exchange = self.exchange
        facts = request.facts = _new_facts(
            (
                self.op,
                request.start,
                request.end,
                request.ids,
                request.prefix is not None,
                self.shown,
                self._read,
                exchange.scrub,
                exchange.account_stop,
                exchange.settings.retry_on_429,
                exchange.settings.retry_after_max,
                request.after_429,
            )
        )
        return facts

    def _settle(self, request: Request, code: str, error: Optional[HPGError]) -> None:
        if not request.ids:
            request.ids = self._ids(request)
        self.results[request.start : request.end] = fill(self._facts(request), code, error)

    def begin_line(self, request: Request, now: float, *, hold: bool = False) -> Optional[bytes]:
        """The request line's first bytes for ``request`` (``GET <target>``, as the
        transport writes it), or ``None`` when it must not be sent.

        Called once, just before the request's first byte, in the thread or task
        that sends it: the subscribers hear of it here. ``None`` (the batch stopped,
        or a subscriber raised) leaves the request's items ``not-sent``. ``hold``
        (an event loop's transport): the ``blocking`` subscribers are not called
        here; the event waits in ``request.held`` for ``start_held``, which the
        transport runs in a worker thread and awaits before the first byte.
        """
        if self.stopped:
            self._settle(request, _NOT_SENT, self.down)
            return None
        query = request.query
        if query is None:
            query, nxt = self._encode(request.start, request.end - request.start, request.prefix)
            if nxt != request.end:
                raise RuntimeError("the batch changed while it was being sent")
        else:
            request.query = None  # sent once: let it go
        request.ids = self._ids(request)
        request.max_reply = reply_cap(request.end - request.start, self._max_reply)
        line = self._head_line + query
        request.sent_bytes = len(line) + LINE_OVERHEAD - 4
        request.started = now
        subscribers = self._subscribers
        if subscribers:
            event = RequestStarting(
                self.op.name, request.start, request.end, request.ids, self.shown
            )
            try:
                for subscriber in subscribers:
                    if hold and getattr(subscriber, "blocking", False):
                        request.held = event
                    else:
                        subscriber.request_starting(event)
            except BaseException as exc:
                request.held = None
                if self.fatal is None:
                    self.fatal = exc
                self._settle(request, _NOT_SENT, None)
                return None
        return line

    def begin_retry(self, request: Request, now: float) -> bool:
        """Whether ``request`` may be sent again now (a SEND after a 429, a STATUS
        after a failure...): the subscribers hear of each further attempt before
        its first byte (``Subscriber.request_retrying``), as of the first.

        False (the batch stopped, or a subscriber raised: a journal whose claim on
        the messages ran out) settles the request's items ``not-sent``: the core
        repeats a SEND only when its last attempt certainly did not reach the
        platform. Called in the thread or task that sends; a subscriber's
        ``request_retrying`` must not block (it runs on an event loop too).
        """
        if self.stopped:
            return False
        subscribers = self._subscribers
        if subscribers:
            event = RequestStarting(
                self.op.name, request.start, request.end, request.ids, self.shown
            )
            try:
                for subscriber in subscribers:
                    retrying = getattr(subscriber, "request_retrying", None)
                    if retrying is not None:
                        retrying(event)
            except BaseException as exc:
                if self.fatal is None:
                    self.fatal = exc
                self._settle(request, _NOT_SENT, None)
                return False
        return True

    def start_held(self, request: Request) -> bool:
        """Tell the blocking subscribers of ``request`` (held by ``begin_line``).

        Run by an event loop's transport in a worker thread, awaited before the
        request's first byte. False (the request must not be sent; its items are
        ``not-sent``) when one of them raised, or the batch stopped meanwhile.
        """
        event, request.held = request.held, None
        if event is None:
            return True
        if self.stopped:
            self._settle(request, _NOT_SENT, self.down)
            return False
        try:
            for subscriber in self._subscribers:
                if getattr(subscriber, "blocking", False):
                    subscriber.request_starting(event)
        except BaseException as exc:
            if self.fatal is None:
                self.fatal = exc
            self._settle(request, _NOT_SENT, None)
            return False
        return True

    def stop(self, exc: BaseException) -> None:
        """Stop the batch with ``exc`` (an interrupt): no request starts after this.

        The first half of the one way a transport stops a batch: the requests on
        the wire then get their grace period (``INTERRUPT_GRACE``), and ``seal()``
        ends it. A stop while none is on the wire needs no seal: ``finish()`` seals.
        """
        if self.fatal is None:
            self.fatal = exc

    def seal(self, exc: BaseException, cut: Iterable[Request] = ()) -> None:
        """End a stopped batch's grace period: the requests in ``cut``, still on the
        wire, are ``unknown``; from now on the results stay as they are (a reply that
        comes later changes nothing the caller was given)."""
        for request in cut:
            self.abort(request, exc, on_wire=True)
        self.stop(exc)
        self._sealed = True

    def report(
        self,
        request: Request,
        event: Any,
        now: float,
        received: int = 0,
        wall: Optional[float] = None,
    ) -> Step:
        """What one attempt of ``request`` came to: settled, or again at ``retry_at``.

        ``event`` is a ``Reply`` or a ``Failure``; ``received`` the reply's bytes;
        ``wall`` the wall-clock time (``time.time()``) alongside ``now``, which a
        ``Retry-After`` date is read against (without it, a date is ignored).
        The request's results are in place when the step says it is settled.
        """
        if self._sealed:
            log.info("%r ended after its batch was interrupted", request)
            return _FAILED
        read = None
        replied = type(event) is Reply
        if replied:
            if event.status >= 500:
                self.unavailable += 1
            else:
                self.unavailable = 0  # any other reply: the platform answers again
            if event.content_encoding is not None:
                # A compressed body (never asked for): decoded here, within the cap,
                # for both transports; or the reply is a failure.
                event = self._decoded(request, event)
                replied = type(event) is Reply
            elif event.status == 200:
                # The usual reply, read once here: a plain one (plain_results) is
                # settled without the facts and the verdict the rules need otherwise.
                ct = event.content_type
                if ct is None or ";" not in ct:
                    read = self._read(event.body, request.ids)
                else:
                    # A declared charset, for free text that is not UTF-8 (``_fields``).
                    read = self._read(event.body, request.ids, charset=charset_of(ct))
                results = plain_results(read)
                if results is not None:
                    self.results[request.start : request.end] = results
                    return self._settled(request, now, received, _DONE)
        facts = self._facts(request)
        verdict = judge(facts, event, read, wall)
        policy = self.exchange.policy
        if replied and event.status == TOO_MANY_REQUESTS:
            request.after_429 = True
        if (
            replied
            and event.status >= 500
            and self.unavailable >= self.exchange.settings.stop_after_5xx
            and self.fatal is None
            and verdict.fatal is None  # an account stop as a 5xx's text says more
        ):
            verdict = unavailable(facts, verdict, event, self.unavailable)
        if verdict.wait is not None:
            # Retry-After speaks for the platform as a whole: the batch slows down,
            # whether or not this request is repeated.
            self.pause_until = max(self.pause_until, now + verdict.wait)
        if verdict.retryable and self.fatal is None and policy.allows(request.attempt):
            # What stands if the request is never repeated (an interrupt while waiting).
            self.results[request.start : request.end] = verdict.results
            delay = policy.delay(request.attempt) if verdict.wait is None else verdict.wait
            request.attempt += 1
            log.info(
                "retrying (%d of %d) in %.2f s after: %s",
                request.attempt,
                policy.retries,
                delay,
                verdict.note or type(event).__name__,
            )
            return Step(now + delay, keep_alive=False)
        if verdict.note is not None:
            log.warning("%s", verdict.note)
        self.results[request.start : request.end] = verdict.results
        if verdict.fatal is not None and self.fatal is None:
            self.fatal = verdict.fatal
        if verdict.down is not None and self.down is None:
            self.down = verdict.down
        return self._settled(request, now, received, _DONE if verdict.clean else _FAILED)

    def _decoded(self, request: Request, reply: Reply) -> Union[Reply, Failure]:
        """``reply`` with its body's ``Content-Encoding`` undone (``_coding``).

        A 200 whose body cannot be decoded within the request's cap (a coding
        hpgfast does not read, a broken stream, a bomb) was not read: a ``SENT``
        failure, as a reply over the cap is (a SEND's messages ``unknown``). Any
        other status still says what it says; only its description is lost.
        """
        coding = reply.content_encoding
        assert coding is not None
        try:
            body = decode_body(reply.body, coding, request.max_reply)
        except CodingError as exc:
            text = self.exchange.scrub(str(exc))
            if reply.status == 200:
                return Failure(SENT, ProtocolError(None, text))
            return reply._replace(body=f"({text})".encode(), content_encoding=None)
        return reply._replace(body=body, content_encoding=None)

    def _settled(self, request: Request, now: float, received: int, step: Step) -> Step:
        self._finished(request, now, received)
        if self.compact is not None:
            self._pack(request)
        # Settled: what only its attempts needed goes now rather than at the end of
        # the batch, which holds its requests to the end (fewer objects for the
        # cyclic GC to walk and promote meanwhile). Should anything settle the
        # request again, its ids are made again.
        request.ids = NO_IDS
        request.facts = None
        return step

    def abort(self, request: Request, exc: BaseException, *, on_wire: bool) -> None:
        """A request broke off with an exception of the transport's (a bug, an interrupt).

        The batch stops with ``exc``. ``on_wire``: the request was being written or
        its reply read, so it may have reached the platform: its items are
        ``unknown``. Otherwise they keep what an earlier attempt established (a
        ``not-sent`` while waiting to repeat it, say), or are ``not-sent`` if it
        never began.
        """
        if self.fatal is None:
            self.fatal = exc
        if self._sealed:
            return
        error = exc if isinstance(exc, HPGError) else None
        if on_wire:
            self._settle(request, _UNKNOWN, error)
        elif self.results[request.start] is None:
            self._settle(request, _NOT_SENT, error)

    def _finished(self, request: Request, now: float, received: int) -> None:
        subscribers = self._subscribers
        if not subscribers:
            return
        event = RequestFinished(
            self.op.name,
            request.start,
            request.end,
            self.results[request.start : request.end],
            request.attempt + 1,
            request.sent_bytes,
            received,
            now - request.started,
        )
        try:
            for subscriber in subscribers:
                subscriber.request_finished(event)
        except BaseException as exc:
            if self.fatal is None:
                self.fatal = exc

    def _pack(self, request: Request) -> None:
        # After the subscribers heard of the request (its records, whole): the
        # results move into the compact form, and the batch keeps no record of them.
        start, end = request.start, request.end
        ids = request.ids
        assert self.compact is not None
        self.compact._put(start, self.results[start:end], None if ids is NO_IDS else ids)
        self.results[start:end] = repeat(_PACKED, end - start)

    def _fill_holes(self, results: list[Any]) -> list[Any]:
        full: list[Any] = []
        answered = iter(results)
        holes = set(self._holes or ())
        for i in range(len(results) + len(holes)):
            if i in holes:
                error = MessageError(
                    i,
                    "provider_id",
                    "None: the platform accepted the message without a provider id, so "
                    "its status cannot be asked",
                )
                full.append(StatusFailure(_NOT_SENT, None, error=error))
            else:
                full.append(next(answered))
        return full

    def finish(self) -> Union[list[Any], CompactResults]:
        """The results, one per item in order; raises the error that stopped the batch.

        Items of requests never begun are ``not-sent``; of requests begun and never
        reported (a transport that lost one on the wire), ``unknown``. The raised
        error carries ``results``: whatever was known of every item when the batch
        stopped. The ``sink`` list, if any, gets the same results, returned or raised.
        A batch planned with ``compact=True`` returns (and its error carries) its
        ``CompactResults`` instead of a list.
        """
        self._sealed = True
        results = self.results
        for request in self.requests:
            if results[request.start] is None:
                # Begun (its ids made, its line handed to the transport) and never
                # reported: it may be on the platform. Only one never begun is not-sent.
                begun = request.ids is not NO_IDS
                if begun:
                    self._settle(request, _UNKNOWN, None)
                else:
                    self._settle(request, _NOT_SENT, self.down)
        if self._holes is not None:
            results = self.results = self._fill_holes(results)
        if self.compact is not None:
            for request in self.requests:
                if results[request.start] is not _PACKED:
                    self._pack(request)
            self.compact._seal()  # every request in: read-only from here on
            self.results = []
            results = self.compact  # type: ignore[assignment]
        if self.sink is not None:
            self.sink[:] = results
        fatal = self.fatal
        if fatal is not None:
            # Whatever was sent before the failure is not lost: the error carries it.
            fatal.results = results  # type: ignore[attr-defined]
            raise fatal
        return results
