"""The live envelope (CheckedProtocol.live_param / Schedule.live): which params may change during a run, on
which outputs, and how far — checked on the pulses those values would deliver."""
from __future__ import annotations

from fractions import Fraction as F

import stimscript
from stimscript import Quantity
from stimscript.compiler import expand_py

BASE = """stimscript 1
param intensity = 40 mA in 10 mA .. 120 mA
param f = 50 Hz in 20 Hz .. 80 Hz
electrode a 1 cm x 2 cm
electrode b 5 cm x 5 cm
electrode c2 5 cm x 5 cm
channel q 1 {{ site tibialis_anterior; electrodes a -> b; pulse biphasic 400 us; frequency 200 Hz; amplitude {amp} }}
channel r 2 {{ site tibialis_anterior; electrodes b -> c2; pulse biphasic 400 us; frequency f; amplitude 30 mA }}
cycle c {{ ramp up 1 s; hold {hold}; rest 5 s }}
session {{ repeat 3 {{ q: c
 r: c }}
{extra} }}
"""


def proto(amp="80% intensity", hold="5 s", extra=""):
    return stimscript.loads(BASE.format(amp=amp, hold=hold, extra=extra), name="live.stim")


def test_a_following_channel_is_scaled_and_a_fixed_one_is_not():
    p = proto()
    lp = p.live_param("intensity")
    assert lp.adjustable and lp.channels == (1,) and lp.fixed == (2,) and lp.mixed == ()
    assert lp.channel_scales(Quantity.of(60, "mA")) == {1: F(3, 2), 2: F(1)}
    # the top is what passes every rule on the delivered pulses (power density on 2 cm²)
    assert str(lp.high) == "98.82 mA"
    assert lp.max_ua == {1: 79_056}
    assert lp.scale(Quantity.of(500, "mA")) == lp.high.value / lp.value.value  # clamped


def test_the_top_of_the_envelope_is_safe_on_delivered_pulses_and_one_microamp_more_is_not():
    p = proto()
    lp = p.live_param("intensity")
    sched = p.compile(params={"intensity": lp.high})
    pulses = sched.pulses
    assert int(pulses[pulses["channel"] == 1]["amplitude_ua"].max()) == lp.max_ua[1]
    try:
        p.compile(params={"intensity": Quantity(lp.high.value + F(1, 10**6), lp.high.dim)})
    except stimscript.SafetyError as err:
        assert err.code == "S010"
    else:
        raise AssertionError("one µA above the envelope compiled")


def test_a_frequency_param_is_not_live():
    lp = proto().live_param("f")
    assert not lp.adjustable and "not a current" in lp.reason
    assert lp.low == lp.high == lp.value


def test_a_current_that_drives_a_time_is_not_live():
    p = proto(hold="intensity / 1 mA * 100 ms")
    lp = p.live_param("intensity")
    assert not lp.adjustable and "time" in lp.reason
    assert p.safe_range("intensity") == (lp.value, lp.value)


def test_a_channel_with_a_fixed_override_line_is_mixed_and_never_scaled():
    p = proto(extra="repeat 1 { q: c with amplitude 110 mA }".replace("110", "10"))
    lp = p.live_param("intensity")
    assert lp.mixed == (1,) and 1 not in lp.channels and not lp.adjustable


def test_an_affine_amplitude_is_not_live():
    lp = proto(amp="intensity + 5 mA").live_param("intensity")
    assert not lp.adjustable and "proportional" in lp.reason


def test_schedule_live_comes_from_its_protocol():
    sched = proto().compile()
    assert set(sched.live) == {"intensity", "f"}
    assert sched.live["intensity"].channels == (1,)
    from stimscript.compiler.schedule import Schedule

    assert Schedule.from_trains(sched.trains, sched.shapes).live == {}


def test_every_reachable_value_keeps_following_channels_proportional():
    p = proto()
    lp = p.live_param("intensity")
    base = p.compile().trains
    for mA in (10, 25, 40, 77):
        trains = p.compile(params={"intensity": f"{mA} mA"}).trains
        for a, b in zip(base, trains):
            ratio = F(b.amp_num, b.amp_den) / F(a.amp_num, a.amp_den)
            assert ratio == (lp.scale(Quantity.of(mA, "mA")) if a.channel in lp.channels else 1)
    assert expand_py  # the reference expander is what the envelope's peaks were measured against
