"""Lowering, in one module: session blocks -> Trains and Segments -> Schedule (docs/language.md, normative).

The checker evaluates and checks each block of a week and measures it (:class:`Measured`: its length and
its trains relative to the block start, built with :func:`make_train`); :func:`lay_out` places the measured
blocks back to back, unrolls sets and merges trains that continue each other; :func:`to_schedule` turns the
resolved session into the Schedule the expanders and the runtime read.

* ``repeat N``: every line runs its cycle N times back to back from its ``after`` offset; the block ends
  when its last line ends (``after + N·cycle``, rest included).
* ``for T``: every line runs ``floor((T - after) / cycle)`` whole cycles from its ``after`` offset; the
  block lasts exactly T. ``continuous`` is one cycle with ``on = cycle = T - after`` and no ramps.
* ``pause T``: T without pulses. Blocks follow each other; the session lasts the sum.
* A train's period is 10⁶/f µs and its amplitude A µA, both as reduced integer fractions.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Optional, Sequence

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


# --- blocks -> trains and segments ------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """One block of the session for one week: a pause, a leaf block (lines) or a set (blocks)."""

    kind: str                    # 'pause' | 'leaf' | 'set'
    length: int                  # µs
    label: str = ""
    path: tuple = ()             # indices from the session down to this block
    trains: tuple = ()           # leaf: (train relative to the block start, index of its use)
    count: int = 0               # set: passes
    pass_us: int = 0             # set: length of one pass
    children: tuple = ()         # set: the blocks of one pass

    @property
    def emissions(self) -> int:
        """Pauses and leaf blocks this block unrolls to."""
        if self.kind != "set":
            return 1
        return self.count * sum(c.emissions for c in self.children) + (1 if self._tail else 0)

    @property
    def _tail(self) -> int:
        return self.length - self.count * self.pass_us if self.kind == "set" else 0


#: the fields of a train that make its pattern: all but where it starts and how many cycles it runs
_PATTERN_FIELDS = tuple(f.name for f in fields(Train) if f.compare and f.name not in ("start_us", "cycles"))


def _pattern(tr: Train) -> tuple:
    """What two trains must share for one to continue the other (equality without start and cycles)."""
    if _SLOTTED:
        return tuple([getattr(tr, n) for n in _PATTERN_FIELDS])
    d = tr.__dict__
    return tuple([d[n] for n in _PATTERN_FIELDS])


def _with(tr: Train, **changes) -> Train:
    """``dataclasses.replace`` for a Train, without re-running its __init__ (the layout makes thousands of
    these per week; the values are already checked integers)."""
    if _SLOTTED:
        return replace(tr, **changes)
    new = object.__new__(Train)
    d = new.__dict__
    d.update(tr.__dict__)
    d.update(changes)
    return new


_SLOTTED = "__slots__" in Train.__dict__


class Layout:
    """Unrolls measured blocks into trains and labelled segments at absolute times.

    A train that continues the previous train of its channel exactly (same pattern, starting where it
    ends) is merged into it, so ``repeat 3 { repeat 10 { quad: c } }`` is one train of 30 cycles.
    """

    def __init__(self, trains: list, train_uses: list, segments: list):
        self.trains = trains
        self.train_uses = train_uses
        self.segments = segments
        self._last: dict[int, int] = {}   # channel -> index of its latest train

    def emit(self, m: Measured, start: int, sets: tuple) -> None:
        prefix = "".join(f"set {i}/{n} · " for i, n in sets)
        if m.kind == "pause":
            self.segments.append(segment("pause", prefix + m.label, start, start + m.length, block=m.path))
        elif m.kind == "leaf":
            for tr, use in m.trains:
                self._add(_with(tr, start_us=start + tr.start_us), use)
            self.segments.append(segment("block", prefix + m.label, start, start + m.length, block=m.path))
        else:
            t = start
            for p in range(m.count):
                for child in m.children:
                    self.emit(child, t, sets + ((p + 1, m.count),))
                    t += child.length
            if m._tail:
                self.segments.append(segment("pause", prefix + f"rest of {m.label} (no whole pass fits)", t,
                                             start + m.length, block=m.path))

    def restart(self) -> None:
        self._last.clear()

    def _add(self, tr, use: int) -> None:
        i = self._last.get(tr.channel)
        if i is not None:
            prev = self.trains[i]
            if prev.end_us == tr.start_us and _pattern(prev) == _pattern(tr):
                self.trains[i] = _with(prev, cycles=prev.cycles + tr.cycles)
                return
        self._last[tr.channel] = len(self.trains)
        self.trains.append(tr)
        self.train_uses.append(use)


def lay_out(measured: Sequence[Measured]) -> tuple[list[Train], list[int], list[Segment]]:
    """The session's blocks, measured, laid out back to back from t = 0: (trains, for each train the index
    of the channel use it comes from, segments). Trains merge inside a set only: top-level blocks keep their
    own."""
    trains: list[Train] = []
    train_uses: list[int] = []
    segments: list[Segment] = []
    layout = Layout(trains, train_uses, segments)
    start = 0
    for m in measured:
        layout.restart()
        layout.emit(m, start, ())
        start += m.length
    return trains, train_uses, segments


# --- a resolved session -> Schedule ------------------------------------------------------------------
def to_schedule(resolved: ResolvedSession, *, warnings=(), sha256: str = "", title: str = "",
                source_name: str = "", profile: Optional[object] = None, source_text: str = ""):
    from .schedule import Schedule

    return Schedule(trains=resolved.trains, shapes=resolved.shapes, duration_us=resolved.duration_us,
                    channels=resolved.channels, segments=resolved.segments, warnings=tuple(warnings),
                    sha256=sha256, title=title, session=resolved.session, week=resolved.week,
                    params=dict(resolved.params), source_name=source_name, profile=profile,
                    source_text=source_text)
