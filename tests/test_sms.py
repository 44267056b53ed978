"""Example tests of segment counting; each runs against both twins (``sms``).

Expected values come from the standards (3GPP TS 23.038 clause 6.2.1 and 6.2.1.1,
TS 23.040 clause 9.2.3.24.1; see hpgfast/_gsm.py), worked out by hand in the
comments, and from the published test cases of Twilio's segment calculator
(github.com/TwilioDevEd/message-segment-calculator), cited where used.
"""

from __future__ import annotations

import pickle
import threading
from types import ModuleType

import pytest

from hpgfast import Message, MessageError, MessageTypeError
from hpgfast import sms as sms_api
from hpgfast._gsm import BASIC, EXTENSION
from hpgfast.sms import Segments, SegmentTotals

GSM7, UCS2 = "gsm7", "ucs2"
EMOJI = "\U0001f61c"  # 😜: outside the BMP, a surrogate pair in UTF-16


def digits(start: int, count: int) -> str:
    """Digits counting on from `start`, as the calculator writes its bodies ("2345...")."""
    return "".join(str(i % 10) for i in range(start, start + count))


# -- the alphabet ------------------------------------------------------------------------


def test_the_whole_default_alphabet_is_one_septet_each(sms: ModuleType) -> None:
    text = "".join(sorted(BASIC))
    assert len(text) == 127  # 128 codes less the escape
    assert sms.segments(text) == (GSM7, 127, 1, 33)


@pytest.mark.parametrize("char", sorted(EXTENSION))
def test_extension_characters_cost_two_septets(sms: ModuleType, char: str) -> None:
    assert sms.segments(char) == (GSM7, 2, 1, 158)
    assert sms.segments("a" + char + "b") == (GSM7, 4, 1, 156)


def test_form_feed_and_euro_are_extension_characters(sms: ModuleType) -> None:
    assert sms.segments("\f") == (GSM7, 2, 1, 158)
    assert sms.segments("5 €") == (GSM7, 4, 1, 156)
    assert sms.segments("€" * 80) == (GSM7, 160, 1, 0)
    # 76 euros fill 152 septets of the first part; the 77th would straddle 153.
    assert sms.segments("€" * 81) == (GSM7, 162, 2, 143)  # 152 | 10


@pytest.mark.parametrize(
    "text",
    [
        "`",  # the grave accent is not in the default alphabet
        "ç",  # only the capital Ç is (0x09)
        "Привет",
        "\t",  # no control characters but LF, CR (and FF in the extension table)
        "\x1b",  # the escape code is not a character
        "\xa0",  # no-break space
        "\u201chi\u201d",  # curly quotes
        "\u0394\u03b1",  # capital Delta is in GSM 7-bit, small alpha is not
    ],
)
def test_any_other_character_makes_the_whole_text_ucs2(sms: ModuleType, text: str) -> None:
    assert sms.segments(text) == (UCS2, len(text), 1, 70 - len(text))
    assert sms.segments("a" * 100 + text)[0] == UCS2


def test_greek_capitals_and_latin_letters_of_the_alphabet(sms: ModuleType) -> None:
    assert sms.segments("ΔΦΓΛΩΠΨΣΘΞ") == (GSM7, 10, 1, 150)
    assert sms.segments("Ça s'écrit à Ærøskøbing, Señor Müller? ¿¡§!")[0] == GSM7


# -- single and concatenated: the boundaries ----------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, (GSM7, 0, 1, 160)),  # an empty text is still one SMS
        (1, (GSM7, 1, 1, 159)),
        (160, (GSM7, 160, 1, 0)),
        (161, (GSM7, 161, 2, 145)),  # 153 + 8
        (306, (GSM7, 306, 2, 0)),  # 153 x 2
        (307, (GSM7, 307, 3, 152)),
        (459, (GSM7, 459, 3, 0)),
        (460, (GSM7, 460, 4, 152)),
    ],
)
def test_gsm7_boundaries(sms: ModuleType, length: int, expected: tuple[object, ...]) -> None:
    assert sms.segments("a" * length) == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (1, (UCS2, 1, 1, 69)),
        (70, (UCS2, 70, 1, 0)),
        (71, (UCS2, 71, 2, 63)),  # 67 + 4
        (134, (UCS2, 134, 2, 0)),  # 67 x 2
        (135, (UCS2, 135, 3, 66)),
        (201, (UCS2, 201, 3, 0)),
    ],
)
def test_ucs2_boundaries(sms: ModuleType, length: int, expected: tuple[object, ...]) -> None:
    assert sms.segments("я" * length) == expected


def test_extension_character_straddling_the_153_boundary_starts_the_next_part(
    sms: ModuleType,
) -> None:
    # 152 septets, then "{" (escape + code) would take septets 153 and 154: the first
    # part ends one septet short and "{" opens the second (TS 23.040 9.2.3.24.1).
    text = "a" * 152 + "{" + "a" * 152
    assert sms.segments(text) == (GSM7, 306, 3, 152)  # 152 | 2 + 151 | 1
    # One character earlier it fits exactly: 151 + 2 = 153.
    assert sms.segments("a" * 151 + "{" + "a" * 153) == (GSM7, 306, 2, 0)
    # At the second boundary too: 153 | 152 + "{" straddles 306.
    assert sms.segments("a" * 305 + "{") == (GSM7, 307, 3, 151)


def test_surrogate_pair_straddling_the_67_boundary_starts_the_next_part(
    sms: ModuleType,
) -> None:
    # 66 units, then an emoji (two units) would straddle unit 67: the part ends at 66.
    text = "я" * 66 + EMOJI + "я" * 66
    assert sms.segments(text) == (UCS2, 134, 3, 66)  # 66 | 2 + 65 | 1
    assert sms.segments("я" * 65 + EMOJI + "я" * 67) == (UCS2, 134, 2, 0)
    # Emoji only: 33 pairs fill 66 units of each part.
    assert sms.segments(EMOJI * 35) == (UCS2, 70, 1, 0)
    assert sms.segments(EMOJI * 36) == (UCS2, 72, 2, 61)  # 66 | 6
    assert sms.segments(EMOJI * 67) == (UCS2, 134, 3, 65)  # 66 | 66 | 2


def test_a_straddle_does_not_matter_in_a_single_sms(sms: ModuleType) -> None:
    assert sms.segments("a" * 158 + "{") == (GSM7, 160, 1, 0)
    assert sms.segments("я" * 68 + EMOJI) == (UCS2, 70, 1, 0)


def test_characters_outside_the_bmp_count_two_units(sms: ModuleType) -> None:
    assert sms.segments(EMOJI) == (UCS2, 2, 1, 68)
    assert sms.segments("Hi " + EMOJI) == (UCS2, 5, 1, 65)
    # A ZWJ sequence is several characters; the standard counts code units.
    assert sms.segments("\U0001f469\u200d\u2695\ufe0f") == (UCS2, 5, 1, 65)


# -- published examples -----------------------------------------------------------------
# Twilio's segment calculator, tests/index.test.js ("Basic tests"): encoding, segments
# and messageSize in bits (septets x 7, or units x 16).


@pytest.mark.parametrize(
    ("text", "encoding", "count", "bits"),
    [
        ("{" + digits(2, 158), GSM7, 1, 1120),  # "GSM-7 with escape characters in one segment"
        ("{" + digits(2, 159), GSM7, 2, 1127),  # "... in two segments"
        (EMOJI + digits(2, 68), UCS2, 1, 1120),  # "UCS-2 message in one segment"
        (EMOJI + digits(2, 69), UCS2, 2, 1136),  # "UCS-2 message in two segments"
    ],
)
def test_twilio_calculator_basic_examples(
    sms: ModuleType, text: str, encoding: str, count: int, bits: int
) -> None:
    result = sms.segments(text)
    assert result.encoding == encoding
    assert result.segments == count
    assert result.units * (7 if encoding == GSM7 else 16) == bits


def test_twilio_calculator_last_segment_examples(sms: ModuleType) -> None:
    # tests/segments.test.js: 307 GSM-7 digits and an emoji + 133 digits are three
    # segments each, the last holding one character ("Check last segment has only
    # 1 character").
    assert sms.segments(digits(1, 307)) == (GSM7, 307, 3, 152)
    assert sms.segments(EMOJI + digits(2, 133)) == (UCS2, 135, 3, 66)


# -- lone surrogates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "at"),
    [
        ("\ud800", "D800", 0),
        ("abc\udfff", "DFFF", 3),
        ("я\udc00я", "DC00", 1),
        (EMOJI + "x\ud83d", "D83D", 2),
        ("\ud83d\ude1c", "D83D", 0),  # two halves in a str are two lone surrogates
        ("{" * 200 + "\udbff", "DBFF", 200),
    ],
)
def test_lone_surrogate_raises_like_the_encoder(
    sms: ModuleType, text: str, code: str, at: int
) -> None:
    with pytest.raises(MessageError) as info:
        sms.segments(text)
    assert info.value.index is None
    assert info.value.field == "text"
    assert info.value.reason == f"contains a lone surrogate U+{code} at character {at}"


def test_lone_surrogate_wording_is_the_encoders(sms: ModuleType, codec: ModuleType) -> None:
    text = "ok\udc80"
    with pytest.raises(MessageError) as ours:
        sms.segments(text)
    with pytest.raises(MessageError) as encoders:
        codec.encode_send([Message("79031111111", text, "S")])
    assert ours.value.reason == encoders.value.reason
    assert encoders.value.field == ours.value.field == "text"


def test_segments_wants_a_str(sms: ModuleType) -> None:
    with pytest.raises(MessageTypeError) as info:
        sms.segments(b"bytes")
    assert (info.value.index, info.value.field) == (None, "text")
    assert info.value.reason == "expected str, got bytes"


def test_str_subclasses_are_read_as_their_characters(sms: ModuleType) -> None:
    class Shouty(str):
        def __len__(self) -> int:
            return 1000

        def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
            raise AssertionError("not called")

    assert sms.segments(Shouty("Привет")) == (UCS2, 6, 1, 64)
    assert sms.count_segments([Shouty("hi")]) == [(GSM7, 2, 1, 158)]


# -- batches ----------------------------------------------------------------------------


def test_count_segments_takes_texts_messages_and_tuples(sms: ModuleType) -> None:
    items = [
        "Hello",
        Message("79031111111", "Привет"),
        ("79032222222", "a" * 161, "SUBJ", "id-1", {"ttl": "5"}),
        ("79033333333", EMOJI),
    ]
    assert sms.count_segments(items) == [
        (GSM7, 5, 1, 155),
        (UCS2, 6, 1, 64),
        (GSM7, 161, 2, 145),
        (UCS2, 2, 1, 68),
    ]
    assert sms.count_segments(iter(items)) == sms.count_segments(tuple(items))
    assert sms.count_segments([]) == []


def test_results_are_segments_records(sms: ModuleType) -> None:
    (result,) = sms.count_segments(["a" * 161])
    assert type(result) is Segments
    assert type(sms.segments("x")) is Segments
    assert result == Segments("gsm7", 161, 2, 145) == ("gsm7", 161, 2, 145)
    assert (result.encoding, result.units, result.segments, result.remaining) == tuple(result)
    assert repr(result) == "Segments(encoding='gsm7', units=161, segments=2, remaining=145)"
    assert pickle.loads(pickle.dumps(result)) == result
    with pytest.raises(AttributeError):
        result.segments = 1  # type: ignore[misc]


def test_total_segments_worked_by_hand(sms: ModuleType) -> None:
    items = [
        "a" * 160,  # gsm7, 1
        "Привет " * 20,  # ucs2, 140 units: 3
        Message("79031111111", "a" * 152 + "{" + "a" * 152),  # gsm7, 3 (the straddle)
        ("7903", EMOJI * 36),  # ucs2, 2
        "",  # gsm7, 1
    ]
    totals = sms.total_segments(items)
    assert type(totals) is SegmentTotals
    assert totals == (5, 10, 3, 5, 2, 5, 3, 1)
    assert totals.messages == 5
    assert totals.segments == 10
    assert (totals.gsm7_messages, totals.gsm7_segments) == (3, 5)
    assert (totals.ucs2_messages, totals.ucs2_segments) == (2, 5)
    assert (totals.largest, totals.largest_index) == (3, 1)  # the first with 3
    assert sms.total_segments([]) == (0, 0, 0, 0, 0, 0, 0, None)
    assert pickle.loads(pickle.dumps(totals)) == totals


def test_totals_agree_with_the_records(sms: ModuleType) -> None:
    items = [("a" * n if n % 3 else "я" * n) + ("{" if n % 7 == 0 else "") for n in range(2500)]
    results = sms.count_segments(items)
    totals = sms.total_segments(items)
    assert totals.messages == len(results)
    assert totals.segments == sum(r.segments for r in results)
    assert totals.gsm7_segments == sum(r.segments for r in results if r.encoding == GSM7)
    assert totals.largest == max(r.segments for r in results)
    assert results[totals.largest_index].segments == totals.largest


NOT_AN_ITEM = "expected a str, a Message or a tuple, got "
SURROGATE = "contains a lone surrogate U+"


@pytest.mark.parametrize(
    ("item", "error", "field", "reason"),
    [
        (42, MessageTypeError, "message", NOT_AN_ITEM + "int"),
        (["7903", "text"], MessageTypeError, "message", NOT_AN_ITEM + "list"),
        (b"text", MessageTypeError, "message", NOT_AN_ITEM + "bytes"),
        (("7903",), MessageError, "message", "expected 2 to 5 fields, got 1"),
        (tuple("123456"), MessageError, "message", "expected 2 to 5 fields, got 6"),
        (("7903", None), MessageTypeError, "text", "expected str, got NoneType"),
        (("7903", b"x"), MessageTypeError, "text", "expected str, got bytes"),
        ("ok\ud800", MessageError, "text", SURROGATE + "D800 at character 2"),
        (("7903", "\udfff"), MessageError, "text", SURROGATE + "DFFF at character 0"),
    ],
)  # fmt: skip
def test_batch_errors_name_the_item(
    sms: ModuleType, item: object, error: type[Exception], field: str, reason: str
) -> None:
    for function in (sms.count_segments, sms.total_segments):
        with pytest.raises(error) as info:
            function(["fine", Message("7903", "fine too"), item, "never reached"])
        assert type(info.value) is error
        assert (info.value.index, info.value.field, info.value.reason) == (2, field, reason)  # type: ignore[attr-defined]


@pytest.mark.parametrize("first_bad", [3, 1500, 2047])
def test_the_first_bad_item_raises_whatever_its_fault(sms: ModuleType, first_bad: int) -> None:
    # The compiled twin finds the texts and checks their characters in separate passes
    # over chunks of items; the order of the errors must still be the items' order.
    items: list[object] = ["text"] * 3000
    items[first_bad] = "\ud800"
    items[first_bad + 500] = 7
    with pytest.raises(MessageError) as info:
        sms.count_segments(items)
    assert (type(info.value), info.value.index) == (MessageError, first_bad)
    items[first_bad], items[first_bad + 500] = 7, "\ud800"
    with pytest.raises(MessageTypeError) as info:
        sms.total_segments(items)
    assert info.value.index == first_bad


def test_a_str_is_not_a_batch(sms: ModuleType) -> None:
    for bad in ("text", b"text", bytearray(b"text")):
        with pytest.raises(TypeError, match="expected a sequence of texts or messages"):
            sms.count_segments(bad)
        with pytest.raises(TypeError, match="expected a sequence of texts or messages"):
            sms.total_segments(bad)
    with pytest.raises(TypeError, match="not iterable"):
        sms.count_segments(5)


def test_large_batch_in_threads_gives_the_same_results(sms: ModuleType) -> None:
    # The compiled twin releases the GIL over its character loops: concurrent calls on
    # the same list (which the caller may change afterwards) stay right.
    items = [("Привет " if i % 2 else "Hello ") * (i % 40) + EMOJI * (i % 3) for i in range(20_000)]
    expected = sms.count_segments(items)
    results: list[object] = []

    def run() -> None:
        results.append(sms.count_segments(items))
        results.append(sms.total_segments(items))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = sms.total_segments(items)
    assert results.count(expected) == 3
    assert results.count(totals) == 3
    items.clear()
    assert totals.messages == 20_000


# -- the public module ------------------------------------------------------------------


def test_public_module_selects_a_twin() -> None:
    assert sms_api.IMPLEMENTATION in ("compiled", "python")
    assert sms_api.segments("Hello") == (GSM7, 5, 1, 155)
    for name in sms_api.__all__:
        assert hasattr(sms_api, name), name


def test_transliterate_messages_changes_only_cheaper_texts() -> None:
    from hpgfast import Message, MessageError
    from hpgfast.sms import transliterate_messages

    long_russian = "Ваш заказ доставлен в пункт выдачи, код получения 4821, срок хранения 3 дня"
    batch = [
        Message("1", long_russian, "S", "id-1", {"priority": "high"}),
        ("2", "Привет"),
        ("3", "ascii"),
    ]
    out, changed = transliterate_messages(batch)
    assert changed == [0]
    assert out[0] == Message("1", out[0].text, "S", "id-1", {"priority": "high"})
    assert out[0].text.startswith("Vash zakaz") and out[1:] == batch[1:]
    with pytest.raises(MessageError) as info:
        transliterate_messages([("1", "ok"), ("2", "x\ud800" * 40)])
    assert info.value.index == 1 and info.value.field == "text"
