"""hpgfast's exceptions: one tree with a single root, ``HPGError``.

Local errors (bad input from our caller: ``MessageError``) are told apart from remote
ones (a bad reply from the platform: ``ProtocolError``; a failed exchange:
``TransportError`` and its kin). Concrete errors also subclass the builtin they
resemble, so ``except ValueError`` keeps working. Every exception carries its
context as attributes and pickles with it (``.results`` too, which the client
attaches to an error raised mid-batch). None of them ever holds a password: the
client passes only redacted URLs in.
"""

from __future__ import annotations

import builtins
import sys
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from .core import CompactResults

__all__ = [
    "AccountError",
    "AuthError",
    "ConnectError",
    "HPGError",
    "HTTPStatusError",
    "MessageError",
    "MessageTooLarge",
    "MessageTypeError",
    "PlatformUnavailable",
    "ProtocolError",
    "ProxyError",
    "RequestRejected",
    "RequestTooLarge",
    "TLSError",
    "TransportError",
    "UnexpectedReply",
    "results_of",
]


class HPGError(Exception):
    """Root of every error hpgfast raises on purpose."""


class MessageError(HPGError, ValueError):
    """A message (or provider id, or parameter) that cannot be sent as given.

    ``index`` is its position in the caller's sequence (``None`` for a request-level
    parameter), ``field`` the field at fault, ``reason`` what is wrong with it.
    """

    def __init__(self, index: Optional[int], field: str, reason: str) -> None:
        super().__init__(index, field, reason)
        self.index = index
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        where = "request parameter" if self.index is None else f"message {self.index}"
        return f"{where}: field {self.field!r}: {self.reason}"


class MessageTypeError(MessageError, TypeError):
    """A field of the wrong type (for example ``bytes`` or ``int`` where ``str`` goes)."""


class MessageTooLarge(MessageError):
    """A message that does not fit into a request on its own, even alone."""


class ProtocolError(HPGError, ValueError):
    """A reply hpgfast cannot read: not UTF-8, a garbled line, an impossible date.

    ``line`` is the 1-based number of the offending line (``None`` when the fault is
    not one line's, for example a reply over the size cap).
    """

    def __init__(self, line: Optional[int], reason: str) -> None:
        super().__init__(line, reason)
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        if self.line is None:
            return f"unreadable reply: {self.reason}"
        return f"unreadable reply, line {self.line}: {self.reason}"


class TransportError(HPGError, OSError):
    """An exchange with the platform failed below HTTP (connect, read, timeout).

    ``url`` is the redacted URL, ``reason`` the underlying error (never with a
    password in it), ``sent`` whether any byte of the request may have left.
    """

    def __init__(self, message: str, *, url: Optional[str] = None, sent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.sent = sent

    def __str__(self) -> str:
        return self.message if self.url is None else f"{self.message} ({self.url})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # OSError's own reduce would call cls(message) and lose url and sent; the
        # instance dict (third item) brings back whatever the client attached too
        # (``.results``).
        return (
            _rebuild_transport,
            (type(self), self.message, self.url, self.sent),
            dict(self.__dict__),
        )


def _rebuild_transport(
    cls: type[TransportError], message: str, url: Optional[str], sent: bool
) -> TransportError:
    return cls(message, url=url, sent=sent)


class ConnectError(TransportError):
    """The connection could not be opened: no byte of the request left."""


class ProxyError(ConnectError):
    """The proxy refused to carry the request (HTTP 407, a refused ``CONNECT``).

    Nothing reached the platform. A configuration error: the proxy, its
    credentials or ``NO_PROXY`` are wrong. ``status`` is the proxy's HTTP status,
    ``url`` the redacted URL of the platform, ``proxy`` the proxy's, redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        url: Optional[str] = None,
        sent: bool = False,
        status: Optional[int] = None,
        proxy: Optional[str] = None,
    ) -> None:
        super().__init__(message, url=url, sent=sent)
        self.status = status
        self.proxy = proxy


class TLSError(TransportError):
    """TLS failed: the platform's certificate could not be verified, for example."""


class HTTPStatusError(HPGError):
    """The platform answered with an HTTP status other than 200 (or, ``UnexpectedReply``,
    with a reply that is not HPG at all).

    ``status`` is the HTTP status, ``description`` the platform's text (HPG answers
    500 "with a description of the error"), ``url`` the redacted URL.
    """

    def __init__(self, status: int, description: str, url: Optional[str] = None) -> None:
        super().__init__(status, description, url)
        self.status = status
        self.description = description
        self.url = url

    def __str__(self) -> str:
        text = f"HTTP {self.status} from the platform"
        if self.description:
            text += f": {self.description}"
        return text if self.url is None else f"{text} ({self.url})"


class RequestTooLarge(HTTPStatusError, ValueError):
    """The server refused a request line as too long (HTTP 414 or 431).

    A configuration error: ``max_request_bytes`` is above the server's limit. Nothing
    of that request was processed.
    """


class UnexpectedReply(HTTPStatusError, ValueError):
    """The URL answered, but not as an HPG platform: the batch stopped at that reply.

    A redirect (3xx, never followed: the password would travel with it), a 200
    whose body holds no HPG line (a captive portal's or a proxy's login page, plain
    text, an empty body), or another status no HPG platform answers with. A
    configuration error, like a 404: the URL is not the platform's, or something
    in front of it wants attention. ``status`` is the HTTP status,
    ``content_type`` the ``Content-Type`` and ``location`` the redirect's target
    (``None`` when absent), ``body`` the first characters of the body; each
    redacted and cut short. ``results`` (set by the client): that request's
    messages ``unknown``, those never sent ``not-sent``.
    """

    def __init__(
        self,
        status: int,
        description: str,
        url: Optional[str] = None,
        *,
        content_type: Optional[str] = None,
        location: Optional[str] = None,
        body: str = "",
    ) -> None:
        super().__init__(status, description, url)
        self.content_type = content_type
        self.location = location
        self.body = body

    def __str__(self) -> str:
        text = f"not an HPG reply: HTTP {self.status}"
        if self.location is not None:
            text += f", a redirect to {self.location!r} (not followed)"
        if self.content_type is not None:
            text += f", Content-Type {self.content_type!r}"
        text += f", body {self.body!r}" if self.body else ", an empty body"
        if self.description:
            text += f": {self.description}"
        return text if self.url is None else f"{text} ({self.url})"


class PlatformUnavailable(HTTPStatusError):
    """The platform answered 5xx ``count`` times in a row: the batch stopped there.

    ``status`` and ``description`` are the last such reply's. The messages of those
    requests are ``unknown`` (a SEND answered 5xx is never sent again); those never
    sent are ``not-sent`` (``results``, set by the client): send them later.
    """

    def __init__(
        self, status: int, description: str, url: Optional[str] = None, count: int = 1
    ) -> None:
        HPGError.__init__(self, status, description, url, count)
        self.status = status
        self.description = description
        self.url = url
        self.count = count

    def __str__(self) -> str:
        text = f"HTTP {self.status} from the platform (5xx {self.count} times in a row)"
        if self.description:
            text += f": {self.description}"
        text += "; the platform is unavailable, nothing more was sent"
        return text if self.url is None else f"{text} ({self.url})"


class RequestRejected(HPGError):
    """The platform refused a whole request with a single code line (``error-syntax``...).

    ``code`` is the platform's code.
    """

    def __init__(self, code: str, url: Optional[str] = None) -> None:
        super().__init__(code, url)
        self.code = code
        self.url = url

    def __str__(self) -> str:
        text = f"the platform refused the request: {self.code}"
        return text if self.url is None else f"{text} ({self.url})"


class AccountError(RequestRejected):
    """The platform said the account cannot send (``error-insufficient-balance``...).

    Raised once the batch has stopped: no request started after the one that was
    answered so; ``code`` is the platform's code and ``results`` (set by the client)
    the outcome of every message, ``not-sent`` for those never tried.
    """


class AuthError(AccountError):
    """Wrong login or password (``error-auth``): a configuration error, raised at once."""


#: ``BaseExceptionGroup`` (Python 3.11+; ``asyncio.TaskGroup`` raises one), or None.
_GROUP: Optional[type[BaseException]] = getattr(builtins, "BaseExceptionGroup", None)


def _compact(results: Any) -> bool:
    # Without importing the core here (it imports this module): a CompactResults
    # exists only once its module is loaded.
    module = sys.modules.get("hpgfast.core._compact")
    return module is not None and isinstance(results, module.CompactResults)


def results_of(exc: BaseException) -> Optional[Union[list[Any], CompactResults]]:
    """The results of the ``send()`` or ``status()`` call that ``exc`` ended, or None.

    An exception raised once a batch began carries ``.results``, one result per
    item in order. The exception a caller catches may be another one, raised from
    it or while it was handled: ``asyncio.wait_for()``'s ``TimeoutError``, the
    ``KeyboardInterrupt`` that ``asyncio.run()`` raises for Ctrl-C (Python 3.11+),
    the new ``CancelledError`` an awaited task gives on Python 3.9 and 3.10. This
    gives the first ``.results`` found (a list, or the ``CompactResults`` of a
    ``send(..., compact=True)``), looking at ``exc``, then into an
    exception group's members, then down its ``__cause__``, then down its
    ``__context__``.

    Where asyncio links the exception caught to nothing (Ctrl-C under
    ``asyncio.run()`` on Python 3.9 and 3.10, a task cancelled while it waits in
    ``asyncio.wait_for()``), pass a list as ``send(..., results=...)``: it is
    filled however the call ends.

    Args:
        exc: the exception caught.

    Returns:
        The results list (or ``CompactResults``) itself, or None when no exception
        in the chain carries one.
    """
    seen: set[int] = set()
    todo: list[Optional[BaseException]] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        results = getattr(current, "results", None)
        if isinstance(results, list) or _compact(results):
            return results
        # Pushed in reverse: the members first, then the cause, then the context.
        todo.append(current.__context__)
        todo.append(current.__cause__)
        if _GROUP is not None and isinstance(current, _GROUP):
            todo.extend(reversed(getattr(current, "exceptions", ())))
    return None

