"""The fast paths of a virtual-time run change nothing a user can see.

* frames: ``encode_frame`` builds exactly the bytes of the documented layout (CRC-16/CCITT-FALSE computed
  here by the bitwise definition, not the code's table, ``binascii`` or anycrc), and ``FrameDecoder`` returns
  exactly the frames and counters of a plain decoder written here from the spec, for any byte stream (whole
  frames, damaged frames, long payloads, garbage, arbitrary chunking), with long data's CRC through anycrc
  and with binascii alone;
* the emulator: skipping a replay when nothing can be due (the host's second frame at the same instant), and
  skipping the slot-spacing check for pulses found well spaced when queued, give the same wire transcript in
  both directions, the same delivered pulses, faults and record as an emulator that replays on every call and
  checks every delivery, under random controls, spacings and injected faults, in-process and through pyusb;
* the record: per-channel peaks folded in batches equal the emulator's own peaks.
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.clock import VirtualClock
from stimscript.drivers import link as L
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackBackend
from stimscript.runtime import SessionController
from stimscript.pulses import PULSE_DTYPE
from stimscript.runtime.testing import BIPHASIC_300, nmes_schedule


def crc_bitwise(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE by its definition (bit by bit, poly 0x1021, init 0xFFFF)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame_by_spec(mtype: int, seq: int, ack: int, payload: bytes) -> bytes:
    fields = struct.pack("<BBHHH", 1, mtype, seq & 0xFFFF, ack & 0xFFFF, len(payload))
    hchk = bytes([crc_bitwise(fields) & 0xFF])
    return b"\xa5\x5a" + fields + hchk + payload + struct.pack("<H", crc_bitwise(fields + hchk + payload))


def test_crc_bitwise_check_value():
    assert crc_bitwise(b"123456789") == 0x29B1


@pytest.fixture(params=["as installed", "binascii only"])
def crc_impl(request, monkeypatch):
    """Both ways of computing the CRC: long data through anycrc (when installed), and binascii for all."""
    if request.param == "binascii only":
        monkeypatch.setattr(L, "_crc_long", None)
    elif L._crc_long is None:
        pytest.skip("anycrc is not installed")
    return request.param


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 255), st.integers(-10, 0x1FFFF), st.integers(-10, 0x1FFFF), st.binary(max_size=700),
       st.integers(0, 0xFFFF))
def test_encode_frame_is_the_documented_layout(crc_impl, mtype, seq, ack, payload, init):
    assert L.encode_frame(mtype, seq, ack, payload) == frame_by_spec(mtype, seq, ack, payload)
    assert L.crc16(payload, init) == crc_bitwise(payload, init) == L.crc16_reference(payload, init)


def plain_decode(stream: bytes):
    """The spec's receiver on a whole stream: (frames as tuples, counters). Resynchronises one byte after any
    bad frame; keeps an incomplete tail (and a trailing 0xA5) for more bytes."""
    frames, c = [], dict(bad_version=0, bad_header=0, bad_length=0, bad_crc=0, garbage=0, frames_ok=0)
    pos, n = 0, len(stream)
    while True:
        i = stream.find(b"\xa5\x5a", pos)
        if i < 0:
            keep = 1 if n > pos and stream[-1] == 0xA5 else 0
            c["garbage"] += n - pos - keep
            break
        c["garbage"] += i - pos
        pos = i
        if n - pos < 11:
            break
        version, mtype, seq, ack, length = struct.unpack_from("<BBHHH", stream, pos + 2)
        if version != 1:
            c["bad_version"] += 1
            pos += 1
            continue
        if crc_bitwise(stream[pos + 2:pos + 10]) & 0xFF != stream[pos + 10]:
            c["bad_header"] += 1
            pos += 1
            continue
        if length > L.MAX_PAYLOAD:
            c["bad_length"] += 1
            pos += 1
            continue
        end = pos + 11 + length + 2
        if end > n:
            break
        if crc_bitwise(stream[pos + 2:end - 2]) != struct.unpack_from("<H", stream, end - 2)[0]:
            c["bad_crc"] += 1
            pos += 1
            continue
        frames.append((mtype, seq, ack, stream[pos + 11:end - 2]))
        c["frames_ok"] += 1
        pos = end
    return frames, c


piece = st.one_of(
    st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=40)).map(
        lambda a: frame_by_spec(*a)),
    st.tuples(st.integers(0, 255), st.binary(min_size=250, max_size=600), st.integers(0, 650),
              st.integers(0, 255)).map(   # long payloads, whole or with one byte damaged
        lambda a: bytes(b ^ (a[3] if i == a[2] else 0) for i, b in enumerate(frame_by_spec(a[0], 3, 4, a[1])))),
    st.binary(min_size=1, max_size=12),                       # garbage (may hold 0xA5 / sync pairs)
    st.tuples(st.integers(0, 255), st.binary(max_size=20), st.integers(0, 60), st.integers(0, 255)).map(
        lambda a: bytes(b ^ (a[3] if i == a[2] else 0) for i, b in enumerate(frame_by_spec(a[0], 1, 2, a[1])))),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(piece, max_size=12), st.lists(st.integers(1, 200), max_size=20))
def test_frame_decoder_equals_the_plain_receiver_for_any_stream_and_chunking(crc_impl, pieces, cuts):
    stream = b"".join(pieces)
    want_frames, want = plain_decode(stream)
    dec = L.FrameDecoder()
    got, pos = [], 0
    for k in cuts:
        got += dec.feed(stream[pos:pos + k])
        pos += k
    got += dec.feed(stream[pos:])
    st_ = dec.stats
    assert [(f.mtype, f.seq, f.ack, f.payload) for f in got] == want_frames
    assert (st_.bad_version, st_.bad_header, st_.bad_length, st_.bad_crc, st_.frames_ok) == (
        want["bad_version"], want["bad_header"], want["bad_length"], want["bad_crc"], want["frames_ok"])
    assert st_.garbage_bytes == want["garbage"]


class ReplayAlways(Emulator):
    """The plain path: replays everything on every call from the host (never skips a replay, never takes a
    KEEPALIVE before the replay)."""

    defer_replay = False

    def catch_up(self, until: int | None = None) -> None:
        super().catch_up(until)
        self._settled_at = None


class PlainDelivery(ReplayAlways):
    """The plain path throughout: no pulse is taken as fast, so every delivery runs the spacing check and
    builds its acknowledgements from the delivered amplitudes."""

    fast_delivery = False


def _transcript_run(emu_cls, kind, sched, plan, faults, lookahead_ms):
    clock = VirtualClock(1_000_000)
    emu = emu_cls(clock=clock, capture=True)
    tx, rx = hashlib.sha256(), hashlib.sha256()
    host_write, host_read = emu.host_write, emu.host_read

    def write(data):
        rx.update(bytes(data))
        return host_write(data)

    def read(*a):
        out = host_read(*a)
        tx.update(out)
        return out

    emu.host_write, emu.host_read = write, read
    for f in faults:
        if f[0] == "electrode":
            emu.inject_electrode_fault(f[1], f[2])
        elif f[0] == "stall":
            emu.inject_host_stall(f[2], 200_000)
        elif f[0] == "silence":
            emu.inject_device_silence(f[2], 300_000)
        else:
            emu.inject_link_fault(f[0], f[2], count=f[1], direction="both")
    dev = stimscript.open_device("loopback", emulator=emu) if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
    ctl = SessionController()
    for t, action, *args in plan:
        ctl.at(t, action, *args)
    events = []
    rec = stimscript.run(sched, device=dev, record=False, controller=ctl, clock=clock, keep_acks=True,
                         on_event=lambda e: events.append((e.kind, e.t_us, repr(e.progress), e.detail)),
                         lookahead_ms=lookahead_ms)
    out = (tx.hexdigest(), rx.hexdigest(), emu.output.tobytes(), rec.acknowledged.tobytes(), events,
           rec.end_reason, rec.end_detail, rec.delivered, rec.peak_ua, rec.device_log,
           [(e.kind, e.device_us, e.channel, e.old_ua, e.new_ua, e.detail) for e in rec.events])
    dev.close()
    return out, rec, emu


SCHED = nmes_schedule(channels=3, seconds=12, freq_hz=40, on_s=3, off_s=2, ramp_s=1, stagger_us=250_000,
                      shapes=(BIPHASIC_300,), title="fast paths")
controls = st.lists(st.tuples(st.integers(0, 12_000_000), st.sampled_from(
    ["pause", "resume", "intensity_up", "intensity_down", "stop", "estop", "stall"])), max_size=5)
faults = st.lists(st.tuples(st.sampled_from(["electrode", "stall", "silence", "corrupt", "drop", "duplicate",
                                             "reorder"]), st.integers(1, 3), st.integers(0, 12_000_000)),
                  max_size=2)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["loopback", "usb"]), controls, faults, st.sampled_from([None, 300]))
def test_skipping_an_idle_replay_changes_no_byte_on_the_wire_and_nothing_in_the_record(kind, plan, fault,
                                                                                      lookahead_ms):
    plan = [(t, a, 300_000) if a == "stall" else (t, a) for t, a in plan]
    plain, _, _ = _transcript_run(PlainDelivery, kind, SCHED, plan, fault, lookahead_ms)
    fast, rec, emu = _transcript_run(Emulator, kind, SCHED, plan, fault, lookahead_ms)
    assert fast == plain
    # peaks folded in batches by the runtime equal the device's own
    if rec.end_reason == "completed":
        peaks = emu.peak_per_channel
        assert rec.peak_ua == {c: int(peaks[c]) for c in rec.peak_ua}


def test_a_long_run_folds_peaks_in_batches_and_the_record_equals_the_device():
    sched = nmes_schedule(channels=8, seconds=240, freq_hz=50, on_s=10, off_s=20, ramp_s=1,
                          shapes=(BIPHASIC_300,), title="peaks")
    clock = VirtualClock()
    emu = Emulator(clock=clock)
    dev = stimscript.open_device("loopback", emulator=emu)
    rec = stimscript.run(sched, device=dev, record=False, clock=clock)
    assert rec.end_reason == "completed"
    assert rec.delivered == {c: int(emu.delivered_per_channel[c]) for c in range(1, 9)}
    assert rec.peak_ua == {c: int(emu.peak_per_channel[c]) for c in range(1, 9)}
    assert rec.device_log["acked_sha256"] == emu.delivered_sha256
    assert emu.output_sha256 == hashlib.sha256(np.ascontiguousarray(sched.pulses).tobytes()).hexdigest()
    dev.close()


def _driver_script(emu_cls, ops, kind):
    """Drive a device directly (no runtime): every op at the instant the clock shows, several at one instant."""
    clock = VirtualClock(1_000_000)
    emu = emu_cls(clock=clock, capture=True)
    tx = hashlib.sha256()
    host_read = emu.host_read

    def read(*a):
        out = host_read(*a)
        tx.update(out)
        return out

    emu.host_read = read
    dev = stimscript.open_device("loopback", emulator=emu) if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
    dev.use_clock(clock)
    dev.upload_shapes([BIPHASIC_300])
    dev.start(dev.device_time_us())
    dev.poll()     # the device's time, as the runtime knows it before it sends anything
    last = 0
    log = []
    for op, a, b in ops:
        now = dev.device_time_us()
        if op == "pulses":
            # spacings on a channel from well apart to closer than the slot rate allows (1 ms), amplitudes
            # including 0 µA
            t0 = max(now + a // 2, last)
            k = np.arange(1 + b % 5)
            p = np.zeros(len(k), dtype=PULSE_DTYPE)
            p["t_us"] = t0 + np.cumsum((k * (b + 3) * 331) % 1_700)
            p["channel"] = 1 + (k * (1 + b % 3) + b) % 3
            p["amplitude_ua"] = (10_000 + 1_000 * b) * ((k + b) % 7 != 0)
            last = int(p["t_us"][-1]) + (b % 3) * 700
            dev.send_block(p)
        elif op == "advance":
            clock.advance(a)
        elif op == "scale":
            dev.set_scale(1 + b % 3, (b % 5) / 4)
        elif op == "pause":
            dev.pause(a)
        elif op == "resume":
            dev.resume(now + a // 2, a)
        elif op == "stop":
            dev.stop(a)
        elif op == "estop":
            dev.estop()
        elif op == "keepalive":
            dev.keepalive()
        elif op == "electrode":
            emu.inject_electrode_fault(1 + b % 3, now - emu.epoch + a // 4)
        log.append([type(e).__name__ + repr(getattr(e, "device_t_us", "")) for e in dev.poll()] if b % 2 else [])
    clock.advance(1_000_000)
    log.append([type(e).__name__ for e in dev.poll()])
    out = (tx.hexdigest(), emu.output.tobytes(), log, emu.delivered_total, emu.late_total, emu.flushed_total,
           emu.suppressed_total, [(f.code, f.channel, f.device_t_us) for f in emu.faults])
    dev.close()
    return out


ops = st.lists(st.tuples(st.sampled_from(["pulses"] * 4 + ["advance"] * 3 + ["scale", "pause", "resume", "stop",
                                                                            "estop", "keepalive", "electrode"]),
                         st.sampled_from([0, 0, 1, 999, 2_000, 20_000, 150_000]), st.integers(0, 20)),
               max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.sampled_from(["loopback", "usb"]))
def test_several_frames_at_one_instant_and_fast_deliveries_are_like_the_plain_emulator(script, kind):
    fast = _driver_script(Emulator, script, kind)
    assert fast == _driver_script(ReplayAlways, script, kind)
    assert fast == _driver_script(PlainDelivery, script, kind)
    # and by the device's rules (independent of both): nothing at 0 µA is delivered, and no channel gets two
    # pulses closer than its slot spacing (1 ms at 1 kHz)
    out = np.frombuffer(fast[1], dtype=PULSE_DTYPE)
    assert not (out["amplitude_ua"] == 0).any()
    for c in (1, 2, 3):
        assert (np.diff(out["t_us"][out["channel"] == c]) >= 1000).all()
