"""The semantic checker: names, dimensions, values, every week of the plan, then the safety rules.

:func:`analyse` runs the static checks once (names, duplicates, structure, params, limits, the
progression's targets), then resolves one :class:`~stimscript.compiler.model.ResolvedSession` per
distinct week of the plan (weeks whose progression state is unchanged reuse the previous week) and calls
``compiler.safety.check_safety`` on each. Every problem is collected; nothing stops at the first one.

Resolving a week evaluates its values and measures each session block (its length and, for a block of
lines, where each line places each channel); compiler/lowering.py builds the trains from the measured
blocks. Each top-level block is memoised on exactly the values it reads (the params it names, the timings
of its cycles, its channels' values but their amplitudes): a week where those are unchanged takes the
block's measurement and its layout moved to where the block starts now, with this week's amplitudes
(``Analysis._session_layout``, ``Analysis._block``), so a week costs what changed in it.

Error codes (stable; tests, docs and records refer to them)
============================================================

==== ======== ================================================================================
code severity meaning
==== ======== ================================================================================
E201 error    unknown channel (in a session line) — did-you-mean
E202 error    unknown cycle (in a session line) — did-you-mean (``continuous`` is built in)
E203 error    unknown electrode (in ``electrodes A -> B``) — did-you-mean
E204 error    unknown param in an expression, or the name is a channel/cycle/electrode, or ``P% NAME``
              where NAME is not a param
E205 error    unknown ``site`` (not in the motor-point atlas) — did-you-mean; an empty custom site
              (``site ""``)
E206 error    unknown protocol header key (known: reference indication author version description
              population notes)
E207 error    duplicate declaration (param, electrode, channel, cycle of the same name) — at the second,
              with a note at the first
E208 error    duplicate channel number — at the second, with a note at the first
E209 error    a second ``protocol`` header, ``session`` or ``progression``
E210 error    a channel is missing ``pulse``, ``frequency``, ``amplitude`` or ``electrodes``
E211 error    a statement given twice where one is allowed (channel setting, cycle step, header field,
              ``with`` override)
E212 error    ``electrodes A -> A``: the two electrodes of a pair must differ
E213 error    the same channel twice in one block (lines run in parallel)
E214 error    ``continuous`` inside ``repeat`` (it has no length of its own)
E215 error    a cycle named ``continuous`` (the name is built in)
E216 error    unknown ``allow`` (known: monophasic)
E217 error    no ``session`` block
E218 error    unknown progression target (param, ``CYCLE.ramp_up|hold|ramp_down|rest``,
              ``CHANNEL.frequency|amplitude``) — did-you-mean
E219 error    a param's default/range, the plan or a limit refers to a param
E220 error    a site's side is not ``left`` or ``right`` (``site vastus_medialis both``: one channel per side)
E301 error    wrong dimension: "expected current, found frequency (...)"
E302 error    ``+``/``-`` of two different dimensions
E401 error    a value that must be positive is not (frequency, widths, lengths, areas, ratio, carrier,
              ``for`` length, counts < 1), or a positive time rounds to 0 µs
E402 error    a value that cannot be negative is (durations, gaps, ``after``, amplitude)
E403 error    a count that must be whole is not (``repeat``, plan numbers, ``max channels``)
E404 error    division by zero
E405 error    a param's default is outside its own range
E406 error    a param's range is inverted (low > high)
E407 error    channel number outside 1..255
E408 error    progression week range inverted, below 1 or beyond the plan's weeks, or ``week N..`` (to
              the end of the plan) in a protocol without a plan
E409 error    a cycle of zero length in a ``for`` block (it would never end)
E410 error    ``after`` at or beyond the end of its ``for`` block
E412 error    the session unrolls to more than 100 000 blocks and pauses (sets repeat their blocks)
E413 error    an expression's value is beyond 10^±30 in SI units (a product or quotient of extreme numbers)
E411 error    an impossible pulse shape (burst without a whole carrier cycle, doublet spacing < 2 W,
              custom shape starting at amplitude 0 or with no phase, asymmetric phase rounding to 0 µs)
S007 error    a param's value in some week (progression) is outside its declared range — names the week
S014 error    the session is longer than 24 h
S0xx          every other safety rule comes from compiler/safety.py, limits.py, overlap.py, delivered_rules.py, encodable.py (see rules.py)
W201 warning  a channel without a ``site``
W202 warning  a channel declared but not used by the session
W203 warning  a custom site (``site "3 cm distal to the fibular head"``): not checked against the atlas
W401 warning  a ``for`` line where not one whole cycle fits (it emits nothing)
W402 warning  a zero-length cycle in ``repeat`` (the line emits nothing)
W408 warning  a progression week beyond week 1 in a protocol without a plan (never used)
==== ======== ================================================================================

Decisions where the language reference is silent: params may not refer to params in their default or range (E219);
``after`` at/after the end of a ``for`` block is an error, a line that fits no whole cycle is a warning;
without a plan only session 1 (week 1) exists; diagnostics are reported once per (code, position), and
one first found in week k >= 2 is prefixed "in week k (sessions a–b): ".
"""
from __future__ import annotations

import gc
import re
from ..valueclass import replace
from fractions import Fraction

from ..dsl import ast
from ..errors import Diagnostic, Related
from ..spans import Source, Span, point
from ..units import AREA, CHARGE, COUNT, CURRENT, FREQUENCY, LENGTH, TIME, VOLTAGE, Quantity
from .evaluate import MAX_SI, DENSITY, Evaluator, fmt, names_in, param_of, percent_share
from ..pulses import ChannelInfo
from .lowering import (BlockLayout, Lowered, Measured, ShapeTable, Timing, duration_text, lay_out, lay_out_block,
                       place_block, repeat_label)
from . import lowering as _lowering
from ..pulses import PulseShape
from .record import Record, init
from .model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from .progression import Assigned, PlanInfo, Progression, State, target_text, week_label
from .limits import MAX_SESSION_US, SESSION_TOO_LONG_HINT, session_too_long
from .shapes import build_shape
from . import atlas as _atlas

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Optional, TypeVar

    _T = TypeVar("_T")

HEADER_KEYS = ("reference", "indication", "author", "version", "description", "population", "notes")
ALLOWS = ("monophasic",)
CYCLE_STEPS = ("ramp_up", "hold", "ramp_down", "rest")
CHANNEL_TARGETS = {"frequency": FREQUENCY, "amplitude": CURRENT}
LIMIT_DIMS = {"current": CURRENT, "frequency": FREQUENCY, "pulse width": TIME, "charge": CHARGE,
              "duration": TIME, "channels": COUNT, "voltage": VOLTAGE, "density": DENSITY}
_UNIT_FOR = {TIME: ("us", 10**6), FREQUENCY: ("Hz", 1), CURRENT: ("uA", 10**6)}

CODES = {
    "E201": "unknown channel", "E202": "unknown cycle", "E203": "unknown electrode", "E204": "unknown param",
    "E205": "unknown site", "E206": "unknown header key", "E207": "duplicate name",
    "E208": "duplicate channel number", "E209": "duplicate section", "E210": "channel setting missing",
    "E211": "statement given twice", "E212": "electrode pair uses one electrode twice",
    "E213": "channel twice in one block", "E214": "continuous inside repeat", "E215": "cycle named continuous",
    "E216": "unknown allow", "E217": "no session", "E218": "unknown progression target",
    "E219": "param reference not allowed here", "E220": "not a side", "E301": "wrong dimension", "E302": "mixed dimensions in + or -",
    "E401": "value must be positive", "E402": "value cannot be negative", "E403": "count must be whole",
    "E404": "division by zero", "E405": "param default outside its range", "E406": "param range inverted",
    "E407": "channel number out of range", "E408": "progression week out of the plan",
    "E409": "zero-length cycle in for", "E410": "after beyond the for block", "E411": "impossible pulse shape", "E412": "session unrolls to too many blocks",
    "E413": "value out of range",
    "S007": "param outside its range in some week", "S014": "session longer than 24 h",
    "W201": "channel without site", "W202": "channel not used", "W203": "custom site", "W401": "no whole cycle fits",
    "W402": "zero-length cycle in repeat", "W408": "progression week without a plan",
}


def did_you_mean(word: str, candidates, n: int = 1) -> Optional[str]:
    """stimscript/suggest.py's hint, imported with the first error that needs one (a good file never does)."""
    from ..suggest import did_you_mean as suggest

    return suggest(word, candidates, n)


class ParamInfo(Record):
    """A declared param: its default, its range and description as written, checked."""

    __slots__ = ("name", "default", "low", "high", "description", "span")
    _compare = ("name", "default", "low", "high", "description")
    name: str
    default: Quantity
    low: Optional[Quantity]
    high: Optional[Quantity]
    description: Optional[str]
    span: Optional[Span]

    def __init__(self, name: str, default: Quantity, low: Optional[Quantity] = None,
                 high: Optional[Quantity] = None, description: Optional[str] = None,
                 span: Optional[Span] = None) -> None:
        init(self, "name", name)
        init(self, "default", default)
        init(self, "low", low)
        init(self, "high", high)
        init(self, "description", description)
        init(self, "span", span)

    @property
    def dim(self):
        return self.default.dim

    @property
    def range(self) -> Optional[tuple[Quantity, Quantity]]:
        return (self.low, self.high) if self.low is not None and self.high is not None else None

    def range_text(self) -> str:
        rng = self.range
        return f"{fmt(rng[0])} .. {fmt(rng[1])}" if rng is not None else "(no range)"


class ChannelDecl:
    """A channel declaration and its statements by kind (filled in while checking its body)."""

    __slots__ = ("node", "site", "pair", "pulse", "frequency", "amplitude")

    def __init__(self, node: ast.Channel) -> None:
        self.node = node
        self.site: Optional[ast.Site] = None
        self.pair: Optional[ast.ElectrodePair] = None
        self.pulse: Optional[ast.Pulse] = None
        self.frequency: Optional[ast.Setting] = None
        self.amplitude: Optional[ast.Setting] = None


class ChannelValues:
    """A channel's values in one week (the progression applied)."""

    __slots__ = ("decl", "frequency", "amplitude", "shape", "electrodes", "param", "freq_span", "amp_span")

    def __init__(self, decl: ChannelDecl, frequency: Fraction, amplitude: Fraction, shape: PulseShape,
                 electrodes: tuple, param: Optional[str], freq_span: Optional[Span], amp_span: Optional[Span]):
        self.decl = decl
        self.frequency = frequency      # Hz
        self.amplitude = amplitude      # µA
        self.shape = shape
        self.electrodes = electrodes
        self.param = param
        self.freq_span = freq_span
        self.amp_span = amp_span


def _quantity_node(q: Quantity, span: Optional[Span]) -> ast.Expr:
    """A literal standing for a fixed progression value, so value checks point at the assignment."""
    unit, factor = _UNIT_FOR.get(q.dim, (None, 1))
    if unit is None:  # pragma: no cover - progression targets are time/frequency/current
        return ast.Number(q.value, None, span=span)
    return ast.Number(q.value * factor, unit, span=span)


def _note(message: str, span: Optional[Span]) -> list[Related]:
    """A related note ("first declared here"), when the place it points at is known."""
    return [Related(message, span)] if span is not None else []


def _span_of(node: Optional[ast.Node]) -> Optional[Span]:
    return node.span if node is not None else None


def _span_of_word(span: Optional[Span], word: str, skip: int = 0) -> Optional[Span]:
    """The span of ``word`` inside ``span`` (first whole-word match after ``skip`` characters)."""
    if span is None:
        return None
    text = span.source.text
    m = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])").search(
        text, span.start_pos + skip, span.end_pos)
    if not m:
        return span
    start = point(span.source, m.start())
    return Span(span.source, start.line, start.column, start.line, start.column + len(word), m.start(), m.end())


class Analysis:
    """Static tables of one protocol plus the per-week resolver."""

    def __init__(self, protocol: ast.Protocol, source: Source):
        self.p = protocol
        self.source = source
        self.diags: list[Diagnostic] = []
        self.params: dict[str, ParamInfo] = {}
        self.param_nodes: dict[str, ast.Param] = {}
        self.broken: set[str] = set()
        self.electrodes: dict[str, ast.Electrode] = {}
        self.channels: dict[str, ChannelDecl] = {}
        self.cycles: dict[str, dict[str, ast.CycleStep]] = {}
        self.cycle_nodes: dict[str, ast.Cycle] = {}
        self.header: Optional[ast.Header] = None
        self.header_fields: dict[str, str] = {}
        self.plan: Optional[PlanInfo] = None
        self.session: Optional[ast.Session] = None
        self.progression = Progression((), {})
        self.limits: list[LimitValue] = []
        self.allow_monophasic = False
        self.kinds: dict[str, str] = {}
        self._declared_params: Optional[list[str]] = None
        self.static()
        #: the block memo (``_block``): per top-level block, its static dependencies and its measurements
        self._block_deps_list: Optional[list] = None
        #: the week laid out last, for the runs of blocks a week takes from it (``_replay_run``)
        self._last_layout: Optional[_WeekRecord] = None
        self._readers: dict[str, list[int]] = {}
        #: per `with amplitude` (by id) and the numbers of the params it names: (µA, span, (num, den)) or None
        self._amp_values: dict[tuple, Optional[tuple]] = {}
        self._block_memos: dict[int, dict[tuple, _BlockMemo]] = {}
        self._interned: dict[tuple, int] = {}
        self._numbers = 0
        #: the memo of electrodes, cycles and channels (``_memo``) and what each reads (``_reads``)
        self._values_memo: dict[tuple, tuple] = {}
        self._static_reads: dict[tuple, tuple[str, ...]] = {}
        self._expr_reads: dict[int, tuple] = {}
        self._by_number: Optional[list] = None
        self._ranges: Optional[dict] = None
        #: per param, its value last found inside its range (S007): the same object is not compared again
        self._inside: dict[str, Quantity] = {}
        self._cycles_list: Optional[list] = None
        #: per "c:CYCLE" / "h:CHANNEL" of ``_week_env``: the objects its number was last given for, the number
        self._numbered: dict[str, tuple] = {}
        #: per channel, what its values read (``_channel_static``)
        self._chan_static: dict[str, tuple] = {}
        #: per channel, its electrode pair as last built: the same tuple again while its two electrodes are the
        #: same objects (the safety rules memoise per electrode tuple, so a new tuple each week is looked up anew)
        self._pairs: dict[str, tuple] = {}

    # -- helpers -----------------------------------------------------------------------------------
    def err(self, code, message, span, hint=None, related=(), severity="error"):
        self.diags.append(Diagnostic(code, message, span, severity=severity, hint=hint, related=tuple(related)))

    def warn(self, code, message, span, hint=None):
        self.err(code, message, span, hint, severity="warning")

    def make_ev(self, values: dict, sink: list, **kw) -> Evaluator:
        return Evaluator(values, sink, kinds=self.kinds, broken=self.broken, param_names=self.params, **kw)

    def _static_ev(self, what: str) -> Evaluator:
        if self._declared_params is None:
            self._declared_params = [p.name for p in self.p.params]
        ev = Evaluator({}, self.diags, kinds=self.kinds, forbid_params=True, param_names=self._declared_params)
        ev.forbid_what = what  # what the message names when a param is used where none may be
        return ev

    def _name_span(self, node: ast.Node, name: str, keyword: str) -> Optional[Span]:
        return _span_of_word(node.span, name, len(keyword))

    # -- static checks -------------------------------------------------------------------------------
    def static(self) -> None:
        p = self.p
        for c in p.channels:
            self.kinds.setdefault(c.name, "channel")
        for cy in p.cycles:
            self.kinds.setdefault(cy.name, "cycle")
        for e in p.electrodes:
            self.kinds.setdefault(e.name, "electrode")
        self._headers()
        self._params()
        self._electrodes()
        self._channels()
        self._cycles()
        self._session()
        self._progression()
        self._limits()

    def _dup(self, table: dict, name: str, node: ast.Node, keyword: str, what: str) -> bool:
        if name in table:
            first = table[name]
            first_node = first.node if isinstance(first, ChannelDecl) else first
            first_span = first_node.name_span if isinstance(first_node, ast.Channel) else \
                self._name_span(first_node, name, keyword)
            span = node.name_span if isinstance(node, ast.Channel) else self._name_span(node, name, keyword)
            self.err("E207", f"{what} `{name}` is declared twice", span,
                     hint="give each one its own name",
                     related=_note(f"`{name}` is first declared here", first_span) if first_span else [])
            return True
        return False

    def _headers(self) -> None:
        headers = [i for i in self.p.items if isinstance(i, ast.Header)]
        for h in headers[1:]:
            self.err("E209", "the file has two `protocol` headers", _span_of_word(h.span, "protocol"),
                     hint="merge them into one", related=_note("the first header is here",
                                                                 _span_of_word(headers[0].span, "protocol")))
        if not headers:
            return
        self.header = h = headers[0]
        seen: dict[str, ast.HeaderField] = {}
        for f in h.fields:
            if f.key not in HEADER_KEYS:
                self.err("E206", f"unknown header key `{f.key}`", _span_of_word(f.span, f.key),
                         hint=did_you_mean(f.key, HEADER_KEYS) or "known keys: " + ", ".join(HEADER_KEYS))
                continue
            if f.key in seen:
                self.err("E211", f"`{f.key}` is given twice in the header", _span_of_word(f.span, f.key),
                         related=_note("first given here", seen[f.key].span))
                continue
            seen[f.key] = f
            self.header_fields[f.key] = f.value
        if h.plan is not None:
            ev = self._static_ev("the plan")
            n = ev.whole(h.plan.sessions, "the number of sessions")
            w = ev.whole(h.plan.weeks, "the number of weeks")
            if n is not None and w is not None:
                self.plan = PlanInfo(n, h.plan.per, w, span=h.plan.span)

    def _params(self) -> None:
        for prm in self.p.params:
            if prm.name in self.param_nodes:
                self._dup(self.param_nodes, prm.name, prm, "param", "param")
                continue
            self.param_nodes[prm.name] = prm
            ev = self._static_ev("a param's default and range")
            before = len(self.diags)
            default = ev.value(prm.default)
            if default is None:
                self.broken.add(prm.name)
                continue
            low = high = None
            if prm.low is not None and prm.high is not None:   # the grammar gives both or neither
                low = ev.quantity(prm.low, default.dim, f"the range of `{prm.name}` (the dimension of its default)")
                high = ev.quantity(prm.high, default.dim, f"the range of `{prm.name}` (the dimension of its default)")
            if len(self.diags) == before and low is not None and high is not None:
                if low.value > high.value:
                    lo_span = prm.low.span if prm.low is not None else None
                    self.err("E406", f"the range of `{prm.name}` is inverted: {fmt(low)} > {fmt(high)}",
                             lo_span.merge(prm.high.span if prm.high is not None else None) if lo_span else prm.span,
                             hint="write the range as LOW .. HIGH")
                elif not (low.value <= default.value <= high.value):
                    self.err("E405", f"the default of `{prm.name}`, {fmt(default)}, is outside its range "
                             f"{fmt(low)} .. {fmt(high)}", prm.default.span)
            if len(self.diags) != before:
                self.broken.add(prm.name)
                continue
            self.params[prm.name] = ParamInfo(prm.name, default, low, high, prm.description, prm.span)

    def _electrodes(self) -> None:
        for e in self.p.electrodes:
            if not self._dup(self.electrodes, e.name, e, "electrode", "electrode"):
                self.electrodes[e.name] = e

    def _channels(self) -> None:
        numbers: dict[int, ast.Channel] = {}
        for c in self.p.channels:
            if self._dup(self.channels, c.name, c, "channel", "channel"):
                continue
            decl = ChannelDecl(c)
            self.channels[c.name] = decl
            if not 1 <= c.number <= 255:
                self.err("E407", f"channel number {c.number} is outside 1..255", c.number_span,
                         hint="outputs are numbered from 1")
            elif c.number in numbers:
                first = numbers[c.number]
                self.err("E208", f"channels `{first.name}` and `{c.name}` both use output {c.number}",
                         c.number_span, hint="give each channel its own output number",
                         related=_note(f"output {c.number} is first used by `{first.name}` here",
                                          first.number_span))
            else:
                numbers[c.number] = c
            for stmt in c.body:
                if isinstance(stmt, ast.Site):
                    slot, word = "site", "site"
                elif isinstance(stmt, ast.ElectrodePair):
                    slot, word = "pair", "electrodes"
                elif isinstance(stmt, ast.Pulse):
                    slot, word = "pulse", "pulse"
                else:
                    slot = word = stmt.key
                if getattr(decl, slot) is not None:
                    self.err("E211", f"channel `{c.name}` has two `{word}` statements", stmt.span,
                             hint="keep one", related=_note("the first one is here", getattr(decl, slot).span))
                    continue
                setattr(decl, slot, stmt)
            missing = [w for w, s in (("electrodes", decl.pair), ("pulse", decl.pulse),
                                      ("frequency", decl.frequency), ("amplitude", decl.amplitude)) if s is None]
            if missing:
                examples = {"electrodes": "`electrodes prox -> dist`", "pulse": "`pulse biphasic 300 us`",
                            "frequency": "`frequency 50 Hz`", "amplitude": "`amplitude intensity`"}
                self.err("E210", f"channel `{c.name}` has no " + ", ".join(f"`{m}`" for m in missing),
                         c.name_span, hint="add " + "; ".join(examples[m] for m in missing))
            if decl.site is None:
                self.warn("W201", f"channel `{c.name}` has no `site`", c.name_span,
                          hint="name the motor point, e.g. `site vastus_medialis right`")
            elif decl.site.custom is not None:
                if not decl.site.custom.strip():
                    self.err("E205", "a custom site needs a description", decl.site.span,
                             hint='describe the placement, e.g. `site "3 cm distal to the fibular head" left`')
                else:
                    self.warn("W203", f"site \"{decl.site.custom}\" of channel `{c.name}` is a custom placement: "
                              "it is not checked against the motor-point atlas", decl.site.span,
                              hint="check the placement on the patient; the setup sheet prints the text as written")
            elif decl.site.muscle is not None and _atlas.lookup(decl.site.muscle.name) is None:
                name = decl.site.muscle.name
                hint = did_you_mean(name.lower(), _atlas.names(), 2) or \
                    "known sites: " + ", ".join(_atlas.names()[:8]) + ", ..."
                self.err("E205", f"unknown site `{name}` (not in the motor-point atlas)", decl.site.muscle.span,
                         hint=hint)
            if decl.site is not None and decl.site.side is not None and decl.site.side not in ("left", "right"):
                self._side(c, decl.site, decl.site.side)
            if decl.pair is not None:
                for ref in (decl.pair.first, decl.pair.second):
                    if ref.name not in self.electrodes:
                        self.err("E203", f"unknown electrode `{ref.name}`", ref.span,
                                 hint=did_you_mean(ref.name, [e.name for e in self.p.electrodes])
                                 or f"declare it with `electrode {ref.name} 5 cm x 9 cm`")
                if decl.pair.first.name == decl.pair.second.name:
                    self.err("E212", f"the electrode pair of `{c.name}` uses `{decl.pair.first.name}` twice",
                             decl.pair.second.span, hint="current flows between two different electrodes")

    def _side(self, c: ast.Channel, site: ast.Site, word: str) -> None:
        # the side is the statement's last word
        span = _span_of_word(site.span, word, site.span.end_pos - site.span.start_pos - len(word)) \
            if site.span is not None else None
        where = f'"{site.custom}"' if site.custom is not None else site.muscle.name if site.muscle else ""
        if word.lower() in ("both", "bilateral"):
            self.err("E220", f"`{word}` is not a side: a channel drives one electrode pair, on one side", span,
                     hint=f"declare one channel per side, e.g. `channel {c.name}_left {c.number} {{ site {where} left "
                          f"... }}` and `channel {c.name}_right N {{ site {where} right ... }}`, and run both on one "
                          "line (`a, b: CYCLE`)")
        else:
            self.err("E220", f"unknown side `{word}`", span,
                     hint=did_you_mean(word, ("left", "right")) or "a side is `left` or `right` (or leave it out)")

    def _cycles(self) -> None:
        for c in self.p.cycles:
            if c.name == "continuous":
                self.err("E215", "`continuous` is a built-in cycle; choose another name",
                         self._name_span(c, c.name, "cycle"))
                continue
            if self._dup(self.cycle_nodes, c.name, c, "cycle", "cycle"):
                continue
            self.cycle_nodes[c.name] = c
            steps: dict[str, ast.CycleStep] = {}
            for s in c.steps:
                if s.kind in steps:
                    self.err("E211", f"cycle `{c.name}` gives `{s.kind.replace('_', ' ')}` twice", s.span,
                             related=_note("first given here", steps[s.kind].span))
                    continue
                steps[s.kind] = s
            self.cycles[c.name] = steps

    def _session(self) -> None:
        sessions = self.p.sessions
        if not sessions:
            text = self.source.text
            self.err("E217", "the protocol has no `session` block",
                     point(self.source, len(text.rstrip()) - 1 if text.strip() else 0),
                     hint="add e.g. `session { repeat 10 { CHANNEL: CYCLE } }`")
            return
        for s in sessions[1:]:
            self.err("E209", "the file has two `session` blocks", _span_of_word(s.span, "session"),
                     hint="put every block into one session",
                     related=_note("the first session is here", _span_of_word(sessions[0].span, "session")))
        self.session = sessions[0]
        used: set[str] = set()
        for block in _leaf_blocks(self.session.blocks):
            in_block: dict[str, ast.Name] = {}
            for line in block.lines:
                for ch in line.channels:
                    if ch.name not in self.channels:
                        self.err("E201", f"unknown channel `{ch.name}`", ch.span,
                                 hint=did_you_mean(ch.name, self.channels) or (
                                     "declared channels: " + ", ".join(self.channels) if self.channels
                                     else "declare it with `channel NAME NUMBER { ... }`"))
                        continue
                    used.add(ch.name)
                    if ch.name in in_block:
                        self.err("E213", f"channel `{ch.name}` appears twice in one block", ch.span,
                                 hint="lines in a block run in parallel; use another block to run it again",
                                 related=_note("it is first used here", in_block[ch.name].span))
                    else:
                        in_block[ch.name] = ch
                cyc = line.cycle.name
                if cyc == "continuous":
                    if isinstance(block, ast.Repeat):
                        self.err("E214", "`continuous` has no length of its own, so it cannot be repeated",
                                 line.cycle.span, hint="use it inside `for T { ... }`")
                elif cyc not in self.cycles and cyc not in self.cycle_nodes:
                    self.err("E202", f"unknown cycle `{cyc}`", line.cycle.span,
                             hint=did_you_mean(cyc, list(self.cycles) + ["continuous"]) or (
                                 "declare it with `cycle " + cyc + " { ramp up 1 s; hold 5 s; rest 10 s }`"))
                seen_ov: dict[str, ast.Override] = {}
                for ov in line.overrides:
                    if ov.key in seen_ov:
                        self.err("E211", f"this line overrides `{ov.key}` twice", ov.span,
                                 related=_note("first overridden here", seen_ov[ov.key].span))
                    seen_ov[ov.key] = ov
        for name, decl in self.channels.items():
            if name not in used:
                self.warn("W202", f"channel `{name}` is declared but the session never uses it",
                          decl.node.name_span)

    def _progression(self) -> None:
        progs = self.p.progressions
        for pr in progs[1:]:
            self.err("E209", "the file has two `progression` blocks", _span_of_word(pr.span, "progression"),
                     hint="merge them into one",
                     related=_note("the first progression is here", _span_of_word(progs[0].span, "progression")))
        if not progs:
            return
        items = progs[0].weeks
        targets: dict[int, tuple] = {}
        weeks = self.plan.weeks if self.plan else None
        values = {n: i.default for n, i in self.params.items()}
        for item in items:
            if isinstance(item, ast.Week):
                span = _span_of_word(item.span, "week")
                label = item.label
                if item.first < 1:
                    self.err("E408", f"{label}: weeks are numbered from 1", span)
                elif item.last is None:
                    if weeks is None:
                        self.err("E408", f"`{label}` runs to the end of the plan, but the protocol has no `plan`",
                                 span, hint="add `plan N sessions per week, W weeks` to the protocol header, "
                                 "or give the range its last week (`week A..B`)")
                    elif item.first > weeks:
                        self.err("E408", f"{label} starts beyond the plan's {weeks} week{'s' if weeks != 1 else ''}",
                                 span, related=self._plan_note())
                elif item.first > item.last:
                    self.err("E408", f"{label} is inverted ({item.first} > {item.last})", span,
                             hint=f"write `week {item.last}..{item.first}`")
                elif weeks is not None and item.last > weeks:
                    self.err("E408", f"{label} is beyond the plan's {weeks} week{'s' if weeks != 1 else ''}", span,
                             related=self._plan_note())
                elif weeks is None and item.last > 1:
                    self.warn("W408", f"{label} is never used: without a `plan` only session 1 (week 1) exists",
                              span, hint="add `plan N sessions per week, W weeks` to the protocol header")
            for a in item.assignments:
                resolved = self._target(a.target)
                if resolved is None:
                    continue
                targets[id(a)] = resolved
                key, dim = resolved
                ev = self.make_ev(values, self.diags)
                ev.quantity(a.value, dim, "the value of " + target_text(key))
                if a.bound is not None:
                    ev.quantity(a.bound, dim, "the cap of " + target_text(key))
        self.progression = Progression(items, targets)

    def _plan_note(self) -> list[Related]:
        """'the plan is here', when the plan has a place in the file."""
        return _note("the plan is here", self.plan.span) if self.plan is not None and self.plan.span else []

    def _target(self, t: ast.Target) -> Optional[tuple]:
        path = t.path
        span = t.span
        if len(path) == 1:
            name = path[0]
            if name in self.params:
                return ("param", name), self.params[name].dim
            if name in self.broken:
                return None
            if name in self.channels:
                self.err("E218", f"`{name}` is a channel; assign one of its settings", span,
                         hint=f"`{name}.frequency` or `{name}.amplitude`")
            elif name in self.cycles:
                self.err("E218", f"`{name}` is a cycle; assign one of its steps", span,
                         hint=f"`{name}.hold`, `{name}.rest`, `{name}.ramp_up` or `{name}.ramp_down`")
            else:
                cands = list(self.params) + [f"{c}.{s}" for c in self.cycles for s in CYCLE_STEPS] + \
                    [f"{c}.{s}" for c in self.channels for s in CHANNEL_TARGETS]
                self.err("E218", f"unknown progression target `{name}`", span,
                         hint=did_you_mean(name, cands) or "targets: a param, CYCLE.hold/rest/ramp_up/ramp_down, "
                                                          "CHANNEL.frequency/amplitude")
            return None
        if len(path) == 2:
            owner, attr = path
            if owner in self.cycles:
                if attr in CYCLE_STEPS:
                    return ("cycle", owner, attr), TIME
                self.err("E218", f"cycle `{owner}` has no `{attr}`", span,
                         hint=did_you_mean(attr, CYCLE_STEPS) or "steps: ramp_up, hold, ramp_down, rest")
                return None
            if owner in self.channels:
                if attr in CHANNEL_TARGETS:
                    return ("channel", owner, attr), CHANNEL_TARGETS[attr]
                self.err("E218", f"channel `{owner}` has no `{attr}` a progression can change", span,
                         hint=did_you_mean(attr, CHANNEL_TARGETS) or "settings: frequency, amplitude")
                return None
            if owner in self.cycle_nodes or owner in self.channels:
                return None
            self.err("E218", f"unknown progression target `{owner}.{attr}`: no cycle or channel `{owner}`", span,
                     hint=did_you_mean(owner, list(self.cycles) + list(self.channels)))
            return None
        self.err("E218", f"unknown progression target `{'.'.join(path)}`", span,
                 hint="targets: a param, CYCLE.STEP or CHANNEL.SETTING")
        return None

    def _limits(self) -> None:
        for lim in self.p.limits:
            for item in lim.items:
                if isinstance(item, ast.Limit):
                    self._limit(item)
        for allow in self.p.allows:
            if allow.what in ALLOWS:
                self.allow_monophasic = True
            else:
                self.err("E216", f"unknown `allow {allow.what}`", _span_of_word(allow.span, allow.what, 5),
                         hint=did_you_mean(allow.what, ALLOWS) or "known: " + ", ".join(ALLOWS))

    def _limit(self, lim: ast.Limit) -> None:
        ev = self._static_ev("a limit")
        dim = LIMIT_DIMS.get(lim.quantity)
        what = f"`{lim.bound} {lim.quantity}`"
        if dim is None:  # pragma: no cover - the grammar lists the quantities
            return
        if lim.quantity == "channels":
            n = ev.whole(lim.value, what, minimum=1 if lim.bound == "max" else 0)
            q = Quantity(Fraction(n), COUNT) if n is not None else None
        elif lim.bound == "max":
            q = ev.positive(lim.value, dim, what)
        else:
            q = ev.non_negative(lim.value, dim, what)
        if q is not None:
            self.limits.append(LimitValue(lim.bound, lim.quantity, q, lim.span))

    # -- per-week resolution ---------------------------------------------------------------------------
    def initial_state(self, overrides: Optional[dict] = None) -> State:
        values = {n: i.default for n, i in self.params.items()}
        values.update(overrides or {})
        return State(values)

    def current(self, key, values: dict) -> Optional[Quantity]:
        """A progression target's value before an assignment (for `+=`/`-=`)."""
        if key[0] == "param":
            return values.get(key[1])
        return self._current_from(key, values, self.make_ev(values, []))

    def _current_from(self, key, values, ev) -> Optional[Quantity]:
        state_assigned = getattr(self, "_assigned_now", {})
        if key in state_assigned:
            a = state_assigned[key]
            return a.value if a.value is not None else ev.value(a.expr)
        if key[0] == "cycle":
            step = self.cycles.get(key[1], {}).get(key[2])
            return ev.value(step.duration) if step is not None else Quantity(Fraction(0), TIME)
        decl = self.channels[key[1]]
        setting = decl.frequency if key[2] == "frequency" else decl.amplitude
        return ev.value(setting.value) if setting is not None else None

    def value_of(self, key, state: State) -> Optional[Quantity]:
        """A progression target's value in ``state`` (a param, a cycle step or a channel setting)."""
        if key[0] == "param":
            return state.values.get(key[1])
        self._assigned_now = state.assigned
        try:
            return self._current_from(key, state.values, self.make_ev(state.values, []))
        finally:
            self._assigned_now = {}

    def _apply_all(self, assignments, state: State, week: int, sink: list, fixed: frozenset) -> State:
        new = state.copy()
        self._assigned_now = new.assigned
        # one evaluator for the whole list: it reads ``new.values``, which the assignments update in place
        shared = self.make_ev(new.values, sink)

        def make_ev(values: dict, into: list) -> Evaluator:
            return shared if values is new.values and into is sink else self.make_ev(values, into)

        try:
            for a in assignments:
                self.progression.apply(a, new, week, sink, make_ev, self.current, fixed)
        finally:
            self._assigned_now = {}
        return new

    def accumulate(self, base: State, week: int, sink: list, fixed: frozenset = frozenset()) -> State:
        """One more step of the ``every week`` accumulation: the base of week ``week`` from that of week-1."""
        return self._apply_all(self.progression.every_week(), base, week, sink, fixed)

    def week_state(self, base: State, week: int, sink: list, fixed: frozenset = frozenset()) -> State:
        """Week ``week``'s values: its accumulated base, then the week blocks whose range holds it."""
        return self._apply_all(self.progression.blocks_for(week), base, week, sink, fixed)

    def week_states(self, weeks: int, overrides: Optional[dict] = None,
                    fixed: frozenset = frozenset()) -> Iterator[tuple[int, State, list[Diagnostic]]]:
        """(week, its values, the diagnostics of computing them) for weeks 1..``weeks`` in order: the one week
        loop (declared values and overrides, ``every week`` accumulated once per week, then the week's
        blocks) that :func:`analyse` and ``CheckedProtocol.weeks`` walk."""
        base = self.initial_state(overrides)
        for week in range(1, weeks + 1):
            sink: list[Diagnostic] = []
            if week >= 2:
                base = self.accumulate(base, week, sink, fixed)
            yield week, self.week_state(base, week, sink, fixed), sink

    def state_at(self, week: int, overrides: Optional[dict] = None, sink: Optional[list] = None,
                 fixed: frozenset = frozenset()) -> State:
        """The values of week ``week`` (a pure function of the week): declared values (and overrides),
        ``every week`` applied week-1 times, then the blocks whose range holds the week."""
        sink = [] if sink is None else sink
        base = self.initial_state(overrides)
        for k in range(2, week + 1):
            base = self.accumulate(base, k, sink, fixed)
        return self.week_state(base, week, sink, fixed)

    def _value(self, ev: Evaluator, state: State, key, declared: Optional[ast.Expr], check, *args):
        """(Quantity|None, span, expression used) for a setting a progression may have changed."""
        a: Optional[Assigned] = state.assigned.get(key)
        if a is not None:
            if a.expr is not None:
                expr = a.expr
            elif a.value is not None:
                expr = _quantity_node(a.value, a.span)
            else:   # pragma: no cover - an assignment holds a value or an expression
                return None, a.span, None
            return check(expr, *args), a.span, expr
        if declared is None:
            return None, None, None
        return check(declared, *args), declared.span, declared

    def _measure(self, block: ast.Block, ctx: "_LeafContext", path: tuple) -> Optional["Measured"]:
        """A block's length and content for this week (None when a value failed; its error is recorded)."""
        ev, sink = ctx.ev, ctx.sink
        if isinstance(block, ast.Pause):
            d = ev.time_us(block.duration, "the pause length")
            return None if d is None else Measured("pause", d, label=f"pause {duration_text(d)}", path=path)
        if isinstance(block, ast.Repeat):
            count = ev.whole(block.count, "the repeat count")
            length = None
            if count is None:
                return None
        else:
            count = None
            length = ev.time_us(block.duration, "the length of a `for` block", positive=True)
            if length is None:
                return None
        if not block.blocks:
            return self._leaf(block, ctx, path, count, length)
        measured = [self._measure(b, ctx, path + (i,)) for i, b in enumerate(block.blocks)]
        children = [c for c in measured if c is not None]
        if len(children) != len(measured):
            return None
        pass_len = sum(c.length for c in children)
        keyword = "repeat" if count is not None else "for"
        if length is not None:
            if pass_len == 0:
                if any(d.is_error for d in self.diags):
                    return None   # a line the static checks rejected may be what left the pass empty
                sink.append(Diagnostic("E409", "one pass of this set lasts 0 s, so `for` would repeat it forever",
                                       _span_of_word(block.span, "for"),
                                       hint="give the blocks inside a length (a cycle with a hold or a rest, a "
                                            "`pause`), or use `repeat N` to run the set N times"))
                return None
            count = length // pass_len
            if count == 0:
                sink.append(Diagnostic(
                    "W401", f"not one whole pass of this set ({duration_text(pass_len)}) fits in its "
                    f"`for {duration_text(length)}`; the block emits nothing", _span_of_word(block.span, "for"),
                    severity="warning"))
        elif count is not None:
            length = count * pass_len
        else:   # pragma: no cover - a set is `repeat N` (a count) or `for T` (a length)
            return None
        return Measured("set", length, count=count, pass_us=pass_len, children=tuple(children),
                         label=f"{keyword} {duration_text(length) if keyword == 'for' else count}", path=path)

    def _leaf(self, block, ctx: "_LeafContext", path: tuple, count: Optional[int], length: Optional[int]
              ) -> "Measured":
        """A block of lines: where each line places each channel, relative to the block start (lowering.py
        builds the trains; ``lowering.leaf_lines`` and its compiled twin walk the lines)."""
        end, cycle_names, placements = _lowering._leaf_lines(block.lines, ctx, self.cycle_nodes, path[0], count,
                                                             length, _line_overrides, _line_problem)
        if length is not None:
            return Measured("leaf", length, placements=tuple(placements), label=f"for {duration_text(length)}",
                            path=path)
        return Measured("leaf", end, placements=tuple(placements), label=repeat_label(count or 0, cycle_names),
                        path=path)

    def resolve(self, state: State, week: int, session: int, sink: list) -> Optional[ResolvedSession]:
        """Week ``week``'s session (numbered ``session``) from its progression ``state``; every problem goes to
        ``sink`` (None when one is an error).

        The cyclic garbage collector is paused meanwhile: resolving allocates tens of thousands of small
        objects that all live on (uses, trains, segments), and a collection pass would walk the whole
        protocol's tree again and again (a third of the time of a 5000-line protocol). Nothing here
        makes reference cycles; reference counting frees the rest as before (:func:`paused_gc`)."""
        return paused_gc(self._resolve, state, week, session, sink)

    def _resolve(self, state: State, week: int, session: int, sink: list) -> Optional[ResolvedSession]:
        errors_before = sum(1 for d in sink if d.is_error)
        ev = self.make_ev(state.values, sink)
        # params outside their range because of the progression (S007); a value found inside is not compared again
        ranges = self._param_ranges()
        inside = self._inside
        for name, q in state.values.items():
            r = ranges.get(name)
            if r is None or inside.get(name) is q:
                continue
            a = state.assigned.get(("param", name))
            if a is None:
                continue
            info, low, high = r
            v = q.value
            above = _greater(v, high)
            if above or _greater(low, v):
                side = "above" if above else "below"
                sink.append(Diagnostic("S007", f"{name} {fmt(q)} is {side} the range {info.range_text()}", a.span,
                                       hint="cap the progression with `up to`/`down to`",
                                       related=tuple(_note(f"the range of `{name}` is declared here",
                                                           _span_of_word(info.span, name, 5)))))
            else:
                inside[name] = q
        # electrodes, cycles, channels: each memoised on the values it reads (``_memo``)
        memo = _CACHE[0]
        ids = self._param_ids(state) if memo else {}
        get = ids.get
        head = ids.get("", 0)
        if memo:
            elec = self._memo(("e", head, tuple(map(get, self._electrode_reads()))), sink,
                              self._electrode_values, ev)
        else:
            elec = self._electrode_values(ev)
        timings: dict[str, Timing] = {}
        assigned = state.assigned
        owners = {k[:2] for k in assigned} if memo else set()   # the cycles and channels a progression sets
        for name, steps, reads, owner, step_keys in self._cycle_rows():
            if memo:
                key: tuple = ("c", name, head, tuple(map(get, reads)) if reads else ())
                if owner in owners:
                    key += tuple([_assigned_key(assigned.get(k), get, self._expr_reads) for k in step_keys])
                timing = self._memo(key, sink, self._cycle_timing, ev, state, name, steps)
            else:
                timing = self._cycle_timing(ev, state, name, steps)
            if timing is not None:
                timings[name] = timing
        table = ShapeTable()
        chans: dict[str, ChannelValues] = {}
        keys = (get, head) if memo else None
        for name, decl in self._channels_by_number():
            cv = self._channel_values(ev, state, name, decl, elec, sink, keys)
            if cv is not None:
                chans[name] = cv
                table.add(cv.shape)
        # session: measure every block (leaf blocks resolved once), then lay the passes out in time
        laid = self._session_layout(state, ev, timings, chans, table, sink, ids)
        uses, t = laid.uses, laid.duration_us
        trains: tuple = ()
        train_uses: tuple = ()   # per train: the index of the use it comes from (delivered-pulse rules report there)
        segments: tuple = ()
        if laid.expanded > MAX_EXPANDED_BLOCKS and self.session is not None:
            sink.append(Diagnostic("E412", f"the session expands to {laid.expanded:,} blocks (sets repeat their "
                                   f"blocks); at most {MAX_EXPANDED_BLOCKS:,} are allowed",
                                   _span_of_word(self.session.span, "session"),
                                   hint="use fewer, longer blocks: a line's cycle repeats inside one block"))
        elif laid.lowered is not None:
            trains, train_uses, segments = laid.lowered.trains, laid.lowered.train_uses, laid.lowered.segments
        too_long = session_too_long(t)
        if too_long is not None and self.session is not None:
            sink.append(Diagnostic("S014", too_long, _span_of_word(self.session.span, "session"),
                                   hint=SESSION_TOO_LONG_HINT))
        if sum(1 for d in sink if d.is_error) > errors_before or self.session is None:
            return None
        infos = []
        for name, cv in chans.items():
            site = cv.decl.site
            infos.append(ChannelInfo(number=cv.decl.node.number, name=name,
                                     site=site.text if site else "", side=(site.side or "") if site else "",
                                     site_custom=site is not None and site.custom is not None,
                                     electrodes=(cv.electrodes[0].name, cv.electrodes[1].name),
                                     frequency_hz=cv.frequency, amplitude_ua=_round_even(cv.amplitude),
                                     shape=table.add(cv.shape), param=cv.param))
        return ResolvedSession(session=session, week=week, duration_us=t, uses=tuple(uses), trains=trains,
                               shapes=table.shapes, channels=tuple(sorted(infos, key=lambda i: i.number)),
                               segments=segments, params=dict(state.values), limits=tuple(self.limits),
                               allow_monophasic=self.allow_monophasic, session_span=self.session.span,
                               train_uses=train_uses)

    # -- the week's values of electrodes, cycles and channels (each memoised on what it reads) ---------
    def _memo(self, key: tuple, sink: list, compute, *args):
        """``compute(*args)`` once per ``key`` (what it reads); its diagnostics (it reports into ``sink``) are
        repeated whenever the key comes again. Its result is shared: results are never changed."""
        known = self._values_memo.get(key)
        if known is not None:
            sink.extend(known[1])
            return known[0]
        before = len(sink)
        result = compute(*args)
        if len(self._values_memo) >= 100_000:   # pragma: no cover - a bound; the memo is only a shortcut
            self._values_memo.clear()
        self._values_memo[key] = (result, tuple(sink[before:]))
        return result

    def _param_ids(self, state: State) -> dict[str, int]:
        """A small number per param value ("p:NAME"; equal values, equal numbers) and, under "", one for the
        names the evaluator knows (its hints list them)."""
        number = self._number
        seen = self._numbered
        ids = {}
        for n, q in state.values.items():
            k = "p:" + n
            was = seen.get(k)
            if was is not None and was[0] is q:   # the same Quantity as before: its number
                ids[k] = was[1]
                continue
            v = q.value
            ids[k] = number(("p", n, v.numerator, v.denominator, q.dim))
            seen[k] = (q, ids[k])
        names = tuple(state.values)
        was = seen.get("")
        if was is not None and was[0] == names:
            ids[""] = was[1]
        else:
            ids[""] = number(("env", names))
            seen[""] = (names, ids[""])
        return ids

    def _number(self, key: tuple) -> int:
        intern = self._interned
        n = intern.get(key)
        if n is None:
            if len(intern) >= 1_000_000:   # pragma: no cover - a bound: forget every memo keyed by numbers
                intern.clear()
                self._numbered.clear()
                self._block_memos.clear()
                self._values_memo.clear()
            # never a number given before (not even after a clear), so no two values ever share one
            n = intern[key] = self._numbers = self._numbers + 1
        return n

    def _reads(self, *nodes) -> tuple[str, ...]:
        """The params (as "p:NAME") that expressions or pulses ``nodes`` name."""
        found: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Pulse):
                found |= _names_in(node)
            elif node is not None:
                found.update([n.name for n in names_in(node)])
        return tuple(sorted("p:" + n for n in found))

    def _param_ranges(self) -> dict[str, tuple[ParamInfo, Fraction, Fraction]]:
        """Per param with a range: its info and the range's bounds (S007 compares every week's values)."""
        ranges = self._ranges
        if ranges is None:
            ranges = self._ranges = {n: (i, i.low.value, i.high.value) for n, i in self.params.items()
                                     if i.low is not None and i.high is not None}
        return ranges

    def _cycle_rows(self) -> list[tuple[str, dict, tuple[str, ...], tuple, tuple]]:
        """Per cycle: its name, steps, the params they read, and its progression targets' keys (as a cycle and
        per step), built once: every week looks each cycle up in the memo by them."""
        rows = self._cycles_list
        if rows is None:
            rows = self._cycles_list = [(name, steps, self._reads_of_cycle(name, steps), ("cycle", name),
                                         tuple([("cycle", name, kind) for kind in CYCLE_STEPS]))
                                        for name, steps in self.cycles.items()]
        return rows

    def _electrode_reads(self) -> tuple[str, ...]:
        reads = self._static_reads.get(("e",))
        if reads is None:
            reads = self._static_reads[("e",)] = self._reads(
                *[x for e in self.electrodes.values() for x in (e.area, e.width, e.height)])
        return reads

    def _reads_of_cycle(self, name: str, steps: dict) -> tuple[str, ...]:
        reads = self._static_reads.get(("c", name))
        if reads is None:
            reads = self._static_reads[("c", name)] = self._reads(*[s.duration for s in steps.values()])
        return reads

    def _reads_of(self, node) -> tuple[str, ...]:
        """The params (as "p:NAME") expression or pulse ``node`` names (None: none), kept per node."""
        if node is None:
            return ()
        known = self._expr_reads.get(id(node))
        if known is None or known[0] is not node:
            known = self._expr_reads[id(node)] = (node, self._reads(node))
        return known[1]

    def _channels_by_number(self) -> list[tuple[str, "ChannelDecl"]]:
        if self._by_number is None:
            self._by_number = sorted(self.channels.items(), key=lambda kv: kv[1].node.number)
        return self._by_number

    def _electrode_values(self, ev: Evaluator) -> dict[str, ElectrodeInfo]:
        elec: dict[str, ElectrodeInfo] = {}
        for name, e in self.electrodes.items():
            if e.area is not None:
                a_q = ev.positive(e.area, AREA, f"the area of electrode `{name}`")
                if a_q is not None:
                    elec[name] = ElectrodeInfo(name, a_q.value * 10**4, e.span)
            elif e.width is not None and e.height is not None:   # the grammar gives an area or both sides
                w = ev.positive(e.width, LENGTH, f"the width of electrode `{name}`")
                h = ev.positive(e.height, LENGTH, f"the height of electrode `{name}`")
                if w is not None and h is not None:
                    elec[name] = ElectrodeInfo(name, w.value * h.value * 10**4, e.span)
        return elec

    def _cycle_timing(self, ev: Evaluator, state: State, name: str, steps: dict) -> Optional[Timing]:
        """Cycle ``name`` in whole µs this week (None when a step failed; its error is reported)."""
        vals: list[int] = []
        for kind in CYCLE_STEPS:
            step = steps.get(kind)
            what = f"the {kind.replace('_', ' ')} of cycle `{name}`"
            q, _, _ = self._value(ev, state, ("cycle", name, kind), step.duration if step else None,
                                  ev.time_us, what)
            if q is None and (step is not None or ("cycle", name, kind) in state.assigned):
                return None
            vals.append(q or 0)
        return Timing(*vals)

    def _channel_values(self, ev: Evaluator, state: State, name: str, decl: "ChannelDecl", elec: dict,
                        sink: list, keys: Optional[tuple]) -> Optional["ChannelValues"]:
        """Channel ``name``'s values this week (None when one failed or is missing). With ``keys`` (this week's
        param numbers and the evaluator's names), its frequency, amplitude and pulse are each memoised on what
        it reads (a progression of the intensity leaves the pulse and frequency, the same objects, alone)."""
        known = self._chan_static.get(name)
        if known is None or known[0] is not decl:
            f_decl = decl.frequency.value if decl.frequency else None
            a_decl = decl.amplitude.value if decl.amplitude else None
            known = self._chan_static[name] = (
                decl, ("channel", name, "frequency"), ("channel", name, "amplitude"), f_decl, a_decl,
                f"the frequency of channel `{name}`", f"the amplitude of channel `{name}`", self._reads_of(f_decl),
                self._reads_of(a_decl), self._reads_of(decl.pulse))
        _, f_target, a_target, f_decl, a_decl, f_what, a_what, f_reads, a_reads, p_reads = known
        if keys is None:
            f_q, f_span, _ = self._value(ev, state, f_target, f_decl, ev.positive, FREQUENCY, f_what)
            a_q, a_span, a_expr, a_ua = _microamps(self._value(ev, state, a_target, a_decl, ev.non_negative,
                                                               CURRENT, a_what))
            shape = build_shape(decl.pulse, ev) if decl.pulse is not None else None
        else:
            get, head = keys
            assigned, reads = state.assigned, self._expr_reads
            f_q, f_span, _ = self._memo(
                ("hf", name, head, tuple(map(get, f_reads)), _assigned_key(assigned.get(f_target), get, reads)),
                sink, self._value, ev, state, f_target, f_decl, ev.positive, FREQUENCY, f_what)
            a_assigned = assigned.get(a_target)
            # an amplitude written `PARAM` or `P% PARAM` (no progression assignment of its own) that evaluates
            # without a word: its µA at once, what the evaluator gives (a progression raises the param every
            # week, so the memo would miss and evaluate it anyway)
            fast = _plain_microamps(a_decl, ev) if a_assigned is None and a_decl is not None else None
            if fast is not None:
                a_q, a_span, a_expr, a_ua = True, a_decl.span, a_decl, fast
            else:
                a_q, a_span, a_expr, a_ua = self._memo(
                    ("ha", name, head, tuple(map(get, a_reads)), _assigned_key(a_assigned, get, reads)),
                    sink, _microamps_of, self._value, ev, state, a_target, a_decl, ev.non_negative, CURRENT,
                    a_what)
            shape = self._memo(("hs", name, head, tuple(map(get, p_reads))), sink, build_shape,
                               decl.pulse, ev) if decl.pulse is not None else None
        pair: tuple[ElectrodeInfo, ...] = ()
        if decl.pair is not None:
            first, second = elec.get(decl.pair.first.name), elec.get(decl.pair.second.name)
            if first is None or second is None:
                return None
            was = self._pairs.get(name)
            if was is not None and was[0] is first and was[1] is second:
                pair = was
            else:
                pair = self._pairs[name] = (first, second)
        if f_q is None or a_q is None or shape is None or decl.pair is None:
            return None
        if f_target not in state.assigned:
            f_span = _span_of(decl.frequency)
        if a_target not in state.assigned:
            a_span = _span_of(decl.amplitude)
        return ChannelValues(decl, f_q.value, a_ua, shape, pair, param_of(a_expr) if a_expr is not None else None,
                             f_span, a_span)

    def _session_layout(self, state: State, ev: Evaluator, timings: dict, chans: dict, table: ShapeTable,
                        sink: list, ids: dict[str, int]) -> "_SessionLayout":
        """The session's blocks measured and lowered for this week's values.

        Memoised per top-level block (``_BlockMemo``, see :meth:`_block`) on exactly what measuring it reads;
        the trains of a block never merge with another block's, so its layout is kept with where it started
        and moved to where the block starts this week, with this week's amplitudes (``lowering.place_block``).
        A run of blocks that read what they read the week before (the same keys; only the params, cycles
        and channels that changed are looked at, :meth:`_dirty`) is taken from that week as a whole
        (:meth:`_replay_run`): its uses with this week's amplitudes, its trains moved by one shift, its
        segments and diagnostics, in a few calls whatever its length.
        With the memo off (``set_cache_enabled(False)``) every block is measured and the session laid out
        anew (``lowering.lay_out``): the plain path the tests compare with.
        """
        uses: list[ChannelUse] = []
        sources: list = []
        blocks = self.session.blocks if self.session is not None else ()
        ctx = _LeafContext(ev, timings, chans, table, sink, uses, sources)
        if not _CACHE[0]:
            measured = [m for m in (self._measure(b, ctx, (i,)) for i, b in enumerate(blocks)) if m is not None]
            t = sum(m.length for m in measured)
            expanded = sum(m.emissions for m in measured)
            amplitudes = tuple([u.amplitude_ua for u in uses])
            lowered = lay_out(measured, amplitudes) \
                if expanded <= MAX_EXPANDED_BLOCKS and t <= MAX_SESSION_US else None
            return _SessionLayout(tuple(uses), t, expanded, lowered)
        env = self._week_env(state, timings, chans, ids)
        deps_of = self._deps_of(blocks)
        # this week's amplitude of each source (a channel's name, or id() of a `with amplitude`), and each
        # channel's shape index (every channel's shape is in the table before the session's lines)
        src_vals: dict = {}
        for n, cv in chans.items():
            a = cv.amplitude
            src_vals[n] = (a, cv.amp_span, (a.numerator, a.denominator))
        chan_idx = {n: table.add(cv.shape) for n, cv in chans.items()}
        amp_nd: list[tuple[int, int]] = []   # per use: its amplitude as (numerator, denominator)
        ctx.amp_known = src_vals
        # every channel's amplitude differs from every other's this week: then so do the sources of a block
        # whose amplitudes are all its channels' (``_sources_differ`` holds without looking)
        chans_differ = len({v[2] for v in src_vals.values()}) == len(src_vals)
        n_blocks = len(blocks)
        last = self._last_layout
        dirty: set = set()
        if last is not None and last.n == n_blocks and last.head == env.head and last.chan_idx == chan_idx:
            dirty = self._dirty(last.ids, env.ids)
        else:
            last = None
        before = len(sink)
        keys: list[tuple] = []
        entries: list[Optional[_BlockMemo]] = []   # per block (None: in a run taken from the week before)
        base_of: list[int] = []                    # per block: its first use
        doff: list[int] = []                       # per block: its first diagnostic (from ``before``)
        # pass 1: uses, diagnostics, sources and shapes; items: a run (a, b) of blocks replayed as a whole, or
        # one block (its index) measured or replayed on its own
        items: list = []
        run_a = -1
        block_key = self._block_key
        for i in range(n_blocks):
            deps = deps_of[i]
            if last is not None and not deps[1] and i not in dirty:
                key = last.keys[i]   # nothing it reads changed (and it has no `with amplitude`)
            else:
                key = block_key(i, env, deps, src_vals, ctx)
            keys.append(key)
            if last is not None and last.ok[i] and (key is last.keys[i] or key == last.keys[i]) and \
                    (run_a >= 0 or len(uses) == last.base[i]) and \
                    (not last.entries[i]._multi or (chans_differ and last.entries[i]._chan_only)
                     or _sources_differ(last.entries[i], src_vals)):
                if run_a < 0:
                    run_a = i
                continue
            if run_a >= 0:
                assert last is not None   # a run is of blocks taken from the week before
                self._run(last, run_a, i, ctx, src_vals, chan_idx, amp_nd, keys, entries, base_of, doff, items,
                          before)
                run_a = -1
            self._one(i, blocks[i], ctx, keys[i], src_vals, chan_idx, amp_nd, entries, base_of, doff, items, before)
        if run_a >= 0:
            assert last is not None
            self._run(last, run_a, n_blocks, ctx, src_vals, chan_idx, amp_nd, keys, entries, base_of, doff, items,
                      before)
        base_of.append(len(uses))
        doff.append(len(sink) - before)
        # lengths
        t = expanded = 0
        for item in items:
            if item.__class__ is tuple:
                a, b = item
                assert last is not None
                t += last.start[b] - last.start[a]
                expanded += last.emis[b] - last.emis[a]
            else:
                m = entries[item].measured
                if m is not None:
                    t += m.length
                    expanded += m.emissions
        amplitudes = tuple([u.amplitude_ua for u in uses])
        lowered = None
        record = None
        if expanded <= MAX_EXPANDED_BLOCKS and t <= MAX_SESSION_US:
            trains: list = []
            train_uses: list = []
            segments: list = []
            ok = [False] * n_blocks
            tstart = [0] * (n_blocks + 1)
            sstart = [0] * (n_blocks + 1)
            starts = [0] * (n_blocks + 1)
            emis = [0] * (n_blocks + 1)
            start = done = 0
            for item in items:
                if item.__class__ is tuple:
                    a, b = item
                    assert last is not None
                    ta, tb, sa, sb = last.tstart[a], last.tstart[b], last.sstart[a], last.sstart[b]
                    shift = start - last.start[a]
                    tdelta, sdelta, edelta = len(trains) - ta, len(segments) - sa, done - last.emis[a]
                    ok[a:b] = [True] * (b - a)
                    tstart[a:b] = _moved_by(last.tstart, a, b, tdelta)
                    sstart[a:b] = _moved_by(last.sstart, a, b, sdelta)
                    starts[a:b] = _moved_by(last.start, a, b, shift)
                    emis[a:b] = _moved_by(last.emis, a, b, edelta)
                    _lowering._place_trains(last.trains[ta:tb], last.train_uses[ta:tb], shift, amp_nd, trains)
                    train_uses.extend(last.train_uses[ta:tb])
                    if shift:
                        _lowering._move_segments(last.segments[sa:sb], shift, segments)
                    else:
                        segments.extend(last.segments[sa:sb])
                    start += last.start[b] - last.start[a]
                    done += last.emis[b] - last.emis[a]
                    continue
                i = item
                entry = entries[i]
                assert entry is not None
                tstart[i], sstart[i], starts[i], emis[i] = len(trains), len(segments), start, done
                m = entry.measured
                if m is None:
                    continue
                pattern = entry.pattern(amp_nd, base_of[i])
                ok[i] = pattern is entry._canon and keys[i][2] is True
                block = entry.lowered.get(pattern)
                if block is None:
                    block = entry.lowered[pattern] = lay_out_block(m, start, amplitudes)
                place_block(block, start, amp_nd, trains, train_uses, segments)
                start += m.length
                done += entry.emissions
            tstart[n_blocks], sstart[n_blocks], starts[n_blocks], emis[n_blocks] = \
                len(trains), len(segments), start, done
            lowered = Lowered(tuple(trains), tuple(train_uses), tuple(segments), amplitudes)
            rows: list = []
            for item in items:
                if item.__class__ is tuple:
                    assert last is not None
                    rows.extend(last.rows[last.base[item[0]]:last.base[item[1]]])
                else:
                    rows.extend(entries[item]._rows)
            if last is not None:
                entries = [e if e is not None else f for e, f in zip(entries, last.entries)]
            record = _WeekRecord(n_blocks, env.head, env.ids, dict(chan_idx), keys, ok, entries, base_of, doff,
                                 tuple(sink[before:]), tuple(rows), tuple(sources), tuple(ctx.shapes), tstart,
                                 lowered.trains, lowered.train_uses, sstart, lowered.segments, starts, emis)
        self._last_layout = record
        return _SessionLayout(tuple(uses), t, expanded, lowered)

    def _one(self, i: int, block, ctx: "_LeafContext", key: tuple, src_vals: dict, chan_idx: dict, amp_nd: list,
             entries: list, base_of: list, doff: list, items: list, before: int) -> None:
        """Block ``i`` on its own (:meth:`_block`), with its uses' amplitudes added to ``amp_nd``."""
        uses = ctx.uses
        base = len(uses)
        base_of.append(base)
        doff.append(len(ctx.sink) - before)
        entry = self._block(i, block, ctx, key, src_vals, chan_idx, amp_nd)
        entries.append(entry)
        items.append(i)
        if len(amp_nd) != len(uses):   # measured: its uses' amplitudes as they are
            for u in uses[len(amp_nd):]:
                a = u.amplitude_ua
                amp_nd.append((a.numerator, a.denominator) if type(a) is Fraction
                              else (Fraction(a).numerator, Fraction(a).denominator))

    def _run(self, last: "_WeekRecord", a: int, b: int, ctx: "_LeafContext", src_vals: dict, chan_idx: dict,
             amp_nd: list, keys: list, entries: list, base_of: list, doff: list, items: list, before: int) -> None:
        """Blocks ``a`` .. ``b - 1``, which read what they read the week before: taken from that week as a
        whole (:meth:`_replay_run`), or one by one when a `with pulse` shape's index differs this week."""
        uses, sink = ctx.uses, ctx.sink
        base, dbase = len(uses), len(sink) - before
        if self._replay_run(last, a, b, ctx, src_vals, amp_nd):
            for j in range(a, b):
                base_of.append(last.base[j] - last.base[a] + base)
                doff.append(last.doff[j] - last.doff[a] + dbase)
                entries.append(None)
            items.append((a, b))
            return
        blocks = self.session.blocks if self.session is not None else ()
        for j in range(a, b):
            self._one(j, blocks[j], ctx, keys[j], src_vals, chan_idx, amp_nd, entries, base_of, doff, items, before)

    def _replay_run(self, last: "_WeekRecord", a: int, b: int, ctx: "_LeafContext", src_vals: dict, amp_nd: list
                    ) -> bool:
        """The uses (with this week's amplitudes and shapes), diagnostics, sources and shapes of blocks ``a`` ..
        ``b - 1`` as the week before gave them; False (only shapes added, which the block-by-block path adds
        again in the same order) when a `with pulse` shape's index differs this week."""
        add = ctx.table.add
        entries = last.entries
        for j in range(a, b):
            own = entries[j]._own
            if own:
                for shape, idx in own:
                    if add(shape) != idx:
                        return False
        ua, ub = last.base[a], last.base[b]
        _lowering._replay_uses(last.rows[ua:ub], ctx.chans, src_vals, ctx.uses, amp_nd)
        ctx.sink.extend(last.diagnostics[last.doff[a]:last.doff[b]])
        ctx.sources.extend(last.sources[ua:ub])
        ctx.shapes.extend(last.shapes[ua:ub])
        return True

    def _dirty(self, before: dict, now: dict) -> set:
        """The top-level blocks that read a param, cycle or channel whose number differs between two weeks'
        ``_WeekEnv.ids`` (or that one of them lacks)."""
        readers = self._readers
        out: set = set()
        get = before.get
        for k, v in now.items():
            if get(k, _MISSING) != v:
                out.update(readers.get(k, ()))
        if before.keys() != now.keys():
            for k in before.keys() - now.keys():
                out.update(readers.get(k, ()))
        return out

    def _deps_of(self, blocks) -> list:
        """Per top-level block, what it reads (:func:`_block_deps`), computed once per analysis; and per thing
        read, the blocks that read it (``_readers``)."""
        deps = self._block_deps_list
        if deps is None or len(deps) != len(blocks):
            deps = self._block_deps_list = [_block_deps(b) for b in blocks]
            readers: dict[str, list[int]] = {}
            for i, (reads, _amp, _amp_reads) in enumerate(deps):
                for r in reads:
                    readers.setdefault(r, []).append(i)
            self._readers = readers
        return deps

    def _week_env(self, state: State, timings: dict, chans: dict, ids: dict[str, int]) -> "_WeekEnv":
        """This week's inputs of the block memo, each value replaced by a small number that stands for it
        (equal values, equal numbers), so a block's key is a short tuple of ints."""
        number = self._number
        # one table: "p:" a param's value, "c:" a cycle's timing, "h:" a channel's values but its amplitude;
        # keys of ints and strings (cheap to hash); spans and declarations by identity (the protocol's own
        # nodes hold them for as long as this analysis lives)
        ids = dict(ids)   # this week's param numbers (``_param_ids``), with the cycles' and channels'
        # the objects a cycle's or channel's number was last given for (the memos hand the same objects out
        # while nothing they read changes): the same objects again, the same number without a key
        seen = self._numbered
        for n, tm in timings.items():
            k = "c:" + n
            was = seen.get(k)
            if was is not None and was[0] is tm:
                ids[k] = was[1]
                continue
            ids[k] = number(("c", n, tm.ramp_up_us, tm.hold_us, tm.ramp_down_us, tm.rest_us))
            seen[k] = (tm, ids[k])
        for n, cv in chans.items():
            # (the pulse shape aside: a replay takes the channel's and checks its index, ``_BlockMemo.replay``)
            k = "h:" + n
            objs = (cv.decl, cv.frequency, cv.freq_span) + cv.electrodes
            was = seen.get(k)
            if was is not None and len(was[0]) == len(objs) and all([x is y for x, y in zip(was[0], objs)]):
                ids[k] = was[1]
                continue
            ids[k] = number(("h", n, id(cv.decl), cv.frequency.numerator, cv.frequency.denominator,
                             tuple([(e.name, e.area_cm2.numerator, e.area_cm2.denominator, id(e.span))
                                    for e in cv.electrodes]), id(cv.freq_span)))
            seen[k] = (objs, ids[k])
        head = (ids[""], any(d.is_error for d in self.diags))
        return _WeekEnv(ids, head, self.make_ev(state.values, []))

    def _block_key(self, i: int, env: "_WeekEnv", deps: tuple, src_vals: dict, ctx: "_LeafContext") -> tuple:
        """What top-level block ``i`` reads this week, as the key of its memo (:meth:`_block`): where its
        channel uses start is added when it is looked up (placements name uses by index)."""
        reads, amp_overrides, amp_reads = deps
        get = env.ids.get
        # `with amplitude` values decide only their uses' amplitudes: when each evaluates without a word this
        # week, a replay takes their values (``_WeekEnv.amplitude``); else the values they read are the key
        amp_ok = True
        for ov in amp_overrides:
            key_ov = id(ov)
            sv = src_vals.get(key_ov, _MISSING)
            if sv is _MISSING:
                # its value is a function of the params it names (as numbers this week): kept across weeks
                mk = (key_ov, tuple(map(get, self._reads_of(ov.value))))
                sv = self._amp_values.get(mk, _MISSING)
                if sv is _MISSING:
                    a = env.amplitude(ov)
                    sv = self._amp_values[mk] = None if a is None else (a, ov.span, (a.numerator, a.denominator))
                src_vals[key_ov] = sv
            if sv is None:
                amp_ok = False
        return (env.head, tuple(map(get, reads)), amp_ok or tuple(map(get, amp_reads)))

    def _block(self, i: int, block, ctx: "_LeafContext", key: tuple, src_vals: dict, chan_idx: dict,
               amp_nd: list) -> "_BlockMemo":
        """Top-level block ``i`` measured for this week (:meth:`_measure`), or replayed from a week where
        everything it reads had the same value (``key``, :meth:`_block_key`): the params it names, the timings
        of the cycles and the values of the channels (all but their amplitudes) its lines name, where its
        channel uses start, the names the evaluator knows and whether the static checks failed. A replay
        re-adds its shapes to this week's table (a different index: measured anew), repeats its diagnostics
        and gives the uses whose amplitude is a channel's this week's amplitude."""
        key = (len(ctx.uses),) + key
        memo = self._block_memos.get(i)
        if memo is None:
            memo = self._block_memos[i] = {}
        entry = memo.get(key)
        if entry is not None and entry.replay(ctx, src_vals, chan_idx, amp_nd):
            return entry
        sink, uses = ctx.sink, ctx.uses
        before, base = len(sink), len(uses)
        m = self._measure(block, ctx, (i,))
        entry = memo[key] = _BlockMemo(m, tuple(uses[base:]), tuple(ctx.sources[base:]), tuple(sink[before:]),
                                       tuple(ctx.shapes[base:]))
        return entry


class _WeekRecord:
    """The week laid out last, block by block (``Analysis._session_layout``), for the next week's runs of
    unchanged blocks: what the blocks' keys were computed from (the evaluator's names, the numbers of what
    they read, the channels' shape indices), per block its key, whether its layout may be taken as it is
    (measured, its `with amplitude` values evaluated, its pattern the one of its sources: ``ok``) and its
    memo entry; per block (and one past the last) its first use, diagnostic, train, segment, start and the
    blocks and pauses unrolled before it; and the week's uses as rows (``_BlockMemo``), diagnostics, sources,
    shapes, trains, their uses and segments."""

    __slots__ = ("n", "head", "ids", "chan_idx", "keys", "ok", "entries", "base", "doff", "diagnostics", "rows",
                 "sources", "shapes", "tstart", "trains", "train_uses", "sstart", "segments", "start", "emis")

    def __init__(self, n: int, head: tuple, ids: dict, chan_idx: dict, keys: list, ok: list, entries: list,
                 base: list, doff: list, diagnostics: tuple, rows: tuple, sources: tuple, shapes: tuple,
                 tstart: list, trains: tuple, train_uses: tuple, sstart: list, segments: tuple, start: list,
                 emis: list) -> None:
        self.n = n
        self.head = head
        self.ids = ids
        self.chan_idx = chan_idx
        self.keys = keys
        self.ok = ok
        self.entries = entries
        self.base = base
        self.doff = doff
        self.diagnostics = diagnostics
        self.rows = rows
        self.sources = sources
        self.shapes = shapes
        self.tstart = tstart
        self.trains = trains
        self.train_uses = train_uses
        self.sstart = sstart
        self.segments = segments
        self.start = start
        self.emis = emis


def _moved_by(values: list, a: int, b: int, delta: int) -> list:
    """``values[a:b]``, each plus ``delta`` (a run's per-block starts, moved to where the run starts now)."""
    if not delta:
        return values[a:b]
    return [v + delta for v in values[a:b]]


def _sources_differ(entry: "_BlockMemo", src_vals: dict) -> bool:
    """Whether the sources of a block's amplitudes (channels, `with amplitude` values) all differ this week:
    then the uses that share an amplitude are those of one source, the pattern its layout was made for."""
    srcs = entry._srcs
    if len(srcs) <= 1:
        return True
    return len({src_vals[s][2] for s in srcs}) == len(srcs)


# --- session layout ---------------------------------------------------------------------------------
def _greater(x, y) -> bool:
    """``x > y`` of two Fractions (or ints) in integers: denominators are positive, so cross-multiplying keeps
    the order (exact, without Fraction's comparison machinery)."""
    return x.numerator * y.denominator > y.numerator * x.denominator


def _round_even(x) -> int:
    """``round(x)`` (to the nearest integer, half to even) of a Fraction or int, in integer arithmetic."""
    if x.__class__ is not Fraction:
        return round(x)
    d = x.denominator
    q, r = divmod(x.numerator, d)
    r += r
    if r > d or (r == d and q & 1):
        return q + 1
    return q


def _microamps(value: tuple) -> tuple:
    """``_value``'s (Quantity|None, span, expression) of an amplitude, with the amplitude in µA (exact)."""
    q, span, expr = value
    if q is None:
        return q, span, expr, None
    v = q.value
    return q, span, expr, Fraction(v.numerator * 10**6, v.denominator) if v.__class__ is Fraction else v * 10**6


def _microamps_of(value_fn, *args) -> tuple:
    return _microamps(value_fn(*args))


def _assigned_key(a: Optional[Assigned], get, reads: dict) -> Optional[tuple]:
    """What a progression's assignment gives a target, for a memo key: its fixed value, or its expression
    (by identity) and the numbers of the params it names this week; and its span (messages point there)."""
    if a is None:
        return None
    v = a.value
    e = a.expr
    if e is None:
        return (None, id(a.span), None if v is None else (v.value.numerator, v.value.denominator, v.dim))
    known = reads.get(id(e))
    if known is None or known[0] is not e:
        known = reads[id(e)] = (e, tuple(sorted("p:" + n.name for n in names_in(e))))
    return (id(e), id(a.span), None if v is None else (v.value.numerator, v.value.denominator, v.dim),
            tuple(map(get, known[1])))


def _names_in(node) -> set[str]:
    """Every name referred to anywhere under ``node`` (params among them)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            found.add(n.name)
        elif isinstance(n, ast.Node):
            stack.extend(getattr(n, f) for f in n._fields)
        elif isinstance(n, tuple):
            stack.extend(n)
    return found


def _leaf_blocks(blocks) -> list:
    """Every block of lines, sets unrolled statically (each written block once), in source order."""
    out = []
    stack = list(reversed(blocks))
    while stack:
        b = stack.pop()
        if isinstance(b, ast.Pause):
            continue
        if b.blocks:
            stack.extend(reversed(b.blocks))
        else:
            out.append(b)
    return out



#: most leaf blocks and pauses a session may expand to once its sets are unrolled (docs/language.md)
MAX_EXPANDED_BLOCKS = 100_000


class _LeafContext:
    """What measuring the blocks of one week reads and adds to."""

    __slots__ = ("ev", "timings", "chans", "table", "sink", "uses", "sources", "shapes", "amp_known")

    def __init__(self, ev: Evaluator, timings: dict, chans: dict, table: ShapeTable, sink: list, uses: list,
                 sources: list) -> None:
        self.ev = ev
        self.timings = timings
        self.chans = chans
        self.table = table
        self.sink = sink
        self.uses = uses
        self.sources = sources   # per use: the channel whose amplitude it has, or the line's `with amplitude`
        #: per use: the channel whose shape it has (None: the line's `with pulse`) and the shape's index
        self.shapes: list[tuple[Optional[str], int]] = []
        #: this week's `with amplitude` values by id() (``src_vals`` of the block memo; None: not known)
        self.amp_known: Optional[dict] = None


class _SessionLayout:
    """A week's session, measured and lowered: its channel uses, length, blocks once unrolled, and the
    layout (None when the session is too long or expands to too many blocks)."""

    __slots__ = ("uses", "duration_us", "expanded", "lowered")

    def __init__(self, uses: tuple[ChannelUse, ...], duration_us: int, expanded: int,
                 lowered: Optional[Lowered]) -> None:
        self.uses = uses
        self.duration_us = duration_us
        self.expanded = expanded
        self.lowered = lowered


class _WeekEnv:
    """One week's inputs of the block memo as small numbers (``Analysis._week_env``)."""

    __slots__ = ("ids", "head", "ev", "amplitudes")

    def __init__(self, ids: dict[str, int], head: tuple, ev: Evaluator) -> None:
        self.ids = ids      # "p:NAME" param value, "c:NAME" cycle timing, "h:NAME" channel values -> number
        self.head = head    # (the names the evaluator knows, whether the static checks failed)
        self.ev = ev        # this week's values, reporting into a scratch list
        self.amplitudes: dict[int, tuple[ast.Override, Optional[Fraction]]] = {}

    def amplitude(self, ov: ast.Override) -> Optional[Fraction]:
        """The µA of a `with amplitude` override this week; None when evaluating it reports anything (then
        only measuring the block again reports it, in its place)."""
        known = self.amplitudes.get(id(ov))
        if known is not None and known[0] is ov:
            return known[1]
        if isinstance(ov.value, ast.Pulse):   # pragma: no cover - the grammar gives `amplitude` a value
            return None
        fast = _plain_microamps(ov.value, self.ev)
        if fast is not None:
            self.amplitudes[id(ov)] = (ov, fast)
            return fast
        sink = self.ev.sink
        del sink[:]
        q = self.ev.non_negative(ov.value, CURRENT, "the overriding amplitude")
        value = q.value * 10**6 if q is not None and not sink else None
        self.amplitudes[id(ov)] = (ov, value)
        return value


def _plain_microamps(e, ev: Evaluator) -> Optional[Fraction]:
    """The µA of an amplitude written ``NAME`` or ``P% NAME`` (a current param of this week) when the evaluator
    would give it without a word (not negative, inside E413's bounds): what ``ev.non_negative(e, CURRENT,
    ...)`` times 10^6 gives, without its Quantities; None for anything else (then the evaluator decides)."""
    cls = e.__class__
    if cls is ast.PercentOf:
        name = e.name.name
    elif cls is ast.Name:
        name = e.name
    else:
        return None
    base = ev.values.get(name)
    if base is None or base.dim != CURRENT or name in ev.broken or ev.forbid_params:
        return None
    value = base.value
    if value.__class__ is not Fraction:   # pragma: no cover - the evaluator's values are Fractions
        return None
    n, d = value.numerator, value.denominator
    if cls is ast.PercentOf:
        # value × share in integers (the ratio n/d unreduced: the bounds and the sign are those of the product)
        share = percent_share(e)
        n, d = n * share.numerator, d * share.denominator
        m = abs(n)
        if m and (m > MAX_SI * d or m * MAX_SI < d):   # E413 (Evaluator._in_range)
            return None
    if n < 0:   # E402
        return None
    return Fraction(n * 10**6, d)   # reduced once


def _line_overrides(line, ev: Evaluator, amp_known: Optional[dict]) -> Optional[tuple]:
    """A session line's `with` values this week: (frequency, amplitude, pulse, the `with amplitude` override),
    each (value, span[, param]) or None when not overridden; None when one failed (its error is reported, and
    every override of the line is still evaluated, so each reports)."""
    ov_f = ov_a = ov_p = None
    amp_ov: Optional[ast.Override] = None
    bad = False
    for ov in line.overrides:
        if ov.key == "frequency":
            q = ev.positive(ov.value, FREQUENCY, "the overriding frequency")
            ov_f = (q.value, ov.span) if q is not None else None
        elif ov.key == "amplitude":
            known = amp_known.get(id(ov)) if amp_known is not None else None
            if known is not None:   # evaluated this week without a word (``_block_key``)
                ov_a = (known[0], ov.span, param_of(ov.value))
            else:
                q = ev.non_negative(ov.value, CURRENT, "the overriding amplitude")
                ov_a = (q.value * 10**6, ov.span, param_of(ov.value)) if q is not None else None
            amp_ov = ov
        else:
            shp = build_shape(ov.value, ev)
            ov_p = (shp, ov.span) if shp is not None else None
        bad = bad or (ov.key == "frequency" and ov_f is None) or (ov.key == "amplitude" and ov_a is None) \
            or (ov.key == "pulse" and ov_p is None)
    return None if bad else (ov_f, ov_a, ov_p, amp_ov)


def _line_problem(sink: list, code: str, line, after: int, length: Optional[int],
                  timing: Optional[Timing]) -> None:
    """Report what keeps a line of a block from running (E410, E409) or from emitting (W401, W402)."""
    cyc = line.cycle.name
    if code == "E410":
        assert length is not None
        sink.append(Diagnostic("E410", f"`after {duration_text(after)}` is at or beyond the end of "
                               f"its `for {duration_text(length)}` block",
                               line.after.span if line.after is not None else line.span,
                               hint="the line would never run"))
    elif code == "E409":
        sink.append(Diagnostic("E409", f"cycle `{cyc}` has zero length, so a `for` block would "
                               "never end", line.cycle.span, hint="give it a hold or a rest"))
    elif code == "W401":
        assert length is not None and timing is not None
        sink.append(Diagnostic(
            "W401", f"not one whole cycle of `{cyc}` ({duration_text(timing.cycle_us)}) fits "
            f"in the {duration_text(length - after)} left in this `for` block; the line emits "
            "nothing", line.cycle.span, severity="warning"))
    else:
        sink.append(Diagnostic("W402", f"cycle `{cyc}` has zero length; this line emits nothing",
                               line.cycle.span, severity="warning"))


def _block_deps(block) -> tuple[tuple[str, ...], tuple[ast.Override, ...], tuple[str, ...]]:
    """What a top-level block reads, as keys of ``_WeekEnv.ids``: the params its expressions name outside
    `with amplitude` values, the cycles and channels its lines name; its `with amplitude` overrides and the
    params inside those only."""
    names: set[str] = set()
    cycles: dict[str, None] = {}
    channels: dict[str, None] = {}
    amp_overrides: list[ast.Override] = []
    amp_names: set[str] = set()
    number = ast.Number

    stack = [block]
    while stack:
        b = stack.pop()
        if isinstance(b, ast.Pause):
            e = b.duration
            if e.__class__ is not number:   # a literal names nothing
                names.update([n.name for n in names_in(e)])
            continue
        e = b.count if isinstance(b, ast.Repeat) else b.duration
        if e is not None and e.__class__ is not number:
            names.update([n.name for n in names_in(e)])
        stack.extend(b.blocks)
        for line in b.lines:
            cycles[line.cycle.name] = None
            for ch in line.channels:
                channels[ch.name] = None
            e = line.after
            if e is not None and e.__class__ is not number:
                names.update([n.name for n in names_in(e)])
            for ov in line.overrides:
                e = ov.value
                if ov.key == "amplitude":
                    amp_overrides.append(ov)
                    if e.__class__ is not number:
                        amp_names.update([n.name for n in names_in(e)])
                elif isinstance(e, ast.Pulse):
                    names |= _names_in(e)
                elif e.__class__ is not number:
                    names.update([n.name for n in names_in(e)])
    reads = tuple(["p:" + n for n in sorted(names)] + ["c:" + n for n in cycles] + ["h:" + n for n in channels])
    return reads, tuple(amp_overrides), tuple(["p:" + n for n in sorted(amp_names - names)])


class _BlockMemo:
    """A top-level block measured for one set of inputs (``Analysis._block``): what measuring it gave
    (None when a value failed), the channel uses it added and where their amplitudes come from, what it
    reported, the shapes it added to the table (with their indices), and its layouts (each with where it started) per
    pattern of its uses' amplitudes (``lowering.BlockLayout``)."""

    __slots__ = ("measured", "emissions", "uses", "sources", "diagnostics", "shapes", "lowered", "_rows",
                 "_chan_idx", "_own", "_srcs", "_canon", "_multi", "_chan_only")

    def __init__(self, measured: Optional[Measured], uses: tuple[ChannelUse, ...],
                 sources: tuple, diagnostics: tuple[Diagnostic, ...],
                 shapes: tuple[tuple[Optional[str], int], ...]) -> None:
        self.measured = measured
        self.emissions = measured.emissions if measured is not None else 0
        self.uses = uses
        self.sources = sources            # per use: the channel whose amplitude it has, or its `with amplitude`
        self.diagnostics = diagnostics
        self.shapes = shapes              # per use: the channel whose shape it has (None: its own), its index
        self.lowered: dict[tuple[int, ...], BlockLayout] = {}
        # what a replay reads, flattened: per use (the use, its fields, the key of its amplitude's source in
        # ``src_vals``, the channel whose shape it has or None); the channels' shape indices it was measured
        # with; its own shapes (`with pulse`) with their indices, in use order; its distinct sources and, per
        # use, the first use with its source (the amplitude pattern while the sources' amplitudes differ)
        rows = []
        chan_idx: dict[str, int] = {}
        own = []
        first: dict = {}
        canon = []
        for k, (use, c, (sc, idx)) in enumerate(zip(uses, sources, shapes)):
            src = c if c.__class__ is str else id(c)
            rows.append((use, use.__dict__, src, sc))
            if sc is not None:
                chan_idx[sc] = idx
            else:
                own.append((use.shape, idx))
            canon.append(first.setdefault(src, k))
        self._rows = tuple(rows)
        self._chan_idx = tuple(chan_idx.items())
        self._own = tuple(own)
        self._srcs = tuple(first)
        self._canon = tuple(canon)
        self._multi = len(first) > 1   # more than one source: ``_sources_differ`` must look at their amplitudes
        self._chan_only = all([s.__class__ is str for s in first])   # every amplitude is a channel's

    def replay(self, ctx: "_LeafContext", src_vals: dict, chan_idx: dict, amp_nd: list) -> bool:
        """Add this block's shapes, diagnostics and uses (amplitudes and shapes from ``ctx.chans``, amplitudes of
        `with amplitude` from ``src_vals``) to ``ctx``; False (nothing added but shapes, which measuring adds
        again in the same order) when a shape's index differs this week (the placements and trains hold
        indices); ``amp_nd`` gets each use's amplitude as (numerator, denominator)."""
        for name, idx in self._chan_idx:
            if chan_idx.get(name) != idx:
                return False
        if self._own:
            add = ctx.table.add
            for shape, idx in self._own:
                if add(shape) != idx:
                    return False
        _lowering._replay_uses(self._rows, ctx.chans, src_vals, ctx.uses, amp_nd)
        ctx.sink.extend(self.diagnostics)
        ctx.sources.extend(self.sources)
        ctx.shapes.extend(self.shapes)
        return True

    def pattern(self, amp_nd: list, base: int) -> tuple[int, ...]:
        """``lowering.amplitude_pattern`` of this block's uses (from ``base``) this week: while its sources'
        amplitudes all differ, the uses of one source are the ones that share an amplitude."""
        srcs = self._srcs
        n = len(self._canon)
        if len(srcs) <= 1 or len(set(amp_nd[base:base + n])) == len(srcs):
            # as many distinct amplitudes as sources: equal amplitudes come from one source (one source
            # gives all its uses one amplitude, measured or taken from the week)
            return self._canon
        first: dict = {}
        return tuple([first.setdefault(a, k) for k, a in enumerate(amp_nd[base:base + n])])


_MISSING = object()

#: the per-protocol block memo is on (tests compare with it off: set_cache_enabled)
_CACHE = [True]


def set_cache_enabled(enabled: bool) -> bool:
    """Turn the block memo of :meth:`Analysis._session_layout` on or off; returns the previous setting."""
    before = _CACHE[0]
    _CACHE[0] = bool(enabled)
    return before


# --- aggregation ------------------------------------------------------------------------------------
def _key(d: Diagnostic):
    if d.span is None:
        return (d.code, d.severity, d.message)
    return (d.code, d.severity, d.span.file, d.span.start_pos)


def _sort_key(d: Diagnostic):
    return (d.span.start_pos if d.span is not None else 1 << 60,)


#: the longest plan the checker accepts (S021): 10 years of weeks
MAX_PLAN_WEEKS = 520


def _safety():
    from .safety import check_safety  # on first use: the safety rules import this module's neighbours

    return check_safety


def with_week(d: Diagnostic, plan: Optional[PlanInfo], week: int) -> Diagnostic:
    if "week" in d.message:
        return d
    return replace(d, message=f"in {week_label(plan, week)}: {d.message}")


class WeekResult:
    """One week of the plan, resolved and checked."""

    __slots__ = ("resolved", "diagnostics", "state")

    def __init__(self, resolved: Optional[ResolvedSession], diagnostics: list, state: State) -> None:
        self.resolved = resolved
        self.diagnostics = diagnostics   # unprefixed, this week only (progression + resolution + safety)
        self.state = state


def run_week(an: Analysis, state: State, week: int, session: int, profile) -> WeekResult:
    """Resolve one week from its progression state; the safety rules run only on a protocol without any
    other error."""
    sink: list[Diagnostic] = []
    resolved = an.resolve(state, week, session, sink)
    if resolved is not None and not any(d.is_error for d in an.diags):
        sink.extend(_safety()(resolved, profile))
    return WeekResult(resolved, sink, state)


def analyse(an: Analysis, profile) -> tuple[dict[int, WeekResult], list[Diagnostic]]:
    """Resolve every distinct week; returns (week -> WeekResult, all diagnostics deduplicated, sorted).

    The cyclic garbage collector is paused for the whole plan, not week by week: every week's resolved
    session and findings live on, so a collection after each week would walk them again and again, and
    the older generations (the protocol's tree, the earlier weeks) are walked more often the larger the
    protocol (a third of the checking time of a 20,000-line protocol). Nothing here makes reference
    cycles; reference counting frees the rest as before (:func:`paused_gc`)."""
    return paused_gc(_analyse, an, profile)


def paused_gc(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` with the cyclic garbage collector paused (when it runs; a caller's own pause is left
    alone), then the objects it left in the young generations moved to the oldest one at once.

    What the checker makes (the protocol's tree, every week's uses, trains and findings) lives as long as
    the protocol, holds no reference cycle, and would otherwise all be walked by the first young
    collection after the pause (about 15,000 objects, 2-3 ms, for the 500-line benchmark protocol) only
    to be promoted there; ``gc.freeze()`` + ``gc.unfreeze()`` promote them in one step. Done only when
    nothing is frozen already (an application's own ``gc.freeze()`` is left as it is); garbage in a
    cycle is still collected, by the next full collection."""
    if not gc.isenabled():
        return fn(*args)
    gc.disable()
    try:
        return fn(*args)
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _analyse(an: Analysis, profile) -> tuple[dict[int, WeekResult], list[Diagnostic]]:
    seen: dict = {}
    out: list[Diagnostic] = []

    def add(d: Diagnostic, week: int) -> None:
        k = _key(d)
        if k in seen:
            return
        seen[k] = d
        out.append(with_week(d, an.plan, week) if week > 1 else d)

    for d in an.diags:
        add(d, 1)
    weeks = an.plan.weeks if an.plan is not None else 1
    results: dict[int, WeekResult] = {}
    plan = an.plan
    if plan is not None and weeks > MAX_PLAN_WEEKS:
        # refused before any week is resolved: checking is linear in the plan's weeks
        add(Diagnostic("S021", f"the plan runs {weeks:,} weeks ({plan.total_sessions:,} sessions); the checker "
                               f"accepts plans of at most {MAX_PLAN_WEEKS} weeks (10 years) and would otherwise "
                               f"resolve and check every one of them", plan.span,
                       hint="a plan longer than 10 years is a typo; write the weeks of one course of treatment"), 1)
        out.sort(key=_sort_key)
        return results, out
    prev = None
    prev_snapshot = None
    for week, new_state, sink in an.week_states(weeks):
        first = an.plan.sessions_of(week)[0] if an.plan else 1
        snapshot = new_state.snapshot() if weeks > 1 else None
        same = prev is not None and not sink and snapshot == prev_snapshot
        prev_snapshot = snapshot
        if same:
            assert prev is not None
            results[week] = WeekResult(replace(prev.resolved, session=first, week=week) if prev.resolved else None,
                                       prev.diagnostics, new_state)
            prev = results[week]
            continue
        res = run_week(an, new_state, week, first, profile)
        res.diagnostics[:0] = sink
        results[week] = res
        for d in res.diagnostics:
            add(d, week)
        prev = res
    out.sort(key=_sort_key)
    return results, out
