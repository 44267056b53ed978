"""Keeping the password out of logs, exceptions and reprs.

Strategy: HPG puts the password in the query string, so every URL is a secret. The
client never logs or raises a URL it did not build redacted itself; what it cannot
build (the text of a urllib3 or OS error, a description the platform echoes back)
goes through a ``Redactor`` first. urllib3 writes full URLs into some of its own log
records (``Failed to parse headers (url=...)``), so a filter on urllib3's loggers
redacts every record that holds a live client's password: defence in depth, since
the client bypasses the urllib3 paths that log targets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["MASK", "Redactor", "Secret", "install_log_filter", "register", "unregister"]

MASK = "***"


class Secret:
    """A string that never shows itself in a ``repr`` (nor in ``vars()``-based ones)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a secret cannot be pickled")


class Redactor:
    """Replaces every form of one password in a text by ``***``.

    The forms are the password as given and percent-encoded the way the codec and
    urllib would send it (hpgfast's own encoding; ``quote`` with ``/`` kept; ``+`` for
    space), longest first, so that ``password=p%40ss`` becomes ``password=***``. A
    very short password also masks its other occurrences: over-redaction is the safe
    side.
    """

    __slots__ = ("_needles",)

    def __init__(self, password: str) -> None:
        encoded = quote(password, safe="")
        forms = {password, encoded, quote(password), encoded.replace("%20", "+")}
        self._needles = tuple(sorted((f for f in forms if f), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def __repr__(self) -> str:
        return "<Redactor>"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a redactor cannot be pickled")


# -- the log filter ------------------------------------------------------------------

_lock = threading.Lock()
# Redactors of the open clients, by id(client). A plain dict: clients unregister on
# close(), and a closed client's password can no longer travel anyway.
_active: dict[int, Redactor] = {}


def register(key: int, redactor: Redactor) -> None:
    """Make the log filter redact this password until ``unregister(key)``."""
    with _lock:
        _active[key] = redactor


def unregister(key: int) -> None:
    """Stop redacting for a closed client."""
    with _lock:
        _active.pop(key, None)


def redact_all(text: str) -> str:
    """``text`` with the password of every open client masked."""
    for redactor in tuple(_active.values()):
        text = redactor(text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record in place when its text holds an open client's password."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's business
            return True
        redacted = redact_all(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters use a pre-set exc_text instead of formatting exc_info again.
            record.exc_text = redact_all(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_all(record.exc_text)
        return True


_filter = RedactingFilter()
_installed: set[str] = set()


def install_log_filter(names: Iterable[str] = ()) -> None:
    """Attach the filter to every ``urllib3`` logger (and to ``names``), once each.

    A logger's filters see only the records created on that very logger, not those
    of its children, so each urllib3 module's logger gets the filter.
    """
    wanted = {"urllib3", *names}
    wanted.update(
        name for name in list(logging.root.manager.loggerDict) if name.startswith("urllib3.")
    )
    with _lock:
        for name in wanted - _installed:
            logging.getLogger(name).addFilter(_filter)
            _installed.add(name)
