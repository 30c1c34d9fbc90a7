"""The streaming dispatcher: a Schedule in, a SessionRecord out.

The device owns the clock. The dispatcher maps schedule time to device time (``dev_t = sched_t + offset``;
``offset`` is the START epoch, moved on by every pause), keeps the device queue filled up to ``lookahead``
ahead of the device clock and within the queue's free space (flow control by the queue level the device
reports), reads back per-pulse acknowledgements, applies controls, and ends with one of the end reasons
"completed" | "degraded" | "stopped" | "emergency_stop" | "fault" | "disconnected" | "interrupted". Host
jitter only changes *when* pulses are sent, never their device-time stamps; a pulse that reaches the device
after its time is dropped by the device and counted as an underrun.

It never waits forever: a device that says nothing for ``silence_us`` is asked for STATUS (again every
``silence_us``), and one that stays silent for ``lost_us`` is declared lost (ESTOP sent, the session ends
"disconnected"). At the end it asks for the device's final report and waits at most ``drain_timeout_us``
for it and for the last acknowledgements. The record's counts and end reason come from that report: a
session that ran to its end ends "completed" only when the device delivered every scheduled pulse
(pulses skipped on purpose because their amplitude was 0 at pulse time excepted); otherwise it ends
"degraded" with the numbers in ``record.end_detail``.
"""
from __future__ import annotations

import bisect
import time
from fractions import Fraction

import numpy as np

from ..pulses import PULSE_DTYPE
from ..drivers import events as ev
from ..drivers.base import DeviceDisconnected, Driver
from ..errors import DeviceTimeout, DriverError, SafetyError, StimscriptError
from ..clock import Clock
from .controls import Event, Progress, SessionController
from .devicelog import DeviceLog
from .records import RecordStore, SessionRecord

_EMPTY = np.zeros(0, dtype=PULSE_DTYPE)
SCALE_ONE = 1_000_000          # live intensity scales are whole ppm (exact in records)
MAX_SCALE_PPM = 4_000_000      # the Driver contract: 0 <= factor <= 4


def _to_ua(value) -> int:
    """µA from an int, a Quantity, or text like "45 mA"."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float):
        return int(round(value))
    if isinstance(value, str):
        from ..units import parse_quantity

        value = parse_quantity(value)
    if hasattr(value, "to_ua"):
        return int(value.to_ua())
    raise TypeError(f"cannot read a current from {value!r}")


def precheck(schedule, profile) -> None:
    """Refuse a schedule the device cannot play (the compiler checks this too; drivers must not trust it)."""
    for tr in schedule.trains:
        if not 1 <= tr.channel <= profile.channels:
            raise SafetyError(f"channel {tr.channel} does not exist on {profile.name} "
                              f"({profile.channels} channels)", code="S005")
        amp = -(-tr.amp_num // tr.amp_den)
        if amp > profile.max_current_ua:
            raise SafetyError(f"channel {tr.channel}: {amp} µA exceeds the device maximum "
                              f"{profile.max_current_ua} µA", code="S002")
        if tr.period_num * profile.max_rate_hz < tr.period_den * 1_000_000:
            raise SafetyError(f"channel {tr.channel}: slot rate above the device maximum {profile.max_rate_hz} Hz",
                              code="S004")
    for i, shape in enumerate(schedule.shapes):
        for dur, rel in shape.phases:
            if rel != 0 and not profile.min_phase_us <= dur <= profile.max_phase_us:
                raise SafetyError(f"pulse shape {i}: a {dur} µs phase is outside the device's "
                                  f"{profile.min_phase_us}..{profile.max_phase_us} µs", code="S003")


class _Intensity:
    """Live intensity per output channel, applied through the device's per-channel scale registers.

    Every channel with an amplitude has a *nominal* amplitude (µA: what it was compiled with, the full
    amplitude of its envelope), a *target* (what the clinician asked for), an *applied* value (moved toward
    the target at the slew limit, sent as scale = applied / nominal) and an *acknowledged* value (the scale
    the device reported back; this is what the record's event log and ``channel_ua`` hold).

    Ranges: a channel can always be lowered to 0 mA (a patient in pain must not have to stop; going below
    the minimum of the param it follows is logged as a deviation). It can be raised up to the top of its
    reachable range: ``channel_ranges`` when given (the checked envelope of the channel's delivered
    pulses), else the top of its param's range mapped onto the channel (``80% intensity`` reaches 80 % of
    the top), else its compiled amplitude (an amplitude the checker did not vary cannot be raised) — and
    never beyond the device's maximum for the channel's largest pulse.

    Selection: a channel (``channel=`` number, or several), a group (``param=``: the channels that follow
    that param move together, proportionally), or everything (neither).
    """

    def __init__(self, schedule, profile, param_ranges: dict | None, controller: SessionController,
                 channel_ranges: dict | None = None):
        self.ctl = controller
        peak: dict[int, int] = {}
        for tr in schedule.trains:
            peak[tr.channel] = max(peak.get(tr.channel, 0), -(-tr.amp_num // tr.amp_den))
        ranges = dict(getattr(schedule, "param_ranges", None) or {})
        ranges.update(param_ranges or {})
        params = getattr(schedule, "params", None) or {}
        self.names: dict[int, str] = {}
        self.param_of: dict[int, str | None] = {}
        self.nominal: dict[int, int] = {}
        self.hi: dict[int, int] = {}
        self.minimum: dict[int, int] = {}        # the param's minimum on this channel (below: a deviation)
        self.param_value: dict[str, int] = {}    # param -> its compiled value (µA)
        infos = {c.number: c for c in getattr(schedule, "channels", ()) or ()}
        for ch in sorted(set(peak) | set(infos)):
            info = infos.get(ch)
            nominal = (info.amplitude_ua if info is not None and info.amplitude_ua else 0) or peak.get(ch, 0)
            if nominal <= 0:
                continue
            self.nominal[ch] = nominal
            self.names[ch] = (info.name if info is not None and info.name else "") or f"channel {ch}"
            name = info.param if info is not None else None
            self.param_of[ch] = name
            hi = nominal
            value = None
            if name:
                pv = params.get(name)
                try:
                    value = _to_ua(pv) if pv is not None else None
                except (TypeError, ValueError, StimscriptError):
                    value = None
                if value:
                    self.param_value.setdefault(name, value)
                    if name in ranges:
                        r = getattr(ranges[name], "range", ranges[name])
                        lo_p, hi_p = _to_ua(r[0]), _to_ua(r[1])
                        hi = nominal * hi_p // value
                        if lo_p > 0:
                            self.minimum[ch] = -(-nominal * lo_p // value)
            if channel_ranges and ch in channel_ranges:
                r = channel_ranges[ch]
                hi = _to_ua(getattr(r, "range", r)[1])
            p = peak.get(ch, 0)
            if p > 0:   # never beyond what the device can deliver for this channel's largest pulse
                hi = min(hi, nominal * profile.max_current_ua // p)
            self.hi[ch] = max(0, hi)
        self._apply_live(getattr(schedule, "live", None) or {}, param_ranges or {}, channel_ranges or {}, peak,
                         profile)
        self.groups: dict[str, list[int]] = {}
        for ch, name in self.param_of.items():
            if name and name in self.param_value:
                self.groups.setdefault(name, []).append(ch)
        self.value = dict(self.nominal)     # applied (sent) µA
        self.target = dict(self.nominal)    # requested µA
        self.acked = dict(self.nominal)     # acknowledged by the device (µA)
        self.acked_ppm = {ch: SCALE_ONE for ch in self.nominal}
        self.sent_ppm = dict(self.acked_ppm)
        self.reports_scale: bool | None = None   # does the device report its scale registers?

    def _apply_live(self, live: dict, param_ranges: dict, channel_ranges: dict, peak: dict, profile) -> None:
        """The compiler's live envelope, when the schedule carries one: which channels follow which param
        proportionally (only those can be raised with it) and the range checked on the delivered pulses."""
        adjustable = {name: lp for name, lp in live.items() if getattr(lp, "adjustable", False)}
        if not live:
            return
        for ch in self.nominal:
            if ch not in channel_ranges:
                self.param_of[ch] = None
                self.hi[ch] = min(self.hi[ch], self.nominal[ch])
                self.minimum.pop(ch, None)
        for name, lp in adjustable.items():
            value = lp.value_ua
            if value <= 0:
                continue
            self.param_value[name] = value
            hi_p = lp.high.to_ua()
            if name in param_ranges:
                r = getattr(param_ranges[name], "range", param_ranges[name])
                hi_p = min(hi_p, _to_ua(r[1]))
            lo_p = lp.low.to_ua()
            for ch in lp.channels:
                if ch not in self.nominal or ch in channel_ranges:
                    continue
                self.param_of[ch] = name
                hi = self.nominal[ch] * hi_p // value
                p = peak.get(ch, 0)
                if p > 0:
                    hi = min(hi, self.nominal[ch] * profile.max_current_ua // p)
                self.hi[ch] = hi
                if lo_p > 0:
                    self.minimum[ch] = -(-self.nominal[ch] * lo_p // value)

    # ---- selection -------------------------------------------------------------------------------
    def _channels(self, param, channels) -> list[int]:
        if channels is not None:
            chans = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
            out = []
            for ch in chans:
                if int(ch) not in self.nominal:
                    raise StimscriptError(f"channel {ch} has no adjustable amplitude (channels: "
                                          f"{', '.join(str(c) for c in self.nominal) or 'none'})")
                out.append(int(ch))
            return out
        if param is not None:
            if param not in self.groups:
                raise StimscriptError(f"no channel is driven by a param named {param!r} "
                                      f"(params: {', '.join(self.groups) or 'none'})")
            return list(self.groups[param])
        return list(self.nominal)

    def label(self, ch: int) -> str:
        return self.names.get(ch, f"channel {ch}")

    def param_level(self, name: str, which: dict | None = None) -> int | None:
        """The param value its channels are at (µA), when they all are at one factor of it; else None."""
        which = self.acked if which is None else which
        chans = self.groups.get(name, [])
        if not chans:
            return None
        base = self.param_value[name]
        levels = {Fraction(which[c] * base, self.nominal[c]).__round__() for c in chans}
        return levels.pop() if len(levels) == 1 else None

    # ---- commands --------------------------------------------------------------------------------
    def command(self, action: str, args) -> list[str]:
        """Apply one intensity control; -> what happened, one short text per channel changed or held."""
        from ..formatting import ma

        args = list(args) + [None, None, None]
        requested: dict[int, int] = {}
        if action == "set_intensity":
            value, param, channels = args[:3]
            ua = _to_ua(value)
            for ch in self._channels(param, channels):
                name = self.param_of.get(ch)
                if channels is None and name in self.param_value:
                    requested[ch] = Fraction(ua * self.nominal[ch], self.param_value[name]).__round__()
                else:
                    requested[ch] = ua
        else:
            param, step, channels = args[:3]
            step = self.ctl.intensity_step_ua if step is None else int(step)
            sign = 1 if action == "intensity_up" else -1
            for ch in self._channels(param, channels):
                if param is not None and channels is None:   # the group moves with its param
                    d = Fraction(sign * step * self.nominal[ch], self.param_value[param]).__round__()
                else:
                    d = sign * step
                requested[ch] = self.target[ch] + d
        texts = []
        for ch, want in requested.items():
            old = self.target[ch]
            new = max(0, min(self.hi[ch], want))
            self.target[ch] = new
            name = self.label(ch)
            if new == old:
                if want > old:
                    texts.append(f"{name} at the top of its range ({ma(self.hi[ch])})")
                elif want < old:
                    texts.append(f"{name} already at 0 mA")
                else:
                    texts.append(f"{name} stays at {ma(new)}")
                continue
            text = f"{name} {ma(old)} → {ma(new)}"
            if want > new:
                text += " (the top of its range)"
            m = self.minimum.get(ch)
            if m is not None and new < m:
                text += f", below the {self.param_of[ch]} minimum {ma(m)} (noted in the record)"
            texts.append(text)
        return texts

    @property
    def slewing(self) -> bool:
        return self.value != self.target

    def step(self, dt_us: int) -> dict[int, Fraction]:
        """Move applied values toward their targets; -> {channel: scale factor} to send. The factor is a
        whole number of ppm (exact as a Fraction), so what a device keeps in ppm is exactly what is logged."""
        out = {}
        max_step = max(1, self.ctl.slew_ua_per_s * dt_us // 1_000_000)
        for ch in self.nominal:
            cur, tgt = self.value[ch], self.target[ch]
            if cur == tgt:
                continue
            cur = tgt if abs(tgt - cur) <= max_step else cur + (max_step if tgt > cur else -max_step)
            self.value[ch] = cur
            ppm = min(MAX_SCALE_PPM, Fraction(cur * SCALE_ONE, self.nominal[ch]).__round__())
            self.sent_ppm[ch] = ppm
            out[ch] = Fraction(ppm, SCALE_ONE)
        return out

    # ---- what the device acknowledged -------------------------------------------------------------
    def acknowledge(self, scales_ppm, device_us: int, rec: SessionRecord) -> None:
        """A status report (``scales_ppm``: the scale each channel applies, channel 1 first, when the device
        says): log every channel whose scale changed, at the report's device time, old -> new."""
        if scales_ppm:
            self.reports_scale = True
            for ch in self.nominal:
                if ch - 1 < len(scales_ppm):
                    self._acked(ch, int(scales_ppm[ch - 1]), device_us, rec, "")
        elif self.reports_scale is None or self.reports_scale is False:
            # the device does not say: what was sent is taken as applied when it next reports
            self.reports_scale = False
            for ch in self.nominal:
                self._acked(ch, self.sent_ppm[ch], device_us, rec, "as sent (the device does not report its scale)")

    def flush_unacknowledged(self, device_us: int, rec: SessionRecord) -> None:
        """At the end: a scale sent but never reported back is logged as such (not as applied)."""
        for ch in self.nominal:
            if self.sent_ppm[ch] != self.acked_ppm[ch]:
                from ..formatting import ma

                rec.log("warning", device_us, channel=ch,
                        detail=f"{self.label(ch)}: a change to {ma(self.nominal[ch] * self.sent_ppm[ch] // SCALE_ONE)}"
                               " was sent but not acknowledged by the device")

    def _acked(self, ch: int, ppm: int, device_us: int, rec: SessionRecord, detail: str) -> None:
        if ppm == self.acked_ppm[ch]:
            return
        from ..formatting import ma

        old = self.acked[ch]
        new = Fraction(self.nominal[ch] * ppm, SCALE_ONE).__round__()
        self.acked_ppm[ch] = ppm
        self.acked[ch] = new
        rec.log("intensity", device_us, channel=ch, old_ua=old, new_ua=new, scale_ppm=ppm, detail=detail)
        m = self.minimum.get(ch)
        if m is not None and new < m <= old:
            rec.log("deviation", device_us, channel=ch, old_ua=old, new_ua=new,
                    detail=f"{self.label(ch)} set to {ma(new)}, below the minimum of {self.param_of[ch]} "
                           f"({ma(m)} on this channel)")

    def record_into(self, rec: SessionRecord) -> None:
        rec.channel_ua = dict(self.acked)
        rec.intensity_ua = {}
        for name in self.groups:
            v = self.param_level(name)
            if v is not None:
                rec.intensity_ua[name] = int(v)

    # ---- for the display ---------------------------------------------------------------------------
    def param_values(self, which: dict) -> dict:
        out = {}
        for name in self.groups:
            v = self.param_level(name, which)
            if v is not None:
                out[name] = int(v)
        return out


class Dispatcher:
    SLEW_TICK_US = 20_000
    REALTIME_LOOKAHEAD_US = 200_000
    VIRTUAL_LOOKAHEAD_US = 2_000_000
    #: a session that ran to its end but misses more scheduled pulses than this (late, lost, never
    #: delivered) ends "degraded" instead of "completed"
    DEGRADED_MISSING_MAX = 0
    #: while ending, the final report is asked for this often (host time)
    FINAL_STATUS_EVERY_US = 50_000

    def __init__(self, schedule, driver: Driver, clock: Clock, *, lookahead_us: int | None = None,
                 controller: SessionController | None = None, on_event=None, store: RecordStore | None = None,
                 record: SessionRecord | None = None, keep_acks: bool = False, db_interval_s: float = 1.0,
                 progress_interval_us: int = 1_000_000, param_ranges: dict | None = None,
                 start_delay_us: int | None = None, drain_timeout_us: int = 3_000_000,
                 channel_ranges: dict | None = None, observers=(),
                 silence_us: int | None = None, lost_us: int | None = None):
        self.schedule = schedule
        self.driver = driver
        self.clock = clock
        self.realtime = clock.realtime
        if lookahead_us is None:
            # nothing can jitter in virtual time: queue further ahead (still bounded by the device queue)
            # so a long session simulates in fewer host/device round trips
            lookahead_us = self.REALTIME_LOOKAHEAD_US if self.realtime else self.VIRTUAL_LOOKAHEAD_US
        self.lookahead_us = int(lookahead_us)
        self.ctl = controller or SessionController()
        self.on_event = on_event
        self.store = store
        self.rec = record or SessionRecord()
        self.keep_acks = keep_acks
        self.db_interval_s = db_interval_s
        self.progress_interval_us = progress_interval_us
        self.param_ranges = param_ranges
        self.channel_ranges = channel_ranges
        self.start_delay_us = start_delay_us
        self.drain_timeout_us = drain_timeout_us
        self.silence_us = silence_us
        self.lost_us = lost_us
        self.state = "starting"
        self.end_reason: str | None = None
        self._end_detail = ""
        self._estop_flag = False
        # observers see the session start, every block sent and every device message (on the dispatcher's
        # thread); the device log is always kept, so every record can be rebuilt and checked later
        self.device_log = DeviceLog()
        self.observers = [self.device_log, *observers]

    # ---- thread-safe emergency stop ------------------------------------------------------------------
    def emergency_stop_now(self) -> None:
        if self.state in ("ended",):
            return
        self._estop_flag = True
        try:
            with self.driver.lock:
                self.driver.estop()
        except DriverError:
            pass

    # ---- helpers ------------------------------------------------------------------------------------
    def _emit(self, kind: str, detail: str = "") -> None:
        prog = self._progress()
        self.ctl.progress = prog
        ev = Event(kind, prog.session_us, prog, detail)
        if self.on_event is not None:
            self.on_event(ev)

    def _progress(self) -> Progress:
        dev_now = self.driver.device_time_us()
        sched_now = self._sched_now(dev_now)
        seg = ""
        if self._seg_starts:
            i = bisect.bisect_right(self._seg_starts, sched_now) - 1
            if i >= 0:
                seg = self.schedule.segments[i].label
        return Progress(
            state=self.state, elapsed_us=sched_now, remaining_us=max(0, self.schedule.duration_us - sched_now),
            session_us=max(0, dev_now - self.epoch), segment=seg,
            amplitude_ua={c: int(self.last_amp[c]) for c in self.channels},
            delivered={c: int(self.delivered[c]) for c in self.channels},
            intensity_ua=self.intensity.param_values(self.intensity.value),
            target_ua=self.intensity.param_values(self.intensity.target),
            channel_ua=dict(self.intensity.acked), channel_target_ua=dict(self.intensity.target),
            channel_range_ua={c: (0, hi) for c, hi in self.intensity.hi.items()},
            paused_us=self._paused_now(dev_now),
            underruns=self.late, queue_level=self.driver.status().queue_level if self.realtime else 0)

    def _sched_now(self, dev_now: int) -> int:
        if self.state in ("paused",):
            return self.pause_sched
        return max(0, min(self.schedule.duration_us, dev_now - self.offset))

    def _pulse_source(self):
        sched = self.schedule
        if "pulses" in getattr(sched, "__dict__", {}):  # already materialised: stream slices of it
            arr = sched.pulses
            for i in range(0, len(arr), 65536):
                yield arr[i:i + 65536]
        else:
            yield from sched.blocks()

    def _set_buf(self, arr: np.ndarray) -> None:
        self.buf = arr
        self.buf_t = np.ascontiguousarray(arr["t_us"])
        self.buf_pos = 0

    def _next_block(self) -> bool:
        if self.source_done:
            return False
        try:
            self._set_buf(next(self.source))
            return True
        except StopIteration:
            self.source_done = True
            self._set_buf(_EMPTY)
            return False

    def _take(self, limit_sched: int, max_n: int) -> np.ndarray:
        """Up to ``max_n`` unsent pulses with schedule time < limit_sched (in order)."""
        parts = []
        while max_n > 0:
            if self.buf_pos >= len(self.buf):
                if not self._next_block():
                    break
                continue
            t = self.buf_t
            end = len(t) if t[-1] < limit_sched else int(np.searchsorted(t, limit_sched, side="left"))
            end = min(end, self.buf_pos + max_n)
            if end <= self.buf_pos:
                break
            parts.append(self.buf[self.buf_pos:end])
            max_n -= end - self.buf_pos
            self.buf_pos = end
            if self.buf_pos < len(self.buf):
                break
        if not parts:
            return _EMPTY
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def exhausted(self) -> bool:
        while self.buf_pos >= len(self.buf):
            if not self._next_block():
                return True
        return False

    # ---- the session --------------------------------------------------------------------------------
    def run(self) -> SessionRecord:
        drv = self.driver
        prof = drv.capabilities()
        precheck(self.schedule, prof)
        self.channels = sorted({tr.channel for tr in self.schedule.trains} | {c.number for c in self.schedule.channels})
        n = prof.channels + 1
        self.delivered = np.zeros(n, dtype=np.int64)
        self.peak = np.zeros(n, dtype=np.int64)
        self.last_amp = np.zeros(n, dtype=np.int64)
        self.late = 0
        self.acks: list[np.ndarray] = []
        self.intensity = _Intensity(self.schedule, prof, self.param_ranges, self.ctl, self.channel_ranges)
        self._paused_total = 0
        self._paused_since: int | None = None
        self._seg_starts = [s.start_us for s in self.schedule.segments]
        self.source = self._pulse_source()
        self.source_done = False
        self._set_buf(_EMPTY)
        self.inflight: list[tuple[np.ndarray, int]] = []  # (schedule-time pulses, last device time)
        self.dev_state = ev.IDLE
        self.last_report: ev.StatusReport | None = None
        self.ramp_end: int | None = None
        self.pause_sched = 0
        self._acked_last: tuple[int, set] | None = None   # device time of the latest acknowledged pulse, channels
        self._pending_resume = False

        self.scheduled = int(sum(self.schedule.counts().values()))
        self.rec.scheduled_pulses = self.scheduled
        self.link_lost = False
        if self.store is not None:
            # the record exists (database or journal) before any output; a session never runs unrecorded
            self.store.begin(self.rec)
        drv.prepare(self.schedule)
        drv.upload_shapes(self.schedule.shapes)
        if self.start_delay_us is None:
            self.start_delay_us = min(self.lookahead_us, 100_000) if self.realtime else 0
        self.epoch = drv.device_time_us() + self.start_delay_us
        self.offset = self.epoch
        drv.start(self.epoch)
        self.rec.epoch_us = self.epoch
        self.rec.log("start", self.epoch)
        for wmsg in self.rec.warnings:
            self.rec.log("warning", self.epoch, detail=str(wmsg))
        for ob in self.observers:
            ob.on_start(self)
        self.ctl._attach(self)
        self.state = "running"
        self._emit("started")
        try:
            self._loop()
        except DeviceDisconnected as exc:
            self._finish("disconnected", str(exc))
        except DeviceTimeout as exc:
            self._safe_estop()
            self._finish("disconnected", str(exc))
        except DriverError as exc:
            self._safe_estop()
            self._finish("fault", str(exc))
        except BaseException:
            self._safe_estop()
            self._finish("interrupted", "host error")
            raise
        finally:
            self.ctl._detach()
        return self.rec

    def _safe_estop(self) -> None:
        try:
            self.driver.estop()
        except Exception:
            pass

    def _loop(self) -> None:
        drv, clock, ctl = self.driver, self.clock, self.ctl
        # real time: wake 4x per look-ahead; virtual time: once per look-ahead (the device plays pulses
        # at t <= now when polled, and pulses at exactly now are sent before it next moves on)
        prof = drv.capabilities()
        tick = max(1000, min(self.lookahead_us // 4, 50_000)) if self.realtime else \
            max(1000, min(self.lookahead_us, prof.watchdog_ms * 800))  # talk before the watchdog bites
        if drv.poll_interval_us:
            tick = max(1000, min(tick, int(drv.poll_interval_us)))
        keepalive_us = max(1000, min(prof.watchdog_ms * 1000 // 4, 100_000))
        # a silent device: ask for STATUS after silence_us, declare the link lost after lost_us
        silence_us = self.silence_us or max(tick, prof.watchdog_ms * 500)
        lost_us = self.lost_us or max(4 * silence_us, prof.watchdog_ms * 2000, 1_000_000)
        last_heard = clock.now_us()
        next_status_req = 0
        last_tx_host = clock.now_us()
        last_slew_dev = None
        next_progress = self.epoch
        last_db = time.monotonic()
        drain_deadline = None
        while True:
            ctl._settle_signals()
            # 1. what the device says (this also lets an emulator catch up to "now")
            events = drv.poll()
            host_now = clock.now_us()
            if events:
                last_heard = host_now
            for m in events:
                self._handle(m)
            silent = host_now - last_heard
            if silent >= silence_us and host_now >= next_status_req:
                drv.request_status()   # if our frames were lost, this also reveals the gap to the device
                next_status_req = host_now + silence_us
            if silent >= lost_us and not self.link_lost:
                self._lose_link(silent)
            dev_now = drv.device_time_us()
            session_t = dev_now - self.epoch
            # 2. controls
            if self._estop_flag and self.end_reason is None:
                self._begin_end("emergency_stop")
            for action, args in ctl._due(session_t):
                if action == "stall":
                    clock.sleep(int(args[0]) if args else prof.watchdog_ms * 2000)
                    continue
                self._control(action, args)
            if self.intensity.slewing and self.end_reason is None and self.state in ("running", "paused", "pausing"):
                if last_slew_dev is None or dev_now - last_slew_dev >= self.SLEW_TICK_US:
                    dt = self.SLEW_TICK_US if last_slew_dev is None else dev_now - last_slew_dev
                    for ch, factor in self.intensity.step(dt).items():
                        drv.set_scale(ch, factor)
                    last_slew_dev = dev_now
                    self._emit("intensity")
            elif not self.intensity.slewing:
                last_slew_dev = None
            # a pause past the pause limit ends the session (nothing may ever resume it)
            if (self.state == "paused" and self.end_reason is None and self._paused_since is not None
                    and dev_now - self._paused_since >= ctl.max_pause_us):
                self._pause_limit(dev_now)
            # 3. stream
            sent = 0
            queue_wake = None
            if self.end_reason is None and self.state in ("running", "pausing", "stopping"):
                limit_dev = dev_now + self.lookahead_us
                if self.ramp_end is not None and self.state in ("pausing", "stopping"):
                    limit_dev = min(limit_dev, self.ramp_end)
                free = drv.queue_free()
                if free > 0:
                    part = self._take(limit_dev - self.offset, free)
                    if len(part):
                        out = part.copy()
                        out["t_us"] += self.offset
                        first = drv.send_block(out)
                        for ob in self.observers:
                            ob.on_sent(self, first, part, self.offset)
                        self.inflight.append((part, int(out["t_us"][-1])))
                        sent = len(part)
                        if sent == free:
                            # limited by the device queue, not the look-ahead: come back when about
                            # half of what was just queued has played
                            queue_wake = int(out["t_us"][sent // 2])
                # natural end of the session
                if (self.state == "running" and self.exhausted and dev_now >= self.offset + self.schedule.duration_us):
                    self._begin_end("completed")
            if sent:
                last_tx_host = clock.now_us()
            elif clock.now_us() - last_tx_host >= keepalive_us:
                drv.keepalive()
                last_tx_host = clock.now_us()
            # 4. ending: wait for the device's final report and every acknowledgement (bounded)
            if self.end_reason is not None:
                if drain_deadline is None:
                    drain_deadline = clock.now_us() + self.drain_timeout_us
                    next_final_req = clock.now_us() + self.FINAL_STATUS_EVERY_US
                st = self.last_report
                if st is not None and st.final and int(self.delivered.sum()) >= st.delivered_total:
                    break
                if clock.now_us() >= drain_deadline:
                    break
                if clock.now_us() >= next_final_req and not self.link_lost:
                    drv.request_status()
                    next_final_req = clock.now_us() + self.FINAL_STATUS_EVERY_US
                clock.sleep(1000 if not self.realtime else 2000, ctl.wake)
                continue
            # 5. progress, records
            if dev_now >= next_progress:
                self._emit("progress")
                next_progress = dev_now + self.progress_interval_us
            if self.store is not None and time.monotonic() - last_db >= self.db_interval_s:
                self._update_record(dev_now)
                self.store.update_progress(self.rec)
                last_db = time.monotonic()
            # 6. sleep until the next thing to do
            wake_dev = dev_now + tick
            nxt = ctl._next_scheduled_us()
            if nxt is not None:
                wake_dev = min(wake_dev, self.epoch + nxt)
            if self.intensity.slewing:
                wake_dev = min(wake_dev, dev_now + self.SLEW_TICK_US)
            if silent >= silence_us:
                wake_dev = min(wake_dev, dev_now + max(1000, next_status_req - host_now))
            if queue_wake is not None:
                wake_dev = min(wake_dev, max(dev_now + 1, queue_wake))
            if self.state == "paused" and self._paused_since is not None:
                wake_dev = min(wake_dev, max(dev_now + 1, self._paused_since + ctl.max_pause_us))
            if self.state == "running" and not self.source_done:
                pass
            elif self.state == "running":
                wake_dev = min(wake_dev, max(dev_now + 1, self.offset + self.schedule.duration_us))
            if self._estop_flag or ctl._commands:
                continue
            clock.sleep_until(clock.now_us() + max(0, wake_dev - dev_now), ctl.wake)
        self._finish(self.end_reason or "interrupted", self._end_detail)

    # ---- messages -----------------------------------------------------------------------------------
    def _handle(self, m) -> None:
        for ob in self.observers:
            ob.on_message(self, m)
        if isinstance(m, ev.PulsesDelivered):
            r = m.records
            if len(r):
                ch = r["channel"]
                amp = r["amplitude_ua"].astype(np.int64)
                self.delivered += np.bincount(ch, minlength=len(self.delivered))[:len(self.delivered)]
                np.maximum.at(self.peak, ch, np.abs(amp))
                self.last_amp[ch] = amp
                t_last = int(r["t_us"][-1])
                self._acked_last = (t_last, set(ch[r["t_us"] == t_last].tolist()))
                if self.keep_acks:
                    self.acks.append(r.copy())
            if m.late_total is not None and m.late_total != self.late:
                if m.late_total > self.late:
                    self._emit("underrun", f"{m.late_total - self.late} pulse(s) reached the device too late")
                    self.rec.log("underrun", m.device_t_us,
                                 detail=f"{m.late_total - self.late} pulse(s) reached the device too late")
                self.late = m.late_total
            # forget in-flight chunks the device has certainly finished with
            while self.inflight and self.inflight[0][1] < m.device_t_us:
                self.inflight.pop(0)
        elif isinstance(m, ev.StatusReport):
            self.last_report = m
            self.intensity.acknowledge(m.scale_ppm, m.device_t_us, self.rec)
            self.late = max(self.late, m.late_total)
            self.dev_state = m.state
            if m.state in (ev.PAUSING, ev.STOPPING):
                self.ramp_end = m.ramp_end_us
            elif m.state == ev.PAUSED and self.state == "pausing":
                self._paused(m.ramp_end_us)
            elif m.state == ev.STOPPED and self.end_reason is None and self.state == "stopping":
                self._begin_end("stopped")
            elif m.state == ev.ESTOPPED and self.end_reason is None:
                self._begin_end("emergency_stop")
            elif m.state == ev.FAULTED and self.end_reason is None:
                self._begin_end("fault")
        elif isinstance(m, ev.FaultReport):
            self.rec.faults.append(m.describe())
            self.rec.log("fault", m.device_t_us, channel=m.channel or None, detail=m.describe())
            self._emit("fault", m.describe())
            if self.end_reason in (None, "completed") or (self.end_reason == "disconnected" and self.link_lost):
                self.driver.estop()  # belt and braces: every channel off
                self.end_reason = None
                self._begin_end("fault")
        elif isinstance(m, ev.DeviceLost):
            raise DeviceDisconnected(m.reason)

    def _lose_link(self, silent_us: int) -> None:
        """The device has said nothing for ``silent_us`` despite STATUS requests: the link is lost."""
        self.link_lost = True
        self._safe_estop()
        msg = (f"no answer from the device for {silent_us / 1e6:.2f} s: link lost (its watchdog switches the "
               f"output off)")
        self.rec.faults.append(msg)
        self._emit("fault", msg)
        if self.end_reason in (None, "completed"):
            self.end_reason = None
            self._begin_end("disconnected")

    def _begin_end(self, reason: str) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self.state = "ending"
        if reason == "emergency_stop":
            self.rec.log("emergency_stop", self._dev_now_safe())
        if reason in ("completed",):
            self.driver.stop(0)

    def _paused(self, pause_dev: int) -> None:
        """The device finished its pause ramp at ``pause_dev``: put back what it did not play."""
        self.pause_sched = max(0, pause_dev - self.offset)
        self._paused_since = pause_dev
        self.rec.log("pause", pause_dev)
        # a pulse at the pause instant itself that the device delivered (a 0 ms ramp) is not sent again
        done = self._acked_last[1] if self._acked_last is not None and self._acked_last[0] == pause_dev else set()
        resend = [p[(p["t_us"] > self.pause_sched)
                    | ((p["t_us"] == self.pause_sched) & ~np.isin(p["channel"], list(done)))]
                  for p, _ in self.inflight]
        resend.append(self.buf[self.buf_pos:])
        resend = [r for r in resend if len(r)]
        self._set_buf(np.concatenate(resend) if resend else _EMPTY)
        self.inflight = []
        self.ramp_end = None
        self.state = "paused"
        self._emit("paused")
        if self._pending_resume:
            self._pending_resume = False
            self._control("resume", ())

    def _pause_limit(self, dev_now: int) -> None:
        """The session stayed paused for the pause limit: end it as stopped (output is already 0)."""
        limit = self.ctl.max_pause_us
        text = (f"paused for {limit / 1e6:g} s without a resume: the pause limit ended the session "
                f"(output was already off)")
        self._end_detail = text
        self._paused_total += max(0, dev_now - self._paused_since)   # paused until the limit ended it
        self._paused_since = None
        self.rec.log("stop", dev_now, detail=text)
        self._emit("stopping", text)
        self.driver.stop(0)
        self.state = "stopping"

    def _control(self, action: str, args) -> None:
        if self.end_reason is not None:
            return
        drv, ctl = self.driver, self.ctl
        if action in ("estop", "emergency_stop"):
            if not self._estop_flag:
                self._estop_flag = True
                drv.estop()
            self._begin_end("emergency_stop")
        elif action == "stop":
            self.rec.log("stop", self._dev_now_safe(), detail=f"ramp down {ctl.stop_ramp_ms} ms"
                         if self.state in ("running", "pausing") else "while paused")
            if self.state in ("running", "pausing"):
                drv.stop(ctl.stop_ramp_ms * 1000)
                self.state = "stopping"
                self._emit("stopping")
            elif self.state == "paused":
                drv.stop(0)
                self.state = "stopping"
        elif action == "pause":
            if self.state == "running":
                drv.pause(ctl.pause_ramp_ms * 1000)
                self.state = "pausing"
        elif action == "resume":
            if self.state == "pausing":
                self._pending_resume = True
            elif self.state == "paused":
                dev_now = drv.device_time_us()
                lead = min(self.lookahead_us // 2, 50_000) if self.realtime else 0
                at = dev_now + lead
                paused = at - (self.offset + self.pause_sched)
                self._paused_total += paused
                self._paused_since = None
                self.rec.log("resume", at, duration_us=paused)
                self.offset = at - self.pause_sched
                drv.resume(at, ctl.resume_ramp_ms * 1000)
                self.state = "running"
                self._emit("resumed")
        elif action in ("intensity_up", "intensity_down", "set_intensity"):
            try:
                texts = self.intensity.command(action, args)
            except (StimscriptError, TypeError, ValueError) as exc:   # a bad request changes nothing
                texts = [f"intensity not changed: {exc}"]
            for text in texts:
                self._emit("intensity", text)

    # ---- the record ---------------------------------------------------------------------------------
    def _update_record(self, dev_now: int) -> None:
        rec = self.rec
        rec.delivered = {c: int(self.delivered[c]) for c in self.channels}
        rec.peak_ua = {c: int(self.peak[c]) for c in self.channels}
        rec.underruns = int(self.late)
        rec.elapsed_us = int(self._sched_now(dev_now))
        self.intensity.record_into(rec)
        rec.stim_us = rec.elapsed_us
        rec.paused_us = self._paused_now(dev_now)
        rec.device_log = self.device_log.as_dict()

    def _paused_now(self, dev_now: int) -> int:
        """Time spent paused so far (from the output reaching 0 to the resume)."""
        if self._paused_since is None:
            return self._paused_total
        return self._paused_total + max(0, dev_now - self._paused_since)

    def _dev_now_safe(self) -> int:
        try:
            return self.driver.device_time_us()
        except Exception:
            return self.epoch

    def _settle(self, reason: str, detail: str) -> tuple[str, str, list[str]]:
        """The end reason and counts the device's final report supports -> (reason, detail, notes)."""
        rep = self.last_report
        acked = int(self.delivered.sum())
        notes: list[str] = []
        if rep is not None and rep.final:
            self.late = max(self.late, rep.late_total)
            if rep.delivered_total > acked:
                missing = rep.delivered_total - acked
                if rep.delivered:
                    for ch, n in rep.delivered.items():
                        if 0 < ch < len(self.delivered):
                            self.delivered[ch] = max(self.delivered[ch], n)
                    for ch, a in rep.peak_ua.items():
                        if 0 < ch < len(self.peak):
                            self.peak[ch] = max(self.peak[ch], a)
                    notes.append(f"{missing} delivered pulse(s) were never acknowledged one by one: the counts "
                                 f"are the device's final report")
                else:
                    notes.append(f"the device reports {rep.delivered_total} pulses delivered, {missing} more than "
                                 f"it acknowledged (the per-channel counts are the acknowledged ones)")
        elif reason == "completed":
            reason = "disconnected"
            detail = (f"the device did not confirm the end of the session (no final report within "
                      f"{self.drain_timeout_us / 1e6:g} s)")
        elif reason not in ("disconnected", "interrupted"):
            notes.append("the device did not confirm the end of the session (no final report): the counts are "
                         "the acknowledged ones")
        if reason == "completed":
            delivered, silent = rep.delivered_total, rep.silent_total
            missing = self.scheduled - delivered - silent
            if missing > self.DEGRADED_MISSING_MAX or missing < 0:
                reason = "degraded"
                parts = [f"{delivered} of {self.scheduled} scheduled pulses delivered"]
                if silent:
                    parts.append(f"{silent} skipped at zero amplitude")
                if self.late:
                    parts.append(f"{self.late} reached the device too late (underruns)")
                if missing - self.late > 0:
                    parts.append(f"{missing - self.late} lost")
                elif missing < 0:
                    parts.append(f"{-missing} more than scheduled")
                detail = "; ".join(parts)
        return reason, detail, notes

    def _finish(self, reason: str, detail: str) -> None:
        self.state = "ended"
        rec = self.rec
        try:
            dev_now = self.driver.device_time_us()
        except Exception:
            dev_now = 0
        reason, detail, notes = self._settle(reason, detail)
        self._update_record(dev_now)
        if reason in ("completed", "degraded"):
            rec.elapsed_us = rec.stim_us = self.schedule.duration_us
        rec.end_reason = reason
        self.intensity.flush_unacknowledged(dev_now, rec)
        rec.log("end", dev_now, detail=reason + (f": {detail}" if detail and reason != "completed" else ""))
        if detail and reason not in ("completed", "degraded", "stopped"):
            rec.faults.append(detail) if detail not in rec.faults else None
        rec.end_detail = "; ".join(([detail] if detail else []) + notes)
        try:
            rec.link = dict(self.driver.status().link)
        except Exception:
            pass
        if self.keep_acks:
            rec.acknowledged = np.concatenate(self.acks) if self.acks else np.zeros(0, dtype=ev.DELIVERY_DTYPE)
        if self.store is not None:
            self.store.finish(rec)
        for ob in self.observers:
            ob.on_end(self, rec)
        self._emit("ended", reason)
