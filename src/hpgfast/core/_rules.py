"""What an attempt means for each message of its request: the outcome table, once.

Strategy: every rule is a function of one request's facts (its items, the ids the
platform answers with, and one ``Reply`` or ``Failure``) that returns a
``Verdict``: the result of each item, whether the attempt may be repeated and
after how long, whether the batch must stop, and whether the connection may be
used again. Nothing here keeps state, reads a clock or does I/O, so the table
(``docs/outcomes.md``) is unit-tested row by row without sockets, and every
transport gets the same answers.

Each outcome says what the user may do next: ``ok`` (never send again), a
platform code (the platform refused this message: fix it), ``not-sent`` (the
platform did not process it: safe to send again), ``unknown`` (it may be on a
phone: a person decides). When in doubt, ``unknown``: never ``ok``, never
``not-sent``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from .._fields import charset_of, read_text
from .._records import StatusResult
from .._redact import redact_bytes
from .._wire import Code, Match, Status
from ..exceptions import (
    AccountError,
    AuthError,
    HPGError,
    HTTPStatusError,
    PlatformUnavailable,
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
    UnexpectedReply,
)
from ._events import CONNECT, PROXY, TLS, Failure, Reply
from ._retry_after import retry_after_seconds

if TYPE_CHECKING:
    from ._operations import Operation

__all__ = [
    "TRANSIENT_STATUSES",
    "Read",
    "RequestFacts",
    "Verdict",
    "fill",
    "judge",
    "plain_results",
    "unavailable",
]

log = logging.getLogger("hpgfast.core")

#: HTTP statuses after which a STATUS request is repeated (besides transport errors).
TRANSIENT_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
#: HTTP statuses that say our request line is longer than the server takes.
TOO_LARGE_STATUSES = frozenset((414, 431))
#: A rate limiter in front of the platform answered before the platform saw it.
TOO_MANY_REQUESTS = 429
#: Text of a non-200 reply kept as the error's description.
DESCRIPTION_CHARS = 2000
#: Reply lines quoted on an error or in a warning, at most (each cut to 200 chars).
QUOTED_LINES = 5
#: Characters of a reply that is not HPG quoted on its ``UnexpectedReply`` (a
#: header value: 300), after the password is masked.
UNEXPECTED_BODY_CHARS = 200
HEADER_CHARS = 300

_OK = Code.OK
_ALL = Match.ALL
_NOT_OK = Match.NOT_OK
_FREE_TEXT = Match.FREE_TEXT
_NOT_SENT = Code.NOT_SENT
_UNKNOWN = Code.UNKNOWN
_ERROR_AUTH = Code.ERROR_AUTH
_ID_NOT_UNIQUE = Code.ERROR_ID_NOT_UNIQUE
_code = itemgetter(0)  # of any line
_line_id = itemgetter(1)  # clientId of a SEND line, providerId of a STATUS line
_status = itemgetter(2)  # of a STATUS line
#: The codes and statuses the platform is known to send (statuses also in upper
#: case, as one variant answers): never masked, though a short password such as
#: ``ok`` or ``delivered`` stands in them. They say nothing of a password, and an
#: outcome is read from them. Any other code or status read off a reply is masked
#: where the password stands in it (``_matching.masked_words``).
KNOWN_STATUSES = frozenset(
    {None} | {word for status in (*Status.ALL, *Status.FINAL) for word in (status, status.upper())}
)
KNOWN_WORDS = KNOWN_STATUSES | {*Code.PLATFORM, _NOT_SENT, _UNKNOWN}


class Verdict(NamedTuple):
    """What one attempt means.

    ``results``: one result per item of the request, as things stand after this
    attempt. ``retryable``: the attempt may be repeated (the policy decides whether
    it is). ``wait``: seconds the platform asked to wait first (``Retry-After``),
    for this request and every request of the batch. ``fatal``: an error that stops
    the batch and is raised. ``down``: the platform could not be reached; the rest
    of the batch is not tried. ``note``: what to log at WARNING if the verdict
    stands (at INFO if repeated). ``clean``: a 200 whose every line matched one
    item: only then may the connection serve another request, so that a stale or
    late reply can never be read as the next request's.
    """

    results: list[Any]
    retryable: bool = False
    fatal: Optional[BaseException] = None
    down: Optional[HPGError] = None
    note: Optional[str] = None
    clean: bool = False
    wait: Optional[float] = None


class RequestFacts(NamedTuple):
    """What the rules need to know of one request."""

    op: Operation  # SEND or STATUS: what differs between them (``_operations``)
    start: int
    end: int
    ids: list[Any]  # what the platform answers with: clientIds (SEND), provider ids (STATUS)
    own_ids: bool  # the ids are hpgfast's own, sent with the request (SEND)
    shown: str  # the redacted URL
    # match_send/match_status of the codec (the ids are ``ids``; ``charset=`` a reply's
    # declared charset): records, errors, flags
    read: Callable[..., tuple[list[Any], list[ProtocolError], int]]
    scrub: Callable[[str], str]
    account_stop: frozenset[str]
    retry_on_429: bool
    retry_after_max: float
    after_429: bool  # an earlier attempt of this request was answered 429


def fill(facts: RequestFacts, code: str, error: Optional[HPGError]) -> list[Any]:
    """The same made-up result for every item of a request."""
    return facts.op.failures(facts.ids, code, error)


#: What ``RequestFacts.read`` returns: the records, the unreadable lines, the flags.
Read = tuple[list[Any], list[ProtocolError], int]


def plain_results(read: Read) -> Optional[list[Any]]:
    """The results of a 200 reply read whole and plain, or None: ``judge`` decides.

    Plain: one readable line per item, each with its item's id, in order
    (``Match.ALL``), every code ``ok`` and no free text. Its verdict is always the
    clean one (the records are the results, the connection may serve again), for
    SEND and STATUS alike, so a transport's core needs no facts for it.
    """
    if read[2] != _ALL:
        return None
    records = read[0]
    if (
        records
        and type(records[0]) is StatusResult
        and not KNOWN_STATUSES.issuperset(map(_status, records))
    ):
        # A status none the platform is known to send: the rules look at it (it may
        # hold the password).
        return None
    return records


def judge(
    facts: RequestFacts, event: Any, read: Optional[Read] = None, wall: Optional[float] = None
) -> Verdict:
    """The verdict on one attempt of a request: a ``Reply`` or a ``Failure``.

    ``read``: what ``facts.read`` made of a 200 reply's body, if already read.
    ``wall``: the wall-clock time the reply came, for a ``Retry-After`` date.
    """
    if type(event) is Reply:
        if event.status == 200:
            return _judge_body(facts, event.body, read, reply=event)
        return _judge_status(facts, event, wall)
    return _judge_failure(facts, event)


# -- a reply that is not HPG at all ----------------------------------------------------------


#: Control characters (C0 but tab and newline, DEL, C1) and invisible format
#: characters a reply's text may hold: shown escaped in an error, so that printing
#: the error cannot drive a terminal nor hide what it says.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]"
)


#: The code of a body's first line: a BOM, blank lines and blanks before it.
_FIRST_CODE = re.compile(rb"(?:\xef\xbb\xbf)?\s*([0-9A-Za-z._-]+)[ \t\r]*(?:;|\n|$)")
#: A line with a platform code and fields after it (``ok;``, ``error-...;``), though
#: a field of it could not be read: an HPG reply all the same.
_HPG_LINE = re.compile(rb"(?m)^(?:\xef\xbb\xbf)?[ \t]*(?:ok|error-[0-9A-Za-z._-]*);")


def reply_text(facts: RequestFacts, reply: Reply) -> str:
    """A reply's body as an error shows it: decoded by the field rule (``_fields``),
    the password masked (before anything is cut or escaped, so that no form of it is
    broken up), control and invisible characters escaped, stripped. The bytes are
    masked first in every encoding the body could be in (``redact_bytes``): read
    as UTF-8 with U+FFFD, a windows-1251 echo would show its ASCII characters."""
    charset = charset_of(reply.content_type)
    body = bytes(reply.body)
    if not body.isascii():  # (ASCII reads the same in all: the text's masking does)
        body = redact_bytes(facts.scrub, body, charset)
    text = facts.scrub(read_text(body, charset))
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text).strip()


def _not_hpg(facts: RequestFacts, reply: Reply) -> Verdict:
    """A reply no HPG platform gives (a redirect, a login page): the batch stops here.

    The URL reaches something else than the platform (a captive portal, a proxy
    that wants a login, an http-to-https redirect): every further request would meet
    the same reply, with the password, so none is sent. A redirect is never
    followed. The request's items are ``unknown``, STATUS ids too: as after any
    STATUS that got no answer, asking again is safe.
    """
    status = reply.status

    def shown(value: Optional[str], limit: int) -> Optional[str]:
        # Masked before it is cut: a cut through the password would leave a prefix
        # of it that no longer matches the redactor.
        return None if value is None else facts.scrub(value)[:limit]

    # The body is capped at max_reply_bytes by the transport and this path ends a
    # batch, so the whole of it is masked before the first characters are kept.
    body = reply_text(facts, reply)
    if 300 <= status < 400:
        why = "a redirect is never followed: give the platform's own URL (https, its host)"
    elif status == 200 and not body:
        why = "an empty body: no HPG line"
    elif status == 200:
        why = "no line reads as HPG: a login page, a proxy or a portal answered"
    else:
        why = "no HPG platform answers with this status"
    error = UnexpectedReply(
        status,
        why,
        facts.shown,
        content_type=shown(reply.content_type, HEADER_CHARS),
        location=shown(reply.location, HEADER_CHARS),
        body=body[:UNEXPECTED_BODY_CHARS],
    )
    return Verdict(fill(facts, _UNKNOWN, error), fatal=error, note=str(error))


def _reads_as_hpg(
    op: Operation, records: list[Any], bad: list[ProtocolError], body: bytes
) -> bool:
    """Whether a 200's lines are an HPG reply (``records``: the lines read as HPG lines,
    ``bad``: the unreadable ones, ``body``: all of it).

    An HPG line is one of the platform's codes, ``ok`` or ``error-...`` (as the
    specification writes them: lower case), with ``;`` fields after it; a line of
    prose with a ``;`` in it (``Error;please try again later``) is none. A line that
    is one but has a field that cannot be read (an id in another charset) is one
    all the same: it costs only its item. A code alone on a line is the platform's
    answer for a whole request only where no unreadable line stands beside it: a
    word alone on a line of a web page (``ok``, ``Login``) is no reply of the
    platform's. A body with no line at all (empty, or blank lines) is not an HPG
    reply either: no platform answers a request so.
    """
    if any(_platform_code(line) and not _code_only(op, line) for line in records):
        return True
    if bad and _HPG_LINE.search(body) is not None:
        return True
    return not bad and any(map(_platform_code, records))


def _platform_code(line: Any) -> bool:
    """Whether a line's code is one the platform gives: ``ok`` or ``error-...``."""
    code: str = line[0]
    return code == "ok" or code.startswith("error-")


def unavailable(facts: RequestFacts, verdict: Verdict, reply: Reply, count: int) -> Verdict:
    """``verdict`` on a 5xx reply that is the ``count``-th 5xx in a row: the batch stops.

    The items keep what the reply made of them (``unknown``: a SEND answered 5xx is
    never repeated); no request starts after this one.
    """
    description = reply_text(facts, reply)
    error = PlatformUnavailable(reply.status, description[:DESCRIPTION_CHARS], facts.shown, count)
    return verdict._replace(retryable=False, fatal=error, note=str(error))


# -- no reply ----------------------------------------------------------------------------


def _judge_failure(facts: RequestFacts, failure: Failure) -> Verdict:
    error = failure.error
    count = facts.end - facts.start
    op = facts.op
    if failure.kind == CONNECT:
        note = f"{op.label} not sent, {count} {op.noun}(s): {error}"
        return Verdict(fill(facts, _NOT_SENT, error), retryable=True, down=error, note=note)
    if failure.kind == TLS or failure.kind == PROXY:
        return Verdict(fill(facts, _NOT_SENT, error), fatal=error)
    note = f"{op.label} {op.failed}, {count} {op.noun}(s): {error}"
    return Verdict(fill(facts, _UNKNOWN, error), retryable=op.repeatable, note=note)


# -- an HTTP status other than 200 -----------------------------------------------------------


def _stop_code(facts: RequestFacts, body: bytes) -> Optional[str]:
    """The account-stop code a non-200 reply's body is, as an HPG line: its first
    line's code (``error-auth``, ``error-insufficient-balance;...``; a BOM, CR and
    blanks around it as a 200's reader takes them), or None."""
    match = _FIRST_CODE.match(body)
    if match is None:
        return None
    code = match.group(1).decode("ascii")
    return code if code in facts.account_stop else None


def _judge_status(facts: RequestFacts, reply: Reply, wall: Optional[float]) -> Verdict:
    status = reply.status
    if not 400 <= status < 600:
        # 1xx, a 2xx other than 200, a redirect: no HPG platform answers so.
        return _not_hpg(facts, reply)
    # Redacted before it is cut: a cut through the password would leave a prefix of
    # it that no longer matches the Redactor. The body is capped by the transport
    # at max_reply_bytes and this path is rare, so the whole of it is scrubbed.
    code = _stop_code(facts, reply.body)
    if code is not None:
        # "error-auth" or "error-insufficient-balance" as a 403's or a 500's text:
        # the platform says why it processed nothing (the spec's errors come as
        # a 500 with a description), so the batch stops as an account stop.
        return _whole_request(facts, code, [])
    description = reply_text(facts, reply)[:DESCRIPTION_CHARS]
    if status in TOO_LARGE_STATUSES:
        # The server's limit is below ours; nothing of this request was processed.
        error: HTTPStatusError = RequestTooLarge(status, description, facts.shown)
        return Verdict(fill(facts, _NOT_SENT, error), fatal=error)
    error = HTTPStatusError(status, description, facts.shown)
    count = facts.end - facts.start
    if status == TOO_MANY_REQUESTS and (facts.op.repeatable or facts.retry_on_429):
        # A rate limiter in front of the platform answers 429 before the platform
        # sees the request: nothing was processed. The one named exception to "a
        # SEND is repeated only when the connection could not be opened".
        return Verdict(
            fill(facts, _NOT_SENT, error),
            retryable=True,
            wait=retry_after_seconds(reply.retry_after, facts.retry_after_max, wall),
            note=f"{error}: {count} item(s) not sent",
        )
    if 400 <= status < 500 and status not in TRANSIENT_STATUSES:
        # 401, 403, 404...: a wrong URL or a gateway refusing us; configuration.
        return Verdict(fill(facts, _UNKNOWN, error), fatal=error)
    # HTTP 500 says processing failed, but the platform may have taken some of the
    # messages before failing: conservatively unknown, never resent. So is a 503
    # from a balancer, a 429 with retry_on_429=False, a 408. A Retry-After on a 5xx
    # or a 429 speaks for the platform as a whole: the batch pauses (``wait``), and
    # a STATUS is repeated no sooner.
    wait = None
    if status >= 500 or status == TOO_MANY_REQUESTS:
        wait = retry_after_seconds(reply.retry_after, facts.retry_after_max, wall)
    return Verdict(
        fill(facts, _UNKNOWN, error),
        retryable=facts.op.repeatable and status in TRANSIENT_STATUSES,
        note=f"{error}: {count} item(s) with outcome unknown",
        wait=wait,
    )


# -- a 200 reply ----------------------------------------------------------------------------


def _quote(facts: RequestFacts, lines: Sequence[Any]) -> str:
    """A few reply lines as a person reads them (redacted), for errors and warnings."""
    shown = []
    for line in lines[:QUOTED_LINES]:
        if isinstance(line, ProtocolError):
            shown.append(facts.scrub(str(line)))
        else:
            # The fields up to the free text: not a record's raw bytes (``_scrubbed``
            # masks them, but their repr would show a password's other bytes escaped).
            fields = line[: facts.op.text_field + 1]
            text = ";".join("" if f is None else str(f) for f in fields)
            shown.append(facts.scrub(text)[:200])
    more = f" (+{len(lines) - QUOTED_LINES} more)" if len(lines) > QUOTED_LINES else ""
    # Once more as a whole: an echo cut over two lines is masked only where both
    # pieces are seen together.
    return facts.scrub("; ".join(repr(s) for s in shown)) + more


def _scrubbed(
    facts: RequestFacts,
    records: list[Any],
    flagged: bool = False,
    charset: Optional[str] = None,
) -> list[Any]:
    """Records whose free text (a STATUS reason, a SEND line's extra fields) held the
    password, masked: what is stored and shown (journal, report, CSV) never holds it.

    ``flagged``: the reader said some record holds free text (``Match.FREE_TEXT``).
    ``charset``: the reply's declared one (``_fields.charset_of``), which the free
    text may have been read in.
    """
    # Unless the reader said so, a C-level pass first: most replies carry no free
    # text at all (SEND lines with no extra field, STATUS lines of delivered
    # messages), and pay nothing more.
    if not flagged and not facts.op.has_text(records):
        return records
    field = facts.op.text_field
    out = records
    # A text that repeats on the lines of a reply (a part count on every SEND line,
    # the same reason on many STATUS lines) is read by the redactor once.
    done: dict[str, str] = {}
    for k, record in enumerate(records):
        if len(record) > field and record[field] is not None:
            text = record[field]
            masked = done.get(text)
            if masked is None:
                masked = done[text] = facts.scrub(text)
            if masked != text:
                if out is records:
                    out = list(records)
                record = out[k] = type(record)(*record[:field], masked, *record[field + 1 :])
        if len(record) > field + 1:
            # The line's bytes, kept when a field was read tolerantly (``.raw``):
            # masked in every encoding its text could have been read in (UTF-8, the
            # declared charset, the 8-bit ones), as the reason may have been read in
            # one (the declared windows-1251) and the bytes are the password's in it.
            raw = record[field + 1]
            masked_raw = redact_bytes(facts.scrub, raw, charset)
            if masked_raw != raw:
                # The password was on the line, maybe over two fields (a ';' in it put
                # a piece where the time goes, the rest in the free text, each too
                # short to be recognised): the free text is read again from the
                # masked line, where no piece of it is left.
                parts = masked_raw.split(b";", field)
                free = parts[field].rstrip(b";") if len(parts) > field else b""
                free_text = facts.scrub(read_text(free, charset)) or None
                if out is records:
                    out = list(records)
                out[k] = type(record)(*record[:field], free_text, masked_raw)
    return out


def _reworded(facts: RequestFacts, body: bytes, bad: list[ProtocolError]) -> list[ProtocolError]:
    """The reader's notes on bad lines, made safe to show.

    The codec quotes the first bytes of a bad line, and a cut through an echoed
    password would leave a prefix no redactor can recognise. So the quote is made
    again here from the whole line, redacted first and cut after.
    """
    lines = bytes(body).split(b"\n")
    out: list[ProtocolError] = []
    for error in bad:
        head = error.reason.split("'", 1)[0].split('"', 1)[0].rstrip(" :").removesuffix(" in")
        number = error.line
        if number is not None and 0 < number <= len(lines) and len(out) < QUOTED_LINES:
            line = lines[number - 1].strip(b" \t\r")
            if not line.isascii():  # a windows-1251 echo, read as UTF-8, shows its ASCII
                line = redact_bytes(facts.scrub, line)
            raw = line.decode("utf-8", "replace")
            out.append(ProtocolError(number, f"{head}: {facts.scrub(raw)[:200]!r}"))
        else:
            out.append(ProtocolError(number, head))
    return out


def _unsplit(facts: RequestFacts, body: bytes) -> Optional[bytes]:
    """``body`` with an echo of the password that runs over lines masked whole, or
    ``None`` when there is none.

    The reply is read line by line, and each line's text is masked on its own; a
    password a server echoes in quoted-printable with a soft line break inside it
    (``Pa=7Ess=`` and ``=2Aw...`` on the next line) matches on no single line, and
    would show in pieces. The redactor keeps the line count when it masks, so the
    masked body reads with the same line numbers.

    Only the lines such an echo touched are taken masked: a line the redactor masks
    alone is left as it is, for the masking of its free text line by line, which
    never rewrites an id, nor a code or status the platform is known to send (a
    short or numeric password, ``1001``,
    would otherwise turn a provider id ``1001`` into ``***`` and the reply into one
    that matches nothing).
    """
    raw = bytes(body)
    if b"=\n" not in raw and b"=\r\n" not in raw:
        return None
    text = raw.decode("utf-8", "surrogateescape")
    masked = facts.scrub(text)
    if masked == text:
        return None
    lines, masked_lines = text.split("\n"), masked.split("\n")
    if len(lines) == len(masked_lines):
        masked = "\n".join(
            after if after != facts.scrub(before) else before
            for before, after in zip(lines, masked_lines)
        )
        if masked == text:
            return None
    # (Lines counted otherwise, which the redactor never does: the whole, masked.)
    return masked.encode("utf-8", "surrogateescape")


def _judge_body(
    facts: RequestFacts,
    body: bytes,
    read: Optional[Read] = None,
    *,
    whole: bool = False,
    reply: Optional[Reply] = None,
) -> Verdict:
    charset = charset_of(None if reply is None else reply.content_type)
    if read is None:
        if charset is None:
            read = facts.read(body, facts.ids)
        else:
            read = facts.read(body, facts.ids, charset=charset)
    records, bad, flags = read
    if not flags & _ALL and not whole:
        # Not the usual reply: a rare path, where the body is worth a look as a whole.
        masked = _unsplit(facts, body)
        if masked is not None:
            return _judge_body(facts, masked, whole=True, reply=reply)
    if flags & _ALL and not (flags & _NOT_OK and not all(map(_platform_code, records))):
        # The usual reply, as the reader found it: a readable line per item, each with
        # the item's id, in order (and each code the platform's: "OK" is none). Only
        # what its flags name needs another look.
        if flags & _FREE_TEXT:
            records = _scrubbed(facts, records, True, charset)
        return facts.op.all_matched(facts, records, flags)
    if bad:
        bad = _reworded(facts, body, bad)
    if records:
        records = _scrubbed(facts, records, charset=charset)
    stop = _stop_for(facts, records)
    if not _reads_as_hpg(facts.op, records, bad, body):
        if stop is not None:
            # An account-stop code is the platform's, wherever it stands.
            return _whole_request(facts, stop.code, bad)
        return _not_hpg(facts, Reply(200, body) if reply is None else reply)
    if len(records) == 1 and _code_only(facts.op, records[0]):
        return _whole_request(facts, records[0][0], bad)
    verdict = facts.op.match(facts, records, bad)
    if stop is not None and verdict.fatal is None:
        # An account-stop code on a line that matched no item (a code-only line
        # beside the message lines): the platform said it all the same.
        return verdict._replace(fatal=stop, clean=False, note=str(stop))
    return verdict


def _code_only(op: Operation, line: Any) -> bool:
    """A line with a code and none of the fields that name an item and its fate."""
    return all(field is None for field in line[1 : op.text_field])


def _whole_request(facts: RequestFacts, code: str, bad: list[ProtocolError]) -> Verdict:
    """A reply of one code-only line: it speaks for every item of the request."""
    count = facts.end - facts.start
    if code == _ERROR_AUTH:
        auth = AuthError(code, facts.shown)
        return Verdict(fill(facts, _NOT_SENT, auth), fatal=auth)
    if code in facts.account_stop:
        stop = AccountError(code, facts.shown)
        return Verdict(fill(facts, _NOT_SENT, stop), fatal=stop, note=str(stop))
    # A code of no known form is masked where the password stands in it (a platform
    # that echoes it as its answer): the error shows it.
    error = RequestRejected(code if code in KNOWN_WORDS else facts.scrub(code), facts.shown)
    if code in Code.NOT_PROCESSED:
        # error-syntax (or an account code taken out of the stop set): the platform
        # processed none of the request.
        return Verdict(fill(facts, _NOT_SENT, error), note=f"{error}: {count} item(s) not sent")
    if code in Code.PER_MESSAGE and count == 1:
        # About the message, and there is only one: a plain rejection of it.
        return Verdict(fill(facts, code, error), clean=not bad)
    # error-system, a code hpgfast does not know, a bare "ok", or a per-message code
    # for a request of several messages: nobody can say what became of which one.
    return Verdict(
        fill(facts, _UNKNOWN, error),
        retryable=facts.op.repeatable,
        note=f"{error}: {count} item(s) with outcome unknown",
    )


def _stop_for(facts: RequestFacts, results: list[Any]) -> Optional[AccountError]:
    """An account-stop code on any message's line stops the batch after this request."""
    stop = facts.account_stop
    if stop.isdisjoint(map(_code, results)):  # the usual case, at C speed
        return None
    for r in results:
        if r[0] in stop:
            return AuthError(r[0], facts.shown) if r[0] == _ERROR_AUTH else AccountError(
                r[0], facts.shown
            )
    return None
