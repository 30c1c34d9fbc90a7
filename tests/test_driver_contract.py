"""The Driver base class is the whole contract: a driver written to it alone runs a session, the runtime
touches nothing else, and the registry refuses plug-ins that are not Drivers."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import stimscript
from stimscript.compiler.ir import PULSE_DTYPE
from stimscript.drivers import events as ev
from stimscript.drivers import registry
from stimscript.drivers.base import Driver
from stimscript.errors import DriverError
from stimscript.runtime import SessionController, VirtualClock
from stimscript.runtime.testing import DirectDriver, device_kinds, nmes_schedule, open_test_device

KINDS = [k for k in device_kinds() if k != "usb"]
CONTRACT = {n for n in dir(Driver) if not n.startswith("_")} | {"lock", "is_open"}


class Recording(DirectDriver):
    """Records every attribute the runtime (not the driver itself) touches."""

    def __init__(self, *a, **kw):
        object.__setattr__(self, "touched", set())
        super().__init__(*a, **kw)

    def __getattribute__(self, name):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("stimscript.runtime") and caller != "stimscript.runtime.testing":
            object.__getattribute__(self, "touched").add(name)
        return object.__getattribute__(self, name)


def test_the_runtime_uses_only_the_documented_contract():
    s = nmes_schedule(channels=3, seconds=8, on_s=3, off_s=1, ramp_s=0.5)
    dev = Recording()
    dev.open()
    dev.touched.clear()
    ctl = SessionController(slew_ua_per_s=1_000_000)
    ctl.at(1_000_000, "intensity_down")
    ctl.at(2_000_000, "pause")
    ctl.at(3_000_000, "resume")
    ctl.at(6_000_000, "stop")
    rec = stimscript.run(s, device=dev, controller=ctl, record=False)
    assert rec.end_reason == "stopped"
    assert dev.touched <= CONTRACT, f"the runtime used {sorted(dev.touched - CONTRACT)}, which Driver does not define"
    assert {"prepare", "set_scale", "pause", "resume", "stop", "poll", "send_block"} <= dev.touched


@pytest.mark.parametrize("kind", KINDS)
def test_set_scale_is_per_channel(kind):
    dev = open_test_device(kind)
    clock = VirtualClock()
    assert dev.use_clock(clock)
    s = nmes_schedule(channels=3, seconds=1, on_s=1, off_s=0, ramp_s=0)
    dev.upload_shapes(s.shapes)
    epoch = dev.device_time_us()
    dev.start(epoch)
    p = np.zeros(6, dtype=PULSE_DTYPE)
    p["t_us"] = epoch + np.array([1000, 1000, 1000, 21_000, 21_000, 21_000])
    p["channel"] = [1, 2, 3, 1, 2, 3]
    p["amplitude_ua"] = 30_001
    dev.send_block(p)
    dev.set_scale(2, 0.5)        # 15000.5 -> 15000 (half to even)
    dev.set_scale(3, 1.25)       # 37501.25 -> 37501
    clock.advance(50_000)
    events = dev.poll()
    recs = np.concatenate([e.records for e in events if isinstance(e, ev.PulsesDelivered)])
    got = {(int(r["channel"]), int(r["t_us"] - epoch)): int(r["amplitude_ua"]) for r in recs}
    assert got == {(1, 1000): 30_001, (2, 1000): 15_000, (3, 1000): 37_501,
                   (1, 21_000): 30_001, (2, 21_000): 15_000, (3, 21_000): 37_501}
    assert sorted(int(i) for i in recs["index"]) == list(range(6))
    dev.close()


class Vanishing(DirectDriver):
    """Reports DeviceLost at a session time (a driver that notices its device is gone)."""

    lost_at = 2_000_000

    def poll(self):
        out = super().poll()
        if self.state != ev.IDLE and self._now - self.epoch >= self.lost_at:
            self._flush()
            self.state = ev.FAULTED
            out.append(ev.DeviceLost("no answer from the device"))
        return out


def test_device_lost_event_ends_disconnected():
    s = nmes_schedule(channels=2, seconds=5, on_s=5, off_s=0, ramp_s=0)
    dev = Vanishing()
    dev.open()
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason == "disconnected"
    assert any("no answer" in f for f in rec.faults)
    assert dev.output["t_us"].max() <= Vanishing.lost_at + 400_000


class Refusing(DirectDriver):
    seen = None

    def prepare(self, schedule):
        Refusing.seen = schedule
        raise DriverError("this device cannot play a 50 Hz train on channel 1")


def test_prepare_sees_the_whole_schedule_and_can_refuse_it():
    s = nmes_schedule(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0)
    dev = Refusing()
    dev.open()
    with pytest.raises(DriverError, match="cannot play"):
        stimscript.run(s, device=dev, record=False)
    assert Refusing.seen is s and len(dev.output) == 0 and dev.state == ev.IDLE


def test_registry_refuses_a_plugin_that_is_not_a_driver(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: {
        "notadriver": "collections:OrderedDict", "afunction": "stimscript.runtime.testing:nmes_schedule",
        "direct": "stimscript.runtime.testing:DirectDriver"})
    with pytest.raises(DriverError, match="not a subclass of stimscript.drivers.base.Driver"):
        registry.load_driver_class("notadriver")
    with pytest.raises(DriverError, match="function object, not a subclass"):
        registry.load_driver_class("afunction")
    assert registry.load_driver_class("direct") is DirectDriver
    dev = stimscript.open_device("direct")
    rec = stimscript.run(nmes_schedule(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0), device=dev, record=False)
    assert rec.end_reason == "completed"


class Incomplete(Driver):
    def open(self):
        pass


def test_registry_names_an_incomplete_driver(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: {"half": f"{__name__}:Incomplete"})
    with pytest.raises(DriverError, match="incomplete.*abstract"):
        stimscript.open_device("half")


def test_a_plugin_that_crashes_on_import_is_a_driver_error(monkeypatch, tmp_path):
    (tmp_path / "brokenplugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": "brokenplugin:X"})
    with pytest.raises(DriverError, match="failed while loading: RuntimeError: boom"):
        registry.load_driver_class("broken")
