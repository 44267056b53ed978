"""The reply reader in use: the compiled one when it is there, else its pure twin.

Both clients read every reply with ``ResponseReader`` from here. The pure reader
(``_response_py``, on httptools' llhttp) is the reference; the compiled one
(``_response_c``) takes llhttp's callbacks in C. ``IMPLEMENTATION`` says which is
in use: ``"compiled"`` or ``"python"``; ``HPGFAST_PURE_PYTHON=1`` forces the twin,
as for ``hpgfast.codec`` (the switch is ``_switch``). The bounds both enforce are
in ``_http_limits``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._switch import PURE_PYTHON_REQUESTED

__all__ = ["IMPLEMENTATION", "ResponseReader"]

if TYPE_CHECKING or PURE_PYTHON_REQUESTED:
    from ._response_py import ResponseReader

    IMPLEMENTATION = "python"
else:
    try:
        from ._response_c import ResponseReader
    except ImportError:  # installed with HPGFAST_NO_EXTENSIONS=1, or no compiler
        from ._response_py import ResponseReader

        IMPLEMENTATION = "python"
    else:
        IMPLEMENTATION = "compiled"
