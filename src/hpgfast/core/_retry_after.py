"""``Retry-After`` read as seconds to wait: delay-seconds or any HTTP-date form.

The rules (``_rules``) read no clock: a date is read against the wall-clock time
the reply came, which the transport passes in.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Optional

__all__ = ["retry_after_seconds"]

#: delay-seconds (RFC 9110: 1*DIGIT), and a decimal, which some gateways send.
_DELAY = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
#: More digits than any wait: capped without asking int() (which refuses very long
#: strings) to read them.
_MANY_DIGITS = 15


def retry_after_seconds(
    value: Optional[str], cap: float, wall: Optional[float] = None
) -> Optional[float]:
    """``Retry-After`` as seconds to wait, at most ``cap``; ``None`` if unreadable.

    ``value`` is delay-seconds, or an HTTP-date (any form RFC 9110 allows: IMF-fixdate,
    the obsolete RFC 850 and asctime forms), read against ``wall``, the wall-clock
    time (``time.time()``) the reply came: the rules read no clock, so without
    ``wall`` a date is unreadable. A date already past is no wait (0). A decimal is
    not delay-seconds but plainly asks for a pause: it is rounded up to whole
    seconds. Anything else (a sign, words, an impossible date) is as if the header
    were absent: the caller falls back to its backoff.
    """
    if value is None:
        return None
    value = value.strip()
    delay = _DELAY.fullmatch(value)
    if delay is None and "," in value:
        # "2, 2": the header twice, joined into one list by a proxy (RFC 9110 5.3);
        # an HTTP-date holds a comma too, so only a list of delays is read so.
        first, _, rest = value.partition(",")
        if all(_DELAY.fullmatch(part.strip()) for part in rest.split(",")):
            delay = _DELAY.fullmatch(first.strip())
    if delay is not None:
        whole = delay.group(1).lstrip("0")
        if len(whole) > _MANY_DIGITS:
            return float(cap)
        seconds = int(whole or "0")
        fraction = delay.group(2)
        if fraction is not None and fraction.strip("0"):
            seconds += 1
        return float(min(seconds, cap))
    if wall is None:
        return None
    at = _http_date(value, wall)
    if at is None:
        return None
    return min(max(at - wall, 0.0), cap)


#: The three forms of an HTTP-date (RFC 9110 5.6.7), told apart by their shape:
#: IMF-fixdate ``Sun, 06 Nov 1994 08:49:37 GMT`` and the obsolete RFC 850
#: ``Sunday, 06-Nov-94 08:49:37 GMT`` (day, month, year), and asctime
#: ``Sun Nov  6 08:49:37 1994`` (month, day, time, year). Read leniently as
#: gateways write them: any case, the weekday left out, another zone than GMT.
_DAY_FIRST = re.compile(
    r"(?:[a-z]+,?\s+)?([0-9]{1,2})[\s-]([a-z]{3})[\s-]([0-9]{4}|[0-9]{2})"
    r"\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\s+(gmt|utc|ut|z|[+-][0-9]{4}))?",
    re.IGNORECASE,
)
_ASCTIME = re.compile(
    r"(?:[a-z]+\s+)?([a-z]{3})\s+([0-9]{1,2})\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"\s+([0-9]{4})(?:\s+(gmt|utc|ut|z))?",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def _http_date(value: str, wall: float) -> Optional[float]:
    """An HTTP-date as a POSIX timestamp; ``None`` if it is not one.

    Read here rather than by ``email.utils``, which would bring ``socket`` into the
    core, and reads an unknown zone as GMT where this reads no date at all.
    """
    day_first = _DAY_FIRST.fullmatch(value)
    if day_first is not None:
        day, month, year, hour, minute, second, zone = day_first.groups()
    else:
        asctime = _ASCTIME.fullmatch(value)
        if asctime is None:
            return None
        month, day, hour, minute, second, year, zone = asctime.groups()
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    full_year = int(year)
    if len(year) == 2:
        # RFC 850's two digits: the year of that century within 50 years of now.
        full_year += 2000
        if full_year > _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).year + 50:
            full_year -= 100
    offset = 0
    if zone is not None and zone[0] in "+-":
        offset = (int(zone[1:3]) * 60 + int(zone[3:5])) * (-1 if zone[0] == "-" else 1)
    try:
        zone_of = _dt.timezone(_dt.timedelta(minutes=offset))
        fields = (full_year, number, int(day), int(hour), int(minute), int(second))
        return _dt.datetime(*fields, tzinfo=zone_of).timestamp()
    except (ValueError, OverflowError):
        # An impossible day, hour or offset; a year past datetime's range.
        return None
