"""Speed that holds in a long-running process: the codec's ratios fresh and warmed up.

``_longrun.py`` runs twice, each time in a new process: once fresh, once after
``_warmup.churn()`` (the heap of a long-running sender). Each row's ratio (peer /
hpgfast, subject and peer interleaved, CPU time of the thread) is printed for both,
and recorded as ``longrun-<row>`` so that ``bench/_ratios.py`` holds the warmed-up
ratio to within 1.3x of the fresh one (``warm`` vs ``fresh``: warmed-up ratio over
fresh ratio). hpgfast's own CPU time per call is recorded too
(``longrun-time-<row>``: fresh time over warmed-up time), as a ratio can also move
because its peer's time does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _longrun import REFERENCE
from _ratios import LONGRUN_ROWS

PROBE = Path(__file__).parent / "_longrun.py"

#: The rows whose warm/fresh ratio is recorded (group ``longrun-<key>``).
ROWS = {row: key for row, key, *_ in LONGRUN_ROWS}


def _probe(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(PROBE), *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def bench_longrun_ratios(
    record: Callable[[str, str, float], None], note: Callable[[str], None]
) -> None:
    fresh = _probe()
    warm = _probe("--warm")
    assert fresh["implementation"] == warm["implementation"]
    note("")
    note("codec ratios (peer / hpgfast, CPU time), fresh process vs after the warm-up:")
    note(f"{'row':<30} {'fresh':>7} {'warm':>7} {'warm/fresh':>10}  faults/call fresh, warm")
    for row, key in ROWS.items():
        f, w = fresh[row], warm[row]
        note(
            f"{row:<30} {f['ratio']:>7.2f} {w['ratio']:>7.2f} {w['ratio'] / f['ratio']:>10.2f}"
            f"  {f['subject_faults']:.0f}/{f['peer_faults']:.0f},"
            f" {w['subject_faults']:.0f}/{w['peer_faults']:.0f}"
        )
        # Recorded as costs (1 / ratio), so that _ratios' peer/subject of the pair
        # ("fresh" over "warm") is the warmed-up ratio over the fresh one.
        record(f"longrun-{key}", "fresh", 1 / f["ratio"])
        record(f"longrun-{key}", "warm", 1 / w["ratio"])
        # And hpgfast's own CPU time per call, fresh over warmed up: a ratio can
        # move because its peer does (split page-faults in a fresh process only).
        record(f"longrun-time-{key}", "fresh", f["subject_us"])
        record(f"longrun-time-{key}", "warm", w["subject_us"])
    # The reference row (not hpgfast; see _longrun.REFERENCE): reported beside the
    # STATUS rows, whose peer moves the same way.
    f, w = fresh[REFERENCE], warm[REFERENCE]
    note(
        f"{'split + CPU work (reference)':<30} {f['ratio']:>7.2f} {w['ratio']:>7.2f}"
        f" {w['ratio'] / f['ratio']:>10.2f}  {f['subject_faults']:.0f}/{f['peer_faults']:.0f},"
        f" {w['subject_faults']:.0f}/{w['peer_faults']:.0f}"
    )
    record("longrun-reference", "fresh", 1 / f["ratio"])
    record("longrun-reference", "warm", 1 / w["ratio"])
    note("")
    note("hpgfast's own CPU time per call (us), fresh process vs after the warm-up:")
    note(f"{'row':<30} {'fresh':>9} {'warm':>9} {'warm/fresh':>10}")
    for row in ROWS:
        f, w = fresh[row], warm[row]
        note(
            f"{row:<30} {f['subject_us']:>9.0f} {w['subject_us']:>9.0f}"
            f" {w['subject_us'] / f['subject_us']:>10.2f}"
        )
