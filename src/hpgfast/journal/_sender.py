"""Sending what a journal holds, through a ``Client`` or an ``AsyncClient``: exactly once.

Strategy: the journal's write order (``_send``) is the whole safety argument, and
this module is the one place that keeps it, for the command line and for a library
user alike. ``Journal.send(client)`` hands the client, per call, a hook
(``JournalHook``, ``send(..., subscribers=[hook])``) that the client runs before
the first byte of each request: it marks that request's messages, and a few
requests' worth ahead, ``in_flight`` together with the results of the requests that
ended since, in one commit, and checks that the sender's claim on them (its lease)
outlives the request. A client the user made, with settings and subscribers of its
own, thus gets every guarantee ``hpgfast send --journal`` has:

- the mark is committed before the request's first byte, the outcomes after it;
- a process killed at any moment leaves at most ``W = 4 x concurrency`` requests'
  messages ``in_flight`` (``unknown`` on the next run), never one sent twice;
- an interrupt (Ctrl-C, SIGTERM, an asyncio cancellation) records what the client
  knew (its ``.results``) and ``unknown`` only for requests cut on the wire;
- a full disk (``JournalStorageError``) stops the run before anything unrecorded
  leaves; the journal stays as its last commit left it.

``send_async`` drives an ``AsyncClient`` the same way and never blocks its loop on
the journal: the hook is a ``blocking`` subscriber, which the ``AsyncClient`` runs
in a worker thread and awaits, and every other journal write of the run goes to the
run's own writer thread.

The engine is only reached through the interface both engines implement
(``recover``, ``next_chunk``, ``advance``, ``settle_in_flight``, ``record_invalid``,
``lease_deadline``, ``fit_lease``, ``release``, ``loading``), so a shared journal
(PostgreSQL) plugs in as is.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

from .._records import Message, SendResult
from ..exceptions import HPGError, MessageError
from ._errors import JournalError, JournalStorageError
from ._hook import JournalHook, request_time
from ._schema import State
from ._summary import Progress, ResultsWriter, SendSummary, _platform_down

__all__ = ["DEFAULT_CHUNK", "Progress", "ResultsWriter", "SendSummary"]

log = logging.getLogger("hpgfast.journal")

#: Messages per chunk: one ``client.send()`` call, read from the journal at once.
DEFAULT_CHUNK = 5_000


def _no_progress(n: int, note: str) -> None:
    pass


class _Later:
    """The next chunk, read on ``result()`` in the calling thread (``_Run.after``)."""

    def __init__(self, read: Callable[..., tuple[list[int], list[Message]]], size: int,
                 after: int) -> None:
        self._read: Optional[Callable[..., tuple[list[int], list[Message]]]] = read
        self._size = size
        self._after = after
        self._value: Optional[tuple[list[int], list[Message]]] = None

    def result(self) -> tuple[list[int], list[Message]]:
        if self._value is None:
            if self._read is None:
                raise RuntimeError("the chunk read was cancelled")
            self._value = self._read(self._size, after=self._after)
        return self._value

    def cancel(self) -> bool:
        self._read = None
        return True


class _Run:
    """One send run's steps, each a plain call that writes the journal.

    ``Journal.send`` calls them in the caller's thread, around ``client.send()``;
    ``Journal.send_async`` in the run's writer thread, around ``await
    aclient.send()``. The next chunk is read by the writer while the client sends.
    """

    def __init__(
        self,
        journal: Any,
        client: Any,
        *,
        chunk: int,
        progress: Optional[Progress],
        results_file: Optional[ResultsWriter],
        summary: Optional[SendSummary],
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        self.journal = journal
        self.client = client
        self.chunk = chunk
        self.progress = progress or _no_progress
        self.results_file = results_file
        self.summary = SendSummary() if summary is None else summary
        self.hook = JournalHook(journal)
        # A shared journal's lease must outlast each request (the hook refuses a
        # request it would not): fitted to this client unless the journal was given one.
        journal.fit_lease(request_time(client))
        self.subscribers = (self.hook,)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpgfast-journal")
        self._wrapped = False  # whether the run looked again from the start

    def first(self) -> tuple[list[int], list[Message]]:
        result: tuple[list[int], list[Message]] = self.journal.next_chunk(self.chunk)
        return result

    def hand_over(
        self, lines: Sequence[int], messages: Sequence[Message]
    ) -> Future[tuple[list[int], list[Message]]]:
        """Arm the hook (and the results file) for a chunk; read the next one meanwhile
        (in the writer thread: ``send_async``'s loop must not wait on it)."""
        self.arm(lines, messages)
        return self.writer.submit(self.journal.next_chunk, self.chunk, after=lines[-1])

    def arm(self, lines: Sequence[int], messages: Sequence[Message]) -> None:
        """Arm the hook (and the results file) for a chunk about to be sent."""
        self.hook.arm(lines, self.client)
        if self.results_file is not None:
            self.results_file.arm(lines, messages)

    def after(self, lines: Sequence[int]) -> _Later:
        """The chunk after ``lines``, read when asked for, in the asking thread.

        ``send``'s way: a thread reading it while the client sends would contend
        with the client for the interpreter (the read gives it up at every column,
        and each hand-over costs more than the read saves), and the client's own
        waits are short; the chunk is read once the previous one is answered.
        """
        return _Later(self.journal.next_chunk, self.chunk, lines[-1])

    def again(self) -> tuple[list[int], list[Message]]:
        """At the end of a pass, once: the first chunk again (a shared journal).

        A shared journal's sender passes over rows other senders held when it came
        by; one of those that died since (or whose lease lapsed) left them
        sendable, so once its own chunks are written the sender looks once more
        from the start. Called after the last chunk's results are written.
        """
        if self._wrapped or not getattr(self.journal, "shared", False):
            return [], []
        self._wrapped = True
        result: tuple[list[int], list[Message]] = self.journal.next_chunk(self.chunk)
        return result

    def answered(self, lines: Sequence[int], results: Sequence[SendResult]) -> bool:
        """Record a chunk's results; True when they say the platform is down (stop)."""
        summary = self.summary
        summary.add(len(lines), results)
        if self.results_file is not None:
            self.results_file.settle(results)
        summary.earlier(self.hook.flush(results))
        if self.results_file is not None:
            self.results_file.release()
        summary.attempted += len(lines)
        accepted = summary.states[State.ACCEPTED]
        other = summary.attempted - accepted
        self.progress(len(lines), f"accepted={accepted:,}" + (f" other={other:,}" if other else ""))
        down = _platform_down(results) if summary.states[State.NOT_SENT] else None
        if down is not None:
            summary.error = down
        return down is not None

    def set_aside(
        self, exc: MessageError, lines: Sequence[int], messages: Sequence[Message]
    ) -> Optional[tuple[list[int], list[Message]]]:
        """Make the message ``exc`` names ``invalid``; the chunk read again without it.

        None when ``exc`` names none of the chunk's messages (raised on).
        """
        # Raised while planning: nothing of this batch was marked or left.
        self.journal.settle_in_flight(lines, State.PENDING, code=None, reason=None)
        if exc.index is None or not 0 <= exc.index < len(lines):
            return None
        self.journal.record_invalid(lines[exc.index], str(exc))
        if self.results_file is not None:
            self.results_file.invalid(lines[exc.index], messages[exc.index], str(exc))
        self.summary.states[State.INVALID] += 1
        again: tuple[list[int], list[Message]] = self.journal.next_chunk(
            self.chunk, after=lines[0] - 1
        )
        return again

    def storage_failed(self, exc: JournalStorageError) -> None:
        """The journal cannot be written: the results file still gets what was known."""
        if self.results_file is not None:
            self.results_file.settle(getattr(exc, "results", None))

    def stopped(self, exc: HPGError, lines: Sequence[int]) -> None:
        """A send that failed for the whole run (auth, TLS, platform down, a lost claim)."""
        carried, written = self._settle_cut(exc)
        summary = self.summary
        if carried is not None and len(carried) == len(lines):
            summary.add(len(lines), carried)
            summary.earlier(written)
        else:
            summary.states[State.UNKNOWN] += len(lines)
        summary.attempted += len(lines)
        summary.error = exc

    def cut(self, exc: BaseException, lines: Sequence[int]) -> None:
        """Interrupted (Ctrl-C, SIGTERM, a cancellation): what the client knew, recorded."""
        carried, written = self._settle_cut(exc)
        self.summary.cut(len(lines), carried)
        self.summary.earlier(written)

    def _settle_cut(
        self, exc: BaseException
    ) -> tuple[Optional[Sequence[Optional[SendResult]]], dict[str, int]]:
        carried = getattr(exc, "results", None)
        written = self.hook.flush(carried)
        if self.results_file is not None:
            self.results_file.settle(carried)
            self.results_file.release()
        return carried, written

    def end(self) -> None:
        """The run is over: un-claim what it did not send (a shared journal)."""
        try:
            _release(self.journal)
        finally:
            self.writer.shutdown(wait=True)


def _release(journal: Any) -> None:
    """``journal.release()``, best effort: a reservation left behind only waits for its
    lease to lapse (its rows stay ``pending``), so a failure here must not hide the
    error or the interrupt that ended the run."""
    try:
        journal.release()
    except Exception as exc:
        log.warning("journal %s: could not release the rows this run left: %s", journal.path, exc)


def _run_sync(run: _Run) -> None:
    """The chunk loop around ``client.send()``: until nothing is left, or a stop."""
    client = run.client
    lines, messages = run.first()
    while lines:
        run.arm(lines, messages)
        upcoming = run.after(lines)
        try:
            results = client.send(messages, subscribers=run.subscribers)
        except MessageError as exc:
            upcoming.cancel()
            again = run.set_aside(exc, lines, messages)
            if again is None:
                raise
            lines, messages = again
            continue
        except JournalStorageError as exc:
            run.storage_failed(exc)
            raise
        except HPGError as exc:
            upcoming.cancel()
            run.stopped(exc, lines)
            return
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM): the client's ``.results`` say what each
            # message came to; only requests cut on the wire are unknown.
            upcoming.cancel()
            run.cut(exc, lines)
            raise
        try:
            stop = run.answered(lines, results)
        except (KeyboardInterrupt, SystemExit):
            # Interrupted while the chunk's results were written (that commit was
            # rolled back): they are known, so they are written before going on.
            upcoming.cancel()
            run.summary.interrupted = True
            run.hook.flush(results)
            raise
        if stop:
            upcoming.result()
            return
        lines, messages = upcoming.result()
        if not lines:
            lines, messages = run.again()


async def _run_async(run: _Run) -> None:
    """``_run_sync`` around ``await aclient.send()``, each journal step in the writer."""
    import asyncio  # here: a journal used without asyncio does not load it
    aclient = run.client

    async def step(fn: Callable[..., Any], *args: Any) -> Any:
        # Shielded: a cancellation never cuts a journal write in the middle; the
        # run ends after it (the write itself is one transaction either way).
        return await asyncio.shield(asyncio.wrap_future(run.writer.submit(fn, *args)))

    lines, messages = await step(run.first)
    while lines:
        upcoming = run.hand_over(lines, messages)
        try:
            results = await aclient.send(messages, subscribers=run.subscribers)
        except MessageError as exc:
            await asyncio.wrap_future(upcoming)
            again = await step(run.set_aside, exc, lines, messages)
            if again is None:
                raise
            lines, messages = again
            continue
        except JournalStorageError as exc:
            run.storage_failed(exc)
            raise
        except HPGError as exc:
            await asyncio.wrap_future(upcoming)
            await step(run.stopped, exc, lines)
            return
        except BaseException as exc:
            # Cancelled (or interrupted): what the client knew, recorded, then on.
            upcoming.cancel()
            await step(run.cut, exc, lines)
            raise
        if await step(run.answered, lines, results):
            await asyncio.wrap_future(upcoming)
            return
        lines, messages = await asyncio.wrap_future(upcoming)
        if not lines:
            lines, messages = await step(run.again)


@contextlib.contextmanager
def _one_run(journal: Any) -> Iterator[None]:
    """One send run at a time per journal object.

    A run's hook, its chunk and (on a shared journal) its claims belong to the
    object: two runs on one object, from two threads or tasks, would take each
    other's claims for lost and stop. Each thread or task opens its own journal
    object (they share the journal, a file or a database, as two processes do).
    """
    lock = journal.__dict__.setdefault("_hpgfast_run_lock", threading.Lock())
    if not lock.acquire(blocking=False):
        raise JournalError(
            f"journal {journal.path}: this journal object is already sending; give each "
            "thread or task its own (open_journal again): they share the journal"
        )
    try:
        yield
    finally:
        lock.release()


class _Sender:
    """``Journal.send`` and ``Journal.send_async``: a mixin of both engines.

    It uses only the engine interface (``recover``, ``next_chunk``, ``advance``,
    ``settle_in_flight``, ``record_invalid``, ``lease_deadline``, ``fit_lease``,
    ``release``, ``loading``).
    """

    def send(
        self,
        client: Any,
        *,
        resend_unknown: bool = False,
        resend_unknown_without_ids: bool = False,
        chunk: int = DEFAULT_CHUNK,
        progress: Optional[Progress] = None,
        results_file: Optional[ResultsWriter] = None,
        summary: Optional[SendSummary] = None,
    ) -> SendSummary:
        """Send every sendable message of the journal through ``client``: exactly once.

        ``client`` is a ``hpgfast.Client`` made by the caller, with any settings
        and subscribers. For each request ``client.send()`` makes, the journal
        marks its messages ``in_flight`` and commits before the request's first
        byte, and writes their outcomes after it ends (the hook goes on each call,
        ``client.send(..., subscribers=[...])``; the client is not changed). A
        process killed at any moment leaves at most ``4 x concurrency`` requests'
        messages ``in_flight``; the next ``send()`` (of any process) makes them
        ``unknown`` and sends only what certainly never went out.

        Sendable: ``pending`` and ``not_sent`` messages (``unknown`` ones too with
        ``resend_unknown``, at the risk of a second SMS; a platform that refuses
        repeated clientIds answers ``error-id-not-unique`` for those it has, and
        they become ``accepted_earlier``). ``resend_unknown`` is refused
        (``JournalIdsNotRecorded``, nothing sent) for messages sent before the
        journal recorded clientIds; ``resend_unknown_without_ids`` sends those too.

        The run stops early, with ``summary.error`` set and the messages it did not
        send still sendable, on a configuration failure (``AuthError``,
        ``TLSError``...), a platform that cannot be reached, or a lost claim
        (``JournalClaimLost``, a shared journal). A message that cannot be sent as
        given is recorded ``invalid`` and the rest goes on.

        Args:
            client: the ``Client`` to send with.
            resend_unknown: send ``unknown`` messages again.
            resend_unknown_without_ids: as ``resend_unknown``, and also those sent
                before the journal recorded clientIds (under a new id).
            chunk: messages per ``client.send()`` call.
            progress: called as ``progress(n, note)`` after each chunk.
            results_file: each outcome is also written there as soon as it is
                known (the command line's ``--results``; see ``ResultsWriter``).
            summary: a ``SendSummary`` to count into: it holds the counts so far
                when an exception propagates.

        Returns:
            The run's ``SendSummary``.

        Raises:
            JournalStorageError: the journal cannot be written (disk full): the run
                stops; nothing unrecorded left; resume once there is room.
            JournalIdsNotRecorded: see ``resend_unknown``.
            MessageError: only for an error that names no message of the batch.
            KeyboardInterrupt: Ctrl-C (or SIGTERM as the command line maps it):
                what the client knew is recorded first, ``unknown`` only for
                requests cut on the wire.
        """
        with _one_run(self):
            run = _Run(self, client, chunk=chunk, progress=progress,
                       results_file=results_file, summary=summary)
            start = time.perf_counter()
            try:
                run.summary.recovered = self.recover(  # type: ignore[attr-defined]
                    resend_unknown=resend_unknown,
                    resend_unknown_without_ids=resend_unknown_without_ids,
                )
                _run_sync(run)
            finally:
                try:
                    run.end()
                finally:
                    run.summary.elapsed = time.perf_counter() - start
        return run.summary

    async def send_async(
        self,
        aclient: Any,
        *,
        resend_unknown: bool = False,
        resend_unknown_without_ids: bool = False,
        chunk: int = DEFAULT_CHUNK,
        progress: Optional[Progress] = None,
        results_file: Optional[ResultsWriter] = None,
        summary: Optional[SendSummary] = None,
    ) -> SendSummary:
        """``send()`` through an ``hpgfast.AsyncClient``, awaited; the loop never blocks.

        The same guarantees and arguments as ``send()``. Every journal write runs
        off the event loop: the before-first-byte marks in a worker thread the
        ``AsyncClient`` awaits (the hook is a ``blocking`` subscriber), the rest in
        the run's own writer thread. A cancellation (``task.cancel()``,
        ``asyncio.wait_for``, Ctrl-C under ``asyncio.run``) records what the
        client knew, ``unknown`` only for requests cut on the wire, and propagates.
        ``progress`` is called in the writer thread.
        """
        import asyncio

        with _one_run(self):
            run = _Run(self, aclient, chunk=chunk, progress=progress,
                       results_file=results_file, summary=summary)
            start = time.perf_counter()
            writer = run.writer
            try:
                run.summary.recovered = await asyncio.wrap_future(writer.submit(
                    self.recover,  # type: ignore[attr-defined]
                    resend_unknown=resend_unknown,
                    resend_unknown_without_ids=resend_unknown_without_ids,
                ))
                await _run_async(run)
            finally:
                try:
                    # After every write the run queued (one writer thread): awaiting
                    # it is waiting for them too, even after a cancellation.
                    await asyncio.shield(asyncio.wrap_future(writer.submit(_release, self)))
                finally:
                    writer.shutdown(wait=False)  # its last job (release) is done or running
                    run.summary.elapsed = time.perf_counter() - start
        return run.summary

    def load_input(
        self,
        rows: Iterable[tuple[int, Message]],
        *,
        transliterate: bool = False,
        bind: Optional[Callable[[], Mapping[str, str]]] = None,
        progress: Optional[Progress] = None,
    ) -> int:
        """Put a whole numbered input in the journal (resuming a cut load); returns the total.

        ``rows`` are ``(line, message)``, lines 1, 2, ...: the command line's way
        (a file, read once). ``bind``, when given, is called once the rows are read
        and its fingerprint bound (``bind``) before the load is marked finished, so
        an input is hashed while it is loaded. Once finished, a journal is not
        loaded again (``loaded``): ``rows`` is not read at all. To add messages of
        your own, with keys, at any time, see ``add``.

        Done inside the engine's ``loading()``: senders of a shared journal that
        start together on one input load it once (the first loads, the others wait,
        then find it loaded and read nothing); a loader killed mid-load is taken
        over by the next, after the last line committed.
        """
        with self.loading():  # type: ignore[attr-defined]
            loaded: Optional[int] = self.loaded  # type: ignore[attr-defined]
            if loaded is not None:
                return loaded
            tick = progress or _no_progress
            total: int = self.last_line  # type: ignore[attr-defined]
            start = total

            def counted() -> Iterator[tuple[int, Message]]:
                nonlocal total
                for line, message in rows:
                    total = line
                    if line > start and line % 10_000 == 0:
                        tick(10_000, "")
                    yield line, message

            self.load(counted(), transliterate=transliterate)  # type: ignore[attr-defined]
            if bind is not None:
                self.bind(bind())  # type: ignore[attr-defined]
            self.finish_load(total)  # type: ignore[attr-defined]
        return total
