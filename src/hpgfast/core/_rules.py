"""What an attempt means for each message of its request: the outcome table, once.

Strategy: every rule is a function of one request's facts (its items, the ids the
platform answers with, and one ``Reply`` or ``Failure``) that returns a
``Verdict``: the result of each item, whether the attempt may be repeated, and
whether the batch must stop. Nothing here keeps state, reads a clock or does I/O,
so the table of the README is unit-tested row by row without sockets, and every
transport gets the same answers.

======================================  ===============================  ==========================
what the transport saw                  SEND                             STATUS
======================================  ===============================  ==========================
a reply line for the item               that line                        that line
``CONNECT`` (no byte left)              repeat, then ``not-sent`` and    same
                                        the batch is taken to be down
``SENT``/``CUT``, HTTP 5xx/408/429,     ``unknown``, never repeated      repeat, then ``unknown``
an unreadable reply, a missing line
``TLS``, HTTP 414/431                   raise; items ``not-sent``        same
``error-auth``                          raise ``AuthError``              same
a whole-request code line               that code for every item         same
any other 4xx                           raise ``HTTPStatusError``;       same
                                        items ``unknown``
======================================  ===============================  ==========================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Callable, NamedTuple, Optional

from .._wire import Code
from ..exceptions import (
    AuthError,
    HPGError,
    HTTPStatusError,
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
)
from ._events import CONNECT, TLS, Failure, Reply
from ._results import SendFailure, StatusFailure

__all__ = ["TRANSIENT_STATUSES", "Verdict", "judge"]

log = logging.getLogger("hpgfast.core")

#: HTTP statuses after which a STATUS request is repeated (besides transport errors).
TRANSIENT_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
#: HTTP statuses that say our request line is longer than the server takes.
TOO_LARGE_STATUSES = frozenset((414, 431))
#: Text of a non-200 reply kept as the error's description.
DESCRIPTION_CHARS = 2000

_OK = Code.OK
_NOT_SENT = Code.NOT_SENT
_UNKNOWN = Code.UNKNOWN
_ERROR_AUTH = Code.ERROR_AUTH
_REQUEST_LEVEL = Code.REQUEST_LEVEL
_line_id = itemgetter(1)  # clientId of a SEND line, providerId of a STATUS line

#: How the warnings of a failed request name it, an unreadable outcome, and its items.
_LOG_LABELS = {
    "send": ("SEND", "outcome unknown", "message(s)"),
    "status": ("STATUS", "failed", "id(s)"),
}


class Verdict(NamedTuple):
    """What one attempt means.

    ``results``: one result per item of the request, as things stand after this
    attempt. ``retryable``: the attempt may be repeated (the policy decides whether
    it is). ``fatal``: an error that stops the batch and is raised to the caller.
    ``down``: the platform could not be reached; the rest of the batch is not tried.
    ``note``: what to log at WARNING if the verdict stands (at INFO if repeated).
    """

    results: list[Any]
    retryable: bool = False
    fatal: Optional[BaseException] = None
    down: Optional[HPGError] = None
    note: Optional[str] = None


class RequestFacts(NamedTuple):
    """What the rules need to know of one request."""

    op: str
    items: Sequence[Any]
    start: int
    end: int
    ids: list[Any]  # what the platform answers with: clientIds (SEND), provider ids (STATUS)
    shown: str  # the redacted URL
    parse: Callable[[bytes], list[Any]]
    scrub: Callable[[str], str]


def fill(facts: RequestFacts, code: str, error: Optional[HPGError]) -> list[Any]:
    """The same made-up result for every item of a request."""
    if facts.op == "send":
        return [SendFailure(code, cid, None, error) for cid in facts.ids]
    return [StatusFailure(code, pid, error=error) for pid in facts.ids]


def judge(facts: RequestFacts, event: Any) -> Verdict:
    """The verdict on one attempt of a request: a ``Reply`` or a ``Failure``."""
    if type(event) is Reply:
        if event.status == 200:
            return _judge_body(facts, event.body)
        return _judge_status(facts, event)
    return _judge_failure(facts, event)


def _judge_failure(facts: RequestFacts, failure: Failure) -> Verdict:
    error = failure.error
    count = facts.end - facts.start
    label, failed, noun = _LOG_LABELS[facts.op]
    if failure.kind == CONNECT:
        note = f"{label} not sent, {count} {noun}: {error}"
        return Verdict(fill(facts, _NOT_SENT, error), retryable=True, down=error, note=note)
    if failure.kind == TLS:
        return Verdict(fill(facts, _NOT_SENT, error), fatal=error)
    note = f"{label} {failed}, {count} {noun}: {error}"
    return Verdict(fill(facts, _UNKNOWN, error), retryable=facts.op == "status", note=note)


def _judge_status(facts: RequestFacts, reply: Reply) -> Verdict:
    status = reply.status
    # Redacted before it is cut: a cut through the password would leave a prefix of
    # it that no longer matches the Redactor. The body is capped by the transport
    # at max_reply_bytes and this path is rare, so the whole of it is scrubbed.
    description = facts.scrub(reply.body.decode("utf-8", "replace")).strip()
    description = description[:DESCRIPTION_CHARS]
    if status in TOO_LARGE_STATUSES:
        # The server's limit is below ours; nothing of this request was processed.
        error: HTTPStatusError = RequestTooLarge(status, description, facts.shown)
        return Verdict(fill(facts, _NOT_SENT, error), fatal=error)
    error = HTTPStatusError(status, description, facts.shown)
    if 400 <= status < 500 and status not in TRANSIENT_STATUSES:
        # 401, 403, 404...: a wrong URL or a gateway refusing us; configuration.
        return Verdict(fill(facts, _UNKNOWN, error), fatal=error)
    # HTTP 500 says processing failed, but the platform may have taken some of the
    # messages before failing: conservatively unknown, never resent.
    return Verdict(
        fill(facts, _UNKNOWN, error),
        retryable=facts.op == "status" and status in TRANSIENT_STATUSES,
        note=f"{error}: {facts.end - facts.start} item(s) with outcome unknown",
    )


def _judge_body(facts: RequestFacts, body: bytes) -> Verdict:
    try:
        parsed = facts.parse(body)
    except ProtocolError as error:
        label, failed, noun = _LOG_LABELS[facts.op]
        note = f"{label} {failed}, {facts.end - facts.start} {noun}: {error}"
        return Verdict(fill(facts, _UNKNOWN, error), retryable=facts.op == "status", note=note)
    if facts.op == "send":
        return _match_send(facts, parsed)
    return _match_status(facts, parsed)


def _rejected(facts: RequestFacts, code: str) -> Verdict:
    """The platform refused a whole request with a single code line."""
    if code == _ERROR_AUTH:
        auth = AuthError(code, facts.shown)
        return Verdict(fill(facts, code, auth), fatal=auth)
    error = RequestRejected(code, facts.shown)
    return Verdict(fill(facts, code, error), note=str(error))


def _match_send(facts: RequestFacts, parsed: list[Any]) -> Verdict:
    ids = facts.ids
    count = len(ids)
    # The usual case: one line per message, in request order.
    if len(parsed) == count and list(map(_line_id, parsed)) == ids:
        return Verdict(parsed)
    if len(parsed) == 1:
        line = parsed[0]
        if line[1] is None and line[2] is None and line[0] in _REQUEST_LEVEL:
            return _rejected(facts, line[0])
    if parsed and all(r[0] == _ERROR_AUTH for r in parsed):
        return _rejected(facts, _ERROR_AUTH)
    position = {cid: k for k, cid in enumerate(ids)}
    out: list[Any] = [None] * count
    stray = 0
    for line in parsed:
        pos = position.get(line[1])
        if pos is None or out[pos] is not None:
            stray += 1
        else:
            out[pos] = line
    missing = out.count(None)
    if stray:
        log.warning(
            "SEND reply (%s): %d line(s) match no message of the request, or repeat one;"
            " ignored",
            facts.shown,
            stray,
        )
    if missing:
        error = ProtocolError(None, "the reply has no line for this message")
        log.warning(
            "SEND reply (%s): no line for %d of %d message(s); their outcome is unknown",
            facts.shown,
            missing,
            count,
        )
        for k in range(count):
            if out[k] is None:
                out[k] = SendFailure(_UNKNOWN, ids[k], None, error)
    return Verdict(out)


def _match_status(facts: RequestFacts, parsed: list[Any]) -> Verdict:
    ids = facts.ids
    if len(parsed) == len(ids) and list(map(_line_id, parsed)) == ids:
        return Verdict(parsed)
    if len(parsed) == 1:
        line = parsed[0]
        if line[1] is None and line[0] in _REQUEST_LEVEL:
            return _rejected(facts, line[0])
    wanted = set(ids)
    by_id: dict[str, Any] = {}
    stray = 0
    for line in parsed:
        pid = line[1]
        if pid is not None and pid in wanted and pid not in by_id:
            by_id[pid] = line
        else:
            stray += 1
    if stray:
        log.warning(
            "STATUS reply (%s): %d line(s) match no id asked for, or repeat one; ignored",
            facts.shown,
            stray,
        )
    error: Optional[ProtocolError] = None
    out: list[Any] = []
    for pid in ids:
        found = by_id.get(pid)
        if found is None:
            if error is None:
                error = ProtocolError(None, "the reply has no line for this id")
            found = StatusFailure(_UNKNOWN, pid, error=error)
        out.append(found)
    if error is not None:
        log.warning("STATUS reply (%s): some ids got no line", facts.shown)
    return Verdict(out)
