"""Rows of the event log and of the notes changed outside stimscript, and a database another program holds when a
run starts: clear errors in the style of a damaged session row, in subprocesses of the real CLI against real SQLite
files, never a traceback; the other records stay readable."""
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


def cli(*args, env=None):
    e = dict(os.environ)
    e.pop("STIMSCRIPT_DB", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True, env=e,
                       timeout=120)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    return r


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Two records of one patient; the first has an intensity change in its log and two notes."""
    db = tmp_path_factory.mktemp("records") / "r.sqlite"
    from stimscript.runtime import SessionController

    ctl = SessionController(slew_ua_per_s=1_000_000)
    ctl.at(1_000_000, "intensity_down", None, 5_000, 1)
    stimscript.run(SCHED, device="loopback", db=db, patient_id="P-1", controller=ctl)
    stimscript.run(SCHED, device="loopback", db=db, patient_id="P-1")
    with RecordStore(db) as store:
        store.add_note(1, "fine")
        store.add_note(1, rpe=5)
        assert any(e.kind == "intensity" for e in store.get(1).events)
    return db


def damaged_copy(src: Path, dst: Path, change: str) -> Path:
    db = dst / "r.sqlite"
    with sqlite3.connect(str(src)) as a, sqlite3.connect(str(db)) as b:
        a.backup(b)
    conn = sqlite3.connect(str(db))
    conn.execute("PRAGMA ignore_check_constraints=1")    # as a database tool might
    conn.execute(change)
    conn.commit()
    conn.close()
    return db


EVENT_DAMAGE = [
    ("UPDATE events SET old_ua='x' WHERE session_id=1 AND kind='intensity'", "column old_ua is 'x', not a whole number"),
    ("UPDATE events SET device_us='soon' WHERE session_id=1 AND seq=0", "column device_us is 'soon'"),
    ("UPDATE events SET scale_ppm=-5 WHERE session_id=1 AND kind='intensity'", "column scale_ppm is -5"),
    ("UPDATE events SET kind='' WHERE session_id=1 AND seq=0", "column kind is '', not an event kind"),
    ("UPDATE events SET channel=1.5 WHERE session_id=1 AND kind='intensity'", "column channel is 1.5"),
]
NOTE_DAMAGE = [
    ("UPDATE notes SET rpe_value='high' WHERE session_id=1 AND kind='rpe'", "column rpe_value is 'high', not a number"),
    ("UPDATE notes SET kind='weird' WHERE session_id=1", "column kind is 'weird'"),
    ("UPDATE notes SET rpe_value=99 WHERE session_id=1 AND kind='rpe'", "outside the cr10 scale"),
    ("UPDATE notes SET rpe_scale='vas' WHERE session_id=1 AND kind='rpe'", "column rpe_scale is 'vas'"),
]


@pytest.mark.parametrize("change, what", EVENT_DAMAGE + NOTE_DAMAGE)
def test_a_damaged_event_or_note_is_named_and_the_other_records_are_shown(records, tmp_path, change, what):
    db = damaged_copy(records, tmp_path, change)
    for args in (["history", "1"], ["history", "1", "--csv"], ["note", "1", "--text", "more"],
                 ["export", "1", "-o", str(tmp_path / "out.csv")]):
        r = cli(*args, "--db", str(db))
        assert r.returncode == 1, (args, r.stderr)
        assert "record #1" in r.stderr and "is damaged" in r.stderr and what in r.stderr, (args, r.stderr)
        assert "changed outside stimscript" in r.stderr
    assert not (tmp_path / "out.csv").exists()
    r = cli("history", "2", "--db", str(db))
    assert r.returncode == 0 and "Traceback" not in r.stderr
    r = cli("history", "--all", "--db", str(db))
    assert r.returncode == 0
    rows = [ln.split()[0] for ln in r.stdout.splitlines()[1:] if ln.strip()]
    assert "2" in rows
    if "notes" in change:     # the list reads notes: the damaged record is reported, not shown
        assert "1" not in rows and "record #1" in r.stderr and what in r.stderr
    r = cli("history", "--all", "--csv", "--db", str(db))
    assert r.returncode == 0


@pytest.mark.parametrize("change, what", EVENT_DAMAGE + NOTE_DAMAGE)
def test_the_api_raises_a_record_error_naming_the_entry(records, tmp_path, change, what):
    db = damaged_copy(records, tmp_path, change)
    with RecordStore(db) as store:
        with pytest.raises(RecordError, match="record #1 .* is damaged") as err:
            store.get(1)
        assert what in str(err.value)
        assert store.get(2).id == 2


def test_a_database_locked_at_the_start_is_a_clear_refusal_from_the_cli(tmp_path):
    db = tmp_path / "r.sqlite"
    RecordStore(db).close()
    lock = sqlite3.connect(str(db), isolation_level=None)      # another program, holding the write lock
    lock.execute("BEGIN IMMEDIATE")
    try:
        r = cli("run", EXAMPLE, "--fast", "--db", str(db))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert r.returncode == 1
    assert "locked by another program" in r.stderr and "nothing was sent to the device" in r.stderr
    assert str(db) in r.stderr
    with RecordStore(db) as store:
        assert store.list(all=True) == []                      # no session ran, no record was made
    r = cli("run", EXAMPLE, "--fast", "--db", str(db))          # the lock gone: the same command runs
    assert r.returncode == 0, r.stderr
