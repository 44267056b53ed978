"""The transports the client rows compare, built and warmed up as the rows run them.

``bench_client.py`` times them (CPU per message, interleaved rounds) and
``_counted.py`` counts their instructions under callgrind: both get their sends
from ``transports``, so that the two measure the very same code. This module imports
no pytest (a process under valgrind pays for every import, about 50x).

The transports, by name (``client-cpu-*`` / ``aio-cpu-*`` groups' names):

- ``hpgfast``: ``Client`` (``hpgfast-sync``, in the asyncio groups, is the same);
- ``raw-socket``: the floor: hpgfast's codec, one keep-alive socket, a hand-written
  HTTP/1.1 exchange, ``parse_send``;
- ``aiohttp-naive``: the strongest loop a user could write instead (``aiohttp_peer``);
- ``AsyncClient``; ``asyncio-floor``: raw asyncio streams and hpgfast's codec;
  ``floor+core``: the asyncio floor's I/O driving hpgfast's sans-IO core.

Every peer gets ``Client``'s own request boundaries (``hpgfast._bench.bounds``).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hpgfast import AsyncClient, Client, Message
from hpgfast._bench import LOGIN, PASSWORD, bounds
from hpgfast.codec import encode_params, encode_send, parse_send


class Server(Protocol):
    """Where the emulator listens (an ``EmulatorProcess``, or its address passed on)."""

    url: str
    host: str
    port: int


def raw_peer(
    proc: Server, spans: list[tuple[int, int]], max_request_bytes: int
) -> Callable[[Sequence[Message]], int]:
    sock = socket.create_connection((proc.host, proc.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rfile = sock.makefile("rb")
    path = ("/" + proc.url.split("/", 3)[3] + "send?").encode()
    head = path + encode_params([("login", LOGIN), ("password", PASSWORD)]) + b"&"
    max_bytes = max_request_bytes - len(b"GET  HTTP/1.1") - len(head)
    host = f"Host: {proc.host}:{proc.port}\r\n\r\n".encode()

    def send(batch: Sequence[Message]) -> int:
        accepted = 0
        for start, end in spans:
            query, _ = encode_send(batch, start=start, max_bytes=max_bytes, max_count=end - start)
            sock.sendall(b"GET " + head + query + b" HTTP/1.1\r\n" + host)
            rfile.readline()
            length = 0
            while True:
                line = rfile.readline()
                if line == b"\r\n":
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            accepted += sum(r.ok for r in parse_send(rfile.read(length)))
        return accepted

    def close() -> None:
        rfile.close()
        sock.close()

    send.close = close  # type: ignore[attr-defined]
    return send


def aiohttp_peer(url: str, spans: list[tuple[int, int]]) -> Any:
    """A SEND loop written the way users write one with aiohttp: a params list.

    One ``ClientSession``, one request at a time, ``params=`` a list of ``(name,
    value)`` tuples per request (yarl's C quoter encodes it), the reply split into
    lines. Returns ``(send, close)`` coroutine functions.
    """
    import aiohttp  # a peer, not a dependency: only the benchmarks import it

    session: Any = None

    async def send(batch: Sequence[Message]) -> int:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession()
        accepted = 0
        for start, end in spans:
            params: list[tuple[str, Any]] = [("login", LOGIN), ("password", PASSWORD)]
            for i, m in enumerate(batch[start:end]):
                params += [
                    (f"subject[{i}]", m.subject),
                    (f"address[{i}]", m.address),
                    (f"text[{i}]", m.text),
                ]
            async with session.get(url + "send", params=params) as reply:
                reply.raise_for_status()
                text = await reply.text()
            for line in text.splitlines():
                code, _client_id, _provider_id = line.split(";")
                accepted += code == "ok"
        return accepted

    async def close() -> None:
        if session is not None:
            await session.close()

    return send, close


def asyncio_floor(
    proc: Server, spans: list[tuple[int, int]], max_request_bytes: int
) -> Any:
    """The asyncio floor: raw asyncio streams, one keep-alive connection, hpgfast's codec."""
    import asyncio

    path = ("/" + proc.url.split("/", 3)[3] + "send?").encode()
    head = path + encode_params([("login", LOGIN), ("password", PASSWORD)]) + b"&"
    max_bytes = max_request_bytes - len(b"GET  HTTP/1.1") - len(head)
    host = f"Host: {proc.host}:{proc.port}\r\n\r\n".encode()
    streams: list[Any] = []

    async def send(batch: Sequence[Message]) -> int:
        if not streams:
            streams.extend(await asyncio.open_connection(proc.host, proc.port, limit=1 << 22))
        reader, writer = streams
        accepted = 0
        for start, end in spans:
            query, _ = encode_send(batch, start=start, max_bytes=max_bytes, max_count=end - start)
            writer.write(b"GET " + head + query + b" HTTP/1.1\r\n" + host)
            head_block = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head_block.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            accepted += sum(r.ok for r in parse_send(await reader.readexactly(length)))
        return accepted

    async def close() -> None:
        if streams:
            streams[1].close()
            await streams[1].wait_closed()

    return send, close


def asyncio_floor_with_core(proc: Server, max_request_bytes: int) -> Any:
    """The asyncio floor's I/O driving hpgfast's sans-IO core (plan, begin, report).

    Between the floor and AsyncClient: what it costs above the floor is the core's
    (shared with the sync client); what AsyncClient costs above it is its transport.
    """
    import asyncio

    from hpgfast import AsyncClient
    from hpgfast.core import Reply

    core = AsyncClient(proc.url, LOGIN, PASSWORD, max_request_bytes=max_request_bytes)._core
    host = f" HTTP/1.1\r\nHost: {proc.host}:{proc.port}\r\n\r\n".encode()
    streams: list[Any] = []

    async def send(batch: Sequence[Message]) -> int:
        if not streams:
            streams.extend(await asyncio.open_connection(proc.host, proc.port, limit=1 << 22))
        reader, writer = streams
        run = core.batch("send", batch, None)
        while (request := run.next(time.monotonic())) is not None:
            line = run.begin_line(request, time.monotonic())
            assert line is not None
            writer.write(line + host)
            head_block = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for header in head_block.split(b"\r\n"):
                if header[:15].lower() == b"content-length:":
                    length = int(header[15:])
            body = await reader.readexactly(length)
            run.report(request, Reply(200, body, None), time.monotonic(), length)
        return sum(r.ok for r in run.finish())

    async def close() -> None:
        if streams:
            streams[1].close()
            await streams[1].wait_closed()

    return send, close


#: The transports of each timed group, in the order of its interleaved rounds.
CLIENT = ("hpgfast", "raw-socket", "aiohttp-naive")
AIO = ("AsyncClient", "aiohttp-naive", "asyncio-floor", "floor+core", "hpgfast-sync")


def transports(
    server: Server, batch: Sequence[Message], max_request_bytes: int, names: Sequence[str]
) -> tuple[dict[str, Callable[[], Any]], Callable[[], None]]:
    """The named transports as sends of ``batch`` taking no argument, each warmed up.

    Each has sent ``batch`` once (connections open, caches filled). Returns them by
    name, in the order asked, and the function that closes them all.
    """
    spans = bounds(batch, max_request_bytes, server.url)
    loop = asyncio.new_event_loop()
    closers: list[Callable[[], Any]] = []
    runs: dict[str, Callable[[], Any]] = {}

    def close() -> None:
        for closer in reversed(closers):
            closer()
        loop.close()

    def on_loop(send: Callable[[Sequence[Message]], Any]) -> Callable[[], Any]:
        return lambda: loop.run_until_complete(send(batch))

    try:
        for name in names:
            if name in ("hpgfast", "hpgfast-sync"):
                client = Client(server.url, LOGIN, PASSWORD, max_request_bytes=max_request_bytes)
                closers.append(client.close)
                runs[name] = lambda client=client: client.send(batch)
            elif name == "raw-socket":
                raw = raw_peer(server, spans, max_request_bytes)
                closers.append(raw.close)  # type: ignore[attr-defined]
                runs[name] = lambda raw=raw: raw(batch)
            elif name == "AsyncClient":
                aclient = AsyncClient(
                    server.url, LOGIN, PASSWORD, max_request_bytes=max_request_bytes
                )
                closers.append(lambda aclient=aclient: loop.run_until_complete(aclient.aclose()))
                runs[name] = on_loop(aclient.send)
            else:
                send, aclose = {
                    "aiohttp-naive": lambda: aiohttp_peer(server.url, spans),
                    "asyncio-floor": lambda: asyncio_floor(server, spans, max_request_bytes),
                    "floor+core": lambda: asyncio_floor_with_core(server, max_request_bytes),
                }[name]()
                closers.append(lambda aclose=aclose: loop.run_until_complete(aclose()))
                runs[name] = on_loop(send)
            # Warm: connections open, caches filled; and every transport sends it all.
            sent = runs[name]()
            accepted = sent if isinstance(sent, int) else sum(r.ok for r in sent)
            assert accepted == len(batch), (name, accepted)
    except BaseException:
        close()
        raise
    return runs, close
