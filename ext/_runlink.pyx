# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of the wire protocol's frame kernels (drivers/link.py is the reference).

``encode_frame(mtype, seq, ack, payload, crc_long, long_bytes)`` builds one frame, byte for byte what
``drivers.link.encode_frame_py`` builds; ``scan(buf, crc_long, long_bytes)`` is the receive loop of
``FrameDecoder.feed`` (resynchronisation, header check, length, CRC) over one buffer and returns the whole
valid frames and the counters of what it skipped, exactly as the reference counts them. Payloads of
``long_bytes`` or more go through ``crc_long`` (anycrc, when installed) as in the reference; everything else
through the table-driven CRC-16/CCITT-FALSE below. tests/test_run_link_twin.py compares both twins.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcpy
from libc.stdint cimport uint8_t, uint16_t

cdef uint16_t _TABLE[256]


cdef void _make_table():
    cdef int byte, k
    cdef unsigned int crc
    for byte in range(256):
        crc = byte << 8
        for k in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        _TABLE[byte] = <uint16_t>crc


_make_table()


cdef inline unsigned int _crc(const uint8_t* p, Py_ssize_t n, unsigned int crc) nogil:
    cdef Py_ssize_t i
    for i in range(n):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ p[i]) & 0xFF]
    return crc


def crc16(data, unsigned int crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` continuing from ``crc`` (table-driven, in C)."""
    cdef bytes b = data if type(data) is bytes else bytes(data)
    return _crc(<const uint8_t*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), crc & 0xFFFF)


def encode_frame(int mtype, seq, ack, payload=b"", crc_long=None, Py_ssize_t long_bytes=256):
    cdef bytes pl = payload if type(payload) is bytes else bytes(payload)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(pl)
    if n > 16384:
        raise ValueError(f"payload of {n} bytes exceeds 16384")
    if mtype < 0 or mtype > 255:
        import struct
        raise struct.error("ubyte format requires 0 <= number <= 255")
    cdef unsigned int s = <unsigned int>(seq & 0xFFFF)
    cdef unsigned int a = <unsigned int>(ack & 0xFFFF)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 13 + n)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    o[0] = 0xA5
    o[1] = 0x5A
    o[2] = 1
    o[3] = <uint8_t>mtype
    o[4] = s & 0xFF
    o[5] = s >> 8
    o[6] = a & 0xFF
    o[7] = a >> 8
    o[8] = n & 0xFF
    o[9] = n >> 8
    cdef unsigned int head = _crc(o + 2, 8, 0xFFFF)
    o[10] = head & 0xFF
    cdef unsigned int crc = _crc(o + 10, 1, head)
    if n:
        memcpy(o + 11, PyBytes_AS_STRING(pl), n)
        if n >= long_bytes and crc_long is not None:
            crc = crc_long(pl, crc)
        else:
            crc = _crc(o + 11, n, crc)
    o[11 + n] = crc & 0xFF
    o[12 + n] = (crc >> 8) & 0xFF
    return out


def scan(bytes buf, frame_type, crc_long=None, Py_ssize_t long_bytes=256):
    """-> (frames, pos, garbage, bad_version, bad_header, bad_length, bad_crc): the valid frames of ``buf``
    (``frame_type(mtype, seq, ack, payload)``), where the unread rest starts, and what was skipped."""
    cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos = 0, i, j, end, length, keep
    cdef Py_ssize_t garbage = 0, bad_version = 0, bad_header = 0, bad_length = 0, bad_crc = 0
    cdef unsigned int head, crc
    cdef list out = []
    cdef bytes payload
    if n == 0:
        return out, 0, 0, 0, 0, 0, 0
    while True:
        if not (b[pos] == 0xA5 and pos + 1 < n and b[pos + 1] == 0x5A):
            i = -1
            j = pos
            while j + 1 < n:
                if b[j] == 0xA5 and b[j + 1] == 0x5A:
                    i = j
                    break
                j += 1
            if i < 0:
                # keep a trailing 0xA5 that may start the next sync pair
                keep = 1 if b[n - 1] == 0xA5 else 0
                garbage += n - pos - keep
                pos = n - keep
                break
            garbage += i - pos
            pos = i
        if n - pos < 11:
            break
        if b[pos + 2] != 1:
            bad_version += 1
            pos += 1
            continue
        head = _crc(b + pos + 2, 8, 0xFFFF)
        if (head & 0xFF) != b[pos + 10]:
            bad_header += 1
            pos += 1
            continue
        length = b[pos + 8] | (b[pos + 9] << 8)
        if length > 16384:
            bad_length += 1
            pos += 1
            continue
        end = pos + 11 + length + 2
        if end > n:
            break
        crc = _crc(b + pos + 10, 1, head)
        if length:
            payload = buf[pos + 11:end - 2]
            if length >= long_bytes and crc_long is not None:
                crc = crc_long(payload, crc)
            else:
                crc = _crc(b + pos + 11, length, crc)
        else:
            payload = b""
        if crc != (b[end - 2] | (b[end - 1] << 8)):
            bad_crc += 1
            pos += 1
            continue
        out.append(frame_type(b[pos + 3], b[pos + 4] | (b[pos + 5] << 8), b[pos + 6] | (b[pos + 7] << 8), payload))
        pos = end
        if pos == n:
            break
    return out, pos, garbage, bad_version, bad_header, bad_length, bad_crc


def train_ack(bytes buf, Py_ssize_t count, unsigned int mtype, unsigned int seq):
    """The ack carried by ``buf`` when it is exactly ``count`` intact frames without payload of type ``mtype``,
    numbered ``seq``, ``seq + 1``, ... (mod 2**16), all carrying the same ack; else -1 (the twin of
    ``drivers.link.train_ack_py``)."""
    cdef const uint8_t* b = <const uint8_t*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t i
    cdef const uint8_t* p
    cdef unsigned int head, crc, ack = 0, a
    if count <= 0 or PyBytes_GET_SIZE(buf) != 13 * count:
        return -1
    for i in range(count):
        p = b + 13 * i
        if (p[0] != 0xA5 or p[1] != 0x5A or p[2] != 1 or p[3] != mtype or p[8] != 0 or p[9] != 0
                or (p[4] | (p[5] << 8)) != seq):
            return -1
        head = _crc(p + 2, 8, 0xFFFF)
        if (head & 0xFF) != p[10]:
            return -1
        crc = _crc(p + 10, 1, head)
        if crc != (p[11] | (p[12] << 8)):
            return -1
        a = p[6] | (p[7] << 8)
        if i == 0:
            ack = a
        elif a != ack:
            return -1
        seq = (seq + 1) & 0xFFFF
    return ack


cdef bytes _bare_frame(unsigned int mtype, unsigned int seq, unsigned int ack):
    """One frame without payload (13 bytes)."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 13)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    cdef unsigned int head, crc
    o[0] = 0xA5
    o[1] = 0x5A
    o[2] = 1
    o[3] = <uint8_t>mtype
    o[4] = seq & 0xFF
    o[5] = (seq >> 8) & 0xFF
    o[6] = ack & 0xFF
    o[7] = (ack >> 8) & 0xFF
    o[8] = 0
    o[9] = 0
    head = _crc(o + 2, 8, 0xFFFF)
    o[10] = head & 0xFF
    crc = _crc(o + 10, 1, head)
    o[11] = crc & 0xFF
    o[12] = (crc >> 8) & 0xFF
    return out


def encode_train(int mtype, seq, ack, Py_ssize_t count, held=None):
    """``count`` frames of ``mtype`` without payload numbered ``seq``, ``seq + 1``, ... (mod 2**16), all carrying
    ``ack``: a list of one bytes object per frame, each what ``encode_frame`` builds for it; with ``held`` (the
    link's retransmission buffer, a mapping) each is also stored there under its seq, in order (the twin of the
    loop in ``drivers.link.Link.send_train``)."""
    if mtype < 0 or mtype > 255:
        import struct
        raise struct.error("ubyte format requires 0 <= number <= 255")
    cdef unsigned int s = <unsigned int>(seq & 0xFFFF)
    cdef unsigned int a = <unsigned int>(ack & 0xFFFF)
    cdef list out = []
    cdef Py_ssize_t i
    cdef bytes f
    for i in range(count):
        f = _bare_frame(<unsigned int>mtype, s, a)
        out.append(f)
        if held is not None:
            held[s] = f
        s = (s + 1) & 0xFFFF
    return out
