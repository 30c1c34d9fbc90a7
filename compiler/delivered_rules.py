"""The safety rules decided on delivered pulses (docs/safety.md): rates, 1-second windows, onsets.

:mod:`.delivered` measures each channel's pulses; this module turns the measurements into diagnostics at the
line to change:

* S004 / S006 ``max frequency``: the smallest onset-to-onset spacing of a channel against the device's slot rate
  and the protocol's limits. A frequency f allows spacings of ``floor(10⁶ / f)`` µs (the shorter of the two
  spacings a train at exactly f has on the 1 µs grid). Consecutive slots of one cycle point at the frequency,
  a cycle restarting its train early at the cycle, two lines at the later line's ``after``.
* S009 / S010 / S006 ``max density``: the worst 1-second window ``[t, t + 1 s)`` of the channel's onsets,
  ``Σ I²·Σ(rᵢ²·dᵢ)``, at 500 Ω on the smaller electrode.
* S012: the amplitude of the first delivered pulse of each line (a ramp shorter than one period is no ramp).
* S020: the exact pass would need more pulses expanded than :data:`.delivered.EXPANSION_BUDGET`.
"""
from __future__ import annotations

import heapq
import math
import sys
from fractions import Fraction

from ..errors import Related
from ..profile import DeviceProfile
from ..pulses import MAX_AMPLITUDE_UA
from . import delivered as D
from . import energy as E
from .model import ChannelUse, ResolvedSession
from .rules import s012_hint
from .findings import _area, _ch, _Collector, _ma, _seconds, _span, num
from .limits import _limit_name, _limit_value_text, _related_limit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

#: power density (W/cm²) = Σ[µA²·µs] · 10⁻¹⁸ · 500 Ω / area
_POWER = Fraction(E.LOAD_OHM, 10**18)
#: rms current² (mA²) over 1 s = Σ[µA²·µs] · 10⁻¹²
_RMS2 = Fraction(1, 10**12)


def min_spacing_us(rate_hz) -> int:
    """The smallest onset spacing a rate allows on the 1 µs grid: floor(10⁶ / f)."""
    key = (type(rate_hz), rate_hz)
    got = _MIN_SPACING.get(key)
    if got is None:
        f = Fraction(rate_hz)
        got = math.floor(Fraction(10**6) / f) if f > 0 else 0
        if len(_MIN_SPACING) < 1024:
            _MIN_SPACING[key] = got
    return got


_MIN_SPACING: dict = {}


def _use(resolved: ResolvedSession, train: int) -> ChannelUse:
    assert resolved.train_uses is not None, "the rules read sessions whose trains are tied to their uses"
    return resolved.uses[resolved.train_uses[train]]


def _smaller(use: ChannelUse):
    best = None
    for e in use.electrodes:
        if best is None or E.exact(e.area_cm2) < E.exact(best.area_cm2):
            best = e
    return best


def delivered_findings(out: _Collector, resolved: ResolvedSession, profile: DeviceProfile,
                       ramp_threshold_ua: int, facts: Optional[Sequence[D.TrainFacts]] = None) -> None:
    """Every delivered-pulse rule on every channel of ``resolved`` (its trains are tied to its uses);
    ``facts``: the trains' :func:`.delivered.train_facts` when the caller has them already."""
    dev_sp = min_spacing_us(profile.max_rate_hz)
    freq_limits = [(li, lim) for li, lim in enumerate(resolved.limits)
                   if lim.bound == "max" and _limit_name(lim) == "frequency" and lim.value.value > 0]
    dens_limits = [(li, lim) for li, lim in enumerate(resolved.limits)
                   if lim.bound == "max" and _limit_name(lim) == "density" and _density_ok(lim)]
    dens_values = [_density_value(lim) for _, lim in dens_limits]
    freq_spacings = [(lim, min_spacing_us(lim.value.value)) for _, lim in freq_limits]
    dens_key = tuple(dens_values)
    for channel, live, items, starts, total in channel_onsets(resolved.trains, resolved.shapes, ramp_threshold_ua,
                                                              facts):
        if starts:
            _onsets(out, resolved, live, ramp_threshold_ua, starts)
        use0 = _use(resolved, live[0].index)
        peak = max(abs(tf.peak_ua) for tf in live)
        if peak > MAX_AMPLITUDE_UA:   # no schedule holds these pulses, so none can be expanded and measured
            out.add("S020", f"{_ch(use0)} would deliver pulses of {_ma(peak)}, beyond the "
                            f"{_ma(MAX_AMPLITUDE_UA)} a pulse schedule holds: its delivered pulses cannot be "
                            "checked; the protocol is refused rather than passed unchecked", _span(use0, "line"),
                    hint=f"lower the amplitude to at most the device maximum, {_ma(profile.max_current_ua)}")
            continue
        small, area = _smaller_area(use0.electrodes)
        need_window = False
        if area is not None and area > 0:
            key = (area.numerator, area.denominator, dens_key)
            got = _LOWEST.get(key)
            if got is None:
                thresholds = [E.MAX_POWER_DENSITY_W_CM2 * area / _POWER, (E.MAX_RMS_DENSITY_MA_CM2 * area) ** 2 / _RMS2]
                thresholds += [(v * area) ** 2 / _RMS2 for v in dens_values]
                lowest = min(thresholds)
                got = (lowest, _float_floor(lowest))
                if len(_LOWEST) >= 1024:
                    _LOWEST.clear()
                _LOWEST[key] = got
            lowest, lowest_floor = got
            # D.window_bound_below(live, lowest) from the sum channel_onsets made; a float is at most `lowest`
            # exactly when it is at most the largest float at most `lowest` (no Fraction comparison per channel)
            need_window = (not (D.memo_enabled() and total * (1 + 1e-6) + 1.0 <= lowest_floor)
                           and D.window_bound(live, items) > lowest)
        try:
            if need_window:
                cd = D.measure_channel(channel, live, need_window=True, need_spacing=True)
                sp, w = cd.spacing, cd.window
            elif D.memo_enabled():
                sp, w = D.channel_spacing(live, items=items), None
            else:
                sp, w = D.measure_channel(channel, live, need_window=False, need_spacing=True).spacing, None
        except D.BudgetExceeded as exc:
            out.add("S020", f"checking the delivered pulses of {_ch(use0)} would expand about {exc.needed:,} pulses, "
                            f"more than the budget of {D.EXPANSION_BUDGET:,}; the protocol is refused rather than "
                            "passed unchecked", _span(use0, "line"),
                    hint="lines of different cycle lengths interleave on this channel for a long time; give them one "
                         "cycle length, or put them in separate blocks")
            continue
        if sp is not None:
            if sp.us < dev_sp:
                _spacing(out, resolved, sp, "S004", dev_sp,
                         f"the device's slot rate of at most {profile.max_rate_hz} Hz (device `{profile.name}`)",
                         None)
            for lim, lim_sp in freq_spacings:
                if sp.us < lim_sp:
                    _spacing(out, resolved, sp, "S006", lim_sp,
                             f"the protocol's max frequency {_limit_value_text(lim)}", _related_limit(lim))
        if w is not None and area is not None and area > 0:
            _window(out, resolved, w, small, area, dens_limits)


#: (electrode area as numerator and denominator, the protocol's max density values) -> (the lowest Σ I²·w (µA²·µs)
#: in a second at which S009, S010 or S006 density fires, the largest float at most that): the same few areas every
#: week
_LOWEST: dict = {}


def _float_floor(x: Fraction) -> float:
    """The largest float at most ``x`` (the largest finite float above it), so that ``f <= x`` exactly when
    ``f <= _float_floor(x)`` for every float ``f`` (infinities and NaN included)."""
    try:
        f = float(x)
    except OverflowError:
        f = math.inf if x > 0 else -math.inf
    if math.isinf(f):   # (a float compared with a Fraction: inf is above every Fraction, -inf below)
        return sys.float_info.max if f > 0 else -math.inf
    if Fraction(f) > x:
        f = math.nextafter(f, -math.inf)
    return f


def _smaller_area(electrodes) -> tuple:
    """(the smaller electrode of a use, its exact area), or (None, None) without electrodes; memoised per electrode
    tuple (every week of a plan reads the same ones; the memo holds the tuple, so its id is not reused)."""
    ent = _SMALLER.get(id(electrodes))
    if ent is not None and ent[0] is electrodes:
        return ent[1]
    best = None
    for e in electrodes:
        if best is None or E.exact(e.area_cm2) < E.exact(best.area_cm2):
            best = e
    got = (best, E.exact(best.area_cm2) if best is not None else None)
    if type(electrodes) is tuple:
        if len(_SMALLER) >= 1024:
            _SMALLER.clear()
        _SMALLER[id(electrodes)] = (electrodes, got)
    return got


_SMALLER: dict = {}


def _density_ok(lim) -> bool:
    from .limits import _limit_ok_dim

    return _limit_ok_dim(lim)


def _density_value(lim) -> Fraction:
    from .limits import _density_limit

    return max(Fraction(0), _density_limit(lim.value))


# --- spacing -----------------------------------------------------------------------------------------
def _spacing(out: _Collector, resolved: ResolvedSession, sp: D.Spacing, code: str, allowed: int, what: str,
             related_limit: Optional[Related]) -> None:
    later = _use(resolved, sp.train_second)
    earlier = _use(resolved, sp.train_first)
    tr = resolved.trains[sp.train_second]
    f = Fraction(later.frequency_hz)
    rate = Fraction(10**6, sp.us) if sp.us > 0 else None
    rate_text = f"{num(rate)} Hz" if rate is not None else "simultaneous pulses"
    head = (f"pulses of {_ch(later)} are delivered {sp.us} µs apart at {_seconds(sp.t_second)} "
            f"(an instantaneous rate of {rate_text})")
    tail = f"closer than the {allowed} µs of {what}"
    related = [related_limit]
    if sp.kind == "slots":
        if code == "S004" and Fraction(later.frequency_hz) > Fraction(10**6, max(allowed, 1)):
            return  # the declared frequency is already reported at the frequency
        if code == "S006" and related_limit is not None and f > Fraction(10**6, max(allowed, 1)):
            return
        out.add(code, f"{head}: consecutive slots at {num(f)} Hz are {tail}", _span(later, "frequency"),
                related=related, hint="lower the frequency")
    elif sp.kind == "cycle":
        period = Fraction(tr.period_num, tr.period_den)
        short = (f", shorter than one {num(period)} µs period of {num(f)} Hz" if tr.cycle_us < period else "")
        msg = (f"{head}: the cycle restarts its train every {tr.cycle_us} µs{short}, so the last pulse of one "
               f"cycle and the first of the next are {tail}")
        related.append(Related("the cycle is run here", later.spans["line"]) if later.spans.get("line") else None)
        out.add(code, msg, _span(later, "cycle"), related=related,
                hint=f"make the cycle at least one period longer ({num(period)} µs at {num(f)} Hz), e.g. with "
                     "`rest`, or lower the frequency")
    else:
        related.append(Related("the other line driving this channel", earlier.spans["line"])
                       if earlier.spans.get("line") is not None and earlier is not later else None)
        tr_first = resolved.trains[sp.train_first]
        if tr_first.start_us + tr_first.cycles * tr_first.cycle_us <= tr.start_us:
            how = (f"the last pulse of the line before (at {_seconds(sp.t_first)}) and the first of this line "
                   f"are {tail}")
        else:
            how = f"two lines on this channel interleave their pulses, {tail}"
        out.add(code, f"{head}: {how}",
                _span(later, "after", "line"), related=related,
                hint="change the `after` offset or the block lengths so the lines keep the pulse spacing, or "
                     "drive them on different channels")


# --- the worst 1-second window -------------------------------------------------------------------------
def _window(out: _Collector, resolved: ResolvedSession, w: D.Window, small, area: Fraction, dens_limits) -> None:
    main = max(w.trains.items(), key=lambda kv: (kv[1], -kv[0]))[0] if w.trains else None
    if main is None:
        return
    use = _use(resolved, main)
    tr = resolved.trains[main]
    f = Fraction(use.frequency_hz)
    declared = math.ceil(f) if f > 0 else 0
    bunched = len(w.trains) > 1 or w.pulses > declared
    later = _use(resolved, max(w.trains))
    keys: tuple[ChannelUse, tuple[str, ...]]
    if len(w.trains) > 1:
        keys = (later, ("after", "line"))
    elif w.pulses > declared:
        keys = (use, ("cycle",))
    else:
        keys = (use, ("amplitude",))
    span = _span(keys[0], *keys[1])
    where = f"on electrode `{small.name}` ({_area(area)})"
    rel = Related(f"electrode `{small.name}` ({_area(area)}) is declared here", small.span) \
        if small.span is not None else None
    basis = (f"measured on the delivered pulses: {w.pulses} pulses in the worst second from "
             f"{_seconds(w.t_start)}" + (f" (at {num(f)} Hz a second holds {declared})" if bunched else "")
             + f", up to {_ma(max(_peak(resolved, i) for i in w.trains))}")
    pd = w.sum_ua2us * _POWER / area
    if pd > E.MAX_POWER_DENSITY_W_CM2:
        min_area = w.sum_ua2us * _POWER / E.MAX_POWER_DENSITY_W_CM2
        scale = math.sqrt(E.MAX_POWER_DENSITY_W_CM2 / pd)
        peak = _peak(resolved, main)
        out.add("S010", f"power density {num(pd, differ_from=Fraction(1, 4))} W/cm² {where} exceeds 0.25 W/cm²",
                span, related=[rel],
                hint=f"{basis}, 500 Ω; use electrodes of at least {num(min_area)} cm² or an amplitude of at most "
                     f"{num(Fraction(peak * scale) / 1000)} mA on `{small.name}`"
                     + ("; or spread the pulses out (cycle length, `after`)" if bunched else ""))
    rms2 = w.sum_ua2us * _RMS2  # mA²
    if rms2 > (E.MAX_RMS_DENSITY_MA_CM2 * area) ** 2:
        dens = math.sqrt(rms2) / float(area)
        out.add("S009", f"rms current density {num(dens, differ_from=2)} mA/cm² {where} exceeds 2 mA/cm²", span,
                related=[rel], hint=f"{basis}; IEC 60601-2-10 asks for operator attention above 2 mA/cm²: "
                                    "consider larger electrodes")
    for _li, lim in dens_limits:
        v = _density_value(lim)
        if rms2 > (v * area) ** 2:
            dens = math.sqrt(rms2) / float(area)
            out.add("S006", f"rms current density {num(dens, differ_from=v)} mA/cm² {where} of {_ch(use)} is above "
                            f"the protocol's max density {_limit_value_text(lim)}", span,
                    related=[rel, _related_limit(lim)], hint=basis)
    del tr


def _peak(resolved: ResolvedSession, train: int) -> int:
    return D.train_facts(train, resolved.trains[train], resolved.shapes).peak_ua


# --- onsets --------------------------------------------------------------------------------------------
def _continuing(facts: Sequence[D.TrainFacts], threshold: int, items: Optional[list] = None) -> set[int]:
    """Positions in ``facts`` of the trains starting above ``threshold`` while output is already running on
    the channel: another train delivered a pulse at most :data:`.delivered.WINDOW_US` before their first one
    (a block following another without a pause is no new start).

    One sweep in onset order (``items``: :func:`.delivered.onset_order` of ``facts``, the channel's one sort;
    every train of ``facts`` emits), O(n log n) plus the trains running at each start: a train whose last onset
    is more than a window before a start is dropped for good (later starts are later still); only trains still
    running at a start need their exact last onset before it. (Comparing every pair was O(n²): a 5000-line
    protocol spent most of its check here.)"""
    if items is None:
        items = D.onset_order(facts)
    running: list[tuple[int, int]] = []     # heap of (last onset, position) of trains started before `a`
    out: set[int] = set()
    nxt = 0
    n = len(items)
    push, pop = heapq.heappush, heapq.heappop
    for a, i, _, tf in items:
        while nxt < n and items[nxt][0] < a:
            it = items[nxt]
            push(running, (it[2], it[1]))
            nxt += 1
        while running and running[0][0] < a - D.WINDOW_US:
            pop(running)
        if tf.first_ua <= threshold or not running:
            continue
        for last, o in running:
            prev = last if last < a else D.prev_onset(facts[o], a)
            if prev is not None and a - prev <= D.WINDOW_US:
                out.add(i)
                break
    return out


def channel_onsets(trains: Sequence, shapes: Sequence, threshold,
                   facts: Optional[Sequence[D.TrainFacts]] = None) -> list[tuple]:
    """Per channel that delivers pulses, in the order :func:`.delivered.channel_facts` lists the channels:
    ``(channel, live, items, starts, total)``: its trains that emit (``live``, in train-index order), their
    :func:`.delivered.onset_order` (the channel's one sort), the positions in ``live`` of the trains whose first
    delivered pulse is above ``threshold`` and which start output (not :func:`_continuing`), in order, and the sum
    of their window bounds in that order (what :func:`.delivered.window_bound_below` compares).

    The compiled twin of delivered.py's loops (ext/_rules.pyx ``channel_onsets``) computes the same from the
    session's ``facts``, or hands back None for numbers beyond its 64-bit bounds (then this reference runs)."""
    twin = D._twin
    if twin is not None and facts is not None and len(facts) == len(trains):
        got = twin.channel_onsets(facts, threshold)
        if got is not None:
            return got
    out = []
    for channel, cf in D.channel_facts(trains, shapes, facts).items():
        live = [tf for tf in cf if tf.k_hi > tf.k_lo]
        if not live:
            continue
        items = D.onset_order(live)
        above = [i for i, tf in enumerate(live) if tf.first_ua > threshold]
        starts = []
        if above:
            continuing = _continuing(live, threshold, items)
            starts = [i for i in above if i not in continuing]
        total = 0.0
        for tf in live:
            total += tf.wbound
        out.append((channel, live, items, starts, total))
    return out


def _onsets(out: _Collector, resolved: ResolvedSession, facts: Sequence[D.TrainFacts], threshold: int,
            starts: Sequence[int]) -> None:
    """S012 for the trains at ``starts`` (positions in ``facts``: see :func:`channel_onsets`).

    A plan's weeks report the same few starts again and again (a channel's lines share its amplitude, capped
    progressions keep it): the message and hint are kept per the values they are made of (:func:`_s012_text`)
    and the related note per cycle span (:func:`_s012_note`), so each is built once."""
    memo = D.memo_enabled()
    for i in starts:
        tf = facts[i]
        use = _use(resolved, tf.index)
        tr = tf.train
        if not memo:   # the plain path the tests compare with
            msg, hint = _s012_text(use, tf, threshold)
            note = "the cycle run here has no ramp up" if tr.ramp_up_us == 0 else \
                "the cycle's ramp up is declared here"
            out.add("S012", msg, _span(use, "line", "cycle"),
                    related=[Related(note, use.spans["cycle"]) if use.spans.get("cycle") is not None else None],
                    hint=hint)
            continue
        if tr.ramp_up_us == 0:
            key: tuple = (use.channel, use.number, getattr(use, "cycle", ""), tf.first_ua, threshold, type(threshold))
        else:
            key = (use.channel, use.number, getattr(use, "cycle", ""), tf.first_ua, threshold, type(threshold),
                   tr.ramp_up_us, tr.period_num, tr.period_den, tf.k_lo, tf.first_off, use.frequency_hz)
        got = _S012_TEXT.get(key)
        if got is None:
            got = _s012_text(use, tf, threshold)
            if len(_S012_TEXT) >= 4096:
                _S012_TEXT.clear()
            _S012_TEXT[key] = got
        msg, hint = got
        cycle_span = use.spans.get("cycle")
        rel = _s012_note(tr.ramp_up_us == 0, cycle_span) if cycle_span is not None else None
        out.add("S012", msg, _span(use, "line", "cycle"), related=[rel], hint=hint)


def _s012_text(use: ChannelUse, tf: D.TrainFacts, threshold: int) -> tuple[str, str]:
    """The message and hint of S012 for a train whose first delivered pulse is above ``threshold``."""
    tr = tf.train
    if tr.ramp_up_us == 0:
        msg = f"output of {_ch(use)} starts at {_ma(tf.first_ua)} without a ramp (more than {_ma(threshold)})"
    else:
        period = Fraction(tr.period_num, tr.period_den)
        steps = _ramp_steps(tf)
        msg = (f"output of {_ch(use)} starts at {_ma(tf.first_ua)} (more than {_ma(threshold)}): the "
               f"{tr.ramp_up_us} µs ramp up delivers {steps} pulse(s) at {num(Fraction(use.frequency_hz))} Hz "
               f"(one period is {num(period)} µs), so the first delivered pulse, {tf.first_off} µs into the "
               "cycle, is already at that amplitude")
    return msg, s012_hint(use)


def _s012_note(no_ramp: bool, span) -> Related:
    """S012's related note at a cycle's span (one frozen object per span, shared by every week's finding)."""
    key = (no_ramp, id(span))
    got = _S012_NOTES.get(key)
    if got is not None and got[0] is span:
        return got[1]
    note = "the cycle run here has no ramp up" if no_ramp else "the cycle's ramp up is declared here"
    rel = Related(note, span)
    if len(_S012_NOTES) >= 4096:
        _S012_NOTES.clear()
    _S012_NOTES[key] = (span, rel)   # (holding the span keeps its id from being reused)
    return rel


#: S012's (message, hint) per the values they are made of; the related note per (ramp or not, cycle span)
_S012_TEXT: dict = {}
_S012_NOTES: dict = {}


def _ramp_steps(tf: D.TrainFacts) -> int:
    tr = tf.train
    k_up = D.first_slot(tr.period_num, tr.period_den, tr.ramp_up_us)
    return max(0, k_up - tf.k_lo)


def clear_memo() -> None:
    """Forget the S012 texts and notes kept across calls (``safety.clear_caches``)."""
    _S012_TEXT.clear()
    _S012_NOTES.clear()
