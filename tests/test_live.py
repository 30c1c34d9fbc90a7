"""The clinician's front end of `stimscript run`: display renderer, keys -> controller on the real runtime,
the Ctrl-C rule, terminal restore, the plain (non-TTY) path and exit codes.

Sessions run on the loopback emulator in virtual time; keys are fed from ``on_event`` at chosen session
times, so everything is deterministic and nothing sleeps.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dataclasses import replace

import stimscript
from stimscript.live import (KeyHandler, KeyReader, LiveState, SessionInfo, View, exit_code, interrupt_signals,
                             render_text, run_session, status_label, summary)
from stimscript.runtime import Progress, SessionController
from stimscript.runtime.testing import nmes_schedule, open_test_device

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")
RANGES = {"intensity": ("10 mA", "50 mA")}


@pytest.fixture(scope="module")
def tka():
    proto = stimscript.load(TKA)
    sched = proto.compile(session=1, params={"intensity": "40 mA"})
    return proto, sched


def _info(tka, **kw):
    proto, sched = tka
    return SessionInfo.from_schedule(sched, "loopback", realtime=True,
                                     param_ranges={"intensity": proto.params["intensity"]}, **kw)


# ---- the renderer ------------------------------------------------------------------------------------
def test_render_running_shows_everything_a_clinician_needs(tka):
    info = _info(tka, patient_id="P-7")
    # 90 s into the TKA session: contraction 2 of 15 (60 s cycles: 3 s ramp, 12 s hold, 45 s rest), resting
    p = Progress(state="running", elapsed_us=90_000_000, remaining_us=810_000_000, session_us=91_000_000,
                 segment="repeat 15 × contraction", amplitude_ua={1: 40_000}, delivered={1: 1498},
                 intensity_ua={"intensity": 40_000}, target_ua={"intensity": 42_000}, underruns=3,
                 channel_ua={1: 40_000}, channel_target_ua={1: 42_000}, channel_range_ua={1: (0, 100_000)})
    view = View(info, p, status_label(p.state), frozenset({1}), "quad 40 mA → 41 mA", keys=True)
    text = render_text(view, width=110)
    for part in ("Quadriceps NMES after total knee arthroplasty", "session 1 · week 1", "patient P-7",
                 "RUNNING", "elapsed 01:30 / 15:00", "remaining 13:30", "10.0 %", "repeat 15 × contraction",
                 "contraction 2/15 · rest · next contraction in 00:30", "40 mA → 42 mA", "0–100 mA",
                 "vastus medialis, right", "1498", "quad 40 mA → 41 mA", "EMERGENCY STOP", "pause/resume",
                 "Ctrl-C", "1-8", "s/q/Esc"):
        assert part in text, (part, text)
    row = next(line for line in text.splitlines() if "quad" in line and "vastus" in line)
    assert "▶1" in row and "40 mA → 42 mA" in row and "1498" in row
    assert "underruns 3" in " ".join(text.split())
    assert render_text(view, width=110) == text   # a pure function of the view
    hold = render_text(View(info, replace(p, elapsed_us=65_000_000), "RUNNING", frozenset({1})), width=110)
    assert "contraction 2/15 · hold · 00:10 left" in hold
    last = render_text(View(info, replace(p, elapsed_us=880_000_000), "RUNNING", frozenset({1})), width=110)
    assert "contraction 15/15 · rest · last contraction of this block done" in last


def test_render_paused_estop_and_resting_channels_show_no_current(tka):
    info = _info(tka)
    p = Progress(state="paused", elapsed_us=30_000_000, remaining_us=870_000_000, segment="repeat 15 × contraction",
                 amplitude_ua={1: 40_000}, delivered={1: 700}, intensity_ua={"intensity": 40_000},
                 target_ua={"intensity": 40_000}, channel_ua={1: 40_000}, channel_target_ua={1: 40_000},
                 paused_us=75_000_000)
    paused = render_text(View(info, p, "PAUSED", frozenset({1})), width=110)
    assert "PAUSED" in paused and "0 mA" in paused and "→" not in paused and "paused    01:15" in paused
    estop = render_text(View(info, p, status_label("ending", estop=True), frozenset({1})), width=110)
    assert "ESTOP" in estop and "0 mA" in estop and "pause/resume" not in estop  # no key legend any more
    resting = render_text(View(info, Progress(state="running", delivered={1: 749}, amplitude_ua={1: 40_000}),
                               "RUNNING", frozenset()), width=110)
    row = next(line for line in resting.splitlines() if "quad" in line and "vastus" in line)
    assert " 0 mA" in row and "40" not in row and "749" in row   # between contractions: no current
    fresh = render_text(View(info, Progress(state="starting"), "STARTING", keys=False), width=110)
    assert "STARTING" in fresh and "–" in fresh and "pause/resume" not in fresh


def test_status_labels():
    assert status_label("running") == "RUNNING"
    assert status_label("paused") == "PAUSED"
    assert status_label("stopping") == "STOPPING"
    assert status_label("running", stop_requested=True) == "STOPPING"
    assert status_label("running", estop=True) == "ESTOP"
    assert status_label("ended", "emergency_stop") == "ESTOP"
    assert status_label("ended", "stopped") == "STOPPED"
    assert status_label("ended", "completed") == "COMPLETED"
    assert status_label("ended", "fault") == "FAULT"


def test_exit_codes():
    assert [exit_code(r) for r in ("completed", "stopped", "emergency_stop", "fault", "disconnected",
                                   "interrupted")] == [0, 0, 2, 2, 2, 2]


# ---- keys -> controller on the real runtime ------------------------------------------------------------
class Script:
    """on_event: at the first event at or after each session time, run the given action (once)."""

    def __init__(self, steps, state: LiveState | None = None):
        self.steps = sorted(steps, key=lambda s: s[0])
        self.state = state
        self.kinds: list[str] = []

    def __call__(self, ev):
        if self.state is not None:
            self.state.on_event(ev)
        self.kinds.append(ev.kind)
        while self.steps and ev.t_us >= self.steps[0][0]:
            self.steps.pop(0)[1](ev)


def _run(sched, ctl, on_event, dev=None, **kw):
    return stimscript.run(sched, device=dev or "loopback", realtime=False, controller=ctl, on_event=on_event,
                          record=False, param_ranges=RANGES, **kw)


def test_keys_drive_pause_intensity_and_stop_through_the_controller():
    sched = nmes_schedule(channels=2, seconds=60, on_s=10, off_s=5, ramp_s=1, base_ua=30_000, step_ua=0)
    ctl = SessionController()
    info = SessionInfo.from_schedule(sched, "loopback", param_ranges=RANGES)
    state = LiveState(info)
    keys = KeyHandler(ctl, state)
    script = Script([(3_000_000, lambda ev: keys.feed("++\x1b[A")),    # +2 mA, arrow up +1 mA
                     (5_000_000, lambda ev: keys.feed(" ")),           # pause
                     (5_100_000, lambda ev: None)], state)
    resumed = []

    def on_event(ev):
        script(ev)
        if ev.kind == "paused" and not resumed:
            assert state.status() == "PAUSED"
            resumed.append(keys.feed(" "))                             # resume
        if ev.kind == "resumed":
            keys.feed("-q")                                            # -1 mA; q is not a key: ignored
        if ev.kind == "progress" and ev.t_us >= 25_000_000 and "stop" not in keys.actions:
            assert ev.progress.intensity_ua == {"intensity": 32_000}
            keys.feed("s")

    rec = _run(sched, ctl, on_event)
    assert keys.actions == ["intensity_up", "intensity_up", "intensity_up", "pause", "resume", "intensity_down",
                            "stop"]
    assert rec.end_reason == "stopped"
    assert max(rec.peak_ua.values()) == 33_000                          # slew limited, reached 33 mA
    assert {"paused", "resumed", "stopping", "ended"} <= set(script.kinds)
    assert state.status() == "STOPPED" and state.end_reason == "stopped"


def test_intensity_keys_are_clamped_by_the_runtime():
    sched = nmes_schedule(channels=1, seconds=30, on_s=30, off_s=0, ramp_s=0, base_ua=48_000)
    ctl = SessionController()
    keys = KeyHandler(ctl)
    rec = _run(sched, ctl, Script([(1_000_000, lambda ev: keys.feed("+" * 10))]))
    assert rec.end_reason == "completed" and rec.peak_ua[1] == 50_000   # range top, not 58 mA


def test_e_is_an_emergency_stop_output_off_within_one_period():
    sched = nmes_schedule(channels=2, seconds=60, on_s=20, off_s=5, ramp_s=1)
    dev = open_test_device("loopback")
    ctl = SessionController()
    state = LiveState(SessionInfo.from_schedule(sched, "loopback"))
    keys = KeyHandler(ctl, state)
    pressed = []

    def press(ev):
        pressed.append(ev.t_us)
        keys.feed("e")
        assert state.status() == "ESTOP"   # shown at once, before the runtime reports back

    try:
        rec = _run(sched, ctl, Script([(6_000_000, press)], state), dev=dev)
        out = dev.emulator.output
    finally:
        dev.close()
    assert rec.end_reason == "emergency_stop" and keys.actions == ["emergency_stop"]
    assert exit_code(rec.end_reason) == 2
    period = 1_000_000 // 50
    assert len(out) and int(out["t_us"].max()) <= pressed[0] + period   # emulator output: session time


def test_first_ctrl_c_stops_with_a_ramp_second_is_an_emergency_stop():
    sched = nmes_schedule(channels=1, seconds=60, on_s=20, off_s=5, ramp_s=1)
    # one Ctrl-C: ramp-down, "stopped"
    ctl = SessionController()
    keys = KeyHandler(ctl)
    rec = _run(sched, ctl, Script([(5_000_000, lambda ev: keys.interrupt())]))
    assert rec.end_reason == "stopped" and keys.actions == [] and keys.interrupts == 1
    # Ctrl-C as a key (a terminal without ISIG), then again while the output ramps down: emergency stop
    ctl = SessionController()
    keys = KeyHandler(ctl)

    def on_event(ev):
        script(ev)
        if ev.kind == "stopping":
            assert keys.feed("\x03") == ["emergency_stop"]

    script = Script([(5_000_000, lambda ev: keys.feed("\x03"))])
    rec = _run(sched, ctl, on_event)
    assert rec.end_reason == "emergency_stop" and keys.actions == ["stop", "emergency_stop"]


def test_sigint_goes_through_the_same_rule(tmp_path):
    sched = nmes_schedule(channels=1, seconds=60, on_s=20, off_s=5, ramp_s=1)
    prev = signal.getsignal(signal.SIGINT)
    ctl = SessionController()
    keys = KeyHandler(ctl)
    with interrupt_signals(keys):
        rec = _run(sched, ctl, Script([(5_000_000, lambda ev: os.kill(os.getpid(), signal.SIGINT))]))
    assert rec.end_reason == "stopped" and keys.interrupts == 1
    ctl = SessionController()
    keys = KeyHandler(ctl)

    def on_event(ev):
        script(ev)
        if ev.kind == "stopping":
            os.kill(os.getpid(), signal.SIGINT)

    script = Script([(5_000_000, lambda ev: os.kill(os.getpid(), signal.SIGINT))])
    with interrupt_signals(keys):
        rec = _run(sched, ctl, on_event, db=tmp_path / "r.sqlite")
    assert rec.end_reason == "emergency_stop" and keys.interrupts == 2
    # a third Ctrl-C is the escape hatch: KeyboardInterrupt, output off, record "interrupted"
    ctl = SessionController()
    keys = KeyHandler(ctl)
    keys.interrupts = 2
    db = tmp_path / "third.sqlite"
    with pytest.raises(KeyboardInterrupt):
        with interrupt_signals(keys):
            stimscript.run(sched, device="loopback", controller=ctl, db=db,
                           on_event=Script([(5_000_000, lambda ev: os.kill(os.getpid(), signal.SIGINT))]))
    from stimscript.runtime.records import RecordStore

    with RecordStore(db) as store:
        assert store.list(all=True)[-1].end_reason == "interrupted"
    assert signal.getsignal(signal.SIGINT) is prev   # handler restored


def test_key_reader_thread_over_a_pipe_drives_a_real_session():
    sched = nmes_schedule(channels=1, seconds=40, on_s=40, off_s=0, ramp_s=0, base_ua=30_000)
    ctl = SessionController()
    keys = KeyHandler(ctl)
    r, w = os.pipe()
    reader = KeyReader(keys, r)

    def send(data):
        def act(ev):
            reader.processed.clear()
            os.write(w, data)
            assert reader.processed.wait(10), "key reader did not handle the key"
        return act

    try:
        with reader:
            rec = _run(sched, ctl, Script([(2_000_000, send(b"+")), (10_000_000, send(b"s"))]))
    finally:
        os.close(w)
        os.close(r)
    assert keys.actions == ["intensity_up", "stop"]
    assert rec.end_reason == "stopped" and rec.peak_ua[1] == 31_000
    assert not reader._thread.is_alive()


def test_key_reader_puts_a_terminal_in_cbreak_and_restores_it_even_on_error():
    termios = pytest.importorskip("termios")
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        keys = KeyHandler(SessionController())
        with pytest.raises(RuntimeError):
            with KeyReader(keys, slave) as reader:
                during = termios.tcgetattr(slave)
                assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
                assert during[3] & termios.ISIG      # Ctrl-C still raises SIGINT
                os.write(master, b"+")
                assert reader.processed.wait(10)
                raise RuntimeError("boom")
        assert termios.tcgetattr(slave) == before
        assert keys.actions == ["intensity_up"]
    finally:
        os.close(master)
        os.close(slave)


# ---- the live display wired to a run, and the summary ---------------------------------------------------
def test_live_display_in_process_and_summary(tka, tmp_path):
    from rich.console import Console

    proto, sched = tka
    con = Console(record=True, width=110, file=io.StringIO(), force_terminal=True, color_system=None)
    rec, info = run_session(sched, device="loopback", realtime=False, db=tmp_path / "r.sqlite", patient_id="P-3",
                            param_ranges={"intensity": proto.params["intensity"]}, live=True, keys=False,
                            console=con)
    screen = con.export_text()
    assert rec.end_reason == "completed" and rec.patient_id == "P-3"
    assert "COMPLETED" in screen and "11235" in screen and "15:00 / 15:00" in screen
    text = summary(rec, info)
    for part in ("end reason   completed", "channel 1 quad (vastus medialis, right): 11235 pulses, peak 40 mA",
                 "peak         40 mA", "warnings     none", f"record       #{rec.id} in {tmp_path / 'r.sqlite'}",
                 "patient      P-3"):
        assert part in text, (part, text)


# ---- the command in a real process without a terminal ---------------------------------------------------
def _cli(*args, **kw):
    env = dict(os.environ, STIMSCRIPT_DB=kw.pop("db"))
    return subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120, **kw)


def test_run_without_a_terminal_prints_progress_and_summary(tmp_path):
    proc = _cli("run", "examples/tka_quadriceps.stim", "--device", "loopback", "--fast", "--patient", "P-1",
                db=str(tmp_path / "r.sqlite"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Session summary: Quadriceps NMES after total knee arthroplasty" in proc.stdout
    assert "end reason   completed" in proc.stdout and "11235 pulses" in proc.stdout
    assert f"record       #1 in {tmp_path / 'r.sqlite'}" in proc.stdout
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("patient P-1: running session 1 of 84 — no completed session of this protocol")
    lines = lines[1:]
    assert lines[0].startswith("[00:00] started") and lines[-1] == "[15:00] ended: completed"
    assert 3 <= len(lines) <= 15 and any("50 %" in line for line in lines)
    assert "\x1b[" not in proc.stdout   # no live display escape codes in a pipe


@pytest.mark.parametrize("args, needle", [
    (["run", "examples/nope.stim", "--fast"], "error"),
    (["run", "examples/tka_quadriceps.stim", "--fast", "--set", "intensity=500mA"], "S007"),
    (["run", "examples/tka_quadriceps.stim", "--fast", "--set", "intensity"], "NAME=VALUE"),
    (["run", "examples/tka_quadriceps.stim", "--device", "nosuchdevice"], "nosuchdevice"),
])
def test_run_errors_are_diagnostics_with_exit_1(tmp_path, args, needle):
    proc = _cli(*args, db=str(tmp_path / "r.sqlite"))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.sqlite").exists()   # nothing was run


def _read_until(stream, needle):
    seen = []
    for line in stream:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never printed: {''.join(seen)}")


@pytest.mark.parametrize("signals, reason, code", [(1, "stopped", 0), (2, "emergency_stop", 2)])
def test_ctrl_c_in_a_real_time_run(tmp_path, signals, reason, code):
    env = dict(os.environ, STIMSCRIPT_DB=str(tmp_path / "r.sqlite"))
    proc = subprocess.Popen([sys.executable, "-m", "stimscript.cli", "run", "examples/tka_quadriceps.stim",
                             "--device", "loopback", "--realtime"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _read_until(proc.stderr, "started")
        proc.send_signal(signal.SIGINT)
        if signals == 2:
            _read_until(proc.stderr, "stopping")
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, (out, err)
    assert f"end reason   {reason}" in out and "Traceback" not in err


# ---- the phase line follows every channel; the summary speaks like `history ID` ----------------------------
def test_phase_line_per_group_of_channels_that_share_a_cycle():
    """Reciprocal quadriceps/hamstrings: the hamstrings start 6 s later, so each channel has its own phase
    line; channels that move together (bilateral quadriceps) share one."""
    proto = stimscript.load(ROOT / "examples" / "template_reciprocal_quad_hams.stim")
    sched = proto.compile()
    info = SessionInfo.from_schedule(sched, "loopback", realtime=True)
    p = Progress(state="running", elapsed_us=3_000_000, remaining_us=sched.duration_us - 3_000_000)
    text = render_text(View(info, p, "RUNNING", frozenset({1})), width=110)
    # at 3 s: quad holds (ramp 1 s, hold until 5 s); hams wait for their first contraction at 6 s
    assert "quad: contraction 1/20 · hold · 00:02 left" in text, text
    assert "hams: first contraction in 00:03" in text, text
    p = replace(p, elapsed_us=8_000_000)
    text = render_text(View(info, p, "RUNNING", frozenset({2})), width=110)
    # at 8 s: quad rests (next at 12 s), hams hold (6 s + 1 s ramp, hold until 11 s)
    assert "quad: contraction 1/20 · rest · next contraction in 00:04" in text, text
    assert "hams: contraction 1/20 · hold · 00:03 left" in text, text
    assert "paused    00:00" in text                      # time paused is always on screen

    warm = stimscript.load(ROOT / "examples" / "template_warmup_strength_cooldown.stim").compile()
    both = SessionInfo.from_schedule(warm, "loopback", realtime=True)
    t = 300_000_000 + 4_000_000      # the strengthening block: both quadriceps in the same ramp-hold
    text = render_text(View(both, Progress(state="running", elapsed_us=t), "RUNNING", frozenset({1, 2})), width=110)
    assert "contraction 1/20 · hold" in text and "quad_l, quad_r" not in text   # one shared line, no names


def test_summary_in_the_words_of_history(tka, tmp_path):
    """The end-of-run summary and `history ID` print the same rows: treatment or practice, stimulation and
    paused time, the device, each channel's intensity at the end."""
    from click.testing import CliRunner

    from stimscript.cli import cli
    from stimscript.recordview import record_rows

    proto, sched = tka
    db = tmp_path / "r.sqlite"
    rec, info = run_session(sched, device="loopback", realtime=False, db=db, patient_id="P-9", live=False,
                            echo=lambda s: None, operator_id="dr-k")
    text = summary(rec, info)
    assert text.splitlines()[0].endswith("— practice run (emulator)")
    for part in ("stimulation  15:00 of 15:00", "paused       0:00", "operator     dr-k",
                 "device       loopback (serial LOOPBACK-0001, emulator: practice run) · simulated",
                 "channel 1 quad (vastus medialis, right): 11235 pulses, peak 40 mA, at the end 40 mA"):
        assert part in text, (part, text)
    out = CliRunner().invoke(cli, ["history", str(rec.id), "--db", str(db)], catch_exceptions=False).output
    flat = " ".join(out.split())
    for label, value in record_rows(rec):
        if label in ("kind", "session", "ended"):
            continue
        assert " ".join(value.split()) in flat, (label, value)
        assert f"  {label:<12} {value}".rstrip() in text or label == "ended", (label, value)
