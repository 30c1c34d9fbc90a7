"""Quantities with units, in exact rational arithmetic.

A :class:`Quantity` is a ``Fraction`` in SI base units (s, A, V, m) plus a dimension vector. Nothing here
ever goes through a float, so 33.3 Hz is exactly 333/10 Hz and a period is exactly 10_000_000/333 µs.
Conversion to the schedule's integers (µs, µA) rounds half to even (Python's ``round`` on a Fraction).
"""
from __future__ import annotations

from .valueclass import dataclass
from fractions import Fraction

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

# Dimension vector: exponents of (time, current, voltage, length).
Dim = tuple[int, int, int, int]

COUNT: Dim = (0, 0, 0, 0)
TIME: Dim = (1, 0, 0, 0)
FREQUENCY: Dim = (-1, 0, 0, 0)
CURRENT: Dim = (0, 1, 0, 0)
VOLTAGE: Dim = (0, 0, 1, 0)
CHARGE: Dim = (1, 1, 0, 0)
LENGTH: Dim = (0, 0, 0, 1)
AREA: Dim = (0, 0, 0, 2)

DIM_NAMES: dict[Dim, str] = {
    COUNT: "count",
    TIME: "time",
    FREQUENCY: "frequency",
    CURRENT: "current",
    VOLTAGE: "voltage",
    CHARGE: "charge",
    LENGTH: "length",
    AREA: "area",
}

#: unit spelling -> (factor to SI, dimension)
UNITS: dict[str, tuple[Fraction, Dim]] = {
    "us": (Fraction(1, 10**6), TIME),
    "µs": (Fraction(1, 10**6), TIME),
    "μs": (Fraction(1, 10**6), TIME),  # Greek mu, the other common spelling
    "ms": (Fraction(1, 1000), TIME),
    "s": (Fraction(1), TIME),
    "min": (Fraction(60), TIME),
    "h": (Fraction(3600), TIME),
    "Hz": (Fraction(1), FREQUENCY),
    "kHz": (Fraction(1000), FREQUENCY),
    "uA": (Fraction(1, 10**6), CURRENT),
    "µA": (Fraction(1, 10**6), CURRENT),
    "μA": (Fraction(1, 10**6), CURRENT),
    "mA": (Fraction(1, 1000), CURRENT),
    "mV": (Fraction(1, 1000), VOLTAGE),
    "V": (Fraction(1), VOLTAGE),
    "nC": (Fraction(1, 10**9), CHARGE),
    "uC": (Fraction(1, 10**6), CHARGE),
    "µC": (Fraction(1, 10**6), CHARGE),
    "μC": (Fraction(1, 10**6), CHARGE),
    "mm": (Fraction(1, 1000), LENGTH),
    "cm": (Fraction(1, 100), LENGTH),
    "cm2": (Fraction(1, 10**4), AREA),
    "%": (Fraction(1, 100), COUNT),
}

#: the unit each dimension is shown in (formatter, messages)
DISPLAY_UNIT: dict[Dim, str] = {
    TIME: "s",
    FREQUENCY: "Hz",
    CURRENT: "mA",
    VOLTAGE: "V",
    CHARGE: "µC",
    LENGTH: "cm",
    AREA: "cm2",
    COUNT: "",
}


def dim_name(dim: Dim) -> str:
    """A readable name for a dimension vector ('current', 'time·current', ...)."""
    if dim in DIM_NAMES:
        return DIM_NAMES[dim]
    names = ("time", "current", "voltage", "length")
    parts = []
    for name, exp in zip(names, dim):
        if exp == 1:
            parts.append(name)
        elif exp:
            parts.append(f"{name}^{exp}")
    return "·".join(parts) or "count"


def _dim_add(a: Dim, b: Dim, sign: int = 1) -> Dim:
    return tuple(x + sign * y for x, y in zip(a, b))  # type: ignore[return-value]


class DimensionError(ValueError):
    """Two quantities of different dimensions were combined (caller turns it into a diagnostic)."""

    def __init__(self, expected: Dim, found: Dim, what: str = ""):
        self.expected, self.found = expected, found
        super().__init__(f"expected {dim_name(expected)}, found {dim_name(found)}" + (f" ({what})" if what else ""))


@dataclass(frozen=True)
class Quantity:
    """An exact quantity: ``value`` in SI base units, ``dim`` its dimension."""

    value: Fraction
    dim: Dim = COUNT

    @classmethod
    def of(cls, number: Union[int, str, Fraction], unit: str | None = None) -> "Quantity":
        """``Quantity.of("45", "mA")``; raises KeyError for an unknown unit."""
        value = Fraction(number)
        if unit is None or unit == "":
            return cls(value, COUNT)
        factor, dim = UNITS[unit]
        return cls(value * factor, dim)

    # arithmetic -----------------------------------------------------------------------------
    def __add__(self, other: "Quantity") -> "Quantity":
        if self.dim != other.dim:
            raise DimensionError(self.dim, other.dim, "in +")
        return Quantity(self.value + other.value, self.dim)

    def __sub__(self, other: "Quantity") -> "Quantity":
        if self.dim != other.dim:
            raise DimensionError(self.dim, other.dim, "in -")
        return Quantity(self.value - other.value, self.dim)

    def __mul__(self, other: "Quantity") -> "Quantity":
        return Quantity(self.value * other.value, _dim_add(self.dim, other.dim))

    def __truediv__(self, other: "Quantity") -> "Quantity":
        if other.value == 0:
            raise ZeroDivisionError("division by zero")
        return Quantity(self.value / other.value, _dim_add(self.dim, other.dim, -1))

    def __neg__(self) -> "Quantity":
        return Quantity(-self.value, self.dim)

    def in_unit(self, unit: str) -> Fraction:
        """The value expressed in ``unit`` (exact)."""
        factor, dim = UNITS[unit]
        if dim != self.dim:
            raise DimensionError(dim, self.dim)
        return self.value / factor

    # schedule integers -----------------------------------------------------------------------
    def to_us(self) -> int:
        """Time in integer µs, rounded half to even."""
        return round(self.in_unit("us"))

    def to_ua(self) -> int:
        """Current in integer µA, rounded half to even."""
        return round(self.in_unit("uA"))

    def __str__(self) -> str:
        return format_quantity(self)


def format_number(value: Fraction, max_decimals: int = 6) -> str:
    """Shortest exact decimal for ``value`` when it has one within ``max_decimals``, else rounded."""
    if value.denominator == 1:
        return str(value.numerator)
    for decimals in range(1, max_decimals + 1):
        scaled = value * 10**decimals
        if scaled.denominator == 1:
            text = f"{abs(scaled.numerator) // 10**decimals}.{abs(scaled.numerator) % 10**decimals:0{decimals}d}"
            return ("-" if value < 0 else "") + text
    return f"{float(value):.{max_decimals}g}"


def format_quantity(q: Quantity, unit: str | None = None) -> str:
    """Human form, e.g. '45 mA', '250 µs', '0.31 W/cm²' is done by callers; this covers the base dims."""
    if unit is None:
        unit = DISPLAY_UNIT.get(q.dim)
        if q.dim == TIME:
            us = q.in_unit("us")
            unit = "us" if abs(us) < 1000 else ("ms" if abs(us) < 10**6 else "s")
        elif q.dim == CURRENT:
            unit = "uA" if abs(q.in_unit("uA")) < 1000 else "mA"
    if unit is None:
        return f"{float(q.value):g} [{dim_name(q.dim)}]"
    if unit == "":
        return format_number(q.value)
    return f"{format_number(q.in_unit(unit))} {unit}"


def parse_quantity(text: str) -> Quantity:
    """Parse '45 mA', '45mA', '0.5', '50 %' (used by --set and params={...}); ValueError when malformed."""
    import re

    m = re.fullmatch(r"\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-zµμ%][A-Za-z0-9µμ]*|%)?\s*", text)
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    number, unit = m.group(1), m.group(2)
    if unit is not None and unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}")
    return Quantity.of(number, unit)
