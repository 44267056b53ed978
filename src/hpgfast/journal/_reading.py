"""Reading a journal: counts, summaries, rows, costs, for reports and the command line.

Strategy: reads only, apart from the writes, so that a report needs nothing but
this and the file. Each read holds the journal's mutex, since one connection serves
all of a process's threads; another process may read while a sender runs (in WAL
mode readers do not block the writer). Rows are read in blocks by line, never all at
once: a journal of millions of messages is reported on in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional

from ._file import _JournalFile
from ._schema import STATE_SQL, STATES, State

#: Columns of ``rows()`` (and of ``hpgfast report --csv``).
ROW_COLUMNS = (
    "line",
    "address",
    "text",
    "subject",
    "client_id",
    "params",
    "state",
    "provider_id",
    "code",
    "status",
    "status_time",
    "reason",
    "updated_at",
)

#: Rows of ``outcomes``, and of each state (in ``STATES`` order), in one pass.
_COUNTS_BY_STATE = "SELECT COUNT(*), " + ", ".join(
    f"SUM(state = '{state}')" for state in STATES
) + " FROM outcomes"

#: Lines in flight by a span's row (without an outcome row of their own).
_IN_SPANS = (
    "SELECT COALESCE(SUM(s.last - s.first + 1 - (SELECT COUNT(*) FROM outcomes AS o "
    "WHERE o.line BETWEEN s.first AND s.last)), 0) FROM in_flight AS s"
)

#: The keys of ``by_line()`` and ``by_key()``: the row and the caller's key.
_ROW_DICT = (*ROW_COLUMNS, "key")


class _Reading(_JournalFile):
    """What the journal holds, read for reports: counts, summary, rows, costs."""

    def counts(self) -> dict[str, int]:
        """Messages per state (every state present, zeros included)."""
        counts = dict.fromkeys(STATES, 0)
        with self._mutex:
            db = self._db
            total = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            # One pass that sums by the known states (no sort of every row, as a
            # GROUP BY without an index on state takes); a state it does not know
            # (none is ever written) is counted by the GROUP BY after all.
            row = db.execute(_COUNTS_BY_STATE).fetchone()
            seen = int(row[0])
            for state, n in zip(STATES, row[1:]):
                counts[state] = int(n or 0)
            if sum(counts.values()) != seen:
                counts = dict.fromkeys(STATES, 0)
                for state, n in db.execute(
                    "SELECT state, COUNT(*) FROM outcomes GROUP BY state"
                ):
                    counts[str(state)] = counts.get(str(state), 0) + int(n)
            spans = int(db.execute(_IN_SPANS).fetchone()[0])
        counts[State.IN_FLIGHT] += spans
        counts[State.PENDING] += total - seen - spans
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts by state, rejections by code, delivery statuses, history size."""
        with self._mutex:
            db = self._db
            by_code = {
                str(code): int(n)
                for code, n in db.execute(
                    "SELECT code, COUNT(*) FROM outcomes WHERE state = ? GROUP BY code "
                    "ORDER BY COUNT(*) DESC, code",
                    (State.REJECTED,),
                )
            }
            # Only the rows with a status are sorted (none, after a run that polled
            # none); the accepted rows without one are the rest of the accepted.
            known = [
                (None if status is None else str(status), int(n))
                for status, n in db.execute(
                    "SELECT status, COUNT(*) FROM outcomes WHERE state = ? "
                    "AND status IS NOT NULL GROUP BY status",
                    (State.ACCEPTED,),
                )
            ]
            changes = int(db.execute("SELECT COUNT(*) FROM status_history").fetchone()[0])
            total = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            counts = self.counts()
            # A journal filled by ``add()`` has no input to load: it is whole as it
            # is. Only one whose ``load_input`` began (it records the input's
            # fingerprint first) can be loaded part way.
            loading = db.execute(
                "SELECT 1 FROM meta WHERE key LIKE 'input:%' LIMIT 1"
            ).fetchone() is not None
        none_yet = counts[State.ACCEPTED] - sum(n for _, n in known)
        # As ``ORDER BY COUNT(*) DESC, status``.
        known.sort(key=lambda item: (-item[1], item[0] or ""))
        loaded = self.loaded
        return {
            "messages": total,
            "loaded": total if loaded is None and not loading else loaded,
            "states": counts,
            "rejected_by_code": by_code,
            # Keys are the statuses themselves (data): the accepted messages
            # without one yet are counted apart, never under a label.
            "statuses": {str(status): n for status, n in known},
            "no_status_yet": max(none_yet, 0),
            "status_changes": changes,
        }

    def rows(self, *, states: Optional[Iterable[str]] = None) -> Iterator[tuple[Any, ...]]:
        """Every row (``ROW_COLUMNS``), in input order, read in blocks of 10,000."""
        wanted = None if states is None else tuple(states)
        after = 0
        columns = ", ".join(ROW_COLUMNS)
        while True:
            query = f"SELECT {columns} FROM journal WHERE line > ?"
            args: list[Any] = [after]
            if wanted is not None:
                query += f" AND state IN ({', '.join('?' for _ in wanted)})"
                args.extend(wanted)
            query += " ORDER BY line LIMIT 10000"
            with self._mutex:
                block = self._db.execute(query, args).fetchall()
            if not block:
                return
            yield from block
            after = block[-1][0]

    def by_line(self, line: int) -> Optional[dict[str, Any]]:
        """One message and its outcome as a dict (``ROW_COLUMNS`` and ``key``), or None.

        ``state`` is where it stands (``State``); ``provider_id`` the platform's id
        once accepted; ``code`` the platform's answer (or ``not-sent``,
        ``unknown``); ``status``, ``status_time`` its last delivery status;
        ``reason`` why (an undelivered reason, an invalid input...); ``key`` the
        caller's key given to ``add`` (None without one).
        """
        return self._row_where("line = ?", line)

    def by_key(self, key: str) -> Optional[dict[str, Any]]:
        """The message added with ``key`` (``add``), as ``by_line`` shows it; or None."""
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        return self._row_where("key = ?", key)

    def _row_where(self, where: str, value: Any) -> Optional[dict[str, Any]]:
        with self._mutex:
            row = self._db.execute(
                f"SELECT {', '.join(_ROW_DICT)} FROM journal WHERE {where}", (value,)
            ).fetchone()
        if row is None:
            return None
        found = dict(zip(_ROW_DICT, row))
        if found["client_id"] is None:
            # The clientId it goes out with: the input's, else the one the journal
            # made (as ``report --csv`` and ``--results`` show it).
            line = found["line"]
            found["client_id"] = self.made_ids_between(line, line).get(line)
        return found

    def cost_totals(self) -> dict[str, Any]:
        """Segments recorded in ``costs``: in all, by encoding and by state.

        ``{"messages": counted, "segments": n, "transliterated": messages,
        "by_encoding": {enc: {"messages", "segments"}}, "by_state": {state:
        {"messages", "segments"}}}``; ``by_state`` has every state. Accepted segments
        are what the platform bills. Messages without a ``costs`` row (a journal
        made before costs were recorded, or a text that cannot be encoded) are not
        counted: compare ``messages`` with the journal's.
        """
        by_state = {state: {"messages": 0, "segments": 0} for state in STATES}
        by_encoding: dict[str, dict[str, int]] = {}
        with self._mutex:
            db = self._db
            for state, n, segments in db.execute(
                f"SELECT {STATE_SQL}, COUNT(*), SUM(m.cost >> 2) "
                "FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line "
                "WHERE m.cost IS NOT NULL GROUP BY 1"
            ):
                by_state[str(state)] = {"messages": int(n), "segments": int(segments or 0)}
            for encoding, n, segments in db.execute(
                "SELECT encoding, COUNT(*), SUM(segments) FROM costs GROUP BY encoding "
                "ORDER BY encoding"
            ):
                by_encoding[str(encoding)] = {"messages": int(n), "segments": int(segments or 0)}
            changed = int(
                db.execute("SELECT COUNT(*) FROM costs WHERE transliterated").fetchone()[0]
            )
        return {
            "messages": sum(v["messages"] for v in by_encoding.values()),
            "segments": sum(v["segments"] for v in by_encoding.values()),
            "transliterated": changed,
            "by_encoding": by_encoding,
            "by_state": by_state,
        }

    def costs_between(self, first: int, last: int) -> dict[int, tuple[int, str, bool]]:
        """``{line: (segments, encoding, transliterated)}`` for lines ``first..last``."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT line, segments, encoding, transliterated FROM costs "
                "WHERE line BETWEEN ? AND ?",
                (first, last),
            ).fetchall()
        return {int(r[0]): (int(r[1]), str(r[2]), bool(r[3])) for r in rows}

    def made_ids_between(self, first: int, last: int) -> dict[int, str]:
        """``{line: clientId}`` for lines ``first..last`` sent with an id the journal made.

        Those without a ``client_id`` of their own, except the lines that may have
        gone out, before the journal made ids, under an id nobody recorded
        (``ids_not_recorded``): their id is not known.
        """
        with self._mutex:
            rows = self._db.execute(
                "SELECT m.line FROM messages AS m WHERE m.line BETWEEN ? AND ? "
                "AND m.client_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM ids_not_recorded AS n WHERE n.line = m.line)",
                (first, last),
            ).fetchall()
        return {int(r[0]): self.made_id(int(r[0])) for r in rows}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` when sound)."""
        with self._mutex:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
