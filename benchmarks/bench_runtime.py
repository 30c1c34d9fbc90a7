"""Runtime benchmarks (not timed tests): prints measurements side by side.

1. virtual-time run of a 30-min, 8-channel, 50 Hz session (10 s on / 20 s off, 1 s ramps) on the
   loopback (target < 1 s wall), and the same through the USB driver + LoopbackBackend (pyusb code path);
2. real-time streaming of 8 x 50 Hz for --seconds (default 10; 60 with --long) while another process
   burns the other core: underruns and the host's CPU use (% of one core).

usage: python benchmarks/bench_runtime.py [--long] [--seconds S] [--no-burner]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import numpy as np

import stimscript
from stimscript.drivers.loopback import LoopbackBackend
from stimscript.runtime.testing import BIPHASIC_300, nmes_schedule


def _burn(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def session_30min():
    return nmes_schedule(channels=8, seconds=30 * 60, freq_hz=50, on_s=10, off_s=20, ramp_s=1,
                         shapes=(BIPHASIC_300,), title="bench 30 min")


def virtual(kind: str, sched) -> tuple[float, object, bool]:
    dev = stimscript.open_device("loopback") if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend())
    t = time.perf_counter()
    rec = stimscript.run(sched, device=dev, realtime=False, record=False)
    wall = time.perf_counter() - t
    exact = np.array_equal(dev.emulator.output, sched.pulses)
    dev.close()
    return wall, rec, exact


def realtime(seconds: float, burner: bool) -> dict:
    s = nmes_schedule(channels=8, seconds=seconds, freq_hz=50, on_s=seconds, off_s=0, ramp_s=1, stagger_us=0,
                      shapes=(BIPHASIC_300,), title="bench realtime")
    stop = mp.Event()
    proc = mp.Process(target=_burn, args=(stop,), daemon=True) if burner else None
    if proc:
        proc.start()
    try:
        dev = stimscript.open_device("loopback")
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        rec = stimscript.run(s, device=dev, realtime=True, record=False)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if proc:
            stop.set()
            proc.join(5)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall": wall, "cpu_pct": 100 * cpu / wall, "underruns": rec.underruns, "end": rec.end_reason,
            "delivered": sum(rec.delivered.values()), "scheduled": len(s.pulses),
            "exact": bool(np.array_equal(dev.emulator.output, s.pulses))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", action="store_true", help="60 s of real-time streaming")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--no-burner", action="store_true")
    a = ap.parse_args()
    seconds = a.seconds or (60.0 if a.long else 10.0)

    from stimscript.compiler import expander

    sched = session_30min()
    t = time.perf_counter()
    n = len(sched.pulses)
    t_expand = time.perf_counter() - t
    print(f"schedule: 30 min, 8 channels, 50 Hz, 10 s on / 20 s off, 1 s ramps: {n} pulses "
          f"(expanded in {t_expand * 1e3:.1f} ms, Cython expander: {expander.USING_EXTENSION})")
    for kind in ("loopback", "usb+LoopbackBackend"):
        wall, rec, exact = virtual("loopback" if kind == "loopback" else "usb", sched)
        print(f"virtual time, {kind:20s}: {wall:6.3f} s wall for 1800 s of session "
              f"({1800 / wall:,.0f}x real time; target < 1 s: {'met' if wall < 1 else 'MISSED'}), "
              f"end={rec.end_reason}, delivered={sum(rec.delivered.values())}, output bit-exact={exact}")
    r = realtime(seconds, burner=not a.no_burner)
    print(f"real time, loopback, 8 x 50 Hz for {seconds:g} s "
          f"({'with' if not a.no_burner else 'without'} a process burning the other core): "
          f"wall {r['wall']:.2f} s, host CPU {r['cpu_pct']:.1f} % of one core, underruns {r['underruns']}, "
          f"delivered {r['delivered']}/{r['scheduled']}, end={r['end']}, output bit-exact={r['exact']}")
    print(f"(cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
