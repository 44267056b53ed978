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
130  interrupted (Ctrl-C or SIGTERM); the journal stays consistent
===  ====================================================================
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, NoReturn, Optional

from . import __version__
from ._cli_input import FORMATS, InputError, detect_format, read_messages
from ._cli_output import Progress, dump_json, table
from ._records import Message, StatusResult
from ._secretfile import read_secret_file
from ._term import EscapingFormatter, escape, json_safe
from ._wire import Code
from .exceptions import (
    AuthError,
    HPGError,
    HTTPStatusError,
    MessageError,
    RequestTooLarge,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TRANSPORT",
    "EXIT_USAGE",
    "main",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_TRANSPORT = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    done: every message accepted / every status final / server stopped
  1    done, but some messages were rejected, unknown, not sent or invalid,
       or some statuses were not final when the deadline passed
  2    usage or configuration error (bad flags or input, journal mismatch or in use)
  3    authentication failed (error-auth)
  4    transport or protocol failure (unreachable, TLS, HTTP 5xx, bad replies)
  130  interrupted (Ctrl-C, SIGTERM); a journal stays consistent

connection settings (flags win over the environment):
  HPGFAST_URL, HPGFAST_LOGIN, HPGFAST_PASSWORD or HPGFAST_PASSWORD_FILE,
  HPGFAST_LOGIN_PARAM, HPGFAST_PASSWORD_PARAM, HPGFAST_CA_CERTS, HPGFAST_SUBJECT,
  HPGFAST_TIMEOUT, HPGFAST_CONCURRENCY, HPGFAST_MAX_REQUEST_BYTES
"""


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


# -- settings --------------------------------------------------------------------------


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def _setting(value: Any, env: str, cast: Callable[[str], Any] = str) -> Any:
    if value is not None:
        return value
    raw = _env(env)
    if raw is None:
        return None
    try:
        return cast(raw)
    except ValueError:
        raise UsageError(f"{env}={raw!r} is not a valid value") from None


def _read_secret_file(path: str, what: str) -> str:
    try:
        return read_secret_file(path, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _password(args: argparse.Namespace) -> str:
    given = [
        name
        for name, on in (
            ("--password", args.password is not None),
            ("--password-file", args.password_file is not None),
            ("--password-stdin", args.password_stdin),
        )
        if on
    ]
    if len(given) > 1:
        raise UsageError(f"give one of {', '.join(given)}, not several")
    if args.password is not None:
        print(
            "hpgfast: warning: --password is visible to every user of this machine "
            "(ps, /proc); prefer HPGFAST_PASSWORD, --password-file or --password-stdin",
            file=sys.stderr,
        )
        return str(args.password)
    if args.password_stdin:
        if getattr(args, "file", None) == "-":
            raise UsageError("--password-stdin cannot be used with --file - (both read stdin)")
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise UsageError("--password-stdin: standard input gave no password")
        return value
    path = args.password_file or _env("HPGFAST_PASSWORD_FILE")
    if path:
        return _read_secret_file(path, "password")
    value = _env("HPGFAST_PASSWORD")
    if value is None:
        raise UsageError(
            "no password: set HPGFAST_PASSWORD or HPGFAST_PASSWORD_FILE, or use "
            "--password-file or --password-stdin"
        )
    return value


def _pairs(values: Optional[Sequence[str]], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{flag} takes NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _client(args: argparse.Namespace) -> Any:
    """An ``hpgfast.Client`` from the connection flags and the environment."""
    from .client import Client

    url = _setting(args.url, "HPGFAST_URL")
    if not url:
        raise UsageError("no connector URL: give --url or set HPGFAST_URL")
    login = _setting(args.login, "HPGFAST_LOGIN")
    if not login:
        raise UsageError("no login: give --login or set HPGFAST_LOGIN")
    password = _password(args)
    settings: dict[str, Any] = {}
    for key, value in (
        ("login_param", _setting(args.login_param, "HPGFAST_LOGIN_PARAM")),
        ("password_param", _setting(args.password_param, "HPGFAST_PASSWORD_PARAM")),
        ("ca_certs", _setting(args.ca_certs, "HPGFAST_CA_CERTS")),
        ("timeout", _setting(args.timeout, "HPGFAST_TIMEOUT", float)),
        ("concurrency", _setting(args.concurrency, "HPGFAST_CONCURRENCY", int)),
        ("max_request_bytes", _setting(args.max_request_bytes, "HPGFAST_MAX_REQUEST_BYTES", int)),
        ("max_batch", args.max_batch),
        ("default_subject", _setting(getattr(args, "subject", None), "HPGFAST_SUBJECT")),
    ):
        if value is not None:
            settings[key] = value
    if args.insecure:
        settings["verify"] = False
    extra = _pairs(args.param, "--param")
    if extra:
        settings["extra_params"] = extra
    try:
        return Client(url, login, password, **settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection", "flags win over the environment variables named in brackets"
    )
    add = group.add_argument
    add("--url", help="the connector's base URL, http(s)://host:port/CLIENT/connector/ "
        "[HPGFAST_URL]")
    add("--login", help="login [HPGFAST_LOGIN]")
    add("--password-file", metavar="PATH",
        help="read the password from the first line of PATH [HPGFAST_PASSWORD_FILE]; "
        "or set HPGFAST_PASSWORD")
    add("--password-stdin", action="store_true",
        help="read the password from the first line of standard input")
    add("--password", help=argparse.SUPPRESS)  # visible in ps: works, but warns
    add("--login-param", help="the login parameter's name (default login) "
        "[HPGFAST_LOGIN_PARAM]")
    add("--password-param", help="the password parameter's name, e.g. pass "
        "(default password) [HPGFAST_PASSWORD_PARAM]")
    add("--ca-certs", metavar="PEM", help="certificates to trust for HTTPS "
        "[HPGFAST_CA_CERTS]")
    add("--insecure", action="store_true",
        help="do not verify the platform's certificate (anyone on the path can read "
        "the password)")
    add("--timeout", type=float, help="seconds to wait for a reply (default 30) "
        "[HPGFAST_TIMEOUT]")
    add("--concurrency", type=int, help="requests in flight at once (default 1) "
        "[HPGFAST_CONCURRENCY]")
    add("--max-request-bytes", type=int,
        help="longest request line (default 8192) [HPGFAST_MAX_REQUEST_BYTES]")
    add("--max-batch", type=int, help="at most this many messages or ids per request")
    add("--param", action="append", metavar="NAME=VALUE",
        help="a request-level parameter sent with every request (priority=high); repeat")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output on stderr")


# -- send ------------------------------------------------------------------------------


def _single_rows(args: argparse.Namespace) -> list[tuple[int, Message]]:
    params = _pairs(args.message_param, "--message-param") or None
    return [(1, Message(args.to, args.text, args.message_subject, args.client_id, params))]


def _fingerprint(args: argparse.Namespace, fmt: Optional[str]) -> dict[str, str]:
    from .journal import file_fingerprint

    settings = {
        "subject": _setting(args.subject, "HPGFAST_SUBJECT") or "",
        "params": json.dumps(_pairs(args.param, "--param"), sort_keys=True),
    }
    if args.file is not None:
        if args.file == "-":
            raise UsageError("--journal needs a file (--file -, standard input, cannot be resumed)")
        try:
            fp = file_fingerprint(args.file)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file!r}: {exc.strerror}") from None
        return {**fp, "format": fmt or "", **settings}
    single = json.dumps([*_single_rows(args)[0][1][:4], args.message_param], sort_keys=True)
    return {
        "input_sha256": hashlib.sha256(single.encode()).hexdigest(),
        "format": "flags",
        **settings,
    }


def _send_summary(
    outcome: Any, journal_summary: Optional[dict[str, Any]], total: Optional[int]
) -> dict[str, Any]:
    from .journal import STATES

    run = {s: outcome.states.get(s, 0) for s in STATES if s not in ("pending", "in_flight")}
    out: dict[str, Any] = {
        "this_run": {
            "attempted": outcome.attempted,
            **run,
            "rejected_by_code": dict(outcome.rejected_by_code),
            "seconds": round(outcome.elapsed, 3),
            "messages_per_second": round(outcome.rate, 1),
        },
        "error": None if outcome.error is None else str(outcome.error),
    }
    if outcome.recovered:
        out["recovered"] = outcome.recovered
    if journal_summary is not None:
        out["journal"] = journal_summary
    if total is not None:
        out["messages"] = total
    return out


def _print_send_summary(summary: dict[str, Any]) -> None:
    run = summary["this_run"]
    journal = summary.get("journal")
    rows: list[tuple[Any, ...]] = []
    states = ("accepted", "rejected", "unknown", "not_sent", "invalid")
    for state in states:
        row: list[Any] = [state.replace("_", " "), run.get(state, 0)]
        if journal is not None:
            row.append(journal["states"].get(state, 0))
        rows.append(tuple(row))
        if state == "rejected":
            codes = journal["rejected_by_code"] if journal is not None else run["rejected_by_code"]
            for code, n in codes.items():
                sub: list[Any] = [f"  {code}", run["rejected_by_code"].get(code, 0)]
                if journal is not None:
                    sub.append(n)
                rows.append(tuple(sub))
    if journal is not None:
        rows.append(("pending", "", journal["states"].get("pending", 0)))
    header = ["result", "this run"] + (["journal"] if journal is not None else [])
    print(table(rows, header))
    print(
        f"\n{run['attempted']:,} messages sent in {run['seconds']:.1f} s "
        f"({run['messages_per_second']:,.0f} msg/s)"
    )
    recovered = summary.get("recovered") or {}
    if recovered.get("in_flight_to_unknown"):
        print(
            f"{recovered['in_flight_to_unknown']:,} messages were in flight when an earlier "
            "run stopped: marked unknown, not sent again (--resend-unknown sends them)"
        )
    if summary.get("error"):
        print(f"stopped early: {escape(summary['error'])}")


def _send_exit(outcome: Any, complete: bool) -> int:
    if outcome.error is not None:
        return _exit_for(outcome.error)
    return EXIT_OK if complete else EXIT_INCOMPLETE


def cmd_send(args: argparse.Namespace) -> int:
    """``hpgfast send``."""
    from ._cli_run import load_journal, send_journal, send_plain

    if (args.file is None) == (args.to is None):
        raise UsageError("give --file PATH, or --to ADDRESS with --text TEXT")
    if args.to is not None and args.text is None:
        raise UsageError("--to needs --text")
    fmt = detect_format(args.file, args.format) if args.file is not None else None

    def rows() -> Iterator[tuple[int, Message]]:
        if args.file is None:
            return iter(_single_rows(args))
        return read_messages(args.file, fmt or "csv")

    if args.journal is None:
        if args.resend_unknown:
            raise UsageError("--resend-unknown needs --journal")
        with _client(args) as client:
            if args.to is not None:
                results = client.send([m for _, m in rows()])
                r = results[0]
                if args.json:
                    dump_json({"code": r[0], "client_id": r[1], "provider_id": r[2],
                               "error": str(getattr(r, "error", None) or "") or None})
                else:
                    print(table([(r[0], r[1], r[2])], ("code", "client id", "provider id")))
                error = getattr(r, "error", None)
                if r[0] in (Code.NOT_SENT, Code.UNKNOWN) and error is not None:
                    return _exit_for(error)
                return EXIT_OK if r[0] == Code.OK else EXIT_INCOMPLETE
            with Progress(None, "sending", quiet=args.quiet or args.json) as progress:
                outcome = send_plain(
                    client, rows(), chunk=args.chunk,
                    tick=progress.tick,
                )
        summary = _send_summary(outcome, None, None)
        if args.json:
            dump_json(summary)
        else:
            _print_send_summary(summary)
        complete = outcome.states.get("accepted", 0) == outcome.attempted
        return _send_exit(outcome, complete)

    from .journal import Journal

    fingerprint = _fingerprint(args, fmt)
    quiet = args.quiet or args.json
    with Journal(args.journal, synchronous=args.journal_sync, lock=True) as journal:
        journal.bind(fingerprint)
        if journal.loaded is None:
            with Progress(None, "journaling input", quiet=quiet) as progress:
                total = load_journal(journal, rows(), tick=lambda n, note: progress.update(n))
        else:
            total = journal.loaded
        counts = journal.counts()
        todo = counts["pending"] + counts["not_sent"]
        if args.resend_unknown:
            todo += counts["unknown"] + counts["in_flight"]
        with _client(args) as client:
            with Progress(todo, "sending", quiet=quiet) as progress:
                outcome = send_journal(
                    client,
                    journal,
                    chunk=args.chunk,
                    resend_unknown=args.resend_unknown,
                    tick=progress.tick,
                )
        summary = _send_summary(outcome, journal.summary(), total)
        complete = journal.counts()["accepted"] == total
    if args.json:
        dump_json(summary)
    else:
        _print_send_summary(summary)
    return _send_exit(outcome, complete)


# -- status ----------------------------------------------------------------------------


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


def _status_row(r: StatusResult) -> tuple[Any, ...]:
    when = r[3].isoformat(sep=" ") if r[3] is not None else None
    return (r[1], r[0], r[2], when, r[4])


def _status_json(r: StatusResult) -> dict[str, Any]:
    return dict(zip(("provider_id", "code", "status", "time", "reason"), _status_row(r)))


def _status_table(summary: dict[str, Any]) -> str:
    rows = [(status, n) for status, n in summary["statuses"].items()]
    return table(rows, ("delivery status", "messages"))


def cmd_status(args: argparse.Namespace) -> int:
    """``hpgfast status``."""
    from ._cli_run import follow

    ids = list(args.ids)
    if args.file:
        ids.extend(_read_ids(args.file))
    if args.journal is None and not ids:
        raise UsageError("give provider ids, --file PATH or --journal PATH")
    if args.journal is not None and ids:
        raise UsageError("give provider ids (or --file) or --journal, not both")
    quiet = args.quiet or args.json
    journal = None
    if args.journal is not None:
        from .journal import Journal

        if not os.path.exists(args.journal):
            raise UsageError(f"no journal at {args.journal!r}")
        journal = Journal(args.journal, synchronous=args.journal_sync)
    try:
        with _client(args) as client:
            if journal is None and not args.follow:
                results = client.status(ids)
                if args.json:
                    dump_json([_status_json(r) for r in results])
                else:
                    print(table([_status_row(r) for r in results],
                                ("provider id", "code", "status", "time", "reason")))
                errors = [e for e in (getattr(r, "error", None) for r in results) if e]
                if errors:
                    return _exit_for(errors[0])
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
            "error": None if outcome.error is None else str(outcome.error),
        }
        if journal is not None:
            summary["journal"] = journal.summary()
        else:
            summary["statuses"] = [_status_json(r) for r in outcome.statuses.values()]
    finally:
        if journal is not None:
            journal.close()
    if args.json:
        dump_json(summary)
    else:
        if journal is not None:
            print(_status_table(summary["journal"]))
        else:
            print(table([_status_row(r) for r in outcome.statuses.values()],
                        ("provider id", "code", "status", "time", "reason")))
        print(
            f"\n{outcome.rounds} round{'' if outcome.rounds == 1 else 's'}, "
            f"{outcome.changes:,} changes recorded, "
            f"{outcome.open:,} not final, {outcome.elapsed:.1f} s"
            + (" (deadline passed)" if outcome.deadline_passed else "")
        )
        if outcome.error is not None:
            print(f"stopped early: {escape(str(outcome.error))}")
    if outcome.error is not None:
        return _exit_for(outcome.error)
    return EXIT_OK if outcome.open == 0 else EXIT_INCOMPLETE


# -- report ----------------------------------------------------------------------------


def _print_report(summary: dict[str, Any], path: str) -> None:
    from .journal import STATES

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


def cmd_report(args: argparse.Namespace) -> int:
    """``hpgfast report``."""
    from .journal import ROW_COLUMNS, Journal

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
                writer.writerows(journal.rows(states=args.state or None))
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


# -- receive ---------------------------------------------------------------------------


def _wait_for_signal() -> None:
    import threading

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _json_fields(items: list[str]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for item in items:
        field, sep, name = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--json-field takes FIELD=NAME, got {item!r}")
        fields.setdefault(field, []).append(name)
    return fields


def cmd_receive(args: argparse.Namespace) -> int:
    """``hpgfast receive``."""
    import threading

    from .receiver import Receiver

    secret = None
    if args.secret_file:
        secret = _read_secret_file(args.secret_file, "secret")
    else:
        secret = _env("HPGFAST_RECEIVER_SECRET")
    if secret is None and not args.no_secret:
        raise UsageError(
            "no secret: set HPGFAST_RECEIVER_SECRET or use --secret-file "
            "(--no-secret accepts unauthenticated pushes, with --allow only)"
        )
    if args.no_secret and not args.allow:
        raise UsageError("--no-secret needs --allow: someone must be trusted")
    journal = None
    if args.journal is not None:
        from .journal import Journal

        journal = Journal(args.journal, synchronous=args.journal_sync)
    out_lock = threading.Lock()

    def callback(report: StatusResult) -> None:
        with out_lock:
            if args.json:
                print(json_safe(json.dumps(_status_json(report), ensure_ascii=False)), flush=True)
            elif not args.quiet:
                print(escape(";".join("" if v is None else str(v) for v in _status_row(report))),
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
            )
        except ValueError as exc:  # a bad --allow network or secret: not a traceback
            raise UsageError(str(exc)) from None
        with server:
            print(f"hpgfast receive: listening at {server.url_shown}; Ctrl-C stops",
                  file=sys.stderr, flush=True)
            _wait_for_signal()
    finally:
        if journal is not None:
            journal.close()
    return EXIT_OK


# -- emulate ---------------------------------------------------------------------------


def cmd_emulate(args: argparse.Namespace) -> int:
    """``hpgfast emulate``."""
    from .emulator._cli import emulator_from_args

    try:
        emulator = emulator_from_args(args)
    except (OSError, ValueError) as exc:
        raise UsageError(f"emulator: {exc}") from None
    with emulator:
        print(emulator.url, flush=True)
        print(
            f"login={emulator.login_param}:{emulator.login} "
            f"{emulator.password_param}:{emulator.password}; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        _wait_for_signal()
        print(
            f"served {sum(emulator.requests.values())} requests, "
            f"accepted {len(emulator.ledger)} messages",
            file=sys.stderr,
        )
    return EXIT_OK


# -- demo and bench --------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """``hpgfast demo``."""
    from ._cli_demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """``hpgfast bench``."""
    from . import _bench

    progress = None if (args.quiet or args.json) else (
        lambda line: print(line, file=sys.stderr, flush=True)
    )
    rows, medians = _bench.run(budget=args.budget, progress=progress)
    if args.json:
        dump_json({
            "claims": [
                {"claim": r.ratio.claim, "measured": round(r.value, 3),
                 "target": r.ratio.target, "verdict": r.verdict}
                for r in rows
            ],
            "medians_seconds": {f"{g}/{n}": v for (g, n), v in medians.items()},
        })
    else:
        print(_bench.format_table(rows))
    return EXIT_OK if all(r.value >= r.ratio.target for r in rows) else EXIT_INCOMPLETE


# -- the parser ------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``hpgfast`` argument parser, every subcommand with its ``--help``."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hpgfast",
        description="A fast, safe client for the MFMS HPG SMS protocol. "
        "Start with: hpgfast demo",
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"hpgfast {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log to stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # send
    p = sub.add_parser(
        "send", help="send one message, or a file of messages",
        description="Send one message (--to, --text) or a file of messages (--file): CSV "
        "with a header (address,text[,subject][,client_id][,extra columns...]) or JSON "
        "Lines ({\"address\":..,\"text\":..,\"subject\":..,\"client_id\":..,\"params\":{..}}). "
        "With --journal every message is recorded before it goes out; rerunning the "
        "same command resumes without sending anything twice.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    src = p.add_argument_group("what to send")
    src.add_argument("--file", "-f", metavar="PATH", help="a CSV or JSON Lines file ('-': stdin, "
                     "without --journal)")
    src.add_argument("--format", choices=FORMATS,
                     help="the file's format (default: from its name; .jsonl -> jsonl, else csv)")
    src.add_argument("--to", metavar="ADDRESS", help="one message: the recipient")
    src.add_argument("--text", help="one message: the text")
    src.add_argument("--client-id", help="one message: your id for it")
    src.add_argument("--message-subject", metavar="SUBJECT", help="one message: its sender")
    src.add_argument("--message-param", action="append", metavar="NAME=VALUE",
                     help="one message: an extra parameter; repeat")
    src.add_argument("--subject", help="default sender for messages without one "
                     "[HPGFAST_SUBJECT]")
    jg = p.add_argument_group("journal")
    jg.add_argument("--journal", "-j", metavar="DB",
                    help="a SQLite journal: record, resume, never send twice")
    jg.add_argument("--resend-unknown", action="store_true",
                    help="send again the messages whose outcome is unknown (a recipient "
                    "may get a second SMS)")
    jg.add_argument("--journal-sync", choices=("full", "normal"), default="full",
                    help="full: fsync every commit, safe against power loss (default); "
                    "normal: safe against a killed process only")
    p.add_argument("--chunk", type=_positive_int, default=5000,
                   help="messages per client call and journal transaction (default 5000)")
    _add_connection(p)
    _add_output(p)
    p.set_defaults(func=cmd_send)

    # status
    p = sub.add_parser(
        "status", help="delivery statuses of provider ids",
        description="Ask the delivery status of provider ids given as arguments, in a file "
        "(one per line), or of every accepted message of a journal. --follow polls the "
        "ids that are not final, with backoff, until all are or the deadline passes; with "
        "a journal each change is recorded with its time and reason.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("ids", nargs="*", metavar="PROVIDER_ID", help="provider ids")
    p.add_argument("--file", "-f", metavar="PATH", help="provider ids, one per line ('-': stdin)")
    p.add_argument("--journal", "-j", metavar="DB", help="follow the accepted messages of a "
                   "journal")
    p.add_argument("--follow", action="store_true", help="poll until every id is final")
    p.add_argument("--deadline", type=float, default=3600.0, metavar="SECONDS",
                   help="stop following after this long (default 3600)")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="first wait between rounds; doubles while nothing changes (default 1)")
    p.add_argument("--max-interval", type=float, default=60.0, metavar="SECONDS",
                   help="longest wait between rounds (default 60)")
    p.add_argument("--journal-sync", choices=("full", "normal"), default="normal",
                   help="journal commits: normal is enough for statuses (default)")
    _add_connection(p)
    _add_output(p)
    p.set_defaults(func=cmd_status, subject=None)

    # report
    p = sub.add_parser(
        "report", help="a journal's summary, and its rows as CSV",
        description="Summarise a journal (messages by state, rejections by code, delivery "
        "statuses) or write its rows as CSV.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("journal_path", nargs="?", metavar="DB", help="the journal")
    p.add_argument("--journal", "-j", metavar="DB", help=argparse.SUPPRESS)
    p.add_argument("--csv", metavar="PATH", help="write the rows as CSV to PATH ('-': stdout)")
    p.add_argument("--state", action="append", help="only rows in this state (with --csv); repeat")
    _add_output(p)
    p.set_defaults(func=cmd_report)

    # receive
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
        "as the last path segment); addresses outside --allow are refused before "
        "anything is read, and a connection holds a thread only once its request head "
        "has arrived (within 10 s), so idle connections cannot starve a push.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "%(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port (default %(default)s; 0: any)")
    p.add_argument("--secret-file", metavar="PATH",
                   help="the shared secret, first line of PATH [HPGFAST_RECEIVER_SECRET]")
    p.add_argument("--secret-header", default="X-HPG-Secret",
                   help="header carrying the secret (default %(default)s)")
    p.add_argument("--no-secret", action="store_true",
                   help="accept pushes without a secret (requires --allow)")
    p.add_argument("--allow", action="append", metavar="CIDR",
                   help="accept pushes only from these addresses or networks; repeat")
    p.add_argument("--max-body", type=_positive_int, default=1 << 20,
                   help="largest body accepted, bytes (default 1 MiB)")
    p.add_argument("--journal", "-j", metavar="DB", help="record reports in this journal")
    p.add_argument("--journal-sync", choices=("full", "normal"), default="normal",
                   help=argparse.SUPPRESS)
    p.add_argument("--json-field", action="append", metavar="FIELD=NAME", default=[],
                   help="read FIELD (providerId, status, dateTime, reason) from JSON "
                   "pushes under NAME instead of the defaults; repeat")
    _add_output(p)
    p.set_defaults(func=cmd_receive)

    # emulate
    from .emulator._cli import add_arguments

    p = sub.add_parser(
        "emulate", help="run the bundled platform emulator",
        description="A local HPG platform on loopback: accepts SMS, sends none. Prints "
        "the connector URL on the first line of stdout, then serves until Ctrl-C.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    add_arguments(p)
    p.set_defaults(func=cmd_emulate)

    # demo
    p = sub.add_parser(
        "demo", help="the whole job on the emulator, with figures",
        description="Start the emulator, send generated messages through the real client "
        "with a journal, follow their statuses to final, and print a summary: accepted, "
        "rejected by code, unknown, delivery statuses, messages per second, and the "
        "client's CPU per message. Nothing leaves the machine.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("--messages", "-n", type=_positive_int, default=100_000,
                   help="how many messages (default %(default)s)")
    p.add_argument("--concurrency", type=_positive_int, default=2,
                   help="client requests in flight (default %(default)s)")
    p.add_argument("--speed", type=float, default=200.0,
                   help="emulator clock speed, emulator seconds per second (default "
                   "%(default)s)")
    p.add_argument("--journal", "-j", metavar="DB",
                   help="keep the demo's journal here (default: a temporary file)")
    p.add_argument("--no-journal", action="store_true", help="send without a journal")
    _add_output(p)
    p.set_defaults(func=cmd_demo)

    # bench
    p = sub.add_parser(
        "bench", help="the codec's benchmark claims, measured here",
        description="Time the codec's key cases against their peers on this machine and "
        "compare with the claimed ratios.",
        epilog=EXIT_CODES_HELP, formatter_class=formatter,
    )
    p.add_argument("--budget", type=float, default=2.0, help="seconds per case (default 2)")
    _add_output(p)
    p.set_defaults(func=cmd_bench)
    return parser


# -- errors and main -------------------------------------------------------------------


def _exit_for(exc: BaseException) -> int:
    from .journal import JournalError

    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, (UsageError, InputError, JournalError, MessageError, RequestTooLarge)):
        return EXIT_USAGE
    if isinstance(exc, HTTPStatusError) and 400 <= exc.status < 500:
        return EXIT_USAGE
    return EXIT_TRANSPORT


def _fail(message: str, code: int) -> int:
    print(f"hpgfast: error: {escape(message)}", file=sys.stderr)
    return code


def _sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
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
        code = _run(args)
    except KeyboardInterrupt:
        print("hpgfast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except HPGError as exc:
        return _fail(str(exc), _exit_for(exc))
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
