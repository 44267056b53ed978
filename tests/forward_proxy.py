"""A small forward proxy on loopback, for the proxy tests: ``CONNECT`` tunnels and
absolute-form ``GET``, counting what it saw.

``with ForwardProxy() as proxy:`` serves at ``proxy.url`` (``http://127.0.0.1:PORT``)
on an asyncio loop of its own (a thread), until the block ends. It keeps every
byte a client sent it (``proxy.seen``: the CONNECT heads and the tunnelled bytes,
as the proxy had them) and each request it handled (``proxy.requests``:
``(method, target, headers)``). Modes:

- ``auth=(user, password)``: a request without the matching
  ``Proxy-Authorization: Basic`` gets ``407`` (``Proxy-Authenticate: Basic``);
- ``refuse=status``: every ``CONNECT`` gets that status (403, 502...);
- ``echo=True``: every forwarded ``GET`` gets ``502`` with the request's head as
  its body (a gateway's error page quoting what it got, credentials and all).

A forwarded ``GET`` goes to its origin with the request target made origin-form
and ``Proxy-Authorization`` removed, over one upstream connection per client
connection; the reply is relayed by its ``Content-Length`` (or to its end, then
both connections close).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any, Optional
from urllib.parse import urlsplit

HEAD_MAX = 64 * 1024


class ForwardProxy:
    def __init__(
        self,
        *,
        auth: Optional[tuple[str, str]] = None,
        refuse: Optional[int] = None,
        echo: bool = False,
        huge_head: bool = False,
    ) -> None:
        self.auth = auth
        self.refuse = refuse
        self.echo = echo
        self.huge_head = huge_head  # a 200 to CONNECT whose head is 100 KB, then a close
        self.seen = bytearray()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Optional[asyncio.AbstractServer] = None
        # Python 3.9/3.10's start_server neither keeps the task it starts per
        # connection nor the reader strongly: a connection task waiting for bytes is
        # only a garbage cycle, and the collector may destroy it mid-request (the
        # client then waits out its timeout). Hold each task until it ends.
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- the test's side ----------------------------------------------------------------

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connected, "127.0.0.1", 0), self._loop
        ).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _, _ in self.requests]

    def saw(self) -> bytes:
        with self._lock:
            return bytes(self.seen)

    # -- the proxy ----------------------------------------------------------------------

    def _record(self, data: bytes) -> None:
        with self._lock:
            self.seen += data

    async def _head(self, reader: asyncio.StreamReader) -> Optional[bytes]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        self._record(head)
        return head

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.auth is None:
            return True
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return headers.get("proxy-authorization") == f"Basic {token}"

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = self._loop.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: Optional[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = None
        try:
            while True:
                head = await self._head(reader)
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                with self._lock:
                    self.requests.append((method, target, headers))
                if not self._authorized(headers):
                    page = b"<html><body>407: who are you?</body></html>"
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="test"\r\n'
                        b"Content-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(page), page)
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                if self.echo:
                    writer.write(
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(head), head)
                    )
                    await writer.drain()
                    continue
                upstream = upstream or await self._open(target)
                if not await self._forward(head, target, upstream, writer):
                    return
        finally:
            writer.close()
            if upstream is not None:
                upstream[1].close()

    async def _open(self, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        url = urlsplit(target)
        return await asyncio.open_connection(url.hostname, url.port or 80)

    async def _tunnel(
        self, authority: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.huge_head:
            writer.write(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n")
            await writer.drain()
            return
        if self.refuse is not None:
            page = b"no tunnels here"
            writer.write(
                f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: {len(page)}\r\n\r\n".encode()
                + page
            )
            await writer.drain()
            return
        host, _, port = authority.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
            try:
                while data := await src.read(65536):
                    if keep:
                        self._record(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    async def _forward(
        self,
        head: bytes,
        target: str,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Forward one GET; True when both connections may serve another."""
        url = urlsplit(target)
        origin_form = (url.path or "/") + (f"?{url.query}" if url.query else "")
        lines = head.decode("latin-1").split("\r\n")
        method, _, version = lines[0].split(" ", 2)
        kept = [f"{method} {origin_form} {version}"] + [
            line for line in lines[1:] if not line.lower().startswith("proxy-authorization:")
        ]
        up_reader, up_writer = upstream
        up_writer.write("\r\n".join(kept).encode("latin-1"))
        await up_writer.drain()
        reply = await up_reader.readuntil(b"\r\n\r\n")
        length: Optional[int] = None
        for line in reply.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            body = await up_reader.read()
            writer.write(reply + body)
            await writer.drain()
            return False
        writer.write(reply + await up_reader.readexactly(length))
        await writer.drain()
        return True


def basic(user: str, password: str) -> Any:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
