"""Fields read tolerantly: a time in another shape, text that is not UTF-8.

Strategy: only a reply line's code, ids and status decide an outcome, and they stay
strict ASCII tokens (or UTF-8 ids). The other fields (a STATUS line's time and
reason, a SEND line's description or extra fields) are read on the codec's fast
path when they have the usual shape (``yyyy.MM.dd HH:mm:ss``, UTF-8); only a field
that does not is read here, so that it costs that field and never the line. This
is the one place the rules live: both codec twins (the compiled one calls these
functions on the rare line that needs them), the core (a non-200 reply's
description) and the receiver read with them.

The rules:

- ``read_time``: any ISO-8601 date and time (``yyyy-MM-dd``, or HPG's
  ``yyyy.MM.dd``; ``T`` or a space; ``HH:mm`` with optional ``:ss`` and a fraction of
  any length, cut to microseconds; an optional ``Z``, ``+hh:mm``, ``+hhmm`` or
  ``+hh``). Without an offset the time is in the platform's zone ``tz`` (naive when
  None); with one it is an aware ``datetime``, converted to ``tz`` when ``tz`` is
  given, so every time of a reply is in one zone. Anything else is ``None``.
- ``read_text``: UTF-8 when the bytes are valid UTF-8 (servers often declare
  ISO-8859-1 over UTF-8 text), else the reply's declared charset when it names a
  text encoding Python knows (an unknown or bogus name is ignored), else UTF-8 with
  U+FFFD for what cannot be read.
- ``charset_of``: the ``charset`` parameter of a Content-Type, or ``None``.
"""

from __future__ import annotations

import codecs
import re
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Optional

__all__ = ["charset_name", "charset_of", "read_text", "read_time"]

_ISO = re.compile(
    rb"(\d{4})([-.])(\d{2})\2(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    rb"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?"
)


def read_time(raw: bytes, tz: Optional[tzinfo]) -> Optional[datetime]:
    """An ISO-8601 date and time (see the module), or ``None`` when ``raw`` is not one."""
    match = _ISO.fullmatch(raw)
    if match is None:
        return None
    year, _, month, day, hour, minute, second, fraction, z, sign, oh, om = match.groups()
    zone: Optional[tzinfo] = tz
    if z is not None:
        zone = timezone.utc
    elif sign is not None:
        hours, minutes = int(oh), int(om or 0)
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-delta if sign == b"-" else delta)
    micro = int(fraction[:6].ljust(6, b"0")) if fraction else 0
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
            tzinfo=zone,
        )
    except ValueError:  # no such day or moment (2024-02-30, 25:00, second 60)
        return None
    if zone is not tz and tz is not None:
        try:
            when = when.astimezone(tz)
        except (OverflowError, ValueError):  # past year 1 or 9999 in tz: as written
            pass
    return when


def charset_name(charset: object) -> Optional[str]:
    """``charset`` when it names a text encoding Python knows, else ``None``.

    Raises:
        TypeError: ``charset`` is neither ``None`` nor a ``str``.
    """
    if charset is None:
        return None
    if type(charset) is not str:
        raise TypeError(f"charset must be a str or None, got {type(charset).__name__}")
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return None
    # bytes.decode refuses the bytes-to-bytes codecs (hex, zlib, rot13) anyway.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def read_text(raw: bytes, charset: Optional[str]) -> str:
    """``raw`` as text by the rule of the module; ``charset`` from ``charset_name``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if charset is not None:
        try:
            return raw.decode(charset)
        except (LookupError, ValueError, TypeError):  # UnicodeDecodeError is a ValueError
            pass
    return raw.decode("utf-8", "replace")


def charset_of(content_type: Optional[str]) -> Optional[str]:
    """The charset a Content-Type declares (``text/plain; charset=windows-1251``),
    as ``charset_name`` gives it; ``None`` when there is none, it is unknown, or it
    is UTF-8 (which ``read_text`` tries first in any case).

    A Content-Type without parameters costs one ``in`` test; the others are
    remembered (a server sends the same one or two).
    """
    if not content_type or ";" not in content_type:
        return None
    return _declared(content_type)


@lru_cache(maxsize=64)
def _declared(content_type: str) -> Optional[str]:
    for param in content_type.split(";")[1:]:
        name, sep, value = param.partition("=")
        if sep and name.strip().lower() == "charset":
            value = value.strip().strip('"').strip()
            charset = charset_name(value) if value else None
            return None if charset == "utf-8" else charset
    return None
