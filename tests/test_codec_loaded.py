"""Guards against silently testing (or shipping) the pure twin instead of the core."""

from __future__ import annotations

import importlib
import os
import platform

import pytest


@pytest.mark.parametrize(
    "module, what",
    [
        ("hpgfast.codec", "the compiled codec core"),
        ("hpgfast.sms", "the compiled segment counter"),
        ("hpgfast._response", "the compiled reply reader"),
    ],
)
def test_compiled_twin_loaded(request: pytest.FixtureRequest, module: str, what: str) -> None:
    """On CPython each compiled twin is in use unless a pure run was asked for."""
    implementation = importlib.import_module(module).IMPLEMENTATION
    if platform.python_implementation() != "CPython":
        pytest.skip("the compiled core is built for CPython only")
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("--no-c-extensions: a pure-Python run was asked for")
    if os.environ.get("HPGFAST_PURE_PYTHON") or os.environ.get("HPGFAST_NO_EXTENSIONS"):
        assert implementation == "python"
        pytest.skip("a pure-Python run was asked for")
    assert implementation == "compiled", (
        f"{what} did not import: build it (pip install .) or set "
        "HPGFAST_PURE_PYTHON=1 to test the pure twin on purpose"
    )


def test_pure_python_can_be_forced() -> None:
    import subprocess
    import sys

    env = dict(os.environ, HPGFAST_PURE_PYTHON="1")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import hpgfast.codec as c, hpgfast.sms as s, hpgfast._response as r;"
            "print(c.IMPLEMENTATION, s.IMPLEMENTATION, r.IMPLEMENTATION)",
        ],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["python", "python", "python"]


def test_public_api_is_exported() -> None:
    import hpgfast

    for name in hpgfast.__all__:
        assert hasattr(hpgfast, name), name
    for name in hpgfast.codec.__all__:
        assert hasattr(hpgfast.codec, name), name
    import hpgfast.sms

    for name in hpgfast.sms.__all__:
        assert hasattr(hpgfast.sms, name), name
