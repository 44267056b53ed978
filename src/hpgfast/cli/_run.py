"""The engines behind ``hpgfast send`` and ``hpgfast status --follow``.

Strategy: the command line only parses settings and prints; the work is here, as
functions over a ``Client`` (and a ``Journal``), so that ``hpgfast demo`` and the
tests drive exactly the code users run. The journal's write order (see
``hpgfast.journal._send``) is what makes a crash at any point safe: a chunk is marked
``in_flight`` and committed before ``client.send()`` is called, its results are
written after it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Optional

from .._records import Message, SendResult, StatusResult
from .._wire import SEND, Code
from ..core import RequestFinished, RequestStarting, Subscriber
from ..exceptions import ConnectError, HPGError, MessageError
from ..journal import FINAL_STATUS_CODES, Journal, JournalStorageError, State
from ..journal._schema import result_state
from ._results import ResultsFile

__all__ = [
    "FollowOutcome",
    "JournalHook",
    "SendOutcome", "follow", "load_journal",
    "send_journal",
    "send_plain",
]

log = logging.getLogger(__name__)

#: Messages per journal chunk: one ``in_flight`` and one result transaction each.
DEFAULT_CHUNK = 5_000

Tick = Callable[[int, str], None]


def _no_tick(n: int, note: str) -> None:
    pass


@dataclass
class SendOutcome:
    """What one ``send`` run did: counts of this run's results, time, and the stop cause."""

    #: Results of this run by state (accepted, rejected, unknown, not_sent, invalid).
    states: Counter[str] = field(default_factory=Counter)
    #: Rejections of this run by platform code.
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    #: Messages handed to the client in this run.
    attempted: int = 0
    elapsed: float = 0.0
    #: The exception that stopped the run early (auth, TLS, platform down...), if any.
    error: Optional[BaseException] = None
    #: What the journal's recovery did at the start (``in_flight_to_unknown``...).
    recovered: dict[str, int] = field(default_factory=dict)
    #: The first error a result of this run carried (a message left unknown or not
    #: sent by an HTTP 5xx, a redirect, an unreadable reply...), if any: the exit
    #: code is the same as for that error with a single message (``send --to``).
    failure: Optional[BaseException] = None
    #: The run was stopped by Ctrl-C or SIGTERM: the counts are what it did until then.
    interrupted: bool = False

    def add(self, lines_or_n: int, results: Sequence[SendResult]) -> None:
        """Count one chunk's results."""
        for r in results:
            code = r[0] if r is not None else Code.UNKNOWN
            # The journal's rule: an account stop is not_sent there, so here too.
            state = result_state(r)
            self.states[state] += 1
            if state == State.REJECTED:
                self.rejected_by_code[code] += 1
            elif state != State.ACCEPTED and self.failure is None:  # unknown, not sent
                self.failure = getattr(r, "error", None)

    def cut(self, n: int, carried: Optional[Sequence[SendResult]]) -> None:
        """Count a batch of ``n`` messages whose ``send()`` was interrupted.

        What the client carried (accepted, rejected, not sent, unknown) when it has
        a result for each; else the whole batch is unknown.
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
        rejection there; the journal, which knows the ids it made and which of
        them were in flight or unknown, records some of those as accepted by an
        earlier send. ``written`` is what its write of the same results did (its
        counts by state): that many move from rejected to accepted earlier.
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


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` items."""
    it = iter(items)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield block


def load_journal(
    journal: Journal,
    rows: Iterable[tuple[int, Message]],
    tick: Tick = _no_tick,
    *,
    transliterate: bool = False,
    bind: Optional[Callable[[], Mapping[str, str]]] = None,
) -> int:
    """Put every input message in the journal (resuming a cut load); returns the total.

    Each message's segments are recorded with it (``transliterate``: counted as
    ``Client(transliterate=True)`` will send it). ``bind``, when given, is called
    once the rows are read and its fingerprint bound (``Journal.bind``) before the
    load is marked finished: the input's hash is computed while it is loaded, in one
    pass.
    """
    if journal.loaded is not None:
        return journal.loaded
    total = journal.last_line
    start = total

    def counted() -> Iterator[tuple[int, Message]]:
        nonlocal total
        for line, message in rows:
            total = line
            if line > start and line % 10_000 == 0:
                tick(10_000, "")
            yield line, message

    journal.load(counted(), transliterate=transliterate)
    if bind is not None:
        journal.bind(bind())
    journal.finish_load(total)
    return total


#: Requests marked ``in_flight`` ahead of the one that triggers a mark, per sending
#: thread: one commit covers about this many requests (the journal's cost is an
#: fsync per commit). The SIGKILL window follows from it (see ``JournalHook``).
AHEAD_PER_THREAD = 3


class JournalHook(Subscriber):
    """Journals each SEND request as it goes, from the core's before-first-byte hook.

    Pass it to the ``Client`` (``subscribers=[hook]``) and to ``send_journal``. The
    client calls ``request_starting`` in the thread that sends a request, before
    its first byte. When the request's messages are not marked yet, the hook marks
    them, and the next ``AHEAD_PER_THREAD x concurrency`` requests' worth of
    messages, ``in_flight``, together with the results of the requests that ended
    since the last commit, in one transaction, committed (``synchronous=FULL``: on
    disk) before it returns: the mark always precedes the bytes, and one fsync
    serves several requests.

    The window W: at any moment the rows ``in_flight`` on disk lie between the
    oldest request on the wire at the last commit and the end of the marked span:
    at most ``concurrency - 1`` requests started before it, the triggering request
    and ``AHEAD_PER_THREAD x concurrency`` requests' worth ahead (measured in the
    triggering request's size): fewer than ``W = 4 x concurrency`` requests. After
    a SIGKILL those become ``unknown``; the ones never sent are at most that span.
    """

    def __init__(self, journal: Journal, *, concurrency: int = 1) -> None:
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._lines: Sequence[int] = ()
        self._marked = 0
        self._open: dict[int, int] = {}
        self._finished: list[tuple[Sequence[int], Sequence[SendResult]]] = []

    @property
    def window(self) -> int:
        """W: the most requests whose messages can be ``in_flight`` on disk at once."""
        return 4 * self.concurrency

    def arm(self, lines: Sequence[int]) -> None:
        """The journal lines of the batch about to be handed to ``client.send()``."""
        with self._lock:
            self._lines = lines
            self._marked = 0
            self._open = {}
            self._finished = []

    def request_starting(self, event: RequestStarting) -> None:
        if event.op != SEND:
            return
        with self._lock:
            # Held through the commit: a request whose messages are marked by
            # another thread's commit waits for that commit to end.
            if event.end > self._marked:
                size = event.end - event.start
                upto = min(
                    len(self._lines),
                    max(event.end, event.end + AHEAD_PER_THREAD * self.concurrency * size),
                )
                finished, self._finished = self._finished, []
                try:
                    self.journal.advance(self._lines[self._marked : upto], finished)
                except BaseException:
                    self._finished = finished + self._finished
                    raise
                self._marked = upto
            self._open[event.start] = event.end

    def request_finished(self, event: RequestFinished) -> None:
        if event.op != SEND:
            return
        with self._lock:
            # Written with the next mark (or when send() returns): one commit.
            self._finished.append((self._lines[event.start : event.end], event.results))
            self._open.pop(event.start, None)

    def flush(self, results: Optional[Sequence[SendResult]]) -> dict[str, int]:
        """After ``send()`` returned or raised: write every result the client knew.

        ``results`` (the batch's results, or an exception's ``.results``) settle
        every row still ``in_flight``: accepted, rejected, ``not_sent`` for the
        rows marked ahead that never left, ``unknown`` for requests cut. Without
        them, the ended requests are written and the rest is ``unknown``.
        Returns what the write of ``results`` did (counts by state; the marked
        rows', all of them), or ``{}`` without them.
        """
        with self._lock:
            finished, self._finished = self._finished, []
            lines, marked = self._lines, self._marked
        if results is not None and len(results) == len(lines):
            # The batch's results include every finished request's: one write.
            return self.journal.advance((), [(lines[:marked], results[:marked])])
        self.journal.advance((), finished)
        self.journal.settle_in_flight(
            lines[:marked], State.UNKNOWN, code=Code.UNKNOWN, reason="interrupted while in flight"
        )
        return {}


def _settle(
    journal: Journal,
    hook: Optional[JournalHook],
    lines: Sequence[int],
    carried: Optional[Sequence[SendResult]],
    reason: str,
) -> dict[str, int]:
    """After a ``send()`` that raised: write what the client knew, ``unknown`` the rest.

    Returns what the write of ``carried`` did (counts by state), or ``{}``.
    """
    if hook is not None:
        return hook.flush(carried)
    if carried is not None and len(carried) == len(lines):
        return journal.record_results(lines, carried)
    journal.settle_in_flight(lines, State.UNKNOWN, code=Code.UNKNOWN, reason=reason)
    return {}


def send_journal(
    client: Any,
    journal: Journal,
    *,
    chunk: int = DEFAULT_CHUNK,
    resend_unknown: bool = False,
    tick: Tick = _no_tick,
    hook: Optional[JournalHook] = None,
    resend_unknown_without_ids: bool = False,
    results_file: Optional[ResultsFile] = None,
    outcome: Optional[SendOutcome] = None,
) -> SendOutcome:
    """Send every sendable message of a loaded journal, chunk by chunk.

    With ``hook`` (a ``JournalHook`` the client was made with) each request's
    messages are marked ``in_flight`` just before it leaves and get their results
    as soon as it ends, so a crash leaves at most the requests on the wire
    ``in_flight``. Without one, a whole chunk is marked ``in_flight`` and committed
    before it is handed to the client, and its results are written after ``send()``
    returns (while the client sends the next chunk). Either way a crash at any
    point leaves every message pending, in flight (-> unknown) or with its result.

    A ``MessageError`` (found by the client before anything of its batch is sent)
    makes that one message ``invalid`` and the chunk is tried again without it. A
    configuration failure (``AuthError``, ``TLSError``...) records the results the
    client carries and stops the run (``outcome.error``); so does a platform that
    cannot be reached (its messages stay ``not_sent`` for the next run). An
    interrupt (Ctrl-C, SIGTERM) records what the client knew (its ``.results``:
    accepted, rejected, not sent) and ``unknown`` only for requests it cut.

    ``resend_unknown`` sends the ``unknown`` messages again, and is refused
    (``JournalIdsNotRecorded``, before anything is sent) when some of them went
    out before the journal recorded clientIds; ``resend_unknown_without_ids``
    sends those too (see ``Journal.recover``).

    With ``results_file`` (a ``ResultsFile`` the client was made with too) every
    message's outcome is written there as well, as soon as it is known. ``outcome``
    (given by the caller) holds the counts so far when an interrupt propagates.
    """
    outcome = SendOutcome() if outcome is None else outcome
    outcome.recovered = journal.recover(
        resend_unknown=resend_unknown, resend_unknown_without_ids=resend_unknown_without_ids
    )
    start = time.perf_counter()
    run = _JournalRun(
        client, journal, outcome, chunk=chunk, tick=tick, hook=hook, results_file=results_file
    )
    try:
        run.send_all()
    finally:
        try:
            run.drain()
        finally:
            run.writer.shutdown(wait=True)
            outcome.elapsed = time.perf_counter() - start
    return outcome


class _JournalRun:
    """One ``send_journal`` run: the chunk loop, and what each way out of a send records.

    Without a hook a chunk's results are written by a writer thread while the client
    sends the next chunk; ``drain`` waits for that write, so the journal has one
    chunk's results before the next one's go out. The same thread reads the next
    chunk while the client sends.
    """

    def __init__(
        self,
        client: Any,
        journal: Journal,
        outcome: SendOutcome,
        *,
        chunk: int,
        tick: Tick,
        hook: Optional[JournalHook],
        results_file: Optional[ResultsFile],
    ) -> None:
        self.client = client
        self.journal = journal
        self.outcome = outcome
        self.chunk = chunk
        self.tick = tick
        self.hook = hook
        self.results_file = results_file
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpgfast-journal")
        self.writing: Optional[Future[dict[str, int]]] = None

    def send_all(self) -> None:
        """Send chunk after chunk, until none is left or the run has to stop."""
        journal, chunk = self.journal, self.chunk
        lines, messages = journal.next_chunk(chunk)
        while lines:
            upcoming = self._hand_over(lines, messages)
            try:
                results = self.client.send(messages)
            except MessageError as exc:
                # Raised while planning: nothing of this batch left.
                if not self._set_aside(exc, lines, messages, upcoming):
                    raise
                lines, messages = journal.next_chunk(chunk, after=lines[0] - 1)
                continue
            except JournalStorageError as exc:
                # The journal cannot be written: nothing more can be recorded there;
                # the results file still gets what the client knew.
                if self.results_file is not None:
                    self.results_file.settle(getattr(exc, "results", None))
                raise
            except HPGError as exc:
                upcoming.result()
                self._stopped(exc, lines)
                break
            except BaseException as exc:
                # Interrupted (Ctrl-C, SIGTERM): the client's ``.results`` say what
                # each message came to; only requests cut on the wire are unknown.
                upcoming.cancel()
                carried, written = self._settle_cut(exc, lines, "interrupted while in flight")
                self.outcome.cut(len(lines), carried)
                self.outcome.earlier(written)
                raise
            down = self._answered(lines, results)
            if down is not None:
                self.outcome.error = down
                upcoming.result()
                break
            lines, messages = upcoming.result()
        self.drain()

    def drain(self) -> None:
        """Wait for the results being written; release what waited for them."""
        if self.writing is not None:
            done, self.writing = self.writing, None
            self.outcome.earlier(done.result())
        if self.results_file is not None:
            self.results_file.release()  # what waited for the journal's word on it

    def _hand_over(
        self, lines: Sequence[int], messages: Sequence[Message]
    ) -> Future[tuple[list[int], list[Message]]]:
        """Make a chunk ready to go (``in_flight``, or the hook armed to mark it as it
        goes); the next chunk is read meanwhile, and returned."""
        if self.hook is not None:
            self.hook.concurrency = max(1, int(getattr(self.client, "concurrency", 1) or 1))
            self.hook.arm(lines)
        else:
            self.journal.mark_in_flight(lines)
        if self.results_file is not None:
            self.results_file.arm(lines, messages)
        return self.writer.submit(self.journal.next_chunk, self.chunk, after=lines[-1])

    def _answered(
        self, lines: Sequence[int], results: Sequence[SendResult]
    ) -> Optional[HPGError]:
        """Record a chunk's results; returns the error when they say the platform is down."""
        self.drain()  # the previous chunk's results are committed before the next send
        outcome = self.outcome
        outcome.add(len(lines), results)
        if self.results_file is not None:
            self.results_file.settle(results)
        if self.hook is None:
            self.writing = self.writer.submit(self.journal.record_results, lines, results)
        else:
            outcome.earlier(self.hook.flush(results))
            if self.results_file is not None:
                self.results_file.release()
        outcome.attempted += len(lines)
        accepted = outcome.states[State.ACCEPTED]
        other = outcome.attempted - accepted
        self.tick(len(lines), f"accepted={accepted:,}" + (f" other={other:,}" if other else ""))
        return _platform_down(results) if outcome.states[State.NOT_SENT] else None

    def _set_aside(
        self,
        exc: MessageError,
        lines: Sequence[int],
        messages: Sequence[Message],
        upcoming: Future[tuple[list[int], list[Message]]],
    ) -> bool:
        """Put the chunk back to ``pending`` and make the message ``exc`` names ``invalid``.

        Returns False when ``exc`` names none of the chunk's messages.
        """
        upcoming.result()
        self.drain()
        self.journal.settle_in_flight(lines, State.PENDING, code=None, reason=None)
        if exc.index is None or not 0 <= exc.index < len(lines):
            return False
        self.journal.record_invalid(lines[exc.index], str(exc))
        if self.results_file is not None:
            self.results_file.invalid(lines[exc.index], messages[exc.index], str(exc))
        self.outcome.states[State.INVALID] += 1
        return True

    def _stopped(self, exc: HPGError, lines: Sequence[int]) -> None:
        """A send that failed for the whole run (auth, TLS, platform down): record it."""
        carried, written = self._settle_cut(exc, lines, f"send failed: {exc}")
        outcome = self.outcome
        if carried is not None and len(carried) == len(lines):
            outcome.add(len(lines), carried)
            outcome.earlier(written)
        else:
            outcome.states[State.UNKNOWN] += len(lines)
        outcome.attempted += len(lines)
        outcome.error = exc

    def _settle_cut(
        self, exc: BaseException, lines: Sequence[int], reason: str
    ) -> tuple[Optional[Sequence[SendResult]], dict[str, int]]:
        """After a ``send()`` that raised: record what the client knew of the chunk.

        Returns the results it carried (or None) and what their write did.
        """
        self.drain()
        carried = getattr(exc, "results", None)
        written = _settle(self.journal, self.hook, lines, carried, reason)
        if self.results_file is not None:
            self.results_file.settle(carried)
            self.results_file.release()
        return carried, written


def send_plain(
    client: Any,
    rows: Iterable[tuple[int, Message]],
    *,
    chunk: int = DEFAULT_CHUNK,
    tick: Tick = _no_tick,
    on_results: Optional[Callable[[Sequence[int], Sequence[SendResult]], None]] = None,
    results_file: Optional[ResultsFile] = None,
    outcome: Optional[SendOutcome] = None,
) -> SendOutcome:
    """Send messages without a journal, ``chunk`` at a time, reading them lazily.

    Stops at the first configuration failure or when the platform cannot be reached
    (``outcome.error``); the messages not tried are not counted. With
    ``results_file`` (a ``ResultsFile`` the client was made with too) every
    message's outcome is written there as soon as it is known, and an interrupt
    (Ctrl-C, SIGTERM) writes what the client knew of its batch before it goes on.
    ``outcome`` (given by the caller) holds the counts so far when an interrupt
    propagates (``outcome.interrupted``).
    """
    outcome = SendOutcome() if outcome is None else outcome
    start = time.perf_counter()
    try:
        for block in chunked(rows, chunk):
            lines = [line for line, _ in block]
            messages = [m for _, m in block]
            if results_file is not None:
                results_file.arm(lines, messages)
            try:
                results = client.send(messages)
            except HPGError as exc:
                carried = getattr(exc, "results", None)
                if results_file is not None:
                    results_file.settle(carried)
                if carried is not None:
                    outcome.add(len(lines), carried)
                    if on_results is not None:
                        on_results(lines, carried)
                    outcome.attempted += len(lines)
                outcome.error = exc
                break
            except BaseException as exc:
                # Interrupted: the client's ``.results`` say what each message came to.
                if results_file is not None:
                    results_file.settle(getattr(exc, "results", None))
                outcome.cut(len(lines), getattr(exc, "results", None))
                raise
            if results_file is not None:
                results_file.settle(results)
            outcome.add(len(lines), results)
            outcome.attempted += len(lines)
            if on_results is not None:
                on_results(lines, results)
            tick(len(lines), f"accepted={outcome.states[State.ACCEPTED]:,}")
            down = _platform_down(results) if outcome.states[State.NOT_SENT] else None
            if down is not None:
                outcome.error = down
                break
    finally:
        outcome.elapsed = time.perf_counter() - start
    return outcome


# -- following statuses ----------------------------------------------------------------


@dataclass
class FollowOutcome:
    """What a ``status --follow`` run saw."""

    rounds: int = 0
    changes: int = 0
    #: Ids still not final when the run ended.
    open: int = 0
    elapsed: float = 0.0
    #: Final statuses (or final codes) by id, for runs without a journal.
    statuses: dict[str, StatusResult] = field(default_factory=dict)
    error: Optional[BaseException] = None
    deadline_passed: bool = False
    #: The first error an id's result carried in the last round (an HTTP 5xx, an
    #: unreadable reply...): while ids stay open because of it, the exit code is
    #: that error's, as for ``hpgfast status ID``.
    failure: Optional[BaseException] = None


def _is_final(client: Any, r: StatusResult) -> bool:
    """Final by the client's ``final_statuses`` (any case), or a final answer code."""
    return bool(client.is_final(r)) or r[0] in FINAL_STATUS_CODES


def _first_failure(results: Sequence[StatusResult]) -> Optional[BaseException]:
    """The error of the first result left unknown or not sent, if any."""
    for r in results:
        if r[0] == Code.UNKNOWN or r[0] == Code.NOT_SENT:
            error: Optional[BaseException] = getattr(r, "error", None)
            if error is not None:
                return error
    return None


#: Ids asked per ``client.status()`` call while following (results recorded per call).
FOLLOW_BATCH = 20_000


def follow(
    client: Any,
    *,
    journal: Optional[Journal] = None,
    provider_ids: Sequence[str] = (),
    deadline: float = 3600.0,
    interval: float = 1.0,
    max_interval: float = 60.0,
    once: bool = False,
    tick: Tick = _no_tick,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowOutcome:
    """Poll the ids that are not final, with backoff, until all are final or ``deadline``.

    The ids come from the journal (accepted messages without a final status) or from
    ``provider_ids``. The wait between rounds starts at ``interval`` and doubles up
    to ``max_interval`` while a round brings no change; a change resets it. With a
    journal every change is recorded (status, its time, its reason, ``poll``).
    ``once`` makes a single round.
    """
    outcome = FollowOutcome()
    start = time.monotonic()
    end = start + deadline
    wait = interval
    latest: dict[str, StatusResult] = {}
    pending = list(dict.fromkeys(provider_ids))
    ids: list[str]
    ids = journal.open_provider_ids() if journal is not None else pending
    try:
        while ids:
            outcome.rounds += 1
            changed = 0
            still: list[str] = []
            outcome.failure = None
            for block in chunked(ids, FOLLOW_BATCH):
                try:
                    results = client.status(block)
                except HPGError as exc:
                    outcome.error = exc
                    return outcome
                if outcome.failure is None:
                    outcome.failure = _first_failure(results)
                if journal is not None:
                    changed += journal.record_statuses(results, source="poll")
                else:
                    for r in results:
                        pid = r[1]
                        if pid is None:
                            continue
                        if r[0] == Code.OK or r[0] in FINAL_STATUS_CODES:
                            old = latest.get(pid)
                            if old is None or tuple(old) != tuple(r):
                                changed += 1
                            latest[pid] = r
                        if not _is_final(client, latest.get(pid, r)):
                            still.append(pid)
                tick(0, f"round {outcome.rounds}: {changed:,} changes")
            outcome.changes += changed
            ids = journal.open_provider_ids() if journal is not None else still
            if not ids or once:
                break
            now = time.monotonic()
            if now >= end:
                outcome.deadline_passed = True
                break
            wait = interval if changed else min(wait * 2, max_interval)
            sleep(min(wait, max(end - now, 0.0)))
    finally:
        outcome.elapsed = time.monotonic() - start
        outcome.statuses = latest
        outcome.open = len(ids)
    return outcome
