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

This module is the session state machine; which pulses go next (and which come back after a pause) is
runtime/pulsefeed.py, the live intensity per channel is runtime/intensity.py.
"""
from __future__ import annotations

import bisect
import math
import time
from fractions import Fraction
from typing import Protocol

import numpy as np

from ..drivers import events as ev
from ..drivers.base import DeviceDisconnected, Driver
from ..errors import DeviceTimeout, DriverError, SafetyError, StimscriptError
from ..clock import Clock
from .controls import Event, Progress, SessionController
from .devicelog import DeviceLog
from .intensity import LiveIntensity
from .pulsefeed import PulseFeed
from .records import SessionRecord


_new_progress = object.__new__


class RecordSink(Protocol):
    """Where the dispatcher keeps the record as the session goes: a RecordStore, or the RecordWriter thread
    in front of one (runtime/recordwriter.py)."""

    def begin(self, rec: SessionRecord) -> int | None: ...

    def update_progress(self, rec: SessionRecord) -> None: ...

    def finish(self, rec: SessionRecord) -> None: ...


def precheck(schedule, profile) -> None:
    """Refuse a schedule the device cannot play (the compiler checks this too; drivers must not trust it)."""
    # the largest |relative amplitude| of each shape: a phase may carry more current than the first one
    gain = [max((abs(rel) for _, rel in shape.phases), default=0.0) for shape in schedule.shapes]
    for tr in schedule.trains:
        if not 1 <= tr.channel <= profile.channels:
            raise SafetyError(f"channel {tr.channel} does not exist on {profile.name} "
                              f"({profile.channels} channels)", code="S005")
        amp = -(-tr.amp_num // tr.amp_den)
        peak = math.ceil(Fraction(tr.amp_num, tr.amp_den) * Fraction(gain[tr.shape]))
        if max(amp, peak) > profile.max_current_ua:
            what = f"{amp} µA" if peak <= amp else f"peak current {peak} µA (amplitude {amp} µA in a phase)"
            raise SafetyError(f"channel {tr.channel}: {what} exceeds the device maximum "
                              f"{profile.max_current_ua} µA", code="S002")
        if tr.period_num * profile.max_rate_hz < tr.period_den * 1_000_000:
            raise SafetyError(f"channel {tr.channel}: slot rate above the device maximum {profile.max_rate_hz} Hz",
                              code="S004")
    for i, shape in enumerate(schedule.shapes):
        for dur, rel in shape.phases:
            if rel != 0 and not profile.min_phase_us <= dur <= profile.max_phase_us:
                raise SafetyError(f"pulse shape {i}: a {dur} µs phase is outside the device's "
                                  f"{profile.min_phase_us}..{profile.max_phase_us} µs", code="S003")


class Dispatcher:
    SLEW_TICK_US = 20_000
    REALTIME_LOOKAHEAD_US = 200_000
    VIRTUAL_LOOKAHEAD_US = 4_000_000
    #: a session that ran to its end but misses more scheduled pulses than this (late, lost, never
    #: delivered) ends "degraded" instead of "completed"
    DEGRADED_MISSING_MAX = 0
    #: while ending, the final report is asked for this often (host time)
    FINAL_STATUS_EVERY_US = 50_000
    #: acknowledgements are counted per channel at least every COUNT_BATCH pulses (and whenever read)
    COUNT_BATCH = 16_384

    def __init__(self, schedule, driver: Driver, clock: Clock, *, lookahead_us: int | None = None,
                 controller: SessionController | None = None, on_event=None, store: RecordSink | None = None,
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
        #: the per-channel last amplitude and delivered count of the latest progress snapshot (None: recount)
        self._progress_counts: tuple[dict, dict] | None = None
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
        if self.on_event is not None:
            self.on_event(Event(kind, prog.session_us, prog, detail))

    def _progress(self) -> Progress:
        self._count_acks()
        dev_now = self.driver.device_time_us()
        sched_now = self._sched_now(dev_now)
        seg = ""
        if self._seg_starts:
            i = bisect.bisect_right(self._seg_starts, sched_now) - 1
            if i >= 0:
                seg = self.schedule.segments[i].label
        counts = self._progress_counts
        if counts is None:   # acknowledgements were counted since the last snapshot
            chans = self.channels
            counts = (dict(zip(chans, self.last_amp[self._chan_idx].tolist())),
                      dict(zip(chans, self.delivered[self._chan_idx].tolist())))
            self._progress_counts = counts
        it = self.intensity
        value = it.param_values(it.value)
        # made without the dataclass __init__ (a snapshot every progress interval): every field is set here
        prog = _new_progress(Progress)
        prog.__dict__.update(
            state=self.state, elapsed_us=sched_now, remaining_us=max(0, self.schedule.duration_us - sched_now),
            session_us=max(0, dev_now - self.epoch), segment=seg,
            amplitude_ua=dict(counts[0]), delivered=dict(counts[1]),
            intensity_ua=value,
            target_ua=dict(value) if it.value == it.target else it.param_values(it.target),
            underruns=self.late, queue_level=self.driver.status().queue_level if self.realtime else 0,
            channel_ua=dict(it.acked), channel_target_ua=dict(it.target),
            channel_range_ua={c: (0, hi) for c, hi in it.hi.items()},
            paused_us=self._paused_now(dev_now))
        return prog

    def _sched_now(self, dev_now: int) -> int:
        if self.state in ("paused",):
            return self.pause_sched
        return max(0, min(self.schedule.duration_us, dev_now - self.offset))

    # ---- the session --------------------------------------------------------------------------------
    def run(self) -> SessionRecord:
        drv = self.driver
        prof = drv.capabilities()
        precheck(self.schedule, prof)
        self.channels = sorted({tr.channel for tr in self.schedule.trains} | {c.number for c in self.schedule.channels})
        self._chan_idx = np.array(self.channels, dtype=np.intp)
        self._progress_counts = None
        n = prof.channels + 1
        self.delivered = np.zeros(n, dtype=np.int64)
        self.peak = np.zeros(n, dtype=np.int64)
        self.last_amp = np.zeros(n, dtype=np.int64)
        self.late = 0
        self.acks: list[np.ndarray] = []
        self.acked_total = 0
        self._uncounted: list[np.ndarray] = []    # acknowledgements not yet in delivered/last_amp
        self._uncounted_n = 0
        self._unpeaked: list[np.ndarray] = []     # counted, not yet in peak (_count_peaks: when read)
        self._unpeaked_n = 0
        self.intensity = LiveIntensity(self.schedule, prof, self.param_ranges, self.ctl, self.channel_ranges)
        self._paused_total = 0
        self._paused_since: int | None = None
        self._seg_starts = [s.start_us for s in self.schedule.segments]
        self.feed = PulseFeed(self.schedule)
        self._queued_until = -(1 << 62)   # device time up to which the pulses have been taken (sent)
        self.last_report: ev.StatusReport | None = None
        self.ramp_end: int | None = None
        self.pause_sched = 0
        self._acked_last_rec: np.ndarray | None = None   # the acknowledgements it is read from (_count_acks)
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

    #: consecutive lost host frames a healthy virtual-time run survives; None: as many as the real-time cadence
    #: survives, with the same cadence (see :meth:`frame_loss_budget`); 0 turns the fill frames off (the
    #: virtual-time cadence before they existed: one lost frame could stop the device)
    LOST_FRAMES_TOLERATED: int | None = None

    #: in virtual time, a wake's own KEEPALIVE goes out as the first frame of the fill train that follows it
    #: (one driver call, one write), not alone: the same frames at the same times in the same order (False:
    #: alone, the reference the tests compare with)
    MERGE_KEEPALIVE = True

    def frame_loss_budget(self, watchdog_us: int, keepalive_us: int) -> tuple[int, int]:
        """-> (n, gap): how many consecutive host frames may be lost without the device's watchdog stopping a
        healthy session, and the longest gap between two host frames in virtual time that guarantees it.

        In real time the host sends a frame at least every ``keepalive_us`` (a KEEPALIVE when nothing else
        went out): after the frame at t, losing the next n leaves the device without a frame until
        t + (n + 1) · keepalive_us, and the watchdog stops the output at t + watchdog (a frame arriving at that
        very instant is too late), so the real-time cadence survives n = (watchdog − 1) // keepalive_us − 1
        lost frames: 3 on the loopback's 500 ms watchdog (frames 100 ms apart; a fourth lost frame makes the
        silence 500 ms). Virtual time keeps the same cadence between its wakes, hence the same n and the same
        longest silence it survives (400 ms). An explicit ``LOST_FRAMES_TOLERATED`` n spaces the frames
        (watchdog − 1) // (n + 1) apart instead."""
        n = self.LOST_FRAMES_TOLERATED
        if n is None:
            return max(0, (watchdog_us - 1) // keepalive_us - 1), keepalive_us
        return n, max(1000, (watchdog_us - 1) // (n + 1))

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
            max(1000, min(self.lookahead_us, prof.watchdog_ms * 900))  # talk before the watchdog bites (no jitter)
        if drv.poll_interval_us:
            tick = max(1000, min(tick, int(drv.poll_interval_us)))
        keepalive_us = max(1000, min(prof.watchdog_ms * 1000 // 4, 100_000))
        # the device's watchdog must survive as many lost host frames in virtual time as in real time: between
        # wakes the host fills in KEEPALIVE frames so that no two of its frames are more than fill_gap apart
        tolerated, fill_gap = self.frame_loss_budget(prof.watchdog_ms * 1000, keepalive_us)
        # (a host-timed driver, which sets its own poll interval, talks to its device on its own at every poll)
        fill = not self.realtime and tolerated > 0 and not drv.poll_interval_us
        #: a wake's own KEEPALIVE joins the fill train that follows it (one write instead of two; see MERGE_KEEPALIVE)
        merge = fill and self.MERGE_KEEPALIVE
        keepalive_at: int | None = None   # host time of a KEEPALIVE decided but not yet handed to the driver
        # a silent device: ask for STATUS after silence_us, declare the link lost after lost_us
        silence_us = self.silence_us or max(tick, prof.watchdog_ms * 500)
        lost_us = self.lost_us or max(4 * silence_us, prof.watchdog_ms * 2000, 1_000_000)
        last_heard = clock.now_us()
        next_status_req = 0
        last_tx_host = clock.now_us()
        last_frame_host = last_tx_host   # the latest frame the host sent, fill frames included
        last_slew_dev = None
        next_progress = self.epoch
        last_db = time.monotonic()
        drain_deadline = None
        # (locals: the loop runs once per wake, thousands of times in a long virtual-time session)
        now_us = clock.now_us
        poll = drv.poll
        device_time_us = drv.device_time_us
        handle = self._handle
        intensity = self.intensity
        feed = self.feed
        realtime = self.realtime
        lookahead_us = self.lookahead_us
        half_lookahead_us = lookahead_us // 2
        duration_us = self.schedule.duration_us
        wake = ctl.wake
        while True:
            if ctl._signals_handled < ctl._signals_posted:
                ctl._settle_signals()
            # 1. what the device says (this also lets an emulator catch up to "now")
            events = poll()
            host_now = now_us()
            if events:
                last_heard = host_now
                for m in events:
                    handle(m)
            silent = host_now - last_heard
            if silent >= silence_us and host_now >= next_status_req:
                drv.request_status()   # if our frames were lost, this also reveals the gap to the device
                next_status_req = host_now + silence_us
            if silent >= lost_us and not self.link_lost:
                self._lose_link(silent)
            dev_now = device_time_us()
            # 2. controls
            if self._estop_flag and self.end_reason is None:
                self._begin_end("emergency_stop")
            if ctl._commands or ctl._scheduled or wake.is_set():
                for action, args in ctl._due(dev_now - self.epoch):
                    if action == "stall":
                        clock.sleep(int(args[0]) if args else prof.watchdog_ms * 2000)
                        continue
                    self._control(action, args)
            slewing = intensity.value != intensity.target
            state = self.state
            if slewing and self.end_reason is None and state in ("running", "paused", "pausing"):
                if last_slew_dev is None or dev_now - last_slew_dev >= self.SLEW_TICK_US:
                    dt = self.SLEW_TICK_US if last_slew_dev is None else dev_now - last_slew_dev
                    for ch, factor in intensity.step(dt).items():
                        drv.set_scale(ch, factor)
                    last_slew_dev = dev_now
                    self._emit("intensity")
            elif not slewing:
                last_slew_dev = None
            # a pause past the pause limit ends the session (nothing may ever resume it)
            if (state == "paused" and self.end_reason is None and self._paused_since is not None
                    and dev_now - self._paused_since >= ctl.max_pause_us):
                self._pause_limit(dev_now)
            # 3. stream
            sent = 0
            queue_wake = None
            state = self.state
            if self.end_reason is None and state in ("running", "pausing", "stopping"):
                limit_dev = dev_now + lookahead_us
                if self.ramp_end is not None and state in ("pausing", "stopping"):
                    limit_dev = min(limit_dev, self.ramp_end)
                # virtual time: top up only when less than half the look-ahead is queued, so a long session
                # goes out in fewer, larger blocks (the device still holds at least half a look-ahead)
                topped_up = (not realtime and state == "running"
                             and self._queued_until - dev_now > half_lookahead_us)
                free = 0 if topped_up else drv.queue_free()
                if free > 0:
                    self._queued_until = limit_dev
                    offset = self.offset
                    part = feed.take(limit_dev - offset, free)
                    if len(part):
                        out = ev.copy_records(part)
                        out["t_us"] += offset
                        first = drv.send_block(out)
                        for ob in self.observers:
                            ob.on_sent(self, first, part, offset)
                        feed.sent(part, int(out["t_us"][-1]))
                        sent = len(part)
                        if sent == free:
                            # limited by the device queue, not the look-ahead: come back when about
                            # half of what was just queued has played
                            queue_wake = int(out["t_us"][sent // 2])
                            self._queued_until = int(out["t_us"][-1])
                # natural end of the session
                if (state == "running" and feed.buf_pos >= len(feed.buf) and feed.exhausted
                        and dev_now >= self.offset + duration_us):   # (a pulse left in the buffer: not exhausted)
                    self._begin_end("completed")
            host_t = now_us()
            if sent:
                last_tx_host = last_frame_host = host_t
            elif host_t - last_tx_host >= keepalive_us:
                last_tx_host = last_frame_host = host_t
                if merge and self.end_reason is None:
                    # it goes out as the first frame of this wake's fill train (step 6), or alone before
                    # anything else could reach the device or see the session (below): the same frame, at
                    # the same time, in the same order
                    keepalive_at = last_tx_host
                else:
                    drv.keepalive()
            # 4. ending: wait for the device's final report and every acknowledgement (bounded)
            if self.end_reason is not None:
                if drain_deadline is None:
                    drain_deadline = now_us() + self.drain_timeout_us
                    next_final_req = now_us() + self.FINAL_STATUS_EVERY_US
                st = self.last_report
                if st is not None and st.final and self.acked_total >= st.delivered_total:
                    break
                if now_us() >= drain_deadline:
                    break
                if now_us() >= next_final_req and not self.link_lost:
                    drv.request_status()
                    next_final_req = now_us() + self.FINAL_STATUS_EVERY_US
                clock.sleep(1000 if not realtime else 2000, wake)
                continue
            # 5. progress, records
            if dev_now >= next_progress:
                if keepalive_at is not None and self.on_event is not None:   # (an event handler may stop the device)
                    drv.keepalive()
                    keepalive_at = None
                self._emit("progress")
                next_progress = dev_now + self.progress_interval_us
            if self.store is not None and time.monotonic() - last_db >= self.db_interval_s:
                if keepalive_at is not None:
                    drv.keepalive()
                    keepalive_at = None
                self._update_record(dev_now)
                self.store.update_progress(self.rec)
                last_db = time.monotonic()
            # 6. sleep until the next thing to do
            host_t = now_us()
            wake_dev = dev_now + tick
            # the device hears from the host at least every tick (its watchdog): a wake in between (a control
            # scheduled off the tick) that sent nothing must not push the next frame beyond the watchdog
            wake_dev = min(wake_dev, dev_now + max(1000, last_tx_host + tick - host_t))
            if ctl._scheduled:
                wake_dev = min(wake_dev, self.epoch + ctl._scheduled[0][0])
            if intensity.value != intensity.target:
                wake_dev = min(wake_dev, dev_now + self.SLEW_TICK_US)
            if silent >= silence_us:
                wake_dev = min(wake_dev, dev_now + max(1000, next_status_req - host_now))
            if queue_wake is not None:
                wake_dev = min(wake_dev, max(dev_now + 1, queue_wake))
            state = self.state
            if state == "paused" and self._paused_since is not None:
                wake_dev = min(wake_dev, max(dev_now + 1, self._paused_since + ctl.max_pause_us))
            if state == "running" and feed.done:
                wake_dev = min(wake_dev, max(dev_now + 1, self.offset + duration_us))
            if self._estop_flag or ctl._commands:
                if keepalive_at is not None:
                    drv.keepalive()
                    keepalive_at = None
                continue
            wake_host = host_t + max(0, wake_dev - dev_now)
            if fill and wake_host - last_frame_host > fill_gap:
                # KEEPALIVE frames at most fill_gap apart up to the next wake (whose frame, when it sends one,
                # is at most fill_gap after the last of them); the wakes themselves stay where they were
                if host_t - last_frame_host >= fill_gap:   # the host was held up (a stall): the cadence restarts
                    last_frame_host = host_t
                times = list(range(last_frame_host + fill_gap, wake_host, fill_gap))
                if keepalive_at is not None:
                    times.insert(0, keepalive_at)     # (now: last_frame_host is this very frame)
                    keepalive_at = None
                if times:
                    drv.keepalive_train(clock, times)
                    last_frame_host = times[-1]
            if keepalive_at is not None:
                drv.keepalive()
                keepalive_at = None
            clock.sleep_until(wake_host, wake)
        self._finish(self.end_reason or "interrupted", self._end_detail)

    # ---- messages -----------------------------------------------------------------------------------
    def _handle(self, m) -> None:
        for ob in self.observers:
            ob.on_message(self, m)
        if isinstance(m, ev.PulsesDelivered):
            r = m.records
            if len(r):
                # counted in batches (_count_acks), when the counts are read: a second's acknowledgements at once
                self._uncounted.append(r)
                self._uncounted_n += len(r)
                self.acked_total += len(r)
                if self._uncounted_n >= self.COUNT_BATCH:
                    self._count_acks()
            if m.late_total is not None and m.late_total != self.late:
                if m.late_total > self.late:
                    self._emit("underrun", f"{m.late_total - self.late} pulse(s) reached the device too late")
                    self.rec.log("underrun", m.device_t_us,
                                 detail=f"{m.late_total - self.late} pulse(s) reached the device too late")
                self.late = m.late_total
            # forget in-flight chunks the device has certainly finished with
            inflight = self.feed.inflight
            if inflight and inflight[0][1] < m.device_t_us:
                self.feed.played_before(m.device_t_us)
        elif isinstance(m, ev.StatusReport):
            self.last_report = m
            self.intensity.acknowledge(m.scale_ppm, m.device_t_us, self.rec)
            self.late = max(self.late, m.late_total)
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

    def _count_acks(self) -> None:
        """Fold the acknowledgements received since the last call into the per-channel counts and last
        amplitudes (one pass over a batch instead of one per message); peaks follow in larger batches
        (:meth:`_count_peaks`, whenever they are read)."""
        if not self._uncounted:
            return
        r = ev.stack_records(self._uncounted)
        self._uncounted = []
        self._uncounted_n = 0
        ch = r["channel"].astype(np.intp)
        n = len(self.delivered)
        self.delivered += np.bincount(ch, minlength=n)[:n]
        self.last_amp[ch] = r["amplitude_ua"]
        self._progress_counts = None
        self._acked_last_rec = r
        self._unpeaked.append(r)
        self._unpeaked_n += len(r)
        if self._unpeaked_n >= self.COUNT_BATCH:
            self._count_peaks()
        if self.keep_acks:
            self.acks.append(ev.copy_records(r))

    def _count_peaks(self) -> None:
        """Fold the counted acknowledgements into the per-channel peaks (read by the record only)."""
        self._count_acks()
        if not self._unpeaked:
            return
        r = ev.stack_records(self._unpeaked)
        self._unpeaked = []
        self._unpeaked_n = 0
        np.maximum.at(self.peak, r["channel"].astype(np.intp), np.abs(r["amplitude_ua"].astype(np.int64)))

    def _acked_at(self, dev_t: int) -> set:
        """Channels whose latest acknowledged pulse was delivered at device time ``dev_t`` (else empty)."""
        self._count_acks()
        r = self._acked_last_rec
        if r is None or int(r["t_us"][-1]) != dev_t:
            return set()
        return set(r["channel"][r["t_us"] == dev_t].tolist())

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
        done = self._acked_at(pause_dev)
        self.feed.put_back(self.pause_sched, done)
        self._queued_until = -(1 << 62)     # the device flushed its queue: fill it again after the resume
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
        if self._paused_since is not None:
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
        self._count_peaks()
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
        self._count_peaks()
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
                            self._progress_counts = None
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
        if reason == "completed" and rep is not None:   # (a "completed" without a final report is gone above)
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
