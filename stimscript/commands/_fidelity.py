"""What ``check`` and ``info`` add for a device with its own timing model: its positioned errors and the
fidelity report (offline, from the model's built-in profile)."""
from __future__ import annotations


def device_findings(proto, device: str | None, mode: str | None, session: int = 1, params=None):
    """(errors over every session of the plan, fidelity report of ``session``) — ([], None) for a device
    that streams timestamped pulses (exact) or no device."""
    if device is None:
        return [], None
    from ..programs.fidelity import check_protocol, fidelity
    from ..programs.models import STREAMED, model_for

    model = model_for(device, mode)
    if model.family == STREAMED and mode is None:
        return [], None
    errors = check_protocol(proto, model)
    if errors:
        return errors, None
    return [], fidelity(proto.compile(session=session, params=params), model)


def print_report(report, console=None) -> None:
    """The report as a table (rich) with its notes."""
    import click

    if console is None:
        click.echo(report.render())
        return
    from rich.table import Table

    table = Table(title=f"Fidelity on {report.device} ({report.family.replace('_', '-')})", title_justify="left")
    for col in report.HEADER:
        table.add_column(col, justify="left" if col == "onset" else "right")
    for row in report.rows():
        table.add_row(*row)
    console.print(table)
    if report.load_budget:
        console.print(f"channel load: peak {report.load_peak:.0f} of {report.load_budget} (device budget)")
    for note in report.notes:
        console.print(f"note: {note}")
