"""Objects that lie about themselves: str, tuple and int subclasses overriding what
an encoder might ask them, for the twins' hostile-type tests and the fuzz harnesses.
"""

from __future__ import annotations

from typing import Any


class FalsyStr(str):
    """A non-empty string that says it is false (query injection)."""

    def __bool__(self) -> bool:
        return False


class ZeroLenStr(str):
    def __len__(self) -> int:
        return 0


class LongLenStr(str):
    def __len__(self) -> int:
        return 10**6


class EncodeStr(str):
    """A string whose encode() says something else than its characters."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"evil&password=x"


class StrStr(str):
    def __str__(self) -> str:
        return "evil&password=x"


class HashStr(str):
    """Equal to nothing and all in one hash bucket: defeats ``in`` and dict checks."""

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True


class GetitemStr(str):
    def __getitem__(self, index: Any) -> str:  # type: ignore[override]
        return "&"

    def __iter__(self) -> Any:
        return iter("&=&")


STR_SUBCLASSES = (FalsyStr, ZeroLenStr, LongLenStr, EncodeStr, StrStr, HashStr, GetitemStr)


class LongTuple(tuple):  # type: ignore[type-arg]
    """A message that says it has 7 fields."""

    def __len__(self) -> int:
        return 7


class ShortTuple(tuple):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 2


class GetitemTuple(tuple):  # type: ignore[type-arg]
    def __getitem__(self, index: Any) -> Any:
        return "evil&password=x"

    def __add__(self, other: Any) -> Any:
        return ("evil&password=x",) * 5


TUPLE_SUBCLASSES = (LongTuple, ShortTuple, GetitemTuple)


class FakeTuple:
    """Not a tuple, though ``isinstance(x, tuple)`` says it is."""

    __class__ = tuple  # type: ignore[assignment]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> str:
        return "x"


class OddInt(int):
    """An int whose __index__ and comparisons say other things than its value."""

    def __index__(self) -> int:
        return 5

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return True


class OddFloat(float):
    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False


class FakeStr:
    """Pairs that pose as a ``str`` (which is refused as params): real type decides."""

    __class__ = str  # type: ignore[assignment]

    def __iter__(self) -> Any:
        return iter([("a", "b")])
