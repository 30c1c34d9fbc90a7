"""The streaming dispatcher: a Schedule in, a SessionRecord out.

The device owns the clock. The dispatcher maps schedule time to device time (``dev_t = sched_t + offset``;
``offset`` is the START epoch, moved on by every pause), keeps the device queue filled up to ``lookahead``
ahead of the device clock and within the queue's free space (flow control by the queue level the device
reports), reads back per-pulse acknowledgements, applies controls, and ends with one of the end reasons
"completed" | "stopped" | "emergency_stop" | "fault" | "disconnected" | "interrupted". Host jitter only
changes *when* pulses are sent, never their device-time stamps; a pulse that reaches the device after its
time is dropped by the device and counted as an underrun.
"""
from __future__ import annotations

import bisect
import time
from fractions import Fraction

import numpy as np

from ..compiler.ir import PULSE_DTYPE
from ..drivers import events as ev
from ..drivers.base import DeviceDisconnected, Driver
from ..errors import DeviceTimeout, DriverError, SafetyError, StimscriptError
from .clock import Clock, RealClock, VirtualClock
from .controls import Event, Progress, SessionController
from .devicelog import DeviceLog
from .records import RecordStore, SessionRecord

_EMPTY = np.zeros(0, dtype=PULSE_DTYPE)


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
    """Slew-limited intensity per param, applied through the device's per-channel scale registers."""

    def __init__(self, schedule, profile, param_ranges: dict | None, controller: SessionController):
        self.ctl = controller
        self.base: dict[str, int] = {}
        self.channels: dict[str, list[int]] = {}
        self.range: dict[str, tuple[int, int]] = {}
        chan_amp = {}
        for tr in schedule.trains:
            chan_amp[tr.channel] = max(chan_amp.get(tr.channel, 0), -(-tr.amp_num // tr.amp_den))
        ranges = dict(getattr(schedule, "param_ranges", None) or {})
        ranges.update(param_ranges or {})
        for info in schedule.channels:
            name = info.param
            if not name:
                continue
            self.channels.setdefault(name, []).append(info.number)
            if name not in self.base:
                pv = (schedule.params or {}).get(name)
                base = None
                if pv is not None:
                    try:
                        base = _to_ua(pv)
                    except (TypeError, ValueError, StimscriptError):
                        base = None
                self.base[name] = base if base else max(1, info.amplitude_ua or chan_amp.get(info.number, 1))
        for name, base in self.base.items():
            lo, hi = 0, base
            if name in ranges:
                r = ranges[name]
                r = getattr(r, "range", r)
                lo, hi = _to_ua(r[0]), _to_ua(r[1])
            # never beyond what the device can deliver on any channel this param drives
            for ch in self.channels[name]:
                peak = chan_amp.get(ch, 0)
                if peak > 0:
                    hi = min(hi, base * profile.max_current_ua // peak)
            self.range[name] = (lo, max(lo, hi))
        self.value = dict(self.base)     # applied (µA)
        self.target = dict(self.base)    # requested (µA)

    def _names(self, param):
        if param is None:
            return list(self.base)
        if param not in self.base:
            raise StimscriptError(f"no channel is driven by a param named {param!r} "
                                  f"(params: {', '.join(self.base) or 'none'})")
        return [param]

    def command(self, action: str, args) -> None:
        if action == "set_intensity":
            value, param = (list(args) + [None, None])[:2]
            for n in self._names(param):
                self.target[n] = self._clamp(n, _to_ua(value))
        else:
            param, step = (list(args) + [None, None])[:2]
            step = self.ctl.intensity_step_ua if step is None else int(step)
            sign = 1 if action == "intensity_up" else -1
            for n in self._names(param):
                self.target[n] = self._clamp(n, self.target[n] + sign * step)

    def _clamp(self, name: str, v: int) -> int:
        lo, hi = self.range[name]
        return max(lo, min(hi, v))

    @property
    def slewing(self) -> bool:
        return self.value != self.target

    def step(self, dt_us: int) -> dict[int, Fraction]:
        """Move applied values toward their targets; -> {channel: scale factor} to send (exact)."""
        out = {}
        max_step = max(1, self.ctl.slew_ua_per_s * dt_us // 1_000_000)
        for n in self.base:
            cur, tgt = self.value[n], self.target[n]
            if cur == tgt:
                continue
            cur = tgt if abs(tgt - cur) <= max_step else cur + (max_step if tgt > cur else -max_step)
            self.value[n] = cur
            factor = Fraction(cur, self.base[n])
            for ch in self.channels[n]:
                out[ch] = factor
        return out


class Dispatcher:
    SLEW_TICK_US = 20_000
    REALTIME_LOOKAHEAD_US = 200_000
    VIRTUAL_LOOKAHEAD_US = 2_000_000

    def __init__(self, schedule, driver: Driver, clock: Clock, *, lookahead_us: int | None = None,
                 controller: SessionController | None = None, on_event=None, store: RecordStore | None = None,
                 record: SessionRecord | None = None, keep_acks: bool = False, db_interval_s: float = 1.0,
                 progress_interval_us: int = 1_000_000, param_ranges: dict | None = None,
                 start_delay_us: int | None = None, drain_timeout_us: int = 3_000_000, observers=()):
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
        self.start_delay_us = start_delay_us
        self.drain_timeout_us = drain_timeout_us
        self.state = "starting"
        self.end_reason: str | None = None
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
            intensity_ua=dict(self.intensity.value), target_ua=dict(self.intensity.target),
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
        self.intensity = _Intensity(self.schedule, prof, self.param_ranges, self.ctl)
        self._seg_starts = [s.start_us for s in self.schedule.segments]
        self.source = self._pulse_source()
        self.source_done = False
        self._set_buf(_EMPTY)
        self.inflight: list[tuple[np.ndarray, int]] = []  # (schedule-time pulses, last device time)
        self.dev_state = ev.IDLE
        self.last_report: ev.StatusReport | None = None
        self.ramp_end: int | None = None
        self.pause_sched = 0
        self._pending_resume = False

        drv.prepare(self.schedule)
        drv.upload_shapes(self.schedule.shapes)
        if self.start_delay_us is None:
            self.start_delay_us = min(self.lookahead_us, 100_000) if self.realtime else 0
        self.epoch = drv.device_time_us() + self.start_delay_us
        self.offset = self.epoch
        drv.start(self.epoch)
        self.rec.epoch_us = self.epoch
        for ob in self.observers:
            ob.on_start(self)
        if self.store is not None:
            self.store.begin(self.rec)
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
        last_tx_host = clock.now_us()
        last_slew_dev = None
        next_progress = self.epoch
        last_db = time.monotonic()
        drain_deadline = None
        while True:
            ctl._settle_signals()
            # 1. what the device says (this also lets an emulator catch up to "now")
            for m in drv.poll():
                self._handle(m)
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
            # 4. ending: wait for the device's final status and every acknowledgement
            if self.end_reason is not None:
                if drain_deadline is None:
                    drain_deadline = clock.now_us() + self.drain_timeout_us
                st = self.last_report
                if st is not None and st.final and int(self.delivered.sum()) >= st.delivered_total:
                    break
                if clock.now_us() >= drain_deadline:
                    break
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
            if queue_wake is not None:
                wake_dev = min(wake_dev, max(dev_now + 1, queue_wake))
            if self.state == "running" and not self.source_done:
                pass
            elif self.state == "running":
                wake_dev = min(wake_dev, max(dev_now + 1, self.offset + self.schedule.duration_us))
            if self._estop_flag or ctl._commands:
                continue
            clock.sleep_until(clock.now_us() + max(0, wake_dev - dev_now), ctl.wake)
        self._finish(self.end_reason or "interrupted", "")

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
                if self.keep_acks:
                    self.acks.append(r.copy())
            if m.late_total is not None and m.late_total != self.late:
                if m.late_total > self.late:
                    self._emit("underrun", f"{m.late_total - self.late} pulse(s) reached the device too late")
                self.late = m.late_total
            # forget in-flight chunks the device has certainly finished with
            while self.inflight and self.inflight[0][1] < m.device_t_us:
                self.inflight.pop(0)
        elif isinstance(m, ev.StatusReport):
            self.last_report = m
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
            self._emit("fault", m.describe())
            if self.end_reason is None or self.end_reason == "completed":
                self.driver.estop()  # belt and braces: every channel off
                self.end_reason = None
                self._begin_end("fault")
        elif isinstance(m, ev.DeviceLost):
            raise DeviceDisconnected(m.reason)

    def _begin_end(self, reason: str) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self.state = "ending"
        if reason in ("completed",):
            self.driver.stop(0)

    def _paused(self, pause_dev: int) -> None:
        """The device finished its pause ramp at ``pause_dev``: put back what it did not play."""
        self.pause_sched = max(0, pause_dev - self.offset)
        resend = [p[p["t_us"] >= self.pause_sched] for p, _ in self.inflight]
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
                self.offset = at - self.pause_sched
                drv.resume(at, ctl.resume_ramp_ms * 1000)
                self.state = "running"
                self._emit("resumed")
        elif action in ("intensity_up", "intensity_down", "set_intensity"):
            self.intensity.command(action, args)

    # ---- the record ---------------------------------------------------------------------------------
    def _update_record(self, dev_now: int) -> None:
        rec = self.rec
        rec.delivered = {c: int(self.delivered[c]) for c in self.channels}
        rec.peak_ua = {c: int(self.peak[c]) for c in self.channels}
        rec.underruns = int(self.late)
        rec.elapsed_us = int(self._sched_now(dev_now))
        rec.intensity_ua = {name: int(v) for name, v in self.intensity.value.items()}
        rec.device_log = self.device_log.as_dict()

    def _finish(self, reason: str, detail: str) -> None:
        self.state = "ended"
        rec = self.rec
        try:
            dev_now = self.driver.device_time_us()
        except Exception:
            dev_now = 0
        self._update_record(dev_now)
        if reason == "completed":
            rec.elapsed_us = self.schedule.duration_us
        rec.end_reason = reason
        if detail and reason != "completed":
            rec.faults.append(detail) if detail not in rec.faults else None
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
