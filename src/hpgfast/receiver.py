"""Delivery reports the platform pushes: a WSGI application and a standalone server.

The specification says the platform "transmits the status of sent messages" to the
client but not how. hpgfast accepts both shapes a platform plausibly uses:

- HTTP GET or POST with the STATUS reply's fields as parameters, in the query or a
  form body (``application/x-www-form-urlencoded``): ``providerId``, ``status``,
  ``dateTime``, ``reason``, either plain (one report) or indexed ``providerId[i]``
  (several; as in every HPG request);
- HTTP POST with a body of STATUS reply lines, ``code;providerId;status;dateTime;reason``.

Each report becomes a ``StatusResult`` (read by the codec's ``parse_status``, so the
dates, codes and statuses are read exactly as in STATUS replies), goes to the user's
callback and, with a journal, into it (``source='push'``). The answer is ``ok``.

Strategy: a push endpoint is exposed to the network, so it trusts nothing. The
caller must present a shared secret (``X-HPG-Secret`` header, or the last segment
of the path, compared in constant time) and may be limited to source networks; the
body is capped (``Content-Length`` checked before reading, never more than
``max_body`` read); anything unreadable is answered 400 with a one-line reason.
No input reaches a traceback: the application catches everything and answers
500 "internal error" for its own faults (and the user callback's), logging them.

HTTP answers: 200 ``ok``; 400 garbage (the reason); 401 wrong or missing secret;
403 source address not allowed; 405 other methods; 411 chunked bodies; 413 body
over ``max_body``; 500 the callback (or the journal) failed: the platform should
push again.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Iterable, Sequence
from datetime import tzinfo
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
    "REASON",
    "SECRET_HEADER",
    "STATUS_PARAM",
    "Receiver",
    "make_app",
    "push",
]

log = logging.getLogger(__name__)

#: The push parameters: the STATUS reply's fields under the names HPG uses.
STATUS_PARAM = "status"
DATETIME = "dateTime"
REASON = "reason"
_FIELDS = (PROVIDER_ID, STATUS_PARAM, DATETIME, REASON)
SECRET_HEADER = "X-HPG-Secret"
DEFAULT_MAX_BODY = 1 << 20
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
    lines = []
    for group in groups:
        for required in (PROVIDER_ID, STATUS_PARAM):
            if not group.get(required):
                raise _Refused("400 Bad Request", f"a report without {required!r}")
        lines.append(_SEP.join((
            Code.OK, group[PROVIDER_ID], group[STATUS_PARAM],
            group.get(DATETIME, ""), group.get(REASON, ""),
        )))
    return _parse("\n".join(lines).encode("utf-8"), tz, "parameters")


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
        tz: the platform's time zone, for aware ``dateTime`` values.

    Raises:
        ValueError: no secret and no allow-list, an empty secret, a bad network.
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
        if body and content_type == _FORM:
            try:
                form = body.decode("ascii")
            except UnicodeDecodeError:
                raise _Refused("400 Bad Request", "the form body is not ASCII") from None
            pairs += _params(form, "form body")
            body = b""
        if body:
            if any(name in _FIELDS or _INDEXED.match(name) for name, _ in pairs):
                raise _Refused("400 Bad Request", "report parameters and a body of lines mixed")
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
            if journal is not None:
                journal.record_statuses(reports, source="push")
            if callback is not None:
                for report in reports:
                    callback(report)
        except Exception:
            log.exception("push: the callback or journal failed on %d report(s)", len(reports))
            return _answer(start_response, "500 Internal Server Error", "report not taken")
        log.debug("push: %d report(s) taken", len(reports))
        return _answer(start_response, "200 OK", "ok")

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


#: Connections served at once; more are closed at once (a flood holds no threads).
MAX_CONNECTIONS = 64
#: Seconds a connection may take for its whole request and answer. The handler's
#: timeout bounds each read only: a client sending a byte every 29 s would hold a
#: thread for ever without this.
REQUEST_DEADLINE = 60.0


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    max_connections = MAX_CONNECTIONS
    request_deadline = REQUEST_DEADLINE

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("receiver: %d connections busy; one from %s closed",
                        self.max_connections, client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # Past the deadline the socket is shut down under the handler, whose next
        # read or write then fails and ends the thread.
        watchdog = threading.Timer(self.request_deadline, _cut, (request,))
        watchdog.daemon = True
        watchdog.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            watchdog.cancel()
            self._slots.release()


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Handler(WSGIRequestHandler):
    timeout = 30  # seconds a connection may stall: a slow client holds one thread only

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
        return _LogStream()


class _LogStream:
    def write(self, text: str) -> None:
        if text.strip():
            log.warning("receiver: %s", text.rstrip())

    def flush(self) -> None:
        pass


class Receiver:
    """A standalone, threaded HTTP server for pushed reports: ``with Receiver(cb, ...)``.

    Takes ``make_app``'s arguments, plus ``host`` and ``port`` (0: a free one),
    ``max_connections`` served at once (more are closed at once) and
    ``request_deadline``, the seconds one connection may take in all. It serves
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
        request_deadline: float = REQUEST_DEADLINE,
        **settings: Any,
    ) -> None:
        app = make_app(callback, **settings)
        server = _Server((host, port), _Handler, bind_and_activate=False)
        server.max_connections = max_connections
        server.request_deadline = request_deadline
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
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"hpgfast-receiver:{self.port}", daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
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
    indexed form body) or ``"query"`` (GET, indexed query parameters). This is what
    the emulator's push mode calls.
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
    else:
        raise ValueError(f"shape must be lines, form or query, got {shape!r}")
    with urllib3.PoolManager(retries=False, timeout=timeout) as pool:
        response = pool.request(method, target, body=body, headers=headers)
        return response.status, response.data.decode("utf-8", "replace").strip()

