"""Plots of a compiled session: one amplitude-envelope lane per channel (mA, each block's frequency labelled),
the blocks, and zoomed views of one contraction and of one pulse of each shape.

Nothing here ever materialises ``schedule.pulses``: the envelope is a per-bin maximum computed by
streaming :meth:`Schedule.blocks`, so a 2-hour, 8-channel session costs the same memory as a 1-minute one
and the figure never holds more than ``bins`` points per lane.

    >>> fig = plot_schedule(schedule)                 # full figure: lanes + block strip + pulse shapes
    >>> fig.savefig("session.png", dpi=150)
    >>> plot_schedule(schedule, ax=ax)                # compact: every lane stacked in one existing axes

The compiler's Schedule knows nothing of plotting (the compiler sits below the package face, see
docs/architecture.md): plot a schedule with ``plot_schedule(schedule)``. Three modules, one job each:
:mod:`.envelope` (the numbers, no matplotlib), :mod:`.labels` (the words), :mod:`.figure` (the drawing).
"""
from __future__ import annotations

from .envelope import DEFAULT_BINS, Envelope, envelope
from .figure import plot_schedule, save_plot
from .labels import lane_label, shape_label, time_scale

__all__ = ["DEFAULT_BINS", "Envelope", "envelope", "plot_schedule", "save_plot", "lane_label", "shape_label",
           "time_scale"]
