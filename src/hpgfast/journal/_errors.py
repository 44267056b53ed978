"""The journal's errors: one tree under ``JournalError`` (itself an ``HPGError``).

Strategy: apart from the code that raises them, because every part of the journal
raises them (opening, loading, sending) and the command line maps them to exit codes
and messages without needing to know which part spoke. Each carries its context as
attributes and says in its message what the user can do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Optional

from ..exceptions import HPGError


class JournalError(HPGError):
    """The journal cannot be used as asked (see the message)."""


class JournalMismatch(JournalError, ValueError):
    """The input (or a setting that matters) differs from the one the journal was made for.

    ``differences`` maps each differing key to ``(journal's value, new value)``.
    """

    def __init__(self, path: str, differences: Mapping[str, tuple[Optional[str], str]]) -> None:
        super().__init__(path, dict(differences))
        self.path = path
        self.differences = dict(differences)

    def __str__(self) -> str:
        shown = "; ".join(
            f"{key}: journal has {old!r}, now {new!r}"
            for key, (old, new) in sorted(self.differences.items())
        )
        return (
            f"journal {self.path} was made for a different input or settings ({shown}); "
            "resuming would send the wrong messages. Use the original input, or a new journal."
        )


class JournalStorageError(JournalError):
    """The journal could not be written (disk full, I/O error, read-only file).

    SQLite's error, or the PostgreSQL server's (its disk full, an I/O error).

    The transaction that failed was rolled back, so the journal is as consistent as
    after the last commit: free space (or fix the file system) and run the same
    command again to resume. ``sqlite_error`` is SQLite's (or the server's) own
    message.
    """

    def __init__(self, path: str, sqlite_error: str) -> None:
        super().__init__(path, sqlite_error)
        self.path = path
        self.sqlite_error = sqlite_error

    def __str__(self) -> str:
        return (
            f"cannot write the journal {self.path}: {self.sqlite_error}. Nothing "
            "committed is lost and the journal can be resumed: free disk space (or fix "
            "the file system) and run the same command again."
        )


def _is_storage_error(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("full", "i/o", "readonly", "read-only", "no space"))


def _line_ranges(lines: Sequence[int], *, most: int = 100) -> str:
    """``"101-149, 151-159, 161-200"``: ascending lines as ranges, the first ``most``."""
    ranges: list[str] = []
    first = previous = None
    for line in [*lines, None]:
        if line is not None and previous is not None and line == previous + 1:
            previous = line
            continue
        if first is not None:
            ranges.append(str(first) if first == previous else f"{first}-{previous}")
        first = previous = line
    shown = ", ".join(ranges[:most])
    if len(ranges) > most:
        shown += f", ... ({len(lines):,} lines in all)"
    return shown


class JournalIdsNotRecorded(JournalError):
    """Unknown messages to resend went out under clientIds the journal never recorded.

    A journal of schema 1 (before the journal made the clientIds) kept none of the
    ids its messages were sent with. A message that was in flight or unknown when
    it was migrated may have reached the platform under that id; sent again, it
    would go under the journal's own id, which a platform that refuses a repeated
    clientId has never seen: it would be accepted, and delivered, a second time.
    ``lines`` are those messages' lines, ascending.
    """

    def __init__(self, path: str, lines: Sequence[int]) -> None:
        super().__init__(path, list(lines))
        self.path = path
        self.lines = list(lines)

    def __str__(self) -> str:
        return (
            f"journal {self.path}: {len(self.lines):,} unknown messages were sent before "
            "the journal recorded clientIds (an older hpgfast made this journal), so "
            "their first clientId is not known; sent again, they would go under a new "
            "one, and a platform that refuses repeated clientIds would accept them a "
            f"second time: lines {_line_ranges(self.lines)}. Nothing was sent. "
            "Without --resend-unknown the other messages are sent and these stay "
            "unknown; --resend-unknown-without-ids (resend_unknown_without_ids=True) "
            "sends them again, knowing their recipients may get a second SMS."
        )


class JournalLocked(JournalError):
    """Another process is sending with this journal right now."""


def _ended(reason: str) -> str:
    """``reason`` as a sentence: its own end mark (a ``?``), else a ``.``."""
    return reason if reason.endswith((".", "?", "!")) else f"{reason}."


class JournalUnavailable(JournalError):
    """The journal's database server cannot be reached, or went away mid-run.

    Raised by the PostgreSQL journal for a server that refuses or drops the
    connection, cannot be found, or times out. The transaction under way was not
    committed (or its commit was not confirmed: a mark the server did commit stays
    ``in_flight`` under this sender's lease, and becomes ``unknown`` when the lease
    lapses, never ``pending``), so nothing is recorded that did not happen: run the
    same command again once the server is back. ``path`` is the journal's URL with
    its password masked; ``reason`` the server's or the driver's words, the password
    masked in them too.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"cannot use the journal {self.path}: {_ended(self.reason)} Nothing that was not "
            "committed is recorded; run the same command again once the database "
            "server is reachable, and the journal resumes where its last commit left it."
        )


class JournalAccessDenied(JournalUnavailable):
    """The database server refused the journal's credentials or rights.

    A wrong user or password (from the URL, ``PGPASSWORD`` or ``~/.pgpass``), a
    database that does not exist, or a role without the rights the journal needs
    (creating its tables, writing its rows). Fix the URL or the role's grants.
    """

    def __str__(self) -> str:
        return (
            f"the database server refused the journal {self.path}: {_ended(self.reason)} "
            "Check the user, password and database name (the URL, PGPASSWORD or "
            "~/.pgpass) and the role's rights on the database."
        )


class JournalClaimLost(JournalError):
    """This sender may no longer send messages it had claimed (a shared journal).

    A fleet's journal (PostgreSQL) lets a sender hold the rows it claimed while its
    lease lasts. Raised before a request's first byte when the claim would run out
    before the request could end (less than ``request_deadline + connect_timeout``
    left: ``why`` says so), or when a sender that stalled past its lease finds some
    of its lines claimed by another sender or their in-flight marks turned
    ``unknown`` (``lines``, ascending). The request is not sent; its messages stay
    sendable (or ``unknown``, if their mark lapsed). A journal in one file (SQLite)
    holds its claim as long as it is open, and never raises it.
    """

    def __init__(self, path: str, lines: Sequence[int] = (), why: Optional[str] = None) -> None:
        super().__init__(path, list(lines), why)
        self.path = path
        self.lines = list(lines)
        self.why = why

    def __str__(self) -> str:
        if self.why is not None:
            return f"journal {self.path}: {self.why}"
        if not self.lines:
            return self.path
        return (
            f"journal {self.path}: this sender's lease lapsed and {len(self.lines):,} "
            f"of the lines it was about to send are no longer its own: lines "
            f"{_line_ranges(self.lines)}. Nothing of them was marked or sent; another "
            "sender has them, or they wait as unknown."
        )
