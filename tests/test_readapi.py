"""The typed read API (``CheckedProtocol.describe``): what sheets, plots and ``info`` read instead of the AST.

Every number is checked against an independent count on the session's own pulse array, for every example.
"""
from __future__ import annotations

import ast as pyast
import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import stimscript

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.stim"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_blocks_and_channels_match_the_pulses(path):
    proto = stimscript.load(path)
    d = proto.describe()
    sched = proto.compile()
    pulses = sched.pulses
    # channels: one per output, pulse totals as counted on the pulse array
    assert [c.number for c in d.channels] == sorted({int(c) for c in np.unique(pulses["channel"])} |
                                                     {c.number for c in sched.channels})
    for ch in d.channels:
        assert ch.pulses == int((pulses["channel"] == ch.number).sum())
        assert ch.cathode is not None and ch.anode is not None and ch.cathode.area_cm2 > 0
    # blocks: the segments in time order; each row is what that channel delivers inside the block
    assert [(b.start_us, b.end_us) for b in d.blocks] == [(s.start_us, s.end_us) for s in sched.segments]
    for b in d.blocks:
        window = pulses[(pulses["t_us"] >= b.start_us) & (pulses["t_us"] < b.end_us)]
        seen = {int(c): int(n) for c, n in zip(*np.unique(window["channel"], return_counts=True))}
        assert {bc.number: bc.pulses for bc in b.channels if bc.pulses} == seen
        for bc in b.channels:
            mine = window[window["channel"] == bc.number]
            if len(mine):
                # the block's full amplitude bounds every pulse in it, and the hold reaches it (to the µA)
                assert int(mine["amplitude_ua"].max()) <= round(bc.amplitude_ua)
            if len(mine) > 1:
                gaps = np.diff(mine["t_us"].astype(np.int64))
                period = Fraction(10**6) / bc.frequency_hz
                assert int(gaps.min()) in (int(period), -(-period.numerator // period.denominator))
        if b.kind == "pause":
            assert len(window) == 0 and not b.channels
    # the described objects are frozen values
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.channels[0].name = "x"  # type: ignore[misc]


def test_contractions_cycles_sites_electrodes_and_weeks():
    proto = stimscript.load(ROOT / "examples" / "template_sets_quadriceps.stim")
    d = proto.describe(session=1)
    contraction = next(c for c in d.cycles if c.name == "contraction")
    assert (contraction.ramp_up_us, contraction.hold_us, contraction.ramp_down_us, contraction.rest_us) == \
        (1_000_000, 8_000_000, 1_000_000, 20_000_000)
    work = [b for b in d.blocks if b.kind == "block"]
    assert [b.label for b in work] == [f"set {k}/3 · repeat 10 × contraction" for k in (1, 2, 3)]
    assert all(bc.contractions == 10 for b in work for bc in b.channels)
    # the week's progression is applied: week 3 holds 10 s
    later = proto.describe(session=proto.plan.sessions_of(3)[0])
    assert later.week == 3 and next(c for c in later.cycles if c.name == "contraction").hold_us == 10_000_000
    assert d.weeks.targets == ("contraction.hold",)
    assert d.progression == ("week 3..: contraction.hold = 10 s", "week 4: contraction.hold = 6 s")
    site = d.channels[0].site
    assert site is not None and site.side == "right" and site.atlas is not None and "right side" in site.text
    assert {e.size_text for e in d.electrodes} == {"7.6 cm × 12.7 cm"}


def test_overrides_and_params_reach_the_description():
    proto = stimscript.load(ROOT / "examples" / "template_warmup_strength_cooldown.stim")
    d = proto.describe(params={"intensity": "50 mA"})
    warm, work, cool = d.blocks
    assert [bc.frequency_hz for bc in warm.channels] == [5, 5]
    assert [bc.amplitude_ua for bc in warm.channels] == [12_500, 12_500]      # 25% intensity
    assert [bc.amplitude_ua for bc in work.channels] == [50_000, 50_000]
    assert all(bc.cycle.continuous for bc in cool.channels)
    assert d.channels[0].amplitude_text == "intensity" and d.channels[0].param == "intensity"
    assert d.channels[0].pulse_text == "biphasic 300 us gap 50 us"


OWNED_READERS = ["stimscript/sheet", "stimscript/plotting", "stimscript/commands/info.py",
                 "stimscript/commands/plot.py", "stimscript/commands/sheet.py", "stimscript/live",
                 "stimscript/recordview.py", "stimscript/research"]


def _python_files(rel: str):
    p = ROOT / rel
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@pytest.mark.parametrize("rel", OWNED_READERS)
def test_readers_do_not_touch_the_ast(rel):
    """The sheet, the plot and info read protocols through the typed API only: no import of the AST or the
    formatter, no ``.ast`` attribute, no type names compared as strings."""
    for path in _python_files(rel):
        tree = pyast.parse(path.read_text(encoding="utf-8"))
        for node in pyast.walk(tree):
            if isinstance(node, pyast.ImportFrom):
                assert "dsl" not in (node.module or ""), f"{path}: imports {node.module}"
            if isinstance(node, pyast.Attribute):
                assert node.attr != "ast", f"{path}:{node.lineno}: reads .ast"
                assert node.attr != "__name__" or not isinstance(node.value, pyast.Call), \
                    f"{path}:{node.lineno}: compares type names"
