"""The input of ``hpgfast send`` without a journal: checked whole, then sent from the check's copy.

Strategy: every message of a file is checked before the first request (a bad line
90,000 sends nothing and is named), and a file may hold ten million messages, so the
check cannot keep them in memory; parsing the CSV or JSON Lines a second time to send
them was 60% of the command's CPU. So the check writes what it read, a chunk at a
time, to a temporary file, and the send pass reads that instead of the input:

- One record per chunk of ``chunk`` messages (the very chunks the send pass hands to
  the client): its length, then ``marshal.dumps((numbers, subject, fields))``,
  ``fields`` the five fields of each message one after the other (no record per
  message, which would cost an allocation the cyclic GC counts); read back as plain
  tuples, which ``Client.send`` takes as it takes ``Message``s. ``numbers`` is
  ``(first, count)`` for numbers without a gap (a CSV's), else their list;
  ``subject`` the chunk's one subject when every message has it (then each
  message's is ``None`` in ``fields``), else ``None``: a number and a string a
  message less to write and read back.
- Why marshal: a chunk is written and read back in C, with no Python code per
  message. Measured on the standard messages, per message: the send pass reads the
  copy back into the tuples it sends in 0.5 us, where parsing the CSV again cost
  1.2 us; writing a chunk costs 0.26 us (148 bytes). Each string is referenced once,
  by its chunk's list, so marshal keeps no table of them (a record per message
  would: version 2, which keeps none, was then faster, and is 25% slower here);
  pickle keeps a memo whatever it writes and reads 20% slower; a hand-made layout
  (lengths and one buffer, arrays) needs a Python step per field to make the
  strings the client takes. marshal's format belongs to the interpreter that wrote
  it, and the copy is read back by the same process, never kept.
- The file has no name (``tempfile.TemporaryFile`` removes it from the directory at
  once), so no run leaves it behind, not even a killed one; it takes about the
  input's size in ``TMPDIR``, as standard input's spooled copy does.
- No room for it (a full disk, a file-size limit): the check goes on to its end (a
  bad line is still named first), and then the command stops with nothing sent.
  Reading the input again instead would send what a second read finds: a pipe or
  standard input gives nothing (or another stream), a file changed since the check
  gives lines nobody checked.
"""

from __future__ import annotations

import logging
import marshal
import struct
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import IO, Any, Optional

from .._records import Message

__all__ = ["CheckedInput", "blocks"]

#: A chunk's length before it: 8 bytes, little-endian.
_LENGTH = struct.Struct("<Q")
log = logging.getLogger(__name__)

#: ``(lines, messages)``: ``Message``s, or plain tuples of their five fields (which
#: ``Client.send`` takes alike).
Block = tuple[list[int], list[Any]]


def blocks(rows: Iterable[tuple[int, Message]], size: int) -> Iterator[Block]:
    """``(lines, messages)`` of up to ``size`` numbered messages at a time."""
    it = iter(rows)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        lines, messages = zip(*block)
        yield list(lines), list(messages)


class CheckedInput:
    """Numbered messages checked whole into a temporary copy, then read back a chunk at a time.

    ``check(rows)`` reads every message (an ``InputError`` of the reader propagates at
    the first bad one) and keeps them; ``kept`` says whether the copy was made (else
    ``dropped`` says why, and nothing may be sent); ``blocks()`` yields them as ``blocks`` does
    for the input itself. A context manager: leaving it drops the copy.
    """

    def __init__(self, chunk: int, directory: Optional[str] = None) -> None:
        self.chunk = chunk
        #: Messages checked.
        self.count = 0
        self._directory = directory
        self._file: Optional[IO[bytes]] = None
        #: Why the copy could not be kept (``None`` while it is).
        self.dropped: Optional[OSError] = None

    @property
    def kept(self) -> bool:
        """Whether every message checked is in the copy."""
        return self._file is not None

    def check(self, chunks: Iterable[tuple[list[int], list[Any]]]) -> int:
        """Read every chunk of ``chunks`` (``read_chunks``'s), keeping a copy; returns
        how many messages they held."""
        self.close()
        self.count = 0
        self.dropped = None
        try:
            self._file = tempfile.TemporaryFile(prefix="hpgfast-checked-", dir=self._directory)
        except OSError as exc:
            self._drop(exc)
        for lines, fields in chunks:
            self.count += len(lines)
            if self._file is not None:
                self._keep(lines, fields)
        if self._file is not None:
            try:
                self._file.flush()
                self._file.seek(0)
            except OSError as exc:
                self._drop(exc)
        return self.count

    def _keep(self, lines: list[int], fields: list[Any]) -> None:
        assert self._file is not None
        n = len(lines)
        # The numbers only grow (``read_chunks``): a chunk without a gap (a CSV's, a
        # JSON Lines file without blank lines) is its first and its length.
        numbers: Any = (lines[0], n) if lines[-1] - lines[0] == n - 1 else lines
        # One subject for the whole chunk (a file's usual case) is kept once: the
        # copy then writes and reads back one string a message less.
        subjects = fields[2::5]
        subject = subjects[0]
        if subject is not None and subjects.count(subject) == n:
            fields[2::5] = [None] * n
        else:
            subject = None
        blob = marshal.dumps((numbers, subject, fields))
        try:
            self._file.write(_LENGTH.pack(len(blob)))
            self._file.write(blob)
        except OSError as exc:
            self._drop(exc)

    def _drop(self, exc: OSError) -> None:
        # No room (or no temporary directory): the check reads on, so that a bad line
        # is still named; the caller then refuses to send (``dropped``).
        log.debug("no copy of the checked input: %s", exc)
        self.dropped = exc
        self.close()

    def where(self) -> str:
        """The directory the copy is (or would have been) made in."""
        return self._directory or tempfile.gettempdir()

    def blocks(self) -> Iterator[Block]:
        """The messages checked, ``(lines, messages)`` a chunk at a time."""
        f = self._file
        if f is None:
            raise RuntimeError("no copy was kept: nothing may be sent")
        read = f.read
        size = _LENGTH.size
        while True:
            head = read(size)
            if not head:
                return
            numbers, subject, fields = marshal.loads(read(_LENGTH.unpack(head)[0]))
            if type(numbers) is tuple:
                first, n = numbers
                numbers = list(range(first, first + n))
            if subject is not None:
                fields[2::5] = [subject] * len(numbers)
            # Five fields at a time, as tuples, in C: what Client.send takes as it takes
            # Messages (making Message records of them would cost a third more).
            yield numbers, list(zip(*[iter(fields)] * 5))

    def close(self) -> None:
        """Drop the copy."""
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:  # the flush of a copy that had no room: dropped all the same
                pass

    def __enter__(self) -> CheckedInput:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
