"""What the emulator's parts share: the state ``Emulator.__init__`` sets, the clock,
and the attributes that read settings.

Strategy: the emulator is one object made of three parts, each in its own module
(the HTTP server, the HPG operations, push mode), joined as mixins of
``Emulator``. Each part reads its settings from ``_settings``, the one
``EmulatorSettings`` value, and finds here the names of the state it shares with
the others, so that a type checker sees every part whole.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Generic, Optional, TypeVar, cast, overload

from ._faults import Faults
from ._ledger import Ledger
from ._lifecycle import Lifecycle, Schedule, Timing
from ._settings import LIVE_SETTINGS, EmulatorSettings

T = TypeVar("T")


class EmulatorCore:
    """The state the emulator's parts share (``Emulator.__init__`` sets it all)."""

    _settings: EmulatorSettings
    #: Taken to replace ``_settings`` (a live setting assigned while serving).
    _settings_lock: threading.Lock
    ledger: Ledger
    _faults: Faults
    _lifecycle: Lifecycle
    _timing: Timing
    _rng: random.Random
    start_time: datetime
    _speed: float
    _mono0: float
    _offset: float
    # Counters and connections, under _lock.
    _lock: threading.Lock
    _closing: threading.Event
    _requests: Counter[str]
    _request_count: int
    _rate_limited: int
    _tokens: float
    _tokens_at: float
    # Balance and unique clientIds: decided for a whole request under one lock.
    _account_lock: threading.Lock
    _balance: Optional[int]
    _seen_ids: set[str]
    _repeated_ids: int
    # Push mode: the schedule of changes (under _push_lock), the counters (under
    # _lock), and an event that wakes the pushing thread early.
    _push_lock: threading.Lock
    _schedule: Optional[Schedule]
    _pushes: Counter[str]
    _push_wake: threading.Event

    def now(self) -> float:
        """The lifecycle clock: emulator seconds since the emulator started."""
        if self._speed:
            return (time.monotonic() - self._mono0) * self._speed + self._offset
        return self._offset

    def datetime_at(self, emulator_seconds: float) -> datetime:
        """The wall-clock time the emulator shows for a point on its clock."""
        return self.start_time + timedelta(seconds=int(emulator_seconds))

    def _replace_settings(self, **changes: Any) -> None:
        """Replace the settings value (checked again: a bad value changes nothing)."""
        with self._settings_lock:
            self._settings = replace(self._settings, **changes)

    # The HPG operations (``_platform``), which the HTTP server calls.

    def _send(self, query: bytes, number: int) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def _status(self, query: bytes) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError


class Setting(Generic[T]):
    """An ``Emulator`` attribute that reads its setting from ``emu.settings``.

    Assigning it replaces ``emu.settings`` (checked again) when the setting is one of
    ``LIVE_SETTINGS``; any other setting is fixed when the emulator starts, and
    assigning it raises ``AttributeError``.
    """

    name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> Setting[T]: ...

    @overload
    def __get__(self, obj: EmulatorCore, owner: Optional[type] = None) -> T: ...

    def __get__(
        self, obj: Optional[EmulatorCore], owner: Optional[type] = None
    ) -> Setting[T] | T:
        if obj is None:
            return self
        return cast(T, getattr(obj._settings, self.name))

    def __set__(self, obj: EmulatorCore, value: T) -> None:
        if self.name not in LIVE_SETTINGS:
            raise AttributeError(
                f"{self.name} is fixed when the emulator starts (emu.settings.{self.name}); "
                f"only {', '.join(sorted(LIVE_SETTINGS))} may be assigned while it runs"
            )
        obj._replace_settings(**{self.name: value})
