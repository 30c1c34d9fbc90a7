"""``stimscript run FILE --device NAME``: stream one session to a device and keep its record.

The display is separable: :func:`plain_display` is an ``on_event`` callback printing a line per state
change; a live (rich) display can replace it without touching the runtime.
"""
from __future__ import annotations

import click

from ._common import handle_errors
from .options import parse_sets, session_option, set_option


def plain_display(echo=click.echo):
    """An on_event callback that prints state changes and faults (not the per-second progress)."""

    def on_event(ev) -> None:
        p = ev.progress
        if ev.kind in ("started", "paused", "resumed", "stopping", "fault", "ended"):
            extra = f": {ev.detail}" if ev.detail else ""
            echo(f"[{p.session_us / 1e6:8.3f} s] {ev.kind}{extra}", err=True)

    return on_event


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--device", "-d", default="loopback", show_default=True, metavar="NAME",
              help="Driver name (see `stimscript devices`).")
@session_option
@set_option
@click.option("--realtime/--fast", default=None,
              help="Stream in real time, or simulate in virtual time (--fast; the loopback default).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--no-record", is_flag=True, help="Do not write a session record.")
@click.option("--patient", default=None, metavar="ID", help="Patient id stored with the record.")
@handle_errors
def run(file: str, device: str, session: int, sets: tuple[str, ...], realtime: bool | None, db: str | None,
        no_record: bool, patient: str | None) -> None:
    """Run one session of FILE on a device and print its record."""
    from .. import load
    from ..drivers import load_driver_class
    from ..runtime import run as run_session

    load_driver_class(device)  # an unknown driver name fails before any compiling
    params = parse_sets(sets)
    proto = load(file, device=None if device in ("loopback", "usb") else device)
    schedule = proto.compile(session=session, params=params)
    if realtime is None:
        realtime = device != "loopback"
    record = run_session(schedule, device=device, realtime=realtime, on_event=plain_display(), db=db,
                         record=not no_record, patient_id=patient)
    click.echo(record.summary())
    if record.end_reason not in ("completed", "stopped"):
        raise SystemExit(1 if record.end_reason != "emergency_stop" else 0)
