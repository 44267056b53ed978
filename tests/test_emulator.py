"""The emulator over real HTTP on loopback: protocol, codes, lifecycle, ledger, limits.

Requests here are built with ``urllib.parse.quote`` and sent with ``http.client``,
never with hpgfast's codec: the emulator is the codec's oracle, so the two are kept
apart. Faults, TLS, leaks and the command line are in ``test_emulator_faults.py``.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator, Sequence
from urllib.parse import quote, urlencode, urlsplit

import pytest

from hpgfast import Code, Status
from hpgfast.emulator import LIFECYCLE, Emulator, Fault, Faults, Ledger, LedgerEntry

CREDENTIALS = [("login", "CLIENT"), ("password", "P@ssw0rd")]


def encode(pairs: Sequence[tuple[str, str]], *, quote_brackets: bool = False) -> str:
    safe = "" if quote_brackets else "[]"
    return "&".join(f"{quote(n, safe=safe)}={quote(v, safe='')}" for n, v in pairs)


def messages(*rows: Sequence[str], subject: str = "SUBJECT") -> list[tuple[str, str]]:
    """Pairs for messages given as (address, text) or (address, text, clientId)."""
    pairs = []
    for i, row in enumerate(rows):
        pairs += [(f"subject[{i}]", subject), (f"address[{i}]", row[0]), (f"text[{i}]", row[1])]
        if len(row) > 2:
            pairs.append((f"clientId[{i}]", row[2]))
    return pairs


class Client:
    """A keep-alive ``http.client`` connection to one emulator."""

    def __init__(self, emu: Emulator, timeout: float = 5.0) -> None:
        self.emu = emu
        self.path = urlsplit(emu.url).path
        self.conn = http.client.HTTPConnection(emu.host, emu.port, timeout=timeout)

    def get_raw(self, target: str) -> tuple[int, str]:
        self.conn.request("GET", target)
        response = self.conn.getresponse()
        body = response.read().decode()
        if response.status == 200:
            assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
        return response.status, body

    def get(
        self,
        operation: str,
        pairs: Sequence[tuple[str, str]],
        credentials: Sequence[tuple[str, str]] = CREDENTIALS,
    ) -> tuple[int, str]:
        return self.get_raw(f"{self.path}{operation}?{encode([*credentials, *pairs])}")

    def send(self, *rows: Sequence[str], **pairs: str) -> str:
        status, body = self.get("send", [*messages(*rows), *pairs.items()])
        assert status == 200, body
        return body

    def status(self, *ids: str) -> str:
        status, body = self.get("status", [(f"providerId[{i}]", p) for i, p in enumerate(ids)])
        assert status == 200, body
        return body

    def close(self) -> None:
        self.conn.close()


def raw_exchange(emu: Emulator, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection; read one reply by its Content-Length."""
    with socket.create_connection((emu.host, emu.port), timeout=5) as conn:
        conn.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply) < _reply_length(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _reply_length(reply: bytes) -> int:
    head, _, _ = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(reply) + 1


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    c = Client(emu)
    yield c
    c.close()


# -- the specification's own examples, with urllib.parse alone ---------------------------


def test_specification_example_with_urllib_only(emu: Emulator) -> None:
    # Built and sent with the standard library alone: brackets percent-encoded.
    query = urlencode(
        [
            ("login", "CLIENT"),
            ("password", "P@ssw0rd"),
            ("subject[0]", "SUBJECT"),
            ("address[0]", "79031111111"),
            ("text[0]", "Hello"),
            ("subject[1]", "SUBJECT"),
            ("address[1]", "79032222222"),
            ("text[1]", "Hey, you"),
        ],
        quote_via=quote,
    )
    assert "%5B0%5D" in query
    url = urlsplit(emu.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        conn.request("GET", f"{url.path}send?{query}")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok;0;1001\nok;1;1002\n")
        conn.request("GET", f"{url.path}status?login=CLIENT&password=P%40ssw0rd&providerId[0]=1001")
        response = conn.getresponse()
        when = emu.start_time.strftime("%Y.%m.%d %H:%M:%S")
        assert response.read().decode() == f"ok;1001;enqueued;{when};\n"
    finally:
        conn.close()
    assert [e.text for e in emu.ledger] == ["Hello", "Hey, you"]
    assert emu.url == f"http://127.0.0.1:{emu.port}/CLIENT/connectorX/"


def test_literal_and_encoded_brackets_read_the_same(emu: Emulator, client: Client) -> None:
    pairs = [*CREDENTIALS, *messages(("79031111111", "a b"))]
    for quote_brackets in (False, True):
        target = f"{client.path}send?{encode(pairs, quote_brackets=quote_brackets)}"
        assert client.get_raw(target)[1].startswith("ok;0;")
    assert [e.text for e in emu.ledger] == ["a b", "a b"]


def test_plus_reads_as_space(emu: Emulator, client: Client) -> None:
    # What every standard decoder does; why hpgfast sends %20 and %2B.
    target = f"{client.path}send?{encode(CREDENTIALS)}&subject[0]=S&address[0]=%2B79031111111"
    client.get_raw(target + "&text[0]=a+b%2Bc")
    entry = emu.ledger.by_provider_id("1001")
    assert entry is not None and (entry.address, entry.text) == ("+79031111111", "a b+c")


def test_client_id_echoed_or_index(client: Client) -> None:
    body = client.send(
        ("79031111111", "x", "first"), ("79031111112", "y"), ("79031111113", "z", "9")
    )
    assert body == "ok;first;1001\nok;1;1002\nok;9;1003\n"


def test_indexes_need_not_start_at_zero_nor_be_contiguous(client: Client) -> None:
    pairs = [("subject[7]", "S"), ("address[7]", "79031111111"), ("text[7]", "t")]
    pairs += [("subject[3]", "S"), ("address[3]", "79031111112"), ("text[3]", "t")]
    assert client.get("send", pairs)[1] == "ok;3;1001\nok;7;1002\n"


@pytest.mark.parametrize("password_param", ["password", "pass"])
def test_both_password_parameter_names(password_param: str) -> None:
    with Emulator(speed=0, password_param=password_param) as emu:
        client = Client(emu)
        try:
            other = "pass" if password_param == "password" else "password"
            rows = messages(("79031111111", "hi"))
            right = [("login", "CLIENT"), (password_param, "P@ssw0rd")]
            wrong = [("login", "CLIENT"), (other, "P@ssw0rd")]
            assert client.get("send", rows, right) == (200, "ok;0;1001\n")
            assert client.get("send", rows, wrong) == (200, "error-auth\n")
            assert client.get("status", [("providerId[0]", "1001")], wrong) == (200, "error-auth\n")
        finally:
            client.close()


def test_custom_login_parameter_and_paths() -> None:
    with Emulator(
        speed=0, client="ACME", connector="c2", login="acme", password="s3", login_param="user"
    ) as emu:
        assert emu.url.endswith("/ACME/c2/")
        client = Client(emu)
        try:
            creds = [("user", "acme"), ("password", "s3")]
            assert client.get("send", messages(("79031111111", "x")), creds)[1] == "ok;0;1001\n"
            assert client.get("send", messages(("79031111111", "x")))[1] == "error-auth\n"
        finally:
            client.close()


def test_unindexed_single_message_php_style() -> None:
    with Emulator(speed=0, password_param="pass") as emu:
        client = Client(emu)
        try:
            pairs = [
                ("subject", "SUBJECT"),
                ("address", "79031111111"),
                ("text", "hi"),
                ("clientId", "42"),
            ]
            creds = [("login", "CLIENT"), ("pass", "P@ssw0rd")]
            assert client.get("send", pairs, creds) == (200, "ok;42;1001\n")
            assert client.get("send", pairs[:3], creds) == (200, "ok;0;1002\n")
            assert client.get("status", [("providerId", "1001")], creds)[1].startswith("ok;1001;")
        finally:
            client.close()
        assert [e.client_id for e in emu.ledger] == ["42", None]


# -- codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        [("login", "CLIENT"), ("password", "wrong")],
        [("login", "client"), ("password", "P@ssw0rd")],
        [("login", "CLIENT")],
        [("password", "P@ssw0rd")],
        [],
    ],
)
def test_error_auth(emu: Emulator, client: Client, credentials: list[tuple[str, str]]) -> None:
    rows = messages(("79031111111", "hi"))
    assert client.get("send", rows, credentials) == (200, f"{Code.ERROR_AUTH}\n")
    assert client.get("status", [("providerId[0]", "1")], credentials) == (200, "error-auth\n")
    assert len(emu.ledger) == 0


@pytest.mark.parametrize(
    "query",
    [
        "",  # no message at all
        "priority=high",  # still none
        "subject[0]=S&address[0]=79031111111&text[0]=a&text[0]=b",  # a field twice
        "subject[x]=S&address[x]=79031111111&text[x]=a",  # not an index
        "subject[0=S&address[0]=79031111111&text[0]=a",  # a broken bracket
        "subject=S&address=79031111111&text=a&address[1]=79031111112",  # both forms
        "subject[0]=S&address[0]=79031111111&text[0]=%FF",  # not UTF-8
        "subject[0]=S&address[0]=79031111111&text[0]=\xe9",  # raw byte over 0x7F
        "login=CLIENT&subject[0]=S&address[0]=79031111111&text[0]=a",  # login twice
    ],
)
def test_error_syntax_whole_request(emu: Emulator, query: str) -> None:
    target = f"/CLIENT/connectorX/send?login=CLIENT&password=P%40ssw0rd&{query}"
    reply = raw_exchange(emu, b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nerror-syntax\n")
    assert len(emu.ledger) == 0


def test_error_syntax_per_message(emu: Emulator, client: Client) -> None:
    pairs = messages(("79031111111", "ok"), ("79031111112", ""), ("", "no address"))
    pairs += [("address[3]", "79031111114"), ("text[3]", "no subject")]
    pairs += [("subject[4]", "S"), ("address[4]", "79031111115")]  # no text
    pairs += messages(("79031111116", "bad id", "a;b"))[:0]
    pairs += [("subject[5]", "S"), ("address[5]", "79031111116"), ("text[5]", "t")]
    pairs += [("clientId[5]", "a;b")]  # would break the reply line
    assert client.get("send", pairs)[1] == (
        "ok;0;1001\nerror-syntax;1;\nerror-syntax;2;\nerror-syntax;3;\n"
        "error-syntax;4;\nerror-syntax;;\n"
    )
    assert len(emu.ledger) == 1


def test_status_without_ids_is_a_syntax_error(client: Client) -> None:
    assert client.get("status", []) == (200, "error-syntax\n")
    assert client.get("status", [("providerId[a]", "1")]) == (200, "error-syntax\n")


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("7903111111", Code.OK),  # 10 digits
        ("790311111111111", Code.OK),  # 15
        ("+79031111111", Code.OK),
        ("790311111", Code.ERROR_ADDRESS_FORMAT),  # 9
        ("7903111111111111", Code.ERROR_ADDRESS_FORMAT),  # 16
        ("7903abc1111", Code.ERROR_ADDRESS_FORMAT),
        ("+", Code.ERROR_ADDRESS_FORMAT),
        ("++79031111111", Code.ERROR_ADDRESS_FORMAT),
        ("7903 111111", Code.ERROR_ADDRESS_FORMAT),
        ("７９０３１１１１１１１", Code.ERROR_ADDRESS_FORMAT),  # full-width digits
    ],
)
def test_address_format(client: Client, address: str, code: str) -> None:
    assert client.send((address, "hi")).split(";")[0] == code


@pytest.mark.parametrize(
    ("subject", "code"),
    [
        ("SUBJECT", Code.OK),
        ("Shop-1 & Co", Code.OK),  # 11 printable ASCII
        ("ABCDEFGHIJKL", Code.ERROR_SUBJECT_FORMAT),  # 12
        ("Магазин", Code.ERROR_SUBJECT_FORMAT),
        ("TAB\tNAME", Code.ERROR_SUBJECT_FORMAT),
        ("+790311111111111", Code.OK),  # 15 digits
        ("7903111111111111", Code.ERROR_SUBJECT_FORMAT),  # 16
    ],
)
def test_subject_format(client: Client, subject: str, code: str) -> None:
    pairs = messages(("79031111111", "hi"), subject=subject)
    assert client.get("send", pairs)[1].split(";")[0] == code


def test_address_and_subject_lists() -> None:
    with Emulator(
        speed=0,
        allow_addresses=["79031111111", "79031111112"],
        deny_addresses=["79031111112"],
        allow_subjects=["SUBJECT", "OTHER"],
        deny_subjects=["OTHER"],
        system_error_addresses=["79031111111"],
    ) as emu:
        client = Client(emu)
        try:
            body = client.send(("79031111113", "not allowed"), ("79031111112", "denied"))
            assert body == "error-address-unknown;0;\nerror-address-unknown;1;\n"
            pairs = messages(("79031111111", "x"), subject="OTHER")
            assert client.get("send", pairs)[1] == "error-subject-unknown;0;\n"
            pairs = messages(("79031111111", "x"), subject="THIRD")
            assert client.get("send", pairs)[1] == "error-subject-unknown;0;\n"
            assert client.send(("79031111111", "x")) == "error-system;0;\n"
        finally:
            client.close()
        assert len(emu.ledger) == 0


def test_error_id_not_unique(emu: Emulator, client: Client) -> None:
    # The second message falls back to its index, "1", which the first one claims.
    body = client.send(("79031111111", "a", "1"), ("79031111112", "b"), ("79031111113", "c", "x"))
    assert body == "error-id-not-unique;1;\nerror-id-not-unique;1;\nok;x;1001\n"
    assert [e.client_id for e in emu.ledger] == ["x"]


def test_error_provider_id_unknown(emu: Emulator, client: Client) -> None:
    client.send(("79031111111", "a"))
    body = client.status("1001", "999", "01001", "abc", "", "1002", "a;b")
    lines = body.splitlines()
    assert lines[0].startswith("ok;1001;enqueued;")
    assert lines[1:] == [
        "error-provider-id-unknown;999;;;",
        "error-provider-id-unknown;01001;;;",
        "error-provider-id-unknown;abc;;;",
        "error-provider-id-unknown;;;;",
        "error-provider-id-unknown;1002;;;",
        "error-provider-id-unknown;;;;",
    ]
    emu.ledger.clear()
    assert client.status("1001") == "error-provider-id-unknown;1001;;;\n"


def test_every_platform_code_is_covered() -> None:
    # The codes this file's tests provoke; later versions' extra ones are optional.
    provoked = {
        Code.OK,
        Code.ERROR_AUTH,
        Code.ERROR_SYNTAX,
        Code.ERROR_SYSTEM,
        Code.ERROR_PROVIDER_ID_UNKNOWN,
        Code.ERROR_ADDRESS_FORMAT,
        Code.ERROR_ADDRESS_UNKNOWN,
        Code.ERROR_SUBJECT_FORMAT,
        Code.ERROR_SUBJECT_UNKNOWN,
        Code.ERROR_ID_NOT_UNIQUE,
    }
    assert set(Code.PLATFORM[:9]) <= provoked


# -- provider ids, ledger ------------------------------------------------------------------


def test_provider_ids_unique_for_the_emulators_lifetime(emu: Emulator, client: Client) -> None:
    seen = []
    for round_ in range(3):
        body = client.send(*[(f"7903111111{i}", f"r{round_}m{i}") for i in range(5)])
        seen += [line.split(";")[2] for line in body.splitlines()]
        emu.ledger.clear()
    assert len(set(seen)) == 15
    assert seen == [str(1001 + i) for i in range(15)]
    assert emu.ledger.next_provider_id == 1016


def test_first_provider_id_setting() -> None:
    with Emulator(speed=0, first_provider_id=10**12) as emu:
        client = Client(emu)
        try:
            assert client.send(("79031111111", "x")) == f"ok;0;{10**12}\n"
        finally:
            client.close()


TEXTS = [
    "Hello",
    "Привет, мир! Ваш код: 1234",
    "🎉 Party 👩‍👩‍👧‍👦 time 🇷🇺",
    "a&b=c+d%20e;f#g?h/i\\j",
    "line1\nline2\r\nline3\ttab",
    "\x00nul and \x7f del",
    "\ufeffbom \uffff nonchar \U0010ffff",
    "Я" * 160,
    "  leading and trailing  ",
]


def test_text_round_trips_byte_exact(emu: Emulator, client: Client) -> None:
    rows = [(f"7903111{i:04d}", text, f"id-{i}") for i, text in enumerate(TEXTS)]
    client.send(*rows)
    entries = list(emu.ledger)
    assert [(e.address, e.text, e.client_id) for e in entries] == rows
    assert all(e.text.encode() == t.encode() for e, t in zip(entries, TEXTS))


def test_extra_parameters_recorded(emu: Emulator, client: Client) -> None:
    pairs = messages(("79031111111", "a", "x"), ("79031111112", "b", "y"))
    pairs += [("priority", "high"), ("validity[1]", "3600"), ("tag[1]", "т&г")]
    assert client.get("send", pairs)[1] == "ok;x;1001\nok;y;1002\n"
    first, second = emu.ledger
    assert first == LedgerEntry("1001", "79031111111", "SUBJECT", "a", "x", {"priority": "high"}, 1)
    assert second.params == {"priority": "high", "validity": "3600", "tag": "т&г"}
    client.send(("79031111113", "c"))
    assert emu.ledger.by_provider_id(1003) == LedgerEntry(
        "1003", "79031111113", "SUBJECT", "c", None, None, 2
    )


def test_ledger_api(emu: Emulator, client: Client) -> None:
    client.send(("79031111111", "same", "a"), ("79031111112", "same", "b"))
    client.send(("79031111111", "other", "a"))
    ledger = emu.ledger
    assert len(ledger) == 3 and ledger
    assert ledger.count_by("address") == {"79031111111": 2, "79031111112": 1}
    assert ledger.count_by("request") == {1: 2, 2: 1}
    assert ledger.duplicates("client_id") == {"a": 2}
    assert ledger.duplicates("provider_id") == {}
    assert ledger.count_by("params") == {None: 3}
    assert ledger.by_provider_id("1002").text == "same"  # type: ignore[union-attr]
    assert ledger.by_provider_id("0999") is None
    assert ledger.by_provider_id(5000) is None
    assert ledger.nbytes > 0
    with pytest.raises(ValueError, match="unknown field"):
        ledger.count_by("nope")
    iterator = ledger.messages()
    next(iterator)
    ledger.clear()
    with pytest.raises(RuntimeError, match="cleared"):
        list(iterator)
    assert len(ledger) == 0 and list(ledger) == [] and not ledger
    assert "0 messages" in repr(ledger)


def test_ledger_is_compact() -> None:
    ledger = Ledger()
    rows = [(f"7903{i:07d}", "Привет " * 10, str(i), None) for i in range(10_000)]
    for k in range(0, len(rows), 20):
        ledger.append(k, 0.0, None, [(a, "SUBJECT", t, c, p) for a, t, c, p in rows[k : k + 20]])
    fields = sum(11 + 7 + len(t.encode()) + len(c) for _, t, c, _ in rows)
    assert len(ledger) == 10_000
    # Field counts read straight from the buffer, across its 4096-message chunks.
    assert ledger.count_by("client_id") == dict.fromkeys(map(str, range(10_000)), 1)
    assert ledger.count_by("text") == {"Привет " * 10: 10_000}
    assert ledger.count_by("request") == dict.fromkeys(range(0, 10_000, 20), 20)
    assert ledger.count_by("provider_id") == {str(1001 + i): 1 for i in range(10_000)}
    assert [e.address for e in ledger] == [a for a, _, _, _ in rows]
    # The UTF-8 fields plus their separators, an 8-byte offset, and the request's share.
    assert ledger.nbytes <= fields + 3 * 10_000 + 8 * 10_000 + 32 * 500


def test_exactly_once_over_many_requests(emu: Emulator) -> None:
    clients = [Client(emu), Client(emu)]
    try:
        expected = {}
        for r in range(100):
            rows = [(f"7{r:05d}{i:05d}", f"text {r}/{i} ✓", f"{r}-{i}") for i in range(30)]
            replies = clients[r % 2].send(*rows).splitlines()
            for (address, text, cid), line in zip(rows, replies):
                code, echoed, pid = line.split(";")
                assert (code, echoed) == ("ok", cid)
                expected[pid] = (address, text, cid)
    finally:
        for c in clients:
            c.close()
    assert len(emu.ledger) == 3000 and emu.ledger.duplicates("client_id") == {}
    assert {e.provider_id: (e.address, e.text, e.client_id) for e in emu.ledger} == expected
    assert emu.requests["send"] == 100


# -- lifecycle -----------------------------------------------------------------------------

# (emulator seconds after acceptance, status, seconds the status began at, reason)
EXPECTED = {
    "0": [(0, "enqueued", 0, ""), (1, "sent", 1, ""), (2, "delivered", 2, "")],
    "6": [
        (0, "enqueued", 0, ""),
        (1.5, "sent", 1, ""),
        (2, "undelivered", 2, "unknown-subscriber"),
    ],
    "7": [(0, "enqueued", 0, ""), (1, "sent", 1, ""), (5, "failed", 2, "platform-error")],
    "8": [
        (0, "delayed", 0, ""),
        (60.9, "delayed", 0, ""),
        (61, "sent", 61, ""),
        (62, "delivered", 62, ""),
    ],
    "9": [
        (0, "enqueued", 0, ""),
        (1.5, "enqueued", 0, ""),
        (2, "cancelled", 2, "cancelled-by-operator"),
    ],
}
for _digit in "12345":
    EXPECTED[_digit] = EXPECTED["0"]


@pytest.mark.parametrize("digit", sorted(EXPECTED))
def test_lifecycle_by_last_digit(emu: Emulator, client: Client, digit: str) -> None:
    emu.advance(100)  # acceptance at a whole second, away from the start
    client.send((f"7903111111{digit}", "hi"))
    accepted = 100.0
    for age, status, began, reason in EXPECTED[digit]:
        emu.advance(accepted + age - emu.now())
        when = emu.datetime_at(accepted + began).strftime("%Y.%m.%d %H:%M:%S")
        assert client.status("1001") == f"ok;1001;{status};{when};{reason}\n"
        assert emu.status("1001") == (status, emu.datetime_at(accepted + began), reason)
    assert LIFECYCLE[digit][0] == EXPECTED[digit][-1][1]


def test_every_status_is_reachable() -> None:
    reached = {status for rows in EXPECTED.values() for _, status, _, _ in rows}
    assert reached == set(Status.ALL)


def test_date_style_dashes_and_custom_timing() -> None:
    with Emulator(speed=0, date_style="dashes", sent_after=10, final_after=20) as emu:
        client = Client(emu)
        try:
            client.send(("79031111111", "hi"))
            emu.advance(10)
            when = emu.datetime_at(10).strftime("%Y-%m-%d %H:%M:%S")
            assert client.status("1001") == f"ok;1001;sent;{when};\n"
        finally:
            client.close()


def test_speed_factor_moves_the_clock() -> None:
    with Emulator(speed=1000) as emu:
        client = Client(emu)
        try:
            client.send(("79031111111", "hi"))
            time.sleep(0.01)  # 10 emulator seconds
            assert client.status("1001").split(";")[2] == "delivered"
        finally:
            client.close()


def test_manual_clock_stands_still() -> None:
    with Emulator(speed=None) as emu:
        time.sleep(0.01)
        assert emu.now() == 0.0
        emu.advance(2.5)
        assert emu.now() == 2.5
        with pytest.raises(ValueError):
            emu.advance(-1)


def test_shuffled_reply_order() -> None:
    rows = [(f"790311111{i:02d}", f"m{i}") for i in range(30)]
    with Emulator(speed=0, reply_order="shuffled", seed=3) as emu:
        client = Client(emu)
        try:
            lines = client.send(*rows).splitlines()
            ids = [str(1001 + i) for i in range(30)]
            status_lines = client.status(*ids).splitlines()
        finally:
            client.close()
    assert sorted(lines) == sorted(f"ok;{i};{1001 + i}" for i in range(30))
    assert lines != sorted(lines, key=lambda line: int(line.split(";")[1]))
    assert sorted(line.split(";")[1] for line in status_lines) == sorted(ids)
    assert [line.split(";")[1] for line in status_lines] != ids


# -- HTTP ------------------------------------------------------------------------------------


def _target_of_line_length(emu: Emulator, length: int) -> str:
    base = f"/CLIENT/connectorX/send?{encode([*CREDENTIALS, *messages(('79031111111', 'x'))])}"
    overhead = len("GET ") + len(" HTTP/1.1")
    pad = length - overhead - len(base) - len("&pad=")
    assert pad >= 0
    return f"{base}&pad={'p' * pad}"


def test_request_line_limit_414(emu: Emulator, client: Client) -> None:
    assert client.get_raw(_target_of_line_length(emu, 8192)) == (200, "ok;0;1001\n")
    status, body = client.get_raw(_target_of_line_length(emu, 8193))
    assert status == 414 and "8193" in body
    # Far over the stdlib's own 65536: still read to its end and answered 414.
    assert client.get_raw(_target_of_line_length(emu, 200_000))[0] == 414
    # The connection survived it all.
    assert client.send(("79031111111", "y")) == "ok;0;1002\n"
    assert len(emu.ledger) == 2 and emu.connections == 1


def test_request_line_limit_setting() -> None:
    with Emulator(speed=0, max_request_line=1000) as emu:
        client = Client(emu)
        try:
            assert client.get_raw(_target_of_line_length(emu, 1000))[0] == 200
            assert client.get_raw(_target_of_line_length(emu, 1001))[0] == 414
        finally:
            client.close()
    with pytest.raises(ValueError):
        Emulator(max_request_line=10)


def test_unknown_path_and_method(emu: Emulator, client: Client) -> None:
    assert client.get_raw("/CLIENT/other/send?login=CLIENT")[0] == 404
    assert client.get_raw("/CLIENT/connectorX/send/")[0] == 404
    client.conn.request("POST", "/CLIENT/connectorX/send", body=b"x=1")
    response = client.conn.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "GET")
    response.read()
    assert emu.requests == {"other": 3}


def test_keep_alive_and_connection_close(emu: Emulator) -> None:
    client = Client(emu)
    try:
        for i in range(5):
            client.send(("79031111111", f"m{i}"))
        assert emu.connections == 1
        client.conn.request("GET", "/CLIENT/connectorX/status?x=1", headers={"Connection": "close"})
        response = client.conn.getresponse()
        assert response.getheader("Connection") == "close"
        assert response.read() == b"error-auth\n"
    finally:
        client.close()
    assert emu.requests == {"send": 5, "status": 1}


def test_http_1_0_and_one_segment_reply(emu: Emulator) -> None:
    target = f"/CLIENT/connectorX/send?{encode([*CREDENTIALS, *messages(('79031111111', 'x'))])}"
    with socket.create_connection((emu.host, emu.port), timeout=5) as conn:
        conn.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    assert body == b"ok;0;1001\n"


def test_latency_setting() -> None:
    with Emulator(speed=0, latency=0.2) as emu:
        client = Client(emu)
        try:
            start = time.monotonic()
            client.send(("79031111111", "x"))
            assert time.monotonic() - start >= 0.2
        finally:
            client.close()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Emulator(reply_order="random")
    with pytest.raises(ValueError):
        Emulator(date_style="slashes")
    with pytest.raises(ValueError):
        Emulator(sent_after=3, final_after=2)
    with pytest.raises(ValueError):
        Emulator(push_url="ftp://127.0.0.1:1/push")
    with pytest.raises(ValueError):
        Emulator(push_url="http://127.0.0.1:1/push", push_shape="xml")
    with pytest.raises(ValueError):
        Fault(rate=1.5)
    with pytest.raises(ValueError):
        Fault(schedule={0})
    with pytest.raises(AttributeError):
        Faults().nope = Fault()  # type: ignore[attr-defined]
