"""The clientIds hpgfast makes, so that a reply can never be taken for another's.

Scheme (docs/defaults.md): a clientId is 20 characters of ``[0-9A-Za-z]``:

- 11 characters drawn at random once per process (65 bits, from ``secrets``), drawn
  again in a child after ``fork()`` (prefork servers: two workers never share it);
- 6 characters counting the process's requests (56.8 billion; the random part is
  drawn again if they ever run out);
- 3 characters: the message's index within its request (``encode_send`` writes
  them: ``id_prefix``), so a request holds at most 238,328 messages.

Unique across requests, processes and hosts (with the odds of a 65-bit collision),
and across resends of the same ``Message``: each request draws a new prefix. A
message that has its own ``client_id`` keeps it. ``next(counter)`` is atomic in
CPython, so no lock is needed.
"""

from __future__ import annotations

import itertools
import os
import secrets

from .._wire import ID_ALPHABET, ID_MAX_LENGTH, ID_SUFFIX_LENGTH, base62

__all__ = ["COUNTER_PART", "PROCESS_PART", "request_prefix"]

PROCESS_PART = 11
COUNTER_PART = ID_MAX_LENGTH - ID_SUFFIX_LENGTH - PROCESS_PART
_COUNTER_LIMIT = len(ID_ALPHABET) ** COUNTER_PART


def _random_part() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(PROCESS_PART))


class _Source:
    """The process's random part and request counter."""

    def __init__(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.part = _random_part()
        self.counter = itertools.count()


_source = _Source()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_source.redraw)


def request_prefix() -> str:
    """A fresh 17-character prefix for the clientIds of one request."""
    number = next(_source.counter)
    if number >= _COUNTER_LIMIT:  # not in this universe's lifetime, but never reuse
        _source.redraw()
        number = next(_source.counter)
    return _source.part + base62(number, COUNTER_PART)
