"""CRC-valid frames whose payload does not fit their type: the emulator answers with a protocol error (FAULT
bad_message, output off during a session), as a device would, and never raises. Sent through the real wire
path: the driver's own framing (sequence, CRC) into the in-process emulator and through pyusb's code path.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.clock import VirtualClock
from stimscript.drivers import events as ev
from stimscript.drivers import wire as w
from stimscript.pulses import PULSE_DTYPE
from stimscript.runtime.testing import nmes_schedule, open_test_device

SHORT = {w.SET_SCALE: w.SET_SCALE_STRUCT.size, w.START: w.START_STRUCT.size, w.STOP: w.RAMP_STRUCT.size,
         w.PAUSE: w.RAMP_STRUCT.size, w.RESUME: w.RESUME_STRUCT.size}


def _running(kind: str):
    dev = open_test_device(kind)
    clock = VirtualClock()
    dev.use_clock(clock)
    dev.upload_shapes(nmes_schedule(channels=1, seconds=1).shapes)
    epoch = dev.device_time_us()
    dev.start(epoch)
    p = np.zeros(50, dtype=PULSE_DTYPE)
    p["t_us"] = epoch + 1_000 + 20_000 * np.arange(50)
    p["channel"] = 1
    p["amplitude_ua"] = 20_000
    dev.send_block(p)
    clock.advance(100_000)
    dev.poll()
    return dev, clock


@pytest.mark.parametrize("kind", ["loopback", "usb-loopback"])
@pytest.mark.parametrize("mtype", sorted(SHORT))
def test_short_payload_in_a_session_is_a_fault_and_output_off(kind, mtype):
    dev, clock = _running(kind)
    emu = dev.emulator if kind == "loopback" else dev.backend.emulator
    before = len(emu.output)
    dev._send(mtype, b"\x01" * (SHORT[mtype] - 1))
    clock.advance(500_000)
    msgs = dev.poll()
    faults = [m for m in msgs if isinstance(m, ev.FaultReport)]
    assert faults and faults[0].kind == "bad_message" and faults[0].output_off
    assert f"0x{mtype:02X}" in faults[0].detail
    assert emu.state == w.FAULTED and emu.queue_level == 0
    assert len(emu.output) == before               # nothing delivered after the bad frame
    dev.close()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SHORT)), st.binary(max_size=12))
def test_any_payload_never_raises_inside_the_emulator(mtype, payload):
    dev, clock = _running("loopback")
    dev._send(mtype, payload)
    clock.advance(200_000)
    dev.poll()
    emu = dev.emulator
    if len(payload) < SHORT[mtype]:
        assert emu.faults and emu.faults[-1].code == w.FAULT_BAD_MESSAGE
    else:
        assert all(f.code != w.FAULT_BAD_MESSAGE for f in emu.faults)
    dev.close()


def test_short_payload_while_idle_is_reported_without_a_state_change():
    dev = open_test_device("loopback")
    dev._send(w.START, b"\x00\x01")
    msgs = dev.poll()
    assert any(isinstance(m, ev.FaultReport) and m.kind == "bad_message" for m in msgs)
    assert dev.emulator.state == w.IDLE
    dev.close()
