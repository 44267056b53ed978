"""Segment counting: the compiled batch core beside its pure twin, on the same data.

Groups: ``segments-100k`` (``count_segments``, a record per message) and
``segments-totals-100k`` (``total_segments``, the dry run's form: totals alone), both
on the 100,000 messages of ``hpgfast._sample.standard_batch(100_000)`` (50% Latin,
30% Cyrillic, 20% with emoji, up to 160 characters). "hpgfast" is ``hpgfast.sms``,
the counter in use (the compiled one unless it is missing or HPGFAST_PURE_PYTHON=1
forced the twin, and then the gate fails, as it should); "pure" is the twin, always.
The cyclic garbage collector stays on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hpgfast.sms
from _data import standard_batch
from hpgfast import _sms_py

Measure = Callable[..., Any]
TWINS = [pytest.param("hpgfast", id="hpgfast"), pytest.param("pure", id="pure")]
SIZE = 100_000


def _twin(name: str) -> Any:
    return _sms_py if name == "pure" else hpgfast.sms


@pytest.mark.parametrize("twin", TWINS)
def bench_count_segments(measure: Measure, twin: str) -> None:
    batch = standard_batch(SIZE)
    results = measure("segments-100k", twin, _twin(twin).count_segments, batch)
    assert len(results) == SIZE


@pytest.mark.parametrize("twin", TWINS)
def bench_total_segments(measure: Measure, twin: str) -> None:
    batch = standard_batch(SIZE)
    totals = measure("segments-totals-100k", twin, _twin(twin).total_segments, batch)
    assert totals.messages == SIZE


def bench_segments_twins_agree() -> None:
    """Both twins count the benchmark's batch alike (what is timed is the same work)."""
    batch = standard_batch(SIZE)
    assert hpgfast.sms.count_segments(batch) == _sms_py.count_segments(batch)
    assert hpgfast.sms.total_segments(batch) == _sms_py.total_segments(batch)
