"""The two operations of a connector, SEND and STATUS: everything in which they differ.

Strategy: the operation is chosen once, when a batch is made (``Exchange.batch``),
as one of two ``Operation`` objects; from there on the core asks the object (its
wire name, how its items are encoded and its reply read, what its made-up results
look like, whether a request that may have reached the platform may be sent
again) instead of comparing names. Adding a difference between the operations is
a field here, not another branch in the rules. The attributes are plain values and
functions, read on a module-level object: no per-message work is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from operator import itemgetter
from typing import Any, Callable, Optional

from .. import _wire
from ..codec import encode_send, encode_status, match_send, match_status, sent_ids
from ..exceptions import HPGError, ProtocolError
from ..sms import transliterate_messages
from ._matching import (
    all_matched_send,
    all_matched_status,
    match_send_lines,
    match_status_lines,
)
from ._results import SendFailure, StatusFailure
from ._rules import Read, RequestFacts, Verdict

__all__ = ["OPERATIONS", "SEND", "STATUS", "Encode", "Operation", "operation"]

#: ``encode(start, count, prefix)``: the query of the items from ``start`` (at most
#: ``count`` of them, all that fit when ``None``) and the index after the last.
Encode = Callable[[int, Optional[int], Optional[str]], tuple[bytes, int]]
#: ``read(body, ids, charset=None)``: a 200 reply's records checked against the ids
#: sent (``charset``: the reply's declared one, for free text that is not UTF-8).
Reader = Callable[..., Read]


@dataclass(frozen=True, eq=False)
class Operation:
    """One operation of a connector, and what the core does differently for it.

    ``name`` is the wire name (``_wire.SEND``, ``_wire.STATUS``): the target's path
    segment, and the ``op`` of ``RequestStarting``/``RequestFinished``. Compare
    operations by identity (``op is SEND``); there are two, made once.
    """

    #: The wire name: ``<connector URL><name>?...``.
    name: str
    #: How logs name its requests (``SEND``), an attempt whose outcome was lost, and
    #: one item in errors (``message``, ``id``).
    label: str
    failed: str
    noun: str
    #: A request that may have reached the platform may be sent again: asking for
    #: statuses changes nothing, sending a message twice may deliver it twice.
    repeatable: bool
    #: Whether hpgfast makes the ids the platform answers with (SEND's clientIds,
    #: ``Client(client_ids=...)``); STATUS asks with the caller's provider ids.
    makes_ids: bool
    #: The index of a reply line's free text (a SEND line's ``extra``, a STATUS
    #: line's reason); the fields between the code and it name the item and what
    #: became of it, so a line with none of them is a code for the whole request.
    text_field: int
    #: Whether any of a reply's records holds free text (one C-level pass).
    has_text: Callable[[list[Any]], bool]
    #: The fields of a reply line that are words of the protocol (the code; a
    #: STATUS line's status): one the platform is not known to send is masked where
    #: the password stands in it (``_matching.masked_words``).
    word_fields: tuple[int, ...]
    #: The items as they go out, from the caller's: ``(items, transliterated, holes)``
    #: (SEND: transliterated when asked; STATUS: the ``None`` ids left out).
    prepare: Callable[[Sequence[Any], bool], tuple[Sequence[Any], list[int], Optional[list[int]]]]
    #: ``encoder(items, max_bytes, default_subject, quote_brackets)``: the ``Encode``.
    encoder: Callable[[Sequence[Any], int, Optional[str], bool], Encode]
    #: ``reader(tz)``: what reads a 200 reply (``match_send``, ``match_status``).
    reader: Callable[[Optional[tzinfo]], Reader]
    #: ``ids(items, start, end, prefix)``: what the platform answers with for each
    #: item of a request (clientIds; the provider ids asked about).
    ids: Callable[[Sequence[Any], int, int, Optional[str]], list[Any]]
    #: ``failures(ids, code, error)``: the same made-up result for every item.
    failures: Callable[[list[Any], str, Optional[HPGError]], list[Any]]
    #: A 200 reply with a readable line per item, in order (``Match.ALL``).
    all_matched: Callable[[RequestFacts, list[Any], int], Verdict]
    #: Any other 200 reply's records and unreadable lines, matched to the items.
    match: Callable[[RequestFacts, list[Any], list[ProtocolError]], Verdict]

    def __repr__(self) -> str:
        return f"<hpgfast.core.{self.label}>"


# -- SEND ------------------------------------------------------------------------------


def _send_has_text(records: list[Any]) -> bool:
    # A SEND record holds a fourth item only when its line had an extra.
    return max(map(len, records)) > 3


def _send_prepare(
    items: Sequence[Any], transliterate: bool
) -> tuple[Sequence[Any], list[int], Optional[list[int]]]:
    if transliterate:
        # Only where Latin letters make the message need fewer segments.
        items, changed = transliterate_messages(items)
        return items, changed, None
    return items, [], None


def _send_encoder(
    items: Sequence[Any], max_bytes: int, default_subject: Optional[str], quote_brackets: bool
) -> Encode:
    def encode(start: int, count: Optional[int], prefix: Optional[str] = None) -> tuple[bytes, int]:
        return encode_send(
            items,
            start=start,
            max_bytes=max_bytes,
            max_count=count,
            default_subject=default_subject,
            quote_brackets=quote_brackets,
            id_prefix=prefix,
        )

    return encode


def _send_reader(tz: Optional[tzinfo]) -> Reader:
    # match_*: the reader also checks the ids against those sent, so the usual
    # reply needs no second walk over its records in Python.
    return match_send


def _send_failures(ids: list[Any], code: str, error: Optional[HPGError]) -> list[Any]:
    return [SendFailure(code, cid, None, error) for cid in ids]


SEND = Operation(
    name=_wire.SEND,
    label="SEND",
    failed="outcome unknown",
    noun="message",
    repeatable=False,
    makes_ids=True,
    text_field=3,
    has_text=_send_has_text,
    word_fields=(0,),
    prepare=_send_prepare,
    encoder=_send_encoder,
    reader=_send_reader,
    ids=sent_ids,  # the codec's, called directly: no Python frame per request
    failures=_send_failures,
    all_matched=all_matched_send,
    match=match_send_lines,
)


# -- STATUS ----------------------------------------------------------------------------

_reason = itemgetter(4)


def _status_has_text(records: list[Any]) -> bool:
    # A reason, or a line read tolerantly (a sixth item: its bytes).
    return any(map(_reason, records)) or max(map(len, records)) > 5


def _status_prepare(
    items: Sequence[Any], transliterate: bool
) -> tuple[Sequence[Any], list[int], Optional[list[int]]]:
    if None in items:
        # An accepted message without a provider id cannot be asked about: it gets a
        # failure result of its own and the rest of the batch goes out as usual.
        holes = [i for i, pid in enumerate(items) if pid is None]
        return [pid for pid in items if pid is not None], [], holes
    return items, [], None


def _status_encoder(
    items: Sequence[Any], max_bytes: int, default_subject: Optional[str], quote_brackets: bool
) -> Encode:
    def encode(start: int, count: Optional[int], prefix: Optional[str] = None) -> tuple[bytes, int]:
        return encode_status(
            items, start=start, max_bytes=max_bytes, max_count=count, quote_brackets=quote_brackets
        )

    return encode


def _status_reader(tz: Optional[tzinfo]) -> Reader:
    def read(body: bytes, ids: list[Any], charset: Optional[str] = None) -> Read:
        return match_status(body, ids, tz=tz, charset=charset)

    return read


def _status_ids(items: Sequence[Any], start: int, end: int, prefix: Optional[str]) -> list[Any]:
    return list(items[start:end])


def _status_failures(ids: list[Any], code: str, error: Optional[HPGError]) -> list[Any]:
    return [StatusFailure(code, pid, error=error) for pid in ids]


STATUS = Operation(
    name=_wire.STATUS,
    label="STATUS",
    failed="failed",
    noun="id",
    repeatable=True,
    makes_ids=False,
    text_field=4,
    has_text=_status_has_text,
    word_fields=(0, 2),
    prepare=_status_prepare,
    encoder=_status_encoder,
    reader=_status_reader,
    ids=_status_ids,
    failures=_status_failures,
    all_matched=all_matched_status,
    match=match_status_lines,
)

#: Both operations, by wire name.
OPERATIONS = {op.name: op for op in (SEND, STATUS)}


def operation(op: Any) -> Operation:
    """``op`` as an ``Operation``: itself, or the one its wire name names.

    Raises:
        ValueError: ``op`` is neither.
    """
    if isinstance(op, Operation):
        return op
    try:
        return OPERATIONS[op]
    except (KeyError, TypeError):
        raise ValueError(f"op must be SEND or STATUS (or 'send', 'status'), got {op!r}") from None
