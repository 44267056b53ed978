"""Russian Cyrillic to Latin letters, by ICAO Doc 9303: the table in one place.

Source: ICAO Doc 9303, "Machine Readable Travel Documents", Part 3 (Seventh
Edition, 2015), the recommended transliteration of Cyrillic characters, Russian
column (earlier editions: Part 1, Volume 1, Section IV, Appendix 9). Russian
passports for travel abroad use it since the order of the Federal Migration Service
of Russia No. 320 of 15 October 2012 (item 97). The standard is written in capital
letters; hpgfast writes a lower-case letter in lower case, a capital at the start of
a word in title case (``Ж`` -> ``Zh``), and a capital inside a word in capitals
(``ЖЖ`` -> ``ZHZH``, ``ЖУК`` -> ``ZHUK``). ``Ь`` has no Latin letter in the table
and is left out, as in passports. Only the 33 letters of the Russian alphabet are
changed; everything else (other Cyrillic letters, ``№``, ``₽``, emoji) is kept.
"""

from __future__ import annotations

import re

__all__ = ["ICAO_9303_RUSSIAN", "transliterate"]

#: ICAO Doc 9303 Part 3, Russian letters, in the table's order (lower case here).
ICAO_9303_RUSSIAN: dict[str, str] = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ы": "y",
    "ъ": "ie",
    "э": "e",
    "ю": "iu",
    "я": "ia",
    "ь": "",  # not in the table: left out
}

# Lower case as in the table; a capital in title case. Capitals with more than one
# Latin letter are written in full capitals in a word of capitals (_in_capitals).
_TABLE = {ord(cyr): lat for cyr, lat in ICAO_9303_RUSSIAN.items()}
_TABLE.update({ord(cyr.upper()): lat.capitalize() for cyr, lat in ICAO_9303_RUSSIAN.items()})
_RUSSIAN = re.compile("[" + "".join(ICAO_9303_RUSSIAN) + "".join(ICAO_9303_RUSSIAN).upper() + "]")
_MULTI_CAPITAL = re.compile(
    "[" + "".join(c.upper() for c, lat in ICAO_9303_RUSSIAN.items() if len(lat) > 1) + "]"
)


def _in_capitals(match: re.Match[str]) -> str:
    text, i = match.string, match.start()
    after = text[i + 1] if i + 1 < len(text) else ""
    before = text[i - 1] if i else ""
    if after.isupper() or (before.isupper() and not after.islower()):
        return ICAO_9303_RUSSIAN[match.group().lower()].upper()
    return match.group()  # the table's title case


def transliterate(text: str) -> str:
    """``text`` with its Russian letters written in Latin ones, by ICAO Doc 9303.

    ``"Ваш код 1234"`` -> ``"Vash kod 1234"``. Other characters are kept as they are.
    """
    if _RUSSIAN.search(text) is None:
        return text
    return _MULTI_CAPITAL.sub(_in_capitals, text).translate(_TABLE)
