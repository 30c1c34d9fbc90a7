"""``stimscript compile FILE -o OUT.npz|OUT.csv``: write the exact pulse schedule of one session."""
from __future__ import annotations

import os
from pathlib import Path

import click

from ._common import handle_errors
from .options import device_option, parse_sets, session_option, set_option


@click.command("compile")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output file: .npz (pulses + shape table + metadata) or .csv (t_us,channel,amplitude_ua,shape).")
@click.option("--compress", is_flag=True,
              help="Deflate the .npz members (smaller file, several times slower to write).")
@handle_errors
def compile_cmd(file: str, session: int, sets: tuple[str, ...], device: str | None, output: str,
                compress: bool) -> None:
    """Compile FILE to a pulse schedule (integer µs / µA) and save it.

    The file is streamed block by block (flat memory for any session length) and appears under OUTPUT
    only when complete.
    """
    from .. import load
    from ..compiler.export import write

    suffix = Path(output).suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise click.UsageError(f"output must end in .npz or .csv, not {suffix or '(no suffix)'!r}")
    if compress and suffix != ".npz":
        raise click.UsageError("--compress applies to .npz output only")
    if _same_file(file, output):
        raise click.UsageError(f"the output {output!r} is the protocol file itself; choose another name")
    proto = load(file, device=device)
    schedule = proto.compile(session=session, params=parse_sets(sets))
    n = write(schedule, output, compress=compress)
    click.echo(f"{output}: {n} pulses, {len(schedule.shapes)} shape(s), "
               f"{schedule.duration_us / 1e6:g} s (session {schedule.session}, week {schedule.week})")


def _same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one file (also through links or another spelling of the path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # the output does not exist yet (or the input is missing: load reports that)
        return os.path.abspath(a) == os.path.abspath(b)
