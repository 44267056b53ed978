"""Reading a PostgreSQL journal, and recording delivery statuses in it.

Strategy: the SQLite journal's readings (``_reading``, ``_statuses``), the same
shapes row for row, so that a report, the receiver or a caller's code reads either
engine alike. Rows are read in blocks of 10,000 (one statement each, the connection
free between blocks); statuses are written as pipelined statements, one round trip
for a batch, and a final status is never replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional

from .._records import StatusResult
from .._wire import Code
from ._pg_conn import BATCH, _count, _PgConnection
from ._pg_schema import NOW
from ._reading import ROW_COLUMNS
from ._schema import FINAL_STATUS_CODES, STATES, State

#: ``by_line`` and ``by_key``: the report's columns and the caller's key.
_ROW = ROW_COLUMNS if "key" in ROW_COLUMNS else (*ROW_COLUMNS, "key")


class _PgReading(_PgConnection):
    """Counts, summaries, rows, costs; delivery statuses and their history."""

    def open_provider_ids(self) -> list[str]:
        """Provider ids of accepted messages whose status is not final yet."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT provider_id FROM outcomes WHERE state = %s AND provider_id IS NOT "
                f"NULL AND {self._not_final} ORDER BY line",
                (State.ACCEPTED,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def record_statuses(self, results: Iterable[StatusResult], *, source: str = "poll") -> int:
        """Record delivery statuses (from STATUS replies or pushes); returns rows changed.

        Only ``ok`` answers and the final ``error-provider-id-unknown`` are recorded;
        a status equal to the one held is not a change, and a final status is never
        replaced. Each change is appended to ``status_history`` with ``source``.
        The statements go in one pipeline: one round trip, in order.
        """
        params = []
        for r in results:
            code, provider_id, status, when, reason = r[:5]
            if provider_id is None:
                continue
            if code != Code.OK:
                if code not in FINAL_STATUS_CODES:
                    continue
                status, when, reason = code, None, None
            stamp = None if when is None else when.isoformat(sep=" ")
            params.append((status, stamp, reason or None, source, provider_id, status, stamp))
        if not params:
            return 0
        with self._transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE outcomes SET status = %s, status_time = %s, reason = %s, "
                f"status_source = %s, updated_at = {NOW} WHERE provider_id = %s "
                f"AND state = '{State.ACCEPTED}' AND (status IS DISTINCT FROM %s "
                "OR status_time IS DISTINCT FROM %s) AND " + self._not_final,
                params,
            )
            return max(cursor.rowcount, 0)

    def history(self, line: Optional[int] = None) -> list[tuple[Any, ...]]:
        """Status changes ``(line, provider_id, status, status_time, reason, source,
        recorded_at)`` in the order recorded, for one line or all."""
        query = (
            "SELECT line, provider_id, status, status_time, reason, source, recorded_at "
            "FROM status_history"
        )
        with self._using() as conn:
            if line is None:
                rows = conn.execute(query + " ORDER BY id").fetchall()
            else:
                rows = conn.execute(query + " WHERE line = %s ORDER BY id", (line,)).fetchall()
        return [(int(r[0]), *r[1:]) for r in rows]

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Messages per state (every state present, zeros included)."""
        counts = dict.fromkeys(STATES, 0)
        with self._using() as conn:
            for state, n in conn.execute("SELECT state, COUNT(*) FROM outcomes GROUP BY state"):
                counts[str(state)] = counts.get(str(state), 0) + int(n)
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts by state, rejections by code, delivery statuses, history size."""
        with self._using() as conn:
            by_code = {
                str(code): int(n)
                for code, n in conn.execute(
                    "SELECT code, COUNT(*) FROM outcomes WHERE state = %s GROUP BY code "
                    "ORDER BY COUNT(*) DESC, code",
                    (State.REJECTED,),
                )
            }
            # Keys are the statuses themselves (data): the accepted messages without
            # one yet are counted apart, never under a label.
            statuses = {
                str(status): int(n)
                for status, n in conn.execute(
                    "SELECT status, COUNT(*) FROM outcomes WHERE state = %s "
                    "AND status IS NOT NULL GROUP BY status ORDER BY COUNT(*) DESC, status",
                    (State.ACCEPTED,),
                )
            }
            changes = _count(conn, "SELECT COUNT(*) FROM status_history")
            total = _count(conn, "SELECT COUNT(*) FROM messages")
            # A journal filled by ``add()`` has no input to load: it is whole as it
            # is. Only one whose ``load_input`` began (it records the input's
            # fingerprint first) can be loaded part way.
            loading = _count(
                conn, "SELECT COUNT(*) FROM meta WHERE key LIKE 'input:%'"
            ) > 0
        counts = self.counts()
        loaded = self.loaded
        return {
            "messages": total,
            "loaded": total if loaded is None and not loading else loaded,
            "states": counts,
            "rejected_by_code": by_code,
            "statuses": statuses,
            "no_status_yet": max(counts[State.ACCEPTED] - sum(statuses.values()), 0),
            "status_changes": changes,
        }

    def rows(self, *, states: Optional[Iterable[str]] = None) -> Iterator[tuple[Any, ...]]:
        """Every row (``ROW_COLUMNS``), in input order, read in blocks of 10,000."""
        wanted = None if states is None else list(states)
        after = 0
        columns = ", ".join(ROW_COLUMNS)
        while True:
            query = f"SELECT {columns} FROM journal WHERE line > %s"
            args: list[Any] = [after]
            if wanted is not None:
                query += " AND state = ANY(%s)"
                args.append(wanted)
            query += f" ORDER BY line LIMIT {BATCH}"
            with self._using() as conn:
                block = conn.execute(query, args).fetchall()
            if not block:
                return
            for row in block:
                yield (int(row[0]), *row[1:])
            after = block[-1][0]

    def by_line(self, line: int) -> Optional[dict[str, Any]]:
        """One row as a dict (``ROW_COLUMNS`` and ``key``), or None."""
        return self._one("line = %s", line)

    def by_key(self, key: str) -> Optional[dict[str, Any]]:
        """The row ``add()`` put under the caller's ``key``, as ``by_line`` gives it, or None."""
        return self._one("key = %s", key)

    def _one(self, where: str, value: Any) -> Optional[dict[str, Any]]:
        with self._using() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_ROW)} FROM journal WHERE {where}", (value,)
            ).fetchone()
        if row is None:
            return None
        found = dict(zip(_ROW, row))
        line = found["line"] = int(found["line"])
        if found["client_id"] is None:
            # The clientId it goes out with: the input's, else the one the journal
            # made (as ``report --csv`` and ``--results`` show it).
            found["client_id"] = self.made_ids_between(line, line).get(line)
        return found

    def cost_totals(self) -> dict[str, Any]:
        """Segments recorded in ``costs``: in all, by encoding and by state.

        The same shape as the SQLite journal's (see ``Journal.cost_totals``).
        """
        by_state = {state: {"messages": 0, "segments": 0} for state in STATES}
        by_encoding: dict[str, dict[str, int]] = {}
        with self._using() as conn:
            for state, n, segments in conn.execute(
                f"SELECT COALESCE(o.state, '{State.PENDING}'), COUNT(*), SUM(c.segments) "
                "FROM costs AS c LEFT JOIN outcomes AS o ON o.line = c.line GROUP BY 1"
            ):
                by_state[str(state)] = {"messages": int(n), "segments": int(segments or 0)}
            for encoding, n, segments in conn.execute(
                "SELECT encoding, COUNT(*), SUM(segments) FROM costs GROUP BY encoding "
                "ORDER BY encoding"
            ):
                by_encoding[str(encoding)] = {"messages": int(n), "segments": int(segments or 0)}
            changed = _count(conn, "SELECT COUNT(*) FROM costs WHERE transliterated <> 0")
        return {
            "messages": sum(v["messages"] for v in by_encoding.values()),
            "segments": sum(v["segments"] for v in by_encoding.values()),
            "transliterated": changed,
            "by_encoding": by_encoding,
            "by_state": by_state,
        }

    def costs_between(self, first: int, last: int) -> dict[int, tuple[int, str, bool]]:
        """``{line: (segments, encoding, transliterated)}`` for lines ``first..last``."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT line, segments, encoding, transliterated FROM costs "
                "WHERE line BETWEEN %s AND %s",
                (first, last),
            ).fetchall()
        return {int(r[0]): (int(r[1]), str(r[2]), bool(r[3])) for r in rows}

    def made_ids_between(self, first: int, last: int) -> dict[int, str]:
        """``{line: clientId}`` for lines ``first..last`` sent with an id the journal made."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT line FROM messages WHERE line BETWEEN %s AND %s AND client_id IS NULL",
                (first, last),
            ).fetchall()
        return {int(r[0]): self.made_id(int(r[0])) for r in rows}

    def integrity_check(self) -> str:
        """``"ok"`` when every message has its outcome and each cost its message; else why not."""
        checks = (
            ("messages without an outcome row",
             "SELECT COUNT(*) FROM messages AS m WHERE NOT EXISTS "
             "(SELECT 1 FROM outcomes AS o WHERE o.line = m.line)"),
            ("costs without a message",
             "SELECT COUNT(*) FROM costs AS c WHERE NOT EXISTS "
             "(SELECT 1 FROM messages AS m WHERE m.line = c.line)"),
            ("history without a message",
             "SELECT COUNT(*) FROM status_history AS h WHERE NOT EXISTS "
             "(SELECT 1 FROM messages AS m WHERE m.line = h.line)"),
        )
        problems = []
        with self._using() as conn:
            for what, query in checks:
                n = _count(conn, query)
                if n:
                    problems.append(f"{n} {what}")
        return "; ".join(problems) or "ok"
