"""The Schedule: a compiled session, lazy until asked for pulses.

``pulses`` materialises the whole array; ``blocks()`` streams consecutive slices with memory bounded by
the slice size, whatever the session's length (the README's Python API). Only this type crosses into the runtime.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Iterator, Sequence

import numpy as np

from . import expander
from .ir import ChannelInfo, PulseShape, Segment, Train


@dataclass(eq=False)
class Schedule:
    trains: tuple[Train, ...]
    shapes: tuple[PulseShape, ...]
    duration_us: int
    channels: tuple[ChannelInfo, ...] = ()
    segments: tuple[Segment, ...] = ()
    warnings: tuple = ()          # Diagnostics (severity "warning") found while checking
    sha256: str = ""
    title: str = ""
    session: int = 1
    week: int = 1
    params: dict = field(default_factory=dict)  # name -> Quantity actually used
    source_name: str = ""
    profile: object = None        # the DeviceProfile it was checked against
    source_text: str = ""         # the protocol text it was compiled from (kept in session records)
    #: computes :attr:`live` on first use (set by ``CheckedProtocol.compile``; None for hand-built schedules)
    live_source: object = field(default=None, repr=False)

    @cached_property
    def live(self) -> dict:
        """Param name -> :class:`~stimscript.compiler.live.LiveParam`: what live intensity control may do in this
        session (which outputs follow which param, the reachable range checked on the delivered pulses).
        Empty for a schedule built without its protocol."""
        return dict(self.live_source()) if callable(self.live_source) else {}

    # --- whole-array access -----------------------------------------------------------------
    @cached_property
    def pulses(self) -> np.ndarray:
        """Every pulse of the session, sorted by (t_us, channel)."""
        return expander.expand(self.trains, 0, self.duration_us)

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Pulses with t0 <= t_us < t1."""
        return expander.expand(self.trains, t0, t1)

    # --- streaming ----------------------------------------------------------------------------
    def _window_us(self, max_pulses: int) -> int:
        """A window length in which at most ``max_pulses`` slots can fall (all channels together)."""
        rate = Fraction(0)  # slots per µs, upper bound over simultaneously active trains
        by_channel: dict[int, Fraction] = {}
        for tr in self.trains:
            r = Fraction(tr.period_den, tr.period_num)
            by_channel[tr.channel] = max(by_channel.get(tr.channel, Fraction(0)), r)
        rate = sum(by_channel.values(), Fraction(0))
        if rate == 0:
            return max(1, self.duration_us)
        # each channel may contribute one extra slot at the window edge
        usable = max(1, max_pulses - len(by_channel))
        return max(1, int(usable / rate))

    def blocks(self, max_pulses: int = 65536) -> Iterator[np.ndarray]:
        """Consecutive slices of ``pulses`` of at most ``max_pulses`` rows, computed window by window.

        Memory is bounded by one window's pulses (about ``max_pulses`` rows), whatever the session's
        length: nothing is accumulated across windows, and the trains are walked in start order so the
        bookkeeping per window does not grow with the number of trains already finished. Concatenating
        every block gives exactly ``pulses`` (each window keeps the trains in their original order, so
        even tie-breaking matches a whole-session expansion).
        """
        if max_pulses < 1:
            raise ValueError("max_pulses must be >= 1")
        step = self._window_us(max_pulses)
        order = sorted(range(len(self.trains)), key=lambda i: self.trains[i].start_us)
        nxt = 0                  # next train (in start order) not yet admitted
        admitted: list[int] = []  # indices of trains that have started, pruned once they have ended
        t = 0
        while t < self.duration_us:
            t1 = min(self.duration_us, t + step)
            while nxt < len(order) and self.trains[order[nxt]].start_us < t1:
                admitted.append(order[nxt])
                nxt += 1
            admitted = [i for i in admitted if self.trains[i].end_us > t]
            if admitted:
                active = [self.trains[i] for i in sorted(admitted)]
                chunk = expander.expand(active, t, t1)
                for i in range(0, len(chunk), max_pulses):
                    yield chunk[i:i + max_pulses]
                del chunk
            elif nxt < len(order):
                # nothing running: jump to the window holding the next train's start
                start = self.trains[order[nxt]].start_us
                if start > t1:
                    t1 = min(self.duration_us, t + (start - t) // step * step)
            else:
                break
            t = t1

    # --- summaries ----------------------------------------------------------------------------
    def count(self, channel: int | None = None) -> int:
        trains = [tr for tr in self.trains if channel is None or tr.channel == channel]
        return expander.count(trains, 0, self.duration_us)

    def counts(self) -> dict[int, int]:
        """Pulses per channel (computed without materialising the array)."""
        numbers = sorted({tr.channel for tr in self.trains} | {c.number for c in self.channels})
        return {n: self.count(n) for n in numbers}

    def channel(self, number_or_name: int | str) -> ChannelInfo:
        for info in self.channels:
            if info.number == number_or_name or info.name == number_or_name:
                return info
        raise KeyError(number_or_name)

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return (f"<Schedule {self.title!r} session {self.session}: {len(self.channels)} channels, "
                f"{self.duration_us / 1e6:g} s>")

    def save(self, path) -> int:
        """Write the pulses to ``.npz`` or ``.csv`` (docs/exports.md); returns the pulse count."""
        from .export import write

        return write(self, path)

    @classmethod
    def from_trains(cls, trains: Sequence[Train], shapes: Sequence[PulseShape], duration_us: int | None = None,
                    **kw) -> "Schedule":
        """Build a schedule directly (tests, drivers' own checks)."""
        trains = tuple(trains)
        if duration_us is None:
            duration_us = max((tr.end_us for tr in trains), default=0)
        return cls(trains=trains, shapes=tuple(shapes), duration_us=duration_us, **kw)
