"""The gate's verdict on the ratios of ``bench/_ratios.py``, from a run's medians.

Kept apart from ``conftest.py`` (which records the medians and prints these lines)
so that tests/test_bench_gate.py can check the logic on given medians.

A ratio is gated when it has a floor, unless it is a CPU-time row that an
instruction-count row (``Ratio.replaces``) measured in the same run: then the
count gates the claim, and the time ratio is printed beside it, not gated. Where
the counts are missing (no valgrind: ``bench_counted.py`` says so in one line), the
time row gates, as it did before the counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple


class Row(NamedTuple):
    ratio: Any  # a _ratios.Ratio
    value: float | None  # peer median / subject median, None when one was not measured
    gated: bool  # whether a value under the floor fails the gate


def rows(ratios: Iterable[Any], medians: Mapping[tuple[str, str], float]) -> list[Row]:
    """Every ratio with its value in this run, and whether the gate holds it."""
    ratios = list(ratios)

    def value(ratio: Any) -> float | None:
        subject = medians.get((ratio.group, ratio.subject))
        peer = medians.get((ratio.group, ratio.peer))
        return peer / subject if subject and peer else None

    counted = {
        (r.replaces, r.subject, r.peer) for r in ratios if r.replaces and value(r) is not None
    }
    return [
        Row(r, value(r), r.floor > 0 and (r.group, r.subject, r.peer) not in counted)
        for r in ratios
    ]


def under_floor(table: Iterable[Row]) -> list[str]:
    """The gated ratios under their floors, one phrase each (empty: the gate passes)."""
    return [
        f"{row.ratio.claim}: {row.value:.2f} < floor {row.ratio.floor:.2f}"
        for row in table
        if row.gated and row.value is not None and row.value < row.ratio.floor
    ]


def verdict(row: Row) -> str:
    ratio, value = row.ratio, row.value
    assert value is not None
    if not row.gated and ratio.floor > 0:
        return "gated on instructions"
    if value < ratio.floor:
        return "UNDER FLOOR"
    if not ratio.target:
        return "reported"
    return "meets target" if value >= ratio.target else "under target"


def lines(table: Iterable[Row]) -> list[str]:
    """The printed table: one line per measured ratio."""
    out = [f"{'claim':<48} {'measured':>9} {'target':>7} {'floor':>7}  verdict"]
    for row in table:
        if row.value is None:
            continue
        ratio = row.ratio
        out.append(
            f"{ratio.claim:<48} {row.value:>9.2f} {ratio.target:>7.2f} {ratio.floor:>7.2f}"
            f"  {verdict(row)}"
        )
    return out
