"""What a channel actually delivers: exact spacing, worst 1-second load and onsets, measured on its pulses.

The safety rules of docs/safety.md are decided on the pulses the expanders emit (``Schedule.pulses``), not on
declared parameters: a cycle shorter than one period restarts its train every cycle, two lines on one channel
offset by ``after`` bunch their pulses, a ramp shorter than one period starts at full output. This module
measures, per channel and exactly (integer µs and µA, rational phase weights):

* ``min_spacing``: the smallest time between consecutive pulse onsets of the channel, and where it comes from
  (consecutive slots of one cycle, the last slot of a cycle and the first of the next, or two lines);
* ``window``: the largest ``Σ I²·Σ(rᵢ²·dᵢ)`` over pulses with onsets in any window ``[t, t + 1 s)`` (µA²·µs),
  from which power and rms current density follow (docs/safety.md);
* ``onsets``: the amplitude of the first delivered pulse of each train (a cycle's output start).

It works on trains analytically where it can and expands only where it must:

* each cycle of a train emits the slots whose offsets lie in one interval ``[lo, hi)`` (the trapezoid's
  zero-amplitude slots are at its two ends), so counts, first/last onsets, spacings and peak amplitudes are
  computed from a train's numbers;
* an upper bound of the worst window (pulses per second per train × the largest pulse weight, summed over the
  trains a 1-second window can touch) settles every channel far from a limit without expanding anything;
* otherwise pulses are expanded with the schedule expander, but only where windows can differ: trains whose
  busy spans are more than 1 s apart never share a window; in a group of trains with one cycle length, a window
  starting one cycle later is dominated by the window one cycle earlier (every pulse in it has a twin one cycle
  earlier, weights are non-negative), so only windows starting before the latest start plus one cycle are
  examined; inside a long hold the slot pattern repeats every ``period_num`` µs at one amplitude, so the hold's
  middle is skipped. Whatever must still be expanded is counted first and refused above
  :data:`EXPANSION_BUDGET` (never a long silent computation).
"""
from __future__ import annotations

import heapq
import itertools
import math
import operator
from ..valueclass import dataclass, field
from fractions import Fraction
from types import ModuleType

from ..rounding import round_div
from .. import twins
from . import energy as E
from ..pulses import PulseShape, Train

TYPE_CHECKING = False
if TYPE_CHECKING:  # numpy is imported where used, to keep `check` start-up light
    from typing import Optional, Sequence
    import numpy as np

#: the window of the power and rms rules (µs)
WINDOW_US = 10**6

#: the most pulses the exact pass expands for one channel of one session; above it the check refuses (S020)
EXPANSION_BUDGET = 4_000_000


def first_slot(num: int, den: int, x: int) -> int:
    """Smallest k >= 0 with round(k·num/den) >= x (round half to even), in O(1).

    round(y) >= x  <=>  y > x - 1/2, or y = x - 1/2 exactly and x is even (the tie goes to the even x).
    """
    if x <= 0:
        return 0
    lhs = (2 * x - 1) * den          # compare 2·k·num with (2x - 1)·den
    k0 = lhs // (2 * num)
    if 2 * k0 * num == lhs and x % 2 == 0:
        return k0
    return k0 + 1


def slot_amplitude(tr: Train, off: int) -> int:
    """round(A·e(off)) µA, exactly as the expanders compute it."""
    up, down, on = tr.ramp_up_us, tr.ramp_down_us, tr.on_us
    if up > 0 and off < up:
        return round_div(tr.amp_num * off, tr.amp_den * up)
    if down > 0 and off >= on - down:
        return round_div(tr.amp_num * (on - off), tr.amp_den * down)
    return round_div(tr.amp_num, tr.amp_den)


@dataclass(slots=True)
class TrainFacts:
    """One train's delivered pulses, from its numbers. Slots ``k_lo <= k < k_hi`` of every cycle are emitted."""

    index: int
    train: Train
    k_lo: int = 0
    k_hi: int = 0
    first_off: int = 0
    last_off: int = 0
    peak_ua: int = 0
    first_ua: int = 0
    weight: Fraction = Fraction(0)     # Σ rᵢ²·dᵢ of the shape (µs)
    in_cycle_spacing: Optional[int] = None   # smallest spacing of consecutive slots of one cycle
    cross_cycle_spacing: Optional[int] = None  # last slot of a cycle -> first slot of the next
    wbound: float = 0.0                 # most Σ I²·w this train alone puts in one 1-second window (bound)
    ekey: Optional[int] = field(default=None, repr=False, compare=False)  # emitted_id, once computed

    @property
    def per_cycle(self) -> int:
        return max(0, self.k_hi - self.k_lo)

    @property
    def total(self) -> int:
        return self.per_cycle * self.train.cycles

    @property
    def first(self) -> int:
        return self.train.start_us + self.first_off

    @property
    def last(self) -> int:
        return self.train.start_us + (self.train.cycles - 1) * self.train.cycle_us + self.last_off

    def min_spacing(self) -> Optional[int]:
        vals = [v for v in (self.in_cycle_spacing, self.cross_cycle_spacing) if v is not None]
        return min(vals) if vals else None


#: the amplitude-free part of a train's facts, keyed on its timing and emitted slot range (see train_facts)
_TIMING_MEMO: dict = {}
_MEMO_MAX = 8192
_memo = {"enabled": True}


def set_memo_enabled(enabled: bool) -> bool:
    """Turn the train-facts and interleaved-group memos on or off (results are identical); returns the previous
    setting."""
    before = _memo["enabled"]
    _memo["enabled"] = bool(enabled)
    clear_memo()
    return before


def memo_enabled() -> bool:
    return _memo["enabled"]


def train_facts(index: int, tr: Train, shapes: Sequence[PulseShape]) -> TrainFacts:
    """The analytic facts of one train.

    Memoised in two parts: what depends only on the train's timing and on the range ``[k_lo, k_hi)`` of slots a
    cycle emits (offsets, spacings, pulses per window, where the peak can be) is shared by every train with the
    same numbers whatever its amplitude, so the weeks of a plan (same lines, other amplitudes) reuse it; the
    amplitude-dependent part (the slot range itself, first and peak amplitude, the window bound) is a few integer
    operations per train."""
    shape = shapes[tr.shape] if 0 <= tr.shape < len(shapes) else None
    weight = E.shape_facts(shape).sq_sum_us if shape is not None else _ZERO
    if not _memo["enabled"]:
        return TrainFacts(index, tr, *_train_facts(tr, weight))
    return _facts(index, tr, weight, weight.numerator, weight.denominator)


def session_facts(trains: Sequence[Train], shapes: Sequence[PulseShape]) -> list[TrainFacts]:
    """:func:`train_facts` of every train, by index (each shape's weight looked up once)."""
    if not _memo["enabled"]:
        return [train_facts(i, tr, shapes) for i, tr in enumerate(trains)]
    weights = []
    for shape in shapes:
        w = E.shape_facts(shape).sq_sum_us
        weights.append((w, w.numerator, w.denominator))
    n = len(shapes)
    if _twin is not None:
        return _twin.session_facts(trains, weights, n, _TIMING_MEMO, _MEMO_MAX, TrainFacts, _timing_facts, _facts,
                                   _ZERO)
    zero = (_ZERO, 0, 1)
    out = []
    for i, tr in enumerate(trains):
        s = tr.shape
        out.append(_facts(i, tr, *(weights[s] if 0 <= s < n else zero)))
    return out


def _facts(index: int, tr: Train, weight: Fraction, wn: int, wd: int) -> TrainFacts:
    """train_facts with the memo on; ``weight`` = wn / wd."""
    num, den, on = tr.period_num, tr.period_den, tr.on_us
    an, ad = tr.amp_num, tr.amp_den
    if an < 0:
        an = -an
    if ad < 0:
        ad = -ad
    if tr.cycles <= 0 or on <= 0 or num <= 0 or den <= 0 or an == 0 or ad == 0 or 2 * an <= ad:
        return TrainFacts(index, tr, weight=weight)
    up, down = tr.ramp_up_us, tr.ramp_down_us
    lo = (ad * up) // (2 * an) + 1 if up > 0 else 0
    hi = on - (ad * down) // (2 * an) if down > 0 else on
    k_lo, k_hi = first_slot(num, den, lo), first_slot(num, den, hi)
    if k_hi <= k_lo:
        return TrainFacts(index, tr, weight=weight)
    cycle = tr.cycle_us
    cyc = tr.cycles if cycle <= 0 else min(tr.cycles, WINDOW_US // cycle + 3)
    key = (cycle, on, up, down, num, den, cyc, tr.cycles >= 2, k_lo, k_hi)
    tm = _TIMING_MEMO.get(key)
    if tm is None:
        tm = _timing_facts(tr, k_lo, k_hi)
        if len(_TIMING_MEMO) >= _MEMO_MAX:
            _TIMING_MEMO.clear()
        _TIMING_MEMO[key] = tm
    first_off, last_off, in_cycle, cross, count, hold_peak, ramp_offs = tm
    first_ua = _amp(an, ad, up, down, on, first_off)
    if hold_peak:
        peak = _round_div(an, ad)   # a slot on the plateau: the ramps' slots are not higher
    else:
        peak = max(_amp(an, ad, up, down, on, off) for off in ramp_offs)
    # float(peak²·weight) exactly as float(Fraction): int / int is correctly rounded
    wbound = (peak * peak * wn / wd) * count if count else 0.0
    return TrainFacts(index, tr, k_lo, k_hi, first_off, last_off, peak, first_ua, weight, in_cycle, cross, wbound)


_ZERO = Fraction(0)


def _round_div(n: int, d: int) -> int:
    """round(n / d), half to even, for d > 0 (rounding.round_div inlined for the hot path)."""
    q, r = divmod(n, d)
    r2 = 2 * r
    if r2 > d or (r2 == d and q & 1):
        q += 1
    return q


def _amp(an: int, ad: int, up: int, down: int, on: int, off: int) -> int:
    """slot_amplitude of a train with amplitude an/ad (both > 0) at ``off``."""
    if up > 0 and off < up:
        return _round_div(an * off, ad * up)
    if down > 0 and off >= on - down:
        return _round_div(an * (on - off), ad * down)
    return _round_div(an, ad)


def _timing_facts(tr: Train, k_lo: int, k_hi: int) -> tuple:
    """The amplitude-free facts of a train emitting slots ``k_lo <= k < k_hi`` of every cycle (k_hi > k_lo): first
    and last offsets, the two spacings, the most pulses of it in one window (:func:`_train_window_count`), and
    where its peak can be (a plateau slot, or the ramp slots next to the plateau)."""
    num, den, on = tr.period_num, tr.period_den, tr.on_us
    up, down = tr.ramp_up_us, tr.ramp_down_us
    first_off = round_div(k_lo * num, den)
    last_off = round_div((k_hi - 1) * num, den)
    n = k_hi - k_lo
    in_cycle = _in_cycle_spacing(num, den, k_lo, n, first_off)
    cycles, cycle = tr.cycles, tr.cycle_us
    cross = cycle - last_off + first_off if cycles >= 2 else None
    # _train_window_count, from the same numbers
    total = n * cycles
    by_cycles = n * min(cycles, WINDOW_US // cycle + 2) if cycle > 0 else total
    ms = in_cycle if cross is None else cross if in_cycle is None else min(in_cycle, cross)
    by_spacing = 1 + (WINDOW_US - 1) // ms if ms else 1
    count = min(total, by_cycles, by_spacing)
    cands = {k_lo, k_hi - 1}
    for edge in (up, on - down):
        k = first_slot(num, den, edge)
        cands.update((k - 1, k))
    offs = sorted(round_div(k * num, den) for k in cands if k_lo <= k < k_hi)
    hold = any(not (up > 0 and off < up) and not (down > 0 and off >= on - down) for off in offs)
    return (first_off, last_off, in_cycle, cross, count, hold, tuple(offs))


def _in_cycle_spacing(num: int, den: int, k_lo: int, n: int, first_off: int) -> Optional[int]:
    """The smallest spacing of consecutive emitted slots of one cycle (``n`` slots from ``k_lo``), None below
    two slots."""
    if n < 2:
        return None
    if den == 1:
        return num
    if n - 1 >= den:
        return num // den
    # fewer slots than one repetition of the rounding pattern: measure them (bounded)
    steps = min(n - 1, 4096)
    prev = first_off
    best = 1 << 62            # steps >= 1: replaced by the first measured spacing
    for k in range(k_lo + 1, k_lo + 1 + steps):
        cur = round_div(k * num, den)
        if cur - prev < best:
            best = cur - prev
        prev = cur
    return best if steps == n - 1 else min(best, num // den)


def clear_memo() -> None:
    _TIMING_MEMO.clear()
    _GROUP_MEMO.clear()


def emitted_key(tf: TrainFacts) -> tuple:
    """What fixes the onsets a train emits (every ``start + c·cycle + round(k·P)``, ``c < cycles``,
    ``k_lo <= k < k_hi``): two trains with equal keys deliver pulses at the same times, whatever their
    amplitudes. Where the two ramps overlap (never in a lowered cycle) the amplitude is part of the key."""
    tr = tf.train
    key: tuple = (tr.start_us, tr.cycles, tr.cycle_us, tr.on_us, tr.ramp_up_us, tr.ramp_down_us, tr.period_num,
                  tr.period_den, tf.k_lo, tf.k_hi)
    if tr.ramp_up_us + tr.ramp_down_us > tr.on_us:
        key += (tr.amp_num, tr.amp_den)
    return key


def emitted_id(tf: TrainFacts) -> int:
    """A number standing for :func:`emitted_key` (equal keys, equal numbers; never reused for another key,
    even after :func:`clear_memo`), so that memo keys of many trains hash and compare as small ints."""
    eid = tf.ekey
    if eid is None:
        key = emitted_key(tf)
        eid = _EMITTED_IDS.get(key)
        if eid is None:
            if len(_EMITTED_IDS) >= 1 << 16:
                _EMITTED_IDS.clear()
            eid = _EMITTED_IDS[key] = next(_NEXT_ID)
        tf.ekey = eid
    return eid


_EMITTED_IDS: dict = {}
_NEXT_ID = itertools.count()


def _train_facts(tr: Train, weight: Fraction) -> tuple:
    tf = TrainFacts(0, tr)
    tf.weight = weight
    _fill(tf)
    return (tf.k_lo, tf.k_hi, tf.first_off, tf.last_off, tf.peak_ua, tf.first_ua, tf.weight, tf.in_cycle_spacing,
            tf.cross_cycle_spacing, tf.wbound)


def _fill(tf: TrainFacts) -> None:
    tr = tf.train
    num, den, on = tr.period_num, tr.period_den, tr.on_us
    an, ad = abs(tr.amp_num), abs(tr.amp_den)
    if tr.cycles <= 0 or on <= 0 or num <= 0 or den <= 0 or an == 0 or ad == 0 or 2 * an <= ad:
        return
    if tr.amp_num < 0:  # a negative amplitude is an error elsewhere; measure its magnitude
        tr_abs = Train(tr.channel, tr.start_us, tr.cycles, tr.cycle_us, tr.on_us, tr.ramp_up_us, tr.ramp_down_us,
                       num, den, an, ad, tr.shape)
    else:
        tr_abs = tr
    up, down = tr.ramp_up_us, tr.ramp_down_us
    lo = (ad * up) // (2 * an) + 1 if up > 0 else 0
    hi = on - (ad * down) // (2 * an) if down > 0 else on
    k_lo, k_hi = first_slot(num, den, lo), first_slot(num, den, hi)
    if k_hi <= k_lo:
        return
    tf.k_lo, tf.k_hi = k_lo, k_hi
    tf.first_off = round_div(k_lo * num, den)
    tf.last_off = round_div((k_hi - 1) * num, den)
    tf.first_ua = slot_amplitude(tr_abs, tf.first_off)
    # the trapezoid is highest next to its plateau: the slots around `up` and `on - down`
    cands = {k_lo, k_hi - 1}
    for edge in (up, on - down):
        k = first_slot(num, den, edge)
        cands.update((k - 1, k))
    tf.peak_ua = max(slot_amplitude(tr_abs, round_div(k * num, den)) for k in cands if k_lo <= k < k_hi)
    _spacings(tf)
    tf.wbound = float(tf.peak_ua * tf.peak_ua * tf.weight) * _train_window_count(tf)


def _spacings(tf: TrainFacts) -> None:
    """The in-cycle and cross-cycle spacings of a train whose slot range, first and last offsets are set."""
    tr = tf.train
    tf.in_cycle_spacing = _in_cycle_spacing(tr.period_num, tr.period_den, tf.k_lo, tf.k_hi - tf.k_lo, tf.first_off)
    if tr.cycles >= 2:
        tf.cross_cycle_spacing = tr.cycle_us - tf.last_off + tf.first_off


@dataclass
class Spacing:
    """The smallest onset-to-onset spacing of a channel and its cause."""

    us: int
    t_first: int
    t_second: int
    kind: str           # "slots" (one cycle) | "cycle" (cycle restart) | "lines" (two trains)
    train_first: int    # train indices
    train_second: int


@dataclass
class Window:
    """The worst 1-second window of a channel: Σ amplitude²·Σ(rᵢ²·dᵢ) in µA²·µs over onsets in [t, t+1 s)."""

    sum_ua2us: Fraction
    t_start: int
    pulses: int
    trains: dict = field(default_factory=dict)  # train index -> pulses of it in the window
    exact: bool = True


@dataclass
class ChannelDelivery:
    channel: int
    facts: list[TrainFacts]
    spacing: Optional[Spacing] = None
    window: Optional[Window] = None
    expanded: int = 0           # pulses expanded by the exact pass
    over_budget: int = 0        # > 0: pulses the exact pass would have needed (refused)


class BudgetExceeded(Exception):
    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


def _train_window_count(tf: TrainFacts) -> int:
    """At most this many pulses of the train have onsets in any window of 1 s."""
    n = tf.per_cycle
    if n == 0:
        return 0
    tr = tf.train
    by_cycles = n * min(tr.cycles, WINDOW_US // tr.cycle_us + 2) if tr.cycle_us > 0 else tf.total
    ms = tf.min_spacing()
    by_spacing = 1 + (WINDOW_US - 1) // ms if ms else 1
    return min(tf.total, by_cycles, by_spacing)


def onset_order(facts: Sequence[TrainFacts]) -> list[tuple[int, int, int, TrainFacts]]:
    """(first onset, position in ``facts``, last onset, facts) of every train that emits, sorted by first onset
    and position: the one sort of a channel's trains that its passes (:func:`window_bound`,
    :func:`channel_spacing`, delivered_rules' onsets) share. For ``facts`` in train-index order (a channel's
    trains as :func:`channel_facts` lists them) positions order as the trains' indices do."""
    items = []
    pos = -1
    for tf in facts:
        pos += 1
        if tf.k_hi <= tf.k_lo:
            continue
        tr = tf.train
        start = tr.start_us
        items.append((start + tf.first_off, pos, start + (tr.cycles - 1) * tr.cycle_us + tf.last_off, tf))
    items.sort()       # (first onset, position) is unique: the facts themselves are never compared
    return items


_first_two = operator.itemgetter(0, 1)


def window_bound(facts: Sequence[TrainFacts], items: Optional[list] = None) -> float:
    """An upper bound of the worst window's Σ I²·w (µA²·µs): over every moment, the trains a 1-second window can
    touch, each at its most pulses per second and its peak weight. A float with a relative margin of 10⁻⁹ above
    the exact bound (it only decides whether the exact pass runs).

    A window ``[t, t + 1 s)`` touches a train iff ``first - 1 s < t <= last``: one sweep over the trains in
    onset order (``items``: :func:`onset_order` of ``facts``, the channel's one sort) with a heap of the running
    trains' ends, O(n log k) for k trains running at once. The events are taken in the order of (time, an end
    before a start, the trains' positions among equal times), so the float sum is accumulated in the same order
    every time."""
    if len(facts) == 1:
        return facts[0].wbound * (1 + 1e-9)
    if items is None:
        items = onset_order(facts)
    ends: list[tuple[int, int, float]] = []   # heap of (the time the train stops touching windows, position, w)
    push, pop = heapq.heappush, heapq.heappop
    best = cur = 0.0
    for first, pos, last, tf in items:
        t = first - WINDOW_US + 1
        while ends and ends[0][0] <= t:
            cur += -pop(ends)[2]   # x + (-w) is exactly x - w
            if cur > best:
                best = cur
        w = tf.wbound
        cur += w
        if cur > best:
            best = cur
        push(ends, (last + 1, pos, w))
    while ends:
        cur += -pop(ends)[2]
        if cur > best:
            best = cur
    return best * (1 + 1e-9) + 1e-6


def window_bound_below(facts: Sequence[TrainFacts], threshold) -> bool:
    """True when every train of the channel at once stays at or below ``threshold``, so that
    ``window_bound(facts) <= threshold`` without sorting anything: the sum of all the trains' bounds is at
    least the bound at any moment (the 10⁻⁶ relative margin covers the float sums' rounding)."""
    total = 0.0
    for tf in facts:
        total += tf.wbound
    return total * (1 + 1e-6) + 1.0 <= threshold


def _groups(facts: Sequence[TrainFacts], gap: int) -> list[list[TrainFacts]]:
    """Trains whose busy spans [first, last] come closer than ``gap`` µs, chained (sorted by first onset)."""
    # (first onset, index) is unique per train: the facts themselves are never compared
    items = sorted([(tf.train.start_us + tf.first_off, tf.index, tf) for tf in facts if tf.k_hi > tf.k_lo])
    out: list[list[TrainFacts]] = []
    end = 0                   # the busy end of the last group (read only once a group exists)
    for first, _, tf in items:
        last = tf.last
        if out and first - end < gap:
            out[-1].append(tf)
            if last > end:
                end = last
        else:
            out.append([tf])
            end = last
    return out


def _examined(group: list[TrainFacts]) -> list[tuple[int, int]]:
    """Window starts [a, b) that represent every window of the group (see the module docstring)."""
    first = min(tf.first for tf in group)
    last = max(tf.last for tf in group)
    cycles = {tf.train.cycle_us for tf in group}
    if len(cycles) == 1 and all(tf.train.cycles >= 1 for tf in group):
        c = cycles.pop()
        end = min(last + 1, max(tf.train.start_us for tf in group) + c)
    else:
        end = last + 1
    ranges = [(first, end)]
    if len(group) == 1:
        tf = group[0]
        tr = tf.train
        # inside the hold of one cycle the slots repeat every period_num µs at one amplitude
        hold_a = tr.start_us + tr.ramp_up_us
        hold_b = tr.start_us + tr.on_us - tr.ramp_down_us
        skip_a = hold_a + tr.period_num
        skip_b = hold_b - WINDOW_US - tr.period_num
        if skip_b - skip_a > 2 * tr.period_num and skip_a < end:
            ranges = [(first, skip_a), (skip_b, end)]
    return [(a, b) for a, b in ranges if b > a]


def _density(tf: TrainFacts) -> Fraction:
    """Pulses per µs of a train while it runs (an estimate for the budget)."""
    if tf.per_cycle == 0:
        return Fraction(0)
    if tf.train.cycle_us > 0:
        return Fraction(tf.per_cycle, tf.train.cycle_us)
    return Fraction(tf.total, max(1, tf.last - tf.first + 1))


def _expand_group(group: list[TrainFacts], a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Pulses of the group's trains with a <= t < b, in time order, and the train index of each row."""
    import numpy as np
    from . import expander
    parts, owners = [], []
    for tf in sorted(group, key=lambda tf: tf.index):
        if tf.last < a or tf.first >= b:
            continue
        rows = expander.expand([tf.train], a, b)
        parts.append(rows)
        owners.append(np.full(len(rows), tf.index, dtype=np.int64))
    if not parts:
        return expander.expand([], a, b), np.zeros(0, dtype=np.int64)
    rows = np.concatenate(parts)
    owner = np.concatenate(owners)
    order = np.argsort(rows["t_us"], kind="stable")
    return rows[order], owner[order]


def measure_channel(channel: int, facts: list[TrainFacts], *, need_window: bool, need_spacing: bool,
                    budget: int = EXPANSION_BUDGET) -> ChannelDelivery:
    """The exact pass for one channel (trains ``facts``); raises :class:`BudgetExceeded` above ``budget``."""
    cd = ChannelDelivery(channel, facts)
    groups = _groups(facts, WINDOW_US)
    plan = []
    needed = 0
    best_sp: Optional[Spacing] = None

    def better(sp: Spacing) -> None:
        nonlocal best_sp
        if best_sp is None or (sp.us, sp.t_second) < (best_sp.us, best_sp.t_second):
            best_sp = sp

    # spacings that need no expansion: inside one train, and between trains that do not interleave
    # (a Spacing is built only when it is better: better() with the comparison inlined)
    for tf in facts:
        if tf.k_hi <= tf.k_lo:
            continue
        ic, cc = tf.in_cycle_spacing, tf.cross_cycle_spacing
        if ic is not None:
            t = tf.train.start_us + tf.first_off
            if best_sp is None or (ic, t + ic) < (best_sp.us, best_sp.t_second):
                best_sp = Spacing(ic, t, t + ic, "slots", tf.index, tf.index)
        if cc is not None:
            t = tf.train.start_us + tf.last_off
            if best_sp is None or (cc, t + cc) < (best_sp.us, best_sp.t_second):
                best_sp = Spacing(cc, t, t + cc, "cycle", tf.index, tf.index)
    for group in groups:
        interleaved = False
        span_end = None
        for tf in group:  # sorted by first onset
            first, last = tf.first, tf.last
            if span_end is not None and first <= span_end[0]:
                interleaved = True
            elif span_end is not None:
                pl, prev = span_end      # better(Spacing(first - pl, ...)) with the comparison inlined
                if best_sp is None or (first - pl, first) < (best_sp.us, best_sp.t_second):
                    best_sp = Spacing(first - pl, pl, first, "lines", prev.index, tf.index)
            if span_end is None or last > span_end[0]:
                span_end = (last, tf)
        ranges = []
        if need_window or (need_spacing and interleaved):
            ranges = _examined(group) if need_window else _interleaved_ranges(group)
        for a, b in ranges:
            est = sum(math.ceil(_density(tf) * (min(b + WINDOW_US, tf.last + 1) - max(a, tf.first)))
                      for tf in group if tf.first < b + WINDOW_US and tf.last >= a)
            needed += max(0, est)
            plan.append((group, a, b))
    if needed > budget:
        raise BudgetExceeded(needed)
    best_w: Optional[Window] = None
    for group, a, b in plan:
        if not need_window and _memo["enabled"]:
            # the spacing of an interleaved stretch, memoised on its trains' onsets relative to its start
            got = _range_spacing(group, a, b)
            if got is not None and got.us < (best_sp.us if best_sp else 1 << 62):
                better(got)
            continue
        import numpy as np  # only when something must be expanded (keeps numpy out of most checks)

        rows, owner = _expand_group(group, a, b + WINDOW_US)
        cd.expanded += len(rows)
        if not len(rows):
            continue
        onsets = rows["t_us"].astype(np.int64)
        if need_spacing and len(onsets) >= 2:
            gaps = np.diff(onsets)
            i = int(np.argmin(gaps))
            if int(gaps[i]) < (best_sp.us if best_sp else 1 << 62):
                tri = owner[i:i + 2]
                kind = "lines" if tri[0] != tri[1] else "slots"
                better(Spacing(int(gaps[i]), int(onsets[i]), int(onsets[i + 1]), kind, int(tri[0]), int(tri[1])))
        if need_window:
            w = _window_max(group, rows, owner, a, b)
            if w is not None and (best_w is None or w.sum_ua2us > best_w.sum_ua2us):
                best_w = w
    cd.spacing = best_sp
    cd.window = best_w
    return cd


#: interleaved stretches of a channel, keyed on their trains' onsets relative to the stretch's start (see
#: _range_spacing): a week that moves a whole block along the session reuses what the week before measured
_GROUP_MEMO: dict = {}


def _range_spacing(group: list[TrainFacts], a: int, b: int) -> Optional[Spacing]:
    """The smallest onset spacing among the group's pulses in ``[a, b + 1 s)`` (the first on a tie), as
    :func:`measure_channel` measures it on the expanded pulses; memoised on the trains' :func:`emitted_key`
    with their starts taken relative to ``a`` (onsets are ``start + c·cycle + round(k·P)``: moving every train
    and the range by one amount moves every onset by it), in train-index order."""
    members = sorted((tf for tf in group if not (tf.last < a or tf.first >= b + WINDOW_US)), key=lambda tf: tf.index)
    key = (b - a, tuple([(tf.train.start_us - a,) + emitted_key(tf)[1:] for tf in members]))
    got = _GROUP_MEMO.get(key)
    if got is None:
        got = _range_spacing_plain(group, a, b, members)
        if len(_GROUP_MEMO) >= 4096:
            _GROUP_MEMO.clear()
        _GROUP_MEMO[key] = got
    if not got:
        return None
    gap, t1, t2, kind, p1, p2 = got
    return Spacing(gap, t1 + a, t2 + a, kind, members[p1].index, members[p2].index)


def _range_spacing_plain(group: list[TrainFacts], a: int, b: int, members: list[TrainFacts]) -> tuple:
    """(gap, first onset - a, second onset - a, kind, position of each train in ``members``), or () below two
    pulses."""
    import numpy as np

    rows, owner = _expand_group(group, a, b + WINDOW_US)
    if len(rows) < 2:
        return ()
    onsets = rows["t_us"].astype(np.int64)
    gaps = np.diff(onsets)
    i = int(np.argmin(gaps))
    tri = owner[i:i + 2]
    kind = "lines" if tri[0] != tri[1] else "slots"
    pos = {tf.index: p for p, tf in enumerate(members)}
    return (int(gaps[i]), int(onsets[i]) - a, int(onsets[i + 1]) - a, kind, pos[int(tri[0])], pos[int(tri[1])])


def channel_spacing(facts: Sequence[TrainFacts], budget: int = EXPANSION_BUDGET,
                    items: Optional[list] = None) -> Optional[Spacing]:
    """``measure_channel(..., need_window=False, need_spacing=True).spacing`` in one pass over the trains in
    onset order (the same candidates in the same order, so the same Spacing on a tie); the interleaved
    stretches through :func:`_range_spacing` (memoised). Raises :class:`BudgetExceeded` as the measurement does.
    ``items``: :func:`onset_order` of ``facts`` when the caller has it (``facts`` in train-index order).

    The scan before the interleaved stretches runs in the compiled twin when it is built (the loop below is its
    reference; the twin hands back to it any channel whose numbers do not fit its 64-bit bounds)."""
    if _twin is not None:
        got = _twin.spacing_scan(facts, items, _plan_interleaved, _first_two)
        if got is not None:
            vals, scan_plan, scan_needed = got
            return _spacing_plan(Spacing(*vals) if vals is not None else None, scan_plan, scan_needed, budget)
    best: Optional[Spacing] = None
    build = items is None
    if build:
        items = []
    assert items is not None
    for tf in facts:
        k_lo = tf.k_lo
        if tf.k_hi <= k_lo:
            continue
        tr = tf.train
        start = tr.start_us
        first = start + tf.first_off
        if build:
            items.append((first, tf.index, start + (tr.cycles - 1) * tr.cycle_us + tf.last_off, tf))
        ic, cc = tf.in_cycle_spacing, tf.cross_cycle_spacing
        if ic is not None and (best is None or (ic, first + ic) < (best.us, best.t_second)):
            best = Spacing(ic, first, first + ic, "slots", tf.index, tf.index)
        if cc is not None:
            t = start + tf.last_off
            if best is None or (cc, t + cc) < (best.us, best.t_second):
                best = Spacing(cc, t, t + cc, "cycle", tf.index, tf.index)
    if build:
        items.sort(key=_first_two)
    plan: list[tuple[list[TrainFacts], int, int]] = []
    needed = 0
    group: list[TrainFacts] = []
    interleaved = False
    end = 0
    end_tf: Optional[TrainFacts] = None
    for first, _, last, tf in items:
        if group and first - end < WINDOW_US:       # the same group (_groups)
            if first <= end:
                interleaved = True
            else:
                gap = first - end
                if best is None or (gap, first) < (best.us, best.t_second):
                    assert end_tf is not None
                    best = Spacing(gap, end, first, "lines", end_tf.index, tf.index)
            group.append(tf)
            if last > end:
                end, end_tf = last, tf
            continue
        if interleaved:
            needed += _plan_interleaved(group, plan)
        group, interleaved, end, end_tf = [tf], False, last, tf
    if interleaved:
        needed += _plan_interleaved(group, plan)
    return _spacing_plan(best, plan, needed, budget)


def _spacing_plan(best: Optional[Spacing], plan: list, needed: int, budget: int) -> Optional[Spacing]:
    """The end of :func:`channel_spacing`: the budget, then the interleaved stretches (memoised) against the
    best spacing the scan found."""
    if needed > budget:
        raise BudgetExceeded(needed)
    for grp, a, b in plan:
        got = _range_spacing(grp, a, b)
        if got is not None and got.us < (best.us if best else 1 << 62):
            if best is None or (got.us, got.t_second) < (best.us, best.t_second):
                best = got
    return best


def _plan_interleaved(group: list[TrainFacts], plan: list) -> int:
    """Add the interleaved ranges of ``group`` to ``plan``; returns the pulses their expansion needs (estimate)."""
    needed = 0
    for a, b in _interleaved_ranges(group):
        est = sum(math.ceil(_density(tf) * (min(b + WINDOW_US, tf.last + 1) - max(a, tf.first)))
                  for tf in group if tf.first < b + WINDOW_US and tf.last >= a)
        needed += max(0, est)
        plan.append((group, a, b))
    return needed


def prev_onset(tf: TrainFacts, a: int) -> Optional[int]:
    """The train's last onset before ``a`` (None when it has none)."""
    tr = tf.train
    if tf.per_cycle == 0 or a <= tf.first:
        return None
    if a > tf.last:
        return tf.last
    rel = a - 1 - tr.start_us
    c = min(tr.cycles - 1, rel // tr.cycle_us) if tr.cycle_us > 0 else 0
    off = rel - c * tr.cycle_us
    if off < tf.first_off:
        c -= 1
        off = tf.last_off
    elif off >= tf.last_off:
        off = tf.last_off
    else:
        k = first_slot(tr.period_num, tr.period_den, off + 1) - 1
        off = round_div(k * tr.period_num, tr.period_den)
    return tr.start_us + c * tr.cycle_us + off


def _interleaved_ranges(group: list[TrainFacts]) -> list[tuple[int, int]]:
    """Where two trains of a group run at the same time (their busy spans intersect)."""
    spans = sorted((tf.first, tf.last) for tf in group)
    out = []
    n = len(spans)
    for i in range(n):
        b1 = spans[i][1]
        for j in range(i + 1, n):    # (indices: a slice per train would copy the rest of the list, O(n²))
            a2, b2 = spans[j]
            if a2 > b1:
                break
            out.append((a2, min(b1, b2) + 1))
    if not out:
        return []
    # one cycle length: one cycle of the overlap represents the rest
    cycles = {tf.train.cycle_us for tf in group}
    merged: list[tuple[int, int]] = []
    for a, b in sorted(out):
        if len(cycles) == 1:
            c = next(iter(cycles))
            b = min(b, a + 2 * c + 1) if c > 0 else b
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    out = []
    for a, b in merged:
        # from the latest onset before the overlap of every train: the pairs that cross into it count too
        prev = [p for p in (prev_onset(tf, a) for tf in group) if p is not None]
        out.append((min(prev + [a]), b))
    return out


def _window_max(group: list[TrainFacts], rows: np.ndarray, owner: np.ndarray, a: int, b: int) -> Optional[Window]:
    """The worst window starting at an onset in [a, b) among ``rows`` (all pulses in [a, b + 1 s))."""
    import numpy as np
    t = rows["t_us"].astype(np.int64)
    amp = rows["amplitude_ua"].astype(np.int64)
    weights = {tf.train.shape: tf.weight for tf in group}
    lcm = 1
    for w in weights.values():
        lcm = lcm * w.denominator // math.gcd(lcm, w.denominator)
    wnum = np.zeros(len(t), dtype=np.float64)
    shape_col = rows["shape"].astype(np.int64)
    for s, w in weights.items():
        wnum[shape_col == s] = float(w * lcm)
    val = amp.astype(np.float64) ** 2 * wnum        # × 1/lcm
    csum = np.concatenate(([0.0], np.cumsum(val)))
    starts = np.nonzero((t >= a) & (t < b))[0]
    if not len(starts):
        return None
    ends = np.searchsorted(t, t[starts] + WINDOW_US, side="left")
    sums = csum[ends] - csum[starts]
    top = float(sums.max())
    # exact: every window within a relative 1e-9 of the float maximum is summed in integers
    cand = np.nonzero(sums >= top * (1 - 1e-9))[0]
    best: Optional[tuple[Fraction, int, int]] = None
    for ci in cand[:64]:
        i, j = int(starts[ci]), int(ends[ci])
        seg_amp = amp[i:j]
        seg_shape = shape_col[i:j]
        total = 0
        for s, w in weights.items():
            m = seg_shape == s
            if m.any():
                a2 = seg_amp[m]
                total += int(sum(int(x) * int(x) for x in a2)) * (w.numerator * (lcm // w.denominator))
        exact = Fraction(total, lcm)
        if best is None or exact > best[0]:
            best = (exact, i, j)
    if best is None:          # cand holds the float maximum itself: never empty
        return None
    exact, i, j = best
    ids, counts = np.unique(owner[i:j], return_counts=True)
    return Window(exact, int(t[i]), j - i, {int(k): int(n) for k, n in zip(ids, counts)})


# The compiled twin of session_facts' loop (ext/_rules.pyx) when built, else _facts above (the reference).
# (stimscript.twins reads the switches that force the reference or require the twin).
_twin: Optional[ModuleType] = None
USING_EXTENSION = False
if twins.wanted():
    try:
        from ..ext import _rules as _twin

        USING_EXTENSION = True
    except ImportError as err:
        twins.missing(err)


def channel_facts(trains: Sequence[Train], shapes: Sequence[PulseShape],
                  facts: Optional[Sequence[TrainFacts]] = None) -> dict[int, list[TrainFacts]]:
    """Train facts grouped by channel number (trains keep their indices); ``facts``: already computed, by index."""
    out: dict[int, list[TrainFacts]] = {}
    if facts is not None and len(facts) == len(trains):
        for tf in facts:                       # (facts[i].train is trains[i])
            ch = tf.train.channel
            got = out.get(ch)
            if got is None:
                out[ch] = [tf]
            else:
                got.append(tf)
        return out
    for i, tr in enumerate(trains):
        out.setdefault(tr.channel, []).append(facts[i] if facts is not None else train_facts(i, tr, shapes))
    return out
