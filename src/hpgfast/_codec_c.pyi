"""Type stub of the compiled codec core: the same signatures as ``_codec_py``."""

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any, Optional, Union

from ._columns import SendColumns
from ._records import Message, Params, SendResult, StatusResult
from .exceptions import ProtocolError

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

Body = Union[bytes, bytearray, memoryview]

def encode_send(
    messages: Sequence[Union[Message, tuple[Any, ...]]],
    *,
    start: int = 0,
    max_bytes: Optional[int] = None,
    max_count: Optional[int] = None,
    default_subject: Optional[str] = None,
    quote_brackets: bool = False,
    id_prefix: Optional[str] = None,
) -> tuple[bytes, int]: ...
def encode_status(
    provider_ids: Sequence[str],
    *,
    start: int = 0,
    max_bytes: Optional[int] = None,
    max_count: Optional[int] = None,
    quote_brackets: bool = False,
) -> tuple[bytes, int]: ...
def encode_params(pairs: Params) -> bytes: ...
def parse_send(body: Body, *, charset: Optional[str] = None) -> list[SendResult]: ...
def parse_status(
    body: Body, *, tz: Optional[tzinfo] = None, charset: Optional[str] = None
) -> list[StatusResult]: ...
def read_send(
    body: Body, *, charset: Optional[str] = None
) -> tuple[list[SendResult], list[ProtocolError]]: ...
def read_send_columns(body: Body, *, charset: Optional[str] = None) -> SendColumns: ...
def match_send(
    body: Body, expect: Sequence[Any], *, charset: Optional[str] = None
) -> tuple[list[SendResult], list[ProtocolError], int]: ...
def match_status(
    body: Body,
    expect: Sequence[Any],
    *,
    tz: Optional[tzinfo] = None,
    charset: Optional[str] = None,
) -> tuple[list[StatusResult], list[ProtocolError], int]: ...
def read_status(
    body: Body, *, tz: Optional[tzinfo] = None, charset: Optional[str] = None
) -> tuple[list[StatusResult], list[ProtocolError]]: ...
def sent_ids(
    messages: Sequence[Union[Message, tuple[Any, ...]]],
    start: int,
    end: int,
    id_prefix: Optional[str] = None,
) -> list[str]: ...
def base62(number: int, width: int) -> str: ...
