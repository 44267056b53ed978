"""A crash-safe journal of a bulk send: what went out, what came back, what was delivered.

Strategy: one SQLite file in WAL mode. ``messages`` holds the input as read, one row
per input message keyed by its 1-based number in the input (``line``), written once;
``outcomes`` holds each message's state, provider id, code, delivery status, status
time, reason and update time, in narrow rows (so the two state changes of every
message rewrite few pages); the ``journal`` view joins them into one row per message
(no outcome row yet means ``pending``). ``meta`` holds the input's fingerprint (size,
SHA-256, the settings that change what is sent) so that a changed input is refused,
and the name the file was last opened by (written into the file itself, not its
log): SQLite finds the log by name, so another name of the same file is refused
while that name's log is there.
The send loop moves each message through a small state machine, and the order of
the writes is the whole safety argument:

1. every input message is inserted as ``pending`` (batches of 10,000 rows per
   transaction) before anything is sent;
2. a chunk of rows is marked ``in_flight`` in one transaction, which is committed
   *before* the chunk is handed to the client;
3. the chunk's results are written in one transaction after the client returns.

A process killed at any moment therefore leaves every message either ``pending``
(never handed to the client: safe to send), ``in_flight`` (may have reached the
platform: becomes ``unknown`` on resume and is not sent again unless the user
asks), or in a result state. SQLite's WAL commit is atomic, and a commit that
returned is in the operating system's cache before the next request leaves, so
``kill -9`` loses nothing that was committed. ``synchronous=FULL`` (the default)
also fsyncs the WAL on every commit, so a power loss cannot undo an ``in_flight``
mark either (with ``NORMAL`` it could, and the message would be sent again).
Writes are batched per chunk, so the journal costs a few transactions per few
thousand messages.

States::

    pending --> in_flight --> accepted   (code ok, provider_id set)
       ^            |    \\--> rejected   (a platform code other than ok)
       |            |     \\-> not_sent   (the request never left: sent again on resume)
       |            \\-------> unknown    (no reply line, or the process died)
       +-- not_sent, and unknown with resend_unknown=True
    pending --> invalid   (the message cannot be encoded as given; never sent)
    unknown --> pending --> in_flight --> accepted_earlier
                (resent with the clientId the journal made for it, and answered
                error-id-not-unique on its own reply line: it was accepted before)

Every message without a clientId of its own is sent with one the journal makes:
the journal's random prefix (11 characters of ``[0-9A-Za-z]``, 65 bits, drawn once
and kept in ``meta``) and the message's line in base 62 (9 characters): 20
characters, the same on every resend. A platform that enforces unique clientIds
then refuses a resend of a message it already has, instead of sending a second SMS.
A journal of schema 1 kept no clientIds: its messages open (in flight, unknown) at
the migration are listed in ``ids_not_recorded``, and resending them (under a new
id) takes ``resend_unknown_without_ids`` (see ``Journal.recover``).

Accepted messages then move through delivery statuses (``status``,
``status_time``, ``reason``); every change is also appended to ``status_history``
by a trigger, with the time it was recorded and its source (``poll`` or ``push``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

from ._records import Message, SendResult, StatusResult
from ._wire import ID_ALPHABET, Code, Status
from .exceptions import HPGError, MessageError, RequestRejected
from .sms import count_segments, transliterate_if_cheaper, transliterate_messages

__all__ = [
    "FINAL_STATES",
    "SENDABLE_STATES",
    "STATES",
    "Journal",
    "JournalError",
    "JournalIdsNotRecorded",
    "JournalLocked",
    "JournalMismatch",
    "JournalStorageError",
    "State",
    "file_fingerprint",
    "message_costs",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
#: Versions this code opens, each with the step that brings it to the next.
#: 1 -> 2: a clientId prefix per journal (``id_prefix`` in meta); the schema of the
#: tables is unchanged, so the step only adds the prefix.
_MIGRATIONS = ("1",)

#: Random characters of a journal's clientId prefix (65 bits of [0-9A-Za-z]).
ID_PREFIX_LENGTH = 11
#: Characters of the line number after it: 11 + 9 = 20, the protocol's maximum.
ID_LINE_LENGTH = 9


class State:
    """The states of a journal row (see the module docstring for the machine)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    NOT_SENT = "not_sent"
    INVALID = "invalid"
    #: Resent after an unknown outcome and answered ``error-id-not-unique`` for the
    #: clientId the journal made for it: the platform accepted it the first time.
    ACCEPTED_EARLIER = "accepted_earlier"


#: Every state, in the order summaries show them.
STATES = (
    State.PENDING,
    State.IN_FLIGHT,
    State.ACCEPTED,
    State.ACCEPTED_EARLIER,
    State.REJECTED,
    State.UNKNOWN,
    State.NOT_SENT,
    State.INVALID,
)
#: States a send run picks up (``unknown`` too when the user asks to resend it).
SENDABLE_STATES = (State.PENDING, State.NOT_SENT)
#: States a message never leaves.
FINAL_STATES = frozenset(
    (State.ACCEPTED, State.ACCEPTED_EARLIER, State.REJECTED, State.INVALID)
)

#: Non-``ok`` STATUS codes that are an answer about the message, not a failed query:
#: recorded in ``status`` and treated as final.
FINAL_STATUS_CODES = frozenset((Code.ERROR_PROVIDER_ID_UNKNOWN,))

_SENDABLE_SQL = f"('{State.PENDING}', '{State.NOT_SENT}')"


def _final_status_sql(final_statuses: Iterable[str]) -> str:
    """``(status IS NULL OR lower(status) NOT IN (...))``: not final, in any case.

    Statuses are data (``Client(final_statuses=...)``); each must be a plain token
    (the wire's code characters), so it can stand in SQL as a literal.
    """
    names = sorted({s.lower() for s in final_statuses} | FINAL_STATUS_CODES)
    for name in names:
        if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
            raise ValueError(f"not a status name: {name!r}")
    listed = ", ".join(f"'{n}'" for n in names)
    return f"(status IS NULL OR lower(status) NOT IN ({listed}))"

# Two tables: the input as read (written once, never changed) and each message's
# outcome (narrow rows, so that the two state changes of every message rewrite few
# pages). An outcome row exists from the moment a message first goes in flight; no
# row means pending. The ``journal`` view joins them into one row per message.
_META_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""
_SCHEMA = _META_SCHEMA + f"""
CREATE TABLE IF NOT EXISTS messages (
    line      INTEGER PRIMARY KEY,   -- 1-based number of the message in the input
    address   TEXT NOT NULL,
    text      TEXT NOT NULL,
    subject   TEXT,
    client_id TEXT,
    params    TEXT                   -- JSON object of extra parameters, or NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    line          INTEGER PRIMARY KEY REFERENCES messages(line),
    state         TEXT NOT NULL,
    provider_id   TEXT,
    code          TEXT,              -- the platform's code, or not-sent / unknown
    status        TEXT,              -- the last delivery status seen
    status_time   TEXT,              -- when that status began (platform's clock)
    reason        TEXT,              -- why: undelivered reason, invalid input, ...
    status_source TEXT,              -- poll or push
    updated_at    REAL NOT NULL      -- Unix time of the row's last change
);
CREATE VIEW IF NOT EXISTS journal AS
    SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params,
           COALESCE(o.state, '{State.PENDING}') AS state, o.provider_id, o.code,
           o.status, o.status_time, o.reason, o.status_source, o.updated_at
    FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line;
-- Messages sent before the journal recorded clientIds (schema 1) and in flight or
-- unknown when it was migrated: their first clientId is not known, so a resend under
-- the journal's own id could be accepted twice. Filled once, by the migration.
CREATE TABLE IF NOT EXISTS ids_not_recorded (
    line INTEGER PRIMARY KEY             -- messages.line
);
CREATE TABLE IF NOT EXISTS status_history (
    id          INTEGER PRIMARY KEY,
    line        INTEGER NOT NULL,
    provider_id TEXT NOT NULL,
    status      TEXT,
    status_time TEXT,
    reason      TEXT,
    source      TEXT,
    recorded_at REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outcomes_status_change
AFTER UPDATE OF status, status_time ON outcomes
WHEN NEW.status IS NOT OLD.status OR NEW.status_time IS NOT OLD.status_time
BEGIN
    INSERT INTO status_history (line, provider_id, status, status_time, reason, source,
                                recorded_at)
    VALUES (NEW.line, NEW.provider_id, NEW.status, NEW.status_time, NEW.reason,
            NEW.status_source, NEW.updated_at);
END;
"""

# What each message costs, for reconciling an invoice: its SMS segments, the encoding
# they are counted in and whether the text goes out transliterated (``send
# --transliterate``: the count is then that of the Latin text). A table of its own,
# written in the load's transactions, so the schema of the others stays as it is; a
# journal made before it has no rows here, and the totals say how many are counted.
_COSTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS costs (
    line           INTEGER PRIMARY KEY,  -- messages.line
    segments       INTEGER NOT NULL,
    encoding       TEXT NOT NULL,        -- gsm7 or ucs2
    transliterated INTEGER NOT NULL      -- 1: counted (and sent) in Latin letters
);
"""
_INSERT_COST = (
    "INSERT OR REPLACE INTO costs (line, segments, encoding, transliterated) VALUES (?, ?, ?, ?)"
)

_INSERT = (
    "INSERT INTO messages (line, address, text, subject, client_id, params) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_RESULT = "UPDATE outcomes SET state = ?, code = ?, provider_id = ?, updated_at = ? WHERE line = ?"
_STATUS = (
    "UPDATE outcomes SET status = ?, status_time = ?, reason = ?, status_source = ?, "
    f"updated_at = ? WHERE provider_id = ? AND state = '{State.ACCEPTED}' "
    "AND (status IS NOT ? OR status_time IS NOT ?) "
    # A final status never changes: a late push of an earlier status is not a change.
    "AND "
)

#: Columns of ``rows()`` (and of ``hpgfast report --csv``).
ROW_COLUMNS = (
    "line",
    "address",
    "text",
    "subject",
    "client_id",
    "params",
    "state",
    "provider_id",
    "code",
    "status",
    "status_time",
    "reason",
    "updated_at",
)


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
    """SQLite could not write the journal (disk full, I/O error, read-only file).

    The transaction that failed was rolled back, so the journal is as consistent as
    after the last commit: free space (or fix the file system) and run the same
    command again to resume. ``sqlite_error`` is SQLite's own message.
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


def file_fingerprint(path: Union[str, os.PathLike[str]]) -> dict[str, str]:
    """``{"input_size": ..., "input_sha256": ...}`` of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            size += len(block)
            digest.update(block)
    return {"input_size": str(size), "input_sha256": digest.hexdigest()}


def message_costs(
    rows: Sequence[tuple[int, Message]], *, transliterate: bool = False
) -> list[tuple[int, int, str, int]]:
    """``(line, segments, encoding, transliterated)`` for each ``(line, message)``.

    Counted on the text as it will be sent (with ``transliterate``, in Latin letters
    where that saves segments, as ``Client(transliterate=True)`` sends it). A batch
    goes through ``count_segments`` at once; a text that cannot be counted (a lone
    surrogate) gets no row: the send loop marks it ``invalid`` and it is never sent.
    """
    messages = [m for _, m in rows]
    try:
        changed: Sequence[int] = ()
        if transliterate:
            messages, changed = transliterate_messages(messages)
        counts = count_segments(messages)
    except MessageError:
        out = []
        for line, message in rows:  # rare: find the bad texts one by one
            try:
                text, moved = message[1], False
                if transliterate:
                    text, moved = transliterate_if_cheaper(text)
                (cost,) = count_segments([text])
            except MessageError:
                continue
            out.append((line, cost[2], cost[0], int(moved)))
        return out
    moved_set = set(changed)
    return [
        (line, cost[2], cost[0], int(i in moved_set))
        for i, ((line, _), cost) in enumerate(zip(rows, counts))
    ]


def _state_of(code: str) -> str:
    if code == Code.OK:
        return State.ACCEPTED
    if code == Code.UNKNOWN:
        return State.UNKNOWN
    if code == Code.NOT_SENT:
        return State.NOT_SENT
    return State.REJECTED


def _params_json(params: Any) -> Optional[str]:
    if not params:
        return None
    pairs = params.items() if isinstance(params, Mapping) else params
    return json.dumps(dict(pairs), ensure_ascii=False, separators=(",", ":"))


def _new_id_prefix() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_PREFIX_LENGTH))


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ID_ALPHABET[digit])
    if number:
        raise ValueError("line number too large for a clientId")
    return "".join(reversed(digits))


def _refuse_hard_links(path: str) -> None:
    """Refuse a journal file with more than one name: each name would get its own WAL."""
    try:
        links = os.stat(path).st_nlink
    except FileNotFoundError:
        return
    if links > 1:
        raise JournalError(
            f"journal {path} has {links} hard links; SQLite keeps its write-ahead log "
            "beside the name it was opened by, so two names mean two logs and a corrupt "
            "journal. Remove the other links (or copy the file) and try again."
        )


#: The ``meta`` key naming the path the journal was last opened by.
_OPENED_AS = "opened_as"


def _opened_as(path: str) -> Optional[str]:
    """The name the database file records it was last opened by, or None.

    Read from the file alone (``immutable``: no write-ahead log, no locks), as a
    process that has only this name would find it before SQLite reads its log.
    """
    try:
        if os.path.getsize(path) == 0:
            return None
    except OSError:
        return None
    uri = pathlib.Path(path).as_uri() + "?immutable=1"
    for attempt in range(5):
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error:
            return None
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_OPENED_AS,)).fetchone()
            return None if row is None else str(row[0])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
        except sqlite3.DatabaseError:
            pass  # not a database (the open below says so), or a page read mid-write
        finally:
            db.close()
        time.sleep(0.01 * (attempt + 1))
    return None


def _refuse_another_names_log(path: str, opened_as: Optional[str]) -> None:
    """Refuse ``path`` while the name the file was last opened by has its log beside it.

    Each name of one file has its own write-ahead log (SQLite finds the log by
    name), so the commits of a process that used another name and did not close
    cleanly (killed, or running) are in that name's log, not visible here; a
    sender through this name would send again what that one sent. A clean close
    checkpoints the log and removes it: then any name may open the file.
    """
    if opened_as is None or opened_as == path:
        return
    wal = opened_as + "-wal"
    if not os.path.exists(wal):
        return
    try:
        same = os.path.samefile(opened_as, path)
    except FileNotFoundError:
        same = True  # the file was moved away from that name and left its log there
    if not same:
        return  # this file is a copy: the log beside the original's name is the original's
    raise JournalError(
        f"journal {path} was last opened as {opened_as}, and that name's write-ahead "
        f"log ({wal}) is there: the commits in it are visible only through "
        f"{opened_as}, so this name would see the journal as it was before them, and "
        f"a send could repeat what was sent. Use --journal {opened_as} (the same file); "
        "a journal closed cleanly opens by any name."
    )


class Journal:
    """A send run's journal in one SQLite file (created if missing).

    Args:
        path: the journal file; ``-wal`` and ``-shm`` files appear beside it. It
            is opened by its real path (symlinks resolved); a file with more than
            one hard link is refused. The file records the name it was last opened
            by; while that name's ``-wal`` is there (its user was killed, or runs),
            another name of the same file (a bind mount, a move) is refused.
        synchronous: ``"FULL"`` (fsync on every commit: safe against power loss) or
            ``"NORMAL"`` (safe against a killed process, not a power loss).
        lock: take the sender's lock (``flock`` on the database file: its device
            and inode, whatever the path): only one process may send with a journal
            at a time. Readers (reports, the receiver) pass False.

    Raises:
        JournalLocked: ``lock`` and another process holds the lock.
        JournalError: the file is not a journal (or of a newer schema), or it was
            last opened by another name whose write-ahead log is still there.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        synchronous: str = "FULL",
        lock: bool = False,
        final_statuses: Iterable[str] = Status.FINAL,
    ) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self._not_final = _final_status_sql(final_statuses)
        # Opened by its real path: SQLite names the -wal and -shm files after the
        # path it opens, so every process must use the same name for one file.
        self.path = os.path.realpath(os.fspath(path))
        self._mutex = threading.RLock()
        self._lock_file: Optional[int] = None
        _refuse_hard_links(self.path)
        self._provider_index = False
        if lock:
            self._take_lock()
        try:
            # Before SQLite reads (or makes) a log beside this name.
            opened_as = _opened_as(self.path)
            _refuse_another_names_log(self.path, opened_as)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except BaseException:
            self._drop_lock()
            raise
        try:
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            if opened_as != self.path:
                self._record_name()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA temp_store=MEMORY")
            self._db.executescript(_SCHEMA)
            self._db.executescript(_COSTS_SCHEMA)
            version = self._meta("schema_version")
            if version is None:
                with self._transaction() as db:
                    self._set_meta(
                        {"schema_version": SCHEMA_VERSION, "id_prefix": _new_id_prefix()}, db
                    )
            elif version in _MIGRATIONS:
                self._migrate(version)
            elif version != SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema {version}, expected {SCHEMA_VERSION}"
                )
            self._id_prefix = self._meta("id_prefix") or ""
        except sqlite3.DatabaseError as exc:
            self.close()
            if _is_storage_error(exc):
                raise JournalStorageError(self.path, str(exc)) from exc
            raise JournalError(f"{self.path} is not an hpgfast journal: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _record_name(self) -> None:
        """Write this name into the database file itself, before any commit goes to its log.

        Out of WAL mode (a rollback journal writes the file itself): so the name is
        in the file even if the process dies the next moment, and no log beside this
        name holds a commit the file does not know was made here. When another
        connection keeps the file in WAL mode, the name goes through the log and a
        full checkpoint copies it into the file before anything else is written.
        """
        db = self._db
        try:
            mode = str(db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = "wal"
        db.executescript(_META_SCHEMA)
        with self._transaction() as tx:
            self._set_meta({_OPENED_AS: self.path}, tx)
        if mode == "wal":
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
            if busy or copied < frames:
                raise JournalError(
                    f"journal {self.path}: could not write its name into the database "
                    "file (another process keeps it busy); try again"
                )
        log.info("journal %s: recorded as opened by this name", self.path)

    def _migrate(self, version: str) -> None:
        # One path: each step brings the journal one version up, in one transaction.
        # Readers migrate too (the steps are small); a sender holds the lock.
        with self._transaction() as db:
            if version == "1":
                # 1 -> 2: the clientId prefix. Messages sent under version 1 carried
                # the client's own ids; from now on resends use the journal's. Those
                # whose outcome is open (in flight, unknown) may have reached the
                # platform under an id nobody recorded: a resend under the journal's
                # id would not be refused as a repeat. They are kept by line.
                db.execute(
                    "INSERT OR IGNORE INTO ids_not_recorded (line) SELECT o.line "
                    "FROM outcomes AS o JOIN messages AS m ON m.line = o.line "
                    "WHERE m.client_id IS NULL AND o.state IN (?, ?)",
                    (State.IN_FLIGHT, State.UNKNOWN),
                )
                self._set_meta({"schema_version": "2", "id_prefix": _new_id_prefix()}, db)
        log.info("journal %s: schema %s -> %s", self.path, version, SCHEMA_VERSION)

    def made_id(self, line: int) -> str:
        """The clientId the journal sends for ``line`` when the input gives none."""
        return self._id_prefix + _base62(line, ID_LINE_LENGTH)

    # -- lifetime ------------------------------------------------------------------------

    def _take_lock(self) -> None:
        # The lock is taken on the database file itself, so it follows the file's
        # identity (device and inode), not a name: a second sender through a
        # symlink, a relative path or a bind mount meets the same lock. flock() and
        # SQLite's fcntl() locks do not interact on Linux and BSD. This descriptor
        # is closed only after SQLite's connection (closing any descriptor of a file
        # drops the process's fcntl locks on it).
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalLocked(
                f"another process is sending with journal {self.path}; wait for it to end"
            ) from None
        self._lock_file = fd

    def _drop_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    def close(self) -> None:
        """Close the database (idempotent); release the sender's lock."""
        db = getattr(self, "_db", None)
        if db is not None:
            with self._mutex:
                db.close()
            self._db = None  # type: ignore[assignment]
        self._drop_lock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path!r}>"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # A failed write (disk full, I/O error) rolls the transaction back and
        # becomes a JournalStorageError: the journal stays as the last commit left it.
        with self._mutex:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
                try:
                    db.execute("COMMIT")
                except sqlite3.Error:
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise JournalStorageError(self.path, str(exc)) from exc

    # -- meta ----------------------------------------------------------------------------

    def _meta(self, key: str) -> Optional[str]:
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, values: Mapping[str, str], db: Optional[sqlite3.Connection] = None) -> None:
        target = db if db is not None else self._db
        with self._mutex:
            target.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items()
            )

    def meta(self) -> dict[str, str]:
        """Every meta entry: the input's fingerprint, settings, schema version."""
        with self._mutex:
            return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def bind(self, fingerprint: Mapping[str, str]) -> bool:
        """Tie the journal to an input and its settings; returns True when it is new.

        A journal already tied to a different fingerprint is refused, unless none of
        its messages ever went out (all still ``pending``): then it is emptied and
        rebound, since nothing was sent and so nothing can be sent twice.

        Raises:
            JournalMismatch: the fingerprint differs and messages were sent.
        """
        fingerprint = {f"input:{k}": str(v) for k, v in fingerprint.items()}
        with self._transaction() as db:
            old = {
                str(k): str(v)
                for k, v in db.execute("SELECT key, value FROM meta WHERE key LIKE 'input:%'")
            }
            if old == fingerprint:
                return False
            if old:
                touched = db.execute("SELECT 1 FROM outcomes LIMIT 1").fetchone()
                if touched is not None:
                    keys = set(old) | set(fingerprint)
                    raise JournalMismatch(
                        self.path,
                        {
                            k.partition(":")[2]: (old.get(k), fingerprint.get(k, ""))
                            for k in keys
                            if old.get(k) != fingerprint.get(k)
                        },
                    )
                log.info("journal %s: input changed before anything was sent; rebinding", self.path)
                db.execute("DELETE FROM messages")
                db.execute("DELETE FROM meta WHERE key LIKE 'input:%' OR key = 'loaded'")
            self._set_meta(fingerprint, db)
        return True

    # -- loading -------------------------------------------------------------------------

    @property
    def loaded(self) -> Optional[int]:
        """How many messages the input holds, once all are in the journal; else None."""
        value = self._meta("loaded")
        return None if value is None else int(value)

    @property
    def last_line(self) -> int:
        """The highest line in the journal (0 when empty): loading resumes after it."""
        with self._mutex:
            row = self._db.execute("SELECT MAX(line) FROM messages").fetchone()
        return int(row[0] or 0)

    def load(
        self,
        rows: Iterable[tuple[int, Message]],
        *,
        batch: int = 10_000,
        transliterate: bool = False,
    ) -> int:
        """Insert input messages (``pending``), ``batch`` per transaction; returns the count.

        ``rows`` are ``(line, message)`` with increasing lines; lines already in the
        journal are skipped, so a load cut short by a crash simply resumes. Call
        ``finish_load(total)`` once the input is exhausted. Each message's segments
        go into ``costs`` in the same transaction (see ``message_costs``), counted on
        the text as it will be sent: with ``transliterate``, in Latin letters where
        that saves segments.
        """
        start = self.last_line
        # Lines up to here have their messages and counts in the journal: this
        # load's earlier transactions wrote them, or an earlier load did.
        kept = start
        count = 0
        buffer: list[tuple[Any, ...]] = []
        batch_messages: list[tuple[int, Message]] = []

        def flush() -> None:
            nonlocal kept
            costs = message_costs(batch_messages, transliterate=transliterate)
            with self._transaction() as db:
                # Counts left by a load this journal was rebound from (``bind``
                # empties ``messages`` only) would be counted as this input's;
                # those of the rows written since are this input's own.
                db.execute("DELETE FROM costs WHERE line > ?", (kept,))
                db.executemany(_INSERT, buffer)
                db.executemany(_INSERT_COST, costs)
            kept = buffer[-1][0]

        for line, message in rows:
            if line <= start:
                continue
            address, text, subject, client_id, params = message
            buffer.append((line, address, text, subject, client_id, _params_json(params)))
            batch_messages.append((line, message))
            if len(buffer) >= batch:
                flush()
                count += len(buffer)
                buffer.clear()
                batch_messages.clear()
        if buffer:
            flush()
            count += len(buffer)
        return count

    def restart_load(self) -> None:
        """Empty a load that was cut short, so the input is read again from its start.

        Only while nothing was sent (no outcome rows): the input's fingerprint is
        computed while it is loaded, so a cut load has none to check a resumed one
        against.
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM outcomes LIMIT 1").fetchone() is None:
                db.execute("DELETE FROM messages")
                db.execute("DELETE FROM meta WHERE key LIKE 'input:%' OR key = 'loaded'")

    def finish_load(self, total: int) -> None:
        """Record that the whole input (``total`` messages) is in the journal."""
        with self._transaction() as db:
            self._set_meta({"loaded": str(total)}, db)

    # -- sending -------------------------------------------------------------------------

    def recover(
        self, *, resend_unknown: bool = False, resend_unknown_without_ids: bool = False
    ) -> dict[str, int]:
        """Settle what a previous run left: call once before sending; returns counts.

        Rows ``in_flight`` (the previous process died with their request out) become
        ``unknown``. With ``resend_unknown`` every ``unknown`` row goes back to
        ``pending``: the user accepts that some recipients may get a second SMS (a
        platform that refuses repeated clientIds refuses those it has, since a
        message is resent with the clientId it went out with).

        Raises:
            JournalIdsNotRecorded: ``resend_unknown`` and some unknown messages went
                out before the journal recorded clientIds (a journal migrated from
                schema 1): a resend would carry a new id. Nothing is changed.
                ``resend_unknown_without_ids`` (which implies ``resend_unknown``)
                resends them all the same.
        """
        resend_unknown = resend_unknown or resend_unknown_without_ids
        now = time.time()
        with self._transaction() as db:
            lost = db.execute(
                "UPDATE outcomes SET state = ?, code = ?, reason = ?, updated_at = ? "
                "WHERE state = ?",
                (State.UNKNOWN, Code.UNKNOWN, "in flight when the sender stopped", now,
                 State.IN_FLIGHT),
            ).rowcount
            resent = 0
            if resend_unknown and not resend_unknown_without_ids:
                unrecorded = [
                    int(r[0])
                    for r in db.execute(
                        "SELECT o.line FROM outcomes AS o JOIN ids_not_recorded AS n "
                        "ON n.line = o.line WHERE o.state = ? ORDER BY o.line",
                        (State.UNKNOWN,),
                    )
                ]
                if unrecorded:  # raised inside the transaction: it is rolled back
                    raise JournalIdsNotRecorded(self.path, unrecorded)
            if resend_unknown:
                resent = db.execute(
                    "UPDATE outcomes SET state = ?, reason = ?, updated_at = ? WHERE state = ?",
                    (State.PENDING, "unknown: sent again (resend_unknown)", now, State.UNKNOWN),
                ).rowcount
        if lost:
            log.warning("journal %s: %d messages were in flight; now unknown", self.path, lost)
        return {"in_flight_to_unknown": lost, "unknown_to_pending": resent}

    def next_chunk(self, size: int, *, after: int = 0) -> tuple[list[int], list[Message]]:
        """The next up to ``size`` sendable rows after line ``after``, as (lines, messages).

        Empty lists when there are none. Rows are in input order.
        """
        query = (
            "SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params "
            "FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line "
            f"WHERE m.line > ? AND (o.state IS NULL OR o.state IN {_SENDABLE_SQL}) "
            "ORDER BY m.line LIMIT ?"
        )
        with self._mutex:
            rows = self._db.execute(query, (after, size)).fetchall()
        loads = json.loads
        made = self.made_id
        lines = [r[0] for r in rows]
        messages = [
            Message(
                r[1], r[2], r[3], made(r[0]) if r[4] is None else r[4],
                None if r[5] is None else loads(r[5]),
            )
            for r in rows
        ]
        return lines, messages

    def mark_in_flight(self, lines: Sequence[int]) -> None:
        """Mark a chunk ``in_flight`` and commit: call before handing it to the client.

        ``lines`` must be consecutive lines one ``next_chunk()`` gave (ascending);
        the sender's lock guarantees no other process changed them since.
        """
        if lines:
            self.advance(lines, ())

    def advance(
        self,
        in_flight: Sequence[int],
        finished: Iterable[tuple[Sequence[int], Sequence[SendResult]]],
    ) -> dict[str, int]:
        """In one transaction: write ``finished`` results, mark ``in_flight`` lines.

        What a sender does before a request leaves: the results of requests that
        ended since the last commit, and the next lines to go out, one commit
        (one fsync with ``synchronous=FULL``) for both. Returns the result counts.
        """
        now = time.time()
        counts: dict[str, int] = {}
        with self._transaction() as db:
            for lines, results in finished:
                for state, n in self._write_results(db, lines, results, now).items():
                    counts[state] = counts.get(state, 0) + n
            if in_flight:
                self._mark(db, in_flight, now)
        return counts

    def _mark(self, db: sqlite3.Connection, lines: Sequence[int], now: float) -> None:
        first, last = lines[0], lines[-1]
        changed = db.execute(
            "UPDATE outcomes SET state = ?, updated_at = ? "
            f"WHERE line BETWEEN ? AND ? AND state IN {_SENDABLE_SQL}",
            (State.IN_FLIGHT, now, first, last),
        ).rowcount
        changed += db.execute(
            "INSERT INTO outcomes (line, state, updated_at) "
            "SELECT m.line, ?, ? FROM messages AS m WHERE m.line BETWEEN ? AND ? "
            "AND NOT EXISTS (SELECT 1 FROM outcomes AS o WHERE o.line = m.line)",
            (State.IN_FLIGHT, now, first, last),
        ).rowcount
        if changed != len(lines):  # pragma: no cover - only if the lock was bypassed
            raise JournalError(
                f"journal {self.path}: {changed} rows would go in flight, expected "
                f"{len(lines)}; is another process sending with it?"
            )

    def record_results(self, lines: Sequence[int], results: Sequence[SendResult]) -> dict[str, int]:
        """Write a chunk's results (the client's, in input order) in one transaction.

        ``ok`` -> accepted, ``unknown`` -> unknown, ``not-sent`` -> not_sent, any other
        code -> rejected; except that a result the client made up for a request the
        platform refused *as a whole* (``error-auth``, ``error-syntax`` as a single
        line: its ``error`` is a ``RequestRejected``) -> not_sent, code kept: the
        platform took none of it, so sending it again after a fix is safe.
        Returns how many rows went to each state.
        """
        with self._transaction() as db:
            return self._write_results(db, lines, results, time.time())

    def _write_results(
        self,
        db: sqlite3.Connection,
        lines: Sequence[int],
        results: Sequence[SendResult],
        now: float,
    ) -> dict[str, int]:
        if len(lines) != len(results):
            raise ValueError(f"{len(lines)} lines but {len(results)} results")
        counts: dict[str, int] = {}
        params = []
        earlier: list[tuple[int, str]] = []
        accepted = State.ACCEPTED
        plain = SendResult
        for line, r in zip(lines, results):
            if r is None:  # defensive: a result the client never filled
                state, code, provider_id = State.UNKNOWN, Code.UNKNOWN, None
            else:
                code = r[0]
                provider_id = r[2]
                state = accepted if code == "ok" else _state_of(code)
                whole_request = type(r) is not plain and isinstance(
                    getattr(r, "error", None), RequestRejected
                )
                if state == State.REJECTED and whole_request:
                    state = State.NOT_SENT
                elif (
                    code == Code.ERROR_ID_NOT_UNIQUE
                    and not whole_request
                    and r[1] == self.made_id(line)
                ):
                    # Its own reply line, for the id the journal made: accepted
                    # earlier if the journal had it in flight or unknown (checked below).
                    earlier.append((line, code))
                    continue
            counts[state] = counts.get(state, 0) + 1
            params.append((state, code, provider_id, now, line))
        db.executemany(_RESULT, params)
        for line, code in earlier:
            state = State.ACCEPTED_EARLIER
            if not db.execute(
                "UPDATE outcomes SET state = ?, code = ?, provider_id = NULL, reason = ?, "
                # (or already recorded so: the same results may be written twice)
                "updated_at = ? WHERE line = ? AND (code = ? OR state = ?) AND EXISTS "
                "(SELECT 1 FROM messages AS m WHERE m.line = outcomes.line "
                "AND m.client_id IS NULL)",
                (state, code, "the platform had this clientId: accepted by an earlier "
                 "send whose outcome was unknown", now, line, Code.UNKNOWN, state),
            ).rowcount:
                state = State.REJECTED
                db.execute(_RESULT, (state, code, None, now, line))
            counts[state] = counts.get(state, 0) + 1
        return counts

    def record_invalid(self, line: int, reason: str) -> None:
        """Mark one message ``invalid``: it cannot be encoded as given and is never sent."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outcomes (line, state, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (line) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason, updated_at = excluded.updated_at",
                (line, State.INVALID, reason, time.time()),
            )

    def settle_in_flight(
        self, lines: Sequence[int], state: str, *, code: Optional[str], reason: Optional[str]
    ) -> int:
        """Move a chunk's rows still ``in_flight`` to ``state``; returns how many moved.

        For a send that raised: back to ``pending`` when certainly nothing left (bad
        input found before sending), or ``unknown`` when the outcome is not known.
        """
        if not lines:
            return 0
        with self._transaction() as db:
            return db.execute(
                "UPDATE outcomes SET state = ?, code = ?, reason = ?, updated_at = ? "
                "WHERE line BETWEEN ? AND ? AND state = ?",
                (state, code, reason, time.time(), lines[0], lines[-1], State.IN_FLIGHT),
            ).rowcount

    # -- delivery statuses ---------------------------------------------------------------

    def _ensure_provider_index(self) -> None:
        # Built only when statuses are tracked: the send loop does not pay for it.
        if not self._provider_index:
            with self._mutex:
                self._db.execute(
                    "CREATE INDEX IF NOT EXISTS outcomes_provider ON outcomes(provider_id) "
                    "WHERE provider_id IS NOT NULL"
                )
            self._provider_index = True

    def open_provider_ids(self) -> list[str]:
        """Provider ids of accepted messages whose status is not final yet."""
        with self._mutex:
            rows = self._db.execute(
                # An accepted message without a provider id cannot be asked about.
                "SELECT provider_id FROM outcomes WHERE state = ? AND provider_id IS NOT "
                f"NULL AND {self._not_final} ORDER BY line",
                (State.ACCEPTED,),
            ).fetchall()
        return [r[0] for r in rows]

    def record_statuses(self, results: Iterable[StatusResult], *, source: str = "poll") -> int:
        """Record delivery statuses (from STATUS replies or pushes); returns rows changed.

        Only ``ok`` answers and the final ``error-provider-id-unknown`` are recorded;
        a status equal to the one held is not a change, and a final status is never
        replaced. Each change is appended to ``status_history`` with ``source``.
        """
        self._ensure_provider_index()
        now = time.time()
        params = []
        for r in results:
            code, provider_id, status, when, reason = r
            if provider_id is None:
                continue
            if code != Code.OK:
                if code not in FINAL_STATUS_CODES:
                    continue
                status, when, reason = code, None, None
            stamp = None if when is None else when.isoformat(sep=" ")
            params.append((status, stamp, reason or None, source, now, provider_id, status, stamp))
        if not params:
            return 0
        with self._transaction() as db:
            cursor = db.executemany(_STATUS + self._not_final, params)
            return max(cursor.rowcount, 0)

    def history(self, line: Optional[int] = None) -> list[tuple[Any, ...]]:
        """Status changes ``(line, provider_id, status, status_time, reason, source,
        recorded_at)`` in the order recorded, for one line or all."""
        query = (
            "SELECT line, provider_id, status, status_time, reason, source, recorded_at "
            "FROM status_history"
        )
        with self._mutex:
            if line is None:
                return self._db.execute(query + " ORDER BY id").fetchall()
            return self._db.execute(query + " WHERE line = ? ORDER BY id", (line,)).fetchall()

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Messages per state (every state present, zeros included)."""
        counts = dict.fromkeys(STATES, 0)
        with self._mutex:
            db = self._db
            total = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            seen = 0
            for state, n in db.execute("SELECT state, COUNT(*) FROM outcomes GROUP BY state"):
                counts[str(state)] = counts.get(str(state), 0) + int(n)
                seen += int(n)
        counts[State.PENDING] += total - seen
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts by state, rejections by code, delivery statuses, history size."""
        with self._mutex:
            db = self._db
            by_code = {
                str(code): int(n)
                for code, n in db.execute(
                    "SELECT code, COUNT(*) FROM outcomes WHERE state = ? GROUP BY code "
                    "ORDER BY COUNT(*) DESC, code",
                    (State.REJECTED,),
                )
            }
            statuses = {
                ("(none yet)" if status is None else str(status)): int(n)
                for status, n in db.execute(
                    "SELECT status, COUNT(*) FROM outcomes WHERE state = ? GROUP BY status "
                    "ORDER BY COUNT(*) DESC, status",
                    (State.ACCEPTED,),
                )
            }
            changes = int(db.execute("SELECT COUNT(*) FROM status_history").fetchone()[0])
            total = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        return {
            "messages": total,
            "loaded": self.loaded,
            "states": self.counts(),
            "rejected_by_code": by_code,
            "statuses": statuses,
            "status_changes": changes,
        }

    def rows(self, *, states: Optional[Iterable[str]] = None) -> Iterator[tuple[Any, ...]]:
        """Every row (``ROW_COLUMNS``), in input order, read in blocks of 10,000."""
        wanted = None if states is None else tuple(states)
        after = 0
        columns = ", ".join(ROW_COLUMNS)
        while True:
            query = f"SELECT {columns} FROM journal WHERE line > ?"
            args: list[Any] = [after]
            if wanted is not None:
                query += f" AND state IN ({', '.join('?' for _ in wanted)})"
                args.extend(wanted)
            query += " ORDER BY line LIMIT 10000"
            with self._mutex:
                block = self._db.execute(query, args).fetchall()
            if not block:
                return
            yield from block
            after = block[-1][0]

    def by_line(self, line: int) -> Optional[dict[str, Any]]:
        """One row as a dict (``ROW_COLUMNS``), or None."""
        with self._mutex:
            row = self._db.execute(
                f"SELECT {', '.join(ROW_COLUMNS)} FROM journal WHERE line = ?", (line,)
            ).fetchone()
        return None if row is None else dict(zip(ROW_COLUMNS, row))

    def cost_totals(self) -> dict[str, Any]:
        """Segments recorded in ``costs``: in all, by encoding and by state.

        ``{"messages": counted, "segments": n, "transliterated": messages,
        "by_encoding": {enc: {"messages", "segments"}}, "by_state": {state:
        {"messages", "segments"}}}``; ``by_state`` has every state. Accepted segments
        are what the platform bills. Messages without a ``costs`` row (a journal
        made before costs were recorded, or a text that cannot be encoded) are not
        counted: compare ``messages`` with the journal's.
        """
        by_state = {state: {"messages": 0, "segments": 0} for state in STATES}
        by_encoding: dict[str, dict[str, int]] = {}
        with self._mutex:
            db = self._db
            for state, n, segments in db.execute(
                f"SELECT COALESCE(o.state, '{State.PENDING}'), COUNT(*), SUM(c.segments) "
                "FROM costs AS c LEFT JOIN outcomes AS o ON o.line = c.line "
                "GROUP BY 1"
            ):
                by_state[str(state)] = {"messages": int(n), "segments": int(segments or 0)}
            for encoding, n, segments in db.execute(
                "SELECT encoding, COUNT(*), SUM(segments) FROM costs GROUP BY encoding "
                "ORDER BY encoding"
            ):
                by_encoding[str(encoding)] = {"messages": int(n), "segments": int(segments or 0)}
            changed = int(
                db.execute("SELECT COUNT(*) FROM costs WHERE transliterated").fetchone()[0]
            )
        return {
            "messages": sum(v["messages"] for v in by_encoding.values()),
            "segments": sum(v["segments"] for v in by_encoding.values()),
            "transliterated": changed,
            "by_encoding": by_encoding,
            "by_state": by_state,
        }

    def costs_between(self, first: int, last: int) -> dict[int, tuple[int, str, bool]]:
        """``{line: (segments, encoding, transliterated)}`` for lines ``first..last``."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT line, segments, encoding, transliterated FROM costs "
                "WHERE line BETWEEN ? AND ?",
                (first, last),
            ).fetchall()
        return {int(r[0]): (int(r[1]), str(r[2]), bool(r[3])) for r in rows}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` when sound)."""
        with self._mutex:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
