"""Codec benchmarks: hpgfast beside its peers, in the same run, on the same data.

Groups: ``encode-10k`` (the standard batch: hpgfast and its pure twin,
``urllib.parse.urlencode(..., quote_via=quote)``, yarl's quoter per value),
``parse-status-100k`` and ``parse-send-100k`` (the standard replies: hpgfast, pure,
``read`` (the line-by-line readers ``read_status``/``read_send`` of the codec in
use), ``match`` (what the client calls: ``match_status``/``match_send``, the same
readers checked against the ids sent, whose records hold the expected id objects)
and ``body.split(b"\\n")`` as the floor no parser can beat), and
``encode-threads-100k`` (a 100,000-message batch in one thread, and split over two).
"hpgfast" rows use ``hpgfast.codec``, the implementation in use.
The cyclic garbage collector stays on, as in users' processes, and every benchmark
here runs after the session's warm-up (the ``warmed`` fixture: the heap of a
long-running sender), which is where users run the codec.
``parse-send-100k`` also holds ``columns``: ``read_send_columns``, the opt-in
columnar reader for very large replies.
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
from hpgfast._wire import Match

Measure = Callable[..., Any]
pytestmark = pytest.mark.usefixtures("warmed")
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
# A 100,000-message batch, its two halves encoded one after the other in one thread,
# or side by side in two: the same calls either way, so the ratio is the threads'
# gain alone. (Split into 8 KB requests, each call takes ~6 us, about what CPython
# needs to hand the GIL from one thread to the other; at that size the ratio
# measures the interpreter's hand-over, not the codec. See the closing note of the
# codec issue for those figures.)


@pytest.fixture(scope="module")
def pool() -> Any:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def halves() -> tuple[Any, Any]:
    batch = standard_batch(100_000)
    half = len(batch) // 2
    return batch[:half], batch[half:]


def bench_encode_one_thread(measure: Measure, halves: tuple[Any, Any]) -> None:
    codec = hpgfast.codec
    first, second = halves

    def both() -> int:
        return len(codec.encode_send(first)[0]) + len(codec.encode_send(second)[0])

    measure("encode-threads-100k", "1-thread", both, rounds=15)


def bench_encode_two_threads(measure: Measure, pool: Any, halves: tuple[Any, Any]) -> None:
    codec = hpgfast.codec
    first, second = halves

    def both() -> int:
        one = pool.submit(codec.encode_send, first)
        two = pool.submit(codec.encode_send, second)
        return len(one.result()[0]) + len(two.result()[0])

    measure("encode-threads-100k", "2-threads", both, rounds=15)


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


# -- read: the line-by-line readers, in the parse groups beside split -----------------


def bench_read_status(measure: Measure) -> None:
    body = standard_status_reply()
    results, errors = measure("parse-status-100k", "read", hpgfast.codec.read_status, body)
    assert len(results) == 100_000 and not errors


def bench_read_send(measure: Measure) -> None:
    body = standard_send_reply()
    results, errors = measure("parse-send-100k", "read", hpgfast.codec.read_send, body)
    assert len(results) == 100_000 and not errors


# -- match: what the client calls, the readers checked against the ids sent ----------


def bench_match_status(measure: Measure) -> None:
    body = standard_status_reply()
    ids = [r.provider_id for r in hpgfast.codec.read_status(body)[0]]
    results, errors, flags = measure(
        "parse-status-100k", "match", hpgfast.codec.match_status, body, ids
    )
    assert len(results) == 100_000 and not errors and flags & Match.ALL


def bench_match_send(measure: Measure) -> None:
    body = standard_send_reply()
    ids = [r.client_id for r in hpgfast.codec.read_send(body)[0]]
    results, errors, flags = measure(
        "parse-send-100k", "match", hpgfast.codec.match_send, body, ids
    )
    assert len(results) == 100_000 and not errors and flags & Match.ALL


def bench_read_send_columns(measure: Measure) -> None:
    body = standard_send_reply()
    columns = measure("parse-send-100k", "columns", hpgfast.codec.read_send_columns, body)
    assert len(columns) == 100_000 and not columns.errors
