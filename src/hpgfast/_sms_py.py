"""Segment counting in pure Python: the reference twin of the compiled ``_sms_c``.

Strategy: this module *is* the contract, as ``_codec_py`` is for the codec; the
compiled twin returns equal records and raises the same exceptions on every input.
The rules (the tables and their sources are in ``_gsm``):

1. A text whose every character is in the GSM 7-bit default alphabet or its
   extension table is ``gsm7``: one septet a character, two for an extension
   character. Any other character makes the whole text ``ucs2``: one UTF-16 code
   unit a character, two for one outside the BMP.
2. Up to 160 septets / 70 units it is one SMS. Longer, it is cut into parts of 153
   septets / 67 units, filled in order; a character that costs two units and would
   straddle a cut starts the next part instead (TS 23.040 clause 9.2.3.24.1), so a
   part may end one unit short.
3. A lone surrogate (any code point U+D800..U+DFFF in a ``str``: Python keeps a
   proper pair as one character) cannot be sent: ``MessageError``, worded as the
   encoder words it.

Batches take texts or messages (``Message`` or tuples of 2 to 5 fields, the text
in field 1), in order; the first bad item raises, naming its index and field. Types
are tested with ``type()``, not ``isinstance``, so that an object cannot pass for a
``str`` through a ``__class__`` property; ``str`` subclasses are read as plain
strings (their methods are never called), as the compiled twin reads their buffers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union, cast

from . import _gsm
from ._records import Message
from ._sms_records import Segments, SegmentTotals
from .exceptions import MessageError, MessageTypeError

__all__ = ["count_segments", "segments", "total_segments"]

Item = Union[str, Message, tuple[Any, ...]]

_GSM7 = _gsm.GSM7
_UCS2 = _gsm.UCS2
# A character outside both GSM tables; an extension character; one outside the BMP.
_NOT_GSM = re.compile("[^" + re.escape("".join(sorted(_gsm.BASIC | _gsm.EXTENSION))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(_gsm.EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _is_str(value: object) -> bool:
    return issubclass(type(value), str)


def _surrogate_reason(text: str, index: int) -> str:
    return f"contains a lone surrogate U+{ord(text[index]):04X} at character {index}"


def _count(text: str, index: Optional[int]) -> Segments:
    if type(text) is not str:
        text = str.__str__(text)  # the characters alone, whatever the subclass overrides
    if _NOT_GSM.search(text) is None:
        encoding, single, part, doubles = _GSM7, _gsm.SINGLE_GSM7, _gsm.CONCAT_GSM7, _EXTENSION
        units = len(text) + len(doubles.findall(text))
    else:
        encoding, single, part, doubles = _UCS2, _gsm.SINGLE_UCS2, _gsm.CONCAT_UCS2, _ASTRAL
        try:
            units = len(text.encode("utf-16-le")) // 2
        except UnicodeEncodeError as exc:  # strict UTF-16 refuses exactly the surrogates
            raise MessageError(index, "text", _surrogate_reason(text, exc.start)) from None
    if units <= single:
        return Segments(encoding, units, 1, single - units)
    if units == len(text):  # no two-unit character: parts are cut every `part` units
        count = -(-units // part)
        return Segments(encoding, units, count, count * part - units)
    # Where each two-unit character starts, in units: a part that would end in the
    # middle of one ends before it.
    starts = {match.start() + k for k, match in enumerate(doubles.finditer(text))}
    begin, count = 0, 1
    while units - begin > part:
        end = begin + part
        if end - 1 in starts:
            end -= 1
        begin, count = end, count + 1
    return Segments(encoding, units, count, part - (units - begin))


def _text_of(item: object, index: int) -> str:
    if _is_str(item):
        return cast(str, item)
    if issubclass(type(item), tuple):
        # tuple's own methods: a subclass's __len__ or __getitem__ is not consulted.
        fields = cast("tuple[object, ...]", item)
        size = tuple.__len__(fields)
        if not 2 <= size <= 5:
            raise MessageError(index, "message", f"expected 2 to 5 fields, got {size}")
        text = tuple.__getitem__(fields, 1)
        if not _is_str(text):
            raise MessageTypeError(index, "text", f"expected str, got {type(text).__name__}")
        return cast(str, text)
    raise MessageTypeError(
        index, "message", f"expected a str, a Message or a tuple, got {type(item).__name__}"
    )


def _items(items: Iterable[Item]) -> Sequence[Item]:
    if issubclass(type(items), (str, bytes, bytearray)):
        raise TypeError(f"expected a sequence of texts or messages, got {type(items).__name__}")
    return items if type(items) is list or type(items) is tuple else list(items)


def segments(text: str) -> Segments:
    """What one text costs: its encoding, length in units, segments and room left.

    Raises:
        MessageTypeError: ``text`` is not a ``str``.
        MessageError: ``text`` holds a lone surrogate (``index`` is ``None``).
    """
    if not _is_str(text):
        raise MessageTypeError(None, "text", f"expected str, got {type(text).__name__}")
    return _count(text, None)


def count_segments(items: Iterable[Item]) -> list[Segments]:
    """``segments()`` of each text, or of each message's text, in order.

    Args:
        items: texts (``str``), or ``Message`` records or tuples of 2 to 5 fields
            whose field 1 is the text; they may be mixed.

    Raises:
        TypeError: ``items`` is a ``str`` or ``bytes`` (not a sequence of texts).
        MessageTypeError: an item, or its text, of the wrong type (names the index).
        MessageError: a tuple of the wrong size, or a text with a lone surrogate.
    """
    return [_count(_text_of(item, i), i) for i, item in enumerate(_items(items))]


def total_segments(items: Iterable[Item]) -> SegmentTotals:
    """What a batch costs, in one record, without a record per message.

    Takes what ``count_segments`` takes and raises what it raises; returns
    ``SegmentTotals(messages, segments, gsm7_messages, gsm7_segments, ucs2_messages,
    ucs2_segments, largest, largest_index)``.
    """
    messages = total = gsm7_messages = gsm7_total = largest = 0
    largest_index: Optional[int] = None
    for i, item in enumerate(_items(items)):
        result = _count(_text_of(item, i), i)
        count = result[2]
        messages += 1
        total += count
        if result[0] == _GSM7:
            gsm7_messages += 1
            gsm7_total += count
        if count > largest:
            largest, largest_index = count, i
    return SegmentTotals(
        messages,
        total,
        gsm7_messages,
        gsm7_total,
        messages - gsm7_messages,
        total - gsm7_total,
        largest,
        largest_index,
    )
