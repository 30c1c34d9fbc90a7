"""ScienceMode frames and messages against the example packets printed in Hasomed's RehaMove3 protocol
description (2018-04-21, section 7) and an independent bit-by-bit CRC oracle."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from stimscript.drivers.sciencemode import frame as F
from stimscript.drivers.sciencemode import messages as M


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("\n", " "))


# (packet number, command, payload, the packet as printed in the vendor document)
VENDOR_EXAMPLES = [
    (0, M.LL_INIT, b"\x00", "F0 81 55 81 58 81 55 81 55 00 00 00 0F"),
    (1, M.LL_CHANNEL_CONFIG,
     M.encode_ll_channel_config(0, [M.Point(250, 40), M.Point(100, 0), M.Point(250, -40)]),
     "F0 81 55 81 4E 81 D3 81 AF 04 02 82 81 5A A5 50 00 06 44 B0 00 81 5A A4 10 00 0F"),
    (2, M.LL_STOP, b"", "F0 81 55 81 59 81 9C 81 78 08 04 0F"),
    (0, M.ML_INIT, b"\x00", "F0 81 55 81 58 81 75 81 29 00 1E 00 0F"),
    (1, M.ML_UPDATE, M.encode_ml_update({
        0: M.MlChannel(40, (M.Point(200, 40), M.Point(100, 0), M.Point(200, -40)), ramp=3),
        1: M.MlChannel(20, (M.Point(100, 20), M.Point(100, 0), M.Point(100, -20)), ramp=3)}),
     "F0 81 55 81 7E 81 5D 81 42 04 20 03 23 00 50 0C 85 50 00 06 44 B0 00 0C 84 10 00 23 00 28 06 45 00 00 "
     "06 44 B0 00 06 44 60 00 0F"),
    (2, M.ML_GET_CURRENT_DATA, b"\x02", "F0 81 55 81 58 81 16 81 94 08 24 02 0F"),
    (3, M.ML_STOP, b"", "F0 81 55 81 59 81 14 81 18 0C 22 0F"),
]


@pytest.mark.parametrize("pn,cmd,data,printed", VENDOR_EXAMPLES, ids=[M.COMMAND_NAMES[e[1]] for e in VENDOR_EXAMPLES])
def test_encode_reproduces_the_vendor_example_packets(pn, cmd, data, printed):
    assert F.encode(pn, cmd, data) == hexbytes(printed)


@pytest.mark.parametrize("pn,cmd,data,printed", VENDOR_EXAMPLES, ids=[M.COMMAND_NAMES[e[1]] for e in VENDOR_EXAMPLES])
def test_decode_reads_the_vendor_example_packets(pn, cmd, data, printed):
    fr = F.decode(hexbytes(printed))
    assert (fr.packet_number, fr.command, fr.data) == (pn, cmd, data)


def test_vendor_ml_update_means_what_the_document_says():
    fr = F.decode(hexbytes(VENDOR_EXAMPLES[4][3]))
    chans = M.decode_ml_update(fr.data)
    red, blue = chans[0], chans[1]
    assert (red.period_us, red.ramp, len(red.points)) == (20_000, 3, 3)
    assert [(p.duration_us, p.current_ua) for p in red.points] == [(200, 20_000), (100, 0), (200, -20_000)]
    assert (blue.period_us, blue.ramp) == (10_000, 3)
    assert [(p.duration_us, p.current_ua) for p in blue.points] == [(100, 10_000), (100, 0), (100, -10_000)]


def oracle_crc(data: bytes) -> int:
    """CRC-16/XMODEM as a polynomial division over the message bits followed by 16 zero bits."""
    bits = [(b >> (7 - i)) & 1 for b in data for i in range(8)] + [0] * 16
    poly = [1] + [(0x1021 >> (15 - i)) & 1 for i in range(16)]
    for i in range(len(bits) - 16):
        if bits[i]:
            for j in range(17):
                bits[i + j] ^= poly[j]
    return int("".join(map(str, bits[-16:])), 2)


def test_crc_check_value():
    assert F.crc16(b"123456789") == 0x31C3 == oracle_crc(b"123456789")


@given(st.binary(max_size=64))
def test_crc_matches_polynomial_division(data):
    assert F.crc16(data) == oracle_crc(data)


@given(st.integers(0, 63), st.integers(0, 1023), st.binary(max_size=300))
def test_round_trip_and_no_special_byte_inside(pn, cmd, data):
    raw = F.encode(pn, cmd, data)
    inner, i = raw[1:-1], 0
    while i < len(inner):   # outside stuffing sequences no start or stop byte appears
        assert inner[i] not in (F.START, F.STOP)
        i += 2 if inner[i] == F.STUFF else 1
    assert ((raw[2] ^ 0x55) << 8 | (raw[4] ^ 0x55)) == len(raw)
    fr = F.decode(raw)
    assert (fr.packet_number, fr.command, fr.data) == (pn, cmd, data)


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 1023), st.binary(max_size=40)), max_size=6),
       st.binary(max_size=5).filter(lambda b: 0xF0 not in b), st.integers(1, 17))
def test_reader_splits_a_byte_stream_at_any_chunk_size(frames, noise, chunk):
    stream = noise + b"".join(F.encode(*f) for f in frames)
    reader = F.FrameReader()
    got = []
    for i in range(0, len(stream), chunk):
        got += reader.feed(stream[i:i + chunk])
    assert [(g.packet_number, g.command, g.data) for g in got] == frames


@given(st.binary(min_size=1, max_size=30), st.data())
def test_any_single_byte_corruption_is_detected(data, draw):
    raw = bytearray(F.encode(5, M.ML_UPDATE, data))
    i = draw.draw(st.integers(1, len(raw) - 2))
    raw[i] ^= draw.draw(st.integers(1, 255))
    out = F.FrameReader().feed(bytes(raw))
    # never a frame that differs silently from what was sent
    assert all(isinstance(o, F.FrameError) or (o.command, o.data) == (M.ML_UPDATE, data) for o in out)
    assert not any(isinstance(o, F.Frame) and o.data != data for o in out)


def test_errors_keep_the_header_for_a_transfer_error_answer():
    raw = bytearray(F.encode(9, M.ML_UPDATE, b"\x01\x02"))
    raw[-2] ^= 0x01
    (err,) = F.FrameReader().feed(bytes(raw))
    assert isinstance(err, F.FrameError) and err.packet_number == 9 and err.command == M.ML_UPDATE


@given(st.integers(0, 4095), st.integers(-300, 300), st.integers(0, 3))
def test_point_round_trip_and_layout(d, c, interp):
    p = M.Point(d, c, interp)
    raw = p.encode()
    word = int.from_bytes(raw, "big")
    assert word >> 20 == d and (word >> 10) & 0x3FF == c + 300 and (word >> 5) & 3 == interp
    assert word & 0x9F == 0 and (word >> 7) & 7 == 0
    assert M.Point.decode(raw) == p


def test_ml_update_rejects_what_the_format_cannot_hold():
    with pytest.raises(ValueError):
        M.encode_ml_update({0: M.MlChannel(40, tuple(M.Point(10, 2) for _ in range(17)))})
    with pytest.raises(ValueError):
        M.encode_ml_update({0: M.MlChannel(40, (M.Point(10, 2),), ramp=16)})
    with pytest.raises(ValueError):
        M.Point(4096, 0).encode()


def test_current_data_both_selectors():
    running = (True, False, True, False, False, False, False, True)
    states = (0, 1, 0, 0, 2, 0, 3, 0)
    cd = M.decode_current_data(M.encode_current_data(0, M.SELECT_CHANNELS, running, states), 8)
    assert cd.running == running and cd.states == states
    cd = M.decode_current_data(M.encode_current_data(0, M.SELECT_STIMULATION, (True,) * 4, (0, 1, 0, 0)), 4)
    assert cd.running == (True,) * 4 and cd.states == (0, 1, 0, 0)


def test_result_codes_map_to_our_error_classes():
    from stimscript.errors import DeviceFault, DriverError, ProtocolMismatch

    assert isinstance(M.result_error(M.ELECTRODE_ERROR, "Ml_update", 2), DeviceFault)
    assert "channel 2" in str(M.result_error(M.ELECTRODE_ERROR, "Ml_update", 2))
    assert isinstance(M.result_error(M.PULSE_TIMEOUT, "Ml_update"), DeviceFault)
    assert isinstance(M.result_error(M.TRANSFER_ERROR, "Ml_update"), ProtocolMismatch)
    err = M.result_error(M.PARAMETER_ERROR, "Ml_update")
    assert type(err) is DriverError and "parameter error" in str(err)
