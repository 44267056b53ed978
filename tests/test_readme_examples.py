"""The examples of README.md and docs/ run: a changed API fails here, not in a reader's shell.

Strategy: every ``pycon`` block of README.md and docs/*.md is a doctest and runs; the
README's ``python`` blocks run in tests/test_readme.py; its ``sh`` blocks are checked
command by command (each ``hpgfast`` command line parses, each ``pip install`` extra
exists, each environment variable is one hpgfast reads). A README block of any other
kind, or a ``python`` block without a marker that tests/test_readme.py runs, fails
``test_every_readme_block_is_tested``.
"""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hpgfast.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _section(page: Path, title: str) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _run_doctest(block: str, page: Path) -> doctest.TestResults:
    test = doctest.DocTestParser().get_doctest(block, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    return runner.run(test)


def _examples(block: str) -> int:
    return len(doctest.DocTestParser().get_examples(block))


def _pycon_blocks() -> list[tuple[Path, int, str]]:
    out = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        blocks = [body for lang, body in FENCE.findall(page.read_text(encoding="utf-8"))
                  if lang == "pycon"]
        out += [(page, i, body) for i, body in enumerate(blocks)]
    return out


@pytest.mark.parametrize(
    ("page", "index", "block"),
    _pycon_blocks(),
    ids=[f"{p.relative_to(ROOT)}[{i}]" for p, i, _ in _pycon_blocks()],
)
def test_every_pycon_block_runs(page: Path, index: int, block: str) -> None:
    result = _run_doctest(block, page)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} example(s) of {page.name} failed (see above)"


def test_what_a_message_costs_example_runs() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section(DOCS / "segments.md", "An example"), re.S)
    assert len(blocks) == 1
    assert _examples(blocks[0]) >= 8
    assert _run_doctest(blocks[0], DOCS / "segments.md").failed == 0


def test_asyncio_example_runs() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section(README, "Quick start"), re.S)
    assert len(blocks) == 1
    assert "AsyncClient" in blocks[0]
    assert _examples(blocks[0]) >= 6
    assert _run_doctest(blocks[0], README).failed == 0


def test_emulator_example_runs() -> None:
    page = DOCS / "emulator.md"
    blocks = re.findall(r"```pycon\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    assert "```python" not in page.read_text(encoding="utf-8")  # no block left unrun
    assert _examples(blocks[0]) >= 5
    assert _run_doctest(blocks[0], page).failed == 0


def test_the_dry_run_example_prints_what_the_docs_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = _section(DOCS / "segments.md", "An example")
    (data,) = re.findall(r"```csv\n(.*?)```", section, re.S)
    (console,) = re.findall(r"```console\n(.*?)```", section, re.S)
    command, _, shown = console.partition("\n")
    assert command.startswith("$ hpgfast send --dry-run ")
    (tmp_path / "orders.csv").write_text(data, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in ("HPGFAST_URL", "HPGFAST_LOGIN", "HPGFAST_PASSWORD", "HPGFAST_SUBJECT",
                 "HPGFAST_MAX_REQUEST_BYTES"):
        monkeypatch.delenv(name, raising=False)
    assert main(shlex.split(command)[2:]) == 0
    assert capsys.readouterr().out == shown


# -- every block of the README is tested ----------------------------------------------


def _readme_blocks() -> list[tuple[str, str, str]]:
    """(language, body, the text just before the block) of every README block."""
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text[: m.start()].rstrip().rsplit("\n", 1)[-1])
            for m in FENCE.finditer(text)]


def test_every_readme_block_is_tested() -> None:
    untested = []
    for lang, body, before in _readme_blocks():
        if lang == "python":
            # Run by tests/test_readme.py, by the name in its marker.
            if not re.fullmatch(r"<!-- readme: \w+ -->", before):
                untested.append(body.splitlines()[0])
        elif lang not in ("pycon", "sh"):
            untested.append(f"```{lang}: {body.splitlines()[0]}")
    assert not untested, (
        "README.md blocks no test runs (give a python block a '<!-- readme: NAME -->' "
        f"marker and run it in tests/test_readme.py, or make it a pycon doctest): {untested}"
    )


def _shell_commands() -> list[str]:
    commands = []
    for lang, body, _ in _readme_blocks():
        if lang != "sh":
            continue
        for line in body.splitlines():
            line = line.split("  #", 1)[0].strip()
            commands += [c.strip() for c in line.split("&&") if c.strip()]
    return commands


def _pytest_options() -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_the_readme_shell_commands_are_valid() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extras = set(re.findall(r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1]
                            .split("\n[")[0], re.M))
    sources = "\n".join(p.read_text(encoding="utf-8")
                        for p in [ROOT / "setup.py", *(ROOT / "src").rglob("*.py")])
    pytest_help = None
    commands = _shell_commands()
    assert any(c.startswith("hpgfast demo") for c in commands)
    assert "python -m pytest" in commands
    for command in commands:
        words = shlex.split(command.split(">")[0])
        if words[0] == "export":
            words = words[1:]
        # Environment variables set for the command, or exported: hpgfast reads each.
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name = words.pop(0).split("=")[0]
            assert re.search(rf"\b{name}\b", sources), f"README: {command!r}: nothing reads {name}"
        if not words:
            continue
        if words[0] == "hpgfast":
            try:
                build_parser().parse_args(words[1:])
            except SystemExit:
                pytest.fail(f"README: {command!r} is not a valid hpgfast command line")
        elif words[:2] == ["pip", "install"]:
            target = words[2]
            asked = re.fullmatch(r"\.(?:\[([\w,]+)\])?", target)
            assert asked, f"README: {command!r} installs something else than this project"
            for extra in filter(None, (asked.group(1) or "").split(",")):
                assert extra in extras, f"README: {command!r}: no extra {extra!r}"
        elif words[:3] == ["python", "-m", "pytest"]:
            pytest_help = pytest_help or _pytest_options()
            for option in words[3:]:
                if option.startswith("--"):
                    assert option.split("=")[0] in pytest_help, f"README: {command!r}: {option}"
        else:
            pytest.fail(f"README: a shell command no test checks: {command!r}")


@pytest.mark.parametrize("page", ["README.md", *sorted(
    f"docs/{p.name}" for p in DOCS.glob("*.md"))])
def test_no_doctest_example_swallows_a_fence(page: str) -> None:
    """``python -m doctest PAGE`` reads the page whole: an example's expected output
    ends at a blank line, so a block without one before its closing fence expects
    the fence itself."""
    text = (ROOT / page).read_text(encoding="utf-8")
    bad = [ex.source.strip() for ex in doctest.DocTestParser().get_examples(text)
           if "```" in ex.want]
    assert bad == [], f"{page}: add a blank line before the closing fence after {bad}"
