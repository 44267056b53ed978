"""``hpgfast send --results FILE``: each message's outcome as a CSV row, as soon as it is known.

Strategy: the file is what a user acts on after any run, finished, stopped or
killed, with or without a journal: which lines were accepted (with their provider
ids), rejected (with the code), are safe to send again (``not_sent``) or need a
person (``unknown``). So a row is written when its request ends (the client's
``request_finished``, in the thread that sent it) and flushed at once, not when a
chunk or the run ends: a ``kill -9`` loses only the requests on the wire. What no
request reported (requests never begun, or cut by an interrupt) is written from
the results ``send()`` returns or its exception carries. The outcome words are the
journal's states, decided by the same rules; a message absent from the file was
never handed to the client. Rows go in the order outcomes arrive; a run appends
its rows to a results file an earlier run wrote.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from .. import _redact
from .._records import Message, SendResult
from .._states import State, result_state
from .._wire import SEND, Code
from ..core import RequestFinished, Subscriber
from ..exceptions import HPGError
from ._common import UsageError

if TYPE_CHECKING:  # given one by a journaled send, which imported it
    from ..journal import Journal

__all__ = ["RESULT_COLUMNS", "ResultsFile", "outcome_of"]

#: The results file's columns. ``line`` is the message's 1-based number in the input
#: (a journal's ``line``); ``outcome`` a journal state; ``reason`` why hpgfast made up
#: a result (``not_sent``, ``unknown``) or why a message is ``invalid``; ``time`` when
#: the outcome was known (UTC).
RESULT_COLUMNS = (
    "line", "address", "client_id", "outcome", "code", "provider_id", "reason", "time",
)


#: The journal state a send result leads to: the journal's own rule
#: (``hpgfast._states.result_state``), so the file and the journal agree.
outcome_of = result_state


def _stopped_by(exc: Optional[BaseException]) -> Optional[tuple[str, str]]:
    """The reasons (never sent, cut in flight) for the outcomes ``exc`` made up, which
    stopped a batch without an error of the client's (an ``HPGError`` gives its own)."""
    if exc is None or isinstance(exc, HPGError):
        return None
    if isinstance(exc, Exception):  # a bug, a subscriber's error: named, not hidden
        what = f"stopped by {type(exc).__name__}"
    else:  # Ctrl-C, SIGTERM (which unwinds as Ctrl-C), a cancellation
        what = "interrupted"
    return f"{what} before it was sent", f"{what} while in flight"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds")


class ResultsFile(Subscriber):
    """A CSV of each message's outcome (``RESULT_COLUMNS``), written as outcomes arrive.

    Give it to the ``Client`` (``subscribers=[...]``) and to the send engine, which
    ``arm``s it with each batch's lines and messages before ``client.send()`` and
    ``settle``s it with the batch's results (returned, or carried by an exception)
    after. With ``journal``, an ``error-id-not-unique`` waits for the journal to say
    whether it was accepted earlier (``release``), so both tell the same.

    Raises:
        UsageError: ``path`` holds something other than a results file, or cannot
            be opened.
    """

    def __init__(self, path: str, *, journal: Optional[Journal] = None) -> None:
        self.path = path
        self._journal = journal
        try:
            with open(path, encoding="utf-8", newline="") as f:
                first = f.readline()
        except FileNotFoundError:
            first = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--results {path!r}: cannot be read: {exc}") from None
        header = ",".join(RESULT_COLUMNS)
        if first and first.rstrip("\r\n") != header:
            # Appending to someone's other CSV would spoil it: refused, untouched.
            raise UsageError(
                f"--results {path!r} is not a results file of hpgfast (its first line is "
                f"not {header}); give a new path"
            )
        try:
            self._file = open(path, "a", encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"--results {path!r}: {exc.strerror}") from None
        self._csv = csv.writer(self._file)
        self._lock = threading.Lock()
        self._lines: Sequence[int] = ()
        self._messages: Sequence[Message] = ()
        self._written = bytearray()
        self._held: list[tuple[int, Message, SendResult]] = []
        if not first:
            self._csv.writerow(RESULT_COLUMNS)
            self._file.flush()

    def arm(self, lines: Sequence[int], messages: Sequence[Message]) -> None:
        """The batch about to be handed to ``client.send()``: its lines and messages."""
        with self._lock:
            self._lines = lines
            self._messages = messages
            self._written = bytearray(len(lines))

    def request_finished(self, event: RequestFinished) -> None:
        if event.op != SEND:
            return
        with self._lock:
            self._write(range(event.start, event.end), event.results, event.start)

    def settle(self, results: Optional[Sequence[Optional[SendResult]]]) -> None:
        """After ``send()`` returned or raised: the rows no request reported yet.

        ``results`` are the batch's (one per message) or an exception's ``.results``;
        without them nothing more is known, and nothing more is written. Called in
        the handler of what stopped the batch, if anything did: a ``not_sent`` or
        ``unknown`` an interrupt made has no error of its own, and is given the
        interrupt as its reason. (Read from the exception being handled, so the
        ``ResultsWriter`` protocol stays as it is: a send that returned has no
        such outcome, since only what stops a batch without an error of the
        client's makes one, and that is raised.)
        """
        stop = sys.exc_info()[1]
        with self._lock:
            if results is not None and len(results) == len(self._lines):
                self._write(range(len(self._lines)), results, 0, _stopped_by(stop))

    def invalid(self, line: int, message: Message, reason: str) -> None:
        """A message that cannot be sent as given (``invalid``: never sent)."""
        with self._lock:
            self._row(line, message, message[3], State.INVALID, "", None, reason)
            self._file.flush()

    def release(self, *, last: bool = False) -> None:
        """Write the rows that waited for the journal's word, once it has recorded them.

        ``last``: write them all, those the journal has not recorded (still
        ``in_flight``) by the client's word.
        """
        with self._lock:
            if not self._held or self._journal is None:
                return
            held, self._held = self._held, []
            for line, message, r in held:
                row = self._journal.by_line(line)
                state = row["state"] if row is not None else State.IN_FLIGHT
                if state == State.IN_FLIGHT:
                    if not last:
                        self._held.append((line, message, r))
                        continue
                    state = outcome_of(r)
                self._row(line, message, r[1], state, r[0], r[2], self._reason(r))
            self._file.flush()

    def close(self) -> None:
        """Write what still waits, and close the file, on disk."""
        self.release(last=True)
        with self._lock:
            if self._file.closed:
                return
            self._file.flush()
            try:
                os.fsync(self._file.fileno())
            except OSError:  # a pipe or a device: flushed is all there is
                pass
            self._file.close()

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ResultsFile {self.path!r}>"

    # -- under the lock ---------------------------------------------------------------

    def _write(
        self,
        indexes: range,
        results: Sequence[Optional[SendResult]],
        offset: int,
        stopped: Optional[tuple[str, str]] = None,
    ) -> None:
        written, lines, messages = self._written, self._lines, self._messages
        if indexes.stop > len(lines):
            return  # not the armed batch (defensive): nothing to match it with
        wrote = False
        for i in indexes:
            if written[i]:
                continue
            written[i] = 1
            r = results[i - offset]
            line, message = lines[i], messages[i]
            if r is None:
                why = stopped[1] if stopped is not None else ""
                self._row(line, message, message[3], State.UNKNOWN, Code.UNKNOWN, None, why)
            elif self._journal is not None and r[0] == Code.ERROR_ID_NOT_UNIQUE:
                # The journal may record it accepted earlier: written once it has.
                self._held.append((line, message, r))
                continue
            else:
                client_id = r[1] if r[1] is not None else message[3]
                outcome, why = outcome_of(r), self._reason(r)
                if not why and stopped is not None:
                    # Made up by what stopped the batch: it says why.
                    if outcome == State.NOT_SENT:
                        why = stopped[0]
                    elif outcome == State.UNKNOWN:
                        why = stopped[1]
                self._row(line, message, client_id, outcome, r[0], r[2], why)
            wrote = True
        if wrote:
            self._file.flush()

    @staticmethod
    def _reason(r: Any) -> str:
        error = getattr(r, "error", None) if type(r) is not SendResult else None
        return "" if error is None else str(error)

    def _row(
        self,
        line: int,
        message: Message,
        client_id: Optional[str],
        outcome: str,
        code: str,
        provider_id: Optional[str],
        reason: str,
    ) -> None:
        # The client masks the password in the texts it makes and keeps; the reason
        # (a text from outside) is masked again with the open clients' redactors all
        # the same (defence in depth). The address, the ids and the code stay exact: a
        # row must name its message and its fate, and a short password ("ok", "1001")
        # would mask a code or an id as it masks any text.
        self._csv.writerow((
            line, message[0], client_id or "", outcome,
            code or "", provider_id or "",
            _redact.redact_all(reason) if reason else "", _now(),
        ))
