"""The ratios hpgfast promises, and the floors the CI gate holds them to.

``bench/conftest.py`` prints this table at the end of a run and, with ``--gate``
(``python -m pytest bench -m "not slow" --gate`` in CI), fails the run when a ratio
falls under its floor. Only the benchmarks read it, so it lives with them, outside
the wheel.

Each ratio is ``peer median / subject median`` from the same run, so "10x faster" is
10.0 and "within 5x of the floor" is 0.2. The client rows are gated on instruction
counts (callgrind, ``bench_counted.py``): their CPU-time ratios swing with the
machine's load, and are printed beside the counts, gated only where valgrind is
missing (``_gate.py``). ``target`` is the claim (docs/performance.md
quotes it); ``floor`` is the CI gate, set well under the target so that a noisy
machine does not fail it, but a lost compiled path or a per-byte Python loop does.

The claims ``hpgfast bench`` also measures on a user's machine are
``hpgfast._bench.CLAIMS``, which the command needs at run time: their target and
wording are taken from there (``_claim``), so that each is written once, and this
file adds their floors. A claim of that table without a row here fails the import.
"""

from __future__ import annotations

from typing import NamedTuple

from hpgfast._bench import CLAIMS


class Ratio(NamedTuple):
    group: str  # the pytest-benchmark group both sides ran in
    subject: str  # what is claimed to be fast
    peer: str  # what it is compared with
    target: float  # the promise: peer/subject at least this (0: reported, not promised)
    floor: float  # the CI gate: peer/subject below this fails the run
    claim: str  # how docs/performance.md and the printed table word it
    #: An instruction-count row (bench_counted.py): the CPU-time group whose row of the
    #: same subject and peer it gates in place of, when both were measured in the run.
    replaces: str = ""


_COMMAND_CLAIMS = {(c.group, c.subject, c.peer): c for c in CLAIMS}


def _claim(group: str, subject: str, peer: str, floor: float) -> Ratio:
    """A claim ``hpgfast bench`` measures too, with the gate's floor for it."""
    c = _COMMAND_CLAIMS[(group, subject, peer)]
    return Ratio(group, subject, peer, c.target, floor, c.claim)


#: The rows of ``bench/bench_longrun.py``: (the row's name in ``bench/_longrun.py``,
#: its key in the groups below, the hpgfast function it times, or "" where another
#: row times the same one, and the gate's floor on its warm/fresh ratio).
#: The columns' and the STATUS rows' floors are lower: their peer, bytes.split,
#: page-faults 1,250-1,700 times a call in a fresh process and never after the
#: warm-up, so their ratios drop while hpgfast's own time holds (0.35 is under the
#: 0.55-0.83 the STATUS rows measured; the own-time rows keep 0.55).
LONGRUN_ROWS: tuple[tuple[str, str, str, float], ...] = (
    ("encode_send vs urlencode", "encode-urlencode", "encode_send", 0.55),
    ("encode_send vs yarl", "encode-yarl", "", 0.55),
    ("parse_send vs split", "parse-send", "parse_send", 0.55),
    ("read_send vs split", "read-send", "read_send", 0.55),
    ("match_send vs split", "match-send", "match_send", 0.55),
    ("read_send_columns vs split", "read-send-columns", "read_send_columns", 0.35),
    ("parse_status vs split", "parse-status", "parse_status", 0.35),
    ("read_status vs split", "read-status", "read_status", 0.35),
    ("match_status vs split", "match-status", "match_status", 0.35),
)

RATIOS: tuple[Ratio, ...] = (
    # The codec rows are measured after the session's warm-up (bench/_warmup.py: the
    # heap of a long-running sender), GC on. Floors sit at about half of
    # what two full runs on the shared, loaded 2-core machine gave (noted per row),
    # so that noise does not fail them but a lost compiled path does.
    # (31-32x measured; 39x in CPU time, fresh or warmed up alike.)
    _claim("encode-10k", "hpgfast", "urlencode", 15.0),
    # (3.1-3.5x in wall time under load; 5.5-6.2x in CPU time, bench_longrun.)
    _claim("encode-10k", "hpgfast", "yarl", 2.0),
    _claim("encode-10k", "hpgfast", "pure", 10.0),  # 26-27x
    # (0.21-0.27, i.e. 3.7-4.8x split's time; 0.10 in a CI run while the other core
    # ran valgrind, so the floor sits under that; the pure twin measures 0.01.)
    _claim("parse-status-100k", "hpgfast", "split", 0.08),
    _claim("parse-status-100k", "hpgfast", "pure", 8.0),
    # 0.20-0.31 (3.2-5x split's time) before the 16-byte line scan; with it 0.48-0.51
    # in CPU time after the warm-up, 0.26-0.31 fresh, 0.23 in a full wall-clock run.
    # A full bench run on the loaded machine once measured 0.09 (read_send, the same
    # loop, 0.12 in that run): the floors sit under it; the pure twin measures 0.01.
    _claim("parse-send-100k", "hpgfast", "split", 0.07),
    _claim("parse-send-100k", "hpgfast", "pure", 8.0),
    # The line-by-line readers (targets: 3x split for SEND, 4x for STATUS). They run
    # parse_*'s very loop, so they cost what it costs: with
    # the 16-byte scan 0.45-0.51 and 0.21-0.23 in CPU time after the warm-up (0.24
    # and 0.28 in a full wall-clock run).
    _claim("parse-send-100k", "read", "split", 0.07),
    _claim("parse-status-100k", "read", "split", 0.1),
    # What the client calls since the match_* change: read_* checked against the
    # ids sent, the records holding the expected id objects. Less work than read_*
    # plus the client's own walk over the records (1,500 fewer instructions per
    # message at 8 KiB requests), but on a 100,000-line reply whose expected ids
    # are cold in memory, touching each of them costs more than making new ones:
    # 4.1-5.6x split here, against 3.0-4.6x for read_* in the same runs. With the
    # 16-byte scan: 0.34 (SEND) and 0.20-0.24 (STATUS) in CPU time after the warm-up.
    Ratio("parse-send-100k", "match", "split", 1 / 3, 0.07, "match_send vs bytes.split (floor)"),
    Ratio(
        "parse-status-100k", "match", "split", 0.25, 0.1, "match_status vs bytes.split (floor)"
    ),
    # The opt-in columnar reader (read_send_columns): no Python object per line.
    # Before its own scan: 1.4-1.7x split in a fresh process, 0.76-0.85 after the
    # warm-up. With it (271 instructions a line against split's 317): 1.41-1.84 in
    # full bench runs (split back to back), 2.5-2.9 in CPU time after the warm-up
    # (bench_longrun, interleaved), 2.3-2.7 fresh; 0.74 in one CI gate's short
    # pass. The floor sits under that; the pure twin measures 0.01.
    _claim("parse-send-100k", "columns", "split", 0.5),
    # 1.18-1.36x at load 3 with the batch arrays kept between calls (0.47-0.66x
    # before: 12,000-16,000 minor faults a round, serialized on the memory map; now
    # none). At load 8 on the 2 shared cores two threads never get both: 0.68-1.06
    # measured, so the floor only catches a convoy worse than that. A quiet machine
    # is needed to tell this row's old path from its new one.
    Ratio(
        "encode-threads-100k",
        "2-threads",
        "1-thread",
        1.6,
        0.6,
        "encode throughput, 2 threads vs 1",
    ),
    # The client end to end: client-process CPU per message against the emulator.
    _claim("client-cpu-8k", "hpgfast", "requests", 5.0),
    Ratio(
        "client-cpu-1m",
        "hpgfast",
        "requests",
        30.0,
        15.0,
        "client CPU/msg vs requests, 1 MiB",
    ),
    # Against the raw-socket floor (hpgfast's codec on one keep-alive socket, a
    # hand-written exchange), same run: within 2x at 8 KiB, 1.3x at 1 MiB.
    # Every peer gets the request boundaries Client really uses (_bench.bounds, with
    # its clientIds: 392 requests for the standard batch at 8 KiB; the boundaries
    # without clientIds, 349, would give each of the peers' requests 12% more
    # messages than hpgfast's).
    # 8 KiB, on a loaded 2-core machine, interleaved rounds: http.client reading the
    # replies (the old path) 4.3-5.0x the floor (0.20-0.23); llhttp and one sendall
    # 1.8-2.2x; with match_*, a reader per connection and the same splitting 1.64x
    # and 2.01x (0.61, 0.50; single rounds 1.4-2.7x). Callgrind: 4.7x the floor's
    # instructions before, 1.55x now. Since the compiled reply reader (1.25x in
    # callgrind) the row measured 0.47-0.63 by hand and 0.52-0.62 in four CI gate
    # passes; the floor is raised from 0.25 to 0.35 (2.9x the floor), under all of
    # them and over every run of the old path (0.17-0.29). The aiohttp row below
    # fails the old path in every run too.
    # 1 MiB: 1.6-2.1x before, 1.0-1.2x now (0.85-0.97; callgrind 0.89x: the floor's
    # sum over its records costs more than the client's whole reading): the floor is
    # raised from 0.35 to 0.45, under what a noisy CI pass may measure.
    Ratio(
        "client-cpu-8k", "hpgfast", "raw-socket", 1 / 2, 0.35, "client CPU/msg vs raw socket, 8K"
    ),
    Ratio(
        "client-cpu-1m", "hpgfast", "raw-socket", 1 / 1.3, 0.45, "client CPU/msg vs raw socket, 1M"
    ),
    # Against the strongest loop a user could write instead, a naive aiohttp one: at
    # most half its CPU at 8 KiB. Before: 0.97-1.16x aiohttp (0.85-1.03); after:
    # 0.39-0.60x (1.67-2.56). The floor separates them in every run measured.
    Ratio(
        "client-cpu-8k", "hpgfast", "aiohttp-naive", 2.0, 1.3, "client CPU/msg vs naive aiohttp, 8K"
    ),
    Ratio(
        "client-cpu-1m", "hpgfast", "aiohttp-naive", 0.0, 0.0, "client CPU/msg vs naive aiohttp, 1M"
    ),
    Ratio(
        "client-concurrency",
        "concurrency-4",
        "concurrency-1",
        3.0,
        2.0,
        "client msg/s, concurrency=4 vs 1 (5 ms latency)",
    ),
    # The asyncio client: client-process CPU per message, same run, same
    # server and splitting. Targets: within 1.5x of the asyncio floor (raw streams +
    # hpgfast's codec), at most 0.5x the naive aiohttp loop at 8 KiB and 0.33x at 1 MiB.
    # First measured on a 2-core machine shared by ~8 agents: 8 KiB 2.0-2.8x the
    # floor (0.35-0.50) and 0.59-0.85x aiohttp; 1 MiB 1.53-1.79x the floor. Since
    # match_* and the same splitting for the peers (interleaved rounds, later on the
    # same machine): 8 KiB 1.31-1.44x the floor (0.69-0.76; 1.46x in callgrind
    # instructions) and 0.39-0.49x aiohttp (2.0-2.6); 1 MiB 1.0-1.2x the floor
    # (0.83-1.0) and 0.21-0.23x aiohttp. The 8 KiB floor is raised from 0.30 to 0.40
    # (the first implementation measured 0.35-0.50); the others sit under the worst
    # run, so noise does not fail CI, and still fail a build that loses llhttp
    # (per-byte Python reading) or costs more than aiohttp.
    *(
        Ratio(f"aio-cpu-{size}", "AsyncClient", peer, target, floor, f"{claim}, {name}")
        for size, name in (("8k", "8 KiB"), ("1m", "1 MiB"))
        for peer, target, floor, claim in (
            ("asyncio-floor", 1 / 1.5, 0.4 if size == "8k" else 0.45,
             "AsyncClient CPU/msg vs asyncio floor"),
            # 0.5x naive aiohttp at 8 KiB, 0.33x at 1 MiB.
            ("aiohttp-naive", 2.0 if size == "8k" else 3.0, 1.0 if size == "8k" else 2.0,
             "AsyncClient CPU/msg vs naive aiohttp"),
        )
    ),
    # The floor's I/O driving the core (what AsyncClient costs above it is its
    # transport's), and the sync client beside it in the same run. At 8 KiB the
    # targets: within 1.05x the floor driving the core, within 1.3x the Client's
    # CPU. Three runs each of `-k "bench_async_cpu_per_message and 8k"` on the
    # loaded machine: the task woken per reply measured 0.72-1.03 and 0.60-0.82;
    # the next request written from the connection's callback 1.27-1.32 and
    # 1.09-1.12. These floors gate only where valgrind is missing (the counts
    # below gate otherwise): under the runs since, over the old path's worst.
    # Reported at 1 MiB.
    Ratio("aio-cpu-8k", "AsyncClient", "floor+core", 1 / 1.05, 0.85,
          "AsyncClient vs floor+core, 8K"),
    Ratio("aio-cpu-1m", "AsyncClient", "floor+core", 0.0, 0.0, "AsyncClient vs floor+core, 1M"),
    Ratio("aio-cpu-8k", "AsyncClient", "hpgfast-sync", 1 / 1.3, 0.75, "AsyncClient vs Client, 8K"),
    Ratio("aio-cpu-1m", "AsyncClient", "hpgfast-sync", 0.0, 0.0, "AsyncClient vs Client, 1M"),
    # The same claims in instructions per message (bench_counted.py: callgrind,
    # PYTHONHASHSEED=0, the calling thread's instructions in one send per transport
    # of the first 2,000 messages of the standard batch at 8 KiB, all 10,000 at 1 MiB;
    # the same transports and splitting as the time rows above). Each gates in place
    # of the time row of its subject and peer (``replaces``): the seven rounds of one
    # CI run measured the 8 KiB client at 1.61-2.04x the raw socket's CPU, while
    # three runs of the counts agree to 0.4% (Ir per message, Python 3.11):
    #   8 KiB: Client 8,592-8,605, raw socket 6,910-6,914, aiohttp 43,773-43,805,
    #          AsyncClient 10,247-10,258, asyncio floor 9,189-9,200, floor+core
    #          11,166-11,187;
    #   1 MiB: Client 5,459-5,478, raw socket 6,574-6,579, aiohttp 32,695-32,830,
    #          AsyncClient 5,473-5,485, asyncio floor 6,635-6,640, floor+core
    #          7,224-7,231.
    # Since AsyncClient writes the next request from the connection's callback
    # (one loop turn a request, no task step): AsyncClient 8,494 at 8 KiB (Client
    # 8,624, floor+core 11,163, asyncio floor 9,236) and 5,451 at 1 MiB.
    # The ratios (peer / subject) measured are in the comment of each row; the
    # floors sit about 15% under them: a count moves with the code, not with the
    # load, and the margin is for another CPU's string routines or libc. The old
    # http.client reading path ran 4.7x the raw socket's instructions at 8 KiB (0.21
    # here). With HPGFAST_PURE_PYTHON=1 the 8 KiB aiohttp rows measure 0.28 and 0.27
    # and fail; the raw-socket and asyncio-floor rows hold (0.84, 0.85), as those
    # floors run hpgfast's codec too.
    *(
        Ratio(
            f"client-ir-{size}",
            "hpgfast",
            peer,
            target,
            floor,
            f"client Ir/msg vs {claim}, {size.upper()}",
            replaces=f"client-cpu-{size}",
        )
        for size, peer, target, floor, claim in (
            ("8k", "raw-socket", 1 / 2, 0.68, "raw socket"),  # 0.80 (time: 0.49-0.63)
            ("1m", "raw-socket", 1 / 1.3, 1.0, "raw socket"),  # 1.20 (time: 0.85-0.97)
            ("8k", "aiohttp-naive", 2.0, 4.3, "naive aiohttp"),  # 5.09 (time: 1.67-2.75)
            ("1m", "aiohttp-naive", 0.0, 0.0, "naive aiohttp"),  # 5.97-6.01 (time: 3.1-3.7)
        )
    ),
    *(
        Ratio(
            f"aio-ir-{size}",
            "AsyncClient",
            peer,
            target,
            floor,
            f"AsyncClient Ir/msg vs {claim}, {name}",
            replaces=f"aio-cpu-{size}",
        )
        for size, name, peer, target, floor, claim in (
            # 0.90, 1.09 since the callback writes (time: 0.69-0.76; 0.83-0.96)
            ("8k", "8 KiB", "asyncio-floor", 1 / 1.5, 0.76, "asyncio floor"),
            # 1.21-1.22 (time: 0.83-1.0)
            ("1m", "1 MiB", "asyncio-floor", 1 / 1.5, 1.0, "asyncio floor"),
            # 4.27 (time: 2.0-2.6)
            ("8k", "8 KiB", "aiohttp-naive", 2.0, 3.6, "naive aiohttp"),
            # 5.97-6.00 (time: 2.9-4.8)
            ("1m", "1 MiB", "aiohttp-naive", 3.0, 5.0, "naive aiohttp"),
            # Within 1.05x the floor driving the core, and 1.3x Client, at 8 KiB:
            # 1.08 and 0.83 with the task woken per reply (under these floors),
            # 1.31 and 1.01 since the callback writes. Reported at 1 MiB: 1.32
            # and 1.00 before and since.
            ("8k", "8 KiB", "floor+core", 1 / 1.05, 1.12, "floor+core"),
            ("1m", "1 MiB", "floor+core", 0.0, 0.0, "floor+core"),
            ("8k", "8 KiB", "hpgfast-sync", 1 / 1.3, 0.86, "Client"),
            ("1m", "1 MiB", "hpgfast-sync", 0.0, 0.0, "Client"),
        )
    ),
    # 16 requests in flight against 1 with 20 ms emulator latency: 16x is the ideal;
    # the emulator's own CPU on a shared machine caps it below (9.5x measured under
    # load), hence the floor.
    Ratio(
        "aio-concurrency",
        "in-flight-16",
        "in-flight-1",
        10.0,
        6.0,
        "AsyncClient msg/s, 16 in flight vs 1 (20 ms latency)",
    ),
    # What a message costs: segments of the 100,000-message standard batch.
    # ~30x measured on a loaded 2-core machine; the floor catches a lost compiled path.
    Ratio("segments-100k", "hpgfast", "pure", 20.0, 8.0, "segments 100k vs pure twin"),
    # Reported, not promised: the totals-only form the dry run uses.
    Ratio(
        "segments-totals-100k", "hpgfast", "pure", 0.0, 0.0, "segment totals 100k vs pure twin"
    ),
    # send(..., compact=True) (bench_results.py): the bytes a list of results holds
    # over the bytes its CompactResults holds, a million messages through the core
    # (200.0 / 14.0 = 14.2 measured; the target, at most 150 bytes a message against
    # the list's 200, is 1.33; the floor catches a lost packing). Slow: not in the
    # gate's short pass, where the row is absent; the bench itself asserts 150.
    Ratio("send-results-1m", "compact", "list", 200.0 / 150.0, 5.0,
          "send results 1M: list bytes / compact bytes"),
    # What packing costs: CPU of a send through the core and dropping its results,
    # list over compact (0.65-0.71 measured, interleaved rounds). Reported; the floor
    # catches packing at about three times its cost (0.53 without its C-level
    # passes: the floor does not tell those apart).
    Ratio("send-results-cpu-200k", "compact", "list", 0.0, 0.45,
          "send results 200k CPU: list / compact"),
    # Speed that holds in a long-running process (bench_longrun.py): each codec ratio
    # after the scripted warm-up (bench/_warmup.py) over the same ratio in a fresh
    # process, both measured in new processes; within 1.3x means at least 1/1.3.
    # Measured 0.78-1.12 for every row but the columns' (0.54-0.59: split gets faster
    # after the warm-up, as its objects no longer page-fault, and the columns, which
    # never did, do not); its floor is lower. With the 16-byte line scan: 0.55-1.23
    # for the columns, and the STATUS rows 0.55-0.83 (split's 1,600 faults a call
    # fresh, none warm, while hpgfast's own time also drops: see the time rows).
    # One CI run measured parse_status's just under 0.55, their old floor: the
    # floors per row are in LONGRUN_ROWS.
    *(
        Ratio(f"longrun-{key}", "warm", "fresh", 1 / 1.3, floor, f"{row}: warm/fresh")
        for row, key, _, floor in LONGRUN_ROWS
    ),
    # Reported, not hpgfast: split itself plus CPU-only work, about as long as a
    # STATUS reader (bench/_longrun.py's REFERENCE). It makes exactly split's
    # objects, yet measured 0.70 by hand and 0.66-0.70 in CI (0.70-0.75 with three
    # count passes instead of four), as the STATUS rows do: any subject
    # over about 2.2x split's time lands under 1/1.3 here, since the fresh process's
    # faults (the same on both sides) weigh more in the faster side's time.
    Ratio("longrun-reference", "warm", "fresh", 0.0, 0.0, "split + CPU work: warm/fresh"),
    # hpgfast's own CPU time per call, fresh over warmed up (bench_longrun.py): the
    # speed itself holds, whatever its peer's does. Within 1.3x: at least 1/1.3.
    # Measured 0.58-2.2 in five runs (the fresh and the warm process are measured
    # one after the other, so a load change between them moves this row; encode_send,
    # at 5-8 ms a call, swings most): the floor catches a slowdown past 2.2x.
    *(
        Ratio(f"longrun-time-{key}", "warm", "fresh", 1 / 1.3, 0.45, f"{timed}: time fresh/warm")
        for _, key, timed, _ in LONGRUN_ROWS
        if timed
    ),
    # The command line against what a user would otherwise write
    # (bench/bench_cli_send.py, slow): ``hpgfast send --file`` without a journal,
    # whole-process CPU per message against a script of the csv module, Messages and
    # Client.send, interleaved rounds; target within 1.15x. Reading its input twice
    # it measured 1.50-1.88x (0.53-0.67 here); reading it once 1.03-1.24x per round
    # on the loaded machine (0.82-0.88 as ratios of medians). The instructions row
    # (20,000 messages, start-up included, where the command's start-up weighs
    # most) is reported: 1.94x before (0.52), 1.34x after (0.75).
    Ratio("cli-send-cpu", "hpgfast-send", "csv-script", 1 / 1.15, 0.7,
          "hpgfast send --file CPU/msg vs a csv script"),
    Ratio("cli-send-instructions", "hpgfast-send", "csv-script", 0.0, 0.65,
          "hpgfast send --file instructions/msg vs a csv script"),
    # Scaling: per-message cost at 10^5 and 10^6 against 10^3, N messages processed as
    # hpgfast does (1 MiB requests, one reply at a time); flat means within 1.5x.
    *(
        Ratio(f"scale-{job}", size, "1e3", 1 / 1.5, 0.3, f"{job} per message, {size} vs 1e3")
        for job in ("encode", "parse-status", "parse-send", "client")
        for size in ("1e5", "1e6")
    ),
)

# Every claim hpgfast bench measures has its floor here.
_GATED = {(r.group, r.subject, r.peer) for r in RATIOS}
_NO_FLOOR = sorted(set(_COMMAND_CLAIMS) - _GATED)
if _NO_FLOOR:
    raise RuntimeError(
        f"bench/_ratios.py: add a row with a floor for each claim of hpgfast._bench.CLAIMS "
        f"missing here: {_NO_FLOOR}"
    )
