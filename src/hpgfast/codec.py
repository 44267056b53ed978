"""The codec in use: the compiled core when it is there, else its pure-Python twin.

``IMPLEMENTATION`` says which: ``"compiled"`` or ``"python"``. Setting the
environment variable ``HPGFAST_PURE_PYTHON=1`` (or running on an interpreter other
than CPython) forces the pure twin at import. Both export the same functions with
the same signatures, results and exceptions; type checkers read the pure one. The
switch is ``_switch``, which every selector reads.

Every reader (``parse_*``, ``read_*``, ``match_*``) takes ``charset=`` (the reply's
declared charset, from its Content-Type; None by default): a reason, description or
extra field that is not UTF-8 is decoded by it (else with U+FFFD), and a time in
another shape is read as ISO-8601 or is None, without costing the line; both twins
read such fields with ``hpgfast._fields``, and the record keeps the line's bytes as
``.raw``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._switch import PURE_PYTHON_REQUESTED

__all__ = [
    "IMPLEMENTATION",
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

if TYPE_CHECKING or PURE_PYTHON_REQUESTED:
    from ._codec_py import (
        encode_params,
        encode_send,
        encode_status,
        match_send,
        match_status,
        parse_send,
        parse_status,
        read_send,
        read_send_columns,
        read_status,
        sent_ids,
    )

    IMPLEMENTATION = "python"
else:
    try:
        from ._codec_c import (
            encode_params,
            encode_send,
            encode_status,
            match_send,
            match_status,
            parse_send,
            parse_status,
            read_send,
            read_send_columns,
            read_status,
            sent_ids,
        )
    except ImportError:  # installed with HPGFAST_NO_EXTENSIONS=1, or no compiler
        from ._codec_py import (
            encode_params,
            encode_send,
            encode_status,
            match_send,
            match_status,
            parse_send,
            parse_status,
            read_send,
            read_send_columns,
            read_status,
            sent_ids,
        )

        IMPLEMENTATION = "python"
    else:
        IMPLEMENTATION = "compiled"
