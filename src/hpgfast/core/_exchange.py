"""The HPG exchange of one connector: what a client's settings make, once.

The exchange holds the targets' prefixes (with the password, in ``Secret``), their
redacted view, the retry policy, the rate limit and the codes that stop a batch,
and plans a ``Batch`` (``_batch``) per ``send()``/``status()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import _redact
from .._records import Params
from .._wire import Code
from ..codec import encode_params
from ._batch import Batch
from ._events import Subscriber
from ._operations import OPERATIONS, SEND, Operation, operation
from ._plan import room, target_head
from ._policy import RateLimit, RetryPolicy

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["Exchange"]


class Exchange:
    """The HPG exchange of one connector, with no I/O: everything but moving bytes.

    A transport makes one per client, from the client's ``Settings`` (the one value
    every setting is read from: the exchange keeps no copy of any), and calls
    ``batch()`` per ``send()`` or ``status()``. It holds what the settings make:
    the targets' prefixes (with the password, in ``Secret``), their redacted view,
    the retry policy, the rate limit and the codes that stop a batch.

    ``rate_lock``: a lock (a context manager) that makes each booking of the rate
    limit atomic, for a transport whose requests are booked from several threads.
    """

    # Slots: an attribute that is not here (a setting: ``exchange.max_batch = 1``)
    # cannot be set and then silently ignored; settings are read from ``settings``.
    __slots__ = ("_heads", "_shown", "account_stop", "policy", "rate_limit", "redactor", "settings")

    def __init__(self, settings: Settings, *, rate_lock: Any = None) -> None:
        self.settings = settings
        password = settings.password
        password_param = settings.password_param
        login_param = settings.login_param
        redactors = [_redact.Redactor(password, password_param=password_param)] if password else []
        route = settings.proxy_route
        if route is not None and route.password is not None:
            # The proxy's password, masked like the platform's wherever a text is
            # scrubbed (no parameter name of its own: it never is in a query).
            redactors.append(_redact.Redactor(route.password.value, password_param=""))
        self.redactor: Optional[Callable[[str], str]] = (
            None if not redactors else redactors[0] if len(redactors) == 1
            else _redact.Redactors(redactors)
        )
        login_q = encode_params([(login_param, settings.login)]).decode("ascii")
        shown_q = (
            login_q + "&" + encode_params([(password_param, "")]).decode("ascii") + _redact.MASK
        )
        extra = settings.extra_params
        extra_q = encode_params(extra).decode("ascii") if extra else ""
        tail = "&" + extra_q if extra_q else ""
        credentials = [(login_param, settings.login), (password_param, password)]
        endpoint = settings.endpoint
        path = endpoint.path
        # The target prefixes hold the password: kept in Secrets so that no repr
        # (nor one built from vars()) shows them.
        self._heads = {
            op: _redact.Secret(target_head(op, path, credentials, extra))
            for op in OPERATIONS.values()
        }
        # What logs and errors show instead: "...&password=***&..." (no message data),
        # the base URL masked too (``Endpoint.shown``: its path may hold the password).
        self._shown = {
            op: f"{endpoint.shown}{op.name}?{shown_q}{tail}" for op in self._heads
        }
        max_request_bytes = settings.max_request_bytes
        if room(max_request_bytes, len(self._heads[SEND].value)) < 1:
            raise ValueError(
                f"max_request_bytes={max_request_bytes} leaves no room for messages after "
                "the URL and credentials"
            )
        self.policy = RetryPolicy(settings.retries, settings.backoff, settings.backoff_max)
        #: A wrong password is never a per-request accident: always a stop.
        self.account_stop = frozenset(settings.account_stop_codes) | {Code.ERROR_AUTH}
        self.rate_limit = (
            None if settings.max_rate is None else RateLimit(settings.max_rate, rate_lock)
        )

    def is_final(self, result: Any) -> bool:
        """True when a STATUS result's status is one of ``final_statuses`` (any case)."""
        status = result[2]
        return status is not None and status.lower() in self.settings.final_statuses

    def scrub(self, text: str) -> str:
        """``text`` with the password masked in every form it may take."""
        return text if self.redactor is None else self.redactor(text)

    def __repr__(self) -> str:
        return "<hpgfast.core.Exchange>"

    def batch(
        self,
        op: Union[Operation, str],
        items: Sequence[Any],
        params: Optional[Params],
        sink: Optional[list[Any]] = None,
        subscribers: Sequence[Subscriber] = (),
        *,
        compact: bool = False,
    ) -> Batch:
        """Plan a ``SEND`` or ``STATUS`` batch: validated and cut into requests.

        ``op``: the ``Operation``, or its wire name (``"send"``, ``"status"``),
        chosen here once for the whole batch. ``sink``: a list ``finish()`` fills
        with the results, returned or raised. ``subscribers``: this batch's own,
        heard after the settings' ones. ``compact``: ``finish()`` returns a
        ``CompactResults`` (SEND only). Raises ``MessageError`` (naming the
        item) before anything is sent.
        """
        if sink is not None and not isinstance(sink, list):
            raise TypeError(f"results must be a list, got {type(sink).__name__}")
        op = operation(op)
        if compact and op is not SEND:
            raise ValueError("compact results are for SEND only")
        head = self._heads[op].value
        shown = self._shown[op]
        if params:
            extra = encode_params(params).decode("ascii")
            head += extra + "&"
            shown += "&" + extra
        shown += "&..."
        max_bytes = room(self.settings.max_request_bytes, len(head))
        if max_bytes < 1:
            raise ValueError(
                f"max_request_bytes={self.settings.max_request_bytes} leaves no room for messages "
                "after the URL, credentials and parameters"
            )
        items, transliterated, holes = op.prepare(items, self.settings.transliterate)
        batch = Batch(self, op, items, head, shown, max_bytes, holes, subscribers, compact)
        batch.transliterated = transliterated
        batch.sink = sink
        return batch
