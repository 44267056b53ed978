"""The one base-62 id writer (``_wire.base62``) and its C twin in the compiled core.

Every id hpgfast writes in base 62 (a clientId's suffix, a request's counter, a
journal line's number) goes through ``_wire.base62``; the compiled codec writes a
made clientId's suffix with its C twin (``_codec_c.base62`` calls it), and the
two are held to each other here.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hpgfast import _codec_py, _wire
from hpgfast.core import _ids
from hpgfast.journal import _file

#: The widest number the C twin takes: 62**10 is below 2**63 (Py_ssize_t).
C_WIDTH = 10


def _value(digits: str) -> int:
    number = 0
    for digit in digits:
        number = number * 62 + _wire.ID_ALPHABET.index(digit)
    return number


@given(st.integers(0, 14), st.data())
@example(0, None)
def test_base62_writes_width_digits_most_significant_first(width: int, data: object) -> None:
    numbers = [0, 62**width - 1]
    if data is not None:
        numbers.append(data.draw(st.integers(0, 62**width - 1)))  # type: ignore[attr-defined]
    for number in numbers:
        digits = _wire.base62(number, width)
        assert len(digits) == width
        assert set(digits) <= set(_wire.ID_ALPHABET)
        assert _value(digits) == number


@pytest.mark.parametrize("number, width", [(-1, 3), (62**3, 3), (1, 0), (62**2, 2)])
def test_base62_refuses_what_does_not_fit(number: int, width: int) -> None:
    with pytest.raises(ValueError, match="base-62"):
        _wire.base62(number, width)


@given(st.integers(0, C_WIDTH).flatmap(lambda w: st.tuples(st.just(w), st.integers(-2, 62**w + 1))))
@example((3, 238_327))
@example((10, 62**10 - 1))
@example((10, 62**10))
def test_the_c_twin_writes_what_the_python_writer_writes(
    compiled: ModuleType, case: tuple[int, int]
) -> None:
    width, number = case
    try:
        expected: object = _wire.base62(number, width)
    except ValueError as exc:
        expected = ValueError, str(exc)
    try:
        got: object = compiled.base62(number, width)
    except ValueError as exc:
        got = ValueError, str(exc)
    assert got == expected


def test_every_python_user_writes_with_the_one_writer() -> None:
    # Each user's digits are base62's: the codec's clientId suffix, the wire's list
    # of suffixes, a request's counter and a journal line's number.
    assert _wire.client_id_suffixes(70)[69] == _wire.base62(69, _wire.ID_SUFFIX_LENGTH)
    assert _codec_py.sent_ids([("s", "a", "t")] * 70, 0, 70, "P")[69] == "P" + _wire.base62(
        69, _wire.ID_SUFFIX_LENGTH
    )
    for module, name in ((_codec_py, "_id_suffix"), (_ids, "_counter_digits"), (_file, "_base62")):
        assert not hasattr(module, name), f"{module.__name__}.{name} is a second base-62 writer"
