"""Reading files of messages for ``hpgfast send``: CSV with a header, or JSON Lines.

Strategy: a file of a million messages is read lazily, one record at a time, so
memory stays flat; each message comes out with its 1-based number in the file
(``line``: the record number after the header for CSV, the line number for JSON
Lines), which is the journal's key. Input faults raise ``InputError`` naming the
file and line, before anything is sent (the whole file is read into the journal,
or checked, before the first request).

CSV: a header row names the columns. ``address`` and ``text`` are required;
``subject`` and ``client_id`` (or ``clientId``) are optional; every other column is
an extra per-message parameter, sent as ``name[i]=value`` when its cell is not
empty. JSON Lines: one object per line with the same keys; extra parameters go in a
``params`` object or as further top-level keys; numbers are accepted for
``address`` and ``client_id``. Blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from typing import IO, Any, Optional

from .._records import Message
from .._wire import ADDRESS, CLIENT_ID, SUBJECT, TEXT
from ..exceptions import HPGError

__all__ = ["FORMATS", "InputError", "detect_format", "read_messages"]

FORMATS = ("csv", "jsonl")
_CLIENT_ID_KEYS = ("client_id", CLIENT_ID)
_PARAMS = "params"


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


def _open(path: str) -> IO[str]:
    if path == "-":
        import sys

        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_messages(path: str, fmt: str) -> Iterator[tuple[int, Message]]:
    """Yield ``(line, Message)`` for every message of the file, lazily.

    Raises:
        InputError: a missing column, bad JSON, a wrong type, an empty address or
            text, a file that is not UTF-8. Raised when that record is reached.
        OSError: the file cannot be opened.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    shown = "<stdin>" if path == "-" else os.fspath(path)
    f = _open(path)
    try:
        reader = _read_csv(f, shown) if fmt == "csv" else _read_jsonl(f, shown)
        try:
            yield from reader
        except UnicodeDecodeError as exc:
            raise InputError(shown, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        if path != "-":
            f.close()


def _read_csv(f: IO[str], shown: str) -> Iterator[tuple[int, Message]]:
    reader = csv.reader(f, strict=True)
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
    i_address = lowered.index(ADDRESS)
    i_text = lowered.index(TEXT)
    i_subject = lowered.index(SUBJECT) if SUBJECT in lowered else None
    i_client = next(
        (lowered.index(k.lower()) for k in _CLIENT_ID_KEYS if k.lower() in lowered), None
    )
    known = {i_address, i_text, i_subject, i_client}
    extras = [(i, names[i]) for i in range(len(names)) if i not in known and names[i]]
    width = len(names)
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{shown}:{reader.line_num}", f"bad CSV: {exc}") from None
        if not row:
            continue  # a blank line
        number += 1
        if len(row) != width:
            raise InputError(
                f"{shown}:{reader.line_num}",
                f"{len(row)} fields, but the header has {width}",
            )
        address = row[i_address].strip()
        text = row[i_text]
        if not address or not text:
            raise InputError(f"{shown}:{reader.line_num}", "address and text must not be empty")
        subject = row[i_subject] or None if i_subject is not None else None
        client_id = row[i_client] or None if i_client is not None else None
        params = {name: row[i] for i, name in extras if row[i]} or None
        yield number, Message(address, text, subject, client_id, params)


def _str(value: Any, where: str, key: str, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(where, f"{key!r} must be a string, got {type(value).__name__}")


def _read_jsonl(f: IO[str], shown: str) -> Iterator[tuple[int, Message]]:
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
        subject = obj.pop(SUBJECT, None)
        if subject is not None:
            subject = _str(subject, where, SUBJECT) or None
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
        yield number, Message(address, text, subject, client_id, params or None)
