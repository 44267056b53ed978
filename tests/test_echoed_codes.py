"""A platform that echoes the password where a code or a status stands.

The reader takes a code (and a STATUS line's status) of the characters codes are
made of, whatever it says: a platform (or something posing as one) that answers
``<password>;c1;1001`` or ``error-<password>`` would put the password in the
results' ``code``, hence in every record's repr, in ``CompactResults``' repr and
``counts()``, in the exception a code-only line makes, and in the command line's
output and ``--results`` file. Such a code or status is masked the way the core
masks free text; the codes and statuses the platform is known to send are never
rewritten (a short password such as ``ok`` would otherwise rewrite the very word
an outcome is read from: tests/test_client_secrets.py holds that promise).

Over real HTTP (the emulator's ``raw_reply``), with both clients (the ``transport``
fixture), list and compact results.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import traceback
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from hpgfast import Client, CompactResults, HPGError, Message, results_of
from hpgfast.emulator import Emulator, Fault

pytestmark = pytest.mark.usefixtures("transport")

CORE = uuid.uuid4().hex[:12]
#: Passwords a code can hold: of the characters codes are made of, and one with a
#: space, which a code holds as ``_`` (the Q encoding of mail headers).
PASSWORDS = [f"Zq{CORE}.pw", f"Zq {CORE}-x"]


def forms(password: str) -> list[str]:
    """Every form of ``password`` searched for: plain, ``_`` or ``+`` for a space,
    percent-encoded (upper and lower hex), and its unique core alone."""
    quoted = quote(password, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)
    return [password, password.replace(" ", "_"), quoted, lower, quote_plus(password), CORE]


def leaks(password: str, texts: list[str]) -> list[str]:
    return [text for text in texts if any(form in text for form in forms(password))]


def shown(results: Any, error: BaseException | None = None) -> list[str]:
    """What a program may show of ``results`` (and of ``error``)."""
    texts = [repr(results), str(results), repr(list(results)), str(list(results))]
    if isinstance(results, CompactResults):
        texts += [repr(results.counts()), str(results.counts())]
    for record in results:
        texts += [repr(record), str(record), *map(str, record)]
        failure = getattr(record, "error", None)
        if failure is not None:
            texts += [repr(failure), str(failure), repr(vars(failure))]
    if error is not None:
        texts += [repr(error), str(error), repr(error.args), "".join(traceback.format_exception(
            type(error), error, error.__traceback__))]
    return texts


def client(emu: Emulator, password: str, **kw: Any) -> Client:
    return Client(emu.url, emu.login, password, default_subject="S", retries=0, **kw)


MESSAGES = [Message(f"7903123456{k}", f"text {k}", client_id=f"c{k}") for k in range(1, 5)]


def send_body(word: str) -> bytes:
    # The password as a code, in the middle of an error code, in the middle of a
    # code of no known form, beside a usual line.
    return (
        f"{word};c1;1001\nerror-{word};c2;\nx{word}x;c3;;\nok;c4;1004\n"
    ).encode()


@pytest.mark.parametrize("compact", [False, True], ids=["list", "compact"])
@pytest.mark.parametrize("password", PASSWORDS, ids=["plain", "space"])
def test_a_code_that_holds_the_password_is_masked(password: str, compact: bool) -> None:
    word = password.replace(" ", "_")
    with Emulator(password=password, speed=None) as emu, client(emu, password) as c:
        emu.faults.raw_reply = Fault(rate=1.0, body=send_body(word))
        results = c.send(MESSAGES, compact=compact)
        assert isinstance(results, CompactResults) is compact
        # A code-only line: the platform's answer for the whole request.
        emu.faults.raw_reply = Fault(rate=1.0, body=f"error-{word}\n".encode())
        whole = c.send(MESSAGES[:2], compact=compact)
    assert [r.code for r in results] == ["***", "error-***", "x***x", "ok"]
    assert [r.client_id for r in results] == ["c1", "c2", "c3", "c4"]
    assert [r.provider_id for r in results] == ["1001", None, None, "1004"]
    assert [r.code for r in whole] == ["unknown", "unknown"]
    assert whole[0].error.code == "error-***"  # type: ignore[attr-defined]
    if compact:
        assert results.counts() == {"***": 1, "error-***": 1, "x***x": 1, "ok": 1}
        assert repr(results) == (
            "<hpgfast.CompactResults of 4 (***: 1, error-***: 1, ok: 1, x***x: 1)>"
        )
    assert not leaks(password, shown(results) + shown(whole))


@pytest.mark.parametrize("password", PASSWORDS, ids=["plain", "space"])
def test_a_status_or_code_that_holds_the_password_is_masked(password: str) -> None:
    word = password.replace(" ", "_")
    body = (
        f"{word};p1;delivered;;\nok;p2;{word};;\nok;p3;x{word};;\n"
        "ok;p4;delivered;2024.01.02 03:04:05;\n"
    ).encode()
    with Emulator(password=password, speed=None) as emu, client(emu, password) as c:
        emu.faults.raw_reply = Fault(rate=1.0, body=body)
        results = c.status(["p1", "p2", "p3", "p4"])
        # Every line plain (each code ok, no free text): the usual reply's way.
        emu.faults.raw_reply = Fault(rate=1.0, body=f"ok;p1;{word};;\n".encode())
        plain = c.status(["p1"])
        emu.faults.raw_reply = Fault(rate=1.0, body=f"error-{word}\n".encode())
        whole = c.status(["p1", "p2"])
    assert [(r.code, r.provider_id, r.status) for r in results] == [
        ("***", "p1", "delivered"), ("ok", "p2", "***"), ("ok", "p3", "x***"),
        ("ok", "p4", "delivered"),
    ]
    assert [(r.code, r.status) for r in plain] == [("ok", "***")]
    assert not c.is_final(plain[0])
    assert [r.code for r in whole] == ["unknown", "unknown"]
    assert not leaks(password, shown(results) + shown(plain) + shown(whole))


def test_an_account_stop_and_known_codes_are_kept() -> None:
    # Codes and statuses the platform is known to send are never rewritten, even
    # when the password is one of them (or stands in them).
    body = b"ok;c1;1001\nerror-address-format;c2;\nerror-system;c3;\nerror-ok;c4;\n"
    with Emulator(password="ok", speed=None) as emu, client(emu, "ok") as c:
        emu.faults.raw_reply = Fault(rate=1.0, body=body)
        results = c.send(MESSAGES, compact=True)
        emu.faults.raw_reply = Fault(rate=1.0, body=b"ok;c1;1001\nerror-insufficient-balance;c2;\n")
        with pytest.raises(HPGError) as stop:
            c.send(MESSAGES[:2])
    assert [r.code for r in results] == ["ok", "error-address-format", "error-system", "error-***"]
    assert [r.code for r in results_of(stop.value)] == ["ok", "error-insufficient-balance"]


@pytest.mark.sync_only  # the command line runs the blocking client
def test_the_command_line_shows_no_echoed_code(tmp_path: Any) -> None:
    password = PASSWORDS[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": password, "TMPDIR": str(tmp_path),
    }
    messages = tmp_path / "messages.csv"
    messages.write_text("address,text,client_id\n79031234561,a,m1\n79031234562,b,m2\n")
    results = tmp_path / "results.csv"
    with Emulator(password=password, speed=None) as emu:
        emu.faults.raw_reply = Fault(
            rate=1.0, body=f"error-{password};m1;\n{password};m2;1001\n".encode()
        )
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", emu.login,
             "--file", str(messages), "--subject", "S",
             "--results", str(results), "-v"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert emu.requests["send"] == 1
    written = results.read_text()
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["code"] for r in rows] == ["error-***", "***"], (written, done.stderr)
    assert not leaks(password, [done.stdout, done.stderr, written]), (done.stdout, done.stderr)


#: A password a code cannot hold as it is: an echo of it in a code's place is in a
#: query's form (percent-encoded, either hex case, ``+`` for a space).
QUERY_PASSWORD = f"P@ss w0rd/{CORE}"


@pytest.mark.parametrize(
    "word",
    [
        quote(QUERY_PASSWORD, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(QUERY_PASSWORD, safe="")),
        quote_plus(QUERY_PASSWORD),
        QUERY_PASSWORD,
    ],
    ids=["upper-hex", "lower-hex", "plus", "plain"],
)
@pytest.mark.parametrize("compact", [False, True], ids=["list", "compact"])
def test_a_code_in_a_query_s_form_of_the_password_shows_nowhere(word: str, compact: bool) -> None:
    # Not a code (a code is letters, digits, "-", "_", "."): the line is unreadable,
    # its message's outcome unknown, and the line is quoted masked.
    password = QUERY_PASSWORD
    with Emulator(password=password, speed=None) as emu, client(emu, password) as c:
        emu.faults.raw_reply = Fault(rate=1.0, body=send_body(word))
        results = c.send(MESSAGES, compact=compact)
    assert [r.code for r in results] == ["unknown", "unknown", "unknown", "ok"]
    assert not leaks(password, shown(results))
