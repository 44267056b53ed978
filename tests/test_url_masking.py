"""A base URL refused as malformed never shows the password it holds.

A mistyped scheme (``htps://``, ``http//``), a port or host the parser refuses, or
a base URL with user info or a query: the error names what is wrong and shows the
URL with its user info, query values and the password masked, in the client's
exception (both clients), in the log and on the command line's terminal.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from hpgfast import Client, Settings

pytestmark = pytest.mark.usefixtures("transport")

CORE = uuid.uuid4().hex
#: The password put into the URL (another one is passed as ``password``).
SECRET = f"Pw{CORE}"
#: The client's own password, which the URL may also hold.
PASSWORD = f"Own{uuid.uuid4().hex}"
FORMS = {SECRET, CORE, PASSWORD, quote(SECRET, safe=""), quote_plus(PASSWORD)}

#: Malformed (or not base) URLs, each with a password in it.
SHAPES = [
    f"htps://user:{SECRET}@127.0.0.1:1/CLIENT/conn/",
    f"http//user:{SECRET}@127.0.0.1:1/CLIENT/conn/",
    f"user:{SECRET}@127.0.0.1:1/CLIENT/conn/",
    f"http://user:{SECRET}@127.0.0.1:1/CLIENT/conn/",
    f"http://user:{SECRET}@127.0.0.1:99999999/",
    f"http://user:{SECRET}@bad host/",
    f"http://user:{quote(SECRET + '@/x', safe='')}@127.0.0.1:1/",
    f"http://user:{SECRET}@with@at@127.0.0.1:1/",
    f"ftp://user:{SECRET}@127.0.0.1/",
    f"htps://127.0.0.1:1/CLIENT/conn/?password={SECRET}",
    f"http://127.0.0.1:1/CLIENT/conn/?login=x&pass={SECRET}",
    f"http://127.0.0.1:1/CLIENT/conn/#token={SECRET}",
    f"http://127.0.0.1:1/CLIENT/conn/?password={quote(SECRET + '&')}",
    f"http//127.0.0.1:1/?pwd={PASSWORD}",
    f"htps://127.0.0.1:1/{PASSWORD}/?x=1",
]


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def texts_of(exc: BaseException) -> list[str]:
    assert exc.__cause__ is None and exc.__context__ is None, "a chained error shows the URL"
    return [
        str(exc),
        repr(exc),
        repr(exc.args),
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    ]


@pytest.mark.parametrize("url", SHAPES)
def test_a_refused_url_shows_no_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError) as info:
        Client(url, "CLIENT", PASSWORD)
    for text in texts_of(info.value):
        assert not leaks(text), text
    assert "url" in str(info.value)  # still says which setting is wrong
    for record in caplog.records:
        assert not leaks(record.getMessage()), record


@pytest.mark.parametrize("url", SHAPES[:4])
def test_settings_refuse_it_alike(url: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings(url, "CLIENT", PASSWORD)
    for text in texts_of(info.value):
        assert not leaks(text), text


def test_the_mask_keeps_what_helps_find_the_mistake() -> None:
    from hpgfast._redact import mask_url

    assert mask_url("htps://u:pw@host:1/a/") == "htps://***@host:1/a/"
    assert mask_url("http//u:pw@host/") == "http//***@host/"
    assert mask_url("http://host/a/?password=pw&x=1") == "http://host/a/?password=***&x=***"
    assert mask_url("http://host/a/") == "http://host/a/"


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("url", SHAPES)
def test_the_command_line_shows_no_password(url: str, tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": PASSWORD,
        "TMPDIR": str(tmp_path),
    }
    for how in (["--url", url], []):
        run_env = env if how else env | {"HPGFAST_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "-vv", "send", *how, "--login", "CLIENT",
             "--to", "79031234567", "--text", "hi", "--subject", "S"],
            env=run_env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "url" in done.stderr
        assert not leaks(done.stdout + done.stderr), done.stderr


# -- an accepted URL whose path holds the password (a user's mistake) ---------------------

#: The client's password with a character a URL path may carry as it is or encoded.
IN_PATH = f"Pw{CORE}!:"
PATH_FORMS = {IN_PATH, CORE, quote(IN_PATH, safe=""), f"Pw{CORE}%21%3a"}

#: Paths that hold the password: as a segment, as a path parameter, percent-encoded
#: (upper- and lower-case hex).
PATHS = [
    f"/{IN_PATH}/connectorX/",
    f"/connectorX/;password={IN_PATH}/",
    f"/CLIENT/{quote(IN_PATH, safe='')}/connectorX/",
    f"/CLIENT/Pw{CORE}%21%3a/",
]


def path_leaks(text: str) -> list[str]:
    return [form for form in PATH_FORMS if form in text]


def origin(url: str) -> str:
    return "/".join(url.split("/")[:3])


@pytest.mark.parametrize("path", PATHS)
def test_the_password_in_an_accepted_url_s_path_never_shows(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    from hpgfast import HPGError, Message
    from hpgfast.emulator import Emulator

    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    # Nothing listens on port 9: the SEND is not sent, and a warning quotes the URL.
    with Client(f"http://127.0.0.1:9{path}", "CLIENT", IN_PATH, retries=0, backoff=0.0,
                default_subject="S") as client:
        inner = getattr(client, "inner", client)
        texts += [repr(client), repr(inner), repr(inner.settings), str(inner.settings)]
        results = client.send([Message("79031234567", "hi")])
        assert results[0].code == "not-sent"
        texts += [repr(r) for r in results]
        texts += texts_of(results[0].error)
    # A real server: it answers 404 for a path it does not know, quoting the path.
    with Emulator(password=IN_PATH, speed=None) as emu:
        with Client(origin(emu.url) + path, "CLIENT", IN_PATH, retries=0, backoff=0.0,
                    default_subject="S") as client:
            with pytest.raises(HPGError) as info:
                client.send([Message("79031234567", "hi")])
            texts += texts_of(info.value)
    assert "***" in str(info.value)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        texts.append(record.getMessage())
    for text in texts:
        assert not path_leaks(text), text


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("path", PATHS[:2])
def test_the_command_line_shows_no_password_in_the_url_s_path(path: str, tmp_path: Any) -> None:
    from hpgfast.emulator import Emulator

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": IN_PATH,
        "TMPDIR": str(tmp_path),
    }
    with Emulator(password=IN_PATH, speed=None) as emu:
        url = origin(emu.url) + path
        for verbose in ([], ["-vv"]):
            done = subprocess.run(
                [sys.executable, "-m", "hpgfast", *verbose, "send", "--login", "CLIENT",
                 "--to", "79031234567", "--text", "hi", "--subject", "S"],
                env=env | {"HPGFAST_URL": url}, capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 2, done.stderr
            # The error (on stdout after the table of what is known, for send --to).
            assert "404" in done.stdout + done.stderr, done.stderr
            assert not path_leaks(done.stdout + done.stderr), done.stderr


# -- a password holding characters a URL treats apart (= # ? & / @ ;) ---------------------

#: Passwords with URL-special characters, each made unique.
SPECIAL = [
    "Tr0ub4dor=Xyzzy9",
    "Sec#ret?Part2=x",
    "S3cr#t/Pw+x=Q",
    "a&b;c?d#e@f/g=hQ7",
    "Kx=9&qz=Zz#w",
]
#: Where a user may put it by mistake, in a URL refused as malformed.
SPECIAL_SHAPES = [
    "http://gate.example/CLIENT/cx/#{}",
    "ftp://gate.example/{}",
    "http://gate.example/CLIENT/cx/?{}",
    "http://gate.example/CLIENT/cx/?password={}",
    "http://gate.example/CLIENT/cx/?x=1&{}&y=2",
    "htps://gate.example/{}/cx/",
    "http://user:{}@gate.example/",
    "gate.example/{}",
]


def runs_of(password: str, text: str) -> list[str]:
    """The runs of more than three consecutive characters of ``password`` in ``text``,
    as such or percent-encoded."""
    runs = [password[i : i + 4] for i in range(len(password) - 3)]
    quoted = quote(password, safe="")
    runs += [quoted[i : i + 6] for i in range(len(quoted) - 5)]
    return [run for run in runs if run in text]


def test_mask_url_masks_a_password_holding_url_special_characters() -> None:
    from hpgfast._redact import Redactor, mask_url

    assert mask_url("http://gate.example/CLIENT/cx/#Tr0ub4dor=Xyzzy9",
                    Redactor("Tr0ub4dor=Xyzzy9")) == "http://gate.example/CLIENT/cx/#***"
    assert mask_url("ftp://gate.example/Sec#ret?Part2=x",
                    Redactor("Sec#ret?Part2=x")) == "ftp://gate.example/***"
    for password in SPECIAL:
        for shape in SPECIAL_SHAPES:
            for form in (password, quote(password, safe=""), quote(password)):
                url = shape.format(form)
                shown = mask_url(url, Redactor(password))
                assert not runs_of(password, shown), (url, shown)


@pytest.mark.parametrize("password", SPECIAL)
def test_a_refused_url_shows_no_run_of_a_special_password(
    password: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for shape in SPECIAL_SHAPES:
        url = shape.format(password)
        with pytest.raises(ValueError) as info:
            Client(url, "CLIENT", password)
        assert "url" in str(info.value)
        for text in texts_of(info.value):
            assert not runs_of(password, text), text
    for record in caplog.records:
        assert not runs_of(password, record.getMessage()), record


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("password", SPECIAL[:2])
def test_the_command_line_shows_no_run_of_a_special_password(
    password: str, tmp_path: Any
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": password,
        "TMPDIR": str(tmp_path),
    }
    for shape in SPECIAL_SHAPES[:2]:
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "-vv", "send", "--url", shape.format(password),
             "--login", "CLIENT", "--to", "79031234567", "--text", "hi", "--subject", "S"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "url" in done.stderr
        assert not runs_of(password, done.stdout + done.stderr), done.stderr
