"""stimscript.dsl: the StimScript language front-end (grammar, parser, AST, formatter)."""
from . import ast
from .formatter import format_protocol, format_text
from .parser import parse, parse_file

__all__ = ["ast", "format_protocol", "format_text", "parse", "parse_file"]
