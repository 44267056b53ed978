"""The ``hpgfast`` command (also ``python -m hpgfast``).

Commands::

    hpgfast send     one message from flags, or a file of messages (CSV or JSON Lines),
                     optionally with a crash-safe journal (--journal run.db, or a
                     postgresql:// URL that a fleet of senders shares)
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

Exit codes (scripts can rely on them; ``hpgfast COMMAND --help`` lists the codes that
command can return, docs/cli.md has the same table):

"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Optional

# Only what is quick to import here: the commands (and the client, urllib3...) are
# imported inside ``main``, where Ctrl-C is already answered with "interrupted".
from ._exit import (
    EXIT_AUTH,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TRANSPORT,
    EXIT_USAGE,
    ExitCode,
    overview_help,
    rst_table,
)

__doc__ = (__doc__ or "") + rst_table()

__all__ = [
    "EXIT_AUTH",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TRANSPORT",
    "EXIT_USAGE",
    "ExitCode",
    "build_parser",
    "main",
]

log = logging.getLogger(__name__)

#: The commands' modules, in the order ``hpgfast --help`` lists them.
COMMAND_NAMES = ("send", "status", "report", "receive", "emulate", "demo", "bench")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``hpgfast`` argument parser, every subcommand with its ``--help``.

    ``only``: the one subcommand to add (``_main``, for a command line that names
    it): the others' modules are not imported (the emulator's, the journal's...),
    which is most of a command's start-up.
    """
    import importlib

    from .. import __version__
    from ._common import CONNECTION_HELP

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hpgfast",
        description="A fast, safe client for the MFMS HPG SMS protocol. "
        "Start with: hpgfast demo",
        epilog=overview_help() + CONNECTION_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"hpgfast {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_NAMES if only is None else (only,):
        importlib.import_module(f".{name}", __name__).add_parser(sub, formatter)
        # After the command too (hpgfast send -vv): its own count, added to the one
        # before it, since a subcommand's defaults would overwrite the main parser's.
        sub.choices[name].add_argument(
            "-v", "--verbose", action="count", default=0, dest="command_verbose",
            help="log to stderr (-vv for debug)")
    return parser


def _fail(message: str, code: int) -> int:
    from .._term import escape

    print(f"hpgfast: error: {escape(message)}", file=sys.stderr)
    return code


#: The signals (Ctrl-C, SIGTERM) this run of ``main`` was sent. Python may run a
#: handler inside a finalizer or a callback, where the KeyboardInterrupt it raises is
#: only reported and then lost; what it recorded here is not (``signalled()``).
_SIGNALLED: list[int] = []


def _sigterm(signum: int, frame: object) -> NoReturn:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def signalled() -> bool:
    """Whether this run was sent Ctrl-C or SIGTERM (even one whose exception was lost)."""
    return bool(_SIGNALLED)


def _interrupted_by(exc: BaseException) -> bool:
    """Whether ``exc`` came of a Ctrl-C (or SIGTERM): Python 3.11 turns one that lands
    while a class is being made (``__set_name__``, in an import) into a RuntimeError."""
    seen: set[int] = set()
    cause: Optional[BaseException] = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _dispatch(args: argparse.Namespace) -> int:
    if _SIGNALLED:
        # A Ctrl-C or SIGTERM during start-up whose KeyboardInterrupt Python only
        # reported (raised in a finalizer): the command does not start.
        raise KeyboardInterrupt
    return int(args.func(args))


def _quiet_lost_interrupts(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """``sys.unraisablehook`` for a run: a KeyboardInterrupt of our signal handler
    raised inside a finalizer (a weakref callback of the import machinery) cannot
    unwind anything; the signal is recorded (``signalled()``) and answered there,
    so Python's "Exception ignored" traceback is not printed. Anything else is."""

    def quiet(unraisable: Any) -> None:
        if not (_SIGNALLED and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            hook(unraisable)

    return quiet


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``hpgfast`` command; returns the exit status (see the module docstring)."""
    previous: dict[int, Any] = {}
    _SIGNALLED.clear()
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_lost_interrupts(unraisable)
    try:
        # The very first thing, before the commands (and urllib3...) are imported:
        # SIGTERM unwinds like Ctrl-C (a journal settles what is in flight), and both
        # are recorded (``signalled()``). A server that is serving answers both itself
        # (``wait_for_signal``). A Ctrl-C the shell has us ignore stays ignored.
        try:
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _sigterm)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                previous[signal.SIGINT] = signal.signal(signal.SIGINT, _sigterm)
        except ValueError:  # not the main thread (embedded use)
            pass
        return _main(argv)
    except KeyboardInterrupt:
        # At any moment, start-up (imports, argument parsing) included.
        print("hpgfast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not _interrupted_by(exc):
            raise
        print("hpgfast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = unraisable


def _main(argv: Optional[Sequence[str]]) -> int:
    import os

    from .._term import EscapingFormatter
    from ..exceptions import HPGError
    from ._common import UsageError, exit_for, explain

    parser = build_parser(_command_named(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbose = args.verbose + getattr(args, "command_verbose", 0)
    _configure_logging(verbose, args.command, EscapingFormatter)
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
        # Which file, and what is wrong with it, not "[Errno 21] Is a directory: 'x'".
        text = (f"{exc.filename!r}: {exc.strerror}" if exc.filename and exc.strerror
                else str(exc))
        return _fail(text, EXIT_USAGE)
    log.debug("hpgfast %s: exit %d after %.3f s", args.command, code, time.perf_counter() - start)
    return code


def _command_named(argv: Sequence[str]) -> Optional[str]:
    """The command ``argv`` runs, when only that one's parser is needed to parse it:
    the first word, after nothing but ``-v`` flags; else None (the whole parser:
    ``--help``, ``--version``, a mistyped command)."""
    for word in argv:
        if word in COMMAND_NAMES:
            return word
        if not word.startswith("-v") and not word.startswith("--verb"):
            return None
    return None


#: The servers' own loggers, whose warnings (a flood of connections, a push that
#: failed) ``receive`` and ``emulate`` show without ``-v``.
SERVER_LOGGERS = {"receive": "hpgfast.receiver", "emulate": "hpgfast.emulator"}


def _configure_logging(verbose: int, command: str, formatter: Any) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    if not verbose:
        # The command says what happened in its own words (a summary, "stopped
        # early: ..."); the library's log lines are for -v.
        own = SERVER_LOGGERS.get(command)
        handler.addFilter(lambda record: own is not None and (
            record.name == own or record.name.startswith(own + ".")))
    logging.basicConfig(level=level, handlers=[handler])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
