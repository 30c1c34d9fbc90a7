"""The command line as a user meets it: exit codes, FILE:LINE:COL errors, no tracebacks, real output files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import stimscript
from stimscript.cli import cli

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """The installed console entry point in a real process (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, text=True,
                          cwd=kw.get("cwd", ROOT), timeout=120)


def test_check_ok_examples():
    result = invoke("check", *sorted(str(p) for p in (ROOT / "examples").glob("*.stim")))
    assert result.exit_code == 0, result.output
    assert "tka_quadriceps.stim: ok" in result.output


def test_check_reports_every_error_with_position(tmp_path):
    bad = tmp_path / "bad.stim"
    bad.write_text(
        'electrode a 5 cm x 5 cm\nelectrode b 5 cm x 5 cm\n'
        'channel q 1 {\n  electrodes a -> b\n  pulse biphasic 300 us\n  frequency 50 mA\n  amplitude 20 mA\n}\n'
        'cycle c { hold 5 s; rest 5 s }\n'
        'session { repeat 3 { q: cc } }\n', encoding="utf-8")
    proc = run_cli("check", str(bad))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{bad}:6:13: error[E301]" in proc.stderr
    assert "expected frequency, found current" in proc.stderr
    assert f"{bad}:10:25: error[E202]" in proc.stderr   # unknown cycle, with did-you-mean
    assert "did you mean" in proc.stderr
    assert "^" in proc.stderr


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b'protocol "unterminated', b"x" * 10,
                                     b"param a = " + b"(" * 10000 + b"1" + b")" * 10000])
def test_bad_input_never_tracebacks(tmp_path, content):
    f = tmp_path / "in.stim"
    f.write_bytes(content)
    proc = run_cli("check", str(f))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{f}:" in proc.stderr and "error[" in proc.stderr


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    proc = run_cli("check", str(tmp_path / "nope.stim"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr


def test_compile_csv_and_npz_match_the_schedule(tmp_path):
    sched = stimscript.load(TKA).compile(session=1, params={"intensity": "45 mA"})
    out_csv, out_npz = tmp_path / "s.csv", tmp_path / "s.npz"
    assert invoke("compile", TKA, "--set", "intensity=45mA", "-o", str(out_csv)).exit_code == 0
    assert invoke("compile", TKA, "--set", "intensity=45mA", "-o", str(out_npz)).exit_code == 0
    rows = np.loadtxt(out_csv, delimiter=",", skiprows=1, dtype=np.int64)
    assert out_csv.read_text().splitlines()[0] == "t_us,channel,amplitude_ua,shape"
    assert len(rows) == len(sched.pulses) == 15 * 749
    for i, col in enumerate(("t_us", "channel", "amplitude_ua", "shape")):
        assert np.array_equal(rows[:, i], sched.pulses[col].astype(np.int64))
    with np.load(out_npz) as z:
        assert np.array_equal(z["pulses"], sched.pulses)
        meta = json.loads(str(z["metadata"]))
        assert meta["sha256"] == sched.sha256 and meta["duration_us"] == 15 * 60 * 10**6
        assert list(z["phase_duration_us"]) == [250, 50, 250]
        assert list(z["phase_amplitude"]) == [1.0, 0.0, -1.0]
    assert sched.pulses["amplitude_ua"].max() == 45000


def test_compile_bad_set_and_bad_suffix(tmp_path):
    proc = run_cli("compile", TKA, "--set", "intensity=500mA", "-o", str(tmp_path / "x.csv"))
    assert proc.returncode == 1 and "S007" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("compile", TKA, "--set", "intensty=45mA", "-o", str(tmp_path / "x.csv"))
    assert proc.returncode == 1 and "intensity" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("compile", TKA, "--set", "intensity", "-o", str(tmp_path / "x.csv"))
    assert proc.returncode == 1 and "NAME=VALUE" in proc.stderr
    proc = run_cli("compile", TKA, "--session", "999", "-o", str(tmp_path / "x.csv"))
    assert proc.returncode == 1 and "S015" in proc.stderr
    proc = run_cli("compile", TKA, "-o", str(tmp_path / "x.txt"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_info_table():
    result = invoke("info", TKA, "--set", "intensity=45mA")
    assert result.exit_code == 0, result.output
    out = result.output
    for needle in ("vastus medialis, right side", "prox(−) → dist(+)", "A is the cathode (−) of the leading phase", "biphasic 250 µs gap 50 µs", "11,235",
                   "15 min", "charge/phase µC"):
        assert needle in out, needle
    # charge per phase: 45 mA × 250 µs = 11.25 µC
    assert "11.2" in out
    # one row per channel and block, then the channel's total
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert ["1", "1", "repeat 15 × contraction", "contraction 3/12/0/45 s", "50", "45", "15", "11,235"] in rows
    assert ["1", "", "total quad", "", "", "", "15", "11,235"] in rows


def test_info_rows_per_channel_and_block_add_up(tmp_path):
    """A set with a pause and a line override: every block row is what that block delivers, and the totals
    are the schedule's own pulse counts."""
    f = tmp_path / "p.stim"
    f.write_text('param intensity = 30 mA in 10 mA .. 80 mA\n'
                 'electrode a 5 cm x 5 cm\nelectrode b 5 cm x 5 cm\nelectrode c 5 cm x 5 cm\nelectrode d 5 cm x 5 cm\n'
                 'channel q 1 {\n  site vastus_medialis left\n  electrodes a -> b\n  pulse biphasic 300 us\n'
                 '  frequency 50 Hz\n  amplitude intensity\n}\n'
                 'channel h 2 {\n  site "posterior thigh" left\n  electrodes c -> d\n  pulse biphasic 300 us\n'
                 '  frequency 40 Hz\n  amplitude 50% intensity\n}\n'
                 'cycle k { ramp up 1 s; hold 2 s; rest 2 s }\n'
                 'session {\n  repeat 2 {\n    repeat 3 { q: k }\n    pause 10 s\n  }\n'
                 '  for 20 s { q, h: continuous with frequency 5 Hz }\n}\n', encoding="utf-8")
    result = invoke("info", str(f))
    assert result.exit_code == 0, result.output
    section = result.output.split("Blocks per channel", 1)[1].split("cycle: ramp up", 1)[0]
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in section.splitlines() if line.startswith("│")]
    block_rows = [r for r in rows if r[1]]
    # oracle: the pulses of each channel in each block's time window, counted on the whole pulse array
    proto = stimscript.load(str(f))
    sched = proto.compile()
    pulses = sched.pulses
    expect = []
    for k, seg in enumerate(sched.segments, 1):
        window = pulses[(pulses["t_us"] >= seg.start_us) & (pulses["t_us"] < seg.end_us)]
        for ch in (1, 2):
            n = int((window["channel"] == ch).sum())
            if n:
                expect.append((str(ch), str(k), n))
    got = sorted((r[0], r[1], int(r[7].replace(",", ""))) for r in block_rows)
    assert got == sorted(expect)
    assert ["2", "5", "for 20 s", "continuous", "5", "15", "–", "100"] in rows
    assert ["1", "1", "set 1/2 · repeat 3 × k", "k 1/2/0/2 s", "50", "30", "3", "447"] in rows
    totals = {r[2]: int(r[7].replace(",", "")) for r in rows if r[2].startswith("total ")}
    assert totals == {"total q": sched.count(1), "total h": sched.count(2)}
    assert "posterior thigh, left side" in result.output


def test_info_weeks_prints_every_progressed_value(tmp_path):
    f = tmp_path / "p.stim"
    f.write_text('protocol "p" { plan 2 sessions per week, 4 weeks }\n'
                 'param intensity = 30 mA in 10 mA .. 80 mA\n'
                 'electrode a 5 cm x 5 cm\nelectrode b 5 cm x 5 cm\n'
                 'channel q 1 {\n  site tibialis_anterior left\n  electrodes a -> b\n  pulse biphasic 300 us\n'
                 '  frequency 50 Hz\n  amplitude intensity\n}\n'
                 'cycle c { ramp up 1 s; hold 5 s; rest 5 s }\nsession { repeat 3 { q: c } }\n'
                 'progression {\n  every week { intensity += 10 mA up to 50 mA }\n  week 2 { c.hold = 8 s }\n'
                 '  week 3.. { intensity -= 5 mA }\n}\n', encoding="utf-8")
    result = invoke("info", "--weeks", str(f))
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1:-1] for line in result.output.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row] for row in rows]
    assert cells == [["1", "1–2", "30 mA", "5 s"], ["2", "3–4", "40 mA", "8 s"],
                     ["3", "5–6", "45 mA", "5 s"], ["4", "7–8", "45 mA", "5 s"]]
    assert "intensity" in result.output and "c.hold" in result.output


def test_check_strict_turns_warnings_into_errors(tmp_path):
    f = tmp_path / "w.stim"
    f.write_text('electrode a 5 cm x 5 cm\nelectrode b 5 cm x 5 cm\n'
                 'channel q 1 {\n  site tibialis_anterior\n  electrodes a -> b\n  pulse biphasic 300 us\n'
                 '  frequency 50 Hz\n  amplitude 30 mA\n}\n'
                 'cycle c { hold 5 s; rest 5 s }\nsession { repeat 3 { q: c } }\n', encoding="utf-8")
    assert invoke("check", str(f)).exit_code == 0
    result = CliRunner().invoke(cli, ["check", "--strict", str(f)])
    assert result.exit_code == 1
    assert "warning[S012]" in result.output or "warning[S012]" in (result.stderr if hasattr(result, "stderr") else "")
