"""Expressions -> exact :class:`~stimscript.units.Quantity`, with positioned diagnostics.

An :class:`Evaluator` evaluates the AST expressions of dsl/ast.py against an environment of param values.
Every failure (unknown param, a `+` of two dimensions, a division by zero, a value of the wrong
dimension) becomes a :class:`~stimscript.errors.Diagnostic` appended to the evaluator's sink and the
expression evaluates to ``None``; callers skip whatever depends on it, so one pass reports every error.
"""
from __future__ import annotations

from fractions import Fraction

from ..dsl import ast
from ..errors import Diagnostic
from ..spans import Span
from ..units import (AREA, CHARGE, COUNT, CURRENT, FREQUENCY, LENGTH, TIME, UNITS, VOLTAGE, Dim,
                     Quantity, dim_name, format_quantity)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Optional

#: current per area (a `max density` limit, e.g. ``2 mA / 1 cm2``)
DENSITY: Dim = (0, 1, 0, -2)

_DIM_LABELS = {DENSITY: "current density (current per area)"}

#: an example to put in a hint, per dimension
EXAMPLES: dict[Dim, str] = {
    TIME: "`3 s`, `250 us`, `15 min`",
    FREQUENCY: "`50 Hz`, `2.5 kHz`",
    CURRENT: "`40 mA`, `500 uA` or `80% intensity`",
    VOLTAGE: "`60 V`",
    CHARGE: "`20 uC`",
    LENGTH: "`5 cm`, `50 mm`",
    AREA: "`25 cm2`",
    COUNT: "a plain number such as `15`",
    DENSITY: "`2 mA / 1 cm2`",
}


#: E413 bounds on the magnitude of a computed value (SI units); floats hold far more, so messages stay exact-safe
_MAX_INT = 10**30


def dim_label(dim: Dim) -> str:
    return _DIM_LABELS.get(dim) or dim_name(dim)


class EvalFailed(Exception):
    """Internal: an expression could not be evaluated (its diagnostic, if any, is already recorded)."""




def fmt(q: Quantity) -> str:
    """A quantity for messages: '45 mA', '250 us', '15 min', '2 mA/cm2'."""
    if q.dim == TIME:
        us = q.in_unit("us")
        for unit, factor in (("h", 3600 * 10**6), ("min", 60 * 10**6), ("s", 10**6), ("ms", 1000)):
            if abs(us) >= factor and (us / factor).denominator in (1, 2, 4, 5, 10):
                return f"{_num(us / factor)} {unit}"
        return f"{_num(us)} µs"
    if q.dim == FREQUENCY:
        hz = q.in_unit("Hz")
        return f"{_num(hz / 1000)} kHz" if abs(hz) >= 1000 and (hz / 1000).denominator == 1 else f"{_num(hz)} Hz"
    if q.dim == DENSITY:
        return f"{_num(q.value * 1000 / 10**4)} mA/cm2"
    if q.dim in (CURRENT, VOLTAGE, CHARGE, LENGTH, AREA, COUNT):
        return format_quantity(q)
    return f"{float(q.value):g} [{dim_label(q.dim)}]"


def _num(x: Fraction) -> str:
    from ..units import format_number

    return format_number(Fraction(x))


class Evaluator:
    """Evaluates expressions against ``values`` (param name -> Quantity), reporting into ``sink``.

    ``kinds`` maps other declared names (channels, cycles, electrodes) to what they are, for better
    messages when such a name is used as a param. ``broken`` params (whose own declaration failed)
    evaluate silently to failure so their errors are not reported twice. With ``forbid_params`` set
    (a param's own default and range) any param reference is an error E219.
    """

    def __init__(self, values: dict[str, Quantity], sink: list[Diagnostic], *,
                 kinds: Optional[dict[str, str]] = None, broken: Iterable[str] = (),
                 forbid_params: bool = False, param_names: Iterable[str] = ()):
        self.values = values
        self.sink = sink
        self.kinds = kinds or {}
        self.broken = broken if isinstance(broken, (set, frozenset)) else set(broken)   # only read
        self.forbid_params = forbid_params
        #: where params are forbidden, what the error names ("a param's default and range", "a limit", ...)
        self.forbid_what = "a param's default and range"
        self._param_names_from = param_names
        self._param_names: Optional[set[str]] = None

    @property
    def param_names(self) -> set[str]:
        """Every param name known here (declared and given values): built when first needed (an error's hint,
        a forbidden reference), not for each of the many evaluators the week loop makes."""
        if self._param_names is None:
            self._param_names = set(self._param_names_from) | set(self.values)
        return self._param_names

    # -- reporting --------------------------------------------------------------------------------
    def error(self, code: str, message: str, span: Optional[Span], hint: Optional[str] = None) -> None:
        self.sink.append(Diagnostic(code, message, span, hint=hint))

    # -- core -------------------------------------------------------------------------------------
    def _param(self, name: ast.Name) -> Quantity:
        if name.name in self.broken:
            raise EvalFailed
        if self.forbid_params and name.name in self.param_names:
            where = self.forbid_what
            self.error("E219", f"{where} cannot refer to a param (`{name.name}`)", name.span,
                       hint="write the value as a quantity")
            raise EvalFailed
        if name.name in self.values:
            return self.values[name.name]
        kind = self.kinds.get(name.name)
        if kind:
            self.error("E204", f"`{name.name}` is a {kind}, not a param", name.span,
                       hint="only params (`param NAME = ...`) can be used in expressions")
        else:
            from ..suggest import did_you_mean   # only for errors: a check of a good file never imports it

            hint = did_you_mean(name.name, self.param_names) or (
                "declare it with `param " + name.name + " = ...`")
            self.error("E204", f"unknown param `{name.name}`", name.span, hint=hint)
        raise EvalFailed

    def _eval(self, e: ast.Expr) -> Quantity:
        if isinstance(e, ast.Number):
            ent = _NUMBER_MEMO.get(id(e))
            if ent is not None and ent[0] is e:  # the entry holds the node, so its id is not reused
                return ent[1]
            if e.unit is None:
                q = Quantity(Fraction(e.value), COUNT)
            elif e.unit not in UNITS:  # pragma: no cover - the lexer only admits known units
                self.error("E103", f"unknown unit `{e.unit}`", e.span)
                raise EvalFailed
            else:
                q = Quantity.of(e.value, e.unit)
            if len(_NUMBER_MEMO) >= _MEMO_MAX:
                _NUMBER_MEMO.clear()
            _NUMBER_MEMO[id(e)] = (e, q)
            return q
        if isinstance(e, ast.Name):
            return self._param(e)
        if isinstance(e, ast.PercentOf):
            base = self._param(e.name)
            return self._in_range(Quantity(base.value * percent_share(e), base.dim), e)
        if isinstance(e, ast.Neg):
            return -self._eval(e.operand)
        if isinstance(e, ast.BinOp):
            left = self._eval(e.left)
            right = self._eval(e.right)
            if e.op in "+-":
                if left.dim != right.dim:
                    self.error("E302", f"cannot {'add' if e.op == '+' else 'subtract'} {dim_label(right.dim)} "
                               f"{'to' if e.op == '+' else 'from'} {dim_label(left.dim)}", e.span,
                               hint="both sides of `+`/`-` need the same dimension")
                    raise EvalFailed
                return left + right if e.op == "+" else left - right
            if e.op == "*":
                return self._in_range(left * right, e)
            if right.value == 0:
                self.error("E404", "division by zero", e.right.span or e.span)
                raise EvalFailed
            return self._in_range(left / right, e)
        raise AssertionError(f"unknown expression {e!r}")  # pragma: no cover

    def _in_range(self, q: Quantity, e: ast.Expr) -> Quantity:
        """E413: a product or quotient beyond 10^±30 (in SI units) is no stimulation quantity; refused at the
        expression, before any rule computes with it (floats for messages would overflow)."""
        # |n/d| > 10^30 or < 10^-30 in integers (d > 0): exact, without Fraction comparisons
        v = q.value
        n, d = abs(v.numerator), v.denominator
        if n and (n > _MAX_INT * d or n * _MAX_INT < d):
            big = n > _MAX_INT * d
            self.error("E413", f"this expression's value is {'above 10^30' if big else 'below 10^-30'} in SI units "
                               f"({dim_label(q.dim)}): out of the range of any stimulation quantity", e.span,
                       hint="check the operators and units of the expression")
            raise EvalFailed
        return q

    def value(self, e: ast.Expr) -> Optional[Quantity]:
        """Evaluate without a dimension requirement; None after a reported failure."""
        try:
            return self._eval(e)
        except EvalFailed:
            return None

    def quantity(self, e: ast.Expr, dim: Dim, what: str) -> Optional[Quantity]:
        """Evaluate ``e`` and require dimension ``dim`` (E301 naming expected and found)."""
        q = self.value(e)
        if q is None:
            return None
        if q.dim != dim:
            example = EXAMPLES.get(dim)
            hint = f"{what} is a {dim_label(dim)}" + (f", e.g. {example}" if example else "")
            if dim == CURRENT and q.dim == COUNT and _has_percent(e):
                hint = "a percentage of a param is written `50% intensity`"
            elif dim != COUNT and q.dim == COUNT:
                hint = f"every quantity carries a unit: e.g. {EXAMPLES.get(dim, '')}"
            self.error("E301", f"expected {dim_label(dim)}, found {dim_label(q.dim)} ({what})", e.span, hint=hint)
            return None
        return q

    # -- value constraints --------------------------------------------------------------------------
    def positive(self, e: ast.Expr, dim: Dim, what: str) -> Optional[Quantity]:
        q = self.quantity(e, dim, what)
        if q is not None and q.value.numerator <= 0:   # the sign of a Fraction is its numerator's
            self.error("E401", f"{what} must be greater than 0, found {fmt(q)}", e.span)
            return None
        return q

    def non_negative(self, e: ast.Expr, dim: Dim, what: str) -> Optional[Quantity]:
        q = self.quantity(e, dim, what)
        if q is not None and q.value.numerator < 0:
            self.error("E402", f"{what} cannot be negative, found {fmt(q)}", e.span)
            return None
        return q

    def whole(self, e: ast.Expr, what: str, minimum: int = 1) -> Optional[int]:
        """A count that must be a whole number >= ``minimum`` (repeat counts, plan numbers)."""
        if e.__class__ is ast.Number and e.unit is None:
            v = e.value   # a plain whole literal that is large enough: what the checks below accept, at once
            if v.__class__ is int and v >= minimum:
                return v
            if v.__class__ is Fraction and v.denominator == 1 and v.numerator >= minimum:
                return v.numerator
        q = self.quantity(e, COUNT, what)
        if q is None:
            return None
        if q.value.denominator != 1:
            self.error("E403", f"{what} must be a whole number, found {_num(q.value)}", e.span)
            return None
        if q.value < minimum:
            self.error("E401", f"{what} must be at least {minimum}, found {_num(q.value)}", e.span)
            return None
        return int(q.value)

    def time_us(self, e: ast.Expr, what: str, *, positive: bool = False) -> Optional[int]:
        """A time in whole µs (rounded half to even); None after a reported failure."""
        if e.__class__ is ast.Number:
            # a time literal that passes the checks below: its µs in integers, without a Quantity
            per = _US_PER.get(e.unit)   # type: ignore[arg-type]
            v = e.value
            if per is not None and (v.__class__ is Fraction or v.__class__ is int):
                n = v.numerator * per
                d = v.denominator
                if d == 1:
                    us = n
                else:
                    us, r = divmod(n, d)
                    r += r
                    if r > d or (r == d and us & 1):
                        us += 1
                if us > 0 if positive else n >= 0:
                    return us
        q = (self.positive if positive else self.non_negative)(e, TIME, what)
        if q is None:
            return None
        us = q.to_us()
        if positive and us <= 0:
            self.error("E401", f"{what} rounds to 0 µs (times are whole microseconds), found {fmt(q)}", e.span)
            return None
        return us


#: whole µs per unit of time (every time unit is a whole number of µs)
_US_PER: dict[str, int] = {u: int(f / UNITS["us"][0]) for u, (f, d) in UNITS.items() if d == TIME}
assert all(Fraction(f) / UNITS["us"][0] == _US_PER[u] for u, (f, d) in UNITS.items() if d == TIME)


def percent_share(e: ast.PercentOf) -> Fraction:
    """``P% NAME``'s share (P / 100), kept per node like a literal's value."""
    ent = _NUMBER_MEMO.get(id(e))
    if ent is None or ent[0] is not e:
        if len(_NUMBER_MEMO) >= _MEMO_MAX:
            _NUMBER_MEMO.clear()
        ent = _NUMBER_MEMO[id(e)] = (e, Fraction(e.percent) / 100)
    return ent[1]


#: E413's bound on a computed value's magnitude (SI units), for callers that check it themselves
MAX_SI = _MAX_INT


#: literal node -> Quantity (keyed by the node's identity, each entry holding its node so the id cannot be
#: reused while the entry exists)
_NUMBER_MEMO: dict = {}
_MEMO_MAX = 8192


def _has_percent(e: ast.Expr) -> bool:
    if isinstance(e, ast.Number):
        return e.unit == "%"
    if isinstance(e, ast.BinOp):
        return _has_percent(e.left) or _has_percent(e.right)
    if isinstance(e, ast.Neg):
        return _has_percent(e.operand)
    return False


def param_of(e: ast.Expr) -> Optional[str]:
    """The param an amplitude follows when it is a plain param or ``P% param`` (else None)."""
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.PercentOf):
        return e.name.name
    return None


def names_in(e: ast.Expr) -> list[ast.Name]:
    """Every param reference in ``e``, left to right (for dependency questions; iterative, so a long chain of
    ``+`` costs its length, not its square)."""
    found: list[ast.Name] = []
    stack = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            found.append(n)
        elif isinstance(n, ast.PercentOf):
            found.append(n.name)
        elif isinstance(n, ast.Neg):
            stack.append(n.operand)
        elif isinstance(n, ast.BinOp):
            stack.append(n.right)
            stack.append(n.left)
    return found


if TYPE_CHECKING:
    Callback = Callable[[ast.Expr], Optional[Quantity]]
