"""A crash-safe journal of a bulk send: what went out, what came back, what was delivered.

One SQLite file per send run; ``Journal`` is its interface. The code is split by
concern, one module each, so that each can be read alone:

- ``_schema``: the tables, the schema's versions and their migrations, the states;
- ``_file``: opening the file by one name, the sender's lock, transactions, ``meta``;
- ``_load``: binding the journal to an input and loading its messages;
- ``_send``: the send loop's writes, and the order of writes that makes a crash at
  any moment safe (the safety argument is that module's docstring);
- ``_statuses``: delivery statuses, polled or pushed, and their history;
- ``_reading``: counts, summaries, rows and costs for reports;
- ``_pg``: ``PostgresJournal``, the same interface in a PostgreSQL database shared
  by a fleet of senders (psycopg imported when one is opened: the ``postgres``
  extra), split as this engine is: ``_pg_url`` (the URL, masking, connecting,
  errors), ``_pg_schema``, ``_pg_conn`` (the connection, transactions, schema),
  ``_pg_load``, ``_pg_claims`` (claims, the lease, recovery, results) and
  ``_pg_reading`` (the ``_pg`` docstring says how);
- ``_sender``: sending what the journal holds through a ``Client`` or an
  ``AsyncClient`` (``Journal.send``, ``send_async``), exactly once;
- ``_follow``: following delivery statuses, recording pushed reports;
- ``_errors``: the ``JournalError`` tree.

``open_journal(target)`` opens a journal by a path (this SQLite engine) or a
``postgresql://`` URL (the shared engine, ``_pg``, with the ``postgres`` extra).

``Journal`` is those parts together; each part is a subclass of the file's class,
so every part reads and writes through the same connection, mutex and transactions.
"""

from __future__ import annotations

import os
import re
from typing import Any, Union

from ._errors import (
    JournalAccessDenied,
    JournalClaimLost,
    JournalError,
    JournalIdsNotRecorded,
    JournalLocked,
    JournalMismatch,
    JournalStorageError,
    JournalUnavailable,
)
from ._follow import FollowSummary, _Following
from ._load import _Loading, file_fingerprint, message_costs
from ._pg import PostgresJournal
from ._reading import ROW_COLUMNS as ROW_COLUMNS
from ._reading import _Reading
from ._schema import FINAL_STATES, SENDABLE_STATES, STATES, State
from ._schema import FINAL_STATUS_CODES as FINAL_STATUS_CODES
from ._schema import ID_LINE_LENGTH as ID_LINE_LENGTH
from ._schema import ID_PREFIX_LENGTH as ID_PREFIX_LENGTH
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._send import _Sending
from ._sender import DEFAULT_CHUNK as DEFAULT_CHUNK
from ._sender import Progress, ResultsWriter, SendSummary, _Sender
from ._statuses import _Statuses

# ``ROW_COLUMNS``, ``FINAL_STATUS_CODES``, ``SCHEMA_VERSION`` and the clientId lengths
# (imported ``as`` themselves above) are public too, outside ``__all__`` as always.
__all__ = [
    "FINAL_STATES",
    "SENDABLE_STATES",
    "STATES",
    "FollowSummary",
    "Journal",
    "JournalAccessDenied",
    "JournalClaimLost",
    "JournalError",
    "JournalIdsNotRecorded",
    "JournalLocked",
    "JournalMismatch",
    "JournalStorageError",
    "JournalUnavailable",
    "PostgresJournal",
    "Progress",
    "ResultsWriter",
    "SendSummary",
    "State",
    "file_fingerprint",
    "message_costs",
    "open_journal",
]


class Journal(_Loading, _Sending, _Statuses, _Reading, _Sender, _Following):
    """A journal in one SQLite file (created if missing): exactly-once sending.

    ``add`` messages (with keys of yours: idempotent), ``send(client)`` or ``await
    send_async(aclient)`` what is pending, read outcomes with ``by_key``,
    ``by_line``, ``rows``, ``counts`` and ``summary``, and statuses with ``follow``
    and ``record_reports`` (docs/journal.md, "The journal in your own code").
    ``open_journal`` opens one by a path, or a shared one by a ``postgresql://``
    URL, with the same methods.

    Args:
        path: the journal file; ``-wal`` and ``-shm`` files appear beside it. It
            is opened by its real path (symlinks resolved); a file with more than
            one hard link is refused. The file records the name it was last opened
            by; while that name's ``-wal`` is there (its user was killed, or runs),
            another name of the same file (a bind mount, a move) is refused. A
            sender also marks the file itself as open until it closes cleanly: a
            file so marked is refused without a ``-wal`` beside its name (the log
            was deleted), and as a copy or a leftover of a file whose last sender's
            name still has its log, or still holds the journal.
        synchronous: ``"FULL"`` (fsync on every commit: safe against power loss) or
            ``"NORMAL"`` (safe against a killed process, not a power loss).
        lock: take the sender's lock (``flock`` on the database file: its device
            and inode, whatever the path): only one process may send with a journal
            at a time. Readers (reports, the receiver) pass False.
        final_statuses: the delivery statuses after which nothing changes.
        create: False for a command that only uses a journal a send made (a
            report, statuses, the receiver): a missing, empty or foreign file is
            refused (``JournalError``) before anything is written, and left as it was.

    Raises:
        JournalLocked: ``lock`` and another process holds the lock.
        JournalError: the file is not a journal (missing or empty too, with
            ``create=False``), or of a newer schema, or through this name it might
            not show every commit its last sender made (see ``path``); the message
            names the path last used.
    """


#: A libpq keyword/value connection string (``host=db user=u password=...``): what
#: PostgreSQL's tools take besides a URL. A journal is named by a URL instead.
_CONNINFO = re.compile(
    r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options)"
    r"\s*=", re.IGNORECASE
)


def _refuse_conninfo(target: str) -> None:
    """Refuse a libpq keyword string given where a journal is named (it is not a file).

    Taken as a path it would make a file of that name, and a message naming the
    path would show the password in it; the error names neither.

    Raises:
        JournalError: ``target`` reads as ``keyword=value`` pairs.
    """
    if _CONNINFO.match(target):
        raise JournalError(
            "a journal is a file path or a postgresql:// URL; a keyword string "
            "(host=... dbname=...) is not taken: write it as "
            "postgresql://USER@HOST:PORT/DBNAME (the password from PGPASSWORD or ~/.pgpass)"
        )


#: What starts as a PostgreSQL URL (a scheme, then ``:`` or ``/``), and what one is.
_PG_LIKE = re.compile(r"^\s*postgres(?:ql)?[:/]", re.IGNORECASE)
_PG_URL = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)


def _refuse_malformed_url(target: str) -> None:
    """Refuse a PostgreSQL URL mistyped (``postgres:/``, ``postgresql//``...) with a user.

    No reader takes it for what it was meant to be: libpq echoes it whole, and a
    path of that name (a file) would be named in "no journal at ...", the password
    in it. The error names the form expected, never the target.

    Raises:
        JournalError: ``target`` starts as a PostgreSQL URL, holds an ``@``, and
            does not start ``postgresql://`` or ``postgres://``.
    """
    if _PG_LIKE.match(target) and "@" in target and not _PG_URL.match(target):
        raise JournalError(
            "a journal's URL starts postgresql:// (or postgres://), two slashes: write "
            "it as postgresql://USER@HOST:PORT/DBNAME, a password as USER:PASSWORD@ or "
            "from PGPASSWORD or ~/.pgpass (the target given is not shown: it may hold one)"
        )


def open_journal(target: Union[str, os.PathLike[str]], **options: Any) -> Any:
    """Open a journal: a path -> the SQLite ``Journal``; a URL -> the shared engine.

    ``target`` is a file path (``str`` or ``os.PathLike``), opened as
    ``Journal(target, **options)`` (``synchronous``, ``lock``, ``final_statuses``,
    ``create``), or a ``postgresql://`` (or ``postgres://``) URL, opened as
    ``PostgresJournal(target, **options)``: one journal shared by a fleet of
    senders (it needs ``pip install 'hpgfast[postgres]'``). Both have the same
    methods (``add``, ``send``, ``send_async``, ``by_key``, ``follow``...) and
    are context managers.

    Raises:
        JournalError: the target cannot be opened as a journal (see ``Journal``),
            or a URL while the ``postgres`` extra is not installed.
    """
    if isinstance(target, str):
        _refuse_malformed_url(target)
    if isinstance(target, str) and target.split(":", 1)[0].lower() in ("postgresql", "postgres"):
        # psycopg is imported when the engine opens a journal; without it, the
        # JournalError names the postgres extra.
        return PostgresJournal(target, **options)
    if isinstance(target, str):
        _refuse_conninfo(target)
    if isinstance(target, str) and "://" in target:
        scheme = target.split("://", 1)[0]
        raise JournalError(
            f"a journal is a file path or a postgresql:// URL, not a {scheme}:// URL"
        )
    return Journal(target, **options)
