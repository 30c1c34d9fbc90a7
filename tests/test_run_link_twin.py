"""The compiled frame kernels (ext/_runlink.pyx) equal the pure-Python reference in drivers/link.py.

* ``encode_frame``: the same bytes for any type, sequence, ack and payload (short, long, at the anycrc
  threshold), with long data's CRC through anycrc and through the table alone;
* ``FrameDecoder``: the same frames, the same counters and the same unread rest for any byte stream (whole,
  damaged and long frames, garbage, sync pairs inside garbage) cut into any chunks;
* ``encode_train``: each frame of a KEEPALIVE train byte for byte the reference's, numbered, held and dropped by
  ``Link.send_train`` exactly as with the reference;
* a whole virtual-time run writes the same bytes in both directions with either twin.

Skipped when the extension is not built (STIMSCRIPT_NO_EXTENSIONS=1 runs the reference everywhere).
"""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.clock import VirtualClock
from stimscript.drivers import link as L
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.runtime import SessionController
from stimscript.runtime.testing import nmes_schedule

twin = L._twin
pytestmark = pytest.mark.skipif(twin is None, reason="the compiled frame kernels are not built")


@pytest.fixture(params=["as installed", "table only"])
def crc_long(request):
    """Long payloads' CRC through anycrc (when installed) or through the table-driven CRC alone."""
    if request.param == "table only":
        return None
    if L._crc_long is None:
        pytest.skip("anycrc is not installed")
    return L._crc_long


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 255), st.integers(-70_000, 140_000), st.integers(-70_000, 140_000),
       st.one_of(st.binary(max_size=300), st.binary(min_size=250, max_size=2000)))
def test_encode_frame_twin_equals_the_reference(crc_long, mtype, seq, ack, payload):
    want = L.encode_frame_py(mtype, seq, ack, payload)
    assert twin.encode_frame(mtype, seq, ack, payload, crc_long, L.LONG_CRC_BYTES) == want
    assert twin.encode_frame(mtype, seq, ack, bytearray(payload), crc_long, L.LONG_CRC_BYTES) == want
    assert twin.crc16(payload, 0x1D0F) == L.crc16_reference(payload, 0x1D0F)


def test_encode_frame_twin_refuses_what_the_reference_refuses():
    with pytest.raises(ValueError, match="exceeds 16384"):
        twin.encode_frame(1, 0, 0, bytes(L.MAX_PAYLOAD + 1))
    with pytest.raises(ValueError, match="exceeds 16384"):
        L.encode_frame_py(1, 0, 0, bytes(L.MAX_PAYLOAD + 1))
    assert twin.encode_frame(1, 0, 0, bytes(L.MAX_PAYLOAD)) == L.encode_frame_py(1, 0, 0, bytes(L.MAX_PAYLOAD))


def _damaged(frame: bytes, at: int, xor: int) -> bytes:
    b = bytearray(frame)
    b[at % len(b)] ^= xor
    return bytes(b)


piece = st.one_of(
    st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=40)).map(
        lambda a: L.encode_frame_py(*a)),
    st.tuples(st.integers(0, 255), st.binary(min_size=250, max_size=700)).map(
        lambda a: L.encode_frame_py(a[0], 3, 4, a[1])),
    st.tuples(st.integers(0, 255), st.binary(max_size=300), st.integers(0, 400), st.integers(1, 255)).map(
        lambda a: _damaged(L.encode_frame_py(a[0], 1, 2, a[1]), a[2], a[3])),
    st.binary(min_size=1, max_size=14),                          # garbage
    st.sampled_from([b"\xa5", b"\xa5\x5a", b"\xa5\x5a\x01", b"\x5a", b"\xa5\xa5\x5a"]),   # sync fragments
    st.integers(L.MAX_PAYLOAD + 1, 0xFFFF).map(                  # a header announcing too long a payload
        lambda n: L._FRAME_HEAD.pack(L.SYNC, 1, 3, 0, 0, n, L._crc_hqx(L._HEAD_FIELDS.pack(1, 3, 0, 0, n), 0xFFFF) & 0xFF)),
)


def _decode(stream: bytes, cuts: list[int], compiled: bool):
    dec = L.FrameDecoder()
    dec.compiled = compiled
    got, pos, bad = [], 0, []
    for k in cuts:
        got += dec.feed(stream[pos:pos + k])
        bad.append(dec.last_bad)
        pos += k
    got += dec.feed(stream[pos:])
    bad.append(dec.last_bad)
    return [(f.mtype, f.seq, f.ack, f.payload) for f in got], dec.stats.as_dict(), bytes(dec.buf), bad


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(piece, max_size=14), st.lists(st.integers(1, 300), max_size=20))
def test_frame_decoder_twin_equals_the_reference(crc_long, monkeypatch, pieces, cuts):
    monkeypatch.setattr(L, "_crc_long", crc_long)
    stream = b"".join(pieces)
    assert _decode(stream, cuts, True) == _decode(stream, cuts, False)


def _run_transcript(use_twin: bool) -> tuple[str, str, object]:
    """A virtual-time run with pauses, intensity changes and damaged frames: SHA-256 of every byte each way."""
    L._twin = twin if use_twin else None
    try:
        clock = VirtualClock(1_000_000)
        emu = Emulator(clock=clock, capture=True)
        tx, rx = hashlib.sha256(), hashlib.sha256()
        host_write, host_read = emu.host_write, emu.host_read
        emu.host_write = lambda data: (rx.update(bytes(data)), host_write(data))[1]
        emu.host_read = lambda *a: (lambda out: (tx.update(out), out)[1])(host_read(*a))
        emu.inject_link_fault("corrupt", 1_500_000, 3, "both")
        emu.inject_link_fault("drop", 4_000_000, 2, "tx")
        dev = LoopbackDriver(emulator=emu)
        dev.open()
        ctl = SessionController()
        ctl.at(2_000_000, "pause")
        ctl.at(2_600_000, "resume")
        ctl.at(3_000_000, "intensity_down")
        sched = nmes_schedule(channels=4, seconds=8, on_s=3, off_s=1, ramp_s=0.5)
        rec = stimscript.run(sched, device=dev, clock=clock, record=False, controller=ctl)
        dev.close()
        return tx.hexdigest(), rx.hexdigest(), (rec.end_reason, rec.delivered, emu.output_sha256)
    finally:
        L._twin = twin


def test_a_run_puts_the_same_bytes_on_the_wire_with_either_twin():
    assert _run_transcript(True) == _run_transcript(False)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(0, 6), seq0=st.integers(0, 0xFFFF), ack=st.integers(0, 0xFFFF),
       damage=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), max_size=2),
       mtype=st.sampled_from([0x0A, 0x0B, 0x03]), other_ack=st.booleans(), expected=st.integers(0, 0xFFFF))
def test_train_ack_twin_equals_the_reference_and_the_receive_path(count, seq0, ack, damage, mtype, other_ack,
                                                                 expected):
    """``train_ack`` (compiled and reference) accepts exactly the trains of intact, consecutive frames of one
    type and one ack, and ``Link.take_train`` leaves the link as ``Link.receive`` would."""
    frames = [L.encode_frame_py(mtype, seq0 + i, ack + (1 if other_ack and i == count - 1 and i else 0))
              for i in range(count)]
    buf = bytearray(b"".join(frames))
    for pos, x in damage:
        if buf:
            buf[pos % len(buf)] ^= x
    buf = bytes(buf)
    for seq in (seq0 & 0xFFFF, expected):
        want = L.train_ack_py(buf, count, 0x0A, seq)
        assert twin.train_ack(buf, count, 0x0A, seq) == want
        # independent oracle: what a plain receiver accepts, in order, from the same bytes
        dec = L.FrameDecoder()
        got = dec.feed(buf)
        ok = (count > 0 and len(got) == count and not dec.last_bad and not dec.buf
              and all(f.mtype == 0x0A and not f.payload and f.seq == (seq + i) & 0xFFFF for i, f in enumerate(got))
              and len({f.ack for f in got}) == 1)
        assert (want >= 0) == ok and (not ok or want == got[0].ack)
        a, b = L.Link(), L.Link()
        a.rx_expected = b.rx_expected = seq
        if a.take_train(buf, count, 0x0A, 5):
            b.receive(buf, 5)
            assert (a.rx_expected, a.gap_open, a.stats.as_dict(), a._acked) == \
                   (b.rx_expected, b.gap_open, b.stats.as_dict(), b._acked)
        else:
            assert a.stats.as_dict() == L.LinkStats().as_dict() and a.rx_expected == seq


@settings(max_examples=300, deadline=None)
@given(mtype=st.integers(0, 255), seq=st.integers(0, 0xFFFF), ack=st.integers(0, 0xFFFF), count=st.integers(0, 9),
       held_before=st.integers(0, 3), limit=st.integers(1, 12))
def test_a_train_is_encoded_and_held_as_frame_by_frame(mtype, seq, ack, count, held_before, limit):
    """``encode_train`` gives each frame's documented bytes (the reference encoder, frame by frame), and
    ``Link.send_train`` with the twin numbers, holds and drops frames exactly as with the reference."""
    want = [L.encode_frame_py(mtype, (seq + i) & 0xFFFF, ack) for i in range(count)]
    assert twin.encode_train(mtype, seq, ack, count) == want
    links = []
    for use_twin in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not use_twin:
                mp.setattr(L, "_twin", None)
            link = L.Link(retx_frames=limit)
            link.tx_seq = (seq - held_before) & 0xFFFF
            link.rx_expected = (ack + 1) & 0xFFFF
            for _ in range(held_before):
                link.send(0x0B)
            out = link.send_train(mtype, count)
            links.append((out, list(link.retx.items()), link.tx_seq))
    assert links[0] == links[1]
    assert links[0][0] == want
