"""A session paused and never resumed ends (virtual clock): the pause limit stops it with a truthful record.

Before the limit existed, a virtual-time session paused without a resume looped for ever (the virtual clock
kept advancing, the keep-alives kept the device's watchdog fed, nothing could end it).
"""
from __future__ import annotations

import pytest

import stimscript
from stimscript.runtime import RecordStore, SessionController
from stimscript.runtime.testing import nmes_schedule


def _run(ctl, tmp_path, seconds=20):
    sched = nmes_schedule(channels=2, seconds=seconds, on_s=4, off_s=2, ramp_s=0.5)
    dev = stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(sched, device=dev, controller=ctl, db=tmp_path / "r.sqlite")
    out = dev.emulator.output.copy()
    dev.close()
    return rec, out


def test_a_pause_never_resumed_ends_at_the_pause_limit(tmp_path):
    ctl = SessionController(max_pause_s=90, pause_ramp_ms=500)
    ctl.at(3_000_000, "pause")
    rec, out = _run(ctl, tmp_path)
    assert rec.end_reason == "stopped"
    assert "pause limit" in rec.end_detail and "90 s" in rec.end_detail
    assert not rec.faults                              # a pause limit is not a device fault
    # paused from the end of the pause ramp (3.5 s) for exactly the limit; nothing delivered after the pause
    assert rec.paused_us == 90_000_000
    assert out["t_us"].max() < 3_500_000
    kinds = [e.kind for e in rec.events]
    assert kinds.index("pause") < kinds.index("stop") < kinds.index("end")
    with RecordStore(tmp_path / "r.sqlite") as store:
        stored = store.get(rec.id)
    assert stored.end_reason == "stopped" and "pause limit" in stored.end_detail
    assert sum(stored.delivered.values()) == len(out)


def test_the_default_pause_limit_also_ends_a_session(tmp_path):
    ctl = SessionController()
    ctl.at(1_000_000, "pause")
    rec, _ = _run(ctl, tmp_path)
    assert rec.end_reason == "stopped"
    assert rec.paused_us == SessionController.DEFAULT_MAX_PAUSE_S * 1_000_000


def test_a_resume_before_the_limit_continues_to_completion(tmp_path):
    ctl = SessionController(max_pause_s=90)
    ctl.at(3_000_000, "pause")
    ctl.at(80_000_000, "resume")
    rec, _ = _run(ctl, tmp_path)
    assert rec.end_reason == "completed"


@pytest.mark.parametrize("bad", [0, -1, 24 * 3600 + 1])
def test_pause_limit_must_be_sensible(bad):
    with pytest.raises(ValueError, match="pause limit"):
        SessionController(max_pause_s=bad)
