"""Every row of docs/outcomes.md's reply-shape table, checked against the core.

The table is the documentation users read and the data this test runs: a row that
the code does not honour fails here, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import hpgfast
from hpgfast import Message, Settings
from hpgfast.core import Exchange, Reply

DOC = Path(__file__).resolve().parent.parent / "docs" / "outcomes.md"
ROW = re.compile(r"^\| (\d+) \| (send|status) \| `([^`]*)`[^|]* \| (\d+) \| `([^`]*)` \| (.+?) \|$")


class Row(NamedTuple):
    number: int
    op: str
    reply: Reply
    items: int
    results: list[str]
    then: str


def _reply(text: str) -> Reply:
    status, _, rest = text.partition(" ")
    retry_after = None
    if rest.startswith("Retry-After: "):
        retry_after, _, rest = rest[len("Retry-After: ") :].partition(" ")
    # ``charset=NAME``: the body in NAME, declared in the Content-Type; ``bytes=NAME``:
    # the body in NAME, nothing declared.
    charset, content_type = "utf-8", None
    for prefix in ("charset=", "bytes="):
        if rest.startswith(prefix):
            charset, _, rest = rest[len(prefix) :].partition(" ")
            if prefix == "charset=":
                content_type = f"text/plain; charset={charset}"
    body = rest.replace("⏎", "\n").encode(charset)
    return Reply(int(status), body, retry_after, content_type)


def rows() -> list[Row]:
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            number, op, reply, items, results, then = match.groups()
            found.append(
                Row(int(number), op, _reply(reply), int(items), results.split(), then.strip())
            )
    return found


ROWS = rows()


def test_the_table_was_read() -> None:
    assert [r.number for r in ROWS] == list(range(1, len(ROWS) + 1))
    assert len(ROWS) >= 30


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


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"row{r.number}")
def test_row(row: Row) -> None:
    items: list[Any]
    if row.op == "send":
        items = [Message(f"7903111111{i}", f"text {i}") for i in range(row.items)]
    else:
        items = [str(1001 + i) for i in range(row.items)]
    batch = exchange().batch(row.op, items, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0) is not None
    step = batch.report(request, row.reply, 0.0)
    if row.then.startswith("again after "):
        seconds = float(row.then.split()[2])
        assert step.retry_at == pytest.approx(seconds)
        # Had it not been repeated, these would stand:
        assert [r.code for r in batch.results] == row.results
        return
    assert step.retry_at is None
    if row.then == "goes on":
        results = batch.finish()
    else:
        kind, name = row.then.split(": ") if ": " in row.then else row.then.split(" ")
        error = getattr(hpgfast, name)
        with pytest.raises(error) as info:
            batch.finish()
        results = info.value.results  # type: ignore[attr-defined]
        assert kind in ("stops", "raises")
    assert [r.code for r in results] == row.results
    if row.results[0] == "ok":
        assert results[0].provider_id in ("1001", None)
    if row.number == 34:
        assert [r.extra for r in results] == ["2", "1"]
    if row.number == 35:
        assert results[0].reason == "absent;subscriber"
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
