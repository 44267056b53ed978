"""A ``Client`` inherited across ``fork()`` (prefork servers, multiprocessing).

The children of a process whose client already holds pooled keep-alive connections
each send with that same client object. A child must not write on the parent's
sockets (children sharing one socket read each other's replies: results with
another child's provider id, or ``unknown``), must not wait on the parent's worker
or deadline threads (they do not exist in the child), and must leave the parent's
connections as they were (no FIN, no TLS close_notify): the parent sends again on
them afterwards.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import trustme

from hpgfast import Client, Code, Message
from hpgfast.emulator import Emulator

CHILDREN = 20
PER_CHILD = 20

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns about fork() in a process with threads (the emulator's).
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _emulator(tls: Optional[trustme.CA], tmp_path: Path) -> Emulator:
    if tls is None:
        return Emulator(speed=None, latency=0.005)
    cert = tls.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    return Emulator(speed=None, latency=0.005, certfile=str(chain), keyfile=str(key))


def _messages(child: int) -> list[Message]:
    return [Message(f"79{child:03d}{i:06d}", f"child {child} #{i}") for i in range(PER_CHILD)]


def _child(client: Client, child: int, go: int, out: int) -> None:
    """The child's whole life: wait for the start, send, write the results, exit."""
    code = 1
    try:
        os.read(go, 1)
        results = client.send(_messages(child))
        rows = [[m.address, r.code, r.provider_id] for m, r in zip(_messages(child), results)]
        os.write(out, (json.dumps({"child": child, "rows": rows}) + "\n").encode())
        code = 0
    finally:
        os._exit(code)


def _collect(out: int, pids: list[int], timeout: float) -> list[dict[str, Any]]:
    """Every child's report; kills the children left when ``timeout`` runs out."""
    buffer = b""
    deadline = time.monotonic() + timeout
    while buffer.count(b"\n") < len(pids):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([out], [], [], left)[0]:
            break
        chunk = os.read(out, 65536)
        if not chunk:
            break
        buffer += chunk
    if buffer.count(b"\n") < len(pids):  # a child stalled: end it, then fail below
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    exits = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    reports = [json.loads(line) for line in buffer.splitlines()]
    assert len(reports) == len(pids), f"{len(reports)} of {len(pids)} children reported"
    assert exits == [0] * len(pids), exits
    return reports


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("client_ids", [True, False], ids=["ids", "indexes"])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_forked_children_send_on_connections_of_their_own(
    ca: trustme.CA, tmp_path: Path, tls: bool, client_ids: bool, concurrency: int
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with _emulator(ca if tls else None, tmp_path) as emu:
        client = Client(
            emu.url, emu.login, emu.password, default_subject="Shop", max_batch=5,
            concurrency=concurrency, client_ids=client_ids, timeout=5.0,
            ca_certs=str(ca_file) if tls else None,
        )  # fmt: skip
        with client:
            # Pooled keep-alive connections (as many as the concurrency), and for
            # concurrency > 1 the worker threads: all of it is the parent's.
            warm = [Message(f"7800{i:07d}", f"warm #{i}") for i in range(40)]
            assert all(r.ok for r in client.send(warm))
            assert _wait_for(lambda: emu.connections == concurrency)
            go_read, go_write = os.pipe()
            out_read, out_write = os.pipe()
            pids = []
            for child in range(CHILDREN):
                pid = os.fork()
                if pid == 0:
                    os.close(go_write)
                    os.close(out_read)
                    _child(client, child, go_read, out_write)
                pids.append(pid)
            os.close(go_read)
            os.close(out_write)
            started = time.monotonic()
            os.write(go_write, b"x" * CHILDREN)  # all at once: they race for the sockets
            reports = _collect(out_read, pids, timeout=60.0)
            took = time.monotonic() - started
            os.close(go_write)
            os.close(out_read)

            ledger = {e.address: e.provider_id for e in emu.ledger}
            for report in reports:
                for address, code, provider_id in report["rows"]:
                    assert address.startswith(f"79{report['child']:03d}")
                    assert code == Code.OK, (report["child"], address, code)
                    # The child's own message's id: not one read off another's reply.
                    assert provider_id == ledger[address], (report["child"], address)
            assert len(ledger) == 40 + CHILDREN * PER_CHILD
            assert took < 20.0  # no child waited out a timeout on a shared socket

            # The children left the parent's connections alone (a shutdown() or a
            # TLS close in a child would have closed them for the parent too).
            assert _wait_for(lambda: emu.connections == concurrency)
            again = [Message(f"7801{i:07d}", f"after #{i}") for i in range(40)]
            results = client.send(again)
            assert all(r.ok for r in results)
            ledger = {e.address: e.provider_id for e in emu.ledger}
            assert [r.provider_id for r in results] == [ledger[m.address] for m in again]
            assert emu.connections == concurrency  # the same connections, reused


def test_a_child_of_a_closed_client_finds_it_closed() -> None:
    with Emulator(speed=None) as emu:
        client = Client(emu.url, emu.login, emu.password, default_subject="Shop")
        client.send([Message("79030000001", "hello")])
        client.close()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                client.send([Message("79030000002", "hello")])
            except RuntimeError as exc:
                code = 0 if "closed" in str(exc) else 2
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@pytest.fixture(autouse=True)
def _no_stray_children() -> Iterator[None]:
    yield
    try:
        while os.waitpid(-1, os.WNOHANG) != (0, 0):
            pass
    except ChildProcessError:
        pass
