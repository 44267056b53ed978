"""What the ``hpgfast`` command says and does at its edges, as a process on loopback.

A server that cannot bind, a journal path that does not exist, Ctrl-C while the
command starts, a run where nothing went out, the library's log lines, an encoding
hint, a directory given as a file, an input with no messages, ``bench``'s verdicts,
and delivery reports posted the way ``curl -d`` posts them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

PASSWORD = "P@ssw0rd"
SECRET = "s3cret"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPGFAST_")}
    env.update({"HPGFAST_LOGIN": "CLIENT", "HPGFAST_PASSWORD": PASSWORD,
                "HPGFAST_SUBJECT": "ACME", "HPGFAST_TIMEOUT": "5",
                "HPGFAST_RECEIVER_SECRET": SECRET})
    env.update(extra)
    return env


def hpgfast_run(*args: str, env: Optional[dict[str, str]] = None,
                **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpgfast", *args], capture_output=True,
                          text=True, timeout=180, env=env or _env(), **kw)


def _csv(path: Path, addresses: list[str]) -> Path:
    path.write_text("address,text\n" + "".join(f"{a},hello\n" for a in addresses),
                    encoding="utf-8")
    return path


# -- receive: a port it cannot bind, a journal that is not there ----------------------


def test_receive_on_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = hpgfast_run("receive", "--port", port)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot listen at 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr


def test_receive_on_an_address_not_of_this_machine_is_a_usage_error() -> None:
    # TEST-NET-1 (RFC 5737): never an address of this machine.
    result = hpgfast_run("receive", "--host", "192.0.2.1", "--port", "0")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot listen at 192.0.2.1:0" in result.stderr


def test_receive_refuses_a_journal_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = hpgfast_run("receive", "--port", "0", "--journal", str(missing))
    assert result.returncode == 2, result.stderr
    assert f"no journal at {str(missing)!r}" in result.stderr
    assert not missing.exists()
    # As status does, word for word.
    status = hpgfast_run("status", "--url", "http://127.0.0.1:9/C/connectorX/", "--journal",
                         str(missing))
    assert status.returncode == 2
    assert f"no journal at {str(missing)!r}" in status.stderr
