"""The SMS alphabets and sizes, written down once: what a character costs on the air.

Both segment counters (``_sms_py`` and the compiled ``_sms_c``, which builds its C
tables from this module at import) and the documentation (``docs/segments.md``)
follow these tables; nothing else spells them out.

Sources (clause numbers as in Release 16 of the 3GPP specifications):

* 3GPP TS 23.038, "Alphabets and language-specific information":
  clause 6.2.1, "GSM 7 bit Default Alphabet" (the 128 characters below, one septet
  each), and clause 6.2.1.1, "GSM 7 bit default alphabet extension table" (reached
  by the escape code 0x1B, so each of its characters costs two septets);
  clause 6.2.3, "UCS2": any other text is sent as 16-bit units.
* 3GPP TS 23.040, "Technical realization of the Short Message Service (SMS)":
  clause 9.2.3.16 and 9.2.3.24 (TP-User-Data holds at most 140 octets: 160 septets
  or 70 UCS2 characters); clause 9.2.3.24.1, "Concatenated Short Messages": with
  the 6-octet user data header a part holds "153 (160-7)" default-alphabet
  characters or "67 ((140-6)/2)" UCS2 characters; "A character represented by an
  escape-sequence shall not be split in the middle", and "A UCS2 character shall
  not be split in the middle".

UCS2 in practice is UTF-16 on the handsets: a character outside the Basic
Multilingual Plane (most emoji) is a surrogate pair of two 16-bit units, and hpgfast
keeps a pair in one part, as clause 9.2.3.24.1 keeps a character whole.
"""

from __future__ import annotations

__all__ = [
    "BASIC",
    "CONCAT_GSM7",
    "CONCAT_UCS2",
    "EXTENSION",
    "GSM7",
    "SINGLE_GSM7",
    "SINGLE_UCS2",
    "UCS2",
    "septets",
]

#: The encodings a text can take, as ``Segments.encoding`` names them.
GSM7 = "gsm7"
UCS2 = "ucs2"

#: One SMS without a user data header: 140 octets of TP-User-Data.
SINGLE_GSM7 = 160  # septets (140 * 8 / 7)
SINGLE_UCS2 = 70  # 16-bit units (140 / 2)
#: One part of a concatenated SMS: the 6-octet header (UDHL, IEI 00, IEDL, reference,
#: count, number) takes 7 septets with the fill bit, or 3 units.
CONCAT_GSM7 = 153
CONCAT_UCS2 = 67

#: TS 23.038 clause 6.2.1, the default alphabet, in code order 0x00..0x7F (0x1B, the
#: escape to the extension table, is not a character; it is written as "\x1b" here
#: only to keep the positions, and is excluded from ``BASIC``).
_DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)

#: Characters of the default alphabet: one septet each.
BASIC = frozenset(_DEFAULT_ALPHABET) - {"\x1b"}

#: TS 23.038 clause 6.2.1.1, the extension table: its characters (code after the
#: escape in brackets) cost two septets each. Form feed [0x0A], ^ [0x14], { [0x28],
#: } [0x29], \ [0x2F], [ [0x3C], ~ [0x3D], ] [0x3E], | [0x40], € [0x65].
EXTENSION = frozenset("\f^{}\\[~]|€")

if len(_DEFAULT_ALPHABET) != 128 or len(BASIC) != 127 or BASIC & EXTENSION:
    raise ImportError("hpgfast._gsm: the GSM 7-bit tables are inconsistent")


def septets(char: str) -> int:
    """What one character costs in GSM 7-bit: 1, 2 (extension table), or 0 (not GSM-7)."""
    if char in BASIC:
        return 1
    if char in EXTENSION:
        return 2
    return 0
