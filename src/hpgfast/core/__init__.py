"""The HPG exchange without I/O: what every transport of hpgfast shares.

Strategy (h11's lesson): what a reply means for each message, what is repeated
and when, and what stops a batch are decided here, once, by code that opens no
socket, imports no HTTP library, reads no clock and never sleeps. A transport
(``hpgfast.Client`` on urllib3) only moves bytes:

1. ``Exchange.batch(op, items, params)`` checks every item and cuts the batch into
   ``Request`` objects (``_batch``). ``op`` is ``SEND`` or ``STATUS``, an
   ``Operation`` that carries all the two differ in (``_operations``), chosen once
   there; ``plan()`` gives the same cut without an exchange (a dry run's);
2. for each request, ``Batch.begin(request, now)`` gives the target to send (and
   tells the subscribers, ``_events``), the transport sends it and reports a
   ``Reply`` or a ``Failure`` to ``Batch.report(request, event, now)``, which
   answers with a ``Step``: settled, or "again at ``t``" under the ``RetryPolicy``
   (``_policy``);
3. ``Batch.finish()`` returns one result per item, or raises the error that
   stopped the batch with ``.results`` attached.

The outcome table itself is ``_rules``: one function per kind of event, each
returning a ``Verdict`` for the request's items.
"""

from __future__ import annotations

from ._batch import (
    LINE_OVERHEAD,
    MAX_REQUEST_BYTES,
    Batch,
    Exchange,
    Request,
    Step,
    effective_ids,
    plan,
    room,
    target_head,
)
from ._events import (
    CONNECT,
    CUT,
    SENT,
    TLS,
    Failure,
    Reply,
    RequestFinished,
    RequestStarting,
    Subscriber,
)
from ._operations import SEND, STATUS, Operation
from ._policy import RateLimit, RetryPolicy
from ._results import SendFailure, StatusFailure
from ._rules import Verdict, judge

__all__ = [
    "CONNECT",
    "CUT",
    "LINE_OVERHEAD",
    "MAX_REQUEST_BYTES",
    "SEND",
    "SENT",
    "STATUS",
    "TLS",
    "Batch",
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
    "room",
    "target_head",
]
