"""Text -> AST. The LALR parser is built once from grammar.lark; every failure becomes a positioned
:class:`~stimscript.errors.ProtocolSyntaxError` (never a lark or Python exception).

Two paths give the same AST: well-formed text is parsed by dsl/lalr_python.py (or its compiled twin) from the
exported tables (no lark import, no parse tree: start-up and checking stay fast); whatever that path does not
decide on its own (any error, an unusual shape) is parsed again by Lark, which reports errors and recovers as
before.
"""
from __future__ import annotations

import gc
import os
import re
from functools import lru_cache

from ..errors import Diagnostic, ProtocolSyntaxError
from .. import twins
from ..spans import Source, Span, at, point
from ..units import UNITS
from . import ast
from .lalr import Fallback, read_fast_tables
from .transformer import MAX_BLOCK_DEPTH, AstBuilder, AstError

# The fast path's driver: the Cython twin (ext/_lalr.pyx) when built, else the pure-Python reference
# (dsl/lalr_python.py, imported only then: a check run by the twin never loads it); stimscript.twins reads the
# switches that force the reference or require the twin.
FastParser: type
USING_EXTENSION = False
if twins.wanted():
    try:
        from ..ext._lalr import TableParser as _CompiledParser

        FastParser = _CompiledParser
        USING_EXTENSION = True
    except ImportError as err:
        twins.missing(err)
if not USING_EXTENSION:
    from .lalr_python import TableParser as _ReferenceParser

    FastParser = _ReferenceParser
#: the part of the exported tables FastParser reads (dsl/lalr.py ``read_fast_tables``)
_DRIVER = "compiled" if USING_EXTENSION else "reference"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from lark import Lark, Tree
    from lark.exceptions import UnexpectedInput

    from .lalr_python import TableParser

    GRAMMAR: Path

#: the grammar and the exported tables next to it, as plain paths (pathlib is imported only for ``GRAMMAR``,
#: the same file as a Path, on first access: start-up of `check`)
_GRAMMAR_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grammar.lark")
_TABLES_FILE = os.path.join(os.path.dirname(_GRAMMAR_FILE), "grammar.tables")


def _read_grammar() -> str:
    with open(_GRAMMAR_FILE, encoding="utf-8") as fh:
        return fh.read()


def _read_grammar_bytes() -> bytes:
    """grammar.lark as it is on disk: what the exported tables are compared with (unbuffered and not decoded:
    a fifth of the cost of :func:`_read_grammar`)."""
    with open(_GRAMMAR_FILE, "rb", buffering=0) as fh:
        return fh.readall()


def __getattr__(name: str) -> Any:
    if name == "GRAMMAR":   # the grammar file as a Path (dsl/tables.py, setup.py, tests)
        from pathlib import Path

        path = globals()["GRAMMAR"] = Path(_GRAMMAR_FILE)
        return path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: deepest expression nesting accepted (operators, unary minus); keeps every later pass recursion-safe
MAX_DEPTH = 100

_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "UNIT": "a unit",
    "_SEP": "a newline or `;`",
    "ASSIGN_OP": "`=`, `+=` or `-=`",
    "$END": "the end of the file",
}


@lru_cache(maxsize=1)
def get_parser() -> Lark:
    """The LALR parser, loaded once per process from the cached tables (built when stale: dsl/tables.py)."""
    from .tables import load_parser

    return load_parser(_read_grammar())


@lru_cache(maxsize=1)
def get_fast_parser() -> TableParser | None:
    """The fast path's parser (:data:`FastParser`), from the exported tables shipped next to grammar.lark (or,
    after a grammar edit, from the user cache, exported there once from the Lark parser); None when they
    cannot be made. The compiled twin reads only its own part of the file (dsl/lalr.py ``read_fast_tables``);
    tables that do not load (damaged: the twin checks its packed run) are a miss like stale ones."""
    grammar = _read_grammar_bytes()
    fast = _fast_parser(read_fast_tables(_TABLES_FILE, grammar, _DRIVER))
    if fast is None:
        from . import tables as lark_tables

        text = grammar.decode("utf-8")
        try:
            cached = lark_tables.fast_cache_path(text)
        except Exception:  # no home folder, platformdirs failing: export every time rather than fail
            cached = None
        if cached is not None:
            fast = _fast_parser(read_fast_tables(cached, grammar, _DRIVER))
        if fast is None:
            fast = _fast_parser(lark_tables.build_fast_tables(text, get_parser()))
    return fast


def _fast_parser(tables: dict | None) -> TableParser | None:
    """:data:`FastParser` over ``tables``; None when there are none or they do not load."""
    if tables is None:
        return None
    try:
        return FastParser(tables)
    except (ValueError, TypeError, KeyError, IndexError, EOFError):   # damaged or foreign tables: a miss
        return None


def _describe_terminal(parser: Lark, name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        term = parser.get_terminal(name)
    except KeyError:
        return name
    if term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def _expected(parser: Lark, names) -> str:
    words = sorted({_describe_terminal(parser, n) for n in names}, key=lambda w: (not w.startswith("`"), w))
    if len(words) > 10:
        words = words[:10] + ["…"]
    return ", ".join(words)


def _describe_token(token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "_SEP":
        return "end of line" if "\n" in token or "#" in token else "`;`"
    if token.type == "STRING":
        return f"string {token}"
    if token.type == "NUMBER":
        return f"number `{token}`"
    if token.type == "NAME":
        return f"name `{token}`"
    return f"`{token}`"


def _unknown_unit(unit: str, span: Span) -> Diagnostic:
    """E103 with the closest unit (stimscript/suggest.py), or the list of units when none is close."""
    from ..suggest import did_you_mean   # only for errors: a check of a good file never imports it

    hint = did_you_mean(unit, UNITS) or "units: us ms s min h, Hz kHz, uA mA, mV V, nC uC, mm cm cm2, %"
    return Diagnostic("E103", f"unknown unit `{unit}`", span, hint=hint)


def _syntax_error(source: Source, exc: UnexpectedInput) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    parser = get_parser()
    text = source.text
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)  # always set by the lexer
        char = text[pos] if pos < len(text) else ""
        span = point(source, pos)
        if char == '"':
            return Diagnostic("E102", "unterminated string", span,
                              hint='close the string with `"` on the same line')
        before = text[:pos].rstrip(" \t")
        word = re.match(r"[^\W\d]\w*|%", text[pos:])
        if word and before and (before[-1].isdigit()):
            unit = word.group(0)
            span = Span(source, span.line, span.column, span.line, span.column + len(unit), pos, pos + len(unit))
            if "UNIT" not in exc.allowed:
                return Diagnostic("E104", f"unexpected `{unit}` after a number; expected {_expected(parser, exc.allowed)}",
                                  span)
            return _unknown_unit(unit, span)
        if char.isprintable() and char not in "":
            shown = f"`{char}`"
        else:
            shown = f"character U+{ord(char):04X}" if char else "end of file"
        expected = _expected(parser, exc.allowed) if exc.allowed else ""
        return Diagnostic("E100", f"unexpected {shown}" + (f"; expected {expected}" if expected else ""), span)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        # `accepts` (simulated by lark's interactive parser) is exact; `expected` is the merged LALR state's
        # lookahead set and can list terminals that would fail one step later
        expected = _expected(parser, exc.accepts or exc.expected)
        if token.type == "$END":
            pos = len(text.rstrip()) if text.strip() else 0
            return Diagnostic("E105", f"unexpected end of file; expected {expected}", point(source, max(0, pos - 1) if pos else 0))
        length = len(str(token).split("\n")[0]) or 1
        span = at(source, token.line, token.column, length)
        before = text[: token.start_pos].rstrip(" \t")
        if token.type == "NAME" and before[-1:].isdigit() and "UNIT" in exc.expected:
            return _unknown_unit(str(token), span)
        hint = None
        if before.endswith(".."):
            return Diagnostic("E104", f"unexpected {_describe_token(token)}; expected {expected}", span,
                              hint="a week range is `week A..B` (weeks A to B) or `week N..` (week N to the end "
                                   "of the plan), with whole week numbers")
        same_line = before and "\n" not in text[len(before): token.start_pos] and not before.endswith(("{", ";"))
        if "_SEP" in exc.expected and same_line \
                or set(exc.expected) == {"_SEP"}:
            hint = "statements are separated by a newline or `;`"
        return Diagnostic("E104", f"unexpected {_describe_token(token)}; expected {expected}", span, hint=hint)
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    return Diagnostic("E104", "syntax error", at(source, line, column))


def _separator_after_brace(text: str):
    """Error hook: a statement may follow a closing ``}`` on the same line (``week 1 { ... } week 2 { ... }``).

    When the parser meets a token it cannot take right after a ``}`` but would take a separator there, an
    empty separator is fed first and the token retried. Anything else stays an error.
    """
    from lark import Token
    from lark.exceptions import UnexpectedToken

    fed: set[int] = set()

    def on_error(exc: UnexpectedInput) -> bool:
        if not isinstance(exc, UnexpectedToken) or exc.token.type == "$END":
            return False
        token = exc.token
        start = token.start_pos
        if start is None or start in fed or not text[:start].rstrip(" \t").endswith("}"):
            return False
        ip = exc.interactive_parser
        if "_SEP" not in ip.accepts():
            return False
        fed.add(start)
        ip.feed_token(Token("_SEP", ""))
        ip.feed_token(token)
        return True

    return on_error


def _top_level_starts(text: str) -> list[int]:
    """Offsets where top-level statements begin (braces, strings and comments respected).

    A statement starts at the first token after a separator at brace depth 0; a line that begins
    with ``{`` continues the statement above it (Allman braces).
    """
    starts: list[int] = []
    depth = 0
    at_start = True
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in " \t\f\r":
            i += 1
            continue
        if depth == 0 and ch in "\n;":
            at_start = True
            i += 1
            continue
        if at_start and depth == 0 and ch != "{":
            starts.append(i)
        at_start = False
        if ch == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
            if depth == 0:
                at_start = True   # a statement may follow a closing brace on the same line
        i += 1
    return starts


MAX_SYNTAX_ERRORS = 20


def _later_syntax_errors(parser: Lark, source: Source, first: Diagnostic) -> list[Diagnostic]:
    """Errors after the first: blank out the top-level statement holding each error and parse again.

    Blanking keeps every line and column, so later errors point at their real place. Stops at the first
    error that would not move past the blanked statement (no cascades) or after MAX_SYNTAX_ERRORS.
    """
    from lark.exceptions import UnexpectedInput

    text = source.text
    starts = _top_level_starts(text)
    found: list[Diagnostic] = []
    error_pos = first.span.start_pos if first.span is not None else len(text)
    while len(found) < MAX_SYNTAX_ERRORS - 1:
        before = [s for s in starts if s <= error_pos]
        after = [s for s in starts if s > error_pos]
        lo = before[-1] if before else 0
        hi = after[0] if after else len(text)
        if hi >= len(text) and not after:
            break   # the broken statement runs to the end of the file: nothing after it to check
        text = text[:lo] + "".join(c if c == "\n" else " " for c in text[lo:hi]) + text[hi:]
        try:
            parser.parse(text, on_error=_separator_after_brace(text))
            break
        except UnexpectedInput as exc:
            d = _syntax_error(Source(source.name, text), exc)
            if d.span is None or d.span.start_pos < hi:
                break
            span = at(source, d.span.line, d.span.column, max(1, d.span.end_column - d.span.column))
            found.append(Diagnostic(d.code, d.message, span, hint=d.hint))
            error_pos = span.start_pos
    return found


def _check_depth(tree: Tree, source: Source) -> None:
    """Reject absurdly deep expressions before any recursive pass sees them."""
    from lark import Tree

    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            span = at(source, meta.line, meta.column) if not meta.empty else point(source, 0)
            if node.data in ("repeat", "for_block", "session"):
                raise ProtocolSyntaxError(Diagnostic(
                    "E114", f"blocks nested more than {MAX_BLOCK_DEPTH} levels deep", span,
                    hint="flatten the session: write the inner sets one after another"))
            raise ProtocolSyntaxError(Diagnostic(
                "E107", f"expression nested more than {MAX_DEPTH} levels deep", span,
                hint="split it up with a param"))
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))


def decode(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is allowed); anything else is an E101 pointing at the first bad byte.

    A leading BOM is cut off here and the rest decoded as UTF-8, which is what the "utf-8-sig" codec does
    (its offsets, too, count from after the BOM) without looking that codec up: the lookup imports its module,
    about 1 % of a small file's ``stimscript check``. The error names the bad byte at its offset in the file
    (the decoder's own offset counts from after the BOM)."""
    bom = 3 if data[:3] == b"\xef\xbb\xbf" else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = bom + exc.start
        good = data[bom:at].decode("utf-8", errors="replace")
        source = Source(name, good + "\ufffd")
        raise ProtocolSyntaxError(Diagnostic(
            "E101", f"the file is not UTF-8 text (byte 0x{data[at]:02x} at offset {at})",
            point(source, len(good)), hint="save the protocol as UTF-8")) from None


def parse(text: str | bytes, name: str = "<string>") -> ast.Protocol:
    """Parse protocol text into an AST; raises ProtocolSyntaxError with FILE:LINE:COL."""
    if isinstance(text, (bytes, bytearray)):
        text = decode(bytes(text), name)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    source = Source(name, text)
    fast = get_fast_parser()
    if fast is not None:
        # The cyclic garbage collector is paused while the fast path builds the AST: every node survives,
        # none is part of a cycle, and the collections the new objects trigger walk the growing tree again
        # and again (a share of the parse that grows with the file). Reference counting frees as usual.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return fast.parse(text, AstBuilder(source), MAX_DEPTH)
        except Fallback:
            pass
        finally:
            if collecting:
                gc.enable()
    return _parse_with_lark(text, source)


def _parse_with_lark(text: str, source: Source) -> ast.Protocol:
    """The reference path: Lark's parse tree (with error recovery and diagnostics), then the AST."""
    from lark import Transformer
    from lark.exceptions import UnexpectedInput, VisitError

    parser = get_parser()
    try:
        tree = parser.parse(text, on_error=_separator_after_brace(text))
    except UnexpectedInput as exc:
        first = _syntax_error(source, exc)
        raise ProtocolSyntaxError([first] + _later_syntax_errors(parser, source, first)) from None
    except RecursionError:  # pragma: no cover - lark's LALR is iterative; belt and braces
        raise ProtocolSyntaxError(Diagnostic("E107", "nesting too deep", point(source, 0))) from None
    _check_depth(tree, source)
    builder = AstBuilder(source)

    class _Build(Transformer):
        """Calls ``builder.<rule>(meta, children)`` for every node (Lark wraps its exceptions)."""

        def __default__(self, data, children, meta):
            method = getattr(builder, data, None) if not data.startswith("_") else None
            if method is None:
                return super().__default__(data, children, meta)
            try:
                return method(builder.span_of(meta), children)
            except AstError:
                raise
            except Exception as exc:
                from lark import Tree

                raise VisitError(data, Tree(data, children, meta), exc) from exc

    try:
        protocol = _Build(visit_tokens=False).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, AstError):
            raise ProtocolSyntaxError(exc.orig_exc.diagnostic) from None
        raise
    except AstError as exc:
        raise ProtocolSyntaxError(exc.diagnostic) from None
    return protocol


def parse_file(path: str | os.PathLike) -> tuple[ast.Protocol, bytes]:
    """Read and parse a file; returns the AST and the raw bytes (for the SHA-256 in records)."""
    from pathlib import Path

    data = Path(path).read_bytes()
    return parse(data, name=str(path)), data
