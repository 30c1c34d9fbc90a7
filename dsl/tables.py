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
(:func:`export_tables`) for dsl/lalr.py, the fast path of ``parse`` that imports neither lark nor this
module's lark parts: a packed run of words for the compiled driver (:func:`pack_twin`) and the reference's
tables marshalled (:func:`write_fast_tables`). Such a file holds the grammar text it was made from and is
used only for that exact text (and this Python's major.minor).

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
    # the grammar's bytes as they are on disk: what dsl/parser.py compares them with (line ends untranslated)
    write_fast_tables(export_tables(parser), grammar_path.read_bytes(), fast)
    os.chmod(fast, 0o644)
    return target


# ---- the exported tables of the fast path (dsl/lalr.py) ------------------------------------------------

FAST_FORMAT = "stimscript-lalr-export-6"  # = dsl/lalr.py FORMAT

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
    them) and ``scanners`` (per terminal, :func:`scanner_spec`), and all of that again as the one packed run the
    twin reads (``twin``: :func:`pack_twin`). Everything is read from Lark's own objects,
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
    exported = {
        "symbols": symbols, "actions": pack_actions(actions, symbols), "rules": rules,
        "start_state": table.start_states["start"],
        "end_state": table.end_states["start"], "ignore": [str(n) for n in conf.ignore], "lexers": lexers,
        "lexer_of_state": lexer_of_state, "sre": marshal.dumps(compiled_lexers(lexers)), "kept": sorted(kept),
        "newline_types": sorted(newline_types), "lexer_terminals": lexer_terminals,
        "scanners": {name: scanner_spec(t.pattern.type, t.pattern.value if t.pattern.type == "str"
                                        else t.pattern.to_regexp()) for name, t in terminals.items()},
    }
    exported["twin"] = pack_twin(exported)
    return exported


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


def write_fast_tables(tables: dict, grammar: str | bytes, path: Path) -> None:
    """Save exported tables for ``grammar`` (its text, or the bytes of its file) atomically, in the layout
    dsl/lalr.py ``read_fast_tables`` reads:

    * a line of exactly :data:`HEAD_SIZE` bytes (ASCII, padded with blanks): the format, this Python's
      major.minor and the lengths of the three parts below;
    * the compiled twin's packed run (:func:`pack_twin`), then the grammar's UTF-8 text, then everything
      else marshalled (the reference's tables; marshal: fast to read, no pickle import).

    The compiled twin reads only the line, its run and the grammar (the run first: it is then the front of
    the bytes read, aligned for its words, and is used where it lies); the grammar is compared byte for byte,
    so a grammar edit is always a miss."""
    twin = tables["twin"] if "twin" in tables else pack_twin(tables)
    text = grammar if isinstance(grammar, bytes) else grammar.encode("utf-8")
    rest = marshal.dumps({k: v for k, v in tables.items() if k != "twin"})
    head = " ".join([FAST_FORMAT, "%d.%d" % sys.version_info[:2], str(len(twin)), str(len(text)), str(len(rest))])
    if len(head) >= HEAD_SIZE:
        raise ValueError("tables too large for the head line")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:
        fh.write(head.encode("ascii").ljust(HEAD_SIZE - 1) + b"\n" + twin + text + rest)


#: the length of the first line of an exported-tables file (= dsl/lalr.py HEAD_SIZE)
HEAD_SIZE = 64

# ---- the compiled twin's packed run ----------------------------------------------------------------------

#: the first word of a packed run (read back in another byte order, or of another layout: refused)
TWIN_MAGIC = 0x3654574C
#: the words before the sections: magic, words, checksum (of every word after it), nstates, nsymbols,
#: nterminals, nrules, nlexers, nbuilders, start state, end state, end symbol, comb slots, then the offsets (in
#: words) of the comb's bases, the comb, the rules, the terminals, lexer_of_state, the lexers, the pool of
#: their data, and where the names start (in bytes)
TWIN_HEADER = 21
#: the scanner kinds of ext/_lalr.pyx (SC_*), by scanner_spec's name
_SCANNER_KINDS = {"str": 0, "class+": 1, "class class*": 2, "words": 3, "decimal": 4, "quoted": 5, "separator": 6,
                  "re": 7}
#: the comb's empty slot (its low half: no state)
_EMPTY_SLOT = 0xFFFF


def checksum(words) -> int:
    """Two running sums of 32-bit words (Fletcher's, modulo 2**32), folded into one word: ext/_lalr.pyx computes
    the same over a packed run before it trusts it, so a damaged file is a miss (a changed word changes the
    first sum; two words swapped, the second). Cheap in C: no multiplication in its chain."""
    a, b = 1, 0
    for w in words:
        a = (a + (w & 0xFFFFFFFF)) & 0xFFFFFFFF
        b = (b + a) & 0xFFFFFFFF
    return a ^ (((b << 16) | (b >> 16)) & 0xFFFFFFFF)


def comb(rows: list[dict[int, int]], width: int) -> tuple[list[int], list[int]]:
    """The action rows (per state {symbol: action}) laid over each other in one run of slots (row
    displacement): state ``s``'s action on symbol ``x`` is in slot ``base[s] + x`` when that slot's low 16
    bits are ``s`` (its high 16 bits, signed, are the action); any other slot means no action. Rows are
    placed densest first, each at the lowest base where its symbols find free slots. Returns (bases, slots)."""
    if len(rows) >= _EMPTY_SLOT:
        raise ValueError("too many states for the comb")
    for row in rows:
        for act in row.values():
            if not -0x8000 <= act <= 0x7FFF:
                raise ValueError("an action does not fit the comb")
    used = bytearray()
    bases = [0] * len(rows)
    for s in sorted(range(len(rows)), key=lambda s: (-len(rows[s]), s)):
        cols = sorted(rows[s])
        if not cols:
            continue
        first = cols[0]
        b = 0
        while True:
            free = used.find(0, b + first) if b + first < len(used) else b + first
            if free < 0:
                free = len(used)
            b = free - first
            if all(b + c >= len(used) or not used[b + c] for c in cols):
                break
            b += 1
        if b + width > len(used):
            used.extend(bytes(b + width - len(used)))
        for c in cols:
            used[b + c] = 1
        bases[s] = b
    slots = [_EMPTY_SLOT] * (max(bases, default=0) + width)
    for s, row in enumerate(rows):
        for c, act in row.items():
            slots[bases[s] + c] = s | ((act & 0xFFFF) << 16)
    return bases, slots


def pack_twin(tables: dict) -> bytes:
    """Everything ext/_lalr.pyx parses with, as one run of unsigned 32-bit words (machine order) then a few
    names marshalled, so that loading it costs no Python object per rule, terminal or lexer: the twin reads
    the words where they lie (the comb of actions, the rules, the scanners, the lexers' terminals and
    keywords) and checks them (bounds, :func:`checksum`) before it trusts them.

    Sections (offsets in words from the start, in the header): ``base[state]`` and the comb (:func:`comb`);
    per rule 8 words (origin, size, use, shape, builder, count, offset of its indexes, Nones after or the
    EXTEND index);
    per terminal 4 words (scanner kind, symbol, flags: 1 kept, 2 newlines, 4 ignored; offset of its data);
    ``lexer_of_state``; per lexer 2 words (offset of its terminals, offset of its keywords); the pool of the
    data those offsets name (a literal: length, code points; a character set: count, low ends, high ends;
    words: count, look-ahead or not, lengths, where each starts among the code points, the code points, the
    look-ahead's set; a lexer's terminals: count,
    terminal numbers; its keywords: count, then per terminal its number, how many words, and per word the
    keyword's symbol, length, code points). The names after
    the words: (symbol names, builder method names, {terminal: pattern} of the terminals left to ``re``)."""
    from array import array

    symbols = list(tables["symbols"])
    index = {name: i for i, name in enumerate(symbols)}
    terminals = list(tables["scanners"])
    term_index = {name: i for i, name in enumerate(terminals)}
    nstates = len(tables["lexer_of_state"])
    if isinstance(tables["actions"], bytes):
        words = array("i")
        words.frombytes(tables["actions"])
        packed = words.tolist()
    else:
        packed = list(tables["actions"])
    rows: list[dict[int, int]] = []
    k = 0
    for _ in range(nstates):
        n = packed[k]
        rows.append(dict(zip(packed[k + 1:k + 1 + 2 * n:2], packed[k + 2:k + 2 + 2 * n:2])))
        k += 1 + 2 * n
    if k != len(packed):
        raise ValueError("the packed actions do not match the states")
    bases, slots = comb(rows, len(symbols))
    pool: list[int] = []

    def put(values) -> int:
        at = len(pool)
        pool.extend(values)
        return at

    # a builder named as a symbol is that very string object, so that marshal stores it once (a reference)
    same = {name: name for name in symbols}
    builders = [same.get(name, name) for name in dict.fromkeys(name for *_, name in tables["rules"])]
    builder_index = {name: i for i, name in enumerate(builders)}
    rule_words: list[int] = []
    for origin, size, use, shape, arg, name in tables["rules"]:
        count, at, extra = 0, 0, 0
        if shape == _PICK:
            count, at = len(arg), put(arg)
        elif shape == _SPLICE:
            include, extra = arg
            count, at = len(include), put(v for i, splice, nones in include for v in (i, 1 if splice else 0, nones))
        elif shape == _EXTEND:
            extra = arg
        rule_words += (index[origin], size, use, shape, builder_index[name], count, at, extra)
    kept, newline, ignored = set(tables["kept"]), set(tables["newline_types"]), set(tables["ignore"])
    patterns = {}
    term_words: list[int] = []
    for t, name in enumerate(terminals):
        spec = tables["scanners"][name]
        kind = _SCANNER_KINDS[spec[0]]
        at = 0
        if spec[0] == "str":
            at = put([len(spec[1]), *map(ord, spec[1])])
        elif spec[0] == "class+":
            at = put(_packed_ranges(spec[1]))
        elif spec[0] == "class class*":
            at = put(_packed_ranges(spec[1]))
            put(_packed_ranges(spec[2]))
        elif spec[0] == "words":
            found = spec[1]
            starts = [sum(map(len, found[:i])) for i in range(len(found))]
            at = put([len(found), 0 if spec[2] is None else 1, *map(len, found), *starts])
            for w in found:
                put(map(ord, w))
            if spec[2] is not None:
                put(_packed_ranges(spec[2]))
        elif spec[0] == "re":
            patterns[t] = spec[1]
        flags = (1 if name in kept else 0) | (2 if name in newline else 0) | (4 if name in ignored else 0)
        term_words += (kind, index[name], flags, at)
    lexer_words: list[int] = []
    for names, (_, unless) in zip(tables["lexer_terminals"], tables["lexers"]):
        at = put([len(names), *(term_index[n] for n in names)])
        keywords = [len(unless)]
        for name, found in unless.items():
            keywords += (term_index[name], len(found))
            for text, keyword in found.items():
                keywords += (index[keyword], len(text), *map(ord, text))
        lexer_words += (at, put(keywords))
    sections = [bases, slots, rule_words, term_words, list(tables["lexer_of_state"]), lexer_words, pool]
    offsets = []
    at = TWIN_HEADER
    for section in sections:
        offsets.append(at)
        at += len(section)
    body = [nstates, len(symbols), len(terminals), len(tables["rules"]), len(tables["lexer_terminals"]),
            len(builders), tables["start_state"], tables["end_state"], index["$END"], len(slots), *offsets, at * 4]
    run = body + [w for section in sections for w in section]
    pool_at = offsets[-1]   # the offsets inside the sections count from the pool
    for section, (start, stride, fields) in ((rule_words, (0, 8, (6,))), (term_words, (0, 4, (3,))),
                                             (lexer_words, (0, 2, (0, 1)))):
        for i in range(start, len(section), stride):
            for f in fields:
                section[i + f] += pool_at
    run = body + [w for section in sections for w in section]
    out = array("I", [TWIN_MAGIC, at, checksum(run)] + run)
    if out.itemsize != 4 or len(out) != at:
        raise ValueError("the packed run needs 4-byte words")
    return out.tobytes() + marshal.dumps((tuple(symbols), tuple(builders), patterns))


def _packed_ranges(ranges) -> list[int]:
    """A scanner's character set: its count, then every low end, then every high end."""
    return [len(ranges), *(lo for lo, _ in ranges), *(hi for _, hi in ranges)]


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
