"""AST nodes are values (dsl/ast.py writes them as plain classes, not dataclasses, for start-up): frozen,
equal and hashed by their fields without their spans, a repr without spans, ``replace`` and ``fields``."""
from __future__ import annotations

from pathlib import Path

import pytest

from stimscript.dsl import ast, parse
from stimscript.spans import Source, Span

ROOT = Path(__file__).resolve().parents[1]
SRC = Source("x.stim", "channel quad 1 {}\n")
A = Span(SRC, 1, 1, 1, 8, 0, 7)
B = Span(SRC, 1, 9, 1, 13, 8, 12)


def test_nodes_refuse_assignment_and_deletion():
    n = ast.Number(5, "mA", span=A)
    with pytest.raises(AttributeError):
        n.value = 6  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del n.unit
    assert n.value == 5


def test_equality_and_hash_leave_spans_out():
    one = ast.Channel("quad", 1, (), span=A, name_span=A, number_span=B)
    two = ast.Channel("quad", 1, (), span=B, name_span=None, number_span=None)
    assert one == two and hash(one) == hash(two)
    assert one != ast.Channel("quad", 2, ())
    assert ast.Name("quad") != ast.Number(1)   # another node type is never equal
    assert {ast.Name("a", span=A): 1}[ast.Name("a")] == 1


def test_repr_shows_the_fields_only():
    assert repr(ast.Number(5, "mA", span=A)) == "Number(value=5, unit='mA')"
    assert repr(ast.Pulse("biphasic", width=ast.Name("w"))).startswith("Biphasic(kind='biphasic', width=Name(")


def test_replace_keeps_spans_and_fields_lists_them():
    c = ast.Channel("quad", 1, (), span=A, name_span=B)
    again = ast.replace(c, number=2)
    assert (again.name, again.number, again.span, again.name_span, again.number_span) == ("quad", 2, A, B, None)
    assert ast.fields(c) == ("name", "number", "body", "span", "name_span", "number_span")
    assert ast.fields(ast.Number(1)) == ("value", "unit", "span")


def test_every_node_type_round_trips_through_replace():
    protocol = parse((ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8"))
    seen = set()
    stack: list = [protocol]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Node):
            seen.add(type(node))
            copy = ast.replace(node)
            assert copy == node and type(copy) is type(node)
            assert all(getattr(copy, f) is getattr(node, f) for f in ast.fields(node))
            stack.extend(getattr(node, f) for f in node._fields)
        elif isinstance(node, tuple):
            stack.extend(node)
    assert len(seen) > 15
