"""``stimscript check FILE...`` runs without click (stimscript/commands/check.py): the same command line means
the same thing on both paths, prints the same and exits the same; a closed stdout ends any command quietly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.cli import main
from stimscript.commands.check import fast_args

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")
WARNS = """stimscript 1
electrode a 5 cm x 5 cm
electrode b 5 cm x 5 cm
channel quad 1 {
  electrodes a -> b
  pulse biphasic 300 us
  frequency 35 Hz
  amplitude 20 mA
}
cycle c { ramp up 1 s; hold 5 s; ramp down 1 s; rest 10 s }
session { repeat 3 { quad: c } }
"""
BROKEN = WARNS.replace("quad: c", "quad: cc")

WORDS = ["a.stim", "b.stim", "--strict", "--quiet", "-q", "--device", "loopback", "--mode", "low-level",
         "--help", "-h", "-x", "--qui", "-", "--", "-qq", "--strict=1", "examples"]


def _click_params(args: list[str]):
    """What the click command makes of ``check ARGS`` (None when it refuses them)."""
    from stimscript.commands.check import check

    try:
        ctx = check.make_context("check", list(args), resilient_parsing=False)
    except Exception:   # a usage error, --help (Exit), a bad choice
        return None
    params = dict(ctx.params)
    params["files"] = tuple(params["files"])
    return params


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=6))
def test_the_click_free_reading_is_clicks_reading(args):
    cwd = os.getcwd()
    os.chdir(ROOT)   # 'examples' is a directory there
    try:
        fast = fast_args(args)
        if fast is not None:
            assert fast == _click_params(args)
    finally:
        os.chdir(cwd)


def test_plain_command_lines_take_the_fast_path():
    assert fast_args(["a.stim", "-q", "b.stim", "--strict"]) == {
        "files": ("a.stim", "b.stim"), "device": None, "mode": None, "strict": True, "quiet": True}
    for other in (["--help"], ["a.stim", "--device", "p24"], [], ["-"], ["a.stim", "--"], [str(ROOT)]):
        assert fast_args(other) is None


@pytest.mark.parametrize("extra", [[], ["--strict"], ["-q"], ["--quiet", "--strict"]])
def test_both_paths_print_and_exit_alike(tmp_path, capsys, extra):
    from stimscript.cli import cli

    (tmp_path / "w.stim").write_text(WARNS)
    (tmp_path / "e.stim").write_text(BROKEN)
    args = ["check", TKA, str(tmp_path / "w.stim"), str(tmp_path / "e.stim"), str(tmp_path / "missing.stim"),
            *extra]
    rc = main(args)
    fast = capsys.readouterr()
    slow = CliRunner().invoke(cli, args)
    assert (rc, fast.out, fast.err) == (slow.exit_code, slow.stdout, slow.stderr)
    assert rc == 1 and "error[E202]" in fast.err and "missing.stim: no such file" in fast.err
    assert ("ok (1 channel, 84 sessions checked)" in fast.out) == ("-q" not in extra and "--quiet" not in extra)


PROBE = r"""
import json, sys
from stimscript.cli import main
rc = main(sys.argv[1:])
unused = ["click", "stimscript.suggest", "stimscript.compiler.ir"]
print(json.dumps({"rc": rc, "loaded": [m for m in unused if m in sys.modules]}), file=sys.stderr)
"""


def test_check_of_files_does_not_import_click():
    """A check of good files loads neither click nor what only errors need (the did-you-mean hints) nor the
    compiler's re-export of the pulse records: each module is start-up time an editor pays per file."""
    proc = subprocess.run([sys.executable, "-c", PROBE, "check", "-q", TKA], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"rc": 0, "loaded": []}


TYPOS = """stimscript 1
protocol "t" {
  authr "x"
}
param intensity = 20 mA in 10 mA .. 40 mA
electrode a 5 cm x 5 cm
electrode b 5 cm x 5 cm
channel quad 1 {
  site vastus_mediali right
  electrodes a -> bb
  pulse biphasic 300 us
  frequency 35 Hz
  amplitude intensty
}
cycle cyc { ramp up 1 s; hold 5 s; ramp down 1 s; rest 10 s }
session { repeat 3 { quad: cy } }
"""


def test_hints_are_still_given_when_needed(tmp_path, capsys):
    """The did-you-mean hints, imported only with the first error that needs one, are there on every path
    that gives one: the checker, the evaluator, the atlas and the parser."""
    (tmp_path / "typos.stim").write_text(TYPOS)
    (tmp_path / "unit.stim").write_text("stimscript 1\nelectrode a 5 cmm x 5 cm\n")
    assert main(["check", str(tmp_path / "typos.stim"), str(tmp_path / "unit.stim")]) == 1
    err = capsys.readouterr().err
    for code, hint in [("E206", "did you mean `author`?"), ("E205", "did you mean `vastus_medialis` or"),
                       ("E203", "did you mean `b`?"), ("E204", "did you mean `intensity`?"),
                       ("E202", "did you mean `cyc`?"), ("E103", "did you mean `mm`?")]:
        assert f"error[{code}]" in err and hint in err, (code, err)


@pytest.mark.parametrize("args", [["devices"], ["check", TKA], ["fmt", TKA]])
def test_a_closed_stdout_ends_quietly(args):
    """``stimscript devices | head -1``: the reader is gone before the command writes; the command ends with
    the status of a process ended by SIGPIPE (141) and prints nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)   # every write to the pipe fails with EPIPE, whenever it comes
    try:
        proc = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


@pytest.mark.parametrize("enabled", [True, False])
def test_each_file_is_checked_with_the_collector_paused(tmp_path, capsys, monkeypatch, enabled):
    """The collector is paused for each file (so the checker's pause never asks ``gc.get_freeze_count()``,
    which walks every frozen object) and left as it was found, after good files, bad ones and missing ones."""
    import gc

    import stimscript
    from stimscript.commands.check import check_files

    (tmp_path / "e.stim").write_text(BROKEN)
    seen: list[bool] = []
    load = stimscript.load

    def spy(path, **kwargs):
        seen.append(gc.isenabled())
        return load(path, **kwargs)

    def walks_the_frozen(*args):
        raise AssertionError("gc.get_freeze_count() called")

    monkeypatch.setattr(stimscript, "load", spy)
    monkeypatch.setattr(gc, "get_freeze_count", walks_the_frozen)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        rc = check_files((TKA, str(tmp_path / "e.stim"), str(tmp_path / "missing.stim"), TKA), None, None,
                         False, True)
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert rc == 1 and seen == [False] * 4
    assert "error[E202]" in capsys.readouterr().err


ENDING = """
import atexit, os, sys

real_exit = os._exit


def fast_exit(code):   # the end without the interpreter's teardown, seen
    sys.stderr.write("ended at once\\n")
    sys.stderr.flush()
    real_exit(code)


os._exit = fast_exit
if HANDLER:   # an exit handler registered by someone else (a coverage tool, a profiler)
    atexit.register(lambda: sys.stderr.write("exit handler ran\\n"))
sys.argv[0] = "stimscript"
from stimscript.cli import entry
entry()
"""


@pytest.mark.parametrize("handler", [False, True])
@pytest.mark.parametrize("args, code, plain", [
    (["check", TKA], 0, True),                  # a plain check ends at once, after its output
    (["check", "-q", "BROKEN"], 1, True),       # also when it finds errors
    (["check", "--help"], 0, False),            # click's path ends as Python programs do
    (["devices"], 0, False),
])
def test_the_program_skips_the_teardown_only_after_a_plain_check(tmp_path, args, code, plain, handler):
    """``stimscript check FILE`` ends with ``os._exit`` once its output is flushed (no teardown of the imported
    modules: time an editor pays per file), unless an exit handler is registered, which then runs; every other
    command line ends through ``sys.exit``, running exit handlers and the teardown."""
    (tmp_path / "BROKEN").write_text(BROKEN)
    proc = subprocess.run([sys.executable, "-c", ENDING.replace("HANDLER", str(handler)), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert ("ended at once" in proc.stderr) == (plain and not handler)
    assert ("exit handler ran" in proc.stderr) == handler
    assert "Traceback" not in proc.stderr
    if args[1:2] == ["-q"]:
        assert "error[" in proc.stderr and proc.stdout == ""


def test_the_program_prints_everything_before_it_ends(tmp_path, capsys):
    """Through the program (``python -m stimscript.cli``, which ends with ``os._exit`` after a plain check),
    output written to a file and to a pipe is exactly what :func:`main` prints in-process: nothing left in a
    buffer is lost."""
    (tmp_path / "broken.stim").write_text(BROKEN)
    (tmp_path / "warns.stim").write_text(WARNS)
    files = sorted(str(p) for p in (ROOT / "examples").glob("*.stim")) + [str(tmp_path / "broken.stim"),
                                                                         str(tmp_path / "warns.stim")]
    assert main(["check", *files]) == 1
    want = capsys.readouterr()
    with open(tmp_path / "out.txt", "w") as out:
        to_file = subprocess.run([sys.executable, "-m", "stimscript.cli", "check", *files], stdout=out,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300)
    piped = subprocess.run([sys.executable, "-m", "stimscript.cli", "check", *files], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert to_file.returncode == piped.returncode == 1
    assert (tmp_path / "out.txt").read_text() == piped.stdout == want.out
    assert to_file.stderr == piped.stderr == want.err
    assert want.out.count(": ok (") == len(files) - 1


def test_the_console_script_is_the_program():
    """pip writes the ``stimscript`` script from the package's metadata: it must call :func:`entry`."""
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "stimscript"]
    assert script.value == "stimscript.cli:entry"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
@pytest.mark.parametrize("args", [["check", TKA], ["check", "--device", "loopback", TKA], ["fmt", TKA],
                                  ["info", TKA], ["devices"]])
def test_output_that_cannot_be_written_is_one_error_line(args):
    """``stimscript ... > /dev/full`` (stdout on a full disk): exit 1 and one error line naming the cause,
    never a traceback nor Python's "Exception ignored" at exit."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: No space left on device"], proc.stderr


@pytest.mark.parametrize("args, code", [(["check", TKA], 0), (["check", "--device", "loopback", TKA], 0),
                                        (["fmt", TKA], 0), (["check", "BROKEN"], 1), (["history", "--csv"], 0),
                                        (["history", "--all"], 0)])
def test_a_stdout_closed_from_the_start_is_no_error(tmp_path, args, code):
    """``stimscript check FILE >&-``: there is no stdout at all (Python's ``sys.stdout`` is None); the command
    still runs, reports problems on stderr and exits with its usual code, without a traceback."""
    (tmp_path / "BROKEN").write_text(BROKEN)
    import stimscript

    stimscript.run(stimscript.load(TKA).compile(session=1), device="loopback", db=tmp_path / "r.sqlite")
    proc = subprocess.run([sys.executable, "-m", "stimscript.cli", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "STIMSCRIPT_DB": str(tmp_path / "r.sqlite")},
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert ("error[E202]" in proc.stderr) == (code == 1)
