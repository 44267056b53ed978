"""The public journal API, as a service uses it: exactly once with its own client.

Written over ``journal_target`` (conftest: one fresh journal per engine, opened with
``hpgfast.open_journal``) and, where a client sends, over both clients
(``transport``: ``Client``, then ``AsyncClient``, whose runs go through
``Journal.send_async``). Every platform is the emulator, a real HTTP server on
loopback; its ledger is what the platform really accepted. A crash is a real
process killed with SIGKILL; an interrupt a real SIGINT (the sync client) or a
cancelled task (the async one).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hpgfast import AsyncClient, Client, Message, StatusResult, open_journal
from hpgfast.core import RequestStarting, Subscriber
from hpgfast.emulator import Emulator
from hpgfast.journal import JournalClaimLost, JournalError, SendSummary, State
from hpgfast.journal._hook import JournalHook
from transports import BlockingAsyncClient, interrupt_soon

PASSWORD = "P@ssw0rd"


def _orders(n: int, start: int = 0) -> list[tuple[str, Message]]:
    """A service's own rows: (its order id, the message), no clientIds of their own."""
    return [
        (f"order-{i}", Message(f"7900{i:07d}", f"message {i}", "hpgfast"))
        for i in range(start, start + n)
    ]


def _send(journal: Any, client: Any, **options: Any) -> SendSummary:
    """``journal.send(client)``, or ``await journal.send_async(...)`` for the async one."""
    if isinstance(client, BlockingAsyncClient):
        summary: SendSummary = client._call(journal.send_async(client.inner, **options))
        return summary
    summary = journal.send(client, **options)
    return summary


def _ledger_once(emu: Emulator) -> dict[str, str]:
    """What the platform accepted, by text; fails if any message reached it twice."""
    texts = [e.text for e in emu.ledger]
    assert len(texts) == len(set(texts)), "a message reached the platform twice"
    return {e.text: e.provider_id for e in emu.ledger}


def test_adding_with_keys_is_idempotent(journal_target: str) -> None:
    with open_journal(journal_target) as journal:
        assert journal.add(_orders(100)) == 100
        # The same rows again (a service restarted mid-feed), and 20 new ones.
        assert journal.add(_orders(120)) == 20
        # A key repeated within one call is added once, the first time.
        twice = [("dup", Message("79000000001", "first", "s")),
                 ("dup", Message("79000000002", "second", "s"))]
        assert journal.add(twice) == 1
        # Without a key a message is always added: keys are what make it idempotent.
        plain = Message("79000000003", "no key", "s")
        assert journal.add([plain, ("79000000004", "a tuple", "s")]) == 2
        assert journal.add([plain]) == 1
        assert journal.counts()[State.PENDING] == 124
        row = journal.by_key("order-7")
        assert row is not None
        assert (row["key"], row["text"], row["state"]) == ("order-7", "message 7", "pending")
        assert journal.by_line(row["line"]) == row
        assert journal.by_key("dup")["text"] == "first"  # type: ignore[index]
        assert journal.by_key("no such order") is None
        plain_lines = [r[0] for r in journal.rows() if r[2] == "no key"]
        assert len(plain_lines) == 2
        assert journal.by_line(plain_lines[0])["key"] is None  # type: ignore[index]
        # Appended in order: every keyed row after the ones added before it.
        assert journal.by_key("order-119")["line"] > journal.by_key("order-99")["line"]  # type: ignore[index]
        with pytest.raises(TypeError):
            journal.add([(7, Message("79000000005", "an int key", "s"))])
    # A journal opened again holds the same keys.
    with open_journal(journal_target) as journal:
        assert journal.add(_orders(120)) == 0
        assert sum(1 for _ in journal.rows()) == 124


def test_send_then_outcomes_by_key(journal_target: str, transport: str) -> None:
    with Emulator(speed=2000.0, unique_client_ids=True) as emu, \
            open_journal(journal_target) as journal:
        journal.add(_orders(200))
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=25, concurrency=2) as client:
            seen: list[int] = []
            summary = _send(journal, client, chunk=60, progress=lambda n, note: seen.append(n))
            assert isinstance(summary, SendSummary)
            assert summary.states[State.ACCEPTED] == 200 and summary.attempted == 200
            assert summary.error is None and sum(seen) == 200
            # Sent: nothing is left to send, whatever is asked.
            again = _send(journal, client, resend_unknown=True)
            assert again.attempted == 0
        accepted = _ledger_once(emu)
        assert len(accepted) == 200
        for key, message in _orders(200):
            row = journal.by_key(key)
            assert row is not None and row["state"] == State.ACCEPTED
            assert row["provider_id"] == accepted[message.text]
            assert row["code"] == "ok"
        assert journal.counts()[State.ACCEPTED] == 200
        assert journal.summary()["states"][State.ACCEPTED] == 200


def test_follow_and_pushed_reports(journal_target: str, transport: str) -> None:
    with Emulator(speed=2000.0) as emu, open_journal(journal_target) as journal:
        journal.add(_orders(30))
        with Client(emu.url, "CLIENT", PASSWORD) as client:
            _send(journal, client)
            # A pushed report, as the receiver hands it over, for one of them.
            provider_id = journal.by_key("order-0")["provider_id"]  # type: ignore[index]
            report = StatusResult("ok", provider_id, "delivered", datetime(2026, 1, 2, 3, 4, 5))
            assert journal.record_reports([report]) == 1
            assert journal.record_reports([report]) == 0  # the same again: no change
            row = journal.by_key("order-0")
            assert row is not None and row["status"] == "delivered"
            assert journal.history(row["line"])[-1][5] == "push"
            # The others, polled until final.
            followed = journal.follow(client, deadline=20, interval=0.05)
        assert followed.error is None and followed.open == 0 and followed.changes >= 29
        assert journal.open_provider_ids() == []
        for key, _ in _orders(30):
            assert journal.by_key(key)["status"] is not None  # type: ignore[index]
        assert sum(journal.summary()["statuses"].values()) == 30


def test_an_interrupt_records_what_the_client_knew(journal_target: str, transport: str) -> None:
    n = 400
    with Emulator(speed=None, latency=0.05, unique_client_ids=True) as emu, \
            open_journal(journal_target) as journal:
        journal.add(_orders(n))
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=10, concurrency=2) as client:
            interrupt_soon(client, 0.4)
            with pytest.raises(KeyboardInterrupt):
                _send(journal, client)
            counts = journal.counts()
            assert counts[State.IN_FLIGHT] == 0
            assert 0 < counts[State.ACCEPTED] < n
            # Only requests cut on the wire may be unknown: at most one per sender.
            assert counts[State.UNKNOWN] <= 2 * 10
            summary = _send(journal, client, resend_unknown=True)
        assert summary.error is None
        _ledger_once(emu)
        final = journal.counts()
        assert final[State.ACCEPTED] + final[State.ACCEPTED_EARLIER] == n


def test_a_lapsed_lease_lets_no_request_leave(journal_target: str, transport: str) -> None:
    with open_journal(journal_target) as journal:
        journal.add(_orders(50))
        engine = type(journal)

    class Lapsed(engine):  # type: ignore[valid-type,misc]
        """The engine whose claim ran out a second ago (a stalled sender)."""

        def lease_deadline(self) -> float:
            return time.monotonic() - 1.0

    with Emulator(speed=None) as emu:
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=10) as client:
            with Lapsed(journal_target) as lapsed:
                summary = _send(lapsed, client)
                assert isinstance(summary.error, JournalClaimLost)
                assert "not sent" in str(summary.error)
                counts = lapsed.counts()
            assert len(emu.ledger) == 0, "a request left without a lease"
            assert counts[State.PENDING] + counts[State.NOT_SENT] == 50
            assert counts[State.IN_FLIGHT] == counts[State.UNKNOWN] == 0
            # With a lease, the same messages go, once.
            with open_journal(journal_target) as journal:
                assert _send(journal, client).states[State.ACCEPTED] == 50
        assert len(_ledger_once(emu)) == 50


class _SlowCommits:
    """An engine whose every write takes 0.15 s more (a slow disk, a far database)."""

    SLOW = 0.15

    def advance(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.SLOW)
        return super().advance(*args, **kwargs)  # type: ignore[misc]

    def next_chunk(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.SLOW)
        return super().next_chunk(*args, **kwargs)  # type: ignore[misc]

    def recover(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.SLOW)
        return super().recover(*args, **kwargs)  # type: ignore[misc]


def test_send_async_never_blocks_the_loop_on_a_commit(journal_target: str) -> None:
    with open_journal(journal_target) as journal:
        journal.add(_orders(120))
        engine = type(journal)
    slow = type("Slow", (_SlowCommits, engine), {})

    async def main(url: str) -> tuple[float, float, SendSummary]:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        running = True

        async def heartbeat() -> None:
            last = loop.time()
            while running:
                await asyncio.sleep(0.01)
                now = loop.time()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        start = loop.time()
        async with AsyncClient(url, "CLIENT", PASSWORD, max_batch=10, concurrency=2) as client:
            with slow(journal_target) as journal:
                summary = await journal.send_async(client, chunk=40)
        running = False
        await beat
        return max(gaps), loop.time() - start, summary

    with Emulator(speed=None) as emu:
        worst, took, summary = asyncio.run(main(emu.url))
        assert summary.states[State.ACCEPTED] == 120
        assert len(_ledger_once(emu)) == 120
    # Many slow writes (recover, 4 chunks, a mark per few requests, the results):
    # seconds in all, and the loop never stalled for one of them.
    assert took > 6 * _SlowCommits.SLOW
    assert worst < _SlowCommits.SLOW * 0.6, f"the loop stalled {worst:.3f} s"


def test_the_async_client_runs_a_blocking_subscriber_off_the_loop() -> None:
    # What the journal's hook relies on, with a subscriber of one's own: its
    # request_starting blocks for real (a sleep standing for an fsync), the loop
    # goes on meanwhile, and the request leaves only once it has returned.
    class Durable(Subscriber):
        blocking = True

        def __init__(self, emu: Emulator) -> None:
            self.emu = emu
            self.threads: set[int] = set()
            self.ledger_moved = False

        def request_starting(self, event: RequestStarting) -> None:
            self.threads.add(threading.get_ident())
            before = len(self.emu.ledger)
            time.sleep(0.2)
            self.ledger_moved |= len(self.emu.ledger) != before

    async def main(emu: Emulator, hook: Durable) -> float:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.01)
                gaps.append(loop.time() - last)
                last = loop.time()

        beat = asyncio.create_task(heartbeat())
        async with AsyncClient(emu.url, "CLIENT", PASSWORD, max_batch=5) as client:
            results = await client.send(
                [Message(f"7900{i:07d}", f"m {i}", "s") for i in range(20)], subscribers=[hook]
            )
        done.set()
        await beat
        assert [r[0] for r in results] == ["ok"] * 20
        return max(gaps)

    with Emulator(speed=None) as emu:
        hook = Durable(emu)
        worst = asyncio.run(main(emu, hook))
        assert len(emu.ledger) == 20
    assert threading.get_ident() not in hook.threads  # never in the loop's thread
    assert not hook.ledger_moved  # no request left while one was being made durable
    assert worst < 0.1, f"the loop stalled {worst:.3f} s"


_SENDER = textwrap.dedent(
    """
    import asyncio, sys
    from hpgfast import AsyncClient, Client, Message, open_journal

    url, target, flavour, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rows = [(f"order-{i}", Message(f"7900{i:07d}", f"message {i}", "hpgfast"))
            for i in range(n)]
    options = dict(max_batch=10, concurrency=2, timeout=5)
    resend = sys.argv[5:] == ["resend"]
    with open_journal(target) as journal:
        journal.add(rows)  # every run feeds the same rows: the keys keep one of each
        if flavour == "sync":
            with Client(url, "CLIENT", "P@ssw0rd", **options) as client:
                summary = journal.send(client, resend_unknown=resend)
        else:
            async def main():
                async with AsyncClient(url, "CLIENT", "P@ssw0rd", **options) as client:
                    return await journal.send_async(client, resend_unknown=resend)
            summary = asyncio.run(main())
        print(dict(summary.states), summary.recovered, flush=True)
    """
)


def _sender(url: str, target: str, flavour: str, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", _SENDER, url, target, flavour, str(n), *extra]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_killed_sender_resumes_and_sends_nothing_twice(
    journal_target: str, flavour: str
) -> None:
    n = 1_000
    with Emulator(speed=None, latency=0.05, unique_client_ids=True) as emu:
        proc = subprocess.Popen(_sender(emu.url, journal_target, flavour, n),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the sender ended before it could be killed: raise n"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        at_kill = len(emu.ledger)
        assert at_kill < n

        # A new process, the same program: it resumes, and sends no message twice.
        resumed = subprocess.run(_sender(emu.url, journal_target, flavour, n),
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        accepted = _ledger_once(emu)
        with open_journal(journal_target) as journal:
            counts = journal.counts()
            unknown = [r for r in journal.rows(states=[State.UNKNOWN])]
        assert counts[State.PENDING] == counts[State.IN_FLIGHT] == 0
        assert counts[State.ACCEPTED] + counts[State.UNKNOWN] == n
        # Unknown: in flight at the kill. Those that never reached the platform are
        # at most the window: W = 4 x concurrency requests of max_batch messages.
        window = JournalHook(None).window * 2  # at concurrency 2
        never_sent = [r for r in unknown if r[2] not in accepted]
        assert len(never_sent) <= window * 10
        assert len(unknown) > 0

        # resend_unknown: the platform refuses the clientIds it has (the journal's
        # own, the same on every resend): those are accepted_earlier, the rest go.
        again = subprocess.run(_sender(emu.url, journal_target, flavour, n, "resend"),
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        had = set(accepted)
        accepted = _ledger_once(emu)
        assert len(accepted) == n
        with open_journal(journal_target) as journal:
            counts = journal.counts()
            for row in unknown:
                state = journal.by_line(row[0])["state"]  # type: ignore[index]
                expected = State.ACCEPTED_EARLIER if row[2] in had else State.ACCEPTED
                assert state == expected, (row, state)
        assert counts[State.ACCEPTED] + counts[State.ACCEPTED_EARLIER] == n
        assert counts[State.ACCEPTED_EARLIER] == len(unknown) - len(never_sent)


_LOADER = textwrap.dedent(
    """
    import os, signal, sys
    from hpgfast import Message, open_journal

    def rows():
        for i in range(1, 30_001):
            if i == 25_000:  # two batches committed, the third half read
                print("killed", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            yield i, Message("7900", "m%d" % i)

    with open_journal(sys.argv[1]) as journal:
        journal.load_input(rows(), bind=lambda: {"input_sha256": "abc"})
    """
)


def test_load_input_killed_mid_load_is_resumed(journal_target: str) -> None:
    # The command line's way of loading a file (numbered rows, read once): a loader
    # killed mid-load leaves its committed batches; the next one goes on after them.
    killed = subprocess.run([sys.executable, "-c", _LOADER, journal_target],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL and killed.stdout == "killed\n", killed.stderr
    binds: list[int] = []

    def fingerprint() -> dict[str, str]:
        binds.append(1)
        return {"input_sha256": "abc"}

    with open_journal(journal_target) as journal:
        assert journal.loaded is None and journal.last_line == 20_000
        rows = ((i, Message("7900", f"m{i}")) for i in range(1, 30_001))
        assert journal.load_input(rows, bind=fingerprint) == 30_000
        assert (journal.loaded, journal.last_line) == (30_000, 30_000)
        assert journal.counts()[State.PENDING] == 30_000
        assert journal.integrity_check() == "ok" and binds == [1]
        # Loaded: a second load reads nothing and binds nothing.
        assert journal.load_input(iter(()), bind=fingerprint) == 30_000 and binds == [1]
        with journal.loading():  # the engine interface: re-entrant, on either engine
            with journal.loading():
                assert journal.loaded == 30_000


def test_open_journal_by_target(tmp_path: Path) -> None:
    with open_journal(tmp_path / "by-path.db") as journal:
        assert journal.add(_orders(1)) == 1
    with pytest.raises(JournalError, match="file path or a postgresql:// URL"):
        open_journal("https://example.invalid/journal")
    try:
        import hpgfast.journal._pg  # noqa: F401
    except ImportError:
        with pytest.raises(JournalError, match="postgres"):
            open_journal("postgresql://u:secret@127.0.0.1:1/db")
        try:
            open_journal("postgres://u:secret@127.0.0.1:1/db")
        except JournalError as exc:
            assert "secret" not in str(exc)



def test_an_interrupt_while_the_results_are_written_still_writes_them(
    journal_target: str,
) -> None:
    # Ctrl-C lands while the chunk's results are being committed: that commit is
    # rolled back, but the results are known, so they are written before the
    # interrupt goes on, and nothing is left in flight (to become unknown).
    with open_journal(journal_target) as journal:
        journal.add(_orders(30))
        engine = type(journal)

    class InterruptedOnce(engine):  # type: ignore[valid-type,misc]
        interrupted = False

        def advance(self, in_flight: Any, finished: Any) -> Any:
            finished = list(finished)
            if not in_flight and finished and not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt  # as SIGINT would, before the commit
            return super().advance(in_flight, finished)

    with Emulator(speed=None, unique_client_ids=True) as emu, \
            Client(emu.url, "CLIENT", PASSWORD, max_batch=10) as client:
        with InterruptedOnce(journal_target) as journal:
            with pytest.raises(KeyboardInterrupt):
                journal.send(client)
            assert journal.interrupted
            counts = journal.counts()
        assert counts[State.ACCEPTED] == 30 and counts[State.IN_FLIGHT] == 0
        assert len(_ledger_once(emu)) == 30


def test_a_claim_taken_over_stops_the_run_before_its_request(journal_target: str) -> None:
    # A shared journal's ``advance`` raises JournalClaimLost when a row it is to mark
    # is no longer this sender's: that request is not sent, the run stops with it.
    with open_journal(journal_target) as journal:
        journal.add(_orders(40))
        engine = type(journal)

    class TakenOver(engine):  # type: ignore[valid-type,misc]
        marks = 0

        def advance(self, in_flight: Any, finished: Any) -> Any:
            if in_flight:
                self.marks += 1
                if self.marks == 2:
                    raise JournalClaimLost("another sender holds these rows now")
            return super().advance(in_flight, finished)

    with Emulator(speed=None) as emu, Client(emu.url, "CLIENT", PASSWORD, max_batch=5) as client:
        with TakenOver(journal_target) as journal:
            summary = journal.send(client)
            counts = journal.counts()
        assert isinstance(summary.error, JournalClaimLost)
        sent = len(_ledger_once(emu))
    # The first mark covered 4 requests (one, and 3 ahead at concurrency 1): those
    # went; the fifth was refused; nothing is in flight or unknown.
    assert sent == 20
    assert counts[State.ACCEPTED] == 20
    assert counts[State.PENDING] + counts[State.NOT_SENT] == 20
    assert counts[State.IN_FLIGHT] == counts[State.UNKNOWN] == 0


def test_one_journal_object_sends_one_run_at_a_time(journal_target: str) -> None:
    # Two threads on one object would take each other's claims for lost; the second
    # is refused at once, by name, and the first sends everything.
    class Slow(Subscriber):
        def request_starting(self, event: RequestStarting) -> None:
            time.sleep(0.05)

    with Emulator(speed=None, unique_client_ids=True) as emu, open_journal(journal_target) as j:
        j.add((f"k{n}", Message(f"7903123{n:04d}", f"t{n}", "S")) for n in range(40))
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=5, subscribers=[Slow()]) as c:
            errors: list[BaseException] = []
            summaries: list[SendSummary] = []

            def run() -> None:
                try:
                    summaries.append(j.send(c))
                except JournalError as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=run) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert len(errors) == 1 and "already sending" in str(errors[0])
        assert len(summaries) == 1 and summaries[0].states["accepted"] == 40
        assert len(emu.ledger) == 40 and emu.repeated_client_ids == 0
        # Free again once the run ended.
        with Client(emu.url, "CLIENT", PASSWORD) as c:
            assert j.send(c).attempted == 0


def test_a_healthy_run_writes_each_result_once(
    journal_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The results of requests the hook already committed are not written again when
    # the batch returns (on a shared journal such a rewrite of a final row is refused
    # and logged as "not written": alarming, and a statement per chunk for nothing).
    import logging

    caplog.set_level(logging.DEBUG, logger="hpgfast")
    with Emulator(speed=None) as emu, open_journal(journal_target) as j:
        j.add(Message(f"7903123{n:04d}", f"t{n}", "S") for n in range(300))
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=10, concurrency=2) as c:
            summary = j.send(c, chunk=100)
        assert summary.states["accepted"] == 300 == j.counts()["accepted"]
    assert not [r for r in caplog.records if "not written" in r.getMessage()]


def test_a_retry_after_the_lease_ran_out_is_not_sent(journal_target: str, transport: str) -> None:
    # The lease is held to every attempt, not only the first: a SEND the platform
    # answered 429 waits out Retry-After (1 s here); by then this sender's claim has
    # run out, so the retry is not made and its messages stay sendable.
    with open_journal(journal_target) as journal:
        journal.add(_orders(20))
        engine = type(journal)

    class RunsOut(engine):  # type: ignore[valid-type,misc]
        """The engine whose claim runs out half a second after its first request."""

        first = 0.0

        def lease_deadline(self) -> float:
            if not self.first:
                self.first = time.monotonic()
            return self.first + 3.0 + 0.5  # the margin below, and half a second

    with Emulator(speed=None, rate_limit=1.0, retry_after=1) as emu:
        with Client(emu.url, "CLIENT", PASSWORD, max_batch=10, timeout=1.0,
                    request_deadline=2.0, connect_timeout=1.0) as client:
            with RunsOut(journal_target) as journal:
                summary = _send(journal, client)
                counts = journal.counts()
        assert emu.rate_limited >= 1, "the platform never asked for a retry"
        assert isinstance(summary.error, JournalClaimLost), summary.error
        assert len(emu.ledger) == 10, "a retry went out after the lease ran out"
        assert counts[State.ACCEPTED] == 10
        assert counts[State.PENDING] + counts[State.NOT_SENT] == 10
        assert counts[State.IN_FLIGHT] == counts[State.UNKNOWN] == 0


def test_a_key_too_long_for_any_engine_is_refused_alike(journal_target: str) -> None:
    from hpgfast.journal._load import KEY_MAX

    with open_journal(journal_target) as journal:
        with pytest.raises(ValueError, match=f"at most {KEY_MAX} characters"):
            journal.add([("k" * (KEY_MAX + 1), Message("79031234567", "t", "S"))])
        with pytest.raises(ValueError, match="NUL"):
            journal.add([("a\x00b", Message("79031234567", "t", "S"))])
        assert journal.add([("k" * KEY_MAX, Message("79031234567", "t", "S"))]) == 1
        assert journal.by_key("k" * KEY_MAX) is not None


def _report(target: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    done = subprocess.run([sys.executable, "-m", "hpgfast", "report", target, *args],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_journal_filled_by_add_reads_as_the_docs_say(journal_target: str) -> None:
    """A journal filled by ``add()`` (no input file) is whole, not a load unfinished;
    its statuses are keyed by status (data, never a label), the messages accepted
    with none yet counted apart; ``by_key`` names the clientId a message went out
    with, the journal's own included."""
    import json

    with Emulator(speed=2000.0) as emu, open_journal(journal_target) as journal:
        journal.add(_orders(30))
        with Client(emu.url, "CLIENT", PASSWORD) as client:
            _send(journal, client, chunk=20)
            sent = {e.text: e.client_id for e in emu.ledger}
            # Before following: every accepted message without a status yet.
            before = journal.summary()
            assert before["statuses"] == {} and before["no_status_yet"] == 30, before
            followed = journal.follow(client, deadline=20, interval=0.05)
        assert followed.error is None and followed.open == 0
        # With a journal the statuses are the journal's, as docs/journal.md says:
        # the summary of the run holds none (memory flat for any journal).
        assert followed.statuses == {}
        doc = " ".join((Path(__file__).parents[1] / "docs" / "journal.md").read_text().split())
        assert "its `statuses` stays empty with a journal" in doc
        summary = journal.summary()
        assert summary["loaded"] == 30
        assert sum(summary["statuses"].values()) == 30 and summary["no_status_yet"] == 0
        for key, message in _orders(30):
            row = journal.by_key(key)
            assert row is not None and row["client_id"] == sent[message.text], row
    text = _report(journal_target)
    assert "not fully loaded" not in text and "30 messages" in text, text
    shown = json.loads(_report(journal_target, "--json"))
    assert shown["loaded"] == 30
    assert "(none yet)" not in shown["statuses"] and shown["no_status_yet"] == 0
    assert sum(shown["statuses"].values()) == 30
