"""The records hpgfast hands around: messages in, results out.

Strategy: the parsers make millions of results per second, so a record must cost
about what a tuple costs. Each record is a ``tuple`` subclass with empty
``__slots__`` and read-only properties. The compiled core creates them through the
type's ``tp_alloc`` and fills the slots directly; the pure twin calls the class.
Both twins therefore return instances of these very classes. Records compare equal
to plain tuples of the same fields, pickle, and cannot be changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Optional, Union

from ._wire import Code, Status

__all__ = ["Message", "Params", "SendResult", "StatusResult"]

#: Extra per-message parameters: a mapping, or pairs, of ``name -> value`` strings.
Params = Union[Mapping[str, str], Iterable[tuple[str, str]]]

_FINAL = Status.FINAL
_OK = Code.OK


class Message(tuple):  # type: ignore[type-arg]
    """One SMS to send: ``Message(address, text, subject=None, client_id=None, params=None)``.

    ``subject`` falls back to the client's (or encoder's) default subject.
    ``client_id`` is the caller's id for the message, unique within one request;
    without it the platform answers with the message's index in its request.
    ``params`` are extra per-message parameters, sent as ``name[i]=value``: a mapping,
    or a sequence of ``(name, value)`` pairs (re-iterable: the encoder may read a
    message's params more than once while it fits messages into requests).
    Nothing is checked here (it must stay cheap); the encoder checks every field
    and names the message and field it rejects.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        address: str
        text: str
        subject: Optional[str]
        client_id: Optional[str]
        params: Optional[Params]

    def __new__(
        cls,
        address: str,
        text: str,
        subject: Optional[str] = None,
        client_id: Optional[str] = None,
        params: Optional[Params] = None,
    ) -> Message:
        return tuple.__new__(cls, (address, text, subject, client_id, params))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"Message(address={self[0]!r}, text={self[1]!r}, subject={self[2]!r}, "
            f"client_id={self[3]!r}, params={self[4]!r})"
        )

    def _replace(self, **changes: Any) -> Message:
        """A copy with some fields changed, like ``namedtuple._replace``."""
        fields = dict(zip(_MESSAGE_FIELDS, self))
        fields.update(changes)
        return Message(**fields)


_MESSAGE_FIELDS = ("address", "text", "subject", "client_id", "params")


class SendResult(tuple):  # type: ignore[type-arg]
    """The platform's answer for one message: ``code;clientId;providerId``.

    ``provider_id`` is set only when the message was accepted (``code == "ok"``).
    ``code`` may also be hpgfast's own ``"not-sent"`` or ``"unknown"`` (see ``Code``).
    ``extra`` is the raw text after the third ``;`` of the reply line (for example
    ``"2"`` in ``ok;0;1001;2``, which some platforms use for the part count), with
    any ``;`` inside it kept and trailing ones dropped; it is ``None`` when the line
    has nothing there. Only then does the record hold a fourth item, so a plain line
    still equals the 3-tuple ``(code, client_id, provider_id)``.

    ``raw`` is the reply line's bytes (stripped) when some field of it was read
    tolerantly (see ``hpgfast._fields``): an ``extra`` (a rejection's description)
    that is not UTF-8, decoded by the reply's charset or with U+FFFD. Only then does
    the record hold a fifth item (``extra`` fourth, maybe ``None``); it is ``None``
    for every usual line, which costs nothing more.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        code: str
        client_id: Optional[str]
        provider_id: Optional[str]

    def __new__(
        cls,
        code: str,
        client_id: Optional[str] = None,
        provider_id: Optional[str] = None,
        extra: Optional[str] = None,
        raw: Optional[bytes] = None,
    ) -> SendResult:
        if raw is not None:
            return tuple.__new__(cls, (code, client_id, provider_id, extra, raw))
        if extra is None:
            return tuple.__new__(cls, (code, client_id, provider_id))
        return tuple.__new__(cls, (code, client_id, provider_id, extra))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    @property
    def ok(self) -> bool:
        """True when the platform accepted the message."""
        return bool(self[0] == _OK)

    @property
    def extra(self) -> Optional[str]:
        """The reply line's text after its third ``;``, or ``None`` (see the class)."""
        return self[3] if len(self) > 3 else None

    @property
    def raw(self) -> Optional[bytes]:
        """The reply line's bytes when a field was read tolerantly, else ``None``."""
        return self[4] if len(self) > 4 else None

    def __repr__(self) -> str:
        tail = f", extra={self[3]!r}" if len(self) > 3 else ""
        if len(self) > 4:
            tail += f", raw={self[4]!r}"
        return (
            f"SendResult(code={self[0]!r}, client_id={self[1]!r}, provider_id={self[2]!r}{tail})"
        )


class StatusResult(tuple):  # type: ignore[type-arg]
    """The platform's answer for one id: ``code;providerId;status;dateTime;reason``.

    ``status`` and ``time`` may be ``None`` when ``code`` is not ``"ok"``; ``reason``
    is given only when the message was not delivered. ``time`` is a naive
    ``datetime`` unless the parser was given the platform's time zone, or the line
    wrote its time with an offset (ISO-8601: ``...Z``, ``...+03:00``), which gives an
    aware one (in the platform's zone, when the parser was given it).

    ``raw`` is the reply line's bytes (stripped) when some field of it was read
    tolerantly (see ``hpgfast._fields``): a time in another shape than
    ``yyyy.MM.dd HH:mm:ss`` (ISO-8601, read; or unreadable, ``time`` is then
    ``None``), or a reason that is not UTF-8 (decoded by the reply's charset, or with
    U+FFFD). Only then does the record hold a sixth item; a usual line still equals
    the 5-tuple.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        code: str
        provider_id: Optional[str]
        status: Optional[str]
        time: Optional[datetime]
        reason: Optional[str]

    def __new__(
        cls,
        code: str,
        provider_id: Optional[str] = None,
        status: Optional[str] = None,
        time: Optional[datetime] = None,
        reason: Optional[str] = None,
        raw: Optional[bytes] = None,
    ) -> StatusResult:
        if raw is not None:
            return tuple.__new__(cls, (code, provider_id, status, time, reason, raw))
        return tuple.__new__(cls, (code, provider_id, status, time, reason))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    @property
    def ok(self) -> bool:
        """True when the platform answered for this id (``code == "ok"``)."""
        return bool(self[0] == _OK)

    @property
    def final(self) -> bool:
        """True when the status can no longer change (``Status.FINAL``, in any case)."""
        status = self[2]
        return status is not None and (status in _FINAL or status.lower() in _FINAL)

    @property
    def raw(self) -> Optional[bytes]:
        """The reply line's bytes when a field was read tolerantly, else ``None``."""
        return self[5] if len(self) > 5 else None

    def __repr__(self) -> str:
        tail = f", raw={self[5]!r}" if len(self) > 5 else ""
        return (
            f"StatusResult(code={self[0]!r}, provider_id={self[1]!r}, status={self[2]!r}, "
            f"time={self[3]!r}, reason={self[4]!r}{tail})"
        )


# Field accessors as C-level itemgetters: as fast as attribute access can be on a
# tuple, and read-only. Assigned after class creation so mypy sees the annotations.
for _cls, _names in (
    (Message, _MESSAGE_FIELDS),
    (SendResult, ("code", "client_id", "provider_id")),
    (StatusResult, ("code", "provider_id", "status", "time", "reason")),
):
    for _i, _name in enumerate(_names):
        setattr(_cls, _name, property(itemgetter(_i), doc=f"Field {_i}: {_name}."))
del _cls, _names, _i, _name
