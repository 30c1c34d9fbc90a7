"""The lowered form every later stage shares: pulse shapes, trains and the pulse record layout.

A contract module (docs/architecture.md): it imports nothing of the project, so the compiler that makes these
records, the expanders, the device programs, the drivers and the runtime that read them all depend on it and
not on each other. ``stimscript.compiler.ir`` re-exports the same names.

All times are integer µs; periods and amplitudes are exact rationals kept as
integer numerator/denominator pairs so both expanders (pure Python and Cython) compute the same integers.
"""
from __future__ import annotations

from .valueclass import dataclass, field
from fractions import Fraction

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    import numpy as np

    PULSE_DTYPE: np.dtype

#: One row per pulse, sorted by (t_us, channel). Normative (the README's Python API).
PULSE_FIELDS = [("t_us", "<i8"), ("channel", "u1"), ("amplitude_ua", "<i4"), ("shape", "<u2")]
#: the largest amplitude (µA, either sign) a schedule's ``amplitude_ua`` field (signed 32-bit) holds
MAX_AMPLITUDE_UA = 2**31 - 1


def __getattr__(name: str) -> Any:
    # PULSE_DTYPE is a numpy dtype; building it on first use keeps numpy out of commands that never
    # touch pulse arrays (``check``, ``fmt``: start-up time)
    if name == "PULSE_DTYPE":
        import numpy as np

        dtype = globals()["PULSE_DTYPE"] = np.dtype(PULSE_FIELDS)
        return dtype
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class PulseShape:
    """A pulse waveform: phases of (duration µs, amplitude relative to the first phase, which is +1.0).

    A gap is a phase of amplitude 0. ``kind`` names the construct it came from (biphasic, burst, ...).
    """

    phases: tuple[tuple[int, float], ...]
    kind: str = "custom"

    @property
    def duration_us(self) -> int:
        return sum(d for d, _ in self.phases)

    @property
    def active_us(self) -> int:
        """Time with current flowing (phases of non-zero amplitude)."""
        return sum(d for d, a in self.phases if a != 0)

    @property
    def net_charge_ratio(self) -> float:
        """Net charge per pulse relative to the first phase's charge (0 = perfectly balanced)."""
        first = self.phases[0][0] * abs(self.phases[0][1]) or 1
        return sum(d * a for d, a in self.phases) / first

    @property
    def first_phase_us(self) -> int:
        return self.phases[0][0]


@dataclass(frozen=True)
class Train:
    """One line of a session block on one channel: ``cycles`` cycles back to back from ``start_us``.

    Cycle ``c`` starts at ``start_us + c * cycle_us``. Inside a cycle, slot ``k`` lies at offset
    ``round(k * period_num / period_den)`` (half to even) and exists while that offset is ``< on_us``.
    Its amplitude is ``round(A * e(offset))`` µA with ``A = amp_num / amp_den`` and ``e`` the trapezoid
    (ramp up, hold, ramp down); slots whose amplitude rounds to 0 µA are not emitted.
    """

    channel: int
    start_us: int
    cycles: int
    cycle_us: int
    on_us: int
    ramp_up_us: int
    ramp_down_us: int
    period_num: int
    period_den: int
    amp_num: int
    amp_den: int
    shape: int

    @property
    def end_us(self) -> int:
        """End of the last cycle (its rest included)."""
        return self.start_us + self.cycles * self.cycle_us

    @property
    def period(self) -> Fraction:
        return Fraction(self.period_num, self.period_den)

    @property
    def amplitude(self) -> Fraction:
        return Fraction(self.amp_num, self.amp_den)


@dataclass(frozen=True)
class ChannelInfo:
    """What the runtime, plots and records need to know about one output channel."""

    number: int
    name: str
    site: str = ""
    side: str = ""
    electrodes: tuple[str, str] = ("", "")
    frequency_hz: Fraction = Fraction(0)
    amplitude_ua: int = 0
    shape: int = 0
    param: str | None = None  # the param that drives the amplitude (what 'intensity +/-' changes)
    site_custom: bool = False  # ``site`` is a free-text placement (not an atlas name)

    @property
    def cathode(self) -> str:
        """The electrode that is the cathode of the leading phase (the first of ``electrodes A -> B``)."""
        return self.electrodes[0]

    @property
    def anode(self) -> str:
        """The electrode that is the anode of the leading phase (the second of ``electrodes A -> B``)."""
        return self.electrodes[1]


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of the session timeline (a block or a pause), for plots and progress."""

    label: str
    start_us: int
    end_us: int
    kind: str = "block"  # "block" | "pause"
    extra: dict = field(default_factory=dict, compare=False)
