"""What only the asyncio client has: its import, its loop and its cancellation.

Everything both clients share (outcomes, faults, TLS, secrets, the 100,000-message
test) runs over both in test_client*.py through ``conftest.transport``.
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys

import pytest

from hpgfast import AsyncClient, Code, Message
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
            return info.value.results  # type: ignore[attr-defined, no-any-return]

    with Emulator(latency=0.4) as emu:
        results = asyncio.run(main(emu))
        codes = [r.code for r in results]  # type: ignore[attr-defined]
        # The request on the wire finished within the grace period: its outcome is known.
        assert codes == [Code.OK] * 20 + [Code.NOT_SENT] * 30
        assert emu.requests["send"] == 2
        assert_truthful(emu, numbered(50), results)


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
