"""Lowering, in one module: session blocks -> Trains and Segments -> Schedule (docs/language.md, normative).

The checker evaluates and checks each block of a week and measures it (:class:`Measured`: its length and,
for a block of lines, where each line places each channel: :class:`Placement`); this module does the rest.
:func:`lay_out` places the measured blocks back to back, unrolls sets, builds each placement's
:class:`Train` (:func:`make_train`) and merges trains that continue each other; :func:`to_schedule` turns
the resolved session into the Schedule the expanders and the runtime read.

A placement names the channel use it comes from, not its amplitude: the amplitudes are given to
:func:`lay_out` per use. Trains never merge across top-level blocks, so the checker keeps each block's
layout (:func:`lay_out_block`) and, in a later week where the block reads the same values, moves it to
where the block starts now with that week's amplitudes (:func:`place_block`): the same
trains merge as long as the same uses share an amplitude (:func:`amplitude_pattern`).

* ``repeat N``: every line runs its cycle N times back to back from its ``after`` offset; the block ends
  when its last line ends (``after + N·cycle``, rest included).
* ``for T``: every line runs ``floor((T - after) / cycle)`` whole cycles from its ``after`` offset; the
  block lasts exactly T. ``continuous`` is one cycle with ``on = cycle = T - after`` and no ramps.
* ``pause T``: T without pulses. Blocks follow each other; the session lasts the sum.
* A train's period is 10⁶/f µs and its amplitude A µA, both as reduced integer fractions.
"""
from __future__ import annotations

from ..valueclass import fields, replace
from operator import itemgetter
from fractions import Fraction

from ..formatting import exact_duration
from .. import twins
from ..pulses import PulseShape, Segment, Train
from .model import ChannelUse, ResolvedSession
from .record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Sequence


class Timing(Record):
    """A cycle in whole µs (``continuous`` is resolved per block, see :func:`for_cycles`)."""

    __slots__ = ("ramp_up_us", "hold_us", "ramp_down_us", "rest_us")
    ramp_up_us: int
    hold_us: int
    ramp_down_us: int
    rest_us: int

    def __init__(self, ramp_up_us: int, hold_us: int, ramp_down_us: int, rest_us: int) -> None:
        init(self, "ramp_up_us", ramp_up_us)
        init(self, "hold_us", hold_us)
        init(self, "ramp_down_us", ramp_down_us)
        init(self, "rest_us", rest_us)

    @property
    def on_us(self) -> int:
        return self.ramp_up_us + self.hold_us + self.ramp_down_us

    @property
    def cycle_us(self) -> int:
        return self.on_us + self.rest_us

    @property
    def continuous(self) -> bool:
        """On for the whole cycle, no ramps (how ``continuous`` is lowered)."""
        return self.rest_us == 0 and self.ramp_up_us == 0 and self.ramp_down_us == 0


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
    values = {"channel": channel, "start_us": start_us, "cycles": cycles, "cycle_us": on + timing.rest_us,
              "on_us": on, "ramp_up_us": timing.ramp_up_us, "ramp_down_us": timing.ramp_down_us,
              "period_num": period_num, "period_den": period_den, "amp_num": amp.numerator,
              "amp_den": amp.denominator, "shape": shape}
    if _SLOTTED:   # pragma: no cover - Train is a plain dataclass today
        return Train(**values)
    # what Train(**values) makes, without the frozen dataclass's field-by-field __init__ (all ints here)
    new = object.__new__(Train)
    object.__setattr__(new, "__dict__", values)
    return new


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
    """'15 min', '45 s', '1.5 s', '250 ms', '1 h', '30 µs' for segment labels (stimscript.formatting);
    memoised (every block measured in every week labels itself)."""
    text = _TEXTS.get(us)
    if text is None:
        if len(_TEXTS) >= 4096:
            _TEXTS.clear()
        text = _TEXTS[us] = exact_duration(us)
    return text


def repeat_label(count: int, cycles: list[str]) -> str:
    key = (count, *cycles)
    label = _TEXTS.get(key)
    if label is None:
        names = list(dict.fromkeys(cycles))
        label = f"repeat {count} × {', '.join(names)}" if names else f"repeat {count}"
        if len(_TEXTS) >= 4096:
            _TEXTS.clear()
        _TEXTS[key] = label
    return label


#: labels by µs (an int) or by (count, cycle names) (a tuple)
_TEXTS: dict = {}


def segment(kind: str, label: str, start: int, end: int, **extra) -> Segment:
    if _SEGMENT_SLOTTED:
        return Segment(label=label, start_us=start, end_us=end, kind=kind, extra=extra)
    # what Segment(...) makes, without the frozen dataclass's field-by-field __init__
    new = object.__new__(Segment)
    new.__dict__.update({"label": label, "start_us": start, "end_us": end, "kind": kind, "extra": extra})
    return new


_SEGMENT_SLOTTED = "__slots__" in Segment.__dict__


# --- blocks -> trains and segments ------------------------------------------------------------------
class Placement(tuple):
    """One channel of one line of a block of lines: ``cycles`` cycles of ``timing`` from ``after_us``
    (relative to the block start), at ``frequency_hz`` with pulse shape ``shape``; its amplitude is that of
    channel use ``use``. A tuple (the checker makes one per channel of every line it measures; a tuple is
    made in one step, a record field by field)."""

    __slots__ = ()

    def __new__(cls, channel: int, after_us: int, cycles: int, timing: Timing, frequency_hz: Fraction,
                shape: int, use: int) -> "Placement":
        return tuple.__new__(cls, (channel, after_us, cycles, timing, frequency_hz, shape, use))

    channel = property(itemgetter(0), doc="output number")
    after_us = property(itemgetter(1), doc="offset from the block start (µs)")
    cycles = property(itemgetter(2), doc="whole cycles")
    timing = property(itemgetter(3), doc="the cycle in µs")
    frequency_hz = property(itemgetter(4), doc="pulse frequency")
    shape = property(itemgetter(5), doc="index in the shape table")
    use = property(itemgetter(6), doc="index of the channel use whose amplitude it has")

    def __repr__(self) -> str:
        return "Placement(" + ", ".join(f"{n}={v!r}" for n, v in zip(_PLACEMENT_FIELDS, self)) + ")"


_PLACEMENT_FIELDS = ("channel", "after_us", "cycles", "timing", "frequency_hz", "shape", "use")


class Measured(Record):
    """One block of the session for one week: a pause, a leaf block (lines) or a set (blocks)."""

    __slots__ = ("kind", "length", "label", "path", "placements", "count", "pass_us", "children")
    kind: str                    # 'pause' | 'leaf' | 'set'
    length: int                  # µs
    label: str
    path: tuple                  # indices from the session down to this block
    placements: tuple            # leaf: Placement per channel of each line (with cycles > 0)
    count: int                   # set: passes
    pass_us: int                 # set: length of one pass
    children: tuple              # set: the blocks of one pass

    def __init__(self, kind: str, length: int, label: str = "", path: tuple = (), placements: tuple = (),
                 count: int = 0, pass_us: int = 0, children: tuple = ()) -> None:
        init(self, "kind", kind)
        init(self, "length", length)
        init(self, "label", label)
        init(self, "path", path)
        init(self, "placements", placements)
        init(self, "count", count)
        init(self, "pass_us", pass_us)
        init(self, "children", children)

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

    def __init__(self, amplitudes: Sequence[Fraction], trains: list, train_uses: list, segments: list):
        self.amplitudes = amplitudes
        self.trains = trains
        self.train_uses = train_uses
        self.segments = segments
        self._last: dict[int, int] = {}   # channel -> index of its latest train
        self._relative: dict[int, tuple[Placement, Train]] = {}   # id(placement) -> its train where first emitted

    def emit(self, m: Measured, start: int, sets: tuple) -> None:
        prefix = "".join(f"set {i}/{n} · " for i, n in sets)
        if m.kind == "pause":
            self.segments.append(segment("pause", prefix + m.label, start, start + m.length, block=m.path))
        elif m.kind == "leaf":
            relative = self._relative
            for p in m.placements:
                known = relative.get(id(p))
                if known is None:   # built once per layout (where first emitted), moved to each other place
                    tr = make_train(p.channel, start + p.after_us, p.cycles, p.timing, p.frequency_hz,
                                    self.amplitudes[p.use], p.shape)
                    relative[id(p)] = (p, tr)
                else:
                    tr = known[1]
                    if tr.start_us != start + p.after_us:
                        tr = _with(tr, start_us=start + p.after_us)
                self._add(tr, p.use)
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


def amplitude_pattern(amplitudes: Sequence[Fraction]) -> tuple[int, ...]:
    """Which channel uses share an amplitude (per use, the first use with its amplitude): the only thing
    about the amplitudes a layout's merges depend on."""
    first: dict = {}
    return tuple([first.setdefault((a.numerator, a.denominator), i) for i, a in enumerate(amplitudes)])


class Lowered(Record):
    """A session laid out: trains at absolute times, for each train the index of the channel use it comes
    from, segments; and the amplitudes (per use) the trains were given."""

    __slots__ = ("trains", "train_uses", "segments", "amplitudes")
    trains: tuple[Train, ...]
    train_uses: tuple[int, ...]
    segments: tuple[Segment, ...]
    amplitudes: tuple[Fraction, ...]

    def __init__(self, trains: tuple[Train, ...], train_uses: tuple[int, ...], segments: tuple[Segment, ...],
                 amplitudes: tuple[Fraction, ...]) -> None:
        init(self, "trains", trains)
        init(self, "train_uses", train_uses)
        init(self, "segments", segments)
        init(self, "amplitudes", amplitudes)


class BlockLayout(Record):
    """One top-level block laid out from ``start``: its trains (with the amplitudes they were made with), for
    each the channel use it comes from, and its segments. Trains never merge across top-level blocks, so the
    block's layout at another start is this one moved (:func:`place_block`); and with other amplitudes of
    the same :func:`amplitude_pattern` the same trains merge, so only their amplitudes change."""

    __slots__ = ("start", "trains", "train_uses", "segments")
    start: int
    trains: tuple[Train, ...]
    train_uses: tuple[int, ...]
    segments: tuple[Segment, ...]

    def __init__(self, start: int, trains: tuple[Train, ...], train_uses: tuple[int, ...],
                 segments: tuple[Segment, ...]) -> None:
        init(self, "start", start)
        init(self, "trains", trains)
        init(self, "train_uses", train_uses)
        init(self, "segments", segments)


def lay_out_block(m: Measured, start: int, amplitudes: Sequence[Fraction]) -> BlockLayout:
    """Top-level block ``m`` laid out from ``start`` (what :func:`lay_out` emits for it there)."""
    if m.kind == "leaf":
        placements = m.placements
        if len({p[0] for p in placements}) == len(placements):
            # one train per placement: trains merge only on one channel, and each channel is here once
            return BlockLayout(start, _leaf_trains(placements, start, amplitudes, _PERIODS, _period),
                               tuple([p[6] for p in placements]),
                               (segment("block", m.label, start, start + m.length, block=m.path),))
    trains: list[Train] = []
    train_uses: list[int] = []
    segments: list[Segment] = []
    Layout(amplitudes, trains, train_uses, segments).emit(m, start, ())
    return BlockLayout(start, tuple(trains), tuple(train_uses), tuple(segments))


def place_block(block: BlockLayout, start: int, amp_nd: Sequence[tuple[int, int]], trains: list, train_uses: list,
                segments: list) -> None:
    """Append ``block`` moved to ``start`` with ``amp_nd[u]`` (numerator, denominator) the amplitude of the
    trains of use ``u`` (the amplitudes' pattern over the block's uses must be the one it was laid out
    with); the block's own trains and segments where nothing changed."""
    shift = start - block.start
    if _SLOTTED:   # pragma: no cover - Train is a plain dataclass today
        for tr, use in zip(block.trains, block.train_uses):
            num, den = amp_nd[use]
            if shift or num != tr.amp_num or den != tr.amp_den:
                tr = replace(tr, start_us=tr.start_us + shift, amp_num=num, amp_den=den)
            trains.append(tr)
    else:
        _place_trains(block.trains, block.train_uses, shift, amp_nd, trains)
    train_uses.extend(block.train_uses)
    if not shift:
        segments.extend(block.segments)
        return
    _move_segments(block.segments, shift, segments)


def _moved(sg: Segment, shift: int) -> Segment:
    """A segment ``shift`` µs later (a copy without re-running the dataclass __init__)."""
    if _SEGMENT_SLOTTED:
        return replace(sg, start_us=sg.start_us + shift, end_us=sg.end_us + shift)
    d = sg.__dict__.copy()
    d["start_us"] += shift
    d["end_us"] += shift
    new = object.__new__(Segment)
    object.__setattr__(new, "__dict__", d)
    return new


def lay_out(measured: Sequence[Measured], amplitudes: Sequence[Fraction]) -> Lowered:
    """The session's blocks, measured, laid out back to back from t = 0, with ``amplitudes[u]`` the
    amplitude (µA) of channel use ``u``. Trains merge inside a set only: top-level blocks keep their own."""
    trains: list[Train] = []
    train_uses: list[int] = []
    segments: list[Segment] = []
    layout = Layout(amplitudes, trains, train_uses, segments)
    start = 0
    for m in measured:
        layout.restart()
        layout.emit(m, start, ())
        start += m.length
    return Lowered(tuple(trains), tuple(train_uses), tuple(segments), tuple(amplitudes))


# --- a resolved session -> Schedule ------------------------------------------------------------------
def to_schedule(resolved: ResolvedSession, *, warnings=(), sha256: str = "", title: str = "",
                source_name: str = "", profile: Optional[object] = None, source_text: str = ""):
    from .schedule import Schedule

    return Schedule(trains=resolved.trains, shapes=resolved.shapes, duration_us=resolved.duration_us,
                    channels=resolved.channels, segments=resolved.segments, warnings=tuple(warnings),
                    sha256=sha256, title=title, session=resolved.session, week=resolved.week,
                    params=dict(resolved.params), source_name=source_name, profile=profile,
                    source_text=source_text)


# --- the loops a week spends its time in, and their compiled twin ----------------------------------------
def place_trains(block_trains: tuple, block_uses: tuple, shift: int, amp_nd: Sequence[tuple[int, int]],
                 out: list) -> None:
    """Append each train of ``block_trains`` to ``out``, ``shift`` µs later and with ``amp_nd[u]`` (numerator,
    denominator) the amplitude of a train of use ``u``; the train itself where nothing changes, else a copy
    made without re-running the frozen dataclass's __init__ (the values are checked integers)."""
    append = out.append
    new_object = object.__new__
    set_dict = object.__setattr__
    for tr, use in zip(block_trains, block_uses):
        num, den = amp_nd[use]
        d = tr.__dict__
        if shift or num != d["amp_num"] or den != d["amp_den"]:
            d = d.copy()
            d["start_us"] += shift
            d["amp_num"] = num
            d["amp_den"] = den
            tr = new_object(Train)
            set_dict(tr, "__dict__", d)
        append(tr)


def move_segments(segments: tuple, shift: int, out: list) -> None:
    """Append each of ``segments`` to ``out``, ``shift`` µs later (:func:`_moved`)."""
    append = out.append
    for sg in segments:
        append(_moved(sg, shift))


def replay_uses(rows: tuple, chans: dict, src_vals: dict, uses: list, amp_nd: list) -> None:
    """Append a replayed block's channel uses to ``uses`` (the checker's ``_BlockMemo``): per row (the use as
    measured, its fields, the key of its amplitude's source in ``src_vals``, the channel whose shape it has or
    None), the use with this week's amplitude (``src_vals[src]``: (µA, span, (num, den)), or None for a `with
    amplitude` that reported, which keeps the measured one) and shape (``chans[channel].shape``), and its
    amplitude as (numerator, denominator) to ``amp_nd``. A use whose values are the same objects is taken as
    it is, else copied without re-running the frozen dataclass's __init__."""
    append = uses.append
    add_nd = amp_nd.append
    new_object = object.__new__
    set_dict = object.__setattr__
    for use, d, src, sc in rows:
        shape = chans[sc].shape if sc is not None else d["shape"]
        sv = src_vals[src]
        spans = d["spans"]
        if sv is None:   # a `with amplitude` that reported: the key held what it reads, so as measured
            amp, span = d["amplitude_ua"], spans.get("amplitude")
            add_nd((amp.numerator, amp.denominator))
        else:
            amp, span = sv[0], sv[1]
            add_nd(sv[2])
        if d["amplitude_ua"] is not amp or d["shape"] is not shape or spans.get("amplitude") is not span:
            nd = d.copy()
            nd["amplitude_ua"] = amp
            nd["shape"] = shape
            if spans.get("amplitude") is not span:
                nd["spans"] = {**spans, "amplitude": span}
            use = new_object(ChannelUse)
            set_dict(use, "__dict__", nd)
        append(use)


def leaf_trains(placements: tuple, start: int, amplitudes: Sequence, periods: dict, period_of) -> tuple:
    """The train of each placement of a block of lines laid out from ``start`` (:func:`make_train`), with
    ``amplitudes[use]`` its amplitude; ``periods`` and ``period_of`` are :func:`_period`'s memo and itself
    (the compiled twin looks a frequency up in the memo before it calls the function)."""
    return tuple([make_train(p[0], start + p[1], p[2], p[3], p[4], amplitudes[p[6]], p[5]) for p in placements])


_NO_OVERRIDES = (None, None, None, None)


def leaf_lines(lines: tuple, ctx, cycle_nodes: dict, block_index: int, count: Optional[int], length: Optional[int],
               overrides: Callable, problem: Callable) -> tuple[int, list, list]:
    """Where each line of a block of lines places each channel (the checker's ``Analysis._leaf``): ``repeat
    count`` (``length`` None) or ``for length``. Reads the checker's ``ctx`` (this week's evaluator, cycle
    timings, channel values, shape table and the `with amplitude` values it knows) and adds to it: per channel
    of each line that runs, its :class:`~stimscript.compiler.model.ChannelUse`, where its amplitude comes from
    (the channel's name or the line's `with amplitude`) and where its shape comes from with the shape's index.
    ``overrides(line, ev, amp_known)`` gives a line's `with` values (None: one failed), ``problem(sink, code,
    line, after, length, timing)`` reports E410/E409/W401/W402. Returns the end of the last line of a
    ``repeat`` block, the lines' cycles and the :class:`Placement` of every channel with cycles to run."""
    ev, timings, chans, table, sink = ctx.ev, ctx.timings, ctx.chans, ctx.table, ctx.sink
    uses = ctx.uses
    add_use, add_source, add_shape_source, add_shape = uses.append, ctx.sources.append, ctx.shapes.append, table.add
    new_object, set_dict, new_placement = object.__new__, object.__setattr__, tuple.__new__
    amp_known = ctx.amp_known
    end = 0
    cycle_names: list[str] = []
    placements: list[Placement] = []
    for line in lines:
        cyc = line.cycle.name
        after = ev.time_us(line.after, "the `after` offset") if line.after is not None else 0
        if after is None:
            continue
        cycle_names.append(cyc)
        found: Optional[Timing] = None   # None: `continuous` (its timing depends on the block)
        if cyc == "continuous":
            if length is None:
                continue
        else:
            found = timings.get(cyc)
            if found is None:
                continue
        if length is not None:
            if after >= length:
                problem(sink, "E410", line, after, length, None)
                continue
            if found is None:
                timing = Timing(0, length - after, 0, 0)
                cycles = 1
            elif found.cycle_us == 0:
                problem(sink, "E409", line, after, length, found)
                continue
            else:
                timing = found
                cycles = for_cycles(length, after, timing)
                if cycles == 0:
                    problem(sink, "W401", line, after, length, timing)
        elif found is None or count is None:   # pragma: no cover - `repeat` has a count, no `continuous`
            continue
        else:
            timing, cycles = found, count
            if timing.cycle_us == 0:
                problem(sink, "W402", line, after, length, timing)
            end = max(end, after + count * timing.cycle_us)
        ov = overrides(line, ev, amp_known) if line.overrides else _NO_OVERRIDES
        if ov is None:
            continue
        ov_f, ov_a, ov_p, amp_ov = ov
        cdecl = cycle_nodes.get(cyc)
        on_us = timing.on_us
        ramp_up_us = timing.ramp_up_us
        line_span, cycle_ref = line.span, line.cycle.span
        cycle_span = cdecl.span if cdecl is not None else cycle_ref
        after_span = line.after.span if line.after is not None else None
        for ch in line.channels:
            name = ch.name
            cv = chans.get(name)
            if cv is None:
                continue
            freq = ov_f[0] if ov_f else cv.frequency
            amp = ov_a[0] if ov_a else cv.amplitude
            shape = ov_p[0] if ov_p else cv.shape
            idx = add_shape(shape)
            decl = cv.decl
            number = decl.node.number
            spans = {"channel": decl.node.span, "amplitude": ov_a[1] if ov_a else cv.amp_span,
                     "frequency": ov_f[1] if ov_f else cv.freq_span,
                     "pulse": ov_p[1] if ov_p else (decl.pulse.span if decl.pulse is not None else None),
                     "electrodes": decl.pair.span if decl.pair is not None else None,
                     "line": line_span, "cycle": cycle_span, "cycle_ref": cycle_ref, "after": after_span}
            # ``channel_use(...)``, inline: one per channel of each line measured
            use = new_object(ChannelUse)
            set_dict(use, "__dict__", {"channel": name, "number": number, "amplitude_ua": amp,
                                       "frequency_hz": freq, "shape": shape, "electrodes": cv.electrodes,
                                       "ramp_up_us": ramp_up_us, "on_us": on_us, "block": block_index,
                                       "cycle": cyc, "spans": spans})
            add_use(use)
            add_source(amp_ov if ov_a else name)   # where its amplitude comes from
            add_shape_source((None if ov_p else name, idx))   # where its shape comes from, its index
            if cycles > 0:
                placements.append(new_placement(Placement, (number, after, cycles, timing, freq, idx,
                                                            len(uses) - 1)))
    return end, cycle_names, placements


# The compiled twin (ext/_resolve.pyx) when built, else the loops above (the reference).
# (stimscript.twins reads the switches that force the reference or require the twin).
_place_trains = place_trains
_replay_uses = replay_uses
_leaf_trains = leaf_trains
_leaf_lines = leaf_lines
_move_segments = move_segments
USING_EXTENSION = False
if twins.wanted():
    try:
        from ..ext import _resolve as _twin

        _place_trains = _twin.place_trains
        _replay_uses = _twin.replay_uses
        _leaf_trains = _twin.leaf_trains
        _leaf_lines = _twin.leaf_lines
        if not _SEGMENT_SLOTTED:   # the twin copies a segment's __dict__
            _move_segments = _twin.move_segments
        USING_EXTENSION = True
    except ImportError as err:
        twins.missing(err)
