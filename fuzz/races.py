"""GIL-release races: the compiled core's input changed by other threads mid-call.

    python fuzz/races.py --seconds 30

The core releases the GIL for its byte loops, so another thread runs while it reads
the batch. These checks run each encoder, parser and segment counter on big inputs
(big enough for the GIL-free paths) while other threads replace, delete and append
the batch's messages or texts, clear and refill their params, and resize or rewrite
a bytearray body, with a tiny switch interval so that the threads really interleave.
A result must be well formed (ASCII, reading back as fields; records that add up)
or an ordinary exception; under the ASan/UBSan build (run_sanitizers.sh) any read
of freed or moved memory is reported.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from hpgfast import HPGError, Message, _codec_c, _sms_c

# What a call may raise when its input changes under it: never a crash.
_EXPECTED = (HPGError, TypeError, ValueError, LookupError, RuntimeError, BufferError)


def _messages(rng: random.Random, n: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        text = rng.choice(["hello world", "привет мир", "emoji 😀", "a&b=c"]) * rng.randint(1, 8)
        params = {"p": "v" * rng.randint(0, 40)} if i % 5 == 0 else None
        out.append(Message(f"7903{i:07d}", text, "S", None if i % 3 else f"id{i}", params))
    return out


def _check_query(query: bytes) -> None:
    assert query.isascii(), query[:80]
    parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))


def _mutate_batch(stop: threading.Event, batch: list[Any], rng: random.Random) -> None:
    spare = _messages(rng, 64)
    while not stop.is_set():
        op = rng.randrange(6)
        try:
            if op == 0 and batch:
                batch[rng.randrange(len(batch))] = rng.choice(spare)
            elif op == 1 and batch:
                del batch[rng.randrange(len(batch)) :]
            elif op == 2:
                batch.extend(rng.choice(spare) for _ in range(rng.randint(1, 500)))
            elif op == 3:
                for m in spare:
                    if m.params is not None:
                        m.params.clear()
                        m.params.update({f"k{j}": "x" * j for j in range(rng.randint(0, 20))})
            elif op == 4 and batch:
                batch[rng.randrange(len(batch))] = ("1", "t" * rng.randint(0, 5000), "S")
            else:
                batch.reverse()
        except (IndexError, ValueError):
            pass


def race_encode_send(stop: threading.Event, rng: random.Random) -> int:
    batch = _messages(rng, 5000)
    helper = threading.Thread(target=_mutate_batch, args=(stop, batch, random.Random(rng.random())))
    helper.start()
    calls = 0
    try:
        while not stop.is_set():
            limit = rng.choice([None, 8192, 100_000, 1 << 20])
            try:
                query, nxt = _codec_c.encode_send(batch, max_bytes=limit, default_subject="D")
            except _EXPECTED:
                pass
            else:
                _check_query(query)
                assert 0 <= nxt
            calls += 1
            if len(batch) < 1000:
                batch.extend(_messages(rng, 2000))
    finally:
        stop.set()
        helper.join()
    return calls


def race_encode_status(stop: threading.Event, rng: random.Random) -> int:
    ids: list[Any] = [str(10**9 + i) for i in range(20_000)]

    def mutate() -> None:
        while not stop.is_set():
            try:
                if rng.random() < 0.5:
                    del ids[rng.randrange(len(ids)) :]
                else:
                    ids.extend(str(i) * rng.randint(1, 30) for i in range(rng.randint(1, 3000)))
            except (IndexError, ValueError):
                pass

    helper = threading.Thread(target=mutate)
    helper.start()
    calls = 0
    try:
        while not stop.is_set():
            try:
                query, _ = _codec_c.encode_status(ids, max_bytes=rng.choice([None, 65536]))
            except _EXPECTED:
                pass
            else:
                _check_query(query)
            calls += 1
    finally:
        stop.set()
        helper.join()
    return calls


def race_encode_params(stop: threading.Event, rng: random.Random) -> int:
    pairs: list[Any] = [(f"n{i}", "v" * i) for i in range(2000)]

    def mutate() -> None:
        while not stop.is_set():
            try:
                if rng.random() < 0.5:
                    del pairs[rng.randrange(len(pairs)) :]
                else:
                    pairs.extend((f"m{i}", "w" * i) for i in range(rng.randint(1, 2000)))
            except (IndexError, ValueError):
                pass

    helper = threading.Thread(target=mutate)
    helper.start()
    calls = 0
    try:
        while not stop.is_set():
            try:
                _check_query(_codec_c.encode_params(pairs))
            except _EXPECTED:
                pass
            calls += 1
    finally:
        stop.set()
        helper.join()
    return calls


def _race_parse(parse: Callable[[Any], Any], line: bytes) -> Callable[..., int]:
    def race(stop: threading.Event, rng: random.Random) -> int:
        body = bytearray(line * 20_000)

        def mutate() -> None:
            while not stop.is_set():
                try:
                    if rng.random() < 0.5:
                        body[:] = line * rng.randint(1, 40_000)  # resize: refused while read
                    else:
                        # Rewrite in place (allowed while read): digits over digits
                        # keep the reply valid, so the parser reads all of it.
                        at = rng.randrange(len(body))
                        if 48 <= body[at] <= 57:
                            body[at] = rng.randrange(48, 58)
                except (BufferError, ValueError):
                    pass

        helper = threading.Thread(target=mutate)
        helper.start()
        calls = 0
        try:
            while not stop.is_set():
                for view in (body, memoryview(body)):
                    try:
                        parse(view)
                    except _EXPECTED:
                        pass
                    calls += 1
        finally:
            stop.set()
            helper.join()
        return calls

    return race


def _sms_texts(rng: random.Random, n: int) -> list[Any]:
    # GSM 7-bit, extension, UCS-2 and astral texts, some long enough to be cut into
    # parts: over the GIL-free threshold in every chunk of the counter.
    kinds = ["hello world ", "{braces} [] ~ ", "привет мир ", "emoji 😀 ", "é ß Δ "]
    out: list[Any] = []
    for i in range(n):
        text = rng.choice(kinds) * rng.randint(1, 40)
        out.append(text if i % 2 else Message(f"7903{i:07d}", text, "S"))
    return out


def _check_segments(result: Any) -> None:
    if isinstance(result, list):  # count_segments
        for r in result:
            assert r.segments >= 1 and r.encoding in ("gsm7", "ucs2"), r
    else:  # total_segments
        assert result.segments == result.gsm7_segments + result.ucs2_segments, result
        assert result.messages == result.gsm7_messages + result.ucs2_messages, result


def _race_segments(count: Callable[[Any], Any]) -> Callable[..., int]:
    def race(stop: threading.Event, rng: random.Random) -> int:
        items = _sms_texts(rng, 4000)
        spare = _sms_texts(random.Random(rng.random()), 64)

        def mutate() -> None:
            # The counter holds the batch as a tuple while the GIL is released; the
            # list it was given, and the only references to texts, change meanwhile.
            while not stop.is_set():
                op = rng.randrange(4)
                try:
                    if op == 0 and items:
                        items[rng.randrange(len(items))] = rng.choice(spare)
                    elif op == 1 and items:
                        del items[rng.randrange(len(items)) :]
                    elif op == 2:
                        items.extend("x" * rng.randint(1, 900) for _ in range(rng.randint(1, 500)))
                    else:
                        items.reverse()
                except (IndexError, ValueError):
                    pass

        helper = threading.Thread(target=mutate)
        helper.start()
        calls = 0
        try:
            while not stop.is_set():
                try:
                    result = count(items)
                except _EXPECTED:
                    pass
                else:
                    _check_segments(result)
                calls += 1
                if len(items) < 1000:
                    items.extend(_sms_texts(rng, 2000))
        finally:
            stop.set()
            helper.join()
        return calls

    return race


RACES: dict[str, Callable[[threading.Event, random.Random], int]] = {
    "encode_send": race_encode_send,
    "encode_status": race_encode_status,
    "encode_params": race_encode_params,
    "parse_send": _race_parse(_codec_c.parse_send, b"ok;12;100012345\n"),
    "parse_status": _race_parse(
        _codec_c.parse_status, b"ok;100012345;delivered;2012.03.15 19:53:07;\r\n"
    ),
    "count_segments": _race_segments(_sms_c.count_segments),
    "total_segments": _race_segments(_sms_c.total_segments),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("races", nargs="*", help=f"of {', '.join(RACES)} (default: all)")
    parser.add_argument("--seconds", type=float, default=30.0, help="in all, split evenly")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    names = args.races or list(RACES)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as CPython will
    share = args.seconds / len(names)
    print(f"races: seed {seed}, {share:.1f} s each", flush=True)
    for name in names:
        stop = threading.Event()
        timer = threading.Timer(share, stop.set)
        timer.start()
        started = time.monotonic()
        calls = RACES[name](stop, random.Random(seed))
        timer.cancel()
        print(f"races: {name}: {calls} calls in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
