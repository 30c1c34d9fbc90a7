"""Device timing models, the periodic lowering and the fidelity report (offline, no hardware)."""
from __future__ import annotations

import json
from fractions import Fraction

import pytest
from click.testing import CliRunner

import stimscript
from stimscript.cli import cli
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.schedule import Schedule
from stimscript.programs.fidelity import check_protocol, fidelity
from stimscript.programs.models import MODELS, model_for, snap_period
from stimscript.programs.periodic import lower_periodic, timeline
from stimscript.runtime.records import RecordStore, SessionRecord

TKA = "examples/tka_quadriceps.stim"


def protocol(freq="50 Hz", pulse="biphasic 250 us gap 50 us", amp="40 mA", channels=1, ramp="1 s", extra=""):
    chans = "\n".join(f"""channel c{i} {i} {{
    site vastus_medialis right
    electrodes a{i} -> b{i}
    pulse {pulse}
    frequency {freq}
    amplitude {amp}
}}
electrode a{i} 5 cm x 9 cm
electrode b{i} 5 cm x 9 cm""" for i in range(1, channels + 1))
    names = ", ".join(f"c{i}" for i in range(1, channels + 1))
    return f"""stimscript 1
{extra}
{chans}
cycle k {{ ramp up {ramp}; hold 2 s; rest 2 s }}
session {{ repeat 2 {{ {names}: k }} }}
"""


def test_period_grids_of_the_two_models():
    # the vendor's own example: 30 Hz is 33.333 ms; 0.5 ms grid -> 33.5 ms, 0.25 ms grid -> 33.25 ms
    p = Fraction(10**6, 30)
    assert snap_period(MODELS["rehamove3"], p) == (33_500, False)
    assert snap_period(MODELS["p24"], p) == (33_250, True)
    assert snap_period(MODELS["p24"], Fraction(20_000)) == (20_000, False)


def test_tka_report_on_p24_counts_and_onset():
    rep = fidelity(stimscript.load(TKA).compile(), "p24")
    (t,) = rep.trains
    assert (t.channel, t.period_us, t.device_period_us, t.rate_error_pct) == (1, 20_000, 20_000, 0)
    assert t.on_phases == 15 and t.pulses_per_on_phase == 749
    assert t.device_pulses_per_on_phase[0] <= 749 <= t.device_pulses_per_on_phase[1]
    lat0, lat1 = MODELS["p24"].update_latency_us
    assert t.onset_uncertainty_us == (lat0, lat1 + 20_000)
    assert t.device_amplitude_ua == 40_000 and t.points == 3 and t.shape_exact
    assert 0 < t.ramp_staircase_ua <= 1000     # a 3 s ramp to 40 mA by updates: within two current steps
    assert not rep.exact and rep.family == "periodic"
    assert json.loads(rep.to_json())["trains"][0]["pulses_per_on_phase"] == 749


def test_streamed_devices_are_exact():
    rep = fidelity(stimscript.load(TKA).compile(), "loopback")
    assert rep.exact and rep.trains[0].device_pulses_per_on_phase == (749, 749)


def test_30hz_rate_error_and_quantised_current():
    s = stimscript.loads(protocol(freq="30 Hz", amp="40.3 mA")).compile()
    rm3, p24 = fidelity(s, "rehamove3").trains[0], fidelity(s, "p24").trains[0]
    assert rm3.device_period_us == 33_500 and rm3.rate_error_pct == pytest.approx(-0.4975, abs=1e-3)
    assert p24.device_period_us == 33_250 and p24.rate_error_pct == pytest.approx(0.2506, abs=1e-3)
    assert p24.device_amplitude_ua == 40_500 and p24.amplitude_step_ua == 500
    assert not p24.shape_exact or p24.device_amplitude_ua != p24.amplitude_ua


def test_low_level_follows_the_host_clock():
    s = stimscript.loads(protocol()).compile()
    t = fidelity(s, "p24", mode="low-level").trains[0]
    assert t.device_pulses_per_on_phase == (t.pulses_per_on_phase,) * 2
    assert t.onset_uncertainty_us[1] == MODELS["p24/low-level"].update_latency_us[1] + MODELS["p24/low-level"].host_jitter_us


def test_lowering_switches_on_at_the_first_pulse_and_off_at_the_on_phase_end():
    s = stimscript.loads(protocol(ramp="0 s")).compile()
    phases = lower_periodic(s, MODELS["p24"])
    assert [(p.start_us, p.end_us) for p in phases] == [(0, 2_000_000), (4_000_000, 6_000_000)]
    assert all(p.scheduled_pulses == 100 and len(p.levels) == 1 for p in phases)
    tl = timeline(phases)
    assert [t for t, _ in tl] == [0, 2_000_000, 4_000_000, 6_000_000]
    assert tl[0][1][1].amplitude_ua == 40_000 and tl[1][1] == {}


def test_ramp_levels_are_whole_steps_and_rate_limited():
    s = stimscript.loads(protocol(ramp="1 s")).compile()
    (first, _) = lower_periodic(s, MODELS["p24"])
    times = [t for t, _ in first.levels]
    assert first.start_us == 20_000            # the slot at t = 0 has amplitude 0 and is not emitted
    assert all(b - a >= 20_000 for a, b in zip(times, times[1:]))
    assert first.levels[-1][1] == 40_000      # the hold current is reached


def errors_of(text, device="p24", mode=None):
    return check_protocol(stimscript.loads(text, name="t.stim", device=MODELS[device].profile), device, mode)


def test_d001_burst_with_too_many_points_is_positioned():
    (d,) = errors_of(protocol(pulse="burst 2.5 kHz for 6.4 ms", freq="75 Hz"))
    assert d.code == "D001" and "32 points" in d.message and (d.span.line, d.span.column) == (6, 5)
    assert d.span.source.line(6).strip() == "pulse burst 2.5 kHz for 6.4 ms"


def test_d002_period_off_grid_beyond_tolerance_and_hint_is_on_grid():
    (d,) = errors_of(protocol(freq="150 Hz"), "rehamove3")
    assert d.code == "D002" and d.span.line == 7
    hinted = [x.strip() for x in d.hint.split("e.g. ")[1].split(" or ")]
    assert len(hinted) == 2
    for freq in hinted:   # the hint is a fix that works
        assert errors_of(protocol(freq=freq), "rehamove3") == []
    assert errors_of(protocol(freq="150 Hz"), "p24")[0].code == "D002"   # 6.667 ms -> 6.75 ms: 1.25 % off


def test_d003_rate_beyond_the_model():
    (d,) = errors_of(protocol(freq="0.05 Hz", ramp="0 s"), "p24")
    assert d.code == "D003"


def test_d005_channel_load_over_budget():
    ds = errors_of(protocol(freq="400 Hz", pulse="biphasic 400 us gap 100 us", channels=4, amp="20 mA"), "p24")
    assert [d.code for d in ds] == ["D005"] and "budget 1000" in ds[0].message


def test_d006_low_level_pulse_rate():
    ds = errors_of(protocol(freq="200 Hz", pulse="biphasic 200 us", channels=6, amp="20 mA"), "p24", "low-level")
    assert [d.code for d in ds] == ["D006"]
    assert not errors_of(protocol(freq="200 Hz", pulse="biphasic 200 us", channels=6, amp="20 mA"), "p24")


def test_safety_rules_decided_on_what_the_device_delivers():
    text = protocol(freq="30 Hz", amp="45.3 mA", extra="limits { max current 45.4 mA; max frequency 30 Hz }")
    codes = [(d.code, d.span.line) for d in errors_of(text, "p24")]
    assert ("S006", 8) in codes and ("S006", 7) in codes          # 45.5 mA and 30.08 Hz as delivered
    assert [(d.code, d.span.line) for d in errors_of(text, "rehamove3")] == [("S006", 8)]   # 33.5 ms is slower


def test_model_for_names_and_unknown():
    assert model_for("rehamove3", "low-level").name == "rehamove3/low-level"
    assert model_for("loopback").family == "streamed"
    with pytest.raises(stimscript.DeviceNotFound):
        model_for("pulsepal9000")


def test_cli_check_and_info_with_device(tmp_path):
    r = CliRunner().invoke(cli, ["check", TKA, "--device", "p24"])
    assert r.exit_code == 0 and "fidelity on p24" in r.output and "749 / 748–750" in r.output
    burst = tmp_path / "burst.stim"
    burst.write_text(protocol(pulse="burst 2.5 kHz for 6.4 ms", freq="75 Hz"))
    r = CliRunner().invoke(cli, ["check", str(burst), "--device", "p24"])
    assert r.exit_code == 1 and "error[D001]" in r.output and "^^^" in r.output
    r = CliRunner().invoke(cli, ["info", TKA, "--device", "rehamove3", "--mode", "low-level"])
    assert r.exit_code == 0 and "Fidelity on rehamove3/low-level" in r.output


def test_record_keeps_the_fidelity_report(tmp_path):
    rep = fidelity(stimscript.load(TKA).compile(), "p24")
    with RecordStore(tmp_path / "r.sqlite") as store:
        rec = SessionRecord(title="t", fidelity=rep.as_dict())
        store.begin(rec)
        store.finish(rec)
        back = store.get(rec.id)
    assert back.fidelity == json.loads(rep.to_json())


def test_an_old_database_gains_the_fidelity_column(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    with RecordStore(db) as store:
        store.begin(SessionRecord(title="old"))
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE sessions DROP COLUMN fidelity")
    con.commit()
    con.close()
    with RecordStore(db) as store:
        assert store.get(1).fidelity == {}


def test_public_api():
    rep = stimscript.fidelity(stimscript.load(TKA).compile(), device="rehamove3")
    assert rep.device == "rehamove3" and rep.trains[0].pulses_per_on_phase == 749
