"""Runtime benchmarks (not timed tests): prints measurements side by side.

1. virtual-time run of a 30-min, 8-channel, 50 Hz session (10 s on / 20 s off, 1 s ramps) on the
   loopback (target <= 0.35 s wall), and the same through the USB driver + LoopbackBackend (pyusb code
   path; target <= 0.5 s); best of --repeat runs;
2. the same session with 1, 2, 4 and 8 channels on the loopback: wall time should grow sub-linearly in
   channels (the ratio 8 ch / 1 ch is printed);
3. real-time streaming of 8 x 50 Hz for --seconds (default 10; 60 with --long) while another process
   burns the other core: underruns and the host's CPU use (% of one core).

``--before DIR`` also runs (1) and (2) on another checkout (e.g. ``git worktree add /tmp/before <rev>``,
with its compiled extension) in a subprocess, interleaved with this one, and prints both and the ratio.

usage: python benchmarks/bench_runtime.py [--long] [--seconds S] [--no-burner] [--repeat 3] [--before DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time

import numpy as np



def use_checkout(root: str) -> None:
    """Import ``stimscript`` from the checkout ``root`` (benchmarks/checkout.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from checkout import use_checkout as _use

    _use(root)


if __name__ == "__main__" and "--root" in sys.argv:   # measure another checkout (see --before)
    use_checkout(sys.argv[sys.argv.index("--root") + 1])

import stimscript  # noqa: E402
from stimscript.drivers.loopback import LoopbackBackend  # noqa: E402
from stimscript.runtime.testing import BIPHASIC_300, nmes_schedule  # noqa: E402

TARGETS = {"loopback": 0.35, "usb+LoopbackBackend": 0.5}


def _burn(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def session_30min(channels: int = 8):
    return nmes_schedule(channels=channels, seconds=30 * 60, freq_hz=50, on_s=10, off_s=20, ramp_s=1,
                         shapes=(BIPHASIC_300,), title="bench 30 min")


def virtual_suite(repeat: int) -> dict:
    """Best wall and CPU time of (1) and (2) in this process, with the facts that show the runs were complete."""
    out: dict = {"file": stimscript.__file__, "runs": {}}
    sched = session_30min()
    sched.pulses   # expanded before timing
    for kind in ("loopback", "usb+LoopbackBackend"):
        runs = [virtual("loopback" if kind == "loopback" else "usb", sched) for _ in range(repeat)]
        rec = runs[-1][2]
        out["runs"][kind] = {"wall": min(r[0] for r in runs), "cpu": min(r[1] for r in runs), "end": rec.end_reason,
                             "delivered": sum(rec.delivered.values()), "exact": all(r[3] for r in runs),
                             "frames": runs[-1][4]}
    for ch in (1, 2, 4, 8):
        s = session_30min(ch)
        s.pulses
        runs = [virtual("loopback", s) for _ in range(repeat)]
        out["runs"][f"loopback {ch} ch"] = {"wall": min(r[0] for r in runs), "cpu": min(r[1] for r in runs),
                                            "pulses": len(s.pulses)}
    return out


def report(title: str, r: dict) -> None:
    print(f"{title}  [{os.path.dirname(os.path.dirname(r['file']))}]")
    for kind in ("loopback", "usb+LoopbackBackend"):
        v = r["runs"][kind]
        t = TARGETS[kind]
        print(f"  virtual time, {kind:20s}: {v['wall']:6.3f} s wall, {v['cpu']:6.3f} s CPU for 1800 s of session "
              f"({1800 / v['wall']:,.0f}x real time; target <= {t} s: {'met' if v['wall'] <= t else 'MISSED'}), "
              f"end={v['end']}, delivered={v['delivered']}, output bit-exact={v['exact']}")
        f = v.get("frames")
        if f:
            print(f"    frames: host -> device {f['to_device']} (PULSES {f['pulses']}), device -> host {f['to_host']}")
    one = r["runs"]["loopback 1 ch"]["wall"]
    walls = ", ".join(f"{ch} ch {r['runs'][f'loopback {ch} ch']['wall']:.3f} s" for ch in (1, 2, 4, 8))
    eight = r["runs"]["loopback 8 ch"]["wall"]
    print(f"  channels (loopback, 30 min, wall): {walls}; 8 ch / 1 ch = {eight / one:.2f} "
          f"({'sub-linear' if eight / one < 8 else 'NOT sub-linear'}; pulses x8)")


def virtual(kind: str, sched) -> tuple[float, float, object, bool, dict]:
    """One virtual-time run -> (wall s, CPU s of this process, record, delivered bit for bit, frames on the wire:
    received by the device, of which PULSES, and received by the host, counted by each side's link)."""
    dev = stimscript.open_device("loopback") if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend())
    c = time.process_time()
    t = time.perf_counter()
    emu = dev.emulator
    pulses_frames = [0]
    on_pulses = emu._on_pulses

    def counting(payload):   # PULSES frames the device received (the rest of the emulator is untouched)
        pulses_frames[0] += 1
        return on_pulses(payload)

    emu._on_pulses = counting
    rx_before = emu.link.stats.frames_ok
    tx_before = dev.link.stats.frames_ok
    rec = stimscript.run(sched, device=dev, realtime=False, record=False)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c
    frames = {"to_device": emu.link.stats.frames_ok - rx_before, "pulses": pulses_frames[0],
              "to_host": dev.link.stats.frames_ok - tx_before}
    exact = _exact(emu, sched)
    dev.close()
    return wall, cpu, rec, exact, frames


def _exact(emu, sched) -> bool:
    """Did the emulator deliver the schedule bit for bit? By its running digest (bounded memory, the
    default), or by its captured output on a checkout from before the digest existed."""
    digest = getattr(emu, "output_sha256", None)
    if digest is not None:
        return digest == hashlib.sha256(np.ascontiguousarray(sched.pulses).tobytes()).hexdigest()
    return bool(np.array_equal(emu.output, sched.pulses))


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
            "exact": _exact(dev.emulator, s)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", action="store_true", help="60 s of real-time streaming")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--no-burner", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", help="another checkout to measure side by side")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    a = ap.parse_args()
    seconds = a.seconds or (60.0 if a.long else 10.0)
    if a.json:
        print(json.dumps(virtual_suite(a.repeat)))
        return

    from stimscript.compiler import expander

    sched = session_30min()
    t = time.perf_counter()
    n = len(sched.pulses)
    t_expand = time.perf_counter() - t
    print(f"schedule: 30 min, 8 channels, 50 Hz, 10 s on / 20 s off, 1 s ramps: {n} pulses "
          f"(expanded in {t_expand * 1e3:.1f} ms, Cython expander: {expander.USING_EXTENSION}); "
          f"best of {a.repeat}; load average {os.getloadavg()[0]:.1f}")
    if a.before:
        cmd = [sys.executable, os.path.abspath(__file__), "--json", "--repeat", "1", "--root", os.path.abspath(a.before)]
        before: dict = {"runs": {}}
        now: dict = {"runs": {}}
        for _ in range(a.repeat):   # interleaved: a busy machine slows both alike
            b = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            c = virtual_suite(1)
            for dst, src in ((before, b), (now, c)):
                dst["file"] = src["file"]
                for k, v in src["runs"].items():
                    if k not in dst["runs"]:
                        dst["runs"][k] = dict(v)
                    else:
                        dst["runs"][k]["wall"] = min(dst["runs"][k]["wall"], v["wall"])
                        dst["runs"][k]["cpu"] = min(dst["runs"][k]["cpu"], v["cpu"])
        report("before", before)
        report("after", now)
        print("ratios (before / after; CPU time is steadier than wall time on a busy machine):")
        for kind in ("loopback", "usb+LoopbackBackend"):
            b, n = before["runs"][kind], now["runs"][kind]
            print(f"  {kind:20s} wall {b['wall']:.3f} s -> {n['wall']:.3f} s ({b['wall'] / n['wall']:.2f}x), "
                  f"CPU {b['cpu']:.3f} s -> {n['cpu']:.3f} s ({b['cpu'] / n['cpu']:.2f}x); target <= {TARGETS[kind]} s")
        print("  channels (loopback, 30 min)   before wall/CPU     after wall/CPU    CPU after/before")
        for ch in (1, 2, 4, 8):
            k = f"loopback {ch} ch"
            b, n = before["runs"][k], now["runs"][k]
            print(f"    {ch} ch {n['pulses']:>7} pulses    {b['wall']:6.3f} / {b['cpu']:6.3f} s   "
                  f"{n['wall']:6.3f} / {n['cpu']:6.3f} s   {n['cpu'] / b['cpu']:.2f}")
        g = [r["runs"]["loopback 8 ch"]["cpu"] / r["runs"]["loopback 1 ch"]["cpu"] for r in (before, now)]
        print(f"    growth 8 ch / 1 ch (CPU): before {g[0]:.2f}, after {g[1]:.2f} (pulses x8; below 8 is sub-linear)")
    else:
        report("this checkout", virtual_suite(a.repeat))
    r = realtime(seconds, burner=not a.no_burner)
    print(f"real time, loopback, 8 x 50 Hz for {seconds:g} s "
          f"({'with' if not a.no_burner else 'without'} a process burning the other core): "
          f"wall {r['wall']:.2f} s, host CPU {r['cpu_pct']:.1f} % of one core, underruns {r['underruns']}, "
          f"delivered {r['delivered']}/{r['scheduled']}, end={r['end']}, output bit-exact={r['exact']}")
    print(f"(cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
