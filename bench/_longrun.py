"""The codec's ratios in this process, fresh or after the warm-up.

Run as ``python bench/_longrun.py [--warm] [row filter]``.

Prints one JSON object: per row, the ratio (peer median / hpgfast median, as in
``bench/_ratios.py``) and the minor page faults per call of each side. Subject and
peer run interleaved, call after call, so a load change on a shared machine hits
both alike; the ratio is the median of the per-round ratios. Times are the thread's
CPU time (``time.thread_time``): on a shared machine, wall time also counts the
time other processes held the core. ``bench_longrun.py``
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
    t0 = time.thread_time()
    fn()  # the result is freed inside the timing, as in pytest-benchmark's loop
    t1 = time.thread_time()
    return t1 - t0, _faults() - f0


def pair(subject: Fn, peer: Fn, rounds: int) -> dict[str, float]:
    """Interleaved rounds of subject and peer: the median per-round ratio, and faults."""
    ratios, fs, fp, ts, tp = [], [], [], [], []
    _one(subject), _one(peer)  # first calls: imports, caches
    for k in range(rounds):
        # Alternate who goes first: each call runs after the other's frees as often.
        if k % 2:
            t_p, f_p = _one(peer)
            t_s, f_s = _one(subject)
        else:
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
    # What the client passes to match_*: the ids the request sent, in order.
    sent = [r.client_id for r in codec.read_send(send)[0]]
    asked = [r.provider_id for r in codec.read_status(status)[0]]
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
        "match_send vs split": (lambda: codec.match_send(send, sent), lambda: send.split(b"\n")),
        "read_send_columns vs split": (
            lambda: codec.read_send_columns(send),
            lambda: send.split(b"\n"),
        ),
        "parse_status vs split": (lambda: codec.parse_status(status), lambda: status.split(b"\n")),
        "read_status vs split": (lambda: codec.read_status(status), lambda: status.split(b"\n")),
        "match_status vs split": (
            lambda: codec.match_status(status, asked),
            lambda: status.split(b"\n"),
        ),
        REFERENCE: (lambda: _split_and_work(status), lambda: status.split(b"\n")),
    }


#: Not hpgfast: ``split`` itself plus CPU-only work (no allocation), about as long
#: as a STATUS reader takes. Its warm/fresh shows what the warm-up does to a row
#: whose subject makes exactly ``split``'s objects and is only slower: in a fresh
#: process each call's 100,000 objects fault their memory in anew on both sides
#: (CPython hands emptied arenas back to the kernel), which is a larger share of
#: the faster side's time, so the ratio drops after the warm-up, whatever the
#: subject's own code does.
REFERENCE = "status reference vs split"


def _split_and_work(body: bytes) -> None:
    body.split(b"\n")
    for _ in range(4):
        body.count(b"9")  # CPU only: reads the body, allocates nothing


def measure(warm: bool, rounds: int = 21, only: str = "") -> dict[str, Any]:
    """All rows (or those whose name holds ``only``), after the warm-up when ``warm``."""
    out: dict[str, Any] = {"warm": warm, "implementation": hpgfast.codec.IMPLEMENTATION}
    table = rows()
    if warm:
        from _warmup import churn

        out["churn"] = churn()
    for name, (subject, peer) in table.items():
        if only not in name:
            continue
        out[name] = pair(subject, peer, rounds)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    warm = "--warm" in args
    names = [a for a in args if not a.startswith("--")]
    print(json.dumps(measure(warm, only=names[0] if names else ""), indent=1))
