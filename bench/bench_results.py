"""What the results of a large send cost: the default list against ``compact=True``.

Run: ``python -m pytest bench/bench_results.py -s`` (``-k memory``: the bytes only).

- **Memory** (``send-results-1m``): bytes per message the results of a
  1,000,000-message send hold above the messages once ``send()`` returned, and the
  most the send held above them while it ran, traced by tracemalloc
  (``hpgfast._bench.results_memory``: the clients' own code path through the
  sans-IO core, 8 KiB requests, the clientIds hpgfast makes, 10-digit provider
  ids; no socket, so nothing of a transport's is counted). Target: at most 150
  bytes per message with ``compact=True``. Row ``compact-20-digit-ids``: the same
  with the 20-digit provider ids a platform gives past 2**63; rows
  ``list-part-count`` and ``compact-part-count``: a field the platform adds to each
  line (``ok;cid;pid;2``, a part count, each record's ``extra``).
- **Memory over HTTP** (``send-results-emulator-1m``, ``-k emulator``): the same
  figure for a real ``Client.send()`` of 1,000,000 messages against an emulator in
  a child process (its ledger is not this process's): the core's figure plus what
  a transport allocates and keeps, a few kilobytes in all.
- **CPU** (``send-results-cpu-200k``, ``-k cpu``): process CPU per message of the
  same send of 200,000 messages through the core, its results then dropped (the
  replies made in the loop, the same for both), the list and the compact form in
  interleaved rounds: what packing the results costs.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tracemalloc
from collections.abc import Callable

import pytest

from hpgfast import Client, Message
from hpgfast._bench import (
    LOGIN,
    PASSWORD,
    EmulatorProcess,
    core_exchange,
    core_send,
    cpu,
    results_memory,
)

#: The promise: the results of a large send, compact, above the messages.
COMPACT_TARGET = 150.0
CPU_ROUNDS = 5


@pytest.mark.slow
def bench_results_memory_1m(record: Callable[[str, str, float], None]) -> None:
    total = 1_000_000
    lines = []
    for compact, name, first, extra in (
        (False, "list", 7_000_000_000, None),
        (True, "compact", 7_000_000_000, None),
        (True, "compact-20-digit-ids", 10**19, None),
        (False, "list-part-count", 7_000_000_000, "2"),
        (True, "compact-part-count", 7_000_000_000, "2"),
    ):
        held, peak = results_memory(
            total, compact=compact, first_provider_id=first, send_extra=extra
        )
        record("send-results-1m", name, held)
        record("send-results-1m", f"{name}-peak", peak)
        lines.append(
            f"results of {total:,} messages, {name}: {held:.1f} bytes/message held "
            f"after send(), {peak:.1f} at the peak of the send"
        )
        if compact:
            assert held <= COMPACT_TARGET, lines[-1]
    sys.stdout.write("\n" + "\n".join(lines) + "\n")


@pytest.mark.slow
def bench_results_memory_emulator_1m(record: Callable[[str, str, float], None]) -> None:
    total = 1_000_000
    messages = [Message(f"7903{i:07d}", f"results #{i}", "Shop") for i in range(total)]
    emulator = EmulatorProcess()
    lines = []
    try:
        for compact, name in ((False, "list"), (True, "compact")):
            with Client(emulator.url, LOGIN, PASSWORD) as client:
                gc.collect()
                tracemalloc.start()
                try:
                    base = tracemalloc.get_traced_memory()[0]
                    results = client.send(messages, compact=compact)
                    gc.collect()
                    held = (tracemalloc.get_traced_memory()[0] - base) / total
                finally:
                    tracemalloc.stop()
            assert len(results) == total and results[0].ok and results[-1].ok
            del results
            record("send-results-emulator-1m", name, held)
            lines.append(f"Client.send() of {total:,} messages, {name}: {held:.1f} bytes/message")
            if compact:
                assert held <= COMPACT_TARGET, lines[-1]
    finally:
        emulator.close()
    sys.stdout.write("\n" + "\n".join(lines) + "\n")


def bench_results_cpu_200k(record: Callable[[str, str, float], None]) -> None:
    total = 200_000
    messages = [Message(f"7903{i:07d}", f"results #{i}", "Shop") for i in range(total)]
    exchange = core_exchange()
    samples: dict[str, list[float]] = {"list": [], "compact": []}
    for _ in range(CPU_ROUNDS):
        for compact, name in ((False, "list"), (True, "compact")):
            gc.collect()
            start = cpu()
            results = core_send(exchange, messages, compact=compact)
            # Dropped inside the timing: the list's records are freed when the
            # caller drops it, the compact form's as each request is packed.
            del results
            samples[name].append((cpu() - start) / total)
    for name, values in samples.items():
        record("send-results-cpu-200k", name, statistics.median(values))
    listed = statistics.median(samples["list"]) * 1e6
    compact = statistics.median(samples["compact"]) * 1e6
    sys.stdout.write(
        f"\nsend of {total:,} through the core: list {listed:.2f} us/message, "
        f"compact {compact:.2f} us/message ({compact / listed:.2f}x)\n"
    )
