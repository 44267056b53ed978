"""Hypothesis properties of the codec.

(a) ``urllib.parse.parse_qsl`` of an encoded query gives back exactly the input;
(b) the compiled core and the pure twin agree on every input, valid or hostile:
    equal results, or the same exception type with the same index/field or line;
(c) repeated ``encode_send`` calls under limits cover every message exactly once;
(d) ``read_send``/``read_status`` take every valid line of a reply whatever garbage
    surrounds it, and name each garbage line by its number.

CI runs the "ci" profile (500 examples each; see conftest.py). Known past
failures are pinned with ``@example``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import assume, example, given
from hypothesis import strategies as st

from hostile_types import (
    STR_SUBCLASSES,
    TUPLE_SUBCLASSES,
    FakeStr,
    FakeTuple,
    FalsyStr,
    LongTuple,
    OddFloat,
    OddInt,
)
from hpgfast import Message, MessageError, ProtocolError
from hpgfast._wire import (
    ID_ALPHABET,
    ID_PREFIX_MAX_LENGTH,
    SEND_FIELDS,
    Code,
    Match,
    Status,
    client_id_suffixes,
)

# -- strategies ----------------------------------------------------------------------

# Any Unicode text a user may send: everything but lone surrogates.
texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
param_names = texts.filter(lambda name: name not in SEND_FIELDS)
params = st.one_of(
    st.none(),
    st.dictionaries(param_names, st.text(st.characters(blacklist_categories=("Cs",))), max_size=3),
    st.lists(
        st.tuples(param_names, st.text(st.characters(blacklist_categories=("Cs",)))), max_size=3
    ),
)
messages = st.builds(
    Message,
    address=st.one_of(st.from_regex(r"\A\+?[0-9]{10,15}\Z"), texts),
    text=texts,
    subject=st.one_of(st.none(), texts),
    client_id=st.one_of(st.none(), texts),
    params=params,
)


def _effective_ids_unique(batch: list[Message]) -> bool:
    ids = [str(i) if m.client_id is None else m.client_id for i, m in enumerate(batch)]
    return len(set(ids)) == len(ids)


def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """A call's result, or the parts of its exception both twins must agree on."""
    try:
        return ("ok", call())
    except (MessageError, ProtocolError) as exc:
        return ("error", type(exc), *exc.args[:2])
    except (TypeError, ValueError, LookupError) as exc:
        return ("error", type(exc))


# -- (a) round trip through an independent decoder ------------------------------------


def _expected_pairs(batch: list[Message], default_subject: str) -> list[tuple[str, str]]:
    pairs = []
    for i, message in enumerate(batch):
        pairs += [
            (f"subject[{i}]", message.subject or default_subject),
            (f"address[{i}]", message.address),
            (f"text[{i}]", message.text),
        ]
        if message.client_id is not None:
            pairs.append((f"clientId[{i}]", message.client_id))
        extra = message.params or ()
        items = extra.items() if isinstance(extra, dict) else extra
        pairs += [(f"{name}[{i}]", value) for name, value in items]
    return pairs


@given(batch=st.lists(messages, max_size=8), quote_brackets=st.booleans())
@example(batch=[Message("7903", "Hey, you", "S", None, {"x[1]": "a+b c"})], quote_brackets=False)
def test_parse_qsl_gives_back_the_input(
    codec: ModuleType, batch: list[Message], quote_brackets: bool
) -> None:
    assume(_effective_ids_unique(batch))
    query, nxt = codec.encode_send(batch, default_subject="Default", quote_brackets=quote_brackets)
    assert nxt == len(batch)
    assert query.isascii()
    decoded = parse_qsl(
        query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query), errors="strict"
    )
    assert decoded == _expected_pairs(batch, "Default")


@given(pairs=st.lists(st.tuples(texts, st.text(st.characters(blacklist_categories=("Cs",))))))
def test_encode_params_round_trip(codec: ModuleType, pairs: list[tuple[str, str]]) -> None:
    query = codec.encode_params(pairs).decode("ascii")
    assert parse_qsl(query, keep_blank_values=True) == pairs


@given(ids=st.lists(texts, max_size=10))
def test_encode_status_round_trip(codec: ModuleType, ids: list[str]) -> None:
    query, nxt = codec.encode_status(ids)
    assert nxt == len(ids)
    assert parse_qsl(query.decode("ascii")) == [(f"providerId[{i}]", v) for i, v in enumerate(ids)]


# -- (b) the twins agree ------------------------------------------------------------

# Strings that lie about themselves (truth, length, encode, str, hash, items): both
# twins send their characters (see _codec_py, "Hostile types").
lying_strings = st.builds(
    lambda cls, text: cls(text),
    st.sampled_from(STR_SUBCLASSES),
    st.one_of(st.text(max_size=8), st.sampled_from(["", "text", "0", "a&b=c", "\ud800"])),
)
hostile_values = st.one_of(
    texts,
    st.just(""),
    st.none(),
    st.integers(),
    st.binary(max_size=5),
    st.text(max_size=8),  # may hold lone surrogates
    st.sampled_from(["text", "clientId", "0", "1", "2", "\ud800", "a\udfff"]),
    lying_strings,
)
hostile_params = st.one_of(
    params,
    hostile_values,
    st.dictionaries(hostile_values, hostile_values, max_size=2),
    st.lists(st.one_of(st.tuples(hostile_values, hostile_values), hostile_values), max_size=2),
)
hostile_messages = st.one_of(
    messages,
    st.lists(hostile_values, min_size=0, max_size=6).map(tuple),
    st.tuples(hostile_values, hostile_values, hostile_values, hostile_values, hostile_params),
    hostile_values,
    st.lists(texts, min_size=2, max_size=3),  # a list is not a tuple
    # tuple subclasses that lie about their length or items, and a tuple impostor
    st.builds(
        lambda cls, fields: cls(fields),
        st.sampled_from(TUPLE_SUBCLASSES),
        st.lists(st.one_of(texts, hostile_values), min_size=1, max_size=6).map(tuple),
    ),
    st.builds(FakeTuple),
)
# start and the limits: ints (huge and negative too), bools, lying int subclasses,
# floats and junk.
hostile_numbers = st.one_of(
    st.integers(-1, 13),
    st.booleans(),
    st.builds(OddInt, st.integers(-1, 13)),
    st.sampled_from([2**63, 2**70, -(2**70), 0.0, 1.0, 2.5, float("nan"), float("inf"), "1"]),
    st.builds(OddFloat, st.floats(-1, 2000)),
)
hostile_batches = st.one_of(
    st.lists(st.one_of(messages, hostile_messages), max_size=12),
    st.lists(st.one_of(messages, hostile_messages), max_size=4).map(tuple),
    st.dictionaries(st.integers(0, 3), messages, max_size=3),
    st.lists(messages, max_size=3).map(LongTuple),  # a batch that lies about its length
)


@given(
    batch=hostile_batches,
    start=st.one_of(st.integers(-1, 13), hostile_numbers),
    max_bytes=st.one_of(st.none(), st.integers(-1, 2000), hostile_numbers),
    max_count=st.one_of(st.none(), st.integers(-1, 12), hostile_numbers),
    default_subject=st.one_of(st.none(), st.just("Shop"), hostile_values),
    quote_brackets=st.booleans(),
)
@example(
    batch=[("1\ud800", 5, "s")], start=0, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
@example(
    batch=[("1", "t", "s", "b"), ("2", "t", "s", "b"), ("3", "\ud800", "s")],
    start=0, max_bytes=None, max_count=None, default_subject=None, quote_brackets=False,
)  # fmt: skip
# Issue 11: a falsy str subclass value was sent unescaped by the pure twin ...
@example(
    batch=[Message("1", "t", "s", None, {"priority": FalsyStr("high&password=x")})],
    start=0, max_bytes=None, max_count=None, default_subject=None, quote_brackets=False,
)  # fmt: skip
# ... a float start, a dict as the batch, a tuple subclass overriding __len__.
@example(
    batch=[Message("1", "t", "s")], start=1.0, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
@example(
    batch={0: Message("1", "t", "s")}, start=0, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
# The same 3.9 int subclass as start: the compiled encoder walked a tuple from -1.
@example(
    batch=(Message("1", "t", "s"),), start=OddInt(-1), max_bytes=OddInt(0),
    max_count=None, default_subject=None, quote_brackets=False,
)  # fmt: skip
@example(
    batch=(Message("1", "t", "s"),), start=OddInt(-1), max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
@example(
    batch=[LongTuple(("1", "t", "s"))], start=0, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
# More of the same families (a differential search over both twins): falsy subjects,
# int subclasses whose __index__ and comparisons lie, a tuple impostor.
@example(
    batch=[Message("1", "t")], start=OddInt(0), max_bytes=OddInt(2000),
    max_count=OddInt(1), default_subject=FalsyStr("S&x=1"), quote_brackets=False,
)  # fmt: skip
@example(
    batch=[FakeTuple()], start=True, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
def test_twins_agree_on_encode_send(
    pure: ModuleType,
    compiled: ModuleType,
    batch: list[Any],
    start: int,
    max_bytes: int | None,
    max_count: int | None,
    default_subject: Any,
    quote_brackets: bool,
) -> None:
    kwargs = dict(
        start=start,
        max_bytes=max_bytes,
        max_count=max_count,
        default_subject=default_subject,
        quote_brackets=quote_brackets,
    )
    expected = _outcome(lambda: pure.encode_send(batch, **kwargs))
    assert _outcome(lambda: compiled.encode_send(batch, **kwargs)) == expected


@given(
    ids=st.one_of(
        st.lists(hostile_values, max_size=10),
        st.dictionaries(st.integers(0, 3), texts, max_size=3),
        texts,
    ),
    start=st.one_of(st.integers(-1, 11), hostile_numbers),
    max_bytes=st.one_of(st.none(), st.integers(-1, 300), hostile_numbers),
    max_count=st.one_of(st.none(), st.integers(-1, 10), hostile_numbers),
    quote_brackets=st.booleans(),
)
@example(ids={0: "1"}, start=0, max_bytes=None, max_count=None, quote_brackets=False)
@example(ids=["1"], start=0.0, max_bytes=None, max_count=None, quote_brackets=False)
@example(ids=[FalsyStr("1&x")], start=0, max_bytes=None, max_count=None, quote_brackets=False)
@example(ids=["0"], start=OddInt(0), max_bytes=None, max_count=None, quote_brackets=False)
@example(ids=["0"], start=OddInt(2), max_bytes=None, max_count=None, quote_brackets=False)
def test_twins_agree_on_encode_status(
    pure: ModuleType,
    compiled: ModuleType,
    ids: list[Any],
    start: int,
    max_bytes: int | None,
    max_count: int | None,
    quote_brackets: bool,
) -> None:
    kwargs = dict(
        start=start, max_bytes=max_bytes, max_count=max_count, quote_brackets=quote_brackets
    )
    expected = _outcome(lambda: pure.encode_status(ids, **kwargs))
    assert _outcome(lambda: compiled.encode_status(ids, **kwargs)) == expected


@given(pairs=hostile_params)
@example(pairs=[("priority", FalsyStr("high&password=x"))])  # query injection
@example(pairs={FalsyStr("a&b"): ""})
@example(pairs=FakeStr())  # the pure twin asked isinstance(), which __class__ fools
def test_twins_agree_on_encode_params(pure: ModuleType, compiled: ModuleType, pairs: Any) -> None:
    assume(pairs is not None)
    assert _outcome(lambda: compiled.encode_params(pairs)) == _outcome(
        lambda: pure.encode_params(pairs)
    )


# Reply lines assembled from pieces that look like the platform's, and pieces that
# do not: both twins must read them alike, or fail alike on the same line.
_codes = st.sampled_from([*Code.PLATFORM, "", "OK", "x y", "error-new_code.2", "<html>"])
_statuses = st.sampled_from([*Status.ALL, "", "queued-elsewhere", "bad status"])
_dates = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y.%m.%d %H:%M:%S")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(
        ["", "2012.13.45 25:61:00", "2011.02.29 10:00:00", "2012.03-15 10:00:00",
         "0000.01.01 00:00:00", "9999.12.31 23:59:59", "2012.03.15 19:53:14 ",
         "2012.03.15  9:53:14", "٢٠١٢.03.15 19:53:14"]
    ),
    # Other shapes, read as ISO-8601 (or not at all) by hpgfast._fields in both twins.
    st.builds(
        lambda d, sep, frac, zone: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + zone,
        st.datetimes(),
        st.sampled_from(["T", " ", "t"]),
        st.sampled_from(["", ".5", ",25", ".123456", ".1234567891"]),
        st.sampled_from(["", "Z", "z", "+03:00", "+0300", "+03", "-05:30", "+24:00", "+03:60"]),
    ),
    st.sampled_from(
        ["2024-05-01T10:00", "2024-05-01", "yesterday", "2024-05-01T10:00:00 Z",
         "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
    ),
    # Every other ISO-8601 form: basic, reduced, ordinal and week dates, 24:00, a leap
    # second, U+2212 as the minus, padding, an expanded year (no datetime: None).
    st.builds(
        lambda d, fmt, zone, pad: pad + d.strftime(fmt) + zone + pad,
        st.datetimes(),
        st.sampled_from(["%Y%m%dT%H%M%S", "%Y%m%dT%H%M", "%Y-%m-%dT%H", "%Y-%jT%H:%M:%S",
                         "%Y%jT%H%M%S", "%G-W%V-%uT%H:%M:%S", "%GW%V%uT%H%M%S",
                         "%Y-%m-%dT24:00:00", "%Y.%m.%d 23:59:60", "%Y-%m-%dT%H.5",
                         "+1%Y-%m-%dT%H:%M:%S"]),
        st.sampled_from(["", "Z", "+0300", "\u22120530", "\u221203"]),
        st.sampled_from(["", " "]),
    ),
)  # fmt: skip
_free = (
    st.text(max_size=12).map(lambda s: s.encode("utf-8", "surrogatepass"))
    | st.binary(max_size=6)
    | st.text("абвгдеёжзий клмнопрстуфхцчшщъыьэюяАБВГ", max_size=12).map(
        lambda s: s.encode("cp1251")
    )
)
_sep = st.sampled_from([b"\n", b"\r\n", b"\n\n", b" \n", b"\t\r\n", b"\r", b"\n;", b""])


@st.composite
def _status_bodies(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        fields = [
            draw(_codes).encode(),
            draw(st.one_of(st.from_regex(rb"\A[0-9]{1,12}\Z"), _free)),
            draw(_statuses).encode(),
            draw(_dates).encode("utf-8"),
            draw(st.one_of(st.just(b""), st.just(b"unknown-subscriber"), _free)),
        ]
        cut = draw(st.integers(1, 7))
        lines.append(b";".join(fields[:cut] + [b""] * max(0, cut - 5)) + draw(_sep))
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef\xbb"]))
    return prefix + b"".join(lines)


@st.composite
def _send_bodies(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        fields = [
            draw(_codes).encode(),
            draw(st.one_of(st.from_regex(rb"\A[0-9]{1,5}\Z"), _free)),
            draw(st.one_of(st.from_regex(rb"\A[0-9]{1,12}\Z"), _free)),
        ]
        cut = draw(st.integers(1, 5))
        lines.append(b";".join(fields[:cut] + [b""] * max(0, cut - 3)) + draw(_sep))
    return b"".join(lines)


_zones = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=3))])


@given(body=st.one_of(st.binary(max_size=200), _status_bodies()), tz=_zones)
@example(body=b"ok;1;sent;2012.13.45 25:61:00;", tz=None)
@example(body=b"ok;1;sent;;\xed\xa0\x80", tz=None)
def test_twins_agree_on_parse_status(
    pure: ModuleType, compiled: ModuleType, body: bytes, tz: Any
) -> None:
    expected = _outcome(lambda: pure.parse_status(body, tz=tz))
    assert _outcome(lambda: compiled.parse_status(body, tz=tz)) == expected


@given(body=st.one_of(st.binary(max_size=200), _send_bodies()))
@example(body=b"ok;0;1\r\nok;1;2;\r\n\r\n")
def test_twins_agree_on_parse_send(pure: ModuleType, compiled: ModuleType, body: bytes) -> None:
    expected = _outcome(lambda: pure.parse_send(body))
    actual = _outcome(lambda: compiled.parse_send(body))
    assert actual == expected
    if expected[0] == "ok":  # equal values, and the same record class
        assert [type(r) for r in actual[1]] == [type(r) for r in expected[1]]


# -- (c) chunking covers every message exactly once -----------------------------------


@given(
    batch=st.lists(messages, min_size=1, max_size=30),
    extra_bytes=st.integers(0, 400),
    max_count=st.one_of(st.none(), st.integers(1, 6)),
)
def test_chunks_cover_every_message_once_within_limits(
    codec: ModuleType, batch: list[Message], extra_bytes: int, max_count: int | None
) -> None:
    # Every message must fit alone (at the widest index a request can hold).
    widest = max(len(codec.encode_send([m], default_subject="D")[0]) for m in batch)
    max_bytes = widest + len(str(len(batch))) * 8 + extra_bytes
    start, seen = 0, []
    while start < len(batch):
        try:
            query, nxt = codec.encode_send(
                batch, start=start, max_bytes=max_bytes, max_count=max_count, default_subject="D"
            )
        except MessageError as exc:
            # Only a duplicate effective client id may stop us; skip such batches.
            assume(exc.field != "client_id")
            raise
        assert nxt > start  # progress: never an empty request
        assert len(query) <= max_bytes
        if max_count is not None:
            assert nxt - start <= max_count
        if nxt < len(batch) and (max_count is None or nxt - start < max_count):
            # Maximal: one more message would not have fitted.
            try:
                bigger, _ = codec.encode_send(
                    batch, start=start, max_count=nxt - start + 1, default_subject="D"
                )
            except MessageError as exc:
                assume(exc.field != "client_id")
                raise
            assert len(bigger) > max_bytes
        decoded = parse_qsl(query.decode("ascii"), keep_blank_values=True)
        assert decoded == _expected_pairs(list(batch[start:nxt]), "D")
        seen.extend(range(start, nxt))
        start = nxt
    assert seen == list(range(len(batch)))


# -- (d) reading line by line: a bad line costs only itself ---------------------------


def _read_outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """A reader's records (with their classes) and errors (line, reason, class)."""
    try:
        results, errors = call()
    except TypeError as exc:
        return ("error", type(exc))
    return (
        "ok",
        results,
        [type(r) for r in results],
        [(type(e), e.line, e.reason) for e in errors],
    )


@given(body=st.one_of(st.binary(max_size=200), _send_bodies()))
@example(body=b"ok;0;1\r\nok;1;2;\r\n\r\n")
@example(body=b"ok;0;1;2;;\n;\n<x>;0;1\nok;1;\xff;x")
def test_twins_agree_on_read_send(pure: ModuleType, compiled: ModuleType, body: bytes) -> None:
    expected = _read_outcome(lambda: pure.read_send(body))
    assert _read_outcome(lambda: compiled.read_send(body)) == expected
    assert _read_outcome(lambda: compiled.read_send(bytearray(body))) == expected


@given(body=st.one_of(st.binary(max_size=200), _send_bodies()))
@example(body=b"ok;0;1\r\nok;1;2;\r\n\r\n")
@example(body=b"ok;0;1;2;;\n;\n<x>;0;1\nok;1;\xff;x")
@example(body=b"ok;\xd0\xb9;1\nx-y;;\n\xef\xbb\xbfok")
def test_twins_agree_on_read_send_columns(
    pure: ModuleType, compiled: ModuleType, body: bytes
) -> None:
    expected = pure.read_send_columns(body)
    assert compiled.read_send_columns(body) == expected
    assert compiled.read_send_columns(bytearray(body)) == expected
    # And the columns hold read_send's answer, in each twin.
    results, errors = _read_outcome(lambda: pure.read_send(body))[1::2]
    assert expected.results() == results
    assert [(type(e), e.line, e.reason) for e in expected.errors] == errors


@given(body=st.one_of(st.binary(max_size=200), _status_bodies()), tz=_zones)
@example(body=b"ok;1;sent;2012.13.45 25:61:00;", tz=None)
@example(body=b"ok;1;sent;;\xed\xa0\x80", tz=None)
@example(
    # A line whose date is fine but whose reason is not: the next line with the same
    # date must still get its own (equal) datetime.
    body=b"ok;1;sent;2012.03.15 19:53:14;\xff\nok;2;sent;2012.03.15 19:53:14;",
    tz=timezone.utc,
)
def test_twins_agree_on_read_status(
    pure: ModuleType, compiled: ModuleType, body: bytes, tz: Any
) -> None:
    expected = _read_outcome(lambda: pure.read_status(body, tz=tz))
    assert _read_outcome(lambda: compiled.read_status(body, tz=tz)) == expected


def _expectations(ids: list[Any]) -> st.SearchStrategy[Any]:
    """What a caller may pass as ``expect``: the ids the reply holds (as list or
    tuple), a cut or longer list, ids of other kinds, or anything else at all."""
    other = st.one_of(st.none(), st.text(max_size=4), st.sampled_from([*ids, "0", "x"]))
    return st.one_of(
        st.just(ids),
        st.just(tuple(ids)),
        st.just(ids[:-1]),
        st.just([*ids, "zz"]),
        st.sampled_from(STR_SUBCLASSES).map(
            lambda cls: [cls(i) if isinstance(i, str) else i for i in ids]
        ),
        st.lists(other, max_size=6),
        st.sampled_from([None, "ok", b"ok", {"ok": 1}, iter(ids)]),
    )


def _match_outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        results, errors, flags = call()
    except TypeError as exc:
        return ("error", type(exc), str(exc))
    return ("ok", flags, *_read_outcome(lambda: (results, errors))[1:])


@given(body=st.one_of(st.binary(max_size=200), _send_bodies()), data=st.data())
@example(body=b"ok;a;1\nok;b;2", data=None)
def test_twins_agree_on_match_send(
    pure: ModuleType, compiled: ModuleType, body: bytes, data: Any
) -> None:
    ids = [r[1] for r in pure.read_send(body)[0]]
    expect = ids if data is None else data.draw(_expectations(ids))
    expected = _match_outcome(lambda: pure.match_send(body, expect))
    assert _match_outcome(lambda: compiled.match_send(body, expect)) == expected
    assert _match_outcome(lambda: compiled.match_send(bytearray(body), expect)) == expected
    # The records and errors are read_send's, whatever is expected.
    if expected[0] == "ok":
        assert expected[2:] == _read_outcome(lambda: pure.read_send(body))[1:]
        results, _, flags = compiled.match_send(body, expect)
        if flags & Match.ALL:  # the compiled twin holds the expected objects
            assert all(r[1] is e for r, e in zip(results, expect))


@given(body=st.one_of(st.binary(max_size=200), _status_bodies()), tz=_zones, data=st.data())
def test_twins_agree_on_match_status(
    pure: ModuleType, compiled: ModuleType, body: bytes, tz: Any, data: Any
) -> None:
    ids = [r[1] for r in pure.read_status(body, tz=tz)[0]]
    expect = data.draw(_expectations(ids))
    expected = _match_outcome(lambda: pure.match_status(body, expect, tz=tz))
    assert _match_outcome(lambda: compiled.match_status(body, expect, tz=tz)) == expected
    if expected[0] == "ok":
        assert expected[2:] == _read_outcome(lambda: pure.read_status(body, tz=tz))[1:]


# A reply's declared charset: known, unknown, not a text codec, or none.
_charsets = st.sampled_from([None, "windows-1251", "latin-1", "utf-8", "no-such-charset", "hex"])


@given(
    body=st.one_of(st.binary(max_size=200), _status_bodies(), _send_bodies()),
    tz=_zones,
    charset=_charsets,
)
@example(body=b"ok;1001;delivered;2024-05-01T10:00:00.1234567Z;", tz=None, charset=None)
@example(body=b"ok;1001;delivered;2024-05-01 10:00:00+0300;", tz=timezone.utc, charset=None)
@example(body=b"ok;1001;delivered;garbage;\xcd\xe5\xf2", tz=None, charset="windows-1251")
@example(
    body=b"ok;1;sent;2012.03.15 19:53:14;\nok;2;sent;2012-03-15T19:53:14Z;\n"
    b"ok;3;sent;2012.03.15 19:53:14;",
    tz=None,
    charset=None,
)
@example(body=b"error-address-format;0;;\xcd\xe5\xe2", tz=None, charset="windows-1251")
@example(body=b"error-address-format;0;;\xcd\xe5\xe2", tz=None, charset="hex")
@example(body=b"ok;1;sent;9999-12-31T23:59:59-01:00;", tz=timezone.utc, charset=None)
@example(
    body=b"ok;1;sent;20240501T100000Z;\nok;2;sent;20240501T100000+0300;\nok;3;sent;20240501T1000;\n"
    b"ok;4;sent;2024-05-01T10;\nok;5;sent;2024-05-01T10:00;\nok;6;sent;2024-122T10:00;\n"
    b"ok;7;sent;2024-W18-3T10:00:00;\nok;8;sent;+12012-05-01T10:00:00Z;",
    tz=timezone(timedelta(hours=3)),
    charset=None,
)
@example(
    body=b"ok;1;sent;2012.03.15 19:53:14;\nok;2;sent;2012.03.15 19:53:14 ;\n"
    b"ok;3;sent;2012.03.15 19:53:14;\nok;4;sent;2012.03.15 24:00:00;\n"
    b"ok;5;sent;2016.12.31 23:59:60;\nok;6;sent;2024-05-01T10:00:00\xe2\x88\x9205:30;",
    tz=None,
    charset=None,
)
@example(body=b"ok;1;sent;9999-12-31T24:00:00+03:00;", tz=timezone.utc, charset=None)
def test_twins_agree_on_fields_read_tolerantly(
    pure: ModuleType, compiled: ModuleType, body: bytes, tz: Any, charset: Any
) -> None:
    # Every reader, with a charset: times in other shapes and text in other charsets
    # cost only their field, and both twins read them alike (``raw`` included).
    expected = _read_outcome(lambda: pure.read_send(body, charset=charset))
    assert _read_outcome(lambda: compiled.read_send(body, charset=charset)) == expected
    assert pure.read_send_columns(body, charset=charset) == compiled.read_send_columns(
        body, charset=charset
    )
    expected = _outcome(lambda: pure.parse_send(body, charset=charset))
    assert _outcome(lambda: compiled.parse_send(body, charset=charset)) == expected
    expected = _read_outcome(lambda: pure.read_status(body, tz=tz, charset=charset))
    assert _read_outcome(lambda: compiled.read_status(body, tz=tz, charset=charset)) == expected
    expected = _outcome(lambda: pure.parse_status(body, tz=tz, charset=charset))
    assert _outcome(lambda: compiled.parse_status(body, tz=tz, charset=charset)) == expected
    ids = [r[1] for r in pure.read_send(body, charset=charset)[0]]
    expected = _match_outcome(lambda: pure.match_send(body, ids, charset=charset))
    assert _match_outcome(lambda: compiled.match_send(body, ids, charset=charset)) == expected
    ids = [r[1] for r in pure.read_status(body, tz=tz, charset=charset)[0]]
    expected = _match_outcome(lambda: pure.match_status(body, ids, tz=tz, charset=charset))
    actual = _match_outcome(lambda: compiled.match_status(body, ids, tz=tz, charset=charset))
    assert actual == expected


_token = st.from_regex(rb"\A[A-Za-z0-9._-]{1,24}\Z")
_field_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=";\n"), max_size=12
).map(str.encode)
_rest_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"))
_date_text = st.datetimes().map(
    lambda d: f"{d.year:04d}.{d.month:02d}.{d.day:02d} {d:%H:%M:%S}".encode()
)
_lf_free = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
# Lines no reader can take: a garbled or empty code, an id that is not UTF-8.
_garbage = st.one_of(
    _lf_free.map(lambda b: b"<" + b),
    _lf_free.map(lambda b: b";" + b),
    _lf_free.map(lambda b: b"ok;\xff" + b),
    st.just(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
)


@st.composite
def _send_line(draw: st.DrawFn) -> bytes:
    fields = [draw(_token), draw(_field_text), draw(_field_text), draw(_rest_text).encode()]
    return b";".join(fields[: draw(st.integers(1, 4))])


@st.composite
def _status_line(draw: st.DrawFn) -> bytes:
    fields = [
        draw(_token),
        draw(_field_text),
        draw(st.one_of(st.just(b""), _token)),
        draw(st.one_of(st.just(b""), _date_text)),
        draw(_rest_text).encode(),
    ]
    return b";".join(fields[: draw(st.integers(1, 5))])


def _mixed_reply(draw: st.DrawFn, valid: list[bytes]) -> tuple[bytes, list[int], list[int]]:
    """``valid`` and some garbage lines, shuffled, with blank lines and CRLF or LF.

    Returns the body, the indexes into ``valid`` in the order the body holds them,
    and the line numbers of the garbage lines.
    """
    garbage = draw(st.lists(_garbage, max_size=8))
    lines = [(i, line) for i, line in enumerate(valid)] + [(None, line) for line in garbage]
    lines = draw(st.permutations(lines))
    out, good, bad, number = [], [], [], 0
    for index, line in lines:
        for _ in range(draw(st.integers(0, 1))):
            out.append(draw(st.sampled_from([b"", b" ", b"\r"])))
            number += 1
        out.append(line)
        number += 1
        if index is None:
            bad.append(number)
        else:
            good.append(index)
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    body = end.join(out) + draw(st.sampled_from([b"", end]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + body, good, bad


@given(data=st.data(), valid=st.lists(_send_line(), max_size=12))
def test_read_send_takes_every_valid_line_and_names_every_bad_one(
    codec: ModuleType, data: st.DataObject, valid: list[bytes]
) -> None:
    alone = [codec.parse_send(line) for line in valid]
    assert all(len(one) == 1 for one in alone)  # each valid line alone: one record
    body, good, bad = _mixed_reply(data.draw, valid)
    results, errors = codec.read_send(body)
    assert results == [alone[i][0] for i in good]
    assert [e.line for e in errors] == bad
    assert all(isinstance(e, ProtocolError) for e in errors)


@given(data=st.data(), valid=st.lists(_status_line(), max_size=12), tz=_zones)
def test_read_status_takes_every_valid_line_and_names_every_bad_one(
    codec: ModuleType, data: st.DataObject, valid: list[bytes], tz: Any
) -> None:
    alone = [codec.parse_status(line, tz=tz) for line in valid]
    assert all(len(one) == 1 for one in alone)
    body, good, bad = _mixed_reply(data.draw, valid)
    results, errors = codec.read_status(body, tz=tz)
    assert results == [alone[i][0] for i in good]
    assert [e.line for e in errors] == bad


@given(body=st.one_of(st.binary(max_size=200), _send_bodies(), _status_bodies()))
def test_parse_is_read_raising_the_first_error(codec: ModuleType, body: bytes) -> None:
    pairs = ((codec.parse_send, codec.read_send), (codec.parse_status, codec.read_status))
    for parse, read in pairs:
        results, errors = read(body)
        if not errors:
            assert parse(body) == results
            continue
        try:
            parse(body)
        except ProtocolError as exc:
            assert exc.line == errors[0].line
            assert errors[0].reason.startswith(exc.reason + " in ")
        else:
            raise AssertionError("parse_* read a body read_* found faults in")


# -- (e) made client ids (id_prefix) --------------------------------------------------

id_prefixes = st.text(st.sampled_from(ID_ALPHABET), min_size=1, max_size=ID_PREFIX_MAX_LENGTH)
hostile_prefixes = st.one_of(
    st.none(),
    id_prefixes,
    st.text(max_size=20),  # mostly invalid; may hold lone surrogates
    hostile_values,
    st.sampled_from(["", "a" * 18, "Z" * 17, "-", "a b", "é", "٣", "0", "zzz"]),
)


def _with_made_ids(batch: list[Message], prefix: str) -> list[Message]:
    """The batch as one request sends it: made ids where a message has none."""
    suffixes = client_id_suffixes(len(batch))
    return [
        m if m.client_id is not None else m._replace(client_id=prefix + suffixes[k])
        for k, m in enumerate(batch)
    ]


def _outcome_with_text(call: Callable[[], Any]) -> tuple[Any, ...]:
    """A call's result, or its exception's type and text: the twins share both."""
    try:
        return ("ok", call())
    except (TypeError, ValueError) as exc:
        return ("error", type(exc), str(exc))


@given(batch=st.lists(messages, max_size=8), prefix=id_prefixes, quote_brackets=st.booleans())
def test_parse_qsl_gives_back_the_made_ids(
    codec: ModuleType, batch: list[Message], prefix: str, quote_brackets: bool
) -> None:
    sent = _with_made_ids(batch, prefix)
    ids = [m.client_id for m in sent]
    assume(len(set(ids)) == len(ids))
    query, nxt = codec.encode_send(
        batch, default_subject="Default", quote_brackets=quote_brackets, id_prefix=prefix
    )
    assert nxt == len(batch)
    decoded = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query))
    assert decoded == _expected_pairs(sent, "Default")


class _Id(str):
    """A str subclass as a client id: the compiled twin checks it another way."""


@st.composite
def _prefixed_batches(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A prefix, valid or not, and a batch whose own ids may equal a made one (so
    that the duplicate checks are reached)."""
    prefix = draw(hostile_prefixes)
    near = [f"{prefix}{s}" for s in client_id_suffixes(4)] if isinstance(prefix, str) else []
    message = st.builds(
        Message,
        address=texts,
        text=texts,
        subject=st.one_of(st.none(), texts),
        client_id=st.one_of(st.none(), texts, st.sampled_from([*near, "0", "1"])),
        params=params,
    )
    return prefix, draw(st.lists(st.one_of(message, messages, hostile_messages), max_size=12))


@given(
    case=_prefixed_batches(),
    start=st.integers(-1, 13),
    max_bytes=st.one_of(st.none(), st.integers(-1, 2000)),
    max_count=st.one_of(st.none(), st.integers(-1, 12)),
    default_subject=st.one_of(st.none(), st.just("Shop"), hostile_values),
    quote_brackets=st.booleans(),
)
@example(
    case=("", [("1", "t", "s")]), start=-1, max_bytes=None, max_count=None,
    default_subject=None, quote_brackets=False,
)  # fmt: skip
@example(
    case=("-", []), start=0, max_bytes=None, max_count=None,
    default_subject=b"x", quote_brackets=False,
)  # fmt: skip
@example(
    case=("P", [("1", "t", "s", _Id("P001")), ("2", "t", "s"), ("3", "\ud800", "s")]),
    start=0, max_bytes=None, max_count=None, default_subject=None, quote_brackets=False,
)  # fmt: skip
def test_twins_agree_on_encode_send_with_id_prefix(
    pure: ModuleType,
    compiled: ModuleType,
    case: tuple[Any, list[Any]],
    start: int,
    max_bytes: int | None,
    max_count: int | None,
    default_subject: Any,
    quote_brackets: bool,
) -> None:
    prefix, batch = case
    kwargs = dict(
        start=start,
        max_bytes=max_bytes,
        max_count=max_count,
        default_subject=default_subject,
        quote_brackets=quote_brackets,
        id_prefix=prefix,
    )
    expected = _outcome_with_text(lambda: pure.encode_send(batch, **kwargs))
    assert _outcome_with_text(lambda: compiled.encode_send(batch, **kwargs)) == expected


@given(
    batch=st.lists(messages, min_size=1, max_size=30),
    prefix=id_prefixes,
    extra_bytes=st.integers(0, 400),
    max_count=st.one_of(st.none(), st.integers(1, 6)),
)
def test_chunks_with_made_ids_stay_within_max_bytes(
    codec: ModuleType,
    batch: list[Message],
    prefix: str,
    extra_bytes: int,
    max_count: int | None,
) -> None:
    kw: dict[str, Any] = {"default_subject": "D", "id_prefix": prefix}
    widest = max(len(codec.encode_send([m], **kw)[0]) for m in batch)
    max_bytes = widest + len(str(len(batch))) * 8 + extra_bytes
    start, seen = 0, []
    while start < len(batch):
        try:
            query, nxt = codec.encode_send(
                batch, start=start, max_bytes=max_bytes, max_count=max_count, **kw
            )
        except MessageError as exc:
            assume(exc.field != "client_id")  # an own id equal to a made one
            raise
        assert nxt > start
        assert len(query) <= max_bytes
        if nxt < len(batch) and (max_count is None or nxt - start < max_count):
            # Maximal: one more message would not have fitted.
            try:
                bigger, _ = codec.encode_send(batch, start=start, max_count=nxt - start + 1, **kw)
            except MessageError as exc:
                assume(exc.field != "client_id")
                raise
            assert len(bigger) > max_bytes
        decoded = parse_qsl(query.decode("ascii"), keep_blank_values=True)
        assert decoded == _expected_pairs(_with_made_ids(list(batch[start:nxt]), prefix), "D")
        seen.extend(range(start, nxt))
        start = nxt
    assert seen == list(range(len(batch)))


# -- sent_ids: the ids a request's reply answers with --------------------------------


@given(
    batch=st.lists(messages, min_size=1, max_size=10),
    prefix=st.one_of(st.none(), id_prefixes),
    bounds=st.tuples(st.integers(0, 10), st.integers(0, 10)),
)
def test_sent_ids_are_the_client_ids_encode_send_wrote(
    codec: ModuleType, batch: list[Message], prefix: str | None, bounds: tuple[int, int]
) -> None:
    start = min(bounds[0], len(batch))
    end = min(max(bounds[1], start), len(batch))
    ids = codec.sent_ids(batch, start, end, prefix)
    assert all(type(i) is str for i in ids)
    if start == end:
        assert ids == []
        return
    assume(len(set(ids)) == len(ids))  # else encode_send refuses the request
    query, nxt = codec.encode_send(
        batch, start=start, max_count=end - start, default_subject="D", id_prefix=prefix
    )
    assert nxt == end
    written = dict(
        (k, v) for k, v in parse_qsl(query.decode("ascii")) if k.startswith("clientId[")
    )
    for k, cid in enumerate(ids):
        if prefix is None and batch[start + k].client_id is None:
            # Sent without a clientId: the platform answers with the index.
            assert f"clientId[{k}]" not in written
            assert cid == str(k)
        else:
            assert written[f"clientId[{k}]"] == cid


@given(
    batch=hostile_batches,
    start=st.one_of(st.integers(-1, 13), hostile_numbers),
    end=st.one_of(st.integers(-1, 13), hostile_numbers),
    prefix=hostile_prefixes,
)
@example(batch=[Message("1", "t", "s", _Id("own"))], start=0, end=1, prefix=None)
@example(batch=[("1", "t", "s", "")], start=0, end=1, prefix="P")
@example(batch=[LongTuple(("1", "t", "s", "x"))], start=0, end=1, prefix="P")
@example(batch=LongTuple([Message("1", "t")]), start=0, end=2, prefix=None)
@example(batch=[FakeTuple()], start=True, end=OddInt(1), prefix=None)
# Python 3.9's operator.index keeps an int subclass: its comparisons lied to the
# bounds check and the compiled twin read outside the list.
@example(batch=[Message("1", "t")] * 3, start=OddInt(-1), end=OddInt(0), prefix=None)
@example(batch=[Message("1", "t")], start=OddInt(1), end=OddInt(2), prefix=None)
# A segmentation fault on CPython 3.9, whose operator.index hands an int subclass back
# as it is: OddInt's lying comparisons passed start=-1, and the compiled core read the
# slot before the first item of the list (or tuple, or an empty list's NULL array).
@example(batch=[Message("1", "t")], start=OddInt(-1), end=0, prefix=None)
@example(batch=(Message("1", "t"),), start=OddInt(-1), end=OddInt(1), prefix="P")
@example(batch=[], start=OddInt(-1), end=0, prefix=None)
# ... and passed an end past the last item: the slots after a tuple's or list's last
# (read unchecked: heap-buffer-overflow under ASan).
@example(batch=(Message("1", "t"),), start=0, end=OddInt(2), prefix=None)
@example(batch=[Message("1", "t")], start=0, end=OddInt(3), prefix="P")
def test_twins_agree_on_sent_ids(
    pure: ModuleType, compiled: ModuleType, batch: Any, start: Any, end: Any, prefix: Any
) -> None:
    def outcome(codec: ModuleType) -> tuple[Any, ...]:
        # The result, or the exception's type and text (and a MessageError's
        # index and field): the twins share all of them.
        try:
            ids = codec.sent_ids(batch, start, end, prefix)
        except MessageError as exc:
            return ("error", type(exc), exc.index, exc.field, str(exc))
        except (TypeError, ValueError, LookupError) as exc:
            return ("error", type(exc), str(exc))
        assert all(type(i) is str for i in ids)
        return ("ok", ids)

    assert outcome(compiled) == outcome(pure)
