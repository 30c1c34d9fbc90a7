"""The physics behind the safety rules (docs/safety.md): charge, rms current, energy, densities, Shannon k.

Pure functions of exact inputs. Amplitudes are µA, frequencies Hz, durations µs and areas cm², all as
``int``/``Fraction``; a pulse shape's relative amplitudes are floats and are read as the decimal they
print as (``Fraction(repr(x))``, see :func:`exact`). Every quantity whose formula is
rational is returned as an exact ``Fraction`` so the rules can compare against their thresholds without
rounding; the two irrational ones (rms current, Shannon k) are returned as floats for display and have an
exact comparison helper next to them.

The conservative model of docs/safety.md (normative):

* a resistive load of :data:`LOAD_OHM` = 500 Ω;
* the channel's FULL amplitude ``A`` (ramps and duty cycle ignored);
* rms over one second of continuous stimulation at the channel's frequency ``f``:
  ``I_rms = A · sqrt(f · Σ dᵢ·rᵢ²)`` (``dᵢ`` in s, ``rᵢ`` the relative amplitude of phase i);
* densities on the SMALLER electrode of the pair;
* energy per pulse ``E = Σ (A·rᵢ)² · R · dᵢ``;
* charge per phase ``Qᵢ = A·|rᵢ|·dᵢ``; Shannon ``k = log10(Q/area) + log10(Q)`` with ``Q`` the largest
  phase charge in µC and the area in cm².
"""
from __future__ import annotations

import math
from ..valueclass import dataclass
from fractions import Fraction

from ..pulses import PulseShape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

#: the reference load of every energy/density computation (Ω)
LOAD_OHM = 500

#: thresholds of docs/safety.md, exact
MAX_ENERGY_MJ = Fraction(300)            # S008, energy per pulse into 500 Ω
MAX_RMS_DENSITY_MA_CM2 = Fraction(2)     # S009, rms current density
MAX_POWER_DENSITY_W_CM2 = Fraction(1, 4)  # S010, power density
MAX_SHANNON_K = Fraction(37, 20)         # S011, 1.85
MAX_NET_CHARGE_RATIO = Fraction(1, 100)  # S001, net charge relative to the first phase's charge

_US = Fraction(1, 10**6)


def exact(value) -> Fraction:
    """An int/Fraction/float as an exact Fraction.

    A float is read as its shortest round-tripping decimal (``Fraction(repr(x))``): a relative amplitude
    written ``-0.99`` in a protocol is exactly -99/100, not the binary neighbour 0.98999999999999999112.
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def phases(shape: PulseShape) -> tuple[tuple[int, Fraction], ...]:
    """The shape's phases as (duration µs, exact relative amplitude)."""
    return shape_facts(shape).phases


def current_phases(shape: PulseShape) -> tuple[tuple[int, int, Fraction], ...]:
    """(index, duration µs, relative amplitude) of every phase that carries current (amplitude ≠ 0)."""
    return shape_facts(shape).current


# --- per-shape aggregates, memoised -------------------------------------------------------------
class ShapeFacts:
    """Everything the rules need from one shape that does not depend on amplitude or frequency, exact.

    Computed once per distinct shape (see :func:`shape_facts`); every formula below is the same rational
    expression as the per-phase sums it replaces, so results are identical, just not recomputed.
    """

    __slots__ = ("phases", "current", "net_sum", "net_ratio", "peak_factor", "sq_sum_us", "max_rd",
                 "short", "long")

    def __init__(self, ph: tuple[tuple[int, Fraction], ...]):
        self.phases = ph
        # each phase's numerator and denominator read once (a Fraction's are properties; a burst has dozens of
        # phases): rᵢ = nᵢ/qᵢ in lowest terms with qᵢ > 0, so rᵢ ≠ 0 iff nᵢ ≠ 0 and |rᵢ| = |nᵢ|/qᵢ
        nq = [(d, r.numerator, r.denominator) for d, r in ph]
        self.current = tuple([(i, d, r) for i, ((d, r), (_, n, _)) in enumerate(zip(ph, nq)) if n])
        # the sums in integers over the phases' common denominator L (rᵢ = nᵢ/L), one Fraction at the end:
        # Fraction normalises, so each value equals the rational sum of Fractions it stands for
        big = 1
        for _, _, q in nq:
            if big % q:
                big = big * q // math.gcd(big, q)
        ns = [(d, n * (big // q)) for d, n, q in nq]
        #: Σ rᵢ·dᵢ (µs), exact
        self.net_sum = Fraction(sum(n * d for d, n in ns), big)
        if not ph:
            self.net_ratio = Fraction(0)
        else:
            net = abs(self.net_sum)
            first = abs(ph[0][1]) * ph[0][0]
            if first == 0:
                self.net_ratio = net if net == 0 else max(net, Fraction(1))
            else:
                self.net_ratio = net / first
        # max|rᵢ| = max|nᵢ·(L/qᵢ)| / L (the scaled numerators share the denominator L)
        top = max((abs(n) for _, n in ns), default=None)
        #: peak current / amplitude: max(max|rᵢ|, 1)
        self.peak_factor = Fraction(top, big) if top is not None and top > big else Fraction(1)
        #: Σ dᵢ·rᵢ² (µs), exact
        self.sq_sum_us = Fraction(sum(d * n * n for d, n in ns), big * big)
        #: max |rᵢ|·dᵢ (µs); None without phases
        self.max_rd = Fraction(max(abs(n) * d for d, n in ns), big) if ph else None
        cur = self.current
        #: (index, duration) of the first shortest / first longest current-carrying phase
        self.short = min(cur, key=lambda p: p[1])[:2] if cur else None
        self.long = max(cur, key=lambda p: p[1])[:2] if cur else None


_FACTS_BY_ID: dict[int, tuple[PulseShape, ShapeFacts]] = {}
_FACTS_BY_VALUE: dict = {}
_FACTS_MAX = 4096
_memo = {"enabled": True}


def _compute_phases(shape: PulseShape) -> tuple[tuple[int, Fraction], ...]:
    return tuple((int(d), _exact_amp(r)) for d, r in shape.phases)


#: float relative amplitude -> exact(float): a shape's phases repeat a few values (1.0, -1.0, 0.0, ...)
_EXACT_FLOATS: dict = {}


def _exact_amp(r) -> Fraction:
    if type(r) is not float:
        return exact(r)
    got = _EXACT_FLOATS.get(r)
    if got is None:
        got = exact(r)
        if len(_EXACT_FLOATS) < 4096 and got == got:   # (never a NaN key: it would not be found again)
            _EXACT_FLOATS[r] = got
    return got


def shape_facts(shape: PulseShape) -> ShapeFacts:
    """The :class:`ShapeFacts` of ``shape``, memoised by identity and by value.

    The value key carries each phase's number types as well as the numbers, so a shape whose amplitude is
    the float 0.1 (read as 1/10, see :func:`exact`) never shares facts with one whose amplitude is the
    binary Fraction equal to that float.
    """
    if not _memo["enabled"]:
        return ShapeFacts(_compute_phases(shape))
    ent = _FACTS_BY_ID.get(id(shape))
    if ent is not None and ent[0] is shape:
        return ent[1]
    key = (tuple(shape.phases), tuple((type(d), type(r)) for d, r in shape.phases))
    try:
        facts = _FACTS_BY_VALUE.get(key)
    except TypeError:  # unhashable phases: no memo
        return ShapeFacts(_compute_phases(shape))
    if facts is None:
        facts = ShapeFacts(_compute_phases(shape))
        if len(_FACTS_BY_VALUE) >= _FACTS_MAX:
            _FACTS_BY_VALUE.clear()
        _FACTS_BY_VALUE[key] = facts
    if len(_FACTS_BY_ID) >= _FACTS_MAX:
        _FACTS_BY_ID.clear()
    _FACTS_BY_ID[id(shape)] = (shape, facts)  # the entry keeps the shape alive, so its id is not reused
    return facts


def set_memo_enabled(enabled: bool) -> bool:
    """Turn the per-shape memo on or off (for equivalence tests); returns the previous setting."""
    before = _memo["enabled"]
    _memo["enabled"] = bool(enabled)
    clear_memo()
    return before


def clear_memo() -> None:
    _FACTS_BY_ID.clear()
    _FACTS_BY_VALUE.clear()


# --- charge -------------------------------------------------------------------------------------
def phase_charges_uc(amplitude_ua, shape: PulseShape) -> tuple[Fraction, ...]:
    """Charge of each phase in µC, unsigned: ``A·|rᵢ|·dᵢ`` (µA·µs = 10⁻⁶ µC)."""
    a = exact(amplitude_ua)
    return tuple(abs(a * r) * d * _US for d, r in phases(shape))


def max_phase_charge_uc(amplitude_ua, shape: PulseShape) -> Fraction:
    """The largest charge of any one phase, µC (Q of Shannon's k and of `limits { max charge }`)."""
    # max over phases of |A·rᵢ|·dᵢ·10⁻⁶ = |A|·max(|rᵢ|·dᵢ)·10⁻⁶ (|A| >= 0), exactly
    m = shape_facts(shape).max_rd
    if m is None:
        return Fraction(0)
    return abs(exact(amplitude_ua)) * m * _US


def net_charge_uc(amplitude_ua, shape: PulseShape) -> Fraction:
    """Signed net charge per pulse, µC: ``A·Σ rᵢ·dᵢ``."""
    return exact(amplitude_ua) * shape_facts(shape).net_sum * _US


def net_charge_ratio(shape: PulseShape) -> Fraction:
    """``|Σ rᵢ·dᵢ| / (|r₀|·d₀)``: net charge relative to the first phase's charge (exact; 0 = balanced).

    A first phase without charge (zero duration or amplitude) makes any net charge count as unbalanced
    (returned as the net charge itself over 1 µs·1, i.e. never hidden by a zero denominator).
    """
    return shape_facts(shape).net_ratio


def is_charge_balanced(shape: PulseShape) -> bool:
    """S001's test: net charge at most 1 % of the first phase's charge."""
    return net_charge_ratio(shape) <= MAX_NET_CHARGE_RATIO


# --- currents, energy, densities ----------------------------------------------------------------
def peak_current_ua(amplitude_ua, shape: PulseShape) -> Fraction:
    """The largest current magnitude any phase asks for: ``A·max|rᵢ|`` (= A for every standard shape)."""
    return abs(exact(amplitude_ua)) * shape_facts(shape).peak_factor


def mean_square_factor_s(shape: PulseShape) -> Fraction:
    """``Σ dᵢ·rᵢ²`` in seconds: the pulse's 'equivalent full-amplitude time'."""
    return shape_facts(shape).sq_sum_us * _US


def rms_current_sq_ma2(amplitude_ua, frequency_hz, shape: PulseShape) -> Fraction:
    """``I_rms²`` in mA², exact: ``A² · f · Σ dᵢ·rᵢ²`` (one second of continuous stimulation)."""
    a_ma = exact(amplitude_ua) / 1000
    f = exact(frequency_hz)
    if f <= 0:
        return Fraction(0)
    return a_ma * a_ma * f * mean_square_factor_s(shape)


def rms_current_ma(amplitude_ua, frequency_hz, shape: PulseShape) -> float:
    """``I_rms`` in mA (float; use :func:`rms_current_sq_ma2` to compare exactly)."""
    return math.sqrt(rms_current_sq_ma2(amplitude_ua, frequency_hz, shape))


def energy_per_pulse_mj(amplitude_ua, shape: PulseShape, load_ohm=LOAD_OHM) -> Fraction:
    """``Σ (A·rᵢ)²·R·dᵢ`` in mJ, exact."""
    a_amp = exact(amplitude_ua) * _US  # A
    if type(load_ohm) is int:
        # Σ (A·rᵢ)²·R·dᵢ·10⁻⁶ = A²·R·(Σ rᵢ²·dᵢ)·10⁻⁶, exactly (rational arithmetic)
        return a_amp * a_amp * load_ohm * shape_facts(shape).sq_sum_us * _US * 1000
    joules = sum(((a_amp * r) ** 2 * load_ohm * d * _US for d, r in phases(shape)), Fraction(0))
    return joules * 1000


def rms_current_density_sq(amplitude_ua, frequency_hz, shape: PulseShape, area_cm2) -> Fraction:
    """``(I_rms / area)²`` in (mA/cm²)², exact."""
    area = exact(area_cm2)
    if area <= 0:
        raise ValueError("electrode area must be positive")
    return rms_current_sq_ma2(amplitude_ua, frequency_hz, shape) / (area * area)


def rms_current_density_ma_cm2(amplitude_ua, frequency_hz, shape: PulseShape, area_cm2) -> float:
    """``I_rms / area`` in mA/cm² (float)."""
    return math.sqrt(rms_current_density_sq(amplitude_ua, frequency_hz, shape, area_cm2))


def power_density_w_cm2(amplitude_ua, frequency_hz, shape: PulseShape, area_cm2,
                        load_ohm=LOAD_OHM) -> Fraction:
    """``I_rms²·R / area`` in W/cm², exact."""
    area = exact(area_cm2)
    if area <= 0:
        raise ValueError("electrode area must be positive")
    return rms_current_sq_ma2(amplitude_ua, frequency_hz, shape) / 10**6 * load_ohm / area


def peak_voltage_v(amplitude_ua, shape: Optional[PulseShape] = None, load_ohm=LOAD_OHM) -> Fraction:
    """Voltage across the reference load at the peak current, V."""
    current = peak_current_ua(amplitude_ua, shape) if shape is not None else abs(exact(amplitude_ua))
    return current * _US * load_ohm


def shannon_k(charge_uc, area_cm2) -> float:
    """``log10(Q/A) + log10(Q)`` (Q µC per phase, A cm²); ``-inf`` for Q = 0."""
    q, area = exact(charge_uc), exact(area_cm2)
    if q <= 0:
        return float("-inf")
    return math.log10(q / area) + math.log10(q)


def shannon_k_exceeds(charge_uc, area_cm2, k_max: Fraction = MAX_SHANNON_K) -> bool:
    """Exactly whether ``log10(Q²/A) > k_max`` (k_max rational p/q: ``(Q²/A)^q > 10^p``)."""
    q, area = exact(charge_uc), exact(area_cm2)
    if q <= 0:
        return False
    x = q * q / area
    k_max = exact(k_max)
    return x ** k_max.denominator > Fraction(10) ** k_max.numerator


def shannon_max_charge_uc(area_cm2, k_max: Fraction = MAX_SHANNON_K) -> float:
    """The charge per phase at which k reaches ``k_max`` on ``area``: ``sqrt(A·10^k)``."""
    return math.sqrt(float(area_cm2) * 10 ** float(k_max))


# --- electrodes ----------------------------------------------------------------------------------
def smaller_electrode(electrodes: Sequence):
    """The electrode of the pair with the smaller area (the first on a tie); None without electrodes."""
    best = None
    for e in electrodes:
        if best is None or exact(e.area_cm2) < exact(best.area_cm2):
            best = e
    return best


# --- one summary for `stimscript info` ----------------------------------------------------------
@dataclass(frozen=True)
class PulseMetrics:
    """Every derived number of one channel use (the conservative model); densities None without area."""

    amplitude_ua: Fraction
    frequency_hz: Fraction
    charge_per_phase_uc: Fraction
    net_charge_ratio: Fraction
    rms_current_ma: float
    energy_per_pulse_mj: Fraction
    peak_voltage_v: Fraction
    area_cm2: Optional[Fraction] = None
    rms_current_density_ma_cm2: Optional[float] = None
    power_density_w_cm2: Optional[Fraction] = None
    shannon_k: Optional[float] = None


def pulse_metrics(amplitude_ua, frequency_hz, shape: PulseShape,
                  area_cm2=None) -> PulseMetrics:
    q = max_phase_charge_uc(amplitude_ua, shape)
    area = exact(area_cm2) if area_cm2 is not None and exact(area_cm2) > 0 else None
    return PulseMetrics(
        amplitude_ua=exact(amplitude_ua),
        frequency_hz=exact(frequency_hz),
        charge_per_phase_uc=q,
        net_charge_ratio=net_charge_ratio(shape),
        rms_current_ma=rms_current_ma(amplitude_ua, frequency_hz, shape),
        energy_per_pulse_mj=energy_per_pulse_mj(amplitude_ua, shape),
        peak_voltage_v=peak_voltage_v(amplitude_ua, shape),
        area_cm2=area,
        rms_current_density_ma_cm2=(rms_current_density_ma_cm2(amplitude_ua, frequency_hz, shape, area)
                                    if area else None),
        power_density_w_cm2=power_density_w_cm2(amplitude_ua, frequency_hz, shape, area) if area else None,
        shannon_k=shannon_k(q, area) if area else None,
    )


def use_metrics(use) -> PulseMetrics:
    """:func:`pulse_metrics` of a :class:`~stimscript.compiler.model.ChannelUse` (smaller electrode)."""
    small = smaller_electrode(use.electrodes)
    return pulse_metrics(use.amplitude_ua, use.frequency_hz, use.shape,
                         small.area_cm2 if small is not None else None)
