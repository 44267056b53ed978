"""The records of what a message costs: ``Segments`` per text, ``SegmentTotals`` per batch.

Strategy: like the records of ``_records`` (see its docstring), each is a ``tuple``
subclass with empty ``__slots__`` and read-only fields, so that counting a million
texts costs about what a million tuples cost. The compiled counter fills them
directly; the pure twin calls the class; both return these very classes.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Optional

__all__ = ["SegmentTotals", "Segments"]


class Segments(tuple):  # type: ignore[type-arg]
    """What one text costs: ``Segments(encoding, units, segments, remaining)``.

    ``encoding`` is ``"gsm7"`` or ``"ucs2"``; ``units`` the text's length in that
    encoding's units (septets, an extension character counting two; or UTF-16 code
    units, a character outside the BMP counting two); ``segments`` the number of SMS
    it is sent as (at least 1: an empty text is still one SMS); ``remaining`` the
    units still free in the last one.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        encoding: str
        units: int
        segments: int
        remaining: int

    def __new__(cls, encoding: str, units: int, segments: int, remaining: int) -> Segments:
        return tuple.__new__(cls, (encoding, units, segments, remaining))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"Segments(encoding={self[0]!r}, units={self[1]!r}, segments={self[2]!r}, "
            f"remaining={self[3]!r})"
        )


_SEGMENTS_FIELDS = ("encoding", "units", "segments", "remaining")


class SegmentTotals(tuple):  # type: ignore[type-arg]
    """What a batch costs, without a record per message.

    ``messages`` and ``segments`` in all; ``gsm7_messages``/``gsm7_segments`` and
    ``ucs2_messages``/``ucs2_segments`` by encoding; ``largest`` the most segments
    one message takes and ``largest_index`` the first message that takes them
    (``None`` for an empty batch).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        messages: int
        segments: int
        gsm7_messages: int
        gsm7_segments: int
        ucs2_messages: int
        ucs2_segments: int
        largest: int
        largest_index: Optional[int]

    def __new__(
        cls,
        messages: int,
        segments: int,
        gsm7_messages: int,
        gsm7_segments: int,
        ucs2_messages: int,
        ucs2_segments: int,
        largest: int,
        largest_index: Optional[int],
    ) -> SegmentTotals:
        return tuple.__new__(
            cls,
            (
                messages,
                segments,
                gsm7_messages,
                gsm7_segments,
                ucs2_messages,
                ucs2_segments,
                largest,
                largest_index,
            ),
        )

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(_TOTALS_FIELDS, self))
        return f"SegmentTotals({fields})"


_TOTALS_FIELDS = (
    "messages",
    "segments",
    "gsm7_messages",
    "gsm7_segments",
    "ucs2_messages",
    "ucs2_segments",
    "largest",
    "largest_index",
)

# Field accessors as C-level itemgetters, as in _records.
for _cls, _names in ((Segments, _SEGMENTS_FIELDS), (SegmentTotals, _TOTALS_FIELDS)):
    for _i, _name in enumerate(_names):
        setattr(_cls, _name, property(itemgetter(_i), doc=f"Field {_i}: {_name}."))
del _cls, _names, _i, _name
