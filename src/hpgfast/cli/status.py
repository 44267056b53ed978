"""``hpgfast status``: delivery statuses of provider ids or of a journal; ``--follow``."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from .._term import counted, escape
from ..exceptions import HPGError, results_of
from ._common import (
    CONNECTION_HELP,
    UsageError,
    add_connection,
    add_output,
    exit_for,
    explain,
    make_client,
    open_journal_at,
    status_json,
    status_row,
    usage_file,
)
from ._exit import EXIT_INCOMPLETE, EXIT_OK, exit_codes_help
from ._output import Progress, dump_json, table


def _read_ids(path: str) -> list[str]:
    try:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path!r}: {exc.strerror}") from None
    try:
        ids = []
        for raw in f:
            line = raw.strip()
            if line and not line.startswith("#"):
                ids.append(line.split(",")[0].strip())
        return ids
    finally:
        if f is not sys.stdin:
            f.close()


def _status_table(summary: dict[str, Any]) -> str:
    from .report import status_rows

    rows = status_rows(summary)
    return table(rows, ("delivery status", "messages"))


def run(args: argparse.Namespace) -> int:
    """``hpgfast status``."""
    from ..journal._follow import follow

    ids = list(args.ids)
    if args.file:
        ids.extend(_read_ids(usage_file(args.file, "--file")))
    if args.journal is None and not ids:
        raise UsageError("give provider ids, --file PATH or --journal PATH")
    if args.journal is not None and ids:
        raise UsageError("give provider ids (or --file) or --journal, not both")
    quiet = args.quiet or args.json
    journal = None
    if args.journal is not None:
        journal = open_journal_at(
            args.journal, "--journal", existing=True,
            synchronous=args.journal_sync,
            create=False,
            **({"final_statuses": args.final} if args.final else {}),
        )
    try:
        with make_client(args) as client:
            if journal is None and not args.follow:
                stop: Optional[HPGError] = None
                try:
                    results = client.status(ids)
                except HPGError as exc:
                    known = results_of(exc)
                    if known is None or len(known) != len(ids):
                        raise
                    # A batch-stopping error: what is known, then the error.
                    stop, results = exc, known
                if args.json:
                    dump_json([status_json(r) for r in results])
                else:
                    print(table([status_row(r) for r in results],
                                ("provider id", "code", "status", "time", "reason")))
                if stop is not None:
                    if args.json:
                        raise stop  # stdout keeps a list; the error goes to stderr
                    print(f"stopped early: {escape(explain(stop))}")
                    return exit_for(stop)
                errors = [e for e in (getattr(r, "error", None) for r in results) if e]
                if errors:
                    return exit_for(errors[0])
                return EXIT_OK if all(r[0] == "ok" for r in results) else EXIT_INCOMPLETE
            with Progress(None, "following", quiet=quiet, count=False) as progress:
                outcome = follow(
                    client,
                    journal=journal,
                    provider_ids=ids,
                    deadline=args.deadline,
                    interval=args.interval,
                    max_interval=args.max_interval,
                    once=not args.follow,
                    tick=lambda n, note: progress.note(note),
                )
        summary: dict[str, Any] = {
            "rounds": outcome.rounds,
            "changes": outcome.changes,
            "open": outcome.open,
            "seconds": round(outcome.elapsed, 3),
            "deadline_passed": outcome.deadline_passed,
            "error": None if outcome.error is None else explain(outcome.error),
        }
        if journal is not None:
            summary["journal"] = journal.summary()
        else:
            summary["statuses"] = [status_json(r) for r in outcome.statuses.values()]
    finally:
        if journal is not None:
            journal.close()
    if args.json:
        dump_json(summary)
    else:
        if journal is not None:
            print(_status_table(summary["journal"]))
        else:
            print(table([status_row(r) for r in outcome.statuses.values()],
                        ("provider id", "code", "status", "time", "reason")))
        print(
            f"\n{outcome.rounds} round{'' if outcome.rounds == 1 else 's'}, "
            f"{counted(outcome.changes, 'change')} recorded, "
            f"{outcome.open:,} not final, {outcome.elapsed:.1f} s"
            + (" (deadline passed)" if outcome.deadline_passed else "")
        )
        if outcome.error is not None:
            print(f"stopped early: {escape(explain(outcome.error))}")
    if outcome.error is not None:
        return exit_for(outcome.error)
    if outcome.open and outcome.failure is not None:
        return exit_for(outcome.failure)  # as for the same reply without --follow
    return EXIT_OK if outcome.open == 0 else EXIT_INCOMPLETE


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast status`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "status", help="delivery statuses of provider ids",
        description="Ask the delivery status of provider ids given as arguments, in a file "
        "(one per line), or of every accepted message of a journal. --follow polls the "
        "ids that are not final, with backoff, until all are or the deadline passes; with "
        "a journal each change is recorded with its time and reason.",
        epilog=exit_codes_help("status") + CONNECTION_HELP, formatter_class=formatter,
    )
    p.add_argument("ids", nargs="*", metavar="PROVIDER_ID", help="provider ids")
    p.add_argument("--file", "-f", metavar="PATH", help="provider ids, one per line ('-': stdin)")
    p.add_argument("--journal", "-j", metavar="DB", help="follow the accepted messages of a "
                   "journal: a file, or a postgresql:// URL (while senders run, too)")
    p.add_argument("--follow", action="store_true", help="poll until every id is final")
    p.add_argument("--deadline", type=float, default=3600.0, metavar="SECONDS",
                   help="stop following after this long (default 3600)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="first wait between rounds; doubles while nothing changes (default 1)")
    p.add_argument("--max-interval", type=float, default=60.0, metavar="SECONDS",
                   help="longest wait between rounds (default 60)")
    p.add_argument("--journal-sync", choices=("full", "normal"), default="normal",
                   help="journal commits: normal is enough for statuses (default)")
    add_connection(p)
    add_output(p)
    p.set_defaults(func=run, subject=None)
