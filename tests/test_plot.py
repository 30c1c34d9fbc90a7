"""Plots: real PNG/SVG files, streamed envelopes that match the pulses, flat cost for long sessions."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

from stimscript.compiler.ir import ChannelInfo, PulseShape, Segment, Train  # noqa: E402
from stimscript.compiler.schedule import Schedule  # noqa: E402
from stimscript.plotting import envelope, lane_label, plot_schedule, save_plot, shape_label, time_scale  # noqa: E402

US = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
BIPHASIC = PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic")
WIDE = PulseShape(((400, 1.0), (100, 0.0), (400, -1.0)), "biphasic")
BURST = PulseShape(tuple(p for _ in range(25) for p in ((200, 1.0), (200, -1.0))), "burst")
SITES = [("quad", "vastus_medialis", "right"), ("hams", "biceps_femoris", "right"),
         ("ta", "tibialis_anterior", "left"), ("gastroc", "gastrocnemius_medialis", "left"),
         ("glute", "gluteus_maximus", "right"), ("vl", "vastus_lateralis", "left"),
         ("bic", "biceps_brachii", "right"), ("tri", "triceps_brachii", "right")]


def train(channel, start, cycles, up, hold, down, rest, hz, amp_ua, shape=0) -> Train:
    period = Fraction(US) / Fraction(hz)
    amp = Fraction(amp_ua)
    on = up + hold + down
    return Train(channel=channel, start_us=start, cycles=cycles, cycle_us=on + rest, on_us=on,
                 ramp_up_us=up, ramp_down_us=down, period_num=period.numerator, period_den=period.denominator,
                 amp_num=amp.numerator, amp_den=amp.denominator, shape=shape)


def infos(n):
    return tuple(ChannelInfo(i + 1, *SITES[i], ("a", "b"), Fraction(50), 45_000, 0, "intensity") for i in range(n))


def one_minute(cls=Schedule) -> Schedule:
    trains = [train(1, 0, 4, 3 * US, 6 * US, 1 * US, 5 * US, 50, 45_000)]
    return cls.from_trains(trains, [BIPHASIC], channels=infos(1), segments=(Segment("repeat 4", 0, 60 * US),),
                           title="one minute")


def thirty_minutes(cls=Schedule) -> Schedule:
    trains, segments = [], []
    for ch in range(1, 5):
        trains.append(train(ch, 0, 1, 0, 300 * US, 0, 0, 5, 20_000 + 3000 * ch))
    segments.append(Segment("warm-up", 0, 300 * US))
    segments.append(Segment("pause 1 min", 300 * US, 360 * US, "pause"))
    t = 360 * US
    for ch in range(1, 5):
        trains.append(train(ch, t + (0 if ch % 2 else 15 * US), 40, 2 * US, 6 * US, 2 * US, 20 * US,
                            50 if ch < 3 else 35, 40_000 + 5000 * ch, 1 if ch < 3 else 0))
    segments.append(Segment("repeat 40", t, t + 1215 * US))
    return cls.from_trains(trains, [BIPHASIC, WIDE], duration_us=1800 * US, channels=infos(4),
                           segments=tuple(segments), title="thirty minutes", session=3)


def two_hours(cls=Schedule) -> Schedule:
    trains, segments, t = [], [], 0
    for b in range(6):
        dur = 18 * 60 * US
        for ch in range(1, 9):
            trains.append(train(ch, t + (ch - 1) * 2 * US, 17, 3 * US, 10 * US, 2 * US, 45 * US,
                                50 if b % 2 == 0 else 30, 30_000 + 6000 * ch, 2 if b == 3 else ch % 2))
        segments.append(Segment("repeat 17", t, t + dur))
        segments.append(Segment("pause 2 min", t + dur, t + dur + 120 * US, "pause"))
        t += dur + 120 * US
    return cls.from_trains(trains, [BIPHASIC, WIDE, BURST], duration_us=2 * 3600 * US, channels=infos(8),
                           segments=tuple(segments), title="two hours")


class NoPulses(Schedule):
    """A schedule whose whole-array access fails: plots must stream ``blocks()``."""

    @property
    def pulses(self):  # type: ignore[override]
        raise AssertionError("plotting materialised schedule.pulses")


# --- envelope ---------------------------------------------------------------------------------------
def test_envelope_matches_pulses_when_bins_are_wider_than_a_period():
    sched = thirty_minutes()
    env = envelope(sched, bins=500, max_pulses=997)  # small blocks: many block boundaries inside bins
    pulses = sched.window(0, sched.duration_us)
    b = (pulses["t_us"].astype(np.int64) * 500) // sched.duration_us
    for j, ch in enumerate(env.channels):
        want = np.zeros(500, dtype=np.int64)
        sel = pulses["channel"] == ch
        np.maximum.at(want, b[sel], pulses["amplitude_ua"][sel].astype(np.int64))
        assert np.array_equal(env.peak_ua[j], want), f"channel {ch}"
        assert env.pulses[ch] == int(sel.sum())
    assert 'pulses' not in sched.__dict__


def test_envelope_holds_between_pulses_when_bins_are_narrower_than_a_period():
    sched = one_minute()
    env = envelope(sched, bins=6000)  # 10 ms bins, 20 ms pulse period
    row = env.peak_ua[0]
    hold = (env.edges_us[:-1] >= 3.5 * US) & (env.edges_us[:-1] < 9 * US)
    assert (row[hold] == 45_000).all()            # a flat top, not a comb
    rest = (env.edges_us[:-1] >= 10.1 * US) & (env.edges_us[:-1] < 15 * US)
    assert (row[rest] == 0).all()                 # the rest stays at 0


def test_envelope_of_an_empty_schedule():
    sched = Schedule.from_trains([], [BIPHASIC], duration_us=10 * US)
    env = envelope(sched)
    assert env.channels == ()
    fig = plot_schedule(sched)
    assert fig is not None


# --- files --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [one_minute, thirty_minutes, two_hours])
def test_png_is_a_real_image(tmp_path, make):
    out = tmp_path / "plot.png"
    save_plot(make(), out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 1000


@pytest.mark.parametrize("make", [one_minute, two_hours])
def test_svg_is_xml(tmp_path, make):
    out = tmp_path / "plot.svg"
    save_plot(make(), out)
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    assert "<svg" in out.read_text(encoding="utf-8")


def test_bad_suffix(tmp_path):
    with pytest.raises(ValueError):
        save_plot(one_minute(), tmp_path / "plot.jpg")


# --- performance and streaming ---------------------------------------------------------------------
def test_two_hour_eight_channel_plot_streams(tmp_path):
    """A 2 h x 8 channel plot never materialises the pulse array (NoPulses raises if it is asked for)."""
    sched = two_hours(NoPulses)
    fig = plot_schedule(sched)
    fig.savefig(tmp_path / "long.png", dpi=100)
    assert (tmp_path / "long.png").stat().st_size > 0


def test_plain_schedule_pulses_cached_property_not_set():
    sched = two_hours()
    plot_schedule(sched)
    assert "pulses" not in sched.__dict__


def test_plot_into_existing_axes_returns_its_figure():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    got = plot_schedule(thirty_minutes(NoPulses), ax=ax)
    assert got is fig
    assert len(ax.get_yticks()) == 4


def test_unknown_keyword_is_an_error():
    with pytest.raises(TypeError):
        plot_schedule(one_minute(), colour="red")


# --- labels ---------------------------------------------------------------------------------------------
def test_labels():
    assert time_scale(60 * US)[1] == "s"
    assert time_scale(30 * 60 * US)[1] == "min"
    assert lane_label(infos(1)[0], 1) == "ch 1 · quad\nvastus medialis R\na(−) → b(+)"   # the cathode leads
    assert lane_label(None, 3) == "ch 3"
    assert shape_label(BIPHASIC) == "biphasic 250 µs, gap 50 µs"
    assert shape_label(BURST).startswith("burst 2.5 kHz carrier")


# --- command line (needs the checker/compiler) -------------------------------------------------------------
def _compiler_ready() -> bool:
    try:
        import stimscript

        stimscript.load(ROOT / "examples" / "tka_quadriceps.stim")
        return True
    except Exception:
        return False


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_cli_plot(tmp_path, suffix):
    if not _compiler_ready():
        pytest.skip("stimscript.load not available yet")
    from stimscript.cli import main

    out = tmp_path / f"tka.{suffix}"
    rc = main(["plot", str(ROOT / "examples" / "tka_quadriceps.stim"), "--set", "intensity=45mA", "-o", str(out)])
    assert rc == 0
    assert out.stat().st_size > 10_000


def test_cli_plot_rejects_other_suffixes(tmp_path):
    from stimscript.cli import main

    rc = main(["plot", str(ROOT / "examples" / "tka_quadriceps.stim"), "-o", str(tmp_path / "x.pdf")])
    assert rc != 0


# --- what a reader of the figure relies on ------------------------------------------------------------------
def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_each_block_labels_its_frequency_and_amplitude_in_each_lane():
    sched = thirty_minutes(NoPulses)
    fig = plot_schedule(sched)
    texts = _texts(fig)
    # warm-up at 5 Hz on every channel, then 50 Hz (ch 1, 2) and 35 Hz (ch 3, 4), each at its own amplitude
    for ch in range(1, 5):
        assert f"5 Hz · {20 + 3 * ch:g} mA" in texts, ch
        assert f"{50 if ch < 3 else 35} Hz · {40 + 5 * ch:g} mA" in texts, ch


def test_lanes_are_in_ma_and_identical_lanes_say_so():
    trains = [train(ch, 0, 4, 3 * US, 6 * US, 1 * US, 5 * US, 50, 45_000) for ch in (1, 2)]
    sched = Schedule.from_trains(trains, [BIPHASIC], channels=infos(2), segments=(Segment("repeat 4", 0, 60 * US),))
    fig = plot_schedule(sched)
    lanes = [ax for ax in fig.axes if ax.get_ylabel().startswith("ch ")]
    assert len(lanes) == 2
    for ax in lanes:
        labels = [ax.yaxis.get_major_formatter()(v, 0) for v in ax.get_yticks()]
        assert labels[-1] == "45 mA" and all(label.endswith(" mA") for label in labels)
    assert any("= ch 1" in t for t in _texts(fig))                  # the second lane names its twin
    hatches = [c.get_hatch() for ax in lanes for c in ax.collections]
    assert len(set(hatches)) == 2                                    # and is drawn with its own fill pattern


def test_zoomed_contraction_shows_the_ramp_and_its_pulses():
    sched = one_minute(NoPulses)
    fig = plot_schedule(sched)
    inset = next(ax for ax in fig.axes if ax.get_title(loc="left").startswith("One contraction"))
    texts = [t.get_text() for t in inset.texts]
    assert ("ramp up 3 s" in texts or "↗ 3 s" in texts) and "hold 6 s" in texts
    assert any(t.startswith("rest 5 s") for t in texts)
    # the pulses drawn are the schedule's own, one line per pulse of the first contraction
    pulses = sched.window(0, 15 * US)
    stems = next(c for c in inset.collections if c.get_label() == "pulses")
    assert len(stems.get_segments()) == len(pulses)
    tops = sorted(seg[1][1] for seg in stems.get_segments())
    assert tops[-1] == 45.0 and tops[0] < 5.0                       # the ramp starts low and reaches 45 mA
    assert f"{len(pulses)} pulses at 50 Hz, 45 mA at full output" in inset.get_title(loc="left")


def test_zoomed_pulse_labels_every_phase():
    fig = plot_schedule(one_minute(NoPulses))
    inset = next(ax for ax in fig.axes if ax.get_title(loc="left").startswith("One pulse"))
    texts = [t.get_text() for t in inset.texts]
    assert texts.count("250 µs") == 2 and "gap\n50 µs" in texts
    (line,) = inset.get_lines()[:1]
    assert max(line.get_ydata()) == 45.0 and min(line.get_ydata()) == -45.0


def test_two_hours_stay_legible(tmp_path):
    """A 2 h session: contractions too narrow to draw become a band at their peak (no aliasing comb), every
    block keeps its label, and the figure keeps its size."""
    sched = two_hours(NoPulses)
    fig = plot_schedule(sched)
    w, h = fig.get_size_inches()
    assert w == 12.0 and h < 12
    lane = next(ax for ax in fig.axes if ax.get_ylabel().startswith("ch 1 "))
    ys = lane.lines[0].get_ydata()
    on = ys[(ys > 0)]
    assert len(on) and (on == 36.0).mean() > 0.97                   # one level: the band, not a comb
    labels = [t.get_text() for t in lane.texts]
    assert labels.count("50 Hz · 36 mA") == 3 and labels.count("30 Hz · 36 mA") == 3
    fig.savefig(tmp_path / "long.png", dpi=100)
