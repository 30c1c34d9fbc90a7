"""Every pass of the safety rules does work linear in the trains (a sort aside): counted, not timed.

The benchmark protocol (benchmarks/bench_check.py ``make_protocol``) is checked at two sizes with the rules'
pure-Python reference (the compiled twin off, so every loop is visible), and the Python lines the rules execute
are counted per function with a trace hook (a deterministic measure of work, unlike time). Going from the small
protocol to the large one multiplies the trains by R; for every function of the rules' modules both the number of
calls and the lines executed per call may grow at most about R-fold: a pass that compares every pair of trains
of a channel, or calls a helper per pair, grows R²-fold in one of the two and fails. The total over all the
rules' functions may grow at most about R-fold too.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter

import pytest

import stimscript
from stimscript.compiler import delivered as D
from stimscript.compiler import safety

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the modules the safety rules live in
RULE_FILES = {os.path.join(ROOT, "compiler", name) for name in (
    "safety.py", "delivered.py", "delivered_rules.py", "overlap.py", "energy.py", "limits.py", "findings.py",
    "rules.py")}

pytestmark = pytest.mark.usefixtures("fresh_safety_memos")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_check", os.path.join(ROOT, "benchmarks", "bench_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _work(text: str) -> tuple[Counter, Counter, int]:
    """(line events per function, calls per function, trains over all weeks) of check_safety on every week."""
    proto = stimscript.loads(text, "linear.stim")
    weeks = [proto._weeks[w].resolved for w in sorted(proto._weeks)]
    weeks = [r for r in weeks if r is not None]
    lines: Counter = Counter()
    calls: Counter = Counter()
    files: dict = {}

    def local(frame, event, arg):
        if event == "line":
            lines[frame.f_code] += 1
        return local

    def glob(frame, event, arg):
        code = frame.f_code
        mine = files.get(code.co_filename)
        if mine is None:
            mine = files[code.co_filename] = os.path.realpath(code.co_filename) in RULE_FILES
        if not mine:
            return None
        calls[code] += 1
        return local

    saved = D._twin
    D._twin = None            # the reference loop: every iteration is a traced line
    safety.clear_caches()
    sys.settrace(glob)
    try:
        for resolved in weeks:
            safety.check_safety(resolved)
    finally:
        sys.settrace(None)
        D._twin = saved
    return lines, calls, sum(len(r.trains) for r in weeks)


def test_every_rule_pass_grows_linearly_with_the_trains():
    bench = _bench()
    small_lines, small_calls, small_trains = _work(bench.make_protocol(700, 12))
    big_lines, big_calls, big_trains = _work(bench.make_protocol(2100, 12))
    r = big_trains / small_trains
    assert r > 2.5, r            # the sizes differ enough for R² to stand out from R
    slack = 1.5 * r
    grew = []
    for code, n in big_lines.items():
        if n < 2000:
            continue             # a pass this small at the large size cannot hide a quadratic one
        name = f"{os.path.basename(code.co_filename)}:{code.co_name}"
        c0, c1 = small_calls.get(code, 0), big_calls[code]
        l0 = small_lines.get(code, 0)
        if not c0 or not l0:
            grew.append(f"{name}: runs only at the large size ({c1} calls, {n} lines)")
            continue
        if c1 / c0 > slack:
            grew.append(f"{name}: calls {c0} -> {c1} ({c1 / c0:.1f}x for {r:.1f}x the trains)")
        per0, per1 = l0 / c0, n / c1
        if per1 / per0 > slack:
            grew.append(f"{name}: lines per call {per0:.0f} -> {per1:.0f} ({per1 / per0:.1f}x for {r:.1f}x the trains)")
    assert not grew, "\n".join(grew)
    total0, total1 = sum(small_lines.values()), sum(big_lines.values())
    assert total1 / total0 <= 1.25 * r, (total0, total1, r)
