"""Start-up of ``stimscript check`` and ``stimscript --help`` against a bare ``python -c pass`` (the performance
targets: ``check`` of a small file within 3x), measured side by side in one run.

    python benchmarks/bench_startup.py [--runs 21] [--before DIR] [--file examples/tka_quadriceps.stim]

Every command is a fresh process of this interpreter; the runs of all commands are interleaved (pass, check,
--help, pass, ...) so a busy machine slows them alike, and the median and the best of ``--runs`` are printed
with their ratio to ``python -c pass``, for the wall time and for the CPU time of the same runs (user +
system of the process: steadier than the wall time on a machine others are using). Bytecode is written and reused as after a normal install (the
variable PYTHONDONTWRITEBYTECODE is removed for the measured processes, after warm-up runs).

Both ways of installing are measured. The venv's own ``stimscript`` is the README's editable install (its
``python -c pass`` already pays for the editable finder, which imports pathlib, re and enum). A non-editable
install is measured as a copy of the package laid out as setup.py installs it (``stimscript/``, ``dsl/`` as
``stimscript/dsl``, ..., with the built extensions and shipped tables), run by a new empty venv whose
site-packages holds one ``.pth`` file naming the copy and this venv's site-packages (for lark and the other
libraries), and compared with that empty venv's own ``python -c pass`` (which reads the same ``.pth``, as any
venv reads its site-packages at start-up): the stricter ratio, as a wheel install gives it. A ``.pth`` rather
than ``PYTHONPATH``: a folder on ``PYTHONPATH`` comes *before* the standard library on ``sys.path``, so every
standard-library import of the measured command would first search the copy and the libraries (about 2M
instructions of a ~120M ``check``), which no wheel install pays: pip puts a package into site-packages, after
the standard library.

The non-editable copy is run two ways: ``python -m stimscript.cli`` (which also imports :mod:`runpy`) and the
``stimscript`` script pip writes for the console entry point (``import re, sys; from stimscript.cli import
main``), which is what a user types.

``--before DIR`` runs the same commands from another checkout (e.g. ``git worktree add /tmp/before <rev>``),
imported through a small finder that maps the repository's folders onto ``stimscript.*`` as setup.py does;
the current checkout is then measured through the same finder too, so both pay the same; without
``--editable-only`` the other checkout is also laid out non-editable beside this one and run by an empty venv of
its own, alike but for the copy its ``.pth`` names. Finally ``python -X importtime`` shows the slowest imports
of ``check`` and which heavy libraries it loads.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 3.0
HEAVY = ("numpy", "rich", "matplotlib", "sqlite3", "usb", "serial", "platformdirs", "lark", "hashlib", "zipfile")

#: runs the CLI of the checkout in argv[1] (imported through a finder, as setup.py maps the folders)
BOOT = r'''
import sys
root = sys.argv.pop(1)
sys.path.insert(0, BENCHMARKS)
from checkout import use_checkout
use_checkout(root)
from stimscript import cli
if hasattr(cli, "entry"):   # the program's own ending (a checkout from before it had only main)
    cli.entry()
sys.exit(cli.main(sys.argv[1:]))
'''.replace("BENCHMARKS", repr(os.path.join(HERE, "benchmarks")))


#: the folders setup.py installs as ``stimscript.<name>`` (package_dir)
SUBPACKAGES = ("dsl", "compiler", "programs", "runtime", "drivers", "ext")


def stage_install(root: str, dest: str) -> str:
    """A copy of checkout ``root`` laid out as a non-editable install (setup.py's package_dir) under
    ``dest``; returns the folder to put on ``sys.path``. The built extensions and shipped tables come along."""
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "*.pyx", "build")
    target = os.path.join(dest, "stimscript")
    os.makedirs(dest, exist_ok=True)
    shutil.copytree(os.path.join(root, "stimscript"), target, ignore=ignore)
    for name in SUBPACKAGES:
        shutil.copytree(os.path.join(root, name), os.path.join(target, name), ignore=ignore)
    return dest


#: the script pip writes for a console entry point (``stimscript = stimscript.cli:FUNCTION``; FUNCTION is what
#: the checkout's pyproject.toml names: :func:`entry_function`)
ENTRY_POINT = """# -*- coding: utf-8 -*-
import re
import sys
from stimscript.cli import FUNCTION
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(FUNCTION())
"""


def entry_function(root: str) -> str:
    """The function of ``stimscript.cli`` that checkout ``root``'s console script calls (its pyproject.toml)."""
    import re

    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as fh:   # [project.scripts] (no tomllib on 3.10)
        found = re.search(r'^stimscript\s*=\s*"([^"]+)"', fh.read(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{root}: pyproject.toml names no `stimscript` console script")
    target = found.group(1)
    module, function = target.split(":")
    if module != "stimscript.cli":
        raise SystemExit(f"{root}: the console script is {target}, not a function of stimscript.cli")
    return function


def write_pth(home: str, folders: list[str]) -> str:
    """Puts ``folders`` on the ``sys.path`` of venv ``home`` as an installed package is put there: one ``.pth``
    file in its site-packages (read by :mod:`site` at start-up, the folders appended after the standard
    library); returns the file's path."""
    import sysconfig

    purelib = sysconfig.get_path("purelib", vars={"base": home, "platbase": home})
    os.makedirs(purelib, exist_ok=True)
    path = os.path.join(purelib, "stimscript-bench.pth")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{folder}\n" for folder in folders))
    return path


def non_editable_commands(roots: dict[str, str], file: str, dest: str) -> tuple[dict[str, list[str]], dict]:
    """``python -c pass`` of a new empty venv, and ``check``, ``stimscript check`` (the entry-point script),
    ``--help`` and ``check --help`` of a non-editable copy of each checkout in ``roots`` (label -> checkout);
    returns the commands and, per command, its environment.

    Each copy gets an empty venv of its own whose ``.pth`` (:func:`write_pth`) names the copy and this venv's
    site-packages (lark and the other libraries): after the standard library on ``sys.path``, where pip installs
    a wheel. The venvs differ only in one digit of their folder names, so the ``python -c pass`` of the first
    (which reads its ``.pth`` like every venv start does) is the baseline of them all."""
    import site
    import sysconfig
    import venv

    libs = [p for p in site.getsitepackages() if os.path.isdir(p)] or [sysconfig.get_paths()["purelib"]]
    commands: dict[str, list[str]] = {}
    envs: dict[str, dict] = {}
    for n, (label, root) in enumerate(roots.items(), 1):
        folder = stage_install(root, os.path.join(dest, f"site-{n}"))
        home = os.path.join(dest, f"venv-{n}")
        venv.create(home, with_pip=False, symlinks=True)
        write_pth(home, [folder, *libs])
        py = os.path.join(home, "bin", "python")
        if not commands:
            commands[f"{NE}python -c pass"] = [py, "-c", "pass"]
            envs[f"{NE}python -c pass"] = environment()
        script = os.path.join(folder, "stimscript-entry-point")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(ENTRY_POINT.replace("FUNCTION", entry_function(root)))
        cli = [py, "-m", "stimscript.cli"]
        staged = {f"{NE}{label}check": [*cli, "check", os.path.abspath(file)],
                  f"{NE}{label}stimscript check": [py, script, "check", os.path.abspath(file)],
                  f"{NE}{label}--help": [*cli, "--help"],
                  f"{NE}{label}check --help": [*cli, "check", "--help"]}
        commands.update(staged)
        envs.update(dict.fromkeys(staged, environment()))
    return commands, envs


def environment() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(cmd: list[str], env: dict, cwd: str = HERE) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; the CPU time (user + system, from the child's rusage) is what the
    command itself spent, so it varies less than the wall time when others use the machine."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')}")
    return dt, (usage.ru_utime + usage.ru_stime) * 1000


def measure(commands: dict[str, list[str]], runs: int, envs: dict[str, tuple[dict, str]]
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU ms of every command, ``runs`` rounds interleaved; ``envs``: each command's environment
    and working folder."""
    for name, cmd in commands.items():  # warm-up: bytecode written, file caches warm, parser tables cached
        run_once(cmd, *envs[name])
        run_once(cmd, *envs[name])
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            w, c = run_once(cmd, *envs[name])
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


NE = "non-editable: "


def table(title: str, times: dict[str, list[float]], before: bool) -> None:
    """Median and best of each command and their ratios to the ``python -c pass`` of the same interpreter
    (the venv's for the editable rows, the empty venv's for the non-editable ones)."""
    print(title)
    print(f"  {'command':<42} {'median':>9} {'best':>9}   ratio to python -c pass (median / best)")
    for name, ts in times.items():
        base = times[f"{NE}python -c pass" if name.startswith(NE) else "python -c pass"]
        base_med, base_min = statistics.median(base), min(base)
        med, best = statistics.median(ts), min(ts)
        ratio = f"{med / base_med:5.1f}x / {best / base_min:4.1f}x"
        flag = ""
        if name.endswith(" check") and "before" not in name:
            flag = "  within 3x" if med / base_med <= TARGET else "  OVER the 3x target"
        print(f"  {name:<42} {med:7.1f} ms {best:7.1f} ms   {ratio}{flag}")
    if before:
        for prefix, what in (("", "check"), ("", "--help"), ("", "check --help"), (NE, "check"),
                             (NE, "stimscript check"), (NE, "--help"), (NE, "check --help")):
            b_name, a_name = f"{prefix}before: {what}", f"{prefix}after:  {what}"
            if b_name not in times:
                continue
            base_med = statistics.median(times[f"{prefix}python -c pass"])
            b, a = statistics.median(times[b_name]), statistics.median(times[a_name])
            print(f"  {prefix or 'editable: '}{what}: {b:.0f} ms -> {a:.0f} ms ({b / a:.1f}x faster); "
                  f"ratio to python -c pass {b / base_med:.1f}x -> {a / base_med:.1f}x")


def importtime(cmd: list[str], env: dict, top: int = 12, cwd: str = HERE
               ) -> tuple[list[tuple[int, int, str]], set[str]]:
    """(cumulative µs, self µs, module) of the slowest top-level imports, and the heavy libraries loaded."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env, cwd=cwd)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        rows.append((int(cum_us), int(self_us), name.rstrip()))
    loaded = {r[2].strip() for r in rows}
    heavy = {h for h in HEAVY if h in loaded}
    depth1 = [r for r in rows if not r[2].startswith("   ")]  # imports made by the program itself
    return sorted(depth1, reverse=True)[:top], heavy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--before", help="another checkout to measure side by side")
    ap.add_argument("--file", default=os.path.join("examples", "tka_quadriceps.stim"))
    ap.add_argument("--editable-only", action="store_true", help="skip the non-editable copy (quicker)")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench_startup_")   # the boot script and the staged copies, removed at the end
    try:
        run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, scratch: str) -> None:
    env = environment()
    py = sys.executable
    boot = os.path.join(scratch, "boot.py")
    with open(boot, "w", encoding="utf-8") as fh:
        fh.write(BOOT)

    commands: dict[str, list[str]] = {"python -c pass": [py, "-c", "pass"]}
    if args.before:
        before = os.path.abspath(args.before)
        for label, root in (("before: ", before), ("after:  ", HERE)):
            commands[f"{label}check"] = [py, boot, root, "check", args.file]
        for label, root in (("before: ", before), ("after:  ", HERE)):
            commands[f"{label}--help"] = [py, boot, root, "--help"]
        for label, root in (("before: ", before), ("after:  ", HERE)):
            commands[f"{label}check --help"] = [py, boot, root, "check", "--help"]
    commands["installed: check"] = [py, "-m", "stimscript.cli", "check", args.file]
    commands["installed: --help"] = [py, "-m", "stimscript.cli", "--help"]
    envs = {name: (env, HERE) for name in commands}
    if not args.editable_only:
        # run from the copy's folder: `python -m` from the checkout would import its stimscript/ folder instead
        staging = os.path.join(scratch, "installed")
        os.mkdir(staging)
        roots = {"before: ": os.path.abspath(args.before), "after:  ": HERE} if args.before else {"": HERE}
        staged, staged_envs = non_editable_commands(roots, args.file, staging)
        commands.update(staged)
        envs.update({name: (staged_envs[name], staging) for name in staged})

    wall, cpu = measure(commands, args.runs, envs)
    table(f"start-up, wall time, {args.runs} interleaved runs each, {py} (installed: the editable install; "
          f"{NE}a copy laid out as a wheel installs it, run by an empty venv)", wall, bool(args.before))
    table("start-up, CPU time (user + system) of the same runs", cpu, bool(args.before))

    top, heavy = importtime(commands["installed: check"], env)
    print("\npython -X importtime stimscript check (slowest imports made by the program, cumulative):")
    for cum, _self_us, name in top:
        print(f"  {cum / 1000:7.1f} ms  {name.strip()}")
    print(f"  heavy libraries loaded by check: {', '.join(sorted(heavy)) or 'none'}")
    _, heavy_help = importtime(commands["installed: --help"], env)
    print(f"  heavy libraries loaded by --help: {', '.join(sorted(heavy_help)) or 'none'}")
    if not args.editable_only:
        name = f"{NE}{'after:  ' if args.before else ''}check"
        top, _ = importtime(commands[name], staged_envs[name], cwd=staging)
        print("\npython -X importtime of the non-editable check (slowest imports, cumulative):")
        for cum, _self_us, name in top:
            print(f"  {cum / 1000:7.1f} ms  {name.strip()}")


if __name__ == "__main__":
    main()
