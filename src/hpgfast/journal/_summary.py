"""What a send run reports: its summary, and the hooks a caller may give it.

Strategy: the objects a caller of ``Journal.send`` holds, apart from the loop that
fills them (``_sender``), so that the command line (``hpgfast send``, with or
without a journal) counts with the very same rules: a result's state is the
journal's (``result_state``), and ``accepted_earlier`` is taken from the journal's
own write. ``SendSummary`` itself is in ``hpgfast._states`` (re-exported here), so
that a send without a journal counts with it without importing the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Protocol

from .._records import Message, SendResult
from .._states import SendSummary as SendSummary
from .._states import _platform_down as _platform_down

__all__ = ["Progress", "ResultsWriter", "SendSummary"]

#: ``progress(n, note)``: ``n`` more messages done (handed to the client and
#: answered), ``note`` a short text of the counts so far.
Progress = Callable[[int, str], None]


class ResultsWriter(Protocol):
    """What ``send(results_file=...)`` writes each outcome to as soon as it is known.

    The command line's ``--results`` file is one; it is also a ``Subscriber`` of
    the client, and hears of each request as it ends. ``arm`` gets a chunk's lines
    and messages before it is handed to the client; ``settle`` the chunk's results
    (returned, or an exception's ``.results``, or None); ``release`` is called once
    the journal recorded them; ``invalid`` names a message never sent.
    """

    def arm(self, lines: Sequence[int], messages: Sequence[Message]) -> None: ...

    def settle(self, results: Optional[Sequence[Optional[SendResult]]]) -> None: ...

    def release(self) -> None: ...

    def invalid(self, line: int, message: Message, reason: str) -> None: ...


