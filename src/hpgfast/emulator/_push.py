"""Push mode: the one call the platform makes itself, every status change pushed.

Strategy (``push_url``): one more thread takes the status changes that came due on
the emulator's clock from a ``Schedule`` (see ``_lifecycle``) and pushes them with
``hpgfast.receiver.push``, in time order, ``push_batch`` at a time. A failed push
(no connection, a timeout, an answer other than 200) is counted and retried with
the same reports after a doubling pause, so that the order holds, up to
``push_attempts`` attempts in all (as the platform gives up after 10); then its
reports are dropped and counted. Nothing it does can reach the HTTP server's
threads. The push settings are read from the settings value at each push, so a
``push_secret`` assigned while running is used from the next attempt on.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Sequence

from .._wire import Code
from ._core import EmulatorCore
from ._lifecycle import Change
from ._settings import DATE_FORMATS

log = logging.getLogger(__name__)

#: Real seconds one push may take; close() waits for a push under way at most this.
PUSH_TIMEOUT = 5.0
#: The longest pause between two attempts at a failing push, real seconds.
_PUSH_BACKOFF_MAX = 2.0
#: The longest query string a ``query`` push sends (a GET's request line).
_PUSH_QUERY_MAX = 8000

class Pusher(EmulatorCore):
    """Push mode of ``Emulator`` (a mixin): the pushing thread's work."""

    def _push_loop(self) -> None:
        """The pushing thread: due changes to ``push_url``, in order, until close()."""
        from ..receiver import push

        schedule = self._schedule
        assert schedule is not None and self._settings.push_url is not None
        pending: deque[tuple[str, str, str, str, str]] = deque()
        pause = 0.0
        attempts = 0  # failed attempts at the push now at the head of ``pending``
        when_cache: dict[int, str] = {}
        while not self._closing.is_set():
            try:
                # Read at each turn: push_secret may be assigned while running.
                settings = self._settings
                push_url = settings.push_url
                assert push_url is not None
                self._push_wake.clear()
                if len(pending) < settings.push_batch:
                    with self._push_lock:
                        due = schedule.take(self.now(), settings.push_batch - len(pending))
                    pending.extend(self._reports(due, when_cache, settings.push_shape))
                    if len(when_cache) > 4096:
                        when_cache.clear()
                with self._lock:
                    self._pushes["pending"] = len(pending)
                if not pending:
                    self._push_wake.wait(settings.push_interval)
                    continue
                batch = self._push_slice(pending, settings.push_batch, settings.push_shape)
                try:
                    status, text = push(
                        push_url, batch, secret=settings.push_secret,
                        shape=settings.push_shape, timeout=PUSH_TIMEOUT,
                    )
                except Exception as exc:  # no connection, a timeout, a reset...
                    status, text = 0, f"{type(exc).__name__}: {exc}"
                if status == 200:
                    for _ in batch:
                        pending.popleft()
                    pause, attempts = 0.0, 0
                    with self._lock:
                        self._pushes["sent"] += 1
                        self._pushes["reports"] += len(batch)
                        self._pushes["pending"] = len(pending)
                    continue
                attempts += 1
                why = f"HTTP {status}: {text[:200]}" if status else text[:200]
                with self._lock:
                    self._pushes["failed"] += 1
                    if attempts >= settings.push_attempts:
                        # Given up, as the platform does: the next reports go on.
                        for _ in batch:
                            pending.popleft()
                        self._pushes["dropped"] += len(batch)
                        self._pushes["pending"] = len(pending)
                if attempts >= settings.push_attempts:
                    log.warning("emulator: push of %d report(s) failed %d times (%s); dropped",
                                len(batch), attempts, why)
                    pause, attempts = 0.0, 0
                    continue
                pause = min(max(pause * 2, settings.push_interval), _PUSH_BACKOFF_MAX)
                log.warning(
                    "emulator: push of %d report(s) failed (%s), again in %.2f s",
                    len(batch), why, pause,
                )
                self._closing.wait(pause)
            except Exception:  # pragma: no cover - a bug of ours; keep going
                log.exception("emulator: push thread error")
                self._closing.wait(_PUSH_BACKOFF_MAX)

    def _reports(
        self, changes: Sequence[Change], when_cache: dict[int, str], shape: str
    ) -> list[tuple[str, str, str, str, str]]:
        """Changes as STATUS reply fields (code, providerId, status, dateTime, reason)."""
        out = []
        # JSON pushes carry ISO-8601 times with milliseconds, as the platform's do.
        if shape == "json":
            fmt = "%Y-%m-%dT%H:%M:%S.000"
        else:
            fmt = DATE_FORMATS[self._settings.date_style]
        for pid, status, at, reason in changes:
            second = int(at)
            when = when_cache.get(second)
            if when is None:
                when = when_cache[second] = self.datetime_at(second).strftime(fmt)
            out.append((Code.OK, str(pid), status, when, reason))
        return out

    def _push_slice(
        self, pending: deque[tuple[str, str, str, str, str]], most: int, shape: str
    ) -> list[tuple[str, str, str, str, str]]:
        """The next push's reports: up to push_batch, and for ``query`` pushes no more
        than fit a query string of _PUSH_QUERY_MAX bytes (one at least)."""
        batch = list(itertools.islice(pending, most))
        if shape != "query":
            return batch
        from ..receiver import status_params

        size = 0
        for n, report in enumerate(batch):
            # One report's parameters at index n: four names carry the index.
            size += len(status_params([report])) + 4 * (len(str(n)) - 1) + 1
            if size > _PUSH_QUERY_MAX and n:
                return batch[:n]
        return batch
