"""The emulator proper: settings in, a platform on loopback out, and its public face.

Strategy: ``Emulator`` is one object made of three parts, each in its own module:
the HTTP server (``_server``), the HPG operations (``_platform``) and push mode
(``_push``), joined here as mixins over the state they share (``_core``). All of
them read their settings from one frozen ``EmulatorSettings`` value (``_settings``),
built and checked once; the few settings that may change while running change by
replacing that value whole.
"""

from __future__ import annotations

import itertools
import logging
import random
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional, Union

from .._wire import SEND, STATUS
from ._core import Setting
from ._faults import FaultLike, Faults
from ._ledger import Ledger
from ._lifecycle import SEMICOLON_REASONS, Lifecycle, Schedule, Timing, status_at
from ._platform import Platform
from ._push import Pusher
from ._server import HttpServer
from ._settings import CLIENT_ID_MODES, LIVE_SETTINGS, PUSH_SHAPES, EmulatorSettings

__all__ = ["CLIENT_ID_MODES", "LIVE_SETTINGS", "PUSH_SHAPES", "Emulator", "EmulatorSettings"]

log = logging.getLogger(__name__)


class Emulator(HttpServer, Platform, Pusher):
    """A local HPG platform on loopback: ``with Emulator() as emu: ... emu.url ...``.

    Args:
        host, port: where to listen; port 0 picks a free one (see ``.port``).
        client, connector: the two path segments of the connector's base URL.
        login, password: the credentials the connector accepts.
        login_param, password_param: the credential parameters' names (a connector
            may expect ``pass`` instead of ``password``).
        max_request_line: the longest request line answered; longer ones get 414.
        reply_order: ``"sent"`` (request index order) or ``"shuffled"``.
        date_style: ``"dots"`` (``2012.03.15 19:53:14``) or ``"dashes"``; shapes
            from the field: ``"iso_z"`` (``2012-03-15T19:53:14.000000Z``),
            ``"iso_offset"`` (``2012-03-15 19:53:14+0300``), ``"garbage"`` (no date:
            ``sometime today``), ``"iso_basic"``, ``"iso_week"``, ``"iso_ordinal"``,
            ``"iso_minutes"``, ``"padded"`` (a trailing space).
        allow_addresses, allow_subjects: when given, only these are allowed (others
            get ``error-address-unknown`` / ``error-subject-unknown``).
        deny_addresses, deny_subjects: these are never allowed.
        system_error_addresses: messages to these get ``error-system``.
        subject_max_length: the longest alphanumeric subject (numeric ones: 15).
        speed: emulator seconds per real second for the lifecycle clock; ``None``
            or 0 stops it, so it moves only by ``advance()``.
        sent_after, final_after, delayed_for: the lifecycle's durations
            (emulator seconds; see ``hpgfast.emulator`` for the rule table).
        first_provider_id: the first providerId given.
        latency: real seconds added before every reply.
        certfile, keyfile: serve HTTPS with this certificate chain and key.
        ssl_context: serve HTTPS with this server-side context instead.
        seed: seeds the generator behind fault rates and shuffled replies.
        faults: a ``Faults``, or a mapping of fault kinds (see ``Faults``).
        push_url: push every status change of accepted messages to this URL (an
            ``hpgfast receive`` server, ``hpgfast.receiver.Receiver``), as the
            platform does; None: no pushes.
        push_secret: the shared secret sent in the ``X-HPG-Secret`` header; the
            ``push_secret`` attribute may be changed while running.
        push_shape: ``"lines"`` (POST, STATUS lines), ``"form"`` (POST, indexed form),
            ``"query"`` (GET, indexed query; split to keep the query under 8000
            bytes) or ``"json"`` (POST, a JSON list of the platform's later
            callbacks: ``imOutMessageId``, ``dlvStatus``, ``dlvStatusAt`` in ISO-8601,
            ``reason``).
        push_batch: the most reports per push.
        push_interval: real seconds between looks at the clock for due changes.
        push_attempts: attempts at one push (the first included) before its
            reports are dropped (counted in ``pushes["dropped"]``).
        balance: messages the account may still send (None: no limit); see
            ``hpgfast.emulator`` for the code-only and per-line answers once it is
            spent. The ``balance`` attribute reads what is left and may be set
            (a top-up) while running.
        account_state: None, or a code (``error-account-locked``,
            ``error-system-blocked``, any) answered as the single code-only line
            to every authenticated SEND and STATUS; may be set while running.
        rate_limit: requests per second let through (a token bucket in front of
            the platform); more get ``429 Too Many Requests`` and nothing is
            processed. None: no limit.
        rate_burst: the bucket's size, requests (1: evenly spaced requests only).
        retry_after: the ``Retry-After`` seconds of the rate limit's 429s.
        status_case: ``"lower"`` (``delivered``) or ``"upper"`` (``DELIVERED``)
            statuses in STATUS replies and pushes.
        field_statuses: digits 1 to 5 play ``read``, ``expired``, ``vp_expired``,
            ``rejected``, ``no-match-template`` (see ``hpgfast.emulator``).
        semicolon_reasons: final reasons holding ``;`` (``absent;subscriber``).
        reasons: digit ("6" or 6) -> reason of its final status, over the defaults.
        send_extra: a field appended to every ``ok`` SEND line (``"2"``:
            ``ok;0;1001;2``, a part count); None: none.
        client_ids: ``"echo"`` (reply lines carry the clientId sent) or
            ``"ignore"`` (they carry the message's index even when one was sent).
        max_client_id_length: echo at most this many characters of a clientId.
        unique_client_ids: a clientId accepted in any earlier request (for the
            emulator's lifetime) is answered ``error-id-not-unique``, not applied.
        reply_encoding: every reply's body sent with a ``Content-Encoding`` no
            client asked for: ``"gzip"``, ``"deflate"`` (zlib-wrapped),
            ``"deflate-raw"`` (raw deflate labelled ``deflate``), ``"br"`` (the
            body as it is, labelled ``br``) or ``"gzip-bomb"`` (1 GiB of zeros,
            then the reply's lines, in about 1 MB of gzip); None: plain replies.
        reject_description: a description appended to every refused SEND line
            (``error-address-format;0;;<description>``); None: none.
        text_charset: the charset reasons and descriptions are written in (the
            reply body is encoded in it): ``"windows-1251"`` plays a platform that
            writes its texts so.
        content_type: the Content-Type of every 200 reply (``"text/plain"`` declares
            no charset; ``"text/plain; charset=windows-1251"`` declares one).

        settings: all of the above as one ``EmulatorSettings`` (then give no other
            keyword).

    The keywords build one frozen ``EmulatorSettings``, ``emu.settings``, which the
    emulator reads everything from. Each setting is also an attribute reading it
    (``emu.push_url``); ``account_state``, ``login``, ``password`` and
    ``push_secret`` (``LIVE_SETTINGS``) may be assigned while the emulator runs,
    which replaces ``emu.settings`` (checked again) for the next request or push;
    assigning any other raises ``AttributeError``. Three are state that starts from
    the setting: ``balance`` reads (and tops up) what is left, ``faults`` is the
    ``Faults`` the emulator strikes with (change its kinds, or assign a new one), and
    ``port`` is the port bound (``settings.port`` may be 0).

    Raises:
        ValueError: a setting out of range, naming it (an unknown ``reply_order``...).
        TypeError: a setting of the wrong type, or an unknown keyword.
        OSError: the address cannot be bound.
    """

    def __init__(self, *, settings: Optional[EmulatorSettings] = None, **options: Any) -> None:
        faults = options.get("faults")
        if settings is None:
            settings = EmulatorSettings(**options)
        elif options:
            raise TypeError(
                f"give settings or keywords, not both (got settings and {', '.join(options)})"
            )
        elif not isinstance(settings, EmulatorSettings):
            raise TypeError(f"settings must be an EmulatorSettings, got {type(settings).__name__}")
        self._settings = settings
        self._settings_lock = threading.Lock()
        # A Faults given is the emulator's own, as before: changing it changes the
        # emulator (settings.faults keeps what it was at the start).
        self._faults = faults if isinstance(faults, Faults) else Faults(**settings.faults)
        self._lifecycle = Lifecycle(
            field_statuses=settings.field_statuses,
            status_case=settings.status_case,
            reasons={**(SEMICOLON_REASONS if settings.semicolon_reasons else {}),
                     **settings.reasons},
        )
        self._timing = Timing(settings.sent_after, settings.final_after, settings.delayed_for)
        self.ledger = Ledger(settings.first_provider_id)
        self._balance = settings.balance
        self._account_lock = threading.Lock()
        self._seen_ids = set()
        self._repeated_ids = 0
        self._tokens = settings.rate_burst
        self._tokens_at = time.monotonic()
        self._rate_limited = 0
        self._rng = random.Random(settings.seed)
        self._speed = float(settings.speed or 0.0)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self.start_time = datetime.now().replace(microsecond=0)
        self._lock = threading.Lock()
        self._requests = Counter()
        self._request_count = 0
        self._connection_count = itertools.count(1)
        self._conn_ids = itertools.count()
        self._conns = {}
        self._closing = threading.Event()
        self._closed = False
        self._push_lock = threading.Lock()
        self._schedule = (
            None if settings.push_url is None else Schedule(self._timing, self._lifecycle)
        )
        self._pushes = Counter(sent=0, failed=0, reports=0, dropped=0)
        self._push_wake = threading.Event()
        self._push_thread: Optional[threading.Thread] = None
        base = f"/{settings.client}/{settings.connector}/"
        self._paths = {f"{base}{SEND}".encode(): SEND, f"{base}{STATUS}".encode(): STATUS}
        self._ssl = settings.ssl_context
        if settings.certfile is not None:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(settings.certfile, settings.keyfile)
        self._start_threads(settings.host, settings.port)
        log.debug("emulator listening at %s", self.url)

    def _start_threads(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        try:
            self._listener.setblocking(False)
            self._selector.register(self._listener, selectors.EVENT_READ)
            self._selector.register(self._wake_r, selectors.EVENT_READ)
            self._port = self._listener.getsockname()[1]
            self._thread = threading.Thread(
                target=self._accept_loop, name=f"hpgfast-emulator:{self._port}", daemon=True
            )
            self._thread.start()
            if self._schedule is not None:
                self._push_thread = threading.Thread(
                    target=self._push_loop, name=f"hpgfast-emulator:{self._port}:push",
                    daemon=True,
                )
                self._push_thread.start()
        except BaseException:
            self._closing.set()
            accepting = getattr(self, "_thread", None)
            if accepting is not None and accepting.ident is not None:
                self._wake_w.send(b"x")
                accepting.join()
            self._release()
            raise

    # -- settings ----------------------------------------------------------------------

    @property
    def settings(self) -> EmulatorSettings:
        """The settings the emulator runs with now (a frozen value)."""
        return self._settings

    host = Setting[str]()
    client = Setting[str]()
    connector = Setting[str]()
    login = Setting[str]()
    password = Setting[str]()
    login_param = Setting[str]()
    password_param = Setting[str]()
    max_request_line = Setting[int]()
    reply_order = Setting[str]()
    date_style = Setting[str]()
    allow_addresses = Setting[Optional[frozenset[str]]]()
    deny_addresses = Setting[frozenset[str]]()
    allow_subjects = Setting[Optional[frozenset[str]]]()
    deny_subjects = Setting[frozenset[str]]()
    system_error_addresses = Setting[frozenset[str]]()
    subject_max_length = Setting[int]()
    speed = Setting[Optional[float]]()
    sent_after = Setting[float]()
    final_after = Setting[float]()
    delayed_for = Setting[float]()
    first_provider_id = Setting[int]()
    latency = Setting[float]()
    certfile = Setting[Optional[str]]()
    keyfile = Setting[Optional[str]]()
    ssl_context = Setting[Optional[ssl.SSLContext]]()
    seed = Setting[Optional[int]]()
    push_url = Setting[Optional[str]]()
    push_secret = Setting[Optional[str]]()
    push_shape = Setting[str]()
    push_batch = Setting[int]()
    push_interval = Setting[float]()
    push_attempts = Setting[int]()
    account_state = Setting[Optional[str]]()
    rate_limit = Setting[Optional[float]]()
    rate_burst = Setting[float]()
    retry_after = Setting[int]()
    status_case = Setting[str]()
    field_statuses = Setting[bool]()
    semicolon_reasons = Setting[bool]()
    reasons = Setting[Mapping[str, str]]()
    send_extra = Setting[Optional[str]]()
    client_ids = Setting[str]()
    max_client_id_length = Setting[Optional[int]]()
    unique_client_ids = Setting[bool]()
    reply_encoding = Setting[Optional[str]]()
    reject_description = Setting[Optional[str]]()
    text_charset = Setting[str]()
    content_type = Setting[str]()

    @property
    def port(self) -> int:
        """The port listened on (``settings.port`` may be 0: any free one)."""
        return self._port

    @property
    def faults(self) -> Faults:
        """The faults striking now; change its kinds, or assign a ``Faults`` or a mapping."""
        return self._faults

    @faults.setter
    def faults(self, value: Union[Faults, Mapping[str, FaultLike], None]) -> None:
        self._faults = Faults.coerce(value)

    @property
    def lifecycle(self) -> Lifecycle:
        """The statuses played, made from ``field_statuses``, ``status_case``, ``reasons``."""
        return self._lifecycle

    @property
    def timing(self) -> Timing:
        """The lifecycle's durations, from ``sent_after``, ``final_after``, ``delayed_for``."""
        return self._timing


    @property
    def url(self) -> str:
        """The connector's base URL, with a trailing slash (``https`` when serving TLS)."""
        scheme = "https" if self._ssl is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.client}/{self.connector}/"

    @property
    def requests(self) -> Counter[str]:
        """Requests served so far per operation (``send``, ``status``, ``other``): a copy."""
        with self._lock:
            return Counter(self._requests)

    @property
    def pushes(self) -> Counter[str]:
        """Push mode's counters, a copy: ``sent`` and ``failed`` pushes (HTTP requests),
        ``reports`` delivered by the sent ones, ``dropped`` reports given up on after
        ``push_attempts`` failed attempts, ``pending`` changes due but not pushed."""
        with self._lock:
            return Counter(self._pushes)

    @property
    def balance(self) -> Optional[int]:
        """Messages the account may still send; None: no limit. May be set (a top-up)."""
        with self._account_lock:
            return self._balance

    @balance.setter
    def balance(self, value: Optional[int]) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError(f"balance must be a whole number >= 0 or None, got {value!r}")
        with self._account_lock:
            self._balance = value

    @property
    def repeated_client_ids(self) -> int:
        """Messages answered ``error-id-not-unique`` because ``unique_client_ids`` found
        their clientId accepted in an earlier request: each one a message some sender
        tried a second time."""
        with self._account_lock:
            return self._repeated_ids

    @property
    def rate_limited(self) -> int:
        """Requests the rate limit (``rate_limit``) answered 429 so far."""
        with self._lock:
            return self._rate_limited

    @property
    def connections(self) -> int:
        """Connections open right now."""
        with self._lock:
            return len(self._conns)

    def advance(self, seconds: float) -> None:
        """Move the lifecycle clock forward (whatever its speed)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        self._push_wake.set()

    def status(self, provider_id: Union[str, int]) -> Optional[tuple[str, datetime, str]]:
        """(status, since when, reason) of a message now, as STATUS would tell; or None."""
        key = self._lookup(str(provider_id))
        if key is None:
            return None
        last, accepted = key
        status, since, reason = status_at(
            last, self.now() - accepted, self._timing, self._lifecycle
        )
        return status, self.datetime_at(accepted + since), reason

    def close(self) -> None:
        """Stop serving: close the listening socket and every connection, join threads."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        try:
            self._wake_w.send(b"x")
        except OSError:  # pragma: no cover - the pair is ours and open
            pass
        self._push_wake.set()
        self._thread.join()
        if self._push_thread is not None:
            self._push_thread.join()
        with self._lock:
            conns = list(self._conns.values())
        for _, sock in conns:
            try:
                # The plain socket's shutdown, even on an SSLSocket: it wakes the
                # handler's blocked read without touching the TLS state it uses.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in conns:
            thread.join()
        self._release()
        log.debug("emulator at port %d closed", self.port)

    def _release(self) -> None:
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Emulator {self.url} {state}, {len(self.ledger)} messages>"
