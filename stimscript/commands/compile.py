"""``stimscript compile FILE -o OUT.npz|OUT.csv``: write the exact pulse schedule of one session."""
from __future__ import annotations

from pathlib import Path

import click

from ._common import handle_errors
from .options import parse_sets, session_option, set_option, device_option


@click.command("compile")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output file: .npz (pulses + shape table + metadata) or .csv (t_us,channel,amplitude_ua,shape).")
@handle_errors
def compile_cmd(file: str, session: int, sets: tuple[str, ...], device: str | None, output: str) -> None:
    """Compile FILE to a pulse schedule (integer µs / µA) and save it."""
    from .. import load
    from ..compiler.export import write

    suffix = Path(output).suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise click.UsageError(f"output must end in .npz or .csv, not {suffix or '(no suffix)'!r}")
    proto = load(file, device=device)
    schedule = proto.compile(session=session, params=parse_sets(sets))
    n = write(schedule, output)
    click.echo(f"{output}: {n} pulses, {len(schedule.shapes)} shape(s), "
               f"{schedule.duration_us / 1e6:g} s (session {schedule.session}, week {schedule.week})")
