"""Codec benchmarks: hpgfast beside its peers, in the same run, on the same data.

Groups: ``encode-10k`` (the standard batch: hpgfast and its pure twin,
``urllib.parse.urlencode(..., quote_via=quote)``, yarl's quoter per value),
``parse-status-100k`` and ``parse-send-100k`` (the standard replies: hpgfast, pure,
and ``body.split(b"\\n")`` as the floor no parser can beat), and
``encode-threads-100k`` (a 100,000-message batch in one thread, and split over two).
"hpgfast" rows use ``hpgfast.codec``, the implementation in use.
The cyclic garbage collector stays on, as in users' processes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlencode

import pytest

import hpgfast.codec
from _data import query_pairs, standard_batch, standard_send_reply, standard_status_reply
from hpgfast import _codec_py

Measure = Callable[..., Any]
# "hpgfast" is the codec hpgfast really uses (``hpgfast.codec``): the compiled core,
# unless it is missing or HPGFAST_PURE_PYTHON=1 forced the twin, and then the gate
# fails, as it should. "pure" is the twin, always.
TWINS = [pytest.param("hpgfast", id="hpgfast"), pytest.param("pure", id="pure")]


def _twin(name: str) -> Any:
    return _codec_py if name == "pure" else hpgfast.codec


# -- encode ----------------------------------------------------------------------------


@pytest.mark.parametrize("twin", TWINS)
def bench_encode_hpgfast(measure: Measure, twin: str) -> None:
    codec = _twin(twin)
    batch = standard_batch()
    _, nxt = measure("encode-10k", twin, codec.encode_send, batch)
    assert nxt == len(batch)


def bench_encode_urlencode(measure: Measure) -> None:
    pairs = query_pairs(standard_batch())
    measure("encode-10k", "urlencode", urlencode, pairs, False, "", "utf-8", "strict", quote)


def bench_encode_yarl(measure: Measure) -> None:
    from yarl._quoting import _Quoter

    quoter = _Quoter(safe="", qs=False)
    pairs = query_pairs(standard_batch())

    def encode() -> str:
        return "&".join([quoter(name) + "=" + quoter(value) for name, value in pairs])

    measure("encode-10k", "yarl", encode)


def bench_encode_outputs_agree() -> None:
    """The peers produce the very bytes hpgfast does (apart from bracket quoting)."""
    batch = standard_batch()
    pairs = query_pairs(batch)
    ours = _codec_py.encode_send(batch, quote_brackets=True)[0].decode()
    assert ours == urlencode(pairs, quote_via=quote, safe="")


# -- encode in threads -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Any:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def _encode_chunks(codec: Any, batch: Any, start: int, stop: int) -> int:
    # A sender's real loop: 8 KiB requests, one after the other.
    total = 0
    while start < stop:
        query, start = codec.encode_send(batch, start=start, max_bytes=8000)
        total += len(query)
    return total


def bench_encode_one_thread(measure: Measure) -> None:
    codec = hpgfast.codec
    batch = standard_batch(100_000)
    measure(
        "encode-threads-100k", "1-thread", _encode_chunks, codec, batch, 0, len(batch), rounds=5
    )


def bench_encode_two_threads(measure: Measure, pool: Any) -> None:
    codec = hpgfast.codec
    batch = standard_batch(100_000)
    half = len(batch) // 2

    def both() -> int:
        first = pool.submit(_encode_chunks, codec, batch[:half], 0, half)
        second = pool.submit(_encode_chunks, codec, batch[half:], 0, len(batch) - half)
        return int(first.result() + second.result())

    measure("encode-threads-100k", "2-threads", both, rounds=5)


# -- parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("twin", TWINS)
def bench_parse_status_hpgfast(measure: Measure, twin: str) -> None:
    codec = _twin(twin)
    body = standard_status_reply()
    results = measure("parse-status-100k", twin, codec.parse_status, body)
    assert len(results) == 100_000


def bench_parse_status_split(measure: Measure) -> None:
    measure("parse-status-100k", "split", standard_status_reply().split, b"\n")


@pytest.mark.parametrize("twin", TWINS)
def bench_parse_send_hpgfast(measure: Measure, twin: str) -> None:
    codec = _twin(twin)
    body = standard_send_reply()
    results = measure("parse-send-100k", twin, codec.parse_send, body)
    assert len(results) == 100_000


def bench_parse_send_split(measure: Measure) -> None:
    measure("parse-send-100k", "split", standard_send_reply().split, b"\n")
