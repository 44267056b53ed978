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
from urllib.parse import unquote, urlsplit

from ._errors import (
    JournalAccessDenied,
    JournalError,
    JournalStorageError,
    JournalUnavailable,
)

if TYPE_CHECKING:
    import psycopg

_KEYWORD_SECRET = re.compile(
    r"(\b[a-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


#: A URL's scheme and the slashes after it, as typed (``postgres:/``, ``postgresql:``,
#: ``postgresql//`` too): what follows is read as ``user:password@host...``.
_URL_HEAD = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*:/*|postgres(?:ql)?/+)", re.IGNORECASE)


def _userinfo_readings(rest: str) -> list[str]:
    """The password as each reader of ``rest`` (a URL past its scheme) may cut it.

    Python's ``urlsplit`` ends the user part at the last ``@`` before a ``/ ? #``;
    libpq's at the first ``@`` (not stopping at ``?`` or ``#``), or at a ``/``. An
    unencoded ``@ / ? #`` in the password makes them differ, so every reading is
    taken: from the first ``:`` after the user to the last ``@`` (the widest),
    to the first ``@``, and what follows the first ``@`` (libpq's host), with it.
    """
    colon, first_at, last_at = rest.find(":"), rest.find("@"), rest.rfind("@")
    if not 0 <= colon < first_at:
        return []
    readings = [rest[colon + 1 : last_at], rest[colon + 1 : first_at]]
    if last_at > first_at:
        readings.append(rest[first_at + 1 : last_at + 1])
    return readings


def masked_url(target: str) -> str:
    """``target`` (a ``postgresql://`` URL or a libpq keyword string), its password ``***``.

    The user, host, port, database and other parameters stay: they say which journal
    this is. Any parameter whose name holds ``password`` (``password``,
    ``sslpassword``) is masked too. Everything from the first ``:`` after the user
    to the last ``@`` is masked: an unencoded ``@ / ? #`` in the password cannot
    show (a ``@`` in a parameter after a password masks more than it needs).
    """
    head = _URL_HEAD.match(target)
    if head is None:
        return _KEYWORD_SECRET.sub(r"\1***", target)
    rest = target[head.end() :]
    colon, first_at, last_at = rest.find(":"), rest.find("@"), rest.rfind("@")
    if 0 <= colon < first_at:
        rest = f"{rest[:colon]}:***{rest[last_at:]}"
    base, mark, query = rest.partition("?")
    return head.group() + base + mark + _mask_query(query)


def _secret_name(name: str) -> bool:
    """Whether a URL parameter's name (percent-encoded or not) names a password."""
    return "password" in unquote(name).lower()


def _mask_query(query: str) -> str:
    """A URL's query, every password parameter's value ``***`` (``%70assword`` too)."""
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}=***" if eq and _secret_name(name) else part)
    return "&".join(parts)


def _passwords(target: str) -> list[str]:
    """Every password ``target`` or the environment gives libpq (to mask in texts).

    Read the ways a parser may read it (``_userinfo_readings``: Python's, libpq's,
    and the widest), and for a URL no parser takes (libpq then echoes it whole), by
    pattern alone. A password holding a character parsers cut at (``@ : / ? # & =``)
    is masked in its pieces too, so that no piece of one a parser split shows; a
    piece too short to mask everywhere is masked where libpq quotes it.
    """
    found: list[str] = []
    head = _URL_HEAD.match(target)
    if head is not None:
        rest = target[head.end() :]
        with contextlib.suppress(ValueError):
            password = urlsplit(target).password
            if password:
                found.append(password)
        for part in re.split(r"[?&]", rest)[1:]:
            name, eq, value = part.partition("=")
            if eq and _secret_name(name):
                found.append(value.partition("#")[0])
        found += _userinfo_readings(rest)
    else:
        for match in _KEYWORD_SECRET.finditer(target):
            found.append(match.group(2).strip("'"))
    env = os.environ.get("PGPASSWORD")
    if env:
        found.append(env)
    found += [unquote(p) for p in found]
    pieces = [piece for p in found for piece in re.split(r"[@:/?#&=]", p) if piece]
    found += [piece for piece in pieces if len(piece) >= 3]
    found += [f"{q}{piece}{q}" for piece in pieces if len(piece) < 3 for q in "\"'"]
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


#: What libpq says, at connection time, of a setting in the URL it does not take (a
#: value, a port, an option): a configuration error, not an unreachable server, as
#: running the same command again would never help.
_BAD_SETTING = re.compile(
    r"invalid [\w ]*(value|number|option)|invalid uri|missing [\w \"=/]*separator"
    r"|servname not supported|unrecognized [\w ]*(value|option)",
    re.IGNORECASE,
)


def _identity(text: str) -> str:
    return text


def _sentences(text: str) -> str:
    """libpq's text on one line, each of its lines a sentence (no end mark at the end).

    libpq ends a line without punctuation (``Connection refused`` then ``Is the
    server running...?``); the caller adds its own ``.`` after the last.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = ""
    for line in lines:
        if out:
            out += " " if out.endswith((".", "?", "!", ":", ";", ",")) else ". "
        out += " ".join(line.split())
    return out.rstrip(".")



def pg_error(
    exc: BaseException,
    path: str,
    redact: Callable[[str], str],
    driver: Any,
    *,
    connecting: bool = False,
) -> JournalError:
    """The ``JournalError`` for a psycopg error, its text with the password masked."""
    text = _sentences(str(exc)) or type(exc).__name__
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
    if state.startswith(("22", "54")):
        # Data the server cannot take (a NUL in a text, a value over a limit): the
        # input's, not the server's availability; running again would not help.
        return JournalError(f"journal {path}: the database refused the data: {reason}")
    if connecting and _BAD_SETTING.search(reason):
        return JournalError(
            f"journal {path}: a setting in the URL is not one libpq takes: {reason}"
        )
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
    # Each error is raised outside the ``except`` that caught psycopg's: libpq's own
    # text (the password in it) is then not the error's ``__context__``, which a
    # traceback prints even after ``from None``.
    refused: Optional[JournalError] = None
    try:
        given = driver.conninfo.conninfo_to_dict(url)
    except driver.Error as exc:
        reason = redact(_sentences(str(exc)))
        refused = JournalError(f"{path} is not a PostgreSQL URL libpq takes: {reason}")
    if refused is not None:
        raise refused
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
        refused = pg_error(exc, path, redact, driver, connecting=True)
    if refused is not None:
        raise refused
    assert conn is not None
    return conn
