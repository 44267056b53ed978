"""What both clients share: everything a transport does but moving bytes, written once.

Strategy: ``Client`` (urllib3, threads) and ``AsyncClient`` (asyncio) differ only in
how they move bytes. Everything else lives here, so that it can never be done one
way in one client and another way in the other:

- **The settings**: the constructor's keyword arguments build one frozen
  ``Settings`` (checked there, once); ``from_settings()`` takes one whole. The core
  (``core.Exchange``) reads that value, and the client's setting attributes are
  read-only views of it (``_Setting``): none can be changed behind the core's back.
- **The shape of a call**: ``send()``/``status()`` check their arguments and plan
  the batch here (``_plan``); a transport drives it and returns ``finish()``.
- **What a failure is**: the classification of a connect or socket error
  (``_failure``), the grace periods and the debug line of each exchange.
"""

from __future__ import annotations

import inspect
import logging
import socket
import ssl
import time
import warnings
import weakref
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import tzinfo
from typing import Any, ClassVar, Generic, NoReturn, Optional, TypeVar, overload

from urllib3.exceptions import InsecureRequestWarning, NewConnectionError
from urllib3.exceptions import SSLError as _Urllib3SSLError
from urllib3.exceptions import TimeoutError as _Urllib3Timeout
from urllib3.util.ssl_ import create_urllib3_context

from . import _redact
from ._records import Params, StatusResult
from ._settings import DEFAULT_MAX_REPLY_BYTES, Settings
from .core import (
    CONNECT,
    PROXY,
    SENT,
    STATUS,
    TLS,
    Batch,
    Exchange,
    Failure,
    Operation,
    Subscriber,
)
from .exceptions import ConnectError, ProxyError, TLSError, TransportError

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "FRESH_GRACE", "INTERRUPT_GRACE", "BaseClient"]

#: Seconds the requests on the wire may still take after an interrupt (Ctrl-C, or a
#: cancelled ``AsyncClient`` call); a second interrupt ends the wait at once.
INTERRUPT_GRACE = 2.0

#: How long a fresh plain-HTTP connection is watched for an immediate close before
#: the request is written. A server that accepts and closes at once (overloaded, at
#: its connection limit) has then certainly read nothing, so the request can be
#: retried instead of being reported unknown. Paid once per new connection.
FRESH_GRACE = 0.001

#: Timeouts of a socket or of urllib3 (``socket.timeout`` is ``TimeoutError`` since
#: Python 3.10, asyncio's since 3.11: a transport adds its own in ``_timeouts``).
_TIMEOUTS: tuple[type[BaseException], ...] = (socket.timeout, TimeoutError, _Urllib3Timeout)
#: A TLS handshake cut by the server: nothing was sent, a connect failure.
_TLS_CUT = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
_TLS_FAILED = (ssl.SSLError, ssl.CertificateError, _Urllib3SSLError)

#: The longest reply head a proxy may give to ``CONNECT`` (a 200 has no body).
PROXY_HEAD_MAX = 16 * 1024


class TunnelRefused(OSError):
    """The proxy's answer to ``CONNECT`` was not 2xx (or not HTTP): ``status`` (None
    when unreadable) and its reason phrase. Raised by a transport while connecting."""

    def __init__(self, status: Optional[int], reason: str) -> None:
        super().__init__(f"{status} {reason}" if status is not None else reason)
        self.status = status
        self.reason = reason


def tunnel_reply(data: bytes) -> None:
    """Check what the proxy answered to ``CONNECT``: ``data`` holds its reply head
    whole (up to the blank line). Returns when it is 2xx with nothing after the head,
    raises ``TunnelRefused`` otherwise (a refusal may come with a body)."""
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise TunnelRefused(None, f"not an HTTP reply: {line[:80]!r}")
    status = int(code)
    if not 200 <= status < 300:
        raise TunnelRefused(status, reason.strip()[:200])
    if not data.endswith(b"\r\n\r\n") or data.find(b"\r\n\r\n") + 4 != len(data):
        # A 2xx to CONNECT has no body, and the platform speaks only after our
        # TLS hello: bytes here are not the tunnel's.
        raise TunnelRefused(None, f"bytes after the proxy's {status} to CONNECT")


T = TypeVar("T")
_Client = TypeVar("_Client", bound="BaseClient")
_D = Settings  # the defaults of the constructor's arguments are the settings' own


class _Setting(Generic[T]):
    """A client's read-only view of one of its settings (``client.max_batch``).

    Assigning one raises: a setting takes effect only through the ``Settings`` the
    client was made with (and a client with other settings is another client).
    """

    __slots__ = ("name", "source")

    def __init__(self, source: str = "") -> None:
        self.name = source
        self.source = source  # the attribute of Settings read: by default, the same name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.source = self.source or name

    @overload
    def __get__(self, client: None, owner: Any = None) -> _Setting[T]: ...
    @overload
    def __get__(self, client: BaseClient, owner: Any = None) -> T: ...
    def __get__(self, client: Optional[BaseClient], owner: Any = None) -> Any:
        if client is None:
            return self
        return getattr(client._settings, self.source)

    def __set__(self, client: BaseClient, value: NoReturn) -> None:
        raise AttributeError(
            f"{type(client).__name__}.{self.name} is read-only: settings are fixed when a "
            f"client is made; make another with {type(client).__name__}.from_settings("
            f"dataclasses.replace(client.settings, {self.name}=...))"
        )

    def __delete__(self, client: BaseClient) -> None:
        self.__set__(client, None)  # type: ignore[arg-type]


class BaseClient:
    """A client of one HPG connector, without its transport (the subclass's part)."""

    #: Makes the lock that guards the rate limit's bookings (threads need one).
    _rate_lock: ClassVar[Any] = nullcontext
    #: The transport's timeout exceptions besides ``_TIMEOUTS``.
    _timeouts: ClassVar[tuple[type[BaseException], ...]] = ()
    #: The logger of the transport's module.
    _log: ClassVar[logging.Logger]

    def __init__(
        self,
        url: str,
        login: str,
        password: str,
        *,
        login_param: str = _D.login_param,
        password_param: str = _D.password_param,
        timeout: float = _D.timeout,
        connect_timeout: float = _D.connect_timeout,
        ca_certs: Optional[str] = _D.ca_certs,
        verify: bool = _D.verify,
        proxy: Optional[str] = _D.proxy,
        trust_env: Optional[bool] = _D.trust_env,
        max_request_bytes: int = _D.max_request_bytes,
        max_batch: Optional[int] = _D.max_batch,
        concurrency: int = _D.concurrency,
        extra_params: Optional[Params] = _D.extra_params,
        default_subject: Optional[str] = _D.default_subject,
        status_tz: Optional[tzinfo] = _D.status_tz,
        quote_brackets: bool = _D.quote_brackets,
        retries: int = _D.retries,
        backoff: float = _D.backoff,
        backoff_max: float = _D.backoff_max,
        max_reply_bytes: Optional[int] = _D.max_reply_bytes,
        user_agent: str = _D.user_agent,
        subscribers: Sequence[Subscriber] = _D.subscribers,
        account_stop_codes: Iterable[str] = _D.account_stop_codes,
        final_statuses: Iterable[str] = _D.final_statuses,
        retry_on_429: bool = _D.retry_on_429,
        retry_after_max: float = _D.retry_after_max,
        stop_after_5xx: int = _D.stop_after_5xx,
        max_rate: Optional[float] = _D.max_rate,
        request_deadline: Optional[float] = _D.request_deadline,
        client_ids: bool = _D.client_ids,
        transliterate: bool = _D.transliterate,
    ) -> None:
        self._closed = True  # until the transport exists, close() has nothing to do
        settings = Settings(
            url,
            login,
            password,
            login_param=login_param,
            password_param=password_param,
            timeout=timeout,
            connect_timeout=connect_timeout,
            ca_certs=ca_certs,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            max_request_bytes=max_request_bytes,
            max_batch=max_batch,
            concurrency=concurrency,
            extra_params=extra_params,
            default_subject=default_subject,
            status_tz=status_tz,
            quote_brackets=quote_brackets,
            retries=retries,
            backoff=backoff,
            backoff_max=backoff_max,
            max_reply_bytes=max_reply_bytes,
            user_agent=user_agent,
            subscribers=subscribers,
            account_stop_codes=account_stop_codes,
            final_statuses=final_statuses,
            retry_on_429=retry_on_429,
            retry_after_max=retry_after_max,
            stop_after_5xx=stop_after_5xx,
            max_rate=max_rate,
            request_deadline=request_deadline,
            client_ids=client_ids,
            transliterate=transliterate,
        )
        self._setup(settings)

    @classmethod
    def from_settings(cls: type[_Client], settings: Settings) -> _Client:
        """A client with these ``settings`` (``hpgfast.Settings``), taken whole."""
        if not isinstance(settings, Settings):
            raise TypeError(f"settings must be a hpgfast.Settings, got {type(settings).__name__}")
        client = cls.__new__(cls)
        client._closed = True
        client._setup(settings)
        return client

    def _setup(self, settings: Settings) -> None:
        """Make the core, the TLS context and the request headers, then the transport."""
        self._settings = settings
        endpoint = settings.endpoint
        self._scheme = endpoint.scheme
        self._host = endpoint.host
        self._port = endpoint.port
        self._core = Exchange(settings, rate_lock=self._rate_lock())
        self._ssl_context = self._tls_context() if self._scheme == "https" else None
        default_port = 443 if self._scheme == "https" else 80
        host = self._host if self._port == default_port else f"{self._host}:{self._port}"
        route = self._proxy_route = settings.proxy_route
        #: An http:// platform through a proxy: the request target is the whole URL
        #: (absolute form), written after ``GET `` by the transport.
        self._absolute = b""
        proxy_headers = ""
        #: The ``CONNECT`` request of an https:// platform through a proxy.
        self._connect_request: Optional[_redact.Secret] = None
        if route is not None:
            auth = route.authorization
            if self._scheme == "https":
                authority = f"{self._host}:{self._port}"
                self._connect_request = _redact.Secret(
                    f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
                    f"User-Agent: {settings.user_agent}\r\n"
                    + (f"Proxy-Authorization: {auth.value}\r\n" if auth else "")
                    + "\r\n"
                )
            else:
                self._absolute = endpoint.origin.encode("ascii")
                if auth is not None:
                    proxy_headers = f"Proxy-Authorization: {auth.value}\r\n"
                # Once per client: every request line shows the proxy the password.
                self._log.warning(
                    "hpgfast.%s: %s goes through the proxy %s (%s) in the clear: the "
                    "proxy sees the password in every request line; use https:// to "
                    "keep it from the proxy",
                    type(self).__name__,
                    endpoint.origin,
                    route.shown,
                    route.source,
                )
        #: What follows the target in every request: the request line's end and the
        #: headers, built once (both clients write a request with one call).
        self._tail = (
            f" HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {settings.user_agent}\r\n"
            f"{proxy_headers}Accept-Encoding: identity\r\n\r\n"
        ).encode("latin-1")
        self._open()
        self._closed = False
        if self._core.redactor is not None:
            _redact.register(id(self), self._core.redactor)
            # A client dropped without close() must not stay registered.
            weakref.finalize(self, _redact.unregister, id(self))

    def _tls_context(self) -> ssl.SSLContext:
        """One context for every connection: loading the CA file per connection would
        cost milliseconds each time. urllib3's defaults (TLS 1.2 at least, its cipher
        choice) for both clients."""
        verify = self._settings.verify
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
        if verify:
            context.check_hostname = True
            if self._settings.ca_certs is not None:
                context.load_verify_locations(cafile=self._settings.ca_certs)
            else:
                context.load_default_certs()
        else:
            context.check_hostname = False
            warnings.warn(
                f"hpgfast.{type(self).__name__}(verify=False): the platform's "
                "certificate is not checked, so anyone on the path can read the password",
                InsecureRequestWarning,
                stacklevel=4,  # the caller of Client(...) or from_settings()
            )
        return context

    def _open(self) -> None:
        """Make the transport's connection machinery (the subclass's part)."""
        raise NotImplementedError

    # -- the settings: read-only ---------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The client's settings: one frozen ``hpgfast.Settings``, read by the core."""
        return self._settings

    url = _Setting[str]()
    login = _Setting[str]()
    login_param = _Setting[str]()
    password_param = _Setting[str]()
    timeout = _Setting[float]()
    connect_timeout = _Setting[float]()
    ca_certs = _Setting[Optional[str]]()
    verify = _Setting[bool]()
    proxy = _Setting[Optional[str]]()
    trust_env = _Setting[Optional[bool]]()
    max_request_bytes = _Setting[int]()
    max_batch = _Setting[Optional[int]]()
    concurrency = _Setting[int]()
    extra_params = _Setting[Optional[Params]]()
    default_subject = _Setting[Optional[str]]()
    status_tz = _Setting[Optional[tzinfo]]()
    quote_brackets = _Setting[bool]()
    retries = _Setting[int]()
    backoff = _Setting[float]()
    backoff_max = _Setting[float]()
    max_reply_bytes = _Setting[Optional[int]]()
    user_agent = _Setting[str]()
    subscribers = _Setting[Sequence[Subscriber]]()
    account_stop_codes = _Setting[Iterable[str]]()
    final_statuses = _Setting[Iterable[str]]()
    retry_on_429 = _Setting[bool]()
    retry_after_max = _Setting[float]()
    stop_after_5xx = _Setting[int]()
    max_rate = _Setting[Optional[float]]()
    #: What is in force: ``request_deadline``, or 10 x ``timeout`` when that is None.
    request_deadline = _Setting[float]("deadline")
    client_ids = _Setting[bool]()
    transliterate = _Setting[bool]()

    # -- what both transports' calls share ---------------------------------------------

    def __repr__(self) -> str:
        settings = getattr(self, "_settings", None)
        if settings is None:
            # A client whose __init__ raised (a bad setting): a traceback's frame
            # locals or a debugger still show ``self``, and a repr must not fail.
            return f"<hpgfast.{type(self).__name__} not set up>"
        state = " closed" if getattr(self, "_closed", True) else ""
        route = settings.proxy_route
        via = "" if route is None else f" proxy={route.shown!r}"
        return (
            f"<hpgfast.{type(self).__name__}{state} {settings.endpoint.shown!r} "
            f"login={settings.login!r} "
            f"concurrency={settings.concurrency}{via}>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        article = "an" if type(self).__name__[0] in "AEIOU" else "a"
        raise TypeError(
            f"{article} {type(self).__name__} cannot be pickled "
            "(it holds connections and a password)"
        )

    def is_final(self, result: StatusResult) -> bool:
        """True when ``result``'s status is one of ``final_statuses`` (any case)."""
        return self._core.is_final(result)

    def _plan(
        self,
        op: Operation,
        items: Iterable[Any],
        params: Optional[Params],
        sink: Optional[list[Any]],
        subscribers: Sequence[Subscriber] = (),
        compact: bool = False,
    ) -> Batch:
        """``send()``'s or ``status()``'s batch, checked and planned: nothing sent yet.

        Raises on bad input (``MessageError`` naming the item), or when closed.
        """
        if self._closed:
            raise RuntimeError(f"this hpgfast.{type(self).__name__} is closed")
        if not isinstance(items, Sequence):
            items = list(items)
        elif op is STATUS and isinstance(items, str):
            raise TypeError("provider_ids must be a sequence of str, not one str")
        if isinstance(subscribers, Subscriber):
            raise TypeError("subscribers must be a sequence of Subscriber, not one")
        return self._core.batch(op, items, params, sink, tuple(subscribers), compact=compact)

    def _failure(self, exc: BaseException, phase: str, shown: str) -> Failure:
        """The core's ``Failure`` for an OS, TLS or urllib3 error, with a redacted text.

        ``phase``: ``"connect"`` (nothing sent: a ``CONNECT`` or ``TLS`` failure the
        core may repeat) or anything else (the request may have left: ``SENT``).
        """
        said = str(exc)
        text = self._core.scrub(f"{type(exc).__name__}: {said}" if said else type(exc).__name__)
        timeouts = _TIMEOUTS + self._timeouts
        route = self._proxy_route
        if phase == "connect" and route is not None:
            if isinstance(exc, TunnelRefused):
                return self.proxy_refused(exc.status, self._core.scrub(exc.reason), shown)
            text = f"{text} (through the proxy {route.shown})"
        if phase == "connect":
            if isinstance(exc, _TLS_CUT):
                error = ConnectError(f"TLS handshake cut: {text}", url=shown, sent=False)
            elif isinstance(exc, _TLS_FAILED):
                return Failure(TLS, TLSError(f"TLS failed: {text}", url=shown, sent=False))
            elif isinstance(exc, timeouts) and not isinstance(exc, NewConnectionError):
                # (urllib3's NewConnectionError is a ConnectTimeoutError: a refusal.)
                seconds = self._settings.connect_timeout
                error = ConnectError(
                    f"connect timed out after {seconds}s: {text}", url=shown, sent=False
                )
            else:
                error = ConnectError(f"could not connect: {text}", url=shown, sent=False)
            return Failure(CONNECT, error)
        if isinstance(exc, timeouts):
            message = f"no reply within timeout={self._settings.timeout}s: {text}"
        else:
            message = f"connection broken: {text}"
        return Failure(SENT, TransportError(message, url=shown, sent=True))

    def proxy_refused(self, status: Optional[int], reason: str, shown: str) -> Failure:
        """The ``PROXY`` failure of a proxy that refused (407, a refused ``CONNECT``):
        nothing reached the platform, and the batch stops (a setting is wrong)."""
        route = self._proxy_route
        assert route is not None
        said = f"HTTP {status} {reason}".rstrip() if status is not None else reason
        hint = " (its credentials are missing or wrong)" if status == 407 else ""
        error = ProxyError(
            f"the proxy {route.shown} ({route.source}) refused to carry the request{hint}: "
            f"{said}",
            url=shown,
            sent=False,
            status=status,
            proxy=route.shown,
        )
        return Failure(PROXY, error)

    def _log_exchange(
        self,
        shown: str,
        line: bytes,
        failure: Optional[Failure],
        status: Optional[int],
        received: int,
        started: float,
    ) -> None:
        """The debug line of one exchange (the transport checks the level first)."""
        self._log.debug(
            "GET %s (%d bytes): %s, %d bytes in %.2f ms",
            shown,
            len(line) + len(self._tail),  # the whole request, headers too
            # The error's text is scrubbed where it is made; scrubbed again as a
            # whole here, the one line every exchange logs can show no echo of it.
            self._core.scrub(str(failure.error)) if failure is not None else f"HTTP {status}",
            received,
            (time.perf_counter() - started) * 1000.0,
        )


def settings_doc(intro: str) -> str:
    """A client's docstring: its own ``intro``, then the arguments and errors of
    ``Settings`` (written once, so that ``help()`` on either client shows them)."""
    own = inspect.cleandoc(intro)
    shared = inspect.cleandoc(Settings.__doc__ or "")  # None under python -OO
    start = shared.find("Args:")
    return own if start < 0 else f"{own}\n\n{shared[start:]}"
