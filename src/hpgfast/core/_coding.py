"""A reply body's size cap and its ``Content-Encoding``: the rules, once, for both transports.

Strategy:

- **The cap follows the request.** A reply carries a line per message (SEND) or
  per id (STATUS); its size grows with the request, not with a constant. By
  default a request's cap is ``max(4 MiB, 512 bytes per item + 64 KiB)``, about
  ten times the longest line seen per item (``ok;<20 digits>;<20 digits>``, a
  STATUS line with a reason), made once when the request begins
  (``Batch.begin_line``) and set on the transport's reader, so the framing and
  the decoding below refuse at the same number. A cap the user sets is a hard
  cap for every request.
- **Read what is sent, whatever was asked.** hpgfast sends no
  ``Accept-Encoding``, and proxies and platforms compress all the same. ``gzip``
  (and its old name ``x-gzip``) and ``deflate`` are read, ``deflate`` both
  zlib-wrapped (RFC 9110) and raw (as browsers and urllib3 accept it), the zlib
  header deciding which; ``identity`` is nothing to undo. Any other coding (``br``,
  ``zstd``...) cannot be read: the reply is a protocol failure, as a reply cut
  off is. A stream that does not end, or fails its checksum, is one too: its
  last line could be read cut (a providerId of fewer digits).
- **Never inflated past the cap.** Decoding runs in steps of at most ``STEP``
  bytes and stops at the first byte over the cap: a decompression bomb (1 MB of
  gzip that inflates to 1 GiB) costs at most the cap in memory, and is refused,
  never read.
- No I/O: bytes and a number in, bytes out (or ``CodingError``).
"""

from __future__ import annotations

import zlib
from typing import Optional

__all__ = [
    "REPLY_BYTES_FLOOR",
    "REPLY_BYTES_PER_ITEM",
    "REPLY_BYTES_SLACK",
    "CodingError",
    "decode_body",
    "reply_cap",
]

#: A request's reply cap is never below this by default (the fixed cap of old).
REPLY_BYTES_FLOOR = 4 * 1024 * 1024
#: ... and grows by this much per message or id in the request ...
REPLY_BYTES_PER_ITEM = 512
#: ... plus this, for whatever a reply carries besides its lines.
REPLY_BYTES_SLACK = 64 * 1024
#: The most bytes one decoding step makes (a bomb is refused a step past the cap).
STEP = 1024 * 1024
#: Codings listed in one Content-Encoding header, at most (``gzip, gzip`` is two).
MAX_CODINGS = 4

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS
_GZIP_MAGIC = b"\x1f\x8b"


class CodingError(Exception):
    """A reply body that cannot be decoded within the cap: the text says why."""


def reply_cap(items: int, explicit: Optional[int] = None) -> int:
    """The reply cap of a request of ``items`` messages or ids.

    ``explicit``: ``Settings.max_reply_bytes`` when the user set it (a hard cap);
    ``None``: ``max(REPLY_BYTES_FLOOR, REPLY_BYTES_PER_ITEM * items + REPLY_BYTES_SLACK)``.
    """
    if explicit is not None:
        return explicit
    return max(REPLY_BYTES_FLOOR, REPLY_BYTES_PER_ITEM * items + REPLY_BYTES_SLACK)


def decode_body(body: bytes, coding: str, cap: int) -> bytes:
    """``body`` with its ``Content-Encoding`` (``coding``, the header as sent) undone.

    Codings are undone last first, as RFC 9110 lists them. An empty body stays
    empty (a coding named on nothing).

    Raises:
        CodingError: a coding hpgfast does not read, a broken or unfinished
            stream, or a body that decodes to more than ``cap`` bytes.
    """
    codings = [c.strip().lower() for c in coding.split(",")]
    if len(codings) > MAX_CODINGS:
        raise CodingError(f"the reply lists {len(codings)} content codings")
    for name in reversed(codings):
        if not body or name in ("identity", ""):
            continue
        if name in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP, cap, name)
        elif name == "deflate":
            body = _inflate(body, _ZLIB if _zlib_header(body) else _RAW, cap, name)
        else:
            # The name only, cut short: it is the server's text.
            raise CodingError(
                f"the reply's body is in Content-Encoding {name[:40]!r}, which hpgfast "
                "does not read (it reads gzip and deflate)"
            )
    return body


def _zlib_header(data: bytes) -> bool:
    """True when ``data`` opens with a zlib header (RFC 1950): deflate, a window of at
    most 32 KiB, and a check value. A raw deflate stream's first block header
    cannot pass it (its padding bits are zero)."""
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _inflate(data: bytes, wbits: int, cap: int, name: str) -> bytes:
    """Inflate ``data`` (gzip members one after another, or one zlib or raw stream),
    in steps, refusing it at the first byte over ``cap``."""
    pieces: list[bytes] = []
    size = 0
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            while True:
                most = min(cap - size + 1, STEP)
                piece = inflater.decompress(data, most)
                size += len(piece)
                if size > cap:
                    raise CodingError(
                        f"the reply's {name} body decodes to over max_reply_bytes={cap}"
                    )
                pieces.append(piece)
                data = inflater.unconsumed_tail
                # A full step may leave output pending inside zlib, input or not.
                if inflater.eof or (not data and len(piece) < most):
                    break
        except zlib.error as exc:
            raise CodingError(f"the reply's {name} body cannot be decoded: {exc}") from None
        if not inflater.eof:
            raise CodingError(f"the reply's {name} body ends inside its compressed stream")
        # A stream read whole and checked (CRC-32 or Adler-32). Another gzip member
        # may follow (RFC 1952 2.2); anything else after it is not the body's.
        data = inflater.unused_data
        if wbits != _GZIP or not data.startswith(_GZIP_MAGIC):
            return b"".join(pieces)
