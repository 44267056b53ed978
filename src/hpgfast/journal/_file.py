"""The journal's file: opening it by one name, locking it for one sender, transactions.

Strategy: everything that decides whether this process may use the file, and how
its writes reach the disk, in one place, under the parts that read and write rows
(each a subclass of ``_JournalFile``). SQLite keeps the write-ahead log beside the
*name* it opened, so two names of one file would mean two logs and a journal that
looks older through one of them than it is: the file is opened by its real path, a
file with several hard links is refused, and the file records (in ``meta``, written
into the file itself, not its log) the name it was last opened by, so that another
name of the same file is refused while that name's log is there. A sender also marks
the file itself as open (``unclean``) until a clean close, so that a copy, or the
file whose log was deleted, knows its log is elsewhere or gone. Only one process
sends with a journal at a time (``flock`` on the file, so the lock follows the file,
not a name). A write that fails (disk full, I/O error) rolls back and becomes a
``JournalStorageError``: the journal stays as the last commit left it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Optional, TypeVar, Union

from .._wire import Status, base62
from ._errors import JournalError, JournalLocked, JournalStorageError, _is_storage_error
from ._schema import (
    _META_SCHEMA,
    _MIGRATIONS,
    ID_LINE_LENGTH,
    SCHEMA_VERSION,
    _create_tables,
    _final_status_sql,
    _migrate,
    _new_meta,
    _write_meta,
    checked_count,
    checked_id_prefix,
)

# The package's logger, for every part: records keep the name users filter on.
log = logging.getLogger("hpgfast.journal")

_J = TypeVar("_J", bound="_JournalFile")


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

#: The ``meta`` key that says, in the database file itself, that a sender has the
#: journal open (its value: the name it opened by). Set and checkpointed into the
#: file when a sender opens, before it can mark anything in flight; removed when
#: the journal is closed cleanly (its log checkpointed into the file and removed).
#: A file that holds it and has no log beside it lost the log of a run that did not
#: end cleanly: what that run had in flight is unknowable, so the journal is refused.
_UNCLEAN = "unclean"


def _file_meta(path: str) -> dict[str, str]:
    """The ``meta`` entries the database file itself holds (empty if none, or no file).

    Read from the file alone (``immutable``: no write-ahead log, no locks), as a
    process that has only this name would find it before SQLite reads its log.
    """
    try:
        if os.path.getsize(path) == 0:
            return {}
    except OSError:
        return {}
    uri = pathlib.Path(path).as_uri() + "?immutable=1"
    for attempt in range(5):
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error:
            return {}
        try:
            return {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}
        except sqlite3.DatabaseError:
            pass  # not a database (the open below says so), or a page read mid-write
        finally:
            db.close()
        time.sleep(0.01 * (attempt + 1))
    return {}


def _holds_this_journal(other: str, path: str, meta: dict[str, str]) -> bool:
    """Whether the file at ``other`` is this journal: the same file, or another copy of it."""
    try:
        if os.path.samefile(other, path):
            return True
    except OSError:
        return False
    prefix = meta.get("id_prefix")
    return prefix is not None and _file_meta(other).get("id_prefix") == prefix


#: A write-ahead log begins with a 32-byte header; a shorter one holds no commit.
_WAL_HEADER = 32


def _has_log(path: str) -> bool:
    """Whether a write-ahead log that can hold commits is beside ``path``.

    An emptied log (truncated to nothing) is lost as surely as a deleted one:
    SQLite reads the file alone then. The journal never truncates its own log
    while the file is marked open (its checkpoints keep the log's header).
    """
    try:
        return os.path.getsize(path + "-wal") >= _WAL_HEADER
    except OSError:
        return False


def _refuse_a_stale_name(path: str, meta: dict[str, str]) -> None:
    """Refuse ``path`` if, through it, the journal would not show every commit made.

    Each name of one file has its own write-ahead log (SQLite finds the log by
    name), so the commits of a process that used another name and did not close
    cleanly (killed, or running) are in that name's log, not visible here; a
    sender through this name would send again what that one sent. So:

    - the name the file was last opened by has its log beside it, and that name
      is this file (a bind mount, a file moved without its log): refused;
    - the file says a sender had it open (``unclean``) and the name that sender
      used has a log, or still holds this journal: this file is a copy taken (or
      a file left) behind that sender's back (a copy, a move with something new
      at the old name, a bind mount since unmounted): refused;
    - the file says a sender had it open and there is no log beside this name
      (or an emptied one): the log of a run that did not end cleanly was deleted:
      refused.

    A clean close checkpoints the log into the file, clears ``unclean`` and
    removes the log: then any name, or any copy, may open the file.
    """
    opened_as = meta.get(_OPENED_AS)
    unclean = _UNCLEAN in meta
    if opened_as is not None and opened_as != path:
        wal = opened_as + "-wal"
        if os.path.exists(wal):
            try:
                same = os.path.samefile(opened_as, path)
            except FileNotFoundError:
                same = True  # the file was moved away from that name and left its log there
            if same:
                raise JournalError(
                    f"journal {path} was last opened as {opened_as}, and that name's "
                    f"write-ahead log ({wal}) is there: the commits in it are visible "
                    f"only through {opened_as}, so this name would see the journal as it "
                    "was before them, and a send could repeat what was sent. Use "
                    f"--journal {opened_as} (the same file); a journal closed cleanly "
                    "opens by any name."
                )
            if unclean:
                # Another file, made while a send through that name was open (a copy,
                # or what a move or an unmount left): the commits of that send after
                # this file was made are in that name's log, not here.
                raise JournalError(
                    f"journal {path} is not the file a send through {opened_as} left "
                    "open (it did not end cleanly): it is a copy made while that send "
                    "ran, or the file was moved (or its mount removed) since, and that "
                    f"name's write-ahead log ({wal}) holds "
                    "commits this file lacks, so a send through it could repeat what was "
                    f"sent. Resume with --journal {opened_as}, the file and its log "
                    "together (mount it there again if it was a mount); a journal closed "
                    "cleanly opens by any name, and its copies too."
                )
            # Another file, and closed cleanly: a copy; the log there is the original's.
        elif unclean and _holds_this_journal(opened_as, path, meta):
            raise JournalError(
                f"journal {path} was last used by a send through {opened_as} that did "
                f"not end cleanly, and {opened_as} still holds that journal: this is a "
                "copy taken while that send was open, or another name of it, so it may "
                f"lack what that send committed. Use --journal {opened_as}; a journal "
                "closed cleanly opens by any name."
            )
    if unclean and not _has_log(path):
        last = opened_as or path
        raise JournalError(
            f"journal {path} was not closed cleanly (last opened as {last}) and its "
            f"write-ahead log ({path}-wal) is gone or empty: the commits of that run, "
            "what it had in flight among them, are lost, and a send could repeat what "
            "it sent. "
            f"Put the log back beside {last} (the journal and its -wal together) and "
            f"use --journal {last}."
        )


#: The first 16 bytes of every SQLite 3 database file.
_SQLITE_HEADER = b"SQLite format 3\x00"


def _refuse_non_journal(path: str) -> None:
    """Refuse ``path`` unless it already is a journal, reading it only.

    For the commands that read a journal (and the receiver, which records into one):
    SQLite would make a database of an empty file, and the schema would be written
    into any SQLite file, so the file is checked before it is opened for writing,
    and an empty or foreign file is left byte for byte as it was.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        raise JournalError(f"no journal at {path}") from None
    if not header:
        raise JournalError(f"{path} is not an hpgfast journal: the file is empty")
    if header != _SQLITE_HEADER:
        raise JournalError(f"{path} is not an hpgfast journal: not an SQLite database")
    uri = pathlib.Path(path).as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{path} is not an hpgfast journal: {exc}") from None
    try:
        # sqlite_master only: a foreign database gets no -wal or -shm for it.
        found = db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
            "('meta', 'messages', 'outcomes')"
        ).fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} is not an hpgfast journal: {exc}") from None
    finally:
        db.close()
    if found != 3:
        raise JournalError(
            f"{path} is not an hpgfast journal: an SQLite database without a journal's "
            "tables"
        )


class _JournalFile:
    """The open journal file: its name, its lock, its transactions and ``meta``.

    ``Journal`` (in ``hpgfast.journal``) documents the arguments.
    """

    #: Whether several senders drain this journal at once (a shared database): one
    #: sender holds a journal file (its lock), so none skips rows another holds.
    shared = False

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        synchronous: str = "FULL",
        lock: bool = False,
        final_statuses: Iterable[str] = Status.FINAL,
        create: bool = True,
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
        self._marked_unclean = False
        if lock:
            self._take_lock()
        try:
            # Before SQLite reads (or makes) a log beside this name.
            file_meta = _file_meta(self.path)
            opened_as = file_meta.get(_OPENED_AS)
            _refuse_a_stale_name(self.path, file_meta)
            if not create:
                # After that check: through a stale name the precise refusal says more.
                _refuse_non_journal(self.path)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except BaseException:
            self._drop_lock()
            raise
        try:
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            if opened_as != self.path:
                self._record_name(keep_log=_UNCLEAN in file_meta)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA temp_store=MEMORY")
            self._settle_schema()
            self._id_prefix = checked_id_prefix(self._meta("id_prefix"), self.path)
            if lock:
                self._mark_unclean()
        except sqlite3.DatabaseError as exc:
            self.close()
            if _is_storage_error(exc):
                raise JournalStorageError(self.path, str(exc)) from exc
            raise JournalError(f"{self.path} is not an hpgfast journal: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _settle_schema(self) -> None:
        """Make a new journal's tables, migrate an older one, refuse a newer one."""
        _create_tables(self._db)
        version = self._meta("schema_version")
        if version is None:
            with self._transaction() as db:
                _write_meta(db, _new_meta())
        elif version in _MIGRATIONS:
            # One path: each step brings the journal one version up, in one transaction.
            # Readers migrate too (the steps are small); a sender holds the lock.
            with self._transaction() as db:
                _migrate(db, version)
            log.info("journal %s: schema %s -> %s", self.path, version, SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema {version}, expected {SCHEMA_VERSION}"
            )

    def _record_name(self, *, keep_log: bool = False) -> None:
        """Write this name into the database file itself, before any commit goes to its log.

        Out of WAL mode (a rollback journal writes the file itself): so the name is
        in the file even if the process dies the next moment, and no log beside this
        name holds a commit the file does not know was made here. When another
        connection keeps the file in WAL mode, the name goes through the log and a
        full checkpoint copies it into the file before anything else is written.
        ``keep_log`` (the file is marked unclean, and its log is beside this name: a
        journal moved with its log) takes that second way too: leaving WAL mode would
        remove the log while the file still says a run's log belongs beside it, and a
        process killed at that moment would leave a journal refused as having lost it.
        """
        db = self._db
        mode = "wal"
        if not keep_log:
            try:
                mode = str(db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
        db.executescript(_META_SCHEMA)
        with self._transaction() as tx:
            _write_meta(tx, {_OPENED_AS: self.path})
        if mode == "wal":
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
            if busy or copied < frames:
                raise JournalError(
                    f"journal {self.path}: could not write its name into the database "
                    "file (another process keeps it busy); try again"
                )
        log.info("journal %s: recorded as opened by this name", self.path)

    def _mark_unclean(self) -> None:
        """Write into the database file itself that a sender has the journal open.

        Once a run, before anything can be marked in flight: committed, then
        checkpointed into the file, so that the file alone (a copy, or the file whose
        log was deleted) says a run may have commits it does not hold, and holds the
        journal's identity (its clientId prefix, schema, settings) besides. Killed
        between the commit and the checkpoint, nothing was in flight yet.
        """
        with self._transaction() as tx:
            _write_meta(tx, {_UNCLEAN: self.path})
        self._marked_unclean = True  # from here, a clean close clears it
        with self._mutex:
            busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        if busy or copied < frames:
            raise JournalError(
                f"journal {self.path}: could not write into the database file that a "
                "send is open (another process keeps it busy); try again"
            )

    def _clear_unclean(self) -> None:
        """At a clean close: the file will hold every commit, so it is no longer unclean.

        A sender clears what it set. A reader clears what a killed sender left only
        when no sender holds the lock (it takes the lock for that moment): its close
        is then the one that checkpoints the log into the file and removes it.
        """
        if not self._marked_unclean:
            try:
                if self._meta(_UNCLEAN) is None or not self._try_lock():
                    return
            except OSError:
                return  # cannot take the lock (a read-only file): leave the mark
        try:
            with self._transaction() as tx:
                tx.execute("DELETE FROM meta WHERE key = ?", (_UNCLEAN,))
        except (sqlite3.Error, JournalError):
            pass  # left unclean: the log stays beside the name, and says the rest

    def made_id(self, line: int) -> str:
        """The clientId the journal sends for ``line`` when the input gives none."""
        return self._id_prefix + base62(line, ID_LINE_LENGTH)

    # -- lifetime ------------------------------------------------------------------------

    def _take_lock(self) -> None:
        # The lock is taken on the database file itself, so it follows the file's
        # identity (device and inode), not a name: a second sender through a
        # symlink, a relative path or a bind mount meets the same lock. flock() and
        # SQLite's fcntl() locks do not interact on Linux and BSD. This descriptor
        # is closed only after SQLite's connection (closing any descriptor of a file
        # drops the process's fcntl locks on it).
        if not self._try_lock():
            raise JournalLocked(
                f"another process is sending with journal {self.path}; wait for it to end"
            )

    def _try_lock(self) -> bool:
        """Take the sender's lock if it is free (True), or where there is none."""
        if self._lock_file is not None:
            return True
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_file = fd
        return True

    def _drop_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    def close(self) -> None:
        """Close the database (idempotent); release the sender's lock."""
        db = getattr(self, "_db", None)
        if db is not None:
            with self._mutex:
                with contextlib.suppress(sqlite3.Error):
                    self._clear_unclean()
                db.close()
            self._db = None  # type: ignore[assignment]
        self._drop_lock()

    def __enter__(self: _J) -> _J:
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

    def meta(self) -> dict[str, str]:
        """Every meta entry: the input's fingerprint, settings, schema version."""
        with self._mutex:
            return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    @property
    def loaded(self) -> Optional[int]:
        """How many messages the input holds, once all are in the journal; else None."""
        return checked_count(self._meta("loaded"), "loaded", self.path)
