"""Transliteration by ICAO Doc 9303 and the rule that it is applied only when cheaper."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpgfast import MessageError, MessageTypeError
from hpgfast.sms import ICAO_9303_RUSSIAN, segments, transliterate, transliterate_if_cheaper

# The Russian column of ICAO Doc 9303 Part 3, capitals as the standard writes them.
ICAO_CAPITALS = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Е": "E", "Ё": "E", "Ж": "ZH",
    "З": "Z", "И": "I", "Й": "I", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O",
    "П": "P", "Р": "R", "С": "S", "Т": "T", "У": "U", "Ф": "F", "Х": "KH", "Ц": "TS",
    "Ч": "CH", "Ш": "SH", "Щ": "SHCH", "Ы": "Y", "Ъ": "IE", "Э": "E", "Ю": "IU", "Я": "IA",
}  # fmt: skip


def test_the_table_is_the_standards() -> None:
    assert len(ICAO_9303_RUSSIAN) == 33  # the Russian alphabet
    for capital, latin in ICAO_CAPITALS.items():
        assert ICAO_9303_RUSSIAN[capital.lower()] == latin.lower()
        # In a word of capitals, as on a passport page.
        assert transliterate(capital * 2) == latin * 2
    assert ICAO_9303_RUSSIAN["ь"] == ""  # not in the table: left out


@pytest.mark.parametrize(
    ("russian", "latin"),
    [
        # Names as Russian passports write them since 2013 (the ICAO table).
        ("ЮЛИЯ", "IULIIA"),
        ("Юлия", "Iuliia"),
        ("Щукин", "Shchukin"),
        ("Ксения", "Kseniia"),
        ("Артём", "Artem"),
        ("Подъячев", "Podieiachev"),
        ("Игорь", "Igor"),
        ("Хабаровск", "Khabarovsk"),
        ("ЦАРЁВ", "TSAREV"),
        # Case: title case at a word's start, capitals in a word of capitals.
        ("Жук ЖУК жук", "Zhuk ZHUK zhuk"),
        ("Я и ТЫ", "Ia i TY"),
        ("МОЯ", "MOIA"),
        ("ЯМА", "IAMA"),
        ("Ваш код: 1234.", "Vash kod: 1234."),
        # Everything that is not a Russian letter is kept.
        ("Заказ №5, 100 ₽ 🚚", "Zakaz №5, 100 ₽ 🚚"),
        ("Їжак", "Їzhak"),  # Ukrainian Ї is not in the Russian table
        ("plain text", "plain text"),
    ],
)
def test_transliterate(russian: str, latin: str) -> None:
    assert transliterate(russian) == latin


def test_transliterate_if_cheaper_changes_only_what_saves_a_segment() -> None:
    # 84 Cyrillic-and-space characters: two UCS-2 segments; in Latin, 86 septets: one.
    text = "Привет " * 12
    assert segments(text) == ("ucs2", 84, 2, 50)
    latin, changed = transliterate_if_cheaper(text)
    assert changed is True
    assert latin == "Privet " * 12
    assert segments(latin) == ("gsm7", 84, 1, 76)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world",  # GSM 7-bit: never changed
        "a" * 200,
        "Привет",  # one segment either way: not cheaper
        "Привет " * 10,  # 70 units: one UCS-2 segment, as one GSM 7-bit
        "Доставка 🚚 " * 8,  # the emoji keeps it UCS-2
        "Заказ №12 " * 10,  # so does the numero sign
        "Ciao, ç",  # UCS-2 without a Russian letter
    ],
)
def test_transliterate_if_cheaper_leaves_the_rest(text: str) -> None:
    result, changed = transliterate_if_cheaper(text)
    assert changed is False
    assert result is text


def test_transliterate_if_cheaper_checks_its_input() -> None:
    with pytest.raises(MessageError, match="lone surrogate U\\+D800 at character 6"):
        transliterate_if_cheaper("Привет\ud800")
    with pytest.raises(MessageTypeError):
        transliterate_if_cheaper(None)  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------

russian_text = st.text(
    st.one_of(
        st.sampled_from("".join(ICAO_9303_RUSSIAN) + "".join(ICAO_9303_RUSSIAN).upper()),
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from(" .,!?0123456789"),
    ),
    max_size=200,
)


@given(text=russian_text)
def test_no_russian_letter_survives_and_nothing_else_changes(text: str) -> None:
    result = transliterate(text)
    russian = set(ICAO_9303_RUSSIAN) | {c.upper() for c in ICAO_9303_RUSSIAN}
    assert not russian & set(result)
    if not russian & set(text):
        assert result is text
    # Each Russian letter becomes at most four Latin ones ("shch"), the rest stays.
    assert len(result) <= len(text) + 3 * sum(c in russian for c in text)
    assert [c for c in result if not c.isascii()] == [
        c for c in text if c not in russian and not c.isascii()
    ]


@given(text=russian_text)
def test_transliterate_if_cheaper_only_ever_saves(text: str) -> None:
    result, changed = transliterate_if_cheaper(text)
    before, after = segments(text), segments(result)
    if changed:
        assert result == transliterate(text)
        assert after.encoding == "gsm7"
        assert after.segments < before.segments
    else:
        assert result is text
