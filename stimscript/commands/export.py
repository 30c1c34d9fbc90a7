"""``stimscript export ID``: what a recorded session delivered, for research tools (docs/research.md)."""
from __future__ import annotations

from pathlib import Path

import click

from ._common import handle_errors

EXPORT_HELP = """Export what recorded session ID delivered, rebuilt and checked, for research tools.

Every pulse, when (device clock) and how strong, is rebuilt from the record
and checked against the device's acknowledgements (a mismatch is an error,
nothing is written).

\b
  -o OUT.npz | OUT.csv        the delivered pulses (+ contractions, shapes, metadata in .npz)
  --bids-events F_events.tsv  BIDS events: contractions (and --pulses), pauses, the end;
                              stimulation in electrical_stimulation_* columns, JSON sidecar
  --nwb F.nwb                 Neurodata Without Borders file (needs stimscript[nwb])
  --reference session|ttl|lsl onset zero of the BIDS events (default: the session start)
"""


@click.command("export", help=EXPORT_HELP)
@click.argument("record_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Delivered pulses: .npz or .csv.")
@click.option("--bids-events", type=click.Path(dir_okay=False), default=None, metavar="F_events.tsv",
              help="BIDS events file (its .json sidecar is written next to it).")
@click.option("--pulses", is_flag=True, help="BIDS events: one row per pulse as well.")
@click.option("--reference", type=click.Choice(["session", "ttl", "lsl"]), default="session", show_default=True,
              help="BIDS onset zero: session start, the first sync-out TTL edge, or the LSL clock.")
@click.option("--nwb", type=click.Path(dir_okay=False), default=None, metavar="F.nwb", help="NWB file.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@handle_errors
def export(record_id: int, output: str | None, bids_events: str | None, pulses: bool, reference: str,
           nwb: str | None, db: str | None) -> None:
    from ..research.delivery import load_delivery

    if not (output or bids_events or nwb):
        raise click.UsageError("nothing to write: give -o OUT.npz|OUT.csv, --bids-events F_events.tsv or --nwb F.nwb")
    if output and Path(output).suffix.lower() not in (".npz", ".csv"):
        raise click.UsageError(f"-o must end in .npz or .csv, not {Path(output).suffix or '(no suffix)'!r}")
    if nwb and Path(nwb).suffix.lower() != ".nwb":
        raise click.UsageError(f"--nwb must end in .nwb, not {Path(nwb).suffix or '(no suffix)'!r}")
    if bids_events and not Path(bids_events).name.endswith("_events.tsv"):
        raise click.UsageError("--bids-events must be named *_events.tsv (e.g. sub-01_task-nmes_events.tsv)")
    if nwb:
        from ..research.nwb import require_pynwb

        require_pynwb()
    d = load_delivery(record_id, db=db)
    n = len(d.pulses)
    click.echo(f"record #{record_id} ({d.record.title or 'untitled'}, session {d.record.session}, "
               f"{d.record.end_reason}): {n} pulses in {len(d.contractions)} contractions rebuilt and verified "
               f"(counts, peaks and SHA-256 of the device's acknowledgements)")
    if output:
        from ..research.export import write

        write(d, output)
        click.echo(f"  {output}: {n} delivered pulses")
    if bids_events:
        from ..research.bids import write_events

        tsv, side, rows = write_events(d, bids_events, pulses=pulses, reference=reference)
        click.echo(f"  {tsv}: {rows} events (onset: {reference}), sidecar {side}")
    if nwb:
        from ..research.nwb import write_nwb

        write_nwb(d, nwb)
        click.echo(f"  {nwb}: {n} pulses, {len(d.contractions)} contractions, protocol and device metadata")
