"""Device profiles: what a stimulator can do. The compiler checks against one; drivers report one.

The loopback emulator's default profile is normative (docs/drivers.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DeviceProfile:
    name: str = "loopback"
    channels: int = 8
    max_current_ua: int = 120_000
    current_step_ua: int = 10
    min_phase_us: int = 10
    max_phase_us: int = 10_000
    max_rate_hz: int = 1000          # pulse slots per second per channel
    time_base_us: int = 1
    independent_sources: bool = True  # False: one shared current source, pulses may not overlap across channels
    queue_pulses: int = 4096
    watchdog_ms: int = 500

    def as_dict(self) -> dict:
        return asdict(self)


LOOPBACK_PROFILE = DeviceProfile()
