"""Session records: the SQLite store, notes, the history command, and a SIGKILLed host."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import stimscript
from stimscript.runtime.records import RecordError, RecordStore, SessionRecord, default_db_path
from stimscript.runtime.testing import nmes_schedule


def test_store_round_trip_wal_and_notes(tmp_path):
    db = tmp_path / "sub" / "r.sqlite"
    db.parent.mkdir()   # a directory named by the user is never created (test_records_edges.py)
    with RecordStore(db) as store:
        rec = SessionRecord(title="t", sha256="ab", params={"intensity": "45 mA"}, session=3, device="loopback",
                            warnings=["S009: density"], patient_id="P-1", duration_us=10)
        sid = store.begin(rec)
        back = store.get(sid)
        assert back.end_reason == "interrupted" and back.ended_at is None
        rec.delivered, rec.peak_ua, rec.underruns = {1: 5, 2: 7}, {1: 100, 2: 200}, 1
        store.update_progress(rec)
        assert store.get(sid).delivered == {1: 5, 2: 7}
        rec.end_reason = "completed"
        store.finish(rec)
        n1 = store.add_note(sid, "felt fine")
        n2 = store.add_note(sid, rpe=7, rpe_scale="cr10")
        n3 = store.add_note(sid, "skin redness", kind="adverse_event")
        n4 = store.add_note(sid, rpe=13, rpe_scale="borg20")
        back = store.get(sid)
        assert (back.end_reason, back.delivered, back.peak_ua, back.underruns, back.session, back.patient_id) == \
            ("completed", {1: 5, 2: 7}, {1: 100, 2: 200}, 1, 3, "P-1")
        assert back.params == {"intensity": "45 mA"} and back.warnings == ["S009: density"] and back.ended_at
        assert [n.kind for n in back.notes] == ["note", "rpe", "adverse_event", "rpe"]
        assert back.notes[1].rpe_value == 7 and back.notes[3].rpe_scale == "borg20"
        with pytest.raises(RecordError):
            store.add_note(sid, rpe=11, rpe_scale="cr10")
        with pytest.raises(RecordError):
            store.add_note(sid, rpe=5, rpe_scale="borg20")
        with pytest.raises(RecordError):
            store.add_note(sid, kind="diary")
        with pytest.raises(RecordError):
            store.get(999)
        assert [r.id for r in store.list(all=True)] == [sid] and store.list(patient_id="nobody") == []
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_default_path_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("STIMSCRIPT_DB", str(tmp_path / "env.sqlite"))
    assert default_db_path() == tmp_path / "env.sqlite"
    s = nmes_schedule(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0)
    rec = stimscript.run(s)
    assert rec.db_path == str(tmp_path / "env.sqlite")
    monkeypatch.delenv("STIMSCRIPT_DB")
    assert default_db_path().name == "records.sqlite" and "stimscript" in str(default_db_path())


def test_run_records_and_history_command(tmp_path):
    db = tmp_path / "h.sqlite"
    s = nmes_schedule(channels=2, seconds=3, on_s=3, off_s=0, ramp_s=0, title="Quad NMES")
    r1 = stimscript.run(s, db=db)
    r2 = stimscript.run(s, db=db, record=True, patient_id="P-7")
    assert stimscript.run(s, db=db, record=False).id is None
    from stimscript.cli import cli

    res = CliRunner().invoke(cli, ["history", "--db", str(db)])   # loopback runs are practice: hidden
    assert res.exit_code == 0 and "no treatment records; 2 practice runs (emulator) not shown" in res.output
    res = CliRunner().invoke(cli, ["history", "--all", "--db", str(db)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].split()[:3] == ["id", "started", "title"] and len(lines) == 3
    assert "practice" in lines[1] and "practice" in lines[2]
    assert "Quad NMES" in lines[1] and "completed" in lines[2] and "P-7" in lines[2]
    res = CliRunner().invoke(cli, ["history", "--all", "--csv", "--db", str(db)])
    rows = res.output.strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("id,started_at")
    assert str(sum(r1.delivered.values())) in rows[1] and json.dumps(r2.delivered).replace('"', '""') in rows[2]
    res = CliRunner().invoke(cli, ["history", "--db", str(tmp_path / "empty.sqlite")])
    assert res.exit_code == 0 and "no treatment records" in res.output


def test_devices_command_lists_loopback_profile():
    from stimscript.cli import cli

    res = CliRunner().invoke(cli, ["devices"])
    assert res.exit_code == 0, res.output
    assert "loopback" in res.output and "usb" in res.output and "8 channels" in res.output
    assert "watchdog 500 ms" in res.output


def test_run_command_bad_device_is_a_clean_error(tmp_path):
    from stimscript.cli import cli

    f = tmp_path / "x.stim"
    f.write_text("stimscript 1\n")
    res = CliRunner().invoke(cli, ["run", str(f), "--device", "loopbak", "--db", str(tmp_path / "d.sqlite")])
    assert res.exit_code == 1
    assert "did you mean 'loopback'" in res.output and "Traceback" not in res.output


def _poll_db(db: Path, timeout_s: float, pred):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                row = con.execute("SELECT end_reason, delivered FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
                con.close()
                if row is not None and pred(row):
                    return row
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the child's record")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkilled_host_leaves_an_interrupted_record(tmp_path):
    db = tmp_path / "kill.sqlite"
    child = Path(__file__).with_name("_kill_child.py")
    env = dict(os.environ)
    env.pop("STIMSCRIPT_DB", None)
    proc = subprocess.Popen([sys.executable, str(child), str(db), "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        # wait until the child has recorded some acknowledged pulses
        row = _poll_db(db, 30, lambda r: sum(json.loads(r[1]).values()) >= 40)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with RecordStore(db) as store:
        rec = store.list(all=True)[-1]
    assert rec.end_reason == "interrupted" and rec.ended_at is None
    total = sum(rec.delivered.values())
    assert total >= sum(json.loads(row[1]).values()) >= 40
    assert total < 4 * 50 * 30  # far from the whole session
    assert set(rec.delivered) == {1, 2, 3, 4} and rec.elapsed_us > 0


def test_live_intensity_changes_are_kept_in_the_record(tmp_path):
    """What the clinician dialled in during the session is stored, not only the compiled value."""
    from stimscript.runtime import SessionController

    proto = stimscript.load(Path(__file__).parent.parent / "examples" / "tka_quadriceps.stim")
    sched = proto.compile(session=1, params={"intensity": "40 mA"})
    ctl = SessionController(intensity_step_ua=1000)
    for k in range(3):
        ctl.at(65_000_000 + k, "intensity_up")
    db = tmp_path / "r.sqlite"
    rec = stimscript.run(sched, device="loopback", controller=ctl, db=db,
                         param_ranges={"intensity": proto.safe_range("intensity")})
    assert rec.end_reason == "completed" and rec.intensity_ua == {"intensity": 43_000}
    with RecordStore(db) as store:
        stored = store.get(rec.id)
    assert stored.intensity_ua == {"intensity": 43_000} and stored.peak_ua == {1: 43_000}


def test_old_database_gains_the_intensity_column(tmp_path):
    db = tmp_path / "old.sqlite"
    with RecordStore(db) as store:
        store.conn.execute("ALTER TABLE sessions DROP COLUMN intensity_ua")
    with RecordStore(db) as store:
        cols = {r["name"] for r in store.conn.execute("PRAGMA table_info(sessions)")}
    assert "intensity_ua" in cols
