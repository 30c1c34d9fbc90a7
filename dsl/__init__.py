"""stimscript.dsl: the StimScript language front-end (grammar, parser, AST, formatter).

The formatter is imported on first use (``stimscript check`` parses but never formats)."""
from __future__ import annotations

from . import ast
from .parser import parse, parse_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .formatter import format_protocol, format_text

__all__ = ["ast", "format_protocol", "format_text", "parse", "parse_file"]


def __getattr__(name: str):
    if name in ("format_protocol", "format_text"):
        from . import formatter

        return getattr(formatter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
