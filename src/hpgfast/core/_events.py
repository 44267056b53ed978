"""What a transport tells the core, and what the core tells subscribers.

A transport reports each attempt of a request as one of two events: a ``Reply``
(an HTTP status and a body as sent, read whole and within the request's cap,
``Request.max_reply``) or a
``Failure`` of a named kind. The kinds are the only facts about an exchange that
decide a message's outcome:

``CONNECT``  the connection could not be opened: no byte of the request left;
``TLS``      the TLS handshake failed verification: nothing left, a setting is wrong;
``PROXY``    the proxy refused to carry the request (407, a refused ``CONNECT``):
             nothing reached the platform, a setting is wrong;
``SENT``     the request may have left and no reply came (a timeout, a reset, a
             refused reply over the size cap): the platform may have processed it;
``CUT``      a reply began and broke off: the platform processed the request.

Subscribers (``Subscriber``) hear of every request twice: ``request_starting``
before its first byte leaves, in the thread or task that sends it, and
``request_finished`` after its messages have their results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

from ..exceptions import HPGError

__all__ = [
    "CONNECT",
    "CUT",
    "PROXY",
    "SENT",
    "TLS",
    "Failure",
    "Reply",
    "RequestFinished",
    "RequestStarting",
    "Subscriber",
]

CONNECT = "connect"
TLS = "tls"
PROXY = "proxy"
SENT = "sent"
CUT = "cut"


class Reply(NamedTuple):
    """An HTTP reply read to its end: status, body, and the headers the rules read.

    Each header is its value as sent (latin-1, stripped), or ``None`` when absent:
    ``retry_after`` (only kept when the status is not 200), ``content_type`` (its
    charset decodes text fields; it names what came back when a reply is not HPG),
    ``content_encoding`` (a compressed body: ``Batch.report`` decodes it, within the
    cap, before any rule reads the body, and passes the rules a ``Reply`` whose
    ``content_encoding`` is ``None``) and ``location`` (a redirect's target, never
    followed).
    """

    status: int
    body: bytes
    retry_after: Optional[str] = None
    content_type: Optional[str] = None
    content_encoding: Optional[str] = None
    location: Optional[str] = None


class Failure(NamedTuple):
    """An attempt that got no whole reply: its kind and the (redacted) error."""

    kind: str
    error: HPGError


class RequestStarting(NamedTuple):
    """A request about to leave: its operation, its items' indexes and ids.

    ``start``/``end`` bound the indexes of its messages (or provider ids) in the
    caller's batch; ``ids`` are the clientIds the platform will answer with (SEND)
    or the provider ids asked for (STATUS), in order; ``url`` is the redacted URL.
    """

    op: str
    start: int
    end: int
    ids: Sequence[Optional[str]]
    url: str


class RequestFinished(NamedTuple):
    """A request that ended: its messages' results, bytes and time.

    ``results`` are the results of messages ``start`` to ``end`` (one each);
    ``attempts`` how many times it was sent; ``sent_bytes`` and ``received_bytes``
    those of its last attempt (0 when nothing was exchanged); ``seconds`` the time
    from its first attempt to its last reply or failure.
    """

    op: str
    start: int
    end: int
    results: Sequence[Any]
    attempts: int
    sent_bytes: int
    received_bytes: int
    seconds: float


class Subscriber:
    """Hears of every request a client sends. Subclass it and override what you need.

    Both methods run where the request is sent, so they should be quick: a
    ``Client``'s sending thread; an ``AsyncClient``'s event loop, in the calling
    task or, for a request sent straight from a connection's callback, in that
    callback under a copy of the caller's context (``contextvars`` hold,
    ``asyncio.current_task()`` may be ``None``). If ``request_starting`` raises,
    that request is not sent (its messages are ``not-sent``) and the batch stops
    with that error: a subscriber can thus make sure something is durable before a
    request can leave. An error in ``request_finished`` stops the batch too, after
    that request's results are kept.
    """

    #: True for a subscriber whose ``request_starting`` blocks on I/O (a journal's
    #: commit, an fsync): an ``AsyncClient`` then runs it in a worker thread of the
    #: loop's default executor and awaits it, so the event loop never waits on it;
    #: the request still leaves only after it returned. A ``Client`` calls it in the
    #: sending thread either way. ``request_finished`` always runs in the loop: keep
    #: it quick (and off any lock the blocking part holds).
    blocking: bool = False

    def request_starting(self, event: RequestStarting) -> None:
        """Called before the first byte of a request leaves."""

    def request_retrying(self, event: RequestStarting) -> None:
        """Called before each further attempt of a request (a SEND the platform
        answered 429, a STATUS after a failure), before its first byte. If it
        raises, that attempt is not made (the request's messages are ``not-sent``:
        a SEND is repeated only when its last attempt certainly did not reach the
        platform) and the batch stops with that error. It runs where the request
        is sent, an event loop included: it must not block."""

    def request_finished(self, event: RequestFinished) -> None:
        """Called after a request ended, with each of its messages' results."""
