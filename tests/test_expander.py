"""The Cython expander against the pure-Python reference, bit for bit, and the selector's switches.

The differential tests skip when the extension is not built; ``test_extension_loaded_when_required``
fails instead when ``STIMSCRIPT_REQUIRE_EXTENSIONS=1`` (CI), so a broken build cannot pass silently.
"""
from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from stimscript.compiler import expand_py, expander
from stimscript.compiler.ir import PULSE_DTYPE, Train

US = 1_000_000


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype == PULSE_DTYPE
    assert got.shape == want.shape
    for name in PULSE_DTYPE.names:
        assert np.array_equal(got[name], want[name]), f"field {name} differs"


def make_train(channel=1, start=0, cycles=1, on=10 * US, up=0, down=0, rest=0, hz=Fraction(50),
               amp=Fraction(40_000), shape=0, cycle_us=None) -> Train:
    period = Fraction(US) / Fraction(hz)
    amp = Fraction(amp)
    return Train(channel=channel, start_us=start, cycles=cycles,
                 cycle_us=on + rest if cycle_us is None else cycle_us, on_us=on, ramp_up_us=up,
                 ramp_down_us=down, period_num=period.numerator, period_den=period.denominator,
                 amp_num=amp.numerator, amp_den=amp.denominator, shape=shape)


# --- strategies -------------------------------------------------------------------------------------
@st.composite
def frequencies(draw) -> Fraction:
    """1..1000 Hz, integer or not (33.3 Hz, 1000/7 Hz, ...)."""
    den = draw(st.sampled_from([1, 1, 2, 3, 7, 10, 100]))
    return Fraction(draw(st.integers(den, 1000 * den)), den)


@st.composite
def amplitudes(draw) -> Fraction:
    den = draw(st.sampled_from([1, 1, 2, 3, 7, 1000]))
    small = draw(st.booleans())  # tiny amplitudes make ramps drop zero-amplitude slots
    top = 20 if small else 120_000
    return Fraction(draw(st.integers(1, top * den)), den)


@st.composite
def trains_on(draw, channel: int, start: int) -> Train:
    hz = draw(frequencies())
    on = draw(st.integers(0, 1_500_000))
    up = draw(st.one_of(st.just(0), st.integers(0, on)))
    down = draw(st.one_of(st.just(0), st.integers(0, on - up)))
    rest = draw(st.one_of(st.just(0), st.integers(0, 2 * US)))
    return make_train(channel=channel, start=start, cycles=draw(st.integers(1, 3)), on=on, up=up, down=down,
                      rest=rest, hz=hz, amp=draw(amplitudes()), shape=draw(st.integers(0, 3)))


@st.composite
def train_lists(draw) -> list[Train]:
    """1-8 channels, each with one or two non-overlapping trains, in a shuffled order."""
    channels = draw(st.lists(st.integers(1, 8), min_size=1, max_size=8, unique=True))
    trains = []
    for ch in channels:
        t = draw(st.integers(0, 300_000))
        for _ in range(draw(st.integers(1, 2))):
            tr = draw(trains_on(ch, t))
            trains.append(tr)
            t = tr.end_us + draw(st.integers(0, 50_000))
    return draw(st.permutations(trains))


@st.composite
def windows(draw, trains: list[Train]) -> tuple[int, int]:
    end = max(tr.end_us for tr in trains)
    if draw(st.booleans()):
        return 0, end
    t0 = draw(st.integers(-1000, end + 1000))
    return t0, draw(st.integers(t0 + 1, end + 2000))


@st.composite
def odd_trains(draw) -> list[Train]:
    """Parameters a checker would reject (overlapping cycles, ramps longer than the on-phase, negative
    amplitudes, same-channel ties, sub-µs periods): the twins must still agree on every one."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        num = draw(st.integers(1, 5000))
        den = draw(st.integers(1, 2 * num))       # period >= 0.5 µs keeps the reference finite
        out.append(Train(channel=draw(st.integers(0, 2)), start_us=draw(st.integers(-5000, 5000)),
                         cycles=draw(st.integers(-1, 3)), cycle_us=draw(st.integers(-200, 4000)),
                         on_us=draw(st.integers(-5, 3000)), ramp_up_us=draw(st.integers(-10, 4000)),
                         ramp_down_us=draw(st.integers(-10, 4000)), period_num=num, period_den=den,
                         amp_num=draw(st.integers(-200_000, 200_000)), amp_den=draw(st.integers(1, 1000)),
                         shape=draw(st.integers(0, 2))))
    return out


# --- selector -----------------------------------------------------------------------------------------
def _selector_in_subprocess(tmp_path, **env_extra) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIMSCRIPT_")}
    env.update(env_extra)
    code = "from stimscript.compiler import expander as e; print(e.USING_EXTENSION, e.impl.__name__)"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_extension_loaded_when_required():
    """CI sets STIMSCRIPT_REQUIRE_EXTENSIONS=1: then the Cython twin must really be the one in use."""
    if not _flag("STIMSCRIPT_REQUIRE_EXTENSIONS") or _flag("STIMSCRIPT_NO_EXTENSIONS"):
        pytest.skip("STIMSCRIPT_REQUIRE_EXTENSIONS is not set")
    assert expander.USING_EXTENSION is True
    assert expander.impl.__name__ == "stimscript.ext._expand"
    assert expander.expand is expander.impl.expand and expander.count is expander.impl.count


def test_no_extensions_flag_in_this_session():
    if not _flag("STIMSCRIPT_NO_EXTENSIONS"):
        pytest.skip("STIMSCRIPT_NO_EXTENSIONS is not set")
    assert expander.USING_EXTENSION is False
    assert expander.impl is expand_py


def test_no_extensions_flag_forces_reference(tmp_path):
    assert _selector_in_subprocess(tmp_path, STIMSCRIPT_NO_EXTENSIONS="1") == "False stimscript.compiler.expand_py"


def test_require_flag_loads_extension(tmp_path):
    pytest.importorskip("stimscript.ext._expand")
    out = _selector_in_subprocess(tmp_path, STIMSCRIPT_REQUIRE_EXTENSIONS="1")
    assert out == "True stimscript.ext._expand"


# --- differential -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ext():
    return pytest.importorskip("stimscript.ext._expand")


@given(data=st.data())
def test_expand_bit_identical(ext, data):
    trains = data.draw(train_lists())
    t0, t1 = data.draw(windows(trains))
    assert_same(ext.expand(trains, t0, t1), expand_py.expand(trains, t0, t1))


@given(data=st.data())
def test_count_identical(ext, data):
    trains = data.draw(train_lists())
    t0, t1 = data.draw(windows(trains))
    assert ext.count(trains, t0, t1) == expand_py.count(trains, t0, t1)


@given(trains=odd_trains(), t0=st.integers(-20_000, 20_000), length=st.integers(1, 40_000))
@example(trains=[make_train(channel=1, on=1000, hz=1000, shape=0), make_train(channel=1, on=1000, hz=1000, shape=1),
                 make_train(channel=1, on=1000, hz=500, amp=7, shape=2)], t0=0, length=5000)
def test_odd_parameters_identical(ext, trains, t0, length):
    t1 = t0 + length
    assert_same(ext.expand(trains, t0, t1), expand_py.expand(trains, t0, t1))
    assert ext.count(trains, t0, t1) == expand_py.count(trains, t0, t1)


def test_same_channel_ties_keep_reference_order(ext):
    """Overlapping trains on one channel tie on (t, channel): the order must be heapq.merge's (stable)."""
    a = make_train(channel=3, on=200_000, hz=100, amp=1000, shape=1)
    b = make_train(channel=3, on=200_000, hz=50, amp=2000, shape=2)
    c = make_train(channel=2, on=200_000, hz=100, amp=3000, shape=3)
    for trains in ([a, b, c], [b, a, c], [c, b, a]):
        got = ext.expand(trains, 0, 10**9)
        assert_same(got, expand_py.expand(trains, 0, 10**9))
    assert len(got) == 20 + 10 + 20


def test_overflowing_products_take_the_reference_path(ext):
    """Unreduced rationals whose products exceed 2**62 must still give the reference's integers."""
    big = 10**15
    slow_period = Train(channel=1, start_us=0, cycles=2, cycle_us=3 * US, on_us=US, ramp_up_us=300_000,
                        ramp_down_us=200_000, period_num=20_000 * big, period_den=big, amp_num=45_000,
                        amp_den=1, shape=0)
    slow_amp = Train(channel=2, start_us=123, cycles=2, cycle_us=3 * US, on_us=US, ramp_up_us=300_000,
                     ramp_down_us=200_000, period_num=10_000, period_den=1, amp_num=45_001 * big,
                     amp_den=3 * big, shape=1)
    fast = make_train(channel=3, start=77, cycles=2, on=US, up=250_000, down=100_000, rest=2 * US,
                      hz=Fraction(333, 10), amp=Fraction(90_001, 2))
    trains = [slow_period, slow_amp, fast]
    for t0, t1 in [(0, 10 * US), (500_000, 3_700_000), (-(2**70), 2**70)]:
        assert_same(ext.expand(trains, t0, t1), expand_py.expand(trains, t0, t1))
        assert ext.count(trains, t0, t1) == expand_py.count(trains, t0, t1)


def test_huge_times_identical(ext):
    far = make_train(channel=1, start=2**60, on=100_000, hz=1000, amp=5)
    near = make_train(channel=2, start=0, on=100_000, hz=1000, amp=5)
    for t0, t1 in [(2**60, 2**60 + 10**6), (0, 2**62), (-(2**63), 2**63), (2**55, 2**61)]:
        assert_same(ext.expand([far, near], t0, t1), expand_py.expand([far, near], t0, t1))
        assert ext.count([far, near], t0, t1) == expand_py.count([far, near], t0, t1)


def test_reference_errors_are_reproduced(ext):
    bad_channel = make_train(channel=300, on=10_000, hz=1000)
    with pytest.raises(OverflowError):
        expand_py.expand([bad_channel], 0, US)
    with pytest.raises(OverflowError):
        ext.expand([bad_channel], 0, US)
    zero_den = Train(channel=1, start_us=0, cycles=1, cycle_us=10, on_us=10, ramp_up_us=0, ramp_down_us=0,
                     period_num=1, period_den=1, amp_num=1, amp_den=0, shape=0)
    with pytest.raises(ZeroDivisionError):
        expand_py.expand([zero_den], 0, 100)
    with pytest.raises(ZeroDivisionError):
        ext.expand([zero_den], 0, 100)


def test_empty_inputs(ext):
    for trains, t0, t1 in [([], 0, 10), ([make_train()], 5, 5), ([make_train()], 10, 0),
                           ([make_train(cycles=0)], 0, 10**9)]:
        assert_same(ext.expand(trains, t0, t1), expand_py.expand(trains, t0, t1))
        assert ext.count(trains, t0, t1) == expand_py.count(trains, t0, t1)
