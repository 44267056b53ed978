"""The codec's ratios in this process, fresh or after the warm-up: ``python bench/_longrun.py [--warm]``.

Prints one JSON object: per row, the ratio (peer median / hpgfast median, as in
``hpgfast/_ratios.py``) and the minor page faults per call of each side. Subject and
peer run interleaved, call after call, so a load change on a shared machine hits
both alike; the ratio is the median of the per-round ratios. ``bench_longrun.py``
runs this script twice, each in a new process (fresh, then ``--warm``).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).parent))

import hpgfast.codec
from _data import query_pairs, standard_batch, standard_send_reply, standard_status_reply

Fn = Callable[[], Any]


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _one(fn: Fn) -> tuple[float, int]:
    f0 = _faults()
    t0 = time.perf_counter()
    fn()  # the result is freed inside the timing, as in pytest-benchmark's loop
    t1 = time.perf_counter()
    return t1 - t0, _faults() - f0


def pair(subject: Fn, peer: Fn, rounds: int) -> dict[str, float]:
    """Interleaved rounds of subject and peer: the median per-round ratio, and faults."""
    ratios, fs, fp, ts, tp = [], [], [], [], []
    _one(subject), _one(peer)  # first calls: imports, caches
    for _ in range(rounds):
        t_s, f_s = _one(subject)
        t_p, f_p = _one(peer)
        ratios.append(t_p / t_s)
        ts.append(t_s)
        tp.append(t_p)
        fs.append(f_s)
        fp.append(f_p)
    return {
        "ratio": statistics.median(ratios),
        "subject_us": statistics.median(ts) * 1e6,
        "peer_us": statistics.median(tp) * 1e6,
        "subject_faults": statistics.median(fs),
        "peer_faults": statistics.median(fp),
    }


def rows() -> dict[str, tuple[Fn, Fn]]:
    """Each row of ``_ratios.py`` this probe measures: (subject, peer)."""
    from yarl._quoting import _Quoter

    codec: Any = hpgfast.codec
    batch = standard_batch()
    pairs = query_pairs(batch)
    quoter = _Quoter(safe="", qs=False)
    send = standard_send_reply()
    status = standard_status_reply()
    return {
        "encode_send vs urlencode": (
            lambda: codec.encode_send(batch),
            lambda: urlencode(pairs, False, "", "utf-8", "strict", quote),
        ),
        "encode_send vs yarl": (
            lambda: codec.encode_send(batch),
            lambda: "&".join([quoter(n) + "=" + quoter(v) for n, v in pairs]),
        ),
        "parse_send vs split": (lambda: codec.parse_send(send), lambda: send.split(b"\n")),
        "read_send vs split": (lambda: codec.read_send(send), lambda: send.split(b"\n")),
        "parse_status vs split": (lambda: codec.parse_status(status), lambda: status.split(b"\n")),
        "read_status vs split": (lambda: codec.read_status(status), lambda: status.split(b"\n")),
    }


def measure(warm: bool, rounds: int = 15) -> dict[str, Any]:
    """All rows, after the warm-up when ``warm``."""
    out: dict[str, Any] = {"warm": warm, "implementation": hpgfast.codec.IMPLEMENTATION}
    table = rows()
    if warm:
        from _warmup import churn

        out["churn"] = churn()
    for name, (subject, peer) in table.items():
        out[name] = pair(subject, peer, rounds)
    return out


if __name__ == "__main__":
    warm = "--warm" in sys.argv[1:]
    print(json.dumps(measure(warm), indent=1))
