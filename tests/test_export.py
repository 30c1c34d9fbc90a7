"""Exports a researcher loads elsewhere: CSV bytes exactly as the first writer produced them, npz arrays
numpy reads back, both streamed in flat memory and never left half-written under the requested name.

The oracle for CSV is the first round's writer (numpy.savetxt with ``%d``), kept here; for npz it is
``numpy.savez`` of the whole pulse array.
"""
from __future__ import annotations

import gc
import io
import json
import tracemalloc
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.cli import cli
from stimscript.compiler import expander, export
from stimscript.compiler.ir import PULSE_DTYPE, PulseShape, Train
from stimscript.compiler.schedule import Schedule

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")
US = 1_000_000
SHAPES = (PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic"),
          PulseShape(((200, 1.0), (800, -0.25)), "asymmetric"))


def savetxt_csv(schedule: Schedule) -> bytes:
    """The first round's CSV writer (the oracle): numpy.savetxt, ``%d``, comma, LF."""
    fh = io.StringIO()
    fh.write("t_us,channel,amplitude_ua,shape\n")
    for block in schedule.blocks(max_pulses=262144):
        if len(block):
            cols = np.column_stack([block[c].astype(np.int64) for c in ("t_us", "channel", "amplitude_ua", "shape")])
            np.savetxt(fh, cols, fmt="%d", delimiter=",")
    return fh.getvalue().encode("utf-8")


def train(channel=1, start=0, cycles=1, on=US, up=0, down=0, rest=0, hz=Fraction(50), amp=Fraction(40_000),
          shape=0) -> Train:
    period, amp = Fraction(US) / Fraction(hz), Fraction(amp)
    return Train(channel=channel, start_us=start, cycles=cycles, cycle_us=on + rest, on_us=on, ramp_up_us=up,
                 ramp_down_us=down, period_num=period.numerator, period_den=period.denominator,
                 amp_num=amp.numerator, amp_den=amp.denominator, shape=shape)


@st.composite
def schedules(draw) -> Schedule:
    """Small sessions of any timing: 1-8 channels, ramps, rests, odd rates, big offsets, both shapes."""
    out = []
    for ch in draw(st.lists(st.integers(1, 8), min_size=1, max_size=8, unique=True)):
        den = draw(st.sampled_from([1, 3, 7]))
        hz = Fraction(draw(st.integers(den, 1000 * den)), den)
        on = draw(st.integers(0, 400_000))
        up = draw(st.one_of(st.just(0), st.integers(0, on)))
        down = draw(st.one_of(st.just(0), st.integers(0, on - up)))
        amp = Fraction(draw(st.integers(1, 120_000 * 3)), draw(st.sampled_from([1, 3])))
        start = draw(st.one_of(st.integers(0, 300_000), st.integers(10**9, 8 * 10**10)))  # up to ~22 h in
        out.append(train(ch, start, draw(st.integers(1, 3)), on, up, down, draw(st.integers(0, 200_000)), hz,
                         amp, draw(st.integers(0, 1))))
    return Schedule.from_trains(out, SHAPES)


@settings(max_examples=60, deadline=None)
@given(sched=schedules(), block=st.sampled_from([1, 3, 64, 65536]))
def test_csv_bytes_equal_the_first_writer(tmp_path_factory, sched, block):
    path = tmp_path_factory.mktemp("csv") / "s.csv"
    n = export.write_csv(sched, path, max_pulses=block)
    assert path.read_bytes() == savetxt_csv(sched)
    assert n == len(sched.pulses)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(0, 255),
                               st.integers(-2**31, 2**31 - 1), st.integers(0, 2**16 - 1)), min_size=1, max_size=40))
def test_csv_rows_are_printf_d_for_every_value(rows):
    """Every value the pulse dtype can hold (negative ones too) is formatted as ``%d`` formats it."""
    block = np.array(rows, dtype=PULSE_DTYPE)
    assert export.csv_rows(block) == "".join("%d,%d,%d,%d\n" % r for r in rows).encode()


@settings(max_examples=30, deadline=None)
@given(sched=schedules(), compress=st.booleans())
def test_npz_holds_exactly_the_schedule(tmp_path_factory, sched, compress):
    path = tmp_path_factory.mktemp("npz") / "s.npz"
    n = export.write_npz(sched, path, compress=compress, max_pulses=97)
    with np.load(path) as z:
        assert z["pulses"].dtype == PULSE_DTYPE
        assert np.array_equal(z["pulses"], sched.pulses) and n == len(sched.pulses)
        assert json.loads(str(z["metadata"]))["duration_us"] == sched.duration_us
        assert list(z["shape_offsets"]) == [0, 3, 5]
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {method}


def test_npz_members_equal_numpy_savez(tmp_path):
    """Stored members are byte for byte what numpy.savez writes for the same arrays."""
    sched = stimscript.load(TKA).compile(session=1)
    ours, theirs = tmp_path / "a.npz", tmp_path / "b.npz"
    export.write_npz(sched, ours)
    np.savez(theirs, pulses=sched.pulses, metadata=np.asarray(json.dumps(export.metadata(sched))),
             **export.shape_table(sched))
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            assert a.read(name) == b.read(name), name


def _peak(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_writers_stream_in_flat_memory(tmp_path, fmt):
    """Peak memory of an export does not grow with the session: 8x the pulses, about the same peak."""
    # the pure-Python reference: fewer pulses and smaller blocks, the same shape of test
    hz, block = (1000, export.BLOCK_PULSES) if expander.USING_EXTENSION else (10, 512)
    writer = export.write_csv if fmt == "csv" else export.write_npz
    peaks = {}
    for minutes in (1, 8):
        on = minutes * 60 * US
        sched = Schedule.from_trains([train(ch, (ch - 1) * 100, 1, on, hz=hz) for ch in range(1, 9)], SHAPES)
        path = tmp_path / f"s{minutes}.{fmt}"
        peaks[minutes] = _peak(lambda: writer(sched, path, max_pulses=block))
        assert "pulses" not in vars(sched)  # the whole array was never materialised
    array_bytes = 8 * hz * 8 * 60 * PULSE_DTYPE.itemsize
    assert peaks[8] <= 1.5 * peaks[1] + 2**20, peaks
    if expander.USING_EXTENSION:
        assert peaks[8] < array_bytes / 4, (peaks, array_bytes)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_a_day_at_1_khz_on_8_channels_streams_and_an_interrupted_export_leaves_nothing(tmp_path, fmt,
                                                                                        monkeypatch):
    """The legal 24 h x 8 ch x 1 kHz session (691 M pulses, ~10 GiB as one array) starts streaming in a few
    MiB; stopped after a few blocks (as by Ctrl-C or a full disk), no partial file is left behind."""
    if not expander.USING_EXTENSION and fmt == "npz":
        pytest.skip("counting 691 M pulses in the pure-Python reference takes minutes")
    day = 24 * 3600 * US
    sched = Schedule.from_trains([train(ch, (ch - 1) * 100, 1, day - US, hz=1000) for ch in range(1, 9)], SHAPES,
                                 duration_us=day)
    if fmt == "npz":
        assert sched.count() == 8 * 1000 * (24 * 3600 - 1)
    original = Schedule.blocks
    seen = []

    def few_blocks(self, max_pulses=65536):
        for block in original(self, max_pulses):
            seen.append(len(block))
            yield block
            if len(seen) == 5:
                raise _Stop

    monkeypatch.setattr(Schedule, "blocks", few_blocks)
    target = tmp_path / f"day.{fmt}"
    with pytest.raises(_Stop):
        export.write(sched, target)
    assert len(seen) == 5 and max(seen) <= 65536
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    assert "pulses" not in vars(sched)


def test_peak_of_a_started_day_export_is_small(tmp_path, monkeypatch):
    if not expander.USING_EXTENSION:
        pytest.skip("the pure-Python reference counts the day's pulses one by one")
    day = 24 * 3600 * US
    sched = Schedule.from_trains([train(ch, (ch - 1) * 100, 1, day - US, hz=1000) for ch in range(1, 9)], SHAPES,
                                 duration_us=day)
    original = Schedule.blocks

    def few_blocks(self, max_pulses=65536):
        for i, block in enumerate(original(self, max_pulses)):
            if i == 20:
                raise _Stop
            yield block

    monkeypatch.setattr(Schedule, "blocks", few_blocks)

    def run():
        with pytest.raises(_Stop):
            export.write_npz(sched, tmp_path / "day.npz")

    assert _peak(run) < 32 * 2**20


def test_a_count_mismatch_is_an_error_and_writes_nothing(tmp_path, monkeypatch):
    sched = stimscript.load(TKA).compile(session=1)
    monkeypatch.setattr(Schedule, "count", lambda self, channel=None: 5)
    with pytest.raises(export.ExportError):
        export.write_npz(sched, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_only_when_complete(tmp_path, monkeypatch):
    target = tmp_path / "x.csv"
    target.write_text("previous export\n")
    sched = stimscript.load(TKA).compile(session=1)

    def broken(self, max_pulses=65536):
        yield np.zeros(3, dtype=PULSE_DTYPE)
        raise _Stop

    monkeypatch.setattr(Schedule, "blocks", broken)
    with pytest.raises(_Stop):
        export.write_csv(sched, target)
    assert target.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# --- the command ----------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_compile_npz_default_stored_and_compress_deflated(tmp_path):
    sched = stimscript.load(TKA).compile(session=1)
    for flag, method in (((), zipfile.ZIP_STORED), (("--compress",), zipfile.ZIP_DEFLATED)):
        out = tmp_path / f"s{len(flag)}.npz"
        result = invoke("compile", TKA, "-o", str(out), *flag)
        assert result.exit_code == 0, result.output
        assert f"{out}: {len(sched.pulses)} pulses" in result.output
        with zipfile.ZipFile(out) as zf:
            assert {i.compress_type for i in zf.infolist()} == {method}
        with np.load(out) as z:
            assert np.array_equal(z["pulses"], sched.pulses)


def test_compile_writes_the_reported_name_in_any_case(tmp_path):
    out = tmp_path / "OUT.NPZ"
    result = invoke("compile", TKA, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["OUT.NPZ"]
    assert str(out) in result.output
    with np.load(out) as z:
        assert len(z["pulses"]) == 15 * 749


def test_compile_refuses_compress_for_csv_and_its_own_input(tmp_path):
    result = invoke("compile", TKA, "-o", str(tmp_path / "x.csv"), "--compress")
    assert result.exit_code == 2 and "--compress" in result.output
    copy = tmp_path / "p.csv"
    copy.write_bytes(Path(TKA).read_bytes())
    result = invoke("compile", str(copy), "-o", str(copy))
    assert result.exit_code == 2 and "protocol file itself" in result.output
    assert copy.read_bytes() == Path(TKA).read_bytes()


def test_compile_into_a_missing_folder_is_a_clear_error(tmp_path):
    result = invoke("compile", TKA, "-o", str(tmp_path / "no" / "such" / "x.csv"))
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
