"""Command-line settings of the emulator, shared by ``python -m hpgfast.emulator``
and the ``hpgfast emulate`` command.

Strategy: argument definitions and the mapping to ``Emulator`` settings live here,
without any output, so that another command line can embed them;
``__main__`` adds the banner and waits for an interrupt.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, Optional

from .._secretfile import read_secret_file
from .._term import counted
from ._emulator import CLIENT_ID_MODES, PUSH_SHAPES, Emulator
from ._encoding import REPLY_ENCODINGS
from ._faults import FAULT_KINDS, LATE_VARIANTS, Fault, Faults
from ._lifecycle import LIFECYCLE, STATUS_CASES
from ._settings import DATE_FORMATS

__all__ = [
    "PUSH_SECRET_ENV",
    "add_arguments",
    "banner",
    "emulator_from_args",
    "port_number",
    "served",
]

_DEFAULT_PASSWORD = "P@ssw0rd"

#: The environment variable holding the push secret (never an option: ``ps`` shows those).
PUSH_SECRET_ENV = "HPGFAST_PUSH_SECRET"


def port_number(text: str) -> int:
    """An argparse type for a TCP port (0: any free one); shared by every server command."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's settings to ``parser`` as options."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    add("--port", type=port_number, default=9876,
        help="port; 0 picks a free one (default %(default)s)")
    add("--client", default="CLIENT", help="first path segment (default %(default)s)")
    add("--connector", default="connectorX", help="second path segment (default %(default)s)")
    add("--login", default="CLIENT", help="accepted login (default %(default)s)")
    add("--password", default=_DEFAULT_PASSWORD,
        help="accepted password (default %(default)s; never shown on the banner)")
    add("--login-param", default="login", help="login parameter name (default %(default)s)")
    add(
        "--password-param",
        default="password",
        help="password parameter name, e.g. pass (default %(default)s)",
    )
    add("--max-request-line", type=int, default=8192, help="longer request lines get 414")
    add("--reply-order", choices=("sent", "shuffled"), default="sent",
        help="reply lines in request order, or shuffled as the spec allows (default %(default)s)")
    add("--date-style", choices=tuple(DATE_FORMATS), default="dots",
        help="status times as 2012.03.15 19:53:14 (dots) or 2012-03-15 19:53:14 (dashes); "
        "shapes from the field: iso_z, iso_offset, garbage, iso_basic, iso_week, iso_ordinal, "
        "iso_minutes, padded (default %(default)s)")
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
    _add_platform_arguments(parser)
    _add_fault_arguments(parser)
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
        help="lines: POST of STATUS lines; form: POST of indexed fields; query: GET; "
        "json: POST of the platform's JSON callbacks (default %(default)s)",
    )
    add("--push-batch", type=int, default=500, metavar="N", help="most reports per push")
    add("--push-attempts", type=int, default=10, metavar="N",
        help="attempts at a failing push before its reports are dropped (default %(default)s)")


def _add_platform_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "platform behaviour seen in the field",
        "Each plays a shape of reply real platforms give (see 'pydoc hpgfast.emulator').",
    )
    add = group.add_argument
    add(
        "--balance",
        type=int,
        metavar="N",
        help="the account can send N messages; then a request gets the single line "
        "'error-insufficient-balance', and one during which it runs out gets 'ok' lines "
        "up to the balance and 'error-insufficient-balance;<clientId>;' for the rest",
    )
    add(
        "--account-state",
        metavar="CODE",
        help="answer every SEND and STATUS with the single line CODE, e.g. "
        "error-account-locked or error-system-blocked",
    )
    add(
        "--rate-limit",
        type=float,
        metavar="R",
        help="let R requests per second through; others get '429 Too Many Requests' "
        "with Retry-After, and are not processed",
    )
    add(
        "--rate-burst",
        type=float,
        default=1.0,
        metavar="B",
        help="the rate limit's burst, requests (default %(default)s)",
    )
    add(
        "--retry-after",
        type=int,
        default=1,
        metavar="S",
        help="Retry-After seconds of 429s, from --rate-limit and --http-429-rate "
        "(default %(default)s)",
    )
    add(
        "--status-case",
        choices=STATUS_CASES,
        default="lower",
        help="statuses in STATUS replies and pushes: delivered or DELIVERED (default %(default)s)",
    )
    add(
        "--field-statuses",
        action="store_true",
        help="address digits 1-5 end in read (after delivered), expired, vp_expired, "
        "rejected, no-match-template",
    )
    add(
        "--semicolon-reasons",
        action="store_true",
        help="reasons holding ';': ok;ID;undelivered;DATE;absent;subscriber",
    )
    add(
        "--reason",
        action="append",
        default=[],
        metavar="DIGIT=TEXT",
        help="the final reason of addresses ending in DIGIT (repeatable)",
    )
    add(
        "--send-extra",
        metavar="FIELD",
        help="append ;FIELD to every ok SEND line, e.g. 2: ok;0;1001;2 (a part count)",
    )
    add("--reject-description", metavar="TEXT",
        help="append ;;TEXT to every refused SEND line: error-address-format;0;;TEXT")
    add("--text-charset", default="utf-8", metavar="CHARSET",
        help="write reasons and descriptions in this charset, e.g. windows-1251 "
        "(default %(default)s)")
    add("--content-type", default="text/plain; charset=utf-8", metavar="TYPE",
        help="the Content-Type of every 200 reply, e.g. 'text/plain' (no charset) "
        "(default %(default)s)")
    add(
        "--reply-encoding",
        choices=REPLY_ENCODINGS,
        help="send every reply body in this Content-Encoding (deflate-raw: raw deflate "
        "labelled deflate; br: the body as it is, labelled br; gzip-bomb: 1 GiB of "
        "zeros, then the lines)",
    )
    add(
        "--client-ids",
        choices=CLIENT_ID_MODES,
        default="echo",
        help="echo: reply lines carry the clientId sent; ignore: the message's index "
        "(default %(default)s)",
    )
    add(
        "--max-client-id-length",
        type=int,
        metavar="N",
        help="echo at most N characters of a clientId (a shorter column)",
    )
    add(
        "--unique-client-ids",
        action="store_true",
        help="a clientId accepted in an earlier request is answered "
        "'error-id-not-unique;<clientId>;' and not applied again",
    )


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "more faults",
        "Rates are probabilities per request, drawn from --seed; --fault-schedule "
        "strikes a kind at given request numbers (1-based).",
    )
    add = group.add_argument
    for kind, what in (
        ("http-503", "answer 503 Service Unavailable (Retry-After only with "
         "--http-503-retry-after), apply nothing (unless --http-503-apply)"),
        ("http-429", "answer 429 Too Many Requests with Retry-After, apply nothing"),
        (
            "code-only",
            "answer the single line --code-only-code (apply nothing, unless --code-only-apply)",
        ),
        (
            "raw-reply",
            "answer --raw-reply-status (200) with --raw-reply-header lines and the bytes "
            "of --raw-reply-file, verbatim (apply nothing, unless --raw-reply-apply)",
        ),
        ("trickle", "apply, then send the reply a byte every --trickle-seconds"),
        (
            "late-bytes",
            "apply, answer, then write stale bytes on the same keep-alive "
            "connection (--late-bytes-variant)",
        ),
    ):
        add(f"--{kind}-rate", type=float, default=0.0, metavar="P", help=f"fault: {what}")
    add(
        "--fault-schedule",
        action="append",
        default=[],
        metavar="KIND=N[,N...]",
        help=f"strike fault KIND at these request numbers; kinds: {', '.join(FAULT_KINDS)} "
        "(repeatable)",
    )
    add(
        "--code-only-code",
        default="error-system",
        metavar="CODE",
        help="the code-only fault's code, e.g. error-system, error-address-format, ok "
        "(default %(default)s)",
    )
    add(
        "--code-only-apply",
        action="store_true",
        help="the code-only fault applies the request before answering the code",
    )
    _add_fault_knobs(add)


def _add_fault_knobs(add: Callable[..., Any]) -> None:
    """The knobs of the faults (``_add_fault_arguments``): what each one answers."""
    add(
        "--raw-reply-file",
        metavar="PATH",
        help="the raw-reply fault's body, e.g. a file holding 'ok;;1001' and a newline "
        "(default: ok;0;999999 and ok;1;999998)",
    )
    add(
        "--raw-reply-status",
        type=int,
        default=200,
        metavar="N",
        help="the raw-reply fault's HTTP status, 100 to 599, e.g. 302 or 503 "
        "(default %(default)s)",
    )
    add(
        "--raw-reply-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header line of the raw-reply fault, sent as given, e.g. "
        "'Location: https://portal.example/login', 'Retry-After: 2' or "
        "'Content-Type: text/html' (replaces text/plain; charset=utf-8); repeatable",
    )
    add(
        "--raw-reply-apply",
        action="store_true",
        help="the raw-reply fault applies the request before answering",
    )
    add(
        "--http-503-retry-after",
        type=float,
        metavar="S",
        help="the http-503 fault's Retry-After, S seconds rounded up (default: no "
        "Retry-After; --retry-after is the 429s')",
    )
    add(
        "--http-503-apply",
        action="store_true",
        help="the http-503 fault applies the request before answering 503 (a gateway "
        "that gave up on a platform which went on)",
    )
    add(
        "--http-429-apply",
        action="store_true",
        help="the http-429 fault applies the request before answering 429 (a resend "
        "then meets its clientIds again)",
    )
    add(
        "--trickle-seconds",
        type=float,
        default=0.2,
        metavar="T",
        help="seconds between two bytes of a trickled reply (default %(default)s)",
    )
    add(
        "--trickle-limit",
        type=float,
        default=30.0,
        metavar="S",
        help="after S seconds of trickling the rest goes at once (default %(default)s)",
    )
    add(
        "--late-bytes-variant",
        choices=LATE_VARIANTS,
        default="response",
        help="response: a whole 'HTTP/1.1 200 OK' with ok;0;999999 and ok;1;999998; "
        "429: a whole 429 response; line: a bare --late-bytes-code line "
        "(default %(default)s)",
    )
    add(
        "--late-bytes-seconds",
        type=float,
        default=0.05,
        metavar="S",
        help="pause between the reply and the stale bytes (default %(default)s)",
    )
    add(
        "--late-bytes-file",
        metavar="PATH",
        help="the body of a late 'response' (default: ok;0;999999 and ok;1;999998)",
    )
    add(
        "--late-bytes-code",
        default="error-system",
        metavar="CODE",
        help="the code of a late bare line (default %(default)s)",
    )


#: Command-line spellings of fault kinds besides the kinds' own names.
_KIND_ALIASES = {"reset": "reset_after_accept", "cut": "cut_reply"}


def _schedules(specs: list[str]) -> dict[str, frozenset[int]]:
    """``--fault-schedule`` values as kind -> request numbers."""
    out: dict[str, frozenset[int]] = {}
    for spec in specs:
        kind, sep, numbers = spec.partition("=")
        kind = kind.strip().replace("-", "_")
        kind = _KIND_ALIASES.get(kind, kind)
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(
                f"--fault-schedule takes KIND=N[,N...] with a kind of "
                f"{', '.join(FAULT_KINDS)}; got {spec!r}"
            )
        try:
            scheduled = frozenset(int(n) for n in numbers.split(",") if n.strip())
        except ValueError:
            raise ValueError(f"--fault-schedule: not request numbers: {numbers!r}") from None
        out[kind] = out.get(kind, frozenset()) | scheduled
    return out


def _reasons(specs: list[str]) -> dict[str, str]:
    """``--reason`` values as digit -> reason."""
    out = {}
    for spec in specs:
        digit, sep, reason = spec.partition("=")
        if not sep or digit not in LIFECYCLE:
            raise ValueError(f"--reason takes DIGIT=TEXT with a digit 0-9, got {spec!r}")
        out[digit] = reason
    return out


def _headers(specs: list[str]) -> tuple[tuple[str, str], ...]:
    """``--raw-reply-header`` values as (name, value) pairs, in the order given."""
    out = []
    for spec in specs:
        name, sep, value = spec.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise ValueError(f"--raw-reply-header takes 'NAME: VALUE', got {spec!r}")
        out.append((name, value.strip()))
    return tuple(out)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _push_secret(args: argparse.Namespace) -> Optional[str]:
    """The push secret from ``--push-secret-file`` or the environment; never echoed."""
    path = getattr(args, "push_secret_file", None)
    if path:
        return read_secret_file(path, "push secret")
    return os.environ.get(PUSH_SECRET_ENV) or None


def banner(emulator: Emulator, args: argparse.Namespace) -> str:
    """What the emulator accepts, for its start-up line: the password masked.

    The password is one the user gave (``--password``, in their shell already) or the
    default ``--help`` shows; either way it is not echoed where logs and screen
    recordings keep it, only where it came from.
    """
    default = args.password == _DEFAULT_PASSWORD
    source = "the default, see --help" if default else "as given by --password"
    return (f"login={emulator.login_param}:{emulator.login} "
            f"{emulator.password_param}:*** ({source}); Ctrl-C stops")


def served(emulator: Emulator) -> str:
    """The emulator's last line: what it served."""
    return (f"served {counted(sum(emulator.requests.values()), 'request')}, "
            f"accepted {counted(len(emulator.ledger), 'message')}")


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    """Start an ``Emulator`` with the settings parsed by ``add_arguments``' options."""
    schedules = _schedules(args.fault_schedule)
    if args.http_503_retry_after is not None and not args.http_503_retry_after >= 0:
        raise ValueError(
            f"--http-503-retry-after must not be negative, got {args.http_503_retry_after}"
        )

    def fault(kind: str, rate: float, **knobs: Any) -> Fault:
        return Fault(rate=rate, schedule=schedules.get(kind, frozenset()), **knobs)

    faults = Faults(
        http_500=fault("http_500", args.http_500_rate),
        http_503=fault(
            "http_503",
            args.http_503_rate,
            seconds=args.http_503_retry_after,
            variant="apply" if args.http_503_apply else "drop",
        ),
        http_429=fault(
            "http_429",
            args.http_429_rate,
            seconds=args.retry_after,
            variant="apply" if args.http_429_apply else "drop",
        ),
        code_only=fault(
            "code_only",
            args.code_only_rate,
            code=args.code_only_code,
            variant="apply" if args.code_only_apply else "drop",
        ),
        raw_reply=fault(
            "raw_reply",
            args.raw_reply_rate,
            variant="apply" if args.raw_reply_apply else "drop",
            status=args.raw_reply_status,
            headers=_headers(args.raw_reply_header),
            **({"body": _read_bytes(args.raw_reply_file)} if args.raw_reply_file else {}),
        ),
        reset_after_accept=fault("reset_after_accept", args.reset_rate),
        cut_reply=fault("cut_reply", args.cut_rate),
        delay=fault("delay", args.delay_rate, seconds=args.delay_seconds),
        trickle=fault(
            "trickle", args.trickle_rate, seconds=args.trickle_seconds, limit=args.trickle_limit
        ),
        late_bytes=fault(
            "late_bytes",
            args.late_bytes_rate,
            seconds=args.late_bytes_seconds,
            variant=args.late_bytes_variant,
            code=args.late_bytes_code,
            **({"body": _read_bytes(args.late_bytes_file)} if args.late_bytes_file else {}),
        ),
        refuse=fault("refuse", args.refuse_rate),
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
        balance=args.balance,
        account_state=args.account_state,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        retry_after=args.retry_after,
        status_case=args.status_case,
        field_statuses=args.field_statuses,
        semicolon_reasons=args.semicolon_reasons,
        reasons=_reasons(args.reason),
        send_extra=args.send_extra,
        client_ids=args.client_ids,
        max_client_id_length=args.max_client_id_length,
        unique_client_ids=args.unique_client_ids,
        reply_encoding=args.reply_encoding,
        reject_description=args.reject_description,
        text_charset=args.text_charset,
        content_type=args.content_type,
    )
    if args.push_url:
        settings.update(
            push_url=args.push_url,
            push_secret=_push_secret(args),
            push_shape=args.push_shape,
            push_batch=args.push_batch,
            push_attempts=args.push_attempts,
        )
    elif args.push_secret_file:
        raise ValueError("--push-secret-file needs --push-url")
    return Emulator(**settings)
