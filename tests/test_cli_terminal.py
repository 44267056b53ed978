"""Text from outside never drives the terminal: ``receive``, ``status`` and ``report``.

A push, a platform's reply and a journal (fed by both) carry control sequences,
bidi overrides and line separators; human output shows them escaped, JSON and CSV
output keep them exact, except CSV written to a terminal (a real pseudo-terminal
here), which is read by a person and shown escaped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hpgfast import Message, SendResult, StatusResult
from hpgfast._term import escape, json_safe
from hpgfast.cli import main
from hpgfast.journal import Journal
from hpgfast.receiver import push

#: Clear the screen, retitle the window (OSC ... BEL), a C1 NEL, a line separator, a
#: right-to-left override, DEL.
HOSTILE = "\x1b[2J\x1b]0 owned\x07\x85\u2028\u202eexe.txt\x7f"
SHOWN = "\\x1b[2J\\x1b]0 owned\\x07\\x85\\u2028\\u202eexe.txt\\x7f"
RAW = set("\x1b\x07\x85\u2028\u202e\x7f")
SECRET = "term-s3cret"


def _clean(text: str) -> bool:
    return not set(text) & RAW


def test_escape_and_json_safe() -> None:
    assert escape(HOSTILE) == SHOWN
    assert escape("Привет 👋 a\\b") == "Привет 👋 a\\b"  # only what a terminal acts on
    assert escape("a\tb\nc\rd\x00\x9b\u061c\u200e\u200f\u2029\u2066\u2069") == (
        "a\\x09b\\x0ac\\x0dd\\x00\\x9b\\u061c\\u200e\\u200f\\u2029\\u2066\\u2069"
    )
    dumped = json.dumps({"r": HOSTILE}, ensure_ascii=False)
    assert _clean(json_safe(dumped)) and json.loads(json_safe(dumped)) == {"r": HOSTILE}


# -- receive -------------------------------------------------------------------------


def _receive(*args: str) -> str:
    """Run ``hpgfast receive``, push one hostile report to it, stop it; its stdout."""
    env = dict(os.environ, HPGFAST_RECEIVER_SECRET=SECRET, PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "receive", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"listening at (\S+);", proc.stderr.readline())
        assert match is not None
        report = ("ok", "10\x1b[2J01", "delivered", None, HOSTILE)
        assert push(match.group(1), [report], secret=SECRET, shape="json") == (200, "ok")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return out


def test_receive_prints_pushed_text_escaped() -> None:
    out = _receive()
    assert _clean(out)
    assert out == f"10\\x1b[2J01;ok;delivered;;{SHOWN}\n"


def test_receive_json_lines_stay_exact() -> None:
    out = _receive("--json")
    assert _clean(out)  # JSON escapes, the same value
    assert json.loads(out) == {"provider_id": "10\x1b[2J01", "code": "ok",
                               "status": "delivered", "time": None, "reason": HOSTILE}


# -- status --------------------------------------------------------------------------


@pytest.fixture
def hostile_platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A platform on loopback whose STATUS replies carry hostile reasons."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"ok;1001;undelivered;2026.11.28 10:00:00;{HOSTILE}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/CLIENT/connectorX/"
    monkeypatch.setenv("HPGFAST_URL", url)
    monkeypatch.setenv("HPGFAST_LOGIN", "CLIENT")
    monkeypatch.setenv("HPGFAST_PASSWORD", "P@ssw0rd")
    for name in ("HPGFAST_PASSWORD_FILE", "HPGFAST_SUBJECT", "HPGFAST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield url
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_status_table_shows_reply_text_escaped(
    hostile_platform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "1001"]) == 0
    out = capsys.readouterr().out
    assert _clean(out)
    assert SHOWN in out and "undelivered" in out


def test_status_json_stays_exact(
    hostile_platform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "1001", "--json"]) == 0
    out = capsys.readouterr().out
    assert _clean(out)
    assert json.loads(out)[0]["reason"] == HOSTILE


# -- report --------------------------------------------------------------------------


@pytest.fixture
def hostile_journal(tmp_path: Path) -> Path:
    path = tmp_path / "run\x1b[31m.db"
    with Journal(path) as journal:
        journal.bind({"x": "1"})
        journal.load([(1, Message("79000000001", f"text {HOSTILE}", "S")),
                      (2, Message("79000000002", "hi", "S"))])
        journal.finish_load(2)
        journal.mark_in_flight([1, 2])
        journal.record_results([1, 2], [SendResult("ok", "0", "1001"),
                                        SendResult(f"error-{HOSTILE}", "1", None)])
        journal.record_statuses([StatusResult("ok", "1001", f"gone{HOSTILE}", None, HOSTILE)],
                                source="push")
    return path


def test_report_table_shows_journal_text_escaped(
    hostile_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(hostile_journal)]) == 0
    out = capsys.readouterr().out
    assert _clean(out)
    assert f"error-{SHOWN}" in out and f"gone{SHOWN}" in out and "run\\x1b[31m.db" in out


def test_report_csv_and_json_stay_exact(
    hostile_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(hostile_journal), "--csv", "-"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert rows[0]["text"] == f"text {HOSTILE}" and rows[0]["reason"] == HOSTILE
    assert rows[1]["code"] == f"error-{HOSTILE}"
    assert main(["report", str(hostile_journal), "--json"]) == 0
    out = capsys.readouterr().out
    assert _clean(out)
    summary = json.loads(out)
    assert summary["rejected_by_code"] == {f"error-{HOSTILE}": 1}
    assert summary["statuses"] == {f"gone{HOSTILE}": 1}


def _on_terminal(*args: str, cwd: Path) -> str:
    """Run ``python -m hpgfast ARGS`` with a pseudo-terminal for stdin, stdout and
    stderr, as a user at a terminal does; everything it wrote there."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "hpgfast", *args], cwd=cwd, env=env,
                                stdin=slave, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        assert proc.wait(timeout=60) == 0, b"".join(chunks)
    # The terminal writes LF as CR LF (onlcr): what the user sees, line by line.
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def test_report_csv_on_a_terminal_shows_journal_text_escaped(hostile_journal: Path) -> None:
    out = _on_terminal("report", hostile_journal.name, "--csv", "-", cwd=hostile_journal.parent)
    assert _clean(out)
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(rows) == 2
    assert rows[0]["text"] == f"text {SHOWN}" and rows[0]["reason"] == SHOWN
    assert rows[0]["status"] == f"gone{SHOWN}" and rows[1]["code"] == f"error-{SHOWN}"
    assert rows[0]["address"] == "79000000001" and rows[1]["state"] == "rejected"


def test_report_csv_to_a_file_keeps_exact_bytes_beside_a_terminal(
    hostile_journal: Path,
) -> None:
    target = hostile_journal.parent / "rows.csv"
    out = _on_terminal("report", hostile_journal.name, "--csv", target.name,
                       cwd=hostile_journal.parent)
    assert _clean(out)  # the summary printed on the terminal
    with open(target, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["text"] == f"text {HOSTILE}" and rows[0]["reason"] == HOSTILE
    assert rows[0]["status"] == f"gone{HOSTILE}" and rows[1]["code"] == f"error-{HOSTILE}"
