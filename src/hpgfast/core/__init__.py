"""The HPG exchange without I/O: what every transport of hpgfast shares.

Strategy (h11's lesson): what a reply means for each message, what is repeated
and when, and what stops a batch are decided here, once, by code that opens no
socket, imports no HTTP library, reads no clock and never sleeps. A transport
(``hpgfast.Client`` on urllib3, ``hpgfast.AsyncClient`` on asyncio) only moves
bytes:

1. ``Exchange.batch(op, items, params)`` checks every item and cuts the batch into
   ``Request`` objects (``_batch``). ``op`` is ``SEND`` or ``STATUS``, an
   ``Operation`` that carries all the two differ in (``_operations``), chosen once
   there; ``plan()`` gives the same cut without an exchange (a dry run's);
2. ``Batch.next(now)`` hands out the next ``Request`` (``None`` when none is left,
   or once the batch stopped), its ``not_before`` set by the rate limit and any
   ``Retry-After`` pause; the transport waits ``Batch.start_in(request, now)``
   seconds (asked again after the wait: a ``Retry-After`` met meanwhile pauses the
   batch further), then ``Batch.begin_line(request, now)`` gives the
   request line's bytes (``GET <target>``; the subscribers hear of it first,
   ``_events``; ``None``: not to be sent) and sets ``request.max_reply``, the cap
   the transport reads its reply within (``_coding``); the transport writes them
   and reports a ``Reply`` (its body as sent: a ``Content-Encoding`` is undone
   here) or a ``Failure`` to ``Batch.report(request, event, now, received, wall)``
   (``wall``: ``time.time()``, for a ``Retry-After`` date), which answers with a
   ``Step``: settled, or "again at ``t``" under the ``RetryPolicy`` (``_policy``);
   before each such attempt ``Batch.begin_retry(request, now)`` tells the
   subscribers (False: not to be sent, the request's items ``not-sent``).
   An exception of the transport's own while a request is out is
   ``Batch.abort(request, exc, on_wire=...)``;
3. an interrupt or a cancel is ``Batch.stop(exc)`` (no request starts after it),
   then, once the requests on the wire had their grace, ``Batch.seal(exc, cut)``
   (those still out are ``unknown``; results change no more);
4. ``Batch.finish()`` returns one result per item (a list; a ``CompactResults``
   for a batch planned with ``compact=True``), or raises the error that stopped
   the batch with ``.results`` attached (and fills ``sink``).

Both transports call exactly these, and nothing else of a batch.

The outcome table itself is ``_rules``: one function per kind of event, each
returning a ``Verdict`` for the request's items.
"""

from __future__ import annotations

from ._batch import Batch, Step
from ._coding import REPLY_BYTES_FLOOR, reply_cap
from ._compact import CompactResults
from ._events import (
    CONNECT,
    CUT,
    PROXY,
    SENT,
    TLS,
    Failure,
    Reply,
    RequestFinished,
    RequestStarting,
    Subscriber,
)
from ._exchange import Exchange
from ._operations import SEND, STATUS, Operation
from ._plan import (
    LINE_OVERHEAD,
    MAX_REQUEST_BYTES,
    Request,
    effective_ids,
    plan,
    room,
    target_head,
)
from ._policy import RateLimit, RetryPolicy
from ._results import SendFailure, StatusFailure
from ._rules import Verdict, judge

__all__ = [
    "CONNECT",
    "CUT",
    "LINE_OVERHEAD",
    "MAX_REQUEST_BYTES",
    "PROXY",
    "REPLY_BYTES_FLOOR",
    "SEND",
    "SENT",
    "STATUS",
    "TLS",
    "Batch",
    "CompactResults",
    "Exchange",
    "Failure",
    "Operation",
    "RateLimit",
    "Reply",
    "Request",
    "RequestFinished",
    "RequestStarting",
    "RetryPolicy",
    "SendFailure",
    "StatusFailure",
    "Step",
    "Subscriber",
    "Verdict",
    "effective_ids",
    "judge",
    "plan",
    "reply_cap",
    "room",
    "target_head",
]
