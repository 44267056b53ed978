"""The exit codes of the ``hpgfast`` command: the one table every help text, the
package docstring and ``docs/cli.md`` are made from.

Strategy: a code means one thing whichever command returns it and however its input
was given (``send --to`` or ``--file``, with or without a journal). ``COMMAND_CODES``
says which codes each command can really return (tests/test_cli_exit_codes.py runs a
real process for every pair), with the words that command's help uses for a code
where its meaning there is narrower (``demo``'s 1, ``bench``'s 0).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "COMMAND_CODES",
    "EXIT_ACCOUNT",
    "EXIT_AUTH",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_JOURNAL",
    "EXIT_JOURNAL_UNAVAILABLE",
    "EXIT_OK",
    "EXIT_TRANSPORT",
    "EXIT_USAGE",
    "ExitCode",
    "exit_codes_help",
    "markdown_tables",
    "rst_table",
]


class ExitCode(IntEnum):
    """An exit status of ``hpgfast``, with what it means (``.description``)."""

    OK = 0
    INCOMPLETE = 1
    USAGE = 2
    AUTH = 3
    TRANSPORT = 4
    ACCOUNT = 5
    JOURNAL = 6
    JOURNAL_UNAVAILABLE = 7
    INTERRUPTED = 130

    @property
    def description(self) -> str:
        """What the code means, for every command that returns it."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    ExitCode.OK: "done: every message accepted, every status final, a server stopped "
    "by Ctrl-C or SIGTERM",
    ExitCode.INCOMPLETE: "done, but not everything succeeded: some messages rejected or "
    "invalid, or left unknown or not sent by an earlier run; ids the platform does not "
    "know, or statuses not final when the deadline passed",
    ExitCode.USAGE: "usage, configuration or input error: bad flags, an unreadable or "
    "empty input, no room in TMPDIR for the checked input's copy, no such journal (or a "
    "file that is not one), a journal URL mistyped or "
    "with a setting libpq does not take, a journal made for another "
    "input or in use, a port out of range or that cannot be bound, an HTTP 4xx from the URL, "
    "a proxy that refuses (407, a refused CONNECT), a reply that is not HPG (a redirect, "
    "never followed; a login page): the run stopped, the rest is not sent",
    ExitCode.AUTH: "authentication failed: the platform's error-auth (wrong login or "
    "password), or the journal's database refused its user (a wrong user or password "
    "in the URL, PGPASSWORD or ~/.pgpass; no such database; a role without the rights)",
    ExitCode.TRANSPORT: "transport or protocol failure: the platform unreachable, TLS, "
    "HTTP 5xx replies (three in a row stop the run), an unreadable reply (the affected "
    "messages are unknown or not sent)",
    ExitCode.ACCOUNT: "the account cannot send (error-insufficient-balance, "
    "error-account-locked, error-system-blocked): the run stopped, the rest is not sent",
    ExitCode.JOURNAL: "the journal cannot be written (disk full, I/O error); it stays "
    "resumable: free space and run the same command again",
    ExitCode.JOURNAL_UNAVAILABLE: "the journal's database cannot be reached or went away "
    "(a postgresql:// journal), or this sender stalled past its lease and its claims "
    "went to others: nothing unrecorded was sent; run the same command again once the "
    "database is back, and it resumes",
    ExitCode.INTERRUPTED: "interrupted: Ctrl-C or SIGTERM at any moment, start-up "
    "included (a server already serving stops instead, with 0); a journal stays "
    "consistent",
}

_ALL = tuple(ExitCode)
_SERVER_OK = "stopped by Ctrl-C or SIGTERM"
_SERVER_INTERRUPTED = "interrupted by Ctrl-C or SIGTERM before it was serving"
# A server's or a local command's 2: the causes it can meet (it never sends, so no
# reply from a URL can stop it).
_PORT = "a port out of range or that cannot be bound"
# The codes of a command that only reads or records in a journal, a URL's included.
_DENIED = ("the journal's database refused its user (a wrong user or password in the "
           "URL, PGPASSWORD or ~/.pgpass; no such database; a role without the rights)")

#: command -> {code: what it means for that command ("" : the table's own words)}.

# Short names the commands use, each the table's own member.
EXIT_OK = ExitCode.OK
EXIT_INCOMPLETE = ExitCode.INCOMPLETE
EXIT_USAGE = ExitCode.USAGE
EXIT_AUTH = ExitCode.AUTH
EXIT_TRANSPORT = ExitCode.TRANSPORT
EXIT_ACCOUNT = ExitCode.ACCOUNT
EXIT_JOURNAL = ExitCode.JOURNAL
EXIT_JOURNAL_UNAVAILABLE = ExitCode.JOURNAL_UNAVAILABLE
EXIT_INTERRUPTED = ExitCode.INTERRUPTED

COMMAND_CODES: dict[str, dict[ExitCode, str]] = {
    "send": {code: "" for code in _ALL},
    "status": {code: "" for code in _ALL},
    "report": {
        ExitCode.OK: "done",
        ExitCode.USAGE: "usage error: bad flags, no such journal (or a file that is not "
        "one), a --csv file that cannot be written",
        ExitCode.AUTH: _DENIED,
        ExitCode.JOURNAL_UNAVAILABLE: "",
        ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
    },
    "receive": {
        ExitCode.OK: _SERVER_OK,
        ExitCode.USAGE: "usage or configuration error: bad flags, no secret (or an "
        "unreadable secret file), --no-secret without --allow, no such journal (or a "
        f"file that is not one), {_PORT}",
        ExitCode.AUTH: _DENIED,
        ExitCode.JOURNAL_UNAVAILABLE: "",
        ExitCode.INTERRUPTED: _SERVER_INTERRUPTED,
    },
    "emulate": {
        ExitCode.OK: _SERVER_OK,
        ExitCode.USAGE: f"usage error: bad flags or fault settings, {_PORT}",
        ExitCode.INTERRUPTED: _SERVER_INTERRUPTED,
    },
    "demo": {
        ExitCode.OK: "every message ended as the emulator's rules say, the deliberate "
        "rejections (every 250th address) included, and every status is final",
        ExitCode.INCOMPLETE: "anything else: other rejections, unknown or not-sent "
        "messages, statuses not final when following stopped, or the run stopped early",
        ExitCode.USAGE: "usage error: bad flags, a journal that cannot be made or is in "
        "use",
        ExitCode.AUTH: _DENIED,
        ExitCode.JOURNAL_UNAVAILABLE: "",
        ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
    },
    "bench": {
        ExitCode.OK: "every claim a single run can judge meets its target (the rows "
        "marked 'information' are not judged)",
        ExitCode.INCOMPLETE: "at least one claim is under its target, of those a single "
        "run can judge; on a busy machine "
        "timings are noisy: rerun with a larger --budget before drawing conclusions",
        ExitCode.USAGE: "usage error: bad flags",
        ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM)",
    },
}


def _meaning(command: str, code: ExitCode) -> str:
    return COMMAND_CODES[command][code] or code.description


def _wrap(text: str, width: int, indent: str) -> list[str]:
    import textwrap

    # Every line the same width: the first one's room is taken by the code itself.
    lines = textwrap.wrap(text, width + len(indent), initial_indent=indent,
                          subsequent_indent=indent) or [indent]
    return [lines[0][len(indent):], *lines[1:]]


def exit_codes_help(command: str) -> str:
    """The ``exit codes:`` section of ``hpgfast COMMAND --help``: only its own codes."""
    lines = ["exit codes:"]
    for code, _ in COMMAND_CODES[command].items():
        head = f"  {int(code):<4} "
        body = _wrap(_meaning(command, code), 79 - len(head), " " * len(head))
        lines.append(head + body[0])
        lines.extend(body[1:])
    return "\n".join(lines) + "\n"


def overview_help() -> str:
    """The ``exit codes:`` section of ``hpgfast --help``: every code, its commands."""
    lines = ["exit codes: (in brackets, the commands that return it)"]
    for code in ExitCode:
        users = [c for c, codes in COMMAND_CODES.items() if code in codes]
        head = f"  {int(code):<4} "
        text = f"{code.description} [{', '.join(users)}]"
        body = _wrap(text, 79 - len(head), " " * len(head))
        lines.append(head + body[0])
        lines.extend(body[1:])
    return "\n".join(lines) + "\n"


def rst_table() -> str:
    """The codes as a reStructuredText table (the ``hpgfast.cli`` docstring)."""
    rule = "===  " + "=" * 74
    rows = [rule]
    for code in ExitCode:
        body = _wrap(code.description, 74, " " * 5)
        rows.append(f"{int(code):<3}  " + body[0])
        rows.extend(body[1:])
    rows.append(rule)
    return "\n".join(rows) + "\n"


def markdown_tables() -> str:
    """The codes as Markdown (``docs/cli.md``): the codes, then each command's."""
    out = ["| code | meaning | returned by |", "|---|---|---|"]
    for code in ExitCode:
        users = ", ".join(f"`{c}`" for c, codes in COMMAND_CODES.items() if code in codes)
        out.append(f"| {int(code)} | {code.description} | {users} |")
    out += ["", "Where a command gives a code narrower words:", "",
            "| command | code | meaning there |", "|---|---|---|"]
    for command, codes in COMMAND_CODES.items():
        for code, words in codes.items():
            if words:
                out.append(f"| `{command}` | {int(code)} | {words} |")
    return "\n".join(out) + "\n"
