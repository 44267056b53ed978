"""Instructions per message of the client rows' transports, counted by callgrind.

Run: ``python -m pytest bench/bench_counted.py -s`` (about 30 s on two idle cores).

``bench_client.py`` times ``Client`` and ``AsyncClient`` against their peers in CPU
time per message, which the machine's load moves by tens of percent from run to run;
the instructions a send runs it does not. So the CI gate holds these rows to their
instruction counts (``bench/_ratios.py``: the rows whose ``replaces`` names the time
group), and the time ratios are printed beside them. ``_counted.py`` says how a send
is counted. The transports of a size run in one process under valgrind (the two
sizes' at once), against one emulator in its own process, not counted.

Recorded values (``record``): instructions (Ir) per message in ``client-ir-8k``,
``client-ir-1m`` (``hpgfast``, ``raw-socket``, ``aiohttp-naive``) and ``aio-ir-8k``,
``aio-ir-1m`` (``AsyncClient``, ``asyncio-floor``, ``aiohttp-naive``, ``floor+core``,
``hpgfast-sync``), the names of the time groups ``client-cpu-*`` and ``aio-cpu-*``.

Where valgrind is missing, one line says so and the time rows gate instead
(``HPGFAST_REQUIRE_VALGRIND=1``, which CI sets, makes that a failure).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from _counted import MESSAGES, Counts, NotCounted, count_size, valgrind
from hpgfast._bench import EmulatorProcess


def fallback(reason: str) -> str:
    """The one line a run without counts prints."""
    return (
        f"instruction counts: {reason}; the client and AsyncClient rows gate on CPU time "
        "instead (bench/bench_counted.py)"
    )


def bench_instructions(
    record: Callable[[str, str, float], None], note: Callable[[str], None]
) -> None:
    try:
        counted = _count_all()
    except NotCounted as exc:
        if os.environ.get("HPGFAST_REQUIRE_VALGRIND") == "1":
            pytest.fail(f"HPGFAST_REQUIRE_VALGRIND=1, yet no instruction counts: {exc}")
        note(fallback(str(exc)))
        return
    for group, counts in counted.items():
        per_message = counts.per_message()
        for name, value in per_message.items():
            record(group, name, value)
        line = (
            f"[{group}] instructions per message (callgrind, {counts.messages:,} messages): "
            + ", ".join(f"{name} {value:,.0f}" for name, value in per_message.items())
        )
        print("\n" + line)
        note(line)


def _count_all() -> dict[str, Counts]:
    tool = valgrind()
    if tool is None:
        raise NotCounted("valgrind not found on PATH")
    # Request lines up to 2 MiB, as bench_client's emulator: the peers' encodings are
    # longer than hpgfast's.
    emulator = EmulatorProcess("--max-request-line", str(2 * 1024 * 1024))
    try:
        # One process per size, both at once (the 1 MiB one is the longer).
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(count_size, size, emulator.url, tool=tool) for size in MESSAGES]
            counted = {g: c for future in futures for g, c in future.result().items()}
    finally:
        emulator.close()
    return counted
