"""The password echoed in an encoding a platform or a gateway chose shows nowhere.

JSON-escaped (``\\"``, ``\\\\``, ``\\t``, ``\\uXXXX``, with ``ensure_ascii`` or not), as
UTF-8 read as windows-1252 (the five bytes it leaves undefined as U+FFFD or as
control characters), in the bytes of an 8-bit charset (windows-1251 declared or
not, Latin-1), in ``.raw`` too; and a password that cannot be encoded (a lone
surrogate) is refused by an error that does not show it.

Each over real HTTP (a small server on loopback that echoes the password in the
case's form, in a 500 body, a SEND line's description and a STATUS reason) and
over both clients (see conftest.transport).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest

from echo_server import server
from hpgfast import Client, HPGError, Message

pytestmark = pytest.mark.usefixtures("transport")

#: The unique, ASCII part of every password here: every form these tests echo keeps
#: it as it is, so a text that holds it shows (part of) the password.
CORE = uuid.uuid4().hex[:16]
MESSAGES = [
    Message("79031234567", "a", client_id="c1"),
    Message("79031234568", "b", client_id="c2"),
]
PROVIDER_IDS = ["p1", "p2"]
WHERE = ["500", "send", "status"]

#: ``echo(password) -> bytes`` (the password as the server writes it), the body's
#: Content-Type.
Echo = Callable[[str], bytes]


def http(status: str, body: bytes, content_type: str) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii") + body


def reply_for(where: str, echo: bytes, content_type: str) -> Callable[[bytes], bytes]:
    """A reply holding ``echo``: a 500's body, or each line's free text of a 200."""

    def reply(line: bytes) -> bytes:
        target = line.split(b" ")[1].decode("ascii")
        query = dict(parse_qsl(target.partition("?")[2]))
        if where == "500":
            return http("500 Internal Server Error", b'{"error":"denied","p":"' + echo + b'"}',
                        content_type)
        if where == "send":
            ids = [v for k, v in query.items() if k.startswith("clientId[")]
            body = b"".join(b"error-address-format;%s;;bad %s\n" % (i.encode(), echo) for i in ids)
        else:
            ids = [v for k, v in query.items() if k.startswith("providerId[")]
            body = b"".join(
                b"ok;%s;undelivered;2024.01.01 00:00:00;bad %s\n" % (i.encode(), echo) for i in ids
            )
        return http("200 OK", body, content_type)

    return reply


def texts_of(results: Any, error: BaseException | None) -> list[str]:
    """What a program may show of ``results`` and ``error``; ``.raw`` read in every
    encoding it could be read in."""
    texts = [repr(results), str(results)]
    for record in results:
        texts += [repr(record), str(record), *map(str, record)]
        failure = getattr(record, "error", None)
        if failure is not None:
            texts += [repr(failure), str(failure), repr(vars(failure))]
        raw = getattr(record, "raw", None)
        if raw is not None:
            texts += [raw.decode(e, "surrogateescape") for e in ("utf-8", "cp1251", "latin-1")]
    if error is not None:
        texts += [repr(error), str(error), repr(error.args), "".join(
            traceback.format_exception(type(error), error, error.__traceback__))]
    return texts


def exercise(url: str, password: str, where: str) -> tuple[list[str], list[Any]]:
    """The call ``where`` answers (a SEND, or a STATUS) with ``password``: every
    text shown, and the results."""
    with Client(url, "CLIENT", password, default_subject="S", retries=0, backoff=0.0) as c:
        texts = [repr(c)]
        error: HPGError | None = None
        try:
            results = c.status(PROVIDER_IDS) if where == "status" else c.send(MESSAGES)
        except HPGError as exc:
            error, results = exc, getattr(exc, "results", [])
        texts += texts_of(results, error)
    return texts, list(results)


def assert_hidden(texts: list[str], caplog: pytest.LogCaptureFixture, *forms: str) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    shown = texts + [formatter.format(r) for r in caplog.records]
    shown += [repr(r.args) for r in caplog.records]
    for text in shown:
        for form in (CORE, *forms):
            assert form not in text, text


# -- JSON -------------------------------------------------------------------------------

#: Characters JSON escapes, or may: as a backslash and a letter (``\\"``, ``\\\\``,
#: ``\\t``, ``\\n``, ``\\/`` by PHP), as ``\\u0001`` (other control characters), and
#: with ``ensure_ascii`` every non-ASCII one as ``\\uXXXX`` (a surrogate pair beyond
#: the BMP).
JSON_CHARS = ['"', "\\", "\t", "\n", "\x01", "/", "\u00e9", "\U0001f600"]


def php_json(text: str, ensure_ascii: bool) -> str:
    """``json_encode`` as PHP writes it: ``/`` as ``\\/``."""
    return json.dumps(text, ensure_ascii=ensure_ascii).replace("/", "\\/")


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["ascii", "utf8"])
@pytest.mark.parametrize("char", JSON_CHARS, ids=[f"U+{ord(c):04X}" for c in JSON_CHARS])
def test_a_json_escaped_echo_is_masked(
    caplog: pytest.LogCaptureFixture, char: str, ensure_ascii: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    password = f"Zq{char}{CORE}{char}x"
    escaped = php_json(password, ensure_ascii)[1:-1]
    for where in WHERE:
        echo = escaped.encode("utf-8")
        with server(reply_for(where, echo, "application/json")) as url:
            texts, _ = exercise(url, password, where)
        assert_hidden(texts, caplog, escaped)


def test_the_redactor_masks_every_json_escaped_form() -> None:
    from hpgfast._redact import Redactor

    for char in [*JSON_CHARS, "\b", "\f", "\r", "\x1f", "<", "&", "\u2028"]:
        password = f"Zq{char}{CORE}{char}x"
        redact = Redactor(password)
        for ensure_ascii in (True, False):
            for escaped in (json.dumps(password, ensure_ascii=ensure_ascii),
                            php_json(password, ensure_ascii),
                            # JSON in a JSON string: each backslash escaped once more.
                            json.dumps(json.dumps(password, ensure_ascii=ensure_ascii))):
                assert CORE not in redact(f"x {escaped} y"), (char, escaped)


# -- UTF-8 read as windows-1252 -----------------------------------------------------------

#: "с" is D1 81 in UTF-8, "П" D0 9F, "р" D1 80: 0x81 is one of the five bytes
#: windows-1252 leaves undefined.
MOJIBAKE_PASSWORD = f"Пароль{CORE}секрет"


def _c1(raw: bytes) -> str:
    # As Windows and browsers read it: an undefined byte as its control character.
    return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in raw)


MOJIBAKE = {
    "replace": lambda pw: pw.encode("utf-8").decode("cp1252", "replace"),  # Python, Java
    "c1": lambda pw: _c1(pw.encode("utf-8")),
}


@pytest.mark.parametrize("how", list(MOJIBAKE))
def test_utf8_read_as_windows_1252_is_masked(caplog: pytest.LogCaptureFixture, how: str) -> None:
    caplog.set_level(logging.DEBUG)
    shown = MOJIBAKE[how](MOJIBAKE_PASSWORD)
    assert "\ufffd" in shown if how == "replace" else "\x81" in shown
    for where in WHERE:
        with server(reply_for(where, shown.encode("utf-8"), "text/plain; charset=utf-8")) as url:
            texts, _ = exercise(url, MOJIBAKE_PASSWORD, where)
        assert_hidden(texts, caplog, shown)


# -- the bytes of an 8-bit charset, .raw ---------------------------------------------------

#: (password, its encoding on the wire, the Content-Type the server declares)
EIGHT_BIT = {
    "cp1251-declared": (f"Пароль{CORE}секрет", "cp1251", "text/plain; charset=windows-1251"),
    "cp1251-undeclared": (f"Пароль{CORE}секрет", "cp1251", "text/plain"),
    "latin1-undeclared": (f"Zq\u00e9{CORE}\u00fc", "latin-1", "text/plain"),
    "cp1252-declared": (f"Zq\u20ac{CORE}\u00fc", "cp1252", "text/plain; charset=cp1252"),
}


@pytest.mark.parametrize("case", list(EIGHT_BIT))
def test_an_8_bit_echo_is_masked_in_raw_and_text(
    caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    password, encoding, content_type = EIGHT_BIT[case]
    echo = password.encode(encoding)
    for where in WHERE:
        with server(reply_for(where, echo, content_type)) as url:
            texts, results = exercise(url, password, where)
        assert_hidden(texts, caplog, password)
        if where != "500":
            raws = [r.raw for r in results]
            # The line was read tolerantly (its text is not UTF-8): its bytes are kept,
            # masked like its text.
            assert all(raw is not None for raw in raws), results
            for raw in raws:
                assert echo not in raw and CORE.encode() not in raw, raw
                assert b"bad ***" in raw, raw
            assert all("***" in str(r) for r in results), results


# -- a password that cannot be encoded ---------------------------------------------------

#: A password with a byte that is not UTF-8, as os.fsdecode or os.environ give it.
SURROGATE_PASSWORD = os.fsdecode(b"Zq7#" + CORE.encode() + b"\xe4mP")


def test_a_password_with_a_lone_surrogate_is_refused_without_showing_it() -> None:
    assert "\udce4" in SURROGATE_PASSWORD
    with pytest.raises(ValueError, match="lone surrogate") as info:
        Client("http://127.0.0.1:9/CLIENT/x/", "CLIENT", SURROGATE_PASSWORD)
    error = info.value
    assert error.__context__ is None and error.__cause__ is None
    texts = [str(error), repr(error), repr(error.args),
             "".join(traceback.format_exception(type(error), error, error.__traceback__))]
    # A half-built client in the traceback's frames (a debugger, a crash reporter
    # reading frame locals): its repr works and shows nothing of the password.
    tb = error.__traceback__
    selves = []
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if type(me).__module__.startswith("hpgfast") and type(me).__name__.endswith("Client"):
            selves.append(me)
        tb = tb.tb_next
    assert selves, "no half-built client in the traceback"
    texts += [repr(me) for me in selves]
    for text in texts:
        assert CORE not in text and "\udce4" not in text, text


@pytest.mark.sync_only  # the command line's own client
def test_the_command_line_refuses_a_password_with_a_lone_surrogate() -> None:
    env = dict(os.environb)
    env.update({
        b"HPGFAST_URL": b"http://127.0.0.1:9/CLIENT/x/",
        b"HPGFAST_LOGIN": b"CLIENT",
        b"HPGFAST_PASSWORD": b"Zq7#" + CORE.encode() + b"\xe4mP",
    })
    done = subprocess.run(
        [sys.executable, "-m", "hpgfast", "send", "--to", "79031234560", "--text", "hi",
         "--subject", "S", "-vv"],
        env=env, capture_output=True, timeout=60,
    )
    assert done.returncode == 2, done
    assert b"lone surrogate" in done.stderr, done.stderr
    assert CORE.encode() not in done.stdout + done.stderr


def test_a_half_built_client_has_a_repr() -> None:
    # Its __init__ raised on a bad setting after the password was given: a crash
    # reporter or a debugger showing the frame's ``self`` gets a repr, not an
    # AttributeError (and nothing of the password).
    with pytest.raises(ValueError) as info:
        Client("http://127.0.0.1:9/CLIENT/x/", "CLIENT", f"Zq{CORE}", timeout=-1.0)
    tb = info.value.__traceback__
    shown = []
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if type(me).__module__.startswith("hpgfast") and type(me).__name__.endswith("Client"):
            shown.append(repr(me))
        tb = tb.tb_next
    assert shown, "no half-built client in the traceback"
    for text in shown:
        assert "not set up" in text and CORE not in text, text
