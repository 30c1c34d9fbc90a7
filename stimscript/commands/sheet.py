"""``stimscript sheet FILE [--session N] [--set NAME=VALUE]... [--patient ID] -o sheet.html``: the clinician's
setup sheet.

A printable, self-contained HTML page (inline CSS and SVG, nothing fetched), one A4/Letter page for one
channel and two for several: the protocol, a body outline with the electrode sites, each channel with the
motor-point atlas's landmarks, the session's blocks, the week-by-week values, the checker's warnings, the
contraindication and skin checks to tick, and fields for the patient, the tolerated intensity and a signature.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..textsafe import utf8_argument
from ._common import handle_errors
from .options import device_option, parse_sets, session_option, set_option


@click.command("sheet")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@set_option
@device_option
@click.option("--patient", default=None, metavar="ID", callback=utf8_argument,
              help="Patient id printed in the sheet's patient field (blank to fill in by hand without it).")
@click.option("--paper", type=click.Choice(["a4", "letter"]), default="a4", show_default=True,
              help="Page size the print layout is made for.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output file (.html); open it in a browser and print it.")
@handle_errors
def sheet(file: str, session: int, sets: tuple[str, ...], device: str | None, patient: str | None, paper: str,
          output: str) -> None:
    """Write a printable setup sheet (HTML) for one session of FILE."""
    from .. import load
    from ..sheet import write_sheet

    suffix = Path(output).suffix.lower()
    if suffix not in (".html", ".htm"):
        raise click.UsageError(f"output must end in .html, not {suffix or '(no suffix)'!r}")
    proto = load(file, device=device)
    write_sheet(proto, output, session=session, params=parse_sets(sets), patient=patient, paper=paper)
    from ..textsafe import for_terminal

    title = proto.title or Path(file).stem
    click.echo(for_terminal(f"{output}: setup sheet for session {session} of “{title}”"
                            + (f", patient {patient}" if patient else "")))
