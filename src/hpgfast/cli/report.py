"""``hpgfast report``: a journal's summary, and its rows as CSV."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, Optional

from .._term import counted, escape
from ._common import (
    UsageError,
    add_output,
    is_journal_url,
    journal_path,
    open_journal_at,
    usage_file,
)
from ._exit import EXIT_OK, exit_codes_help
from ._output import _isatty, dump_json, table

#: Columns ``--csv`` adds after the journal's own (``ROW_COLUMNS``): what each
#: message costs, from the journal's ``costs`` table (empty when not recorded).
COST_COLUMNS = ("segments", "encoding", "transliterated")


def _print_report(summary: dict[str, Any], path: str) -> None:
    from ..journal import STATES

    costs = summary["costs"]
    by_state = costs["by_state"]
    rows: list[tuple[Any, ...]] = []
    for state in STATES:
        rows.append((state.replace("_", " "), summary["states"].get(state, 0),
                     by_state.get(state, {}).get("segments", 0)))
        if state == "rejected":
            rows.extend((f"  {code}", n, "") for code, n in summary["rejected_by_code"].items())
    loaded = summary["loaded"]
    print(f"journal {escape(path)}: {counted(summary['messages'], 'message')}"
          + ("" if loaded is not None else " (input not fully loaded yet)"))
    print()
    print(table(rows, ("state", "messages", "segments")))
    print()
    names = {"gsm7": "GSM 7-bit", "ucs2": "UCS-2"}
    print(table(
        [(names.get(enc, enc), v["messages"], v["segments"])
         for enc, v in costs["by_encoding"].items()]
        + [("total", costs["messages"], costs["segments"])],
        ("encoding", "messages", "segments"),
    ))
    accepted = by_state.get("accepted", {}).get("segments", 0)
    print(f"\n{counted(accepted, 'segment')} accepted: what the platform bills")
    if costs["transliterated"]:
        print(f"{counted(costs['transliterated'], 'message')} counted (and sent) "
              "transliterated")
    if costs["messages"] != summary["messages"]:
        uncounted = summary["messages"] - costs["messages"]
        print(f"{counted(uncounted, 'message')} {'has' if uncounted == 1 else 'have'} "
              "no segment count "
              "(a journal made before counts were recorded, or a text that cannot be sent)")
    rows = status_rows(summary)
    if rows:
        print()
        print(table(rows, ("delivery status", "accepted")))
    print(f"\n{counted(summary['status_changes'], 'status change')} recorded")


def status_rows(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """A journal summary's delivery statuses as a table shows them, most first, the
    accepted messages without one yet as "(none yet)" (first among equal counts)."""
    rows = [(str(status), int(n)) for status, n in summary["statuses"].items()]
    none_yet = summary.get("no_status_yet", 0)
    if none_yet:
        at = next((i for i, (_, n) in enumerate(rows) if n <= none_yet), len(rows))
        rows.insert(at, ("(none yet)", none_yet))
    return rows


class _EscapingWriter:
    """A ``csv.writer`` whose text cells are written escaped (``escape``)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(
            [escape(cell) if isinstance(cell, str) else cell for cell in row]
        )


def _blocks(rows: Iterator[tuple[Any, ...]], size: int = 10_000) -> Iterator[list[Any]]:
    """``rows`` in lists of up to ``size``: one costs query per list."""
    block: list[Any] = []
    for row in rows:
        block.append(row)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


def iso_time(stamp: Optional[float]) -> Optional[str]:
    """A Unix time as ISO 8601 in UTC, seconds, the way ``status_time`` is written."""
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(sep=" ", timespec="seconds")


def run(args: argparse.Namespace) -> int:
    """``hpgfast report``."""
    from ..journal import ROW_COLUMNS

    path = args.journal_path or args.journal
    if path is None:
        raise UsageError("give the journal: hpgfast report run.db")
    journal_path(path, "the journal", existing=True)
    if args.state and args.csv is None:
        raise UsageError("--state selects the rows --csv writes; give --csv PATH "
                         "(the summary always counts every state)")
    from ..journal import STATES

    unknown = [s for s in args.state or () if s not in STATES]
    if unknown:
        raise UsageError(f"--state {unknown[0]!r} is not a state of a journal; "
                         f"the states are {', '.join(STATES)}")
    if args.csv not in (None, "-"):
        usage_file(args.csv, "--csv")
    with open_journal_at(path, "the journal", existing=True, create=False) as journal:
        summary = journal.summary()
        summary["costs"] = journal.cost_totals()
        # A URL is shown as the engine shows it: its password masked.
        shown = journal.path if is_journal_url(path) else path
        if args.csv is not None:
            out = sys.stdout if args.csv == "-" else open(args.csv, "w", encoding="utf-8",
                                                          newline="")
            try:
                writer: Any = csv.writer(out)
                if out is sys.stdout and _isatty(out):
                    # Read by a person: reasons and texts came from outside (pushes,
                    # replies, the input) and must not drive the terminal. A file or
                    # a pipe gets the exact text.
                    writer = _EscapingWriter(writer)
                writer.writerow(ROW_COLUMNS + COST_COLUMNS)
                at = ROW_COLUMNS.index("updated_at")
                cid = ROW_COLUMNS.index("client_id")
                for block in _blocks(journal.rows(states=args.state or None)):
                    first, last = block[0][0], block[-1][0]
                    costs = journal.costs_between(first, last)
                    # The clientId sent, as --results shows it: the input's, else
                    # the one the journal made.
                    made = journal.made_ids_between(first, last)
                    for row in block:
                        cost = costs.get(row[0])
                        extra = ("", "", "") if cost is None else (cost[0], cost[1], int(cost[2]))
                        row = (*row[:cid], made.get(row[0], row[cid]), *row[cid + 1:])
                        writer.writerow((*row[:at], iso_time(row[at]), *row[at + 1:], *extra))
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
        _print_report(summary, shown)
    return EXIT_OK


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast report`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "report", help="a journal's summary, and its rows as CSV",
        description="Summarise a journal (messages and SMS segments by state, segments by "
        "encoding, rejections by code, delivery statuses) or write its rows as CSV "
        "(line: the message's number in the input; client_id: the one sent, the input's "
        "or the journal's; updated_at in UTC, ISO 8601; segments, encoding and "
        "transliterated last). "
        "Accepted segments are what the platform bills.",
        epilog=exit_codes_help("report"), formatter_class=formatter,
    )
    p.add_argument("journal_path", nargs="?", metavar="DB",
                   help="the journal: a file, or a postgresql:// URL")
    p.add_argument("--journal", "-j", metavar="DB", help=argparse.SUPPRESS)
    p.add_argument("--csv", metavar="PATH", help="write the rows as CSV to PATH ('-': stdout; on a "
                   "terminal, control characters are shown escaped)")
    p.add_argument("--state", action="append",
                   help="with --csv: only rows in this state (pending, in_flight, accepted, "
                   "accepted_earlier, rejected, unknown, not_sent, invalid); repeat")
    add_output(p)
    p.set_defaults(func=run)
