"""The one switch every twin selector reads: the compiled core, or pure Python.

``codec.py``, ``sms.py`` and ``_response.py`` each import their compiled module
unless ``PURE_PYTHON_REQUESTED`` is true: the environment variable
``HPGFAST_PURE_PYTHON`` is set (to anything non-empty), or the interpreter is not
CPython (the compiled modules are built for CPython only). It is read once, at
import, so that every selector in a process takes the same side.
"""

from __future__ import annotations

import os
import platform

__all__ = ["PURE_PYTHON_REQUESTED"]

#: True when the environment asks for the pure twins.
PURE_PYTHON_REQUESTED = bool(os.environ.get("HPGFAST_PURE_PYTHON")) or (
    platform.python_implementation() != "CPython"
)
