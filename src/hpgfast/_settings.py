"""``hpgfast.Settings``: every setting of a client, checked once, in one frozen value.

Strategy: a client's settings live in one place. ``Client`` and ``AsyncClient``
take their keyword arguments only to build a ``Settings`` (or take one whole:
``Client.from_settings``), the core (``core.Exchange``) reads that same value, and
the clients' attributes (``client.max_batch``...) are read-only views of it. No
copy can drift from what is in force, and a changed setting is a new client:
``Client.from_settings(dataclasses.replace(client.settings, max_batch=1))``.

Every value is checked here, with an error naming the setting, and kept in a plain
form: exact ``int``/``float``/``str``/``bool`` (an ``int`` subclass whose
comparisons lie, or a ``bool`` given for a number, cannot slip past a bound),
tuples and frozensets for collections. The password is kept out of ``repr()``,
and a ``Settings`` refuses to be pickled, as the clients do.
"""

from __future__ import annotations

import base64
import math
import numbers
import operator
import os
import re
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import tzinfo
from typing import Any, NamedTuple, Optional
from urllib.parse import unquote

from urllib3.util import parse_url

from . import _redact, _wire
from ._records import Params
from ._wire import Code, Status
from .codec import encode_params
from .core import MAX_REQUEST_BYTES, REPLY_BYTES_FLOOR, Subscriber

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "Endpoint", "Proxy", "Settings"]

#: The least reply cap of a request by default (``max_reply_bytes=None``), which
#: then grows with the request: ``hpgfast.core.reply_cap``.
DEFAULT_MAX_REPLY_BYTES = REPLY_BYTES_FLOOR

#: What http.client would refuse in a target (its _contains_disallowed_url_pchar_re).
_UNSAFE_TARGET = re.compile("[\x00-\x20\x7f-\U0010ffff]")
#: Characters a header value must not hold (a CR or LF would start a new header).
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f]")


class Endpoint(NamedTuple):
    """The parts of a connector's base URL the clients and the core use."""

    scheme: str
    host: str  # as in the URL: an IPv6 literal keeps its brackets
    port: int
    origin: str  # scheme://netloc
    path: str  # ends with "/"
    #: The base URL as reprs, logs and errors show it: ``origin`` and ``path`` with
    #: the password masked, should the path hold it (a user's mistake, but a path
    #: is shown wherever the URL is).
    shown: str


def _endpoint(
    url: object, password: str = "", name: str = "url", password_param: str = _wire.PASSWORD
) -> Endpoint:
    """``url``'s parts, checked; an error shows it masked (``_redact.mask_url``)."""
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a str, got {type(url).__name__}")
    url = str.__str__(url)
    parsed: Any = None
    try:
        parsed = parse_url(url)
    except ValueError:  # urllib3's LocationParseError, which quotes the URL
        pass
    # Raised outside the except block: the parser's error (the URL in it, password
    # and all) must not ride along as __context__.
    if parsed is None:
        raise ValueError(f"{name} is not a valid URL: {_shown(url, password)}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(
            f"{name} must be an http:// or https:// URL, got {_shown(url, password)!r}"
        )
    if parsed.query or parsed.fragment or parsed.auth:
        raise ValueError(
            f"{name} must be the connector's base URL, without query or user info, "
            f"got {_shown(url, password)!r}"
        )
    path = parsed.path or "/"
    if not path.endswith("/"):
        path += "/"
    if _UNSAFE_TARGET.search(path):
        raise ValueError("url: the path holds spaces, control or non-ASCII characters")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    origin = f"{parsed.scheme}://{parsed.netloc}"
    # The path only (the scheme and host hold no password; a short one would mask
    # "http"): every form of the password, percent-encoded too, and the value of a
    # ";password=" path parameter.
    shown = (
        _redact.Redactor(password, password_param=password_param)(path) if password else path
    )
    return Endpoint(parsed.scheme, parsed.host, port, origin, path, origin + shown)


def _shown(url: str, password: str) -> str:
    """A refused URL as an error may show it: user info, query values and the
    password masked."""
    redactor = _redact.Redactor(password) if password else None
    return _redact.mask_url(url, redactor)


class Proxy(NamedTuple):
    """The forward proxy a client goes through, resolved from ``proxy`` or the
    environment; its credentials only in ``Secret`` (no repr shows them)."""

    host: str  # to connect to: an IPv6 literal without its brackets
    port: int
    #: The proxy's URL as logs and errors show it: ``http://***@host:port``.
    shown: str
    #: The ``Proxy-Authorization`` header's value (Basic), or None.
    authorization: Optional[_redact.Secret]
    #: The proxy's password (for the redactor), or None.
    password: Optional[_redact.Secret]
    #: Where it came from: ``proxy`` or the environment variable's name.
    source: str


def _proxy(url: str, source: str, password: str) -> Proxy:
    """``url`` (``http://[user:password@]host[:port]``) as a ``Proxy``, checked."""
    if "://" not in url and not url.startswith("//"):
        url = "http://" + url  # "proxy:3128", as urllib and requests take it
    parsed: Any = None
    try:
        parsed = parse_url(url)
    except ValueError:  # LocationParseError quotes the URL
        pass
    if parsed is None:
        raise ValueError(f"{source} is not a valid URL: {_shown(url, password)}")
    if parsed.scheme != "http" or not parsed.host:
        raise ValueError(
            f"{source} must be an http:// proxy URL (CONNECT to it in the clear), "
            f"got {_shown(url, password)!r}"
        )
    if parsed.path not in (None, "", "/") or parsed.query or parsed.fragment:
        raise ValueError(f"{source} must be a proxy's URL, without a path or query, "
                         f"got {_shown(url, password)!r}")
    host = parsed.host
    port = parsed.port or 80
    netloc = f"{host}:{port}"
    authorization = secret = None
    if parsed.auth is not None:
        user, _, pw = parsed.auth.partition(":")
        user, pw = unquote(user), unquote(pw)
        if _HEADER_UNSAFE.search(user + pw):
            raise ValueError(f"{source}: the proxy's user or password holds control characters")
        token = base64.b64encode(f"{user}:{pw}".encode()).decode("ascii")
        authorization = _redact.Secret(f"Basic {token}")
        secret = _redact.Secret(pw) if pw else None
        netloc = f"{_redact.MASK}@{netloc}"
    bare = host[1:-1] if host.startswith("[") else host
    return Proxy(bare, port, f"http://{netloc}", authorization, secret, source)


def _route(explicit: Optional[str], endpoint: Endpoint, trust_env: Optional[bool],
           password: str) -> Optional[Proxy]:
    """The proxy to go through, or None.

    ``proxy`` when given. Otherwise the environment's, as urllib reads it
    (``getproxies()``: ``https_proxy``/``HTTPS_PROXY``, ``http_proxy``, the latter
    never under CGI), unless ``NO_PROXY`` names the platform's host (or its
    ``host:port``, as urllib matches it): for an
    ``https://`` platform unless ``trust_env`` is False, for ``http://`` only when
    it is True (a proxy then reads the password in the clear).
    """
    if explicit is not None:
        return _proxy(explicit, "proxy", password)
    if trust_env is False or (endpoint.scheme == "http" and not trust_env):
        return None
    proxies = urllib.request.getproxies()
    url = proxies.get(endpoint.scheme)
    if not url:
        return None
    # What urllib asks about: the request's host as the URL writes it, with its port
    # when the URL has one ("localhost:8443", "[::1]:8443"), so that a NO_PROXY entry
    # naming a port matches as urllib matches it; and the bare host, so that "::1"
    # matches "[::1]" as it always did here.
    netloc = endpoint.origin.split("://", 1)[1]
    host = endpoint.host[1:-1] if endpoint.host.startswith("[") else endpoint.host
    for name in dict.fromkeys((netloc, host)):
        if "no" in proxies:
            # NO_PROXY as urllib reads it (not in typeshed, in urllib.request since 3.0).
            by_env = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            bypass = by_env(name, proxies)
        else:
            bypass = urllib.request.proxy_bypass(name)
        if bypass:
            return None
    return _proxy(url, f"{endpoint.scheme}_proxy from the environment", password)


# -- the checks: each answers the plain value or raises naming the setting ----------------


def _text(name: str, value: object, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        # The type only: the value may be the password.
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return str.__str__(value)  # an exact str: a subclass's overrides go no further


def _password(value: object) -> str:
    """The password, a ``str`` UTF-8 can encode.

    A lone surrogate (what ``os.fsdecode``, ``os.environ`` or a file read with
    ``surrogateescape`` make of a byte that is not UTF-8) cannot be sent, and the
    codec's ``UnicodeEncodeError`` would carry the text in its ``args`` and repr: so
    it is refused here, by a ``ValueError`` raised outside the ``except`` block (no
    ``__context__``) that names the problem and the position, never the text.
    """
    password: str = _text("password", value)
    position = -1
    try:
        password.encode("utf-8")
    except UnicodeEncodeError as exc:
        position = exc.start
    if position >= 0:
        raise ValueError(
            f"password holds a lone surrogate at position {position} (a byte that is not "
            "UTF-8, as os.fsdecode or the environment give it): give it in UTF-8"
        ) from None
    return password


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def _count(name: str, value: object, minimum: int, *, optional: bool = False) -> Any:
    """An exact ``int`` of at least ``minimum``: not a bool, and compared as a plain int
    (an int subclass could answer any comparison it likes)."""
    if value is None and optional:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got a bool")
    try:
        number = int(operator.index(value))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def _seconds(name: str, value: object, *, zero: bool = False, optional: bool = False) -> Any:
    """An exact, finite ``float``: positive (or, with ``zero``, not negative)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)  # an exact float, compared as one
    if not math.isfinite(number) or not (number >= 0 if zero else number > 0):
        bound = "a finite number, not negative" if zero else "a finite positive number"
        raise ValueError(f"{name} must be {bound}, got {number!r}")
    return number


def _codes(name: str, value: object, *, lower: bool = False) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of str, got {type(value).__name__}")
    codes = [_text(name, code) for code in value]
    return frozenset(code.lower() for code in codes) if lower else frozenset(codes)


def _params(value: object) -> Optional[tuple[tuple[str, str], ...]]:
    if value is None:
        return None
    pairs = tuple(value.items()) if isinstance(value, Mapping) else value
    if not isinstance(pairs, Iterable) or isinstance(pairs, (str, bytes)):
        raise TypeError(f"extra_params must be a mapping or pairs, got {type(value).__name__}")
    pairs = tuple(pairs)
    encode_params(pairs)  # raises MessageError naming the parameter
    return tuple((str.__str__(n), str.__str__(v)) for n, v in pairs)


@dataclass(frozen=True)
class Settings:
    """Every setting of a client, checked; ``Client`` and ``AsyncClient`` take the same.

    A client's keyword arguments build one; ``Client.from_settings(settings)`` (and
    ``AsyncClient.from_settings``) take one whole, and ``client.settings`` is the one
    in force. It is frozen: for other settings make another client, with
    ``dataclasses.replace(client.settings, ...)`` (which checks again).

    Args:
        url: the connector's base URL, ``http(s)://host:port/<CLIENT>/<connector>/``;
            ``send`` and ``status`` are appended to it.
        login: the client's login.
        password: the client's password. It is never logged, shown or raised: every
            URL hpgfast shows has it replaced by ``***``.
        login_param: the name of the login parameter on this connector.
        password_param: the name of the password parameter (some connectors use
            ``pass``).
        timeout: seconds to wait for the platform's reply (each socket read).
        connect_timeout: seconds to wait for a connection (and TLS handshake).
        ca_certs: a PEM file with the certificate(s) to trust for HTTPS (the
            provider's); the system's trust store when ``None``.
        verify: verify the platform's certificate and host name (HTTPS). Turning it
            off warns with ``urllib3.exceptions.InsecureRequestWarning``.
        proxy: a forward proxy, ``http://[user:password@]host:port`` (without a
            scheme, ``host:port`` is taken as ``http://``, as urllib, requests and
            curl take it), used whatever the environment says. An ``https://``
            platform is reached through it with ``CONNECT`` (the platform's
            certificate still verified, end to end); an ``http://`` one with the
            whole URL as the request target, so the proxy reads the password (a
            warning is logged once per client). Its credentials go as
            ``Proxy-Authorization: Basic`` and are masked like the password. A
            proxy that refuses (HTTP 407, any non-2xx to ``CONNECT``) stops the
            batch with ``ProxyError``: nothing was sent.
        trust_env: whether the environment's proxies (``HTTPS_PROXY``,
            ``HTTP_PROXY``, ``NO_PROXY``, read as ``urllib.request.getproxies()``
            reads them, when the settings are made; never ``ALL_PROXY``) are used
            when ``proxy`` is not given. ``None``: for an ``https://`` platform
            only; ``True``: for an ``http://`` one too (with the warning above);
            ``False``: never.
        max_request_bytes: the longest request line (``GET <target> HTTP/1.1``) sent;
            batches are split to stay within it.
        max_batch: at most this many messages (or ids) per request.
        concurrency: how many requests may be in flight at once, each on its own
            pooled connection.
        extra_params: request-level parameters sent with every request
            (``{"priority": "high"}``).
        default_subject: the subject of messages that have none.
        status_tz: the platform's time zone; STATUS times are then aware.
        quote_brackets: send ``text%5B0%5D`` instead of ``text[0]``.
        retries: how many times a request is repeated: for SEND only after a failure
            to connect; for STATUS after any transient failure.
        backoff: seconds before the first repeat; doubled for each further one.
        backoff_max: the longest wait between repeats.
        max_reply_bytes: the longest reply body read, on the wire and once its
            ``Content-Encoding`` (gzip, deflate) is undone; a longer one is a
            protocol error (a SEND's messages ``unknown``). ``None`` (the default):
            the cap follows each request, ``max(4 MiB, 512 bytes per message or id
            + 64 KiB)``, room for ten times the longest lines seen. A number is a
            hard cap for every request, however many messages it carries.
        user_agent: the ``User-Agent`` header.
        subscribers: ``hpgfast.core.Subscriber`` objects told of every request
            before its first byte leaves and after it ended (a journal, metrics).
        account_stop_codes: platform codes that say the account cannot send; met on
            any line, they stop the batch and raise ``AccountError``.
        final_statuses: delivery statuses after which nothing changes (any case);
            ``is_final()`` uses them.
        retry_on_429: send a request answered HTTP 429 again after ``Retry-After``
            (its messages were not processed); ``False`` makes a SEND's messages
            ``unknown`` instead, never repeated.
        retry_after_max: the longest ``Retry-After`` honoured, in seconds. A
            ``Retry-After`` on a 429 or a 5xx reply holds back every request of the
            batch that has not started yet, SEND and STATUS alike; a STATUS (or a
            SEND answered 429) is repeated no sooner.
        stop_after_5xx: this many HTTP 5xx replies in a row (a STATUS sent again
            counts each time; any other reply starts the count again) stop the
            batch with ``PlatformUnavailable``: the platform is down, and the rest
            of the batch is ``not-sent`` instead of each request meeting a 5xx
            (requests already on the wire are settled by their own replies: up to
            about ``stop_after_5xx + concurrency - 1`` requests in all).
        max_rate: at most this many messages per second, over every thread and
            call of this client, with a burst of at most one request.
        request_deadline: seconds one exchange may take from its first written byte
            to the end of its reply, however slowly the reply trickles in (default
            10 x ``timeout``). Past it a SEND's messages are ``unknown``. The
            deadline (and ``AsyncClient``'s read timeout) is checked a few times a
            second, at least four times per limit, so it may fire up to half a
            second late.
        client_ids: send a clientId of hpgfast's own with every message that has
            none (20 characters of ``[0-9A-Za-z]``, unique across requests and
            processes), so that a stray or late reply can never match. ``False``
            sends none: the platform then answers with indexes.
        transliterate: write Russian letters in Latin ones (ICAO Doc 9303) in each
            text that then needs fewer SMS segments (``hpgfast.sms``); a text that
            is GSM 7-bit already, or stays UCS-2, is sent as it is.

    Raises:
        ValueError: a setting out of range, a URL that is not HTTP(S), a password
            UTF-8 cannot encode (a lone surrogate; the error does not show it).
        TypeError: a setting of the wrong type (a ``bool`` is not a number).
        MessageError: a login, password or extra parameter that cannot be encoded.
    """

    url: str
    login: str
    password: str = field(repr=False)
    login_param: str = _wire.LOGIN
    password_param: str = _wire.PASSWORD
    timeout: float = 30.0
    connect_timeout: float = 10.0
    ca_certs: Optional[str] = None
    verify: bool = True
    proxy: Optional[str] = field(default=None, repr=False)  # may hold credentials
    trust_env: Optional[bool] = None
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_batch: Optional[int] = None
    concurrency: int = 1
    extra_params: Optional[Params] = None
    default_subject: Optional[str] = None
    status_tz: Optional[tzinfo] = None
    quote_brackets: bool = False
    retries: int = 3
    backoff: float = 0.1
    backoff_max: float = 5.0
    max_reply_bytes: Optional[int] = None
    user_agent: str = "hpgfast"
    subscribers: Sequence[Subscriber] = ()
    account_stop_codes: Iterable[str] = Code.ACCOUNT_STOP
    final_statuses: Iterable[str] = Status.FINAL
    retry_on_429: bool = True
    retry_after_max: float = 60.0
    stop_after_5xx: int = 3
    max_rate: Optional[float] = None
    request_deadline: Optional[float] = None
    client_ids: bool = True
    transliterate: bool = False
    # Made of the settings above (not arguments): read on every request, so made once.
    #: The URL's parts: scheme, host, port, origin and path.
    endpoint: Endpoint = field(init=False, repr=False, compare=False)
    #: Seconds one exchange may take: ``request_deadline``, or 10 x ``timeout``.
    deadline: float = field(init=False, repr=False, compare=False)
    #: The proxy in force (``proxy``, else the environment's), or None.
    proxy_route: Optional[Proxy] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The password first: no later error may show it (none prints a value of a
        # str setting it could be mistaken for).
        plain: dict[str, Any] = {"password": _password(self.password)}
        for name in ("login", "login_param", "password_param", "user_agent"):
            plain[name] = _text(name, getattr(self, name))
        endpoint = plain["endpoint"] = _endpoint(
            self.url, plain["password"], password_param=plain["password_param"]
        )
        plain["url"] = endpoint.origin + endpoint.path
        if _HEADER_UNSAFE.search(plain["user_agent"]):
            raise ValueError("user_agent holds control characters")
        # Raises MessageError (naming the parameter) for what cannot be encoded.
        encode_params(
            [(plain["login_param"], plain["login"]), (plain["password_param"], plain["password"])]
        )
        plain["default_subject"] = _text("default_subject", self.default_subject, optional=True)
        for name in ("timeout", "connect_timeout", "backoff", "backoff_max", "retry_after_max"):
            plain[name] = _seconds(name, getattr(self, name), zero=name.startswith(("back", "ret")))
        for name in ("max_rate", "request_deadline"):
            plain[name] = _seconds(name, getattr(self, name), optional=True)
        plain["max_request_bytes"] = _count("max_request_bytes", self.max_request_bytes, 1)
        plain["max_batch"] = _count("max_batch", self.max_batch, 1, optional=True)
        plain["concurrency"] = _count("concurrency", self.concurrency, 1)
        plain["retries"] = _count("retries", self.retries, 0)
        plain["stop_after_5xx"] = _count("stop_after_5xx", self.stop_after_5xx, 1)
        plain["max_reply_bytes"] = _count(
            "max_reply_bytes", self.max_reply_bytes, 1, optional=True
        )
        for name in ("verify", "quote_brackets", "retry_on_429", "client_ids", "transliterate"):
            plain[name] = _flag(name, getattr(self, name))
        if self.ca_certs is not None:
            if not isinstance(self.ca_certs, (str, os.PathLike)):
                raise TypeError(f"ca_certs must be a path, got {type(self.ca_certs).__name__}")
            plain["ca_certs"] = _text("ca_certs", os.fspath(self.ca_certs))
        if self.status_tz is not None and not isinstance(self.status_tz, tzinfo):
            raise TypeError(f"status_tz must be a tzinfo, got {type(self.status_tz).__name__}")
        plain["extra_params"] = _params(self.extra_params)
        subscribers = self.subscribers
        if isinstance(subscribers, (str, bytes)) or not isinstance(subscribers, Iterable):
            raise TypeError(f"subscribers must be a sequence, got {type(subscribers).__name__}")
        plain["subscribers"] = tuple(subscribers)
        plain["account_stop_codes"] = _codes("account_stop_codes", self.account_stop_codes)
        plain["final_statuses"] = _codes("final_statuses", self.final_statuses, lower=True)
        plain["proxy"] = _text("proxy", self.proxy, optional=True)
        if self.trust_env is not None:
            plain["trust_env"] = _flag("trust_env", self.trust_env)
        plain["proxy_route"] = _route(
            plain["proxy"], endpoint, self.trust_env, plain["password"]
        )
        deadline = plain["request_deadline"]
        plain["deadline"] = 10 * plain["timeout"] if deadline is None else deadline
        for name, value in plain.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # The dataclass's own repr, but for the URL, shown masked: its path may
        # hold the password.
        shown = ", ".join(
            f"{f.name}={self.endpoint.shown if f.name == 'url' else getattr(self, f.name)!r}"
            for f in fields(self)
            if f.repr
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("Settings cannot be pickled (they hold a password)")
