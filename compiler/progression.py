"""Plans and week-by-week progressions (docs/language.md, normative).

* ``plan N sessions per day, W weeks`` -> 7·N sessions a week; ``per week`` -> N. Total = per week × W.
  Session ``s`` (1-based) falls in week ``ceil(s / sessions_per_week)``. Without a plan only session 1
  exists (week 1): asking for another is a PlanError (S015).
* Progression: the values of week k are a pure function of k. Start from the declared values; apply
  every ``every week`` assignment k − 1 times, in source order each time (cumulative, the cap applied at
  each step); then each ``week`` block whose range holds k (``week N``: N only; ``week A..B``: A to B;
  ``week N..``: N to the end of the plan), in source order, each assignment evaluated once against the
  value week k has at that point. A week block never changes another week. ``=`` sets, ``+=``/``-=``
  add/subtract, ``up to X`` caps the result from above (min), ``down to X`` from below (max).
* A param given as a compile/run-time override is fixed for the whole session: assignments to it are
  skipped (the override wins over the progression).
* An assignment to a cycle step or a channel setting with a plain ``=`` (no cap) keeps its expression,
  which is evaluated with each week's param values (so ``quad.amplitude = 80% intensity`` follows
  ``intensity``); ``+=``/``-=`` and capped assignments are evaluated when they run, into a fixed value.
"""
from __future__ import annotations


from ..dsl import ast
from ..errors import Diagnostic
from ..spans import Span
from fractions import Fraction

from ..units import Quantity
from .evaluate import Evaluator
from .record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Union

#: ("param", name) | ("cycle", cycle, step) | ("channel", channel, 'frequency'|'amplitude')
Key = tuple


class PlanInfo(Record):
    """``plan N sessions per day|week, W weeks``, checked."""

    __slots__ = ("sessions", "per", "weeks", "span")
    _compare = ("sessions", "per", "weeks")
    sessions: int          # N as written
    per: str               # 'day' | 'week'
    weeks: int
    span: Optional[Span]

    def __init__(self, sessions: int, per: str, weeks: int, span: Optional[Span] = None) -> None:
        init(self, "sessions", sessions)
        init(self, "per", per)
        init(self, "weeks", weeks)
        init(self, "span", span)

    @property
    def sessions_per_week(self) -> int:
        return self.sessions * 7 if self.per == "day" else self.sessions

    @property
    def total_sessions(self) -> int:
        return self.sessions_per_week * self.weeks

    def week_of(self, session: int) -> int:
        return -(-session // self.sessions_per_week)

    def sessions_of(self, week: int) -> tuple[int, int]:
        spw = self.sessions_per_week
        return (week - 1) * spw + 1, week * spw


def week_label(plan: Optional[PlanInfo], week: int) -> str:
    if plan is None:
        return f"week {week}"
    first, last = plan.sessions_of(week)
    return f"week {week} (session {first})" if first == last else f"week {week} (sessions {first}–{last})"


class Assigned(Record):
    """The value a progression gave a target: a fixed quantity or an expression evaluated each week."""

    __slots__ = ("value", "expr", "span", "week")
    _compare = ("value", "expr")
    value: Optional[Quantity]
    expr: Optional[ast.Expr]
    span: Optional[Span]
    week: int

    def __init__(self, value: Optional[Quantity] = None, expr: Optional[ast.Expr] = None,
                 span: Optional[Span] = None, week: int = 1) -> None:
        init(self, "value", value)
        init(self, "expr", expr)
        init(self, "span", span)
        init(self, "week", week)


class State:
    """The values of one week while the progression is applied (mutable: assignments update it)."""

    __slots__ = ("values", "assigned")

    def __init__(self, values: dict, assigned: Optional[dict] = None) -> None:
        self.values = values                                         # param name -> Quantity
        self.assigned = {} if assigned is None else assigned         # Key -> Assigned

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not State:
            return NotImplemented
        return (self.values, self.assigned) == (other.values, other.assigned)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"State(values={self.values!r}, assigned={self.assigned!r})"

    def copy(self) -> "State":
        return State(dict(self.values), dict(self.assigned))

    def snapshot(self):
        return (tuple(sorted(self.values.items())),
                tuple(sorted((k, (a.value, a.expr)) for k, a in self.assigned.items())))


def target_text(key: Key) -> str:
    if key[0] == "param":
        return f"param `{key[1]}`"
    return f"`{key[1]}.{key[2]}`"


if TYPE_CHECKING:
    CurrentFn = Callable[[Key, dict], Optional[Quantity]]
    EvFactory = Callable[[dict, list], Evaluator]


class Progression:
    """The progression of a protocol with its targets resolved (by the checker)."""

    def __init__(self, items: tuple[Union[ast.Week, ast.EveryWeek], ...], targets: dict):
        self.items = items
        self.targets = targets  # id(assignment) -> (Key, Dim); unresolved targets are absent
        self._every: Optional[list[ast.Assignment]] = None
        #: per target: what its value's and its cap's messages call them (built once, used every week)
        self._texts: dict[Key, tuple[str, str]] = {}

    def every_week(self) -> list[ast.Assignment]:
        """The ``every week`` assignments in source order (one step of the weekly accumulation)."""
        if self._every is None:
            self._every = [a for item in self.items if isinstance(item, ast.EveryWeek) for a in item.assignments]
        return list(self._every)

    def blocks_for(self, week: int) -> list[ast.Assignment]:
        """The assignments of the ``week`` blocks whose range holds ``week``, in source order."""
        return [a for item in self.items if isinstance(item, ast.Week) and item.holds(week)
                for a in item.assignments]

    def targets_in_order(self) -> list[Key]:
        """Every resolved target, in the order it is first assigned in the source."""
        seen: dict = {}
        for item in self.items:
            for a in item.assignments:
                resolved = self.targets.get(id(a))
                if resolved is not None:
                    seen.setdefault(resolved[0], None)
        return list(seen)

    def apply(self, a: ast.Assignment, state: State, week: int, sink: list[Diagnostic], make_ev: EvFactory,
              current: CurrentFn, fixed: frozenset = frozenset()) -> None:
        resolved = self.targets.get(id(a))
        if resolved is None:
            return
        key, dim = resolved
        if key[0] == "param" and key[1] in fixed:
            return
        ev = make_ev(state.values, sink)
        texts = self._texts.get(key)
        if texts is None:
            texts = self._texts[key] = ("the value of " + target_text(key), "the cap of " + target_text(key))
        value = ev.quantity(a.value, dim, texts[0])
        bound = ev.quantity(a.bound, dim, texts[1]) if a.bound is not None else None
        if value is None or (a.bound is not None and bound is None):
            return
        if a.op == "=" and a.bound is None and key[0] != "param":
            state.assigned[key] = Assigned(expr=a.value, span=a.span, week=week)
            return
        if a.op == "=":
            result = value
        else:
            cur = current(key, state.values)
            if cur is None:
                return
            if cur.dim != value.dim or cur.value.__class__ is not Fraction or value.value.__class__ is not Fraction:
                result = cur + value if a.op == "+=" else cur - value   # (refused as Quantity refuses it)
            else:
                result = Quantity(_sum(cur.value, value.value, a.op == "+="), cur.dim)
        if bound is not None:
            # the cap compared in integers (denominators are positive): exact, without Fraction comparisons
            r, b = result.value, bound.value
            if a.bound_kind == "up" and r.numerator * b.denominator > b.numerator * r.denominator:
                result = bound
            elif a.bound_kind == "down" and r.numerator * b.denominator < b.numerator * r.denominator:
                result = bound
        state.assigned[key] = Assigned(value=result, span=a.span, week=week)
        if key[0] == "param":
            state.values[key[1]] = result



def _sum(x: Fraction, y: Fraction, add: bool) -> Fraction:
    """``x + y`` (``add``) or ``x - y`` of two Fractions, exact, reduced once by the constructor."""
    xd, yd = x.denominator, y.denominator
    yn = y.numerator if add else -y.numerator
    if xd == yd:
        return Fraction(x.numerator + yn, xd)
    return Fraction(x.numerator * yd + yn * xd, xd * yd)


class WeekRow(Record):
    """The progressed values of one week of the plan."""

    __slots__ = ("week", "first_session", "last_session", "values")
    week: int
    first_session: int
    last_session: int
    values: dict   # target label ('intensity', 'contraction.hold', 'quad.frequency') -> Quantity

    def __init__(self, week: int, first_session: int, last_session: int, values: dict) -> None:
        init(self, "week", week)
        init(self, "first_session", first_session)
        init(self, "last_session", last_session)
        init(self, "values", values)

    __hash__ = None  # type: ignore[assignment]  # its values are a dict


class WeekTable(Record):
    """Every progressed value, week by week (``stimscript info --weeks``, the setup sheet)."""

    __slots__ = ("targets", "rows")
    targets: tuple[str, ...]
    rows: tuple[WeekRow, ...]

    def __init__(self, targets: tuple[str, ...], rows: tuple[WeekRow, ...]) -> None:
        init(self, "targets", targets)
        init(self, "rows", rows)

    __hash__ = None  # type: ignore[assignment]  # its rows hold dicts

    def value(self, week: int, target: str) -> Optional[Quantity]:
        return self.rows[week - 1].values.get(target)


def target_label(key: Key) -> str:
    return key[1] if key[0] == "param" else f"{key[1]}.{key[2]}"
