"""urllib3's private names that hpgfast.Client uses still mean what it relies on.

``hpgfast._pool`` is the only place that touches them (``HTTPConnectionPool._get_conn``,
``_put_conn`` and the pool's queue ``pool``); each is checked here against the
installed urllib3, by signature and by behaviour over real loopback connections,
and a failure names the attribute and the urllib3 version.
"""

from __future__ import annotations

import inspect
import queue
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ClosedPoolError

from hpgfast import _pool

URLLIB3 = version("urllib3")


@contextmanager
def contract(name: str) -> Iterator[None]:
    """Turns any failure inside into one that says which urllib3 name broke, and where."""
    try:
        yield
    except Exception as exc:
        pytest.fail(
            f"urllib3 {URLLIB3}: {name} no longer does what hpgfast/_pool.py relies on "
            f"({type(exc).__name__}: {exc}); adapt _pool.py or narrow the urllib3 "
            "bound in pyproject.toml",
            pytrace=True,
        )


@pytest.fixture
def server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback server that accepts and keeps every connection (the list) open."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def loop() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join()
        for sock in accepted:
            sock.close()


def new_pool(port: int, cls: type[HTTPConnectionPool] = HTTPConnectionPool) -> Any:
    return cls("127.0.0.1", port, maxsize=1, block=True, retries=False, timeout=2.0)


def test_the_installed_urllib3_is_in_the_declared_range() -> None:
    declared = pyproject_bound()
    assert declared.specifier.contains(URLLIB3), (URLLIB3, str(declared))
    # An upper bound: a new major version is checked here before it is let in.
    assert any(spec.operator == "<" for spec in declared.specifier), str(declared)


def pyproject_bound() -> Requirement:
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^dependencies = \[(.*?)\]', text, re.M | re.S)
    assert match, "no dependencies in pyproject.toml"
    names = [Requirement(r) for r in re.findall(r'"([^"]+)"', match.group(1))]
    (urllib3,) = [r for r in names if r.name == "urllib3"]
    return urllib3


def test_the_private_methods_have_the_signatures_used() -> None:
    for name, params in (("_get_conn", ["self", "timeout"]), ("_put_conn", ["self", "conn"])):
        with contract(f"HTTPConnectionPool.{name}"):
            method = getattr(HTTPConnectionPool, name)
            assert list(inspect.signature(method).parameters) == params
            # _pool calls the base class's function on an HTTPS pool too: valid only
            # while the subclass does not override it.
            assert getattr(HTTPSConnectionPool, name) is method
    with contract("HTTPConnectionPool._get_conn"):
        assert inspect.signature(HTTPConnectionPool._get_conn).parameters["timeout"].default is None
        assert _pool.take is HTTPConnectionPool._get_conn
    with contract("HTTPConnectionPool._put_conn"):
        assert _pool.give_back is HTTPConnectionPool._put_conn


def test_take_gives_a_connection_and_give_back_keeps_it_for_the_next_take(
    server: tuple[int, list[socket.socket]],
) -> None:
    port, _ = server
    pool = new_pool(port)
    with contract("HTTPConnectionPool._get_conn"):
        conn = _pool.take(pool)
        # A new connection, not yet connected: the client connects it itself.
        assert isinstance(conn, HTTPConnection) and type(conn) is pool.ConnectionCls
        assert conn.sock is None and (conn.host, conn.port) == ("127.0.0.1", port)
        conn.connect()
        sock = conn.sock
    with contract("HTTPConnectionPool._put_conn"):
        _pool.give_back(pool, conn)
    with contract("HTTPConnectionPool._get_conn"):
        again = _pool.take(pool)
        assert again is conn and again.sock is sock  # kept alive, reused (LIFO)
    _pool.give_back(pool, again)
    pool.close()


def test_take_blocks_while_maxsize_are_out(server: tuple[int, list[socket.socket]]) -> None:
    port, _ = server
    pool = new_pool(port)
    first = _pool.take(pool)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(_pool.take(pool)), daemon=True)
    waiter.start()
    waiter.join(0.3)
    with contract("HTTPConnectionPool._get_conn (block=True)"):
        assert waiter.is_alive() and not got, "a second take() did not wait for the first"
    _pool.give_back(pool, first)
    waiter.join(2.0)
    with contract("HTTPConnectionPool._get_conn (block=True)"):
        assert got == [first]
    pool.close()


def test_take_closes_a_connection_the_server_dropped(
    server: tuple[int, list[socket.socket]],
) -> None:
    port, accepted = server
    pool = new_pool(port)
    conn = _pool.take(pool)
    conn.connect()
    _pool.give_back(pool, conn)
    for _ in range(200):
        if accepted:
            break
        threading.Event().wait(0.01)
    accepted[0].close()  # the server ends the idle connection
    threading.Event().wait(0.05)
    with contract("HTTPConnectionPool._get_conn (dropped-connection check)"):
        again = _pool.take(pool)
        # The client reconnects a connection whose sock is None before writing.
        assert again is conn and again.sock is None
    pool.close()


def test_a_closed_pool_refuses_take_and_closes_what_comes_back(
    server: tuple[int, list[socket.socket]],
) -> None:
    port, _ = server
    pool = new_pool(port)
    conn = _pool.take(pool)
    conn.connect()
    pool.close()
    with contract("HTTPConnectionPool._put_conn (closed pool)"):
        _pool.give_back(pool, conn)
        assert conn.sock is None
    with contract("HTTPConnectionPool._get_conn (closed pool)"), pytest.raises(ClosedPoolError):
        _pool.take(pool)


def test_an_https_pool_hands_out_its_own_connections() -> None:
    pool = HTTPSConnectionPool("127.0.0.1", 1, maxsize=1, block=True, retries=False)
    with contract("HTTPConnectionPool._get_conn (HTTPS)"):
        conn = _pool.take(pool)
        assert type(conn) is pool.ConnectionCls and conn.sock is None
    _pool.give_back(pool, conn)
    pool.close()


def test_drop_inherited_closes_the_idle_connections_without_the_queue_s_lock(
    server: tuple[int, list[socket.socket]],
) -> None:
    port, _ = server
    pool = new_pool(port)
    conn = _pool.take(pool)
    conn.connect()
    _pool.give_back(pool, conn)
    with contract("HTTPConnectionPool.pool (the idle queue)"):
        idle = pool.pool
        assert isinstance(idle, queue.Queue) and conn in idle.queue
        assert idle.maxsize == 1
    # As after a fork() while a parent thread held the queue's lock.
    parents_lock = idle.mutex
    parents_lock.acquire()
    dropping = threading.Thread(target=_pool.drop_inherited, args=(pool,), daemon=True)
    dropping.start()
    dropping.join(2.0)
    with contract("HTTPConnectionPool.pool (the idle queue)"):
        assert not dropping.is_alive(), "drop_inherited waited for the queue's lock"
        assert conn.sock is None and pool.pool is None
        # urllib3's finalizer drains this very queue object: it must be empty, with
        # a lock nobody holds.
        with pytest.raises(queue.Empty):
            idle.get(block=False)
        pool.close()  # does nothing now
    # The pool's finalizer, when the last reference goes, must not wait either.
    held = [pool]
    del pool
    finalizing = threading.Thread(target=held.clear, daemon=True)
    finalizing.start()
    finalizing.join(2.0)
    with contract("HTTPConnectionPool's finalizer (of the idle queue)"):
        assert not finalizing.is_alive(), "the pool's finalizer waited for the queue's lock"
    parents_lock.release()


def test_connect_calls_the_tunnel_of_a_connection_set_to_tunnel() -> None:
    """``HTTPSConnection.connect()`` opens the socket to the proxy and calls the
    ``_tunnel()`` that ``_pool.TunnelConnection`` overrides, once ``set_tunnel()``
    named the platform; its refusal comes out of ``connect()`` as it was raised."""
    from hpgfast._base import TunnelRefused

    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def refuse() -> None:
        conn = listener.accept()[0]
        got.append(conn.recv(4096))
        conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    with contract("HTTPSConnection.connect() -> _tunnel() after set_tunnel()"):
        pool = _pool.TunnelPool(
            "platform.invalid", 443, retries=False, **_pool.tunnelled("127.0.0.1", port)
        )
        conn = _pool.take(pool)
        assert (conn.host, conn.port) == ("127.0.0.1", port)  # urllib3 dials the proxy
        assert isinstance(conn, _pool.TunnelConnection)
        conn.set_tunnel("platform.invalid", 443)
        conn.hpgfast_connect = b"CONNECT platform.invalid:443 HTTP/1.1\r\n\r\n"
        with pytest.raises(TunnelRefused) as info:
            conn.connect()
        assert info.value.status == 407
        thread.join(5)
        assert got == [b"CONNECT platform.invalid:443 HTTP/1.1\r\n\r\n"]
        conn.close()
        pool.close()
    listener.close()
