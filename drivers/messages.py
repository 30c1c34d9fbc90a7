"""The stimscript wire protocol, version 1 — messages: type codes, device states, fault codes and the
payload of every message, byte by byte (a frame carries one payload; drivers/link.py is the frame).

All fields little-endian; times are device µs (i64); ``u8/u16/u32`` unsigned, ``i32/i64`` signed::

    host -> device
    0x01 HELLO       u8 host version (1), u8 flags (0)
    0x02 SHAPES      u16 count; per shape: u16 index, u8 n_phases, n x (u32 duration_us, i32 amplitude_ppm)
    0x03 PULSES      u32 first_index, i64 base_t_us, u16 n; n x 11 bytes:
                     u32 dt_us (from base_t), u8 channel (1-based), i32 amplitude_ua, u16 shape
    0x04 START       i64 epoch_us (device time of session t = 0)
    0x05 STOP        u32 ramp_us            0x06 PAUSE   u32 ramp_us
    0x07 RESUME      i64 at_us, u32 ramp_us
    0x08 ESTOP       empty                  0x09 SET_SCALE  u8 channel (0 = all), u32 scale_ppm
    0x0A KEEPALIVE   empty                  0x0B STATUS_REQ empty
    0x0C SYNC_OUT    u8 line (1-based), u32 width_us, u16 n, n x i64 t_us       (sync-out extension, below)
    device -> host
    0x81 HELLO_REPLY u8 version, i64 device_t_us, serial (u8 len + UTF-8), profile name (u8 len + UTF-8),
                     u8 channels, u32 max_current_ua, u16 current_step_ua, u32 min_phase_us,
                     u32 max_phase_us, u32 max_rate_hz, u16 time_base_us, u8 flags, u32 queue_pulses,
                     u32 watchdog_ms, [u8 sync_lines]   (sync-out extension, below)
    0x82 ACK         i64 device_t_us, u32 queue_level, u32 rx_pulses_total, u32 late_total, u16 n;
                     n x 17 bytes: u32 index, i64 t_us, u8 channel, i32 amplitude_ua (as delivered)
    0x83 STATUS      i64 device_t_us, u8 state, u32 queue_level, u32 queue_capacity, u32 rx_pulses_total,
                     u32 delivered_total, u32 late_total, u32 flushed_total, i64 epoch_us, i64 ramp_end_us,
                     u8 n, n x u32 scale_ppm, 11 x u32 link counters (LINK_COUNTERS),
                     [u8 n, n x (u8 channel, u32 delivered, u32 peak_ua)], [u32 silent_total]
                     (bracketed tails were added within v1: a reader treats a shorter STATUS as without them
                     and ignores bytes after the fields it knows)
    0x84 FAULT       u8 code, u8 channel (0 = device), i64 device_t_us, u32 detail
    0x85 SYNC_EDGES  u8 line, u32 raised_total, u32 missed_total, u16 n, n x i64 t_us   (sync-out extension)

Sync-out extension (a compatible revision of v1; the frame version stays 1). A device with TTL trigger
outputs appends ``u8 sync_lines`` (how many, numbered from 1) to HELLO_REPLY; older hosts ignore the byte,
and a HELLO_REPLY without it means no sync outputs. The host asks for a rising edge at device time t_us
with SYNC_OUT (line, width of the high level, times non-decreasing, at most MAX_EDGES_PER_FRAME, each at
least width_us after the previous one on that line). The device queues edges like pulses and raises the
line at t_us for width_us when its output is on at that instant (running, pausing, stopping: the same
rule as a pulse at that time, so a pause or stop flushes the edges still queued); an edge that arrives
after its time, or one closer than width_us to the previous edge of its line, is not raised and counts as
missed. Each raised edge is reported in SYNC_EDGES (device time it was raised), sent before any later
STATUS, with the session's running totals. A device without sync outputs ignores SYNC_OUT (an unknown
type) and the host never sends it to such a device.

docs/wire-protocol.md is the same spec in prose, with the meaning of every field.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import ProtocolMismatch
from ..profile import DeviceProfile
from .events import DELIVERY_DTYPE
from .link import MAX_PAYLOAD, NAK, VERSION

# ---- message types ------------------------------------------------------------------------------------
# host -> device
HELLO = 0x01
SHAPES = 0x02
PULSES = 0x03
START = 0x04
STOP = 0x05
PAUSE = 0x06
RESUME = 0x07
ESTOP = 0x08
SET_SCALE = 0x09
KEEPALIVE = 0x0A
STATUS_REQ = 0x0B
SYNC_OUT = 0x0C       # sync-out extension
# device -> host
HELLO_REPLY = 0x81
ACK = 0x82
STATUS = 0x83
FAULT = 0x84
SYNC_EDGES = 0x85     # sync-out extension

TYPE_NAMES = {
    HELLO: "HELLO", SHAPES: "SHAPES", PULSES: "PULSES", START: "START", STOP: "STOP", PAUSE: "PAUSE",
    RESUME: "RESUME", ESTOP: "ESTOP", SET_SCALE: "SET_SCALE", KEEPALIVE: "KEEPALIVE", STATUS_REQ: "STATUS_REQ",
    HELLO_REPLY: "HELLO_REPLY", ACK: "ACK", STATUS: "STATUS", FAULT: "FAULT", NAK: "NAK",
    SYNC_OUT: "SYNC_OUT", SYNC_EDGES: "SYNC_EDGES",
}

# device states (STATUS.state)
IDLE, RUNNING, PAUSING, PAUSED, STOPPING, STOPPED, ESTOPPED, FAULTED = range(8)
STATE_NAMES = ("idle", "running", "pausing", "paused", "stopping", "stopped", "estopped", "faulted")

# fault codes (FAULT.code)
FAULT_ELECTRODE = 1
FAULT_OVER_LIMIT = 2
FAULT_WATCHDOG = 3
FAULT_QUEUE_OVERFLOW = 4
FAULT_BAD_PULSE = 5
FAULT_BAD_SHAPE = 6
FAULT_LINK = 7
FAULT_BAD_MESSAGE = 8   # a CRC-valid frame whose payload does not fit its type (detail: the message type)
FAULT_NAMES = {FAULT_ELECTRODE: "electrode", FAULT_OVER_LIMIT: "over_limit", FAULT_WATCHDOG: "watchdog",
               FAULT_QUEUE_OVERFLOW: "queue_overflow", FAULT_BAD_PULSE: "bad_pulse", FAULT_BAD_SHAPE: "bad_shape",
               FAULT_LINK: "link", FAULT_BAD_MESSAGE: "bad_message"}

SCALE_ONE = 1_000_000         # scale register unit: parts per million
MAX_SCALE_PPM = 4_000_000     # a scale register holds 0 .. 4.0
MAX_RAMP_US = 10_000_000      # ramps of STOP/PAUSE/RESUME are at most 10 s

# ---- payloads -----------------------------------------------------------------------------------------

#: PULSES record on the wire (11 bytes, packed, little-endian)
WIRE_PULSE_DTYPE = np.dtype([("dt_us", "<u4"), ("channel", "u1"), ("amplitude_ua", "<i4"), ("shape", "<u2")])
#: ACK record on the wire (17 bytes, packed): one per delivered pulse (the runtime's DELIVERY_DTYPE)
ACK_DTYPE = DELIVERY_DTYPE
PULSES_HEAD = struct.Struct("<IqH")      # first_index, base_t_us, n
ACK_HEAD = struct.Struct("<qIIIH")       # device_t_us, queue_level, rx_pulses_total, late_total, n
MAX_PULSES_PER_FRAME = (MAX_PAYLOAD - PULSES_HEAD.size) // WIRE_PULSE_DTYPE.itemsize  # 1488
MAX_ACKS_PER_FRAME = (MAX_PAYLOAD - ACK_HEAD.size) // ACK_DTYPE.itemsize              # 962


def encode_pulses(first_index: int, t_us: np.ndarray, channel: np.ndarray, amplitude_ua: np.ndarray,
                  shape: np.ndarray) -> bytes:
    """One PULSES payload (at most MAX_PULSES_PER_FRAME pulses), times in device µs, non-decreasing."""
    n = len(t_us)
    if n > MAX_PULSES_PER_FRAME:
        raise ValueError(f"{n} pulses exceed {MAX_PULSES_PER_FRAME} per frame")
    base = int(t_us[0]) if n else 0
    rec = np.empty(n, dtype=WIRE_PULSE_DTYPE)
    dt = t_us - base
    if n and (dt.min() < 0 or dt.max() > 0xFFFFFFFF):
        raise ValueError("pulse times must be non-decreasing and span < 2**32 µs in one frame")
    rec["dt_us"] = dt
    rec["channel"] = channel
    rec["amplitude_ua"] = amplitude_ua
    rec["shape"] = shape
    return PULSES_HEAD.pack(first_index & 0xFFFFFFFF, base, n) + rec.tobytes()


def decode_pulses_raw(payload: bytes) -> tuple[int, int, np.ndarray]:
    """-> (first_index, base_t_us, WIRE_PULSE_DTYPE records) without copying."""
    first, base, n = PULSES_HEAD.unpack_from(payload)
    if len(payload) != PULSES_HEAD.size + n * WIRE_PULSE_DTYPE.itemsize:
        raise ValueError("PULSES payload length does not match its count")
    return first, base, np.frombuffer(payload, dtype=WIRE_PULSE_DTYPE, count=n, offset=PULSES_HEAD.size)


def decode_pulses(payload: bytes) -> tuple[int, np.ndarray]:
    """-> (first_index, structured array with t_us (absolute device time), channel, amplitude_ua, shape)."""
    first, base, n = PULSES_HEAD.unpack_from(payload)
    if len(payload) != PULSES_HEAD.size + n * WIRE_PULSE_DTYPE.itemsize:
        raise ValueError("PULSES payload length does not match its count")
    rec = np.frombuffer(payload, dtype=WIRE_PULSE_DTYPE, count=n, offset=PULSES_HEAD.size)
    from ..pulses import PULSE_DTYPE

    out = np.empty(n, dtype=PULSE_DTYPE)
    out["t_us"] = rec["dt_us"].astype(np.int64) + base
    out["channel"] = rec["channel"]
    out["amplitude_ua"] = rec["amplitude_ua"]
    out["shape"] = rec["shape"]
    return first, out


def encode_ack(device_t_us: int, queue_level: int, rx_pulses_total: int, late_total: int,
               records: np.ndarray) -> bytes:
    if records.dtype is not ACK_DTYPE and records.dtype != ACK_DTYPE:
        records = records.astype(ACK_DTYPE)
    return ACK_HEAD.pack(device_t_us, queue_level, rx_pulses_total & 0xFFFFFFFF, late_total & 0xFFFFFFFF,
                         len(records)) + records.tobytes()


@dataclass
class AckMsg:
    device_t_us: int
    queue_level: int
    rx_pulses_total: int
    late_total: int
    records: np.ndarray


_ACK_HEAD_SIZE = ACK_HEAD.size
_ACK_RECORD_SIZE = ACK_DTYPE.itemsize
_NO_ACKS = np.frombuffer(b"", dtype=ACK_DTYPE)   # read-only, like every decoded record array


def decode_ack(payload: bytes) -> AckMsg:
    t, ql, rx, late, n = ACK_HEAD.unpack_from(payload)
    if len(payload) != _ACK_HEAD_SIZE + n * _ACK_RECORD_SIZE:
        raise ValueError("ACK payload length does not match its count")
    recs = np.frombuffer(payload, dtype=ACK_DTYPE, count=n, offset=_ACK_HEAD_SIZE) if n else _NO_ACKS
    return AckMsg(t, ql, rx, late, recs)


def encode_shapes(shapes) -> bytes:
    """SHAPES: u16 count, then per shape: u16 index, u8 n_phases, n x (u32 duration_us, i32 amplitude_ppm)."""
    out = bytearray(struct.pack("<H", len(shapes)))
    for i, shape in enumerate(shapes):
        phases = shape.phases if hasattr(shape, "phases") else shape
        if len(phases) > 255:
            raise ValueError("a shape may have at most 255 phases")
        out += struct.pack("<HB", i, len(phases))
        for dur, rel in phases:
            out += struct.pack("<Ii", int(dur), int(round(float(rel) * SCALE_ONE)))
    return bytes(out)


def decode_shapes(payload: bytes) -> list[tuple[tuple[int, int], ...]]:
    """-> list indexed by shape number of phases ((duration_us, amplitude_ppm), ...)."""
    (count,) = struct.unpack_from("<H", payload)
    pos = 2
    shapes: dict[int, tuple] = {}
    for _ in range(count):
        idx, nph = struct.unpack_from("<HB", payload, pos)
        pos += 3
        phases = tuple(struct.unpack_from("<Ii", payload, pos + 8 * k) for k in range(nph))
        pos += 8 * nph
        shapes[idx] = phases
    if pos != len(payload):
        raise ValueError("SHAPES payload length does not match its content")
    return [shapes[i] for i in sorted(shapes)]


PROFILE_STRUCT = struct.Struct("<BIHIIIHBII")  # channels .. watchdog_ms (see docs)
HELLO_HEAD = struct.Struct("<Bq")             # protocol version, device time


def _pstr(s: str) -> bytes:
    b = s.encode("utf-8")[:255]
    return bytes([len(b)]) + b


def _read_pstr(payload: bytes, pos: int) -> tuple[str, int]:
    n = payload[pos]
    return payload[pos + 1:pos + 1 + n].decode("utf-8", "replace"), pos + 1 + n


def encode_hello_reply(device_t_us: int, serial: str, profile: DeviceProfile, sync_lines: int | None = None) -> bytes:
    """``sync_lines`` None: the reply ends after the profile, as before the sync-out extension."""
    p = profile
    out = (HELLO_HEAD.pack(VERSION, device_t_us) + _pstr(serial) + _pstr(p.name)
           + PROFILE_STRUCT.pack(p.channels, p.max_current_ua, p.current_step_ua, p.min_phase_us, p.max_phase_us,
                                 p.max_rate_hz, p.time_base_us, 1 if p.independent_sources else 0,
                                 p.queue_pulses, p.watchdog_ms))
    if sync_lines is not None:
        out += bytes([int(sync_lines)])
    return out


@dataclass
class HelloInfo:
    version: int
    device_t_us: int
    serial: str
    profile: DeviceProfile
    #: TTL trigger outputs (sync-out extension; 0 when the reply does not say)
    sync_lines: int = 0


def decode_hello_reply(payload: bytes) -> HelloInfo:
    version, t = HELLO_HEAD.unpack_from(payload)
    if version != VERSION:
        raise ProtocolMismatch(f"device speaks stimscript wire protocol v{version}; this host speaks v{VERSION}")
    serial, pos = _read_pstr(payload, HELLO_HEAD.size)
    name, pos = _read_pstr(payload, pos)
    (ch, imax, step, pmin, pmax, rate, tb, flags, q, wd) = PROFILE_STRUCT.unpack_from(payload, pos)
    prof = DeviceProfile(name=name, channels=ch, max_current_ua=imax, current_step_ua=step, min_phase_us=pmin,
                         max_phase_us=pmax, max_rate_hz=rate, time_base_us=tb, independent_sources=bool(flags & 1),
                         queue_pulses=q, watchdog_ms=wd)
    pos += PROFILE_STRUCT.size
    sync_lines = payload[pos] if pos < len(payload) else 0
    return HelloInfo(version, t, serial, prof, sync_lines)


STATUS_STRUCT = struct.Struct("<qBIIIIIIqq")
# device_t_us, state, queue_level, queue_capacity, rx_pulses_total, delivered_total, late_total, flushed_total,
# epoch_us, ramp_end_us


@dataclass
class StatusMsg:
    device_t_us: int
    state: int
    queue_level: int
    queue_capacity: int
    rx_pulses_total: int
    delivered_total: int
    late_total: int
    flushed_total: int
    epoch_us: int
    ramp_end_us: int
    scales_ppm: tuple[int, ...] = ()
    link: dict = field(default_factory=dict)
    #: per channel (1-based): pulses delivered and the largest amplitude delivered (µA) this session
    delivered: dict = field(default_factory=dict)
    peak_ua: dict = field(default_factory=dict)
    #: pulses not delivered because their amplitude was 0 at pulse time (scale 0, a ramp's edge)
    silent_total: int = 0

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state] if self.state < len(STATE_NAMES) else f"state{self.state}"


LINK_COUNTERS = ("frames_ok", "bad_crc", "bad_header", "bad_length", "bad_version", "garbage_bytes", "seq_gaps", "duplicates",
                 "naks_sent", "naks_received", "retransmitted")


def encode_status(s: StatusMsg) -> bytes:
    out = STATUS_STRUCT.pack(s.device_t_us, s.state, s.queue_level, s.queue_capacity, s.rx_pulses_total,
                             s.delivered_total, s.late_total, s.flushed_total, s.epoch_us, s.ramp_end_us)
    out += bytes([len(s.scales_ppm)]) + struct.pack(f"<{len(s.scales_ppm)}I", *s.scales_ppm)
    out += struct.pack(f"<{len(LINK_COUNTERS)}I", *(min(0xFFFFFFFF, s.link.get(k, 0)) for k in LINK_COUNTERS))
    chans = sorted(set(s.delivered) | set(s.peak_ua))
    out += bytes([len(chans)])
    for ch in chans:
        out += CHANNEL_COUNTS.pack(ch, min(0xFFFFFFFF, s.delivered.get(ch, 0)), min(0xFFFFFFFF, s.peak_ua.get(ch, 0)))
    out += struct.pack("<I", min(0xFFFFFFFF, s.silent_total))
    return out


CHANNEL_COUNTS = struct.Struct("<BII")   # channel, delivered pulses, peak amplitude µA


def decode_status(payload: bytes) -> StatusMsg:
    (t, state, q_level, q_cap, rx_total, delivered_total, late_total, flushed_total, epoch,
     ramp_end) = STATUS_STRUCT.unpack_from(payload)
    pos = STATUS_STRUCT.size
    nsc = payload[pos]
    scales = struct.unpack_from(f"<{nsc}I", payload, pos + 1)
    pos += 1 + 4 * nsc
    link = dict(zip(LINK_COUNTERS, struct.unpack_from(f"<{len(LINK_COUNTERS)}I", payload, pos)))
    pos += 4 * len(LINK_COUNTERS)
    delivered, peak = {}, {}
    if pos < len(payload):   # per-channel counts (added in v1 without a version change: older STATUS ends here)
        nch = payload[pos]
        pos += 1
        for _ in range(nch):
            ch, n, amp = CHANNEL_COUNTS.unpack_from(payload, pos)
            pos += CHANNEL_COUNTS.size
            delivered[ch], peak[ch] = n, amp
    silent = struct.unpack_from("<I", payload, pos)[0] if pos + 4 <= len(payload) else 0
    return StatusMsg(t, state, q_level, q_cap, rx_total, delivered_total, late_total, flushed_total, epoch,
                     ramp_end, scales_ppm=tuple(scales), link=link, delivered=delivered, peak_ua=peak,
                     silent_total=silent)


FAULT_STRUCT = struct.Struct("<BBqI")  # code, channel (0 = whole device), device_t_us, detail


@dataclass(frozen=True)
class FaultMsg:
    code: int
    channel: int
    device_t_us: int
    detail: int = 0

    @property
    def kind(self) -> str:
        return FAULT_NAMES.get(self.code, f"fault{self.code}")

    def detail_text(self) -> str:
        """``detail`` in words (its meaning depends on the fault code)."""
        d = self.detail
        if self.code == FAULT_OVER_LIMIT:
            return f"{d} µA measured" if d else "output stage over its limit"
        if self.code == FAULT_WATCHDOG:
            return f"no valid frame from the host for {d} ms"
        if self.code == FAULT_QUEUE_OVERFLOW:
            return f"{d} pulses would exceed the queue"
        if self.code == FAULT_BAD_PULSE:
            return f"refused pulse index {d}"
        if self.code == FAULT_BAD_SHAPE:
            return f"refused shape {d}"
        if self.code == FAULT_LINK:
            return "the host asked for frames the device no longer holds"
        if self.code == FAULT_BAD_MESSAGE:
            return f"message type 0x{d:02X} with a payload that does not fit it"
        return f"detail {d}" if d else ""

    def describe(self) -> str:
        where = f"channel {self.channel}" if self.channel else "device"
        extra = self.detail_text()
        return f"{self.kind} fault on {where} at device time {self.device_t_us} µs" + (f" ({extra})" if extra else "")


def encode_fault(f: FaultMsg) -> bytes:
    return FAULT_STRUCT.pack(f.code, f.channel, f.device_t_us, f.detail & 0xFFFFFFFF)


def decode_fault(payload: bytes) -> FaultMsg:
    return FaultMsg(*FAULT_STRUCT.unpack_from(payload))


SET_SCALE_STRUCT = struct.Struct("<BI")   # channel (0 = all), scale_ppm
START_STRUCT = struct.Struct("<q")        # epoch_us: device time of session t = 0
RAMP_STRUCT = struct.Struct("<I")         # STOP / PAUSE: ramp_us
RESUME_STRUCT = struct.Struct("<qI")      # at_us, ramp_us
HELLO_STRUCT = struct.Struct("<BB")       # host protocol version, flags (0)


# ---- sync-out extension -----------------------------------------------------------------------------------
SYNC_OUT_HEAD = struct.Struct("<BIH")       # line, width_us, n; then n x i64 t_us
SYNC_EDGES_HEAD = struct.Struct("<BIIH")    # line, raised_total, missed_total, n; then n x i64 t_us
MAX_EDGES_PER_FRAME = (MAX_PAYLOAD - SYNC_EDGES_HEAD.size) // 8   # 2046
MAX_SYNC_WIDTH_US = 1_000_000


def _times(payload: bytes, offset: int, n: int, what: str) -> np.ndarray:
    if len(payload) != offset + 8 * n:
        raise ValueError(f"{what} payload length does not match its count")
    return np.frombuffer(payload, dtype="<i8", count=n, offset=offset).astype(np.int64)


def encode_sync_out(line: int, width_us: int, t_us) -> bytes:
    """SYNC_OUT: raise ``line`` for ``width_us`` at each device time in ``t_us`` (non-decreasing)."""
    t = np.asarray(t_us, dtype="<i8")
    if len(t) > MAX_EDGES_PER_FRAME:
        raise ValueError(f"{len(t)} edges exceed {MAX_EDGES_PER_FRAME} per frame")
    if len(t) > 1 and np.any(np.diff(t) < 0):
        raise ValueError("sync edge times must be non-decreasing")
    return SYNC_OUT_HEAD.pack(int(line), int(width_us), len(t)) + t.tobytes()


@dataclass
class SyncOutMsg:
    line: int
    width_us: int
    t_us: np.ndarray


def decode_sync_out(payload: bytes) -> SyncOutMsg:
    line, width, n = SYNC_OUT_HEAD.unpack_from(payload)
    return SyncOutMsg(line, width, _times(payload, SYNC_OUT_HEAD.size, n, "SYNC_OUT"))


@dataclass
class SyncEdgesMsg:
    """Edges a device raised (device time), with its running totals for the session."""

    line: int
    raised_total: int
    missed_total: int
    t_us: np.ndarray


def encode_sync_edges(line: int, raised_total: int, missed_total: int, t_us) -> bytes:
    t = np.asarray(t_us, dtype="<i8")
    if len(t) > MAX_EDGES_PER_FRAME:
        raise ValueError(f"{len(t)} edges exceed {MAX_EDGES_PER_FRAME} per frame")
    return SYNC_EDGES_HEAD.pack(int(line), raised_total & 0xFFFFFFFF, missed_total & 0xFFFFFFFF, len(t)) + t.tobytes()


def decode_sync_edges(payload: bytes) -> SyncEdgesMsg:
    line, raised, missed, n = SYNC_EDGES_HEAD.unpack_from(payload)
    return SyncEdgesMsg(line, raised, missed, _times(payload, SYNC_EDGES_HEAD.size, n, "SYNC_EDGES"))
