"""A PostgreSQL journal's claims: who sends which rows, until when, and what came of them.

Strategy: what a single SQLite file gets from its ``flock`` a fleet gets from claims:

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
  a claim of a sender whose process is gone, seen from the same machine, is lapsed
  at once (``_dead_here``: what the SQLite journal's lock tells of a dead sender);
- results are written only over the sender's own open rows (``in_flight``, or
  ``unknown`` after a lapse), so a late result never replaces a final state, nor a
  row another sender has claimed since; a batch of results is one statement over
  arrays, and a commit waits for the server's WAL flush.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from .._records import Message, SendResult
from .._wire import Code
from ._errors import JournalClaimLost
from ._pg_conn import DEFAULT_LEASE, _PgConnection, log
from ._pg_schema import (
    FINAL_SQL,
    HELD_SQL,
    LOCK_CLASS_SCHEMA,
    LOCK_KEY,
    NOW,
    OPEN_SQL,
    SENDABLE_SQL,
)
from ._schema import STATES, State, refused_whole, result_state

if TYPE_CHECKING:
    import psycopg

#: The recovery's advisory lock (two recoveries at once would lock rows in two orders).
_LOCK_CLASS_RECOVER = LOCK_CLASS_SCHEMA + 2


@functools.cache
def _machine() -> str:
    """This machine, as ``senders.host`` records it: the host name, and on Linux the
    kernel's boot id and this process's pid namespace, so that two senders with the
    same ``host`` see each other's pids (see ``_PgClaims._dead_here``)."""
    # Not the socket module: the command line imports this at start-up, and its
    # start-up stays as light (and its interrupt handling as tested) as before.
    try:
        name = os.uname().nodename
    except AttributeError:  # not POSIX
        import socket

        name = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")  # pid:[4026531836]
    except OSError:
        return name
    return f"{name} boot:{boot} {namespace}"


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (True when in doubt)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


class _PgClaims(_PgConnection):
    """Claims and their lease, recovery of lapsed ones, and the send loop's writes."""

    def lease_deadline(self) -> float:
        """The ``time.monotonic()`` moment until which this sender holds its claims.

        Set by every claim (``next_chunk``) and ``advance`` once committed: the
        moment before its transaction began, plus the lease the server gave it
        (``lease_until - now()`` on the server's clock). ``-inf`` before the first.
        """
        return self._lease_deadline

    def fit_lease(self, request_time: float) -> None:
        """Make the lease outlast a request of ``request_time`` seconds (a run's client's).

        A sender lets a request start only with more than ``request_time``
        (``request_deadline + connect_timeout``) of its lease left. A lease not
        given at open is made ``request_time + DEFAULT_LEASE`` (the room for the
        commits between requests), so a client's own settings decide, a default
        ``Client``'s 310 s included; it applies from the next renewal on (the run's
        first mark renews it before any byte). A lease given is kept: a request it
        cannot cover is refused (``JournalClaimLost``), not sent.
        """
        if not self._lease_given:
            self.lease = max(float(request_time), 0.0) + DEFAULT_LEASE

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
                "host": _machine(),
                "pid": os.getpid(),
            },
        ).fetchone()
        return float(row[0]) if row is not None else 0.0

    def _dead_here(self, conn: psycopg.Connection[Any]) -> list[str]:
        """Senders of this machine whose process is gone: their claims are over.

        What the SQLite journal knows from its lock (released when its holder dies),
        a sender knows of another one on the same machine (the same boot and pid
        namespace: ``_machine``) from its process: a process that no longer exists
        sends nothing more, and its connection is gone with it, so its lease need
        not be waited out. A pid in use again (by any process) counts as alive:
        the doubt waits for the lease. Senders elsewhere lapse with their lease only.
        """
        machine = _machine()
        if " boot:" not in machine:
            return []  # no proof of identity here: the lease decides
        found = conn.execute(
            "SELECT id, pid FROM senders WHERE host = %s AND id <> %s "
            "AND lease_until >= now() AND pid IS NOT NULL",
            (machine, self.sender_id),
        ).fetchall()
        return [str(sender) for sender, pid in found if not _running(int(pid))]

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
                        "SELECT id FROM senders WHERE (lease_until < now() OR id = ANY(%s)) "
                        # SKIP LOCKED: a sender stalled inside its own transaction
                        # holds its row; the others go on without its claims.
                        "AND id <> %s ORDER BY id FOR SHARE SKIP LOCKED",
                        (self._dead_here(conn), self.sender_id),
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
        stalled past its lease), or of a sender of this machine whose process is
        gone, become ``unknown``, never ``pending``; those of live senders are left
        alone. With ``resend_unknown`` every ``unknown`` row goes
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
                    "SELECT id FROM senders WHERE lease_until < now() OR id = ANY(%s) "
                    "ORDER BY id FOR UPDATE SKIP LOCKED",  # a stalled one: next time
                    (self._dead_here(conn),),
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
