"""A SEND reply read into columns: ``read_send_columns``'s result, in both twins.

``read_send`` makes a ``SendResult`` and up to two ``str`` per line: for a reply of
a million lines that is most of its cost, and of the memory. ``SendColumns`` holds
the same answer without one Python object per line: the codes as a list of shared
(interned) ``str``, the client and provider ids each as one ``bytes`` buffer (UTF-8,
as read) with an array of end offsets, and counts. A record is made only when asked
for (``columns[i]``, iteration, ``results()``), and equals what ``read_send`` gives.

Both twins build it (the compiled core straight from its scan; the pure twin from
``read_send``), and equal inputs give equal columns (``==``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any, Optional

from ._records import SendResult
from .exceptions import ProtocolError

__all__ = ["SendColumns"]

_OK = "ok"


class SendColumns:
    """The records of a SEND reply as columns, and the reply's unreadable lines.

    Attributes:
        codes: the code of each record (``str``; known codes are shared objects).
        ok_count: how many records have the code ``"ok"``.
        client_ids: every record's clientId, UTF-8, one after the other.
        client_id_ends: record ``i``'s clientId is
            ``client_ids[client_id_ends[i - 1] if i else 0 : client_id_ends[i]]``;
            an empty one is ``None`` in the record (as ``read_send`` reads it).
        provider_ids, provider_id_ends: the same for the providerIds.
        extras: ``{i: extra}`` for the records with text after a third ``;``.
        raws: ``{i: raw}`` for the records read tolerantly (``SendResult.raw``).
        errors: the unreadable lines, as ``read_send`` returns them.
    """

    __slots__ = (
        "client_id_ends",
        "client_ids",
        "codes",
        "errors",
        "extras",
        "ok_count",
        "provider_id_ends",
        "provider_ids",
        "raws",
    )

    def __init__(
        self,
        codes: list[str],
        ok_count: int,
        client_ids: bytes,
        client_id_ends: array,  # type: ignore[type-arg]
        provider_ids: bytes,
        provider_id_ends: array,  # type: ignore[type-arg]
        extras: dict[int, str],
        errors: list[ProtocolError],
        raws: Optional[dict[int, bytes]] = None,
    ) -> None:
        self.codes = codes
        self.ok_count = ok_count
        self.client_ids = client_ids
        self.client_id_ends = client_id_ends
        self.provider_ids = provider_ids
        self.provider_id_ends = provider_id_ends
        self.extras = extras
        self.errors = errors
        self.raws = {} if raws is None else raws

    @classmethod
    def from_results(cls, results: list[SendResult], errors: list[ProtocolError]) -> SendColumns:
        """The columns of ``read_send``'s ``(results, errors)``."""
        client_ids, provider_ids = bytearray(), bytearray()
        client_ends, provider_ends = array("q"), array("q")
        extras = {}
        raws = {}
        for i, result in enumerate(results):
            client_ids += (result[1] or "").encode()
            client_ends.append(len(client_ids))
            provider_ids += (result[2] or "").encode()
            provider_ends.append(len(provider_ids))
            if len(result) > 3 and result[3] is not None:
                extras[i] = result[3]
            if len(result) > 4:
                raws[i] = result[4]
        return cls(
            [result[0] for result in results],
            sum(1 for result in results if result[0] == _OK),
            bytes(client_ids),
            client_ends,
            bytes(provider_ids),
            provider_ends,
            extras,
            errors,
            raws,
        )

    def __len__(self) -> int:
        return len(self.codes)

    @staticmethod
    def _field(buffer: bytes, ends: Any, i: int) -> Optional[str]:
        start = ends[i - 1] if i else 0
        return buffer[start : ends[i]].decode() or None

    def _index(self, i: int) -> int:
        n = len(self.codes)
        if not -n <= i < n:
            raise IndexError("SendColumns index out of range")
        return i + n if i < 0 else i

    def client_id(self, i: int) -> Optional[str]:
        """Record ``i``'s clientId (``None`` when the line had none)."""
        return self._field(self.client_ids, self.client_id_ends, self._index(i))

    def provider_id(self, i: int) -> Optional[str]:
        """Record ``i``'s providerId (``None`` when the line had none)."""
        return self._field(self.provider_ids, self.provider_id_ends, self._index(i))

    def __getitem__(self, i: int) -> SendResult:
        i = self._index(i)
        return SendResult(
            self.codes[i],
            self._field(self.client_ids, self.client_id_ends, i),
            self._field(self.provider_ids, self.provider_id_ends, i),
            self.extras.get(i),
            self.raws.get(i),
        )

    def __iter__(self) -> Iterator[SendResult]:
        return (self[i] for i in range(len(self.codes)))

    def results(self) -> list[SendResult]:
        """Every record, as ``read_send`` returns them."""
        return list(self)

    def _key(self) -> tuple[Any, ...]:
        # Errors have no equality of their own: compared by class, line and reason.
        errors = [(type(e), e.line, e.reason) for e in self.errors]
        return (
            self.codes,
            self.ok_count,
            self.client_ids,
            self.client_id_ends,
            self.provider_ids,
            self.provider_id_ends,
            self.extras,
            errors,
            self.raws,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SendColumns):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SendColumns({len(self.codes)} records, ok_count={self.ok_count}, "
            f"{len(self.errors)} errors)"
        )
