"""Records off the real-time path: a writer thread, a journal when the database is unavailable, merged later;
read-only databases can be listed. Real SQLite files throughout; virtual time for the sessions."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import stimscript
from stimscript.errors import StimscriptError
from stimscript.runtime.records import RecordError, RecordStore
from stimscript.runtime.recordwriter import journal_path_for
from stimscript.runtime.testing import nmes_schedule

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCHED = nmes_schedule(channels=3, seconds=6, on_s=3, off_s=1, ramp_s=0.5)


def hold_lock(db):
    """Another process's view: a connection holding the write lock until released."""
    RecordStore(db).close()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_database_locked_at_the_start_refuses_the_session_before_start(tmp_path):
    db = tmp_path / "r.sqlite"
    lock = hold_lock(db)
    dev = stimscript.open_device("loopback", capture=True)
    try:
        with pytest.raises(RecordError) as err:
            stimscript.run(SCHED, device=dev, db=db, record_patience_s=0, db_interval_s=0)
        assert dev.emulator.state == 0 and len(dev.emulator.output) == 0     # START never sent: still idle
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        dev.close()
    text = str(err.value)
    assert str(db) in text and "locked by another program" in text and "nothing was sent to the device" in text
    assert not journal_path_for(db).exists()
    with RecordStore(db) as store:
        assert store.list(all=True) == []          # no half record either


def test_a_lock_released_within_the_wait_lets_the_session_start(tmp_path):
    """The writer waits (``record_patience_s``) for a lock held at the start; released in time, the session
    runs and its record is in the database."""
    import threading

    db = tmp_path / "r.sqlite"
    RecordStore(db).close()
    lock = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)   # released from the writer
    lock.execute("BEGIN IMMEDIATE")
    started = threading.Event()
    real_connect = sqlite3.connect

    def release_once_tried(*a, **k):     # the writer's first attempt meets the lock; then it is released
        conn = real_connect(*a, **k)
        if not started.is_set():
            started.set()
            lock.execute("ROLLBACK")
        return conn

    import unittest.mock as um

    with um.patch("stimscript.runtime.records.sqlite3.connect", release_once_tried):
        rec = stimscript.run(SCHED, device="loopback", db=db, record_patience_s=5, db_interval_s=0)
    lock.close()
    assert started.is_set() and rec.storage == "database" and rec.end_reason == "completed"


def test_a_lock_taken_and_released_during_the_session_ends_with_the_record_in_the_database(tmp_path):
    db = tmp_path / "r.sqlite"
    RecordStore(db).close()
    lock = []
    released = []

    def on_event(e):
        if e.kind == "progress" and e.t_us >= 1_000_000 and not lock:
            conn = sqlite3.connect(str(db), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")      # another program takes the database mid-run
            lock.append(conn)
        if e.kind == "progress" and e.t_us >= 3_000_000 and lock and not released:
            lock[0].execute("ROLLBACK")
            released.append(e.t_us)

    rec = stimscript.run(SCHED, device="loopback", db=db, record_patience_s=0, db_interval_s=0, on_event=on_event)
    lock[0].close()
    assert released and rec.storage == "database" and rec.id is not None
    assert not journal_path_for(db).exists()
    with RecordStore(db) as store:
        back = store.get(rec.id)
    assert back.end_reason == "completed" and back.delivered == SCHED.counts()


def test_no_database_and_no_journal_means_no_session(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    dev = stimscript.open_device("loopback", capture=True)
    with pytest.raises(RecordError, match="cannot keep a session record|does not exist"):
        stimscript.run(SCHED, device=dev, db=blocker / "sub" / "r.sqlite", record_patience_s=0)
    assert len(dev.emulator.output) == 0      # nothing was delivered without a record


def test_a_file_that_is_not_a_records_database_refuses_the_run_before_start(tmp_path):
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"these are not the bytes of an SQLite database\n" * 100)
    dev = stimscript.open_device("loopback", capture=True)
    with pytest.raises(RecordError, match="nothing was sent to the device"):
        stimscript.run(SCHED, device=dev, db=db, record_patience_s=0)
    assert len(dev.emulator.output) == 0                      # nothing delivered without a record
    assert not journal_path_for(db).exists()                  # no journal waiting for a merge that never comes
    assert db.read_bytes().startswith(b"these are not")       # the user's file is left as it was


def test_cli_run_with_a_file_that_is_not_a_records_database(tmp_path):
    db = tmp_path / "r.sqlite"
    db.write_text("garbage\n")
    r = _cli("run", str(EXAMPLES / "tka_quadriceps.stim"), "--fast", "--device", "loopback", "--db", str(db))
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert "nothing was sent to the device" in r.stderr


def test_the_streaming_thread_never_touches_sqlite(tmp_path, monkeypatch):
    """Every SQLite call of a session happens on the writer thread, none on the thread that streams."""
    import threading

    seen = []
    for name in ("begin", "update_progress", "finish"):
        orig = getattr(RecordStore, name)

        def spy(self, rec, _orig=orig, _name=name):
            seen.append((_name, threading.current_thread()))
            return _orig(self, rec)

        monkeypatch.setattr(RecordStore, name, spy)
    rec = stimscript.run(SCHED, device="loopback", db=tmp_path / "r.sqlite", db_interval_s=0)
    assert rec.storage == "database" and rec.end_reason == "completed"
    names = [n for n, _ in seen]
    assert names[0] == "begin" and names[-1] == "finish" and "update_progress" in names
    assert all(t is not threading.main_thread() and t.name == "stimscript-records" for _, t in seen)


def test_old_database_learns_the_degraded_end_reason_keeping_rows_and_notes(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(str(db), isolation_level=None)
    from stimscript.runtime import records

    old_schema = records.SCHEMA.replace("'completed','degraded',", "'completed',")
    old_schema = old_schema.replace(",\n    scheduled_pulses INTEGER NOT NULL DEFAULT 0,\n    end_detail TEXT NOT NULL DEFAULT ''", "")
    assert "degraded" not in old_schema and "end_detail" not in old_schema
    conn.executescript(old_schema)
    conn.execute("INSERT INTO sessions (uuid, started_at, updated_at, end_reason) VALUES ('u1', 't', 't', 'completed')")
    conn.execute("INSERT INTO notes (session_id, created_at, text) VALUES (1, 't', 'felt fine')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE sessions SET end_reason='degraded'")
    conn.close()
    with RecordStore(db) as store:
        store.conn.execute("UPDATE sessions SET end_reason='degraded', end_detail='x' WHERE id=1")
        rec = store.get(1)
    assert rec.end_reason == "degraded" and rec.end_detail == "x" and [n.text for n in rec.notes] == ["felt fine"]


def _cli(*args, env=None, preexec=None):
    return subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec, timeout=120)


def test_cli_full_disk_keeps_the_record_in_a_journal_with_its_exit_code(tmp_path):
    resource = pytest.importorskip("resource")
    import signal

    db = tmp_path / "full.sqlite"

    def small_disk():   # every file this process writes is capped at 48 kB: the database cannot grow
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (48_000, 48_000))

    proto = os.path.join(os.path.dirname(__file__), "..", "examples", "tka_quadriceps.stim")
    r = _cli("run", proto, "--fast", "--plain", "--db", str(db), preexec=small_disk)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.returncode == 4, r.stdout + r.stderr
    assert "NOT in the database" in r.stdout and str(journal_path_for(db)) in r.stdout
    assert "end reason   completed" in r.stdout
    h = _cli("history", "--all", "--db", str(db), "--csv")          # no limit now: merged and listed
    assert h.returncode == 0, h.stderr
    rows = h.stdout.strip().splitlines()
    assert len(rows) == 2 and ",completed," in rows[1]
    assert not journal_path_for(db).exists()


def _readonly_copy(tmp_path):
    db = tmp_path / "src" / "r.sqlite"
    db.parent.mkdir()
    stimscript.run(SCHED, device="loopback", db=db)
    return db


@pytest.mark.parametrize("with_wal", [False, True])
def test_history_reads_a_database_it_cannot_write(tmp_path, with_wal):
    """On a read-only bind mount (needs mount namespaces), with the WAL database's -shm absent."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to make a read-only mount")
    db = _readonly_copy(tmp_path)
    assert not db.with_name(db.name + "-shm").exists()   # the writer closed (and checkpointed) the database
    if with_wal:   # a second session still in the write-ahead log, as a copy taken while it was open
        keep = sqlite3.connect(str(db))
        keep.execute("SELECT count(*) FROM sessions").fetchall()   # holds the WAL open
        stimscript.run(SCHED, device="loopback", db=db)
        shutil.copy2(db.with_name(db.name + "-wal"), tmp_path / "wal")
        keep.close()
        shutil.copy2(tmp_path / "wal", db.with_name(db.name + "-wal"))
        for extra in ("-shm",):
            p = db.with_name(db.name + extra)
            if p.exists():
                p.unlink()
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount --bind {db.parent} {ro} && mount -o remount,bind,ro {ro} && "
              f"touch {ro}/probe 2>/dev/null && exit 99; "
              f"exec {sys.executable} -m stimscript.cli history --all --csv --db {ro / db.name}")
    scratch = tmp_path / "scratch"   # the command's temporary folder: a private copy must not stay behind
    scratch.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TMPDIR": str(scratch)})
    if r.returncode == 99 or "mount:" in r.stderr:
        pytest.skip(f"cannot make a read-only mount here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    rows = r.stdout.strip().splitlines()
    assert len(rows) == 2 + with_wal and all(",completed," in row for row in rows[1:])
    assert list(scratch.iterdir()) == []   # no copy of the records is left in the temporary folder


def test_read_only_open_never_writes(tmp_path):
    db = _readonly_copy(tmp_path)
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    with RecordStore.for_reading(db) as store:
        assert len(store.list(all=True)) == 1
    from stimscript.runtime.records import _open_readonly

    conn = _open_readonly(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM sessions")
    conn.close()
    with pytest.raises(RecordError, match="no records database"):
        _open_readonly(tmp_path / "missing.sqlite")
    assert isinstance(RecordError("x"), StimscriptError)
    assert set(before) <= {p.name for p in db.parent.iterdir()}
