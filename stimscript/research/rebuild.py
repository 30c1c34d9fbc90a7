"""Rebuild what a wire-protocol device delivered from the schedule and the device log, and prove it.

The schedule says which pulses were planned; the device log (runtime/devicelog.py) says how schedule time
mapped to device time (START epoch, a new offset at each resume) and every state change the device
reported: ramp-downs of PAUSE and STOP, output off, resume ramps, scale registers (live intensity) and
faults. Applying the device model of docs/wire-protocol.md ("Amplitude at pulse time") to the planned
pulses gives the delivered list; it is accepted only if its per-channel counts and peaks equal the record
and its SHA-256 equals the digest of the pulses the device acknowledged. A mismatch raises
:class:`RebuildMismatch`: never a silent export.

Timing rules of the model (the loopback emulator follows them):

* A message from the host (SET_SCALE, PAUSE, STOP, ESTOP, RESUME) is acted on at the device time in the
  STATUS it causes; pulses at exactly that time have already been delivered under the previous state —
  except at the instant a stretch of output begins (START, a resume), whose pulses the host sends after
  everything it sent at that instant (scale changes, a new pause). When a message and pulses meet at the
  very same device time otherwise, the device log cannot say which reached the device first: the
  device's own count of delivered pulses at each state change (``delivered_total`` in its STATUS, kept
  in the log) settles it.
* A ramp-down (t0, t1) scales a pulse at t by g·(t1 − t)/(t1 − t0); at t1 the output is off and the queue
  flushed. g is the level already reached at t0 (1, or the level of a resume ramp or an earlier ramp-down
  still under way at t0): a ramp never starts from above where the output was. A resume ramp (a, e)
  scales by clip(t − a, 0, e − a)/(e − a).
* An all-output fault at t (watchdog, over-limit) delivers nothing at or after t; an electrode fault on a
  channel stops that channel from t on.
* amplitude = round_half_even(amplitude_ua × scale_ppm × num / (10⁶ × den)); 0 µA is not delivered.
  A device with a current step (ScienceMode: 500 µA; the record's fidelity report says) delivers the
  nearest multiple of it instead, rounded once from the exact value (half to even).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..drivers import events as ev
from ..errors import StimscriptError
from ..rounding import round_div_array
from ..runtime.devicelog import pulse_digest

#: delivered pulses plus where each came from in the schedule
DELIVERED_DTYPE = np.dtype([("t_us", "<i8"), ("channel", "u1"), ("amplitude_ua", "<i4"), ("shape", "<u2"),
                            ("sched_t_us", "<i8"), ("period", "<u2")])

_OFF_STATES = (ev.PAUSED, ev.STOPPED, ev.ESTOPPED, ev.FAULTED, ev.IDLE)
SCALE_ONE = 1_000_000


class RebuildError(StimscriptError):
    """A record that cannot be rebuilt (no device log, unknown log version, another device model)."""


class RebuildMismatch(RebuildError):
    """The rebuilt pulses differ from what the device acknowledged."""


@dataclass
class Period:
    """A stretch of device time with output on: from START or a resume to the next output-off."""

    start_us: int                 # device time the period began (START epoch or the resume STATUS)
    offset_us: int                # device time = schedule time + offset
    from_sched_us: int            # first schedule time played in this period
    to_sched_us: int | None = None  # schedule time where the next period takes over (None: to the end)
    at_us: int = 0                # first device time a pulse of this period can be delivered at
    up: tuple[int, int] | None = None   # resume ramp (a, e)
    end_us: int | None = None     # device time the output went off
    end_inclusive: bool = True    # pulses at end_us itself delivered (host command) or not (fault)
    end_state: str = ""
    ramp_down_from_us: int | None = None   # device time the last ramp-down before end_us began
    delivered_before: int | None = None    # the device's delivered_total when the period began / ended
    delivered_after: int | None = None


@dataclass
class Timeline:
    """The device log read into periods, envelopes, scale changes and channel faults."""

    epoch_us: int
    periods: list[Period]
    downs: list[tuple[int, int]] = field(default_factory=list)        # ramp-downs (t0, t1), in order
    scale_t: list[int] = field(default_factory=list)                  # times of scale changes
    scales: list[tuple[int, ...]] = field(default_factory=list)       # the registers from then on
    channel_off: dict[int, int] = field(default_factory=dict)         # channel -> device time it stopped
    acked: int = 0
    acked_through_us: int | None = None
    acked_sha256: str = ""
    events: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)                         # what optional observers kept


def read_log(log: dict) -> Timeline:
    """Parse a device log (the JSON dict stored in the session record)."""
    if not log or "events" not in log:
        raise RebuildError("this record has no device log (it was written before stimscript kept one, or the "
                           "session never started): its delivered pulses cannot be rebuilt")
    if log.get("version") != 1:
        raise RebuildError(f"device log version {log.get('version')!r} is not known to this stimscript")
    epoch = int(log["epoch_us"])
    tl = Timeline(epoch, [], acked=int(log.get("acked", 0)), acked_through_us=log.get("acked_through_us"),
                  acked_sha256=str(log.get("acked_sha256", "")), events=list(log["events"]),
                  extra=dict(log.get("extra") or {}))
    offsets = [(int(e[1]), int(e[2])) for e in log["events"] if e[0] == "offset"]
    if not offsets:
        raise RebuildError("the device log has no time map (no START offset)")
    cur = Period(start_us=epoch, offset_us=offsets[0][1], from_sched_us=offsets[0][0], at_us=epoch,
                 delivered_before=0)
    tl.periods.append(cur)
    n_off = 1
    prev_state, prev_ramp_end = ev.RUNNING, None
    for e in log["events"]:
        kind = e[0]
        if kind == "status":
            t, state, ramp_end, scales = int(e[1]), str(e[2]), int(e[3]), tuple(int(s) for s in e[4])
            delivered = int(e[5]) if len(e) > 5 else None   # the device's count (logs since it was kept)
            if not tl.scales or scales != tl.scales[-1]:
                tl.scale_t.append(t)
                tl.scales.append(scales)
            if state in (ev.PAUSING, ev.STOPPING):
                if state != prev_state or ramp_end != prev_ramp_end:   # not a scale change while ramping
                    tl.downs.append((t, ramp_end))
                    if cur.end_us is None:
                        cur.ramp_down_from_us = t
            elif state == ev.RUNNING and prev_state == ev.PAUSED:
                if n_off >= len(offsets):
                    raise RebuildError("the device log has a resume without a time map")
                frm, off = offsets[n_off]
                n_off += 1
                cur.to_sched_us = frm
                at = max(frm + off, t)
                cur = Period(start_us=t, offset_us=off, from_sched_us=frm, at_us=at,
                             up=(at, ramp_end) if ramp_end > at else None, delivered_before=delivered)
                tl.periods.append(cur)
            elif state in _OFF_STATES and cur.end_us is None and state != prev_state:
                cur.end_us = t
                cur.end_inclusive = state != ev.FAULTED
                cur.end_state = state
                cur.delivered_after = delivered
            prev_state, prev_ramp_end = state, ramp_end
        elif kind == "fault":
            t, channel, output_off = int(e[1]), int(e[3]), bool(e[4])
            if channel and not output_off:
                tl.channel_off[channel] = min(t, tl.channel_off.get(channel, t))
    return tl


def _level(env, t: int) -> Fraction:
    """The level (0..1) of a ramp at device time ``t``: ("up", a, e, 1) or ("down", t0, t1, g); None = 1."""
    if env is None:
        return Fraction(1)
    kind, a, b, g = env
    span = max(1, b - a)
    x = (b - t) if kind == "down" else (t - a)
    return g * Fraction(min(max(x, 0), span), span)


def replay(pulses: np.ndarray, tl: Timeline, step_ua: int = 1) -> np.ndarray:
    """Apply the device model to the planned pulses (PULSE_DTYPE, schedule time) -> DELIVERED_DTYPE;
    ``step_ua`` > 1: amplitudes are the nearest multiple of the device's current step."""
    parts: list[np.ndarray] = []
    for k, per in enumerate(tl.periods):
        # pulses at the instant this period resumes from that the previous one delivered (a 0 ms pause ramp)
        # are not sent again (logs that keep the device's counts); older runtimes sent them again
        played: set = set()
        for prev in parts:
            played |= set(prev["channel"][prev["sched_t_us"] == per.from_sched_us].tolist())
        counted = per.delivered_before is not None
        out = _period(pulses, tl, k, per, step_ua, per.end_inclusive, False, played if counted else set())
        need = None if per.delivered_before is None or per.delivered_after is None else \
            per.delivered_after - per.delivered_before
        if need is not None and len(out) != need:
            # a message and pulses at the very same device time: the device log cannot say which reached the
            # device first, the device's own count can (pulses at the end instant delivered or flushed; a
            # ramp-down starting at the resume instant before or after the pulses at that instant)
            tries = [(e, s, p) for p in (played, set()) for e in (per.end_inclusive, not per.end_inclusive)
                     for s in (False, True)]
            for opts in tries[1:]:
                alt = _period(pulses, tl, k, per, step_ua, *opts)
                if len(alt) == need:
                    out = alt
                    break
        parts.append(out)
    if not parts:
        return np.zeros(0, dtype=DELIVERED_DTYPE)
    return np.concatenate(parts)


def _period(pulses: np.ndarray, tl: Timeline, k: int, per: Period, step_ua: int, end_inclusive: bool,
            start_before: bool, played: set) -> np.ndarray:
    """The delivered pulses of period ``k``; the flags settle pulses at the very instant of a message."""
    sched_t = pulses["t_us"]
    lo = int(np.searchsorted(sched_t, per.from_sched_us, side="left"))
    hi = len(pulses) if per.to_sched_us is None else int(np.searchsorted(sched_t, per.to_sched_us, side="right"))
    seg = pulses[lo:hi]
    t = seg["t_us"].astype(np.int64) + per.offset_us
    keep = np.ones(len(seg), dtype=bool)
    if per.end_us is not None:
        keep &= (t <= per.end_us) if end_inclusive else (t < per.end_us)
    elif tl.acked_through_us is not None and k == len(tl.periods) - 1:
        keep &= t <= int(tl.acked_through_us)   # no final report: only what was acknowledged is known
    keep &= t >= per.at_us
    if played:
        keep &= ~((seg["t_us"] == per.from_sched_us) & np.isin(seg["channel"], list(played)))
    for ch, t_off in tl.channel_off.items():
        keep &= ~((seg["channel"] == ch) & (t >= t_off))
    seg, t = seg[keep], t[keep]
    amp = seg["amplitude_ua"].astype(np.int64)
    ch_idx = seg["channel"].astype(np.int64) - 1
    # scale registers in force at each pulse (the last change strictly before it)
    scale = np.full(len(seg), SCALE_ONE, dtype=np.int64)
    if tl.scale_t and all(len(sc) >= ch_idx.max(initial=-1) + 1 for sc in tl.scales):
        scale_t = np.asarray(tl.scale_t, dtype=np.int64)
        which = np.searchsorted(scale_t, t, side="left") - 1
        # at the instant a stretch of output begins, what the host sent at that instant precedes its pulses
        first = t == per.start_us
        if first.any():
            which[first] = np.searchsorted(scale_t, t[first], side="right") - 1
        table = np.asarray(tl.scales, dtype=np.int64)
        ok = which >= 0
        scale[ok] = table[which[ok], ch_idx[ok]]
    # envelopes: the latest ramp set strictly before each pulse (resume ramp of this period, ramp-downs)
    num = np.ones(len(seg), dtype=np.int64)
    den = np.ones(len(seg), dtype=np.int64)
    env_start = np.full(len(seg), np.iinfo(np.int64).min, dtype=np.int64)
    g_num = np.ones(len(seg), dtype=object)      # the level a ramp-down starts from (exact)
    g_den = np.ones(len(seg), dtype=object)
    prev = None if per.up is None else ("up", per.up[0], per.up[1], Fraction(1))
    if per.up is not None:
        a, e = per.up
        span = max(1, e - a)
        inside = t < e
        num[inside] = np.clip(t[inside] - a, 0, span)
        den[inside] = span
        env_start[inside] = per.start_us
    for t0, t1 in tl.downs:
        if per.end_us is not None and t0 > per.end_us or t0 < per.start_us:
            continue
        # a pulse at exactly t0 was delivered before the PAUSE/STOP arrived, unless the ramp began at the
        # instant its stretch of output did (its pulses are sent after both messages)
        after = (t > t0) | ((t == t0) & (t0 == per.start_us) & (not start_before))
        inside = after & (t <= t1) & (t0 >= env_start)   # a later ramp replaces an earlier one
        num[inside] = t1 - t[inside]
        den[inside] = max(1, t1 - t0)
        env_start[inside] = t0
        level = _level(prev, t0)
        g_num[inside] = level.numerator
        g_den[inside] = level.denominator
        prev = ("down", t0, t1, level)
    plain = (den == 1) & (num == 1)
    out_amp = amp.copy()
    env = ~plain
    exact = bool(np.all(g_num[env] == 1)) and bool(np.all(g_den[env] == 1))
    if step_ua > 1:   # the nearest multiple of the device's step, rounded once from the exact value
        e_num = amp.astype(object) * scale.astype(object) * num.astype(object) * g_num
        e_den = SCALE_ONE * den.astype(object) * g_den * step_ua
        out_amp = round_div_array(e_num, e_den).astype(np.int64) * step_ua
    else:
        unity = plain & (scale == SCALE_ONE)
        sc = plain & ~unity
        out_amp[sc] = round_div_array(amp[sc] * scale[sc], SCALE_ONE)
        if exact:
            out_amp[env] = round_div_array(amp[env] * scale[env] * num[env], SCALE_ONE * den[env])
        else:  # ramps starting mid-ramp: exact Python integers
            e_num = amp[env].astype(object) * scale[env].astype(object) * num[env].astype(object) * g_num[env]
            e_den = SCALE_ONE * den[env].astype(object) * g_den[env]
            out_amp[env] = round_div_array(e_num, e_den).astype(np.int64)
    nz = out_amp != 0
    out = np.empty(int(np.count_nonzero(nz)), dtype=DELIVERED_DTYPE)
    out["t_us"] = t[nz] - tl.epoch_us
    out["channel"] = seg["channel"][nz]
    out["amplitude_ua"] = out_amp[nz]
    out["shape"] = seg["shape"][nz]
    out["sched_t_us"] = seg["t_us"][nz]
    out["period"] = k
    return out


def verify(delivered: np.ndarray, tl: Timeline, record_delivered: dict, record_peak: dict) -> None:
    """Raise RebuildMismatch unless the rebuilt pulses are exactly what the device acknowledged."""
    problems = []
    channels = sorted(set(int(c) for c in record_delivered) | set(int(c) for c in np.unique(delivered["channel"])))
    for ch in channels:
        mine = delivered[delivered["channel"] == ch]
        n_rec = int(record_delivered.get(ch, record_delivered.get(str(ch), 0)))
        if len(mine) != n_rec:
            problems.append(f"channel {ch}: rebuilt {len(mine)} pulses, the device acknowledged {n_rec}")
            continue
        peak = int(np.abs(mine["amplitude_ua"].astype(np.int64)).max()) if len(mine) else 0
        p_rec = int(record_peak.get(ch, record_peak.get(str(ch), 0)))
        if peak != p_rec:
            problems.append(f"channel {ch}: rebuilt peak {peak} µA, the device acknowledged {p_rec} µA")
    if len(delivered) != tl.acked:
        problems.append(f"rebuilt {len(delivered)} pulses, the device log counted {tl.acked} acknowledgements")
    if not problems and tl.acked_sha256:
        digest = pulse_digest(delivered["t_us"], delivered["channel"], delivered["amplitude_ua"]).hexdigest()
        if digest != tl.acked_sha256:
            problems.append("the rebuilt pulses' SHA-256 differs from the acknowledged pulses' (same counts, "
                            "different times or amplitudes)")
    if problems:
        raise RebuildMismatch("the delivered pulses cannot be rebuilt exactly from the record:\n  "
                              + "\n  ".join(problems))


def current_step(fidelity: dict | None) -> int:
    """The device's current step from a record's fidelity report (1 µA: exact, no report)."""
    trains = (fidelity or {}).get("trains") or []
    return max([int(t.get("amplitude_step_ua", 1) or 1) for t in trains] or [1])


def rebuild(schedule, device_log: dict, record_delivered: dict | None = None, record_peak: dict | None = None,
            check: bool = True, step_ua: int = 1) -> np.ndarray:
    """The delivered pulses (DELIVERED_DTYPE, t_us from the session start on the device clock), checked
    against the record unless ``check`` is False."""
    tl = read_log(device_log)
    delivered = replay(schedule.pulses, tl, step_ua)
    if check:
        verify(delivered, tl, record_delivered or {}, record_peak or {})
    return delivered
