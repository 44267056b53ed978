"""The bounds of a reply both reply readers enforce (``_response_py`` and ``_response_c``).

Kept apart from either reader so that both twins import them from one place, and
the compiled one does not import the pure one.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_HEAD", "MAX_HEADERS", "MAX_INTERIM", "MAX_RAW_HEAD"]

#: The longest status line plus headers accepted (names and values), like
#: http.client's 64 KiB line limit: llhttp itself has none.
MAX_HEAD: Final = 64 * 1024
#: At most this many header lines (http.client's _MAXHEADERS).
MAX_HEADERS: Final = 100
#: At most this many 1xx responses before the final one.
MAX_INTERIM: Final = 10
#: Bytes fed before the final response's headers end, past which the reply is
#: refused even if llhttp is still skipping something (blank lines): far above
#: what the limits above let through, so it decides only on endless junk.
MAX_RAW_HEAD: Final = 4 * MAX_HEAD
