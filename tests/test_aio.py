"""What only the asyncio client has: its import, its loop and its cancellation.

Everything both clients share (outcomes, faults, TLS, secrets, the 100,000-message
test) runs over both in test_client*.py through ``conftest.transport``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from hpgfast import AsyncClient, Code, Message, SendResult, results_of
from hpgfast.core import RequestFinished, Subscriber
from hpgfast.emulator import Emulator
from ledger_checks import assert_truthful


def numbered(n: int) -> list[Message]:
    return [Message(f"7903{i:07d}", f"text {i}", "Shop") for i in range(n)]


def test_importing_hpgfast_never_imports_asyncio() -> None:
    code = (
        "import sys, hpgfast\n"
        "assert 'asyncio' not in sys.modules\n"
        "hpgfast.AsyncClient\n"
        "assert 'asyncio' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cancel_carries_results_and_the_wire_gets_its_grace() -> None:
    async def main(emu: Emulator) -> list[object]:
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=10) as client:
            task = asyncio.ensure_future(client.send(numbered(50)))
            await asyncio.sleep(0.6)  # the second request is on the wire
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as info:
                await task
            results = results_of(info.value)
            assert results is not None
            if sys.version_info >= (3, 11):
                # The awaiter gets the very CancelledError send() raised. Python 3.9
                # and 3.10 make it a new one, whose __context__ is send()'s.
                assert info.value.results is results  # type: ignore[attr-defined]
            return results

    with Emulator(latency=0.4) as emu:
        results = asyncio.run(main(emu))
        codes = [r.code for r in results]  # type: ignore[attr-defined]
        # The request on the wire finished within the grace period: its outcome is known.
        assert codes == [Code.OK] * 20 + [Code.NOT_SENT] * 30
        assert emu.requests["send"] == 2
        assert_truthful(emu, numbered(50), results)


# What a cancelled send() knew, 20 ok (the second request finishes in its grace
# period) and 30 never sent, whichever exception the caller ends up catching.
CUT_AT_THE_SECOND = [Code.OK] * 20 + [Code.NOT_SENT] * 30


def test_wait_for_timeout_gives_the_results() -> None:
    async def main(emu: Emulator) -> tuple[BaseException, list[SendResult]]:
        kept: list[SendResult] = []
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=10) as client:
            try:
                # Times out with the second request on the wire.
                await asyncio.wait_for(client.send(numbered(50), results=kept), 0.6)
            except asyncio.TimeoutError as exc:
                return exc, kept
        raise AssertionError("wait_for did not time out")

    with Emulator(latency=0.4) as emu:
        caught, kept = asyncio.run(main(emu))
        results = results_of(caught)
        assert results is not None
        assert [r.code for r in results] == CUT_AT_THE_SECOND
        assert kept == results
        assert emu.requests["send"] == 2
        assert_truthful(emu, numbered(50), results)


def test_the_results_list_is_filled_however_the_call_ends() -> None:
    async def main(emu: Emulator) -> None:
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=10) as client:
            kept: list[SendResult] = [SendResult("stale", None, None)]
            assert await client.send(numbered(3), results=kept) == kept
            assert [r.code for r in kept] == [Code.OK] * 3
            # An outer task cancelled while it waits in wait_for: on Python 3.9 to
            # 3.11 the CancelledError it gets is linked to send()'s by nothing.
            kept = []
            outer = asyncio.ensure_future(
                asyncio.wait_for(client.send(numbered(50), results=kept), 30)
            )
            await asyncio.sleep(0.6)
            outer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await outer
            assert [r.code for r in kept] == CUT_AT_THE_SECOND
            # Bad input: refused before anything is sent, the list left as it was.
            kept = [SendResult("stale", None, None)]
            with pytest.raises(ValueError):
                await client.send([Message("", "t", "s")], results=kept)
            assert [r.code for r in kept] == ["stale"]
            with pytest.raises(TypeError, match="results"):
                await client.send(numbered(1), results=())  # type: ignore[arg-type]

    with Emulator(latency=0.4) as emu:
        asyncio.run(main(emu))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+")
def test_a_task_group_whose_other_task_failed_leaves_the_results_in_the_list() -> None:
    async def fail_soon() -> None:
        await asyncio.sleep(0.6)  # the second request is on the wire
        raise LookupError("the other task")

    async def main(emu: Emulator) -> tuple[BaseException, list[SendResult]]:
        kept: list[SendResult] = []
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=10) as client:
            try:
                async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined]
                    group.create_task(client.send(numbered(50), results=kept))
                    group.create_task(fail_soon())
            except BaseException as exc:  # the group: only the other task's error
                return exc, kept
        raise AssertionError("the group did not fail")

    with Emulator(latency=0.4) as emu:
        caught, kept = asyncio.run(main(emu))
        assert results_of(caught) is None  # the cancelled send() is not in the group
        assert [r.code for r in kept] == CUT_AT_THE_SECOND
        assert_truthful(emu, numbered(50), kept)


# Ctrl-C under asyncio.run(), in a process of its own. 3.11+ turns it into a
# cancellation of the main task and raises KeyboardInterrupt from it; 3.9 and 3.10
# raise it out of the event loop and cancel the tasks left while it unwinds.
CTRL_C_SCRIPT = """
import asyncio, json, os, sys
import hpgfast
from hpgfast import AsyncClient, Message

messages = [Message(f"7903{i:07d}", f"text {i}", "Shop") for i in range(50)]
kept = []

async def main():
    async with AsyncClient(sys.argv[1], sys.argv[2], os.environ["HPG_TEST_PASSWORD"],
                           max_batch=10) as client:
        await client.send(messages, results=kept)

try:
    asyncio.run(main())
except KeyboardInterrupt as exc:
    found = hpgfast.results_of(exc)
    print(json.dumps({
        "results_of": None if found is None else [r.code for r in found],
        "kept": [r.code for r in kept],
    }))
    sys.exit(130)
"""


def test_ctrl_c_under_asyncio_run_gives_the_results() -> None:
    with Emulator(latency=0.4) as emu:
        env = {**os.environ, "HPG_TEST_PASSWORD": emu.password}
        proc = subprocess.Popen(
            [sys.executable, "-c", CTRL_C_SCRIPT, emu.url, emu.login],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while emu.requests["send"] < 2 and proc.poll() is None:
                assert time.monotonic() < deadline, "the second request never came"
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)  # the second request is on the wire
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        report = json.loads(out)
        assert report["kept"] == CUT_AT_THE_SECOND
        if sys.version_info >= (3, 11):
            assert report["results_of"] == CUT_AT_THE_SECOND
        else:
            # Raised out of the loop, the KeyboardInterrupt is linked to nothing
            # (unless it struck inside send() itself): the results list has them.
            assert report["results_of"] in (None, CUT_AT_THE_SECOND)
        assert emu.requests["send"] == 2
        assert len(emu.ledger) == 20


def test_concurrency_bounds_requests_in_flight_over_all_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Counted where a request is written and its reply read (inside the bound).
    exchange = AsyncClient._exchange_on
    now = [0, 0]  # in flight, most ever

    async def counting(self: AsyncClient, *args: object) -> object:
        now[0] += 1
        now[1] = max(now)
        try:
            return await exchange(self, *args)  # type: ignore[arg-type]
        finally:
            now[0] -= 1

    monkeypatch.setattr(AsyncClient, "_exchange_on", counting)

    async def main(emu: Emulator) -> None:
        async with AsyncClient(
            emu.url, emu.login, emu.password, max_batch=5, concurrency=3
        ) as client:
            batches = await asyncio.gather(*(client.send(numbered(40)) for _ in range(4)))
        assert all(r.ok for results in batches for r in results)
        assert len(client._idle) <= 3

    with Emulator(latency=0.02) as emu:
        asyncio.run(main(emu))
        assert emu.requests["send"] == 4 * 8
    assert now[1] == 3


def test_a_new_loop_gets_fresh_connections() -> None:
    with Emulator() as emu:
        client = AsyncClient(emu.url, emu.login, emu.password, default_subject="S")
        for _ in range(3):  # asyncio.run() per call: each call on a loop of its own
            assert asyncio.run(client.send(numbered(3)))[0].ok
        asyncio.run(client.aclose())
        asyncio.run(client.aclose())
        with pytest.raises(RuntimeError):
            asyncio.run(client.send(numbered(1)))


def test_repr_pickle_and_headers() -> None:
    client = AsyncClient("http://127.0.0.1:1/C/x/", "CLIENT", "s3cret-Pw")
    assert "s3cret" not in repr(client) and "AsyncClient" in repr(client)
    with pytest.raises(TypeError):
        pickle.dumps(client)
    client.close()
    with pytest.raises(ValueError):
        AsyncClient("http://127.0.0.1:1/C/x/", "CLIENT", "pw", user_agent="a\r\nX-Evil: 1")


TAG: contextvars.ContextVar[str] = contextvars.ContextVar("TAG", default="none")


def test_subscribers_see_the_callers_contextvars_on_every_request() -> None:
    # One request at a time, every request after a batch's first goes out from the
    # connection's callback (aio._chain), in the context the connection was made
    # in: the first batch's here. The subscribers still see their own caller's.
    class Tags(Subscriber):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def request_finished(self, event: RequestFinished) -> None:
            self.seen.append(TAG.get())

    async def main(emu: Emulator) -> list[str]:
        tags = Tags()
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=5) as client:
            for tag in ("first", "second"):
                TAG.set(tag)
                results = await client.send(numbered(20), subscribers=[tags])
                assert all(r.ok for r in results)
            assert len(client._idle) == 1  # the second batch ran on the first's connection
        return tags.seen

    with Emulator() as emu:
        assert asyncio.run(main(emu)) == ["first"] * 4 + ["second"] * 4


def test_a_call_cancelled_while_waiting_for_a_slot_loses_no_slot() -> None:
    async def main(emu: Emulator) -> None:
        async with AsyncClient(emu.url, emu.login, emu.password, max_batch=5) as client:
            first = asyncio.create_task(client.send(numbered(10)))
            await asyncio.sleep(0.1)  # the first call holds the one slot
            waiting = asyncio.create_task(client.send(numbered(5)))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert all(r.ok for r in await first)
            # The slot is free again: a third call gets it.
            assert all(r.ok for r in await asyncio.wait_for(client.send(numbered(5)), 10))
            assert client._slots is not None and client._slots.free == 1

    with Emulator(latency=0.2) as emu:
        asyncio.run(main(emu))
        assert emu.requests["send"] == 3
