"""The one error hierarchy and the diagnostic renderer.

Every user-facing problem is a :class:`Diagnostic` with a stable code, rendered as::

    FILE:LINE:COL: error[CODE]: message
      3 | channel quad 1 {
        |         ^^^^
      = hint: ...
    FILE:LINE:COL: note: first defined here

A :class:`ProtocolError` carries all the diagnostics of one file so that one run reports them all.
"""
from __future__ import annotations

import re
from .valueclass import dataclass

from .spans import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence


@dataclass(frozen=True)
class Related:
    """A second place a diagnostic points at (pyyaml's 'context mark')."""

    message: str
    span: Span


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    severity: str = "error"  # "error" | "warning"
    hint: str | None = None
    related: tuple[Related, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        return render_diagnostic(self)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.render()


#: characters shown as U+FFFD in a quoted source line (compiled on the first diagnostic: start-up of `check`)
_CONTROL_PATTERN = r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


def _caret_block(span: Span) -> list[str]:
    text = span.source.line(span.line)
    gutter = str(span.line)
    pad = " " * len(gutter)
    width = (span.end_column - span.column) if span.end_line == span.line else len(text) - span.column + 1
    width = max(1, min(width, max(1, len(text) - span.column + 1)))
    # one column per character, and nothing in the file drives the terminal (escape sequences, bidi overrides)
    shown = re.sub(_CONTROL_PATTERN, "\ufffd", text.replace("\t", " "))
    return [f" {pad} |", f" {gutter} | {shown}", f" {pad} | " + " " * (span.column - 1) + "^" * width]


def render_diagnostic(d: Diagnostic) -> str:
    from .textsafe import for_terminal

    where = f"{for_terminal(d.span)}: " if d.span is not None else ""
    lines = [f"{where}{d.severity}[{d.code}]: {for_terminal(d.message)}"]
    if d.span is not None:
        lines += _caret_block(d.span)
    if d.hint:
        lines.append(f"   = hint: {for_terminal(d.hint)}")
    for rel in d.related:
        lines.append(f"{for_terminal(rel.span)}: note: {for_terminal(rel.message)}")
        lines += _caret_block(rel.span)
    return "\n".join(lines)


class StimscriptError(Exception):
    """Root of every error stimscript raises on purpose."""


class ProtocolError(StimscriptError):
    """A protocol file is wrong; carries one or more positioned diagnostics."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic] | str, *,
                 code: str = "E000", span: Span | None = None, hint: str | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(code, diagnostics, span, hint=hint)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(self.render())

    @property
    def first(self) -> Diagnostic:
        errors = [d for d in self.diagnostics if d.is_error]
        return (errors or self.diagnostics)[0]

    @property
    def code(self) -> str:
        return self.first.code

    @property
    def file(self) -> str | None:
        return self.first.span.file if self.first.span else None

    @property
    def line(self) -> int | None:
        return self.first.span.line if self.first.span else None

    @property
    def column(self) -> int | None:
        return self.first.span.column if self.first.span else None

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics if d.is_error]

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class ProtocolSyntaxError(ProtocolError):
    """The text is not StimScript (lexing/parsing)."""


class ProtocolSemanticError(ProtocolError):
    """The text parses but means nothing valid: unknown names, wrong units, bad values."""


class SafetyError(ProtocolError):
    """A protocol (or a runtime request) would break a safety rule of docs/safety.md or a device limit."""


class ParamError(StimscriptError):
    """A compile/run-time param override is unknown, malformed or outside its range."""


class PlanError(StimscriptError):
    """A session number outside the protocol's plan."""


class DriverError(StimscriptError):
    """Anything that goes wrong talking to a device."""


class DeviceNotFound(DriverError):
    """No device matched (unknown driver name, no USB device with that VID/PID/serial)."""


class DeviceTimeout(DriverError):
    """The device did not answer in time."""


class DeviceFault(DriverError):
    """The device reported a fault (electrode, over-limit, watchdog)."""


class ProtocolMismatch(DriverError):
    """The device speaks a wire-protocol version or framing we do not understand."""
