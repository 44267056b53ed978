"""The Python blocks of README.md and docs/migrating.md run as written.

Strategy: each snippet is the Python block after a ``<!-- readme: NAME -->`` marker in
README.md (the quick start) or a ``<!-- migrating: NAME -->`` marker in
docs/migrating.md, executed against the emulator with the names the page leaves to
the reader (``URL``, ``LOGIN``, ``PASSWORD``, ``outbox``, ``pending_codes`` and the
callbacks) bound to recorders; the emulator's ledger says what arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpgfast.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MIGRATING = ROOT / "docs" / "migrating.md"
BLOCK = re.compile(r"<!-- migrating: (\w+) -->\s*```python\n(.*?)```", re.S)
README_BLOCK = re.compile(r"<!-- readme: (\w+) -->\s*```python\n(.*?)```", re.S)
PASSWORD = "P@ss w&rd"



def _snippets() -> dict[str, str]:
    return dict(BLOCK.findall(MIGRATING.read_text(encoding="utf-8")))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=None, password=PASSWORD, deny_addresses=["79030000003"]) as emulator:
        yield emulator


def _run(
    name: str, emu: Emulator, outbox: list[tuple[str, str]], source: str | None = None
) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {
        "save": [], "retry_later": [], "reject": [], "remember": [], "investigate": []
    }
    namespace: dict[str, Any] = {
        "URL": emu.url,
        "LOGIN": "CLIENT",
        "PASSWORD": PASSWORD,
        "outbox": outbox,
        "save": lambda *a: seen["save"].append(a),
        "retry_later": lambda *a: seen["retry_later"].append(a),
        "reject": lambda *a: seen["reject"].append(a),
        "remember": lambda *a: seen["remember"].append(a),
        "investigate": lambda *a: seen["investigate"].append(a),
        "pending_codes": lambda: [(phone, text.split()[2].rstrip(",")) for phone, text in outbox],
    }
    code = _snippets()[name] if source is None else source
    exec(compile(code, f"{name}", "exec"), namespace)
    seen["namespace"] = [namespace]
    return seen


def _outbox(n: int) -> list[tuple[str, str]]:
    return [(f"7903{i:07d}", f"Ваш код {i}, ok? 👍 & 100%") for i in range(n)]


def test_the_three_snippets_are_there() -> None:
    assert set(_snippets()) == {"before", "client", "codec"}


def test_the_requests_loop_it_replaces(emu: Emulator) -> None:
    seen = _run("before", emu, _outbox(5))
    assert len(seen["save"]) == 4 and len(emu.ledger) == 4


@pytest.mark.parametrize("name", ["client", "codec"])
def test_migrated_snippet_sends_every_message_once(emu: Emulator, name: str) -> None:
    outbox = _outbox(300)
    seen = _run(name, emu, outbox)
    # One message is denied by the platform; every other one arrived exactly once.
    assert len(emu.ledger) == 299
    entries = list(emu.ledger.messages())
    assert len({e.provider_id for e in entries}) == 299
    texts = {e.address: e.text for e in entries}
    assert all(texts[phone] == text for phone, text in outbox if phone != "79030000003")
    saved = {phone: pid for phone, pid in seen["save"]}
    assert len(saved) == 299 and {e.address: e.provider_id for e in entries} == saved
    if name == "client":
        assert seen["reject"] == [("79030000003", "error-address-unknown")]
        assert seen["retry_later"] == []
    # Many messages per request: far fewer requests than messages.
    assert sum(emu.requests.values()) < 300 // 5


def test_the_readme_quick_start_runs(emu: Emulator) -> None:
    blocks = dict(README_BLOCK.findall(README.read_text(encoding="utf-8")))
    assert set(blocks) == {"sync"}
    outbox = _outbox(300)
    seen = _run("README.md:sync", emu, outbox, source=blocks["sync"])
    # Every message but the denied one arrived once, under the default subject.
    entries = list(emu.ledger.messages())
    assert len(entries) == 299 and {e.subject for e in entries} == {"SHOP"}
    assert {m.address: pid for m, pid in seen["remember"]} == {
        e.address: e.provider_id for e in entries
    }
    assert [(m.address, code) for m, code in seen["reject"]] == [
        ("79030000003", "error-address-unknown")
    ]
    assert seen["retry_later"] == [] and seen["investigate"] == []
    namespace = seen["namespace"][0]
    assert len(namespace["statuses"]) == 299 and all(s.ok for s in namespace["statuses"])
