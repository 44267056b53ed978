"""``hpgfast report``: a journal's summary, and its rows as CSV."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import datetime, timezone
from typing import Any, Optional

from .._term import escape
from ._common import (
    EXIT_OK,
    LOCAL_EXIT_CODES_HELP,
    UsageError,
    add_output,
)
from ._output import dump_json, table


def _print_report(summary: dict[str, Any], path: str) -> None:
    from ..journal import STATES

    rows: list[tuple[Any, ...]] = []
    for state in STATES:
        rows.append((state.replace("_", " "), summary["states"].get(state, 0)))
        if state == "rejected":
            rows.extend((f"  {code}", n) for code, n in summary["rejected_by_code"].items())
    loaded = summary["loaded"]
    print(f"journal {escape(path)}: {summary['messages']:,} messages"
          + ("" if loaded is not None else " (input not fully loaded yet)"))
    print()
    print(table(rows, ("state", "messages")))
    if summary["statuses"]:
        print()
        print(table(list(summary["statuses"].items()), ("delivery status", "accepted")))
    print(f"\n{summary['status_changes']:,} status changes recorded")


def iso_time(stamp: Optional[float]) -> Optional[str]:
    """A Unix time as ISO 8601 in UTC, seconds, the way ``status_time`` is written."""
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(sep=" ", timespec="seconds")


def run(args: argparse.Namespace) -> int:
    """``hpgfast report``."""
    from ..journal import ROW_COLUMNS, Journal

    path = args.journal_path or args.journal
    if path is None:
        raise UsageError("give the journal: hpgfast report run.db")
    if not os.path.exists(path):
        raise UsageError(f"no journal at {path!r}")
    with Journal(path) as journal:
        summary = journal.summary()
        if args.csv is not None:
            out = sys.stdout if args.csv == "-" else open(args.csv, "w", encoding="utf-8",
                                                          newline="")
            try:
                writer = csv.writer(out)
                writer.writerow(ROW_COLUMNS)
                at = ROW_COLUMNS.index("updated_at")
                for row in journal.rows(states=args.state or None):
                    writer.writerow((*row[:at], iso_time(row[at]), *row[at + 1:]))
            finally:
                if out is not sys.stdout:
                    out.close()
                else:
                    out.flush()
            if args.csv == "-":
                return EXIT_OK
    if args.json:
        dump_json(summary)
    else:
        _print_report(summary, path)
    return EXIT_OK


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast report`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "report", help="a journal's summary, and its rows as CSV",
        description="Summarise a journal (messages by state, rejections by code, delivery "
        "statuses) or write its rows as CSV (updated_at in UTC, ISO 8601).",
        epilog=LOCAL_EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("journal_path", nargs="?", metavar="DB", help="the journal")
    p.add_argument("--journal", "-j", metavar="DB", help=argparse.SUPPRESS)
    p.add_argument("--csv", metavar="PATH", help="write the rows as CSV to PATH ('-': stdout)")
    p.add_argument("--state", action="append", help="only rows in this state (with --csv); repeat")
    add_output(p)
    p.set_defaults(func=run)
