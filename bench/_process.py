"""Running a benchmark's side as a process of its own: its CPU, wall time, instructions.

Shared by the command-line benchmarks (``bench_cli_send``, ``bench_journal_cpu``,
``bench_journal_wall``), whose yardstick is the same user's script
(``USER_SCRIPT``: the ``csv`` module, ``Message``s, ``Client.send`` 5,000 at a time).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

#: What a user would otherwise write: run as ``python USER_SCRIPT URL LOGIN CSV``.
USER_SCRIPT = Path(__file__).with_name("_user_send.py")


def run_cpu(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Whole-process CPU seconds (user + sys, from ``os.wait4``) and wall seconds of
    one run of ``command``; a failed run raises with its standard error."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({proc.returncode}): {err.decode()}")
    return usage.ru_utime + usage.ru_stime, wall


def run_instructions(command: list[str], env: dict[str, str], out: Path) -> int:
    """Total instructions (callgrind's Ir) of one run of ``command``."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind of {command[:4]} failed: {done.stderr.decode()[-2000:]}")
    found = re.search(rb"^(?:summary|totals): (\d+)", out.read_bytes(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no total in {out}")
    return int(found.group(1))
