"""``CompactResults``: the results of a large send, at a few bytes per message.

Strategy: a list of ``SendResult`` costs about 200 bytes per message above the
messages: the record (a 3-tuple), the provider id's ``str`` and the clientId's
``str``. Yet the results of one send repeat nearly everything but two numbers: the
code, the error behind a made-up result and the *form* of both ids are shared by
thousands of messages, and a provider id is usually a decimal number (the
emulator's are; the specification says only "String"). So each message keeps:

- 4 bytes: the index of its *shape* in a small table: its record's class, code and
  error, the form of its provider id and the form of its clientId;
- 8 bytes: its provider id as an unsigned integer, when the id is ASCII digits (at
  most 38 of them): the number of digits is in the shape, so the exact text, leading
  zeros too, comes back. An id past 64 bits (the platform's are 20 digits past
  2**63) keeps its high bits in 8 more bytes, in an array of its request's, made
  when the request holds a first such id;
- nothing for its clientId when that is the id hpgfast made (its request's prefix
  and its index in the request, both kept once per request) or the index the
  platform answers without one; otherwise a reference to the ``str`` (the one the
  message carried, when it is that one: the message and its result share it).

A field the platform adds to a line (``ok;cid;pid;2``: a part count, the record's
``extra``) is part of the shape too: such a field takes a handful of values in a
send, so its text is kept once per value, in the shape (up to ``_MAX_SHAPES``
shapes in all; past them, a record of an ``extra`` not seen yet is kept whole).
What does not fit (a provider id of other characters, or longer; a record with a
``raw``, whose bytes are the whole line and so the message's own; a class of its
own) is kept as it came, per message. The
records are made on access; each equals, and is of the class of, the record a list
would have held (a ``SendFailure`` with the very same ``error``).

A request's results are packed as it settles, from the transport's thread or
task: the usual request (one class, code and error; the clientIds hpgfast made;
provider ids of digits; one ``extra`` or a few, or none) in a few C-level passes
over its records (``_put_alike``), any other record by record.

Read-only: what it holds is set up once; the core fills its arrays and tables as
requests settle, then seals them (``_seal``, when the send finishes; the
constructor's at once): the per-message arrays become read-only ``memoryview``s of
themselves, the tables tuples or ``MappingProxyType``s, so that even their private
names refuse an item assignment. Not a request's array of high bits, kept as it is
(a ``memoryview`` of each would cost about 200 bytes a request), nor
``object.__setattr__``, which can replace any member, as it can any Python
object's; nothing of hpgfast's does either.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter, itemgetter
from operator import index as _index
from types import MappingProxyType
from typing import Any, Optional, Union, overload

from .._records import SendResult
from .._wire import ID_ALPHABET, ID_MAX_COUNT
from ._results import SendFailure

__all__ = ["CompactResults"]

#: The longest provider id kept as a number: any 38 digits fit in 128 bits, the low
#: 64 in ``_pids``, the high ones in the request's array of ``_highs``.
_MAX_DIGITS = 38
#: The longest provider id whose number always fits in ``_pids`` alone.
_NARROW_DIGITS = 19
_LOW = (1 << 64) - 1
_low = _LOW.__and__  # n & _LOW, as a C-level function of n
_high = (64).__rrshift__  # n >> 64

# The forms of a provider id (a number of digits, when above 0) and of a clientId.
_PID_NONE = -1
_PID_TEXT = -2  # kept as it came, in ``_texts``
_CID_NONE = 0
_CID_MADE = 1  # the request's prefix and the index in it, in 3 base-62 digits
_CID_INDEX = 2  # the index in the request, in decimal
_CID_KEPT = 3  # in ``_kept``, the request's list

#: The shape of a record kept whole (in ``_whole``): shape 0.
_WHOLE = (None, None, None, 0, 0, None)
#: The most shapes kept: a new ``extra`` past them keeps its record whole. Shapes
#: without an ``extra`` are a few dozen at most (classes, codes, errors, id forms);
#: with one, a few per distinct value: a part count's handful, a rejection's few
#: descriptions. A text of each message's own would make one per message.
_MAX_SHAPES = 1024
#: The most distinct ``extra`` values in a request packed in C-level passes.
_ALIKE_EXTRAS = 16

_A = ID_ALPHABET
_code, _cid, _pid, _extra = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
_error = attrgetter("error")
_NONE = type(None)


def _made(prefix: str, j: int) -> str:
    # ``prefix + _wire.base62(j, ID_SUFFIX_LENGTH)``, without its loop.
    return prefix + _A[j // 3844] + _A[j // 62 % 62] + _A[j % 62]


#: The suffixes of the first made clientIds of a request, made once (about 200 KB):
#: a request's whole list of made ids is then one C-level ``map``.
_SUFFIX_CACHE = 4096
_suffix_cache: Optional[list[str]] = None


def _all_made(cids: list[Any], prefix: str, j: int) -> bool:
    """Whether ``cids`` are the ids hpgfast made for the request's messages ``j``
    on: each ``_made(prefix, j + k)``. In C-level passes: every id ``str`` of the
    made length, and their concatenation that of the made ones (which the one
    length makes an item-by-item equality)."""
    if set(map(type, cids)) != {str} or set(map(len, cids)) != {len(prefix) + 3}:
        return False
    return "".join(cids) == prefix + prefix.join(_suffixes(j, j + len(cids)))


def _suffixes(start: int, end: int) -> list[str]:
    global _suffix_cache
    if end > _SUFFIX_CACHE:
        return [_made("", j) for j in range(start, end)]
    cache = _suffix_cache
    if cache is None:
        # Two threads may both make it: the same list either way.
        cache = _suffix_cache = [_made("", j) for j in range(_SUFFIX_CACHE)]
    return cache[start:end]


_set = object.__setattr__


def _filled(results: CompactResults) -> bool:
    """Whether ``results`` was set up already (its ``_len`` set, last)."""
    try:
        results._len  # noqa: B018
    except AttributeError:
        return False
    return True


class CompactResults(Sequence[SendResult]):
    """The results of a ``send(..., compact=True)``: a read-only sequence of
    ``SendResult``, one per message in order, at about 14 bytes per message (a
    part count the platform adds to each line too).

    It reads as the list ``send()`` returns by default: ``len``, indexing (negative
    too; a slice gives a ``list``), iteration, ``in``, ``index``, ``count``, and it
    compares equal to a list of the same results. Each record is made when it is
    read, equal to (and of the class of) the one the list would hold: a
    ``SendFailure`` keeps its ``error``; a provider id is the text the platform
    sent, byte for byte; ``extra`` and ``raw`` are the list's. ``CompactResults(results)``
    packs any iterable of ``SendResult``.

    Read-only through its API: it has no method that changes it, and refuses
    setting or deleting an attribute and a second ``__init__``. (Code that reaches
    for its private members through ``object.__setattr__`` can still change it, as
    it can any Python object.)
    """

    __slots__ = (
        "__weakref__",
        "_highs",
        "_index",
        "_kept",
        "_kinds",
        "_len",
        "_numbers",
        "_pids",
        "_prefixes",
        "_shapes",
        "_starts",
        "_texts",
        "_whole",
    )
    _len: int
    # Each table below is a dict (a list, an array) while the send fills it, then
    # sealed: a MappingProxyType (a tuple, a read-only memoryview); hence Any.
    _kinds: Any  # per message: its shape's number (array "I")
    _pids: Any  # per message: its provider id's number, its low 64 bits (array "Q")
    _kept: Any  # per request: its clientIds kept, a list
    _highs: Any  # per request: the high 64 bits of its provider ids, an array "Q"
    _texts: Any
    _whole: Any
    _shapes: Any
    _index: Any
    _numbers: Iterator[int]
    _starts: Any  # per request: its first message's index (array "q")
    _prefixes: tuple[Optional[str], ...]

    def __init__(self, results: Iterable[SendResult] = ()) -> None:
        if _filled(self):
            raise TypeError("CompactResults is read-only: it cannot be filled again")
        records = results if isinstance(results, (list, tuple)) else list(results)
        self._setup(len(records), [0], [None])
        self._put(0, records)
        self._seal()

    # Read-only, as a tuple is: what it holds is set once, by ``_setup``; only the
    # core's ``_put`` fills the arrays and tables made there, as requests settle.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"CompactResults is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CompactResults is read-only: cannot delete {name!r}")

    @classmethod
    def _spans(
        cls, total: int, starts: Sequence[int], prefixes: Sequence[Optional[str]]
    ) -> CompactResults:
        """An empty store for ``total`` results of requests starting at ``starts``
        (in order), whose made clientIds have ``prefixes`` (None: none made)."""
        self = cls.__new__(cls)
        self._setup(total, starts or [0], prefixes or [None])
        return self

    def _setup(self, total: int, starts: Sequence[int], prefixes: Sequence[Optional[str]]) -> None:
        if _filled(self):
            raise TypeError("CompactResults is read-only: it cannot be filled again")
        # Zeroed: shape 0 (kept whole) until a result is put there.
        _set(self, "_kinds", array("I", bytes(4 * total)))
        _set(self, "_pids", array("Q", bytes(8 * total)))
        # A transport's threads settle their requests at once, each its own span,
        # without a lock (the core takes none): every write below is one atomic
        # operation of a list, dict or array, on the request's own items or keys.
        # The clientIds kept, per request (by its index in ``_starts``): a list
        # made when the request keeps a first one.
        _set(self, "_kept", {})
        # The high 64 bits of the provider ids past 64 bits, per request (as
        # ``_kept``): an array of the request's length, made at its first such id.
        _set(self, "_highs", {})
        _set(self, "_texts", {})
        _set(self, "_whole", {})
        _set(self, "_shapes", {0: _WHOLE})
        _set(self, "_index", {})
        _set(self, "_numbers", itertools.count(1))  # next() is atomic
        _set(self, "_starts", array("q", starts))
        _set(self, "_prefixes", tuple(prefixes))
        _set(self, "_len", total)  # last: ``_filled`` from here on

    def _seal(self) -> None:
        """Every request put: its tables become read-only forms of themselves (no
        copy of the per-message arrays), and ``_put`` refuses from now on."""
        if type(self._kinds) is memoryview:
            return
        shapes = self._shapes
        _set(self, "_shapes", tuple(map(shapes.get, range(max(shapes) + 1))))
        _set(self, "_index", MappingProxyType({}))  # only ``_put`` needed it
        _set(self, "_texts", MappingProxyType(self._texts))
        _set(self, "_whole", MappingProxyType(self._whole))
        kept = {span: tuple(cids) for span, cids in self._kept.items()}
        _set(self, "_kept", MappingProxyType(kept))
        # A request's array of high bits stays as it is: a memoryview of each would
        # cost some 4 bytes a message more with 20-digit ids.
        _set(self, "_highs", MappingProxyType(self._highs))
        _set(self, "_starts", memoryview(self._starts).toreadonly())
        _set(self, "_pids", memoryview(self._pids).toreadonly())
        _set(self, "_kinds", memoryview(self._kinds).toreadonly())  # last: sealed

    def _end(self, span: int) -> int:
        starts = self._starts
        return starts[span + 1] if span + 1 < len(starts) else self._len

    def _shape(self, key: tuple[Any, ...], shape: tuple[Any, ...]) -> int:
        """The number of ``shape`` (``key`` names it), made if it is new; 0 (keep
        the record whole) for a new one of an ``extra`` past ``_MAX_SHAPES``. Two
        threads making the same one at once: the first number stored wins (the
        other stays unused)."""
        if shape[5] is not None and len(self._shapes) >= _MAX_SHAPES:
            return 0
        number = next(self._numbers)
        self._shapes[number] = shape
        found: int = self._index.setdefault(key, number)
        return found

    def _put(
        self, start: int, records: Sequence[Any], sent: Optional[Sequence[Any]] = None
    ) -> None:
        """Keep ``records``, the results of the request that starts at ``start``
        (or a part of it, from its first item). ``sent``: the ids the request sent,
        whose ``str`` objects a kept clientId then shares."""
        if type(self._kinds) is memoryview:
            raise TypeError("CompactResults is read-only: its results are all in")
        span = bisect_right(self._starts, start) - 1
        base = self._starts[span]
        prefix = self._prefixes[span]
        if records and self._put_alike(span, start, records, start - base, prefix):
            return
        kinds = self._kinds
        pids = self._pids
        texts = self._texts
        whole = self._whole
        index = self._index
        kept: Optional[list[Any]] = None
        self._kept.pop(span, None)  # put again: the clientIds kept before go
        i = start
        for record in records:
            kind = 0
            cls = type(record)
            size = len(record)
            if (cls is SendResult or cls is SendFailure) and (
                size == 3 or (size == 4 and type(record[3]) is str)
            ):
                code, cid, pid = record[0], record[1], record[2]
                extra = record[3] if size == 4 else None
                if pid is None:
                    pform = _PID_NONE
                elif (
                    type(pid) is str
                    and len(pid) <= _MAX_DIGITS
                    and pid.isdigit()
                    and pid.isascii()
                ):
                    pform = len(pid)
                    number = int(pid)
                    pids[i] = number & _LOW
                    if pform > _NARROW_DIGITS:
                        self._high_of(span)[i - base] = number >> 64
                else:
                    pform = _PID_TEXT
                j = i - base
                if cid is None:
                    cform = _CID_NONE
                elif type(cid) is not str:
                    cform = _CID_KEPT
                elif (
                    prefix is not None
                    and j < ID_MAX_COUNT
                    # _made(prefix, j), without a call: once per message
                    and cid == prefix + _A[j // 3844] + _A[j // 62 % 62] + _A[j % 62]
                ):
                    cform = _CID_MADE
                elif cid == str(j):
                    cform = _CID_INDEX
                else:
                    cform = _CID_KEPT
                error = record.error if cls is SendFailure else None
                # The error by identity: each failure's own (exceptions hash so).
                key = (cls, code, id(error), pform, cform, extra)
                found = index.get(key)
                if found is None:
                    found = self._shape(key, (cls, code, error, pform, cform, extra))
                kind = found
                if not kind:  # an extra past the shapes: kept whole
                    whole[i] = record
                    if texts:
                        texts.pop(i, None)
                elif pform == _PID_TEXT:
                    texts[i] = pid
                elif texts:
                    texts.pop(i, None)  # put again: what was kept goes
                if kind and cform == _CID_KEPT:
                    if kept is None:
                        kept = self._kept[span] = [None] * (self._end(span) - base)
                    if sent is not None and j < len(sent) and sent[j] == cid:
                        cid = sent[j]  # the message's own str: shared, not copied
                    kept[j] = cid
                if kind and whole:
                    whole.pop(i, None)
            else:
                whole[i] = record
                if texts:
                    texts.pop(i, None)
            kinds[i] = kind
            i += 1

    def _high_of(self, span: int) -> array[int]:
        """The request's array of the high bits of its provider ids, made if new."""
        highs: Optional[array[int]] = self._highs.get(span)
        if highs is None:
            size = self._end(span) - self._starts[span]
            highs = self._highs.setdefault(span, array("Q", bytes(8 * size)))
        return highs

    def _put_alike(
        self, span: int, start: int, records: Sequence[Any], j: int, prefix: Optional[str]
    ) -> bool:
        """``_put`` for the usual request, in C-level passes: records of one class
        and code (and error), 3 fields each or 4 (an ``extra`` text, of a few
        values), the clientIds hpgfast made (or the indexes), the provider ids all
        ASCII digits (38 at most) or all None. False, with nothing kept, for any
        other request: ``_put`` then takes each record.
        """
        n = len(records)
        classes = set(map(type, records))
        if len(classes) != 1:
            return False
        sizes = set(map(len, records))
        if sizes == {3}:
            extras: Optional[list[Any]] = None
            values: set[Any] = {None}
        elif sizes == {4}:
            extras = list(map(_extra, records))
            values = set(extras)
            if len(values) > _ALIKE_EXTRAS or set(map(type, values)) != {str}:
                return False
        else:
            return False
        cls = classes.pop()
        if cls is SendResult:
            error = None
        elif cls is SendFailure:
            errors = set(map(id, map(_error, records)))
            if len(errors) != 1:
                return False
            error = records[0].error
        else:
            return False
        codes = set(map(_code, records))
        if len(codes) != 1:
            return False
        code = codes.pop()
        cids = list(map(_cid, records))
        if prefix is not None and j + n <= ID_MAX_COUNT and _all_made(cids, prefix, j):
            cform = _CID_MADE
        elif cids == list(map(str, range(j, j + n))):
            cform = _CID_INDEX
        else:
            return False
        pids = list(map(_pid, records))
        kinds = set(map(type, pids))
        if kinds == {_NONE}:
            widths = None
        elif kinds == {str}:
            widths = list(map(len, pids))
            forms = set(widths)
            digits = "".join(pids)
            if not (
                min(forms) >= 1
                and max(forms) <= _MAX_DIGITS
                and digits.isdigit()
                and digits.isascii()
            ):
                return False
        else:
            return False
        index = self._index
        kind_of: dict[Any, int] = {}
        for pform in {_PID_NONE} if widths is None else forms:
            for extra in values:
                key = (cls, code, id(error), pform, cform, extra)
                found = index.get(key)
                if found is None:
                    found = self._shape(key, (cls, code, error, pform, cform, extra))
                    if not found:  # past the shapes: record by record
                        return False
                kind_of[pform if extras is None else (pform, extra)] = found
        end = start + n
        if len(kind_of) == 1:  # one form of provider id (one width), one extra: one shape
            self._kinds[start:end] = array("I", kind_of.values()) * n
        elif extras is None:
            assert widths is not None
            self._kinds[start:end] = array("I", map(kind_of.__getitem__, widths))
        else:
            pforms = itertools.repeat(_PID_NONE, n) if widths is None else widths
            self._kinds[start:end] = array("I", map(kind_of.__getitem__, zip(pforms, extras)))
        if widths is not None:
            if max(forms) <= _NARROW_DIGITS:
                self._pids[start:end] = array("Q", map(int, pids))
            else:
                numbers = list(map(int, pids))
                self._pids[start:end] = array("Q", map(_low, numbers))
                self._high_of(span)[j : j + n] = array("Q", map(_high, numbers))
        # Put again (a request settled once more): what was kept for it goes.
        texts, whole = self._texts, self._whole
        if texts or whole:
            for i in range(start, end):
                texts.pop(i, None)
                whole.pop(i, None)
        if self._kept:
            self._kept.pop(span, None)
        return True

    # -- reading ----------------------------------------------------------------------

    def _item(self, i: int) -> SendResult:
        shape = self._shapes[self._kinds[i]]
        if shape is _WHOLE:
            whole: SendResult = self._whole[i]
            return whole
        cls, code, error, pform, cform, extra = shape
        if pform > _NARROW_DIGITS:
            span = bisect_right(self._starts, i) - 1
            number = self._pids[i] | self._highs[span][i - self._starts[span]] << 64
            pid = str(number).zfill(pform)
        elif pform > 0:
            pid = str(self._pids[i]).zfill(pform)
        elif pform == _PID_NONE:
            pid = None
        else:
            pid = self._texts[i]
        if cform == _CID_MADE or cform == _CID_INDEX:
            span = bisect_right(self._starts, i) - 1
            j = i - self._starts[span]
            prefix = self._prefixes[span]
            cid = _made(prefix, j) if prefix is not None and cform == _CID_MADE else str(j)
        elif cform == _CID_KEPT:
            span = bisect_right(self._starts, i) - 1
            cid = self._kept[span][i - self._starts[span]]
        else:
            cid = None
        if extra is None:
            record = tuple.__new__(cls, (code, cid, pid))
        else:
            record = tuple.__new__(cls, (code, cid, pid, extra))
        if cls is SendFailure:
            record.error = error
        return record  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> SendResult: ...
    @overload
    def __getitem__(self, i: slice) -> list[SendResult]: ...
    def __getitem__(self, i: Union[int, slice]) -> Union[SendResult, list[SendResult]]:
        if isinstance(i, slice):
            return [self._item(k) for k in range(*i.indices(self._len))]
        k = _index(i)
        if k < 0:
            k += self._len
        if not 0 <= k < self._len:
            raise IndexError("CompactResults index out of range")
        return self._item(k)

    def __iter__(self) -> Iterator[SendResult]:
        item = self._item
        for i in range(self._len):
            yield item(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (list, CompactResults)):
            return NotImplemented
        if len(other) != self._len:
            return False
        return all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def counts(self) -> dict[str, int]:
        """How many results have each code: ``{"ok": 999998, "unknown": 2}``."""
        shapes = self._shapes
        counts: Counter[str] = Counter()
        for kind, n in Counter(self._kinds).items():
            if kind:
                counts[shapes[kind][1]] += n
        for record in self._whole.values():
            counts[record[0]] += 1
        return dict(counts)

    def __repr__(self) -> str:
        # Counts only: the records' texts (a reply's description) stay out of it.
        counts = ", ".join(f"{code}: {n}" for code, n in sorted(self.counts().items()))
        return f"<hpgfast.CompactResults of {self._len}{' (' + counts + ')' if counts else ''}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its records (an exception's ``.results`` pickles with it).
        return (type(self), (list(self),))
