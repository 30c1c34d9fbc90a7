"""Schedule expansion benchmark (the performance targets): Cython twin vs pure-Python reference, measured in one run,
plus the streaming memory of ``Schedule.blocks()`` for a short and a long session.

    python benchmarks/bench_expand.py [--hours 2] [--ref-minutes 5] [--repeat 3]

Not a timed test: it prints numbers and ratios; nothing asserts.
"""
from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from stimscript.compiler import expand_py, expander
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.schedule import Schedule

US_PER_S = 1_000_000


def continuous_trains(channels: int, hz: int, seconds: int) -> list[Train]:
    """``channels`` continuous trains at ``hz``, staggered by 1 ms so the merge really interleaves."""
    on = seconds * US_PER_S
    return [
        Train(channel=ch, start_us=(ch - 1) * 1000, cycles=1, cycle_us=on, on_us=on, ramp_up_us=0,
              ramp_down_us=0, period_num=US_PER_S, period_den=hz, amp_num=40_000, amp_den=1, shape=0)
        for ch in range(1, channels + 1)
    ]


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def stream_peak(sched: Schedule, max_pulses: int) -> tuple[int, int]:
    """(peak traced bytes while streaming every block, pulses seen)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    n = 0
    for block in sched.blocks(max_pulses):
        n += len(block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--ref-minutes", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-pulses", type=int, default=65536)
    args = ap.parse_args()

    print(f"selector: USING_EXTENSION={expander.USING_EXTENSION} impl={expander.impl.__name__}")
    if not expander.USING_EXTENSION:
        print("WARNING: the Cython extension is not loaded; 'Cython' numbers below are the reference")

    # --- throughput ---------------------------------------------------------------------------
    secs = int(args.hours * 3600)
    trains = continuous_trains(8, 100, secs)
    end = max(tr.end_us for tr in trains)
    t_ext, arr = best_of(lambda: expander.impl.expand(trains, 0, end), args.repeat)
    n_ext = len(arr)
    rate_ext = n_ext / t_ext

    ref_secs = int(args.ref_minutes * 60)
    ref_trains = continuous_trains(8, 100, ref_secs)
    ref_end = max(tr.end_us for tr in ref_trains)
    t_ref, ref_arr = best_of(lambda: expand_py.expand(ref_trains, 0, ref_end), 1)
    n_ref = len(ref_arr)
    rate_ref = n_ref / t_ref
    same_slice = np.array_equal(arr[:n_ref], ref_arr)
    del arr

    print(f"\nexpand: 8 channels x 100 Hz, continuous")
    print(f"  Cython    {args.hours:g} h : {n_ext:>10,d} pulses in {t_ext * 1e3:8.1f} ms (best of {args.repeat})"
          f" = {rate_ext / 1e6:7.2f} M pulses/s")
    print(f"  reference {args.ref_minutes:g} min slice: {n_ref:>10,d} pulses in {t_ref * 1e3:8.1f} ms"
          f" = {rate_ref / 1e6:7.3f} M pulses/s (extrapolated per pulse to {args.hours:g} h:"
          f" ~{n_ext / rate_ref:.1f} s)")
    print(f"  ratio Cython/reference (per pulse): {rate_ext / rate_ref:.1f}x")
    print(f"  first {n_ref:,d} rows bit-identical to the reference: {same_slice}")
    print(f"  targets: >= 50 M pulses/s -> {'met' if rate_ext >= 50e6 else 'NOT met'};"
          f" >= 20x reference -> {'met' if rate_ext / rate_ref >= 20 else 'NOT met'}")

    t_cnt, cnt = best_of(lambda: expander.impl.count(trains, 0, end), args.repeat)
    print(f"  count() of the same {args.hours:g} h: {cnt:,d} in {t_cnt * 1e3:.2f} ms")

    # --- streaming memory -----------------------------------------------------------------------
    shapes = (PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), kind="biphasic"),)
    print(f"\nblocks({args.max_pulses}) streaming peak memory (tracemalloc), 4 channels x 100 Hz:")
    peaks = {}
    for hours in (1, 24):
        sched = Schedule.from_trains(continuous_trains(4, 100, hours * 3600), shapes)
        t = time.perf_counter()
        peak, n = stream_peak(sched, args.max_pulses)
        dt = time.perf_counter() - t
        peaks[hours] = peak
        print(f"  {hours:>2d} h: {n:>11,d} pulses streamed in {dt:6.2f} s, peak {peak / 2**20:7.2f} MiB")
    ratio = peaks[24] / peaks[1]
    print(f"  ratio 24 h / 1 h peak: {ratio:.2f} (target <= 1.5) -> {'met' if ratio <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
