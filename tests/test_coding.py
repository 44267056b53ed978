"""A reply body's cap and Content-Encoding in the core (``hpgfast.core._coding``).

No sockets: bytes in, bytes (or ``CodingError``) out, and the cap each request of
a batch gets. The same replies over real HTTP, with both clients, are in
test_client_body.py.
"""

from __future__ import annotations

import os
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any, Optional

import pytest

from hpgfast import Message, Settings
from hpgfast.core import Exchange, reply_cap
from hpgfast.core._coding import STEP, CodingError, decode_body


def gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


def raw(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


ENCODERS = [("gzip", gzip), ("x-gzip", gzip), ("deflate", zlib.compress), ("deflate", raw)]


@pytest.mark.parametrize(("coding", "encode"), ENCODERS)
@pytest.mark.parametrize("size", [1, 100, STEP - 1, STEP, STEP + 1, 3 * STEP + 7])
def test_decoded_whole_up_to_the_cap_and_refused_past_it(
    coding: str, encode: Callable[[bytes], bytes], size: int
) -> None:
    body = os.urandom(size // 2) + bytes(size - size // 2)
    assert decode_body(encode(body), coding, size) == body  # exactly at the cap
    with pytest.raises(CodingError, match=f"over max_reply_bytes={size - 1}"):
        decode_body(encode(body), coding, size - 1)


def test_codings_as_the_header_lists_them() -> None:
    assert decode_body(b"plain", "identity", 10) == b"plain"
    assert decode_body(gzip(b"xy"), "Identity, GZIP ", 10) == b"xy"
    assert decode_body(gzip(gzip(b"xy")), "gzip, gzip", 100) == b"xy"  # last applied first
    assert decode_body(b"", "gzip", 10) == b""  # a coding named on nothing
    # gzip members one after another are one body (RFC 1952); bytes after a whole,
    # checked stream are not the body's.
    assert decode_body(gzip(b"ok;0;1\n") + gzip(b"ok;1;2\n"), "gzip", 100) == b"ok;0;1\nok;1;2\n"
    assert decode_body(gzip(b"xy") + b"\0\0", "gzip", 10) == b"xy"
    with pytest.raises(CodingError, match="5 content codings"):
        decode_body(b"x", "gzip, gzip, gzip, gzip, gzip", 10)


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "\u0436" * 100])
def test_a_coding_not_read_is_refused(coding: str) -> None:
    with pytest.raises(CodingError, match="does not read") as info:
        decode_body(b"ok;0;1001\n", coding, 100)
    assert len(str(info.value)) < 200  # the server's text, cut short


@pytest.mark.parametrize(("coding", "encode"), ENCODERS)
def test_a_stream_cut_or_broken_is_refused(
    coding: str, encode: Callable[[bytes], bytes]
) -> None:
    whole = encode(b"ok;0;10012345\n" * 50)
    # Cut short, its last line could read as another providerId: never read.
    with pytest.raises(CodingError, match="ends inside"):
        decode_body(whole[: len(whole) // 2], coding, 10_000)
    with pytest.raises(CodingError):
        decode_body(b"\x1f\x8b\x08garbage that is not compressed", coding, 10_000)


def test_a_bomb_is_refused_without_inflating_past_the_cap() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 300_000  # 256 MiB of zeros
    cap = 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(CodingError, match=f"decodes to over max_reply_bytes={cap}"):
            decode_body(bomb, "gzip", cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * cap + 2 * STEP


def test_the_reply_cap_follows_the_request() -> None:
    assert reply_cap(1) == 4 << 20
    assert reply_cap(8000) == 4 << 20  # 512 x 8000 + 64 KiB is less
    assert reply_cap(100_000) == 512 * 100_000 + 65536
    assert reply_cap(100_000, 4096) == 4096  # set by hand: a hard cap
    assert reply_cap(1, 100 << 20) == 100 << 20


def _exchange(**kw: Any) -> Exchange:
    return Exchange(
        Settings(
            "http://platform.test/CLIENT/connectorX/",
            "CLIENT",
            "P@ssw0rd",
            default_subject="SHOP",
            max_request_bytes=64 << 20,
            **kw,
        )
    )


@pytest.mark.parametrize(
    ("explicit", "expected"), [(None, [512 * 9000 + 65536, 4 << 20]), (5000, [5000, 5000])]
)
def test_each_request_gets_its_cap_when_it_begins(
    explicit: Optional[int], expected: list[int]
) -> None:
    # 9,010 messages in two requests: 9,000 (over 4 MiB's worth) and 10.
    messages = [Message(f"7903{i:07d}", "t") for i in range(9010)]
    batch = _exchange(max_reply_bytes=explicit, max_batch=9000).batch("send", messages, None)
    caps = []
    request = batch.next(0.0)
    while request is not None:
        assert batch.begin_line(request, 0.0) is not None
        caps.append(request.max_reply)
        request = batch.next(0.0)
    assert caps == expected
