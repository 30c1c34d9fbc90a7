"""The stimscript wire protocol, version 1: ONE encoder/decoder shared by the host drivers and the emulator.

Every byte is documented in docs/wire-protocol.md. The code lives in two layers, re-exported here so
``from stimscript.drivers import wire`` stays the one entry point:

* drivers/link.py — frames, CRC, resynchronisation, the go-back-N link (knows nothing about payloads);
* drivers/messages.py — message types, device states, fault codes and every payload's bytes.

Frame summary::

    offset  size  field
    0       2     sync  0xA5 0x5A
    2       1     version (1)
    3       1     message type
    4       2     seq   u16 LE  sender's frame number (NAK frames: 0, not sequenced)
    6       2     ack   u16 LE  last in-order seq received from the peer (0xFFFF: none yet)
    8       2     len   u16 LE  payload length, <= MAX_PAYLOAD
    10      1     hchk  low byte of CRC-16/CCITT-FALSE over bytes 2 .. 9 (a damaged length is caught at once)
    11      len   payload (little-endian fields: drivers/messages.py)
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

from .link import (  # noqa: F401
    VERSION, SYNC, HEADER, HEADER_SIZE, CRC_SIZE, MAX_PAYLOAD, NO_ACK, NAK, UNSEQUENCED, CRC_TABLE,
    crc16_reference, crc16, encode_frame, Frame, LinkStats, FrameDecoder, LinkError, Link,
)
from .messages import (  # noqa: F401
    HELLO, SHAPES, PULSES, START, STOP, PAUSE, RESUME, ESTOP, SET_SCALE, KEEPALIVE, STATUS_REQ, SYNC_OUT,
    HELLO_REPLY, ACK, STATUS, FAULT, SYNC_EDGES, TYPE_NAMES, IDLE, RUNNING, PAUSING, PAUSED, STOPPING,
    STOPPED, ESTOPPED, FAULTED, STATE_NAMES, FAULT_ELECTRODE, FAULT_OVER_LIMIT, FAULT_WATCHDOG,
    FAULT_QUEUE_OVERFLOW, FAULT_BAD_PULSE, FAULT_BAD_SHAPE, FAULT_LINK, FAULT_BAD_MESSAGE, FAULT_NAMES,
    SCALE_ONE, MAX_SCALE_PPM, MAX_RAMP_US, WIRE_PULSE_DTYPE, ACK_DTYPE, PULSES_HEAD, ACK_HEAD,
    MAX_PULSES_PER_FRAME, MAX_ACKS_PER_FRAME, encode_pulses, decode_pulses_raw, decode_pulses, encode_ack,
    AckMsg, decode_ack, encode_shapes, decode_shapes, PROFILE_STRUCT, HELLO_HEAD, encode_hello_reply,
    HelloInfo, decode_hello_reply, STATUS_STRUCT, StatusMsg, LINK_COUNTERS, encode_status, CHANNEL_COUNTS,
    decode_status, FAULT_STRUCT, FaultMsg, encode_fault, decode_fault, SET_SCALE_STRUCT, START_STRUCT,
    RAMP_STRUCT, RESUME_STRUCT, HELLO_STRUCT, SYNC_OUT_HEAD, SYNC_EDGES_HEAD, MAX_EDGES_PER_FRAME,
    MAX_SYNC_WIDTH_US, encode_sync_out, SyncOutMsg, decode_sync_out, SyncEdgesMsg, encode_sync_edges,
    decode_sync_edges,
)
