"""Type stub of the compiled segment counter: the same signatures as ``_sms_py``."""

from collections.abc import Iterable
from typing import Any, Union

from ._records import Message
from ._sms_records import Segments, SegmentTotals

__all__ = ["count_segments", "segments", "total_segments"]

Item = Union[str, Message, tuple[Any, ...]]

def segments(text: str) -> Segments: ...
def count_segments(items: Iterable[Item]) -> list[Segments]: ...
def total_segments(items: Iterable[Item]) -> SegmentTotals: ...
