"""The emulator's ledger: every message it accepted, compactly, in acceptance order.

Strategy: a test proving exactly-once delivery over millions of messages must not
need gigabytes, so no Python object is kept per message. The fields of a message
(address, subject, text, clientId) are stored UTF-8 encoded and joined by the byte
``0xFF`` (which never occurs in UTF-8) in one ``bytearray``; an ``array`` holds each
message's end offset. What a whole request shares (its number, the emulator time it
was accepted at, its request-level parameters) is stored once per request; extra
per-message parameters live in a dict keyed by the few messages that have them.
Provider ids are consecutive integers, so a message's position is its provider id
minus the id of the first message kept. Records are decoded only when read.
One lock guards everything; writers hold it for one request's append.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Optional, Union

__all__ = ["Ledger", "LedgerEntry"]

_SEP = b"\xff"
_CHUNK = 4096
_PARTS = {"address": 0, "subject": 1, "text": 2, "client_id": 3}
_FIELDS = ("provider_id", "address", "subject", "text", "client_id", "params", "request")


class LedgerEntry(NamedTuple):
    """One accepted message, as the emulator decoded it from the request."""

    provider_id: str
    address: str
    subject: str
    text: str
    #: The ``clientId`` as sent, or ``None`` when the request sent none.
    client_id: Optional[str]
    #: Extra parameters: the request's own (``priority``...) updated by the
    #: message's ``name[i]`` ones; ``None`` when there were none.
    params: Optional[dict[str, str]]
    #: The 1-based number of the request that carried the message.
    request: int


#: A message to record: (address, subject, text, client_id, params).
Accepted = tuple[str, str, str, Optional[str], Optional[dict[str, str]]]


class Ledger:
    """Every message the emulator accepted; thread-safe, compact, read as ``LedgerEntry``.

    ``len(ledger)`` counts messages; iterating (or ``messages()``) yields entries in
    acceptance order. Cost per message: its UTF-8 fields plus about 11 bytes.
    """

    def __init__(self, first_provider_id: int = 1001) -> None:
        self._lock = threading.Lock()
        self._next_id = first_provider_id
        self._first_kept = first_provider_id
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        self._blob = bytearray()
        self._ends = array("Q")
        self._req_first = array("Q")
        self._req_number = array("Q")
        self._req_time = array("d")
        self._req_params: list[Optional[dict[str, str]]] = []
        self._msg_params: dict[int, dict[str, str]] = {}

    # -- writing (the emulator) ----------------------------------------------------

    def append(
        self,
        request: int,
        time: float,
        request_params: Optional[dict[str, str]],
        messages: Sequence[Accepted],
    ) -> int:
        """Record one request's accepted messages; returns the first provider id given.

        The messages get consecutive provider ids from the returned one on.
        """
        records = []
        params = {}
        for n, (address, subject, text, client_id, extra) in enumerate(messages):
            if client_id is None:
                records.append(_SEP.join((address.encode(), subject.encode(), text.encode())))
            else:
                records.append(
                    _SEP.join(
                        (address.encode(), subject.encode(), text.encode(), client_id.encode())
                    )
                )
            if extra:
                params[n] = extra
        with self._lock:
            first_id = self._next_id
            self._next_id += len(records)
            if not records:
                return first_id
            first = len(self._ends)
            blob = self._blob
            ends = self._ends
            self._req_first.append(first)
            self._req_number.append(request)
            self._req_time.append(time)
            self._req_params.append(request_params or None)
            for record in records:
                blob += record
                ends.append(len(blob))
            for n, extra in params.items():
                self._msg_params[first + n] = extra
        return first_id

    def lifecycle_key(self, provider_id: int) -> Optional[tuple[int, float]]:
        """(last byte of the address, acceptance time) of a kept message, or None."""
        with self._lock:
            i = provider_id - self._first_kept
            if i < 0 or i >= len(self._ends):
                return None
            start = self._ends[i - 1] if i else 0
            sep = self._blob.find(_SEP, start)
            r = bisect_right(self._req_first, i) - 1
            return self._blob[sep - 1], self._req_time[r]

    # -- reading (tests) -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ends)

    def __bool__(self) -> bool:
        return len(self._ends) > 0

    def _entry(self, i: int) -> LedgerEntry:
        # Called with the lock held.
        start = self._ends[i - 1] if i else 0
        parts = self._blob[start : self._ends[i]].split(_SEP)
        r = bisect_right(self._req_first, i) - 1
        request_params = self._req_params[r]
        extra = self._msg_params.get(i)
        params: Optional[dict[str, str]]
        if request_params is None:
            params = None if extra is None else dict(extra)
        else:
            params = dict(request_params)
            if extra is not None:
                params.update(extra)
        return LedgerEntry(
            str(self._first_kept + i),
            parts[0].decode(),
            parts[1].decode(),
            parts[2].decode(),
            parts[3].decode() if len(parts) > 3 else None,
            params,
            self._req_number[r],
        )

    def messages(self) -> Iterator[LedgerEntry]:
        """Every kept message in acceptance order (a live view: later ones show up too).

        Raises:
            RuntimeError: the ledger was cleared while being iterated.
        """
        generation = self._generation
        i = 0
        while True:
            with self._lock:
                if self._generation != generation:
                    raise RuntimeError("the ledger was cleared during iteration")
                chunk = [self._entry(j) for j in range(i, min(i + _CHUNK, len(self._ends)))]
            if not chunk:
                return
            yield from chunk
            i += len(chunk)

    __iter__ = messages

    def by_provider_id(self, provider_id: Union[str, int]) -> Optional[LedgerEntry]:
        """The message with this provider id, or None (never given, or cleared)."""
        try:
            number = int(provider_id)
        except ValueError:
            return None
        if isinstance(provider_id, str) and str(number) != provider_id:
            return None
        with self._lock:
            i = number - self._first_kept
            if i < 0 or i >= len(self._ends):
                return None
            return self._entry(i)

    def count_by(self, field: str) -> Counter[object]:
        """How many messages share each value of a field (``"address"``, ``"client_id"``...).

        ``field`` is a ``LedgerEntry`` field name; ``params`` values count as sorted
        tuples of pairs.
        """
        if field not in _FIELDS:
            raise ValueError(f"unknown field {field!r}; fields: {', '.join(_FIELDS)}")
        counts: Counter[object] = Counter()
        if field == "params":
            counts.update(
                None if e.params is None else tuple(sorted(e.params.items()))
                for e in self.messages()
            )
        elif field == "request":
            with self._lock:
                total = len(self._ends)
                firsts = [*self._req_first, total]
                for r, number in enumerate(self._req_number):
                    counts[number] += firsts[r + 1] - firsts[r]
        elif field == "provider_id":
            with self._lock:
                first, total = self._first_kept, len(self._ends)
            counts.update(dict.fromkeys(map(str, range(first, first + total)), 1))
        else:
            counts.update(self._values(_PARTS[field]))
        return counts

    def _values(self, part: int) -> Iterator[Optional[str]]:
        """One stored field of every message, decoded straight from the buffer."""
        generation = self._generation
        i = 0
        while True:
            with self._lock:
                if self._generation != generation:
                    raise RuntimeError("the ledger was cleared during iteration")
                stop = min(i + _CHUNK, len(self._ends))
                if i >= stop:
                    return
                base = self._ends[i - 1] if i else 0
                segment = bytes(self._blob[base : self._ends[stop - 1]])
                ends = self._ends[i:stop]
            values = []
            start = 0
            for end in ends:
                parts = segment[start : end - base].split(_SEP)
                values.append(parts[part].decode() if len(parts) > part else None)
                start = end - base
            yield from values
            i = stop

    def duplicates(self, field: str) -> dict[object, int]:
        """Values of a field that more than one message holds, with their counts."""
        return {value: n for value, n in self.count_by(field).items() if n > 1}

    def clear(self) -> None:
        """Forget every message kept so far; provider ids given later stay unique."""
        with self._lock:
            self._generation += 1
            self._first_kept = self._next_id
            self._reset()

    @property
    def next_provider_id(self) -> int:
        """The provider id the next accepted message will get."""
        return self._next_id

    @property
    def nbytes(self) -> int:
        """Bytes held by the ledger's buffers (without the per-message params dicts)."""
        with self._lock:
            return (
                len(self._blob)
                + self._ends.itemsize * len(self._ends)
                + (8 + 8 + 8 + 8) * len(self._req_first)
            )

    def __repr__(self) -> str:
        return f"<Ledger: {len(self)} messages, next providerId {self._next_id}>"
