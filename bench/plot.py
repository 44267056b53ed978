"""Plot encode and parse throughput against batch size, hpgfast beside its peers.

    python bench/plot.py                 # writes docs/throughput.png, prints the table
    python bench/plot.py --max 100000    # a quicker run, up to 10^5

Each point is the median of several runs (the cyclic GC on, as users run it), in
messages (or reply lines) per second. Needs matplotlib: pip install '.[bench]'.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).parent))

from _data import query_pairs, standard_batch, standard_status_reply
from hpgfast import _codec_py


def _median_seconds(fn: Callable[[], Any], budget: float = 1.5) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 25):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


Cases = dict[str, Callable[[], Any]]


def _cases(n: int, compiled: Any, quoter: Any) -> tuple[Cases, Cases]:
    batch = standard_batch(n)
    pairs = query_pairs(batch)
    body = standard_status_reply(n)
    encoders: Cases = {
        "hpgfast (compiled)": lambda: compiled.encode_send(batch),
        "hpgfast (pure twin)": lambda: _codec_py.encode_send(batch),
        "urllib.parse.urlencode": lambda: urlencode(pairs, quote_via=quote),
        "yarl quoter per value": lambda: "&".join([quoter(k) + "=" + quoter(v) for k, v in pairs]),
    }
    parsers: Cases = {
        "hpgfast (compiled)": lambda: compiled.parse_status(body),
        "hpgfast (pure twin)": lambda: _codec_py.parse_status(body),
        "bytes.split (floor)": lambda: body.split(b"\n"),
    }
    return encoders, parsers


def measure(sizes: list[int]) -> dict[str, dict[str, list[float]]]:
    from yarl._quoting import _Quoter

    compiled: Any = importlib.import_module("hpgfast._codec_c")
    quoter = _Quoter(safe="", qs=False)
    results: dict[str, dict[str, list[float]]] = {"encode": {}, "parse_status": {}}
    for n in sizes:
        encoders, parsers = _cases(n, compiled, quoter)
        for job, cases in (("encode", encoders), ("parse_status", parsers)):
            for name, fn in cases.items():
                seconds = _median_seconds(fn)
                results[job].setdefault(name, []).append(n / seconds)
                print(f"{job:<13} {name:<24} n={n:>8,}  {n / seconds:>14,.0f} per s", flush=True)
        gc.collect()
    return results


def plot(sizes: list[int], results: dict[str, dict[str, list[float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    titles = {"encode": "encode_send: messages/s", "parse_status": "parse_status: lines/s"}
    for ax, (job, cases) in zip(axes, results.items()):
        for name, rates in cases.items():
            style = "-o" if name.startswith("hpgfast (compiled)") else "--s"
            ax.plot(sizes, rates, style, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size (messages / reply lines)")
        ax.set_title(titles[job])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    machine = f"{platform.machine()}, Python {platform.python_version()}, GC on"
    fig.suptitle(f"hpgfast throughput against batch size, one call per batch ({machine})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=10**6, help="largest batch size")
    docs = Path(__file__).resolve().parent.parent / "docs"
    parser.add_argument("--out", type=Path, default=docs / "throughput.png")
    args = parser.parse_args()
    sizes = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= args.max]
    plot(sizes, measure(sizes), args.out)


if __name__ == "__main__":
    main()
