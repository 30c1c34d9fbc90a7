"""The one-pass forms of the delivered-pulse measurements equal the measurements they replace.

``delivered.channel_spacing`` is ``measure_channel(..., need_window=False)`` in one pass over the trains in onset
order; ``energy.ShapeFacts`` sums the phases in integers over a common denominator. Each is compared with the
reference written the plain way: the measurement with every memo off, the sums of Fractions in the test.
"""
from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stimscript.compiler import delivered as D
from stimscript.compiler import energy as E
from stimscript.compiler import safety
from stimscript.compiler.ir import PulseShape, Train
from tests.strategies import channel_trains as channel

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHAPES = (PulseShape(((200, 1.0), (200, -1.0)), "biphasic"),
          PulseShape(((250, 1.0), (50, 0.0), (1000, -0.25)), "asymmetric"))


pytestmark = pytest.mark.usefixtures("fresh_safety_memos")




def _measure(facts, budget):
    try:
        return D.measure_channel(1, facts, need_window=False, need_spacing=True, budget=budget).spacing
    except D.BudgetExceeded as exc:
        return ("budget", exc.needed)


def _one_pass(facts, budget):
    try:
        return D.channel_spacing(facts, budget)
    except D.BudgetExceeded as exc:
        return ("budget", exc.needed)


@settings(max_examples=300, **SETTINGS)
@given(channel(), st.sampled_from([D.EXPANSION_BUDGET, 50]), st.integers(0, 2_000_000))
def test_channel_spacing_equals_the_measurement(trains, budget, shift):
    facts = [D.train_facts(i, tr, SHAPES) for i, tr in enumerate(trains)]
    live = [tf for tf in facts if tf.k_hi > tf.k_lo]
    if not live:
        return
    before = safety.set_cache_enabled(False)
    try:
        plain = _measure(live, budget)
    finally:
        safety.set_cache_enabled(before)
    assert _one_pass(live, budget) == plain
    assert _one_pass(live, budget) == plain                     # memo of the interleaved stretches warm
    # the same lines moved along the session: the memo answers, moved by the same amount
    moved = [Train(tr.channel, tr.start_us + shift, *[getattr(tr, f) for f in (
        "cycles", "cycle_us", "on_us", "ramp_up_us", "ramp_down_us", "period_num", "period_den", "amp_num",
        "amp_den", "shape")]) for tr in trains]
    mfacts = [tf for tf in (D.train_facts(i, tr, SHAPES) for i, tr in enumerate(moved)) if tf.k_hi > tf.k_lo]
    got = _one_pass(mfacts, budget)
    before = safety.set_cache_enabled(False)
    try:
        assert got == _measure(mfacts, budget)
    finally:
        safety.set_cache_enabled(before)


PHASE = st.tuples(st.integers(0, 20_000), st.one_of(
    st.sampled_from([1.0, -1.0, 0.0, -0.25, 0.1, -0.99, 1.5, 0.333]), st.fractions(-3, 3, max_denominator=50),
    st.integers(-2, 2)))


@settings(max_examples=300, **SETTINGS)
@given(st.lists(PHASE, max_size=12))
def test_shape_facts_equal_the_sums_of_fractions(phases):
    shape = PulseShape(tuple(phases), "custom")
    facts = E.shape_facts(shape)
    ph = [(int(d), E.exact(r)) for d, r in phases]
    assert facts.phases == tuple(ph)
    assert facts.net_sum == sum((r * d for d, r in ph), F(0))
    assert facts.sq_sum_us == sum((d * r * r for d, r in ph), F(0))
    assert facts.max_rd == max((abs(r) * d for d, r in ph), default=None)
    # the per-phase definitions (ShapeFacts reads each phase's numerator and denominator once, in integers)
    assert facts.current == tuple((i, d, r) for i, (d, r) in enumerate(ph) if r != 0)
    assert facts.peak_factor == max(max((abs(r) for _, r in ph), default=F(1)), F(1))
    net, first = abs(sum((r * d for d, r in ph), F(0))), (abs(ph[0][1]) * ph[0][0] if ph else None)
    assert facts.net_ratio == (F(0) if not ph else net / first if first else net if net == 0 else max(net, F(1)))
    cur = [(i, d) for i, (d, r) in enumerate(ph) if r != 0]
    assert facts.short == (min(cur, key=lambda p: p[1]) if cur else None)
    assert facts.long == (max(cur, key=lambda p: p[1]) if cur else None)
    for value in (facts.net_sum, facts.sq_sum_us, facts.max_rd, facts.peak_factor, facts.net_ratio):
        assert value is None or type(value) is F
    # with the memos off (a new ShapeFacts every time) the same
    before = safety.set_cache_enabled(False)
    try:
        plain = E.shape_facts(shape)
    finally:
        safety.set_cache_enabled(before)
    for name in ("phases", "current", "net_sum", "net_ratio", "peak_factor", "sq_sum_us", "max_rd", "short",
                 "long"):
        assert getattr(plain, name) == getattr(facts, name)
