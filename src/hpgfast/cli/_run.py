"""The engine behind ``hpgfast send`` without a journal.

Strategy: the command line only parses settings and prints; the work is in the
library, so that ``hpgfast demo`` and the tests drive exactly the code users run.
With a journal, ``hpgfast send`` is a user of the public journal API
(``Journal.load_input``, ``Journal.send``: ``hpgfast.journal._sender``) and
``hpgfast status --follow`` of ``hpgfast.journal._follow``; without one, the
messages go out here, ``chunk`` at a time: from the copy the whole-file check kept
(``send_blocks``, ``hpgfast.cli._checked``), or read lazily (``send_plain``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._records import Message, SendResult
from .._states import SendSummary, State, _platform_down
from ..exceptions import HPGError
from ._checked import blocks

if TYPE_CHECKING:  # imported by the caller that makes one (it imports the journal)
    from ._results import ResultsFile

#: The run's counts: the journal's ``SendSummary`` (``hpgfast._states``, so that a
#: run without a journal does not import the journal), for a run with or without one.
SendOutcome = SendSummary
#: Messages per ``client.send()`` call: the journal's chunk too
#: (``hpgfast.journal.DEFAULT_CHUNK``, not imported here for the reason above; a test
#: holds the two equal).
DEFAULT_CHUNK = 5_000

__all__ = ["DEFAULT_CHUNK", "SendOutcome", "chunked", "send_blocks", "send_plain"]

Tick = Callable[[int, str], None]


def _no_tick(n: int, note: str) -> None:
    pass


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` items."""
    it = iter(items)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield block


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
    return send_blocks(
        client, blocks(rows, chunk), tick=tick, on_results=on_results,
        results_file=results_file, outcome=outcome,
    )


def send_blocks(
    client: Any,
    chunks: Iterable[tuple[Sequence[int], list[Message]]],
    *,
    tick: Tick = _no_tick,
    on_results: Optional[Callable[[Sequence[int], Sequence[SendResult]], None]] = None,
    results_file: Optional[ResultsFile] = None,
    outcome: Optional[SendOutcome] = None,
) -> SendOutcome:
    """``send_plain`` for messages already in chunks: ``(lines, messages)`` each, one
    ``client.send`` per chunk (``hpgfast.cli._checked``: the check's copy)."""
    outcome = SendOutcome() if outcome is None else outcome
    start = time.perf_counter()
    try:
        for lines, messages in chunks:
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
