"""The sans-IO core alone: every row of docs/client.md's outcome table, without sockets.

Each test drives ``hpgfast.core.Batch`` the way a transport does (``begin``, then
``report`` per attempt) with made-up events, and checks each item's outcome, what
is repeated, and what is raised. The same rules then hold over every transport;
tests/test_client*.py check them again over real HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest

from hpgfast import (
    AccountError,
    AuthError,
    Code,
    ConnectError,
    HPGError,
    HTTPStatusError,
    Message,
    PlatformUnavailable,
    RequestTooLarge,
    Settings,
    TLSError,
    TransportError,
    UnexpectedReply,
)
from hpgfast.core import (
    CONNECT,
    CUT,
    SENT,
    TLS,
    Exchange,
    Failure,
    RateLimit,
    Reply,
    RequestFinished,
    RequestStarting,
    SendFailure,
    StatusFailure,
    Subscriber,
)

SRC = Path(__file__).resolve().parent.parent / "src" / "hpgfast" / "core"


def exchange(
    retries: int = 2, subscribers: tuple[Subscriber, ...] = (), **settings: Any
) -> Exchange:
    """The test exchange; ``settings``: others than the defaults below."""
    fields: dict[str, Any] = {
        "client_ids": False,  # the platform answers with indexes: replies are easy to write
        **settings,
    }
    return Exchange(
        Settings(
            "http://platform.test/CLIENT/connectorX/",
            "CLIENT",
            "S3cret!",
            login_param="login",
            password_param="password",
            extra_params=None,
            max_request_bytes=8192,
            max_batch=2,
            default_subject="SHOP",
            quote_brackets=False,
            status_tz=None,
            retries=retries,
            backoff=0.5,
            backoff_max=1.0,
            subscribers=subscribers,
            **fields,
        )
    )


MESSAGES = [Message(f"7903000000{i}", f"text {i}") for i in range(4)]
IDS = ["1001", "1002", "1003", "1004"]


def ok_send(start: int, end: int) -> Reply:
    body = "".join(f"ok;{i - start};{2001 + i}\n" for i in range(start, end))
    return Reply(200, body.encode())


def ok_status(ids: list[str]) -> Reply:
    body = "".join(f"ok;{pid};delivered;2012.03.15 19:53:14;\n" for pid in ids)
    return Reply(200, body.encode())


def drive(
    op: str, events: list[Any], *, retries: int = 2, **settings: Any
) -> tuple[list[Any], list[int]]:
    """Run a batch of 4 items (2 per request): the first request gets ``events`` one per
    attempt, later requests a clean reply. Returns the results and attempts made."""
    items = MESSAGES if op == "send" else IDS
    batch = exchange(retries, **settings).batch(op, items, None)
    attempts: list[int] = []
    clock = 0.0
    pending = list(events)
    while (request := batch.next(clock)) is not None:
        line = batch.begin_line(request, clock)
        if line is None:
            continue
        assert line.startswith(b"GET /") and b"S3cret" in line and "S3cret" not in batch.shown
        count = 0
        while True:
            count += 1
            if request.start == 0 and pending:
                event = pending.pop(0)
            elif op == "send":
                event = ok_send(request.start, request.end)
            else:
                event = ok_status(IDS[request.start : request.end])
            step = batch.report(request, event, clock)
            if step.retry_at is None:
                break
            assert step.retry_at > clock  # the core says when; it never sleeps
            clock = step.retry_at
        attempts.append(count)
    return batch.finish(), attempts


def codes(results: list[Any]) -> list[str]:
    return [r.code for r in results]


# -- a line for every item --------------------------------------------------------------


def test_reply_lines_are_the_results() -> None:
    results, attempts = drive("send", [])
    assert codes(results) == ["ok"] * 4
    assert [r.provider_id for r in results] == ["2001", "2002", "2003", "2004"]
    assert attempts == [1, 1]
    statuses, _ = drive("status", [])
    assert [s.status for s in statuses] == ["delivered"] * 4


@pytest.mark.parametrize(
    "op, body, plain",
    [
        ("send", b"ok;0;2001\nok;1;2002\n", True),
        ("send", b"ok;0;2001\nerror-address-format;1\n", False),  # a code not ok
        ("send", b"ok;0;2001;2\nok;1;2002\n", False),  # free text (an extra)
        ("send", b"ok;1;2002\nok;0;2001\n", False),  # out of order
        ("send", b"ok;0;2001\n", False),  # a line missing
        ("status", b"ok;1001;delivered;2012.03.15 19:53:14;\nok;1002;sent;;\n", True),
        ("status", b"ok;1001;undelivered;2012.03.15 19:53:14;absent\nok;1002;sent;;\n", False),
        ("status", b"error-auth\n", False),
    ],
)
def test_the_plain_reply_shortcut_gives_what_judge_gives(op: str, body: bytes, plain: bool) -> None:
    # report() settles a plain 200 reply (plain_results) without the request's
    # facts and verdict; judge() comes to the very same results and step.
    from hpgfast.core._rules import judge, plain_results

    items = MESSAGES if op == "send" else IDS
    batch = exchange().batch(op, items, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0) is not None
    shortcut = plain_results(batch._read(body, request.ids))
    verdict = judge(batch._facts(request), Reply(200, body))
    assert (shortcut is not None) == plain
    if plain:
        assert shortcut == verdict.results and verdict.clean and not verdict.retryable
        assert verdict.fatal is None and verdict.down is None and verdict.note is None
    step = batch.report(request, Reply(200, body), 0.0)
    assert step.keep_alive == verdict.clean
    assert batch.results[request.start : request.end] == list(verdict.results)


# -- CONNECT: nothing left ----------------------------------------------------------------

CONNECT_FAILURE = Failure(CONNECT, ConnectError("could not connect", sent=False))


@pytest.mark.parametrize("op", ["send", "status"])
def test_connect_failure_is_repeated_then_not_sent_and_the_batch_is_down(op: str) -> None:
    results, attempts = drive(op, [CONNECT_FAILURE] * 3, retries=2)
    assert attempts == [3]  # the first try and two repeats; the second request never began
    assert codes(results) == [Code.NOT_SENT] * 4
    assert all(isinstance(r.error, ConnectError) for r in results)


@pytest.mark.parametrize("op", ["send", "status"])
def test_connect_failure_then_success(op: str) -> None:
    results, attempts = drive(op, [CONNECT_FAILURE], retries=2)
    assert attempts == [2, 1]
    assert codes(results) == ["ok"] * 4


# -- may have been processed: SEND unknown, STATUS repeated ------------------------------

MAY_HAVE_LEFT = [
    Failure(SENT, TransportError("no reply within timeout", sent=True)),
    Failure(CUT, TransportError("connection broken: cut", sent=True)),
    Reply(500, b"internal error"),
    Reply(502, b""),
    Reply(503, b""),
    Reply(504, b""),
    Reply(408, b""),
]


@pytest.mark.parametrize("event", MAY_HAVE_LEFT, ids=repr)
def test_send_that_may_have_left_is_unknown_and_never_repeated(event: Any) -> None:
    results, attempts = drive("send", [event] * 5)
    assert attempts == [1, 1]
    assert codes(results) == [Code.UNKNOWN] * 2 + ["ok"] * 2
    assert all(isinstance(r, SendFailure) and r.error is not None for r in results[:2])


@pytest.mark.parametrize("event", MAY_HAVE_LEFT, ids=repr)
def test_status_is_repeated_then_unknown(event: Any) -> None:
    # Three 5xx in a row stop the batch by default (below): here the platform is
    # given more room, so that the repeats alone are seen.
    results, attempts = drive("status", [event] * 5, retries=2, stop_after_5xx=4)
    assert attempts == [3, 1]
    assert codes(results) == [Code.UNKNOWN] * 2 + ["ok"] * 2
    assert all(isinstance(r, StatusFailure) for r in results[:2])
    results, attempts = drive("status", [event], retries=2)
    assert attempts == [2, 1]
    assert codes(results) == ["ok"] * 4


@pytest.mark.parametrize("op", ["send", "status"])
@pytest.mark.parametrize(
    "event",
    [Reply(200, b"<html>oops</html>\n"), Reply(200, b""), Reply(302, b"", location="https://x/")],
    ids=repr,
)
def test_a_reply_that_is_not_hpg_stops_the_batch_unrepeated(op: str, event: Any) -> None:
    with pytest.raises(UnexpectedReply) as info:
        drive(op, [event] * 5)
    results = info.value.results  # type: ignore[attr-defined]
    assert codes(results) == [Code.UNKNOWN] * 2 + [Code.NOT_SENT] * 2
    assert info.value.status == event.status and info.value.location == event.location


@pytest.mark.parametrize(
    "event",
    [
        Reply(500, b"\x1b[2J\x1b]0;owned\x07boom\x00 S\xe2\x80\x8b3cret!"),
        Reply(200, b"<html>\x1b[31mred\x9b</html>\n\xe2\x80\xaeevil"),
        Reply(404, b"no\rsuch\x7fthing"),
    ],
    ids=["500", "200", "404"],
)
def test_a_reply_s_text_in_an_error_cannot_drive_a_terminal(event: Any) -> None:
    # An error quotes what came back; printed, it must not clear the screen, set the
    # title, or hide text behind invisible or right-to-left characters.
    with pytest.raises(HPGError) as info:
        drive("send", [event] * 5, retries=0, stop_after_5xx=1)
    shown = str(info.value)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e]", shown)
    assert "\\x1b[2J" in shown or "\\x1b[31m" in shown or "\\x7f" in shown
    assert "S3cret!" not in shown


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_three_5xx_in_a_row_stop_the_batch(status: int) -> None:
    # A STATUS request repeated: each repeat counts (SEND: tests/test_client_stops.py).
    with pytest.raises(PlatformUnavailable) as info:
        drive("status", [Reply(status, b"down")] * 5, retries=5)
    results = info.value.results  # type: ignore[attr-defined]
    assert codes(results) == [Code.UNKNOWN] * 2 + [Code.NOT_SENT] * 2
    assert info.value.count == 3 and info.value.description == "down"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"error-auth\r\n", AuthError),
        (b"\xef\xbb\xbferror-insufficient-balance\n", AccountError),
        (b"\r\n  error-account-locked ; no money\r\n", AccountError),
    ],
)
def test_an_account_stop_as_a_5xx_s_text_is_read_as_a_200_s_line(
    body: bytes, error: type[BaseException]
) -> None:
    # A BOM, CR and blanks around the code, as a 200's reader takes them.
    with pytest.raises(error) as info:
        drive("send", [Reply(500, body)] * 5)
    results = info.value.results  # type: ignore[attr-defined]
    assert codes(results) == [Code.NOT_SENT] * 4


def test_an_account_stop_as_the_third_5xx_in_a_row_is_an_account_stop() -> None:
    # The count of 5xx replies does not hide what the third one says.
    events = [Reply(503, b"down"), Reply(502, b"down"), Reply(500, b"error-insufficient-balance")]
    with pytest.raises(AccountError) as info:
        drive("status", events, retries=5)
    assert info.value.code == "error-insufficient-balance"


def test_a_503_retry_after_pauses_the_batch() -> None:
    batch = exchange(2).batch("send", MESSAGES, None)
    first = batch.next(0.0)
    assert first is not None and batch.begin_line(first, 0.0) is not None
    step = batch.report(first, Reply(503, b"", retry_after="7"), 1.0)
    assert step.retry_at is None  # a SEND answered 5xx is never repeated
    second = batch.next(1.5)
    assert second is not None and batch.start_in(second, 1.5) == pytest.approx(6.5)
    statuses = exchange(2).batch("status", IDS, None)
    first = statuses.next(0.0)
    assert first is not None and statuses.begin_line(first, 0.0) is not None
    step = statuses.report(first, Reply(503, b"", retry_after="7"), 1.0)
    assert step.retry_at == pytest.approx(8.0)  # repeated no sooner than Retry-After


def test_missing_line_is_unknown_for_that_message_only() -> None:
    results, attempts = drive("send", [Reply(200, b"ok;1;2002\n")])
    assert attempts == [1, 1]
    assert codes(results) == [Code.UNKNOWN, "ok", "ok", "ok"]
    statuses, _ = drive("status", [Reply(200, b"ok;1002;sent;2012.03.15 19:53:14;\n")])
    assert codes(statuses) == [Code.UNKNOWN, "ok", "ok", "ok"]


# -- configuration failures: raised, with every result so far ----------------------------


@pytest.mark.parametrize(
    ("event", "error", "code"),
    [
        (Failure(TLS, TLSError("TLS failed", sent=False)), TLSError, Code.NOT_SENT),
        (Reply(414, b"URI Too Long"), RequestTooLarge, Code.NOT_SENT),
        (Reply(431, b""), RequestTooLarge, Code.NOT_SENT),
        (Reply(200, b"error-auth\n"), AuthError, Code.NOT_SENT),
        (Reply(200, b"error-insufficient-balance\n"), AccountError, Code.NOT_SENT),
        (Reply(404, b"Not Found"), HTTPStatusError, Code.UNKNOWN),
        (Reply(403, b""), HTTPStatusError, Code.UNKNOWN),
    ],
    ids=repr,
)
@pytest.mark.parametrize("op", ["send", "status"])
def test_configuration_failures_raise(op: str, event: Any, error: type, code: str) -> None:
    with pytest.raises(error) as info:
        drive(op, [event])
    results = info.value.results  # type: ignore[attr-defined]
    assert codes(results) == [code] * 2 + [Code.NOT_SENT] * 2


@pytest.mark.parametrize("op", ["send", "status"])
def test_whole_request_code_line_applies_to_every_item(op: str) -> None:
    results, _ = drive(op, [Reply(200, b"error-syntax\n")])
    assert codes(results) == [Code.NOT_SENT] * 2 + ["ok"] * 2
    assert all(r.error.code == Code.ERROR_SYNTAX for r in results[:2])


# -- 429: a rate limiter answered before the platform saw the request ---------------------


@pytest.mark.parametrize("op", ["send", "status"])
def test_429_is_not_sent_and_sent_again_after_retry_after(op: str) -> None:
    items = MESSAGES if op == "send" else IDS
    batch = exchange().batch(op, items, None)
    first = batch.next(10.0)
    assert first is not None and batch.begin_line(first, 10.0)
    step = batch.report(first, Reply(429, b"slow down", "7"), 10.0)
    assert step.retry_at == 17.0 and not step.keep_alive
    assert codes(batch.results[:2]) == [Code.NOT_SENT] * 2  # what stands if interrupted
    second = batch.next(10.5)
    assert second is not None and second.not_before == 17.0  # the whole batch waits
    event = ok_send(0, 2) if op == "send" else ok_status(IDS[:2])
    assert batch.report(first, event, 17.0).retry_at is None
    assert batch.begin_line(second, 17.0) is not None
    batch.report(second, ok_send(2, 4) if op == "send" else ok_status(IDS[2:]), 17.0)
    assert codes(batch.finish()) == ["ok"] * 4


def test_429_retry_after_is_capped_and_falls_back_to_backoff() -> None:
    batch = exchange().batch("send", MESSAGES, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    assert batch.report(request, Reply(429, b"", "86400"), 0.0).retry_at == 60.0
    assert batch.report(request, Reply(429, b"", "soon"), 60.0).retry_at == 61.0  # backoff


def test_429_without_retry_on_429_is_unknown_for_send() -> None:
    ex = exchange(retry_on_429=False)
    batch = ex.batch("send", MESSAGES, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    assert batch.report(request, Reply(429, b"", "1"), 0.0).retry_at is None
    assert codes(batch.results[:2]) == [Code.UNKNOWN] * 2


def test_id_not_unique_after_429_means_accepted_earlier() -> None:
    batch = exchange().batch("send", MESSAGES[:2], None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    batch.report(request, Reply(429, b"", "1"), 0.0)
    body = b"error-id-not-unique;0;\nok;1;2002\n"
    assert batch.report(request, Reply(200, body), 1.0).retry_at is None
    results = batch.finish()
    assert codes(results) == ["ok", "ok"]
    assert results[0].provider_id is None and results[0].error.code == "error-id-not-unique"
    # Without a 429 before it, the same line is a rejection.
    plain = exchange().batch("send", MESSAGES[:2], None)
    request = plain.next(0.0)
    assert request is not None and plain.begin_line(request, 0.0)
    plain.report(request, Reply(200, body), 0.0)
    assert codes(plain.finish()) == ["error-id-not-unique", "ok"]


# -- account stops ------------------------------------------------------------------------


def test_an_account_stop_on_a_message_line_stops_the_batch() -> None:
    batch = exchange().batch("send", MESSAGES, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    body = b"ok;0;2001\nerror-insufficient-balance;1;\n"
    batch.report(request, Reply(200, body), 0.0)
    assert batch.next(0.0) is None  # no request starts after a stop
    with pytest.raises(AccountError) as info:
        batch.finish()
    assert info.value.code == "error-insufficient-balance"
    assert codes(info.value.results) == [  # type: ignore[attr-defined]
        "ok",
        "error-insufficient-balance",
        Code.NOT_SENT,
        Code.NOT_SENT,
    ]


def test_account_stop_codes_are_a_setting() -> None:
    ex = exchange()
    ex.account_stop = frozenset({"error-auth"})
    batch = ex.batch("send", MESSAGES, None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    batch.report(request, Reply(200, b"error-insufficient-balance\n"), 0.0)
    assert batch.next(0.0) is not None  # not a stop any more: the batch goes on
    assert codes(batch.results[:2]) == [Code.NOT_SENT] * 2  # still not processed


# -- rate limit ---------------------------------------------------------------------------


def test_rate_limit_books_slots_with_a_burst_of_one_request() -> None:
    ex = exchange()
    ex.rate_limit = RateLimit(2.0)  # messages per second; requests of 2 messages
    batch = ex.batch("send", MESSAGES * 2, None)
    starts = []
    while (request := batch.next(100.0)) is not None:
        starts.append(request.not_before)
    assert starts == [100.0, 101.0, 102.0, 103.0]


def test_none_provider_ids_get_a_failure_not_an_exception() -> None:
    batch = exchange().batch("status", ["1001", None, "1002"], None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    assert (request.start, request.end) == (0, 2)
    batch.report(request, ok_status(["1001", "1002"]), 0.0)
    results = batch.finish()
    assert codes(results) == ["ok", Code.NOT_SENT, "ok"]
    assert [r.provider_id for r in results] == ["1001", None, "1002"]
    assert "without a provider id" in str(results[1].error)


# -- subscribers --------------------------------------------------------------------------


class Recorder(Subscriber):
    def __init__(self, fail_on: Optional[int] = None) -> None:
        self.starting: list[RequestStarting] = []
        self.finished: list[RequestFinished] = []
        self.fail_on = fail_on

    def request_starting(self, event: RequestStarting) -> None:
        if event.start == self.fail_on:
            raise OSError("journal: disk full")
        self.starting.append(event)

    def request_finished(self, event: RequestFinished) -> None:
        self.finished.append(event)


def test_subscribers_hear_of_every_request() -> None:
    recorder = Recorder()
    batch = exchange(subscribers=(recorder,)).batch("send", MESSAGES, None)
    while (request := batch.next(1.0)) is not None:
        assert batch.begin_line(request, 1.0) is not None
        assert batch.report(request, ok_send(request.start, request.end), 1.25, 30).retry_at is None
    assert codes(batch.finish()) == ["ok"] * 4
    assert [(e.start, e.end, list(e.ids)) for e in recorder.starting] == [
        (0, 2, ["0", "1"]),
        (2, 4, ["0", "1"]),
    ]
    assert all("S3cret" not in e.url for e in recorder.starting)
    first = recorder.finished[0]
    assert codes(list(first.results)) == ["ok", "ok"]
    assert (first.attempts, first.received_bytes, first.seconds) == (1, 30, 0.25)
    assert first.sent_bytes > 0


def test_a_raising_subscriber_stops_the_batch_before_the_request_leaves() -> None:
    recorder = Recorder(fail_on=2)
    batch = exchange(subscribers=(recorder,)).batch("send", MESSAGES, None)
    sent = []
    while (request := batch.next(0.0)) is not None:
        target = batch.begin_line(request, 0.0)
        if target is None:
            continue
        sent.append(request.start)
        batch.report(request, ok_send(request.start, request.end), 0.0)
    assert sent == [0]
    with pytest.raises(OSError, match="disk full") as info:
        batch.finish()
    assert codes(info.value.results) == ["ok", "ok", Code.NOT_SENT, Code.NOT_SENT]  # type: ignore[attr-defined]


def test_the_core_imports_no_io_library() -> None:
    out = subprocess.run(
        ["git", "grep", "-nE", r"^(import|from) (urllib3|socket|http|ssl|asyncio)", "--", str(SRC)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout == ""
    for path in SRC.glob("*.py"):
        text = path.read_text()
        for forbidden in ("import threading", "import time", "from time", "sleep("):
            assert forbidden not in text, (path, forbidden)


# -- clientIds hpgfast makes -----------------------------------------------------------------

ID_SHAPE = re.compile(r"^[0-9A-Za-z]{20}$")


def test_made_ids_are_unique_across_requests_and_stale_index_replies_never_match() -> None:
    ex = exchange(client_ids=True)
    batch = ex.batch("send", [*MESSAGES, Message("79030000009", "own", None, "my-id-1")], None)
    seen: list[str] = []
    while (request := batch.next(0.0)) is not None:
        target = batch.begin_line(request, 0.0)
        assert target is not None
        seen += request.ids
        if request.start == 0:
            # A stale reply that answers with indexes "matches" nothing any more.
            batch.report(request, ok_send(0, 2), 0.0)
        else:
            body = "".join(f"ok;{cid};{3000 + k}\n" for k, cid in enumerate(request.ids))
            assert batch.report(request, Reply(200, body.encode()), 0.0).keep_alive
    results = batch.finish()
    assert codes(results) == [Code.UNKNOWN] * 2 + ["ok"] * 3
    assert seen[-1] == "my-id-1"  # a message's own id is kept
    made = seen[:-1]
    assert all(ID_SHAPE.match(cid) for cid in made) and len(set(made)) == len(made)
    assert made[0][:17] != made[2][:17]  # each request its own prefix
    assert made[0][:11] == made[2][:11]  # one random part per process
    again = ex.batch("send", MESSAGES[:1], None)
    request = again.next(0.0)
    assert request is not None and again.begin_line(request, 0.0)
    assert request.ids[0] not in made  # a resend never reuses an id


def test_a_fork_draws_a_new_random_part() -> None:
    from hpgfast.core import _ids

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its prefix and leave at once
        os.write(write, _ids.request_prefix().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 17 and child[:11] != _ids.request_prefix()[:11]


def test_free_text_holding_the_password_is_masked_in_records() -> None:
    batch = exchange().batch("status", IDS[:2], None)
    request = batch.next(0.0)
    assert request is not None and batch.begin_line(request, 0.0)
    body = (
        b"ok;1001;undelivered;2012.03.15 19:53:07;echo S3cret!;x\n"
        b"ok;1002;sent;2012.03.15 19:53:07;\n"
    )
    batch.report(request, Reply(200, body), 0.0)
    results = batch.finish()
    assert results[0].reason == "echo ***;x" and results[1].reason is None
    sends = exchange().batch("send", MESSAGES[:1], None)
    request = sends.next(0.0)
    assert request is not None and sends.begin_line(request, 0.0)
    sends.report(request, Reply(200, b"ok;0;2001;S3cret%21\n"), 0.0)
    assert sends.finish()[0].extra == "***"


@pytest.mark.parametrize("op", ["send", "status"])
def test_begin_line_is_the_request_line_start(op: str) -> None:
    items = MESSAGES if op == "send" else IDS
    first = exchange().batch(op, items, None)
    second = exchange().batch(op, items, None)
    while (request := first.next(0.0)) is not None:
        twin = second.next(0.0)
        assert twin is not None
        line = first.begin_line(request, 0.0)
        again = second.begin_line(twin, 0.0)
        assert line is not None and again is not None
        # The clientIds differ between the batches (a fresh prefix per request).
        if op == "status":
            assert line == again
        target = line[len(b"GET ") :].decode("ascii")
        assert line.startswith(b"GET /") and len(again) == len(line)
        assert twin.sent_bytes == request.sent_bytes == len(target) + len("GET  HTTP/1.1")


@pytest.mark.parametrize("size", [2048, 8192, 1024 * 1024])
def test_the_benchmarks_peers_get_the_clients_own_splitting(size: int) -> None:
    # bench/ compares the client with peers "on the same splitting": the boundaries
    # _bench.bounds gives them are the requests Client really makes (its clientIds
    # included), not the ones it would make without them.
    from hpgfast import Client, _bench
    from hpgfast._sample import standard_batch

    batch = standard_batch(2000)
    url = "http://127.0.0.1:9/CLIENT/connectorX/"
    with Client(url, _bench.LOGIN, _bench.PASSWORD, max_request_bytes=size) as client:
        plan = [(r.start, r.end) for r in client._core.batch("send", batch, None).requests]
    assert _bench.bounds(batch, size, url) == plan
    assert len(_bench.bounds(batch, size, url, client_ids=False)) <= len(plan)


def test_a_begun_request_never_reported_is_unknown_not_not_sent() -> None:
    # A transport that lost track of a request on the wire (an interrupt while it
    # waited on it) leaves its items unset: only a request never begun is not-sent.
    batch = exchange().batch("send", MESSAGES, None)
    first = batch.next(0.0)
    assert first is not None and batch.begin_line(first, 0.0) is not None
    second = batch.next(0.0)
    assert second is not None
    batch.stop(KeyboardInterrupt())
    assert batch.begin_line(second, 0.0) is None
    with pytest.raises(KeyboardInterrupt) as info:
        batch.finish()
    assert codes(info.value.results) == [Code.UNKNOWN] * 2 + [Code.NOT_SENT] * 2  # type: ignore[attr-defined]


# -- one source of truth -------------------------------------------------------------------


def test_the_operation_is_an_object_chosen_once_when_the_batch_is_made() -> None:
    # Exchange.batch takes SEND or STATUS (or their wire names, resolved there once);
    # the batch, its facts and the rules then ask the object, and subscribers still
    # hear the wire name.
    from hpgfast.core import SEND, STATUS, Operation

    recorder = Recorder()
    for op, name, items in ((SEND, "send", MESSAGES), (STATUS, "status", IDS)):
        assert isinstance(op, Operation) and op.name == name
        for chosen in (op, name):
            batch = exchange(subscribers=(recorder,)).batch(chosen, items, None)
            assert batch.op is op
            request = batch.next(0.0)
            assert request is not None and batch.begin_line(request, 0.0) is not None
            assert batch._facts(request).op is op
            assert recorder.starting[-1].op == name
    with pytest.raises(ValueError, match="SEND or STATUS"):
        exchange().batch("sned", MESSAGES, None)
    # What differs between them is a field of the object, not a comparison of names.
    pattern = re.compile(
        r"""\bop\s*[!=]=|[!=]=\s*(_wire\.)?(SEND|STATUS)\b|[!=]=\s*["'](send|status)["']"""
    )
    for path in SRC.glob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{number}: {line.strip()}"


@pytest.mark.parametrize("size", [1200, 2048, 8192])
@pytest.mark.parametrize("client_ids", [True, False])
def test_plan_is_the_cut_the_batch_makes(size: int, client_ids: bool) -> None:
    # core.plan (what the dry run counts with) cuts as Exchange.batch does, from the
    # head's length alone: no exchange, no password.
    from hpgfast._sample import standard_batch
    from hpgfast.core import SEND, STATUS, plan, target_head

    batch = standard_batch(300)
    ids = [str(10_000_000 + i) for i in range(300)]
    path = "/CLIENT/connectorX/"
    credentials = [("login", "CLIENT"), ("password", "S3cret!")]
    for op, items in ((SEND, batch), (STATUS, ids)):
        ex = Exchange(Settings(
            "http://platform.test" + path, "CLIENT", "S3cret!",
            login_param="login", password_param="password", extra_params=[("x", "1 2")],
            max_request_bytes=size, max_batch=40, default_subject="SHOP",
            quote_brackets=True, status_tz=None, client_ids=client_ids,
        ))  # fmt: skip
        head = target_head(op, path, credentials, [("x", "1 2")])
        expected = [(r.start, r.end) for r in ex.batch(op, items, None).requests]
        assert len(expected) > 1
        got = plan(
            op, items, head_bytes=len(head), max_request_bytes=size, max_batch=40,
            default_subject="SHOP", quote_brackets=True, client_ids=client_ids,
        )  # fmt: skip
        assert got == expected
    with pytest.raises(ValueError, match="no room"):
        plan(SEND, batch, head_bytes=8192 - len("GET  HTTP/1.1"))


def test_the_dry_run_asks_the_core_and_imports_nothing_private() -> None:
    # The dry run's count comes from core.plan and core.target_head, and its default
    # max_request_bytes is Client's own: it copies none of them.
    import ast
    import inspect

    from hpgfast import AsyncClient, Client, core
    from hpgfast.cli import _costs

    source = Path(_costs.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
            assert node.module == "core", ast.unparse(node)
            assert all(not alias.name.startswith("_") for alias in node.names)
    assert "encode_send" not in source and "request_prefix" not in source
    assert not re.search(r"\b8192\b", source)
    for client in (Client, AsyncClient):
        default = inspect.signature(client).parameters["max_request_bytes"].default
        assert default == core.MAX_REQUEST_BYTES == _costs.DEFAULT_MAX_REQUEST_BYTES


def test_the_clean_verdict_shortcut_has_verdicts_own_layout() -> None:
    # _clean_verdict builds a Verdict without NamedTuple.__new__ (once per request):
    # field by field, what it makes must be what the named constructor makes, and a
    # field added to Verdict or moved must not shift the values.
    from hpgfast.core import Verdict, judge
    from hpgfast.core._matching import _CLEAN, _clean_verdict

    records = [("ok", "0", "2001")]
    shortcut = _clean_verdict((records, *_CLEAN))
    named = Verdict(results=records, clean=True)
    assert type(shortcut) is Verdict and len(shortcut) == len(Verdict._fields)
    assert shortcut._asdict() == named._asdict()
    # And on the paths that use it: a plain SEND and a plain STATUS reply.
    for op, items, reply in (
        ("send", MESSAGES, ok_send(0, 2)),
        ("status", IDS, ok_status(IDS[:2])),
    ):
        batch = exchange().batch(op, items, None)
        request = batch.next(0.0)
        assert request is not None and batch.begin_line(request, 0.0) is not None
        verdict = judge(batch._facts(request), reply)
        expected = Verdict(results=verdict.results, clean=True)
        assert len(verdict) == len(Verdict._fields)
        for field in Verdict._fields:
            assert getattr(verdict, field) == getattr(expected, field), field


def test_the_request_facts_shortcut_has_their_layout() -> None:
    # Batch._facts builds RequestFacts positionally (tuple.__new__, once per request).
    # Each field, by name, must hold what it says; the values are distinct where the
    # types allow, so that a field moved shows, and a field added fails the named call.
    from hpgfast.core import SEND
    from hpgfast.core._rules import RequestFacts

    ex = exchange(
        account_stop_codes={"error-account-locked"}, retry_on_429=False,
        retry_after_max=7.5, client_ids=True,
    )  # fmt: skip
    batch = ex.batch(SEND, MESSAGES, None)
    batch.next(0.0)
    second = batch.next(0.0)
    assert second is not None and batch.begin_line(second, 0.0) is not None
    second.after_429 = True
    facts = batch._facts(second)
    named = {
        "op": SEND,
        "start": 2,
        "end": 4,
        "ids": second.ids,
        "own_ids": True,
        "shown": batch.shown,
        "read": batch._read,
        "scrub": ex.scrub,
        "account_stop": frozenset({"error-account-locked", Code.ERROR_AUTH}),
        "retry_on_429": False,
        "retry_after_max": 7.5,
        "after_429": True,
    }
    expected = RequestFacts(**named)
    assert type(facts) is RequestFacts and len(facts) == len(RequestFacts._fields)
    assert list(named) == list(RequestFacts._fields)
    for field in RequestFacts._fields:
        assert getattr(facts, field) == getattr(expected, field), field


def test_the_transports_call_exactly_the_documented_contract() -> None:
    # hpgfast.core's docstring is the contract a transport drives a batch by; both
    # transports (and what they share) call exactly the Batch methods it names.
    import ast
    import re
    from pathlib import Path

    import hpgfast.core

    documented = set(re.findall(r"``Batch\.(\w+)\(", hpgfast.core.__doc__ or ""))
    package = Path(hpgfast.core.__file__).resolve().parent.parent
    # Each transport's modules: AsyncClient's task side is in _aio_lane.py.
    transports = {"client.py": ("client.py",), "aio.py": ("aio.py", "_aio_lane.py")}
    for name, modules in transports.items():
        called = set()
        for module in (*modules, "_base.py"):
            tree = ast.parse((package / module).read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "batch"
                ):
                    called.add(node.func.attr)
        assert called == documented, (name, sorted(called ^ documented))


# -- fields read tolerantly (hpgfast._fields): the charset, and the raw bytes kept ----------


_ERROR_TEXT = "Ошибка обработки"
_ERROR_MANGLED = _ERROR_TEXT.encode("cp1251").decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/plain; charset=windows-1251", _ERROR_TEXT),
        ('text/html; Charset="CP1251"', _ERROR_TEXT),
        ("text/plain", _ERROR_MANGLED),
        ("text/plain; charset=no-such", _ERROR_MANGLED),
        (None, _ERROR_MANGLED),
    ],
)
def test_a_non_200_description_is_read_by_the_declared_charset(
    content_type: Optional[str], expected: str
) -> None:
    reply = Reply(500, _ERROR_TEXT.encode("cp1251"), None, content_type)
    results, _ = drive("send", [reply])
    assert results[0].code == Code.UNKNOWN
    assert results[0].error.description == expected


@pytest.mark.parametrize("op", ["send", "status"])
def test_the_raw_bytes_of_a_line_read_tolerantly_never_hold_the_password(op: str) -> None:
    # The platform echoes the password where the time (or the description) should be:
    # the line is read all the same, and its kept bytes are masked as free text is.
    if op == "send":
        body = b"ok;0;1001\nerror-address-format;1;;\xcd\xe5 S3cret!\n"
    else:
        body = b"ok;1001;delivered;S3cret!;\nok;1002;delivered;2012.03.15 19:53:14;\n"
    results, _ = drive(op, [Reply(200, body, None, "text/plain; charset=windows-1251")])
    odd = results[1] if op == "send" else results[0]
    assert odd.raw is not None and b"S3cret" not in odd.raw and b"***" in odd.raw
    assert "S3cret" not in repr(results)
    # Not in order either (the rules' other path): the same.
    body = b"\n".join(reversed(body.strip().split(b"\n")))
    results, _ = drive(op, [Reply(200, body, None, None)])
    assert "S3cret" not in repr(results)
    assert [r.code for r in results[:2]] == (
        ["ok", "error-address-format"] if op == "send" else ["ok", "ok"]
    )
