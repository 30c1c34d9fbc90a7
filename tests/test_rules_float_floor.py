"""A float's comparison with an exact threshold through the largest float below it (delivered_rules._float_floor) is
the exact comparison with the Fraction itself, for every float (infinities and NaN included) and every threshold:
the delivered rules decide whether a channel's worst second needs the exact pass this way once per channel."""
from __future__ import annotations

import math
from fractions import Fraction as F

from hypothesis import given
from hypothesis import strategies as st

from stimscript.compiler.delivered_rules import _float_floor

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308]))
fractions = st.one_of(st.fractions(), st.integers(-(10**400), 10**400).map(F),
                      st.floats(allow_nan=False, allow_infinity=False).map(F),
                      st.tuples(st.integers(1, 10**30), st.integers(1, 10**30)).map(lambda t: F(*t)))


@given(floats, fractions)
def test_a_float_is_at_most_the_floor_exactly_when_it_is_at_most_the_fraction(x, threshold):
    assert (x <= _float_floor(threshold)) == (x <= threshold)


@given(fractions)
def test_the_floor_is_the_largest_float_at_most_the_fraction(threshold):
    f = _float_floor(threshold)
    if math.isinf(f) or f == 1.7976931348623157e308:
        return
    assert F(f) <= threshold < F(math.nextafter(f, math.inf))
