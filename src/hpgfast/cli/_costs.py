"""``hpgfast send --dry-run``: what a file of messages would cost, without sending it.

Strategy: the input is read and checked exactly as a send reads it, in chunks of
``--chunk`` messages (a send hands the client one chunk at a time, so requests never
span chunks); each chunk is counted with ``hpgfast.sms.total_segments`` (and, with
``--transliterate``, counted again after ``transliterate_messages``, the client's own
step), and cut into requests by the client's own planner, ``core.plan`` (the cut
``core.Exchange.batch`` makes: ``max_request_bytes`` less ``GET ``, `` HTTP/1.1``
and the target's head, the URL path, ``send?`` and the credentials). No connection
settings are needed: without ``--url`` the head is taken to be
``PLACEHOLDER_HEAD_BYTES`` long; with it, the head is the client's own
(``core.target_head``) from the URL's path, the login (``--login``, else
``PLACEHOLDER_LOGIN_BYTES``) and a password of ``PLACEHOLDER_PASSWORD_BYTES`` (the
password itself is never read): exact for a password of that length, high for a
shorter one, low for a longer one. Memory stays flat: one chunk at a time.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from typing import Any, Optional
from urllib.parse import urlsplit

from .._records import Message
from .._term import escape
from .._wire import LOGIN, PASSWORD
from ..codec import encode_params
from ..core import MAX_REQUEST_BYTES, SEND, plan, room, target_head
from ..exceptions import MessageError
from ..sms import total_segments, transliterate_messages
from ._common import (
    pairs,
    setting,
)
from ._exit import EXIT_OK
from ._input import InputError
from ._output import dump_json, table

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "PLACEHOLDER_HEAD_BYTES",
    "PLACEHOLDER_LOGIN_BYTES",
    "PLACEHOLDER_PASSWORD_BYTES",
    "dry_run",
]

#: ``Client``'s default ``max_request_bytes``.
DEFAULT_MAX_REQUEST_BYTES = MAX_REQUEST_BYTES
#: The target's head (path, ``send?``, credentials, ``&``) assumed without ``--url``:
#: room for a long connector path and long credentials, so the count errs high.
PLACEHOLDER_HEAD_BYTES = 256
#: The login assumed with ``--url`` but no ``--login``.
PLACEHOLDER_LOGIN_BYTES = 32
#: The password assumed (its length is never read from the real one).
PLACEHOLDER_PASSWORD_BYTES = 64


def head_bytes(args: argparse.Namespace) -> int:
    """The length of the SEND target before the messages, as ``Exchange`` builds it."""
    url = setting(args.url, "HPGFAST_URL")
    extra = pairs(args.param, "--param")
    if not url:
        # The parameters' own length, and the "&" before them.
        return PLACEHOLDER_HEAD_BYTES + (len(encode_params(extra)) + 1 if extra else 0)
    login = setting(args.login, "HPGFAST_LOGIN") or "x" * PLACEHOLDER_LOGIN_BYTES
    login_param = setting(args.login_param, "HPGFAST_LOGIN_PARAM") or LOGIN
    password_param = setting(args.password_param, "HPGFAST_PASSWORD_PARAM") or PASSWORD
    path = urlsplit(url).path or "/"
    if not path.endswith("/"):
        path += "/"
    credentials = [(login_param, login), (password_param, "x" * PLACEHOLDER_PASSWORD_BYTES)]
    return len(target_head(SEND, path, credentials, extra))


class _Tally:
    """The dry run's figures, added up chunk by chunk."""

    def __init__(self) -> None:
        self.messages = 0
        self.segments = 0
        self.gsm7 = [0, 0]  # messages, segments
        self.ucs2 = [0, 0]
        self.largest = 0
        self.largest_line: Optional[int] = None
        self.before = 0  # segments without transliteration
        self.transliterated = 0
        self.requests = 0

    def add(self, lines: Sequence[int], totals: Any) -> None:
        self.messages += totals.messages
        self.segments += totals.segments
        self.gsm7[0] += totals.gsm7_messages
        self.gsm7[1] += totals.gsm7_segments
        self.ucs2[0] += totals.ucs2_messages
        self.ucs2[1] += totals.ucs2_segments
        if totals.largest_index is not None and totals.largest > self.largest:
            self.largest = totals.largest
            self.largest_line = lines[totals.largest_index]


def _requests(
    messages: Sequence[Any], lines: Sequence[int], shown: str, head: int,
    max_request_bytes: int, max_batch: Optional[int], default_subject: Optional[str],
) -> int:
    """How many requests the client cuts ``messages`` into (``core.plan``)."""
    try:
        return len(plan(
            SEND, messages, head_bytes=head, max_request_bytes=max_request_bytes,
            max_batch=max_batch, default_subject=default_subject,
        ))
    except MessageError as exc:
        raise _input_error(exc, lines, shown) from None


def _input_error(exc: MessageError, lines: Sequence[int], shown: str) -> InputError:
    """A codec's complaint about a message as an input error naming it.

    The message is named by its number in the input, the journal's ``line`` (for
    JSON Lines its line in the file; for CSV its record after the header).
    """
    where = shown if exc.index is None else f"{shown}: message {lines[exc.index]}"
    return InputError(where, f"field {exc.field!r}: {exc.reason}")


def dry_run(
    args: argparse.Namespace, rows: Iterable[tuple[int, Message]], shown: str
) -> int:
    """Read and check every message, send nothing, print what sending would cost."""
    max_request_bytes = setting(
        args.max_request_bytes, "HPGFAST_MAX_REQUEST_BYTES", int
    ) or DEFAULT_MAX_REQUEST_BYTES
    head = head_bytes(args)
    if room(max_request_bytes, head) < 1:
        from ._common import UsageError

        raise UsageError(
            f"--max-request-bytes {max_request_bytes} leaves no room for messages after "
            f"the URL and credentials ({head} bytes assumed)"
        )
    default_subject = setting(args.subject, "HPGFAST_SUBJECT") or None
    tally = _Tally()
    lines: list[int] = []
    chunk: list[Message] = []

    def count() -> None:
        try:
            before = total_segments(chunk)
            messages: Sequence[Any] = chunk
            if args.transliterate:
                messages, changed = transliterate_messages(chunk)
                tally.transliterated += len(changed)
                after = total_segments(messages) if changed else before
            else:
                after = before
        except MessageError as exc:
            raise _input_error(exc, lines, shown) from None
        tally.before += before.segments
        tally.add(lines, after)
        tally.requests += _requests(
            messages, lines, shown, head, max_request_bytes, args.max_batch, default_subject
        )
        lines.clear()
        chunk.clear()

    for line, message in rows:
        lines.append(line)
        chunk.append(message)
        if len(chunk) >= args.chunk:
            count()
    if chunk:
        count()
    figures: dict[str, Any] = {
        "dry_run": True,
        "messages": tally.messages,
        "segments": tally.segments,
        "by_encoding": {
            "gsm7": {"messages": tally.gsm7[0], "segments": tally.gsm7[1]},
            "ucs2": {"messages": tally.ucs2[0], "segments": tally.ucs2[1]},
        },
        "largest": {"line": tally.largest_line, "segments": tally.largest},
        "requests": tally.requests,
        "max_request_bytes": max_request_bytes,
        "head_bytes": head,
        "transliterate": bool(args.transliterate),
    }
    if args.transliterate:
        figures["transliterated"] = tally.transliterated
        figures["segments_without_transliteration"] = tally.before
        figures["segments_saved"] = tally.before - tally.segments
    if args.json:
        dump_json(figures)
    else:
        _print(figures, shown)
    return EXIT_OK


def _messages(n: int) -> str:
    return f"in {n:,} message" + ("" if n == 1 else "s")


def _print(figures: dict[str, Any], shown: str) -> None:
    enc = figures["by_encoding"]
    largest = figures["largest"]
    rows: list[tuple[Any, ...]] = [
        ("messages", figures["messages"], ""),
        ("segments", figures["segments"], ""),
        ("  GSM 7-bit", enc["gsm7"]["segments"], _messages(enc["gsm7"]["messages"])),
        ("  UCS-2", enc["ucs2"]["segments"], _messages(enc["ucs2"]["messages"])),
        ("largest message", largest["segments"],
         "" if largest["line"] is None else f"segments: message {largest['line']}"),
        ("requests", figures["requests"],
         f"at max_request_bytes {figures['max_request_bytes']:,}"),
    ]
    if figures["transliterate"]:
        rows.append(("transliterated", figures["transliterated"],
                     "message" if figures["transliterated"] == 1 else "messages"))
        rows.append(("segments saved", figures["segments_saved"],
                     f"of {figures['segments_without_transliteration']:,}"))
    print(f"dry run of {escape(shown)}: nothing sent")
    print()
    print(table(rows))


def shown_path(path: Optional[str]) -> str:
    """The input's name as messages show it."""
    if path is None:
        return "--to/--text"
    return "<stdin>" if path == "-" else os.fspath(path)
