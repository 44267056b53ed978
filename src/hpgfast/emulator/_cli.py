"""Command-line settings of the emulator, shared by ``python -m hpgfast.emulator``
and the ``hpgfast emulate`` command.

Strategy: argument definitions and the mapping to ``Emulator`` settings live here,
without any output, so that another command line can embed them;
``__main__`` adds the banner and waits for an interrupt.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._emulator import Emulator
from ._faults import Fault, Faults

__all__ = ["add_arguments", "emulator_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's settings to ``parser`` as options."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    add("--port", type=int, default=9876, help="port; 0 picks a free one (default %(default)s)")
    add("--client", default="CLIENT", help="first path segment (default %(default)s)")
    add("--connector", default="connectorX", help="second path segment (default %(default)s)")
    add("--login", default="CLIENT", help="accepted login (default %(default)s)")
    add("--password", default="P@ssw0rd", help="accepted password (default %(default)s)")
    add("--login-param", default="login", help="login parameter name (default %(default)s)")
    add(
        "--password-param",
        default="password",
        help="password parameter name, e.g. pass (default %(default)s)",
    )
    add("--max-request-line", type=int, default=8192, help="longer request lines get 414")
    add("--reply-order", choices=("sent", "shuffled"), default="sent")
    add("--date-style", choices=("dots", "dashes"), default="dots")
    add("--allow-address", action="append", metavar="ADDRESS", help="only these are allowed")
    add("--deny-address", action="append", default=[], metavar="ADDRESS")
    add("--allow-subject", action="append", metavar="SUBJECT", help="only these are allowed")
    add("--deny-subject", action="append", default=[], metavar="SUBJECT")
    add("--system-error-address", action="append", default=[], metavar="ADDRESS")
    add(
        "--speed",
        type=float,
        default=1.0,
        help="lifecycle clock: emulator seconds per second (default %(default)s)",
    )
    add("--latency", type=float, default=0.0, help="seconds added before every reply")
    add("--certfile", help="serve HTTPS with this certificate chain (PEM)")
    add("--keyfile", help="the certificate's private key (PEM)")
    add("--seed", type=int, help="seed for fault rates and shuffled replies")
    for kind, what in (
        ("http-500", "answer HTTP 500, apply nothing"),
        ("reset", "apply, then reset the connection without a reply"),
        ("cut", "apply, then cut the reply mid-line"),
        ("delay", "apply, then hold the reply back --delay-seconds"),
        ("refuse", "close new connections before reading"),
    ):
        add(f"--{kind}-rate", type=float, default=0.0, metavar="P", help=f"fault: {what}")
    add("--delay-seconds", type=float, default=10.0, help="the delay fault's length")


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    """Start an ``Emulator`` with the settings parsed by ``add_arguments``' options."""
    faults = Faults(
        http_500=Fault(rate=args.http_500_rate),
        reset_after_accept=Fault(rate=args.reset_rate),
        cut_reply=Fault(rate=args.cut_rate),
        delay=Fault(rate=args.delay_rate, seconds=args.delay_seconds),
        refuse=Fault(rate=args.refuse_rate),
    )
    settings: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        client=args.client,
        connector=args.connector,
        login=args.login,
        password=args.password,
        login_param=args.login_param,
        password_param=args.password_param,
        max_request_line=args.max_request_line,
        reply_order=args.reply_order,
        date_style=args.date_style,
        allow_addresses=args.allow_address,
        deny_addresses=args.deny_address,
        allow_subjects=args.allow_subject,
        deny_subjects=args.deny_subject,
        system_error_addresses=args.system_error_address,
        speed=args.speed,
        latency=args.latency,
        certfile=args.certfile,
        keyfile=args.keyfile,
        seed=args.seed,
        faults=faults,
    )
    return Emulator(**settings)
