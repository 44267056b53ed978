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
"""

from __future__ import annotations

from typing import NamedTuple

from .._wire import Status

__all__ = ["LIFECYCLE", "Timing", "status_at"]


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
