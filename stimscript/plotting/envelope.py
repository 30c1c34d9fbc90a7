"""The data of a session plot: each channel's largest amplitude per time bin, streamed from the schedule.

Nothing here ever materialises ``schedule.pulses``: the envelope is a per-bin maximum computed by streaming
:meth:`Schedule.blocks`, so a 2-hour, 8-channel session costs the same memory as a 1-minute one and a figure
never holds more than ``bins`` points per lane. No matplotlib here: the numbers stand (and are tested) alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: default number of bins per lane (each bin shows the largest amplitude delivered in it)
DEFAULT_BINS = 2000


@dataclass
class Envelope:
    """Per-bin maximum amplitude of each channel over the session.

    ``edges_us`` has ``bins + 1`` entries (bin ``i`` covers ``edges_us[i] <= t < edges_us[i+1]``);
    ``peak_ua[j, i]`` is the largest amplitude (µA) channel ``channels[j]`` delivers in bin ``i``
    (0 when it is idle). ``pulses`` counts the pulses seen per channel while streaming.
    """

    channels: tuple[int, ...]
    edges_us: np.ndarray
    peak_ua: np.ndarray
    pulses: dict

    @property
    def bins(self) -> int:
        return len(self.edges_us) - 1


def _channel_numbers(schedule) -> tuple[int, ...]:
    numbers = {c.number for c in schedule.channels}
    numbers |= {tr.channel for tr in schedule.trains}
    return tuple(sorted(numbers))


def _max_period_us(schedule) -> dict[int, float]:
    """Longest pulse period per channel (µs): the gap below which the envelope is held, not dropped."""
    out: dict[int, float] = {}
    for tr in schedule.trains:
        p = tr.period_num / tr.period_den
        out[tr.channel] = max(out.get(tr.channel, 0.0), p)
    return out


def envelope(schedule, bins: int = DEFAULT_BINS, max_pulses: int = 65536) -> Envelope:
    """Stream ``schedule.blocks(max_pulses)`` into per-bin, per-channel maximum amplitudes.

    Memory is ``O(bins * channels + max_pulses)`` whatever the session's length. Bins narrower than a
    channel's pulse period would show a comb (empty bins between pulses); such gaps shorter than one
    period are filled with the amplitude of the pulse before them (sample and hold), so a lane shows the
    contraction, not the aliasing.
    """
    duration = max(1, int(schedule.duration_us))
    bins = max(1, min(int(bins), duration))
    numbers = _channel_numbers(schedule)
    index = np.full(256, -1, dtype=np.int64)
    for j, n in enumerate(numbers):
        index[n] = j
    nch = max(1, len(numbers))
    flat = np.zeros(nch * bins, dtype=np.int64)
    counts = np.zeros(nch, dtype=np.int64)
    for block in schedule.blocks(max_pulses):
        if len(block) == 0:
            continue
        t = block["t_us"].astype(np.int64, copy=False)
        b = np.minimum((t * bins) // duration, bins - 1)
        j = index[block["channel"]]
        keep = j >= 0
        if not keep.all():  # pragma: no cover - channels come from the trains, so this never drops
            b, j, t = b[keep], j[keep], t[keep]
        amp = block["amplitude_ua"][keep] if not keep.all() else block["amplitude_ua"]
        np.maximum.at(flat, j * bins + b, amp.astype(np.int64, copy=False))
        counts += np.bincount(j, minlength=nch)[:nch]
    peak = flat.reshape(nch, bins)

    # sample-and-hold across empty bins shorter than one pulse period
    bin_us = duration / bins
    periods = _max_period_us(schedule)
    idx = np.arange(bins)
    for j, n in enumerate(numbers):
        hold_bins = int(np.ceil(periods.get(n, 0.0) / bin_us))
        if hold_bins < 1:
            continue
        row = peak[j]
        nz = row > 0
        if not nz.any():
            continue
        last = np.maximum.accumulate(np.where(nz, idx, -1))
        fill = (~nz) & (last >= 0) & (idx - last < hold_bins)
        if fill.any():
            row[fill] = row[last[fill]]

    edges = (np.arange(bins + 1, dtype=np.float64) * duration / bins)
    return Envelope(numbers, edges, peak[: len(numbers)],
                    {n: int(counts[j]) for j, n in enumerate(numbers)})


def held_peaks(env: Envelope, schedule, px_width: float) -> np.ndarray:
    """The lanes to draw: where a train's cycles are narrower than a few pixels, each bin shows the largest
    amplitude of the surrounding cycle (a solid band at the hold level) instead of a comb that aliases."""
    peak = env.peak_ua.copy()
    if not env.channels or not env.bins:
        return peak
    duration = max(1, int(schedule.duration_us))
    bin_us = duration / env.bins
    row_of = {n: j for j, n in enumerate(env.channels)}
    for tr in schedule.trains:
        j = row_of.get(tr.channel)
        if j is None or tr.cycle_us <= 0 or tr.cycles < 2:
            continue
        if tr.cycle_us / duration * px_width >= 8:
            continue
        lo = int(tr.start_us // bin_us)
        hi = min(env.bins, int(np.ceil(tr.end_us / bin_us)))
        w = int(np.ceil(tr.cycle_us / bin_us)) + 1
        seg = env.peak_ua[j, lo:hi]
        if len(seg) < w:
            peak[j, lo:hi] = seg.max(initial=0)
            continue
        pad = np.concatenate([np.zeros(w // 2, seg.dtype), seg, np.zeros(w - 1 - w // 2, seg.dtype)])
        peak[j, lo:hi] = np.lib.stride_tricks.sliding_window_view(pad, w).max(axis=1)
    return peak
