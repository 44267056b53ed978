"""The receiver, over real HTTP: a field that cannot be read costs only that field,
and a line or report that cannot be read costs only itself.

Only what an outcome depends on (the provider id, the status) may refuse a report;
a push of several keeps its good reports whatever one bad one holds, and neither the
answer nor the log nor the record ever holds the receiver's secret.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest

from hpgfast import Message, SendResult, StatusResult
from hpgfast.journal import Journal
from hpgfast.receiver import Receiver

SECRET = "s3cret-K3y_~.-"
WHEN = datetime(2020, 1, 10, 19, 3, 52, 355000, timezone(timedelta(hours=3)))


@pytest.fixture
def got() -> list[StatusResult]:
    return []


@pytest.fixture
def receiver(got: list[StatusResult]) -> Iterator[Receiver]:
    with Receiver(got.append, secret=SECRET, max_body=4096) as server:
        yield server


def _raw(server: Receiver, method: str, target: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        conn.close()


def _post(server: Receiver, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    return _raw(server, "POST", "/", body, {"X-HPG-Secret": SECRET, "Content-Type": content_type})


def _wait_for(caplog: pytest.LogCaptureFixture, text: str) -> None:
    # The request is logged after the answer went out: wait for that line.
    for _ in range(200):
        if text in caplog.text:
            return
        time.sleep(0.01)


# -- a field of the wrong type or shape costs only that field -------------------

@pytest.mark.parametrize(
    ("extra", "time_", "reason", "kept"),
    [
        ({"reason": {"code": 5, "text": "absent"}}, WHEN, None, b'{"code": 5, "text": "absent"}'),
        ({"reason": True}, WHEN, None, b"true"),
        ({"reason": False}, WHEN, None, b"false"),
        ({"reason": ["a", "b"]}, WHEN, None, b'["a", "b"]'),
        ({"reason": 5}, WHEN, "5", None),  # a number is text: kept as it was
        ({"reason": 2.5}, WHEN, "2.5", None),
        ({"reason": "absent;subscriber"}, WHEN, "absent;subscriber", None),
        ({"reason": "two\nlines"}, WHEN, "two\nlines", b"two\nlines"),
        ({"dlvStatusAt": {"at": "2020-01-10"}}, None, None, b'{"at": "2020-01-10"}'),
        ({"dlvStatusAt": ["2020-01-10T19:03:52.355+0300"]}, None, None,
         b'["2020-01-10T19:03:52.355+0300"]'),
        ({"dlvStatusAt": True}, None, None, b"true"),
        ({"dlvStatusAt": 1578672232}, None, None, b"1578672232"),
        ({"dlvStatusAt": "2020-01-10;19:03"}, None, None, b"2020-01-10;19:03"),
        ({"dlvStatusAt": "2020-01-10T19:03:52.355+0300\n"}, WHEN, None,
         b"2020-01-10T19:03:52.355+0300\n"),
        ({"dlvStatusAt": {"x": 1}, "reason": {"y": 2}}, None, None, b'{"x": 1}'),
    ],
)
def test_a_json_field_of_the_wrong_type_costs_only_that_field(
    receiver: Receiver, got: list[StatusResult], extra: dict[str, Any], time_: Any,
    reason: Any, kept: Any,
) -> None:
    item = {"imOutMessageId": "1001", "dlvStatus": "delivered",
            "dlvStatusAt": "2020-01-10T19:03:52.355+0300", **extra}
    other = {"imOutMessageId": "1002", "dlvStatus": "sent"}
    assert _post(receiver, json.dumps([item, other]).encode()) == (200, "ok")
    assert [r[:5] for r in got] == [
        ("ok", "1001", "delivered", time_, reason), ("ok", "1002", "sent", None, None),
    ]
    if time_ is not None:
        assert got[0].time.utcoffset() == WHEN.utcoffset()
    if kept is None:
        assert got[0].raw is None
    else:
        # The field's text (its JSON text when it was not a string) is kept in .raw.
        assert got[0].raw is not None and kept in got[0].raw
        assert got[0].raw.startswith(b"ok;1001;delivered;")


@pytest.mark.parametrize(
    ("params", "time_", "reason", "kept"),
    [
        (b"dateTime=2020-01-10%3B19:03&reason=x", None, "x", True),
        (b"dateTime=2020.01.10%2019:03:52%FF&reason=x", None, "x", True),
        # A reason is a line's last field: ";" and all, read as usual.
        (b"dateTime=2020.01.10%2019:03:52&reason=absent%3Bsubscriber",
         datetime(2020, 1, 10, 19, 3, 52), "absent;subscriber", False),
        (b"dateTime=2020.01.10%2019:03:52&reason=two%0D%0Alines",
         datetime(2020, 1, 10, 19, 3, 52), "two\r\nlines", True),
    ],
)
def test_a_parameter_that_cannot_stand_in_a_line_costs_only_its_field(
    receiver: Receiver, got: list[StatusResult], params: bytes, time_: Any, reason: Any,
    kept: bool,
) -> None:
    body = b"providerId=1001&status=delivered&" + params
    assert _post(receiver, body, "application/x-www-form-urlencoded") == (200, "ok")
    assert [r[:5] for r in got] == [("ok", "1001", "delivered", time_, reason)]
    assert (got[0].raw is not None) == kept


def test_a_wrong_typed_field_still_records_the_status(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"x": "1"})
        journal.load([(1, Message("79000000001", "hi", "S"))])
        journal.finish_load(1)
        journal.mark_in_flight([1])
        journal.record_results([1], [SendResult("ok", "0", "1001")])
        with Receiver(secret=SECRET, journal=journal) as server:
            item = {"imOutMessageId": "1001", "dlvStatus": "delivered",
                    "dlvStatusAt": {"seconds": 1}, "reason": True}
            assert _post(server, json.dumps(item).encode()) == (200, "ok")
            # The platform's retry of the same report: taken once.
            assert _post(server, json.dumps(item).encode()) == (200, "ok")
        row = journal.by_line(1)
        assert row is not None and row["status"] == "delivered"
        assert [(h[0], h[2], h[5]) for h in journal.history()] == [(1, "delivered", "push")]
        assert journal.open_provider_ids() == []


def test_a_report_without_its_id_or_status_is_still_refused(receiver: Receiver) -> None:
    # What the outcome depends on may refuse a report: a push of that one alone is 400.
    for item in ({"imOutMessageId": {"id": 1}, "dlvStatus": "sent"},
                 {"imOutMessageId": "1", "dlvStatus": ["sent"]},
                 {"imOutMessageId": "1"}):
        status, text = _post(receiver, json.dumps(item).encode())
        assert status == 400, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20200110T190352.355+0300", WHEN),
        ("2020-W02-5T16:03:52.355Z", WHEN.astimezone(timezone.utc)),
        ("2020-010T19:03:52.355+03", WHEN),
        ("2020-01-10T19:03:52.355\u221203:00",
         WHEN.replace(tzinfo=timezone(-timedelta(hours=3)))),
        ("2020-01-10T24:00:00", datetime(2020, 1, 11)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        ("2020.01.10 19:03:52 ", datetime(2020, 1, 10, 19, 3, 52)),
        ("2020-01-10T19", datetime(2020, 1, 10, 19)),
        ("+12020-01-10T19:03:52Z", None),
    ],
)
def test_every_iso_8601_form_in_parameters_and_json(
    receiver: Receiver, got: list[StatusResult], text: str, expected: Any
) -> None:
    one = {"providerId": "1", "status": "sent", "dateTime": text}
    assert _post(receiver, json.dumps(one).encode()) == (200, "ok")
    target = "/?providerId=2&status=sent&dateTime=" + quote_from_bytes(text.encode())
    assert _raw(receiver, "GET", target, b"", {"X-HPG-Secret": SECRET}) == (200, "ok")
    assert [r.time for r in got] == [expected, expected]
    if expected is not None:
        assert [r.time.utcoffset() for r in got] == [expected.utcoffset()] * 2
    else:
        assert all(r.raw is not None and text.encode() in r.raw for r in got)


# -- a line or report that cannot be read costs only itself ---------------------

def test_one_unreadable_status_line_costs_only_itself(
    receiver: Receiver, got: list[StatusResult], caplog: pytest.LogCaptureFixture
) -> None:
    body = (
        b"ok;1001;delivered;2020.01.10 19:03:52;\n"
        b"\xef\xbb\xbfok;1002;delivered;2020.01.10 19:03:53;\n"  # a BOM inside the body
        b"<html>secret=" + SECRET.encode() + b"</html>\n"
        b"ok;1003;undelivered;2020.01.10 19:03:54;unknown-subscriber\n"
        b"ok;1004;bad status;;\n"
    )
    with caplog.at_level("INFO", logger="hpgfast.receiver"):
        status, text = _post(receiver, body, "text/plain; charset=utf-8")
        _wait_for(caplog, " POST 200 ")
    assert status == 200, text
    assert text.startswith("ok")
    assert "lines 2, 3, 5 not read" in text
    assert [r[:5] for r in got] == [
        ("ok", "1001", "delivered", datetime(2020, 1, 10, 19, 3, 52), None),
        ("ok", "1003", "undelivered", datetime(2020, 1, 10, 19, 3, 54), "unknown-subscriber"),
    ]
    for line in ("line 2", "line 3", "line 5"):
        assert line in caplog.text
    # Neither the answer nor the log nor the record holds the secret (the bad line
    # held it): a line is named by its number and what was wrong, never its bytes.
    assert SECRET not in text and SECRET not in caplog.text
    assert all(r.raw is None or SECRET.encode() not in r.raw for r in got)


def test_status_lines_none_readable_is_400_without_the_body(
    receiver: Receiver, got: list[StatusResult]
) -> None:
    body = b"<html>secret=" + SECRET.encode() + b"</html>\n\xef\xbb\xbfok;1;sent;;\n"
    status, text = _post(receiver, body, "text/plain")
    assert status == 400 and "unreadable body" in text and "line 1" in text
    assert SECRET not in text and "html" not in text
    assert got == []


def test_one_bad_json_report_costs_only_itself(
    receiver: Receiver, got: list[StatusResult]
) -> None:
    items = [
        {"imOutMessageId": "1001", "dlvStatus": "delivered"},
        {"imOutMessageId": "1002"},  # no status
        "not an object",
        {"imOutMessageId": "1;3", "dlvStatus": "sent"},
        {"imOutMessageId": "1004", "dlvStatus": "bad status"},
        {"imOutMessageId": "1005", "dlvStatus": "sent", "reason": {"r": 1}},
    ]
    status, text = _post(receiver, json.dumps(items).encode())
    assert status == 200, text
    assert "4 of 6 reports not read" in text
    assert [r[:5] for r in got] == [
        ("ok", "1001", "delivered", None, None), ("ok", "1005", "sent", None, None),
    ]


def test_one_bad_indexed_report_costs_only_itself(
    receiver: Receiver, got: list[StatusResult]
) -> None:
    params = [
        (b"providerId[0]", b"1001"), (b"status[0]", b"delivered"),
        (b"providerId[1]", b"\xff"), (b"status[1]", b"delivered"),
        (b"providerId[2]", b"1003"),
        (b"providerId[3]", b"1004"), (b"status[3]", b"sent"),
    ]
    target = "/?" + "&".join(
        f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in params
    )
    status, text = _raw(receiver, "GET", target, b"", {"X-HPG-Secret": SECRET})
    assert status == 200, text
    assert "2 of 4 reports not read" in text
    assert [r[:3] for r in got] == [("ok", "1001", "delivered"), ("ok", "1004", "sent")]


def test_good_lines_of_a_mixed_push_are_recorded(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.bind({"x": "1"})
        journal.load([(1, Message("79000000001", "hi", "S")),
                      (2, Message("79000000002", "yo", "S"))])
        journal.finish_load(2)
        journal.mark_in_flight([1, 2])
        journal.record_results([1, 2], [SendResult("ok", "0", "1001"),
                                        SendResult("ok", "1", "1002")])
        with Receiver(secret=SECRET, journal=journal) as server:
            body = (b"ok;1001;delivered;;\n\xef\xbb\xbfgarbage\n"
                    b"ok;1002;undelivered;;unknown-subscriber\n")
            status, text = _post(server, body, "text/plain")
            assert status == 200 and "line 2 not read" in text, text
        assert [(h[0], h[2]) for h in journal.history()] == [(1, "delivered"), (2, "undelivered")]
        assert journal.open_provider_ids() == []


def test_hpgfast_receive_takes_what_it_can_read() -> None:
    # The command, as run: a report whose reason and time are of another JSON type is
    # taken (printed, status and all); a push with a bad line keeps its good one; the
    # secret never reaches the answer or the terminal.
    import os
    import re
    import signal
    import subprocess
    import sys

    env = dict(os.environ, HPGFAST_RECEIVER_SECRET=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpgfast", "receive", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"listening at http://127\.0\.0\.1:(\d+)/;", proc.stderr.readline())
        assert match is not None
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        item = {"imOutMessageId": "1001", "dlvStatus": "delivered",
                "dlvStatusAt": {"at": 1}, "reason": {"code": 5}}
        conn.request("POST", "/", json.dumps(item).encode(),
                     {"X-HPG-Secret": SECRET, "Content-Type": "application/json"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok\n")
        body = b"<" + SECRET.encode() + b">\nok;1002;undelivered;;unknown-subscriber\n"
        conn.request("POST", "/", body, {"X-HPG-Secret": SECRET, "Content-Type": "text/plain"})
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200 and text.startswith("ok, line 1 not read"), text
        assert SECRET not in text
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["1001;ok;delivered;;", "1002;ok;undelivered;;unknown-subscriber"]
    assert "line 1" in err and SECRET not in err and SECRET not in out


# -- a byte-order mark, a field nested too deep, an id written as a float ------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'[{"imOutMessageId": "1001", "dlvStatus": "delivered"}]', "application/json"),
        (b'{"imOutMessageId": "1001", "dlvStatus": "delivered"}', "application/json"),
        (b"providerId=1001&status=delivered", "application/x-www-form-urlencoded"),
        (b"providerId[0]=1001&status[0]=delivered", "application/x-www-form-urlencoded"),
        (b"ok;1001;delivered;;\n", "text/plain"),
        # curl -d labels every body a form: JSON and lines arrive so too.
        (b'[{"imOutMessageId": "1001", "dlvStatus": "delivered"}]',
         "application/x-www-form-urlencoded"),
        (b"ok;1001;delivered;;\n", "application/x-www-form-urlencoded"),
    ],
)
def test_a_leading_byte_order_mark_is_ignored_in_every_body(
    receiver: Receiver, got: list[StatusResult], body: bytes, content_type: str
) -> None:
    assert _post(receiver, BOM + body, content_type) == (200, "ok")
    assert [r[:3] for r in got] == [("ok", "1001", "delivered")]


def test_a_field_nested_too_deep_costs_only_that_field(got: list[StatusResult]) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = ('[{"imOutMessageId": "1001", "dlvStatus": "delivered", "reason": ' + deep + '},'
            ' {"imOutMessageId": "1002", "dlvStatus": "sent"},'
            ' ' + deep + ','
            ' {"imOutMessageId": ' + deep + ', "dlvStatus": "sent"},'
            ' {"imOutMessageId": "1005", "dlvStatus": "sent", "x": {"y": ' + deep + '}}]')
    with Receiver(got.append, secret=SECRET, max_body=1 << 20) as server:
        status, text = _post(server, body.encode())
    assert status == 200, text
    assert "2 of 5 reports not read" in text
    assert [r[:5] for r in got] == [
        ("ok", "1001", "delivered", None, None), ("ok", "1002", "sent", None, None),
        ("ok", "1005", "sent", None, None),
    ]
    # The field that was not read is kept in the report's raw, cut to its first levels.
    assert got[0].raw is not None and got[0].raw.startswith(b"ok;1001;delivered;;[[[")
    assert len(got[0].raw) < 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2006, "2006"), ("2006", "2006"), (b"2006.0", "2006"), (b"2006.000", "2006"),
     # Digits beyond a float's precision: read as written, never rounded.
     (b"12345678901234567890.0", "12345678901234567890")],
)
def test_an_id_given_as_an_integral_number_is_read_as_its_digits(
    receiver: Receiver, got: list[StatusResult], value: Any, expected: str
) -> None:
    literal = value.decode() if isinstance(value, bytes) else json.dumps(value)
    body = f'[{{"imOutMessageId": {literal}, "dlvStatus": "delivered", "reason": 2.50}}]'
    assert _post(receiver, body.encode()) == (200, "ok")
    assert [r[:5] for r in got] == [("ok", expected, "delivered", None, "2.50")]


@pytest.mark.parametrize("literal", ["2006.5", "2.006e3", "2006e0", "-2006.0"])
def test_an_id_given_as_another_number_is_refused(receiver: Receiver, literal: str) -> None:
    body = f'[{{"imOutMessageId": {literal}, "dlvStatus": "delivered"}}]'
    status, text = _post(receiver, body.encode())
    assert status == 400, text


def test_hpgfast_receive_never_prints_its_secret_carried_as_data() -> None:
    # A push may carry the receiver's secret as data (a sender's bug, a probe): in a
    # reason it is masked, in an id or a status it costs that report; the terminal,
    # the log and the records never hold it, with --json or without.
    import os
    import re
    import signal
    import subprocess
    import sys

    env = dict(os.environ, HPGFAST_RECEIVER_SECRET=SECRET)
    for flags in (["--json"], []):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpgfast", "receive", "--port", "0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            assert proc.stderr is not None
            match = re.search(r"listening at http://127\.0\.0\.1:(\d+)/;", proc.stderr.readline())
            assert match is not None
            conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
            items = [
                {"imOutMessageId": "1001", "dlvStatus": "undelivered",
                 "reason": f"key {SECRET} leaked"},
                {"imOutMessageId": SECRET, "dlvStatus": "delivered"},
                {"imOutMessageId": "1003", "dlvStatus": SECRET},
                {"imOutMessageId": "1004", "dlvStatus": "delivered",
                 "dlvStatusAt": f"<{SECRET}>"},
            ]
            conn.request("POST", "/", json.dumps(items).encode(),
                         {"X-HPG-Secret": SECRET, "Content-Type": "application/json"})
            response = conn.getresponse()
            text = response.read().decode()
            assert response.status == 200 and "2 of 4 reports not read" in text, text
            lines = f"ok;1005;undelivered;;{SECRET}\nok;{SECRET};sent;;\n".encode()
            conn.request("POST", "/", lines, {"X-HPG-Secret": SECRET,
                                              "Content-Type": "text/plain"})
            response = conn.getresponse()
            text = response.read().decode()
            assert response.status == 200 and SECRET not in text, text
            conn.close()
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert SECRET not in out and SECRET not in err, (out, err)
        ids = ["1001", "1004", "1005"]
        if flags:
            got = [json.loads(line) for line in out.splitlines()]
            assert [g["provider_id"] for g in got] == ids
            assert got[0]["reason"] == "key *** leaked" and got[2]["reason"] == "***"
        else:
            assert [line.split(";")[0] for line in out.splitlines()] == ids
            assert out.splitlines()[0].endswith(";key *** leaked")
