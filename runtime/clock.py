"""The runtime's name for the clocks; they live in the contract module :mod:`stimscript.clock`."""
from __future__ import annotations

from ..clock import Clock, RealClock, VirtualClock

__all__ = ["Clock", "RealClock", "VirtualClock"]
