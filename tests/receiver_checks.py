"""The receiver tests' shared parts (their fixtures, ``got`` and ``receiver``, are in
conftest.py): the secret the test receivers take, and one raw HTTP exchange."""

from __future__ import annotations

import http.client
from typing import Optional

from hpgfast.receiver import Receiver

SECRET = "s3cret-K3y_~.-"


def raw(server: Receiver, method: str, target: str, body: bytes = b"",
        headers: Optional[dict[str, str]] = None) -> tuple[int, str]:
    """One request to ``server``: its status and its body as text, stripped."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        conn.close()
