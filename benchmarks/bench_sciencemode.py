"""examples/tka_quadriceps.stim on the P24 emulator in real time, with the other core loaded.

The emulator runs in this process behind a real pseudo-terminal; the driver talks to it through pyserial.
Prints scheduled vs delivered pulse counts, the rate error and the contraction onset error, next to the
fidelity report's predictions. ``--seconds`` shortens the run (default 60 s of the session).

    python benchmarks/bench_sciencemode.py [--seconds 60] [--no-load]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from dataclasses import replace

import numpy as np

import stimscript
from stimscript.compiler.schedule import Schedule
from stimscript.drivers.sciencemode.emulator import ScienceModeEmulator
from stimscript.programs.fidelity import fidelity


def burn(stop):
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2**31


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--no-load", action="store_true", help="do not load the other core")
    args = ap.parse_args()
    full = stimscript.load("examples/tka_quadriceps.stim").compile(params={"intensity": "20 mA"})
    dur = int(args.seconds * 1e6)
    trains = [replace(t, cycles=max(1, min(t.cycles, -(-(dur - t.start_us) // t.cycle_us)))) for t in full.trains]
    sched = Schedule.from_trains(trains, full.shapes, dur, channels=full.channels, segments=full.segments,
                                 params=full.params, title=full.title)
    rep = fidelity(sched, "p24")
    stop = mp.Event()
    loader = None if args.no_load else mp.Process(target=burn, args=(stop,), daemon=True)
    if loader:
        loader.start()
    emu = ScienceModeEmulator("p24", seed=1)
    try:
        with stimscript.open_device("p24", emulator=emu) as dev:
            t0 = time.monotonic()
            rec = stimscript.run(sched, device=dev, realtime=True, record=False)
            wall = time.monotonic() - t0
    finally:
        stop.set()
        if loader:
            loader.join()
    out = emu.output
    t = out["t_us"]
    cuts = np.nonzero(np.diff(t) > 100_000)[0] + 1
    phases = np.split(t, cuts) if len(t) else []
    sched_on = [tr.start_us + c * tr.cycle_us for tr in sched.trains for c in range(tr.cycles)]
    first_sched = [int(sched.pulses["t_us"][sched.pulses["t_us"] >= s][0]) for s in sched_on]
    origin = emu.origin + emu._boot - rec.epoch_us
    onset_err = [(p[0] + origin) - s for p, s in zip(phases, first_sched)]
    spacing = np.concatenate([np.diff(p) for p in phases]) if phases else np.array([])
    rate = 1e6 / spacing.mean() if len(spacing) else 0
    tf = rep.trains[0]
    print(f"session: {args.seconds:g} s of {full.title!r} at 20 mA on the P24 emulator (pty + pyserial), "
          f"{'other core loaded' if loader else 'no load'}; wall {wall:.1f} s; end: {rec.end_reason}")
    print(f"pulses       scheduled {len(sched.pulses)}  delivered by the device {len(out)}  "
          f"acknowledged {sum(rec.delivered.values())}  ratio {len(out) / max(1, len(sched.pulses)):.4f}")
    print(f"per on-phase scheduled {tf.pulses_per_on_phase}  predicted {tf.device_pulses_per_on_phase}  "
          f"delivered {[len(p) for p in phases]}")
    print(f"rate         scheduled {tf.frequency_hz:g} Hz  device {rate:.4f} Hz  "
          f"error {(rate / tf.frequency_hz - 1) * 100:+.4f} % (predicted {tf.rate_error_pct:+.3g} %)")
    if onset_err:
        print(f"onset error  ms {[round(e / 1000, 2) for e in onset_err]}  max {max(onset_err) / 1000:.2f} ms "
              f"(predicted +{tf.onset_uncertainty_us[0] / 1000:g}..+{tf.onset_uncertainty_us[1] / 1000:g} ms "
              f"plus the host's poll interval)")


if __name__ == "__main__":
    main()
