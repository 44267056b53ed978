"""A PostgreSQL journal's URL: masking its password, connecting, naming its errors.

Strategy: the URL (or libpq keyword string) is the one place a PostgreSQL journal's
password is given, so everything that could show it is made here. ``masked_url`` is
what a journal shows as its ``path``; ``_passwords`` finds every form of the password
(as each parser may cut it, and ``PGPASSWORD``) so that a server's or libpq's text is
masked before it goes into an exception; ``pg_error`` maps a psycopg error to the
journal's error tree by its SQLSTATE (or, at connection time, by libpq's text, which
carries none); ``connect`` opens the one connection a journal object uses, with
``synchronous_commit = on``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .._redact import mask_url
from ._errors import (
    JournalAccessDenied,
    JournalError,
    JournalStorageError,
    JournalUnavailable,
)

if TYPE_CHECKING:
    import psycopg

_QUERY_SECRET = re.compile(r"((?:^|&)[^=&]*password[^=&]*=)[^&]*", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    r"(\b[a-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


def masked_url(target: str) -> str:
    """``target`` (a ``postgresql://`` URL or a libpq keyword string), its password ``***``.

    The user, host, port, database and other parameters stay: they say which journal
    this is. Any parameter whose name holds ``password`` (``password``,
    ``sslpassword``) is masked too.
    """
    if "://" not in target:
        return _KEYWORD_SECRET.sub(r"\1***", target)
    try:
        parts = urlsplit(target)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hostport}"
        query = _QUERY_SECRET.sub(r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return mask_url(target)


_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@")


def _passwords(target: str) -> list[str]:
    """Every password ``target`` or the environment gives libpq (to mask in texts).

    Read the ways a parser may read it: Python's (up to the last ``@``), libpq's (up
    to the first), and for a URL no parser takes (libpq then echoes it whole), by
    pattern alone. A password holding a character parsers cut at (``@ : / ? # & =``)
    is masked in its pieces too, so that no piece of one a parser split shows.
    """
    found: list[str] = []
    if "://" in target:
        with contextlib.suppress(ValueError):
            parts = urlsplit(target)
            if parts.password:
                found.append(parts.password)
            for match in re.finditer(r"(?:^|&)[^=&]*password[^=&]*=([^&#]*)", parts.query, re.I):
                found.append(match.group(1))
        userinfo = _USERINFO.match(target)
        if userinfo is not None:
            for info in (userinfo.group(1), userinfo.group(1).partition("@")[0]):
                if ":" in info:
                    found.append(info.partition(":")[2])
    else:
        for match in _KEYWORD_SECRET.finditer(target):
            found.append(match.group(2).strip("'"))
    env = os.environ.get("PGPASSWORD")
    if env:
        found.append(env)
    found += [unquote(p) for p in found]
    found += [piece for p in found for piece in re.split(r"[@:/?#&=]", p) if len(piece) >= 3]
    return [p for p in dict.fromkeys(found) if p]


#: What libpq's connection errors say when the server refused the credentials or
#: the database (the server's FATAL text: no SQLSTATE comes with it).
_REFUSED_AT_CONNECT = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "pg_hba.conf",
    "not permitted to log in",
    "does not exist",  # the database, or the role
    "permission denied",
)


def _identity(text: str) -> str:
    return text



def pg_error(
    exc: BaseException,
    path: str,
    redact: Callable[[str], str],
    driver: Any,
    *,
    connecting: bool = False,
) -> JournalError:
    """The ``JournalError`` for a psycopg error, its text with the password masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    reason = redact(text)
    state = str(getattr(exc, "sqlstate", None) or "")
    lowered = reason.lower()
    # At connection time libpq gives the server's refusal as text (no SQLSTATE).
    if (
        state.startswith("28")
        or state in ("42501", "3D000")
        or (connecting and any(words in lowered for words in _REFUSED_AT_CONNECT))
    ):
        return JournalAccessDenied(path, reason)
    if state.startswith(("53", "58")):
        return JournalStorageError(path, reason)
    if (
        connecting
        or isinstance(exc, driver.OperationalError)
        or state.startswith(("08", "57P"))
    ):
        return JournalUnavailable(path, reason)
    return JournalError(f"journal {path}: {reason}")


def connect(
    driver: Any,
    url: str,
    connect_timeout: float,
    path: str,
    redact: Callable[[str], str],
) -> psycopg.Connection[Any]:
    """A connection to the journal's database, autocommit, each commit durable.

    Raises:
        JournalError: libpq does not take the URL; ``JournalUnavailable`` or
            ``JournalAccessDenied`` when the server cannot be reached or refuses.
    """
    try:
        given = driver.conninfo.conninfo_to_dict(url)
    except driver.Error as exc:
        reason = redact(" ".join(str(exc).split()))
        raise JournalError(f"{path} is not a PostgreSQL URL libpq takes: {reason}") from None
    conn: Optional[psycopg.Connection[Any]] = None
    try:
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in given:
            options["connect_timeout"] = max(2, math.ceil(connect_timeout))
        if "application_name" not in given:
            options["application_name"] = "hpgfast"
        conn = driver.connect(url, **options)
        # Every commit returns once the server's WAL is on its disk: a mark the
        # sender was told is committed survives the server's crash.
        conn.execute("SET synchronous_commit = on")
    except driver.Error as exc:
        if conn is not None:
            conn.close()
        raise pg_error(exc, path, redact, driver, connecting=True) from None
    return conn
