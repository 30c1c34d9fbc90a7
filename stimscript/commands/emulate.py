"""``stimscript emulate p24|rehamove3 [--output F.npz]``: a byte-level ScienceMode device on a new terminal.

The first line of standard output is the terminal's path (give it to ``--port``); the emulator runs until
SIGINT or SIGTERM and then writes what it delivered (``--output``, the schedule's pulse dtype, device µs since
the stimulation start) and a summary on standard error.
"""
from __future__ import annotations

import signal
import sys
import threading

import click

from ._common import handle_errors


def _electrode(values: tuple[str, ...]) -> dict[int, int]:
    out = {}
    for v in values:
        ch, sep, at = v.partition("@")
        try:
            out[int(ch)] = int(round(float(at) * 1e6)) if sep else 0
        except ValueError:
            raise click.BadParameter(f"expected CHANNEL@SECONDS (e.g. 2@30), got {v!r}",
                                     param_hint="--electrode-error") from None
    return out


@click.command("emulate")
@click.argument("model", type=click.Choice(["p24", "rehamove3"]))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the delivered pulses here (.npz) when stopped.")
@click.option("--seed", type=int, default=None, help="Seed of the device's random phases and latencies.")
@click.option("--latency-ms", default="1,5", show_default=True, metavar="MIN,MAX",
              help="Update latency range (ms).")
@click.option("--electrode-error", multiple=True, metavar="CH@SECONDS",
              help="An electrode error on channel CH at that device time (repeatable).")
@click.option("--disconnect-after", type=float, default=None, metavar="SECONDS", help="Unplug after this long.")
@click.option("--drop-every", type=click.IntRange(min=0), default=0, help="Drop every N-th frame from the host.")
@click.option("--corrupt-every", type=click.IntRange(min=0), default=0,
              help="Damage every N-th frame from the host (answered as a transfer error).")
@click.option("--slow-ms", type=click.FloatRange(min=0), default=0, help="Every answer leaves this much later.")
@handle_errors
def emulate(model: str, output: str | None, seed: int | None, latency_ms: str, electrode_error: tuple[str, ...],
            disconnect_after: float | None, drop_every: int, corrupt_every: int, slow_ms: float) -> None:
    """Serve an emulated ScienceMode MODEL on a new pseudo-terminal (its path is the first output line)."""
    from ..drivers.sciencemode.emulator import Faults, ScienceModeEmulator
    from ..drivers.sciencemode.transport import PtyServer

    try:
        lo, hi = (int(round(float(x) * 1000)) for x in latency_ms.split(","))
    except ValueError:
        raise click.BadParameter("expected MIN,MAX in ms, e.g. 1,5", param_hint="--latency-ms") from None
    if output is not None and not output.endswith(".npz"):
        raise click.UsageError("--output must end in .npz")
    faults = Faults(electrode=_electrode(electrode_error),
                    disconnect_at_us=None if disconnect_after is None else int(disconnect_after * 1e6),
                    drop_rx_every=drop_every, corrupt_rx_every=corrupt_every, slow_answer_us=int(slow_ms * 1000))
    emu = ScienceModeEmulator(model, seed=seed, latency_us=(lo, max(lo, hi)), faults=faults)
    server = PtyServer(emu).start()
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    click.echo(server.path)
    sys.stdout.flush()
    click.echo(f"emulating a {model} (id {emu.device_id}) on {server.path}; Ctrl-C to stop", err=True)
    while not done.wait(0.2):
        pass
    server.stop()
    out = emu.output
    if output is not None:
        emu.save(output)
    per = {int(c): int((out["channel"] == c).sum()) for c in sorted(set(out["channel"].tolist()))}
    click.echo(f"delivered {len(out)} pulses {per}; {emu.rx_frames} frames received, {len(emu.errors)} refused"
               + (f"; written to {output}" if output else ""), err=True)
    for e in emu.errors[:20]:
        click.echo(f"  refused: {e}", err=True)
