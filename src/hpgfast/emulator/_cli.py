"""Command-line settings of the emulator, shared by ``python -m hpgfast.emulator``
and the ``hpgfast emulate`` command.

Strategy: argument definitions and the mapping to ``Emulator`` settings live here,
without any output, so that another command line can embed them;
``__main__`` adds the banner and waits for an interrupt.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from .._secretfile import read_secret_file
from ._emulator import PUSH_SHAPES, Emulator
from ._faults import Fault, Faults

__all__ = ["PUSH_SECRET_ENV", "add_arguments", "emulator_from_args"]

#: The environment variable holding the push secret (never an option: ``ps`` shows those).
PUSH_SECRET_ENV = "HPGFAST_PUSH_SECRET"


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
    add("--reply-order", choices=("sent", "shuffled"), default="sent",
        help="reply lines in request order, or shuffled as the spec allows (default %(default)s)")
    add("--date-style", choices=("dots", "dashes"), default="dots",
        help="status times as 2012.03.15 19:53:14 (dots) or 2012-03-15 19:53:14 (dashes) "
        "(default %(default)s)")
    add("--allow-address", action="append", metavar="ADDRESS", help="only these are allowed")
    add("--deny-address", action="append", default=[], metavar="ADDRESS",
        help="answer error-address-unknown for this address; repeat")
    add("--allow-subject", action="append", metavar="SUBJECT", help="only these are allowed")
    add("--deny-subject", action="append", default=[], metavar="SUBJECT",
        help="answer error-subject-unknown for this sender; repeat")
    add("--system-error-address", action="append", default=[], metavar="ADDRESS",
        help="answer error-system for messages to this address; repeat")
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
    add(
        "--push-url",
        metavar="URL",
        help="push every status change of accepted messages to URL (e.g. an "
        "'hpgfast receive' server)",
    )
    add(
        "--push-secret-file",
        metavar="PATH",
        help=f"the push secret, first line of PATH, sent in X-HPG-Secret [{PUSH_SECRET_ENV}]",
    )
    add(
        "--push-shape",
        choices=PUSH_SHAPES,
        default="lines",
        help="lines: POST of STATUS lines; form: POST of indexed fields; query: GET "
        "(default %(default)s)",
    )
    add("--push-batch", type=int, default=500, metavar="N", help="most reports per push")


def _push_secret(args: argparse.Namespace) -> Optional[str]:
    """The push secret from ``--push-secret-file`` or the environment; never echoed."""
    path = getattr(args, "push_secret_file", None)
    if path:
        return read_secret_file(path, "push secret")
    return os.environ.get(PUSH_SECRET_ENV) or None


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
    if args.push_url:
        settings.update(
            push_url=args.push_url,
            push_secret=_push_secret(args),
            push_shape=args.push_shape,
            push_batch=args.push_batch,
        )
    elif args.push_secret_file:
        raise ValueError("--push-secret-file needs --push-url")
    return Emulator(**settings)
