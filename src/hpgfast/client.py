"""``hpgfast.Client``: batches of messages in, one truthful result per message out.

Strategy:

- **Thin per-request path.** urllib3's ``urlopen()`` re-parses and re-encodes the
  whole target in pure Python (milliseconds for an 8 KiB query). The client keeps
  urllib3's connection pool, TLS and timeouts, but takes a connection from the pool
  and calls ``HTTPConnection.request()`` / ``getresponse()`` itself with a target
  the codec built ready to send. ``retries=False`` everywhere: urllib3 never repeats
  anything on its own (its default ``Retry`` would repeat a GET after a read
  timeout, which for SEND is a second SMS).
- **Connect, then send.** A fresh connection is opened (and its TLS handshake done)
  before any byte of the request is written, so "connect failed" certainly means
  "nothing sent". That, and only that, is retried for SEND. STATUS is retried on
  any transient failure.
- **Plan, then send.** A whole batch is cut into requests and *validated* before the
  first request leaves, so bad input raises at once naming the message. The plan is
  a list of ``(start, end)`` bounds; the encoded queries of the first requests are
  kept (up to ``_PLAN_CACHE_BYTES``) and the rest are encoded again when their turn
  comes (encoding is deterministic, so the bounds hold). Memory stays bounded for
  any batch size while small batches are encoded once.
- **Per-message truth.** Transport failures never raise out of ``send()``: each
  message gets ``ok``/a platform code, ``not-sent`` or ``unknown``. Only
  configuration failures (credentials, TLS, sizes, bad input, 4xx) raise.
- **No password anywhere.** URLs shown in logs and errors are built redacted; foreign
  error texts go through a ``Redactor``; errors are raised outside ``except`` blocks
  so no urllib3 exception rides along as ``__context__``.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import tzinfo
from operator import itemgetter
from typing import Any, Callable, Optional, TypeVar, Union, cast

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    InsecureRequestWarning,
    NewConnectionError,
)
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import SSLError as _Urllib3SSLError
from urllib3.exceptions import TimeoutError as _Urllib3Timeout
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.wait import wait_for_read

from . import _redact, _wire
from ._records import Message, Params, SendResult, StatusResult
from ._wire import Code
from .codec import encode_params, encode_send, encode_status, parse_send, parse_status
from .exceptions import (
    AuthError,
    ConnectError,
    HPGError,
    HTTPStatusError,
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
    TLSError,
    TransportError,
)

__all__ = ["Client", "SendFailure", "StatusFailure"]

log = logging.getLogger(__name__)

#: Default reply cap per request: a SEND reply line is ~20-60 bytes, so 4 MiB holds
#: far more lines than the largest sensible request has messages.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
#: Encoded queries of a plan kept from the validation pass instead of encoded again.
_PLAN_CACHE_BYTES = 8 * 1024 * 1024
#: Text of a non-200 reply kept as the error's description.
_DESCRIPTION_CHARS = 2000
#: HTTP statuses after which a STATUS request is repeated (besides transport errors).
_TRANSIENT_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
#: HTTP statuses that say our request line is longer than the server takes.
_TOO_LARGE_STATUSES = frozenset((414, 431))

#: How long a fresh plain-HTTP connection is watched for an immediate close before
#: the request is written. A server that accepts and closes at once (overloaded, at
#: its connection limit) has then certainly read nothing, so the request can be
#: retried instead of being reported unknown. Paid once per new connection.
_FRESH_GRACE = 0.001

_GET = "GET"
_LINE_OVERHEAD = len("GET ") + len(" HTTP/1.1")
_OK = Code.OK
_NOT_SENT = Code.NOT_SENT
_UNKNOWN = Code.UNKNOWN
_ERROR_AUTH = Code.ERROR_AUTH
_REQUEST_LEVEL = Code.REQUEST_LEVEL

_R = TypeVar("_R")

#: How the warnings of a failed request name it, an unreadable outcome, and its items.
_LOG_LABELS = {
    _wire.SEND: ("SEND", "outcome unknown", "message(s)"),
    _wire.STATUS: ("STATUS", "failed", "id(s)"),
}


# -- connections ---------------------------------------------------------------------


class _HTTPConnection(HTTPConnection):
    """urllib3's connection without http.client's scan of every target.

    http.client searches each target for control characters (CVE-2019-9740) with a
    regular expression: about 4 ms per MiB, the largest CPU cost of a large request;
    and its error would quote the whole URL, password included. Every target this
    client sends is the codec's output (unreserved bytes, ``%XX``, ``&=[]``) behind a
    prefix that ``Client.__init__`` checked once, so the scan cannot find anything.
    """

    def _validate_path(self, url: str) -> None:
        pass


class _HTTPSConnection(HTTPSConnection):
    """``_HTTPConnection``'s shortcut for HTTPS."""

    def _validate_path(self, url: str) -> None:
        pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


#: What http.client would refuse in a target (its _contains_disallowed_url_pchar_re).
_UNSAFE_TARGET = re.compile("[\x00-\x20\x7f-\U0010ffff]")


# -- result records for messages the platform did not answer for ---------------------


class SendFailure(SendResult):
    """A ``SendResult`` hpgfast made up because no reply line said what happened.

    ``code`` is ``"not-sent"``, ``"unknown"``, or the code of a whole-request
    rejection (``"error-syntax"``...); ``error`` is the exception behind it (a
    ``TransportError``, ``HTTPStatusError``, ``ProtocolError``, ``RequestRejected``),
    with the HTTP status and the platform's description where there were any. It
    compares equal to a ``SendResult`` with the same fields.
    """

    # No __slots__: the instance dict holds ``error``; only failures pay for it.
    error: Optional[HPGError]

    def __new__(
        cls,
        code: str,
        client_id: Optional[str] = None,
        provider_id: Optional[str] = None,
        error: Optional[HPGError] = None,
    ) -> SendFailure:
        self = tuple.__new__(cls, (code, client_id, provider_id))
        self.error = error
        return self

    def __repr__(self) -> str:
        return (
            f"SendFailure(code={self[0]!r}, client_id={self[1]!r}, provider_id={self[2]!r}, "
            f"error={self.error!r})"
        )


class StatusFailure(StatusResult):
    """A ``StatusResult`` hpgfast made up because no reply line answered for the id.

    ``code`` is ``"not-sent"``, ``"unknown"`` or a whole-request rejection code;
    ``error`` is the exception behind it. Compares equal to a ``StatusResult``.
    """

    error: Optional[HPGError]

    def __new__(
        cls,
        code: str,
        provider_id: Optional[str] = None,
        status: Optional[str] = None,
        time: Any = None,
        reason: Optional[str] = None,
        error: Optional[HPGError] = None,
    ) -> StatusFailure:
        self = tuple.__new__(cls, (code, provider_id, status, time, reason))
        self.error = error
        return self

    def __repr__(self) -> str:
        return f"StatusFailure(code={self[0]!r}, provider_id={self[1]!r}, error={self.error!r})"


# -- one batch in flight ---------------------------------------------------------------


class _Batch:
    """What the requests of one ``send()``/``status()`` call share."""

    __slots__ = ("down", "encode", "fatal", "head", "max_bytes", "results", "shown")

    def __init__(self, head: str, shown: str, max_bytes: int, size: int) -> None:
        self.head = head  # the target up to the messages: holds the password
        self.shown = shown  # the same, redacted, for logs and errors
        self.max_bytes = max_bytes
        #: ``encode(start, max_count) -> (query, end)`` over the batch's items; set by
        #: the plan, used again for requests whose query was not kept.
        self.encode: Callable[[int, Optional[int]], tuple[bytes, int]]
        self.results: list[Any] = [None] * size
        #: Set when a request could not connect even after its retries: the platform
        #: is taken to be down and the remaining requests are not attempted.
        self.down: Optional[ConnectError] = None
        #: A configuration failure (or a bug) that stops the batch and is raised.
        self.fatal: Optional[BaseException] = None


def _fatal_outcome(exc: BaseException) -> tuple[str, Optional[HPGError]]:
    """The code for the messages of a request that ended in a raised failure."""
    if isinstance(exc, AuthError):
        return exc.code, exc
    if isinstance(exc, (TLSError, RequestTooLarge)):
        # Failed in the handshake, or refused before processing: nothing was taken.
        return _NOT_SENT, exc
    # Any other 4xx, or a bug after the reply came: the platform may have the request.
    return _UNKNOWN, exc if isinstance(exc, HPGError) else None


_client_id = itemgetter(3)
_line_id = itemgetter(1)  # clientId of a SEND line, providerId of a STATUS line
_INDEXES: list[str] = []  # str(i), made once: a request rarely holds more than a few 1000
# Growth under a lock: two threads extending at once (a generator lets the GIL go
# between items) would interleave their runs and leave _INDEXES[k] != str(k).
_INDEXES_LOCK = threading.Lock()


def _effective_ids(messages: Sequence[Any], start: int, end: int) -> list[str]:
    """The clientId the platform answers with for each message of a request."""
    count = end - start
    if len(_INDEXES) < count:
        with _INDEXES_LOCK:
            _INDEXES.extend([str(i) for i in range(len(_INDEXES), count)])
    try:
        ids = list(map(_client_id, messages[start:end]))
    except IndexError:  # plain tuples of 2 or 3 fields: no client ids at all
        ids = [m[3] if len(m) > 3 else None for m in messages[start:end]]
    if None in ids:
        ids = [_INDEXES[k] if cid is None else cid for k, cid in enumerate(ids)]
    return ids


class Client:
    """A client of one HPG connector: ``send()`` messages, ask their ``status()``.

    Thread-safe; use it as a context manager or call ``close()``.

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

    Raises:
        ValueError: a setting out of range or a URL that is not HTTP(S).
        MessageError: a login, password or extra parameter that cannot be encoded.
    """

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
        max_request_bytes: int = 8192,
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
    ) -> None:
        # The redactor first: from here on, no error may show the password.
        if not isinstance(password, str):
            raise TypeError(f"password must be a str, got {type(password).__name__}")
        self._redact = (
            _redact.Redactor(password, password_param=password_param) if password else None
        )
        self._closed = True  # until the pool exists, close() has nothing to do
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch!r}")
        if retries < 0 or backoff < 0 or backoff_max < 0:
            raise ValueError("retries, backoff and backoff_max must not be negative")
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
        self._scheme = parsed.scheme
        self._host = parsed.host
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.url = f"{self._scheme}://{parsed.netloc}{path}"

        login_q = encode_params([(login_param, login)]).decode("ascii")
        secret_q = encode_params([(login_param, login), (password_param, password)])
        shown_q = (
            login_q + "&" + encode_params([(password_param, "")]).decode("ascii") + _redact.MASK
        )
        extra_q = encode_params(extra_params).decode("ascii") if extra_params else ""
        tail = "&" + extra_q if extra_q else ""
        origin = f"{self._scheme}://{parsed.netloc}"
        # The target prefixes hold the password: kept in Secrets so that no repr of
        # the client (nor one built from vars()) shows them.
        self._heads = {
            op: _redact.Secret(f"{path}{op}?{secret_q.decode('ascii')}{tail}&")
            for op in (_wire.SEND, _wire.STATUS)
        }
        # What logs and errors show instead: "...&password=***&..." (no message data).
        self._shown = {op: f"{origin}{path}{op}?{shown_q}{tail}" for op in self._heads}
        if _UNSAFE_TARGET.search(path):
            raise ValueError("url: the path holds spaces, control or non-ASCII characters")
        if max_request_bytes < _LINE_OVERHEAD + len(self._heads[_wire.SEND].value) + 1:
            raise ValueError(
                f"max_request_bytes={max_request_bytes} leaves no room for messages after "
                "the URL and credentials"
            )

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
        self._headers = {"User-Agent": user_agent}
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_lock = threading.Lock()

        pool_timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self._pool: urllib3.HTTPConnectionPool
        if self._scheme == "https":
            # One context for every connection: loading the CA file per connection
            # would cost milliseconds each time.
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
                    "hpgfast.Client(verify=False): the platform's certificate is not "
                    "checked, so anyone on the path can read the password",
                    InsecureRequestWarning,
                    stacklevel=2,
                )
            self._pool = _HTTPSPool(
                self._host,
                self._port,
                maxsize=concurrency,
                block=True,
                retries=False,
                timeout=pool_timeout,
                cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                assert_hostname=None if verify else False,
                ssl_context=context,
            )
        else:
            self._pool = _HTTPPool(
                self._host,
                self._port,
                maxsize=concurrency,
                block=True,
                retries=False,
                timeout=pool_timeout,
            )
        self._closed = False
        if self._redact is not None:
            _redact.register(id(self), self._redact)
            # A client dropped without close() must not stay registered.
            weakref.finalize(self, _redact.unregister, id(self))
        _redact.install_log_filter()

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection and stop the worker threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._pool.close()
        _redact.unregister(id(self))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return (
            f"<hpgfast.Client{state} {self.url!r} login={self.login!r} "
            f"concurrency={self.concurrency}>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Client cannot be pickled (it holds connections and a password)")

    # -- public operations -------------------------------------------------------------

    def send(
        self,
        messages: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        params: Optional[Params] = None,
    ) -> list[SendResult]:
        """Send a batch of messages of any size; one result per message, in order.

        The batch is checked and cut into requests (by ``max_request_bytes`` and
        ``max_batch``) before anything is sent. Replies are matched to messages by
        ``clientId``. A message's result is one of:

        - ``code == "ok"`` with a ``provider_id``: accepted;
        - a platform code (``error-address-format``...): rejected;
        - ``"not-sent"``: the request never left; safe to send again;
        - ``"unknown"``: the request may have reached the platform (a timeout, a cut
          reply, a missing reply line, HTTP 500...); sending again may deliver a
          second SMS.

        Results hpgfast made up (no reply line for them) are ``SendFailure``
        records whose ``error`` holds the cause. ``client_id`` of every result is
        the id the platform answers with: the message's own, or its index within
        its request. A SEND is never repeated once a byte of it may have left; a
        failure to connect is retried (``retries``, ``backoff``), and when even that
        fails the platform is taken to be down: the rest of the batch is reported
        ``not-sent`` without being tried.

        Args:
            messages: ``Message`` records or tuples ``(address, text[, subject[,
                client_id[, params]]])``.
            params: request-level parameters for this call's requests, after the
                client's ``extra_params``.

        Returns:
            A list of ``SendResult``, one per message, in input order.

        Raises:
            MessageError: a message that cannot be sent as given (``index`` and
                ``field`` say which and why), or one too large for any request
                (``MessageTooLarge``). Raised before anything is sent.
            AuthError: the platform refused the credentials.
            TLSError: the platform's certificate could not be verified.
            RequestTooLarge: the server refused the request line as too long
                (``max_request_bytes`` is above its limit).
            HTTPStatusError: any other 4xx reply: a misconfigured URL, say.

            An exception raised after some requests were sent carries ``results``:
            the list of every message's result so far (``not-sent`` for the ones
            never tried).
        """
        msgs: Sequence[Any] = messages if isinstance(messages, Sequence) else list(messages)
        return self._batch(_wire.SEND, msgs, params, self._plan_send, self._send_chunk)

    def status(
        self, provider_ids: Iterable[str], *, params: Optional[Params] = None
    ) -> list[StatusResult]:
        """Ask the delivery status of messages, by provider id; one result per id, in order.

        Split into requests like ``send()``. Replies are matched by provider id; an
        id given twice gets the same answer. A STATUS request is repeated after any
        transient failure (connect, timeout, reset, cut or garbled reply, HTTP 5xx,
        408, 429) up to ``retries`` times; ids still unanswered then get
        ``StatusFailure`` results with code ``"unknown"`` (or ``"not-sent"`` if no
        connection could be made), with the cause in ``error``.

        Args:
            provider_ids: the ``provider_id`` values ``send()`` returned.
            params: request-level parameters for this call's requests.

        Returns:
            A list of ``StatusResult``, one per id, in input order.

        Raises:
            MessageError: an id that cannot be sent (raised before anything is sent).
            AuthError, TLSError, RequestTooLarge, HTTPStatusError: as for ``send()``.
        """
        ids: Sequence[Any] = (
            provider_ids if isinstance(provider_ids, Sequence) else list(provider_ids)
        )
        if isinstance(ids, str):
            raise TypeError("provider_ids must be a sequence of str, not one str")
        return self._batch(_wire.STATUS, ids, params, self._plan_status, self._status_chunk)

    # -- batches -------------------------------------------------------------------------

    def _batch(
        self,
        op: str,
        items: Sequence[Any],
        params: Optional[Params],
        plan: Callable[[Sequence[Any], _Batch], list[list[Any]]],
        run_chunk: Callable[[Sequence[Any], _Batch, list[Any]], None],
    ) -> list[Any]:
        if self._closed:
            raise RuntimeError("this hpgfast.Client is closed")
        head = self._heads[op].value
        shown = self._shown[op]
        if params:
            extra = encode_params(params).decode("ascii")
            head += extra + "&"
            shown += "&" + extra
        shown += "&..."
        max_bytes = self.max_request_bytes - _LINE_OVERHEAD - len(head)
        if max_bytes < 1:
            raise ValueError(
                f"max_request_bytes={self.max_request_bytes} leaves no room for messages "
                "after the URL, credentials and parameters"
            )
        batch = _Batch(head, shown, max_bytes, len(items))
        if not items:
            return []
        chunks = plan(items, batch)  # raises on bad input, before anything is sent

        def run(chunk: list[Any]) -> None:
            try:
                if batch.fatal is not None or batch.down is not None:
                    self._fill(op, items, batch, chunk, _NOT_SENT, batch.down)
                else:
                    run_chunk(items, batch, chunk)
            except BaseException as exc:  # a configuration failure, or a bug
                if batch.fatal is None:
                    batch.fatal = exc
                if batch.results[chunk[0]] is None:
                    self._fill(op, items, batch, chunk, *_fatal_outcome(exc))

        if self.concurrency == 1 or len(chunks) == 1:
            for chunk in chunks:
                run(chunk)
        else:
            executor = self._get_executor()
            # A bounded window of queued requests keeps memory flat for any batch.
            window = 2 * self.concurrency
            inflight: deque[Future[None]] = deque()
            for chunk in chunks:
                inflight.append(executor.submit(run, chunk))
                if len(inflight) >= window:
                    inflight.popleft().result()
            while inflight:
                inflight.popleft().result()

        fatal = batch.fatal
        if fatal is not None:
            # Whatever was sent before the failure is not lost: the error carries it.
            fatal.results = batch.results  # type: ignore[attr-defined]
            raise fatal
        return batch.results

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise RuntimeError("this hpgfast.Client is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="hpgfast"
                )
            return self._executor

    def _plan(
        self, encode: Callable[[int, Optional[int]], tuple[bytes, int]], total: int
    ) -> list[list[Any]]:
        """Cut a batch into requests ``[start, end, query or None]``, checking every item.

        Runs the encoder over the whole batch before anything is sent, so that bad
        input raises at once; keeps the first queries (up to ``_PLAN_CACHE_BYTES``)
        and lets the rest be encoded again, by bounds, when sent.
        """
        chunks: list[list[Any]] = []
        kept = 0
        start = 0
        max_batch = self.max_batch
        while start < total:
            query, end = encode(start, max_batch)
            if kept + len(query) <= _PLAN_CACHE_BYTES:
                kept += len(query)
                chunks.append([start, end, query])
            else:
                chunks.append([start, end, None])
            start = end
        return chunks

    def _plan_send(self, messages: Sequence[Any], batch: _Batch) -> list[list[Any]]:
        max_bytes = batch.max_bytes

        def encode(start: int, count: Optional[int]) -> tuple[bytes, int]:
            return encode_send(
                messages,
                start=start,
                max_bytes=max_bytes,
                max_count=count,
                default_subject=self.default_subject,
                quote_brackets=self.quote_brackets,
            )

        batch.encode = encode
        return self._plan(encode, len(messages))

    def _plan_status(self, ids: Sequence[Any], batch: _Batch) -> list[list[Any]]:
        max_bytes = batch.max_bytes

        def encode(start: int, count: Optional[int]) -> tuple[bytes, int]:
            return encode_status(
                ids,
                start=start,
                max_bytes=max_bytes,
                max_count=count,
                quote_brackets=self.quote_brackets,
            )

        batch.encode = encode
        return self._plan(encode, len(ids))

    def _query(self, batch: _Batch, chunk: list[Any]) -> str:
        start, end, query = chunk
        if query is None:
            query, nxt = batch.encode(start, end - start)
            if nxt != end:
                raise RuntimeError("the batch changed while it was being sent")
        else:
            chunk[2] = None  # sent once: let it go
        result: str = query.decode("ascii")
        return result

    def _fill(
        self,
        op: str,
        items: Sequence[Any],
        batch: _Batch,
        chunk: list[Any],
        code: str,
        error: Optional[HPGError],
    ) -> None:
        start, end = chunk[0], chunk[1]
        results = batch.results
        if op == _wire.SEND:
            for i, cid in zip(range(start, end), _effective_ids(items, start, end)):
                results[i] = SendFailure(code, cid, None, error)
        else:
            for i in range(start, end):
                results[i] = StatusFailure(code, items[i], error=error)

    # -- SEND ----------------------------------------------------------------------------

    def _send_chunk(self, messages: Sequence[Any], batch: _Batch, chunk: list[Any]) -> None:
        parsed = self._chunk_request(_wire.SEND, messages, batch, chunk, parse_send)
        if parsed is not None:
            self._match_send(messages, batch, chunk, parsed)

    def _match_send(
        self, messages: Sequence[Any], batch: _Batch, chunk: list[Any], parsed: list[SendResult]
    ) -> None:
        start, end = chunk[0], chunk[1]
        count = end - start
        results = batch.results
        ids = _effective_ids(messages, start, end)
        # The usual case: one line per message, in request order.
        if len(parsed) == count and list(map(_line_id, parsed)) == ids:
            results[start:end] = parsed
            return
        if len(parsed) == 1:
            line = parsed[0]
            if line[1] is None and line[2] is None and line[0] in _REQUEST_LEVEL:
                self._rejected(_wire.SEND, messages, batch, chunk, line[0])
                return
        if parsed and all(r[0] == _ERROR_AUTH for r in parsed):
            self._rejected(_wire.SEND, messages, batch, chunk, _ERROR_AUTH)
            return
        position = {cid: k for k, cid in enumerate(ids)}
        out: list[Optional[SendResult]] = [None] * count
        stray = 0
        for line in parsed:
            pos = position.get(line[1])
            if pos is None or out[pos] is not None:
                stray += 1
            else:
                out[pos] = line
        missing = out.count(None)
        if stray:
            log.warning(
                "SEND reply (%s): %d line(s) match no message of the request, or repeat one;"
                " ignored",
                batch.shown,
                stray,
            )
        if missing:
            error = ProtocolError(None, "the reply has no line for this message")
            log.warning(
                "SEND reply (%s): no line for %d of %d message(s); their outcome is unknown",
                batch.shown,
                missing,
                count,
            )
            for k in range(count):
                if out[k] is None:
                    out[k] = SendFailure(_UNKNOWN, ids[k], None, error)
        results[start:end] = out

    # -- STATUS --------------------------------------------------------------------------

    def _status_chunk(self, ids: Sequence[Any], batch: _Batch, chunk: list[Any]) -> None:
        tz = self.status_tz
        parsed = self._chunk_request(
            _wire.STATUS, ids, batch, chunk, lambda body: parse_status(body, tz=tz)
        )
        if parsed is not None:
            self._match_status(ids, batch, chunk, parsed)

    def _match_status(
        self, ids: Sequence[Any], batch: _Batch, chunk: list[Any], parsed: list[StatusResult]
    ) -> None:
        start, end = chunk[0], chunk[1]
        results = batch.results
        if len(parsed) == end - start and list(map(_line_id, parsed)) == list(ids[start:end]):
            results[start:end] = parsed
            return
        if len(parsed) == 1:
            line = parsed[0]
            if line[1] is None and line[0] in _REQUEST_LEVEL:
                self._rejected(_wire.STATUS, ids, batch, chunk, line[0])
                return
        wanted = set(ids[start:end])
        by_id: dict[str, StatusResult] = {}
        stray = 0
        for line in parsed:
            pid = line[1]
            if pid is not None and pid in wanted and pid not in by_id:
                by_id[pid] = line
            else:
                stray += 1
        if stray:
            log.warning(
                "STATUS reply (%s): %d line(s) match no id asked for, or repeat one; ignored",
                batch.shown,
                stray,
            )
        error: Optional[ProtocolError] = None
        for i in range(start, end):
            found = by_id.get(ids[i])
            if found is None:
                if error is None:
                    error = ProtocolError(None, "the reply has no line for this id")
                found = StatusFailure(_UNKNOWN, ids[i], error=error)
            results[i] = found
        if error is not None:
            log.warning("STATUS reply (%s): some ids got no line", batch.shown)

    # -- shared by both --------------------------------------------------------------------

    def _chunk_request(
        self,
        op: str,
        items: Sequence[Any],
        batch: _Batch,
        chunk: list[Any],
        parse: Callable[[bytes], list[_R]],
    ) -> Optional[list[_R]]:
        """One request: its parsed reply lines, or ``None`` when its items got failures.

        Configuration failures raise. Only STATUS is idempotent: a SEND whose reply
        cannot be read (or parsed) is reported unknown, never repeated.
        """
        query = self._query(batch, chunk)
        count = chunk[1] - chunk[0]
        label, failed, noun = _LOG_LABELS[op]
        try:
            status, parsed = self._request(
                batch.head + query,
                batch.shown,
                idempotent=op == _wire.STATUS,
                parse=parse,
            )
        except ConnectError as err:
            batch.down = err
            log.warning("%s not sent, %d %s: %s", label, count, noun, err)
            self._fill(op, items, batch, chunk, _NOT_SENT, err)
            return None
        except TLSError:
            raise
        except (TransportError, ProtocolError) as err:
            log.warning("%s %s, %d %s: %s", label, failed, count, noun, err)
            self._fill(op, items, batch, chunk, _UNKNOWN, err)
            return None
        if status != 200:
            self._http_failure(op, items, batch, chunk, status, parsed)
            return None
        result: list[_R] = parsed
        return result

    def _rejected(
        self, op: str, items: Sequence[Any], batch: _Batch, chunk: list[Any], code: str
    ) -> None:
        """The platform refused a whole request with a single code line."""
        if code == _ERROR_AUTH:
            raise AuthError(code, batch.shown)
        error = RequestRejected(code, batch.shown)
        log.warning("%s", error)
        self._fill(op, items, batch, chunk, code, error)

    def _http_failure(
        self,
        op: str,
        items: Sequence[Any],
        batch: _Batch,
        chunk: list[Any],
        status: int,
        body: bytes,
    ) -> None:
        # Redacted before it is cut: a cut through the password would leave a prefix
        # of it that no longer matches the Redactor. The body is capped at
        # max_reply_bytes and this path is rare, so the whole of it is scrubbed.
        description = self._scrub(body.decode("utf-8", "replace")).strip()
        description = description[:_DESCRIPTION_CHARS]
        if status in _TOO_LARGE_STATUSES:
            # The server's limit is below ours; nothing of this request was processed.
            raise RequestTooLarge(status, description, batch.shown)
        error = HTTPStatusError(status, description, batch.shown)
        if 400 <= status < 500 and status not in _TRANSIENT_STATUSES:
            # 401, 403, 404...: a wrong URL or a gateway refusing us; configuration.
            raise error
        # HTTP 500 says processing failed, but the platform may have taken some of
        # the messages before failing: conservatively unknown, never resent.
        log.warning("%s: %d item(s) with outcome unknown", error, chunk[1] - chunk[0])
        self._fill(op, items, batch, chunk, _UNKNOWN, error)

    # -- one exchange ----------------------------------------------------------------------

    def _request(
        self,
        target: str,
        shown: str,
        *,
        idempotent: bool,
        parse: Callable[[bytes], _R],
    ) -> tuple[int, Any]:
        """One request, repeated as the rules allow; ``(200, parsed)`` or ``(status, body)``.

        Repeats after ``ConnectError`` always (nothing was sent); after any other
        transient failure only when ``idempotent``. Raises the last failure.
        """
        attempt = 0
        while True:
            error: HPGError
            try:
                status, body = self._exchange(target, shown)
                if status != 200:
                    if idempotent and status in _TRANSIENT_STATUSES and attempt < self.retries:
                        error = HTTPStatusError(status, "", shown)
                    else:
                        return status, body
                else:
                    try:
                        return status, parse(body)
                    except ProtocolError as exc:
                        # The parser quotes a piece of the reply, which may echo
                        # the password.
                        _redact.scrub_exception(exc, self._scrub)
                        raise
            except TLSError:
                raise
            except ConnectError as exc:
                error = exc
            except (TransportError, ProtocolError) as exc:
                if not idempotent:
                    raise
                error = exc
            if attempt >= self.retries:
                raise error
            delay = min(self.backoff_max, self.backoff * (2**attempt))
            attempt += 1
            log.info("retrying (%d of %d) in %.2f s after: %s", attempt, self.retries, delay, error)
            time.sleep(delay)

    def _scrub(self, text: str) -> str:
        return text if self._redact is None else self._redact(text)

    def _exchange(self, target: str, shown: str) -> tuple[int, bytes]:
        """One GET on a pooled connection: ``(status, body)``, or an hpgfast error.

        ``ConnectError`` means nothing was sent. ``TransportError`` (``sent=True``) and
        ``ProtocolError`` mean the request may have been processed.
        """
        pool = self._pool
        try:
            # _get_conn/_put_conn are urllib3's own pooling (LIFO queue, dropped-
            # connection check, maxsize with block=True); urlopen() around them would
            # re-encode the whole target. tests/test_client.py pins them.
            conn = cast(HTTPConnection, pool._get_conn())
        except ClosedPoolError:
            raise RuntimeError("this hpgfast.Client is closed") from None
        started = time.perf_counter()
        failure: Optional[HPGError] = None
        resp = None
        body = b""
        status = 0
        phase = "connect"
        try:
            if conn.is_closed:
                conn.timeout = self._connect_timeout
                conn.connect()
                # A server that closed the connection on accept has read nothing:
                # if that shows within _FRESH_GRACE, it is a connect failure. Only for
                # plain HTTP: TLS 1.3 sends tickets after the handshake, which would
                # look the same (and there the handshake itself proves the accept).
                if self._scheme == "http" and conn.sock is not None:
                    if wait_for_read(conn.sock, timeout=_FRESH_GRACE):
                        raise ConnectionResetError("connection closed by the server on connect")
            phase = "send"
            conn.timeout = self._timeout
            conn.request(_GET, target, headers=self._headers, preload_content=False,
                         decode_content=False)  # fmt: skip
            phase = "reply"
            resp = conn.getresponse()
            status = resp.status
            cap = self.max_reply_bytes
            length = resp.length_remaining
            if length is not None and length > cap:
                failure = ProtocolError(
                    None, f"the reply announces {length} bytes, over max_reply_bytes={cap}"
                )
            else:
                body = resp.read(cap + 1)
                if len(body) > cap:
                    failure = ProtocolError(None, f"the reply is over max_reply_bytes={cap}")
                elif not resp.isclosed():
                    # http.client returns a short read at EOF instead of raising
                    # IncompleteRead: the connection broke inside the body.
                    failure = TransportError(
                        f"connection broken: the reply was cut after {len(body)} bytes of "
                        f"{length if length is not None else 'more'}",
                        url=shown,
                        sent=True,
                    )
        except (OSError, _Urllib3Error, http.client.HTTPException) as exc:
            failure = self._wrap(exc, phase, shown)
        except BaseException:
            conn.close()
            pool._put_conn(conn)
            raise
        if failure is not None:
            if resp is not None:
                resp.close()
            conn.close()
        pool._put_conn(conn)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "GET %s (%d bytes): %s, %d bytes in %.2f ms",
                shown,
                len(target) + _LINE_OVERHEAD,
                f"HTTP {status}" if failure is None else failure,
                len(body),
                (time.perf_counter() - started) * 1000.0,
            )
        if failure is not None:
            raise failure
        return status, body

    def _wrap(self, exc: BaseException, phase: str, shown: str) -> HPGError:
        """An hpgfast error for a urllib3/OS error, with a redacted text."""
        text = self._scrub(f"{type(exc).__name__}: {exc}")
        if phase == "connect":
            if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                return ConnectError(f"TLS handshake cut: {text}", url=shown, sent=False)
            if isinstance(exc, (ssl.SSLError, ssl.CertificateError, _Urllib3SSLError)):
                return TLSError(f"TLS failed: {text}", url=shown, sent=False)
            if isinstance(exc, (ConnectTimeoutError, socket.timeout)) and not isinstance(
                exc, NewConnectionError
            ):
                return ConnectError(f"connect timed out: {text}", url=shown, sent=False)
            return ConnectError(f"could not connect: {text}", url=shown, sent=False)
        if isinstance(exc, (socket.timeout, TimeoutError, _Urllib3Timeout)):
            return TransportError(
                f"no reply within timeout={self._timeout}s: {text}", url=shown, sent=True
            )
        return TransportError(f"connection broken: {text}", url=shown, sent=True)
