"""The WSGI application that takes pushed reports: ``ReceiverApp`` and its settings.

Strategy: the settings are one frozen ``ReceiverSettings`` value, checked once
when it is made; the application is a class whose methods are the steps of a
request, in the order ``__call__`` runs them: the source and the secret
(``_authenticate``), the body (``_read_body``), the reports in it (``_reports_of``),
then taking them (``_take``): to the journal and the callback, unless taken lately.
Every step refuses with ``_Refused`` (a status and a one-line reason); nothing a
caller sends reaches a traceback.
"""

from __future__ import annotations

import codecs
import hmac
import ipaddress
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

from .._fields import charset_of
from .._records import StatusResult
from ._reports import (
    _FIELDS,
    _FORM,
    _INDEXED,
    JSON_FIELDS,
    Problems,
    _is_form,
    _params,
    _parse,
    _Refused,
    _reports_from_json,
    _reports_from_params,
)

# One logger for the whole receiver, under the name users configure.
log = logging.getLogger("hpgfast.receiver")

SECRET_HEADER = "X-HPG-Secret"
DEFAULT_MAX_BODY = 1 << 20
#: Recent reports remembered to answer a repeated push without taking it twice.
DEFAULT_REMEMBER = 100_000
#: A body over the cap is read and thrown away up to this many bytes, so that the
#: caller sees the 413 instead of a reset connection; beyond it the socket is closed.
_DRAIN_LIMIT = 16 << 20

Callback = Callable[[StatusResult], Any]
StartResponse = Callable[..., Any]
Networks = Sequence[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]]
JsonFields = Mapping[str, Union[str, Sequence[str]]]


def _networks(allow: Optional[Iterable[str]]) -> Optional[Networks]:
    if allow is None:
        return None
    nets = []
    for item in allow:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"allow: {item!r} is not an IP address or network") from None
    return tuple(nets)


def _allowed(remote: str, nets: Networks) -> bool:
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


def _secret_given(secret: bytes, header: Optional[str], path: str) -> bool:
    """Whether the secret is the header's value or the last segment of the path.

    ``header`` and ``path`` as WSGI gives them (the raw bytes as latin-1, the path
    percent-decoded). Shared with the server, which checks the head before it waits
    for a body: both must agree.
    """
    candidates = [] if header is None else [header]
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    if segment:
        candidates.append(segment)
    # Compare every candidate, always, in constant time per candidate.
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(candidate.encode("latin-1", "replace"), secret)
    return ok


def _json_fields(given: Optional[JsonFields]) -> Mapping[str, tuple[str, ...]]:
    fields = dict(JSON_FIELDS)
    for name, names in (given or {}).items():
        if name not in fields:
            raise ValueError(f"json_fields: {name!r} is not one of {', '.join(fields)}")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"json_fields: {name!r} needs one or more names")
        fields[name] = names
    return MappingProxyType(fields)


@dataclass(frozen=True)
class ReceiverSettings:
    """What a ``ReceiverApp`` checks and reads pushes by; see ``make_app`` for each.

    Stored checked and normalized: ``allow`` as a tuple of networks (``networks``
    beside it), ``json_fields`` as the whole read-only mapping of every field to its
    names (``JSON_FIELDS`` with the ones given over it). ``secret`` is left out of
    the repr.

    Raises:
        ValueError: no secret and no allow-list, an empty or unusable secret, a bad
            network, an unknown field in ``json_fields``, a number out of range.
        TypeError: a number that is not a whole number.
    """

    secret: Optional[str] = field(default=None, repr=False)
    secret_header: str = SECRET_HEADER
    allow: Optional[tuple[str, ...]] = None
    max_body: int = DEFAULT_MAX_BODY
    tz: Optional[tzinfo] = None
    json_fields: Mapping[str, Union[str, Sequence[str]]] = field(
        default_factory=lambda: JSON_FIELDS
    )
    remember: int = DEFAULT_REMEMBER
    #: ``allow`` read as networks (None: any source).
    networks: Optional[Networks] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        secret = self.secret
        allow = None if self.allow is None else tuple(self.allow)
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "networks", _networks(allow))
        if secret is None and allow is None:
            raise ValueError(
                "give a secret, an allow-list, or both: an open endpoint takes forgeries"
            )
        if secret is not None and not secret:
            raise ValueError("the secret must not be empty")
        if secret is not None and not (secret.isascii() and secret.isprintable()
                                       and " " not in secret and "/" not in secret):
            raise ValueError(
                "the secret must be printable ASCII without spaces or '/' "
                "(it travels in a header or a path segment)"
            )
        if not self.secret_header or "_" in self.secret_header:
            raise ValueError(
                f"the secret header's name must not be empty nor hold an underscore, got "
                f"{self.secret_header!r}: WSGI reads '_' as '-', and proxies drop such headers"
            )
        for name in ("max_body", "remember"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise TypeError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if self.max_body < 1:
            raise ValueError(f"max_body must be positive, got {self.max_body}")
        if self.remember < 0:
            raise ValueError(f"remember must not be negative, got {self.remember}")
        object.__setattr__(self, "json_fields", _json_fields(self.json_fields))

    def __hash__(self) -> int:
        return hash((self.secret, self.secret_header, self.allow, self.max_body, self.tz,
                     tuple(sorted(self.json_fields.items())), self.remember))


class ReceiverApp:
    """A WSGI application that receives pushed delivery reports (see ``make_app``).

    ``ReceiverApp(callback, settings, journal=None)``; ``make_app`` builds one from
    keywords. One instance serves any number of threads at once.
    """

    def __init__(
        self, callback: Optional[Callback], settings: ReceiverSettings, journal: Any = None
    ) -> None:
        if not isinstance(settings, ReceiverSettings):
            raise TypeError(f"settings must be a ReceiverSettings, got {type(settings).__name__}")
        self._settings = settings
        self._callback = callback
        self._journal = journal
        # The platform pushes again whatever it thinks was not taken (up to 10 times):
        # the keys of recent reports taken, oldest first, and one lock so that two
        # copies of one push arriving together are taken once.
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._take_lock = threading.Lock()
        secret = settings.secret
        self._secret_bytes = None if secret is None else secret.encode("utf-8")
        self._header_key = "HTTP_" + settings.secret_header.upper().replace("-", "_")

    @property
    def settings(self) -> ReceiverSettings:
        """The settings the application runs with (a frozen value)."""
        return self._settings

    def __repr__(self) -> str:
        return f"<hpgfast ReceiverApp {self._settings!r}>"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            method = str(environ.get("REQUEST_METHOD", ""))
            if method not in ("GET", "POST"):
                raise _Refused("405 Method Not Allowed", f"method {method[:20]!r} not allowed",
                               [("Allow", "GET, POST")])
            self._authenticate(environ)
            body = self._read_body(environ)
            reports, problems = self._without_secret(*self._reports_of(environ, body))
        except _Refused as refused:
            log.info("push refused (%s): %s", refused.status, refused.reason)
            return _answer(start_response, refused.status, refused.reason, refused.headers)
        except Exception:  # a bug of ours: never a traceback to the caller
            log.exception("push: internal error")
            return _answer(start_response, "500 Internal Server Error", "internal error")
        try:
            repeats = self._take(reports)
        except Exception:
            log.exception("push: the callback or journal failed on %d report(s)", len(reports))
            return _answer(start_response, "500 Internal Server Error", "report not taken")
        log.debug("push: %d report(s) taken, %d repeated", len(reports) - repeats, repeats)
        if problems:
            # The good reports are taken (a 4xx would make the platform retry them
            # all, to the same answer, and lose them): 200, naming the ones not read.
            for problem in problems:
                log.warning("push: not read: %s", problem)
            return _answer(start_response, "200 OK", _partial(problems))
        return _answer(start_response, "200 OK", "ok")

    def _without_secret(
        self, reports: list[StatusResult], problems: Problems
    ) -> tuple[list[StatusResult], Problems]:
        """The reports with the receiver's own secret gone: a push may carry it as
        data (a sender's bug, a probe), and what the receiver hands on is printed,
        logged and kept. In a reason or a report's raw it is masked (``***``); an id
        holding it costs that report (a status holding it is never a status)."""
        secret = self._settings.secret
        if not secret or self._secret_bytes is None:
            return reports, problems
        kept: list[StatusResult] = []
        for report in reports:
            if report[1] is not None and secret in report[1]:
                problems.append("a report whose id holds the receiver's secret")
                continue
            reason, raw = report[4], report[5] if len(report) > 5 else None
            if (reason is not None and secret in reason) or (
                    raw is not None and self._secret_bytes in raw):
                report = StatusResult(
                    report[0], report[1], report[2], report[3],
                    None if reason is None else reason.replace(secret, _MASK),
                    None if raw is None else raw.replace(self._secret_bytes, _MASK.encode()),
                )
            kept.append(report)
        if not kept:
            raise _Refused("400 Bad Request", "no report to take in the push")
        return kept, problems

    def _authenticate(self, environ: dict[str, Any]) -> None:
        nets = self._settings.networks
        if nets is not None and not _allowed(str(environ.get("REMOTE_ADDR", "")), nets):
            raise _Refused("403 Forbidden", "source address not allowed")
        secret_bytes = self._secret_bytes
        if secret_bytes is None:
            return
        given = environ.get(self._header_key)
        path = str(environ.get("PATH_INFO", ""))
        if not _secret_given(secret_bytes, None if given is None else str(given), path):
            raise _Refused(
                "401 Unauthorized", "wrong or missing secret",
                [("WWW-Authenticate", f'{self._settings.secret_header} realm="hpgfast"')],
            )

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
            raise _Refused("411 Length Required", "chunked bodies are not accepted")
        raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
        # ASCII digits only ("²".isdigit() is true, int() refuses it), and few enough
        # for int() (which refuses over 4300 digits): anything else is the caller's fault.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise _Refused("400 Bad Request", f"bad Content-Length {raw[:40]!r}")
        length = int(raw)
        try:
            return self._read_exactly(environ["wsgi.input"], length)
        except OSError:  # the server's read timed out (the body deadline) or failed
            raise _Refused("408 Request Timeout", "body not received in time") from None

    def _read_exactly(self, stream: Any, length: int) -> bytes:
        max_body = self._settings.max_body
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

    def _reports_of(
        self, environ: dict[str, Any], body: bytes
    ) -> tuple[list[StatusResult], Problems]:
        tz = self._settings.tz
        # A leading byte-order mark (some senders write UTF-8 so) is no part of any
        # body: JSON, a form and STATUS lines are read without it.
        if body.startswith(codecs.BOM_UTF8):
            body = body[len(codecs.BOM_UTF8):]
        query = str(environ.get("QUERY_STRING", ""))
        try:
            query_text = query.encode("latin-1").decode("ascii")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise _Refused("400 Bad Request", "the query string is not ASCII") from None
        pairs = _params(query_text, "query string") if query_text else []
        full_type = str(environ.get("CONTENT_TYPE", ""))
        content_type = full_type.split(";", 1)[0].strip().lower()
        # A declared charset, for a reason that is not UTF-8 (``hpgfast._fields``).
        charset = charset_of(full_type)
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
                return _reports_from_json(body, self._settings.json_fields, tz, charset)
            return _parse(body, tz, "body", charset)
        return _reports_from_params(pairs, tz, charset)

    def _take(self, reports: list[StatusResult]) -> int:
        """Reports not seen lately to the journal and the callback; returns the repeats."""
        seen = self._seen
        remember = self._settings.remember
        with self._take_lock:
            fresh: dict[tuple[Any, ...], StatusResult] = {}
            for report in reports:
                key = (report[0], report[1], report[2], report[3])
                if key in seen:
                    seen.move_to_end(key)
                elif key not in fresh:
                    fresh[key] = report
            if self._journal is not None and fresh:
                self._journal.record_statuses(fresh.values(), source="push")
            # A key is remembered once its report is taken: after a failure, the
            # platform's next try brings only what was not.
            for key, report in fresh.items():
                if self._callback is not None:
                    self._callback(report)
                if remember:
                    seen[key] = None
                    if len(seen) > remember:
                        seen.popitem(last=False)
            return len(reports) - len(fresh)


def make_app(
    callback: Optional[Callback] = None,
    *,
    secret: Optional[str],
    secret_header: str = SECRET_HEADER,
    allow: Optional[Iterable[str]] = None,
    max_body: int = DEFAULT_MAX_BODY,
    journal: Any = None,
    tz: Optional[tzinfo] = None,
    json_fields: Optional[JsonFields] = None,
    remember: int = DEFAULT_REMEMBER,
) -> ReceiverApp:
    """A WSGI application that receives pushed delivery reports: a ``ReceiverApp``.

    Args:
        callback: called with each report (a ``StatusResult``), in order, from the
            server's request thread; an exception makes the answer 500.
        secret: the shared secret (printable ASCII, no spaces or ``/``) the caller must
            present in ``secret_header`` or as the last path segment (``/hpg/<secret>``).
            ``None`` turns the check off, which is allowed only together with ``allow``.
        secret_header: the header's name (letters, digits and ``-``: WSGI gives "-"
            and "_" one name, so a name with "_" is refused; see ``Receiver`` for
            headers whose name holds one).
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

    Returns:
        A ``ReceiverApp`` whose ``settings`` are these as one ``ReceiverSettings``.

    Raises:
        ValueError: no secret and no allow-list, an empty secret, a bad network,
            an unknown field in ``json_fields``.
    """
    settings = ReceiverSettings(
        secret=secret,
        secret_header=secret_header,
        allow=None if allow is None else tuple(allow),
        max_body=max_body,
        tz=tz,
        json_fields=json_fields or {},
        remember=remember,
    )
    return ReceiverApp(callback, settings, journal)


#: How many unread reports an answer names, at most (the log names every one).
_NAMED = 10


_MASK = "***"


def _partial(problems: Problems) -> str:
    """The answer to a push taken but for some reports: ``ok``, then which were not
    read and why (``ok, line 2 not read (line 2: garbled code)``); never their bytes."""
    lines = [p.split(":", 1)[0] for p in problems if p.startswith("line ")]
    if len(lines) == len(problems):
        which = f"{'line' if len(lines) == 1 else 'lines'} {', '.join(n[5:] for n in lines)}"
    else:
        which = f"{len(problems)} of {problems.total} reports"
    shown = "; ".join(problems[:_NAMED]) + ("; ..." if len(problems) > _NAMED else "")
    return f"ok, {which} not read ({shown})"


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
