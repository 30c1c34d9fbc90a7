"""Helpers for tests and benchmarks (also for vendors re-running the suite against their hardware).

``open_test_device(kind)`` opens ``"loopback"`` (in-process emulator), ``"usb-loopback"`` (the USB driver
over pyusb with a LoopbackBackend), ``"direct"`` (:class:`DirectDriver`, a driver written to the ``Driver``
contract alone, no wire protocol) or ``"usb"`` (real hardware, default VID:PID). The suite's device list
comes from ``$STIMSCRIPT_TEST_DEVICES`` (comma separated, default "loopback,usb-loopback,direct").
``nmes_schedule(...)`` builds a realistic multi-channel Schedule with ramps via ``Schedule.from_trains``.
"""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

from ..pulses import PULSE_DTYPE, ChannelInfo, PulseShape, Segment, Train
from ..compiler.schedule import Schedule
from ..drivers import events as ev
from ..drivers.base import Driver
from ..drivers.emulator import envelope_level
from ..drivers.events import DeviceStatus
from ..errors import DeviceFault, DriverError
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..rounding import round_div_array
from ..clock import RealClock

BIPHASIC_300 = PulseShape(((300, 1.0), (50, 0.0), (300, -1.0)), "biphasic")
ASYMMETRIC = PulseShape(((200, 1.0), (800, -0.25)), "asymmetric")


def device_kinds() -> list[str]:
    raw = os.environ.get("STIMSCRIPT_TEST_DEVICES", "loopback,usb-loopback,direct")
    return [k.strip() for k in raw.split(",") if k.strip()]


def open_test_device(kind: str, **emulator_options):
    """Open a device of ``kind`` for a test. The emulator behind "loopback" and "usb-loopback" keeps its full
    output (``capture=True``, what the suite observes) unless ``capture=False`` is passed; other
    ``emulator_options`` go to :class:`~stimscript.drivers.emulator.Emulator`."""
    emulator_options.setdefault("capture", True)
    from ..drivers import open_device
    from ..drivers.emulator import Emulator
    from ..drivers.loopback import LoopbackBackend

    if kind == "loopback":
        return open_device("loopback", emulator=Emulator(**emulator_options))
    if kind == "usb-loopback":
        return open_device("usb", backend=LoopbackBackend(emulator=Emulator(**emulator_options)))
    if kind == "direct":
        dev = DirectDriver()
        dev.open()
        return dev
    if kind == "usb":
        return open_device("usb")
    raise ValueError(f"unknown test device kind {kind!r}")


def nmes_schedule(channels: int = 8, seconds: float = 60.0, freq_hz: int = 50, on_s: float = 10.0,
                  off_s: float = 20.0, ramp_s: float = 1.0, base_ua: int = 40_000, step_ua: int = 1_000,
                  stagger_us: int = 1_000_000, param: str | None = "intensity", shapes=None,
                  title: str = "test schedule") -> Schedule:
    """``channels`` channels of on/off cycles with ramps; channel c starts (c-1)*stagger_us late and runs
    at base_ua + (c-1)*step_ua, shape (c-1) % len(shapes)."""
    shapes = tuple(shapes or (BIPHASIC_300, ASYMMETRIC))
    cycle_us = int((on_s + off_s) * 1e6)
    total_us = int(seconds * 1e6)
    trains, infos = [], []
    for c in range(1, channels + 1):
        start = (c - 1) * stagger_us
        cycles = max(1, (total_us - start) // cycle_us)
        amp = base_ua + (c - 1) * step_ua
        trains.append(Train(channel=c, start_us=start, cycles=cycles, cycle_us=cycle_us, on_us=int(on_s * 1e6),
                            ramp_up_us=int(ramp_s * 1e6), ramp_down_us=int(ramp_s * 1e6), period_num=1_000_000,
                            period_den=freq_hz, amp_num=amp, amp_den=1, shape=(c - 1) % len(shapes)))
        infos.append(ChannelInfo(number=c, name=f"ch{c}", amplitude_ua=amp, shape=(c - 1) % len(shapes),
                                 param=param))
    duration = max(tr.end_us for tr in trains)
    segments = (Segment("block 1", 0, duration),)
    params = {}
    if param:
        from ..units import Quantity

        params[param] = Quantity.of(base_ua, "uA")
    return Schedule.from_trains(trains, shapes, duration, channels=tuple(infos), segments=segments, title=title,
                                params=params, sha256="0" * 64)


# ---- a driver written to the Driver contract alone ------------------------------------------------------

class DirectDriver(Driver):
    """A test double that subclasses :class:`~stimscript.drivers.base.Driver` directly: no wire protocol,
    no bytes, an in-process device model of its own. It proves that the runtime needs nothing beyond the
    documented contract, and shows a vendor the least a driver does.

    The model: a pulse queue played on the device clock (following the runtime's clock through
    ``use_clock``); per-channel scale factors kept as exact fractions and applied at pulse time; linear
    stop/pause/resume envelopes; amplitudes rounded half to even; pulses that arrive after their time
    dropped and counted late; a pulse above the profile's current limit -> a fault with all output off.
    Zero-amplitude pulses (a ramp's first and last instant) are not delivered. It reports
    PulsesDelivered at most every ``report_interval_us`` and a StatusReport on every state change and
    on request. Registry name: not registered; construct it directly (``DirectDriver()``).

    ``output`` (what it delivered, t_us relative to the session start), ``queue_level`` and
    ``output_on`` mirror the loopback emulator's, so the same tests can observe it.
    """

    name = "direct"
    BOOT_US = 7_654_321

    def __init__(self, profile: DeviceProfile = LOOPBACK_PROFILE, serial: str = "DIRECT-0001",
                 report_interval_us: int = 20_000):
        super().__init__()
        self.profile = profile
        self._serial = serial
        self.report_interval_us = report_interval_us
        self._clock = RealClock()
        self._base = (self.BOOT_US, self._clock.now_us())
        self.state = ev.IDLE
        self._reset(0)

    # ---- the device model -------------------------------------------------------------------------
    def _reset(self, epoch: int) -> None:
        n = self.profile.channels + 1
        self.epoch = epoch
        self._q = np.zeros(0, dtype=PULSE_DTYPE)
        self._qidx = np.zeros(0, dtype=np.int64)
        self._num = np.ones(n, dtype=np.int64)
        self._den = np.ones(n, dtype=np.int64)
        # ("down" | "up", t0, t1, state at the end of a ramp down, g_num, g_den): see drivers.emulator.Envelope
        self._env: tuple[str, int, int, str, int, int] | None = None
        self._ramp_end = 0
        self._now = self._time()
        self._next_index = 0
        self._delivered: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        self._events: list = []
        self._last_report = self._now
        self.delivered_total = 0
        self.late_total = 0
        self.flushed_total = 0
        self.silent_total = 0
        self._per_ch = np.zeros(n, dtype=np.int64)
        self._peak = np.zeros(n, dtype=np.int64)
        self.faults: list = []

    def _time(self) -> int:
        return self._base[0] + self._clock.now_us() - self._base[1]

    def _advance(self) -> None:
        """Play everything up to the device time now, in time order."""
        now = max(self._now, self._time())
        env = self._env
        if env is not None and env[0] == "down" and env[2] <= now:
            self._play(env[2], inclusive=False)
            self._env = None
            self._end(env[3], env[2])
        elif env is not None and env[0] == "up" and env[2] <= now:
            self._play(env[2], inclusive=False)
            self._env = None
        self._play(now, inclusive=True)
        self._now = now

    def _play(self, t_end: int, inclusive: bool) -> None:
        if self.state not in (ev.RUNNING, ev.PAUSING, ev.STOPPING) or not len(self._q):
            return
        k = int(np.searchsorted(self._q["t_us"], t_end, side="right" if inclusive else "left"))
        if k == 0:
            return
        p, idx = self._q[:k], self._qidx[:k]
        self._q, self._qidx = self._q[k:], self._qidx[k:]
        ch = p["channel"].astype(np.int64)
        num = p["amplitude_ua"].astype(np.int64) * self._num[ch]
        den = self._den[ch].copy()
        if self._env is not None:
            kind, t0, t1, _, g_num, g_den = self._env
            span = max(1, t1 - t0)
            t = p["t_us"].astype(np.int64)
            level = np.clip(t1 - t, 0, span) if kind == "down" else np.clip(t - t0, 0, span)
            if g_num == 1 and g_den == 1:
                num = num * level
                den = den * span
            else:  # a ramp-down from a level reached mid-ramp: exact Python integers
                num = num.astype(object) * level.astype(object) * g_num
                den = den.astype(object) * (span * g_den)
        amp = round_div_array(num, den).astype(np.int64)
        over = np.abs(amp) > self.profile.max_current_ua
        if over.any():
            i = int(np.argmax(over))
            self._deliver(p[:i], idx[:i], amp[:i])
            self._fault("over_limit", int(ch[i]), int(p["t_us"][i]), f"{int(abs(amp[i]))} µA")
            return
        self._deliver(p, idx, amp)

    def _deliver(self, p, idx, amp) -> None:
        keep = amp != 0
        self.silent_total += int(len(p) - np.count_nonzero(keep))
        p, idx, amp = p[keep], idx[keep], amp[keep]
        if not len(p):
            return
        rec = np.empty(len(p), dtype=ev.DELIVERY_DTYPE)
        rec["index"] = idx
        rec["t_us"] = p["t_us"]
        rec["channel"] = p["channel"]
        rec["amplitude_ua"] = amp
        self._delivered.append(rec)
        out = p.copy()
        out["t_us"] -= self.epoch
        out["amplitude_ua"] = amp
        self._out.append(out)
        self.delivered_total += len(p)
        self._per_ch += np.bincount(p["channel"], minlength=len(self._per_ch))
        np.maximum.at(self._peak, p["channel"], np.abs(amp))

    def _flush(self) -> None:
        self.flushed_total += len(self._q)
        self._q, self._qidx = self._q[:0], self._qidx[:0]

    def _end(self, state: str, at: int) -> None:
        self._flush()
        self._ramp_end = at
        self.state = state
        self._report()

    def _fault(self, kind: str, channel: int, at: int, detail: str) -> None:
        f = ev.FaultReport(kind, channel, at, detail, output_off=True)
        self.faults.append(f)
        self._env = None
        self._flush()
        self.state = ev.FAULTED
        self._acks()
        self._events.append(f)
        self._report()

    def _acks(self) -> None:
        if self._delivered:
            recs = np.concatenate(self._delivered)
            self._delivered = []
            self._events.append(ev.PulsesDelivered(self._now, recs, self.late_total, len(self._q)))
            self._last_report = self._now

    def _report(self) -> None:
        self._acks()  # deliveries are reported before the state change that follows them
        chans = range(1, len(self._per_ch))
        self._events.append(ev.StatusReport(
            self._now, self.state, self.delivered_total, self.late_total, self.flushed_total, len(self._q),
            self.profile.queue_pulses, self._ramp_end,
            {c: int(self._per_ch[c]) for c in chans if self._per_ch[c]},
            {c: int(self._peak[c]) for c in chans if self._peak[c]},
            tuple(round(Fraction(int(self._num[c]) * 1_000_000, int(self._den[c]))) for c in chans), self.silent_total))

    # ---- what tests observe -------------------------------------------------------------------------
    @property
    def emulator(self):
        return self

    @property
    def output(self) -> np.ndarray:
        with self.lock:
            self._advance()
            return np.concatenate(self._out) if self._out else np.zeros(0, dtype=PULSE_DTYPE)

    @property
    def queue_level(self) -> int:
        return len(self._q)

    @property
    def output_on(self) -> bool:
        return self.state in (ev.RUNNING, ev.PAUSING, ev.STOPPING)

    # ---- the Driver contract ------------------------------------------------------------------------
    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        with self.lock:
            if self.is_open and self.output_on:
                self.estop()
            self.is_open = False

    def capabilities(self) -> DeviceProfile:
        return self.profile

    @property
    def serial(self) -> str:
        return self._serial

    def use_clock(self, clock) -> bool:
        with self.lock:
            self._base = (self._time(), clock.now_us())
            self._clock = clock
            return True

    def upload_shapes(self, shapes) -> None:
        for i, shape in enumerate(shapes):
            for dur, rel in shape.phases:
                if rel and not self.profile.min_phase_us <= dur <= self.profile.max_phase_us:
                    raise DeviceFault(f"the device refused the pulse-shape table: shape {i} has a {dur} µs phase")
        self.shapes = list(shapes)

    def start(self, epoch_us: int) -> None:
        with self.lock:
            self._advance()
            self._reset(int(epoch_us))
            self.state = ev.RUNNING
            self._report()

    def send_block(self, pulses: np.ndarray) -> int:
        with self.lock:
            self._advance()
            first = self._next_index
            n = len(pulses)
            self._next_index += n
            if self.state not in (ev.RUNNING, ev.PAUSING, ev.STOPPING):
                self.flushed_total += n
                return first
            if len(self._q) + n > self.profile.queue_pulses:
                raise DriverError(f"{n} pulses overflow the {self.profile.queue_pulses}-pulse queue")
            idx = np.arange(first, first + n, dtype=np.int64)
            ok = pulses["t_us"] >= self._now
            self.late_total += int(n - np.count_nonzero(ok))
            self._q = np.concatenate([self._q, pulses[ok].astype(PULSE_DTYPE)])
            self._qidx = np.concatenate([self._qidx, idx[ok]])
            return first

    def poll(self) -> list:
        with self.lock:
            self._advance()
            if self._delivered or self._now - self._last_report >= self.report_interval_us:
                if self._delivered:
                    self._acks()
                elif self.state != ev.IDLE:
                    self._events.append(ev.PulsesDelivered(self._now, np.zeros(0, ev.DELIVERY_DTYPE),
                                                           self.late_total, len(self._q)))
                    self._last_report = self._now
            out, self._events = self._events, []
            return out

    def status(self) -> DeviceStatus:
        cap = self.profile.queue_pulses
        return DeviceStatus(device_time_us=self._time(), state=self.state, queue_level=len(self._q),
                            queue_capacity=cap, queue_free=cap - len(self._q), sent_pulses=self._next_index,
                            acked_pulses=self.delivered_total, late_pulses=self.late_total,
                            faults=list(self.faults))

    def request_status(self) -> None:
        with self.lock:
            self._advance()
            self._report()

    def _ramp_down(self, ramp_us: int, end_state: str, ramp_state: str) -> None:
        with self.lock:
            self._advance()
            if self.state in (ev.RUNNING, ev.PAUSING, ev.STOPPING):
                if ramp_us <= 0:
                    self._env = None
                    self._end(end_state, self._now)
                    return
                t1 = self._now + int(ramp_us)
                if self._env is not None and self._env[0] == "down":
                    t1 = min(t1, self._env[2])
                # a ramp starts from the level already reached, never from full scale
                env = self._env
                g = envelope_level(None if env is None else (env[0], env[1], env[2], env[4], env[5]), self._now)
                self._env = ("down", self._now, t1, end_state, g.numerator, g.denominator)
                self._ramp_end = t1
                self.state = ramp_state
            elif self.state == ev.PAUSED and end_state == ev.STOPPED:
                self._end(ev.STOPPED, self._now)
                return
            self._report()

    def stop(self, ramp_us: int = 1_000_000) -> None:
        self._ramp_down(ramp_us, ev.STOPPED, ev.STOPPING)

    def pause(self, ramp_us: int = 500_000) -> None:
        self._ramp_down(ramp_us, ev.PAUSED, ev.PAUSING)

    def resume(self, at_us: int, ramp_us: int = 1_000_000) -> None:
        with self.lock:
            self._advance()
            if self.state == ev.PAUSED:
                at = max(int(at_us), self._now)
                self._env = ("up", at, at + int(ramp_us), ev.RUNNING, 1, 1) if ramp_us > 0 else None
                self._ramp_end = at + int(ramp_us)
                self.state = ev.RUNNING
            self._report()

    def estop(self) -> None:
        with self.lock:
            self._advance()
            if self.state != ev.ESTOPPED:
                self._env = None
                self._end(ev.ESTOPPED, self._now)
            else:
                self._report()

    def set_scale(self, channel: int, factor) -> None:
        f = Fraction(factor).limit_denominator(1_000_000)
        with self.lock:
            self._advance()
            self._num[channel], self._den[channel] = f.numerator, f.denominator
            self._report()
