"""Speed that holds in a long-running process: the codec's ratios fresh and warmed up.

``_longrun.py`` runs twice, each time in a new process: once fresh, once after
``_warmup.churn()`` (the heap of a long-running sender). Each row's ratio (peer /
hpgfast, subject and peer interleaved, CPU time of the thread) is printed for both,
and recorded as ``longrun-<row>`` so that ``hpgfast/_ratios.py`` holds the warmed-up
ratio to within 1.3x of the fresh one (``warm`` vs ``fresh``: warmed-up ratio over
fresh ratio).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROBE = Path(__file__).parent / "_longrun.py"

#: The rows whose warm/fresh ratio is recorded (group ``longrun-<key>``).
ROWS = {
    "encode_send vs urlencode": "encode-urlencode",
    "encode_send vs yarl": "encode-yarl",
    "parse_send vs split": "parse-send",
    "read_send vs split": "read-send",
    "read_send_columns vs split": "read-send-columns",
    "parse_status vs split": "parse-status",
    "read_status vs split": "read-status",
}


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
