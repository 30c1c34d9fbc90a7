"""stimscript export: delivered pulses (npz/csv), BIDS events and NWB from real records of loopback runs.

Every export is compared with what the emulated device delivered (``dev.emulator.output``) and with the
schedule, computed here independently of the exporters.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import stimscript
from stimscript.runtime import RecordStore, SessionController

PROTO = """stimscript 1
protocol "Export test" { plan 3 sessions per week, 4 weeks }
param intensity = 40 mA in 10 mA .. 60 mA "tolerated"
electrode prox 5 cm x 9 cm
electrode dist 5 cm x 9 cm
channel quad 1 {
    site vastus_medialis right
    electrodes prox -> dist
    pulse biphasic 300 us gap 50 us
    frequency 40 Hz
    amplitude intensity
}
channel tib 3 {
    site tibialis_anterior left
    electrodes prox -> dist
    pulse asymmetric 200 us ratio 4
    frequency 25 Hz
    amplitude 50% intensity
}
cycle contraction { ramp up 1 s; hold 3 s; ramp down 1 s; rest 5 s }
session {
    repeat 4 { quad: contraction; tib: contraction after 2 s }
    pause 5 s
    for 20 s { quad: contraction }
}
"""

COLS = ["t_us", "channel", "amplitude_ua", "shape"]


@pytest.fixture
def proto_file(tmp_path):
    p = tmp_path / "export_test.stim"
    p.write_text(PROTO, encoding="utf-8")
    return p


def run_recorded(proto_file, db, controls=(), session=2, params=None):
    proto = stimscript.load(proto_file)
    sched = proto.compile(session=session, params=params or {"intensity": "45 mA"})
    ctl = SessionController()
    for t, action, *args in controls:
        ctl.at(t, action, *args)
    dev = stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(sched, device=dev, controller=ctl, db=db, param_ranges={"intensity": (0, 60_000)})
    out = dev.emulator.output.copy()
    dev.close()
    return sched, rec, out


CONTROLS = [(3_000_000, "intensity_down"), (7_100_000, "pause"), (9_000_000, "resume"),
            (30_000_000, "set_intensity", 50_000), (52_500_000, "pause"), (53_000_000, "resume")]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_export_npz_and_csv_equal_the_emulator_output(proto_file, tmp_path):
    db = tmp_path / "r.sqlite"
    sched, rec, out = run_recorded(proto_file, db, CONTROLS)
    assert rec.end_reason == "completed"
    r = cli("export", str(rec.id), "--db", str(db), "-o", str(tmp_path / "d.npz"))
    assert r.returncode == 0, r.stderr
    assert "rebuilt and verified" in r.stdout
    z = np.load(tmp_path / "d.npz")
    got = z["pulses"]
    assert all(np.array_equal(got[c], out[c]) for c in COLS)
    meta = json.loads(str(z["metadata"]))
    assert meta["session"] == 2 and meta["params"]["intensity"].replace(" ", "") == "45mA"
    assert len(meta["pauses_us"]) == 2
    r = cli("export", str(rec.id), "--db", str(db), "-o", str(tmp_path / "d.csv"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "d.csv", encoding="utf-8")))
    assert len(rows) == len(out)
    assert [int(rows[i]["t_us"]) for i in (0, -1)] == [int(out["t_us"][0]), int(out["t_us"][-1])]
    assert sum(int(r["amplitude_ua"]) for r in rows) == int(out["amplitude_ua"].astype(np.int64).sum())


def test_export_refuses_a_record_whose_counts_do_not_match(proto_file, tmp_path):
    db = tmp_path / "r.sqlite"
    sched, rec, out = run_recorded(proto_file, db)
    with RecordStore(db) as store:
        store.conn.execute("UPDATE sessions SET delivered=? WHERE id=?",
                           (json.dumps({"1": rec.delivered[1] + 1, "3": rec.delivered[3]}), rec.id))
    target = tmp_path / "d.npz"
    r = cli("export", str(rec.id), "--db", str(db), "-o", str(target))
    assert r.returncode == 1
    assert "cannot be rebuilt exactly" in r.stderr and "channel 1" in r.stderr
    assert "Traceback" not in r.stderr
    assert not target.exists()


def test_export_errors_are_messages(proto_file, tmp_path):
    db = tmp_path / "r.sqlite"
    run_recorded(proto_file, db)
    r = cli("export", "99", "--db", str(db), "-o", str(tmp_path / "x.npz"))
    assert r.returncode == 1 and "no session record #99" in r.stderr and "Traceback" not in r.stderr
    r = cli("export", "1", "--db", str(db))
    assert r.returncode == 2 and "nothing to write" in r.stderr
    r = cli("export", "1", "--db", str(db), "--bids-events", str(tmp_path / "events.tsv"))
    assert r.returncode == 2 and "_events.tsv" in r.stderr
    r = cli("export", "1", "--db", str(db), "--bids-events", str(tmp_path / "a_events.tsv"), "--reference", "ttl")
    assert r.returncode == 1 and "sync-out" in r.stderr


def expected_contractions(out, sched):
    """Independent oracle: split each channel's delivered pulses where consecutive onsets are further apart
    than 1.5 periods of that channel (on-phases are separated by rests; a pause drops at least the slot at
    its resume, whose ramp starts at 0)."""
    rows = []
    shape_us = [s.duration_us for s in sched.shapes]
    for ch in np.unique(out["channel"]):
        p = out[out["channel"] == ch]
        period = min(tr.period_num / tr.period_den for tr in sched.trains if tr.channel == ch)
        cut = np.flatnonzero(np.diff(p["t_us"]) > 1.5 * period) + 1
        for part in np.split(p, cut):
            rows.append((int(part["t_us"][0]), int(part["t_us"][-1]) + shape_us[int(part["shape"][-1])], int(ch),
                         len(part), int(np.abs(part["amplitude_ua"]).max())))
    return sorted(rows)


def test_bids_events_rows_and_sidecar(proto_file, tmp_path):
    db = tmp_path / "r.sqlite"
    sched, rec, out = run_recorded(proto_file, db, CONTROLS)
    tsv = tmp_path / "sub-01_ses-02_task-nmes_events.tsv"
    r = cli("export", str(rec.id), "--db", str(db), "--bids-events", str(tsv))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tsv, encoding="utf-8"), delimiter="\t"))
    con = [r for r in rows if r["trial_type"] == "nmes_contraction"]
    got = sorted((round(float(r["onset"]) * 1e6), round((float(r["onset"]) + float(r["duration"])) * 1e6),
                  int(r["electrical_stimulation_output"]), int(r["electrical_stimulation_n_pulses"]),
                  round(float(r["electrical_stimulation_current"]) * 1e6)) for r in con)
    assert got == expected_contractions(out, sched)
    pauses = [r for r in rows if r["trial_type"] == "nmes_pause"]
    assert len(pauses) == 2 and all(float(p["duration"]) > 0 for p in pauses)
    quad = next(r for r in con if r["stim_channel"] == "quad")
    assert quad["electrical_stimulation_type"] == "biphasic"
    assert quad["electrical_stimulation_site"] == "prox-dist"
    assert quad["electrical_stimulation_muscle"] == "vastus_medialis right"
    assert float(quad["electrical_stimulation_frequency"]) == 40
    assert float(quad["electrical_stimulation_pulse_width"]) == pytest.approx(300e-6)
    tib = next(r for r in con if r["stim_channel"] == "tib")
    assert tib["electrical_stimulation_type"] == "asymmetric"
    assert [float(r["onset"]) for r in rows] == sorted(float(r["onset"]) for r in rows)
    side = json.loads((tmp_path / "sub-01_ses-02_task-nmes_events.json").read_text(encoding="utf-8"))
    header = open(tsv, encoding="utf-8").readline().rstrip("\n").split("\t")
    for col in header:                                   # every column described
        assert col in side and (side[col].get("Description") or side[col].get("Levels"))
    assert side["electrical_stimulation_current"]["Units"] == "A"
    assert "session start" in side["onset"]["Description"]
    assert set(side["trial_type"]["Levels"]) >= {r["trial_type"] for r in rows}
    # with --pulses: one row per delivered pulse as well, at its delivered amplitude
    r = cli("export", str(rec.id), "--db", str(db), "--bids-events", str(tsv), "--pulses")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tsv, encoding="utf-8"), delimiter="\t"))
    pulses = [r for r in rows if r["trial_type"] == "nmes_pulse"]
    assert len(pulses) == len(out)
    assert sorted(round(float(r["onset"]) * 1e6) for r in pulses) == sorted(out["t_us"].tolist())
    assert sum(round(float(r["electrical_stimulation_current"]) * 1e6) for r in pulses) == \
        int(np.abs(out["amplitude_ua"].astype(np.int64)).sum())


def test_nwb_file_read_back_with_pynwb(proto_file, tmp_path):
    pynwb = pytest.importorskip("pynwb", reason="the nwb extra (pip install 'stimscript[nwb]') is not installed")
    db = tmp_path / "r.sqlite"
    sched, rec, out = run_recorded(proto_file, db, CONTROLS)
    path = tmp_path / "s.nwb"
    r = cli("export", str(rec.id), "--db", str(db), "--nwb", str(path))
    assert r.returncode == 0, r.stderr
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        ev = nwb.get_events_table("delivered_pulses")
        df = ev.to_dataframe()
        assert len(df) == len(out)
        assert np.array_equal(np.round(df["timestamp"].to_numpy() * 1e6).astype(np.int64), out["t_us"])
        assert np.array_equal(df["channel"].to_numpy(), out["channel"])
        assert np.array_equal(np.round(df["amplitude"].to_numpy() * 1e6).astype(np.int64), out["amplitude_ua"])
        assert np.array_equal(df["shape"].to_numpy(), out["shape"])
        # before the first pause the delivered times are the schedule's, shifted by nothing
        first = df["schedule_time"].to_numpy() == df["timestamp"].to_numpy()
        assert first[:10].all() and not first[-10:].any()
        con = nwb.intervals["contractions"].to_dataframe()
        got = sorted(zip(np.round(con["start_time"] * 1e6).astype(int), np.round(con["stop_time"] * 1e6).astype(int),
                         con["channel"], con["n_pulses"], np.round(con["peak_amplitude"] * 1e6).astype(int)))
        assert got == expected_contractions(out, sched)
        assert len(nwb.intervals["stimulation_pauses"]) == 2
        assert nwb.stimulus_notes == PROTO
        assert nwb.devices["stimulator"].serial_number == rec.device_serial
        assert "emulator" in nwb.devices["stimulator"].description
        chans = nwb.processing["stimulation"]["stimulation_channels"].to_dataframe()
        assert list(chans["output"]) == [1, 3]
        assert list(chans["site"]) == ["vastus_medialis", "tibialis_anterior"]
        assert json.loads(chans["electrode_areas_cm2"].iloc[0]) == [45.0, 45.0]
        shapes = nwb.processing["stimulation"]["pulse_shapes"].to_dataframe()
        assert json.loads(shapes["phases"].iloc[0]) == [[d / 1e6, a] for d, a in sched.shapes[0].phases]


@pytest.mark.parametrize("mode,controls,ramps", [
    ("contraction", CONTROLS, {}),
    ("pulse", [(5_100_000, "pause"), (7_000_000, "resume"), (16_000_000, "stop")], {"pause_ramp_ms": 300}),
    ("pulse", [(1_025_000, "pause"), (2_000_000, "resume"), (6_500_000, "estop")], {"pause_ramp_ms": 0}),
    ("start", [], {}),
])
def test_sync_out_edges_are_exported_as_the_device_raised_them(proto_file, tmp_path, mode, controls, ramps):
    from stimscript.research.syncout import SyncOut

    db = tmp_path / "r.sqlite"
    sched = stimscript.load(proto_file).compile(session=2, params={"intensity": "45 mA"})
    ctl = SessionController(**ramps)
    for t, action, *args in controls:
        ctl.at(t, action, *args)
    dev = stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(sched, device=dev, controller=ctl, db=db, observers=[SyncOut(mode, width_us=2_000)],
                         param_ranges={"intensity": (0, 60_000)})
    edges = dev.emulator.sync_edges.copy()
    dev.close()
    assert len(edges)
    out = tmp_path / "d.npz"
    tsv = tmp_path / "sub-01_task-nmes_events.tsv"
    r = cli("export", str(rec.id), "--db", str(db), "-o", str(out), "--bids-events", str(tsv), "--reference", "ttl")
    assert r.returncode == 0, r.stderr
    z = np.load(out)
    assert z["sync_edges"].tolist() == edges["t_us"].tolist()           # every edge, as the device raised it
    rows = list(csv.DictReader(tsv.open(encoding="utf-8"), delimiter="\t"))
    onsets = [float(x["onset"]) for x in rows if x["trial_type"] == "nmes_sync_edge"]
    first = int(edges["t_us"][0])
    assert onsets == pytest.approx([(int(t) - first) / 1e6 for t in edges["t_us"]], abs=1e-6)
    assert {x["duration"] for x in rows if x["trial_type"] == "nmes_sync_edge"} == {"0.002"}
    # a record whose edges were tampered with is an error, not an export
    with RecordStore(db) as store:
        stored = store.get(rec.id)
    stored.device_log["extra"]["sync_out"]["raised"] += 1
    from stimscript.research.delivery import from_record
    from stimscript.research.rebuild import RebuildMismatch

    with pytest.raises(RebuildMismatch, match="sync-out edges"):
        from_record(stored)
