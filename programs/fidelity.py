"""The fidelity report: before a run, how faithfully a device reproduces a schedule, channel by channel.

For each train (one line of a session block on one channel) it gives

* **period / rate**: the period the device will run (its grid) against the schedule's, and the rate error;
* **pulses per on-phase**: scheduled, and what the device is expected to give (its own phase can add or
  drop one at either end of an on-phase);
* **onset uncertainty**: how much later than scheduled each contraction can start (update latency plus, for a
  device-periodic channel, up to one device period for its free-running phase);
* **amplitude**: the current step the device rounds to, and the worst rounding error;
* **ramp staircase**: the worst difference between the scheduled envelope and the current the device holds
  while the host updates it (latency included);
* **shape**: points needed, and whether the device reproduces the pulse exactly.

What a device cannot do at all is returned as positioned diagnostics by :func:`check_protocol`
(codes D001–D006, docs/devices/sciencemode.md).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from ..errors import Diagnostic
from .models import HOST_TIMED, PERIODIC, STREAMED, TimingModel, model_for, snap_period
from .periodic import lower_periodic, quantise

#: codes of what a device's timing model cannot do (errors)
DEVICE_RULES = {
    "D001": "the pulse needs more points than the device holds",
    "D002": "the period is off the device's grid beyond the tolerance",
    "D003": "the rate is outside the device's period range",
    "D004": "the current is beyond the device",
    "D005": "the channels together exceed the device's load budget",
    "D006": "more pulses per second than host timing sustains",
}


def shape_points(phases, amplitude_ua: int, model: TimingModel) -> list[tuple[int, int]]:
    """The (duration µs, current µA quantised) points of one pulse on ``model``; long phases are split."""
    step = model.current_step_ua
    longest = model.max_point_us or 10**9
    out = []
    for dur, rel in phases:
        cur = quantise(Fraction(rel).limit_denominator(10**6) * amplitude_ua, step)
        left = int(dur)
        while left > 0:
            d = min(left, longest)
            out.append((d, cur))
            left -= d
    return out


def points_needed(phases, model: TimingModel) -> int:
    longest = model.max_point_us or 10**9
    return sum(max(1, -(-int(d) // longest)) for d, _ in phases)


@dataclass
class TrainFidelity:
    """The report of one train (one line of a block on one channel)."""

    channel: int
    train: int
    frequency_hz: float
    period_us: float                  # scheduled
    device_period_us: float           # what the device runs
    period_error_us: float
    rate_error_pct: float
    on_phases: int
    pulses_per_on_phase: int          # scheduled (first on-phase)
    device_pulses_per_on_phase: tuple  # (least, most) the device is expected to give
    onset_uncertainty_us: tuple       # (earliest, latest) delay of each contraction onset
    amplitude_ua: int
    device_amplitude_ua: int
    amplitude_step_ua: int
    ramp_staircase_ua: int            # worst envelope error while ramping (0 without ramps)
    points: int
    shape_exact: bool
    shape_note: str = ""
    exact: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FidelityReport:
    """Per-train fidelity of one schedule on one device model."""

    device: str
    family: str
    trains: list = field(default_factory=list)
    load_peak: float = 0.0            # periodic: the largest total channel load (budget: model.load_budget)
    load_budget: int | None = None
    notes: list = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.trains)

    def channel(self, number: int) -> list:
        return [t for t in self.trains if t.channel == number]

    def as_dict(self) -> dict:
        return {"device": self.device, "family": self.family, "exact": self.exact, "load_peak": self.load_peak,
                "load_budget": self.load_budget, "notes": list(self.notes),
                "trains": [t.as_dict() for t in self.trains]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def rows(self) -> list[list[str]]:
        """Table rows for the command line (one per train)."""
        out = []
        for t in self.trains:
            lo, hi = t.device_pulses_per_on_phase
            dev_p = f"{lo}" if lo == hi else f"{lo}–{hi}"
            out.append([
                str(t.channel), f"{t.frequency_hz:g}", f"{t.period_us / 1000:g}", f"{t.device_period_us / 1000:g}",
                f"{t.rate_error_pct:+.3g} %", f"{t.pulses_per_on_phase} / {dev_p}",
                f"+{t.onset_uncertainty_us[0] / 1000:g}..+{t.onset_uncertainty_us[1] / 1000:g} ms",
                f"{t.amplitude_ua / 1000:g} → {t.device_amplitude_ua / 1000:g}",
                f"{t.ramp_staircase_ua / 1000:g}", f"{t.points}" + ("" if t.shape_exact else "*"),
            ])
        return out

    HEADER = ["ch", "Hz", "period ms", "device ms", "rate err", "pulses/on sched/dev", "onset", "mA → device",
              "ramp err mA", "points"]

    def render(self) -> str:
        """Plain text (for logs and non-terminal output)."""
        lines = [f"fidelity on {self.device} ({self.family}):"]
        widths = [max(len(r[i]) for r in [self.HEADER] + self.rows()) for i in range(len(self.HEADER))]
        for r in [self.HEADER] + self.rows():
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if self.load_budget:
            lines.append(f"  channel load: peak {self.load_peak:.0f} of {self.load_budget} (device budget)")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _staircase_error(phase_levels, pulses, step, lat) -> int:
    """Worst |held current − scheduled amplitude| over one cycle's pulses, levels effective ``lat`` late."""
    worst = 0
    j = -1
    for t, a in pulses:
        while j + 1 < len(phase_levels) and phase_levels[j + 1][0] + lat <= t:
            j += 1
        held = quantise(phase_levels[max(j, 0)][1], step)
        worst = max(worst, abs(held - a))
    return worst


def fidelity(schedule, device="p24", *, mode: str | None = None) -> FidelityReport:
    """The fidelity report of ``schedule`` on ``device`` (model name, TimingModel or DeviceProfile)."""
    from ..compiler import expander
    from dataclasses import replace

    model = model_for(device, mode)
    rep = FidelityReport(model.name, model.family, load_budget=model.load_budget)
    shapes = schedule.shapes
    phases = lower_periodic(schedule, model) if model.family == PERIODIC else []
    for i, tr in enumerate(schedule.trains):
        if tr.cycles <= 0:
            continue
        shape = shapes[tr.shape]
        amp = int(round(tr.amplitude))
        period = tr.period
        one = expander.expand([replace(tr, start_us=0, cycles=1)], 0, tr.cycle_us)
        sched_pulses = [(int(t), int(a)) for t, a in zip(one["t_us"], one["amplitude_ua"])]
        n_sched = len(sched_pulses)
        npts = points_needed(shape.phases, model)
        pts = shape_points(shape.phases, amp, model)
        step = model.current_step_ua
        dev_amp = quantise(amp, step)
        exact_shape = all(Fraction(rel).limit_denominator(10**6) * amp == c
                          for (d, rel), c in zip(shape.phases, (p[1] for p in _first_points(shape.phases, pts, model))))
        note = "" if exact_shape else "phase currents rounded to the device step"
        if model.max_points and npts > model.max_points:
            note = f"needs {npts} points (device: {model.max_points})"
        lat0, lat1 = model.update_latency_us
        if model.family == PERIODIC:
            dev_period, fine = snap_period(model, period)
            mine = [p for p in phases if p.train == i]
            first = mine[0] if mine else None
            if first is not None:
                w0 = first.window_us
                spread = lat1 - lat0
                lo = max(0, math.floor((w0 - spread) / dev_period))
                hi = math.ceil((w0 + spread) / dev_period)
                base = first.start_us
                rel_levels = [(t - base + first.levels[0][0] - first.levels[0][0], a) for t, a in first.levels]
                off = sched_pulses[0][0] if sched_pulses else 0
                rel_levels = [(t - base + off, a) for t, a in first.levels]
                stair = max(_staircase_error(rel_levels, sched_pulses, step, lat0),
                            _staircase_error(rel_levels, sched_pulses, step, lat1)) if len(first.levels) > 1 or \
                    tr.ramp_up_us or tr.ramp_down_us else abs(dev_amp - amp)
            else:
                lo = hi = 0
                stair = 0
            onset = (lat0, lat1 + dev_period)
            exact = False
        elif model.family == HOST_TIMED:
            dev_period = int(round(period))
            lo = hi = n_sched
            onset = (lat0, lat1 + model.host_jitter_us)
            stair = max((abs(quantise(a, step) - a) for _, a in sched_pulses), default=0)
            exact = False
        else:
            dev_period = period
            lo = hi = n_sched
            onset = (0, 0)
            stair = max((abs(quantise(a, step) - a) for _, a in sched_pulses), default=0)
            exact = stair == 0 and exact_shape
        err = Fraction(dev_period) - period
        rate_err = float((period / Fraction(dev_period) - 1) * 100) if dev_period else 0.0
        rep.trains.append(TrainFidelity(
            channel=tr.channel, train=i, frequency_hz=float(1_000_000 / period), period_us=float(period),
            device_period_us=float(dev_period), period_error_us=float(err), rate_error_pct=rate_err,
            on_phases=tr.cycles, pulses_per_on_phase=n_sched, device_pulses_per_on_phase=(lo, hi),
            onset_uncertainty_us=onset, amplitude_ua=amp, device_amplitude_ua=dev_amp, amplitude_step_ua=step,
            ramp_staircase_ua=int(stair), points=npts, shape_exact=exact_shape and not
            (model.max_points and npts > model.max_points), shape_note=note, exact=exact))
    if model.family == PERIODIC:
        rep.load_peak = peak_load(phases, shapes, model)[0]
        rep.notes.append(f"update latency assumed {lat_text(model)}; the device runs each channel at its own "
                         "phase, so a contraction starts up to one device period later than scheduled")
    elif model.family == HOST_TIMED:
        rep.notes.append(f"every pulse leaves the host when due: {lat_text(model)} link latency plus up to "
                         f"{model.host_jitter_us / 1000:g} ms host scheduling jitter per pulse")
    return rep


def lat_text(model: TimingModel) -> str:
    a, b = model.update_latency_us
    return f"{a / 1000:g}–{b / 1000:g} ms"


def _first_points(phases, pts, model):
    """One point per phase (the first of each split phase), aligned with ``phases``."""
    longest = model.max_point_us or 10**9
    i = 0
    out = []
    for d, _ in phases:
        out.append(pts[i])
        i += max(1, -(-int(d) // longest))
    return out


def peak_load(phases, shapes, model: TimingModel) -> tuple[float, list]:
    """The largest total load of simultaneously enabled channels and the phases making it up."""
    events = []
    for ph in phases:
        load = (shapes[ph.shape].duration_us + model.load_overhead_us) / (ph.device_period_us / 1000)
        events.append((ph.start_us, 1, load, ph))
        events.append((ph.end_us, 0, load, ph))
    events.sort(key=lambda e: (e[0], e[1]))
    cur = 0.0
    active: list = []
    best, best_set = 0.0, []
    for _t, kind, load, ph in events:
        if kind == 1:
            cur += load
            active.append(ph)
            if cur > best:
                best, best_set = cur, list(active)
        else:
            cur -= load
            if ph in active:
                active.remove(ph)
    return best, best_set


# ---- diagnostics -------------------------------------------------------------------------------------
# --- the device rules, decided once: check --device (check_resolved) and the drivers' prepare() use these ----
def points_refusal(phases, model: TimingModel) -> str | None:
    """D001's words when one pulse of ``phases`` needs more points than ``model`` holds, else None."""
    npts = points_needed(phases, model)
    if model.max_points and npts > model.max_points:
        return f"this pulse needs {npts} points; {model.name} holds at most {model.max_points} per pulse"
    return None


def period_refusal(period: Fraction, model: TimingModel) -> tuple[str, str] | None:
    """On a periodic device: ("D003", words) for a period outside its range, ("D002", words) for one whose
    nearest device period is off beyond the tolerance; None when the device runs it."""
    if not model.min_period_us <= period <= model.max_period_us:
        return "D003", (f"a period of {float(period) / 1000:g} ms is outside {model.name}'s "
                        f"{model.min_period_us / 1000:g}..{model.max_period_us / 1000:g} ms")
    dev, _ = snap_period(model, period)
    rel = abs(Fraction(dev) - period) / period
    if rel > model.period_tolerance:
        return "D002", (f"{float(Fraction(10**6) / period):g} Hz needs a period of {float(period) / 1000:.4g} ms; "
                        f"{model.name}'s nearest is {dev / 1000:g} ms ({float(rel) * 100:.2g} % off, tolerance "
                        f"{float(model.period_tolerance) * 100:g} %)")
    return None


def load_refusal(load: float, model: TimingModel, channels: list[int]) -> str | None:
    """D005's words when the channels' total load reaches a periodic device's budget, else None."""
    if not model.load_budget or load < model.load_budget:
        return None
    who = f"channels {', '.join(map(str, channels))}" if channels else "the channels"
    return (f"{who} together load {model.name} to {load:.0f} (budget {model.load_budget}: the sum of (pulse µs + "
            f"{model.load_overhead_us}) / period ms over the enabled channels)")


def _diag(code: str, message: str, span, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, span, "error", hint)


def check_resolved(resolved, model: TimingModel) -> list[Diagnostic]:
    """What ``model`` cannot do of one resolved session, at the line that asks for it."""
    out: list[Diagnostic] = []
    seen = set()

    def add(d: Diagnostic):
        key = (d.code, d.span.start_pos if d.span is not None else d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)

    if model.family == STREAMED:
        return out
    for use in resolved.uses:
        sp = use.spans or {}
        shape = use.shape
        too_many = points_refusal(shape.phases, model)
        if too_many:
            add(_diag("D001", f"channel `{use.channel}`: {too_many}", sp.get("pulse") or sp.get("line"),
                      hint="a burst of fewer carrier cycles, or a device that streams pulses (e.g. loopback)"
                      if shape.kind == "burst" else "use fewer phases"))
        amp = use.amplitude_ua
        if amp > model.max_current_ua:
            add(_diag("D004", f"channel `{use.channel}`: {float(amp) / 1000:g} mA is beyond {model.name}'s "
                      f"{model.max_current_ua / 1000:g} mA", sp.get("amplitude") or sp.get("line"),
                      hint=f"at most {model.max_current_ua / 1000:g} mA"))
        if not use.frequency_hz:
            continue
        period = Fraction(10**6) / use.frequency_hz
        if model.family == PERIODIC:
            refused = period_refusal(period, model)
            if refused is not None and refused[0] == "D003":
                add(_diag("D003", f"channel `{use.channel}`: {refused[1]}", sp.get("frequency") or sp.get("line"),
                          hint=f"a frequency of {1e6 / model.max_period_us:g}..{1e6 / model.min_period_us:g} Hz"))
            elif refused is not None:
                grid = model.fine_grid_us or model.period_grid_us
                near = sorted({1e6 / (k * grid) for k in (math.floor(period / grid), math.ceil(period / grid)) if k})
                add(_diag("D002", f"channel `{use.channel}`: {refused[1]}", sp.get("frequency") or sp.get("line"),
                          hint="a frequency on the device's grid, e.g. " + " or ".join(f"{f:.6g} Hz" for f in near)))
    if model.family == PERIODIC and model.load_budget and resolved.trains:
        from ..compiler.schedule import Schedule

        sched = Schedule.from_trains(resolved.trains, resolved.shapes, resolved.duration_us)
        try:
            phases = lower_periodic(sched, model)
        except Exception:   # a train the model already refused above
            phases = []
        load, parts = peak_load(phases, resolved.shapes, model)
        chans = sorted({p.channel for p in parts})
        overload = load_refusal(load, model, chans)
        if overload:
            use = next((u for u in resolved.uses if u.number == chans[-1]), None)
            span = (use.spans or {}).get("line") if use else None
            add(_diag("D005", overload, span,
                      hint="lower the frequencies, shorten the pulses, or start these channels at different times"))
    if model.family == HOST_TIMED and model.max_pulses_per_s:
        rate = Fraction(0)
        names = []
        for use in resolved.uses:
            if use.frequency_hz:
                rate += use.frequency_hz
                names.append(use)
        by_block: dict = {}
        for use in resolved.uses:
            by_block.setdefault(use.block, []).append(use)
        for _block, uses in by_block.items():
            total = sum((u.frequency_hz for u in uses), Fraction(0))
            if total > model.max_pulses_per_s:
                sp = (uses[-1].spans or {}).get("line")
                add(_diag("D006", f"{float(total):g} pulses per second on {len(uses)} channel line(s) at once; "
                          f"{model.name} (every pulse sent by the host) sustains {model.max_pulses_per_s}", sp,
                          hint="use mid level (the default) or fewer channels at once"))
    return out


def delivered_session(resolved, model: TimingModel):
    """``resolved`` as ``model`` will deliver it: currents rounded to the device step, periods on its grid."""
    from dataclasses import replace

    def period_of(period: Fraction) -> Fraction:
        if model.family == PERIODIC and model.min_period_us <= period <= model.max_period_us:
            return Fraction(snap_period(model, period)[0])
        return period

    uses = []
    for u in resolved.uses:
        amp = Fraction(quantise(u.amplitude_ua, model.current_step_ua))
        freq = u.frequency_hz
        if freq:
            freq = Fraction(10**6) / period_of(Fraction(10**6) / freq)
        uses.append(replace(u, amplitude_ua=amp, frequency_hz=freq))
    trains = []
    for tr in resolved.trains:
        step_amp = quantise(tr.amplitude, model.current_step_ua)
        per = period_of(tr.period)
        trains.append(replace(tr, amp_num=step_amp, amp_den=1, period_num=per.numerator, period_den=per.denominator))
    return replace(resolved, uses=tuple(uses), trains=tuple(trains))


def check_delivered(resolved, model: TimingModel) -> list[Diagnostic]:
    """The safety rules decided again on what ``model`` delivers (rounded currents, grid periods): errors
    that only the device's rounding causes, named as such."""
    from dataclasses import replace as _r

    from ..compiler.safety import check_safety

    if model.family == STREAMED or model.profile is None:
        return []
    before = {(d.code, d.span.start_pos if d.span is not None else None)
              for d in check_safety(resolved, model.profile) if d.is_error}
    out = []
    for d in check_safety(delivered_session(resolved, model), model.profile):
        if d.is_error and (d.code, d.span.start_pos if d.span is not None else None) not in before:
            out.append(_r(d, message=f"as {model.name} delivers it (currents in {model.current_step_ua / 1000:g} mA "
                                     f"steps, periods on its grid): {d.message}"))
    return out


def check_protocol(proto, device, mode: str | None = None) -> list[Diagnostic]:
    """Positioned errors for everything ``device`` cannot do, over every session of the plan (each week)."""
    model = model_for(device, mode)
    if model.family == STREAMED:
        return []
    out: list[Diagnostic] = []
    seen = set()
    weeks_done = set()
    for session in proto.sessions():
        week = proto.week_of(session)
        if week in weeks_done:
            continue
        weeks_done.add(week)
        resolved = proto.resolve(session=session)
        found = check_resolved(resolved, model)
        if not found:
            found = check_delivered(resolved, model)
        for d in found:
            key = (d.code, d.span.start_pos if d.span is not None else d.message)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out
