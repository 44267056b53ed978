"""What a message costs before it is sent: SMS segments, and transliteration.

An SMS platform bills by segment. ``segments(text)`` says how a text goes out:
GSM 7-bit (160 septets in one SMS, 153 a part when concatenated, the extension
characters ``^{}\\[~]|€`` and form feed costing two) or UCS-2 (70 UTF-16 units, 67
a part, a character outside the BMP costing two); the rules and their sources
(3GPP TS 23.038 and TS 23.040) are in ``hpgfast._gsm`` and ``docs/segments.md``.

>>> segments("Hello")
Segments(encoding='gsm7', units=5, segments=1, remaining=155)
>>> segments("Привет")
Segments(encoding='ucs2', units=6, segments=1, remaining=64)

For batches, ``count_segments(messages)`` gives a record per message and
``total_segments(messages)`` the totals alone (no record per message: the form for
a dry run over millions). Both take texts or ``Message`` records (or tuples whose
field 1 is the text), run on a compiled core with the GIL released, and have a
pure-Python twin with the same results and errors. ``IMPLEMENTATION`` says which is
in use (``"compiled"`` or ``"python"``); ``HPGFAST_PURE_PYTHON=1`` forces the twin,
as for ``hpgfast.codec``.

``transliterate(text)`` writes Russian letters in Latin ones (ICAO Doc 9303, the
table of Russian passports); ``transliterate_if_cheaper(text)`` does it only when
that makes the message need fewer segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._gsm import GSM7
from ._records import Message
from ._sms_records import Segments, SegmentTotals
from ._switch import PURE_PYTHON_REQUESTED
from ._translit import ICAO_9303_RUSSIAN, transliterate
from .exceptions import MessageError

__all__ = [
    "ICAO_9303_RUSSIAN",
    "IMPLEMENTATION",
    "SegmentTotals",
    "Segments",
    "count_segments",
    "segments",
    "total_segments",
    "transliterate",
    "transliterate_if_cheaper",
    "transliterate_messages",
]

if TYPE_CHECKING or PURE_PYTHON_REQUESTED:
    from ._sms_py import count_segments, segments, total_segments

    IMPLEMENTATION = "python"
else:
    try:
        from ._sms_c import count_segments, segments, total_segments
    except ImportError:  # installed with HPGFAST_NO_EXTENSIONS=1, or no compiler
        from ._sms_py import count_segments, segments, total_segments

        IMPLEMENTATION = "python"
    else:
        IMPLEMENTATION = "compiled"


def transliterate_if_cheaper(text: str) -> tuple[str, bool]:
    """``(transliterate(text), True)`` when that needs fewer segments, else ``(text, False)``.

    A GSM 7-bit text is never changed, nor one that stays UCS-2 after
    transliteration (an emoji or a ``№`` keeps it so): only a text that becomes
    GSM 7-bit and, with that, cheaper.

    Raises:
        MessageTypeError: ``text`` is not a ``str``.
        MessageError: ``text`` holds a lone surrogate.
    """
    before = segments(text)
    if before[0] == GSM7:
        return text, False
    latin = transliterate(text)
    if latin == text:
        return text, False
    after = segments(latin)
    if after[0] == GSM7 and after[2] < before[2]:
        return latin, True
    return text, False


def transliterate_messages(messages: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """``transliterate_if_cheaper`` over a batch: the messages to send, and which changed.

    Returns a new list in which each message whose text gets cheaper in Latin
    letters is a copy with the new text (a ``Message``; other fields kept), and the
    indexes of those messages. Messages are ``Message`` records or tuples whose
    field 1 is the text; the others are returned as they are.

    Raises:
        MessageTypeError, MessageError: as ``segments``, naming the message's index.
    """
    out = list(messages)
    changed: list[int] = []
    for index, message in enumerate(out):
        text = message[1]
        if type(text) is str and text.isascii():
            continue  # ASCII needs no transliteration: the common case, made cheap
        try:
            latin, cheaper = transliterate_if_cheaper(text)
        except MessageError as exc:
            raise type(exc)(index, "text", exc.reason) from None
        if cheaper:
            fields = list(message) + [None] * (5 - len(message))
            fields[1] = latin
            out[index] = Message(*fields[:5])
            changed.append(index)
    return out, changed
