"""Keeping the password out of logs, exceptions and reprs.

Strategy: HPG puts the password in the query string, so every URL is a secret. The
client never logs or raises a URL it did not build redacted itself; what it cannot
build (the text of a urllib3 or OS error, a description the platform echoes back)
goes through a ``Redactor`` first, which knows the password in every encoding a
server may echo it in (character by character in ``_redact_text``; with invisible
characters between its characters too) and masks the value of any ``password=`` it
sees; a line's bytes (``.raw``) go through ``redact_bytes``, which reads them in
every encoding their text could be in. What it does not look for: the
password in base32, rot13, reversed, compressed or encrypted (see
docs/defaults.md, Secrets).

Logging is redacted where hpgfast formats its own messages, and nowhere else:
hpgfast changes nothing process-wide (no log record factory, no filter on another
library's logger, no handler), as urllib3, httpx or aiohttp do not. That is enough
because no other logger is ever given a secret: both clients write the request
bytes themselves, so urllib3 and asyncio never see a request target (urllib3's
own records quote only the host and port), and every text a client logs or
raises was redacted first. tests/test_logging.py holds every logger of the process
at DEBUG through every failure and finds the password in no record.
"""

from __future__ import annotations

import base64
import bisect
import os
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

from ._redact_text import _char_pattern, _hex, _mojibake, _text_pattern

__all__ = [
    "MASK",
    "Redactor",
    "Redactors",
    "Secret",
    "mask_url",
    "redact_all",
    "redact_bytes",
    "register",
    "scrub_exception",
    "unregister",
]

MASK = "***"


class Secret:
    """A string that never shows itself in a ``repr`` (nor in ``vars()``-based ones)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a secret cannot be pickled")


#: The characters of a base64 run, either alphabet (standard "+/", URL-safe "-_").
_B64_RUN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


def _b64_char_pattern(char: str) -> str:
    """One base64 character, in either alphabet, itself or as a URL or JSON escapes it.

    Letters and digits only as themselves: no encoder escapes them, and a literal
    first character lets the regex scan a long text fast.
    """
    if char == "+":
        return r"(?:\+|-|%2[bB])"
    if char == "/":
        return r"(?:/|_|%2[fF]|\\/)"
    return char


def _wire_forms(password: str) -> list[bytes]:
    """The byte strings the password may be when a server base64-encodes an echo.

    HPG carries the password in the query, so an echoed request target holds it
    percent-encoded, not raw: the codec's form (RFC 3986 unreserved kept, upper-case
    hex, space as ``%20``), the same with lower-case hex, ``+`` for a space (a form
    encoder, ``java.net.URLEncoder``), ``/`` kept (Python's default ``quote``) and
    once more encoded (``%2540``): the forms ``_char_pattern`` finds in plain text
    that a whole query takes. Base64 hides the case and choice of each character,
    so every whole form is searched, not each character's forms independently
    (which a base64 pattern cannot express).
    """
    text = password.encode("utf-8", "surrogatepass")
    forms = {text}
    for safe in (b"", b"/", b"*"):
        for space in (b"%20", b"+"):
            quoted = b"".join(
                bytes([b])
                if (chr(b).isascii() and (chr(b).isalnum() or b in b"-._~"))
                or b in safe
                else (space if b == 0x20 else b"%%%02X" % b)
                for b in text
            )
            forms |= {quoted, quoted.replace(b"%", b"%25")}
    # The same with lower-case hex (only hex digits follow a "%").
    forms |= {re.sub(rb"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
    return sorted(forms, key=lambda f: (len(f), f))


def _base64_pattern(password: str) -> str | None:
    """A pattern of the password inside any base64 text, at any of its alignments.

    Base64 turns 3 bytes into 4 characters, so inside a longer base64 text (an
    echoed ``Authorization: Basic`` header, ``login:password``, a whole query) the
    password's bytes start at one of three alignments, and at each, the characters
    between the first and the last it shares with its neighbours depend on the
    password alone: those are matched, in the standard or the URL-safe alphabet
    (each character in either, ``+`` and ``/`` also escaped as in a URL or JSON),
    with a MIME line break allowed between any two. This for each form the password
    takes on the wire (see ``_wire_forms``): a server echoing the request target in
    base64 echoes ``password=P%40ss``, not ``P@ss``. ``Redactor`` then masks the
    whole base64 run around a match (see ``_base64_spans``).
    """
    trie: _Trie = {}
    for raw in _wire_forms(password):
        for offset in range(3):
            text = base64.b64encode(b"\0" * offset + raw).decode("ascii")
            # Characters holding bits of the padding bytes only, or of both, are left out.
            core = text[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
            # One character (a one-byte password) would match in most words, and the
            # whole run around it would go: no text would survive the redaction.
            if len(core) >= 2:
                node = trie
                for c in core:
                    node = node.setdefault(c, {})
                node[""] = {}
    return _trie_pattern(trie) if trie else None


_Trie = dict[str, "_Trie"]


def _trie_pattern(node: _Trie) -> str:
    """One regex of the base64 cores in ``node``, their common prefixes shared.

    A flat alternation of some forty cores makes ``re`` try each at every position
    of the text; sharing prefixes keeps the cost near that of a single core. A core
    that is a prefix of another ends the match there: the whole base64 run around a
    match is masked anyway.
    """
    branches = []
    for char, child in sorted(node.items()):
        if not char:
            return ""
        rest = _trie_pattern(child)
        branches.append(_b64_char_pattern(char) + (r"(?:\r?\n)?" + rest if rest else ""))
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


#: What a reader does not see between two characters of a text, and a server may
#: put there: NUL (a text in UTF-16 read as UTF-8 or Latin-1 holds one between any
#: two ASCII characters, before or after each as the byte order goes, a BOM or
#: not), the zero-width characters (U+200B..U+200F, U+2060..U+2064, U+180E),
#: U+FEFF, the soft hyphen, the combining grapheme joiner; and each as an error or
#: a repr escapes it (``\x00``, ``\u200b``, a repr of a repr doubling the
#: backslash), in any case.
_INVISIBLE_CHARS = "[\x00\xad\u034f\u180e\u200b-\u200f\u2060-\u2064\ufeff]"
_INVISIBLE = re.compile(
    _INVISIBLE_CHARS + r"|\\+(?i:x00|xad|u0000|u00ad|u034f|u180e|u200[b-f]|u206[0-4]|ufeff)"
)

#: The same, unescaped: a class, which ``re`` scans for fast.
_INVISIBLE_CHAR = re.compile(_INVISIBLE_CHARS)


def _has_invisible(text: str) -> bool:
    return _INVISIBLE_CHAR.search(text) is not None or (
        "\\" in text and _INVISIBLE.search(text) is not None
    )


_Span = tuple[int, int]
_Finder = Callable[[str], list[_Span]]


def _without_invisible(text: str) -> tuple[str, Callable[[int, int], _Span]]:
    """``text`` without its invisible characters, and a function that turns a span
    of that view into the span of ``text`` it came from (invisible characters
    inside it included). Linear: one scan, and a binary search per span."""
    pieces: list[str] = []
    starts: list[int] = []  # where each kept piece starts in the view ...
    origins: list[int] = []  # ... and in the text
    last = length = 0
    for match in _INVISIBLE.finditer(text):
        if match.start() > last:
            starts.append(length)
            origins.append(last)
            pieces.append(text[last : match.start()])
            length += match.start() - last
        last = match.end()
    if last < len(text):
        starts.append(length)
        origins.append(last)
        pieces.append(text[last:])

    def where(start: int, end: int) -> _Span:
        first = bisect.bisect_right(starts, start) - 1
        final = bisect.bisect_right(starts, end - 1) - 1
        return (origins[first] + start - starts[first], origins[final] + end - starts[final])

    return "".join(pieces), where


def _masked(text: str, spans: list[_Span]) -> str:
    """``text`` with each span (in order, apart) replaced by ``***`` and the line
    ends it held: a text read line by line keeps its line numbers."""
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], MASK, "\n" * text.count("\n", start, end)]
        last = end
    out.append(text[last:])
    return "".join(out)


def _spans(pattern: re.Pattern[str]) -> _Finder:
    return lambda text: [match.span() for match in pattern.finditer(text)]


def _finders(password: str) -> list[_Finder]:
    """The searches ``Redactor`` makes for ``password``, in order: its forms as text
    (``_text_pattern``), a hex dump of its bytes (``_hex_pattern``), its base64
    (``_base64_pattern``)."""
    if not password:
        return []
    found = [_spans(re.compile(_text_pattern(password)))]
    hexed = _hex_pattern(password)
    if hexed is not None:
        found.append(_spans(re.compile(hexed)))
    b64 = _base64_pattern(password)
    if b64 is not None:
        pattern = re.compile(b64)
        found.append(lambda text: _base64_spans(pattern, text))
    return found


#: The shortest password whose hex dump is looked for, in bytes: shorter hex runs
#: stand in any platform's ids, hashes and dumps.
_MIN_HEX_BYTES = 4
#: What a hex dump may put between two bytes.
_HEX_SEPARATOR = "[ :-]?"


def _hex_pattern(password: str) -> str | None:
    """A pattern of a hex dump of the password's bytes: its UTF-8 bytes, and each
    form it takes in a query (``_wire_forms``: a dump of the request), two hex
    digits a byte in any case, a space, a colon or a dash between bytes or not.
    ``None`` for a password of fewer than ``_MIN_HEX_BYTES`` bytes."""
    if len(password.encode("utf-8", "surrogatepass")) < _MIN_HEX_BYTES:
        return None
    trie: dict[int, Any] = {}
    for form in _wire_forms(password):
        node = trie
        for byte in form:
            node = node.setdefault(byte, {})
        node[-1] = {}
    return _hex_trie(trie)


def _hex_trie(node: dict[int, Any]) -> str:
    """One regex of the byte strings in ``node`` (which has bytes below it),
    prefixes shared; a string that is a prefix of another is matched whole, the
    longer tried first."""
    branches = []
    for byte, child in sorted(node.items()):
        if byte < 0:
            continue
        head = _hex(byte, 2)
        if any(key >= 0 for key in child):
            rest = _HEX_SEPARATOR + _hex_trie(child)
            head += f"(?:{rest})?" if -1 in child else rest
        branches.append(head)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


class Redactor:
    """Replaces every form of one password in a text by ``***``.

    Two rules, applied in this order:

    1. the password in any encoding a server or library may echo it in (see
       ``_char_pattern``: percent-encoding with hex in any case, ``+`` for space,
       ``java.net.URLEncoder``'s choices, HTML and JSON escapes, quoted-printable
       with soft line breaks, mixed), so that ``password=p%40ss`` becomes
       ``password=***``; in UTF-16 read as UTF-8 or Latin-1 (see
       ``_utf16_forms``); as a hex dump of its bytes, raw or as a query carries
       them (see ``_hex_pattern``: a password of four bytes or more); and in base64
       (see ``_base64_pattern``: alone or inside a longer base64 text such as an
       echoed Basic ``Authorization`` header, either alphabet). Each of these also
       with invisible characters between any two characters (see ``_INVISIBLE``:
       the NULs of UTF-16, zero-width ones, a soft hyphen, as such or escaped): the
       text is searched once more without them, and what matches there is masked
       in the text with them, in linear time (no regex backtracks over them);
    2. the value of any ``<password_param>=`` (the name in any case or encoding,
       ``=`` as such or encoded) up to ``&``, whitespace, a quote or the end, so that
       a form hpgfast does not know (another client's password, a cut or garbled
       echo) does not show either.

    A very short password also masks its other occurrences: over-redaction is the
    safe side (but a one-byte password is not looked for in base64, where it would
    mask nearly every word). A masked echo that ran over several lines (quoted-printable soft line
    breaks, wrapped base64) leaves as many line ends as it held after its ``***``, so
    that a text read line by line keeps its line numbers and shows no piece of it.
    """

    __slots__ = ("_assignment", "_finders", "_seen_through", "_split")

    def __init__(self, password: str, *, password_param: str = "password") -> None:
        # The password as a reader sees it: the view a text is searched in once its
        # invisible characters are taken out holds none of them either; and a
        # server may have dropped them from its echo.
        visible = _INVISIBLE.sub("", password)
        self._seen_through = _finders(visible)
        self._finders = _finders(password) + (
            self._seen_through if visible != password else []
        )
        # The name in any case: a foreign echo may change it.
        self._assignment = (
            re.compile(
                f"({_text_pattern(password_param, any_case=True)}{_char_pattern('=')})"
                "[^&\\s\"']+"
            )
            if password_param
            else None
        )
        self._split = _split_pieces(password)

    def __call__(self, text: str) -> str:
        # Masking only takes invisible characters away: one scan says for all passes.
        invisible = _has_invisible(text)
        for find in self._finders:
            spans = find(text)
            if spans:
                text = _masked(text, spans)
        if invisible:
            # Then through invisible characters (see ``_INVISIBLE``): found in the
            # text without them, masked in the text with them. Only when the text
            # holds one: nearly none does.
            for find in self._seen_through:
                view, where = _without_invisible(text)
                spans = [where(start, end) for start, end in find(view)]
                if spans:
                    text = _masked(text, spans)
        if self._assignment is not None:
            text = self._assignment.sub(_mask_value, text)
        if self._split:
            text = _mask_split(self._split, text)
        return text

    def __repr__(self) -> str:
        return "<Redactor>"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a redactor cannot be pickled")


class Redactors:
    """Several ``Redactor`` applied in turn (the platform's password, the proxy's)."""

    __slots__ = ("_all",)

    def __init__(self, redactors: list[Redactor]) -> None:
        self._all = tuple(redactors)

    def __call__(self, text: str) -> str:
        for redactor in self._all:
            text = redactor(text)
        return text

    def __repr__(self) -> str:
        return "<Redactors>"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a redactor cannot be pickled")


#: The shortest piece of a password cut in two that is masked (when the other piece
#: follows it): shorter ones are common in any text.
_MIN_PIECE = 4

_Pieces = list[tuple[tuple[str, ...], tuple[str, ...]]]


def _piece_forms(piece: str) -> tuple[str, ...]:
    """A piece as itself, as a query carries it (upper and lower hex, ``+``) and as
    mojibake (see ``_char_pattern``)."""
    quoted = quote(piece, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)
    return tuple(
        dict.fromkeys((piece, quoted, lower, quote_plus(piece, safe=""), *_mojibake(piece)))
    )


def _split_pieces(password: str) -> _Pieces:
    """Each cut of the password into two pieces of at least ``_MIN_PIECE``
    characters, longest head first: the forms of the head and of the tail."""
    return [
        (_piece_forms(password[:k]), _piece_forms(password[k:]))
        for k in range(len(password) - _MIN_PIECE, _MIN_PIECE - 1, -1)
    ]


def _mask_split(pieces: _Pieces, text: str) -> str:
    """``text`` with a password cut in two masked: a head followed, anywhere later,
    by the rest (an echo wrapped over two reply lines, each quoted alone).

    Only both pieces together, in order, and each of at least ``_MIN_PIECE``
    characters: a piece alone is too weak a sign, and masking every short
    fragment would eat ordinary words. A text without the shortest head and the
    shortest tail (nearly every text) costs a few ``find`` calls.
    """
    # Every head starts with the shortest head, every tail ends with the shortest
    # tail (in each form, as each is encoded character by character).
    shortest_heads, shortest_tails = pieces[-1][0], pieces[0][1]
    for _ in range(16):  # each round masks one pair; a text holds few
        if not (any(form in text for form in shortest_heads)
                and any(form in text for form in shortest_tails)):
            return text
        pair = _find_pair(pieces, text)
        if pair is None:
            return text
        i, head_end, j, tail_end = pair
        text = text[:i] + MASK + text[head_end:j] + MASK + text[tail_end:]
    return text


def _find_pair(pieces: _Pieces, text: str) -> tuple[int, int, int, int] | None:
    """The spans of the first head (longest cut first) and a tail after it."""
    for heads, tails in pieces:
        for head in heads:
            # The first occurrence only: a tail after a later one is after it too.
            i = text.find(head)
            if i < 0:
                continue
            for tail in tails:
                j = text.find(tail, i + len(head))
                if j >= 0:
                    return i, i + len(head), j, j + len(tail)
    return None


def _mask_value(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def _base64_spans(pattern: re.Pattern[str], text: str) -> list[_Span]:
    """The spans of ``text``'s base64 runs that hold the password, whole.

    The whole run, not only the password's characters: the ones at its edges hold a
    few bits of it too, and an echoed ``login:password`` is better shown as ``***``
    than as the login's base64 and a stump. A run is extended here rather than in
    the pattern: a leading ``[A-Za-z0-9+/]*`` would make the regex retry a long run
    from each of its characters.
    """
    spans: list[list[int]] = []
    for match in pattern.finditer(text):
        start, end = match.span()
        while start > 0 and text[start - 1] in _B64_RUN:
            start -= 1
        while end < len(text) and text[end] in _B64_RUN:
            end += 1
        pad = 0
        while pad < 2 and text.startswith("=", end):
            end, pad = end + 1, pad + 1
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(start, end) for start, end in spans]


#: A scheme as RFC 3986 spells one, with its colon (``htps:`` too: any scheme).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
#: A query or fragment parameter's value: whatever follows ``name=`` up to the next
#: separator.
_QUERY_VALUE = re.compile(r"([?&;#][^=&;#?]*=)[^&;#]*")


def mask_url(text: str, redact: Callable[[str], str] | None = None) -> str:
    """``text``, a URL as given (maybe malformed), safe to show in an error or a log.

    For a URL that is refused, so cannot be trusted to have the shape a parser
    expects (``htps://u:p@h/``, ``http//u:p@h/``, ``u:p@h``): first ``redact`` (a
    client's ``Redactor``) masks the password itself, in every form, wherever it
    is; then everything between where user info may start (after the first ``//``,
    else after a scheme, else the start) and the last ``@`` becomes ``***`` (a
    password holding ``@``, ``/`` or ``:`` unencoded goes whole with it); every query
    or fragment parameter's value becomes ``***`` (a base URL has none of its own,
    and the caller may have put another password there under any name).

    The password first: a password holding a character these rules cut at (``=``,
    ``#``, ``?``, ``&``, ``/``, ``@``) would be cut by them, half masked, and the half
    left (``#Tr0ub4dor=***``) would no longer match the whole password.
    """
    if redact is not None:
        text = redact(text)
    at = text.rfind("@")
    if at >= 0:
        slashes = text.find("//", 0, at)
        if slashes >= 0:
            start = slashes + 2
        else:
            scheme = _SCHEME.match(text)
            start = scheme.end() if scheme is not None else 0
        text = text[:start] + MASK + text[at:]
    return _QUERY_VALUE.sub(_mask_value, text)


def scrub_exception(exc: BaseException, redact: Callable[[str], str]) -> None:
    """Redact, in place, every ``str`` in ``exc.args`` and among its attributes.

    For an error made by code that cannot know the password (the codec's
    ``ProtocolError`` quotes a piece of the reply, which a server may have filled
    with an echo). In place rather than a new exception: raising a copy inside the
    ``except`` would chain the original, password and all, as ``__context__``.
    """
    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    for name, value in list(vars(exc).items()):
        if isinstance(value, str):
            setattr(exc, name, redact(value))


#: The encodings a line's bytes are read in to find the password in them, besides
#: the reply's declared charset: UTF-8 (what ``_fields.read_text`` tries first and
#: falls back to), then the 8-bit ones a platform that declares none writes in:
#: Windows-1251 (the platform's home market), Windows-1252 and Latin-1.
BYTE_VIEWS = ("utf-8", "cp1251", "cp1252", "latin-1")


def redact_bytes(redact: Callable[[str], str], raw: bytes, charset: str | None = None) -> bytes:
    """``raw`` (a reply line's bytes, kept as ``.raw``) with the password masked in
    every encoding the text could have been read in: ``BYTE_VIEWS`` and
    ``charset``.

    Each view is the bytes read in that encoding (a byte it cannot read kept by
    ``surrogateescape``), masked by ``redact``, and written back in it, so the bytes
    the password was not in stay as they came. A view that cannot be written back
    as read (a multi-byte charset around a masked span) is written in UTF-8. ASCII
    bytes read the same in all: one view. For a rare line only (one read
    tolerantly, or on an error), never per ok line.
    """
    views = (BYTE_VIEWS[0],) if raw.isascii() else dict.fromkeys((*BYTE_VIEWS, charset or "utf-8"))
    for encoding in views:
        try:
            text = raw.decode(encoding, "surrogateescape")
        except (LookupError, UnicodeError):
            continue
        masked = redact(text)
        if masked != text:
            try:
                raw = masked.encode(encoding, "surrogateescape")
            except UnicodeError:
                raw = masked.encode("utf-8", "surrogateescape")
    return raw


# -- the registry of open clients' redactors -----------------------------------------

_lock = threading.Lock()


def _new_lock() -> None:
    # In a child after fork(): a parent thread may have held the lock at the fork.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock)

# Redactors of the open clients, by id(client), for texts written by code that holds
# no client (the command line's results file). A plain dict: clients unregister on
# close(), and a closed client's password can no longer travel anyway.
_active: dict[int, Callable[[str], str]] = {}


def register(key: int, redactor: Callable[[str], str]) -> None:
    """Make ``redact_all()`` mask this password until ``unregister(key)``."""
    with _lock:
        _active[key] = redactor


def unregister(key: int) -> None:
    """Stop redacting for a closed client."""
    with _lock:
        _active.pop(key, None)


def redact_all(text: str) -> str:
    """``text`` with the password of every open client masked."""
    for redactor in tuple(_active.values()):
        text = redactor(text)
    return text
