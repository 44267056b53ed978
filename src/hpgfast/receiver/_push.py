"""Pushing reports, as the platform does: the other side of the receiver.

The emulator's push mode and the tests call ``push``; the three shapes of a body
(``status_lines``, ``status_params``, ``status_json``) are what a receiver reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Optional
from urllib.parse import quote

from .._wire import PROVIDER_ID
from ._app import SECRET_HEADER
from ._reports import _FORM, _SEP, DATETIME, REASON, STATUS_PARAM


def _format_time(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y.%m.%d %H:%M:%S"))
    return str(value)


def status_lines(reports: Iterable[Sequence[Any]]) -> bytes:
    """Reports ``(code, providerId, status, dateTime, reason)`` as STATUS reply lines
    (items after these, a record's ``raw``, are not sent)."""
    out = []
    for code, provider_id, status, when, reason in (r[:5] for r in reports):
        out.append(_SEP.join((
            code, provider_id or "", status or "", _format_time(when), reason or "",
        )))
    return ("\n".join(out) + "\n").encode("utf-8")


def status_params(reports: Iterable[Sequence[Any]]) -> str:
    """Reports as indexed ``providerId[i]=..&status[i]=..`` parameters (``%20`` spaces)."""
    parts = []
    for i, (_code, provider_id, status, when, reason) in enumerate(r[:5] for r in reports):
        for name, value in (
            (PROVIDER_ID, provider_id), (STATUS_PARAM, status),
            (DATETIME, _format_time(when)), (REASON, reason or ""),
        ):
            parts.append(f"{name}[{i}]={quote(str(value or ''), safe='')}")
    return "&".join(parts)


def status_json(reports: Iterable[Sequence[Any]]) -> bytes:
    """Reports as the platform's later JSON callbacks: a list of ``{"imOutMessageId",
    "dlvStatus", "dlvStatusAt", "reason"}`` objects (``datetime`` times in ISO-8601
    with milliseconds; text times as given)."""
    out = []
    for _code, provider_id, status, when, reason in (r[:5] for r in reports):
        item: dict[str, Any] = {"imOutMessageId": provider_id, "dlvStatus": status}
        if when is not None and when != "":
            item["dlvStatusAt"] = (when.isoformat(timespec="milliseconds")
                                   if hasattr(when, "isoformat") else str(when))
        if reason:
            item["reason"] = reason
        out.append(item)
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


def push(
    url: str,
    reports: Iterable[Sequence[Any]],
    *,
    secret: Optional[str] = None,
    secret_header: str = SECRET_HEADER,
    shape: str = "lines",
    timeout: float = 10.0,
) -> tuple[int, str]:
    """Push reports to a receiver, as the platform would; returns (HTTP status, text).

    ``shape`` is ``"lines"`` (POST, a body of STATUS lines), ``"form"`` (POST, an
    indexed form body), ``"query"`` (GET, indexed query parameters) or ``"json"``
    (POST, a JSON list of ``status_json`` objects). This is what the emulator's push
    mode calls.
    """
    import urllib3

    items = list(reports)
    headers = {} if secret is None else {secret_header: secret}
    if shape == "lines":
        method, body, target = "POST", status_lines(items), url
        headers["Content-Type"] = "text/plain; charset=utf-8"
    elif shape == "form":
        method, body, target = "POST", status_params(items).encode("ascii"), url
        headers["Content-Type"] = _FORM
    elif shape == "query":
        method, body = "GET", None
        target = url + ("&" if "?" in url else "?") + status_params(items)
    elif shape == "json":
        method, body, target = "POST", status_json(items), url
        headers["Content-Type"] = "application/json"
    else:
        raise ValueError(f"shape must be lines, form, query or json, got {shape!r}")
    with urllib3.PoolManager(retries=False, timeout=timeout) as pool:
        response = pool.request(method, target, body=body, headers=headers)
        return response.status, response.data.decode("utf-8", "replace").strip()

