"""The compiler's name for the lowered records (shapes, trains, channels, segments, the pulse dtype).

They live in the contract module :mod:`stimscript.pulses`, which every later stage imports instead of the
compiler; this module keeps the import path ``stimscript.compiler.ir`` working.
"""
from __future__ import annotations


from ..pulses import PULSE_FIELDS, ChannelInfo, PulseShape, Segment, Train

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pulses import PULSE_DTYPE

__all__ = ["PULSE_DTYPE", "PULSE_FIELDS", "ChannelInfo", "PulseShape", "Segment", "Train"]


def __getattr__(name: str):
    if name == "PULSE_DTYPE":  # built lazily by the contract module (numpy stays out of check and fmt)
        from .. import pulses

        return pulses.PULSE_DTYPE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
