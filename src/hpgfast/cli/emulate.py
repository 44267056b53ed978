"""``hpgfast emulate``: the bundled platform emulator."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import (
    UsageError,
    wait_for_signal,
)
from ._exit import EXIT_OK, exit_codes_help


def run(args: argparse.Namespace) -> int:
    """``hpgfast emulate``."""
    from ..emulator._cli import banner, emulator_from_args, served

    try:
        emulator = emulator_from_args(args)
    except (OSError, ValueError) as exc:
        raise UsageError(f"emulator: {exc}") from None
    with emulator:

        def announce() -> None:
            print(emulator.url, flush=True)
            print(banner(emulator, args), file=sys.stderr, flush=True)

        wait_for_signal(announce)
        print(
            served(emulator),
            file=sys.stderr,
        )
    return EXIT_OK


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast emulate`` to the subcommands ``sub``."""
    from ..emulator._cli import add_arguments

    p = sub.add_parser(
        "emulate", help="run the bundled platform emulator",
        description="A local HPG platform on loopback: accepts SMS, sends none. Prints "
        "the connector URL on the first line of stdout, then serves until Ctrl-C.",
        epilog=exit_codes_help("emulate"), formatter_class=formatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)
