"""Output of the ``hpgfast`` command: aligned tables, JSON, and progress.

Strategy: progress goes to standard error, results to standard output, so that
``hpgfast send ... --json > result.json`` stays clean. A progress bar (tqdm, from
the ``cli`` extra) is drawn only when standard error is a terminal and tqdm is
installed; otherwise a plain line is written every few seconds and one at the
end, and nothing at all with ``--quiet``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO, Any, Optional

from .._term import escape, json_safe

__all__ = ["Progress", "dump_json", "table"]


def table(
    rows: Iterable[Sequence[Any]],
    header: Optional[Sequence[str]] = None,
    *,
    title: Optional[str] = None,
) -> str:
    """Rows as an aligned text table: numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    all_rows = ([list(header)] if header else []) + cells
    if not all_rows:
        return title or ""
    width = max(len(r) for r in all_rows)
    widths = [max((len(r[i]) for r in all_rows if i < len(r)), default=0) for i in range(width)]
    right = [
        bool(cells) and all(_is_number(r[i]) for r in cells if i < len(r) and r[i])
        for i in range(width)
    ]
    out = []
    if title:
        out.append(title)
    for n, row in enumerate(all_rows):
        parts = []
        for i, value in enumerate(row):
            if right[i]:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value.ljust(widths[i]))
        out.append("  ".join(parts).rstrip())
        if header and n == 0:
            out.append("  ".join("-" * w for w in widths[: len(row)]))
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.0f}"
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))  # text from outside: never raw on a terminal


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace(" ", "")
    for suffix in ("µs", "ms", "s", "x"):
        if stripped.endswith(suffix):
            stripped = stripped[: -len(suffix)]
            break
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def dump_json(obj: Any, stream: Optional[IO[str]] = None) -> None:
    """Write ``obj`` as indented JSON with a final newline."""
    stream = stream if stream is not None else sys.stdout
    stream.write(json_safe(json.dumps(obj, indent=2, ensure_ascii=False, default=str)))
    stream.write("\n")
    stream.flush()


class Progress:
    """Progress of long work on standard error: a tqdm bar, plain lines, or nothing.

    ``update(n)`` adds ``n`` done items; ``note(text)`` sets a short status text;
    ``tick(n, text)`` does both, the text first, so that what is shown never lags
    the count. With ``count=False`` only the elapsed time and the note are shown
    (work measured in rounds, not items). Plain lines (standard error not a
    terminal, or no tqdm) come every ``PLAIN_EVERY`` seconds, and a last one at
    ``close()`` whenever anything was done, so that a log always records the end.
    """

    #: Seconds between plain progress lines when standard error is not a terminal.
    PLAIN_EVERY = 5.0
    #: Seconds between redraws of the bar for a note alone.
    NOTE_EVERY = 0.1

    def __init__(
        self,
        total: Optional[int],
        what: str,
        *,
        quiet: bool = False,
        unit: str = "msg",
        count: bool = True,
        stream: Optional[IO[str]] = None,
    ) -> None:
        self.total = total
        self.what = what
        self.unit = unit
        self.done = 0
        self._count = count
        self._stream = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._bar: Any = None
        self._start = time.monotonic()
        self._last = self._start
        self._drawn = self._start
        self._note = ""
        self._printed: Optional[tuple[int, str]] = None
        if quiet:
            return
        if _isatty(self._stream):
            try:  # the cli extra; the command works without it, just plainer
                tqdm: Any = importlib.import_module("tqdm").tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=total if count else None,
                    desc=what,
                    unit=unit,
                    unit_scale=True,
                    file=self._stream,
                    dynamic_ncols=True,
                    smoothing=0.1,
                    bar_format=None if count else "{desc}: {elapsed}{postfix}",
                )

    def update(self, n: int) -> None:
        """Count ``n`` more items done."""
        self.done += n
        if self._quiet:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        self._maybe_line()

    def tick(self, n: int, note: str) -> None:
        """``note(note)`` and ``update(n)`` at once (the engines' callback)."""
        if note:
            note = escape(note)
            self._note = note
            if self._bar is not None:
                self._bar.set_postfix_str(note, refresh=False)
        if n:
            self.update(n)
        elif note:
            self._show_note()

    def note(self, text: str) -> None:
        """Show a short status beside the bar (``accepted=..., unknown=...``)."""
        text = escape(text)
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
        self._show_note()

    def _show_note(self) -> None:
        if self._quiet:
            return
        if self._bar is None:
            self._maybe_line()
            return
        now = time.monotonic()
        if now - self._drawn >= self.NOTE_EVERY:
            self._drawn = now
            self._bar.refresh()

    def _maybe_line(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.PLAIN_EVERY:
            self._last = now
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self._start
        parts = []
        if self._count:
            counted = f"{self.done:,}"
            if self.total is not None:
                counted += f"/{self.total:,}"
            counted += f" {self.unit}"
            if self.total:
                counted += f" ({self.done / self.total:.0%})"
            parts.append(counted)
            rate = self.done / elapsed if elapsed > 0 else 0.0
            parts.append(f"{rate:,.0f} {self.unit}/s")
        parts.append(f"{elapsed:,.1f} s")
        text = f"{self.what}: {', '.join(parts)}"
        if self._note:
            text += f"; {self._note}"
        self._printed = (self.done, self._note)
        print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Finish the bar (or write a last plain line, unless it would repeat one)."""
        if self._bar is not None:
            if self._note:
                self._bar.set_postfix_str(self._note, refresh=False)
            self._bar.close()
            self._bar = None
        elif (
            not self._quiet
            and (self.done or self._note)
            and self._printed != (self.done, self._note)
        ):
            self._line()
        self._quiet = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
