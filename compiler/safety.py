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
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Optional, Sequence

from ..errors import Diagnostic, Related
from ..profile import LOOPBACK_PROFILE, DeviceProfile
from ..spans import Span
from ..units import CHARGE, COUNT, CURRENT, FREQUENCY, TIME, VOLTAGE, Quantity, dim_name, format_number
from . import energy as E
from .ir import PulseShape, Train
from .model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from .rules import RULES, s012_hint

if TYPE_CHECKING:  # numpy is imported where used, to keep `check` start-up light
    import numpy as np

#: S012: a channel use whose cycle starts at full output (no ramp up) warns above this amplitude (µA).
#: 10 mA: below it NMES output is at most a sensory-level tingle; above it an abrupt start is a jolt.
RAMP_WARN_THRESHOLD_UA = 10_000

#: S014: the longest session the compiler accepts (µs)
MAX_SESSION_US = 24 * 3600 * 10**6

#: current density (A/m², SI) expressed in mA/cm²
_DENSITY_SI = (0, 1, 0, -2)

_LIMIT_ALIASES = {
    "amplitude": "current", "pulse_width": "pulse width", "phase width": "pulse width",
    "width": "pulse width", "session": "duration", "channel": "channels",
}
_LIMIT_DIMS = {
    "current": CURRENT, "frequency": FREQUENCY, "pulse width": TIME, "charge": CHARGE, "duration": TIME,
    "channels": COUNT, "voltage": VOLTAGE, "density": _DENSITY_SI,
}


# --- formatting ------------------------------------------------------------------------------------
def fmt(value, sig: int = 3, *, differ_from=None) -> str:
    """``value`` with ``sig`` significant digits, plain decimal notation.

    When ``differ_from`` is given and the rounded text would read as exactly that number (while the value is
    not), more digits are shown: "2.0004 mA/cm² exceeds 2 mA/cm²", never "2 exceeds 2".
    """
    exact_value = value if isinstance(value, Fraction) else None
    x = float(value)
    if math.isinf(x) or math.isnan(x):
        return str(x)
    if exact_value is not None and exact_value.denominator == 1 and abs(exact_value) < 10**15:
        return str(exact_value.numerator)
    text = "0"
    for digits in range(sig, 16):
        text = _round_sig(x, digits)
        if differ_from is None or Fraction(text) != Fraction(differ_from) or x == float(differ_from):
            break
    return text


def _round_sig(x: float, digits: int) -> str:
    if x == 0:
        return "0"
    d = Decimal(repr(x))
    q = round(d, max(0, digits - d.adjusted() - 1))  # never round away integer digits
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _ma(ua) -> str:
    return num(Fraction(ua) / 1000) + " mA"


def num(value, sig: int = 3, *, differ_from=None) -> str:
    """An exact decimal when ``value`` has one with at most 6 decimals (8.414, 300.006), else :func:`fmt`."""
    if isinstance(value, Fraction):
        scaled = value * 10**6
        if scaled.denominator == 1:
            return format_number(value)
    return fmt(value, sig, differ_from=differ_from)


def _area(a) -> str:
    return format_number(Fraction(a), 2) + " cm²"


def _seconds(us: int) -> str:
    return format_number(Fraction(us, 10**6)) + " s"


def _duration(us: int) -> str:
    """A session length for humans: '30 min', '25 h 0 min 1 s', '45 s'."""
    s = Fraction(us, 10**6)
    if s >= 3600:
        h, rest = divmod(s, 3600)
        m, sec = divmod(rest, 60)
        out = f"{int(h)} h"
        if m or sec:
            out += f" {int(m)} min"
        if sec:
            out += f" {format_number(sec)} s"
        return out
    if s >= 60 and s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{format_number(s)} s"


# --- collecting ---------------------------------------------------------------------------------
class _Collector:
    def __init__(self, suffix: str):
        self.suffix = suffix
        self.items: list[Diagnostic] = []
        self._seen: set = set()

    def add(self, code: str, message: str, span: Optional[Span] = None, *, hint: Optional[str] = None,
            related: Iterable[Related] = (), week: bool = True) -> None:
        rel = tuple(r for r in related if r is not None and r.span is not None and r.span != span)
        key = (code, message, _span_key(span))
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(Diagnostic(code, message + (self.suffix if week else ""), span, severity=RULES[code].severity,
                                     hint=hint, related=rel))


def _span_key(span: Optional[Span]):
    if span is None:
        return None
    return (span.file, span.line, span.column, span.end_line, span.end_column)


def _span(use: ChannelUse, *keys: str) -> Optional[Span]:
    for key in (*keys, "line", "channel"):
        span = use.spans.get(key) if use.spans else None
        if span is not None:
            return span
    return None


def _related_electrode(e: ElectrodeInfo) -> Optional[Related]:
    if e.span is None:
        return None
    return Related(f"electrode `{e.name}` ({_area(e.area_cm2)}) is declared here", e.span)


def _related_limit(limit: LimitValue) -> Optional[Related]:
    if limit.span is None:
        return None
    return Related(f"the protocol's limit `{_limit_text(limit)}` is set here", limit.span)


def _week_suffix(resolved: ResolvedSession, show_week: Optional[bool]) -> str:
    if show_week is None:
        plan_weeks = getattr(resolved, "plan_weeks", None) or getattr(resolved, "weeks", None) or 0
        show_week = resolved.week > 1 or (isinstance(plan_weeks, int) and plan_weeks > 1)
    return f" (week {resolved.week})" if show_week else ""


def _ch(use: ChannelUse) -> str:
    return f"channel `{use.channel}` ({use.number})"


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
    out = _Collector(_week_suffix(resolved, show_week))
    ctx = _Context(resolved, profile, ramp_threshold_ua)
    flagged: set[int] = set()
    if _CACHE["enabled"]:
        local: dict = {}
        for use in resolved.uses:
            no_ramp = use.ramp_up_us == 0 and use.on_us > 0
            # identities are stable while this call runs (resolved holds every object); equal values in
            # distinct objects only cost one more lookup in the value-keyed memo
            lk = (id(use.shape), id(use.electrodes), use.channel, use.number, id(use.amplitude_ua),
                  id(use.frequency_hz), no_ramp)
            res = local.get(lk)
            if res is None:
                res = _memo_use(ctx, use, no_ramp)
                local[lk] = res
            findings, spacing = res
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
    if ctx.delivered and resolved.trains:
        from .delivered_rules import delivered_findings

        delivered_findings(out, resolved, profile, ramp_threshold_ua)
    if schedule and resolved.trains:
        _check_trains(out, resolved, profile, skip_same_channel=flagged)
    return out.items


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
    clear_caches()
    return before


def clear_caches() -> None:
    """Forget every memoised safety result."""
    _USE_MEMO.clear()
    _OVERLAP_MEMO.clear()
    E.clear_memo()
    from . import delivered

    delivered.clear_memo()


class _Context:
    """What every channel use of one check_safety call shares: profile, limits, allow flag, threshold."""

    __slots__ = ("profile", "allow", "threshold", "limits", "key", "delivered")

    def __init__(self, resolved: ResolvedSession, profile: DeviceProfile, threshold):
        self.profile = profile
        # the session's trains are tied to its uses: rate, window and onset rules are measured on the pulses
        tu = getattr(resolved, "train_uses", None)
        self.delivered = tu is not None and len(tu) == len(resolved.trains)
        self.allow = bool(resolved.allow_monophasic)
        self.threshold = threshold
        self.limits = tuple(resolved.limits)
        self.key = None

    def memo_key(self):
        if self.key is None:
            # limit values with their number types (an int and a Fraction print differently); spans are
            # not part of the key (related notes are re-attached from the session's own limits)
            lims = tuple((lim.bound, lim.quantity, lim.value, type(getattr(lim.value, "value", None)))
                         for lim in self.limits)
            self.key = (self.profile, self.allow, self.threshold, type(self.threshold), lims, self.delivered)
        return self.key


def _memo_use(ctx: _Context, use: ChannelUse, no_ramp: bool):
    """(findings, spacing violation) of ``use``, memoised on the values its findings depend on."""
    shape = use.shape
    try:
        key = (ctx.memo_key(), use.channel, type(use.number), use.number, use.amplitude_ua, use.frequency_hz,
               shape.kind, tuple(shape.phases), tuple((type(d), type(r)) for d, r in shape.phases),
               tuple((e.name, e.area_cm2, type(e.area_cm2)) for e in use.electrodes), no_ramp)
        res = _USE_MEMO.get(key)
    except TypeError:  # something unhashable: compute directly
        return _use_result(ctx, use)
    if res is None:
        res = _use_result(ctx, use)
        if len(_USE_MEMO) >= _USE_MEMO_MAX:
            _USE_MEMO.clear()
        _USE_MEMO[key] = res
    return res


def _use_result(ctx: _Context, use: ChannelUse):
    rec = _Recorder()
    spacing = _use_findings(rec, ctx, use)
    return tuple(rec.items), spacing


class _Recorder:
    """Collects one use's findings as templates: (code, message, span keys, hint, related specs, week).

    A span is recorded as the keys of :func:`_span`; a related note as ``("elec", i)`` (the use's i-th
    electrode), ``("limit", i)`` (the session's i-th limit) or ``("use", text, key)`` (the use's span
    ``key``), so the same template serves every use with the same values.
    """

    def __init__(self):
        self.items: list = []

    def add(self, code: str, message: str, keys: tuple, *, hint: Optional[str] = None, related: tuple = (),
            week: bool = True) -> None:
        self.items.append((code, message, keys, hint, tuple(related), week))


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


def _check_use(out: _Collector, resolved: ResolvedSession, use: ChannelUse, profile: DeviceProfile,
               ramp_threshold_ua: int) -> None:
    """The per-use rules on one use, unmemoised (kept for callers of the former helper)."""
    findings, _ = _use_result(_Context(resolved, profile, ramp_threshold_ua), use)
    _replay(out, resolved, use, findings)


def _same_channel_spacing_violation(use: ChannelUse) -> bool:
    f = Fraction(use.frequency_hz)
    if f <= 0:
        return False
    return use.shape.duration_us > math.floor(Fraction(10**6) / f)


def _smaller_index(electrodes: Sequence) -> Optional[int]:
    """Index of :func:`energy.smaller_electrode` in ``electrodes`` (the first on a tie)."""
    best = None
    for i, e in enumerate(electrodes):
        if best is None or E.exact(e.area_cm2) < E.exact(electrodes[best].area_cm2):
            best = i
    return best


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
    if cur:
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
        delivered = ctx.delivered  # S009/S010 are then decided on the delivered pulses (delivered_findings)
        i2 = E.rms_current_sq_ma2(a, f, shape)
        irms = math.sqrt(i2)
        where = f"on electrode `{small.name}` ({_area(area)})"

        def basis() -> str:
            return f"{_ma(a)} full amplitude at {num(f)} Hz, {kind} pulse, rms {num(irms)} mA"

        pd = i2 / 10**6 * E.LOAD_OHM / area  # E.power_density_w_cm2(a, f, shape, area), i2 reused
        if pd > E.MAX_POWER_DENSITY_W_CM2 and not delivered:
            min_area = i2 / 10**6 * E.LOAD_OHM / E.MAX_POWER_DENSITY_W_CM2
            max_a = a * math.sqrt(E.MAX_POWER_DENSITY_W_CM2 / pd)
            out.add("S010", f"power density {num(pd, differ_from=Fraction(1, 4))} W/cm² {where} exceeds "
                            f"0.25 W/cm²",
                    ("amplitude",), related=[rel],
                    hint=f"{basis()}, 500 Ω; use electrodes of at least {num(min_area)} cm² or an amplitude "
                         f"of at most {num(Fraction(max_a) / 1000)} mA on `{small.name}`")
        if i2 > (E.MAX_RMS_DENSITY_MA_CM2 * area) ** 2 and not delivered:
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


# --- limits -------------------------------------------------------------------------------------
_LIMIT_NAMES: dict = {}


def _limit_name(limit: LimitValue) -> str:
    raw = limit.quantity
    name = _LIMIT_NAMES.get(raw) if type(raw) is str else None
    if name is None:
        q = " ".join(str(raw).replace("_", " ").lower().split())
        name = _LIMIT_ALIASES.get(q, q)
        if type(raw) is str and len(_LIMIT_NAMES) < 1024:
            _LIMIT_NAMES[raw] = name
    return name


def _limit_text(limit: LimitValue) -> str:
    return f"{limit.bound} {_limit_name(limit)} {_limit_value_text(limit)}"


def _limit_value_text(limit: LimitValue) -> str:
    name = _limit_name(limit)
    v = limit.value
    try:
        if name == "density":
            return f"{num(_density_limit(v))} mA/cm²"
        if name == "current":
            return _ma(v.in_unit("uA"))
        if name in ("pulse width",):
            return f"{num(v.in_unit('us'))} µs"
        if name == "duration":
            return _duration(v.in_unit("us"))
        if name == "frequency":
            return f"{num(v.value)} Hz"
        if name == "charge":
            return f"{num(v.in_unit('uC'))} µC"
        if name == "voltage":
            return f"{num(v.value)} V"
        if name == "channels":
            return num(v.value)
    except Exception:  # noqa: BLE001 - a wrong dimension is reported elsewhere
        pass
    return str(v)


def _density_limit(v: Quantity) -> Fraction:
    """A density limit in mA/cm² (A/m² from `2 mA / 1 cm2`; a bare number is read as mA/cm²)."""
    if v.dim == COUNT:
        return v.value
    return v.value / 10


def _limit_ok_dim(limit: LimitValue) -> bool:
    name = _limit_name(limit)
    if name not in _LIMIT_DIMS:
        return False
    if name == "density":
        return limit.value.dim in (_DENSITY_SI, COUNT)
    return limit.value.dim == _LIMIT_DIMS[name]


def _violates(bound: str, measured: Fraction, limit: Fraction) -> bool:
    return measured > limit if bound == "max" else measured < limit


def _check_limit_on_use(out: _Collector, use: ChannelUse, limit: LimitValue) -> None:
    """S006 for one limit on one use, unmemoised (kept for callers of the former helper)."""
    rec = _Recorder()
    a = Fraction(use.amplitude_ua)
    _limit_findings(rec, use, limit, 0, a, Fraction(use.frequency_hz), E.shape_facts(use.shape),
                    E.peak_current_ua(a, use.shape), E.max_phase_charge_uc(a, use.shape))
    for code, message, keys, hint, related, week in rec.items:
        rel = [_related_electrode(use.electrodes[s[1]]) if s[0] == "elec" else _related_limit(limit)
               for s in related]
        out.add(code, message, _span(use, *keys), hint=hint, related=rel, week=week)


def _limit_findings(out: _Recorder, use: ChannelUse, limit: LimitValue, li: int, a: Fraction, f: Fraction,
                    facts: E.ShapeFacts, peak: Fraction, q: Fraction) -> None:
    """S006 of one limit on one use; ``peak`` = E.peak_current_ua(a, shape), ``q`` = E.max_phase_charge_uc."""
    if not _limit_ok_dim(limit):
        return  # reported once by _check_session
    name, bound, v = _limit_name(limit), limit.bound, limit.value
    shape = use.shape
    rel = [("limit", li)]
    word = "above" if bound == "max" else "below"
    if name == "current":
        lim = v.in_unit("uA")
        measured = peak if bound == "max" else a
        if _violates(bound, measured, lim):
            out.add("S006", f"current {_ma(measured)} of {_ch(use)} is {word} the protocol's {bound} current "
                            f"{_limit_value_text(limit)}", ("amplitude",), related=rel)
    elif name == "frequency":
        lim = v.value
        if _violates(bound, f, lim):
            out.add("S006", f"frequency {num(f)} Hz of {_ch(use)} is {word} the protocol's {bound} frequency "
                            f"{_limit_value_text(limit)}", ("frequency",), related=rel)
    elif name == "pulse width":
        lim = v.in_unit("us")
        cur = facts.current
        if not cur:
            return
        measured = Fraction(max(d for _, d, _ in cur) if bound == "max" else min(d for _, d, _ in cur))
        if _violates(bound, measured, lim):
            which = "longest" if bound == "max" else "shortest"
            out.add("S006", f"the {which} phase of the pulse of {_ch(use)} lasts {num(measured)} µs, {word} the "
                            f"protocol's {bound} pulse width {_limit_value_text(limit)}", ("pulse",), related=rel)
    elif name == "charge":
        lim = v.in_unit("uC")
        if _violates(bound, q, lim):
            out.add("S006", f"charge {num(q)} µC per phase on {_ch(use)} is {word} the protocol's {bound} charge "
                            f"{_limit_value_text(limit)}", ("amplitude", "pulse"), related=rel)
    elif name == "voltage":
        lim = v.value
        # E.peak_voltage_v(a, shape) = peak·10⁻⁶·R; E.peak_voltage_v(a) = |a|·10⁻⁶·R
        volts = peak * E._US * E.LOAD_OHM if bound == "max" else E.peak_voltage_v(a)
        if _violates(bound, volts, lim):
            out.add("S006", f"voltage {num(volts)} V into 500 Ω on {_ch(use)} is {word} the protocol's {bound} "
                            f"voltage {_limit_value_text(limit)}", ("amplitude",), related=rel)
    elif name == "density":
        si = _smaller_index(use.electrodes)
        small = use.electrodes[si] if si is not None else None
        if small is None or Fraction(small.area_cm2) <= 0 or f <= 0:
            return
        lim = _density_limit(v)
        sq = E.rms_current_density_sq(a, f, shape, small.area_cm2)
        bad = (lim < 0 or sq > lim * lim) if bound == "max" else (lim > 0 and sq < lim * lim)
        if bad:
            dens = math.sqrt(sq)
            out.add("S006", f"rms current density {num(dens, differ_from=lim)} mA/cm² on electrode `{small.name}` "
                            f"({_area(small.area_cm2)}) of {_ch(use)} is {word} the protocol's {bound} density "
                            f"{_limit_value_text(limit)}", ("amplitude",),
                    related=[("elec", si), *rel])


def _check_session(out: _Collector, resolved: ResolvedSession, profile: DeviceProfile) -> None:
    numbers: dict[int, ChannelUse] = {}
    for use in resolved.uses:
        numbers.setdefault(use.number, use)
    all_numbers = set(numbers) | {c.number for c in resolved.channels}
    count = len(all_numbers)

    # S005 channel count
    if count > profile.channels:
        extra = sorted(all_numbers)[profile.channels:]
        span = _span(numbers[extra[0]], "channel") if extra[0] in numbers else resolved.session_span
        out.add("S005", f"the session drives {count} channels; the device has {profile.channels} "
                        f"(device `{profile.name}`)", span)

    # S014 session length
    if resolved.duration_us > MAX_SESSION_US:
        out.add("S014", f"the session lasts {_duration(resolved.duration_us)}, longer than the 24 h bound",
                resolved.session_span)

    for limit in resolved.limits:
        name, bound, v = _limit_name(limit), limit.bound, limit.value
        if not _limit_ok_dim(limit):
            expected = ("current per area (e.g. `2 mA / 1 cm2`)" if name == "density"
                        else dim_name(_LIMIT_DIMS[name]) if name in _LIMIT_DIMS else None)
            msg = (f"limit `{bound} {name}` expects a {expected}, found {dim_name(v.dim)}" if expected
                   else f"unknown limit `{bound} {name}`")
            out.add("S006", msg + "; the limit cannot be enforced", limit.span, week=False)
            continue
        word = "above" if bound == "max" else "below"
        # S006 session-level quantities
        if name == "duration":
            lim = v.in_unit("us")
            if _violates(bound, Fraction(resolved.duration_us), lim):
                out.add("S006", f"the session lasts {_duration(resolved.duration_us)}, {word} the protocol's "
                                f"{bound} duration {_limit_value_text(limit)}",
                        resolved.session_span or limit.span, related=[_related_limit(limit)])
        elif name == "channels":
            if _violates(bound, Fraction(count), v.value):
                span = resolved.session_span or limit.span
                if bound == "max" and v.value >= 0:
                    extra = sorted(all_numbers)[max(0, math.floor(v.value)):]
                    if extra and extra[0] in numbers:
                        span = _span(numbers[extra[0]], "channel")
                out.add("S006", f"the session drives {count} channels, {word} the protocol's {bound} channels "
                                f"{_limit_value_text(limit)}", span, related=[_related_limit(limit)])
        # S016 a limit looser than the device (or than a fixed bound)
        looser = _loosens(limit, profile)
        if looser:
            out.add("S016", f"limit `{_limit_text(limit)}` is looser than {looser}; a `limits` block may only "
                            f"tighten the device's limits", limit.span, week=False)


def _loosens(limit: LimitValue, profile: DeviceProfile) -> Optional[str]:
    name, bound, v = _limit_name(limit), limit.bound, limit.value
    dev = f"(device `{profile.name}`)"
    if bound == "max":
        if name == "current" and v.in_unit("uA") > profile.max_current_ua:
            return f"the device maximum {_ma(profile.max_current_ua)} {dev}"
        if name == "frequency" and v.value > profile.max_rate_hz:
            return f"the device maximum slot rate {profile.max_rate_hz} Hz {dev}"
        if name == "pulse width" and v.in_unit("us") > profile.max_phase_us:
            return f"the device's longest phase {profile.max_phase_us} µs {dev}"
        if name == "channels" and v.value > profile.channels:
            return f"the device's {profile.channels} channels {dev}"
        if name == "voltage" and v.value > E.peak_voltage_v(profile.max_current_ua):
            return (f"{num(E.peak_voltage_v(profile.max_current_ua))} V, the device maximum "
                    f"{_ma(profile.max_current_ua)} into 500 Ω {dev}")
        if name == "duration" and v.in_unit("us") > MAX_SESSION_US:
            return "the 24 h session bound (S014)"
    else:
        if name == "pulse width" and v.in_unit("us") < profile.min_phase_us:
            return f"the device's shortest phase {profile.min_phase_us} µs {dev}"
    return None


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


def train_cycle_offsets(train: Train) -> np.ndarray:
    """Offsets (µs into a cycle) of every emitted slot of one cycle of ``train``: exactly the slots the
    expanders emit (``round(k·P)`` below ``on_us`` whose amplitude does not round to 0 µA), as int64."""
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
                  target_pulses: int = 200_000) -> list[Overlap]:
    """Exactly which pulses overlap (a pulse occupies ``[t, t + shape.duration_us)``).

    Reports the first overlap of each train on its own channel ('same'; any device) and, when
    ``shared_source``, the first overlap between two different channels ('cross'). Single trains are decided
    analytically from their per-cycle slot pattern; only where trains overlap in time are pulses generated,
    window by window (the per-cycle patterns are the expanders' exact slots).

    Trains whose busy spans cannot meet (judged first from a bound of each span, then exactly) are never
    expanded; a sweep's result is memoised on the exact slot patterns of its trains.
    """
    n_shapes = len(shapes)
    shape_durs = [s.duration_us for s in shapes]
    cand: list[tuple[int, Train, int]] = []
    for i, tr in enumerate(trains):
        dur = shape_durs[tr.shape] if 0 <= tr.shape < n_shapes else 0
        if (dur > 0 and tr.on_us > 0 and tr.period_num > 0 and tr.period_den > 0 and tr.cycles > 0
                and tr.amp_num != 0 and tr.amp_den != 0):
            cand.append((i, tr, dur))  # the others emit nothing (train_cycle_offsets is empty) or dur <= 0
    tps: dict[int, Optional[_TrainPulses]] = {}

    def pulses(i: int, tr: Train, dur: int) -> Optional[_TrainPulses]:
        if i not in tps:
            off = train_cycle_offsets(tr)
            tps[i] = _TrainPulses(i, tr, off, dur) if len(off) else None
        return tps[i]

    found: list[Overlap] = []
    for i, tr, dur in cand:
        if _no_single_overlap(tr, dur):
            continue
        # the first two emitted slots of a cycle, from the train's numbers (no layout of the cycle)
        from .delivered import round_div, train_facts

        tf = train_facts(i, tr, shapes)
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
    groups: list[list[tuple[int, Train, int]]]
    if shared_source:
        groups = [cand]
    else:
        by_channel: dict[int, list] = {}
        for c in cand:
            by_channel.setdefault(c[1].channel, []).append(c)
        groups = list(by_channel.values())
    ordered = []
    for group in groups:
        clusters = []
        for comp in _bound_components(group):
            if len(comp) < 2:
                continue
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
    def bounds(c):
        tr, dur = c[1], c[2]
        return tr.start_us, tr.start_us + (tr.cycles - 1) * tr.cycle_us + _last_slot(tr) + dur

    items = sorted(group, key=lambda c: c[1].start_us)
    current: list = []
    end = None
    for c in items:
        lo, hi = bounds(c)
        if current and lo < end:
            current.append(c)
            end = max(end, hi)
        else:
            if current:
                yield sorted(current, key=lambda x: x[0])
            current, end = [c], hi
    if current:
        yield sorted(current, key=lambda x: x[0])


def _sweep_memo(cluster: list[_TrainPulses], shared_source: bool, target_pulses: int) -> list[Overlap]:
    if not _CACHE["enabled"]:
        return _sweep(cluster, shared_source, target_pulses)
    key = (bool(shared_source), target_pulses,
           tuple((tp.index, tp.train.channel, tp.train.start_us, tp.train.cycles, tp.train.cycle_us, tp.duration,
                  tp.offsets.tobytes()) for tp in cluster))
    res = _OVERLAP_MEMO.get(key)
    if res is None:
        res = tuple(_sweep(cluster, shared_source, target_pulses))
        if len(_OVERLAP_MEMO) >= _OVERLAP_MEMO_MAX:
            _OVERLAP_MEMO.clear()
        _OVERLAP_MEMO[key] = res
    return list(res)


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
    end = None
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
    a = lo
    while a < hi:
        b = min(hi, a + window)
        found = _sweep_window(cluster, a - margin, b, shared_source)
        if found:
            return found
        a = b
    return []


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
    for j in np.nonzero(same)[0]:
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
                j = int(f2[j2])
                ci = int(c2[i2])
                mask = (ch == ci) & (t <= t[j]) & (end > t[j])
                cand = np.nonzero(mask)[0]
                i = int(cand[0]) if len(cand) else int(f2[i2])
                if t[i] > t[j]:
                    i, j = j, i
                found.append(Overlap("cross", int(t[i]), int(ch[i]), int(tr[i]), int(t[j]), int(ch[j]),
                                     int(tr[j])))
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
                     span_of, skip_same: set) -> None:
    def label(c: int) -> str:
        return f"channel `{names[c]}` ({c})" if c in names else f"channel {c}"

    for ov in find_overlaps(trains, shapes, shared_source=not profile.independent_sources):
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
                  skip_same_channel: set) -> None:
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

    from .delivered import BudgetExceeded

    try:
        _report_overlaps(out, resolved.trains, resolved.shapes, profile, names, span_of, skip_same_channel)
    except BudgetExceeded as exc:
        out.add("S020", f"checking pulse overlaps would lay out about {exc.needed:,} slots of one cycle, more than "
                        f"the budget of {MAX_CYCLE_SLOTS:,}; the protocol is refused rather than passed unchecked",
                resolved.session_span, hint="lower the frequency or shorten the cycle's on-phase")
