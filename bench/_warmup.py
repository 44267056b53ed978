"""A fixed, scripted warm-up: the memory a long-running sender has churned.

A fresh process has an unfragmented heap: glibc's ``malloc`` has not yet raised its
mmap threshold, CPython's small-object allocator hands out whole fresh pools in
address order, and the first big buffers come straight from the kernel. A sender
that has run for hours has none of that. ``churn()`` plays such a sender, the same
way on every run (seeded): it encodes batches of mixed sizes into 8 KiB and 1 MiB
requests, parses SEND and STATUS replies of mixed sizes, keeps the results in a
rolling window (as a journal or a report queue does) and drops the oldest, and
makes a few large allocations and frees besides (response bodies, a JSON dump).

Codec benchmarks request the ``warmed`` fixture (``conftest.py``), which runs it
once per session; ``python bench/_longrun.py`` measures the codec's ratios in a
fresh process and after it.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import hpgfast.codec
from hpgfast._sample import standard_batch, standard_send_reply, standard_status_reply

#: How many request/reply rounds the warm-up plays (a few seconds on a quiet core).
ROUNDS = 120


def churn(rounds: int = ROUNDS, seed: int = 15) -> dict[str, int]:
    """Play ``rounds`` rounds of a long-running sender; returns what it did (counts).

    The rolling window keeps the last 40 rounds' results alive, so the heap ends up
    both larger than a fresh one and full of holes of every size.
    """
    codec: Any = hpgfast.codec
    rng = random.Random(seed)
    batch = standard_batch()
    send_reply = standard_send_reply()
    status_reply = standard_status_reply()
    window: deque[Any] = deque(maxlen=40)
    counts = {"requests": 0, "replies": 0, "lines": 0, "big": 0}
    for _ in range(rounds):
        size = rng.choice((10, 100, 1000, 3000, 10_000))
        first = rng.randrange(len(batch) - size + 1)
        messages = batch[first : first + size]
        max_bytes = rng.choice((8192, 1 << 20, None))
        start, queries = 0, []
        while start < len(messages):
            query, start = codec.encode_send(messages, start=start, max_bytes=max_bytes)
            queries.append(query)
            counts["requests"] += 1
        # The replies: a slice of a standard reply, as the platform would answer.
        lines = rng.choice((10, 500, 5000, 20_000))
        cut = send_reply.find(b"\n", len(send_reply) * lines // 100_000)
        results = codec.read_send(send_reply[: cut + 1])[0]
        cut = status_reply.find(b"\n", len(status_reply) * lines // 100_000)
        statuses = codec.read_status(status_reply[: cut + 1])[0]
        counts["replies"] += 2
        counts["lines"] += len(results) + len(statuses)
        # What the sender keeps for a while: the journal's rows (a dict per message,
        # new strings), some queries, the records themselves.
        journal = {r.client_id: (r.code, r.provider_id, str(i)) for i, r in enumerate(results)}
        window.append((queries[-3:], results, statuses, journal))
        # And the odd big buffer that comes and goes: a response body, a JSON dump.
        if rng.random() < 0.2:
            big = bytearray(rng.randrange(200_000, 8_000_000))
            big[::4096] = b"x" * len(big[::4096])
            window.append(bytes(big[: len(big) // 3]))
            counts["big"] += 1
            del big
    window.clear()
    return counts


if __name__ == "__main__":
    print(churn())
