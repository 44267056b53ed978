"""Hypothesis properties of segment counting.

(a) the compiled counter and the pure twin agree on every input, valid or hostile
    (lone surrogates, wrong types): equal results, or the same exception type with
    the same message;
(b) the pure twin agrees with a naive oracle written from the standard's words
    (cut the text character by character, a character never split);
(c) invariants: segments never fall as a text grows, the batch forms agree with
    ``segments``, and the room left is what the parts hold less the units.

Known past failures are pinned with ``@example``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from hpgfast import Message, MessageError
from hpgfast._gsm import BASIC, EXTENSION, septets

# -- strategies ----------------------------------------------------------------------

GSM_CHARS = sorted(BASIC | EXTENSION)
# Any code point, lone surrogates included.
any_char = st.characters(exclude_categories=())
# Texts built to cross the boundaries: mostly GSM 7-bit, extension characters, and
# now and then a Cyrillic letter, an emoji (two units) or a lone surrogate.
gsm_char = st.sampled_from(GSM_CHARS)
mixed_char = st.one_of(
    gsm_char,
    gsm_char,
    gsm_char,
    st.sampled_from(sorted(EXTENSION)),
    st.sampled_from("яЖ€`ç\U0001f61c\U0001f680\u20bd"),
    any_char,
)
texts = st.one_of(
    st.text(any_char, max_size=80),
    st.text(gsm_char, min_size=140, max_size=480),
    st.text(mixed_char, max_size=480),
    st.text(st.sampled_from("я\U0001f61c"), min_size=60, max_size=220),
)
items = st.one_of(
    texts,
    st.builds(Message, st.just("79031111111"), texts),
    st.tuples(st.just("7903"), texts),
    st.tuples(st.just("7903"), st.one_of(st.none(), st.integers(), st.binary())),
    st.tuples(),
    st.tuples(texts),
    st.none(),
    st.integers(),
    st.lists(texts, max_size=2),
)


def _outcome(function: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """A call's result, or the exception's type and message (both twins must agree)."""
    try:
        return ("ok", function(*args))
    except (MessageError, TypeError, ValueError) as exc:
        return ("error", type(exc), str(exc), exc.args)


# -- (a) the twins agree -------------------------------------------------------------------


@given(text=texts)
@example(text="{{a")  # the 1-byte pass summed nothing once (a block size overflowed int)
@example(text="a" * 152 + "{" + "a" * 152)  # an escape pair straddling 153
@example(text="я" * 66 + "\U0001f61c" + "я" * 66)  # a surrogate pair straddling 67
@example(text="\U0001f61cx\ud83d")  # a lone surrogate after a pair
@example(text="\ud83d\ude1c")  # two halves of a pair, written as two characters
@example(text="ΔΦ" * 81)  # GSM 7-bit above U+00FF (kind 2 text)
@example(text="€" * 81)
@example(text="")
def test_twins_agree_on_segments(sms_pure: ModuleType, sms_compiled: ModuleType, text: str) -> None:
    assert _outcome(sms_compiled.segments, text) == _outcome(sms_pure.segments, text)


@given(batch=st.lists(items, max_size=12))
@example(batch=["ok", ("7903", "\ud800"), 5])  # the surrogate comes first
@example(batch=["ok", 5, ("7903", "\ud800")])  # the type error comes first
@example(batch=[(), "x"])
def test_twins_agree_on_batches(
    sms_pure: ModuleType, sms_compiled: ModuleType, batch: list[Any]
) -> None:
    for name in ("count_segments", "total_segments"):
        ours = _outcome(getattr(sms_compiled, name), batch)
        assert ours == _outcome(getattr(sms_pure, name), batch), name


@given(
    tail=st.lists(texts, min_size=1, max_size=12),
    padding=st.integers(1000, 1030),
    bad=st.integers(0, 2100),
    type_error=st.booleans(),
)
def test_twins_agree_across_chunks(
    sms_pure: ModuleType,
    sms_compiled: ModuleType,
    tail: list[str],
    padding: int,
    bad: int,
    type_error: bool,
) -> None:
    # The compiled twin works through 1,024 items at a time: the batch straddles a
    # chunk, with a fault anywhere in it.
    batch: list[Any] = ["Hello {name}"] * padding + tail
    bad %= len(batch)
    batch[bad] = ("7903", None) if type_error else batch[bad] + "\udfff"
    for name in ("count_segments", "total_segments"):
        ours = _outcome(getattr(sms_compiled, name), batch)
        assert ours == _outcome(getattr(sms_pure, name), batch), name


# -- (b) a naive oracle --------------------------------------------------------------------


def _oracle(text: str) -> tuple[str, int, int, int]:
    """TS 23.038/23.040 read literally: a list of character costs, cut by hand."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise MessageError(None, "text", "lone surrogate")
    if all(septets(c) for c in text):
        encoding, costs, single, part = "gsm7", [septets(c) for c in text], 160, 153
    else:
        encoding, costs, single, part = "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67
    units = sum(costs)
    if units <= single:
        return encoding, units, 1, single - units
    parts = [0]
    for cost in costs:
        if parts[-1] + cost > part:  # never split a character
            parts.append(0)
        parts[-1] += cost
    return encoding, units, len(parts), part - parts[-1]


@given(text=texts)
def test_pure_twin_agrees_with_the_oracle(sms_pure: ModuleType, text: str) -> None:
    try:
        expected: Any = _oracle(text)
    except MessageError:
        expected = MessageError
    try:
        result: Any = sms_pure.segments(text)
    except MessageError:
        result = MessageError
    assert result == expected


# -- (c) invariants ------------------------------------------------------------------------


def _surrogate_free(text: str) -> str:
    return "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)


@given(text=texts, cut=st.integers(0, 500))
def test_segments_never_fall_as_a_text_grows(sms: ModuleType, text: str, cut: int) -> None:
    text = _surrogate_free(text)
    shorter, longer = sms.segments(text[:cut]), sms.segments(text)
    assert shorter.segments <= longer.segments
    assert shorter.units <= longer.units or shorter.encoding != longer.encoding


@given(text=texts)
def test_shape_of_a_result(sms: ModuleType, text: str) -> None:
    text = _surrogate_free(text)
    result = sms.segments(text)
    gsm7 = all(c in BASIC or c in EXTENSION for c in text)
    assert result.encoding == ("gsm7" if gsm7 else "ucs2")
    single, part = (160, 153) if gsm7 else (70, 67)
    assert len(text) <= result.units <= 2 * len(text)
    assert result.segments >= 1
    if result.segments == 1:
        assert result.units + result.remaining == single
    else:
        # Each cut may leave one unit empty (a two-unit character moved on), no more.
        capacity = result.segments * part
        assert capacity - (result.segments - 1) <= result.units + result.remaining <= capacity
        assert 0 <= result.remaining < part


@given(batch=st.lists(texts.map(_surrogate_free), max_size=20))
def test_batch_forms_agree_with_segments(sms: ModuleType, batch: list[str]) -> None:
    results = sms.count_segments(batch)
    assert results == [sms.segments(text) for text in batch]
    assert sms.count_segments([Message("7903", text) for text in batch]) == results
    totals = sms.total_segments(batch)
    assert totals.messages == len(batch)
    assert totals.segments == sum(r.segments for r in results)
    assert totals.gsm7_messages == sum(r.encoding == "gsm7" for r in results)
    assert totals.gsm7_segments + totals.ucs2_segments == totals.segments
    assert totals.largest == max((r.segments for r in results), default=0)
    if batch:
        assert results[totals.largest_index].segments == totals.largest
