"""Normative semantics (docs/language.md): exact pulse counts, timing, amplitudes and shapes of compiled sessions."""
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import stimscript
from stimscript.compiler.ir import PulseShape

DESIGN_EXAMPLE = (Path(__file__).parent / "data" / "design_example.stim").read_text(encoding="utf-8")

SECONDS = 1_000_000


def channel(name, number, freq="50 Hz", amp="intensity", pulse="biphasic 300 us", site="vastus_medialis"):
    return (f"channel {name} {number} {{\n  site {site} right\n  electrodes e1 -> e2\n  pulse {pulse}\n"
            f"  frequency {freq}\n  amplitude {amp}\n}}\n")


def protocol(channels, cycles, session, extra="", params="param intensity = 40 mA in 0 mA .. 100 mA\n"):
    return ("stimscript 1\nprotocol \"t\" {\n  author \"test\"\n}\n" + params +
            "electrode e1 5 cm x 9 cm\nelectrode e2 5 cm x 9 cm\n" + "".join(channels) + cycles +
            f"session {{\n{session}\n}}\n" + extra)


def compile_(text, **kw):
    return stimscript.loads(text).compile(**kw)


ONE = [channel("quad", 1)]
ON10 = "cycle on10 { hold 10 s; rest 5 s }\n"


# --- worked counts of the language reference ------------------------------------------------------------------------
def test_design_example_counts_and_duration():
    sched = compile_(DESIGN_EXAMPLE)
    assert sched.counts() == {1: 15 * 749}
    assert sched.duration_us == 15 * 60 * SECONDS
    p = sched.pulses
    assert len(p) == 15 * 749
    # first emitted slot of the 3 s ramp at 40 mA: t = 20 000 us -> round(40000 * 20000 / 3e6) = 267 uA
    assert p["t_us"][0] == 20_000 and p["amplitude_ua"][0] == 267
    # every sampled slot is round(A * e(t)) exactly
    for row in p[:: 97]:
        off = int(row["t_us"]) % (60 * SECONDS)
        env = Fraction(off, 3 * SECONDS) if off < 3 * SECONDS else Fraction(1)
        assert row["amplitude_ua"] == round(40_000 * env)
    assert sched.channels[0].param == "intensity"
    assert [s.label for s in sched.segments] == ["repeat 15 × contraction"]
    assert sched.shapes == (PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic"),)


def test_ten_seconds_no_ramp_50hz_gives_500():
    sched = compile_(protocol(ONE, ON10, "repeat 1 { quad: on10 }"))
    assert sched.counts() == {1: 500}
    assert sched.duration_us == 15 * SECONDS
    assert set(sched.pulses["amplitude_ua"]) == {40_000}


def test_ramp_down_last_slots():
    # 1 s ramp down only, 10 Hz: slots 0..0.9 s, e = (1 s - t)/1 s: all > 0 -> 10 pulses, last at 4000 uA
    text = protocol(ONE, "cycle c { ramp down 1 s }\n", "repeat 2 { quad: c }")
    sched = compile_(text.replace("50 Hz", "10 Hz"))
    p = sched.pulses
    assert len(p) == 20 and sched.duration_us == 2 * SECONDS
    assert list(p["amplitude_ua"][:10]) == [40_000 - 4_000 * k for k in range(10)]


# --- blocks --------------------------------------------------------------------------------------
def test_for_runs_whole_cycles_and_lasts_exactly_t():
    cyc = "cycle c { hold 10 s; rest 7 s }\n"   # 17 s cycle
    sched = compile_(protocol(ONE, cyc, "for 1 min { quad: c }"))
    assert sched.duration_us == 60 * SECONDS
    assert sched.counts() == {1: 3 * 500}       # floor(60 / 17) = 3
    assert [s.label for s in sched.segments] == ["for 1 min"]
    after = compile_(protocol(ONE, cyc, "for 1 min { quad: c after 10 s }"))
    assert after.counts() == {1: 2 * 500}      # floor(50 / 17) = 2
    assert after.pulses["t_us"][0] == 10 * SECONDS


def test_for_exact_fit_includes_last_cycle():
    sched = compile_(protocol(ONE, "cycle c { hold 1 s; rest 1 s }\n", "for 10 s { quad: c }"))
    assert sched.counts() == {1: 5 * 50}


def test_continuous_fills_the_block():
    sched = compile_(protocol(ONE, "", "for 10 s { quad: continuous }"))
    assert sched.counts() == {1: 500} and sched.duration_us == 10 * SECONDS
    tr = sched.trains[0]
    assert (tr.cycles, tr.on_us, tr.cycle_us, tr.ramp_up_us) == (1, 10 * SECONDS, 10 * SECONDS, 0)
    late = compile_(protocol(ONE, "", "for 10 s { quad: continuous after 2 s }"))
    assert late.counts() == {1: 400} and late.trains[0].start_us == 2 * SECONDS


def test_pause_and_block_sequence():
    session = "repeat 2 { quad: on10 }\npause 1 min\nfor 30 s { quad: on10 }"
    sched = compile_(protocol(ONE, ON10, session))
    assert sched.duration_us == (30 + 60 + 30) * SECONDS
    assert sched.counts() == {1: 2 * 500 + 2 * 500}
    labels = [(s.label, s.kind, s.start_us, s.end_us) for s in sched.segments]
    assert labels == [("repeat 2 × on10", "block", 0, 30 * SECONDS),
                      ("pause 1 min", "pause", 30 * SECONDS, 90 * SECONDS),
                      ("for 30 s", "block", 90 * SECONDS, 120 * SECONDS)]
    assert sched.trains[1].start_us == 90 * SECONDS


def test_parallel_lines_repeat_ends_with_last_line():
    chans = [channel("quad", 1), channel("hams", 2, site="biceps_femoris")]
    sched = compile_(protocol(chans, ON10, "repeat 3 { quad: on10\n hams: on10 after 7.5 s }\npause 1 s"))
    assert sched.counts() == {1: 1500, 2: 1500}
    assert sched.segments[0].end_us == int(7.5 * SECONDS) + 3 * 15 * SECONDS
    assert sched.duration_us == sched.segments[0].end_us + SECONDS
    both = compile_(protocol(chans, ON10, "repeat 2 { quad, hams: on10 }"))
    assert both.counts() == {1: 1000, 2: 1000}
    t = both.pulses
    assert list(t["channel"][:4]) == [1, 2, 1, 2] and t["t_us"][0] == t["t_us"][1]


def test_multi_channel_sort_by_time_then_channel():
    chans = [channel("b", 5, freq="33.3 Hz"), channel("a", 2, freq="20 Hz")]
    sched = compile_(protocol(chans, ON10, "repeat 1 { b, a: on10 }"))
    p = sched.pulses
    keys = list(zip(p["t_us"].tolist(), p["channel"].tolist()))
    assert keys == sorted(keys)
    assert sched.counts() == {2: 200, 5: 333}
    assert [c.number for c in sched.channels] == [2, 5]
    tr = {t.channel: t for t in sched.trains}
    assert (tr[5].period_num, tr[5].period_den) == (10_000_000, 333)
    assert (tr[5].amp_num, tr[5].amp_den) == (40_000, 1)


def test_line_overrides():
    text = protocol(ONE, ON10, "repeat 1 { quad: on10 with frequency 5 Hz, amplitude 50% intensity, "
                               "pulse monophasic 200 us }")
    sched = stimscript.loads(text + "allow monophasic\n").compile()
    assert sched.counts() == {1: 50}
    assert set(sched.pulses["amplitude_ua"]) == {20_000}
    used = sched.shapes[sched.trains[0].shape]
    assert used == PulseShape(((200, 1.0),), "monophasic")
    # the channel's own settings are unchanged
    assert sched.channels[0].amplitude_ua == 40_000 and sched.channels[0].frequency_hz == 50
    resolved = stimscript.loads(text + "allow monophasic\n").resolve()
    use = resolved.uses[0]
    assert use.amplitude_ua == 20_000 and use.frequency_hz == 5
    assert set(use.spans) >= {"channel", "amplitude", "frequency", "pulse", "electrodes", "line", "cycle"}
    assert use.spans["amplitude"].line == text.splitlines().index(
        next(l for l in text.splitlines() if "with frequency" in l)) + 1


def test_amplitude_expressions():
    for expr, ua in [("intensity / 2 + 5 mA", 25_000), ("(intensity - 10 mA) * 2", 60_000), ("75% intensity", 30_000),
                     ("1500 uA", 1_500), ("33.3% intensity", 13_320)]:
        sched = compile_(protocol([channel("quad", 1, amp=expr)], ON10, "repeat 1 { quad: on10 }"))
        assert sched.channels[0].amplitude_ua == ua, expr
        assert Fraction(sched.trains[0].amp_num, sched.trains[0].amp_den) == ua


def test_periods_are_exact_fractions():
    sched = compile_(protocol([channel("quad", 1, freq="33.3 Hz")], "cycle c { hold 1 h }\n", "repeat 1 { quad: c }"))
    tr = sched.trains[0]
    assert Fraction(tr.period_num, tr.period_den) == Fraction(10**7, 333)
    assert sched.count(1) == 3600 * 333 // 10 + (1 if (3600 * 333) % 10 else 0)


# --- pulse shapes --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,phases,kind", [
    ("monophasic 200 us", ((200, 1.0),), "monophasic"),
    ("biphasic 300 us", ((300, 1.0), (300, -1.0)), "biphasic"),
    ("biphasic 300 us gap 0 us", ((300, 1.0), (300, -1.0)), "biphasic"),
    ("biphasic 250 us gap 50 us", ((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic"),
    ("biphasic 0.2505 ms", ((250, 1.0), (250, -1.0)), "biphasic"),    # 250.5 us rounds half to even
    ("asymmetric 200 us ratio 4", ((200, 1.0), (800, -0.25)), "asymmetric"),
    ("asymmetric 200 us ratio 3 gap 20 us", ((200, 1.0), (20, 0.0), (600, -1 / 3)), "asymmetric"),
    ("burst 2.5 kHz for 6.4 ms", ((200, 1.0), (200, -1.0)) * 16, "burst"),
    ("burst 2.5 kHz for 1 ms", ((200, 1.0), (200, -1.0)) * 2, "burst"),   # round(2.5) = 2
    ("doublet 200 us spacing 5 ms", ((200, 1.0), (200, -1.0), (4600, 0.0), (200, 1.0), (200, -1.0)), "doublet"),
    ("doublet 200 us spacing 400 us", ((200, 1.0), (200, -1.0), (200, 1.0), (200, -1.0)), "doublet"),
    ("shape { 2 for 100 us; 0 for 50 us; -0.5 for 400 us }", ((100, 1.0), (50, 0.0), (400, -0.25)), "custom"),
])
def test_shape_table(spec, phases, kind):
    text = protocol([channel("quad", 1, pulse=spec)], ON10, "repeat 1 { quad: on10 }") + "allow monophasic\n"
    sched = stimscript.loads(text).compile()
    assert sched.shapes[sched.trains[0].shape] == PulseShape(tuple(phases), kind)
    assert sched.shapes[sched.trains[0].shape].phases[0][1] == 1.0


def test_shapes_are_deduplicated():
    chans = [channel("a", 1), channel("b", 2, site="biceps_femoris"), channel("c", 3, pulse="biphasic 200 us")]
    sched = compile_(protocol(chans, ON10, "repeat 1 { a, b, c: on10 }"))
    assert len(sched.shapes) == 2
    assert sched.trains[0].shape == sched.trains[1].shape != sched.trains[2].shape


def test_electrode_area_is_exact():
    text = protocol(ONE, ON10, "repeat 1 { quad: on10 }").replace("electrode e2 5 cm x 9 cm", "electrode e2 25 cm2")
    text = text.replace("electrode e1 5 cm x 9 cm", "electrode e1 7.6 cm x 12.7 cm")
    use = stimscript.loads(text).resolve().uses[0]
    assert [e.area_cm2 for e in use.electrodes] == [Fraction(9652, 100), Fraction(25)]


# --- hypothesis: random valid protocols against an independent count --------------------------------
def _rhe(x: Fraction) -> int:
    return round(x)  # Fraction rounding is half to even


def independent_count(freq: Fraction, amp_ua: Fraction, up: int, hold: int, down: int) -> int:
    """Pulses per cycle straight from the language reference (not via the expander)."""
    on = up + hold + down
    n, k = 0, 0
    while True:
        t = _rhe(k * Fraction(10**6) / freq)
        if t >= on:
            return n
        if up > 0 and t < up:
            e = Fraction(t, up)
        elif down > 0 and t >= on - down:
            e = Fraction(on - t, down)
        else:
            e = Fraction(1)
        if _rhe(amp_ua * e) != 0:
            n += 1
        k += 1


FREQS = ["20 Hz", "33.3 Hz", "50 Hz", "7 Hz", "100 Hz"]


@st.composite
def random_protocol(draw):
    n_ch = draw(st.integers(1, 3))
    numbers = draw(st.lists(st.integers(1, 8), min_size=n_ch, max_size=n_ch, unique=True))
    chans, info = [], {}
    for i, num in enumerate(numbers):
        f = draw(st.sampled_from(FREQS))
        amp = draw(st.integers(0, 60))
        chans.append(channel(f"ch{i}", num, freq=f, amp=f"{amp} mA"))
        info[f"ch{i}"] = (num, Fraction(f.split()[0]), Fraction(amp * 1000))
    n_cyc = draw(st.integers(1, 2))
    cycles, cyc_info = "", {}
    for j in range(n_cyc):
        up, hold, down, rest = (draw(st.integers(0, 20)) for _ in range(4))  # tenths of a second
        if up + hold + down + rest == 0:
            hold = 1
        cycles += f"cycle c{j} {{ ramp up {up / 10} s; hold {hold / 10} s; ramp down {down / 10} s; rest {rest / 10} s }}\n"
        cyc_info[f"c{j}"] = tuple(x * 100_000 for x in (up, hold, down, rest))
    blocks, expected, t = [], {num: 0 for num, _, _ in info.values()}, 0
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["repeat", "for", "pause"]))
        if kind == "pause":
            secs = draw(st.integers(1, 5))
            blocks.append(f"pause {secs} s")
            t += secs * SECONDS
            continue
        names = list(info)
        draw(st.randoms()).shuffle(names)
        lines, block_end = [], 0
        length = draw(st.integers(1, 8)) * SECONDS
        reps = draw(st.integers(1, 3))
        for grp in (names[:1], names[1:]) if len(names) > 1 and draw(st.booleans()) else (names,):
            if not grp:
                continue
            cyc = draw(st.sampled_from(list(cyc_info) + (["continuous"] if kind == "for" else [])))
            after = draw(st.integers(0, 5)) * 100_000 if draw(st.booleans()) else 0
            if kind == "for" and after >= length:
                after = 0
            lines.append(f"{', '.join(grp)}: {cyc}" + (f" after {after / 10**6} s" if after else ""))
            for name in grp:
                num, f, amp = info[name]
                if cyc == "continuous":
                    expected[num] += independent_count(f, amp, 0, length - after, 0)
                    continue
                up, hold, down, rest = cyc_info[cyc]
                cycle_us = up + hold + down + rest
                n = reps if kind == "repeat" else (length - after) // cycle_us
                expected[num] += n * independent_count(f, amp, up, hold, down)
            if cyc != "continuous":
                block_end = max(block_end, after + reps * sum(cyc_info[cyc]))
        body = "\n".join(lines)
        if kind == "repeat":
            blocks.append(f"repeat {reps} {{\n{body}\n}}")
            t += block_end
        else:
            blocks.append(f"for {length // SECONDS} s {{\n{body}\n}}")
            t += length
    return protocol(chans, cycles, "\n".join(blocks)), expected, t


@settings(max_examples=40, deadline=None)
@given(random_protocol())
def test_random_protocols_match_independent_counts(case):
    text, expected, duration = case
    sched = stimscript.loads(text).compile()
    assert sched.duration_us == duration
    counts = sched.counts()
    for num, n in expected.items():
        assert counts.get(num, 0) == n, (num, text)
    assert len(sched.pulses) == sum(expected.values())
    p = sched.pulses
    keys = list(zip(p["t_us"].tolist(), p["channel"].tolist()))
    assert keys == sorted(keys)


# --- sets: blocks inside `repeat` / `for`, checked against an independent timeline --------------------------------------
from stimscript.compiler import expand_py

SET_CYCLE = "cycle c { ramp up 1 s; hold 3 s; ramp down 1 s; rest 10 s }\n"   # 15 s, 5 s on


def _slots(start_us, on_us, up_us, down_us, freq_hz, amp_ua):
    """(t, amplitude) of one cycle's pulses from the language reference's envelope rule."""
    out, k = [], 0
    while True:
        off = round(Fraction(k * 10**6, freq_hz))
        if off >= on_us:
            return out
        if up_us and off < up_us:
            env = Fraction(off, up_us)
        elif down_us and off >= on_us - down_us:
            env = Fraction(on_us - off, down_us)
        else:
            env = Fraction(1)
        a = round(amp_ua * env)
        if a:
            out.append((start_us + off, a))
        k += 1


def _timeline(spec, t=0):
    """Cycle start times of a nested spec, laid out by the reference's rules, and the length.
    spec: ("cycles", n, cycle_us) | ("for_cycles", T, cycle_us) | ("pause", d) | ("repeat", n, [spec])
    | ("for", T, [spec])."""
    kind = spec[0]
    if kind == "cycles":
        return [t + i * spec[2] for i in range(spec[1])], spec[1] * spec[2]
    if kind == "for_cycles":
        n = spec[1] // spec[2]
        return [t + i * spec[2] for i in range(n)], spec[1]
    if kind == "pause":
        return [], spec[1]
    starts, length = [], 0
    one_pass = sum(_timeline(s)[1] for s in spec[2])
    passes = spec[1] if kind == "repeat" else spec[1] // one_pass
    for _ in range(passes):
        for s in spec[2]:
            got, n = _timeline(s, t + length)
            starts += got
            length += n
    return starts, (length if kind == "repeat" else spec[1])


def _expected(starts):
    rows = []
    for s in starts:
        rows += _slots(s, 5 * SECONDS, SECONDS, SECONDS, 50, 40_000)
    return rows


@pytest.mark.parametrize("session, spec", [
    ("repeat 3 { repeat 10 { quad: c }; pause 2 min }",
     ("repeat", 3, [("cycles", 10, 15 * SECONDS), ("pause", 120 * SECONDS)])),
    ("for 10 min { repeat 2 { quad: c }; pause 40 s }",          # a pass is 70 s: 8 passes, then 40 s idle
     ("for", 600 * SECONDS, [("cycles", 2, 15 * SECONDS), ("pause", 40 * SECONDS)])),
    ("for 5 min { for 1 min { quad: c }; pause 20 s }",          # nested for: 4 cycles a minute, 3 passes of 80 s
     ("for", 300 * SECONDS, [("for_cycles", 60 * SECONDS, 15 * SECONDS), ("pause", 20 * SECONDS)])),
    ("repeat 2 { pause 5 s; repeat 2 { repeat 3 { quad: c }; pause 1 s }; for 31 s { quad: c } }",
     ("repeat", 2, [("pause", 5 * SECONDS), ("repeat", 2, [("cycles", 3, 15 * SECONDS), ("pause", SECONDS)]),
                    ("for_cycles", 31 * SECONDS, 15 * SECONDS)])),
    ("repeat 4 { quad: c }\nrepeat 1 { repeat 2 { quad: c } }",
     ("repeat", 1, [("cycles", 4, 15 * SECONDS), ("cycles", 2, 15 * SECONDS)])),
])
def test_sets_match_an_independent_timeline(session, spec):
    sched = compile_(protocol(ONE, SET_CYCLE, session))
    starts, length = _timeline(spec)
    want = _expected(starts)
    assert sched.duration_us == length
    p = sched.pulses
    assert list(zip(p["t_us"].tolist(), p["amplitude_ua"].tolist())) == want
    assert sched.counts() == {1: len(want)}
    # both expanders agree on the unrolled trains
    ref = expand_py.expand(sched.trains, 0, sched.duration_us)
    assert np.array_equal(ref, p)


def test_set_worked_counts_and_segments():
    sched = compile_(protocol(ONE, SET_CYCLE, "repeat 3 { repeat 10 { quad: c }; pause 2 min }"))
    assert sched.counts() == {1: 3 * 10 * 249}                 # 249 pulses per 5 s on at 50 Hz (ramp up drops one)
    assert sched.duration_us == 3 * (150 + 120) * SECONDS       # the last pause counts, like any pause
    assert len(sched.trains) == 3                               # one train per set; no extension change needed
    assert [s.label for s in sched.segments][:3] == ["set 1/3 · repeat 10 × c", "set 1/3 · pause 2 min",
                                                     "set 2/3 · repeat 10 × c"]
    # a set without pauses merges into one train
    merged = compile_(protocol(ONE, SET_CYCLE, "repeat 3 { repeat 10 { quad: c } }"))
    assert len(merged.trains) == 1 and merged.trains[0].cycles == 30
    assert merged.counts() == {1: 30 * 249}


def test_continuous_inside_a_set_and_a_for_that_fits_no_pass():
    sched = compile_(protocol(ONE, SET_CYCLE, "repeat 2 { for 1 min { quad: continuous }; pause 1 min }"))
    assert sched.counts() == {1: 2 * 60 * 50} and sched.duration_us == 240 * SECONDS
    proto = stimscript.loads(protocol(ONE, SET_CYCLE, "for 1 min { repeat 5 { quad: c } }"))
    assert [w.code for w in proto.warnings if w.code == "W401"] == ["W401"]
    sched = proto.compile()
    assert sched.counts().get(1, 0) == 0 and sched.duration_us == 60 * SECONDS


def test_s012_on_continuous_suggests_a_possible_fix():
    proto = stimscript.loads(protocol(ONE, "", "for 1 min { quad: continuous }"))
    (w,) = [w for w in proto.warnings if w.code == "S012"]
    assert "add `ramp up`" not in w.hint and "`continuous` cannot ramp" in w.hint
    proto = stimscript.loads(protocol(ONE, "cycle c { hold 5 s; rest 5 s }\n", "repeat 2 { quad: c }"))
    (w,) = [w for w in proto.warnings if w.code == "S012"]
    assert "add `ramp up` to the cycle" in w.hint


def test_custom_site_and_side_words():
    text = protocol([channel("quad", 1, site='"3 cm distal to the fibular head"')], ON10, "repeat 1 { quad: on10 }")
    proto = stimscript.loads(text)
    assert [w.code for w in proto.warnings if w.code.startswith("W2")] == ["W203"]
    info = proto.compile().channels[0]
    assert (info.site, info.side, info.site_custom) == ("3 cm distal to the fibular head", "right", True)
    assert (info.cathode, info.anode) == ("e1", "e2")
    with pytest.raises(stimscript.ProtocolError) as err:
        stimscript.loads(text.replace('"3 cm distal to the fibular head" right', "tibialis_anterior both"))
    assert err.value.code == "E220" and "one channel per side" in err.value.diagnostics[0].hint


# --- the worked counts of docs/language.md are computed here ------------------------------------------------------------
LANGUAGE_DOC = (Path(__file__).parent.parent / "docs" / "language.md").read_text(encoding="utf-8")


def _doc_number(n: int) -> str:
    return f"{n:,}".replace(",", " ")


@pytest.mark.parametrize("session, pulses, seconds", [
    ("repeat 3 { repeat 10 { quad: c }; pause 2 min }", 7470, 810),
    ("for 10 min { repeat 2 { quad: c }; pause 40 s }", 3984, 600),
    ("for 5 min { for 1 min { quad: c }; pause 20 s }", 2988, 300),
])
def test_docs_set_worked_counts(session, pulses, seconds):
    sched = compile_(protocol(ONE, SET_CYCLE, session))
    assert sched.counts() == {1: pulses} and sched.duration_us == seconds * SECONDS
    assert f"`{session}`" in LANGUAGE_DOC
    assert f"**{_doc_number(pulses)}**" in LANGUAGE_DOC and f"**{seconds} s**" in LANGUAGE_DOC


def test_docs_progression_worked_example():
    prog = ("progression {\n    every week { intensity += 5 mA up to 55 mA }\n    week 4..5 { c.hold = 8 s }\n"
            "    week 6 { intensity -= 10 mA }\n    week 7.. { c.hold = 6 s }\n}\n")
    text = protocol(ONE, "cycle c { ramp up 1 s; hold 4 s; ramp down 1 s; rest 10 s }\n", "repeat 1 { quad: c }",
                    extra=prog).replace('author "test"', 'author "test"\n  plan 1 session per week, 8 weeks')
    proto = stimscript.loads(text)
    ma, hold, pulses = [], [], []
    for k in range(1, 9):
        sched = proto.compile(session=k)
        ma.append(int(sched.params["intensity"].value * 1000))
        pulses.append(sched.counts()[1])
        hold.append(int(proto.weeks().value(k, "c.hold").value))
    table = LANGUAGE_DOC[LANGUAGE_DOC.index("| week | 1 | 2"):]
    assert "| intensity (mA) | " + " | ".join(map(str, ma)) + " |" in table
    assert "| `c.hold` (s) | " + " | ".join(map(str, hold)) + " |" in table
    assert "| pulses per session | " + " | ".join(map(str, pulses)) + " |" in table
    # the example's progression is the one the doc shows
    for line in prog.splitlines()[1:-1]:
        assert line.strip() in LANGUAGE_DOC
