"""Guards against silently testing (or shipping) the pure twin instead of the core."""

from __future__ import annotations

import os
import platform

import pytest

import hpgfast.codec


def test_codec_c_loaded(request: pytest.FixtureRequest) -> None:
    """On CPython the compiled core is in use unless a pure run was asked for."""
    if platform.python_implementation() != "CPython":
        pytest.skip("the compiled core is built for CPython only")
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("--no-c-extensions: a pure-Python run was asked for")
    if os.environ.get("HPGFAST_PURE_PYTHON") or os.environ.get("HPGFAST_NO_EXTENSIONS"):
        assert hpgfast.codec.IMPLEMENTATION == "python"
        pytest.skip("a pure-Python run was asked for")
    assert hpgfast.codec.IMPLEMENTATION == "compiled", (
        "the compiled codec core did not import: build it (pip install .) or set "
        "HPGFAST_PURE_PYTHON=1 to test the pure twin on purpose"
    )


def test_sms_c_loaded(request: pytest.FixtureRequest) -> None:
    """The compiled segment counter is in use wherever the compiled codec must be."""
    import hpgfast.sms

    if platform.python_implementation() != "CPython":
        pytest.skip("the compiled core is built for CPython only")
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("--no-c-extensions: a pure-Python run was asked for")
    if os.environ.get("HPGFAST_PURE_PYTHON") or os.environ.get("HPGFAST_NO_EXTENSIONS"):
        assert hpgfast.sms.IMPLEMENTATION == "python"
        pytest.skip("a pure-Python run was asked for")
    assert hpgfast.sms.IMPLEMENTATION == "compiled", (
        "the compiled segment counter did not import: build it (pip install .) or set "
        "HPGFAST_PURE_PYTHON=1 to test the pure twin on purpose"
    )


def test_response_c_loaded(request: pytest.FixtureRequest) -> None:
    """The compiled reply reader is in use wherever the compiled codec must be."""
    import hpgfast._response

    if platform.python_implementation() != "CPython":
        pytest.skip("the compiled core is built for CPython only")
    if request.config.getoption("--no-c-extensions"):
        pytest.skip("--no-c-extensions: a pure-Python run was asked for")
    if os.environ.get("HPGFAST_PURE_PYTHON") or os.environ.get("HPGFAST_NO_EXTENSIONS"):
        assert hpgfast._response.IMPLEMENTATION == "python"
        pytest.skip("a pure-Python run was asked for")
    assert hpgfast._response.IMPLEMENTATION == "compiled", (
        "the compiled reply reader did not import: build it (pip install .) or set "
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
            "import hpgfast.codec as c, hpgfast.sms as s;"
            "print(c.IMPLEMENTATION, s.IMPLEMENTATION)",
        ],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["python", "python"]


def test_public_api_is_exported() -> None:
    import hpgfast

    for name in hpgfast.__all__:
        assert hasattr(hpgfast, name), name
    for name in hpgfast.codec.__all__:
        assert hasattr(hpgfast.codec, name), name
    import hpgfast.sms

    for name in hpgfast.sms.__all__:
        assert hasattr(hpgfast.sms, name), name
