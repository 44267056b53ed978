"""The README's "Migrating from a requests loop" snippets run as written.

Strategy: each snippet is the Python block after a ``<!-- migrating: NAME -->`` marker
in README.md, executed against the emulator with the names the README leaves to the
reader (``URL``, ``LOGIN``, ``PASSWORD``, ``outbox`` and the callbacks) bound to
recorders; the emulator's ledger says what arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hpgfast.emulator import Emulator

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- migrating: (\w+) -->\s*```python\n(.*?)```", re.S)
PASSWORD = "P@ss w&rd"



def _snippets() -> dict[str, str]:
    return dict(BLOCK.findall(README.read_text(encoding="utf-8")))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=None, password=PASSWORD, deny_addresses=["79030000003"]) as emulator:
        yield emulator


def _run(name: str, emu: Emulator, outbox: list[tuple[str, str]]) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {"save": [], "retry_later": [], "reject": []}
    namespace: dict[str, Any] = {
        "URL": emu.url,
        "LOGIN": "CLIENT",
        "PASSWORD": PASSWORD,
        "outbox": outbox,
        "save": lambda *a: seen["save"].append(a),
        "retry_later": lambda *a: seen["retry_later"].append(a),
        "reject": lambda *a: seen["reject"].append(a),
    }
    exec(compile(_snippets()[name], f"README.md:{name}", "exec"), namespace)
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
