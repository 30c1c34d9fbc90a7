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
* a ramp always starts from the level already reached: a STOP or PAUSE that arrives while a ramp is under way
  (a pause ramp-down, a resume ramp-up) ramps down from the envelope's level at that instant, never from full
  scale, so the output can only fall after a stop or pause request;
* enforces its own limits: an over-limit pulse (current, rate, unknown shape/channel) -> FAULT, all
  output off, queue flushed;
* watchdog: no valid frame from the host for ``watchdog_ms`` of device time while a session is active ->
  output off, queue flushed, FAULT watchdog;
* ESTOP -> output off at once and queue flushed (acted on even if the frame arrives out of sequence);
* fault injection for tests: electrode fault, disconnect, corrupted frames, slow acks, host stall;
* sync out (the wire protocol's sync-out extension): ``sync_lines`` TTL outputs; an edge asked for with
  SYNC_OUT is raised when its time comes and the output is on (the rule of a pulse at that time), and
  recorded in ``sync_edges``.

Memory stays bounded however long a session runs: by default the emulator keeps counters, peaks and two
running SHA-256 digests of what it delivered (``output_sha256``: the PULSE_DTYPE bytes of the output;
``delivered_sha256``: the packing of the session record's ``acked_sha256``, so a record can be compared with
what was delivered). ``Emulator(capture=True)`` (tests, exports) also keeps ``output``, a growing
PULSE_DTYPE array of what was actually delivered, t_us relative to the session start (the START epoch) on
the device clock (~16 B a pulse). ``sync_edges`` holds the TTL edges raised (SYNC_EDGE_DTYPE).
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..pulses import PULSE_DTYPE
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..clock import Clock, RealClock
from ..rounding import round_div
from ..rounding import round_div_array as round_div_half_even  # the name tests and the emulator use
from . import wire as w
from .events import copy_records, pulse_digest

#: one raised TTL edge: rising at t_us (session time, like ``output``), high for width_us
SYNC_EDGE_DTYPE = np.dtype([("t_us", "<i8"), ("line", "u1"), ("width_us", "<u4")])

BOOT_TIME_US = 1_234_567
_ACTIVE = (w.RUNNING, w.PAUSING, w.PAUSED, w.STOPPING)   # a session is under way (the watchdog runs)  # device time at power-on: deliberately not 0, so session and device time differ


#: a KEEPALIVE frame: header, no payload, CRC
_KEEPALIVE_FRAME_SIZE = w.HEADER_SIZE + w.CRC_SIZE
#: one acknowledgement record on the wire
_ACK_SIZE = w.ACK_DTYPE.itemsize


class _Queue:
    """The pulse queue: contiguous parallel arrays (structure of arrays) with a head and a tail.

    Besides the pulse fields it keeps, per pulse, its acknowledgement record as queued (``rec``: index, time,
    channel, amplitude before scaling; copied out whole when a pulse is delivered unscaled) and ``fast``: the
    pulse is at least the slot spacing after the previous pulse queued on its channel and its amplitude is not
    0, facts decided once when it is queued (see :meth:`Emulator._deliver`)."""

    def __init__(self, capacity: int):
        size = 2 * capacity + 2
        self.t = np.empty(size, np.int64)
        self.ch = np.empty(size, np.intp)     # an index type: channel-indexed lookups need no cast
        self.amp = np.empty(size, np.int64)
        self.shape = np.empty(size, np.uint16)
        self.idx = np.empty(size, np.uint32)
        self.rec = np.empty(size, w.ACK_DTYPE)
        self.fast = np.empty(size, bool)
        self.head = self.tail = 0
        #: every pulse queued since the queue was last empty is fast (False: some may not be; Emulator._deliver)
        self.all_fast = True

    def __len__(self) -> int:
        return self.tail - self.head

    def clear(self) -> None:
        self.head = self.tail = 0
        self.all_fast = True

    def push(self, t, ch, amp, shape, idx, fast) -> None:
        n = len(t)
        if self.tail + n > len(self.t):
            k = self.tail - self.head
            for a in (self.t, self.ch, self.amp, self.shape, self.idx, self.rec, self.fast):
                a[:k] = a[self.head:self.tail]
            self.head, self.tail = 0, k
        sl = slice(self.tail, self.tail + n)
        self.t[sl] = t
        self.ch[sl] = ch
        self.amp[sl] = amp
        self.shape[sl] = shape
        self.idx[sl] = idx
        rec = self.rec[sl]
        rec["index"] = self.idx[sl]
        rec["t_us"] = t
        rec["channel"] = ch
        rec["amplitude_ua"] = amp
        self.fast[sl] = fast
        self.tail += n
        if self.all_fast and not fast.all():
            self.all_fast = False

    def pop_until(self, t_end: int, inclusive: bool) -> tuple[int, int, bool] | None:
        """Remove the pulses with t < t_end (<= when inclusive) -> (start, stop, all_fast): where they lie in the
        arrays (valid until the next push), and whether every one of them is known to be fast without looking;
        None when there are none."""
        h = self.head
        tail = self.tail
        qt = self.t
        if h == tail or qt[h] > t_end or (not inclusive and qt[h] == t_end):
            return None
        stop = h + int(qt[h:tail].searchsorted(t_end, "right" if inclusive else "left"))
        all_fast = self.all_fast
        self.head = stop
        if stop == tail:
            self.head = self.tail = 0
            self.all_fast = True
        return h, stop, all_fast


class _EdgeQueue:
    """Sync-out edges asked for (device time order per SYNC_OUT frame; merged by time)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, int]] = []   # (t_us, line, width_us), sorted by t_us
        self.head = 0

    def __len__(self) -> int:
        return len(self.items) - self.head

    def clear(self) -> int:
        n = len(self)
        self.items, self.head = [], 0
        return n

    def push(self, line: int, width_us: int, t_us) -> None:
        new = [(int(t), int(line), int(width_us)) for t in t_us]
        rest = self.items[self.head:]
        self.items = sorted(rest + new) if rest and new and new[0][0] < rest[-1][0] else rest + new
        self.head = 0

    def pop_until(self, t_end: int, inclusive: bool) -> list[tuple[int, int, int]]:
        h = self.head
        n = len(self.items)
        while h < n and (self.items[h][0] < t_end or (inclusive and self.items[h][0] == t_end)):
            h += 1
        out = self.items[self.head:h]
        self.head = h
        return out


class EmulatorDisconnected(Exception):
    """The emulated device has been unplugged (fault injection)."""


#: a ramp envelope: (kind "down"|"up", t0, t1, g_num, g_den). The level at device time t is
#: g·(t1 − t)/(t1 − t0) for "down" and g·clip(t − t0, 0, t1 − t0)/(t1 − t0) for "up", g = g_num/g_den the
#: level the ramp starts from (a ramp-down) or reaches (a ramp-up; always 1).
Envelope = tuple[str, int, int, int, int]


def envelope_level(env: Envelope | None, t: int) -> Fraction:
    """The exact envelope level (0..1) at device time ``t``; 1 without a ramp."""
    if env is None:
        return Fraction(1)
    kind, t0, t1, g_num, g_den = env
    span = max(1, t1 - t0)
    num = (t1 - t) if kind == "down" else min(max(t - t0, 0), span)
    return Fraction(g_num * min(max(num, 0), span), g_den * span)


def scaled_amplitudes(amp: np.ndarray, factor: np.ndarray, den: int) -> np.ndarray:
    """round_half_even(amp · factor / den) per pulse, exact: int64 when the products cannot overflow,
    Python integers otherwise (long ramps, chained ramps, large scale registers). ``den`` > 0."""
    if len(amp) == 0:
        return amp.astype(np.int64)
    amp64 = amp.astype(np.int64)
    fac64 = np.asarray(factor)
    big = int(np.abs(amp64).max()) * int(np.abs(fac64).max()) if fac64.dtype != object else 1 << 63
    if big < 1 << 62 and den < 1 << 62:
        return round_div_half_even(amp64 * fac64.astype(np.int64), den)
    out = np.empty(len(amp64), dtype=np.int64)
    for i, (a, f) in enumerate(zip(amp64.tolist(), fac64.tolist())):
        out[i] = round_div(int(a) * int(f), den)
    return out


def split_frames(data: bytes) -> list[bytes]:
    """Cut a byte stream into frames by their sync pair and length field, without checking them (bytes
    between frames come out as chunks of their own)."""
    out, pos, n = [], 0, len(data)
    while pos < n:
        i = data.find(w.SYNC, pos)
        if i < 0:
            out.append(data[pos:])
            break
        if i > pos:
            out.append(data[pos:i])
        if n - i < w.HEADER_SIZE:
            out.append(data[i:])
            break
        end = min(n, i + w.HEADER_SIZE + int.from_bytes(data[i + 8:i + 10], "little") + w.CRC_SIZE)
        out.append(data[i:end])
        pos = end
    return out


def _cut(data: bytes, sizes: list[int] | None) -> list[bytes]:
    """``data`` cut into consecutive pieces of ``sizes`` (None: one piece)."""
    out, pos = [], 0
    for n in sizes if sizes is not None else [len(data)]:
        out.append(data[pos:pos + n])
        pos += n
    return out


@dataclass
class _LinkFault:
    """Damage to frames on the link: ``count`` frames travelling ``direction`` ("rx": host to device,
    "tx": device to host) from session time ``at_us`` on (None: from now), or every frame for
    ``duration_us`` when that is set (a stall)."""

    kind: str                    # corrupt | drop | duplicate | reorder
    direction: str
    at_us: int | None
    count: int = 1
    duration_us: int = 0


@dataclass
class _Injection:
    kind: str
    at_us: int              # session time (relative to the START epoch)
    channel: int = 0
    duration_us: int = 0
    done: bool = False


class Emulator:
    """The loopback stimulator. Thread-safe (one lock around every entry point)."""

    #: while a gap in the host's frames stays open, the NAK is repeated every NAK_RETRY_US (device time)
    NAK_RETRY_US = 50_000
    #: deliveries are folded into the counters and digests at least every FOLD_PULSES pulses (bounded memory)
    FOLD_PULSES = 16_384
    #: take a lone KEEPALIVE without first replaying the pulses due when nothing else is due (:meth:`_nothing_due`;
    #: False: replay before every frame, the reference the tests compare with)
    defer_replay = True
    #: deliver pulses found well spaced when queued without the spacing check, and their acknowledgements as
    #: queued when nothing can change them (:meth:`_execute`; False: every delivery judged and built in full,
    #: the reference the tests compare with)
    fast_delivery = True

    def __init__(self, profile: DeviceProfile = LOOPBACK_PROFILE, serial: str = "LOOPBACK-0001",
                 clock: Clock | None = None, ack_interval_us: int = 20_000, sync_lines: int = 1,
                 capture: bool = False):
        #: keep every delivered pulse in :attr:`output` (opt-in: tests, exports). By default the emulator
        #: keeps only counters, peaks and running SHA-256 digests of what it delivered (:attr:`output_sha256`,
        #: :attr:`delivered_sha256`): bounded memory for sessions of any length, where the full list would
        #: cost ~16 B a pulse (~0.5 GB per simulated hour of 8 channels at 1 kHz)
        self.capture = bool(capture)
        self.profile = profile
        self.sync_lines = int(sync_lines)
        self.serial = serial
        self.ack_interval_us = ack_interval_us
        self.lock = threading.RLock()
        self.link = w.Link(out_of_band=frozenset({w.ESTOP}), reset_types=frozenset({w.HELLO}),
                           nak_retry_us=self.NAK_RETRY_US)
        self.link_faults: list[_LinkFault] = []
        self._held: dict[str, bytes | None] = {"rx": None, "tx": None}   # a frame held back by a reorder fault
        self._clock: Clock = clock or RealClock()
        self._dev_base = BOOT_TIME_US
        self._clk_base = self._clock.now_us()
        self._now = self.time_us()
        #: the device time the host frame being handled arrived (for subclasses that observe the frames)
        self.rx_t = self._now
        #: the device time up to which catch_up() replayed everything, while nothing has changed since (the
        #: host's next frame at the same instant then needs no replay); None: replay on the next call
        self._settled_at: int | None = None
        self._outbox = bytearray()
        self.shapes: list[tuple[tuple[int, int], ...]] = []
        self._shape_max_ppm = np.zeros(0, dtype=np.int64)
        self._shape_ppm_bound = 0          # the largest phase amplitude (ppm) of any shape
        #: the device's slot rate as the shortest spacing of two pulses on one channel (µs)
        self._min_gap = 1_000_000 // profile.max_rate_hz if profile.max_rate_hz else 0
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
            self._settled_at = None
            self._dev_base = self.time_us()
            self._clock = clock
            self._clk_base = clock.now_us()

    def time_us(self) -> int:
        """Device time now (µs since power-on)."""
        return self._dev_base + self._clock.now_us() - self._clk_base

    # ---- session state --------------------------------------------------------------------------------
    def _reset_session(self) -> None:
        n = self.profile.channels + 1
        self._settled_at = None
        self.epoch = 0
        self.state = w.IDLE
        self._q = _Queue(self.profile.queue_pulses)
        self.scale_ppm = np.full(n, w.SCALE_ONE, dtype=np.int64)
        self.channel_on = np.ones(n, dtype=bool)
        self._some_channel_off = False
        self._unity_scale = True
        #: per channel, the time of the last pulse delivered up to the last fold (read it by _last_delivered())
        self._last_t = np.full(n, np.iinfo(np.int64).min // 4, dtype=np.int64)
        #: per channel, the time of the pulse queued last (delivered, still queued or flushed since)
        self._last_queued_t = np.full(n, np.iinfo(np.int64).min // 4, dtype=np.int64)
        self._env: Envelope | None = None
        self._env_end_state = w.IDLE
        self.ramp_end_us = 0
        self._out_chunks: list[np.ndarray] = []
        self._output_cache: np.ndarray | None = None
        self._digest = hashlib.sha256()
        self._delivered_digest = hashlib.sha256()
        self._acks: list[bytes] = []      # delivered, not yet acknowledged (ACK_DTYPE records as bytes)
        self._last_ack_t = self._now
        self.rx_pulses_total = 0
        self.delivered_total = 0
        self._per_channel = np.zeros(n, dtype=np.int64)
        self._peak = np.zeros(n, dtype=np.int64)
        self._unfolded: list[tuple[bytes, np.ndarray]] = []   # (acks as bytes, shapes) not yet folded: _fold()
        self._unfolded_n = 0
        self._amp_bound = 0            # the largest |amplitude| queued this session (µA, before scaling)
        self._scale_max_ppm = w.SCALE_ONE
        self.late_total = 0
        self.flushed_total = 0
        self.suppressed_total = 0
        self._last_rx_t = self._now
        self._edges = _EdgeQueue()
        self._edge_chunks: list[tuple[int, int, int]] = []   # raised (device time, line, width)
        self._edge_reports: list[tuple[int, int]] = []      # raised, not yet reported (device time, line)
        self._edge_last: dict[int, int] = {}                # line -> last raised edge (device time)
        self.sync_raised_total = 0
        self.sync_missed_total = 0
        self._edge_totals_reported = (0, 0)

    @property
    def queue_level(self) -> int:
        return len(self._q)

    @property
    def active(self) -> bool:
        return self.state in (w.RUNNING, w.PAUSING, w.PAUSED, w.STOPPING)

    @property
    def output_sha256(self) -> str:
        """SHA-256 of every delivered pulse this session, in delivery order (the PULSE_DTYPE bytes of
        :attr:`output`): kept with and without capture, so a long run can be compared without the list."""
        with self.lock:
            if not self.disconnected:
                self.catch_up()
            self._fold()
            return self._digest.hexdigest()

    @property
    def delivered_sha256(self) -> str:
        """SHA-256 of every delivered pulse this session packed as the session record hashes its acknowledged
        pulses (:data:`~stimscript.drivers.events.DIGEST_DTYPE`: t_us after the epoch, channel, amplitude):
        equal to ``record.device_log["acked_sha256"]`` when every delivered pulse was acknowledged."""
        with self.lock:
            if not self.disconnected:
                self.catch_up()
            self._fold()
            return self._delivered_digest.hexdigest()

    @property
    def output(self) -> np.ndarray:
        """What the device delivered this session (PULSE_DTYPE, t_us relative to the START epoch)."""
        if not self.capture:
            raise RuntimeError("this emulator does not keep its output (capture is off by default, to keep "
                               "memory bounded): use output_sha256, delivered_sha256 and the counters, or "
                               "create it with capture=True")
        with self.lock:
            if not self.disconnected:
                self.catch_up()
            self._fold()
            if self._output_cache is None:
                self._output_cache = (np.concatenate(self._out_chunks) if self._out_chunks
                                      else np.zeros(0, dtype=PULSE_DTYPE))
                self._out_chunks = [self._output_cache] if len(self._output_cache) else []
            return self._output_cache

    @property
    def sync_edges(self) -> np.ndarray:
        """The TTL edges raised this session (SYNC_EDGE_DTYPE, t_us relative to the START epoch)."""
        with self.lock:
            if not self.disconnected:
                self.catch_up()
            out = np.zeros(len(self._edge_chunks), dtype=SYNC_EDGE_DTYPE)
            if len(out):
                t, line, width = zip(*self._edge_chunks)
                out["t_us"] = np.asarray(t, dtype=np.int64) - self.epoch
                out["line"] = line
                out["width_us"] = width
            return out

    @property
    def output_on(self) -> bool:
        """True while the device would deliver a queued pulse (running and not faulted)."""
        return self.state in (w.RUNNING, w.PAUSING, w.STOPPING) and not self.disconnected

    # ---- fault injection (times are session times: µs after the START epoch) ------------------------
    def inject_electrode_fault(self, channel: int, at_us: int) -> None:
        self._settled_at = None
        self.injections.append(_Injection("electrode", at_us, channel=channel))

    def inject_over_limit(self, channel: int, at_us: int) -> None:
        """The output stage measures an over-limit current on ``channel`` at ``at_us``."""
        self._settled_at = None
        self.injections.append(_Injection("over_limit", at_us, channel=channel))

    def inject_disconnect(self, at_us: int) -> None:
        self._settled_at = None
        self.injections.append(_Injection("disconnect", at_us))

    def inject_host_stall(self, at_us: int, duration_us: int) -> None:
        """Every byte from the host between at_us and at_us + duration_us is lost."""
        self._settled_at = None
        self.injections.append(_Injection("stall", at_us, duration_us=duration_us))

    def corrupt_frames(self, n: int, direction: str = "both", garbage: int = 0) -> None:
        """Damage the next ``n`` frames received ("rx"), sent ("tx") or both; ``garbage`` adds that many
        random bytes in front of the next received chunk."""
        if direction in ("rx", "both"):
            self.corrupt_rx += n
        if direction in ("tx", "both"):
            self.corrupt_tx += n
        self.garbage_rx += garbage

    def inject_link_fault(self, kind: str, at_us: int | None = None, count: int = 1, direction: str = "both",
                          duration_us: int = 0) -> None:
        """Damage frames on the link from session time ``at_us`` (None: from now): ``kind`` corrupt (one
        byte flipped: the checks must catch it), drop, duplicate or reorder (the frame is held back and
        goes after the next one); ``count`` frames, or every frame for ``duration_us`` when that is set;
        ``direction`` "rx" (host to device), "tx" (device to host) or "both"."""
        if kind not in ("corrupt", "drop", "duplicate", "reorder"):
            raise ValueError(f"unknown link fault {kind!r}")
        for d in (("rx", "tx") if direction == "both" else (direction,)):
            self.link_faults.append(_LinkFault(kind, d, at_us, count if not duration_us else 1 << 62,
                                               int(duration_us)))

    def inject_device_silence(self, at_us: int, duration_us: int) -> None:
        """Every frame the device sends between at_us and at_us + duration_us is lost."""
        self.inject_link_fault("drop", at_us, direction="tx", duration_us=duration_us)

    def _link_fault(self, direction: str) -> _LinkFault | None:
        for f in self.link_faults:
            if f.direction != direction or f.count <= 0:
                continue
            if f.at_us is None:
                return f
            if self.state == w.IDLE and not self.epoch:
                continue
            t0 = self.epoch + f.at_us
            if self._now < t0:
                continue
            if f.duration_us and self._now >= t0 + f.duration_us:
                f.count = 0
                continue
            return f
        return None

    def _damage(self, data: bytes, direction: str) -> bytes:
        """Apply the active link faults of ``direction`` to every frame in ``data``."""
        if not self.link_faults and self._held[direction] is None:
            return data
        out = bytearray()
        for fr in split_frames(data):
            f = self._link_fault(direction) if fr[:2] == w.SYNC else None
            held = self._held[direction]
            if f is None:
                out += fr
            else:
                f.count -= 1
                if f.kind == "corrupt":
                    b = bytearray(fr)
                    b[min(len(b) - 1, 4 if direction == "rx" else len(b) // 2)] ^= 0x01
                    out += b
                elif f.kind == "duplicate":
                    out += fr + fr
                elif f.kind == "reorder" and held is None:
                    self._held[direction] = fr
                    continue
                elif f.kind == "reorder":
                    out += fr
                # "drop": nothing
            if held is not None:
                out += held
                self._held[direction] = None
        return bytes(out)

    def slow_acks(self, delay_us: int) -> None:
        """Acknowledge delivered pulses only ``delay_us`` after their delivery."""
        self.ack_delay_us = int(delay_us)

    # ---- host side of the pipe ------------------------------------------------------------------------
    def host_write(self, data: bytes) -> int:
        """Bytes from the host (a bulk OUT transfer). Returns the number of bytes taken."""
        with self.lock:
            if self.disconnected:
                raise EmulatorDisconnected("the loopback device was disconnected")
            return self._take(data, self.time_us())

    def host_write_timed(self, chunks: list[bytes] | bytes, host_times: list[int],
                         sizes: list[int] | None = None) -> None:
        """Bulk OUT transfers that arrived at the given host times (ascending, none later than the clock now,
        none before anything the device has already replayed): what a driver writes when it sends a train of
        frames spaced in virtual time in one call (``Driver.keepalive_train``). ``chunks``: one bytes object per
        transfer, or (with ``sizes``, the length of each) all of them joined, as one USB transfer carries them.
        Each is taken exactly as :meth:`host_write` at its own time would have taken it; a train of lone
        KEEPALIVE frames that meets nothing on the way (:meth:`_nothing_due`) is taken in one step."""
        with self.lock:
            if self.disconnected:
                raise EmulatorDisconnected("the loopback device was disconnected")
            base = self._dev_base - self._clk_base
            times = [base + t for t in host_times]
            if times and times[0] < self._now:
                raise ValueError("frames stamped before what the device has already replayed")
            parts: list[bytes] | None
            if isinstance(chunks, (bytes, bytearray)):
                data, parts = bytes(chunks), None      # cut into its transfers only when they are taken one by one
            else:
                parts = chunks
                data = b"".join(parts)
            if (self.defer_replay and self._quiet_keepalives(times)
                    and self.link.take_train(data, len(times), w.KEEPALIVE, times[-1])):
                # every frame intact and the next one expected (Link.take_train), each in time for the
                # watchdog, nothing else due on the way (_quiet_keepalives), and a KEEPALIVE asks for nothing
                self._last_rx_t = times[-1]
                self._settled_at = None
                if type(self)._handle is not Emulator._handle:   # a subclass watching the frames sees each
                    for fr, t in zip(parts if parts is not None else _cut(data, sizes), times):
                        self.rx_t = t
                        self._handle(w.Frame(w.KEEPALIVE, fr[4] | (fr[5] << 8), fr[6] | (fr[7] << 8), b""))
                return
            for part, t in zip(parts if parts is not None else _cut(data, sizes), times):
                self._take(part, t)
                if self.disconnected:
                    raise EmulatorDisconnected("the loopback device was disconnected")

    def _quiet_keepalives(self, times: list[int]) -> bool:
        """True when frames at ``times`` come close enough together to feed the watchdog in time and nothing
        else is due before the last one (the frames themselves are checked by Link.take_train)."""
        if not times or not self._nothing_due(times[0]):
            return False
        env = self._env
        if env is not None and env[2] <= times[-1]:
            return False
        wd = self.profile.watchdog_ms * 1000
        prev = times[0]
        for t in times:
            if t - prev >= wd:
                return False
            prev = t
        return True

    def _take(self, data: bytes, now: int) -> int:
        """One bulk OUT transfer arriving at device time ``now`` (see :meth:`host_write`)."""
        if (self._settled_at is None or self._settled_at != now) and not (
                self.defer_replay and len(data) == _KEEPALIVE_FRAME_SIZE and data[3] == w.KEEPALIVE
                and self._nothing_due(now)):
            self.catch_up(now)
            self._check_connected()
        # (after a replay this is self._now; a lone KEEPALIVE that needed none is stamped with the time now)
        rx_t = max(now, self._now)
        n = len(data)
        if self.injections and self._in_stall():
            self.stalled_bytes += n
            return n
        if self.garbage_rx or self.corrupt_rx:
            data = self._damage_rx(bytes(data))
        if self.link_faults or self._held["rx"] is not None:
            data = self._damage(data, "rx")
        link = self.link
        valid_before = link.stats.frames_ok
        self._settled_at = None     # whatever the host says may change what is due
        try:
            frames, reply = link.receive(data, rx_t)
        except w.LinkError:
            self._link_broken()
            return n
        if reply:
            self._tx(reply)
        if link.stats.frames_ok != valid_before:
            # the watchdog is fed by every CRC-valid frame (duplicates and out-of-order ones too):
            # the host is alive even while the link recovers
            self._last_rx_t = rx_t
        self.rx_t = rx_t
        for fr in frames:
            self._handle(fr)
        reply = link.poll(rx_t)
        if reply:
            self._tx(reply)
        return n

    def _nothing_due(self, now: int) -> bool:
        """True when a KEEPALIVE arriving at device time ``now`` may be taken before the replay up to ``now``:
        nothing it could meet on the way (the watchdog, a ramp's end, an injected fault, link damage, a gap the
        link is repairing, a pulse that could be over a limit) is due by then. What is left to replay then is
        only queued pulses that cannot fault and sync edges: delivering them sends nothing and a KEEPALIVE
        cannot change them, so they are replayed at their own times by the next call that needs them (a read,
        any other frame), with every byte on the wire as if they had been replayed before it."""
        if (self.injections or self.link_faults or self.garbage_rx or self.corrupt_rx or self.link.gap_open
                or self._held["rx"] is not None):
            return False
        if self.state in _ACTIVE and self._last_rx_t + self.profile.watchdog_ms * 1000 <= now:
            return False
        env = self._env
        if env is not None and env[2] <= now:
            return False
        q = self._q
        if q.head != q.tail and q.t[q.head] <= now and (
                not q.all_fast or self._scale_max_ppm > w.SCALE_ONE
                or self._amp_bound * self._shape_ppm_bound > self.profile.max_current_ua * w.SCALE_ONE):
            return False    # a pulse due may be over a limit: its fault must go out before the frame is taken
        return True

    def _tx(self, data: bytes) -> None:
        if data:
            if self.link_faults or self._held["tx"] is not None:
                data = self._damage(data, "tx")
            self._outbox += data

    def _link_broken(self) -> None:
        """The host asked for frames this device no longer holds: the session cannot continue safely."""
        if self.active:
            self._fault(w.FAULT_LINK, 0, 0, all_off=True)

    def host_read(self, max_bytes: int = 65536) -> bytes:
        """Bytes for the host (a bulk IN transfer), at most ``max_bytes``; may split frames."""
        with self.lock:
            if self.disconnected:
                raise EmulatorDisconnected("the loopback device was disconnected")
            now = self.time_us()
            if self._settled_at is None or self._settled_at != now:
                self.catch_up(now)
                if self.disconnected:
                    raise EmulatorDisconnected("the loopback device was disconnected")
            self._flush_acks()
            link = self.link
            if link.gap_open or (link.rto_us is not None and link.retx):   # a timer runs (Link.poll)
                reply = link.poll(self._now)
                if reply:
                    self._tx(reply)
            else:
                link._now = self._now
            if len(self._outbox) <= max_bytes:
                out = bytes(self._outbox)
                self._outbox.clear()
            else:
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
                b[i + 4] ^= 0x01  # the sequence number: the checks must catch it
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
        if self.link_faults or self._held["tx"] is not None:   # (_tx)
            frame = self._damage(frame, "tx")
        self._outbox += frame

    # ---- message handling -----------------------------------------------------------------------------
    #: the shortest payload each message type needs (longer payloads are accepted: later versions may add)
    _MIN_PAYLOAD = {w.SET_SCALE: w.SET_SCALE_STRUCT.size, w.START: w.START_STRUCT.size,
                    w.STOP: w.RAMP_STRUCT.size, w.PAUSE: w.RAMP_STRUCT.size, w.RESUME: w.RESUME_STRUCT.size}

    def _handle(self, fr: w.Frame) -> None:
        t = fr.mtype
        p = fr.payload
        if len(p) < self._MIN_PAYLOAD.get(t, 0):
            # a real device answers a message it cannot read with a protocol error; during a session the
            # output goes off (host and device no longer agree on what was asked), never a crash
            self._fault(w.FAULT_BAD_MESSAGE, 0, t, all_off=self.active)
            return
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
            self._unity_scale = bool(np.all(self.scale_ppm == w.SCALE_ONE))
            self._scale_max_ppm = int(self.scale_ppm[1:].max())
            self._emit_status()
        elif t == w.HELLO:
            self._outbox.clear()
            if self.state != w.IDLE:
                self._output_off(w.IDLE)
            self._emit(w.HELLO_REPLY, w.encode_hello_reply(self._now, self.serial, self.profile,
                                                           sync_lines=self.sync_lines))
        elif t == w.STATUS_REQ:
            self._emit_status()
        elif t == w.SYNC_OUT and self.sync_lines:
            self._on_sync_out(p)
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
                self._env = ("up", at, at + ramp, 1, 1) if ramp > 0 else None
                self.ramp_end_us = at + ramp
                self.state = w.RUNNING
            self._emit_status()

    def _on_sync_out(self, p: bytes) -> None:
        """Queue TTL edges (an unknown line, a bad width or a malformed frame: ignored and counted)."""
        try:
            m = w.decode_sync_out(p)
        except Exception:
            return
        n = len(m.t_us)
        if (not 1 <= m.line <= self.sync_lines or not 1 <= m.width_us <= w.MAX_SYNC_WIDTH_US
                or self.state not in (w.RUNNING, w.PAUSING, w.STOPPING)):
            self.sync_missed_total += n
            return
        t = m.t_us
        late = t < self._now
        if late.any():
            self.sync_missed_total += int(np.count_nonzero(late))
            t = t[~late]
        self._edges.push(m.line, m.width_us, t.tolist())

    def _raise_edges(self, t_end: int, inclusive: bool) -> None:
        for t, line, width in self._edges.pop_until(t_end, inclusive):
            last = self._edge_last.get(line)
            if last is not None and t - last < width:
                self.sync_missed_total += 1     # the line is still high: not a new edge
                continue
            self._edge_last[line] = t
            self._edge_chunks.append((t, line, width))
            self._edge_reports.append((t, line))
            self.sync_raised_total += 1

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
        self._shape_ppm_bound = max(maxppm, default=0)
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
                # from the level already reached (a ramp under way), never from full scale
                g = envelope_level(self._env, t0)
                self._env = ("down", t0, t_end, g.numerator, g.denominator)
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
            first, base, rec = w.decode_pulses_raw(p)
        except Exception:
            self._fault(w.FAULT_BAD_PULSE, 0, 0, all_off=True)
            return
        n = len(rec)
        if n == 0:
            return
        self.rx_pulses_total += n
        if self.state not in (w.RUNNING, w.PAUSING, w.STOPPING):
            self.flushed_total += n
            return
        prof = self.profile
        q = self._q
        # contiguous copies of the packed wire fields (every check below reads them)
        ch = rec["channel"].astype(np.intp)
        t = rec["dt_us"].astype(np.int64)
        t += base
        shape = rec["shape"]
        if (ch.min() < 1 or ch.max() > prof.channels or shape.max() >= len(self.shapes)
                or (n > 1 and (t[1:] < t[:-1]).any())
                or (q.tail != q.head and t[0] < q.t[q.tail - 1])):
            self.flushed_total += n
            self._fault(w.FAULT_BAD_PULSE, int(ch[0]), first, all_off=True)
            return
        if q.tail - q.head + n > prof.queue_pulses:
            self.flushed_total += n
            self._fault(w.FAULT_QUEUE_OVERFLOW, 0, q.tail - q.head + n, all_off=True)
            return
        idx = np.arange(first, first + n, dtype=np.int64)   # stored as u32 by the queue (wire indexes wrap)
        amp = rec["amplitude_ua"].astype(np.int64)
        self._amp_bound = max(self._amp_bound, int(amp.max()), -int(amp.min()))
        if t[0] < self._now:
            ok = t >= self._now
            self.late_total += int(n - np.count_nonzero(ok))
            t, ch, amp, shape, idx = t[ok], ch[ok], amp[ok], shape[ok], idx[ok]
            if len(t) == 0:
                return
        # decided once here instead of at every delivery: whether each pulse keeps the slot spacing after the
        # pulse queued before it on its channel (judged for the block as a whole), and is not at 0 µA (see
        # _deliver)
        fast = amp != 0
        if self._min_gap > 1 and not self._spacing_ok(t, ch, self._min_gap, self._last_queued_t):
            fast[:] = False
        self._last_queued_t[ch] = t
        q.push(t, ch, amp, shape, idx, fast)

    # ---- time ---------------------------------------------------------------------------------------
    def catch_up(self, until: int | None = None) -> None:
        """Replay everything up to the device's current time (or device time ``until``)."""
        with self.lock:
            if self.disconnected:
                return
            t = self.time_us() if until is None else until
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
            self._settled_at = t

    def _next_event(self):
        best_t, best = None, None
        if self.state in _ACTIVE:
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
            self._some_channel_off = True
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
        self._q.clear()
        self.sync_missed_total += self._edges.clear()

    def _execute(self, t_end: int, inclusive: bool) -> None:
        """Deliver the queued pulses with t < t_end (or <= t_end), and raise the sync edges due."""
        if self.state not in (w.RUNNING, w.PAUSING, w.STOPPING):
            return
        edges = self._edges
        if edges.head < len(edges.items):
            self._raise_edges(t_end, inclusive)
        q = self._q
        if q.head == q.tail:
            return
        got = q.pop_until(t_end, inclusive)
        if got is None:
            return
        h, stop, all_fast = got
        if not self.fast_delivery:
            self._deliver(q.t[h:stop], q.ch[h:stop], q.amp[h:stop], q.shape[h:stop], q.idx[h:stop], q.rec[h:stop],
                          np.zeros(stop - h, dtype=bool), None)
        elif (all_fast and self._env is None and self._unity_scale and not self._some_channel_off
                and self._amp_bound * self._shape_ppm_bound <= self.profile.max_current_ua * w.SCALE_ONE):
            # what _deliver does when every pulse is fast, the output at full scale without a ramp and no pulse
            # in the queue can exceed the current limit: each delivered as queued, no check can find anything
            self._keep(q.rec[h:stop].tobytes(), q.shape[h:stop].copy(), stop - h)
            return
        else:
            self._deliver(q.t[h:stop], q.ch[h:stop], q.amp[h:stop], q.shape[h:stop], q.idx[h:stop], q.rec[h:stop],
                          q.fast[h:stop], True if all_fast else None)
        if self.state == w.FAULTED and self._edge_chunks and self._edge_chunks[-1][0] >= self._now:
            self._unraise_edges_from(self._now)   # a pulse faulted the output: no edge at or after it

    def _unraise_edges_from(self, t: int) -> None:
        while self._edge_chunks and self._edge_chunks[-1][0] >= t:
            et, line, _ = self._edge_chunks.pop()
            self._edge_reports.remove((et, line))
            self.sync_raised_total -= 1
            self.sync_missed_total += 1

    def _deliver(self, t, ch, amp, shape, idx, rec, fast, all_fast: bool | None = None) -> None:
        """Deliver the pulses popped from the queue (all due), or fault on the first one over a limit.

        ``fast`` (decided when queued) says a pulse comes at least the slot spacing after the previous pulse
        queued on its channel, and is not at 0 µA. The previous pulse delivered on a channel was queued no
        later than that one (pulses leave the queue in order, and one queued after a flush is never earlier
        than the device time, hence than any pulse delivered), so when every pulse here is fast the spacing
        check cannot find anything and is skipped; otherwise it runs as always (``all_fast``: already known to
        be True; None: look)."""
        prof = self.profile
        if all_fast is None:
            all_fast = bool(fast.all())
        # per-channel enable (electrode faults)
        if self._some_channel_off:
            keep = self.channel_on[ch]
            self.flushed_total += int(len(t) - np.count_nonzero(keep))
            t, ch, amp, shape, rec = t[keep], ch[keep], amp[keep], shape[keep], rec[keep]
            if len(t) == 0:
                return
        # scale register and ramp envelope, applied at pulse time (exact integers)
        env = self._env
        scaled = env is not None or not self._unity_scale
        if env is None:
            if not self._unity_scale:
                amp = round_div_half_even(amp * self.scale_ppm[ch], w.SCALE_ONE)
        else:
            scale = self.scale_ppm[ch]
            kind, t0, t1, g_num, g_den = env
            span = max(1, t1 - t0)
            num = np.clip(t1 - t, 0, span) if kind == "down" else np.clip(t - t0, 0, span)
            if g_num * span * w.MAX_SCALE_PPM < 1 << 62:
                factor = scale * (num * g_num)
            else:  # a long chain of ramps: exact Python integers
                factor = np.array([int(s) * int(n) * g_num for s, n in zip(scale.tolist(), num.tolist())],
                                  dtype=object)
            amp = scaled_amplitudes(amp, factor, w.SCALE_ONE * span * g_den)
        # limits: current (times the shape's largest phase) and slot rate per channel. The exact per-pulse
        # checks run only when a cheap bound cannot rule a violation out (every pulse is still judged).
        if (self._scale_max_ppm > w.SCALE_ONE
                or self._amp_bound * self._shape_ppm_bound > prof.max_current_ua * w.SCALE_ONE):
            bad = np.abs(amp) * self._shape_max_ppm[shape] > prof.max_current_ua * w.SCALE_ONE
        else:   # no pulse in the queue can exceed the limit: scale and envelope only lower amplitudes
            bad = None
        min_gap = self._min_gap
        if min_gap > 1 and not all_fast:
            if not self._spacing_ok(t, ch, min_gap):
                close = self._too_close(t, ch, min_gap) & (amp != 0)
                bad = close if bad is None else bad | close
        if bad is not None and bad.any():
            i = int(np.argmax(bad))
            self._record(t[:i], ch[:i], amp[:i], shape[:i], rec[:i], scaled or not all_fast)
            self._now = max(self._now, int(t[i]))
            self._fault(w.FAULT_OVER_LIMIT, int(ch[i]), int(abs(amp[i])), all_off=True)
            self.flushed_total += len(t) - i
            return
        self._record(t, ch, amp, shape, rec, scaled or not all_fast)

    def _spacing_ok(self, t: np.ndarray, ch: np.ndarray, min_gap: int, last: np.ndarray | None = None) -> bool:
        """True when no pulse of ``t`` (time-ordered) comes less than ``min_gap`` after the previous one of its
        channel, in ``t`` or before them the one in ``last`` (by default the last delivered per channel) (a few
        whole-array operations; False only says: look closer)."""
        if last is None:
            last = self._last_delivered()
        if not bool(((t - last[ch]) >= min_gap).all()):
            return False
        if len(t) < 2:
            return True
        if int(t[-1]) - int(t[0]) >= 1 << 40:
            return False
        # channel in the high bits, time in the low ones: sorted, consecutive keys of one channel differ by
        # its pulse spacing, keys of different channels by more than 2**40 - span (> min_gap)
        key = (ch.astype(np.int64) << 40) | (t - t[0])
        key.sort()
        return bool((key[1:] - key[:-1] >= min_gap).all())

    def _too_close(self, t: np.ndarray, ch: np.ndarray, min_gap: int, last: np.ndarray | None = None) -> np.ndarray:
        """Per pulse: less than ``min_gap`` after the previous pulse of its channel (in ``t``, or before them the
        one in ``last``: by default the last delivered per channel)."""
        if last is None:
            last = self._last_delivered()
        if len(t) == 1:
            return (t - last[ch]) < min_gap
        order = np.argsort(ch, kind="stable")
        cs, ts = ch[order], t[order]
        prev = np.empty_like(ts)
        prev[1:] = ts[:-1]
        first = np.empty(len(ts), dtype=bool)
        first[0] = True
        np.not_equal(cs[1:], cs[:-1], out=first[1:])
        prev[first] = last[cs[first]]
        fast = np.empty(len(ts), dtype=bool)
        fast[order] = (ts - prev) < min_gap
        return fast

    def _record(self, t, ch, amp, shape, rec, changed: bool) -> None:
        """Record delivered pulses: ``rec`` holds their acknowledgements as queued, ``amp`` the amplitudes
        delivered; ``changed``: they may differ from the queued ones or be 0 (else neither can be)."""
        if len(t) == 0:
            return
        if changed:
            nz = amp != 0
            if nz.all():
                ack = copy_records(rec)
            else:
                self.suppressed_total += int(len(t) - np.count_nonzero(nz))
                t, ch, amp, shape, ack = t[nz], ch[nz], amp[nz], shape[nz], rec[nz]
                if len(t) == 0:
                    return
            ack["amplitude_ua"] = amp
            data = ack.tobytes()
        else:
            data = rec.tobytes()    # the acknowledgements as queued, as the bytes they go out as
        self._keep(data, shape.copy(), len(t))

    def _keep(self, acks: bytes, shape: np.ndarray, n: int) -> None:
        """``n`` pulses delivered: ``acks`` their acknowledgements (ACK_DTYPE bytes), ``shape`` their shapes."""
        self._acks.append(acks)
        self.delivered_total += n
        # counters per channel, peaks, digests (and the capture) are brought up to date in batches
        self._unfolded.append((acks, shape))
        self._unfolded_n += n
        if self._unfolded_n >= self.FOLD_PULSES:
            self._fold()

    def _fold(self) -> None:
        """Fold the deliveries not yet counted into the per-channel counts and peaks, the digests and (with
        capture) the output: once per batch instead of once per delivery (bounded: FOLD_PULSES)."""
        if not self._unfolded:
            return
        acks = np.frombuffer(b"".join([a for a, _ in self._unfolded]), dtype=w.ACK_DTYPE)
        shapes = np.concatenate([s for _, s in self._unfolded])
        self._unfolded = []
        self._unfolded_n = 0
        ch = acks["channel"]
        # the last delivery time per channel (time-ordered: the last write per channel wins)
        self._last_t[ch] = acks["t_us"]
        amp = acks["amplitude_ua"]
        out = np.empty(len(acks), dtype=PULSE_DTYPE)
        out["t_us"] = acks["t_us"] - self.epoch
        out["channel"] = ch
        out["amplitude_ua"] = amp
        out["shape"] = shapes
        self._digest.update(out.tobytes())
        pulse_digest(out["t_us"], ch, amp, self._delivered_digest)
        if self.capture:
            self._out_chunks.append(out)
            self._output_cache = None
        self._per_channel += np.bincount(ch, minlength=len(self._per_channel))[:len(self._per_channel)]
        np.maximum.at(self._peak, ch, np.abs(amp.astype(np.int64)))

    def _last_delivered(self) -> np.ndarray:
        """Per channel, the time of the last pulse delivered (the slot-spacing check starts from it): brought up
        to date from the deliveries not yet folded (only the spacing check reads it, seldom)."""
        self._fold()
        return self._last_t

    @property
    def delivered_per_channel(self) -> np.ndarray:
        """Pulses delivered this session per channel (index 0 unused)."""
        with self.lock:
            self._fold()
            return self._per_channel

    @property
    def peak_per_channel(self) -> np.ndarray:
        """Largest delivered amplitude (µA) this session per channel (index 0 unused)."""
        with self.lock:
            self._fold()
            return self._peak

    # ---- outgoing reports -----------------------------------------------------------------------------
    def _flush_acks(self) -> None:
        if self.state == w.IDLE:
            return
        if self._edge_reports or self._edge_totals_reported[0] != self.sync_raised_total \
                or self._edge_totals_reported[1] != self.sync_missed_total:
            # raised edges, or only new totals (edges flushed by a pause or stop): n may be 0
            reports, self._edge_reports = self._edge_reports, []
            for line in sorted({ln for _, ln in reports}) or [1]:
                times = [t for t, ln in reports if ln == line]
                for i in range(0, max(1, len(times)), w.MAX_EDGES_PER_FRAME):
                    self._emit(w.SYNC_EDGES, w.encode_sync_edges(line, self.sync_raised_total, self.sync_missed_total,
                                                                 times[i:i + w.MAX_EDGES_PER_FRAME]))
            self._edge_totals_reported = (self.sync_raised_total, self.sync_missed_total)
        if not self._acks:
            # nothing delivered since the last report: an ACK without records, at most every ack_interval_us
            if self._now - self._last_ack_t < self.ack_interval_us:
                return
            self._last_ack_t = self._now
            self._emit(w.ACK, w.ACK_HEAD.pack(self._now, self._q.tail - self._q.head,
                                              self.rx_pulses_total & 0xFFFFFFFF, self.late_total & 0xFFFFFFFF, 0))
            return
        parts = self._acks
        self._acks = []
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if self.ack_delay_us:
            recs = np.frombuffer(data, dtype=w.ACK_DTYPE)
            ready = recs["t_us"] <= self._now - self.ack_delay_us
            if not ready.all():
                self._acks = [recs[~ready].tobytes()]
                data = recs[ready].tobytes()
        n = len(data) // _ACK_SIZE
        if n == 0 and self._now - self._last_ack_t < self.ack_interval_us:
            return
        self._last_ack_t = now = self._now
        level = self._q.tail - self._q.head
        rx, late = self.rx_pulses_total & 0xFFFFFFFF, self.late_total & 0xFFFFFFFF
        # the ACK payload (messages.encode_ack) from the records' bytes as they are
        if n <= w.MAX_ACKS_PER_FRAME:
            self._emit(w.ACK, w.ACK_HEAD.pack(now, level, rx, late, n) + data)
            return
        step = w.MAX_ACKS_PER_FRAME
        for i in range(0, n, step):
            part = data[i * _ACK_SIZE:(i + step) * _ACK_SIZE]
            self._emit(w.ACK, w.ACK_HEAD.pack(now, level, rx, late, len(part) // _ACK_SIZE) + part)

    def status_msg(self) -> w.StatusMsg:
        return w.StatusMsg(self._now, self.state, self.queue_level, self.profile.queue_pulses,
                           self.rx_pulses_total, self.delivered_total, self.late_total, self.flushed_total,
                           self.epoch, self.ramp_end_us, tuple(int(x) for x in self.scale_ppm[1:]),
                           self.link.stats.as_dict(),
                           {c: int(self.delivered_per_channel[c]) for c in range(1, len(self.delivered_per_channel))
                            if self.delivered_per_channel[c]},
                           {c: int(self.peak_per_channel[c]) for c in range(1, len(self.peak_per_channel))
                            if self.peak_per_channel[c]}, self.suppressed_total)

    def _emit_status(self) -> None:
        if (self._acks or self._edge_reports  # deliveries are reported before the state change that follows them
                or self._edge_totals_reported != (self.sync_raised_total, self.sync_missed_total)):
            self._flush_acks()
        self._emit(w.STATUS, w.encode_status(self.status_msg()))
