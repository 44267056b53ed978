# cython: language_level=3
"""The compiled twin of ``hpgfast._response_py.ResponseReader``.

The same reader, line for line: llhttp (httptools) still reads the framing, and
this class only keeps what hpgfast needs of it and decides what a hostile reply
is. Compiled, llhttp's callbacks into it (a dozen a reply, four of them per
header) and the transport's calls (``reuse``, ``feed``, ``reply``...) are C calls
on C fields instead of Python frames: at 8 KiB requests the reader was a fifth of
the Python run per request. ``_response_py.ResponseReader`` is the reference: the
tests run every reader test over both, and a differential fuzz test feeds both the
same bytes in the same splits (``tests/test_response.py``).
"""

import httptools

from ._http_limits import MAX_HEAD, MAX_HEADERS, MAX_INTERIM, MAX_RAW_HEAD
from .core import CUT, SENT, Failure, Reply
from .exceptions import ProtocolError, TransportError

__all__ = ["ResponseReader"]

cdef Py_ssize_t C_MAX_HEAD = MAX_HEAD
cdef Py_ssize_t C_MAX_HEADERS = MAX_HEADERS
cdef Py_ssize_t C_MAX_INTERIM = MAX_INTERIM
cdef Py_ssize_t C_MAX_RAW_HEAD = MAX_RAW_HEAD
cdef tuple _HttpParserError = (httptools.HttpParserError, httptools.HttpParserUpgrade)
cdef object _Upgrade = httptools.HttpParserUpgrade
cdef object _ReplyType = Reply


class _Stop(Exception):
    """Raised from a parser callback to stop parsing at once (the reader knows why)."""


cdef class ResponseReader:
    """Reads one HTTP/1.1 response from bytes fed in any split (see the pure twin).

    Args:
        max_body: the longest body kept; a longer one is an error.
    """

    cdef list _body
    cdef Py_ssize_t _size
    cdef Py_ssize_t _head
    cdef Py_ssize_t _headers
    cdef Py_ssize_t _interim
    cdef Py_ssize_t _received
    cdef bint _final
    cdef bint _has_length
    cdef bint _chunked
    cdef bint _done
    cdef bint _protocol_error
    cdef object _error
    cdef object _kind
    cdef object _parser
    cdef object _cap          # max_body as given (any int)
    #: The HTTP status of the response (0 until its status line is read).
    cdef public int status
    #: The ``Retry-After`` header, if any.
    cdef public object retry_after
    #: The ``Content-Type``, ``Content-Encoding`` and ``Location`` headers, if any.
    cdef public object content_type
    cdef public object content_encoding
    cdef public object location
    #: Whether the connection may carry another request after this response.
    cdef public bint keep_alive
    #: Bytes followed the response: the connection must not be reused.
    cdef public bint extra

    def __init__(self, max_body):
        self._cap = max_body
        self._parser = httptools.HttpResponseParser(self)
        # Lines ended by a bare LF, as some embedded servers write them (curl and
        # http.client read them): only the line ends, no other leniency.
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._reset()

    @property
    def max_body(self):
        return self._cap

    @max_body.setter
    def max_body(self, value):
        self._cap = value

    def reuse(self):
        """Ready the reader for the next response on the same connection (see the
        pure twin): True when it may be reused, False to make a new one."""
        if not self._done or self._error is not None or not self.keep_alive or self.extra:
            return False
        self._reset()
        return True

    cdef int _reset(self) except -1:
        self._body = []
        self._size = 0
        self._head = 0
        self._headers = 0
        self._interim = 0
        self._final = False
        self._has_length = False
        self._chunked = False
        self._done = False
        self._error = None
        self._kind = SENT
        self._protocol_error = False
        self._received = 0
        self.status = 0
        self.retry_after = None
        self.content_type = None
        self.content_encoding = None
        self.location = None
        self.keep_alive = False
        self.extra = False
        return 0

    # -- the transport's side --------------------------------------------------------

    @property
    def done(self):
        """True once the response is complete or failed."""
        return self._done

    @property
    def ok(self):
        """True when a whole response was read (``status``, ``body`` are valid)."""
        return self._done and self._error is None

    @property
    def received(self):
        """Bytes fed so far."""
        return self._received

    @property
    def body(self):
        """The body read so far (all of it once ``ok``)."""
        cdef list body = self._body
        if len(body) > 1:
            body[:] = [b"".join(body)]
        return body[0] if body else b""

    def feed(self, data):
        """Read ``data``; True once the response is complete or failed."""
        self._received += len(data)
        if self._error is not None:
            return True
        try:
            self._parser.feed_data(data)
        except _HttpParserError as exc:
            self._parser_error(exc)
        if not self._final and not self._done and self._received > C_MAX_RAW_HEAD:
            self._fail(SENT, f"no reply headers in the first {MAX_RAW_HEAD} bytes", True)
        return self._done

    def eof(self):
        """The peer closed the connection: True (the response is complete or failed)."""
        if not self._done:
            if self._final and not self._has_length and not self._chunked:
                # A body delimited by the end of the connection (RFC 9112 6.3 item 8).
                self._done = True
            elif self._final:
                self._fail(CUT, f"the reply was cut after {self._size} bytes of its body")
            elif self._received:
                self._fail(SENT, "the connection closed inside the reply's headers")
            else:
                self._fail(SENT, "the connection closed without a reply")
        self.keep_alive = False
        return True

    def fail(self, kind, text):
        """Record a failure the transport saw (a timeout, a reset) if none is known."""
        if not self._done:
            self._fail(kind, text)
        self.keep_alive = False

    @property
    def error_text(self):
        """What went wrong, or None."""
        return self._error

    def reply(self):
        """The core's ``Reply`` for a whole response (``ok``): ``Retry-After`` only
        matters, and is only passed on, when the status is not 200."""
        # tuple.__new__: a NamedTuple's own __new__ is a Python function.
        return tuple.__new__(
            _ReplyType,
            (
                self.status,
                self.body,
                None if self.status == 200 else self.retry_after,
                self.content_type,
                self.content_encoding,
                self.location,
            ),
        )

    def failure(self, shown, scrub=None):
        """The core's ``Failure`` for a failed read (see the pure twin)."""
        text = self._error or "no reply"
        if scrub is not None:
            text = scrub(text)
        if self._protocol_error:
            return Failure(self._kind, ProtocolError(None, text))
        return Failure(self._kind, TransportError(text, url=shown, sent=True))

    # -- internals -------------------------------------------------------------------

    cdef int _fail(self, kind, text, bint protocol=False) except -1:
        self._kind = kind
        self._error = text
        self._protocol_error = protocol
        self._done = True
        self.keep_alive = False
        self._body = []
        return 0

    cdef int _parser_error(self, exc) except -1:
        if self._done:
            # Anything after the response: a stale or extra reply, or garbage.
            self.extra = True
            self.keep_alive = False
            return 0
        if isinstance(exc, _Upgrade):
            text = "the server switched protocols"
        else:
            text = f"the reply is not HTTP/1.1: {type(exc).__name__}: {exc}"
        self._fail(CUT if self._final else SENT, text, True)
        return 0

    # -- llhttp's callbacks ------------------------------------------------------------

    def on_message_begin(self):
        if self._done:
            self.extra = True
            self.keep_alive = False
            raise _Stop

    def on_status(self, bytes status not None):
        self._head += len(status)
        if self._head > C_MAX_HEAD:
            self._fail(SENT, f"the reply's headers are over {MAX_HEAD} bytes", True)
            raise _Stop

    def on_header(self, bytes name not None, bytes value not None):
        cdef bytes lowered, length
        self._head += len(name) + len(value)
        self._headers += 1
        if self._head > C_MAX_HEAD or self._headers > C_MAX_HEADERS:
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
            if length.isdigit() and int(length) > self._cap:
                self._fail(
                    SENT,
                    f"the reply announces {int(length)} bytes, over max_reply_bytes="
                    f"{self._cap}",
                    True,
                )
                raise _Stop
        elif lowered == b"transfer-encoding":
            # llhttp reads a response body as chunked only when chunked comes last;
            # any other coding is read to the end of the connection.
            self._chunked = value.rstrip().lower().endswith(b"chunked")

    def on_headers_complete(self):
        cdef int status = self._parser.get_status_code()
        self.status = status
        if 100 <= status < 200:
            return  # an interim response: its "message" ends here, the real one follows
        self._final = True
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, bytes body not None):
        if self._done:
            return
        self._size += len(body)
        if self._size > self._cap:
            self._fail(SENT, f"the reply is over max_reply_bytes={self._cap}", True)
            raise _Stop
        self._body.append(body)

    def on_message_complete(self):
        if self._done:
            return
        if not self._final:
            # The end of a 1xx response: read the next one afresh. A server that
            # sends interim responses without end would keep the reader busy forever.
            self._interim += 1
            if self._interim > C_MAX_INTERIM:
                self._fail(SENT, f"more than {MAX_INTERIM} interim (1xx) responses", True)
                raise _Stop
            self.status = 0
            self.retry_after = self.content_type = None
            self.content_encoding = self.location = None
            self._has_length = self._chunked = False
            return
        keep_alive = self._parser.should_keep_alive()
        self.keep_alive = keep_alive and not self.extra
        self._done = True
