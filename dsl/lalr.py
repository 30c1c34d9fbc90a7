"""A small LALR(1) driver over tables exported from the Lark parser (dsl/tables.py): the fast path of
``parse``, so that checking a file neither imports lark nor builds parse trees.

It lexes exactly as Lark's contextual lexer does (per parser state: the state's terminals in Lark's
order, the first alternative that matches wins; a NAME equal to a keyword becomes that keyword; line and
column counting), shifts and reduces with the same table, shapes every reduction as Lark's tree builder
does (``_rule`` children inlined, filtered tokens dropped, ``[x]`` placeholders as None, ``?rule`` with one
child collapsed, positions propagated from the first and last child *including* dropped tokens) and hands
each node straight to the AST builder (``builder.<rule>(meta, children)``), bottom-up and left to right,
as Lark's Transformer would after the parse.

It only ever answers for well-formed input: anything it does not handle on its own (an unexpected
character or token, a rule without a builder method, an expression nested deeper than ``max_depth``, an
exception from the builder) raises :class:`Fallback`, and the caller parses the text with Lark, which
reports errors (and recovers from a ``}`` followed by a statement) exactly as before. The equivalence of
both paths is tested on every example and corpus file (tests/test_fast_parser.py).
"""
from __future__ import annotations

import _sre  # type: ignore[import-not-found]  # the regular expression engine (re builds on it)
import marshal
import re
import sys
from pathlib import Path
from typing import Any

#: the layout of an exported-tables file (dsl/tables.py writes it)
FORMAT = "stimscript-lalr-export-1"


def read_fast_tables(path: Path, grammar: str) -> dict | None:
    """The exported tables in ``path`` when they were made from exactly ``grammar`` on this Python
    (major.minor); None when absent, stale or unreadable (a cache miss, never an error)."""
    try:
        with open(path, "rb") as fh:
            data = marshal.loads(fh.read())  # one read: marshal.load(fh) reads item by item, ~30x slower
        if data["format"] != FORMAT or data["python"] != "%d.%d" % sys.version_info[:2] \
                or data["grammar"] != grammar:
            return None
        return data["tables"]
    except Exception:
        return None


def compile_pattern(pattern: str, compiled: tuple | None) -> re.Pattern:
    """``re.compile(pattern)``, from the compiled form dsl/tables.py stored with the tables when there is
    one (the same object ``re`` would build, without parsing the pattern again; the engine validates the
    code it is given)."""
    if compiled is not None:
        try:
            return _sre.compile(pattern, *compiled)
        except Exception:   # not what this engine expects: compile it the usual way
            pass
    return re.compile(pattern)


class Fallback(Exception):
    """This text is for Lark to parse (an error, an unusual shape): nothing was decided here."""


class Token(str):
    """A lexed terminal: the text, its terminal name (``type``) and where it is (the attributes of a Lark
    token that the AST builder reads)."""

    __slots__ = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")
    type: str
    value: str
    start_pos: int
    line: int
    column: int
    end_line: int
    end_column: int
    end_pos: int

    def __new__(cls, type_: str, value: str, start_pos: int, line: int, column: int):
        self = str.__new__(cls, value)
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column
        return self


class Meta:
    """Where a node is (Lark's ``Tree.meta``): set from its first and last child; the container fields
    also cover tokens that were dropped from the node (a parenthesis, a keyword)."""

    __slots__ = ("empty", "line", "column", "start_pos", "end_line", "end_column", "end_pos",
                 "container_line", "container_column", "container_start_pos",
                 "container_end_line", "container_end_column", "container_end_pos")
    empty: bool
    line: int
    column: int
    start_pos: int
    end_line: int
    end_column: int
    end_pos: int
    container_line: int
    container_column: int
    container_start_pos: int
    container_end_line: int
    container_end_column: int
    container_end_pos: int

    def __init__(self):
        self.empty = True


class _Inline:
    """The result of a ``_rule``: its children (with their records and heights) are spliced into the node
    that uses it."""

    __slots__ = ("children", "records", "heights")

    def __init__(self, children, records, heights):
        self.children = children
        self.records = records
        self.heights = heights


class TableParser:
    """Parses text with exported tables (see dsl/tables.py ``export_tables`` for the layout)."""

    def __init__(self, tables: dict):
        self.actions: dict = tables["actions"]
        self.rules: list = tables["rules"]
        self.start_state: int = tables["start_state"]
        self.end_state: int = tables["end_state"]
        self.ignore = frozenset(tables["ignore"])
        self.newline_types = frozenset(tables["newline_types"])
        self.lexer_of_state: dict = tables["lexer_of_state"]
        self._lexer_specs: list = tables["lexers"]
        sre = tables.get("sre")
        self._compiled: list | None = sre["lexers"] if sre and sre.get("magic") == _sre.MAGIC else None
        self._lexers: dict[int, tuple] = {}
        self._by_state: dict[int, tuple] = {}

    def _lexer(self, state: int):
        """(match functions of the alternatives, unless-callbacks) for parser state ``state``, compiled on
        first use (one basic lexer per distinct terminal set, as Lark builds them)."""
        index = self.lexer_of_state[state]
        lexer = self._lexers.get(index)
        if lexer is None:
            patterns, unless = self._lexer_specs[index]
            compiled = self._compiled[index] if self._compiled is not None else [None] * len(patterns)
            lexer = (tuple(compile_pattern(p, c).match for p, c in zip(patterns, compiled)), unless)
            self._lexers[index] = lexer
        self._by_state[state] = lexer
        return lexer

    def parse(self, text: str, builder, max_depth: int):
        """The builder's result for ``text``; raises :class:`Fallback` for anything Lark must decide."""
        actions, rules = self.actions, self.rules
        by_state, new_lexer = self._by_state, self._lexer
        ignore, newline_types = self.ignore, self.newline_types
        methods: dict[str, Any] = {}
        new_str = str.__new__
        contain = self._contain
        states = [self.start_state]
        values: list = []
        records: list = []     # per stack entry: the token, a Meta (a node), or None (a placeholder)
        heights: list = []     # per stack entry: the height of the node (tokens and None: 0)
        end_state = self.end_state
        pos, line, line_start = 0, 1, 0
        n = len(text)
        tok = None
        while True:
            # ---- the next token (or the end) ----
            if pos < n:
                state = states[-1]
                matchers, unless = by_state.get(state) or new_lexer(state)
                for match in matchers:
                    m = match(text, pos)
                    if m:
                        break
                else:
                    raise Fallback("unexpected character")
                value = m.group(0)
                type_ = m.lastgroup
                ignored = type_ in ignore
                if ignored and type_ not in unless:
                    if type_ in newline_types and "\n" in value:
                        line += value.count("\n")
                        line_start = pos + value.rindex("\n") + 1
                    pos += len(value)
                    continue
                tok = new_str(Token, value)   # Token(...) without its __new__ frame: one per token
                tok.value = value
                tok.start_pos = pos
                tok.line = line
                tok.column = pos - line_start + 1
                if type_ in newline_types and "\n" in value:
                    line += value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
                pos += len(value)
                tok.end_line = line
                tok.end_column = pos - line_start + 1
                tok.end_pos = pos
                if unless:
                    keywords = unless.get(type_)
                    if keywords is not None:
                        type_ = keywords.get(value, type_)
                tok.type = type_
                if ignored:
                    continue
                is_end = False
            else:
                type_ = "$END"
                is_end = True
            # ---- reduce as long as the table says so, then shift ----
            while True:
                act = actions[states[-1]].get(type_)
                if act is None:
                    raise Fallback("unexpected token")
                kind, arg = act
                if kind == 0:   # shift
                    if is_end:
                        raise Fallback("shift at the end")
                    states.append(arg)
                    values.append(tok)
                    records.append(tok)
                    heights.append(0)
                    break
                origin, size, callback, expand1, include, append_none, inline = rules[arg]
                if size:
                    kids = values[-size:]
                    recs = records[-size:]
                    hs = heights[-size:]
                    del states[-size:], values[-size:], records[-size:], heights[-size:]
                else:
                    kids, recs, hs = [], [], []
                # Lark's child filter: filtered tokens dropped, _rules spliced, None for an absent [x]
                if include is None:
                    children, crecs, chs = kids, recs, hs
                else:
                    children, crecs, chs = [], [], []
                    for i, expand, nones in include:
                        if nones:
                            children += [None] * nones
                            crecs += [None] * nones
                            chs += [0] * nones
                        if expand:
                            child = kids[i]
                            if children:
                                children += child.children
                                crecs += child.records
                                chs += child.heights
                            else:   # take the spliced lists over (left recursion: linear, as in Lark)
                                children, crecs, chs = child.children, child.records, child.heights
                        else:
                            children.append(kids[i])
                            crecs.append(recs[i])
                            chs.append(hs[i])
                    if append_none:
                        children += [None] * append_none
                        crecs += [None] * append_none
                        chs += [0] * append_none
                if expand1 and len(children) == 1:   # ?rule with one child: the child itself
                    value, record, height = children[0], crecs[0], chs[0]
                    if isinstance(record, Meta):
                        contain(record, recs, True)
                elif inline:
                    record = Meta()
                    contain(record, recs, False)
                    value = _Inline(children, crecs, chs)
                    height = 0
                else:
                    record = Meta()
                    contain(record, recs, False)
                    height = 1 + max(chs, default=0)
                    if height > max_depth:
                        raise Fallback("nested too deep")
                    method = methods.get(callback)
                    if method is None:
                        method = methods[callback] = getattr(builder, callback, None)
                        if method is None or callback.startswith("_"):
                            raise Fallback(f"no builder for {callback}")
                    try:
                        value = method(record, children)
                    except Exception as exc:   # the Lark path reports it as before
                        raise Fallback(str(exc)) from None
                states.append(actions[states[-1]][origin][1])
                values.append(value)
                records.append(record)
                heights.append(height)
                if is_end and states[-1] == end_state:
                    return values[-1]

    @staticmethod
    def _contain(meta: Meta, recs: list, expanded: bool) -> None:
        """Lark's position propagation for one reduction (``recs``: the records of every child, dropped
        tokens included): a node starts where its first positioned child's container starts and ends where
        its last one's ends."""
        first: Any = None
        last: Any = None
        for r in recs:
            if r is not None and (r.__class__ is Token or not r.empty):
                first = r
                break
        if first is None:
            return
        for r in reversed(recs):
            if r is not None and (r.__class__ is Token or not r.empty):
                last = r
                break
        if first.__class__ is Token:
            fl, fc, fp = first.line, first.column, first.start_pos
        else:
            fl, fc, fp = first.container_line, first.container_column, first.container_start_pos
        if last.__class__ is Token:
            el, ec, ep = last.end_line, last.end_column, last.end_pos
        else:
            el, ec, ep = last.container_end_line, last.container_end_column, last.container_end_pos
        if meta.empty:
            if expanded:   # a node built earlier would get its position only now: not like Lark
                raise Fallback("position set late")
            meta.line, meta.column, meta.start_pos = fl, fc, fp
            meta.end_line, meta.end_column, meta.end_pos = el, ec, ep
            meta.empty = False
        meta.container_line, meta.container_column, meta.container_start_pos = fl, fc, fp
        meta.container_end_line, meta.container_end_column, meta.container_end_pos = el, ec, ep
