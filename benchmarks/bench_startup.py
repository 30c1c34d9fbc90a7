"""Start-up of ``stimscript check`` and ``stimscript --help`` against a bare ``python -c pass`` (the performance
targets: ``check`` of a small file within 3x), measured side by side in one run.

    python benchmarks/bench_startup.py [--runs 21] [--before DIR] [--file examples/tka_quadriceps.stim]

Every command is a fresh process of this interpreter; the runs of all commands are interleaved (pass, check,
--help, pass, ...) so a busy machine slows them alike, and the median and the best of ``--runs`` are printed
with their ratio to ``python -c pass``, for the wall time and for the CPU time of the same runs (user +
system of the process: steadier than the wall time on a machine others are using). Bytecode is written and reused as after a normal install (the
variable PYTHONDONTWRITEBYTECODE is removed for the measured processes, after warm-up runs).

``--before DIR`` runs the same commands from another checkout (e.g. ``git worktree add /tmp/before <rev>``),
imported through a small finder that maps the repository's folders onto ``stimscript.*`` as setup.py does;
the current checkout is then measured through the same finder too, so both pay the same. Finally
``python -X importtime`` shows the slowest imports of ``check`` and which heavy libraries it loads.
"""
from __future__ import annotations

import argparse
import os
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
from stimscript.cli import main
sys.exit(main(sys.argv[1:]))
'''.replace("BENCHMARKS", repr(os.path.join(HERE, "benchmarks")))


def environment() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; the CPU time (user + system, from the child's rusage) is what the
    command itself spent, so it varies less than the wall time when others use the machine."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=HERE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')}")
    return dt, (usage.ru_utime + usage.ru_stime) * 1000


def measure(commands: dict[str, list[str]], runs: int, env: dict
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    for cmd in commands.values():  # warm-up: bytecode written, file caches warm, parser tables cached
        run_once(cmd, env)
        run_once(cmd, env)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            w, c = run_once(cmd, env)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


def table(title: str, times: dict[str, list[float]], before: bool) -> None:
    base_med = statistics.median(times["python -c pass"])
    base_min = min(times["python -c pass"])
    print(title)
    print(f"  {'command':<22} {'median':>9} {'best':>9}   ratio to python -c pass (median / best)")
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        ratio = f"{med / base_med:5.1f}x / {best / base_min:4.1f}x"
        flag = ""
        if "check" in name and not name.startswith("before"):
            flag = "  within 3x" if med / base_med <= TARGET else "  OVER the 3x target"
        print(f"  {name:<22} {med:7.1f} ms {best:7.1f} ms   {ratio}{flag}")
    if before:
        b = statistics.median(times["before: check"])
        a = statistics.median(times["after:  check"])
        print(f"  check: {b:.0f} ms -> {a:.0f} ms ({b / a:.1f}x faster); "
              f"ratio to python -c pass {b / base_med:.1f}x -> {a / base_med:.1f}x")


def importtime(cmd: list[str], env: dict, top: int = 12) -> tuple[list[tuple[int, int, str]], set[str]]:
    """(cumulative µs, self µs, module) of the slowest top-level imports, and the heavy libraries loaded."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env, cwd=HERE)
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
    args = ap.parse_args()
    env = environment()
    py = sys.executable
    boot = os.path.join(tempfile.mkdtemp(prefix="bench_startup_"), "boot.py")
    with open(boot, "w", encoding="utf-8") as fh:
        fh.write(BOOT)

    commands: dict[str, list[str]] = {"python -c pass": [py, "-c", "pass"]}
    if args.before:
        before = os.path.abspath(args.before)
        commands["before: check"] = [py, boot, before, "check", args.file]
        commands["after:  check"] = [py, boot, HERE, "check", args.file]
        commands["before: --help"] = [py, boot, before, "--help"]
        commands["after:  --help"] = [py, boot, HERE, "--help"]
    commands["installed: check"] = [py, "-m", "stimscript.cli", "check", args.file]
    commands["installed: --help"] = [py, "-m", "stimscript.cli", "--help"]

    wall, cpu = measure(commands, args.runs, env)
    table(f"start-up, wall time, {args.runs} interleaved runs each, {py}", wall, bool(args.before))
    table("start-up, CPU time (user + system) of the same runs", cpu, bool(args.before))

    top, heavy = importtime(commands["installed: check"], env)
    print("\npython -X importtime stimscript check (slowest imports made by the program, cumulative):")
    for cum, self_us, name in top:
        print(f"  {cum / 1000:7.1f} ms  {name.strip()}")
    print(f"  heavy libraries loaded by check: {', '.join(sorted(heavy)) or 'none'}")
    _, heavy_help = importtime(commands["installed: --help"], env)
    print(f"  heavy libraries loaded by --help: {', '.join(sorted(heavy_help)) or 'none'}")


if __name__ == "__main__":
    main()
