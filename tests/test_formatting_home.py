"""stimscript/formatting.py is the one home of the formatters the plot, the live display, the setup sheet and
``info`` used to keep for themselves: each now goes through it and writes the same bytes as before.

The oracles below are the private formatters as those modules had them (written out here, independent of the
code under test); hypothesis compares them with the shared ones over their whole input range.
"""
from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from stimscript import formatting as F


# --- the formatters as the modules had them ------------------------------------------------------------
def old_plot_hz(f) -> str:
    f = Fraction(f)
    if f == 0:
        return ""
    if f.denominator == 1:
        return f"{f.numerator} Hz"
    return f"{float(f):.4g} Hz"


def old_plot_us(us: float) -> str:
    if us >= 1000 and us % 1000 == 0:
        return f"{us / 1000:g} ms"
    return f"{us:g} µs"


def old_plot_ma(ua: float) -> str:
    return f"{ua / 1000:.3g} mA" if ua < 10_000 else f"{ua / 1000:.4g} mA"


def old_plot_s(seconds: float) -> str:
    return f"{seconds:.3g} s"


def old_plot_title_duration(duration_us: int) -> str:
    mins, secs = divmod(round(duration_us / 1e6), 60)
    hours, mins = divmod(mins, 60)
    return f"{hours} h {mins:02d} min" if hours else (f"{mins} min {secs:02d} s" if mins else f"{secs} s")


def old_live_mmss(us: int) -> str:
    s = max(0, int(us)) // 1_000_000
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def old_sheet_clock(us: int) -> str:
    total = us // 1_000_000
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def old_sheet_us(value: int) -> str:
    return f"{value} µs" if value < 1000 else F.duration_text(value)


def old_info_number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}g}"


MICROS = st.integers(min_value=0, max_value=10**11)           # up to ~28 h, the longest legal session and more
PHASES = st.integers(min_value=1, max_value=2_000_000)
CURRENTS = st.integers(min_value=0, max_value=200_000)        # µA
FREQUENCIES = st.fractions(min_value=Fraction(1, 100), max_value=Fraction(20_000), max_denominator=10**6)


@given(FREQUENCIES)
def test_plot_frequencies(f):
    assert F.hz(f, kilo=False) == old_plot_hz(f)


@given(st.one_of(PHASES, PHASES.map(float)))
def test_plot_pulse_times(us):
    assert F.us_or_ms(us) == old_plot_us(us)


@given(st.one_of(CURRENTS, st.floats(min_value=0, max_value=200_000, allow_nan=False)))
def test_plot_currents(ua):
    assert F.ma_label(ua) == old_plot_ma(ua)


@given(st.floats(min_value=0, max_value=10**5, allow_nan=False))
def test_plot_seconds(s):
    assert F.seconds_label(s) == old_plot_s(s)


@given(MICROS)
def test_plot_title_duration(us):
    assert F.two_units(us) == old_plot_title_duration(us)


@given(st.one_of(MICROS, st.integers(min_value=-10**7, max_value=0)))
def test_live_clock(us):
    assert F.duration(us, pad_minutes=True) == old_live_mmss(us)


@given(MICROS)
def test_sheet_clock(us):
    assert F.duration(us) == old_sheet_clock(us)


@given(PHASES)
def test_sheet_pulse_times(us):
    assert F.pulse_time(us) == old_sheet_us(us)


@given(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                 st.fractions(max_denominator=10**6)), st.integers(min_value=1, max_value=6))
def test_info_numbers(value, digits):
    assert F.significant(value, digits) == old_info_number(value, digits)


def test_the_face_writes_microseconds_with_the_micro_sign():
    """People read 'µs' everywhere (the ASCII 'us' belongs to the protocol language)."""
    for text in (F.us(250), F.us_or_ms(250), F.pulse_time(250), F.duration_text(80), F.exact_duration(30)):
        assert text.endswith(" µs") and " us" not in text
