"""The hook that journals each SEND request before its first byte (``Journal.send``).

``JournalHook`` is a ``blocking`` subscriber: a ``Client`` runs it in the thread
that sends the request, an ``AsyncClient`` in a worker thread it awaits. Before a
request's first byte it marks that request's messages, and a few requests' worth
ahead, ``in_flight`` together with the results of the requests that ended since, in
one commit, and checks that the sender's claim (its lease) outlives the request.
``_sender`` drives the runs around it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from .._records import SendResult
from .._wire import SEND, Code
from ..core import RequestFinished, RequestStarting, Subscriber
from ._errors import JournalClaimLost
from ._schema import State

__all__ = ["AHEAD_PER_THREAD", "JournalHook", "request_time"]

log = logging.getLogger("hpgfast.journal")

#: Requests marked ``in_flight`` ahead of the one that triggers a mark, per request
#: the client may have on the wire: one commit covers about this many requests (the
#: journal's cost is a commit, an fsync, per mark). The crash window follows from it.
AHEAD_PER_THREAD = 3


def request_time(client: Any) -> float:
    """Seconds one of ``client``'s requests may take from its first byte, at most."""
    deadline = float(getattr(client, "request_deadline", 0.0) or 0.0)
    return deadline + float(getattr(client, "connect_timeout", 0.0) or 0.0)


#: An ended request: its first and past-last index in the batch, and its results.
_Finished = tuple[int, int, Sequence[Optional[SendResult]]]


def _runs(written: bytearray, end: int) -> Iterator[tuple[int, int]]:
    """The spans ``[a, b)`` of ``written[:end]`` not yet written (zero bytes)."""
    i = 0
    while i < end:
        a = written.find(0, i, end)
        if a < 0:
            return
        b = written.find(1, a, end)
        b = end if b < 0 else b
        yield a, b
        i = b


class JournalHook(Subscriber):
    """Journals each SEND request as it goes, from the client's before-first-byte hook.

    The client calls ``request_starting`` before a request's first byte (a
    ``Client`` in the thread that sends it; an ``AsyncClient`` in a worker thread,
    awaited: the hook is ``blocking``). When the request's messages are not marked
    yet, the hook marks them, and the next ``AHEAD_PER_THREAD x concurrency``
    requests' worth of messages, ``in_flight``, together with the results of the
    requests that ended since the last commit, in one transaction (``advance``),
    committed before it returns: the mark always precedes the bytes, and one commit
    serves several requests. It then checks the sender's lease: with less than
    ``request_deadline + connect_timeout`` of it left, the request is refused
    (``JournalClaimLost``), not sent, and its messages stay sendable.

    The window W: at any moment the rows ``in_flight`` on disk lie between the
    oldest request on the wire at the last commit and the end of the marked span:
    at most ``concurrency - 1`` requests started before it, the triggering request
    and ``AHEAD_PER_THREAD x concurrency`` requests' worth ahead (measured in the
    triggering request's size): fewer than ``W = 4 x concurrency`` requests. After
    a SIGKILL those become ``unknown``; the ones never sent are at most that span.
    """

    blocking = True

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.concurrency = 1
        #: Seconds a request may take from its first byte: its lease must last that.
        self.margin = 0.0
        # ``_lock`` is held through a commit; ``_done`` only to hand over results
        # (``request_finished`` runs in an event loop: it must never wait on a commit).
        self._lock = threading.Lock()
        self._done = threading.Lock()
        self._lines: Sequence[int] = ()
        self._marked = 0
        # Ended requests not written yet: (start, end, results), indexes of the batch.
        self._finished: list[_Finished] = []
        # Which of the batch's messages have their results written (1), and what
        # those writes did (counts by state): ``flush`` writes only the others.
        self._written = bytearray()
        self._counts: Counter[str] = Counter()

    @property
    def window(self) -> int:
        """W: the most requests whose messages can be ``in_flight`` on disk at once."""
        return 4 * self.concurrency

    def arm(self, lines: Sequence[int], client: Any) -> None:
        """The journal lines of the batch about to be handed to ``client.send()``."""
        self.concurrency = max(1, int(getattr(client, "concurrency", 1) or 1))
        self.margin = request_time(client)
        with self._lock, self._done:
            self._lines = lines
            self._marked = 0
            self._finished = []
            self._written = bytearray(len(lines))
            self._counts = Counter()

    def _pairs(self, finished: list[_Finished]) -> list[tuple[Sequence[int], Sequence[Any]]]:
        """``finished`` as ``advance`` takes it: (lines, results) pairs."""
        return [(self._lines[a:b], results) for a, b, results in finished]

    def _wrote(self, finished: list[_Finished], counts: Mapping[str, int]) -> None:
        """Note what a committed write covered (under ``_lock``)."""
        for a, b, _ in finished:
            self._written[a:b] = b"\x01" * (b - a)
        self._counts.update(counts)

    def _take_finished(self) -> list[_Finished]:
        with self._done:
            finished, self._finished = self._finished, []
        return finished

    def _give_back(self, finished: list[_Finished]) -> None:
        with self._done:
            self._finished = finished + self._finished

    def request_starting(self, event: RequestStarting) -> None:
        if event.op != SEND:
            return
        journal = self.journal
        with self._lock:
            # Held through the commit: a request whose messages are marked by
            # another thread's commit waits for that commit to end.
            if event.end > self._marked:
                size = event.end - event.start
                upto = min(
                    len(self._lines),
                    max(event.end, event.end + AHEAD_PER_THREAD * self.concurrency * size),
                )
                finished = self._take_finished()
                try:
                    counts = journal.advance(
                        self._lines[self._marked : upto], self._pairs(finished)
                    )
                except BaseException:
                    self._give_back(finished)
                    raise
                self._wrote(finished, counts)
                self._marked = upto
        self._check_lease()

    def request_retrying(self, event: RequestStarting) -> None:
        # Each further attempt (after a 429's Retry-After, say) is held to the lease
        # as the first was: a sender whose claim ran out while it waited sends
        # nothing more. (No commit here: it runs on an event loop too.)
        if event.op == SEND:
            self._check_lease()

    def _check_lease(self) -> None:
        """Refuse an attempt with less than ``margin`` of the sender's claim left."""
        journal = self.journal
        left = journal.lease_deadline() - time.monotonic()
        if left < self.margin:
            raise JournalClaimLost(
                journal.path,
                why=f"this sender's claim on its messages ends in "
                f"{max(left, 0.0):.1f} s, less than the {self.margin:.1f} s a request may "
                "take (request_deadline + connect_timeout): the request is not sent, and "
                "its messages stay sendable"
            )

    def request_finished(self, event: RequestFinished) -> None:
        if event.op != SEND:
            return
        # Written with the next mark (or when send() returns): one commit.
        with self._done:
            self._finished.append((event.start, event.end, event.results))

    def flush(self, results: Optional[Sequence[Optional[SendResult]]]) -> dict[str, int]:
        """After ``send()`` returned or raised: write every result the client knew.

        ``results`` (the batch's results, or an exception's ``.results``) settle
        every row still ``in_flight``: accepted, rejected, ``not_sent`` for the
        rows marked ahead that never left, ``unknown`` for requests cut. Without
        them, the ended requests are written and the rest is ``unknown``.
        Returns what the write of ``results`` did (counts by state), or ``{}``.
        """
        with self._lock:  # after any commit still running (a cancelled task's)
            finished = self._take_finished()
            lines, marked = self._lines, self._marked
            if results is not None and len(results) == len(lines):
                # The batch's results include every finished request's: one write of
                # those not written yet (a result written twice is work, and on a
                # shared journal a refused rewrite of a final row). The ended
                # requests not written yet are among them.
                unwritten = [
                    (a, b, results[a:b]) for a, b in _runs(self._written, marked)
                ]
                counts = self.journal.advance((), self._pairs(unwritten)) if unwritten else {}
                self._counts.update(counts)
                return dict(self._counts)
            self.journal.advance((), self._pairs(finished))
            self.journal.settle_in_flight(
                lines[:marked], State.UNKNOWN, code=Code.UNKNOWN,
                reason="interrupted while in flight",
            )
        return {}
