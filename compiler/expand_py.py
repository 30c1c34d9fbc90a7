"""The pure-Python schedule expander: the normative reference the Cython twin must match bit for bit.

Written for obviousness, not speed: every number is an exact Python int or Fraction.
"""
from __future__ import annotations

import heapq
from typing import Iterator, Sequence

import numpy as np

from .ir import PULSE_DTYPE, Train
from .slots import round_div, slot_amplitude, slot_offset

__all__ = ["expand", "count", "iter_train", "round_div", "slot_offset", "slot_amplitude"]


def _first_slot_at_or_after(train: Train, offset: int) -> int:
    """Smallest k >= 0 with slot_offset(k) >= offset."""
    if offset <= 0:
        return 0
    k = max(0, (offset * train.period_den) // train.period_num - 1)
    while slot_offset(train, k) < offset:
        k += 1
    return k


def iter_train(train: Train, t0: int, t1: int) -> Iterator[tuple[int, int, int, int]]:
    """(t_us, channel, amplitude_ua, shape) of every emitted slot with t0 <= t < t1, in time order."""
    if train.cycles <= 0 or t1 <= train.start_us:
        return
    first_cycle = 0
    if train.cycle_us > 0 and t0 > train.start_us:
        first_cycle = min(train.cycles, (t0 - train.start_us) // train.cycle_us)
    for c in range(first_cycle, train.cycles):
        cycle_start = train.start_us + c * train.cycle_us
        if cycle_start >= t1:
            break
        k = _first_slot_at_or_after(train, t0 - cycle_start)
        while True:
            offset = slot_offset(train, k)
            if offset >= train.on_us or cycle_start + offset >= t1:
                break
            amp = slot_amplitude(train, offset)
            if amp != 0:
                yield (cycle_start + offset, train.channel, amp, train.shape)
            k += 1


def expand(trains: Sequence[Train], t0: int, t1: int) -> np.ndarray:
    """All pulses with t0 <= t_us < t1, sorted by (t_us, channel)."""
    streams = [iter_train(tr, t0, t1) for tr in trains if tr.end_us > t0 and tr.start_us < t1]
    rows = list(heapq.merge(*streams, key=lambda row: (row[0], row[1])))
    return np.array(rows, dtype=PULSE_DTYPE) if rows else np.zeros(0, dtype=PULSE_DTYPE)


def count(trains: Sequence[Train], t0: int, t1: int) -> int:
    """Number of pulses with t0 <= t_us < t1."""
    return sum(1 for tr in trains for _ in iter_train(tr, t0, t1))
