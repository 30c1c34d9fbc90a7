"""Checking stays linear in the input: the rules decided per train (S012's "is output already running here?")
look at the trains running around each start, not at every pair of trains.

The verdicts are checked against an oracle that expands every train with the schedule expander; the linearity
is checked by counting the exact look-ups, not by timing (benchmarks/bench_check.py prints the time table)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.compiler import delivered as D
from stimscript.compiler import delivered_rules as R
from stimscript.compiler.schedule import Schedule
from stimscript.pulses import PulseShape, Train

SHAPES = (PulseShape(((200, 1.0), (200, -1.0)), "biphasic"),)
THRESHOLD = 10_000


@st.composite
def trains(draw):
    out = []
    for _ in range(draw(st.integers(1, 6))):
        period_us = draw(st.sampled_from([10_000, 20_000, 33_333, 250_000, 700_000]))
        on_us = draw(st.integers(1, 1_500_000))
        ramp_up = draw(st.sampled_from([0, 0, 5_000, 100_000, on_us // 2]))
        cycle_us = on_us + draw(st.sampled_from([0, 1, 300_000, 1_200_000]))
        out.append(Train(1, draw(st.integers(0, 5_000_000)), draw(st.integers(1, 4)), cycle_us, on_us,
                         min(ramp_up, on_us), 0, period_us, 1, draw(st.sampled_from([5_000, 20_000, 40_000])), 1, 0))
    return out


def oracle(trs: list[Train]) -> set[int]:
    """Trains (by index) whose first pulse is above the threshold while another train of the channel delivered
    a pulse within the second before it — measured on each train's own expanded pulses."""
    pulses = [Schedule.from_trains([tr], SHAPES).pulses for tr in trs]
    out = set()
    for i, p in enumerate(pulses):
        if not len(p) or int(p["amplitude_ua"][0]) <= THRESHOLD:
            continue
        a = int(p["t_us"][0])
        for j, q in enumerate(pulses):
            t = q["t_us"]
            if j != i and ((t < a) & (t >= a - D.WINDOW_US)).any():
                out.add(i)
                break
    return out


@settings(max_examples=150, deadline=None)
@given(trains())
def test_output_already_running_is_decided_as_the_expanded_pulses_say(trs):
    facts = [D.train_facts(i, tr, SHAPES) for i, tr in enumerate(trs)]
    live = [tf for tf in facts if tf.per_cycle]
    got = {live[k].index for k in R._continuing(live, THRESHOLD)}
    assert got == oracle(trs)


def _protocol(blocks: int) -> str:
    lines = ["stimscript 1", "electrode a 5 cm x 9 cm", "electrode b 5 cm x 9 cm",
             "channel quad 1 { site vastus_medialis; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; "
             "amplitude 30 mA }",
             "cycle short { ramp up 10 ms; hold 200 ms; rest 300 ms }", "session {"]
    lines += ["    repeat 1 { quad: short }"] * blocks
    return "\n".join(lines + ["}"]) + "\n"


def test_the_look_ups_grow_linearly_with_the_blocks(monkeypatch):
    """One channel, n blocks one after another, each starting without an effective ramp: each start needs
    the last onset of the few trains still running before it, not of all n (n² look-ups before)."""
    calls = []
    real = D.prev_onset

    def counting(tf, a):
        calls.append(a)
        return real(tf, a)

    monkeypatch.setattr(D, "prev_onset", counting)
    counts = {}
    for n in (50, 200):
        calls.clear()
        proto = stimscript.loads(_protocol(n), name=f"blocks{n}.stim")
        counts[n] = len(calls)
        # the first block starts the output (S012); every later one continues it within a second
        assert [w.code for w in proto.warnings] == ["S012"]
    assert counts[200] <= 4 * counts[50] + 8, counts
    assert counts[200] <= 3 * 200, counts
