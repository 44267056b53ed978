"""``hpgfast demo``: the whole job on the bundled emulator (see ``_demo``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import (
    add_output,
    positive_int,
)
from ._exit import exit_codes_help


def run(args: argparse.Namespace) -> int:
    """``hpgfast demo``."""
    from ._demo import run_demo

    return run_demo(args)


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast demo`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "demo", help="the whole job on the emulator, with figures",
        description="Start the emulator, send generated messages through the real client "
        "with a journal, follow their statuses to final, and print a summary: accepted, "
        "rejected by code, unknown, delivery statuses, messages per second, and the "
        "client's CPU per message. Nothing leaves the machine. Every 250th address is "
        "malformed on purpose, so the summary shows what a rejection looks like "
        "(error-address-format): those rejections are expected.",
        epilog=exit_codes_help("demo"), formatter_class=formatter,
    )
    p.add_argument("--messages", "-n", type=positive_int, default=100_000,
                   help="how many messages (default %(default)s)")
    p.add_argument("--concurrency", type=positive_int, default=2,
                   help="client requests in flight (default %(default)s)")
    p.add_argument("--speed", type=float, default=200.0,
                   help="emulator clock speed, emulator seconds per second (default "
                   "%(default)s)")
    p.add_argument("--journal", "-j", metavar="DB",
                   help="keep the demo's journal here, a file or a postgresql:// URL "
                   "(default: a temporary file)")
    p.add_argument("--no-journal", action="store_true", help="send without a journal")
    add_output(p)
    p.set_defaults(func=run)
