"""A byte-level emulator of a ScienceMode stimulator (P24, RehaMove3), for tests, vendors and users.

It reads the host's bytes exactly as a device would (:mod:`.frame`: start/stop, stuffing, length, checksum),
validates every command, answers with the documented acknowledgements and result codes, and runs its own
clock:

* mid level: each enabled channel is a free-running timer at the device period; when a channel is switched
  on, its first pulse comes at a random phase within one period (the device's timing is its own). An update
  takes effect ``latency`` after it arrives (drawn uniformly from ``latency_us``). Without an ml_update or
  ml_get_current_data for 2 s every output stops (the keep-alive). The load budget, period range, point
  count and current range are checked (parameter error, code 2);
* low level: each ll_channel_config runs one pulse when it arrives (after the latency); at most 10 wait;
* faults: an electrode error on a channel at a device time (that channel's pulses stop, the error shows in
  ml_get_current_data and in the ll acknowledgement), a disconnect, corrupted or dropped frames (host to
  device or back), slow answers.

``output`` holds what the emulated device delivered, in the schedule's pulse dtype: ``t_us`` = device µs
since the stimulation start (the ml_init or ll_init that began it), ``channel`` 1-based, ``amplitude_ua`` =
the first point's current magnitude, ``shape`` = index into ``shapes`` (the distinct pulse forms seen, as
(duration µs, amplitude relative to the first point) phases, like a schedule's shape table).
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import numpy as np

from ...pulses import PULSE_DTYPE
from . import frame as F
from . import messages as M

KEEPALIVE_US = 2_000_000
LOAD_BUDGET = 1000
LOAD_OVERHEAD_US = 60
LL_BUFFER = 10


@dataclass(frozen=True)
class DeviceSpec:
    """What differs between the emulated models."""

    name: str
    channels: int
    device_id: str
    fine_grid: bool            # accepts 0.25 ms periods (acc bit)
    min_period_us: int
    firmware: tuple = (1, 0, 0)
    sciencemode: tuple = (4, 0, 0)


SPECS = {
    "p24": DeviceSpec("p24", 8, "P24EMU0001", True, 500, (4, 2, 0), (4, 0, 2)),
    "rehamove3": DeviceSpec("rehamove3", 4, "RM3EMU0001", False, 2000, (3, 2, 4), (3, 0, 0)),
}


class _SystemClock:
    realtime = True

    def now_us(self) -> int:
        import time

        return time.monotonic_ns() // 1000


@dataclass
class _Channel:
    enabled: bool = False
    period_us: int = 0
    points: tuple = ()
    next_t: int | None = None
    last_t: int | None = None
    state: int = M.CHANNEL_OK


@dataclass
class Faults:
    """Fault injection. Times are device µs since the emulator started (its own clock)."""

    electrode: dict = field(default_factory=dict)     # channel (1-based) -> device time of the error
    disconnect_at_us: int | None = None
    drop_rx_every: int = 0        # drop every n-th frame from the host (as if never received)
    corrupt_rx_every: int = 0     # damage every n-th frame from the host (answered as a transfer error)
    drop_tx_every: int = 0        # drop every n-th answer
    corrupt_tx_every: int = 0     # damage every n-th answer (one byte flipped)
    slow_answer_us: int = 0       # every answer leaves this much later


class EmulatorDisconnected(Exception):
    """The emulated device is unplugged."""


class ScienceModeEmulator:
    """``ScienceModeEmulator("p24", clock=None, seed=0, latency_us=(1000, 5000))``.

    Byte interface: ``host_write(bytes)`` (host -> device) and ``host_read() -> bytes`` (device -> host,
    what is due by now). ``set_clock(clock)`` makes it follow a runtime clock (virtual time)."""

    def __init__(self, model: str = "p24", clock=None, seed: int | None = 0,
                 latency_us: tuple[int, int] = (1000, 5000), faults: Faults | None = None,
                 device_id: str | None = None):
        if model not in SPECS:
            raise ValueError(f"unknown ScienceMode model {model!r} (known: {', '.join(SPECS)})")
        self.spec = SPECS[model]
        self.clock = clock or _SystemClock()
        self.rng = random.Random(seed)
        self.latency_us = latency_us
        self.faults = faults or Faults()
        self.device_id = device_id or self.spec.device_id
        self.lock = threading.RLock()
        self.reader = F.FrameReader()
        self._boot = self.clock.now_us()
        self._tx: list[tuple[int, bytes]] = []          # (due device time, bytes)
        self._pending: list[tuple[int, int, tuple]] = []  # (apply time, seq, action: ("ml", ...) or ("ll", ...))
        self._seq = 0
        self.level = M.STIM_NONE
        self.high_voltage = 1
        self.channels = [_Channel() for _ in range(self.spec.channels)]
        self.origin: int | None = None                  # device time of the stimulation start
        self._out: list[tuple] = []
        self.shapes: list[tuple] = []
        self._shape_index: dict = {}
        self.last_contact: int | None = None
        self.watchdog_stops = 0
        self.disconnected = False
        self.rx_frames = 0
        self.tx_frames = 0
        self.errors: list[str] = []                      # every refused frame, for tests and the log
        self.received: list[tuple[int, int, bytes]] = []  # (device time, command, payload)
        self._ll_busy_until = 0
        self._ll_queue = 0

    # ---- clock ----------------------------------------------------------------------------------------
    def set_clock(self, clock) -> None:
        with self.lock:
            now = self.now_us()
            self.clock = clock
            self._boot = clock.now_us() - now

    def now_us(self) -> int:
        """Device time: µs since the emulator was switched on."""
        return self.clock.now_us() - self._boot

    # ---- byte interface -------------------------------------------------------------------------------
    def host_write(self, data: bytes) -> int:
        with self.lock:
            self._advance(self.now_us())
            if self.disconnected:
                raise EmulatorDisconnected("the device is disconnected")
            for item in self.reader.feed(bytes(data)):
                self._on_frame(item)
            return len(data)

    def host_read(self, size: int = 65536) -> bytes:
        with self.lock:
            now = self.now_us()
            self._advance(now)
            if self.disconnected:
                raise EmulatorDisconnected("the device is disconnected")
            out = bytearray()
            keep = []
            for due, raw in self._tx:
                if due <= now and len(out) + len(raw) <= size:
                    out += raw
                else:
                    keep.append((due, raw))
            self._tx = keep
            return bytes(out)

    def due_answers(self) -> int:
        """How many answers are due by now but not yet read by the host."""
        with self.lock:
            now = self.now_us()
            self._advance(now)
            return sum(1 for d, _ in self._tx if d <= now)

    # ---- output ---------------------------------------------------------------------------------------
    @property
    def output(self) -> np.ndarray:
        with self.lock:
            self._advance(self.now_us())
            arr = np.zeros(len(self._out), dtype=PULSE_DTYPE)
            if self._out:
                t, ch, amp, sh = zip(*self._out)
                arr["t_us"], arr["channel"], arr["amplitude_ua"], arr["shape"] = t, ch, amp, sh
            order = np.lexsort((arr["channel"], arr["t_us"]))
            return arr[order]

    def save(self, path) -> int:
        """Write ``output`` and the shape table to ``path`` (.npz); returns the pulse count."""
        out = self.output
        phases = [np.array(s, dtype=float) for s in self.shapes]
        np.savez(path, pulses=out, shapes=np.array(phases, dtype=object), device=self.spec.name,
                 device_id=self.device_id)
        return len(out)

    # ---- internals ------------------------------------------------------------------------------------
    def _latency(self) -> int:
        a, b = self.latency_us
        return self.rng.randint(a, b) if b > a else a

    def _answer(self, pn: int, cmd: int, data: bytes, delay_us: int = 0, at_us: int | None = None) -> None:
        self.tx_frames += 1
        f = self.faults
        if f.drop_tx_every and self.tx_frames % f.drop_tx_every == 0:
            return
        raw = F.encode(pn, cmd, data)
        if f.corrupt_tx_every and self.tx_frames % f.corrupt_tx_every == 0:
            b = bytearray(raw)
            i = len(b) - 2
            b[i] = b[i] ^ 0x01 if b[i] ^ 0x01 not in (F.START, F.STOP, F.STUFF) else b[i] ^ 0x02
            raw = bytes(b)
        base = self.now_us() if at_us is None else at_us
        self._tx.append((base + delay_us + f.slow_answer_us, raw))

    def _schedule(self, at: int, action: tuple) -> None:
        self._seq += 1
        self._pending.append((at, self._seq, action))
        self._pending.sort(key=lambda e: (e[0], e[1]))

    def _on_frame(self, item) -> None:
        now = self.now_us()
        self.rx_frames += 1
        f = self.faults
        if f.drop_rx_every and self.rx_frames % f.drop_rx_every == 0:
            return
        if f.corrupt_rx_every and self.rx_frames % f.corrupt_rx_every == 0 and isinstance(item, F.Frame):
            item = F.FrameError("checksum (injected)", item.raw, item.packet_number, item.command)
        if isinstance(item, F.FrameError):
            self.errors.append(str(item))
            if item.packet_number is not None and item.command is not None and item.command + 1 in M.COMMAND_NAMES:
                self._answer(item.packet_number, item.command + 1, bytes((M.TRANSFER_ERROR,)))
            else:
                self._answer(0, M.GENERAL_ERROR, bytes((M.TRANSFER_ERROR,)))
            return
        pn, cmd, data = item.packet_number, item.command, item.data
        self.received.append((now, cmd, data))
        handler = _HANDLERS.get(cmd)
        if handler is None:
            self.errors.append(f"unknown command {cmd}")
            self._answer(pn, M.UNKNOWN_CMD, bytes((M.UNKNOWN_COMMAND,)))
            return
        handler(self, pn, data, now)

    def _refuse(self, pn: int, cmd: int, result: int, why: str) -> None:
        self.errors.append(f"{M.COMMAND_NAMES.get(cmd, cmd)}: {why}")
        self._answer(pn, cmd + 1, bytes((result,)))

    # general
    def _get_version(self, pn, data, now):
        self._answer(pn, M.GET_VERSION_ACK, M.encode_version(M.OK, self.spec.firmware, self.spec.sciencemode))

    def _get_device_id(self, pn, data, now):
        self._answer(pn, M.GET_DEVICE_ID_ACK, M.encode_device_id(M.OK, self.device_id))

    def _get_battery(self, pn, data, now):
        self._answer(pn, M.GET_BATTERY_ACK, M.encode_battery(M.OK, 100, 8200))

    def _get_stim_status(self, pn, data, now):
        status = self.level
        if status == M.STIM_MID_INIT and any(c.enabled for c in self.channels):
            status = M.STIM_MID_RUNNING
        self._answer(pn, M.GET_STIM_STATUS_ACK, M.encode_stim_status(M.OK, status, self.high_voltage))

    def _reset(self, pn, data, now):
        self._stop_all()
        self.level = M.STIM_NONE
        self._answer(pn, M.RESET_ACK, bytes((M.OK,)))

    # mid level
    def _ml_init(self, pn, data, now):
        if len(data) != 1:
            return self._refuse(pn, M.ML_INIT, M.PARAMETER_ERROR, "ml_init takes one byte")
        if self.level == M.STIM_LOW_LEVEL:
            return self._refuse(pn, M.ML_INIT, M.NOT_INITIALISED, "low level is initialised")
        self._stop_all()
        self.level = M.STIM_MID_INIT
        self.high_voltage = 6
        self.origin = now
        self.last_contact = now
        for c in self.channels:
            c.state = M.CHANNEL_OK
        self._answer(pn, M.ML_INIT_ACK, bytes((M.OK,)))

    def _ml_update(self, pn, data, now):
        if self.level != M.STIM_MID_INIT:
            return self._refuse(pn, M.ML_UPDATE, M.NOT_INITIALISED, "ml_update before ml_init")
        try:
            chans = M.decode_ml_update(data)
        except ValueError as exc:
            return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, str(exc))
        load = 0.0
        for ch, c in chans.items():
            if ch >= self.spec.channels:
                return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, f"channel {ch + 1} does not exist")
            if c.fine and not self.spec.fine_grid:
                return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, "0.25 ms periods are not supported")
            if c.period_us < self.spec.min_period_us:
                return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, f"period {c.period_us} µs too short")
            for p in c.points:
                if abs(p.current_half_ma) > M.LIBRARY_MAX_HALF_MA:
                    return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, f"{p.current_half_ma / 2:g} mA")
            busy = sum(p.duration_us for p in c.points)
            if busy + LOAD_OVERHEAD_US > c.period_us:
                return self._refuse(pn, M.ML_UPDATE, M.PULSE_TIMEOUT, "period shorter than the pulse")
            load += (busy + LOAD_OVERHEAD_US) / (c.period_us / 1000)
        if load >= LOAD_BUDGET:
            return self._refuse(pn, M.ML_UPDATE, M.PARAMETER_ERROR, f"load {load:.0f} over the budget")
        self.last_contact = now
        self._schedule(now + self._latency(), ("ml", chans))
        self._answer(pn, M.ML_UPDATE_ACK, bytes((M.OK,)))

    def _ml_stop(self, pn, data, now):
        self._stop_all()
        self.level = M.STIM_NONE
        self.high_voltage = 1
        self._answer(pn, M.ML_STOP_ACK, bytes((M.OK,)))

    def _ml_get_current_data(self, pn, data, now):
        if len(data) != 1 or data[0] not in (M.SELECT_STIMULATION, M.SELECT_CHANNELS):
            return self._refuse(pn, M.ML_GET_CURRENT_DATA, M.PARAMETER_ERROR, "unknown data selector")
        if self.level != M.STIM_MID_INIT:
            return self._refuse(pn, M.ML_GET_CURRENT_DATA, M.NOT_INITIALISED, "mid level not initialised")
        self.last_contact = now
        running = [c.enabled for c in self.channels]
        states = [c.state for c in self.channels]
        self._answer(pn, M.ML_GET_CURRENT_DATA_ACK, M.encode_current_data(M.OK, data[0], running, states))

    # low level
    def _ll_init(self, pn, data, now):
        if len(data) != 1:
            return self._refuse(pn, M.LL_INIT, M.PARAMETER_ERROR, "ll_init takes one byte")
        if self.level in (M.STIM_MID_INIT,):
            return self._refuse(pn, M.LL_INIT, M.NOT_INITIALISED, "mid level is initialised")
        self._stop_all()
        self.level = M.STIM_LOW_LEVEL
        self.high_voltage = (data[0] >> 1) & 7 or 6
        self.origin = now
        for c in self.channels:
            c.state = M.CHANNEL_OK
        self._answer(pn, M.LL_INIT_ACK, bytes((M.OK,)), delay_us=40_000)

    def _ll_channel_config(self, pn, data, now):
        if self.level != M.STIM_LOW_LEVEL:
            return self._refuse(pn, M.LL_CHANNEL_CONFIG, M.NOT_INITIALISED, "ll_channel_config before ll_init")
        try:
            ch, execute, pts = M.decode_ll_channel_config(data)
        except ValueError as exc:
            return self._refuse(pn, M.LL_CHANNEL_CONFIG, M.PARAMETER_ERROR, str(exc))
        if ch >= self.spec.channels or any(abs(p.current_half_ma) > M.LIBRARY_MAX_HALF_MA for p in pts):
            return self._refuse(pn, M.LL_CHANNEL_CONFIG, M.PARAMETER_ERROR, "channel or current out of range")
        if self._ll_queue >= LL_BUFFER:
            return self._refuse(pn, M.LL_CHANNEL_CONFIG, M.PROTOCOL_ERROR, "more than 10 pulses waiting")
        self._ll_queue += 1
        at = max(now + self._latency(), self._ll_busy_until)
        self._ll_busy_until = at + sum(p.duration_us for p in pts)
        self._schedule(at, ("ll", pn, ch, execute, pts))

    def _ll_stop(self, pn, data, now):
        self._stop_all()
        self._pending = [e for e in self._pending if e[2][0] != "ll"]
        self._ll_queue = 0
        self.level = M.STIM_NONE
        self.high_voltage = 1
        self._answer(pn, M.LL_STOP_ACK, bytes((M.OK,)), delay_us=40_000)

    # ---- the device's own time ---------------------------------------------------------------------------
    def _stop_all(self) -> None:
        for c in self.channels:
            c.enabled = False
            c.next_t = None
        self._pending = [e for e in self._pending if e[2][0] != "ml"]

    def _shape_of(self, points) -> int:
        first = points[0].current_half_ma or 1
        key = tuple((p.duration_us, p.current_half_ma / first) for p in points)
        # merge consecutive points of equal current (a phase longer than one point)
        merged: list = []
        for d, r in key:
            if merged and merged[-1][1] == r:
                merged[-1] = (merged[-1][0] + d, r)
            else:
                merged.append((d, r))
        key = tuple(merged)
        idx = self._shape_index.get(key)
        if idx is None:
            idx = self._shape_index[key] = len(self.shapes)
            self.shapes.append(key)
        return idx

    def _emit(self, t: int, ch: int, points) -> None:
        if self.origin is None:
            return
        self._out.append((t - self.origin, ch + 1, abs(points[0].current_ua), self._shape_of(points)))

    def _electrode_check(self, ch: int, t: int) -> bool:
        """True when the pulse of channel ``ch`` (0-based) at ``t`` may run (the check before every pulse)."""
        at = self.faults.electrode.get(ch + 1)
        if at is not None and t >= at:
            c = self.channels[ch]
            c.state = M.CHANNEL_ELECTRODE
            c.enabled = False
            c.next_t = None
            return False
        return True

    def _apply(self, t: int, action) -> None:
        kind = action[0]
        if kind == "ml":
            chans = action[1]
            for i, c in enumerate(self.channels):
                new = chans.get(i)
                if new is None:
                    c.enabled = False
                    c.next_t = None
                    continue
                if c.state == M.CHANNEL_ELECTRODE:
                    continue           # the device keeps that channel off until re-initialised
                if not c.enabled:
                    c.enabled = True
                    c.next_t = t + self.rng.randrange(new.period_us)      # its own phase
                elif new.period_us != c.period_us:
                    base = c.last_t if c.last_t is not None else t
                    c.next_t = max(t, base + new.period_us)
                c.period_us = new.period_us
                c.points = new.points
        elif kind == "ll":
            _, pn, ch, execute, pts = action
            self._ll_queue = max(0, self._ll_queue - 1)
            result = M.OK
            if execute:
                if self._electrode_check(ch, t):
                    self._emit(t, ch, pts)
                else:
                    result = M.ELECTRODE_ERROR
            self._answer(pn, M.LL_CHANNEL_CONFIG_ACK, M.encode_ll_config_ack(result, ch),
                         delay_us=sum(p.duration_us for p in pts), at_us=t)

    def _advance(self, now: int) -> None:
        """Run the device up to ``now``: pending updates, pulses, the keep-alive, scheduled faults."""
        f = self.faults
        if f.disconnect_at_us is not None and now >= f.disconnect_at_us and not self.disconnected:
            self.disconnected = True
            self._stop_all()
            return
        while True:
            t_upd = self._pending[0][0] if self._pending else None
            t_pulse, ch_pulse = None, None
            for i, c in enumerate(self.channels):
                if c.enabled and c.next_t is not None and (t_pulse is None or c.next_t < t_pulse):
                    t_pulse, ch_pulse = c.next_t, i
            t_dog = None
            if self.level == M.STIM_MID_INIT and self.last_contact is not None and any(c.enabled for c in self.channels):
                t_dog = self.last_contact + KEEPALIVE_US
            cands = [x for x in (t_upd, t_pulse, t_dog) if x is not None and x <= now]
            if not cands:
                return
            t = min(cands)
            if t_dog is not None and t == t_dog and (t_pulse is None or t_dog <= t_pulse) and \
                    (t_upd is None or t_dog < t_upd):
                self._stop_all()
                self.watchdog_stops += 1
                self.errors.append(f"keep-alive missed: output stopped at {t_dog} µs")
                continue
            if t_upd is not None and t == t_upd and (t_pulse is None or t_upd <= t_pulse):
                _, _, action = self._pending.pop(0)
                self._apply(t_upd, action)
                continue
            # neither an update nor the keep-alive: the earliest is a channel's next pulse
            assert t_pulse is not None and ch_pulse is not None
            c = self.channels[ch_pulse]
            if self._electrode_check(ch_pulse, t_pulse):
                self._emit(t_pulse, ch_pulse, c.points)
                c.last_t = t_pulse
                c.next_t = t_pulse + c.period_us


_HANDLERS = {
    M.GET_VERSION: ScienceModeEmulator._get_version, M.GET_DEVICE_ID: ScienceModeEmulator._get_device_id,
    M.GET_BATTERY: ScienceModeEmulator._get_battery, M.GET_STIM_STATUS: ScienceModeEmulator._get_stim_status,
    M.RESET: ScienceModeEmulator._reset, M.ML_INIT: ScienceModeEmulator._ml_init,
    M.ML_UPDATE: ScienceModeEmulator._ml_update, M.ML_STOP: ScienceModeEmulator._ml_stop,
    M.ML_GET_CURRENT_DATA: ScienceModeEmulator._ml_get_current_data, M.LL_INIT: ScienceModeEmulator._ll_init,
    M.LL_CHANNEL_CONFIG: ScienceModeEmulator._ll_channel_config, M.LL_STOP: ScienceModeEmulator._ll_stop,
}
