"""Parse (+ check) a generated 500-line, 12-week protocol; prints ms per run against the targets (parse + check
within 40 ms median).

    python benchmarks/bench_parse.py [--lines 500] [--runs 20] [--before DIR] [--rounds 5] [--scaling]

The LALR parser is built once (first call, timed separately); then each run parses the same text anew.
When ``stimscript.loads`` (parse + check) is available it is timed too.

``--before DIR`` measures another checkout (e.g. ``git worktree add /tmp/before <rev>``) side by side: each of
``--rounds`` rounds runs ``--runs`` parses, then ``--runs`` parses + checks, in a fresh process of this
checkout, then of the other (both imported through the same small finder, as bench_startup.py does), and the
medians and bests of all rounds are printed with their ratio.

``--scaling`` (with or without ``--before``) prints the parse time per input line of bench_check.py's
protocol at 500, 1,000, 5,000 and 20,000 lines and its ratio to the 500-line one's (parsing must be linear
in the input).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: times ``parse`` and ``loads`` of the benchmark protocol (or ``parse`` of bench_check.py's at each size) in the
#: checkout argv[1] (imported as setup.py maps the folders)
CHILD = r'''
import json, os, sys, time
root, runs, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, os.path.join(sys.argv[4], "benchmarks"))
from checkout import use_checkout
use_checkout(root)
from bench_parse import SIZES, make_protocol
import stimscript
from stimscript.dsl.parser import parse
out = {}
if sys.argv[5] == "scaling":
    import bench_check
    for size in SIZES:
        text = bench_check.make_protocol(size)
        n = text.count("\n")
        parse(text, "bench.stim")
        out[str(size)] = []
        for _ in range(max(3, runs * 500 // size)):
            t0 = time.perf_counter()
            parse(text, "bench.stim")
            out[str(size)].append((time.perf_counter() - t0) * 1e6 / n)
else:
    text = make_protocol(lines)
    stimscript.loads(text, name="bench.stim")
    for what, fn in (("parse", parse), ("parse + check", stimscript.loads)):
        out[what] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn(text, "bench.stim")
            out[what].append((time.perf_counter() - t0) * 1000)
print(json.dumps(out))
'''

#: the sizes of ``--scaling`` (lines of bench_check.py's protocol)
SIZES = (500, 1000, 5000, 20000)

TARGET_MS = 40.0
SITES = ["vastus_medialis", "vastus_lateralis", "rectus_femoris", "biceps_femoris", "tibialis_anterior",
         "gastrocnemius_medialis", "soleus", "gluteus_maximus"]


def make_protocol(lines: int = 500) -> str:
    """A realistic protocol of about ``lines`` lines: 8 channels, cycles, a long session, a progression."""
    out = ["stimscript 1", "", 'protocol "benchmark" {', '    reference "bench_parse.py"',
           "    plan 2 sessions per week, 12 weeks", "}", ""]
    out += [f'param i{c} = 30 mA in 10 mA .. 60 mA "channel {c}"' for c in range(1, 9)] + [""]
    for c in range(1, 9):
        out += [f"electrode p{c} 5 cm x 9 cm", f"electrode d{c} 5 cm x 9 cm"]
    out.append("")
    for c in range(1, 9):
        out += [f"channel ch{c} {c} {{", f"    site {SITES[c - 1]} {'left' if c % 2 else 'right'}",
                f"    electrodes p{c} -> d{c}", "    pulse biphasic 250 us gap 50 us", "    frequency 40 Hz",
                f"    amplitude i{c}", "}", ""]
    for k in range(1, 9):
        out += [f"cycle c{k} {{", "    ramp up 1 s", f"    hold {k} s", "    ramp down 1 s",
                f"    rest {10 + k} s", "}", ""]
    out += ["progression {"]
    for w in range(1, 13):
        out += [f"    week {w} {{", f"        c1.hold = {1 + w % 5} s", "    }"]
    out += ["    every week {", "        i1 += 1 mA up to 50 mA", "    }", "}", "", "session {"]
    k = 0
    while len(out) < lines - 2:
        k += 1
        out += [f"    repeat {1 + k % 3} {{", f"        ch{1 + k % 8}, ch{1 + (k + 3) % 8}: c{1 + k % 8}",
                f"        ch{1 + (k + 1) % 8}: c{1 + (k + 2) % 8} after {k % 4} s", "    }"]
        if k % 5 == 0:
            out.append(f"    pause {k % 7 + 1} s")
    out += ["}"]
    return "\n".join(out) + "\n"


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=500)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--before", help="another checkout to measure side by side")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scaling", action="store_true", help="parse time per line at 500 to 20,000 lines")
    args = ap.parse_args()
    if args.before or args.scaling:
        side_by_side(os.path.abspath(args.before) if args.before else "", args)
        return

    t0 = time.perf_counter()
    from stimscript.dsl.parser import get_parser, parse
    get_parser()
    build_ms = (time.perf_counter() - t0) * 1000
    text = make_protocol(args.lines)
    n_lines = text.count("\n")
    print(f"protocol: {n_lines} lines, {len(text)} characters")
    print(f"parser build (once, incl. import): {build_ms:.1f} ms")

    parse(text)  # warm-up
    p = timed(lambda: parse(text, "bench.stim"), args.runs)
    med = statistics.median(p)
    print(f"parse:          median {med:7.2f} ms  min {min(p):7.2f} ms  ({med / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms "
          f"target)")
    _compare_drivers(text, args.runs)

    try:
        import stimscript
        stimscript.loads(text, name="bench.stim")
    except Exception as exc:  # noqa: BLE001 - report, don't fail: the checker may not exist yet
        print(f"parse + check:  not measured ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})")
        return
    c = timed(lambda: stimscript.loads(text, name="bench.stim"), max(3, args.runs // 2))
    med = statistics.median(c)
    verdict = "OK" if med <= TARGET_MS else "OVER TARGET"
    print(f"parse + check:  median {med:7.2f} ms  min {min(c):7.2f} ms  ({med / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms "
          f"target: {verdict})")


def _compare_drivers(text: str, runs: int) -> None:
    """The fast path's two drivers side by side on ``text``: the pure-Python reference (dsl/lalr.py) and the
    compiled twin (ext/_lalr.pyx) when it is built."""
    import gc

    from stimscript.dsl import parser as parser_mod
    from stimscript.dsl.lalr import TableParser
    from stimscript.dsl.transformer import AstBuilder
    from stimscript.spans import Source

    fast = parser_mod.get_fast_parser()
    tables = parser_mod.read_fast_tables(parser_mod.GRAMMAR.with_name("grammar.tables"),
                                         parser_mod.GRAMMAR.read_text(encoding="utf-8"))
    if fast is None or type(fast) is TableParser or tables is None:
        print("drivers:        the compiled twin is not in use (not built, STIMSCRIPT_NO_EXTENSIONS=1, or the "
              "shipped tables are stale)")
        return
    reference = TableParser(tables)
    times: dict[str, list[float]] = {"reference": [], "compiled": []}
    gc.disable()
    try:
        for _ in range(runs):
            for name, driver in (("reference", reference), ("compiled", fast)):
                t0 = time.perf_counter()
                driver.parse(text, AstBuilder(Source("bench.stim", text)), parser_mod.MAX_DEPTH)
                times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        gc.enable()
    ref, ours = statistics.median(times["reference"]), statistics.median(times["compiled"])
    print(f"drivers:        reference (dsl/lalr.py) median {ref:6.2f} ms, compiled (ext/_lalr.pyx) median {ours:6.2f} ms "
          f"({ref / ours:.1f}x)")


def _child(root: str, args, mode: str) -> dict[str, list[float]]:
    proc = subprocess.run([sys.executable, "-c", CHILD, root, str(args.runs), str(args.lines), HERE, mode],
                          capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        raise SystemExit(f"{root} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def side_by_side(before: str, args) -> None:
    mode = "scaling" if args.scaling else "bench"
    roots = (("after", HERE), ("before", before)) if before else (("after", HERE),)
    times: dict[str, dict[str, list[float]]] = {name: {} for name, _ in roots}
    for _ in range(args.rounds):
        for name, root in roots:
            for what, ts in _child(root, args, mode).items():
                times[name].setdefault(what, []).extend(ts)
    if mode == "scaling":
        print(f"parse time per line of bench_check.py's protocol, {args.rounds} rounds, interleaved")
        for name, _ in roots:
            base = statistics.median(times[name][str(SIZES[0])])
            row = "  ".join(f"{size}: {statistics.median(times[name][str(size)]):6.2f} us/line "
                            f"({statistics.median(times[name][str(size)]) / base:.2f}x)" for size in SIZES)
            print(f"  {name:<7} {row}")
        return
    print(f"the {args.lines}-line benchmark protocol, {args.rounds} rounds x {args.runs} runs each, interleaved")
    for what in ("parse", "parse + check"):
        print(f" {what}:")
        for name, _ in roots:
            ts = times[name][what]
            med = statistics.median(ts)
            verdict = "" if name == "before" or what == "parse" else (
                "  within the 40 ms target" if med <= TARGET_MS else "  OVER the 40 ms target")
            print(f"  {name:<7} median {med:7.2f} ms  best {min(ts):7.2f} ms{verdict}")
        if before:
            b, a = statistics.median(times["before"][what]), statistics.median(times["after"][what])
            print(f"  after / before: median {a / b:.2f} ({b / a:.1f}x faster), "
                  f"best {min(times['after'][what]) / min(times['before'][what]):.2f}")


if __name__ == "__main__":
    main()
