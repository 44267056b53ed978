"""A real PostgreSQL server for the tests, in a temporary folder of its own.

``PostgresServer().start()`` runs ``initdb`` and ``postgres`` from the machine's
PostgreSQL (Debian's ``postgresql`` package: ``/usr/lib/postgresql/*/bin``, or
``HPGFAST_PG_BINDIR``, or ``initdb`` on the PATH) on a free loopback port, with
password authentication (SCRAM) for TCP, so that tests see what a fleet sees:
a URL, a password, a server that can go away (``stop()``) and come back
(``start()`` again, same folder and port).

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: there the
server runs as the unprivileged user ``nobody`` (its folder handed to that user).

``unavailable()`` says in one line why no server can be had here (no binaries, no
psycopg); the fixtures in ``conftest.py`` skip with that line, or fail when
``HPGFAST_REQUIRE_POSTGRES=1`` (set by ``.ci/run``, where a skip would hide the
PostgreSQL suite).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any, Optional

USER = "hpgfast"
PASSWORD = "pg-secret-5e1f"
#: The unprivileged user the server runs as when the tests run as root.
RUN_AS = "nobody"


def bindir() -> Optional[str]:
    """The folder with ``initdb`` and ``postgres``, or None."""
    given = os.environ.get("HPGFAST_PG_BINDIR")
    if given:
        return given if os.path.exists(os.path.join(given, "postgres")) else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        folder = os.path.dirname(os.path.realpath(initdb))
        if os.path.exists(os.path.join(folder, "postgres")):
            return folder
    return None


def unavailable() -> Optional[str]:
    """Why no PostgreSQL server can be had for the tests, in one line; None if one can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'hpgfast[postgres]')"
    if bindir() is None:
        return "no PostgreSQL server binaries (Debian: apt-get install postgresql)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server in its own folder; ``url()`` gives a database URL with the password."""

    def __init__(self) -> None:
        self.bin = bindir()
        if self.bin is None:
            raise RuntimeError(unavailable() or "no PostgreSQL")
        self.dir = tempfile.mkdtemp(prefix="hpgfast-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._as_root = os.geteuid() == 0
        if self._as_root:
            import pwd

            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._initdb()

    # -- the server's process -----------------------------------------------------------

    def _run_as(self) -> dict[str, Any]:
        if not self._as_root:
            return {}
        import pwd

        entry = pwd.getpwnam(RUN_AS)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self._as_root:
            import pwd

            entry = pwd.getpwnam(RUN_AS)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        done = subprocess.run(
            [
                os.path.join(self.bin or "", "initdb"), "-D", self.data, "-U", USER,
                f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            ],
            capture_output=True, cwd=self.dir, env=self._env(), **self._run_as(),
        )
        os.unlink(pwfile)
        if done.returncode:
            raise RuntimeError("initdb failed: " + done.stderr.decode(errors="replace")[-2000:])

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def start(self) -> PostgresServer:
        """Start (or start again) the server and wait until it takes connections."""
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.process = subprocess.Popen(
            [
                os.path.join(self.bin or "", "postgres"), "-D", self.data, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                "-c", "max_connections=200", "-c", "shared_buffers=32MB",
                "-c", "log_min_messages=warning", "-c", "fsync=on",
            ],
            stdout=log, stderr=log, cwd=self.dir, env=self._env(), **self._run_as(),
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited: " + self.log()[-2000:])
            try:
                import psycopg

                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return self
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start: " + self.log()[-2000:]) from None
                time.sleep(0.1)

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (``fast``: SIGINT, sessions cut; ``immediate``: SIGQUIT)."""
        if self.process is None:
            return
        import signal

        self.process.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- databases ----------------------------------------------------------------------

    def url(self, database: str = "postgres", *, password: Optional[str] = PASSWORD) -> str:
        auth = USER if password is None else f"{USER}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its name."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
