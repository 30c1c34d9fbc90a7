"""The public API of stimscript.load/loads -> CheckedProtocol -> compile/resolve (the README's Python API)."""
import hashlib
from fractions import Fraction
from pathlib import Path

import pytest

import stimscript
from stimscript import LOOPBACK_PROFILE, DeviceProfile
from stimscript.compiler.model import ResolvedSession
from stimscript.compiler.schedule import Schedule
from stimscript.units import Quantity

from .test_semantics import DESIGN_EXAMPLE

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.stim"))


@pytest.fixture(scope="module")
def proto():
    return stimscript.loads(DESIGN_EXAMPLE, name="tka.stim")


def test_checked_protocol_fields(proto):
    assert proto.source_name == "tka.stim"
    assert proto.sha256 == hashlib.sha256(DESIGN_EXAMPLE.encode()).hexdigest()
    assert proto.title == "Quadriceps NMES after total knee arthroplasty"
    assert proto.header["reference"].startswith("Stevens-Lapsley")
    assert (proto.plan.sessions_per_week, proto.plan.weeks, proto.plan.total_sessions) == (14, 6, 84)
    p = proto.params["intensity"]
    assert p.default == Quantity.of(40, "mA") and p.range == (Quantity.of(10, "mA"), Quantity.of(100, "mA"))
    assert p.description == "maximum tolerated"
    assert [c.name for c in proto.channels] == ["quad"] and proto.channels[0].site == "vastus_medialis"
    assert proto.channels[0].side == "right" and proto.channels[0].electrodes == ("prox", "dist")
    assert proto.profile is LOOPBACK_PROFILE
    assert list(proto.sessions()) == list(range(1, 85))
    assert all(not w.is_error for w in proto.warnings)


def test_compile_returns_schedule(proto):
    sched = proto.compile(session=15, params={"intensity": "45 mA"})
    assert isinstance(sched, Schedule)
    assert (sched.session, sched.week, sched.title, sched.source_name) == (15, 2, proto.title, "tka.stim")
    assert sched.sha256 == proto.sha256 and sched.profile is LOOPBACK_PROFILE
    assert sched.params == {"intensity": Quantity.of(45, "mA")}
    assert sched.channels[0].amplitude_ua == 45_000 and sched.channels[0].param == "intensity"
    assert sched.pulses["amplitude_ua"].max() == 45_000
    assert sched.segments[0].label == "repeat 15 × contraction"


def test_resolve_returns_resolved_session(proto):
    r = proto.resolve(session=3)
    assert isinstance(r, ResolvedSession) and (r.session, r.week) == (3, 1)
    use = r.uses[0]
    assert use.amplitude_ua == 40_000 and use.frequency_hz == 50 and use.on_us == 15_000_000
    assert use.ramp_up_us == 3_000_000 and use.block == 0
    assert [e.area_cm2 for e in use.electrodes] == [Fraction(9652, 100)] * 2
    lines = DESIGN_EXAMPLE.splitlines()
    assert use.spans["line"].line == lines.index("        quad: contraction") + 1
    assert use.spans["electrodes"].line == lines.index("    electrodes prox -> dist") + 1
    assert use.spans["amplitude"].line == lines.index("    amplitude intensity") + 1
    assert r.params["intensity"] == Quantity.of(40, "mA")


def test_param_overrides_strings_and_quantities(proto):
    a = proto.compile(params={"intensity": "45 mA"})
    b = proto.compile(params={"intensity": Quantity.of(45, "mA")})
    c = proto.compile(params={"intensity": "45mA"})
    assert a.counts() == b.counts() == c.counts() and a.trains == b.trains == c.trains


def test_param_errors(proto):
    with pytest.raises(stimscript.ParamError, match="did you mean `intensity`"):
        proto.compile(params={"intensty": "45 mA"})
    with pytest.raises(stimscript.ParamError, match="expected current, found frequency"):
        proto.compile(params={"intensity": "45 Hz"})
    with pytest.raises(stimscript.ParamError, match="S007"):
        proto.compile(params={"intensity": "101 mA"})
    with pytest.raises(stimscript.ParamError):
        proto.compile(params={"intensity": "lots"})
    assert issubclass(stimscript.ParamError, stimscript.StimscriptError)


@pytest.mark.parametrize("session", [0, -1, 85, 1000])
def test_session_outside_plan(proto, session):
    with pytest.raises(stimscript.PlanError, match="S015"):
        proto.compile(session=session)


def test_devices():
    assert stimscript.loads(DESIGN_EXAMPLE, device="loopback").profile is LOOPBACK_PROFILE
    small = DeviceProfile(name="small", max_current_ua=30_000)
    with pytest.raises(stimscript.SafetyError):
        stimscript.loads(DESIGN_EXAMPLE, device=small)
    with pytest.raises(stimscript.StimscriptError):
        stimscript.loads(DESIGN_EXAMPLE, device="no-such-device")


def test_load_file_and_bytes(tmp_path):
    path = tmp_path / "tka.stim"
    path.write_bytes(DESIGN_EXAMPLE.encode())
    proto = stimscript.load(path)
    assert proto.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert proto.source_name == str(path)
    assert stimscript.compiler.load(str(path)).compile().counts() == {1: 11235}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_check_and_compile(path):
    proto = stimscript.load(path)
    sched = proto.compile()
    assert sched.duration_us > 0 and len(sched) > 0


def test_safe_range_stops_live_intensity_below_any_safety_error():
    """The runtime's intensity clamp: the highest current that still passes every rule (here S010)."""
    from fractions import Fraction

    proto = stimscript.loads(
        "param intensity = 40 mA in 10 mA .. 120 mA\n"
        "electrode a 1 cm x 2 cm\nelectrode b 5 cm x 5 cm\n"
        "channel q 1 { site tibialis_anterior; electrodes a -> b; pulse biphasic 400 us; frequency 200 Hz;"
        " amplitude 80% intensity }\n"
        "cycle c { ramp up 1 s; hold 5 s; rest 5 s }\nsession { repeat 3 { q: c } }\n")
    low, high = proto.safe_range("intensity")
    # 80 % of 98.82 mA is 79.056 mA: 200 delivered pulses of 79056 µA in the worst second stay within
    # 0.25 W/cm²; at 98.821 mA each pulse rounds to 79057 µA and the delivered power density exceeds it
    assert str(low) == "10 mA" and str(high) == "98.82 mA"
    proto.compile(params={"intensity": high})
    with pytest.raises(stimscript.SafetyError) as info:
        proto.compile(params={"intensity": stimscript.Quantity(high.value + Fraction(1, 10**6), high.dim)})
    assert info.value.code == "S010"
    # a roomy protocol keeps its declared range
    assert [str(q) for q in stimscript.load(Path(__file__).parent.parent / "examples" / "tka_quadriceps.stim").safe_range("intensity")] == \
        ["10 mA", "100 mA"]
