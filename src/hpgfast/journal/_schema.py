"""What a journal file holds: its tables, its schema's versions, the states of a row.

Strategy: the layout on disk written down once, here, with the steps that bring an
older file up to it, so that every other part of the journal names the same tables
and states, and a change of layout is a change of this module and a migration.

``messages`` holds the input as read, one row per input message keyed by its 1-based
number in the input (``line``), with what it costs in SMS segments (``cost``), written
once; ``outcomes`` holds each message's state, provider id, code, delivery status,
status time, reason and update time, in narrow rows, one from a message's first
result on; ``in_flight`` holds the spans of lines marked in flight before their
request's first byte, one row a mark (a request's lines and those marked ahead with
them), not a row a message. A message's state is its outcome row's; without one, it
is ``in_flight`` inside a span and ``pending`` outside. The ``journal`` view joins
them into one row per message, the ``costs`` view shows each message's segments.
``meta`` holds the input's fingerprint (size, SHA-256, the settings that change what
is sent), the schema version, the journal's clientId prefix and the name the file
was last opened by (see ``_file``); ``status_history`` every delivery status change
(see ``_statuses``). The states and the order in which the send loop writes them
are in ``_send``.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Optional

from .._states import STATES as STATES
from .._states import State as State
from .._states import refused_whole as refused_whole
from .._states import result_state as result_state
from .._wire import ID_ALPHABET, Code

SCHEMA_VERSION = "4"
#: Versions this code opens, each with the step that brings it to the next.
#: 1 -> 2: a clientId prefix per journal (``id_prefix`` in meta); the schema of the
#: tables is unchanged, so the step only adds the prefix.
#: 2 -> 3: ``messages.key``, the caller's own key of a message (``Journal.add``),
#: unique where given, NULL for the rows loaded before; the ``journal`` view shows it.
#: 3 -> 4: each message's cost in ``messages.cost`` (the ``costs`` table's rows moved
#: there, ``costs`` a view of them), an index of the rows with parameters
#: (``messages_params``), and the in-flight mark a row per span of lines
#: (``in_flight``) instead of an outcome row per message: a message's outcome row is
#: written once, with its result. Rows in flight in a version 3 file keep their
#: outcome rows, which say the same.
_MIGRATIONS = ("1", "2", "3")

#: Random characters of a journal's clientId prefix (65 bits of [0-9A-Za-z]).
ID_PREFIX_LENGTH = 11
#: Characters of the line number after it: 11 + 9 = 20, the protocol's maximum.
ID_LINE_LENGTH = 9


#: States a send run picks up (``unknown`` too when the user asks to resend it).
SENDABLE_STATES = (State.PENDING, State.NOT_SENT)
#: States a message never leaves.
FINAL_STATES = frozenset(
    (State.ACCEPTED, State.ACCEPTED_EARLIER, State.REJECTED, State.INVALID)
)

#: Non-``ok`` STATUS codes that are an answer about the message, not a failed query:
#: recorded in ``status`` and treated as final.
FINAL_STATUS_CODES = frozenset((Code.ERROR_PROVIDER_ID_UNKNOWN,))


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

# The input as read (written once, never changed), each message's outcome (narrow
# rows, written once a message has a result, or once a settled mark gives it a
# state), and the in-flight marks, a row per span of lines: a mark writes one row
# whatever the span's length, and a message's outcome row is written once, not
# inserted by its mark and rewritten by its result. Spans are disjoint; a span whose
# every line has its outcome row is deleted (``_send``). The ``journal`` view joins
# them into one row per message.
_META_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""
#: A message's state (``m`` its ``messages`` row, ``o`` its outcome row or NULLs):
#: its outcome row's; else in flight inside a span (the span starting last at or
#: before it, since spans are disjoint), else pending.
STATE_SQL = (
    f"COALESCE(o.state, CASE WHEN (SELECT s.last FROM in_flight AS s WHERE s.first <= m.line "
    f"ORDER BY s.first DESC LIMIT 1) >= m.line THEN '{State.IN_FLIGHT}' "
    f"ELSE '{State.PENDING}' END)"
)
_VIEW = f"""
CREATE VIEW IF NOT EXISTS journal AS
    SELECT m.line, m.address, m.text, m.subject, m.client_id, m.params,
           {STATE_SQL} AS state, o.provider_id, o.code,
           o.status, o.status_time, o.reason, o.status_source, o.updated_at, m.key
    FROM messages AS m LEFT JOIN outcomes AS o ON o.line = m.line;
"""
# What each message costs, for reconciling an invoice: its SMS segments, the encoding
# they are counted in and whether the text goes out transliterated (``send
# --transliterate``: the count is then that of the Latin text), packed in one number
# of its ``messages`` row (``cost``: segments x 4 + 2 for ucs2 + 1 when transliterated;
# NULL: not counted), written with it: no row of its own. The ``costs`` view shows
# them as the ``costs`` table of schema 3 held them; a message without a count (a
# text that cannot be encoded, a row loaded before counts were kept) has no row.
_COSTS_VIEW = """
CREATE VIEW IF NOT EXISTS costs AS
    SELECT line, cost >> 2 AS segments,
           CASE cost & 2 WHEN 0 THEN 'gsm7' ELSE 'ucs2' END AS encoding,
           cost & 1 AS transliterated
    FROM messages WHERE cost IS NOT NULL;
"""
# A unique index, not a UNIQUE column: ALTER TABLE cannot add one (2 -> 3); NULLs
# (rows without a key) are distinct in it. Made once the column exists. Partial:
# rows without a key (every row a command line loads) are not in it, so loading
# them inserts into the table alone; ``key = ?`` and ``key IN (...)`` use it all
# the same. (A journal whose index was made whole before keeps it: the same
# answers, only each keyless row costs an index entry.)
_KEY_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages(key) WHERE key IS NOT NULL"
)
# The few rows with parameters, by line: the send loop reads a chunk's parameters
# through it (``_send``), not the column of every row. Partial: a row without
# parameters (nearly every one) is not in it.
_PARAMS_INDEX = (
    "CREATE INDEX IF NOT EXISTS messages_params ON messages(line) WHERE params IS NOT NULL"
)
_SCHEMA = _META_SCHEMA + """
CREATE TABLE IF NOT EXISTS messages (
    line      INTEGER PRIMARY KEY,   -- 1-based number of the message in the input
    address   TEXT NOT NULL,
    text      TEXT NOT NULL,
    subject   TEXT,
    client_id TEXT,
    params    TEXT,                  -- JSON object of extra parameters, or NULL
    key       TEXT,                  -- the caller's key (Journal.add), unique, or NULL
    cost      INTEGER                -- segments x 4 + 2 (ucs2) + 1 (transliterated)
);
CREATE TABLE IF NOT EXISTS in_flight (
    first      INTEGER PRIMARY KEY,  -- the span's first line
    last       INTEGER NOT NULL,     -- its last line
    updated_at REAL NOT NULL         -- Unix time of the mark
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
""" + _VIEW + """-- Messages sent before the journal recorded clientIds (schema 1) and in flight or
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



def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def _create_tables(db: sqlite3.Connection) -> None:
    """Make the tables a journal of this schema has (those it has already are kept)."""
    db.executescript(_SCHEMA)
    columns = _columns(db, "messages")
    if "key" in columns:
        db.execute(_KEY_INDEX)  # else the migration to 3 adds the column, then the index
    if "cost" in columns:  # else the migration to 4 makes them
        db.execute(_COSTS_VIEW.strip().rstrip(";"))
        db.execute(_PARAMS_INDEX)


def _write_meta(db: sqlite3.Connection, values: Mapping[str, str]) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())


def _new_meta() -> dict[str, str]:
    """The meta entries a new journal starts with: its schema and its clientId prefix."""
    return {"schema_version": SCHEMA_VERSION, "id_prefix": _new_id_prefix()}


def _migrate(db: sqlite3.Connection, version: str) -> None:
    """One step up from ``version`` (one of ``_MIGRATIONS``), in ``db``'s transaction."""
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
        _write_meta(db, {"schema_version": "2", "id_prefix": _new_id_prefix()})
        version = "2"
    if version == "2":
        # 2 -> 3: the caller's keys. The old rows have none (NULL).
        if not any(row[1] == "key" for row in db.execute("PRAGMA table_info(messages)")):
            db.execute("ALTER TABLE messages ADD COLUMN key TEXT")
        db.execute("DROP VIEW IF EXISTS journal")
        db.execute(_VIEW.strip().rstrip(";"))  # (executescript would commit)
        db.execute(_KEY_INDEX)
        _write_meta(db, {"schema_version": "3"})
        version = "3"
    if version == "3":
        # 3 -> 4: the costs into their messages' rows; the marks in spans. Rows a
        # version 3 sender left in flight keep their outcome rows (the state is
        # the same; recovering makes them unknown as before). Counts of lines past
        # the input's (left by an input a rebind emptied) are dropped: a load
        # deleted them before writing its own.
        if "cost" not in _columns(db, "messages"):
            db.execute("ALTER TABLE messages ADD COLUMN cost INTEGER")
        kind = db.execute("SELECT type FROM sqlite_master WHERE name = 'costs'").fetchone()
        if kind is not None and kind[0] == "table":
            db.execute(
                "UPDATE messages SET cost = c.segments * 4 "
                "+ (CASE c.encoding WHEN 'gsm7' THEN 0 ELSE 2 END) "
                "+ (CASE WHEN c.transliterated THEN 1 ELSE 0 END) "
                "FROM costs AS c WHERE c.line = messages.line"
            )
            db.execute("DROP TABLE costs")
        db.execute(_COSTS_VIEW.strip().rstrip(";"))
        db.execute(_PARAMS_INDEX)
        db.execute("DROP VIEW IF EXISTS journal")
        db.execute(_VIEW.strip().rstrip(";"))
        _write_meta(db, {"schema_version": "4"})


def _new_id_prefix() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_PREFIX_LENGTH))


def checked_id_prefix(value: Optional[str], path: str) -> str:
    """The journal's clientId prefix as ``meta`` holds it, checked.

    Every clientId the journal makes starts with it, so a journal whose prefix was
    lost or changed (by hand) would send messages under ids another journal uses,
    or under other ids than it sent them with: a resend would not be refused as a
    repeat. Such a journal is refused, not repaired.

    Raises:
        JournalError: the prefix is missing or not ``ID_PREFIX_LENGTH`` characters
            of ``[0-9A-Za-z]``.
    """
    from ._errors import JournalError

    if value is None or len(value) != ID_PREFIX_LENGTH or not set(value) <= set(ID_ALPHABET):
        raise JournalError(
            f"journal {path}: its clientId prefix (meta id_prefix) is missing or damaged: "
            "the ids its messages went out with cannot be made again, so it is not used"
        )
    return value


def checked_count(value: Optional[str], key: str, path: str) -> Optional[int]:
    """A count ``meta`` holds (``loaded``), or None; a damaged one is a JournalError."""
    from ._errors import JournalError

    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise JournalError(f"journal {path}: meta {key} is damaged ({value[:20]!r})")
    return count
