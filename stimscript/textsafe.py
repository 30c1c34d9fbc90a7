"""Text that leaves the program safely: spreadsheet cells, terminal output, command-line arguments.

One small module so every command uses the same rules:

* :func:`csv_cell` — a value written to a CSV file that a spreadsheet will open. A cell starting with
  ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return, which some spreadsheets skip before reading a formula)
  is read as a formula; a patient id or note such as ``=HYPERLINK(...)`` would run. Such cells get a leading
  apostrophe (the spreadsheet convention for "text"); numbers written by the program (``-3``, ``-0.5``) stay
  numbers.
* :func:`for_terminal` — text from a protocol file or a records database shown on a terminal. Control
  characters (ESC sequences that move the cursor, clear the screen, set the window title or hyperlinks;
  BEL, backspace, C1 controls) are shown escaped (``\\x1b``) instead of acting on the terminal. Newlines and
  tabs may be kept.
* :func:`utf8_argument` — a click callback refusing command-line text that is not UTF-8 (bytes an operating
  system passes through as surrogates), before anything runs or is recorded.
"""
from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet cell (see the module docstring). Non-strings pass unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_NO_NL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def for_terminal(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped (tabs and, with ``keep_newlines``, newlines kept).

    Bidirectional overrides are escaped too (they reorder what a reader sees). Lone surrogates (undecodable
    bytes) are shown as ``\\xNN`` of the byte.
    """
    s = str(text)
    if any("\ud800" <= ch <= "\udfff" for ch in s):
        s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    pattern = _CONTROL if keep_newlines else _CONTROL_NO_NL
    if keep_newlines:
        s = s.replace("\r\n", "\n")
    out = pattern.sub(_escape, s)
    return out if keep_newlines else out.replace("\\x09", "\t")


def has_undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def utf8_argument(ctx: Any, param: Any, value: Any) -> Any:
    """click callback: refuse text arguments that are not UTF-8 (one value or a tuple of them)."""
    import click

    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, str) and (has_undecodable(v) or any("\ud800" <= ch <= "\udfff" for ch in v)):
            shown = v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
                if has_undecodable(v) else v.encode("utf-8", "backslashreplace").decode("utf-8")
            raise click.BadParameter(f"'{shown}' contains bytes that are not UTF-8 text; type it in UTF-8")
    return value


#: the largest record id SQLite can store (a signed 64-bit integer)
MAX_RECORD_ID = 2**63 - 1
