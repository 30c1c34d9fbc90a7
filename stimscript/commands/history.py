"""``stimscript history``: the session records in the database, or one record with its event log.

Treatment records only by default: practice runs (on an emulator) and void records are shown with
``--all``. Times are local with the UTC offset shown; currents in mA; durations m:ss.
"""
from __future__ import annotations

import csv
import json
import sys

import click

from ..formatting import duration, local_iso, local_time, ma, ma_number
from ..textsafe import MAX_RECORD_ID, csv_cell, for_terminal, utf8_argument
from ._common import handle_errors

COLUMNS = ("id", "started_at", "title", "session", "week", "device", "device_model", "device_serial", "practice",
           "void", "end_reason", "delivered", "peak_mA", "underruns", "stim_s", "paused_s", "elapsed_s",
           "patient_id", "operator_id", "rpe", "rpe_scale", "adverse_events", "notes")

EVENT_COLUMNS = ("seq", "kind", "session_us", "device_us", "session_time", "channel", "channel_name", "old_mA",
                 "new_mA", "duration_us", "scale_ppm", "detail", "host_time")


def _last_rpe(rec):
    return next((n for n in reversed(rec.notes) if n.kind == "rpe"), None)


def notes_text(rec, sep: str = " | ") -> str:
    from .note import describe

    return sep.join(describe(n) for n in rec.notes)


def _seconds(us) -> str:
    return "" if us is None else f"{us / 1e6:.3f}"


def record_row(rec) -> dict:
    rpe = _last_rpe(rec)
    return {
        "id": rec.id, "started_at": local_iso(rec.started_at), "title": rec.title, "session": rec.session,
        "week": rec.week, "device": rec.device, "device_model": rec.device_model, "device_serial": rec.device_serial,
        "practice": {True: "yes", False: "no", None: "unknown"}[rec.emulated],
        "void": f"{local_iso(rec.voided_at)}: {rec.void_reason}" if rec.void else "",
        "end_reason": rec.end_reason, "delivered": rec.total_delivered,
        "peak_mA": ma_number(max(rec.peak_ua.values(), default=0)), "underruns": rec.underruns,
        "stim_s": _seconds(rec.stim_us), "paused_s": _seconds(rec.paused_us), "elapsed_s": _seconds(rec.elapsed_us),
        "patient_id": rec.patient_id or "", "operator_id": rec.operator_id or "",
        "rpe": "" if rpe is None else f"{rpe.rpe_value:g}", "rpe_scale": "" if rpe is None else rpe.rpe_scale,
        "adverse_events": sum(n.kind == "adverse_event" for n in rec.notes),
        "notes": notes_text(rec),
    }


END_STYLE = {"completed": "green", "degraded": "yellow", "stopped": "yellow", "emergency_stop": "bold red", "fault": "bold red",
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


def channel_names(rec) -> dict[int, str]:
    """Channel number -> name, from the protocol text kept in the record (empty when it cannot be read)."""
    if not rec.source_text:
        return {}
    try:
        from .. import loads

        proto = loads(rec.source_text, name=rec.source or "<record>")
        return {c.number: c.name for c in proto.compile(session=rec.session, params=rec.params).channels}
    except Exception:   # an old or unreadable text: numbers only
        return {}


def merged_events(events) -> list:
    """The event log for reading: consecutive slew steps of one intensity change on one channel become
    one line (first old -> last new value); everything else as is."""
    out: list = []
    for ev in events:
        prev = out[-1] if out else None
        if (ev.kind == "intensity" and prev is not None and prev.kind == "intensity"
                and prev.channel == ev.channel and ev.old_ua == prev.new_ua and ev.session_us - prev.session_us <= 100_000
                and (ev.new_ua - ev.old_ua) * (prev.new_ua - prev.old_ua) > 0):
            from dataclasses import replace

            out[-1] = replace(prev, new_ua=ev.new_ua, scale_ppm=ev.scale_ppm, session_us=prev.session_us)
            continue
        out.append(ev)
    return out


def show_record(rec, console) -> None:
    """The detail view of one record, with its event log."""
    from rich.table import Table
    from rich.text import Text

    from ..recordview import channel_rows, record_rows
    from .note import describe

    head = Text(f"Session record #{rec.id}: {rec.title or '(untitled)'}", style="bold")
    if rec.void:
        head.append(f"  VOID ({rec.void_reason})", style="bold red")
    elif rec.practice:
        head.append("  practice run (emulator)", style="yellow")
    console.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, text in record_rows(rec):   # the same rows, in the same words, as run's end-of-session summary
        if label == "kind":
            continue
        style = END_STYLE.get(rec.end_reason, "") if label == "end reason" else ""
        grid.add_row(label, Text(text, style=style))
    grid.add_row("protocol file", rec.source or "–")
    grid.add_row("sha256", rec.sha256 or "–")
    grid.add_row("protocol text", "kept in the record" if rec.source_text else "not kept (recorded before it was)")
    if rec.void:
        grid.add_row("void", Text(f"{local_time(rec.voided_at)}: {rec.void_reason}"
                                  + (f" (by {rec.voided_by})" if rec.voided_by else ""), style="red"))
    grid.add_row("underruns", str(rec.underruns))
    for f in rec.faults:
        grid.add_row("fault", Text(str(f), style="red"))
    for w in rec.warnings or ["none"]:
        grid.add_row("warning", w)
    console.print(grid)
    names = channel_names(rec)
    chans = Table(title="per channel", title_justify="left", header_style="bold")
    chans.add_column("channel", justify="right")
    chans.add_column("name")
    chans.add_column("delivered pulses", justify="right")
    chans.add_column("peak", justify="right")
    chans.add_column("at the end", justify="right")
    for ch, name, pulses, peak, end in channel_rows(rec, names):
        chans.add_row(str(ch), name, str(pulses), peak, end)
    chans.add_row("total", "", str(rec.total_delivered), ma(max(rec.peak_ua.values(), default=0)), "")
    console.print(chans)
    if rec.events:
        log = Table(title="event log (device clock; slew steps of one change merged — --csv lists each)",
                    title_justify="left", header_style="bold")
        log.add_column("time", justify="right", no_wrap=True)
        log.add_column("event")
        for ev in merged_events(rec.events):
            style = "bold red" if ev.kind in ("emergency_stop", "fault", "deviation") else ""
            log.add_row(f"{ev.session_us / 1e6:.3f} s", Text(ev.describe(names), style=style))
        console.print(log)
    else:
        console.print("event log: none (recorded before event logs existed)")
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


def _for_terminal(rec):
    """A copy of ``rec`` whose free text (title, patient, operator, notes, warnings, void reason, source) shows
    control characters escaped and rich markup literally: text from a database must not drive the terminal."""
    from dataclasses import fields, replace

    from rich.markup import escape

    def t(x):
        return escape(for_terminal(x, keep_newlines=True)) if isinstance(x, str) else x

    names = {f.name for f in fields(rec)}
    changes = {k: t(getattr(rec, k)) for k in ("title", "patient_id", "operator_id", "void_reason", "source")
               if k in names}
    changes["notes"] = [replace(n, text=t(n.text)) if isinstance(getattr(n, "text", None), str) else n
                        for n in rec.notes]
    changes["warnings"] = [t(w) for w in rec.warnings]
    return replace(rec, **changes)


def write_events_csv(rec, out) -> None:
    """The event log of one record, one row per event (every slew step), to a text stream."""
    names = channel_names(rec)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for i, ev in enumerate(rec.events):
        w.writerow([csv_cell(c) for c in [i, ev.kind, ev.session_us, ev.device_us, f"{ev.session_us / 1e6:.6f}",
                    "" if ev.channel is None else ev.channel, names.get(ev.channel, "") if ev.channel else "",
                    "" if ev.old_ua is None else ma_number(ev.old_ua), "" if ev.new_ua is None else ma_number(ev.new_ua),
                    "" if ev.duration_us is None else ev.duration_us, "" if ev.scale_ppm is None else ev.scale_ppm,
                    ev.detail, local_iso(ev.host_at)]])


@click.command("history")
@click.argument("record_id", metavar="[ID]", type=click.IntRange(1, MAX_RECORD_ID), required=False)
@click.option("--id", "id_option", type=click.IntRange(1, MAX_RECORD_ID), default=None, metavar="ID",
              help="Show record ID in detail with its event log (the id column); with --csv: the event log as CSV.")
@click.option("--csv", "as_csv", is_flag=True,
              help="CSV on stdout: one row per session, or with an ID one row per event.")
@click.option("--all", "show_all", is_flag=True, help="Also practice runs (emulators) and void records, marked.")
@click.option("--patient", default=None, metavar="P", help="Only this patient's sessions.", callback=utf8_argument)
@click.option("--session", "plan_session", type=click.IntRange(1, MAX_RECORD_ID), default=None, metavar="N",
              help="Only session N of the plan.")
@click.option("--since", default=None, metavar="DATE", help="Only sessions started on or after DATE (YYYY-MM-DD).")
@click.option("--until", default=None, metavar="DATE", help="Only sessions started on or before DATE (YYYY-MM-DD).")
@click.option("--device", default=None, metavar="NAME", help="Only sessions on this device (driver, model or serial).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--limit", "-n", type=click.IntRange(1, MAX_RECORD_ID), default=None, help="Only the last N sessions.")
@handle_errors
def history(record_id: int | None, id_option: int | None, as_csv: bool, show_all: bool, patient: str | None,
            plan_session: int | None, since: str | None, until: str | None, device: str | None, db: str | None,
            limit: int | None) -> None:
    """List treatment records (oldest first), or show record ID in detail with its event log.

    \b
    Practice runs on an emulator and void records are hidden unless --all.
    Times are local, with the UTC offset shown.
    \b
    Examples:
      stimscript history --patient P-7 --since 2026-11-01
      stimscript history 12            (one record and its event log)
      stimscript history 12 --csv      (its event log as CSV)
    """
    from rich.table import Table
    from rich.text import Text

    from ..runtime.records import RecordError, RecordStore

    if record_id is not None and id_option is not None and record_id != id_option:
        raise RecordError(f"two record ids given ({record_id} and --id {id_option}): give one")
    rid = record_id if record_id is not None else id_option
    with RecordStore.for_reading(db) as store:
        if rid is not None:
            rec = store.get(rid)
            if as_csv:
                write_events_csv(rec, sys.stdout)
            else:
                show_record(_for_terminal(rec), _console())
            return
        records = store.list(limit=None if plan_session is not None else limit, patient_id=patient, since=since,
                             until=until, device=device, all=show_all)
        hidden = store.hidden_counts(patient) if not show_all else {"practice": 0, "void": 0}
        for problem in store.damaged:   # rows changed outside stimscript: said, never a traceback
            click.echo(f"warning: {for_terminal(problem)}", err=True)
    if plan_session is not None:
        records = [r for r in records if r.session == plan_session]
        if limit is not None:
            records = records[-limit:]
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(COLUMNS + ("delivered_per_channel", "peak_ua_per_channel", "params", "warnings", "sha256",
                                "intensity_ua_at_end", "channel_ua_at_end"))
        for rec in records:
            row = record_row(rec)
            cells = [row[c] for c in COLUMNS] + [json.dumps(rec.delivered), json.dumps(rec.peak_ua),
                                                 json.dumps(rec.params), json.dumps(rec.warnings), rec.sha256,
                                                 json.dumps(rec.intensity_ua), json.dumps(rec.channel_ua)]
            out.writerow([csv_cell(c) for c in cells])  # no cell is read as a spreadsheet formula
        return
    hint = []
    if hidden["practice"]:
        hint.append(f"{hidden['practice']} practice run{'s' if hidden['practice'] != 1 else ''} (emulator)")
    if hidden["void"]:
        hint.append(f"{hidden['void']} void record{'s' if hidden['void'] != 1 else ''}")
    hint_text = f"{' and '.join(hint)} not shown: stimscript history --all" if hint else ""
    if not records:
        click.echo("no treatment records" + (f" for patient {patient}" if patient else "")
                   + (" matching the filters" if any((since, until, device, plan_session)) else "")
                   + (f"; {hint_text}" if hint_text else ""))
        return
    records = [_for_terminal(rec) for rec in records]
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    fixed = {"no_wrap": True}
    for name, kw in (("id", {"justify": "right", **fixed}), ("started", fixed),
                     ("title", {"min_width": 14, "max_width": 46, "overflow": "fold"}),
                     ("session", fixed), ("end_reason", fixed), ("pulses", {"justify": "right", **fixed}),
                     ("peak", {"justify": "right", **fixed}), ("stim", {"justify": "right", **fixed}),
                     ("paused", {"justify": "right", **fixed}),
                     ("patient", {"overflow": "fold", "min_width": 7}),
                     ("notes", {"min_width": 12, "overflow": "fold"})):
        table.add_column(name, **kw)

    def end_text(rec):
        end = Text(rec.end_reason, style=END_STYLE.get(rec.end_reason, ""))
        if rec.underruns:
            end.append(f" ({rec.underruns} late)", style="red")
        if rec.void:
            end.append(" VOID", style="bold red")
        elif rec.practice:
            end.append(" practice", style="yellow")
        return end

    for rec in records:
        stim = rec.stim_us if rec.stim_us is not None else rec.elapsed_us
        table.add_row(str(rec.id), local_time(rec.started_at), rec.title, f"{rec.session} (wk {rec.week})",
                      end_text(rec), str(rec.total_delivered), ma(max(rec.peak_ua.values(), default=0)),
                      duration(stim), duration(rec.paused_us) if rec.paused_us is not None else "–",
                      rec.patient_id or "", _notes_cell(rec))
    console = _console()
    if console.width >= 120:
        console.print(table)
    else:
        for rec in records:   # a narrow terminal: two lines per session instead of a table
            stim = rec.stim_us if rec.stim_us is not None else rec.elapsed_us
            line = Text.assemble((f"#{rec.id}", "bold"), f"  {local_time(rec.started_at)}  ",
                                 (rec.patient_id or "-", "bold"), "  ", end_text(rec),
                                 f"  session {rec.session} (week {rec.week})")
            detail = (f"    {rec.title} · {rec.total_delivered} pulses · peak "
                      f"{ma(max(rec.peak_ua.values(), default=0))} · {duration(stim)} stimulation")
            if rec.paused_us:
                detail += f" · {duration(rec.paused_us)} paused"
            if rec.underruns:
                detail += f" · {rec.underruns} late pulses"
            notes = _notes_cell(rec)
            console.print(line)
            console.print(detail + (f" · {notes}" if notes else ""))
    if hint_text:
        console.print(Text(hint_text, style="dim"))
