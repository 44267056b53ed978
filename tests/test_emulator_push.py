"""The emulator's push mode, end to end: a real ``Receiver`` on loopback takes what it pushes.

Messages are sent with ``http.client`` and ``urllib.parse.quote`` (not hpgfast's codec);
the expected lifecycle is spelled out here by hand, not taken from the emulator's tables.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

import pytest

from hpgfast import StatusResult
from hpgfast.emulator import Emulator
from hpgfast.emulator._cli import PUSH_SECRET_ENV, add_arguments, emulator_from_args
from hpgfast.emulator._lifecycle import Schedule, Timing
from hpgfast.receiver import Receiver

SECRET = "push-s3cret_~.-"
S, F, D = 1.0, 2.0, 60.0  # sent_after, final_after, delayed_for

#: Last address digit -> the statuses it passes through: (offset, status, reason).
EXPECTED: dict[str, list[tuple[float, str, Optional[str]]]] = {
    **{
        d: [(0, "enqueued", None), (S, "sent", None), (F, "delivered", None)]
        for d in "012345"
    },
    "6": [(0, "enqueued", None), (S, "sent", None), (F, "undelivered", "unknown-subscriber")],
    "7": [(0, "enqueued", None), (S, "sent", None), (F, "failed", "platform-error")],
    "8": [(0, "delayed", None), (D + S, "sent", None), (D + F, "delivered", None)],
    "9": [(0, "enqueued", None), (F, "cancelled", "cancelled-by-operator")],
}


class Collector:
    """The receiver's callback: every report, in arrival order."""

    def __init__(self) -> None:
        self.reports: list[StatusResult] = []
        self.lock = threading.Lock()

    def __call__(self, report: StatusResult) -> None:
        with self.lock:
            self.reports.append(report)

    def snapshot(self) -> list[StatusResult]:
        with self.lock:
            return list(self.reports)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[StatusResult]:
        """Wait for ``count`` reports, then a little more to see that no extra one comes."""
        deadline = time.monotonic() + timeout
        while len(self.snapshot()) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        got = self.snapshot()
        assert len(got) == count, f"expected {count} reports, got {len(got)}: {got[count:]}"
        return got


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def send(emu: Emulator, addresses: Sequence[str]) -> list[str]:
    """Send one message per address in one request; returns their providerIds."""
    pairs = [("login", "CLIENT"), ("password", "P@ssw0rd")]
    for i, address in enumerate(addresses):
        pairs += [(f"subject[{i}]", "SUBJECT"), (f"address[{i}]", address),
                  (f"text[{i}]", f"message {i}")]
    query = "&".join(f"{quote(n, safe='[]')}={quote(v, safe='')}" for n, v in pairs)
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    try:
        conn.request("GET", f"{urlsplit(emu.url).path}send?{query}")
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 200
    lines = body.splitlines()
    assert all(line.startswith("ok;") for line in lines), body
    return [line.split(";")[2] for line in lines]


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def receiver(collector: Collector) -> Iterator[Receiver]:
    with Receiver(collector, secret=SECRET) as server:
        yield server


def push_emulator(receiver: Receiver, **settings: object) -> Emulator:
    options: dict[str, object] = dict(
        speed=0, sent_after=S, final_after=F, delayed_for=D,
        push_url=receiver.url, push_secret=SECRET, push_interval=0.01,
    )
    options.update(settings)
    return Emulator(**options)  # type: ignore[arg-type]


ADDRESSES = [f"790311111{d}{d}" for d in "0123456789"]


def expected_at(
    emu: Emulator, sent: dict[str, tuple[str, float]], after: float, upto: float
) -> Counter[tuple[str, str, datetime, Optional[str]]]:
    """The changes of ``sent`` (providerId -> (address, acceptance time)) in (after, upto]."""
    out: Counter[tuple[str, str, datetime, Optional[str]]] = Counter()
    for pid, (address, t0) in sent.items():
        for offset, status, reason in EXPECTED[address[-1]]:
            if after < t0 + offset <= upto:
                out[(pid, status, emu.datetime_at(t0 + offset), reason)] += 1
    return out


def as_keys(reports: Sequence[StatusResult]) -> Counter[tuple[str, str, datetime, Optional[str]]]:
    return Counter((r.provider_id, r.status, r.time, r.reason) for r in reports)  # type: ignore[misc]


@pytest.mark.parametrize("shape", ["lines", "form", "query", "json"])
def test_every_change_pushed_once_in_time_order(
    receiver: Receiver, collector: Collector, shape: str
) -> None:
    with push_emulator(receiver, push_shape=shape, push_batch=7) as emu:
        sent = {pid: (a, 0.0) for pid, a in zip(send(emu, ADDRESSES), ADDRESSES)}
        emu.advance(0.5)
        later = {pid: (a, 0.5) for pid, a in zip(send(emu, ADDRESSES[::-1]), ADDRESSES[::-1])}
        sent.update(later)
        total = 0
        clock = -1.0
        for step in (0.0, 0.5, 1.0, 58.0, 1.0, 0.5, 0.5, 1.0, 10.0):
            emu.advance(step)
            now = emu.now()
            expected = expected_at(emu, sent, clock, now)
            clock = now
            got = collector.wait_for(total + sum(expected.values()))
            assert as_keys(got[total:]) == expected, f"at emulator time {now}"
            total = len(got)
            # What was pushed last for a message is what STATUS tells now.
            last = {r.provider_id: r for r in got}
            for pid in sent:
                status, since, reason = emu.status(pid)  # type: ignore[misc]
                assert (last[pid].status, last[pid].time, last[pid].reason or "") == (
                    status, since, reason,
                )
        got = collector.snapshot()
        # Every change exactly once (3 per message, 2 for a cancelled one), in time order.
        assert total == len(got) == 2 * (9 * 3 + 2)
        assert max(as_keys(got).values()) == 1
        assert [r.time for r in got] == sorted(r.time for r in got)  # type: ignore[type-var]
        for pid in sent:
            statuses = [r.status for r in got if r.provider_id == pid]
            assert statuses == [s for _, s, _ in EXPECTED[sent[pid][0][-1]]]
        pushes = emu.pushes
        assert pushes["failed"] == 0 and pushes["reports"] == total and pushes["pending"] == 0
        assert pushes["sent"] >= total // 7


def test_wrong_secret_counted_as_failed_and_retried(
    receiver: Receiver, collector: Collector
) -> None:
    with push_emulator(receiver, push_secret="not-the-secret") as emu:
        pids = send(emu, ADDRESSES[:3])
        wait_until(lambda: emu.pushes["failed"] >= 3)  # retried, with a growing pause
        assert collector.snapshot() == [] and emu.pushes["sent"] == 0
        assert emu.pushes["pending"] == 3
        emu.push_secret = SECRET  # the operator fixes the secret: the same reports go
        got = collector.wait_for(3)
        assert [(r.provider_id, r.status) for r in got] == [(p, "enqueued") for p in pids]
        pushes = emu.pushes
        assert pushes["sent"] == 1 and pushes["reports"] == 3 and pushes["failed"] >= 3


def test_a_push_answered_400_is_tried_push_attempts_times_then_dropped(
    collector: Collector,
) -> None:
    # A receiver that cannot read the JSON pushes (it looks for another field name):
    # every push is answered 400.
    with Receiver(collector, secret=SECRET, json_fields={"providerId": "msgId"}) as receiver:
        with push_emulator(receiver, push_shape="json", push_attempts=3) as emu:
            send(emu, ADDRESSES[:2])
            wait_until(lambda: emu.pushes["dropped"] == 2)
            pushes = emu.pushes
            assert (pushes["failed"], pushes["sent"], pushes["pending"]) == (3, 0, 0)
            # The next changes are tried afresh, three times, and dropped in turn.
            emu.advance(S)
            wait_until(lambda: emu.pushes["dropped"] == 4)
            time.sleep(0.3)  # and nothing more is tried
            pushes = emu.pushes
            assert (pushes["failed"], pushes["sent"], pushes["pending"]) == (6, 0, 0)
    assert collector.snapshot() == []


def test_the_push_attempts_default_is_the_platform_s_ten(collector: Collector) -> None:
    with Receiver(collector, secret=SECRET, json_fields={"providerId": "msgId"}) as receiver:
        # push_interval 0.001: the doubling pause reaches its 2 s cap after 11 tries.
        with push_emulator(receiver, push_shape="json", push_interval=0.001) as emu:
            assert emu.push_attempts == 10
            send(emu, ADDRESSES[:1])
            wait_until(lambda: emu.pushes["dropped"] == 1, timeout=10)
            assert emu.pushes["failed"] == 10
    with pytest.raises(ValueError, match="push_attempts"):
        Emulator(push_attempts=0)


def test_unreachable_receiver_never_hurts_the_server() -> None:
    with Receiver(secret=SECRET) as gone:
        url = gone.url
    before = set(threading.enumerate())
    with Emulator(speed=0, push_url=url, push_secret=SECRET, push_interval=0.01) as emu:
        send(emu, ADDRESSES[:2])
        wait_until(lambda: emu.pushes["failed"] >= 2)
        emu.advance(100)
        assert [emu.status(p)[0] for p in ("1001", "1002")] == ["delivered", "delivered"]  # type: ignore[index]
        started = time.monotonic()
    assert time.monotonic() - started < 2.5  # close() does not wait out the backoff
    assert set(threading.enumerate()) == before


def test_speed_clock_pushes_everything(receiver: Receiver, collector: Collector) -> None:
    with push_emulator(receiver, speed=400.0, push_batch=500) as emu:
        pids = send(emu, ADDRESSES)
        got = collector.wait_for(9 * 3 + 2)
        assert max(as_keys(got).values()) == 1
        assert [r.time for r in got] == sorted(r.time for r in got)  # type: ignore[type-var]
        for pid in pids:
            final = [r for r in got if r.provider_id == pid][-1]
            status, since, reason = emu.status(pid)  # type: ignore[misc]
            assert (final.status, final.time, final.reason or "") == (status, since, reason)


def test_many_messages_in_batches(receiver: Receiver, collector: Collector) -> None:
    with push_emulator(receiver, push_batch=500) as emu:
        for r in range(40):
            send(emu, [f"7903{r:03d}{i:04d}" for i in range(100)])
        collector.wait_for(4000)  # enqueued and delayed, pushed as the requests came
        before = emu.pushes["sent"]
        emu.advance(F)  # sent and final for digits 0-7, cancelled for 9; 8 stays delayed
        expected = 4000 + 3200 + 3600
        got = collector.wait_for(expected, timeout=20)
        assert max(as_keys(got).values()) == 1
        pushes = emu.pushes
        assert pushes["reports"] == expected and pushes["failed"] == 0
        assert pushes["sent"] - before == -(-6800 // 500)  # full batches of 500


def test_schedule_order_and_compaction() -> None:
    timing = Timing(S, F, D)
    schedule = Schedule(timing)
    for n in range(10_000):  # one message a batch, accepted every 0.25 s
        schedule.add(1001 + n, n * 0.25, str(n % 10).encode())
    taken = []
    for now in range(0, 2600, 7):
        batch = schedule.take(float(now), 64)
        while batch:
            taken += batch
            batch = schedule.take(float(now), 64)
    assert len(schedule) == 0 and schedule.next_due() is None
    assert len(schedule._first_pid) < 4096  # drained batches were dropped
    assert len(taken) == 1000 * (9 * 3 + 2) == len(set(taken))
    assert [t[2] for t in taken] == sorted(t[2] for t in taken)
    assert taken[:3] == [(1001, "enqueued", 0.0, ""), (1002, "enqueued", 0.25, ""),
                         (1003, "enqueued", 0.5, "")]
    with pytest.raises(ValueError):
        schedule.add(99_999, 0.0, b"0")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--port", "0", *argv])


def test_command_line_options(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSH_SECRET_ENV, SECRET)
    with emulator_from_args(_args("--push-url", receiver.url, "--push-shape", "form")) as emu:
        assert (emu.push_url, emu.push_secret, emu.push_shape) == (receiver.url, SECRET, "form")
    with emulator_from_args(_args("--push-url", receiver.url, "--push-attempts", "3",
                                  "--push-shape", "json")) as emu:
        assert (emu.push_attempts, emu.push_shape) == (3, "json")
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    with emulator_from_args(
        _args("--push-url", receiver.url, "--push-secret-file", str(secret_file))
    ) as emu:
        assert emu.push_secret == "from-the-file" and emu.push_shape == "lines"
    with emulator_from_args(_args()) as emu:
        assert emu.push_url is None
    secret_file.write_text("bad\tsecret\n")
    with pytest.raises(ValueError) as info:
        emulator_from_args(_args("--push-url", receiver.url, "--push-secret-file",
                                 str(secret_file)))
    assert "bad" not in str(info.value)
    with pytest.raises(ValueError):
        emulator_from_args(_args("--push-secret-file", str(secret_file)))


@pytest.mark.parametrize("shape", ["lines", "form", "query"])
@pytest.mark.parametrize("style", ["iso_offset", "garbage"])
def test_pushed_times_of_another_shape_cost_only_the_time(
    receiver: Receiver, collector: Collector, shape: str, style: str
) -> None:
    # Before, a push whose dateTime the receiver could not read was answered 400 and
    # lost after push_attempts tries; an ISO-8601 one in STATUS lines was refused too.
    with push_emulator(receiver, push_shape=shape, date_style=style) as emu:
        pids = send(emu, ADDRESSES[:3])
        got = collector.wait_for(3)
        assert [(r.provider_id, r.status) for r in got] == [(p, "enqueued") for p in pids]
        pushes = emu.pushes
        assert pushes["failed"] == 0 and pushes["reports"] == 3
        if style == "garbage":
            assert all(r.time is None and r.raw is not None for r in got)
        else:
            plus3 = timezone(timedelta(hours=3))
            assert [r.time for r in got] == [emu.datetime_at(0.0).replace(tzinfo=plus3)] * 3
