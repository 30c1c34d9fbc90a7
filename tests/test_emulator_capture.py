"""The emulator keeps bounded memory by default (capture is opt-in, for tests and exports): same delivery, same
SHA-256 of what it delivered, a digest the session record can be compared with, no per-pulse list kept; asking
for the list is a clear error."""
from __future__ import annotations

import hashlib

import pytest

import stimscript
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.runtime import SessionController
from stimscript.runtime.testing import nmes_schedule

SCHED = nmes_schedule(channels=3, seconds=20, on_s=4, off_s=2, ramp_s=0.5)


def _run(capture: bool):
    ctl = SessionController()
    ctl.at(5_000_000, "intensity_down")
    ctl.at(9_000_000, "pause")
    ctl.at(10_000_000, "resume")
    dev = LoopbackDriver(capture=capture)
    dev.open()
    rec = stimscript.run(SCHED, device=dev, record=False, controller=ctl)
    return dev, rec


def test_without_capture_the_delivery_and_its_digest_are_the_same():
    full, rec_full = _run(True)
    lean, rec_lean = _run(False)
    out = full.emulator.output
    assert hashlib.sha256(out.tobytes()).hexdigest() == full.emulator.output_sha256   # independent digest
    assert lean.emulator.output_sha256 == full.emulator.output_sha256
    assert rec_lean.delivered == rec_full.delivered and rec_lean.peak_ua == rec_full.peak_ua
    assert lean.emulator.delivered_total == len(out)
    assert lean.emulator._out_chunks == []          # nothing kept per pulse
    with pytest.raises(RuntimeError, match="capture"):
        lean.emulator.output
    full.close()
    lean.close()


def test_bounded_memory_is_the_default_for_every_way_of_opening_the_loopback():
    from stimscript.drivers.emulator import Emulator
    from stimscript.drivers.loopback import LoopbackBackend

    assert not Emulator().capture and not LoopbackDriver().emulator.capture
    assert not LoopbackBackend().emulator.capture
    dev = stimscript.open_device("loopback")
    assert not dev.emulator.capture
    dev.close()
    dev = stimscript.open_device("loopback", capture=True)
    assert dev.emulator.capture
    dev.close()


def test_the_record_can_be_compared_with_what_was_delivered_without_capture():
    """The record's digest of the acknowledged pulses equals the emulator's digest of what it delivered, and
    both equal an independent SHA-256 of the captured output packed as the record documents (t_us after the
    epoch i8, channel u1, amplitude i4, little-endian, no padding)."""
    full, rec_full = _run(True)
    lean, rec_lean = _run(False)
    out = full.emulator.output
    packed = b"".join(int(t).to_bytes(8, "little", signed=True) + int(c).to_bytes(1, "little")
                      + int(a).to_bytes(4, "little", signed=True)
                      for t, c, a in zip(out["t_us"].tolist(), out["channel"].tolist(), out["amplitude_ua"].tolist()))
    independent = hashlib.sha256(packed).hexdigest()
    assert full.emulator.delivered_sha256 == independent
    assert lean.emulator.delivered_sha256 == independent
    assert rec_lean.device_log["acked_sha256"] == lean.emulator.delivered_sha256
    assert rec_lean.device_log["acked"] == lean.emulator.delivered_total == len(out)
    assert rec_full.device_log["acked_sha256"] == rec_lean.device_log["acked_sha256"]
    full.close()
    lean.close()


def test_cli_run_uses_the_digest_only_emulator(tmp_path, monkeypatch):
    from stimscript.drivers import emulator as emu_mod

    made = []
    real_init = emu_mod.Emulator.__init__

    def spy(self, *a, **kw):
        real_init(self, *a, **kw)
        made.append(self)

    monkeypatch.setattr(emu_mod.Emulator, "__init__", spy)
    from stimscript.cli import main

    example = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "acl_early_toth2020.stim")
    code = main(["run", example, "--fast", "--db", str(tmp_path / "r.sqlite")])
    assert code == 0
    assert made and all(not e.capture for e in made) and made[0].delivered_total > 0
