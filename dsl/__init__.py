"""stimscript.dsl: the StimScript language front-end (grammar, parser, AST, formatter)."""
from . import ast
from .parser import parse, parse_file

__all__ = ["ast", "parse", "parse_file"]
