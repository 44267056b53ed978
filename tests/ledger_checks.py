"""The truth check both client test modules hold the client to, against the ledger."""

from __future__ import annotations

from typing import Any

from hpgfast import Code, Message, SendResult
from hpgfast.emulator import Emulator


def assert_truthful(emulator: Emulator, messages: list[Message], results: list[Any]) -> None:
    """Every message: in the ledger once and ok/unknown, or absent and not ok; never twice."""
    assert len(results) == len(messages)
    seen: dict[str, int] = {}
    for entry in emulator.ledger:
        seen[entry.text] = seen.get(entry.text, 0) + 1
    assert all(n == 1 for n in seen.values()), "a message reached the platform twice"
    for message, result in zip(messages, results):
        assert isinstance(result, SendResult)
        present = seen.get(message.text, 0)
        if result.code == Code.OK:
            assert present == 1
            if result.provider_id is None:  # accepted earlier (a resend after a 429)
                continue
            entry = emulator.ledger.by_provider_id(result.provider_id)
            assert entry is not None
            assert (entry.address, entry.text) == (message.address, message.text)
        elif result.code != Code.UNKNOWN:
            assert present == 0, f"{result} but the platform has the message"
