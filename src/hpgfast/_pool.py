"""The private parts of urllib3 that ``hpgfast.Client`` uses, and only here.

Why private: urllib3's public way to make a request, ``HTTPConnectionPool.urlopen()``,
re-parses and re-encodes the whole target in pure Python (about 3 ms for an 8 KiB
query, a hundred times what the rest of a request costs), and its pool has no
public way to check a connection out and back in without it. So the client uses the
two methods ``urlopen()`` itself is built on, ``_get_conn`` and ``_put_conn``
(urllib3's LIFO queue, its check for a connection the server dropped, ``maxsize``
with ``block=True``), and, in a child after ``fork()``, the pool's queue
(``HTTPConnectionPool.pool``).

Through a proxy, an HTTPS connection's tunnel is hpgfast's own
(``TunnelConnection``): it overrides ``_tunnel()``, which urllib3's
``HTTPSConnection.connect()`` calls after ``set_tunnel()`` (as http.client's does).

These names are the same from urllib3 2.0 to the newest 2.x; pyproject.toml bounds
urllib3 to that range, and tests/test_urllib3_contract.py checks each one's
signature and behaviour against the installed urllib3, failing with the name and
the version when either changes.
"""

from __future__ import annotations

import queue
from typing import Any, Callable, Optional

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util import Url

from ._base import PROXY_HEAD_MAX, TunnelRefused, tunnel_reply

__all__ = ["TunnelConnection", "TunnelPool", "drop_inherited", "give_back", "take", "tunnelled"]


def _private(name: str) -> Callable[..., Any]:
    method = getattr(HTTPConnectionPool, name, None)
    if not callable(method):
        from importlib.metadata import version

        raise ImportError(
            f"hpgfast needs urllib3's HTTPConnectionPool.{name}, which urllib3 "
            f"{version('urllib3')} does not have; install urllib3>=2.0,<3"
        )
    return method  # type: ignore[no-any-return]


#: ``take(pool)``: a connection checked out of ``pool``: an idle one (closed first
#: if the server dropped it, so its ``sock`` is None), or a new unconnected one;
#: blocks while ``maxsize`` are out; ``ClosedPoolError`` once the pool is closed.
#: The function itself, not a wrapper: no extra call on the per-request path.
take: Callable[[HTTPConnectionPool], Any] = _private("_get_conn")

#: ``give_back(pool, conn)``: ``conn`` back into ``pool`` for the next ``take``;
#: closed instead when the pool is closed.
give_back: Callable[[HTTPConnectionPool, Any], None] = _private("_put_conn")


def tunnelled(host: str, port: int) -> dict[str, Any]:
    """The keyword arguments of a ``TunnelPool`` whose connections go through the
    proxy at ``host:port``."""
    return {
        "_proxy": Url(scheme="http", host=host, port=port),
        # urllib3 turns TCP_NODELAY off behind a proxy (it writes a request's headers
        # and body apart); hpgfast writes a request at once: keep it on.
        "socket_options": HTTPConnection.default_socket_options,
    }


def drop_inherited(pool: HTTPConnectionPool) -> None:
    """In a child after ``fork()``: let go of a pool made by the parent, touching
    nothing the parent still uses.

    The idle connections' sockets are the parent's too: they are only closed
    here (closing a descriptor the parent still holds sends nothing). The queue is
    read without its lock (a parent thread may have held it at the fork), then made
    new, empty and with a fresh lock: urllib3's finalizer of the pool drains that
    very queue object, and then finds nothing to close and no lock to wait on.
    Without a queue the pool's ``close()`` does nothing.
    """
    idle: Optional[queue.Queue[Any]] = pool.pool
    if idle is not None:
        conns = list(idle.queue)
        type(idle).__init__(idle, idle.maxsize)
        for conn in conns:
            if conn is not None:  # urllib3 fills the queue with None placeholders
                conn.close()
    pool.pool = None


class TunnelConnection(HTTPSConnection):
    """urllib3's HTTPS connection, with the ``CONNECT`` through a proxy hpgfast's own.

    urllib3 (``connect()``) opens the socket to the proxy, calls ``_tunnel()``
    once ``set_tunnel()`` named the platform, then does TLS with the platform's
    name (SNI and host name check) over the tunnel. http.client's ``_tunnel``
    reads the proxy's reply without a bound and tells a refusal only by the text
    of an ``OSError``; this one writes the request the client built (credentials
    and all, in one write), reads the reply head within ``PROXY_HEAD_MAX`` and
    raises ``TunnelRefused`` for anything but a 2xx.
    """

    #: The ``CONNECT`` request, set by the client before ``connect()``.
    hpgfast_connect: bytes = b""

    def _tunnel(self) -> None:
        sock = self.sock
        sock.sendall(self.hpgfast_connect)
        head = b""
        while True:
            # No need to stop at the head's end: after a 2xx head the proxy sends
            # nothing until the TLS handshake begins (tunnel_reply checks).
            data = sock.recv(4096)
            if not data:
                raise ConnectionResetError("the proxy closed the connection after CONNECT")
            head += data
            if b"\r\n\r\n" in head:
                break
            if len(head) > PROXY_HEAD_MAX:
                raise TunnelRefused(None, f"a reply head over {PROXY_HEAD_MAX} bytes")
        tunnel_reply(head)


class TunnelPool(HTTPSConnectionPool):
    """An HTTPS pool whose connections are ``TunnelConnection`` (give it ``tunnelled()``)."""

    ConnectionCls = TunnelConnection
