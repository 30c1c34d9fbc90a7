"""``stimscript run FILE --device NAME``: stream one session to a device with a live display and keys.

The front end lives in :mod:`stimscript.live` (display, keys, Ctrl-C rule, plain output without a
terminal); it drives the runtime only through ``SessionController`` and ``on_event``.
"""
from __future__ import annotations

import sys

import click

from ._common import handle_errors
from .options import parse_sets, session_option, set_option

RUN_HELP = """Run one session of FILE on a device, show it live and keep its record.

\b
In a terminal a live display shows the time, the current block, each
channel's current and pulses, the intensity and the state. Keys:
  space   pause / resume (output ramps down / up)
  + / -   raise / lower the intensity (gradual, never outside the range)
  s       stop: the output ramps down, then the session ends ("stopped")
  e       EMERGENCY STOP: output off at once ("emergency_stop")
  Ctrl-C  stop with a ramp-down; a second Ctrl-C is an emergency stop
Keys are read in real time (--realtime); --fast shows the display only.
Without a terminal (a pipe, CI) a few progress lines are printed instead.
A summary of the session record is always printed at the end.

\b
Exit codes:
  0  the session completed, or was stopped by the user
  1  a problem with the file, a --set value, the device name or the database
     (nothing was run)
  2  the session ended abnormally: emergency stop, device fault or
     disconnection (also: the command line was typed wrongly)
"""


@click.command("run", help=RUN_HELP)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--device", "-d", default="loopback", show_default=True, metavar="NAME",
              help="Driver name (see `stimscript devices`).")
@session_option
@set_option
@click.option("--realtime/--fast", default=None,
              help="Stream in real time, or simulate in virtual time (--fast; the default for loopback).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--no-record", is_flag=True, help="Do not write a session record.")
@click.option("--patient", default=None, metavar="ID", help="Patient id stored with the record.")
@click.option("--plain", is_flag=True, help="No live display: print progress lines (as without a terminal).")
@handle_errors
def run(file: str, device: str, session: int, sets: tuple[str, ...], realtime: bool | None, db: str | None,
        no_record: bool, patient: str | None, plain: bool) -> None:
    from .. import load
    from ..drivers import load_driver_class
    from ..live import exit_code, run_session, summary

    load_driver_class(device)  # an unknown driver name fails before any compiling
    params = parse_sets(sets)
    target = device
    profile = None
    if device != "loopback":
        # check against what the device itself reports (HELLO), not the loopback defaults
        from ..drivers import open_device

        target = open_device(device)
        profile = target.capabilities()
    try:
        proto = load(file, device=profile)
        schedule = proto.compile(session=session, params=params)
        if realtime is None:
            realtime = device != "loopback"
        driven = {c.param for c in schedule.channels if c.param}
        # live intensity changes stay inside the param's range AND inside what would have compiled (safety)
        ranges = {name: proto.safe_range(name, session=session, params=params)
                  for name, p in proto.params.items() if name in driven and p.range is not None}
        interactive = sys.stdout.isatty() and not plain
        record, info = run_session(schedule, device=target, realtime=realtime, db=db, record=not no_record,
                                   patient_id=patient, param_ranges=ranges, live=interactive,
                                   echo=lambda s: click.echo(s, err=True))
    finally:
        if target is not device:
            target.close()
    try:
        click.echo(summary(record, info))
    except BrokenPipeError:   # the reader went away (e.g. Ctrl-C also ended `| tail`): the record is saved
        pass
    code = exit_code(record.end_reason)
    if code:
        sys.exit(code)
