"""Shared fixtures: one per twin pair. Every codec test runs against both twins
through ``codec``, every segment-counting test through ``sms``, and every reply
reader test through ``response``; ``<pair>_pure`` and ``<pair>_compiled`` (``pure``
and ``compiled`` for the codec) give one side each, for the tests that hold the
two to each other.

The compiled twin's parameter is marked ``compiled``; ``--no-c-extensions`` drops it
(for a pure install), and it is skipped where the extension is not importable only
when the environment asked for a pure run (see test_codec_loaded.py).
"""

from __future__ import annotations

import importlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# CI runs at least 500 examples per property; locally the default profile is quicker.
settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=150, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# A shell runs a background job (``.ci/run`` runs the other Pythons' suites so) with
# Ctrl-C ignored, and every process the tests start would inherit that: the tests
# that send SIGINT to an ``hpgfast`` command, as a user at a terminal does, would see
# it ignored (as hpgfast keeps an ignored Ctrl-C ignored until a server serves). The
# tests' processes start as a terminal's would: with Ctrl-C's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PURE_REQUESTED = bool(
    os.environ.get("HPGFAST_PURE_PYTHON") or os.environ.get("HPGFAST_NO_EXTENSIONS")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=False,
        help="Run the codec tests only against the pure-Python twin.",
    )


def _compiled_or_skip(
    request: pytest.FixtureRequest, module: str = "hpgfast._codec_c"
) -> ModuleType:
    """A compiled module; skips when a pure run was asked for, fails when it is missing."""
    if request.config.getoption("--no-c-extensions") or PURE_REQUESTED:
        pytest.skip("compiled core not requested")
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"{module} is not built; build it or set HPGFAST_PURE_PYTHON=1")


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("python", id="py"),
        pytest.param("compiled", id="c", marks=pytest.mark.compiled),
    ],
)
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """The codec twin under test: the pure one, then the compiled one."""
    if request.param == "python":
        return importlib.import_module("hpgfast._codec_py")
    return _compiled_or_skip(request)


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    """The pure-Python twin: the reference the compiled core is held to."""
    return importlib.import_module("hpgfast._codec_py")


@pytest.fixture(scope="session")
def compiled(request: pytest.FixtureRequest) -> ModuleType:
    """The compiled core (the test is skipped when a pure run was asked for)."""
    return _compiled_or_skip(request)


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("python", id="py"),
        pytest.param("compiled", id="c", marks=pytest.mark.compiled),
    ],
)
def sms(request: pytest.FixtureRequest) -> ModuleType:
    """The segment counter twin under test: the pure one, then the compiled one."""
    if request.param == "python":
        return importlib.import_module("hpgfast._sms_py")
    return _compiled_or_skip(request, "hpgfast._sms_c")


@pytest.fixture(scope="session")
def sms_pure() -> ModuleType:
    """The pure-Python segment counter: the reference the compiled one is held to."""
    return importlib.import_module("hpgfast._sms_py")


@pytest.fixture(scope="session")
def sms_compiled(request: pytest.FixtureRequest) -> ModuleType:
    """The compiled segment counter (the test is skipped when a pure run was asked for)."""
    return _compiled_or_skip(request, "hpgfast._sms_c")


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("python", id="py"),
        pytest.param("compiled", id="c", marks=pytest.mark.compiled),
    ],
)
def response(request: pytest.FixtureRequest) -> ModuleType:
    """The reply reader twin under test: the pure one, then the compiled one."""
    if request.param == "python":
        return importlib.import_module("hpgfast._response_py")
    return _compiled_or_skip(request, "hpgfast._response_c")


@pytest.fixture(scope="session")
def response_pure() -> ModuleType:
    """The pure-Python reply reader: the reference the compiled one is held to."""
    return importlib.import_module("hpgfast._response_py")


@pytest.fixture(scope="session")
def response_compiled(request: pytest.FixtureRequest) -> ModuleType:
    """The compiled reply reader (the test is skipped when a pure run was asked for)."""
    return _compiled_or_skip(request, "hpgfast._response_c")


# -- both clients, one suite -------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a client test over ``hpgfast.Client``, then over ``hpgfast.AsyncClient``.

    The test module's ``Client`` name is swapped for a blocking face of the async
    client (``transports.BlockingAsyncClient``), so every test reads the same for
    both. Tests marked ``sync_only`` (urllib3's internals) run once. A module that
    sets ``ASYNCIO_DEBUG = True`` runs the async client's loop in debug mode (more
    of asyncio's own logging to check).
    """
    if request.param == "async":
        from functools import partial

        from transports import BlockingAsyncClient

        debug = bool(getattr(request.module, "ASYNCIO_DEBUG", False))
        monkeypatch.setattr(request.module, "Client", partial(BlockingAsyncClient, debug=debug))
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test about one client's own machinery is not collected for the other one.

    ``sync_only`` (urllib3's internals, a real SIGINT in the calling thread) and
    ``async_only`` (a second cancellation) say which client a test is about; its
    other transport's variant is deselected, not skipped: nothing is missing.
    """
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        which = callspec.params.get("transport") if callspec is not None else None
        if (which == "async" and item.get_closest_marker("sync_only")) or (
            which == "sync" and item.get_closest_marker("async_only")
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- a real PostgreSQL server ------------------------------------------------------------


def _postgres_or_skip() -> None:
    from pg_server import unavailable

    why = unavailable()
    if why is not None:
        if os.environ.get("HPGFAST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (HPGFAST_REQUIRE_POSTGRES=1): {why}")
        pytest.skip(f"no PostgreSQL for the journal's PostgreSQL tests: {why}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL server for the session (see ``tests/pg_server.py``)."""
    _postgres_or_skip()
    from pg_server import PostgresServer

    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL (password included) of the session server's ``postgres`` database."""
    return str(pg_server.url("postgres"))


@pytest.fixture
def pg_journal_url(pg_server: Any) -> str:
    """The URL (password included) of a fresh empty database on the session server."""
    return str(pg_server.url(pg_server.new_database()))


@pytest.fixture
def pg_own_server() -> Iterator[Any]:
    """A server of this test's own, started: for tests that stop it under a sender."""
    _postgres_or_skip()
    from pg_server import PostgresServer

    with PostgresServer() as server:
        yield server
# -- one journal suite, every engine -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What ``hpgfast.open_journal`` opens, for each journal engine: a fresh journal.

    ``sqlite``: a path in the test's own directory (the file does not exist yet);
    ``postgres``: the URL of a fresh empty database on the session's PostgreSQL
    server (``pg_journal_url``). Every test written over this fixture runs on both:
    a difference between them is a bug of one engine.
    """
    if request.param == "sqlite":
        return str(tmp_path / "journal.db")
    url: str = request.getfixturevalue({"postgres": "pg_journal_url"}[request.param])
    return url
