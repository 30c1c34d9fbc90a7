"""Lab Streaming Layer: the marker stream of a real-time loopback session, resolved on this machine only.

Every marker's timestamp is checked against the truth: the loopback device's clock is the host's monotonic
clock plus a fixed offset the emulator knows (its boot time), and LSL's local_clock is the same monotonic
clock (checked here); the expected device times come from the pulses the emulator delivered, grouped into
contractions here, not by the code under test.
"""
import json
import os
import time
import uuid

import numpy as np
import pytest

_CFG_DIR = None


def _local_only_config(tmp_dir) -> str:
    """liblsl configuration: discovery on this machine only, a session id no other test run shares."""
    path = os.path.join(tmp_dir, "lsl_api.cfg")
    with open(path, "w") as fh:
        fh.write("[ports]\nIPv6 = disable\n\n[multicast]\nResolveScope = machine\n\n"
                 f"[lab]\nSessionID = stimscript-test-{uuid.uuid4().hex}\n")
    return path


if "LSLAPICFG" not in os.environ:   # must be set before liblsl loads
    import atexit
    import shutil
    import tempfile

    _CFG_DIR = tempfile.mkdtemp(prefix="stimscript-lsl-")
    atexit.register(shutil.rmtree, _CFG_DIR, True)   # after liblsl, which reads it when it loads
    os.environ["LSLAPICFG"] = _local_only_config(_CFG_DIR)

pylsl = pytest.importorskip("pylsl", reason="Lab Streaming Layer tests need the optional extra stimscript[lsl]")

import stimscript  # noqa: E402
from stimscript.research.lsl import LslPublisher  # noqa: E402
from stimscript.runtime import SessionController  # noqa: E402
from stimscript.runtime.testing import nmes_schedule  # noqa: E402


def contractions_of(out: np.ndarray, schedule, gap_us: int):
    """(channel, onset, end) of runs of delivered pulses on one channel with no gap over ``gap_us``."""
    shape_us = [s.duration_us for s in schedule.shapes]
    runs = []
    for ch in np.unique(out["channel"]).tolist():
        mine = out[out["channel"] == ch]
        t = mine["t_us"].astype(np.int64)
        cut = np.flatnonzero(np.diff(t) > gap_us) + 1
        for a, b in zip(np.r_[0, cut], np.r_[cut, len(t)]):
            runs.append((ch, int(t[a]), int(t[b - 1]) + shape_us[int(mine["shape"][b - 1])]))
    return runs


def pull_until_end(inlet, timeout_s=30.0):
    got = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples, stamps = inlet.pull_chunk(timeout=0.2)
        got += [(json.loads(s[0]), ts) for s, ts in zip(samples, stamps)]
        if any(m["event"] == "session_end" for m, _ in got):
            break
    return got


@pytest.fixture
def lsl_session():
    def run(schedule, controls=(), pulses=False, **kw):
        assert abs(pylsl.local_clock() - time.monotonic()) < 1e-3   # the oracle's premise
        ctl = SessionController(**kw)
        for t, action, *args in controls:
            ctl.at(t, action, *args)
        dev = stimscript.open_device("loopback", capture=True)
        try:
            sid = f"stimscript-test-{uuid.uuid4().hex}"
            pub = LslPublisher(schedule, dev, name="stimscript-test", source_id=sid, pulses=pulses)
            found = pylsl.resolve_byprop("source_id", sid, timeout=10)
            assert found, "the outlet was not resolved on this machine"
            inlet = pylsl.StreamInlet(found[0], max_buflen=60)
            inlet.open_stream(timeout=10)
            assert pub.wait_for_consumers(10)
            info = inlet.info(timeout=10)
            # a look-ahead of 1 s: a busy test machine must not starve the device (late pulses would make the
            # run "degraded"; the markers are checked against what was delivered either way)
            rec = stimscript.run(schedule, device=dev, realtime=True, controller=ctl, record=False,
                                 observers=[pub], param_ranges={"intensity": (0, 60_000)}, lookahead_ms=1000)
            markers = pull_until_end(inlet)
            emu = dev.emulator
            out = emu.output.copy()
            # device time -> host monotonic µs, from the emulator's own bookkeeping (it follows RealClock)
            to_lsl = lambda dev_t: (dev_t - emu._dev_base + emu._clk_base) / 1e6  # noqa: E731
            inlet.close_stream()
        finally:
            dev.close()
        return rec, out, markers, info, to_lsl, pub

    return run


def check_stamps(markers, rec, to_lsl):
    for m, ts in markers:
        truth = to_lsl(rec.epoch_us + m["session_us"])
        assert abs(ts - truth) <= m["sync_uncertainty_us"] / 1e6 + 2e-6, (m, ts, truth)


def test_markers_are_the_schedule_on_the_lsl_clock(lsl_session):
    sched = nmes_schedule(channels=2, seconds=3.2, on_s=0.8, off_s=0.5, ramp_s=0.2, freq_hz=40, stagger_us=260_000)
    rec, out, markers, info, to_lsl, pub = lsl_session(sched)
    assert rec.end_reason == "completed", rec.end_detail
    # stream metadata: type, rate, format and the clock mapping's uncertainty
    assert (info.type(), info.nominal_srate(), info.channel_format()) == ("Markers", 0.0, pylsl.cf_string)
    cs = info.desc().child("clock_sync")
    assert float(cs.child_value("uncertainty_s")) >= 0 and cs.child_value("drift_bound_ppm") == "0"
    assert "round trips" in cs.child_value("method")
    kinds = [m["event"] for m, _ in markers]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end" and markers[-1][0]["reason"] == "completed"
    assert "stop" not in kinds
    # every contraction start and end, per channel, exactly at the delivered pulses (device time)
    runs = contractions_of(out, sched, gap_us=100_000)
    assert len(runs) == sum(tr.cycles for tr in sched.trains)
    starts = sorted((m["channel"], m["session_us"]) for m, _ in markers if m["event"] == "contraction_start")
    ends = sorted((m["channel"], m["session_us"]) for m, _ in markers if m["event"] == "contraction_end")
    assert starts == sorted((c, a) for c, a, _ in runs)
    assert ends == sorted((c, b) for c, _, b in runs)
    assert [m["session_us"] for m, _ in markers if m["event"] == "block_start"] == [0]
    check_stamps(markers, rec, to_lsl)
    # every bound is small on this machine (the loopback answers within the host's poll)
    assert max(m["sync_uncertainty_us"] for m, _ in markers) < 20_000
    lsl = rec.device_log["extra"]["lsl"]
    assert lsl["markers"] == len(markers)
    assert abs(lsl["session_start_lsl_s"] - to_lsl(rec.epoch_us)) <= lsl["uncertainty_s"] + 2e-6


def test_pause_resume_stop_and_pulse_markers(lsl_session):
    sched = nmes_schedule(channels=2, seconds=6, on_s=1.0, off_s=0.4, ramp_s=0.2, freq_hz=40, stagger_us=210_000)
    controls = [(700_000, "pause"), (1_300_000, "resume"), (3_500_000, "stop")]
    rec, out, markers, info, to_lsl, pub = lsl_session(sched, controls, pulses=True, pause_ramp_ms=100,
                                                        resume_ramp_ms=100, stop_ramp_ms=200)
    assert rec.end_reason == "stopped", rec.end_detail
    kinds = [m["event"] for m, _ in markers]
    for k in ("pause", "resume", "stop"):
        assert kinds.count(k) == 1, k
    assert markers[-1][0]["reason"] == "stopped"
    # every delivered pulse is a marker, with its delivered amplitude
    pulses = sorted((m["session_us"], m["channel"], m["amplitude_ua"]) for m, _ in markers if m["event"] == "pulse")
    assert pulses == sorted(zip(out["t_us"].tolist(), out["channel"].tolist(), out["amplitude_ua"].tolist()))
    # contractions cut by the pause end at the last pulse before it and start again after it
    runs = contractions_of(out, sched, gap_us=100_000)
    starts = sorted((m["channel"], m["session_us"]) for m, _ in markers if m["event"] == "contraction_start")
    ends = sorted((m["channel"], m["session_us"]) for m, _ in markers if m["event"] == "contraction_end")
    assert starts == sorted((c, a) for c, a, _ in runs)
    assert ends == sorted((c, b) for c, _, b in runs)
    # the pause marker is where the device began its ramp; the resume where output came back
    log = rec.device_log["events"]
    pausing = [e[1] for e in log if e[0] == "status" and e[2] == "pausing"]
    stopping = [e[1] for e in log if e[0] == "status" and e[2] == "stopping"]
    at = {m["event"]: m["session_us"] + rec.epoch_us for m, _ in markers}
    assert at["pause"] == pausing[0] and at["stop"] == stopping[0]
    resumed = [m for m, _ in markers if m["event"] == "contraction_start" and m["session_us"] + rec.epoch_us > at["resume"]]
    assert resumed and out["t_us"][out["t_us"] + rec.epoch_us >= at["resume"]].min() >= at["resume"] - rec.epoch_us
    check_stamps(markers, rec, to_lsl)


def test_virtual_time_publishes_nothing_and_says_why(tmp_path):
    sched = nmes_schedule(channels=1, seconds=2, on_s=0.5, off_s=0.5)
    dev = stimscript.open_device("loopback", capture=True)
    try:
        pub = LslPublisher(sched, dev, source_id=f"stimscript-test-{uuid.uuid4().hex}")
        rec = stimscript.run(sched, device=dev, record=False, observers=[pub])
    finally:
        dev.close()
    assert rec.end_reason == "completed" and pub.pushed == 0
    assert "virtual time" in rec.device_log["extra"]["lsl"]["unavailable"]
