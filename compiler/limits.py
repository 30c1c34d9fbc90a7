"""The protocol's ``limits { ... }`` block and the session-wide rules: limit names, dimensions and texts;
S006 (a limit on one channel use, and on the session's duration and channel count); S005 (channel count);
S014 (session length); S016 (a limit looser than the device).

Every comparison is exact (``Fraction``): "exactly at the limit" passes.
"""
from __future__ import annotations

import math
from fractions import Fraction

from ..errors import Related
from ..profile import DeviceProfile
from ..units import CHARGE, COUNT, CURRENT, FREQUENCY, TIME, VOLTAGE, Quantity, dim_name
from . import energy as E
from .findings import _area, _ch, _Collector, _duration, _ma, _Recorder, _span, num
from .model import ChannelUse, LimitValue, ResolvedSession

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

#: S014: the longest session the compiler accepts (µs)
MAX_SESSION_US = 24 * 3600 * 10**6
#: S014's hint
SESSION_TOO_LONG_HINT = "split it into several sessions of the plan"


def session_too_long(duration_us: int) -> Optional[str]:
    """S014's message for a session of ``duration_us``, None when it is within the bound: the one wording of the
    rule, used by the checker (which does not lay out a longer session at all) and by check_safety."""
    if duration_us <= MAX_SESSION_US:
        return None
    return f"the session lasts {_duration(duration_us)}, longer than the 24 h bound"

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



def _related_limit(limit: LimitValue) -> Optional[Related]:
    if limit.span is None:
        return None
    return Related(f"the protocol's limit `{_limit_text(limit)}` is set here", limit.span)



def _smaller_index(electrodes: Sequence) -> Optional[int]:
    """Index of :func:`energy.smaller_electrode` in ``electrodes`` (the first on a tie)."""
    best = None
    for i, e in enumerate(electrodes):
        if best is None or E.exact(e.area_cm2) < E.exact(electrodes[best].area_cm2):
            best = i
    return best


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
    # each channel number's first use (the dict's order is never read)
    numbers: dict[int, ChannelUse] = {use.number: use for use in reversed(resolved.uses)}
    all_numbers = set(numbers) | {c.number for c in resolved.channels}
    count = len(all_numbers)

    # S005 channel count
    if count > profile.channels:
        extra = sorted(all_numbers)[profile.channels:]
        span = _span(numbers[extra[0]], "channel") if extra[0] in numbers else resolved.session_span
        out.add("S005", f"the session drives {count} channels; the device has {profile.channels} "
                        f"(device `{profile.name}`)", span)

    # S014 session length
    too_long = session_too_long(resolved.duration_us)
    if too_long is not None:
        out.add("S014", too_long, resolved.session_span, hint=SESSION_TOO_LONG_HINT)

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
