"""The sync client's watchdog: exchanges that outlive their deadline are cut.

Part of ``Client`` (``client.py``): one thread per client, started only once it
has sent something.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Optional

from .core import Batch

__all__ = ["GRACE_OVER", "PAST_DEADLINE", "Watchdog"]

_monotonic = time.monotonic

#: Why the watchdog cut an exchange (the third item of its entry).
PAST_DEADLINE = 1
GRACE_OVER = 2


class Watchdog:
    """Cuts exchanges that outlive the request deadline, however they trickle.

    The socket's timeout bounds each read; nothing else bounds a whole
    reply that arrives a byte at a time. One thread per client wakes a few times
    per deadline and shuts down the socket of any exchange past it, which ends the
    blocked read at once. Watching costs a list and a dict entry per exchange (no
    lock: dict operations are atomic), and the thread exists only while a client
    has sent something. The same cut ends a batch's exchanges still out when an
    interrupt's grace is over (``cut()``): their worker threads are free at once,
    not when the read timeout runs out.

    Only sockets this client opened in this process are ever watched: a child after
    ``fork()`` gets a new watchdog, so the parent's connections are never shut down.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._interval = min(0.25, deadline / 4)
        self._active: dict[int, list[Any]] = {}
        self._thread: Optional[threading.Thread] = None
        self._stopped = threading.Event()
        self._start_lock = threading.Lock()

    def watch(self, sock: Any, batch: Batch) -> list[Any]:
        """Start watching an exchange of ``batch`` on ``sock``; ``done()`` ends it."""
        entry = [_monotonic() + self.deadline, sock, 0, batch]
        self._active[id(entry)] = entry
        if self._thread is None:
            self._start()
        if batch.sealed:
            # Sealed (its grace over) while this exchange was starting: cut() may
            # have looked before the entry was there.
            self._cut(entry, GRACE_OVER)
        return entry

    def done(self, entry: Optional[list[Any]]) -> int:
        """Stop watching; why the exchange was cut (``PAST_DEADLINE``,
        ``GRACE_OVER``), or 0 when it was not."""
        if entry is None:
            return 0
        self._active.pop(id(entry), None)
        return int(entry[2])

    def cut(self, batch: Batch) -> None:
        """Cut every exchange of ``batch`` still out (the batch is sealed first)."""
        for entry in list(self._active.values()):
            if entry[3] is batch:
                self._cut(entry, GRACE_OVER)

    @staticmethod
    def _cut(entry: list[Any], why: int) -> None:
        if entry[2]:
            return
        entry[2] = why
        try:
            # The plain socket's shutdown, also for TLS: it only ends the blocked
            # read (or write); the owner closes the connection afterwards.
            socket.socket.shutdown(entry[1], socket.SHUT_RDWR)
        except OSError:
            pass

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="hpgfast-deadline", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._tick(_monotonic())

    def _tick(self, now: float) -> None:
        # A frame of its own: a loop variable of ``_run`` would hold the last entry
        # looked at (and through it the batch: its messages, its results) while the
        # thread waits, for as long as no exchange is out: long after send() returned.
        for entry in list(self._active.values()):
            if entry[0] <= now:
                self._cut(entry, PAST_DEADLINE)

    def stop(self) -> None:
        self._stopped.set()
        thread = self._thread
        if thread is not None:
            thread.join()
