"""Every hpgfast exception pickles with its context, ``.results`` included.

An error raised mid-batch carries the outcome of every message so far; a process
pool, a task queue or a log shipper that pickles it must not lose that.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil

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
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
    SendFailure,
    SendResult,
    StatusFailure,
    TLSError,
    TransportError,
)
from hpgfast.cli._input import InputError
from hpgfast.journal import (
    JournalError,
    JournalIdsNotRecorded,
    JournalLocked,
    JournalMismatch,
    JournalStorageError,
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
    HTTPStatusError(500, "Internal error", URL),
    RequestTooLarge(414, "URI Too Long", URL),
    RequestRejected("error-syntax", URL),
    AuthError("error-auth", None),
    AccountError("error-insufficient-balance", "http://h/send?login=C&password=***"),
    JournalError("the journal is from another version"),
    JournalLocked("another process is sending with /tmp/x.db"),
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
                 "lines"):  # fmt: skip
        assert getattr(copy, name, None) == getattr(error, name, None), name
    results = copy.results  # type: ignore[attr-defined]
    assert results == error.results  # type: ignore[attr-defined]
    assert [type(r) for r in results] == [type(r) for r in error.results]  # type: ignore[attr-defined]
    assert results[1].error.description == "boom" and results[1].error.url == URL
    assert results[2].error.sent is False
