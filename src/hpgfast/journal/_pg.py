"""The journal in PostgreSQL: one database shared by a fleet of senders.

Strategy: the SQLite ``Journal``'s interface and states, row for row (the reading
methods return the same shapes), on a server that several senders, on one machine
or many, use at once. What a single file gets from its ``flock`` a fleet gets from
claims (see ``_pg_schema`` for the tables):

- ``next_chunk`` claims the rows it returns for this sender (``FOR UPDATE SKIP
  LOCKED``: two senders never wait for each other, nor get the same row); a claimed
  row stays ``pending`` and is this sender's while its lease lasts;
- the lease is on the server's clock (``senders.lease_until``) and is renewed in the
  transaction of every claim and every ``advance``, which marks only this sender's
  claimed rows ``in_flight``, all or none (``JournalClaimLost`` otherwise), so that
  a message is on the wire from one sender at most;
- ``lease_deadline()`` is that lease in this process's ``time.monotonic()``, counted
  from before the transaction began: a slow commit shortens it, never lengthens it,
  and the sender lets no request start that could outlive it;
- a lapsed claim is no one's: a pending row becomes claimable again, an ``in_flight``
  one becomes ``unknown`` (``recover``, safe while others send), never ``pending``;
- results are written only over the sender's own open rows (``in_flight``, or
  ``unknown`` after a lapse), so a late result never replaces a final state, nor a
  row another sender has claimed since;
- writes are batched: COPY for loads (10,000 rows a transaction), one statement over
  arrays for a batch of results, pipelined statements for statuses; a commit waits
  for the server's WAL flush (``synchronous_commit = on``);
- a load is done under a session-level advisory lock (``loading()``): senders that
  start together load the input once, and a loader that dies releases the lock with
  its connection, the next one resuming after the last line committed.

One connection per journal object, used under a mutex as the SQLite engine's is; an
``AsyncClient``'s sender runs the commits in a worker thread. The URL's password
never leaves this module: ``path`` is the URL with it masked, and every error's text
is masked too (``PGPASSWORD`` and ``~/.pgpass`` work, as libpq reads them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union
from urllib.parse import unquote, urlsplit, urlunsplit

from .._records import Message, SendResult, StatusResult
from .._redact import Redactor, Redactors, mask_url
from .._wire import Code, Status, base62
from ._errors import (
    JournalAccessDenied,
    JournalClaimLost,
    JournalError,
    JournalMismatch,
    JournalStorageError,
    JournalUnavailable,
)
from ._load import _params_json, message_costs
from ._pg_schema import (
    _MIGRATIONS,
    CREATE,
    FINAL_SQL,
    HELD_SQL,
    LOCK_CLASS_LOAD,
    LOCK_CLASS_SCHEMA,
    LOCK_KEY,
    NOW,
    OPEN_SQL,
    SCHEMA_VERSION,
    SENDABLE_SQL,
    TABLES,
)
from ._reading import ROW_COLUMNS
from ._schema import (
    FINAL_STATUS_CODES,
    ID_LINE_LENGTH,
    STATES,
    State,
    _final_status_sql,
    _new_id_prefix,
    refused_whole,
    result_state,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("hpgfast.journal")

_P = TypeVar("_P", bound="PostgresJournal")

#: The rows of one load or add transaction (and of one ``rows()`` block).
BATCH = 10_000
#: The lease a sender holds its claims for, in seconds, unless told otherwise.
DEFAULT_LEASE = 60.0
#: Seconds to wait for the server to answer a connection.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: The recovery's advisory lock (two recoveries at once would lock rows in two orders).
_LOCK_CLASS_RECOVER = LOCK_CLASS_SCHEMA + 2

#: ``by_line`` and ``by_key``: the report's columns and the caller's key.
_ROW = ROW_COLUMNS if "key" in ROW_COLUMNS else (*ROW_COLUMNS, "key")
_MESSAGE_COLUMNS = "line, key, address, text, subject, client_id, params"

_QUERY_SECRET = re.compile(r"((?:^|&)[^=&]*password[^=&]*=)[^&]*", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    r"(\b[a-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


def masked_url(target: str) -> str:
    """``target`` (a ``postgresql://`` URL or a libpq keyword string), its password ``***``.

    The user, host, port, database and other parameters stay: they say which journal
    this is. Any parameter whose name holds ``password`` (``password``,
    ``sslpassword``) is masked too.
    """
    if "://" not in target:
        return _KEYWORD_SECRET.sub(r"\1***", target)
    try:
        parts = urlsplit(target)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hostport}"
        query = _QUERY_SECRET.sub(r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return mask_url(target)


_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@")


def _passwords(target: str) -> list[str]:
    """Every password ``target`` or the environment gives libpq (to mask in texts).

    Read the ways a parser may read it: Python's (up to the last ``@``), libpq's (up
    to the first), and for a URL no parser takes (libpq then echoes it whole), by
    pattern alone. A password holding a character parsers cut at (``@ : / ? # & =``)
    is masked in its pieces too, so that no piece of one a parser split shows.
    """
    found: list[str] = []
    if "://" in target:
        with contextlib.suppress(ValueError):
            parts = urlsplit(target)
            if parts.password:
                found.append(parts.password)
            for match in re.finditer(r"(?:^|&)[^=&]*password[^=&]*=([^&#]*)", parts.query, re.I):
                found.append(match.group(1))
        userinfo = _USERINFO.match(target)
        if userinfo is not None:
            for info in (userinfo.group(1), userinfo.group(1).partition("@")[0]):
                if ":" in info:
                    found.append(info.partition(":")[2])
    else:
        for match in _KEYWORD_SECRET.finditer(target):
            found.append(match.group(2).strip("'"))
    env = os.environ.get("PGPASSWORD")
    if env:
        found.append(env)
    found += [unquote(p) for p in found]
    found += [piece for p in found for piece in re.split(r"[@:/?#&=]", p) if len(piece) >= 3]
    return [p for p in dict.fromkeys(found) if p]


#: What libpq's connection errors say when the server refused the credentials or
#: the database (the server's FATAL text: no SQLSTATE comes with it).
_REFUSED_AT_CONNECT = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "pg_hba.conf",
    "not permitted to log in",
    "does not exist",  # the database, or the role
    "permission denied",
)


def _identity(text: str) -> str:
    return text


class PostgresJournal:
    """A journal in a PostgreSQL database, shared by every sender that opens it.

    The same interface and states as ``Journal`` (the SQLite file), and what a fleet
    needs besides: ``next_chunk`` claims the rows it returns for this sender, under a
    lease on the server's clock that every claim and ``advance`` renews;
    ``lease_deadline()`` says until when (in ``time.monotonic()``); ``release()``
    gives back what was claimed and not sent; ``recover()`` turns the lapsed
    in-flight claims of any sender into ``unknown``, safe while others send;
    ``loading()`` loads an input once however many senders start on it.

    The journal's tables are made in the connection's current schema (the first of
    its ``search_path``): one journal per database, or per schema with
    ``?options=-csearch_path%3Dname`` in the URL.

    Args:
        url: ``postgresql://user:password@host:port/database?...`` (or a libpq
            keyword string). The password may instead come from ``PGPASSWORD`` or
            ``~/.pgpass`` (libpq reads them); it is never shown: ``path`` is the URL
            with it masked.
        lease: seconds a sender holds its claims without renewing them (> 0). A
            sender lets a request start only while more than its deadline and
            connect timeout of the lease is left, so make it longer than those.
        connect_timeout: seconds to wait for the server to answer a connection
            (libpq counts whole seconds, 2 at least); the URL's own wins.
        final_statuses: the delivery statuses after which nothing changes.
        create: False for a command that only uses a journal a send made: a database
            without the journal's tables is refused before anything is written.
        lock: accepted for the SQLite journal's callers; every sender of a
            PostgreSQL journal holds what it claimed, so there is no file lock.
        synchronous: accepted for the SQLite journal's callers (``FULL``,
            ``NORMAL``); every commit waits for the server's WAL flush
            (``synchronous_commit = on``) either way.

    Raises:
        JournalUnavailable: the server cannot be reached (refused, unknown host,
            timed out).
        JournalAccessDenied: wrong credentials, no such database, or not enough
            rights.
        JournalError: psycopg is not installed (the ``postgres`` extra); the
            database holds tables of another kind, or a journal of a newer schema,
            or (``create=False``) no journal.
    """

    def __init__(
        self,
        url: str,
        *,
        lease: float = DEFAULT_LEASE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        final_statuses: Iterable[str] = Status.FINAL,
        create: bool = True,
        lock: bool = False,
        synchronous: str = "FULL",
    ) -> None:
        self._conn: Optional[psycopg.Connection[Any]] = None
        url = os.fspath(url)
        self.path = masked_url(url)
        if not (isinstance(lease, (int, float)) and math.isfinite(lease) and lease > 0):
            raise ValueError(f"lease must be a number of seconds > 0, got {lease!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0, got {connect_timeout!r}")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.lease = float(lease)
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
        self._connect(url, connect_timeout)
        try:
            self._settle_schema(create)
            self._id_prefix = self._meta("id_prefix") or ""
        except BaseException:
            self.close()
            raise
        log.debug("journal %s: opened as sender %s", self.path, self.sender_id)

    # -- the connection ------------------------------------------------------------------

    def _connect(self, url: str, connect_timeout: float) -> None:
        psycopg = self._psycopg
        try:
            given = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            reason = self._redact(" ".join(str(exc).split()))
            raise JournalError(
                f"{self.path} is not a PostgreSQL URL libpq takes: {reason}"
            ) from None
        try:
            options: dict[str, Any] = {"autocommit": True}
            if "connect_timeout" not in given:
                options["connect_timeout"] = max(2, math.ceil(connect_timeout))
            if "application_name" not in given:
                options["application_name"] = "hpgfast"
            self._conn = psycopg.connect(url, **options)
            # Every commit returns once the server's WAL is on its disk: a mark the
            # sender was told is committed survives the server's crash.
            self._conn.execute("SET synchronous_commit = on")
        except psycopg.Error as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            raise self._error(exc, connecting=True) from None

    def _error(self, exc: BaseException, *, connecting: bool = False) -> JournalError:
        """The ``JournalError`` for a psycopg error, its text with the password masked."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        reason = self._redact(text)
        state = str(getattr(exc, "sqlstate", None) or "")
        lowered = reason.lower()
        # At connection time libpq gives the server's refusal as text (no SQLSTATE).
        if (
            state.startswith("28")
            or state in ("42501", "3D000")
            or (connecting and any(words in lowered for words in _REFUSED_AT_CONNECT))
        ):
            return JournalAccessDenied(self.path, reason)
        if state.startswith(("53", "58")):
            return JournalStorageError(self.path, reason)
        psycopg = self._psycopg
        if (
            connecting
            or isinstance(exc, psycopg.OperationalError)
            or state.startswith(("08", "57P"))
        ):
            return JournalUnavailable(self.path, reason)
        return JournalError(f"journal {self.path}: {reason}")

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
                        self.release()
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
        return f"<PostgresJournal {self.path!r}>"

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
        value = self._meta("loaded")
        return None if value is None else int(value)

    def made_id(self, line: int) -> str:
        """The clientId the journal sends for ``line`` when the input gives none."""
        return self._id_prefix + base62(line, ID_LINE_LENGTH)

    # -- loading -------------------------------------------------------------------------

    @contextlib.contextmanager
    def loading(self: _P) -> Iterator[_P]:
        """Hold the journal's load lock: one sender loads an input, the others wait.

        Every sender that starts on an input should check and load inside it::

            with journal.loading():
                if journal.loaded is None:
                    journal.load(rows)            # or add(items)
                    journal.bind(fingerprint)
                    journal.finish_load(total)

        The first to take the lock loads; the others wait for it, then find the
        input loaded. The lock is PostgreSQL's (a session-level advisory lock on
        this journal's schema), so it is released with the connection if the loader
        dies: the next sender resumes the load after the last line committed
        (``load`` skips the lines the journal has). ``load``, ``add``, ``bind``,
        ``finish_load`` and ``restart_load`` take it themselves too (it is
        re-entrant), so two loads never interleave. A connection pooler in
        transaction mode (PgBouncer's) does not keep session locks: connect to the
        server, or to a pooler in session mode.
        """
        with self._load_mutex:
            if self._load_depth == 0:
                self._take_load_lock()
            self._load_depth += 1
            try:
                yield self
            finally:
                self._load_depth -= 1
                if self._load_depth == 0:
                    with contextlib.suppress(JournalError):
                        with self._using() as conn:
                            if not conn.broken:
                                conn.execute(
                                    f"SELECT pg_advisory_unlock({LOCK_CLASS_LOAD}, {LOCK_KEY})"
                                )

    def _take_load_lock(self) -> None:
        # Asked again and again rather than waited for in one statement: the
        # connection stays free for this object's other threads meanwhile, and an
        # interrupt is seen at once.
        pause = 0.05
        told = False
        while True:
            with self._using() as conn:
                row = conn.execute(
                    f"SELECT pg_try_advisory_lock({LOCK_CLASS_LOAD}, {LOCK_KEY})"
                ).fetchone()
            if row is not None and row[0]:
                return
            if not told:
                log.info("journal %s: another sender is loading it; waiting", self.path)
                told = True
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def bind(self, fingerprint: Mapping[str, str]) -> bool:
        """Tie the journal to an input and its settings; returns True when it is new.

        A journal already tied to a different fingerprint is refused, unless none of
        its messages ever went out (never marked): then it is emptied and rebound.

        Raises:
            JournalMismatch: the fingerprint differs and messages were sent.
        """
        wanted = {f"input:{k}": str(v) for k, v in fingerprint.items()}
        with self.loading(), self._transaction() as conn:
            old = {
                str(k): str(v)
                for k, v in conn.execute("SELECT key, value FROM meta WHERE key LIKE 'input:%%'")
            }
            if old == wanted:
                return False
            if old:
                if self._anything_sent(conn):
                    keys = set(old) | set(wanted)
                    raise JournalMismatch(
                        self.path,
                        {
                            k.partition(":")[2]: (old.get(k), wanted.get(k, ""))
                            for k in keys
                            if old.get(k) != wanted.get(k)
                        },
                    )
                log.info("journal %s: input changed before anything was sent; rebinding", self.path)
                self._forget_input(conn)
            self._write_meta(conn, wanted)
        return True

    @staticmethod
    def _anything_sent(conn: psycopg.Connection[Any]) -> bool:
        """Whether any message was ever marked (or found invalid): then the input is kept."""
        return (
            conn.execute("SELECT 1 FROM outcomes WHERE updated_at IS NOT NULL LIMIT 1").fetchone()
            is not None
        )

    @staticmethod
    def _forget_input(conn: psycopg.Connection[Any]) -> None:
        """Empty the loaded input and its fingerprint (only while nothing was sent)."""
        conn.execute("DELETE FROM costs")
        conn.execute("DELETE FROM outcomes")
        conn.execute("DELETE FROM messages")
        conn.execute("DELETE FROM meta WHERE key LIKE 'input:%%' OR key = 'loaded'")

    @property
    def last_line(self) -> int:
        """The highest line in the journal (0 when empty): loading resumes after it."""
        with self._using() as conn:
            row = conn.execute("SELECT MAX(line) FROM messages").fetchone()
        return int(row[0] or 0) if row is not None else 0

    def load(
        self,
        rows: Iterable[tuple[int, Message]],
        *,
        batch: int = BATCH,
        transliterate: bool = False,
    ) -> int:
        """Insert input messages (``pending``), ``batch`` per transaction; returns the count.

        ``rows`` are ``(line, message)`` with increasing lines; lines already in the
        journal are skipped, so a load cut short (by a crash, on any sender) simply
        resumes. Call ``finish_load(total)`` once the input is exhausted. Each
        message's segments go into ``costs`` in the same transaction. Done under the
        load lock (``loading()``), with COPY.
        """
        count = 0
        with self.loading():
            start = self.last_line
            buffer: list[tuple[Any, ...]] = []
            batch_messages: list[tuple[int, Message]] = []
            for line, message in rows:
                if line <= start:
                    continue
                address, text, subject, client_id, params = message
                buffer.append(
                    (line, None, address, text, subject, client_id, _params_json(params))
                )
                batch_messages.append((line, message))
                if len(buffer) >= batch:
                    self._copy_in(buffer, batch_messages, transliterate)
                    count += len(buffer)
                    buffer.clear()
                    batch_messages.clear()
            if buffer:
                self._copy_in(buffer, batch_messages, transliterate)
                count += len(buffer)
        return count

    def _copy_in(
        self,
        rows: Sequence[tuple[Any, ...]],
        messages: Sequence[tuple[int, Message]],
        transliterate: bool,
    ) -> None:
        """One transaction: the messages, their pending outcome rows, their costs."""
        costs = message_costs(messages, transliterate=transliterate)
        with self._transaction() as conn:
            self._copy_rows(conn, rows, costs)

    @staticmethod
    def _copy_rows(
        conn: psycopg.Connection[Any],
        rows: Sequence[tuple[Any, ...]],
        costs: Sequence[tuple[int, int, str, int]],
    ) -> None:
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY messages ({_MESSAGE_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                "INSERT INTO outcomes (line) SELECT line FROM messages WHERE line >= %s",
                (rows[0][0],),
            )
            if costs:
                with cursor.copy(
                    "COPY costs (line, segments, encoding, transliterated) FROM STDIN"
                ) as copy:
                    for cost in costs:
                        copy.write_row(cost)

    def add(
        self,
        items: Iterable[Union[Message, tuple[str, Message]]],
        *,
        transliterate: bool = False,
    ) -> int:
        """Append messages after the last line; returns how many were added.

        ``items`` are ``Message``s or ``(key, Message)`` pairs, ``key`` a str of the
        caller's (an order id), unique in the journal: an item whose key the journal
        has already (or that came earlier in ``items``) is skipped, so adding the
        same items again adds nothing. One transaction per 10,000 items, under the
        load lock (``loading()``).
        """
        added = 0
        with self.loading():
            line = self.last_line
            seen: set[str] = set()
            pending: list[tuple[Optional[str], Message]] = []

            def flush() -> int:
                nonlocal line
                keys = [k for k, _ in pending if k is not None]
                with self._transaction() as conn:
                    known = {
                        str(r[0])
                        for r in conn.execute(
                            "SELECT key FROM messages WHERE key = ANY(%s)", (keys,)
                        )
                    } if keys else set()
                    rows: list[tuple[Any, ...]] = []
                    numbered: list[tuple[int, Message]] = []
                    for key, message in pending:
                        if key is not None:
                            if key in known or key in seen:
                                continue
                            seen.add(key)
                        line += 1
                        address, text, subject, client_id, params = message
                        rows.append(
                            (line, key, address, text, subject, client_id, _params_json(params))
                        )
                        numbered.append((line, message))
                    if rows:
                        costs = message_costs(numbered, transliterate=transliterate)
                        self._copy_rows(conn, rows, costs)
                pending.clear()
                return len(rows)

            for item in items:
                if isinstance(item, Message):
                    pending.append((None, item))
                else:
                    key, message = item
                    if not isinstance(key, str) or not isinstance(message, Message):
                        raise TypeError(
                            "add() takes Message or (key: str, Message) items, got "
                            f"({type(key).__name__}, {type(message).__name__})"
                        )
                    pending.append((key, message))
                if len(pending) >= BATCH:
                    added += flush()
            if pending:
                added += flush()
        return added

    def restart_load(self) -> None:
        """Empty a load that was cut short, so the input is read again from its start.

        Only while nothing was sent.
        """
        with self.loading(), self._transaction() as conn:
            if not self._anything_sent(conn):
                self._forget_input(conn)

    def finish_load(self, total: int) -> None:
        """Record that the whole input (``total`` messages) is in the journal."""
        with self.loading(), self._transaction() as conn:
            self._write_meta(conn, {"loaded": str(total)})

    # -- claims and the lease ------------------------------------------------------------

    def lease_deadline(self) -> float:
        """The ``time.monotonic()`` moment until which this sender holds its claims.

        Set by every claim (``next_chunk``) and ``advance`` once committed: the
        moment before its transaction began, plus the lease the server gave it
        (``lease_until - now()`` on the server's clock). ``-inf`` before the first.
        """
        return self._lease_deadline

    def _renew(self, conn: psycopg.Connection[Any]) -> float:
        """This sender's lease from now on the server's clock; returns its seconds."""
        self._claimed = True
        row = conn.execute(
            "INSERT INTO senders (id, lease_until, host, pid) "
            "VALUES (%(me)s, now() + %(lease)s * interval '1 second', %(host)s, %(pid)s) "
            "ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until "
            "RETURNING EXTRACT(EPOCH FROM lease_until - now())::float8",
            {
                "me": self.sender_id,
                "lease": self.lease,
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
        ).fetchone()
        return float(row[0]) if row is not None else 0.0

    def next_chunk(self, size: int, *, after: int = 0) -> tuple[list[int], list[Message]]:
        """Claim the next up to ``size`` sendable rows after line ``after`` for this sender.

        Sendable: ``pending`` or ``not_sent``, and unclaimed, this sender's own, or
        claimed under a lease that lapsed. Other senders' rows (and rows being
        claimed right now) are skipped, not waited for, so the lines need not be
        consecutive. The rows stay ``pending``; the claim renews this sender's
        lease. Returns ``(lines, messages)`` in input order, empty when none is left.
        """
        if size <= 0:
            return [], []
        with self._mutex:
            started = time.monotonic()
            with self._transaction() as conn:
                left = self._renew(conn)
                # The senders whose lease lapsed, locked until this commit (they
                # cannot renew meanwhile): their pending claims are for the taking.
                # Named here rather than looked up in the claim's statement: a row
                # claimed by another sender since this statement's snapshot is checked
                # again as it is locked, and only against its own columns and these.
                lapsed = [
                    str(r[0])
                    for r in conn.execute(
                        "SELECT id FROM senders WHERE lease_until < now() AND id <> %s "
                        "ORDER BY id FOR SHARE",
                        (self.sender_id,),
                    )
                ]
                rows = conn.execute(
                    "WITH picked AS ("
                    "SELECT o.line FROM outcomes AS o "
                    f"WHERE o.line > %(after)s AND o.state IN {SENDABLE_SQL} "
                    "AND (o.owner IS NULL OR o.owner = %(me)s OR o.owner = ANY(%(lapsed)s)) "
                    "ORDER BY o.line LIMIT %(size)s FOR UPDATE OF o SKIP LOCKED"
                    "), claimed AS ("
                    "UPDATE outcomes AS o SET owner = %(me)s FROM picked "
                    "WHERE o.line = picked.line RETURNING o.line) "
                    "SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params "
                    "FROM messages AS m JOIN claimed AS c ON c.line = m.line ORDER BY m.line",
                    {"after": after, "me": self.sender_id, "size": size, "lapsed": lapsed},
                ).fetchall()
            self._lease_deadline = started + left
        loads = json.loads
        made = self.made_id
        lines = [int(r[0]) for r in rows]
        messages = [
            Message(
                r[1], r[2], r[3], made(int(r[0])) if r[4] is None else r[4],
                None if r[5] is None else loads(r[5]),
            )
            for r in rows
        ]
        return lines, messages

    def release(self) -> int:
        """Give back this sender's claimed rows not sent (still ``pending`` or
        ``not_sent``), for other senders; returns how many. Call at the end of a run.
        """
        with self._transaction() as conn:
            return conn.execute(
                f"UPDATE outcomes SET owner = NULL WHERE state IN {SENDABLE_SQL} "
                "AND owner = %s",
                (self.sender_id,),
            ).rowcount

    def recover(
        self, *, resend_unknown: bool = False, resend_unknown_without_ids: bool = False
    ) -> dict[str, int]:
        """Settle what lapsed claims left: call before sending; safe while others send.

        Rows ``in_flight`` under a lease that lapsed (any sender's: it died, or
        stalled past its lease) become ``unknown``, never ``pending``; those of live
        senders are left alone. With ``resend_unknown`` every ``unknown`` row goes
        back to ``pending`` (unclaimed): it is sent again with the clientId it went
        out with. ``resend_unknown_without_ids`` is the same here: a PostgreSQL
        journal recorded every clientId from its start. Returns
        ``{"in_flight_to_unknown": n, "unknown_to_pending": m}``.
        """
        resend = resend_unknown or resend_unknown_without_ids
        with self._transaction() as conn:
            conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS_RECOVER}, {LOCK_KEY})")
            # Locked until this commit: a lapsed sender cannot renew (and go on
            # marking) while its rows in flight become unknown.
            lapsed = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM senders WHERE lease_until < now() ORDER BY id FOR UPDATE"
                )
            ]
            lost = 0
            if lapsed:
                lost = conn.execute(
                    f"UPDATE outcomes SET state = '{State.UNKNOWN}', code = %s, reason = %s, "
                    f"updated_at = {NOW} WHERE state = '{State.IN_FLIGHT}' AND owner = ANY(%s)",
                    (Code.UNKNOWN, "in flight when its sender's lease lapsed", lapsed),
                ).rowcount
                # Lapsed senders that hold no row any more go, so that the table
                # stays small (one comes back by renewing). One that holds pending
                # rows stays: a lapsed sender's claims are found through its row
                # (see ``next_chunk``). Locked: none of them claims meanwhile.
                conn.execute(
                    "DELETE FROM senders AS s WHERE s.id = ANY(%s) AND NOT EXISTS "
                    "(SELECT 1 FROM outcomes AS o WHERE o.owner = s.id "
                    f"AND o.state IN {HELD_SQL})",
                    (lapsed,),
                )
            resent = 0
            if resend:
                resent = conn.execute(
                    f"UPDATE outcomes SET state = '{State.PENDING}', owner = NULL, "
                    f"reason = %s, updated_at = {NOW} WHERE state = '{State.UNKNOWN}'",
                    ("unknown: sent again (resend_unknown)",),
                ).rowcount
        if lost:
            log.warning(
                "journal %s: %d messages were in flight under a lapsed lease; now unknown",
                self.path, lost,
            )
        return {"in_flight_to_unknown": lost, "unknown_to_pending": resent}

    # -- the send loop's writes ----------------------------------------------------------

    def mark_in_flight(self, lines: Sequence[int]) -> None:
        """Mark claimed lines ``in_flight`` and commit: call before handing them over.

        Raises:
            JournalClaimLost: some of ``lines`` are not this sender's any more.
        """
        if lines:
            self.advance(lines, ())

    def advance(
        self,
        in_flight: Sequence[int],
        finished: Iterable[tuple[Sequence[int], Sequence[SendResult]]],
    ) -> dict[str, int]:
        """In one transaction: renew the lease, write ``finished``, mark ``in_flight``.

        The results of requests that ended since the last commit are written (only
        over this sender's rows still open: ``in_flight``, or ``unknown`` after a
        lapse), the next lines to go out are marked ``in_flight`` (all, or none if
        any is no longer this sender's claim), the lease of every row this sender
        holds is renewed, and the commit waits for the server's WAL flush. A few
        statements whatever the number of lines. Returns the result counts.

        Raises:
            JournalClaimLost: some of ``in_flight`` are not this sender's claimed
                sendable rows any more; none was marked (the results and the lease
                are committed all the same).
        """
        lines = list(dict.fromkeys(in_flight))
        counts: dict[str, int] = {}
        lost: list[int] = []
        with self._mutex:
            started = time.monotonic()
            with self._transaction() as conn:
                left = self._renew(conn)
                done_lines: list[int] = []
                done_results: list[SendResult] = []
                for chunk_lines, results in finished:
                    if len(chunk_lines) != len(results):
                        raise ValueError(f"{len(chunk_lines)} lines but {len(results)} results")
                    done_lines.extend(chunk_lines)
                    done_results.extend(results)
                if done_lines:
                    counts = self._write_results(conn, done_lines, done_results)
                if lines:
                    lost = self._mark(conn, lines)
            self._lease_deadline = started + left
        if lost:
            raise JournalClaimLost(self.path, lost)
        return counts

    def _mark(self, conn: psycopg.Connection[Any], lines: list[int]) -> list[int]:
        """Mark ``lines`` ``in_flight`` if every one is this sender's; else the lost ones."""
        marked = conn.execute(
            "WITH mine AS (SELECT line FROM outcomes WHERE line = ANY(%(lines)s) "
            f"AND owner = %(me)s AND state IN {SENDABLE_SQL} FOR UPDATE), "
            "whole AS (SELECT count(*) = %(n)s AS ok FROM mine) "
            f"UPDATE outcomes AS o SET state = '{State.IN_FLIGHT}', updated_at = {NOW} "
            "FROM mine, whole WHERE o.line = mine.line AND whole.ok",
            {"lines": lines, "me": self.sender_id, "n": len(lines)},
        ).rowcount
        if marked == len(lines):
            return []
        mine = {
            int(r[0])
            for r in conn.execute(
                "SELECT line FROM outcomes WHERE line = ANY(%s) AND owner = %s "
                f"AND state IN {SENDABLE_SQL}",
                (lines, self.sender_id),
            )
        }
        return sorted(set(lines) - mine)

    def record_results(self, lines: Sequence[int], results: Sequence[SendResult]) -> dict[str, int]:
        """Write a chunk's results (the client's, in input order) in one transaction.

        The same rule as the SQLite journal's (``result_state``): ``ok`` ->
        accepted, ``unknown`` -> unknown, ``not-sent`` and the account stops ->
        not_sent, a request refused whole -> not_sent, any other code -> rejected;
        ``error-id-not-unique`` for the id the journal made, after an unknown
        outcome -> accepted_earlier. Only this sender's open rows (``in_flight``,
        or ``unknown`` after a lapse) are written: a final state is never replaced.
        Returns how many results went to each state.
        """
        if len(lines) != len(results):
            raise ValueError(f"{len(lines)} lines but {len(results)} results")
        with self._transaction() as conn:
            return self._write_results(conn, lines, results)

    def _write_results(
        self,
        conn: psycopg.Connection[Any],
        lines: Sequence[int],
        results: Sequence[SendResult],
    ) -> dict[str, int]:
        """One UPDATE over arrays for the results, one more for ``error-id-not-unique``."""
        counts: dict[str, int] = {}
        # The last result of a line wins, as when they are written one by one.
        by_line: dict[int, tuple[str, Optional[str], Optional[str]]] = {}
        earlier: dict[int, str] = {}
        for line, r in zip(lines, results):
            by_line.pop(line, None)
            earlier.pop(line, None)
            if r is None:  # defensive: a result the client never filled
                by_line[line] = (State.UNKNOWN, Code.UNKNOWN, None)
                continue
            code = r[0]
            state = State.ACCEPTED if code == "ok" else result_state(r)
            if (
                code == Code.ERROR_ID_NOT_UNIQUE
                and state == State.REJECTED
                and not refused_whole(r)
                and r[1] == self.made_id(line)
            ):
                # Its own reply line, for the id the journal made: accepted earlier
                # if the journal had it unknown before this send (checked below).
                earlier[line] = code
                continue
            by_line[line] = (state, code, r[2])
        for state, _, _ in by_line.values():
            counts[state] = counts.get(state, 0) + 1
        if by_line:
            written = conn.execute(
                "UPDATE outcomes AS o SET state = v.state, code = v.code, "
                f"provider_id = v.provider_id, updated_at = {NOW} "
                "FROM unnest(%(lines)s::bigint[], %(states)s::text[], %(codes)s::text[], "
                "%(ids)s::text[]) AS v(line, state, code, provider_id) "
                f"WHERE o.line = v.line AND o.owner = %(me)s AND o.state IN {OPEN_SQL}",
                {
                    "lines": list(by_line),
                    "states": [v[0] for v in by_line.values()],
                    "codes": [v[1] for v in by_line.values()],
                    "ids": [v[2] for v in by_line.values()],
                    "me": self.sender_id,
                },
            ).rowcount
            if written < len(by_line):
                log.info(
                    "journal %s: %d results not written: their rows are final, or no "
                    "longer this sender's", self.path, len(by_line) - written,
                )
        if earlier:
            rows = conn.execute(
                "UPDATE outcomes AS o SET "
                f"state = CASE WHEN o.code = %(unknown)s AND m.client_id IS NULL "
                f"THEN '{State.ACCEPTED_EARLIER}' ELSE '{State.REJECTED}' END, "
                "reason = CASE WHEN o.code = %(unknown)s AND m.client_id IS NULL "
                "THEN %(reason)s ELSE o.reason END, "
                f"code = v.code, provider_id = NULL, updated_at = {NOW} "
                "FROM unnest(%(lines)s::bigint[], %(codes)s::text[]) AS v(line, code), "
                "messages AS m "
                "WHERE o.line = v.line AND m.line = o.line AND o.owner = %(me)s "
                f"AND o.state IN {OPEN_SQL} RETURNING o.line, o.state",
                {
                    "unknown": Code.UNKNOWN,
                    "reason": "the platform had this clientId: accepted by an earlier "
                    "send whose outcome was unknown",
                    "lines": list(earlier),
                    "codes": list(earlier.values()),
                    "me": self.sender_id,
                },
            ).fetchall()
            states = {int(r[0]): str(r[1]) for r in rows}
            left = [line for line in earlier if line not in states]
            if left:
                # Written before (the same results may be written twice): as recorded.
                for line, state in conn.execute(
                    "SELECT line, state FROM outcomes WHERE line = ANY(%s)", (left,)
                ):
                    states[int(line)] = (
                        State.ACCEPTED_EARLIER
                        if state == State.ACCEPTED_EARLIER
                        else State.REJECTED
                    )
            for line in earlier:
                state = states.get(line, State.REJECTED)
                counts[state] = counts.get(state, 0) + 1
        return counts

    def record_invalid(self, line: int, reason: str) -> None:
        """Mark one message ``invalid``: it cannot be encoded as given and is never sent."""
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE outcomes SET state = '{State.INVALID}', reason = %s, "
                f"updated_at = {NOW} WHERE line = %s AND state NOT IN {FINAL_SQL}",
                (reason, line),
            )

    def settle_in_flight(
        self, lines: Sequence[int], state: str, *, code: Optional[str], reason: Optional[str]
    ) -> int:
        """Move this sender's rows among ``lines`` still ``in_flight`` to ``state``.

        For a send that raised: back to ``pending`` (still claimed by this sender)
        when certainly nothing left, or ``unknown`` when the outcome is not known.
        Returns how many moved.
        """
        if not lines:
            return 0
        if state not in STATES:
            raise ValueError(f"not a state: {state!r}")
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE outcomes SET state = %s, code = %s, reason = %s, "
                f"updated_at = {NOW} WHERE line = ANY(%s) AND owner = %s "
                f"AND state = '{State.IN_FLIGHT}'",
                (state, code, reason, list(lines), self.sender_id),
            ).rowcount

    # -- statuses ------------------------------------------------------------------------

    def open_provider_ids(self) -> list[str]:
        """Provider ids of accepted messages whose status is not final yet."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT provider_id FROM outcomes WHERE state = %s AND provider_id IS NOT "
                f"NULL AND {self._not_final} ORDER BY line",
                (State.ACCEPTED,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def record_statuses(self, results: Iterable[StatusResult], *, source: str = "poll") -> int:
        """Record delivery statuses (from STATUS replies or pushes); returns rows changed.

        Only ``ok`` answers and the final ``error-provider-id-unknown`` are recorded;
        a status equal to the one held is not a change, and a final status is never
        replaced. Each change is appended to ``status_history`` with ``source``.
        The statements go in one pipeline: one round trip, in order.
        """
        params = []
        for r in results:
            code, provider_id, status, when, reason = r[:5]
            if provider_id is None:
                continue
            if code != Code.OK:
                if code not in FINAL_STATUS_CODES:
                    continue
                status, when, reason = code, None, None
            stamp = None if when is None else when.isoformat(sep=" ")
            params.append((status, stamp, reason or None, source, provider_id, status, stamp))
        if not params:
            return 0
        with self._transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE outcomes SET status = %s, status_time = %s, reason = %s, "
                f"status_source = %s, updated_at = {NOW} WHERE provider_id = %s "
                f"AND state = '{State.ACCEPTED}' AND (status IS DISTINCT FROM %s "
                "OR status_time IS DISTINCT FROM %s) AND " + self._not_final,
                params,
            )
            return max(cursor.rowcount, 0)

    def history(self, line: Optional[int] = None) -> list[tuple[Any, ...]]:
        """Status changes ``(line, provider_id, status, status_time, reason, source,
        recorded_at)`` in the order recorded, for one line or all."""
        query = (
            "SELECT line, provider_id, status, status_time, reason, source, recorded_at "
            "FROM status_history"
        )
        with self._using() as conn:
            if line is None:
                rows = conn.execute(query + " ORDER BY id").fetchall()
            else:
                rows = conn.execute(query + " WHERE line = %s ORDER BY id", (line,)).fetchall()
        return [(int(r[0]), *r[1:]) for r in rows]

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Messages per state (every state present, zeros included)."""
        counts = dict.fromkeys(STATES, 0)
        with self._using() as conn:
            for state, n in conn.execute("SELECT state, COUNT(*) FROM outcomes GROUP BY state"):
                counts[str(state)] = counts.get(str(state), 0) + int(n)
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts by state, rejections by code, delivery statuses, history size."""
        with self._using() as conn:
            by_code = {
                str(code): int(n)
                for code, n in conn.execute(
                    "SELECT code, COUNT(*) FROM outcomes WHERE state = %s GROUP BY code "
                    "ORDER BY COUNT(*) DESC, code",
                    (State.REJECTED,),
                )
            }
            statuses = {
                ("(none yet)" if status is None else str(status)): int(n)
                for status, n in conn.execute(
                    "SELECT status, COUNT(*) FROM outcomes WHERE state = %s GROUP BY status "
                    "ORDER BY COUNT(*) DESC, status",
                    (State.ACCEPTED,),
                )
            }
            changes = _count(conn, "SELECT COUNT(*) FROM status_history")
            total = _count(conn, "SELECT COUNT(*) FROM messages")
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
        wanted = None if states is None else list(states)
        after = 0
        columns = ", ".join(ROW_COLUMNS)
        while True:
            query = f"SELECT {columns} FROM journal WHERE line > %s"
            args: list[Any] = [after]
            if wanted is not None:
                query += " AND state = ANY(%s)"
                args.append(wanted)
            query += f" ORDER BY line LIMIT {BATCH}"
            with self._using() as conn:
                block = conn.execute(query, args).fetchall()
            if not block:
                return
            for row in block:
                yield (int(row[0]), *row[1:])
            after = block[-1][0]

    def by_line(self, line: int) -> Optional[dict[str, Any]]:
        """One row as a dict (``ROW_COLUMNS`` and ``key``), or None."""
        return self._one("line = %s", line)

    def by_key(self, key: str) -> Optional[dict[str, Any]]:
        """The row ``add()`` put under the caller's ``key``, as ``by_line`` gives it, or None."""
        return self._one("key = %s", key)

    def _one(self, where: str, value: Any) -> Optional[dict[str, Any]]:
        with self._using() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_ROW)} FROM journal WHERE {where}", (value,)
            ).fetchone()
        if row is None:
            return None
        found = dict(zip(_ROW, row))
        found["line"] = int(found["line"])
        return found

    def cost_totals(self) -> dict[str, Any]:
        """Segments recorded in ``costs``: in all, by encoding and by state.

        The same shape as the SQLite journal's (see ``Journal.cost_totals``).
        """
        by_state = {state: {"messages": 0, "segments": 0} for state in STATES}
        by_encoding: dict[str, dict[str, int]] = {}
        with self._using() as conn:
            for state, n, segments in conn.execute(
                f"SELECT COALESCE(o.state, '{State.PENDING}'), COUNT(*), SUM(c.segments) "
                "FROM costs AS c LEFT JOIN outcomes AS o ON o.line = c.line GROUP BY 1"
            ):
                by_state[str(state)] = {"messages": int(n), "segments": int(segments or 0)}
            for encoding, n, segments in conn.execute(
                "SELECT encoding, COUNT(*), SUM(segments) FROM costs GROUP BY encoding "
                "ORDER BY encoding"
            ):
                by_encoding[str(encoding)] = {"messages": int(n), "segments": int(segments or 0)}
            changed = _count(conn, "SELECT COUNT(*) FROM costs WHERE transliterated <> 0")
        return {
            "messages": sum(v["messages"] for v in by_encoding.values()),
            "segments": sum(v["segments"] for v in by_encoding.values()),
            "transliterated": changed,
            "by_encoding": by_encoding,
            "by_state": by_state,
        }

    def costs_between(self, first: int, last: int) -> dict[int, tuple[int, str, bool]]:
        """``{line: (segments, encoding, transliterated)}`` for lines ``first..last``."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT line, segments, encoding, transliterated FROM costs "
                "WHERE line BETWEEN %s AND %s",
                (first, last),
            ).fetchall()
        return {int(r[0]): (int(r[1]), str(r[2]), bool(r[3])) for r in rows}

    def made_ids_between(self, first: int, last: int) -> dict[int, str]:
        """``{line: clientId}`` for lines ``first..last`` sent with an id the journal made."""
        with self._using() as conn:
            rows = conn.execute(
                "SELECT line FROM messages WHERE line BETWEEN %s AND %s AND client_id IS NULL",
                (first, last),
            ).fetchall()
        return {int(r[0]): self.made_id(int(r[0])) for r in rows}

    def integrity_check(self) -> str:
        """``"ok"`` when every message has its outcome and each cost its message; else why not."""
        checks = (
            ("messages without an outcome row",
             "SELECT COUNT(*) FROM messages AS m WHERE NOT EXISTS "
             "(SELECT 1 FROM outcomes AS o WHERE o.line = m.line)"),
            ("costs without a message",
             "SELECT COUNT(*) FROM costs AS c WHERE NOT EXISTS "
             "(SELECT 1 FROM messages AS m WHERE m.line = c.line)"),
            ("history without a message",
             "SELECT COUNT(*) FROM status_history AS h WHERE NOT EXISTS "
             "(SELECT 1 FROM messages AS m WHERE m.line = h.line)"),
        )
        problems = []
        with self._using() as conn:
            for what, query in checks:
                n = _count(conn, query)
                if n:
                    problems.append(f"{n} {what}")
        return "; ".join(problems) or "ok"


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row is not None else 0


def _newer(version: Optional[str]) -> bool:
    try:
        return version is not None and int(version) > int(SCHEMA_VERSION)
    except ValueError:
        return False
