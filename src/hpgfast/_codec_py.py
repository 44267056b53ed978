"""The codec in pure Python: the reference twin of the compiled core ``_codec_c``.

Strategy: this module *is* the contract. It is written for clarity first and speed
second; the compiled core must return equal results and raise the same exception
types (with the same ``index``/``field`` or ``line``) on every input, which the
hypothesis tests check. The codec is sans-IO: messages in, query bytes out; reply
bytes in, records out. The rules, in the order both twins apply them:

encode_send(messages, start=s):
  for each message i = s, s+1, ... (stopping first when ``max_count`` are taken):
    1. structure: a tuple of 2 to 5 fields; every field of the right type; address,
       text and subject (or the default subject) and client_id non-empty; params a
       mapping or pairs of non-empty, non-reserved ``str`` names to ``str`` values;
    2. content: no lone surrogate, in field order address, text, subject,
       client_id, then each param name and value;
    3. size: when adding the message would pass ``max_bytes``, stop before it, or
       raise ``MessageTooLarge`` if it is the first of the request.
  Then, over the messages taken: no two share an effective client id (the
  ``client_id``; else, with ``id_prefix``, the id made for the message; else the
  index within the request, which is what the platform answers with when no
  clientId is sent).

Hostile types: what is sent is the data itself, never what a subclass says about
it. A ``str`` subclass counts as the exact ``str`` of its characters (its own
``__bool__``, ``__len__``, ``encode``, ``__str__``, ``__eq__`` or ``__hash__`` are
never asked, so a "falsy" value cannot slip through unescaped); a tuple subclass
message as the exact tuple of its items; ``start``, and integer limits, as the exact
``int`` that ``operator.index`` gives on Python 3.10+ (on 3.9 too: an ``int``
subclass counts for its value; a float ``start`` is a ``TypeError``); a
float limit as the exact ``float``. The batch is a sequence: a mapping or a ``str``
is a ``TypeError``. Types are told by the object's real type, not its ``__class__``.

parse_send / parse_status: lines are split on LF; each is stripped of spaces, tabs
and CR at both ends; blank lines are skipped; a UTF-8 BOM at the start is skipped.
The first line with a fault raises ``ProtocolError`` with its 1-based number.
The last field of a line is the rest of it, ``;`` included, less trailing ``;``s:
a SEND line's ``extra``, a STATUS line's reason. Faults are in the code, ids and
status only: a time in another shape than HPG's (read as ISO-8601, else ``None``)
or free text that is not UTF-8 (decoded by ``charset``, else with U+FFFD) costs
only that field, and the record then keeps the line's bytes as ``raw``
(``hpgfast._fields`` has the rules, and reads those fields for both twins).

read_send / read_status: the same, but each faulty line is returned as a
``ProtocolError`` beside the records, and reading goes on.

The readers live in ``_codec_py_read`` (this module imports them, so that
``_codec_py`` is the whole twin to its callers); the encoders are here.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union
from urllib.parse import quote

from . import _wire
from ._codec_py_read import (
    _type_name,
    match_send,
    match_status,
    parse_send,
    parse_status,
    read_send,
    read_send_columns,
    read_status,
)
from ._records import Message, Params
from .exceptions import MessageError, MessageTooLarge, MessageTypeError

__all__ = [
    "encode_params",
    "encode_send",
    "encode_status",
    "match_send",
    "match_status",
    "parse_send",
    "parse_status",
    "read_send",
    "read_send_columns",
    "read_status",
    "sent_ids",
]

_SUBJECT = _wire.SUBJECT.encode()
_ADDRESS = _wire.ADDRESS.encode()
_TEXT = _wire.TEXT.encode()
_CLIENT_ID = _wire.CLIENT_ID.encode()
_PROVIDER_ID = _wire.PROVIDER_ID.encode()
_RESERVED = _wire.SEND_FIELDS
_ID_CHARS = frozenset(_wire.ID_ALPHABET)


# -- encoding ------------------------------------------------------------------------


def _quote(text: str) -> bytes:
    # quote() with safe="" keeps exactly the RFC 3986 unreserved set, writes upper-case
    # hex and encodes space as %20. Callers check for surrogates first. quote() returns
    # a falsy argument as it is and calls its encode(): given a str subclass, it would
    # send what the subclass says instead of its characters, even unescaped. Callers
    # pass exact strings (_check_str, _param_pairs); this makes sure of it.
    return quote(_exact(text), safe="").encode("ascii")


def _surrogate_reason(text: str) -> Optional[str]:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def _is(value: object, cls: Union[type, tuple[type, ...]]) -> bool:
    # The real type, as the compiled twin's PyUnicode_Check/PyTuple_Check see it:
    # isinstance() would also believe a __class__ property.
    return issubclass(type(value), cls)


def _exact(value: str) -> str:
    """The exact ``str`` of a ``str`` (subclass)'s characters, asking it nothing."""
    return value if type(value) is str else str.__str__(value)


def _check_str(value: object, index: Optional[int], field: str, *, empty_ok: bool = False) -> str:
    """``value`` as an exact, checked ``str``."""
    if not _is(value, str):
        raise MessageTypeError(index, field, f"expected str, got {_type_name(value)}")
    text = _exact(value)  # type: ignore[arg-type]
    if not text and not empty_ok:
        raise MessageError(index, field, "must not be empty")
    return text


def _check_content(value: str, index: Optional[int], field: str) -> None:
    reason = _surrogate_reason(value)
    if reason is not None:
        raise MessageError(index, field, reason)


def _param_pairs(params: object, index: Optional[int]) -> list[tuple[str, str]]:
    """Structural checks of extra parameters; returns them as a list of pairs."""
    field = "params"
    if isinstance(params, Mapping):
        items: Any = params.items()
    elif _is(params, (str, bytes, bytearray)) or not hasattr(params, "__iter__"):
        raise MessageTypeError(
            index, field, f"expected a mapping or (name, value) pairs, got {_type_name(params)}"
        )
    else:
        items = params
    pairs = []
    for item in items:
        if not _is(item, tuple) or len(item) != 2:
            raise MessageTypeError(
                index, field, f"expected (name, value) pairs, got {_type_name(item)}"
            )
        name, value = item
        if not _is(name, str):
            raise MessageTypeError(index, field, f"name: expected str, got {_type_name(name)}")
        name = _exact(name)
        if not name:
            raise MessageError(index, field, "a parameter name must not be empty")
        if not _is(value, str):
            raise MessageTypeError(
                index, field, f"value of {name!r}: expected str, got {_type_name(value)}"
            )
        pairs.append((name, _exact(value)))
    return pairs


def _check_batch(batch: object) -> None:
    # A mapping would be read by key (batch[0], batch[1]...), a str as one id per
    # character: neither is what the caller meant.
    if isinstance(batch, Mapping) or _is(batch, str):
        raise TypeError(f"expected a sequence, got {_type_name(batch)}")


def _index(value: Any) -> int:
    """``operator.index(value)`` as an exact ``int``, as Python 3.10+ gives it.

    Python 3.9's ``operator.index`` hands an ``int`` subclass (``bool`` too) back as
    it is, with its own comparisons and ``__str__``: a bounds check would then ask
    the caller's object, not its value. ``int.__index__`` copies the value out.
    """
    value = operator.index(value)
    return value if type(value) is int else int.__index__(value)


def _limit(value: Any, name: str) -> Any:
    """A limit as an exact ``int`` (``_index``) or ``float``; ``None`` stays."""
    if value is None:
        return None
    if _is(value, float):
        return float.__float__(value)
    try:
        return _index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_type_name(value)}") from None


def _limits(start: Any, max_bytes: Any, max_count: Any) -> tuple[int, Optional[int], Optional[int]]:
    """The arguments of encode_send/encode_status, normalised (see the module doc)."""
    return _index(start), _limit(max_bytes, "max_bytes"), _limit(max_count, "max_count")


def _check_limits(
    start: int, length: int, max_bytes: Optional[int], max_count: Optional[int]
) -> None:
    if not 0 <= start <= length:
        raise ValueError(f"start={start} is outside 0..{length}")
    if max_bytes is not None and max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    if max_count is not None and max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")


def _check_id_prefix(id_prefix: object) -> Optional[str]:
    """``id_prefix`` as an exact ``str`` (a subclass cannot change what is sent)."""
    if id_prefix is None:
        return None
    if not isinstance(id_prefix, str):
        raise TypeError(f"id_prefix must be a str or None, got {_type_name(id_prefix)}")
    prefix = str.__str__(id_prefix)
    if not 1 <= len(prefix) <= _wire.ID_PREFIX_MAX_LENGTH or not _ID_CHARS.issuperset(prefix):
        shown = repr(prefix) if len(prefix) <= 40 else f"{len(prefix)} characters"
        raise ValueError(
            f"id_prefix must be 1 to {_wire.ID_PREFIX_MAX_LENGTH} characters of "
            f"[0-9A-Za-z], got {shown}"
        )
    return prefix


def _message_fields(msg: object, i: int) -> tuple[Any, ...]:
    """Message ``i``'s five fields (``None`` for those it lacks), checked as a tuple
    of 2 to 5: its real items, whatever a subclass's ``__len__``, ``__getitem__``
    or ``__add__`` say."""
    if not _is(msg, tuple):
        raise MessageTypeError(
            i, "message", f"expected a Message or a tuple, got {_type_name(msg)}"
        )
    n = tuple.__len__(msg)  # type: ignore[arg-type]
    if not 2 <= n <= 5:
        raise MessageError(i, "message", f"expected 2 to 5 fields, got {n}")
    return tuple.__add__(msg, (None,) * (5 - n))  # type: ignore[operator,no-any-return]


def _bracket(quote_brackets: bool) -> tuple[bytes, bytes]:
    return (b"%5B", b"%5D=") if quote_brackets else (b"[", b"]=")


def _checked_message(
    msg: object, i: int, default_subject: Optional[str]
) -> tuple[str, str, str, Optional[str], list[tuple[str, str]]]:
    """Message ``i``'s ``(address, text, subject, client_id, pairs)``, checked: its
    structure (rule 1), then its content (rule 2), in ``encode_send``'s order."""
    # 1. structure
    fields = _message_fields(msg, i)
    address = _check_str(fields[0], i, "address")
    text = _check_str(fields[1], i, "text")
    subject = fields[2]
    if subject is None:
        if default_subject is None:
            raise MessageError(i, "subject", "required, and no default subject is set")
        subject = default_subject
    else:
        subject = _check_str(subject, i, "subject")
    client_id = fields[3]
    if client_id is not None:
        client_id = _check_str(client_id, i, "client_id")
    params = fields[4]
    pairs = [] if params is None else _param_pairs(params, i)
    for name, _ in pairs:
        if name in _RESERVED:
            raise MessageError(i, "params", f"parameter name {name!r} is reserved")
    # 2. content
    _check_content(address, i, "address")
    _check_content(text, i, "text")
    _check_content(subject, i, "subject")
    if client_id is not None:
        _check_content(client_id, i, "client_id")
    for name, value in pairs:
        _check_content(name, i, "params")
        _check_content(value, i, "params")
    return address, text, subject, client_id, pairs


def _check_unique_ids(ids: list[Optional[str]], start: int) -> None:
    """Effective client ids must be unique within the request, or replies cannot be
    matched to messages (a made id counts as the message's own; ``None``, no id
    sent, is the index in the request)."""
    seen: dict[str, int] = {}
    for local, client_id in enumerate(ids):
        effective = str(local) if client_id is None else client_id
        if effective in seen:
            raise MessageError(
                start + local,
                "client_id",
                f"client id {effective!r} is already used in this request "
                f"by message {start + seen[effective]}",
            )
        seen[effective] = local


def encode_send(
    messages: Sequence[Union[Message, tuple[Any, ...]]],
    *,
    start: int = 0,
    max_bytes: Optional[int] = None,
    max_count: Optional[int] = None,
    default_subject: Optional[str] = None,
    quote_brackets: bool = False,
    id_prefix: Optional[str] = None,
) -> tuple[bytes, int]:
    """Encode ``messages[start:]`` as a SEND query, as many as fit.

    Args:
        messages: ``Message`` records, or tuples of the same 2 to 5 fields.
        start: the first message to encode; indexes in the query start at 0 anyway.
        max_bytes: the query may not be longer than this; stop before the message
            that would pass it.
        max_count: at most this many messages.
        default_subject: the subject of messages whose own is ``None``.
        quote_brackets: send ``text%5B0%5D`` instead of ``text[0]``.
        id_prefix: 1 to 17 characters of ``[0-9A-Za-z]``: every message without a
            ``client_id`` is sent with ``clientId[k]=<id_prefix><k>``, k its index
            in the request in 3 base-62 digits (``_wire.client_id_suffixes``); a
            request then holds at most ``_wire.ID_MAX_COUNT`` (238,328) messages.

    Returns:
        ``(query, next)``: ``subject[0]=..&address[0]=..&text[0]=..`` (plus
        ``clientId[i]`` and extra params) without credentials, and the index of the
        first message left out (``len(messages)`` when all were taken).

    Raises:
        MessageTypeError: a field of the wrong type (names the message and field).
        MessageError: an empty required field, a lone surrogate, a reserved parameter
            name, or two messages of the request with the same client id.
        MessageTooLarge: a message that does not fit into ``max_bytes`` alone.
        ValueError: a bad ``start``, limit or ``id_prefix``.
        TypeError: an ``id_prefix`` that is not a ``str``.
    """
    _check_batch(messages)
    start, max_bytes, max_count = _limits(start, max_bytes, max_count)
    total = len(messages)
    _check_limits(start, total, max_bytes, max_count)
    if default_subject is not None:
        default_subject = _check_str(default_subject, None, "default_subject")
        _check_content(default_subject, None, "default_subject")
    prefix = _check_id_prefix(id_prefix)
    # With made ids, a request stops where the suffixes run out, as max_count would.
    end = total if prefix is None else min(total, start + _wire.ID_MAX_COUNT)
    open_b, close_b = _bracket(quote_brackets)
    parts: list[bytes] = []
    ids: list[Optional[str]] = []
    size = 0
    i = start
    while i < end:
        local = i - start
        if max_count is not None and local >= max_count:
            break
        address, text, subject, client_id, pairs = _checked_message(
            messages[i], i, default_subject
        )
        # 3. size
        idx = str(local).encode("ascii")
        key = open_b + idx + close_b
        piece = [
            _SUBJECT, key, _quote(subject), b"&",
            _ADDRESS, key, _quote(address), b"&",
            _TEXT, key, _quote(text),
        ]  # fmt: skip
        if client_id is not None:
            piece += [b"&", _CLIENT_ID, key, _quote(client_id)]
        elif prefix is not None:
            # The made id is all unreserved characters: sent as it is.
            client_id = prefix + _wire.base62(local, _wire.ID_SUFFIX_LENGTH)
            piece += [b"&", _CLIENT_ID, key, client_id.encode("ascii")]
        for name, value in pairs:
            piece += [b"&", _quote(name), key, _quote(value)]
        encoded = b"".join(piece)
        added = len(encoded) + (1 if parts else 0)
        if max_bytes is not None and size + added > max_bytes:
            if not parts:
                raise MessageTooLarge(
                    i,
                    "message",
                    f"needs {len(encoded)} bytes encoded, more than max_bytes={max_bytes}",
                )
            break
        parts.append(encoded)
        ids.append(client_id)
        size += added
        i += 1
    _check_unique_ids(ids, start)
    return b"&".join(parts), i


def sent_ids(
    messages: Sequence[Union[Message, tuple[Any, ...]]],
    start: int,
    end: int,
    id_prefix: Optional[str] = None,
) -> list[str]:
    """The clientId the platform answers with for each of ``messages[start:end]``.

    The request is the one ``encode_send(messages, start=start, id_prefix=id_prefix)``
    made of those messages: a message's own ``client_id`` (as an exact ``str``); else,
    with ``id_prefix``, the id ``encode_send`` made for it (``id_prefix`` and its
    index in the request in 3 base-62 digits); else that index in decimal, which is
    what the platform answers for a message sent without a clientId. What
    ``match_send`` is given as ``expect`` for the request's reply.

    Only what the ids need is checked (the rest is ``encode_send``'s): call it on a
    span ``encode_send`` took.

    Raises:
        MessageTypeError: a message that is not a tuple, or a ``client_id`` that is
            not a ``str``.
        MessageError: a message of fewer than 2 or more than 5 fields, or an empty
            ``client_id``.
        ValueError: ``start`` and ``end`` not within ``0 <= start <= end <=
            len(messages)``, a bad ``id_prefix``, or more messages than made ids
            can number (``_wire.ID_MAX_COUNT``).
        TypeError: ``messages`` is a mapping or a str, or an ``id_prefix`` that is
            not a ``str``.
    """
    _check_batch(messages)
    start = _index(start)
    end = _index(end)
    total = len(messages)
    if not 0 <= start <= end <= total:
        raise ValueError(f"start={start} and end={end} are not within 0..{total}")
    prefix = _check_id_prefix(id_prefix)
    if prefix is not None and end - start > _wire.ID_MAX_COUNT:
        raise ValueError(
            f"{end - start} messages: made clientIds number at most {_wire.ID_MAX_COUNT}"
        )
    ids: list[str] = []
    for i in range(start, end):
        client_id = _message_fields(messages[i], i)[3]
        if client_id is not None:
            ids.append(_check_str(client_id, i, "client_id"))
        elif prefix is not None:
            ids.append(prefix + _wire.base62(i - start, _wire.ID_SUFFIX_LENGTH))
        else:
            ids.append(str(i - start))
    return ids


def encode_status(
    provider_ids: Sequence[str],
    *,
    start: int = 0,
    max_bytes: Optional[int] = None,
    max_count: Optional[int] = None,
    quote_brackets: bool = False,
) -> tuple[bytes, int]:
    """Encode ``provider_ids[start:]`` as a STATUS query, as many as fit.

    Returns ``(query, next)`` as ``encode_send`` does: ``providerId[0]=..&..``.

    Raises:
        MessageTypeError: an id that is not a ``str``.
        MessageError: an empty id or one with a lone surrogate.
        MessageTooLarge: an id that does not fit into ``max_bytes`` alone.
    """
    _check_batch(provider_ids)
    start, max_bytes, max_count = _limits(start, max_bytes, max_count)
    total = len(provider_ids)
    _check_limits(start, total, max_bytes, max_count)
    open_b, close_b = _bracket(quote_brackets)
    parts: list[bytes] = []
    size = 0
    i = start
    while i < total:
        local = i - start
        if max_count is not None and local >= max_count:
            break
        provider_id = _check_str(provider_ids[i], i, "provider_id")
        _check_content(provider_id, i, "provider_id")
        encoded = b"".join(
            (_PROVIDER_ID, open_b, str(local).encode("ascii"), close_b, _quote(provider_id))
        )
        added = len(encoded) + (1 if parts else 0)
        if max_bytes is not None and size + added > max_bytes:
            if not parts:
                raise MessageTooLarge(
                    i,
                    "provider_id",
                    f"needs {len(encoded)} bytes encoded, more than max_bytes={max_bytes}",
                )
            break
        parts.append(encoded)
        size += added
        i += 1
    return b"&".join(parts), i


def encode_params(pairs: Params) -> bytes:
    """Encode request-level parameters (credentials, ``priority``, ...): ``a=1&b=2``.

    Names and values are ``str``; names may not be empty. Errors name the parameter
    (``MessageError.index`` is ``None``).
    """
    checked = _param_pairs(pairs, None)
    for name, value in checked:
        _check_content(name, None, "params")
        _check_content(value, None, "params")
    return b"&".join(_quote(name) + b"=" + _quote(value) for name, value in checked)
