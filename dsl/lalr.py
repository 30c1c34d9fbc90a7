"""The parts of the fast path of ``parse`` that both of its drivers share: the layout of the exported tables
(dsl/tables.py writes them; :func:`read_fast_tables` reads them), the codes of their rules, and the
:class:`Fallback` and :class:`Token` the drivers raise and make.

The drivers are the pure-Python reference, ``TableParser`` in dsl/lalr_python.py (which describes how it lexes,
parses and shapes exactly as Lark does), and its compiled twin ext/_lalr.pyx, which dsl/parser.py picks when it
is built. The reference lives in a module of its own so that a ``check`` run by the twin does not load it (nor
the regular expression and array helpers it needs: about 0.4 % of a small file's ``stimscript check``);
``stimscript.dsl.lalr.TableParser`` (and its helpers) still name it, imported on first access.
"""
from __future__ import annotations

import marshal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

#: the layout of an exported-tables file (dsl/tables.py writes it); another layout is a cache miss
FORMAT = "stimscript-lalr-export-6"
#: the length of its first line (= dsl/tables.py HEAD_SIZE)
HEAD_SIZE = 64

#: what a reduction does with its result (the ``use`` of a rule in the exported tables)
UNIT = 0       # ``?rule: other``: the child itself, nothing filtered: only the state changes
LEAF = 1       # a node of tokens only (``quantity: NUMBER UNIT``): as TREE, its height 1, every symbol placed
TREE = 2       # a node: ``builder.<name>(meta, children)``
INLINE = 3     # a ``_rule``: its children are spliced into the node that uses it
COLLAPSE = 4   # a ``?rule`` whose filter always leaves one child (``"(" expr ")"``): that child

#: how a reduction's children are chosen from the symbols it pops (the ``shape`` of a rule)
ALL = 0        # every symbol is a child
PICK = 1       # the children are the symbols at fixed indexes (index ``size``: a None placeholder)
SPLICE = 2     # Lark's child filter with ``_rule`` children spliced in: (include, Nones after)
EXTEND = 3     # the first symbol's spliced list, taken over, and one more child (its index)


def read_fast_tables(path: Path | str, grammar: str | bytes, driver: str | None = None) -> dict | None:
    """The exported tables in ``path`` when they were made from exactly ``grammar`` (its text, or its UTF-8
    bytes as read from grammar.lark) on this Python (major.minor) in this layout; None when absent, stale or
    unreadable (a cache miss, never an error). The grammar is compared byte for byte, so a grammar edit is
    always a miss (the layout: dsl/tables.py ``write_fast_tables``).

    ``driver``: only what one driver reads. ``"compiled"``: ``{"twin": run}``, the file's packed run and the
    grammar behind it, read in one piece and not copied (the run is the front of those bytes; ext/_lalr.pyx
    reads its own length from it); the reference's part (marshalled, three quarters of the file) is neither read
    nor unmarshalled. ``"reference"``: the tables of dsl/lalr_python.py, without the run (skipped, not read).
    None: every table (dsl/tables.py ``export_tables``), ``twin`` included."""
    try:
        if grammar.__class__ is not bytes:
            grammar = grammar.encode("utf-8")   # type: ignore[union-attr]
        with open(path, "rb", buffering=0) as fh:   # unbuffered: a few reads, no buffer object
            head = fh.read(HEAD_SIZE).split()
            if len(head) != 5 or head[0] != _FORMAT_BYTES or head[1] != _PYTHON_BYTES:
                return None
            twin, text, rest = int(head[2]), int(head[3]), int(head[4])
            if text != len(grammar):
                return None
            if driver == "reference":
                fh.seek(HEAD_SIZE + twin)
                twin = 0
            size = twin + text if driver == "compiled" else twin + text + rest
            body = fh.read(size)
        if len(body) != size or not body.startswith(grammar, twin):
            return None
        if driver == "compiled":
            return {"twin": body}
        tables = marshal.loads(memoryview(body)[twin + text:])
        if tables.__class__ is not dict:
            return None
        if driver is None:
            tables["twin"] = body[:twin]
        return tables
    except Exception:
        return None


_FORMAT_BYTES = FORMAT.encode("ascii")
_PYTHON_BYTES = b"%d.%d" % sys.version_info[:2]


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



#: what dsl/lalr_python.py defines, importable from here as before (the module is loaded on first access)
_REFERENCE = ("TableParser", "compile_pattern", "compiled_forms", "unpack_actions")


def __getattr__(name: str) -> Any:
    if name in _REFERENCE:
        from . import lalr_python

        return getattr(lalr_python, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
