"""Clean edges: every class of odd input gives a clear error or the safe behaviour, never a traceback.
Command-line cases run the real CLI in a subprocess."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stimscript
from stimscript.textsafe import csv_cell, for_terminal

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "tka_quadriceps.stim")


def cli(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], capture_output=True, timeout=120, env=e,
                       cwd=cwd)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out, out
    return r.returncode, r.stdout, out


# --- the shared helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("=1+2", "'=1+2"), ("+41 79", "'+41 79"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"),
    ("-3", "-3"), ("+0.5", "+0.5"), ("P-1", "P-1"), ("", ""), (7, 7)])
def test_csv_cells_never_start_a_formula(value, expected):
    assert csv_cell(value) == expected


def test_terminal_text_escapes_control_characters():
    assert for_terminal("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert for_terminal("line\nnext", keep_newlines=True) == "line\nnext"
    assert for_terminal("x\u202ey") == "x\\u202ey"
    assert for_terminal("caf\udcc3") == "caf\\xc3"


# --- numbers: only ASCII digits ----------------------------------------------------------------------------
@pytest.mark.parametrize("digits", ["\u0665\u0660", "\uff15\uff10", "\u0e55\u0e50"])
def test_non_ascii_digits_are_not_numbers(digits):
    text = ("stimscript 1\nelectrode a 5 cm x 9 cm\nelectrode b 5 cm x 9 cm\n"
            f"channel q 1 {{ site vastus_medialis; electrodes a -> b; pulse biphasic 200 us; frequency {digits} Hz; "
            "amplitude 5 mA }\ncycle c { hold 2 s; rest 5 s }\nsession { repeat 1 { q: c } }\n")
    with pytest.raises(stimscript.ProtocolSyntaxError) as info:
        stimscript.loads(text)
    assert (info.value.line, info.value.column) == (4, 89)
    with pytest.raises(stimscript.StimscriptError):
        stimscript.load(EXAMPLE).compile(params={"intensity": f"{digits} mA"})


# --- command-line arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["history", "18446744073709551617"],
    ["history", "--id", "18446744073709551617"],
    ["history", "--session", "18446744073709551617"],
    ["history", "-n", "99999999999999999999999"],
    ["note", "18446744073709551617", "--text", "x"],
    ["void", "18446744073709551617", "--reason", "x"],
])
def test_ids_beyond_64_bits_are_usage_errors(args, tmp_path):
    code, _, out = cli(*args, env={"STIMSCRIPT_DB": str(tmp_path / "r.sqlite")})
    assert code == 2 and "9223372036854775807" in out


@pytest.mark.parametrize("command", ["info", "compile", "run"])
def test_session_numbers_beyond_64_bits_are_outside_the_plan(command, tmp_path):
    extra = {"compile": ["-o", str(tmp_path / "x.npz")], "run": ["--fast", "--no-record"]}.get(command, [])
    code, _, out = cli(command, EXAMPLE, "--session", "18446744073709551617", *extra)
    assert code == 1 and "error[S015]" in out


@pytest.mark.parametrize("args", [
    ["run", EXAMPLE, "--fast", "--patient", os.fsdecode(b"P\xff1")],
    ["history", "--patient", os.fsdecode(b"P\xff1")],
    ["note", "1", "--text", os.fsdecode(b"bad\xffnote")],
    ["void", "1", "--reason", os.fsdecode(b"bad\xff")],
    ["run", EXAMPLE, "--fast", "--operator", os.fsdecode(b"op\xff")],
])
def test_arguments_that_are_not_utf8_are_refused_before_anything_runs(args, tmp_path):
    db = tmp_path / "r.sqlite"
    code, _, out = cli(*args, env={"STIMSCRIPT_DB": str(db)})
    assert code == 2 and "not UTF-8" in out and "\\xff" in out
    assert not db.exists() or args[0] != "run"   # no session was started


@pytest.mark.parametrize("value", ["4\udcff mA", "1e400 mA", "9" * 39 + " mA", "0." + "0" * 37 + "1 mA",
                                   "nan mA", "inf mA", "-0 mA"])
def test_extreme_or_malformed_set_values_are_clear_errors(value, tmp_path):
    code, _, out = cli("compile", EXAMPLE, "--set", f"intensity={value}", "-o", str(tmp_path / "x.npz"))
    assert code == 1 and "intensity" in out


# --- text from files and databases on terminals and in CSV ---------------------------------------------------
HOSTILE = ("stimscript 1\nprotocol \"=cmd|' /C calc'!A0 \x1b]0;pwned\x07\x1b[31mRED\" { reference \"[bold]x\" }\n"
           "electrode a 5 cm x 9 cm\nelectrode b 5 cm x 9 cm\n"
           "channel q 1 { site vastus_medialis; electrodes a -> b; pulse biphasic 200 us; frequency 50 Hz; "
           "amplitude 5 mA }\ncycle c { ramp up 2 s; hold 2 s; rest 5 s }\nsession { repeat 1 { q: c } }\n")


def test_info_and_history_never_print_raw_control_characters_and_csv_has_no_formulas(tmp_path):
    p = tmp_path / "h.stim"
    p.write_text(HOSTILE, encoding="utf-8")
    env = {"STIMSCRIPT_DB": str(tmp_path / "r.sqlite")}
    code, stdout, _ = cli("info", str(p), env=env)
    assert code == 0 and b"\x1b]0" not in stdout and b"\\x1b]0;pwned\\x07" in stdout and b"[bold]x" in stdout
    code, _, _ = cli("run", str(p), "--fast", "--patient", "=1+2", env=env)
    assert code == 0
    assert cli("note", "1", "--text", "@SUM(1)", env=env)[0] == 0
    for args in (["history", "--all"], ["history", "1"]):
        code, stdout, _ = cli(*args, env=env)
        assert code == 0 and b"\x1b" not in stdout and b"\x07" not in stdout and b"\\x1b" in stdout
    code, stdout, _ = cli("history", "--csv", "--all", env=env)
    rows = list(csv.reader(io.StringIO(stdout.decode("utf-8"))))
    header, row = rows[0], rows[1]
    for name, expected in (("title", "'=cmd|"), ("patient_id", "'=1+2"), ("notes", "'@SUM(1)")):
        assert row[header.index(name)].startswith(expected), (name, row[header.index(name)])
    assert all(not c.startswith(("=", "+", "@")) for c in row)


def test_error_messages_show_control_characters_escaped(tmp_path):
    p = tmp_path / "e.stim"
    p.write_text('stimscript 1\nprotocol "\x1b[2Jx" { reference 5 }\n', encoding="utf-8")
    code, stdout, out = cli("check", str(p))
    assert code == 1 and "\x1b" not in out and "error[E104]" in out


@pytest.mark.parametrize("percent, pulses_ma", [("10000000", "4000000"), ("1000000000000", "400000000000")])
@pytest.mark.parametrize("twins", ["installed", "reference"])
def test_amplitudes_no_schedule_holds_are_refused_not_a_crash(percent, pulses_ma, twins, tmp_path):
    """A mistyped percentage can ask for more current than the schedule's signed 32-bit µA field holds: the
    check refuses the channel (S020, its pulses cannot be expanded and measured) with the device's S002, on
    the compiled twins and on the reference, instead of an overflow reaching the user."""
    text = Path(EXAMPLE).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("amplitude ")]
    assert len(lines) == 1
    path = tmp_path / "typo.stim"
    path.write_text(text.replace(lines[0], lines[0].split("amplitude")[0] + f"amplitude {percent}% intensity"),
                    encoding="utf-8")
    env = {"STIMSCRIPT_NO_EXTENSIONS": "1"} if twins == "reference" else {}
    code, _, out = cli("check", str(path), env=env)
    assert code == 1
    assert "error[S002]" in out
    assert (f"error[S020]: channel `quad` (1) would deliver pulses of {pulses_ma} mA, beyond the 2147483.647 mA a "
            "pulse schedule holds") in out
    assert "hint: lower the amplitude to at most the device maximum, 120 mA" in out
