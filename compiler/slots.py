"""Slot arithmetic of a train, exact and numpy-free: the one definition the reference expander and the
delivered-pulse checks share (round half to even, integer µs and µA)."""
from __future__ import annotations

from ..rounding import round_div
from .ir import Train

__all__ = ["round_div", "slot_offset", "slot_amplitude"]


def slot_offset(train: Train, k: int) -> int:
    """µs from the on-phase start to slot ``k``: round(k * 1e6 / f), exact."""
    return round_div(k * train.period_num, train.period_den)


def slot_amplitude(train: Train, offset: int) -> int:
    """round(A * e(offset)) in µA for a slot ``offset`` µs into the cycle's on-phase."""
    up, down, on = train.ramp_up_us, train.ramp_down_us, train.on_us
    if up > 0 and offset < up:
        return round_div(train.amp_num * offset, train.amp_den * up)
    if down > 0 and offset >= on - down:
        return round_div(train.amp_num * (on - offset), train.amp_den * down)
    return round_div(train.amp_num, train.amp_den)
