"""Session control for ``stimscript run``: the display and the keys put together around the runtime
(:func:`run_session`), the plain reporter for a pipe or CI, the end-of-session summary and the exit codes.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace

from ..runtime.controls import Event, SessionController
from ..recordview import channel_rows, kind_text, record_rows
from ..formatting import ma
from .display import LiveState, SessionInfo, mmss, render
from .keys import KeyHandler, KeyReader, interrupt_signals


#: exit codes of ``stimscript run``
EXIT_OK = 0          # completed, or stopped by the user
EXIT_ABNORMAL = 2    # emergency stop, fault, disconnected, interrupted
EXIT_DEGRADED = 3    # ran to its end, but not every scheduled pulse was delivered
EXIT_RECORD = 4      # the session ended normally, but its record is not in the database (journal / unsaved)


def exit_code(end_reason: str, storage: str = "") -> int:
    if end_reason == "degraded":
        return EXIT_DEGRADED
    if end_reason not in ("completed", "stopped"):
        return EXIT_ABNORMAL
    return EXIT_RECORD if storage in ("journal", "memory") else EXIT_OK

# ---- without a terminal ------------------------------------------------------------------------------
class PlainReporter:
    """``on_event`` callback for a pipe or CI: state changes, faults and a progress line every 10 %."""

    def __init__(self, info: SessionInfo, echo=None, steps: int = 10):
        self.info = info
        self.echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self.steps = steps
        self._next = 1
        self._underruns = 0

    def on_event(self, ev: Event) -> None:
        p = ev.progress
        t = f"[{mmss(p.elapsed_us)}]"
        if ev.kind == "started":
            self.echo(f"{t} started: {self.info.title} (session {self.info.session}, week {self.info.week}), "
                      f"{mmss(self.info.duration_us)} on {self.info.device or 'the device'}")
        elif ev.kind == "progress":
            total = max(1, self.info.duration_us)
            if p.elapsed_us * self.steps >= self._next * total and p.state == "running":
                while self._next * total <= p.elapsed_us * self.steps:
                    self._next += 1
                amps = ", ".join(f"{ma(v)}" for v in p.intensity_ua.values())
                self.echo(f"{t} {100 * p.elapsed_us // total:3d} %  remaining {mmss(p.remaining_us)}  "
                          f"{p.segment}  delivered {sum(p.delivered.values())} pulses"
                          + (f"  intensity {amps}" if amps else ""))
        elif ev.kind in ("paused", "resumed", "stopping", "fault"):
            self.echo(f"{t} {ev.kind}" + (f": {ev.detail}" if ev.detail else ""))
        elif ev.kind == "underrun" and not self._underruns:
            self._underruns += 1
            self.echo(f"{t} underrun: {ev.detail}")
        elif ev.kind == "ended":
            self.echo(f"{t} ended: {ev.detail or 'completed'}")


# ---- the summary -------------------------------------------------------------------------------------
def summary(record, info: SessionInfo | None = None) -> str:
    """The end-of-session text, in the words and formats of ``stimscript history ID``
    (:mod:`stimscript.recordview`): treatment or practice, end reason, stimulation and paused time, the device
    (model, serial, emulator), each channel's pulses, peak and intensity at the end, warnings, the record."""
    rows = {r.number: r for r in (info.channels if info else ())}
    kind = kind_text(record)
    lines = [f"Session summary: {record.title or '(untitled)'} (session {record.session}, week {record.week})"
             f" — {kind}"]
    for label, text in record_rows(record):
        if label in ("session", "kind", "ended") or (label in ("patient", "operator") and text == "–"):
            continue
        lines.append(f"  {label:<12} {text}".rstrip())
    for name, ua in (info.final_intensity_ua if info else {}).items():
        start = record.params.get(name)
        changed = start is not None and str(start).replace(" ", "") != ma(ua).replace(" ", "")
        lines.append(f"  at the end   {name} = {ma(ua)}" + (f" (started at {start})" if changed else ""))
    lines.append(f"  delivered    {record.total_delivered} pulses")
    for ch, _name, pulses, peak_text, end in channel_rows(record, {}):
        row = rows.get(ch)
        label = f"channel {ch}" + (f" {row.name}" if row and row.name else "") + (f" ({row.site})" if row and row.site else "")
        lines.append(f"    {label}: {pulses} pulses, peak {peak_text}" + (f", at the end {end}" if end != "–" else ""))
    peak = max(record.peak_ua.values(), default=0)
    lines.append(f"  peak         {ma(peak)}")
    lines.append(f"  underruns    {record.underruns}")
    for f in record.faults:
        lines.append(f"  fault        {f}")
    if record.warnings:
        for wmsg in record.warnings:
            lines.append(f"  warning      {wmsg}")
    else:
        lines.append("  warnings     none")
    storage = getattr(record, "storage", "")
    if storage == "journal":
        lines.append(f"  record       NOT in the database {record.db_path} ({record.storage_error})")
        lines.append(f"               kept in {record.journal_path}; merged the next time the database opens")
    elif storage == "memory":
        import dataclasses
        import json

        data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
                if f.name not in ("acknowledged", "notes")}
        lines.append(f"  record       NOT SAVED: {record.storage_error}")
        lines.append("               keep this copy of it:")
        lines.append("  " + json.dumps(data, default=str, ensure_ascii=False))
    elif record.id is not None:
        lines.append(f"  record       #{record.id} in {record.db_path}")
        lines.append(f"               add a note: stimscript note {record.id} --rpe N --text \"...\"")
    else:
        lines.append("  record       not saved (--no-record)")
    return "\n".join(lines)


def _stdin_is_a_terminal(fd: int | None = None) -> bool:
    try:
        return os.isatty(sys.stdin.fileno() if fd is None else fd)
    except (OSError, ValueError, AttributeError):   # no real stdin (a test runner, a service)
        return False


# ---- putting it together ------------------------------------------------------------------------------
def run_session(schedule, *, device="loopback", realtime: bool = False, db=None, record: bool = True,
                patient_id: str | None = None, param_ranges: dict | None = None, params: dict | None = None,
                live: bool | None = None, keys: bool | None = None, controller: SessionController | None = None,
                console=None, echo=None, key_fd: int | None = None, **run_kw):
    """Run ``schedule`` with the live display (``live``: default when stdout is a terminal) and keyboard
    controls (``keys``: default when live, in real time and stdin is a terminal), or plainly.
    -> (SessionRecord, SessionInfo)."""
    from ..runtime import run as runtime_run

    ctl = controller or SessionController()
    dev_name = device if isinstance(device, str) else device.name   # a Driver: its model name
    info = SessionInfo.from_schedule(schedule, dev_name, realtime, param_ranges, patient_id)
    if live is None:
        live = sys.stdout.isatty()
    if keys is None:
        keys = bool(live and realtime and _stdin_is_a_terminal(key_fd))
    kw = dict(device=device, realtime=realtime, controller=ctl, db=db, record=record, patient_id=patient_id,
              param_ranges=param_ranges, params=params)
    kw.update(run_kw)
    if not live:
        rep = PlainReporter(info, echo=echo)
        handler = KeyHandler(ctl)
        with interrupt_signals(handler):
            rec = runtime_run(schedule, on_event=rep.on_event, **kw)
        return rec, replace(info, final_intensity_ua=dict(ctl.progress.intensity_ua))

    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    state = LiveState(info, keys=keys)
    handler = KeyHandler(ctl, state)
    kw.setdefault("progress_interval_ms", 250 if realtime else 1000)
    with Live(console=console, get_renderable=lambda: render(state.view()), refresh_per_second=8 if realtime else 4,
              transient=False, redirect_stderr=False):
        with interrupt_signals(handler):
            if keys:
                with KeyReader(handler, key_fd):
                    rec = runtime_run(schedule, on_event=state.on_event, **kw)
            else:
                rec = runtime_run(schedule, on_event=state.on_event, **kw)
    return rec, replace(info, final_intensity_ua=dict(ctl.progress.intensity_ua))
