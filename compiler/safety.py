"""The safety rules of docs/safety.md (normative), judged on one resolved session.

Entry points:

* :func:`check_safety` — every rule of ``rules.py`` that is this module's (S001–S006, S008–S014, S016)
  applied to a :class:`~stimscript.compiler.model.ResolvedSession`; returns errors and warnings as
  :class:`~stimscript.errors.Diagnostic` (rule code, fixed severity, span at the offending value, a
  :class:`~stimscript.errors.Related` note at the other line involved). Identical findings are reported once.
* :func:`check_schedule_overlap` — S013 decided exactly on the lowered trains: two pulses overlapping on
  one channel (any device) or on different channels of a device with one shared current source.
* :func:`find_overlaps` — the same, as plain records (for tools).

Every quantity is computed the conservative way of docs/safety.md by :mod:`stimscript.compiler.energy`, in exact
rational arithmetic; thresholds are compared exactly ("exactly at the limit" passes, anything above fails).
S007 (param range) and S015 (plan) belong to the checker.

The rules live by seam: this module holds the per-channel-use rules and their memo; :mod:`.limits` the
protocol's ``limits`` block and the session-wide rules; :mod:`.overlap` the exact S013 sweep on the trains;
:mod:`.findings` the wording and collecting shared by all of them; :mod:`.delivered_rules` the rules measured on
the delivered pulses. Every name callers used from here is still importable from here.
"""
from __future__ import annotations

import gc
import itertools
import math
from fractions import Fraction

from ..errors import Diagnostic, Related
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from . import energy as E
from . import overlap as _overlap
from .findings import (_area, _ch, _Collector, _duration, _ma, _Recorder, _related_electrode, _round_sig,  # noqa: F401
                       _seconds, _span, _span_key, _week_suffix, fmt, num)
from .limits import (_DENSITY_SI, _LIMIT_ALIASES, _LIMIT_DIMS, MAX_SESSION_US,  # noqa: F401
                     _check_session, _density_limit, _limit_findings, _limit_name, _limit_ok_dim, _limit_text,
                     _limit_value_text, _loosens, _related_limit, _smaller_index, _violates)
from .model import ChannelUse, ResolvedSession
from .overlap import (MAX_CYCLE_SLOTS, Overlap, _bound_components, _check_trains, _clusters,  # noqa: F401
                      _dedupe_overlaps, _earlier_overlapping, _no_single_overlap, _report_overlaps,
                      _single_train_overlap, _sweep, _sweep_memo, _sweep_window, _TrainPulses,
                      check_schedule_overlap, find_overlaps, train_cycle_offsets)
from .rules import s012_hint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

#: S012: a channel use whose cycle starts at full output (no ramp up) warns above this amplitude (µA).
#: 10 mA: below it NMES output is at most a sensory-level tingle; above it an abrupt start is a jolt.
RAMP_WARN_THRESHOLD_UA = 10_000


# --- the entry point ----------------------------------------------------------------------------
def check_safety(resolved: ResolvedSession, profile: DeviceProfile = LOOPBACK_PROFILE, *,
                 show_week: Optional[bool] = None,
                 ramp_threshold_ua: int = RAMP_WARN_THRESHOLD_UA,
                 schedule: bool = True) -> list[Diagnostic]:
    """Every applicable safety rule on one resolved session; errors and warnings, deduplicated.

    ``show_week`` forces (or suppresses) the " (week N)" suffix; by default it is shown when
    ``resolved.week > 1`` or the session object says its plan has more than one week (``plan_weeks``).
    ``schedule=False`` skips the exact train-level overlap check (S013 across trains / channels).

    The per-use rules are memoised (see :func:`set_cache_enabled`): a channel use's findings depend only on
    its values (channel name and number, amplitude, frequency, shape, electrode names and areas, whether
    its cycle starts without a ramp) and on the session's context (profile, limits, ``allow monophasic``,
    the ramp threshold); spans, related notes and the week suffix are attached per use when replayed.
    """
    if not gc.isenabled():
        return _check_safety(resolved, profile, show_week, ramp_threshold_ua, schedule)
    # The cyclic garbage collector is paused meanwhile: the rules allocate a few small objects per train (facts,
    # keys) while every week's resolved session is alive, and each collection pass would walk all of them again
    # (at 20,000 lines most of the check's time, growing faster than the input). Nothing here makes reference
    # cycles; reference counting frees the rest as before.
    gc.disable()
    try:
        return _check_safety(resolved, profile, show_week, ramp_threshold_ua, schedule)
    finally:
        gc.enable()


def _check_safety(resolved: ResolvedSession, profile: DeviceProfile, show_week: Optional[bool],
                  ramp_threshold_ua: int, schedule: bool) -> list[Diagnostic]:
    out = _Collector(_week_suffix(resolved, show_week))
    ctx = _Context(resolved, profile, ramp_threshold_ua)
    flagged: set[int] = set()
    if _CACHE["enabled"]:
        from .delivered import _twin   # (the compiled twin of the rules' loops, when delivered.py selected it)

        try:
            ck: Optional[int] = ctx.memo_key()
        except TypeError:   # something unhashable: every use goes to _memo_use, which computes it directly
            ck = None
        uses = resolved.uses
        # every use's result first (the rules read nothing the replay writes), then the findings in use order
        results = (_twin.use_results if _twin is not None else use_results)(uses, {}, _GROUPS, ck, ctx, _memo_use,
                                                                            _NO_FINDINGS)
        for k, (findings, spacing) in results:
            use = uses[k]
            if findings:
                _replay(out, resolved, use, findings)
            if spacing:
                flagged.add(use.number)
    else:
        for use in resolved.uses:
            findings, spacing = _use_result(ctx, use)
            _replay(out, resolved, use, findings)
            if spacing:
                flagged.add(use.number)
    _check_session(out, resolved, profile)
    if resolved.shapes:
        from .encodable import encodable_findings

        encodable_findings(out, resolved, profile)
    facts = None
    if resolved.trains and (ctx.delivered or schedule) and _CACHE["enabled"]:
        from .delivered import session_facts

        facts = session_facts(resolved.trains, resolved.shapes)  # shared by both passes
    if ctx.delivered and resolved.trains:
        from .delivered_rules import delivered_findings

        delivered_findings(out, resolved, profile, ramp_threshold_ua, facts)
    if schedule and resolved.trains:
        _check_trains(out, resolved, profile, skip_same_channel=flagged, facts=facts)
    return out.items


def use_results(uses, local: dict, groups: dict, ck: Optional[int], ctx: "_Context", memo_use,
                no_findings: tuple) -> list:
    """(position, (findings, spacing violation)) of every use of ``uses`` with a finding or a violation, in order.

    A use's result is the one of an earlier use of this call with the same identities (its shape, electrodes,
    amplitude and frequency objects, while the session holds them) and values (channel, number and its type,
    whether its cycle starts without a ramp), kept in ``local``; else no finding when the verdict kept across
    weeks for its amplitude-free identities (``groups``, see :func:`_memo_use`; ``ck`` the context's number,
    None: not looked at) finds its amplitude clean (``no_findings``); else ``memo_use(ctx, use, no_ramp)``. The
    reference of the compiled twin ``ext/_rules.pyx use_results`` (a check walks every use of every week)."""
    out = []
    k = -1
    for use in uses:
        k += 1
        no_ramp = use.ramp_up_us == 0 and use.on_us > 0
        shape, electrodes, f, a, number = use.shape, use.electrodes, use.frequency_hz, use.amplitude_ua, use.number
        channel = use.channel
        lk = (id(shape), id(electrodes), channel, type(number), number, id(a), id(f), no_ramp)
        res = local.get(lk)
        if res is None:
            res = _group_clean(groups, ck, shape, electrodes, f, channel, number, no_ramp, a, no_findings)
            if res is None:
                res = memo_use(ctx, use, no_ramp)
            local[lk] = res
        if res[0] or res[1]:
            out.append((k, res))
    return out


def _group_clean(groups: dict, ck: Optional[int], shape, electrodes, f, channel, number, no_ramp, a,
                 no_findings: tuple):
    """``no_findings`` when the verdict kept for these amplitude-free identities finds amplitude ``a`` clean;
    else None (``_memo_use`` decides)."""
    if ck is None:
        return None
    try:
        got = groups.get((ck, id(shape), id(electrodes), id(f), channel, type(number), number, no_ramp))
        if got is not None and got[0] is shape and got[1] is electrodes and got[2] is f and got[4] is not None \
                and got[4].clean(a):
            return no_findings
    except TypeError:   # as _memo_use: it computes such a use directly
        return None
    return None


# --- memo of the per-use rules ------------------------------------------------------------------
_CACHE = {"enabled": True}
_USE_MEMO: dict = {}
_USE_MEMO_MAX = 20_000


def set_cache_enabled(enabled: bool) -> bool:
    """Turn every safety memo on or off (per-use findings, shape aggregates, overlap results); returns the
    previous setting. Results are identical either way; tests compare the two paths."""
    before = _CACHE["enabled"]
    _CACHE["enabled"] = bool(enabled)
    E.set_memo_enabled(enabled)
    _overlap.set_memo_enabled(enabled)
    from . import delivered

    delivered.set_memo_enabled(enabled)
    clear_caches()
    return before


def clear_caches() -> None:
    """Forget every memoised safety result."""
    _USE_MEMO.clear()
    _VERDICTS.clear()
    _GROUPS.clear()
    _PARTS.clear()
    _overlap.clear_memo()
    E.clear_memo()
    from . import delivered, delivered_rules

    delivered.clear_memo()
    delivered_rules.clear_memo()
    _CTX_KEYS.clear()


class _Context:
    """What every channel use of one check_safety call shares: profile, limits, allow flag, threshold."""

    __slots__ = ("profile", "allow", "threshold", "limits", "key", "delivered", "parts", "_vlimits")

    def __init__(self, resolved: ResolvedSession, profile: DeviceProfile, threshold):
        self.profile = profile
        # the session's trains are tied to its uses: rate, window and onset rules are measured on the pulses
        tu = getattr(resolved, "train_uses", None)
        self.delivered = tu is not None and len(tu) == len(resolved.trains)
        self.allow = bool(resolved.allow_monophasic)
        self.threshold = threshold
        self.limits = tuple(resolved.limits)
        self.key: Optional[int] = None
        self.parts = _PARTS       # id(shape) / id(electrodes) -> (the object, its number in _PART_IDS)
        self._vlimits: Optional[list] = None

    def verdict_limits(self) -> list:
        """(limit, name, is max, value, value in the unit the rule compares) of every limit a use's S006 reads
        (see _limit_findings: a wrong dimension is reported once by the session rules; ``max density`` is
        decided on the delivered pulses when they are measured), computed once per call."""
        got = self._vlimits
        if got is None:
            got = []
            for limit in self.limits:
                name = _limit_name(limit)
                if self.delivered and limit.bound == "max" and name == "density":
                    continue
                if not _limit_ok_dim(limit):
                    continue
                v = limit.value
                lim = (v.in_unit("uA") if name == "current" else v.in_unit("us") if name == "pulse width"
                       else v.in_unit("uC") if name == "charge" else _density_limit(v) if name == "density"
                       else v.value)
                got.append((limit, name, limit.bound == "max", v, lim))
            self._vlimits = got
        return got

    def memo_key(self) -> int:
        """The context's values as a number (see :func:`_part_id`)."""
        if self.key is None:
            # every week of a plan checks with the same profile and limit objects: their number is kept per
            # their identities (the entry holds them, so no id is reused while it is there; they are frozen)
            ik = (id(self.profile), self.allow, self.threshold, type(self.threshold), self.delivered,
                  tuple([id(lim) for lim in self.limits]))
            ent = _CTX_KEYS.get(ik)
            if ent is not None and ent[0] is self.profile and all([a is b for a, b in zip(ent[1], self.limits)]):
                self.key = ent[2]
                return ent[2]
            # limit values with their number types (an int and a Fraction print differently); spans are
            # not part of the key (related notes are re-attached from the session's own limits)
            lims = tuple((lim.bound, lim.quantity, lim.value, type(getattr(lim.value, "value", None)))
                         for lim in self.limits)
            key = _part_id(("ctx", self.profile, self.allow, self.threshold, type(self.threshold), lims,
                            self.delivered))
            self.key = key
            if len(_CTX_KEYS) >= 256:
                _CTX_KEYS.clear()
            _CTX_KEYS[ik] = (self.profile, self.limits, key)
            return key
        return self.key

    def shape_key(self, shape) -> int:
        """The shape's values and number types as a number (memoised per shape object across calls: the weeks of
        a plan share their shape objects; a frozen shape with a tuple of phases cannot change while the memo
        holds it, and holding it keeps its id from being reused)."""
        ent = self.parts.get(id(shape))
        if ent is None or ent[0] is not shape:
            key = _part_id(
                ("shape", shape.kind, tuple(shape.phases), tuple((type(d), type(r)) for d, r in shape.phases)))
            if type(shape.phases) is not tuple:
                return key
            _keep_parts_small(self.parts)
            ent = self.parts[id(shape)] = (shape, key)
        return ent[1]

    def electrodes_key(self, electrodes) -> int:
        """The electrodes' names, areas and area types as a number (memoised per tuple object across calls, as
        :meth:`shape_key`)."""
        ent = self.parts.get(id(electrodes))
        if ent is None or ent[0] is not electrodes:
            key = _part_id(("electrodes",) + tuple((e.name, e.area_cm2, type(e.area_cm2)) for e in electrodes))
            if type(electrodes) is not tuple:
                return key
            _keep_parts_small(self.parts)
            ent = self.parts[id(electrodes)] = (electrodes, key)
        return ent[1]


#: id(shape) / id(electrodes) -> (the object, its number in _PART_IDS), across calls (see _Context.shape_key)
_PARTS: dict = {}
#: the identities of a context's profile and limits (and its plain values) -> (the profile, the limits, the
#: context's number), across calls (see _Context.memo_key)
_CTX_KEYS: dict = {}


def _keep_parts_small(parts: dict) -> None:
    if len(parts) >= 4096:
        parts.clear()


#: memo key parts -> a number standing for them (never reused for other values, even after a clear), so that
#: the per-use memo keys hash as a few ints
_PART_IDS: dict = {}
_NEXT_PART = itertools.count()


def _part_id(part: tuple) -> int:
    got = _PART_IDS.get(part)
    if got is None:
        if len(_PART_IDS) >= 1 << 16:
            _PART_IDS.clear()
        got = _PART_IDS[part] = next(_NEXT_PART)
    return got


def _memo_use(ctx: _Context, use: ChannelUse, no_ramp: bool):
    """(findings, spacing violation) of ``use``, memoised on the values its findings depend on.

    Every rule of a use either does not read the amplitude or fires on one side of an exact threshold of the
    amplitude ``A`` or of ``A²`` (see :class:`_Verdict`). Per amplitude-free values the thresholds are computed
    once; an amplitude between them has no finding at all and costs a few comparisons (the weeks of a plan
    that raise an amplitude step by step, and every use of week 1 that is far from a limit). Any other
    amplitude is computed the plain way and memoised on its exact value."""
    try:
        f = use.frequency_hz
        shape, electrodes = use.shape, use.electrodes
        # the weeks of a plan hand the same shape, electrode and frequency objects to a channel's uses: its
        # value key and verdict are kept per their identities (the entry holds the objects, so no id is reused)
        gk = (ctx.memo_key(), id(shape), id(electrodes), id(f), use.channel, type(use.number), use.number,
              no_ramp)
        got = _GROUPS.get(gk)
        if got is not None and got[0] is shape and got[1] is electrodes and got[2] is f:
            free, verdict = got[3], got[4]
        else:
            fk = (f.numerator, f.denominator) if type(f) is Fraction else (type(f), f)
            free = (gk[0], use.channel, type(use.number), use.number, fk, ctx.shape_key(shape),
                    ctx.electrodes_key(electrodes), no_ramp)
            verdict = _VERDICTS.get(free, _UNKNOWN)
            if verdict is _UNKNOWN:
                verdict = _verdict(ctx, use, no_ramp)
                if len(_VERDICTS) >= _USE_MEMO_MAX:
                    _VERDICTS.clear()
                _VERDICTS[free] = verdict
            if type(shape.phases) is tuple and type(electrodes) is tuple and type(use.number) is int:
                if len(_GROUPS) >= _USE_MEMO_MAX:
                    _GROUPS.clear()
                _GROUPS[gk] = (shape, electrodes, f, free, verdict)
        a = use.amplitude_ua
        if verdict is not None and verdict.clean(a):
            return _NO_FINDINGS
        key = (free, type(a), a)
        res = _USE_MEMO.get(key)
    except TypeError:  # something unhashable or incomparable: compute directly
        return _use_result(ctx, use)
    if res is None:
        res = _use_result(ctx, use)
        if len(_USE_MEMO) >= _USE_MEMO_MAX:
            _USE_MEMO.clear()
        _USE_MEMO[key] = res
    return res


_NO_FINDINGS: tuple = ((), False)
#: (context number, identities of a use's shape, electrodes and frequency, its channel, number and its type, no
#: ramp) -> (those objects, the use's amplitude-free value key, its verdict), across calls (see _memo_use)
_GROUPS: dict = {}
_UNKNOWN = object()
#: amplitude-free use values -> their _Verdict (None: a finding that does not depend on the amplitude)
_VERDICTS: dict = {}


class _Verdict:
    """The amplitudes without any finding for one use's amplitude-free values, as exact bounds.

    ``lo <= A <= hi`` (S002's device maximum and 0 µA, S006 ``current``/``charge``/``voltage``, S012),
    ``lo2 <= A² <= hi2`` (S006 ``density``, S008, S009, S010; None: no bound) and Shannon's k at most 1.85
    (S011: ``(A²·s)^20 <= 10^37``, k = log10(Q²/area) at most 37/20). Each bound is the rule's own comparison
    solved for ``A`` or ``A²`` in rational arithmetic (every factor is positive), so ``clean`` is exact, not an
    estimate; the tests compare it with the plain rules. Bounds are kept as integer pairs (numerator,
    denominator > 0) and compared by cross-multiplication, which is what Fraction's comparison computes."""

    __slots__ = ("lo", "hi", "lo2", "hi2", "shannon", "ok2", "bad2", "_sn", "_sd")

    def __init__(self, lo: tuple[int, int], hi: tuple[int, int], lo2: Optional[tuple[int, int]],
                 hi2: Optional[tuple[int, int]], shannon: Optional[Fraction]):
        self.lo = _reduced(lo)
        self.hi = _reduced(hi)
        self.lo2 = _reduced(lo2) if lo2 is not None else None
        self.hi2 = _reduced(hi2) if hi2 is not None else None
        self.shannon = shannon
        # its numerator and denominator as ints (a Fraction's are properties: read once, not per amplitude)
        self._sn, self._sd = (shannon.numerator, shannon.denominator) if shannon is not None else (0, 1)
        self.ok2: Optional[tuple[int, int]] = None    # the largest A² known to keep k <= 1.85
        self.bad2: Optional[tuple[int, int]] = None   # the smallest A² known to exceed it

    def clean(self, a) -> bool:
        t = type(a)
        if t is Fraction:
            p, q = a.numerator, a.denominator
        elif t is int:
            p, q = a, 1
        else:
            return False
        n, d = self.lo
        if p * d < n * q:
            return False
        n, d = self.hi
        if p * d > n * q:
            return False
        p2, q2 = p * p, q * q
        b = self.lo2
        if b is not None and p2 * b[1] < b[0] * q2:
            return False
        b = self.hi2
        if b is not None and p2 * b[1] > b[0] * q2:
            return False
        s = self.shannon
        if s is None:
            return True
        b = self.ok2
        if b is not None and p2 * b[1] <= b[0] * q2:
            return True
        b = self.bad2
        if b is not None and p2 * b[1] >= b[0] * q2:
            return False
        # Q²/area = x = A²·s; k > p/q iff x^q > 10^p (E.shannon_k_exceeds). A float x (int / int: correctly
        # rounded, relative error below 2^-53) far from the threshold decides it; near it, the exact powers do
        try:
            xf = (p2 * self._sn) / (q2 * self._sd)
        except OverflowError:
            xf = _K_FLOAT * 2
        if xf < _K_FLOAT_LOW:
            exceeds = False
        elif xf > _K_FLOAT_HIGH:
            exceeds = True
        else:
            x = Fraction(p2, q2) * s
            exceeds = x.numerator ** _K_DEN > _K_POW * x.denominator ** _K_DEN
        if exceeds:
            b = self.bad2
            if b is None or p2 * b[1] < b[0] * q2:
                self.bad2 = (p2, q2)
            return False
        b = self.ok2
        if b is None or p2 * b[1] > b[0] * q2:
            self.ok2 = (p2, q2)
        return True


_K_DEN = E.MAX_SHANNON_K.denominator
_K_POW = 10 ** E.MAX_SHANNON_K.numerator
#: 10^(37/20) as a float (within an ulp), and the margins outside which a float Q²/area decides S011 for sure
_K_FLOAT = 10 ** float(E.MAX_SHANNON_K)
_K_FLOAT_LOW = _K_FLOAT * (1 - 1e-9)
_K_FLOAT_HIGH = _K_FLOAT * (1 + 1e-9)


# A bound is an exact rational as an integer pair (numerator, denominator > 0); pairs are compared by
# cross-multiplication (what Fraction's comparison computes, without its type checks and normalisation).
def _q(x) -> Optional[tuple[int, int]]:
    """An int or Fraction as a pair; None for any other type (then the plain rules decide every amplitude)."""
    t = type(x)
    if t is int:
        return (x, 1)
    if t is Fraction:
        return (x.numerator, x.denominator)
    return None


def _lt(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] * b[1] < b[0] * a[1]


def _min(a: Optional[tuple[int, int]], b: tuple[int, int]) -> tuple[int, int]:
    """min(a, b) (a when equal; b when a is None: no bound yet)."""
    return b if a is None or b[0] * a[1] < a[0] * b[1] else a


def _max(a: Optional[tuple[int, int]], b: tuple[int, int]) -> tuple[int, int]:
    """max(a, b) (a when equal; b when a is None: no bound yet)."""
    return b if a is None or b[0] * a[1] > a[0] * b[1] else a


def _reduced(pair: tuple[int, int]) -> tuple[int, int]:
    g = math.gcd(pair[0], pair[1])
    return (pair[0] // g, pair[1] // g)


def _violates_q(bound: str, measured: tuple[int, int], limit: tuple[int, int]) -> bool:
    """limits._violates on pairs."""
    return _lt(limit, measured) if bound == "max" else _lt(measured, limit)


#: S008: A² at most MAX_ENERGY_MJ / (µs³·Ω·1000·Σ dᵢ·rᵢ²): this constant over Σ dᵢ·rᵢ² (in µs)
_S008 = E.MAX_ENERGY_MJ / (E._US * E._US * E.LOAD_OHM * E._US * 1000)
#: S010: A² at most MAX_POWER_DENSITY_W_CM2·10⁶·area / (Ω·j): this constant times area / j
_S010 = E.MAX_POWER_DENSITY_W_CM2 * 10**6 / E.LOAD_OHM
#: V per µA into the reference load (1/2000)
_VOLT = E._US * E.LOAD_OHM


def _verdict(ctx: _Context, use: ChannelUse, no_ramp: bool) -> Optional[_Verdict]:
    """The :class:`_Verdict` of ``use``'s amplitude-free values; None when a finding does not depend on the
    amplitude (or a value is not an exact int/Fraction: then every amplitude is computed the plain way).
    Mirrors :func:`_use_findings` rule by rule, in exact integer-pair arithmetic (:func:`_q`)."""
    fq = _q(use.frequency_hz)
    thq = _q(ctx.threshold)
    if fq is None or thq is None or any(type(e.area_cm2) not in (int, Fraction) for e in use.electrodes):
        return None
    fn, fd = fq
    shape = use.shape
    facts = E.shape_facts(shape)
    profile = ctx.profile
    # the rules that do not read the amplitude
    if facts.net_ratio > E.MAX_NET_CHARGE_RATIO and not ctx.allow:                                   # S001
        return None
    if facts.current and facts.short is not None and facts.long is not None and (
            facts.short[1] < profile.min_phase_us or facts.long[1] > profile.max_phase_us):          # S003
        return None
    rate = _q(profile.max_rate_hz)
    mc = _q(profile.max_current_ua)
    if rate is None or mc is None:
        return None
    if fn <= 0 or fn * rate[1] > rate[0] * fd:                                                      # S004
        return None
    if use.number < 1 or use.number > profile.channels:                                             # S005
        return None
    if _same_channel_spacing_violation(use):                                                        # S013
        return None
    pfq = _q(facts.peak_factor)                   # >= 1
    mq = _q(facts.max_rd) if facts.max_rd is not None else (0, 1)     # Q = |A|·m·10⁻⁶ µC
    sq = _q(facts.sq_sum_us)                      # Σ dᵢ·rᵢ² in µs
    if pfq is None or mq is None or sq is None or pfq[0] <= 0 or mq[0] < 0:
        return None
    pfn, pfd = pfq
    mn, md = mq
    sqn, sqd = sq[0], sq[1] * 10**6              # Σ dᵢ·rᵢ² in s
    lo = (0, 1)                                                   # S002: a negative amplitude
    hi = (mc[0] * pfd, mc[1] * pfn)                               # S002: peak = A·pf above the device maximum
    lo2: Optional[tuple[int, int]] = None
    hi2: Optional[tuple[int, int]] = None
    vn, vd = _VOLT.numerator, _VOLT.denominator                  # V per µA
    si = _smaller_index(use.electrodes)
    small = use.electrodes[si] if si is not None else None
    aq = _q(small.area_cm2) if small is not None else None
    for limit, name, mx, v, lim in ctx.verdict_limits():                                             # S006
        lq = _q(lim)
        if lq is None:
            return None
        ln, ld = lq
        if name == "current":
            if mx:
                hi = _min(hi, (ln * pfd, ld * pfn))
            else:
                lo = _max(lo, lq)
        elif name == "frequency":
            vq = _q(v.value)
            if vq is None or _violates_q(limit.bound, fq, vq):
                return None
        elif name == "pulse width":
            cur = facts.current
            if cur:
                measured = max(d for _, d, _ in cur) if mx else min(d for _, d, _ in cur)
                if type(measured) is not int or _violates_q(limit.bound, (measured, 1), lq):
                    return None
        elif name == "charge":
            if not mn:                        # no phase carries charge: Q = 0
                if _violates_q(limit.bound, (0, 1), lq):
                    return None
            elif mx:                          # A·m·10⁻⁶ <= lim
                hi = _min(hi, (ln * md * 10**6, ld * mn))
            else:
                lo = _max(lo, (ln * md * 10**6, ld * mn))
        elif name == "voltage":
            if mx:                            # A·pf·volt <= lim
                hi = _min(hi, (ln * pfd * vd, ld * pfn * vn))
            else:
                lo = _max(lo, (ln * vd, ld * vn))
        elif name == "density":
            if aq is None or aq[0] <= 0:
                continue
            an, ad = aq
            kn, kd = fn * sqn * ad * ad, fd * sqd * 10**6 * an * an    # (rms density)² = A²·k
            if mx:
                if ln < 0:
                    return None
                if kn > 0:
                    hi2 = _min(hi2, (ln * ln * kd, ld * ld * kn))
            elif ln > 0:
                if kn == 0:
                    return None
                lo2 = _max(lo2, (ln * ln * kd, ld * ld * kn))
    if sqn > 0:                                                                                     # S008
        hi2 = _min(hi2, (_S008.numerator * sq[1], _S008.denominator * sqn))
    shannon = None
    if aq is not None and aq[0] > 0:
        an, ad = aq
        jn, jd = fn * sqn, fd * sqd * 10**6       # rms current² (mA²) = A²·j
        if not ctx.delivered and jn > 0:
            hi2 = _min(hi2, (_S010.numerator * an * jd, _S010.denominator * ad * jn))                 # S010
            r = E.MAX_RMS_DENSITY_MA_CM2
            hi2 = _min(hi2, (r.numerator ** 2 * an * an * jd, r.denominator ** 2 * ad * ad * jn))     # S009
        if mn:                                                                                       # S011
            shannon = Fraction(mn * mn * ad, md * md * 10**12 * an)
    if no_ramp and not ctx.delivered:                                                               # S012
        hi = _min(hi, thq)
    return _Verdict(lo, hi, lo2, hi2, shannon)


def _use_result(ctx: _Context, use: ChannelUse):
    rec = _Recorder()
    spacing = _use_findings(rec, ctx, use)
    return tuple(rec.items), spacing



def _replay(out: _Collector, resolved: ResolvedSession, use: ChannelUse, findings) -> None:
    for code, message, keys, hint, related, week in findings:
        rel = []
        for spec in related:
            kind = spec[0]
            if kind == "elec":
                rel.append(_related_electrode(use.electrodes[spec[1]]))
            elif kind == "limit":
                rel.append(_related_limit(resolved.limits[spec[1]]))
            else:
                rel.append(Related(spec[1], use.spans[spec[2]]) if use.spans.get(spec[2]) is not None else None)
        out.add(code, message, _span(use, *keys), hint=hint, related=rel, week=week)


def _same_channel_spacing_violation(use: ChannelUse) -> bool:
    f = use.frequency_hz
    if type(f) is not int:
        f = Fraction(f)
        if f <= 0:
            return False
        # floor(10⁶ / (n/d)) = floor(10⁶·d / n), n > 0
        return use.shape.duration_us > (10**6 * f.denominator) // f.numerator
    if f <= 0:
        return False
    return use.shape.duration_us > 10**6 // f



def _use_findings(out: _Recorder, ctx: _Context, use: ChannelUse) -> bool:
    """Record the per-use findings; returns whether the pulse is longer than its slot spacing (S013)."""
    profile = ctx.profile
    ramp_threshold_ua = ctx.threshold
    shape = use.shape
    facts = E.shape_facts(shape)
    a = Fraction(use.amplitude_ua)
    f = Fraction(use.frequency_hz)
    kind = shape.kind or "custom"
    cur = facts.current

    # S001 net charge ---------------------------------------------------------------------------
    ratio = facts.net_ratio
    if ratio > E.MAX_NET_CHARGE_RATIO and not ctx.allow:
        net = E.net_charge_uc(a, shape)
        first = E.phase_charges_uc(a, shape)[0] if shape.phases else Fraction(0)
        out.add("S001",
                f"{kind} pulse of {_ch(use)} is not charge balanced: net charge {num(abs(net))} µC per pulse "
                f"is {num(ratio * 100, differ_from=1)} % of the first phase's {num(first)} µC, above 1 %",
                ("pulse",),
                hint="use a biphasic (or balanced asymmetric/custom) pulse, or state `allow monophasic` "
                     "if direct current is intended and supervised")

    # S002 amplitude vs device ----------------------------------------------------------------------
    peak = E.peak_current_ua(a, shape)
    if a < 0:
        out.add("S002", f"amplitude {_ma(a)} of {_ch(use)} is negative; the device delivers 0 to "
                        f"{_ma(profile.max_current_ua)}", ("amplitude",))
    elif peak > profile.max_current_ua:
        what = (f"amplitude {_ma(a)}" if peak == a
                else f"peak current {_ma(peak)} (amplitude {_ma(a)} × {num(peak / a)} in a phase)")
        out.add("S002", f"{what} of {_ch(use)} exceeds the device maximum {_ma(profile.max_current_ua)} "
                        f"(device `{profile.name}`)", ("amplitude",))

    # S003 phase durations vs device ------------------------------------------------------------------
    if cur and facts.short is not None and facts.long is not None:   # both set when a phase carries current
        i_short, d_short = facts.short
        i_long, d_long = facts.long
        if d_short < profile.min_phase_us:
            out.add("S003", f"phase {i_short + 1} of the {kind} pulse of {_ch(use)} lasts {d_short} µs, shorter "
                            f"than the device minimum {profile.min_phase_us} µs (device `{profile.name}`)",
                    ("pulse",))
        if d_long > profile.max_phase_us:
            out.add("S003", f"phase {i_long + 1} of the {kind} pulse of {_ch(use)} lasts {d_long} µs, longer "
                            f"than the device maximum {profile.max_phase_us} µs (device `{profile.name}`)",
                    ("pulse",))

    # S004 frequency vs device ------------------------------------------------------------------------
    if f <= 0:
        out.add("S004", f"frequency {num(f)} Hz of {_ch(use)} is not a positive slot rate", ("frequency",))
    elif f > profile.max_rate_hz:
        out.add("S004", f"frequency {num(f, differ_from=profile.max_rate_hz)} Hz of {_ch(use)} exceeds the device "
                        f"maximum slot rate {profile.max_rate_hz} Hz (device `{profile.name}`)",
                ("frequency",))

    # S005 channel number vs device -------------------------------------------------------------------
    if use.number < 1 or use.number > profile.channels:
        out.add("S005", f"channel `{use.channel}` uses output {use.number}; the device has outputs 1 to "
                        f"{profile.channels} (device `{profile.name}`)", ("channel",))

    # S006 the protocol's limits ----------------------------------------------------------------------
    q = E.max_phase_charge_uc(a, shape)
    for li, limit in enumerate(ctx.limits):
        if ctx.delivered and limit.bound == "max" and _limit_name(limit) == "density":
            continue  # measured on the delivered pulses
        _limit_findings(out, use, limit, li, a, f, facts, peak, q)

    # S008 energy per pulse ---------------------------------------------------------------------------
    energy = E.energy_per_pulse_mj(a, shape)
    if energy > E.MAX_ENERGY_MJ:
        out.add("S008", f"energy per pulse {num(energy, differ_from=300)} mJ into 500 Ω on {_ch(use)} "
                        f"exceeds 300 mJ (amplitude {_ma(a)}, {kind} pulse of {shape.active_us} µs of current)",
                ("amplitude",),
                hint="lower the amplitude or shorten the pulse (IEC 60601-2-10)")

    # S009 / S010 / S011 densities on the smaller electrode -------------------------------------------
    si = _smaller_index(use.electrodes)
    small = use.electrodes[si] if si is not None else None
    if small is not None and Fraction(small.area_cm2) > 0 and f > 0:
        area = Fraction(small.area_cm2)
        rel = ("elec", si)
        where = f"on electrode `{small.name}` ({_area(area)})"
        if not ctx.delivered:  # else S009/S010 are decided on the delivered pulses (delivered_findings)
            i2 = E.rms_current_sq_ma2(a, f, shape)
            irms = math.sqrt(i2)

            def basis() -> str:
                return f"{_ma(a)} full amplitude at {num(f)} Hz, {kind} pulse, rms {num(irms)} mA"

            pd = i2 / 10**6 * E.LOAD_OHM / area  # E.power_density_w_cm2(a, f, shape, area), i2 reused
            if pd > E.MAX_POWER_DENSITY_W_CM2:
                min_area = i2 / 10**6 * E.LOAD_OHM / E.MAX_POWER_DENSITY_W_CM2
                max_a = a * math.sqrt(E.MAX_POWER_DENSITY_W_CM2 / pd)
                out.add("S010", f"power density {num(pd, differ_from=Fraction(1, 4))} W/cm² {where} exceeds "
                                f"0.25 W/cm²",
                        ("amplitude",), related=[rel],
                        hint=f"{basis()}, 500 Ω; use electrodes of at least {num(min_area)} cm² or an amplitude "
                             f"of at most {num(Fraction(max_a) / 1000)} mA on `{small.name}`")
            if i2 > (E.MAX_RMS_DENSITY_MA_CM2 * area) ** 2:
                dens = math.sqrt(i2) / float(area)
                out.add("S009", f"rms current density {num(dens, differ_from=2)} mA/cm² {where} exceeds 2 mA/cm²",
                        ("amplitude",), related=[rel],
                        hint=f"{basis()}; IEC 60601-2-10 asks for operator attention above 2 mA/cm²: "
                             f"consider larger electrodes")
        if E.shannon_k_exceeds(q, area):
            k = E.shannon_k(q, area)
            out.add("S011", f"Shannon k = {num(k, differ_from=Fraction(37, 20))} {where} exceeds 1.85 "
                            f"(charge {num(q)} µC per phase)",
                    ("amplitude",), related=[rel],
                    hint=f"k ≤ 1.85 needs at most {num(E.shannon_max_charge_uc(area))} µC per phase on "
                         f"{_area(area)} (Shannon 1992, derived for implanted electrodes)")

    # S012 abrupt start -------------------------------------------------------------------------------
    if use.ramp_up_us == 0 and use.on_us > 0 and a > ramp_threshold_ua and not ctx.delivered:
        out.add("S012", f"output of {_ch(use)} starts at {_ma(a)} without a ramp (more than "
                        f"{_ma(ramp_threshold_ua)})",
                ("line", "cycle"),
                related=[("use", "the cycle run here has no ramp up", "cycle")],
                hint=s012_hint(use))

    # S013 pulse longer than its slot spacing -----------------------------------------------------------
    violation = _same_channel_spacing_violation(use)
    # a pulse too long or a rate too high for the device is the cause; the overlap is its consequence,
    # so the device-limit error (at the line to change) is the one reported
    if violation and not any(item[0] in ("S003", "S004") for item in out.items):
        spacing = math.floor(Fraction(10**6) / f)
        out.add("S013", f"the {kind} pulse of {_ch(use)} lasts {shape.duration_us} µs, longer than the "
                        f"{spacing} µs between slots at {num(f)} Hz: consecutive pulses would overlap",
                ("pulse",),
                related=[("use", f"frequency {num(f)} Hz is set here", "frequency")],
                hint="shorten the pulse or lower the frequency")
    return violation
