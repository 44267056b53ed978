"""A loopback HTTP server that answers each request with what a test makes of its
request line: a hostile platform echoing the password back, in any shape."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def serve(reply: Callable[[bytes], bytes]) -> tuple[socket.socket, threading.Thread]:
    """Start answering each connection's request with ``reply(request line)``."""
    listener = socket.create_server(("127.0.0.1", 0))

    def loop() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with sock, sock.makefile("rb") as rfile:
                line = rfile.readline(1 << 20)
                while rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass
                try:
                    sock.sendall(reply(line))
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return listener, thread


def stop(listener: socket.socket, thread: threading.Thread) -> None:
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join()


@contextmanager
def server(reply: Callable[[bytes], bytes]) -> Iterator[str]:
    """``serve`` for a ``with`` block: yields the connector URL on it."""
    listener, thread = serve(reply)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/CLIENT/x/"
    finally:
        stop(listener, thread)
