"""Differential fuzz targets: the compiled core against its pure twin, hostile input.

Strategy: a target turns raw fuzzer bytes into the arguments of one codec function
(``Draw`` reads them as choices, the way atheris' FuzzedDataProvider does), calls
the pure twin and the compiled core with the very same objects and requires the
same outcome: equal results of the same record types, or the same exception type
with the same ``index``/``field`` or ``line``. The same bytes drive any engine
(atheris, or the random loop in ``fuzz.py``), and under the ASan/UBSan build of the
core (``run_sanitizers.sh``) every call is also a memory-safety check.

Adding a function is a few lines::

    @target("read_send")
    def _read_send(d: Draw) -> Args:
        return (d.body(send=True),), {}

(``module=`` names another pair of twins, for example ``("_segments_py",
"_segments_c")``.)
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

# The lying str/tuple/int subclasses are shared with the tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "tests"))

from hostile_types import (  # noqa: E402
    STR_SUBCLASSES,
    TUPLE_SUBCLASSES,
    FakeTuple,
    LongTuple,
    OddFloat,
    OddInt,
)
from hpgfast import HPGError, Message, MessageError, ProtocolError  # noqa: E402
from hpgfast._wire import Code, Status  # noqa: E402

Args = tuple[tuple[Any, ...], dict[str, Any]]

# Reply pieces that look like the platform's, and pieces that do not.
_CODES = tuple(c.encode() for c in (*Code.PLATFORM, "", "OK", "x y", "error-new_code.2"))
_STATUSES = tuple(s.encode() for s in (*Status.ALL, "", "bad status"))
_DATES = (
    b"2012.03.15 19:53:07", b"2012-03-15 19:53:07", b"2011.02.29 10:00:00",
    b"2012.13.45 25:61:00", b"0000.01.01 00:00:00", b"9999.12.31 23:59:59",
    b"2012.03.15  9:53:14", b"", b"\xd9\xa2012.03.15 19:53:14",
    # The same day as the first ones, with a bad time; the next day (the compiled
    # reader reuses a day's bytes checked on an earlier line).
    b"2012.03.15 24:00:00", b"2012.03.15 00:00:60", b"2012.03.16 00:00:00",
)  # fmt: skip
_SEPS = (b"\n", b"\r\n", b"\n\n", b" \n", b"\t\r\n", b"\r", b"\n;", b"", b";\n")


class Draw:
    """Choices read from fuzzer bytes; zeros once they run out (so every input is valid)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        """0 <= k < n (n <= 65536)."""
        if n <= 256:
            return self.byte() % n
        return (self.byte() << 8 | self.byte()) % n

    def choice(self, options: Any) -> Any:
        return options[self.below(len(options))]

    def raw(self, most: int) -> bytes:
        n = self.below(most + 1)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    # -- strings ---------------------------------------------------------------------

    _ALPHABETS = (
        "abcXYZ019",
        "-._~ &=+%#?/[];'\"<>\\\x00\x7f\t\r\n",
        "éßÿ\xa0\x80",  # Latin-1: one byte in PEP 393, two in UTF-8
        "жЯ€\u2028\ufeff\uffff",  # BMP: two bytes in PEP 393
        "😀\U0010ffff\U00010000",  # astral: four bytes
        "\ud800\udfff\udbff",  # lone surrogates: an error to send
    )

    def text(self, most: int = 12) -> str:
        n = self.below(most + 1)
        alphabets = [self.choice(self._ALPHABETS) for _ in range(self.below(3) + 1)]
        return "".join(self.choice(self.choice(alphabets)) for _ in range(n))

    def string(self) -> Any:
        """A str, sometimes a lying subclass, sometimes a long one (GIL-free paths)."""
        kind = self.below(16)
        if kind < 10:
            return self.text()
        if kind < 13:
            return self.choice(STR_SUBCLASSES)(self.text())
        if kind < 14:
            return self.choice(["", "text", "clientId", "subject", "address", "0", "1"])
        return self.text() * (self.below(200) + 1)

    def value(self) -> Any:
        """Anything a caller might put in a field."""
        kind = self.below(16)
        if kind < 11:
            return self.string()
        return self.choice(
            [None, None, 0, 7, -1, 2**70, 1.5, b"bytes", bytearray(b"x"), ["a"], ("a", "b"),
             object(), FakeTuple(), {"a": "b"}]
        )  # fmt: skip

    # -- messages and batches ----------------------------------------------------------

    def params(self) -> Any:
        kind = self.below(8)
        pairs = [(self.string(), self.string()) for _ in range(self.below(4))]
        if kind < 3:
            return dict(pairs)
        if kind < 5:
            return pairs
        if kind < 6:
            return tuple(pairs) + tuple(self.value() for _ in range(self.below(2)))
        if kind < 7:
            return [(self.value(), self.value())]
        return self.value()

    def message(self) -> Any:
        kind = self.below(16)
        if kind < 8:
            return Message(
                self.string(),
                self.string(),
                self.choice([None, "S", self.string()]),
                self.choice([None, None, self.string(), str(self.below(20))]),
                self.params() if self.below(3) == 0 else None,
            )
        fields = tuple(self.value() for _ in range(self.below(7)))
        if kind < 12:
            return fields
        if kind < 14:
            return self.choice(TUPLE_SUBCLASSES)(fields)
        return self.value()

    def batch(self, item: Callable[[], Any]) -> Any:
        n = self.below(40)
        if self.below(8) == 0:
            n = self.below(3000)  # long enough for the GIL-free gather and fill
        items = [item() for _ in range(min(n, 40))]
        items = (items * (n // max(len(items), 1) + 1))[:n] if items else items
        kind = self.below(16)
        if kind < 10:
            return items
        if kind < 14:
            return tuple(items)
        if kind < 15:
            return LongTuple(items)
        return dict(enumerate(items))

    def number(self) -> Any:
        kind = self.below(16)
        if kind < 11:
            return self.below(50) - 1
        return self.choice(
            [None, True, False, OddInt(self.below(20) - 2), 2**63, 2**70, -(2**70), 0.0, 2.5,
             float("nan"), float("inf"), OddFloat(self.below(3000)), "1"]
        )  # fmt: skip

    def limit(self) -> Any:
        kind = self.below(4)
        if kind == 0:
            return None
        if kind == 1:
            return self.below(4000) - 1
        return self.number()

    # -- replies -----------------------------------------------------------------------

    def field(self, pieces: tuple[bytes, ...]) -> bytes:
        kind = self.below(8)
        if kind < 4:
            return self.choice(pieces)
        if kind < 6:
            return str(self.below(65536)).encode()
        if kind < 7:
            return self.text(8).encode("utf-8", "surrogatepass")
        return self.raw(8)

    def body(self, *, send: bool) -> Any:
        lines = []
        for _ in range(self.below(12)):
            fields = [self.field(_CODES), self.field((b"0", b"1", b"12345"))]
            if send:
                fields.append(self.field((b"1001", b"")))
            else:
                fields += [
                    self.field(_STATUSES),
                    self.field(_DATES),
                    self.field((b"", b"unknown-subscriber")),
                ]
            cut = self.below(len(fields) + 2) + 1
            lines.append(b";".join(fields[:cut]) + self.choice(_SEPS))
        data = self.choice([b"", b"", b"\xef\xbb\xbf", b"\xef\xbb"]) + b"".join(lines)
        if self.below(8) == 0:
            data = data * (self.below(2000) + 1)  # past one GIL-free parse chunk
        kind = self.below(16)
        if kind < 12:
            return data
        if kind < 14:
            return bytearray(data)
        if kind < 15:
            return memoryview(data)
        return self.choice([data.decode("latin-1"), None, 5, [data]])


# -- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One function of a pair of twins and how to draw its arguments."""

    name: str
    draw: Callable[[Draw], Args]
    module: tuple[str, str] = ("hpgfast._codec_py", "hpgfast._codec_c")
    #: What of a result the twins must agree on, when ``==`` on it is not enough.
    view: Callable[[Any], Any] | None = None
    #: The twins' names in their modules, when not ``name`` in both.
    names: tuple[str, str] | None = None
    #: Makes the callable run of each twin (a class's driver, say), when not itself.
    wrap: Callable[[Any], Callable[..., Any]] | None = None

    def functions(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        pure, compiled = (importlib.import_module(m) for m in self.module)
        pure_name, compiled_name = self.names or (self.name, self.name)
        pair = getattr(pure, pure_name), getattr(compiled, compiled_name)
        if self.wrap is not None:
            return self.wrap(pair[0]), self.wrap(pair[1])
        return pair


TARGETS: dict[str, Target] = {}


def target(
    name: str,
    *,
    module: tuple[str, str] | None = None,
    view: Callable[[Any], Any] | None = None,
    names: tuple[str, str] | None = None,
    wrap: Callable[[Any], Callable[..., Any]] | None = None,
) -> Callable[..., Any]:
    """Register ``draw`` as the argument maker of twin function ``name``."""

    def register(draw: Callable[[Draw], Args]) -> Callable[[Draw], Args]:
        TARGETS[name] = Target(name, draw, module or Target.module, view, names, wrap)
        return draw

    return register


@target("encode_send")
def _encode_send(d: Draw) -> Args:
    batch = d.batch(d.message)
    return (batch,), {
        "start": d.number(),
        "max_bytes": d.limit(),
        "max_count": d.limit(),
        "default_subject": d.choice([None, "Shop", d.value()]),
        "quote_brackets": bool(d.below(2)),
    }


@target("sent_ids")
def _sent_ids(d: Draw) -> Args:
    batch = d.batch(d.message)
    prefix = d.choice([None, "Ab9", "Z" * 17, "", "a-b", d.value()])
    return (batch, d.number(), d.number(), prefix), {}


@target("encode_status")
def _encode_status(d: Draw) -> Args:
    kwargs = {"start": d.number(), "max_bytes": d.limit(), "max_count": d.limit()}
    return (d.batch(d.value),), {**kwargs, "quote_brackets": bool(d.below(2))}


@target("encode_params")
def _encode_params(d: Draw) -> Args:
    return (d.params(),), {}


@target("parse_send")
def _parse_send(d: Draw) -> Args:
    return (d.body(send=True),), {}


@target("parse_status")
def _parse_status(d: Draw) -> Args:
    tz = d.choice([None, None, timezone.utc, timezone(timedelta(hours=3)), "UTC"])
    return (d.body(send=False),), {"tz": tz}


def _read_view(result: Any) -> Any:
    """read_*/match_*: ``(results, errors[, flags])``. Errors have no equality of
    their own: compared by class, line and reason; records also by class."""
    results, errors, *rest = result
    return (
        results,
        [type(r) for r in results],
        [(type(e), e.line, e.reason) for e in errors],
        *rest,
    )


@target("read_send", view=_read_view)
def _read_send(d: Draw) -> Args:
    return (d.body(send=True),), {}


@target("read_status", view=_read_view)
def _read_status(d: Draw) -> Args:
    tz = d.choice([None, timezone.utc])
    return (d.body(send=False),), {"tz": tz}


@target("read_send_columns")
def _read_send_columns(d: Draw) -> Args:
    return (d.body(send=True),), {}


def _expect(d: Draw, body: Any, send: bool) -> Any:
    """The ids a request sent: mostly the body's own (the matched fast path), cut,
    changed, as a tuple, with a str subclass, or not a sequence at all."""
    from hpgfast import _codec_py

    ids: list[Any] = []
    if isinstance(body, (bytes, bytearray, memoryview)):
        records = (_codec_py.read_send if send else _codec_py.read_status)(body)[0]
        ids = [r[1] for r in records]
    kind = d.below(8)
    if kind == 1 and ids:
        ids = ids[: d.below(len(ids))]
    elif kind == 2:
        ids = [*ids, d.text(4)]
    elif kind == 3 and ids:
        ids[d.below(len(ids))] = d.choice([d.text(4), None, 7, d.string()])
    elif kind == 4:
        return tuple(ids)
    elif kind == 5:
        return d.choice([None, "ids", {"0": 1}, iter(ids)])
    return ids


@target("match_send", view=_read_view)
def _match_send(d: Draw) -> Args:
    body = d.body(send=True)
    return (body, _expect(d, body, True)), {}


@target("match_status", view=_read_view)
def _match_status(d: Draw) -> Args:
    body = d.body(send=False)
    return (body, _expect(d, body, False)), {"tz": d.choice([None, timezone.utc])}


# -- the segment counter: hpgfast._sms_c against _sms_py ---------------------------------

_SMS = ("hpgfast._sms_py", "hpgfast._sms_c")
# What a text costs turns on these: GSM 7-bit basic and extension characters (one and
# two septets), a single non-GSM one (the whole text goes UCS-2), astral characters
# (two UTF-16 units, never cut in half between parts), lone surrogates (an error).
_SMS_ALPHABETS = (
    "abc XYZ019@$\n\r",
    "{}[]~^|\\€",
    "éßÆÑüΔΩ",
    "жЯç\u00a0\u2028",
    "😀\U0010ffff\U00010000",
    "\ud800\udfff",
)


def _sms_text(d: Draw, long: bool = True) -> Any:
    """A text around the single and concatenated limits, long at times (the
    GIL-free count, and the cut of a long UCS-2 text), a lying subclass at times.
    (A batch's texts are short: a big batch reaches the GIL-free count by itself,
    and the pure twin would take seconds over thousands of long ones.)"""
    alphabets = [d.choice(_SMS_ALPHABETS) for _ in range(d.below(3) + 1)]
    n = d.choice([0, 1, 69, 70, 71, 153, 159, 160, 161, 306, 307, d.below(400)])
    if not long:
        n = min(n, d.choice([20, 200, 400]))
    text = "".join(d.choice(d.choice(alphabets)) for _ in range(n))
    if long and d.below(8) == 0:
        text *= d.below(300) + 1
    if d.below(8) == 0:
        return d.choice(STR_SUBCLASSES)(text)
    return text


def _sms_item(d: Draw) -> Any:
    kind = d.below(16)
    if kind < 8:
        return _sms_text(d, long=False)
    if kind < 12:
        return Message(d.string(), _sms_text(d, long=False), d.choice([None, "S"]))
    if kind < 14:
        fields = tuple(
            _sms_text(d, long=False) if k == 1 else d.value() for k in range(d.below(7))
        )
        return d.choice([tuple, *TUPLE_SUBCLASSES])(fields)
    return d.value()


class _Iterable:
    """Items that are neither a list nor a tuple (copied by both twins); iterable
    anew for each twin."""

    def __init__(self, items: Any) -> None:
        self.items = items

    def __iter__(self) -> Any:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"_Iterable({show(self.items)})"


def _sms_items(d: Draw) -> Any:
    items = d.batch(lambda: _sms_item(d))
    kind = d.below(16)
    if kind == 0:
        return _Iterable(items)
    if kind == 1:
        return d.choice(["text", b"text", bytearray(b"x"), None, 5, {"a": "b"}])
    return items


@target("segments", module=_SMS)
def _segments(d: Draw) -> Args:
    return (_sms_text(d) if d.below(8) else d.value(),), {}


@target("count_segments", module=_SMS)
def _count_segments(d: Draw) -> Args:
    return (_sms_items(d),), {}


@target("total_segments", module=_SMS)
def _total_segments(d: Draw) -> Args:
    return (_sms_items(d),), {}


# -- running one input ----------------------------------------------------------------------


class Disagreement(AssertionError):
    """The twins answered one input differently."""


def outcome(call: Callable[[], Any], view: Callable[[Any], Any] | None = None) -> tuple[Any, ...]:
    """A call's result, or the parts of its exception both twins must agree on."""
    try:
        result = call()
        if view is not None:
            return ("ok", view(result))
    except (MessageError, ProtocolError) as exc:
        return ("error", type(exc), *exc.args[:2])
    except (HPGError, TypeError, ValueError, LookupError, OverflowError) as exc:
        return ("error", type(exc))
    if isinstance(result, list):  # records: equal values and the same classes
        return ("ok", result, [type(r) for r in result])
    return ("ok", result)


def one_input(name: str, data: bytes) -> None:
    """Run target ``name`` on fuzzer bytes; raise ``Disagreement`` if the twins differ."""
    spec = TARGETS[name]
    args, kwargs = spec.draw(Draw(data))
    pure, compiled = spec.functions()
    expected = outcome(lambda: pure(*args, **kwargs), spec.view)
    actual = outcome(lambda: compiled(*args, **kwargs), spec.view)
    if actual != expected:
        shown = f"{name}(*{_short(args)}, **{_short(kwargs)})"
        raise Disagreement(
            f"{shown}\n  pure:     {_short(expected)}\n  compiled: {_short(actual)}"
        )


def show(value: Any) -> str:
    """A repr that names lying subclasses (a ``FalsyStr`` reprs as a plain str)."""
    cls = type(value)
    if cls is list:
        return "[" + ", ".join(show(v) for v in value) + "]"
    if issubclass(cls, tuple) and cls.__repr__ is tuple.__repr__:
        items = [show(v) for v in tuple.__iter__(value)]
        text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return text if cls is tuple else f"{cls.__name__}({text})"
    if cls is dict:
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in value.items()) + "}"
    if cls is Message:
        return "Message" + show(tuple(value))
    for base in (str, int, float):
        if isinstance(value, base) and cls is not base and cls is not bool:
            return f"{cls.__name__}({base.__repr__(value)})"
    return repr(value)


def _short(value: Any, most: int = 2000) -> str:
    text = show(value)
    return text if len(text) <= most else text[:most] + f"... ({len(text)} characters)"


# -- the reply reader (llhttp's callbacks): hpgfast._response_c against _response_py ----

_REPLY_PARTS = [
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.0 429 X\r\n",
    b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", b"Content-Length: 5\r\n",
    b"Content-Length: 50000\r\n", b"content-length: 10\r\n", b"Transfer-Encoding: chunked\r\n",
    b"TRANSFER-ENCODING: gzip, chunked \r\n", b"Connection: close\r\n",
    b"Connection: keep-alive\r\n", b"Retry-After: 2\r\n", b"retry-after:  \xff7 \r\n",
    b"X-Long-Header-Name: v\r\n", b"Date: x\r\n", b"\r\n", b"5\r\nabcde\r\n", b"0\r\n\r\n",
    b"fffffffff\r\n", b"ok;0;1001\n", b"\n", b"\x00",
]  # fmt: skip


def _drive_reader(cls: Any) -> Callable[..., Any]:
    """A reader class as one call: feed the chunks, maybe EOF, then everything a
    transport asks of it, then a reuse and a second reply."""

    def run(chunks: list[bytes], eof: bool, cap: int, again: bytes) -> Any:
        reader = cls(cap)
        seen = []
        for chunk in chunks:
            seen.append(reader.feed(chunk))
        if eof:
            seen.append(reader.eof())
        state = (seen, reader.done, reader.ok, reader.status, reader.retry_after,
                 reader.keep_alive, reader.extra, reader.received, reader.error_text)  # fmt: skip
        if reader.ok:
            state += (tuple(reader.reply()),)
        elif reader.done:
            failure = reader.failure("u", str.upper)
            state += (failure.kind, type(failure.error), str(failure.error))
        if reader.reuse():
            reader.feed(again)
            state += (reader.done, reader.ok, reader.status, reader.body, reader.received)
        return state

    return run


@target(
    "ResponseReader",
    module=("hpgfast._response_py", "hpgfast._response_c"),
    names=("ResponseReader", "ResponseReader"),
    wrap=_drive_reader,
)
def _response_reader(d: Draw) -> Args:
    data = b"".join(d.choice(_REPLY_PARTS) for _ in range(d.below(16)))
    if d.below(4) == 0:
        data = data[: d.below(len(data) + 1)]
    chunks, rest = [], data
    while rest:
        cut = d.below(len(rest)) + 1
        chunks.append(rest[:cut])
        rest = rest[cut:]
    again = b"".join(d.choice(_REPLY_PARTS) for _ in range(d.below(8)))
    return (chunks, bool(d.below(2)), d.choice([1, 5, 10, 64, 1000, 10**6]), again), {}
