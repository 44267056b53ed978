"""Scaling: cost per message stays flat from 10^3 to 10^6 messages.

Each case records seconds per message under ``scale-<job>`` with the batch size as
its name; hpgfast/_ratios.py holds the 10^3 and the largest size run to within 1.5x of each
other. The 10^6 cases are marked ``slow`` (the CI gate's short pass stops at 10^5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hpgfast.codec
from _data import standard_batch, standard_send_reply, standard_status_reply

Measure = Callable[..., Any]
SIZES = [
    pytest.param(10**3, id="1e3"),
    pytest.param(10**4, id="1e4"),
    pytest.param(10**5, id="1e5"),
    pytest.param(10**6, id="1e6", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def codec() -> Any:
    """The codec in use (the compiled core unless the pure twin was forced)."""
    return hpgfast.codec


def _name(n: int) -> str:
    return f"1e{len(str(n)) - 1}"


def _rounds(n: int) -> int:
    return max(3, min(50, 2_000_000 // (n * 10)))


@pytest.mark.parametrize("n", SIZES)
def bench_scale_encode(measure: Measure, record: Any, codec: Any, n: int) -> None:
    batch = standard_batch(n)
    measure(f"scale-encode-{_name(n)}", "hpgfast", codec.encode_send, batch, rounds=_rounds(n))
    record("scale-encode", _name(n), _median(measure) / n)


@pytest.mark.parametrize("n", SIZES)
def bench_scale_parse_status(measure: Measure, record: Any, codec: Any, n: int) -> None:
    body = standard_status_reply(n)
    measure(
        f"scale-parse-status-{_name(n)}", "hpgfast", codec.parse_status, body, rounds=_rounds(n)
    )
    record("scale-parse-status", _name(n), _median(measure) / n)


@pytest.mark.parametrize("n", SIZES)
def bench_scale_parse_send(measure: Measure, record: Any, codec: Any, n: int) -> None:
    body = standard_send_reply(n)
    measure(f"scale-parse-send-{_name(n)}", "hpgfast", codec.parse_send, body, rounds=_rounds(n))
    record("scale-parse-send", _name(n), _median(measure) / n)


def _median(measure: Any) -> float:
    return float(measure.last_median)
