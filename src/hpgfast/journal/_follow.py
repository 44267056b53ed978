"""Following delivery statuses: polling what is not final, recording pushed reports.

Strategy: a status arrives after the send, asked for (``follow``: the ids not final
yet, polled with backoff) or pushed by the platform (``record_reports``, what the
receiver got); both go through ``record_statuses``, which records only changes and
never replaces a final status. ``follow`` works without a journal too (given
provider ids): the command line's ``hpgfast status --follow``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Optional

from .._records import StatusResult
from .._wire import Code
from ..exceptions import HPGError
from ._schema import FINAL_STATUS_CODES

__all__ = ["FOLLOW_BATCH", "FollowSummary", "follow"]


def _no_tick(n: int, note: str) -> None:
    pass


def _chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    it = iter(items)
    while block := list(islice(it, size)):
        yield block



@dataclass
class FollowSummary:
    """What a ``follow`` run saw: rounds, changes, the ids still open."""

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
    journal: Any = None,
    provider_ids: Sequence[str] = (),
    deadline: float = 3600.0,
    interval: float = 1.0,
    max_interval: float = 60.0,
    once: bool = False,
    tick: Optional[Callable[[int, str], None]] = None,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowSummary:
    """Poll the ids that are not final, with backoff, until all are final or ``deadline``.

    The ids come from the journal (accepted messages without a final status) or from
    ``provider_ids``. The wait between rounds starts at ``interval`` and doubles up
    to ``max_interval`` while a round brings no change; a change resets it. With a
    journal every change is recorded (status, its time, its reason, ``poll``).
    ``once`` makes a single round.
    """
    outcome = FollowSummary()
    tick = tick or _no_tick
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
            for block in _chunked(ids, FOLLOW_BATCH):
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


class _Following:
    """``Journal.follow`` and ``Journal.record_reports``: a mixin of both engines."""

    def follow(
        self,
        client: Any,
        *,
        deadline: float = 3600.0,
        interval: float = 1.0,
        max_interval: float = 60.0,
        once: bool = False,
        progress: Optional[Callable[[int, str], None]] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> FollowSummary:
        """Poll the delivery status of every accepted message not final yet, until
        all are final or ``deadline`` seconds passed; each change is recorded.

        Through ``client`` (a ``Client``; its ``final_statuses`` say which statuses
        are final, as do the journal's). The wait between rounds starts at
        ``interval`` and doubles up to ``max_interval`` while a round brings no
        change. ``once`` makes a single round. A configuration failure stops the
        run (``FollowSummary.error``). Read the statuses with ``by_key``,
        ``by_line``, ``rows`` or ``summary()["statuses"]``; the changes with
        ``history``.
        """
        return follow(
            client, journal=self, deadline=deadline, interval=interval,
            max_interval=max_interval, once=once, tick=progress, sleep=sleep,
        )

    def record_reports(self, reports: Iterable[StatusResult]) -> int:
        """Record delivery reports the platform pushed (``source = "push"``); returns
        how many rows changed.

        ``reports`` are status records (``StatusResult``: code, provider id,
        status, time, reason), as ``hpgfast.receiver`` hands them over; a report
        that repeats the status held, or comes after a final one, changes nothing.
        """
        changed: int = self.record_statuses(reports, source="push")  # type: ignore[attr-defined]
        return changed
