"""``hpgfast receive``: a server for delivery reports the platform pushes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._records import StatusResult
from .._term import escape, json_safe
from ..emulator._cli import port_number
from ._common import (
    UsageError,
    add_output,
    env,
    open_journal_at,
    positive_int,
    read_secret,
    status_json,
    status_row,
    wait_for_signal,
)
from ._exit import EXIT_OK, exit_codes_help


def run(args: argparse.Namespace) -> int:
    """``hpgfast receive``."""
    import threading

    from ..receiver import Receiver

    secret = None
    if args.secret_file:
        secret = read_secret(args.secret_file, "secret")
    else:
        secret = env("HPGFAST_RECEIVER_SECRET")
    if secret is None and not args.no_secret:
        raise UsageError(
            "no secret: set HPGFAST_RECEIVER_SECRET to the secret, or use --secret-file PATH "
            "(--no-secret accepts unauthenticated pushes, with --allow only)"
        )
    if args.no_secret and not args.allow:
        raise UsageError("--no-secret needs --allow: someone must be trusted")
    journal = None
    if args.journal is not None:
        # Reports are recorded against the messages a send put there: a new, empty
        # journal would answer every push 'ok' and keep nothing of use.
        journal = open_journal_at(args.journal, "--journal", existing=True,
                                  synchronous=args.journal_sync, create=False)
    out_lock = threading.Lock()

    def callback(report: StatusResult) -> None:
        with out_lock:
            if args.json:
                print(json_safe(json.dumps(status_json(report), ensure_ascii=False)), flush=True)
            elif not args.quiet:
                print(escape(";".join("" if v is None else str(v) for v in status_row(report))),
                      flush=True)

    try:
        try:
            server = Receiver(
                callback,
                host=args.host,
                port=args.port,
                secret=secret,
                secret_header=args.secret_header,
                allow=args.allow,
                max_body=args.max_body,
                journal=journal,
                json_fields=_json_fields(args.json_field),
                **({} if args.body_deadline is None else {"body_deadline": args.body_deadline}),
            )
        except ValueError as exc:  # a bad --allow network or secret: not a traceback
            raise UsageError(str(exc)) from None
        except OSError as exc:  # the port is in use, the address is not this machine's
            raise UsageError(
                f"cannot listen at {args.host}:{args.port}: {exc.strerror or exc}"
            ) from None
        with server:
            wait_for_signal(lambda: print(
                f"hpgfast receive: listening at {server.url_shown}; Ctrl-C stops",
                file=sys.stderr, flush=True))
    finally:
        if journal is not None:
            journal.close()
    return EXIT_OK


def _json_fields(items: list[str]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for item in items:
        field, sep, name = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--json-field takes FIELD=NAME, got {item!r}")
        fields.setdefault(field, []).append(name)
    return fields


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast receive`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "receive", help="receive delivery reports the platform pushes",
        description="Serve delivery reports pushed by the platform: HTTP GET or POST "
        "with providerId, status, dateTime, reason (plain or indexed [i]), a body of "
        "STATUS lines, or a JSON object or list of them (providerId or imOutMessageId, "
        "status or dlvStatus, dateTime or dlvStatusAt, reason; see --json-field). Times "
        "in HPG's style or ISO-8601 (2020-01-10T19:03:52.355+0300). Answers 'ok'; "
        "prints each report; with --journal records it. A repeated report (same "
        "providerId, status and time among the last 100,000) is answered 'ok' and "
        "taken once. The caller must present the secret (in the X-HPG-Secret header or "
        "as the last path segment; never in a header named with '_', which is dropped); "
        "addresses outside --allow are refused before anything is read, and a "
        "connection holds a thread only once its whole request has arrived (the head "
        "within 10 s, then the body within --body-deadline), so idle connections and "
        "bodies that never come cannot starve a push. From the head alone, a request "
        "without the secret is answered 401 and one announcing a body over --max-body "
        "413, the connection closed: neither waits for its body nor takes a thread; "
        "of the 64 requests waiting for their body, an address holding the most "
        "makes room from its own.",
        epilog=exit_codes_help("receive"), formatter_class=formatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "%(default)s)")
    p.add_argument("--port", type=port_number, default=8080,
                   help="port (default %(default)s; 0: any)")
    p.add_argument("--secret-file", metavar="PATH",
                   help="read the shared secret from the first line of PATH; or set "
                   "HPGFAST_RECEIVER_SECRET to the secret itself (not a path)")
    p.add_argument("--secret-header", default="X-HPG-Secret",
                   help="header carrying the secret (default %(default)s)")
    p.add_argument("--no-secret", action="store_true",
                   help="accept pushes without a secret (requires --allow)")
    p.add_argument("--allow", action="append", metavar="CIDR",
                   help="accept pushes only from these addresses or networks; repeat")
    p.add_argument("--max-body", type=positive_int, default=1 << 20,
                   help="largest body accepted, bytes (default 1 MiB)")
    p.add_argument("--body-deadline", type=float, metavar="SECONDS",
                   help="seconds a request has to send its whole body once its head "
                   "has arrived; 408 after it (default 10)")
    p.add_argument("--journal", "-j", metavar="DB", help="record reports in this journal: a "
                   "file, or a postgresql:// URL (while senders run, too)")
    p.add_argument("--journal-sync", choices=("full", "normal"), default="normal",
                   help=argparse.SUPPRESS)
    p.add_argument("--json-field", action="append", metavar="FIELD=NAME", default=[],
                   help="read FIELD (providerId, status, dateTime, reason) from JSON "
                   "pushes under NAME instead of the defaults; repeat")
    add_output(p)
    p.set_defaults(func=run)
