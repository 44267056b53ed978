"""The journal in PostgreSQL: one database shared by a fleet of senders.

Strategy: the SQLite ``Journal``'s interface and states, row for row (the reading
methods return the same shapes), on a server that several senders, on one machine
or many, use at once; and the same public API on top (``send``, ``send_async``,
``load_input``, ``follow``, ``record_reports``: the ``_Sender`` and ``_Following``
mixins, which reach the engine only through the interface both engines implement).
What a single file gets from its ``flock`` a fleet gets from claims on rows, under
a lease on the server's clock. The engine is split by concern, one module each:

- ``_pg_url``: the URL, its password masked everywhere, connecting, and the
  mapping of psycopg's errors to the ``JournalError`` tree;
- ``_pg_schema``: the tables, the claims' columns, the advisory locks' keys;
- ``_pg_conn``: the one connection per journal object (under a mutex), its
  transactions, settling the schema, ``meta``;
- ``_pg_load``: binding to an input and loading it (COPY), once for a fleet
  (``loading()``: a session-level advisory lock);
- ``_pg_claims``: claims and their lease (``next_chunk``, ``advance``,
  ``lease_deadline``), ``release``, ``recover`` of lapsed claims, and the send
  loop's writes of results (the safety argument is that module's docstring);
- ``_pg_reading``: counts, rows, costs, statuses and their history.

psycopg is imported when a journal is opened (the ``postgres`` extra). The URL's
password never leaves ``_pg_url`` and the error texts: ``path`` is the URL with it
masked (``PGPASSWORD`` and ``~/.pgpass`` work, as libpq reads them).
"""

from __future__ import annotations

from ._follow import _Following
from ._pg_claims import _PgClaims
from ._pg_conn import BATCH, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LEASE
from ._pg_load import _PgLoading
from ._pg_reading import _PgReading
from ._pg_url import masked_url
from ._sender import _Sender

__all__ = [
    "BATCH",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_LEASE",
    "PostgresJournal",
    "masked_url",
]


class PostgresJournal(_PgLoading, _PgClaims, _PgReading, _Sender, _Following):
    """A journal in a PostgreSQL database, shared by every sender that opens it.

    The same interface and states as ``Journal`` (the SQLite file), and what a fleet
    needs besides: ``next_chunk`` claims the rows it returns for this sender, under a
    lease on the server's clock that every claim and ``advance`` renews;
    ``lease_deadline()`` says until when (in ``time.monotonic()``); ``release()``
    gives back what was claimed and not sent; ``recover()`` turns the lapsed
    in-flight claims of any sender into ``unknown``, safe while others send;
    ``loading()`` loads an input once however many senders start on it. ``send``,
    ``send_async``, ``load_input``, ``follow`` and ``record_reports`` work as on
    ``Journal``, each sender of a fleet sending only what it claimed.

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
            None (the default): each run fits it to its client, those two plus
            ``DEFAULT_LEASE`` (``fit_lease``).
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

    #: Several senders drain it at once (see ``Journal.shared``).
    shared = True
