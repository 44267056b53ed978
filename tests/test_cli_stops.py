"""``hpgfast send --to`` and ``hpgfast status IDS`` on a reply that stops the batch.

Every batch-stopping error (an account stop, a reply that is not HPG, a platform
that is down) shows the same thing: the table of what is known, then the error,
with the error's exit code. The real CLI, as a process, against the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from hpgfast.cli._exit import ExitCode
from hpgfast.emulator import Emulator, Fault

PASSWORD = "P@ssw0rd"
LOGIN_PAGE = b"<html><head><title>Sign in</title></head><body>Sign in</body></html>\n"

STOPS: dict[str, tuple[dict[str, Any], ExitCode, str]] = {
    "account": ({"account_state": "error-account-locked"}, ExitCode.ACCOUNT,
                "the account cannot send (error-account-locked)"),
    "redirect": ({"faults": {"raw_reply": Fault(
        rate=1.0, status=302, headers={"Location": "https://portal.example/"})}},
        ExitCode.USAGE, "a redirect is never followed"),
    "login-page": ({"faults": {"raw_reply": Fault(
        rate=1.0, headers={"Content-Type": "text/html"}, body=LOGIN_PAGE)}},
        ExitCode.USAGE, "not an HPG reply"),
}


def hpgfast(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env.update({"HPGFAST_LOGIN": "CLIENT", "HPGFAST_PASSWORD": PASSWORD,
                "HPGFAST_SUBJECT": "ACME", "HPGFAST_TIMEOUT": "5"})
    return subprocess.run([sys.executable, "-m", "hpgfast", *args, "--url", url],
                          capture_output=True, text=True, timeout=120, env=env)


def table_then_error(out: str, header: str, row: str, error: str) -> None:
    assert header in out, out
    lines = out.splitlines()
    at_header = next(i for i, line in enumerate(lines) if header in line)
    at_row = next(i for i, line in enumerate(lines) if line.strip().startswith(row))
    at_error = next(i for i, line in enumerate(lines) if line.startswith("stopped early: "))
    assert at_header < at_row < at_error, out
    assert error in lines[at_error], out


@pytest.mark.parametrize("stop", list(STOPS))
def test_send_to_shows_the_table_then_the_error(stop: str) -> None:
    settings, code, error = STOPS[stop]
    with Emulator(speed=None, **settings) as emu:
        done = hpgfast(emu.url, "send", "--to", "79031111111", "--text", "hi")
        assert emu.requests["send"] == 1  # never repeated
        assert len(emu.ledger) == 0
    assert done.returncode == code, done.stdout + done.stderr
    expected = "not-sent" if stop == "account" else "unknown"
    table_then_error(done.stdout, "code", expected, error)
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("stop", list(STOPS))
def test_send_to_json_carries_the_error(stop: str) -> None:
    settings, code, error = STOPS[stop]
    with Emulator(speed=None, **settings) as emu:
        done = hpgfast(emu.url, "send", "--to", "79031111111", "--text", "hi", "--json")
    assert done.returncode == code, done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert shown["code"] == ("not-sent" if stop == "account" else "unknown")
    assert error in shown["error"]
    assert PASSWORD not in done.stdout + done.stderr


STATUS_STOPS = {
    **STOPS,
    "503s": ({"faults": {"http_503": Fault(rate=1.0)}}, ExitCode.TRANSPORT,
             "5xx 3 times in a row"),
}


@pytest.mark.parametrize("stop", list(STATUS_STOPS))
def test_status_shows_the_table_then_the_error(stop: str) -> None:
    settings, code, error = STATUS_STOPS[stop]
    with Emulator(speed=None, **settings) as emu:
        done = hpgfast(emu.url, "status", "1001", "1002", "--max-batch", "1")
        assert emu.requests["status"] == (3 if stop == "503s" else 1)
    assert done.returncode == code, done.stdout + done.stderr
    expected = "unknown" if stop in ("redirect", "login-page", "503s") else "not-sent"
    table_then_error(done.stdout, "provider id", "1001", error)
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("100")]
    assert [row[:2] for row in rows] == [["1001", expected], ["1002", "not-sent"]], done.stdout
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("stop", ["redirect", "503s"])
def test_status_json_lists_what_is_known_and_says_the_error(stop: str) -> None:
    settings, code, error = STATUS_STOPS[stop]
    with Emulator(speed=None, **settings) as emu:
        done = hpgfast(emu.url, "status", "1001", "1002", "--max-batch", "1", "--json")
    assert done.returncode == code, done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert [r["code"] for r in shown] == ["unknown", "not-sent"]
    assert error in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
