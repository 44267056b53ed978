# cython: language_level=3, binding=True
"""Segment counting in C (Cython): the compiled twin of ``_sms_py``.

Strategy: ``_sms_py`` is the contract; this module returns equal records and raises
the same exceptions in the same order, only faster. A batch is walked in chunks of
``CHUNK`` items:

1. with the GIL, each item's text is found (a ``str``, or field 1 of a tuple) and
   its PEP 393 buffer (pointer, kind, length) noted in a C array; a structural error
   is remembered, not raised, until the texts before it are proved sendable;
2. without the GIL (when the chunk holds enough characters to be worth the
   hand-over), each buffer is scanned: the GSM 7-bit cost of every character by a
   table lookup, then for UCS-2 the lone-surrogate check and the UTF-16 length, and,
   only for a long text with two-unit characters, a second pass that cuts it into
   parts as the standard does;
3. with the GIL, the records (or the totals) are made from the C array; records
   are immutable, and an equal one made before is handed out again (``_record``).

The buffers stay valid without the GIL: the batch is held as a tuple (a list is
copied into one first), tuples never change, and a ``str`` never changes its
length, kind or buffer once ready. The alphabet is read from ``_gsm`` at import: it
is written down once, there.
"""

from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from . import _gsm
from ._sms_records import Segments as _Segments, SegmentTotals as _SegmentTotals
from .exceptions import MessageError, MessageTypeError

__all__ = ["count_segments", "segments", "total_segments"]

cdef extern from "Python.h":
    Py_ssize_t PY_SSIZE_T_MAX
    void PyObject_GC_UnTrack(void* op)
    # Borrowed-pointer forms of the type checks and PEP 393 accessors: the gather
    # reads items without reference counting (the batch tuple holds them).
    bint p_UNICODE_CHECK "PyUnicode_Check"(PyObject*) noexcept
    bint p_TUPLE_CHECK "PyTuple_Check"(PyObject*) noexcept
    Py_ssize_t p_TUPLE_SIZE "PyTuple_GET_SIZE"(PyObject*) noexcept
    PyObject* p_TUPLE_ITEM "PyTuple_GET_ITEM"(PyObject*, Py_ssize_t) noexcept
    int p_KIND "PyUnicode_KIND"(PyObject*) noexcept nogil
    void* p_DATA "PyUnicode_DATA"(PyObject*) noexcept nogil
    Py_ssize_t p_LEN "PyUnicode_GET_LENGTH"(PyObject*) noexcept nogil

cdef extern from *:
    """
    /* A legacy (not ready) str exists only before 3.12 and only through deprecated
       C APIs; make it ready before its buffer is read. -1 with an exception set. */
    static int hpg_sms_ready(PyObject* s) {
    #if PY_VERSION_HEX < 0x030C0000
        return PyUnicode_READY(s);
    #else
        (void)s;
        return 0;
    #endif
    }
    static PyObject* hpg_sms_alloc(PyObject* tp, Py_ssize_t n) {
        return ((PyTypeObject*)tp)->tp_alloc((PyTypeObject*)tp, n);
    }
    static int hpg_sms_add(Py_ssize_t a, Py_ssize_t b, Py_ssize_t* r) {
        return __builtin_add_overflow(a, b, r);
    }
    /* Sum of tab[p[i]] over a 1-byte buffer of fewer than 2**32 bytes, four
       independent sums at a time (the table lookups cannot be vectorized; this keeps
       the loads in flight instead of waiting on one running sum). */
    static uint64_t hpg_sms_sum1(const uint8_t* p, Py_ssize_t n, const uint64_t* tab) {
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            a0 += tab[p[i]]; a1 += tab[p[i + 1]]; a2 += tab[p[i + 2]]; a3 += tab[p[i + 3]];
        }
        for (; i < n; i++) a0 += tab[p[i]];
        return a0 + a1 + a2 + a3;
    }
    /* The gather's first touch of each item and of its text is a cache miss: fetch
       the item 8 ahead, and the text of the one 4 ahead (fetched 4 steps ago). */
    static void hpg_sms_prefetch(PyObject* seq, Py_ssize_t i, Py_ssize_t n) {
        PyObject* m;
        if (i + 8 < n) __builtin_prefetch(PyTuple_GET_ITEM(seq, i + 8));
        if (i + 4 < n) {
            m = PyTuple_GET_ITEM(seq, i + 4);
            if (PyTuple_Check(m) && PyTuple_GET_SIZE(m) > 1) __builtin_prefetch(PyTuple_GET_ITEM(m, 1));
        }
    }
    static Py_ssize_t hpg_sms_basicsize(PyObject* tp) { return ((PyTypeObject*)tp)->tp_basicsize; }
    static Py_ssize_t hpg_sms_itemsize(PyObject* tp) { return ((PyTypeObject*)tp)->tp_itemsize; }
    static Py_ssize_t hpg_sms_dictoffset(PyObject* tp) { return ((PyTypeObject*)tp)->tp_dictoffset; }
    static Py_ssize_t hpg_sms_weaklistoffset(PyObject* tp) { return ((PyTypeObject*)tp)->tp_weaklistoffset; }
    """
    int hpg_sms_ready(PyObject* s) except -1
    object hpg_sms_alloc(object tp, Py_ssize_t n)
    bint hpg_sms_add(Py_ssize_t a, Py_ssize_t b, Py_ssize_t* r) noexcept nogil
    uint64_t hpg_sms_sum1(const uint8_t* p, Py_ssize_t n, const uint64_t* tab) noexcept nogil
    void hpg_sms_prefetch(PyObject* seq, Py_ssize_t i, Py_ssize_t n) noexcept
    Py_ssize_t hpg_sms_basicsize(object tp)
    Py_ssize_t hpg_sms_itemsize(object tp)
    Py_ssize_t hpg_sms_dictoffset(object tp)
    Py_ssize_t hpg_sms_weaklistoffset(object tp)


# -- tables, filled from _gsm at import ---------------------------------------------------

cdef uint8_t COST1[256]      # septets of a code point < 256 (0: not GSM 7-bit)
# For the 1-byte pass: 1 for an extension character, 2**32 for one not in GSM 7-bit,
# so one sum over a text gives both counts (texts are summed 2**30 bytes at a time).
cdef uint64_t SUM1[256]
cdef uint64_t NON_GSM = (<uint64_t>1) << 32
cdef enum:
    MAX_HIGH = 32
cdef uint32_t HIGH_CP[MAX_HIGH]    # GSM 7-bit characters at or above U+0100 ...
cdef uint8_t HIGH_COST[MAX_HIGH]   # ... and their septets
cdef int N_HIGH = 0

cdef int _i
for _i in range(256):
    SUM1[_i] = NON_GSM
for _char in _gsm.BASIC | _gsm.EXTENSION:
    _septets = _gsm.septets(_char)
    if ord(_char) < 256:
        COST1[ord(_char)] = _septets
        SUM1[ord(_char)] = 1 if _septets == 2 else 0
    else:
        if N_HIGH == MAX_HIGH:
            raise ImportError("hpgfast._gsm has more characters above U+00FF than expected")
        HIGH_CP[N_HIGH] = ord(_char)
        HIGH_COST[N_HIGH] = _septets
        N_HIGH += 1

cdef Py_ssize_t SINGLE_GSM7 = _gsm.SINGLE_GSM7
cdef Py_ssize_t SINGLE_UCS2 = _gsm.SINGLE_UCS2
cdef Py_ssize_t CONCAT_GSM7 = _gsm.CONCAT_GSM7
cdef Py_ssize_t CONCAT_UCS2 = _gsm.CONCAT_UCS2
cdef str _GSM7 = _gsm.GSM7
cdef str _UCS2 = _gsm.UCS2

# A str longer than this would overflow the unit arithmetic (two units a character,
# parts of up to 153): no such string fits in memory, but a length is never trusted.
cdef Py_ssize_t MAX_CHARS = PY_SSIZE_T_MAX // 4

cdef enum:
    # Items gathered, counted, then emitted at a time: their texts (~150 KB of mixed
    # SMS) stay in the L2 cache from the gather to the count.
    CHUNK = 1024
    NOGIL_CHARS = 8192      # below this many characters a chunk keeps the GIL
    SUM1_BLOCK = 1 << 30    # bytes summed at a time: the counts stay below 2**32

# Records are made with tp_alloc + PyTuple_SET_ITEM, which is right only while they
# are plain tuple subclasses (checked once here, as the codec does; else the class
# is called).
cdef bint _FAST_RECORD = (
    issubclass(_Segments, tuple)
    and hpg_sms_basicsize(_Segments) == hpg_sms_basicsize(tuple)
    and hpg_sms_itemsize(_Segments) == hpg_sms_itemsize(tuple)
    and hpg_sms_dictoffset(_Segments) == 0
    and hpg_sms_weaklistoffset(_Segments) == 0
)


# -- counting one buffer, without the GIL ------------------------------------------------

cdef struct Text:
    const void* data
    Py_ssize_t length
    int kind
    bint ucs2            # results from here on
    Py_ssize_t units
    Py_ssize_t segments
    Py_ssize_t remaining
    Py_ssize_t bad       # the character index of a lone surrogate, or -1


cdef inline uint8_t _cost(uint32_t c) noexcept nogil:
    """Septets of one code point: 1, 2 (extension table), or 0 (not GSM 7-bit)."""
    cdef int k
    if c < 256:
        return COST1[c]
    for k in range(N_HIGH):
        if HIGH_CP[k] == c:
            return HIGH_COST[k]
    return 0


cdef inline uint32_t _at(const void* data, int kind, Py_ssize_t i) noexcept nogil:
    if kind == 1:
        return (<const uint8_t*>data)[i]
    if kind == 2:
        return (<const uint16_t*>data)[i]
    return (<const uint32_t*>data)[i]


cdef inline void _even(Text* t, Py_ssize_t single, Py_ssize_t part) noexcept nogil:
    """Segments of a text without two-unit characters: parts cut every `part` units."""
    cdef Py_ssize_t rest
    if t.units <= single:
        t.segments = 1
        t.remaining = single - t.units
    else:
        rest = t.units % part
        t.segments = t.units // part + (1 if rest else 0)
        t.remaining = part - rest if rest else 0


cdef inline void _close(Text* t, Py_ssize_t single, Py_ssize_t parts, Py_ssize_t used) noexcept nogil:
    """Finish a text cut greedily into `parts` parts, the last holding `used` units."""
    if t.units <= single:
        t.segments = 1
        t.remaining = single - t.units
    else:
        t.segments = parts
        t.remaining = (CONCAT_UCS2 if t.ucs2 else CONCAT_GSM7) - used


cdef void _cut_gsm7(Text* t) noexcept nogil:
    """Parts of a long GSM 7-bit text with extension characters (never split)."""
    cdef Py_ssize_t i, used = 0, parts = 1
    cdef uint8_t w
    for i in range(t.length):
        w = _cost(_at(t.data, t.kind, i))
        if used + w > CONCAT_GSM7:
            parts += 1
            used = w
        else:
            used += w
    _close(t, SINGLE_GSM7, parts, used)


cdef void _cut_ucs2(Text* t) noexcept nogil:
    """Parts of a long text of kind 4: a character above U+FFFF is never split."""
    cdef const uint32_t* p4 = <const uint32_t*>t.data
    cdef Py_ssize_t i, used = 0, parts = 1, w
    for i in range(t.length):
        w = 2 if p4[i] > 0xFFFF else 1
        used += w
        if used > CONCAT_UCS2:
            parts += 1
            used = w
    _close(t, SINGLE_UCS2, parts, used)


cdef Py_ssize_t _count(Text* t) noexcept nogil:
    """Fills t's results; returns -1, or the index of a lone surrogate."""
    cdef Py_ssize_t i = 0, j, n = t.length, ext = 0, astral = 0, block
    cdef const uint8_t* p1
    cdef const uint16_t* p2
    cdef const uint32_t* p4
    cdef uint64_t sums
    cdef bint non = False
    cdef uint8_t w
    cdef uint32_t sur = 0
    if t.kind == 1:
        # Nothing outside the BMP and no surrogate can be here: one pass of table sums.
        p1 = <const uint8_t*>t.data
        while i < n:
            block = n - i if n - i < SUM1_BLOCK else SUM1_BLOCK
            sums = hpg_sms_sum1(p1 + i, block, SUM1)
            ext += <uint32_t>sums   # the low half
            non |= (sums >> 32) != 0
            i += block
        t.ucs2 = non
        t.units = n if non else n + ext
        if non or not ext or t.units <= SINGLE_GSM7:
            _even(t, SINGLE_UCS2 if non else SINGLE_GSM7, CONCAT_UCS2 if non else CONCAT_GSM7)
        else:
            _cut_gsm7(t)
        return -1
    # Kinds 2 and 4: GSM 7-bit up to the first character that is not.
    if t.kind == 2:
        p2 = <const uint16_t*>t.data
        while i < n:
            w = _cost(p2[i])
            if w == 0:
                break
            ext += w - 1
            i += 1
    else:
        p4 = <const uint32_t*>t.data
        while i < n:
            w = _cost(p4[i])
            if w == 0:
                break
            ext += w - 1
            i += 1
    if i == n:
        t.ucs2 = False
        t.units = n + ext
        if ext and t.units > SINGLE_GSM7:
            _cut_gsm7(t)
        else:
            _even(t, SINGLE_GSM7, CONCAT_GSM7)
        return -1
    # UCS-2 from character i on (the ones before were GSM 7-bit: no surrogate there).
    # Every surrogate code point in a str is a lone one: Python holds a pair as one
    # character, of kind 4. Branch-free passes first; the index only when one is there.
    t.ucs2 = True
    if t.kind == 2:
        for j in range(i, n):
            sur |= (p2[j] >> 11) == 0x1B     # U+D800..U+DFFF
        if sur:
            for j in range(i, n):
                if (p2[j] >> 11) == 0x1B:
                    return j
        t.units = n
        _even(t, SINGLE_UCS2, CONCAT_UCS2)
        return -1
    for j in range(i, n):
        astral += p4[j] > 0xFFFF
        sur |= (p4[j] >> 11) == 0x1B     # U+D800..U+DFFF
    if sur:
        for j in range(i, n):
            if (p4[j] >> 11) == 0x1B:
                return j
    t.units = n + astral
    if astral and t.units > SINGLE_UCS2:
        _cut_ucs2(t)
    else:
        _even(t, SINGLE_UCS2, CONCAT_UCS2)
    return -1


cdef Py_ssize_t _count_all(Text* texts, Py_ssize_t n) noexcept nogil:
    """Counts texts[0:n]; returns -1, or the position of the first with a lone surrogate."""
    cdef Py_ssize_t k
    for k in range(n):
        texts[k].bad = _count(&texts[k])
        if texts[k].bad >= 0:
            return k
    return -1


# -- with the GIL: finding the texts, raising, making records ------------------------------


cdef inline str _type_name(object value):
    return type(value).__name__


cdef str _surrogate_reason(Text* t):
    return f"contains a lone surrogate U+{_at(t.data, t.kind, t.bad):04X} at character {t.bad}"


cdef inline int _note(Text* t, PyObject* s) except -1:
    """Notes a str's buffer (made ready first); OverflowError past MAX_CHARS."""
    hpg_sms_ready(s)
    t.length = p_LEN(s)
    if t.length > MAX_CHARS:
        raise OverflowError("text too long to count")
    t.data = p_DATA(s)
    t.kind = p_KIND(s)
    return 0


cdef object _gather(tuple seq, Py_ssize_t start, Py_ssize_t stop, Text* texts, Py_ssize_t* chars):
    """Notes the texts of seq[start:stop] in texts; returns None, or the error of the
    first item that has no text (texts before it are noted), with *chars counted."""
    cdef Py_ssize_t i, size
    cdef PyObject* item
    cdef PyObject* text
    cdef Text* t
    chars[0] = 0
    for i in range(start, stop):
        hpg_sms_prefetch(<PyObject*>seq, i, stop)
        item = p_TUPLE_ITEM(<PyObject*>seq, i)
        if p_UNICODE_CHECK(item):
            text = item
        elif p_TUPLE_CHECK(item):
            size = p_TUPLE_SIZE(item)
            if not 2 <= size <= 5:
                return MessageError(i, "message", f"expected 2 to 5 fields, got {size}")
            text = p_TUPLE_ITEM(item, 1)
            if not p_UNICODE_CHECK(text):
                return MessageTypeError(
                    i, "text", f"expected str, got {_type_name(<object>text)}"
                )
        else:
            return MessageTypeError(
                i,
                "message",
                f"expected a str, a Message or a tuple, got {_type_name(<object>item)}",
            )
        t = &texts[i - start]
        _note(t, text)
        # Only steers the GIL hand-over: saturate rather than trust the sum.
        chars[0] = PY_SSIZE_T_MAX if t.length > PY_SSIZE_T_MAX - chars[0] else chars[0] + t.length
    return None


cdef Py_ssize_t _run(Text* texts, Py_ssize_t n, Py_ssize_t chars) noexcept:
    cdef Py_ssize_t bad
    if chars >= NOGIL_CHARS:
        with nogil:
            bad = _count_all(texts, n)
    else:
        bad = _count_all(texts, n)
    return bad


cdef object _new_record(Text* t):
    # Typed as objects, or Cython infers C integers and each use below would make
    # (and lose) a fresh Python int.
    cdef object enc = _UCS2 if t.ucs2 else _GSM7
    cdef object units = t.units
    cdef object segs = t.segments
    cdef object rem = t.remaining
    cdef object rec
    if not _FAST_RECORD:
        return _Segments(enc, units, segs, rem)
    rec = hpg_sms_alloc(_Segments, 4)
    # Only ints and a str: never part of a cycle, so not tracked by the cyclic GC.
    PyObject_GC_UnTrack(<void*>rec)
    Py_INCREF(enc)
    PyTuple_SET_ITEM(rec, 0, enc)
    Py_INCREF(units)
    PyTuple_SET_ITEM(rec, 1, units)
    Py_INCREF(segs)
    PyTuple_SET_ITEM(rec, 2, segs)
    Py_INCREF(rem)
    PyTuple_SET_ITEM(rec, 3, rem)
    return rec


# Records are immutable values, and the texts of a batch take few distinct ones (an
# SMS text is rarely over a few hundred units): the last record made for each
# (encoding, units) is kept and handed out again while its segments and room match,
# as CPython hands out its small ints. A million results then cost a million list
# slots, not a million tuples.
cdef enum:
    CACHE_UNITS = 1024
cdef PyObject* CACHED[2 * CACHE_UNITS]     # a reference the cache owns, or NULL
cdef Py_ssize_t CACHED_SEGS[2 * CACHE_UNITS]
cdef Py_ssize_t CACHED_REM[2 * CACHE_UNITS]


cdef object _record(Text* t):
    cdef Py_ssize_t slot
    cdef PyObject* old
    cdef object rec
    if t.units >= CACHE_UNITS:
        return _new_record(t)
    slot = (CACHE_UNITS if t.ucs2 else 0) + t.units
    old = CACHED[slot]
    if old != NULL and CACHED_SEGS[slot] == t.segments and CACHED_REM[slot] == t.remaining:
        return <object>old
    rec = _new_record(t)
    Py_INCREF(rec)
    CACHED[slot] = <PyObject*>rec
    CACHED_SEGS[slot] = t.segments
    CACHED_REM[slot] = t.remaining
    Py_XDECREF(old)
    return rec


cdef tuple _batch(object items):
    if isinstance(items, (str, bytes, bytearray)):
        raise TypeError(f"expected a sequence of texts or messages, got {_type_name(items)}")
    # A tuple: it cannot change while the GIL is released (a list could).
    return items if type(items) is tuple else tuple(items)


def segments(text):
    """What one text costs: its encoding, length in units, segments and room left.

    Raises:
        MessageTypeError: ``text`` is not a ``str``.
        MessageError: ``text`` holds a lone surrogate (``index`` is ``None``).
    """
    cdef Text t
    cdef Py_ssize_t bad
    if not isinstance(text, str):
        raise MessageTypeError(None, "text", f"expected str, got {_type_name(text)}")
    _note(&t, <PyObject*>text)
    bad = _run(&t, 1, t.length)
    if bad >= 0:
        raise MessageError(None, "text", _surrogate_reason(&t))
    return _record(&t)


def count_segments(items):
    """``segments()`` of each text, or of each message's text, in order.

    Args:
        items: texts (``str``), or ``Message`` records or tuples of 2 to 5 fields
            whose field 1 is the text; they may be mixed.

    Raises:
        TypeError: ``items`` is a ``str`` or ``bytes`` (not a sequence of texts).
        MessageTypeError: an item, or its text, of the wrong type (names the index).
        MessageError: a tuple of the wrong size, or a text with a lone surrogate.
    """
    cdef tuple seq = _batch(items)
    cdef Py_ssize_t total = len(seq), start, stop, k, n, bad, chars
    cdef list out = PyList_New(total)   # NULL slots until set; a list frees them safely
    cdef Text* texts = <Text*>malloc(CHUNK * sizeof(Text))
    cdef object rec
    if texts == NULL:
        raise MemoryError()
    try:
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            error = _gather(seq, start, stop, texts, &chars)
            n = stop - start if error is None else error.index - start
            bad = _run(texts, n, chars)
            if bad >= 0:
                raise MessageError(
                    start + bad, "text", _surrogate_reason(&texts[bad])
                )
            if error is not None:
                raise error
            for k in range(n):
                rec = _record(&texts[k])
                Py_INCREF(rec)
                PyList_SET_ITEM(out, start + k, rec)
    finally:
        free(texts)
    return out


cdef inline int _add(Py_ssize_t* acc, Py_ssize_t v, list spill, int slot) except -1:
    # Exact sums whatever the batch: a C sum that would overflow moves to a Python
    # int (unreachable in practice: it takes 2**63 segments).
    cdef Py_ssize_t total
    if hpg_sms_add(acc[0], v, &total):
        spill[slot] += acc[0]
        acc[0] = v
    else:
        acc[0] = total
    return 0


def total_segments(items):
    """What a batch costs, in one record, without a record per message.

    Takes what ``count_segments`` takes and raises what it raises; returns
    ``SegmentTotals(messages, segments, gsm7_messages, gsm7_segments, ucs2_messages,
    ucs2_segments, largest, largest_index)``.
    """
    cdef tuple seq = _batch(items)
    cdef Py_ssize_t total = len(seq), start, stop, k, n, bad, chars
    cdef Py_ssize_t gsm7_messages = 0, gsm7_segs = 0, ucs2_segs = 0, largest = 0, where = -1
    cdef list spill = [0, 0]
    cdef Text* texts = <Text*>malloc(CHUNK * sizeof(Text))
    cdef Text* t
    if texts == NULL:
        raise MemoryError()
    try:
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            error = _gather(seq, start, stop, texts, &chars)
            n = stop - start if error is None else error.index - start
            bad = _run(texts, n, chars)
            if bad >= 0:
                raise MessageError(
                    start + bad, "text", _surrogate_reason(&texts[bad])
                )
            if error is not None:
                raise error
            for k in range(n):
                t = &texts[k]
                if t.ucs2:
                    _add(&ucs2_segs, t.segments, spill, 1)
                else:
                    gsm7_messages += 1
                    _add(&gsm7_segs, t.segments, spill, 0)
                if t.segments > largest:
                    largest = t.segments
                    where = start + k
    finally:
        free(texts)
    gsm7 = spill[0] + gsm7_segs
    ucs2 = spill[1] + ucs2_segs
    return _SegmentTotals(
        total,
        gsm7 + ucs2,
        gsm7_messages,
        gsm7,
        total - gsm7_messages,
        ucs2,
        largest,
        None if where < 0 else where,
    )
