"""One table of exit codes (``hpgfast.cli._exit``), true for every command.

Every (command, code) pair the table lists is produced here by a real ``hpgfast``
process against the emulator or real files and sockets on loopback; each help text,
the ``hpgfast.cli`` docstring and docs/cli.md are checked against the table; and a
platform reply gives the same code whether the message came from ``--to`` or from a
``--file``.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import hpgfast.cli
from hpgfast import Client, Message
from hpgfast.cli._exit import COMMAND_CODES, ExitCode, exit_codes_help, markdown_tables
from hpgfast.emulator import Emulator
from hpgfast.emulator._faults import Fault

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "P@ssw0rd"
TIMEOUT = 180
#: How long a server has to end once signalled (it ends in well under a second).
LOST_SIGNAL_TIMEOUT = 20


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env.update({"HPGFAST_LOGIN": "CLIENT", "HPGFAST_PASSWORD": PASSWORD,
                "HPGFAST_SUBJECT": "ACME", "HPGFAST_TIMEOUT": "5",
                "HPGFAST_RECEIVER_SECRET": "s3cret"})
    env.update(extra)
    return env


def hpgfast_run(*args: str, env: Optional[dict[str, str]] = None,
                **kw: Any) -> subprocess.CompletedProcess[str]:
    """``hpgfast ARGS`` as a process; its output for the assertion messages."""
    return subprocess.run(
        [sys.executable, "-m", "hpgfast", *args], capture_output=True, text=True,
        timeout=TIMEOUT, env=env or _env(), **kw,
    )


def _csv(path: Path, addresses: list[str]) -> Path:
    path.write_text("address,text\n" + "".join(f"{a},hello\n" for a in addresses),
                    encoding="utf-8")
    return path


def _faulty(**faults: Any) -> Emulator:
    return Emulator(speed=None, faults=faults)


# -- interrupts: at start-up, for every command ----------------------------------------


def _maps(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


#: The two ways to start the command: the console script and ``python -m hpgfast``.
ENTRY_POINTS = {
    "script": [str(Path(sys.executable).with_name("hpgfast"))],
    "python -m": [sys.executable, "-m", "hpgfast"],
}


def interrupted_at_start(args: list[str], env: Optional[dict[str, str]] = None,
                         signum: int = signal.SIGINT, entry: str = "python -m",
                         ) -> subprocess.CompletedProcess[str]:
    """``hpgfast ARGS`` sent ``signum`` while it is still starting up.

    The signal goes as soon as the process maps ``_csv``'s library: ``main``
    imports it while building the parser (the command's module reads its files
    with it), before any command runs (``import hpgfast.cli`` does not). A command
    that finished first is run again.
    """
    for _ in range(20):
        proc = subprocess.Popen([*ENTRY_POINTS[entry], *args], env=env or _env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if "_csv" in _maps(proc.pid):
                proc.send_signal(signum)
                break
            time.sleep(0.0005)
        out, err = proc.communicate(timeout=TIMEOUT)
        if proc.returncode not in (0, 1, 2):  # it did not finish before the signal
            return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    raise AssertionError("every run finished before the interrupt")


# -- a scenario for every (command, code) pair --------------------------------------


Scenario = Callable[[Path], subprocess.CompletedProcess[str]]
SCENARIOS: dict[tuple[str, ExitCode], Scenario] = {}


def scenario(command: str, code: ExitCode) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[(command, code)] = fn
        return fn
    return register


def _send_one(url: str, *extra: str, env: Optional[dict[str, str]] = None,
              ) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("send", "--url", url, "--to", "79031111111", "--text", "hi", *extra,
                       env=env)


@scenario("send", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None) as emu:
        return _send_one(emu.url)


@scenario("send", ExitCode.INCOMPLETE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None, deny_addresses=["79999999999"]) as emu:
        path = _csv(tmp / "m.csv", ["79031111111", "79999999999"])
        return hpgfast_run("send", "--url", emu.url, "--file", str(path))


@scenario("send", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("send", "--url", "http://127.0.0.1:9/C/connectorX/", "--file", str(tmp))


@scenario("send", ExitCode.AUTH)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None) as emu:
        return _send_one(emu.url, env=_env(HPGFAST_PASSWORD="wrong"))


@scenario("send", ExitCode.TRANSPORT)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with _faulty(http_500=1.0) as emu:
        path = _csv(tmp / "m.csv", ["79031111111", "79031111112"])
        return hpgfast_run("send", "--url", emu.url, "--file", str(path))


@scenario("send", ExitCode.ACCOUNT)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None, account_state="error-account-locked") as emu:
        path = _csv(tmp / "m.csv", ["79031111111", "79031111112"])
        return hpgfast_run("send", "--url", emu.url, "--file", str(path))


def _fsize_limit(limit: int) -> Callable[[], None]:
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@scenario("send", ExitCode.JOURNAL)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    # Writes past RLIMIT_FSIZE fail with EFBIG, as on a full disk.
    path = _csv(tmp / "m.csv", [f"7900{i:07d}" for i in range(5_000)])
    with Emulator(speed=None) as emu:
        return hpgfast_run("send", "--url", emu.url, "--file", str(path), "--journal",
                           str(tmp / "run.db"), "--max-batch", "200", "--quiet",
                           preexec_fn=_fsize_limit(200_000))


@scenario("send", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["send", "--url", "http://127.0.0.1:9/C/connectorX/",
                                 "--to", "79031111111", "--text", "hi"])


def _accepted_id(url: str) -> str:
    with Client(url, "CLIENT", PASSWORD) as client:
        provider_id = client.send([Message("79031111111", "hi", "ACME")])[0][2]
    assert provider_id
    return str(provider_id)


@scenario("status", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None) as emu:
        return hpgfast_run("status", "--url", emu.url, _accepted_id(emu.url))


@scenario("status", ExitCode.INCOMPLETE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None) as emu:  # a manual clock: nothing becomes final
        return hpgfast_run("status", "--url", emu.url, _accepted_id(emu.url), "--follow",
                           "--deadline", "0.5", "--interval", "0.1")


@scenario("status", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("status", "--url", "http://127.0.0.1:9/C/connectorX/", "--journal",
                       str(tmp / "none.db"))


@scenario("status", ExitCode.AUTH)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with Emulator(speed=None) as emu:
        return hpgfast_run("status", "--url", emu.url, "1001",
                           env=_env(HPGFAST_PASSWORD="wrong"))


@scenario("status", ExitCode.TRANSPORT)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with _faulty(http_500=1.0) as emu:
        return hpgfast_run("status", "--url", emu.url, "1001")


@scenario("status", ExitCode.ACCOUNT)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    with _faulty(code_only=Fault(rate=1.0, code="error-account-locked")) as emu:
        return hpgfast_run("status", "--url", emu.url, "1001")


@scenario("status", ExitCode.JOURNAL)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    # Statuses recorded in a journal past RLIMIT_FSIZE: as on a full disk.
    path = _csv(tmp / "m.csv", [f"7900{i:07d}" for i in range(5_000)])
    db = tmp / "run.db"
    with Emulator(speed=2000.0) as emu:
        sent = hpgfast_run("send", "--url", emu.url, "--file", str(path), "--journal",
                           str(db), "--quiet")
        assert sent.returncode == 0, sent.stderr
        time.sleep(0.5)  # emulator time: the statuses move on
        return hpgfast_run("status", "--url", emu.url, "--journal", str(db), "--follow",
                           "--deadline", "30", "--interval", "0.2",
                           preexec_fn=_fsize_limit(100_000))


@scenario("status", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["status", "--url", "http://127.0.0.1:9/C/connectorX/", "1"])


def _journal(tmp: Path) -> Path:
    path = _csv(tmp / "j.csv", ["79031111111", "79031111112"])
    db = tmp / "run.db"
    with Emulator(speed=None) as emu:
        done = hpgfast_run("send", "--url", emu.url, "--file", str(path), "--journal", str(db))
    assert done.returncode == 0, done.stderr
    return db


@scenario("report", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("report", str(_journal(tmp)))


@scenario("report", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("report", str(tmp / "none.db"))


@scenario("report", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["report", str(_journal(tmp))])


def _serve_then_interrupt(args: list[str], ready: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen([sys.executable, "-m", "hpgfast", *args], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while ready not in seen and proc.poll() is None and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, seen + err)


def _in_use() -> tuple[socket.socket, str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, str(s.getsockname()[1])


@scenario("receive", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return _serve_then_interrupt(["receive", "--port", "0"], "listening")


@scenario("receive", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    s, port = _in_use()
    with s:
        return hpgfast_run("receive", "--port", port)


@scenario("receive", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["receive", "--port", "0"])


@scenario("emulate", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return _serve_then_interrupt(["emulate", "--port", "0"], "Ctrl-C stops")


@scenario("emulate", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    s, port = _in_use()
    with s:
        return hpgfast_run("emulate", "--port", port)


@scenario("emulate", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["emulate", "--port", "0"])


DEMO = ["demo", "-n", "500", "--speed", "2000", "--quiet"]


@scenario("demo", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run(*DEMO, "--no-journal")


@scenario("demo", ExitCode.INCOMPLETE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    # A journal of an earlier demo in which some messages' outcome is unknown: they
    # are not sent again, so not every message ends as the rules say.
    db = tmp / "demo.db"
    first = hpgfast_run(*DEMO, "--journal", str(db))
    assert first.returncode == 0, first.stderr
    conn = sqlite3.connect(db)
    with conn:  # commits; the close below is the connection's own
        conn.execute("UPDATE outcomes SET state = 'unknown', code = 'unknown' "
                     "WHERE line <= 3")
    conn.close()
    return hpgfast_run(*DEMO, "--journal", str(db))


@scenario("demo", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("demo", "-n", "0")


@scenario("demo", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(DEMO)


@scenario("bench", ExitCode.OK)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    # The claims are the compiled core's: a pure install is under them by design (the
    # scenario below), so only a build with the core can meet them.
    import hpgfast.codec

    if hpgfast.codec.IMPLEMENTATION != "compiled":
        pytest.skip("hpgfast bench's claims need the compiled core; this is a pure run")
    return hpgfast_run("bench", "--budget", "0.2", "--quiet")


@scenario("bench", ExitCode.INCOMPLETE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    # The pure twin measured against itself: the compiled-path claims fail.
    return hpgfast_run("bench", "--budget", "0.05", "--quiet",
                       env=_env(HPGFAST_PURE_PYTHON="1"))


@scenario("bench", ExitCode.USAGE)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return hpgfast_run("bench", "--budget", "soon")


@scenario("bench", ExitCode.INTERRUPTED)
def _(tmp: Path) -> subprocess.CompletedProcess[str]:
    return interrupted_at_start(["bench", "--budget", "0.05", "--quiet"])


# -- a postgresql:// journal: unreachable (7), refusing its user (3) -------------------


def _unreachable_journal() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://hpgfast:s3cret@127.0.0.1:{port}/journal"


_PG_SERVER: list[Any] = []


def _refused_journal() -> str:
    """A URL a real server refuses (a wrong password): one server for the module."""
    from pg_server import PostgresServer, unavailable

    if not _PG_SERVER:
        why = unavailable()
        if why is not None:
            if os.environ.get("HPGFAST_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL is required here: {why}")
            pytest.skip(f"no PostgreSQL: {why}")
        import atexit

        server = PostgresServer().start()
        atexit.register(server.close)
        _PG_SERVER.append(server)
    return str(_PG_SERVER[0].url("postgres", password="wr0ng"))


def _journal_commands(tmp: Path, journal: str) -> dict[str, list[str]]:
    return {
        "send": ["send", "--url", "http://127.0.0.1:9/CLIENT/connector/", "--file",
                 str(_csv(tmp / "m.csv", ["79031111111"])), "--journal", journal],
        "status": ["status", "--url", "http://127.0.0.1:9/CLIENT/connector/", "--journal",
                   journal],
        "report": ["report", journal],
        "receive": ["receive", "--port", "0", "--journal", journal],
        "demo": [*DEMO, "--journal", journal],
    }


def _journal_scenario(command: str, code: ExitCode) -> None:
    def run(tmp: Path) -> subprocess.CompletedProcess[str]:
        journal = (_unreachable_journal() if code == ExitCode.JOURNAL_UNAVAILABLE
                   else _refused_journal())
        done = hpgfast_run(*_journal_commands(tmp, journal)[command])
        # One line, naming the journal with its password masked.
        assert "postgresql://hpgfast:***@127.0.0.1:" in done.stderr, done.stderr
        assert "s3cret" not in done.stderr and "wr0ng" not in done.stderr, done.stderr
        return done

    SCENARIOS[(command, code)] = run


for _command in ("send", "status", "report", "receive", "demo"):
    _journal_scenario(_command, ExitCode.JOURNAL_UNAVAILABLE)
for _command in ("report", "receive", "demo"):
    _journal_scenario(_command, ExitCode.AUTH)


PAIRS = [(command, code) for command, codes in COMMAND_CODES.items() for code in codes]


@pytest.mark.parametrize(("command", "code"), PAIRS, ids=[f"{c}-{int(k)}" for c, k in PAIRS])
def test_every_listed_code_is_produced(command: str, code: ExitCode, tmp_path: Path) -> None:
    run = SCENARIOS.get((command, code))
    assert run is not None, f"no scenario for {command} exiting {int(code)}"
    result = run(tmp_path)
    detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if code == ExitCode.INTERRUPTED and result.returncode == -signal.SIGINT:
        # docs/cli.md: an interrupt that lands while Python runs code it compiled
        # from a string ends the process by SIGINT after hpgfast answered it (130
        # to a shell all the same).
        assert "hpgfast: interrupted" in result.stderr, detail
    else:
        assert result.returncode == code, detail
    assert "Traceback" not in result.stderr, detail
    if code == ExitCode.INTERRUPTED:
        assert "hpgfast: interrupted" in result.stderr, detail


def test_every_scenario_is_for_a_listed_code() -> None:
    # A scenario for a pair the table does not list means the help leaves out a code.
    assert set(SCENARIOS) == set(PAIRS)


# -- the texts made from the table -----------------------------------------------------


def _codes_in_help(command: str) -> list[int]:
    text = hpgfast_run(command, "--help").stdout
    section = text.split("exit codes:", 1)[1].split("\n\n", 1)[0]
    return [int(line.split()[0]) for line in section.splitlines()
            if line.startswith("  ") and line.split() and line.split()[0].isdigit()]


@pytest.mark.parametrize("command", list(COMMAND_CODES))
def test_each_help_lists_exactly_its_codes(command: str) -> None:
    assert _codes_in_help(command) == [int(c) for c in COMMAND_CODES[command]]
    assert exit_codes_help(command) in hpgfast_run(command, "--help").stdout


def test_the_docstring_and_the_docs_hold_the_table() -> None:
    doc = hpgfast.cli.__doc__ or ""
    for code in ExitCode:
        assert f"\n{int(code):<3}  " in doc, code
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert markdown_tables() in page, "docs/cli.md: regenerate the exit code tables"
    overview = hpgfast_run("--help").stdout
    assert [int(c) for c in ExitCode] == [
        int(line.split()[0]) for line in overview.split("exit codes:", 1)[1].splitlines()
        if line.startswith("  ") and line.split()[0].isdigit()
    ]


# -- the same reply, the same code, whatever way the message came -------------------


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _redirector() -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/CLIENT/connectorX/"


REPLIES: dict[str, dict[str, Any]] = {
    "http-500": {"http_500": 1.0},
    "http-503": {"http_503": 1.0},
    "unreadable": {"raw_reply": Fault(rate=1.0, body=b"<html>maintenance</html>\n")},
    "unmatched": {"raw_reply": Fault(rate=1.0, body=b"ok;nothing-sent;1\n<html>x</html>\n")},
    "cut": {"cut_reply": 1.0},
    "redirect": {},
}
#: Replies that are not HPG stop the run as a configuration error (the URL is not
#: the platform's); the others leave the message unknown: a transport failure.
NOT_HPG = ("unreadable", "redirect")


@pytest.mark.parametrize("reply", list(REPLIES))
@pytest.mark.parametrize("journal", [False, True], ids=["plain", "journal"])
def test_to_and_file_exit_alike(reply: str, journal: bool, tmp_path: Path) -> None:
    path = _csv(tmp_path / "m.csv", ["79031111111"])
    codes = {}
    for how in ("to", "file"):
        if reply == "redirect":
            server, url = _redirector()
        else:
            server, emu = None, _faulty(**REPLIES[reply])
            url = emu.__enter__().url
        try:
            extra = ["--journal", str(tmp_path / f"{how}.db")] if journal else []
            if how == "to":
                result = _send_one(url, *extra)
            else:
                result = hpgfast_run("send", "--url", url, "--file", str(path), *extra)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            else:
                emu.__exit__(None, None, None)
        assert "Traceback" not in result.stderr, result.stderr
        codes[how] = result.returncode
    expected = ExitCode.USAGE if reply in NOT_HPG else ExitCode.TRANSPORT
    assert codes == {"to": expected, "file": expected}


# -- an account-stop code on a line of its own id: status exits as send does ----------

ACCOUNT_LINES = {
    "error-auth": ExitCode.AUTH,
    "error-insufficient-balance": ExitCode.ACCOUNT,
    "error-account-locked": ExitCode.ACCOUNT,
    "error-system-blocked": ExitCode.ACCOUNT,
}


@pytest.mark.parametrize("code", list(ACCOUNT_LINES))
def test_status_exits_as_send_for_an_account_stop_on_an_id_line(code: str,
                                                                 tmp_path: Path) -> None:
    expected = ACCOUNT_LINES[code]
    db = tmp_path / "run.db"
    ids = tmp_path / "ids.txt"
    with Emulator(speed=None) as emu:  # a manual clock: no status becomes final
        sent = hpgfast_run("send", "--url", emu.url, "--to", "79031111111", "--text", "hi",
                           "--journal", str(db))
        assert sent.returncode == ExitCode.OK, sent.stderr
        conn = sqlite3.connect(db)
        (provider_id,) = conn.execute(
            "SELECT provider_id FROM outcomes WHERE provider_id IS NOT NULL").fetchone()
        conn.close()
        ids.write_text(f"{provider_id}\n", encoding="utf-8")
        # Every reply from now on: one line, for the one id asked about.
        emu.faults.raw_reply = Fault(rate=1.0, body=f"{code};{provider_id}\n".encode())
        status_forms = {
            "ids": ["status", provider_id],
            "ids --follow": ["status", provider_id, "--follow", "--deadline", "5"],
            "--file": ["status", "--file", str(ids)],
            "--journal": ["status", "--journal", str(db)],
            "--journal --follow": ["status", "--journal", str(db), "--follow",
                                   "--deadline", "5"],
        }
        codes = {}
        for form, args in status_forms.items():
            result = hpgfast_run(*args[:1], "--url", emu.url, *args[1:])
            assert "Traceback" not in result.stderr, result.stderr
            codes[form] = result.returncode
        emu.faults.raw_reply = Fault(rate=1.0, body=f"{code};X1\n".encode())
        send = _send_one(emu.url, "--client-id", "X1")
    assert send.returncode == expected, send.stderr
    assert codes == dict.fromkeys(status_forms, expected)


# -- interrupts in the first moments of the command -----------------------------------


def _start_up_args(command: str, tmp: Path) -> list[str]:
    return {
        "send": ["send", "--url", "http://127.0.0.1:9/C/connectorX/", "--to", "79031111111",
                 "--text", "hi"],
        "status": ["status", "--url", "http://127.0.0.1:9/C/connectorX/", "1"],
        "report": ["report", str(tmp / "none.db")],
        "receive": ["receive", "--port", "0"],
        "emulate": ["emulate", "--port", "0"],
        "demo": DEMO,
        "bench": ["bench", "--budget", "0.05", "--quiet"],
    }[command]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("command", list(COMMAND_CODES))
def test_sigterm_at_start_up_is_an_interrupt(command: str, entry: str, tmp_path: Path) -> None:
    # SIGTERM while main is still importing the commands, before any command runs.
    result = interrupted_at_start(_start_up_args(command, tmp_path), signum=signal.SIGTERM,
                                  entry=entry)
    detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == ExitCode.INTERRUPTED, detail
    assert "hpgfast: interrupted" in result.stderr, detail
    assert "Traceback" not in result.stderr, detail


#: A ``sitecustomize`` whose import hook raises KeyboardInterrupt from inside a string
#: ``exec`` when ``hpgfast.cli`` is imported: where a SIGTERM lands when it comes while
#: an import makes a namedtuple or a dataclass (both are made by a string eval).
_INTERRUPT_IN_A_STRING_EVAL = """
import sys

class _Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == "hpgfast.cli":
            sys.meta_path.remove(self)
            exec("raise KeyboardInterrupt", {})
        return None

sys.meta_path.insert(0, _Interrupting())
"""


def test_an_interrupt_that_ends_a_string_eval_still_exits_130(tmp_path: Path) -> None:
    # CPython marks a KeyboardInterrupt that ends a string exec/eval as unhandled even
    # when it is caught; ``python -m`` would then die by SIGINT (-2), not exit 130.
    (tmp_path / "sitecustomize.py").write_text(_INTERRUPT_IN_A_STRING_EVAL)
    env = {**_env(), "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([*ENTRY_POINTS["python -m"], "report", str(tmp_path / "x.db")],
                            env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == ExitCode.INTERRUPTED, result.stderr
    assert result.stderr == "hpgfast: interrupted\n"


def _first_signs(pid: int) -> bool:
    # ``_datetime`` is mapped while the hpgfast package is imported: the interpreter's
    # own start-up is over, the hpgfast command is about to start.
    return "_datetime" in _maps(pid)


def test_a_server_stops_on_a_signal_whose_interrupt_was_lost() -> None:
    # A Ctrl-C during start-up whose KeyboardInterrupt was raised where Python only
    # reports it (a finalizer): the handler recorded it, and the server does not
    # start waiting for another one.
    import hpgfast.cli as cli
    from hpgfast.cli._common import wait_for_signal

    announced: list[bool] = []
    cli._SIGNALLED.append(signal.SIGINT)
    try:
        wait_for_signal(lambda: announced.append(True))  # returns at once
    finally:
        cli._SIGNALLED.clear()
    assert announced == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_lost_in_a_finalizer_is_answered_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Python only reports a KeyboardInterrupt raised in a finalizer (a weakref
    # callback of the import machinery, during start-up): the signal is recorded,
    # the command does not start, and no "Exception ignored" traceback is printed.
    import hpgfast.cli as cli

    class Finalized:
        def __del__(self) -> None:
            cli._sigterm(signal.SIGINT, None)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    saved = sys.unraisablehook
    sys.unraisablehook = cli._quiet_lost_interrupts(saved)
    try:
        thing = Finalized()
        del thing  # the handler's KeyboardInterrupt goes to the unraisable hook
        assert cli.signalled()
        with pytest.raises(KeyboardInterrupt):
            cli._dispatch(cli.build_parser().parse_args(["report", "none.db"]))
    finally:
        sys.unraisablehook = saved
        cli._SIGNALLED.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_an_early_interrupt_is_answered_from_hpgfast_s_first_line(
    entry: str, signum: int, tmp_path: Path
) -> None:
    """The signal swept over the first 150 ms after the hpgfast package starts loading.

    Each run either ends as docs/cli.md says of the moments before hpgfast starts
    (the signal came while the interpreter was still importing the ``hpgfast``
    package: Python's own ending) or exits 130 with "hpgfast: interrupted" (0 once
    the server serves): never a traceback through hpgfast's entry points
    (``__main__``, ``main``).
    """
    # A server: still starting up or serving (never done) when the signal comes.
    args = [*ENTRY_POINTS[entry], "receive", "--port", "0"]
    answered = 0
    outcomes = []
    for delay in [i * 0.005 for i in range(31)]:
        proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while proc.poll() is None and not _first_signs(proc.pid) \
                and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(delay)
        proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=LOST_SIGNAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()  # no server left behind, no open pipes for a later test
            proc.communicate()
            raise AssertionError(f"{args} still ran after {signum!r} at {delay} s") from None
        outcomes.append((delay, proc.returncode, err[-300:]))
        if proc.returncode == ExitCode.OK and "Traceback" not in err:
            continue  # serving already: the signal stopped it
        # -SIGINT: Python 3.11 ends a process by SIGINT (130 to a shell) when an
        # interrupt landed inside an exec() of a string (a dataclass or named tuple
        # being made), even one caught and answered (docs/cli.md).
        if proc.returncode in (ExitCode.INTERRUPTED, -signal.SIGINT) \
                and "hpgfast: interrupted" in err:
            assert "Traceback" not in err, err
            answered += 1
            continue
        # Before hpgfast's first line: the interpreter ends as Python does.
        assert proc.returncode in (1, -signum), outcomes
        assert "hpgfast/__main__.py" not in err and ", in main" not in err, outcomes
    assert answered, outcomes


# A command's 2 names only causes that command can meet: a server never sends, so an
# HTTP 4xx from the URL or a reply that is not HPG cannot stop it.
SEND_ONLY = ("HTTP 4xx", "not HPG", "proxy", "the rest is not sent")


@pytest.mark.parametrize("command", [c for c in COMMAND_CODES if c not in ("send", "status")])
def test_a_command_s_usage_code_names_only_its_own_causes(command: str) -> None:
    words = exit_codes_help(command)
    for cause in SEND_ONLY:
        assert cause not in words, (command, cause)
    if command == "emulate":
        assert "journal" not in words
