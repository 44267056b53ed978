"""hpgfast: a fast, safe client for the MFMS HPG SMS protocol.

The codec (``hpgfast.codec``) turns messages into HPG query strings and replies into
records; it runs on a compiled core with a pure-Python twin. ``Client`` sends them
to the platform over pooled HTTP(S) connections; ``AsyncClient`` does the same on
asyncio, imported only when first used (so that ``import hpgfast`` never loads
asyncio).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._records import Message, SendResult, StatusResult
from ._wire import Code, Status
from .client import Client, SendFailure, StatusFailure
from .exceptions import (
    AccountError,
    AuthError,
    ConnectError,
    HPGError,
    HTTPStatusError,
    MessageError,
    MessageTooLarge,
    MessageTypeError,
    ProtocolError,
    RequestRejected,
    RequestTooLarge,
    TLSError,
    TransportError,
    results_of,
)

if TYPE_CHECKING:
    from .aio import AsyncClient

__version__ = "0.1.0"

__all__ = [
    "AccountError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Code",
    "ConnectError",
    "HPGError",
    "HTTPStatusError",
    "Message",
    "MessageError",
    "MessageTooLarge",
    "MessageTypeError",
    "ProtocolError",
    "RequestRejected",
    "RequestTooLarge",
    "SendFailure",
    "SendResult",
    "Status",
    "StatusFailure",
    "StatusResult",
    "TLSError",
    "TransportError",
    "__version__",
    "results_of",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # Importing asyncio costs a sender that never uses it tens of milliseconds at start-up.
    if name == "AsyncClient":
        from .aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module 'hpgfast' has no attribute {name!r}")
