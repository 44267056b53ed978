"""Every hpgfast exception pickles with its context, ``.results`` included.

An error raised mid-batch carries the outcome of every message so far; a process
pool, a task queue or a log shipper that pickles it must not lose that.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import sys

import pytest

import hpgfast
from hpgfast import (
    AccountError,
    AuthError,
    ConnectError,
    HPGError,
    HTTPStatusError,
    MessageError,
    MessageTooLarge,
    MessageTypeError,
    PlatformUnavailable,
    ProtocolError,
    ProxyError,
    RequestRejected,
    RequestTooLarge,
    SendFailure,
    SendResult,
    StatusFailure,
    TLSError,
    TransportError,
    UnexpectedReply,
)
from hpgfast.cli._input import InputError
from hpgfast.journal import (
    JournalAccessDenied,
    JournalClaimLost,
    JournalError,
    JournalIdsNotRecorded,
    JournalLocked,
    JournalMismatch,
    JournalStorageError,
    JournalUnavailable,
)

URL = "https://gate.example/C/x/send?login=C&password=***"

ERRORS = [
    HPGError("root"),
    MessageError(3, "text", "must not be empty"),
    MessageTypeError(None, "params", "expected str, got int"),
    MessageTooLarge(4, "message", "needs 9000 bytes"),
    ProtocolError(7, "garbled code"),
    ProtocolError(None, "reply over the cap"),
    TransportError("connection broken", url=URL, sent=True),
    ConnectError("could not connect", url=URL, sent=False),
    TLSError("TLS failed", url=None, sent=False),
    ProxyError("the proxy refused", url=URL, status=407, proxy="http://***@proxy:3128"),
    HTTPStatusError(500, "Internal error", URL),
    RequestTooLarge(414, "URI Too Long", URL),
    UnexpectedReply(302, "", URL, content_type="text/html", location="https://x/?password=***",
                    body="<html>Moved</html>"),
    PlatformUnavailable(503, "busy", URL, 3),
    RequestRejected("error-syntax", URL),
    AuthError("error-auth", None),
    AccountError("error-insufficient-balance", "http://h/send?login=C&password=***"),
    JournalError("the journal is from another version"),
    JournalLocked("another process is sending with /tmp/x.db"),
    JournalClaimLost("journal postgresql://u:***@db/x: this sender's claim ends in 0.0 s"),
    JournalClaimLost("postgresql://u:***@db/x", [3, 4, 5, 9]),
    JournalClaimLost("postgresql://u:***@db/x", why="its claim ends in 0.2 s"),
    JournalUnavailable("postgresql://u:***@db/x", "connection refused"),
    JournalAccessDenied("postgresql://u:***@db/x", "password authentication failed"),
    JournalStorageError("/tmp/x.db", "database or disk is full"),
    JournalMismatch("/tmp/x.db", {"input_sha256": ("ab", "cd"), "url": (None, "u")}),
    JournalIdsNotRecorded("/tmp/x.db", [101, 102, 103, 150]),
    InputError("messages.csv:7", "not UTF-8"),
]


def test_every_exception_class_is_covered() -> None:
    # Every module loaded, so that every HPGError subclass is known: a new error
    # class must be added to ERRORS (and so shown to pickle).
    for module in pkgutil.walk_packages(hpgfast.__path__, "hpgfast."):
        importlib.import_module(module.name)

    def subclasses(cls: type) -> set[type]:
        found = set()
        for sub in cls.__subclasses__():
            found |= {sub} | subclasses(sub)
        return found

    missing = subclasses(HPGError) - {type(e) for e in ERRORS}
    assert not missing, f"add an instance of each to ERRORS: {missing}"


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_exceptions_pickle_with_their_context_and_results(error: HPGError) -> None:
    cause = HTTPStatusError(500, "boom", URL)
    error.results = [  # type: ignore[attr-defined]
        SendResult("ok", "0", "1001"),
        SendFailure("unknown", "1", None, cause),
        StatusFailure("not-sent", "1002", error=ConnectError("refused", url=URL, sent=False)),
        None,
    ]
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and repr(copy) == repr(error)
    assert copy.args == error.args
    for name in ("index", "field", "reason", "line", "message", "url", "sent", "status",
                 "description", "code", "path", "differences", "where",
                 "lines", "content_type", "location", "body", "count"):  # fmt: skip
        assert getattr(copy, name, None) == getattr(error, name, None), name
    results = copy.results  # type: ignore[attr-defined]
    assert results == error.results  # type: ignore[attr-defined]
    assert [type(r) for r in results] == [type(r) for r in error.results]  # type: ignore[attr-defined]
    assert results[1].error.description == "boom" and results[1].error.url == URL
    assert results[2].error.sent is False


# -- results_of: the results, whichever exception the caller caught ---------------------


def _raised_from(cause: BaseException, outer: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as exc:
        return exc


def _raised_during(context: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise outer  # noqa: B904 - implicit chaining (__context__) is the point
    except BaseException as exc:
        return exc


def test_results_of_finds_results_on_the_error_or_what_it_came_from_or_during() -> None:
    results = [SendResult("ok", "0", "1001"), SendFailure("not-sent", "1", None)]
    carrier = AccountError("error-insufficient-balance", URL)
    carrier.results = results  # type: ignore[attr-defined]
    assert hpgfast.results_of(carrier) is results
    # asyncio.wait_for: a TimeoutError raised from the CancelledError that has them.
    assert hpgfast.results_of(_raised_from(carrier, TimeoutError())) is results
    # asyncio.run() and Ctrl-C (3.11+): a KeyboardInterrupt raised while handling it.
    assert hpgfast.results_of(_raised_during(carrier, KeyboardInterrupt())) is results
    # An awaited task on 3.9/3.10: a new CancelledError whose context is it, and deeper.
    deep = _raised_from(_raised_during(carrier, ValueError()), TimeoutError())
    assert hpgfast.results_of(deep) is results
    # Nothing in the chain carries results: None, never an error.
    assert hpgfast.results_of(ValueError("x")) is None
    assert hpgfast.results_of(_raised_from(ValueError(), KeyboardInterrupt())) is None
    # Only a list is results: an attribute of that name holding anything else is not.
    other = ValueError()
    other.results = "not ours"  # type: ignore[attr-defined]
    assert hpgfast.results_of(other) is None


def test_results_of_takes_the_nearest_and_ends_on_a_loop() -> None:
    near, far = [SendResult("ok", "0", "1")], [SendResult("ok", "0", "2")]
    inner, outer = ValueError("inner"), ValueError("outer")
    inner.results, outer.results = far, near  # type: ignore[attr-defined]
    assert hpgfast.results_of(_raised_from(inner, outer)) is near
    # The cause comes before the context (raise ... from ... inside an except block).
    cause, context, top = ValueError(), ValueError(), TimeoutError()
    cause.results, context.results = near, far  # type: ignore[attr-defined]
    top.__cause__, top.__context__ = cause, context
    assert hpgfast.results_of(top) is near
    # A chain that loops back on itself ends.
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert hpgfast.results_of(a) is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are Python 3.11+")
def test_results_of_looks_into_an_exception_group() -> None:
    import builtins

    results = [SendResult("ok", "0", "1001")]
    carrier = ValueError("cancelled send")
    carrier.results = results  # type: ignore[attr-defined]
    group = builtins.BaseExceptionGroup("task group", [KeyboardInterrupt(), carrier])
    assert hpgfast.results_of(group) is results
