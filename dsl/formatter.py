"""AST -> canonical StimScript text (``stimscript fmt``).

The canonical form:

* ``stimscript 1`` first when the file has it, then the items in source order, separated by one blank
  line; runs of one-line declarations of the same kind (``param``, ``electrode``, top-level ``allow``)
  stay together without blank lines between them;
* 4-space indentation, one statement per line, ``{`` on the line of its statement, ``}`` on its own line
  (an empty body prints as ``{}``);
* canonical unit spellings (``us``, ``uA``, ``uC``: never ``µ``/``μ``), exact decimals (``1.50`` ->
  ``1.5``, never a float), ``50%``, ``50% intensity``;
* the fewest parentheses that keep the tree: operators are left associative, so ``a - (b - c)`` and
  ``a + (b + c)`` keep theirs, ``(a - b) - c`` prints as ``a - b - c``;
* strings re-escaped (``\\"``, ``\\\\``, ``\\n``, ``\\t``);
* a line is ``CHANNELS: CYCLE [with O1, O2, ...] [after T]``: every override in one ``with`` clause (in
  source order, which the AST keeps), ``after`` last;
* the ``protocol`` header lists its fields in source order and the ``plan`` last.

Comments are not part of the AST. When the protocol still carries the spans of the text it was parsed
from, comments are re-attached from that text: a comment on a line of its own is printed before the
statement that followed it (or before the ``}`` that closed its block, or at the end of the file) at
that statement's indentation, and a comment after code is kept at the end of the first printed line of
the first statement that started on that source line (otherwise it becomes a comment line of its own).
A blank line between a comment and what follows it is kept (as one blank line). A protocol built by hand
(no spans) prints without comments.

Properties (tested): ``parse(format_protocol(parse(x))) == parse(x)`` and formatting is idempotent.
"""
from __future__ import annotations

from fractions import Fraction

from . import ast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

INDENT = "    "

#: binding strength: higher binds tighter
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_UNARY = 3
_ATOM = 4

_PLAIN_UNITS = {"us", "ms", "s", "min", "h", "Hz", "kHz", "uA", "mA", "mV", "V", "nC", "uC", "mm", "cm", "cm2"}
_CANONICAL_UNIT = {"µs": "us", "μs": "us", "µA": "uA", "μA": "uA", "µC": "uC", "μC": "uC"}

_STEP_WORDS = {"ramp_up": "ramp up", "hold": "hold", "ramp_down": "ramp down", "rest": "rest"}


class FormatError(ValueError):
    """The AST holds something no StimScript text can express (only possible for hand-built ASTs)."""


# --- leaves --------------------------------------------------------------------------------------------
def format_decimal(value: Fraction) -> str:
    """The exact, shortest decimal spelling of a non-negative terminating fraction (no float involved)."""
    value = Fraction(value)
    if value < 0:
        raise FormatError(f"a literal cannot be negative ({value}); use a unary minus")
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        raise FormatError(f"{value} has no exact decimal spelling")
    decimals = max(twos, fives)
    if decimals == 0:
        return str(value.numerator)
    scaled = value.numerator * (10**decimals // value.denominator)
    whole, frac = divmod(scaled, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".")


def format_string(value: str) -> str:
    """A string literal that the lexer reads back as ``value``."""
    if "\r" in value:
        raise FormatError("a string cannot hold a carriage return")
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _unit(unit: str) -> str:
    unit = _CANONICAL_UNIT.get(unit, unit)
    if unit not in _PLAIN_UNITS:
        raise FormatError(f"unknown unit {unit!r}")
    return unit


# --- expressions ---------------------------------------------------------------------------------------
def _prec(expr: ast.Expr) -> int:
    if isinstance(expr, ast.BinOp):
        return _PREC[expr.op]
    if isinstance(expr, ast.Neg):
        return _UNARY
    return _ATOM


def format_expr(expr: ast.Expr) -> str:
    """An expression with the fewest parentheses that parse back to the same tree."""
    if isinstance(expr, ast.Number):
        text = format_decimal(expr.value)
        if expr.unit is None:
            return text
        if expr.unit == "%":
            return text + "%"
        return f"{text} {_unit(expr.unit)}"
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.PercentOf):
        return f"{format_decimal(expr.percent)}% {expr.name.name}"
    if isinstance(expr, ast.Neg):
        inner = format_expr(expr.operand)
        if _prec(expr.operand) < _UNARY:
            inner = f"({inner})"
        return "-" + inner
    if isinstance(expr, ast.BinOp):
        if expr.op not in _PREC:
            raise FormatError(f"unknown operator {expr.op!r}")
        prec = _PREC[expr.op]
        left, right = format_expr(expr.left), format_expr(expr.right)
        if _prec(expr.left) < prec:
            left = f"({left})"
        if _prec(expr.right) <= prec:  # left associative: an equal-precedence right operand keeps its parens
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    raise FormatError(f"not an expression: {expr!r}")


def format_pulse_inline(pulse: ast.Pulse) -> str:
    """``biphasic 250 us gap 50 us`` (without the word ``pulse``); custom shapes on one line."""
    e = format_expr
    if isinstance(pulse, ast.Monophasic):
        return f"monophasic {e(pulse.width)}"
    if isinstance(pulse, ast.Biphasic):
        return f"biphasic {e(pulse.width)}" + (f" gap {e(pulse.gap)}" if pulse.gap is not None else "")
    if isinstance(pulse, ast.Asymmetric):
        return (f"asymmetric {e(pulse.width)} ratio {e(pulse.ratio)}"
                + (f" gap {e(pulse.gap)}" if pulse.gap is not None else ""))
    if isinstance(pulse, ast.Burst):
        return f"burst {e(pulse.carrier)} for {e(pulse.duration)}"
    if isinstance(pulse, ast.Doublet):
        return f"doublet {e(pulse.width)} spacing {e(pulse.spacing)}"
    if isinstance(pulse, ast.CustomShape):
        if not pulse.phases:
            return "shape {}"
        return "shape { " + "; ".join(f"{e(p.amplitude)} for {e(p.duration)}" for p in pulse.phases) + " }"
    raise FormatError(f"unknown pulse kind {pulse.kind!r}")


# --- comments ------------------------------------------------------------------------------------------
def _split_comment(line: str) -> tuple[str, Optional[str]]:
    """(code, comment) of one source line; ``#`` inside a string does not start a comment."""
    in_string = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return line[:i], line[i:].rstrip()
        i += 1
    return line, None


class _Comments:
    """The comments of the source text, handed out in line order as the printer walks the tree."""

    def __init__(self, text: Optional[str]):
        self.lines = text.split("\n") if text is not None else []
        self.full: dict[int, str] = {}  # line -> comment on a line of its own
        self.trailing: dict[int, str] = {}  # line -> comment after code
        self.code_lines: list[int] = []
        for number, raw in enumerate(self.lines, start=1):
            code, comment = _split_comment(raw)
            if code.strip(" \t\f;"):
                self.code_lines.append(number)
            if comment is None:
                continue
            if code.strip(" \t\f"):
                self.trailing[number] = comment
            else:
                self.full[number] = comment
        self.pending = sorted(set(self.full) | set(self.trailing))
        self.used: set[int] = set()

    def _blank_between(self, a: int, b: int) -> bool:
        return any(not self.lines[n - 1].strip(" \t\f") for n in range(a + 1, min(b, len(self.lines) + 1)))

    def before(self, line: int, indent: str, out: list[str], blank_after: bool = True) -> None:
        """Print every comment above source ``line`` that is still unprinted."""
        taken = []
        while self.pending and self.pending[0] < line:
            number = self.pending.pop(0)
            if number not in self.used:
                taken.append(number)
        for i, number in enumerate(taken):
            if i and self._blank_between(taken[i - 1], number):
                out.append("")
            comment = self.full.get(number) or self.trailing[number]
            out.append(indent + comment)
            self.used.add(number)
        if taken and blank_after and self._blank_between(taken[-1], line):
            out.append("")

    def trailing_at(self, line: int) -> str:
        """The comment after code on source ``line`` (once), as ``'  # ...'``, else ''."""
        comment = self.trailing.get(line)
        if comment is None or line in self.used:
            return ""
        self.used.add(line)
        return "  " + comment

    def remaining(self) -> bool:
        return any(n not in self.used for n in self.pending)


def _line_of(node: ast.Node) -> Optional[int]:
    return node.span.line if node.span is not None else None


def _end_line_of(node: ast.Node) -> Optional[int]:
    return node.span.end_line if node.span is not None else None


# --- the printer ---------------------------------------------------------------------------------------
class _Printer:
    def __init__(self, comments: _Comments):
        self.out: list[str] = []
        self.c = comments

    def stmt(self, node: ast.Node, depth: int, text: str) -> None:
        """One statement line, with the comments that belong before/after it."""
        indent = INDENT * depth
        line = _line_of(node)
        suffix = ""
        if line is not None:
            self.c.before(line, indent, self.out)
            suffix = self.c.trailing_at(line)
        self.out.append(indent + text + suffix)

    def open(self, node: ast.Node, depth: int, head: str, children, emit) -> None:
        """``head {`` + children + ``}``; ``head {}`` when there are none (and no comments inside)."""
        end = _end_line_of(node)
        inner_comments = end is not None and any(
            n < end and n not in self.c.used and n > (_line_of(node) or 0) for n in self.c.pending)
        if not children and not inner_comments:
            self.stmt(node, depth, head + " {}")
            return
        self.stmt(node, depth, head + " {")
        for child in children:
            emit(child, depth + 1)
        if end is not None:
            self.c.before(end, INDENT * (depth + 1), self.out, blank_after=False)
        self.out.append(INDENT * depth + "}")

    # items ----------------------------------------------------------------------------------------
    def item(self, item: ast.Node, depth: int = 0) -> None:
        e = format_expr
        if isinstance(item, ast.Header):
            children = list(item.fields) + ([item.plan] if item.plan is not None else [])
            self.open(item, depth, f"protocol {format_string(item.title)}", children, self.header_item)
        elif isinstance(item, ast.Param):
            text = f"param {item.name} = {e(item.default)}"
            if (item.low is None) != (item.high is None):
                raise FormatError(f"param {item.name} has only one end of its range")
            if item.low is not None and item.high is not None:
                text += f" in {e(item.low)} .. {e(item.high)}"
            if item.description is not None:
                text += " " + format_string(item.description)
            self.stmt(item, depth, text)
        elif isinstance(item, ast.Electrode):
            if item.area is not None:
                if item.width is not None or item.height is not None:
                    raise FormatError(f"electrode {item.name} has both an area and a size")
                self.stmt(item, depth, f"electrode {item.name} {e(item.area)}")
            else:
                if item.width is None or item.height is None:
                    raise FormatError(f"electrode {item.name} needs an area or a width and a height")
                self.stmt(item, depth, f"electrode {item.name} {e(item.width)} x {e(item.height)}")
        elif isinstance(item, ast.Channel):
            self.open(item, depth, f"channel {item.name} {item.number}", item.body, self.channel_stmt)
        elif isinstance(item, ast.Cycle):
            self.open(item, depth, f"cycle {item.name}", item.steps, self.cycle_step)
        elif isinstance(item, ast.Session):
            self.open(item, depth, "session", item.blocks, self.block)
        elif isinstance(item, ast.Progression):
            self.open(item, depth, "progression", item.weeks, self.week)
        elif isinstance(item, ast.Limits):
            self.open(item, depth, "limits", item.items, self.limit_item)
        elif isinstance(item, ast.Allow):
            self.stmt(item, depth, f"allow {item.what}")
        else:
            raise FormatError(f"not a top-level item: {item!r}")

    def header_item(self, node: ast.Node, depth: int) -> None:
        e = format_expr
        if isinstance(node, ast.HeaderField):
            self.stmt(node, depth, f"{node.key} {format_string(node.value)}")
        elif isinstance(node, ast.Plan):
            sessions = "session" if node.sessions == ast.Number(Fraction(1)) else "sessions"
            weeks = "week" if node.weeks == ast.Number(Fraction(1)) else "weeks"
            if node.per not in ("day", "week"):
                raise FormatError(f"plan per {node.per!r}")
            self.stmt(node, depth, f"plan {e(node.sessions)} {sessions} per {node.per}, {e(node.weeks)} {weeks}")
        else:
            raise FormatError(f"not a header statement: {node!r}")

    def channel_stmt(self, node: ast.Node, depth: int) -> None:
        e = format_expr
        if isinstance(node, ast.Site):
            if (node.custom is None) == (node.muscle is None):
                raise FormatError("a site is either an atlas name or a custom string")
            where = format_string(node.custom) if node.custom is not None else (node.muscle.name if node.muscle else "")
            self.stmt(node, depth, f"site {where}" + (f" {node.side}" if node.side else ""))
        elif isinstance(node, ast.ElectrodePair):
            self.stmt(node, depth, f"electrodes {node.first.name} -> {node.second.name}")
        elif isinstance(node, ast.Pulse):
            if node.kind == "shape":
                self.open(node, depth, "pulse shape", node.phases, self.shape_phase)
            else:
                self.stmt(node, depth, "pulse " + format_pulse_inline(node))
        elif isinstance(node, ast.Setting):
            if node.key not in ("frequency", "amplitude"):
                raise FormatError(f"unknown channel setting {node.key!r}")
            self.stmt(node, depth, f"{node.key} {e(node.value)}")
        else:
            raise FormatError(f"not a channel statement: {node!r}")

    def shape_phase(self, node: ast.ShapePhase, depth: int) -> None:
        self.stmt(node, depth, f"{format_expr(node.amplitude)} for {format_expr(node.duration)}")

    def cycle_step(self, node: ast.CycleStep, depth: int) -> None:
        if node.kind not in _STEP_WORDS:
            raise FormatError(f"unknown cycle step {node.kind!r}")
        self.stmt(node, depth, f"{_STEP_WORDS[node.kind]} {format_expr(node.duration)}")

    def block(self, node: ast.Node, depth: int) -> None:
        if isinstance(node, (ast.Repeat, ast.For)):
            head = f"repeat {format_expr(node.count)}" if isinstance(node, ast.Repeat) else \
                f"for {format_expr(node.duration)}"
            if node.lines and node.blocks:
                raise FormatError("a block body holds lines or blocks, not both")
            if node.blocks:
                self.open(node, depth, head, node.blocks, self.block)
            else:
                self.open(node, depth, head, node.lines, self.line)
        elif isinstance(node, ast.Pause):
            self.stmt(node, depth, f"pause {format_expr(node.duration)}")
        else:
            raise FormatError(f"not a session block: {node!r}")

    def line(self, node: ast.Line, depth: int) -> None:
        if not node.channels:
            raise FormatError("a line needs at least one channel")
        text = ", ".join(c.name for c in node.channels) + f": {node.cycle.name}"
        if node.overrides:
            parts = []
            for o in node.overrides:
                if o.key == "pulse" and isinstance(o.value, ast.Pulse):
                    parts.append("pulse " + format_pulse_inline(o.value))
                elif o.key in ("frequency", "amplitude") and not isinstance(o.value, ast.Pulse):
                    parts.append(f"{o.key} {format_expr(o.value)}")
                else:
                    raise FormatError(f"unknown override {o.key!r}")
            text += " with " + ", ".join(parts)
        if node.after is not None:
            text += f" after {format_expr(node.after)}"
        self.stmt(node, depth, text)

    def week(self, node: ast.Node, depth: int) -> None:
        if isinstance(node, ast.Week):
            head = node.label
        elif isinstance(node, ast.EveryWeek):
            head = "every week"
        else:
            raise FormatError(f"not a progression block: {node!r}")
        self.open(node, depth, head, node.assignments, self.assignment)

    def assignment(self, node: ast.Assignment, depth: int) -> None:
        if node.op not in ("=", "+=", "-="):
            raise FormatError(f"unknown assignment operator {node.op!r}")
        text = f"{'.'.join(node.target.path)} {node.op} {format_expr(node.value)}"
        if node.bound is not None:
            if node.bound_kind not in ("up", "down"):
                raise FormatError(f"unknown bound kind {node.bound_kind!r}")
            text += f" {node.bound_kind} to {format_expr(node.bound)}"
        self.stmt(node, depth, text)

    def limit_item(self, node: ast.Node, depth: int) -> None:
        if isinstance(node, ast.Limit):
            if node.bound not in ("max", "min"):
                raise FormatError(f"unknown limit bound {node.bound!r}")
            self.stmt(node, depth, f"{node.bound} {node.quantity} {format_expr(node.value)}")
        elif isinstance(node, ast.Allow):
            self.stmt(node, depth, f"allow {node.what}")
        else:
            raise FormatError(f"not a limits statement: {node!r}")


_GROUPED = (ast.Param, ast.Electrode, ast.Allow)


def format_protocol(protocol: ast.Protocol, source: Optional[str] = None, *, comments: bool = True) -> str:
    """The canonical text of ``protocol`` (ends with one newline; '' for an empty protocol).

    Comments come from ``source`` (the text the protocol was parsed from, after the parser's BOM/CRLF
    normalisation) or, when it is not given, from the text the protocol's spans point into;
    ``comments=False`` prints none.
    """
    if source is None and protocol.span is not None:
        source = protocol.span.source.text
    if source is None:
        for item in protocol.items:
            if item.span is not None:
                source = item.span.source.text
                break
    kept = _Comments(source if comments else None)
    p = _Printer(kept)
    out = p.out
    if protocol.version is not None:
        first_code = kept.code_lines[0] if kept.code_lines else None
        if first_code is not None:
            kept.before(first_code, "", out)
        out.append(f"stimscript {protocol.version}" + (kept.trailing_at(first_code) if first_code else ""))
    previous: Optional[ast.Node] = None
    for item in protocol.items:
        grouped = previous is not None and type(item) is type(previous) and isinstance(item, _GROUPED)
        if out and not grouped:
            out.append("")
        p.item(item)
        previous = item
    if kept.remaining():
        if out:
            out.append("")
        kept.before(10**12, "", out, blank_after=False)
    return "\n".join(out) + "\n" if out else ""


def format_text(text: str | bytes, name: str = "<string>") -> str:
    """Parse and format (raises ProtocolSyntaxError for text that does not parse)."""
    from .parser import decode, parse

    if isinstance(text, (bytes, bytearray)):
        text = decode(bytes(text), name)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return format_protocol(parse(text, name), source=text)
