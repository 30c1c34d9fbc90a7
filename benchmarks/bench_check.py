"""Parse + check a generated, realistic 500-line protocol against the 40 ms target (the performance targets).

    python benchmarks/bench_check.py [--lines 500] [--weeks 12] [--runs 15] [--before /tmp/before]

The protocol: 8 channels (biphasic, asymmetric, burst and doublet pulses; one `with` override in many
session lines), ~20 cycles, ~100 session lines in `repeat` and `for` blocks with `after` offsets and
pauses, a `limits` block, and a progression over ``--weeks`` weeks (`week A..B` blocks plus `every week`
increments with `up to` caps, so every week's state differs and every week is resolved and checked).

The LALR parser is built once (first call, reported separately); each timed run parses the same text anew
and then checks it (``stimscript.loads``) with the checker's memos cleared ("cold"), or again with them
("same text again"). The median and the best of ``--runs`` are printed, wall and CPU time. It also times the
S013 exact overlap check of a 30-minute, 8-channel, 50 Hz session on a device with one shared current source.

Every checkout is measured in its own long-lived worker process (this script with ``--worker``), and the
runs are interleaved: one run in each worker, the order alternating from round to round. On a shared or
throttled machine a slow minute then falls on every checkout alike, so the ratios stay meaningful even when
the absolute times drift.

``--scaling [500,1000,5000,20000]`` prints parse + check time per input line at each size and its ratio to
the smallest protocol's (checking must be linear in the input), best of at least 3 runs per size. Every size
shares the same ~260 lines of declarations (channels, cycles, progression), which are cheaper per line than
session lines, so the time per input line rises towards the session lines' cost even when checking is
linear; the table therefore also prints the marginal cost of the lines added since the previous size,
``(T(n) - T(prev)) / (n - prev)``, which is constant for a linear checker whatever the mix (the share of
session lines among the added lines is the same at every size). Above 500 lines the generator shortens every
duration (``time_scale``) so the session stays as long as the 500-line one's and passes its own limits: the
input grows, the session does not.

``--scaling SIZES --instructions`` counts instead of timing: valgrind's callgrind counts the instructions of
one cold parse + check at each size (a process doing two checks minus one doing one), which no load on the
machine changes; the marginal count per added line shows linearity without noise (slow: minutes per size).

``--before DIR`` measures another checkout (e.g. ``git worktree add /tmp/before <rev>``) side by side: its
worker imports ``stimscript`` from DIR (benchmarks/checkout.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from typing import Optional

TARGET_MS = 40.0
SITES = ["vastus_medialis", "vastus_lateralis", "rectus_femoris", "biceps_femoris", "tibialis_anterior",
         "gastrocnemius_medialis", "soleus", "gluteus_maximus"]
PULSES = ["biphasic 300 us gap 50 us", "biphasic 250 us", "asymmetric 200 us ratio 4 gap 50 us",
          "biphasic width gap 50 us", "burst 2.5 kHz for 10 ms", "biphasic 350 us gap 100 us",
          "doublet 250 us spacing 5 ms", "biphasic width"]
FREQS = [50, 40, 35, 50, 50, 30, 20, 45]


#: the size at time scale 1: its session lasts 2 h 29 min (week 1), inside the protocol's own `max duration 3 h`
_BASE_LINES = 500
N_CYCLES = 20
#: the shortest `ramp up` of a shortened protocol (6 periods at 20 Hz: the first pulse stays below 10 mA)
RAMP_FLOOR_MS = 400
#: the extra shortening of everything else that makes room for the ramps' floor
_ROOM = Fraction(3, 5)


def time_scale(lines: int, head_lines: int) -> Fraction:
    """How much every duration of a ``lines``-line protocol is shortened so its session stays as long as the
    500-line one's (about 2.5 h): 1 up to 500 lines; above, the 500-line protocol's session lines over this
    one's (``head_lines`` lines come before the session at every size). Without it a 1000-line protocol
    lasts 8.5 h (above its own `max duration 3 h`) and a 5000-line one 56 h (above the 24 h bound)."""
    if lines <= _BASE_LINES:
        return Fraction(1)
    # _ROOM: room for the ramps' floor (RAMP_FLOOR_MS) and the rounding to whole milliseconds, so the longest
    # week stays below 3 h
    return _ROOM * Fraction(_BASE_LINES - head_lines, lines - head_lines)


def _dur(seconds, scale: Fraction, unit: str = "s") -> str:
    """``seconds`` (written in ``unit`` at scale 1) shortened by ``scale``: the same text at scale 1, else whole
    milliseconds (at least 1 ms unless 0)."""
    per = {"s": 1, "min": 60, "ms": Fraction(1, 1000)}[unit]
    if scale == 1:
        value = Fraction(seconds) / per
        return f"{int(value) if value.denominator == 1 else float(value):g} {unit}"
    ms = round(Fraction(seconds) * scale * 1000)
    ms = max(1, ms) if seconds else 0
    return f"{ms} ms"


def make_protocol(lines: int = 500, weeks: int = 12) -> str:
    """A realistic protocol of about ``lines`` lines (see the module docstring). Above 500 lines every duration
    is shortened by :func:`time_scale` so the session keeps the 500-line protocol's length and passes its own
    limits: the input grows, the session does not (checking must be linear in the input)."""
    head_lines = len(_head(weeks, Fraction(1)))
    sc = time_scale(lines, head_lines)
    d = lambda sec, unit="s": _dur(sec, sc, unit)  # noqa: E731
    out = _head(weeks, sc)
    k = 0
    body_lines = lines - 1
    while len(out) < body_lines - 6:
        k += 1
        a, b, c = 1 + k % 8, 1 + (k + 3) % 8, 1 + (k + 5) % 8
        cyc = 1 + k % N_CYCLES
        if k % 6 == 0:
            out += ["    for block {", f"        ch{a}: c{cyc}",
                    f"        ch{b}, ch{c}: continuous after {d(k % 4 + 1)}", "    }"]
        elif k % 3 == 0:
            out += [f"    repeat {2 + k % 4} {{", f"        ch{a}, ch{b}: c{cyc}",
                    f"        ch{c}: c{1 + (k + 7) % N_CYCLES} with frequency {25 + 5 * (k % 5)} Hz, "
                    f"amplitude {70 + 5 * (k % 4)}% i{c} after {d(k % 3)}", "    }"]
        else:
            out += [f"    repeat {1 + k % 3} {{", f"        ch{a}: c{cyc}", f"        ch{b}: c{1 + (k + 2) % N_CYCLES} "
                    f"after {d(k % 5)}", f"        ch{c}: c{1 + (k + 4) % N_CYCLES} after {d(Fraction(1, 2), 'ms')}",
                    "    }"]
        if k % 5 == 0:
            out.append(f"    pause {d(60 * (k % 7 + 1), 'min')}")
    out += ["}"]
    return "\n".join(out) + "\n"


def _head(weeks: int, sc: Fraction) -> list[str]:
    """Everything before the session's blocks (its line count does not depend on ``sc``)."""
    d = lambda sec, unit="s": _dur(sec, sc, unit)  # noqa: E731
    out = ["stimscript 1", "", 'protocol "Generated multi-muscle NMES programme (benchmark)" {',
           '    reference "benchmarks/bench_check.py"',
           '    indication "lower-limb weakness after prolonged ICU stay"',
           '    author "stimscript benchmarks"', '    version "1.0"',
           f"    plan 3 sessions per week, {weeks} weeks", "}", ""]
    for c in range(1, 9):
        out.append(f'param i{c} = {20 + c} mA in 10 mA .. 70 mA "channel {c}: maximum tolerated"')
    out += ['param width = 300 us in 200 us .. 400 us "phase width"',
            f'param block = {d(300, "min")} in {d(120, "min")} .. {d(600, "min")} "length of the continuous blocks"',
            ""]
    out += ["limits {", "    max current 90 mA", "    max frequency 100 Hz", "    max pulse width 1 ms",
            "    max charge 40 uC", "    max duration 3 h", "}", ""]
    for c in range(1, 9):
        out += [f"electrode p{c} 5 cm x 9 cm", f"electrode d{c} {6 + c % 3} cm x 10 cm"]
    out.append("")
    for c in range(1, 9):
        out += [f"channel ch{c} {c} {{", f"    site {SITES[c - 1]} {'left' if c % 2 else 'right'}",
                f"    electrodes p{c} -> d{c}", f"    pulse {PULSES[c - 1]}", f"    frequency {FREQS[c - 1]} Hz",
                f"    amplitude i{c}", "}", ""]
    for k in range(1, N_CYCLES + 1):
        # shortened ramps keep at least RAMP_FLOOR_MS: a ramp of one or two periods delivers its first pulse
        # near full amplitude (an S012 warning per line: the larger inputs would differ in kind, not in size)
        up = d(1 + k % 3) if sc == 1 else f"{max(RAMP_FLOOR_MS, round((1 + k % 3) * sc * 1000))} ms"
        body = [f"cycle c{k} {{", f"    ramp up {up}", f"    hold {d(2 + k % 7)}"]
        if k % 4:
            body.append(f"    ramp down {d(k % 2 + 1)}")
        body += [f"    rest {d(10 + 2 * k)}", "}", ""]
        out += body
    out += ["progression {"]
    step = max(1, weeks // 4)
    w = 1
    while w <= weeks:
        last = min(weeks, w + step - 1)
        rng = f"{w}" if last == w else f"{w}..{last}"
        out += [f"    week {rng} {{", f"        c1.hold = {d(2 + w % 5)}", f"        c2.rest = {d(20 - w % 6)}",
                f"        width = {300 + 10 * (w % 6)} us", "    }"]
        w = last + 1
    out += ["    every week {"]
    for c in range(1, 9):
        out.append(f"        i{c} += {1 + c % 3} mA up to {50 + c} mA")
    out += [f"        c3.hold += {d(1)} up to {d(12)}", f"        block += {d(30)} up to {d(480, 'min')}", "    }",
            "}", "", "session {"]
    return out


def session_lines(text: str) -> int:
    """Lines inside blocks of the session that drive channels (``CHANNELS: CYCLE``)."""
    body = text.split("\nsession {", 1)[1]
    return sum(1 for ln in body.splitlines() if ":" in ln)


def timed(fn, runs: int, before=None) -> list[float]:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _forget():
    """Clear the checker's memos (when this checkout has them), so a run starts cold."""
    from stimscript.compiler import safety

    clear = getattr(safety, "clear_caches", None)
    if clear is not None:
        clear()


def _overlap_trains():
    from fractions import Fraction

    from stimscript.compiler.ir import PulseShape, Train

    def train(ch, start, cycles, cycle_us, on_us, up, down):
        p = Fraction(10**6, 50)
        return Train(ch, start, cycles, cycle_us, on_us, up, down, p.numerator, p.denominator, 40_000, 1, 0)

    bi = PulseShape(((250, 1.0), (250, -1.0)), "biphasic")
    cyc = [train(c, (c - 1) * 2500, 120, 15_000_000, 10_000_000, 2_000_000, 1_000_000) for c in range(1, 9)]
    cont = [train(c, (c - 1) * 2500, 1, 1800 * 10**6, 1800 * 10**6, 0, 0) for c in range(1, 9)]
    return (bi,), cyc, cont


class _Work:
    """What one worker process measures, one run per request, on the code importable as ``stimscript``."""

    def __init__(self, weeks: int):
        t0 = time.perf_counter()
        import stimscript
        from stimscript.dsl.parser import get_parser

        get_parser()
        self.build_ms = (time.perf_counter() - t0) * 1000
        self.weeks = weeks
        self.texts: dict[int, str] = {}
        self.info: dict[int, dict] = {}
        self.file = stimscript.__file__
        self._overlap = None
        self._shared = None

    def text(self, lines: int) -> str:
        if lines not in self.texts:
            import stimscript
            from stimscript.dsl.parser import parse

            text = self.texts[lines] = make_protocol(lines, self.weeks)
            proto = stimscript.loads(text, "bench.stim")    # warm-up (and: the protocol must check without errors)
            parse(text, "bench.stim")
            resolved = proto.resolve(1)
            self.info[lines] = {
                "file": self.file, "lines": text.count("\n"), "chars": len(text),
                "session_lines": session_lines(text), "weeks": self.weeks, "channel_uses": len(resolved.uses),
                "trains": len(resolved.trains), "warnings": len(proto.warnings), "build_ms": self.build_ms}
            self._shared_resolved = resolved
        return self.texts[lines]

    def run(self, what: str, lines: int) -> tuple[float, float]:
        """One timed run of ``what``: (wall ms, CPU ms)."""
        import stimscript
        from stimscript.compiler.safety import check_safety, find_overlaps
        from stimscript.dsl.parser import parse

        text = self.text(lines)
        if what == "parse":
            fn = lambda: parse(text, "bench.stim")  # noqa: E731
        elif what in ("cold", "warm"):
            if what == "cold":
                _forget()
            fn = lambda: stimscript.loads(text, "bench.stim")  # noqa: E731
        elif what in ("overlap", "overlap_warm"):
            if self._overlap is None:
                self._overlap = _overlap_trains()
                find_overlaps(self._overlap[1], self._overlap[0], shared_source=True)
            shapes, cyc, cont = self._overlap
            if what == "overlap":
                _forget()
            fn = lambda: (find_overlaps(cyc, shapes, shared_source=True),  # noqa: E731
                          find_overlaps(cont, shapes, shared_source=True))
        elif what == "shared":
            # S013 through check_safety on a shared-source device: the protocol's session 1
            from stimscript.profile import DeviceProfile

            if self._shared is None:
                self._shared = DeviceProfile(name="shared", independent_sources=False)
                check_safety(self._shared_resolved, self._shared)
            resolved, shared = self._shared_resolved, self._shared
            _forget()
            fn = lambda: check_safety(resolved, shared)  # noqa: E731
        else:
            raise ValueError(what)
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000


def serve(weeks: int) -> None:
    """Worker loop (``--worker``): read ``WHAT LINES`` per line, answer one JSON line per request."""
    work = _Work(weeks)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        what, lines = line.split()
        if what == "info":
            work.text(int(lines))
            print(json.dumps(work.info[int(lines)]), flush=True)
            continue
        wall, cpu = work.run(what, int(lines))
        print(json.dumps([wall, cpu]), flush=True)


class Worker:
    """A persistent measuring process for one checkout (``root=None``: the code importable here)."""

    def __init__(self, root: Optional[str], weeks: int):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--weeks", str(weeks)]
        if root:
            cmd += ["--root", os.path.abspath(root)]
        self.root = os.path.abspath(root) if root else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._ask("")

    def _ask(self, request: str):
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if request:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"bench_check: the worker for {self.root or 'this checkout'} stopped")
        return json.loads(answer)

    def info(self, lines: int) -> dict:
        return self._ask(f"info {lines}")

    def run(self, what: str, lines: int) -> tuple[float, float]:
        wall, cpu = self._ask(f"{what} {lines}")
        return wall, cpu

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def interleaved(workers: list[Worker], what: str, lines: int, runs: int) -> list[dict[str, list[float]]]:
    """``runs`` rounds of one run per worker, the order alternating each round, so a slow minute of a noisy
    machine falls on every checkout alike. Per worker: {"wall": [...], "cpu": [...]} in ms."""
    out: list[dict[str, list[float]]] = [{"wall": [], "cpu": []} for _ in workers]
    order = list(range(len(workers)))
    for _ in range(runs):
        for k in order:
            wall, cpu = workers[k].run(what, lines)
            out[k]["wall"].append(wall)
            out[k]["cpu"].append(cpu)
        order.reverse()
    return out


def measure_scaling(workers: list[Worker], sizes: list[int], runs: int) -> list[list[dict]]:
    """Per worker, per size: parse and parse + check (cold memos), best of the interleaved runs (at least 3
    even at 20,000 lines), wall and CPU time."""
    tables: list[list[dict]] = [[] for _ in workers]
    for lines in sizes:
        infos = [w.info(lines) for w in workers]
        n = max(3, min(runs, runs * 500 // lines))
        p = interleaved(workers, "parse", lines, n)
        pc = interleaved(workers, "cold", lines, n)
        for k, info in enumerate(infos):
            tables[k].append({"lines": info["lines"], "session_lines": info["session_lines"], "runs": n,
                              "parse": min(p[k]["wall"]), "parse_check": min(pc[k]["wall"]),
                              "parse_check_cpu": min(pc[k]["cpu"]),
                              "parse_check_median": statistics.median(pc[k]["wall"]),
                              "warnings": info["warnings"]})
    return tables


def report_scaling(title: str, rows: list[dict]) -> None:
    print(f"{title}: parse + check (loads, cold memos) by input size, best of the interleaved runs")
    print(f"  {'lines':>6} {'session':>7} {'runs':>4} {'parse ms':>9} {'parse+check ms':>15} {'(CPU ms)':>9}"
          f" {'µs/line':>8} {'ratio to first':>14} {'warnings':>9}")
    base = rows[0]["parse_check"] / rows[0]["lines"]
    for r in rows:
        per = r["parse_check"] / r["lines"]
        print(f"  {r['lines']:>6} {r['session_lines']:>7} {r['runs']:>4} {r['parse']:>9.1f} {r['parse_check']:>15.1f}"
              f" {r['parse_check_cpu']:>9.1f} {per * 1000:>8.1f} {per / base:>14.2f} {r['warnings']:>9}")
    if len(rows) > 2:
        print("  marginal cost of the added lines (linear checking keeps it constant; `session` counts the lines that"
              " drive channels):")
        first = first_cpu = None
        for prev, r in zip(rows, rows[1:]):
            added = r["lines"] - prev["lines"]
            marg = (r["parse_check"] - prev["parse_check"]) / added
            marg_cpu = (r["parse_check_cpu"] - prev["parse_check_cpu"]) / added
            margp = (r["parse"] - prev["parse"]) / added
            first = first or marg
            first_cpu = first_cpu or marg_cpu
            print(f"  {prev['lines']:>6} -> {r['lines']:>6}: parse {margp * 1000:6.1f} µs/line, parse + check"
                  f" {marg * 1000:6.1f} µs/line ({marg / first:.2f} x the first step), CPU {marg_cpu * 1000:6.1f}"
                  f" µs/line ({marg_cpu / first_cpu:.2f} x)")


def _line(label: str, times: list[float], target: bool = False) -> str:
    best, med = min(times), statistics.median(times)
    s = f"  {label:<34} best {best:8.2f} ms  median {med:8.2f} ms"
    if target:
        s += f"  (median {med / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms target{': OVER' if med > TARGET_MS else ''})"
    return s


def report(title: str, r: dict) -> None:
    print(f"{title}  [{os.path.dirname(os.path.dirname(r['file']))}]")
    print(f"  protocol: {r['lines']} lines, {r['chars']} characters, {r['session_lines']} session lines, "
          f"{r['weeks']} weeks; session 1: {r['channel_uses']} channel uses, {r['trains']} trains; "
          f"{r['warnings']} warnings")
    print(f"  parser build (once, incl. import): {r['build_ms']:.1f} ms")
    print(_line("parse", r["parse"]))
    print(_line("parse + check (loads), cold memos", r["parse_check"], target=True))
    print(_line("  the same, CPU time", r["parse_check_cpu"], target=True))
    print(_line("  check alone (best - best parse)", [min(r["parse_check"]) - min(r["parse"])]))
    print(_line("parse + check, same text again", r["parse_check_warm"], target=True))
    print(_line("S013 30 min 8 ch 50 Hz shared, cold", r["overlap"]))
    print(_line("S013 30 min 8 ch 50 Hz shared, again", r["overlap_warm"]))
    print(_line("check_safety session 1, shared, cold", r["check_safety_shared"]))


def measure(workers: list[Worker], lines: int, runs: int) -> list[dict]:
    """Everything this benchmark measures, per worker, interleaved run by run."""
    infos = [w.info(lines) for w in workers]
    few = max(3, runs // 3)
    got = {what: interleaved(workers, what, lines, n) for what, n in
           (("parse", runs), ("cold", runs), ("warm", runs), ("overlap", few), ("overlap_warm", few),
            ("shared", few))}
    return [{**info, "parse": got["parse"][k]["wall"], "parse_check": got["cold"][k]["wall"],
             "parse_check_cpu": got["cold"][k]["cpu"], "parse_check_warm": got["warm"][k]["wall"],
             "overlap": got["overlap"][k]["wall"], "overlap_warm": got["overlap_warm"][k]["wall"],
             "check_safety_shared": got["shared"][k]["wall"]} for k, info in enumerate(infos)]


def _checks_for_count(lines: int, weeks: int, checks: int) -> None:
    """What ``--count-run`` does inside valgrind: build the text, check it once warm-up, then ``checks`` cold
    checks. Two counts (``checks`` 1 and 2) differ by exactly one cold parse + check."""
    import stimscript
    from stimscript.dsl.parser import get_parser

    get_parser()
    text = make_protocol(lines, weeks)
    stimscript.loads(text, "bench.stim")
    for _ in range(checks):
        _forget()
        stimscript.loads(text, "bench.stim")


def count_instructions(root: Optional[str], lines: int, weeks: int) -> int:
    """Instructions of one cold parse + check of the ``lines``-line protocol, counted by valgrind's callgrind
    (independent of the machine's load): the count of a process doing two cold checks minus one doing one."""
    import shutil
    import tempfile

    if shutil.which("valgrind") is None:
        raise SystemExit("bench_check: --instructions needs valgrind (e.g. apt install valgrind)")
    counts = []
    for checks in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "callgrind.out")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                   os.path.abspath(__file__), "--count-run", str(checks), "--lines", str(lines), "--weeks",
                   str(weeks)] + (["--root", os.path.abspath(root)] if root else [])
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out, encoding="utf-8") as f:
                total = next(int(ln.split()[1]) for ln in f if ln.startswith(("summary:", "totals:")))
        counts.append(total)
    return counts[1] - counts[0]


def report_instructions(title: str, sizes: list[int], counts: list[int], weeks: int) -> None:
    print(f"{title}: instructions of one cold parse + check (valgrind callgrind; independent of load)")
    print(f"  {'lines':>6} {'session':>7} {'M instr':>9} {'k instr/line':>13}")
    real = [make_protocol(n, weeks) for n in sizes]
    rows = [(t.count("\n"), session_lines(t), c) for t, c in zip(real, counts)]
    for n, sl, c in rows:
        print(f"  {n:>6} {sl:>7} {c / 1e6:>9.1f} {c / n / 1e3:>13.1f}")
    first = None
    for (n0, _, c0), (n1, _, c1) in zip(rows, rows[1:]):
        marg = (c1 - c0) / (n1 - n0)
        first = first or marg
        print(f"  {n0:>6} -> {n1:>6}: {marg / 1e3:8.1f} k instr per added line ({marg / first:.2f} x the first step)")


def use_checkout(root: str) -> None:
    """Import ``stimscript`` from the checkout ``root`` (benchmarks/checkout.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from checkout import use_checkout as _use

    _use(root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--before", help="another checkout to measure side by side (e.g. a git worktree)")
    ap.add_argument("--scaling", nargs="?", const="500,1000,5000,20000", metavar="SIZES",
                    help="print the scaling table for these line counts instead (default 500,1000,5000,20000)")
    ap.add_argument("--instructions", action="store_true",
                    help="with --scaling: count instructions with valgrind instead of timing (slow: minutes)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--count-run", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.root:
        use_checkout(args.root)
    if args.worker:
        serve(args.weeks)
        return
    if args.count_run is not None:
        _checks_for_count(args.lines, args.weeks, args.count_run)
        return
    sizes = [int(x) for x in args.scaling.split(",")] if args.scaling else None
    if sizes and args.instructions:
        roots = ([args.before] if args.before else []) + [None]
        for title, root in zip(["before" if args.before else "this checkout"] + ["after"], roots):
            report_instructions(title, sizes, [count_instructions(root, n, args.weeks) for n in sizes], args.weeks)
        return
    workers = ([Worker(args.before, args.weeks)] if args.before else []) + [Worker(None, args.weeks)]
    titles = (["before"] if args.before else []) + ["after" if args.before else "this checkout"]
    try:
        if sizes:
            tables = measure_scaling(workers, sizes, args.runs)
            for title, rows in zip(titles, tables):
                report_scaling(title, rows)
            if args.before:
                for b, a in zip(*tables):
                    print(f"  {a['lines']:>6} lines: {b['parse_check']:.0f} ms -> {a['parse_check']:.0f} ms "
                          f"({b['parse_check'] / a['parse_check']:.1f}x)")
            return
        results = measure(workers, args.lines, args.runs)
        for title, r in zip(titles, results):
            report(title, r)
        if args.before:
            b, a = results
            print(f"interleaved run by run ({args.runs} runs each):")
            for key, label in (("parse_check", "parse + check, wall"), ("parse_check_cpu", "parse + check, CPU ")):
                mb, ma = statistics.median(b[key]), statistics.median(a[key])
                print(f"  {label}: median {mb:.1f} ms -> {ma:.1f} ms ({mb / ma:.2f}x); best {min(b[key]):.1f} ms"
                      f" -> {min(a[key]):.1f} ms ({min(b[key]) / min(a[key]):.2f}x)")
            cb = min(b["parse_check"]) - min(b["parse"])
            ca = min(a["parse_check"]) - min(a["parse"])
            print(f"  check alone (best - best parse): {cb:.1f} ms -> {ca:.1f} ms ({cb / max(ca, 1e-9):.2f}x)")
    finally:
        for w in workers:
            w.close()


if __name__ == "__main__":
    main()
