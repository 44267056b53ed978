"""The package as a user gets it: the sdist runs its own tests, the wheel ships what
runs, and a failed compile says how to install without a compiler.

Strategy: one sdist is built per session with ``python -m build`` (in an isolated
environment, as a user's pip would) and both tests start from it. These tests build
the compiled core and install packages from the registry into a fresh virtual
environment: minutes, not seconds, so they are marked ``slow`` and ``packaging`` (a
pure-install run leaves them out; ``.ci/run`` runs them).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.packaging]

#: The tests the installed sdist runs: the codec over both twins, the proof that the
#: compiled core is in use, the command line against the emulator, and the docs'
#: links (about 30 s here). The whole suite runs from the repository in .ci/run.
SDIST_TESTS = ["tests/test_codec.py", "tests/test_codec_loaded.py", "tests/test_cli.py",
               "tests/test_docs.py"]


def _env(**extra: str) -> dict[str, str]:
    """This environment without the switches that would ask for a pure build or run."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HPGFAST_NO_EXTENSIONS", "HPGFAST_PURE_PYTHON", "CC",
                        "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="session")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source distribution, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
                cwd=ROOT, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("hpgfast-*.tar.gz")
    return path


@pytest.fixture(scope="session")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the sdist, as a user's ``pip install`` does."""
    out = tmp_path_factory.mktemp("wheels")
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                 str(sdist)], cwd=out, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("hpgfast-*.whl")
    return path


def elf_sections(data: bytes) -> list[str]:
    """The section names of an ELF file (32 or 64 bit, either byte order)."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)

    def header(i: int) -> tuple[int, int, int]:
        """(name offset, file offset, size) of section ``i``."""
        at = shoff + i * shentsize
        if wide:
            name, _, _, _, offset, size = struct.unpack_from(order + "IIQQQQ", data, at)
        else:
            name, _, _, _, offset, size = struct.unpack_from(order + "IIIIII", data, at)
        return name, offset, size

    _, names_at, names_size = header(shstrndx)
    names = data[names_at : names_at + names_size]
    return [names[n : names.index(b"\0", n)].decode() for n, _, _ in map(header, range(shnum))]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF: the Linux build")
def test_wheel_extensions_are_stripped(wheel: Path, tmp_path: Path) -> None:
    # Debug sections and the symbol table once made the compiled core 3.2 MB of
    # the unpacked wheel; what runs is a fraction of that.
    with zipfile.ZipFile(wheel) as archive:
        shared = {n: archive.read(n) for n in archive.namelist() if n.endswith(".so")}
    assert len(shared) == 3, sorted(shared)
    for name, data in shared.items():
        sections = elf_sections(data)
        assert ".text" in sections and ".dynsym" in sections, (name, sections)
        leftovers = [s for s in sections if s.startswith((".debug", ".zdebug", ".symtab"))]
        assert not leftovers, (name, leftovers)
    total = sum(map(len, shared.values()))
    assert total < 1_000_000, {n: len(d) for n, d in shared.items()}


def test_the_wheel_ships_what_the_commands_run_and_no_benchmark_gate(wheel: Path) -> None:
    # hpgfast bench and hpgfast demo run from the wheel (their cases, claims and sample
    # data); the benchmark suite and its CI gate's floors stay in the sdist.
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"hpgfast/_bench.py", "hpgfast/_sample.py", "hpgfast/cli/bench.py"} <= names
    assert "hpgfast/_ratios.py" not in names
    assert not [n for n in names if n.startswith("bench/")]


def test_sdist_holds_what_its_tests_need(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "CHANGELOG.md", "README.md", "setup.py", "MANIFEST.in",
                   "tests/conftest.py", "tests/ledger_checks.py", "tests/test_codec.py",
                   "bench/conftest.py", "docs/index.md", "docs/protocol.md",
                   "src/hpgfast/_codec_c.pyx", "src/hpgfast/_codec_c.pyi", ".ci/run"):
        assert needed in names, needed
    assert "src/hpgfast/_codec_c.c" not in names
    assert not [n for n in names if n.endswith((".so", ".pyc", ".db"))]


def test_sdist_installs_and_passes_its_tests(sdist: Path, wheel: Path, tmp_path: Path) -> None:
    env = _env(HYPOTHESIS_PROFILE="dev")
    # The wheel ships what runs: no generated C, no Cython source.
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith((".c", ".pyx"))], names
    for needed in ("hpgfast/_codec_c.pyi", "hpgfast/py.typed", "hpgfast/cli/__init__.py",
                   "hpgfast/cli/send.py", "hpgfast/emulator/__init__.py"):
        assert needed in names, needed
    for module in ("_codec_c", "_sms_c", "_response_c"):
        assert [n for n in names if n.startswith(f"hpgfast/{module}.") and n.endswith(".so")]
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in meta
    assert "Project-URL: Source, https://github.com/hpgfast/hpgfast" in meta

    venv = tmp_path / "venv"
    done = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    python = str(venv / "bin" / "python")
    done = _run([python, "-m", "pip", "install", "-q", f"{wheel}[test]"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with tarfile.open(sdist) as tar:
        # The "data" filter (3.12+, backported to 3.9.17+) or a warning since 3.12.
        safe: dict[str, str] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "src", **safe)  # type: ignore[arg-type]
    (unpacked,) = (tmp_path / "src").iterdir()
    done = _run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *SDIST_TESTS],
                cwd=unpacked, env=env)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout[-2000:]


def test_compiler_failure_says_how_to_install_pure(sdist: Path, tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path),
                 str(sdist)], cwd=tmp_path, env=_env(CC="false"))
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "hpgfast: building the compiled codec core (hpgfast._codec_c) failed" in out
    assert "the C compiler 'false' ended with exit status 1" in out
    assert "HPGFAST_NO_EXTENSIONS=1 pip install ." in out
    assert not list(tmp_path.glob("*.whl"))
