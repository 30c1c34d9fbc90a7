"""How safety findings are worded and collected: numbers for messages (exact where they can be), the
collector that deduplicates diagnostics, span look-ups on a channel use, and the recorder of per-use finding
templates the safety memo replays. Shared by every safety rule module (safety, limits, overlap, delivered_rules).
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from ..errors import Diagnostic, Related
from ..formatting import duration_words
from ..spans import Span
from ..units import format_number
from .model import ChannelUse, ElectrodeInfo, ResolvedSession
from .rules import RULES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional


# --- formatting ------------------------------------------------------------------------------------
def fmt(value, sig: int = 3, *, differ_from=None) -> str:
    """``value`` with ``sig`` significant digits, plain decimal notation.

    When ``differ_from`` is given and the rounded text would read as exactly that number (while the value is
    not), more digits are shown: "2.0004 mA/cm² exceeds 2 mA/cm²", never "2 exceeds 2".
    """
    exact_value = value if isinstance(value, Fraction) else None
    x = float(value)
    if math.isinf(x) or math.isnan(x):
        return str(x)
    if exact_value is not None and exact_value.denominator == 1 and abs(exact_value) < 10**15:
        return str(exact_value.numerator)
    text = "0"
    for digits in range(sig, 16):
        text = _round_sig(x, digits)
        if differ_from is None or Fraction(text) != Fraction(differ_from) or x == float(differ_from):
            break
    return text


def _round_sig(x: float, digits: int) -> str:
    if x == 0:
        return "0"
    d = Decimal(repr(x))
    q = round(d, max(0, digits - d.adjusted() - 1))  # never round away integer digits
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _ma(ua) -> str:
    if type(ua) is int:       # the delivered amplitudes: whole µA, the same few values week after week
        got = _MA_TEXT.get(ua)
        if got is None:
            got = num(Fraction(ua) / 1000) + " mA"
            if len(_MA_TEXT) < 4096:
                _MA_TEXT[ua] = got
        return got
    return num(Fraction(ua) / 1000) + " mA"


_MA_TEXT: dict[int, str] = {}


def num(value, sig: int = 3, *, differ_from=None) -> str:
    """An exact decimal when ``value`` has one with at most 6 decimals (8.414, 300.006), else :func:`fmt`."""
    if isinstance(value, Fraction):
        scaled = value * 10**6
        if scaled.denominator == 1:
            return format_number(value)
    return fmt(value, sig, differ_from=differ_from)


def _area(a) -> str:
    return format_number(Fraction(a), 2) + " cm²"


def _seconds(us: int) -> str:
    return format_number(Fraction(us, 10**6)) + " s"


def _duration(us: int | Fraction) -> str:
    """A session length for humans: '30 min', '25 h 0 min 1 s', '45 s' (stimscript.formatting)."""
    return duration_words(us)


# --- collecting ---------------------------------------------------------------------------------
class _Collector:
    def __init__(self, suffix: str):
        self.suffix = suffix
        self.items: list[Diagnostic] = []
        self._seen: set = set()

    def add(self, code: str, message: str, span: Optional[Span] = None, *, hint: Optional[str] = None,
            related: Iterable[Optional[Related]] = (), week: bool = True) -> None:
        key = (code, message, _span_key(span))
        if key in self._seen:
            return
        self._seen.add(key)
        rel = tuple([r for r in related if r is not None and r.span is not None and r.span != span]) if related else ()
        self.items.append(make_diagnostic(code, message + (self.suffix if week else ""), span, RULES[code].severity,
                                          hint, rel))


def make_diagnostic(code: str, message: str, span: Optional[Span], severity: str, hint: Optional[str],
                    related: tuple) -> Diagnostic:
    """``Diagnostic(code, message, span, severity=severity, hint=hint, related=related)``: the same object,
    made without the frozen dataclass's field-by-field ``__init__`` (every week of a plan makes its findings
    anew; the fields are already what ``__init__`` would store)."""
    if not _DIAGNOSTIC_PLAIN:   # pragma: no cover - Diagnostic is a plain frozen dataclass with a __dict__ today
        return Diagnostic(code, message, span, severity=severity, hint=hint, related=related)
    new = _new(Diagnostic)
    new.__dict__.update({"code": code, "message": message, "span": span, "severity": severity, "hint": hint,
                         "related": related})
    return new


_new = object.__new__
#: Diagnostic keeps its fields in its __dict__, in this order, and does nothing else when made
_DIAGNOSTIC_PLAIN = ("__slots__" not in Diagnostic.__dict__ and not hasattr(Diagnostic, "__post_init__")
                     and Diagnostic.__new__ is object.__new__)


def _span_key(span: Optional[Span]):
    if span is None:
        return None
    return (span.file, span.line, span.column, span.end_line, span.end_column)


def _span(use: ChannelUse, *keys: str) -> Optional[Span]:
    for key in (*keys, "line", "channel"):
        span = use.spans.get(key) if use.spans else None
        if span is not None:
            return span
    return None


def _related_electrode(e: ElectrodeInfo) -> Optional[Related]:
    if e.span is None:
        return None
    return Related(f"electrode `{e.name}` ({_area(e.area_cm2)}) is declared here", e.span)



def _week_suffix(resolved: ResolvedSession, show_week: Optional[bool]) -> str:
    if show_week is None:
        plan_weeks = getattr(resolved, "plan_weeks", None) or getattr(resolved, "weeks", None) or 0
        show_week = resolved.week > 1 or (isinstance(plan_weeks, int) and plan_weeks > 1)
    return f" (week {resolved.week})" if show_week else ""


def _ch(use: ChannelUse) -> str:
    return f"channel `{use.channel}` ({use.number})"


class _Recorder:
    """Collects one use's findings as templates: (code, message, span keys, hint, related specs, week).

    A span is recorded as the keys of :func:`_span`; a related note as ``("elec", i)`` (the use's i-th
    electrode), ``("limit", i)`` (the session's i-th limit) or ``("use", text, key)`` (the use's span
    ``key``), so the same template serves every use with the same values.
    """

    def __init__(self):
        self.items: list = []

    def add(self, code: str, message: str, keys: tuple, *, hint: Optional[str] = None, related: Iterable = (),
            week: bool = True) -> None:
        self.items.append((code, message, keys, hint, tuple(related), week))

