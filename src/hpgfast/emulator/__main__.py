"""``python -m hpgfast.emulator --port 9876 ...``: serve an emulator until interrupted.

Prints the connector's base URL on the first line of standard output (so a script
can read it, with ``--port 0`` too), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Optional

from ._cli import add_arguments, banner, emulator_from_args, served


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the emulator from the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hpgfast.emulator",
        description="A local HPG platform for tests: accepts SMS, sends none.",
    )
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        emulator = emulator_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"hpgfast emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # Both by hand: a shell's background job starts with SIGINT ignored.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    with emulator:
        print(emulator.url, flush=True)
        print(banner(emulator, args), file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print(
            served(emulator),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
