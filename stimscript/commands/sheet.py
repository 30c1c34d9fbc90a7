"""``stimscript sheet FILE [--session N] [--set NAME=VALUE]... -o sheet.html``: the clinician's setup sheet.

A printable, self-contained HTML page (inline CSS and SVG, nothing fetched): protocol, channels with the
motor-point atlas's landmarks, cycle and session timeline, week-by-week progression, safety warnings and a
notes/signature box.
"""
from __future__ import annotations

from pathlib import Path

import click

from ._common import handle_errors
from .options import device_option, parse_sets, session_option, set_option


@click.command("sheet")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output file (.html); open it in a browser and print it.")
@handle_errors
def sheet(file: str, session: int, sets: tuple[str, ...], device: str | None, output: str) -> None:
    """Write a printable setup sheet (HTML) for one session of FILE."""
    from .. import load
    from ..sheet import write_sheet

    suffix = Path(output).suffix.lower()
    if suffix not in (".html", ".htm"):
        raise click.UsageError(f"output must end in .html, not {suffix or '(no suffix)'!r}")
    proto = load(file, device=device)
    write_sheet(proto, output, session=session, params=parse_sets(sets))
    click.echo(f"{output}: setup sheet for session {session} of {proto.title or file}")
