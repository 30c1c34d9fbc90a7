"""Device timing models: what a family of stimulators can reproduce of a schedule, as plain numbers.

A :class:`TimingModel` is data only. The numbers of the built-in ScienceMode models come from Hasomed's
public documents and C library (docs/devices/sciencemode.md); the latencies are our assumptions for a USB
serial link and are stated as such in the fidelity report.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from ..errors import DeviceNotFound
from ..profile import DeviceProfile

STREAMED = "streamed"
PERIODIC = "periodic"
HOST_TIMED = "host_timed"
TRIGGERED = "triggered"
FAMILIES = (STREAMED, PERIODIC, HOST_TIMED, TRIGGERED)


@dataclass(frozen=True)
class TimingModel:
    """How one device (in one mode) turns a schedule into output."""

    name: str                          # "p24", "p24/low-level", ...
    family: str                        # one of FAMILIES
    channels: int
    max_current_ua: int
    current_step_ua: int = 1           # amplitude resolution
    min_phase_us: int = 1
    # periodic: the device's period grid; ``fine_grid_us`` when a finer grid exists (P24: 0.25 ms)
    period_grid_us: int = 1
    fine_grid_us: int | None = None
    min_period_us: int = 1
    max_period_us: int = 10**9
    #: a period off the grid is accepted while the rate error stays within this fraction (documented)
    period_tolerance: Fraction = Fraction(1, 100)
    max_points: int | None = None      # points per pulse (None: any shape)
    max_point_us: int | None = None    # longest point; longer phases take several points
    max_ramp_pulses: int = 0           # device-side ramp on enabling (pulses)
    keepalive_us: int | None = None    # output stops without a host message for this long
    keepalive_every_us: int | None = None   # how often the driver talks to it
    #: update path: an update the host sends at t reaches the output between t + min and t + max
    update_latency_us: tuple[int, int] = (0, 0)
    #: host-timed: how late a pulse can leave the host (scheduling jitter of a desktop OS) and the device buffer
    host_jitter_us: int = 0
    device_buffer: int = 0
    #: periodic load budget: sum over enabled channels of (pulse µs + overhead) / period ms < budget
    load_overhead_us: int = 0
    load_budget: int | None = None
    #: host-timed: most pulses per second over all channels the link sustains
    max_pulses_per_s: int | None = None
    profile: DeviceProfile | None = None

    @property
    def exact(self) -> bool:
        return self.family == STREAMED


def _sciencemode_profile(name: str, channels: int, min_phase: int, max_rate: int, grid: int) -> DeviceProfile:
    return DeviceProfile(name=name, channels=channels, max_current_ua=130_000, current_step_ua=500,
                         min_phase_us=min_phase, max_phase_us=16 * 4095, max_rate_hz=max_rate, time_base_us=grid,
                         independent_sources=True, queue_pulses=4096, watchdog_ms=2000)


P24_PROFILE = _sciencemode_profile("p24", 8, 10, 2000, 250)
REHAMOVE3_PROFILE = _sciencemode_profile("rehamove3", 4, 20, 500, 500)

P24_MID = TimingModel(
    name="p24", family=PERIODIC, channels=8, max_current_ua=130_000, current_step_ua=500, min_phase_us=10,
    period_grid_us=500, fine_grid_us=250, min_period_us=500, max_period_us=16_383_000 // 2,
    max_points=16, max_point_us=4095, max_ramp_pulses=15, keepalive_us=2_000_000, keepalive_every_us=500_000,
    update_latency_us=(1_000, 6_000), load_overhead_us=60, load_budget=1000, profile=P24_PROFILE)
REHAMOVE3_MID = replace(P24_MID, name="rehamove3", channels=4, min_phase_us=20, fine_grid_us=None,
                        min_period_us=2_000, max_period_us=16_383_000, profile=REHAMOVE3_PROFILE)
P24_LOW = TimingModel(
    name="p24/low-level", family=HOST_TIMED, channels=8, max_current_ua=130_000, current_step_ua=500,
    min_phase_us=10, max_points=16, max_point_us=4095, keepalive_us=None, host_jitter_us=2_000,
    update_latency_us=(1_000, 6_000), device_buffer=10, max_pulses_per_s=1000, profile=P24_PROFILE)
REHAMOVE3_LOW = replace(P24_LOW, name="rehamove3/low-level", channels=4, min_phase_us=20, max_pulses_per_s=500,
                        profile=REHAMOVE3_PROFILE)

MODELS: dict[str, TimingModel] = {m.name: m for m in (P24_MID, REHAMOVE3_MID, P24_LOW, REHAMOVE3_LOW)}
MODES = ("mid-level", "low-level")


def streamed_model(profile: DeviceProfile) -> TimingModel:
    """Any device of the stimscript wire protocol: timestamped pulses, exact to its time base."""
    # the wire carries whole µA, so streamed amplitudes are exact
    return TimingModel(name=profile.name, family=STREAMED, channels=profile.channels,
                       max_current_ua=profile.max_current_ua, current_step_ua=1,
                       min_phase_us=profile.min_phase_us, period_grid_us=profile.time_base_us, profile=profile)


def model_for(device, mode: str | None = None) -> TimingModel:
    """"p24", "rehamove3" (mid level unless ``mode="low-level"``), "p24/low-level", a TimingModel, or a
    DeviceProfile / streaming device name (-> the exact streamed model)."""
    if isinstance(device, TimingModel):
        return device
    if isinstance(device, DeviceProfile):
        return MODELS[device.name] if device.name in MODELS and mode is None else streamed_model(device)
    name = str(device or "loopback")
    if mode not in (None, "mid-level", "low-level"):
        raise DeviceNotFound(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    if mode == "low-level" and "/" not in name:
        name += "/low-level"
    if name in MODELS:
        return MODELS[name]
    if name.split("/")[0] in ("loopback", "usb"):
        from ..profile import LOOPBACK_PROFILE

        return streamed_model(replace(LOOPBACK_PROFILE, name=name))
    known = ", ".join(sorted(MODELS))
    raise DeviceNotFound(f"no timing model for device {name!r} (known: loopback, usb, {known})")


def snap_period(model: TimingModel, period_us: Fraction) -> tuple[int, bool]:
    """The device period nearest to ``period_us`` (µs): (period in µs, uses the fine grid)."""
    best: tuple[Fraction, int, bool] | None = None
    grids = [(model.period_grid_us, False)] + ([(model.fine_grid_us, True)] if model.fine_grid_us else [])
    for grid, fine in grids:
        k = max(1, round(period_us / grid))
        cand = k * grid
        err = abs(cand - period_us)
        if best is None or err < best[0]:
            best = (err, cand, fine)
    assert best is not None  # the period grid is always there
    return best[1], best[2]
