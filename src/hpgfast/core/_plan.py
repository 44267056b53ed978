"""The plan of a batch: where its items are cut into requests.

A batch is cut into ``Request`` spans and every item checked before the first
request leaves (``cut``); ``plan()`` is that same cut without an exchange (what
``hpgfast send --dry-run`` counts), from the same ``target_head()`` and ``room()``
the batch uses. ``_batch`` then drives the requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from .._records import Params
from ..codec import encode_params, sent_ids
from ._ids import request_prefix
from ._operations import Encode, Operation, operation

if TYPE_CHECKING:
    from ._events import RequestStarting
    from ._rules import RequestFacts

__all__ = [
    "LINE_OVERHEAD",
    "MAX_REQUEST_BYTES",
    "NO_IDS",
    "PLAN_CACHE_BYTES",
    "Request",
    "cut",
    "effective_ids",
    "plan",
    "room",
    "target_head",
]

#: ``GET `` and `` HTTP/1.1`` around the target on the request line.
LINE_OVERHEAD = len("GET ") + len(" HTTP/1.1")
#: The longest request line sent, by default (``Client(max_request_bytes=...)``):
#: 8 KiB, what common servers and proxies take.
MAX_REQUEST_BYTES = 8192
#: Encoded queries of a plan kept from the validation pass instead of encoded again.
PLAN_CACHE_BYTES = 8 * 1024 * 1024

#: The ids of a request not begun, or settled: one shared list, never changed in
#: place (a request's ids are only ever replaced).
NO_IDS: list[Any] = []


def effective_ids(
    messages: Sequence[Any], start: int, end: int, prefix: Optional[str] = None
) -> list[str]:
    """The clientId the platform answers with for each message of a request.

    A message's own ``client_id``; else the id hpgfast made (``prefix`` and the
    message's index in the request); else, when no ids are made, that index.
    (``codec.sent_ids``: one pass in the compiled core.)
    """
    return sent_ids(messages, start, end, prefix)


def target_head(
    op: Union[Operation, str], path: str, credentials: Params, params: Optional[Params] = None
) -> str:
    """A request's target up to its items: ``<path><op>?<credentials>&<params>&``.

    ``path`` is the connector's, ending in ``/``; ``credentials`` the login and
    password pairs (their names are the connector's). The head holds the password:
    keep it out of anything shown.
    """
    query = encode_params(credentials).decode("ascii")
    extra = encode_params(params).decode("ascii") if params else ""
    if extra:
        query += "&" + extra
    return f"{path}{operation(op).name}?{query}&"


def room(max_request_bytes: int, head_bytes: int) -> int:
    """The bytes a request's items may take: ``max_request_bytes`` less ``GET ``, the
    target's head (``target_head``, ``head_bytes`` long) and `` HTTP/1.1``. Below 1,
    no item fits."""
    return max_request_bytes - LINE_OVERHEAD - head_bytes


def plan(
    op: Union[Operation, str],
    items: Sequence[Any],
    *,
    head_bytes: int,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    max_batch: Optional[int] = None,
    default_subject: Optional[str] = None,
    quote_brackets: bool = False,
    client_ids: bool = True,
) -> list[tuple[int, int]]:
    """The requests ``items`` are cut into, as ``(start, end)`` bounds per request.

    The very cut ``Exchange.batch`` makes with the same settings (the defaults are
    ``Client``'s), without an exchange: no URL or password is needed, only the
    length of the target's head (``len(target_head(...))``; per-call parameters
    add theirs). ``items`` are taken as they go out: transliterated already, if
    they are to be, and (STATUS) without ``None``. Every item is checked.

    Raises:
        MessageError: an item that cannot be sent, naming its index.
        ValueError: ``max_request_bytes`` leaves no room for an item after the head.
    """
    op = operation(op)
    max_bytes = room(max_request_bytes, head_bytes)
    if max_bytes < 1:
        raise ValueError(
            f"max_request_bytes={max_request_bytes} leaves no room for messages after "
            f"a head of {head_bytes} bytes"
        )
    encode = op.encoder(items, max_bytes, default_subject, quote_brackets)
    requests = cut(encode, len(items), max_batch, op.makes_ids and client_ids, 0)
    return [(request.start, request.end) for request in requests]



class Request:
    """One HTTP request of a batch: a span of items and, once begun, its target."""

    __slots__ = (
        "after_429",
        "attempt",
        "end",
        "facts",
        "held",
        "ids",
        "max_reply",
        "not_before",
        "prefix",
        "query",
        "sent_bytes",
        "start",
        "started",
    )

    def __init__(
        self, start: int, end: int, query: Optional[bytes], prefix: Optional[str] = None
    ) -> None:
        self.start = start
        self.end = end
        self.prefix = prefix  # of the clientIds hpgfast made for it (SEND), or None
        self.query = query  # kept from the plan, or None: encoded again when begun
        self.attempt = 0
        self.ids: list[Any] = NO_IDS
        self.started = 0.0
        self.sent_bytes = 0
        #: The longest reply read, on the wire and decoded (set when it begins):
        #: ``max_reply_bytes``, or by default a cap that grows with the request.
        self.max_reply = 0
        #: When the request may start (the rate limit, a batch-wide Retry-After).
        self.not_before = 0.0
        #: An attempt was answered 429: a later error-id-not-unique means "taken".
        self.after_429 = False
        #: What the rules need to know of it, made when first asked (``Batch._facts``).
        self.facts: Optional[RequestFacts] = None
        #: Its ``RequestStarting``, while the blocking subscribers have yet to hear of
        #: it (``Batch.begin_line(hold=True)``, then ``Batch.start_held``).
        self.held: Optional[RequestStarting] = None

    def __repr__(self) -> str:
        return f"<hpgfast Request items {self.start}..{self.end - 1} attempt {self.attempt}>"



def cut(
    encode: Encode, total: int, max_batch: Optional[int], make_ids: bool, keep_bytes: int
) -> list[Request]:
    """Cut ``total`` items into requests, checking every one (raises on bad input).

    The encoded queries of the first requests are kept, up to ``keep_bytes``.
    """
    requests: list[Request] = []
    kept = 0
    start = 0
    prefix = None
    while start < total:
        if make_ids:
            prefix = request_prefix()
        query, end = encode(start, max_batch, prefix)
        if kept + len(query) <= keep_bytes:
            kept += len(query)
            requests.append(Request(start, end, query, prefix))
        else:
            requests.append(Request(start, end, None, prefix))
        start = end
    return requests
