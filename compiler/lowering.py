"""Session blocks -> Trains and Segments, and a ResolvedSession -> Schedule (docs/language.md, normative).

* ``repeat N``: every line runs its cycle N times back to back from its ``after`` offset; the block ends
  when its last line ends (``after + N·cycle``, rest included).
* ``for T``: every line runs ``floor((T - after) / cycle)`` whole cycles from its ``after`` offset; the
  block lasts exactly T. ``continuous`` is one cycle with ``on = cycle = T - after`` and no ramps.
* ``pause T``: T without pulses. Blocks follow each other; the session lasts the sum.
* A train's period is 10⁶/f µs and its amplitude A µA, both as reduced integer fractions.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from ..formatting import exact_duration
from .ir import PulseShape, Segment, Train
from .model import ResolvedSession


@dataclass(frozen=True)
class Timing:
    """A cycle in whole µs (``continuous`` is resolved per block, see :func:`for_cycles`)."""

    ramp_up_us: int
    hold_us: int
    ramp_down_us: int
    rest_us: int

    @property
    def on_us(self) -> int:
        return self.ramp_up_us + self.hold_us + self.ramp_down_us

    @property
    def cycle_us(self) -> int:
        return self.on_us + self.rest_us


def repeat_end(count: int, after_us: int, timing: Timing) -> int:
    """Where a line of a ``repeat count`` block ends, relative to the block start."""
    return after_us + count * timing.cycle_us


def for_cycles(duration_us: int, after_us: int, timing: Timing) -> int:
    """Whole cycles of a line in a ``for`` block (cycle length > 0)."""
    return max(0, (duration_us - after_us) // timing.cycle_us)


_PERIODS: dict = {}


def _period(frequency_hz) -> tuple[int, int]:
    """10⁶/f µs as a reduced (numerator, denominator), memoised per frequency."""
    t = type(frequency_hz)
    if t is Fraction:
        key = (frequency_hz.numerator, frequency_hz.denominator)  # cheaper to hash than a Fraction
    elif t is int:
        key = (frequency_hz, 1)
    else:
        f = Fraction(frequency_hz)
        key = (f.numerator, f.denominator)
    p = _PERIODS.get(key)
    if p is None:
        period = Fraction(10**6) / Fraction(*key)
        p = (period.numerator, period.denominator)
        if len(_PERIODS) >= 4096:
            _PERIODS.clear()
        _PERIODS[key] = p
    return p


def make_train(channel: int, start_us: int, cycles: int, timing: Timing, frequency_hz: Fraction,
               amplitude_ua: Fraction, shape: int) -> Train:
    period_num, period_den = _period(frequency_hz)
    amp = amplitude_ua if type(amplitude_ua) is Fraction else Fraction(amplitude_ua)
    on = timing.ramp_up_us + timing.hold_us + timing.ramp_down_us
    return Train(channel=channel, start_us=start_us, cycles=cycles, cycle_us=on + timing.rest_us,
                 on_us=on, ramp_up_us=timing.ramp_up_us, ramp_down_us=timing.ramp_down_us,
                 period_num=period_num, period_den=period_den,
                 amp_num=amp.numerator, amp_den=amp.denominator, shape=shape)


class ShapeTable:
    """Deduplicated shapes in first-use order."""

    def __init__(self) -> None:
        self.index: dict[PulseShape, int] = {}
        self._by_id: dict[int, tuple[PulseShape, int]] = {}  # the same object again: no hashing

    def add(self, shape: PulseShape) -> int:
        ent = self._by_id.get(id(shape))
        if ent is not None and ent[0] is shape:
            return ent[1]
        if shape not in self.index:
            self.index[shape] = len(self.index)
        idx = self.index[shape]
        self._by_id[id(shape)] = (shape, idx)
        return idx

    @property
    def shapes(self) -> tuple[PulseShape, ...]:
        return tuple(self.index)


def duration_text(us: int) -> str:
    """'15 min', '45 s', '1.5 s', '250 ms', '1 h', '30 µs' for segment labels (stimscript.formatting)."""
    return exact_duration(us)


def repeat_label(count: int, cycles: list[str]) -> str:
    names = list(dict.fromkeys(cycles))
    return f"repeat {count} × {', '.join(names)}" if names else f"repeat {count}"


def segment(kind: str, label: str, start: int, end: int, **extra) -> Segment:
    return Segment(label=label, start_us=start, end_us=end, kind=kind, extra=extra)


def to_schedule(resolved: ResolvedSession, *, warnings=(), sha256: str = "", title: str = "",
                source_name: str = "", profile: Optional[object] = None, source_text: str = ""):
    from .schedule import Schedule

    return Schedule(trains=resolved.trains, shapes=resolved.shapes, duration_us=resolved.duration_us,
                    channels=resolved.channels, segments=resolved.segments, warnings=tuple(warnings),
                    sha256=sha256, title=title, session=resolved.session, week=resolved.week,
                    params=dict(resolved.params), source_name=source_name, profile=profile,
                    source_text=source_text)
