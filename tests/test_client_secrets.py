"""The password never shows: not in a log record (hpgfast's or urllib3's, at DEBUG),
an exception's text, args, repr or traceback, nor in a repr of the client.

One unique password is driven through every path that can fail, and every trace
is searched for it in each form it can take on the wire.
"""

from __future__ import annotations

import base64
import html
import http.server
import logging
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import trustme

from echo_server import serve, stop
from hpgfast import Client, HPGError, Message, PlatformUnavailable, UnexpectedReply
from hpgfast._redact import Redactor
from hpgfast.emulator import Emulator, Fault

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")
#: The async client's loop runs in debug mode here: asyncio then logs every
#: connection it makes, and those records are checked too.
ASYNCIO_DEBUG = True
#: Every library logger either client may write to.
LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.connection", "asyncio", "hpgfast")

CORE = uuid.uuid4().hex
SECRET = f"Zq{CORE}é/&= +%"
FORMS = {SECRET, CORE, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET)}


def messages(n: int = 30) -> list[Message]:
    return [Message(f"7903{i:07d}", f"text {i}") for i in range(n)]


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def exception_texts(exc: BaseException) -> list[str]:
    texts = [
        str(exc),
        repr(exc),
        repr(exc.args),
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    ]
    texts += [repr(v) for v in vars(exc).values()]
    assert exc.__cause__ is None and exc.__context__ is None
    return texts


class Collected:
    """Exceptions and results gathered across the scenarios."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def exception(self, exc: BaseException) -> None:
        self.texts += exception_texts(exc)

    def results(self, results: list[Any]) -> None:
        for result in results:
            self.texts.append(repr(result))
            error = getattr(result, "error", None)
            if error is not None:
                self.exception(error)


@pytest.fixture
def collected() -> Collected:
    return Collected()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def assert_no_leak(caplog: pytest.LogCaptureFixture, collected: Collected) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert caplog.records, "nothing was logged: the test proves nothing"
    for record in caplog.records:
        assert not leaks(formatter.format(record)), record
        assert not leaks(repr(record.args)), record
    for text in collected.texts:
        assert not leaks(text), text


def secret_client(url: str, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.0)
    return Client(url, "CLIENT", SECRET, **kw)


# -- the emulator's paths ----------------------------------------------------------------


def test_no_leak_on_success_and_every_fault(
    all_logs: pytest.LogCaptureFixture, collected: Collected, transport: str
) -> None:
    with Emulator(password=SECRET, speed=None) as emu:
        with secret_client(emu.url, max_batch=5, timeout=0.2, retries=3) as client:
            collected.texts += [repr(client), str(client), repr(vars(client))]
            inner = getattr(client, "inner", client)  # the AsyncClient behind the face
            collected.texts += [repr(inner), str(inner), repr(vars(inner))]
            results = client.send(messages())
            collected.results(results)
            assert all(r.ok for r in results)
            collected.results(client.status([r.provider_id for r in results]))
            done = sum(emu.requests.values())  # faults count requests from the start
            emu.faults.http_500 = {done + 1}
            emu.faults.reset_after_accept = {done + 2}
            emu.faults.cut_reply = {done + 3}
            emu.faults.delay = Fault(schedule=frozenset({done + 4}), seconds=0.5)
            emu.faults.refuse = {3, 4}  # connections: the ones after the reset and cut
            sent = client.send(messages())
            collected.results(sent)
            assert {r.code for r in sent} == {"ok", "unknown"}
            emu.faults.http_500 = Fault(rate=1.0)
            with pytest.raises(PlatformUnavailable) as down:  # the third 5xx in a row
                client.status(["1001", "1002"])
            collected.exception(down.value)
            collected.results(down.value.results)  # type: ignore[attr-defined]
            # A redirect that echoes the password, and a login page that does.
            emu.faults.http_500 = Fault()
            emu.faults.raw_reply = Fault(
                rate=1.0,
                status=302,
                headers={"Location": f"https://elsewhere.test/send?password={SECRET}"},
                body=f"<html>moved: password={SECRET}</html>".encode(),
            )
            with pytest.raises(UnexpectedReply) as moved:
                client.send(messages())
            collected.exception(moved.value)
            collected.results(moved.value.results)  # type: ignore[attr-defined]
            collected.texts += [str(moved.value.location), moved.value.body]
            with pytest.raises(TypeError) as info:
                pickle.dumps(client)
            collected.exception(info.value)
    # The transport's own libraries logged, and were checked.
    library, ours = {"sync": ("urllib3", "hpgfast.client"), "async": ("asyncio", "hpgfast.aio")}[
        transport
    ]
    assert any(r.name.startswith(library) for r in all_logs.records)
    assert any(r.name == ours for r in all_logs.records)
    assert_no_leak(all_logs, collected)


def test_no_leak_when_the_password_is_wrong(
    all_logs: pytest.LogCaptureFixture, collected: Collected
) -> None:
    with Emulator() as emu, secret_client(emu.url) as client:
        for call in (lambda: client.send(messages(3)), lambda: client.status(["1"])):
            with pytest.raises(HPGError) as info:
                call()
            collected.exception(info.value)
            collected.results(getattr(info.value, "results", []))
    assert_no_leak(all_logs, collected)


def test_no_leak_on_connect_and_tls_failures(
    all_logs: pytest.LogCaptureFixture, collected: Collected, tmp_path: Any
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with secret_client(f"http://127.0.0.1:{port}/C/x/", retries=1) as client:
        collected.results(client.send(messages(3)))
        collected.results(client.status(["1"]))

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain = tmp_path / "chain.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    with Emulator(certfile=str(chain)) as emu, secret_client(emu.url) as client:
        with pytest.raises(HPGError) as info:
            client.send(messages(3))
        collected.exception(info.value)
    assert_no_leak(all_logs, collected)


# -- servers that echo the request back (echo_server) -------------------------------------


@pytest.mark.parametrize("status", [b"500 Internal Server Error", b"404 Not Found", b"200 OK"])
def test_no_leak_when_the_server_echoes_the_url(
    all_logs: pytest.LogCaptureFixture, collected: Collected, status: bytes, transport: str
) -> None:
    def reply(line: bytes) -> bytes:
        # An error page quoting the request line, and a malformed header line, which
        # makes urllib3 log "Failed to parse headers (url=<the full URL>)".
        body = b"error processing " + line
        return (
            b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n"
            b"this line is no header\r\n\r\n%s" % (status, len(body), body)
        )

    listener, thread = serve(reply)
    port = listener.getsockname()[1]
    try:
        with secret_client(f"http://127.0.0.1:{port}/C/x/", retries=1) as client:
            try:
                collected.results(client.send(messages(3)))
                collected.results(client.status(["1"]))
            except HPGError as exc:
                collected.exception(exc)
    finally:
        stop(listener, thread)
    assert collected.texts
    # llhttp refuses the reply (both clients read replies with it); the error logged
    # quotes the reply, which quotes the URL.
    assert any("is not HTTP/1.1" in r.getMessage() for r in all_logs.records)
    assert_no_leak(all_logs, collected)


@pytest.mark.parametrize("cut", [12, 30])
def test_no_partial_leak_when_a_long_description_is_cut(cut: int) -> None:
    # The description kept is 2000 characters; an echoed URL placed so that the cut
    # falls inside the password must not leave a prefix of it behind.
    def reply(line: bytes) -> bytes:
        at = line.index(b"password=") + len(b"password=") + cut
        body = b"x" * (2000 - at) + line
        return b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
            len(body),
            body,
        )

    listener, thread = serve(reply)
    port = listener.getsockname()[1]
    try:
        with secret_client(f"http://127.0.0.1:{port}/C/x/", retries=0) as client:
            (result,) = client.send(messages(1))
    finally:
        stop(listener, thread)
    description = result.error.description  # type: ignore[attr-defined]
    assert len(description) == 2000
    assert CORE[:8] not in description
    assert "password=***" in description


# -- servers that echo the password in other encodings -------------------------------------

# A password of every character that encoders disagree on (~ * & < >),
# made unique so that a find proves a leak.
ECHO_CORE = uuid.uuid4().hex[:12]
ECHO_SECRET = f"Pa~ss*w&rd<1>Z{ECHO_CORE}"
#: A password of non-ASCII letters, which a server may echo as mojibake.
UNICODE_SECRET = f"Жq@7 x+y&é{ECHO_CORE}"


def _hex_case(text: str, case: Callable[[str, int], str]) -> str:
    """``text`` with each %XX escape's hex rewritten by ``case(hex, n)``."""
    parts = text.split("%")
    return parts[0] + "".join(
        "%" + case(part[:2], n) + part[2:] for n, part in enumerate(parts[1:])
    )


def _html_numeric(text: str, template: str) -> str:
    return "".join(template.format(ord(c)) if c in "&<>\"'" else c for c in text)


def _b64(data: str, *, url: bool = False) -> str:
    raw = data.encode("utf-8")
    return (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode("ascii")


def _cp1252(raw: bytes) -> str:
    """``raw`` read as Windows-1252, as a browser or Windows reads it: the five bytes
    it leaves undefined as the Latin-1 control characters."""
    return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in raw)


def _qp(text: str, width: int = 9) -> str:
    """Quoted-printable as a mail or multipart encoder may write it: every byte but
    letters and digits as ``=XX``, and a soft line break (``=\\r\\n``) whenever a line
    would pass ``width`` characters (a real encoder's 76, made short so that the
    password is split across several lines)."""
    tokens = [chr(b) if b < 128 and chr(b).isalnum() else f"={b:02X}" for b in text.encode()]
    lines, line = [], ""
    for token in tokens:
        if line and len(line) + len(token) > width - 1:
            lines.append(line)
            line = ""
        line += token
    return "=\r\n".join([*lines, line])


def _b64_cores(password: str) -> set[str]:
    """The base64 characters that depend on the password's bytes alone, at each of the
    three alignments it may have inside a longer base64 text, in both alphabets: what
    an echo of ``login:password`` (or any text around it) in base64 shows of it."""
    raw = password.encode("utf-8")
    cores = set()
    for offset in range(3):
        text = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        core = text[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


# How servers echo a password: the name, and the encoder as a function of it.
ECHO_FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda p: p,
    "html": lambda p: html.escape(p),
    "html-decimal": lambda p: _html_numeric(p, "&#{};"),
    "html-hex": lambda p: _html_numeric(p, "&#x{:x};"),
    "html-padded": lambda p: _html_numeric(p, "&#00{}"),
    "percent-lower": lambda p: _hex_case(quote(p, safe=""), lambda h, n: h.lower()),
    "percent-mixed": lambda p: _hex_case(
        quote(p, safe=""), lambda h, n: h.lower() if n % 2 else h.upper()
    ),
    # java.net.URLEncoder: space -> "+", "*" kept, "~" encoded, upper-case hex.
    "java": lambda p: quote_plus(p, safe="*").replace("~", "%7E"),
    "json": lambda p: "".join(f"\\u{ord(c):04x}" if not c.isalnum() else c for c in p),
    # Base64: the password alone, in the URL-safe alphabet, the credentials of a
    # Basic Authorization header (login:password: the password at the second
    # alignment), and after two other bytes (the third alignment).
    "base64": lambda p: _b64(p),
    "base64-url": lambda p: _b64(p, url=True),
    "basic": lambda p: _b64(f"CLIENT:{p}"),
    "base64-shifted": lambda p: _b64(f"id{p}", url=True),
    # Quoted-printable with soft line breaks inside the password.
    "qp": lambda p: _qp(p),
    # Mojibake: the password's UTF-8 bytes read as Latin-1 or as Windows-1252 (a
    # server that decodes the query so: Tomcat's default), sent back as UTF-8.
    "mojibake": lambda p: p.encode("utf-8").decode("latin-1"),
    "mojibake-cp1252": lambda p: _cp1252(p.encode("utf-8")),
    # The same, written back in Latin-1 (Tomcat's error page, charset ISO-8859-1),
    # in a page with another non-UTF-8 character: the body is read as Latin-1.
    "tomcat": lambda p: p.encode("utf-8").decode("latin-1"),
    # The page in UTF-16 (the server writes it so, see UTF16_FORMS), declared or
    # not: read as UTF-8, a NUL stands between the characters.
    "utf16-le": lambda p: p,
    "utf16-be": lambda p: p,
}
#: The forms the echo server writes in Latin-1, with a Content-Type that says so.
LATIN1_FORMS = {"tomcat"}
#: The forms the echo server writes in UTF-16: the charset declared (little endian)
#: or not (big endian).
UTF16_FORMS = {"utf16-le": ("utf-16-le", True), "utf16-be": ("utf-16-be", False)}
ECHO_LEAKS = {
    ECHO_CORE,
    *(encode(ECHO_SECRET) for encode in ECHO_FORMS.values()),
    *(encode(UNICODE_SECRET) for encode in ECHO_FORMS.values()),
    *_b64_cores(ECHO_SECRET),
    # Any line of the quoted-printable echo that holds four characters of the core.
    *(line for line in _qp(ECHO_SECRET).split("=\r\n") if re.search("[0-9a-f]{4}", line)),
}


def echo_leaks(text: str) -> list[str]:
    # Also once the characters a reader does not see (a NUL of UTF-16) are out.
    flat = _INVISIBLE.sub("", text)
    return [form for form in ECHO_LEAKS if form in text or form in flat]


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request by echoing the password it received.

    The path's first segment says how: ``/<status>-<form>-<place>/...``, where place
    is ``text`` (the echoed password alone, in a sentence) or ``param`` (as
    ``password=<form>``, the way the request line is quoted back).
    """

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        status, form, place = url.path.split("/")[1].split("-", 2)
        received = parse_qs(url.query)["password"][0]
        echoed = ECHO_FORMS[form.replace("_", "-")](received)
        shown = f"password={echoed}" if place == "param" else f"bad secret '{echoed}' here"
        if status == "200" and url.path.endswith("/status"):
            # A STATUS reply whose date field is the echo: the parser quotes it.
            body = f"ok;1;delivered;{echoed};{shown}\n"
        elif status == "200":
            body = f"{echoed};{shown}\n"  # garbage: not a code
        else:
            body = f"<html><body>Error processing request: {shown}</body></html>"
        charset, declared = "utf-8", True
        if form in LATIN1_FORMS:
            charset = "ISO-8859-1"
            body += "<p>\xa9 Apache</p>"
        if form.replace("_", "-") in UTF16_FORMS:
            charset, declared = UTF16_FORMS[form.replace("_", "-")]
        data = body.encode(charset)
        self.send_response(int(status))
        self.send_header("Content-Type", f"text/html;charset={charset}" if declared
                         else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server's own lines would hold the password: not the client's doing


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("secret", [ECHO_SECRET, UNICODE_SECRET], ids=["ascii", "unicode"])
@pytest.mark.parametrize("status", ["500", "200"])
@pytest.mark.parametrize("place", ["text", "param"])
@pytest.mark.parametrize("form", sorted(ECHO_FORMS))
def test_no_leak_when_the_server_echoes_the_password_encoded(
    echo_server: str,
    all_logs: pytest.LogCaptureFixture,
    collected: Collected,
    status: str,
    form: str,
    place: str,
    secret: str,
) -> None:
    logging.getLogger().setLevel(logging.DEBUG)  # every logger, at DEBUG
    url = f"{echo_server}/{status}-{form.replace('-', '_')}-{place}/x/"
    with Client(url, "CLIENT", secret, default_subject="S", retries=1, backoff=0.0) as c:
        for call in (lambda: c.send(messages(3)), lambda: c.status(["1", "2"])):
            try:
                collected.results(call())
            except HPGError as exc:
                collected.exception(exc)
                collected.results(getattr(exc, "results", []))
    errors = [r for r in all_logs.records if r.levelno >= logging.WARNING]
    assert errors, "the client logged no failure: the test proves nothing"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in all_logs.records:
        assert not echo_leaks(formatter.format(record)), record
        assert not echo_leaks(repr(record.args)), record
    assert collected.texts
    for text in collected.texts:
        assert not echo_leaks(text), text


#: The echoes in forms a person would not take for a password: base64 and
#: quoted-printable.
DISGUISED_FORMS = ("base64", "base64-url", "basic", "base64-shifted", "qp")


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("form", DISGUISED_FORMS)
def test_no_leak_on_the_command_line_at_debug(
    echo_server: str, tmp_path: Any, form: str
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")
    } | {"HPGFAST_PASSWORD": ECHO_SECRET, "TMPDIR": str(tmp_path)}
    shown = []
    for status in ("500", "200"):
        url = f"{echo_server}/{status}-{form.replace('-', '_')}-text/x/"
        common = ["--url", url, "--login", "CLIENT", "--timeout", "5"]
        for command in (
            ["send", *common, "--to", "79031234567", "--text", "hi", "--subject", "S", "--json"],
            ["status", *common, "1001", "1002"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "hpgfast", "-vv", *command],
                env=env, capture_output=True, text=True, timeout=60,
            )
            shown.append(done.stdout + done.stderr)
            assert " DEBUG " in done.stderr, done.stderr  # -vv logged at DEBUG
            assert done.returncode != 0, done.stdout  # each echo is a failure
    for text in shown:
        assert not echo_leaks(text), text


@pytest.mark.parametrize("secret", [ECHO_SECRET, UNICODE_SECRET], ids=["ascii", "unicode"])
def test_the_redactor_masks_every_form_and_any_password_value(secret: str) -> None:
    redact = Redactor(secret, password_param="pwd")
    for name, encode in ECHO_FORMS.items():
        text = f"<b>{encode(secret)}</b> and again:{encode(secret)}"
        # An echo over several lines leaves its line ends (see Redactor).
        masked = "***" + "\n" * encode(secret).count("\n")
        assert redact(text) == f"<b>{masked}</b> and again:{masked}", name
    # Mojibake as a repr shows it: a control character escaped.
    shown = repr(UNICODE_SECRET.encode("utf-8").decode("latin-1"))
    assert Redactor(UNICODE_SECRET)(shown) == "'***'"
    # Any value of the password parameter, in any case or encoding, whatever it is.
    assert redact("login=C&pwd=Other%20one&x=1") == "login=C&pwd=***&x=1"
    assert redact("URL: /send?PWD%3dabc def") == "URL: /send?PWD%3d*** def"
    assert redact("'pwd=abc'") == "'pwd=***'"
    assert redact("pwd= x") == "pwd= x"  # nothing to mask
    assert redact("password=abc") == "password=abc"  # another parameter's name
    # Characters outside the BMP and non-ASCII, in every encoding.
    redact = Redactor("é 😀/")
    for text in (
        "é 😀/",
        "%C3%A9+%F0%9F%98%80%2f",
        "\\u00e9 \\ud83d\\ude00\\/",
        "&#233;&#32;&#x1F600;/",
    ):
        assert redact(f"[{text}]") == "[***]", text
    # A password ending in "&" does not leave the rest of "&amp;" behind.
    assert Redactor("x&")("(x&amp;)") == "(***)"


# A password whose base64 holds both "+" and "/" at each of the three alignments, so
# that the URL-safe alphabet differs from the standard one wherever it may stand.
B64_SECRET = "S3cré>?~%~??"


@pytest.mark.parametrize("prefix", ["", "x", "xy", "CLIENT:", "login:"])
@pytest.mark.parametrize("url_safe", [False, True])
def test_the_redactor_masks_the_password_in_base64(prefix: str, url_safe: bool) -> None:
    redact = Redactor(B64_SECRET)
    cores = _b64_cores(B64_SECRET)
    assert all("+" in c and "/" in c for c in cores if "-" not in c)
    encoded = _b64(prefix + B64_SECRET, url=url_safe)
    for text, masked in (
        # An echoed Authorization header: the whole credentials go, the scheme stays.
        (f"Authorization: Basic {encoded}\r\nHost: x", "Authorization: Basic ***\r\nHost: x"),
        (f'{{"auth":"{encoded}","n":1}}', '{"auth":"***","n":1}'),
        # Inside a longer base64 text, percent-encoded in a URL, JSON-escaped.
        (f"data={_b64('a' * 7 + prefix + B64_SECRET + 'tail')}&x=1", "data=***&x=1"),
        (f"token={quote(encoded, safe='')} end", None),
        (f'"{encoded.replace("/", chr(92) + "/")}"', None),
        # Wrapped as MIME wraps base64, here every 7 characters.
        ("\r\n".join(encoded[i : i + 7] for i in range(0, len(encoded), 7)), None),
    ):
        shown = redact(text)
        assert not [core for core in cores if core in shown.replace("\n", "")], (text, shown)
        assert "***" in shown, text
        if masked is not None:
            assert shown == masked, text
    # Text around an echo is kept, and a text without one is left alone.
    assert redact(f"ok {_b64(B64_SECRET)} ok") == "ok *** ok"
    other = _b64("another password entirely")
    assert redact(f"Basic {other}") == f"Basic {other}"
    # A one-byte password masks its character, not every word holding a letter of
    # its base64 ("YQ==": "Y", and "h" at the third alignment).
    assert Redactor("a")("Your request here") == "Your request here"


def test_the_redactor_masks_the_password_in_quoted_printable() -> None:
    import quopri

    redact = Redactor(B64_SECRET)
    forms = [
        quopri.encodestring(B64_SECRET.encode("utf-8")).decode("ascii"),
        quopri.encodestring(B64_SECRET.encode("utf-8"), quotetabs=True).decode("ascii"),
        *(_qp(B64_SECRET, width) for width in (4, 5, 6, 7, 76)),
        _qp(B64_SECRET, 5).replace("\r\n", "\n"),  # bare LF line ends
        re.sub("=[0-9A-F]{2}", lambda m: m.group().lower(), _qp(B64_SECRET, 6)),  # hex
        # A soft break between the two bytes of "é" (=C3=\r\n=A9).
        "S3cr=C3=\r\n=A9=3E=3F=7E=25=7E=3F=3F",
        # RFC 2047's Q encoding of a mail header: "_" for a space.
        "=?utf-8?q?" + _qp(B64_SECRET.replace("?", " "), 80).replace("=20", "_") + "?=",
    ]
    for form in forms:
        secret = B64_SECRET.replace("?", " ") if form.startswith("=?") else B64_SECRET
        shown = Redactor(secret)(f"Subject: {form} end")
        lines = form.count("\n")
        assert shown == f"Subject: {form[:10] if form.startswith('=?') else ''}***" \
            f"{chr(10) * lines}{'?=' if form.startswith('=?') else ''} end", form
    # The name of the parameter in quoted-printable, with another password's value.
    assert redact("password=3Dsomething else") == "password=3D*** else"


def test_other_code_s_log_records_are_left_as_they_are(
    all_logs: pytest.LogCaptureFixture,
) -> None:
    # hpgfast redacts what it logs itself and hands the password to no other
    # logger; it does not rewrite the records of the program around it (no log
    # record factory, no filters): a process-wide hook would change every other
    # library's logging too. tests/test_logging.py proves no logger sees the password.
    with Emulator(password=SECRET, speed=None) as emu, secret_client(emu.url) as client:
        client.status(["1"])
        late = logging.getLogger(f"urllib3.newchild{uuid.uuid4().hex}")
        other = logging.getLogger(f"someapp{uuid.uuid4().hex}.deep.child")
        for logger in (late, other):
            logger.warning("own text: %s", "password=kept")
            assert not logger.filters
    assert logging.getLogRecordFactory() is logging.LogRecord
    mine = [r for r in all_logs.records if r.name in (late.name, other.name)]
    assert [r.getMessage() for r in mine] == ["own text: password=kept"] * 2
    assert_no_leak(all_logs, Collected())


# -- a server that echoes the request query in base64 --------------------------------------

#: A password with characters the query percent-encodes ("@", " ", "/", "+", "é"):
#: on the wire it is not its raw bytes, and neither is the base64 of an echo.
WIRE_CORE = uuid.uuid4().hex[:10]
WIRE_SECRET = f"P@ss w0rd/+é{WIRE_CORE}"
#: Every form the password takes in a query, as the codec writes it and otherwise.
WIRE_FORMS = {
    WIRE_SECRET,
    quote(WIRE_SECRET, safe=""),
    quote(WIRE_SECRET, safe="").lower(),
    quote_plus(WIRE_SECRET, safe=""),
    quote(WIRE_SECRET),
}
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{8,}")


def wire_leaks(text: str) -> list[str]:
    """The forms of ``WIRE_SECRET`` in ``text``, as such or in any base64 run of it,
    decoded at each of its alignments and in either alphabet."""
    found = [form for form in WIRE_FORMS | {WIRE_CORE} if form in text]
    for token in _B64_TOKEN.findall(text):
        token = token.replace("-", "+").replace("_", "/")
        for skip in range(4):
            part = token[skip:]
            part = part[: len(part) - len(part) % 4]
            try:
                decoded = base64.b64decode(part).decode("latin-1")
            except ValueError:
                continue
            found += [f"base64 of {form!r}" for form in WIRE_FORMS if form in decoded]
            if WIRE_CORE in decoded:
                found.append("base64 of the password's core")
    return found


class Base64EchoHandler(http.server.BaseHTTPRequestHandler):
    """``error-bad-request;echo <base64(query)>``, as a platform that quotes the
    request it refused.

    The path says how: ``/<status>/<pad>/<alphabet>/...``; ``pad`` bytes go before
    the query (so the password lands at each base64 alignment) and ``alphabet`` is
    ``std`` or ``url``.
    """

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        status, pad, alphabet = path.split("/")[1:4]
        echoed = b"x" * int(pad) + (query.encode("ascii") or body)
        encode = base64.urlsafe_b64encode if alphabet == "url" else base64.b64encode
        data = b"error-bad-request;echo " + encode(echoed) + b"\n"
        self.send_response(int(status))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server's own lines hold the query: not the client's doing


@pytest.fixture(scope="module")
def base64_echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Base64EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_wire_leaks_sees_the_base64_of_the_query() -> None:
    # The detector itself: an unredacted echo is found at every alignment.
    query = f"login=C&password={quote(WIRE_SECRET, safe='')}&x=1".encode()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            assert wire_leaks(encode(b"x" * pad + query).decode())


@pytest.mark.parametrize("status", ["200", "500"])
@pytest.mark.parametrize("alphabet", ["std", "url"])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_no_leak_when_the_server_echoes_the_query_in_base64(
    base64_echo_server: str,
    all_logs: pytest.LogCaptureFixture,
    collected: Collected,
    status: str,
    alphabet: str,
    pad: int,
) -> None:
    logging.getLogger().setLevel(logging.DEBUG)  # every logger, at DEBUG
    url = f"{base64_echo_server}/{status}/{pad}/{alphabet}/hpg/"
    with Client(url, "CLIENT", WIRE_SECRET, default_subject="S", retries=1, backoff=0.0) as c:
        for call in (lambda: c.send(messages(3)), lambda: c.status(["1", "2"])):
            try:
                collected.results(call())
            except HPGError as exc:
                collected.exception(exc)
                collected.results(getattr(exc, "results", []))
    assert [r for r in all_logs.records if r.levelno >= logging.WARNING], "no failure logged"
    assert any("echo " in text for text in collected.texts), "the echo never got through"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in all_logs.records:
        assert not wire_leaks(formatter.format(record)), record
        assert not wire_leaks(repr(record.args)), record
    for text in collected.texts:
        assert not wire_leaks(text), text


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("status", ["200", "500", "400"])
def test_no_leak_of_the_base64_query_on_the_command_line(
    base64_echo_server: str, tmp_path: Any, status: str
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")
    } | {"HPGFAST_PASSWORD": WIRE_SECRET, "TMPDIR": str(tmp_path)}
    results = tmp_path / "results.csv"
    done = subprocess.run(
        [
            sys.executable, "-m", "hpgfast", "-vv", "send",
            "--url", f"{base64_echo_server}/{status}/1/std/hpg/", "--login", "CLIENT",
            "--timeout", "5", "--to", "79031234567", "--text", "hi", "--subject", "S",
            "--results", str(results),
        ],
        env=env, capture_output=True, text=True, timeout=60,
    )
    shown = done.stdout + done.stderr
    assert " DEBUG " in done.stderr, done.stderr  # -vv logged at DEBUG
    assert done.returncode != 0, shown  # the echo is a failure
    assert "echo " in shown, shown  # the echo was shown, masked
    assert not wire_leaks(shown), shown
    if results.exists():  # a refused request (400) ends before any result is written
        assert not wire_leaks(results.read_text(encoding="utf-8"))


def test_the_redactor_masks_a_password_split_across_two_lines() -> None:
    # An echo cut in two (one piece per reply line, or per quoted line): both pieces
    # go when both are there, in order; one piece alone, or a short one, stays.
    redact = Redactor("P@ssw0rd")
    shown = redact("lines that match nothing sent: 'error-x;P@ss;'; 'error-y;w0rd;'")
    assert shown == "lines that match nothing sent: 'error-x;***;'; 'error-y;***;'"
    assert redact("error-x;P%40ss\nerror-y;w0rd\n") == "error-x;***\nerror-y;***\n"
    for kept in ("a P@ss here", "w0rd then P@ss", "P@s and sw0rd", "Ps and sw0rd"):
        assert redact(kept) == kept
    long = Redactor(WIRE_SECRET)
    head, tail = WIRE_SECRET[:7], WIRE_SECRET[7:]
    assert long(f"x;{head}\ny;{tail}\n") == "x;***\ny;***\n"
    # A password too short to cut into two pieces of four is never looked for so.
    assert Redactor("abcdefg")("abc d efg abcd efg") == "abc d efg abcd efg"


def test_no_leak_when_the_server_echoes_the_password_over_two_lines(
    all_logs: pytest.LogCaptureFixture, collected: Collected
) -> None:
    head, tail = WIRE_SECRET[:7], WIRE_SECRET[7:]

    def reply(line: bytes) -> bytes:
        body = f"error-x;{head}\nerror-y;{tail}\n".encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body))

    listener, thread = serve(reply)
    port = listener.getsockname()[1]
    try:
        url = f"http://127.0.0.1:{port}/hpg/"
        with Client(url, "CLIENT", WIRE_SECRET, default_subject="S", retries=1,
                    backoff=0.0) as client:
            try:
                collected.results(client.send(messages(1)))
            except HPGError as exc:
                collected.exception(exc)
    finally:
        stop(listener, thread)
    assert any("error-x;***" in text for text in collected.texts), collected.texts
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    shown = [formatter.format(r) for r in all_logs.records] + collected.texts
    assert any("error-y;***" in text for text in shown)
    for text in shown:
        assert head not in text and tail not in text, text


# -- a short or numeric password: masking never rewrites ids, codes or statuses ----------


@pytest.mark.parametrize("tail", ["", "a note that ends in a soft line break=\r\n"])
@pytest.mark.parametrize("password", ["1001", "ok", "delivered"])
def test_a_short_password_masks_free_text_but_never_ids_codes_or_statuses(
    password: str, tail: str
) -> None:
    # Lines whose ids, codes and statuses hold (or are) the password, with free text
    # and a field read tolerantly (so that .raw is kept): the free text and .raw are
    # masked wherever the password stands in them; the fields outcomes depend on are not.
    # A line after them that ends in "=" (a soft line break of quoted-printable) makes
    # the client look for an echo of the password over lines, in the whole body.
    cids = ["1001", "c1001okdelivered"]
    pids = ["1001", "ok1001delivered"]
    send_body = (
        f"ok;{cids[0]};{pids[0]};code 1001 ok delivered \xff\n"
        f"ok;{cids[1]};{pids[1]};2\n{tail}"
    ).encode("latin-1")
    status_body = (
        f"ok;{pids[0]};undelivered;2024.01.02 03:04:05;code 1001 ok delivered \xff\n"
        f"ok;{pids[1]};delivered;2024-01-02T03:04:05Z;\n{tail}"
    ).encode("latin-1")
    with Emulator(password=password, speed=None) as emu:
        with Client(emu.url, emu.login, password, default_subject="S", retries=0) as client:
            emu.faults.raw_reply = Fault(rate=1.0, body=send_body)
            sent = client.send([Message("79031234567", "a", client_id=cids[0]),
                                Message("79031234568", "b", client_id=cids[1])])
            emu.faults.raw_reply = Fault(rate=1.0, body=status_body)
            asked = client.status(pids)
        assert sum(emu.requests.values()) == 2  # one SEND (never repeated), one STATUS
    assert [(r.code, r.client_id, r.provider_id) for r in sent] == [
        ("ok", cids[0], pids[0]), ("ok", cids[1], pids[1])
    ]
    assert [(r.code, r.provider_id, r.status) for r in asked] == [
        ("ok", pids[0], "undelivered"), ("ok", pids[1], "delivered")
    ]
    assert asked[1].time is not None
    # The free text and the raw line are masked wherever the password stands in them.
    for text in (sent[0].extra, asked[0].reason):
        assert text is not None and password not in text and "***" in text, text
    for raw in (sent[0].raw, asked[0].raw):
        assert raw is not None and password.encode() not in raw, raw


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("password", ["ok", "1001", "accepted"])
def test_the_results_file_keeps_codes_and_ids_with_a_short_password(
    password: str, tmp_path: Any
) -> None:
    import csv
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": password, "TMPDIR": str(tmp_path),
    }
    results = tmp_path / "results.csv"
    with Emulator(password=password, speed=None) as emu:
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "send", "--url", emu.url, "--login", emu.login,
             "--to", "79031234567", "--text", "hi", "--subject", "S", "--json",
             "--results", str(results)],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert emu.requests["send"] == 1
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    with open(results, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["outcome"], r["code"], r["provider_id"], r["client_id"]) for r in rows] == [
        ("accepted", "ok", shown["provider_id"], shown["client_id"])
    ]


# -- a hostile tester's forms: UTF-16, invisible characters, hex dumps --------------------

#: The hostile tester's password: every character a URL or a form treats apart.
HOSTILE = "S3cr#t/Pw+x=Q"
#: What a reader does not see: the characters a text may hold between the
#: password's (NUL of UTF-16, zero-width ones, soft hyphen, BOM), and their escapes.
_INVISIBLE = re.compile(
    r"[\x00\xad\u200b-\u200f\u2060\ufeff]|\\+(?:x00|xad|u0000|u00ad|u200[b-f]|u2060|ufeff)",
    re.IGNORECASE,
)
_HOSTILE_RAW = HOSTILE.encode("utf-8")
#: The password percent-encoded, upper- and lower-case hex.
QUOTED = quote(HOSTILE, safe="")
QUOTED_LOWER = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), QUOTED)


def hostile_leaks(text: str) -> list[str]:
    """The password in ``text`` once every invisible character (or its escape) is
    taken out: raw (any run of four of its characters), percent-encoded (either hex
    case), or as a hex dump of its bytes (any case, spaces or colons between bytes)."""
    flat = _INVISIBLE.sub("", text)
    found = [HOSTILE[i : i + 4] for i in range(len(HOSTILE) - 3) if HOSTILE[i : i + 4] in flat]
    found += [form for form in (QUOTED, QUOTED_LOWER, quote_plus(HOSTILE)) if form in flat]
    if _HOSTILE_RAW.hex() in re.sub("[ :]", "", flat).lower():
        found.append("hex dump")
    return found


def test_hostile_leaks_sees_every_form() -> None:
    # The detector itself: each form of the echo is found.
    for text in (
        HOSTILE, QUOTED, QUOTED_LOWER, "\u200b".join(HOSTILE), "\\x00".join(QUOTED),
        QUOTED.encode("utf-16-le").decode("utf-8"), _HOSTILE_RAW.hex().upper(),
        _HOSTILE_RAW.hex(":"), _HOSTILE_RAW.hex(" "),
    ):
        assert hostile_leaks(f"x {text} y"), text


#: Two messages whose client ids the hostile replies' SEND lines carry (c1, c2).
HOSTILE_MESSAGES = [Message("79031234567", "a", client_id="c1"),
                    Message("79031234568", "b", client_id="c2")]


def _run_hostile(
    url: str, all_logs: pytest.LogCaptureFixture, collected: Collected
) -> list[str]:
    """A SEND and a STATUS with the hostile password; every text and log is searched.
    Returns the results' free text and ``.raw``, searched too."""
    logging.getLogger().setLevel(logging.DEBUG)  # every logger, at DEBUG
    free: list[str] = []
    with Client(url, "CLIENT", HOSTILE, default_subject="S", retries=1, backoff=0.0) as c:
        collected.texts += [repr(c)]
        for call in (lambda: c.send(HOSTILE_MESSAGES), lambda: c.status(["p1", "p2"])):
            try:
                results = call()
            except HPGError as exc:
                collected.exception(exc)
                results = getattr(exc, "results", [])
            collected.results(results)
            for result in results:
                for name in ("extra", "reason", "raw", "description"):
                    value = getattr(result, name, None)
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "surrogateescape")
                    if value is not None:
                        free.append(str(value))
    collected.texts += free
    assert [r for r in all_logs.records if r.levelno >= logging.WARNING], "no failure logged"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in all_logs.records:
        assert not hostile_leaks(formatter.format(record)), formatter.format(record)
        assert not hostile_leaks(repr(record.args)), record
    assert collected.texts
    for text in collected.texts:
        assert not hostile_leaks(text), text
    return free


@pytest.mark.parametrize("status", [b"500 Internal Server Error", b"200 OK"])
@pytest.mark.parametrize("charset", [None, "utf-16"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_no_leak_when_a_gateway_echoes_the_request_line_in_utf16(
    all_logs: pytest.LogCaptureFixture,
    collected: Collected,
    status: bytes,
    charset: str | None,
    encoding: str,
) -> None:
    # A gateway that echoes the request line (the percent-encoded password in it) in
    # UTF-16, little or big endian, with a BOM ("utf-16") or without: read as UTF-8,
    # the text has a NUL between every two characters.
    def reply(line: bytes) -> bytes:
        text = line.decode("latin-1").strip()
        # The query from the password on first: what an error shows of a body is cut.
        body = f"bad {text[text.index('password='):]}\nerror-x;{text}\n".encode(encoding)
        kind = b"text/plain" + (b"; charset=" + charset.encode() if charset else b"")
        return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" \
            b"Connection: close\r\n\r\n%s" % (status, kind, len(body), body)

    listener, thread = serve(reply)
    try:
        _run_hostile(f"http://127.0.0.1:{listener.getsockname()[1]}/C/x/", all_logs, collected)
    finally:
        stop(listener, thread)


#: Characters a text may hold unseen between the password's characters.
INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\xad", "\x00"]


@pytest.mark.parametrize("status", [500, 200])
@pytest.mark.parametrize("encode", ["raw", "percent", "percent-lower"])
@pytest.mark.parametrize("invisible", INVISIBLES, ids=[f"U+{ord(c):04X}" for c in INVISIBLES])
def test_no_leak_of_a_password_with_invisible_characters_between_its_own(
    all_logs: pytest.LogCaptureFixture, collected: Collected, status: int, encode: str,
    invisible: str,
) -> None:
    shown = {
        "raw": HOSTILE,
        "percent": QUOTED,
        "percent-lower": QUOTED_LOWER,
    }[encode]
    hidden = invisible.join(shown)
    # A 5xx description; on a 200, a SEND line's extra field (kept with .raw: the
    # \xff makes the field read tolerantly) and a line that is no HPG.
    if status == 500:
        body = f"Internal error: bad password '{hidden}'".encode()
    else:
        body = (f"ok;c1;p1;note {hidden} ".encode() + b"\xff\n"
                + f"ok;c2;p2;{hidden}\n{hidden}\n".encode())
    with Emulator(password=HOSTILE, speed=None) as emu:
        emu.faults.raw_reply = Fault(rate=1.0, status=status, body=body)
        free = _run_hostile(emu.url, all_logs, collected)
    if status == 200:  # .extra and .raw were there, masked
        assert sum("***" in text for text in free) >= 3, free


HEX = _HOSTILE_RAW.hex()


@pytest.mark.parametrize("status", [500, 200, 302])
@pytest.mark.parametrize(
    "dump",
    [HEX, HEX.upper(), _HOSTILE_RAW.hex(" "), _HOSTILE_RAW.hex(":").upper(),
     _HOSTILE_RAW.hex(":")],
    ids=["lower", "upper", "spaces", "colons-upper", "colons"],
)
def test_no_leak_of_a_hex_dump_of_the_password(
    all_logs: pytest.LogCaptureFixture, collected: Collected, status: int, dump: str
) -> None:
    headers = {}
    if status == 500:
        body = f"Internal error: auth failed, secret bytes {dump}".encode()
    elif status == 302:  # UnexpectedReply: its text, .body and .location
        body = f"<html>moved: token {dump}</html>".encode()
        headers = {"Location": f"https://elsewhere.test/login?t={dump.replace(' ', '')}"}
    else:
        body = (f"ok;c1;p1;dump {dump} ".encode() + b"\xff\n"
                + f"ok;c2;p2;{dump}\nbytes {dump}\n".encode())
    with Emulator(password=HOSTILE, speed=None) as emu:
        emu.faults.raw_reply = Fault(rate=1.0, status=status, body=body, headers=headers)
        free = _run_hostile(emu.url, all_logs, collected)
    if status == 302:
        assert any("UnexpectedReply" in text for text in collected.texts)
    if status == 200:  # .extra and .raw were there, masked
        assert sum("***" in text for text in free) >= 3, free


def test_the_redactor_sees_through_utf16_invisible_characters_and_hex() -> None:
    redact = Redactor(HOSTILE)
    for form in (HOSTILE, QUOTED, QUOTED_LOWER):
        for encoding in ("utf-16-le", "utf-16-be"):
            echoed = form.encode(encoding).decode("utf-8")
            assert "***" in redact(f"[{echoed}]"), echoed
            assert not hostile_leaks(redact(f"[{echoed}]")), echoed
            assert not hostile_leaks(redact(repr(echoed))), echoed
        for invisible in INVISIBLES:
            assert redact(f"<{invisible.join(form)}>") == "<***>", (form, invisible)
            assert redact(f"<{invisible}{form}{invisible}>") == f"<{invisible}***{invisible}>"
            # As an error shows it: the invisible characters escaped.
            escaped = ascii(invisible)[1:-1].join(form)
            assert not hostile_leaks(redact(escaped)), escaped
    # A password holding invisible characters: masked as given, without them (a
    # server dropped them), and with others between its characters.
    inner = Redactor("Pa\xadss\u200bw0rd")
    for text in ("Pa\xadss\u200bw0rd", "Passw0rd", "\x00".join("Passw0rd")):
        assert inner(f"[{text}]") == "[***]", text
    # A non-ASCII password in UTF-16, read as UTF-8 (U+FFFD for what is not) or as
    # Latin-1, and as a repr or an error escapes that.
    wide = Redactor(UNICODE_SECRET)
    for encoding in ("utf-16-le", "utf-16-be"):
        data = UNICODE_SECRET.encode(encoding)
        for text in (data.decode("utf-8", "replace"), data.decode("latin-1")):
            for shown in (wide(f"[{text}]"), wide(repr(text)), wide(ascii(text))):
                assert "***" in shown and not echo_leaks(shown), (encoding, shown)
    for dump in (HEX, HEX.upper(), _HOSTILE_RAW.hex(" "), _HOSTILE_RAW.hex(":"),
                 _HOSTILE_RAW.hex("-")):
        assert redact(f"dump {dump} end") == "dump *** end", dump
    # The hex of the password as the query carries it (percent-encoded) goes too.
    assert redact(f"line {QUOTED.encode().hex()} end") == "line *** end"
    # Short passwords: their hex is not looked for (short hex runs are everywhere).
    assert Redactor("abc")("id 616263 here") == "id 616263 here"
    # Linear time: a long text of invisible characters and near-matches.
    import time

    near = ("\u200b".join(HOSTILE[:-1]) + "\u200b") * 20000
    began = time.perf_counter()
    redact(near + " " + "00" * 100000)
    assert time.perf_counter() - began < 5


def _hostile_reply(kind: str, status: bytes) -> Callable[[bytes], bytes]:
    """A reply echoing the password: the request line in UTF-16-LE, the password with
    zero-width spaces between its characters, or a hex dump of it."""

    def reply(line: bytes) -> bytes:
        text = line.decode("latin-1").strip()
        query = text[text.index("password=") :]
        if kind == "utf16":
            body = f"bad {query}\n".encode("utf-16-le")
        elif kind == "invisible":
            body = f"bad password {chr(0x200B).join(QUOTED)}\n".encode()
        else:
            body = f"bad password {_HOSTILE_RAW.hex(':')}\n".encode()
        return b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" \
            b"Connection: close\r\n\r\n%s" % (status, len(body), body)

    return reply


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("status", [b"500 Internal Server Error", b"200 OK"])
@pytest.mark.parametrize("kind", ["utf16", "invisible", "hex"])
def test_the_command_line_shows_no_hostile_echo(
    tmp_path: Any, kind: str, status: bytes
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": HOSTILE, "TMPDIR": str(tmp_path),
    }
    listener, thread = serve(_hostile_reply(kind, status))
    results = tmp_path / "results.csv"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "-vv", "send",
             "--url", f"http://127.0.0.1:{listener.getsockname()[1]}/C/x/",
             "--login", "CLIENT", "--timeout", "5", "--to", "79031234567", "--text", "hi",
             "--subject", "S", "--results", str(results)],
            env=env, capture_output=True, text=True, timeout=60,
        )
    finally:
        stop(listener, thread)
    shown = done.stdout + done.stderr
    assert " DEBUG " in done.stderr and done.returncode != 0, shown
    assert "bad" in _INVISIBLE.sub("", shown), shown  # the echo was shown, masked
    assert not hostile_leaks(shown), shown
    if results.exists():
        assert not hostile_leaks(results.read_text(encoding="utf-8"))
