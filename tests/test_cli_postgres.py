"""The command line on a ``postgresql://`` journal: real processes, a real server.

``send``, ``status``, ``report`` and ``receive`` take a journal URL wherever they
take a journal file. The URL's password never shows (the summary, ``--json``,
errors, ``-vv`` logs) and may come from ``PGPASSWORD`` or ``~/.pgpass``. Senders
started on one URL share the work, the input loaded once; a loader killed mid-load
is taken over. Each fault is one line naming the journal (its password masked) with
its own exit code, and the run resumes: a server that cannot be reached (7), one
that refuses the user (3), one that goes away mid-run (7, then the same command
finishes it, nothing sent twice), a journal of a newer schema (2). The readers
work while senders run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

from hpgfast.emulator import Emulator
from hpgfast.journal import open_journal

PASSWORD = "P@ssw0rd"  # the platform's (the emulator's)
TIMEOUT = 180


def _pg_password() -> str:
    from pg_server import PASSWORD as PG_PASSWORD

    return str(PG_PASSWORD)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "HPGFAST_"))}
    env["HPGFAST_PASSWORD"] = PASSWORD
    env.update(extra)
    return env


def hpgfast(*args: str, env: Optional[dict[str, str]] = None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpgfast", *args], env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def _write_csv(path: Path, n: int, text: str = "message") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["address", "text", "subject"])
        for i in range(n):
            writer.writerow([f"7900{i:07d}", f"{text} {i}", "hpgfast"])
    return path


def _send(url: str, csv_path: Path, journal: str, *extra: str) -> list[str]:
    return ["send", "--url", url, "--login", "CLIENT", "--file", str(csv_path),
            "--journal", journal, "--concurrency", "2", "--max-batch", "50", *extra]


def _states(url: str) -> dict[str, int]:
    with open_journal(url, create=False) as journal:
        return {k: v for k, v in journal.counts().items() if v}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _masked(url: str) -> str:
    return url.replace(_pg_password(), "***")


def _one_line(text: str) -> str:
    # The error's one line; a URL with its password in it also gets the warning that
    # ps shows it (test_a_password_in_the_url_warns_that_ps_shows_it).
    lines = [
        line for line in text.splitlines()
        if line.strip() and "the journal URL's password is visible" not in line
    ]
    assert len(lines) == 1, text
    return lines[0]


# -- send, report, status on a URL; the password never shows ---------------------------


def test_send_report_status_on_a_url_never_show_its_password(
    tmp_path: Path, pg_journal_url: str
) -> None:
    secret = _pg_password()
    csv_path = _write_csv(tmp_path / "m.csv", 500)
    with Emulator(speed=None) as emu:
        sent = hpgfast(*_send(emu.url, csv_path, pg_journal_url, "-vv"))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "500 messages went out" in sent.stdout
        assert _masked(pg_journal_url) in sent.stderr  # the -vv log names it, masked
        again = hpgfast(*_send(emu.url, csv_path, pg_journal_url, "--json"))
        assert again.returncode == 0, again.stdout + again.stderr
        assert '"attempted": 0' in again.stdout
        report = hpgfast("report", pg_journal_url)
        assert report.returncode == 0, report.stderr
        assert f"journal {_masked(pg_journal_url)}: 500 messages" in report.stdout
        report_json = hpgfast("report", pg_journal_url, "--json", "-vv")
        assert report_json.returncode == 0, report_json.stderr
        rows = hpgfast("report", pg_journal_url, "--csv", "-")
        assert rows.returncode == 0 and len(rows.stdout.splitlines()) == 501, rows.stderr
        status = hpgfast("status", "--journal", pg_journal_url, "--url", emu.url,
                         "--login", "CLIENT", "-vv")
        assert status.returncode in (0, 1), status.stdout + status.stderr
        for done in (sent, again, report, report_json, rows, status):
            assert secret not in done.stdout + done.stderr
        assert len(emu.ledger) == 500
    assert _states(pg_journal_url) == {"accepted": 500}


def test_the_password_may_come_from_pgpassword_or_pgpass(
    tmp_path: Path, pg_server: Any
) -> None:
    csv_path = _write_csv(tmp_path / "m.csv", 200)
    with Emulator(speed=None) as emu:
        url = pg_server.url(pg_server.new_database(), password=None)
        assert _pg_password() not in url
        done = hpgfast(*_send(emu.url, csv_path, url), env=_env(PGPASSWORD=_pg_password()))
        assert done.returncode == 0, done.stdout + done.stderr
        home = tmp_path / "home"
        home.mkdir()
        pgpass = home / ".pgpass"
        pgpass.write_text(f"127.0.0.1:*:*:*:{_pg_password()}\n")
        pgpass.chmod(0o600)
        url = pg_server.url(pg_server.new_database(), password=None)
        done = hpgfast(*_send(emu.url, csv_path, url), env=_env(HOME=str(home)))
        assert done.returncode == 0, done.stdout + done.stderr
        denied = hpgfast(*_send(emu.url, csv_path, url))  # neither: refused, code 3
        assert denied.returncode == 3, denied.stdout + denied.stderr
        assert len(emu.ledger) == 400


# -- --lease ---------------------------------------------------------------------------


def test_lease_is_for_a_url_and_longer_than_a_request(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "m.csv", 3)
    url = f"postgresql://u:s3cret@127.0.0.1:{_closed_port()}/db"
    on_file = hpgfast(*_send("http://127.0.0.1:9/C/c/", csv_path, str(tmp_path / "j.db"),
                             "--lease", "30"))
    assert on_file.returncode == 2, on_file.stderr
    assert "--lease is for a postgresql:// journal" in on_file.stderr
    assert not (tmp_path / "j.db").exists()
    # The default --timeout (30) lets a request take 300 s + 10 s to connect.
    short = hpgfast(*_send("http://127.0.0.1:9/C/c/", csv_path, url, "--lease", "60"))
    assert short.returncode == 2, short.stderr
    assert "--lease 60 is not longer than one request may take (310 s" in short.stderr
    short = hpgfast(*_send("http://127.0.0.1:9/C/c/", csv_path, url, "--lease", "5",
                           "--request-deadline", "3", "--connect-timeout", "2"))
    assert short.returncode == 2, short.stderr
    assert "(5 s:" in short.stderr
    assert "s3cret" not in short.stderr


# -- a fleet: senders on one URL -------------------------------------------------------


@pytest.mark.slow
def test_senders_on_one_url_share_the_work_and_load_once(
    tmp_path: Path, pg_journal_url: str
) -> None:
    n = 20_000
    csv_path = _write_csv(tmp_path / "m.csv", n)
    with Emulator(speed=None, unique_client_ids=True) as emu:
        command = [sys.executable, "-m", "hpgfast",
                   *_send(emu.url, csv_path, pg_journal_url, "--chunk", "1000", "-v", "--json")]
        senders = [subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [p.communicate(timeout=TIMEOUT) for p in senders]
        for proc, (out, err) in zip(senders, outputs):
            assert proc.returncode == 0, out + err
        # The load is done once: the others waited for it, then found it loaded.
        assert sum("another sender is loading it" in err for _, err in outputs) >= 1, outputs
        assert emu.repeated_client_ids == 0
        assert emu.ledger.duplicates("client_id") == {}
        assert len(emu.ledger) == n
        went = [json.loads(out)["this_run"]["accepted"] for out, _ in outputs]
        assert sum(went) == n, went
        assert sum(1 for w in went if w) >= 2, went  # the work was shared
        later = hpgfast(*_send(emu.url, csv_path, pg_journal_url))
        assert later.returncode == 0, later.stdout + later.stderr
        assert "nothing sent: every message of the journal already has its result" in later.stdout
        other = _write_csv(tmp_path / "other.csv", 10, text="another")
        refused = hpgfast(*_send(emu.url, other, pg_journal_url))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert _masked(pg_journal_url) in refused.stderr
        assert _pg_password() not in refused.stdout + refused.stderr
        assert len(emu.ledger) == n
    assert _states(pg_journal_url) == {"accepted": n}


@pytest.mark.slow
def test_a_loader_killed_mid_load_is_taken_over(tmp_path: Path, pg_journal_url: str) -> None:
    import psycopg

    n = 200_000
    csv_path = _write_csv(tmp_path / "m.csv", n)
    with Emulator(speed=None, unique_client_ids=True) as emu:
        command = _send(emu.url, csv_path, pg_journal_url, "--quiet")
        loader = subprocess.Popen([sys.executable, "-m", "hpgfast", *command], env=_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        rows = 0
        with psycopg.connect(pg_journal_url, autocommit=True) as conn:
            while time.monotonic() < deadline and loader.poll() is None:
                try:
                    row = conn.execute("SELECT count(*) FROM messages").fetchone()
                except psycopg.errors.UndefinedTable:
                    row = None
                rows = int(row[0]) if row else 0
                if rows:
                    break
                time.sleep(0.01)
            loader.send_signal(signal.SIGKILL)
            loader.communicate()
            assert 0 < rows < n, rows
            loaded = conn.execute("SELECT value FROM meta WHERE key = 'loaded'").fetchone()
            assert loaded is None, "the load finished before the kill"
        assert len(emu.ledger) == 0
        done = hpgfast(*command)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(emu.ledger) == n
        assert emu.ledger.duplicates("client_id") == {}
    assert _states(pg_journal_url) == {"accepted": n}


# -- faults: one line naming the journal, the password masked, a code of its own ------


def _reader_commands(url: str, emu_url: str) -> dict[str, list[str]]:
    return {
        "report": ["report", url],
        "status": ["status", "--journal", url, "--url", emu_url, "--login", "CLIENT"],
        "receive": ["receive", "--port", "0", "--journal", url, "--no-secret",
                    "--allow", "127.0.0.1"],
    }


@pytest.mark.parametrize("command", ["send", "report", "status", "receive"])
def test_a_server_that_cannot_be_reached_is_7(tmp_path: Path, command: str) -> None:
    url = f"postgresql://hpgfast:s3cret@127.0.0.1:{_closed_port()}/journal"
    csv_path = _write_csv(tmp_path / "m.csv", 3)
    emu_url = "http://127.0.0.1:9/CLIENT/connector/"
    args = (_send(emu_url, csv_path, url) if command == "send"
            else _reader_commands(url, emu_url)[command])
    done = hpgfast(*args)
    assert done.returncode == 7, done.stdout + done.stderr
    line = _one_line(done.stderr)
    assert f"postgresql://hpgfast:***@127.0.0.1:{url.split(':')[3].split('/')[0]}" in line
    assert "run the same command again" in line
    assert "s3cret" not in done.stdout + done.stderr


def _pieces(secret: str) -> list[str]:
    """The password and every piece of it a parser may cut off (what must never show)."""
    import re

    pieces = [secret, *(p for p in re.split(r"[@:/?#&=]", secret) if len(p) >= 3)]
    if "@" in secret:  # libpq takes what follows the first '@' for the host
        pieces.append(secret.split("@", 1)[1] + "@")
    return pieces


#: (how the URL is written, its password, the exit code): a user's mistakes.
_MISTAKES = [
    ("postgres:/hpgfast:{pw}@127.0.0.1:{port}/db", None, 2),
    ("postgresql:hpgfast:{pw}@127.0.0.1:{port}/db", None, 2),
    ("postgresql//hpgfast:{pw}@127.0.0.1:{port}/db", None, 2),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db", "Qx7#Wv3", 3),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db", "Qx7?Wv3", 3),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db", "Qx7/Wv3", 2),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db", "Sekr1t@PW", 7),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db", "Sekr1t@P#W/x?y", 2),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db?sslmode=bogus", None, 2),
    ("postgresql://hpgfast:{pw}@127.0.0.1:99999/db", None, 2),
    ("postgresql://hpgfast:{pw}@127.0.0.1:{port}/db?target_session_attrs=zz", None, 2),
]


@pytest.mark.parametrize("command", ["report", "send"])
@pytest.mark.parametrize(("form", "password", "code"), _MISTAKES)
def test_a_mistyped_url_never_shows_its_password(
    tmp_path: Path, pg_server: Any, command: str, form: str, password: Optional[str],
    code: int
) -> None:
    password = password or _pg_password()
    url = form.format(pw=password, port=pg_server.port)
    csv_path = _write_csv(tmp_path / "m.csv", 3)
    args = (_send("http://127.0.0.1:9/CLIENT/connector/", csv_path, url)
            if command == "send" else ["report", url])
    done = subprocess.run([sys.executable, "-m", "hpgfast", *args], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert done.returncode == code, done.stdout + done.stderr
    _one_line(done.stderr)
    leaked = [p for p in _pieces(password) if p in done.stdout + done.stderr]
    assert not leaked, done.stdout + done.stderr
    if code == 2 and "://" not in url:
        assert "postgresql://USER@HOST:PORT/DBNAME" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["m.csv"]  # never taken for a file


def test_a_refused_connection_reads_as_sentences(tmp_path: Path) -> None:
    done = hpgfast("report", f"postgresql://hpgfast:s3cret@127.0.0.1:{_closed_port()}/db")
    assert done.returncode == 7, done.stdout + done.stderr
    line = _one_line(done.stderr)
    assert "Connection refused. Is the server running" in line, line
    assert "connections?." not in line and "s3cret" not in line


@pytest.mark.parametrize("command", ["send", "report", "status", "receive"])
@pytest.mark.parametrize("fault", ["password", "database"])
def test_a_server_that_refuses_the_user_is_3(
    tmp_path: Path, pg_server: Any, command: str, fault: str
) -> None:
    good = pg_server.url(pg_server.new_database())
    url = (good.replace(_pg_password(), "Wr0ngPass") if fault == "password"
           else good.rsplit("/", 1)[0] + "/no_such_db")
    csv_path = _write_csv(tmp_path / "m.csv", 3)
    with Emulator(speed=None) as emu:
        args = (_send(emu.url, csv_path, url) if command == "send"
                else _reader_commands(url, emu.url)[command])
        done = hpgfast(*args)
        assert len(emu.ledger) == 0
    assert done.returncode == 3, done.stdout + done.stderr
    line = _one_line(done.stderr)
    assert "refused the journal postgresql://hpgfast:***@" in line, line
    for secret in ("Wr0ngPass", _pg_password()):
        assert secret not in done.stdout + done.stderr


def test_a_journal_of_a_newer_schema_is_refused_with_2(
    tmp_path: Path, pg_journal_url: str
) -> None:
    import psycopg

    csv_path = _write_csv(tmp_path / "m.csv", 3)
    with Emulator(speed=None) as emu:
        assert hpgfast(*_send(emu.url, csv_path, pg_journal_url)).returncode == 0
        with psycopg.connect(pg_journal_url, autocommit=True) as conn:
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        for args in ([*_send(emu.url, csv_path, pg_journal_url)],
                     *_reader_commands(pg_journal_url, emu.url).values()):
            done = hpgfast(*args)
            assert done.returncode == 2, (args, done.stdout + done.stderr)
            line = _one_line(done.stderr)
            assert "has schema 99" in line and "a newer hpgfast made it" in line, line
            assert _masked(pg_journal_url) in line
            assert _pg_password() not in done.stdout + done.stderr
        assert len(emu.ledger) == 3


@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_is_7_and_the_run_resumes(
    tmp_path: Path, pg_own_server: Any
) -> None:
    n = 6_000
    lease = 6
    url = pg_own_server.url(pg_own_server.new_database())
    csv_path = _write_csv(tmp_path / "m.csv", n)
    with Emulator(speed=None, latency=0.02, unique_client_ids=True) as emu:
        args = _send(emu.url, csv_path, url, "--lease", str(lease), "--request-deadline", "2",
                     "--connect-timeout", "2", "--chunk", "500", "--quiet")
        sender = subprocess.Popen([sys.executable, "-m", "hpgfast", *args], env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 1_000 and sender.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sender.poll() is None, "the sender ended before the server went away"
        pg_own_server.stop()
        out, err = sender.communicate(timeout=TIMEOUT)
        assert sender.returncode == 7, out + err
        line = _one_line(err)
        assert _masked(url) in line and "run the same command again" in line, line
        went = len(emu.ledger)
        assert went < n
        # While it is down, the same command says so, and sends nothing.
        down = hpgfast(*args)
        assert down.returncode == 7, down.stdout + down.stderr
        assert len(emu.ledger) == went
        pg_own_server.start()
        time.sleep(lease + 1)  # the stopped sender's claims lapse
        done = hpgfast(*args)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert emu.repeated_client_ids == 0, "a message was sent twice"
        assert emu.ledger.duplicates("client_id") == {}
        states = _states(url)
        assert set(states) <= {"accepted", "unknown"}, states
        assert states["accepted"] + states.get("unknown", 0) == n
        assert states["accepted"] <= len(emu.ledger)
        # The unknown ones (in flight when the server went away): sent again under
        # their own clientIds, the platform's repeats found accepted earlier.
        resent = hpgfast(*args, "--resend-unknown")
        assert resent.returncode == 0, resent.stdout + resent.stderr
        assert len(emu.ledger) == n
        assert emu.ledger.duplicates("client_id") == {}
        for output in (out, err, down.stderr, done.stdout, done.stderr, resent.stdout):
            assert _pg_password() not in output
    final = _states(url)
    assert final.get("accepted", 0) + final.get("accepted_earlier", 0) == n, final


# -- the readers while senders run -----------------------------------------------------


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


@pytest.mark.slow
def test_report_status_and_receive_work_while_a_sender_runs(
    tmp_path: Path, pg_journal_url: str
) -> None:
    n = 10_000
    csv_path = _write_csv(tmp_path / "m.csv", n)
    with Emulator(speed=None, latency=0.1) as emu:  # about 10 s of sending
        sender = subprocess.Popen(
            [sys.executable, "-m", "hpgfast", *_send(emu.url, csv_path, pg_journal_url,
                                                      "--quiet")],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while len(emu.ledger) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        receiver = subprocess.Popen(
            [sys.executable, "-m", "hpgfast", *_reader_commands(pg_journal_url, emu.url)[
                "receive"]],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert receiver.stderr is not None
            ready = receiver.stderr.readline()
            while "password is visible" in ready:  # the URL holds it: warned first
                ready = receiver.stderr.readline()
            assert "listening at " in ready, ready
            push_url = ready.split("listening at ", 1)[1].split(";", 1)[0]
            assert sender.poll() is None, "the sender ended before the readers ran"
            report = hpgfast("report", pg_journal_url, "--json")
            assert report.returncode == 0, report.stderr
            assert '"accepted":' in report.stdout.replace(" ", "")
            status = hpgfast(*_reader_commands(pg_journal_url, emu.url)["status"],
                             "--follow", "--deadline", "1", "--interval", "0.2")
            assert status.returncode in (0, 1), status.stdout + status.stderr
            assert "changes recorded" in status.stdout or "change recorded" in status.stdout
            provider_id = next(iter(emu.ledger.messages())).provider_id
            assert _post(push_url, f"ok;{provider_id};read;2020.01.10 19:03:52;\n".encode()) \
                == 200
            assert sender.poll() is None, "the sender ended before the readers were done"
        finally:
            receiver.send_signal(signal.SIGINT)
            r_out, r_err = receiver.communicate(timeout=60)
        out, err = sender.communicate(timeout=TIMEOUT)
        assert sender.returncode == 0, out + err
        assert receiver.returncode == 0, r_err
        assert f"{provider_id};ok;read" in r_out
        assert len(emu.ledger) == n
    with open_journal(pg_journal_url, create=False) as journal:
        assert journal.counts()["accepted"] == n
        statuses = journal.summary()["statuses"]
        assert statuses.get("read", 0) >= 1, statuses


# -- another input before anything was sent: rebound, and loaded -----------------------


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_another_input_before_anything_was_sent_is_loaded_and_sent(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    journal = (str(tmp_path / "run.db") if engine == "sqlite"
               else str(request.getfixturevalue("pg_journal_url")))
    first = _write_csv(tmp_path / "first.csv", 3)
    # Loaded, then stopped before anything went out (no connector URL).
    loaded = hpgfast("send", "--file", str(first), "--journal", journal)
    assert loaded.returncode == 2 and "no connector URL" in loaded.stderr, loaded.stderr
    with open_journal(journal, create=False) as j:
        assert j.loaded == 3
    second = _write_csv(tmp_path / "second.csv", 5, text="another")
    with Emulator(speed=None) as emu:
        done = hpgfast(*_send(emu.url, second, journal))
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(e.text for e in emu.ledger.messages()) == [
            f"another {i}" for i in range(5)]
    assert _states(journal) == {"accepted": 5}


def test_demo_keeps_its_journal_at_a_url(pg_journal_url: str) -> None:
    done = hpgfast("demo", "-n", "1000", "--speed", "5000", "--quiet",
                   "--journal", pg_journal_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _pg_password() not in done.stdout + done.stderr
    states = _states(pg_journal_url)
    assert states == {"accepted": 996, "rejected": 4}, states


# -- a libpq keyword string is not a file name -------------------------------------------


@pytest.mark.parametrize("command", ["send", "report", "status", "receive"])
def test_a_keyword_string_is_refused_and_never_shown(tmp_path: Path, command: str) -> None:
    secret = "kw-Secret-4411"
    conninfo = f"host=db.internal dbname=sms user=sender password={secret}"
    args = {
        "send": ["send", "--url", "http://127.0.0.1:9/C/x/", "--login", "CLIENT",
                 "--to", "79031234567", "--text", "hi", "--subject", "S",
                 "--journal", conninfo],
        "report": ["report", conninfo],
        "status": ["status", "--url", "http://127.0.0.1:9/C/x/", "--login", "CLIENT",
                   "--journal", conninfo],
        "receive": ["receive", "--port", "0", "--no-secret", "--allow", "127.0.0.1",
                    "--journal", conninfo],
    }[command]
    done = subprocess.run([sys.executable, "-m", "hpgfast", *args], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "postgresql://" in _one_line(done.stderr)
    assert secret not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []  # no file made of that name


def test_open_journal_refuses_a_keyword_string(tmp_path: Path) -> None:
    from hpgfast.journal import JournalError

    os.chdir(tmp_path)
    with pytest.raises(JournalError) as info:
        open_journal("host=db password=kw-Secret-4411")
    assert "kw-Secret-4411" not in str(info.value) + repr(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_password_in_the_url_warns_that_ps_shows_it(pg_journal_url: str) -> None:
    with_password = hpgfast("report", pg_journal_url)
    warned = [line for line in with_password.stderr.splitlines() if "visible" in line]
    assert len(warned) == 1 and "PGPASSWORD" in warned[0], with_password.stderr
    assert _pg_password() not in with_password.stdout + with_password.stderr
    without = hpgfast(
        "report", pg_journal_url.replace(f":{_pg_password()}@", "@"),
        env=_env(PGPASSWORD=_pg_password()),
    )
    assert "visible" not in without.stderr, without.stderr
