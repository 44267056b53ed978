"""hpgfast.Client against the emulator (and a few hand-made servers) on loopback.

No urllib3 mocks: every test makes real HTTP(S) exchanges. Faults live in
test_client_faults.py, secrets in test_client_secrets.py.
"""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
import urllib3

from hpgfast import (
    AccountError,
    AuthError,
    Client,
    Code,
    ConnectError,
    HTTPStatusError,
    Message,
    MessageError,
    MessageTooLarge,
    MessageTypeError,
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
    SendFailure,
    SendResult,
    StatusFailure,
    StatusResult,
    TLSError,
    UnexpectedReply,
    results_of,
)
from hpgfast._sample import standard_batch
from hpgfast.core import RequestFinished, RequestStarting, Subscriber
from hpgfast.emulator import Emulator, Fault
from ledger_checks import assert_truthful
from transports import interrupt_soon

# Every test runs over both clients (sync, async): see conftest.transport.
pytestmark = pytest.mark.usefixtures("transport")

LOGIN = "CLIENT"
PASSWORD = "P@ssw0rd"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=None) as emulator:
        yield emulator


def client_for(emulator: Emulator, **kw: Any) -> Client:
    kw.setdefault("default_subject", "Shop")
    kw.setdefault("backoff", 0.01)
    return Client(emulator.url, emulator.login, emulator.password, **kw)


def numbered(n: int, *, start: int = 0) -> list[Message]:
    """Messages with unique texts (Latin, Cyrillic, emoji) to find them in the ledger."""
    texts = ("Hello, you #{}", "Привет, мир №{}", "Доставка 🚚 {} 😊", "a+b=c & d;e %{}")
    return [
        Message(f"7903{i:07d}", texts[i % len(texts)].format(i)) for i in range(start, start + n)
    ]


# -- the basics ------------------------------------------------------------------------


def test_send_one_request_and_status(emu: Emulator) -> None:
    messages = numbered(20)
    with client_for(emu) as client:
        results = client.send(messages)
        assert [r.code for r in results] == [Code.OK] * 20
        ids = [r.client_id for r in results]
        # hpgfast's own clientIds: 20 characters of [0-9A-Za-z], one request prefix.
        assert all(len(cid) == 20 and cid.isalnum() and cid.isascii() for cid in ids)
        assert len({cid[:17] for cid in ids}) == 1 and len(set(ids)) == 20
        assert [e.client_id for e in emu.ledger] == ids  # what the platform was sent
        assert emu.requests["send"] == 1
        assert_truthful(emu, messages, results)

        ids = [r.provider_id for r in results]
        statuses = client.status([*ids, "123456789", ids[0]])
    assert [s.provider_id for s in statuses] == [*ids, "123456789", ids[0]]
    assert all(s.code == Code.OK and s.status in ("enqueued", "delayed") for s in statuses[:20])
    assert statuses[20].code == Code.ERROR_PROVIDER_ID_UNKNOWN
    assert statuses[21] == statuses[0]


def test_send_splits_by_size_and_count(emu: Emulator) -> None:
    messages = numbered(500)
    with client_for(emu, max_request_bytes=2048) as client:
        results = client.send(messages)
    requests = emu.requests["send"]
    assert requests > 500 * 30 // 2048
    assert all(r.ok for r in results)
    assert_truthful(emu, messages, results)

    with Emulator(speed=None) as other, client_for(other, max_batch=7) as client:
        results = client.send(messages)
        assert other.requests["send"] == -(-500 // 7)
        assert_truthful(other, messages, results)


@pytest.mark.parametrize("client_ids", [True, False])
def test_request_line_stays_within_max_request_bytes(client_ids: bool) -> None:
    # The emulator answers 414 to a request line longer than its limit, so every
    # request fitting is the proof.
    with Emulator(max_request_line=3000) as emu:
        messages = numbered(400)
        with client_for(emu, max_request_bytes=3000, client_ids=client_ids) as client:
            results = client.send(messages)
        assert all(r.ok for r in results)
    if client_ids:
        return
    # Without made ids the standard messages fill some request to the very byte: a
    # limit one byte under ours must fail.
    with Emulator(max_request_line=2999) as emu:
        with client_for(emu, max_request_bytes=3000, client_ids=False) as client:
            with pytest.raises(RequestTooLarge) as info:
                client.send(numbered(400))
        assert info.value.status == 414
        assert len(emu.ledger) == 0
        results = info.value.results  # type: ignore[attr-defined]
        assert {r.code for r in results} == {Code.NOT_SENT}


def test_replies_matched_by_client_id_not_order() -> None:
    messages = [m._replace(client_id=f"id-{i}") for i, m in enumerate(numbered(300))]
    messages[5] = messages[5]._replace(client_id=None)  # falls back to its index
    with (
        Emulator(reply_order="shuffled", seed=7) as emu,
        client_for(emu, max_request_bytes=4096) as client,
    ):
        results = client.send(messages)
        statuses = client.status([r.provider_id for r in results])
    assert all(r.ok for r in results)
    for i, (message, result) in enumerate(zip(messages, results)):
        if i != 5:
            assert result.client_id == message.client_id
    assert_truthful(emu, messages, results)
    assert [s.provider_id for s in statuses] == [r.provider_id for r in results]


def test_concurrency_keeps_input_order() -> None:
    messages = numbered(3000)
    with Emulator(reply_order="shuffled", seed=3, latency=0.002) as emu:
        with client_for(emu, concurrency=4, max_request_bytes=2048) as client:
            results = client.send(messages)
            assert emu.requests["send"] > 50
            statuses = client.status([r.provider_id for r in results])
        assert_truthful(emu, messages, results)
    assert [s.provider_id for s in statuses] == [r.provider_id for r in results]


def test_platform_rejections_pass_through(emu: Emulator) -> None:
    messages = [
        Message("79031234567", "fine"),
        Message("12", "bad address"),
        Message("79031234568", "bad subject", "way too long a subject"),
    ]
    with client_for(emu) as client:
        results = client.send(messages)
    assert [r.code for r in results] == [
        Code.OK,
        Code.ERROR_ADDRESS_FORMAT,
        Code.ERROR_SUBJECT_FORMAT,
    ]
    assert_truthful(emu, messages, results)


def test_params_reach_the_platform(emu: Emulator) -> None:
    messages = [Message("79031234567", "hi", params={"ttl": "60"})]
    with client_for(emu, extra_params={"priority": "high"}) as client:
        client.send(messages, params=[("sendTime", "2030.01.01 10:00:00")])
    (entry,) = emu.ledger
    assert entry.params == {"priority": "high", "sendTime": "2030.01.01 10:00:00", "ttl": "60"}


def test_request_level_rejection_is_not_sent_with_the_platform_code(emu: Emulator) -> None:
    # A parameter given twice is a syntax error of the whole request: the platform
    # processed none of it, so every message is not-sent, with the code on its error.
    with client_for(emu, extra_params={"priority": "high"}) as client:
        results = client.send(numbered(3), params={"priority": "low"})
    assert [r.code for r in results] == [Code.NOT_SENT] * 3
    assert all(isinstance(r, SendFailure) for r in results)
    assert isinstance(results[0].error, RequestRejected)  # type: ignore[attr-defined]
    assert results[0].error.code == Code.ERROR_SYNTAX  # type: ignore[attr-defined]
    assert len(emu.ledger) == 0


def test_wrong_password_raises_auth_error(emu: Emulator) -> None:
    with Client(emu.url, LOGIN, "wrong", default_subject="Shop") as client:
        with pytest.raises(AuthError) as info:
            client.send(numbered(3))
        assert info.value.code == Code.ERROR_AUTH
        results = info.value.results  # type: ignore[attr-defined]
        # Not processed: not-sent, with the platform's code on each result's error.
        assert [r.code for r in results] == [Code.NOT_SENT] * 3
        assert all(r.error.code == Code.ERROR_AUTH for r in results)
        with pytest.raises(AuthError):
            client.status(["1001"])
    assert len(emu.ledger) == 0


def test_auth_failure_mid_batch_keeps_earlier_results() -> None:
    messages = numbered(2000)
    # 400 requests of at least 2 ms each: the password changes well before the end.
    with Emulator(latency=0.002) as emu, client_for(emu, max_batch=5) as client:
        changer = threading.Thread(target=_change_password_soon, args=(emu,))
        changer.start()
        try:
            with pytest.raises(AuthError) as info:
                client.send(messages)
        finally:
            changer.join()
    results = info.value.results  # type: ignore[attr-defined]
    codes = {r.code for r in results}
    assert Code.OK in codes and Code.NOT_SENT in codes
    assert codes <= {Code.OK, Code.NOT_SENT}
    assert any(isinstance(getattr(r, "error", None), AuthError) for r in results)
    assert_truthful(emu, messages, results)


def _change_password_soon(emulator: Emulator) -> None:
    for _ in range(2000):
        if len(emulator.ledger) >= 20:
            break
        threading.Event().wait(0.001)
    emulator.password = "changed"


def test_password_param_named_pass() -> None:
    with Emulator(password_param="pass") as emu:
        with client_for(emu, password_param="pass") as client:
            results = client.send(numbered(5))
        assert all(r.ok for r in results)
        assert len(emu.ledger) == 5
        with client_for(emu) as client, pytest.raises(AuthError):
            client.send(numbered(1))


def test_quote_brackets_and_date_styles() -> None:
    with Emulator(date_style="dashes") as emu, client_for(emu, quote_brackets=True) as client:
        results = client.send(numbered(5))
        assert all(r.ok for r in results)
        statuses = client.status([r.provider_id for r in results])
    assert all(s.ok and s.time is not None for s in statuses)


# -- bad input: raised before anything is sent -------------------------------------------


def test_bad_message_deep_in_batch_raises_before_sending(emu: Emulator) -> None:
    messages: list[Any] = numbered(5000)
    messages[4321] = Message("79031234567", 42)
    with client_for(emu, max_request_bytes=2048) as client:
        with pytest.raises(MessageTypeError) as info:
            client.send(messages)
        assert (info.value.index, info.value.field) == (4321, "text")
        messages[4321] = Message("79031234567", "x" * 10_000)
        with pytest.raises(MessageTooLarge) as too_large:
            client.send(messages)
        assert too_large.value.index == 4321
        with pytest.raises(MessageError):
            client.status(["1", ""])
    assert emu.requests["send"] == emu.requests["status"] == 0


def test_no_subject_and_no_default(emu: Emulator) -> None:
    with Client(emu.url, LOGIN, PASSWORD) as client, pytest.raises(MessageError) as info:
        client.send([Message("79031234567", "hi")])
    assert info.value.field == "subject"


def test_empty_batches(emu: Emulator) -> None:
    with client_for(emu) as client:
        assert client.send([]) == []
        assert client.status([]) == []
    assert emu.requests["send"] == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Client("ftp://example.com/", LOGIN, PASSWORD)
    with pytest.raises(ValueError):
        Client("http://example.com/a/b/?x=1", LOGIN, PASSWORD)
    with pytest.raises(ValueError):
        Client("http://example.com/a/b/", LOGIN, PASSWORD, max_request_bytes=50)
    with pytest.raises(ValueError):
        Client("http://example.com/a/b/", LOGIN, PASSWORD, concurrency=0)


def test_closed_client_refuses_work(emu: Emulator) -> None:
    client = client_for(emu)
    client.close()
    client.close()
    with pytest.raises(RuntimeError):
        client.send(numbered(1))


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_emulator(ca: trustme.CA, tmp_path: Any, **kw: Any) -> Emulator:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain = tmp_path / "chain.pem"
    key = tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    return Emulator(certfile=str(chain), keyfile=str(key), **kw)


def test_tls_with_the_providers_ca(ca: trustme.CA, tmp_path: Any) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with tls_emulator(ca, tmp_path) as emu:
        assert emu.url.startswith("https://")
        with client_for(emu, ca_certs=str(ca_file), max_request_bytes=2048) as client:
            messages = numbered(200)
            results = client.send(messages)
            assert all(r.ok for r in results)
            assert client.status([results[0].provider_id])[0].ok
        assert_truthful(emu, messages, results)


def test_tls_with_a_wrong_ca_fails_at_once(ca: trustme.CA, tmp_path: Any) -> None:
    other = trustme.CA()
    ca_file = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(ca_file))
    with tls_emulator(ca, tmp_path) as emu:
        with client_for(emu, ca_certs=str(ca_file)) as client:
            with pytest.raises(TLSError) as info:
                client.send(numbered(300), params=None)
            assert info.value.sent is False
            assert {r.code for r in info.value.results} == {Code.NOT_SENT}  # type: ignore[attr-defined]
            with pytest.raises(TLSError):
                client.status(["1001"])
        # No default trust store knows a trustme CA either.
        with client_for(emu) as client, pytest.raises(TLSError):
            client.send(numbered(1))
        assert emu.requests["send"] == 0


def test_tls_host_name_is_checked(tmp_path: Any) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("platform.example")
    chain = tmp_path / "chain.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    with Emulator(certfile=str(chain)) as emu:
        with client_for(emu, ca_certs=str(ca_file)) as client, pytest.raises(TLSError):
            client.send(numbered(1))


def test_tls_verification_can_be_turned_off(ca: trustme.CA, tmp_path: Any) -> None:
    with tls_emulator(ca, tmp_path) as emu:
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            client = client_for(emu, verify=False)
        with client:
            assert client.send(numbered(1))[0].ok


# -- retries -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_connect_refused_is_retried_then_not_sent() -> None:
    url = f"http://127.0.0.1:{free_port()}/CLIENT/connectorX/"
    with Client(url, LOGIN, PASSWORD, default_subject="S", retries=2, backoff=0.01) as client:
        results = client.send(numbered(100), params=None)
        statuses = client.status(["1", "2"])
    assert {r.code for r in results} == {Code.NOT_SENT}
    error = results[0].error  # type: ignore[attr-defined]
    assert isinstance(error, ConnectError) and error.sent is False
    assert {s.code for s in statuses} == {Code.NOT_SENT}
    assert isinstance(statuses[0], StatusFailure)


def test_connect_refused_then_platform_comes_up() -> None:
    port = free_port()
    started: list[Emulator] = []

    def start_later() -> None:
        threading.Event().wait(0.15)
        started.append(Emulator(port=port))

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/CLIENT/connectorX/"
        with Client(url, LOGIN, PASSWORD, default_subject="S", retries=8, backoff=0.05) as c:
            messages = numbered(10)
            results = c.send(messages)
    finally:
        thread.join()
    with started[0] as emu:
        assert all(r.ok for r in results)
        assert emu.requests["send"] == 1
        assert_truthful(emu, messages, results)


@pytest.mark.sync_only  # urllib3's pool: hpgfast.Client's own machinery
def test_urllib3_pool_internals_are_there() -> None:
    # The client's thin path relies on these two methods of urllib3's pool.
    assert callable(urllib3.HTTPConnectionPool._get_conn)
    assert callable(urllib3.HTTPConnectionPool._put_conn)


# -- hand-made servers: replies the emulator never gives ------------------------------------


class RawServer:
    """A one-trick HTTP server: answers every request with ``reply(request_line)``."""

    def __init__(self, reply: Callable[[bytes, socket.socket], None]) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/CLIENT/connectorX/"
        self.requests: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    def _loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, sock.makefile("rb") as rfile:
            try:
                while True:
                    line = rfile.readline(1 << 20)
                    if not line:
                        return
                    while rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    self.requests.append(line)
                    self._reply(line, sock)
            except OSError:
                return

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept(); shutdown() does.
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._accept.join()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_reply(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status.encode(),
        len(body),
        extra,
        body,
    )


def test_missing_and_stray_lines(caplog: pytest.LogCaptureFixture) -> None:
    def reply(line: bytes, sock: socket.socket) -> None:
        sock.sendall(http_reply(b"ok;2;1003\nok;0;1001\nok;0;1009\nok;zz;1010\n"))

    with RawServer(reply) as server:
        with Client(server.url, LOGIN, PASSWORD, default_subject="S", client_ids=False) as client:
            results = client.send(numbered(4))
    # Two lines for message 0: nobody can say which is true, so unknown, both kept.
    assert [r.code for r in results] == [Code.UNKNOWN, Code.UNKNOWN, Code.OK, Code.UNKNOWN]
    assert results[2].provider_id == "1003"
    conflict = str(results[0].error)  # type: ignore[attr-defined]
    assert "ok;0;1001" in conflict and "ok;0;1009" in conflict
    # The line that matched nothing is kept on the unmatched messages' error.
    assert isinstance(results[1].error, ProtocolError)  # type: ignore[attr-defined]
    assert "ok;zz;1010" in str(results[1].error)  # type: ignore[attr-defined]
    assert any("match no item" in r.getMessage() for r in caplog.records)
    assert len(server.requests) == 1


def test_garbled_reply_is_unknown_and_stops_send_and_status_unrepeated() -> None:
    # A reply with no HPG line is not the platform's (docs/outcomes.md): the batch
    # stops there, and neither a SEND nor a STATUS meets it again.
    def reply(line: bytes, sock: socket.socket) -> None:
        sock.sendall(http_reply(b"<html>oops</html>\n"))

    with RawServer(reply) as server:
        with Client(server.url, LOGIN, PASSWORD, default_subject="S", retries=2, backoff=0) as c:
            with pytest.raises(UnexpectedReply) as sent:
                c.send(numbered(3))
            assert len(server.requests) == 1
            with pytest.raises(UnexpectedReply) as asked:
                c.status(["1", "2"])
    results = sent.value.results  # type: ignore[attr-defined]
    statuses = asked.value.results  # type: ignore[attr-defined]
    assert {r.code for r in results} == {Code.UNKNOWN}
    assert {s.code for s in statuses} == {Code.UNKNOWN}
    assert len(server.requests) == 1 + 1


def test_reply_over_the_cap(emu: Emulator) -> None:
    messages = numbered(40)
    with client_for(emu, max_reply_bytes=100, retries=1, backoff=0) as client:
        results = client.send(messages)
        statuses = client.status(["1001", "1002", "1003", "1004", "1005", "1006"])
    assert {r.code for r in results} == {Code.UNKNOWN}
    assert "max_reply_bytes" in str(results[0].error)  # type: ignore[attr-defined]
    assert len(emu.ledger) == 40  # the platform took them: unknown was the truth
    assert emu.requests["send"] == 1
    assert {s.code for s in statuses} == {Code.UNKNOWN}
    assert emu.requests["status"] == 2


def test_never_ending_reply_is_a_protocol_error() -> None:
    def reply(line: bytes, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        chunk = b"ok;0;1001\n" * 1000
        while True:
            sock.sendall(chunk)

    with RawServer(reply) as server:
        with Client(server.url, LOGIN, PASSWORD, default_subject="S", max_reply_bytes=50_000) as c:
            (result,) = c.send(numbered(1))
    assert result.code == Code.UNKNOWN
    assert isinstance(result.error, ProtocolError)  # type: ignore[attr-defined]


def test_client_errors_from_a_gateway_raise() -> None:
    def reply(line: bytes, sock: socket.socket) -> None:
        sock.sendall(http_reply(b"no such connector", "404 Not Found"))

    with RawServer(reply) as server:
        with Client(server.url, LOGIN, PASSWORD, default_subject="S") as client:
            with pytest.raises(HTTPStatusError) as info:
                client.send(numbered(2))
    assert info.value.status == 404
    assert info.value.description == "no such connector"


# -- records ------------------------------------------------------------------------------


def test_failure_records_compare_and_pickle() -> None:
    error = HTTPStatusError(500, "boom", "http://h/send?login=a&password=***&...")
    failure = SendFailure(Code.UNKNOWN, "0", None, error)
    assert failure == SendResult(Code.UNKNOWN, "0", None)
    assert failure.code == Code.UNKNOWN and not failure.ok
    copy = pickle.loads(pickle.dumps(failure))
    assert copy == failure and isinstance(copy.error, HTTPStatusError)
    assert "boom" in repr(failure)
    status = StatusFailure(Code.NOT_SENT, "1001", error=error)
    assert status == ("not-sent", "1001", None, None, None)
    assert pickle.loads(pickle.dumps(status)).error.status == 500


def test_hundred_thousand_messages_exactly_once() -> None:
    batch = list(standard_batch(100_000))
    # Every text unique, so the ledger can be checked text by text.
    batch = [m._replace(text=f"{m.text[:140]} #{i}") for i, m in enumerate(batch)]
    with Emulator(speed=None) as emu:
        with Client(emu.url, LOGIN, PASSWORD, max_request_bytes=8192) as client:
            results = client.send(batch)
        assert len(emu.ledger) == len(batch)
        assert all(r.ok for r in results)
        assert len({r.provider_id for r in results}) == len(batch)
        for message, result in zip(batch, results):
            entry = emu.ledger.by_provider_id(result.provider_id)
            assert entry is not None
            assert (entry.address, entry.subject, entry.text) == (
                message.address,
                message.subject,
                message.text,
            )
        assert emu.requests["send"] > 100_000 * 100 // 8192


def test_plain_tuples_and_generators(emu: Emulator) -> None:
    items = [("79031234567", "two fields"), ("79031234568", "three", "Shop"),
             ("79031234569", "four", None, "cid")]  # fmt: skip
    with client_for(emu) as client:
        results = client.send(iter(items))
        statuses = client.status(r.provider_id for r in results)
    assert [r.code for r in results] == [Code.OK] * 3
    assert results[2].client_id == "cid"
    assert [e.client_id for e in emu.ledger] == [r.client_id for r in results]
    assert all(s.ok for s in statuses)


# -- subscribers (the core's hooks, over real HTTP) ----------------------------------------


class _Journalish(Subscriber):
    """Records what a journal would, and fails like a full disk on request ``fail_at``."""

    def __init__(self, fail_at: int = -1) -> None:
        self.started: list[tuple[int, int, list[Any]]] = []
        self.finished: list[RequestFinished] = []
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def request_starting(self, event: RequestStarting) -> None:
        self.threads.add(threading.current_thread().name)
        if len(self.started) == self.fail_at:
            raise OSError("database or disk is full")
        self.started.append((event.start, event.end, list(event.ids)))

    def request_finished(self, event: RequestFinished) -> None:
        self.finished.append(event)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_subscribers_hear_each_request_before_and_after(
    emu: Emulator, concurrency: int, transport: str
) -> None:
    recorder = _Journalish()
    messages = numbered(30)
    with client_for(emu, max_batch=10, concurrency=concurrency, subscribers=[recorder]) as client:
        results = client.send(messages)
    assert all(r.ok for r in results)
    assert sorted(s[:2] for s in recorder.started) == [(0, 10), (10, 20), (20, 30)]
    by_start = {start: ids for start, _, ids in recorder.started}
    assert [cid for start in (0, 10, 20) for cid in by_start[start]] == [
        r.client_id for r in results
    ]
    assert sorted(e.start for e in recorder.finished) == [0, 10, 20]
    for event in recorder.finished:
        assert list(event.results) == results[event.start : event.end]
        assert event.sent_bytes > 0 and event.received_bytes > 0 and event.seconds >= 0
    if concurrency > 1 and transport == "sync":
        # In the sending thread: the client's workers.
        assert all(name.startswith("hpgfast") for name in recorder.threads)
    if transport == "async":
        # In the sending task, on the event loop's thread: never in another thread.
        assert recorder.threads == {"asyncio-loop"}


def test_a_failing_subscriber_keeps_the_request_from_leaving(emu: Emulator) -> None:
    recorder = _Journalish(fail_at=1)
    messages = numbered(30)
    with client_for(emu, max_batch=10, subscribers=[recorder]) as client:
        with pytest.raises(OSError, match="disk is full") as info:
            client.send(messages)
    results = info.value.results  # type: ignore[attr-defined]
    assert [r.code for r in results] == [Code.OK] * 10 + [Code.NOT_SENT] * 20
    assert emu.requests["send"] == 1
    assert len(emu.ledger) == 10


# -- interrupts ---------------------------------------------------------------------------


def test_an_interrupt_stops_the_batch_and_keeps_what_was_known() -> None:
    # Ctrl-C for the sync client, a cancelled task for the async one: no request
    # starts after it, the one on the wire finishes within the grace period (both
    # clients, at concurrency 1 as at any other), and the exception carries every
    # message's result.
    messages = numbered(50)
    with Emulator(latency=0.4) as emu, client_for(emu, max_batch=10) as client:
        thread = interrupt_soon(client, 0.6)  # during the second request
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(messages)
        finally:
            thread.join()
        results = info.value.results  # type: ignore[attr-defined]
        assert len(results) == 50
        assert {r.code for r in results[:10]} == {Code.OK}
        assert {r.code for r in results[10:20]} == {Code.OK}
        assert {r.code for r in results[20:]} == {Code.NOT_SENT}
        assert emu.requests["send"] == 2
        assert_truthful(emu, messages, results)
        # The client still works after an interrupt.
        assert all(r.ok for r in client.send(numbered(3, start=100)))


@pytest.mark.sync_only  # the sync client's own thread pool
def test_an_interrupt_while_waiting_for_the_oldest_request_keeps_its_result() -> None:
    # Concurrency 2: the calling thread waits for the oldest request (held back by the
    # platform) while the later ones of its window have ended. Ctrl-C then: the oldest
    # is on the wire and must get the grace period like the others, not be taken for
    # one that never left (not-sent, and sent twice by whoever trusts that).
    faults = {"delay": Fault(schedule=frozenset({1}), seconds=1.0)}
    messages = numbered(60)
    with Emulator(faults=faults) as emu, client_for(emu, max_batch=10, concurrency=2) as client:
        thread = interrupt_soon(client, 0.5)  # requests 2 to 4 ended; the 1st held back
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(messages)
        finally:
            thread.join()
        results = info.value.results  # type: ignore[attr-defined]
        assert len(emu.ledger) >= 10  # the platform applied the held request
        assert {r.code for r in results[:10]} == {Code.OK}, results[:10]
        assert_truthful(emu, messages, results)


def test_a_results_list_gets_the_results_however_the_call_ends() -> None:
    # send(results=...) and status(results=...): what the call returns or its error
    # carries, in the caller's own list (for asyncio code whose caught exception
    # may be asyncio's: tests/test_aio.py).
    messages = numbered(50)
    with Emulator(latency=0.4) as emu, client_for(emu, max_batch=10) as client:
        kept: list[SendResult] = []
        thread = interrupt_soon(client, 0.6)  # during the second request
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(messages, results=kept)
        finally:
            thread.join()
        assert kept == info.value.results  # type: ignore[attr-defined]
        assert results_of(info.value) is info.value.results  # type: ignore[attr-defined]
        assert len(kept) == 50 and {r.code for r in kept[20:]} == {Code.NOT_SENT}
        assert_truthful(emu, messages, kept)
        kept = [SendResult("stale", None, None)]
        sent = client.send(numbered(3, start=100), results=kept)
        assert kept == sent and all(r.ok for r in kept)
        asked: list[StatusResult] = []
        statuses = client.status([sent[0].provider_id, None, sent[2].provider_id],  # type: ignore[list-item]
                                 results=asked)  # fmt: skip
        assert asked == statuses and len(asked) == 3 and asked[1].code == Code.NOT_SENT
        with pytest.raises(TypeError, match="results must be a list"):
            client.send(numbered(1), results=(1,))  # type: ignore[arg-type]
    with Emulator(speed=None, balance=7) as emu, client_for(emu, max_batch=5) as client:
        kept = []
        with pytest.raises(AccountError) as stop:
            client.send(messages, results=kept)
        assert kept == stop.value.results  # type: ignore[attr-defined]
        assert [r.code for r in kept].count(Code.OK) == 7 and len(kept) == 50


def test_a_second_cancel_ends_the_grace_period(transport: str) -> None:
    messages = numbered(30)
    with Emulator(latency=0.5) as emu, client_for(emu, max_batch=10) as client:
        thread = interrupt_soon(client, 0.2, times=2)
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                client.send(messages)
        finally:
            thread.join()
        results = info.value.results  # type: ignore[attr-defined]
        # Cut on the wire: unknown (the platform may have it); the rest never left.
        assert [r.code for r in results] == [Code.UNKNOWN] * 10 + [Code.NOT_SENT] * 20
        assert emu.requests["send"] <= 1
        assert_truthful(emu, messages, results)


@pytest.mark.sync_only  # about both classes at once: once is enough
def test_both_clients_document_every_setting() -> None:
    import dataclasses
    import inspect

    import hpgfast

    names = [f.name for f in dataclasses.fields(hpgfast.Settings) if f.init]
    for cls in (hpgfast.Client, hpgfast.AsyncClient):
        # The keyword arguments are the settings, one for one, with the same defaults.
        params = inspect.signature(cls).parameters
        assert list(params) == names, cls.__name__
        for f in dataclasses.fields(hpgfast.Settings):
            if f.init and f.default is not dataclasses.MISSING:
                assert params[f.name].default == f.default, (cls.__name__, f.name)
        doc = inspect.getdoc(cls) or ""
        assert doc.splitlines()[0].startswith(("A client", "The asyncio client"))
        missing = [n for n in names if f"\n    {n}: " not in doc]
        assert not missing, (cls.__name__, missing)
