"""What is repeated, and when: an immutable policy value, like urllib3's ``Retry``.

The policy never sleeps and reads no clock: the batch asks it for a delay and
answers its transport "try again at ``now + delay``"; the transport waits as it
waits (``time.sleep``, ``asyncio.sleep``).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

__all__ = ["RateLimit", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is repeated, and how long to wait before each repeat.

    A SEND is repeated only when its connection could not be opened (no byte of it
    left); a STATUS after any transient failure. ``retries`` is the number of
    repeats after the first attempt; the wait before repeat ``k`` (0-based) is
    ``min(backoff_max, backoff * 2**k)`` seconds.
    """

    retries: int = 3
    backoff: float = 0.1
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.backoff_max < 0:
            raise ValueError("retries, backoff and backoff_max must not be negative")

    def allows(self, attempt: int) -> bool:
        """True when a request that failed on attempt ``attempt`` (0-based) may go again."""
        return attempt < self.retries

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based) before the next."""
        return float(min(self.backoff_max, self.backoff * (2**attempt)))


class RateLimit:
    """At most ``rate`` messages per second, with a burst of at most one request.

    ``reserve(count, now)`` books the next slot for a request of ``count`` messages
    and answers when it may start; the request after it may start ``count / rate``
    seconds later. One instance serves every batch of a client. It never sleeps:
    the transport waits until the answered time. A transport whose requests are
    booked from several threads passes a lock (a context manager) to make each
    booking atomic; it is held for a few arithmetic operations, never while
    waiting.
    """

    __slots__ = ("_lock", "_next", "rate")

    def __init__(self, rate: float, lock: Any = None) -> None:
        if not rate > 0:
            raise ValueError(f"max_rate must be positive, got {rate!r}")
        self.rate = float(rate)
        self._next = float("-inf")
        self._lock = lock if lock is not None else nullcontext()

    def reserve(self, count: int, now: float, not_before: float = float("-inf")) -> float:
        """When a request of ``count`` messages may start (at or after ``now``)."""
        with self._lock:
            at = max(now, self._next, not_before)
            self._next = at + count / self.rate
        return at

    def relock(self, lock: Any) -> None:
        """Use ``lock`` from now on: in a child after ``fork()``, where the old one
        may stay held by a thread that exists only in the parent."""
        self._lock = lock

    def __repr__(self) -> str:
        return f"RateLimit({self.rate!r})"
