"""Text from outside shown safely on a terminal.

Strategy: a push, a platform's reply, a CSV cell can carry terminal control
sequences (``\\x1b[2J`` clears the screen, OSC sequences retitle the window or forge
hyperlinks) and Unicode that reorders or breaks what a reader sees (bidi overrides,
line and paragraph separators). Human output shows every such character escaped,
as Python writes it in a literal (``\\x1b``, ``\\u202e``); everything else, Cyrillic
and emoji included, is shown as it is. Machine output (JSON, CSV) is never escaped:
it is exact, and its reader is a program; JSON stays exact on a terminal too, its
escapes being part of JSON (``json_safe``), while CSV written to a terminal
(``hpgfast report --csv -``) has its cells escaped, since CSV has no escapes of its own.
"""

from __future__ import annotations

import logging
import re
from typing import Optional

__all__ = ["EscapingFormatter", "counted", "escape", "json_safe"]

#: C0 controls (tab and newline too: they break a table's line), DEL, C1 controls,
#: the Arabic letter mark, LRM/RLM, the line and paragraph separators, the bidi
#: embeddings and overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def counted(n: int, word: str, plural: Optional[str] = None) -> str:
    """``n`` and ``word`` for a summary: "1 message", "2,000 messages", "0 messages"."""
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def escape(text: str) -> str:
    """``text`` with terminal control characters and bidi/line-separator marks escaped."""
    if _UNSAFE.search(text) is None:  # the common case: no new string
        return text
    return _UNSAFE.sub(_escaped, text)


#: What JSON text may hold raw (``ensure_ascii=False``) that a terminal acts on: C0
#: and DEL never appear raw (json escapes C0; DEL is escaped here), C1 and the bidi
#: and separator marks do.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps``) with those characters as ``\\uXXXX`` escapes.

    The same JSON value, character for character, once parsed: these characters
    can only occur inside JSON strings, where any character may be so escaped.
    """
    if _UNSAFE_IN_JSON.search(text) is None:
        return text
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class EscapingFormatter(logging.Formatter):
    """A log formatter for a terminal: each line of a record escaped (``escape``)."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(escape(line) for line in super().format(record).split("\n"))
