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

Nothing is ever downloaded. This module imports nothing from stimscript, so the build can load it by path.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from lark import Lark
from lark import __version__ as LARK_VERSION

#: how the stimscript grammar is compiled (part of the key: other options are other tables)
OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True, "maybe_placeholders": True}

#: the tables written at build time, next to grammar.lark
SHIPPED = Path(__file__).with_name("grammar.lalr")

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
    fd, tmp = tempfile.mkstemp(prefix=".grammar-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.encode("ascii") + b"\n")
            parser.save(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    """Build time: compile ``grammar_path`` and write its tables to ``target`` (setup.py calls this)."""
    grammar = grammar_path.read_text(encoding="utf-8")
    write_tables(build(grammar), target, grammar_key(grammar))
    os.chmod(target, 0o644)  # installed package data: readable by every user
    return target
