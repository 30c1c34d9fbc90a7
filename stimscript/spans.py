"""Source text and spans: every AST node and every diagnostic points back into the file it came from."""
from __future__ import annotations

from .valueclass import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A protocol's text and the name it is reported under (a path or ``<string>``)."""

    name: str
    text: str

    def line(self, number: int) -> str:
        """The 1-based source line ``number`` without its newline ('' when out of range)."""
        lines = self.text.split("\n")  # lark counts only \n as a line break
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return ""


@dataclass(frozen=True)
class Span:
    """A half-open region of a source: 1-based line/column of the start and of the end.

    Spans never take part in equality of AST nodes (the AST compares ``field(compare=False)``), so
    ``parse(fmt(x)) == parse(x)`` holds although positions move.
    """

    source: Source = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int = 0
    end_pos: int = 0

    @property
    def file(self) -> str:
        return self.source.name

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def merge(self, other: "Span | None") -> "Span":
        """The smallest span covering both (for a node built from children)."""
        if other is None:
            return self
        first, last = (self, other) if self.start_pos <= other.start_pos else (other, self)
        return Span(self.source, first.line, first.column, last.end_line, last.end_column,
                    first.start_pos, max(self.end_pos, other.end_pos))


def point(source: Source, pos: int) -> Span:
    """A one-character span at byte offset ``pos`` of ``source`` (clamped to the text)."""
    text = source.text
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Span(source, line, column, line, column + 1, pos, pos + 1)


def at(source: Source, line: int, column: int, length: int = 1) -> Span:
    """A span from a known line/column (lark errors report those)."""
    lines = source.text.split("\n")
    pos = sum(len(lines[i]) + 1 for i in range(min(line - 1, len(lines)))) + column - 1
    return Span(source, line, column, line, column + max(1, length), pos, pos + max(1, length))
