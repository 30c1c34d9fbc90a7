"""The seams of issue 14 that the face relies on: ``info``'s safety numbers come from the read API, and every
value they show follows from the session's own pulses (charge per phase = amplitude × leading phase width)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

import stimscript

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.stim"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_pulse_numbers_follow_from_the_delivered_pulses(path):
    proto = stimscript.load(path)
    d = proto.describe()
    sched = proto.compile()
    pulses = sched.pulses
    rows = d.pulse_numbers
    assert [r.number for r in rows] == sorted(r.number for r in rows)
    assert {r.number for r in rows} == {c.number for c in d.channels}
    for ch in d.channels:
        mine = [r for r in rows if r.number == ch.number]
        # the largest amplitude a row names is the channel's peak in the pulse array (at full output)
        delivered = pulses[pulses["channel"] == ch.number]
        if len(delivered):
            assert max(r.metrics.amplitude_ua for r in mine) == int(delivered["amplitude_ua"].max())
        for r in mine:
            # the largest charge of one phase, from the phases themselves (relative amplitude × duration)
            biggest = max(abs(Fraction(a)) * d for d, a in ch.pulse.phases)
            assert r.metrics.charge_per_phase_uc == abs(Fraction(r.metrics.amplitude_ua)) * biggest / 10**6
            smaller = min(e.area_cm2 for e in (ch.cathode, ch.anode) if e is not None)
            assert r.metrics.area_cm2 == smaller
    # one row per distinct (channel, amplitude, frequency, pulse)
    keys = [(r.number, r.metrics.amplitude_ua, r.metrics.frequency_hz) for r in rows]
    assert len(keys) == len(set(keys))


def test_info_writes_a_time_param_in_microseconds_like_its_range(tmp_path):
    """The Parameters table of ``info``: value and range in the same words ('300 µs', never the ASCII 'us')."""
    from click.testing import CliRunner

    from stimscript.cli import cli

    text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
    text = text.replace('param intensity = 40 mA in 10 mA .. 100 mA "maximum tolerated"',
                        'param intensity = 40 mA in 10 mA .. 100 mA "maximum tolerated"\n'
                        'param width = 300 us in 200 us .. 400 us "phase width"')
    text = text.replace("pulse biphasic 250 us gap 50 us", "pulse biphasic width gap 50 us")
    path = tmp_path / "width.stim"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["info", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "width" in line and "phase width" in line)
    assert "300 µs" in row and "200 µs .. 400 µs" in row and " us" not in row


@pytest.mark.parametrize("freq, code", [("150 Hz", "D002"), ("0.05 Hz", "D003")])
def test_the_driver_refuses_with_the_words_check_uses(freq, code):
    """A device rule is decided once (programs/fidelity.py): the ScienceMode driver's refusal of an unchecked
    schedule names the same code and says the same words as ``stimscript check --device p24``."""
    from stimscript.drivers.sciencemode.emulator import ScienceModeEmulator
    from stimscript.errors import DriverError
    from stimscript.programs.fidelity import check_protocol

    text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
    text = text.replace("frequency 50 Hz", f"frequency {freq}").replace("ramp up 3 s", "ramp up 0 s")
    proto = stimscript.loads(text, name="p.stim")           # checked for the loopback: the device is not known
    (diag,) = [d for d in check_protocol(proto, "p24") if d.is_error]
    assert diag.code == code
    words = diag.message.split(": ", 1)[1]                  # after "channel `quad`: "
    with stimscript.open_device("p24", emulator=ScienceModeEmulator("p24"), max_current_ma=60) as dev:
        with pytest.raises(DriverError) as info:
            dev.prepare(proto.compile())
    assert f"{words} ({code};" in str(info.value)


def test_the_atlas_advice_writes_microseconds_with_the_micro_sign():
    """The atlas's placement advice reaches the setup sheet as it is written: µs, as everywhere people read."""
    import dataclasses
    import re

    from stimscript.compiler.atlas import load_atlas

    ascii_unit = re.compile(r"\d\s*(us|uA|uC)\b")
    for entry in load_atlas().values():
        for field in dataclasses.fields(entry):
            value = getattr(entry, field.name)
            assert not (isinstance(value, str) and ascii_unit.search(value)), (entry.name, field.name, value)


def test_every_folder_of_modules_is_a_package_the_wheel_ships():
    """setup.py ships the packages find_packages sees: a folder of modules without ``__init__.py`` would be left
    out of a wheel (stimscript/live and stimscript/sheet once were, so ``pip install .`` lost them)."""
    import ast as pyast

    tree = pyast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    stages = next(pyast.literal_eval(n.value) for n in tree.body if isinstance(n, pyast.Assign)
                  and any(getattr(t, "id", None) == "SUBPACKAGES" for t in n.targets))
    missing = []
    for top in ["stimscript", *stages]:
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(folder.glob("*.py")):
                continue
            if not (folder / "__init__.py").exists():
                missing.append(folder.relative_to(ROOT).as_posix())
    assert not missing, f"folders of modules without __init__.py (not shipped in a wheel): {missing}"
