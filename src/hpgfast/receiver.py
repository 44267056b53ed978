"""Delivery reports the platform pushes: a WSGI application and a standalone server.

The specification says the platform "transmits the status of sent messages" to the
client but not how. hpgfast accepts the shapes a platform plausibly uses:

- HTTP GET or POST with the STATUS reply's fields as parameters, in the query or a
  form body (``application/x-www-form-urlencoded``): ``providerId``, ``status``,
  ``dateTime``, ``reason``, either plain (one report) or indexed ``providerId[i]``
  (several; as in every HPG request);
- HTTP POST with a body of STATUS reply lines, ``code;providerId;status;dateTime;reason``;
- HTTP POST with a JSON body (``application/json``, or any body starting with ``{``
  or ``[``): one object or a list of them, as the platform's later documentation
  sends delivery callbacks: ``{"imOutMessageId": 1001, "dlvStatus": "delivered",
  "dlvStatusAt": "2020-01-10T19:03:52.355+0300"}``. The names each field is read
  under are configurable (``json_fields``; the defaults, ``JSON_FIELDS``, read these
  and hpgfast's own ``providerId``, ``status``, ``dateTime``, ``reason``).

Times are read in HPG's two styles (``2012.03.15 19:53:07``, ``2012-03-15 19:53:07``)
and, in parameters and JSON, as ISO-8601 (``T`` or a space, optional seconds and
fraction, an offset ``Z``, ``+03``, ``+0300`` or ``+03:00``); a time with an offset
is an aware ``datetime``, one without takes ``tz`` (naive when None).

Each report becomes a ``StatusResult`` (read by the codec's ``parse_status``, so the
codes and statuses are read exactly as in STATUS replies), goes to the user's
callback and, with a journal, into it (``source='push'``). The answer is ``ok``.
The platform pushes again what it thinks was not taken (up to 10 times): the keys
(code, providerId, status, time) of the last ``remember`` reports taken (100,000 by
default, least recently seen forgotten first) are kept, and a report seen again is
answered ``ok`` without reaching the callback or the journal a second time.

Strategy: a push endpoint is exposed to the network, so it trusts nothing. The
caller must present a shared secret (``X-HPG-Secret`` header, or the last segment
of the path, compared in constant time) and may be limited to source networks; the
body is capped (``Content-Length`` checked before reading, never more than
``max_body`` read); anything unreadable is answered 400 with a one-line reason.
No input reaches a traceback: the application catches everything and answers
500 "internal error" for its own faults (and the user callback's), logging them.

The standalone server (``Receiver``) must not be starved by peers that connect and
say nothing. So a connection costs a thread only once it has proven something:

1. One selector thread accepts. A peer outside the allow-list is refused at
   accept, from its address alone: a short 403 written without blocking, then its
   bytes are read and dropped for a second (so that the answer is not lost to a
   reset) and it is closed. It never waits for a slot.
2. Every other connection waits in the selector, holding a socket and a buffer but
   no thread, until its request head (request line and headers, at most 64 KiB)
   has arrived, for ``header_deadline`` seconds (10) at most; then it is closed.
   Up to ``max_waiting`` (1,024) wait at once; one more closes the oldest waiting.
   An idle peer cannot outlive its deadline, and a flood of them evicts its own
   oldest members while a real push, whose head arrives at once, is not waiting
   long enough to be the oldest.
3. A connection whose head has arrived takes one of ``max_connections`` (64)
   slots, a thread that runs the WSGI application from the buffered bytes; with
   every slot busy it is answered 503 at once. The application checks the source
   and the secret before it reads a byte of the body, so a peer without the secret
   holds a slot for one 401 only; ``request_deadline`` (60 s) bounds a whole
   request, and each read is bounded by 30 s.

So with or without an allow-list, 500 idle connections hold no slot and a push
with the secret is answered at once. socketserver's and wsgiref's own error
reports (tracebacks they would print to standard error) go to this module's
logger instead, with the secret masked.

HTTP answers: 200 ``ok`` (a repeat, too); 400 garbage (the reason); 401 wrong or
missing secret; 403 source address not allowed; 405 other methods; 411 chunked
bodies; 413 body over ``max_body``; 431 a request head over 64 KiB; 500 the
callback (or the journal) failed: the platform should push again; 503 every slot
busy.
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import re
import selectors
import socket
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qsl, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ._records import StatusResult
from ._wire import FIELD_SEPARATOR, PROVIDER_ID, Code
from .codec import parse_status
from .exceptions import ProtocolError

__all__ = [
    "DATETIME",
    "DEFAULT_MAX_BODY",
    "DEFAULT_REMEMBER",
    "JSON_FIELDS",
    "REASON",
    "SECRET_HEADER",
    "STATUS_PARAM",
    "Receiver",
    "make_app",
    "push",
    "status_json",
    "status_lines",
    "status_params",
]

log = logging.getLogger(__name__)

#: The push parameters: the STATUS reply's fields under the names HPG uses.
STATUS_PARAM = "status"
DATETIME = "dateTime"
REASON = "reason"
_FIELDS = (PROVIDER_ID, STATUS_PARAM, DATETIME, REASON)
SECRET_HEADER = "X-HPG-Secret"
DEFAULT_MAX_BODY = 1 << 20
#: Recent reports remembered to answer a repeated push without taking it twice.
DEFAULT_REMEMBER = 100_000
#: A body over the cap is read and thrown away up to this many bytes, so that the
#: caller sees the 413 instead of a reset connection; beyond it the socket is closed.
_DRAIN_LIMIT = 16 << 20
_FORM = "application/x-www-form-urlencoded"
_INDEXED = re.compile(r"^([A-Za-z]+)\[(\d{1,9})\]$")
_SEP = FIELD_SEPARATOR.decode()

Callback = Callable[[StatusResult], Any]
StartResponse = Callable[..., Any]
Networks = Sequence[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]]


class _Refused(Exception):
    """An HTTP error answer: status line and a one-line reason."""

    def __init__(self, status: str, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


def _networks(allow: Optional[Iterable[str]]) -> Optional[Networks]:
    if allow is None:
        return None
    nets = []
    for item in allow:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"allow: {item!r} is not an IP address or network") from None
    return nets


def _allowed(remote: str, nets: Networks) -> bool:
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


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


def _json_fields(
    given: Optional[Mapping[str, Union[str, Sequence[str]]]]
) -> dict[str, tuple[str, ...]]:
    fields = dict(JSON_FIELDS)
    for field, names in (given or {}).items():
        if field not in fields:
            raise ValueError(f"json_fields: {field!r} is not one of {', '.join(fields)}")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"json_fields: {field!r} needs one or more names")
        fields[field] = names
    return fields


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


def make_app(
    callback: Optional[Callback] = None,
    *,
    secret: Optional[str],
    secret_header: str = SECRET_HEADER,
    allow: Optional[Iterable[str]] = None,
    max_body: int = DEFAULT_MAX_BODY,
    journal: Any = None,
    tz: Optional[tzinfo] = None,
    json_fields: Optional[Mapping[str, Union[str, Sequence[str]]]] = None,
    remember: int = DEFAULT_REMEMBER,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI application that receives pushed delivery reports.

    Args:
        callback: called with each report (a ``StatusResult``), in order, from the
            server's request thread; an exception makes the answer 500.
        secret: the shared secret (printable ASCII, no spaces or ``/``) the caller must
            present in ``secret_header`` or as the last path segment (``/hpg/<secret>``).
            ``None`` turns the check off, which is allowed only together with ``allow``.
        secret_header: the header's name.
        allow: IP addresses or networks (``"10.0.0.0/8"``) pushes may come from
            (``REMOTE_ADDR``); ``None``: any.
        max_body: the largest body accepted, bytes.
        journal: an ``hpgfast.journal.Journal`` to record each report in.
        tz: the platform's time zone, for ``dateTime`` values without an offset
            (ISO-8601 times with one are aware in their own offset).
        json_fields: for JSON bodies, the names each field may come under, replacing
            ``JSON_FIELDS``'s for the fields given: ``{"providerId": ["msgId"]}``.
        remember: how many recent reports (providerId, status, time) are
            remembered: a repeat of one is answered 200 and reaches neither the
            callback nor the journal again. 0: no memory.

    Raises:
        ValueError: no secret and no allow-list, an empty secret, a bad network,
            an unknown field in ``json_fields``.
    """
    nets = _networks(allow)
    if secret is None and nets is None:
        raise ValueError("give a secret, an allow-list, or both: an open endpoint takes forgeries")
    if secret is not None and not secret:
        raise ValueError("the secret must not be empty")
    if secret is not None and not (secret.isascii() and secret.isprintable() and " " not in secret
                                   and "/" not in secret):
        raise ValueError(
            "the secret must be printable ASCII without spaces or '/' "
            "(it travels in a header or a path segment)"
        )
    if max_body < 1:
        raise ValueError(f"max_body must be positive, got {max_body}")
    if remember < 0:
        raise ValueError(f"remember must not be negative, got {remember}")
    fields = _json_fields(json_fields)
    # The platform pushes again whatever it thinks was not taken (up to 10 times):
    # the keys of recent reports taken, oldest first, and one lock so that two
    # copies of one push arriving together are taken once.
    seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
    take_lock = threading.Lock()
    secret_bytes = None if secret is None else secret.encode("utf-8")
    header_key = "HTTP_" + secret_header.upper().replace("-", "_")

    def authenticate(environ: dict[str, Any]) -> None:
        if nets is not None and not _allowed(str(environ.get("REMOTE_ADDR", "")), nets):
            raise _Refused("403 Forbidden", "source address not allowed")
        if secret_bytes is None:
            return
        given = environ.get(header_key)
        candidates = []
        if given is not None:
            candidates.append(str(given))
        path = str(environ.get("PATH_INFO", ""))
        segment = path.rstrip("/").rsplit("/", 1)[-1]
        if segment:
            candidates.append(segment)
        # Compare every candidate, always, in constant time per candidate.
        ok = False
        for candidate in candidates:
            # WSGI strings carry the raw bytes as latin-1; a percent-encoded path
            # segment arrives decoded.
            raw = candidate.encode("latin-1", "replace")
            ok |= hmac.compare_digest(raw, secret_bytes)
        if not ok:
            raise _Refused(
                "401 Unauthorized", "wrong or missing secret",
                [("WWW-Authenticate", f'{secret_header} realm="hpgfast"')],
            )

    def read_body(environ: dict[str, Any]) -> bytes:
        if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
            raise _Refused("411 Length Required", "chunked bodies are not accepted")
        raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
        # ASCII digits only ("²".isdigit() is true, int() refuses it), and few enough
        # for int() (which refuses over 4300 digits): anything else is the caller's fault.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise _Refused("400 Bad Request", f"bad Content-Length {raw[:40]!r}")
        length = int(raw)
        stream = environ["wsgi.input"]
        if length > max_body:
            if length <= _DRAIN_LIMIT:
                left = length
                while left > 0:
                    block = stream.read(min(left, 65536))
                    if not block:
                        break
                    left -= len(block)
            raise _Refused("413 Content Too Large", f"body over {max_body} bytes")
        body = b""
        while len(body) < length:
            block = stream.read(length - len(body))
            if not block:
                raise _Refused("400 Bad Request", "body shorter than its Content-Length")
            body += block
        return body

    def reports_of(environ: dict[str, Any], body: bytes) -> list[StatusResult]:
        query = str(environ.get("QUERY_STRING", ""))
        try:
            query_text = query.encode("latin-1").decode("ascii")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise _Refused("400 Bad Request", "the query string is not ASCII") from None
        pairs = _params(query_text, "query string") if query_text else []
        content_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
        if body and content_type == _FORM and _is_form(body):
            try:
                form = body.decode("ascii")
            except UnicodeDecodeError:
                raise _Refused("400 Bad Request", "the form body is not ASCII") from None
            pairs += _params(form, "form body")
            body = b""
        if body:
            if any(name in _FIELDS or _INDEXED.match(name) for name, _ in pairs):
                raise _Refused("400 Bad Request", "report parameters and a body of lines mixed")
            # JSON by its type, or by its first byte (no STATUS line starts so).
            if content_type.endswith(("/json", "+json")) or body.lstrip()[:1] in (b"{", b"["):
                return _reports_from_json(body, fields, tz)
            return _parse(body, tz, "body")
        return _reports_from_params(pairs, tz)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            method = str(environ.get("REQUEST_METHOD", ""))
            if method not in ("GET", "POST"):
                raise _Refused("405 Method Not Allowed", f"method {method[:20]!r} not allowed",
                               [("Allow", "GET, POST")])
            authenticate(environ)
            body = read_body(environ)
            reports = reports_of(environ, body)
        except _Refused as refused:
            log.info("push refused (%s): %s", refused.status, refused.reason)
            return _answer(start_response, refused.status, refused.reason, refused.headers)
        except Exception:  # a bug of ours: never a traceback to the caller
            log.exception("push: internal error")
            return _answer(start_response, "500 Internal Server Error", "internal error")
        try:
            repeats = take(reports)
        except Exception:
            log.exception("push: the callback or journal failed on %d report(s)", len(reports))
            return _answer(start_response, "500 Internal Server Error", "report not taken")
        log.debug("push: %d report(s) taken, %d repeated", len(reports) - repeats, repeats)
        return _answer(start_response, "200 OK", "ok")

    def take(reports: list[StatusResult]) -> int:
        """Reports not seen lately to the journal and the callback; returns the repeats."""
        with take_lock:
            fresh: dict[tuple[Any, ...], StatusResult] = {}
            for report in reports:
                key = (report[0], report[1], report[2], report[3])
                if key in seen:
                    seen.move_to_end(key)
                elif key not in fresh:
                    fresh[key] = report
            if journal is not None and fresh:
                journal.record_statuses(fresh.values(), source="push")
            # A key is remembered once its report is taken: after a failure, the
            # platform's next try brings only what was not.
            for key, report in fresh.items():
                if callback is not None:
                    callback(report)
                if remember:
                    seen[key] = None
                    if len(seen) > remember:
                        seen.popitem(last=False)
            return len(reports) - len(fresh)

    return app


def _answer(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    body = (text + "\n").encode("utf-8")
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
         *headers],
    )
    return [body]


# -- the standalone server ---------------------------------------------------------------


#: Requests served at once: each holds a thread. A connection takes a slot only once
#: its whole request head has arrived; over the cap it is answered 503 at once.
MAX_CONNECTIONS = 64
#: Connections waiting for their request head at once (they hold no thread, only a
#: socket in the selector); when a new one comes over the cap, the oldest is closed.
MAX_WAITING = 1024
#: Seconds a connection has to deliver its request line and headers.
HEADER_DEADLINE = 10.0
#: The largest request head (request line and headers), bytes: 431 over it.
MAX_HEAD = 64 * 1024
#: Seconds a connection may take for its whole request and answer. The handler's
#: timeout bounds each read only: a client sending a byte every 29 s would hold a
#: thread for ever without this.
REQUEST_DEADLINE = 60.0
#: A refused connection (403 at accept, 431, 503, 408) gets its short answer, then
#: its further bytes are read and dropped for this long (so that the answer is not
#: lost to a reset), in the selector, at most _MAX_LINGERING of them at once.
_LINGER = 1.0
_MAX_LINGERING = 256
_ACCEPTS_PER_WAKE = 64
#: The end of a request head: an empty line (http.server accepts bare LF lines too).
_HEAD_ENDS = (b"\n\r\n", b"\n\n")


class _Conn:
    """A connection the selector holds: waiting for its head, or lingering after a refusal."""

    __slots__ = ("address", "deadline", "head", "sock", "started")

    def __init__(self, sock: socket.socket, address: Any, now: float, deadline: float) -> None:
        self.sock = sock
        self.address = address
        self.started = now
        self.deadline = deadline
        self.head = bytearray()


class _Prefixed(io.RawIOBase):
    """A socket's reading side with the bytes the selector already read put back in front."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._raw = socket.SocketIO(sock, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Server(WSGIServer):
    """wsgiref's server for binding and the WSGI environment; serving is ``serve()``'s."""

    allow_reuse_address = True
    # A flood's SYNs must not fill the kernel's accept queue before serve() sees them.
    request_queue_size = 1024

    max_connections = MAX_CONNECTIONS
    max_waiting = MAX_WAITING
    header_deadline = HEADER_DEADLINE
    request_deadline = REQUEST_DEADLINE
    nets: Optional[Networks] = None
    #: The secret as it may appear in text (plain, percent-encoded): masked in logs.
    secret_forms: tuple[str, ...] = ()

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self.socket, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._waiting: dict[socket.socket, _Conn] = {}  # in accept order: oldest first
        self._lingering: dict[socket.socket, _Conn] = {}
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()
        self._stopping = False
        self._evicted = 0
        self._evicted_logged = float("-inf")

    # -- the selector thread: accept, collect heads, hand complete ones to a worker

    def serve(self) -> None:
        """Serve until ``stop()``: the selector loop (run it in one thread)."""
        try:
            while not self._stopping:
                timeout = self._next_deadline() - time.monotonic()
                events = self._selector.select(max(0.0, min(timeout, 1.0)))
                for key, _ in events:
                    conn = key.data
                    if conn is not None:
                        self._read(conn)
                    elif key.fileobj is self.socket:
                        self._accept()
                    else:
                        try:
                            self._wake_r.recv(64)
                        except OSError:
                            pass
                self._expire(time.monotonic())
        except Exception:  # a bug of ours: logged (not a raw traceback), then stop
            self.handle_error(None, ("the selector loop", 0))
        finally:
            for pool in (self._waiting, self._lingering):
                for conn in list(pool.values()):
                    self._drop(conn, pool)

    def stop(self) -> None:
        """Make ``serve()`` return at once."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already woken, or closed

    def join_workers(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the requests being served to finish."""
        end = time.monotonic() + timeout
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, end - time.monotonic()))

    def server_close(self) -> None:
        super().server_close()
        if not hasattr(self, "_selector"):
            return  # never activated: the bind failed (port in use, no such address)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _next_deadline(self) -> float:
        # Both pools are in deadline order (one fixed delay each): the first is next.
        first = [next(iter(pool.values())).deadline
                 for pool in (self._waiting, self._lingering) if pool]
        return min(first, default=time.monotonic() + 1.0)

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: make room, try later
                log.warning("receiver: accept failed: %s", exc)
                if self._waiting:
                    self._drop(next(iter(self._waiting.values())), self._waiting)
                return
            sock.setblocking(False)
            now = time.monotonic()
            conn = _Conn(sock, address, now, now + min(self.header_deadline,
                                                       self.request_deadline))
            # The allow-list is the one check possible before a byte is read: a peer
            # outside it never waits in the selector, let alone takes a slot.
            if self.nets is not None and not _allowed(str(address[0]), self.nets):
                self._refuse(conn, "403 Forbidden", "source address not allowed")
                continue
            if len(self._waiting) >= self.max_waiting:
                self._drop(next(iter(self._waiting.values())), self._waiting)
                # A flood evicts thousands a second: one line every few seconds.
                self._evicted += 1
                if now - self._evicted_logged >= 5.0:
                    log.warning("receiver: %d connections waiting for a request; %d of the "
                                "oldest closed to make room", self.max_waiting, self._evicted)
                    self._evicted, self._evicted_logged = 0, now
            self._waiting[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        lingering = conn.sock in self._lingering
        pool = self._lingering if lingering else self._waiting
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn, pool)
            return
        if not data:
            self._drop(conn, pool)
            return
        if lingering:
            return  # dropped: the answer is out already
        seen = len(conn.head)
        conn.head += data
        start = max(0, seen - 2)
        if not any(conn.head.find(end, start) >= 0 for end in _HEAD_ENDS):
            if len(conn.head) > MAX_HEAD:
                del self._waiting[conn.sock]
                self._selector.unregister(conn.sock)
                self._refuse(conn, "431 Request Header Fields Too Large",
                             f"request head over {MAX_HEAD} bytes")
            return
        del self._waiting[conn.sock]
        self._selector.unregister(conn.sock)
        if not self._slots.acquire(blocking=False):
            log.warning("receiver: %d requests being served; one from %s answered 503",
                        self.max_connections, conn.address[0])
            self._refuse(conn, "503 Service Unavailable", "busy, push again later",
                         ("Retry-After: 1",))
            return
        try:
            conn.sock.setblocking(True)
            worker = threading.Thread(target=self._serve_one, args=(conn,),
                                      name="hpgfast-receiver:request", daemon=True)
            with self._workers_lock:
                self._workers.add(worker)
            worker.start()
        except BaseException:
            with self._workers_lock:
                self._workers.discard(worker)
            self._slots.release()
            _close(conn.sock)
            raise

    def _expire(self, now: float) -> None:
        while self._waiting:
            conn = next(iter(self._waiting.values()))
            if conn.deadline > now:
                break
            # No answer: an idle or trickling peer is most likely not a platform.
            log.info("receiver: no request from %s within %.1f s; closed",
                     conn.address[0], conn.deadline - conn.started)
            self._drop(conn, self._waiting)
        while self._lingering:
            conn = next(iter(self._lingering.values()))
            if conn.deadline > now:
                break
            self._drop(conn, self._lingering)

    def _refuse(self, conn: _Conn, status: str, reason: str, headers: Sequence[str] = ()) -> None:
        """Answer ``status`` without a thread, then linger (read and drop) briefly."""
        log.info("push refused (%s) from %s: %s", status, conn.address[0], reason)
        body = reason + "\n"
        answer = "".join(
            (f"HTTP/1.0 {status}\r\n", "Content-Type: text/plain; charset=utf-8\r\n",
             f"Content-Length: {len(body)}\r\n", "Connection: close\r\n",
             *(h + "\r\n" for h in headers), "\r\n", body)
        ).encode("ascii")
        try:
            # Non-blocking: a fresh socket's buffer takes these few bytes whole, and a
            # peer that does not read gets nothing more of our time.
            conn.sock.send(answer)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close(conn.sock)
            return
        if len(self._lingering) >= _MAX_LINGERING:
            self._drop(next(iter(self._lingering.values())), self._lingering)
        conn.deadline = time.monotonic() + _LINGER
        conn.head = bytearray()
        self._lingering[conn.sock] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Conn, pool: dict[socket.socket, _Conn]) -> None:
        if pool.pop(conn.sock, None) is not None:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        _close(conn.sock)

    # -- a worker thread: one request whose head has arrived

    def _serve_one(self, conn: _Conn) -> None:
        sock = conn.sock
        # Past the deadline the socket is shut down under the handler, whose next
        # read or write then fails and ends the thread.
        left = self.request_deadline - (time.monotonic() - conn.started)
        watchdog = threading.Timer(max(left, 0.0), _cut, (sock,))
        watchdog.daemon = True
        watchdog.start()
        try:
            _Handler(sock, conn.address, self, bytes(conn.head))
        except Exception:
            self.handle_error(sock, conn.address)
        finally:
            watchdog.cancel()
            self.shutdown_request(sock)
            self._slots.release()
            with self._workers_lock:
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr; here it goes to the log, with
        # the secret masked (an exception may quote the request line, whose path may
        # end with it).
        log.error("receiver: error serving %s\n%s", client_address[0],
                  self.redact(traceback.format_exc().rstrip()))

    def redact(self, text: str) -> str:
        """``text`` with the secret masked."""
        for form in self.secret_forms:
            text = text.replace(form, "***")
        return text


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Handler(WSGIRequestHandler):
    timeout = 30  # seconds a connection may stall: a slow client holds one thread only

    def __init__(self, request: Any, client_address: Any, server: Any, prefix: bytes = b"") -> None:
        self._prefix = prefix
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        if self._prefix:
            # The selector read the head (and maybe more): the handler reads it first.
            self.rfile.close()
            self.rfile = io.BufferedReader(_Prefixed(self._prefix, self.connection))

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # Not the request line: its path may end with the secret.
        log.debug("%s %s %s %s", self.address_string(), self.command, code, size)

    def log_message(self, format: str, *args: Any) -> None:
        # Only the template and the numbers: http.server's error texts quote the
        # request line, whose path may end with the secret.
        shown = tuple(a if isinstance(a, int) else "..." for a in args)
        log.debug("%s %s", self.address_string(), format % shown)

    def get_stderr(self) -> Any:
        # wsgiref prints its own errors here: route them to logging instead.
        return _LogStream(getattr(self.server, "redact", None))


class _LogStream:
    def __init__(self, redact: Optional[Callable[[str], str]] = None) -> None:
        self._redact = redact or (lambda text: text)

    def write(self, text: str) -> None:
        if text.strip():
            log.warning("receiver: %s", self._redact(text.rstrip()))

    def flush(self) -> None:
        pass


class Receiver:
    """A standalone, threaded HTTP server for pushed reports: ``with Receiver(cb, ...)``.

    Takes ``make_app``'s arguments, plus ``host`` and ``port`` (0: a free one),
    ``max_connections`` requests served at once (more are answered 503),
    ``max_waiting`` connections waiting for their request head (more close the
    oldest), ``header_deadline``, the seconds a connection has to send its head,
    and ``request_deadline``, the seconds one connection may take in all. It serves
    from a background thread until ``close()``. ``url`` is its base URL;
    ``url_shown`` the same (the secret travels in a header, never in it).
    """

    def __init__(
        self,
        callback: Optional[Callback] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
        max_waiting: int = MAX_WAITING,
        header_deadline: float = HEADER_DEADLINE,
        request_deadline: float = REQUEST_DEADLINE,
        **settings: Any,
    ) -> None:
        if max_connections < 1 or max_waiting < 1:
            raise ValueError("max_connections and max_waiting must be at least 1")
        if not (header_deadline > 0 and request_deadline > 0):
            raise ValueError("header_deadline and request_deadline must be positive")
        app = make_app(callback, **settings)
        server = _Server((host, port), _Handler, bind_and_activate=False)
        server.max_connections = max_connections
        server.max_waiting = max_waiting
        server.header_deadline = header_deadline
        server.request_deadline = request_deadline
        server.nets = _networks(settings.get("allow"))
        secret = settings.get("secret")
        if secret:
            server.secret_forms = tuple(sorted({secret, quote(secret, safe="")}, key=len,
                                               reverse=True))
        try:
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        server.set_app(app)
        self._server = server
        self.host = host
        self.port: int = self._server.server_address[1]
        bracket = f"[{host}]" if ":" in host else host
        self.url = f"http://{bracket}:{self.port}/"
        self.url_shown = self.url
        self._thread = threading.Thread(
            target=self._server.serve, name=f"hpgfast-receiver:{self.port}", daemon=True,
        )
        self._closed = False
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Connections waiting for their request head now (they hold no thread)."""
        return len(self._server._waiting)

    @property
    def lingering(self) -> int:
        """Refused connections being read out before they are closed."""
        return len(self._server._lingering)

    def close(self) -> None:
        """Stop serving, let requests under way finish (5 s at most), close (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.stop()
        self._thread.join()
        self._server.join_workers(5.0)
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hpgfast Receiver {self.url}>"


# -- pushing (the platform's side: the emulator, tests) --------------------------------


def _format_time(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y.%m.%d %H:%M:%S"))
    return str(value)


def status_lines(reports: Iterable[Sequence[Any]]) -> bytes:
    """Reports ``(code, providerId, status, dateTime, reason)`` as STATUS reply lines."""
    out = []
    for code, provider_id, status, when, reason in reports:
        out.append(_SEP.join((
            code, provider_id or "", status or "", _format_time(when), reason or "",
        )))
    return ("\n".join(out) + "\n").encode("utf-8")


def status_params(reports: Iterable[Sequence[Any]]) -> str:
    """Reports as indexed ``providerId[i]=..&status[i]=..`` parameters (``%20`` spaces)."""
    parts = []
    for i, (_code, provider_id, status, when, reason) in enumerate(reports):
        for name, value in (
            (PROVIDER_ID, provider_id), (STATUS_PARAM, status),
            (DATETIME, _format_time(when)), (REASON, reason or ""),
        ):
            parts.append(f"{name}[{i}]={quote(str(value or ''), safe='')}")
    return "&".join(parts)


def status_json(reports: Iterable[Sequence[Any]]) -> bytes:
    """Reports as the platform's later JSON callbacks: a list of ``{"imOutMessageId",
    "dlvStatus", "dlvStatusAt", "reason"}`` objects (``datetime`` times in ISO-8601
    with milliseconds; text times as given)."""
    out = []
    for _code, provider_id, status, when, reason in reports:
        item: dict[str, Any] = {"imOutMessageId": provider_id, "dlvStatus": status}
        if when is not None and when != "":
            item["dlvStatusAt"] = (when.isoformat(timespec="milliseconds")
                                   if hasattr(when, "isoformat") else str(when))
        if reason:
            item["reason"] = reason
        out.append(item)
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


def push(
    url: str,
    reports: Iterable[Sequence[Any]],
    *,
    secret: Optional[str] = None,
    secret_header: str = SECRET_HEADER,
    shape: str = "lines",
    timeout: float = 10.0,
) -> tuple[int, str]:
    """Push reports to a receiver, as the platform would; returns (HTTP status, text).

    ``shape`` is ``"lines"`` (POST, a body of STATUS lines), ``"form"`` (POST, an
    indexed form body), ``"query"`` (GET, indexed query parameters) or ``"json"``
    (POST, a JSON list of ``status_json`` objects). This is what the emulator's push
    mode calls.
    """
    import urllib3

    items = list(reports)
    headers = {} if secret is None else {secret_header: secret}
    if shape == "lines":
        method, body, target = "POST", status_lines(items), url
        headers["Content-Type"] = "text/plain; charset=utf-8"
    elif shape == "form":
        method, body, target = "POST", status_params(items).encode("ascii"), url
        headers["Content-Type"] = _FORM
    elif shape == "query":
        method, body = "GET", None
        target = url + ("&" if "?" in url else "?") + status_params(items)
    elif shape == "json":
        method, body, target = "POST", status_json(items), url
        headers["Content-Type"] = "application/json"
    else:
        raise ValueError(f"shape must be lines, form, query or json, got {shape!r}")
    with urllib3.PoolManager(retries=False, timeout=timeout) as pool:
        response = pool.request(method, target, body=body, headers=headers)
        return response.status, response.data.decode("utf-8", "replace").strip()

