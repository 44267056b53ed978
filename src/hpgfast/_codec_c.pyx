# cython: language_level=3, binding=True
"""The codec core in C (Cython): the compiled twin of ``_codec_py``.

Strategy: ``_codec_py`` is the contract; this module returns equal results and
raises the same exceptions in the same order, only faster. Python objects are
touched only where the contract needs them (type checks, records); every loop over
characters or bytes is C over raw buffers, and runs without the GIL once the work
is big enough to be worth the hand-over:

* encode: (1) with the GIL, walk the messages, do the structural checks and note
  each string's PEP 393 buffer (pointer, kind, length) in a C array, holding
  references to everything those pointers point into; a structural error is
  remembered, not raised, until the byte pass proves the message is reached.
  (2) Without the GIL: exact encoded sizes, lone surrogates, the cut.
  (3) One output ``bytes`` of the exact size, filled without the GIL.
  (4) The duplicate-client-id check over the messages taken, in C on the raw
  buffers (a str subclass was copied into an exact str in (1), so no __eq__ or
  __hash__ of the caller's is asked).
* parse: a GIL-free pre-pass over a chunk of lines finds the fields, validates
  UTF-8, tokens and dates into a C array; then, with the GIL, the records are
  built straight from it (``tp_alloc`` + ``PyTuple_SET_ITEM``, untracked from the
  cyclic GC), reusing interned codes/statuses and repeated datetimes/reasons.
  parse_* raise at the first faulty line; read_* run the very same loop with a
  flag that keeps faulty lines in the chunk (as errors) and goes on.

The wire format (names, codes, statuses, character sets, BOM) is read from
``_wire`` at import: it is written down once, there.
"""

from cpython.object cimport PyObject, PyObject_GetItem
from cpython.ref cimport Py_INCREF, Py_DECREF
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from cpython.sequence cimport PySequence_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.datetime cimport import_datetime, datetime_new
from libc.string cimport memcpy, memcmp, memchr, memset
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython cimport array as carray

import math as _math
import operator as _operator
from array import array as _array
from collections.abc import Mapping as _Mapping
from datetime import tzinfo as _tzinfo

from . import _wire
from ._columns import SendColumns as _SendColumns
from ._fields import charset_name as _charset_name, read_text as _read_text, read_time as _read_time
from ._records import Message as _Message, SendResult as _SendResult, StatusResult as _StatusResult
from .exceptions import MessageError, MessageTooLarge, MessageTypeError, ProtocolError

__all__ = [
    "encode_params",
    "encode_send",
    "encode_status",
    "match_send",
    "match_status",
    "parse_send",
    "parse_status",
    "read_send",
    "read_send_columns",
    "read_status",
    "sent_ids",
]

cdef extern from "Python.h":
    # PEP 393 accessors (macros); callers make sure the object is an exact or
    # derived ``str`` that is "ready" first.
    int PyUnicode_READY(object) except -1
    int PyUnicode_KIND(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    bint PyUnicode_IS_ASCII(object)
    # The same on a borrowed pointer, for the GIL-free gather (reads only).
    int p_KIND "PyUnicode_KIND"(PyObject*) noexcept nogil
    void* p_DATA "PyUnicode_DATA"(PyObject*) noexcept nogil
    Py_ssize_t p_LEN "PyUnicode_GET_LENGTH"(PyObject*) noexcept nogil
    bint p_IS_ASCII "PyUnicode_IS_ASCII"(PyObject*) noexcept nogil
    PyObject* p_TUPLE_ITEM "PyTuple_GET_ITEM"(PyObject*, Py_ssize_t) noexcept nogil
    PyObject* p_None "Py_None"
    Py_ssize_t PY_SSIZE_T_MAX
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    # An exact str as is; a subclass's characters as a new exact str, asking the
    # subclass nothing (no __str__, no encode).
    object PyUnicode_FromObject(object)
    void PyObject_GC_UnTrack(void* op)

cdef extern from *:
    """
    /* A new ASCII str: the pre-pass proved the bytes are ASCII, so the compact
       1-byte representation is filled directly instead of running a decoder. */
    static PyObject* hpg_ascii(const char* p, Py_ssize_t n) {
        PyObject* s = PyUnicode_New(n, 127);
        if (s != NULL) memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
        return s;
    }
    /* What tuple_subtype_new does internally: allocate the tuple subclass
       instance with room for n items (zero-filled, GC-tracked). */
    static PyObject* hpg_alloc_record(PyObject* tp, Py_ssize_t n) {
        return ((PyTypeObject*)tp)->tp_alloc((PyTypeObject*)tp, n);
    }
    /* Walking a big batch, the first touch of each message and of its strings is a
       cache miss. The items are stable for the walk (see _gather_fast), so they can
       be prefetched ahead: the message 6 ahead, and the strings of the one 3 ahead
       (whose tuple was prefetched 3 iterations ago). */
    static void hpg_prefetch(PyObject** items, Py_ssize_t i, Py_ssize_t n) {
        Py_ssize_t k, size;
        PyObject* m;
        if (i + 6 < n) __builtin_prefetch(items[i + 6]);
        if (i + 3 < n) {
            m = items[i + 3];
            if (PyTuple_Check(m)) {
                size = PyTuple_GET_SIZE(m);
                for (k = 0; k < size && k < 4; k++) __builtin_prefetch(PyTuple_GET_ITEM(m, k));
            }
        }
    }
    /* The encoder's common case, read without Python calls (and possibly without
       the GIL; see _fast_msg): an exact str that is ready, with 1..max characters.
       Exact str objects never change type, length, kind or buffer once ready. */
    static inline int hpg_plain_str(PyObject* s, Py_ssize_t max) {
        if (!Py_IS_TYPE(s, &PyUnicode_Type)) return 0;
    #if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(s)) return 0;   /* legacy string: the general path */
    #endif
        return PyUnicode_GET_LENGTH(s) > 0 && PyUnicode_GET_LENGTH(s) <= max;
    }
    /* A list's or tuple's size and item k (a new reference; k < size checked by
       the caller), read afresh each time: no pointer into a list is kept. */
    static inline Py_ssize_t hpg_seq_size(PyObject* s) { return PySequence_Fast_GET_SIZE(s); }
    static inline PyObject* hpg_seq_item(PyObject* s, Py_ssize_t k) {
        PyObject* o = PySequence_Fast_GET_ITEM(s, k);
        Py_INCREF(o);
        return o;
    }
    /* Ask the cache for the object at k of a list or tuple (if there is one): the
       ids a big reply is matched against were made long before, and are cold. A
       prefetch never faults, and the item is read with the size checked. */
    static inline void hpg_seq_prefetch(PyObject* s, Py_ssize_t k) {
        if (k < PySequence_Fast_GET_SIZE(s)) __builtin_prefetch(PySequence_Fast_GET_ITEM(s, k));
    }
    static inline PyObject** hpg_tuple_items(PyObject* t) { return &PyTuple_GET_ITEM(t, 0); }
    static inline int hpg_is_tuple(PyObject* o) { return PyTuple_Check(o); }
    static inline Py_ssize_t hpg_tuple_size(PyObject* o) { return PyTuple_GET_SIZE(o); }
    static inline int hpg_ctz64(uint64_t x) { return __builtin_ctzll(x); }
    /* A record of n items, not tracked by the cyclic GC (see _parse), its items
       left for the caller to set. PyObject_GC_NewVar is the documented allocator
       of a GC container of a given type: the same memory as the type's tp_alloc
       (PyType_GenericAlloc), without the zero-fill, which is dead work as every item
       is set at once, nor the track-then-untrack. It is used only while the record
       type is a plain tuple subclass (_FAST_RECORDS) and only up to 3.13, whose
       tuple layout is known to be ob_size + items; later versions use tp_alloc. */
    static PyTupleObject* hpg_new_record(PyObject* tp, Py_ssize_t n) {
    #if PY_VERSION_HEX < 0x030E0000
        return PyObject_GC_NewVar(PyTupleObject, (PyTypeObject*)tp, n);
    #else
        PyTupleObject* r = (PyTupleObject*)((PyTypeObject*)tp)->tp_alloc((PyTypeObject*)tp, n);
        if (r != NULL) PyObject_GC_UnTrack(r);
        return r;
    #endif
    }
    /* A SendResult of three items (new references to them are taken). */
    static PyObject* hpg_record3(PyObject* tp, PyObject* a, PyObject* b, PyObject* c) {
        PyTupleObject* r = hpg_new_record(tp, 3);
        if (r == NULL) return NULL;
        Py_INCREF(a); r->ob_item[0] = a;
        Py_INCREF(b); r->ob_item[1] = b;
        Py_INCREF(c); r->ob_item[2] = c;
        return (PyObject*)r;
    }
    /* A StatusResult of five items (str, None and datetime items: see _parse for
       why it need not be tracked). */
    static PyObject* hpg_record5(PyObject* tp, PyObject* a, PyObject* b, PyObject* c,
                                 PyObject* d, PyObject* e) {
        PyTupleObject* r = hpg_new_record(tp, 5);
        if (r == NULL) return NULL;
        Py_INCREF(a); r->ob_item[0] = a;
        Py_INCREF(b); r->ob_item[1] = b;
        Py_INCREF(c); r->ob_item[2] = c;
        Py_INCREF(d); r->ob_item[3] = d;
        Py_INCREF(e); r->ob_item[4] = e;
        return (PyObject*)r;
    }
    /* 1 when e is an exact, ready, ASCII str equal to the n bytes at p: a reply's
       id field against the id the request sent (match_*), without making a str. */
    static inline int hpg_ascii_eq(PyObject* e, const char* p, Py_ssize_t n) {
        if (!PyUnicode_CheckExact(e)) return 0;
    #if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(e)) return 0;
    #endif
        return PyUnicode_IS_ASCII(e) && PyUnicode_GET_LENGTH(e) == n
            && memcmp(PyUnicode_1BYTE_DATA(e), p, (size_t)n) == 0;
    }
    /* The reply scan's marks for the 16 bytes at p, one bit per byte (bit i: byte
       i): the LFs, the separators (sep), and the bytes of 0x80 and above. SSE2 is
       part of every x86-64; elsewhere the same bits, a byte at a time. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline void hpg_marks16(const unsigned char* p, unsigned char sep,
                                   uint32_t* lf, uint32_t* sp, uint32_t* hi) {
        __m128i v = _mm_loadu_si128((const __m128i*)p);
        *lf = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(10)));
        *sp = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)sep)));
        *hi = (uint32_t)_mm_movemask_epi8(v);
    }
    #else
    static inline void hpg_marks16(const unsigned char* p, unsigned char sep,
                                   uint32_t* lf, uint32_t* sp, uint32_t* hi) {
        uint32_t a = 0, b = 0, c = 0;
        int i;
        for (i = 0; i < 16; i++) {
            a |= (uint32_t)(p[i] == 10) << i;
            b |= (uint32_t)(p[i] == sep) << i;
            c |= (uint32_t)(p[i] >> 7) << i;
        }
        *lf = a; *sp = b; *hi = c;
    }
    #endif
    /* A new list of the n objects at items (a reference to each is taken). */
    static PyObject* hpg_list_of(PyObject** items, Py_ssize_t n) {
        Py_ssize_t i;
        PyObject* list = PyList_New(n);
        if (list == NULL) return NULL;
        for (i = 0; i < n; i++) {
            Py_INCREF(items[i]);
            PyList_SET_ITEM(list, i, items[i]);
        }
        return list;
    }
    static Py_ssize_t hpg_type_basicsize(PyObject* tp) { return ((PyTypeObject*)tp)->tp_basicsize; }
    static Py_ssize_t hpg_type_itemsize(PyObject* tp) { return ((PyTypeObject*)tp)->tp_itemsize; }
    static Py_ssize_t hpg_type_dictoffset(PyObject* tp) { return ((PyTypeObject*)tp)->tp_dictoffset; }
    static Py_ssize_t hpg_type_weaklistoffset(PyObject* tp) { return ((PyTypeObject*)tp)->tp_weaklistoffset; }
    """
    object hpg_ascii(const char* p, Py_ssize_t n)
    object hpg_alloc_record(object tp, Py_ssize_t n)
    void hpg_prefetch(PyObject** items, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    bint hpg_plain_str(PyObject* s, Py_ssize_t max) noexcept nogil
    Py_ssize_t hpg_seq_size(object s) noexcept
    object hpg_seq_item(object s, Py_ssize_t k)
    void hpg_seq_prefetch(object s, Py_ssize_t k) noexcept
    PyObject** hpg_tuple_items(object t) noexcept
    bint hpg_is_tuple(PyObject* o) noexcept nogil
    Py_ssize_t hpg_tuple_size(PyObject* o) noexcept nogil
    int _ctz "hpg_ctz64"(uint64_t x) noexcept nogil
    object hpg_record3(object tp, object a, object b, object c)
    object hpg_record5(object tp, object a, object b, object c, object d, object e)
    bint hpg_ascii_eq(PyObject* e, const char* p, Py_ssize_t n) noexcept
    object hpg_list_of(PyObject** items, Py_ssize_t n)
    void hpg_marks16(const unsigned char* p, unsigned char sep, uint32_t* lf, uint32_t* sp,
                     uint32_t* hi) noexcept nogil
    Py_ssize_t hpg_type_basicsize(object tp)
    Py_ssize_t hpg_type_itemsize(object tp)
    Py_ssize_t hpg_type_dictoffset(object tp)
    Py_ssize_t hpg_type_weaklistoffset(object tp)

import_datetime()

# -- tables, filled from _wire at import ------------------------------------------------

cdef unsigned char UNRESERVED[256]   # 1: sent as is (RFC 3986 unreserved)
cdef unsigned char SIZE1[256]        # encoded size of a code point below 256
cdef unsigned char CODE_OK[256]      # 1: may appear in a code or status token
cdef unsigned char STRIP[256]        # 1: stripped from both ends of a reply line
cdef char HEX[16]
cdef unsigned char BOM[8]
cdef Py_ssize_t BOM_LEN = len(_wire.BOM)

cdef int _b
for _b in range(256):
    UNRESERVED[_b] = 1 if _b in _wire.UNRESERVED else 0
    CODE_OK[_b] = 1 if _b in _wire.CODE_CHARS else 0
    STRIP[_b] = 1 if _b in _wire.LINE_STRIP else 0
    # Below 0x80 one UTF-8 byte (kept, or %XX); 0x80..0xFF two bytes (%XX%XX).
    SIZE1[_b] = (1 if UNRESERVED[_b] else 3) if _b < 0x80 else 6
for _b in range(16):
    HEX[_b] = ord("0123456789ABCDEF"[_b])
if not 0 < BOM_LEN <= 8:
    raise ImportError("hpgfast._wire.BOM has an unexpected length")
for _b in range(BOM_LEN):
    BOM[_b] = _wire.BOM[_b]

cdef bytes _SUBJECT = _wire.SUBJECT.encode("ascii")
cdef bytes _ADDRESS = _wire.ADDRESS.encode("ascii")
cdef bytes _TEXT = _wire.TEXT.encode("ascii")
cdef bytes _CLIENT_ID = _wire.CLIENT_ID.encode("ascii")
cdef bytes _PROVIDER_ID = _wire.PROVIDER_ID.encode("ascii")
cdef object _RESERVED = _wire.SEND_FIELDS
# C views of the names for the GIL-free fill (the bytes above keep them alive).
cdef const char* P_SUBJECT = _SUBJECT
cdef const char* P_ADDRESS = _ADDRESS
cdef const char* P_TEXT = _TEXT
cdef const char* P_CLIENT_ID = _CLIENT_ID
cdef const char* P_PROVIDER_ID = _PROVIDER_ID
cdef Py_ssize_t N_SUBJECT = len(_SUBJECT)
cdef Py_ssize_t N_ADDRESS = len(_ADDRESS)
cdef Py_ssize_t N_TEXT = len(_TEXT)
cdef Py_ssize_t N_CLIENT_ID = len(_CLIENT_ID)
cdef Py_ssize_t N_PROVIDER_ID = len(_PROVIDER_ID)
cdef double _INF = float("inf")

# Made clientIds (``id_prefix``): the prefix's allowed characters and the suffix's
# digits, from _wire. Written as they are, so every character must be unreserved.
cdef unsigned char ID_OK[256]        # 1: may appear in an id prefix
cdef char ID_DIGIT[64]
cdef Py_ssize_t ID_BASE = len(_wire.ID_ALPHABET)
cdef Py_ssize_t ID_SUFFIX = _wire.ID_SUFFIX_LENGTH
cdef Py_ssize_t ID_PREFIX_MAX = _wire.ID_PREFIX_MAX_LENGTH
cdef Py_ssize_t ID_MAX_COUNT = _wire.ID_MAX_COUNT
if (not 1 < ID_BASE <= 64 or len(set(_wire.ID_ALPHABET)) != ID_BASE
        or not set(_wire.ID_ALPHABET.encode("ascii")) <= _wire.UNRESERVED
        or not 0 < ID_SUFFIX or not 0 < ID_PREFIX_MAX or ID_PREFIX_MAX + ID_SUFFIX > 24
        or ID_MAX_COUNT != ID_BASE ** ID_SUFFIX):
    raise ImportError("hpgfast._wire's clientId alphabet or lengths are unexpected")
for _b in range(ID_BASE):
    ID_DIGIT[_b] = ord(_wire.ID_ALPHABET[_b])
    ID_OK[ord(_wire.ID_ALPHABET[_b])] = 1

# Known codes and statuses: a text read off the wire that equals one of them is
# returned as that very object (as the pure twin's ``_INTERNED`` dict does), found by
# a bytes compare without allocating. The dict is built the same way as the pure
# twin's, so a hypothetical duplicate would resolve to the same object.
cdef enum:
    MAX_INTERNED = 64
cdef dict _INTERNED = {s: s for s in (*_wire.Code.PLATFORM, *_wire.Status.ALL)}
cdef tuple _INTERNED_KEEP = tuple(_INTERNED.values())   # keeps the objects alive
cdef PyObject* INTERN_OBJ[MAX_INTERNED]
cdef const char* INTERN_PTR[MAX_INTERNED]
cdef Py_ssize_t INTERN_LEN[MAX_INTERNED]
cdef Py_ssize_t N_INTERN = len(_INTERNED_KEEP)
cdef uint64_t INTERN_LENGTHS = 0     # bit n set: some interned string has length n
cdef unsigned char INTERN_FIRST[256] # 1: some interned string starts with this byte
cdef signed char INTERN_HEAD[64][256]  # by length and first byte: the first candidate, or -1
cdef signed char INTERN_NEXT[MAX_INTERNED]  # the next candidate of the same length and byte
memset(INTERN_HEAD, -1, sizeof(INTERN_HEAD))
if N_INTERN > MAX_INTERNED:
    raise ImportError("too many interned codes and statuses")
cdef int INTERN_OK = _INTERNED_KEEP.index("ok")   # the code counted by ok_count
cdef carray.array _INT64_ARRAY = _array("q")
if _INT64_ARRAY.itemsize != 8:
    raise ImportError("hpgfast._codec_c needs 8-byte 'q' arrays")
for _b, _s in enumerate(_INTERNED_KEEP):
    # Every one a good token: a code or status found among them skips the byte check.
    if (type(_s) is not str or not _s.isascii() or not 0 < len(_s) < 64
            or not set(_s.encode("ascii")) <= set(_wire.CODE_CHARS)):
        raise ImportError(f"unexpected code or status {_s!r} in hpgfast._wire")
    PyUnicode_READY(_s)
    INTERN_OBJ[_b] = <PyObject*>_s
    INTERN_PTR[_b] = <const char*>PyUnicode_DATA(_s)
    INTERN_LEN[_b] = len(_s)
    INTERN_LENGTHS |= (<uint64_t>1) << len(_s)
    INTERN_FIRST[ord(_s[0])] = 1
    # Chained in order, so the first of two equal strings (none expected) is found.
    INTERN_NEXT[_b] = -1
    if INTERN_HEAD[len(_s)][ord(_s[0])] < 0:
        INTERN_HEAD[len(_s)][ord(_s[0])] = _b
    else:
        _k = INTERN_HEAD[len(_s)][ord(_s[0])]
        while INTERN_NEXT[_k] >= 0:
            _k = INTERN_NEXT[_k]
        INTERN_NEXT[_k] = _b

# The records are built with tp_alloc + PyTuple_SET_ITEM, which is only right while
# they are plain tuple subclasses (``__slots__ = ()``: no __dict__, no weakrefs, no
# extra fields). Checked once here; if someone changes _records, we call the class.
cdef bint _FAST_RECORDS = all(
    hpg_type_basicsize(cls) == hpg_type_basicsize(tuple)
    and hpg_type_itemsize(cls) == hpg_type_itemsize(tuple)
    and hpg_type_dictoffset(cls) == 0
    and hpg_type_weaklistoffset(cls) == 0
    and issubclass(cls, tuple)
    for cls in (_SendResult, _StatusResult)
)

# Below this much work the GIL is kept: handing it over and getting it back costs
# more than the loop, and under contention getting it back can wait a whole switch
# interval (5 ms by default), so tiny calls would turn into convoys.
cdef enum:
    NOGIL_ENCODE_BYTES = 1024
    SCRATCH_MAX = 65536      # up to this size, a query is written in one GIL-free stretch
    NOGIL_PARSE_BYTES = 32768
    PARSE_CHUNK = 256

# A str longer than this would overflow size arithmetic (12 bytes per character at
# most); no such string fits in memory, but a length is never trusted unchecked.
cdef Py_ssize_t MAX_CHARS = PY_SSIZE_T_MAX // 16


# -- shared checks ----------------------------------------------------------------------


cdef inline str _type_name(object value):
    return type(value).__name__


cdef inline object _idx(Py_ssize_t index):
    # Indexes are passed unboxed (-1 for "no message": None) and boxed only for an
    # error: boxing each one up front cost more than the checks themselves.
    return None if index < 0 else index


cdef inline int _check_str(object value, Py_ssize_t index, str field) except -1:
    # A str subclass is judged by its characters, as what is sent is its buffer: its
    # own __bool__ or __len__ is never asked (see _codec_py, "Hostile types").
    if type(value) is not str and not isinstance(value, str):
        raise MessageTypeError(_idx(index), field, f"expected str, got {_type_name(value)}")
    _ready(value)
    if PyUnicode_GET_LENGTH(value) == 0:
        raise MessageError(_idx(index), field, "must not be empty")
    return 0


cdef inline object _exact(object value, list keep):
    """A checked str as an exact str: a subclass's characters copied into one that
    ``keep`` owns (its buffer is pointed into without the GIL). Exact: itself."""
    if type(value) is str:
        return value
    value = PyUnicode_FromObject(value)
    _ready(value)
    keep.append(value)
    return value


cdef inline int _ready(object value) except -1:
    PyUnicode_READY(value)
    if PyUnicode_GET_LENGTH(value) > MAX_CHARS:
        raise OverflowError("string too long to encode")
    return 0


cdef int _check_pair(object name, object value, Py_ssize_t index, list keep) except -1:
    """Checks a pair and appends it to keep, as exact strs (see _check_str)."""
    if not isinstance(name, str):
        raise MessageTypeError(_idx(index), "params", f"name: expected str, got {_type_name(name)}")
    name = PyUnicode_FromObject(name)
    _ready(name)
    if PyUnicode_GET_LENGTH(name) == 0:
        raise MessageError(_idx(index), "params", "a parameter name must not be empty")
    if not isinstance(value, str):
        raise MessageTypeError(
            _idx(index), "params", f"value of {name!r}: expected str, got {_type_name(value)}"
        )
    value = PyUnicode_FromObject(value)
    _ready(value)
    keep.append(name)
    keep.append(value)
    return 0


cdef int _gather_pairs(object params, Py_ssize_t index, list keep) except -1:
    """Structural checks of extra parameters; appends name, value, name, ... to keep.

    ``keep`` owns references to the strings, so their buffers outlive any change
    another thread makes to a mutable ``params`` while the GIL is released.
    """
    cdef object items, item, name, value
    if type(params) is dict:
        # An exact dict iterates like its items() view, without the view.
        for name, value in (<dict>params).items():
            _check_pair(name, value, index, keep)
        return 0
    if type(params) is list or type(params) is tuple:
        items = params
    elif isinstance(params, _Mapping):
        items = params.items()
    elif isinstance(params, (str, bytes, bytearray)) or not hasattr(params, "__iter__"):
        raise MessageTypeError(
            _idx(index), "params", f"expected a mapping or (name, value) pairs, got {_type_name(params)}"
        )
    else:
        items = params
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise MessageTypeError(
                _idx(index), "params", f"expected (name, value) pairs, got {_type_name(item)}"
            )
        name, value = item
        _check_pair(name, value, index, keep)
    return 0


cdef int _check_batch(object batch) except -1:
    # As _codec_py._check_batch: a mapping would be read by key, a str by character.
    if isinstance(batch, _Mapping) or isinstance(batch, str):
        raise TypeError(f"expected a sequence, got {_type_name(batch)}")
    return 0


cdef object _int_index = int.__index__


cdef object _index(object value):
    """As _codec_py._index: operator.index as an exact int, as Python 3.10+ gives it
    (3.9 hands an int subclass back as it is, with its lying comparisons)."""
    if type(value) is int:
        return value
    value = _operator.index(value)
    return value if type(value) is int else _int_index(value)


cdef object _limit(object value, str name):
    """As _codec_py._limit: an exact int (_index) or float; None stays."""
    if value is None or type(value) is int:
        return value
    if isinstance(value, float):
        return float.__float__(value)
    try:
        return _index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {_type_name(value)}") from None


cdef int _check_limits(object start, object length, object max_bytes, object max_count) except -1:
    # Word for word the pure twin's checks, on the caller's objects.
    if not 0 <= start <= length:
        raise ValueError(f"start={start} is outside 0..{length}")
    if max_bytes is not None and max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    if max_count is not None and max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    return 0


cdef Py_ssize_t _byte_limit(object max_bytes) except -2:
    """max_bytes as a C limit: -1 for none. Non-integers compare like the pure twin's
    ``size > max_bytes`` does (NaN and infinity never bind)."""
    if max_bytes is None:
        return -1
    if not isinstance(max_bytes, int):
        if max_bytes != max_bytes or max_bytes == _INF:
            return -1
        max_bytes = _math.floor(max_bytes)
    return PY_SSIZE_T_MAX if max_bytes >= PY_SSIZE_T_MAX else max_bytes


cdef Py_ssize_t _count_limit(object max_count) except -2:
    """max_count as a C limit: -1 for none (``local >= max_count`` for integers)."""
    if max_count is None:
        return -1
    if not isinstance(max_count, int):
        if max_count != max_count or max_count == _INF:
            return -1
        max_count = _math.ceil(max_count)
    return PY_SSIZE_T_MAX if max_count >= PY_SSIZE_T_MAX else max_count


# -- percent-encoding, GIL-free ---------------------------------------------------------


cdef Py_ssize_t _enc_size(const void* data, int kind, Py_ssize_t n, Py_ssize_t* bad) noexcept nogil:
    """Encoded size of a str buffer, or -1 with *bad = index of a lone surrogate.

    n <= MAX_CHARS, so 12 * n cannot overflow.
    """
    cdef Py_ssize_t i, size = 0
    cdef const uint8_t* p1
    cdef const uint16_t* p2
    cdef const uint32_t* p4
    cdef uint32_t c
    if kind == 1:
        p1 = <const uint8_t*>data
        for i in range(n):
            size += SIZE1[p1[i]]
    elif kind == 2:
        p2 = <const uint16_t*>data
        for i in range(n):
            c = p2[i]
            if c < 0x100:
                size += SIZE1[c]
            elif c < 0x800:
                size += 6
            elif c - 0xD800 < 0x800:
                bad[0] = i
                return -1
            else:
                size += 9
    else:
        p4 = <const uint32_t*>data
        for i in range(n):
            c = p4[i]
            if c < 0x100:
                size += SIZE1[c]
            elif c < 0x800:
                size += 6
            elif c < 0x10000:
                if c - 0xD800 < 0x800:
                    bad[0] = i
                    return -1
                size += 9
            else:
                size += 12
    return size


cdef inline char* _pct(char* out, unsigned int b) noexcept nogil:
    out[0] = 37  # '%'
    out[1] = HEX[b >> 4]
    out[2] = HEX[b & 15]
    return out + 3


cdef char* _enc_write(char* out, const void* data, int kind, Py_ssize_t n, Py_ssize_t enc) noexcept nogil:
    """Writes UTF-8 + percent-encoding of a str buffer already sized by _enc_size."""
    cdef Py_ssize_t i
    cdef const uint8_t* p1
    cdef const uint16_t* p2
    cdef const uint32_t* p4
    cdef uint32_t c
    if kind == 1:
        p1 = <const uint8_t*>data
        if enc == n:
            # Every character expands except unreserved ASCII: nothing to escape.
            memcpy(out, p1, <size_t>n)
            return out + n
        for i in range(n):
            c = p1[i]
            if UNRESERVED[c]:
                out[0] = <char>c
                out += 1
            elif c < 0x80:
                out = _pct(out, c)
            else:
                out = _pct(out, 0xC0 | (c >> 6))
                out = _pct(out, 0x80 | (c & 0x3F))
        return out
    if kind == 2:
        p2 = <const uint16_t*>data
        for i in range(n):
            c = p2[i]
            if c < 0x80:
                if UNRESERVED[c]:
                    out[0] = <char>c
                    out += 1
                else:
                    out = _pct(out, c)
            elif c < 0x800:
                out = _pct(out, 0xC0 | (c >> 6))
                out = _pct(out, 0x80 | (c & 0x3F))
            else:
                out = _pct(out, 0xE0 | (c >> 12))
                out = _pct(out, 0x80 | ((c >> 6) & 0x3F))
                out = _pct(out, 0x80 | (c & 0x3F))
        return out
    p4 = <const uint32_t*>data
    for i in range(n):
        c = p4[i]
        if c < 0x80:
            if UNRESERVED[c]:
                out[0] = <char>c
                out += 1
            else:
                out = _pct(out, c)
        elif c < 0x800:
            out = _pct(out, 0xC0 | (c >> 6))
            out = _pct(out, 0x80 | (c & 0x3F))
        elif c < 0x10000:
            out = _pct(out, 0xE0 | (c >> 12))
            out = _pct(out, 0x80 | ((c >> 6) & 0x3F))
            out = _pct(out, 0x80 | (c & 0x3F))
        else:
            out = _pct(out, 0xF0 | (c >> 18))
            out = _pct(out, 0x80 | ((c >> 12) & 0x3F))
            out = _pct(out, 0x80 | ((c >> 6) & 0x3F))
            out = _pct(out, 0x80 | (c & 0x3F))
    return out


cdef int _check_content(object value, object index, str field) except -1:
    """Lone-surrogate check of one str (already type-checked), with the GIL."""
    cdef Py_ssize_t bad = -1
    if _enc_size(PyUnicode_DATA(value), PyUnicode_KIND(value), PyUnicode_GET_LENGTH(value), &bad) < 0:
        raise MessageError(index, field, _surrogate_reason(value, bad))
    return 0


cdef str _surrogate_reason(object value, Py_ssize_t pos):
    return f"contains a lone surrogate U+{ord(value[pos]):04X} at character {pos}"


cdef inline Py_ssize_t _ndigits(Py_ssize_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 10:
        v //= 10
        n += 1
    return n


cdef inline char* _put(char* out, const char* src, Py_ssize_t n) noexcept nogil:
    memcpy(out, src, <size_t>n)
    return out + n


cdef char* _put_key(char* out, const char* open_b, Py_ssize_t open_n, Py_ssize_t local,
                    const char* close_b, Py_ssize_t close_n) noexcept nogil:
    """``[<local>]=`` (or the quoted brackets)."""
    cdef Py_ssize_t nd = _ndigits(local), k
    out = _put(out, open_b, open_n)
    k = nd
    while k > 0:
        k -= 1
        out[k] = <char>(48 + local % 10)
        local //= 10
    out += nd
    return _put(out, close_b, close_n)


cdef inline char* _put_base62(char* out, Py_ssize_t number, Py_ssize_t width) noexcept nogil:
    """``number`` in ``width`` base-62 digits, most significant first: the C twin of
    ``_wire.base62``, the one Python writer (``base62`` below holds it to it). The
    caller makes sure 0 <= number < ID_BASE ** width."""
    cdef Py_ssize_t k = width
    while k > 0:
        k -= 1
        out[k] = ID_DIGIT[number % ID_BASE]
        number //= ID_BASE
    return out + width


def base62(number, width):
    """``_wire.base62`` written by the compiled core's writer (``_put_base62``), for
    the test that holds the two to each other; widths up to 10 (62**10 < 2**63).

    Raises:
        ValueError: as ``_wire.base62``; also for a width over 10.
    """
    if not 0 <= width <= 10:
        raise ValueError(f"the compiled base-62 writer takes 0 to 10 digits, not {width}")
    if number < 0:
        raise ValueError(f"{number} is negative: no base-62 id for it")
    if number >= ID_BASE ** width:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    cdef char buf[10]
    cdef Py_ssize_t w = width
    _put_base62(buf, <Py_ssize_t>number, w)
    return buf[:w].decode("ascii")


cdef inline char* _put_id(Batch* b, char* out, Py_ssize_t m) noexcept nogil:
    """The clientId made for message m: the prefix, then m in ID_SUFFIX base-62
    digits (m < ID_MAX_COUNT: the caller caps the request)."""
    out = _put(out, b.id_prefix, b.id_plen)
    return _put_base62(out, m, ID_SUFFIX)


# -- encoding: the gathered batch -------------------------------------------------------


cdef struct StrRef:
    PyObject* obj        # borrowed: `keep` (or a message tuple in it) owns it
    const void* data     # its PEP 393 buffer
    Py_ssize_t length
    Py_ssize_t enc       # encoded size, set by the size pass
    int kind

cdef struct MsgRef:
    Py_ssize_t first     # its first StrRef; in check order: address, text, subject,
    Py_ssize_t nstr      #   [client_id], then name, value, name, value, ...
    Py_ssize_t fixed     # bytes that do not depend on the strings: names, keys, '&'
    Py_ssize_t size      # encoded size, set by the size pass
    PyObject* client_id  # borrowed (the message tuple is in `keep`); NULL for None
    bint has_client

cdef struct Batch:
    StrRef* strs
    Py_ssize_t nstrs
    Py_ssize_t cap_strs
    MsgRef* msgs
    Py_ssize_t nmsgs
    Py_ssize_t cap_msgs
    const char* id_prefix  # made clientIds: the prefix (ASCII), held by _encode
    Py_ssize_t id_plen
    Py_ssize_t id_n        # a made id's length, prefix and suffix; 0: none are made

cdef struct SizeOut:
    Py_ssize_t taken     # messages that fit
    Py_ssize_t total     # their encoded size, separators included
    Py_ssize_t err_msg   # local index of the failing message
    Py_ssize_t err_str   # its StrRef (relative to `first`) holding a lone surrogate
    Py_ssize_t err_pos   # the surrogate's character index
    int err              # SIZE_*
    int cut              # 1: stopped before the end of the batch (a cut or an error)

cdef enum:
    SIZE_OK = 0
    SIZE_SURROGATE = 1
    SIZE_TOO_LARGE = 2
    SIZE_OVERFLOW = 3


cdef int _reserve(Batch* b, Py_ssize_t nstr) except -1:
    """Room for one more message with nstr strings; MemoryError on failure."""
    cdef Py_ssize_t cap
    cdef void* p
    if nstr > PY_SSIZE_T_MAX // 2 - b.nstrs:
        raise MemoryError()
    if b.nstrs + nstr > b.cap_strs:
        cap = b.cap_strs * 2 if b.cap_strs else 256
        if cap < b.nstrs + nstr:
            cap = b.nstrs + nstr
        if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(StrRef):
            raise MemoryError()
        p = realloc(b.strs, <size_t>cap * sizeof(StrRef))
        if p == NULL:
            raise MemoryError()
        b.strs = <StrRef*>p
        b.cap_strs = cap
    if b.nmsgs + 1 > b.cap_msgs:
        cap = b.cap_msgs * 2 if b.cap_msgs else 64
        if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(MsgRef):
            raise MemoryError()
        p = realloc(b.msgs, <size_t>cap * sizeof(MsgRef))
        if p == NULL:
            raise MemoryError()
        b.msgs = <MsgRef*>p
        b.cap_msgs = cap
    return 0


# The batch's arrays (a StrRef per string, a MsgRef per message: 8 MB for 50,000
# messages) are kept for the next calls. Freed, arrays that big go back to the kernel
# (glibc trims the heap top, and a thread's heap is trimmed as eagerly), and every
# call faulted them in anew, page by page, while growing them by doubling; in two
# threads those faults and the munmaps behind them serialize on the process's
# memory map, and two threads encoded slower than one. A few spare pairs, taken and
# given back with the GIL held (so a pair is never shared), each kept only up to
# BATCH_SPARE_MAX bytes.
cdef enum:
    BATCH_SPARES = 4
    BATCH_SPARE_MAX = 32 << 20
cdef Batch BATCH_SPARE[BATCH_SPARES]
cdef int N_BATCH_SPARE = 0


cdef void _batch_take(Batch* b) noexcept:
    """The largest spare arrays, if any (with the GIL)."""
    global N_BATCH_SPARE
    if N_BATCH_SPARE:
        N_BATCH_SPARE -= 1
        b.strs = BATCH_SPARE[N_BATCH_SPARE].strs
        b.cap_strs = BATCH_SPARE[N_BATCH_SPARE].cap_strs
        b.msgs = BATCH_SPARE[N_BATCH_SPARE].msgs
        b.cap_msgs = BATCH_SPARE[N_BATCH_SPARE].cap_msgs


cdef void _batch_give(Batch* b) noexcept:
    """Keeps b's arrays as a spare, or frees them (with the GIL)."""
    global N_BATCH_SPARE
    cdef int k
    cdef Batch t
    if (N_BATCH_SPARE < BATCH_SPARES and b.strs != NULL and b.msgs != NULL
            and <size_t>b.cap_strs * sizeof(StrRef) + <size_t>b.cap_msgs * sizeof(MsgRef)
            <= BATCH_SPARE_MAX):
        BATCH_SPARE[N_BATCH_SPARE].strs = b.strs
        BATCH_SPARE[N_BATCH_SPARE].cap_strs = b.cap_strs
        BATCH_SPARE[N_BATCH_SPARE].msgs = b.msgs
        BATCH_SPARE[N_BATCH_SPARE].cap_msgs = b.cap_msgs
        # Sorted by size, the largest last: the next call takes the largest.
        k = N_BATCH_SPARE
        N_BATCH_SPARE += 1
        while k > 0 and BATCH_SPARE[k - 1].cap_strs > BATCH_SPARE[k].cap_strs:
            t = BATCH_SPARE[k - 1]
            BATCH_SPARE[k - 1] = BATCH_SPARE[k]
            BATCH_SPARE[k] = t
            k -= 1
    else:
        free(b.strs)
        free(b.msgs)
    b.strs = NULL
    b.msgs = NULL


cdef inline Py_ssize_t _add_str(Batch* b, object s) noexcept:
    """Notes a checked, ready str in the batch; returns a guess of its encoded size.

    The guess only steers how many messages are gathered before sizing them exactly:
    typical texts by kind (ASCII with some spaces, Latin-1, Cyrillic, emoji among
    other text). Too low gathers a few messages more, too high costs another round.
    """
    cdef StrRef* r = &b.strs[b.nstrs]
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    r.obj = <PyObject*>s
    r.data = PyUnicode_DATA(s)
    r.length = n
    r.kind = PyUnicode_KIND(s)
    r.enc = 0
    b.nstrs += 1
    if r.kind == 1:
        return n + (n >> 2) if PyUnicode_IS_ASCII(s) else 2 * n
    return 5 * n if r.kind == 2 else 4 * n


cdef inline Py_ssize_t _sat_add(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # Lower bounds only steer when to stop gathering: saturate instead of failing.
    return PY_SSIZE_T_MAX if a > PY_SSIZE_T_MAX - b else a + b


# -- encoding: the common case, gathered in C -------------------------------------------
#
# Most batches are tuples (or lists) of Message/tuple records of exact str fields with
# no params. Such a message is taken by _fast_msg: plain pointer reads, no reference
# counting, no Python call. It is safe without the GIL when the caller guarantees the
# message outlives the call and cannot change: an exact tuple of messages is
# immutable and the caller holds it, a tuple (or subclass) message is immutable and
# holds its fields, and an exact, ready str never changes type, length, kind or
# buffer. Anything else (a str subclass, params, a wrong type or an empty field) is
# left to the general path, with the GIL, which raises the pure twin's errors.

cdef enum:
    G_END = 0       # reached g.stop (the end, or max_count)
    G_FULL = 1      # the estimate passed max_bytes: size what was gathered
    G_SLOW = 2      # message i needs the general path
    G_NOMEM = 3

cdef struct Gather:
    PyObject* dsubj          # the default subject (checked, ready) or NULL for None
    Py_ssize_t cstart
    Py_ssize_t stop          # one past the last index max_count allows
    Py_ssize_t limit_bytes   # -1: none
    Py_ssize_t open_n
    Py_ssize_t close_n
    Py_ssize_t est           # size estimate of what is gathered (steers the rounds)
    bint any_client
    bint send
    int why                  # G_*


cdef int _reserve_c(Batch* b, Py_ssize_t nstr) noexcept nogil:
    """Room for one more message with nstr strings; -1 when out of memory."""
    cdef Py_ssize_t cap
    cdef void* p
    if nstr > PY_SSIZE_T_MAX // 2 - b.nstrs:
        return -1
    if b.nstrs + nstr > b.cap_strs:
        cap = b.cap_strs * 2 if b.cap_strs else 256
        if cap < b.nstrs + nstr:
            cap = b.nstrs + nstr
        if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(StrRef):
            return -1
        p = realloc(b.strs, <size_t>cap * sizeof(StrRef))
        if p == NULL:
            return -1
        b.strs = <StrRef*>p
        b.cap_strs = cap
    if b.nmsgs + 1 > b.cap_msgs:
        cap = b.cap_msgs * 2 if b.cap_msgs else 64
        if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(MsgRef):
            return -1
        p = realloc(b.msgs, <size_t>cap * sizeof(MsgRef))
        if p == NULL:
            return -1
        b.msgs = <MsgRef*>p
        b.cap_msgs = cap
    return 0


cdef inline Py_ssize_t _ref(Batch* b, PyObject* s) noexcept nogil:
    """_add_str on a borrowed pointer (a plain str): notes it, returns the guess."""
    cdef StrRef* r = &b.strs[b.nstrs]
    cdef Py_ssize_t n = p_LEN(s)
    r.obj = s
    r.data = p_DATA(s)
    r.length = n
    r.kind = p_KIND(s)
    r.enc = 0
    b.nstrs += 1
    if r.kind == 1:
        return n + (n >> 2) if p_IS_ASCII(s) else 2 * n
    return 5 * n if r.kind == 2 else 4 * n


cdef inline int _fast_msg(Batch* b, PyObject* msg, Py_ssize_t local, Gather* g) noexcept nogil:
    """Takes one message of the common form: 1 taken, 0 not common, -1 out of memory."""
    cdef PyObject* address
    cdef PyObject* text
    cdef PyObject* subject
    cdef PyObject* client_id = NULL
    cdef Py_ssize_t n, lb, keylen, fixed
    cdef MsgRef* mr
    if not g.send:
        if not hpg_plain_str(msg, MAX_CHARS):
            return 0
        if _reserve_c(b, 1) < 0:
            return -1
        mr = &b.msgs[b.nmsgs]
        mr.first = b.nstrs
        mr.nstr = 1
        mr.has_client = False
        mr.client_id = NULL
        mr.fixed = N_PROVIDER_ID + g.open_n + _ndigits(local) + g.close_n
        lb = _ref(b, msg)
    else:
        if not hpg_is_tuple(msg):
            return 0
        n = hpg_tuple_size(msg)
        if n < 2 or n > 5:
            return 0
        address = p_TUPLE_ITEM(msg, 0)
        text = p_TUPLE_ITEM(msg, 1)
        if not hpg_plain_str(address, MAX_CHARS) or not hpg_plain_str(text, MAX_CHARS):
            return 0
        subject = p_TUPLE_ITEM(msg, 2) if n > 2 else p_None
        if subject == p_None:
            subject = g.dsubj
            if subject == NULL:
                return 0
        elif not hpg_plain_str(subject, MAX_CHARS):
            return 0
        if n > 3:
            client_id = p_TUPLE_ITEM(msg, 3)
            if client_id == p_None:
                client_id = NULL
            elif not hpg_plain_str(client_id, MAX_CHARS):
                return 0
        if n > 4 and p_TUPLE_ITEM(msg, 4) != p_None:
            return 0
        if _reserve_c(b, 4) < 0:
            return -1
        keylen = g.open_n + _ndigits(local) + g.close_n
        mr = &b.msgs[b.nmsgs]
        mr.first = b.nstrs
        lb = _ref(b, address) + _ref(b, text) + _ref(b, subject)
        fixed = N_SUBJECT + N_ADDRESS + N_TEXT + 2 + 3 * keylen
        mr.client_id = client_id
        mr.has_client = client_id != NULL
        if client_id != NULL:
            g.any_client = True
            lb += _ref(b, client_id)
            fixed += 1 + N_CLIENT_ID + keylen
        elif b.id_n:
            fixed += 1 + N_CLIENT_ID + keylen + b.id_n
        mr.fixed = fixed
        mr.nstr = b.nstrs - mr.first
    b.nmsgs += 1
    g.est = _sat_add(g.est, _sat_add(_sat_add(mr.fixed, lb), 1 if local else 0))
    return 1


cdef Py_ssize_t _gather_fast(Batch* b, PyObject** items, Py_ssize_t base, Py_ssize_t i,
                             Gather* g) noexcept nogil:
    """Takes messages i, i+1, ... (items[i - base], ...) while they are of the common
    form, until g.stop or the estimate passes max_bytes; g.why says why it stopped.
    items must stay valid and unchanged for the whole call (see above)."""
    cdef int r
    cdef Py_ssize_t stop = g.stop, limit = g.limit_bytes, local
    while i < stop:
        local = i - g.cstart
        # The first touch of a message and of its strings is a cache miss: fetch
        # the message 6 ahead, and the strings of the one 3 ahead. (Only messages
        # that exist are touched: items is valid up to g.stop.)
        hpg_prefetch(items, i - base, stop - base)
        r = _fast_msg(b, items[i - base], local, g)
        if r == 0:
            g.why = G_SLOW
            return i
        if r < 0:
            g.why = G_NOMEM
            return i
        i += 1
        if limit >= 0 and g.est > limit:
            g.why = G_FULL
            return i
    g.why = G_END
    return i


cdef void _size_pass(Batch* b, Py_ssize_t m0, Py_ssize_t max_bytes, SizeOut* out) noexcept nogil:
    """Exact sizes and the cut: message by message from m0 (out.total holds the size
    of those before it), surrogates first, then size. out.cut says it stopped early."""
    cdef Py_ssize_t m, s, enc, size, added, total = out.total, bad = -1
    cdef MsgRef* msg
    cdef StrRef* r
    out.err = SIZE_OK
    out.cut = 1
    for m in range(m0, b.nmsgs):
        msg = &b.msgs[m]
        size = msg.fixed
        for s in range(msg.nstr):
            r = &b.strs[msg.first + s]
            enc = _enc_size(r.data, r.kind, r.length, &bad)
            if enc < 0:
                out.err = SIZE_SURROGATE
                out.err_msg = m
                out.err_str = s
                out.err_pos = bad
                out.taken = m
                return
            r.enc = enc
            if enc > PY_SSIZE_T_MAX - size:
                out.err = SIZE_OVERFLOW
                out.taken = m
                return
            size += enc
        msg.size = size
        added = size
        if m > 0:
            if size == PY_SSIZE_T_MAX:
                out.err = SIZE_OVERFLOW
                out.taken = m
                return
            added += 1   # the '&' before it
        if max_bytes >= 0 and (added > max_bytes or total > max_bytes - added):
            out.taken = m
            out.total = total
            if m == 0:
                out.err = SIZE_TOO_LARGE
                out.err_msg = 0
            return
        if added > PY_SSIZE_T_MAX - total:
            out.err = SIZE_OVERFLOW
            out.taken = m
            return
        total += added
    out.taken = b.nmsgs
    out.total = total
    out.cut = 0


cdef char* _fill_send(Batch* b, Py_ssize_t taken, char* out, const char* open_b, Py_ssize_t open_n,
                      const char* close_b, Py_ssize_t close_n) noexcept nogil:
    """Writes the messages in wire order: subject, address, text, clientId, params."""
    cdef Py_ssize_t m, k
    cdef MsgRef* msg
    cdef StrRef* s
    cdef const char* subject = P_SUBJECT
    cdef const char* address = P_ADDRESS
    cdef const char* text = P_TEXT
    cdef const char* client = P_CLIENT_ID
    cdef Py_ssize_t subject_n = N_SUBJECT, address_n = N_ADDRESS
    cdef Py_ssize_t text_n = N_TEXT, client_n = N_CLIENT_ID
    for m in range(taken):
        msg = &b.msgs[m]
        s = &b.strs[msg.first]
        if m:
            out[0] = 38  # '&'
            out += 1
        out = _put(out, subject, subject_n)
        out = _put_key(out, open_b, open_n, m, close_b, close_n)
        out = _enc_write(out, s[2].data, s[2].kind, s[2].length, s[2].enc)
        out[0] = 38
        out = _put(out + 1, address, address_n)
        out = _put_key(out, open_b, open_n, m, close_b, close_n)
        out = _enc_write(out, s[0].data, s[0].kind, s[0].length, s[0].enc)
        out[0] = 38
        out = _put(out + 1, text, text_n)
        out = _put_key(out, open_b, open_n, m, close_b, close_n)
        out = _enc_write(out, s[1].data, s[1].kind, s[1].length, s[1].enc)
        k = 3
        if msg.has_client:
            out[0] = 38
            out = _put(out + 1, client, client_n)
            out = _put_key(out, open_b, open_n, m, close_b, close_n)
            out = _enc_write(out, s[3].data, s[3].kind, s[3].length, s[3].enc)
            k = 4
        elif b.id_n:
            out[0] = 38
            out = _put(out + 1, client, client_n)
            out = _put_key(out, open_b, open_n, m, close_b, close_n)
            out = _put_id(b, out, m)
        while k < msg.nstr:
            out[0] = 38
            out = _enc_write(out + 1, s[k].data, s[k].kind, s[k].length, s[k].enc)
            out = _put_key(out, open_b, open_n, m, close_b, close_n)
            out = _enc_write(out, s[k + 1].data, s[k + 1].kind, s[k + 1].length, s[k + 1].enc)
            k += 2
    return out


cdef char* _fill_status(Batch* b, Py_ssize_t taken, char* out, const char* open_b, Py_ssize_t open_n,
                        const char* close_b, Py_ssize_t close_n) noexcept nogil:
    cdef Py_ssize_t m
    cdef StrRef* s
    cdef const char* name = P_PROVIDER_ID
    cdef Py_ssize_t name_n = N_PROVIDER_ID
    for m in range(taken):
        s = &b.strs[b.msgs[m].first]
        if m:
            out[0] = 38
            out += 1
        out = _put(out, name, name_n)
        out = _put_key(out, open_b, open_n, m, close_b, close_n)
        out = _enc_write(out, s[0].data, s[0].kind, s[0].length, s[0].enc)
    return out


cdef inline char* _fill(Batch* b, Py_ssize_t taken, char* out, const char* open_b, Py_ssize_t open_n,
                       const char* close_b, Py_ssize_t close_n, bint send) noexcept nogil:
    if send:
        return _fill_send(b, taken, out, open_b, open_n, close_b, close_n)
    return _fill_status(b, taken, out, open_b, open_n, close_b, close_n)


cdef inline uint64_t _fnv(uint64_t h, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 1099511628211ULL
    return h


cdef inline const unsigned char* _id_key(Batch* b, Py_ssize_t m, unsigned char* digits,
                                         Py_ssize_t* nbytes, int* kind) noexcept nogil:
    """The effective client id of message m as raw PEP 393 bytes: its clientId's
    buffer, or the id made for it, or the decimal digits of m (a kind-1 str) when it
    sends none. ``digits`` holds at least 24 bytes."""
    cdef MsgRef* msg = &b.msgs[m]
    cdef StrRef* r
    cdef Py_ssize_t nd, k
    if msg.has_client:
        r = &b.strs[msg.first + 3]
        kind[0] = r.kind
        nbytes[0] = r.length * r.kind
        return <const unsigned char*>r.data
    if b.id_n:
        _put_id(b, <char*>digits, m)
        kind[0] = 1
        nbytes[0] = b.id_n
        return digits
    nd = _ndigits(m)
    k = nd
    while k > 0:
        k -= 1
        digits[k] = <unsigned char>(48 + m % 10)
        m //= 10
    kind[0] = 1
    nbytes[0] = nd
    return digits


cdef int _find_duplicate(Batch* b, Py_ssize_t taken, Py_ssize_t* dup, Py_ssize_t* first) noexcept nogil:
    """First message whose effective client id an earlier one already has.

    Returns 1 (with *dup, *first), 0 if all are unique, -1 if out of memory. Two
    exact strs are equal exactly when kind, length and bytes are (PEP 393 strings
    are canonical: the kind is the narrowest that holds the widest character), which
    is what the pure twin's dict compares; the caller uses the dict for subclasses.
    """
    cdef Py_ssize_t cap = 16, mask, m, e, slot, na, ne
    cdef Py_ssize_t* table
    cdef unsigned char da[24]
    cdef unsigned char de[24]
    cdef const unsigned char* pa
    cdef const unsigned char* pe
    cdef int ka, ke, found = 0
    cdef uint64_t h
    while cap < 2 * taken:
        cap *= 2
    if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(Py_ssize_t):
        return -1
    table = <Py_ssize_t*>malloc(<size_t>cap * sizeof(Py_ssize_t))
    if table == NULL:
        return -1
    for slot in range(cap):
        table[slot] = -1
    mask = cap - 1
    for m in range(taken):
        pa = _id_key(b, m, da, &na, &ka)
        h = _fnv(14695981039346656037ULL ^ <uint64_t>ka, pa, na)
        slot = <Py_ssize_t>(h & <uint64_t>mask)
        while table[slot] >= 0:
            e = table[slot]
            pe = _id_key(b, e, de, &ne, &ke)
            if ke == ka and ne == na and memcmp(pe, pa, <size_t>na) == 0:
                dup[0] = m
                first[0] = e
                found = 1
                break
            slot = (slot + 1) & mask
        if found:
            break
        table[slot] = m
    free(table)
    return found


cdef str _send_field(MsgRef* msg, Py_ssize_t s):
    if s < 3:
        return ("address", "text", "subject")[s]
    if s == 3 and msg.has_client:
        return "client_id"
    return "params"


cdef inline bint _as_ssize(object v, Py_ssize_t* out):
    """An exact int that fits a Py_ssize_t, read in C (anything else: False)."""
    cdef int overflow = 0
    cdef long long x
    if type(v) is not int:
        return False
    x = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or x > PY_SSIZE_T_MAX or x < -PY_SSIZE_T_MAX:
        return False
    out[0] = <Py_ssize_t>x
    return True


cdef str _check_id_prefix(object id_prefix):
    """``id_prefix`` (not None) as an exact ``str``, checked as the pure twin does."""
    cdef str prefix
    cdef Py_ssize_t k, n
    cdef const unsigned char* p
    cdef bint ok
    if not isinstance(id_prefix, str):
        raise TypeError(f"id_prefix must be a str or None, got {_type_name(id_prefix)}")
    prefix = str.__str__(id_prefix)   # a subclass cannot change what is sent
    PyUnicode_READY(prefix)
    n = PyUnicode_GET_LENGTH(prefix)
    ok = 1 <= n <= ID_PREFIX_MAX and PyUnicode_IS_ASCII(prefix)
    if ok:
        p = <const unsigned char*>PyUnicode_DATA(prefix)
        for k in range(n):
            if not ID_OK[p[k]]:
                ok = False
                break
    if not ok:
        shown = repr(prefix) if n <= 40 else f"{n} characters"
        raise ValueError(
            f"id_prefix must be 1 to {ID_PREFIX_MAX} characters of "
            f"[0-9A-Za-z], got {shown}"
        )
    return prefix


cdef str _made_id(str prefix, Py_ssize_t m):
    """The clientId made for message m (for error messages)."""
    cdef char buf[24]
    cdef Batch b
    b.id_prefix = <const char*>PyUnicode_DATA(prefix)
    b.id_plen = PyUnicode_GET_LENGTH(prefix)
    _put_id(&b, buf, m)
    return buf[:b.id_plen + ID_SUFFIX].decode("ascii")


# -- _encode's phases: a function each; _encode runs them in order ----------------------


cdef struct Enc:
    # What every phase of one _encode call reads, and what its GIL-free stretches
    # hand back.
    Py_ssize_t cstart        # the first message (start)
    Py_ssize_t stop          # one past the last message max_count allows
    Py_ssize_t limit_bytes   # -1: none
    Py_ssize_t limit_count   # -1: none
    const char* open_p       # b"[" or b"%5B"
    const char* close_p      # b"]=" or b"%5D="
    Py_ssize_t open_n
    Py_ssize_t close_n
    bint send
    bint did_size            # the round was sized in the GIL-free gather stretch
    char* scratch            # a small query written ahead in that stretch, or NULL
    Py_ssize_t scratch_n
    int dup_found            # _find_duplicate's answer, once it ran
    Py_ssize_t dup_at
    Py_ssize_t dup_first

cdef struct Own:
    # A sequence that is not an exact tuple: references to its messages fetched
    # ahead (items[k] is seq[cstart + k]), released at the end of _encode.
    PyObject** items
    Py_ssize_t n
    Py_ssize_t cap


cdef int _encode_limits(object start, object max_bytes, object max_count, Py_ssize_t total,
                        Enc* e) except -1:
    """``start`` and the limits into e (``-1``: no limit). The usual arguments (exact
    ints and None) are checked in C; anything else, and every failure, goes through
    the pure twin's checks word for word."""
    cdef Py_ssize_t v = 0
    if (_as_ssize(start, &e.cstart) and 0 <= e.cstart <= total
            and (max_bytes is None or (_as_ssize(max_bytes, &v) and v >= 1))
            and (max_count is None or (_as_ssize(max_count, &v) and v >= 1))):
        e.limit_bytes = -1 if max_bytes is None else <Py_ssize_t>max_bytes
        e.limit_count = -1 if max_count is None else <Py_ssize_t>max_count
    else:
        _check_limits(start, total, max_bytes, max_count)
        e.cstart = start
        if not 0 <= e.cstart <= total:   # the walk indexes the batch's C array from here
            raise SystemError("hpgfast: start passed its check out of range")
        e.limit_bytes = _byte_limit(max_bytes)
        e.limit_count = _count_limit(max_count)
    return 0


cdef int _fetch_ahead(object seq, Enc* e, Own* own, Py_ssize_t i, Py_ssize_t est,
                      list fetch_exc) except -1:
    """References to the messages from i on, appended to ``own``: about as many as
    can fit (a message is at least 14 bytes encoded), at least 64. What fetching
    raised is kept in ``fetch_exc[0]`` and raised on reaching that message, as the
    pure twin would (now, when no message was fetched)."""
    cdef Py_ssize_t want = e.stop - i, k
    cdef void* p
    cdef object msg
    if fetch_exc[0] is not None:
        raise fetch_exc[0]   # seq[i] failed; reached now
    if e.limit_bytes >= 0 and want > 64 and (e.limit_bytes - est) // 14 + 2 < want:
        want = max(64, (e.limit_bytes - est) // 14 + 2)
    if own.n + want > own.cap:
        if <size_t>(own.n + want) > (<size_t>PY_SSIZE_T_MAX) // sizeof(PyObject*):
            raise MemoryError()
        p = realloc(own.items, <size_t>(own.n + want) * sizeof(PyObject*))
        if p == NULL:
            raise MemoryError()
        own.items = <PyObject**>p
        own.cap = own.n + want
    try:
        for k in range(want):
            msg = PySequence_GetItem(seq, e.cstart + own.n)   # bounds-checked
            Py_INCREF(msg)
            own.items[own.n] = <PyObject*>msg
            own.n += 1
    except Exception as exc:
        fetch_exc[0] = exc
        if i - e.cstart >= own.n:
            raise
    return 0


cdef Py_ssize_t _fast_round(Batch* b, Enc* e, Gather* g, SizeOut* so, PyObject** items,
                            Py_ssize_t base, Py_ssize_t i, Py_ssize_t sized) noexcept nogil:
    """_gather_fast, called without the GIL; when it gathered the whole round, the
    round's size pass in the same stretch. And when that is the last round (the test
    below, with no pending error) and the query is small, the query is written too,
    into a scratch buffer copied into the bytes later: one GIL hand-over per call
    instead of two. For a sender of 8 KB requests in threads, getting the GIL back
    costs more than the copy."""
    cdef char* w
    i = _gather_fast(b, items, base, i, g)
    if g.why == G_FULL or (g.why == G_END and i >= e.stop):
        _size_pass(b, sized, e.limit_bytes, so)
        e.did_size = True
        if (so.err == SIZE_OK and so.total <= SCRATCH_MAX
                and (so.cut or i >= e.stop or e.limit_bytes < 0)):
            e.scratch = <char*>malloc(<size_t>so.total + 1)
            if e.scratch != NULL:
                w = _fill(b, so.taken, e.scratch, e.open_p, e.open_n, e.close_p, e.close_n,
                          e.send)
                e.scratch_n = w - e.scratch
                if g.any_client:
                    e.dup_found = _find_duplicate(b, so.taken, &e.dup_at, &e.dup_first)
    return i


cdef MsgRef* _gather_send(Batch* b, Gather* g, object msg, Py_ssize_t i, Py_ssize_t keylen,
                          object default_subject, list keep, Py_ssize_t* lb) except NULL:
    """A SEND message by the general path: its structure checked as the pure twin
    checks it (rule 1), its strings added to the batch (their length into lb)."""
    cdef Py_ssize_t n, first_pair = 0, npairs, k
    cdef object address, text, subject, client_id, params, name
    cdef MsgRef* mr
    if not isinstance(msg, tuple):
        raise MessageTypeError(
            i, "message", f"expected a Message or a tuple, got {_type_name(msg)}"
        )
    n = len(<tuple>msg)
    if not 2 <= n <= 5:
        raise MessageError(i, "message", f"expected 2 to 5 fields, got {n}")
    address = (<tuple>msg)[0]
    _check_str(address, i, "address")
    text = (<tuple>msg)[1]
    _check_str(text, i, "text")
    subject = (<tuple>msg)[2] if n > 2 else None
    if subject is None:
        if default_subject is None:
            raise MessageError(i, "subject", "required, and no default subject is set")
        subject = default_subject
    else:
        _check_str(subject, i, "subject")
    client_id = (<tuple>msg)[3] if n > 3 else None
    if client_id is not None:
        _check_str(client_id, i, "client_id")
    # A str subclass is sent, compared and shown as the exact str
    # of its characters (its __eq__/__hash__ never asked).
    address = _exact(address, keep)
    text = _exact(text, keep)
    subject = _exact(subject, keep)
    if client_id is not None:
        client_id = _exact(client_id, keep)
    params = (<tuple>msg)[4] if n > 4 else None
    # The tuple is immutable and held (by seq or by `own`): holding
    # it holds its fields. Params may be mutable, so their strings
    # are held one by one.
    npairs = 0
    if params is not None:
        first_pair = len(keep)
        _gather_pairs(params, i, keep)
        npairs = (len(keep) - first_pair) // 2
    for k in range(npairs):
        name = keep[first_pair + 2 * k]
        if name in _RESERVED:
            raise MessageError(i, "params", f"parameter name {name!r} is reserved")
    _reserve(b, 4 + 2 * npairs)
    mr = &b.msgs[b.nmsgs]
    mr.first = b.nstrs
    lb[0] = _add_str(b, address) + _add_str(b, text) + _add_str(b, subject)
    mr.fixed = N_SUBJECT + N_ADDRESS + N_TEXT + 2 + 3 * keylen
    mr.has_client = client_id is not None
    if mr.has_client:
        g.any_client = True
        mr.client_id = <PyObject*>client_id
        lb[0] += _add_str(b, client_id)
        mr.fixed += 1 + N_CLIENT_ID + keylen
    else:
        mr.client_id = NULL
        if b.id_n:
            mr.fixed += 1 + N_CLIENT_ID + keylen + b.id_n
    for k in range(2 * npairs):
        lb[0] = _sat_add(lb[0], _add_str(b, keep[first_pair + k]))
    mr.fixed += npairs * (1 + keylen)
    return mr


cdef MsgRef* _gather_status(Batch* b, object msg, Py_ssize_t i, Py_ssize_t keylen, list keep,
                            Py_ssize_t* lb) except NULL:
    """A STATUS provider id by the general path, checked and added to the batch."""
    cdef MsgRef* mr
    _check_str(msg, i, "provider_id")
    msg = _exact(msg, keep)
    _reserve(b, 1)
    mr = &b.msgs[b.nmsgs]
    mr.first = b.nstrs
    mr.has_client = False
    mr.client_id = NULL
    lb[0] = _add_str(b, msg)
    mr.fixed = N_PROVIDER_ID + keylen
    return mr


cdef int _gather_round(Batch* b, Enc* e, Gather* g, SizeOut* so, Own* own, object seq,
                       bint seq_is_tuple, Py_ssize_t* pi, Py_ssize_t sized,
                       object default_subject, list keep, list fetch_exc) except -1:
    """Phase 1, one round, from message pi[0] (moved on as messages are taken):
    about max_bytes' worth gathered. Messages of the common form are taken by
    _gather_fast, without the GIL when there is enough work (and then sized in the
    same GIL-free stretch); the others, one by one, by the general path, with the
    GIL. An error is raised when the pure twin would reach it; _encode decides."""
    cdef Py_ssize_t i = pi[0], w_end, local, lb = 0
    cdef Py_ssize_t base = 0 if seq_is_tuple else e.cstart
    cdef PyObject** items = hpg_tuple_items(seq) if seq_is_tuple else own.items
    cdef MsgRef* mr
    cdef object msg
    while i < e.stop:
        if not seq_is_tuple and i - e.cstart >= own.n:
            _fetch_ahead(seq, e, own, i, g.est, fetch_exc)
            items = own.items
        w_end = e.stop if seq_is_tuple else min(e.stop, e.cstart + own.n)
        g.stop = w_end
        if w_end - i >= 16 and (e.limit_bytes < 0 or e.limit_bytes - g.est >= NOGIL_ENCODE_BYTES):
            with nogil:
                i = _fast_round(b, e, g, so, items, base, i, sized)
        else:
            i = _gather_fast(b, items, base, i, g)
        pi[0] = i
        if g.why == G_NOMEM:
            raise MemoryError()
        if g.why == G_FULL:
            break
        if g.why == G_END:
            continue
        # -- the general path: message i, with the GIL -----------------------------
        msg = <object>items[i - base]
        local = i - e.cstart
        keylen = e.open_n + _ndigits(local) + e.close_n
        if e.send:
            mr = _gather_send(b, g, msg, i, keylen, default_subject, keep, &lb)
        else:
            mr = _gather_status(b, msg, i, keylen, keep, &lb)
        mr.nstr = b.nstrs - mr.first
        b.nmsgs += 1
        g.est = _sat_add(g.est, _sat_add(_sat_add(mr.fixed, lb), 1 if local else 0))
        i += 1
        pi[0] = i
        if e.limit_bytes >= 0 and g.est > e.limit_bytes:
            break
    return 0


cdef int _raise_size_error(Batch* b, SizeOut* so, bint send, Py_ssize_t cstart,
                           object max_bytes) except -1:
    """Phase 2's verdict: a lone surrogate, a first message too large, an overflow."""
    cdef MsgRef* mr
    cdef Py_ssize_t k
    if so.err == SIZE_SURROGATE:
        mr = &b.msgs[so.err_msg]
        k = mr.first + so.err_str
        field = _send_field(mr, so.err_str) if send else "provider_id"
        raise MessageError(cstart + so.err_msg, field,
                           _surrogate_reason(<object>b.strs[k].obj, so.err_pos))
    if so.err == SIZE_TOO_LARGE:
        raise MessageTooLarge(
            cstart,
            "message" if send else "provider_id",
            f"needs {b.msgs[0].size} bytes encoded, more than max_bytes={max_bytes}",
        )
    if so.err == SIZE_OVERFLOW:
        raise OverflowError("the encoded request would be too large")
    return 0


cdef bytes _write_query(Batch* b, Enc* e, SizeOut* so, bint check_ids):
    """Phase 3: one bytes object of the exact size, filled without the GIL (or the
    scratch query the gather stretch wrote, copied), and the duplicate check."""
    cdef bytes out
    cdef char* w
    if e.scratch != NULL:
        # Written in the GIL-free stretch above (the duplicate check done too).
        if e.scratch_n != so.total:
            raise SystemError("hpgfast: encoded size mismatch")
        out = PyBytes_FromStringAndSize(e.scratch, so.total)
        w = PyBytes_AS_STRING(out) + so.total
    elif so.total >= NOGIL_ENCODE_BYTES:
        out = PyBytes_FromStringAndSize(NULL, so.total)
        w = PyBytes_AS_STRING(out)
        with nogil:
            w = _fill(b, so.taken, w, e.open_p, e.open_n, e.close_p, e.close_n, e.send)
            if check_ids:
                e.dup_found = _find_duplicate(b, so.taken, &e.dup_at, &e.dup_first)
    else:
        out = PyBytes_FromStringAndSize(NULL, so.total)
        w = PyBytes_AS_STRING(out)
        w = _fill(b, so.taken, w, e.open_p, e.open_n, e.close_p, e.close_n, e.send)
        if check_ids:
            e.dup_found = _find_duplicate(b, so.taken, &e.dup_at, &e.dup_first)
    if w - PyBytes_AS_STRING(out) != so.total:
        raise SystemError("hpgfast: encoded size mismatch")
    if e.dup_found < 0:
        raise MemoryError()
    return out


cdef int _raise_duplicate(Batch* b, Enc* e, str prefix) except -1:
    """The MessageError for message dup_at, whose effective client id dup_first has."""
    cdef MsgRef* mr = &b.msgs[e.dup_at]
    effective = (<object>mr.client_id if mr.has_client
                 else _made_id(prefix, e.dup_at) if b.id_n else str(e.dup_at))
    raise MessageError(
        e.cstart + e.dup_at,
        "client_id",
        f"client id {effective!r} is already used in this request "
        f"by message {e.cstart + e.dup_first}",
    )


cdef object _encode(object seq, object start, object max_bytes, object max_count,
                    object default_subject, object quote_brackets, bint send,
                    object id_prefix=None):
    """encode_send (send=True) and encode_status: the four phases described above,
    in their order (each is a function above)."""
    cdef Py_ssize_t total, i, sized, k
    cdef list keep = []          # owns the strings a StrRef points into, but the
                                 # fields of a held message tuple (see _gather_send)
    cdef list fetch_exc = [None] # what seq[fetched] raised (not a tuple seq)
    cdef object pending = None   # structural error of the first message not gathered
    cdef str prefix = None
    cdef bytes open_b, close_b, out
    cdef Enc e
    cdef Batch b
    cdef SizeOut so
    cdef Gather g
    cdef Own own
    cdef bint seq_is_tuple = type(seq) is tuple
    # The arguments as _codec_py._limits makes them (exact ints, or floats), in its
    # order, before the batch's length is asked.
    _check_batch(seq)
    start = _index(start)
    max_bytes = _limit(max_bytes, "max_bytes")
    max_count = _limit(max_count, "max_count")
    total = len(seq)
    _encode_limits(start, max_bytes, max_count, total, &e)
    if send and default_subject is not None:
        _check_str(default_subject, -1, "default_subject")
        default_subject = _exact(default_subject, keep)
        _check_content(default_subject, None, "default_subject")
    if id_prefix is not None:
        prefix = _check_id_prefix(id_prefix)
        # With made ids, a request stops where the suffixes run out, as max_count would.
        if e.limit_count < 0 or e.limit_count > ID_MAX_COUNT:
            e.limit_count = ID_MAX_COUNT
    if quote_brackets:
        open_b, close_b = b"%5B", b"%5D="
    else:
        open_b, close_b = b"[", b"]="
    e.open_p = PyBytes_AS_STRING(open_b)
    e.close_p = PyBytes_AS_STRING(close_b)
    e.open_n = PyBytes_GET_SIZE(open_b)
    e.close_n = PyBytes_GET_SIZE(close_b)
    e.send = send
    e.scratch = NULL
    e.scratch_n = 0
    e.dup_found = 0
    e.dup_at = e.dup_first = -1
    e.stop = (total if e.limit_count < 0 or e.limit_count >= total - e.cstart
              else e.cstart + e.limit_count)

    b.strs = NULL
    b.msgs = NULL
    b.nstrs = b.cap_strs = b.nmsgs = b.cap_msgs = 0
    b.id_prefix = NULL
    b.id_plen = b.id_n = 0
    if prefix is not None:
        b.id_prefix = <const char*>PyUnicode_DATA(prefix)   # ASCII: one byte a character
        b.id_plen = PyUnicode_GET_LENGTH(prefix)
        b.id_n = b.id_plen + ID_SUFFIX
    g.dsubj = <PyObject*>default_subject if default_subject is not None else NULL
    g.cstart = e.cstart
    g.limit_bytes = e.limit_bytes
    g.open_n = e.open_n
    g.close_n = e.close_n
    g.any_client = False
    g.send = send
    g.why = G_END
    # The messages as a C array: an exact tuple's own items (it is immutable and the
    # caller holds it), or, for any other sequence, references fetched ahead.
    own.items = NULL
    own.n = own.cap = 0
    try:
        _batch_take(&b)   # given back (or freed) in the finally below
        # -- phase 1: structure, and where every string's buffer is ------------------
        # (in rounds: gather about max_bytes' worth, size it exactly, and gather on
        # only if all of it fitted; messages past the cut are rarely touched).
        i = e.cstart
        so.total = 0
        so.taken = 0
        while True:
            g.est = so.total
            sized = b.nmsgs
            e.did_size = False
            try:
                _gather_round(&b, &e, &g, &so, &own, seq, seq_is_tuple, &i, sized,
                              default_subject, keep, fetch_exc)
            except Exception as exc:
                # The pure twin would raise this only on reaching message i; an
                # earlier message may still be cut, too large or hold a surrogate.
                pending = exc

            # -- phase 2, without the GIL: exact sizes, surrogates, the cut ------------
            if not e.did_size:
                if g.est - so.total >= NOGIL_ENCODE_BYTES:
                    with nogil:
                        _size_pass(&b, sized, e.limit_bytes, &so)
                else:
                    _size_pass(&b, sized, e.limit_bytes, &so)
            if (so.cut or pending is not None or i >= total or e.limit_bytes < 0
                    or (e.limit_count >= 0 and i - e.cstart >= e.limit_count)):
                break
            # All gathered messages fit and more remain (the guess was low): gather on.

        _raise_size_error(&b, &so, send, e.cstart, max_bytes)
        if so.taken == b.nmsgs and pending is not None:
            raise pending

        # -- phase 3: one bytes object of the exact size, filled without the GIL -------
        out = _write_query(&b, &e, &so, g.any_client)
        if e.dup_found:
            _raise_duplicate(&b, &e, prefix)
        return out, e.cstart + so.taken
    finally:
        _batch_give(&b)
        free(e.scratch)
        for k in range(own.n):
            Py_DECREF(<object>own.items[k])
        free(own.items)


def encode_send(messages, *, start=0, max_bytes=None, max_count=None, default_subject=None,
                quote_brackets=False, id_prefix=None):
    """Encode ``messages[start:]`` as a SEND query, as many as fit.

    Args:
        messages: ``Message`` records, or tuples of the same 2 to 5 fields.
        start: the first message to encode; indexes in the query start at 0 anyway.
        max_bytes: the query may not be longer than this; stop before the message
            that would pass it.
        max_count: at most this many messages.
        default_subject: the subject of messages whose own is ``None``.
        quote_brackets: send ``text%5B0%5D`` instead of ``text[0]``.
        id_prefix: 1 to 17 characters of ``[0-9A-Za-z]``: every message without a
            ``client_id`` is sent with ``clientId[k]=<id_prefix><k>``, k its index
            in the request in 3 base-62 digits (``_wire.client_id_suffixes``); a
            request then holds at most ``_wire.ID_MAX_COUNT`` (238,328) messages.

    Returns:
        ``(query, next)``: the query without credentials, and the index of the first
        message left out (``len(messages)`` when all were taken).

    Raises:
        MessageTypeError: a field of the wrong type (names the message and field).
        MessageError: an empty required field, a lone surrogate, a reserved parameter
            name, or two messages of the request with the same client id.
        MessageTooLarge: a message that does not fit into ``max_bytes`` alone.
        ValueError: a bad ``start``, limit or ``id_prefix``.
        TypeError: an ``id_prefix`` that is not a ``str``.
    """
    return _encode(messages, start, max_bytes, max_count, default_subject, quote_brackets, True,
                   id_prefix)


def sent_ids(messages, start, end, id_prefix=None):
    """The clientId the platform answers with for each of ``messages[start:end]``.

    See ``_codec_py.sent_ids``: the same checks, in the same order, and the same
    ids (a made one as ``_put_id`` writes it into the query, an index in decimal).
    One pass in C: the per-message list work of the pure twin (a slice, a map, a
    ``str`` concatenation per made id) was a sixth of the client's CPU at 8 KiB
    requests.
    """
    cdef Py_ssize_t cstart, count, total, i, k, n, v
    cdef str prefix = None
    cdef char buf[24]
    cdef Batch b
    cdef object msg, cid
    cdef list ids
    cdef bint fast = type(messages) is list or type(messages) is tuple
    b.id_prefix = NULL
    b.id_plen = 0
    _check_batch(messages)
    start = _index(start)
    end = _index(end)
    total = len(messages)
    if not 0 <= start <= end <= total:
        raise ValueError(f"start={start} and end={end} are not within 0..{total}")
    if id_prefix is not None:
        prefix = _check_id_prefix(id_prefix)
    cstart = start
    count = <Py_ssize_t>end - cstart
    # The walk below reads a list's or tuple's C array from cstart: the span is
    # checked again on the C values, whatever the objects' comparisons said.
    if cstart < 0 or count < 0 or count > total - cstart:
        raise SystemError("hpgfast: the span passed its check out of range")
    if prefix is not None:
        if count > ID_MAX_COUNT:
            raise ValueError(f"{count} messages: made clientIds number at most {ID_MAX_COUNT}")
        b.id_prefix = <const char*>PyUnicode_DATA(prefix)   # checked ASCII
        b.id_plen = PyUnicode_GET_LENGTH(prefix)
    ids = [None] * count
    for k in range(count):
        i = cstart + k
        # No Python code runs between two items (but to raise), so a list cannot
        # change under the walk; its size is read afresh all the same.
        if fast and 0 <= i < hpg_seq_size(messages):
            msg = hpg_seq_item(messages, i)
        else:
            # Not messages[i]: built with boundscheck=False, Cython reads an exact
            # list's or tuple's item there without checking the index. The call
            # Python makes for messages[i], which checks it (IndexError, as the twin).
            msg = PyObject_GetItem(messages, i)
        if not isinstance(msg, tuple):   # the real type, as the twin's _is()
            raise MessageTypeError(
                i, "message", f"expected a Message or a tuple, got {_type_name(msg)}"
            )
        n = hpg_tuple_size(<PyObject*>msg)   # its real items, as tuple.__len__
        if not 2 <= n <= 5:
            raise MessageError(i, "message", f"expected 2 to 5 fields, got {n}")
        cid = <object>p_TUPLE_ITEM(<PyObject*>msg, 3) if n > 3 else None
        if cid is not None:
            _check_str(cid, i, "client_id")
            ids[k] = cid if type(cid) is str else PyUnicode_FromObject(cid)
        elif prefix is not None:
            _put_id(&b, buf, k)
            ids[k] = hpg_ascii(buf, b.id_plen + ID_SUFFIX)
        else:
            n = _ndigits(k)
            v = k
            while n > 0:   # k in decimal, as str(k)
                n -= 1
                buf[n] = <char>(48 + v % 10)
                v //= 10
            ids[k] = hpg_ascii(buf, _ndigits(k))
    return ids


def encode_status(provider_ids, *, start=0, max_bytes=None, max_count=None, quote_brackets=False):
    """Encode ``provider_ids[start:]`` as a STATUS query, as many as fit.

    Returns ``(query, next)`` as ``encode_send`` does: ``providerId[0]=..&..``.

    Raises:
        MessageTypeError: an id that is not a ``str``.
        MessageError: an empty id or one with a lone surrogate.
        MessageTooLarge: an id that does not fit into ``max_bytes`` alone.
    """
    return _encode(provider_ids, start, max_bytes, max_count, None, quote_brackets, False)


def encode_params(pairs):
    """Encode request-level parameters (credentials, ``priority``, ...): ``a=1&b=2``.

    Names and values are ``str``; names may not be empty. Errors name the parameter
    (``MessageError.index`` is ``None``).
    """
    # Small (a handful of request-level pairs): done with the GIL, in C all the same.
    cdef list keep = []
    cdef Py_ssize_t k, n, total = 0, enc, bad
    cdef object s
    cdef bytes out
    cdef char* w
    _gather_pairs(pairs, -1, keep)
    n = len(keep)
    for k in range(n):
        s = keep[k]
        bad = -1
        enc = _enc_size(PyUnicode_DATA(s), PyUnicode_KIND(s), PyUnicode_GET_LENGTH(s), &bad)
        if enc < 0:
            raise MessageError(None, "params", _surrogate_reason(s, bad))
        # each string: its encoding plus one '=' or '&' (none after the last)
        if enc > PY_SSIZE_T_MAX - total - 1:
            raise OverflowError("the encoded parameters would be too large")
        total += enc + 1
    if n:
        total -= 1
    out = PyBytes_FromStringAndSize(NULL, total)
    w = PyBytes_AS_STRING(out)
    for k in range(n):
        s = keep[k]
        if k:
            w[0] = 61 if k % 2 else 38  # '=' after a name, '&' after a value
            w += 1
        enc = _enc_size(PyUnicode_DATA(s), PyUnicode_KIND(s), PyUnicode_GET_LENGTH(s), &bad)
        w = _enc_write(w, PyUnicode_DATA(s), PyUnicode_KIND(s), PyUnicode_GET_LENGTH(s), enc)
    if w - PyBytes_AS_STRING(out) != total:
        raise SystemError("hpgfast: encoded size mismatch")
    return out


# -- parsing ----------------------------------------------------------------------------


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t length

cdef struct Line:
    Py_ssize_t number        # 1-based, counting every LF-separated piece
    int err                  # PERR_*: the line's fault (only collected by read_*)
    Span whole               # the stripped line, set only when err is
    Span f[5]
    signed char intern[5]    # index into INTERN_*, or -1
    unsigned char ascii[5]   # 1: the field is ASCII (built without a decoder)
    unsigned char date_same  # 1: same 19 date bytes as the previous dated line
    unsigned short dslot     # the date's slot in _parse's datetime cache
    uint64_t dkey            # the date's fields, packed (_date): that slot's key
    Py_ssize_t rec           # read_send_columns: the line's record, or -1 (faulty)
    unsigned char slow       # SLOW_*: fields left to hpgfast._fields (whole is set)

cdef enum:
    PERR_NONE = 0
    PERR_EMPTY_CODE = 2
    PERR_GARBLED_CODE = 3
    PERR_UTF8 = 4
    PERR_GARBLED_STATUS = 5
    PERR_DATE = 6

# A field an outcome does not depend on, not of the usual shape: read (with the GIL,
# by _fields, as the pure twin reads it) on the record loop, never costing the line.
cdef enum:
    SLOW_DATE = 1            # a STATUS time not yyyy.MM.dd HH:mm:ss (or impossible)
    SLOW_TEXT = 2            # free text (the last field) that is not UTF-8

cdef struct Scan:
    const unsigned char* data
    Py_ssize_t size
    Py_ssize_t pos                # start of the next piece; > size when done
    Py_ssize_t number             # number of the last piece read
    int nfields                   # the last one is the rest of the line
    bint collect                  # read_*: keep faulty lines in the output, go on
    const unsigned char* last_date
    const unsigned char* day_p    # the last good day read (_day), or NULL
    uint64_t day_key              # its year, month and day, packed as in dkey
    int day_seconds               # 86400 x its day of the month
    int err                       # parse_*: the fault that stopped the scan


cdef int _utf8(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """1: ASCII, 0: valid non-ASCII UTF-8, -1: invalid.

    Exactly as strict as ``bytes.decode("utf-8")`` (Unicode table 3-7): no overlong
    forms (C0, C1, E0 80..9F, F0 80..8F), no encoded surrogates (ED A0..BF), nothing
    above U+10FFFF (F4 90.., F5..FF), no stray or missing continuation bytes.
    """
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    cdef unsigned char c, c1
    cdef int ascii = 1
    while i < n:
        while i + 8 <= n:
            memcpy(&w, p + i, 8)
            if w & 0x8080808080808080ULL:
                break
            i += 8
        if i >= n:
            break
        c = p[i]
        if c < 0x80:
            i += 1
            continue
        ascii = 0
        if c < 0xC2:
            return -1
        if c < 0xE0:
            if i + 1 >= n or (p[i + 1] & 0xC0) != 0x80:
                return -1
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return -1
            c1 = p[i + 1]
            if c == 0xE0:
                if c1 < 0xA0 or c1 > 0xBF:
                    return -1
            elif c == 0xED:
                if c1 < 0x80 or c1 > 0x9F:
                    return -1
            elif (c1 & 0xC0) != 0x80:
                return -1
            if (p[i + 2] & 0xC0) != 0x80:
                return -1
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return -1
            c1 = p[i + 1]
            if c == 0xF0:
                if c1 < 0x90 or c1 > 0xBF:
                    return -1
            elif c == 0xF4:
                if c1 < 0x80 or c1 > 0x8F:
                    return -1
            elif (c1 & 0xC0) != 0x80:
                return -1
            if (p[i + 2] & 0xC0) != 0x80 or (p[i + 3] & 0xC0) != 0x80:
                return -1
            i += 4
        else:
            return -1
    return ascii


cdef inline int _intern_find(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int k
    # Cheap rejections first: ids are mostly digits, which start no code or status.
    if n >= 64 or not INTERN_FIRST[p[0]] or not (INTERN_LENGTHS >> n) & 1:
        return -1
    # Only the strings of this length and first byte (a chain of one, mostly): a
    # scan of all of them was a fifth of the STATUS scan.
    k = INTERN_HEAD[n][p[0]]
    while k >= 0:
        if _same(<const unsigned char*>INTERN_PTR[k], p, n):
            return k
        k = INTERN_NEXT[k]
    return -1


cdef inline bint _same(const unsigned char* a, const unsigned char* b, Py_ssize_t n) noexcept nogil:
    # Codes and statuses are short: up to 16 bytes, two loads from each side (the
    # second overlapping the first, both inside the n bytes) beat a call to memcmp.
    cdef Py_ssize_t i
    cdef uint64_t x, y
    cdef uint32_t u, v
    if n >= 8:
        if n > 16:
            return memcmp(a, b, <size_t>n) == 0
        memcpy(&x, a, 8)
        memcpy(&y, b, 8)
        if x != y:
            return False
        memcpy(&x, a + n - 8, 8)
        memcpy(&y, b + n - 8, 8)
        return x == y
    if n >= 4:
        memcpy(&u, a, 4)
        memcpy(&v, b, 4)
        if u != v:
            return False
        memcpy(&u, a + n - 4, 4)
        memcpy(&v, b + n - 4, 4)
        return u == v
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


cdef inline bint _token_ok(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not CODE_OK[p[i]]:
            return False
    return True


cdef inline int _d2(const unsigned char* p) noexcept nogil:
    """Two ASCII digits as a number, or -1."""
    if p[0] < 48 or p[0] > 57 or p[1] < 48 or p[1] > 57:
        return -1
    return (p[0] - 48) * 10 + (p[1] - 48)


cdef bint _day(const unsigned char* p, Scan* sc) noexcept nogil:
    """The 11 bytes ``yyyy.MM.dd `` or ``yyyy-MM-dd `` at p name a real day (years
    1..9999): kept in sc.day_* (the bytes, and the numbers) when they do."""
    cdef int y1, y2, mo, d, dim
    cdef unsigned char sep = p[4]
    if (sep != 46 and sep != 45) or p[7] != sep or p[10] != 32:
        return False
    y1 = _d2(p)
    y2 = _d2(p + 2)
    mo = _d2(p + 5)
    d = _d2(p + 8)
    if y1 < 0 or y2 < 0 or mo < 1 or mo > 12 or d < 1:
        return False
    y1 = y1 * 100 + y2
    if y1 < 1:
        return False
    if mo == 2:
        dim = 29 if (y1 % 4 == 0 and (y1 % 100 != 0 or y1 % 400 == 0)) else 28
    elif mo == 4 or mo == 6 or mo == 9 or mo == 11:
        dim = 30
    else:
        dim = 31
    if d > dim:
        return False
    sc.day_p = p
    sc.day_key = (<uint64_t>y1 << 40) | (<uint64_t>mo << 32) | (<uint64_t>d << 24)
    sc.day_seconds = 86400 * d
    return True


cdef inline bint _same8(const unsigned char* a, const unsigned char* b) noexcept nogil:
    cdef uint64_t x, y
    memcpy(&x, a, 8)
    memcpy(&y, b, 8)
    return x == y


cdef inline bint _same11(const unsigned char* a, const unsigned char* b) noexcept nogil:
    """The 11 bytes of a day (``yyyy.MM.dd ``) at a and b are equal: two
    overlapping 8-byte compares, not a call to memcmp."""
    return _same8(a, b) and _same8(a + 3, b + 3)


cdef bint _date(Scan* sc, const unsigned char* p, Py_ssize_t n, Line* ln) noexcept nogil:
    """``yyyy.MM.dd HH:mm:ss`` or ``yyyy-MM-dd HH:mm:ss`` naming a real moment,
    as ``datetime()`` accepts it (years 1..9999, no second 60).

    The lines of a reply mostly share their day: the day's 11 bytes are read and
    checked once, and later lines with the same bytes take its numbers from sc.
    Sets the line's ``dkey`` (every field, packed: year << 40, month << 32, day <<
    24, hour << 16, minute << 8, second) and ``dslot`` (its place in _parse's
    datetime cache).
    """
    cdef int h, mi, s
    if n != 19:
        return False
    if not (sc.day_p != NULL and _same11(sc.day_p, p)) and not _day(p, sc):
        return False
    if p[13] != 58 or p[16] != 58:
        return False
    h = _d2(p + 11)
    mi = _d2(p + 14)
    s = _d2(p + 17)
    if h < 0 or h > 23 or mi < 0 or mi > 59 or s < 0 or s > 59:
        return False
    ln.dkey = sc.day_key | (<uint64_t>h << 16) | (<uint64_t>mi << 8) | <uint64_t>s
    # Seconds since the month began, modulo the cache: the dates of any window of
    # up to 2 h 16 min (DATE_CACHE seconds) all get slots of their own.
    ln.dslot = <unsigned short>((sc.day_seconds + 3600 * h + 60 * mi + s) & (DATE_CACHE - 1))
    return True


cdef inline object _datetime_of(uint64_t key, object tz):
    """The datetime of a packed date (a line's dkey)."""
    return datetime_new(<int>(key >> 40), <int>((key >> 32) & 0xFF), <int>((key >> 24) & 0xFF),
                        <int>((key >> 16) & 0xFF), <int>((key >> 8) & 0xFF), <int>(key & 0xFF),
                        0, tz)


cdef inline bint _text_field(Scan* sc, Line* ln, int k, bint line_ascii,
                             bint tolerant=False) noexcept nogil:
    cdef const unsigned char* p = sc.data + ln.f[k].start
    cdef Py_ssize_t n = ln.f[k].length
    cdef int u
    ln.intern[k] = -1
    ln.ascii[k] = 1
    if n == 0:
        return True
    # The line scan saw every byte already: an ASCII line needs no second look.
    u = 1 if line_ascii else _utf8(p, n)
    if u < 0:
        if tolerant:
            # Free text: not UTF-8 costs only itself (read by _fields later).
            ln.slow |= SLOW_TEXT
            ln.ascii[k] = 0
            return True
        ln.err = PERR_UTF8
        return False
    ln.ascii[k] = <unsigned char>u
    if u:
        ln.intern[k] = <signed char>_intern_find(p, n)
    return True


cdef inline bint _same19(const unsigned char* a, const unsigned char* b) noexcept nogil:
    """The 19 bytes of a date and time at a and b are equal: the day's 11, then
    the time's 8 (three 8-byte compares in all)."""
    return _same11(a, b) and _same8(a + 11, b + 11)


cdef inline bint _status_fast(Scan* sc, Line* ln, Py_ssize_t s, Py_ssize_t e,
                              Py_ssize_t* seps) noexcept nogil:
    """A STATUS line of the usual shape, read as _scan_line reads it: ASCII (the
    caller checked), four separators, a known code and a known status, and a good
    date (or none). False for any other line, with nothing changed (left to
    _scan_line)."""
    cdef const unsigned char* d = sc.data
    cdef const unsigned char* q
    cdef int k, st
    cdef Py_ssize_t j, n
    if seps[0] == s or seps[2] == seps[1] + 1:
        return False
    k = _code_find(d + s, seps[0] - s)
    if k < 0:
        return False
    st = _intern_find(d + seps[1] + 1, seps[2] - seps[1] - 1)
    if st < 0:
        return False
    ln.date_same = 0
    n = seps[3] - seps[2] - 1
    q = d + seps[2] + 1
    if n:
        if sc.last_date != NULL and n == 19 and _same19(sc.last_date, q):
            ln.date_same = 1
        elif not _date(sc, q, n, ln):
            return False
    ln.f[0].start = s
    ln.f[0].length = seps[0] - s
    ln.f[1].start = seps[0] + 1
    ln.f[1].length = seps[1] - seps[0] - 1
    ln.f[2].start = seps[1] + 1
    ln.f[2].length = seps[2] - seps[1] - 1
    ln.f[3].start = seps[2] + 1
    ln.f[3].length = n
    # The reason is the rest of the line, ';' included, less trailing ';'s.
    j = e
    while j > seps[3] + 1 and d[j - 1] == 59:
        j -= 1
    ln.f[4].start = seps[3] + 1
    ln.f[4].length = j - seps[3] - 1
    ln.intern[0] = <signed char>k
    ln.intern[1] = <signed char>_intern_find(d + ln.f[1].start, ln.f[1].length) if ln.f[1].length else -1
    ln.intern[2] = <signed char>st
    ln.intern[3] = -1
    ln.intern[4] = <signed char>_intern_find(d + ln.f[4].start, ln.f[4].length) if ln.f[4].length else -1
    ln.ascii[0] = ln.ascii[1] = ln.ascii[2] = ln.ascii[3] = ln.ascii[4] = 1
    if n:
        sc.last_date = q
    return True


cdef bint _scan_line(Scan* sc, Line* ln, Py_ssize_t s, Py_ssize_t e, Py_ssize_t* seps,
                     int nseps, bint line_ascii) noexcept nogil:
    """Fields and checks of one stripped, non-blank line, in the pure twin's order.

    seps: positions of the line's first separators (up to nfields - 1 of them; all
    lie inside [s, e), since stripping never removes a ';'). line_ascii: no byte of
    the line is 0x80 or above. A fault is left in ln.err.
    """
    cdef const unsigned char* d = sc.data
    cdef const unsigned char* q
    cdef Py_ssize_t cur = s, j
    cdef int k, nf = sc.nfields
    for k in range(nf):
        if k < nseps:
            ln.f[k].start = cur
            ln.f[k].length = seps[k] - cur
            cur = seps[k] + 1
        elif k == nseps:
            ln.f[k].start = cur
            ln.f[k].length = e - cur
        else:
            ln.f[k].start = e
            ln.f[k].length = 0
    # The last field is the rest of the line, ';' included, less trailing ';'s.
    j = ln.f[nf - 1].length
    while j > 0 and d[ln.f[nf - 1].start + j - 1] == 59:
        j -= 1
    ln.f[nf - 1].length = j
    # code
    if ln.f[0].length == 0:
        ln.err = PERR_EMPTY_CODE
        return False
    # A known code is a good token: the byte check only for the others.
    ln.intern[0] = <signed char>_intern_find(d + ln.f[0].start, ln.f[0].length)
    if ln.intern[0] < 0 and not _token_ok(d + ln.f[0].start, ln.f[0].length):
        ln.err = PERR_GARBLED_CODE
        return False
    ln.ascii[0] = 1
    if nf == 4:
        return (_text_field(sc, ln, 1, line_ascii) and _text_field(sc, ln, 2, line_ascii)
                and _text_field(sc, ln, 3, line_ascii, True))
    if not _text_field(sc, ln, 1, line_ascii):
        return False
    # status
    ln.intern[2] = -1
    ln.ascii[2] = 1
    if ln.f[2].length:
        ln.intern[2] = <signed char>_intern_find(d + ln.f[2].start, ln.f[2].length)
        if ln.intern[2] < 0 and not _token_ok(d + ln.f[2].start, ln.f[2].length):
            ln.err = PERR_GARBLED_STATUS
            return False
    # date and time
    ln.date_same = 0
    if ln.f[3].length:
        q = d + ln.f[3].start
        if sc.last_date != NULL and ln.f[3].length == 19 and _same19(sc.last_date, q):
            ln.date_same = 1
            sc.last_date = q
        elif _date(sc, q, ln.f[3].length, ln):
            sc.last_date = q
        else:
            # Another shape, or no such moment: read by _fields on the record loop;
            # sc.last_date stays the last date read here (and so does last_when).
            ln.slow |= SLOW_DATE
    return _text_field(sc, ln, 4, line_ascii, True)


cdef unsigned char SEP_BYTE = _wire.FIELD_SEPARATOR[0]
cdef unsigned char OK_0 = ord(_wire.Code.OK[0])    # "ok", checked by _code_find first
cdef unsigned char OK_1 = ord(_wire.Code.OK[1])
if len(_wire.Code.OK) != 2:
    raise ImportError("hpgfast._wire.Code.OK must be two ASCII characters")
cdef uint64_t _probe = 0
memcpy(&_probe, b"\x01\x00\x00\x00\x00\x00\x00\x00", 8)
if _probe != 1:
    raise ImportError("hpgfast._codec_c assumes a little-endian machine")
if len(_wire.FIELD_SEPARATOR) != 1 or _wire.FIELD_SEPARATOR[0] >= 0x80:
    raise ImportError("hpgfast._wire.FIELD_SEPARATOR must be one ASCII byte")


cdef inline bint _next_line(Scan* sc, Py_ssize_t* ps, Py_ssize_t* pe, Py_ssize_t* seps,
                            int* pnseps, int maxseps) noexcept nogil:
    """The next LF-separated piece from sc.pos, not stripped: [ps, pe), the positions
    of its first maxseps separators, and whether it is all ASCII (the return value).
    Moves sc.pos past it and counts it in sc.number.

    Sixteen bytes at a time (hpg_marks16: one bit per byte for LF, separator and
    non-ASCII), so each block is read once and all its separators are taken from
    one mask; the body's last few bytes one at a time.
    """
    cdef const unsigned char* d = sc.data
    cdef Py_ssize_t e = sc.pos, size = sc.size
    cdef int nseps = 0
    cdef unsigned char ch
    cdef uint32_t mlf, msep, mhi, below, hi = 0
    ps[0] = e
    while True:
        if e <= size - 16:
            hpg_marks16(d + e, SEP_BYTE, &mlf, &msep, &mhi)
            if mlf:
                below = (mlf & (~mlf + 1)) - 1     # the bytes before the LF
                msep &= below
                mhi &= below
            hi |= mhi
            while msep and nseps < maxseps:
                seps[nseps] = e + _ctz(msep)
                nseps += 1
                msep &= msep - 1
            if mlf:
                e += _ctz(mlf)
                break
            e += 16
        elif e < size:
            ch = d[e]
            if ch == 10:
                break
            if ch == SEP_BYTE and nseps < maxseps:
                seps[nseps] = e
                nseps += 1
            hi |= ch >> 7
            e += 1
        else:
            break
    pe[0] = e
    pnseps[0] = nseps
    sc.pos = e + 1
    sc.number += 1
    return hi == 0


cdef inline int _code_find(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """_intern_find for a code: "ok", nearly every line of a reply, without the
    table's lookup."""
    if n == 2 and p[0] == OK_0 and p[1] == OK_1:
        return INTERN_OK
    return _intern_find(p, n)


cdef inline bint _send_fast(Scan* sc, Line* ln, Py_ssize_t s, Py_ssize_t e,
                            Py_ssize_t* seps) noexcept nogil:
    """A SEND line of the usual shape, read as _scan_line reads it: ASCII (the
    caller checked), two separators, a known code. False for any other line (left
    to _scan_line)."""
    cdef const unsigned char* d = sc.data
    cdef int k
    if seps[0] == s:
        return False
    k = _code_find(d + s, seps[0] - s)
    if k < 0:
        return False
    ln.f[0].start = s
    ln.f[0].length = seps[0] - s
    ln.f[1].start = seps[0] + 1
    ln.f[1].length = seps[1] - seps[0] - 1
    ln.f[2].start = seps[1] + 1
    ln.f[2].length = e - seps[1] - 1
    ln.f[3].start = e
    ln.f[3].length = 0
    ln.intern[0] = <signed char>k
    ln.intern[1] = <signed char>_intern_find(d + ln.f[1].start, ln.f[1].length) if ln.f[1].length else -1
    ln.intern[2] = <signed char>_intern_find(d + ln.f[2].start, ln.f[2].length) if ln.f[2].length else -1
    ln.intern[3] = -1
    ln.ascii[0] = ln.ascii[1] = ln.ascii[2] = ln.ascii[3] = 1
    return True


cdef Py_ssize_t _scan(Scan* sc, Line* out, Py_ssize_t cap) noexcept nogil:
    """Up to cap non-blank lines. A faulty line stops the scan (its fault in sc.err,
    the line not counted), or with sc.collect is kept in the output with its fault
    in ln.err, and the scan goes on."""
    cdef const unsigned char* d = sc.data
    cdef Py_ssize_t n = 0, s, e, size = sc.size
    cdef Py_ssize_t seps[5]
    cdef int nseps, nf = sc.nfields
    cdef bint ascii
    while n < cap and sc.pos <= size:
        ascii = _next_line(sc, &s, &e, seps, &nseps, nf - 1)
        while s < e and STRIP[d[s]]:
            s += 1
        while e > s and STRIP[d[e - 1]]:
            e -= 1
        if s == e:
            continue
        out[n].number = sc.number
        out[n].err = PERR_NONE
        out[n].slow = 0
        # Stripping never removes a ';': every separator lies inside [s, e).
        if ascii and nf == 4 and nseps == 2 and _send_fast(sc, &out[n], s, e, seps):
            n += 1
            continue
        if ascii and nf == 5 and nseps == 4 and _status_fast(sc, &out[n], s, e, seps):
            n += 1
            continue
        if not _scan_line(sc, &out[n], s, e, seps, nseps, ascii):
            # A date read on the faulty line is not a record's: the next line may
            # not share its datetime object.
            sc.last_date = NULL
            out[n].whole.start = s
            out[n].whole.length = e - s
            if not sc.collect:
                sc.err = out[n].err
                return n
        elif out[n].slow:
            out[n].whole.start = s
            out[n].whole.length = e - s
        n += 1
    return n


cdef inline bytes _span_bytes(const unsigned char* d, Span sp):
    return PyBytes_FromStringAndSize(<const char*>d + sp.start, sp.length)


cdef inline object _field_str(const unsigned char* d, Line* ln, int k):
    cdef Py_ssize_t n = ln.f[k].length
    if n == 0:
        return None
    if ln.intern[k] >= 0:
        return <object>INTERN_OBJ[ln.intern[k]]
    if ln.ascii[k]:
        return hpg_ascii(<const char*>d + ln.f[k].start, n)
    return PyUnicode_DecodeUTF8(<const char*>d + ln.f[k].start, n, NULL)


# Small decimal client ids ("0".."4095"): a SEND reply to a request without
# clientIds answers with the request-local indexes 0..n-1, so the same few strings
# come back in every reply. Filled lazily (with the GIL, by the record loop) and kept
# for the life of the module: at most 4096 small strs.
cdef enum:
    ID_CACHE = 4096
cdef PyObject* ID_STRS[ID_CACHE]


cdef inline object _client_id(const unsigned char* d, Line* ln):
    cdef Py_ssize_t n = ln.f[1].length, k
    cdef const unsigned char* p
    cdef unsigned int v = 0
    cdef object s
    # Only the canonical spelling (no leading zero but "0" itself), so that the
    # cached str equals the bytes read.
    if 0 < n <= 4 and ln.ascii[1]:
        p = d + ln.f[1].start
        if n == 1 or p[0] != 48:
            for k in range(n):
                if p[k] < 48 or p[k] > 57:
                    return _field_str(d, ln, 1)
                v = v * 10 + (p[k] - 48)
            if v < ID_CACHE:
                if ID_STRS[v] == NULL:
                    s = hpg_ascii(<const char*>p, n)
                    Py_INCREF(s)          # the cache's reference, never released
                    ID_STRS[v] = <PyObject*>s
                return <object>ID_STRS[v]
    return _field_str(d, ln, 1)


cdef enum:
    REASON_CACHE = 64
    REASON_CACHE_MAX_LEN = 64
    # Dates of a STATUS reply repeat (a batch is delivered within minutes or hours):
    # a direct-mapped cache keyed by the exact fields, so most lines share a
    # datetime instead of allocating (and later freeing) their own. Allocated per
    # call, only when a reply is big enough for it to pay.
    DATE_CACHE = 8192        # a power of two (_date's slot is a mask)
    DATE_CACHE_MIN_BYTES = 65536


# read_*: at most this many bytes of a faulty line are quoted in its error.
cdef enum:
    SHOWN = 60


cdef object _line_error(const unsigned char* d, Line* ln, int nfields, bint quote):
    """The ProtocolError of a faulty line: parse_*'s words, and with ``quote`` (read_*)
    the start of the line, worded as the pure twin's ``_line_error``."""
    cdef bytes raw
    if ln.err == PERR_EMPTY_CODE:
        reason = "empty code"
    elif ln.err == PERR_GARBLED_CODE:
        reason = "garbled code"
    elif ln.err == PERR_UTF8:
        reason = "not UTF-8"
    elif ln.err == PERR_GARBLED_STATUS:
        reason = "garbled status"
    else:
        raw = PyBytes_FromStringAndSize(<const char*>d + ln.f[3].start, min(ln.f[3].length, 40))
        shown = raw.decode("utf-8", "replace")
        reason = f"not a date and time: {shown!r}"
    if quote:
        raw = PyBytes_FromStringAndSize(<const char*>d + ln.whole.start,
                                        min(ln.whole.length, <Py_ssize_t>SHOWN))
        shown = raw.decode("utf-8", "replace")
        cut = f" (first {SHOWN} of {ln.whole.length} bytes)" if ln.whole.length > SHOWN else ""
        reason = f"{reason} in {shown!r}{cut}"
    return ProtocolError(ln.number, reason)


# -- the columnar SEND reader (read_send_columns) -----------------------------------------


cdef struct Cols:
    char* cid            # every record's clientId, one after the other
    char* pid            # and its providerId
    Py_ssize_t data_cap  # bytes cid and pid can each take
    Py_ssize_t cused
    Py_ssize_t pused
    int64_t* cends       # record i's clientId ends at cid[cends[i]]
    int64_t* pends
    PyObject** codes     # record i's code: an interned str, or one the caller owns
    Py_ssize_t n         # records so far
    Py_ssize_t cap       # room in cends, pends and codes
    Py_ssize_t ok        # records whose code is "ok"
    bint nomem           # an allocation failed without the GIL (raised with it)


# The columns' scratch memory is kept for the next call. Body-sized blocks are above
# glibc's mmap threshold, or, once it has risen, are freed back to the kernel by the
# heap trim: either way every call page-faulted its scratch in anew (a third of the
# time of read_send_columns). One spare set, taken and given back with the GIL
# held (so two threads never share it), and only up to SPARE_MAX bytes.
cdef enum:
    SPARE_MAX = 64 << 20
    # Fields of up to 16 bytes are copied 16 bytes at a time (one load and one
    # store, not a call to memcpy): cid and pid have this much room past the last
    # field, and the copy's read stays inside the body (checked per field).
    COPY_WIDE = 16
cdef Cols SPARE
cdef bint HAVE_SPARE = False


cdef void _cols_take(Cols* c) noexcept:
    global HAVE_SPARE
    if HAVE_SPARE:
        c[0] = SPARE
        HAVE_SPARE = False
    else:
        memset(c, 0, sizeof(Cols))
    c.cused = c.pused = c.n = c.ok = 0
    c.nomem = False


cdef void _cols_give(Cols* c) noexcept:
    global SPARE, HAVE_SPARE
    if (not HAVE_SPARE and c.data_cap <= SPARE_MAX // 4
            and <size_t>c.cap * (2 * sizeof(int64_t) + sizeof(PyObject*)) <= SPARE_MAX // 2):
        SPARE = c[0]
        HAVE_SPARE = True
    else:
        free(c.cid)
        free(c.pid)
        free(c.cends)
        free(c.pends)
        free(c.codes)
    memset(c, 0, sizeof(Cols))


cdef int _cols_room(Cols* c, Py_ssize_t size) except -1:
    """cid and pid can each take the fields of a body of ``size`` bytes (and the
    wide copies' overhang). The fields are pieces of the body, so never more."""
    if size > PY_SSIZE_T_MAX - COPY_WIDE - 1:
        raise MemoryError()
    size += COPY_WIDE + 1
    if c.data_cap < size:
        free(c.cid)
        free(c.pid)
        c.cid = <char*>malloc(<size_t>size)
        c.pid = <char*>malloc(<size_t>size)
        c.data_cap = size
        if c.cid == NULL or c.pid == NULL:
            free(c.cid)
            free(c.pid)
            c.cid = c.pid = NULL
            c.data_cap = 0
            raise MemoryError()
    return 0


cdef bint _cols_grow(Cols* c) noexcept nogil:
    """Room for more records; False (and c.nomem) when memory ran out."""
    cdef Py_ssize_t cap = c.cap * 2 if c.cap else 4096
    cdef void* q
    if <size_t>cap > (<size_t>PY_SSIZE_T_MAX) // sizeof(int64_t):
        c.nomem = True
        return False
    # Each block is kept as soon as it is grown: a later failure leaves the earlier
    # ones bigger than c.cap says, which is harmless.
    q = realloc(c.cends, <size_t>cap * sizeof(int64_t))
    if q == NULL:
        c.nomem = True
        return False
    c.cends = <int64_t*>q
    q = realloc(c.pends, <size_t>cap * sizeof(int64_t))
    if q == NULL:
        c.nomem = True
        return False
    c.pends = <int64_t*>q
    q = realloc(c.codes, <size_t>cap * sizeof(PyObject*))
    if q == NULL:
        c.nomem = True
        return False
    c.codes = <PyObject**>q
    c.cap = cap
    return True


cdef inline void _cols_copy(char* w, const unsigned char* p, Py_ssize_t n,
                            const unsigned char* end) noexcept nogil:
    if n <= COPY_WIDE and end - p >= COPY_WIDE:
        memcpy(w, p, COPY_WIDE)
    else:
        memcpy(w, p, <size_t>n)


cdef inline bint _cols_put(Cols* c, PyObject* code, const unsigned char* d, Span cid, Span pid,
                           const unsigned char* end) noexcept nogil:
    """One record; False when memory ran out."""
    if c.n == c.cap and not _cols_grow(c):
        return False
    _cols_copy(c.cid + c.cused, d + cid.start, cid.length, end)
    c.cused += cid.length
    c.cends[c.n] = c.cused
    _cols_copy(c.pid + c.pused, d + pid.start, pid.length, end)
    c.pused += pid.length
    c.pends[c.n] = c.pused
    c.codes[c.n] = code
    c.n += 1
    return True


cdef object _int64_array(const int64_t* p, Py_ssize_t n):
    cdef carray.array out = carray.clone(_INT64_ARRAY, n, False)
    if n:
        memcpy(out.data.as_voidptr, p, <size_t>n * sizeof(int64_t))
    return out


cdef Py_ssize_t _scan_columns(Scan* sc, Line* out, Py_ssize_t cap, Cols* c) noexcept nogil:
    """read_send_columns' scan. A line of the usual shape (ASCII, a known code,
    exactly two separators) goes straight into the columns. Every other non-blank
    line is read by _scan_line, as _scan reads it, into out: a record goes into the
    columns all the same (its code NULL when it is not a known one: the caller makes
    it) and ln.rec says which it is; a faulty line has ln.rec -1. Returns how many
    lines are in out, after cap of them or the body's end; on c.nomem, at once."""
    cdef const unsigned char* d = sc.data
    cdef const unsigned char* end = d + sc.size
    cdef Py_ssize_t n = 0, s, e, size = sc.size
    cdef Py_ssize_t seps[5]
    cdef int nseps, k
    cdef bint ascii
    cdef Span cid, pid
    cdef Line* ln
    while n < cap and sc.pos <= size:
        ascii = _next_line(sc, &s, &e, seps, &nseps, 3)
        while s < e and STRIP[d[s]]:
            s += 1
        while e > s and STRIP[d[e - 1]]:
            e -= 1
        if s == e:
            continue
        # Stripping never removes a ';': every separator lies inside [s, e).
        if nseps == 2 and ascii and seps[0] > s:
            k = _code_find(d + s, seps[0] - s)
            if k >= 0:
                cid.start = seps[0] + 1
                cid.length = seps[1] - cid.start
                pid.start = seps[1] + 1
                pid.length = e - pid.start
                if not _cols_put(c, INTERN_OBJ[k], d, cid, pid, end):
                    return n
                if k == INTERN_OK:
                    c.ok += 1
                continue
        ln = &out[n]
        ln.number = sc.number
        ln.err = PERR_NONE
        ln.slow = 0
        if _scan_line(sc, ln, s, e, seps, nseps, ascii):
            ln.whole.start = s
            ln.whole.length = e - s
            k = ln.intern[0]
            if not _cols_put(c, INTERN_OBJ[k] if k >= 0 else NULL, d, ln.f[1], ln.f[2], end):
                return n
            if k == INTERN_OK:
                c.ok += 1
            ln.rec = c.n - 1
        else:
            ln.whole.start = s
            ln.whole.length = e - s
            ln.rec = -1
        n += 1
    return n


cdef object _read_columns(Scan* sc, Line* lines, bint release, object charset):
    """read_send_columns' answer, a ``SendColumns``; sc is set on the body."""
    cdef Cols c
    cdef Py_ssize_t n, j
    cdef Line* ln
    cdef const unsigned char* d = sc.data
    cdef list errors = []
    cdef list owned = []     # the codes that are not interned, while c.codes points at them
    cdef dict extras = {}
    cdef dict raws = {}
    cdef object code
    _cols_take(&c)
    try:
        _cols_room(&c, sc.size)
        while sc.pos <= sc.size:
            if release:
                with nogil:
                    n = _scan_columns(sc, lines, PARSE_CHUNK, &c)
            else:
                n = _scan_columns(sc, lines, PARSE_CHUNK, &c)
            if c.nomem:
                raise MemoryError()
            for j in range(n):
                ln = &lines[j]
                if ln.rec < 0:
                    PyList_Append(errors, _line_error(d, ln, 4, True))
                    continue
                if c.codes[ln.rec] == NULL:
                    # A code that is a good token but not a known one (ASCII).
                    code = hpg_ascii(<const char*>d + ln.f[0].start, ln.f[0].length)
                    PyList_Append(owned, code)
                    c.codes[ln.rec] = <PyObject*>code
                if ln.slow:
                    extras[ln.rec] = _read_text(_span_bytes(d, ln.f[3]), charset)
                    raws[ln.rec] = _span_bytes(d, ln.whole)
                elif ln.f[3].length:
                    extras[ln.rec] = _field_str(d, ln, 3)
        return _SendColumns(
            hpg_list_of(c.codes, c.n), c.ok,
            PyBytes_FromStringAndSize(c.cid, c.cused), _int64_array(c.cends, c.n),
            PyBytes_FromStringAndSize(c.pid, c.pused), _int64_array(c.pends, c.n),
            extras, errors, raws)
    finally:
        _cols_give(&c)


cdef int MATCH_ALL = _wire.Match.ALL
cdef int MATCH_NOT_OK = _wire.Match.NOT_OK
cdef int MATCH_FREE_TEXT = _wire.Match.FREE_TEXT


cdef object _expected_field(const unsigned char* d, Line* ln, object e, bint send):
    """``e`` when field 1 of the line (the id) reads as the str ``e``, else None.

    The common case (ASCII both) is a byte compare, with no str made; other ids are
    read and compared as the pure twin does (``type(e) is str and id == e``).
    """
    cdef Py_ssize_t n = ln.f[1].length
    if n == 0:
        return None
    if ln.ascii[1] and hpg_ascii_eq(<PyObject*>e, <const char*>d + ln.f[1].start, n):
        return e
    if type(e) is not str:
        return None
    a = _client_id(d, ln) if send else _field_str(d, ln, 1)
    return e if a == e else None


# -- _parse's parts: where the bytes are, and each record's fields ----------------------


cdef object _scan_start(object body, Scan* sc, Py_buffer* view, bint* have_view, int nfields,
                        bint collect):
    """Points sc at the reply's bytes (past a BOM) and readies it; returns what holds
    the bytes (None when ``view`` does: the caller releases it)."""
    cdef object data = None
    if type(body) is bytes:
        data = body
        sc.data = <const unsigned char*>PyBytes_AS_STRING(body)
        sc.size = PyBytes_GET_SIZE(body)
    elif (type(body) is memoryview and type(body.obj) is bytes and body.c_contiguous):
        # A view of an immutable bytes: read it in place through the buffer protocol.
        PyObject_GetBuffer(body, view, PyBUF_SIMPLE)
        have_view[0] = True
        sc.data = <const unsigned char*>view.buf
        sc.size = view.len
    else:
        # A mutable buffer (bytearray, a view of one) could change under the
        # GIL-free pre-pass, and a byte proved ASCII there could be non-ASCII when
        # the str is built: a corrupt str. Snapshot it (as the pure twin does).
        data = bytes(body)
        sc.data = <const unsigned char*>PyBytes_AS_STRING(data)
        sc.size = PyBytes_GET_SIZE(data)
    sc.pos = 0
    sc.number = 0
    sc.nfields = nfields
    sc.collect = collect
    sc.last_date = NULL
    sc.day_p = NULL
    sc.err = PERR_NONE
    if sc.size >= BOM_LEN and memcmp(sc.data, BOM, <size_t>BOM_LEN) == 0:
        sc.pos = BOM_LEN
    return data


cdef inline object _matched_id(const unsigned char* d, Line* ln, object expect, Py_ssize_t nrec,
                               bint send, bint* matched):
    """match_*: line nrec's id, the expected str itself when it is the one expected
    there (else a new str, and matched[0] False)."""
    cdef object a
    # Read from expect afresh for every line, bounds-checked: a list
    # could change while the records are made (a finalizer run by an
    # allocation, another thread while the GIL is released).
    hpg_seq_prefetch(expect, nrec + 8)
    if nrec < hpg_seq_size(expect):
        a = _expected_field(d, ln, hpg_seq_item(expect, nrec), send)
        if a is not None:
            return a
    matched[0] = False
    return _client_id(d, ln) if send else _field_str(d, ln, 1)


cdef inline object _send_record(object rtype, const unsigned char* d, Line* ln, object code,
                                object a):
    """A SEND line's record, its code and clientId read."""
    cdef object status = _field_str(d, ln, 2)
    cdef object rec, extra
    if ln.f[3].length == 0:
        if _FAST_RECORDS:
            # Not tracked by the GC: the items are str or None, which
            # hold no references, so the record can never be part of
            # a cycle. With a million records, GC passes over them
            # would cost more than building them.
            return hpg_record3(rtype, code, a, status)
        return rtype(code, a, status)
    # Text after the third ';': a fourth item (rare).
    extra = _field_str(d, ln, 3)
    if _FAST_RECORDS:
        rec = hpg_alloc_record(rtype, 4)
        Py_INCREF(code)
        PyTuple_SET_ITEM(rec, 0, code)
        Py_INCREF(a)
        PyTuple_SET_ITEM(rec, 1, a)
        Py_INCREF(status)
        PyTuple_SET_ITEM(rec, 2, status)
        Py_INCREF(extra)
        PyTuple_SET_ITEM(rec, 3, extra)
        PyObject_GC_UnTrack(<PyObject*>rec)   # str items, as above
        return rec
    return rtype(code, a, status, extra)


cdef inline object _status_when(Line* ln, PyObject** dates, uint64_t* date_keys, object tz,
                                object last_when):
    """A STATUS line's date: None, the last line's object (datetimes are immutable:
    a run of equal dates shares one), one from the date cache, or a new one."""
    cdef uint64_t dkey
    cdef Py_ssize_t slot
    cdef object when
    if ln.f[3].length == 0:
        return None
    if ln.date_same:
        return last_when
    if dates == NULL:
        return _datetime_of(ln.dkey, tz)
    dkey = ln.dkey
    slot = ln.dslot
    if date_keys[slot] == dkey:
        return <object>dates[slot]
    when = _datetime_of(dkey, tz)
    Py_INCREF(when)
    if dates[slot] != NULL:
        Py_DECREF(<object>dates[slot])
    dates[slot] = <PyObject*>when
    date_keys[slot] = dkey
    return when


cdef inline object _status_reason(const unsigned char* d, Line* ln, PyObject** reasons):
    """A STATUS line's reason. Reasons repeat ("unknown-subscriber", ...): a small
    cache keyed by length and end bytes, verified by a full compare."""
    cdef Py_ssize_t rlen = ln.f[4].length, slot
    cdef const unsigned char* rp
    cdef object reason
    if not (0 < rlen <= REASON_CACHE_MAX_LEN and ln.ascii[4] and ln.intern[4] < 0):
        return _field_str(d, ln, 4)
    rp = d + ln.f[4].start
    slot = (rlen * 7 + rp[0] * 31 + rp[rlen - 1] * 131 + rp[rlen >> 1]) % REASON_CACHE
    if (reasons[slot] != NULL
            and PyUnicode_GET_LENGTH(<object>reasons[slot]) == rlen
            and memcmp(PyUnicode_DATA(<object>reasons[slot]), rp, <size_t>rlen) == 0):
        return <object>reasons[slot]
    reason = hpg_ascii(<const char*>rp, rlen)
    Py_INCREF(reason)
    if reasons[slot] != NULL:
        Py_DECREF(<object>reasons[slot])
    reasons[slot] = <PyObject*>reason
    return reason


cdef object _parse(object body, int nfields, object tz, bint collect, bint columns=False,
                   bint match=False, object expect=None, object charset=None):
    """The shared parse loop: nogil pre-pass per chunk, then records with the GIL.

    nfields: 4 (SEND: code, clientId, providerId, extra) or 5 (STATUS). collect
    (read_*): faulty lines become ProtocolErrors in a second list, returned as
    ``(results, errors)``; without it (parse_*) the first one is raised. columns
    (read_send_columns, with collect and nfields 4): no records, a ``SendColumns``.
    match (match_*, with collect): ``expect`` holds the ids sent, a list or tuple; the answer is
    ``(results, errors, flags)`` and a record whose id equals the expected one at
    its position holds that very str (no new one is made). charset: the reply's
    charset (already checked by _charset_name), for free text that is not UTF-8.
    """
    cdef Py_buffer view
    cdef bint have_view = False, release
    cdef object data
    cdef Scan sc
    cdef Line* lines = NULL
    cdef Line* ln
    cdef Py_ssize_t n, j
    cdef list results = []
    cdef list errors = []
    cdef object code, a, status, when, reason, rec
    cdef object last_when = None
    cdef PyObject** dates = NULL     # DATE_CACHE slots (STATUS replies of some size)
    cdef uint64_t* date_keys = NULL
    cdef object rtype = _SendResult if nfields == 4 else _StatusResult
    cdef PyObject* reasons[REASON_CACHE]
    cdef const unsigned char* d
    cdef Py_ssize_t nrec = 0         # records made so far (match_*)
    cdef bint matched = True
    cdef int flags = 0

    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"a reply body must be bytes-like, got {_type_name(body)}")
    if match:
        if type(expect) is not list and type(expect) is not tuple:
            raise TypeError(f"expect must be a list or tuple of str, got {_type_name(expect)}")
    for j in range(REASON_CACHE):
        reasons[j] = NULL
    try:
        data = _scan_start(body, &sc, &view, &have_view, nfields, collect)
        d = sc.data
        lines = <Line*>malloc(PARSE_CHUNK * sizeof(Line))
        if lines == NULL:
            raise MemoryError()
        if nfields == 5 and sc.size >= DATE_CACHE_MIN_BYTES:
            # calloc: every slot starts empty (NULL, key 0, which no real date has).
            dates = <PyObject**>calloc(DATE_CACHE, sizeof(PyObject*))
            date_keys = <uint64_t*>calloc(DATE_CACHE, sizeof(uint64_t))
            if dates == NULL or date_keys == NULL:
                raise MemoryError()
        release = sc.size >= NOGIL_PARSE_BYTES
        if columns:
            return _read_columns(&sc, lines, release, charset)
        while sc.pos <= sc.size:
            if release:
                with nogil:
                    n = _scan(&sc, lines, PARSE_CHUNK)
            else:
                n = _scan(&sc, lines, PARSE_CHUNK)
            if sc.err != PERR_NONE:
                # parse_*: the first faulty line wins (it is lines[n], not counted);
                # the lines before it were all good.
                raise _line_error(d, &lines[n], nfields, False)
            for j in range(n):
                ln = &lines[j]
                if ln.err != PERR_NONE:   # only with collect
                    PyList_Append(errors, _line_error(d, ln, nfields, True))
                    continue
                code = <object>INTERN_OBJ[ln.intern[0]] if ln.intern[0] >= 0 else hpg_ascii(
                    <const char*>d + ln.f[0].start, ln.f[0].length)
                if match:
                    if ln.intern[0] != INTERN_OK:
                        flags |= MATCH_NOT_OK
                    if ln.f[nfields - 1].length or ln.slow:
                        flags |= MATCH_FREE_TEXT
                    a = _matched_id(d, ln, expect, nrec, nfields == 4, &matched)
                    nrec += 1
                elif nfields == 4:
                    a = _client_id(d, ln)
                else:
                    a = _field_str(d, ln, 1)
                if nfields == 4:
                    if ln.slow:
                        # Free text that is not UTF-8 (SLOW_TEXT): the rare path.
                        PyList_Append(results, rtype(
                            code, a, _field_str(d, ln, 2),
                            _read_text(_span_bytes(d, ln.f[3]), charset),
                            _span_bytes(d, ln.whole)))
                    else:
                        PyList_Append(results, _send_record(rtype, d, ln, code, a))
                    continue
                status = _field_str(d, ln, 2)
                if ln.slow & SLOW_DATE:
                    when = _read_time(_span_bytes(d, ln.f[3]), tz)
                else:
                    when = _status_when(ln, dates, date_keys, tz, last_when)
                    if ln.f[3].length:
                        last_when = when   # a run of equal dates shares the object
                if ln.slow & SLOW_TEXT:
                    reason = _read_text(_span_bytes(d, ln.f[4]), charset)
                else:
                    reason = _status_reason(d, ln, reasons)
                if ln.slow:
                    rec = rtype(code, a, status, when, reason, _span_bytes(d, ln.whole))
                elif _FAST_RECORDS:
                    # Not tracked (hpg_record5): str, None and datetime items. datetime
                    # is not a GC type (the collector cannot see through it, even to a
                    # tzinfo), so the record can never be part of a collectable cycle.
                    rec = hpg_record5(rtype, code, a, status, when, reason)
                else:
                    rec = rtype(code, a, status, when, reason)
                PyList_Append(results, rec)
        if match:
            if matched and nrec == hpg_seq_size(expect) and not errors:
                flags |= MATCH_ALL
            return results, errors, flags
        if collect:
            return results, errors
        return results
    finally:
        free(lines)
        if have_view:
            PyBuffer_Release(&view)
        for j in range(REASON_CACHE):
            if reasons[j] != NULL:
                Py_DECREF(<object>reasons[j])
        if dates != NULL:
            for j in range(DATE_CACHE):
                if dates[j] != NULL:
                    Py_DECREF(<object>dates[j])
        free(dates)
        free(date_keys)


def parse_send(body, *, charset=None):
    """Read a SEND reply: a ``SendResult`` per line ``code;clientId;providerId``.

    Missing trailing fields and empty fields are ``None``; a whole-request error
    comes back as one result holding only its code. Text after a third ``;`` is
    kept as the result's ``extra``; text there that is not UTF-8 (a rejection's
    description in another charset) is decoded by ``charset`` (the reply's
    Content-Type charset; an unknown name is ignored), else with U+FFFD, and the
    result keeps the line's bytes in ``raw`` (``hpgfast._fields``).

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
        ProtocolError: a line that is garbled, or whose ids are not UTF-8
            (``.line`` says which).
    """
    charset = _charset_name(charset)
    return _parse(body, 4, None, False, False, False, None, charset)


def parse_status(body, *, tz=None, charset=None):
    """Read a STATUS reply: a ``StatusResult`` per line
    ``code;providerId;status;dateTime;reason``.

    Everything after the fourth ``;`` is the reason, ``;`` included. The time and the
    reason never cost the line (``hpgfast._fields``): a time in another shape is
    read as ISO-8601, or is ``None``; a reason that is not UTF-8 is decoded by
    ``charset``, else with U+FFFD; the result then keeps the line's bytes in ``raw``.

    Args:
        body: the reply body.
        tz: the platform's time zone; ``time`` is then an aware ``datetime`` (a time
            written with an offset is converted to it).
        charset: the reply's declared charset, for text that is not UTF-8.

    Raises:
        TypeError: ``body`` is not bytes-like, ``tz`` is not a ``tzinfo``, or
            ``charset`` not a str.
        ProtocolError: a line that is garbled or whose provider id is not UTF-8
            (``.line`` says which).
    """
    if tz is not None and not isinstance(tz, _tzinfo):
        raise TypeError(f"tz must be a datetime.tzinfo, got {_type_name(tz)}")
    charset = _charset_name(charset)
    return _parse(body, 5, tz, False, False, False, None, charset)


def read_send(body, *, charset=None):
    """Read a SEND reply line by line: ``(results, errors)``.

    Each readable line gives a ``SendResult`` as ``parse_send`` reads it; each
    unreadable one a ``ProtocolError`` (returned, not raised) with its 1-based
    ``.line`` and a reason quoting the start of the line. An empty body gives
    ``([], [])``.

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
    """
    charset = _charset_name(charset)
    return _parse(body, 4, None, True, False, False, None, charset)


def read_send_columns(body, *, charset=None):
    """Read a SEND reply into columns: a ``SendColumns`` (see ``hpgfast._columns``).

    The answer ``read_send`` gives (``columns.results()`` equals its results,
    ``columns.errors`` its errors), without one Python object per line: for very
    large replies.

    Raises:
        TypeError: ``body`` is not bytes-like, or ``charset`` not a str.
    """
    charset = _charset_name(charset)
    return _parse(body, 4, None, True, True, False, None, charset)


def match_send(body, expect, *, charset=None):
    """``read_send``, checked against the clientIds the request sent: ``(results,
    errors, flags)``.

    ``results`` and ``errors`` are ``read_send(body)``'s. ``expect`` is the list (or
    tuple) of ids sent, in order. ``flags`` (``hpgfast._wire.Match``): ``ALL`` when
    every line was read and there is one per expected id, each with that id
    (``type(e) is str and client_id == e``), in order; ``NOT_OK`` when some record's
    code is not ``ok``; ``FREE_TEXT`` when some record has an ``extra`` or a ``raw``.
    A record whose id equals the expected one holds that str object.

    Raises:
        TypeError: ``body`` is not bytes-like, ``expect`` not a list or tuple, or
            ``charset`` not a str.
    """
    charset = _charset_name(charset)
    return _parse(body, 4, None, True, False, True, expect, charset)


def match_status(body, expect, *, tz=None, charset=None):
    """``read_status``, checked against the provider ids asked about: ``(results,
    errors, flags)``, as ``match_send`` (``FREE_TEXT``: some record has a reason or
    a ``raw``).

    Raises:
        TypeError: ``body`` is not bytes-like, ``expect`` not a list or tuple, ``tz``
            not a ``tzinfo``, or ``charset`` not a str.
    """
    if tz is not None and not isinstance(tz, _tzinfo):
        raise TypeError(f"tz must be a datetime.tzinfo, got {_type_name(tz)}")
    charset = _charset_name(charset)
    return _parse(body, 5, tz, True, False, True, expect, charset)


def read_status(body, *, tz=None, charset=None):
    """Read a STATUS reply line by line: ``(results, errors)``, as ``read_send`` does.

    Raises:
        TypeError: ``body`` is not bytes-like, ``tz`` is not a ``tzinfo``, or
            ``charset`` not a str.
    """
    if tz is not None and not isinstance(tz, _tzinfo):
        raise TypeError(f"tz must be a datetime.tzinfo, got {_type_name(tz)}")
    charset = _charset_name(charset)
    return _parse(body, 5, tz, True, False, False, None, charset)
