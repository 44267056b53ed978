"""``hpgfast send``: one message from flags, or a file of messages, optionally journaled."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Callable, Optional

from .._records import Message
from .._term import counted, escape
from .._wire import Code
from ..exceptions import HPGError, results_of
from ._checked import blocks
from ._common import (
    CONNECTION_HELP,
    UsageError,
    add_connection,
    add_output,
    exit_for,
    explain,
    is_journal_url,
    make_client,
    open_journal_at,
    pairs,
    positive_float,
    positive_int,
    request_takes,
    setting,
    usage_file,
)
from ._exit import EXIT_INCOMPLETE, EXIT_OK, exit_codes_help
from ._input import (
    ADDRESS_HELP,
    FORMATS,
    check_encoding,
    detect_format,
    normalize_address,
    read_chunks,
    read_messages,
    spool_stdin,
)
from ._output import Progress, dump_json, table

if TYPE_CHECKING:  # imported when --results is given
    from ._results import ResultsFile


def _single_rows(args: argparse.Namespace) -> list[tuple[int, Message]]:
    params = pairs(args.message_param, "--message-param") or None
    address = normalize_address(args.to) if args.normalize_addresses else args.to
    if not address:
        raise UsageError(f"--to {args.to!r}: {ADDRESS_HELP}")
    if not args.message_subject and _default_subject(args) is None:
        raise UsageError(
            "no subject: give --message-subject, or a default with --subject or HPGFAST_SUBJECT"
        )
    return [(1, Message(address, args.text, args.message_subject, args.client_id, params))]


def _default_subject(args: argparse.Namespace) -> Optional[str]:
    return setting(args.subject, "HPGFAST_SUBJECT") or None


def _encoding(args: argparse.Namespace) -> str:
    try:
        return check_encoding(args.encoding)
    except ValueError as exc:
        raise UsageError(f"--encoding: {exc}") from None


def _fingerprint(
    args: argparse.Namespace, fmt: Optional[str], hashed: Optional[dict[str, str]] = None
) -> dict[str, str]:
    from ..journal import file_fingerprint

    settings = {
        "subject": setting(args.subject, "HPGFAST_SUBJECT") or "",
        "params": json.dumps(pairs(args.param, "--param"), sort_keys=True),
    }
    # Settings that change what is sent. Recorded only when not the default, so a
    # journal made before they existed resumes with the defaults and no other.
    encoding = _encoding(args)
    if encoding != "utf-8":
        settings["encoding"] = encoding
    if args.normalize_addresses:
        settings["normalize_addresses"] = "yes"
    if args.transliterate:
        settings["transliterate"] = "yes"
    if args.file is not None:
        if args.file == "-":
            raise UsageError("--journal needs a file (--file -, standard input, cannot be resumed)")
        try:
            fp = dict(hashed) if hashed else file_fingerprint(args.file)
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
    from .._states import STATES

    run = {s: outcome.states.get(s, 0) for s in STATES if s not in ("pending", "in_flight")}
    out: dict[str, Any] = {
        "this_run": {
            "attempted": outcome.attempted,
            **run,
            "rejected_by_code": dict(outcome.rejected_by_code),
            "seconds": round(outcome.elapsed, 3),
            "messages_per_second": round(outcome.rate, 1),
        },
        "interrupted": outcome.interrupted,
        "error": None if outcome.error is None else explain(outcome.error),
        "failure": None if outcome.failure is None else explain(outcome.failure),
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
    states = ("accepted", "accepted_earlier", "rejected", "unknown", "not_sent", "invalid")
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
    # Stopped early (an interrupt, a stop): what was handed to the client so far is a
    # chunk's worth, which no reader should take for the input; a run that ended
    # handed all it had to send, and counts against that.
    stopped = bool(summary.get("interrupted") or summary.get("error"))
    print("\n" + _what_happened(run, journal, summary.get("messages") if stopped else None))
    not_sent = run.get("not_sent", 0)
    if journal is not None and not_sent:
        # "this run" tells this run's outcome, "journal" each line's state now: a
        # message this run did not send is pending there (or not sent: refused for
        # the account, or its request marked but never begun); the next run sends it.
        print(f"the {counted(not_sent, 'message')} this run did not send "
              f"{'is' if not_sent == 1 else 'are'} pending or not sent in the journal: "
              "the next run with this journal sends "
              f"{'it' if not_sent == 1 else 'them'}")
    recovered = summary.get("recovered") or {}
    if recovered.get("in_flight_to_unknown"):
        lost = recovered["in_flight_to_unknown"]
        print(
            f"{counted(lost, 'message')} {'was' if lost == 1 else 'were'} in flight when an "
            "earlier run stopped: marked unknown, not sent again (--resend-unknown sends them)"
        )
    if summary.get("interrupted"):
        print("interrupted (Ctrl-C or SIGTERM): the counts are what this run did until "
              "then; the rest of the input was not sent")
    if summary.get("error"):
        print(f"stopped early: {escape(str(summary['error']))}")
    elif summary.get("failure"):
        print(f"why the first was unknown or not sent: {escape(str(summary['failure']))}")


def _what_happened(
    run: dict[str, Any], journal: Optional[dict[str, Any]], total: Optional[int] = None
) -> str:
    """One line on what this run did: what went out and what came of it.

    ``total``: the input's messages, given when the run stopped early: counted out
    of them ("of the input's 50,000 messages"), not out of what was handed to the
    client so far (a chunk's worth, which no reader should take for the input).
    """
    tried = run["attempted"]
    if not tried:
        if journal is not None and not journal["states"].get("pending", 0):
            return "nothing sent: every message of the journal already has its result"
        return "nothing sent"
    if total is not None and total > tried:
        of = f"the input's {counted(total, 'message')}"
    else:
        of, total = counted(tried, "message"), tried
    gone = tried - run.get("not_sent", 0) - run.get("invalid", 0)
    accepted = run.get("accepted", 0) + run.get("accepted_earlier", 0)
    if not gone:
        # No rate: a rate of nothing sent is the speed of failing.
        went = "the message did not go out" if total == 1 else f"none of {of} went out"
        return f"{went} ({run['seconds']:.1f} s); {accepted:,} accepted"
    went = f"{gone:,} of {of} went out" if gone != total else f"{of} went out"
    # The rate of what went out: messages not sent (a stop, an interrupt) took no time.
    rate = gone / run["seconds"] if run["seconds"] > 0 else 0.0
    return f"{went} in {run['seconds']:.1f} s ({rate:,.0f} msg/s); {accepted:,} accepted"


def _open_results(args: argparse.Namespace, journal: Any = None) -> Optional[ResultsFile]:
    """The ``--results`` file, opened (for appending) before anything is sent."""
    if args.results is None:
        return None
    from ._results import ResultsFile

    return ResultsFile(args.results, journal=journal)


def _subscribers(*subscribers: Any) -> list[Any]:
    return [s for s in subscribers if s is not None]


def _warn_unresumable(args: argparse.Namespace) -> None:
    """Say, before a file is sent without a journal, what a stopped run leaves."""
    if args.results is not None:
        kept = f"Each message's outcome goes to {escape(args.results)} as it is known."
    else:
        kept = "Give --results FILE to keep each message's outcome."
    print(
        "hpgfast: warning: sending without --journal: a run stopped part way cannot be "
        "resumed without sending some messages twice. Give --journal FILE to make it "
        f"resumable. {kept}",
        file=sys.stderr, flush=True,
    )


def _send_exit(outcome: Any, complete: bool) -> int:
    # The same code as ``--to`` gives for the same reply: what stopped the run, else
    # what left a message of this run unknown or not sent.
    error = outcome.error if outcome.error is not None else outcome.failure
    if error is not None:
        return exit_for(error)
    return EXIT_OK if complete else EXIT_INCOMPLETE


def run(args: argparse.Namespace) -> int:
    """``hpgfast send``."""
    fmt = _check_args(args)
    source = _Source(args, fmt, _encoding(args))
    if args.file is None:
        _single_rows(args)  # checked now, before anything is sent
    if args.dry_run:
        from ._costs import dry_run, shown_path

        return dry_run(args, source.rows(), shown_path(args.file))
    with _collector_for_a_run():
        if args.journal is None:
            return _send_unjournaled(args, source)
        return _journaled(args, source)


def _check_args(args: argparse.Namespace) -> Optional[str]:
    """Refuse flags that do not go together; returns the input file's format."""
    if (args.file is None) == (args.to is None):
        raise UsageError("give --file PATH, or --to ADDRESS with --text TEXT")
    if args.to is not None and args.text is None:
        raise UsageError("--to needs --text")
    if args.results == "-":
        raise UsageError("--results needs a file (standard output gets the summary)")
    if args.file is not None:
        usage_file(args.file, "--file")
    return detect_format(args.file, args.format) if args.file is not None else None


class _Source:
    """Where the messages come from: the flags (``--to``) or a file, read lazily."""

    def __init__(self, args: argparse.Namespace, fmt: Optional[str], encoding: str) -> None:
        self.args = args
        self.fmt = fmt
        self.encoding = encoding
        #: The file read.
        self.path: Optional[str] = args.file
        #: Without a journal, standard input's spooled copy (an open file, unnamed),
        #: read instead of ``path``.
        self.stream: Optional[IO[bytes]] = None

    def chunks(self, size: int) -> Iterator[tuple[list[int], list[Any]]]:
        """The file's messages, ``size`` at a time (``read_chunks``)."""
        args = self.args
        assert self.path is not None
        return read_chunks(
            self.path,
            self.fmt or "csv",
            size,
            name="<stdin>" if args.file == "-" else None,
            encoding=self.encoding,
            normalize_addresses=args.normalize_addresses,
            default_subject=_default_subject(args),
            stream=self.stream,
        )

    def rows(self, fingerprint: Optional[dict[str, str]] = None) -> Iterator[tuple[int, Message]]:
        """The messages, numbered; ``fingerprint`` gets the file's as it is read."""
        args = self.args
        if self.path is None:
            return iter(_single_rows(args))
        return read_messages(
            self.path,
            self.fmt or "csv",
            name="<stdin>" if args.file == "-" else None,
            fingerprint=fingerprint,
            encoding=self.encoding,
            normalize_addresses=args.normalize_addresses,
            default_subject=_default_subject(args),
        )


def _no_room(what: str, directory: str, exc: OSError) -> str:
    return (f"no room for {what} in {directory} ({exc.strerror or exc}): nothing was "
            "sent; point TMPDIR at a directory with about the input's size free")


def _send_unjournaled(args: argparse.Namespace, source: _Source) -> int:
    """Send without a journal: one message from the flags, or a file checked whole first."""
    from ._checked import CheckedInput
    from ._run import SendOutcome, send_blocks

    if args.resend_unknown or args.resend_unknown_without_ids:
        raise UsageError("--resend-unknown needs --journal")
    checked = CheckedInput(args.chunk)
    outcome = SendOutcome()
    results_file: Optional[ResultsFile] = None
    try:
        if source.path is not None:
            # An interrupt before the first request shows the summary too: nothing
            # was sent (``outcome`` counts nothing yet).
            with _summary_when_interrupted(args, outcome, lambda: None):
                _check_whole(args, source, checked)
        results_file = _open_results(args)
        if source.path is not None:
            _warn_unresumable(args)
        with make_client(args, _subscribers(results_file)) as client:
            if args.to is not None:
                return _send_one(args, client, list(source.rows()), results_file)
            chunks = checked.blocks() if source.path is not None else blocks(
                source.rows(), args.chunk)
            total = checked.count if source.path is not None else None
            with _summary_when_interrupted(args, outcome, lambda: None, total), \
                    Progress(None, "sending", quiet=args.quiet or args.json) as progress:
                send_blocks(
                    client, chunks,
                    tick=progress.tick, results_file=results_file, outcome=outcome,
                )
    finally:
        checked.close()
        if source.stream is not None:
            source.stream.close()
        if results_file is not None:
            results_file.close()
    _show_summary(args, _send_summary(
        outcome, None, checked.count if source.path is not None else None))
    complete = outcome.states.get("accepted", 0) == outcome.attempted
    return _send_exit(outcome, complete)


def _check_whole(args: argparse.Namespace, source: _Source, checked: Any) -> None:
    """Check the whole input before the first request, keeping it in ``checked``.

    What is sent is the check's copy, so the input is read once, and what is sent is
    what was checked. Standard input is copied first (``spool_stdin``: no name, so
    even a killed run leaves nothing), and that copy is checked.
    """
    if args.file == "-":
        try:
            source.stream = spool_stdin()
        except OSError as exc:
            raise UsageError(_no_room("standard input's copy", checked.where(), exc)) from None
    checked.check(source.chunks(args.chunk))
    if checked.dropped is not None:
        raise UsageError(_no_room("the checked copy of the input", checked.where(),
                                  checked.dropped))
    if source.stream is not None:
        # Sent from the check's copy: standard input's own is no longer needed.
        source.stream.close()
        source.stream = None


@contextlib.contextmanager
def _summary_when_interrupted(
    args: argparse.Namespace, outcome: Any, journal_summary: Callable[[], Any],
    total: Optional[int] = None,
) -> Iterator[None]:
    """On Ctrl-C or SIGTERM while sending: show what the run did so far, then go on
    unwinding (the exit status stays 130)."""
    try:
        yield
    except KeyboardInterrupt:
        outcome.interrupted = True  # between two batches too, not only inside one
        _show_summary(args, _send_summary(outcome, journal_summary(), total))
        sys.stdout.flush()
        raise


def _send_one(
    args: argparse.Namespace,
    client: Any,
    single: list[tuple[int, Message]],
    results_file: Optional[ResultsFile],
) -> int:
    """Send the one message of ``--to`` and show its result; returns the exit code."""
    lines = [line for line, _ in single]
    messages = [m for _, m in single]
    if results_file is not None:
        results_file.arm(lines, messages)
    stop: Optional[HPGError] = None
    try:
        results = client.send(messages)
    except BaseException as exc:
        if results_file is not None:
            results_file.settle(getattr(exc, "results", None))
        known = results_of(exc)
        if not isinstance(exc, HPGError) or known is None or len(known) != len(messages):
            raise
        # A batch-stopping error (an account stop, a reply that is not HPG, the
        # platform down): what is known, then the error, as a --file run shows it.
        stop, results = exc, known
    else:
        if results_file is not None:
            results_file.settle(results)
    r = results[0]
    error = getattr(r, "error", None)
    if args.json:
        said = explain(stop) if stop is not None else str(error or "") or None
        dump_json({"code": r[0], "client_id": r[1], "provider_id": r[2], "error": said})
    else:
        print(table([(r[0], r[1], r[2])], ("code", "client id", "provider id")))
    if stop is not None:
        if not args.json:
            print(f"stopped early: {escape(explain(stop))}")
        return exit_for(stop)
    if r[0] in (Code.NOT_SENT, Code.UNKNOWN) and error is not None:
        if not args.json:
            print(f"{'not sent' if r[0] == Code.NOT_SENT else 'outcome unknown'}"
                  f": {escape(explain(error))}")
        return exit_for(error)
    return EXIT_OK if r[0] == Code.OK else EXIT_INCOMPLETE


def _lease(args: argparse.Namespace) -> dict[str, float]:
    """The ``lease`` option of a ``postgresql://`` journal (none for a file), checked.

    A sender starts a request only while more than one request may take
    (``request_takes``) of its lease is left, so a lease no longer than that would
    send nothing: refused. Without ``--lease``: what one request may take + the
    engine's default (60 s), as the engine fits a lease not given to its client.
    """
    if not is_journal_url(args.journal):
        if args.lease is not None:
            raise UsageError(
                "--lease is for a postgresql:// journal, which a fleet of senders "
                "shares; a journal file is held by one sender while it runs"
            )
        return {}
    takes = request_takes(args)
    if args.lease is None:
        return {}  # the engine fits it to the client's requests
    if args.lease <= takes:
        raise UsageError(
            f"--lease {args.lease:g} is not longer than one request may take ({takes:g} s: "
            "--request-deadline, default 10 x --timeout, + --connect-timeout): no request "
            "could start; give a longer --lease, or a shorter --request-deadline"
        )
    return {"lease": args.lease}


@contextlib.contextmanager
def _collector_for_a_run() -> Iterator[None]:
    """The cyclic garbage collector tuned for a run of millions of short-lived rows.

    Its full passes would walk every object of the start-up (modules, classes) again
    and again: those are set aside (frozen), and the youngest generation is
    collected every 20,000 new containers, not 700. Cycles are still collected, so
    memory stays flat for any input. Restored after the run (the command may run
    inside a test's process; a library user's ``Journal.send`` leaves the collector
    as it is).
    """
    import gc

    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _journaled(args: argparse.Namespace, source: _Source) -> int:
    """Send with a journal: load the input into it (once), then send what is left.

    A ``postgresql://`` journal is shared: senders started on it at once load the
    input once (``loading()``: the first loads, the others wait and find it loaded),
    then each sends the messages it claims.
    """
    from ..journal import SendSummary

    quiet = args.quiet or args.json
    if args.file == "-":
        _fingerprint(args, source.fmt)  # refused: standard input cannot be resumed
    options = _lease(args)
    with open_journal_at(args.journal, "--journal", existing=False,
                         synchronous=args.journal_sync, lock=True, **options) as journal:
        # An interrupt while the input is loaded: nothing was sent (the summary's
        # counts are 0), and the next run loads the input again.
        with _summary_when_interrupted(args, SendSummary(), lambda: None), \
                journal.loading():
            total = _load_input(args, source, journal, quiet=quiet)
        counts = journal.counts()
        todo = counts["pending"] + counts["not_sent"]
        if args.resend_unknown or args.resend_unknown_without_ids:
            todo += counts["unknown"] + counts["in_flight"]
        results_file = _open_results(args, journal)
        outcome = SendSummary()
        try:
            # The journal puts its before-first-byte hook on each call it makes
            # (``Journal.send``): the client is made as for any other send.
            with make_client(args, _subscribers(results_file)) as client, \
                    _summary_when_interrupted(args, outcome, journal.summary, total):
                with Progress(todo, "sending", quiet=quiet) as progress:
                    journal.send(
                        client,
                        chunk=args.chunk,
                        resend_unknown=args.resend_unknown,
                        resend_unknown_without_ids=args.resend_unknown_without_ids,
                        progress=progress.tick,
                        results_file=results_file,
                        summary=outcome,
                    )
        finally:
            if results_file is not None:
                results_file.close()  # before the journal it may still ask
        held = journal.summary()
        summary = _send_summary(outcome, held, total)
        final = held["states"]  # (its counts: not read a second time)
        if is_journal_url(args.journal):
            # Shared: what is still pending or in flight at the end is other live
            # senders' (a lapsed claim this run would have taken): not a failure.
            complete = not any(final[s] for s in ("rejected", "unknown", "not_sent", "invalid"))
        else:
            complete = final["accepted"] + final["accepted_earlier"] == total
    _show_summary(args, summary)
    return _send_exit(outcome, complete)


def _load_input(
    args: argparse.Namespace, source: _Source, journal: Any, *, quiet: bool
) -> Optional[int]:
    """Put the input in the journal, bound to its fingerprint; returns how many messages.

    A journal already loaded is only bound to the input again (``bind`` refuses
    another once anything was sent, and empties the journal while nothing was: then
    this input is loaded). Called inside ``journal.loading()``.
    """
    fmt = source.fmt
    if journal.loaded is not None and not journal.bind(_fingerprint(args, fmt)):
        loaded: int = journal.loaded
        return loaded
    if args.file is not None:
        # A new journal (or a load cut short): the input is read once, hashed
        # while it is loaded, and bound before the load counts as finished.
        journal.restart_load()
        hashed: dict[str, str] = {}
        with Progress(None, "journaling input", quiet=quiet) as progress:
            total: int = journal.load_input(
                source.rows(hashed), progress=lambda n, note: progress.update(n),
                transliterate=args.transliterate,
                bind=lambda: _fingerprint(args, fmt, hashed),
            )
        return total
    journal.bind(_fingerprint(args, fmt))
    with Progress(None, "journaling input", quiet=quiet) as progress:
        total = journal.load_input(source.rows(), progress=lambda n, note: progress.update(n),
                                   transliterate=args.transliterate)
    return total


def _show_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        dump_json(summary)
    else:
        _print_send_summary(summary)


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast send`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "send", help="send one message, or a file of messages",
        description="Send one message (--to, --text) or a file of messages (--file): CSV "
        "with a header (address,text[,subject][,client_id][,extra columns...]) or JSON "
        "Lines ({\"address\":..,\"text\":..,\"subject\":..,\"client_id\":..,\"params\":{..}}). "
        "Files are UTF-8 unless --encoding says otherwise. An address is the "
        "recipient's number as the platform wants it: digits only, the country code "
        "first, no + or spaces (79031111111); addresses are sent as written unless "
        "--normalize-addresses is given. "
        "With --journal every message is recorded before it goes out; rerunning the "
        "same command resumes without sending anything twice (and is refused if the "
        "input or a setting that changes what is sent differs).",
        epilog=exit_codes_help("send") + CONNECTION_HELP, formatter_class=formatter,
    )
    src = p.add_argument_group("what to send")
    src.add_argument("--file", "-f", metavar="PATH", help="a CSV or JSON Lines file ('-': stdin, "
                     "without --journal)")
    src.add_argument("--format", choices=FORMATS,
                     help="the file's format (default: from its name; .jsonl -> jsonl, else csv)")
    src.add_argument("--encoding", default="utf-8",
                     help="the file's text encoding, e.g. cp1251 (default utf-8)")
    src.add_argument("--to", metavar="ADDRESS",
                     help=f"one message: the recipient's number: {ADDRESS_HELP}")
    src.add_argument("--text", help="one message: the text")
    src.add_argument("--client-id", help="one message: your id for it")
    src.add_argument("--message-subject", metavar="SUBJECT", help="one message: its sender")
    src.add_argument("--message-param", action="append", metavar="NAME=VALUE",
                     help="one message: an extra parameter; repeat")
    src.add_argument("--subject", help="default sender for messages without one "
                     "[HPGFAST_SUBJECT]; a message with no subject and no default is an "
                     "input error")
    src.add_argument("--normalize-addresses", action="store_true",
                     help="remove +, spaces, - and parentheses from addresses "
                     "(+7 903 111-11-11 -> 79031111111); never changes a digit")
    jg = p.add_argument_group("journal")
    jg.add_argument("--journal", "-j", metavar="DB",
                    help="a journal: record, resume, never send twice; a file (SQLite), "
                    "or a postgresql://user@host/db URL that several senders share (the "
                    "password from PGPASSWORD or ~/.pgpass, or the URL; never shown)")
    jg.add_argument("--lease", type=positive_float, metavar="SECONDS",
                    help="a postgresql:// journal: seconds this sender holds the messages "
                    "it claimed without renewing them (default: what one request may take "
                    "+ 60); must be longer than one request may take (--request-deadline "
                    "+ --connect-timeout); a killed sender's messages are taken over at the "
                    "latest once it lapses")
    jg.add_argument("--resend-unknown", action="store_true",
                    help="send again the messages whose outcome is unknown (a recipient "
                    "may get a second SMS); refused for messages sent before the "
                    "journal recorded clientIds (a journal an older hpgfast made)")
    jg.add_argument("--resend-unknown-without-ids", action="store_true",
                    help="as --resend-unknown, and also send again the unknown messages "
                    "whose first clientId the journal does not have: they go under a "
                    "new clientId, so a platform that refuses repeated ids cannot stop a "
                    "second SMS")
    jg.add_argument("--journal-sync", choices=("full", "normal"), default="full",
                    help="full: fsync every commit, safe against power loss (default); "
                    "normal: safe against a killed process only")
    cg = p.add_argument_group("cost")
    cg.add_argument("--dry-run", action="store_true",
                    help="read and check the whole input, send nothing (and write no "
                    "journal), print the messages, "
                    "their SMS segments (in all, by encoding, the largest) and the requests "
                    "they take; needs no connection settings (without --url the URL and "
                    "credentials are taken to be 256 bytes long)")
    cg.add_argument("--transliterate", action="store_true",
                    help="write Russian letters in Latin ones (ICAO Doc 9303) where that "
                    "needs fewer segments; part of a journal's settings")
    p.add_argument("--results", metavar="FILE",
                   help="write each message's outcome to FILE as CSV as soon as it is known "
                   "(line, address, client_id, outcome, code, provider_id, reason, time), "
                   "flushed as it goes, so a stopped or killed run leaves every outcome it "
                   "knew; a later run appends; with or without --journal")
    p.add_argument("--chunk", type=positive_int, default=5000,
                   help="messages per client call and journal transaction (default 5000)")
    add_connection(p)
    add_output(p)
    p.set_defaults(func=run)
