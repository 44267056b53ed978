"""The size rule: no Python function over 120 lines, no module over 700.

Every ``.py`` module under ``src/hpgfast`` is checked (the compiled cores are
``.pyx`` and not): a unit that grows past the rule is split along its phases.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 120
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hpgfast"

def _modules() -> list[str]:
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


def _breaches(relative: str, package: Path = PACKAGE) -> list[str]:
    """What in the module breaks the rule, one line each (none: it keeps it)."""
    source = (package / relative).read_text(encoding="utf-8")
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{relative}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, relative)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # From the def line to the last line of the body, nested functions included.
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{relative}:{node.lineno}: {node.name} is {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )
    return found


@pytest.mark.parametrize("relative", _modules())
def test_module_keeps_the_line_limits(relative: str) -> None:
    assert _breaches(relative) == []


def test_the_check_sees_the_split_modules() -> None:
    modules = _modules()
    for split in ("receiver/_app.py", "receiver/_server.py", "emulator/_emulator.py",
                  "emulator/_settings.py", "emulator/_server.py", "emulator/_platform.py"):
        assert split in modules


def test_the_check_finds_a_long_function_and_a_long_module(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = f"def long():\n{body}\n" + "\n" * MAX_MODULE_LINES
    (tmp_path / "probe.py").write_text(source, encoding="utf-8")
    found = _breaches("probe.py", tmp_path)
    assert len(found) == 2 and "long is 121 lines" in found[1]
