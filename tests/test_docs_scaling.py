"""The code in docs/scaling.md runs as written, on every journal engine."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hpgfast.emulator import Emulator

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"


def test_the_outbox_snippet_adds_once_and_drains(journal_target: str) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    with Emulator(speed=None, unique_client_ids=True) as emu:
        namespace.update(
            JOURNAL=journal_target, URL=emu.url, LOGIN=emu.login, PASSWORD=emu.password
        )
        orders = [SimpleNamespace(id=n, phone=f"7903123{n:04d}") for n in range(1, 11)]
        namespace["enqueue"](orders)
        namespace["enqueue"](orders[:5])  # a retried producer: nothing added twice
        summary = namespace["drain"]()
        assert summary.states["accepted"] == 10
        again = namespace["drain"]()  # a retried worker task: nothing sent twice
        assert again.states.get("accepted", 0) == 0
        assert len(emu.ledger) == 10 and emu.repeated_client_ids == 0
