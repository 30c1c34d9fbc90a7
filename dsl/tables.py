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
import sys
import zlib
from pathlib import Path

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

FAST_FORMAT = "stimscript-lalr-export-1"  # = dsl/lalr.py FORMAT


def fast_cache_path(grammar: str, cache_dir: Path | None = None) -> Path:
    """Where exported tables built at run time go (named by a CRC of the grammar; the file holds the text)."""
    return (cache_dir or user_cache_dir()) / f"grammar-{zlib.crc32(grammar.encode('utf-8')):08x}.tables"


def export_tables(parser: Lark) -> dict:
    """The LALR tables, the contextual lexer and the tree shaping of ``parser`` as plain data.

    ``actions``: state -> {symbol: (0, next state) | (1, rule index)}; ``rules``: per rule (origin, size,
    builder name, expand one child, child filter (index, splice, Nones before) or None, Nones after, spliced
    into its parent); ``lexers``: per distinct terminal set (regular expressions tried in order, {terminal:
    {text: keyword}}) and ``lexer_of_state``. Everything is read from Lark's own objects, so the fast path
    lexes, parses and shapes as Lark does. Raises ValueError for options the fast path does not implement.
    """
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
    rule_index = {rule: i for i, rule in enumerate(parser.rules)}
    actions = {}
    for state, row in table.states.items():
        actions[state] = {str(sym): (0, arg) if action is Shift else (1, rule_index[arg])
                          for sym, (action, arg) in row.items()}
    rules = []
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
        rules.append((str(rule.origin.name), len(rule.expansion), name, expand1, include, append_none, inline))
    # the contextual lexer: one basic lexer per distinct set of terminals a state accepts (as Lark builds it)
    key_of: dict[frozenset, int] = {}
    lexers: list[tuple[list[str], dict[str, dict[str, str]]]] = []
    lexer_of_state: dict[int, int] = {}
    for state, row in table.states.items():
        key = frozenset(row)
        if key not in key_of:
            names = (set(row) | set(conf.ignore)) & set(terminals)
            ts = sorted((terminals[n] for n in names),
                        key=lambda x: (-x.priority, -x.pattern.max_width, -len(x.pattern.value), x.name))
            kept, callbacks = _create_unless(ts, conf.g_regex_flags, conf.re_module, conf.use_bytes)
            unless = {}
            for retok, cb in callbacks.items():
                words: dict[str, str] = {}
                for st in cb.scanner.terminals:
                    if not isinstance(st.pattern, PatternStr):
                        raise ValueError("unless callback on a regular expression")
                    words.setdefault(str(st.pattern.value), str(st.name))
                unless[str(retok)] = words
            patterns = [m.pattern for m in Scanner(kept, conf.g_regex_flags, conf.re_module, conf.use_bytes)._mres]
            key_of[key] = len(lexers)
            lexers.append((patterns, unless))
        lexer_of_state[state] = key_of[key]
    return {
        "actions": actions, "rules": rules, "start_state": table.start_states["start"],
        "end_state": table.end_states["start"], "ignore": [str(n) for n in conf.ignore], "lexers": lexers,
        "lexer_of_state": lexer_of_state, "sre": compiled_lexers(lexers),
        "newline_types": sorted(t.name for t in terminals.values() if _regexp_has_newline(t.pattern.to_regexp())),
    }


def compiled_lexers(lexers: list) -> dict:
    """The lexers' regular expressions as ``re`` compiles them: per lexer, per pattern (flags, code, groups,
    group index, index group), the arguments ``re`` itself passes to ``_sre.compile``; with the engine's
    ``MAGIC``, so that dsl/lalr.py rebuilds each pattern without parsing it again (compiling them costs a
    plain ``check`` more than parsing its file) and uses ``re.compile`` when the engine differs."""
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
            row.append((int(tree.state.flags), [int(c) for c in code], tree.state.groups - 1,
                        {str(k): int(v) for k, v in tree.state.groupdict.items()}, tuple(index)))
        out.append(row)
    return {"magic": _sre.MAGIC, "lexers": out}


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
