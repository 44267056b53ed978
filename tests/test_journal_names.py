"""A journal reached by another name than its last user's: every commit seen, or refused.

SQLite finds a database's write-ahead log by the name the database was opened by
(``run.db`` -> ``run.db-wal``). A sender killed with SIGKILL leaves its commits in
the log beside the name it used; the same file reached by another name (a bind
mount, a moved file) has no log there, so it would read the journal as it was at
the last checkpoint and send again what the killed sender had sent. The journal
records, in the database file itself, the name it was last opened by; a journal
opened by another name while that name's log is there is refused, with that name
in the message. A sender also marks the file itself as open until it closes cleanly,
so that a copy taken after a kill, a file whose log was deleted, and what a move or an
unmount leaves are refused too. A journal closed cleanly (its log checkpointed and
removed) opens by any name: moved, copied, or through a mount.

The bind-mount test needs root (``mount --bind``); it is skipped only when not run
as root, and fails under CI (``CI`` set), which runs as root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from hpgfast import Message
from hpgfast.emulator import Emulator
from hpgfast.journal import Journal, JournalError, State

N = 20_000
ENV = {**os.environ, "HPGFAST_PASSWORD": "P@ssw0rd"}


def _write_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("address,text,subject\n")
        for i in range(n):
            f.write(f"7900{i:07d},message {i},hpgfast\n")


def _send(url: str, csv_path: Path, journal: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hpgfast", "send", "--url", url, "--login", "CLIENT",
        "--file", str(csv_path), "--journal", str(journal), "--concurrency", "2",
        "--max-batch", "50", "--quiet", *extra,
    ]


@pytest.fixture
def bind_mount() -> Iterator[Callable[[Path, Path], None]]:
    """``bind(source, target)``: ``mount --bind``, undone at the end of the test."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the tests as root: the bind-mount test must run there")
        pytest.skip("mount --bind needs root")
    mounted: list[Path] = []

    def bind(source: Path, target: Path) -> None:
        target.touch()
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        mounted.append(target)

    yield bind
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False)


def _kill_while_sending(url: str, csv_path: Path, journal: Path, ledger: object) -> None:
    sender = subprocess.Popen(
        _send(url, csv_path, journal), env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(ledger) < 2_000 and sender.poll() is None and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(0.01)
    assert sender.poll() is None, "the sender ended before it could be killed"
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait()
    # A request the sender wrote just before the kill may still be in the platform's
    # latency: it counts as sent by the killed run once the platform has it. Wait
    # until the ledger stops growing, so that what a later run adds is its own.
    seen = -1
    while len(ledger) != seen:  # type: ignore[arg-type]
        seen = len(ledger)  # type: ignore[arg-type]
        time.sleep(0.25)


@pytest.mark.slow
def test_a_resume_through_a_bind_mount_after_a_kill_is_refused(
    tmp_path: Path, bind_mount: Callable[[Path, Path], None]
) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, N)
    real = tmp_path / "real" / "j.db"
    real.parent.mkdir()
    alias = tmp_path / "alias.db"
    with Emulator(speed=None, latency=0.02) as emu:
        _kill_while_sending(emu.url, csv_path, real, emu.ledger)
        assert Path(f"{real}-wal").exists(), "the killed sender left its log"
        sent = len(emu.ledger)
        assert 0 < sent < N
        bind_mount(real, alias)
        assert os.path.samefile(real, alias)

        through_alias = subprocess.run(
            _send(emu.url, csv_path, alias), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert through_alias.returncode == 2, through_alias.stdout + through_alias.stderr
        assert str(real) in through_alias.stderr, through_alias.stderr
        assert len(emu.ledger) == sent, "the refused run sent messages"
        # A reader through the alias is refused as well: it would read a stale journal.
        report = subprocess.run(
            [sys.executable, "-m", "hpgfast", "report", str(alias), "--json"],
            env=ENV, capture_output=True, text=True, timeout=60,
        )
        assert report.returncode == 2 and str(real) in report.stderr, report.stderr

        through_real = subprocess.run(
            _send(emu.url, csv_path, real), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        # 1: the messages in flight at the kill are unknown, not sent again.
        assert through_real.returncode == 1, through_real.stdout + through_real.stderr
        assert emu.ledger.duplicates("text") == {}
        texts = {e.text for e in emu.ledger}
        assert len(texts) == len(emu.ledger) <= N

        # Closed cleanly now (no log left beside either name): any name opens it and
        # sees every commit; a run through the alias sends nothing more.
        assert not Path(f"{real}-wal").exists()
        again = subprocess.run(
            _send(emu.url, csv_path, alias), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        assert len(emu.ledger) == len(texts)
    with Journal(alias) as journal:
        counts = journal.counts()
        accepted = {r[2] for r in journal.rows(states=[State.ACCEPTED])}
        # Accepted in the journal: in the ledger; the rest of the ledger went out in
        # the requests on the wire at the kill, and is unknown in the journal.
        assert accepted <= texts and len(accepted) == counts[State.ACCEPTED]
        assert counts[State.ACCEPTED] + counts[State.UNKNOWN] == N
        assert journal.integrity_check() == "ok"
    with Journal(real) as journal:
        assert journal.counts() == counts


_CRASH = """
import os, sys
from hpgfast import Message
from hpgfast.journal import Journal
j = Journal(sys.argv[1], lock=True)
j.bind({"input_sha256": "x"})
j.load([(i, Message("79000000001", f"m{i}", "s")) for i in range(1, 101)])
j.finish_load(100)
j.mark_in_flight(list(range(1, 51)))
os.kill(os.getpid(), 9)
"""


def _crash(path: Path) -> None:
    """A real process that journals 100 messages, marks 50 in flight and is killed."""
    done = subprocess.run([sys.executable, "-c", _CRASH, str(path)], timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert Path(f"{path}-wal").exists()


# The name is read from the file through an SQLite URI: characters a URI quotes too.
@pytest.mark.parametrize("folder", ["a", "we ird%3F?#x"])
def test_a_journal_moved_without_its_log_is_refused_and_resumes_by_its_name(
    tmp_path: Path, folder: str
) -> None:
    first = tmp_path / folder / "run.db"
    first.parent.mkdir()
    _crash(first)
    moved = tmp_path / "b.db"
    os.rename(first, moved)
    with pytest.raises(JournalError) as refused:
        Journal(moved, lock=True)
    assert str(first) in str(refused.value)
    os.rename(moved, first)
    with Journal(first, lock=True) as j:
        assert j.loaded == 100
        assert j.recover() == {"in_flight_to_unknown": 50, "unknown_to_pending": 0}


def test_a_journal_moved_with_its_log_resumes_by_the_new_name(tmp_path: Path) -> None:
    first = tmp_path / "a.db"
    _crash(first)
    moved = tmp_path / "b.db"
    os.rename(first, moved)
    os.rename(f"{first}-wal", f"{moved}-wal")
    with Journal(moved, lock=True) as j:
        assert j.loaded == 100
        assert j.recover()["in_flight_to_unknown"] == 50
    # Recorded under its new name: the old one, with no log, may open it too.
    with Journal(moved) as j:
        assert j.meta()["opened_as"] == str(moved)


def test_a_cleanly_closed_journal_opens_by_any_name(tmp_path: Path) -> None:
    first = tmp_path / "a.db"
    with Journal(first, lock=True) as j:
        j.bind({"input_sha256": "x"})
        j.load([(1, Message("79000000001", "m", "s"))])
        j.finish_load(1)
        assert j.meta()["opened_as"] == str(first)
    assert not Path(f"{first}-wal").exists()
    moved = tmp_path / "b.db"
    os.rename(first, moved)
    with Journal(moved, lock=True) as j:
        assert j.loaded == 1
    copy = tmp_path / "c.db"
    shutil.copyfile(moved, copy)
    with Journal(moved) as a, Journal(copy) as b:
        # The copy is another file: the original's log, open now, is not its.
        assert a.loaded == b.loaded == 1
        assert b.meta()["opened_as"] == str(copy)


def test_the_name_is_in_the_database_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Journal(path):
        # Read as the file holds it, with no log: what another name would see.
        import sqlite3

        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'opened_as'").fetchone()
        finally:
            db.close()
    assert row == (str(path),)


# -- a resume through a second name after a kill: every way the tester found ----------
#
# Each case kills a real ``hpgfast send`` once 2,000 messages are in the emulator's
# ledger, then resumes through another name. The emulator accepts a repeated clientId
# (``unique_client_ids`` off), so a duplicate would show in the ledger; and a journal
# whose main file did not hold its clientId prefix would resend under new ids, which
# even a strict platform would take. The resume must be refused (exit 2, naming the
# path the killed sender used) and send nothing.


def _no_duplicates(ledger: object) -> None:
    pairs = [(e.address, e.text) for e in ledger]  # type: ignore[attr-defined]
    assert len(pairs) == len(set(pairs)), "a message was sent twice"


def _copy(real: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copyfile(real, copy)
    return copy


def _delete_log(real: Path, tmp_path: Path) -> Path:
    os.unlink(f"{real}-wal")
    return real


def _move_and_replace(real: Path, tmp_path: Path) -> Path:
    moved = tmp_path / "moved.db"
    os.rename(real, moved)
    real.touch()  # any file at the old name: a new run's journal, say
    return moved


@pytest.mark.slow
@pytest.mark.parametrize(
    "second_name", [_copy, _delete_log, _move_and_replace], ids=["copy", "log-deleted", "moved"]
)
def test_a_resume_through_a_stale_name_after_a_kill_is_refused(
    tmp_path: Path, second_name: Callable[[Path, Path], Path]
) -> None:
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, N)
    real = tmp_path / "real" / "j.db"
    real.parent.mkdir()
    with Emulator(speed=None, latency=0.02, unique_client_ids=False) as emu:
        _kill_while_sending(emu.url, csv_path, real, emu.ledger)
        sent = len(emu.ledger)
        assert 0 < sent < N
        other = second_name(real, tmp_path)
        resumed = subprocess.run(
            _send(emu.url, csv_path, other), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert resumed.returncode == 2, resumed.stdout + resumed.stderr
        assert str(real) in resumed.stderr, resumed.stderr
        assert len(emu.ledger) == sent, "the refused run sent messages"
        # A reader is refused too: it would show a journal without the last commits.
        report = subprocess.run(
            [sys.executable, "-m", "hpgfast", "report", str(other), "--json"],
            env=ENV, capture_output=True, text=True, timeout=60,
        )
        assert report.returncode == 2 and str(real) in report.stderr, report.stderr
        # Refused again: the reader did not make the journal look whole.
        again = subprocess.run(
            _send(emu.url, csv_path, other), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert again.returncode == 2, again.stdout + again.stderr
        assert len(emu.ledger) == sent
        _no_duplicates(emu.ledger)


@pytest.mark.slow
def test_a_resume_after_the_killed_senders_bind_mount_is_gone_is_refused(
    tmp_path: Path, bind_mount: Callable[[Path, Path], None]
) -> None:
    # The killed sender ran in a container whose bind mount is gone when the host
    # resumes: the mount point is an ordinary (empty) file again, beside its log.
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, N)
    real = tmp_path / "real" / "j.db"
    real.parent.mkdir()
    real.touch()
    alias = tmp_path / "alias.db"
    bind_mount(real, alias)
    with Emulator(speed=None, latency=0.02, unique_client_ids=False) as emu:
        _kill_while_sending(emu.url, csv_path, alias, emu.ledger)
        sent = len(emu.ledger)
        assert Path(f"{alias}-wal").exists()
        subprocess.run(["umount", str(alias)], check=True)
        assert not os.path.samefile(real, alias)
        resumed = subprocess.run(
            _send(emu.url, csv_path, real), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert resumed.returncode == 2, resumed.stdout + resumed.stderr
        assert str(alias) in resumed.stderr, resumed.stderr
        assert len(emu.ledger) == sent, "the refused run sent messages"
        _no_duplicates(emu.ledger)


@pytest.mark.slow
def test_the_legitimate_resumes_after_a_kill_still_work(tmp_path: Path) -> None:
    # By the same name after kill -9; then, once closed cleanly, through a copy;
    # and a journal killed again and moved together with its log.
    csv_path = tmp_path / "m.csv"
    _write_csv(csv_path, N)
    real = tmp_path / "real" / "j.db"
    real.parent.mkdir()
    with Emulator(speed=None, latency=0.02, unique_client_ids=False) as emu:
        _kill_while_sending(emu.url, csv_path, real, emu.ledger)
        resumed = subprocess.run(
            _send(emu.url, csv_path, real), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        # 1: the messages in flight at the kill are unknown, not sent again.
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        _no_duplicates(emu.ledger)
        done = len(emu.ledger)
        assert not Path(f"{real}-wal").exists()
        copy = _copy(real, tmp_path)
        through_copy = subprocess.run(
            _send(emu.url, csv_path, copy), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert through_copy.returncode == 1, through_copy.stdout + through_copy.stderr
        assert len(emu.ledger) == done

    second = tmp_path / "second" / "j.db"
    second.parent.mkdir()
    with Emulator(speed=None, latency=0.02, unique_client_ids=False) as emu:
        _kill_while_sending(emu.url, csv_path, second, emu.ledger)
        moved = tmp_path / "moved.db"
        os.rename(second, moved)
        os.rename(f"{second}-wal", f"{moved}-wal")
        resumed = subprocess.run(
            _send(emu.url, csv_path, moved), env=ENV, capture_output=True, text=True,
            timeout=300,
        )
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        _no_duplicates(emu.ledger)
        assert len(emu.ledger) <= N


def test_the_database_file_knows_a_send_is_open_and_keeps_the_clientid_prefix(
    tmp_path: Path,
) -> None:
    # Read as the file alone holds it: what a copy, or a name without the log, sees.
    import sqlite3

    path = tmp_path / "run.db"

    def file_meta() -> dict[str, str]:
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return dict(db.execute("SELECT key, value FROM meta"))
        finally:
            db.close()

    _crash(path)
    meta = file_meta()
    assert len(meta["id_prefix"]) == 11 and meta["schema_version"]
    assert "unclean" in meta
    with Journal(path, lock=True) as j:
        assert j.meta()["id_prefix"] == meta["id_prefix"]
        j.recover()
    assert "unclean" not in file_meta()
    # A reader does not mark the file.
    with Journal(path):
        pass
    assert "unclean" not in file_meta()
    # A journal killed with its log deleted is refused, by every opener.
    _crash_again = subprocess.run(
        [sys.executable, "-c", _KILL_OPEN, str(path)], timeout=60
    )
    assert _crash_again.returncode == -signal.SIGKILL
    os.unlink(f"{path}-wal")
    for lock in (True, False):
        with pytest.raises(JournalError) as refused:
            Journal(path, lock=lock)
        assert str(path) in str(refused.value)
    assert not Path(f"{path}-wal").exists()


_KILL_OPEN = """
import os, sys
from hpgfast.journal import Journal
j = Journal(sys.argv[1], lock=True)
j.mark_in_flight([51, 52])
os.kill(os.getpid(), 9)
"""


def _unclean_in_file(path: Path) -> bool:
    import sqlite3

    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return db.execute("SELECT 1 FROM meta WHERE key = 'unclean'").fetchone() is not None
    finally:
        db.close()


def test_a_report_after_a_kill_leaves_the_journal_resumable(tmp_path: Path) -> None:
    # The reader's close is the one that checkpoints the killed sender's log into the
    # file and removes it: it must clear the mark too, or the resume would be refused.
    path = tmp_path / "run.db"
    _crash(path)
    with Journal(path) as reader:
        assert reader.counts()[State.IN_FLIGHT] == 50
    assert not Path(f"{path}-wal").exists()
    assert not _unclean_in_file(path)
    with Journal(path, lock=True) as j:
        assert j.recover()["in_flight_to_unknown"] == 50


def test_a_reader_beside_a_running_sender_leaves_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Journal(path, lock=True) as sender:
        sender.bind({"input_sha256": "x"})
        with Journal(path) as reader:
            assert reader.loaded is None
        assert _unclean_in_file(path)
    assert not _unclean_in_file(path)
    assert not Path(f"{path}-wal").exists()


def test_a_copy_with_its_log_made_after_a_kill_is_refused_once_the_original_resumed(
    tmp_path: Path,
) -> None:
    # A directory copied with the log after a kill sees what the killed sender did;
    # but once the original has been resumed (and closed cleanly, its log gone), the
    # copy lacks what the resume sent: the original's name still holds the journal.
    real = tmp_path / "real" / "j.db"
    real.parent.mkdir()
    _crash(real)
    shutil.copytree(real.parent, tmp_path / "copy")
    copy = tmp_path / "copy" / "j.db"
    # While the original's log is there, the copy is refused (naming the original).
    with pytest.raises(JournalError) as refused:
        Journal(copy, lock=True)
    assert str(real) in str(refused.value)
    with Journal(real, lock=True) as j:
        j.recover()
        j.mark_in_flight(list(range(51, 101)))
    assert not Path(f"{real}-wal").exists()
    with pytest.raises(JournalError) as refused:
        Journal(copy, lock=True)
    assert str(real) in str(refused.value)
    # Gone from there (the original removed): the copy is all there is, and opens.
    os.unlink(real)
    with Journal(copy, lock=True) as j:
        assert j.counts()[State.IN_FLIGHT] == 50


@pytest.mark.parametrize("lose", ["delete", "empty"])
def test_a_journal_whose_log_is_lost_after_a_kill_is_refused(tmp_path: Path, lose: str) -> None:
    path = tmp_path / "run.db"
    _crash(path)
    if lose == "delete":
        os.unlink(f"{path}-wal")
    else:
        os.truncate(f"{path}-wal", 0)
    for lock in (True, False, True):
        with pytest.raises(JournalError) as refused:
            Journal(path, lock=lock)
        assert str(path) in str(refused.value) and "not closed cleanly" in str(refused.value)
