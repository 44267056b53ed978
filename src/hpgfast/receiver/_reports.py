"""Reading pushed reports: parameters (query or form), STATUS lines, JSON.

Strategy: every shape ends as STATUS reply lines read by the codec's
``parse_status``, so codes, ids, statuses, times (HPG's own shape, or ISO-8601) and
reasons are read exactly as in STATUS replies: a time or a reason that cannot be
read costs only itself (``hpgfast._fields``), never the report. Parameters and JSON
are taken apart here with their bytes kept, so that an id or a status that is not
UTF-8 is refused while a reason in another charset is decoded by the rule. Anything
unreadable raises ``_Refused``: a 400 with a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import tzinfo
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
    """The pairs of a query or form, each value's bytes as they came (a ``str`` of
    code points below 256, ``latin-1``): ``_value`` reads them by field."""
    return parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                     encoding="latin-1", errors="strict")


def _value(field: str, raw: bytes, name: str) -> bytes:
    """A report field's bytes, for its STATUS line: a reason as it came (the codec
    reads it by the tolerant rule, ``hpgfast._fields``, and keeps the bytes), any
    other field (an id, a status, a time) only as UTF-8, else refused."""
    if field != REASON:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("400 Bad Request", f"{name!r} is not UTF-8") from None
    # ASCII bytes never stand inside a UTF-8 (or windows-1251) character.
    if b";" in raw or b"\r" in raw or b"\n" in raw:
        raise _Refused("400 Bad Request", f"{name!r} holds ';' or a line break")
    return raw


def _reports_from_params(
    pairs: list[tuple[str, str]], tz: Optional[tzinfo], charset: Optional[str] = None
) -> list[StatusResult]:
    plain: dict[str, bytes] = {}
    indexed: dict[int, dict[str, bytes]] = {}
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
        group[field] = _value(field, value.encode("latin-1"), f"parameter {name!r}")
    if plain and indexed:
        raise _Refused("400 Bad Request", "plain and indexed report parameters mixed")
    groups = [plain] if plain else [indexed[i] for i in sorted(indexed)]
    if not groups:
        raise _Refused(
            "400 Bad Request",
            "no report: expected providerId and status parameters, or a body of STATUS lines",
        )
    return _reports_from_groups(groups, tz, "parameters", charset)


def _reports_from_groups(
    groups: list[dict[str, bytes]], tz: Optional[tzinfo], what: str, charset: Optional[str]
) -> list[StatusResult]:
    """Reports from ``{field: bytes}`` groups: through the codec, as STATUS lines are
    (a time in any shape, ISO-8601 included, and a reason in any charset are the
    codec's to read).

    ISO-8601 is these shapes' own way to write a time (the platform's JSON callbacks
    do), so a report keeps its line's bytes (``raw``, the line made here) only when
    its time could not be read or its reason was not UTF-8.
    """
    lines = []
    for group in groups:
        for required in (PROVIDER_ID, STATUS_PARAM):
            if not group.get(required):
                raise _Refused("400 Bad Request", f"a report without {required!r}")
        lines.append(b";".join((
            Code.OK.encode(), group[PROVIDER_ID], group[STATUS_PARAM],
            group.get(DATETIME, b""), group.get(REASON, b""),
        )))
    reports = _parse(b"\n".join(lines), tz, what, charset)
    if len(reports) != len(groups):  # pragma: no cover - every line is non-blank
        raise _Refused("400 Bad Request", f"unreadable {what}")
    out = []
    for report, group in zip(reports, groups):
        if len(report) > 5 and (report[3] is not None or not group.get(DATETIME)):
            try:
                group.get(REASON, b"").decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                report = StatusResult(*report[:5])
        out.append(report)
    return out


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
    body: bytes,
    fields: Mapping[str, Sequence[str]],
    tz: Optional[tzinfo],
    charset: Optional[str] = None,
) -> list[StatusResult]:
    try:
        # Bytes that are not UTF-8 are kept (as surrogates) for _value to judge by
        # field: a reason in another charset is read, an id so is refused.
        data = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as exc:
        raise _Refused("400 Bad Request", f"unreadable JSON body: {str(exc)[:80]}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _Refused("400 Bad Request", "no report in the JSON body")
    groups = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Refused("400 Bad Request", f"JSON report {n} is not an object")
        group: dict[str, bytes] = {}
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
            try:
                raw = text.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a \ud800 escape: no UTF-8 at all
                raw = text.encode("utf-8", "surrogatepass")
            group[field] = _value(field, raw, f"JSON report {n}: {present[0]!r}")
        groups.append(group)
    return _reports_from_groups(groups, tz, "JSON body", charset)


def _parse(
    body: bytes, tz: Optional[tzinfo], what: str, charset: Optional[str] = None
) -> list[StatusResult]:
    try:
        reports = parse_status(body, tz=tz, charset=charset)
    except ProtocolError as exc:
        raise _Refused("400 Bad Request", f"unreadable {what}: {exc}") from None
    if not reports:
        raise _Refused("400 Bad Request", f"no report in the {what}")
    for r in reports:
        if not r[1]:
            raise _Refused("400 Bad Request", f"a report without providerId in the {what}")
    return reports

