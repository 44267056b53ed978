"""The ``hpgfast`` command (also ``python -m hpgfast``).

Commands::

    hpgfast send     one message from flags, or a file of messages (CSV or JSON Lines),
                     optionally with a crash-safe journal (--journal run.db)
    hpgfast status   delivery statuses of provider ids (arguments, a file or a journal);
                     --follow polls until every one is final
    hpgfast report   a journal's summary, and its rows as CSV
    hpgfast receive  a server for delivery reports the platform pushes
    hpgfast emulate  the bundled platform emulator
    hpgfast demo     the whole job on the emulator: 100,000 messages, statuses, figures
    hpgfast bench    the codec's key benchmark claims, measured on this machine

Connection settings come from flags or the environment: ``HPGFAST_URL``,
``HPGFAST_LOGIN``, ``HPGFAST_PASSWORD`` (or ``HPGFAST_PASSWORD_FILE``),
``HPGFAST_LOGIN_PARAM``, ``HPGFAST_PASSWORD_PARAM``, ``HPGFAST_CA_CERTS``,
``HPGFAST_SUBJECT``, ``HPGFAST_TIMEOUT``, ``HPGFAST_CONCURRENCY``,
``HPGFAST_MAX_REQUEST_BYTES``. A password is never taken from the command line
(where ``ps`` shows it to every user) unless ``--password`` is given, which warns.

Exit codes (scripts can rely on them):

===  ====================================================================
0    done: every message accepted / every status final / server stopped
1    done, but not everything succeeded: some messages rejected, unknown,
     not sent or invalid; or statuses not final when the deadline passed
2    usage or configuration error: bad flags, unreadable input, a journal
     made for another input, a journal in use, an HTTP 4xx from the URL
3    authentication failed (``error-auth``)
4    transport or protocol failure: platform unreachable, TLS, HTTP 5xx,
     unreadable replies
6    the journal cannot be written (disk full, I/O error); it stays resumable
130  interrupted (Ctrl-C or SIGTERM); the journal stays consistent
===  ====================================================================
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

from .. import __version__
from .._term import EscapingFormatter, escape
from ..exceptions import HPGError
from . import bench, demo, emulate, receive, report, send, status
from ._common import (
    CONNECTION_HELP,
    EXIT_AUTH,
    EXIT_CODES_HELP,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TRANSPORT,
    EXIT_USAGE,
    UsageError,
    exit_for,
    explain,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TRANSPORT",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

log = logging.getLogger(__name__)

#: One module per command, in the order ``hpgfast --help`` lists them.
COMMANDS = (send, status, report, receive, emulate, demo, bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``hpgfast`` argument parser, every subcommand with its ``--help``."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hpgfast",
        description="A fast, safe client for the MFMS HPG SMS protocol. "
        "Start with: hpgfast demo",
        epilog=EXIT_CODES_HELP + CONNECTION_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"hpgfast {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub, formatter)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"hpgfast: error: {escape(message)}", file=sys.stderr)
    return code


def _sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _dispatch(args: argparse.Namespace) -> int:
    return int(args.func(args))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``hpgfast`` command; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    previous: Any = None
    if args.command in ("send", "status", "demo"):
        # SIGTERM unwinds like Ctrl-C: the journal settles what is in flight.
        try:
            previous = signal.signal(signal.SIGTERM, _sigterm)
        except ValueError:  # not the main thread (embedded use)
            pass
    start = time.perf_counter()
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:
        print("hpgfast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except HPGError as exc:
        return _fail(explain(exc), exit_for(exc))
    except BrokenPipeError:
        # stdout closed early (| head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # silence the flush at exit
        os.close(devnull)
        return EXIT_OK
    except OSError as exc:
        return _fail(str(exc), EXIT_USAGE)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.debug("hpgfast %s: exit %d after %.3f s", args.command, code, time.perf_counter() - start)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
