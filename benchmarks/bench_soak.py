"""Fault-injection soak: N random fault schedules in virtual time and a few in real time on the loopback
emulator (and through pyusb). Prints how many sessions ended, the worst time to end after the last fault
(device time), and how many records equal the emulator's truth (target: all).

    python benchmarks/bench_soak.py [N] [REALTIME_RUNS]
"""
from __future__ import annotations

import random
import sys
import time

import numpy as np

import stimscript
from stimscript.runtime.testing import nmes_schedule, open_test_device

KINDS = ("corrupt", "drop", "duplicate", "reorder")


def random_faults(rng: random.Random, span_us: int) -> list[tuple]:
    out = []
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        at = rng.randrange(0, span_us)
        if r < 0.6:
            out.append((rng.choice(KINDS), at, rng.randint(1, 60), rng.choice(("rx", "tx", "both"))))
        elif r < 0.75:
            out.append(("silence", at, rng.randint(10_000, 3_000_000)))
        elif r < 0.9:
            out.append(("stall", at, rng.randint(10_000, 3_000_000)))
        else:
            out.append(("slow_acks", rng.randint(0, 1_500_000)))
    return out


def apply(emu, faults) -> int:
    last = 0
    for f in faults:
        if f[0] == "silence":
            emu.inject_device_silence(f[1], f[2])
            last = max(last, f[1] + f[2])
        elif f[0] == "stall":
            emu.inject_host_stall(f[1], f[2])
            last = max(last, f[1] + f[2])
        elif f[0] == "slow_acks":
            emu.slow_acks(f[1])
        else:
            emu.inject_link_fault(*f)
            last = max(last, f[1])
    return last


def one(schedule, faults, kind: str, realtime: bool):
    dev = open_test_device(kind)
    emu = dev.emulator
    last = apply(emu, faults)
    t0 = time.perf_counter()
    rec = stimscript.run(schedule, device=dev, realtime=realtime, record=False,
                         lookahead_ms=200 if realtime else None)
    wall = time.perf_counter() - t0
    end = emu.time_us() - emu.epoch
    out = emu.output
    truth = {c: int(np.count_nonzero(out["channel"] == c)) for c in sorted(rec.delivered)}
    exact = rec.delivered == truth
    honest = all(rec.delivered[c] <= truth[c] for c in truth)
    off = not emu.output_on and emu.queue_level == 0
    dev.close()
    # how long after the last fault (or after its planned end, if later) the session was over
    return rec.end_reason, max(0, end - min(last, schedule.duration_us)) if rec.end_reason not in (
        "completed", "degraded") else max(0, end - schedule.duration_us), exact, honest, off, wall


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_rt = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rng = random.Random(15)
    s = nmes_schedule(channels=8, seconds=20, on_s=5, off_s=2, ramp_s=1)
    s.pulses
    for label, runs, realtime in (("virtual time", n, False), ("real time", n_rt, True)):
        reasons: dict[str, int] = {}
        worst = exact = honest = off = 0
        t0 = time.perf_counter()
        for i in range(runs):
            faults = random_faults(rng, s.duration_us)
            kind = "loopback" if i % 2 == 0 else "usb-loopback"
            reason, after, ex, ho, of, _ = one(s, faults, kind, realtime)
            reasons[reason] = reasons.get(reason, 0) + 1
            worst = max(worst, after)
            exact += ex
            honest += ho
            off += of
        dt = time.perf_counter() - t0
        print(f"{label}: {runs} sessions (8 channels, 20 s, 1-5 random faults each), {dt:.1f} s wall")
        print(f"  ended             {runs}/{runs}: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        print(f"  output off        {off}/{runs}")
        print(f"  worst time to end after the last fault (or the planned end): {worst / 1e6:.2f} s (device time)")
        print(f"  record == emulator truth (every channel): {exact}/{runs}; never above it: {honest}/{runs}")


if __name__ == "__main__":
    main()
