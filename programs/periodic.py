"""Lowering a Schedule to a device-periodic program (ScienceMode mid level).

The device generates each channel's pulses itself, at a period on its own grid and at its own phase. The
host can only switch a channel on or off and change its pulse (current, points) by updates. So every
on-phase of every train becomes an :class:`OnPhase`: switched on at its first emitted pulse, switched off at
the end of the on-phase, with the current changed by *levels* wherever the schedule's envelope (ramps,
per-line amplitudes) moves by a whole device current step, at most once per ``min_level_interval_us``.

Every cycle of a train is identical relative to its own start, so one cycle is expanded exactly (the
reference expander) and repeated; back-to-back on-phases with the same settings (a ``continuous`` line,
cycles without rest) are merged into one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from ..compiler import expander
from ..pulses import Train
from .models import TimingModel, snap_period

#: the driver changes a channel's current at most this often while a ramp runs (plus the device period)
MIN_LEVEL_INTERVAL_US = 20_000


def quantise(amplitude_ua: int | Fraction, step_ua: int) -> int:
    """Nearest multiple of the device's current step (half to even)."""
    return int(round(Fraction(amplitude_ua) / step_ua)) * step_ua


@dataclass
class OnPhase:
    """One stretch of output on one channel at one device period."""

    channel: int
    start_us: int                  # session time the channel is switched on (its first scheduled pulse)
    end_us: int                    # session time it is switched off (the on-phase end)
    period_us: Fraction            # what the schedule asks for
    device_period_us: int          # what the device will run (its grid)
    fine: bool                     # on the fine grid (P24 0.25 ms)
    shape: int
    levels: list = field(default_factory=list)   # [(session time, requested amplitude µA)], first at start
    scheduled_pulses: int = 0
    train: int = 0                 # index of the train it came from

    @property
    def window_us(self) -> int:
        return self.end_us - self.start_us


def _cycle_phases(tr: Train, index: int, model: TimingModel, step_ua: int, min_interval: int) -> list[OnPhase]:
    """The on-phases of the first cycle of ``tr`` (relative to the cycle start)."""
    one = replace(tr, start_us=0, cycles=1)
    pulses = expander.expand([one], 0, tr.cycle_us)
    if not len(pulses):
        return []
    period = tr.period
    dev_period, fine = snap_period(model, period)
    t = pulses["t_us"].tolist()
    a = pulses["amplitude_ua"].tolist()
    gap_limit = period * 3 / 2
    phases: list[OnPhase] = []
    cur: OnPhase | None = None
    last_t = last_level_t = last_q = 0   # read only once a phase is open (set with it)
    for ti, ai in zip(t, a):
        if cur is None or ti - last_t > gap_limit:
            if cur is not None:
                cur.end_us = int(last_t + period)   # a gap inside a cycle (envelope reaching 0): off after the last
                phases.append(cur)
            cur = OnPhase(tr.channel, ti, 0, period, dev_period, fine, tr.shape, [(ti, ai)], 0, index)
            last_level_t, last_q = ti, quantise(ai, step_ua)
        else:
            q = quantise(ai, step_ua)
            if q != last_q and ti - last_level_t >= min_interval:
                cur.levels.append((ti, ai))
                last_level_t, last_q = ti, q
        cur.scheduled_pulses += 1
        last_t = ti
    assert cur is not None  # the cycle has pulses (checked above)
    cur.end_us = min(tr.on_us, int(last_t + period)) if tr.on_us else int(last_t + period)
    cur.end_us = max(cur.end_us, last_t + 1)
    phases.append(cur)
    return phases


def lower_periodic(schedule, model: TimingModel, *, min_level_interval_us: int = MIN_LEVEL_INTERVAL_US
                   ) -> list[OnPhase]:
    """Every on-phase of ``schedule`` on a periodic device, sorted by (start, channel)."""
    step = model.current_step_ua
    out: list[OnPhase] = []
    for i, tr in enumerate(schedule.trains):
        if tr.cycles <= 0:
            continue
        dev_period, _ = snap_period(model, tr.period)
        interval = max(min_level_interval_us, dev_period)
        proto = _cycle_phases(tr, i, model, step, interval)
        for c in range(tr.cycles):
            base = tr.start_us + c * tr.cycle_us
            for ph in proto:
                out.append(OnPhase(ph.channel, base + ph.start_us, base + ph.end_us, ph.period_us,
                                   ph.device_period_us, ph.fine, ph.shape,
                                   [(base + lt, la) for lt, la in ph.levels], ph.scheduled_pulses, i))
    out.sort(key=lambda p: (p.channel, p.start_us))
    merged: list[OnPhase] = []
    for ph in out:
        prev = merged[-1] if merged else None
        if (prev is not None and prev.channel == ph.channel and ph.start_us - prev.end_us <= 0
                and (prev.device_period_us, prev.fine, prev.shape) == (ph.device_period_us, ph.fine, ph.shape)):
            prev.end_us = max(prev.end_us, ph.end_us)
            prev.levels.extend(ph.levels)
            prev.scheduled_pulses += ph.scheduled_pulses
            continue
        merged.append(ph)
    merged.sort(key=lambda p: (p.start_us, p.channel))
    return merged


@dataclass(frozen=True)
class ChannelSetting:
    """What one enabled channel runs: device period, grid, shape index and requested amplitude (µA)."""

    device_period_us: int
    fine: bool
    shape: int
    amplitude_ua: int


def timeline(phases: list[OnPhase]) -> list[tuple[int, dict[int, ChannelSetting]]]:
    """The host's updates: [(session time, {channel: setting})], one entry per time at which anything
    changes; a channel missing from an entry is off. The first entry switches the first channel on."""
    events: dict[int, list] = {}
    for ph in phases:
        for _k, (t, amp) in enumerate(ph.levels):
            events.setdefault(int(t), []).append((1, ph, amp))
        events.setdefault(int(ph.end_us), []).append((0, ph, None))
    state: dict[int, ChannelSetting] = {}
    out = []
    for t in sorted(events):
        for kind, ph, amp in sorted(events[t], key=lambda e: e[0]):   # offs before ons at the same time
            if kind == 0:
                cur = state.get(ph.channel)
                if cur is not None and cur.device_period_us == ph.device_period_us and cur.shape == ph.shape:
                    state.pop(ph.channel, None)
            else:
                state[ph.channel] = ChannelSetting(ph.device_period_us, ph.fine, ph.shape, int(amp))
        out.append((t, dict(state)))
    # drop entries that change nothing
    dedup: list = []
    for t, st in out:
        if dedup and dedup[-1][1] == st:
            continue
        dedup.append((t, st))
    return dedup
