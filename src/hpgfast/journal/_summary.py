"""What a send run reports: its summary, and the hooks a caller may give it.

Strategy: the objects a caller of ``Journal.send`` holds, apart from the loop that
fills them (``_sender``), so that the command line (``hpgfast send``, with or
without a journal) counts with the very same rules: a result's state is the
journal's (``result_state``), and ``accepted_earlier`` is taken from the journal's
own write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Any, Callable, Optional, Protocol

from .._records import Message, SendResult
from .._wire import Code
from ..exceptions import ConnectError, HPGError
from ._schema import State, result_state

__all__ = ["Progress", "ResultsWriter", "SendSummary"]

_code: Callable[[Any], str] = itemgetter(0)
_OK: str = Code.OK


#: ``progress(n, note)``: ``n`` more messages done (handed to the client and
#: answered), ``note`` a short text of the counts so far.
Progress = Callable[[int, str], None]


class ResultsWriter(Protocol):
    """What ``send(results_file=...)`` writes each outcome to as soon as it is known.

    The command line's ``--results`` file is one; it is also a ``Subscriber`` of
    the client, and hears of each request as it ends. ``arm`` gets a chunk's lines
    and messages before it is handed to the client; ``settle`` the chunk's results
    (returned, or an exception's ``.results``, or None); ``release`` is called once
    the journal recorded them; ``invalid`` names a message never sent.
    """

    def arm(self, lines: Sequence[int], messages: Sequence[Message]) -> None: ...

    def settle(self, results: Optional[Sequence[Optional[SendResult]]]) -> None: ...

    def release(self) -> None: ...

    def invalid(self, line: int, message: Message, reason: str) -> None: ...


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
