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
print(json.dumps({"rc": rc, "click": "click" in sys.modules}), file=sys.stderr)
"""


def test_check_of_files_does_not_import_click():
    proc = subprocess.run([sys.executable, "-c", PROBE, "check", "-q", TKA], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"rc": 0, "click": False}


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
