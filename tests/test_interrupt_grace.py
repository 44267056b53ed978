"""Ctrl-C lets the requests on the wire finish, at any concurrency, in both clients
and the CLI.

A real SIGINT goes to a real process sending against the emulator (0.5 s latency
per reply, two seconds of grace after an interrupt) while requests are on the
wire. Every message the platform accepted must come back accepted with its
provider id (not ``unknown``), every other one ``not-sent``: at concurrency 1 as at
concurrency 4. The signal is sent while the emulator holds requests (their
messages are in its ledger, their replies 0.5 s away), so each case has requests
in flight at the interrupt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hpgfast import Client, Code, Message
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal
from ledger_checks import assert_truthful
from transports import interrupt_soon

N = 400
MAX_BATCH = 10
LATENCY = 0.5

#: Sends N messages with the given client and concurrency; on the interrupt, prints
#: every result (address, code, provider id) as JSON and exits 130.
DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys
    from hpgfast import AsyncClient, Client, Message

    url, kind, concurrency, n, max_batch = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    messages = [Message(f"7903{i:07d}", f"grace #{i}") for i in range(n)]
    settings = dict(default_subject="Shop", max_batch=max_batch, concurrency=concurrency)

    def report(results):
        rows = [[m.address, r.code, r.provider_id] for m, r in zip(messages, results)]
        print(json.dumps(rows), flush=True)

    if kind == "sync":
        with Client(url, "CLIENT", "P@ssw0rd", **settings) as client:
            print("ready", flush=True)
            try:
                client.send(messages)
            except KeyboardInterrupt as exc:
                report(exc.results)
                sys.exit(130)
    else:
        async def main():
            async with AsyncClient(url, "CLIENT", "P@ssw0rd", **settings) as client:
                print("ready", flush=True)
                try:
                    await client.send(messages)
                except asyncio.CancelledError as exc:
                    report(exc.results)
                    raise
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            sys.exit(130)
    sys.exit(0)
    """
)


def _interrupt_while_on_the_wire(emu: Emulator, proc: subprocess.Popen[bytes]) -> int:
    """SIGINT once the emulator holds the third round of requests; the ledger then."""
    deadline = time.monotonic() + 60
    target = 2 * MAX_BATCH + 1  # past two requests: later ones are on the wire
    while len(emu.ledger) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the sender ended before the interrupt"
    time.sleep(0.05)  # the held requests now wait LATENCY - 0.05 s for their replies
    at_signal = len(emu.ledger)
    proc.send_signal(signal.SIGINT)
    return at_signal


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_interrupt_lets_the_requests_on_the_wire_finish(
    tmp_path: Path, kind: str, concurrency: int
) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    with Emulator(speed=None, latency=LATENCY) as emu:
        proc = subprocess.Popen(
            [sys.executable, str(script), emu.url, kind, str(concurrency), str(N),
             str(MAX_BATCH)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        started = time.monotonic()
        at_signal = _interrupt_while_on_the_wire(emu, proc)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
        ledger = {e.address: e.provider_id for e in emu.ledger}
    assert proc.returncode == 130, err.decode()
    rows = json.loads(out)
    assert len(rows) == N
    codes = [code for _, code, _ in rows]
    assert "unknown" not in codes, (codes.count("unknown"), err.decode())
    for address, code, provider_id in rows:
        if address in ledger:
            assert (code, provider_id) == ("ok", ledger[address]), address
        else:
            assert code == "not-sent", address
    # The requests held at the signal were among those let finish; nothing started
    # after it (at most the requests then on the wire, one per connection).
    assert at_signal <= len(ledger) <= at_signal + concurrency * MAX_BATCH
    assert took < 30


def _write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,client_id\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i},c{i}\n")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_cli_lets_the_requests_on_the_wire_finish(tmp_path: Path, concurrency: int) -> None:
    csv_path = tmp_path / "m.csv"
    journal_path = tmp_path / "run.db"
    _write_csv(csv_path, N)
    env = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}
    with Emulator(speed=None, latency=LATENCY) as emu:
        command = [
            sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
            "--file", str(csv_path), "--journal", str(journal_path),
            "--concurrency", str(concurrency), "--max-batch", str(MAX_BATCH), "--quiet",
            "--subject", "hpgfast",
        ]  # fmt: skip
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        at_signal = _interrupt_while_on_the_wire(emu, proc)
        _, err = proc.communicate(timeout=60)
        ledger = {e.client_id: e.provider_id for e in emu.ledger.messages()}
    assert proc.returncode == 130, err.decode()
    assert at_signal <= len(ledger) <= at_signal + concurrency * MAX_BATCH
    states: dict[str, int] = {}
    with Journal(journal_path) as journal:
        for row in journal.rows():
            client_id, state, provider_id = row[4], row[6], row[7]
            states[state] = states.get(state, 0) + 1
            if client_id in ledger:
                assert (state, provider_id) == ("accepted", ledger[client_id]), client_id
            else:
                assert state in ("pending", "not_sent"), (client_id, state)
    assert states.get("unknown", 0) == 0, states
    assert states.get("accepted", 0) == len(ledger), states


def test_a_second_interrupt_ends_the_grace_at_concurrency_1() -> None:
    # The calling thread's own grace (Client at concurrency 1) ends at a second
    # Ctrl-C, as the worker threads' does: the request on the wire is unknown.
    messages = [Message(f"7903{i:07d}", f"twice #{i}") for i in range(30)]
    with Emulator(speed=None, latency=1.0) as emu:
        client = Client(emu.url, emu.login, emu.password, default_subject="Shop", max_batch=10)
        with client:
            thread = interrupt_soon(client, 0.2, times=2)
            started = time.monotonic()
            try:
                with pytest.raises(KeyboardInterrupt) as info:
                    client.send(messages)
            finally:
                thread.join()
            took = time.monotonic() - started
            results = info.value.results  # type: ignore[attr-defined]
            assert [r.code for r in results] == [Code.UNKNOWN] * 10 + [Code.NOT_SENT] * 20
            assert took < 0.9  # cut at the second interrupt, not at the reply
            assert_truthful(emu, messages, results)
