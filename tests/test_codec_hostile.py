"""Hostile types through both twins: what is sent is the data.

A ``str`` subclass is sent as its characters, whatever it says about its truth,
length, encoding or text; a tuple subclass message by its real items; ``start`` and
the limits as ``operator.index`` gives them. Nothing is ever emitted unescaped, and
the twins agree (tests/test_codec_properties.py pins these as ``@example``s too).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import pytest

from hostile_types import (
    STR_SUBCLASSES,
    EncodeStr,
    FakeStr,
    FakeTuple,
    FalsyStr,
    GetitemTuple,
    HashStr,
    LongTuple,
    OddFloat,
    OddInt,
    ShortTuple,
)
from hpgfast import Message, MessageError, MessageTypeError

INJECTION = "high&password=x"


@pytest.mark.parametrize("cls", STR_SUBCLASSES)
def test_a_str_subclass_param_value_is_sent_as_its_characters(
    codec: ModuleType, cls: type[str]
) -> None:
    # Issue 11: a falsy str subclass was emitted unescaped by the pure twin.
    query = codec.encode_params([("priority", cls(INJECTION))])
    assert query == b"priority=high%26password%3Dx"


@pytest.mark.parametrize("cls", STR_SUBCLASSES)
def test_str_subclasses_in_every_field_are_sent_as_their_characters(
    codec: ModuleType, cls: type[str]
) -> None:
    message = Message(cls("7903&a=1"), cls("t&x=y"), cls("S&s=1"), cls("id&c"),
                      [(cls("p&q"), cls(INJECTION))])  # fmt: skip
    query, nxt = codec.encode_send([message], default_subject=cls("D&d"))
    assert nxt == 1
    # Every "&" and "=" in the query is the encoder's own: it reads back field by field.
    assert b"password=" not in query
    assert parse_qsl(query.decode("ascii")) == [
        ("subject[0]", "S&s=1"),
        ("address[0]", "7903&a=1"),
        ("text[0]", "t&x=y"),
        ("clientId[0]", "id&c"),
        ("p&q[0]", INJECTION),
    ]
    query, _ = codec.encode_send([Message("1", "t")], default_subject=cls("D&d"))
    assert query.startswith(b"subject[0]=D%26d&")
    assert codec.encode_status([cls("1&x")]) == (b"providerId[0]=1%26x", 1)


def test_a_falsy_str_is_not_empty_and_an_empty_one_is(codec: ModuleType) -> None:
    assert codec.encode_send([Message("1", FalsyStr("a&b"), "s")])[0].endswith(b"text[0]=a%26b")
    with pytest.raises(MessageError) as info:
        codec.encode_send([Message("1", HashStr(""), "s")])
    assert (info.value.index, info.value.field) == (0, "text")
    with pytest.raises(MessageError) as info:
        codec.encode_params([(FalsyStr(""), "x")])
    assert info.value.field == "params"


def test_a_str_subclass_cannot_hide_a_reserved_name_or_a_duplicate_id(
    codec: ModuleType,
) -> None:
    with pytest.raises(MessageError) as info:
        codec.encode_send([Message("1", "t", "s", None, {HashStr("text"): "x"})])
    assert (info.value.index, info.value.field) == (0, "params")
    with pytest.raises(MessageError) as info:
        codec.encode_send([Message("1", "t", "s", HashStr("a")), Message("2", "t", "s", "a")])
    assert (info.value.index, info.value.field) == (1, "client_id")


def test_encode_asks_a_str_subclass_nothing(codec: ModuleType) -> None:
    query, _ = codec.encode_send([Message("1", EncodeStr("é"), "s")])
    assert query.endswith(b"text[0]=%C3%A9")


@pytest.mark.parametrize("start", [0.0, 1.0, 0.5, float("nan"), "0", None])
def test_start_must_be_an_integer(codec: ModuleType, start: Any) -> None:
    # Issue 11: a float start was taken by one twin and refused by the other.
    with pytest.raises(TypeError):
        codec.encode_send([Message("1", "t", "s")], start=start)
    with pytest.raises(TypeError):
        codec.encode_status(["1"], start=start)


def test_start_and_limits_are_their_integer_values(codec: ModuleType) -> None:
    batch = [Message(str(i), "t", "s", str(i)) for i in range(3)]
    plain = codec.encode_send(batch, start=1, max_count=1)
    # An int subclass counts for its value, whatever its __index__ or comparisons say.
    assert codec.encode_send(batch, start=OddInt(1), max_count=OddInt(1)) == plain
    # A bool is an int; what comes back is an exact int.
    result = codec.encode_send(batch, start=True, max_count=True)
    assert result == plain and type(result[1]) is int
    assert codec.encode_send(batch, start=3) == (b"", 3)
    assert type(codec.encode_send(batch, start=True)[1]) is int
    widest = len(codec.encode_send(batch[:1])[0])
    assert codec.encode_send(batch, max_bytes=OddFloat(widest + 0.5))[1] == 1
    for huge in (2**63, 2**70):
        assert codec.encode_send(batch, max_bytes=huge, max_count=huge)[1] == 3
        with pytest.raises(ValueError):
            codec.encode_send(batch, start=huge)
        with pytest.raises(ValueError):
            codec.encode_send(batch, start=-huge)
    with pytest.raises(TypeError, match="max_bytes"):
        codec.encode_send(batch, max_bytes="100")
    with pytest.raises(TypeError, match="max_count"):
        codec.encode_status(["1"], max_count=[1])


def test_sent_ids_start_and_end_are_their_integer_values(codec: ModuleType) -> None:
    # On Python 3.9 operator.index hands an int subclass back as it is: its lying
    # comparisons let a span outside the batch through the bounds check (the
    # compiled twin then read outside the list and crashed the interpreter).
    batch = [Message(str(i), "t") for i in range(3)]
    assert codec.sent_ids(batch, OddInt(1), OddInt(2)) == codec.sent_ids(batch, 1, 2)
    assert codec.sent_ids(batch, True, 3) == ["0", "1"]
    for start, end in ((OddInt(-1), OddInt(0)), (OddInt(2), OddInt(1)), (0, OddInt(4))):
        with pytest.raises(ValueError, match=r"are not within 0\.\.3"):
            codec.sent_ids(batch, start, end)
    # The message shows the values used: exact ints, not what the caller's type says.
    with pytest.raises(ValueError, match=r"^start=1 and end=0 are not within 0\.\.3$"):
        codec.sent_ids(batch, True, False)
    with pytest.raises(ValueError, match=r"^start=4 is outside 0\.\.3$"):
        codec.encode_send(batch, start=OddInt(4))
    with pytest.raises(ValueError, match=r"^max_count must be at least 1, got 0$"):
        codec.encode_status(["1"], max_count=False)


@pytest.mark.parametrize("batch", [{0: Message("1", "t", "s")}, {}, "123"], ids=repr)
def test_the_batch_is_a_sequence(codec: ModuleType, batch: Any) -> None:
    # Issue 11: a dict was read by key by one twin and refused by the other; a str
    # would be one provider id per character.
    with pytest.raises(TypeError, match="sequence"):
        codec.encode_send(batch)
    with pytest.raises(TypeError, match="sequence"):
        codec.encode_status(batch)


def test_a_tuple_subclass_message_is_its_real_items(codec: ModuleType) -> None:
    # Issue 11: a tuple subclass overriding __len__ was refused by one twin only.
    expected = codec.encode_send([Message("1", "t", "s")])
    assert codec.encode_send([LongTuple(("1", "t", "s"))]) == expected
    assert codec.encode_send([GetitemTuple(("1", "t", "s"))]) == expected
    five = codec.encode_send([Message("1", "t", "s", "c", {"a": "b"})])
    assert codec.encode_send([ShortTuple(("1", "t", "s", "c", {"a": "b"}))]) == five
    with pytest.raises(MessageError) as info:
        codec.encode_send([ShortTuple(("1",))])
    assert (info.value.index, info.value.field) == (0, "message")


def test_an_object_posing_as_a_tuple_is_refused(codec: ModuleType) -> None:
    with pytest.raises(MessageTypeError) as info:
        codec.encode_send([FakeTuple()])
    assert (info.value.index, info.value.field) == (0, "message")
    with pytest.raises(MessageTypeError):
        codec.encode_params([FakeTuple()])
    # Claiming to be a str (which params may not be) does not matter either way.
    assert codec.encode_params(FakeStr()) == b"a=b"
