"""Matching a 200's lines to the request's items: the usual reply and every other one.

Part of the outcome table (``_rules``): a reply whose lines the reader matched to
the items one by one (``all_matched_*``), or one that needs a look line by line
(``match_*_lines``: answers out of order, missing, doubled, or for no item). The
operations (``_operations``) call these through ``Operation.all_matched`` and
``Operation.match``.
"""

from __future__ import annotations

from functools import partial
from operator import itemgetter
from typing import Any, Optional

from ..exceptions import ProtocolError, RequestRejected
from ._results import SendFailure, StatusFailure
from ._rules import (  # the table's names, once
    _ID_NOT_UNIQUE,
    _NOT_OK,
    _OK,
    _UNKNOWN,
    KNOWN_WORDS,
    RequestFacts,
    Verdict,
    _line_id,
    _quote,
    _stop_for,
    log,
)

__all__ = ["all_matched_send", "all_matched_status", "match_send_lines", "match_status_lines"]


#: ``Verdict(results, clean=True)`` without the Python-level ``__new__`` of a
#: NamedTuple: the verdict of the usual reply, made once per request, as
#: ``_clean_verdict((results,) + _CLEAN)``. Its fields after ``results`` are taken
#: from the named constructor once, here, so that a field added to ``Verdict`` (with
#: its default) cannot shift them; tests/test_core.py checks the layout by name.
_clean_verdict = partial(tuple.__new__, Verdict)
_CLEAN = Verdict([], clean=True)[1:]
if Verdict._fields[0] != "results":
    raise RuntimeError("_clean_verdict puts the results first: Verdict's first field moved")


def masked_words(facts: RequestFacts, records: list[Any]) -> list[Any]:
    """``records`` (a reply's lines) whose code, or a STATUS line's status, holds
    the password, masked as free text is (``error-***``).

    The reader takes any code or status of the characters codes are made of: a
    platform that echoes the password as its answer would otherwise put it in
    every result's ``code`` (its repr, ``CompactResults.counts()``, the journal,
    the command line's output). The words the platform is known to send
    (``KNOWN_WORDS``, the account-stop codes) are never rewritten. Ids are kept as
    they came: they are what a STATUS asks with and a delivery report names (and
    a SEND line's clientId is one hpgfast sent).
    """
    fields = facts.op.word_fields
    odd: set[Any] = set()
    for field in fields:
        odd.update(map(itemgetter(field), records))
    odd.difference_update(KNOWN_WORDS, facts.account_stop)
    masked = {word: facts.scrub(word) for word in odd}
    masked = {word: shown for word, shown in masked.items() if shown != word}
    if not masked:  # the usual case: nothing else is looked at
        return records
    out = []
    for record in records:
        values = list(record)
        for field in fields:
            values[field] = masked.get(values[field], values[field])
        out.append(type(record)(*values) if values != list(record) else record)
    return out


def all_matched_status(facts: RequestFacts, records: list[Any], flags: int) -> Verdict:
    """A STATUS reply with one line per id, in order (``Match.ALL``).

    Clean, unless a line holds an account-stop code: then, as for SEND and as for
    the same lines out of order (``match_status_lines``), the batch stops.
    """
    records = masked_words(facts, records)
    if flags & _NOT_OK:
        stop = _stop_for(facts, records)
        if stop is not None:
            return Verdict(records, fatal=stop, note=str(stop))
    return _clean_verdict((records, *_CLEAN))


def all_matched_send(facts: RequestFacts, records: list[Any], flags: int) -> Verdict:
    """A SEND reply with one line per message, in order (``Match.ALL``)."""
    if not flags & _NOT_OK:
        return _clean_verdict((records, *_CLEAN))
    records = masked_words(facts, records)
    if facts.after_429 and any(r[0] == _ID_NOT_UNIQUE for r in records):
        records = _accepted_earlier(facts, list(records))
    stop = _stop_for(facts, records)
    note = None if stop is None else str(stop)
    return Verdict(records, fatal=stop, clean=stop is None, note=note)


def match_send_lines(
    facts: RequestFacts, parsed: list[Any], bad: list[ProtocolError]
) -> Verdict:
    """A SEND reply's lines matched to its messages by clientId."""
    ids = facts.ids
    count = len(ids)
    parsed = masked_words(facts, parsed)
    # One line per message, in request order, that the reader could not flag as
    # such (ids that are str subclasses): the usual verdict all the same.
    if not bad and len(parsed) == count and list(map(_line_id, parsed)) == ids:
        return all_matched_send(facts, parsed, _NOT_OK)
    if count == 1 and len(parsed) == 1 and parsed[0][1] is None:
        # One message, one line without a clientId (``ok;;1001``): it can only be
        # that message's line.
        line = parsed[0]
        out = [type(line)(line[0], ids[0], *line[2:])]
        stop = _stop_for(facts, out)
        return Verdict(out, fatal=stop, note=None if stop is None else str(stop))
    position = {cid: k for k, cid in enumerate(ids)}
    found: list[list[Any]] = [[] for _ in range(count)]
    stray: list[Any] = []
    for line in parsed:
        pos = position.get(line[1])
        if pos is None:
            stray.append(line)
        elif line not in found[pos]:
            found[pos].append(line)
    out = [None] * count
    missing = conflicts = 0
    unmatched_error: Optional[ProtocolError] = None
    for k, lines in enumerate(found):
        if len(lines) == 1:
            out[k] = lines[0]
            continue
        if lines:
            conflicts += 1
            error = ProtocolError(
                None, f"the reply has conflicting lines for this message: {_quote(facts, lines)}"
            )
            out[k] = SendFailure(_UNKNOWN, ids[k], None, error)
            continue
        missing += 1
        if unmatched_error is None:
            unmatched_error = ProtocolError(None, _unmatched_reason(facts, stray, bad))
        out[k] = SendFailure(_UNKNOWN, ids[k], None, unmatched_error)
    _warn_unmatched(facts, count, missing, conflicts, stray, bad)
    if facts.after_429:
        out = _accepted_earlier(facts, out)
    stop = _stop_for(facts, out)
    return Verdict(out, fatal=stop, note=None if stop is None else str(stop))


def _accepted_earlier(facts: RequestFacts, results: list[Any]) -> list[Any]:
    """After a 429, ``error-id-not-unique`` means the first attempt was taken after all."""
    out = []
    for r in results:
        if r[0] == _ID_NOT_UNIQUE:
            error = RequestRejected(
                _ID_NOT_UNIQUE,
                facts.shown,
            )
            r = SendFailure(_OK, r[1], None, error)
            log.warning(
                "SEND (%s): message %s answered error-id-not-unique when sent again after "
                "HTTP 429: it was accepted the first time (no provider id is known)",
                facts.shown,
                r[1],
            )
        out.append(r)
    return out


def _unmatched_reason(facts: RequestFacts, stray: list[Any], bad: list[ProtocolError]) -> str:
    reason = f"the reply has no line for this {facts.op.noun}"
    if stray:
        reason += f"; lines that match nothing sent: {_quote(facts, stray)}"
    if bad:
        reason += f"; unreadable lines: {_quote(facts, bad)}"
    return reason


def _warn_unmatched(
    facts: RequestFacts,
    count: int,
    missing: int,
    conflicts: int,
    stray: list[Any],
    bad: list[ProtocolError],
) -> None:
    label = facts.op.label
    if stray:
        log.warning(
            "%s reply (%s): %d line(s) match no item of the request: %s",
            label,
            facts.shown,
            len(stray),
            _quote(facts, stray),
        )
        if facts.own_ids and missing == count and all(_is_index(r[1]) for r in stray):
            log.warning(
                "%s reply (%s): the platform answered with message indexes, not the "
                "clientIds hpgfast sent; if this platform ignores clientIds, set "
                "Client(client_ids=False) (the outcome of these messages is unknown)",
                label,
                facts.shown,
            )
    if bad:
        log.warning(
            "%s reply (%s): %d unreadable line(s): %s",
            label,
            facts.shown,
            len(bad),
            _quote(facts, bad),
        )
    if conflicts:
        log.warning(
            "%s reply (%s): conflicting lines for %d item(s); their outcome is unknown",
            label,
            facts.shown,
            conflicts,
        )
    if missing:
        log.warning(
            "%s reply (%s): no line for %d of %d item(s); their outcome is unknown",
            label,
            facts.shown,
            missing,
            count,
        )


def _is_index(value: Optional[str]) -> bool:
    return value is not None and value.isascii() and value.isdigit()


def match_status_lines(
    facts: RequestFacts, parsed: list[Any], bad: list[ProtocolError]
) -> Verdict:
    """A STATUS reply's lines matched to the ids asked about."""
    ids = facts.ids
    parsed = masked_words(facts, parsed)
    if not bad and len(parsed) == len(ids) and list(map(_line_id, parsed)) == ids:
        return Verdict(parsed, clean=True)
    wanted = set(ids)
    by_id: dict[str, list[Any]] = {}
    stray: list[Any] = []
    for line in parsed:
        pid = line[1]
        if pid is not None and pid in wanted:
            lines = by_id.setdefault(pid, [])
            if line not in lines:
                lines.append(line)
        else:
            stray.append(line)
    out: list[Any] = []
    missing = conflicts = 0
    unmatched_error: Optional[ProtocolError] = None
    for pid in ids:
        lines = by_id.get(pid, [])
        if len(lines) == 1:
            out.append(lines[0])
        elif lines:
            conflicts += 1
            error = ProtocolError(
                None, f"the reply has conflicting lines for this id: {_quote(facts, lines)}"
            )
            out.append(StatusFailure(_UNKNOWN, pid, error=error))
        else:
            missing += 1
            if unmatched_error is None:
                unmatched_error = ProtocolError(None, _unmatched_reason(facts, stray, bad))
            out.append(StatusFailure(_UNKNOWN, pid, error=unmatched_error))
    _warn_unmatched(facts, len(ids), missing, conflicts, stray, bad)
    stop = _stop_for(facts, out)
    return Verdict(out, fatal=stop, note=None if stop is None else str(stop))
