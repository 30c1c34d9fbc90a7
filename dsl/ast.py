"""The typed AST: frozen value classes, one per construct, each with the source span it came from.

Spans are excluded from equality, so ``parse(fmt(x)) == parse(x)``. The transformer only builds these;
meaning (units, names, limits) is the checker's business (stimscript.compiler.checker).

The nodes behave as frozen dataclasses (field-wise equality and hash, a repr without spans, assignment
refused, :func:`replace`, :func:`fields`) but are written out as plain classes: building ~45 dataclasses
costs more at start-up than checking a small file (``stimscript check`` imports this module on every run).
Each class lists its compared fields in ``_fields`` (the positional order of its ``__init__``); the
spans (``span``, and a channel's ``name_span``/``number_span``) are keyword-only and not compared.
"""
from __future__ import annotations

from fractions import Fraction

from ..spans import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Optional, Union


class FrozenNodeError(AttributeError):
    """An AST node was assigned to: nodes are values (share them, build new ones with :func:`replace`)."""


class Node:
    """The base of every node: value semantics over ``_fields``, the spans beside them."""

    span: Optional[Span]
    #: the compared fields, in the positional order of ``__init__``
    _fields: ClassVar[tuple[str, ...]] = ()
    #: keyword-only position fields beside ``span`` (not compared, not in the repr)
    _spans: ClassVar[tuple[str, ...]] = ("span",)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        return tuple([mine[f] for f in self._fields]) == tuple([theirs[f] for f in self._fields])

    def __hash__(self) -> int:
        d = self.__dict__
        return hash(tuple([d[f] for f in self._fields]))

    def __repr__(self) -> str:
        d = self.__dict__
        return f"{self.__class__.__qualname__}({', '.join(f'{f}={d[f]!r}' for f in self._fields)})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenNodeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenNodeError(f"cannot delete field {name!r}")


def fields(node: Node) -> tuple[str, ...]:
    """Every field of ``node``: the compared ones, then its spans."""
    return node._fields + node._spans


def replace(node: Node, **changes: Any) -> Any:
    """A copy of ``node`` with ``changes`` (as ``dataclasses.replace``)."""
    d = node.__dict__
    values = {f: d[f] for f in fields(node)}
    values.update(changes)
    return node.__class__(**values)


# --- expressions -------------------------------------------------------------------------------
class Number(Node):
    """A literal with an optional unit (canonical spelling: 'us', 'uA', 'uC' for the µ forms)."""

    value: Fraction
    unit: Optional[str]
    _fields = ("value", "unit")

    def __init__(self, value: Fraction, unit: Optional[str] = None, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, value=value, unit=unit)


class Name(Node):
    """A reference to a param (in expressions) or to a channel/cycle/electrode (elsewhere)."""

    name: str
    _fields = ("name",)

    def __init__(self, name: str, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, name=name)


class PercentOf(Node):
    """``P% NAME``: a percentage of a param."""

    percent: Fraction
    name: Name
    _fields = ("percent", "name")

    def __init__(self, percent: Fraction, name: Name, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, percent=percent, name=name)


class BinOp(Node):
    op: str  # '+', '-', '*', '/'
    left: "Expr"
    right: "Expr"
    _fields = ("op", "left", "right")

    def __init__(self, op: str, left: 'Expr', right: 'Expr', *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, op=op, left=left, right=right)


class Neg(Node):
    operand: "Expr"
    _fields = ("operand",)

    def __init__(self, operand: 'Expr', *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, operand=operand)


Expr = Number | Name | PercentOf | BinOp | Neg


# --- protocol header ---------------------------------------------------------------------------
class HeaderField(Node):
    key: str  # reference | indication | author | version | description | population | notes
    value: str
    _fields = ("key", "value")

    def __init__(self, key: str, value: str, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, key=key, value=value)


class Plan(Node):
    """``plan N sessions per day|week, W weeks``."""

    sessions: Expr
    per: str  # 'day' | 'week'
    weeks: Expr
    _fields = ("sessions", "per", "weeks")

    def __init__(self, sessions: Expr, per: str, weeks: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, sessions=sessions, per=per, weeks=weeks)


class Header(Node):
    title: str
    fields: tuple[HeaderField, ...]
    plan: Optional[Plan]
    _fields = ("title", "fields", "plan")

    def __init__(self, title: str, fields: tuple[HeaderField, ...] = (), plan: Optional[Plan] = None, *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, title=title, fields=fields, plan=plan)


# --- declarations -------------------------------------------------------------------------------
class Param(Node):
    name: str
    default: Expr
    low: Optional[Expr]
    high: Optional[Expr]
    description: Optional[str]
    _fields = ("name", "default", "low", "high", "description")

    def __init__(self, name: str, default: Expr, low: Optional[Expr] = None, high: Optional[Expr] = None,
            description: Optional[str] = None, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, name=name, default=default, low=low, high=high, description=description)


class Electrode(Node):
    """``electrode NAME W x H`` (width/height set) or ``electrode NAME AREA`` (area set)."""

    name: str
    width: Optional[Expr]
    height: Optional[Expr]
    area: Optional[Expr]
    _fields = ("name", "width", "height", "area")

    def __init__(self, name: str, width: Optional[Expr] = None, height: Optional[Expr] = None,
            area: Optional[Expr] = None, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, name=name, width=width, height=height, area=area)


class ShapePhase(Node):
    amplitude: Expr  # relative, dimensionless
    duration: Expr
    _fields = ("amplitude", "duration")

    def __init__(self, amplitude: Expr, duration: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, amplitude=amplitude, duration=duration)


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
    width: Optional[Expr]
    gap: Optional[Expr]
    ratio: Optional[Expr]
    carrier: Optional[Expr]
    duration: Optional[Expr]
    spacing: Optional[Expr]
    phases: tuple[ShapePhase, ...]
    _fields = ("kind", "width", "gap", "ratio", "carrier", "duration", "spacing", "phases")

    def __init__(self, kind: str, width: Optional[Expr] = None, gap: Optional[Expr] = None,
            ratio: Optional[Expr] = None, carrier: Optional[Expr] = None, duration: Optional[Expr] = None,
            spacing: Optional[Expr] = None, phases: tuple[ShapePhase, ...] = (), *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, kind=kind, width=width, gap=gap, ratio=ratio, carrier=carrier,
            duration=duration, spacing=spacing, phases=phases)

    def __new__(cls, *args: Any, **kwargs: Any) -> "Pulse":
        if cls is Pulse:  # the node type of the kind (an unknown kind stays a plain Pulse)
            cls = PULSE_KINDS.get(args[0] if args else kwargs.get("kind"), Pulse)
        return super().__new__(cls)


class Monophasic(Pulse):
    """``pulse monophasic W``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        width: Expr


class Biphasic(Pulse):
    """``pulse biphasic W [gap G]``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        width: Expr


class Asymmetric(Pulse):
    """``pulse asymmetric W ratio R [gap G]``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        width: Expr
        ratio: Expr


class Burst(Pulse):
    """``pulse burst C for D`` (a carrier of frequency C for D)."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        carrier: Expr
        duration: Expr


class Doublet(Pulse):
    """``pulse doublet W spacing S``."""

    if TYPE_CHECKING:  # the kind's required fields, as set (construction goes through Pulse(kind, ...))
        width: Expr
        spacing: Expr


class CustomShape(Pulse):
    """``pulse shape { a for d; ... }``: the phases as written."""


#: kind word -> node type (what ``Pulse(kind, ...)`` builds)
PULSE_KINDS: dict[Any, type[Pulse]] = {
    "monophasic": Monophasic, "biphasic": Biphasic, "asymmetric": Asymmetric, "burst": Burst,
    "doublet": Doublet, "shape": CustomShape,
}


class Site(Node):
    """``site MUSCLE [SIDE]`` (an atlas name) or ``site "free text" [SIDE]`` (a custom placement).

    Exactly one of ``muscle`` and ``custom`` is set. ``side`` is the word as written: 'left' and 'right'
    are the only valid ones, the checker explains any other (``both``).
    """

    muscle: Optional[Name]
    side: Optional[str]
    custom: Optional[str]
    _fields = ("muscle", "side", "custom")

    def __init__(self, muscle: Optional[Name] = None, side: Optional[str] = None, custom: Optional[str] = None, *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, muscle=muscle, side=side, custom=custom)


    @property
    def text(self) -> str:
        """The site as a person reads it: the atlas name or the custom description."""
        return self.custom if self.custom is not None else (self.muscle.name if self.muscle else "")


class ElectrodePair(Node):
    """``electrodes A -> B``: A is the cathode of the leading phase (the active electrode, negative while
    the first phase flows), B the anode; the roles swap in a biphasic pulse's second phase."""

    first: Name
    second: Name
    _fields = ("first", "second")

    def __init__(self, first: Name, second: Name, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, first=first, second=second)


class Setting(Node):
    """``frequency EXPR`` or ``amplitude EXPR`` inside a channel."""

    key: str  # 'frequency' | 'amplitude'
    value: Expr
    _fields = ("key", "value")

    def __init__(self, key: str, value: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, key=key, value=value)


ChannelStmt = Site | ElectrodePair | Pulse | Setting


class Channel(Node):
    name: str
    number: int
    body: tuple[ChannelStmt, ...]
    name_span: Optional[Span]
    number_span: Optional[Span]
    _fields = ("name", "number", "body")
    _spans = ("span", "name_span", "number_span")

    def __init__(self, name: str, number: int, body: tuple[ChannelStmt, ...] = (), *, span: Optional[Span] = None,
            name_span: Optional[Span] = None, number_span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, name=name, number=number, body=body, name_span=name_span,
            number_span=number_span)


class CycleStep(Node):
    kind: str  # 'ramp_up' | 'hold' | 'ramp_down' | 'rest'
    duration: Expr
    _fields = ("kind", "duration")

    def __init__(self, kind: str, duration: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, kind=kind, duration=duration)


class Cycle(Node):
    name: str
    steps: tuple[CycleStep, ...]
    _fields = ("name", "steps")

    def __init__(self, name: str, steps: tuple[CycleStep, ...] = (), *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, name=name, steps=steps)


# --- session ----------------------------------------------------------------------------------
class Override(Node):
    """``with frequency 5 Hz`` / ``amplitude 50% intensity`` / ``pulse biphasic 300 us``."""

    key: str  # 'frequency' | 'amplitude' | 'pulse'
    value: Union[Expr, Pulse]
    _fields = ("key", "value")

    def __init__(self, key: str, value: Union[Expr, Pulse], *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, key=key, value=value)


class Line(Node):
    """``quad, hams: contraction [with ...] [after T]`` — channels run the cycle in parallel."""

    channels: tuple[Name, ...]
    cycle: Name
    overrides: tuple[Override, ...]
    after: Optional[Expr]
    _fields = ("channels", "cycle", "overrides", "after")

    def __init__(self, channels: tuple[Name, ...], cycle: Name, overrides: tuple[Override, ...] = (),
            after: Optional[Expr] = None, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, channels=channels, cycle=cycle, overrides=overrides, after=after)


class Repeat(Node):
    """``repeat N { ... }``: its body is either ``lines`` (run in parallel, each N times) or ``blocks``
    (a set: the sequence of blocks run N times); never both."""

    count: Expr
    lines: tuple[Line, ...]
    blocks: tuple["Block", ...]
    _fields = ("count", "lines", "blocks")

    def __init__(self, count: Expr, lines: tuple[Line, ...] = (), blocks: tuple['Block', ...] = (), *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, count=count, lines=lines, blocks=blocks)


class For(Node):
    """``for T { ... }``: ``lines`` run whole cycles while they fit, or ``blocks`` (a set) run whole passes
    while they fit; the block lasts exactly T."""

    duration: Expr
    lines: tuple[Line, ...]
    blocks: tuple["Block", ...]
    _fields = ("duration", "lines", "blocks")

    def __init__(self, duration: Expr, lines: tuple[Line, ...] = (), blocks: tuple['Block', ...] = (), *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, duration=duration, lines=lines, blocks=blocks)


class Pause(Node):
    duration: Expr
    _fields = ("duration",)

    def __init__(self, duration: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, duration=duration)


Block = Repeat | For | Pause


class Session(Node):
    blocks: tuple[Block, ...]
    _fields = ("blocks",)

    def __init__(self, blocks: tuple[Block, ...] = (), *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, blocks=blocks)


# --- progression --------------------------------------------------------------------------------
class Target(Node):
    """``intensity`` or ``contraction.hold`` or ``quad.frequency``."""

    path: tuple[str, ...]
    _fields = ("path",)

    def __init__(self, path: tuple[str, ...], *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, path=path)


class Assignment(Node):
    target: Target
    op: str  # '=' | '+=' | '-='
    value: Expr
    bound: Optional[Expr]  # the cap: 'up to X' or 'down to X'
    bound_kind: Optional[str]  # 'up' | 'down'
    _fields = ("target", "op", "value", "bound", "bound_kind")

    def __init__(self, target: Target, op: str, value: Expr, bound: Optional[Expr] = None,
            bound_kind: Optional[str] = None, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, target=target, op=op, value=value, bound=bound, bound_kind=bound_kind)


class Week(Node):
    """``week N { ... }`` (first == last), ``week A..B { ... }`` or ``week N.. { ... }`` (last is None:
    from week N to the end of the plan). Applies in the weeks of its range only."""

    first: int
    last: Optional[int]
    assignments: tuple[Assignment, ...]
    _fields = ("first", "last", "assignments")

    def __init__(self, first: int, last: Optional[int], assignments: tuple[Assignment, ...] = (), *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, first=first, last=last, assignments=assignments)


    def holds(self, week: int) -> bool:
        return self.first <= week and (self.last is None or week <= self.last)

    @property
    def label(self) -> str:
        if self.last is None:
            return f"week {self.first}.."
        return f"week {self.first}" if self.first == self.last else f"week {self.first}..{self.last}"


class EveryWeek(Node):
    assignments: tuple[Assignment, ...]
    _fields = ("assignments",)

    def __init__(self, assignments: tuple[Assignment, ...] = (), *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, assignments=assignments)


class Progression(Node):
    weeks: tuple[Union[Week, EveryWeek], ...]
    _fields = ("weeks",)

    def __init__(self, weeks: tuple[Union[Week, EveryWeek], ...] = (), *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, weeks=weeks)


# --- limits -------------------------------------------------------------------------------------
class Limit(Node):
    """``max current 60 mA`` → bound='max', quantity='current'."""

    bound: str  # 'max' | 'min'
    quantity: str  # current | frequency | pulse width | charge | duration | channels | voltage | density | amplitude
    value: Expr
    _fields = ("bound", "quantity", "value")

    def __init__(self, bound: str, quantity: str, value: Expr, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, bound=bound, quantity=quantity, value=value)


class Allow(Node):
    """``allow monophasic`` (top level or inside limits)."""

    what: str
    _fields = ("what",)

    def __init__(self, what: str, *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, what=what)


class Limits(Node):
    items: tuple[Union[Limit, Allow], ...]
    _fields = ("items",)

    def __init__(self, items: tuple[Union[Limit, Allow], ...] = (), *, span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, items=items)


Item = Header | Param | Electrode | Channel | Cycle | Session | Progression | Limits | Allow


class Protocol(Node):
    """A whole file. ``items`` keeps source order (the formatter prints them in that order)."""

    version: Optional[int]
    items: tuple[Item, ...]
    _fields = ("version", "items")

    def __init__(self, version: Optional[int] = None, items: tuple[Item, ...] = (), *,
            span: Optional[Span] = None) -> None:
        self.__dict__.update(span=span, version=version, items=items)

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
