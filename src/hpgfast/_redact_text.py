"""The password's forms as text, character by character: the patterns ``Redactor``
(in ``_redact``) searches foreign text for.

Each character of a password may come back percent-encoded, escaped (HTML, JSON,
a repr), quoted-printable, as mojibake (its UTF-8 bytes read as an 8-bit charset),
as its byte in an 8-bit charset, in UTF-16 read byte by byte: ``_char_pattern``
says how, ``_text_pattern`` joins them for a whole text.
"""

from __future__ import annotations

import re


def _hex(value: int, width: int) -> str:
    """``value`` in hex as a pattern matching upper, lower and mixed case digits."""
    return "".join(
        f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in f"{value:0{width}X}"
    )


_HTML_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos", " ": "nbsp"}

#: One backslash or more: an escape's, also doubled or more (JSON in a string of
#: JSON, an escape in a repr). Not ``\\+``: a repeat at the start of a pattern
#: stops ``re`` scanning fast for its first characters (ten times slower).
_BACKSLASHES = r"\\(?:\\)*"

#: The characters JSON writes as a backslash and one character (``json.dumps``,
#: ``JSON.stringify``, PHP's ``json_encode`` for ``/``), as patterns. A backslash:
#: two or more (itself is one).
_JSON_SHORT = {
    c: _BACKSLASHES + re.escape(e)
    for c, e in {'"': '"', "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}.items()
}
_JSON_SHORT["\\"] = _BACKSLASHES + r"\\"


def _char_pattern(char: str, *, any_case: bool = False) -> str:
    r"""Every way one character of a secret may come back in a foreign text.

    As itself (in either case with ``any_case``); percent-encoded byte by byte, hex
    in any case (Python's ``quote``, lower-case hex servers, ``java.net.URLEncoder``),
    also once more encoded (``%2541``); ``+`` for a space; a Python bytes escape
    (``\xc3``); an HTML named or numeric character reference (``&lt;``, ``&#60;``,
    ``&#x3C;``, the ``;`` optional as in lenient HTML); a JSON ``\uXXXX`` escape (a
    surrogate pair beyond the BMP) or short escape (``\"``, ``\\``, ``\t``, ``\/``,
    see ``_JSON_SHORT``), the backslash also doubled or more; quoted-printable
    (``=C3=A9``, hex in any case, a soft line break allowed between the bytes of
    one character) and ``_`` for a space (RFC 2047's Q encoding of mail headers);
    mojibake, its UTF-8 bytes read as Latin-1 or Windows-1252 (a server that
    decodes the query so, as Tomcat does by default, or a reader that takes a UTF-8
    body for Latin-1), each byte also as a repr escapes a control character
    (``\x96``), a byte Windows-1252 leaves undefined also as U+FFFD; a non-ASCII
    character's one byte in windows-1251, Windows-1252 or Latin-1, percent-encoded
    or escaped (``_legacy_forms``). Each character of a text may take any of its
    forms independently of the others, so a half-encoded echo is caught too.
    """
    code = ord(char)
    first, *more = char.encode("utf-8", "surrogatepass")
    tail = "".join(f"(?:%(?:25)?{_hex(b, 2)}|\\\\x{_hex(b, 2)})" for b in more)
    quoted = _QP_SOFT_BREAK.join(f"={_hex(b, 2)}" for b in (first, *more))
    forms = [
        f"%(?:25)?{_hex(first, 2)}{tail}",
        f"\\\\x{_hex(first, 2)}{tail}",
        f"&#0*{code};?",
        f"&#[xX]0*{_hex(code, 1)};?",
        quoted,
    ]
    if more:
        forms.append("".join(_mojibake_byte(b) for b in (first, *more)))
        forms += _utf16_forms(char)
        forms += _legacy_forms(char)
    if char == " ":
        forms += [r"\+", "_"]
    if char in _HTML_NAMED:
        forms.append(f"&{_HTML_NAMED[char]};?")
    if code > 0xFFFF:
        units = char.encode("utf-16-be", "surrogatepass")
        high, low = int.from_bytes(units[:2], "big"), int.from_bytes(units[2:], "big")
        forms.append(f"{_BACKSLASHES}[uU]{_hex(high, 4)}{_BACKSLASHES}[uU]{_hex(low, 4)}")
    else:
        forms.append(f"{_BACKSLASHES}[uU]{_hex(code, 4)}")
    if char in _JSON_SHORT:
        forms.append(_JSON_SHORT[char])
    # Itself last: the regex tries alternatives in order, and "&" must not win over
    # "&amp;" when the password ends with it (that would leave "amp;" behind).
    if any_case and char.lower() != char.upper():
        # Two literals, not a class nor re.IGNORECASE: re then still scans fast for
        # the possible first characters (four times faster over a big error page).
        forms += [re.escape(char.lower()), re.escape(char.upper())]
    else:
        forms.append(re.escape(char))
    return "(?:" + "|".join(forms) + ")"


#: The 8-bit encodings a server may percent-encode or dump a non-ASCII character
#: in (a Java or PHP connector set to the platform's windows-1251, a Western one).
_LEGACY = ("cp1251", "cp1252", "latin-1")


def _legacy_forms(char: str) -> list[str]:
    r"""A non-ASCII character as its one byte in an 8-bit encoding (``_LEGACY``),
    percent-encoded (also once more) or as a bytes repr escapes it (``\xcf``)."""
    forms = []
    for encoding in _LEGACY:
        try:
            (byte,) = char.encode(encoding)
        except UnicodeEncodeError:
            continue
        forms += [f"%(?:25)?{_hex(byte, 2)}", f"\\\\x{_hex(byte, 2)}"]
    return list(dict.fromkeys(forms))


def _utf16_forms(char: str) -> list[str]:
    r"""A non-ASCII character of a text in UTF-16 (either byte order) read as UTF-8
    or Latin-1, byte by byte: each byte as itself (an ASCII one; a control one also
    as a repr escapes it), or as Latin-1, Windows-1252, ``\xNN`` or U+FFFD (also
    ``\ufffd``, as ``ascii()`` writes it) reads it. The bytes a reader does not see
    (NUL, a soft hyphen: see ``_INVISIBLE``) optional, as the text is also searched
    without them. An ASCII character needs none: its UTF-16 is itself and a NUL.
    """
    forms = []
    for order in ("utf-16-le", "utf-16-be"):
        parts = []
        for byte in char.encode(order, "surrogatepass"):
            if byte < 0x80 and chr(byte).isprintable():
                part = re.escape(chr(byte))
            elif byte < 0x80:  # a control character, as itself or as a repr shows it
                part = f"(?:{re.escape(chr(byte))}|\\\\x{_hex(byte, 2)})"
            else:
                # U+FFFD as itself and as ascii() escapes it.
                part = _mojibake_byte(byte)[:-1] + "|\ufffd|\\\\u[fF]{3}[dD])"
            parts.append(f"(?:{part})?" if byte in (0x00, 0xAD) else part)
        forms.append("".join(parts))
    return forms


#: The bytes Windows-1252 leaves undefined: Python's and Java's decoders read each
#: as U+FFFD (``errors="replace"``), Windows and browsers as the Latin-1 control
#: character.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def _cp1252(byte: int) -> str:
    """``byte`` as Windows-1252 reads it; the five bytes it leaves undefined as the
    Latin-1 control characters, as Windows and browsers read them."""
    return bytes([byte]).decode("cp1252", "ignore") or chr(byte)


def _mojibake(text: str) -> tuple[str, ...]:
    """``text``'s UTF-8 bytes read as Latin-1 and as Windows-1252 (an undefined byte
    as its control character, and as U+FFFD), when they differ from ``text``
    (non-ASCII)."""
    raw = text.encode("utf-8", "surrogatepass")
    if raw.isascii():
        return ()
    return tuple(dict.fromkeys((
        raw.decode("latin-1"),
        "".join(_cp1252(b) for b in raw),
        raw.decode("cp1252", "replace"),
    )))


def _mojibake_byte(byte: int) -> str:
    r"""One byte (0x80 and above) of a UTF-8 sequence read as one 8-bit character:
    Latin-1's, Windows-1252's, or the ``\xNN`` a repr writes for a control one; a
    byte Windows-1252 leaves undefined also as U+FFFD (as itself and as ``ascii()``
    escapes it), which is what a strict decoder with ``errors="replace"`` gives."""
    forms = dict.fromkeys((re.escape(chr(byte)), re.escape(_cp1252(byte))))
    more = ("\ufffd", _BACKSLASHES + "u[fF]{3}[dD]") if byte in _CP1252_UNDEFINED else ()
    return "(?:" + "|".join((*forms, f"\\\\x{_hex(byte, 2)}", *more)) + ")"


#: A quoted-printable soft line break: "=" at the end of a line, which the decoder
#: drops. An encoder puts one wherever a line would pass 76 characters, so one may
#: fall between any two characters of an echoed password.
_QP_SOFT_BREAK = r"(?:=\r?\n)?"


def _text_pattern(text: str, *, any_case: bool = False) -> str:
    """A pattern of ``text`` in any of its forms, character by character."""
    return _QP_SOFT_BREAK.join(_char_pattern(c, any_case=any_case) for c in text)
