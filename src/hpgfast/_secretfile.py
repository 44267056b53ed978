"""Reading a secret (password, receiver or push secret) from a file, never echoing it."""

from __future__ import annotations

__all__ = ["read_secret_file"]


def read_secret_file(path: str, what: str) -> str:
    """The first line of ``path``, without its line end.

    Raises:
        ValueError: the file cannot be read or its first line is empty. The message
            names the file and ``what`` it holds, never the content.
    """
    try:
        with open(path, encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {path!r}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"the {what} file {path!r} is empty")
    return value
