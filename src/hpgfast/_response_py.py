"""A sans-IO reader of one HTTP/1.1 response, on httptools' llhttp: the pure twin.

The reference the compiled reader (``_response_c``) is held to; ``_response``
selects which of the two the clients use.

Strategy: the framing of a reply (status line, headers, Content-Length, chunked
encoding, 1xx interim responses) is read by llhttp, the C parser Node.js and
uvicorn use, not by hand-written Python. This module only keeps what hpgfast
needs of it and decides what a hostile reply is, so that both transports (the
asyncio one, and the sync client's reads on urllib3's sockets) feed bytes and get
the same answer:

- ``feed(data)`` / ``eof()`` answer True once the response is complete or failed;
  then ``status``, ``body``, ``retry_after`` and ``keep_alive`` hold the reply, or
  ``failure(shown)`` gives the core's ``Failure`` for what went wrong.
- **Bounded.** The body is capped at ``max_body`` bytes (a larger one is an error
  and nothing more is kept); the status line and headers at ``MAX_HEAD`` bytes.
- **Split-invariant.** Every decision is made on the bytes themselves, never on
  how they were cut into reads: the fuzz test feeds the same bytes in every split.
- **Nothing stale.** Any byte after the response (a second response, garbage)
  makes ``keep_alive`` False: a connection that carries something unexplained is
  never used again.
- Errors map to the core's failure kinds: no reply, or a status line or headers
  that cannot be read, is ``SENT`` (the request may have been processed); a reply
  whose headers were read and whose body broke off is ``CUT``; a reply over the
  cap is ``SENT`` with a ``ProtocolError``, as in the sync client.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import httptools

from ._http_limits import MAX_HEAD, MAX_HEADERS, MAX_INTERIM, MAX_RAW_HEAD
from .core import CUT, SENT, Failure, Reply
from .exceptions import ProtocolError, TransportError

__all__ = ["ResponseReader"]

_HttpParserError = (httptools.HttpParserError, httptools.HttpParserUpgrade)
#: ``Reply(status, body, retry_after, ...)`` without a NamedTuple ``__new__``'s Python frame.
_new_reply = partial(tuple.__new__, Reply)


class _Stop(Exception):
    """Raised from a parser callback to stop parsing at once (the reader knows why)."""


class ResponseReader:
    """Reads one HTTP/1.1 response from bytes fed in any split.

    Args:
        max_body: the longest body kept; a longer one is an error.
    """

    __slots__ = (
        "_body",
        "_chunked",
        "_done",
        "_error",
        "_final",
        "_has_length",
        "_head",
        "_headers",
        "_interim",
        "_kind",
        "_name",
        "_parser",
        "_protocol_error",
        "_received",
        "_size",
        "content_encoding",
        "content_type",
        "extra",
        "keep_alive",
        "location",
        "max_body",
        "retry_after",
        "status",
    )

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        # Lines ended by a bare LF, as some embedded servers write them (curl and
        # http.client read them): only the line ends, no other leniency.
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._reset()

    def reuse(self) -> bool:
        """Ready the reader for the next response on the same connection.

        True when it may be reused: the last response was read whole, the
        connection stays open, and nothing followed the response. llhttp is then
        at the start of a message, as after a fresh start, and making a new parser
        (which looks up and binds each callback) is skipped. False: make a new one.
        """
        if not self._done or self._error is not None or not self.keep_alive or self.extra:
            return False
        self._reset()
        return True

    def _reset(self) -> None:
        # Everything of one response; the parser and max_body stay.
        self._body: list[bytes] = []
        self._size = 0
        self._head = 0  # status line and header bytes seen
        self._headers = 0
        self._interim = 0
        self._name = b""
        self._final = False  # the headers of the final (non-1xx) response were read
        self._has_length = False
        self._chunked = False
        self._done = False
        self._error: Optional[str] = None
        self._kind = SENT
        self._protocol_error = False
        self._received = 0
        #: The HTTP status of the response (0 until its status line is read).
        self.status = 0
        #: The ``Retry-After`` header, if any.
        self.retry_after: Optional[str] = None
        #: The ``Content-Type``, ``Content-Encoding`` and ``Location`` headers, if any.
        self.content_type: Optional[str] = None
        self.content_encoding: Optional[str] = None
        self.location: Optional[str] = None
        #: Whether the connection may carry another request after this response.
        self.keep_alive = False
        #: Bytes followed the response: the connection must not be reused.
        self.extra = False

    # -- the transport's side --------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the response is complete or failed."""
        return self._done

    @property
    def ok(self) -> bool:
        """True when a whole response was read (``status``, ``body`` are valid)."""
        return self._done and self._error is None

    @property
    def received(self) -> int:
        """Bytes fed so far."""
        return self._received

    @property
    def body(self) -> bytes:
        """The body read so far (all of it once ``ok``)."""
        body = self._body
        if len(body) > 1:
            body[:] = [b"".join(body)]
        return body[0] if body else b""

    def feed(self, data: bytes) -> bool:
        """Read ``data``; True once the response is complete or failed."""
        self._received += len(data)
        if self._error is not None:
            return True
        try:
            self._parser.feed_data(data)
        except _HttpParserError as exc:
            self._parser_error(exc)
        if not self._final and not self._done and self._received > MAX_RAW_HEAD:
            self._fail(SENT, f"no reply headers in the first {MAX_RAW_HEAD} bytes", True)
        return self._done

    def eof(self) -> bool:
        """The peer closed the connection: True (the response is complete or failed)."""
        if not self._done:
            if self._final and not self._has_length and not self._chunked:
                # A body delimited by the end of the connection (RFC 9112 6.3 item 8).
                self._complete()
            elif self._final:
                self._fail(CUT, f"the reply was cut after {self._size} bytes of its body")
            elif self._received:
                self._fail(SENT, "the connection closed inside the reply's headers")
            else:
                self._fail(SENT, "the connection closed without a reply")
        self.keep_alive = False
        return True

    def fail(self, kind: str, text: str) -> None:
        """Record a failure the transport saw (a timeout, a reset) if none is known."""
        if not self._done:
            self._fail(kind, text)
        self.keep_alive = False

    @property
    def error_text(self) -> Optional[str]:
        """What went wrong, or None."""
        return self._error

    def reply(self) -> Reply:
        """The core's ``Reply`` for a whole response (``ok``): ``Retry-After`` only
        matters, and is only passed on, when the status is not 200."""
        status = self.status
        return _new_reply(
            (
                status,
                self.body,
                None if status == 200 else self.retry_after,
                self.content_type,
                self.content_encoding,
                self.location,
            )
        )

    def failure(self, shown: str, scrub: Optional[Callable[[str], str]] = None) -> Failure:
        """The core's ``Failure`` for a failed read.

        ``shown`` is the redacted URL; ``scrub`` the client's redactor, for error
        texts that quote foreign bytes.
        """
        text = self._error or "no reply"
        if scrub is not None:
            text = scrub(text)
        if self._protocol_error:
            return Failure(self._kind, ProtocolError(None, text))
        return Failure(self._kind, TransportError(text, url=shown, sent=True))

    # -- internals -------------------------------------------------------------------

    def _fail(self, kind: str, text: str, protocol: bool = False) -> None:
        self._kind = kind
        self._error = text
        self._protocol_error = protocol
        self._done = True
        self.keep_alive = False
        self._body = []

    def _complete(self) -> None:
        self._done = True

    def _parser_error(self, exc: BaseException) -> None:
        if self._done:
            # Anything after the response: a stale or extra reply, or garbage.
            self.extra = True
            self.keep_alive = False
            return
        if isinstance(exc, httptools.HttpParserUpgrade):
            text = "the server switched protocols"
        else:
            text = f"the reply is not HTTP/1.1: {type(exc).__name__}: {exc}"
        self._fail(CUT if self._final else SENT, text, protocol=True)

    # -- llhttp's callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._done:
            self.extra = True
            self.keep_alive = False
            raise _Stop

    def on_status(self, status: bytes) -> None:
        self._head += len(status)
        if self._head > MAX_HEAD:
            self._fail(SENT, f"the reply's headers are over {MAX_HEAD} bytes", True)
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value)
        self._headers += 1
        if self._head > MAX_HEAD or self._headers > MAX_HEADERS:
            text = f"the reply's headers are over {MAX_HEAD} bytes or {MAX_HEADERS} lines"
            self._fail(SENT, text, True)
            raise _Stop
        # Only the names below matter, and each is 8 bytes or longer: shorter
        # names (Date, Vary, ETag...) are passed without lowering them.
        if len(name) < 8:
            return
        lowered = name.lower()
        if lowered == b"retry-after":
            self.retry_after = value.decode("latin-1").strip()
        elif lowered == b"content-type":
            self.content_type = value.decode("latin-1").strip()
        elif lowered == b"content-encoding":
            # Repeated lines are one list (RFC 9110 5.3): "gzip" twice is "gzip, gzip".
            coding = value.decode("latin-1").strip()
            if self.content_encoding is not None:
                coding = self.content_encoding + ", " + coding
            self.content_encoding = coding
        elif lowered == b"location":
            self.location = value.decode("latin-1").strip()
        elif lowered == b"content-length":
            self._has_length = True
            # Refuse a reply announced over the cap before reading any of it (a bad
            # number is llhttp's to refuse).
            length = value.strip()
            if length.isdigit() and int(length) > self.max_body:
                self._fail(
                    SENT,
                    f"the reply announces {int(length)} bytes, over max_reply_bytes="
                    f"{self.max_body}",
                    True,
                )
                raise _Stop
        elif lowered == b"transfer-encoding":
            # llhttp reads a response body as chunked only when chunked comes last;
            # any other coding is read to the end of the connection.
            self._chunked = value.rstrip().lower().endswith(b"chunked")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self.status = status
        if 100 <= status < 200:
            return  # an interim response: its "message" ends here, the real one follows
        self._final = True
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self._done:
            return
        self._size += len(body)
        if self._size > self.max_body:
            self._fail(SENT, f"the reply is over max_reply_bytes={self.max_body}", True)
            raise _Stop
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done:
            return
        if not self._final:
            # The end of a 1xx response: read the next one afresh. A server that
            # sends interim responses without end would keep the reader busy forever.
            self._interim += 1
            if self._interim > MAX_INTERIM:
                self._fail(SENT, f"more than {MAX_INTERIM} interim (1xx) responses", True)
                raise _Stop
            self.status = 0
            self.retry_after = self.content_type = None
            self.content_encoding = self.location = None
            self._has_length = self._chunked = False
            return
        keep_alive = self._parser.should_keep_alive()
        self.keep_alive = keep_alive and not self.extra
        self._complete()
