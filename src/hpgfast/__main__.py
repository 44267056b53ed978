"""``python -m hpgfast``: the ``hpgfast`` command (see ``hpgfast.cli``)."""

from __future__ import annotations

if __name__ == "__main__":
    # hpgfast's first line, so that Ctrl-C is answered from here on; and SIGTERM
    # unwinds as Ctrl-C does, also while the command's own modules are still being
    # imported (``main`` then takes over).
    try:
        import signal
        import sys

        def _interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _interrupt)
        from .cli import main

        code = main()
    except (KeyboardInterrupt, RuntimeError) as exc:
        # Python 3.11 turns a Ctrl-C that lands while a class is being made into a
        # RuntimeError caused by it (``main`` answers the same once it runs).
        if not isinstance(exc, KeyboardInterrupt) and not isinstance(
            exc.__cause__, KeyboardInterrupt
        ):
            raise
        import sys

        print("hpgfast: interrupted", file=sys.stderr)
        code = 130  # ExitCode.INTERRUPTED: hpgfast.cli may not be imported yet
    finally:
        # The command is over: a late SIGTERM is the default again, not a
        # KeyboardInterrupt in the middle of the interpreter's exit.
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if code == 130:
        # CPython marks a KeyboardInterrupt that ends a string exec or eval (a
        # namedtuple or a dataclass being made by an import) as unhandled even when
        # it is caught, and ``python -m`` then dies by SIGINT instead of exiting 130.
        # Every string eval clears that mark first.
        eval("0")
    sys.exit(code)
