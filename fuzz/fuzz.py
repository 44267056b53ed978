"""Run the differential fuzz targets (targets.py): compiled core against pure twin.

    python fuzz/fuzz.py --seconds 60                  # every target, 60 s in all
    python fuzz/fuzz.py --seconds 600 encode_send     # one target
    python fuzz/fuzz.py --engine atheris parse_status -- -max_len=4096

Engines: ``random`` (the default; no dependency) feeds random bytes and mutations
of inputs that reached new outcomes; ``atheris`` (``pip install atheris``, where a
wheel exists) is coverage guided by the pure twin's and the harness' Python
branches, one target per process. A disagreement prints the input and exits 1; a
memory error in the core is the sanitizer's report (run_sanitizers.sh).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from targets import TARGETS, Disagreement, one_input


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:
            at = rng.randint(0, len(buf))
            buf[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 2 and buf:
            at = rng.randrange(len(buf))
            del buf[at : at + rng.randint(1, 16)]
        else:
            at = rng.randint(0, len(buf))
            buf[at:at] = buf[: rng.randint(0, 32)]
    return bytes(buf)


def run_random(name: str, seconds: float, seed: int) -> int:
    """Random bytes and mutations of a small corpus, for ``seconds``; inputs run."""
    rng = random.Random(seed)
    corpus = [b""]
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        if corpus and rng.random() < 0.5:
            data = _mutate(rng, rng.choice(corpus))
        else:
            data = rng.randbytes(rng.randint(0, 256))
        one_input(name, data)
        runs += 1
        if len(corpus) < 512 and rng.random() < 0.02:
            corpus.append(data)
    return runs


def run_atheris(name: str, seconds: float, extra: list[str]) -> None:
    import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

    import hpgfast._codec_py

    # Coverage of the pure twin's branches (the contract's) and of the harness'
    # drawing, both loaded by now (instrument_imports() would see neither).
    for module in (hpgfast._codec_py, sys.modules["targets"]):
        for value in vars(module).values():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                if isinstance(value, type):
                    for attr in vars(value).values():
                        if callable(attr):
                            atheris.instrument_func(attr)
                else:
                    atheris.instrument_func(value)

    argv = [sys.argv[0], f"-max_total_time={max(1, int(seconds))}", *extra]
    atheris.Setup(argv, lambda data: one_input(name, data))
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--seconds", type=float, default=60.0, help="in all, split evenly")
    parser.add_argument("--engine", choices=("random", "atheris"), default="random")
    parser.add_argument("--seed", type=int, default=None)
    args, extra = parser.parse_known_args()
    names = args.targets or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    share = args.seconds / len(names)
    if args.engine == "atheris":
        if len(names) != 1:
            parser.error("atheris runs one target per process")
        run_atheris(names[0], share, [a for a in extra if a != "--"])
        return 0
    print(f"fuzz: seed {seed}, {share:.1f} s per target", flush=True)
    for name in names:
        try:
            runs = run_random(name, share, seed)
        except Disagreement as exc:
            print(f"fuzz: {name}: the twins disagree (seed {seed}):\n{exc}", flush=True)
            return 1
        print(f"fuzz: {name}: {runs} inputs, twins agree", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
