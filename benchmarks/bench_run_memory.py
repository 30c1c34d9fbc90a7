"""Peak memory of a virtual-time run (`run --fast`) with the emulator capturing every delivered pulse versus
keeping only counters and running SHA-256 digests (the emulator's default, and what `stimscript run` uses).

Side by side in one process: the same session, the same device, traced with tracemalloc. Prints the peak of
each, the ratio and the per-hour extrapolation. Usage: python benchmarks/bench_run_memory.py [minutes] [channels]
"""
from __future__ import annotations

import gc
import sys
import time
import tracemalloc

import stimscript
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.runtime.testing import nmes_schedule


def measure(schedule, capture: bool):
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    dev = LoopbackDriver(capture=capture)
    dev.open()
    rec = stimscript.run(schedule, device=dev, record=False)
    digest = dev.emulator.output_sha256
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dev.close()
    return peak, time.perf_counter() - t0, rec, digest


def main() -> None:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        return
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    channels = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    sched = nmes_schedule(channels=channels, seconds=minutes * 60, freq_hz=100, on_s=10, off_s=10, ramp_s=1)
    n = len(sched)
    full, t_full, rec_full, d_full = measure(sched, capture=True)
    lean, t_lean, rec_lean, d_lean = measure(sched, capture=False)
    assert rec_full.delivered == rec_lean.delivered and d_full == d_lean, "the two runs must deliver the same"
    per_hour = 60 / minutes
    print(f"session: {minutes:g} min, {channels} channels at 100 Hz, {n:,} pulses scheduled "
          f"({sum(rec_lean.delivered.values()):,} delivered, identical SHA-256 {d_lean[:16]}…)")
    print(f"{'emulator':<28}{'peak MiB':>10}{'1 h, MiB':>10}{'time s':>9}")
    print(f"{'capture every pulse':<28}{full / 2**20:>10.1f}{full / 2**20 * per_hour:>10.1f}{t_full:>9.2f}"
          "   (grows with the pulses delivered)")
    print(f"{'counters + digest (run)':<28}{lean / 2**20:>10.1f}{'same':>10}{t_lean:>9.2f}"
          "   (constant: nothing kept per pulse)")
    print(f"peak ratio capture / digest: {full / max(lean, 1):.1f}x")


if __name__ == "__main__":
    main()
