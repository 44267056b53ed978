"""The settings both clients share: argument checking and the core, written once.

Strategy: ``Client`` (urllib3, threads) and ``AsyncClient`` (asyncio) differ only in
how they move bytes. Everything their constructors do besides opening connections
(checking each setting, parsing the URL, making the sans-IO ``Exchange`` that holds
the password, registering its redactor) lives here, so a setting can never be
checked one way in one client and another way in the other.
"""

from __future__ import annotations

import inspect
import re
import ssl
import warnings
import weakref
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import tzinfo
from typing import Any, ClassVar, Optional

from urllib3.exceptions import InsecureRequestWarning
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from . import _redact, _wire
from ._records import Params
from ._wire import Code, Status
from .core import MAX_REQUEST_BYTES, Exchange, RateLimit, RetryPolicy, Subscriber

#: Characters a header value must not hold (a CR or LF would start a new header).
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f]")

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "ClientSettings"]

#: Default reply cap per request: a SEND reply line is ~20-60 bytes, so 4 MiB holds
#: far more lines than the largest sensible request has messages.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024

#: What http.client would refuse in a target (its _contains_disallowed_url_pchar_re).
_UNSAFE_TARGET = re.compile("[\x00-\x20\x7f-\U0010ffff]")


class ClientSettings:
    """The settings both clients take, checked once: ``Client`` and ``AsyncClient``.

    A transport subclasses it and opens its connections in ``_open()``; the
    arguments below are checked, the core (``Exchange``) is made and the redactor
    registered here, so both clients refuse and accept exactly the same settings.

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
        max_reply_bytes: a reply longer than this is a protocol error.
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
        retry_after_max: the longest ``Retry-After`` honoured, in seconds.
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
        ValueError: a setting out of range or a URL that is not HTTP(S).
        MessageError: a login, password or extra parameter that cannot be encoded.
    """

    #: Makes the lock that guards the rate limit's bookings (threads need one).
    _rate_lock: ClassVar[Any] = nullcontext

    def __init__(
        self,
        url: str,
        login: str,
        password: str,
        *,
        login_param: str = _wire.LOGIN,
        password_param: str = _wire.PASSWORD,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        ca_certs: Optional[str] = None,
        verify: bool = True,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_batch: Optional[int] = None,
        concurrency: int = 1,
        extra_params: Optional[Params] = None,
        default_subject: Optional[str] = None,
        status_tz: Optional[tzinfo] = None,
        quote_brackets: bool = False,
        retries: int = 3,
        backoff: float = 0.1,
        backoff_max: float = 5.0,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        user_agent: str = "hpgfast",
        subscribers: Sequence[Subscriber] = (),
        account_stop_codes: Iterable[str] = Code.ACCOUNT_STOP,
        final_statuses: Iterable[str] = Status.FINAL,
        retry_on_429: bool = True,
        retry_after_max: float = 60.0,
        max_rate: Optional[float] = None,
        request_deadline: Optional[float] = None,
        client_ids: bool = True,
        transliterate: bool = False,
    ) -> None:
        # The redactor first: from here on, no error may show the password.
        if not isinstance(password, str):
            raise TypeError(f"password must be a str, got {type(password).__name__}")
        self._closed = True  # until the transport exists, close() has nothing to do
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch!r}")
        policy = RetryPolicy(retries, backoff, backoff_max)
        if max_reply_bytes < 1:
            raise ValueError(f"max_reply_bytes must be positive, got {max_reply_bytes!r}")

        parsed = parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"url must be an http:// or https:// URL, got {url!r}")
        if parsed.query or parsed.fragment or parsed.auth:
            raise ValueError("url must be the connector's base URL, without query or user info")
        path = parsed.path or "/"
        if not path.endswith("/"):
            path += "/"
        if _UNSAFE_TARGET.search(path):
            raise ValueError("url: the path holds spaces, control or non-ASCII characters")
        self._scheme = parsed.scheme
        self._host = parsed.host
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.url = f"{self._scheme}://{parsed.netloc}{path}"
        self._core = Exchange(
            origin=f"{self._scheme}://{parsed.netloc}",
            path=path,
            login=login,
            password=password,
            login_param=login_param,
            password_param=password_param,
            extra_params=extra_params,
            max_request_bytes=max_request_bytes,
            max_batch=max_batch,
            default_subject=default_subject,
            quote_brackets=quote_brackets,
            status_tz=status_tz,
            policy=policy,
            subscribers=subscribers,
            account_stop_codes=account_stop_codes,
            final_statuses=final_statuses,
            retry_on_429=retry_on_429,
            retry_after_max=retry_after_max,
            rate_limit=None if max_rate is None else RateLimit(max_rate, self._rate_lock()),
            client_ids=client_ids,
            transliterate=transliterate,
        )
        deadline = 10 * float(timeout) if request_deadline is None else float(request_deadline)
        if not deadline > 0:
            raise ValueError(f"request_deadline must be positive, got {request_deadline!r}")
        self.request_deadline = deadline

        self.login = login
        self.max_request_bytes = max_request_bytes
        self.max_batch = max_batch
        self.concurrency = concurrency
        self.default_subject = default_subject
        self.status_tz = status_tz
        self.quote_brackets = quote_brackets
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_reply_bytes = max_reply_bytes
        self._timeout = float(timeout)
        self._connect_timeout = float(connect_timeout)
        self.user_agent = user_agent
        self._ssl_context: Optional[ssl.SSLContext] = None
        if self._scheme == "https":
            # One context for every connection: loading the CA file per connection
            # would cost milliseconds each time. urllib3's defaults (TLS 1.2 at
            # least, its cipher choice) for both clients.
            context = create_urllib3_context(
                cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
            )
            if verify:
                context.check_hostname = True
                if ca_certs is not None:
                    context.load_verify_locations(cafile=ca_certs)
                else:
                    context.load_default_certs()
            else:
                context.check_hostname = False
                warnings.warn(
                    f"hpgfast.{type(self).__name__}(verify=False): the platform's "
                    "certificate is not checked, so anyone on the path can read the password",
                    InsecureRequestWarning,
                    stacklevel=2,
                )
            self._ssl_context = context
        if _HEADER_UNSAFE.search(self.user_agent):
            raise ValueError("user_agent holds control characters")
        host = self._host
        default_port = 443 if self._scheme == "https" else 80
        host_header = host if self._port == default_port else f"{host}:{self._port}"
        #: What follows the target in every request: the request line's end and the
        #: headers, built once (both clients write a request with one call).
        self._tail = (
            f" HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {self.user_agent}\r\n"
            "Accept-Encoding: identity\r\n\r\n"
        ).encode("latin-1")
        self._open(ca_certs, verify)
        self._closed = False
        if self._core.redactor is not None:
            _redact.register(id(self), self._core.redactor)
            # A client dropped without close() must not stay registered.
            weakref.finalize(self, _redact.unregister, id(self))

    def _open(self, ca_certs: Optional[str], verify: bool) -> None:
        """Make the transport's connection machinery (the subclass's part)."""
        raise NotImplementedError


def settings_doc(intro: str) -> str:
    """A client's docstring: its own ``intro``, then the arguments and errors of
    ``ClientSettings`` (written once, so that ``help()`` on either client shows them)."""
    own = inspect.cleandoc(intro)
    shared = inspect.cleandoc(ClientSettings.__doc__ or "")  # None under python -OO
    start = shared.find("Args:")
    return own if start < 0 else f"{own}\n\n{shared[start:]}"
