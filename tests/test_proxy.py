"""Through a forward proxy: ``proxy=``, the environment's proxies, ``NO_PROXY``,
``trust_env``, a proxy that refuses, and the proxy's credentials never shown.

A real forward proxy on loopback (``forward_proxy.ForwardProxy``: CONNECT and
absolute-form GET, counting what it saw) in front of the emulator, over both
clients; HTTPS with real certificates (trustme).
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import trustme

from forward_proxy import ForwardProxy
from hpgfast import Client, ConnectError, Message, ProxyError, Settings
from hpgfast.emulator import Emulator
from ledger_checks import assert_truthful

pytestmark = pytest.mark.usefixtures("transport")

PLATFORM_PW = f"Pf{uuid.uuid4().hex}"
PROXY_USER = "proxyuser"
PROXY_CORE = uuid.uuid4().hex
PROXY_PW = f"Xq{PROXY_CORE}é/@: %"
#: The proxy's URL with its credentials, as a user writes it (percent-encoded).
PROXY_CREDENTIALS = f"{PROXY_USER}:{quote(PROXY_PW, safe='')}"


def proxy_forms() -> set[str]:
    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PW}".encode()).decode()
    alone = base64.b64encode(PROXY_PW.encode()).decode()
    return {
        PROXY_PW,
        PROXY_CORE,
        quote(PROXY_PW, safe=""),
        quote(PROXY_PW),
        quote_plus(PROXY_PW),
        quote(PROXY_PW, safe="").lower(),
        basic,
        basic[4:-4],
        alone[:-4],
    }


def platform_forms() -> set[str]:
    return {PLATFORM_PW, quote(PLATFORM_PW), "password="}


def leaks(text: str, forms: set[str]) -> list[str]:
    return [form for form in forms if form in text]


def messages(n: int) -> list[Message]:
    return [Message(f"7903{i:07d}", f"proxied {i} {uuid.uuid4().hex[:6]}") for i in range(n)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy of the machine's (any case), no CGI."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ca = trustme.CA()
    where = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {k: str(where / f"{k}.pem") for k in ("chain", "key", "ca")}
    cert.private_key_and_cert_chain_pem.write_to_path(files["chain"])
    cert.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    return files


@pytest.fixture
def https_emu(tls: dict[str, str]) -> Iterator[Emulator]:
    with Emulator(certfile=tls["chain"], keyfile=tls["key"], password=PLATFORM_PW) as emu:
        yield emu


@pytest.fixture
def http_emu() -> Iterator[Emulator]:
    with Emulator(password=PLATFORM_PW) as emu:
        yield emu


def client_for(emu: Emulator, tls: dict[str, str], **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.0)
    if emu.url.startswith("https"):
        kw.setdefault("ca_certs", tls["ca"])
    return Client(emu.url, emu.login, PLATFORM_PW, **kw)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "proxy" in r.getMessage()]


# -- https: through CONNECT ------------------------------------------------------------


def test_https_goes_through_the_environments_proxy(
    https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        sent = messages(7)
        with client_for(https_emu, tls, max_batch=2) as client:
            assert client.settings.proxy_route is not None
            results = client.send(sent)
            assert [r.code for r in results] == ["ok"] * 7
            assert client.status([results[0].provider_id])[0].ok
        # One tunnel (kept alive) carried every request; the platform saw each once.
        assert proxy.methods() == ["CONNECT"]
        assert proxy.requests[0][1] == f"127.0.0.1:{https_emu.port}"
        assert https_emu.requests["send"] == 4 and https_emu.requests["status"] == 1
        assert_truthful(https_emu, sent, results)
        # TLS end to end: the proxy saw no password, no query, in the clear.
        assert not leaks(proxy.saw().decode("latin-1"), platform_forms())
    assert not warnings_of(caplog)  # https: nothing to warn about


def test_a_tunnel_per_connection_at_concurrency(
    https_emu: Emulator, tls: dict[str, str]
) -> None:
    with ForwardProxy() as proxy:
        sent = messages(40)
        with client_for(https_emu, tls, max_batch=2, concurrency=4, proxy=proxy.url) as client:
            results = client.send(sent)
        assert [r.code for r in results] == ["ok"] * 40
        assert 1 <= proxy.methods().count("CONNECT") <= 4
        assert https_emu.requests["send"] == 20
        assert_truthful(https_emu, sent, results)


def test_no_proxy_bypasses_it(
    https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        with client_for(https_emu, tls) as client:
            assert client.settings.proxy_route is None
            assert [r.code for r in client.send(messages(3))] == ["ok"] * 3
        assert proxy.requests == []
        assert https_emu.requests["send"] == 1


@pytest.mark.parametrize("where", ["proxy=", "HTTPS_PROXY"])
def test_a_proxy_without_a_scheme_is_an_http_proxy(
    where: str, https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "host:port", as urllib, requests and curl take it: http://host:port.
    caplog.set_level(logging.DEBUG)
    with ForwardProxy(auth=(PROXY_USER, PROXY_PW)) as proxy:
        bare = f"{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"
        kw: dict[str, Any] = {}
        if where == "proxy=":
            kw["proxy"] = bare
        else:
            monkeypatch.setenv("HTTPS_PROXY", bare)
        sent = messages(3)
        with client_for(https_emu, tls, **kw) as client:
            route = client.settings.proxy_route
            assert route is not None
            assert route.shown == f"http://***@127.0.0.1:{proxy.port}"
            results = client.send(sent)
            texts = [repr(client), repr(client.settings)]
        assert [r.code for r in results] == ["ok"] * 3
        assert proxy.methods() == ["CONNECT"]
        assert_truthful(https_emu, sent, results)
    texts += [logging.Formatter("%(message)s").format(r) for r in caplog.records]
    for text in texts:
        assert not leaks(text, proxy_forms() | {PLATFORM_PW}), text


@pytest.mark.parametrize("value", ["proxy", "socks5://127.0.0.1:1080"])
def test_all_proxy_is_not_used(
    value: str, https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        url = proxy.url if value == "proxy" else value
        for name in ("ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, url)
        with client_for(https_emu, tls, trust_env=True) as client:
            assert client.settings.proxy_route is None
            assert [r.code for r in client.send(messages(2))] == ["ok"] * 2
        assert proxy.requests == []
        assert https_emu.requests["send"] == 1


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_no_proxy_with_a_port_bypasses_it_as_urllib_does(
    host: str, https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    url = https_emu.url.replace("127.0.0.1", host)
    netloc = f"{host}:{https_emu.port}"
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        # Another port of the same host: urllib goes through the proxy, and so do we.
        monkeypatch.setenv("NO_PROXY", f"{host}:{https_emu.port + 1}")
        assert not urllib.request.proxy_bypass_environment(netloc)  # type: ignore[attr-defined]
        with Client(url, https_emu.login, PLATFORM_PW, ca_certs=tls["ca"],
                    default_subject="Shop") as client:
            assert client.settings.proxy_route is not None
            assert [r.code for r in client.send(messages(2))] == ["ok"] * 2
        assert proxy.methods() == ["CONNECT"]
        # This port: urllib bypasses the proxy, and so do we.
        monkeypatch.setenv("NO_PROXY", f"example.test,{netloc}")
        assert urllib.request.proxy_bypass_environment(netloc)  # type: ignore[attr-defined]
        with Client(url, https_emu.login, PLATFORM_PW, ca_certs=tls["ca"],
                    default_subject="Shop") as client:
            assert client.settings.proxy_route is None
            assert [r.code for r in client.send(messages(3))] == ["ok"] * 3
        assert proxy.methods() == ["CONNECT"]  # no second one
        assert https_emu.requests["send"] == 2


def test_trust_env_false_ignores_the_environment(
    https_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("https_proxy", proxy.url)
        with client_for(https_emu, tls, trust_env=False) as client:
            assert [r.code for r in client.send(messages(2))] == ["ok"] * 2
        assert proxy.requests == []


def test_the_providers_certificate_is_still_checked(
    https_emu: Emulator, tls: dict[str, str]
) -> None:
    other = trustme.CA()
    with ForwardProxy() as proxy:
        ca = os.path.join(os.path.dirname(tls["ca"]), "other.pem")
        other.cert_pem.write_to_path(ca)
        with client_for(https_emu, tls, ca_certs=ca, proxy=proxy.url) as client:
            with pytest.raises(Exception) as info:
                client.send(messages(2))
        assert type(info.value).__name__ == "TLSError"
        assert [r.code for r in info.value.results] == ["not-sent"] * 2  # type: ignore[attr-defined]
        assert proxy.methods() == ["CONNECT"]
        assert https_emu.requests["send"] == 0


# -- http: only when asked ---------------------------------------------------------------


def test_http_ignores_the_environments_proxy(
    http_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with client_for(http_emu, tls) as client:
            assert [r.code for r in client.send(messages(3))] == ["ok"] * 3
        assert proxy.requests == []
    assert not warnings_of(caplog)


def test_http_uses_it_with_trust_env_and_warns_once(
    http_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        sent = messages(6)
        with client_for(http_emu, tls, trust_env=True, max_batch=2) as client:
            results = client.send(sent[:4])
            results += client.send(sent[4:])
        assert [r.code for r in results] == ["ok"] * 6
        assert proxy.methods() == ["GET"] * 3
        target = proxy.requests[0][1]
        assert target.startswith(f"http://127.0.0.1:{http_emu.port}/")  # absolute form
        assert http_emu.requests["send"] == 3
        assert_truthful(http_emu, sent, results)
    warned = warnings_of(caplog)
    assert len(warned) == 1, warned
    assert "sees the password" in warned[0].getMessage()
    assert PLATFORM_PW not in warned[0].getMessage()


def test_http_under_cgi_never_takes_http_proxy(
    http_emu: Emulator, tls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CGI request's "Proxy:" header arrives as HTTP_PROXY: urllib ignores it there.
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with client_for(http_emu, tls, trust_env=True) as client:
        assert client.settings.proxy_route is None
        assert [r.code for r in client.send(messages(1))] == ["ok"]


def test_an_explicit_proxy_for_http(
    http_emu: Emulator, tls: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with ForwardProxy(auth=(PROXY_USER, PROXY_PW)) as proxy:
        url = f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"
        sent = messages(4)
        with client_for(http_emu, tls, proxy=url, max_batch=2) as client:
            results = client.send(sent)
        assert [r.code for r in results] == ["ok"] * 4
        assert proxy.methods() == ["GET", "GET"]
        assert_truthful(http_emu, sent, results)
    assert len(warnings_of(caplog)) == 1


# -- a proxy that refuses ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_407_is_not_sent_and_stops_the_batch(
    scheme: str, https_emu: Emulator, http_emu: Emulator, tls: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = https_emu if scheme == "https" else http_emu
    with ForwardProxy(auth=(PROXY_USER, "another")) as proxy:
        url = f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"
        with client_for(emu, tls, proxy=url, max_batch=2, retries=3) as client:
            with pytest.raises(ProxyError) as info:
                client.send(messages(6))
            shown = [repr(client), repr(client.settings), str(client.settings)]
        error = info.value
        assert error.status == 407 and error.sent is False
        assert [r.code for r in error.results] == ["not-sent"] * 6  # type: ignore[attr-defined]
        # Stopped at the first refusal: never repeated, nothing reached the platform.
        assert len(proxy.requests) == 1
        assert emu.requests["send"] == 0 and len(emu.ledger) == 0
    texts = [
        *shown, str(error), repr(error), repr(error.args), repr(vars(error)),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        repr(pickle.loads(pickle.dumps(error))),
    ]
    texts += [repr(r) + str(getattr(r, "error", "")) for r in error.results]  # type: ignore[attr-defined]
    texts += [logging.Formatter("%(message)s").format(r) for r in caplog.records]
    forms = proxy_forms() | {PLATFORM_PW}
    for text in texts:
        assert not leaks(text, forms), text
    assert "***@127.0.0.1" in str(error)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_proxy_refusal_logs_one_debug_line_alike(
    scheme: str, transport: str, https_emu: Emulator, http_emu: Emulator,
    tls: dict[str, str], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hpgfast")
    emu = https_emu if scheme == "https" else http_emu
    with ForwardProxy(auth=(PROXY_USER, "another")) as proxy:
        url = f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"
        with client_for(emu, tls, proxy=url, max_batch=2) as client:
            with pytest.raises(ProxyError):
                client.send(messages(2))
    lines = [
        logging.Formatter("%(message)s").format(r) for r in caplog.records
        if r.name.startswith("hpgfast") and r.levelno == logging.DEBUG
        and r.getMessage().startswith("GET ")
    ]
    # One exchange line, the same for both clients: the request, then the refusal.
    assert len(lines) == 1, (transport, lines)
    line = lines[0]
    assert "407" in line and "refused to carry the request" in line, line
    assert "http://***@127.0.0.1" in line and "password=***" in line, line
    assert not leaks(line, proxy_forms() | {PLATFORM_PW}), line


def test_a_gateway_page_echoing_the_credentials_shows_neither_password(
    http_emu: Emulator, tls: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ForwardProxy(auth=(PROXY_USER, PROXY_PW), echo=True) as proxy:
        url = f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"
        with client_for(http_emu, tls, proxy=url) as client:
            results = client.send(messages(2))
        assert proxy.methods() == ["GET"]
    assert [r.code for r in results] == ["unknown"] * 2  # a 502: it may have gone on
    error = results[0].error
    assert "Proxy-Authorization" in str(error)  # the echo is shown, masked
    texts = [str(error), repr(error), repr(results)]
    texts += [logging.Formatter("%(message)s").format(r) for r in caplog.records]
    for text in texts:
        assert not leaks(text, proxy_forms() | {PLATFORM_PW}), text


def test_a_refused_connect_is_a_proxy_error(https_emu: Emulator, tls: dict[str, str]) -> None:
    with ForwardProxy(refuse=403) as proxy:
        with client_for(https_emu, tls, proxy=proxy.url) as client:
            with pytest.raises(ProxyError) as info:
                client.status(["1", "2"])
        assert info.value.status == 403
        assert [r.code for r in info.value.results] == ["not-sent"] * 2  # type: ignore[attr-defined]
        assert proxy.methods() == ["CONNECT"]  # a STATUS is not repeated either
        assert https_emu.requests["status"] == 0


def test_a_connect_reply_head_over_the_cap_is_a_proxy_error(
    https_emu: Emulator, tls: dict[str, str]
) -> None:
    # However the bytes arrive (the async client may get the whole head in one
    # read), a head over the cap is a refusal: not-sent, and not tried again.
    with ForwardProxy(huge_head=True) as proxy:
        with client_for(https_emu, tls, proxy=proxy.url) as client:
            with pytest.raises(ProxyError) as info:
                client.send(messages(3))
        assert "over" in str(info.value)
        assert [r.code for r in info.value.results] == ["not-sent"] * 3  # type: ignore[attr-defined]
        assert proxy.methods() == ["CONNECT"]


def test_an_unreachable_proxy_is_like_an_unreachable_platform(
    https_emu: Emulator, tls: dict[str, str]
) -> None:
    with ForwardProxy() as proxy:
        port = proxy.port  # closed once the block ends
    with client_for(https_emu, tls, proxy=f"http://{PROXY_CREDENTIALS}@127.0.0.1:{port}",
                    retries=1) as client:
        results = client.send(messages(3))
    assert [r.code for r in results] == ["not-sent"] * 3
    error = results[0].error
    assert isinstance(error, ConnectError) and not isinstance(error, ProxyError)
    assert "through the proxy http://***@127.0.0.1" in str(error)
    assert not leaks(str(error), proxy_forms())


# -- the setting itself -------------------------------------------------------------------


def test_the_proxy_setting_is_checked_and_masked() -> None:
    url = f"http://{PROXY_CREDENTIALS}@127.0.0.1:3128"
    settings = Settings("https://127.0.0.1:1/C/c/", "l", PLATFORM_PW, proxy=url)
    route = settings.proxy_route
    assert route is not None and (route.host, route.port) == ("127.0.0.1", 3128)
    for text in (repr(settings), repr(route), route.shown):
        assert not leaks(text, proxy_forms()), text
    for bad in (f"https://{PROXY_CREDENTIALS}@p:1", f"socks5://{PROXY_CREDENTIALS}@p:1",
                f"htp//{PROXY_CREDENTIALS}@p:1", f"http://{PROXY_CREDENTIALS}@p:1/path?x=1",
                f"http://{PROXY_CREDENTIALS}@p:99999999"):
        with pytest.raises(ValueError) as info:
            Settings("https://127.0.0.1:1/C/c/", "l", PLATFORM_PW, proxy=bad)
        assert info.value.__context__ is None
        assert "proxy" in str(info.value)
        assert not leaks(str(info.value), proxy_forms()), info.value
    with pytest.raises(TypeError):
        Settings("https://127.0.0.1:1/C/c/", "l", PLATFORM_PW, trust_env="yes")  # type: ignore[arg-type]


# -- the command line -----------------------------------------------------------------------


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("right", [True, False])
def test_the_command_line_proxy_flag(
    right: bool, https_emu: Emulator, tls: dict[str, str], tmp_path: Any
) -> None:
    with ForwardProxy(auth=(PROXY_USER, PROXY_PW if right else "another")) as proxy:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
            "HPGFAST_PASSWORD": PLATFORM_PW, "TMPDIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "hpgfast", "-vv", "send", "--url", https_emu.url,
             "--login", https_emu.login, "--ca-certs", tls["ca"],
             "--proxy", f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}",
             "--to", "79031234567", "--text", "hi", "--subject", "S", "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert proxy.methods() == ["CONNECT"]
    assert done.returncode == (0 if right else 2), done.stderr
    if right:
        assert '"ok"' in done.stdout
        assert https_emu.requests["send"] == 1
    else:
        assert "proxy" in done.stderr and "407" in done.stderr
        assert https_emu.requests["send"] == 0
    assert not leaks(done.stdout + done.stderr, proxy_forms() | {PLATFORM_PW})


@pytest.mark.sync_only  # the command line runs the blocking client
@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_the_command_line_warns_once_that_an_http_proxy_reads_the_password(
    verbose: list[str], http_emu: Emulator, tmp_path: Any
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")} | {
        "HPGFAST_PASSWORD": PLATFORM_PW, "TMPDIR": str(tmp_path),
    }
    common = ["--url", http_emu.url, "--login", http_emu.login]
    with ForwardProxy(auth=(PROXY_USER, PROXY_PW)) as proxy:
        via = ["--proxy", f"http://{PROXY_CREDENTIALS}@127.0.0.1:{proxy.port}"]
        runs = [
            subprocess.run(
                [sys.executable, "-m", "hpgfast", *verbose, *command],
                env=env, capture_output=True, text=True, timeout=60,
            )
            for command in (
                ["send", *common, *via, "--to", "79031234567", "--text", "hi", "--subject",
                 "S", "--json"],
                ["status", *common, *via, "1001"],
            )
        ]
        # Through the proxy, in the clear: the SEND once (never repeated), the STATUS
        # once or more (a STATUS may be asked again, as after a slow reply under load).
        targets = [target for method, target, _ in proxy.requests if method == "GET"]
        assert len(targets) == len(proxy.requests)
        assert sum("/send?" in t for t in targets) == 1
        assert sum("/status?" in t for t in targets) >= 1
    for done in runs:
        assert done.returncode == 0, done.stderr
        said = [line for line in done.stderr.splitlines() if "sees the password" in line]
        assert len(said) == 1, done.stderr  # by default, and once with -v too
        assert "proxy" in said[0] and "https://" in said[0]
        assert not leaks(done.stdout + done.stderr, proxy_forms() | {PLATFORM_PW})
    # No proxy: nothing to warn about.
    assert "sees the password" not in subprocess.run(
        [sys.executable, "-m", "hpgfast", "status", *common, "1001"],
        env=env, capture_output=True, text=True, timeout=60,
    ).stderr


def test_the_test_proxy_keeps_a_waiting_connection_through_a_collection() -> None:
    # Python 3.9's start_server keeps no reference to a connection's task: while it
    # waited for the origin's reply it was garbage, and a collection there left the
    # client waiting out its timeout (a CI flake of the trust_env test).
    origin = socket.create_server(("127.0.0.1", 0))

    def answer_late() -> None:
        conn, _ = origin.accept()
        with conn:
            conn.recv(65536)
            time.sleep(0.5)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=answer_late, daemon=True).start()
    with origin, ForwardProxy() as proxy, socket.create_connection(
        ("127.0.0.1", proxy.port), timeout=10
    ) as conn:
        port = origin.getsockname()[1]
        conn.sendall(f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.2)
        gc.collect()
        assert conn.recv(100).endswith(b"\r\n\r\nok")
