"""One layout for every accelerated module: selector, compiled twin, pure twin.

For each compiled module ``_x_c.pyx`` there is a pure twin ``_x_py.py`` and a
selector (``x.py`` when public, else ``_x.py``) that says which is in use in
``IMPLEMENTATION`` and reads the one switch, ``_switch``. Neither twin imports the
selector or the other twin (what both need is in a module both import), and
``setup.py`` builds every compiled module.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "hpgfast"
COMPILED = sorted(p.name[: -len("_c.pyx")] for p in PACKAGE.glob("_*_c.pyx"))


def _selector(stem: str) -> str:
    public = stem.lstrip("_")
    return public if (PACKAGE / f"{public}.py").exists() else stem


def _imports(path: Path) -> set[str]:
    """The hpgfast modules a .py or .pyx file imports at its top level (relative names)."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*from\s+\.(\w*)\s+import\s+(.*)", line)
        if match and match.group(1):
            found.add(match.group(1))
        elif match:  # from . import a, b as c
            names = match.group(2).strip("()").split(",")
            found.update(name.split()[0] for name in names if name.strip())
        elif re.match(r"\s*import\s+hpgfast\.(\w+)", line):
            found.add(line.split("hpgfast.")[1].split()[0])
    return found


def test_the_three_accelerated_modules_are_found() -> None:
    assert COMPILED == ["_codec", "_response", "_sms"]


@pytest.mark.parametrize("stem", COMPILED)
def test_every_compiled_module_has_a_pure_twin_and_a_selector(stem: str) -> None:
    assert (PACKAGE / f"{stem}_py.py").exists(), f"{stem}_c.pyx has no pure twin {stem}_py.py"
    selector = _selector(stem)
    module = importlib.import_module(f"hpgfast.{selector}")
    assert module.IMPLEMENTATION in ("compiled", "python")
    assert "_switch" in _imports(PACKAGE / f"{selector}.py"), f"{selector}.py does not read _switch"


@pytest.mark.parametrize("stem", COMPILED)
def test_no_twin_imports_its_selector_or_its_other_twin(stem: str) -> None:
    selector = _selector(stem)
    for twin, other in ((f"{stem}_c.pyx", f"{stem}_py"), (f"{stem}_py.py", f"{stem}_c")):
        imported = _imports(PACKAGE / twin)
        assert selector not in imported, f"{twin} imports its selector {selector}"
        assert other not in imported, f"{twin} imports its other twin {other}"


def test_only_the_switch_reads_the_environment_variable() -> None:
    readers = [
        p.relative_to(PACKAGE).as_posix()
        for p in sorted(PACKAGE.rglob("*.py"))
        if any(
            isinstance(node, ast.Constant) and node.value == "HPGFAST_PURE_PYTHON"
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        )
    ]
    assert readers == ["_switch.py"]


def test_setup_builds_every_compiled_module() -> None:
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    listed = re.search(r"for module in \(([^)]*)\)", setup)
    assert listed is not None
    assert sorted(re.findall(r'"(\w+)"', listed.group(1))) == [f"{s}_c" for s in COMPILED]
