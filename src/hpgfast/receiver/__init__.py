"""Delivery reports the platform pushes: a WSGI application and a standalone server.

The specification says the platform "transmits the status of sent messages" to the
client but not how. hpgfast accepts the shapes a platform plausibly uses:

- HTTP GET or POST with the STATUS reply's fields as parameters, in the query or a
  form body (``application/x-www-form-urlencoded``): ``providerId``, ``status``,
  ``dateTime``, ``reason``, either plain (one report) or indexed ``providerId[i]``
  (several; as in every HPG request);
- HTTP POST with a body of STATUS reply lines, ``code;providerId;status;dateTime;reason``;
- HTTP POST with a JSON body (``application/json``, or any body starting with ``{``
  or ``[``): one object or a list of them, as the platform's later documentation
  sends delivery callbacks: ``{"imOutMessageId": 1001, "dlvStatus": "delivered",
  "dlvStatusAt": "2020-01-10T19:03:52.355+0300"}``. The names each field is read
  under are configurable (``json_fields``; the defaults, ``JSON_FIELDS``, read these
  and hpgfast's own ``providerId``, ``status``, ``dateTime``, ``reason``).

Times are read in HPG's two styles (``2012.03.15 19:53:07``, ``2012-03-15 19:53:07``)
and, in every shape, as ISO-8601 (``T`` or a space, optional seconds and fraction,
an offset ``Z``, ``+03``, ``+0300`` or ``+03:00``); a time with an offset is an aware
``datetime`` (converted to ``tz`` when it is given), one without takes ``tz`` (naive
when None). As in STATUS replies (``hpgfast._fields``), a time that cannot be read
is ``None`` and a reason that is not UTF-8 is decoded by the charset the request's
Content-Type declares, else with U+FFFD: neither costs the report, which keeps the
bytes of its line as ``.raw`` (a line made of the parameters or the JSON object
when those were sent). So is a time or a reason of another JSON type (an object, a
list, a boolean: the field is ``None``, its JSON text kept in ``.raw``; a number is
text) or one that cannot stand in a line (a line break; a ``;`` in a time: read on
its own by the same rules). Only the provider id and the status may refuse a
report: missing, not UTF-8, of another JSON type, holding ``;`` or a line break.

Each report becomes a ``StatusResult`` (read by the codec's ``read_status``, so the
codes and statuses are read exactly as in STATUS replies), goes to the user's
callback and, with a journal, into it (``source='push'``). The answer is ``ok``. A
report or a line that cannot be read costs only itself: the others are taken and
the answer is still 200, ``ok, line 2 not read (line 2: garbled code)`` (or ``ok, 2
of 5 reports not read (JSON report 1: ...)``), each one logged as a warning; they
are named by number and what was wrong, never by their bytes (a line may hold
anything, the secret included). A 4xx would make the platform retry the whole push,
good reports and all, to the same answer until it gave up. A push with nothing
readable at all is answered 400.
The platform pushes again what it thinks was not taken (up to 10 times): the keys
(code, providerId, status, time) of the last ``remember`` reports taken (100,000 by
default, least recently seen forgotten first) are kept, and a report seen again is
answered ``ok`` without reaching the callback or the journal a second time.

Strategy: a push endpoint is exposed to the network, so it trusts nothing. The
caller must present a shared secret (``X-HPG-Secret`` header, or the last segment
of the path, compared in constant time) and may be limited to source networks; the
body is capped (``Content-Length`` checked before reading, never more than
``max_body`` read); anything unreadable is answered 400 with a one-line reason.
No input reaches a traceback: the application catches everything and answers
500 "internal error" for its own faults (and the user callback's), logging them.

The standalone server (``Receiver``) must not be starved by peers that connect and
say nothing. So a connection costs a thread only once it has proven something:

1. One selector thread accepts. A peer outside the allow-list is refused at
   accept, from its address alone: a short 403 written without blocking, then its
   bytes are read and dropped for a second (so that the answer is not lost to a
   reset) and it is closed. It never waits for a slot.
2. Every other connection waits in the selector, holding a socket and a buffer but
   no thread, until its request head (request line and headers, at most 64 KiB)
   has arrived, for ``header_deadline`` seconds (10) at most; then it is closed.
   Up to ``max_waiting`` (1,024) wait at once; one more closes the oldest waiting.
   An idle peer cannot outlive its deadline, and a flood of them evicts its own
   oldest members while a real push, whose head arrives at once, is not waiting
   long enough to be the oldest.
3. The head is checked as the application will check it: without the secret (in
   its header or as the last path segment, both in the head) the request is
   answered 401 at once, and one whose ``Content-Length`` is over ``max_body``
   413, both without a thread and closed after the answer; neither waits for its
   body. Anyone could otherwise fill the requests waiting for a body with heads
   (evicting real pushes), or drain an oversized body in every slot.
   Otherwise it waits there, still without a thread, for the body its
   ``Content-Length`` announces, for ``body_deadline`` seconds (10) at most; then
   it is answered 408. Up to ``max_reading`` (64) wait so at once (each holds at
   most ``max_body`` bytes); one more answers 503 the oldest of the address that
   holds the most (its own oldest, when the newcomer's address holds as many), so
   one address cannot evict another's. So requests that send their head and never
   their body hold no slot, and only those with the secret wait.
4. A request whose bytes have all arrived takes one of ``max_connections`` (64)
   slots, a thread that runs the WSGI application from the buffered bytes; with
   every slot busy it is answered 503 at once. The application checks the source
   and the secret again (as it does under another WSGI server). A body it refuses
   without reading (chunked, a bad ``Content-Length``) goes to a slot at once;
   ``request_deadline`` (60 s) bounds a whole request, and each read is bounded
   by 30 s.

So with or without an allow-list, 500 idle connections, 70 that never send
their body, or 64 announcing an oversized one, hold no slot, and a flood of heads
without the secret evicts no push waiting for its body.

The secret header is read under its own name only: headers whose name holds an
underscore are dropped (WSGI would read ``X_HPG_Secret`` as ``X-HPG-Secret``, past a
proxy that strips or sets the real one), as nginx and gunicorn (22 and later) drop
them by default; ``make_app`` in another WSGI server relies on that server, or the
proxy in front of it, doing so.

socketserver's and wsgiref's own error reports (tracebacks they would print to
standard error) go to this module's logger instead, with the secret masked.

Layout: ``_app`` holds the WSGI application (``ReceiverApp``, built by
``make_app``) and its frozen ``ReceiverSettings``; ``_reports`` reads the report
shapes; ``_receiver`` is ``Receiver``, the standalone server, which runs the
selector server of ``_server`` with its frozen ``ServerSettings``; ``_push`` is
the platform's side (``push``). Settings are checked once, when their value is
made, and read from it alone.

HTTP answers: 200 ``ok`` (a repeat, too; ``ok, ... not read (...)`` when some
reports of the push were not read); 400 garbage, no report readable (the reason); 401 wrong or
missing secret; 403 source address not allowed; 405 other methods; 408 a body not
received within ``body_deadline``; 411 chunked bodies; 413 body over ``max_body``;
431 a request head over 64 KiB; 500 the callback (or the journal) failed: the
platform should push again; 503 every slot busy, or too many requests waiting for
their body.
"""


from __future__ import annotations

from ._app import (
    DEFAULT_MAX_BODY,
    DEFAULT_REMEMBER,
    SECRET_HEADER,
    ReceiverApp,
    ReceiverSettings,
    make_app,
)
from ._app import Callback as Callback
from ._push import push, status_json, status_lines, status_params
from ._receiver import Receiver
from ._reports import DATETIME, JSON_FIELDS, REASON, STATUS_PARAM

# The server's limits and the handler, importable from here as before (a test
# replaces the handler's ``handle``).
from ._server import BODY_DEADLINE as BODY_DEADLINE
from ._server import HEADER_DEADLINE as HEADER_DEADLINE
from ._server import MAX_CONNECTIONS as MAX_CONNECTIONS
from ._server import MAX_HEAD as MAX_HEAD
from ._server import MAX_READING as MAX_READING
from ._server import MAX_WAITING as MAX_WAITING
from ._server import REQUEST_DEADLINE as REQUEST_DEADLINE
from ._server import ServerSettings
from ._server import _Handler as _Handler

__all__ = [
    "DATETIME",
    "DEFAULT_MAX_BODY",
    "DEFAULT_REMEMBER",
    "JSON_FIELDS",
    "REASON",
    "SECRET_HEADER",
    "STATUS_PARAM",
    "Receiver",
    "ReceiverApp",
    "ReceiverSettings",
    "ServerSettings",
    "make_app",
    "push",
    "status_json",
    "status_lines",
    "status_params",
]
