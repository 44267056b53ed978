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

- ``read_time``: any ISO-8601 date and time, extended or basic (``2024-05-01T10:00:00``,
  HPG's ``yyyy.MM.dd HH:mm:ss``, ``20240501T100000``): a calendar, ordinal
  (``2024-122``) or week date (``2024-W18-3``); ``T`` or a space; ``HH``, ``HH:mm`` or
  ``HH:mm:ss``, the smallest with an optional fraction of any length (cut to
  microseconds); an optional ``Z``, ``+hh:mm``, ``+hhmm`` or ``+hh`` (the minus may
  be U+2212). Spaces around the field are ignored. ``24:00`` is the end of a day,
  read as the next day's ``00:00``; a leap second (``23:59:60``) is read as the second
  before it (``23:59:59``), as ``datetime`` has none. Without an offset the time is in
  the platform's zone ``tz`` (naive when None); with one it is an aware
  ``datetime``, converted to ``tz`` when ``tz`` is given, so every time of a reply is
  in one zone. Anything else is ``None``, and so is a time ``datetime`` cannot hold:
  an expanded year (``+12012-05-01``), year 0, a moment past 9999.
- ``read_text``: UTF-8 when the bytes are valid UTF-8 (servers often declare
  ISO-8859-1 over UTF-8 text), else the reply's declared charset when it names a
  text encoding Python knows (an unknown or bogus name is ignored), else UTF-8 with
  U+FFFD for what cannot be read.
- ``charset_of``: the ``charset`` parameter of a Content-Type, or ``None``.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Optional

__all__ = ["charset_name", "charset_of", "read_text", "read_time"]

# One pattern for every form a reply may hold: extended (``2024-05-01T10:00:00``,
# or HPG's dots) or basic (``20240501T100000``); a calendar, ordinal (``2024-122``)
# or week date (``2024-W18-3``); hours, minutes and seconds down to hours alone, the
# smallest given with an optional fraction; an optional ``Z`` or offset (the minus
# may be U+2212). A field padded with spaces is read as without them.
_ISO = re.compile(
    rb"(?P<year>\d{4})"
    rb"(?:(?P<ds>[-.]?)(?P<month>\d{2})(?P=ds)(?P<day>\d{2})"
    rb"|-?[Ww](?P<week>\d{2})-?(?P<weekday>[1-7])"
    rb"|-?(?P<yday>\d{3}))"
    rb"[Tt ](?P<hour>\d{2})(?:(?P<ts>:?)(?P<minute>\d{2})(?:(?P=ts)(?P<second>\d{2}))?)?"
    rb"(?:[.,](?P<fraction>\d+))?"
    rb"(?:(?P<z>[Zz])|(?P<sign>[+-]|\xe2\x88\x92)(?P<oh>\d{2})(?::?(?P<om>\d{2}))?)?"
)
#: The length, in microseconds, of the smallest unit a time gives (its fraction's).
_UNIT = {"hour": 3_600_000_000, "minute": 60_000_000, "second": 1_000_000}


def read_time(raw: bytes, tz: Optional[tzinfo]) -> Optional[datetime]:
    """An ISO-8601 date and time (see the module), or ``None`` when ``raw`` is not one."""
    match = _ISO.fullmatch(raw.strip())
    if match is None:
        return None
    g = match.groupdict()
    zone: Optional[tzinfo] = tz
    if g["z"] is not None:
        zone = timezone.utc
    elif g["sign"] is not None:
        hours, minutes = int(g["oh"]), int(g["om"] or 0)
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone(delta if g["sign"] == b"+" else -delta)
    hour, minute, second = int(g["hour"]), int(g["minute"] or 0), int(g["second"] or 0)
    fraction = g["fraction"] or b"0"
    # The fraction is of the smallest unit given (10.5 is half past ten), cut to
    # microseconds as datetime holds them.
    unit = "second" if g["second"] else "minute" if g["minute"] else "hour"
    micro = int(fraction[:12].ljust(12, b"0")) * _UNIT[unit] // 10**12
    end_of_day = hour == 24  # ISO's 24:00, the end of a day: the next day's 00:00
    if end_of_day and (minute or second or micro):
        return None
    if second == 60:  # a leap second (23:59:60): datetime has none, so the one before
        second = 59
    try:
        year = int(g["year"])
        if g["week"] is not None:
            day = date.fromisocalendar(year, int(g["week"]), int(g["weekday"]))
        elif g["yday"] is not None:
            day = date(year, 1, 1) + timedelta(days=int(g["yday"]) - 1)
            if not 1 <= int(g["yday"]) <= 366 or day.year != year:
                return None
        else:
            day = date(year, int(g["month"]), int(g["day"]))
        when = datetime(
            day.year, day.month, day.day, 0 if end_of_day else hour, minute, second,
            tzinfo=zone,
        ) + timedelta(days=end_of_day, microseconds=micro)
    except (ValueError, OverflowError):  # no such day or moment (2024-02-30, 25:00)
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
