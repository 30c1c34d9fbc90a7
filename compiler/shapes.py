"""``pulse ...`` (ast.Pulse) -> :class:`~stimscript.compiler.ir.PulseShape` (normative, docs/language.md).

Widths are per phase; relative amplitudes are Python floats of exact fractions, the first phase +1.0;
every duration is rounded to whole µs (half to even) before it is used:

* ``monophasic W``            -> ((W, 1.0),)
* ``biphasic W [gap G]``      -> ((W, 1.0), (G, 0.0), (W, -1.0)); no gap phase when G is absent or 0
* ``asymmetric W ratio R [gap G]`` -> ((W, 1.0), (G, 0.0), (round(R·W), -1/R)) with W already whole µs
* ``burst C for D``           -> n = round(D·C) carrier cycles of ((h, 1.0), (h, -1.0)), h = round(10⁶/(2C)) µs;
  one schedule pulse per channel period (Russian current)
* ``doublet W spacing S``     -> ((W, 1), (W, -1), (S-2W, 0), (W, 1), (W, -1)); S = 2W drops the gap; S < 2W is an error
* ``shape { a for d; ... }``  -> the phases as written, amplitudes divided by the first phase's
"""
from __future__ import annotations

from fractions import Fraction

from ..dsl import ast
from ..units import COUNT, FREQUENCY, TIME, Quantity
from .evaluate import Evaluator, fmt
from ..pulses import PulseShape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


#: the most phases any pulse shape may have, whatever the device (built before the device's own S017 check)
MAX_SHAPE_PHASES = 65_536


def build_shape(pulse: ast.Pulse, ev: Evaluator) -> Optional[PulseShape]:
    """The pulse's shape, or None after reporting its errors into ``ev``."""
    if isinstance(pulse, ast.Monophasic):
        w = ev.time_us(pulse.width, "the pulse width", positive=True)
        return None if w is None else PulseShape(((w, 1.0),), "monophasic")
    if isinstance(pulse, ast.Biphasic):
        w = ev.time_us(pulse.width, "the pulse width", positive=True)
        g = ev.time_us(pulse.gap, "the interphase gap") if pulse.gap is not None else 0
        if w is None or g is None:
            return None
        phases = ((w, 1.0),) + (((g, 0.0),) if g else ()) + ((w, -1.0),)
        return PulseShape(phases, "biphasic")
    if isinstance(pulse, ast.Asymmetric):
        w = ev.time_us(pulse.width, "the pulse width", positive=True)
        r = ev.positive(pulse.ratio, COUNT, "the phase ratio")
        g = ev.time_us(pulse.gap, "the interphase gap") if pulse.gap is not None else 0
        if w is None or r is None or g is None:
            return None
        second = round(r.value * w)
        if second < 1:
            ev.error("E411", f"the second phase ({_n(r.value)} × {w} µs) rounds to 0 µs", pulse.ratio.span)
            return None
        phases = ((w, 1.0),) + (((g, 0.0),) if g else ()) + ((second, float(-1 / r.value)),)
        return PulseShape(phases, "asymmetric")
    if isinstance(pulse, ast.Burst):
        carrier = ev.positive(pulse.carrier, FREQUENCY, "the burst carrier frequency")
        duration = ev.positive(pulse.duration, TIME, "the burst duration")
        if carrier is None or duration is None:
            return None
        n = round(duration.value * carrier.value)
        h = round(Fraction(10**6) / (2 * carrier.value))
        if h < 1:
            ev.error("E411", f"a {fmt(carrier)} carrier has half-cycles shorter than 1 µs", pulse.carrier.span,
                     hint="the carrier must be at most 500 kHz")
            return None
        if n < 1:
            ev.error("E411", f"a burst of {fmt(duration)} holds no whole cycle of the {fmt(carrier)} carrier",
                     pulse.duration.span,
                     hint=f"make it at least {fmt(Quantity(1 / carrier.value, TIME))} long")
            return None
        if 2 * n > MAX_SHAPE_PHASES:
            ev.error("E411", f"a burst of {fmt(duration)} at {fmt(carrier)} has {2 * n:,} phases; a pulse shape may "
                     f"have at most {MAX_SHAPE_PHASES:,} (and a device's encodable space is usually far smaller)",
                     pulse.duration.span, hint="a burst lasts milliseconds (Russian current: 10 ms at 2.5 kHz)")
            return None
        return PulseShape(((h, 1.0), (h, -1.0)) * n, "burst")
    if isinstance(pulse, ast.Doublet):
        w = ev.time_us(pulse.width, "the pulse width", positive=True)
        s = ev.time_us(pulse.spacing, "the doublet spacing", positive=True)
        if w is None or s is None:
            return None
        if s < 2 * w:
            ev.error("E411", f"the doublet spacing {s} µs is shorter than its two phases (2 × {w} µs): "
                     "the two pulses would overlap", pulse.spacing.span, hint=f"use a spacing of at least {2 * w} µs")
            return None
        gap = s - 2 * w
        phases = ((w, 1.0), (w, -1.0)) + (((gap, 0.0),) if gap else ()) + ((w, 1.0), (w, -1.0))
        return PulseShape(phases, "doublet")
    if isinstance(pulse, ast.CustomShape):
        raw = []
        ok = True
        for ph in pulse.phases:
            a = ev.quantity(ph.amplitude, COUNT, "a relative phase amplitude")
            d = ev.time_us(ph.duration, "a phase duration", positive=True)
            if a is None or d is None:
                ok = False
                continue
            raw.append((d, a.value, ph))
        if not ok:
            return None
        if not raw:
            ev.error("E411", "a custom pulse shape needs at least one phase", pulse.span)
            return None
        first = raw[0][1]
        if first == 0:
            ev.error("E411", "the first phase of a custom shape cannot have amplitude 0 "
                     "(amplitudes are relative to it)", raw[0][2].amplitude.span,
                     hint="start with the first phase that carries current")
            return None
        return PulseShape(tuple((d, float(Fraction(a) / first)) for d, a, _ in raw), "custom")
    raise AssertionError(f"unknown pulse kind {pulse.kind!r}")  # pragma: no cover


def _n(x: Fraction) -> str:
    from ..units import format_number

    return format_number(x)
