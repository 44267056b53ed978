"""Every relative link and repository path named in README.md and docs/ exists.

Strategy: the documentation is read as a user reads it on a code host or in the
sdist. A Markdown link ``[text](target)`` that is not a URL must name a file or
folder of the repository (relative to the page), and its ``#anchor`` a heading of
the page it points at; a path in backticks that starts at a top-level folder of the
repository (``src/hpgfast/_wire.py``, ``.ci/run``) must exist too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
# Backticked words that start with one of these are paths in the repository.
TOP = ("src/", "tests/", "bench/", "docs/", ".ci/", "fuzz/")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)


def _slug(heading: str) -> str:
    """The anchor a code host gives a Markdown heading (GitHub's rule)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(h) for h in HEADING.findall(text)}


def _prose(page: Path) -> str:
    # Code blocks hold commands and example output, not references to the tree.
    return re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)


def test_the_pages_exist() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "index.md", "protocol.md", "defaults.md", "scaling.md",
            "segments.md", "outcomes.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(page: Path) -> None:
    missing = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            missing.append(target)
            continue
        assert ROOT in dest.parents or dest == ROOT, f"{target} leaves the repository"
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            missing.append(target)
    assert not missing, f"{page.name}: links to nothing: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(page: Path) -> None:
    named = [w for w in CODE.findall(_prose(page)) if w.startswith(TOP)]
    missing = [w for w in named if not (ROOT / w).exists()]
    assert not missing, f"{page.name}: names paths that do not exist: {missing}"


def test_nothing_points_outside_the_repository() -> None:
    files = [*PAGES, *sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "tests").glob("*.py"))]
    offenders = []
    for f in files:
        if f == Path(__file__).resolve():
            continue
        text = f.read_text(encoding="utf-8")
        for needle in ("../shared", "shared/seed", "PROTOCOL.md"):
            if needle in text:
                offenders.append(f"{f.relative_to(ROOT)}: {needle}")
    assert not offenders


def test_the_index_links_every_page_of_docs() -> None:
    index = ROOT / "docs" / "index.md"
    linked = {
        (index.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(_prose(index))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    }
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md") if p != index}
    missing = sorted(p.name for p in pages - linked)
    assert not missing, f"docs/index.md does not link to: {missing}"


# -- the code map (docs/design.md) -------------------------------------------------------

DESIGN = ROOT / "docs" / "design.md"
PACKAGE = ROOT / "src" / "hpgfast"


def _code_map() -> list[str]:
    """The paths the code map names, relative to ``src/hpgfast`` (``core/_batch.py``).

    The map is the first code block under "## The code map": one entry a line, its
    name first, a subpackage's entries indented under it (``core/``).
    """
    text = DESIGN.read_text(encoding="utf-8")
    section = text[text.index("\n## The code map\n"):]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "docs/design.md: no code block under '## The code map'"
    lines = block.group(1).splitlines()
    assert lines[0].strip() == "src/hpgfast/", lines[0]
    entries: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, "core/") of the open subpackages
    for line in lines[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = "".join(p for _, p in parents) + name
        entries.append(path)
        if name.endswith("/"):
            parents.append((indent, name))
    return entries


def _modules() -> tuple[set[str], set[str]]:
    """(every module and .pyx, every subpackage) of the tree, relative to the package."""
    files = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".pyx") and "__pycache__" not in p.parts
    }
    packages = {
        str(p.parent.relative_to(PACKAGE)) + "/"
        for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE
    }
    return files, packages


def test_the_code_map_names_only_what_exists() -> None:
    files, packages = _modules()
    missing = [e for e in _code_map() if e not in files and e not in packages]
    assert not missing, (
        f"docs/design.md's code map names what src/hpgfast/ does not have: {missing}; "
        "remove or rename them in the map"
    )


def test_the_code_map_lists_every_public_module_and_subpackage() -> None:
    files, packages = _modules()
    listed = set(_code_map())
    public = {f for f in files if not Path(f).name.startswith("_")}
    unlisted = sorted((public | packages) - listed)
    assert not unlisted, (
        f"add to the code map in docs/design.md (one line each, with what it is for): "
        f"{', '.join('src/hpgfast/' + u for u in unlisted)}"
    )
