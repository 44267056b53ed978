"""The send loop's writes: what went out, and what came back, in a crash-safe order.

Strategy: the journal is one SQLite file in WAL mode (see ``_schema`` for its
tables). The send loop moves each message through a small state machine, and the
order of the writes is the whole safety argument:

1. every input message is inserted as ``pending`` (batches of 10,000 rows per
   transaction) before anything is sent (``_load``);
2. a chunk of rows is marked ``in_flight`` in one transaction, which is committed
   *before* the chunk is handed to the client: one ``in_flight`` row for the span of
   lines (and the outcome rows of lines sent before, set back in flight), not a row
   a message;
3. the chunk's results are written in one transaction after the client returns:
   each message's outcome row, once; a span whose lines all have theirs goes.

A process killed at any moment therefore leaves every message either ``pending``
(never handed to the client: safe to send), ``in_flight`` (may have reached the
platform: becomes ``unknown`` on resume and is not sent again unless the user
asks), or in a result state. SQLite's WAL commit is atomic, and a commit that
returned is in the operating system's cache before the next request leaves, so
``kill -9`` loses nothing that was committed. ``synchronous=FULL`` (the default)
also fsyncs the WAL on every commit, so a power loss cannot undo an ``in_flight``
mark either (with ``NORMAL`` it could, and the message would be sent again).
Writes are batched per chunk, so the journal costs a few transactions per few
thousand messages.

States::

    pending --> in_flight --> accepted   (code ok, provider_id set)
       ^            |    \\--> rejected   (a platform code other than ok)
       |            |     \\-> not_sent   (the request never left, or an account stop:
       |            |                      sent again on resume)
       |            \\-------> unknown    (no reply line, or the process died)
       +-- not_sent, and unknown with resend_unknown=True
    pending --> invalid   (the message cannot be encoded as given; never sent)
    unknown --> pending --> in_flight --> accepted_earlier
                (resent with the clientId the journal made for it, and answered
                error-id-not-unique on its own reply line: it was accepted before)

Every message without a clientId of its own is sent with one the journal makes:
the journal's random prefix (11 characters of ``[0-9A-Za-z]``, 65 bits, drawn once
and kept in ``meta``) and the message's line in base 62 (9 characters): 20
characters, the same on every resend. A platform that enforces unique clientIds
then refuses a resend of a message it already has, instead of sending a second SMS.
A journal of schema 1 kept no clientIds: its messages open (in flight, unknown) at
the migration are listed in ``ids_not_recorded``, and resending them (under a new
id) takes ``resend_unknown_without_ids`` (see ``Journal.recover``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from .._records import Message, SendResult
from .._wire import Code
from ._errors import JournalError, JournalIdsNotRecorded
from ._file import _JournalFile, log
from ._schema import State, refused_whole, result_state

_SENDABLE_SQL = f"('{State.PENDING}', '{State.NOT_SENT}')"

#: The sendable rows among lines ``(?, ?]``, the first ``?`` of them (``next_chunk``):
#: without an outcome row and outside every span in flight, or in a sendable state.
_CHUNK_SETTLED = (
    "SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params "
    "FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line "
    "WHERE m.line > ? AND m.line <= ? AND (o.state IN " + _SENDABLE_SQL + " OR "
    "(o.state IS NULL AND NOT EXISTS (SELECT 1 FROM in_flight AS s "
    "WHERE s.first <= m.line AND s.last >= m.line))) "
    "ORDER BY m.line LIMIT ?"
)
#: The first ``?`` rows after line ``?``, where no row has an outcome yet.
_CHUNK_FRESH = (
    "SELECT line, address, text, subject, client_id, params FROM messages "
    "WHERE line > ? ORDER BY line LIMIT ?"
)
#: The line of the ``?2 + 1``-th row after line ``?1``: the rows after ``?1`` run
#: without a gap up to it when it is ``?1 + ?2 + 1`` (read from the table's keys, a
#: step a row skipped: no column of theirs is read).
_NTH_LINE = "SELECT line FROM messages WHERE line > ? ORDER BY line LIMIT 1 OFFSET ?"
#: The rows of ``_CHUNK_FRESH`` when their lines are known to follow one another:
#: without the line and the parameters (NULL in nearly every row; found through the
#: partial index ``messages_params``). Python's sqlite3 gives up the interpreter
#: for every column it reads: two columns fewer a row.
_FRESH_FIELDS = (
    "SELECT address, text, subject, client_id FROM messages "
    "WHERE line > ? ORDER BY line LIMIT ?"
)
_FRESH_PARAMS = (
    "SELECT line, params FROM messages WHERE line > ? AND line <= ? AND params IS NOT NULL"
)

# A result's outcome row: written once for a message marked in a span (it has none
# yet), over the row of one marked by its row (sent before: not_sent, resent).
_UPSERT = (
    " ON CONFLICT (line) DO UPDATE SET state = excluded.state, code = excluded.code, "
    "provider_id = excluded.provider_id, updated_at = excluded.updated_at"
)
_RESULT = (
    "INSERT INTO outcomes (state, code, provider_id, updated_at, line) "
    "VALUES (?, ?, ?, ?, ?)" + _UPSERT
)
#: The same for an ``ok`` result: three values bound a row, not five.
_RESULT_OK = (
    "INSERT INTO outcomes (state, code, provider_id, updated_at, line) "
    f"VALUES ('{State.ACCEPTED}', '{Code.OK}', ?, ?, ?)" + _UPSERT
)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

#: Ok results of consecutive lines from ``?3``: ``?2`` their provider ids (a JSON array).
#: (``WHERE true``: SQLite's parser needs it before an upsert's ON CONFLICT.)
_RESULTS_OK = (
    "INSERT INTO outcomes (line, state, code, provider_id, updated_at) "
    f"SELECT ?3 + j.key, '{State.ACCEPTED}', '{Code.OK}', j.value, ?1 "
    "FROM json_each(?2) AS j WHERE true" + _UPSERT
)

#: A span in flight whose every line has its outcome row now: nothing in it is in
#: flight by the span any more. (Outcome rows exist only for lines of ``messages``,
#: so as many rows as the span has lines is all of them.)
_DONE = (
    "last - first + 1 <= (SELECT COUNT(*) FROM outcomes AS o "
    "WHERE o.line BETWEEN in_flight.first AND in_flight.last)"
)
#: Those starting at or before line ``?``, deleted (after results are written).
_SPANS_DONE = "DELETE FROM in_flight WHERE first <= ? AND " + _DONE


def _settle_in_flight_rows(
    db: sqlite3.Connection,
    state: str,
    code: Optional[str],
    reason: Optional[str],
    now: float,
    lines: Optional[Sequence[int]] = None,
) -> int:
    """Move the rows ``in_flight`` (those among ``lines``, or all) to ``state``.

    Both kinds: outcome rows in flight are updated, and the lines of the spans in
    flight that have no outcome row get one; the spans go. A span reaching past
    ``lines`` (none does: a chunk's marks lie within it) keeps its other lines in
    flight, by outcome rows of their own.
    """
    query = "UPDATE outcomes SET state = ?, code = ?, reason = ?, updated_at = ? WHERE "
    spans = "SELECT first, last FROM in_flight"
    if lines is None:
        moved = db.execute(
            query + "state = ?", (state, code, reason, now, State.IN_FLIGHT)
        ).rowcount
        first, last = 0, 0
        found = db.execute(spans).fetchall()
    else:
        first, last = lines[0], lines[-1]
        moved = db.execute(
            query + "line BETWEEN ? AND ? AND state = ?",
            (state, code, reason, now, first, last, State.IN_FLIGHT),
        ).rowcount
        found = db.execute(spans + " WHERE first <= ? AND last >= ?", (last, first)).fetchall()
    fill = (
        "INSERT INTO outcomes (line, state, code, reason, updated_at) "
        "SELECT m.line, ?, ?, ?, ? FROM messages AS m WHERE m.line BETWEEN ? AND ? "
        "AND NOT EXISTS (SELECT 1 FROM outcomes AS o WHERE o.line = m.line)"
    )
    for a, b in found:
        if lines is None:
            moved += db.execute(fill, (state, code, reason, now, a, b)).rowcount
            continue
        moved += db.execute(
            fill, (state, code, reason, now, max(a, first), min(b, last))
        ).rowcount
        for lo, hi in ((a, first - 1), (last + 1, b)):  # outside ``lines``: still in flight
            if lo <= hi:
                db.execute(fill, (State.IN_FLIGHT, None, None, now, lo, hi))
        db.execute("DELETE FROM in_flight WHERE first = ?", (a,))
    if lines is None:
        db.execute("DELETE FROM in_flight")
    return moved


class _Sending(_JournalFile):
    """The send loop's reads and writes: recovery, chunks, marks and results."""

    def recover(
        self, *, resend_unknown: bool = False, resend_unknown_without_ids: bool = False
    ) -> dict[str, int]:
        """Settle what a previous run left: call once before sending; returns counts.

        Rows ``in_flight`` (the previous process died with their request out) become
        ``unknown``. With ``resend_unknown`` every ``unknown`` row goes back to
        ``pending``: the user accepts that some recipients may get a second SMS (a
        platform that refuses repeated clientIds refuses those it has, since a
        message is resent with the clientId it went out with).

        Recovering is what a sender does first, so a journal opened without the
        sender's lock (``lock=False``, ``open_journal``'s default) takes it here,
        and keeps it until it is closed: another process's rows ``in_flight`` are
        its requests on the wire, not a crash's leftovers.

        Raises:
            JournalLocked: another process holds the sender's lock (it is sending).
            JournalIdsNotRecorded: ``resend_unknown`` and some unknown messages went
                out before the journal recorded clientIds (a journal migrated from
                schema 1): a resend would carry a new id. Nothing is changed.
                ``resend_unknown_without_ids`` (which implies ``resend_unknown``)
                resends them all the same.
        """
        if self._lock_file is None and not self._marked_unclean:
            self._take_lock()
            self._mark_unclean()
        resend_unknown = resend_unknown or resend_unknown_without_ids
        now = time.time()
        with self._transaction() as db:
            lost = _settle_in_flight_rows(
                db, State.UNKNOWN, Code.UNKNOWN, "in flight when the sender stopped", now
            )
            resent = 0
            if resend_unknown and not resend_unknown_without_ids:
                unrecorded = [
                    int(r[0])
                    for r in db.execute(
                        "SELECT o.line FROM outcomes AS o JOIN ids_not_recorded AS n "
                        "ON n.line = o.line WHERE o.state = ? ORDER BY o.line",
                        (State.UNKNOWN,),
                    )
                ]
                if unrecorded:  # raised inside the transaction: it is rolled back
                    raise JournalIdsNotRecorded(self.path, unrecorded)
            if resend_unknown:
                resent = db.execute(
                    "UPDATE outcomes SET state = ?, reason = ?, updated_at = ? WHERE state = ?",
                    (State.PENDING, "unknown: sent again (resend_unknown)", now, State.UNKNOWN),
                ).rowcount
        if lost:
            log.warning("journal %s: %d messages were in flight; now unknown", self.path, lost)
        return {"in_flight_to_unknown": lost, "unknown_to_pending": resent}

    def lease_deadline(self) -> float:
        """The ``time.monotonic()`` moment until which this sender holds its claims.

        A journal in one file is claimed whole by the sender's lock for as long as
        it is open: ``math.inf``. (A shared journal's claims have a lease, renewed
        as it marks; the send hook refuses to let a request leave without enough of
        it left.)
        """
        return math.inf

    def fit_lease(self, request_time: float) -> None:
        """Make the claims outlast a request of ``request_time`` seconds.

        Nothing to do in one file: its claim (the lock) lasts while it is open.
        """

    def release(self) -> None:
        """Un-claim the rows this sender read and did not send (end of a run).

        Nothing to do in one file: rows are not reserved, the lock is the claim.
        """

    def next_chunk(self, size: int, *, after: int = 0) -> tuple[list[int], list[Message]]:
        """The next up to ``size`` sendable rows after line ``after``, as (lines, messages).

        Empty lists when there are none. Rows are in input order.
        """
        with self._mutex:
            db = self._db
            # Past the last line with an outcome row or a mark every message is
            # pending: read there without looking each one up in ``outcomes`` (a
            # fresh run's every chunk but the first).
            settled = int(db.execute(
                "SELECT MAX(COALESCE((SELECT MAX(line) FROM outcomes), 0), "
                "COALESCE((SELECT MAX(last) FROM in_flight), 0))"
            ).fetchone()[0])
            rows = (
                db.execute(_CHUNK_SETTLED, (after, settled, size)).fetchall()
                if settled > after else []
            )
            fresh: list[Any] = []
            params: dict[int, str] = {}
            start = max(after, settled)
            if len(rows) < size:
                want = size - len(rows)
                high = int(db.execute("SELECT MAX(line) FROM messages").fetchone()[0] or 0)
                count = min(want, high - start)
                nth = (
                    db.execute(_NTH_LINE, (start, count - 1)).fetchone() if count > 0 else None
                )
                if nth is not None and nth[0] == start + count:
                    # Lines start+1 .. start+count, every one: known without reading them.
                    fresh = db.execute(_FRESH_FIELDS, (start, count)).fetchall()
                    params = dict(db.execute(_FRESH_PARAMS, (start, start + count)).fetchall())
                elif count > 0:
                    rows += db.execute(_CHUNK_FRESH, (start, want)).fetchall()
        loads = json.loads
        made = self.made_id
        new = tuple.__new__  # Message's own constructor, without its Python frame
        lines = [r[0] for r in rows]
        messages = [
            new(Message, (
                r[1], r[2], r[3], made(r[0]) if r[4] is None else r[4],
                None if r[5] is None else loads(r[5]),
            ))
            for r in rows
        ]
        if fresh:
            first = start + 1
            lines += range(first, first + len(fresh))
            messages += [
                new(Message, (
                    r[0], r[1], r[2], made(line) if r[3] is None else r[3],
                    None if line not in params else loads(params[line]),
                ))
                for line, r in enumerate(fresh, first)
            ] if params else [
                new(Message, (r[0], r[1], r[2], made(line) if r[3] is None else r[3], None))
                for line, r in enumerate(fresh, first)
            ]
        return lines, messages

    def mark_in_flight(self, lines: Sequence[int]) -> None:
        """Mark a chunk ``in_flight`` and commit: call before handing it to the client.

        ``lines`` must be consecutive lines one ``next_chunk()`` gave (ascending);
        the sender's lock guarantees no other process changed them since.
        """
        if lines:
            self.advance(lines, ())

    def advance(
        self,
        in_flight: Sequence[int],
        finished: Iterable[tuple[Sequence[int], Sequence[SendResult]]],
    ) -> dict[str, int]:
        """In one transaction: write ``finished`` results, mark ``in_flight`` lines.

        What a sender does before a request leaves: the results of requests that
        ended since the last commit, and the next lines to go out, one commit
        (one fsync with ``synchronous=FULL``) for both. Returns the result counts.
        """
        now = time.time()
        counts: dict[str, int] = {}
        with self._transaction() as db:
            written = 0
            for lines, results in finished:
                for state, n in self._write_results(db, lines, results, now).items():
                    counts[state] = counts.get(state, 0) + n
                if lines:
                    written = max(written, max(lines))
            if written:
                db.execute(_SPANS_DONE, (written,))
            if in_flight:
                self._mark(db, in_flight, now)
        return counts

    def _mark(self, db: sqlite3.Connection, lines: Sequence[int], now: float) -> None:
        first, last = lines[0], lines[-1]
        # Lines sent before (not_sent, or unknown made pending) have outcome rows:
        # set back in flight. The others, without one, are in flight by the span's
        # row: one row for the whole span, whatever its length.
        changed = db.execute(
            "UPDATE outcomes SET state = ?, updated_at = ? "
            f"WHERE line BETWEEN ? AND ? AND state IN {_SENDABLE_SQL}",
            (State.IN_FLIGHT, now, first, last),
        ).rowcount
        # Spans done (results written outside ``advance``) go: spans stay disjoint.
        db.execute(
            "DELETE FROM in_flight WHERE first <= ? AND last >= ? AND " + _DONE, (last, first)
        )
        row = db.execute(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM messages AS m WHERE m.line BETWEEN ?1 "
            "AND ?2), (SELECT COUNT(*) FROM in_flight AS s WHERE s.first <= ?2 AND "
            "s.last >= ?1) FROM outcomes AS o WHERE o.line BETWEEN ?1 AND ?2", (first, last)
        ).fetchone()
        # Lines of the span without an outcome row; none if a span in flight already
        # holds some of them (spans are disjoint): then the count below refuses.
        bare = int(row[1]) - int(row[0]) if not row[2] else 0
        if bare:
            db.execute(
                "INSERT INTO in_flight (first, last, updated_at) VALUES (?, ?, ?)",
                (first, last, now),
            )
        changed += bare
        if changed != len(lines):  # pragma: no cover - only if the lock was bypassed
            raise JournalError(
                f"journal {self.path}: {changed} rows would go in flight, expected "
                f"{len(lines)}; is another process sending with it?"
            )

    def record_results(self, lines: Sequence[int], results: Sequence[SendResult]) -> dict[str, int]:
        """Write a chunk's results (the client's, in input order) in one transaction.

        ``ok`` -> accepted, ``unknown`` -> unknown, ``not-sent`` -> not_sent, any other
        code -> rejected; except that a result the client made up for a request the
        platform refused *as a whole* (``error-auth``, ``error-syntax`` as a single
        line: its ``error`` is a ``RequestRejected``), and a message's own line with
        an account stop (``error-insufficient-balance``, ``error-account-locked``,
        ``error-system-blocked``, ``error-auth``: the account could not send, the
        message was not processed) -> not_sent, code kept: sending it again after a
        fix (a top-up) is safe.
        Returns how many rows went to each state.
        """
        with self._transaction() as db:
            counts = self._write_results(db, lines, results, time.time())
            if lines:
                db.execute(_SPANS_DONE, (max(lines),))
            return counts

    def _write_results(
        self,
        db: sqlite3.Connection,
        lines: Sequence[int],
        results: Sequence[SendResult],
        now: float,
    ) -> dict[str, int]:
        if len(lines) != len(results):
            raise ValueError(f"{len(lines)} lines but {len(results)} results")
        accepted = State.ACCEPTED
        # The common chunk: every result a plain ``ok`` (accepted by the one rule),
        # written without a Python step per message beyond its row.
        ok = [r[2] for r in results if type(r) is SendResult and r[0] == "ok"]
        if len(ok) == len(lines):
            if not ok:
                return {}
            ids = _dumps(ok) if lines[-1] - lines[0] == len(lines) - 1 else "\\"
            if "\\" not in ids:
                # A request's lines, one after another, and ids that JSON holds as
                # they are (no escape: read back exactly): one statement for them
                # all, the provider ids in one JSON array, no values bound per row.
                db.execute(_RESULTS_OK, (now, ids, lines[0]))
            else:
                db.executemany(_RESULT_OK, zip(ok, [now] * len(ok), lines))
            return {accepted: len(ok)}
        counts: dict[str, int] = {}
        params = []
        earlier: list[tuple[int, str]] = []
        state_of = result_state
        for line, r in zip(lines, results):
            if r is None:  # defensive: a result the client never filled
                state, code, provider_id = State.UNKNOWN, Code.UNKNOWN, None
            else:
                code = r[0]
                provider_id = r[2]
                # The one rule (``result_state``), shared with --results and the summary.
                state = accepted if code == "ok" else state_of(r)
                if (
                    code == Code.ERROR_ID_NOT_UNIQUE
                    and state == State.REJECTED
                    and not refused_whole(r)
                    and r[1] == self.made_id(line)
                ):
                    # Its own reply line, for the id the journal made: accepted
                    # earlier if the journal had it in flight or unknown (checked below).
                    earlier.append((line, code))
                    continue
            counts[state] = counts.get(state, 0) + 1
            params.append((state, code, provider_id, now, line))
        db.executemany(_RESULT, params)
        for line, code in earlier:
            state = State.ACCEPTED_EARLIER
            if not db.execute(
                "UPDATE outcomes SET state = ?, code = ?, provider_id = NULL, reason = ?, "
                # (or already recorded so: the same results may be written twice)
                "updated_at = ? WHERE line = ? AND (code = ? OR state = ?) AND EXISTS "
                "(SELECT 1 FROM messages AS m WHERE m.line = outcomes.line "
                "AND m.client_id IS NULL)",
                (state, code, "the platform had this clientId: accepted by an earlier "
                 "send whose outcome was unknown", now, line, Code.UNKNOWN, state),
            ).rowcount:
                state = State.REJECTED
                db.execute(_RESULT, (state, code, None, now, line))
            counts[state] = counts.get(state, 0) + 1
        return counts

    def record_invalid(self, line: int, reason: str) -> None:
        """Mark one message ``invalid``: it cannot be encoded as given and is never sent."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outcomes (line, state, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (line) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason, updated_at = excluded.updated_at",
                (line, State.INVALID, reason, time.time()),
            )

    def settle_in_flight(
        self, lines: Sequence[int], state: str, *, code: Optional[str], reason: Optional[str]
    ) -> int:
        """Move a chunk's rows still ``in_flight`` to ``state``; returns how many moved.

        For a send that raised: back to ``pending`` when certainly nothing left (bad
        input found before sending), or ``unknown`` when the outcome is not known.
        """
        if not lines:
            return 0
        with self._transaction() as db:
            return _settle_in_flight_rows(db, state, code, reason, time.time(), lines)
