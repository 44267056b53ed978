"""The pure codec twin's reply readers: ``parse_*``, ``read_*``, ``match_*``.

Part of the pure-Python twin of the compiled core (``_codec_py`` imports every name
of ``__all__`` here, and is the module the selector and the tests use); the rules
are written in ``_codec_py``'s docstring, under parse_send / parse_status and
read_send / read_status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, Optional, Union

from . import _wire
from ._columns import SendColumns
from ._fields import charset_name, read_text, read_time
from ._records import SendResult, StatusResult
from .exceptions import ProtocolError

__all__ = [
    "match_send",
    "match_status",
    "parse_send",
    "parse_status",
    "read_send",
    "read_send_columns",
    "read_status",
]

_CODE_CHARS = bytes(sorted(_wire.CODE_CHARS))
_STRIP = _wire.LINE_STRIP
_INTERNED = {s: s for s in (*_wire.Code.PLATFORM, *_wire.Status.ALL)}

Body = Union[bytes, bytearray, memoryview]


def _type_name(value: object) -> str:
    return type(value).__name__


# -- parsing -------------------------------------------------------------------------


def _lines(body: Body) -> list[tuple[int, bytes]]:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"a reply body must be bytes-like, got {_type_name(body)}")
    data = bytes(body)
    if data.startswith(_wire.BOM):
        data = data[len(_wire.BOM) :]
    out = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip(_STRIP)
        if line:
            out.append((number, line))
    return out


def _fields(line: bytes, number: int, count: int) -> list[bytes]:
    # The last field is the rest of the line, ";" included (a STATUS reason such as
    # "absent;subscriber", a SEND line's extra fields): only trailing separators (a
    # stray ";" at the end) are dropped from it.
    fields = line.split(b";", count - 1)
    if len(fields) == count:
        fields[-1] = fields[-1].rstrip(b";")
    code = fields[0]
    if not code:
        raise ProtocolError(number, "empty code")
    if code.translate(None, _CODE_CHARS):
        raise ProtocolError(number, "garbled code")
    fields += [b""] * (count - len(fields))
    return fields


def _text(raw: bytes, number: int) -> Optional[str]:
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(number, "not UTF-8") from None
    return _INTERNED.get(text, text)


def _token(raw: bytes, number: int, what: str) -> Optional[str]:
    if not raw:
        return None
    if raw.translate(None, _CODE_CHARS):
        raise ProtocolError(number, f"garbled {what}")
    text = raw.decode("ascii")
    return _INTERNED.get(text, text)


def _digits(raw: bytes) -> int:
    # int() would take "+1", " 1" or "1_0"; only ASCII digits are allowed here.
    if not raw.isdigit():
        raise ValueError
    return int(raw)


def _free(raw: bytes, charset: Optional[str]) -> tuple[Optional[str], bool]:
    # Free text (a STATUS reason, a SEND line's description or extra fields): an
    # outcome never depends on it, so text that is not UTF-8 costs only itself
    # (hpgfast._fields' rule); the flag says it was read so.
    if not raw:
        return None, False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return read_text(raw, charset), True
    return _INTERNED.get(text, text), False


def _datetime(raw: bytes, tz: Optional[tzinfo]) -> tuple[Optional[datetime], bool]:
    # HPG's own shape (the usual one) here; any other goes to hpgfast._fields, and a
    # time that cannot be read is None: the flag says it was not read the usual way.
    if not raw:
        return None, False
    if (
        len(raw) == _wire.DATETIME_LENGTH
        and raw[4:5] in (b".", b"-")
        and raw[7:8] == raw[4:5]
        and raw[10:11] == b" "
        and raw[13:14] == b":"
        and raw[16:17] == b":"
    ):
        try:
            return datetime(
                _digits(raw[0:4]),
                _digits(raw[5:7]),
                _digits(raw[8:10]),
                _digits(raw[11:13]),
                _digits(raw[14:16]),
                _digits(raw[17:19]),
                tzinfo=tz,
            ), False
        except ValueError:
            pass
    return read_time(raw, tz), True


def _send_record(line: bytes, number: int, charset: Optional[str]) -> SendResult:
    code, client_id, provider_id, extra = _fields(line, number, 4)
    token = _token(code, number, "code")
    cid = _text(client_id, number)
    pid = _text(provider_id, number)
    text, tolerated = _free(extra, charset)
    return SendResult(
        token,  # type: ignore[arg-type]
        cid,
        pid,
        text,
        line if tolerated else None,
    )


def _status_record(
    line: bytes, number: int, tz: Optional[tzinfo], charset: Optional[str]
) -> StatusResult:
    code, provider_id, status, when, reason = _fields(line, number, 5)
    token = _token(code, number, "code")
    pid = _text(provider_id, number)
    state = _token(status, number, "status")
    time, odd_time = _datetime(when, tz)
    text, odd_text = _free(reason, charset)
    return StatusResult(
        token,  # type: ignore[arg-type]
        pid,
        state,
        time,
        text,
        line if odd_time or odd_text else None,
    )


def _check_tz(tz: object) -> None:
    if tz is not None and not isinstance(tz, tzinfo):
        raise TypeError(f"tz must be a datetime.tzinfo, got {_type_name(tz)}")


def parse_send(body: Body, *, charset: Optional[str] = None) -> list[SendResult]:
    """Read a SEND reply: a ``SendResult`` per line ``code;clientId;providerId``.

    Missing trailing fields and empty fields are ``None``; a whole-request error
    comes back as one result holding only its code. Text after a third ``;`` is
    kept as the result's ``extra``; text there that is not UTF-8 (a rejection's
    description in another charset) is decoded by ``charset`` (the reply's
    Content-Type charset; an unknown name is ignored), else with U+FFFD, and the
    result keeps the line's bytes in ``raw`` (``hpgfast._fields``).

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
        ProtocolError: a line that is garbled, or whose ids are not UTF-8
            (``.line`` says which).
    """
    charset = charset_name(charset)
    return [_send_record(line, number, charset) for number, line in _lines(body)]


def parse_status(
    body: Body, *, tz: Optional[tzinfo] = None, charset: Optional[str] = None
) -> list[StatusResult]:
    """Read a STATUS reply: a ``StatusResult`` per line
    ``code;providerId;status;dateTime;reason``.

    Everything after the fourth ``;`` is the reason, ``;`` included. The time and the
    reason never cost the line (``hpgfast._fields``): a time in another shape is
    read as ISO-8601, or is ``None``; a reason that is not UTF-8 is decoded by
    ``charset``, else with U+FFFD; the result then keeps the line's bytes in ``raw``.

    Args:
        body: the reply body.
        tz: the platform's time zone; ``time`` is then an aware ``datetime`` (a time
            written with an offset is converted to it).
        charset: the reply's declared charset, for text that is not UTF-8.

    Raises:
        TypeError: ``body`` is not bytes-like, ``tz`` is not a ``tzinfo``, or
            ``charset`` not a str.
        ProtocolError: a line that is garbled or whose provider id is not UTF-8
            (``.line`` says which).
    """
    _check_tz(tz)
    charset = charset_name(charset)
    return [_status_record(line, number, tz, charset) for number, line in _lines(body)]


# -- reading line by line ------------------------------------------------------------
# read_send / read_status: the rules of parse_send / parse_status, but a line with a
# fault costs only itself. It becomes a ProtocolError (not raised) whose reason is
# parse_*'s, followed by at most the first _SHOWN bytes of the stripped line, so a
# person can match it to the raw reply; reading goes on with the next line.

_SHOWN = 60


def _line_error(exc: ProtocolError, line: bytes) -> ProtocolError:
    shown = line[:_SHOWN].decode("utf-8", "replace")
    cut = f" (first {_SHOWN} of {len(line)} bytes)" if len(line) > _SHOWN else ""
    return ProtocolError(exc.line, f"{exc.reason} in {shown!r}{cut}")


def read_send(
    body: Body, *, charset: Optional[str] = None
) -> tuple[list[SendResult], list[ProtocolError]]:
    """Read a SEND reply line by line: ``(results, errors)``.

    Each readable line gives a ``SendResult`` as ``parse_send`` reads it; each
    unreadable one a ``ProtocolError`` (returned, not raised) with its 1-based
    ``.line`` and a reason quoting the start of the line. An empty body gives
    ``([], [])``.

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
    """
    charset = charset_name(charset)
    results = []
    errors = []
    for number, line in _lines(body):
        try:
            results.append(_send_record(line, number, charset))
        except ProtocolError as exc:
            errors.append(_line_error(exc, line))
    return results, errors


def read_send_columns(body: Body, *, charset: Optional[str] = None) -> SendColumns:
    """Read a SEND reply into columns: a ``SendColumns`` (see ``hpgfast._columns``).

    The answer ``read_send`` gives (``columns.results()`` equals its results,
    ``columns.errors`` its errors), without one Python object per line: for very
    large replies.

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
    """
    return SendColumns.from_results(*read_send(body, charset=charset))


def _match(results: Sequence[Any], errors: list[ProtocolError], expect: object, free: int) -> int:
    # The flags of match_*: what the caller would otherwise learn by walking the
    # records again (see _wire.Match).
    if type(expect) is not list and type(expect) is not tuple:
        raise TypeError(f"expect must be a list or tuple of str, got {_type_name(expect)}")
    count = len(expect)
    matched = not errors and len(results) == count
    flags = 0
    for k, record in enumerate(results):
        if record[0] != _wire.Code.OK:
            flags |= _wire.Match.NOT_OK
        if len(record) > free and (record[free] is not None or len(record) > free + 1):
            # Free text, or a line read tolerantly (its raw bytes, after the text).
            flags |= _wire.Match.FREE_TEXT
        if matched:
            wanted = expect[k]
            if type(wanted) is not str or record[1] != wanted:
                matched = False
    return flags | _wire.Match.ALL if matched else flags


def match_send(
    body: Body, expect: Sequence[Any], *, charset: Optional[str] = None
) -> tuple[list[SendResult], list[ProtocolError], int]:
    """``read_send``, checked against the clientIds the request sent: ``(results,
    errors, flags)``.

    ``results`` and ``errors`` are ``read_send(body)``'s. ``expect`` is the list (or
    tuple) of ids sent, in order. ``flags`` (``hpgfast._wire.Match``): ``ALL`` when
    every line was read and there is one per expected id, each with that id
    (``type(e) is str and client_id == e``), in order; ``NOT_OK`` when some record's
    code is not ``ok``; ``FREE_TEXT`` when some record has an ``extra`` or a ``raw``.
    (The compiled twin's records then hold the expected str objects themselves.)

    Raises:
        TypeError: ``body`` is not bytes-like, ``expect`` not a list or tuple, or
            ``charset`` not a str.
    """
    results, errors = read_send(body, charset=charset)
    return results, errors, _match(results, errors, expect, 3)


def match_status(
    body: Body,
    expect: Sequence[Any],
    *,
    tz: Optional[tzinfo] = None,
    charset: Optional[str] = None,
) -> tuple[list[StatusResult], list[ProtocolError], int]:
    """``read_status``, checked against the provider ids asked about: ``(results,
    errors, flags)``, as ``match_send`` (``FREE_TEXT``: some record has a reason or
    a ``raw``).

    Raises:
        TypeError: ``body`` is not bytes-like, ``expect`` not a list or tuple, ``tz``
            not a ``tzinfo``, or ``charset`` not a str.
    """
    results, errors = read_status(body, tz=tz, charset=charset)
    return results, errors, _match(results, errors, expect, 4)


def read_status(
    body: Body, *, tz: Optional[tzinfo] = None, charset: Optional[str] = None
) -> tuple[list[StatusResult], list[ProtocolError]]:
    """Read a STATUS reply line by line: ``(results, errors)``, as ``read_send`` does.

    Raises:
        TypeError: ``body`` is not bytes-like, ``tz`` is not a ``tzinfo``, or
            ``charset`` not a str.
    """
    _check_tz(tz)
    charset = charset_name(charset)
    results = []
    errors = []
    for number, line in _lines(body):
        try:
            results.append(_status_record(line, number, tz, charset))
        except ProtocolError as exc:
            errors.append(_line_error(exc, line))
    return results, errors
