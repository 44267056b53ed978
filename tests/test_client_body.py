"""The client reading a reply's body as the field sends it, over real HTTP.

Compressed replies nobody asked for (``Content-Encoding: gzip``, ``deflate`` zlib
or raw, an unknown coding, a decompression bomb) and replies larger than the
fixed 4 MiB cap of old (a SEND of 100,000 messages with 20-digit ids). Each test
runs over both clients, asserts every message's outcome, the requests the
emulator saw, and (through the ledger) that no SEND was repeated.
"""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from hpgfast import Client, Code, Message, ProtocolError
from hpgfast.emulator import Emulator, Fault
from ledger_checks import assert_truthful

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")

#: 20-digit ids (clientIds, providerIds): the longest reply lines seen per message.
LONG_ID = 10**19


def numbered(n: int, *, client_ids: bool = False) -> list[Message]:
    return [
        Message(
            f"7903{i:07d}",
            f"body text #{i}",
            client_id=f"{LONG_ID + i}" if client_ids else None,
        )
        for i in range(n)
    ]


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


def codes(results: list[Any]) -> Counter[str]:
    return Counter(r.code for r in results)


def assert_once(emu: Emulator, messages: list[Message]) -> None:
    """Every message reached the platform exactly once (no SEND was repeated)."""
    assert Counter(e.text for e in emu.ledger) == Counter(m.text for m in messages)


# -- compressed replies ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
def test_compressed_reply_is_read(encoding: str) -> None:
    messages = numbered(20)
    with Emulator(speed=None, reply_encoding=encoding) as emu:
        with client_for(emu) as client:
            results = client.send(messages)
            assert codes(results) == {Code.OK: 20}
            assert emu.requests["send"] == 1
            assert_once(emu, messages)
            assert_truthful(emu, messages, results)
            # STATUS replies come compressed too.
            ids = [r.provider_id for r in results]
            statuses = client.status(ids)
            assert codes(statuses) == {Code.OK: 20}
            assert [s.provider_id for s in statuses] == ids
            assert emu.requests["status"] == 1


def test_a_coding_on_two_header_lines_is_undone_twice() -> None:
    # "Content-Encoding: gzip" twice is "gzip, gzip" (RFC 9110): decoded twice.
    import gzip

    body = b"ok;0;1001\nok;1;1002\n"
    with Emulator(speed=None) as emu:
        emu.faults.raw_reply = Fault(
            rate=1.0,
            headers=[("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")],
            body=gzip.compress(gzip.compress(body)),
        )
        with client_for(emu, client_ids=False) as client:
            results = client.send(numbered(2))
        assert codes(results) == {Code.OK: 2}
        assert emu.requests["send"] == 1


def test_unknown_coding_is_a_protocol_failure() -> None:
    messages = numbered(20)
    with Emulator(speed=None, reply_encoding="br") as emu:
        with client_for(emu, retries=2) as client:
            results = client.send(messages)
            # Applied, and the reply cannot be read: unknown, never sent again.
            assert codes(results) == {Code.UNKNOWN: 20}
            assert all(isinstance(r.error, ProtocolError) for r in results)
            assert "br" in str(results[0].error)
            assert emu.requests["send"] == 1
            assert_once(emu, messages)
            assert_truthful(emu, messages, results)
            # STATUS is asked again (retries), then unknown.
            statuses = client.status(["1001", "1002"])
            assert codes(statuses) == {Code.UNKNOWN: 2}
            assert emu.requests["status"] == 3


def test_decompression_bomb_is_refused_unread() -> None:
    messages = numbered(20)
    with Emulator(speed=None, reply_encoding="gzip-bomb") as emu:
        with client_for(emu, retries=1, timeout=60) as client:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
            results = client.send(messages)
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            assert codes(results) == {Code.UNKNOWN: 20}
            assert all(isinstance(r.error, ProtocolError) for r in results)
            assert "max_reply_bytes" in str(results[0].error)
            assert emu.requests["send"] == 1
            assert_once(emu, messages)
            assert_truthful(emu, messages, results)
            # Not inflated past the cap (4 MiB here): the 1 GiB never existed.
            assert grown < 256 * 1024, f"the process grew {grown} KiB reading a bomb"


# -- the reply cap follows the request -------------------------------------------------------


@pytest.fixture
def big_emu() -> Iterator[Emulator]:
    with Emulator(speed=None, first_provider_id=LONG_ID, max_request_line=64 << 20) as emulator:
        yield emulator


def test_large_send_reply_is_read(big_emu: Emulator) -> None:
    # 100,000 messages with 20-digit clientIds and providerIds: a 4.5 MB reply,
    # over the 4 MiB that was once the cap for any request.
    messages = numbered(100_000, client_ids=True)
    with client_for(big_emu, max_request_bytes=64 << 20, timeout=120) as client:
        assert client.max_reply_bytes is None  # the default: the cap follows the request
        results = client.send(messages)
    assert codes(results) == {Code.OK: 100_000}
    assert [r.client_id for r in results] == [m.client_id for m in messages]
    assert big_emu.requests["send"] == 1
    assert_once(big_emu, messages)
    entry = big_emu.ledger.by_provider_id(results[-1].provider_id)
    assert entry is not None and entry.text == messages[-1].text


def test_explicit_cap_is_a_hard_cap(big_emu: Emulator) -> None:
    # Set by hand, the cap holds for every request, whatever its size: the reply
    # over it leaves the SEND's messages unknown (and never sent again).
    messages = numbered(200, client_ids=True)
    with client_for(big_emu, max_request_bytes=64 << 20, max_reply_bytes=4096) as client:
        assert client.max_reply_bytes == 4096
        results = client.send(messages)
    assert codes(results) == {Code.UNKNOWN: 200}
    assert "max_reply_bytes=4096" in str(results[0].error)
    assert big_emu.requests["send"] == 1
    assert_once(big_emu, messages)


def test_large_status_reply_is_read() -> None:
    # STATUS lines are longer: 100,000 providerIds of 19 digits (the emulator's
    # longest), a reply of over 5 MB.
    messages = numbered(100_000, client_ids=True)
    with Emulator(speed=None, first_provider_id=10**18, max_request_line=64 << 20) as emu:
        with client_for(emu, max_request_bytes=64 << 20, timeout=120) as client:
            sent = client.send(messages)
            assert codes(sent) == {Code.OK: 100_000}
            statuses = client.status([r.provider_id for r in sent])
        assert codes(statuses) == {Code.OK: 100_000}
        assert [s.provider_id for s in statuses] == [r.provider_id for r in sent]
        assert emu.requests["send"] == 1
        assert emu.requests["status"] == 1
        assert_once(emu, messages)
