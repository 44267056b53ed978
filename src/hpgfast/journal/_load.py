"""Loading the input into the journal, and tying the journal to that input.

Strategy: every input message is in the journal, ``pending``, before anything is
sent (the first write in the order ``_send`` gives), so the send loop only ever
reads the journal, and a resumed run sends from it, never from the input again. A
load is written in batches (one transaction each) that resume where a crash cut
them: lines already in the journal are skipped. Each message's cost in SMS segments
goes in with it, in its row. A journal is bound to the input's
fingerprint (size, SHA-256, the settings that change what is sent), so that a
changed input is refused once anything was sent, and simply replaces the old one
while nothing was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Optional, TypeVar, Union

from .._records import Message
from ..exceptions import MessageError
from ..sms import count_segments, transliterate_if_cheaper, transliterate_messages
from ._errors import JournalMismatch
from ._file import _JournalFile, log
from ._schema import _write_meta

_L = TypeVar("_L", bound="_Loading")

_INSERT_KEYED = (
    "INSERT INTO messages (line, address, text, subject, client_id, params, key, cost) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

#: The columns of ``messages`` after ``line`` that a row's values fill.
_FIELDS = ("address", "text", "subject", "client_id", "params", "cost")


def _insert_without(absent: tuple[bool, ...]) -> str:
    """The INSERT of a message row whose values flagged in ``absent`` are None.

    Python's sqlite3 binds None through its adapter lookup (thousands of
    instructions a value, against hundreds for a str): a column left out of the
    INSERT is NULL at no cost, so rows are inserted by which of their values are
    None, each group with the statement that leaves those out.
    """
    columns = ["line", *(f for f, gone in zip(_FIELDS, (False, False, *absent)) if not gone)]
    return (
        f"INSERT INTO messages ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )


def _insert_messages(
    db: sqlite3.Connection, rows: Sequence[tuple[Any, ...]], costs: Sequence[Optional[int]]
) -> None:
    """Insert ``(line, address, text, subject, client_id, params)`` rows with their
    ``costs`` (``messages.cost``), Nones as NULL without binding them (see
    ``_insert_without``)."""
    groups: dict[tuple[bool, bool, bool, bool], list[tuple[Any, ...]]] = {}
    for row, cost in zip(rows, costs):
        absent = (row[3] is None, row[4] is None, row[5] is None, cost is None)
        group = groups.get(absent)
        if group is None:
            group = groups[absent] = []
        group.append((*row, cost))
    for absent, group in groups.items():
        if True in absent:
            kept = [i for i, gone in enumerate((False, False, False, *absent)) if not gone]
            group = list(map(itemgetter(*kept), group))
        db.executemany(_insert_without(absent), group)


#: The row of a message with every field but its parameters (the usual one).
_INSERT_USUAL = _insert_without((False, False, True, False))


def _insert_loaded(
    db: sqlite3.Connection, lines: Sequence[int], messages: Sequence[Message],
    costs: Sequence[Optional[int]],
) -> None:
    """Insert loaded messages, their lines and costs given apart: the usual row (a
    subject and a clientId, no parameters, a cost) made at once, the others through
    ``_insert_messages``."""
    usual: list[tuple[Any, ...]] = []
    others: list[tuple[Any, ...]] = []
    other_costs: list[Optional[int]] = []
    for line, m, cost in zip(lines, messages, costs):
        if m[4] is None and cost is not None and m[2] is not None and m[3] is not None:
            usual.append((line, m[0], m[1], m[2], m[3], cost))
        else:
            params = m[4]
            others.append((line, m[0], m[1], m[2], m[3],
                           None if params is None else _params_json(params)))
            other_costs.append(cost)
    if usual:
        db.executemany(_INSERT_USUAL, usual)
    if others:
        _insert_messages(db, others, other_costs)


def _packed_costs(messages: Sequence[Message], transliterate: bool) -> list[Optional[int]]:
    """Each message's ``messages.cost``: segments x 4 + 2 (ucs2) + 1 (transliterated),
    None for a text that cannot be counted (see ``message_costs``)."""
    try:
        changed: Sequence[int] = ()
        counted: Sequence[Any] = messages
        if transliterate:
            counted, changed = transliterate_messages(messages)
        counts = count_segments(counted)
    except MessageError:
        found = {
            cost[0]: cost[1:] for cost in _costs(range(len(messages)), messages, transliterate)
        }
        return [
            None if i not in found else _pack(*found[i]) for i in range(len(messages))
        ]
    packed: list[Optional[int]] = [
        c[2] * 4 + (2 if c[0] == "ucs2" else 0) for c in counts
    ]
    for i in changed:
        packed[i] = int(packed[i] or 0) + 1
    return packed


def _pack(segments: int, encoding: str, transliterated: int) -> int:
    """``messages.cost`` of a count: segments x 4 + 2 (ucs2) + 1 (transliterated)."""
    if encoding not in ("gsm7", "ucs2"):  # pragma: no cover - count_segments' own
        raise ValueError(f"not an encoding: {encoding!r}")
    return segments * 4 + (2 if encoding == "ucs2" else 0) + (1 if transliterated else 0)


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
    return _costs([line for line, _ in rows], [m for _, m in rows], transliterate)


def _costs(
    lines: Sequence[int], messages: Sequence[Message], transliterate: bool
) -> list[tuple[int, int, str, int]]:
    """``message_costs`` of the lines and their messages given apart (the load's way:
    no pair per message)."""
    try:
        changed: Sequence[int] = ()
        counted: Sequence[Any] = messages
        if transliterate:
            counted, changed = transliterate_messages(messages)
        counts = count_segments(counted)
    except MessageError:
        out = []
        for line, message in zip(lines, messages):  # rare: find the bad texts one by one
            try:
                text, moved = message[1], False
                if transliterate:
                    text, moved = transliterate_if_cheaper(text)
                (cost,) = count_segments([text])
            except MessageError:
                continue
            out.append((line, cost[2], cost[0], int(moved)))
        return out
    out = [(line, cost[2], cost[0], 0) for line, cost in zip(lines, counts)]
    for i in changed:
        line, segments, encoding, _ = out[i]
        out[i] = (line, segments, encoding, 1)
    return out


def _params_json(params: Any) -> Optional[str]:
    if not params:
        return None
    pairs = params.items() if isinstance(params, Mapping) else params
    return json.dumps(dict(pairs), ensure_ascii=False, separators=(",", ":"))


#: The longest key ``add`` takes, in characters, on every engine.
KEY_MAX = 500


def _keyed(item: Any) -> tuple[Optional[str], Message]:
    """``(key or None, Message)`` of one item given to ``Journal.add``."""
    if isinstance(item, Message):
        return None, item
    if not isinstance(item, tuple):
        raise TypeError(
            "add() takes a Message or a message tuple or a (key, message) pair, got "
            f"{type(item).__name__}"
        )
    if len(item) == 2 and isinstance(item[1], tuple):
        key, message = item
        if key is not None and not isinstance(key, str):
            raise TypeError(
                "add() takes a Message or a (key, message) pair, its key a str, got "
                f"({type(key).__name__}, {type(message).__name__})"
            )
        if key is not None and (len(key) > KEY_MAX or "\x00" in key):
            # The same on every engine: PostgreSQL indexes no longer key (and
            # stores no NUL), and an order id, an event id, is far shorter.
            raise ValueError(
                f"add(): a key is at most {KEY_MAX} characters, none of them NUL "
                f"(got {len(key)} characters)"
            )
        return key, message if isinstance(message, Message) else Message(*message)
    return None, Message(*item)


def _anything_sent(db: sqlite3.Connection) -> bool:
    """Whether any message has an outcome row (see ``_anything_marked``)."""
    return db.execute("SELECT 1 FROM outcomes LIMIT 1").fetchone() is not None


def _anything_marked(db: sqlite3.Connection) -> bool:
    """Whether any message ever went out: has an outcome row, or is in a span in flight."""
    return _anything_sent(db) or (
        db.execute("SELECT 1 FROM in_flight LIMIT 1").fetchone() is not None
    )


def _forget_input(db: sqlite3.Connection) -> None:
    """Empty the loaded input and its fingerprint (only while nothing was sent)."""
    db.execute("DELETE FROM messages")
    db.execute("DELETE FROM meta WHERE key LIKE 'input:%' OR key = 'loaded'")


class _Loading(_JournalFile):
    """Binding the journal to an input and loading the input's messages."""

    @contextlib.contextmanager
    def loading(self: _L) -> Iterator[_L]:
        """Where a sender checks and loads an input (the engine interface)::

            with journal.loading():
                if journal.loaded is None:
                    ...  # load, bind, finish_load

        A shared journal (PostgreSQL) lets one sender of a fleet load while the
        others wait. A file has one sender at a time (the sender's lock, taken by
        ``send``), so there is nothing to wait for here.
        """
        yield self

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
                if _anything_marked(db):
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
                _forget_input(db)
            _write_meta(db, fingerprint)
        return True

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
        go into its row (``cost``, shown by the ``costs`` view; see
        ``message_costs``), counted on the text as it will be sent: with
        ``transliterate``, in Latin letters where that saves segments.
        """
        start = self.last_line
        count = 0
        # The lines and the messages (for their costs, then their rows): the row
        # inserted is made once, at the flush, with the cost.
        buffer: list[int] = []
        messages: list[Message] = []
        append, keep = buffer.append, messages.append

        def flush() -> None:
            costs = _packed_costs(messages, transliterate)
            with self._transaction() as db:
                _insert_loaded(db, buffer, messages, costs)

        for line, message in rows:
            if line <= start:
                continue
            append(line)
            keep(message)
            if len(buffer) >= batch:
                flush()
                count += len(buffer)
                buffer.clear()
                messages.clear()
        if buffer:
            flush()
            count += len(buffer)
        return count

    def add(
        self,
        items: Iterable[Union[Message, tuple[Any, ...]]],
        *,
        transliterate: bool = False,
        batch: int = 10_000,
    ) -> int:
        """Append messages after the last line, ``pending``; returns how many were added.

        ``items`` are messages (``Message``, or a tuple ``(address, text[, subject[,
        client_id[, params]]])``) or ``(key, message)`` pairs. A key is a ``str`` of
        yours (an order id), unique in the journal: an item whose key the journal
        already holds (or an earlier item of the same call) is skipped, so feeding
        the same rows again adds nothing twice. Messages without a key are always
        added. Written ``batch`` per transaction, each message's cost in segments
        with it (``transliterate``: counted as ``Client(transliterate=True)`` sends
        it); a crash loses at most the batch being written, and adding again with
        keys resumes. ``by_key(key)`` then finds a message and its outcome.
        """
        added = 0
        block: list[tuple[Optional[str], Message]] = []
        for item in items:
            block.append(_keyed(item))
            if len(block) >= batch:
                added += self._add_block(block, transliterate)
                block = []
        if block:
            added += self._add_block(block, transliterate)
        return added

    def _add_block(
        self, block: Sequence[tuple[Optional[str], Message]], transliterate: bool
    ) -> int:
        counted = message_costs(
            [(i, m) for i, (_, m) in enumerate(block)], transliterate=transliterate
        )
        costs = {cost[0]: cost[1:] for cost in counted}  # by index in the block
        keys = list({k for k, _ in block if k is not None})
        with self._transaction() as db:
            taken: set[str] = set()
            for i in range(0, len(keys), 500):  # within SQLite's bound on parameters
                part = keys[i : i + 500]
                taken.update(
                    str(r[0]) for r in db.execute(
                        f"SELECT key FROM messages WHERE key IN ({', '.join('?' * len(part))})",
                        part,
                    )
                )
            last = int(db.execute("SELECT MAX(line) FROM messages").fetchone()[0] or 0)
            line = last
            rows: list[tuple[Any, ...]] = []
            for i, (key, message) in enumerate(block):
                if key is not None:
                    if key in taken:
                        continue
                    taken.add(key)
                line += 1
                address, text, subject, client_id, params = message
                cost = costs.get(i)
                rows.append((
                    line, address, text, subject, client_id, _params_json(params), key,
                    None if cost is None else _pack(*cost),
                ))
            if rows:
                db.executemany(_INSERT_KEYED, rows)
        return len(rows)

    def restart_load(self) -> None:
        """Empty a load that was cut short, so the input is read again from its start.

        Only while nothing was sent (no outcome rows): the input's fingerprint is
        computed while it is loaded, so a cut load has none to check a resumed one
        against.
        """
        with self._transaction() as db:
            if not _anything_marked(db):
                _forget_input(db)

    def finish_load(self, total: int) -> None:
        """Record that the whole input (``total`` messages) is in the journal."""
        with self._transaction() as db:
            _write_meta(db, {"loaded": str(total)})
