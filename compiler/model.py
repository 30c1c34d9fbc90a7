"""What the checker resolves for one session of a protocol, before and beside lowering.

The checker (checker.py) evaluates every expression for a given session (params, overrides and the
week's progression applied) into these plain values; safety.py judges them; lowering.py turns them into
Trains. Keeping them here lets the safety rules be written and tested without the parser.
"""
from __future__ import annotations

from ..valueclass import dataclass, field
from fractions import Fraction

from ..spans import Span
from ..units import Quantity
from ..pulses import ChannelInfo, PulseShape, Segment, Train

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


@dataclass(frozen=True)
class ElectrodeInfo:
    name: str
    area_cm2: Fraction
    span: Optional[Span] = None  # the `electrode` declaration


@dataclass(frozen=True)
class ChannelUse:
    """One channel's settings as one session line uses them (channel settings + that line's `with`)."""

    channel: str
    number: int
    amplitude_ua: Fraction          # full amplitude A (before the envelope), exact
    frequency_hz: Fraction
    shape: PulseShape
    electrodes: tuple[ElectrodeInfo, ...] = ()   # the pair (0 or 2 entries)
    ramp_up_us: int = 0             # of the cycle the line runs (0 for `continuous`)
    on_us: int = 0
    block: int = 0                  # index of the session block (0-based)
    cycle: str = ""                 # the cycle the line runs ('continuous' is the built-in one)
    #: where each value came from: keys 'channel', 'amplitude', 'frequency', 'pulse', 'electrodes', 'line',
    #: 'cycle' (the overriding `with` clause's span replaces the channel's when a line overrides it)
    spans: dict = field(default_factory=dict, compare=False)


def channel_use(channel: str, number: int, amplitude_ua: Fraction, frequency_hz: Fraction, shape: PulseShape,
                electrodes: tuple[ElectrodeInfo, ...], ramp_up_us: int, on_us: int, block: int, cycle: str,
                spans: dict) -> ChannelUse:
    """``ChannelUse(...)`` with every field given, built without the frozen dataclass's field-by-field
    ``__init__`` (the checker makes one per channel of each line it measures, from checked values)."""
    use = object.__new__(ChannelUse)
    use.__dict__.update({"channel": channel, "number": number, "amplitude_ua": amplitude_ua,
                         "frequency_hz": frequency_hz, "shape": shape, "electrodes": electrodes,
                         "ramp_up_us": ramp_up_us, "on_us": on_us, "block": block, "cycle": cycle, "spans": spans})
    return use


@dataclass(frozen=True)
class LimitValue:
    bound: str        # 'max' | 'min'
    quantity: str     # current | frequency | pulse width | charge | duration | channels | voltage | density
    value: Quantity
    span: Optional[Span] = None


@dataclass
class ResolvedSession:
    """Everything one session of a protocol means, in exact numbers."""

    session: int
    week: int
    duration_us: int
    uses: tuple[ChannelUse, ...]
    trains: tuple[Train, ...]
    shapes: tuple[PulseShape, ...]
    channels: tuple[ChannelInfo, ...]
    segments: tuple[Segment, ...] = ()
    params: dict = field(default_factory=dict)          # name -> Quantity used this session
    limits: tuple[LimitValue, ...] = ()
    allow_monophasic: bool = False
    session_span: Optional[Span] = None
    #: per train, the index in ``uses`` of the line it comes from; None when the trains are not tied to uses
    #: (then the rules that need delivered pulses fall back to the declared values of each use)
    train_uses: Optional[tuple[int, ...]] = None
