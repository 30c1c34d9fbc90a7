"""``stimscript plot FILE [--session N] [--set NAME=VALUE]... -o OUT.png|OUT.svg``.

One lane per channel with its amplitude envelope in mA over the session, each block's frequency and
amplitude labelled, the blocks, and zoomed views of one contraction (its pulses under the ramps and hold)
and of one pulse of each shape (its phases). The envelope is computed by streaming the schedule, so a
2-hour session plots as fast and in as little memory as a short one.
"""
from __future__ import annotations

from pathlib import Path

import click

from ._common import handle_errors
from .options import device_option, parse_sets, session_option, set_option


@click.command("plot")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output image: .png or .svg.")
@click.option("--dpi", type=click.IntRange(50, 600), default=150, show_default=True, help="PNG resolution.")
@click.option("--bins", type=click.IntRange(50, 20000), default=2000, show_default=True,
              help="Points per channel lane (each shows the largest pulse in its stretch of time).")
@handle_errors
def plot(file: str, session: int, sets: tuple[str, ...], device: str | None, output: str, dpi: int,
         bins: int) -> None:
    """Plot one session of FILE: envelope per channel in mA, block frequencies, one contraction, one pulse."""
    from .. import load
    from ..plotting import save_plot

    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise click.UsageError(f"output must end in .png or .svg, not {suffix or '(no suffix)'!r}")
    proto = load(file, device=device)
    schedule = proto.compile(session=session, params=parse_sets(sets))
    save_plot(schedule, output, dpi=dpi, bins=bins)
    click.echo(f"{output}: {len(schedule.channels) or len({t.channel for t in schedule.trains})} channel(s), "
               f"{schedule.duration_us / 1e6:g} s (session {schedule.session}, week {schedule.week})")
