"""Extreme numbers in any command: a product or quotient beyond 10^±30 is a positioned E413, never a traceback
(before E413 the safety messages converted such values to floats and overflowed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus" / "semantic"
CASES = sorted(CORPUS.glob("6[5-8]_extreme_*.stim"))


@pytest.mark.parametrize("command", [["check"], ["info"], ["info", "--weeks"], ["compile", "-o", "{out}.npz"],
                                     ["plot", "-o", "{out}.png"], ["sheet", "-o", "{out}.html"],
                                     ["run", "--fast", "--db", "{out}.sqlite"]])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_extreme_values_are_a_positioned_error_in_every_command(tmp_path, command, case):
    expect = case.read_text(encoding="utf-8").splitlines()[0].split()   # "# expect: E413 LINE:COL"
    args = [a.replace("{out}", str(tmp_path / "out")) for a in command]
    r = subprocess.run([sys.executable, "-m", "stimscript.cli", *args, str(case)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, STIMSCRIPT_DB=str(tmp_path / "r.sqlite")))
    assert "Traceback" not in r.stderr + r.stdout
    assert r.returncode == 1
    assert f"{case.name}:{expect[3]}: error[{expect[2]}]" in r.stderr + r.stdout
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())   # nothing written
