"""``hpgfast bench``: the suite's key cases, on the user's own machine, in under a minute.

Strategy: the same seeded data as ``bench/`` (``hpgfast._sample``) and the same claim
table (``hpgfast._ratios``), timed with ``time.perf_counter`` medians instead of
pytest-benchmark so that the command needs nothing beyond hpgfast itself. Peers that
are not installed (yarl) are left out and said so. The cyclic GC stays on.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from . import _codec_py, codec
from ._ratios import RATIOS, Ratio
from ._sample import query_pairs, standard_batch, standard_send_reply, standard_status_reply

__all__ = ["Row", "format_table", "run"]


class Row(NamedTuple):
    """One claim as measured here: ``value`` is the peer/hpgfast ratio of medians."""

    ratio: Ratio
    value: float

    @property
    def verdict(self) -> str:
        if not self.ratio.target:
            return "reported"
        return "meets target" if self.value >= self.ratio.target else "under target"


def _median(fn: Callable[[], Any], budget: float) -> float:
    fn()  # warm up: first-touch page faults, lazily built caches
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _codec_cases(hpg: Any) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    batch = standard_batch()
    pairs = query_pairs(batch)
    status_body = standard_status_reply()
    send_body = standard_send_reply()
    yield "encode-10k", "hpgfast", lambda: hpg.encode_send(batch)
    yield "encode-10k", "pure", lambda: _codec_py.encode_send(batch)
    yield "encode-10k", "urlencode", lambda: urlencode(pairs, quote_via=quote)
    try:
        from yarl._quoting import _Quoter  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        quoter = _Quoter(safe="", qs=False)

        def yarl_encode() -> str:
            return "&".join([quoter(k) + "=" + quoter(v) for k, v in pairs])

        yield "encode-10k", "yarl", yarl_encode
    yield "parse-status-100k", "hpgfast", lambda: hpg.parse_status(status_body)
    yield "parse-status-100k", "pure", lambda: _codec_py.parse_status(status_body)
    yield "parse-status-100k", "split", lambda: status_body.split(b"\n")
    yield "parse-send-100k", "hpgfast", lambda: hpg.parse_send(send_body)
    yield "parse-send-100k", "pure", lambda: _codec_py.parse_send(send_body)
    yield "parse-send-100k", "split", lambda: send_body.split(b"\n")


def run(
    *, budget: float = 2.0, progress: Callable[[str], None] | None = None
) -> tuple[list[Row], dict[tuple[str, str], float]]:
    """Measure the key cases; return the claims' rows and every median (seconds).

    "hpgfast" is the codec in use (``hpgfast.codec``): with the pure twin forced or
    no compiled core built, the table shows what that costs.
    """
    medians: dict[tuple[str, str], float] = {}
    for group, name, fn in _codec_cases(codec):
        medians[(group, name)] = _median(fn, budget)
        if progress is not None:
            progress(f"{group:<20} {name:<10} {medians[(group, name)] * 1e3:10.2f} ms")
        gc.collect()
    rows = []
    for ratio in RATIOS:
        subject = medians.get((ratio.group, ratio.subject))
        peer = medians.get((ratio.group, ratio.peer))
        if subject and peer:
            rows.append(Row(ratio, peer / subject))
    return rows, medians


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    header = ("claim", "measured", "target", "verdict")
    lines = [(r.ratio.claim, f"{r.value:.2f}x", f"{r.ratio.target:.2f}x", r.verdict) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(4)]
    out = []
    for line in [header, *lines]:
        out.append(
            f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]:>{widths[2]}}  {line[3]}"
        )
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)
