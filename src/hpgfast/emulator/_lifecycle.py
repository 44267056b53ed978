"""The delivery lifecycle the emulator plays out, on its own clock.

Strategy: nothing is stored per message but its acceptance time; a message's status
is a pure function of the last digit of its address and its age in emulator
seconds, so STATUS costs no bookkeeping and tests can predict every answer.

With ``S = sent_after``, ``F = final_after`` and ``D = delayed_for`` (emulator
seconds, defaults 1, 2 and 60), a message accepted at ``t0`` goes:

====== ============================================ ===========================
digit  statuses (from the time shown on)            reason of the final status
====== ============================================ ===========================
0-5    enqueued t0, sent t0+S, delivered t0+F
6      enqueued t0, sent t0+S, undelivered t0+F     ``unknown-subscriber``
7      enqueued t0, sent t0+S, failed t0+F          ``platform-error``
8      delayed t0, sent t0+D+S, delivered t0+D+F
9      enqueued t0, cancelled t0+F (never sent)     ``cancelled-by-operator``
====== ============================================ ===========================

The ``dateTime`` of a STATUS line is the time the current status began.

For push mode, ``Schedule`` keeps the status changes not yet due, in time order,
without a Python object per message: each request's accepted messages are one
batch (first providerId, acceptance time, the addresses' last bytes) in compact
arrays, and the five kinds of change (the first status, ``sent``, the final
status, and the delayed messages' ``sent`` and final status) each keep a cursor
into them. Acceptance times only grow, so every kind's changes come due in batch
order, and the next change overall is the earliest of the five cursors' heads:
finding what is due costs nothing for messages not yet due. Batches every cursor
has passed are dropped.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple, Optional

from .._wire import Status

__all__ = ["LIFECYCLE", "Schedule", "Timing", "status_at", "transitions"]


class Timing(NamedTuple):
    """The lifecycle's durations, in emulator seconds."""

    sent_after: float = 1.0
    final_after: float = 2.0
    delayed_for: float = 60.0


#: Last address digit -> (final status, its reason); ``8`` is delayed first.
LIFECYCLE: dict[str, tuple[str, str]] = {
    **{str(d): (Status.DELIVERED, "") for d in range(6)},
    "6": (Status.UNDELIVERED, "unknown-subscriber"),
    "7": (Status.FAILED, "platform-error"),
    "8": (Status.DELIVERED, ""),
    "9": (Status.CANCELLED, "cancelled-by-operator"),
}

_BY_BYTE = {ord(d): rule for d, rule in LIFECYCLE.items()}
_DELAYED = ord("8")
_CANCELLED = ord("9")


def status_at(last: int, age: float, timing: Timing) -> tuple[str, float, str]:
    """(status, when it began as an offset from acceptance, reason) at ``age``.

    ``last`` is the address's last byte (an ASCII digit).
    """
    sent_after, final_after, delayed_for = timing
    final, reason = _BY_BYTE[last]
    if last == _DELAYED:
        if age < delayed_for + sent_after:
            return Status.DELAYED, 0.0, ""
        if age < delayed_for + final_after:
            return Status.SENT, delayed_for + sent_after, ""
        return final, delayed_for + final_after, reason
    if age < (final_after if last == _CANCELLED else sent_after):
        return Status.ENQUEUED, 0.0, ""
    if age < final_after:
        return Status.SENT, sent_after, ""
    return final, final_after, reason


def transitions(last: int, timing: Timing) -> list[tuple[float, str, str]]:
    """Every status a message passes through: (offset from acceptance, status, reason).

    In order; a status that lasts no time (``sent_after == final_after``) is listed
    too, although STATUS never shows it.
    """
    return [
        (offset, table[last][0], table[last][1])
        for offset, table in zip(_offsets(timing), _KINDS)
        if last in table
    ]


_OTHERS = {ord(d): (Status.SENT, "") for d in "01234567"}
#: The kinds of status change, in the order they happen to one message: last
#: byte -> (status, reason) for the messages that change so.
_KINDS: tuple[dict[int, tuple[str, str]], ...] = (
    {b: ((Status.DELAYED if b == _DELAYED else Status.ENQUEUED), "") for b in _BY_BYTE},
    _OTHERS,
    {b: rule for b, rule in _BY_BYTE.items() if b != _DELAYED},
    {_DELAYED: (Status.SENT, "")},
    {_DELAYED: _BY_BYTE[_DELAYED]},
)


def _offsets(timing: Timing) -> tuple[float, ...]:
    sent_after, final_after, delayed_for = timing
    return (0.0, sent_after, final_after, delayed_for + sent_after, delayed_for + final_after)


#: A status change: (providerId, status, emulator time it began, reason).
Change = tuple[int, str, float, str]


class Schedule:
    """The status changes of accepted messages not yet taken, in time order.

    Not thread-safe: the emulator holds a lock around every call. Acceptance times
    given to ``add`` must not decrease.
    """

    def __init__(self, timing: Timing) -> None:
        self._offsets = _offsets(timing)
        # Per kind, a 256-entry table: last byte -> (status, reason) or None.
        self._tables = [[table.get(b) for b in range(256)] for table in _KINDS]
        self._first_pid = array("Q")
        self._time = array("d")
        self._end = array("Q")  # each batch's end in _lasts, counted from the start
        self._lasts = bytearray()
        self._base = 0  # batches dropped so far
        self._lasts_base = 0  # bytes of _lasts dropped so far
        self._cursors = [0] * len(_KINDS)  # per kind, the next batch (absolute index)
        self._last_time = float("-inf")

    def add(self, first_pid: int, accepted_at: float, lasts: bytes) -> None:
        """Schedule one request's accepted messages (``lasts``: each address's last byte)."""
        if not lasts:
            return
        if accepted_at < self._last_time:
            raise ValueError("acceptance times must not decrease")
        self._last_time = accepted_at
        self._first_pid.append(first_pid)
        self._time.append(accepted_at)
        self._lasts += lasts
        self._end.append(self._lasts_base + len(self._lasts))

    def __len__(self) -> int:
        """Batches some change of which is still to come."""
        return self._base + len(self._first_pid) - min(self._cursors)

    def next_due(self) -> Optional[float]:
        """The emulator time of the next change, or None when none is left."""
        head = self._head()
        return None if head is None else head[0]

    def _head(self) -> Optional[tuple[float, int, int]]:
        """(due time, providerId, kind) of the earliest kind's next batch."""
        best: Optional[tuple[float, int, int]] = None
        count = self._base + len(self._first_pid)
        base = self._base
        for kind, cursor in enumerate(self._cursors):
            if cursor < count:
                i = cursor - base
                key = (self._time[i] + self._offsets[kind], self._first_pid[i], kind)
                if best is None or key < best:
                    best = key
        return best

    def take(self, now: float, limit: int) -> list[Change]:
        """Changes due at ``now`` or before, in time order: at least ``limit`` when as
        many are due (a batch is never split, so a few more may come)."""
        out: list[Change] = []
        while len(out) < limit:
            head = self._head()
            if head is None or head[0] > now:
                break
            due, pid, kind = head
            i = self._cursors[kind] - self._base
            start = (self._end[i - 1] if i else self._lasts_base) - self._lasts_base
            table = self._tables[kind]
            for n, last in enumerate(self._lasts[start : self._end[i] - self._lasts_base]):
                rule = table[last]
                if rule is not None:
                    out.append((pid + n, rule[0], due, rule[1]))
            self._cursors[kind] += 1
        self._compact()
        return out

    def _compact(self) -> None:
        done = min(self._cursors) - self._base
        if done < 4096 or done * 2 < len(self._first_pid):
            return
        cut = self._end[done - 1] - self._lasts_base
        del self._first_pid[:done]
        del self._time[:done]
        del self._end[:done]
        del self._lasts[:cut]
        self._base += done
        self._lasts_base += cut
