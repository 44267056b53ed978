"""The journal's file: opening it by one name, locking it for one sender, transactions.

Strategy: everything that decides whether this process may use the file, and how
its writes reach the disk, in one place, under the parts that read and write rows
(each a subclass of ``_JournalFile``). SQLite keeps the write-ahead log beside the
*name* it opened, so two names of one file would mean two logs and a journal that
looks older through one of them than it is: the file is opened by its real path, a
file with several hard links is refused, and the file records (in ``meta``, written
into the file itself, not its log) the name it was last opened by, so that another
name of the same file is refused while that name's log is there. Only one process
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


class _JournalFile:
    """The open journal file: its name, its lock, its transactions and ``meta``.

    ``Journal`` (in ``hpgfast.journal``) documents the arguments.
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
            self._settle_schema()
            self._id_prefix = self._meta("id_prefix") or ""
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
            _write_meta(tx, {_OPENED_AS: self.path})
        if mode == "wal":
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
            if busy or copied < frames:
                raise JournalError(
                    f"journal {self.path}: could not write its name into the database "
                    "file (another process keeps it busy); try again"
                )
        log.info("journal %s: recorded as opened by this name", self.path)

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
        value = self._meta("loaded")
        return None if value is None else int(value)
