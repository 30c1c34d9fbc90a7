"""`stimscript history` and `stimscript note` on a temporary records database filled by real loopback runs."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stimscript.cli import cli
from stimscript.runtime.records import RecordStore

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Three real runs on the loopback emulator: two for patient P-1, one for P-2 (via $STIMSCRIPT_DB)."""
    path = tmp_path_factory.mktemp("records") / "records.sqlite"
    r1 = invoke("run", TKA, "--fast", "--db", str(path), "--patient", "P-1", "--set", "intensity=45mA")
    assert r1.exit_code == 0, r1.output
    r2 = invoke("run", TKA, "--fast", "--patient", "P-2", "--session", "20", env={"STIMSCRIPT_DB": str(path)})
    assert r2.exit_code == 0, r2.output
    r3 = invoke("run", TKA, "--fast", "--db", str(path), "--patient", "P-1")
    assert r3.exit_code == 0, r3.output
    assert "record       #3 in" in r3.output
    return str(path)


def test_run_stores_the_patient(db):
    with RecordStore(db) as store:
        recs = store.list(all=True)
    assert [(r.id, r.patient_id, r.session, r.week) for r in recs] == [(1, "P-1", 1, 1), (2, "P-2", 20, 2),
                                                                        (3, "P-1", 2, 1)]
    assert recs[0].params == {"intensity": "45 mA"} and recs[0].peak_ua == {1: 45_000}


@pytest.fixture(scope="module")
def noted(db):
    """The notes every later test sees (added once per test process, whatever the order tests run in)."""
    return [invoke("note", "1", "--rpe", "5", "--text", "Strong visible contraction", "--db", db),
            invoke("note", "1", "--adverse", "skin redness under the distal electrode", "--db", db),
            invoke("note", "2", "--rpe", "13", "--scale", "borg20", env={"STIMSCRIPT_DB": db}),
            invoke("note", "3", "--rpe", "4.5", "--db", db),          # CR10 allows decimals
            invoke("note", "3", "--text", "knee at 60 degrees", "--db", db)]


def test_note_rpe_text_and_adverse_event_show_in_history(db, noted):
    res = noted[0]
    assert res.exit_code == 0, res.output
    assert "session record #1" in res.output and "added RPE 5 (CR10): Strong visible contraction" in res.output
    res = noted[1]
    assert res.exit_code == 0 and "ADVERSE EVENT: skin redness" in res.output
    res = noted[2]
    assert res.exit_code == 0 and "RPE 13 (Borg 6-20)" in res.output
    res = noted[3]
    assert res.exit_code == 0 and "RPE 4.5 (CR10)" in res.output
    assert noted[4].exit_code == 0

    with RecordStore(db) as store:
        kinds = [(n.kind, n.rpe_scale, n.rpe_value, n.patient_id) for n in store.get(1).notes]
    assert kinds == [("rpe", "cr10", 5.0, "P-1"), ("adverse_event", None, None, "P-1")]

    res = invoke("history", "--all", "--db", db)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].split()[:3] == ["id", "started", "title"] and len(lines) == 4
    assert "RPE 5/10" in lines[1] and "1 ADVERSE EVENT" in lines[1] and "P-1" in lines[1]
    assert "RPE 13 (6-20)" in lines[2] and "20 (wk 2)" in lines[2]
    assert "RPE 4.5/10, 1 note" in lines[3]

    res = invoke("history", "--all", "--csv", "--db", db)
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["notes"] == ("RPE 5 (CR10): Strong visible contraction | "
                                "ADVERSE EVENT: skin redness under the distal electrode")
    assert (rows[0]["rpe"], rows[0]["rpe_scale"], rows[0]["adverse_events"]) == ("5", "cr10", "1")
    assert (rows[1]["rpe"], rows[1]["rpe_scale"], rows[1]["week"]) == ("13", "borg20", "2")
    assert rows[2]["notes"] == "RPE 4.5 (CR10) | knee at 60 degrees"
    assert rows[0]["peak_mA"] == "45" and rows[0]["delivered"] == "11235" and rows[0]["patient_id"] == "P-1"


@pytest.mark.parametrize("args, message", [
    (["--rpe", "11"], "outside the CR10 scale"),
    (["--rpe", "-1"], "outside the CR10 scale"),
    (["--rpe", "5", "--scale", "borg20"], "outside the Borg scale"),
    (["--rpe", "21", "--scale", "borg20"], "outside the Borg scale"),
    (["--rpe", "12.5", "--scale", "borg20"], "whole numbers"),
    (["--rpe", "hard"], "expects a number"),
    (["--rpe", "nan"], "expects a number"),
    ([], "nothing to add"),
    (["--adverse", " "], "description"),
])
def test_note_validation_exit_1(db, args, message):
    res = invoke("note", "1", *args, "--db", db)
    assert res.exit_code == 1 and message in res.output, res.output
    assert "Traceback" not in res.output


def test_note_unknown_session_is_an_error(db):
    res = invoke("note", "99", "--rpe", "3", "--db", db)
    assert res.exit_code == 1 and "no session record #99" in res.output


def test_note_scale_choice_is_checked_by_the_command_line(db):
    res = CliRunner().invoke(cli, ["note", "1", "--rpe", "3", "--scale", "vas", "--db", db])
    assert res.exit_code == 2 and "vas" in res.output


def test_history_patient_filter_and_limit(db):
    res = invoke("history", "--all", "--patient", "P-1", "--db", db)
    lines = res.output.strip().splitlines()
    assert len(lines) == 3 and all("P-1" in line for line in lines[1:])
    res = invoke("history", "--all", "--patient", "P-9", "--db", db)
    assert res.exit_code == 0 and "no treatment records for patient P-9" in res.output
    res = invoke("history", "--all", "-n", "1", "--csv", "--db", db)
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["id"] for r in rows] == ["3"]
    res = invoke("history", "--all", "--patient", "P-1", "--csv", "--db", db)
    assert [r["id"] for r in csv.DictReader(io.StringIO(res.output))] == ["1", "3"]


def test_history_detail_view(db, noted):
    invoke("note", "2", "--text", "tolerated well", "--db", db)
    res = invoke("history", "--id", "2", "--db", db)
    assert res.exit_code == 0, res.output
    out = res.output
    for part in ("Session record #2: Quadriceps NMES after total knee arthroplasty", "20 (week 2)", "P-2",
                 "completed", "intensity = 40 mA", "examples/tka_quadriceps.stim", "per channel", "11235",
                 "notes", "RPE 13 (Borg 6-20)", "tolerated well", f"database: {db}"):
        assert part in out, (part, out)
    warning_line = next(line for line in out.splitlines() if line.startswith("warning"))
    assert "none" in warning_line
    res = invoke("history", "42", "--db", db)
    assert res.exit_code == 1 and "no session record #42" in res.output


def test_history_detail_lists_warnings_and_stopped_runs(tmp_path):
    """A protocol with a checker warning: the warning is stored and shown in the detail view."""
    src = Path(TKA).read_text().replace("ramp up 3 s", "ramp up 0 s").replace("ramp down 0 s", "ramp down 0 s")
    f = tmp_path / "noramp.stim"
    f.write_text(src)
    db = str(tmp_path / "w.sqlite")
    res = invoke("run", str(f), "--fast", "--db", db)
    assert res.exit_code == 0, res.output
    with RecordStore(db) as store:
        warnings = store.get(1).warnings
    if not warnings:
        pytest.skip("this protocol change raises no checker warning in this build")
    assert "warning" in res.output and warnings[0].split(":")[0] in res.output
    out = invoke("history", "1", "--db", db).output
    assert warnings[0][:40] in " ".join(out.split())


def test_history_and_note_in_a_real_process(db):
    env = dict(os.environ, STIMSCRIPT_DB=db)
    proc = subprocess.run([sys.executable, "-m", "stimscript.cli", "history", "--all"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "Quadriceps" in proc.stdout and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "stimscript.cli", "note", "1", "--rpe", "12"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 1 and "outside the CR10 scale" in proc.stderr and "Traceback" not in proc.stderr


def test_history_in_a_narrow_terminal_keeps_id_patient_and_notes(db, noted, monkeypatch):
    from rich.console import Console

    import stimscript.commands.history as h

    con = Console(width=80, record=True, file=io.StringIO(), force_terminal=True, color_system=None)
    monkeypatch.setattr(h, "_console", lambda: con)
    assert invoke("history", "--all", "--db", db).exit_code == 0
    out = con.export_text()
    assert "#1  " in out and "P-1" in out and "RPE 5/10" in out and "1 ADVERSE EVENT" in out
    assert max(len(line) for line in out.splitlines()) <= 80
