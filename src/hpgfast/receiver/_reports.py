"""Reading pushed reports: parameters (query or form), STATUS lines, JSON.

Strategy: every shape ends as STATUS reply lines read by the codec's
``parse_status``, so codes and statuses are read exactly as in STATUS replies;
only ISO-8601 times, which the codec does not read, are read here. Anything
unreadable raises ``_Refused``: a 400 with a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional
from urllib.parse import parse_qsl

from .._records import StatusResult
from .._wire import FIELD_SEPARATOR, PROVIDER_ID, Code
from ..codec import parse_status
from ..exceptions import ProtocolError

#: The push parameters: the STATUS reply's fields under the names HPG uses.
STATUS_PARAM = "status"
DATETIME = "dateTime"
REASON = "reason"
_FIELDS = (PROVIDER_ID, STATUS_PARAM, DATETIME, REASON)
_FORM = "application/x-www-form-urlencoded"
_INDEXED = re.compile(r"^([A-Za-z]+)\[(\d{1,9})\]$")
_SEP = FIELD_SEPARATOR.decode()


class _Refused(Exception):
    """An HTTP error answer: status line and a one-line reason."""

    def __init__(self, status: str, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)



def _is_form(body: bytes) -> bool:
    """Whether a body sent as a form is one (``name=value&...``), not text sent as one.

    ``curl -d`` labels every body a form: STATUS lines (``ok;1001;...``) and JSON
    then arrive with the form's type. JSON starts with a brace or a bracket; a form's
    first name (``providerId``, ``providerId[0]``) holds no ``;`` or line break, as a
    STATUS line's start does, and is followed by ``=``.
    """
    if body.lstrip()[:1] in (b"{", b"["):
        return False
    head, sep, _ = body.partition(b"=")
    return bool(sep) and b";" not in head and b"\n" not in head


def _params(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                         encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _Refused("400 Bad Request", f"the {where} is not UTF-8") from None


def _reports_from_params(
    pairs: list[tuple[str, str]], tz: Optional[tzinfo]
) -> list[StatusResult]:
    plain: dict[str, str] = {}
    indexed: dict[int, dict[str, str]] = {}
    for name, value in pairs:
        match = _INDEXED.match(name)
        if match is not None and match.group(1) in _FIELDS:
            field, index = match.group(1), int(match.group(2))
            group = indexed.setdefault(index, {})
        elif name in _FIELDS:
            field, index, group = name, -1, plain
        else:
            continue  # other parameters (a secret, a login) are not ours to judge
        if field in group:
            raise _Refused("400 Bad Request", f"parameter {name!r} given twice")
        if _SEP in value or "\r" in value or "\n" in value:
            raise _Refused("400 Bad Request", f"parameter {name!r} holds ';' or a line break")
        group[field] = value
    if plain and indexed:
        raise _Refused("400 Bad Request", "plain and indexed report parameters mixed")
    groups = [plain] if plain else [indexed[i] for i in sorted(indexed)]
    if not groups:
        raise _Refused(
            "400 Bad Request",
            "no report: expected providerId and status parameters, or a body of STATUS lines",
        )
    return _reports_from_groups(groups, tz, "parameters")


def _reports_from_groups(
    groups: list[dict[str, str]], tz: Optional[tzinfo], what: str
) -> list[StatusResult]:
    """Reports from ``{field: value}`` groups: through the codec, as STATUS lines are,
    except ISO-8601 times, which the codec does not read and ``_iso_time`` does."""
    lines = []
    times: list[Optional[datetime]] = []
    for group in groups:
        for required in (PROVIDER_ID, STATUS_PARAM):
            if not group.get(required):
                raise _Refused("400 Bad Request", f"a report without {required!r}")
        when = group.get(DATETIME, "")
        iso = _iso_time(when, tz)
        times.append(iso)
        lines.append(_SEP.join((
            Code.OK, group[PROVIDER_ID], group[STATUS_PARAM],
            "" if iso is not None else when, group.get(REASON, ""),
        )))
    reports = _parse("\n".join(lines).encode("utf-8"), tz, what)
    if len(reports) != len(groups):  # pragma: no cover - every line is non-blank
        raise _Refused("400 Bad Request", f"unreadable {what}")
    return [r if when is None else StatusResult(r[0], r[1], r[2], when, r[4])
            for r, when in zip(reports, times)]


#: ISO-8601 as pushes write it: ``2020-01-10T19:03:52.355+0300``, ``...Z``,
#: ``...+03:00``, a space for the ``T``, seconds and fraction optional.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def _iso_time(text: str, tz: Optional[tzinfo]) -> Optional[datetime]:
    """An ISO-8601 time, or None for an empty text or one in HPG's own style
    (``2012.03.15 19:53:07``, ``2012-03-15 19:53:07``), which the codec reads.

    A time without an offset takes ``tz`` (naive when None), as the codec does.
    """
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, sep, hour, minute, second, fraction, offset = match.groups()
    if sep == " " and second is not None and fraction is None and offset is None:
        return None  # HPG's dashes style: the codec's
    try:
        zone: Optional[tzinfo] = tz
        if offset is not None:
            if offset in ("Z", "z"):
                zone = timezone.utc
            else:
                digits = offset[1:].replace(":", "")
                delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
                if int(digits[2:] or 0) > 59:
                    raise ValueError("offset minutes over 59")
                zone = timezone(-delta if offset[0] == "-" else delta)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone,
        )
    except ValueError as exc:
        raise _Refused("400 Bad Request", f"unreadable dateTime {text[:40]!r}: {exc}") from None


#: JSON pushes: hpgfast's field -> the names a JSON object may carry it under. The
#: defaults read hpgfast's own names and the platform's later delivery callbacks
#: (``{"imOutMessageId": .., "dlvStatus": .., "dlvStatusAt": ..}``).
JSON_FIELDS: dict[str, tuple[str, ...]] = {
    PROVIDER_ID: (PROVIDER_ID, "imOutMessageId"),
    STATUS_PARAM: (STATUS_PARAM, "dlvStatus"),
    DATETIME: (DATETIME, "dlvStatusAt"),
    REASON: (REASON,),
}


def _reports_from_json(
    body: bytes, fields: Mapping[str, Sequence[str]], tz: Optional[tzinfo]
) -> list[StatusResult]:
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Refused("400 Bad Request", "the JSON body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise _Refused("400 Bad Request", f"unreadable JSON body: {str(exc)[:80]}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _Refused("400 Bad Request", "no report in the JSON body")
    groups = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Refused("400 Bad Request", f"JSON report {n} is not an object")
        group: dict[str, str] = {}
        for field, names in fields.items():
            present = [name for name in names if item.get(name) is not None]
            if len(present) > 1:
                raise _Refused("400 Bad Request",
                               f"JSON report {n} gives {field} twice ({', '.join(present)})")
            if not present:
                continue
            value = item[present[0]]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise _Refused("400 Bad Request",
                               f"JSON report {n}: {present[0]!r} is not a string")
            text = str(value)
            if _SEP in text or "\r" in text or "\n" in text:
                raise _Refused("400 Bad Request",
                               f"JSON report {n}: {present[0]!r} holds ';' or a line break")
            group[field] = text
        groups.append(group)
    return _reports_from_groups(groups, tz, "JSON body")


def _parse(body: bytes, tz: Optional[tzinfo], what: str) -> list[StatusResult]:
    try:
        reports = parse_status(body, tz=tz)
    except ProtocolError as exc:
        raise _Refused("400 Bad Request", f"unreadable {what}: {exc}") from None
    if not reports:
        raise _Refused("400 Bad Request", f"no report in the {what}")
    for r in reports:
        if not r[1]:
            raise _Refused("400 Bad Request", f"a report without providerId in the {what}")
    return reports

