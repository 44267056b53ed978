"""Scaling: cost per message stays flat from 10^3 to 10^6 messages.

Each case records seconds per message under ``scale-<job>`` with the batch size as
its name; ``bench/_ratios.py`` holds the 10^5 and 10^6 costs to within 1.5x of
the 10^3 cost. The 10^6 cases are marked ``slow`` (the CI gate's short pass stops at
10^5).

N messages are processed the way hpgfast processes them: encoded into requests of
at most 1 MiB (no HPG request holds 10^6 messages: that would be a 284 MB URL), and
their replies parsed one request's reply at a time (~3,600 lines for 1 MiB
requests). How a *single* call's cost grows with its size, up to 10^6 items in
one call, is what ``bench/plot.py`` draws: there fresh memory (page faults on
hundreds of MB) makes the per-item cost grow, for bytes.split as for hpgfast.

Every round works on data it has not touched before: a small batch repeated over
and over would sit in the CPU cache and look faster per message than any real
sender's stream of batches. So each size takes its rounds from a pool of at least
200,000 messages (or reply lines), one fresh slice per round.

The client case sends whole batches through ``hpgfast.Client`` in 8 KiB requests to
an emulator in a child process and records client CPU per message.
"""

from __future__ import annotations

import itertools
import resource
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hpgfast.codec
from _data import standard_batch, standard_send_reply, standard_status_reply
from bench_client import LOGIN, PASSWORD, EmulatorProcess
from hpgfast import Client

Measure = Callable[..., Any]
# Per-message costs as a long-running sender pays them (see conftest.warmed).
pytestmark = pytest.mark.usefixtures("warmed")
POOL = 200_000
REQUEST_BYTES = 1024 * 1024
#: Lines in the reply to one 1 MiB request of the standard batch (~284 bytes each).
REPLY_LINES = 3_600
SIZES = [
    pytest.param(10**3, id="1e3"),
    pytest.param(10**4, id="1e4"),
    pytest.param(10**5, id="1e5"),
    pytest.param(10**6, id="1e6", marks=pytest.mark.slow),
]


def _name(n: int) -> str:
    return f"1e{len(str(n)) - 1}"


def _rounds(n: int) -> int:
    return max(3, min(100, 2_000_000 // (n * 10)))


def _batches(n: int) -> list[Any]:
    pool = standard_batch(max(POOL, n))
    return [pool[i : i + n] for i in range(0, len(pool) - n + 1, n)]


def _replies(reply: Callable[[int], bytes], n: int) -> list[list[bytes]]:
    """Fresh inputs of n reply lines each, as the replies of <= REPLY_LINES lines."""
    lines = reply(max(POOL, n)).split(b"\r\n")
    inputs = []
    for start in range(0, len(lines) - n, n):
        inputs.append(
            [
                b"\r\n".join(lines[i : min(i + REPLY_LINES, start + n)]) + b"\r\n"
                for i in range(start, start + n, REPLY_LINES)
            ]
        )
    return inputs


def _encode_all(batch: Any) -> int:
    start, total = 0, 0
    while start < len(batch):
        query, start = hpgfast.codec.encode_send(batch, start=start, max_bytes=REQUEST_BYTES)
        total += len(query)
    return total


def _parse_all(parse: Callable[[bytes], Any]) -> Callable[[list[bytes]], int]:
    def run(bodies: list[bytes]) -> int:
        return sum(len(parse(body)) for body in bodies)

    return run


def _per_message(
    benchmark: Any, record: Any, job: str, n: int, fn: Callable[[Any], Any], inputs: list[Any]
) -> None:
    fresh = itertools.cycle(inputs)
    benchmark.group = f"scale-{job}-{_name(n)}"
    benchmark.extra_info["name"] = "hpgfast"
    benchmark.pedantic(fn, setup=lambda: ((next(fresh),), {}), rounds=_rounds(n))
    record(f"scale-{job}", _name(n), benchmark.stats.stats.median / n)


@pytest.mark.parametrize("n", SIZES)
def bench_scale_encode(benchmark: Any, record: Any, n: int) -> None:
    _per_message(benchmark, record, "encode", n, _encode_all, _batches(n))


@pytest.mark.parametrize("n", SIZES)
def bench_scale_parse_status(benchmark: Any, record: Any, n: int) -> None:
    replies = _replies(standard_status_reply, n)
    parse = _parse_all(hpgfast.codec.parse_status)
    _per_message(benchmark, record, "parse-status", n, parse, replies)


@pytest.mark.parametrize("n", SIZES)
def bench_scale_parse_send(benchmark: Any, record: Any, n: int) -> None:
    replies = _replies(standard_send_reply, n)
    parse = _parse_all(hpgfast.codec.parse_send)
    _per_message(benchmark, record, "parse-send", n, parse, replies)


# -- the client end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess()
    yield proc
    proc.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("n", SIZES)
def bench_scale_client(benchmark: Any, record: Any, emulator: EmulatorProcess, n: int) -> None:
    batches = _batches(n)
    fresh = itertools.cycle(batches)
    samples: list[float] = []
    with Client(emulator.url, LOGIN, PASSWORD) as client:
        client.send(batches[0][:100])  # connections open

        def send(batch: Any) -> None:
            before = _cpu()
            results = client.send(batch)
            samples.append((_cpu() - before) / n)
            assert results[-1].ok

        benchmark.group = f"scale-client-{_name(n)}"
        benchmark.extra_info["name"] = "hpgfast"
        rounds = 3 if n < 10**6 else 1
        benchmark.pedantic(send, setup=lambda: ((next(fresh),), {}), rounds=rounds)
    samples.sort()
    record("scale-client", _name(n), samples[len(samples) // 2])
