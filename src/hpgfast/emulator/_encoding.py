"""The ``Content-Encoding`` of the emulator's replies (``reply_encoding``).

Strategy: HPG clients never ask for a compressed reply, and platforms, proxies and
gateways in front of them send one all the same. Each coding a reply may come in
is one name here, so a test plays it with one setting:

- ``gzip``, ``deflate`` (zlib-wrapped, RFC 9110's), ``deflate-raw`` (a raw deflate
  stream labelled ``deflate``, as some servers send and browsers accept);
- ``br``: the body as it is, labelled ``br``: a coding the client does not read;
- ``gzip-bomb``: a gzip stream of ``BOMB_BYTES`` zero bytes, then the reply's
  lines: about 1 MB on the wire that inflates to 1 GiB. The zeros' stream is
  compressed once per process (a few seconds) and copied for each reply.
"""

from __future__ import annotations

import threading
import zlib
from typing import Optional

__all__ = ["BOMB_BYTES", "REPLY_ENCODINGS", "encode"]

#: The values ``reply_encoding`` takes (None: a plain reply).
REPLY_ENCODINGS = ("gzip", "deflate", "deflate-raw", "br", "gzip-bomb")
#: What a ``gzip-bomb`` reply inflates to, before the reply's own lines.
BOMB_BYTES = 1 << 30

_CHUNK = bytes(1 << 20)
_bomb_lock = threading.Lock()
#: The zeros' compressor state (not flushed) and the bytes it wrote: made once.
_bomb: Optional[tuple[zlib._Compress, bytes]] = None


def _bomb_head() -> tuple[zlib._Compress, bytes]:
    global _bomb
    with _bomb_lock:
        if _bomb is None:
            compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            written = [compressor.compress(_CHUNK) for _ in range(BOMB_BYTES // len(_CHUNK))]
            _bomb = (compressor, b"".join(written))
        return _bomb


def encode(encoding: str, body: bytes) -> tuple[bytes, str]:
    """``body`` in ``encoding`` (one of ``REPLY_ENCODINGS``), and the header's value."""
    if encoding == "gzip":
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return compressor.compress(body) + compressor.flush(), "gzip"
    if encoding == "deflate":
        return zlib.compress(body), "deflate"
    if encoding == "deflate-raw":
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(body) + compressor.flush(), "deflate"
    if encoding == "br":
        return body, "br"
    if encoding == "gzip-bomb":
        head, written = _bomb_head()
        compressor = head.copy()
        return written + compressor.compress(body) + compressor.flush(), "gzip"
    raise ValueError(f"reply_encoding must be one of {REPLY_ENCODINGS}, got {encoding!r}")
