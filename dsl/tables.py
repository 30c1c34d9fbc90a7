"""The LALR tables of grammar.lark, cached on disk so a command does not rebuild them on every start.

Building the parser from the grammar costs ~0.5 s; loading the saved tables (``Lark.save``/``Lark.load``)
costs a few ms. A tables file starts with one line, the *key*: the SHA-256 of the grammar text, the parser
options, the lark version and the Python version. A file is used only when its key equals the key of the
grammar being loaded, so a grammar edit, a lark upgrade or another Python never reads stale tables.

Where the tables are looked for, in order:

1. ``grammar.lalr`` next to this module: written when the package is built (``pip install .`` into the
   wheel, ``pip install -e .`` into the source folder) by setup.py, which loads this file on its own;
2. ``grammar-<key>.lalr`` in the user cache folder (``$STIMSCRIPT_CACHE_DIR``, else platformdirs'
   ``user_cache_dir("stimscript")``): written on first use when (1) is missing or stale, e.g. right after
   the grammar was edited in a development checkout.

The same places hold ``grammar.tables`` / ``grammar-<crc>.tables``: the tables exported as plain data
(:func:`export_tables`, marshal) for dsl/lalr.py, the fast path of ``parse`` that imports neither lark nor
this module's lark parts. Such a file holds the grammar text it was made from and is used only for that
exact text (and this Python's major.minor).

Nothing is ever downloaded. This module imports nothing from stimscript but the standard-library-only
``stimscript/atomicfile.py`` (files are replaced atomically), so the build can load the two by path.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import re
import sys
import zlib
from pathlib import Path
from typing import Any

from lark import Lark
from lark import __version__ as LARK_VERSION

from ..atomicfile import replacing

#: how the stimscript grammar is compiled (part of the key: other options are other tables)
OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True, "maybe_placeholders": True}

#: the tables written at build time, next to grammar.lark
SHIPPED = Path(__file__).with_name("grammar.lalr")
#: the exported tables of the fast path, written at build time next to grammar.lark
SHIPPED_FAST = Path(__file__).with_name("grammar.tables")

_FORMAT = "stimscript-lalr-1"


def grammar_key(grammar: str) -> str:
    """What the tables depend on: grammar text, options, lark and Python versions."""
    options = ",".join(f"{k}={v!r}" for k, v in sorted(OPTIONS.items()))
    blob = "\0".join([_FORMAT, grammar, options, LARK_VERSION, "%d.%d" % sys.version_info[:2]])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def user_cache_dir() -> Path:
    """Where tables built at run time go (``$STIMSCRIPT_CACHE_DIR`` wins)."""
    folder = os.environ.get("STIMSCRIPT_CACHE_DIR")
    if folder:
        return Path(folder)
    from platformdirs import user_cache_dir as _user_cache_dir

    return Path(_user_cache_dir("stimscript", appauthor=False))


def user_cache_path(key: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or user_cache_dir()) / f"grammar-{key[:32]}.lalr"


def read_tables(path: Path, key: str) -> Lark | None:
    """The parser saved in ``path`` if its key is ``key``; None when absent, stale or unreadable."""
    try:
        with open(path, "rb") as fh:
            if fh.readline().rstrip(b"\n") != key.encode("ascii"):
                return None
            return Lark.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file is a cache miss, never an error
        return None


def write_tables(parser: Lark, path: Path, key: str) -> None:
    """Save ``parser`` under ``key`` atomically (a reader sees the old file or the whole new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:
        fh.write(key.encode("ascii") + b"\n")
        parser.save(fh)


def build(grammar: str) -> Lark:
    return Lark(grammar, **OPTIONS)


def load_parser(grammar: str, shipped: Path | None = SHIPPED, cache_dir: Path | None = None) -> Lark:
    """The parser for ``grammar``: from the shipped tables, the user cache, or built (and then cached)."""
    key = grammar_key(grammar)
    if shipped is not None:
        parser = read_tables(shipped, key)
        if parser is not None:
            return parser
    try:
        cached = user_cache_path(key, cache_dir)
    except Exception:  # no home folder, platformdirs failing: build every time rather than fail
        cached = None
    if cached is not None:
        parser = read_tables(cached, key)
        if parser is not None:
            return parser
    parser = build(grammar)
    if cached is not None:
        try:
            write_tables(parser, cached, key)
        except OSError:
            pass  # a read-only home: the next start builds again, nothing worse
    return parser


def build_shipped(grammar_path: Path, target: Path) -> Path:
    """Build time: compile ``grammar_path`` and write its tables to ``target`` and the exported tables of
    the fast path next to it (``grammar.tables``; setup.py calls this)."""
    grammar = grammar_path.read_text(encoding="utf-8")
    parser = build(grammar)
    write_tables(parser, target, grammar_key(grammar))
    os.chmod(target, 0o644)  # installed package data: readable by every user
    fast = target.with_name(SHIPPED_FAST.name)
    write_fast_tables(export_tables(parser), grammar, fast)
    os.chmod(fast, 0o644)
    return target


# ---- the exported tables of the fast path (dsl/lalr.py) ------------------------------------------------

FAST_FORMAT = "stimscript-lalr-export-5"  # = dsl/lalr.py FORMAT

# the rule kinds of dsl/lalr.py (repeated here: this module is loaded by path at build time)
_UNIT, _LEAF, _TREE, _INLINE, _COLLAPSE = 0, 1, 2, 3, 4
_ALL, _PICK, _SPLICE, _EXTEND = 0, 1, 2, 3


def fast_cache_path(grammar: str, cache_dir: Path | None = None) -> Path:
    """Where exported tables built at run time go (named by a CRC of the grammar; the file holds the text)."""
    return (cache_dir or user_cache_dir()) / f"grammar-{zlib.crc32(grammar.encode('utf-8')):08x}.tables"


def _shape_rule(size: int, include: tuple | None, append_none: int, expand1: bool, inline: bool) -> tuple:
    """(use, shape, arg) of one rule for dsl/lalr.py: how its children are chosen from the popped symbols and
    what becomes of them (see the constants there). ``include``: Lark's child filter as (index, splice,
    Nones before) or None (every symbol is a child)."""
    arg: Any = None
    if include is None:
        shape = _ALL
        count = size
    elif not any(splice for _, splice, _ in include):
        picks: list[int] = []
        for i, _, nones in include:
            picks += [size] * nones + [i]   # index ``size``: a None placeholder
        picks += [size] * append_none
        shape, arg = _PICK, tuple(picks)
        count = len(picks)
    else:
        count = -1   # known only while parsing
        if len(include) == 2 and include[0] == (0, True, 0) and include[1][1:] == (False, 0) \
                and not append_none:   # ``__x_star: __x_star _SEP item``: the list grows by one
            shape, arg = _EXTEND, include[1][0]
        else:
            shape, arg = _SPLICE, (include, append_none)
    if inline:
        return _INLINE, shape, arg
    if not expand1:
        return _TREE, shape, arg
    if count == -1:
        raise ValueError("?rule with spliced children")
    if count != 1:
        return _TREE, shape, arg   # Lark keeps a ?rule node unless it has exactly one child
    return (_UNIT, shape, arg) if shape == _ALL else (_COLLAPSE, shape, arg)


def _regex_tree(pattern: str) -> Any:
    """``pattern`` parsed by ``re``'s own parser (``re._parser``; ``sre_parse`` before Python 3.11)."""
    import importlib

    try:
        module = importlib.import_module("re._parser")
    except ImportError:  # Python 3.10
        module = importlib.import_module("sre_parse")
    return module.parse(pattern, 0)


def _starts(items, chars: frozenset[str]) -> tuple[bool, bool]:
    """(may a match of the parsed expression ``items`` start with one of ``chars``, may it be empty):
    conservative (an unknown construct may start with anything)."""
    for op, av in items:
        op = str(op)
        if op in ("AT", "ASSERT", "ASSERT_NOT"):   # zero-width: what follows decides
            continue
        if op == "LITERAL":
            if chr(av) in chars:
                return True, False
            return False, False
        if op == "IN":
            for kind, arg in av:
                kind = str(kind)
                if kind == "LITERAL":
                    if chr(arg) in chars:
                        return True, False
                elif kind == "RANGE":
                    if any(arg[0] <= ord(c) <= arg[1] for c in chars):
                        return True, False
                else:   # NEGATE, CATEGORY, ...
                    return True, False
            return False, False
        if op == "SUBPATTERN":
            may, empty = _starts(av[-1], chars)
        elif op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            may, empty = _starts(av[2], chars)
            empty = empty or av[0] == 0
        elif op == "BRANCH":
            results = [_starts(branch, chars) for branch in av[1]]
            may, empty = any(r[0] for r in results), any(r[1] for r in results)
        elif op == "ATOMIC_GROUP":
            may, empty = _starts(av, chars)
        else:   # ANY, NOT_LITERAL, GROUPREF, ...
            return True, True
        if may:
            return True, empty
        if not empty:
            return False, False
    return False, True


def _blank_characters(items) -> frozenset[str] | None:
    """The characters of an ignored terminal of the shape ``[...]+`` (or ``x+``): it matches every run of
    them. None for any other shape."""
    if len(items) != 1 or str(items[0][0]) != "MAX_REPEAT":
        return None
    low, high, inner = items[0][1]
    if low != 1 or high != _regex_tree("x+")[0][1][1] or len(inner) != 1:
        return None
    op, av = inner[0]
    if str(op) == "LITERAL":
        return frozenset(chr(av))
    if str(op) == "IN" and all(str(kind) == "LITERAL" for kind, _ in av):
        return frozenset(chr(c) for _, c in av)
    return None


def _ignore_prefix(pattern: str, ignore: dict[str, str], newline_types: set[str]) -> str | None:
    """``pattern`` (one basic lexer: ``(?P<TERMINAL>...)|...`` in Lark's order) with the ignored blanks in
    front of a token folded into it, ``[blanks]*(?:pattern)``, when that lexes alike: one ignored
    terminal without newlines (its matches need no line counting) that must win wherever it can start,
    i.e. no terminal tried before it may start with a character it starts with, and of the shape
    ``[...]+`` (folded as ``[...]*``). The driver then reads the token where its group starts. (Where the folded expression finds no token after the blanks, it
    gives some back and matches the ignored terminal itself: the same outcome as without folding.)
    None when that cannot be shown."""
    if len(ignore) != 1:
        return None
    [(name, ignored)] = ignore.items()
    if name in newline_types:
        return None
    tree = _regex_tree(pattern)
    if len(tree) != 1 or str(tree[0][0]) != "BRANCH":
        return None
    order = [n for _, n in sorted((i, n) for n, i in tree.state.groupdict.items())]
    if name not in order:
        return None
    blanks = _blank_characters(_regex_tree(ignored))
    if not blanks or len(tree[0][1][1]) != len(order):
        return None
    for other in order[:order.index(name)]:
        group = tree.state.groupdict[other]
        alternative = next((b for b in tree[0][1][1] if str(b[0][0]) == "SUBPATTERN" and b[0][1][0] == group), None)
        if alternative is None or any(_starts(alternative, blanks)):   # (or match nothing: it would win)
            return None
    # one character class under one star: a failing match gives back the blanks one at a time (linear)
    return "[%s]*(?:%s)" % ("".join("\\x%02x" % ord(c) if ord(c) < 256 else re.escape(c) for c in sorted(blanks)),
                            pattern)


def export_tables(parser: Lark) -> dict:
    """The LALR tables, the contextual lexer and the tree shaping of ``parser`` as plain data.

    ``symbols``: every symbol's name (the terminals in the order of ``scanners``, then the rules' origins, then
    ``$END``); ``actions``: per state {symbol: next state (a shift or a goto) | ~rule index (a reduction)},
    packed by :func:`pack_actions` (read at memory speed, not as ~600 dicts); ``rules``:
    per rule (origin, size, use, shape, arg, builder name) (see dsl/lalr.py); ``kept``: the terminals some
    rule keeps as a child (every other token is dropped by every rule); ``lexers``: per distinct terminal
    set (regular expressions tried in order, {terminal: {text: keyword}}) and ``lexer_of_state``; for the
    compiled twin (ext/_lalr.pyx) also ``lexer_terminals`` (per lexer, its terminals in the order Lark tries
    them) and ``scanners`` (per terminal, :func:`scanner_spec`). Everything is read from Lark's own objects,
    so the fast path lexes, parses and shapes as Lark does. Raises ValueError for options the fast path does
    not implement.
    """
    from lark.grammar import Terminal
    from lark.lexer import PatternStr, Scanner, _create_unless, _regexp_has_newline
    from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders, maybe_create_child_filter
    from lark.parsers.lalr_analysis import Shift

    opts = parser.options
    if (opts.parser, opts.lexer) != ("lalr", "contextual") or opts.postlex is not None or opts.lexer_callbacks \
            or opts.keep_all_tokens or opts.g_regex_flags or opts.regex or opts.use_bytes \
            or opts.propagate_positions is not True or opts.transformer is not None:
        raise ValueError("options the fast path does not implement")
    frontend = parser.parser
    table = frontend.parser.parser.parse_table
    conf = frontend.lexer_conf
    terminals = {t.name: t for t in conf.terminals}
    for t in terminals.values():
        if t.pattern.flags:
            raise ValueError(f"terminal {t.name} has regex flags")
    if sorted(table.states) != list(range(len(table.states))):
        raise ValueError("parser states are not numbered 0..n-1")
    rule_index = {rule: i for i, rule in enumerate(parser.rules)}
    actions = []
    for state in range(len(table.states)):
        actions.append({str(sym): arg if action is Shift else ~rule_index[arg]
                        for sym, (action, arg) in table.states[state].items()})
    shaped: list[list[Any]] = []
    for rule in parser.rules:
        o = rule.options
        name = str(rule.alias or o.template_source or rule.origin.name)
        flt = maybe_create_child_filter(rule.expansion, o.keep_all_tokens, False,
                                        list(o.empty_indices) if opts.maybe_placeholders else None)  # type: ignore[arg-type]
        if flt is None:
            include, append_none = None, 0
        elif flt.func is ChildFilterLALR:
            include = tuple((i, bool(x), n) for i, x, n in flt.args[0])
            append_none = flt.args[1]
        elif flt.func is ChildFilterLALR_NoPlaceholders:
            include, append_none = tuple((i, bool(x), 0) for i, x in flt.args[0]), 0
        else:
            raise ValueError(f"child filter {flt.func.__name__}")
        inline = rule.origin.name.startswith("_")
        expand1 = bool(o.expand1 and not rule.alias)
        if inline and expand1:
            raise ValueError(f"rule {rule.origin.name}: ?_rule")
        shaped.append([rule, name, include, append_none, expand1, inline])
    # A _rule whose every alternative is one kept symbol (``_block: repeat | for_block | pause``) gives its
    # parent exactly one child: the parent takes it as a plain child instead of splicing a list of one, and
    # the _rule itself only changes the state (its one record's position is its own).
    single: set[str] = set()
    while True:
        found = {str(r.origin.name) for r, *_ in shaped if r.origin.name.startswith("_")} - single
        for r, _, include, append_none, _, _ in shaped:
            if str(r.origin.name) in found and not (
                    len(r.expansion) == 1 and (include is None or (include == ((0, False, 0),) and not append_none))):
                found.discard(str(r.origin.name))
        if not found:
            break
        single |= found
        for entry in shaped:
            r, include = entry[0], entry[2]
            if include is not None:
                entry[2] = tuple((i, splice and str(r.expansion[i].name) not in single, n) for i, splice, n in include)
    rules = []
    kept: set[str] = set()
    for rule, name, include, append_none, expand1, inline in shaped:
        if str(rule.origin.name) in single:
            use, shape, arg = _UNIT, _ALL, None
        else:
            use, shape, arg = _shape_rule(len(rule.expansion), include, append_none, expand1, inline)
            if use == _TREE and shape in (_ALL, _PICK) and rule.expansion \
                    and all(isinstance(symbol, Terminal) for symbol in rule.expansion):
                use = _LEAF
        rules.append((str(rule.origin.name), len(rule.expansion), use, shape, arg, name))
        for i in (range(len(rule.expansion)) if include is None else [i for i, _, _ in include]):
            if isinstance(rule.expansion[i], Terminal):
                kept.add(str(rule.expansion[i].name))
    newline_types = {t.name for t in terminals.values() if _regexp_has_newline(t.pattern.to_regexp())}
    ignored = {str(n): terminals[n].pattern.to_regexp() for n in conf.ignore}
    # the contextual lexer: one basic lexer per distinct set of terminals a state accepts (as Lark builds it)
    key_of: dict[frozenset, int] = {}
    lexers: list[tuple[list[str], dict[str, dict[str, str]]]] = []
    lexer_of_state: list[int] = []
    lexer_terminals: list[list[str]] = []
    for state in range(len(table.states)):
        row = table.states[state]
        key = frozenset(row)
        if key not in key_of:
            names = (set(row) | set(conf.ignore)) & set(terminals)
            ts = sorted((terminals[n] for n in names),
                        key=lambda x: (-x.priority, -x.pattern.max_width, -len(x.pattern.value), x.name))
            kept_ts, callbacks = _create_unless(ts, conf.g_regex_flags, conf.re_module, conf.use_bytes)
            unless = {}
            for retok, cb in callbacks.items():
                words: dict[str, str] = {}
                for st in cb.scanner.terminals:
                    if not isinstance(st.pattern, PatternStr):
                        raise ValueError("unless callback on a regular expression")
                    words.setdefault(str(st.pattern.value), str(st.name))
                unless[str(retok)] = words
            patterns = [m.pattern for m in Scanner(kept_ts, conf.g_regex_flags, conf.re_module, conf.use_bytes)._mres]
            if len(patterns) == 1:
                patterns = [_ignore_prefix(patterns[0], ignored, newline_types) or patterns[0]]
            key_of[key] = len(lexers)
            lexers.append((patterns, unless))
            lexer_terminals.append([str(t.name) for t in kept_ts])
        lexer_of_state.append(key_of[key])
    # every symbol the twins number: the terminals, the rules' origins, $END, then any other a row names
    numbered = dict.fromkeys([*terminals, *(origin for origin, *_ in rules), "$END",
                              *(name for row in actions for name in row)])
    symbols = list(numbered)
    return {
        "symbols": symbols, "actions": pack_actions(actions, symbols), "rules": rules,
        "start_state": table.start_states["start"],
        "end_state": table.end_states["start"], "ignore": [str(n) for n in conf.ignore], "lexers": lexers,
        "lexer_of_state": lexer_of_state, "sre": marshal.dumps(compiled_lexers(lexers)), "kept": sorted(kept),
        "newline_types": sorted(newline_types), "lexer_terminals": lexer_terminals,
        "scanners": {name: scanner_spec(t.pattern.type, t.pattern.value if t.pattern.type == "str"
                                        else t.pattern.to_regexp()) for name, t in terminals.items()},
    }


#: regular expressions of the grammar that the compiled twin scans with code of its own (name -> pattern)
KNOWN_SCANNERS = {
    "decimal": r"[0-9]+(?:\.[0-9]+)?",
    "quoted": '"(?:[^"\\\\\n]|\\\\.)*"',
    "separator": "(?:[;\n]|#[^\n]*)(?:[ \t\x0c\r;\n]|#[^\n]*)*",
}

_WORD = r"(?:[^|()\[\]{}?*+.^$\\]|\\[^A-Za-z0-9])+"


def _char_ranges(items) -> tuple[tuple[int, int], ...] | None:
    """The code point ranges of one parsed character set (``re``'s parser: a LITERAL or an IN of LITERALs and
    RANGEs); None for anything else (a negated set, a category such as ``\\w``)."""
    if len(items) != 1:
        return None
    op, av = items[0]
    if str(op) == "LITERAL":
        return ((av, av),)
    if str(op) != "IN":
        return None
    out = []
    for kind, arg in av:
        if str(kind) == "LITERAL":
            out.append((arg, arg))
        elif str(kind) == "RANGE":
            out.append((arg[0], arg[1]))
        else:
            return None
    return tuple(out)


def scanner_spec(kind: str, pattern: str) -> tuple:
    """How the compiled twin (ext/_lalr.pyx) matches one terminal, as plain data: ``("str", text)``;
    ``("class+", ranges)`` for ``[...]+``; ``("class class*", ranges, ranges)`` for ``[...][...]*``;
    ``("words", words, ranges | None)`` for ``(?:w1|w2|...)`` with an optional ``(?![...])`` after each word
    (the first word that matches wins, as in ``re``); ``(name,)`` for a pattern of :data:`KNOWN_SCANNERS`;
    ``("re", pattern)`` for anything else (the twin then asks ``re``). tests/test_parse_twin.py compares every
    scanner with ``re`` on the same text."""
    if kind == "str":
        return ("str", pattern)
    for name, known in KNOWN_SCANNERS.items():
        if pattern == known:
            return (name,)
    words = re.fullmatch(r"\(\?:(%s(?:\|%s)*)\)(\(\?!(\[[^\]]*\])\))?" % (_WORD, _WORD), pattern)
    if words:
        found = [re.sub(r"\\(.)", r"\1", w) for w in re.findall(_WORD, words.group(1))]
        if "|".join(re.escape(w) for w in found) == "|".join(re.escape(re.sub(r"\\(.)", r"\1", w))
                                                         for w in words.group(1).split("|")):
            ahead = _char_ranges(_regex_tree(words.group(3))) if words.group(2) else None
            if not words.group(2) or ahead is not None:
                return ("words", tuple(found), ahead)
    try:
        tree = list(_regex_tree(pattern))
    except Exception:
        return ("re", pattern)
    if len(tree) == 1 and str(tree[0][0]) == "MAX_REPEAT":
        low, high, inner = tree[0][1]
        ranges = _char_ranges(inner)
        if low == 1 and high == _regex_tree("x+")[0][1][1] and ranges is not None:
            return ("class+", ranges)
    if len(tree) == 2 and str(tree[1][0]) == "MAX_REPEAT":
        first = _char_ranges(tree[:1])
        low, high, inner = tree[1][1]
        rest = _char_ranges(inner)
        if low == 0 and high == _regex_tree("x+")[0][1][1] and first is not None and rest is not None:
            return ("class class*", first, rest)
    return ("re", pattern)


def compiled_lexers(lexers: list) -> dict:
    """The lexers' regular expressions as ``re`` compiles them: per lexer, per pattern (flags, code (as
    bytes: :func:`_code_bytes`), groups, group index, index group), the arguments ``re`` itself passes to
    ``_sre.compile``; with the engine's
    ``MAGIC``, so that dsl/lalr_python.py rebuilds each pattern without parsing it again (compiling them costs a
    plain ``check`` more than parsing its file) and uses ``re.compile`` when the engine differs.

    :func:`export_tables` stores them marshalled once more, as one ``bytes`` inside the tables: only the pure-Python
    driver reads them (the compiled twin scans with code of its own), so a load of the tables by the twin copies
    that blob without building its ~2000 objects (about 0.5 % of a small file's ``stimscript check``)."""
    import _sre  # type: ignore[import-not-found]
    from re import _compiler, _parser  # type: ignore[attr-defined]

    out = []
    for patterns, _ in lexers:
        row = []
        for p in patterns:
            tree = _parser.parse(p, 0)
            code = _compiler._code(tree, 0)
            index = [None] * tree.state.groups
            for name, i in tree.state.groupdict.items():
                index[i] = name
            row.append((int(tree.state.flags), _code_bytes([int(c) for c in code]), tree.state.groups - 1,
                        {str(k): int(v) for k, v in tree.state.groupdict.items()}, tuple(index)))
        out.append(row)
    return {"magic": _sre.MAGIC, "lexers": out}


def pack_actions(actions: list[dict[str, int]], symbols: list[str]) -> bytes | list[int]:
    """The action rows as one run of integers: per state its number of actions, then (symbol index, action)
    for each, in the row's order; stored as :func:`_code_bytes` stores words (dsl/lalr_python.py ``unpack_actions``
    and ext/_lalr.pyx read them back)."""
    index = {name: i for i, name in enumerate(symbols)}
    packed: list[int] = []
    for row in actions:
        packed.append(len(row))
        for name, act in row.items():
            packed += (index[name], act)
    return _code_bytes(packed, "i")


def _code_bytes(code: list[int], typecode: str = "I") -> bytes | list[int]:
    """The engine's code words as bytes (machine order, 4 bytes a word: what dsl/lalr_python.py reads back with
    ``array("I")``), which marshal reads at memory speed; the list itself where words are not 4 bytes."""
    from array import array

    words = array(typecode)
    return array(typecode, code).tobytes() if words.itemsize == 4 else code


def write_fast_tables(tables: dict, grammar: str, path: Path) -> None:
    """Save exported tables for ``grammar`` atomically (marshal: fast to read, no pickle import)."""
    blob = marshal.dumps({"format": FAST_FORMAT, "python": "%d.%d" % sys.version_info[:2], "lark": LARK_VERSION,
                          "grammar": grammar, "tables": tables})
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:
        fh.write(blob)


def build_fast_tables(grammar: str, parser: Lark, cache_dir: Path | None = None) -> dict | None:
    """Run time, when no exported tables match the grammar: export them from ``parser`` and cache them."""
    try:
        tables = export_tables(parser)
    except ValueError:
        return None
    try:
        write_fast_tables(tables, grammar, fast_cache_path(grammar, cache_dir))
    except Exception:  # a read-only home, no platformdirs: exported again next time, nothing worse
        pass
    return tables
