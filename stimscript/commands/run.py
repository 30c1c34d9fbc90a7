"""``stimscript run FILE --device NAME``: stream one session to a device with a live display and keys.

The front end lives in :mod:`stimscript.live` (display, keys, Ctrl-C rule, plain output without a
terminal); it drives the runtime only through ``SessionController`` and ``on_event``.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from ..textsafe import utf8_argument
from ._common import handle_errors
from .options import mode_option, parse_sets, set_option

RUN_HELP = """Run one session of FILE on a device, show it live and keep its record.

\b
In a terminal a live display shows the time, the block and contraction,
the phase of the cycle with a countdown to the next contraction, each
channel's target and delivered current, and the state. Keys:
  1-8     select that channel (again: all channels); a  select all
  + / -   raise / lower the selected channels by 1 mA (gradual; up to the
          top of the checked range, down to 0 mA)
  space   pause / resume (output ramps down / up)
  s, q, Esc  stop: the output ramps down, then the session ends ("stopped")
  e       EMERGENCY STOP: output off at once ("emergency_stop")
  Ctrl-C  stop with a ramp-down; a second Ctrl-C is an emergency stop
  any other key shows this list
Keys are read in real time (--realtime); --fast shows the display only.
Without a terminal (a pipe, CI) a few progress lines are printed instead.
A summary of the session record is always printed at the end.

\b
Sessions of a plan: --session N runs session N. With --patient P and no
--session, the patient's next session of this protocol (same file and
title) is chosen from the records and printed.
Runs on an emulator (loopback, the byte-level emulators) are recorded as
practice runs, kept apart from treatment records in `stimscript history`.

\b
Research (docs/research.md):
  --lsl        publish a Lab Streaming Layer marker stream (needs the extra
               stimscript[lsl]; real time only): contraction start/end per
               channel, blocks, pause/resume, stop, emergency stop, faults
               (--lsl-pulses: every pulse), stamped with the stimulator's
               clock mapped onto the LSL clock, with its uncertainty
  --sync-out   the stimulator raises its TTL sync output at the session
               start, at every contraction or at every pulse

\b
Exit codes:
  0  the session completed, or was stopped by the user
  1  a problem with the file, a --set value, the device name or the database
     (nothing was run)
  2  the session ended abnormally: emergency stop, device fault or
     disconnection (also: the command line was typed wrongly)
  3  degraded: the session ran to its end, but not every scheduled pulse
     was delivered (late or lost pulses; the summary gives the numbers)
  4  the session completed or was stopped, but its record could not be
     written to the database: it is kept in a journal next to it (merged
     the next time the database opens), or printed if even that failed
"""


@click.command("run", help=RUN_HELP)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--device", "-d", default="loopback", show_default=True, metavar="NAME",
              help="Driver name (see `stimscript devices`).")
@click.option("--session", "-s", "session", type=click.IntRange(min=1), default=None,
              help="Session number of the plan (default: 1, or the patient's next session with --patient).")
@set_option
@click.option("--realtime/--fast", default=None,
              help="Stream in real time, or simulate in virtual time (--fast; the default for loopback).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--no-record", is_flag=True, help="Do not write a session record.")
@click.option("--patient", default=None, metavar="ID", help="Patient id stored with the record.",
              callback=utf8_argument)
@click.option("--operator", default=None, metavar="ID", help="Operator (clinician) id stored with the record.",
              callback=utf8_argument)
@click.option("--plain", is_flag=True, help="No live display: print progress lines (as without a terminal).")
@click.option("--port", default=None, metavar="PATH",
              help="Serial port of a ScienceMode device (p24, rehamove3), e.g. /dev/ttyACM0 "
                   "(see `stimscript devices`).")
@mode_option
@click.option("--dry-run", is_flag=True,
              help="ScienceMode devices: send nothing; print every frame the session would send "
                   "(answered by an emulator in this process).")
@click.option("--max-current", "max_current", type=float, default=None, metavar="MA",
              help="ScienceMode devices: the highest current the driver lets through (default 20 mA, "
                   "a safe first session); raise it deliberately.")
@click.option("--lsl", is_flag=True, help="Publish a Lab Streaming Layer marker stream (needs stimscript[lsl]).")
@click.option("--lsl-pulses", is_flag=True, help="LSL: a marker for every delivered pulse as well.")
@click.option("--lsl-name", default="stimscript", show_default=True, metavar="NAME", help="LSL stream name.")
@click.option("--lsl-wait", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="S",
              help="LSL: wait up to S seconds for a recorder to connect before the session starts.")
@click.option("--sync-out", "sync_out", type=click.Choice(["start", "contraction", "pulse"]), default=None,
              help="Raise the device's TTL sync output at the session start, every contraction or every pulse.")
@click.option("--sync-width", "sync_width", type=click.FloatRange(min=0.001, max=1000), default=1.0,
              show_default=True, metavar="MS", help="Sync out: how long the TTL line stays high.")
@handle_errors
def run(file: str, device: str, session: int | None, sets: tuple[str, ...], realtime: bool | None, db: str | None,
        no_record: bool, patient: str | None, operator: str | None, plain: bool, port: str | None = None,
        mode: str | None = None, dry_run: bool = False, max_current: float | None = None, lsl: bool = False,
        lsl_pulses: bool = False, lsl_name: str = "stimscript", lsl_wait: float = 10.0, sync_out: str | None = None,
        sync_width: float = 1.0) -> None:
    from .. import load
    from ..drivers import load_driver_class
    from ..live import exit_code, run_session, summary

    load_driver_class(device)  # an unknown driver name fails before any compiling
    if lsl and realtime is False:
        raise click.UsageError("--lsl needs --realtime: a --fast session runs in virtual time, on no clock "
                               "an LSL recorder shares")
    if (lsl or sync_out) and dry_run:
        raise click.UsageError("--lsl and --sync-out need a device that runs the session (not --dry-run)")
    if lsl:
        from ..research.lsl import require_pylsl

        require_pylsl()
        realtime = True
    params = parse_sets(sets)
    target: Any = device   # the name, or the driver opened here
    profile = None
    if device != "loopback":
        # check against what the device itself reports (HELLO), not the loopback defaults
        from ..drivers import open_device

        options = {k: v for k, v in (("port", port), ("mode", mode), ("max_current_ma", max_current)) if v is not None}
        if dry_run:
            options["dry_run"] = True
        target = open_device(device, **options)
        profile = target.capabilities()
    else:
        # opened here (the LSL clock mapping and the sync outputs need the open device); the emulator keeps
        # counters and a digest, not every pulse: constant memory for hours of --fast
        from ..drivers import open_device

        target = open_device(device, capture=False)
    try:
        proto = load(file, device=profile)
        if session is None:
            session = 1
            if patient is not None and not no_record:
                session = next_session(proto, patient, db, practice=_emulated(target),
                                       echo=lambda s: click.echo(s, err=True))
        if mode is not None or device in ("p24", "rehamove3"):
            from ..errors import SafetyError
            from ._fidelity import device_findings

            errors, _ = device_findings(proto, device, mode, session, params)
            if errors:
                raise SafetyError(errors)
        schedule = proto.compile(session=session, params=params)
        if realtime is None:
            realtime = device != "loopback" and not dry_run
        driven = {c.param for c in schedule.channels if c.param}
        # live intensity changes stay inside the param's range AND inside what would have compiled (safety)
        ranges = {name: proto.safe_range(name, session=session, params=params)
                  for name, p in proto.params.items() if name in driven and p.range is not None}
        interactive = sys.stdout.isatty() and not plain
        observers = research_observers(schedule, target, lsl, lsl_pulses, lsl_name, lsl_wait, sync_out, sync_width)
        record, info = run_session(schedule, device=target, realtime=realtime, db=db, record=not no_record,
                                   patient_id=patient, param_ranges=ranges, live=interactive,
                                   echo=lambda s: click.echo(s, err=True), operator_id=operator,
                                   observers=tuple(observers))
    finally:
        if target is not device:
            target.close()
    try:
        click.echo(summary(record, info))
        for line in research_summary(record):
            click.echo(line)
    except BrokenPipeError:   # the reader went away (e.g. Ctrl-C also ended `| tail`): the record is saved
        pass
    code = exit_code(record.end_reason, getattr(record, "storage", ""))
    if code:
        sys.exit(code)


def research_observers(schedule, target, lsl: bool, lsl_pulses: bool, lsl_name: str, lsl_wait: float,
                       sync_out: str | None, sync_width: float) -> list:
    """The sync-out and Lab Streaming Layer observers asked for (checked against the open device first)."""
    observers: list = []
    if sync_out:
        from ..research.syncout import SyncOut

        SyncOut.check(target)
        observers.append(SyncOut(sync_out, width_us=round(sync_width * 1000)))
    if lsl:
        from ..research.lsl import LslPublisher

        pub = LslPublisher(schedule, target, name=lsl_name, pulses=lsl_pulses)
        click.echo(f"LSL: stream {lsl_name!r} (source_id {pub.source_id}) is up; device clock mapped within "
                   f"±{pub.pre_uncertainty_us / 1000:.3f} ms", err=True)
        if lsl_wait > 0:
            click.echo(f"LSL: waiting up to {lsl_wait:g} s for a recorder to connect", err=True)
            if not pub.wait_for_consumers(lsl_wait):
                click.echo("LSL: no recorder connected; publishing anyway", err=True)
        observers.append(pub)
    return observers


def research_summary(record) -> list[str]:
    extra = (getattr(record, "device_log", None) or {}).get("extra", {})
    out = []
    if "lsl" in extra and "markers" in extra["lsl"]:
        x = extra["lsl"]
        out.append(f"LSL: {x['markers']} markers on stream {x['stream_name']!r}, each within "
                   f"±{x['max_marker_uncertainty_s'] * 1e3:.3f} ms of the stimulator's clock")
    if "sync_out" in extra:
        x = extra["sync_out"]
        if x.get("unavailable"):
            out.append(f"sync out: not used ({x['unavailable']})")
        else:
            out.append(f"sync out ({x['mode']}, line {x['line']}): {x['raised']} TTL edge"
                       f"{'' if x['raised'] == 1 else 's'} raised"
                       + (f", {x['missed']} not raised (output off or too late)" if x.get("missed") else ""))
    return out


def _emulated(target) -> bool:
    """Will this run be a practice run (an emulator)? ``target`` is a driver name or an open driver."""
    if isinstance(target, str):
        from ..drivers import load_driver_class

        cls = load_driver_class(target)
        return target in ("loopback",) or bool(getattr(cls, "EMULATED", False))
    from ..runtime import _emulated as emulated

    return emulated(target)


def next_session(proto, patient: str, db, practice: bool, echo) -> int:
    """The patient's next session of this protocol (same file hash and title) from the records; says why."""
    from ..formatting import local_time
    from ..runtime.records import RecordError, RecordStore

    with RecordStore(db) as store:
        nxt, last = store.next_session(patient, proto.sha256, proto.title, practice=practice)
        retries = store.later_attempts(patient, proto.sha256, proto.title, nxt, practice=practice)
    kind = "practice runs" if practice else "treatment records"
    total = proto.plan.total_sessions if proto.plan else 1
    if last is None:
        why = f"no completed session of this protocol in the {kind} of patient {patient}"
    else:
        why = (f"session {last.session} completed on {local_time(last.started_at)} (record #{last.id})")
    if nxt > total:
        raise RecordError(f"patient {patient} has completed every session of the plan ({total}): {why}; "
                          "to run one again give --session N")
    echo(f"patient {patient}: running session {nxt} of {total} — {why}")
    for r in retries:
        echo(f"  note: session {nxt} was started before on {local_time(r.started_at)} and ended {r.end_reason}"
             f" (record #{r.id})")
    return nxt
