"""Export benchmark (the performance targets): ``compile -o x.csv`` / ``x.npz`` of a 2 h, 8-channel, 100 Hz
session, the current writers against the first round's writers (kept below as the baseline), in one run.

    python benchmarks/bench_export.py [--hours 2] [--repeat 3] [--skip-before]

Each timing includes the expansion (a fresh Schedule each run, as `stimscript compile` builds one), so the
ratios are what a user waits for. The files are compared: the CSV bytes must equal the baseline's, the
npz arrays must equal the baseline's. Peak memory (tracemalloc, numpy's buffers included) is printed for
two session lengths to show the writers stream in flat memory. Not a timed test: nothing asserts.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
import tracemalloc
from fractions import Fraction

import numpy as np

from stimscript.compiler import export
from stimscript.compiler.expander import USING_EXTENSION
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.schedule import Schedule

US = 1_000_000


# --- the first round's writers (the baseline), as they were -------------------------------------
def before_write_npz(schedule: Schedule, path) -> int:
    pulses = schedule.pulses
    np.savez_compressed(path, pulses=pulses, metadata=np.asarray(json.dumps(export.metadata(schedule))),
                        **export.shape_table(schedule))
    return int(len(pulses))


def before_write_csv(schedule: Schedule, path, max_pulses: int = 262144) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(export.CSV_COLUMNS) + "\n")
        for block in schedule.blocks(max_pulses=max_pulses):
            if len(block) == 0:
                continue
            cols = np.column_stack([block["t_us"].astype(np.int64), block["channel"].astype(np.int64),
                                    block["amplitude_ua"].astype(np.int64), block["shape"].astype(np.int64)])
            np.savetxt(fh, cols, fmt="%d", delimiter=",")
            n += len(block)
    return n


# --- the session ----------------------------------------------------------------------------------
def session(hours: float) -> Schedule:
    """8 channels at 100 Hz for ``hours``: 12 s cycles (2 s ramps up and down), staggered by 1.25 ms, with
    amplitudes that differ per channel (ramps give every amplitude width) and two pulse shapes."""
    bi = PulseShape(((300, 1.0), (50, 0.0), (300, -1.0)), "biphasic")
    asym = PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)), "asymmetric")
    duration = int(hours * 3600 * US)
    cycle = on = 12 * US  # back-to-back cycles: 100 Hz throughout, ramps give every amplitude width
    period = Fraction(US, 100)
    trains = [
        Train(channel=ch, start_us=(ch - 1) * 1250, cycles=(duration - (ch - 1) * 1250) // cycle, cycle_us=cycle,
              on_us=on, ramp_up_us=2 * US, ramp_down_us=2 * US, period_num=period.numerator,
              period_den=period.denominator, amp_num=(25 + 7 * ch) * 1000 + 130 * ch, amp_den=1, shape=ch % 2)
        for ch in range(1, 9)
    ]
    return Schedule.from_trains(trains, (bi, asym), duration, title="bench_export")


def timed(fn, hours: float, path: str, repeat: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        sched = session(hours)
        gc.collect()
        t0 = time.perf_counter()
        n = fn(sched, path)
        best = min(best, time.perf_counter() - t0)
        del sched
    return best, n


def peak_mib(fn, hours: float, path: str) -> float:
    sched = session(hours)
    gc.collect()
    tracemalloc.start()
    fn(sched, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-before", action="store_true", help="only the current writers")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_export_")
    f = {k: os.path.join(tmp, k) for k in ("before.csv", "after.csv", "before.npz", "after.npz", "after_z.npz")}
    writers = {
        "csv  after  (stream, numpy digits)": (lambda s, p: export.write_csv(s, p), f["after.csv"]),
        "npz  after  (stream, stored)": (lambda s, p: export.write_npz(s, p), f["after.npz"]),
        "npz  after  --compress (stream)": (lambda s, p: export.write_npz(s, p, compress=True), f["after_z.npz"]),
    }
    if not args.skip_before:
        writers = {"csv  before (numpy.savetxt)": (before_write_csv, f["before.csv"]),
                   "npz  before (savez_compressed)": (before_write_npz, f["before.npz"]), **writers}
    n_expected = session(args.hours).count()
    print(f"session: {args.hours:g} h, 8 channels, 100 Hz, {n_expected:,} pulses; "
          f"expander: {'Cython' if USING_EXTENSION else 'pure-Python reference'}; best of {args.repeat}")
    times = {}
    for label, (fn, path) in writers.items():
        t, n = timed(fn, args.hours, path, args.repeat)
        times[label] = t
        size = os.path.getsize(path) / 2**20
        print(f"  {label:<34} {t:8.2f} s  {n / t / 1e6:6.2f} M pulses/s  {size:8.1f} MiB file")
    if not args.skip_before:
        tb_csv, tb_npz = times["csv  before (numpy.savetxt)"], times["npz  before (savez_compressed)"]
        print(f"csv: {tb_csv:.2f} s -> {times['csv  after  (stream, numpy digits)']:.2f} s "
              f"({tb_csv / times['csv  after  (stream, numpy digits)']:.1f}x faster; target >= 5x)")
        print(f"npz: {tb_npz:.2f} s -> {times['npz  after  (stream, stored)']:.2f} s "
              f"({tb_npz / times['npz  after  (stream, stored)']:.1f}x faster; target >= 10x); "
              f"--compress {tb_npz / times['npz  after  --compress (stream)']:.1f}x")
        with open(f["before.csv"], "rb") as a, open(f["after.csv"], "rb") as b:
            same = a.read() == b.read()
        print(f"csv bytes identical to the baseline's: {same}")
        with np.load(f["before.npz"]) as zb, np.load(f["after.npz"]) as za, np.load(f["after_z.npz"]) as zz:
            same_npz = sorted(zb.files) == sorted(za.files) == sorted(zz.files) and all(
                np.array_equal(zb[k], za[k]) and np.array_equal(zb[k], zz[k]) for k in zb.files)
        print(f"npz arrays identical to the baseline's (stored and --compress): {same_npz}")

    print("peak traced memory (MiB) by session length:")
    lengths = (args.hours / 4, args.hours)
    rows = [("csv after", lambda s, p: export.write_csv(s, p), f["after.csv"]),
            ("npz after", lambda s, p: export.write_npz(s, p), f["after.npz"])]
    if not args.skip_before:  # (the old CSV writer streamed too; under tracemalloc it takes minutes)
        rows += [("npz before", before_write_npz, f["before.npz"])]
    print(f"  {'writer':<12}" + "".join(f"{h:>10g} h" for h in lengths))
    for label, fn, path in rows:
        print(f"  {label:<12}" + "".join(f"{peak_mib(fn, h, path):10.1f}  " for h in lengths))
    for p in f.values():
        if os.path.exists(p):
            os.unlink(p)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
