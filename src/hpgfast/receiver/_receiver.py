"""``Receiver``: the standalone server for pushed reports, started and stopped.

Strategy: ``Receiver`` only assembles: it checks its limits into one
``ServerSettings``, builds the application (``make_app``), and runs the selector
server of ``_server`` on a thread of its own until ``close()``.
"""

from __future__ import annotations

import threading
from typing import Any, Optional
from urllib.parse import quote

from ._app import Callback, make_app
from ._server import (
    BODY_DEADLINE,
    HEADER_DEADLINE,
    MAX_CONNECTIONS,
    MAX_READING,
    MAX_WAITING,
    REQUEST_DEADLINE,
    ServerSettings,
    _Handler,
    _Server,
)


class Receiver:
    """A standalone, threaded HTTP server for pushed reports: ``with Receiver(cb, ...)``.

    Takes ``make_app``'s arguments, plus ``host`` and ``port`` (0: a free one),
    ``max_connections`` requests served at once (more are answered 503),
    ``max_waiting`` connections waiting for their request head (more close the
    oldest), ``max_reading`` requests waiting for their body (more answer the
    oldest 503), ``header_deadline``, the seconds a connection has to send its head,
    ``body_deadline``, the seconds a request then has to send its whole body (408
    after it), and ``request_deadline``, the seconds one connection may take in
    all. These are checked once into ``settings``, a frozen ``ServerSettings``; the
    application it serves is ``app`` (a ``ReceiverApp``, its ``app.settings`` a
    ``ReceiverSettings``). It serves from a background thread until ``close()``.
    ``url`` is its base URL; ``url_shown`` the same (the secret travels in a header,
    never in it).

    Headers whose name holds an underscore are dropped before the application sees
    them (WSGI would read ``X_HPG_Secret`` as ``X-HPG-Secret``). With ``make_app``
    in another server the same is needed, from it or the proxy in front: nginx
    (``underscores_in_headers off``) and gunicorn (22 and later) drop them by default.
    """

    def __init__(
        self,
        callback: Optional[Callback] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
        max_waiting: int = MAX_WAITING,
        max_reading: int = MAX_READING,
        header_deadline: float = HEADER_DEADLINE,
        body_deadline: float = BODY_DEADLINE,
        request_deadline: float = REQUEST_DEADLINE,
        **settings: Any,
    ) -> None:
        limits = ServerSettings(
            host=host, port=port, max_connections=max_connections, max_waiting=max_waiting,
            max_reading=max_reading, header_deadline=header_deadline,
            body_deadline=body_deadline, request_deadline=request_deadline,
        )
        app = make_app(callback, **settings)
        server = _Server((host, port), _Handler, bind_and_activate=False)
        server.limits = limits
        server.app_settings = app.settings
        secret = app.settings.secret
        if secret:
            server.secret_forms = tuple(sorted({secret, quote(secret, safe="")}, key=len,
                                               reverse=True))
        try:
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        server.set_app(app)
        #: The server's settings and the application it serves (``app.settings``).
        self.settings = limits
        self.app = app
        self._server = server
        self.host = host
        self.port: int = self._server.server_address[1]
        bracket = f"[{host}]" if ":" in host else host
        self.url = f"http://{bracket}:{self.port}/"
        self.url_shown = self.url
        self._thread = threading.Thread(
            target=self._server.serve, name=f"hpgfast-receiver:{self.port}", daemon=True,
        )
        self._closed = False
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Connections waiting for their request head now (they hold no thread)."""
        return len(self._server._waiting)

    @property
    def reading(self) -> int:
        """Requests whose head has arrived, waiting for the rest of their body (no thread)."""
        return len(self._server._reading)

    @property
    def serving(self) -> int:
        """Requests being served now, each on a thread of its own (a slot)."""
        with self._server._workers_lock:
            return len(self._server._workers)

    @property
    def lingering(self) -> int:
        """Refused connections being read out before they are closed."""
        return len(self._server._lingering)

    def close(self) -> None:
        """Stop serving, let requests under way finish (5 s at most), close (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.stop()
        self._thread.join()
        self._server.join_workers(5.0)
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hpgfast Receiver {self.url}>"

