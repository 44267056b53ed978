"""Reading files of messages for ``hpgfast send``: CSV with a header, or JSON Lines.

Strategy: a file of a million messages is read lazily, one record at a time, so
memory stays flat; each message comes out with its 1-based number in the file
(``line``: the record number after the header for CSV, the line number for JSON
Lines), which is the journal's key. Input faults raise ``InputError`` naming the
file and line, before anything is sent (the whole file is read into the journal,
or checked, before the first request).

CSV: a header row names the columns; fields are separated by commas, semicolons or
tabs, whichever splits the header into the required columns. ``address`` and ``text`` are required;
``subject`` and ``client_id`` (or ``clientId``) are optional; every other column is
an extra per-message parameter, sent as ``name[i]=value`` when its cell is not
empty. JSON Lines: one object per line with the same keys; extra parameters go in a
``params`` object or as further top-level keys; numbers are accepted for
``address`` and ``client_id``. Blank lines are skipped.

Files are UTF-8 (a byte-order mark is skipped) unless ``encoding`` names another
codec: spreadsheet programs in the platform's home market write cp1251. Addresses
are taken as written; ``normalize_addresses`` removes ``+``, spaces, ``-`` and
parentheses and nothing else: it never changes a digit (rewriting a leading 8 to 7
is one country's habit, and elsewhere would reach a stranger). A message without a
subject, when no default subject is given, is an input error like any other, found
while reading.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import os
from collections.abc import Iterator
from typing import IO, Any, Optional

from .._records import Message
from .._wire import ADDRESS, CLIENT_ID, SUBJECT, TEXT
from ..exceptions import HPGError

__all__ = [
    "ADDRESS_HELP",
    "FORMATS",
    "InputError",
    "check_encoding",
    "detect_format",
    "normalize_address",
    "read_chunks",
    "read_messages",
    "spool_stdin",
]

FORMATS = ("csv", "jsonl")
#: ``_message(Message, fields)``: a Message made in C (``Message.__new__`` is Python
#: code, a frame per message, for the same tuple).
_message = tuple.__new__
_CLIENT_ID_KEYS = ("client_id", CLIENT_ID)
_PARAMS = "params"
#: What an address looks like, for help texts and error messages.
ADDRESS_HELP = (
    "digits only, the country code first, no + or spaces (79031111111); "
    "--normalize-addresses removes +, spaces, - and ()"
)
#: The only characters --normalize-addresses removes: punctuation people type around
#: a number. Digits are never added, removed or changed.
_ADDRESS_PUNCTUATION = str.maketrans("", "", "+ -()")
NO_SUBJECT = (
    "no subject: add a 'subject' column (or key), or give a default with --subject "
    "or HPGFAST_SUBJECT"
)


def normalize_address(address: str) -> str:
    """``address`` without ``+``, spaces, ``-`` and parentheses; digits untouched."""
    return address.translate(_ADDRESS_PUNCTUATION)


def check_encoding(name: str) -> str:
    """The canonical name of the text encoding ``name``; ValueError if there is none."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (try utf-8 or cp1251)") from None


class InputError(HPGError, ValueError):
    """A file of messages that cannot be read: ``where`` is ``file:line``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def detect_format(path: str, given: Optional[str] = None) -> str:
    """The input format: ``given``, else from the file name (``.jsonl``/``.ndjson``/
    ``.json`` -> jsonl, anything else -> csv)."""
    if given:
        return given
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "csv"


class _Hashing(io.RawIOBase):
    """A binary file that hashes what is read through it (SHA-256 and size)."""

    def __init__(self, f: IO[bytes]) -> None:
        import hashlib

        self._f = f
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._f.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self.digest.update(memoryview(buffer)[:n])
            self.size += n
        return int(n or 0)

    def drain(self) -> None:
        while True:
            block = self._f.read(1 << 20)
            if not block:
                return
            self.digest.update(block)
            self.size += len(block)

    def close(self) -> None:
        self._f.close()
        super().close()


def _open(
    path: str, encoding: str, hashing: Optional[list[_Hashing]] = None,
    stream: Optional[IO[bytes]] = None,
) -> IO[str]:
    # utf-8-sig reads UTF-8 and skips a byte-order mark a spreadsheet may write.
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    if stream is not None:
        return io.TextIOWrapper(stream, encoding=encoding, newline="")
    if path == "-":
        import sys

        return io.TextIOWrapper(sys.stdin.buffer, encoding=encoding, newline="")
    if hashing is not None:
        raw = _Hashing(open(path, "rb"))
        hashing.append(raw)
        return io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def read_messages(
    path: str,
    fmt: str,
    *,
    encoding: str = "utf-8",
    normalize_addresses: bool = False,
    default_subject: Optional[str] = "",
    name: Optional[str] = None,
    fingerprint: Optional[dict[str, str]] = None,
    stream: Optional[IO[bytes]] = None,
) -> Iterator[tuple[int, Message]]:
    """Yield ``(line, Message)`` for every message of the file, lazily.

    Args:
        encoding: the file's text encoding (default UTF-8).
        normalize_addresses: remove ``+``, spaces, ``-`` and parentheses from
            addresses (see ``normalize_address``).
        default_subject: the subject messages without one will be sent with; None
            makes a message without a subject an input error. The default, ``""``,
            leaves subjects unchecked.
        name: the file's name in error messages (``<stdin>`` for a spooled copy).
        stream: read this open binary file (at its start; left open) instead of
            ``path``, which only names it (standard input's spooled copy, which has
            no name).
        fingerprint: a dict filled, once every message was read, with the file's
            ``input_size`` and ``input_sha256`` (as ``journal.file_fingerprint``),
            hashed while reading: the file is read once.

    Raises:
        InputError: a missing column, bad JSON, a wrong type, an empty address or
            text, no subject and no default, a file not in ``encoding``. Raised when
            that record is reached (a missing column: at the header).
        OSError: the file cannot be opened.
    """
    return _read(path, fmt, 0, encoding, normalize_addresses, default_subject, name, fingerprint,
                 stream)


def read_chunks(
    path: str,
    fmt: str,
    size: int,
    *,
    encoding: str = "utf-8",
    normalize_addresses: bool = False,
    default_subject: Optional[str] = "",
    name: Optional[str] = None,
    stream: Optional[IO[bytes]] = None,
) -> Iterator[tuple[list[int], list[Any]]]:
    """``read_messages``, ``size`` messages at a time: ``(lines, fields)`` each.

    ``fields`` holds the five fields of each message one after the other
    (``address, text, subject, client_id, params``: ``Message``'s order), no record
    per message: what ``hpgfast send`` checks whole before it sends anything and
    keeps (``hpgfast.cli._checked``). The same checks and errors as
    ``read_messages``; a bad message is found before its chunk is yielded.
    """
    return _read(path, fmt, size, encoding, normalize_addresses, default_subject, name, None,
                 stream)


def _read(
    path: str,
    fmt: str,
    size: int,
    encoding: str,
    normalize_addresses: bool,
    default_subject: Optional[str],
    name: Optional[str],
    fingerprint: Optional[dict[str, str]],
    stream: Optional[IO[bytes]] = None,
) -> Iterator[Any]:
    """``read_messages`` (``size`` 0) or ``read_chunks``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    shown = name or ("<stdin>" if path == "-" else os.fspath(path))
    if stream is None and path != "-" and os.path.isdir(path):
        raise InputError(shown, "is a directory, not a file of messages")
    hashing: Optional[list[_Hashing]] = [] if fingerprint is not None else None
    f = _open(path, encoding, hashing, stream)
    rules = _Rules(normalize_addresses, default_subject is None)
    try:
        if fmt == "csv":
            reader = _read_csv(f, shown, rules, size)
        elif size:
            reader = _chunks(_read_jsonl(f, shown, rules), size)
        else:
            reader = _read_jsonl(f, shown, rules)
        try:
            first = next(reader, None)
            if first is None:
                raise InputError(shown, _nothing(path, fmt, stream))
            yield first
            yield from reader
            if hashing and fingerprint is not None:
                raw = hashing[0]
                raw.drain()  # what the parser left unread (nothing, or blank lines)
                fingerprint["input_size"] = str(raw.size)
                fingerprint["input_sha256"] = raw.digest.hexdigest()
        except UnicodeDecodeError as exc:
            hint = (" (give its encoding with --encoding, for example --encoding cp1251)"
                    if encoding == "utf-8" else "")
            # The decoder's offset is within a buffer, not the file: find the line.
            where = shown if path == "-" and stream is None else _bad_line(
                path, encoding, shown, stream)
            raise InputError(where, f"not {encoding} text ({exc.reason}){hint}") from None
    finally:
        if stream is not None:
            if isinstance(f, io.TextIOWrapper):
                f.detach()  # the caller's file: left open
        elif path != "-":
            f.close()


def _nothing(path: str, fmt: str, stream: Optional[IO[bytes]] = None) -> str:
    """Why a file held no message, in the words its owner would check."""
    if stream is not None:
        empty = os.fstat(stream.fileno()).st_size == 0
    else:
        empty = path != "-" and os.path.getsize(path) == 0
    if empty:
        return "no messages to send: the file is empty"
    if fmt == "csv":
        return "no messages to send: the file has a header and no rows"
    return "no messages to send: the file has no message lines"


def _bad_line(
    path: str, encoding: str, shown: str, stream: Optional[IO[bytes]] = None
) -> str:
    """``file:line`` of the first line of ``path`` (or of ``stream``, read again from
    its start) that is not ``encoding`` text."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)()
    with contextlib.nullcontext(stream) if stream is not None else open(path, "rb") as f:
        f.seek(0)
        for number, raw in enumerate(f, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return f"{shown}:{number}"
    return shown


def spool_stdin(directory: Optional[str] = None) -> IO[bytes]:
    """Copy standard input to a temporary file and return it, open at its start (the
    caller closes it).

    So that the whole input can be checked before the first message is sent. The
    file has no name (``tempfile.TemporaryFile``: made unnamed, or removed from its
    directory at once), so no run leaves it behind, not even one killed by SIGKILL.
    """
    import shutil
    import sys
    import tempfile

    out = tempfile.TemporaryFile(prefix="hpgfast-stdin-", dir=directory)
    try:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


class _Rules:
    """What the command line asks of every message beyond its shape."""

    __slots__ = ("need_subject", "normalize")

    def __init__(self, normalize: bool, need_subject: bool) -> None:
        self.normalize = normalize
        self.need_subject = need_subject

    def address(self, address: str, where: str) -> str:
        if not self.normalize:
            return address
        normal = normalize_address(address)
        if not normal:
            raise InputError(where, f"the address {address!r} holds no digits")
        return normal

    def subject(self, subject: Optional[str], where: str) -> Optional[str]:
        if self.need_subject and not subject:
            raise InputError(where, NO_SUBJECT)
        return subject


#: Field separators a CSV may use, in the order tried: spreadsheets write ';' where
#: the comma is the decimal mark (Russian and most European locales), and tabs.
CSV_DELIMITERS = (",", ";", "\t")


def _delimiter(first: str) -> str:
    """The separator of the header line ``first``: the first of ``CSV_DELIMITERS``
    that splits it into fields holding both ``address`` and ``text``; else ','
    (whose error then shows the header as read)."""
    if first.count('"') % 2:
        return ","  # a header field runs on past this line: not a header to guess from
    for sep in CSV_DELIMITERS:
        try:
            fields = next(csv.reader([first], delimiter=sep, strict=True), [])
        except csv.Error:
            continue
        names = {name.strip().lower() for name in fields}
        if ADDRESS in names and TEXT in names:
            return sep
    return ","


def _chunks(
    rows: Iterator[tuple[int, Message]], size: int
) -> Iterator[tuple[list[int], list[Any]]]:
    """``(line, Message)`` rows as ``read_chunks`` gives them."""
    lines: list[int] = []
    fields: list[Any] = []
    for line, message in rows:
        lines.append(line)
        fields.extend(message)
        if len(lines) == size:
            yield lines, fields
            lines, fields = [], []
    if lines:
        yield lines, fields


def _read_csv(f: IO[str], shown: str, rules: _Rules, size: int = 0) -> Iterator[Any]:
    """``(number, Message)`` for each message; with ``size``, ``read_chunks``'s chunks."""
    first = f.readline()
    if not first:
        return  # an empty file: the caller says so
    # The header line goes back in front: the reader counts the file's lines itself.
    reader = csv.reader(itertools.chain([first], f), delimiter=_delimiter(first), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"{shown}:1", f"bad CSV: {exc}") from None
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    for required in (ADDRESS, TEXT):
        if required not in lowered:
            raise InputError(
                f"{shown}:1", f"the header has no {required!r} column (it has {names!r})"
            )
    if rules.need_subject and SUBJECT not in lowered:
        raise InputError(f"{shown}:1", NO_SUBJECT)
    i_address = lowered.index(ADDRESS)
    i_text = lowered.index(TEXT)
    i_subject = lowered.index(SUBJECT) if SUBJECT in lowered else None
    i_client = next(
        (lowered.index(k.lower()) for k in _CLIENT_ID_KEYS if k.lower() in lowered), None
    )
    known = {i_address, i_text, i_subject, i_client}
    extras = [(i, names[i]) for i in range(len(names)) if i not in known and names[i]]
    width = len(names)
    need_subject = rules.need_subject
    normalize = rules.normalize
    number = 0
    cut = size  # the number of the last message of the chunk being read
    fields: list[Any] = []
    # The loop runs once per message of files of millions: ``file:line`` is made only
    # for an error, the rules' checks are inline, a Message is made in C, and the
    # chunks hold no record per message (whose allocations set off the cyclic GC);
    # a chunk's numbers run on without a gap, so they are made once it is full.
    try:
        for row in reader:
            if len(row) != width:
                if not row:
                    continue  # a blank line
                raise InputError(
                    f"{shown}:{reader.line_num}",
                    f"{len(row)} fields, but the header has {width}",
                )
            number += 1
            address = row[i_address].strip()
            text = row[i_text]
            if not address or not text:
                raise InputError(f"{shown}:{reader.line_num}",
                                 "address and text must not be empty")
            if normalize:
                address = rules.address(address, f"{shown}:{reader.line_num}")
            subject = row[i_subject] or None if i_subject is not None else None
            if need_subject and not subject:
                raise InputError(f"{shown}:{reader.line_num}", NO_SUBJECT)
            client_id = row[i_client] or None if i_client is not None else None
            params = {name: row[i] for i, name in extras if row[i]} or None if extras else None
            if not size:
                yield number, _message(Message, (address, text, subject, client_id, params))
                continue
            fields += (address, text, subject, client_id, params)
            if number == cut:
                yield list(range(cut - size + 1, cut + 1)), fields
                fields = []
                cut += size
    except csv.Error as exc:
        raise InputError(f"{shown}:{reader.line_num}", f"bad CSV: {exc}") from None
    if fields:
        yield list(range(cut - size + 1, number + 1)), fields


def _str(value: Any, where: str, key: str, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(where, f"{key!r} must be a string, got {type(value).__name__}")


def _read_jsonl(f: IO[str], shown: str, rules: _Rules) -> Iterator[tuple[int, Message]]:
    for number, raw in enumerate(f, 1):
        if not raw.strip():
            continue
        where = f"{shown}:{number}"
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise InputError(where, f"bad JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InputError(where, f"expected a JSON object, got {type(obj).__name__}")
        if ADDRESS not in obj or TEXT not in obj:
            raise InputError(where, "an object needs 'address' and 'text'")
        address = _str(obj.pop(ADDRESS), where, ADDRESS, numbers=True).strip()
        text = _str(obj.pop(TEXT), where, TEXT)
        if not address or not text:
            raise InputError(where, "address and text must not be empty")
        address = rules.address(address, where)
        subject = obj.pop(SUBJECT, None)
        if subject is not None:
            subject = _str(subject, where, SUBJECT) or None
        subject = rules.subject(subject, where)
        client_id = None
        for key in _CLIENT_ID_KEYS:
            if key in obj:
                value = obj.pop(key)
                if value is not None:
                    client_id = _str(value, where, key, numbers=True) or None
        params: dict[str, str] = {}
        nested = obj.pop(_PARAMS, None)
        if nested is not None:
            if not isinstance(nested, dict):
                raise InputError(where, "'params' must be an object of strings")
            obj = {**nested, **obj}
        for key, value in obj.items():
            if value is None:
                continue
            params[key] = _str(value, where, key, numbers=True)
        yield number, _message(Message, (address, text, subject, client_id, params or None))
