"""``stimscript history [--csv] [--patient ID] [-n N] [--session ID]``: the session records in the database."""
from __future__ import annotations

import csv
import datetime as _dt
import json
import sys

import click

from ._common import handle_errors

COLUMNS = ("id", "started_at", "title", "session", "week", "device", "end_reason", "delivered", "peak_mA",
           "underruns", "elapsed_s", "patient_id", "rpe", "rpe_scale", "adverse_events", "notes")


def local_time(iso: str | None) -> str:
    """'2026-11-22T00:06:30.378+00:00' -> '2026-11-22 01:06' in the computer's time zone."""
    if not iso:
        return ""
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _last_rpe(rec):
    return next((n for n in reversed(rec.notes) if n.kind == "rpe"), None)


def notes_text(rec, sep: str = " | ") -> str:
    from .note import describe

    return sep.join(describe(n) for n in rec.notes)


def record_row(rec) -> dict:
    rpe = _last_rpe(rec)
    return {
        "id": rec.id, "started_at": rec.started_at, "title": rec.title, "session": rec.session, "week": rec.week,
        "device": rec.device, "end_reason": rec.end_reason, "delivered": rec.total_delivered,
        "peak_mA": max(rec.peak_ua.values(), default=0) / 1000, "underruns": rec.underruns,
        "elapsed_s": round(rec.elapsed_us / 1e6, 3), "patient_id": rec.patient_id or "",
        "rpe": "" if rpe is None else f"{rpe.rpe_value:g}", "rpe_scale": "" if rpe is None else rpe.rpe_scale,
        "adverse_events": sum(n.kind == "adverse_event" for n in rec.notes),
        "notes": notes_text(rec),
    }


END_STYLE = {"completed": "green", "stopped": "yellow", "emergency_stop": "bold red", "fault": "bold red",
             "disconnected": "bold red", "interrupted": "red"}


def _notes_cell(rec) -> str:
    parts = []
    rpe = _last_rpe(rec)
    if rpe is not None:
        parts.append(f"RPE {rpe.rpe_value:g}" + ("/10" if rpe.rpe_scale == "cr10" else " (6-20)"))
    n_ae = sum(n.kind == "adverse_event" for n in rec.notes)
    if n_ae:
        parts.append(f"{n_ae} ADVERSE EVENT" + ("S" if n_ae > 1 else ""))
    n_txt = sum(1 for n in rec.notes if n.kind == "note" or (n.kind == "rpe" and n.text))
    if n_txt:
        parts.append(f"{n_txt} note" + ("s" if n_txt > 1 else ""))
    return ", ".join(parts)


def _console():
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=240, highlight=False, color_system=None)


def show_record(rec, console) -> None:
    """The detail view of one record."""
    from rich.table import Table
    from rich.text import Text

    from .note import describe

    console.print(Text(f"Session record #{rec.id}: {rec.title or '(untitled)'}", style="bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("session", f"{rec.session} (week {rec.week})")
    grid.add_row("patient", rec.patient_id or "–")
    grid.add_row("started", local_time(rec.started_at))
    grid.add_row("ended", local_time(rec.ended_at) or "–")
    grid.add_row("end reason", Text(rec.end_reason, style=END_STYLE.get(rec.end_reason, "")))
    grid.add_row("elapsed", f"{rec.elapsed_us / 1e6:.1f} s of {rec.duration_us / 1e6:.1f} s")
    grid.add_row("device", rec.device + (f" {rec.device_serial}" if rec.device_serial else "")
                 + (" (real time)" if rec.realtime else " (simulated)"))
    grid.add_row("protocol file", rec.source or "–")
    grid.add_row("sha256", rec.sha256 or "–")
    grid.add_row("params", ", ".join(f"{k} = {v}" for k, v in rec.params.items()) or "–")
    if rec.intensity_ua:
        grid.add_row("at the end", ", ".join(f"{k} = {v / 1000:g} mA" for k, v in rec.intensity_ua.items()))
    grid.add_row("underruns", str(rec.underruns))
    for f in rec.faults:
        grid.add_row("fault", Text(str(f), style="red"))
    for w in rec.warnings or ["none"]:
        grid.add_row("warning", w)
    console.print(grid)
    chans = Table(title="per channel", title_justify="left", header_style="bold")
    chans.add_column("channel", justify="right")
    chans.add_column("delivered pulses", justify="right")
    chans.add_column("peak mA", justify="right")
    for ch in sorted(set(rec.delivered) | set(rec.peak_ua)):
        chans.add_row(str(ch), str(rec.delivered.get(ch, 0)), f"{rec.peak_ua.get(ch, 0) / 1000:g}")
    chans.add_row("total", str(rec.total_delivered), f"{max(rec.peak_ua.values(), default=0) / 1000:g}")
    console.print(chans)
    if rec.notes:
        notes = Table(title="notes", title_justify="left", header_style="bold")
        notes.add_column("added")
        notes.add_column("kind")
        notes.add_column("note")
        for n in rec.notes:
            notes.add_row(local_time(n.created_at), n.kind.replace("_", " "),
                          Text(describe(n), style="bold red" if n.kind == "adverse_event" else ""))
        console.print(notes)
    else:
        console.print(f"notes: none (add one with: stimscript note {rec.id} --rpe N --text \"...\")")
    console.print(f"database: {rec.db_path}")


@click.command("history")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (one row per session, per-channel JSON, notes).")
@click.option("--patient", default=None, metavar="ID", help="Only this patient's sessions.")
@click.option("--session", "session_id", type=int, default=None, metavar="ID",
              help="Show one record in detail (params, warnings, per channel, notes); ID is the id column.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Only the last N sessions.")
@handle_errors
def history(as_csv: bool, patient: str | None, session_id: int | None, db: str | None, limit: int | None) -> None:
    """List session records (newest last), or show one with --session ID."""
    from rich.table import Table
    from rich.text import Text

    from ..runtime.records import RecordStore

    with RecordStore(db) as store:
        if session_id is not None:
            rec = store.get(session_id)
            show_record(rec, _console())
            return
        records = store.list(limit=limit, patient_id=patient)
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(COLUMNS + ("delivered_per_channel", "peak_ua_per_channel", "params", "warnings", "sha256",
                                "intensity_ua_at_end"))
        for rec in records:
            row = record_row(rec)
            out.writerow([row[c] for c in COLUMNS] + [json.dumps(rec.delivered), json.dumps(rec.peak_ua),
                                                      json.dumps(rec.params), json.dumps(rec.warnings), rec.sha256,
                                                      json.dumps(rec.intensity_ua)])
        return
    if not records:
        click.echo("no session records yet" + (f" for patient {patient}" if patient else ""))
        return
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    fixed = {"no_wrap": True}
    for name, kw in (("id", {"justify": "right", **fixed}), ("started_at", fixed),
                     ("title", {"min_width": 14, "max_width": 46, "overflow": "fold"}),
                     ("session", fixed), ("end_reason", fixed), ("pulses", {"justify": "right", **fixed}),
                     ("peak_mA", {"justify": "right", **fixed}), ("min", {"justify": "right", **fixed}),
                     ("patient", {"overflow": "fold", "min_width": 7}),
                     ("notes", {"min_width": 12, "overflow": "fold"})):
        table.add_column(name, **kw)
    for rec in records:
        end = Text(rec.end_reason, style=END_STYLE.get(rec.end_reason, ""))
        if rec.underruns:
            end.append(f" ({rec.underruns} late)", style="red")
        table.add_row(str(rec.id), local_time(rec.started_at), rec.title, f"{rec.session} (wk {rec.week})", end,
                      str(rec.total_delivered), f"{max(rec.peak_ua.values(), default=0) / 1000:g}",
                      f"{rec.elapsed_us / 60e6:.1f}", rec.patient_id or "", _notes_cell(rec))
    console = _console()
    if console.width >= 110:
        console.print(table)
        return
    for rec in records:   # a narrow terminal: two lines per session instead of a table
        end = Text(rec.end_reason, style=END_STYLE.get(rec.end_reason, ""))
        line = Text.assemble((f"#{rec.id}", "bold"), f"  {local_time(rec.started_at)}  ",
                             (rec.patient_id or "-", "bold"), "  ", end,
                             f"  session {rec.session} (week {rec.week})")
        detail = (f"    {rec.title} · {rec.total_delivered} pulses · peak "
                  f"{max(rec.peak_ua.values(), default=0) / 1000:g} mA · {rec.elapsed_us / 60e6:.1f} min")
        if rec.underruns:
            detail += f" · {rec.underruns} late pulses"
        notes = _notes_cell(rec)
        console.print(line)
        console.print(detail + (f" · {notes}" if notes else ""))
