"""A local HPG platform: speaks HPG over real HTTP(S) on loopback, sends no SMS.

``with Emulator() as emu:`` serves a connector at ``emu.url``
(``http://127.0.0.1:PORT/CLIENT/connectorX/``) until the block ends; from the
command line, ``python -m hpgfast.emulator --port 9876`` serves until interrupted.
Every accepted message is recorded in ``emu.ledger``; faults are injected through
``emu.faults``; the delivery lifecycle runs on ``emu``'s own clock.

Settings. Every keyword of ``Emulator`` is a field of one frozen
``EmulatorSettings`` value, ``emu.settings``, checked once when it is made (a bad
value raises ``ValueError``, a wrong type ``TypeError``, each naming the setting)
and given whole as ``Emulator(settings=...)`` if you like. The emulator reads
every setting from it; each is also an attribute (``emu.latency``). Those in
``LIVE_SETTINGS`` (``account_state``, ``login``, ``password``, ``push_secret``) may
be assigned while the emulator runs: the assignment replaces ``emu.settings``,
checked again, and the next request (or push) reads the new value. Assigning any
other raises ``AttributeError``: make another emulator. ``balance``, ``faults``
and ``port`` are state that starts from their setting: what is left (may be topped up), the
``Faults`` struck with (change its kinds, or assign a new one), the port bound.

Strategy: the emulator is an oracle for hpgfast's encoder and parsers, so it shares
none of their code: queries are decoded with ``urllib.parse.parse_qsl`` alone
(UTF-8, strict), and only the wire constants (``hpgfast._wire``) are common.

The rules, as the emulator applies them
=======================================

HTTP. ``GET /<client>/<connector>/send`` and ``.../status``; HTTP/1.1 with
keep-alive (HTTP/1.0 on request). Other paths get 404, other methods 405; a request
line (``GET <target> HTTP/1.1``, without its CRLF) longer than ``max_request_line``
bytes (default 8192) is read to its end and answered 414. Every processed request
gets 200 with ``text/plain; charset=utf-8`` lines ending in LF. An unexpected
failure while processing gets HTTP 500 with a description, as the specification
says; so does the ``http_500`` fault.

Rate limit. With ``rate_limit=R`` (command line: ``--rate-limit``) a token bucket
of ``rate_burst`` requests (1), refilled at R a second, stands in front of SEND
and STATUS, as a gateway would: a request that finds it empty is answered
``429 Too Many Requests`` with ``Retry-After: <retry_after>`` (1; whole seconds)
and is not processed at all (no code, nothing in the ledger, no balance spent).
It still takes a request number, counts under its operation in ``emu.requests``
and in ``emu.rate_limited``. For one 429 at a chosen request, use the
``http_429`` fault instead.

Query decoding. The query is ASCII (raw bytes above 0x7F are malformed) decoded by
``parse_qsl(keep_blank_values=True, encoding="utf-8", errors="strict")``, so ``+``
reads as a space and ``%5B``/``%5D`` read as brackets. A query that is not ASCII, or
whose percent-escapes are not UTF-8, is answered with the single line
``error-syntax``.

Whole-request replies (a single line holding only the code), checked in order:

1. ``error-syntax``: undecodable query; a parameter given twice (a credential, a
   request-level parameter, or one field of one message); a bracketed name that is
   not ``name[digits]``; the unindexed single-message form (``address=..&text=..``)
   mixed with indexed fields.
2. ``error-auth``: the login or password parameter (names set by ``login_param``,
   ``password_param``) missing or wrong.
3. ``account_state`` (command line: ``--account-state``), when set: that code,
   whatever it is (``error-account-locked``, ``error-system-blocked``...), for
   every SEND and STATUS, e.g. the whole body ``error-account-locked\\n``.
4. ``error-syntax``: no message at all (SEND) or no ``providerId`` (STATUS).
5. ``error-insufficient-balance`` (SEND only): ``balance`` (``--balance``) was
   given and is spent (0) when the request comes.

A code-only reply is the code and LF, nothing else (``error-auth\\n``); nothing of
the request is applied.

Balance. ``balance=N`` lets the account send N messages, counted down by each
accepted one; ``emu.balance`` reads what is left and may be set while running (a
top-up; None: no limit). Note the two shapes: a request that *arrives* with no
balance left gets the single code-only line ``error-insufficient-balance``; a
request during which the balance *runs out* is answered line by line: its
messages are decided by the table below, the first ones that would be ``ok`` are
accepted while balance is left, and each later one that would be ``ok`` gets
``error-insufficient-balance;<clientId>;``. With ``balance=2``, a SEND of three
good messages gets ``ok;0;1001``, ``ok;1;1002``,
``error-insufficient-balance;2;``; the ledger holds two, and the next SEND gets
``error-insufficient-balance``. STATUS costs nothing.

SEND. Messages are the indexes seen in ``name[i]`` parameters (any non-negative
integers), answered in increasing index order (``reply_order="shuffled"``
shuffles the lines with the seeded generator). The unindexed form is one message
with index 0. Each reply line is ``code;clientId;providerId``, where clientId is the
one sent or else the message's index, and providerId is there only with ``ok``.
Parameters ``name[i]`` other than subject/address/text/clientId are the message's
extra parameters; unindexed ones other than the credentials (``priority``...) are
the request's, recorded with each of its messages. Per message, the first rule that
matches gives the code:

==========================  ===========================================================
``error-syntax``            subject, address or text missing or empty; a clientId
                            holding ``;``, CR or LF (echoed as an empty clientId)
``error-id-not-unique``     two messages of the request answer with the same clientId
                            (their clientId, or their index when they have none)
``error-address-format``    address not 10 to 15 ASCII digits after an optional ``+``
``error-subject-format``    subject neither up to 15 digits after an optional ``+`` nor
                            up to ``subject_max_length`` (11) printable ASCII characters
``error-address-unknown``   address in ``deny_addresses``, or ``allow_addresses`` given
                            and the address not in it (exact string match)
``error-subject-unknown``   the same with ``deny_subjects`` / ``allow_subjects``
``error-system``            address in ``system_error_addresses``
``error-id-not-unique``     with ``unique_client_ids``: the clientId was accepted in an
                            earlier request (during the emulator's lifetime)
``error-insufficient-       with ``balance``: no balance left for this message (see
balance``                   Balance above)
``ok``                      accepted: recorded in the ledger, given the next providerId
==========================  ===========================================================

clientIds. ``client_ids="echo"`` (the default) echoes the clientId sent, as
above. ``client_ids="ignore"`` (``--client-ids ignore``) plays a platform that
ignores them: every reply line carries the message's index even when a clientId
was sent (``ok;0;1001`` for ``clientId[0]=a1``); the ledger still records the id
sent, and no two messages of a request can clash. ``max_client_id_length=N``
(``--max-client-id-length``) echoes only the first N characters of a clientId
(``clientId[0]=abcdefgh`` with N=4: ``ok;abcd;1001``), as a platform with a
shorter column might; checks and the ledger use the whole id.
``unique_client_ids=True`` (``--unique-client-ids``) remembers every clientId of
an accepted message for the emulator's lifetime (``ledger.clear()`` too) and
answers a later message with one of them ``error-id-not-unique;<clientId>;``
without applying it again; it needs ``client_ids="echo"``.

Extra fields. ``send_extra="2"`` (``--send-extra 2``) appends ``;2`` to every
``ok`` SEND line: ``ok;0;1001;2`` (a part count, as some platforms add); other
lines are unchanged.

Compressed replies. ``reply_encoding`` (``--reply-encoding``) sends every reply
body with a ``Content-Encoding`` no client asked for: ``gzip``, ``deflate``
(zlib-wrapped), ``deflate-raw`` (raw deflate labelled ``deflate``), ``br`` (the
body as it is, labelled ``br``: a coding a client cannot read) or ``gzip-bomb``
(1 GiB of zeros and then the reply's lines, in about 1 MB of gzip; made once per
process, in a few seconds).

ProviderIds are consecutive integers from ``first_provider_id`` (1001), unique for
the emulator's lifetime, ``ledger.clear()`` included.

STATUS. ``providerId[i]`` (or one unindexed ``providerId``); one line per id, in
index order (or shuffled): ``ok;ID;status;dateTime;reason`` for a message in the
ledger, else ``error-provider-id-unknown;ID;;;``. dateTime is
``yyyy.MM.dd HH:mm:ss`` (``date_style="dashes"``: ``yyyy-MM-dd HH:mm:ss``), the
time the current status began, in local wall-clock time from ``emu.start_time``.
Shapes from the field: ``date_style="iso_z"`` (``2012-03-15T19:53:14.000000Z``),
``"iso_offset"`` (``2012-03-15 19:53:14+0300``), ``"garbage"`` (``sometime today``),
``"iso_basic"`` (``20120315T195314+0300``), ``"iso_week"`` (``2012-W11-4T19:53:14Z``),
``"iso_ordinal"`` (``2012-075T19:53:14Z``), ``"iso_minutes"`` (``2012-03-15T19:53``),
``"padded"`` (``2012.03.15 19:53:14 ``, a trailing space).
``text_charset="windows-1251"`` writes reasons (and ``reject_description``, a text
appended to refused SEND lines: ``error-address-format;0;;TEXT``) in that charset;
``content_type`` is every 200 reply's Content-Type (declaring it, or not).
``status_case="upper"`` (``--status-case upper``) writes every status in capitals
in STATUS replies and pushes alike (``ok;1001;DELIVERED;2012.03.15 19:53:14;``).

Lifecycle. A message's status follows the last digit of its address, on the
emulator's clock (``speed`` emulator seconds per real second, or only
``advance()`` when ``speed`` is 0 or None); ``S``, ``F``, ``D`` are ``sent_after``
(1), ``final_after`` (2) and ``delayed_for`` (60):

======  =============================================  ==========================
digit   statuses (each from the time shown)            reason
======  =============================================  ==========================
0-5     enqueued t0, sent t0+S, delivered t0+F
6       enqueued t0, sent t0+S, undelivered t0+F       ``unknown-subscriber``
7       enqueued t0, sent t0+S, failed t0+F            ``platform-error``
8       delayed t0, sent t0+D+S, delivered t0+D+F
9       enqueued t0, cancelled t0+F (never sent)       ``cancelled-by-operator``
======  =============================================  ==========================

Field statuses. ``field_statuses=True`` (``--field-statuses``) gives digits 1 to 5
the statuses seen in the field besides the specification's seven (0 and 6 to 9
stay as above):

======  =============================================  ==========================
digit   statuses (each from the time shown)            reason
======  =============================================  ==========================
1       enqueued t0, sent t0+S, delivered t0+F,
        read t0+F+S
2       enqueued t0, sent t0+S, expired t0+F           ``not-delivered-in-time``
3       enqueued t0, sent t0+S, vp_expired t0+F        ``validity-period-over``
4       enqueued t0, sent t0+S, rejected t0+F          ``user-blocked``
5       enqueued t0, no-match-template t0+F            ``template-not-found``
        (never sent)
======  =============================================  ==========================

Reasons. ``semicolon_reasons=True`` (``--semicolon-reasons``) writes the reasons of
digits 6, 7 and 9 with ``;`` in them: ``absent;subscriber``, ``platform;error``,
``cancelled;by-operator``, so a STATUS line reads
``ok;1001;undelivered;2012.03.15 19:53:07;absent;subscriber``. ``reasons``
(``{"6": TEXT}`` or ``{6: TEXT}``; ``--reason 6=TEXT``) sets the reason of any
digit's final status to any text without CR or LF (Cyrillic too), over both.

Push mode. With ``push_url`` (command line: ``--push-url``), the emulator also
plays the one call the platform makes itself: it pushes every status change of
every accepted message to that URL (``hpgfast receive``, or
``hpgfast.receiver.Receiver``) with ``hpgfast.receiver.push``. The changes are
those of the table above (the first status, ``enqueued`` or ``delayed``, at
acceptance; then ``sent``; then the final status with its reason, each from the
time shown; a status that lasts no time is pushed too), in time order, as the
clock reaches them, whether it runs at ``speed`` or moves by ``advance()``. Each
report is ``providerId``, ``status``, ``dateTime`` (as STATUS would show it then,
in ``date_style``) and ``reason``; a push carries up to ``push_batch`` (500) of
them, shaped as ``push_shape``: ``"lines"`` (POST of STATUS lines), ``"form"``
(POST of indexed ``providerId[i]=..`` fields), ``"query"`` (GET, the same
fields in the query, at most 8000 bytes of it a push) or ``"json"`` (POST of a JSON
list of ``{"imOutMessageId", "dlvStatus", "dlvStatusAt", "reason"}`` objects, the
time in ISO-8601 with milliseconds, as the platform's later callbacks). ``push_secret`` goes in the
``X-HPG-Secret`` header (command line: ``--push-secret-file`` or the environment
variable ``HPGFAST_PUSH_SECRET``, never an option value). The clock is looked at
every ``push_interval`` (0.05) real seconds, and at once after ``advance()`` or an
accepted SEND. A push that fails (no connection, a timeout, any answer but 200)
is retried with the same reports after a pause doubling from ``push_interval``
up to 2 s, so reports arrive in order and each once, unless an answer was lost
after the receiver took them (hpgfast's receiver takes such a repeat once). After
``push_attempts`` (10, as the platform) failed attempts, a 400 as much as a lost
connection, the push's reports are dropped and the next ones go on.
``emu.pushes`` counts ``sent`` and ``failed`` pushes, the ``reports`` delivered,
those ``dropped`` and those ``pending`` (due, not yet delivered).
``close()`` stops pushing (waiting at most 5 s for a push under way); what was
not pushed by then is dropped. Finding due changes costs nothing per message not
yet due, and messages in flight cost a byte each plus 24 per request.

Faults: see ``Faults``. Each kind strikes at scheduled request numbers (1-based,
every request line read counts) or at a seeded rate; ``refuse`` counts connections.
Beside the connection-level ones they play the whole-request shapes a platform or
the gateways in front of it give: ``http_503``, ``http_429`` (with ``Retry-After``),
``code_only`` (a 200 whose body is one code-only line, any code:
``error-system\\n``, ``error-address-format\\n``, ``ok\\n``), ``raw_reply`` (any
status, headers and body, verbatim: ``ok;;1001\\n``, ``ok;0;\\n``, two lines for one
clientId, an HTML login page, a redirect with a ``Location``, a 503 with
``Retry-After``), ``trickle`` (the reply a byte at a time) and ``late_bytes`` (stale
bytes written on a keep-alive connection after a reply: a whole extra 200 response
with ``ok;0;999999`` and ``ok;1;999998``, a late 429, or a bare code-only line; a
client must never take them for its next request's reply). The ledger holds exactly
the messages that were applied: all of them for ``reset_after_accept``,
``cut_reply``, ``delay``, ``trickle``, ``late_bytes``, and for ``http_503``,
``http_429``, ``code_only`` and ``raw_reply`` with ``variant="apply"`` (a gateway
that gave up on a platform which went on: a resend then meets its clientIds again);
none for ``http_500``, ``refuse``, a request the rate limit turned away, and
``http_503``, ``http_429``, ``code_only`` and ``raw_reply`` with their default
``variant="drop"``. On the command line every knob is an option:
``--raw-reply-status``, ``--raw-reply-header 'Name: value'`` (repeatable) and
``--raw-reply-file``; ``--http-503-retry-after`` (``--retry-after`` is the 429s');
``--http-503-apply`` and the other ``--KIND-apply``; ``--late-bytes-file``.

Cost: every setting above is off by default, and off it costs nothing per
message (a check per request at most).
"""

from __future__ import annotations

from ._emulator import Emulator
from ._faults import FAULT_KINDS, Fault, Faults
from ._ledger import Ledger, LedgerEntry
from ._lifecycle import FIELD_LIFECYCLE, LIFECYCLE, Lifecycle, Timing
from ._settings import LIVE_SETTINGS, EmulatorSettings

__all__ = [
    "FAULT_KINDS",
    "FIELD_LIFECYCLE",
    "LIFECYCLE",
    "LIVE_SETTINGS",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "Faults",
    "Ledger",
    "LedgerEntry",
    "Lifecycle",
    "Timing",
]
