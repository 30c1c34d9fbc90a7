"""ScienceMode drivers end to end: the byte-level emulator on a real pseudo-terminal, the driver through
pyserial (no mocked port), the runtime in virtual time; the fidelity report's predictions checked against
what the emulated device delivered."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import stimscript
from stimscript.compiler.ir import ChannelInfo, PulseShape, Segment, Train
from stimscript.compiler.schedule import Schedule
from stimscript.drivers.sciencemode import frame as F
from stimscript.drivers.sciencemode import messages as M
from stimscript.drivers.sciencemode.emulator import Faults, ScienceModeEmulator
from stimscript.errors import DeviceNotFound, DriverError, SafetyError
from stimscript.programs.fidelity import fidelity
from stimscript.runtime import SessionController, VirtualClock

BIPHASIC = PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic")
PERIOD = 20_000


def schedule(channels=2, cycles=3, on_us=2_000_000, rest_us=1_000_000, ramp_us=500_000, amp=30_000, freq=50,
             param="intensity"):
    trains, infos = [], []
    cycle = on_us + rest_us
    for c in range(1, channels + 1):
        start = (c - 1) * 300_000
        trains.append(Train(c, start, cycles, cycle, on_us, ramp_us, 0, 1_000_000, freq, amp, 1, 0))
        infos.append(ChannelInfo(number=c, name=f"ch{c}", amplitude_ua=amp, param=param))
    duration = max(t.end_us for t in trains)
    params = {}
    if param:
        params[param] = stimscript.Quantity.of(amp, "uA")
    return Schedule.from_trains(trains, (BIPHASIC,), duration, channels=tuple(infos),
                                segments=(Segment("block 1", 0, duration),), params=params, title="sm test")


@pytest.fixture(params=["p24", "rehamove3", "p24/low-level"])
def device(request):
    model, _, mode = request.param.partition("/")
    emu = ScienceModeEmulator(model, seed=7)
    dev = stimscript.open_device(model, emulator=emu, mode=mode or "mid-level", max_current_ma=60)
    yield dev
    dev.close()


def run(s, dev, tmp_path, **kw):
    kw.setdefault("db", tmp_path / "r.sqlite")
    return stimscript.run(s, device=dev, realtime=False, **kw)


def on_phases(out, channel, gap_us=100_000):
    """The delivered pulses of ``channel`` split into on-phases (a pause longer than gap_us starts one)."""
    t = out["t_us"][out["channel"] == channel]
    if not len(t):
        return []
    cuts = np.nonzero(np.diff(t) > gap_us)[0] + 1
    return np.split(t, cuts)


def test_the_driver_talks_through_a_real_pseudo_terminal(device):
    assert device._server is not None and device.port.startswith("/dev/pts/")
    import serial

    assert isinstance(device._link.serial, serial.Serial)
    assert device.serial.endswith("EMU0001") and device.info.firmware != (0, 0, 0)


def test_session_completes_and_fidelity_predictions_hold(device, tmp_path):
    s = schedule()
    rep = fidelity(s, device.timing_model)
    rec = run(s, device, tmp_path)
    assert rec.end_reason == "completed", rec.faults
    out = device.emulator.output
    counts = s.counts()
    for tf in rep.trains:
        lo, hi = tf.device_pulses_per_on_phase
        phases = on_phases(out, tf.channel)
        assert len(phases) == tf.on_phases
        assert all(lo <= len(p) <= hi for p in phases), [len(p) for p in phases]
        spacing = np.diff(np.concatenate(phases))
        if device.mode == "mid-level":      # the device's own period, exactly
            assert set(spacing[spacing < 100_000].tolist()) == {tf.device_period_us}
    # every acknowledged pulse was scheduled; with no faults all were
    assert rec.delivered == counts
    assert set(np.unique(out["amplitude_ua"] % 500).tolist()) == {0}
    assert rec.fidelity["device"] == device.timing_model.name
    stored = stimscript.runtime.RecordStore(tmp_path / "r.sqlite").get(rec.id)
    assert stored.fidelity["trains"][0]["pulses_per_on_phase"] == rep.trains[0].pulses_per_on_phase


def test_onsets_within_the_reported_uncertainty(device, tmp_path):
    s = schedule(channels=1, cycles=4, ramp_us=0)
    rep = fidelity(s, device.timing_model)
    lo, hi = rep.trains[0].onset_uncertainty_us
    rec = run(s, device, tmp_path, keep_acks=True)
    assert rec.end_reason == "completed"
    emu = device.emulator
    origin = emu.origin + emu._boot                    # emulator's stimulation start on the shared clock
    starts = [p[0] + origin - rec.epoch_us for p in on_phases(emu.output, 1)]
    sched = [tr.start_us + c * tr.cycle_us for tr in s.trains for c in range(tr.cycles)]
    delays = [a - b for a, b in zip(starts, sched)]
    slack = device.poll_interval_us            # the runtime polls the driver this often
    assert all(lo <= d <= hi + slack for d in delays), delays


def test_intensity_change_reaches_the_device_and_is_clamped(device, tmp_path):
    s = schedule(channels=1, cycles=2, ramp_us=0, amp=30_000)
    ctl = SessionController(slew_ua_per_s=1_000_000)
    ctl.at(500_000, "set_intensity", "45 mA")
    ctl.at(1_200_000, "set_intensity", "90 mA")      # above the range: clamped to its top
    rec = run(s, device, tmp_path, controller=ctl, param_ranges={"intensity": ("10 mA", "40 mA")})
    out = device.emulator.output
    assert rec.end_reason == "completed"
    assert out["amplitude_ua"].max() == 40_000 and rec.peak_ua[1] == 40_000
    assert 30_000 in out["amplitude_ua"].tolist()


def test_emergency_stop_ends_output_at_once(device, tmp_path):
    s = schedule(channels=2, cycles=2)
    clock = VirtualClock()
    ctl = SessionController()
    ctl.at(1_000_000, "estop")
    rec = stimscript.run(s, device=device, clock=clock, controller=ctl, db=tmp_path / "r.sqlite")
    assert rec.end_reason == "emergency_stop"
    emu = device.emulator
    stop_dev = max(t for t, cmd, _ in emu.received if cmd in (M.ML_STOP, M.LL_STOP))
    assert not len(emu.output[emu.output["t_us"] > stop_dev - emu.origin])
    assert sum(rec.delivered.values()) <= len(emu.output)


def test_stop_ramps_down_by_updates(device, tmp_path):
    s = schedule(channels=1, cycles=2, ramp_us=0, amp=40_000)
    ctl = SessionController(stop_ramp_ms=1000)
    ctl.at(600_000, "stop")
    rec = run(s, device, tmp_path, controller=ctl)
    assert rec.end_reason == "stopped"
    out = device.emulator.output
    tail = out["amplitude_ua"][-20:]
    assert tail[-1] < 40_000 / 2 and np.all(np.diff(tail.astype(int)) <= 0)
    assert out["t_us"][-1] - out["t_us"][out["amplitude_ua"] == 40_000][-1] <= 1_050_000


def test_pause_and_resume(device, tmp_path):
    s = schedule(channels=1, cycles=2, ramp_us=0)
    ctl = SessionController()
    ctl.at(700_000, "pause")
    ctl.at(2_000_000, "resume")
    rec = run(s, device, tmp_path, controller=ctl)
    assert rec.end_reason == "completed", (rec.end_detail, rec.faults, rec.underruns)
    out = device.emulator.output
    gaps = np.diff(out["t_us"])
    assert gaps.max() >= 1_000_000                      # the pause shows in the output
    # acknowledged pulses are the scheduled ones the device confirmed; around the pause and the resume the
    # device's own phase can differ by one pulse each way (the fidelity report's per-on-phase range)
    assert abs(sum(rec.delivered.values()) - len(out)) <= 2


def test_electrode_error_ends_the_channel_truthfully(tmp_path):
    emu = ScienceModeEmulator("p24", seed=2, faults=Faults(electrode={2: 1_500_000}))
    with stimscript.open_device("p24", emulator=emu, max_current_ma=60) as dev:
        rec = run(schedule(channels=2, cycles=3), dev, tmp_path)
    assert rec.end_reason == "fault"
    assert any("electrode" in f and "channel 2" in f for f in rec.faults)
    out = emu.output
    ch2 = out[out["channel"] == 2]
    assert rec.delivered[2] <= len(ch2)                 # never more than the device delivered on it
    assert ch2["t_us"].max() + emu.origin < 1_500_000


def test_damaged_and_lost_frames_are_resent(tmp_path):
    emu = ScienceModeEmulator("p24", seed=3, faults=Faults(corrupt_rx_every=7, drop_tx_every=11))
    with stimscript.open_device("p24", emulator=emu, max_current_ma=60) as dev:
        s = schedule(channels=2, cycles=2)
        rec = run(s, dev, tmp_path)
        assert rec.end_reason == "completed", rec.faults
        assert dev.resent > 0 and any("checksum" in e for e in emu.errors)
    assert rec.link["resent"] > 0


def test_unplugged_device_ends_as_disconnected(tmp_path):
    emu = ScienceModeEmulator("p24", seed=4)
    dev = stimscript.open_device("p24", emulator=emu, max_current_ma=60)
    emu.faults.disconnect_at_us = emu.now_us() + 1_000_000
    rec = run(schedule(channels=1, cycles=2), dev, tmp_path)
    dev.close()
    assert rec.end_reason == "disconnected"


def test_keep_alive_missed_stops_the_device(tmp_path):
    emu = ScienceModeEmulator("p24", seed=5)
    with stimscript.open_device("p24", emulator=emu, max_current_ma=60) as dev:
        ctl = SessionController()
        ctl.at(500_000, "stall", 3_000_000)            # the host stops talking for 3 s
        rec = run(schedule(channels=1, cycles=3, on_us=5_000_000), dev, tmp_path, controller=ctl)
    assert emu.watchdog_stops >= 1
    assert rec.end_reason == "fault"


def test_low_current_default_refuses_a_stronger_session(tmp_path):
    with stimscript.open_device("p24", emulator=ScienceModeEmulator("p24")) as dev:
        assert dev.capabilities().max_current_ua == 20_000
        with pytest.raises(SafetyError):
            run(schedule(amp=30_000), dev, tmp_path)


def test_what_the_device_cannot_do_is_refused_before_output(tmp_path):
    burst = PulseShape(((200, 1.0), (200, -1.0)) * 9, "burst")
    s = Schedule.from_trains([Train(1, 0, 1, 1_000_000, 500_000, 0, 0, 1_000_000, 50, 10_000, 1, 0)], (burst,))
    with stimscript.open_device("p24", emulator=ScienceModeEmulator("p24"), max_current_ma=60) as dev:
        with pytest.raises(DriverError, match="D001"):
            run(s, dev, tmp_path)


def test_no_port_is_a_helpful_error():
    with pytest.raises(DeviceNotFound, match="--port"):
        stimscript.open_device("p24")


def test_dry_run_prints_frames_and_sends_nothing(tmp_path):
    lines = []
    with stimscript.open_device("p24", dry_run=True, echo=lines.append) as dev:
        rec = run(schedule(channels=1, cycles=1, amp=10_000), dev, tmp_path)
    assert rec.end_reason == "completed"
    assert any("Get_device_id" in ln for ln in lines) and any("Ml_update" in ln and "ch1" in ln for ln in lines)
    assert all("[f0 " in ln for ln in lines)


def test_emulator_answers_result_codes():
    emu = ScienceModeEmulator("rehamove3")
    reader = F.FrameReader()

    def ask(pn, cmd, data=b""):
        emu.host_write(F.encode(pn, cmd, data))
        return [(f.command, f.data) for f in reader.feed(emu.host_read())]

    pts = (M.Point(200, 40), M.Point(200, -40))
    assert ask(1, M.ML_UPDATE, M.encode_ml_update({0: M.MlChannel(40, pts)})) == [(M.ML_UPDATE_ACK, b"\x07")]
    assert ask(2, M.ML_INIT, b"\x00") == [(M.ML_INIT_ACK, b"\x00")]
    assert ask(3, M.ML_UPDATE, M.encode_ml_update({0: M.MlChannel(40, (M.Point(200, 270),))})) == \
        [(M.ML_UPDATE_ACK, bytes((M.PARAMETER_ERROR,)))]                                  # 135 mA
    assert ask(4, M.ML_UPDATE, M.encode_ml_update({0: M.MlChannel(1, pts, fine=True)})) == \
        [(M.ML_UPDATE_ACK, bytes((M.PARAMETER_ERROR,)))]                                  # no 0.25 ms grid
    assert ask(5, 999) == [(M.UNKNOWN_CMD, bytes((M.UNKNOWN_COMMAND,)))]
    bad = bytearray(F.encode(6, M.ML_GET_CURRENT_DATA, b"\x02"))
    bad[-2] ^= 0x03
    emu.host_write(bytes(bad))
    assert [(f.packet_number, f.command, f.data) for f in reader.feed(emu.host_read())] == \
        [(6, M.ML_GET_CURRENT_DATA_ACK, bytes((M.TRANSFER_ERROR,)))]


def test_emulate_command_serves_a_terminal_and_writes_npz(tmp_path):
    out = tmp_path / "delivered.npz"
    proc = subprocess.Popen([sys.executable, "-m", "stimscript.cli", "emulate", "p24", "--output", str(out),
                             "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        with stimscript.open_device("p24", port=path) as dev:
            assert dev.serial == "P24EMU0001"
            assert dev.link_stats()["frames_received"] >= 4
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    data = np.load(out, allow_pickle=True)
    assert data["pulses"].dtype == stimscript.Schedule.from_trains([], ()).pulses.dtype
