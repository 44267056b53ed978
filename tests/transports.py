"""Both clients behind one blocking face, for the shared client suite.

``BlockingAsyncClient`` takes ``hpgfast.Client``'s arguments, makes an
``hpgfast.AsyncClient`` with them and runs each call on an event loop of its own
(a helper thread), so a test written against the sync client's blocking
``send()``/``status()`` runs unchanged over the asyncio transport. The loop lives
as long as the wrapper: the AsyncClient's kept connections are reused across
calls, as a real asyncio program would reuse them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any, Optional, TypeVar

from hpgfast.aio import AsyncClient

T = TypeVar("T")


class _Cancelled:
    def __init__(self, results: Any) -> None:
        self.results = results


class BlockingAsyncClient:
    """An ``AsyncClient`` driven from blocking code (one loop thread per client)."""

    def __init__(self, *args: Any, debug: bool = False, **kwargs: Any) -> None:
        # Made in the caller's thread, so that its warnings reach pytest.warns().
        self.inner = AsyncClient(*args, **kwargs)
        self._debug = debug
        self._thread: Optional[threading.Thread] = None
        self._task: Optional[asyncio.Task[Any]] = None
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._loop.set_debug(self._debug)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="asyncio-loop", daemon=True
        )
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._thread is None:  # closed: the client answers for itself on a new loop
            return asyncio.run(coro)
        if os.getpid() != self._pid:  # a forked child: the loop thread stayed behind
            self._start()
        outcome = asyncio.run_coroutine_threadsafe(self._guarded(coro), self._loop).result()
        if isinstance(outcome, _Cancelled):
            # What Ctrl-C is to the sync client: KeyboardInterrupt, with the results.
            interrupt = KeyboardInterrupt()
            interrupt.results = outcome.results  # type: ignore[attr-defined]
            raise interrupt
        return outcome  # type: ignore[no-any-return]

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> Any:
        self._task = asyncio.current_task()
        try:
            return await coro
        except asyncio.CancelledError as exc:
            return _Cancelled(getattr(exc, "results", None))
        finally:
            self._task = None

    def interrupt(self, times: int = 1) -> None:
        """Cancel the running call (``times`` cancellations, 0.1 s apart)."""
        task = self._task
        if task is not None:
            for i in range(times):
                self._loop.call_soon_threadsafe(self._loop.call_later, 0.1 * i, task.cancel)

    def send(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self.inner.send(*args, **kwargs))

    def status(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self.inner.status(*args, **kwargs))

    def is_final(self, result: Any) -> bool:
        return self.inner.is_final(result)

    def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._call(self.inner.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join()
        self._thread = None
        self._loop.close()

    def __enter__(self) -> BlockingAsyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return repr(self.inner)

    def __reduce__(self) -> Any:
        return self.inner.__reduce__()


def interrupt_soon(client: Any, after: float, times: int = 1) -> threading.Thread:
    """Interrupt a call in progress on ``client`` after ``after`` seconds.

    The sync client gets a real SIGINT in the main thread (Ctrl-C); the async one
    its task cancelled (what ``asyncio.run`` makes of Ctrl-C); ``times`` times,
    0.1 s apart.
    """

    def fire() -> None:
        threading.Event().wait(after)
        if isinstance(client, BlockingAsyncClient):
            client.interrupt(times)
        else:
            for i in range(times):
                if i:
                    threading.Event().wait(0.1)
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread
