"""Example tests of the codec contract; each runs against both twins (``codec``)."""

from __future__ import annotations

import inspect
import math
import pickle
import string
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any, Optional
from urllib.parse import parse_qsl

import pytest

from hostile_types import FalsyStr, OddInt
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
    _wire,
)
from hpgfast._wire import Match

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


# -- encode_send: made client ids (id_prefix) ------------------------------------------


def _client_ids(query: bytes) -> dict[str, str]:
    return {k: v for k, v in parse_qsl(query.decode("ascii")) if k.startswith("clientId[")}


def test_wire_id_scheme() -> None:
    assert _wire.ID_ALPHABET == string.digits + string.ascii_uppercase + string.ascii_lowercase
    assert set(_wire.ID_ALPHABET.encode("ascii")) <= _wire.UNRESERVED  # sent as they are
    assert _wire.ID_PREFIX_MAX_LENGTH + _wire.ID_SUFFIX_LENGTH == _wire.ID_MAX_LENGTH == 20
    assert _wire.ID_MAX_COUNT == 62**3 == 238_328
    suffixes = _wire.client_id_suffixes(_wire.ID_MAX_COUNT)
    assert suffixes[:3] == ["000", "001", "002"]
    assert suffixes[61:63] == ["00z", "010"]
    assert suffixes[3844] == "100" and suffixes[-1] == "zzz"
    assert len(set(suffixes)) == len(suffixes) and suffixes == sorted(suffixes)
    assert _wire.client_id_suffixes(0) == []
    for bad in (-1, _wire.ID_MAX_COUNT + 1):
        with pytest.raises(ValueError):
            _wire.client_id_suffixes(bad)


def test_id_prefix_makes_the_missing_client_ids(codec: ModuleType) -> None:
    messages = [
        Message("1", "a"),
        Message("2", "b", None, "own-id"),
        Message("3", "c", None, None, {"ttl": "60"}),
    ]
    query, nxt = codec.encode_send(messages, default_subject="S", id_prefix="Ab9")
    assert nxt == 3
    # Where a message's own clientId goes: after its text, before its params.
    assert parse_qsl(query.decode("ascii")) == [
        ("subject[0]", "S"), ("address[0]", "1"), ("text[0]", "a"), ("clientId[0]", "Ab9000"),
        ("subject[1]", "S"), ("address[1]", "2"), ("text[1]", "b"), ("clientId[1]", "own-id"),
        ("subject[2]", "S"), ("address[2]", "3"), ("text[2]", "c"), ("clientId[2]", "Ab9002"),
        ("ttl[2]", "60"),
    ]  # fmt: skip
    quoted, _ = codec.encode_send(
        messages, default_subject="S", id_prefix="Ab9", quote_brackets=True
    )
    assert b"&clientId%5B0%5D=Ab9000&" in quoted
    assert quoted.replace(b"%5B", b"[").replace(b"%5D", b"]") == query


def test_id_prefix_suffix_is_the_index_in_the_request_in_base62(codec: ModuleType) -> None:
    messages = [("7903", "t", "S")] * 4000
    prefix = "Z" * _wire.ID_PREFIX_MAX_LENGTH
    query, nxt = codec.encode_send(messages, id_prefix=prefix)
    assert nxt == 4000
    ids = _client_ids(query)
    expected = [prefix + suffix for suffix in _wire.client_id_suffixes(4000)]
    assert [ids[f"clientId[{k}]"] for k in range(4000)] == expected
    assert ids["clientId[3844]"] == prefix + "100"
    assert max(len(v) for v in ids.values()) == _wire.ID_MAX_LENGTH
    # Indexes restart in every request, and so do the suffixes.
    again, _ = codec.encode_send(messages, start=3998, id_prefix="p")
    assert _client_ids(again) == {"clientId[0]": "p000", "clientId[1]": "p001"}


def test_twins_share_the_encode_send_signature(pure: ModuleType, compiled: ModuleType) -> None:
    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(compiled.encode_send) == shape(pure.encode_send)
    assert "id_prefix" in inspect.signature(pure.encode_send).parameters


def test_id_prefix_none_changes_nothing(codec: ModuleType) -> None:
    messages = [("1", "t", "s"), ("2", "t", "s", "x"), ("3", "t")]
    assert codec.encode_send(messages, default_subject="D", id_prefix=None) == codec.encode_send(
        messages, default_subject="D"
    )


def test_id_prefix_max_bytes_counts_the_ids_exactly(codec: ModuleType) -> None:
    messages: list[tuple[str, ...]] = []
    for k in range(4):
        messages += [("1", "Привет", "s"), ("22", "t", "s", f"own{k}"), ("3", "t t")]
    kw: dict[str, Any] = {"id_prefix": "Q7", "default_subject": "D"}
    whole, _ = codec.encode_send(messages, **kw)
    assert len(_client_ids(whole)) == 12
    for count in range(1, 13):
        part, nxt = codec.encode_send(messages, max_count=count, **kw)
        assert nxt == count
        # Exactly its size fits; one byte less cuts the last message off.
        assert codec.encode_send(messages, max_bytes=len(part), **kw) == (part, count)
        if count > 1:
            shorter, n = codec.encode_send(messages, max_bytes=len(part) - 1, **kw)
            assert n == count - 1 and len(shorter) < len(part)
    with pytest.raises(MessageTooLarge) as info:
        alone, _ = codec.encode_send(messages[2:3], **kw)
        codec.encode_send(messages, start=2, max_bytes=len(alone) - 1, **kw)
    assert info.value.index == 2
    # Every request of a chunked batch stays within max_bytes.
    start = 0
    while start < len(messages):
        query, nxt = codec.encode_send(messages, start=start, max_bytes=150, **kw)
        assert len(query) <= 150 and nxt > start
        start = nxt


def test_id_prefix_caps_a_request_at_id_max_count(codec: ModuleType) -> None:
    cap = _wire.ID_MAX_COUNT
    messages = (("1", "t", "S"),) * (cap + 2)
    query, nxt = codec.encode_send(messages, max_bytes=10**9, id_prefix="P")
    assert nxt == cap
    assert query.endswith(b"&clientId[238327]=Pzzz")
    assert query.count(b"&clientId[") == cap
    rest, end = codec.encode_send(messages, start=nxt, max_bytes=10**9, id_prefix="P")
    assert end == cap + 2
    assert _client_ids(rest) == {"clientId[0]": "P000", "clientId[1]": "P001"}
    # A smaller max_count still wins.
    assert codec.encode_send(messages, max_count=5, id_prefix="P")[1] == 5


def test_compiled_caps_under_a_larger_max_count(compiled: ModuleType) -> None:
    # The compiled twin folds the cap into its count limit: check that path too (the
    # pure twin's is a plain bound on the loop, and takes seconds at this size).
    messages = (("1", "t", "S"),) * (_wire.ID_MAX_COUNT + 1)
    assert compiled.encode_send(messages)[1] == _wire.ID_MAX_COUNT + 1  # no cap without ids
    assert compiled.encode_send(messages, max_count=10**6, id_prefix="P")[1] == _wire.ID_MAX_COUNT
    assert compiled.encode_send(messages, max_count=1e9, id_prefix="P")[1] == _wire.ID_MAX_COUNT
    assert compiled.encode_send(messages, max_count=math.nan, id_prefix="P")[1] == (
        _wire.ID_MAX_COUNT
    )


@pytest.mark.parametrize(
    ("prefix", "error", "message"),
    [
        ("", ValueError, "got ''"),
        ("a" * 18, ValueError, "got 'aaaaaaaaaaaaaaaaaa'"),
        ("-", ValueError, "got '-'"),
        ("ab_", ValueError, "got 'ab_'"),
        ("é", ValueError, "got 'é'"),
        ("٣", ValueError, "got '٣'"),  # a digit to str.isdigit(), not to the platform
        ("a\ud800", ValueError, "got 'a\\ud800'"),
        ("x" * 1000, ValueError, "got 1000 characters"),
        (b"ab", TypeError, "id_prefix must be a str or None, got bytes"),
        (7, TypeError, "id_prefix must be a str or None, got int"),
    ],
)
def test_invalid_id_prefixes_raise_alike(
    pure: ModuleType, compiled: ModuleType, prefix: Any, error: type[Exception], message: str
) -> None:
    texts = []
    for twin in (pure, compiled):
        # Before anything is encoded, even for an empty batch.
        for messages in ([("1", "t", "s")], []):
            with pytest.raises(error) as info:
                twin.encode_send(messages, id_prefix=prefix)
            assert type(info.value) is error
            texts.append(str(info.value))
    assert texts[0].endswith(message)
    if error is ValueError:
        assert texts[0].startswith("id_prefix must be 1 to 17 characters of [0-9A-Za-z]")
    assert len(set(texts)) == 1


def test_id_prefix_str_subclass_is_sent_as_its_characters(codec: ModuleType) -> None:
    class Odd(str):
        def __str__(self) -> str:
            return "zz"

        def __iter__(self) -> Any:
            return iter("zz")

        def __len__(self) -> int:
            return 2

    query, _ = codec.encode_send([("1", "t", "s")], id_prefix=Odd("Abc"))
    assert _client_ids(query) == {"clientId[0]": "Abc000"}
    with pytest.raises(ValueError, match="got '-'"):
        codec.encode_send([("1", "t", "s")], id_prefix=Odd("-"))


def test_made_id_colliding_with_an_own_client_id(codec: ModuleType) -> None:
    # Message 1 is sent as P001, which message 0 already uses (and the other way).
    with pytest.raises(MessageError, match=r"'P001' is already used .* by message 0") as info:
        codec.encode_send([("1", "t", "s", "P001"), ("2", "t", "s")], id_prefix="P")
    assert (info.value.index, info.value.field) == (1, "client_id")
    with pytest.raises(MessageError, match=r"'P000' is already used .* by message 0") as info:
        codec.encode_send([("1", "t", "s"), ("2", "t", "s", "P000")], id_prefix="P")
    assert (info.value.index, info.value.field) == (1, "client_id")
    # A str subclass among the own ids takes the other duplicate check.
    with pytest.raises(MessageError, match=r"'P000' is already used .* by message 0"):
        codec.encode_send([("1", "t", "s"), ("2", "t", "s", _Id("P000"))], id_prefix="P")
    # An own id equal to an index no longer collides: indexes are not the ids any more.
    assert codec.encode_send([("1", "t", "s", "1"), ("2", "t", "s")], id_prefix="P")[1] == 2


class _Id(str):
    """A str subclass as a client id."""


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
    ("when", "expected"),
    [
        (b"2012.13.45 25:61:00", None),
        (b"2012.02.30 10:00:00", None),
        (b"2011.02.29 10:00:00", None),
        (b"2012.03.15 24:00:00", datetime(2012, 3, 16)),  # ISO's end of day
        (b"2012.03.15 23:60:00", None),
        (b"2012.03.15 23:59:60", datetime(2012, 3, 15, 23, 59, 59)),  # a leap second
        (b"0000.01.01 00:00:00", None),
        (b"2012.03-15 19:53:14", None),
        (b"2012/03/15 19:53:14", None),
        (b"2012.03.15T19:53:14", datetime(2012, 3, 15, 19, 53, 14)),  # ISO-8601's T
        (b"2012.03.15 19:53", datetime(2012, 3, 15, 19, 53)),  # ISO-8601: no seconds
        (b"2012.03.15 19:53:14.123", datetime(2012, 3, 15, 19, 53, 14, 123000)),
        (b"2012.3.15 19:53:14 ", None),
        (b"+012.03.15 19:53:14", None),
        (b"2012.03.15 1 :53:14", None),
        (b"\xd9\xa2012.03.15 19:53:1", None),
        (b"15.03.2012 19:53:14", None),
    ],
)
def test_parse_status_a_date_of_another_shape_costs_only_the_time(
    codec: ModuleType, when: bytes, expected: Optional[datetime]
) -> None:
    # Only the code and the status decide an outcome: a time the fast reader does not
    # take is read as ISO-8601, or is None, and the line is kept (its bytes as .raw).
    line = b"ok;2;sent;" + when + b";"
    first, second = codec.parse_status(b"ok;1;sent;2012.03.15 19:53:14;\n" + line)
    assert first.raw is None and len(first) == 5
    assert second[:5] == ("ok", "2", "sent", expected, None)
    assert second.raw == line.strip() and len(second) == 6


def test_parse_status_leap_day(codec: ModuleType) -> None:
    [result] = codec.parse_status(b"ok;1;sent;2012.02.29 23:59:59;")
    assert result.time == datetime(2012, 2, 29, 23, 59, 59)


def test_read_status_dates_sharing_a_day(codec: ModuleType) -> None:
    # The compiled reader checks a day's bytes once and reuses them for the next
    # lines with the same 11 bytes: a bad time, another separator, the next day, a
    # bad day between two good ones must all read as if each line were alone.
    body = (
        b"ok;1;sent;2012.03.15 19:53:14;\n"
        b"ok;2;sent;2012.03.15 24:00:00;\n"
        b"ok;3;sent;2012.03.15 00:00:00;\n"
        b"ok;4;sent;2012-03-15 23:59:59;\n"
        b"ok;5;sent;2012.03.16 00:00:01;\n"
        b"ok;6;sent;2012.02.30 00:00:01;\n"
        b"ok;7;sent;2012.03.16 12:00:60;\n"
        b"ok;8;sent;2012.03.15 19:53:14;\n"
        b"ok;9;sent;2012.03.15 9:53:14 ;\n"
    )
    results, errors = codec.read_status(body)
    assert [r.time for r in results] == [
        datetime(2012, 3, 15, 19, 53, 14),
        datetime(2012, 3, 16, 0, 0, 0),  # 24:00, the end of the day (slow path)
        datetime(2012, 3, 15, 0, 0, 0),
        datetime(2012, 3, 15, 23, 59, 59),
        datetime(2012, 3, 16, 0, 0, 1),
        None,
        datetime(2012, 3, 16, 12, 0, 59),  # a leap second, clamped (slow path)
        datetime(2012, 3, 15, 19, 53, 14),
        None,
    ]
    # A time read off the fast path, or impossible, costs only itself: the line is
    # kept, with its bytes.
    assert [r.provider_id for r in results if r.raw is not None] == ["2", "6", "7", "9"]
    assert errors == []


def test_big_status_reply_dates_match_the_pure_twin(pure: ModuleType, compiled: ModuleType) -> None:
    # Past 64 KiB the compiled reader shares datetimes through a cache with a slot
    # per second of a 2 h 16 min window: dates over three days (and two months)
    # land on one another's slots, and each must still get its own time.
    base = datetime(2026, 2, 27, 22, 0, 0)
    lines = [
        f"ok;{k};delivered;{base + timedelta(seconds=(k * 7919) % 259_200):%Y.%m.%d %H:%M:%S};"
        for k in range(4000)
    ]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 65536
    got = compiled.parse_status(body)
    assert got == pure.parse_status(body)
    assert len({r.time.date() for r in got}) == 4


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b"ok;1;deliv ered;2012.03.15 19:53:14;", 1),
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
    # The specification's four, and the five seen in the field, in any case.
    assert Status.FINAL == {
        "delivered",
        "undelivered",
        "failed",
        "cancelled",
        "expired",
        "vp_expired",
        "rejected",
        "read",
        "no-match-template",
    }
    assert StatusResult("ok", "1", "DELIVERED").final
    assert StatusResult("ok", "1", "Vp_Expired").final
    assert not StatusResult("ok", "1", "ENQUEUED").final
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


# -- tolerant replies (the real-platform issue, item 3, 4, 6) --------------------------


def test_send_extra_fields_are_kept(codec: ModuleType) -> None:
    results = codec.parse_send(b"ok;0;1001;2\nok;1;1002;3;x;\nok;2;1003;;\nok;3;1004")
    assert results == [
        ("ok", "0", "1001", "2"),
        ("ok", "1", "1002", "3;x"),
        ("ok", "2", "1003"),
        ("ok", "3", "1004"),
    ]
    assert [r.extra for r in results] == ["2", "3;x", None, None]
    assert [r.provider_id for r in results] == ["1001", "1002", "1003", "1004"]
    assert all(type(r) is SendResult for r in results)
    assert codec.read_send(b"ok;0;1001;2") == ([("ok", "0", "1001", "2")], [])


def test_send_missing_ids(codec: ModuleType) -> None:
    body = b"ok;;1001\nok;0;\nok;0"
    assert codec.parse_send(body) == [("ok", None, "1001"), ("ok", "0", None), ("ok", "0", None)]
    assert codec.read_send(body) == (codec.parse_send(body), [])


def test_status_reason_holds_separators(codec: ModuleType) -> None:
    body = (
        b"ok;1001;undelivered;2012.03.15 19:53:07;absent;subscriber\n"
        b"ok;1002;undelivered;2012.03.15 19:53:07;;x;\n"
        b"ok;1003;delivered;2012.03.15 19:53:07;;;"
    )
    when = datetime(2012, 3, 15, 19, 53, 7)
    expected = [
        ("ok", "1001", "undelivered", when, "absent;subscriber"),
        ("ok", "1002", "undelivered", when, ";x"),
        ("ok", "1003", "delivered", when, None),
    ]
    assert codec.parse_status(body) == expected
    assert codec.read_status(body) == (expected, [])


def test_field_statuses_pass_through_unchanged(codec: ModuleType) -> None:
    statuses = ["expired", "vp_expired", "read", "rejected", "DELIVERED", "no-match-template"]
    body = "".join(f"ok;{i};{s};2020.01.02 03:04:05;\r\n" for i, s in enumerate(statuses))
    results, errors = codec.read_status(body.encode())
    assert errors == []
    assert [r.status for r in results] == statuses
    assert codec.parse_status(body.encode()) == results


def test_read_empty_and_blank_bodies(codec: ModuleType) -> None:
    for body in (b"", b"\r\n \n\t", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"):
        assert codec.read_send(body) == ([], [])
        assert codec.read_status(body) == ([], [])


@pytest.mark.parametrize("body", ["ok;0;1", None, 12, ["ok;0;1"]])
def test_read_rejects_non_bytes(codec: ModuleType, body: object) -> None:
    with pytest.raises(TypeError):
        codec.read_send(body)
    with pytest.raises(TypeError):
        codec.read_status(body)
    with pytest.raises(TypeError):
        codec.read_status(b"", tz="Europe/Moscow")


# -- match_*: read_*, checked against the ids sent -------------------------------------


def test_match_send_flags_the_usual_reply(codec: ModuleType) -> None:
    ids = ["AbC000", "AbC001", "own-id"]
    body = b"ok;AbC000;1001\r\nok;AbC001;1002\nok;own-id;1003\n"
    results, errors, flags = codec.match_send(body, ids)
    assert (results, errors) == codec.read_send(body)
    assert flags == Match.ALL
    assert codec.match_send(body, tuple(ids))[2] == Match.ALL
    # A rejected message, an extra field: the flags say so, and still ALL.
    body = b"ok;AbC000;1001;2\nerror-address-format;AbC001;\nok;own-id;1003"
    assert codec.match_send(body, ids)[2] == Match.ALL | Match.NOT_OK | Match.FREE_TEXT


@pytest.mark.parametrize(
    "body",
    [
        b"ok;AbC000;1001\nok;AbC001;1002",  # a line missing
        b"ok;AbC000;1001\nok;AbC001;1002\nok;own-id;1003\nok;x;1004",  # one too many
        b"ok;AbC001;1002\nok;AbC000;1001\nok;own-id;1003",  # out of order
        b"ok;AbC000;1001\n<html>\nok;AbC001;1002\nok;own-id;1003",  # an unreadable line
        b"ok;AbC000;1001\nok;;1002\nok;own-id;1003",  # an id missing
        b"ok;0;1001\nok;1;1002\nok;2;1003",  # indexes instead of the ids sent
        b"error-auth",  # a whole-request code
    ],
)
def test_match_send_anything_else_is_not_all(codec: ModuleType, body: bytes) -> None:
    ids = ["AbC000", "AbC001", "own-id"]
    results, errors, flags = codec.match_send(body, ids)
    read_results, read_errors = codec.read_send(body)
    assert results == read_results
    assert [(e.line, e.reason) for e in errors] == [(e.line, e.reason) for e in read_errors]
    assert not flags & Match.ALL


def test_match_ids_are_compared_as_text(codec: ModuleType) -> None:
    # Non-ASCII ids, and ids that are not exact str (never matched: no __eq__ asked).
    body = "ok;й-1;1001\nok;2;1002".encode()
    assert codec.match_send(body, ["й-1", "2"])[2] == Match.ALL
    assert codec.match_send(body, ["й-2", "2"])[2] == 0
    assert codec.match_send(body, [FalsyStr("й-1"), "2"])[2] == 0
    assert codec.match_send(b"", [])[2] == Match.ALL


def test_match_status(codec: ModuleType) -> None:
    body = (
        b"ok;1001;delivered;2012.03.15 19:53:07;\n"
        b"ok;1002;undelivered;2012.03.15 19:53:07;absent;subscriber\n"
    )
    results, errors, flags = codec.match_status(body, ["1001", "1002"], tz=timezone.utc)
    assert (results, errors) == codec.read_status(body, tz=timezone.utc)
    assert flags == Match.ALL | Match.FREE_TEXT
    assert codec.match_status(body, ["1002", "1001"])[2] == Match.FREE_TEXT
    assert codec.match_status(b"error-auth", ["1001"])[2] == Match.NOT_OK


@pytest.mark.parametrize("expect", [None, "AbC000", {"AbC000"}, iter(["AbC000"])])
def test_match_takes_a_list_or_tuple(codec: ModuleType, expect: object) -> None:
    with pytest.raises(TypeError, match="expect must be a list or tuple"):
        codec.match_send(b"ok;AbC000;1", expect)
    with pytest.raises(TypeError, match="expect must be a list or tuple"):
        codec.match_status(b"ok;1;sent;;", expect)
    with pytest.raises(TypeError, match="bytes-like"):  # the body is checked first
        codec.match_send("ok;AbC000;1", expect)


_LONG_GARBAGE = b"<" * 100_000


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_read_send_keeps_good_lines_around_bad_ones(codec: ModuleType, kind: type) -> None:
    body = b"\r\n".join(
        [
            b"\xef\xbb\xbfok;0;1001",  # 1: BOM at the start of the body
            b"<html><body>Error</body></html>",  # 2
            b"ok;1;1002",  # 3
            b"\x00\x01\x02\xff\xfe",  # 4: binary
            b"ok;2;\xff\xfe",  # 5: not UTF-8
            b"",  # 6: blank, skipped
            b";;;",  # 7: only separators
            b"ok;3;" + b"9" * 100_000,  # 8: an overlong field is still a field
            _LONG_GARBAGE,  # 9: overlong garbage
            b"ok;4;1004;2",  # 10
            b"error-address-format;5;",  # 11
        ]
    )
    results, errors = codec.read_send(kind(body))
    assert results == [
        ("ok", "0", "1001"),
        ("ok", "1", "1002"),
        ("ok", "3", "9" * 100_000),
        ("ok", "4", "1004", "2"),
        ("error-address-format", "5", None),
    ]
    assert [(e.line, e.reason) for e in errors] == [
        (2, "garbled code in '<html><body>Error</body></html>'"),
        (4, "garbled code in '\\x00\\x01\\x02\ufffd\ufffd'"),
        (5, "not UTF-8 in 'ok;2;\ufffd\ufffd'"),
        (7, "empty code in ';;;'"),
        (9, "garbled code in '" + "<" * 60 + "' (first 60 of 100000 bytes)"),
    ]
    assert all(type(e) is ProtocolError for e in errors)
    assert "line 2: garbled code" in str(errors[0])
    # parse_send reads the same lines, and raises for the first bad one.
    with pytest.raises(ProtocolError) as info:
        codec.parse_send(body)
    assert (info.value.line, info.value.reason) == (2, "garbled code")


def test_read_status_keeps_good_lines_around_bad_ones(codec: ModuleType) -> None:
    body = (
        b"ok;1;delivered;2012.03.15 19:53:14;\r\n"  # 1
        b"ok;2;sent;2012.13.45 25:61:00;\r\n"  # 2: impossible date: time None
        b"ok;3;delivered;2012.03.15 19:53:14;\r\n"  # 3: shares line 1's date
        b"ok;4;deliv ered;2012.03.15 19:53:14;\r\n"  # 4: garbled status
        b"ok;5;undelivered;2012.03.15 19:53:15;\xc3\r\n"  # 5: reason not UTF-8: U+FFFD
        b"ok;6;undelivered;2012.03.15 19:53:15;absent;subscriber\r\n"  # 6
        b";6;sent;;\r\n"  # 7: empty code
        b"ok;7;expired;2012.03.15 19:53:16;\r\n"  # 8
    )
    results, errors = codec.read_status(body)
    t14, t15, t16 = (datetime(2012, 3, 15, 19, 53, s) for s in (14, 15, 16))
    assert results == [
        ("ok", "1", "delivered", t14, None),
        ("ok", "2", "sent", None, None, b"ok;2;sent;2012.13.45 25:61:00;"),
        ("ok", "3", "delivered", t14, None),
        ("ok", "5", "undelivered", t15, "\ufffd", b"ok;5;undelivered;2012.03.15 19:53:15;\xc3"),
        ("ok", "6", "undelivered", t15, "absent;subscriber"),
        ("ok", "7", "expired", t16, None),
    ]
    assert [(e.line, e.reason) for e in errors] == [
        (4, "garbled status in 'ok;4;deliv ered;2012.03.15 19:53:14;'"),
        (7, "empty code in ';6;sent;;'"),
    ]
    with pytest.raises(ProtocolError) as info:
        codec.parse_status(body)
    assert (info.value.line, info.value.reason) == (4, "garbled status")


def test_read_status_time_zone_and_a_body_of_garbage(codec: ModuleType) -> None:
    moscow = timezone(timedelta(hours=3))
    results, errors = codec.read_status(b"ok;1;sent;2012.03.15 19:53:14;", tz=moscow)
    assert results[0].time == datetime(2012, 3, 15, 19, 53, 14, tzinfo=moscow)
    results, errors = codec.read_status(b"<html>\n<body>oops</body>\n</html>\n")
    assert results == [] and [e.line for e in errors] == [1, 2, 3]


def test_send_result_extra_record() -> None:
    plain = SendResult("ok", "0", "1001")
    assert plain == ("ok", "0", "1001") and len(plain) == 3 and plain.extra is None
    assert SendResult("ok", "0", "1001", None) == plain
    extra = SendResult("ok", "0", "1001", "2")
    assert extra == ("ok", "0", "1001", "2") and extra.extra == "2" and extra.ok
    assert repr(extra) == "SendResult(code='ok', client_id='0', provider_id='1001', extra='2')"
    assert repr(plain) == "SendResult(code='ok', client_id='0', provider_id='1001')"
    for record in (plain, extra):
        copy = pickle.loads(pickle.dumps(record))
        assert copy == record and type(copy) is SendResult and copy.extra == record.extra
    with pytest.raises(AttributeError):
        extra.extra = "3"  # type: ignore[misc]


def test_send_failure_still_builds_on_send_result() -> None:
    from hpgfast.client import SendFailure

    failure = SendFailure("unknown", "0", None, error=ProtocolError(1, "garbled code"))
    assert failure == ("unknown", "0", None) and failure.extra is None
    copy = pickle.loads(pickle.dumps(failure))
    assert copy == failure and type(copy) is SendFailure


# -- read_send_columns: the SEND reply as columns -------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_read_send_columns_holds_read_sends_answer(codec: ModuleType, kind: type) -> None:
    body = b"\r\n".join(
        [
            b"\xef\xbb\xbfok;0;1001",  # 1: BOM at the start of the body
            b"<html>",  # 2: garbled
            b"ok;\xd0\xb9\xd1\x86;1002",  # 3: a non-ASCII client id
            b"",  # 4: blank, skipped
            b"error-address-format;2;",  # 5: no provider id
            b"ok;3;1003;2;x",  # 6: extra text after a third ';'
            b"ok;;1004",  # 7: no client id
            b"ok;5;\xff",  # 8: not UTF-8
            b"not-a-known-code;6",  # 9: a code hpgfast does not know
        ]
    )
    columns = codec.read_send_columns(kind(body))
    results, errors = codec.read_send(body)
    assert columns.results() == results == list(columns)
    assert [type(r) for r in columns] == [type(r) for r in results]
    assert len(columns) == 6
    assert columns.codes == ["ok", "ok", "error-address-format", "ok", "ok", "not-a-known-code"]
    assert columns.ok_count == 4
    assert columns.client_ids == "0йц236".encode()
    assert list(columns.client_id_ends) == [1, 5, 6, 7, 7, 8]
    assert columns.provider_ids == b"1001100210031004"
    assert list(columns.provider_id_ends) == [4, 8, 8, 12, 16, 16]
    assert columns.extras == {3: "2;x"}
    assert columns.client_id(1) == "йц" and columns.client_id(4) is None
    assert columns.provider_id(-1) is None and columns.provider_id(0) == "1001"
    assert columns[3] == ("ok", "3", "1003", "2;x") and columns[3].extra == "2;x"
    assert [(e.line, e.reason) for e in columns.errors] == [(e.line, e.reason) for e in errors]
    assert [e.line for e in columns.errors] == [2, 8]
    with pytest.raises(IndexError):
        columns[6]
    with pytest.raises(IndexError):
        columns.client_id(-7)
    assert "6 records" in repr(columns) and "2 errors" in repr(columns)


def test_read_send_columns_empty_and_hostile_bodies(codec: ModuleType) -> None:
    for body in (b"", b"\r\n \n\t", b"\xef\xbb\xbf"):
        columns = codec.read_send_columns(body)
        assert len(columns) == 0 and columns.results() == [] and columns.errors == []
        assert columns.client_ids == b"" and list(columns.client_id_ends) == []
    for body in ("ok;0;1", None, 12, ["ok;0;1"]):
        with pytest.raises(TypeError):
            codec.read_send_columns(body)
    columns = codec.read_send_columns(_LONG_GARBAGE + b"\nok;1;" + b"9" * 100_000)
    assert columns.results() == [("ok", "1", "9" * 100_000)]
    assert [e.line for e in columns.errors] == [1]


def test_read_send_columns_of_a_big_reply_twice(codec: ModuleType) -> None:
    # The compiled core keeps its scratch memory for the next call: a second, smaller
    # reply must not see the first one's bytes.
    big = b"".join(b"ok;%d;%d\r\n" % (i, 10**11 + i) for i in range(20_000))
    first = codec.read_send_columns(big)
    assert len(first) == 20_000 and first.ok_count == 20_000
    assert first[19_999] == ("ok", "19999", str(10**11 + 19_999))
    second = codec.read_send_columns(b"error-x;7;\nok;8;9")
    assert second.results() == [("error-x", "7", None), ("ok", "8", "9")]
    assert second.client_ids == b"78" and second.provider_ids == b"9"
    assert first == codec.read_send_columns(big) != second


def test_sent_ids_own_made_and_index_ids(codec: ModuleType) -> None:
    messages = [("1", "t", "S"), ("2", "t", "S", "own"), ("3", "t"), ("4", "t", None, None)]
    assert codec.sent_ids(messages, 0, 4, "Ab9") == ["Ab9000", "own", "Ab9002", "Ab9003"]
    assert codec.sent_ids(messages, 1, 4) == ["own", "1", "2"]
    assert codec.sent_ids(messages, 2, 2, "X") == []
    many = [("1", "t")] * 70_000
    ids = codec.sent_ids(many, 0, 70_000)
    assert ids[9] == "9" and ids[69_999] == "69999"
    made = codec.sent_ids(many, 5, 3850, "p")
    assert made[0] == "p000" and made[3844] == "p100"


# OddInt is an int whose comparisons lie (every ``<=`` is True). CPython 3.9's
# ``operator.index`` hands an int subclass back as it is (3.10 on: an exact int), so a
# span checked with ``<=`` on it let any value through: the pure twin read
# ``messages[-1]``, and the compiled core the slot before a list's or tuple's first
# item (a segmentation fault). Spans and limits are checked on their int values.
@pytest.mark.parametrize("batch", [[], [Message("1", "t")], (Message("1", "t"),)])
def test_sent_ids_checks_the_span_on_int_values(codec: ModuleType, batch: Any) -> None:
    n = len(batch)
    with pytest.raises(ValueError, match=rf"start=-1 and end=0 are not within 0\.\.{n}"):
        codec.sent_ids(batch, OddInt(-1), 0)
    with pytest.raises(ValueError, match=rf"start=0 and end={n + 1} are not within"):
        codec.sent_ids(batch, 0, OddInt(n + 1))
    with pytest.raises(ValueError, match=rf"start={n + 1} and end={n} are not within"):
        codec.sent_ids(batch, OddInt(n + 1), OddInt(n))
    assert codec.sent_ids(batch, OddInt(0), OddInt(n)) == [str(k) for k in range(n)]


@pytest.mark.parametrize("batch", [[("1", "t", "s")], (("1", "t", "s"),)])
def test_encoders_check_start_and_limits_on_int_values(codec: ModuleType, batch: Any) -> None:
    for encode, items in ((codec.encode_send, batch), (codec.encode_status, ["1"])):
        with pytest.raises(ValueError, match="start=-1 is outside"):
            encode(items, start=OddInt(-1))
        with pytest.raises(ValueError, match="start=2 is outside"):
            encode(items, start=OddInt(2))
        with pytest.raises(ValueError, match="max_bytes must be at least 1, got 0"):
            encode(items, max_bytes=OddInt(0))
        with pytest.raises(ValueError, match="max_count must be at least 1, got -1"):
            encode(items, max_count=OddInt(-1))
        assert encode(items, start=OddInt(1)) == (b"", 1)
        assert encode(items, max_count=OddInt(1))[1] == 1


def test_sent_ids_name_the_message_and_refuse_bad_spans(codec: ModuleType) -> None:
    with pytest.raises(MessageTypeError) as info:
        codec.sent_ids([("1", "t"), "x"], 0, 2)
    assert (info.value.index, info.value.field) == (1, "message")
    with pytest.raises(MessageTypeError) as info:
        codec.sent_ids([("1", "t"), ("2", "t", "S", 5)], 0, 2, "P")
    assert (info.value.index, info.value.field) == (1, "client_id")
    with pytest.raises(MessageError) as info:
        codec.sent_ids([("1", "t", "S", "")], 0, 1)
    assert (info.value.index, info.value.field) == (0, "client_id")
    with pytest.raises(MessageError, match="2 to 5 fields"):
        codec.sent_ids([("1",)], 0, 1)
    for start, end in ((1, 0), (0, 2), (-1, 1)):
        with pytest.raises(ValueError, match=r"not within 0\.\.1"):
            codec.sent_ids([("1", "t")], start, end)
    with pytest.raises(ValueError, match="id_prefix"):
        codec.sent_ids([("1", "t")], 0, 1, "a-b")
    with pytest.raises(TypeError):
        codec.sent_ids({0: ("1", "t")}, 0, 1)
    too_many = [("1", "t")] * (_wire.ID_MAX_COUNT + 1)
    with pytest.raises(ValueError, match="at most 238328"):
        codec.sent_ids(too_many, 0, len(too_many), "P")
    assert len(codec.sent_ids(too_many, 0, len(too_many))) == len(too_many)


# -- fields read tolerantly: a time in another shape, text that is not UTF-8 -----------

_MSK = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (b"2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        (b"2024-05-01t10:00:00z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        (b"2024-05-01 10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
        (b"2024-05-01T10:00:00+03:00", datetime(2024, 5, 1, 10, tzinfo=_MSK)),
        (b"2024-05-01T10:00:00+0300", datetime(2024, 5, 1, 10, tzinfo=_MSK)),
        (b"2024-05-01T10:00:00+03", datetime(2024, 5, 1, 10, tzinfo=_MSK)),
        (
            b"2024-05-01T10:00:00-05:30",
            datetime(2024, 5, 1, 10, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        (b"2024-05-01T10:00:00.5Z", datetime(2024, 5, 1, 10, 0, 0, 500000, timezone.utc)),
        (b"2024-05-01T10:00:00,25", datetime(2024, 5, 1, 10, 0, 0, 250000)),
        (
            b"2024-05-01T10:00:00.123456789+03:00",
            datetime(2024, 5, 1, 10, 0, 0, 123456, _MSK),
        ),
        (b"2020-01-10T19:03:52.355+0300", datetime(2020, 1, 10, 19, 3, 52, 355000, _MSK)),
        (b"2024-05-01T10:00:00", datetime(2024, 5, 1, 10)),
        (b"2024-05-01T10:00", datetime(2024, 5, 1, 10)),
        (b"2024-05-01T10:00:00+24:00", None),  # no such offset
        (b"2024-05-01T10:00:00+03:60", None),
        (b"2024-05-01T10:00:00 Z", None),
        (b"2024-05-01", None),  # a day, no time
        (b"yesterday", None),
        (b"\xff\xfe", None),
        (b"2024-05-01T10:00:00Z;extra", None),  # never: the reason is after the ';'
    ],
)
def test_status_reads_any_iso_time(
    codec: ModuleType, when: bytes, expected: Optional[datetime]
) -> None:
    line = b"ok;1001;delivered;" + when + b";"
    [result] = codec.parse_status(line)
    if when.endswith(b";extra"):
        assert result.reason == "extra"
        return
    assert result.status == "delivered" and result.final
    assert result.time == expected
    if expected is not None:
        assert result.time.utcoffset() == expected.utcoffset()
    assert result.raw == line


_UTC = timezone.utc
_PLUS3 = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Basic format (no separators), with and without an offset or seconds.
        (b"20240501T100000Z", datetime(2024, 5, 1, 10, tzinfo=_UTC)),
        (b"20240501T100000+0300", datetime(2024, 5, 1, 10, tzinfo=_PLUS3)),
        (b"20240501T1000", datetime(2024, 5, 1, 10)),
        (b"20240501T10", datetime(2024, 5, 1, 10)),
        (b"20240501T100000.25Z", datetime(2024, 5, 1, 10, 0, 0, 250000, _UTC)),
        # Reduced precision: hours only, hours and minutes.
        (b"2024-05-01T10", datetime(2024, 5, 1, 10)),
        (b"2024-05-01T10:00", datetime(2024, 5, 1, 10)),
        (b"2024-05-01T10Z", datetime(2024, 5, 1, 10, tzinfo=_UTC)),
        # A decimal fraction of the smallest unit given (ISO allows it on any).
        (b"2024-05-01T10:30.5", datetime(2024, 5, 1, 10, 30, 30)),
        (b"2024-05-01T10.25", datetime(2024, 5, 1, 10, 15)),
        # End of day: the next day's start.
        (b"2024-05-01T24:00:00", datetime(2024, 5, 2)),
        (b"2024-12-31T24:00Z", datetime(2025, 1, 1, tzinfo=_UTC)),
        (b"2024-05-01 24:00:00,0", datetime(2024, 5, 2)),
        (b"2024-05-01T24:00:01", None),
        (b"2024-05-01T24:30", None),
        (b"2024-05-01T24:00:00.5", None),
        (b"9999-12-31T24:00:00", None),  # past the last day a datetime holds
        # A leap second: clamped to the second before.
        (b"2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=_UTC)),
        (b"2016.12.31 23:59:60", datetime(2016, 12, 31, 23, 59, 59)),
        (b"2016-12-31T23:59:60.5Z", datetime(2016, 12, 31, 23, 59, 59, 500000, _UTC)),
        (b"2016-12-31T23:59:61Z", None),
        # The minus sign (U+2212) in an offset.
        (
            "2024-05-01T10:00:00\u221205:30".encode(),
            datetime(2024, 5, 1, 10, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        (
            "20240501T100000\u22120300".encode(),
            datetime(2024, 5, 1, 10, tzinfo=timezone(-timedelta(hours=3))),
        ),
        # Spaces around the field (a server that pads): the time as without them.
        (b"2012.03.15 19:53:14 ", datetime(2012, 3, 15, 19, 53, 14)),
        (b" 2012.03.15 19:53:14", datetime(2012, 3, 15, 19, 53, 14)),
        (b"2024-05-01T10:00:00Z\t", datetime(2024, 5, 1, 10, tzinfo=_UTC)),
        # Ordinal dates (the day of the year) and week dates.
        (b"2024-122T10:00:00", datetime(2024, 5, 1, 10)),
        (b"2024122T100000Z", datetime(2024, 5, 1, 10, tzinfo=_UTC)),
        (b"2024-366T00:00", datetime(2024, 12, 31)),
        (b"2023-366T00:00", None),
        (b"2024-000T00:00", None),
        (b"2024-W18-3T10:00:00", datetime(2024, 5, 1, 10)),
        (b"2024W183T100000+0300", datetime(2024, 5, 1, 10, tzinfo=_PLUS3)),
        (b"2020-W53-5T12:00", datetime(2021, 1, 1, 12)),
        (b"2021-W53-1T12:00", None),  # 2021 has 52 weeks
        (b"2024-W18-8T10:00", None),
        # An expanded year is no Python datetime: None (the line's bytes are kept).
        (b"+12012-05-01T10:00:00Z", None),
        (b"+002024-05-01T10:00:00Z", None),
        # Still not times.
        (b"2024-05-01T10:0000", None),
        (b"2024-05-01T1", None),
        (b"2024-0501T10:00", None),
    ],
)
def test_status_reads_every_iso_8601_form(
    codec: ModuleType, when: bytes, expected: Optional[datetime]
) -> None:
    line = b"ok;1001;delivered;" + when + b";"
    [result] = codec.parse_status(line)
    assert result.status == "delivered" and result.final
    assert result.time == expected
    if expected is not None:
        assert result.time.utcoffset() == expected.utcoffset()
    assert result.raw == line


def test_a_trailing_space_after_an_hpg_time_reads_as_without_it(codec: ModuleType) -> None:
    # In a run of equal dates (the compiled reader shares one datetime across it) and
    # in the platform's zone: the padded time is the same moment, in the same zone.
    body = (
        b"ok;1;sent;2012.03.15 19:53:14;\n"
        b"ok;2;sent;2012.03.15 19:53:14 ;\n"
        b"ok;3;sent;2012.03.15 19:53:14;\n"
    )
    for tz in (None, _MSK):
        results, errors = codec.read_status(body, tz=tz)
        assert errors == []
        assert [r.time for r in results] == [datetime(2012, 3, 15, 19, 53, 14, tzinfo=tz)] * 3
        assert all(r.time.tzinfo is tz for r in results)
        assert [r.raw is None for r in results] == [True, False, True]


def test_status_time_with_an_offset_is_given_in_the_platform_zone(codec: ModuleType) -> None:
    body = (
        b"ok;1;delivered;2024-05-01T07:00:00Z;\n"  # an offset: converted to tz
        b"ok;2;delivered;2024-05-01T10:00:00;\n"  # none: in tz, as HPG's own shape
        b"ok;3;delivered;2024.05.01 10:00:00;\n"  # the fast path, as ever
    )
    results, errors = codec.read_status(body, tz=_MSK)
    assert errors == []
    moment = datetime(2024, 5, 1, 10, tzinfo=_MSK)
    assert [r.time for r in results] == [moment] * 3
    assert all(r.time.tzinfo is _MSK for r in results)
    assert [r.raw is None for r in results] == [False, False, True]


def test_a_date_read_slowly_does_not_break_the_shared_dates(codec: ModuleType) -> None:
    # The compiled reader shares the datetime of a run of equal dates: a line read by
    # the slow path between two equal dates must not take, or give, that object.
    t1 = datetime(2012, 3, 15, 19, 53, 14)
    body = (
        b"ok;1;sent;2012.03.15 19:53:14;\n"
        b"ok;2;sent;2012-03-15T19:53:15Z;\n"
        b"ok;3;sent;2012.03.15 19:53:14;\n"
        b"ok;4;sent;garbage;\n"
        b"ok;5;sent;2012.03.15 19:53:14;\xff\n"
        b"ok;6;sent;2012.03.15 19:53:14;\n"
    )
    results, errors = codec.read_status(body)
    assert errors == []
    assert [r.time for r in results] == [
        t1, datetime(2012, 3, 15, 19, 53, 15, tzinfo=timezone.utc), t1, None, t1, t1
    ]
    assert [r.raw is not None for r in results] == [False, True, False, True, True, False]
    assert results[4].reason == "\ufffd"


_CP1251 = "Неверный формат адреса".encode("cp1251")


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("windows-1251", "Неверный формат адреса"),
        ("CP1251", "Неверный формат адреса"),
        (None, "\ufffd" * 8 + " " + "\ufffd" * 6 + " " + "\ufffd" * 6),
        ("no-such-charset", "\ufffd" * 8 + " " + "\ufffd" * 6 + " " + "\ufffd" * 6),
        ("hex", "\ufffd" * 8 + " " + "\ufffd" * 6 + " " + "\ufffd" * 6),  # not a text codec
        ("utf-8", "\ufffd" * 8 + " " + "\ufffd" * 6 + " " + "\ufffd" * 6),
        ("latin-1", _CP1251.decode("latin-1")),
    ],
)
def test_free_text_in_another_charset_costs_only_itself(
    codec: ModuleType, charset: Optional[str], expected: str
) -> None:
    send_line = b"error-address-format;0;;" + _CP1251
    [rejected] = codec.parse_send(send_line, charset=charset)
    assert rejected[:4] == ("error-address-format", "0", None, expected)
    assert rejected.raw == send_line and rejected.extra == expected
    body = b"ok;1;1001\n" + send_line
    results, errors, flags = codec.match_send(body, ["1", "0"], charset=charset)
    assert errors == [] and results[1] == rejected and results[0] == ("ok", "1", "1001")
    assert flags == Match.ALL | Match.NOT_OK | Match.FREE_TEXT
    columns = codec.read_send_columns(b"ok;1;1001\n" + send_line, charset=charset)
    assert columns.results() == results and columns.raws == {1: send_line}

    status_line = b"ok;1001;undelivered;2012.03.15 19:53:07;" + _CP1251
    [undelivered] = codec.parse_status(status_line, charset=charset)
    assert undelivered[:5] == (
        "ok", "1001", "undelivered", datetime(2012, 3, 15, 19, 53, 7), expected
    )
    assert undelivered.raw == status_line and undelivered.final


def test_utf8_text_wins_over_a_declared_charset(codec: ModuleType) -> None:
    # Servers declare ISO-8859-1 over UTF-8 bytes: valid UTF-8 is read as UTF-8.
    line = "ok;1001;undelivered;2012.03.15 19:53:07;абонент недоступен".encode()
    [result] = codec.parse_status(line, charset="iso-8859-1")
    assert result.reason == "абонент недоступен" and result.raw is None and len(result) == 5


@pytest.mark.parametrize("charset", [b"cp1251", 1251, ["cp1251"]])
def test_charset_must_be_a_str(codec: ModuleType, charset: object) -> None:
    for read in (codec.parse_send, codec.read_send, codec.read_send_columns, codec.parse_status,
                 codec.read_status):
        with pytest.raises(TypeError, match="charset"):
            read(b"ok;0;1", charset=charset)
    for match in (codec.match_send, codec.match_status):
        with pytest.raises(TypeError, match="charset"):
            match(b"ok;0;1", ["0"], charset=charset)


def test_ids_and_tokens_stay_strict(codec: ModuleType) -> None:
    # Only fields an outcome does not depend on are read tolerantly.
    for body in (b"ok;\xff;1001;x", b"ok;0;\xff;x", b"o\xffk;0;1"):
        with pytest.raises(ProtocolError):
            codec.parse_send(body, charset="cp1251")
    for body in (b"ok;\xff;sent;garbage;", b"ok;1;s\xffnt;garbage;", b"ok;1;se nt;;"):
        with pytest.raises(ProtocolError):
            codec.parse_status(body, charset="cp1251")


def test_a_line_read_tolerantly_is_flagged(codec: ModuleType) -> None:
    # A STATUS line whose only oddity is its time holds no reason: FREE_TEXT still
    # says a record needs another look (its raw bytes are scrubbed like free text).
    results, errors, flags = codec.match_status(b"ok;1001;delivered;garbage;", ["1001"])
    assert errors == [] and results[0].time is None
    assert flags == Match.ALL | Match.FREE_TEXT
    _, _, flags = codec.match_status(b"ok;1001;delivered;2012.03.15 19:53:07;", ["1001"])
    assert flags == Match.ALL


def test_records_read_tolerantly() -> None:
    plain = StatusResult("ok", "1", "sent", None, None)
    odd = StatusResult("ok", "1", "sent", None, None, b"ok;1;sent;x;")
    assert plain.raw is None and odd.raw == b"ok;1;sent;x;" and len(odd) == 6
    assert odd == ("ok", "1", "sent", None, None, b"ok;1;sent;x;") and odd != plain
    assert repr(odd).endswith("reason=None, raw=b'ok;1;sent;x;')")
    send = SendResult("error-x", "0", None, None, b"error-x;0;;\xff")
    assert send == ("error-x", "0", None, None, b"error-x;0;;\xff") and send.extra is None
    assert send.raw == b"error-x;0;;\xff" and SendResult("ok", "0", "1").raw is None
    assert repr(send).endswith("extra=None, raw=b'error-x;0;;\\xff')")
    for record in (odd, send):
        copy = pickle.loads(pickle.dumps(record))
        assert copy == record and type(copy) is type(record) and copy.raw == record.raw


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, None),
        ("", None),
        ("text/plain", None),
        ("text/plain; charset=utf-8", None),  # UTF-8 is read first in any case
        ("text/plain; charset=windows-1251", "cp1251"),
        ('text/html; Charset="CP1251"', "cp1251"),
        ("text/plain; format=flowed; charset = koi8-r ", "koi8-r"),
        ("text/plain; charset=", None),
        ("text/plain; charset=no-such-charset", None),
        ("text/plain; charset=hex", None),  # a codec, but not a text encoding
        ("text/plain; charset=ut\x00f", None),
    ],
)
def test_the_charset_a_content_type_declares(
    content_type: Optional[str], expected: Optional[str]
) -> None:
    from hpgfast._fields import charset_of

    assert charset_of(content_type) == expected
