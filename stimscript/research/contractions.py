"""Contractions: runs of delivered pulses that belong to one cycle's on-phase on one channel.

A contraction is identified by (channel, train, cycle, period): the schedule train (one line of a block on
one channel), the cycle of that train, and the stretch of output between pauses (a pause cuts a
contraction in two). It starts at its first *delivered* pulse and ends when its last delivered pulse ends
(onset + the pulse shape's duration) — what reached the skin, not what was planned. The same rule feeds
Lab Streaming Layer markers, BIDS events and NWB intervals, so they agree with each other.
"""
from __future__ import annotations

import numpy as np

#: one row per contraction; times in µs from the session start on the device clock
CONTRACTION_DTYPE = np.dtype([("onset_us", "<i8"), ("end_us", "<i8"), ("channel", "u1"), ("n_pulses", "<i4"),
                              ("peak_ua", "<i4"), ("train", "<i4"), ("cycle", "<i4"), ("period", "<u2"),
                              ("first", "<i8"), ("last", "<i8")])


class TrainIndex:
    """Finds the train and cycle of a schedule pulse (channel, schedule time), vectorised."""

    def __init__(self, schedule):
        self.trains = schedule.trains
        self.shape_us = np.array([s.duration_us for s in schedule.shapes] or [0], dtype=np.int64)
        self._by_channel: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for ch in {tr.channel for tr in schedule.trains}:
            idx = sorted((i for i, tr in enumerate(schedule.trains) if tr.channel == ch),
                         key=lambda i: schedule.trains[i].start_us)
            starts = np.array([schedule.trains[i].start_us for i in idx], dtype=np.int64)
            self._by_channel[ch] = (starts, np.array(idx, dtype=np.int64))
        self.start = np.array([tr.start_us for tr in schedule.trains] or [0], dtype=np.int64)
        self.cycle_us = np.array([max(1, tr.cycle_us) for tr in schedule.trains] or [1], dtype=np.int64)

    def locate(self, channel: np.ndarray, sched_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (train index, cycle index) of each pulse."""
        train = np.full(len(sched_t), -1, dtype=np.int64)
        for ch, (starts, idx) in self._by_channel.items():
            sel = channel == ch
            if sel.any():
                pos = np.searchsorted(starts, sched_t[sel], side="right") - 1
                train[sel] = idx[np.maximum(pos, 0)]
        cycle = (sched_t - self.start[train]) // self.cycle_us[train]
        return train, cycle


def group(delivered: np.ndarray, index: TrainIndex, first_row: int = 0) -> np.ndarray:
    """Contractions of a DELIVERED_DTYPE array (sorted by device time), vectorised; ``first``/``last`` are
    row numbers (plus ``first_row``) of each contraction's first and last pulse."""
    n = len(delivered)
    if n == 0:
        return np.zeros(0, dtype=CONTRACTION_DTYPE)
    ch = delivered["channel"].astype(np.int64)
    train, cycle = index.locate(ch, delivered["sched_t_us"].astype(np.int64))
    period = delivered["period"].astype(np.int64)
    # order by channel, keeping time order inside a channel, then cut where the key changes
    order = np.lexsort((np.arange(n), ch))
    k_ch, k_tr, k_cy, k_pe = ch[order], train[order], cycle[order], period[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (k_ch[1:] != k_ch[:-1]) | (k_tr[1:] != k_tr[:-1]) | (k_cy[1:] != k_cy[:-1]) | (k_pe[1:] != k_pe[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n) - 1
    first, last = order[starts], order[ends]
    amp = np.abs(delivered["amplitude_ua"].astype(np.int64))[order]
    out = np.empty(len(starts), dtype=CONTRACTION_DTYPE)
    out["onset_us"] = delivered["t_us"][first]
    out["end_us"] = delivered["t_us"][last] + index.shape_us[delivered["shape"][last].astype(np.int64)]
    out["channel"] = k_ch[starts]
    out["n_pulses"] = ends - starts + 1
    out["peak_ua"] = np.maximum.reduceat(amp, starts)
    out["train"] = k_tr[starts]
    out["cycle"] = k_cy[starts]
    out["period"] = k_pe[starts]
    out["first"] = first + first_row
    out["last"] = last + first_row
    return out[np.lexsort((out["channel"], out["onset_us"]))]
