"""A small LALR(1) driver over tables exported from the Lark parser (dsl/tables.py): the fast path of
``parse``, so that checking a file neither imports lark nor builds parse trees.

It lexes exactly as Lark's contextual lexer does (per parser state: the state's terminals in Lark's
order, the first alternative that matches wins; a NAME equal to a keyword becomes that keyword; line and
column counting), shifts and reduces with the same table, shapes every reduction as Lark's tree builder
does (``_rule`` children inlined, filtered tokens dropped, ``[x]`` placeholders as None, ``?rule`` with one
child collapsed, positions propagated from the first and last child *including* dropped tokens) and hands
each node straight to the AST builder (``builder.<rule>(meta, children)``), bottom-up and left to right,
as Lark's Transformer would after the parse.

What it does per token and per reduction is kept small because a ``check`` waits for it:

* a token becomes a :class:`Token` object only when some rule keeps it as a child (a name, a number, a
  string); keywords and punctuation, which every rule drops, are a position and nothing else;
* positions on the stack are two offsets per entry (where its container starts and ends, -1 when it has
  none); lines and columns are computed only for the nodes the builder gets, from the line starts the
  lexer recorded (the same newlines Lark counts: those inside tokens of its ``newline_types``);
* the action table holds plain integers (a shift's state, or ``~rule``), and a ``?rule`` with one child
  and nothing to filter (``?expr: sum``, ...) only replaces the state on top of the stack.

It only ever answers for well-formed input: anything it does not handle on its own (an unexpected
character or token, a rule without a builder method, an expression nested deeper than ``max_depth``, an
exception from the builder) raises :class:`Fallback`, and the caller parses the text with Lark, which
reports errors (and recovers from a ``}`` followed by a statement) exactly as before. The equivalence of
both paths is tested on every example and corpus file (tests/test_fast_parser.py).

This driver is the reference of a compiled twin, ext/_lalr.pyx (dsl/parser.py picks it when it is built):
the same tables, the same builder calls and fallbacks (tests/test_parse_twin.py). A change here is a change
there. (It is imported only where the twin is missing or switched off: see dsl/lalr.py.)
"""
from __future__ import annotations

import _sre  # type: ignore[import-not-found]  # the regular expression engine (re builds on it)
import marshal
import re
from array import array
from operator import itemgetter

from .lalr import ALL, COLLAPSE, EXTEND, INLINE, LEAF, PICK, TREE, UNIT, Fallback, Token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["TableParser", "compile_pattern", "compiled_forms", "unpack_actions"]


def compile_pattern(pattern: str, compiled: tuple | None) -> re.Pattern:
    """``re.compile(pattern)``, from the compiled form dsl/tables.py stored with the tables when there is
    one (the same object ``re`` would build, without parsing the pattern again; the engine validates the
    code it is given)."""
    if compiled is not None:
        try:
            flags, code, *rest = compiled
            if code.__class__ is bytes:   # the code words, 4 bytes each (dsl/tables.py _code_bytes)
                words = array("I")
                if words.itemsize != 4:
                    raise ValueError("another word size")
                words.frombytes(code)
                code = words.tolist()
            return _sre.compile(pattern, flags, code, *rest)
        except Exception:   # not what this engine expects: compile it the usual way
            pass
    return re.compile(pattern)


def compiled_forms(tables: dict) -> list | None:
    """Per lexer, per pattern, the compiled form dsl/tables.py ``compiled_lexers`` stored (marshalled apart
    inside the tables, ``sre``: only this driver reads it), or None when it is missing, unreadable or made by
    another regular expression engine (``_sre.MAGIC``)."""
    try:
        sre = marshal.loads(tables["sre"])
        return sre["lexers"] if sre["magic"] == _sre.MAGIC else None
    except Exception:
        return None


def unpack_actions(packed: bytes | list[int], symbols: list[str], states: int) -> list[dict[str, int]]:
    """The action rows (per state {symbol name: action}) from dsl/tables.py ``pack_actions``."""
    if isinstance(packed, bytes):
        words = array("i")
        words.frombytes(packed)
        packed = words.tolist()
    rows: list[dict[str, int]] = []
    k = 0
    for _ in range(states):
        n = packed[k]
        rows.append(dict(zip([symbols[i] for i in packed[k + 1:k + 1 + 2 * n:2]], packed[k + 2:k + 2 + 2 * n:2])))
        k += 1 + 2 * n
    if k != len(packed):
        raise ValueError("the packed actions do not match the states")
    return rows


def _first_match(matchers: tuple) -> Callable:
    """One match function over a lexer split into several expressions (Lark splits at 100 groups): the
    first expression that matches wins, as in Lark's scanner."""
    def match(text: str, pos: int):
        for m in matchers:
            found = m(text, pos)
            if found:
                return found
        return None

    return match


#: how the lexer treats a terminal of a state (per basic lexer: {terminal: code})
_DROPPED = 0   # a token every rule drops (a keyword, punctuation): only its position is kept
_KEPT = 1      # a token some rule keeps as a child: a Token
_KEYWORD = 2   # a NAME that may be a keyword (``unless``): kept or dropped as the keyword decides
_SPECIAL = 3   # ignored, or with newlines: the general path

_UNSET: Any = object()
_GETTER: Any = itemgetter   # (typed loosely: mypy 2.4 crashes on itemgetter(*tuple))


class TableParser:
    """Parses text with exported tables (see dsl/tables.py ``export_tables`` for the layout)."""

    def __init__(self, tables: dict):
        self.actions: list[dict[str, int]] = unpack_actions(tables["actions"], tables["symbols"],
                                                             len(tables["lexer_of_state"]))
        self.rules: list = tables["rules"]
        self.start_state: int = tables["start_state"]
        self.end_state: int = tables["end_state"]
        self.ignore = frozenset(tables["ignore"])
        self.newline_types = frozenset(tables["newline_types"])
        self.kept = frozenset(tables["kept"])
        self.lexer_of_state: list[int] = tables["lexer_of_state"]
        self._lexer_specs: list = tables["lexers"]
        self._compiled: list | None = compiled_forms(tables)
        self._lexers: dict[int, tuple] = {}
        self._by_state: list[tuple | None] = [None] * len(self.actions)
        self._pickers: list[Any] = [_UNSET] * len(self.rules)
        #: (state below, state, lookahead) -> the state after the chain of UNIT reductions that starts there
        self._units: dict[tuple[int, int, str], int] = {}

    def _lexer(self, state: int) -> tuple:
        """(match function, {terminal: _DROPPED | _KEPT | _SPECIAL}, unless-callbacks) for parser state
        ``state``, compiled on first use (one basic lexer per distinct terminal set, as Lark builds them)."""
        index = self.lexer_of_state[state]
        lexer = self._lexers.get(index)
        if lexer is None:
            patterns, unless = self._lexer_specs[index]
            compiled = self._compiled[index] if self._compiled is not None else [None] * len(patterns)
            regexps = [compile_pattern(p, c) for p, c in zip(patterns, compiled)]
            codes = {}
            for regexp in regexps:
                for name in regexp.groupindex:
                    if name in self.ignore or name in self.newline_types:
                        codes[name] = _SPECIAL
                    elif name in unless:
                        codes[name] = _KEYWORD
                    else:
                        codes[name] = _KEPT if name in self.kept else _DROPPED
            matchers = tuple(r.match for r in regexps)
            lexer = (matchers[0] if len(matchers) == 1 else _first_match(matchers), codes, unless)
            self._lexers[index] = lexer
        self._by_state[state] = lexer
        return lexer

    def _picker(self, index: int) -> Any:
        """How a PICK rule's children are read from the parser's stack before it is popped: None (no
        child), an index (one child) or an itemgetter (a tuple of them); a placeholder (index ``size`` in
        the table) is the bottom entry's value, which is None."""
        size, picks = self.rules[index][1], self.rules[index][4]
        where = tuple(1 if i == size else 5 * (i - size) + 1 for i in picks)
        picker: Any = None
        if len(where) == 1:
            picker = where[0]
        elif where:
            picker = _GETTER(*where)
        self._pickers[index] = picker
        return picker

    def parse(self, text: str, builder, max_depth: int):
        """The builder's result for ``text``; raises :class:`Fallback` for anything Lark must decide.

        ``builder.position(line, column, end_line, end_column, start_pos, end_pos)`` makes the ``meta``
        a node's method gets (None when the node covers no token)."""
        # imported here: with the compiled twin (ext/_lalr.pyx) this class never parses, and the module's
        # import would load bisect's C extension for nothing on every `stimscript check`
        from bisect import bisect_right

        actions, rules, pickers, units = self.actions, self.rules, self._pickers, self._units
        by_state, new_lexer, new_picker = self._by_state, self._lexer, self._picker
        ignore, newline_types, kept = self.ignore, self.newline_types, self.kept
        position = builder.position
        methods: list[Any] = [None] * len(rules)
        new_str = str.__new__
        end_state = self.end_state
        state = self.start_state
        # the parser's stack, five items per entry: state, value (the token, the node, an inlined list of
        # children, or None), where its container starts and ends (-1: it has no position), and the height
        # of the node (tokens and None: 0; an inlined list: its children's greatest); the bottom entry is
        # never popped
        stack: list = [state, None, -1, -1, 0]
        line_starts = [0]      # the offset of every line's first character (as Lark counts lines)
        add_line = line_starts.append
        pos, line, line_start = 0, 1, 0
        n = len(text)
        tok: Any = None
        tok_start = 0
        while True:
            # ---- the next token (or the end) ----
            if pos < n:
                lexer = by_state[state] or new_lexer(state)
                m = lexer[0](text, pos)
                if m is None:
                    raise Fallback("unexpected character")
                type_ = m.lastgroup
                code = lexer[1][type_]
                tok_start, end = m.span(type_)   # blanks before the token may be folded into the match
                if code == _DROPPED:
                    tok = None
                else:
                    value = m.group(type_)
                    if code == _KEYWORD:
                        type_ = lexer[2][type_].get(value, type_)
                        code = _KEPT if type_ in kept else _DROPPED
                    elif code == _SPECIAL:
                        if type_ in newline_types and "\n" in value:
                            i = value.find("\n")
                            while i >= 0:
                                line += 1
                                line_start = tok_start + i + 1
                                add_line(line_start)
                                i = value.find("\n", i + 1)
                        if type_ in ignore:
                            pos = end
                            continue
                        keywords = lexer[2].get(type_)
                        if keywords is not None:
                            type_ = keywords.get(value, type_)
                        code = _KEPT if type_ in kept else _DROPPED
                    if code == _KEPT:
                        tok = new_str(Token, value)   # Token(...) without its __new__ frame
                        tok.type = type_
                        tok.value = value
                        tok.start_pos = tok_start
                        tok.end_pos = end
                        tok.end_line = line
                        tok.end_column = end - line_start + 1
                        if line_start <= tok_start:
                            tok.line = line
                            tok.column = tok_start - line_start + 1
                        else:   # a token over several lines (its newlines are counted already): its start
                            first = bisect_right(line_starts, tok_start)
                            tok.line = first
                            tok.column = tok_start - line_starts[first - 1] + 1
                    else:
                        tok = None
                pos = end
                is_end = False
            else:
                type_ = "$END"
                is_end = True
            # ---- reduce as long as the table says so, then shift ----
            while True:
                try:
                    act = actions[state][type_]
                except KeyError:
                    raise Fallback("unexpected token") from None
                if act >= 0:   # shift
                    if is_end:
                        raise Fallback("shift at the end")
                    state = act
                    stack += (act, tok, tok_start, pos, 0)
                    break
                index = ~act
                origin, size, use, shape, arg, name = rules[index]
                if use == UNIT:   # the child itself, with its own position: only the state changes
                    # (``?expr: sum``, ``?sum: product``, ...: a chain, taken in one step once known)
                    below = stack[-10]
                    key = (below, state, type_)
                    top = units.get(key)
                    if top is None:
                        while True:
                            top = actions[below][origin]
                            if is_end and top == end_state:
                                break
                            act = actions[top].get(type_)
                            if act is None or act >= 0 or rules[~act][2] != UNIT:
                                break
                            origin = rules[~act][0]
                        units[key] = top
                    state = stack[-5] = top
                    if is_end and state == end_state:
                        return stack[-4]
                    continue
                base = len(stack) - 5 * size
                # the children, as Lark's child filter leaves them, read from the stack
                if shape == PICK:
                    pick = pickers[index]
                    if pick is _UNSET:
                        pick = new_picker(index)
                    if pick.__class__ is int:
                        children = [stack[pick]]
                    elif pick is None:
                        children = []
                    else:
                        children = list(pick(stack))
                elif shape == ALL:
                    children = stack[base + 1::5]
                elif shape == EXTEND:   # (left recursion: linear, as in Lark)
                    children = stack[base + 1]
                    children.append(stack[base + 5 * arg + 1])
                else:
                    kids = stack[base + 1::5]
                    include, append_none = arg
                    children = []
                    for i, expand, nones in include:
                        if nones:
                            children += [None] * nones
                        if expand:
                            if children:
                                children += kids[i]
                            else:   # take the spliced list over (left recursion: linear, as in Lark)
                                children = kids[i]
                        else:
                            children.append(kids[i])
                    if append_none:
                        children += [None] * append_none
                if use == LEAF:
                    s = stack[base + 2]
                    e = stack[-2]
                    height = 1
                    del stack[base:]
                elif size:
                    s = stack[base + 2]
                    e = stack[-2]
                    if s < 0 or e < 0:   # the first and the last child with a position
                        s = next((x for x in stack[base + 2::5] if x >= 0), -1)
                        e = next((x for x in reversed(stack[base + 3::5]) if x >= 0), -1)
                    height = stack[-1] if size == 1 else max(stack[base + 4::5])
                    if use == COLLAPSE:
                        i = arg[0]
                        own = stack[base + 5 * i + 2] if i < size else -1
                    del stack[base:]
                else:
                    s = e = -1
                    height = 0
                if use <= TREE:   # a node
                    if use == TREE:
                        height += 1
                    if height > max_depth:
                        raise Fallback("nested too deep")
                    method = methods[index]
                    if method is None:
                        method = methods[index] = getattr(builder, name, None)
                        if method is None or name.startswith("_"):
                            raise Fallback(f"no builder for {name}")
                    if s >= 0:
                        first = bisect_right(line_starts, s)
                        last = bisect_right(line_starts, e)
                        meta = position(first, s - line_starts[first - 1] + 1,
                                        last, e - line_starts[last - 1] + 1, s, e)
                    else:
                        meta = None
                    try:
                        value = method(meta, children)
                    except Exception as exc:   # the Lark path reports it as before
                        raise Fallback(str(exc)) from None
                elif use == INLINE:
                    value = children
                else:   # COLLAPSE: the one child stays itself; a node's container grows over the tokens
                    value = children[0]
                    if value.__class__ is Token:
                        s, e = value.start_pos, value.end_pos
                    elif own < 0 and s >= 0:   # a node without position would get one only now: not like
                        raise Fallback("position set late")   # Lark (nor a placeholder: left to Lark)
                state = actions[stack[-5]][origin]
                stack += (state, value, s, e, height)
                if is_end and state == end_state:
                    return value
