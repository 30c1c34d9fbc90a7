"""Records schema version 2: migration of a database written by the previous release, device and practice
marks, the event log, void records, plan sessions per patient, filters and the read API."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import stimscript
from stimscript.cli import cli
from stimscript.runtime import SessionController
from stimscript.runtime.records import SCHEMA_VERSION, RecordError, RecordStore, SessionRecord

ROOT = Path(__file__).resolve().parents[1]
TKA = ROOT / "examples" / "tka_quadriceps.stim"
V1 = Path(__file__).parent / "data" / "records_v1.sqlite"   # written by stimscript before schema version 2


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _rows(path):
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return ([dict(r) for r in con.execute("SELECT * FROM sessions ORDER BY id")],
                [dict(r) for r in con.execute("SELECT * FROM notes ORDER BY id")])
    finally:
        con.close()


def test_a_version_1_database_is_upgraded_in_place_and_nothing_is_lost(tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copy(V1, db)
    old_sessions, old_notes = _rows(db)
    assert len(old_sessions) == 4 and len(old_notes) == 2 and "emulated" not in old_sessions[0]
    with RecordStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        recs = store.list(all=True)
        assert store.list() == []          # every old run was on the loopback emulator: practice
    new_sessions, new_notes = _rows(db)
    # every old column of every row is unchanged; new columns are filled
    for old, new in zip(old_sessions, new_sessions, strict=True):
        assert {k: new[k] for k in old} == old
        assert new["emulated"] == 1 and new["voided_at"] is None and new["source_text"] == ""
    assert new_notes == old_notes
    assert [(r.id, r.patient_id, r.session, r.end_reason) for r in recs] == [
        (1, "P-7", 1, "completed"), (2, "P-7", 2, "completed"), (3, None, 1, "completed"), (4, "P-8", 1, "stopped")]
    assert recs[0].delivered == {1: 11235} and recs[0].peak_ua == {1: 45_000}
    assert recs[0].intensity_ua == {"intensity": 45_000} and recs[3].intensity_ua == {"intensity": 41_000}
    assert [n.kind for n in recs[0].notes] == ["rpe"] and recs[0].notes[0].text == "strong contraction"
    assert recs[0].practice and recs[0].events == [] and recs[0].stim_us is None
    # opening again is a no-op; the history shows the old records with --all
    with RecordStore(db) as store:
        assert len(store.list(all=True)) == 4
    out = invoke("history", "--all", "--db", db).output
    assert "P-7" in out and "RPE 6/10" in out and "1 ADVERSE EVENT" in out
    detail = invoke("history", "1", "--db", db).output
    assert "not kept (recorded before it was)" in detail and "recorded before event logs existed" in detail
    # a new run goes into the upgraded database next to the old ones
    sched = stimscript.load(TKA).compile(params={"intensity": "40 mA"})
    rec = stimscript.run(sched, db=db, patient_id="P-7")
    assert rec.id == 5


def test_a_newer_database_is_refused_with_a_clear_error(tmp_path):
    db = tmp_path / "new.sqlite"
    with RecordStore(db) as store:
        store.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(RecordError, match="schema version 99, newer than"):
        RecordStore(db)
    res = invoke("history", "--db", db)
    assert res.exit_code == 1 and "upgrade stimscript" in res.output and "Traceback" not in res.output


def test_record_keeps_device_source_text_and_reads_back(tmp_path):
    db = tmp_path / "r.sqlite"
    proto = stimscript.load(TKA)
    sched = proto.compile(session=3, params={"intensity": "45 mA"})
    rec = stimscript.run(sched, db=db, patient_id="P-1", operator_id="PT-22")
    with RecordStore(db) as store:
        back = store.get(rec.id)
    assert back.source_text == TKA.read_text() and back.sha256 == proto.sha256
    assert back.params == {"intensity": "45 mA"} and back.session == 3
    assert (back.device, back.device_model, back.device_serial, back.emulated) == (
        "loopback", "loopback", "LOOPBACK-0001", True)
    assert back.operator_id == "PT-22" and back.practice
    assert back.epoch_us == rec.epoch_us and back.delivered == rec.delivered
    kinds = [e.kind for e in back.events]
    assert kinds[0] == "start" and kinds[-1] == "end" and back.events[-1].detail == "completed"
    assert back.events[0].device_us == back.epoch_us and back.events[0].session_us == 0
    # stimulation + paused = the whole session time for an uninterrupted run
    assert back.stim_us == sched.duration_us and back.paused_us == 0
    # the record rebuilds the schedule it ran
    again = stimscript.loads(back.source_text).compile(session=back.session, params=back.params)
    assert again.count() == back.total_delivered


def test_pause_resume_stop_events_with_device_times_and_paused_time(tmp_path):
    db = tmp_path / "r.sqlite"
    sched = stimscript.load(TKA).compile(params={"intensity": "40 mA"})
    ctl = SessionController(pause_ramp_ms=500)
    ctl.at(10_000_000, "pause")
    ctl.at(25_000_000, "resume")
    ctl.at(40_000_000, "stop")
    rec = stimscript.run(sched, db=db, controller=ctl)
    with RecordStore(db) as store:
        back = store.get(rec.id)
    ev = {e.kind: e for e in back.events}
    assert [e.kind for e in back.events] == ["start", "pause", "resume", "stop", "end"]
    assert ev["pause"].session_us == 10_500_000            # the pause ramp ended: output at 0
    assert ev["resume"].session_us == 25_000_000 and ev["resume"].duration_us == 14_500_000
    assert ev["stop"].session_us == 40_000_000 and ev["end"].detail == "stopped"
    assert back.paused_us == 14_500_000
    # stimulation time is schedule time reached; with the pause it adds up to the device time elapsed
    assert back.stim_us + back.paused_us == pytest.approx(ev["end"].session_us, abs=1_100_000)
    assert back.stim_us == rec.elapsed_us and 25_000_000 < back.stim_us < 27_000_000
    # nothing was delivered while paused (the emulator's output agrees with the log)
    assert back.end_reason == "stopped"


def test_emergency_stop_and_fault_are_logged(tmp_path):
    db = tmp_path / "r.sqlite"
    sched = stimscript.load(TKA).compile()
    ctl = SessionController()
    ctl.at(5_000_000, "estop")
    rec = stimscript.run(sched, db=db, controller=ctl)
    with RecordStore(db) as store:
        kinds = [e.kind for e in store.get(rec.id).events]
    assert kinds == ["start", "emergency_stop", "end"]
    from stimscript.runtime.testing import open_test_device

    dev = open_test_device("loopback")
    t = dev.emulator.time_us() + 7_000_000
    dev.emulator.inject_electrode_fault(1, t)
    rec = stimscript.run(sched, device=dev, db=db)
    dev.close()
    with RecordStore(db) as store:
        back = store.get(rec.id)
    assert back.end_reason == "fault"
    fault = next(e for e in back.events if e.kind == "fault")
    assert fault.channel == 1 and "electrode" in fault.detail
    assert back.events[-1].kind == "end" and back.events[-1].detail.startswith("fault")


def test_void_keeps_the_record_and_hides_it(tmp_path):
    db = tmp_path / "r.sqlite"
    sched = stimscript.load(TKA).compile()
    rec = stimscript.run(sched, db=db, patient_id="P-1")
    res = invoke("void", rec.id, "--reason", "ran under the wrong patient id", "--operator", "PT-22", "--db", db)
    assert res.exit_code == 0, res.output
    assert f"session record #{rec.id}" in res.output and "is now void: ran under the wrong patient id" in res.output
    with RecordStore(db) as store:
        back = store.get(rec.id)              # never deleted
        assert back.void and back.void_reason == "ran under the wrong patient id" and back.voided_by == "PT-22"
        assert store.list(include_practice=True) == []
        assert [r.id for r in store.list(all=True)] == [rec.id]
    res = invoke("void", rec.id, "--reason", "again", "--db", db)
    assert res.exit_code == 1 and "already void" in res.output
    res = invoke("void", rec.id, "--reason", "  ", "--db", db)
    assert res.exit_code == 1
    res = invoke("void", 99, "--reason", "x", "--db", db)
    assert res.exit_code == 1 and "no session record #99" in res.output
    res = invoke("void", rec.id, "--db", db)
    assert res.exit_code == 2 and "--reason" in res.output
    out = invoke("history", "--all", "--db", db).output
    assert "VOID" in out
    assert "VOID (ran under the wrong patient id)" in invoke("history", rec.id, "--db", db).output


def _treatment(store, **kw):
    """A treatment record (a hardware device) written through the store's write API."""
    rec = SessionRecord(device="usb", device_model="acme", device_serial="SN-1", emulated=False, **kw)
    store.begin(rec)
    rec.end_reason = kw.get("end_reason", "completed")
    store.finish(rec)
    return rec


def test_history_filters_patient_dates_device_and_plan_session(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    import time

    time.tzset()
    db = tmp_path / "r.sqlite"
    with RecordStore(db) as store:
        _treatment(store, title="A", patient_id="P-1", session=1, started_at="2026-11-01T10:00:00.000+00:00")
        _treatment(store, title="A", patient_id="P-1", session=2, started_at="2026-11-02T22:30:00.000+00:00")
        _treatment(store, title="A", patient_id="P-2", session=1, started_at="2026-11-03T08:00:00.000+00:00")
        rec = SessionRecord(title="A", patient_id="P-1", session=3, device="loopback", emulated=True,
                            started_at="2026-11-04T08:00:00.000+00:00")
        store.begin(rec)
        assert [r.id for r in store.list(patient_id="P-1")] == [1, 2]
        # 2026-11-02 22:30 UTC is 2026-11-02 23:30 in Berlin: on the 2nd, local time
        assert [r.id for r in store.list(since="2026-11-02", until="2026-11-02")] == [2]
        assert [r.id for r in store.list(since=dt.date(2026, 11, 3))] == [3]
        assert [r.id for r in store.list(device="SN-1")] == [1, 2, 3]
        assert [r.id for r in store.list(all=True, device="loopback")] == [4]
        with pytest.raises(RecordError, match="YYYY-MM-DD"):
            store.list(since="yesterday")
    out = invoke("history", "--patient", "P-1", "--since", "2026-11-02", "--db", db).output
    assert "2026-11-02 23:30 +01:00" in out and "P-1" in out and "2026-11-01" not in out
    assert "1 practice run (emulator) not shown" in out
    out = invoke("history", "--session", "1", "--csv", "--db", db).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["1", "3"] and rows[0]["started_at"] == "2026-11-01T11:00:00.000+01:00"
    assert rows[0]["practice"] == "no" and rows[0]["device_serial"] == "SN-1"
    res = invoke("history", "--since", "1st of May", "--db", db)
    assert res.exit_code == 1 and "YYYY-MM-DD" in res.output and "Traceback" not in res.output
    monkeypatch.delenv("TZ")
    time.tzset()


def test_run_with_a_patient_picks_the_next_session_of_that_protocol(tmp_path):
    db = tmp_path / "r.sqlite"
    first = invoke("run", TKA, "--fast", "--patient", "P-3", "--db", db)
    assert first.exit_code == 0, first.output
    assert "patient P-3: running session 1 of 84 — no completed session of this protocol" in first.output
    second = invoke("run", TKA, "--fast", "--patient", "P-3", "--db", db)
    assert "patient P-3: running session 2 of 84 — session 1 completed on" in second.output
    assert "(record #1)" in second.output
    # a stopped session is not "done": it is offered again, and the earlier attempt is mentioned
    with RecordStore(db) as store:
        rec = store.get(2)
        store.conn.execute("UPDATE sessions SET end_reason='stopped' WHERE id=2")
    third = invoke("run", TKA, "--fast", "--patient", "P-3", "--db", db)
    assert "running session 2 of 84" in third.output and "ended stopped (record #2)" in third.output
    # another patient, or another version of the file, starts at 1
    other = invoke("run", TKA, "--fast", "--patient", "P-4", "--db", db)
    assert "running session 1 of 84" in other.output
    changed = tmp_path / "tka.stim"
    changed.write_text(TKA.read_text().replace("rest 45 s", "rest 40 s"))
    res = invoke("run", changed, "--fast", "--patient", "P-3", "--db", db)
    assert "running session 1 of 84" in res.output
    # an explicit --session always wins
    res = invoke("run", TKA, "--fast", "--patient", "P-3", "--session", "7", "--db", db)
    assert "running session" not in res.output and "session 7" in res.output
    with RecordStore(db) as store:
        sessions = [(r.patient_id, r.session) for r in store.list(all=True)]
    assert sessions == [("P-3", 1), ("P-3", 2), ("P-3", 2), ("P-4", 1), ("P-3", 1), ("P-3", 7)]
    assert rec.session == 2


def test_run_after_the_last_session_of_the_plan_is_a_clear_error(tmp_path):
    db = tmp_path / "r.sqlite"
    src = tmp_path / "short.stim"
    src.write_text(TKA.read_text().replace("plan 2 sessions per day, 6 weeks", "plan 1 sessions per week, 1 weeks"))
    assert invoke("run", src, "--fast", "--patient", "P-5", "--db", db).exit_code == 0
    res = invoke("run", src, "--fast", "--patient", "P-5", "--db", db)
    assert res.exit_code == 1 and "has completed every session of the plan (1)" in res.output
    assert "--session N" in res.output and "Traceback" not in res.output


def test_event_log_as_csv(tmp_path):
    db = tmp_path / "r.sqlite"
    proto = stimscript.load(TKA)
    sched = proto.compile(params={"intensity": "40 mA"})
    ctl = SessionController(intensity_step_ua=1000, slew_ua_per_s=1_000_000)
    ctl.at(5_000_000, "intensity_up")
    ctl.at(8_000_000, "pause")
    ctl.at(9_000_000, "resume")
    ctl.at(12_000_000, "stop")
    rec = stimscript.run(sched, db=db, controller=ctl, param_ranges={"intensity": proto.safe_range("intensity")})
    out = invoke("history", rec.id, "--csv", "--db", db).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["kind"] for r in rows] == ["start", "intensity", "pause", "resume", "stop", "end"]
    up = rows[1]
    assert (up["channel"], up["channel_name"], up["old_mA"], up["new_mA"]) == ("1", "quad", "40", "41")
    assert int(up["session_us"]) - 5_000_000 < 20_000 and up["scale_ppm"] == "1025000"
    assert rows[3]["duration_us"] and int(rows[3]["duration_us"]) > 0
    assert rows[0]["host_time"][-6] in "+-"      # local time with its offset
    detail = invoke("history", "--id", rec.id, "--db", db).output
    assert "quad (ch 1) 40 mA → 41 mA" in detail and "resumed after 0:00 paused" in detail
    res = invoke("history", "3", "--id", "4", "--db", db)
    assert res.exit_code == 1 and "two record ids" in res.output


def test_write_api_appends_events_once_whatever_the_batching(tmp_path):
    """A writer may call update_progress any number of times: each event is stored exactly once."""
    db = tmp_path / "r.sqlite"
    with RecordStore(db) as store:
        rec = SessionRecord(title="t", epoch_us=1_000)
        rec.log("start", 1_000)
        store.begin(rec)
        store.update_progress(rec)
        rec.log("pause", 5_000)
        rec.log("resume", 9_000, duration_us=4_000)
        store.update_progress(rec)
        store.update_progress(rec)
        rec.log("end", 12_000, detail="completed")
        rec.end_reason = "completed"
        store.finish(rec)
        back = store.get(rec.id)
    assert [(e.kind, e.session_us) for e in back.events] == [("start", 0), ("pause", 4_000), ("resume", 8_000),
                                                              ("end", 11_000)]
    with pytest.raises(RecordError):
        rec.log("party", 0)
    assert json.loads(json.dumps([e.kind for e in back.events]))
