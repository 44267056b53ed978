"""``hpgfast demo``: the whole job on the bundled emulator, with honest figures.

Strategy: the emulator runs in its own process (``python -m hpgfast.emulator --port
0``), so the CPU time this process spends is the client's alone (the codec, urllib3,
the journal, the progress bar), measured with ``resource.getrusage`` around the send
phase. The emulator's clock runs fast (``--speed``, default 200 emulator seconds per
second), so even the "delayed" messages (60 emulator seconds) reach a final status
in well under a second. The messages are the seeded standard batch the benchmarks
use (``hpgfast._sample``): Latin, Cyrillic and emoji texts, 11-digit addresses whose
last digit decides each message's fate in the emulator; every 250th address is cut
short, so the platform rejects 0.4% of them, as it would a real campaign list's.
The send and follow code is the very code of ``hpgfast send --journal`` and
``hpgfast status --follow``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import IO, Any

from .._term import counted
from ._common import open_journal_at
from ._output import Progress, dump_json, table

__all__ = ["run_demo"]

LOGIN = "CLIENT"
PASSWORD = "P@ssw0rd"
#: A real campaign list always holds a few bad numbers: every BAD_EVERY-th address is
#: cut to 7 digits, so the platform answers error-address-format for it, and the
#: summary shows what a rejection looks like.
BAD_EVERY = 250


def demo_batch(n: int) -> list[Any]:
    """The standard batch of ``n`` messages, with every ``BAD_EVERY``-th address malformed."""
    from .._sample import standard_batch

    messages = list(standard_batch(n))
    for i in range(BAD_EVERY - 1, n, BAD_EVERY):
        messages[i] = messages[i]._replace(address=messages[i].address[:7])
    return messages


def _cpu() -> float:
    try:
        import resource
    except ImportError:  # not POSIX
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _EmulatorProcess:
    """``python -m hpgfast.emulator`` on a free port, its URL read from its stdout."""

    def __init__(self, speed: float, log: IO[bytes]) -> None:
        command = [
            sys.executable, "-m", "hpgfast.emulator",
            "--port", "0", "--speed", str(speed), "--seed", "1",
            "--login", LOGIN, "--password", PASSWORD,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("http"):
            self.close()
            raise RuntimeError(f"the emulator did not start (said {line!r}); see its log")
        self.url = line

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status (0 when every message ended as expected)."""
    from ..client import Client
    from ..journal._follow import follow
    from ._run import send_plain

    quiet = args.quiet or args.json
    n = args.messages

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hpgfast-demo-") as tmp:
        log_path = os.path.join(tmp, "emulator.log")
        with open(log_path, "wb") as emulator_log:
            emulator = _EmulatorProcess(args.speed, emulator_log)
            try:
                say(f"emulator running at {emulator.url} (its own process)")
                messages = demo_batch(n)
                bad = n // BAD_EVERY
                rows = [(i, m) for i, m in enumerate(messages, 1)]
                figures: dict[str, Any] = {"messages": n, "concurrency": args.concurrency}
                journal: Any = None
                if not args.no_journal:
                    path = args.journal or os.path.join(tmp, "demo.db")
                    journal = open_journal_at(path, "--journal", existing=False, lock=True)
                try:
                    with Client(emulator.url, LOGIN, PASSWORD,
                                concurrency=args.concurrency) as client:
                        provider_ids: list[str] = []
                        t_load = time.perf_counter()
                        if journal is not None:
                            with journal.loading():
                                journal.bind({"source": "hpgfast demo", "messages": str(n),
                                              "seed": "1", "bad_every": str(BAD_EVERY)})
                                if journal.loaded is None:
                                    journal.load(rows)
                                    journal.finish_load(n)
                        figures["journal_load_seconds"] = round(time.perf_counter() - t_load, 3)
                        cpu0 = _cpu()
                        with Progress(n, "sending", quiet=quiet) as progress:
                            tick = progress.tick
                            if journal is not None:
                                # As ``hpgfast send`` does: each request's messages
                                # are marked in flight just before it leaves.
                                outcome = journal.send(client, progress=tick)
                            else:

                                def keep(lines: Any, results: Any) -> None:
                                    provider_ids.extend(r[2] for r in results if r[2])

                                outcome = send_plain(client, iter(rows), tick=tick,
                                                     on_results=keep)
                        cpu_send = _cpu() - cpu0
                        figures["messages_sent"] = outcome.attempted
                        figures["send_seconds"] = round(outcome.elapsed, 3)
                        figures["messages_per_second"] = round(outcome.rate, 1)
                        figures["client_cpu_seconds"] = round(cpu_send, 3)
                        figures["client_cpu_us_per_message"] = round(
                            cpu_send / max(outcome.attempted, 1) * 1e6, 2
                        )
                        with Progress(None, "following statuses",
                                      quiet=quiet, count=False) as progress:
                            followed = follow(
                                client, journal=journal, provider_ids=provider_ids,
                                deadline=60.0, interval=0.25, max_interval=1.0,
                                tick=progress.tick,
                            )
                        figures["follow_seconds"] = round(followed.elapsed, 3)
                        figures["follow_rounds"] = followed.rounds
                        figures["status_changes"] = followed.changes
                    if journal is not None:
                        summary = journal.summary()
                        states = summary["states"]
                        rejected = summary["rejected_by_code"]
                        statuses = summary["statuses"]
                    else:
                        states = dict(outcome.states)
                        rejected = dict(outcome.rejected_by_code)
                        statuses = dict(Counter(
                            str(r[2]) for r in followed.statuses.values()
                        ).most_common())
                finally:
                    if journal is not None:
                        journal.close()
            finally:
                emulator.close()
    figures["total_seconds"] = round(time.perf_counter() - t0, 3)
    result = {
        "states": states,
        "rejected_by_code": rejected,
        "delivery_statuses": statuses,
        "not_final": followed.open,
        # Every BAD_EVERY-th address is cut short on purpose (see demo_batch).
        "deliberate_rejections": bad,
        "figures": figures,
        "error": None if outcome.error is None else str(outcome.error),
    }
    if args.json:
        dump_json(result)
    else:
        _print(result)
    ok = (
        outcome.error is None
        and followed.open == 0
        and states.get("accepted", 0) == n - bad
        and rejected == ({"error-address-format": bad} if bad else {})
    )
    return 0 if ok else 1


def _print(result: dict[str, Any]) -> None:
    states = result["states"]
    rows: list[tuple[Any, ...]] = [
        ("accepted", states.get("accepted", 0)),
        ("rejected", states.get("rejected", 0)),
    ]
    rows.extend((f"  {code}", k) for code, k in result["rejected_by_code"].items())
    deliberate = result["deliberate_rejections"]
    rows += [
        ("unknown", states.get("unknown", 0)),
        ("not sent", states.get("not_sent", 0)),
    ]
    print(table(rows, ("messages", "count")))
    if deliberate:
        print(
            f"{deliberate:,} rejections are deliberate: every {BAD_EVERY}th address is cut "
            "short on purpose (error-address-format), to show what a rejection looks like."
        )
    print()
    print(table(list(result["delivery_statuses"].items()), ("delivery status", "count")))
    if result["not_final"]:
        print(f"{counted(result['not_final'], 'message')} had no final status when "
              "following stopped")
    f = result["figures"]
    print()
    print(table(
        [
            ("messages sent", f"{f['messages_sent']:,}"),
            ("send time", f"{f['send_seconds']:.2f} s"),
            ("messages per second", f"{f['messages_per_second']:,.0f}"),
            ("client CPU per message", f"{f['client_cpu_us_per_message']:.1f} µs"),
            ("following statuses", f"{f['follow_seconds']:.2f} s"),
            ("status rounds", f"{f['follow_rounds']:,}"),
            ("whole demo", f"{f['total_seconds']:.2f} s"),
        ],
        ("figure", "value"),
    ))
    print(
        "\nclient CPU: this process's user+system time while sending (codec, HTTP, "
        f"journal), concurrency {f['concurrency']}; the emulator runs in its own process."
    )
    if result["error"]:
        print(f"stopped early: {result['error']}")
