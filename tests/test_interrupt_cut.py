"""After an interrupt's grace, the requests still on the wire are cut at once.

Against a server that accepts every connection, reads the requests and never
answers, an interrupt (SIGINT, SIGTERM, a cancel) must end the call, and the
process, about ``INTERRUPT_GRACE`` seconds after it: the requests still out are
``unknown`` and their threads are released then, not when the read timeout
(30 s by default) runs out. The bounds below are generous (the machine may be
loaded); the read timeout they guard against is far past them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpgfast import AsyncClient, Client, Code, Message, results_of
from hpgfast.client import INTERRUPT_GRACE
from hpgfast.emulator import Emulator, Fault, Faults
from hpgfast.journal import Journal

MAX_BATCH = 10
N = 200  # 20 requests: more than any concurrency here keeps on the wire
TIMEOUT = 30.0  # the read timeout a stuck worker would wait out


class _BlackHole:
    """A server on loopback that accepts, reads and never answers."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._server.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hpg"
        self._requests = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> int:
        """How many request lines arrived so far."""
        with self._lock:
            return self._requests

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.requests < n:
            assert time.monotonic() < deadline, f"only {self.requests} of {n} requests came"
            time.sleep(0.01)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                with self._lock:
                    self._requests += data.count(b"GET ")
        except OSError:
            pass

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._server.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[_BlackHole]:
    server = _BlackHole()
    try:
        yield server
    finally:
        server.close()


def _messages() -> list[Message]:
    return [Message(f"7904{i:07d}", f"cut #{i}", "Shop") for i in range(N)]


def _write_csv(path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,client_id\n")
        for i in range(N):
            f.write(f"7900{i:07d},message {i},c{i}\n")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_the_cli_ends_one_grace_after_the_interrupt(
    tmp_path: Path, black_hole: _BlackHole, concurrency: int, signum: int
) -> None:
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path)
    env = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
    command = [
        sys.executable, "-m", "hpgfast", "send", "--url", black_hole.url, "--login", "CLIENT",
        "--file", str(csv_path), "--journal", str(journal_path),
        "--concurrency", str(concurrency), "--max-batch", str(MAX_BATCH), "--quiet",
        "--subject", "hpgfast", "--timeout", str(TIMEOUT),
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        black_hole.wait_for(concurrency)  # every connection has a request on the wire
        time.sleep(0.1)
        signalled = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    # The read timeout would give about 28 s; one grace and the exit take about 2.
    assert took < INTERRUPT_GRACE + 4, took
    states: dict[str, int] = {}
    with Journal(journal_path) as journal:
        for row in journal.rows():
            states[row[6]] = states.get(row[6], 0) + 1
    # The requests cut on the wire are unknown; nothing else was sent.
    assert states.get("unknown", 0) == concurrency * MAX_BATCH, states
    assert states.get("in_flight", 0) == 0, states
    assert set(states) <= {"unknown", "pending", "not_sent"}, states


def test_the_client_and_its_with_block_end_one_grace_after_the_interrupt(
    black_hole: _BlackHole,
) -> None:
    messages = _messages()
    raised_at = left_at = 0.0
    signalled: list[float] = []

    def fire() -> None:
        black_hole.wait_for(2)
        time.sleep(0.1)
        signalled.append(time.monotonic())
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    with pytest.raises(KeyboardInterrupt) as info:
        try:
            with Client(
                black_hole.url, "CLIENT", "P@ssw0rd", concurrency=2, max_batch=MAX_BATCH,
                timeout=TIMEOUT,
            ) as client:  # fmt: skip
                thread.start()
                try:
                    client.send(messages)
                finally:
                    raised_at = time.monotonic()
        finally:
            left_at = time.monotonic()
            thread.join()
    results = info.value.results  # type: ignore[attr-defined]
    codes = [r.code for r in results]
    assert codes.count(Code.UNKNOWN) == 2 * MAX_BATCH, codes
    assert set(codes) == {Code.UNKNOWN, Code.NOT_SENT}, codes
    assert raised_at - signalled[0] < INTERRUPT_GRACE + 2
    # close() does not wait for the cut requests' threads until the read timeout.
    assert left_at - raised_at < 2, left_at - raised_at
    assert left_at - signalled[0] < INTERRUPT_GRACE + 3


def test_the_cut_requests_threads_are_released(black_hole: _BlackHole) -> None:
    # Outside the with block too: the worker threads stuck on the cut requests end
    # within a moment of the interrupt's grace, so the interpreter's exit (which
    # joins them) is not held up either.
    client = Client(
        black_hole.url, "CLIENT", "P@ssw0rd", concurrency=4, max_batch=MAX_BATCH,
        timeout=TIMEOUT,
    )  # fmt: skip
    try:

        def fire() -> None:
            black_hole.wait_for(4)
            time.sleep(0.1)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

        thread = threading.Thread(target=fire, daemon=True)
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            client.send(_messages())
        thread.join()
        raised = time.monotonic()
        while any(t.name.startswith("hpgfast_") and _busy(t) for t in threading.enumerate()):
            assert time.monotonic() - raised < 3, "a worker thread is still stuck on the wire"
            time.sleep(0.02)
    finally:
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 2


def _busy(thread: threading.Thread) -> bool:
    """True while a worker thread runs a request (not idle in the pool)."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_run":
            return True
        frame = frame.f_back
    return False


def test_the_async_client_ends_one_grace_after_a_cancel(black_hole: _BlackHole) -> None:
    async def main() -> tuple[float, list[str]]:
        async with AsyncClient(
            black_hole.url, "CLIENT", "P@ssw0rd", concurrency=2, max_batch=MAX_BATCH,
            timeout=TIMEOUT,
        ) as client:  # fmt: skip
            task = asyncio.ensure_future(client.send(_messages()))
            while black_hole.requests < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            cancelled = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as info:
                await task
            took = time.monotonic() - cancelled
            # results_of: on 3.9 and 3.10 the awaited task raises a CancelledError of
            # its own, with send()'s (and its results) as its context.
            results = results_of(info.value)
            assert results is not None
            return took, [r.code for r in results]

    took, codes = asyncio.run(main())
    assert codes.count(Code.UNKNOWN) == 2 * MAX_BATCH, codes
    # One grace, not one per task (the grace given twice took 2 * INTERRUPT_GRACE).
    assert took < INTERRUPT_GRACE + 1.5, took


def test_a_worker_waiting_out_a_retry_after_is_woken_by_the_interrupt() -> None:
    # Every request is answered 429 with Retry-After 30: the worker threads wait
    # to send again. An interrupt stops the batch; their wait must end with it, not
    # 30 s later (close() would not wait for them, but the interpreter's exit would).
    faults = Faults(http_429=Fault(1.0, seconds=30))
    with Emulator(speed=None, faults=faults) as emu:
        client = Client(emu.url, emu.login, emu.password, concurrency=2, max_batch=MAX_BATCH)
        try:

            def fire() -> None:
                deadline = time.monotonic() + 30
                while emu.requests["send"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

            thread = threading.Thread(target=fire, daemon=True)
            thread.start()
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(_messages())
            thread.join()
            raised = time.monotonic()
            while any(t.name.startswith("hpgfast_") and _busy(t) for t in threading.enumerate()):
                assert time.monotonic() - raised < 3, "a worker thread still waits to retry"
                time.sleep(0.02)
        finally:
            client.close()
    codes = [r.code for r in info.value.results]  # type: ignore[attr-defined]
    assert set(codes) == {Code.NOT_SENT}, codes
