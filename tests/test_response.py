"""The reply reader (llhttp) against hostile replies, and a fuzz harness.

Every case is read whole, byte by byte and in random splits: the answer must not
depend on how the bytes arrived.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hpgfast._http_limits import MAX_HEAD
from hpgfast._response import ResponseReader
from hpgfast.core import CUT, SENT
from hpgfast.exceptions import ProtocolError, TransportError

CAP = 1000


@pytest.fixture(autouse=True, scope="module")
def twin(response: ModuleType) -> Iterator[ModuleType]:
    """Every test of this module runs over the pure reader, then the compiled one
    (conftest's ``response``; ``ResponseReader`` here names the one under test)."""
    global ResponseReader
    saved = ResponseReader
    ResponseReader = response.ResponseReader
    yield response
    ResponseReader = saved


def outcome(reader: ResponseReader) -> tuple[Any, ...]:
    """Everything a transport learns from a finished (or unfinished) read."""
    if not reader.done:
        return ("waiting", reader.status)
    if reader.ok:
        return ("ok", reader.status, reader.body, reader.retry_after, reader.keep_alive)
    failure = reader.failure("http://h/send?...")
    return ("failed", failure.kind, type(failure.error).__name__)


def read(chunks: list[bytes], *, cap: int = CAP, eof: bool = False) -> tuple[Any, ...]:
    reader = ResponseReader(cap)
    for chunk in chunks:
        reader.feed(chunk)
    if eof:
        reader.eof()
    return outcome(reader)


def every_split(data: bytes, *, cap: int = CAP, eof: bool = False) -> tuple[Any, ...]:
    """The outcome, checked to be the same whole, byte by byte and in random splits."""
    whole = read([data], cap=cap, eof=eof)
    assert read([data[i : i + 1] for i in range(len(data))], cap=cap, eof=eof) == whole
    rng = random.Random(len(data))
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), 4)))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        assert read(parts, cap=cap, eof=eof) == whole
    return whole


def test_a_plain_reply() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok;0;1001\n"
    assert every_split(data) == ("ok", 200, b"ok;0;1001\n", None, True)


def test_retry_after_and_connection_close() -> None:
    data = (
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    assert every_split(data) == ("ok", 429, b"", "3", False)


def test_the_headers_the_rules_read_reach_the_reply() -> None:
    data = (
        b"HTTP/1.1 301 Moved\r\nlocation:  https://h/x \r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Encoding: gzip\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n"
    )
    reader = ResponseReader(CAP)
    assert reader.feed(data)
    assert tuple(reader.reply()) == (
        301,
        b"",
        "2",
        "text/html; charset=utf-8",
        "gzip",
        "https://h/x",
    )
    # A header given on two lines is one list, in order.
    reader = ResponseReader(CAP)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nX-A: 1\r\n")
    assert reader.feed(b"content-encoding: deflate\r\nContent-Length: 0\r\n\r\n")
    assert reader.reply().content_encoding == "gzip, deflate"
    # An interim response's headers are not the final one's.
    reader = ResponseReader(CAP)
    reader.feed(b"HTTP/1.1 103 Early\r\nLocation: /a\r\nContent-Type: x/y\r\n\r\n")
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert tuple(reader.reply()) == (200, b"ok", None, None, None, None)


def test_a_head_of_bare_lf_lines_is_read() -> None:
    data = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 10\n\nok;0;1001\n"
    assert every_split(data) == ("ok", 200, b"ok;0;1001\n", None, True)


def test_http_10_without_keep_alive_is_not_kept() -> None:
    data = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert every_split(data) == ("ok", 200, b"ok", None, False)


def test_chunked_reply() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nok;0;\r\n5\r\n1001\n\r\n0\r\n\r\n"
    )
    assert every_split(data) == ("ok", 200, b"ok;0;1001\n", None, True)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
        b"-1\r\nabc\r\n0\r\n\r\n",  # negative
        b"3\r\nabcdef\r\n0\r\n\r\n",  # chunk longer than its size
        b"ffffffffffffffffffff\r\n",  # overflows 64 bits
    ],
)
def test_chunked_abuse_is_refused(body: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    assert every_split(data, eof=True) == ("failed", CUT, "ProtocolError")


def test_a_huge_chunk_stops_at_the_cap() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n" + b"x" * 2000
    assert every_split(data) == ("failed", SENT, "ProtocolError")


def test_missing_final_chunk_is_cut() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok;0;\r\n"
    assert every_split(data) == ("waiting", 200)
    assert every_split(data, eof=True) == ("failed", CUT, "TransportError")


def test_content_length_shorter_than_the_body_leaves_extra_bytes() -> None:
    # The body is what Content-Length says; the rest is a stray reply: never reused.
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok;0;1001\n"
    assert every_split(data) == ("ok", 200, b"ok;0", None, False)


def test_content_length_longer_than_the_body_is_cut() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nok;0;1001\n"
    assert every_split(data) == ("waiting", 200)
    assert every_split(data, eof=True) == ("failed", CUT, "TransportError")


def test_two_content_lengths_and_bad_lengths_are_refused() -> None:
    for head in (b"Content-Length: 3\r\nContent-Length: 4\r\n", b"Content-Length: x\r\n"):
        data = b"HTTP/1.1 200 OK\r\n" + head + b"\r\nabcd"
        assert every_split(data, eof=True)[:2] == ("failed", SENT)


def test_content_length_over_the_cap() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1500
    assert every_split(data) == ("failed", SENT, "ProtocolError")


def test_interim_responses_are_skipped() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert every_split(data) == ("ok", 200, b"ok", None, True)


def test_endless_interim_responses_are_refused() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n" * 20
    assert every_split(data) == ("failed", SENT, "ProtocolError")


def test_switching_protocols_is_refused() -> None:
    data = b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nzzz"
    assert every_split(data, eof=True)[0] == "failed"


def test_a_trickle_is_read_whole() -> None:
    body = b"ok;0;1001\n" * 30
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    reader = ResponseReader(CAP)
    for i in range(len(data) - 1):
        assert not reader.feed(data[i : i + 1])
    assert reader.feed(data[-1:])
    assert reader.ok and reader.body == body


def test_close_mid_body_and_mid_headers() -> None:
    assert every_split(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok", eof=True) == (
        "failed", CUT, "TransportError",
    )  # fmt: skip
    assert every_split(b"HTTP/1.1 200 OK\r\nContent-Le", eof=True) == (
        "failed", SENT, "TransportError",
    )  # fmt: skip
    assert read([], eof=True) == ("failed", SENT, "TransportError")


def test_a_body_read_until_close() -> None:
    data = b"HTTP/1.1 200 OK\r\n\r\nok;0;1001\n"
    assert every_split(data) == ("waiting", 200)
    assert every_split(data, eof=True) == ("ok", 200, b"ok;0;1001\n", None, False)
    assert every_split(data + b"x" * CAP, eof=True) == ("failed", SENT, "ProtocolError")


def test_two_responses_back_to_back() -> None:
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert every_split(one + one) == ("ok", 200, b"ok", None, False)
    # The second arriving later (the connection idle) is the transport's to see;
    # fed to the reader, it says the same.
    reader = ResponseReader(CAP)
    assert reader.feed(one) and reader.keep_alive
    reader.feed(b"HTTP/1.1 200 OK\r\n")
    assert reader.ok and reader.body == b"ok" and not reader.keep_alive and reader.extra


@pytest.mark.parametrize(
    "data",
    [
        b"<html>hello</html>\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/9.9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02",
    ],
)
def test_garbage_is_refused(data: bytes) -> None:
    assert every_split(data, eof=True) == ("failed", SENT, "ProtocolError")


def test_headers_are_bounded() -> None:
    data = b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n"
    assert every_split(data, eof=True) == ("failed", SENT, "ProtocolError")
    many = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n"
    assert every_split(many, eof=True) == ("failed", SENT, "ProtocolError")
    reader = ResponseReader(CAP)
    for _ in range(10_000):
        if reader.feed(b"\r\n" * 64):
            break
    assert reader.done and not reader.ok


def test_failures_carry_the_url_and_the_redacted_text() -> None:
    reader = ResponseReader(CAP)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok")
    reader.fail(SENT, "connection broken: echo secret")
    failure = reader.failure("http://h/send?password=***", lambda t: t.replace("secret", "***"))
    assert failure.kind == SENT and isinstance(failure.error, TransportError)
    assert failure.error.url == "http://h/send?password=***" and "secret" not in str(failure.error)
    over = ResponseReader(3)
    over.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert isinstance(over.failure("u").error, ProtocolError)


# -- fuzz -------------------------------------------------------------------------------

_PARTS = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.0 429 X\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 50000\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Connection: close\r\n",
        b"Retry-After: 2\r\n",
        b"\r\n",
        b"5\r\nabcde\r\n",
        b"0\r\n\r\n",
        b"fffffffff\r\n",
        b"ok;0;1001\n",
    ]
)
_DATA = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(_PARTS, st.binary(max_size=8)), max_size=14).map(b"".join),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@given(_DATA, st.lists(st.integers(min_value=0), max_size=8), st.booleans(), st.integers(1, 64))
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde\r\n", [20, 40], False, 64)
@example(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nabc", [3], True, 2)
def test_fuzz_any_bytes_any_split(data: bytes, cuts: list[int], eof: bool, cap: int) -> None:
    whole = ResponseReader(cap)
    whole.feed(data)
    if eof:
        whole.eof()
    parts = ResponseReader(cap)
    for part in _split(data, cuts):
        parts.feed(part)
    if eof:
        parts.eof()
    assert outcome(parts) == outcome(whole)
    for reader in (whole, parts):
        assert len(reader.body) <= cap
        if eof:
            assert reader.done and (reader.ok or reader.error_text)
        if reader.done and not reader.ok:
            assert reader.failure("u").kind in (SENT, CUT)


# -- one reader per connection: reuse() ------------------------------------------------

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok;0;1001\n"
_TOO_MANY = b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\nno"
_INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok;\r\n2\r\n0;\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "replies",
    [
        [_OK, _OK, _OK],
        [_TOO_MANY, _OK],  # the next reply has no Retry-After: none is left over
        [_INTERIM + _TOO_MANY, _INTERIM + _OK, _OK],
        [_CHUNKED, _OK, _CHUNKED],
        [_OK, _CLOSE],
    ],
)
def test_a_reused_reader_reads_each_reply_as_a_new_one_would(replies: list[bytes]) -> None:
    reader = ResponseReader(CAP)
    for k, data in enumerate(replies):
        if k:
            assert reader.reuse()
        for i in range(0, len(data), 7):  # in pieces, as a socket gives them
            reader.feed(data[i : i + 7])
        assert outcome(reader) == read([data])
        assert reader.received == len(data)
    assert reader.reuse() == read([replies[-1]])[-1]  # not after Connection: close


@pytest.mark.parametrize(
    "chunks, eof",
    [
        ([_OK[:20]], False),  # not done yet
        ([_OK[:-3]], True),  # cut
        ([_OK + b"HTTP/1.1 200 OK\r\n"], False),  # bytes after the reply
        ([_OK + b"x"], False),  # garbage after the reply
        ([_CLOSE], False),  # the server closes after it
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n"], False),  # over the cap
    ],
)
def test_a_reader_is_not_reused_after_anything_but_a_clean_reply(
    chunks: list[bytes], eof: bool
) -> None:
    reader = ResponseReader(CAP)
    for chunk in chunks:
        reader.feed(chunk)
    if eof:
        reader.eof()
    assert not reader.reuse()


_REPLIES = st.sampled_from([_OK, _TOO_MANY, _INTERIM + _OK, _CHUNKED, _CLOSE, _OK + _OK])


@given(
    first=st.one_of(_REPLIES, st.binary(max_size=120)),
    second=st.one_of(_REPLIES, st.binary(max_size=120), _REPLIES.map(lambda r: r[:-1])),
)
@example(first=_OK, second=_TOO_MANY)
@example(first=_INTERIM + _OK, second=b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
def test_fuzz_reuse_never_changes_what_a_reply_reads_as(first: bytes, second: bytes) -> None:
    # Whatever the first exchange was: if the reader may be reused, it reads the
    # next reply exactly as a new reader does.
    reader = ResponseReader(CAP)
    reader.feed(first)
    if reader.reuse():
        reader.feed(second)
        assert outcome(reader) == read([second])
        assert reader.received == len(second)


# -- the twins: the compiled reader against the pure one ---------------------------------


def _twin_outcome(cls: Any, chunks: list[bytes], eof: bool, cap: int, again: bytes) -> Any:
    reader = cls(cap)
    for chunk in chunks:
        reader.feed(chunk)
    if eof:
        reader.eof()
    first = (outcome(reader), reader.received, reader.extra, reader.error_text)
    if reader.ok:
        first += (tuple(reader.reply()),)
    if reader.done and not reader.ok:
        failure = reader.failure("u", lambda text: text.upper())
        first += (failure.kind, type(failure.error), str(failure.error))
    reused = reader.reuse()
    second: Any = None
    if reused:
        reader.feed(again)
        second = (outcome(reader), reader.received, reader.extra, reader.error_text)
    return first, reused, second


@given(
    _DATA,
    st.lists(st.integers(min_value=0), max_size=8),
    st.booleans(),
    st.integers(1, 64),
    st.one_of(_REPLIES, st.binary(max_size=60)),
)
@example(_OK + _OK, [5], False, 1000, _TOO_MANY)
@example(b"HTTP/1.1 200 OK\r\nRetry-After:  7 \r\nContent-Length: 0\r\n\r\n", [], False, 9, b"")
@example(
    b"HTTP/1.1 100 Continue\r\nLocation: /x\r\n\r\nHTTP/1.1 302 Found\r\nLOCATION: /y \r\n"
    b"content-TYPE: text/html; charset=cp1251\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 0\r\n\r\n",
    [],
    False,
    9,
    b"",
)
def test_twins_read_every_reply_alike(
    response_pure: ModuleType,
    response_compiled: ModuleType,
    data: bytes,
    cuts: list[int],
    eof: bool,
    cap: int,
    again: bytes,
) -> None:
    chunks = _split(data, cuts)
    expected = _twin_outcome(response_pure.ResponseReader, chunks, eof, cap, again)
    assert _twin_outcome(response_compiled.ResponseReader, chunks, eof, cap, again) == expected
