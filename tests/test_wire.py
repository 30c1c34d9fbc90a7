"""Wire protocol: CRC, framing, resync, go-back-N link, payload round trips (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.compiler.ir import PULSE_DTYPE, PulseShape
from stimscript.drivers import wire as w
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile


def test_crc_check_value_and_parameters():
    # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, check("123456789") = 0x29B1
    assert w.crc16_reference(b"123456789") == 0x29B1
    assert w.crc16(b"123456789") == 0x29B1
    assert w.crc16_reference(b"") == 0xFFFF
    assert w.CRC_TABLE[1] == 0x1021


@given(st.binary(max_size=2000))
def test_crc_fast_equals_reference(data):
    assert w.crc16(data) == w.crc16_reference(data)


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199), st.integers(1, 255))
def test_crc_detects_any_single_byte_error(data, pos, flip):
    pos %= len(data)
    bad = bytearray(data)
    bad[pos] ^= flip
    assert w.crc16(bytes(bad)) != w.crc16(data)


frames_st = st.lists(st.tuples(st.sampled_from(sorted(w.TYPE_NAMES)), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                               st.binary(max_size=300)), min_size=1, max_size=8)


@given(frames_st, st.lists(st.integers(1, 50), max_size=20))
def test_frames_round_trip_with_any_chunking(frames, cuts):
    stream = b"".join(w.encode_frame(t, s, a, p) for t, s, a, p in frames)
    dec = w.FrameDecoder()
    got, pos = [], 0
    for c in cuts:
        got += dec.feed(stream[pos:pos + c])
        pos += c
    got += dec.feed(stream[pos:])
    assert [(f.mtype, f.seq, f.ack, f.payload) for f in got] == frames
    assert dec.stats.bad_frames == 0 and dec.stats.garbage_bytes == 0


@given(frames_st, st.binary(min_size=1, max_size=64))
def test_garbage_between_frames_is_counted_and_skipped(frames, junk):
    junk = junk.replace(w.SYNC, b"\x00\x00").replace(b"\xa5", b"\x00")
    stream = b"".join(junk + w.encode_frame(t, s, a, p) for t, s, a, p in frames)
    dec = w.FrameDecoder()
    got = dec.feed(stream)
    assert [(f.mtype, f.seq, f.ack, f.payload) for f in got] == frames
    assert dec.stats.garbage_bytes == len(junk) * len(frames)


def test_bad_crc_bad_length_bad_version_detected_and_resynced():
    good = [w.encode_frame(w.KEEPALIVE, i, 0, bytes([i]) * 5) for i in range(4)]
    bad_crc = bytearray(good[1])
    bad_crc[-3] ^= 0x10                           # payload byte
    bad_hdr = bytearray(good[2])
    bad_hdr[8:10] = (200).to_bytes(2, "little")  # a damaged length: caught by the header check at once
    head = bytearray(w.HEADER.pack(w.SYNC, w.VERSION, w.KEEPALIVE, 9, 0, w.MAX_PAYLOAD + 1))
    bad_len = head + bytes([w.crc16(bytes(head[2:])) & 0xFF])  # consistent header, impossible length
    bad_ver = bytearray(good[3])
    bad_ver[2] = 9
    dec = w.FrameDecoder()
    got = dec.feed(good[0] + bytes(bad_crc) + bytes(bad_hdr) + bytes(bad_len) + bytes(bad_ver) + good[0])
    assert [f.seq for f in got] == [0, 0]
    assert (dec.stats.bad_crc, dec.stats.bad_header, dec.stats.bad_length, dec.stats.bad_version) == (1, 1, 1, 1)
    assert dec.stats.garbage_bytes > 0  # the remains of the bad frames were skipped, counted


def test_truncated_frame_waits_for_the_rest():
    fr = w.encode_frame(w.STATUS_REQ, 3, 1, b"abc")
    dec = w.FrameDecoder()
    assert dec.feed(fr[:7]) == []
    assert [f.seq for f in dec.feed(fr[7:])] == [3]


pulses_st = st.integers(0, w.MAX_PULSES_PER_FRAME).flatmap(lambda n: st.tuples(
    st.integers(0, 2**40), st.lists(st.integers(0, 100_000), min_size=n, max_size=n),
    st.lists(st.integers(1, 255), min_size=n, max_size=n), st.lists(st.integers(-2**31, 2**31 - 1), min_size=n, max_size=n),
    st.lists(st.integers(0, 65535), min_size=n, max_size=n), st.integers(0, 2**32 - 1)))


@settings(max_examples=60)
@given(pulses_st)
def test_pulses_round_trip(args):
    base, gaps, ch, amp, shape, first = args
    arr = np.zeros(len(gaps), dtype=PULSE_DTYPE)
    arr["t_us"] = base + np.cumsum(np.array(gaps, dtype=np.int64))
    arr["channel"], arr["amplitude_ua"], arr["shape"] = ch, amp, shape
    payload = w.encode_pulses(first, arr["t_us"], arr["channel"], arr["amplitude_ua"], arr["shape"])
    got_first, got = w.decode_pulses(payload)
    assert got_first == first
    assert np.array_equal(got, arr)
    assert len(payload) == w.PULSES_HEAD.size + 11 * len(arr)


def test_frame_layout_bytes():
    fr = w.encode_frame(w.SET_SCALE, 0x1234, 0xFFFF, b"\x01\x02")
    assert fr[:2] == b"\xa5\x5a" and fr[2] == 1 and fr[3] == 0x09
    assert fr[4:6] == b"\x34\x12" and fr[6:8] == b"\xff\xff" and fr[8:10] == b"\x02\x00"
    assert fr[10] == w.crc16(fr[2:10]) & 0xFF and fr[11:13] == b"\x01\x02"
    assert int.from_bytes(fr[13:15], "little") == w.crc16(fr[2:13]) and len(fr) == 15


def test_pulses_must_be_time_ordered_and_fit_a_frame():
    t = np.array([10, 5], dtype=np.int64)
    with pytest.raises(ValueError):
        w.encode_pulses(0, t, np.ones(2, np.uint8), np.ones(2, np.int32), np.zeros(2, np.uint16))
    n = w.MAX_PULSES_PER_FRAME + 1
    with pytest.raises(ValueError):
        w.encode_pulses(0, np.arange(n), np.ones(n, np.uint8), np.ones(n, np.int32), np.zeros(n, np.uint16))


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**62), st.integers(0, 255),
                          st.integers(-2**31, 2**31 - 1)), max_size=50),
       st.integers(0, 2**62), st.integers(0, 2**32 - 1))
def test_ack_round_trip(recs, t, ql):
    arr = np.array(recs, dtype=w.ACK_DTYPE) if recs else np.zeros(0, dtype=w.ACK_DTYPE)
    m = w.decode_ack(w.encode_ack(t, ql, 7, 3, arr))
    assert (m.device_t_us, m.queue_level, m.rx_pulses_total, m.late_total) == (t, ql, 7, 3)
    assert np.array_equal(m.records, arr)


def test_shapes_hello_status_fault_round_trip():
    shapes = [PulseShape(((300, 1.0), (50, 0.0), (300, -1.0))), PulseShape(((200, 1.0), (800, -0.25)))]
    got = w.decode_shapes(w.encode_shapes(shapes))
    assert got == [((300, 1_000_000), (50, 0), (300, -1_000_000)), ((200, 1_000_000), (800, -250_000))]
    prof = DeviceProfile(name="acme", channels=4, max_current_ua=100_000, independent_sources=False)
    h = w.decode_hello_reply(w.encode_hello_reply(123, "SN-9", prof))
    assert (h.version, h.device_t_us, h.serial, h.profile) == (w.VERSION, 123, "SN-9", prof)
    assert w.decode_hello_reply(w.encode_hello_reply(0, "", LOOPBACK_PROFILE)).profile == LOOPBACK_PROFILE
    s = w.StatusMsg(5, w.PAUSED, 1, 4096, 10, 9, 1, 0, 100, 200, (1_000_000,) * 8, {"bad_crc": 2})
    s2 = w.decode_status(w.encode_status(s))
    assert s2.state_name == "paused" and s2.scales_ppm == s.scales_ppm and s2.link["bad_crc"] == 2
    assert (s2.device_t_us, s2.ramp_end_us, s2.delivered_total) == (5, 200, 9)
    s = w.StatusMsg(5, w.STOPPED, 0, 4096, 10, 9, 1, 0, 100, 200, (), {}, {1: 5, 3: 4}, {1: 40_000, 3: 120_000}, 2)
    s3 = w.decode_status(w.encode_status(s))
    assert (s3.delivered, s3.peak_ua, s3.silent_total) == ({1: 5, 3: 4}, {1: 40_000, 3: 120_000}, 2)
    # a STATUS that ends after the link counters (an older device) carries no per-channel counts
    old = w.encode_status(s)[:-(1 + 2 * w.CHANNEL_COUNTS.size + 4)]
    s4 = w.decode_status(old)
    assert (s4.delivered, s4.peak_ua, s4.delivered_total, s4.silent_total) == ({}, {}, 9, 0)
    f = w.FaultMsg(w.FAULT_ELECTRODE, 3, 99, 7)
    assert w.decode_fault(w.encode_fault(f)) == f
    assert "electrode" in f.describe() and "channel 3" in f.describe()


def test_hello_from_a_newer_protocol_is_a_mismatch():
    from stimscript.errors import ProtocolMismatch

    payload = bytearray(w.encode_hello_reply(0, "x", LOOPBACK_PROFILE))
    payload[0] = 2
    with pytest.raises(ProtocolMismatch):
        w.decode_hello_reply(bytes(payload))


# ---- the link layer ---------------------------------------------------------------------------------

def _pump(a: w.Link, b: w.Link, wire_ab: bytes, damage=None):
    """Deliver a->b bytes, bounce link replies back and forth until quiet; returns frames b accepted."""
    got = []
    to_b, to_a = wire_ab, b""
    for _ in range(50):
        if not to_b and not to_a:
            break
        if damage is not None:
            to_b = damage(to_b)
        frames, reply = b.receive(to_b)
        got += frames
        to_b = b""
        to_a += reply
        frames_a, reply_a = a.receive(to_a)
        assert not frames_a
        to_a = b""
        to_b += reply_a
    return got


@settings(max_examples=60)
@given(st.integers(1, 30), st.sets(st.integers(0, 29), max_size=10), st.data())
def test_go_back_n_recovers_lost_and_damaged_frames(n, lost, data):
    a, b = w.Link(), w.Link()
    frames = [a.send(w.PULSES, bytes([i % 256]) * (i + 1)) for i in range(n)]
    mode = data.draw(st.sampled_from(["drop", "corrupt"]))
    stream = bytearray()
    for i, fr in enumerate(frames):
        if i in lost:
            if mode == "corrupt":
                bad = bytearray(fr)
                bad[len(bad) // 2] ^= 0x40
                stream += bad
        else:
            stream += fr
    got = _pump(a, b, bytes(stream))
    # keepalives flush out losses at the tail (a real host sends them all the time)
    for _ in range(3):
        got += _pump(a, b, a.send(w.KEEPALIVE))
    payloads = [f.payload for f in got if f.mtype == w.PULSES]
    assert payloads == [bytes([i % 256]) * (i + 1) for i in range(n)]
    if lost & set(range(n)):
        assert b.stats.seq_gaps + b.stats.bad_crc > 0 and a.stats.retransmitted > 0


def test_estop_is_acted_on_out_of_order():
    a, b = w.Link(), w.Link(out_of_band=frozenset({w.ESTOP}))
    f0 = a.send(w.PULSES, b"x")
    a.send(w.PULSES, b"lost")
    f2 = a.send(w.ESTOP)
    frames, reply = b.receive(f0 + f2)
    assert [f.mtype for f in frames] == [w.PULSES, w.ESTOP]
    assert reply and b.stats.naks_sent == 1


def test_retransmit_of_forgotten_frame_is_a_link_error():
    a = w.Link(retx_frames=2)
    for _ in range(5):
        a.send(w.KEEPALIVE)
    with pytest.raises(w.LinkError):
        a.retransmit_from(0)


def test_acks_prune_the_retransmission_buffer():
    a, b = w.Link(), w.Link()
    stream = b"".join(a.send(w.KEEPALIVE) for _ in range(5))
    b.receive(stream)
    a.receive(b.send(w.STATUS, b""))
    assert len(a.retx) == 0
