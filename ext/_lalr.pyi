"""Type stub of the Cython LALR driver (ext/_lalr.pyx), the twin of :class:`stimscript.dsl.lalr.TableParser`.

Both twins take the same exported tables and give the same results for every text (the same AST, spans and
tokens, the same :class:`~stimscript.dsl.lalr.Fallback`); mypy reads this stub because it cannot read the
compiled module.
"""
from typing import Any

__all__ = ["TableParser"]

class TableParser:
    """Parses text with exported tables (dsl/tables.py ``export_tables``)."""

    def __init__(self, tables: dict) -> None:
        """Reads ``tables["twin"]`` (dsl/tables.py ``pack_twin``); ValueError when it is damaged or foreign."""
    def parse(self, text: str, builder: Any, max_depth: int) -> Any:
        """The builder's result for ``text``; raises Fallback for anything Lark must decide."""
    def scan(self, terminal: str, text: str, pos: int) -> int:
        """Where the match of ``terminal`` at ``pos`` ends; -1 when it does not match there."""
    def action(self, state: int, symbol: int) -> int | None:
        """The action of ``state`` on symbol number ``symbol``: a state, ``~rule``, or None."""
    def lex(self, state: int, text: str, pos: int) -> tuple[str, int, int] | None:
        """The next token for parser ``state`` from ``pos``: (terminal, start, end), blanks skipped."""
