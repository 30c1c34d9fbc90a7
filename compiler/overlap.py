"""S013 decided exactly on the lowered trains: two pulses overlapping on one channel (any device) or on
different channels of a device with one shared current source.

Single trains are decided from their per-cycle slot pattern; only where trains overlap in time are pulses laid
out, window by window, with numpy. Entry points: :func:`find_overlaps` (plain records for tools),
:func:`check_schedule_overlap` (diagnostics), :func:`train_cycle_offsets` (one cycle's emitted slots).
"""
from __future__ import annotations

from ..valueclass import dataclass
from fractions import Fraction

from ..errors import Diagnostic, Related
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..spans import Span
from .findings import _Collector, _seconds, _span
from ..pulses import PulseShape, Train
from .model import ResolvedSession

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Iterator, Mapping, Optional, Sequence
    import numpy as np

#: memo switch of the overlap results (turned with safety.set_cache_enabled)
_CACHE = {"enabled": True}


def set_memo_enabled(enabled: bool) -> None:
    """Turn the overlap memo on or off (results are identical either way)."""
    _CACHE["enabled"] = bool(enabled)
    clear_memo()


def clear_memo() -> None:
    _OVERLAP_MEMO.clear()
    _OFFSETS_MEMO.clear()


# --- S013: exact overlap on the lowered trains ----------------------------------------------------------
@dataclass(frozen=True)
class Overlap:
    """Two pulses that overlap in time: the earlier one at ``t_first`` (train index ``train_first``) is still
    on when the later one starts at ``t_second``. ``kind`` is 'same' (one channel) or 'cross'."""

    kind: str
    t_first: int
    channel_first: int
    train_first: int
    t_second: int
    channel_second: int
    train_second: int


#: the most slots of one cycle the exact overlap check lays out at once (beyond: S020)
MAX_CYCLE_SLOTS = 2**26


def _round_div_array(num: np.ndarray, den: int) -> np.ndarray:
    import numpy as np
    q, r = np.divmod(num, den)
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & (q % 2 == 1)))


def _cycle_numbers(train: Train) -> tuple:
    """Every number of ``train`` that :func:`train_cycle_offsets` reads (for a train with cycles > 0): equal
    numbers give equal offsets, so memo keys use these instead of the (possibly long) offsets themselves."""
    return (train.on_us, train.period_num, train.period_den, abs(train.amp_num), abs(train.amp_den),
            train.ramp_up_us, train.ramp_down_us)


#: one cycle's offsets by :func:`_cycle_numbers` (read-only arrays; only cycles of at most _OFFSETS_MEMO_SLOTS
#: slots are kept, so the memo stays small)
_OFFSETS_MEMO: dict = {}
_OFFSETS_MEMO_MAX = 64
_OFFSETS_MEMO_SLOTS = 1 << 20


def train_cycle_offsets(train: Train) -> np.ndarray:
    """Offsets (µs into a cycle) of every emitted slot of one cycle of ``train``: exactly the slots the
    expanders emit (``round(k·P)`` below ``on_us`` whose amplitude does not round to 0 µA), as a read-only
    int64 array (memoised on the train's numbers: the same cycle in another train or week is laid out once)."""
    if train.cycles <= 0 or not _CACHE["enabled"]:
        return _cycle_offsets(train)
    key = _cycle_numbers(train)
    off = _OFFSETS_MEMO.get(key)
    if off is None:
        off = _cycle_offsets(train)
        off.setflags(write=False)
        if len(off) <= _OFFSETS_MEMO_SLOTS:
            if len(_OFFSETS_MEMO) >= _OFFSETS_MEMO_MAX:
                _OFFSETS_MEMO.clear()
            _OFFSETS_MEMO[key] = off
    return off


def _cycle_offsets(train: Train) -> np.ndarray:
    import numpy as np
    on, num, den = train.on_us, train.period_num, train.period_den
    if on <= 0 or num <= 0 or den <= 0 or train.cycles <= 0:
        return np.zeros(0, dtype=np.int64)
    n = (on * den) // num + 2  # slots k with round(k·P) < on are among k < n
    if n > MAX_CYCLE_SLOTS:
        from .delivered import BudgetExceeded

        raise BudgetExceeded(n)
    if n * num >= 2**62 or n > 2**31:
        ks = range(n)
        offsets = np.array([_round_div_int(k * num, den) for k in ks], dtype=np.int64)
    else:
        offsets = _round_div_array(np.arange(n, dtype=np.int64) * num, den)
    offsets = offsets[offsets < on]
    # amplitude mask (see expand_py.slot_amplitude): round(x) != 0 <=> |x| > 1/2 (half to even)
    an, ad = abs(train.amp_num), abs(train.amp_den)
    up, down = train.ramp_up_us, train.ramp_down_us
    if an == 0 or ad == 0:
        return offsets[:0]
    keep = np.full(offsets.shape, 2 * an > ad)  # hold
    if down > 0:
        in_down = offsets >= on - down
        t_d = (ad * down) // (2 * an)            # on - offset > T_d  <=>  offset < on - floor(T_d)
        keep = np.where(in_down, offsets < on - t_d, keep)
    if up > 0:
        in_up = offsets < up
        t_u = (ad * up) // (2 * an)              # offset > T_u  <=>  offset > floor(T_u)
        keep = np.where(in_up, offsets > min(t_u, on + 1), keep)
    return offsets[keep]


def _round_div_int(num: int, den: int) -> int:
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


@dataclass
class _TrainPulses:
    index: int
    train: Train
    offsets: np.ndarray
    duration: int

    @property
    def first(self) -> int:
        return self.train.start_us + int(self.offsets[0])

    @property
    def last(self) -> int:
        return self.train.start_us + (self.train.cycles - 1) * self.train.cycle_us + int(self.offsets[-1])

    def times(self, a: int, b: int) -> np.ndarray:
        """Onsets t with a <= t < b."""
        import numpy as np
        tr, off = self.train, self.offsets
        if tr.cycle_us > 0:
            c_lo = max(0, -((-(a - tr.start_us - int(off[-1]))) // tr.cycle_us))
            c_hi = min(tr.cycles, (b - 1 - tr.start_us - int(off[0])) // tr.cycle_us + 1)
        else:
            c_lo, c_hi = 0, tr.cycles
        if c_hi <= c_lo:
            return np.zeros(0, dtype=np.int64)
        starts = tr.start_us + np.arange(c_lo, c_hi, dtype=np.int64) * tr.cycle_us
        t = (starts[:, None] + off[None, :]).ravel()
        return t[(t >= a) & (t < b)]


def _single_train_overlap(tp: _TrainPulses) -> Optional[Overlap]:
    import numpy as np
    off, d, tr = tp.offsets, tp.duration, tp.train
    if len(off) >= 2:
        gaps = np.diff(off)
        bad = np.nonzero(gaps < d)[0]
        if len(bad):
            i = int(bad[0])
            t = tr.start_us + int(off[i])
            return Overlap("same", t, tr.channel, tp.index, tr.start_us + int(off[i + 1]), tr.channel, tp.index)
    if tr.cycles >= 2 and tr.cycle_us + int(off[0]) - int(off[-1]) < d:
        t = tr.start_us + int(off[-1])
        return Overlap("same", t, tr.channel, tp.index, tr.start_us + tr.cycle_us + int(off[0]), tr.channel,
                       tp.index)
    return None


_OVERLAP_MEMO: dict = {}
_OVERLAP_MEMO_MAX = 256


def _no_single_overlap(tr: Train, dur: int) -> bool:
    """True when no two pulses of ``tr`` alone can overlap, decided from the train's numbers only.

    Consecutive emitted slots of one cycle are at least floor(P) apart (round half to even of k·P is
    monotone and round((k+1)·P) - round(k·P) >= floor(P)); the last slot of a cycle is below ``on_us`` and
    the first at or after 0, so across cycles the spacing is at least ``cycle_us - on_us + 1``.
    """
    if dur > tr.period_num // tr.period_den:
        return False
    return tr.cycles < 2 or tr.cycle_us - tr.on_us + 1 >= dur


def find_overlaps(trains: Sequence[Train], shapes: Sequence[PulseShape], shared_source: bool, *,
                  target_pulses: int = 200_000, facts: Optional[Sequence] = None) -> list[Overlap]:
    """Exactly which pulses overlap (a pulse occupies ``[t, t + shape.duration_us)``).

    Reports the first overlap of each train on its own channel ('same'; any device) and, when
    ``shared_source``, the first overlap between two different channels ('cross'). Single trains are decided
    analytically from their per-cycle slot pattern; only where trains overlap in time are pulses generated,
    window by window (the per-cycle patterns are the expanders' exact slots).

    Trains whose busy spans cannot meet (judged first from a bound of each span, then exactly) are never
    expanded. The work is linear in the trains (one sort): the sweep of a cluster of trains that do meet is
    memoised on the cluster's slot patterns relative to its first start, so a week that moves whole blocks
    along the session, or changes only amplitudes, reuses it. ``facts``: the trains'
    :func:`.delivered.train_facts` by index, when the caller has them.
    """
    return _find_overlaps(trains, shapes, shared_source, target_pulses, facts)


def _find_overlaps(trains: Sequence[Train], shapes: Sequence[PulseShape], shared_source: bool,
                   target_pulses: int, facts: Optional[Sequence] = None) -> list[Overlap]:
    from . import delivered
    from .delivered import round_div, train_facts

    shape_durs = [s.duration_us for s in shapes]
    # the compiled twin of the rules' loops (ext/_rules.pyx), when delivered.py selected it
    twin = delivered._twin
    got = twin.overlap_scan(trains, shape_durs, shared_source) if twin is not None else None
    suspects, chained = got if got is not None else overlap_scan(trains, shape_durs, shared_source)
    found: list[Overlap] = []
    tps: dict[int, Optional[_TrainPulses]] = {}

    def pulses(i: int, tr: Train, dur: int) -> Optional[_TrainPulses]:
        if i not in tps:
            off = train_cycle_offsets(tr)
            tps[i] = _TrainPulses(i, tr, off, dur) if len(off) else None
        return tps[i]

    for i, tr, dur in suspects:
        # the first two emitted slots of a cycle, from the train's numbers (no layout of the cycle)
        tf = facts[i] if facts is not None else train_facts(i, tr, shapes)
        if tf.per_cycle >= 2:
            second = round_div((tf.k_lo + 1) * tr.period_num, tr.period_den)
            if second - tf.first_off < dur:
                found.append(Overlap("same", tr.start_us + tf.first_off, tr.channel, i, tr.start_us + second,
                                     tr.channel, i))
                continue
        tp = pulses(i, tr, dur)
        if tp is not None:
            ov = _single_train_overlap(tp)
            if ov is not None:
                found.append(ov)
    ordered = []
    for group, chains in chained:
        clusters: list[list[_TrainPulses]] = []
        for comp in chains:
            members = [tp for tp in (pulses(*c) for c in comp) if tp is not None]
            if len(members) < 2:
                continue
            clusters.extend(cl for cl in _clusters(members) if len(cl) >= 2)
        if not clusters:
            continue
        clusters.sort(key=lambda cl: cl[0].first)
        # the group's place among groups: its first train (by index) that emits pulses
        order = next(c[0] for c in group if pulses(*c) is not None)
        ordered.append((order, clusters))
    ordered.sort(key=lambda g: g[0])
    for _, clusters in ordered:
        for cluster in clusters:
            found.extend(_sweep_memo(cluster, shared_source, target_pulses))
    found.sort(key=lambda o: (o.t_second, o.t_first, o.kind))
    return _dedupe_overlaps(found)


def overlap_scan(trains: Sequence[Train], shape_durs: list, shared_source: bool) -> tuple[list, list]:
    """The train-by-train part of :func:`find_overlaps`, from the trains' numbers only: (the trains that emit
    pulses and might overlap themselves, as ``(index, train, pulse duration)`` in index order; per group of
    trains that may overlap each other (all trains when ``shared_source``, else one channel's) that has a chain
    of at least two trains whose busy spans may meet (:func:`_bound_components`): ``(the group, its chains of
    two trains or more)``, in the groups' order). A train emits nothing when its duration, on-phase, period,
    cycles or amplitude is zero; it cannot overlap itself when the pulse fits its slot spacing
    (:func:`_no_single_overlap`).

    The compiled twin (ext/_rules.pyx ``overlap_scan``) returns the same, or None for numbers beyond its
    64-bit bounds (then this reference runs)."""
    n_shapes = len(shape_durs)
    cand: list[tuple[int, Train, int]] = []
    suspects: list[tuple[int, Train, int]] = []
    for i, tr in enumerate(trains):
        dur = shape_durs[tr.shape] if 0 <= tr.shape < n_shapes else 0
        if not (dur > 0 and tr.on_us > 0 and tr.period_num > 0 and tr.period_den > 0 and tr.cycles > 0
                and tr.amp_num != 0 and tr.amp_den != 0):
            continue  # emits nothing (train_cycle_offsets is empty) or dur <= 0
        c = (i, tr, dur)
        cand.append(c)
        # _no_single_overlap inlined: no two pulses of the train alone can overlap
        if not (dur <= tr.period_num // tr.period_den and (tr.cycles < 2 or tr.cycle_us - tr.on_us + 1 >= dur)):
            suspects.append(c)
    groups: list[list[tuple[int, Train, int]]]
    if shared_source:
        groups = [cand]
    else:
        by_channel: dict[int, list] = {}
        for c in cand:
            by_channel.setdefault(c[1].channel, []).append(c)
        groups = list(by_channel.values())
    chained = []
    for group in groups:
        if len(group) < 2:
            continue          # (a cluster has two trains at least)
        chains = [comp for comp in _bound_components(group) if len(comp) >= 2]
        if chains:
            chained.append((group, chains))
    return suspects, chained


_LAST_SLOT: dict = {}


def _last_slot(tr: Train) -> int:
    """Offset of the last slot of a cycle, ``round(k·P) < on_us`` (before the zero-amplitude mask)."""
    num, den, on = tr.period_num, tr.period_den, tr.on_us
    key = (num, den, on)
    r = _LAST_SLOT.get(key)
    if r is None:
        from .delivered import first_slot

        k = max(0, first_slot(num, den, on) - 1)   # the last k with round(k·P) < on
        r = _round_div_int(k * num, den)
        if len(_LAST_SLOT) >= 4096:
            _LAST_SLOT.clear()
        _LAST_SLOT[key] = r
    return r


def _bound_components(group: list[tuple[int, Train, int]]) -> Iterator[list[tuple[int, Train, int]]]:
    """Chains of trains whose busy spans may intersect, judged on a superset of each span:
    [start, start + (cycles - 1)·cycle + last slot + duration) contains [first onset, last onset + duration)
    (the last slot of a cycle, before masking, is at or after its last emitted pulse).
    Every exact cluster (:func:`_clusters`) lies inside one chain; members keep the group's order."""
    # (start, index) orders as a stable sort by start does: the group is in index order
    items = sorted([(c[1].start_us, c[0], c) for c in group])
    current: list = []
    end = 0
    memo = _LAST_SLOT
    for lo, _, c in items:
        tr = c[1]
        last = memo.get((tr.period_num, tr.period_den, tr.on_us))     # _last_slot(tr), its memo read inline
        if last is None:
            last = _last_slot(tr)
        hi = lo + (tr.cycles - 1) * tr.cycle_us + last + c[2]
        if current and lo < end:
            current.append(c)
            if hi > end:
                end = hi
        else:
            if current:
                yield sorted(current, key=_by_index) if len(current) > 1 else current
            current, end = [c], hi
    if current:
        yield sorted(current, key=_by_index) if len(current) > 1 else current


def _by_index(c: tuple) -> int:
    return c[0]


def _sweep_memo(cluster: list[_TrainPulses], shared_source: bool, target_pulses: int) -> list[Overlap]:
    """:func:`_sweep`, memoised on the cluster's trains in its order (channel, start relative to the cluster's
    first start, cycles, cycle length, pulse duration, the numbers that decide one cycle's emitted offsets
    (:func:`_cycle_numbers`, cheaper to hash than the offsets of a long cycle)): every onset is
    ``start + c·cycle + offset`` and the sweep's windows start at the cluster's first onset, so moving the whole
    cluster moves every overlap found by the same amount; train indices are kept as positions in the cluster."""
    if not _CACHE["enabled"]:
        return _sweep(cluster, shared_source, target_pulses)
    base = cluster[0].train.start_us
    key = (bool(shared_source), target_pulses,
           tuple((tp.train.channel, tp.train.start_us - base, tp.train.cycles, tp.train.cycle_us, tp.duration,
                  _cycle_numbers(tp.train)) for tp in cluster))
    res = _OVERLAP_MEMO.get(key)
    if res is None:
        pos = {tp.index: p for p, tp in enumerate(cluster)}
        res = tuple((ov.kind, ov.t_first - base, ov.channel_first, pos[ov.train_first], ov.t_second - base,
                     ov.channel_second, pos[ov.train_second]) for ov in _sweep(cluster, shared_source, target_pulses))
        if len(_OVERLAP_MEMO) >= _OVERLAP_MEMO_MAX:
            _OVERLAP_MEMO.clear()
        _OVERLAP_MEMO[key] = res
    return [Overlap(kind, t1 + base, c1, cluster[p1].index, t2 + base, c2, cluster[p2].index)
            for kind, t1, c1, p1, t2, c2, p2 in res]


def _dedupe_overlaps(found: list[Overlap]) -> list[Overlap]:
    """The first overlap per channel ('same') and the first across channels ('cross')."""
    out, seen = [], set()
    for ov in found:
        key = ("cross",) if ov.kind == "cross" else ("same", ov.channel_first)
        if key not in seen:
            seen.add(key)
            out.append(ov)
    return out


def _clusters(group: list[_TrainPulses]) -> Iterator[list[_TrainPulses]]:
    """Chains of trains whose busy intervals [first onset, last onset + duration) intersect."""
    items = sorted(group, key=lambda tp: tp.first)
    current: list[_TrainPulses] = []
    end = 0
    for tp in items:
        if current and tp.first < end:
            current.append(tp)
            end = max(end, tp.last + tp.duration)
        else:
            if current:
                yield current
            current, end = [tp], tp.last + tp.duration
    if current:
        yield current


def _sweep(cluster: list[_TrainPulses], shared_source: bool, target_pulses: int) -> list[Overlap]:
    lo = min(tp.first for tp in cluster)
    hi = max(tp.last + 1 for tp in cluster)
    margin = max(tp.duration for tp in cluster)
    rate = sum(len(tp.offsets) / max(tp.train.cycle_us, 1) for tp in cluster)  # pulses per µs, roughly
    window = max(10 * margin, 1000, int(target_pulses / max(rate, 1e-12)))
    # every window is swept: a cross-channel overlap early in the session must not hide a same-channel
    # overlap later on (each is reported once: the first per channel, the first across channels)
    found: list[Overlap] = []
    seen: set[tuple[str, int]] = set()
    a = lo
    while a < hi:
        b = min(hi, a + window)
        for ov in _sweep_window(cluster, a - margin, b, shared_source):
            key = (ov.kind, ov.channel_first if ov.kind == "same" else 0)
            if key not in seen:
                seen.add(key)
                found.append(ov)
        a = b
    return found


def _sweep_window(cluster: list[_TrainPulses], a: int, b: int, shared_source: bool) -> list[Overlap]:
    import numpy as np
    ts, chs, trs, durs = [], [], [], []
    for tp in cluster:
        if tp.last < a or tp.first >= b:
            continue
        t = tp.times(a, b)
        if len(t):
            ts.append(t)
            chs.append(np.full(len(t), tp.train.channel, dtype=np.int64))
            trs.append(np.full(len(t), tp.index, dtype=np.int64))
            durs.append(np.full(len(t), tp.duration, dtype=np.int64))
    if not ts:
        return []
    t = np.concatenate(ts)
    ch = np.concatenate(chs)
    tr = np.concatenate(trs)
    end = t + np.concatenate(durs)
    order = np.lexsort((t, ch))  # by channel, then time
    t, ch, tr, end = t[order], ch[order], tr[order], end[order]
    found: list[Overlap] = []
    # per channel: a pulse that starts before every earlier pulse of its channel has ended overlaps one
    base = int(t.min())
    span = int(end.max()) - base + 1
    key = (end - base) + ch * span  # keeps the running maximum inside each channel's run
    run = np.maximum.accumulate(key)
    new_channel = np.ones(len(t), dtype=bool)
    new_channel[1:] = ch[1:] != ch[:-1]
    prev_end = np.empty(len(t), dtype=np.int64)
    prev_end[0] = -1
    prev_end[1:] = run[:-1] - ch[1:] * span + base
    same = (~new_channel) & (t < prev_end)
    for jj in np.nonzero(same)[0]:
        j = int(jj)
        c = int(ch[j])
        if any(o.channel_first == c for o in found):
            continue
        i = _earlier_overlapping(t, end, ch, j, same_channel=True)
        found.append(Overlap("same", int(t[i]), c, int(tr[i]), int(t[j]), c, int(tr[j])))
    if shared_source:
        # merge each channel's pulses into disjoint busy intervals, then any overlap is across channels
        starts_mask = new_channel | (t >= prev_end)
        idx = np.nonzero(starts_mask)[0]
        seg_end_idx = np.append(idx[1:], len(t)) - 1
        iv_start = t[idx]
        iv_end = run[seg_end_idx] - ch[idx] * span + base
        iv_ch = ch[idx]
        iv_first = idx
        o2 = np.argsort(iv_start, kind="stable")
        s2, e2, c2, f2 = iv_start[o2], iv_end[o2], iv_ch[o2], iv_first[o2]
        if len(s2) >= 2:
            run2 = np.maximum.accumulate(e2)
            cross = np.nonzero(s2[1:] < run2[:-1])[0]
            if len(cross):
                j2 = int(cross[0]) + 1
                i2 = int(np.nonzero(e2[:j2] > s2[j2])[0][0])
                # the concrete pulses: the later interval's first pulse, and the pulse of the earlier
                # channel's interval that is on at that moment
                j3 = int(f2[j2])
                ci = int(c2[i2])
                mask = (ch == ci) & (t <= t[j3]) & (end > t[j3])
                cand = np.nonzero(mask)[0]
                i3 = int(cand[0]) if len(cand) else int(f2[i2])
                if t[i3] > t[j3]:
                    i3, j3 = j3, i3
                found.append(Overlap("cross", int(t[i3]), int(ch[i3]), int(tr[i3]), int(t[j3]), int(ch[j3]),
                                     int(tr[j3])))
    return found


def _earlier_overlapping(t, end, ch, j: int, same_channel: bool) -> int:
    import numpy as np
    c = ch[j]
    mask = (end[:j] > t[j]) & (t[:j] <= t[j])
    if same_channel:
        mask &= ch[:j] == c
    cand = np.nonzero(mask)[0]
    return int(cand[-1]) if len(cand) else j - 1


def check_schedule_overlap(trains: Sequence[Train], shapes: Sequence[PulseShape],
                           profile: DeviceProfile = LOOPBACK_PROFILE, *,
                           channel_names: Optional[Mapping[int, str]] = None,
                           spans: Optional[Mapping[int, Span]] = None,
                           week_suffix: str = "",
                           skip_same_channel: Iterable[int] = ()) -> list[Diagnostic]:
    """S013 on lowered trains: overlaps on one channel (any device) or across channels when the device
    has one shared current source (``profile.independent_sources`` is False). ``spans`` maps a train index
    to the span to report (else None); ``channel_names`` maps channel numbers to names."""
    out = _Collector(week_suffix)
    _report_overlaps(out, trains, shapes, profile, channel_names or {},
                     lambda i: (spans or {}).get(i), set(skip_same_channel))
    return out.items


def _report_overlaps(out: _Collector, trains, shapes, profile: DeviceProfile, names: Mapping[int, str],
                     span_of, skip_same: set, facts: Optional[Sequence] = None,
                     overlaps: Optional[list[Overlap]] = None) -> None:
    """S013 for ``overlaps`` (found here when None)."""
    if overlaps is None:
        overlaps = find_overlaps(trains, shapes, shared_source=not profile.independent_sources, facts=facts)

    def label(c: int) -> str:
        return f"channel `{names[c]}` ({c})" if c in names else f"channel {c}"

    for ov in overlaps:
        d_first = shapes[trains[ov.train_first].shape].duration_us
        if ov.kind == "same":
            if ov.channel_first in skip_same:
                continue
            out.add("S013", f"pulses on {label(ov.channel_first)} overlap: the {d_first} µs pulse at "
                            f"{_seconds(ov.t_first)} is still on when the next starts at {_seconds(ov.t_second)}",
                    span_of(ov.train_second),
                    related=[Related("the earlier pulse comes from here", span_of(ov.train_first))
                             if span_of(ov.train_first) is not None else None],
                    hint="two lines drive this channel at the same time, or a cycle without rest is shorter "
                         "than the pulse spacing")
        else:
            out.add("S013", f"pulses of {label(ov.channel_first)} at {_seconds(ov.t_first)} ({d_first} µs) and "
                            f"{label(ov.channel_second)} at {_seconds(ov.t_second)} overlap on device "
                            f"`{profile.name}`, which has one shared current source",
                    span_of(ov.train_second),
                    related=[Related(f"{label(ov.channel_first)} is driven here", span_of(ov.train_first))
                             if span_of(ov.train_first) is not None else None],
                    hint="offset the lines with `after` so the pulses interleave, or use a device with "
                         "independent current sources")


def _check_trains(out: _Collector, resolved: ResolvedSession, profile: DeviceProfile,
                  skip_same_channel: set, facts: Optional[Sequence] = None) -> None:
    from .delivered import BudgetExceeded

    try:
        overlaps = find_overlaps(resolved.trains, resolved.shapes, shared_source=not profile.independent_sources,
                                 facts=facts)
    except BudgetExceeded as exc:
        out.add("S020", f"checking pulse overlaps would lay out about {exc.needed:,} slots of one cycle, more than "
                        f"the budget of {MAX_CYCLE_SLOTS:,}; the protocol is refused rather than passed unchecked",
                resolved.session_span, hint="lower the frequency or shorten the cycle's on-phase")
        return
    if not overlaps:
        return
    names = {c.number: c.name for c in resolved.channels}
    for u in resolved.uses:
        names.setdefault(u.number, u.channel)

    def span_of(i: int) -> Optional[Span]:
        tr = resolved.trains[i]
        shape = resolved.shapes[tr.shape] if 0 <= tr.shape < len(resolved.shapes) else None
        best = None
        for u in resolved.uses:
            if u.number != tr.channel:
                continue
            f = Fraction(u.frequency_hz)
            if u.shape == shape and f > 0 and Fraction(10**6) / f == tr.period:
                return _span(u, "line")
            best = best or _span(u, "line")
        return best

    _report_overlaps(out, resolved.trains, resolved.shapes, profile, names, span_of, skip_same_channel, facts,
                     overlaps)
