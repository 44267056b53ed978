"""Fault injection for the emulator: what goes wrong, and when.

Strategy: a fault is a small immutable value (``Fault``: a rate, a schedule, and
the few knobs some kinds take); ``Faults`` holds one per kind and is the only
mutable piece, so a test can swap a kind's ``Fault`` while the emulator runs (an
attribute store is atomic). Deciding whether a fault strikes costs a set lookup,
plus one draw from the emulator's seeded ``random.Random`` only when the rate is
above zero: with every rate at zero the emulator draws nothing and stays fully
deterministic. Whether any kind can strike at all is kept up to date on every
store, so a request with every fault off pays one attribute read.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

__all__ = ["FAULT_KINDS", "LATE_VARIANTS", "Fault", "Faults"]

#: Every kind of fault, in the order the emulator considers them for a request.
FAULT_KINDS = (
    "http_500",
    "http_503",
    "http_429",
    "code_only",
    "raw_reply",
    "reset_after_accept",
    "cut_reply",
    "delay",
    "trickle",
    "late_bytes",
    "refuse",
)

#: What ``late_bytes`` writes: a whole extra 200 response, a 429 response, or a bare
#: code-only line without any HTTP framing.
LATE_VARIANTS = ("response", "429", "line")
#: What ``code_only``, ``raw_reply``, ``http_503`` and ``http_429`` do with the
#: request: apply nothing, or apply it and answer all the same.
CODE_ONLY_VARIANTS = ("drop", "apply")

#: Per kind, the default of ``Fault.seconds`` (None: the kind takes no seconds, or,
#: for ``http_503``, sends no ``Retry-After``) and of ``Fault.variant``.
_SECONDS = {"delay": 10.0, "trickle": 0.2, "late_bytes": 0.05, "http_429": 1.0}
_VARIANTS = {
    "late_bytes": "response",
    "code_only": "drop",
    "raw_reply": "drop",
    "http_503": "drop",
    "http_429": "drop",
}
#: The late ``response``'s default body: lines that "match" a request that sent no
#: clientIds (the platform then answers with indexes 0, 1, ...).
LATE_BODY = b"ok;0;999999\nok;1;999998\n"
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_code(code: str, what: str = "code") -> str:
    """``code`` if it can stand alone on a reply line (non-empty ``[0-9A-Za-z._-]``)."""
    if not isinstance(code, str) or not code or not _CODE_CHARS.issuperset(code):
        raise ValueError(f"{what} must be non-empty letters, digits, '-', '_' or '.', got {code!r}")
    return code


@dataclass(frozen=True)
class Fault:
    """When one kind of fault strikes, and how: ``Fault(rate=0.0, schedule=())``.

    ``schedule`` is a set of 1-based numbers at which the fault always strikes;
    ``rate`` the probability that it strikes at any other number, drawn from the
    emulator's seeded ``random.Random``. Numbers count requests (every request line
    the emulator read, 414s, 404s and rate-limited 429s included, in order of
    arrival, per emulator), except for ``refuse``, which strikes before any request
    is read and so counts accepted connections.

    The other fields matter to some kinds only (None: the kind's default, filled in
    when the fault is stored in a ``Faults``):

    - ``seconds``: ``delay``: how long the reply is held back (10);
      ``trickle``: the pause between two bytes (0.2); ``late_bytes``: the pause
      between the reply and the stale bytes (0.05); ``http_429``: the
      ``Retry-After`` value, rounded up to whole seconds (1); ``http_503``: a
      ``Retry-After`` value, none by default.
    - ``limit``: ``trickle`` only: real seconds of trickling after which the rest
      of the reply goes at once (30), so a test always ends.
    - ``code``: ``code_only``: the code of the line (``error-system``);
      ``late_bytes`` with variant ``line``: the code of the stale line.
    - ``variant``: ``code_only``, ``raw_reply``, ``http_503``, ``http_429``:
      ``"drop"`` (apply
      nothing) or ``"apply"`` (apply the request, then answer as the fault says
      all the same, as a gateway that gave up on a platform which went on);
      ``late_bytes``:
      ``"response"``, ``"429"`` or ``"line"`` (see ``Faults``).
    - ``body``: ``late_bytes`` with variant ``response``: the stale response's
      body; ``raw_reply``: the reply's body (both ``ok;0;999999\\nok;1;999998\\n``
      by default).
    - ``status``: ``raw_reply`` only: the reply's HTTP status (200; a 302, a 503,
      any status from 100 to 599).
    - ``headers``: ``raw_reply`` only: header lines sent as given, as
      ``(name, value)`` pairs or a mapping (``{"Location": "https://..."}``,
      ``{"Retry-After": "2"}``), kept as pairs; a ``Content-Type`` among them
      replaces the emulator's ``text/plain; charset=utf-8``.
    """

    rate: float = 0.0
    schedule: frozenset[int] = field(default_factory=frozenset)
    seconds: Optional[float] = None
    limit: float = 30.0
    code: str = "error-system"
    variant: Optional[str] = None
    body: bytes = LATE_BODY
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, got {self.rate!r}")
        if self.seconds is not None and not self.seconds >= 0:
            raise ValueError(f"seconds must not be negative, got {self.seconds!r}")
        if not self.limit >= 0:
            raise ValueError(f"limit must not be negative, got {self.limit!r}")
        check_code(self.code)
        if self.variant is not None and self.variant not in LATE_VARIANTS + CODE_ONLY_VARIANTS:
            raise ValueError(
                f"variant must be one of {LATE_VARIANTS + CODE_ONLY_VARIANTS}, got {self.variant!r}"
            )
        if not isinstance(self.body, bytes):
            raise TypeError(f"body must be bytes, got {type(self.body).__name__}")
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError(f"status must be an int, got {type(self.status).__name__}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be within 100..599, got {self.status!r}")
        given = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        headers = tuple((str(name), str(value)) for name, value in given)
        for name, value in headers:
            # A header line of its own: no line break may start another one.
            if not name or not _CODE_CHARS.issuperset(name) or any(c in value for c in "\r\n"):
                raise ValueError(f"not a header line: {name!r}: {value!r}")
        object.__setattr__(self, "headers", headers)
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


def _as_fault(value: FaultLike, kind: str) -> Fault:
    if value is None:
        fault = _NEVER
    elif isinstance(value, Fault):
        fault = value
    elif isinstance(value, (int, float)):
        fault = Fault(rate=float(value))
    else:
        fault = Fault(schedule=frozenset(value))
    variant = fault.variant
    if variant is None:
        variant = _VARIANTS.get(kind)
    elif kind not in _VARIANTS or variant not in (
        LATE_VARIANTS if kind == "late_bytes" else CODE_ONLY_VARIANTS
    ):
        raise ValueError(f"fault kind {kind} takes no variant {variant!r}")
    seconds = _SECONDS.get(kind) if fault.seconds is None else fault.seconds
    if seconds != fault.seconds or variant != fault.variant:
        fault = replace(fault, seconds=seconds, variant=variant)
    return fault


class Faults:
    """The emulator's faults, one ``Fault`` per kind; change them while it runs.

    Kinds (see ``Fault`` for how each one's numbers count and for its knobs):

    - ``http_500``: answer HTTP 500 with a description; nothing is applied.
    - ``http_503``: answer ``503 Service Unavailable`` (a balancer in front of the
      platform; ``Retry-After`` only when ``seconds`` is given); nothing is
      applied, unless ``variant="apply"``.
    - ``http_429``: answer ``429 Too Many Requests`` with ``Retry-After: <seconds>``
      (a rate limiter in front of the platform); nothing is applied, unless
      ``variant="apply"`` (then a resend meets its clientIds again).
    - ``code_only``: answer 200 with the single line ``<code>``, the way the
      platform answers for a whole request (``error-system``, ``error-syntax``,
      ``ok``, any code); with ``variant="drop"`` (the default) nothing is applied,
      with ``"apply"`` the request is applied first (the ledger holds its
      accepted messages) and its reply lines are replaced by the code.
    - ``raw_reply``: answer ``status`` (200) with ``headers`` and ``body``,
      verbatim: any reply shape a test needs (``ok;;1001\\n``, ``ok;0;\\n``, two
      lines for one clientId, an HTML page served as ``text/html``, a 302 with a
      ``Location``, a 503 with ``Retry-After``); ``variant`` as for ``code_only``
      (``"apply"``: the ledger holds what the request carried, with the
      providerIds it would have had).
    - ``reset_after_accept``: read and apply the request (the ledger records the
      messages), then close the socket with ``SO_LINGER`` 0 (a TCP RST), no reply.
    - ``cut_reply``: apply, send the headers with the full ``Content-Length`` and
      only part of the body, cut in the middle of a line, then close.
    - ``delay``: apply, then hold the reply back ``seconds`` before sending it
      (past the client's timeout; ``close()`` cuts the wait short).
    - ``trickle``: apply, then send the whole response (status line, headers,
      body) one byte every ``seconds``; after ``limit`` seconds of that the rest
      goes at once. The connection stays usable.
    - ``late_bytes``: apply and answer normally; then, on a keep-alive
      connection only, wait ``seconds`` and write stale bytes on the same
      connection, which a client must never read as its next request's reply:
      ``variant="response"``, a whole ``HTTP/1.1 200 OK`` response with ``body``
      (by default ``ok;0;999999`` and ``ok;1;999998``, lines that match the
      indexes of a request that sent no clientIds); ``"429"``, a whole
      ``429 Too Many Requests`` response with ``Retry-After: 1``; ``"line"``,
      the bare line ``<code>\\n`` with no HTTP framing. The connection is then
      served as before.
    - ``refuse``: close each struck connection as soon as it is accepted, before
      reading anything; nothing is applied.

    When several strike at one request: ``http_500``, then ``http_503``, then
    ``http_429``, ``code_only``, then ``raw_reply`` win (the first that strikes;
    no later kind of these is drawn for the request); a ``code_only`` or
    ``raw_reply`` body then goes
    through the kinds below like any reply; then ``delay`` waits,
    ``reset_after_accept`` beats ``cut_reply``, which beats ``trickle``;
    ``late_bytes`` follows a full reply, trickled or not. Assign a ``Fault``, a
    bare rate (``faults.http_500 = 0.1``) or a schedule
    (``faults.cut_reply = {3, 7}``); ``clear()`` turns every fault off.
    """

    __slots__ = (*FAULT_KINDS, "_active")

    http_500: Fault
    http_503: Fault
    http_429: Fault
    code_only: Fault
    raw_reply: Fault
    reset_after_accept: Fault
    cut_reply: Fault
    delay: Fault
    trickle: Fault
    late_bytes: Fault
    refuse: Fault
    _active: bool

    def __init__(
        self,
        http_500: FaultLike = None,
        reset_after_accept: FaultLike = None,
        cut_reply: FaultLike = None,
        delay: FaultLike = None,
        refuse: FaultLike = None,
        *,
        http_503: FaultLike = None,
        http_429: FaultLike = None,
        code_only: FaultLike = None,
        raw_reply: FaultLike = None,
        trickle: FaultLike = None,
        late_bytes: FaultLike = None,
    ) -> None:
        object.__setattr__(self, "_active", False)
        given = {
            "http_500": http_500,
            "http_503": http_503,
            "http_429": http_429,
            "code_only": code_only,
            "raw_reply": raw_reply,
            "reset_after_accept": reset_after_accept,
            "cut_reply": cut_reply,
            "delay": delay,
            "trickle": trickle,
            "late_bytes": late_bytes,
            "refuse": refuse,
        }
        for kind in FAULT_KINDS:
            setattr(self, kind, given[kind])

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FAULT_KINDS:
            raise AttributeError(f"no fault kind {name!r}; kinds: {', '.join(FAULT_KINDS)}")
        object.__setattr__(self, name, _as_fault(value, name))
        # Kinds not yet set during __init__ count as off.
        active = any(getattr(self, kind, _NEVER).active for kind in FAULT_KINDS if kind != "refuse")
        object.__setattr__(self, "_active", active)

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
        return self._active

    def __repr__(self) -> str:
        shown = [f"{k}={getattr(self, k)!r}" for k in FAULT_KINDS if getattr(self, k).active]
        return f"Faults({', '.join(shown)})"
