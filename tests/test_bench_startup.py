"""benchmarks/bench_startup.py measures a non-editable install as pip makes one: the staged copy and the libraries
reach ``sys.path`` through a ``.pth`` file of an empty venv, after the standard library (a ``PYTHONPATH`` entry
would come first and make every standard-library import search them)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sysconfig
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench():
    spec = importlib.util.spec_from_file_location("bench_startup", os.path.join(ROOT, "benchmarks", "bench_startup.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pth_puts_the_copy_after_the_standard_library(tmp_path):
    bench = _bench()
    home = str(tmp_path / "venv")
    venv.create(home, with_pip=False, symlinks=True)
    first, second = str(tmp_path / "site-1"), str(tmp_path / "libs")
    os.makedirs(first)
    os.makedirs(second)
    pth = bench.write_pth(home, [first, second])
    assert pth.endswith(".pth") and os.path.dirname(pth) == sysconfig.get_path(
        "purelib", vars={"base": home, "platbase": home})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([os.path.join(home, "bin", "python"), "-c", "import sys, json, os; "
                          "print(json.dumps([sys.path, os.path.dirname(os.__file__)]))"],
                         capture_output=True, text=True, env=env, check=True).stdout
    path, stdlib = json.loads(out)
    assert first in path and second in path
    assert path.index(stdlib) < path.index(first) < path.index(second)


def test_non_editable_commands_use_no_pythonpath(tmp_path):
    bench = _bench()
    commands, envs = bench.non_editable_commands({"after: ": ROOT}, os.path.join(ROOT, "examples", "tka_quadriceps.stim"),
                                                 str(tmp_path))
    assert all("PYTHONPATH" not in env or env["PYTHONPATH"] == os.environ.get("PYTHONPATH") for env in envs.values())
    assert all("PYTHONDONTWRITEBYTECODE" not in env for env in envs.values())
    py = commands[f"{bench.NE}python -c pass"][0]
    assert all(cmd[0] == py for cmd in commands.values())
