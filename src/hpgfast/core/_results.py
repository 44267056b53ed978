"""Result records for messages (or ids) no reply line spoke for.

``SendFailure`` and ``StatusFailure`` are the outcomes hpgfast makes up itself:
``not-sent``, ``unknown``, or a whole-request code applied to every message of a
request. Each carries ``error``, the exception behind it, so a person can see why.
"""

from __future__ import annotations

from typing import Any, Optional

from .._records import SendResult, StatusResult
from ..exceptions import HPGError

__all__ = ["SendFailure", "StatusFailure"]


class SendFailure(SendResult):
    """A ``SendResult`` hpgfast made up because no reply line said what happened.

    ``code`` is ``"not-sent"``, ``"unknown"``, or the code of a whole-request
    rejection (``"error-syntax"``...); ``error`` is the exception behind it (a
    ``TransportError``, ``HTTPStatusError``, ``ProtocolError``, ``RequestRejected``),
    with the HTTP status and the platform's description where there were any. It
    compares equal to a ``SendResult`` with the same fields.
    """

    # No __slots__: the instance dict holds ``error``; only failures pay for it.
    error: Optional[HPGError]

    def __new__(
        cls,
        code: str,
        client_id: Optional[str] = None,
        provider_id: Optional[str] = None,
        error: Optional[HPGError] = None,
    ) -> SendFailure:
        self = tuple.__new__(cls, (code, client_id, provider_id))
        self.error = error
        return self

    def __repr__(self) -> str:
        return (
            f"SendFailure(code={self[0]!r}, client_id={self[1]!r}, provider_id={self[2]!r}, "
            f"error={self.error!r})"
        )


class StatusFailure(StatusResult):
    """A ``StatusResult`` hpgfast made up because no reply line answered for the id.

    ``code`` is ``"not-sent"``, ``"unknown"`` or a whole-request rejection code;
    ``error`` is the exception behind it. Compares equal to a ``StatusResult``.
    """

    error: Optional[HPGError]

    def __new__(
        cls,
        code: str,
        provider_id: Optional[str] = None,
        status: Optional[str] = None,
        time: Any = None,
        reason: Optional[str] = None,
        error: Optional[HPGError] = None,
    ) -> StatusFailure:
        self = tuple.__new__(cls, (code, provider_id, status, time, reason))
        self.error = error
        return self

    def __repr__(self) -> str:
        return f"StatusFailure(code={self[0]!r}, provider_id={self[1]!r}, error={self.error!r})"
