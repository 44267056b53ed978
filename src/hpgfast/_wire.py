"""The HPG wire format, written down once.

Every other module (both codec twins, the client, the emulator, the receiver) takes
its parameter names, codes, statuses and separators from here. The words of the
specification (MFMS HPG PROTOCOL, 2018, restated in ``docs/protocol.md``) stand
beside the constants; section numbers refer to ``docs/protocol.md``, defaults to
``docs/defaults.md``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADDRESS",
    "BOM",
    "CLIENT_ID",
    "CODE_CHARS",
    "DATETIME_LENGTH",
    "DATE_SEPARATORS",
    "FIELD_SEPARATOR",
    "ID_ALPHABET",
    "ID_MAX_COUNT",
    "ID_MAX_LENGTH",
    "ID_PREFIX_MAX_LENGTH",
    "ID_SUFFIX_LENGTH",
    "LINE_STRIP",
    "LOGIN",
    "PASSWORD",
    "PROVIDER_ID",
    "REQUIRED_SEND_FIELDS",
    "SEND",
    "SEND_FIELDS",
    "STATUS",
    "STATUS_FIELDS",
    "SUBJECT",
    "TEXT",
    "UNRESERVED",
    "Code",
    "Status",
    "base62",
    "client_id_suffixes",
]

# -- Operations (docs/protocol.md 1, "Roles and transport") ------------------------
# "<URL>?<client credentials><request parameters>"; a connector is a base URL
# ``scheme://host:port/<CLIENT>/<connector>/`` with these two operations.
SEND: Final = "send"
STATUS: Final = "status"

# -- Credentials: "login=CLIENT&password=P@ssw0rd". The *names* are set per connector
# ("a connector may expect ``pass`` instead of ``password``"); these are the defaults.
LOGIN: Final = "login"
PASSWORD: Final = "password"

# -- SEND parameters, indexed ``name[i]`` (indexes start at 0 in every request) ------
SUBJECT: Final = "subject"  # String, required: sender signature
ADDRESS: Final = "address"  # Address, required: recipient phone number
TEXT: Final = "text"  # String, required: message text
CLIENT_ID: Final = "clientId"  # String: client's id, unique within one request
REQUIRED_SEND_FIELDS: Final = (SUBJECT, ADDRESS, TEXT)
#: Names a per-message extra parameter may not take: they would be sent twice.
SEND_FIELDS: Final = frozenset((SUBJECT, ADDRESS, TEXT, CLIENT_ID))

# -- clientIds hpgfast makes itself: <prefix><k>, k the message's index in its request,
# written in ID_SUFFIX_LENGTH base-62 digits (zero-padded, most significant first).
ID_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_SUFFIX_LENGTH: Final = 3
ID_MAX_LENGTH: Final = 20  # a whole clientId, prefix and suffix
ID_PREFIX_MAX_LENGTH: Final = ID_MAX_LENGTH - ID_SUFFIX_LENGTH
#: Messages per request when ids are made: one suffix each (238,328).
ID_MAX_COUNT: Final = len(ID_ALPHABET) ** ID_SUFFIX_LENGTH

# -- STATUS parameters ----------------------------------------------------------------
PROVIDER_ID: Final = "providerId"  # String, required: the platform's id
STATUS_FIELDS: Final = frozenset((PROVIDER_ID,))

# -- Encoding (docs/defaults.md, "Encoding") ----------------------------------------------
#: RFC 3986 unreserved characters; every other byte of the UTF-8 text is sent as
#: ``%XX`` with upper-case hex. Space is ``%20``, never ``+``.
UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# -- Replies ------------------------------------------------------------------------------
# SEND reply, a line per message: ``code;clientId;providerId``.
# STATUS reply, a line per id:    ``code;providerId;status;dateTime;reason``.
FIELD_SEPARATOR: Final = b";"
#: Bytes stripped from both ends of every reply line: CRLF or LF line ends, and the
#: trailing blanks seen in the specification's own examples.
LINE_STRIP: Final = b" \t\r"
#: A UTF-8 byte-order mark is skipped at the very start of a reply.
BOM: Final = b"\xef\xbb\xbf"
#: A code or a status is a token of these bytes; anything else (an HTML error page
#: served with 200, say) makes the line garbled.
CODE_CHARS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
# Datetime: "yyyy.MM.dd hh:mm:ss" (24-hour clock); clients in the field also see
# "yyyy-MM-dd HH:mm:ss". Both are read; the two date separators must agree.
DATETIME_LENGTH: Final = 19
DATE_SEPARATORS: Final = b".-"


class Code:
    """Platform result codes (specification section 3), as plain string constants.

    Codes read off the wire that are not listed here pass through as plain ``str``.
    ``NOT_SENT`` and ``UNKNOWN`` are hpgfast's own, for messages with no reply.
    """

    OK: Final = "ok"
    ERROR_AUTH: Final = "error-auth"
    ERROR_SYNTAX: Final = "error-syntax"
    ERROR_SYSTEM: Final = "error-system"
    ERROR_PROVIDER_ID_UNKNOWN: Final = "error-provider-id-unknown"
    ERROR_ADDRESS_FORMAT: Final = "error-address-format"
    ERROR_ADDRESS_UNKNOWN: Final = "error-address-unknown"
    ERROR_SUBJECT_FORMAT: Final = "error-subject-format"
    ERROR_SUBJECT_UNKNOWN: Final = "error-subject-unknown"
    # Seen from later versions of the platform (docs/protocol.md 6).
    ERROR_SUBJECT_NOT_SPECIFIED: Final = "error-subject-not-specified"
    ERROR_ADDRESS_NOT_SPECIFIED: Final = "error-address-not-specified"
    ERROR_PRIORITY_FORMAT: Final = "error-priority-format"
    ERROR_ACCOUNT_LOCKED: Final = "error-account-locked"
    ERROR_ID_NOT_UNIQUE: Final = "error-id-not-unique"
    ERROR_INSUFFICIENT_BALANCE: Final = "error-insufficient-balance"
    ERROR_SYSTEM_BLOCKED: Final = "error-system-blocked"
    ERROR_START_TIME_FORMAT: Final = "error-start-time-format"
    ERROR_VALIDITY_PERIOD_FORMAT: Final = "error-validity-period-seconds-format"
    # hpgfast's own outcomes; never sent by the platform.
    #: The request never left: safe to send again.
    NOT_SENT: Final = "not-sent"
    #: The request may have reached the platform, but no reply line says what became
    #: of the message. Sending it again may deliver a second SMS.
    UNKNOWN: Final = "unknown"

    #: Every code the platform is known to send.
    PLATFORM: Final = (
        OK,
        ERROR_AUTH,
        ERROR_SYNTAX,
        ERROR_SYSTEM,
        ERROR_PROVIDER_ID_UNKNOWN,
        ERROR_ADDRESS_FORMAT,
        ERROR_ADDRESS_UNKNOWN,
        ERROR_SUBJECT_FORMAT,
        ERROR_SUBJECT_UNKNOWN,
        ERROR_SUBJECT_NOT_SPECIFIED,
        ERROR_ADDRESS_NOT_SPECIFIED,
        ERROR_PRIORITY_FORMAT,
        ERROR_ACCOUNT_LOCKED,
        ERROR_ID_NOT_UNIQUE,
        ERROR_INSUFFICIENT_BALANCE,
        ERROR_SYSTEM_BLOCKED,
        ERROR_START_TIME_FORMAT,
        ERROR_VALIDITY_PERIOD_FORMAT,
    )
    #: Codes that say the account cannot send at all (docs/outcomes.md): met on any
    #: line, they stop the batch. ``Client(account_stop_codes=...)`` changes the set.
    ACCOUNT_STOP: Final = frozenset(
        (ERROR_AUTH, ERROR_INSUFFICIENT_BALANCE, ERROR_ACCOUNT_LOCKED, ERROR_SYSTEM_BLOCKED)
    )
    #: Codes of a whole-request line that say the platform processed none of the
    #: request: its messages were not sent (with the account stops, whatever the set).
    NOT_PROCESSED: Final = frozenset((ERROR_AUTH, ERROR_SYNTAX)) | ACCOUNT_STOP
    #: Codes about one message: on a whole-request line they name the message of a
    #: one-message request; with several, nobody can say which message they mean.
    PER_MESSAGE: Final = frozenset(
        (
            ERROR_PROVIDER_ID_UNKNOWN,
            ERROR_ADDRESS_FORMAT,
            ERROR_ADDRESS_UNKNOWN,
            ERROR_SUBJECT_FORMAT,
            ERROR_SUBJECT_UNKNOWN,
            ERROR_SUBJECT_NOT_SPECIFIED,
            ERROR_ADDRESS_NOT_SPECIFIED,
            ERROR_PRIORITY_FORMAT,
            ERROR_ID_NOT_UNIQUE,
            ERROR_START_TIME_FORMAT,
            ERROR_VALIDITY_PERIOD_FORMAT,
        )
    )
    #: Kept for callers of earlier versions: codes that concern the whole request.
    REQUEST_LEVEL: Final = NOT_PROCESSED


class Status:
    """Delivery statuses (specification section 4), as plain string constants.

    Statuses read off the wire that are not listed here pass through as plain ``str``.
    """

    ENQUEUED: Final = "enqueued"  # queued on the platform for sending
    SENT: Final = "sent"  # sent
    DELIVERED: Final = "delivered"  # delivered to the recipient
    UNDELIVERED: Final = "undelivered"  # not delivered to the recipient
    FAILED: Final = "failed"  # not delivered because of a platform error
    DELAYED: Final = "delayed"  # waiting for a deferred send time
    CANCELLED: Final = "cancelled"  # cancelled by hand on the platform

    # Seen in the field (docs/protocol.md), besides the specification's seven.
    EXPIRED: Final = "expired"  # validity period over, not delivered
    VP_EXPIRED: Final = "vp_expired"  # the same, another platform's word
    REJECTED: Final = "rejected"  # refused by the operator
    READ: Final = "read"  # read by the recipient (after delivered)
    NO_MATCH_TEMPLATE: Final = "no-match-template"  # text matched no registered template

    #: Every status the specification names.
    ALL: Final = (ENQUEUED, SENT, DELIVERED, UNDELIVERED, FAILED, DELAYED, CANCELLED)
    #: Statuses after which nothing changes any more, by default: the
    #: specification's four and the field's five. Compared without regard to case
    #: (one platform variant answers ``DELIVERED``); ``Client(final_statuses=...)``
    #: and ``hpgfast status --final`` change the set.
    FINAL: Final = frozenset(
        (DELIVERED, UNDELIVERED, FAILED, CANCELLED, EXPIRED, VP_EXPIRED, REJECTED, READ,
         NO_MATCH_TEMPLATE)
    )  # fmt: skip


#: Every pair of base-62 digits, in order: ``base62`` writes two digits a lookup.
_PAIRS: Final = tuple(a + b for a in ID_ALPHABET for b in ID_ALPHABET)
_PAIR_BASE: Final = len(_PAIRS)


def base62(number: int, width: int) -> str:
    """``number`` in ``width`` base-62 digits of ``ID_ALPHABET``, most significant
    first, leading zeros kept: the one writer of every id hpgfast makes in base 62
    (a made clientId's suffix, a request's counter, a journal line's number). The
    compiled codec's C twin (``_codec_c._put_base62``) is held to it by a test.

    Raises:
        ValueError: ``number`` is negative or does not fit in ``width`` digits.
    """
    if number < 0:
        raise ValueError(f"{number} is negative: no base-62 id for it")
    rest = number
    digits = ""
    for _ in range(width >> 1):
        rest, pair = divmod(rest, _PAIR_BASE)
        digits = _PAIRS[pair] + digits
    if width & 1:
        rest, digit = divmod(rest, len(ID_ALPHABET))
        digits = ID_ALPHABET[digit] + digits
    if rest:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    return digits


def client_id_suffixes(count: int) -> list[str]:
    """The suffixes of the first ``count`` messages of a request: ``["000", "001", ...]``.

    The codec sends message k's clientId as ``prefix + client_id_suffixes(n)[k]``
    (``encode_send(..., id_prefix=prefix)``); this is what to expect back.

    Raises:
        ValueError: ``count`` is negative or more than ``ID_MAX_COUNT``.
    """
    if not 0 <= count <= ID_MAX_COUNT:
        raise ValueError(f"count must be 0..{ID_MAX_COUNT}, got {count}")
    return [base62(k, ID_SUFFIX_LENGTH) for k in range(count)]


class Match:
    """The flags ``match_send``/``match_status`` return beside the records.

    They tell the caller what it would otherwise find by walking the records again
    in Python: whether the reply is the usual one (a readable line per id sent, in
    order), whether any line is not ``ok``, and whether any holds free text.
    """

    #: Every line readable, one per expected id, each with that id, in order.
    ALL: Final = 1
    #: Some line's code is not ``ok``.
    NOT_OK: Final = 2
    #: Some line holds free text: a SEND line's ``extra``, a STATUS line's reason.
    FREE_TEXT: Final = 4
