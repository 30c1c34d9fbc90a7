"""The stimscript wire protocol, version 1: ONE encoder/decoder shared by the host drivers and the emulator.

Every byte is documented in docs/wire-protocol.md. Summary::

    offset  size  field
    0       2     sync  0xA5 0x5A
    2       1     version (1)
    3       1     message type
    4       2     seq   u16 LE  sender's frame number (NAK frames: 0, not sequenced)
    6       2     ack   u16 LE  last in-order seq received from the peer (0xFFFF: none yet)
    8       2     len   u16 LE  payload length, <= MAX_PAYLOAD
    10      1     hchk  low byte of CRC-16/CCITT-FALSE over bytes 2 .. 9 (a damaged length is caught at once)
    11      len   payload (little-endian fields, see the message classes below)
    11+len  2     crc   u16 LE  CRC-16/CCITT-FALSE over bytes 2 .. 11+len-1 (version .. payload)

CRC-16/CCITT-FALSE: polynomial 0x1021 (x^16 + x^12 + x^5 + 1), init 0xFFFF, no reflection, xorout 0;
check value CRC("123456789") = 0x29B1.

Link layer (:class:`Link`): go-back-N. A receiver accepts only the next expected seq; a frame that skips
ahead is dropped, counted as a sequence gap and answered with one NAK(expected); the sender retransmits
every frame from ``expected`` on. Frames with a bad CRC, a bad length, an unknown version or bytes
between frames are counted and skipped by resynchronising on the next sync pair. Nothing bad is ever
delivered to the application. ESTOP is acted on even when it arrives out of order (safety first).
"""
from __future__ import annotations

import binascii
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..errors import ProtocolMismatch
from ..profile import DeviceProfile
from .events import DELIVERY_DTYPE

VERSION = 1
SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<2sBBHHH")  # without the header check byte
HEADER_SIZE = HEADER.size + 1  # 11
CRC_SIZE = 2
MAX_PAYLOAD = 16384
NO_ACK = 0xFFFF

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
# device -> host
HELLO_REPLY = 0x81
ACK = 0x82
STATUS = 0x83
FAULT = 0x84
# both directions, link control (not sequenced)
NAK = 0x7F

TYPE_NAMES = {
    HELLO: "HELLO", SHAPES: "SHAPES", PULSES: "PULSES", START: "START", STOP: "STOP", PAUSE: "PAUSE",
    RESUME: "RESUME", ESTOP: "ESTOP", SET_SCALE: "SET_SCALE", KEEPALIVE: "KEEPALIVE", STATUS_REQ: "STATUS_REQ",
    HELLO_REPLY: "HELLO_REPLY", ACK: "ACK", STATUS: "STATUS", FAULT: "FAULT", NAK: "NAK",
}
UNSEQUENCED = frozenset({NAK})

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

# ---- CRC-16/CCITT-FALSE -------------------------------------------------------------------------------


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


CRC_TABLE = _make_table()


def crc16_reference(data: bytes, crc: int = 0xFFFF) -> int:
    """Table-driven CRC-16/CCITT-FALSE in plain Python: the documented reference (slow)."""
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF). ``binascii.crc_hqx`` computes the same polynomial
    without reflection in C; tests check it against :func:`crc16_reference`."""
    return binascii.crc_hqx(data, crc)


# ---- frames -------------------------------------------------------------------------------------------


def encode_frame(mtype: int, seq: int, ack: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(SYNC, VERSION, mtype, seq & 0xFFFF, ack & 0xFFFF, len(payload))
    head += bytes([crc16(head[2:]) & 0xFF])
    body = head[2:] + payload
    return head + payload + crc16(body).to_bytes(2, "little")


@dataclass
class Frame:
    mtype: int
    seq: int
    ack: int
    payload: bytes

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.mtype, f"0x{self.mtype:02X}")


@dataclass
class LinkStats:
    frames_ok: int = 0
    bad_crc: int = 0
    bad_header: int = 0
    bad_length: int = 0
    bad_version: int = 0
    garbage_bytes: int = 0
    seq_gaps: int = 0          # frames dropped because they skipped ahead of the expected seq
    duplicates: int = 0        # retransmitted frames received twice (dropped, harmless)
    naks_sent: int = 0
    naks_received: int = 0
    retransmitted: int = 0
    nak_retries: int = 0       # NAKs sent again by the timer because the gap was still open
    timeouts: int = 0          # retransmissions started by the timer (nothing acknowledged for rto_us)

    @property
    def bad_frames(self) -> int:
        return self.bad_crc + self.bad_header + self.bad_length + self.bad_version + self.seq_gaps

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class FrameDecoder:
    """Incremental frame parser: feed bytes, get whole valid frames; resyncs on the sync pair after any
    bad frame or garbage, counting what it skipped."""

    def __init__(self, stats: LinkStats | None = None):
        self.buf = bytearray()
        self.stats = stats if stats is not None else LinkStats()

    def feed(self, data: bytes) -> list[Frame]:
        if data:
            self.buf += data
        out: list[Frame] = []
        buf = self.buf
        pos = 0
        n = len(buf)
        st = self.stats
        while True:
            i = buf.find(SYNC, pos)
            if i < 0:
                # keep a trailing 0xA5 that may start the next sync pair
                keep = 1 if n > pos and buf[n - 1] == SYNC[0] else 0
                st.garbage_bytes += n - pos - keep
                pos = n - keep
                break
            if i > pos:
                st.garbage_bytes += i - pos
                pos = i
            if n - pos < HEADER_SIZE:
                break
            _, version, mtype, seq, ack, length = HEADER.unpack_from(buf, pos)
            if version != VERSION:
                st.bad_version += 1
                pos += 1
                continue
            if crc16(bytes(buf[pos + 2:pos + HEADER_SIZE - 1])) & 0xFF != buf[pos + HEADER_SIZE - 1]:
                st.bad_header += 1
                pos += 1
                continue
            if length > MAX_PAYLOAD:
                st.bad_length += 1
                pos += 1
                continue
            end = pos + HEADER_SIZE + length + CRC_SIZE
            if end > n:
                break
            crc_rx = buf[end - 2] | (buf[end - 1] << 8)
            if crc16(bytes(buf[pos + 2:end - 2])) != crc_rx:
                st.bad_crc += 1
                pos += 1
                continue
            out.append(Frame(mtype, seq, ack, bytes(buf[pos + HEADER_SIZE:end - 2])))
            st.frames_ok += 1
            pos = end
        if pos:
            del buf[:pos]
        return out


def _seq_after(a: int, b: int) -> bool:
    """True when seq a comes after seq b (mod 2**16, window 2**15)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


class LinkError(ProtocolMismatch):
    """The peer asked for a frame this side no longer holds: the link cannot recover."""


class Link:
    """One side of the go-back-N link: sequence numbers, retransmission buffer, NAKs, counters.

    ``send`` returns the bytes to transmit; ``receive`` returns ``(messages, reply_bytes)`` where
    ``messages`` are the in-order application frames and ``reply_bytes`` is what the link itself must
    send back (NAKs, retransmissions). ``poll(now_us)`` runs the timers and returns what they send;
    call it regularly (the host on every poll, the device whenever it runs), even when nothing arrives:

    * NAK timer: while a gap is open (a frame skipped ahead of the expected seq and nothing in order has
      arrived since), the NAK is sent again every ``nak_retry_us`` — a lost or damaged NAK, or a lost
      retransmission, therefore never stalls the link;
    * retransmission timer (``rto_us``, None = off): when frames are held unacknowledged and nothing has
      been acknowledged for ``rto_us``, every held frame is sent again (go-back-N); the peer drops the
      copies it already has.

    Every frame carries the last in-order seq received (``ack``), so held frames are released as soon
    as the peer's next frame arrives; a peer that is silent is the runtime's business (it asks for
    STATUS, then declares the link lost), not the link's.
    """

    def __init__(self, retx_frames: int = 4096, out_of_band: frozenset = frozenset(),
                 reset_types: frozenset = frozenset(), nak_retry_us: int = 50_000, rto_us: int | None = None):
        self.stats = LinkStats()
        self.reset_types = reset_types
        self.decoder = FrameDecoder(self.stats)
        self.retx_limit = retx_frames
        self.out_of_band = out_of_band
        self.nak_retry_us = nak_retry_us
        self.rto_us = rto_us
        self.reset()

    def reset(self) -> None:
        self.tx_seq = 0
        self.rx_expected: int | None = 0  # both sides number their frames from 0 after a reset (HELLO)
        self.retx: "OrderedDict[int, bytes]" = OrderedDict()
        self.nak_outstanding = False
        self.gap_open = False          # a frame skipped ahead and nothing in order arrived since
        self._nak_at: int | None = None
        self._progress_at: int | None = None   # last time something was acknowledged (or first held)
        self._now: int | None = None
        self._acked: int | None = None         # the latest ack the peer sent (frames up to it are delivered)

    def poll(self, now_us: int) -> bytes:
        """Run the timers at ``now_us``; -> bytes to send (a repeated NAK, retransmissions) or b""."""
        self._now = now_us
        out = bytearray()
        if self.gap_open and self.rx_expected is not None:
            if self._nak_at is None or now_us - self._nak_at >= self.nak_retry_us:
                if self._nak_at is not None:
                    self.stats.nak_retries += 1
                out += self._nak()
        if self.rto_us is not None and self.retx:
            if self._progress_at is None:
                self._progress_at = now_us
            elif now_us - self._progress_at >= self.rto_us:
                self.stats.timeouts += 1
                self._progress_at = now_us
                out += self.retransmit_from(next(iter(self.retx)))
        return bytes(out)

    def _nak(self) -> bytes:
        self.nak_outstanding = True
        self.stats.naks_sent += 1
        self._nak_at = self._now
        return encode_frame(NAK, 0, self.ack_value, self.rx_expected.to_bytes(2, "little"))

    @property
    def ack_value(self) -> int:
        return NO_ACK if self.rx_expected is None else (self.rx_expected - 1) & 0xFFFF

    def send(self, mtype: int, payload: bytes = b"") -> bytes:
        if mtype in UNSEQUENCED:
            return encode_frame(mtype, 0, self.ack_value, payload)
        seq = self.tx_seq
        self.tx_seq = (seq + 1) & 0xFFFF
        frame = encode_frame(mtype, seq, self.ack_value, payload)
        if not self.retx:
            self._progress_at = self._now   # the retransmission timer runs from the first frame held
        self.retx[seq] = frame
        if len(self.retx) > self.retx_limit:
            self.retx.popitem(last=False)
        return frame

    def _prune(self, ack: int) -> None:
        if ack == NO_ACK:
            return
        if self._acked is None or _seq_after(ack, self._acked):
            self._acked = ack
        pruned = False
        while self.retx:
            first = next(iter(self.retx))
            if first == ack or _seq_after(ack, first):
                self.retx.popitem(last=False)
                pruned = True
            else:
                break
        if pruned:
            self._progress_at = self._now

    def expect(self, seq: int) -> None:
        """Resynchronise the receive side: the next accepted frame is ``seq``."""
        self.rx_expected = seq & 0xFFFF
        self.nak_outstanding = False
        self.gap_open = False

    def receive(self, data: bytes, now_us: int | None = None) -> tuple[list[Frame], bytes]:
        if now_us is not None:
            self._now = now_us
        accepted: list[Frame] = []
        reply = bytearray()
        bad_before = self.stats.bad_crc + self.stats.bad_header + self.stats.bad_length + self.stats.bad_version
        for fr in self.decoder.feed(data):
            self._prune(fr.ack)
            if fr.mtype == NAK:
                self.stats.naks_received += 1
                if len(fr.payload) >= 2:
                    reply += self.retransmit_from(int.from_bytes(fr.payload[:2], "little"))
                continue
            if fr.mtype in self.reset_types:
                # a HELLO restarts the link: both directions start afresh
                now = self._now
                self.reset()
                self._now = now
                self.rx_expected = (fr.seq + 1) & 0xFFFF
                accepted.append(fr)
            elif self.rx_expected is None or fr.seq == self.rx_expected:
                self.rx_expected = (fr.seq + 1) & 0xFFFF
                self.nak_outstanding = False
                self.gap_open = False
                accepted.append(fr)
            elif _seq_after(fr.seq, self.rx_expected):
                self.stats.seq_gaps += 1
                self.gap_open = True
                if fr.mtype in self.out_of_band:
                    accepted.append(fr)  # acted on at once; harmless when it is retransmitted later
                if not self.nak_outstanding:
                    reply += self._nak()
            else:
                self.stats.duplicates += 1
        if self.stats.bad_crc + self.stats.bad_header + self.stats.bad_length + self.stats.bad_version > bad_before:
            # a damaged frame may have been the retransmission we asked for: allow a fresh NAK
            self.nak_outstanding = False
        return accepted, bytes(reply)

    def retransmit_from(self, seq: int) -> bytes:
        if seq == self.tx_seq:
            return b""  # the peer has everything
        if seq not in self.retx:
            if self._acked is not None and not _seq_after(seq, self._acked):
                return b""  # a stale NAK (delayed or reordered): the peer has since acknowledged that frame
            raise LinkError(f"peer asked to retransmit frame {seq}, which is no longer held "
                            f"(holding {len(self.retx)} frames)")
        out = bytearray()
        started = False
        for s, frame in self.retx.items():
            if s == seq:
                started = True
            if started:
                out += frame
                self.stats.retransmitted += 1
        return bytes(out)


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
    return ACK_HEAD.pack(device_t_us, queue_level, rx_pulses_total & 0xFFFFFFFF, late_total & 0xFFFFFFFF,
                         len(records)) + records.astype(ACK_DTYPE, copy=False).tobytes()


@dataclass
class AckMsg:
    device_t_us: int
    queue_level: int
    rx_pulses_total: int
    late_total: int
    records: np.ndarray


def decode_ack(payload: bytes) -> AckMsg:
    t, ql, rx, late, n = ACK_HEAD.unpack_from(payload)
    if len(payload) != ACK_HEAD.size + n * ACK_DTYPE.itemsize:
        raise ValueError("ACK payload length does not match its count")
    recs = np.frombuffer(payload, dtype=ACK_DTYPE, count=n, offset=ACK_HEAD.size)
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


def encode_hello_reply(device_t_us: int, serial: str, profile: DeviceProfile) -> bytes:
    p = profile
    return (HELLO_HEAD.pack(VERSION, device_t_us) + _pstr(serial) + _pstr(p.name)
            + PROFILE_STRUCT.pack(p.channels, p.max_current_ua, p.current_step_ua, p.min_phase_us, p.max_phase_us,
                                  p.max_rate_hz, p.time_base_us, 1 if p.independent_sources else 0,
                                  p.queue_pulses, p.watchdog_ms))


@dataclass
class HelloInfo:
    version: int
    device_t_us: int
    serial: str
    profile: DeviceProfile


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
    return HelloInfo(version, t, serial, prof)


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
    vals = STATUS_STRUCT.unpack_from(payload)
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
    return StatusMsg(*vals, scales_ppm=tuple(scales), link=link, delivered=delivered, peak_ua=peak,
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
