"""Instruction counts (valgrind's callgrind) for the rows whose CPU-time ratios swing.

The client rows' CPU time per message swings with the machine's load: between two
requests the process sleeps in ``recv`` while the server runs, and comes back to
caches the other work has taken over, so one run of the 8 KiB row measured the same
build at 1.6x and another at 2.0x the raw-socket floor. The instructions a send
runs do not depend on load, so ``bench_counted.py`` gates those rows on them: each
transport's user-space instructions per message (``Ir``), counted in the same run
for the subject and its peers, and the gated figure is peer Ir / subject Ir.

How a send is counted: the transports are built and warmed up exactly as
``bench_client.py`` times them (``_transports.transports``), those of both groups of
a size in one process, which runs under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0``; each counted send runs inside ``window``, which calls it
through ``functools.reduce`` over two items. callgrind collects only inside that C
function (``--collect-atstart=no --toggle-collect``) and writes the counts out on
leaving it (``--dump-after``): one dump per window, start-up, imports and warm-up
left out.

Only the calling thread is counted (callgrind's collection state is per thread).
Every counted transport does its work there (``Client`` at ``concurrency=1``, the
event loop); the other thread, the sync client's deadline watchdog, wakes four
times a second whatever the client does, and under valgrind's ~50x slowdown its
wake-ups would add 300-1,000 instructions per message, varying with the machine's
load (measured: the Client's count spread 2.6% over three runs with it, 0.6%
without).

A call of ``functools.reduce`` inside a window neither toggles nor dumps (it is
counted with the window's work); one outside any window dumps a count of its own,
and an interpreter stripped of the symbol dumps none: then the counts are not one
per window, and ``windows`` raises ``NotCounted`` rather than pair them up wrongly.

Run by ``count`` (the subject process, under valgrind)::

    python bench/_counted.py {8k,1m} URL

It prints ``{"messages": N, "names": [...]}``, the windows' transports in order.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from _data import standard_batch
from _transports import AIO, CLIENT, transports

#: The C function (CPython's ``functools.reduce``) whose calls open and close a window.
MARK = "functools_reduce"
#: Messages per counted send (the first of the standard batch): at 8 KiB 2,000 make
#: 78 requests, enough that the per-request costs weigh as on the whole batch; at
#: 1 MiB the whole batch makes only four. Under valgrind everything runs ~50x
#: slower, and the imports (aiohttp's above all, 10^9 instructions) cost more than
#: the sends.
MESSAGES = {"8k": 2_000, "1m": 10_000}
SIZES = {"8k": 8192, "1m": 1024 * 1024}
T = TypeVar("T")


class NotCounted(Exception):
    """The counts cannot be had here: the reason is the message (one line)."""


class Counts(NamedTuple):
    messages: int  # messages per counted send
    instructions: dict[str, int]  # Ir of one send, by transport

    def per_message(self) -> dict[str, float]:
        return {name: ir / self.messages for name, ir in self.instructions.items()}


def valgrind() -> str | None:
    """The valgrind executable on ``PATH``, or None."""
    return shutil.which("valgrind")


def window(fn: Callable[[], T]) -> T:
    """``fn()``, counted on its own when the process runs under ``count``.

    A full collection first, outside the window: each window starts with the
    collector's counts at zero, whatever ran before it.
    """
    gc.collect()
    result: T = functools.reduce(lambda _a, _b: fn(), (None, None))
    return result


def count(
    program: Sequence[str], *, tool: str | None = None, timeout: float = 600
) -> tuple[list[int], str]:
    """Run ``python program...`` under callgrind: the Ir of each window, and its stdout.

    Raises NotCounted when valgrind is missing. The caller checks that it got one
    count per window it opened (``count_group``).
    """
    tool = tool or valgrind()
    if tool is None:
        raise NotCounted("valgrind not found on PATH")
    with tempfile.TemporaryDirectory(prefix="hpgfast-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                tool,
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--toggle-collect={MARK}",
                f"--dump-after={MARK}",
                f"--callgrind-out-file={out}",
                sys.executable,
                *program,
            ],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"the counted process failed ({done.returncode}): {done.stderr[-3000:]}"
            )
        parts = sorted(
            (int(p.name.rsplit(".", 1)[1]), p) for p in Path(tmp).glob("callgrind.out.*")
        )
        counts = [_total(p) for _, p in parts]
    return counts, done.stdout


def _total(path: Path) -> int:
    match = re.search(r"^(?:summary|totals): *(\d+)", path.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no totals in {path}")
    return int(match.group(1))


def windows(counts: Sequence[int], names: Sequence[str]) -> dict[str, int]:
    """The count of each window by name; NotCounted unless there is one per window."""
    if len(counts) != len(names):
        raise NotCounted(
            f"callgrind wrote {len(counts)} counts for {len(names)} windows: this "
            f"interpreter has no C function {MARK} (stripped?), or a window called it"
        )
    return dict(zip(names, counts))


#: The transports counted in one process per size: those of ``client-cpu-<size>``
#: and of ``aio-cpu-<size>``, each once (``aiohttp-naive`` is in both groups, and
#: ``hpgfast-sync`` is ``hpgfast``: the same ``Client``).
COUNTED = ("hpgfast", "raw-socket", "aiohttp-naive", "AsyncClient", "asyncio-floor", "floor+core")


def count_size(size: str, url: str, *, tool: str | None = None) -> dict[str, Counts]:
    """Ir of one send per transport, by group: ``client-ir-<size>``, ``aio-ir-<size>``."""
    counts, stdout = count([str(Path(__file__)), size, url], tool=tool)
    told = json.loads(stdout.strip().splitlines()[-1])
    ir = windows(counts, told["names"])
    ir["hpgfast-sync"] = ir["hpgfast"]
    messages = told["messages"]
    return {
        f"client-ir-{size}": Counts(messages, {n: ir[n] for n in CLIENT}),
        f"aio-ir-{size}": Counts(messages, {n: ir[n] for n in AIO}),
    }


# -- the counted process ---------------------------------------------------------------


class _Server(NamedTuple):
    url: str
    host: str
    port: int


def main(argv: Sequence[str]) -> int:
    size, url = argv
    host, _, port = url.split("/")[2].rpartition(":")
    batch = standard_batch(MESSAGES[size])  # the first messages of the standard batch
    runs, close = transports(_Server(url, host, int(port)), batch, SIZES[size], COUNTED)
    try:
        for run in runs.values():
            window(run)
    finally:
        close()
    print(json.dumps({"messages": len(batch), "names": list(runs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
