"""The evaluator's shortcuts for literals give what the general path gives.

``Evaluator.time_us`` turns a time literal into whole µs with integer arithmetic, and ``Evaluator.whole`` takes a
plain whole literal at once; every other value (and every literal that fails a check) goes through the general
path (a Quantity, its dimension, its sign, rounding half to even), which also writes the diagnostics. The oracle
here is written in the test: the literal's exact value in µs rounded half to even by hand, and the same
evaluator on an expression that is not a literal (``-(-x)``) for the diagnostics.
"""
from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.compiler.evaluate import Evaluator
from stimscript.dsl import ast

#: µs per unit, written out here (not taken from the code under test)
US_PER = {"us": 1, "µs": 1, "μs": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000}


def _half_even(x: Fraction) -> int:
    floor = x.numerator // x.denominator
    rest = x - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def _diags(sink):
    return [(d.code, d.message, d.hint) for d in sink]


values = st.one_of(
    st.fractions(min_value=-10**4, max_value=10**4, max_denominator=10**7),
    st.integers(-5, 5).map(lambda n: Fraction(2 * n + 1, 2_000_000)),     # exactly half a µs: ties
    st.integers(-3, 3).map(lambda n: Fraction(n, 3_000_000)),            # below one µs
)


@settings(max_examples=400, deadline=None)
@given(value=values, unit=st.sampled_from(sorted(US_PER) + ["mA", "Hz", None, "%"]), positive=st.booleans())
def test_time_literals_equal_the_general_path(value, unit, positive):
    literal = ast.Number(value, unit)
    fast_sink: list = []
    fast = Evaluator({}, fast_sink).time_us(literal, "the time", positive=positive)
    slow_sink: list = []
    slow = Evaluator({}, slow_sink).time_us(ast.Neg(ast.Neg(literal)), "the time", positive=positive)
    assert fast == slow
    assert _diags(fast_sink) == _diags(slow_sink)
    if unit in US_PER:
        exact = value * US_PER[unit]
        us = _half_even(exact)
        ok = us > 0 if positive else exact >= 0
        assert fast == (us if ok else None)
        assert bool(fast_sink) == (not ok)
    else:
        assert fast is None and fast_sink   # not a time: E301


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.integers(-3, 10**6).map(Fraction), st.fractions(-5, 50, max_denominator=7)),
       unit=st.sampled_from([None, "s", "%"]), minimum=st.integers(0, 3))
def test_whole_literals_equal_the_general_path(value, unit, minimum):
    literal = ast.Number(value, unit)
    fast_sink: list = []
    fast = Evaluator({}, fast_sink).whole(literal, "the count", minimum)
    slow_sink: list = []
    slow = Evaluator({}, slow_sink).whole(ast.Neg(ast.Neg(literal)), "the count", minimum)
    assert fast == slow
    assert _diags(fast_sink) == _diags(slow_sink)
    if unit is None:
        assert fast == (int(value) if value.denominator == 1 and value >= minimum else None)


def test_a_time_from_a_param_is_rounded_like_a_literal():
    ev = Evaluator({"t": Evaluator({}, []).value(ast.Number(Fraction(5, 2), "us"))}, [])
    assert ev.time_us(ast.Name("t"), "the time") == 2 == ev.time_us(ast.Number(Fraction(5, 2), "us"), "the time")
    assert ev.time_us(ast.Number(Fraction(7, 2), "us"), "the time") == 4


# --- `with amplitude NAME` / `P% NAME`: the checker's shortcut (checker._plain_microamps) ------------------
@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.fractions(min_value=-1, max_value=1, max_denominator=10**6),
                       st.sampled_from([Fraction(10**32), Fraction(1, 10**33), Fraction(0)])),
       percent=st.one_of(st.fractions(min_value=-200, max_value=10**4, max_denominator=1000),
                         st.sampled_from([Fraction(10**35), Fraction(1, 10**35)])),
       form=st.sampled_from(["name", "percent"]), dim=st.sampled_from(["current", "time"]),
       broken=st.booleans())
def test_the_amplitude_shortcut_equals_the_evaluator(value, percent, form, dim, broken):
    """A param's value (A) of a current or another dimension, broken or not, any share: the shortcut gives the
    µA the evaluator gives (``non_negative(e, CURRENT, ...)`` times 10^6) when the evaluator reports nothing,
    and None otherwise (then the evaluator decides, in place)."""
    from stimscript.compiler.checker import _plain_microamps
    from stimscript.units import CURRENT, TIME, Quantity

    q = Quantity(value, CURRENT if dim == "current" else TIME)
    name = ast.Name("a")
    e = name if form == "name" else ast.PercentOf(percent, name)
    sink: list = []
    ev = Evaluator({"a": q}, sink, broken={"a"} if broken else set())
    expected_q = ev.non_negative(e, CURRENT, "the overriding amplitude")
    expected = expected_q.value * 10**6 if expected_q is not None and not sink else None
    got = _plain_microamps(e, Evaluator({"a": q}, [], broken={"a"} if broken else set()))
    if got is not None:
        assert got == expected
    if expected is None:
        assert got is None
