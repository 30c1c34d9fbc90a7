"""The stimscript wire protocol, version 1 — framing and link layer (the byte-level spec of a frame).

Every frame on the wire::

    offset  size  field
    0       2     sync  0xA5 0x5A
    2       1     version (1)
    3       1     message type (drivers/messages.py; 0x7F NAK is the link's own)
    4       2     seq   u16 LE  sender's frame number (NAK frames: 0, not sequenced)
    6       2     ack   u16 LE  last in-order seq received from the peer (0xFFFF: none yet)
    8       2     len   u16 LE  payload length, <= MAX_PAYLOAD
    10      1     hchk  low byte of CRC-16/CCITT-FALSE over bytes 2 .. 9 (a damaged length is caught at once)
    11      len   payload (drivers/messages.py)
    11+len  2     crc   u16 LE  CRC-16/CCITT-FALSE over bytes 2 .. 11+len-1 (version .. payload)

CRC-16/CCITT-FALSE: polynomial 0x1021 (x^16 + x^12 + x^5 + 1), init 0xFFFF, no reflection, xorout 0;
check value CRC("123456789") = 0x29B1.

Link layer (:class:`Link`): go-back-N. A receiver accepts only the next expected seq; a frame that skips
ahead is dropped, counted as a sequence gap and answered with one NAK(expected) — NAK payload: u16 LE
expected seq; the sender retransmits every frame from ``expected`` on. Frames with a bad CRC, a bad length,
an unknown version or bytes between frames are counted and skipped by resynchronising on the next sync
pair. Nothing bad is ever delivered to the application. Message types listed in ``out_of_band`` (ESTOP)
are acted on even when they arrive out of order (safety first).

This module knows nothing about payloads; drivers/messages.py knows nothing about frames.
"""
from __future__ import annotations

import binascii
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from ..errors import ProtocolMismatch
from .. import twins

VERSION = 1
SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<2sBBHHH")  # without the header check byte
HEADER_SIZE = HEADER.size + 1  # 11
CRC_SIZE = 2
MAX_PAYLOAD = 16384
NO_ACK = 0xFFFF

# link control (both directions, not sequenced)
NAK = 0x7F
UNSEQUENCED = frozenset({NAK})

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


def _crc_for_long_data() -> Callable[[bytes, int], int] | None:
    """anycrc's CRC-16/IBM-3740 (the catalogue's name for CCITT-FALSE: the same polynomial, init, no reflection,
    no final xor) computes many bytes at a time: ~15x faster than ``binascii.crc_hqx`` on a pulse or
    acknowledgement payload, but with a fixed cost per call that makes it slower below ~256 bytes. None when
    anycrc is not installed (then ``binascii.crc_hqx`` does all of it)."""
    try:
        import anycrc
    except ImportError:    # pragma: no cover - a declared dependency; the fallback keeps the wire working
        return None
    return anycrc.Model("CRC16-IBM-3740").calc


#: data at least this long goes to the many-bytes-at-a-time CRC (when installed)
LONG_CRC_BYTES = 256
_crc_long = _crc_for_long_data()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), continuing from ``crc``. ``binascii.crc_hqx`` computes
    the same polynomial without reflection in C (short data); anycrc computes long data faster; tests check
    both against :func:`crc16_reference`."""
    if _crc_long is not None and len(data) >= LONG_CRC_BYTES:
        return _crc_long(data, crc)
    return binascii.crc_hqx(data, crc)


# ---- frames -------------------------------------------------------------------------------------------


_HEAD_FIELDS = struct.Struct("<BBHHH")   # version, type, seq, ack, len: the bytes the header check covers
_FRAME_HEAD = struct.Struct("<2sBBHHHB")  # sync .. hchk: the 11 bytes in front of the payload
_crc_hqx = binascii.crc_hqx


def encode_frame_py(mtype: int, seq: int, ack: int, payload: bytes = b"") -> bytes:
    """One frame (the pure-Python reference; :func:`encode_frame` is the compiled twin when built)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes exceeds {MAX_PAYLOAD}")
    seq &= 0xFFFF
    ack &= 0xFFFF
    head = _crc_hqx(_HEAD_FIELDS.pack(VERSION, mtype, seq, ack, n), 0xFFFF)
    hchk = head & 0xFF
    # the frame CRC continues the header's over the check byte (one table step) and the payload
    crc = ((head << 8) & 0xFFFF) ^ CRC_TABLE[(head >> 8) ^ hchk]
    if n:
        crc = _crc_long(payload, crc) if n >= LONG_CRC_BYTES and _crc_long is not None else _crc_hqx(payload, crc)
        return b"".join((_FRAME_HEAD.pack(SYNC, VERSION, mtype, seq, ack, n, hchk), payload,
                         crc.to_bytes(2, "little")))
    return _FRAME_HEAD.pack(SYNC, VERSION, mtype, seq, ack, 0, hchk) + crc.to_bytes(2, "little")


@dataclass(slots=True)
class Frame:
    mtype: int
    seq: int
    ack: int
    payload: bytes

    @property
    def name(self) -> str:
        from .messages import TYPE_NAMES   # the message names live one layer up; only for messages

        return TYPE_NAMES.get(self.mtype, f"0x{self.mtype:02X}")


def _load_twin():
    """The compiled frame kernels (ext/_runlink.pyx), or None for the pure-Python reference (stimscript.twins
    reads the switches that force the reference or require the twin)."""
    if not twins.wanted():
        return None
    try:
        from ..ext._runlink import crc16, encode_frame, encode_train, scan, train_ack
    except ImportError as err:
        twins.missing(err)
        return None
    return SimpleNamespace(crc16=crc16, encode_frame=encode_frame, encode_train=encode_train, scan=scan,
                           train_ack=train_ack)


_twin = _load_twin()
#: True when frames are encoded and scanned by the compiled twin
USING_EXTENSION = _twin is not None


def encode_frame(mtype: int, seq: int, ack: int, payload: bytes = b"") -> bytes:
    """One frame: sync, header, header check, payload, CRC (the layout in this module's docstring)."""
    if _twin is not None:
        return _twin.encode_frame(mtype, seq, ack, payload, _crc_long, LONG_CRC_BYTES)
    return encode_frame_py(mtype, seq, ack, payload)


def train_ack_py(buf: bytes, count: int, mtype: int, seq: int) -> int:
    """The ack carried by ``buf`` when it is exactly ``count`` intact frames without payload of type ``mtype``,
    numbered ``seq``, ``seq + 1``, ... (mod 2**16), all carrying the same ack; else -1 (the pure-Python
    reference of ext/_runlink.pyx ``train_ack``)."""
    size = HEADER_SIZE + CRC_SIZE
    if count <= 0 or len(buf) != size * count:
        return -1
    ack = -1
    for i in range(count):
        pos = i * size
        sync, version, mtype_i, seq_i, ack_i, length = HEADER.unpack_from(buf, pos)
        if sync != SYNC or version != VERSION or mtype_i != mtype or length or seq_i != seq:
            return -1
        head = _crc_hqx(buf[pos + 2:pos + 10], 0xFFFF)
        if head & 0xFF != buf[pos + 10]:
            return -1
        if ((head << 8) & 0xFFFF) ^ CRC_TABLE[(head >> 8) ^ buf[pos + 10]] != buf[pos + 11] | (buf[pos + 12] << 8):
            return -1
        if i and ack_i != ack:
            return -1
        ack = ack_i
        seq = (seq + 1) & 0xFFFF
    return ack


def train_ack(buf: bytes, count: int, mtype: int, seq: int) -> int:
    """See :func:`train_ack_py` (the compiled twin when built)."""
    if _twin is not None:
        return _twin.train_ack(buf, count, mtype, seq)
    return train_ack_py(buf, count, mtype, seq)


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
        #: scan with the compiled twin when it is built (False: the pure-Python reference loop)
        self.compiled = True
        #: damaged frames (bad version, header check, length or CRC) skipped by the last ``feed``
        self.last_bad = 0

    def feed(self, data: bytes) -> list[Frame]:
        if self.buf:
            if data:
                self.buf += data
            buf = bytes(self.buf)
        elif data:
            buf = data if type(data) is bytes else bytes(data)
        else:
            self.last_bad = 0
            return []
        if _twin is None or not self.compiled:
            return self._feed_py(buf)
        # the compiled receive loop (ext/_runlink.pyx ``scan``; _feed_py is its reference)
        out, pos, garbage, bad_version, bad_header, bad_length, bad_crc = _twin.scan(buf, Frame, _crc_long,
                                                                                    LONG_CRC_BYTES)
        st = self.stats
        if out:
            st.frames_ok += len(out)
        bad = bad_version + bad_header + bad_length + bad_crc
        if bad or garbage:
            st.garbage_bytes += garbage
            st.bad_version += bad_version
            st.bad_header += bad_header
            st.bad_length += bad_length
            st.bad_crc += bad_crc
        self.last_bad = bad
        if pos < len(buf):
            self.buf = bytearray(buf[pos:])
        elif self.buf:
            self.buf = bytearray()
        return out

    def _feed_py(self, buf: bytes) -> list[Frame]:
        """The receive loop in plain Python (the reference of ext/_runlink.pyx ``scan``)."""
        out: list[Frame] = []
        pos = 0
        n = len(buf)
        st = self.stats
        unpack = HEADER.unpack_from
        crc = _crc_hqx
        crc_long = _crc_long
        bad = 0
        ok = 0
        while True:
            if buf[pos] == 0xA5 and buf[pos + 1:pos + 2] == b"\x5a":   # the usual case: a frame starts here
                i = pos
            else:
                i = buf.find(SYNC, pos)
                if i < 0:
                    # keep a trailing 0xA5 that may start the next sync pair
                    keep = 1 if buf[n - 1] == 0xA5 else 0
                    st.garbage_bytes += n - pos - keep
                    pos = n - keep
                    break
                st.garbage_bytes += i - pos
                pos = i
            if n - pos < HEADER_SIZE:
                break
            _, version, mtype, seq, ack, length = unpack(buf, pos)
            if version != VERSION:
                st.bad_version += 1
                bad += 1
                pos += 1
                continue
            hchk = buf[pos + 10]
            head_crc = crc(buf[pos + 2:pos + 10], 0xFFFF)
            if head_crc & 0xFF != hchk:
                st.bad_header += 1
                bad += 1
                pos += 1
                continue
            if length > MAX_PAYLOAD:
                st.bad_length += 1
                bad += 1
                pos += 1
                continue
            end = pos + HEADER_SIZE + length + CRC_SIZE
            if end > n:
                break
            # the frame CRC continues the header's over the check byte and the payload
            c = ((head_crc << 8) & 0xFFFF) ^ CRC_TABLE[(head_crc >> 8) ^ hchk]
            if length:
                payload = buf[pos + HEADER_SIZE:end - 2]
                c = crc_long(payload, c) if length >= LONG_CRC_BYTES and crc_long is not None else crc(payload, c)
            else:
                payload = b""
            if c != buf[end - 2] | (buf[end - 1] << 8):
                st.bad_crc += 1
                bad += 1
                pos += 1
                continue
            out.append(Frame(mtype, seq, ack, payload))
            ok += 1
            pos = end
            if pos == n:
                break
        if ok:
            st.frames_ok += ok
        self.last_bad = bad
        if pos < n:
            self.buf = bytearray(buf[pos:])
        elif self.buf:
            self.buf = bytearray()
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
        if not self.gap_open and (self.rto_us is None or not self.retx):
            return b""      # no timer runs (the usual case): nothing to send
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
        expected = self.rx_expected if self.rx_expected is not None else 0
        return encode_frame(NAK, 0, self.ack_value, expected.to_bytes(2, "little"))

    @property
    def ack_value(self) -> int:
        return NO_ACK if self.rx_expected is None else (self.rx_expected - 1) & 0xFFFF

    def send(self, mtype: int, payload: bytes = b"") -> bytes:
        expected = self.rx_expected
        ack = NO_ACK if expected is None else (expected - 1) & 0xFFFF
        if mtype in UNSEQUENCED:
            return encode_frame(mtype, 0, ack, payload)
        seq = self.tx_seq
        self.tx_seq = (seq + 1) & 0xFFFF
        frame = _twin.encode_frame(mtype, seq, ack, payload, _crc_long, LONG_CRC_BYTES) if _twin is not None \
            else encode_frame_py(mtype, seq, ack, payload)
        retx = self.retx
        if not retx:
            self._progress_at = self._now   # the retransmission timer runs from the first frame held
        retx[seq] = frame
        if len(retx) > self.retx_limit:
            retx.popitem(last=False)
        return frame

    def send_train(self, mtype: int, count: int) -> list[bytes]:
        """``count`` sequenced frames of ``mtype`` without payload, numbered and held as :meth:`send` does it
        (a train of KEEPALIVE frames the caller writes one by one at their times)."""
        expected = self.rx_expected
        ack = NO_ACK if expected is None else (expected - 1) & 0xFFFF
        retx = self.retx
        if not retx and count:
            self._progress_at = self._now
        seq = self.tx_seq
        if _twin is not None:
            out = _twin.encode_train(mtype, seq, ack, count, retx)   # encoded and held in one compiled call
            seq = (seq + count) & 0xFFFF
        else:
            out = []
            for _ in range(count):
                frame = encode_frame_py(mtype, seq, ack)
                retx[seq] = frame
                out.append(frame)
                seq = (seq + 1) & 0xFFFF
        self.tx_seq = seq
        while len(retx) > self.retx_limit:
            retx.popitem(last=False)
        return out

    def _prune(self, ack: int) -> None:
        if ack == NO_ACK:
            return
        acked = self._acked
        if acked is None or 0 < ((ack - acked) & 0xFFFF) < 0x8000:
            self._acked = ack
        retx = self.retx
        if not retx:
            return
        if next(reversed(retx)) == ack:
            retx.clear()        # the peer has every held frame, up to the newest (the usual case)
            self._progress_at = self._now
            return
        pruned = False
        for first in retx:      # oldest first; stops at the first frame the peer does not have yet
            if first == ack or 0 < ((ack - first) & 0xFFFF) < 0x8000:
                pruned = True
            else:
                break
        else:
            retx.clear()        # the peer has every held frame (the usual case)
            self._progress_at = self._now
            return
        if pruned:
            while True:
                first = next(iter(retx))
                if first == ack or 0 < ((ack - first) & 0xFFFF) < 0x8000:
                    retx.popitem(last=False)
                else:
                    break
            self._progress_at = self._now

    def take_train(self, data: bytes, count: int, mtype: int, now_us: int) -> bool:
        """Take ``data`` when it is ``count`` intact frames of ``mtype`` without payload, each the next one
        expected, all carrying one ack (a KEEPALIVE train): counted, acknowledged and the expected seq moved
        on exactly as :meth:`receive` would, without making a Frame of each. False: ``data`` is not such a
        train and nothing was taken (give it to :meth:`receive`)."""
        expected = self.rx_expected
        if expected is None or self.decoder.buf or mtype == NAK or mtype in self.reset_types:
            return False
        ack = _twin.train_ack(data, count, mtype, expected) if _twin is not None else \
            train_ack_py(data, count, mtype, expected)
        if ack < 0:
            return False
        self._now = now_us
        self.stats.frames_ok += count
        if ack != NO_ACK:
            self._prune(ack)
        self.rx_expected = (expected + count) & 0xFFFF
        self.nak_outstanding = False
        self.gap_open = False
        self.decoder.last_bad = 0
        return True

    def expect(self, seq: int) -> None:
        """Resynchronise the receive side: the next accepted frame is ``seq``."""
        self.rx_expected = seq & 0xFFFF
        self.nak_outstanding = False
        self.gap_open = False

    def receive(self, data: bytes, now_us: int | None = None) -> tuple[list[Frame], bytes]:
        if now_us is not None:
            self._now = now_us
        frames = self.decoder.feed(data)
        if len(frames) == 1 and not self.decoder.last_bad:
            # the usual case: one frame, the next one expected, no link control
            fr = frames[0]
            if fr.ack != NO_ACK:
                self._prune(fr.ack)
            if fr.seq == self.rx_expected and fr.mtype != NAK and fr.mtype not in self.reset_types:
                self.rx_expected = (fr.seq + 1) & 0xFFFF
                self.nak_outstanding = False
                self.gap_open = False
                return frames, b""
            return self._accept(frames, True)
        if frames and not self.decoder.last_bad and self.rx_expected is not None:
            # several frames, each the next one expected, no link control: taken in one pass
            seq = self.rx_expected
            reset = self.reset_types
            last_ack = NO_ACK
            for fr in frames:
                if fr.seq != seq or fr.mtype == NAK or fr.mtype in reset:
                    break
                seq = (seq + 1) & 0xFFFF
                if fr.ack != last_ack and fr.ack != NO_ACK:
                    self._prune(fr.ack)
                    last_ack = fr.ack
            else:
                self.rx_expected = seq
                self.nak_outstanding = False
                self.gap_open = False
                return frames, b""
            # not all in order: the general path from the first frame (pruning again is harmless)
        return self._accept(frames, False)

    def _accept(self, frames: list[Frame], pruned: bool) -> tuple[list[Frame], bytes]:
        accepted: list[Frame] = []
        reply = b""
        for fr in frames:
            if fr.ack != NO_ACK and not pruned:
                self._prune(fr.ack)
            mtype = fr.mtype
            if mtype == NAK:
                self.stats.naks_received += 1
                if len(fr.payload) >= 2:
                    reply += self.retransmit_from(int.from_bytes(fr.payload[:2], "little"))
                continue
            if mtype in self.reset_types:
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
                if mtype in self.out_of_band:
                    accepted.append(fr)  # acted on at once; harmless when it is retransmitted later
                if not self.nak_outstanding:
                    reply += self._nak()
            else:
                self.stats.duplicates += 1
        if self.decoder.last_bad:
            # a damaged frame may have been the retransmission we asked for: allow a fresh NAK
            self.nak_outstanding = False
        return accepted, reply

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
