"""``hpgfast bench``: the suite's key cases, on the user's own machine, in under a minute.

The codec cases, and the client end to end (client CPU per message against an
emulator child process, beside a ``requests`` loop when requests is installed). The
emulator process and the peers here are also what ``bench/`` imports.

Strategy: the same seeded data as ``bench/`` (``hpgfast._sample``), and the claims
this command measures (``CLAIMS``, with their targets) written here, where the
installed command finds them; ``bench/_ratios.py``, the full table of the benchmark
suite with the CI gate's floors, reads them from here and is not installed. Timed
with ``time.perf_counter`` medians instead of pytest-benchmark so that the command
needs nothing beyond hpgfast itself. Peers that are not installed (yarl, requests)
are left out and named (``missing_peers``). The cyclic GC stays on.
"""

from __future__ import annotations

import gc
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Optional
from urllib.parse import quote, urlencode

from . import _codec_py, codec
from ._records import Message
from ._sample import query_pairs, standard_batch, standard_send_reply, standard_status_reply
from ._wire import ID_MAX_LENGTH, ID_SUFFIX_LENGTH
from .codec import encode_params, encode_send

__all__ = [
    "CLAIMS", "OPTIONAL_PEERS", "SINGLE_RUN_JUDGED", "Claim", "Row", "format_table",
    "missing_peers", "run",
]


class Claim(NamedTuple):
    """A ratio hpgfast promises: ``peer median / subject median`` of one run.

    "10x faster" is 10.0 and "within 5x of the floor" is 0.2.
    """

    group: str  # the case's group (the pytest-benchmark group in bench/)
    subject: str  # what is claimed to be fast
    peer: str  # what it is compared with
    target: float  # the promise: peer/subject at least this
    claim: str  # how the table words it


#: The claims this command measures. bench/ measures them too, with more peers;
#: docs/performance.md gives the figures.
CLAIMS: tuple[Claim, ...] = (
    Claim("encode-10k", "hpgfast", "urlencode", 30.0, "encode_send vs urllib.parse.urlencode"),
    Claim("encode-10k", "hpgfast", "yarl", 5.0, "encode_send vs yarl's quoter per value"),
    Claim("encode-10k", "hpgfast", "pure", 10.0, "encode_send vs the pure twin"),
    Claim("parse-status-100k", "hpgfast", "split", 0.2, "parse_status vs bytes.split (floor)"),
    Claim("parse-status-100k", "hpgfast", "pure", 10.0, "parse_status vs the pure twin"),
    Claim("parse-send-100k", "hpgfast", "split", 1 / 3, "parse_send vs bytes.split (floor)"),
    Claim("parse-send-100k", "hpgfast", "pure", 10.0, "parse_send vs the pure twin"),
    Claim("parse-send-100k", "read", "split", 1 / 3, "read_send vs bytes.split (floor)"),
    Claim("parse-status-100k", "read", "split", 0.25, "read_status vs bytes.split (floor)"),
    Claim("parse-send-100k", "columns", "split", 1.0, "read_send_columns vs bytes.split"),
    Claim("client-cpu-8k", "hpgfast", "requests", 8.0, "client CPU/msg vs requests, 8 KiB"),
)

#: The claims this command judges (its exit status), as (group, subject, peer):
#: those a single run, each case timed back to back as the command does, meets by
#: twice the target or more (docs/performance.md): encode_send and parse_status
#: against the pure twin (34x and 25x against 10x) and the client's CPU against
#: requests (16x against 8x). They fail when the compiled path is lost. The others
#: are shown as information: met only in interleaved runs (parse_send, read_send
#: against split: 8-9x its time back to back against 3x; yarl 3.3x against 5x in a
#: wall-clock run), or by a margin one run on a busy machine erases (urlencode
#: 32.6x against 30x, parse_status 4.2x split's time against 5x, read_status 2.3x
#: against 4x, the columns 0.74x in one short pass against 1x, parse_send 16x the
#: pure twin against 10x and 8.5x in a short run on the loaded machine).
SINGLE_RUN_JUDGED: frozenset[tuple[str, str, str]] = frozenset({
    ("encode-10k", "hpgfast", "pure"),
    ("parse-status-100k", "hpgfast", "pure"),
    ("client-cpu-8k", "hpgfast", "requests"),
})

#: Peers measured only when their package is installed: (group, peer) -> package.
OPTIONAL_PEERS = {
    ("encode-10k", "yarl"): "yarl",
    ("client-cpu-8k", "requests"): "requests",
}


class Row(NamedTuple):
    """One claim as measured here: ``value`` is the peer/hpgfast ratio of medians."""

    ratio: Claim
    value: float

    @property
    def judged(self) -> bool:
        """Whether this run can judge the claim (``SINGLE_RUN_JUDGED``)."""
        r = self.ratio
        return bool(r.target) and (r.group, r.subject, r.peer) in SINGLE_RUN_JUDGED

    @property
    def met(self) -> bool:
        return self.value >= self.ratio.target

    @property
    def verdict(self) -> str:
        if not self.ratio.target:
            return "reported"
        if not self.judged:
            # Met in interleaved runs, or by a margin a single run on a busy
            # machine cannot resolve: shown, not judged.
            return "information (" + ("meets" if self.met else "under") + " target here)"
        return "meets target" if self.met else "under target"


def _median(fn: Callable[[], Any], budget: float) -> float:
    fn()  # warm up: first-touch page faults, lazily built caches
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _codec_cases(hpg: Any) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    batch = standard_batch()
    pairs = query_pairs(batch)
    status_body = standard_status_reply()
    send_body = standard_send_reply()
    yield "encode-10k", "hpgfast", lambda: hpg.encode_send(batch)
    yield "encode-10k", "pure", lambda: _codec_py.encode_send(batch)
    yield "encode-10k", "urlencode", lambda: urlencode(pairs, quote_via=quote)
    try:
        from yarl._quoting import _Quoter  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        quoter = _Quoter(safe="", qs=False)

        def yarl_encode() -> str:
            return "&".join([quoter(k) + "=" + quoter(v) for k, v in pairs])

        yield "encode-10k", "yarl", yarl_encode
    yield "parse-status-100k", "hpgfast", lambda: hpg.parse_status(status_body)
    yield "parse-status-100k", "pure", lambda: _codec_py.parse_status(status_body)
    yield "parse-status-100k", "split", lambda: status_body.split(b"\n")
    yield "parse-status-100k", "read", lambda: hpg.read_status(status_body)
    yield "parse-send-100k", "hpgfast", lambda: hpg.parse_send(send_body)
    yield "parse-send-100k", "pure", lambda: _codec_py.parse_send(send_body)
    yield "parse-send-100k", "split", lambda: send_body.split(b"\n")
    yield "parse-send-100k", "read", lambda: hpg.read_send(send_body)
    yield "parse-send-100k", "columns", lambda: hpg.read_send_columns(send_body)


# -- the client end to end, as bench/bench_client.py measures it -----------------

LOGIN, PASSWORD = "CLIENT", "P@ssw0rd"


def cpu() -> float:
    """User + system CPU seconds of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class EmulatorProcess:
    """``python -m hpgfast.emulator`` in a child process; ``.url`` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hpgfast.emulator", "--port", "0", "--speed", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError("the emulator did not start")
        host_port = self.url.split("/")[2]
        host, _, port = host_port.rpartition(":")
        self.host, self.port = host, int(port)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


#: A clientId prefix as long as the ones ``Client`` makes (``core._ids``): the
#: splitting depends only on the encoded lengths, so any such prefix gives the
#: client's own request boundaries.
_ID_PREFIX = "0" * (ID_MAX_LENGTH - ID_SUFFIX_LENGTH)


def bounds(
    batch: Sequence[Message], max_request_bytes: int, url: str, *, client_ids: bool = True
) -> list[tuple[int, int]]:
    """hpgfast's request splitting, which every peer reuses: (start, end) per request.

    The boundaries ``Client`` (default settings) really uses: each request holds the
    messages it holds with its own clientIds, so the peers make as many requests
    as hpgfast (``client_ids=False``: the splitting without them).
    """
    path = "/" + url.split("/", 3)[3] + "send"
    head = f"{path}?" + encode_params([("login", LOGIN), ("password", PASSWORD)]).decode() + "&"
    max_bytes = max_request_bytes - len("GET  HTTP/1.1") - len(head)
    prefix = _ID_PREFIX if client_ids else None
    out = []
    start = 0
    while start < len(batch):
        _, end = encode_send(batch, start=start, max_bytes=max_bytes, id_prefix=prefix)
        out.append((start, end))
        start = end
    return out


def requests_peer(url: str, spans: list[tuple[int, int]]) -> Callable[[Sequence[Message]], int]:
    """A SEND loop written the way users write one with ``requests``: a params list."""
    import requests  # a peer, not a dependency: only the benchmarks import it

    session = requests.Session()

    def send(batch: Sequence[Message]) -> int:
        accepted = 0
        for start, end in spans:
            params: list[tuple[str, Any]] = [("login", LOGIN), ("password", PASSWORD)]
            for i, m in enumerate(batch[start:end]):
                params += [
                    (f"subject[{i}]", m.subject),
                    (f"address[{i}]", m.address),
                    (f"text[{i}]", m.text),
                ]
            reply = session.get(url + "send", params=params, timeout=30)
            reply.raise_for_status()
            for line in reply.text.splitlines():
                code, _client_id, _provider_id = line.split(";")
                accepted += code == "ok"
        return accepted

    send.close = session.close  # type: ignore[attr-defined]
    return send


def cpu_per_message(
    send: Callable[[Sequence[Message]], Any], batch: Sequence[Message], rounds: int = 3
) -> float:
    """Median client-process CPU seconds per message of ``send(batch)``."""
    samples = []
    for _ in range(rounds):
        before = cpu()
        send(batch)
        samples.append((cpu() - before) / len(batch))
    return statistics.median(samples)




def _client_case() -> Iterator[tuple[str, float]]:
    """Client CPU per message, 8 KiB requests, against an emulator child process:
    hpgfast's Client, then a ``requests`` loop when requests is installed."""
    from .client import Client

    batch = standard_batch()
    emulator = EmulatorProcess()
    try:
        with Client(emulator.url, LOGIN, PASSWORD) as client:
            client.send(batch)  # connections open, caches warm
            yield "hpgfast", cpu_per_message(client.send, batch)
        try:
            import requests  # noqa: F401
        except ImportError:
            return
        send = requests_peer(emulator.url, bounds(batch, 8192, emulator.url))
        try:
            send(batch)
            yield "requests", cpu_per_message(send, batch)
        finally:
            send.close()  # type: ignore[attr-defined]
    finally:
        emulator.close()


def run(
    *, budget: float = 2.0, progress: Callable[[str], None] | None = None
) -> tuple[list[Row], dict[tuple[str, str], float]]:
    """Measure the key cases; return the claims' rows and every median (seconds).

    "hpgfast" is the codec in use (``hpgfast.codec``): with the pure twin forced or
    no compiled core built, the table shows what that costs.
    """
    medians: dict[tuple[str, str], float] = {}
    for group, name, fn in _codec_cases(codec):
        medians[(group, name)] = _median(fn, budget)
        if progress is not None:
            progress(f"{group:<20} {name:<10} {medians[(group, name)] * 1e3:10.2f} ms")
        gc.collect()
    for name, seconds in _client_case():
        medians[("client-cpu-8k", name)] = seconds
        if progress is not None:
            progress(f"{'client-cpu-8k':<20} {name:<10} {seconds * 1e6:10.2f} us/msg")
    rows = []
    for ratio in CLAIMS:
        subject = medians.get((ratio.group, ratio.subject))
        peer = medians.get((ratio.group, ratio.peer))
        if subject and peer:
            rows.append(Row(ratio, peer / subject))
    return rows, medians


def missing_peers(medians: dict[tuple[str, str], float]) -> list[str]:
    """The packages of optional peers that were not measured (not installed)."""
    return sorted({pkg for key, pkg in OPTIONAL_PEERS.items() if key not in medians})


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    header = ("claim", "measured", "target", "verdict")
    lines = [(r.ratio.claim, f"{r.value:.2f}x", f"{r.ratio.target:.2f}x", r.verdict) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(4)]
    out = []
    for line in [header, *lines]:
        out.append(
            f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]:>{widths[2]}}  {line[3]}"
        )
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


# -- what the results of a send hold in memory ----------------------------------------


def core_exchange() -> Any:
    """A ``core.Exchange`` with ``Client``'s default settings (8 KiB requests, the
    clientIds it makes), for ``core_send``: no socket is ever opened."""
    from ._settings import Settings
    from .core import Exchange

    return Exchange(Settings("http://127.0.0.1:9/CLIENT/connector/", LOGIN, PASSWORD))


def core_send(
    exchange: Any,
    messages: Sequence[Message],
    *,
    compact: bool,
    first_provider_id: int = 7_000_000_000,
    send_extra: Optional[str] = None,
) -> Any:
    """What ``send(messages, compact=compact)`` returns, through the sans-IO core
    alone: the batch planned as the clients plan it, each request handed the reply
    that accepts every message, with consecutive provider ids from
    ``first_provider_id`` (10 digits; 10**19: the platform's 20) and, with
    ``send_extra``, that field after each (``ok;cid;pid;2``: a part count)."""
    from .core import SEND, Reply

    batch = exchange.batch(SEND, messages, None, compact=compact)
    while (request := batch.next(0.0)) is not None:
        batch.begin_line(request, 0.0)
        first = first_provider_id + request.start
        tail = "" if send_extra is None else ";" + send_extra
        body = "".join(f"ok;{cid};{first + j}{tail}\n" for j, cid in enumerate(request.ids))
        batch.report(request, Reply(200, body.encode()), 0.0)
    return batch.finish()


def results_memory(
    total: int,
    *,
    compact: bool,
    first_provider_id: int = 7_000_000_000,
    send_extra: Optional[str] = None,
) -> tuple[float, float]:
    """Bytes per message the results of a ``total``-message send hold above the
    messages, and the most the send held above them while it ran (tracemalloc).

    The clients' own code path without a socket (``core_send``; its provider ids
    from ``first_provider_id``, ``send_extra`` after each). The messages are
    made before tracing starts; the batch is gone before the figure is read, as it
    is when ``send()`` returns.
    """
    import gc
    import tracemalloc

    messages = [Message(f"7903{i:07d}", f"results #{i}", "Shop") for i in range(total)]
    exchange = core_exchange()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        results = core_send(
            exchange,
            messages,
            compact=compact,
            first_provider_id=first_provider_id,
            send_extra=send_extra,
        )
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(results) == total and results[0].ok and results[-1].ok
    return (held - base) / total, (peak - base) / total
