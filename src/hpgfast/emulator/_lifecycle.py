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

``Lifecycle(field_statuses=True)`` gives digits 1 to 5 the statuses seen in the
field besides the specification's seven (see ``FIELD_LIFECYCLE``):

====== ============================================ ===========================
digit  statuses (from the time shown on)            reason of the final status
====== ============================================ ===========================
1      enqueued t0, sent t0+S, delivered t0+F,
       read t0+F+S
2      enqueued t0, sent t0+S, expired t0+F         ``not-delivered-in-time``
3      enqueued t0, sent t0+S, vp_expired t0+F      ``validity-period-over``
4      enqueued t0, sent t0+S, rejected t0+F        ``user-blocked``
5      enqueued t0, no-match-template t0+F          ``template-not-found``
       (never sent)
====== ============================================ ===========================

``status_case="upper"`` writes every status in capitals (``DELIVERED``), and
``reasons`` replaces the final reason of the digits it names (any text without
CR or LF: ``;`` and Cyrillic included).

The ``dateTime`` of a STATUS line is the time the current status began.

For push mode, ``Schedule`` keeps the status changes not yet due, in time order,
without a Python object per message: each request's accepted messages are one
batch (first providerId, acceptance time, the addresses' last bytes) in compact
arrays, and each kind of change (the first status, ``sent``, the final status,
the delayed messages' ``sent`` and final status, and ``read`` after
``delivered``) keeps a cursor into them. Acceptance times only grow, so every
kind's changes come due in batch order, and the next change overall is the
earliest of the cursors' heads: finding what is due costs nothing for messages
not yet due. Batches every cursor has passed are dropped.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

from .._wire import Status

__all__ = [
    "FIELD_LIFECYCLE",
    "LIFECYCLE",
    "SEMICOLON_REASONS",
    "STATUS_CASES",
    "Lifecycle",
    "Schedule",
    "Timing",
    "checked_reasons",
    "status_at",
    "transitions",
]

STATUS_CASES = ("lower", "upper")


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

#: The statuses seen in the field (besides the specification's seven) that
#: ``field_statuses`` plays.
READ = "read"
EXPIRED = "expired"
VP_EXPIRED = "vp_expired"
REJECTED = "rejected"
NO_MATCH_TEMPLATE = "no-match-template"

#: ``LIFECYCLE`` with ``field_statuses``: digit 1 is ``read`` after ``delivered``.
FIELD_LIFECYCLE: dict[str, tuple[str, str]] = {
    **LIFECYCLE,
    "1": (READ, ""),
    "2": (EXPIRED, "not-delivered-in-time"),
    "3": (VP_EXPIRED, "validity-period-over"),
    "4": (REJECTED, "user-blocked"),
    "5": (NO_MATCH_TEMPLATE, "template-not-found"),
}

#: ``semicolon_reasons``: final reasons holding ``;``, as some platforms write them.
SEMICOLON_REASONS: dict[str, str] = {
    "6": "absent;subscriber",
    "7": "platform;error",
    "9": "cancelled;by-operator",
}

#: How a message reaches its final status.
_NORMAL, _DELAYED, _DIRECT = 0, 1, 2


class _Rule(NamedTuple):
    path: int  # _NORMAL: enqueued, sent, final; _DELAYED: delayed, sent, final;
    # _DIRECT: enqueued, final (never sent)
    final: str
    reason: str
    then: str  # a status after the final one (``read``), or ""


def checked_reasons(value: Mapping[Any, Any]) -> dict[str, str]:
    """``reasons`` as digit text -> reason: keys ``"6"`` or ``6`` (an int 0-9)."""
    out: dict[str, str] = {}
    for digit, reason in value.items():
        # An int digit reads as its text; bool is an int but no digit anyone means.
        key = (
            str(digit)
            if isinstance(digit, int) and not isinstance(digit, bool) and 0 <= digit <= 9
            else digit
        )
        if (
            not isinstance(key, str)
            or key not in LIFECYCLE
            or not isinstance(reason, str)
            or "\r" in reason
            or "\n" in reason
        ):
            raise ValueError(
                "reasons map digits 0-9 (\"6\" or 6) to text without CR or LF, "
                f"got {digit!r}: {reason!r}"
            )
        out[key] = reason
    return out


class Lifecycle:
    """The statuses one emulator plays, per last address digit (see the module doc).

    ``field_statuses`` adds ``read``, ``expired``, ``vp_expired``, ``rejected`` and
    ``no-match-template`` on digits 1 to 5; ``status_case`` is ``"lower"`` or
    ``"upper"``; ``reasons`` maps digits to the reason of their final status.
    """

    def __init__(
        self,
        *,
        field_statuses: bool = False,
        status_case: str = "lower",
        reasons: Optional[Mapping[str, str]] = None,
    ) -> None:
        if status_case not in STATUS_CASES:
            raise ValueError(f"status_case must be one of {STATUS_CASES}, got {status_case!r}")
        reasons = checked_reasons(reasons or {})
        self.field_statuses = field_statuses
        self.status_case = status_case
        table = FIELD_LIFECYCLE if field_statuses else LIFECYCLE
        case = str.upper if status_case == "upper" else str
        #: Status names as this lifecycle writes them.
        self.enqueued = case(Status.ENQUEUED)
        self.sent = case(Status.SENT)
        self.delayed = case(Status.DELAYED)
        #: Digit -> (final status, its reason), as written.
        self.table: dict[str, tuple[str, str]] = {}
        by_byte: list[Optional[_Rule]] = [None] * 256
        for digit, (final, reason) in table.items():
            reason = reasons.get(digit, reason)
            then = ""
            path = _NORMAL
            if digit == "8":
                path = _DELAYED
            elif final in (Status.CANCELLED, NO_MATCH_TEMPLATE):
                path = _DIRECT
            if final == READ:
                final, then = Status.DELIVERED, case(READ)
            self.table[digit] = (then or case(final), reason)
            by_byte[ord(digit)] = _Rule(path, case(final), reason, then)
        self._by_byte = by_byte

    def rule(self, last: int) -> _Rule:
        """The rule for an address whose last byte is ``last`` (an ASCII digit)."""
        rule = self._by_byte[last]
        if rule is None:
            raise ValueError(f"no lifecycle for address byte {last!r}")
        return rule

    def kinds(self) -> tuple[dict[int, tuple[str, str]], ...]:
        """The kinds of status change, in the order they happen to one message: last
        byte -> (status, reason) for the messages that change so; offsets in
        ``_offsets``."""
        rules = {b: r for b, r in enumerate(self._by_byte) if r is not None}
        return (
            {
                b: ((self.delayed if r.path == _DELAYED else self.enqueued), "")
                for b, r in rules.items()
            },
            {b: (self.sent, "") for b, r in rules.items() if r.path == _NORMAL},
            {b: (r.final, r.reason) for b, r in rules.items() if r.path != _DELAYED},
            {b: (self.sent, "") for b, r in rules.items() if r.path == _DELAYED},
            {b: (r.final, r.reason) for b, r in rules.items() if r.path == _DELAYED},
            {b: (r.then, "") for b, r in rules.items() if r.then},
        )

    def __repr__(self) -> str:
        return (
            f"Lifecycle(field_statuses={self.field_statuses!r}, status_case={self.status_case!r})"
        )


#: The specification's lifecycle, lower case.
STANDARD = Lifecycle()


def status_at(
    last: int, age: float, timing: Timing, lifecycle: Lifecycle = STANDARD
) -> tuple[str, float, str]:
    """(status, when it began as an offset from acceptance, reason) at ``age``.

    ``last`` is the address's last byte (an ASCII digit).
    """
    sent_after, final_after, delayed_for = timing
    path, final, reason, then = lifecycle.rule(last)
    if path == _DELAYED:
        if age < delayed_for + sent_after:
            return lifecycle.delayed, 0.0, ""
        if age < delayed_for + final_after:
            return lifecycle.sent, delayed_for + sent_after, ""
        return final, delayed_for + final_after, reason
    if age < (final_after if path == _DIRECT else sent_after):
        return lifecycle.enqueued, 0.0, ""
    if age < final_after:
        return lifecycle.sent, sent_after, ""
    if then and age >= final_after + sent_after:
        return then, final_after + sent_after, ""
    return final, final_after, reason


def transitions(
    last: int, timing: Timing, lifecycle: Lifecycle = STANDARD
) -> list[tuple[float, str, str]]:
    """Every status a message passes through: (offset from acceptance, status, reason).

    In order; a status that lasts no time (``sent_after == final_after``) is listed
    too, although STATUS never shows it.
    """
    steps = [
        (offset, table[last][0], table[last][1])
        for offset, table in zip(_offsets(timing), lifecycle.kinds())
        if last in table
    ]
    steps.sort(key=lambda step: step[0])  # stable: equal offsets keep their order
    return steps


def _offsets(timing: Timing) -> tuple[float, ...]:
    sent_after, final_after, delayed_for = timing
    return (
        0.0,
        sent_after,
        final_after,
        delayed_for + sent_after,
        delayed_for + final_after,
        final_after + sent_after,
    )


#: A status change: (providerId, status, emulator time it began, reason).
Change = tuple[int, str, float, str]


class Schedule:
    """The status changes of accepted messages not yet taken, in time order.

    Not thread-safe: the emulator holds a lock around every call. Acceptance times
    given to ``add`` must not decrease.
    """

    def __init__(self, timing: Timing, lifecycle: Lifecycle = STANDARD) -> None:
        # Only the kinds some digit has: the ``read`` kind exists with field statuses.
        kinds = [
            (offset, table) for offset, table in zip(_offsets(timing), lifecycle.kinds()) if table
        ]
        self._offsets = tuple(offset for offset, _ in kinds)
        # Per kind, a 256-entry table: last byte -> (status, reason) or None.
        self._tables = [[table.get(b) for b in range(256)] for _, table in kinds]
        self._first_pid = array("Q")
        self._time = array("d")
        self._end = array("Q")  # each batch's end in _lasts, counted from the start
        self._lasts = bytearray()
        self._base = 0  # batches dropped so far
        self._lasts_base = 0  # bytes of _lasts dropped so far
        self._cursors = [0] * len(kinds)  # per kind, the next batch (absolute index)
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
