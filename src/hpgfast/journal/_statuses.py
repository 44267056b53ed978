"""Delivery statuses of accepted messages: which to ask about, and what came back.

Strategy: a status arrives after the send, by polling (``hpgfast status --follow``)
or pushed to the receiver, possibly twice or out of order; it is written into the
message's outcome row (``status``, ``status_time``, ``reason``) only when it is a
change, and a final status is never replaced. Every change is also appended to
``status_history`` by a trigger (see ``_schema``), with the time it was recorded and
its source (``poll`` or ``push``). Which statuses are final is the client's setting,
so the SQL that picks the open ones is made from it when the journal is opened. The
index on provider ids is built the first time statuses are used, so the send loop
never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Optional

from .._records import StatusResult
from .._wire import Code
from ._file import _JournalFile
from ._schema import FINAL_STATUS_CODES, State

_STATUS = (
    "UPDATE outcomes SET status = ?, status_time = ?, reason = ?, status_source = ?, "
    f"updated_at = ? WHERE provider_id = ? AND state = '{State.ACCEPTED}' "
    "AND (status IS NOT ? OR status_time IS NOT ?) "
    # A final status never changes: a late push of an earlier status is not a change.
    "AND "
)


class _Statuses(_JournalFile):
    """Delivery statuses: the open provider ids, recording statuses, their history."""

    def _ensure_provider_index(self) -> None:
        # Built only when statuses are tracked: the send loop does not pay for it.
        if not self._provider_index:
            with self._mutex:
                self._db.execute(
                    "CREATE INDEX IF NOT EXISTS outcomes_provider ON outcomes(provider_id) "
                    "WHERE provider_id IS NOT NULL"
                )
            self._provider_index = True

    def open_provider_ids(self) -> list[str]:
        """Provider ids of accepted messages whose status is not final yet."""
        with self._mutex:
            rows = self._db.execute(
                # An accepted message without a provider id cannot be asked about.
                "SELECT provider_id FROM outcomes WHERE state = ? AND provider_id IS NOT "
                f"NULL AND {self._not_final} ORDER BY line",
                (State.ACCEPTED,),
            ).fetchall()
        return [r[0] for r in rows]

    def record_statuses(self, results: Iterable[StatusResult], *, source: str = "poll") -> int:
        """Record delivery statuses (from STATUS replies or pushes); returns rows changed.

        Only ``ok`` answers and the final ``error-provider-id-unknown`` are recorded;
        a status equal to the one held is not a change, and a final status is never
        replaced. Each change is appended to ``status_history`` with ``source``.
        """
        self._ensure_provider_index()
        now = time.time()
        params = []
        for r in results:
            # A record read tolerantly holds its line's bytes after these (``.raw``).
            code, provider_id, status, when, reason = r[:5]
            if provider_id is None:
                continue
            if code != Code.OK:
                if code not in FINAL_STATUS_CODES:
                    continue
                status, when, reason = code, None, None
            stamp = None if when is None else when.isoformat(sep=" ")
            params.append((status, stamp, reason or None, source, now, provider_id, status, stamp))
        if not params:
            return 0
        with self._transaction() as db:
            cursor = db.executemany(_STATUS + self._not_final, params)
            return max(cursor.rowcount, 0)

    def history(self, line: Optional[int] = None) -> list[tuple[Any, ...]]:
        """Status changes ``(line, provider_id, status, status_time, reason, source,
        recorded_at)`` in the order recorded, for one line or all."""
        query = (
            "SELECT line, provider_id, status, status_time, reason, source, recorded_at "
            "FROM status_history"
        )
        with self._mutex:
            if line is None:
                return self._db.execute(query + " ORDER BY id").fetchall()
            return self._db.execute(query + " WHERE line = ? ORDER BY id", (line,)).fetchall()
