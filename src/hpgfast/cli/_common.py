"""What every command shares: settings from flags and the environment, the client,
exit codes, the connection and output flags."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any, Callable, Optional

from .._records import StatusResult
from .._secretfile import read_secret_file
from ..exceptions import (
    AccountError,
    AuthError,
    HTTPStatusError,
    MessageError,
    ProxyError,
    RequestTooLarge,
    UnexpectedReply,
)

# The codes themselves, their words and which command returns which: ``_exit``.
from ._exit import (
    EXIT_ACCOUNT,
    EXIT_AUTH,
    EXIT_JOURNAL,
    EXIT_JOURNAL_UNAVAILABLE,
    EXIT_TRANSPORT,
    EXIT_USAGE,
)
from ._input import InputError

#: For the commands that talk to the platform (send, status) and the overview.
CONNECTION_HELP = """
connection settings (flags win over the environment):
  HPGFAST_URL, HPGFAST_LOGIN, HPGFAST_PASSWORD or HPGFAST_PASSWORD_FILE,
  HPGFAST_LOGIN_PARAM, HPGFAST_PASSWORD_PARAM, HPGFAST_CA_CERTS, HPGFAST_SUBJECT,
  HPGFAST_TIMEOUT, HPGFAST_CONCURRENCY, HPGFAST_MAX_REQUEST_BYTES, HPGFAST_RATE;
  HTTPS_PROXY and NO_PROXY for an https:// URL (or --proxy)
"""


class UsageError(Exception):
    """A command line that cannot be run as given (``ExitCode.USAGE``)."""


def is_journal_url(target: str) -> bool:
    """Whether ``target`` names a journal by a URL (``postgresql://...``), not a file."""
    return "://" in target


def journal_path(path: str, flag: str, *, existing: bool) -> str:
    """``path`` as a journal's, checked: not a directory and, when ``existing``, there.

    ``existing``: a command that reads a journal (status, report, receive) refuses a
    path with none, instead of making an empty one that would answer nothing. A URL
    (``postgresql://...``) is not a file: the engine checks it when it connects.
    """
    from ..journal import _refuse_conninfo, _refuse_malformed_url

    _refuse_conninfo(path)
    _refuse_malformed_url(path)
    if is_journal_url(path):
        return path
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give the journal's file")
    if existing and not os.path.exists(path):
        raise UsageError(f"no journal at {path!r}")
    return path


def open_journal_at(target: str, flag: str, *, existing: bool, **options: Any) -> Any:
    """The journal ``target`` names, a file (SQLite) or a URL (PostgreSQL), opened.

    ``options`` go to the engine (``hpgfast.journal.open_journal``); ``lease`` and
    ``connect_timeout`` only to a URL's. A file is checked first (``journal_path``).
    """
    from ..journal import open_journal

    journal_path(target, flag, existing=existing)
    if not is_journal_url(target):
        options.pop("lease", None)
        options.pop("connect_timeout", None)
        return open_journal(target, **options)
    if _URL_PASSWORD.search(target):
        print(
            "hpgfast: warning: the journal URL's password is visible to every user of "
            "this machine (ps, /proc); prefer PGPASSWORD or ~/.pgpass",
            file=sys.stderr,
        )
    return open_journal(target, **options)


#: A password in a journal URL: in its user part, or a ``password=`` parameter.
_URL_PASSWORD = re.compile(r"://[^@/]*:[^@]*@|[?&][^=&]*password=", re.IGNORECASE)


def usage_file(path: str, flag: str) -> str:
    """``path`` for a flag that reads a file: refused when it is a directory."""
    if path != "-" and os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give a file")
    return path


# -- settings --------------------------------------------------------------------------

def env(name: str) -> Optional[str]:
    """The environment variable ``name``, or None when it is unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def setting(value: Any, variable: str, cast: Callable[[str], Any] = str) -> Any:
    """A flag's value, else the environment variable's (cast), else None."""
    if value is not None:
        return value
    raw = env(variable)
    if raw is None:
        return None
    try:
        return cast(raw)
    except ValueError:
        raise UsageError(f"{variable}={raw!r} is not a valid value") from None


def read_secret(path: str, what: str) -> str:
    try:
        return read_secret_file(path, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def password(args: argparse.Namespace) -> str:
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
    path = args.password_file or env("HPGFAST_PASSWORD_FILE")
    if path:
        return read_secret(path, "password")
    value = env("HPGFAST_PASSWORD")
    if value is None:
        raise UsageError(
            "no password: set HPGFAST_PASSWORD or HPGFAST_PASSWORD_FILE, or use "
            "--password-file or --password-stdin"
        )
    return value


def pairs(values: Optional[Sequence[str]], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{flag} takes NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def make_client(args: argparse.Namespace, subscribers: Sequence[Any] = ()) -> Any:
    """An ``hpgfast.Client`` from the connection flags and the environment."""
    from ..client import Client

    url = setting(args.url, "HPGFAST_URL")
    if not url:
        raise UsageError("no connector URL: give --url or set HPGFAST_URL")
    login = setting(args.login, "HPGFAST_LOGIN")
    if not login:
        raise UsageError("no login: give --login or set HPGFAST_LOGIN")
    secret = password(args)
    settings: dict[str, Any] = {}
    for key, value in (
        ("login_param", setting(args.login_param, "HPGFAST_LOGIN_PARAM")),
        ("password_param", setting(args.password_param, "HPGFAST_PASSWORD_PARAM")),
        ("ca_certs", setting(args.ca_certs, "HPGFAST_CA_CERTS")),
        ("timeout", setting(args.timeout, "HPGFAST_TIMEOUT", float)),
        ("concurrency", setting(args.concurrency, "HPGFAST_CONCURRENCY", int)),
        ("max_request_bytes", setting(args.max_request_bytes, "HPGFAST_MAX_REQUEST_BYTES", int)),
        ("max_batch", args.max_batch),
        ("default_subject", setting(getattr(args, "subject", None), "HPGFAST_SUBJECT")),
        ("max_rate", setting(args.rate, "HPGFAST_RATE", float)),
        ("request_deadline", args.request_deadline),
        ("connect_timeout", getattr(args, "connect_timeout", None)),
        ("final_statuses", args.final or None),
    ):
        if value is not None:
            settings[key] = value
    if args.proxy is not None:
        if "@" in args.proxy:
            print(
                "hpgfast: warning: --proxy with credentials is visible to every user of "
                "this machine (ps, /proc); prefer HTTPS_PROXY in the environment",
                file=sys.stderr,
            )
        settings["proxy"] = args.proxy
    if args.insecure:
        settings["verify"] = False
    if args.no_client_ids:
        settings["client_ids"] = False
    if args.no_retry_on_429:
        settings["retry_on_429"] = False
    if getattr(args, "transliterate", False):
        settings["transliterate"] = True
    if subscribers:
        settings["subscribers"] = list(subscribers)
    extra = pairs(args.param, "--param")
    if extra:
        settings["extra_params"] = extra
    try:
        client = Client(url, login, secret, **settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _warn_clear_proxy(args, client.settings)
    return client


def _warn_clear_proxy(args: argparse.Namespace, settings: Any) -> None:
    """Say, once per run, that a proxy reads the password of an http:// URL.

    The client logs it once, but the library's log lines show only with -v; this
    is a warning a user must see (as for --password). With -v that log line says it,
    and this one would say it twice.
    """
    route = settings.proxy_route
    if route is None or settings.endpoint.scheme != "http":
        return
    if getattr(args, "verbose", 0) or getattr(args, "command_verbose", 0):
        return
    source = "--proxy" if route.source == "proxy" else route.source
    print(
        f"hpgfast: warning: {settings.endpoint.shown} goes through the proxy {route.shown} "
        f"({source}) in the clear: the proxy sees the password in every request; use an "
        "https:// URL to keep it from the proxy",
        file=sys.stderr,
    )


def add_connection(parser: argparse.ArgumentParser) -> None:
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
    add("--password", metavar="PASSWORD",
        help="the password itself; discouraged: every user of this machine sees it "
        "(ps, /proc), so it warns; prefer the flags above or HPGFAST_PASSWORD")
    add("--login-param", help="the login parameter's name (default login) "
        "[HPGFAST_LOGIN_PARAM]")
    add("--password-param", help="the password parameter's name, e.g. pass "
        "(default password) [HPGFAST_PASSWORD_PARAM]")
    add("--ca-certs", metavar="PEM", help="certificates to trust for HTTPS "
        "[HPGFAST_CA_CERTS]")
    add("--proxy", metavar="URL",
        help="a forward proxy, http://[user:password@]host:port, for an http:// URL too "
        "(default: HTTPS_PROXY and NO_PROXY, for an https:// URL only)")
    add("--insecure", action="store_true",
        help="do not verify the platform's certificate (anyone on the path can read "
        "the password)")
    add("--timeout", type=float, help="seconds to wait for a reply (default 30) "
        "[HPGFAST_TIMEOUT]")
    add("--connect-timeout", type=positive_float, metavar="SECONDS",
        help="seconds to wait for a connection and its TLS handshake (default 10)")
    add("--concurrency", type=int, help="requests in flight at once (default 1) "
        "[HPGFAST_CONCURRENCY]")
    add("--max-request-bytes", type=int,
        help="longest request line (default 8192) [HPGFAST_MAX_REQUEST_BYTES]")
    add("--max-batch", type=int, help="at most this many messages or ids per request")
    add("--rate", type=float, metavar="N",
        help="at most N messages a second, over all requests in flight [HPGFAST_RATE]")
    add("--request-deadline", type=float, metavar="SECONDS",
        help="longest time one request may take from its first byte, however slowly "
        "the reply trickles (default 10 x --timeout)")
    add("--final", action="append", metavar="STATUS",
        help="a delivery status after which nothing changes (any case); repeat to set "
        "the list (default: delivered, undelivered, failed, cancelled, expired, "
        "vp_expired, rejected, read, no-match-template)")
    add("--no-client-ids", action="store_true",
        help="send no clientIds of hpgfast's own (the platform answers with indexes); "
        "for a platform that refuses them")
    add("--no-retry-on-429", action="store_true",
        help="a SEND answered 429 is unknown and never sent again (default: sent again "
        "after Retry-After)")
    add("--param", action="append", metavar="NAME=VALUE",
        help="a request-level parameter sent with every request (priority=high); repeat")


def request_takes(args: argparse.Namespace) -> float:
    """Seconds one request may take, the connection included: what a lease must outlast.

    ``request_deadline`` (default 10 x ``--timeout``) + ``connect_timeout``, as the
    client the flags make has them (``make_client``).
    """
    from .._settings import Settings

    timeout = setting(args.timeout, "HPGFAST_TIMEOUT", float)
    timeout = Settings.timeout if timeout is None else timeout
    deadline = args.request_deadline if args.request_deadline is not None else 10 * timeout
    connect = getattr(args, "connect_timeout", None)
    return float(deadline) + float(Settings.connect_timeout if connect is None else connect)


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output on stderr")


# -- send ------------------------------------------------------------------------------



def status_row(r: StatusResult) -> tuple[Any, ...]:
    when = r[3].isoformat(sep=" ") if r[3] is not None else None
    return (r[1], r[0], r[2], when, r[4])


def status_json(r: StatusResult) -> dict[str, Any]:
    return dict(zip(("provider_id", "code", "status", "time", "reason"), status_row(r)))


def wait_for_signal(announce: Callable[[], None] = lambda: None) -> None:
    """Wait for Ctrl-C or SIGTERM; ``announce`` (saying "Ctrl-C stops") is called once
    they are caught, so a Ctrl-C that follows the words stops the server cleanly."""
    import threading

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    from . import signalled

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if signalled():
            return  # one came during start-up and its KeyboardInterrupt was lost
        announce()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type for a finite number above 0 (seconds, a budget)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def explain(exc: BaseException) -> str:
    """What a failure means, in the words a user looks for, then hpgfast's own text."""
    if isinstance(exc, AuthError):
        return f"wrong login or password: {exc}"
    if isinstance(exc, AccountError):
        return f"the account cannot send ({exc.code}); nothing more was sent: {exc}"
    return str(exc)


def exit_for(exc: BaseException) -> int:
    from ..journal import (
        JournalAccessDenied,
        JournalClaimLost,
        JournalError,
        JournalStorageError,
        JournalUnavailable,
    )

    if isinstance(exc, JournalStorageError):
        return EXIT_JOURNAL
    if isinstance(exc, JournalAccessDenied):  # a JournalUnavailable too: first
        return EXIT_AUTH
    if isinstance(exc, (JournalUnavailable, JournalClaimLost)):
        return EXIT_JOURNAL_UNAVAILABLE
    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, AccountError):
        return EXIT_ACCOUNT
    if isinstance(
        exc,
        (
            UsageError,
            InputError,
            JournalError,
            MessageError,
            RequestTooLarge,
            UnexpectedReply,
            ProxyError,
        ),
    ):
        return EXIT_USAGE
    # A 4xx says the URL or the request is wrong; 429 only that the platform is busy.
    if isinstance(exc, HTTPStatusError) and 400 <= exc.status < 500 and exc.status != 429:
        return EXIT_USAGE
    return EXIT_TRANSPORT

