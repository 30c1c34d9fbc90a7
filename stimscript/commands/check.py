"""``stimscript check FILE...``: parse + check every file; exit 0 when all are fine, 1 otherwise."""
from __future__ import annotations

import sys

import click

from ..errors import StimscriptError
from ._common import report
from .options import device_option, device_profile, mode_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@device_option
@mode_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def check(files: tuple[str, ...], device: str | None, mode: str | None, strict: bool, quiet: bool) -> None:
    """Parse and check protocol FILES against the safety rules and the device profile.

    Every session of the plan is checked (each week's progression). Errors and warnings are printed as
    FILE:LINE:COL: error[CODE]: message. Exit code 0: all files fine; 1: any error (or warning with --strict).
    With a device that times pulses itself (p24, rehamove3) what it cannot do is an error (D001...) and its
    fidelity report for session 1 is printed.
    """
    from .. import load

    failed = False
    for path in files:
        try:
            proto = load(path, device=device_profile(device))
            errors, fidelity_report = [], None
            if device is not None:
                from ._fidelity import device_findings

                errors, fidelity_report = device_findings(proto, device, mode)
        except StimscriptError as exc:
            report(exc)
            failed = True
            continue
        except OSError as exc:
            click.echo(f"{path}: error: cannot read file: {exc.strerror or exc}", err=True)
            failed = True
            continue
        for d in errors:
            click.echo(d.render(), err=True)
        if errors:
            failed = True
            continue
        warnings = list(getattr(proto, "warnings", ()))
        for w in warnings:
            click.echo(w.render(), err=True)
        if strict and warnings:
            failed = True
            click.echo(f"{path}: {len(warnings)} warning(s) treated as errors (--strict)", err=True)
        elif not quiet:
            n_channels = len(proto.ast.channels)
            sessions = len(list(proto.sessions()))
            note = f", {len(warnings)} warning(s)" if warnings else ""
            click.echo(f"{path}: ok ({n_channels} channel{'s' if n_channels != 1 else ''}, "
                       f"{sessions} session{'s' if sessions != 1 else ''} checked{note})")
            if fidelity_report is not None:
                click.echo(fidelity_report.render())
    sys.exit(1 if failed else 0)
