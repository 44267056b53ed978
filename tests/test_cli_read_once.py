"""``hpgfast send --file`` without ``--journal`` reads its input once.

The whole input is still checked before the first request (a bad last line sends
nothing and names its line), but the send pass reads the checked copy the check
wrote (``hpgfast.cli._checked``) instead of parsing the file again: a named pipe,
which can be read only once, is sent whole. Memory stays flat for any input size,
and the checked copy leaves nothing behind. Each test runs the real command in a
subprocess against the emulator over real HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from hpgfast.emulator import Emulator

ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}


def _csv(n: int) -> bytes:
    rows = (f"7900{i:07d},message {i} Привет,hpgfast,c{i}\n" for i in range(n))
    return b"address,text,subject,client_id\n" + "".join(rows).encode()


def _jsonl(n: int) -> bytes:
    rows = (
        json.dumps({"address": f"7900{i:07d}", "text": f"message {i}", "subject": "hpgfast",
                    "client_id": f"c{i}", "params": {"tag": f"t{i % 3}"}}) + "\n"
        for i in range(n)
    )
    return "".join(rows).encode()


def _send(
    emu: Emulator, file: str, *args: str, data: Optional[bytes] = None,
    env: Optional[dict[str, str]] = None, preexec_fn: Optional[Callable[[], Any]] = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
               "--file", file, "--json", "--quiet", *args]
    return subprocess.run(command, env=env or ENV, input=data, capture_output=True,
                          timeout=timeout, preexec_fn=preexec_fn)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_named_pipe_is_checked_whole_and_sent(tmp_path: Path, fmt: str) -> None:
    """A pipe can be read only once: the check's copy is what is sent."""
    n = 12_345  # three chunks of 5,000, the last one short
    data = _csv(n) if fmt == "csv" else _jsonl(n)
    fifo = tmp_path / "m.in"
    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb") as f:  # blocks until the sender opens it
                f.write(data)
        except BrokenPipeError:  # pragma: no cover - the sender died
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with Emulator(speed=None) as emu:
        # A sender that opened the pipe a second time would wait for a writer.
        done = _send(emu, str(fifo), "--format", fmt, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert len(emu.ledger) == n
        assert emu.ledger.duplicates("client_id") == {}
        sent = {e.client_id: e for e in emu.ledger}
    summary = json.loads(done.stdout)
    assert summary["this_run"]["attempted"] == n
    assert summary["this_run"]["accepted"] == n
    writer.join(5)
    last = sent[f"c{n - 1}"]
    assert (last.address, last.subject) == (f"7900{n - 1:07d}", "hpgfast")
    assert last.text == (f"message {n - 1} Привет" if fmt == "csv" else f"message {n - 1}")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("stdin", [False, True])
def test_a_bad_last_line_sends_nothing(tmp_path: Path, fmt: str, stdin: bool) -> None:
    """Line 90,001 of 90,001 is bad: nothing reaches the platform, the line is named."""
    n = 90_000
    if fmt == "csv":
        data = _csv(n) + b"79000000001,short\n"  # record 90,001 on line 90,002
        line, message = n + 2, "2 fields, but the header has 4"
    else:
        data = _jsonl(n) + b'{"address": "79000000001"}\n'
        line, message = n + 1, "an object needs 'address' and 'text'"
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(data)
    with Emulator(speed=None) as emu:
        done = _send(emu, "-" if stdin else str(path), "--format", fmt,
                     data=data if stdin else None, env={**ENV, "TMPDIR": str(tmp_path)})
        assert len(emu.ledger) == 0, "a message went out before the input was checked"
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"{'<stdin>' if stdin else path}:{line}: {message}" in err, err
    assert done.stdout == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "a temporary file was left"


def test_nothing_is_left_behind(tmp_path: Path) -> None:
    """The checked copy is gone once the run ends, sent or stopped."""
    path = tmp_path / "m.csv"
    path.write_bytes(_csv(7_000))
    env = {**ENV, "TMPDIR": str(tmp_path)}
    with Emulator(speed=None) as emu:
        done = _send(emu, str(path), env=env)
        assert done.returncode == 0, done.stderr.decode()
        assert len(emu.ledger) == 7_000
    # The platform down after the check: the run stops, the copy goes all the same.
    with Emulator(speed=None) as emu:
        url = emu.url
    command = [sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", "CLIENT",
               "--file", str(path), "--json", "--quiet", "--connect-timeout", "1"]
    down = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert down.returncode == 4, down.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _peak_rss_kib(emu: Emulator, path: Path) -> int:
    command = [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", "CLIENT",
               "--file", str(path), "--json", "--quiet"]
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    assert proc.returncode == 0, err.decode()
    return int(usage.ru_maxrss)  # KiB on Linux


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
@pytest.mark.skipif(sys.version_info < (3, 9), reason="os.waitstatus_to_exitcode")
def test_memory_stays_flat(tmp_path: Path) -> None:
    """Ten times the messages: the same peak memory (one chunk is held, not the input)."""
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(_csv(15_000))
    large.write_bytes(_csv(150_000))  # 135,000 more messages: ~40 MB as Messages
    with Emulator(speed=None) as emu:
        peaks = {p.name: _peak_rss_kib(emu, p) for p in (small, large, small)}
        assert len(emu.ledger) == 180_000
    grew = peaks["large.csv"] - peaks["small.csv"]
    assert grew < 8 * 1024, f"peak RSS grew {grew} KiB with 10x the input: {peaks}"


resource = pytest.importorskip("resource")


def _limit_files() -> None:
    # Writes past 1 MiB fail (EFBIG, as on a full disk; Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("given", ["file", "pipe", "stdin"])
def test_no_room_for_the_checked_copy_sends_nothing(tmp_path: Path, given: str) -> None:
    """A disk too full for the checked copy: the check ends, then nothing is sent.

    Reading the input again would send what a second read finds: nothing from a pipe
    (or the next stream written to it), lines nobody checked from a file changed since.
    """
    n = 30_000  # about 1.9 MB checked: past the limit
    data = _csv(n)
    path = tmp_path / "m.csv"
    writer: Optional[threading.Thread] = None
    if given == "file":
        path.write_bytes(data)
    elif given == "pipe":
        os.mkfifo(path)
        writer = threading.Thread(target=path.write_bytes, args=(data,), daemon=True)
        writer.start()
    with Emulator(speed=None) as emu:
        done = _send(emu, "-" if given == "stdin" else str(path),
                     data=data if given == "stdin" else None, preexec_fn=_limit_files,
                     env={**ENV, "TMPDIR": str(tmp_path)}, timeout=60)
        assert len(emu.ledger) == 0
    error = done.stderr.decode()
    assert done.returncode == 2, error
    what = "standard input's copy" if given == "stdin" else "the checked copy of the input"
    assert f"no room for {what} in {tmp_path}" in error
    assert "nothing was sent" in error and "TMPDIR" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if given == "stdin" else [path.name])
    if writer is not None:
        writer.join(5)
        assert not writer.is_alive()


def test_no_room_for_the_checked_copy_still_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(_csv(30_000) + b",no address\n")
    with Emulator(speed=None) as emu:
        done = _send(emu, str(path), preexec_fn=_limit_files,
                     env={**ENV, "TMPDIR": str(tmp_path)})
        assert len(emu.ledger) == 0
    assert done.returncode == 2
    assert "m.csv:30002:" in done.stderr.decode()


def _counted_one_by_one(results: list[Any]) -> tuple[dict[str, int], dict[str, int], Any]:
    """What ``SendSummary.add`` counts, by its rule applied to each result in turn."""
    from hpgfast.journal._schema import result_state

    states: dict[str, int] = {}
    rejected: dict[str, int] = {}
    failure = None
    for r in results:
        state = result_state(r)
        states[state] = states.get(state, 0) + 1
        if state == "rejected":
            code = r[0]
            rejected[code] = rejected.get(code, 0) + 1
        elif state != "accepted" and failure is None:
            failure = getattr(r, "error", None)
    return states, rejected, failure


def test_the_summary_counts_a_chunk_as_its_rule_does() -> None:
    """The send loop's counting (all "ok" counted at once) agrees with the rule, in order."""
    import random

    from hpgfast import SendResult
    from hpgfast.core._results import SendFailure
    from hpgfast.exceptions import ConnectError, RequestRejected
    from hpgfast.journal import SendSummary

    down = ConnectError("refused", url="http://x/", sent=False)
    refused = RequestRejected("error-syntax")
    kinds = [
        SendResult("ok", "a", "1"), SendResult("ok", "b", "2", "2"),
        SendResult("error-address-format", "c"), SendResult("error-account-locked", "d"),
        SendFailure("ok", "e", "3"), SendFailure("not-sent", "f", error=down),
        SendFailure("unknown", "g", error=down), SendFailure("error-syntax", "h", error=refused),
        SendResult("unknown", "i"), None,
    ]
    rng = random.Random(7)
    chunks = [[kinds[0]] * 50, [kinds[0]] * 9 + [kinds[2]], [kinds[6], kinds[0], kinds[5]]]
    chunks += [[rng.choice(kinds[: k]) for _ in range(rng.randint(1, 40))]
               for k in (2, 4, 5, 9, 10) for _ in range(40)]
    for chunk in chunks:
        summary = SendSummary()
        summary.add(len(chunk), chunk)
        states, rejected, failure = _counted_one_by_one(chunk)
        assert dict(summary.states) == states, chunk
        assert dict(summary.rejected_by_code) == rejected, chunk
        assert list(summary.rejected_by_code) == list(rejected), chunk
        assert summary.failure is failure, chunk


@pytest.mark.parametrize("size", [1, 2, 3, 5000])
@pytest.mark.parametrize(
    ("fmt", "text", "options"),
    [
        ("csv", "address,text,subject,client_id,tag\n+7 (900) 1,a,s,c1,x\n\n7900 2,b,,,\n"
         "79003, \"c,d\" ,s,c3,\n", {"normalize_addresses": True}),
        ("csv", "Address;TEXT;clientId\n79001;a;c1\n79002;b;\n79003;c;c3\n", {}),
        ("csv", "address,text,subject\n79001,a,s\n79002,b,\n", {"default_subject": None}),
        ("csv", "address,text\n79001,a\n79002,\n", {}),
        ("csv", "address,text\n79001,a\n79002,b,c\n", {}),
        ("csv", "address,text\n79001,\"a\n", {}),
        ("csv", "address,text,subject\n79001,a,\n", {"default_subject": None}),
        ("csv", "address\n79001\n", {}),
        ("csv", "address,text\n", {}),
        ("jsonl", '{"address": 79001, "text": "a", "params": {"k": "v"}, "x": "y"}\n\n'
         '{"address": "79002", "text": "b", "clientId": "c2", "subject": "s"}\n', {}),
        ("jsonl", '{"address": "79001", "text": "a"}\n[1]\n', {}),
    ],
)
def test_the_chunks_checked_are_the_messages_read(
    tmp_path: Path, fmt: str, text: str, options: dict[str, Any], size: int
) -> None:
    """``read_chunks`` gives ``read_messages``'s very messages and lines, or its error."""
    from hpgfast.cli._input import InputError, read_chunks, read_messages

    path = tmp_path / f"m.{fmt}"
    path.write_text(text, encoding="utf-8")

    def rows() -> Any:
        try:
            return [(line, tuple(m)) for line, m in read_messages(str(path), fmt, **options)]
        except InputError as exc:
            return str(exc)

    def chunked() -> Any:
        try:
            out = []
            for lines, fields in read_chunks(str(path), fmt, size, **options):
                assert len(fields) == 5 * len(lines) and 0 < len(lines) <= size
                out += [(line, tuple(fields[5 * i: 5 * i + 5])) for i, line in enumerate(lines)]
            return out
        except InputError as exc:
            return str(exc)

    expected = rows()
    assert chunked() == expected
    assert expected  # a message, or an error naming the file


def test_a_command_imports_only_its_own_modules(tmp_path: Path) -> None:
    """``hpgfast send`` builds only its own parser: the emulator (``emulate``'s,
    ``receive``'s) is not imported, which was a tenth of its start-up."""
    path = tmp_path / "m.csv"
    path.write_bytes(_csv(3))
    code = (
        "import sys\n"
        "from hpgfast.cli import main\n"
        f"code = main(['-v', 'send', '--dry-run', '--json', '--file', {str(path)!r}])\n"
        "print(code, sorted(m for m in sys.modules if m.startswith('hpgfast.emulator')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout


@pytest.mark.parametrize(
    ("argv", "shows"),
    [(["--help"], "emulate"), (["send", "--help"], "--file"), (["-vv", "send", "--help"], "--file"),
     (["sned"], "invalid choice"), (["--version"], "hpgfast")],
)
def test_the_whole_parser_answers_what_names_no_command(argv: list[str], shows: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hpgfast", *argv], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert shows in done.stdout + done.stderr


@pytest.mark.parametrize("size", [1, 2, 3, 5000])
@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        # One subject throughout; numbers without a gap.
        ("csv", "address,text,subject\n79001,a,s\n79002,b,s\n79003,c,s\n"),
        # Subjects that differ, are missing, or one missing in a chunk of the same.
        ("csv", "address,text,subject,client_id\n79001,a,s,c1\n79002,b,t,\n79003,c,,c3\n"
         "79004,d,s,c4\n"),
        ("csv", "address,text\n79001,a\n79002,b\n"),
        # Blank lines: numbers with gaps; params.
        ("jsonl", '{"address": "79001", "text": "a", "subject": "s"}\n\n\n'
         '{"address": "79002", "text": "b", "subject": "s", "k": "v"}\n\n'
         '{"address": "79003", "text": "c"}\n'),
    ],
)
def test_the_checked_copy_gives_back_what_was_checked(
    tmp_path: Path, fmt: str, text: str, size: int
) -> None:
    """What the send pass reads from the check's copy is what the check read: the
    same numbers, the same five fields, in order, whatever the copy's shortcuts."""
    from hpgfast.cli._checked import CheckedInput
    from hpgfast.cli._input import read_chunks

    path = tmp_path / f"m.{fmt}"
    path.write_text(text, encoding="utf-8")
    expected = []
    for lines, fields in read_chunks(str(path), fmt, size):
        expected += [(line, tuple(fields[5 * i: 5 * i + 5])) for i, line in enumerate(lines)]
    with CheckedInput(size, str(tmp_path)) as checked:
        assert checked.check(read_chunks(str(path), fmt, size)) == len(expected)
        got = [(line, tuple(m)) for lines, messages in checked.blocks()
               for line, m in zip(lines, messages)]
    assert got == expected
