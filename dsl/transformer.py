"""Parse tree nodes -> typed AST (dsl/ast.py). Builds structure only; meaning is the checker's job.

:class:`AstBuilder` has one method per grammar rule, ``rule(meta, children)`` (children already built,
``meta`` the node's span), and imports no parser library: the fast path (dsl/lalr.py) calls it while
parsing, and the Lark path (dsl/parser.py) through a Lark Transformer after parsing. Tokens are ``str`` with ``type`` and positions.

The few errors raised here are about the shape of the text itself (a non-integer channel number, a
literal too long to be a number, two ``after`` clauses on one line).
"""
from __future__ import annotations

from fractions import Fraction
from functools import partial

from ..errors import Diagnostic, Related
from ..spans import Source, Span
from . import ast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    Token = Any  # a lexed terminal: str with .type, .line, .column, ... (Lark's or dsl/lalr.py's)

#: µ spellings collapse to the ASCII ones so equal protocols compare equal
CANONICAL_UNIT = {"µs": "us", "μs": "us", "µA": "uA", "μA": "uA", "µC": "uC", "μC": "uC"}

MAX_NUMBER_CHARS = 40

#: deepest nesting of session blocks: ``repeat 3 { repeat 10 { quad: c } }`` is 2 deep (docs/language.md)
MAX_BLOCK_DEPTH = 6


class AstError(Exception):
    """Raised inside the transformer; the parser turns it into a ProtocolSyntaxError."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _unescape(token: Token) -> str:
    """The text of a string literal: the quotes removed, ``\\n``, ``\\t``, ``\\"`` and ``\\\\`` replaced (any
    other escaped character stands for itself)."""
    body = str(token)[1:-1]
    if "\\" not in body:   # most strings (titles, references) escape nothing: no walk over every character
        return body
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _cycle_step_rule(kind: str) -> Callable[[Any, Any, list], ast.CycleStep]:
    """The builder method of one of the four cycle steps (``ramp_up``, ``hold``, ``ramp_down``, ``rest``)."""
    def build(self: AstBuilder, meta: Any, children: list) -> ast.CycleStep:
        return ast.CycleStep(kind, children[0], span=meta)

    build.__name__ = kind
    return build


def _binop_rule(op: str) -> Callable[[Any, Any, list], ast.BinOp]:
    """The builder method of a binary operator rule (``add``, ``sub``, ``mul``, ``div``)."""
    def build(self: AstBuilder, meta: Any, children: list) -> ast.BinOp:
        left, right = children
        return ast.BinOp(op, left, right, span=meta)

    return build


_new_object = object.__new__
_set_attribute = object.__setattr__


def new_span(source: Source, line: int, column: int, end_line: int, end_column: int, start_pos: int,
             end_pos: int) -> Span:
    """``Span(source, line, ...)`` without the frozen dataclass's ``__init__`` (seven ``object.__setattr__``
    calls, the most expensive step of building a node): the same fields in the same order
    (tests/test_parse_speedups.py compares the two)."""
    span = _new_object(Span)
    _set_attribute(span, "__dict__", {"source": source, "line": line, "column": column, "end_line": end_line,
                                      "end_column": end_column, "start_pos": start_pos, "end_pos": end_pos})
    return span


class AstBuilder:
    """One method per grammar rule, ``rule(meta, children)``: ``meta`` is the node's span (None when the
    node covers no text), made by :meth:`span_of` from Lark's ``Tree.meta`` or by the fast path with
    :attr:`position`."""

    def __init__(self, source: Source):
        self.source = source
        self._depths: dict[int, int] = {}   # id(Repeat/For) -> nesting depth (ids of live nodes only)
        self._numbers: dict[str, Fraction] = {}   # literal text -> its value (the same literals recur)
        #: ``position(line, column, end_line, end_column, start_pos, end_pos)``: the span of a node in this
        #: source (what dsl/lalr.py passes as ``meta``)
        self.position: Callable[[int, int, int, int, int, int], Span] = partial(new_span, source)

    # -- helpers ---------------------------------------------------------------------------------
    def span_of(self, meta: Any) -> Span | None:
        """The span of a node from Lark's ``Tree.meta`` (None when it has no position)."""
        if getattr(meta, "empty", True):
            return None
        return new_span(self.source, meta.line, meta.column, meta.end_line, meta.end_column,
                        meta.start_pos, meta.end_pos)

    def tok_span(self, tok: Token) -> Span:
        return new_span(self.source, tok.line, tok.column, tok.end_line, tok.end_column, tok.start_pos,
                        tok.end_pos)

    def _fail(self, code: str, message: str, span: Span | None, hint: str | None = None,
              related: tuple[Related, ...] = ()) -> None:
        raise AstError(Diagnostic(code, message, span, hint=hint, related=related))

    def _number(self, tok: Token) -> Fraction:
        text = str(tok)
        value = self._numbers.get(text)
        if value is None:
            if len(text) > MAX_NUMBER_CHARS:
                self._fail("E106", f"number literal has {len(text)} characters; at most {MAX_NUMBER_CHARS} are "
                           "allowed", self.tok_span(tok))
            value = self._numbers[text] = Fraction(text)
        return value

    def _int(self, tok: Token, what: str) -> int:
        value = self._number(tok)
        if value.denominator != 1:
            self._fail("E111", f"{what} must be a whole number, found {tok}", self.tok_span(tok))
        return value.numerator

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), span=new_span(self.source, tok.line, tok.column, tok.end_line, tok.end_column,
                                                tok.start_pos, tok.end_pos))

    # -- file ------------------------------------------------------------------------------------
    def start(self, meta, children):
        version = None
        items = []
        for child in children:
            if isinstance(child, tuple) and child and child[0] == "version":
                _, number, span = child
                if items or version is not None:
                    self._fail("E108", "the `stimscript N` version line must be the first statement", span)
                if number != 1:
                    self._fail("E109", f"unsupported language version {number}; this stimscript reads version 1",
                               span, hint="write `stimscript 1`")
                version = number
            else:
                items.append(child)
        return ast.Protocol(version=version, items=tuple(items), span=meta)

    def version_decl(self, meta, children):
        return ("version", self._int(children[0], "the language version"), meta)

    # -- header ----------------------------------------------------------------------------------
    def header(self, meta, children):
        title, *items = children
        fields, plan = [], None
        for item in items:
            if isinstance(item, ast.Plan):
                if plan is not None:
                    self._fail("E110", "the protocol has two `plan` statements", item.span,
                               related=(Related("the first plan is here", plan.span),) if plan.span else ())
                plan = item
            else:
                fields.append(item)
        return ast.Header(_unescape(title), tuple(fields), plan, span=meta)

    def header_field(self, meta, children):
        key, value = children
        return ast.HeaderField(str(key), _unescape(value), span=meta)

    def plan(self, meta, children):
        sessions, per, weeks = children
        return ast.Plan(sessions, per, weeks, span=meta)

    def per_day(self, meta, children):
        return "day"

    def per_week(self, meta, children):
        return "week"

    # -- declarations ----------------------------------------------------------------------------
    def param(self, meta, children):
        name, default, *rest = children
        description = None
        if rest and (rest[-1] is None or (isinstance(rest[-1], str) and getattr(rest[-1], "type", None) == "STRING")):
            last = rest.pop()
            description = _unescape(last) if last is not None else None
        low = high = None
        if len(rest) == 2:
            low, high = rest
        return ast.Param(str(name), default, low, high, description, span=meta)

    def electrode_rect(self, meta, children):
        name, width, height = children
        return ast.Electrode(str(name), width=width, height=height, span=meta)

    def electrode_area(self, meta, children):
        name, area = children
        return ast.Electrode(str(name), area=area, span=meta)

    def channel(self, meta, children):
        name, number, *body = children
        return ast.Channel(str(name), self._int(number, "a channel number"), tuple(body), span=meta,
                           name_span=self.tok_span(name), number_span=self.tok_span(number))

    def site(self, meta, children):
        where, side = children
        if where.type == "STRING":
            return ast.Site(None, side, _unescape(where), span=meta)
        return ast.Site(self._name(where), side, span=meta)

    def side_word(self, meta, children):
        return str(children[0])

    def left(self, meta, children):
        return "left"

    def right(self, meta, children):
        return "right"

    def electrode_pair(self, meta, children):
        first, second = children
        return ast.ElectrodePair(self._name(first), self._name(second), span=meta)

    def frequency_setting(self, meta, children):
        return ast.Setting("frequency", children[0], span=meta)

    def amplitude_setting(self, meta, children):
        return ast.Setting("amplitude", children[0], span=meta)

    def pulse(self, meta, children):
        spec: ast.Pulse = children[0]
        return ast.Pulse(spec.kind, spec.width, spec.gap, spec.ratio, spec.carrier, spec.duration, spec.spacing,
                         spec.phases, span=meta)

    def monophasic(self, meta, children):
        return ast.Pulse("monophasic", width=children[0], span=meta)

    def biphasic(self, meta, children):
        width, gap = children
        return ast.Pulse("biphasic", width=width, gap=gap, span=meta)

    def asymmetric(self, meta, children):
        width, ratio, gap = children
        return ast.Pulse("asymmetric", width=width, ratio=ratio, gap=gap, span=meta)

    def burst(self, meta, children):
        carrier, duration = children
        return ast.Pulse("burst", carrier=carrier, duration=duration, span=meta)

    def doublet(self, meta, children):
        width, spacing = children
        return ast.Pulse("doublet", width=width, spacing=spacing, span=meta)

    def custom(self, meta, children):
        return ast.Pulse("shape", phases=tuple(children), span=meta)

    def shape_phase(self, meta, children):
        amplitude, duration = children
        return ast.ShapePhase(amplitude, duration, span=meta)

    def cycle(self, meta, children):
        name, *steps = children
        return ast.Cycle(str(name), tuple(steps), span=meta)

    ramp_up = _cycle_step_rule("ramp_up")
    hold = _cycle_step_rule("hold")
    ramp_down = _cycle_step_rule("ramp_down")
    rest = _cycle_step_rule("rest")

    # -- session ---------------------------------------------------------------------------------
    def session(self, meta, children):
        return ast.Session(tuple(children), span=meta)

    def _set_body(self, keyword: str, body: list, meta) -> tuple[tuple, tuple]:
        """Split a ``repeat``/``for`` body into (lines, blocks); a body holding both is E113."""
        lines = [b for b in body if isinstance(b, ast.Line)]
        blocks = [b for b in body if not isinstance(b, ast.Line)]
        if lines and blocks:
            first_line, first_block = lines[0], blocks[0]
            later = first_line if first_line.span and first_block.span and \
                first_line.span.start_pos > first_block.span.start_pos else first_block
            other = first_block if later is first_line else first_line
            kind = "a line" if later is first_line else "a block"
            self._fail("E113", f"this `{keyword}` body mixes lines and blocks: {kind} cannot stand here",
                       later.span, hint="a body holds either lines (channels that run together) or blocks "
                       "(`repeat`, `for`, `pause`: a set, run in sequence); wrap the lines in their own block, "
                       "e.g. `repeat 1 { quad: contraction }`",
                       related=(Related("the body's first " + ("block" if kind == "a line" else "line")
                                        + " is here", other.span),) if other.span else ())
        return tuple(lines), tuple(blocks)

    def _depth_ok(self, block, keyword: str):
        depth = 1 + max((self._depths.get(id(b), 1) for b in block.blocks), default=0)
        if depth > MAX_BLOCK_DEPTH:
            span = block.span
            keyword_span = Span(span.source, span.line, span.column, span.line, span.column + len(keyword),
                                span.start_pos, span.start_pos + len(keyword)) if span else None
            self._fail("E114", f"blocks are nested {depth} deep here; at most {MAX_BLOCK_DEPTH} levels are allowed",
                       keyword_span, hint="flatten the session: write the inner sets one after another")
        self._depths[id(block)] = depth
        return block

    def repeat(self, meta, children):
        count, *body = children
        lines, blocks = self._set_body("repeat", body, meta)
        return self._depth_ok(ast.Repeat(count, lines, blocks, span=meta), "repeat")

    def for_block(self, meta, children):
        duration, *body = children
        lines, blocks = self._set_body("for", body, meta)
        return self._depth_ok(ast.For(duration, lines, blocks, span=meta), "for")

    def pause(self, meta, children):
        return ast.Pause(children[0], span=meta)

    def line(self, meta, children):
        channels, cycle, *options = children
        overrides: list[ast.Override] = []
        after = None
        after_span = None
        for kind, value, span in options:
            if kind == "with":
                overrides.extend(value)
            else:
                if after is not None:
                    self._fail("E112", "this line has two `after` clauses", span,
                               related=(Related("the first one is here", after_span),) if after_span else ())
                after, after_span = value, span
        return ast.Line(channels, self._name(cycle), tuple(overrides), after, span=meta)

    def channel_list(self, meta, children):
        return tuple(self._name(tok) for tok in children)

    def with_clause(self, meta, children):
        return ("with", list(children), meta)

    def after_clause(self, meta, children):
        return ("after", children[0], meta)

    def override_frequency(self, meta, children):
        return ast.Override("frequency", children[0], span=meta)

    def override_amplitude(self, meta, children):
        return ast.Override("amplitude", children[0], span=meta)

    def override_pulse(self, meta, children):
        return ast.Override("pulse", children[0], span=meta)

    # -- progression -----------------------------------------------------------------------------
    def progression(self, meta, children):
        return ast.Progression(tuple(children), span=meta)

    def week(self, meta, children):
        first_tok, rng, *assignments = children
        first = self._int(first_tok, "a week number")
        if rng is None:
            last = first
        elif rng == "open":
            last = None
        else:
            last = self._int(rng, "a week number")
        return ast.Week(first, last, tuple(assignments), span=meta)

    def week_last(self, meta, children):
        return children[0]

    def week_open(self, meta, children):
        return "open"

    def every_week(self, meta, children):
        return ast.EveryWeek(tuple(children), span=meta)

    def assignment(self, meta, children):
        target, op, value, bound = children
        bound_kind, bound_expr = bound if bound is not None else (None, None)
        return ast.Assignment(target, str(op), value, bound_expr, bound_kind, span=meta)

    def target(self, meta, children):
        return ast.Target(tuple(str(t) for t in children), span=meta)

    def up_to(self, meta, children):
        return ("up", children[0])

    def down_to(self, meta, children):
        return ("down", children[0])

    # -- limits ----------------------------------------------------------------------------------
    def limits(self, meta, children):
        return ast.Limits(tuple(children), span=meta)

    def limit(self, meta, children):
        bound, quantity, value = children
        return ast.Limit(bound, quantity, value, span=meta)

    def max(self, meta, children):
        return "max"

    def min(self, meta, children):
        return "min"

    def q_current(self, meta, children):
        return "current"

    def q_frequency(self, meta, children):
        return "frequency"

    def q_pulse_width(self, meta, children):
        return "pulse width"

    def q_charge(self, meta, children):
        return "charge"

    def q_duration(self, meta, children):
        return "duration"

    def q_channels(self, meta, children):
        return "channels"

    def q_voltage(self, meta, children):
        return "voltage"

    def q_density(self, meta, children):
        return "density"

    def allow(self, meta, children):
        return ast.Allow(str(children[0]), span=meta)

    # -- expressions -----------------------------------------------------------------------------
    def quantity(self, meta, children):
        number, unit = children
        unit = CANONICAL_UNIT.get(str(unit), str(unit))
        return ast.Number(self._number(number), unit, span=meta)

    def number(self, meta, children):
        return ast.Number(self._number(children[0]), None, span=meta)

    def percent(self, meta, children):
        return ast.Number(self._number(children[0]), "%", span=meta)

    def percent_of(self, meta, children):
        number, name = children
        return ast.PercentOf(self._number(number), self._name(name), span=meta)

    def name(self, meta, children):
        return ast.Name(str(children[0]), span=meta)

    add = _binop_rule("+")
    sub = _binop_rule("-")
    mul = _binop_rule("*")
    div = _binop_rule("/")

    def neg(self, meta, children):
        return ast.Neg(children[0], span=meta)

    def pos(self, meta, children):
        return children[0]
