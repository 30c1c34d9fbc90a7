"""The live envelope: which params may change during a run, on which channels, and how far.

During a session the runtime changes intensity through one scale factor per output channel, applied by the
device at pulse time. That is exact only for a param that changes pulse amplitudes and nothing else, and only
on channels whose every pulse follows the param proportionally. So, for one session of a protocol:

* a param is **live-adjustable** when it is a current with a range, and changing it changes nothing in the
  session but amplitudes (no time, frequency, count or shape follows it; decided by resolving the session at
  other values of the param and comparing every train);
* a channel **follows** the param when every one of its lines has an amplitude proportional to it
  (``intensity``, ``80% intensity``, ``intensity / 2``); its scale at value v is ``v / v₀`` (v₀ the compiled
  value). A channel none of whose lines depends on it (``with amplitude 110 mA``, another param) is **fixed**;
  a channel with some lines that follow and some that do not is **mixed** and is never scaled (the scale would
  multiply the fixed lines too) — the envelope says so;
* the **reachable range** is the part of the param's declared range in which the session passes every rule,
  decided on the delivered pulses (docs/safety.md): the top is found to the µA by bisection on the full check;
  ``max_ua`` per following channel is the peak amplitude delivered at the top.

:class:`LiveParam` is the contract the runtime clamps to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from ..errors import StimscriptError
from ..units import CURRENT, Quantity


@dataclass(frozen=True)
class LiveParam:
    """What live control may do with one param in one session (see the module docstring)."""

    name: str
    adjustable: bool
    reason: str                       # why not adjustable ("" when it is)
    value: Quantity                   # the value compiled (the scale is 1 there)
    low: Quantity                     # reachable range (both equal to ``value`` when not adjustable)
    high: Quantity
    channels: tuple[int, ...] = ()    # outputs that follow the param: scaled by value / compiled value
    fixed: tuple[int, ...] = ()       # outputs whose amplitude does not depend on it: never scaled
    mixed: tuple[int, ...] = ()       # outputs with some lines that follow and some that do not: never scaled
    max_ua: dict = field(default_factory=dict)   # output -> peak µA delivered at ``high``

    @property
    def value_ua(self) -> int:
        return self.value.to_ua()

    def clamp(self, value) -> Quantity:
        """``value`` (a current Quantity or µA) held inside the reachable range."""
        v = value.value if isinstance(value, Quantity) else Fraction(value) / 10**6
        v = min(max(v, self.low.value), self.high.value)
        return Quantity(v, CURRENT)

    def scale(self, value) -> Fraction:
        """The scale factor of every following channel at ``value`` (clamped), exactly; 1 when not adjustable."""
        if not self.adjustable or self.value.value == 0:
            return Fraction(1)
        return self.clamp(value).value / self.value.value

    def channel_scales(self, value) -> dict[int, Fraction]:
        """Output -> scale factor at ``value``: the scale on following channels, 1 on every other one."""
        s = self.scale(value)
        out = {c: Fraction(1) for c in (*self.fixed, *self.mixed)}
        out.update({c: s for c in self.channels})
        return out


def _raw_trains(proto, session: int, params: dict):
    """The session's trains and uses at ``params`` without the safety rules (None if it does not resolve)."""
    an = proto._an
    week = proto.week_of(session)
    overrides = proto.parse_params(params)
    sink: list = []
    state = an.state_at(week, overrides, sink, fixed=frozenset(overrides))
    resolved = an.resolve(state, week, session, sink)
    return resolved


def _timing(tr):
    return (tr.channel, tr.start_us, tr.cycles, tr.cycle_us, tr.on_us, tr.ramp_up_us, tr.ramp_down_us,
            tr.period_num, tr.period_den, tr.shape)


def analyse_param(proto, name: str, session: int = 1, params: Optional[dict] = None) -> LiveParam:
    """The :class:`LiveParam` of ``name`` for ``session`` with ``params`` overrides."""
    info = proto.params.get(name)
    if info is None:
        from ..errors import ParamError

        raise ParamError(f"unknown param {name!r} (params: {', '.join(proto.params) or 'none'})")
    base = dict(params or {})
    r0 = _raw_trains(proto, session, base)
    v0 = r0.params.get(name, info.default) if r0 is not None else info.default

    def no(reason: str) -> LiveParam:
        return LiveParam(name, False, reason, v0, v0, v0)

    if info.dim != CURRENT:
        return no("it is not a current; only amplitudes can change during a session")
    if info.range is None:
        return no("it has no range (`in LOW .. HIGH`)")
    if r0 is None or v0.value <= 0:
        return no("the session does not resolve at its value")
    low, high = info.range
    probes = [q for q in (low, high, Quantity(v0.value * Fraction(3, 4), CURRENT)) if q.value != v0.value
              and low.value <= q.value <= high.value]
    follows: dict[int, set] = {}
    for q in probes:
        trial = dict(base)
        trial[name] = q
        r1 = _raw_trains(proto, session, trial)
        if r1 is None:
            return no(f"the session does not resolve at {q}")
        if (len(r1.trains) != len(r0.trains) or r1.duration_us != r0.duration_us
                or any(_timing(a) != _timing(b) for a, b in zip(r0.trains, r1.trains))
                or r1.shapes != r0.shapes):
            return no("it drives a time, a count, a frequency or a pulse shape, which cannot change during a "
                      "session")
        ratio = q.value / v0.value
        for a, b in zip(r0.trains, r1.trains):
            a0, a1 = Fraction(a.amp_num, a.amp_den), Fraction(b.amp_num, b.amp_den)
            kind = "fixed" if a1 == a0 else "follows" if a1 == a0 * ratio else "other"
            if kind == "other":
                return no(f"the amplitude of output {a.channel} depends on it but is not proportional to it "
                          "(e.g. `intensity + 5 mA`); a device scale factor cannot follow that")
            follows.setdefault(a.channel, set()).add(kind)
    if not probes:
        for a in r0.trains:
            follows.setdefault(a.channel, set()).add("follows" if a.amp_num else "fixed")
    chans = tuple(sorted(c for c, k in follows.items() if k == {"follows"}))
    fixed = tuple(sorted(c for c, k in follows.items() if k == {"fixed"}))
    mixed = tuple(sorted(c for c, k in follows.items() if len(k) > 1))
    if not chans:
        return LiveParam(name, False, "no output's amplitude follows it in this session", v0, v0, v0,
                         fixed=fixed, mixed=mixed)
    lo_q, hi_q = _reachable(proto, name, session, base, v0, low, high)
    r_top = _raw_trains(proto, session, {**base, name: hi_q})
    max_ua: dict[int, int] = {}
    if r_top is not None:
        from .delivered import train_facts

        for i, tr in enumerate(r_top.trains):
            if tr.channel in chans:
                peak = train_facts(i, tr, r_top.shapes).peak_ua
                max_ua[tr.channel] = max(max_ua.get(tr.channel, 0), peak)
    return LiveParam(name, True, "", v0, lo_q, hi_q, chans, fixed, mixed, max_ua)


def _reachable(proto, name, session, base, v0: Quantity, low: Quantity, high: Quantity):
    """The part of [low, high] around v0 in which the session passes every check, to the µA."""

    def passes(ua: int) -> bool:
        trial = dict(base)
        trial[name] = Quantity(Fraction(ua, 10**6), CURRENT)
        try:
            proto._resolve(session, trial)
        except StimscriptError:
            return False
        return True

    v_ua = v0.to_ua()
    hi_ua, lo_ua = high.to_ua(), low.to_ua()
    top = hi_ua
    if not passes(hi_ua):
        good, bad = v_ua, hi_ua          # v0 compiled, so it passes
        while bad - good > 1:
            mid = (good + bad) // 2
            if passes(mid):
                good = mid
            else:
                bad = mid
        top = good
    bottom = lo_ua
    if lo_ua < v_ua and not passes(lo_ua):   # a `min current` limit, for instance
        good, bad = v_ua, lo_ua
        while good - bad > 1:
            mid = (good + bad) // 2
            if passes(mid):
                good = mid
            else:
                bad = mid
        bottom = good
    to_q = lambda ua: Quantity(Fraction(ua, 10**6), CURRENT)  # noqa: E731
    return (low if bottom == lo_ua else to_q(bottom)), (high if top == hi_ua else to_q(top))
