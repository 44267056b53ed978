"""What a PostgreSQL journal holds: its tables, its schema's versions, its locks.

Strategy: the same rows as the SQLite journal's (``_schema``: the input as read in
``messages``, each message's state in ``outcomes``, ``meta``, ``costs``,
``status_history``), the same states and the same schema version, so that both
engines answer every reading the same way; and what a fleet of senders needs on top:

- every message has its ``outcomes`` row from the moment it is loaded (``pending``,
  ``updated_at`` NULL until anything happens to it), so that a pending row can be
  claimed: ``owner`` is the sender that claimed it last;
- a claim lasts while its owner's lease does: ``senders`` holds one row per sender
  with ``lease_until`` on the server's clock. A lease is renewed by rewriting that
  one row, in the claim's transaction, however many rows the sender holds (a lease
  per message row would rewrite every held row at every renewal). A claim whose
  owner's lease lapsed is lapsed (as is one whose owner's process is gone, seen
  from the same machine: ``host`` and ``pid``): a pending row so held is claimable
  again, an ``in_flight`` one becomes ``unknown``. A sender's row goes only once it holds no
  row (``pending``, ``not_sent`` or ``in_flight`` with it as ``owner``);
- partial indexes find the sendable rows, the rows in flight and the provider ids
  without scanning what is final;
- schema changes and loads are serialized by advisory locks keyed on the schema the
  tables live in (``current_schema()``), so that several journals can share a
  database, one per schema (``?options=-csearch_path%3Dname`` in the URL).

``SCHEMA_VERSION`` is 3, the SQLite journal's version 3 (``messages.key``, the
caller's key); the SQLite journal's version 4 changed what a file needs alone (a
row per span of lines in flight instead of an outcome row per message, which a
fleet's claims need here; costs in the messages' rows), so the readings stay the
same on both. A PostgreSQL journal is made at 3, so there is no older one to migrate yet:
``_MIGRATIONS`` maps a version to the statements that bring it one step up, and a
newer version is refused.
"""

from __future__ import annotations

from ._schema import FINAL_STATES, State

#: The schema a PostgreSQL journal is made at (the SQLite journal's 3, with ``messages.key``).
SCHEMA_VERSION = "3"
#: Older versions this code opens, each with the statements that bring it one version
#: up (run in one transaction under the schema lock). None yet: the first PostgreSQL
#: journal was made at version 3.
_MIGRATIONS: dict[str, tuple[str, ...]] = {}

#: The tables a journal has (a database with some of them and no ``meta`` is not one).
TABLES = ("meta", "messages", "outcomes", "senders", "costs", "status_history")

#: ``pg_advisory_lock(class, hashtext(current_schema()))``: the first key, "HPGF".
LOCK_CLASS_SCHEMA = 0x48504746
#: The load's lock (session level: a loader that dies releases it with its connection).
LOCK_CLASS_LOAD = 0x48504747
#: The lock's second key: the schema the journal's tables are in.
LOCK_KEY = "hashtext(COALESCE(current_schema(), ''))"

_STATE_LIST = ", ".join(
    f"'{s}'"
    for s in (
        State.PENDING, State.IN_FLIGHT, State.ACCEPTED, State.ACCEPTED_EARLIER,
        State.REJECTED, State.UNKNOWN, State.NOT_SENT, State.INVALID,
    )
)
#: States a sender may claim (``unknown`` only once ``resend_unknown`` made it pending).
SENDABLE_SQL = f"('{State.PENDING}', '{State.NOT_SENT}')"
#: States a SEND result may be written over: the sender's own in-flight rows, and
#: those a lapse turned ``unknown`` while their request was out.
OPEN_SQL = f"('{State.IN_FLIGHT}', '{State.UNKNOWN}')"
#: States in which a row is held by its owner (``owner`` set): claimed, or on the wire.
HELD_SQL = f"('{State.PENDING}', '{State.NOT_SENT}', '{State.IN_FLIGHT}')"
FINAL_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(FINAL_STATES)) + ")"
#: The transaction's time on the server's clock, as Unix time (``updated_at``).
NOW = "EXTRACT(EPOCH FROM now())::float8"

#: Made once, in one transaction, when the schema is new.
CREATE = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """
    CREATE TABLE messages (
        line      BIGINT PRIMARY KEY,   -- 1-based number of the message in the input
        key       TEXT UNIQUE,          -- the caller's key (add()), or NULL
        address   TEXT NOT NULL,
        text      TEXT NOT NULL,
        subject   TEXT,
        client_id TEXT,
        params    TEXT                  -- JSON object of extra parameters, or NULL
    )""",
    f"""
    CREATE TABLE outcomes (
        line          BIGINT PRIMARY KEY REFERENCES messages (line),
        state         TEXT NOT NULL DEFAULT '{State.PENDING}' CHECK (state IN ({_STATE_LIST})),
        owner         TEXT,             -- the sender that claimed it last (senders.id)
        provider_id   TEXT,
        code          TEXT,             -- the platform's code, or not-sent / unknown
        status        TEXT,             -- the last delivery status seen
        status_time   TEXT,             -- when that status began (platform's clock)
        reason        TEXT,             -- why: undelivered reason, invalid input, ...
        status_source TEXT,             -- poll or push
        updated_at    DOUBLE PRECISION  -- Unix time of the last change; NULL: none yet
    )""",
    f"CREATE INDEX outcomes_sendable ON outcomes (line) WHERE state IN {SENDABLE_SQL}",
    "CREATE INDEX outcomes_held ON outcomes (owner) "
    f"WHERE owner IS NOT NULL AND state IN {HELD_SQL}",
    "CREATE INDEX outcomes_provider ON outcomes (provider_id) WHERE provider_id IS NOT NULL",
    """
    CREATE TABLE senders (
        id          TEXT PRIMARY KEY,   -- random, made when a journal object opens
        lease_until TIMESTAMPTZ NOT NULL,
        host        TEXT,
        pid         INTEGER,
        started_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
    """
    CREATE TABLE costs (
        line           BIGINT PRIMARY KEY,  -- messages.line
        segments       INTEGER NOT NULL,
        encoding       TEXT NOT NULL,       -- gsm7 or ucs2
        transliterated INTEGER NOT NULL     -- 1: counted (and sent) in Latin letters
    )""",
    """
    CREATE TABLE status_history (
        id          BIGSERIAL PRIMARY KEY,
        line        BIGINT NOT NULL,
        provider_id TEXT NOT NULL,
        status      TEXT,
        status_time TEXT,
        reason      TEXT,
        source      TEXT,
        recorded_at DOUBLE PRECISION NOT NULL
    )""",
    # The function finds status_history in the schema it was made in, whatever the
    # search_path of the session that changes a status.
    """
    CREATE FUNCTION hpgfast_status_change() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO status_history (line, provider_id, status, status_time, reason, source,
                                    recorded_at)
        VALUES (NEW.line, NEW.provider_id, NEW.status, NEW.status_time, NEW.reason,
                NEW.status_source, NEW.updated_at);
        RETURN NULL;
    END
    $$""",
    """
    CREATE TRIGGER outcomes_status_change
    AFTER UPDATE OF status, status_time ON outcomes FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          OR NEW.status_time IS DISTINCT FROM OLD.status_time)
    EXECUTE PROCEDURE hpgfast_status_change()""",
    """
    CREATE VIEW journal AS
        SELECT m.line, m.key, m.address, m.text, m.subject, m.client_id, m.params,
               o.state, o.owner, o.provider_id, o.code, o.status, o.status_time,
               o.reason, o.status_source, o.updated_at
        FROM messages AS m JOIN outcomes AS o ON o.line = m.line""",
)
