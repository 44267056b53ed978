"""A PostgreSQL journal's connection, transactions, schema and ``meta``.

Strategy: one connection per journal object (opened by ``_pg_url.connect``), used
under a mutex as the SQLite engine's is, so that the object can be shared by the
threads of one run (an ``AsyncClient``'s sender commits in a worker thread). Every
psycopg error that leaves ``_using`` or ``_transaction`` is a ``JournalError`` with
the password masked. Opening settles the schema under a transaction-level advisory
lock: the first sender makes the tables, an older journal is migrated, a newer or
foreign one is refused. The other parts (``_pg_load``, ``_pg_claims``,
``_pg_reading``) are subclasses of ``_PgConnection`` and use its connection.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from .._redact import Redactor, Redactors
from .._wire import Status, base62
from ._errors import JournalError
from ._pg_schema import (
    _MIGRATIONS,
    CREATE,
    HELD_SQL,
    LOCK_CLASS_SCHEMA,
    LOCK_KEY,
    SCHEMA_VERSION,
    TABLES,
)
from ._pg_url import _identity, _passwords, connect, masked_url, pg_error
from ._schema import (
    ID_LINE_LENGTH,
    _final_status_sql,
    _new_id_prefix,
    checked_count,
    checked_id_prefix,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("hpgfast.journal")

_P = TypeVar("_P", bound="_PgConnection")

#: The rows of one load or add transaction (and of one ``rows()`` block).
BATCH = 10_000
#: The lease a sender holds its claims for, in seconds, unless told otherwise: and,
#: when a run fits the lease to its client (``fit_lease``), what is added to the time
#: a request may take (the room for the commits between requests).
DEFAULT_LEASE = 60.0
#: Seconds to wait for the server to answer a connection.
DEFAULT_CONNECT_TIMEOUT = 10.0


class _PgConnection:
    """The connection, its transactions, the schema and ``meta`` of a PostgreSQL journal.

    ``PostgresJournal`` (``_pg``) documents the arguments.
    """

    def __init__(
        self,
        url: str,
        *,
        lease: Optional[float] = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        final_statuses: Iterable[str] = Status.FINAL,
        create: bool = True,
        lock: bool = False,
        synchronous: str = "FULL",
    ) -> None:
        self._conn: Optional[psycopg.Connection[Any]] = None
        url = os.fspath(url)
        self.path = masked_url(url)
        if lease is not None and not (
            isinstance(lease, (int, float)) and math.isfinite(lease) and lease > 0
        ):
            raise ValueError(f"lease must be a number of seconds > 0, got {lease!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, got {connect_timeout!r}")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        #: Seconds a claim lasts without renewal: the one given, else ``DEFAULT_LEASE``
        #: until a run fits it to its client's requests (``fit_lease``).
        self.lease = DEFAULT_LEASE if lease is None else float(lease)
        self._lease_given = lease is not None
        self._not_final = _final_status_sql(final_statuses)
        secrets_known = _passwords(url)
        self._redact = (
            Redactors([Redactor(p) for p in secrets_known]) if secrets_known else _identity
        )
        self._mutex = threading.RLock()
        # Held by the thread inside ``loading()``: the advisory lock belongs to the
        # connection, which this object's threads share.
        self._load_mutex = threading.RLock()
        self._load_depth = 0
        #: This sender's id in ``senders`` and ``outcomes.owner``: new at every open.
        self.sender_id = secrets.token_hex(8)
        self._lease_deadline = -math.inf
        #: Whether this object ever claimed (or marked) a row: then ``close`` releases.
        self._claimed = False
        self._id_prefix = ""
        try:
            import psycopg
        except ImportError:
            raise JournalError(
                "a postgresql:// journal needs psycopg 3: pip install 'hpgfast[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._conn = connect(psycopg, url, connect_timeout, self.path, self._redact)
        try:
            self._settle_schema(create)
            self._id_prefix = checked_id_prefix(self._meta("id_prefix"), self.path)
        except BaseException:
            self.close()
            raise
        log.debug("journal %s: opened as sender %s", self.path, self.sender_id)

    # -- the connection ------------------------------------------------------------------

    def _error(self, exc: BaseException, *, connecting: bool = False) -> JournalError:
        """The ``JournalError`` for a psycopg error, its text with the password masked."""
        return pg_error(exc, self.path, self._redact, self._psycopg, connecting=connecting)

    @contextlib.contextmanager
    def _using(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, under the mutex; a psycopg error becomes a ``JournalError``."""
        with self._mutex:
            conn = self._conn
            if conn is None:
                raise JournalError(f"journal {self.path} is closed")
            try:
                yield conn
            except self._psycopg.Error as exc:
                raise self._error(exc) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction, committed at the end (rolled back if anything raises)."""
        with self._using() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Give back what this sender claimed and did not send, and close (idempotent).

        Rows still ``in_flight`` (a run that could not record its results) keep
        this sender's claim: they become ``unknown`` once its lease lapses.
        """
        with self._mutex:
            conn = self._conn
            if conn is None:
                return
            try:
                # A reader (never claimed) writes nothing, so a read-only role may read.
                if self._claimed and not conn.broken:
                    with contextlib.suppress(JournalError):
                        self.release()  # type: ignore[attr-defined]
                        with self._transaction() as tx:
                            tx.execute(
                                "DELETE FROM senders WHERE id = %(me)s AND NOT EXISTS "
                                "(SELECT 1 FROM outcomes WHERE owner = %(me)s "
                                f"AND state IN {HELD_SQL})",
                                {"me": self.sender_id},
                            )
            finally:
                self._conn = None
                conn.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}>"

    # -- the schema ----------------------------------------------------------------------

    def _settle_schema(self, create: bool) -> None:
        """Make a new journal's tables, migrate an older one, refuse a newer or foreign one.

        Under a transaction-level advisory lock: senders that open a new database at
        once make its tables once.
        """
        with self._transaction() as conn:
            conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS_SCHEMA}, {LOCK_KEY})")
            present = {
                str(r[0])
                for r in conn.execute(
                    "SELECT c.relname FROM pg_class AS c WHERE c.relname = ANY(%s) "
                    "AND c.relnamespace = to_regnamespace(current_schema())::oid",
                    (list((*TABLES, "journal")),),
                )
            }
            if "meta" not in present:
                if present:
                    raise JournalError(
                        f"{self.path} is not an hpgfast journal: the database (schema "
                        f"{self._schema_name(conn)}) has tables of its own "
                        f"({', '.join(sorted(present))}) and no journal meta table. "
                        "Use an empty database, or another schema "
                        "(?options=-csearch_path%3Dname)."
                    )
                if not create:
                    raise JournalError(
                        f"no journal at {self.path}: the database has no journal's tables"
                    )
                for statement in CREATE:
                    conn.execute(statement)
                self._write_meta(
                    conn, {"schema_version": SCHEMA_VERSION, "id_prefix": _new_id_prefix()}
                )
                log.info("journal %s: made (schema %s)", self.path, SCHEMA_VERSION)
                return
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if row is None else str(row[0])
            while version in _MIGRATIONS:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                after = str(int(version) + 1)
                self._write_meta(conn, {"schema_version": after})
                log.info("journal %s: schema %s -> %s", self.path, version, after)
                version = after
            if version != SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema {version}, expected {SCHEMA_VERSION}"
                    + (": a newer hpgfast made it" if _newer(version) else "")
                )

    @staticmethod
    def _schema_name(conn: psycopg.Connection[Any]) -> str:
        row = conn.execute("SELECT current_schema()").fetchone()
        return str(row[0]) if row is not None else "?"

    @staticmethod
    def _write_meta(conn: psycopg.Connection[Any], values: Mapping[str, str]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                list(values.items()),
            )

    def _meta(self, key: str) -> Optional[str]:
        with self._using() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def meta(self) -> dict[str, str]:
        """Every meta entry: the input's fingerprint, settings, schema version."""
        with self._using() as conn:
            return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}

    @property
    def loaded(self) -> Optional[int]:
        """How many messages the input holds, once all are in the journal; else None."""
        return checked_count(self._meta("loaded"), "loaded", self.path)

    def made_id(self, line: int) -> str:
        """The clientId the journal sends for ``line`` when the input gives none."""
        return self._id_prefix + base62(line, ID_LINE_LENGTH)


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row is not None else 0


def _newer(version: Optional[str]) -> bool:
    try:
        return version is not None and int(version) > int(SCHEMA_VERSION)
    except ValueError:
        return False
