"""Helpers for tests and benchmarks (also for vendors re-running the suite against their hardware).

``open_test_device(kind)`` opens ``"loopback"`` (in-process emulator), ``"usb-loopback"`` (the USB driver
over pyusb with a LoopbackBackend) or ``"usb"`` (real hardware, default VID:PID). The suite's device
list comes from ``$STIMSCRIPT_TEST_DEVICES`` (comma separated, default "loopback,usb-loopback").
``nmes_schedule(...)`` builds a realistic multi-channel Schedule with ramps via ``Schedule.from_trains``.
"""
from __future__ import annotations

import os

from ..compiler.ir import ChannelInfo, PulseShape, Segment, Train
from ..compiler.schedule import Schedule

BIPHASIC_300 = PulseShape(((300, 1.0), (50, 0.0), (300, -1.0)), "biphasic")
ASYMMETRIC = PulseShape(((200, 1.0), (800, -0.25)), "asymmetric")


def device_kinds() -> list[str]:
    raw = os.environ.get("STIMSCRIPT_TEST_DEVICES", "loopback,usb-loopback")
    return [k.strip() for k in raw.split(",") if k.strip()]


def open_test_device(kind: str, **emulator_options):
    from ..drivers import open_device
    from ..drivers.emulator import Emulator
    from ..drivers.loopback import LoopbackBackend

    if kind == "loopback":
        return open_device("loopback", emulator=Emulator(**emulator_options))
    if kind == "usb-loopback":
        return open_device("usb", backend=LoopbackBackend(emulator=Emulator(**emulator_options)))
    if kind == "usb":
        return open_device("usb")
    raise ValueError(f"unknown test device kind {kind!r}")


def nmes_schedule(channels: int = 8, seconds: float = 60.0, freq_hz: int = 50, on_s: float = 10.0,
                  off_s: float = 20.0, ramp_s: float = 1.0, base_ua: int = 40_000, step_ua: int = 1_000,
                  stagger_us: int = 1_000_000, param: str | None = "intensity", shapes=None,
                  title: str = "test schedule") -> Schedule:
    """``channels`` channels of on/off cycles with ramps; channel c starts (c-1)*stagger_us late and runs
    at base_ua + (c-1)*step_ua, shape (c-1) % len(shapes)."""
    shapes = tuple(shapes or (BIPHASIC_300, ASYMMETRIC))
    cycle_us = int((on_s + off_s) * 1e6)
    total_us = int(seconds * 1e6)
    trains, infos = [], []
    for c in range(1, channels + 1):
        start = (c - 1) * stagger_us
        cycles = max(1, (total_us - start) // cycle_us)
        amp = base_ua + (c - 1) * step_ua
        trains.append(Train(channel=c, start_us=start, cycles=cycles, cycle_us=cycle_us, on_us=int(on_s * 1e6),
                            ramp_up_us=int(ramp_s * 1e6), ramp_down_us=int(ramp_s * 1e6), period_num=1_000_000,
                            period_den=freq_hz, amp_num=amp, amp_den=1, shape=(c - 1) % len(shapes)))
        infos.append(ChannelInfo(number=c, name=f"ch{c}", amplitude_ua=amp, shape=(c - 1) % len(shapes),
                                 param=param))
    duration = max(tr.end_us for tr in trains)
    segments = (Segment("block 1", 0, duration),)
    params = {}
    if param:
        from ..units import Quantity

        params[param] = Quantity.of(base_ua, "uA")
    return Schedule.from_trains(trains, shapes, duration, channels=tuple(infos), segments=segments, title=title,
                                params=params, sha256="0" * 64)
