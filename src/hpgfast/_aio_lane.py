"""The task side of ``AsyncClient``'s batches: slots, lanes, held starts, the wind-down.

``Slots`` bounds the requests in flight over all of a client's calls. A ``Lane``
is a batch sent one request at a time: its task and the connection's callback
(``AsyncClient._chain``) hand its requests to each other, so that a reply read
whole on a kept connection can have the next request written at once, without
waking the task (a loop turn and a task step a request). ``start_held`` runs a
request's blocking subscribers off the loop; ``wind_down`` ends an interrupted
batch's requests. None decides an outcome: the core does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections import deque
from collections.abc import Callable
from typing import Optional

from ._aio_conn import Connection
from ._base import INTERRUPT_GRACE
from .core import Batch, Request, Step

__all__ = [
    "BEGUN",
    "FAILED",
    "NEXT",
    "SETTLED",
    "WIRE",
    "Lane",
    "Slots",
    "start_held",
    "wind_down",
]

_monotonic = time.monotonic


class Slots:
    """At most ``size`` requests in flight over all of a client's calls, first come
    first served (``asyncio.Semaphore``'s rules).

    ``take()`` is the common case, a free slot and nobody waiting, without the
    coroutines ``async with semaphore`` makes per request; ``wait()`` queues.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self.free and not self.waiters:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait in line for a slot (after ``take()`` failed); it is ours on return."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, but cancelled before taking it up
            else:
                try:
                    self.waiters.remove(waiter)
                except ValueError:  # release() passed over it already
                    pass
            raise

    def release(self) -> None:
        """Give a slot back: to the first in line still waiting, else to the pool."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it directly
                return
        self.free += 1


#: Where a lane's callback stopped (``Lane.phase``): a request on the wire (the
#: task reads its reply); settled (``step``: to repeat); the next one handed out
#: (``next``, or the error of ``batch.next()``); the next one begun, its blocking
#: subscribers to run; an error while handling ``request``, to abort it with.
WIRE, SETTLED, NEXT, BEGUN, FAILED = range(5)


class Lane:
    """A batch sent one request at a time: what its task and the connection's
    callback (``AsyncClient._chain``) hand each other.

    ``request`` and ``line`` are the request the task is on, whichever of the two
    began it; ``phase`` says where the callback stopped when it woke the task.
    """

    __slots__ = (
        "batch",
        "chain",
        "error",
        "line",
        "next",
        "on_wire",
        "phase",
        "request",
        "started",
        "step",
    )

    def __init__(
        self, batch: Batch, chain: Callable[[Lane, Connection], bool], request: Request
    ) -> None:
        self.batch = batch
        #: What the connection calls with itself when a reply is whole: ``chain``,
        #: in the caller's context (its contextvars, for the subscribers it calls).
        run: Callable[..., bool] = contextvars.copy_context().run
        self.chain: Callable[[Connection], bool] = functools.partial(run, chain, self)
        self.request = request
        self.line = b""
        self.started = 0.0
        self.phase = WIRE
        self.step: Optional[Step] = None
        self.next: Optional[Request] = None
        self.error: Optional[BaseException] = None
        self.on_wire = False

    def wake(self, waiter: asyncio.Future[None], phase: int) -> bool:
        """Hand the lane back to the task, at ``phase``."""
        self.phase = phase
        waiter.set_result(None)
        return True

    def failed(self, waiter: asyncio.Future[None], error: BaseException, *, on_wire: bool) -> bool:
        """Hand back ``error``, raised while handling ``request``: the task aborts it."""
        self.error, self.on_wire = error, on_wire
        return self.wake(waiter, FAILED)

    def next_request(self) -> Optional[Request]:
        """The request the task runs next: the one the callback handed out, if it
        did (or the error of ``batch.next()``), else the batch's next."""
        if self.phase != NEXT:
            return self.batch.next(_monotonic())
        self.phase = SETTLED
        error, self.error = self.error, None
        if error is not None:
            raise error
        nxt, self.next = self.next, None
        return nxt


async def start_held(batch: Batch, request: Request) -> bool:
    """Run the blocking subscribers of a request (a journal's commit) off the loop.

    In a worker thread of the loop's default executor, awaited: the loop goes on
    with every other task meanwhile, and the request leaves only after they
    returned. A cancellation meanwhile leaves the request unsent (``not-sent``);
    the thread's work is shielded and runs to its end, since it may be the very
    commit that marks the request: a subscriber that holds a lock through its
    work (the journal's does) makes whoever writes next wait for it.
    """
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, batch.start_held, request)
    return await asyncio.shield(work)


async def wind_down(
    batch: Batch, stop: BaseException, tasks: dict[asyncio.Task[None], Request]
) -> None:
    """Give requests on the wire ``INTERRUPT_GRACE`` seconds, then seal the batch and
    cut them (those still out are ``unknown``); each then records its end."""
    pending = {task for task in tasks if not task.done()}
    if pending:
        try:
            await asyncio.wait(pending, timeout=INTERRUPT_GRACE)
        except BaseException:  # a second cancellation ends the grace at once
            pass
    batch.seal(stop, [tasks[task] for task in pending if not task.done()])
    if pending:
        for task in pending:
            task.cancel()
        # A cut task only calls batch.abort() (the batch is sealed): this wait is short.
        await asyncio.wait(pending)
