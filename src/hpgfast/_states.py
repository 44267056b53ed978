"""The states a message's send comes to, and a send run's counts of them.

Strategy: one rule for what a SEND result means (``result_state``), applied by the
journal (``hpgfast.journal``), the ``--results`` file and the run's summary, so the
three never disagree; and the counts of a run (``SendSummary``), kept by
``Journal.send`` and by ``hpgfast send`` without a journal alike. They live apart
from the journal package so that a send without a journal does not import it (and
SQLite, and its dozen modules): the journal re-exports every name
(``hpgfast.journal.State``, ``SendSummary``...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Any, Callable, Optional

from ._records import SendResult
from ._wire import Code
from .exceptions import ConnectError, HPGError, RequestRejected

__all__ = ["STATES", "SendSummary", "State", "refused_whole", "result_state"]

_code: Callable[[Any], str] = itemgetter(0)
_OK: str = Code.OK


class State:
    """The states of a journal row (see ``hpgfast.journal._send`` for the machine)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    NOT_SENT = "not_sent"
    INVALID = "invalid"
    #: Resent after an unknown outcome and answered ``error-id-not-unique`` for the
    #: clientId the journal made for it: the platform accepted it the first time.
    ACCEPTED_EARLIER = "accepted_earlier"

    @staticmethod
    def of(code: str) -> str:
        """The state a SEND result's code puts its message in, by the code alone."""
        if code == Code.OK:
            return State.ACCEPTED
        if code == Code.UNKNOWN:
            return State.UNKNOWN
        if code == Code.NOT_SENT:
            return State.NOT_SENT
        return State.REJECTED


def result_state(result: Optional[SendResult]) -> str:
    """The state a SEND result puts its message in: the one rule the journal, the
    ``--results`` file and the run's summary all apply, so they never disagree.

    ``ok`` -> accepted, ``unknown`` (or no result) -> unknown, ``not-sent`` ->
    not_sent; any other code -> rejected, except that the platform took none of it
    -> not_sent, code kept (sent again once fixed): a result hpgfast made up for a
    request the platform refused as a whole (its ``error`` a ``RequestRejected``),
    or a message's own line with an account stop (``Code.ACCOUNT_STOP``:
    ``error-insufficient-balance``, ``error-account-locked``, ``error-system-blocked``,
    ``error-auth``). ``accepted_earlier`` is the journal's alone (it knows the ids it
    made); here such a result is rejected.
    """
    if result is None:
        return State.UNKNOWN
    code = result[0]
    state = State.of(code)
    if state == State.REJECTED and (code in Code.ACCOUNT_STOP or refused_whole(result)):
        return State.NOT_SENT
    return state


def refused_whole(result: SendResult) -> bool:
    """Whether hpgfast made ``result`` up for a request the platform refused whole."""
    return type(result) is not SendResult and isinstance(
        getattr(result, "error", None), RequestRejected
    )


#: Every state, in the order summaries show them.
STATES = (
    State.PENDING,
    State.IN_FLIGHT,
    State.ACCEPTED,
    State.ACCEPTED_EARLIER,
    State.REJECTED,
    State.UNKNOWN,
    State.NOT_SENT,
    State.INVALID,
)

@dataclass
class SendSummary:
    """What one ``Journal.send()`` (or ``send_async()``) run did.

    The counts are this run's; the journal's ``counts()`` hold every run's.
    """

    #: Results of this run by state (accepted, accepted_earlier, rejected, unknown,
    #: not_sent, invalid).
    states: Counter[str] = field(default_factory=Counter)
    #: Rejections of this run by platform code.
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    #: Messages handed to the client in this run.
    attempted: int = 0
    #: Seconds the run took.
    elapsed: float = 0.0
    #: The exception that stopped the run early (auth, TLS, the platform down, a
    #: claim lost), if any; the messages it did not send stay sendable.
    error: Optional[BaseException] = None
    #: What the journal's recovery did at the start (``in_flight_to_unknown``,
    #: ``unknown_to_pending``).
    recovered: dict[str, int] = field(default_factory=dict)
    #: The first error a result of this run carried (a message left unknown or not
    #: sent by an HTTP 5xx, a redirect, an unreadable reply...), if any.
    failure: Optional[BaseException] = None
    #: The run was stopped by Ctrl-C, SIGTERM or a cancellation: the counts are
    #: what it did until then.
    interrupted: bool = False

    def add(self, lines_or_n: int, results: Sequence[Optional[SendResult]]) -> None:
        """Count one chunk's results."""
        try:
            codes = list(map(_code, results))
        except TypeError:  # a None: no result
            codes = None
        if codes is not None:
            # Accepted results count by their code alone: counted in C, and only the
            # others, in order, go through the rules below (a chunk is mostly "ok").
            accepted = codes.count(_OK)
            if accepted:
                self.states[State.ACCEPTED] += accepted
                if accepted == len(codes):
                    return
                results = list(compress(results, map(_OK.__ne__, codes)))
        for r in results:
            code = r[0] if r is not None else Code.UNKNOWN
            # The journal's rule: an account stop is not_sent there, so here too.
            state = result_state(r)
            self.states[state] += 1
            if state == State.REJECTED:
                self.rejected_by_code[code] += 1
            elif state != State.ACCEPTED and self.failure is None:  # unknown, not sent
                self.failure = getattr(r, "error", None)

    def cut(self, n: int, carried: Optional[Sequence[Optional[SendResult]]]) -> None:
        """Count a batch of ``n`` messages whose ``send()`` was interrupted.

        What the client carried when it has a result for each; else the whole
        batch is unknown.
        """
        self.interrupted = True
        if carried is not None and len(carried) == n:
            self.add(n, carried)
        else:
            self.states[State.UNKNOWN] += n
        self.attempted += n

    def earlier(self, written: Mapping[str, int]) -> None:
        """Take the journal's word on results it recorded ``accepted_earlier``.

        ``add`` counts a result by its code, and ``error-id-not-unique`` is a
        rejection there; the journal, which knows the ids it made and which of them
        were in flight or unknown, records some of those as accepted by an earlier
        send. ``written`` is what its write of the same results did (its counts by
        state): that many move from rejected to accepted earlier.
        """
        k = written.get(State.ACCEPTED_EARLIER, 0)
        if not k:
            return
        self.states[State.ACCEPTED_EARLIER] += k
        self.states[State.REJECTED] -= k
        self.rejected_by_code[Code.ERROR_ID_NOT_UNIQUE] -= k
        if self.rejected_by_code[Code.ERROR_ID_NOT_UNIQUE] <= 0:
            del self.rejected_by_code[Code.ERROR_ID_NOT_UNIQUE]

    @property
    def rate(self) -> float:
        """Messages per second handed to the client and answered."""
        return self.attempted / self.elapsed if self.elapsed > 0 else 0.0


def _platform_down(results: Sequence[SendResult]) -> Optional[HPGError]:
    """The ``ConnectError`` behind a chunk's ``not-sent`` results, if the platform is down."""
    for r in reversed(results):
        error = getattr(r, "error", None)
        if isinstance(error, ConnectError):
            return error
    return None
