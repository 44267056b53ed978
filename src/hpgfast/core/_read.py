"""The reply readers the rules use: one record per readable line, a note per bad one.

``read_send``/``read_status`` of the codec read a reply line by line and report an
unreadable line as a ``ProtocolError`` instead of raising for the whole body, so a
bad line costs only its own message. Until a codec without them is gone, this
falls back to reading the lines one at a time with ``parse_*``.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, Optional

from .. import codec
from ..exceptions import ProtocolError

__all__ = ["read_send", "read_status"]


def _by_line(parse: Any, body: bytes) -> tuple[list[Any], list[ProtocolError]]:
    try:
        return parse(body), []
    except ProtocolError:
        pass
    records: list[Any] = []
    errors: list[ProtocolError] = []
    data = bytes(body)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, line in enumerate(data.split(b"\n"), 1):
        try:
            records.extend(parse(line))
        except ProtocolError as exc:
            errors.append(ProtocolError(number, exc.reason))
    return records, errors


if hasattr(codec, "read_send"):
    read_send = getattr(codec, "read_send")  # noqa: B009
    read_status = getattr(codec, "read_status")  # noqa: B009
else:

    def read_send(body: bytes) -> tuple[list[Any], list[ProtocolError]]:
        return _by_line(codec.parse_send, body)

    def read_status(
        body: bytes, *, tz: Optional[tzinfo] = None
    ) -> tuple[list[Any], list[ProtocolError]]:
        return _by_line(lambda b: codec.parse_status(b, tz=tz), body)
