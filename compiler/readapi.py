"""The typed read API of a checked protocol: what one session is made of, in plain frozen values.

``CheckedProtocol.describe(session, params)`` returns a :class:`Description`; the setup sheet, ``info`` and
the plot read protocols through it (and through ``CheckedProtocol.weeks()``), so nothing outside the compiler
walks the AST. Every number is the one the session runs with (the week's progression and ``--set``
overrides applied); the ``*_text`` fields keep what the file says, for a reader who compares with it.

    >>> d = stimscript.load("examples/tka_quadriceps.stim").describe(session=1)
    >>> [(c.name, c.site.text, c.frequency_hz) for c in d.channels]
    [('quad', 'vastus medialis, right side', Fraction(50, 1))]
    >>> [(b.label, [(bc.name, bc.pulses) for bc in b.channels]) for b in d.blocks]
    [('repeat 15 × contraction', [('quad', 11235)])]
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Optional

from ..dsl import ast
from . import expander
from .atlas import AtlasEntry, lookup
from .energy import PulseMetrics, use_metrics
from .ir import PulseShape, Train
from .lowering import Timing
from .record import init
from .progression import WeekTable

if TYPE_CHECKING:  # pragma: no cover
    from .model import ResolvedSession
    from .protocol import CheckedProtocol


@dataclass(frozen=True)
class Electrode:
    """One declared electrode: its name, its area and its size as written (``7.6 cm × 12.7 cm``, ``25 cm²``)."""

    name: str
    area_cm2: Fraction
    size_text: str


@dataclass(frozen=True)
class Site:
    """Where a channel's electrodes go: an atlas muscle (with the atlas entry) or a custom placement."""

    name: str                       # the atlas name ('vastus_medialis') or the custom text as written
    side: str = ""                  # 'left' | 'right' | ''
    custom: bool = False
    atlas: Optional[AtlasEntry] = None

    @property
    def text(self) -> str:
        """'vastus medialis, right side' / 'two fingers below the fibular head'."""
        base = self.name if self.custom else (self.atlas.muscle if self.atlas else self.name.replace("_", " "))
        return f"{base}, {self.side} side" if self.side else base


@dataclass(frozen=True)
class Channel:
    """One output channel with the values of this session (at full output, before the envelope)."""

    number: int
    name: str
    site: Optional[Site]
    cathode: Optional[Electrode]     # the first of ``electrodes A -> B``: cathode (−) of the leading phase
    anode: Optional[Electrode]
    pulse: PulseShape
    pulse_text: str                  # as written: 'biphasic 250 us gap 50 us'
    frequency_hz: Fraction
    frequency_text: str              # as written: '50 Hz', 'base_f * 2'
    amplitude_ua: Fraction
    amplitude_text: str              # as written: 'intensity', '80% intensity'
    param: Optional[str]             # the param the amplitude follows (what live +/- changes)
    pulses: int                      # pulses of this channel in this session


class Cycle(Timing):
    """A cycle as this session runs it, in whole µs (``continuous``: on for its whole block, no ramps): the
    lowering's :class:`~stimscript.compiler.lowering.Timing` (``on_us``, ``cycle_us``, ``continuous``)
    with its name."""

    __slots__ = ("name",)
    _fields = ("name", "ramp_up_us", "hold_us", "ramp_down_us", "rest_us")
    _compare = _fields
    name: str

    def __init__(self, name: str, ramp_up_us: int, hold_us: int, ramp_down_us: int, rest_us: int) -> None:
        super().__init__(ramp_up_us, hold_us, ramp_down_us, rest_us)
        init(self, "name", name)


@dataclass(frozen=True)
class BlockChannel:
    """What one channel does in one block."""

    number: int
    name: str
    cycle: Cycle
    frequency_hz: Fraction
    amplitude_ua: Fraction
    pulses: int
    contractions: int                # cycles that start in this block


@dataclass(frozen=True)
class Block:
    """One stretch of the session timeline: a block of lines (one pass of it, for sets) or a pause."""

    number: int                      # 1-based, in time order (pauses included)
    label: str                       # 'set 2/3 · repeat 10 × contraction', 'pause 2 min'
    kind: str                        # 'block' | 'pause'
    start_us: int
    end_us: int
    channels: tuple[BlockChannel, ...] = ()

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True)
class PulseNumbers:
    """The safety numbers of one channel at one amplitude, frequency and pulse (full amplitude, the smaller of
    its electrodes, the 500 Ω load model of ``compiler/energy.py``): what ``info`` tabulates per channel."""

    number: int
    metrics: PulseMetrics


@dataclass(frozen=True)
class Description:
    """One session of a protocol, read-only: channels, electrodes, sites, cycles, blocks and the weeks."""

    session: int
    week: int
    duration_us: int
    channels: tuple[Channel, ...]
    electrodes: tuple[Electrode, ...]
    cycles: tuple[Cycle, ...]        # the cycles this session runs, by name, in order of first use
    blocks: tuple[Block, ...]
    weeks: WeekTable
    progression: tuple[str, ...]     # the progression as written, one line per week block
    pulse_numbers: tuple[PulseNumbers, ...] = ()   # by channel; one row per distinct amplitude/frequency/pulse

    @property
    def sites(self) -> tuple[Site, ...]:
        """Each distinct site once, in channel order."""
        seen: dict = {}
        for ch in self.channels:
            if ch.site is not None:
                seen.setdefault((ch.site.name, ch.site.side), ch.site)
        return tuple(seen.values())

    def channel(self, number_or_name) -> Channel:
        for ch in self.channels:
            if number_or_name in (ch.number, ch.name):
                return ch
        raise KeyError(number_or_name)

    def pulses_per_channel(self) -> dict[int, int]:
        return {ch.number: ch.pulses for ch in self.channels}


# --- building it (the only place outside the checker that reads the AST) -----------------------------
def _fmt(expr) -> str:
    from ..dsl.formatter import format_expr

    return format_expr(expr) if expr is not None else ""


def _electrodes(tree: ast.Protocol, resolved: "ResolvedSession") -> dict[str, Electrode]:
    areas = {el.name: el.area_cm2 for use in resolved.uses for el in use.electrodes}
    out = {}
    for decl in tree.electrodes:
        if decl.width is not None and decl.height is not None:
            size = f"{_fmt(decl.width)} × {_fmt(decl.height)}"
        else:
            size = _fmt(decl.area)
        out[decl.name] = Electrode(decl.name, areas.get(decl.name, Fraction(0)), size)
    return out


def _body(ch: ast.Channel, cls, key: Optional[str] = None):
    for stmt in ch.body:
        if isinstance(stmt, cls) and (key is None or getattr(stmt, "key", None) == key):
            return stmt
    return None


def _cycle_of(tr: Train, name: str) -> Cycle:
    hold = tr.on_us - tr.ramp_up_us - tr.ramp_down_us
    return Cycle(name, tr.ramp_up_us, hold, tr.ramp_down_us, tr.cycle_us - tr.on_us)


def _contractions(tr: Train, t0: int, t1: int) -> int:
    """Cycles of ``tr`` that start in [t0, t1)."""
    def starts_before(t: int) -> int:
        return min(tr.cycles, max(0, -(-(t - tr.start_us) // tr.cycle_us)))

    return starts_before(t1) - starts_before(t0)


def _progression_lines(tree: ast.Protocol) -> tuple[str, ...]:
    lines = []
    for prog in tree.progressions:
        for block in prog.weeks:
            head = block.label if isinstance(block, ast.Week) else "every week"
            stmts = []
            for a in block.assignments:
                text = f"{'.'.join(a.target.path)} {a.op} {_fmt(a.value)}"
                if a.bound is not None:
                    text += f" {a.bound_kind} to {_fmt(a.bound)}"
                stmts.append(text)
            lines.append(f"{head}: " + "; ".join(stmts))
    return tuple(lines)


def describe(proto: "CheckedProtocol", session: int = 1, params: Optional[dict] = None) -> Description:
    """The :class:`Description` of ``session`` of ``proto`` (``params``: overrides, as for ``compile``)."""
    from ..dsl.formatter import format_pulse_inline

    resolved = proto.resolve(session=session, params=params)
    tree = proto.ast
    electrodes = _electrodes(tree, resolved)
    decls = {c.number: c for c in tree.channels}
    trains = resolved.trains
    uses = resolved.uses
    tuses = resolved.train_uses or ()

    def cycle_name(i: int) -> str:
        return uses[tuses[i]].cycle if i < len(tuses) and tuses[i] < len(uses) else ""

    channels = []
    for info in resolved.channels:
        decl = decls.get(info.number)
        site = None
        if info.site:
            site = Site(info.site, info.side, info.site_custom, None if info.site_custom else lookup(info.site))
        pulse = _body(decl, ast.Pulse) if decl is not None else None
        freq = _body(decl, ast.Setting, "frequency") if decl is not None else None
        amp = _body(decl, ast.Setting, "amplitude") if decl is not None else None
        mine = [tr for tr in trains if tr.channel == info.number]
        channels.append(Channel(
            number=info.number, name=info.name, site=site,
            cathode=electrodes.get(info.cathode), anode=electrodes.get(info.anode),
            pulse=resolved.shapes[info.shape], pulse_text=format_pulse_inline(pulse) if pulse is not None else "",
            frequency_hz=Fraction(info.frequency_hz), frequency_text=_fmt(freq.value) if freq else "",
            amplitude_ua=Fraction(info.amplitude_ua),
            amplitude_text=_fmt(amp.value) if amp else "", param=info.param,
            pulses=expander.count(mine, 0, resolved.duration_us) if mine else 0))
    names = {c.number: c.name for c in channels}

    cycles: dict[str, Cycle] = {}
    for i, tr in enumerate(trains):
        name = cycle_name(i)
        if name and name != "continuous":
            cycles.setdefault(name, _cycle_of(tr, name))

    blocks = []
    for k, seg in enumerate(resolved.segments, 1):
        rows = []
        for i, tr in enumerate(trains):
            if tr.start_us >= seg.end_us or tr.end_us <= seg.start_us:
                continue
            n = expander.count([tr], seg.start_us, seg.end_us)
            starts = _contractions(tr, seg.start_us, seg.end_us)
            if not n and not starts:
                continue
            rows.append(BlockChannel(tr.channel, names.get(tr.channel, f"ch {tr.channel}"),
                                     _cycle_of(tr, cycle_name(i)), Fraction(10**6) / tr.period,
                                     tr.amplitude, n, starts))
        rows.sort(key=lambda r: r.number)
        blocks.append(Block(k, seg.label, seg.kind, seg.start_us, seg.end_us, tuple(rows)))

    numbers: dict[tuple, PulseNumbers] = {}
    for use in sorted(uses, key=lambda u: u.number):
        numbers.setdefault((use.number, use.amplitude_ua, use.frequency_hz, use.shape),
                           PulseNumbers(use.number, use_metrics(use)))

    return Description(session=resolved.session, week=resolved.week, duration_us=resolved.duration_us,
                       channels=tuple(channels), electrodes=tuple(electrodes.values()),
                       cycles=tuple(cycles.values()), blocks=tuple(blocks), weeks=proto.weeks(params),
                       progression=_progression_lines(tree), pulse_numbers=tuple(numbers.values()))
