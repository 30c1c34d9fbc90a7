"""The loopback emulator's ramp envelope: a STOP or PAUSE never raises the output.

A stop or pause request that arrives while a ramp is under way (a pause ramp-down, a resume ramp-up) ramps
down from the level already reached. Driven through the real wire path (LoopbackDriver -> frames ->
Emulator) on a virtual clock. The oracle is written here, independently of the emulator: a scalar model in
exact fractions of the envelope the commands ask for, plus a model-free check that, between a stop/pause
request and the next resume, no delivered pulse is stronger than the one before it.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.clock import VirtualClock
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.pulses import PULSE_DTYPE
from stimscript.runtime.testing import nmes_schedule

PERIOD_US = 1_000          # one pulse per ms on each channel
FIRST_US = 500             # pulses at 500, 1500, ... µs: never at the instant of a command
STEP_US = 10_000           # commands are sent at multiples of 10 ms
AMPS = {1: 40_000, 2: 7_777}


class Model:
    """The envelope the commands ask for, in exact fractions (µs of device time relative to the epoch)."""

    def __init__(self):
        self.state = "running"              # running | down | paused | stopped
        self.up: tuple[int, int] | None = None
        self.down: tuple[int, int, Fraction, str] | None = None   # (t0, t1, level at t0, state after)
        self.log: list[tuple[int, str, Fraction]] = []   # (time, command, envelope level just before it)

    def level(self, t: int) -> Fraction:
        if self.state == "down":
            t0, t1, g, _ = self.down
            return g * Fraction(max(0, t1 - t), t1 - t0)
        if self.state == "running":
            if self.up is None:
                return Fraction(1)
            a, e = self.up
            return Fraction(min(max(t - a, 0), e - a), e - a)
        return Fraction(0)

    def settle(self, t: int) -> None:
        """Ramps that ended at or before ``t``."""
        if self.state == "down" and self.down[1] <= t:
            self.state = self.down[3]
            self.down = None
        if self.state == "running" and self.up is not None and self.up[1] <= t:
            self.up = None

    def command(self, t: int, kind: str, ramp: int) -> None:
        self.settle(t)
        self.log.append((t, kind, self.level(t)))
        if kind in ("pause", "stop"):
            after = "paused" if kind == "pause" else "stopped"
            if self.state in ("running", "down"):
                g = self.level(t)
                end = t + ramp
                if self.state == "down":
                    end = min(end, self.down[1])
                if ramp == 0:
                    self.state, self.down, self.up = after, None, None
                else:
                    self.state, self.down, self.up = "down", (t, end, g, after), None
            elif self.state == "paused" and kind == "stop":
                self.state = "stopped"
        elif kind == "resume" and self.state == "paused":
            self.state = "running"
            self.up = (t, t + ramp) if ramp > 0 else None

    def delivered(self, t: int, amp: int) -> int | None:
        """The amplitude of a pulse at ``t`` (None: not delivered)."""
        self.settle(t)
        if self.state not in ("running", "down"):
            return None
        out = round(amp * self.level(t))      # round() of a Fraction is half to even
        return out or None


def run(commands: list[tuple[int, str, int]], steps: int):
    """Drive the emulator: at every 10 ms step first the step's commands, then the next 10 ms of pulses."""
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev = LoopbackDriver(emulator=emu)
    dev.open()
    dev.use_clock(clock)
    dev.upload_shapes(nmes_schedule(channels=2, seconds=1).shapes)
    epoch = emu.time_us()
    dev.start(epoch)
    model = Model()
    expected = []
    by_step: dict[int, list] = {}
    for step, kind, ramp in commands:
        by_step.setdefault(step, []).append((kind, ramp))
    for step in range(steps):
        t = step * STEP_US
        clock.advance(epoch + t - emu.time_us())
        for kind, ramp in by_step.get(step, []):
            model.command(t, kind, ramp)
            if kind == "pause":
                dev.pause(ramp)
            elif kind == "stop":
                dev.stop(ramp)
            else:
                dev.resume(epoch + t, ramp)
        times = np.arange(t + FIRST_US, t + STEP_US, PERIOD_US, dtype=np.int64)
        block = np.zeros(2 * len(times), dtype=PULSE_DTYPE)
        block["t_us"] = epoch + np.repeat(times, 2)
        block["channel"] = np.tile([1, 2], len(times))
        block["amplitude_ua"] = [AMPS[c] for c in block["channel"]]
        block["shape"] = 0
        dev.send_block(block)
        for pt in times:
            for ch in (1, 2):
                a = model.delivered(int(pt), AMPS[ch])
                if a is not None:
                    expected.append((int(pt), ch, a))
        dev.poll()
    clock.advance(STEP_US)
    dev.poll()
    out = emu.output.copy()
    dev.close()
    return out, expected, model.log


def check_never_up(out: np.ndarray, log) -> None:
    """From a stop/pause request to the next resume, each channel's output only falls, and never exceeds the
    level the output had when the request arrived."""
    for i, (t0, kind, level) in enumerate(log):
        if kind == "resume":
            continue
        t1 = next((t for t, k, _ in log[i + 1:] if k == "resume"), None)
        for ch in (1, 2):
            sel = (out["channel"] == ch) & (out["t_us"] > t0)
            if t1 is not None:
                sel &= out["t_us"] < t1
            amps = out["amplitude_ua"][sel].astype(np.int64)
            assert np.all(np.diff(amps) <= 0), f"output rose after the {kind} at {t0} µs on channel {ch}"
            assert np.all(amps <= round(AMPS[ch] * level)), \
                f"output above its level at the {kind} at {t0} µs on channel {ch}"


commands = st.lists(st.tuples(st.integers(1, 70), st.sampled_from(["pause", "stop", "resume"]),
                              st.sampled_from([0, 5_000, 20_000, 100_000, 250_000, 400_000, 1_000_000])),
                    max_size=7).map(sorted)


@settings(max_examples=40, deadline=None)
@given(commands)
def test_stop_or_pause_during_any_ramp_never_raises_the_output(cmds):
    out, expected, log = run(cmds, steps=80)
    got = list(zip(out["t_us"].tolist(), out["channel"].tolist(), out["amplitude_ua"].tolist()))
    assert got == expected
    check_never_up(out, log)


def _amps(out, ch, lo, hi):
    sel = (out["channel"] == ch) & (out["t_us"] > lo) & (out["t_us"] < hi)
    return out["amplitude_ua"][sel].astype(np.int64)


def test_stop_during_a_pause_ramp_continues_from_the_level_reached():
    # pause at 100 ms over 400 ms; half-way down (300 ms: level 1/2) a stop asks for a 1 s ramp: the stop
    # ramp starts at 20 mA, not at 40 mA, and the pause's end (500 ms) still bounds it (never slower)
    out, expected, _ = run([(10, "pause", 400_000), (30, "stop", 1_000_000)], steps=70)
    assert [tuple(x) for x in zip(out["t_us"].tolist(), out["channel"].tolist(),
                                  out["amplitude_ua"].tolist())] == expected
    amps = _amps(out, 1, 300_000, 10**9)
    assert amps.max() <= 20_000 and np.all(np.diff(amps) <= 0)
    assert out["t_us"].max() < 500_000
    # 300.5 ms: 20 mA · (500 − 300.5)/(500 − 300) = 19.95 mA
    assert _amps(out, 1, 300_000, 301_000).tolist() == [19_950]


def test_pause_during_a_resume_ramp_starts_from_the_level_reached():
    # resume at 200 ms with a 1 s ramp up; a pause at 450 ms (level 1/4) ramps down from 10 mA over 100 ms
    out, expected, _ = run([(10, "pause", 0), (20, "resume", 1_000_000), (45, "pause", 100_000)], steps=70)
    assert [tuple(x) for x in zip(out["t_us"].tolist(), out["channel"].tolist(),
                                  out["amplitude_ua"].tolist())] == expected
    amps = _amps(out, 1, 450_000, 10**9)
    assert len(amps) and amps.max() <= 10_000 and np.all(np.diff(amps) <= 0)
    assert out["t_us"].max() < 550_000


def test_stop_at_the_instant_of_a_resume_delivers_nothing_more():
    # the resume ramp has not begun (level 0): the stop ramp runs from 0, so nothing is delivered
    out, _, _ = run([(10, "pause", 0), (20, "resume", 500_000), (20, "stop", 300_000)], steps=60)
    assert out["t_us"].max() < 100_000
