"""Example tests of the codec contract; each runs against both twins (``codec``)."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from types import ModuleType
from urllib.parse import parse_qsl

import pytest

from hpgfast import (
    Code,
    Message,
    MessageError,
    MessageTooLarge,
    MessageTypeError,
    ProtocolError,
    SendResult,
    Status,
    StatusResult,
)

# -- encode_send ---------------------------------------------------------------------


def test_encode_send_specification_example(codec: ModuleType) -> None:
    messages = [
        Message("79031111111", "Hello", "SUBJECT"),
        Message("79032222222", "Hey, you", "SUBJECT"),
    ]
    query, nxt = codec.encode_send(messages)
    assert query == (
        b"subject[0]=SUBJECT&address[0]=79031111111&text[0]=Hello"
        b"&subject[1]=SUBJECT&address[1]=79032222222&text[1]=Hey%2C%20you"
    )
    assert nxt == 2


def test_encode_send_percent_encoding_rules(codec: ModuleType) -> None:
    text = "A-z0.9_~ +&=;%/?#[]é€😀\n"
    query, _ = codec.encode_send([("1", text, "s")])
    assert query.endswith(
        b"text[0]=A-z0.9_~%20%2B%26%3D%3B%25%2F%3F%23%5B%5D%C3%A9%E2%82%AC%F0%9F%98%80%0A"
    )
    assert dict(parse_qsl(query.decode("ascii")))["text[0]"] == text


def test_encode_send_client_id_params_and_quoted_brackets(codec: ModuleType) -> None:
    messages = [Message("79031111111", "Привет", "Shop", "id-1", {"priority": "high", "ttl": ""})]
    query, _ = codec.encode_send(messages, quote_brackets=True)
    assert query == (
        b"subject%5B0%5D=Shop&address%5B0%5D=79031111111"
        b"&text%5B0%5D=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"
        b"&clientId%5B0%5D=id-1&priority%5B0%5D=high&ttl%5B0%5D="
    )
    assert parse_qsl(query.decode(), keep_blank_values=True) == [
        ("subject[0]", "Shop"),
        ("address[0]", "79031111111"),
        ("text[0]", "Привет"),
        ("clientId[0]", "id-1"),
        ("priority[0]", "high"),
        ("ttl[0]", ""),
    ]


def test_encode_send_params_as_pairs_keep_order_and_repeats(codec: ModuleType) -> None:
    query, _ = codec.encode_send([("1", "t", "s", None, [("b", "2"), ("a", "1"), ("b", "3")])])
    assert query.endswith(b"&b[0]=2&a[0]=1&b[0]=3")


def test_encode_send_default_subject_and_short_tuples(codec: ModuleType) -> None:
    query, nxt = codec.encode_send(
        [("79031111111", "hi"), ("79032222222", "yo", "Own")], default_subject="Shop"
    )
    assert nxt == 2
    assert query == (
        b"subject[0]=Shop&address[0]=79031111111&text[0]=hi"
        b"&subject[1]=Own&address[1]=79032222222&text[1]=yo"
    )


def test_encode_send_indexes_restart_at_zero_for_each_request(codec: ModuleType) -> None:
    messages = [("7903111111" + str(i), f"m{i}", "s") for i in range(5)]
    query, nxt = codec.encode_send(messages, start=3)
    assert nxt == 5
    assert query == (
        b"subject[0]=s&address[0]=79031111113&text[0]=m3"
        b"&subject[1]=s&address[1]=79031111114&text[1]=m4"
    )


def test_encode_send_empty_tail(codec: ModuleType) -> None:
    assert codec.encode_send([("1", "t", "s")], start=1) == (b"", 1)
    assert codec.encode_send([]) == (b"", 0)


@pytest.mark.parametrize("start", [-1, 3])
def test_encode_send_start_out_of_range(codec: ModuleType, start: int) -> None:
    with pytest.raises(ValueError, match="start"):
        codec.encode_send([("1", "t", "s"), ("2", "t", "s")], start=start)


@pytest.mark.parametrize("limit", [{"max_bytes": 0}, {"max_count": 0}, {"max_bytes": -5}])
def test_encode_send_rejects_nonsense_limits(codec: ModuleType, limit: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        codec.encode_send([("1", "t", "s")], **limit)


def test_encode_send_max_bytes_is_inclusive_and_exact(codec: ModuleType) -> None:
    messages = [("1", "a", "s"), ("2", "b", "s"), ("3", "c", "s")]
    whole, _ = codec.encode_send(messages)
    first, _ = codec.encode_send(messages, max_count=1)
    two, _ = codec.encode_send(messages, max_count=2)
    assert codec.encode_send(messages, max_bytes=len(whole)) == (whole, 3)
    assert codec.encode_send(messages, max_bytes=len(whole) - 1) == (two, 2)
    assert codec.encode_send(messages, max_bytes=len(two)) == (two, 2)
    assert codec.encode_send(messages, max_bytes=len(first)) == (first, 1)
    assert codec.encode_send(messages, start=1, max_bytes=len(first)) == (
        first.replace(b"=1&", b"=2&").replace(b"=a", b"=b"),
        2,
    )


def test_encode_send_counts_multibyte_text_by_encoded_size(codec: ModuleType) -> None:
    cyrillic = "ж" * 70  # 2 UTF-8 bytes, 6 encoded bytes per character
    messages = [("79031111111", cyrillic, "s")] * 40
    query, nxt = codec.encode_send(messages, max_bytes=8192)
    assert len(query) <= 8192
    assert 15 <= nxt <= 18  # what docs/defaults.md promises: 8 KiB holds 15-18 such texts
    more, _ = codec.encode_send(messages, max_count=nxt + 1)
    assert len(more) > 8192


def test_encode_send_max_count(codec: ModuleType) -> None:
    messages = [("1", "t", "s")] * 10
    assert codec.encode_send(messages, max_count=4)[1] == 4
    assert codec.encode_send(messages, start=8, max_count=4)[1] == 10


def test_message_too_large_names_the_message(codec: ModuleType) -> None:
    messages = [("1", "short", "s"), ("2", "x" * 500, "s")]
    with pytest.raises(MessageTooLarge) as info:
        codec.encode_send(messages, start=1, max_bytes=100)
    assert info.value.index == 1
    assert "message 1" in str(info.value)
    # Behind a message that fits, the large one only ends the request.
    assert codec.encode_send(messages, max_bytes=100)[1] == 1


@pytest.mark.parametrize(
    ("message", "field", "error"),
    [
        (b"not a tuple", "message", MessageTypeError),
        (["1", "t", "s"], "message", MessageTypeError),
        (("1",), "message", MessageError),
        (("1", "t", "s", None, None, "extra"), "message", MessageError),
        ((79031111111, "t", "s"), "address", MessageTypeError),
        (("1", b"t", "s"), "text", MessageTypeError),
        (("1", None, "s"), "text", MessageTypeError),
        (("1", "t", 5), "subject", MessageTypeError),
        (("1", "t", "s", 7), "client_id", MessageTypeError),
        (("1", "t", "s", None, "priority=high"), "params", MessageTypeError),
        (("1", "t", "s", None, 12), "params", MessageTypeError),
        (("1", "t", "s", None, [("a",)]), "params", MessageTypeError),
        (("1", "t", "s", None, {"a": 1}), "params", MessageTypeError),
        (("1", "t", "s", None, {1: "a"}), "params", MessageTypeError),
        (("", "t", "s"), "address", MessageError),
        (("1", "", "s"), "text", MessageError),
        (("1", "t", ""), "subject", MessageError),
        (("1", "t", "s", ""), "client_id", MessageError),
        (("1", "t", "s", None, {"": "x"}), "params", MessageError),
        (("1", "t", "s", None, {"text": "x"}), "params", MessageError),
        (("1", "t", "s", None, {"clientId": "x"}), "params", MessageError),
        (("1\ud800", "t", "s"), "address", MessageError),
        (("1", "a\udfff", "s"), "text", MessageError),
        (("1", "t", "\udc80"), "subject", MessageError),
        (("1", "t", "s", "\ud83d"), "client_id", MessageError),
        (("1", "t", "s", None, {"p": "\ud800"}), "params", MessageError),
        (("1", "t", None), "subject", MessageError),
    ],
)
def test_bad_message_is_named_by_index_and_field(
    codec: ModuleType, message: object, field: str, error: type[Exception]
) -> None:
    messages = [("79031111111", "fine", "s"), message]
    with pytest.raises(error) as info:
        codec.encode_send(messages)
    assert type(info.value) is error
    assert info.value.index == 1  # type: ignore[attr-defined]
    assert info.value.field == field  # type: ignore[attr-defined]
    assert f"message 1: field {field!r}" in str(info.value)


def test_type_errors_are_also_value_errors_and_type_errors(codec: ModuleType) -> None:
    with pytest.raises(TypeError):
        codec.encode_send([("1", 2, "s")])
    with pytest.raises(ValueError):
        codec.encode_send([("1", 2, "s")])


def test_surrogate_error_says_where(codec: ModuleType) -> None:
    with pytest.raises(MessageError, match=r"lone surrogate U\+D800 at character 2"):
        codec.encode_send([("1", "ab\ud800", "s")])


def test_structure_is_checked_before_content(codec: ModuleType) -> None:
    # A surrogate in the address and a wrong type in the text: structure wins.
    with pytest.raises(MessageTypeError) as info:
        codec.encode_send([("1\ud800", 5, "s")])
    assert info.value.field == "text"


def test_duplicate_client_ids_in_one_request(codec: ModuleType) -> None:
    messages = [("1", "t", "s", "a"), ("2", "t", "s", "b"), ("3", "t", "s", "a")]
    with pytest.raises(MessageError, match="already used in this request by message 0") as info:
        codec.encode_send(messages)
    assert (info.value.index, info.value.field) == (2, "client_id")
    # In separate requests the same id is fine.
    assert codec.encode_send(messages, max_count=2)[1] == 2
    assert codec.encode_send(messages, start=2)[1] == 3


def test_client_id_colliding_with_an_index_fallback(codec: ModuleType) -> None:
    # Message 1 has no id: the platform answers for it with "1", which message 0 uses.
    with pytest.raises(MessageError) as info:
        codec.encode_send([("1", "t", "s", "1"), ("2", "t", "s")])
    assert (info.value.index, info.value.field) == (1, "client_id")


def test_default_subject_is_checked(codec: ModuleType) -> None:
    with pytest.raises(MessageTypeError) as info:
        codec.encode_send([("1", "t")], default_subject=b"Shop")
    assert (info.value.index, info.value.field) == (None, "default_subject")
    with pytest.raises(MessageError):
        codec.encode_send([("1", "t")], default_subject="")


def test_messages_beyond_the_cut_are_not_checked(codec: ModuleType) -> None:
    assert codec.encode_send([("1", "t", "s"), ("2", 5, "s")], max_count=1)[1] == 1


# -- encode_status / encode_params -----------------------------------------------------


def test_encode_status_specification_example(codec: ModuleType) -> None:
    assert codec.encode_status(["1001", "1002"]) == (b"providerId[0]=1001&providerId[1]=1002", 2)
    assert codec.encode_status(["1001", "1002"], quote_brackets=True) == (
        b"providerId%5B0%5D=1001&providerId%5B1%5D=1002",
        2,
    )


def test_encode_status_limits(codec: ModuleType) -> None:
    ids = [str(1000 + i) for i in range(20)]
    query, nxt = codec.encode_status(ids, start=5, max_bytes=60)
    assert len(query) <= 60 < len(codec.encode_status(ids, start=5, max_count=nxt - 5 + 1)[0])
    assert codec.encode_status(ids, max_count=3)[1] == 3
    with pytest.raises(MessageTooLarge) as info:
        codec.encode_status(ids, start=2, max_bytes=10)
    assert info.value.index == 2


@pytest.mark.parametrize(
    ("value", "error"), [(1001, MessageTypeError), ("", MessageError), ("1\ud800", MessageError)]
)
def test_encode_status_bad_ids(codec: ModuleType, value: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        codec.encode_status(["1", value])
    assert type(info.value) is error
    assert (info.value.index, info.value.field) == (1, "provider_id")  # type: ignore[attr-defined]


def test_encode_params(codec: ModuleType) -> None:
    assert codec.encode_params({"login": "CLIENT", "password": "P@ss w0rd&="}) == (
        b"login=CLIENT&password=P%40ss%20w0rd%26%3D"
    )
    assert codec.encode_params([("priority", "high"), ("empty", "")]) == b"priority=high&empty="
    assert codec.encode_params([]) == b""
    with pytest.raises(MessageTypeError) as info:
        codec.encode_params({"login": None})
    assert info.value.index is None
    with pytest.raises(MessageError):
        codec.encode_params({"": "x"})
    with pytest.raises(MessageError):
        codec.encode_params({"a": "\udc00"})


# -- parse_send ----------------------------------------------------------------------


def test_parse_send_specification_example(codec: ModuleType) -> None:
    results = codec.parse_send(b"ok;0;1001  \nok;1;1002")
    assert results == [SendResult("ok", "0", "1001"), SendResult("ok", "1", "1002")]
    assert all(type(r) is SendResult and r.ok for r in results)
    assert results[0].code is Code.OK  # known codes come back as the constants


@pytest.mark.parametrize(
    "body",
    [
        b"ok;0;1001\r\nok;1;1002\r\n",
        b"ok;0;1001\nok;1;1002\n",
        b"\n\nok;0;1001 \t\r\n\r\n  ok;1;1002\t\n\n",
        b"\xef\xbb\xbfok;0;1001\nok;1;1002",
        b"ok;0;1001;\nok;1;1002;;",
    ],
)
def test_parse_send_line_ends_blanks_bom_trailing_separators(
    codec: ModuleType, body: bytes
) -> None:
    assert codec.parse_send(body) == [("ok", "0", "1001"), ("ok", "1", "1002")]


def test_parse_send_missing_and_empty_fields(codec: ModuleType) -> None:
    assert codec.parse_send(b"error-address-format;3\nerror-subject-unknown;4;\nok;;99") == [
        SendResult("error-address-format", "3", None),
        SendResult("error-subject-unknown", "4", None),
        SendResult("ok", None, "99"),
    ]


def test_parse_send_whole_request_error_line(codec: ModuleType) -> None:
    [result] = codec.parse_send(b"error-auth\n")
    assert result == SendResult(Code.ERROR_AUTH, None, None)
    assert not result.ok


def test_parse_send_unknown_codes_pass_through(codec: ModuleType) -> None:
    [result] = codec.parse_send(b"error-brand-new.code_7;id;\n")
    assert result.code == "error-brand-new.code_7"
    assert type(result.code) is str


def test_parse_send_utf8_client_ids(codec: ModuleType) -> None:
    assert codec.parse_send("ok;идентификатор 😀;1".encode()) == [("ok", "идентификатор 😀", "1")]


def test_parse_send_empty_body(codec: ModuleType) -> None:
    assert codec.parse_send(b"") == []
    assert codec.parse_send(b"\r\n \n") == []


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_parse_accepts_bytes_like(codec: ModuleType, kind: type) -> None:
    assert codec.parse_send(kind(b"ok;0;1")) == [("ok", "0", "1")]
    assert codec.parse_status(kind(b"ok;1;sent;2020.01.02 03:04:05;")) == [
        ("ok", "1", "sent", datetime(2020, 1, 2, 3, 4, 5), None)
    ]


@pytest.mark.parametrize("body", ["ok;0;1", None, 12, ["ok;0;1"]])
def test_parse_rejects_non_bytes(codec: ModuleType, body: object) -> None:
    with pytest.raises(TypeError):
        codec.parse_send(body)
    with pytest.raises(TypeError):
        codec.parse_status(body)


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b"ok;0;1\nok;\xff;2", 2),
        (b"ok;0;1\n\nok;1;\xc3", 3),
        (b"ok;0;\xed\xa0\x80", 1),  # an encoded surrogate is not UTF-8
        (b"ok;0;\xc0\xaf", 1),  # overlong
        (b"<html><body>Error</body></html>", 1),
        (b"ok;0;1\n;1;2", 2),
        (b"ok;0;1;extra", 1),
        (b"o k;0;1", 1),
        (b"ok\x00;0;1", 1),
        (b"\xff", 1),
    ],
)
def test_parse_send_unreadable_lines(codec: ModuleType, body: bytes, line: int) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.parse_send(body)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


# -- parse_status ----------------------------------------------------------------------


def test_parse_status_specification_example(codec: ModuleType) -> None:
    body = (
        b"ok;1002;delivered;2012.03.15 19:53:14;  \n"
        b"ok;1001;undelivered;2012.03.15 19:53:07;unknown-subscriber"
    )
    first, second = codec.parse_status(body)
    assert first == StatusResult("ok", "1002", "delivered", datetime(2012, 3, 15, 19, 53, 14), None)
    assert second == StatusResult(
        "ok", "1001", "undelivered", datetime(2012, 3, 15, 19, 53, 7), "unknown-subscriber"
    )
    assert type(first) is StatusResult
    assert first.ok and first.final and second.final
    assert first.status is Status.DELIVERED


def test_parse_status_field_cases(codec: ModuleType) -> None:
    body = (
        b"ok;1234567;delivered;2017-02-15 10:35:41;\r\n"  # dashes in the date
        b"error-provider-id-unknown;53156321111;;;\r\n"  # empty fields
        b"ok;77;enqueued;2017.02.15 10:35:41\n"  # no reason field at all
        b"ok;78;queued-somewhere;2017.02.15 10:35:41;\n"  # an unknown status
        b"error-syntax\n"  # a whole-request error line
    )
    results = codec.parse_status(body)
    assert results == [
        ("ok", "1234567", "delivered", datetime(2017, 2, 15, 10, 35, 41), None),
        ("error-provider-id-unknown", "53156321111", None, None, None),
        ("ok", "77", "enqueued", datetime(2017, 2, 15, 10, 35, 41), None),
        ("ok", "78", "queued-somewhere", datetime(2017, 2, 15, 10, 35, 41), None),
        ("error-syntax", None, None, None, None),
    ]
    assert not results[1].ok and not results[1].final
    assert not results[2].final and not results[3].final


def test_parse_status_utf8_reason(codec: ModuleType) -> None:
    [result] = codec.parse_status(
        "ok;1;undelivered;2020.01.01 00:00:00;абонент недоступен".encode()
    )
    assert result.reason == "абонент недоступен"


def test_parse_status_time_zone(codec: ModuleType) -> None:
    moscow = timezone(timedelta(hours=3))
    [result] = codec.parse_status(b"ok;1;sent;2012.03.15 19:53:14;", tz=moscow)
    assert result.time == datetime(2012, 3, 15, 19, 53, 14, tzinfo=moscow)
    assert result.time is not None and result.time.utcoffset() == timedelta(hours=3)
    with pytest.raises(TypeError):
        codec.parse_status(b"ok;1;sent;2012.03.15 19:53:14;", tz="Europe/Moscow")


def test_parse_status_shared_timestamps_are_equal(codec: ModuleType) -> None:
    body = (
        b"ok;1;sent;2012.03.15 19:53:14;\n"
        b"ok;2;sent;2012.03.15 19:53:14;\n"
        b"ok;3;sent;2012.03.15 19:53:15;"
    )
    times = [r.time for r in codec.parse_status(body)]
    assert times == [datetime(2012, 3, 15, 19, 53, 14)] * 2 + [datetime(2012, 3, 15, 19, 53, 15)]


@pytest.mark.parametrize(
    "when",
    [
        b"2012.13.45 25:61:00",
        b"2012.02.30 10:00:00",
        b"2011.02.29 10:00:00",
        b"2012.03.15 24:00:00",
        b"2012.03.15 23:60:00",
        b"2012.03.15 23:59:60",
        b"0000.01.01 00:00:00",
        b"2012.03-15 19:53:14",
        b"2012/03/15 19:53:14",
        b"2012.03.15T19:53:14",
        b"2012.03.15 19:53",
        b"2012.03.15 19:53:14.123",
        b"2012.3.15 19:53:14 ",
        b"+012.03.15 19:53:14",
        b"2012.03.15 1 :53:14",
        b"\xd9\xa2012.03.15 19:53:1",
        b"15.03.2012 19:53:14",
    ],
)
def test_parse_status_impossible_dates(codec: ModuleType, when: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.parse_status(b"ok;1;sent;2012.03.15 19:53:14;\nok;2;sent;" + when + b";")
    assert info.value.line == 2


def test_parse_status_leap_day(codec: ModuleType) -> None:
    [result] = codec.parse_status(b"ok;1;sent;2012.02.29 23:59:59;")
    assert result.time == datetime(2012, 2, 29, 23, 59, 59)


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b"ok;1;delivered;2012.03.15 19:53:14;;extra", 1),
        (b"ok;1;deliv ered;2012.03.15 19:53:14;", 1),
        (b"ok;1;delivered;2012.03.15 19:53:14;\xfe", 1),
        (b"ok;1;sent;;\nok;\x80;sent;;", 2),
        (b";1;sent;;", 1),
    ],
)
def test_parse_status_unreadable_lines(codec: ModuleType, body: bytes, line: int) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.parse_status(body)
    assert info.value.line == line


# -- records and errors ------------------------------------------------------------


def test_records_are_immutable_cheap_tuples() -> None:
    result = StatusResult("ok", "1", "delivered", None, None)
    assert isinstance(result, tuple)
    assert (result.code, result.provider_id, result.status, result.time, result.reason) == (
        "ok", "1", "delivered", None, None,
    )  # fmt: skip
    with pytest.raises(AttributeError):
        result.code = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.extra = 1  # type: ignore[attr-defined]
    assert "StatusResult(code='ok'" in repr(result)


@pytest.mark.parametrize(
    "record",
    [
        Message("1", "t", "s", "c", {"p": "v"}),
        SendResult("ok", "0", "1001"),
        StatusResult("ok", "1", "sent", datetime(2020, 1, 1), None),
    ],
)
def test_records_pickle(record: tuple[object, ...]) -> None:
    copy = pickle.loads(pickle.dumps(record))
    assert copy == record and type(copy) is type(record)


def test_message_defaults_and_replace() -> None:
    message = Message("1", "t")
    assert message == ("1", "t", None, None, None)
    assert message._replace(subject="S") == Message("1", "t", "S")
    assert message.address == "1" and message.text == "t"


def test_status_result_final_statuses() -> None:
    for status in Status.ALL:
        assert StatusResult("ok", "1", status).final == (status in Status.FINAL)
    assert Status.FINAL == {"delivered", "undelivered", "failed", "cancelled"}
    assert not StatusResult("error-syntax").final


@pytest.mark.parametrize(
    "error",
    [
        MessageError(3, "text", "must not be empty"),
        MessageTypeError(3, "text", "expected str, got int"),
        MessageTooLarge(3, "message", "needs 9000 bytes"),
        ProtocolError(7, "garbled code"),
    ],
)
def test_codec_errors_pickle(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
