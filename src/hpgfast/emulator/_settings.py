"""The emulator's settings: one frozen value, checked once.

Strategy: every keyword ``Emulator`` takes is a field of ``EmulatorSettings``, and
the emulator reads its settings from that value alone, so each setting has one
default, one check and one place it is read from. The few that may change while the
emulator runs (``LIVE_SETTINGS``: ``account_state``, ``login``, ``password``,
``push_secret``) change by replacing the whole value (``dataclasses.replace``),
which checks it again; a request reads the value once, so it never sees half of a
change.
"""

from __future__ import annotations

import numbers
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Optional, Union

from .._wire import LOGIN, PASSWORD
from ._encoding import REPLY_ENCODINGS
from ._faults import FAULT_KINDS, Fault, FaultLike, Faults, check_code
from ._lifecycle import STATUS_CASES, checked_reasons

__all__ = [
    "CLIENT_ID_MODES",
    "DATE_FORMATS",
    "LIVE_SETTINGS",
    "PUSH_SHAPES",
    "REPLY_ORDERS",
    "EmulatorSettings",
]

REPLY_ORDERS = ("sent", "shuffled")
DATE_FORMATS = {
    "dots": "%Y.%m.%d %H:%M:%S",
    "dashes": "%Y-%m-%d %H:%M:%S",
    # Shapes seen in the field, which a client must read without losing the line:
    # ISO-8601 with a Z and a fraction, with an offset, and no date at all.
    "iso_z": "%Y-%m-%dT%H:%M:%S.%fZ",
    "iso_offset": "%Y-%m-%d %H:%M:%S+0300",
    "garbage": "sometime today",
    # The other ISO-8601 forms: basic with an offset, a week date, an ordinal date,
    # minutes only; and HPG's own shape padded with a space.
    "iso_basic": "%Y%m%dT%H%M%S+0300",
    "iso_week": "%G-W%V-%uT%H:%M:%SZ",
    "iso_ordinal": "%Y-%jT%H:%M:%SZ",
    "iso_minutes": "%Y-%m-%dT%H:%M",
    "padded": "%Y.%m.%d %H:%M:%S ",
}
PUSH_SHAPES = ("lines", "form", "query", "json")
CLIENT_ID_MODES = ("echo", "ignore")
#: The settings an ``Emulator`` lets you assign while it runs (the next request, or
#: the next push, reads the new value); every other one is fixed at start. The
#: credentials are among them: a password changed at the platform mid-run is a case
#: to play.
LIVE_SETTINGS = frozenset({"account_state", "login", "password", "push_secret"})

Names = Optional[Iterable[str]]
FaultsLike = Union[Faults, Mapping[str, FaultLike], None]

_STR = ("host", "client", "connector", "login", "password", "login_param", "password_param")
_OPTIONAL_STR = ("certfile", "keyfile", "push_url", "push_secret", "account_state", "send_extra",
                 "reply_encoding", "reject_description")
_INT = ("port", "max_request_line", "subject_max_length", "first_provider_id", "push_batch",
        "push_attempts", "retry_after")
_OPTIONAL_INT = ("seed", "balance", "max_client_id_length")
_REAL = ("sent_after", "final_after", "delayed_for", "latency", "push_interval", "rate_burst")
_OPTIONAL_REAL = ("speed", "rate_limit")
_BOOL = ("field_statuses", "semicolon_reasons", "unique_client_ids")


@dataclass(frozen=True)
class EmulatorSettings:
    """Everything an ``Emulator`` is told when it starts; see ``Emulator`` for each.

    Built by ``Emulator(**keywords)`` or given whole: ``Emulator(settings=...)``.
    Collections are stored frozen (``frozenset``, read-only mappings) and ``faults``
    as a read-only mapping of every kind to its ``Fault``. ``password`` and
    ``push_secret`` are left out of the repr.

    Raises:
        TypeError: a setting of the wrong type (the message names it).
        ValueError: a setting out of its range (the message names it).
    """

    host: str = "127.0.0.1"
    port: int = 0
    client: str = "CLIENT"
    connector: str = "connectorX"
    login: str = "CLIENT"
    password: str = field(default="P@ssw0rd", repr=False)
    login_param: str = LOGIN
    password_param: str = PASSWORD
    max_request_line: int = 8192
    reply_order: str = "sent"
    date_style: str = "dots"
    allow_addresses: Optional[frozenset[str]] = None
    deny_addresses: frozenset[str] = frozenset()
    allow_subjects: Optional[frozenset[str]] = None
    deny_subjects: frozenset[str] = frozenset()
    system_error_addresses: frozenset[str] = frozenset()
    subject_max_length: int = 11
    speed: Optional[float] = 1.0
    sent_after: float = 1.0
    final_after: float = 2.0
    delayed_for: float = 60.0
    first_provider_id: int = 1001
    latency: float = 0.0
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    ssl_context: Optional[ssl.SSLContext] = None
    seed: Optional[int] = None
    faults: Mapping[str, Fault] = field(default_factory=lambda: _fault_map(None))
    push_url: Optional[str] = None
    push_secret: Optional[str] = field(default=None, repr=False)
    push_shape: str = "lines"
    push_batch: int = 500
    push_interval: float = 0.05
    push_attempts: int = 10
    balance: Optional[int] = None
    account_state: Optional[str] = None
    rate_limit: Optional[float] = None
    rate_burst: float = 1.0
    retry_after: int = 1
    status_case: str = "lower"
    field_statuses: bool = False
    semicolon_reasons: bool = False
    reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    send_extra: Optional[str] = None
    client_ids: str = "echo"
    max_client_id_length: Optional[int] = None
    unique_client_ids: bool = False
    reply_encoding: Optional[str] = None
    reject_description: Optional[str] = None
    text_charset: str = "utf-8"
    content_type: str = "text/plain; charset=utf-8"

    def __post_init__(self) -> None:
        _check_types(self)
        # Stored frozen, whatever collection was given.
        for name in ("allow_addresses", "allow_subjects"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _names(value, name))
        for name in ("deny_addresses", "deny_subjects", "system_error_addresses"):
            object.__setattr__(self, name, _names(getattr(self, name), name))
        object.__setattr__(self, "faults", _fault_map(self.faults))
        object.__setattr__(self, "reasons", _reasons(self.reasons))
        object.__setattr__(self, "rate_burst", float(self.rate_burst))
        _check_values(self)

    def __hash__(self) -> int:
        # The mappings (faults, reasons) are read-only but not hashable themselves.
        return hash(tuple(
            tuple(sorted(value.items())) if isinstance(value, Mapping) else value
            for value in (getattr(self, f.name) for f in fields(self))
        ))


def _fault_map(value: Any) -> Mapping[str, Fault]:
    """Every fault kind -> its ``Fault`` (a snapshot: a ``Faults`` changes later)."""
    if isinstance(value, Mapping) and set(value) == set(FAULT_KINDS) and all(
        isinstance(f, Fault) for f in value.values()
    ):
        return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))
    if value is not None and not isinstance(value, (Faults, Mapping)):
        raise TypeError(
            f"faults must be a Faults or a mapping of fault kinds, got {type(value).__name__}"
        )
    coerced = Faults.coerce(value)  # raises for an unknown kind or a bad Fault
    return MappingProxyType({kind: getattr(coerced, kind) for kind in FAULT_KINDS})


def _names(value: Any, name: str) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of strings, got {type(value).__name__}")
    names = frozenset(value)
    if not all(isinstance(item, str) for item in names):
        raise TypeError(f"{name} must hold strings only")
    return names


def _reasons(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"reasons must be a mapping of digits to text, got {type(value).__name__}")
    if isinstance(value, MappingProxyType) and all(isinstance(d, str) for d in value):
        checked_reasons(value)
        return value
    return MappingProxyType(checked_reasons(value))


def _check_types(s: EmulatorSettings) -> None:
    def wrong(name: str, kind: str) -> TypeError:
        value = getattr(s, name)
        return TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}"
                         if name not in ("password", "push_secret")
                         else f"{name} must be {kind}, got {type(value).__name__}")

    for name in _STR + _OPTIONAL_STR + ("reply_order", "date_style", "push_shape",
                                        "status_case", "client_ids", "text_charset",
                                        "content_type"):
        value = getattr(s, name)
        if not isinstance(value, str) and not (value is None and name in _OPTIONAL_STR):
            raise wrong(name, "a string")
    for name in _INT + _OPTIONAL_INT:
        value = getattr(s, name)
        if value is None and name in _OPTIONAL_INT:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise wrong(name, "a whole number")
    for name in _REAL + _OPTIONAL_REAL:
        value = getattr(s, name)
        if value is None and name in _OPTIONAL_REAL:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong(name, "a number")
    for name in _BOOL:
        if not isinstance(getattr(s, name), bool):
            raise wrong(name, "True or False")
    if s.ssl_context is not None and not isinstance(s.ssl_context, ssl.SSLContext):
        raise wrong("ssl_context", "an ssl.SSLContext")


def _check_values(s: EmulatorSettings) -> None:
    """Each rule names the setting it is about; a secret's value is never shown."""
    _one_of("reply_order", s.reply_order, REPLY_ORDERS)
    _one_of("date_style", s.date_style, tuple(DATE_FORMATS))
    _one_of("push_shape", s.push_shape, PUSH_SHAPES)
    _one_of("status_case", s.status_case, STATUS_CASES)
    _one_of("client_ids", s.client_ids, CLIENT_ID_MODES)
    if not 0 <= s.port <= 65535:
        raise ValueError(f"port must be 0 to 65535, got {s.port}")
    if s.max_request_line < 64:
        raise ValueError(f"max_request_line must be at least 64, got {s.max_request_line}")
    if s.subject_max_length < 1:
        raise ValueError(f"subject_max_length must be at least 1, got {s.subject_max_length}")
    if s.first_provider_id < 0:
        raise ValueError(f"first_provider_id must not be negative, got {s.first_provider_id}")
    if not 0.0 <= s.sent_after <= s.final_after:
        raise ValueError(
            f"need 0 <= sent_after <= final_after, got sent_after={s.sent_after}, "
            f"final_after={s.final_after}"
        )
    if s.delayed_for < 0:
        raise ValueError(f"delayed_for must not be negative, got {s.delayed_for}")
    if s.latency < 0:
        raise ValueError(f"latency must not be negative, got {s.latency}")
    if s.speed is not None and s.speed < 0:
        raise ValueError(f"speed must not be negative, got {s.speed}")
    if s.certfile is None and s.keyfile is not None:
        raise ValueError("keyfile needs certfile")
    if s.certfile is not None and s.ssl_context is not None:
        raise ValueError("give certfile/keyfile or ssl_context, not both")
    _check_push(s)
    if s.balance is not None and s.balance < 0:
        raise ValueError(f"balance must be a whole number >= 0 or None, got {s.balance!r}")
    if s.account_state is not None:
        check_code(s.account_state, "account_state")
    if s.rate_limit is not None and not s.rate_limit > 0:
        raise ValueError(f"rate_limit must be positive, got {s.rate_limit!r}")
    if not s.rate_burst >= 1:
        raise ValueError(f"rate_burst must be at least 1, got {s.rate_burst!r}")
    if s.retry_after < 0:
        raise ValueError(f"retry_after must be whole seconds >= 0, got {s.retry_after!r}")
    if s.send_extra is not None and (not s.send_extra or any(c in "\r\n" for c in s.send_extra)):
        raise ValueError("send_extra must be non-empty text without CR or LF")
    if s.max_client_id_length is not None and s.max_client_id_length < 1:
        raise ValueError(
            f"max_client_id_length must be at least 1, got {s.max_client_id_length}"
        )
    if s.unique_client_ids and s.client_ids != "echo":
        raise ValueError("unique_client_ids needs client_ids='echo'")
    if s.reply_encoding is not None:
        _one_of("reply_encoding", s.reply_encoding, REPLY_ENCODINGS)
    if s.reject_description is not None and (
        not s.reject_description or any(c in "\r\n" for c in s.reject_description)
    ):
        raise ValueError("reject_description must be non-empty text without CR or LF")
    try:
        "".encode(s.text_charset)
    except LookupError:
        raise ValueError(
            f"text_charset must name a text encoding, got {s.text_charset!r}"
        ) from None
    if not s.content_type.isascii() or not s.content_type.isprintable():
        raise ValueError(f"content_type must be printable ASCII, got {s.content_type!r}")


def _check_push(s: EmulatorSettings) -> None:
    if s.push_url is not None and not s.push_url.startswith(("http://", "https://")):
        raise ValueError("push_url must be an http:// or https:// URL")
    if s.push_secret is not None and not (
        s.push_secret and s.push_secret.isascii() and s.push_secret.isprintable()
    ):
        # Never echoed: the message names the rule, not the value.
        raise ValueError("push_secret must be non-empty printable ASCII")
    if s.push_batch < 1:
        raise ValueError(f"push_batch must be at least 1, got {s.push_batch}")
    if s.push_attempts < 1:
        raise ValueError(f"push_attempts must be at least 1, got {s.push_attempts}")
    if not s.push_interval > 0:
        raise ValueError(f"push_interval must be positive, got {s.push_interval}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
