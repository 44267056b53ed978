"""Every row of docs/outcomes.md's reply-shape table, checked against the core.

The table is the documentation users read and the data this test runs: a row that
the code does not honour fails here, so the two cannot drift apart.
"""

from __future__ import annotations

import re
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import pytest

import hpgfast
from hpgfast import Client, Message, Settings
from hpgfast.core import Exchange, Reply
from hpgfast.emulator import Emulator, Fault

DOC = Path(__file__).resolve().parent.parent / "docs" / "outcomes.md"
ROW = re.compile(r"^\| (\d+) \| (send|status) \| `([^`]*)`[^|]* \| (\d+) \| `([^`]*)` \| (.+?) \|$")


class Row(NamedTuple):
    number: int
    op: str
    status: int
    headers: dict[str, str]
    body: bytes
    items: int
    results: list[str]
    then: str
    #: Replies in a row this one stands for ("3 in a row": a request and two repeats).
    repeat: int = 1
    text: str = ""  # the reply as the table writes it

    @property
    def reply(self) -> Reply:
        """What a transport reports for the row's reply."""
        h = {k.lower(): v for k, v in self.headers.items()}
        retry_after = None if self.status == 200 else h.get("retry-after")
        return Reply(
            self.status,
            self.body,
            retry_after,
            h.get("content-type"),
            h.get("content-encoding"),
            h.get("location"),
        )


#: The headers a row's reply may give before its body, as ``Name: value `` (a value
#: holds no space).
HEADERS = ("Retry-After", "Location", "Content-Type", "Content-Encoding")


#: A body too large to write out: ``<N GiB of zeros>`` (KiB, MiB, GiB).
ZEROS = re.compile(r"^<(\d+) (KiB|MiB|GiB) of zeros>$")
_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def _compressed(coding: str, body: Union[bytes, int], *, raw: bool = False) -> bytes:
    """``body`` (or that many zero bytes, made a MiB at a time) in ``coding``."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": -zlib.MAX_WBITS if raw else zlib.MAX_WBITS}
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits[coding])
    if isinstance(body, bytes):
        return compressor.compress(body) + compressor.flush()
    chunk = bytes(1 << 20)
    out = [compressor.compress(chunk) for _ in range(body // len(chunk))]
    return b"".join(out) + compressor.compress(bytes(body % len(chunk))) + compressor.flush()


def _reply(text: str, *, raw: bool = False) -> tuple[int, dict[str, str], bytes]:
    """The row's status, headers and body as sent: compressed when the row gives a
    ``Content-Encoding`` (``raw``: deflate without its zlib wrapper)."""
    status, _, rest = text.partition(" ")
    headers: dict[str, str] = {}
    while True:
        name = next((h for h in HEADERS if rest.startswith(h + ": ")), None)
        if name is None:
            break
        value, _, rest = rest[len(name) + 2 :].partition(" ")
        headers[name] = value
    # ``charset=NAME``: the body in NAME, declared in the Content-Type; ``bytes=NAME``:
    # the body in NAME, nothing declared.
    charset = "utf-8"
    for prefix in ("charset=", "bytes="):
        if rest.startswith(prefix):
            charset, _, rest = rest[len(prefix) :].partition(" ")
            if prefix == "charset=":
                headers["Content-Type"] = f"text/plain; charset={charset}"
    zeros = ZEROS.match(rest)
    body: Union[bytes, int] = (
        int(zeros[1]) * _UNITS[zeros[2]] if zeros else rest.replace("⏎", "\n").encode(charset)
    )
    coding = headers.get("Content-Encoding")
    if coding is not None:
        body = _compressed(coding, body, raw=raw)
    assert isinstance(body, bytes)
    return int(status), headers, body


IN_A_ROW = re.compile(r"\((\d+) in a row")


def rows() -> list[Row]:
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            number, op, reply, items, results, then = match.groups()
            status, headers, body = _reply(reply)
            repeat = IN_A_ROW.search(line)
            found.append(
                Row(
                    int(number),
                    op,
                    status,
                    headers,
                    body,
                    int(items),
                    results.split(),
                    then.strip(),
                    int(repeat.group(1)) if repeat else 1,
                    reply,
                )
            )
    return found


ROWS = rows()


def test_the_table_was_read() -> None:
    numbers = [r.number for r in ROWS]
    # Numbered 1 to N in order, each once: a row the parser cannot read is missed here.
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 55


def test_the_parser_reads_headers() -> None:
    row = next(r for r in ROWS if r.number == 48)
    assert (row.status, row.headers["Content-Type"]) == (200, "text/html")
    assert row.body.startswith(b"<html>\n<body>")
    row = next(r for r in ROWS if r.number == 46)
    assert row.reply.location is not None and row.reply.location.endswith("password=P@ssw0rd")
    assert row.body == b""
    assert next(r for r in ROWS if r.number == 55).repeat == 3
    assert next(r for r in ROWS if r.number == 24).reply.retry_after == "2"


def exchange() -> Exchange:
    return Exchange(
        Settings(
            "http://platform.test/CLIENT/connectorX/",
            "CLIENT",
            "P@ssw0rd",
            login_param="login",
            password_param="password",
            extra_params=None,
            max_request_bytes=8192,
            max_batch=None,
            default_subject="SHOP",
            quote_brackets=False,
            status_tz=None,
            retries=3,
            backoff=0.1,
            backoff_max=5.0,
            client_ids=False,  # the table's replies answer with indexes
        )
    )


def _expect_stop(row: Row) -> Optional[type[BaseException]]:
    """The exception a row's batch ends in, or None when it goes on."""
    then = row.then
    if then.startswith(("stops: ", "raises ")):
        kind, name = then.split(": ") if ": " in then else then.split(" ")
        assert kind in ("stops", "raises")
        error: type[BaseException] = getattr(hpgfast, name)
        return error
    assert then == "goes on" or then.startswith(("again after ", "pauses ")), then
    return None


def _messages(count: int) -> list[Message]:
    return [Message(f"7903111111{i}", f"text {i}") for i in range(count)]


def _seconds(row: Row) -> float:
    return float(row.then.split()[-2])


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"row{r.number}")
def test_row(row: Row) -> None:
    check_row(row)
    if row.headers.get("Content-Encoding") == "deflate":
        # deflate comes zlib-wrapped (RFC 9110) or raw: both read alike.
        check_row(row._replace(body=_reply(row.text, raw=True)[2]))


def check_row(row: Row) -> None:
    items: list[Any]
    if row.op == "send":
        items = _messages(row.items)
    else:
        items = [str(1001 + i) for i in range(row.items)]
    batch = exchange().batch(row.op, items, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0) is not None
    step = batch.report(request, row.reply, 0.0)
    if row.then.startswith("again after "):
        assert step.retry_at == pytest.approx(_seconds(row))
        # Had it not been repeated, these would stand:
        assert [r.code for r in batch.results] == row.results
        return
    for _ in range(row.repeat - 1):  # the same reply to the request's repeats
        assert step.retry_at is not None
        step = batch.report(request, row.reply, step.retry_at)
    assert step.retry_at is None
    if row.then.startswith("pauses "):
        following = batch.next(0.0)
        assert following is None  # one request: nothing follows, but the pause stands
        assert batch.pause_until == pytest.approx(_seconds(row))
    error = _expect_stop(row)
    if error is None:
        results = batch.finish()
    else:
        with pytest.raises(error) as info:
            batch.finish()
        results = info.value.results  # type: ignore[attr-defined]
    assert [r.code for r in results] == row.results
    if row.results[0] == "ok":
        assert results[0].provider_id in ("1001", None)
    if row.number == 34:
        assert [r.extra for r in results] == ["2", "1"]
    if row.number == 35:
        assert results[0].reason == "absent;subscriber"
    if row.number == 45:
        # Refused at the cap, not read as a garbled reply.
        assert "decodes to over max_reply_bytes=" in str(results[0].error)
    if row.number == 39:
        assert results[0].time == datetime(2012, 3, 15, 19, 53, 14, tzinfo=timezone.utc)
        assert results[0].final and results[0].raw == row.reply.body
    if row.number == 40:
        assert results[0].time is None and results[0].final
        assert results[0].raw == row.reply.body
    if row.number == 41:
        assert results[0].extra == "Неверный формат адреса"
        assert results[0].raw == row.reply.body
    if row.number == 42:
        assert results[0].status == "undelivered" and results[0].final
        assert results[0].reason == "абонент недоступен".encode("cp1251").decode(
            "utf-8", "replace"
        )
        assert results[0].raw == row.reply.body


# -- every row over real HTTP, with both clients ---------------------------------------------

#: The longest Retry-After the HTTP runs wait (the table's own seconds are checked
#: on the core above): the row's pause is waited up to this.
HTTP_RETRY_AFTER_MAX = 0.5


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"row{r.number}")
def test_row_over_http(row: Row, transport: str) -> None:
    """The row's reply played by the emulator to the first request of a batch of the
    row's items and one more item (a second request, answered by the platform): the
    row's results for the first request, and "then" for the second (sent, or
    ``not-sent``), and the number of requests the server saw: no SEND repeated.
    """
    from transports import BlockingAsyncClient

    make = Client if transport == "sync" else BlockingAsyncClient
    again = row.then.startswith("again after ")
    with Emulator(speed=None) as emu:
        kw: dict[str, Any] = {
            "default_subject": "SHOP",
            "max_batch": row.items,
            "backoff": 0.1,
            "retry_after_max": HTTP_RETRY_AFTER_MAX,
            "client_ids": False,  # the table's replies answer with indexes
            # A row that is repeated is played once, unrepeated: its results stand.
            "retries": 0 if again else max(3, row.repeat),
        }
        with make(emu.url, emu.login, emu.password, **kw) as client:
            extra: Any
            if row.op == "send":
                items: list[Any] = _messages(row.items)
                extra = Message("79032222222", "the next request")
            else:
                ready = client.send([Message("79032222222", "a message to ask about")])
                items = [str(1001 + i) for i in range(row.items)]
                extra = ready[0].provider_id
            first = sum(emu.requests.values()) + 1
            emu.faults.raw_reply = Fault(
                schedule=set(range(first, first + row.repeat)),
                status=row.status,
                headers=row.headers,
                body=row.body,
            )
            call = client.send if row.op == "send" else client.status
            error = _expect_stop(row)
            started = time.monotonic()
            if error is None:
                results = call([*items, extra])
            else:
                with pytest.raises(error) as info:
                    call([*items, extra])
                results = info.value.results  # type: ignore[attr-defined]
            took = time.monotonic() - started
        assert [r.code for r in results[: row.items]] == row.results
        seen = emu.requests[row.op]
        if error is None:
            assert results[row.items].code == "ok"  # the batch went on
            assert seen == row.repeat + 1
        else:
            assert results[row.items].code == "not-sent"  # the batch stopped
            assert seen == row.repeat
        if row.then.startswith("pauses "):
            assert took >= min(_seconds(row), HTTP_RETRY_AFTER_MAX) - 0.02
        if row.op == "send":
            # Nothing the row's reply answered was applied; the next request once.
            assert len(emu.ledger) == (1 if error is None else 0)


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.then.startswith("again after ")], ids=lambda r: f"row{r.number}"
)
def test_row_again_over_http(row: Row, transport: str) -> None:
    """A row that is sent again: the repeat comes no sooner than the row says (up to
    ``HTTP_RETRY_AFTER_MAX``), and once."""
    from transports import BlockingAsyncClient

    make = Client if transport == "sync" else BlockingAsyncClient
    with Emulator(speed=None) as emu:
        kw: dict[str, Any] = {"default_subject": "SHOP", "max_batch": row.items,
                              "backoff": 0.1, "retry_after_max": HTTP_RETRY_AFTER_MAX,
                              "client_ids": False, "retries": 1}
        with make(emu.url, emu.login, emu.password, **kw) as client:
            if row.op == "send":
                items: list[Any] = _messages(row.items)
            else:
                ready = client.send([Message("79032222222", "ask")])
                items = [ready[0].provider_id] * row.items
            first = sum(emu.requests.values()) + 1
            emu.faults.raw_reply = Fault(
                schedule={first}, status=row.status, headers=row.headers, body=row.body
            )
            call = client.send if row.op == "send" else client.status
            started = time.monotonic()
            call(items)
            took = time.monotonic() - started
        assert emu.requests[row.op] == 2  # the row's reply, then the one repeat
        assert took >= min(_seconds(row), HTTP_RETRY_AFTER_MAX) - 0.02
