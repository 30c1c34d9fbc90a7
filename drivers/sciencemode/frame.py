"""ScienceMode frames: the byte-level codec of Hasomed's serial protocol (RehaMove3, P24).

A frame on the wire, as sent::

    0xF0 | 0x81 L1^0x55 0x81 L2^0x55 | 0x81 C1^0x55 0x81 C2^0x55 | H1 H2 | data ... | 0x0F
    start  length (always stuffed)     checksum (always stuffed)   header  payload    stop

* ``H1 H2``: packet number (0..63) and command number (0..1023) packed as
  ``H1 = pn << 2 | cmd >> 8``, ``H2 = cmd & 0xFF``. The device echoes the packet number in its answer.
* **Stuffing**: between the start and the stop byte, every 0xF0, 0x0F and 0x81 is sent as two bytes,
  ``0x81, byte ^ 0x55``. The four length and checksum bytes are always sent that way, whatever their value,
  so the header is a fixed 9 bytes (start + 8).
* **Length**: big-endian, the number of bytes of the whole frame as sent (start and stop included).
* **Checksum**: CRC-16/XMODEM (polynomial 0x1021, initial 0, no reflection, no final XOR) over the bytes
  *as sent* from the first header byte up to, not including, the stop byte.
* Multi-byte values in the payload are big-endian. A frame is at most 1200 bytes as sent.

:func:`encode` builds a frame; :class:`FrameReader` takes bytes as they arrive and yields
:class:`Frame` objects, or :class:`FrameError` for a frame that is malformed (bad length or checksum,
truncated, an unknown stuffing sequence) so an answering side can report a transfer error.
"""
from __future__ import annotations

from dataclasses import dataclass

START = 0xF0
STOP = 0x0F
STUFF = 0x81
STUFF_KEY = 0x55
MAX_FRAME = 1200
HEADER_SENT = 9          # start + 4 stuffed length bytes + 4 stuffed checksum bytes
MAX_PACKET_NUMBER = 63
MAX_COMMAND = 1023
_SPECIAL = frozenset((START, STOP, STUFF))


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/XMODEM: polynomial 0x1021, initial value 0, MSB first, no final XOR."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def stuff(data: bytes) -> bytes:
    """Escape the start, stop and stuffing bytes."""
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out += bytes((STUFF, b ^ STUFF_KEY))
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    """Undo :func:`stuff`; raises ValueError on a dangling stuffing byte or an escape of nothing special."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == STUFF:
            try:
                nxt = next(it) ^ STUFF_KEY
            except StopIteration:
                raise ValueError("the frame ends inside a stuffing sequence") from None
            out.append(nxt)
        else:
            out.append(b)
    return bytes(out)


def _stuffed_pair(value: int) -> bytes:
    hi, lo = (value >> 8) & 0xFF, value & 0xFF
    return bytes((STUFF, hi ^ STUFF_KEY, STUFF, lo ^ STUFF_KEY))


@dataclass(frozen=True)
class Frame:
    """One decoded frame: packet number, command number, payload (unstuffed), and the bytes as sent."""

    packet_number: int
    command: int
    data: bytes
    raw: bytes = b""


class FrameError(ValueError):
    """A frame arrived but is unusable. ``packet_number``/``command`` are filled in when the header survived."""

    def __init__(self, message: str, raw: bytes = b"", packet_number: int | None = None,
                 command: int | None = None):
        super().__init__(message)
        self.raw = raw
        self.packet_number = packet_number
        self.command = command


def encode(packet_number: int, command: int, data: bytes = b"") -> bytes:
    """The bytes of one frame as sent."""
    if not 0 <= packet_number <= MAX_PACKET_NUMBER:
        raise ValueError(f"packet number {packet_number} outside 0..{MAX_PACKET_NUMBER}")
    if not 0 <= command <= MAX_COMMAND:
        raise ValueError(f"command number {command} outside 0..{MAX_COMMAND}")
    body = stuff(bytes(((packet_number << 2) | (command >> 8), command & 0xFF)) + bytes(data))
    length = HEADER_SENT + len(body) + 1
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is longer than the protocol's {MAX_FRAME}")
    return bytes((START,)) + _stuffed_pair(length) + _stuffed_pair(crc16(body)) + body + bytes((STOP,))


def decode(raw: bytes) -> Frame:
    """One complete frame (start to stop byte) -> Frame; FrameError when anything does not check out."""
    if len(raw) < HEADER_SENT + 3 or raw[0] != START or raw[-1] != STOP:
        raise FrameError("truncated frame or missing start/stop byte", raw)
    head = raw[1:HEADER_SENT]
    if head[0] != STUFF or head[2] != STUFF or head[4] != STUFF or head[6] != STUFF:
        raise FrameError("length and checksum must be sent stuffed", raw)
    length = ((head[1] ^ STUFF_KEY) << 8) | (head[3] ^ STUFF_KEY)
    checksum = ((head[5] ^ STUFF_KEY) << 8) | (head[7] ^ STUFF_KEY)
    body_sent = raw[HEADER_SENT:-1]
    try:
        body = unstuff(body_sent)
    except ValueError as exc:
        raise FrameError(str(exc), raw) from None
    pn = cmd = None
    if len(body) >= 2:
        pn, cmd = body[0] >> 2, ((body[0] & 0x03) << 8) | body[1]
    if length != len(raw):
        raise FrameError(f"length field says {length} bytes, the frame has {len(raw)}", raw, pn, cmd)
    if crc16(body_sent) != checksum:
        raise FrameError(f"checksum 0x{checksum:04X} does not match 0x{crc16(body_sent):04X}", raw, pn, cmd)
    if len(body) < 2:
        raise FrameError("a frame without packet number and command", raw)
    return Frame(body[0] >> 2, ((body[0] & 0x03) << 8) | body[1], body[2:], bytes(raw))


class FrameReader:
    """Incremental parser: ``feed(bytes)`` returns the frames (and FrameErrors) completed so far.

    The byte after a stuffing byte is always data (a stuffed length or checksum byte may read 0xF0 or
    0x0F). Bytes before a start byte are skipped (line noise); a start byte inside a frame restarts it (the
    earlier part is reported as a FrameError); a frame longer than 1200 bytes is dropped as an error."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_frame = False
        self._escape = False

    def feed(self, data: bytes) -> list:
        out: list = []
        for b in data:
            if not self._in_frame:
                if b == START:
                    self._buf = bytearray((START,))
                    self._in_frame = True
                continue
            if self._escape:             # the byte after 0x81 is data, whatever its value
                self._escape = False
                self._buf.append(b)
                continue
            if b == START:
                out.append(FrameError("a start byte inside a frame (the frame before it was cut)", bytes(self._buf)))
                self._buf = bytearray((START,))
                continue
            self._buf.append(b)
            if b == STUFF:
                self._escape = True
            elif b == STOP:
                self._in_frame = False
                try:
                    out.append(decode(bytes(self._buf)))
                except FrameError as exc:
                    out.append(exc)
                self._buf = bytearray()
            elif len(self._buf) > MAX_FRAME:
                out.append(FrameError(f"a frame longer than {MAX_FRAME} bytes", bytes(self._buf)))
                self._in_frame = False
                self._buf = bytearray()
        return out


class PacketNumbers:
    """The host's packet-number counter: 0..63, wrapping."""

    def __init__(self) -> None:
        self._next = 0

    def take(self) -> int:
        pn = self._next
        self._next = (self._next + 1) % (MAX_PACKET_NUMBER + 1)
        return pn
