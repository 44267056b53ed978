"""Reference and memory leaks on the compiled core's error paths.

    python fuzz/leaks.py                 # each error path 10,000 times
    python fuzz/leaks.py --runs 100000
    python fuzz/leaks.py --runs 1000 --seconds 20   # at most about 20 s in all

Every way each compiled function can fail (and its success paths, for comparison)
runs ``--runs`` times after a warm-up; with ``--seconds``, each path gets an equal
share of the time left and stops early when its share is spent (the runs it made
are printed, and the bounds below scale with them). A leaked reference to an input shows as its
refcount growing by about ``runs``; a leaked object as memory traced by
``tracemalloc`` growing; a leaked C buffer (the core's ``malloc``s) as the process's
resident size growing. ``sys.gettotalrefcount`` is used too on a debug build of
CPython. Under the ASan build (run_sanitizers.sh), LeakSanitizer reports C leaks at
exit and the resident-size bound is skipped (ASan keeps freed memory in quarantine).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import timezone
from typing import Any

from hpgfast import Message, _response_c, _sms_c
from hpgfast import _codec_c as core

_SANITIZED = bool(os.environ.get("HPGFAST_SANITIZED"))


class _Boom(Exception):
    pass


class _FailingSeq:
    """A sequence whose item 40 cannot be read (the core fetches ahead)."""

    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int) -> Any:
        if i == 40:
            raise _Boom
        if not 0 <= i < 100:
            raise IndexError(i)
        return MSG


class _FailingParams:
    def __iter__(self) -> Any:
        yield ("a", "b")
        raise _Boom


class _FalsyStr(str):
    def __bool__(self) -> bool:
        return False


MSG = Message("79031234567", "hello", "S")
# Big enough for the GIL-free paths (over 1 KB, over one 1024-line parse chunk).
BIG = [Message(f"7903{i:07d}", "text " * 10, "S", f"id{i}") for i in range(300)]
DUP = [*BIG[:250], BIG[10]]  # a duplicate client id, found in the GIL-free fill
SURROGATE_LATE = [*BIG[:250], Message("1", "bad \ud800", "S")]
BAD_LATE = [*BIG[:250], ("1", 5, "S")]
BAD_ID_LATE = [*BIG[:250], ("1", "t", "S", 5)]
BODY = b"ok;1;1001\n" * 1100
STATUS_BODY = b"ok;1001;delivered;2012.03.15 19:53:07;\n" * 1100
# Every kind of SEND line the columns take another way: a new code, an extra, a
# faulty line, non-ASCII, a code alone.
ODD_BODY = BODY + b"new-code;2;1002\nok;3;1003;more\no k;4;5\nok;\xd0\xaf;6\nerror-auth\n"
# Lines whose time and text are read by hpgfast._fields (the slow path of each field).
SLOW_STATUS = (
    b"ok;1001;delivered;2012-03-15T19:53:07.5+03:00;\nok;1002;sent;garbage;\xcd\xe5\n"
    b"ok;1003;delivered;2012.03.15 19:53:07;\xcd\n"
) * 40
SLOW_SEND = b"error-address-format;0;;\xcd\xe5\xe2\n"
SENT = ["1"] * 1100
# The segment counter: over its GIL-free threshold (8192 characters a chunk of 1024
# items), in two chunks, and long UCS-2 texts that are cut into parts.
TEXTS = [("hello world " * 10 if i % 2 else "привет 😀 " * 40) for i in range(1500)]
TEXT_MESSAGES = [Message("1", t, "S") for t in TEXTS]
LONG_TEXT = TEXTS[0] * 50  # one text over the GIL-free threshold
SURROGATE_TEXTS = [*TEXTS[:1400], "late \udc00 surrogate"]
BAD_TEXTS = [*TEXTS[:1100], ("1", 5, "S")]
SHORT_TEXTS = [*TEXTS[:1100], ("1",)]


def _failing_texts() -> Any:
    yield from TEXTS[:10]
    raise _Boom


REPLY_OK = b"HTTP/1.1 200 OK\r\nRetry-After: 1\r\nContent-Length: 10\r\n\r\nok;0;1001\n"
REPLY_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok;\r\n0\r\n\r\n"
REPLY_BIG = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
REPLY_BAD_CHUNK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"


def _read_replies(replies: list[bytes], eof: bool = False) -> Any:
    """The compiled reply reader through one connection's replies (its error paths
    raise from llhttp's callbacks)."""
    reader = _response_c.ResponseReader(1000)
    for k, data in enumerate(replies):
        if k and not reader.reuse():
            break
        reader.feed(data)
        if eof:
            reader.eof()
        if reader.ok:
            reader.reply()
        elif reader.done:
            reader.failure("u", str.upper)
    return reader


# name -> (call, the objects whose refcounts must not grow)
CASES: dict[str, tuple[Callable[[], Any], tuple[Any, ...]]] = {
    "send ok": (lambda: core.encode_send(BIG, max_bytes=8192), (BIG, BIG[0])),
    "send ok, all": (lambda: core.encode_send(BIG), (BIG,)),
    "send type error": (lambda: core.encode_send([MSG, ("1", 5, "S")]), (MSG,)),
    "send type error late": (lambda: core.encode_send(BAD_LATE), (BAD_LATE, BIG[0])),
    "send not a tuple": (lambda: core.encode_send([MSG, "x"]), (MSG,)),
    "send empty field": (lambda: core.encode_send([("1", "", "S")]), ()),
    "send no subject": (lambda: core.encode_send([("1", "t")]), ()),
    "send surrogate": (lambda: core.encode_send([("1", "\udfff", "S")]), ()),
    "send surrogate late": (lambda: core.encode_send(SURROGATE_LATE), (SURROGATE_LATE,)),
    "send too large": (lambda: core.encode_send([MSG], max_bytes=10), (MSG,)),
    "send duplicate id": (lambda: core.encode_send(DUP), (DUP, BIG[10])),
    "send reserved param": (lambda: core.encode_send([("1", "t", "S", None, {"text": "x"})]), ()),
    "send bad params": (lambda: core.encode_send([("1", "t", "S", None, [("a", 1)])]), ()),
    "send failing params": (
        lambda: core.encode_send([("1", "t", "S", None, _FailingParams())]),
        (),
    ),
    "send failing seq": (lambda: core.encode_send(_FailingSeq()), (MSG,)),
    "send bad start": (lambda: core.encode_send([MSG], start=5), (MSG,)),
    "send float start": (lambda: core.encode_send([MSG], start=1.0), (MSG,)),
    "send dict batch": (lambda: core.encode_send({0: MSG}), (MSG,)),
    "send bad limit": (lambda: core.encode_send([MSG], max_bytes="1"), (MSG,)),
    "send bad default": (lambda: core.encode_send([("1", "t")], default_subject=5), ()),
    "send str subclass": (lambda: core.encode_send([("1", _FalsyStr("a&b"), "S")]), ()),
    "sent_ids own and made": (lambda: core.sent_ids([*BIG, MSG], 0, 301, "Ab9"), (BIG, MSG)),
    "sent_ids index": (lambda: core.sent_ids([MSG] * 300, 0, 300), (MSG,)),
    "sent_ids str subclass": (lambda: core.sent_ids([("1", "t", "S", _FalsyStr("a"))], 0, 1), ()),
    "sent_ids type error late": (lambda: core.sent_ids(BAD_ID_LATE, 0, 251), (BAD_ID_LATE,)),
    "sent_ids not a tuple": (lambda: core.sent_ids([MSG, "x"], 0, 2, "P"), (MSG,)),
    "sent_ids failing seq": (lambda: core.sent_ids(_FailingSeq(), 0, 100), (MSG,)),
    "sent_ids bad span": (lambda: core.sent_ids([MSG], 0, 5), (MSG,)),
    "sent_ids bad prefix": (lambda: core.sent_ids([MSG], 0, 1, "a-b"), (MSG,)),
    "reader ok, reused": (lambda: _read_replies([REPLY_OK, REPLY_OK]), (REPLY_OK,)),
    "reader chunked": (lambda: _read_replies([REPLY_CHUNKED]), (REPLY_CHUNKED,)),
    "reader over the cap": (lambda: _read_replies([REPLY_BIG]), (REPLY_BIG,)),
    "reader garbage": (lambda: _read_replies([b"<html>" * 50]), ()),
    "reader bad chunk": (lambda: _read_replies([REPLY_BAD_CHUNK]), (REPLY_BAD_CHUNK,)),
    "reader cut": (lambda: _read_replies([REPLY_OK[:-3]], eof=True), ()),
    "reader extra bytes": (lambda: _read_replies([REPLY_OK + b"x"]), ()),
    "reader interim flood": (lambda: _read_replies([b"HTTP/1.1 100 C\r\n\r\n" * 12]), ()),
    "status ok": (lambda: core.encode_status([str(i) for i in range(3000)]), ()),
    "status type error": (lambda: core.encode_status(["1", 2]), ()),
    "status surrogate": (lambda: core.encode_status(["1", "\ud800"]), ()),
    "status too large": (lambda: core.encode_status(["1" * 50], max_bytes=10), ()),
    "params ok": (lambda: core.encode_params([("a", "b"), ("c", _FalsyStr("d&e"))]), ()),
    "params type error": (lambda: core.encode_params([("a", None)]), ()),
    "params surrogate": (lambda: core.encode_params([("a", "\ud800")]), ()),
    "params empty name": (lambda: core.encode_params([("", "x")]), ()),
    "params not pairs": (lambda: core.encode_params("abc"), ()),
    "parse_send ok": (lambda: core.parse_send(BODY), (BODY,)),
    "parse_send garbled late": (lambda: core.parse_send(BODY + b"o k;1;2\n"), ()),
    "parse_send not utf-8 late": (lambda: core.parse_send(BODY + b"ok;\xff;2\n"), ()),
    "parse_send too many fields": (lambda: core.parse_send(b"ok;1;2;3\n"), ()),
    "parse_send not bytes": (lambda: core.parse_send("ok;1;2"), ()),
    "read_send odd lines": (lambda: core.read_send(ODD_BODY), (ODD_BODY,)),
    "read_send_columns ok": (lambda: core.read_send_columns(BODY), (BODY,)),
    "read_send_columns odd lines": (lambda: core.read_send_columns(ODD_BODY), (ODD_BODY,)),
    "read_send_columns bytearray": (lambda: core.read_send_columns(bytearray(ODD_BODY)), ()),
    "read_send_columns not bytes": (lambda: core.read_send_columns("ok;1;2"), ()),
    "match_send ok": (lambda: core.match_send(BODY, SENT), (BODY, SENT)),
    "match_send odd lines": (lambda: core.match_send(ODD_BODY, SENT), (SENT,)),
    "match_send not a list": (lambda: core.match_send(BODY, iter(SENT)), (SENT,)),
    "match_status ok": (lambda: core.match_status(STATUS_BODY, ["1001"] * 1100), ()),
    "parse_status ok": (lambda: core.parse_status(STATUS_BODY, tz=timezone.utc), ()),
    "parse_status bad date late": (
        lambda: core.parse_status(STATUS_BODY + b"ok;1;sent;2012.13.45 25:61:00;\n"),
        (),
    ),
    "read_status fields read slowly": (
        lambda: core.read_status(SLOW_STATUS, tz=timezone.utc, charset="cp1251"),
        (SLOW_STATUS,),
    ),
    "match_send a windows-1251 description": (
        lambda: core.match_send(SLOW_SEND, ["0"], charset="windows-1251"),
        (SLOW_SEND,),
    ),
    "read_send_columns a windows-1251 description": (
        lambda: core.read_send_columns(SLOW_SEND, charset="no-such-charset"),
        (SLOW_SEND,),
    ),
    "parse_status charset not a str": (lambda: core.parse_status(b"ok;1\n", charset=1251), ()),
    "parse_status garbled status": (lambda: core.parse_status(b"ok;1;b a d;;\n"), ()),
    "parse_status bad tz": (lambda: core.parse_status(b"ok;1\n", tz="UTC"), ()),
    "parse_status memoryview": (lambda: core.parse_status(memoryview(b"ok;1;x y\n")), ()),
    "segments ok": (lambda: _sms_c.segments(LONG_TEXT), (LONG_TEXT,)),
    "segments surrogate": (lambda: _sms_c.segments("ab\ud800"), ()),
    "segments not a str": (lambda: _sms_c.segments(b"ab"), ()),
    "segments str subclass": (lambda: _sms_c.segments(_FalsyStr("ж" * 500)), ()),
    "count_segments ok": (lambda: _sms_c.count_segments(TEXTS), (TEXTS, TEXTS[0])),
    "count_segments messages ok": (
        lambda: _sms_c.count_segments(TEXT_MESSAGES),
        (TEXT_MESSAGES, TEXT_MESSAGES[0]),
    ),
    "count_segments surrogate late": (
        lambda: _sms_c.count_segments(SURROGATE_TEXTS),
        (SURROGATE_TEXTS, TEXTS[0]),
    ),
    "count_segments type error late": (lambda: _sms_c.count_segments(BAD_TEXTS), (BAD_TEXTS,)),
    "count_segments short tuple late": (
        lambda: _sms_c.count_segments(SHORT_TEXTS),
        (SHORT_TEXTS,),
    ),
    "count_segments not an item": (lambda: _sms_c.count_segments(["a", None]), ()),
    "count_segments a str": (lambda: _sms_c.count_segments("abc"), ()),
    "count_segments failing iterable": (lambda: _sms_c.count_segments(_failing_texts()), ()),
    "total_segments ok": (lambda: _sms_c.total_segments(TEXTS), (TEXTS, TEXTS[0])),
    "total_segments surrogate late": (
        lambda: _sms_c.total_segments(SURROGATE_TEXTS),
        (SURROGATE_TEXTS,),
    ),
    "total_segments type error late": (lambda: _sms_c.total_segments(BAD_TEXTS), (BAD_TEXTS,)),
    "total_segments not a sequence": (lambda: _sms_c.total_segments(5), ()),
}


def _call(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        pass


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _python_memory() -> int:
    # pymalloc's block count is free to read; with PYTHONMALLOC=malloc (the ASan run)
    # it is 0, and tracemalloc (slower) counts instead.
    if tracemalloc.is_tracing():
        return tracemalloc.get_traced_memory()[0]
    return sys.getallocatedblocks() * 32  # about the smallest block: a lower bound


# The fewest runs a path makes whatever the time: a reference leaked per call then
# shows as a refcount grown by 20, over the bound of 10 below.
MIN_RUNS = 20


def check(
    name: str,
    fn: Callable[[], Any],
    watched: tuple[Any, ...],
    runs: int,
    seconds: float | None = None,
) -> tuple[list[str], int]:
    """Problems found on one path (empty: none), and the runs made: ``runs``, or
    fewer when ``seconds`` (for the warm-up and the runs together) ran out first,
    but never fewer than ``MIN_RUNS``: a check of no runs would find nothing."""
    now = time.monotonic()
    deadline = None if seconds is None else now + seconds
    # The warm-up fills the core's caches (records, interned codes, dates): 200 calls,
    # or a quarter of the time share, but never fewer than 5.
    warm_until = None if seconds is None else now + seconds / 4
    warm = 0
    while warm < 200 and (warm < 5 or warm_until is None or time.monotonic() < warm_until):
        _call(fn)
        warm += 1
    gc.collect()
    refs = [sys.getrefcount(o) for o in watched]
    total = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    traced = _python_memory()
    rss = _rss()
    done = 0
    while done < runs and (done < MIN_RUNS or deadline is None or time.monotonic() < deadline):
        _call(fn)
        done += 1
    runs = done
    gc.collect()
    problems = []
    for obj, before in zip(watched, refs):
        grown = sys.getrefcount(obj) - before
        if grown > 10:
            problems.append(f"a reference to {type(obj).__name__} leaks ({grown} in {runs} runs)")
    if total is not None and sys.gettotalrefcount() - total > runs // 10:
        problems.append(f"total references grew by {sys.gettotalrefcount() - total}")
    grown = _python_memory() - traced
    if grown > 64 * 1024 + runs * 8:  # a leaked object per run is at least 16 bytes
        problems.append(f"Python memory grew by at least {grown} bytes")
    grown = _rss() - rss
    if not _SANITIZED and grown > 16 << 20:
        problems.append(f"resident size grew by {grown >> 20} MiB")
    return problems, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("-k", default="", help="only the paths whose name holds this")
    parser.add_argument(
        "--seconds", type=float, default=None, help="in all, shared evenly (default: no bound)"
    )
    args = parser.parse_args()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    if sys.getallocatedblocks() == 0:
        tracemalloc.start()
    failed = 0
    cut = 0
    cases = [(name, case) for name, case in CASES.items() if args.k in name]
    for k, (name, (fn, watched)) in enumerate(cases):
        # The big success paths are slow under ASan: a tenth of the runs is plenty.
        runs = args.runs // 10 if name.endswith(("ok", "ok, all")) else args.runs
        # Each path an equal share of the time left: one that ends early leaves its
        # rest to the paths after it.
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        share = None if left is None else left / (len(cases) - k)
        problems, done = check(name, fn, watched, runs, share)
        cut += done < runs
        shown = f"{done} runs" if done == runs else f"{done} of {runs} runs (time share spent)"
        print(f"leaks: {name}: {shown}, {'; '.join(problems) or 'no leak'}", flush=True)
        failed += bool(problems)
    print(
        f"leaks: {len(cases)} paths, {failed} leaking"
        + (f", {cut} cut short by --seconds" if cut else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
