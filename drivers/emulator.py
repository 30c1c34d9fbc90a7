"""The reference device emulator (the "loopback device").

It speaks the stimscript wire protocol through :meth:`Emulator.host_write` / :meth:`Emulator.host_read`
(bytes in, bytes out: exactly what a USB bulk pipe carries) and behaves like firmware should:

* its own µs clock (device time), following a :class:`~stimscript.runtime.clock.Clock`: real time, or a
  ``VirtualClock`` the runtime advances explicitly. The emulator is evaluated lazily: whenever the host
  talks to it (or ``output``/``catch_up`` is asked for), it first replays everything that happened up to
  "now" in device-time order (pulses, watchdog, ramp ends, injected faults), so the result is the same
  as a device running on its own;
* executes queued pulses at their time, with the per-channel scale register (and the ramp envelope of
  STOP/PAUSE/RESUME) applied at pulse time in exact integer arithmetic::

      amplitude = round_half_even(amplitude_ua * scale_ppm * env_num / (1_000_000 * env_den))

  so at scale 1.0 the output equals the schedule bit for bit (no quantisation to the 10 µA step);
* enforces its own limits: an over-limit pulse (current, rate, unknown shape/channel) -> FAULT, all
  output off, queue flushed;
* watchdog: no valid frame from the host for ``watchdog_ms`` of device time while a session is active ->
  output off, queue flushed, FAULT watchdog;
* ESTOP -> output off at once and queue flushed (acted on even if the frame arrives out of sequence);
* fault injection for tests: electrode fault, disconnect, corrupted frames, slow acks, host stall.

``output`` is a growing PULSE_DTYPE array of what was actually delivered, t_us relative to the session
start (the START epoch) on the device clock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..compiler.ir import PULSE_DTYPE
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..runtime.clock import Clock, RealClock
from . import wire as w

#: the emulator's queue record
QUEUE_DTYPE = np.dtype([("t", "<i8"), ("channel", "u1"), ("amplitude_ua", "<i4"), ("shape", "<u2"),
                        ("index", "<u4")])
BOOT_TIME_US = 1_234_567  # device time at power-on: deliberately not 0, so session and device time differ


class EmulatorDisconnected(Exception):
    """The emulated device has been unplugged (fault injection)."""


def round_div_half_even(num: np.ndarray, den) -> np.ndarray:
    """round(num / den) half to even, exact in int64 (den > 0)."""
    q = num // den
    r = num - q * den
    twice = 2 * r
    up = (twice > den) | ((twice == den) & ((q & 1) == 1))
    return q + up


@dataclass
class _Injection:
    kind: str
    at_us: int              # session time (relative to the START epoch)
    channel: int = 0
    duration_us: int = 0
    done: bool = False


class Emulator:
    """The loopback stimulator. Thread-safe (one lock around every entry point)."""

    def __init__(self, profile: DeviceProfile = LOOPBACK_PROFILE, serial: str = "LOOPBACK-0001",
                 clock: Clock | None = None, ack_interval_us: int = 20_000):
        self.profile = profile
        self.serial = serial
        self.ack_interval_us = ack_interval_us
        self.lock = threading.RLock()
        self.link = w.Link(out_of_band=frozenset({w.ESTOP}), reset_types=frozenset({w.HELLO}))
        self._clock: Clock = clock or RealClock()
        self._dev_base = BOOT_TIME_US
        self._clk_base = self._clock.now_us()
        self._now = self.time_us()
        self._outbox = bytearray()
        self.shapes: list[tuple[tuple[int, int], ...]] = []
        self._shape_max_ppm = np.zeros(0, dtype=np.int64)
        self.disconnected = False
        self.injections: list[_Injection] = []
        self.corrupt_rx = 0
        self.corrupt_tx = 0
        self.garbage_rx = 0
        self.ack_delay_us = 0
        self.stalled_bytes = 0
        self.faults: list[w.FaultMsg] = []
        self._reset_session()
        self.state = w.IDLE

    # ---- clock ----------------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self._clock

    def set_clock(self, clock: Clock) -> None:
        """Follow another clock from now on; device time stays continuous."""
        with self.lock:
            self._dev_base = self.time_us()
            self._clock = clock
            self._clk_base = clock.now_us()

    def time_us(self) -> int:
        """Device time now (µs since power-on)."""
        return self._dev_base + self._clock.now_us() - self._clk_base

    # ---- session state --------------------------------------------------------------------------------
    def _reset_session(self) -> None:
        n = self.profile.channels + 1
        self.epoch = 0
        self.state = w.IDLE
        self._q = np.zeros(0, dtype=QUEUE_DTYPE)
        self._qh = 0
        self.scale_ppm = np.full(n, w.SCALE_ONE, dtype=np.int64)
        self.channel_on = np.ones(n, dtype=bool)
        self._last_t = np.full(n, np.iinfo(np.int64).min // 4, dtype=np.int64)
        self._env: tuple[str, int, int] | None = None   # ("down"|"up", t0, t1)
        self._env_end_state = w.IDLE
        self.ramp_end_us = 0
        self._out_chunks: list[np.ndarray] = []
        self._output_cache: np.ndarray | None = None
        self._acks: list[np.ndarray] = []
        self._last_ack_t = self._now
        self.rx_pulses_total = 0
        self.delivered_total = 0
        self.late_total = 0
        self.flushed_total = 0
        self.suppressed_total = 0
        self._last_rx_t = self._now

    @property
    def queue_level(self) -> int:
        return len(self._q) - self._qh

    @property
    def active(self) -> bool:
        return self.state in (w.RUNNING, w.PAUSING, w.PAUSED, w.STOPPING)

    @property
    def output(self) -> np.ndarray:
        """What the device delivered this session (PULSE_DTYPE, t_us relative to the START epoch)."""
        with self.lock:
            if not self.disconnected:
                self.catch_up()
            if self._output_cache is None:
                self._output_cache = (np.concatenate(self._out_chunks) if self._out_chunks
                                      else np.zeros(0, dtype=PULSE_DTYPE))
                self._out_chunks = [self._output_cache] if len(self._output_cache) else []
            return self._output_cache

    @property
    def output_on(self) -> bool:
        """True while the device would deliver a queued pulse (running and not faulted)."""
        return self.state in (w.RUNNING, w.PAUSING, w.STOPPING) and not self.disconnected

    # ---- fault injection (times are session times: µs after the START epoch) ------------------------
    def inject_electrode_fault(self, channel: int, at_us: int) -> None:
        self.injections.append(_Injection("electrode", at_us, channel=channel))

    def inject_over_limit(self, channel: int, at_us: int) -> None:
        """The output stage measures an over-limit current on ``channel`` at ``at_us``."""
        self.injections.append(_Injection("over_limit", at_us, channel=channel))

    def inject_disconnect(self, at_us: int) -> None:
        self.injections.append(_Injection("disconnect", at_us))

    def inject_host_stall(self, at_us: int, duration_us: int) -> None:
        """Every byte from the host between at_us and at_us + duration_us is lost."""
        self.injections.append(_Injection("stall", at_us, duration_us=duration_us))

    def corrupt_frames(self, n: int, direction: str = "both", garbage: int = 0) -> None:
        """Damage the next ``n`` frames received ("rx"), sent ("tx") or both; ``garbage`` adds that many
        random bytes in front of the next received chunk."""
        if direction in ("rx", "both"):
            self.corrupt_rx += n
        if direction in ("tx", "both"):
            self.corrupt_tx += n
        self.garbage_rx += garbage

    def slow_acks(self, delay_us: int) -> None:
        """Acknowledge delivered pulses only ``delay_us`` after their delivery."""
        self.ack_delay_us = int(delay_us)

    # ---- host side of the pipe ------------------------------------------------------------------------
    def host_write(self, data: bytes) -> int:
        """Bytes from the host (a bulk OUT transfer). Returns the number of bytes taken."""
        with self.lock:
            self._check_connected()
            self.catch_up()
            self._check_connected()
            if self._in_stall():
                self.stalled_bytes += len(data)
                return len(data)
            data = self._damage_rx(bytes(data))
            frames, reply = self.link.receive(data)
            self._outbox += reply
            if frames:
                self._last_rx_t = self._now
            for fr in frames:
                self._handle(fr)
            return len(data)

    def host_read(self, max_bytes: int = 65536) -> bytes:
        """Bytes for the host (a bulk IN transfer), at most ``max_bytes``; may split frames."""
        with self.lock:
            self._check_connected()
            self.catch_up()
            self._check_connected()
            self._flush_acks()
            out = bytes(self._outbox[:max_bytes])
            del self._outbox[:max_bytes]
            return out

    def _check_connected(self) -> None:
        if self.disconnected:
            raise EmulatorDisconnected("the loopback device was disconnected")

    def _in_stall(self) -> bool:
        for inj in self.injections:
            if inj.kind == "stall" and self.state != w.IDLE:
                t0 = self.epoch + inj.at_us
                if t0 <= self._now < t0 + inj.duration_us:
                    return True
        return False

    def _damage_rx(self, data: bytes) -> bytes:
        if self.garbage_rx:
            rng = np.random.default_rng(self.garbage_rx)
            junk = rng.integers(0, 256, self.garbage_rx, dtype=np.uint8).tobytes().replace(w.SYNC, b"\x00\x00")
            data = junk + data
            self.garbage_rx = 0
        if self.corrupt_rx and len(data) > w.HEADER_SIZE:
            b = bytearray(data)
            i = b.find(w.SYNC)
            if i >= 0 and i + w.HEADER_SIZE < len(b):
                b[i + w.HEADER_SIZE - 1] ^= 0x5A if len(b) > i + w.HEADER_SIZE + 2 else 0x01
                b[i + 4] ^= 0x01  # the sequence number: CRC must catch it
                self.corrupt_rx -= 1
            data = bytes(b)
        return data

    def _emit(self, mtype: int, payload: bytes = b"") -> None:
        frame = self.link.send(mtype, payload)
        if self.corrupt_tx:
            self.corrupt_tx -= 1
            b = bytearray(frame)
            b[len(b) // 2] ^= 0xFF
            frame = bytes(b)
        self._outbox += frame

    # ---- message handling -----------------------------------------------------------------------------
    def _handle(self, fr: w.Frame) -> None:
        t = fr.mtype
        p = fr.payload
        if t == w.PULSES:
            self._on_pulses(p)
        elif t == w.KEEPALIVE:
            pass
        elif t == w.ESTOP:
            if self.state not in (w.ESTOPPED,):
                self._output_off(w.ESTOPPED)
            self._emit_status()
        elif t == w.SET_SCALE:
            ch, ppm = w.SET_SCALE_STRUCT.unpack_from(p)
            ppm = min(int(ppm), w.MAX_SCALE_PPM)
            if ch == 0:
                self.scale_ppm[:] = ppm
            elif 1 <= ch <= self.profile.channels:
                self.scale_ppm[ch] = ppm
            self._emit_status()
        elif t == w.HELLO:
            self._outbox.clear()
            if self.state != w.IDLE:
                self._output_off(w.IDLE)
            self._emit(w.HELLO_REPLY, w.encode_hello_reply(self._now, self.serial, self.profile))
        elif t == w.STATUS_REQ:
            self._emit_status()
        elif t == w.SHAPES:
            self._on_shapes(p)
        elif t == w.START:
            (epoch,) = w.START_STRUCT.unpack_from(p)
            self._reset_session()
            self.epoch = int(epoch)
            self.state = w.RUNNING
            self._last_rx_t = self._now
            self._emit_status()
        elif t == w.STOP:
            (ramp,) = w.RAMP_STRUCT.unpack_from(p)
            self._begin_ramp_down(min(int(ramp), w.MAX_RAMP_US), w.STOPPED, w.STOPPING)
        elif t == w.PAUSE:
            (ramp,) = w.RAMP_STRUCT.unpack_from(p)
            self._begin_ramp_down(min(int(ramp), w.MAX_RAMP_US), w.PAUSED, w.PAUSING)
        elif t == w.RESUME:
            at, ramp = w.RESUME_STRUCT.unpack_from(p)
            if self.state == w.PAUSED:
                at = max(int(at), self._now)
                ramp = min(int(ramp), w.MAX_RAMP_US)
                self._env = ("up", at, at + ramp) if ramp > 0 else None
                self.ramp_end_us = at + ramp
                self.state = w.RUNNING
            self._emit_status()

    def _on_shapes(self, p: bytes) -> None:
        try:
            shapes = w.decode_shapes(p)
        except Exception:
            self._fault(w.FAULT_BAD_SHAPE, 0, 0, all_off=True)
            return
        prof = self.profile
        maxppm = []
        for i, phases in enumerate(shapes):
            for dur, ppm in phases:
                if ppm != 0 and not (prof.min_phase_us <= dur <= prof.max_phase_us):
                    self._fault(w.FAULT_BAD_SHAPE, 0, i, all_off=True)
                    return
            maxppm.append(max((abs(a) for _, a in phases), default=0))
        self.shapes = shapes
        self._shape_max_ppm = np.array(maxppm, dtype=np.int64)
        self._emit_status()

    def _begin_ramp_down(self, ramp: int, end_state: int, ramp_state: int) -> None:
        if self.state in (w.RUNNING, w.PAUSING, w.STOPPING):
            if ramp <= 0:
                self._end_ramp(end_state)
            else:
                t0 = self._now
                if self._env is not None and self._env[0] == "down":
                    t_end = min(self._env[2], t0 + ramp)  # already ramping down: never slower
                else:
                    t_end = t0 + ramp
                self._env = ("down", t0, t_end)
                self._env_end_state = end_state
                self.ramp_end_us = t_end
                self.state = ramp_state
        elif self.state == w.PAUSED and end_state == w.STOPPED:
            self._end_ramp(w.STOPPED)
        self._emit_status()

    def _end_ramp(self, end_state: int) -> None:
        self._env = None
        self._flush()
        self.ramp_end_us = self._now
        self.state = end_state

    def _on_pulses(self, p: bytes) -> None:
        try:
            first, pulses = w.decode_pulses(p)
        except Exception:
            self._fault(w.FAULT_BAD_PULSE, 0, 0, all_off=True)
            return
        n = len(pulses)
        if n == 0:
            return
        self.rx_pulses_total += n
        if self.state not in (w.RUNNING, w.PAUSING, w.STOPPING):
            self.flushed_total += n
            return
        prof = self.profile
        ch = pulses["channel"]
        if (ch.min() < 1 or ch.max() > prof.channels or pulses["shape"].max() >= len(self.shapes)
                or np.any(np.diff(pulses["t_us"]) < 0)
                or (self.queue_level and pulses["t_us"][0] < self._q["t"][-1])):
            self.flushed_total += n
            self._fault(w.FAULT_BAD_PULSE, int(ch[0]), first, all_off=True)
            return
        if self.queue_level + n > prof.queue_pulses:
            self.flushed_total += n
            self._fault(w.FAULT_QUEUE_OVERFLOW, 0, self.queue_level + n, all_off=True)
            return
        late = pulses["t_us"] < self._now
        nlate = int(np.count_nonzero(late))
        rec = np.empty(n, dtype=QUEUE_DTYPE)
        rec["t"] = pulses["t_us"]
        rec["channel"] = ch
        rec["amplitude_ua"] = pulses["amplitude_ua"]
        rec["shape"] = pulses["shape"]
        rec["index"] = (np.arange(n, dtype=np.uint64) + first).astype(np.uint32)
        if nlate:
            self.late_total += nlate
            rec = rec[~late]
        if self._qh:
            self._q = np.concatenate((self._q[self._qh:], rec))
            self._qh = 0
        elif len(self._q):
            self._q = np.concatenate((self._q, rec))
        else:
            self._q = rec

    # ---- time ---------------------------------------------------------------------------------------
    def catch_up(self) -> None:
        """Replay everything up to the device's current time."""
        with self.lock:
            if self.disconnected:
                return
            t = self.time_us()
            if t < self._now:
                t = self._now
            while True:
                ev_t, ev = self._next_event()
                if ev is None or ev_t > t:
                    break
                self._execute(ev_t, inclusive=False)
                self._now = max(self._now, ev_t)
                ev()
                if self.disconnected:
                    return
            self._execute(t, inclusive=True)
            self._now = t

    def _next_event(self):
        best_t, best = None, None
        if self.active and self.state != w.IDLE:
            wd = self._last_rx_t + self.profile.watchdog_ms * 1000
            best_t, best = wd, self._watchdog
        if self._env is not None:
            t1 = self._env[2]
            if best_t is None or t1 < best_t:
                if self._env[0] == "down":
                    end_state = self._env_end_state
                    best_t, best = t1, (lambda: (self._end_ramp(end_state), self._emit_status()))
                else:
                    best_t, best = t1, self._end_ramp_up
        if self.state != w.IDLE:
            for inj in self.injections:
                if inj.done or inj.kind == "stall":
                    continue
                t = self.epoch + inj.at_us
                if best_t is None or t < best_t:
                    best_t, best = t, (lambda inj=inj: self._apply_injection(inj))
        return best_t, best

    def _end_ramp_up(self) -> None:
        self._env = None

    def _watchdog(self) -> None:
        self._fault(w.FAULT_WATCHDOG, 0, self.profile.watchdog_ms, all_off=True)

    def _apply_injection(self, inj: _Injection) -> None:
        inj.done = True
        if inj.kind == "electrode":
            self.channel_on[inj.channel] = False
            self._fault(w.FAULT_ELECTRODE, inj.channel, 0, all_off=False)
        elif inj.kind == "over_limit":
            self._fault(w.FAULT_OVER_LIMIT, inj.channel, 0, all_off=True)
        elif inj.kind == "disconnect":
            self._flush()
            self.state = w.FAULTED
            self.disconnected = True

    def _fault(self, code: int, channel: int, detail: int, all_off: bool) -> None:
        f = w.FaultMsg(code, channel, self._now, detail)
        self.faults.append(f)
        if all_off:
            self._output_off(w.FAULTED)
        self._emit(w.FAULT, w.encode_fault(f))
        self._emit_status()

    def _output_off(self, state: int) -> None:
        self._env = None
        self._flush()
        self.state = state

    def _flush(self) -> None:
        self.flushed_total += self.queue_level
        self._q = np.zeros(0, dtype=QUEUE_DTYPE)
        self._qh = 0

    def _execute(self, t_end: int, inclusive: bool) -> None:
        """Deliver the queued pulses with t < t_end (or <= t_end)."""
        if self.queue_level == 0:
            return
        if self.state not in (w.RUNNING, w.PAUSING, w.STOPPING):
            return
        qt = self._q["t"]
        stop = int(np.searchsorted(qt, t_end, side="right" if inclusive else "left"))
        if stop <= self._qh:
            return
        chunk = self._q[self._qh:stop]
        self._qh = stop
        if self._qh == len(self._q):
            self._q = np.zeros(0, dtype=QUEUE_DTYPE)
            self._qh = 0
        self._deliver(chunk)

    def _deliver(self, chunk: np.ndarray) -> None:
        prof = self.profile
        t = chunk["t"]
        ch = chunk["channel"]
        amp = chunk["amplitude_ua"].astype(np.int64)
        # per-channel enable (electrode faults)
        if not self.channel_on.all():
            keep = self.channel_on[ch]
            self.flushed_total += int(len(chunk) - np.count_nonzero(keep))
            chunk, t, ch, amp = chunk[keep], t[keep], ch[keep], amp[keep]
            if len(chunk) == 0:
                return
        # scale register and ramp envelope, applied at pulse time
        scale = self.scale_ppm[ch]
        env = self._env
        if env is None:
            if not np.all(scale == w.SCALE_ONE):
                amp = round_div_half_even(amp * scale, w.SCALE_ONE)
        else:
            kind, t0, t1 = env
            span = max(1, t1 - t0)
            num = (t1 - t) if kind == "down" else np.clip(t - t0, 0, span)
            amp = round_div_half_even(amp * scale * num, w.SCALE_ONE * span)
        # limits: current (with the shape's largest phase) and slot rate per channel
        over = np.abs(amp) * self._shape_max_ppm[chunk["shape"]] > prof.max_current_ua * w.SCALE_ONE
        min_gap = 1_000_000 // prof.max_rate_hz if prof.max_rate_hz else 0
        order = np.argsort(ch, kind="stable")
        cs, ts = ch[order], t[order]
        prev = np.empty_like(ts)
        prev[1:] = ts[:-1]
        first = np.ones(len(ts), dtype=bool)
        first[1:] = cs[1:] != cs[:-1]
        prev[first] = self._last_t[cs[first]]
        fast = np.zeros(len(ts), dtype=bool)
        fast[order] = (ts - prev) < min_gap
        bad = over | (fast & (amp != 0))
        if bad.any():
            i = int(np.argmax(bad))
            self._record(chunk[:i], amp[:i])
            self._now = max(self._now, int(t[i]))
            self._fault(w.FAULT_OVER_LIMIT, int(ch[i]), int(abs(amp[i])), all_off=True)
            self.flushed_total += len(chunk) - i
            return
        self._record(chunk, amp)

    def _record(self, chunk: np.ndarray, amp: np.ndarray) -> None:
        if len(chunk) == 0:
            return
        nz = amp != 0
        if not nz.all():
            self.suppressed_total += int(len(chunk) - np.count_nonzero(nz))
            chunk, amp = chunk[nz], amp[nz]
            if len(chunk) == 0:
                return
        ch = chunk["channel"]
        # last delivery time per channel (chunk is time-ordered, so the last write per channel wins)
        self._last_t[ch] = chunk["t"]
        out = np.empty(len(chunk), dtype=PULSE_DTYPE)
        out["t_us"] = chunk["t"] - self.epoch
        out["channel"] = ch
        out["amplitude_ua"] = amp
        out["shape"] = chunk["shape"]
        self._out_chunks.append(out)
        self._output_cache = None
        ack = np.empty(len(chunk), dtype=w.ACK_DTYPE)
        ack["index"] = chunk["index"]
        ack["t_us"] = chunk["t"]
        ack["channel"] = ch
        ack["amplitude_ua"] = amp
        self._acks.append(ack)
        self.delivered_total += len(chunk)

    # ---- outgoing reports -----------------------------------------------------------------------------
    def _flush_acks(self) -> None:
        if self.state == w.IDLE:
            return
        recs = np.concatenate(self._acks) if len(self._acks) > 1 else (self._acks[0] if self._acks else None)
        self._acks = []
        if recs is not None and self.ack_delay_us:
            ready = recs["t_us"] <= self._now - self.ack_delay_us
            if not ready.all():
                self._acks = [recs[~ready]]
                recs = recs[ready]
        if (recs is None or len(recs) == 0) and self._now - self._last_ack_t < self.ack_interval_us:
            return
        if recs is None:
            recs = np.zeros(0, dtype=w.ACK_DTYPE)
        self._last_ack_t = self._now
        for i in range(0, max(1, len(recs)), w.MAX_ACKS_PER_FRAME):
            self._emit(w.ACK, w.encode_ack(self._now, self.queue_level, self.rx_pulses_total, self.late_total,
                                           recs[i:i + w.MAX_ACKS_PER_FRAME]))

    def status_msg(self) -> w.StatusMsg:
        return w.StatusMsg(self._now, self.state, self.queue_level, self.profile.queue_pulses,
                           self.rx_pulses_total, self.delivered_total, self.late_total, self.flushed_total,
                           self.epoch, self.ramp_end_us, tuple(int(x) for x in self.scale_ppm[1:]),
                           self.link.stats.as_dict())

    def _emit_status(self) -> None:
        if self._acks:  # deliveries are reported before the state change that follows them
            self._flush_acks()
        self._emit(w.STATUS, w.encode_status(self.status_msg()))
