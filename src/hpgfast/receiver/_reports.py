"""Reading pushed reports: parameters (query or form), STATUS lines, JSON.

Strategy: every shape ends as STATUS reply lines read by the codec's
``read_status``, so codes, ids, statuses, times (HPG's own shape, or ISO-8601) and
reasons are read exactly as in STATUS replies: a time or a reason that cannot be
read costs only itself (``hpgfast._fields``), never the report. Parameters and JSON
are taken apart here with their bytes kept, so that an id or a status that is not
UTF-8 is refused while a reason in another charset is decoded by the rule; a time
or a reason that cannot stand in a line (a line break, a ``;`` in a time, a JSON
object) is read by the same rules on its own, or is ``None``, its text kept in the
report's ``raw``.

Only the provider id and the status may refuse a report, and a report refused costs
only itself: each shape gives the reports it could read and a ``Problems`` naming
the others (by line or report number and what was wrong, never their bytes, which
may hold anything). Only a push with no report to take at all raises ``_Refused``: a
400 with a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Optional, Union
from urllib.parse import parse_qsl

from .._fields import read_text, read_time
from .._records import StatusResult
from .._wire import FIELD_SEPARATOR, PROVIDER_ID, Code
from ..codec import read_status

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


class Problems(list[str]):
    """The reports of a push that could not be read, one ``"line 2: garbled code"``
    each, and how many reports the push held (``total``)."""

    def __init__(self, total: int = 0) -> None:
        super().__init__()
        self.total = total


class _Unread(bytes):
    """A time's or a reason's JSON text when the value is of another type (an
    object, a list, a boolean): the field is ``None``, the text kept in ``raw``."""


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
    """A report field's bytes, for its STATUS line. An id or a status, which decide
    the outcome, only as UTF-8 without ``;`` or a line break, else refused; a time or
    a reason as it came (the codec reads it by the tolerant rule, ``hpgfast._fields``,
    and one that cannot stand in a line is read on its own: ``_fits``)."""
    if field in (DATETIME, REASON):
        return raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("400 Bad Request", f"{name!r} is not UTF-8") from None
    # ASCII bytes never stand inside a UTF-8 character.
    if b";" in raw or b"\r" in raw or b"\n" in raw:
        raise _Refused("400 Bad Request", f"{name!r} holds ';' or a line break")
    return raw


def _fits(field: str, raw: bytes) -> bool:
    """Whether a time's or a reason's bytes can stand in a STATUS line: no line break,
    and for a time no ``;`` (a reason is the line's last field, ``;`` and all)."""
    if isinstance(raw, _Unread) or b"\r" in raw or b"\n" in raw:
        return False
    return field == REASON or b";" not in raw


def _reports_from_params(
    pairs: list[tuple[str, str]], tz: Optional[tzinfo], charset: Optional[str] = None
) -> tuple[list[StatusResult], Problems]:
    plain: dict[str, bytes] = {}
    indexed: dict[int, dict[str, bytes]] = {}
    refused: dict[int, str] = {}  # an indexed report's first fault: costs only that one
    for name, value in pairs:
        match = _INDEXED.match(name)
        if match is not None and match.group(1) in _FIELDS:
            field, index = match.group(1), int(match.group(2))
            group = indexed.setdefault(index, {})
        elif name in _FIELDS:
            field, index, group = name, -1, plain
        else:
            continue  # other parameters (a secret, a login) are not ours to judge
        try:
            if field in group:
                raise _Refused("400 Bad Request", f"parameter {name!r} given twice")
            group[field] = _value(field, value.encode("latin-1"), f"parameter {name!r}")
        except _Refused as exc:
            if index < 0:
                raise  # the one plain report: refused, as the push
            refused.setdefault(index, exc.reason)
    if plain and indexed:
        raise _Refused("400 Bad Request", "plain and indexed report parameters mixed")
    if plain:
        groups: list[tuple[str, Union[dict[str, bytes], str]]] = [("report", plain)]
    else:
        groups = [(f"report {i}", refused.get(i, indexed[i])) for i in sorted(indexed)]
    if not groups:
        raise _Refused(
            "400 Bad Request",
            "no report: expected providerId and status parameters, or a body of STATUS lines",
        )
    return _reports_from_groups(groups, tz, "parameters", charset)


def _reports_from_groups(
    groups: Sequence[tuple[str, Union[dict[str, bytes], str]]],
    tz: Optional[tzinfo],
    what: str,
    charset: Optional[str],
) -> tuple[list[StatusResult], Problems]:
    """Reports from ``(name, {field: bytes})`` groups (or ``(name, why)`` for one
    refused already): through the codec, as STATUS lines are (a time in any shape,
    ISO-8601 included, and a reason in any charset are the codec's to read).

    ISO-8601 is these shapes' own way to write a time (the platform's JSON callbacks
    do), so a report keeps its line's bytes (``raw``, the line made here) only when
    its time could not be read, its reason was not UTF-8, or one of them could not
    stand in a line (``_fits``): that one is read on its own by the same rules, or
    is ``None`` when it was of another JSON type, its text kept in ``raw``.
    """
    problems = Problems(len(groups))
    lines, taken = [], []
    for name, group in groups:
        if isinstance(group, str):
            problems.append(group if group.startswith(name) else f"{name}: {group}")
            continue
        missing = [f for f in (PROVIDER_ID, STATUS_PARAM) if not group.get(f)]
        if missing:
            problems.append(f"{name}: a report without {missing[0]!r}")
            continue
        when, reason = group.get(DATETIME, b""), group.get(REASON, b"")
        lines.append(b";".join((
            Code.OK.encode(), group[PROVIDER_ID], group[STATUS_PARAM],
            when if _fits(DATETIME, when) else b"", reason if _fits(REASON, reason) else b"",
        )))
        taken.append((name, group))
    reports, errors = _read(b"\n".join(lines), tz, charset)
    # The lines made here are numbered from 1, one per group taken, none blank.
    bad = {e.line: _kind(e) for e in errors}
    out: list[StatusResult] = []
    for number, (name, group) in enumerate(taken, 1):
        if number in bad:
            problems.append(f"{name}: {bad[number]}")
            continue
        report = reports[len(out)]
        when, reason = group.get(DATETIME, b""), group.get(REASON, b"")
        if not (_fits(DATETIME, when) and _fits(REASON, reason)):
            report = StatusResult(
                report[0], report[1], report[2],
                report[3] if _fits(DATETIME, when) else _aside_time(when, tz),
                report[4] if _fits(REASON, reason) else _aside_text(reason, charset),
                b";".join((Code.OK.encode(), group[PROVIDER_ID], group[STATUS_PARAM],
                           when, reason)),
            )
        elif len(report) > 5 and (report[3] is not None or not when):
            try:
                reason.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                report = StatusResult(*report[:5])
        out.append(report)
    if not out:  # nothing to take: the push is refused, for its first fault
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _Refused("400 Bad Request", problems[0] + more)
    return out, problems


def _aside_time(raw: bytes, tz: Optional[tzinfo]) -> Optional[datetime]:
    return None if isinstance(raw, _Unread) else read_time(raw, tz)


def _aside_text(raw: bytes, charset: Optional[str]) -> Optional[str]:
    return None if isinstance(raw, _Unread) or not raw else read_text(raw, charset)


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
) -> tuple[list[StatusResult], Problems]:
    # Bytes that are not UTF-8 are kept (as surrogates) for _value to judge by
    # field: a reason in another charset is read, an id so is refused.
    text = body.decode("utf-8", "surrogateescape")
    if text.count("[") + text.count("{") >= MAX_JSON_DEPTH:
        # Perhaps nested deeper than any report: each value that deep is cut, so it
        # costs only its field (or its report), never the push; and alike on every
        # Python (3.12 parses thousands of levels where 3.11 raises RecursionError).
        text = _cut_deep(text)
    try:
        data = json.loads(text, parse_float=_JsonFloat)
    except (ValueError, RecursionError) as exc:
        raise _Refused("400 Bad Request", f"unreadable JSON body: {str(exc)[:80]}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _Refused("400 Bad Request", "no report in the JSON body")
    groups: list[tuple[str, Union[dict[str, bytes], str]]] = []
    for n, item in enumerate(items):
        try:
            groups.append((f"JSON report {n}", _json_group(n, item, fields)))
        except _Refused as exc:
            groups.append((f"JSON report {n}", exc.reason))
    return _reports_from_groups(groups, tz, "JSON body", charset)


def _json_group(n: int, item: Any, fields: Mapping[str, Sequence[str]]) -> dict[str, bytes]:
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
        text: Optional[str] = None
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            pass
        elif isinstance(value, _JsonFloat):
            if field == REASON:
                text = value.text  # a number is text, as it was written
            elif field == PROVIDER_ID:
                # An id written as a number with a zero fraction (2006.0) is its
                # integer digits as written (never the float, which rounds long ids);
                # any other fraction or an exponent is not an id.
                whole = _INTEGRAL.fullmatch(value.text)
                text = whole.group(1) if whole else None
        elif isinstance(value, int):
            text = str(value)  # a number is text: a reason code, an id
        if text is None:
            if field not in (DATETIME, REASON):
                raise _Refused("400 Bad Request",
                               f"JSON report {n}: {present[0]!r} is not a string")
            # A time or a reason of another type costs only itself: None, its JSON
            # text kept in the report's raw.
            group[field] = _Unread(_utf8(json.dumps(value, ensure_ascii=False)))
            continue
        group[field] = _value(field, _utf8(text), f"JSON report {n}: {present[0]!r}")
    return group


class _JsonFloat(float):
    """A JSON number with a fraction or an exponent, with its text as written."""

    text: str

    def __new__(cls, text: str) -> _JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


_INTEGRAL = re.compile(r"(\d+)\.0+")
#: How deep a JSON value may nest before what is deeper is cut (``_cut_deep``): far
#: beyond any report's shape, far below the parser's recursion limit.
MAX_JSON_DEPTH = 64
_TOO_DEEP = '"(nested too deep)"'
_JSON_TOKEN = re.compile(r'["\[\]{}]')
_IN_STRING = re.compile(r'["\\]')


def _string_end(text: str, i: int) -> int:
    """The index after the string whose body starts at ``i``."""
    while True:
        m = _IN_STRING.search(text, i)
        if m is None:
            return len(text)
        if m.group() == '"':
            return m.end()
        i = m.end() + 1  # an escape: skip the escaped character


def _cut_deep(text: str, limit: int = MAX_JSON_DEPTH) -> str:
    """JSON text with every array or object opened at depth ``limit`` replaced by
    a string: the value holding it is then of the wrong type, costing only itself.
    Unbalanced text is left for the parser to refuse."""
    out: list[str] = []
    depth = 0
    i = last = 0
    cut_from: Optional[int] = None
    while True:
        m = _JSON_TOKEN.search(text, i)
        if m is None:
            break
        c, j = m.group(), m.start()
        if c == '"':
            i = _string_end(text, m.end())
            continue
        i = m.end()
        if c in "[{":
            depth += 1
            if depth == limit and cut_from is None:
                cut_from = j
        else:
            if depth == limit and cut_from is not None:
                out += [text[last:cut_from], _TOO_DEEP]
                last, cut_from = i, None
            depth -= 1
    out.append(text[last:])
    return "".join(out)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a \ud800 escape: no UTF-8 at all
        return text.encode("utf-8", "surrogatepass")


def _kind(error: Any) -> str:
    """What was wrong with a line (``garbled code``), without the line: the codec's
    reason quotes the line's start after `` in ``, and a line may hold anything."""
    return str(error.reason).split(" in ", 1)[0]


def _read(
    body: bytes, tz: Optional[tzinfo], charset: Optional[str]
) -> tuple[list[StatusResult], list[Any]]:
    return read_status(body, tz=tz, charset=charset)


def _parse(
    body: bytes, tz: Optional[tzinfo], what: str, charset: Optional[str] = None
) -> tuple[list[StatusResult], Problems]:
    """A body of STATUS lines: the reports of its readable lines, and a problem per
    line that is not one (by its number), so that one bad line costs only itself."""
    reports, errors = _read(body, tz, charset)
    problems = Problems(len(reports) + len(errors))
    problems.extend(f"line {e.line}: {_kind(e)}" for e in errors)
    good = [r for r in reports if r[1]]
    if len(good) < len(reports):
        problems.append(f"{len(reports) - len(good)} report(s) without providerId")
    if not good:
        if errors:
            raise _Refused("400 Bad Request", f"unreadable {what}: {problems[0]}")
        if reports:
            raise _Refused("400 Bad Request", f"a report without providerId in the {what}")
        raise _Refused("400 Bad Request", f"no report in the {what}")
    return good, problems
