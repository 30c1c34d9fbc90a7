"""Records database edges, with real SQLite files and CLI subprocesses: an in-memory database is refused (the
record would be lost), a directory that does not exist is never created, rows changed outside stimscript and a
database locked by another connection give clear errors or a truthful degraded outcome, never a traceback."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import stimscript
from stimscript.runtime.records import RecordError, RecordStore
from stimscript.runtime.testing import nmes_schedule

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "acl_early_toth2020.stim")
SCHED = nmes_schedule(channels=2, seconds=6, on_s=3, off_s=1, ramp_s=0.5)


def cli(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.pop("STIMSCRIPT_DB", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True, env=e,
                       cwd=cwd, timeout=120)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    return r


@pytest.mark.parametrize("how", ["env", "option"])
def test_in_memory_database_is_refused_before_a_session(tmp_path, how):
    args = ["run", EXAMPLE, "--fast"] + (["--db", ":memory:"] if how == "option" else [])
    r = cli(*args, env={"STIMSCRIPT_DB": ":memory:"} if how == "env" else None, cwd=tmp_path)
    assert r.returncode == 1
    assert ":memory:" in r.stderr and "lost" in r.stderr
    assert "record" not in r.stdout     # no session ran


def test_in_memory_database_is_refused_by_the_api():
    with pytest.raises(RecordError, match="memory"):
        stimscript.run(SCHED, device="loopback", db=":memory:")
    with pytest.raises(RecordError, match="memory"):
        RecordStore(":memory:")


@pytest.mark.parametrize("command", [["history"], ["run", EXAMPLE, "--fast"], ["void", "1", "--reason", "x"]])
def test_a_missing_directory_is_never_created(tmp_path, command):
    r = cli(*command, "--db", "typo/dir/x.sqlite", cwd=tmp_path)
    assert r.returncode == 1
    assert "typo/dir" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "typo").exists()


def test_a_missing_directory_in_the_environment_is_not_created_either(tmp_path):
    r = cli("history", env={"STIMSCRIPT_DB": str(tmp_path / "nope" / "r.sqlite")})
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert not (tmp_path / "nope").exists()


def _two_records(db):
    for _ in range(2):
        rec = stimscript.run(SCHED, device="loopback", db=db, patient_id="P-1")
        assert rec.storage == "database"


@pytest.mark.parametrize("change, what", [
    ("delivered='{not json'", "delivered is not valid JSON"),
    ("params='[1, 2]'", "params holds list data"),
    ("session='seven'", "session is 'seven'"),
    ("peak_ua='7'", "peak_ua holds int data"),
])
def test_a_row_changed_outside_stimscript_is_reported_and_the_others_still_listed(tmp_path, change, what):
    db = tmp_path / "r.sqlite"
    _two_records(db)
    conn = sqlite3.connect(str(db))
    conn.execute(f"UPDATE sessions SET {change} WHERE id=1")
    conn.commit()
    conn.close()
    r = cli("history", "--all", "--db", str(db))
    assert r.returncode == 0
    assert "record #1" in r.stderr and "damaged" in r.stderr and what in r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert lines[1].split()[0] == "2" and not any(ln.split()[0] == "1" for ln in lines[1:] if ln.split())
    r = cli("history", "1", "--db", str(db))
    assert r.returncode == 1 and "record #1" in r.stderr and what in r.stderr
    r = cli("history", "2", "--db", str(db))
    assert r.returncode == 0


def test_history_while_another_connection_holds_the_write_lock(tmp_path):
    db = tmp_path / "r.sqlite"
    _two_records(db)
    lock = sqlite3.connect(str(db), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        r = cli("history", "--all", "--db", str(db))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert r.returncode == 0
    assert len([ln for ln in r.stdout.splitlines() if ln.strip()]) >= 3   # header and both records


def test_database_locked_mid_run_keeps_a_truthful_record(tmp_path):
    db = tmp_path / "r.sqlite"
    lock = []

    def on_event(e):
        if e.kind == "progress" and e.t_us >= 2_000_000 and not lock:
            conn = sqlite3.connect(str(db), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")     # a second program takes the database mid-run
            lock.append(conn)

    dev = stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(SCHED, device=dev, db=db, record_patience_s=0, db_interval_s=0, on_event=on_event)
    out = dev.emulator.output
    dev.close()
    assert lock
    assert rec.end_reason == "completed" and sum(rec.delivered.values()) == len(out)
    assert rec.storage == "journal" and "locked" in rec.storage_error
    lock[0].execute("ROLLBACK")
    lock[0].close()
    with RecordStore(db) as store:       # the journal is merged on the next open: nothing lost
        back, = [r for r in store.list(all=True) if r.uuid == rec.uuid]
    assert back.end_reason == "completed" and back.delivered == rec.delivered
