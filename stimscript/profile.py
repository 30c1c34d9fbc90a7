"""Device profiles: what a stimulator can do. The compiler checks against one; drivers report one.

The loopback emulator's default profile is normative (docs/drivers.md). Besides the electrical limits, a
profile states the device's **encodable space**: what its command set can carry (phases per pulse shape,
shapes in its table, the bytes of one shape upload, the range of a relative phase amplitude). The checker
refuses a protocol outside it at check time (S017, docs/safety.md) instead of failing while a session is
being sent. The defaults are those of stimscript wire protocol v1 (docs/wire-protocol.md): a SHAPES frame
holds a u16 count, then per shape a u16 index, a u8 phase count and 8 bytes per phase (u32 duration,
i32 amplitude in parts per million), within one 16384-byte payload.
"""
from __future__ import annotations

from .valueclass import dataclass


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
    # the encodable space (not sent in HELLO; a driver for another command set states its own)
    max_phases_per_shape: int = 255        # u8 phase count
    max_shapes: int = 65535                # u16 shape index
    shape_table_bytes: int = 16384 - 2     # one SHAPES payload after its u16 count
    shape_header_bytes: int = 3            # u16 index + u8 phase count
    phase_bytes: int = 8                   # u32 duration + i32 amplitude (ppm)
    max_relative_ppm: int = 2**31 - 1      # |relative amplitude| x 10^6 fits an i32

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


LOOPBACK_PROFILE = DeviceProfile()
