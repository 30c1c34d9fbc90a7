"""The typed AST: frozen dataclasses, one per construct, each with the source span it came from.

Spans are excluded from equality, so ``parse(fmt(x)) == parse(x)``. The transformer only builds these;
meaning (units, names, limits) is the checker's business (stimscript.compiler.checker).
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Optional, Union

from ..spans import Span


@dataclass(frozen=True)
class Node:
    span: Optional[Span] = field(default=None, compare=False, repr=False, kw_only=True)


# --- expressions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Number(Node):
    """A literal with an optional unit (canonical spelling: 'us', 'uA', 'uC' for the µ forms)."""

    value: Fraction
    unit: Optional[str] = None


@dataclass(frozen=True)
class Name(Node):
    """A reference to a param (in expressions) or to a channel/cycle/electrode (elsewhere)."""

    name: str


@dataclass(frozen=True)
class PercentOf(Node):
    """``P% NAME``: a percentage of a param."""

    percent: Fraction
    name: Name


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # '+', '-', '*', '/'
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Neg(Node):
    operand: "Expr"


Expr = Union[Number, Name, PercentOf, BinOp, Neg]


# --- protocol header ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HeaderField(Node):
    key: str  # reference | indication | author | version | description | population | notes
    value: str


@dataclass(frozen=True)
class Plan(Node):
    """``plan N sessions per day|week, W weeks``."""

    sessions: Expr
    per: str  # 'day' | 'week'
    weeks: Expr


@dataclass(frozen=True)
class Header(Node):
    title: str
    fields: tuple[HeaderField, ...] = ()
    plan: Optional[Plan] = None


# --- declarations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param(Node):
    name: str
    default: Expr
    low: Optional[Expr] = None
    high: Optional[Expr] = None
    description: Optional[str] = None


@dataclass(frozen=True)
class Electrode(Node):
    """``electrode NAME W x H`` (width/height set) or ``electrode NAME AREA`` (area set)."""

    name: str
    width: Optional[Expr] = None
    height: Optional[Expr] = None
    area: Optional[Expr] = None


@dataclass(frozen=True)
class ShapePhase(Node):
    amplitude: Expr  # relative, dimensionless
    duration: Expr


@dataclass(frozen=True)
class Pulse(Node):
    """A pulse shape. Which fields are set depends on ``kind``:

    monophasic: width · biphasic: width [gap] · asymmetric: width ratio [gap] ·
    burst: carrier duration · doublet: width spacing · shape: phases

    ``Pulse(kind, ...)`` builds the node type of its kind (:class:`Monophasic`, :class:`Biphasic`,
    :class:`Asymmetric`, :class:`Burst`, :class:`Doublet`, :class:`CustomShape`), whose required fields are
    typed as set, so ``isinstance(pulse, ast.Biphasic)`` lets the type checker see ``pulse.width`` is an Expr.
    Fields and equality are those of ``Pulse``: the kind types add no field.
    """

    kind: str
    width: Optional[Expr] = None
    gap: Optional[Expr] = None
    ratio: Optional[Expr] = None
    carrier: Optional[Expr] = None
    duration: Optional[Expr] = None
    spacing: Optional[Expr] = None
    phases: tuple[ShapePhase, ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "Pulse":
        if cls is Pulse:  # the node type of the kind (an unknown kind stays a plain Pulse)
            cls = PULSE_KINDS.get(args[0] if args else kwargs.get("kind"), Pulse)
        return super().__new__(cls)


@dataclass(frozen=True)
class Monophasic(Pulse):
    """``pulse monophasic W``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        _: KW_ONLY
        width: Expr


@dataclass(frozen=True)
class Biphasic(Pulse):
    """``pulse biphasic W [gap G]``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        _: KW_ONLY
        width: Expr


@dataclass(frozen=True)
class Asymmetric(Pulse):
    """``pulse asymmetric W ratio R [gap G]``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        _: KW_ONLY
        width: Expr
        ratio: Expr


@dataclass(frozen=True)
class Burst(Pulse):
    """``pulse burst C for D`` (a carrier of frequency C for D)."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        _: KW_ONLY
        carrier: Expr
        duration: Expr


@dataclass(frozen=True)
class Doublet(Pulse):
    """``pulse doublet W spacing S``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        _: KW_ONLY
        width: Expr
        spacing: Expr


@dataclass(frozen=True)
class CustomShape(Pulse):
    """``pulse shape { a for d; ... }``: the phases as written."""


#: kind word -> node type (what ``Pulse(kind, ...)`` builds)
PULSE_KINDS: dict[Any, type[Pulse]] = {
    "monophasic": Monophasic, "biphasic": Biphasic, "asymmetric": Asymmetric, "burst": Burst,
    "doublet": Doublet, "shape": CustomShape,
}


@dataclass(frozen=True)
class Site(Node):
    """``site MUSCLE [SIDE]`` (an atlas name) or ``site "free text" [SIDE]`` (a custom placement).

    Exactly one of ``muscle`` and ``custom`` is set. ``side`` is the word as written: 'left' and 'right'
    are the only valid ones, the checker explains any other (``both``).
    """

    muscle: Optional[Name] = None
    side: Optional[str] = None
    custom: Optional[str] = None

    @property
    def text(self) -> str:
        """The site as a person reads it: the atlas name or the custom description."""
        return self.custom if self.custom is not None else (self.muscle.name if self.muscle else "")


@dataclass(frozen=True)
class ElectrodePair(Node):
    """``electrodes A -> B``: A is the cathode of the leading phase (the active electrode, negative while
    the first phase flows), B the anode; the roles swap in a biphasic pulse's second phase."""

    first: Name
    second: Name


@dataclass(frozen=True)
class Setting(Node):
    """``frequency EXPR`` or ``amplitude EXPR`` inside a channel."""

    key: str  # 'frequency' | 'amplitude'
    value: Expr


ChannelStmt = Union[Site, ElectrodePair, Pulse, Setting]


@dataclass(frozen=True)
class Channel(Node):
    name: str
    number: int
    body: tuple[ChannelStmt, ...] = ()
    name_span: Optional[Span] = field(default=None, compare=False, repr=False, kw_only=True)
    number_span: Optional[Span] = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class CycleStep(Node):
    kind: str  # 'ramp_up' | 'hold' | 'ramp_down' | 'rest'
    duration: Expr


@dataclass(frozen=True)
class Cycle(Node):
    name: str
    steps: tuple[CycleStep, ...] = ()


# --- session ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Override(Node):
    """``with frequency 5 Hz`` / ``amplitude 50% intensity`` / ``pulse biphasic 300 us``."""

    key: str  # 'frequency' | 'amplitude' | 'pulse'
    value: Union[Expr, Pulse]


@dataclass(frozen=True)
class Line(Node):
    """``quad, hams: contraction [with ...] [after T]`` — channels run the cycle in parallel."""

    channels: tuple[Name, ...]
    cycle: Name
    overrides: tuple[Override, ...] = ()
    after: Optional[Expr] = None


@dataclass(frozen=True)
class Repeat(Node):
    """``repeat N { ... }``: its body is either ``lines`` (run in parallel, each N times) or ``blocks``
    (a set: the sequence of blocks run N times); never both."""

    count: Expr
    lines: tuple[Line, ...] = ()
    blocks: tuple["Block", ...] = ()


@dataclass(frozen=True)
class For(Node):
    """``for T { ... }``: ``lines`` run whole cycles while they fit, or ``blocks`` (a set) run whole passes
    while they fit; the block lasts exactly T."""

    duration: Expr
    lines: tuple[Line, ...] = ()
    blocks: tuple["Block", ...] = ()


@dataclass(frozen=True)
class Pause(Node):
    duration: Expr


Block = Union[Repeat, For, Pause]


@dataclass(frozen=True)
class Session(Node):
    blocks: tuple[Block, ...] = ()


# --- progression --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target(Node):
    """``intensity`` or ``contraction.hold`` or ``quad.frequency``."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Assignment(Node):
    target: Target
    op: str  # '=' | '+=' | '-='
    value: Expr
    bound: Optional[Expr] = None  # the cap: 'up to X' or 'down to X'
    bound_kind: Optional[str] = None  # 'up' | 'down'


@dataclass(frozen=True)
class Week(Node):
    """``week N { ... }`` (first == last), ``week A..B { ... }`` or ``week N.. { ... }`` (last is None:
    from week N to the end of the plan). Applies in the weeks of its range only."""

    first: int
    last: Optional[int]
    assignments: tuple[Assignment, ...] = ()

    def holds(self, week: int) -> bool:
        return self.first <= week and (self.last is None or week <= self.last)

    @property
    def label(self) -> str:
        if self.last is None:
            return f"week {self.first}.."
        return f"week {self.first}" if self.first == self.last else f"week {self.first}..{self.last}"


@dataclass(frozen=True)
class EveryWeek(Node):
    assignments: tuple[Assignment, ...] = ()


@dataclass(frozen=True)
class Progression(Node):
    weeks: tuple[Union[Week, EveryWeek], ...] = ()


# --- limits -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limit(Node):
    """``max current 60 mA`` → bound='max', quantity='current'."""

    bound: str  # 'max' | 'min'
    quantity: str  # current | frequency | pulse width | charge | duration | channels | voltage | density | amplitude
    value: Expr


@dataclass(frozen=True)
class Allow(Node):
    """``allow monophasic`` (top level or inside limits)."""

    what: str


@dataclass(frozen=True)
class Limits(Node):
    items: tuple[Union[Limit, Allow], ...] = ()


Item = Union[Header, Param, Electrode, Channel, Cycle, Session, Progression, Limits, Allow]


@dataclass(frozen=True)
class Protocol(Node):
    """A whole file. ``items`` keeps source order (the formatter prints them in that order)."""

    version: Optional[int] = None
    items: tuple[Item, ...] = ()

    def _of(self, cls):
        return tuple(i for i in self.items if isinstance(i, cls))

    @property
    def header(self) -> Optional[Header]:
        found = self._of(Header)
        return found[0] if found else None

    @property
    def params(self) -> tuple[Param, ...]:
        return self._of(Param)

    @property
    def electrodes(self) -> tuple[Electrode, ...]:
        return self._of(Electrode)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self._of(Channel)

    @property
    def cycles(self) -> tuple[Cycle, ...]:
        return self._of(Cycle)

    @property
    def sessions(self) -> tuple[Session, ...]:
        return self._of(Session)

    @property
    def progressions(self) -> tuple[Progression, ...]:
        return self._of(Progression)

    @property
    def limits(self) -> tuple[Limits, ...]:
        return self._of(Limits)

    @property
    def allows(self) -> tuple[Allow, ...]:
        top = self._of(Allow)
        inner = tuple(i for lim in self.limits for i in lim.items if isinstance(i, Allow))
        return top + inner
