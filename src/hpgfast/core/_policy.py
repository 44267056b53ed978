"""What is repeated, and when: an immutable policy value, like urllib3's ``Retry``.

The policy never sleeps and reads no clock: the batch asks it for a delay and
answers its transport "try again at ``now + delay``"; the transport waits as it
waits (``time.sleep``, ``asyncio.sleep``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryPolicy"]


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
