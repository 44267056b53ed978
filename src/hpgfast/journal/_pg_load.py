"""Loading a PostgreSQL journal: an input once for a fleet, messages of a caller's.

Strategy: the SQLite journal's rules (``_load``: every message in the journal,
``pending``, before anything is sent; a load resumes after the last line committed;
a journal bound to its input's fingerprint, a changed input refused once anything
was sent), under one more constraint: several senders may start on the same input
at once. A load is done under a session-level advisory lock (``loading()``): the
first sender loads, the others wait, then find the input loaded; a loader that dies
releases the lock with its connection, and the next one resumes. The rows go in by
COPY, 10,000 a transaction, each message with its ``pending`` outcome row (so it can
be claimed) and its cost in segments.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

from .._records import Message
from ._errors import JournalError, JournalMismatch, JournalUnavailable
from ._load import _keyed, _params_json, message_costs
from ._pg_conn import BATCH, _PgConnection, log
from ._pg_schema import LOCK_CLASS_LOAD, LOCK_KEY

if TYPE_CHECKING:
    import psycopg

_P = TypeVar("_P", bound="_PgLoading")

_MESSAGE_COLUMNS = "line, key, address, text, subject, client_id, params"


class _PgLoading(_PgConnection):
    """Binding the journal to an input and loading messages, one loader at a time."""

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
                # No sender may mark or claim a row between the check and the
                # emptying (its in-flight marks would vanish with the rows): the
                # rows are locked against writes until this commit. A row another
                # sender claimed counts as sent: it may be about to go.
                conn.execute("LOCK TABLE outcomes IN EXCLUSIVE MODE")
                if self._anything_sent(conn) or conn.execute(
                    "SELECT 1 FROM outcomes WHERE owner IS NOT NULL LIMIT 1"
                ).fetchone() is not None:
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
        try:
            with self._transaction() as conn:
                self._copy_rows(conn, rows, costs)
        except JournalError as exc:
            if isinstance(exc, JournalUnavailable):
                raise
            # PostgreSQL stores no NUL in a text (SQLite does): say which message.
            for row in rows:
                if any(isinstance(v, str) and "\x00" in v for v in row[1:6]):
                    raise JournalError(
                        f"journal {self.path}: the message of line {row[0]} holds a NUL "
                        "character, which a PostgreSQL journal cannot store; nothing of "
                        "its batch was loaded"
                    ) from None
            raise

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
        items: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        transliterate: bool = False,
        batch: int = BATCH,
    ) -> int:
        """Append messages after the last line, ``pending``; returns how many were added.

        ``items`` are as ``Journal.add`` takes them: messages (``Message``, or a
        tuple ``(address, text[, subject[, client_id[, params]]])``) or ``(key,
        message)`` pairs, ``key`` a str of the caller's (an order id), unique in the
        journal: an item whose key the journal has already (or that came earlier in
        ``items``) is skipped, so adding the same items again adds nothing. One
        transaction per ``batch`` items, under the load lock (``loading()``).
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
                # The SQLite engine's reading of an item (``_keyed``): a ``Message``
                # is itself a tuple, so it is told from a (key, message) pair by type.
                pending.append(_keyed(item))
                if len(pending) >= batch:
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
