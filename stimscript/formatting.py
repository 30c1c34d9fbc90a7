"""How values are written for people: currents (mA), short times (µs), frequencies (Hz), durations and clock
times — the one home of these formatters.

Every command, display, sheet and plot goes through these, so the same value reads the same everywhere:
currents in mA (exact to the µA, no trailing zeros), pulse times in µs (never the ASCII ``us`` of the protocol
language), durations as ``m:ss``/``h:mm:ss`` or in words, and wall-clock times in the computer's local zone
**with the UTC offset shown** (records store UTC). Where a view has less room (plot labels) a shorter, rounded
form is here too, named for that use, so no module writes its own. (Checked quantities in diagnostics, with
their units, are written by ``compiler/evaluate.py``'s ``fmt``.)
"""
from __future__ import annotations

from fractions import Fraction

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as _dt


def ma(ua: int | float | None) -> str:
    """µA -> '45 mA', '45.5 mA', '0.01 mA' (exact to the µA; '–' for None)."""
    if ua is None:
        return "–"
    return f"{ma_number(ua)} mA"


def ma_number(ua: int | float) -> str:
    """µA -> '45', '45.5', '0.001' (the number of mA without unit, exact to the µA)."""
    ua = int(round(ua))
    sign = "-" if ua < 0 else ""
    whole, frac = divmod(abs(ua), 1000)
    return f"{sign}{whole}" + (f".{frac:03d}".rstrip("0") if frac else "")


def ma_label(ua: float) -> str:
    """µA -> '45 mA', '12.35 mA', '1.23 mA': rounded to 3 significant digits below 10 mA and 4 from there (plot
    labels, where the exact :func:`ma` would not fit)."""
    return f"{ua / 1000:.3g} mA" if ua < 10_000 else f"{ua / 1000:.4g} mA"


def us(value: int | None) -> str:
    """µs -> '250 µs' ('–' for None)."""
    return "–" if value is None else f"{int(value)} µs"


def us_or_ms(value_us: float) -> str:
    """µs -> '250 µs', '1500 µs', '5 ms': whole milliseconds in ms, anything else in µs (pulse phases in plots)."""
    if value_us >= 1000 and value_us % 1000 == 0:
        return f"{value_us / 1000:g} ms"
    return f"{value_us:g} µs"


def pulse_time(value_us: int) -> str:
    """µs -> '250 µs' below a millisecond, else :func:`duration_text` ('1.5 ms', '2 ms'): pulse phases as the
    setup sheet writes them."""
    return f"{value_us} µs" if value_us < 1000 else duration_text(value_us)


def duration(value_us: int | None, *, pad_minutes: bool = False) -> str:
    """µs -> '0:45', '12:03', '1:02:03' (whole seconds, rounded down; '–' for None).

    ``pad_minutes``: '00:45', '05:03' under an hour, as the live display's clock shows them."""
    if value_us is None:
        return "–"
    s = max(0, int(value_us)) // 1_000_000
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}" if pad_minutes else f"{m}:{s:02d}"


def duration_text(value_us: int) -> str:
    """µs -> a length as a person says it: '15 min', '1 h 05 min', '1 min 30 s', '2.5 s', '250 ms', '80 µs'."""
    value_us = int(value_us)
    if value_us < 1000:
        return f"{value_us} µs"
    if value_us < 1_000_000:
        return f"{value_us / 1000:g} ms"
    if value_us < 60_000_000:
        return f"{round(value_us / 1e6, 3):g} s"
    s = round(value_us / 1e6)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min" + (f" {sec:02d} s" if sec else "")
    return f"{m} min" + (f" {sec:02d} s" if sec else "")


def two_units(value_us: int) -> str:
    """µs -> '1 h 05 min', '15 min 00 s', '45 s': the two largest units in whole seconds (a plot's title)."""
    mins, secs = divmod(round(value_us / 1e6), 60)
    hours, mins = divmod(mins, 60)
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min {secs:02d} s" if mins else f"{secs} s"


def hz(value: int | float | Fraction, *, kilo: bool = True) -> str:
    """A frequency (exact Fraction or number) -> '50 Hz', '33.33 Hz', '2.5 kHz' (``kilo=False``: '2500 Hz',
    as plot labels write every channel's frequency in Hz)."""
    f = Fraction(value)
    if kilo and f >= 1000:
        return f"{float(f / 1000):.4g} kHz"
    if f.denominator == 1:
        return f"{f.numerator} Hz"
    return f"{float(f):.4g} Hz"


def seconds(value_us: int) -> str:
    """µs -> '12.345 s' (to the ms) for event logs and exports."""
    return f"{int(value_us) / 1e6:.3f} s"


def seconds_label(value_s: float) -> str:
    """s -> '3 s', '0.25 s', '12.3 s' (3 significant digits: the phases of a contraction in a plot)."""
    return f"{value_s:.3g} s"


def significant(value: float | Fraction | None, digits: int = 3) -> str:
    """A derived number (charge, energy, density, ...) to ``digits`` significant digits: '0.075', '1.2e+03';
    '–' for None (a number that does not apply)."""
    if value is None:
        return "–"
    return f"{float(value):.{digits}g}"


def parse_time(iso: str | None) -> _dt.datetime | None:
    """An ISO 8601 time as stored (with an offset; a naive one is taken as UTC) -> aware datetime."""
    if not iso:
        return None
    import datetime as _dt   # imported where times are read: the checker uses this module without them

    try:
        t = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def local_time(iso: str | None, seconds: bool = False) -> str:
    """A stored time in the computer's zone with its offset: '2026-12-01 15:34 +01:00' ('' for None)."""
    t = parse_time(iso)
    if t is None:
        return iso or ""
    t = t.astimezone()
    off = t.strftime("%z")
    off = f"{off[:3]}:{off[3:]}" if len(off) == 5 else off
    return t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {off}"


def local_iso(iso: str | None) -> str:
    """A stored time as ISO 8601 in the computer's zone (for CSV): '2026-12-01T15:34:05.120+01:00'."""
    t = parse_time(iso)
    if t is None:
        return iso or ""
    return t.astimezone().isoformat(timespec="milliseconds")


def parse_day(text: str, end: bool = False) -> _dt.datetime:
    """'2026-12-01' (local midnight; with ``end`` the next midnight) or a full ISO time -> aware datetime.

    Raises ValueError with a message naming the accepted forms."""
    import datetime as _dt

    text = text.strip()
    try:
        if len(text) == 10:
            d = _dt.date.fromisoformat(text)
            t = _dt.datetime.combine(d, _dt.time()).astimezone()
            return t + _dt.timedelta(days=1) if end else t
        t = _dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a date: write YYYY-MM-DD (e.g. 2026-12-01) "
                         "or YYYY-MM-DD HH:MM") from None
    return t if t.tzinfo is not None else t.astimezone()


def exact_duration(value_us: int) -> str:
    """µs -> the shortest exact spelling, as a protocol writes it: '15 min', '45 s', '1.5 s', '250 ms', '30 µs'
    (block labels such as ``for 15 min``, where a rounded '1 min 30 s' would not say what was written)."""
    for unit, factor in (("h", 3600 * 10**6), ("min", 60 * 10**6), ("s", 10**6), ("ms", 1000)):
        if value_us >= factor and value_us % factor == 0:
            return f"{value_us // factor} {unit}"
    if value_us >= 10**6:
        return f"{value_us / 10**6:g} s"
    if value_us >= 1000:
        return f"{value_us / 1000:g} ms"
    return f"{value_us} µs"


def duration_words(value_us: int | Fraction) -> str:
    """µs -> a session length in words, exact: '30 min', '25 h 0 min 1 s', '45 s', '0.25 s' (safety messages)."""
    s = Fraction(value_us) / 10**6
    if s >= 3600:
        h, rest = divmod(s, 3600)
        m, sec = divmod(rest, 60)
        out = f"{int(h)} h"
        if m or sec:
            out += f" {int(m)} min"
        if sec:
            out += f" {_exact_number(sec)} s"
        return out
    if s >= 60 and s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{_exact_number(s)} s"


def _exact_number(value: Fraction) -> str:
    from .units import format_number

    return format_number(Fraction(value))
