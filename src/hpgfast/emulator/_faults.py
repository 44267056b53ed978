"""Fault injection for the emulator: what goes wrong, and when.

Strategy: a fault is a small immutable value (``Fault``: a rate and a schedule);
``Faults`` holds one per kind and is the only mutable piece, so a test can swap a
kind's ``Fault`` while the emulator runs (an attribute store is atomic). Deciding
whether a fault strikes costs a set lookup, plus one draw from the emulator's seeded
``random.Random`` only when the rate is above zero: with every rate at zero the
emulator draws nothing and stays fully deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["FAULT_KINDS", "Fault", "Faults"]

#: Every kind of fault, in the order the emulator considers them for a request.
FAULT_KINDS = ("http_500", "reset_after_accept", "cut_reply", "delay", "refuse")


@dataclass(frozen=True)
class Fault:
    """When one kind of fault strikes: ``Fault(rate=0.0, schedule=(), seconds=10.0)``.

    ``schedule`` is a set of 1-based numbers at which the fault always strikes;
    ``rate`` the probability that it strikes at any other number, drawn from the
    emulator's seeded ``random.Random``. Numbers count requests (every request line
    the emulator read, 414s and 404s included, in order of arrival, per emulator),
    except for ``refuse``, which strikes before any request is read and so counts
    accepted connections. ``seconds`` is used by ``delay`` only: how long the reply
    is held back.
    """

    rate: float = 0.0
    schedule: frozenset[int] = field(default_factory=frozenset)
    seconds: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, got {self.rate!r}")
        if self.seconds < 0:
            raise ValueError(f"seconds must not be negative, got {self.seconds!r}")
        schedule = frozenset(self.schedule)
        if any(not isinstance(n, int) or n < 1 for n in schedule):
            raise ValueError(f"schedule holds 1-based numbers, got {sorted(schedule)!r}")
        object.__setattr__(self, "schedule", schedule)

    @property
    def active(self) -> bool:
        """True when this fault can strike at all."""
        return self.rate > 0.0 or bool(self.schedule)

    def strikes(self, number: int, rng: random.Random) -> bool:
        """Whether the fault strikes at request (or connection) ``number``."""
        if number in self.schedule:
            return True
        return self.rate > 0.0 and rng.random() < self.rate


_NEVER = Fault()

FaultLike = Union[Fault, float, Iterable[int], None]


def _as_fault(value: FaultLike) -> Fault:
    if value is None:
        return _NEVER
    if isinstance(value, Fault):
        return value
    if isinstance(value, (int, float)):
        return Fault(rate=float(value))
    return Fault(schedule=frozenset(value))


class Faults:
    """The emulator's faults, one ``Fault`` per kind; change them while it runs.

    Kinds (see ``Fault`` for how each one's numbers count):

    - ``http_500``: answer HTTP 500 with a description; nothing is applied.
    - ``reset_after_accept``: read and apply the request (the ledger records the
      messages), then close the socket with ``SO_LINGER`` 0 (a TCP RST), no reply.
    - ``cut_reply``: apply, send the headers with the full ``Content-Length`` and
      only part of the body, cut in the middle of a line, then close.
    - ``delay``: apply, then hold the reply back ``Fault.seconds`` before sending
      it (past the client's timeout; ``close()`` cuts the wait short).
    - ``refuse``: close each struck connection as soon as it is accepted, before
      reading anything; nothing is applied.

    When several strike at one request: ``http_500`` wins outright; otherwise the
    request is applied, ``delay`` waits, then ``reset_after_accept`` beats
    ``cut_reply``. Assign a ``Fault``, a bare rate (``faults.http_500 = 0.1``) or a
    schedule (``faults.cut_reply = {3, 7}``); ``clear()`` turns every fault off.
    """

    __slots__ = FAULT_KINDS

    http_500: Fault
    reset_after_accept: Fault
    cut_reply: Fault
    delay: Fault
    refuse: Fault

    def __init__(
        self,
        http_500: FaultLike = None,
        reset_after_accept: FaultLike = None,
        cut_reply: FaultLike = None,
        delay: FaultLike = None,
        refuse: FaultLike = None,
    ) -> None:
        self.http_500 = _as_fault(http_500)
        self.reset_after_accept = _as_fault(reset_after_accept)
        self.cut_reply = _as_fault(cut_reply)
        self.delay = _as_fault(delay)
        self.refuse = _as_fault(refuse)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FAULT_KINDS:
            raise AttributeError(f"no fault kind {name!r}; kinds: {', '.join(FAULT_KINDS)}")
        object.__setattr__(self, name, _as_fault(value))

    @classmethod
    def coerce(cls, value: Union[Faults, Mapping[str, FaultLike], None]) -> Faults:
        """A ``Faults`` from ``None``, a ``Faults`` (kept as is) or a mapping of kinds."""
        if value is None:
            return cls()
        if isinstance(value, Faults):
            return value
        return cls(**dict(value))

    def clear(self) -> None:
        """Turn every fault off."""
        for kind in FAULT_KINDS:
            setattr(self, kind, _NEVER)

    @property
    def active(self) -> bool:
        """True when any fault other than ``refuse`` can strike a request."""
        return (
            self.http_500.active
            or self.reset_after_accept.active
            or self.cut_reply.active
            or self.delay.active
        )

    def __repr__(self) -> str:
        shown = [f"{k}={getattr(self, k)!r}" for k in FAULT_KINDS if getattr(self, k).active]
        return f"Faults({', '.join(shown)})"
