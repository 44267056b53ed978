"""docs/journal.md says what a kill costs, with the numbers the code uses."""

from __future__ import annotations

from pathlib import Path

from hpgfast.journal import Journal
from hpgfast.journal._hook import AHEAD_PER_THREAD, JournalHook

ROOT = Path(__file__).resolve().parent.parent


def test_the_journal_page_states_the_in_flight_window(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "journal.md").read_text(encoding="utf-8")
    states = page.split("## States", 1)[1].split("\n## ", 1)[0]
    journal = Journal(tmp_path / "j.db", create=True)
    try:
        window = JournalHook(journal).window  # at concurrency 1
    finally:
        journal.close()
    # The marked span, the window it makes, and what a SIGKILL costs, in numbers.
    assert f"{AHEAD_PER_THREAD} x concurrency" in states
    assert f"W = {window} x concurrency" in states
    assert "SIGKILL" in states and "never left" in states
