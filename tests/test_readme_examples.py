"""The README's examples run: a changed API or result fails here, not in a reader's shell."""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest

from hpgfast.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_what_a_message_costs_example_runs() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section("What a message costs"), re.S)
    assert len(blocks) == 1
    test = doctest.DocTestParser().get_doctest(blocks[0], {}, "README", str(README), 0)
    assert len(test.examples) >= 8
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test)
    assert result.failed == 0, f"{result.failed} README example(s) failed (see output above)"


def test_asyncio_example_runs() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section("Asyncio"), re.S)
    assert len(blocks) == 1
    test = doctest.DocTestParser().get_doctest(blocks[0], {}, "README", str(README), 0)
    assert len(test.examples) >= 6
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test)
    assert result.failed == 0, f"{result.failed} README example(s) failed (see output above)"


def test_the_dry_run_example_prints_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = _section("What a message costs")
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


def test_emulator_example_runs() -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section("The emulator"), re.S)
    assert len(blocks) == 1
    assert "```python" not in _section("The emulator")  # no block left unrun
    test = doctest.DocTestParser().get_doctest(blocks[0], {}, "README", str(README), 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test)
    assert result.failed == 0, f"{result.failed} README example(s) failed (see output above)"
