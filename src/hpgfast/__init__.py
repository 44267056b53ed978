"""hpgfast: a fast, safe client for the MFMS HPG SMS protocol.

The codec (``hpgfast.codec``) turns messages into HPG query strings and replies into
records; it runs on a compiled core with a pure-Python twin. ``Client`` sends them
to the platform over pooled HTTP(S) connections; ``AsyncClient`` does the same on
asyncio. Both are imported when first used: ``import hpgfast`` loads neither urllib3
nor asyncio, so the ``hpgfast`` command is listening for Ctrl-C within milliseconds
of its start.

The ``hpgfast`` command is ``hpgfast.cli``; its exit codes, one table for every
command, are in ``hpgfast.cli._exit`` and docs/cli.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._records import Message, SendResult, StatusResult
from ._wire import Code, Status
from .exceptions import (
    AccountError,
    AuthError,
    ConnectError,
    HPGError,
    HTTPStatusError,
    MessageError,
    MessageTooLarge,
    MessageTypeError,
    PlatformUnavailable,
    ProtocolError,
    ProxyError,
    RequestRejected,
    RequestTooLarge,
    TLSError,
    TransportError,
    UnexpectedReply,
    results_of,
)

if TYPE_CHECKING:
    from ._settings import Settings
    from .aio import AsyncClient
    from .client import Client, SendFailure, StatusFailure
    from .core import CompactResults
    from .journal import open_journal

__version__ = "0.1.0"

__all__ = [
    "AccountError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Code",
    "CompactResults",
    "ConnectError",
    "HPGError",
    "HTTPStatusError",
    "Message",
    "MessageError",
    "MessageTooLarge",
    "MessageTypeError",
    "PlatformUnavailable",
    "ProtocolError",
    "ProxyError",
    "RequestRejected",
    "RequestTooLarge",
    "SendFailure",
    "SendResult",
    "Settings",
    "Status",
    "StatusFailure",
    "StatusResult",
    "TLSError",
    "TransportError",
    "UnexpectedReply",
    "__version__",
    "open_journal",
    "results_of",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


#: Names imported on first use: asyncio costs a sender that never uses it tens of
#: milliseconds at start-up, urllib3 (the client) a hundred or more.
_LAZY = {
    "AsyncClient": "aio",
    "Client": "client",
    "CompactResults": "core",
    "SendFailure": "client",
    "Settings": "_settings",
    "StatusFailure": "client",
    "open_journal": "journal",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpgfast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
