"""``stimscript history [--csv]``: the session records in the database."""
from __future__ import annotations

import csv
import json
import sys

import click

from ._common import handle_errors

COLUMNS = ("id", "started_at", "title", "session", "device", "end_reason", "delivered", "peak_mA", "underruns",
           "elapsed_s", "patient_id", "notes")


def record_row(rec) -> dict:
    return {
        "id": rec.id, "started_at": rec.started_at, "title": rec.title, "session": rec.session,
        "device": rec.device, "end_reason": rec.end_reason, "delivered": rec.total_delivered,
        "peak_mA": max(rec.peak_ua.values(), default=0) / 1000, "underruns": rec.underruns,
        "elapsed_s": round(rec.elapsed_us / 1e6, 3), "patient_id": rec.patient_id or "",
        "notes": len(rec.notes),
    }


@click.command("history")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (one row per session, per-channel JSON).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Only the last N sessions.")
@handle_errors
def history(as_csv: bool, db: str | None, limit: int | None) -> None:
    """List session records."""
    from ..runtime.records import RecordStore

    with RecordStore(db) as store:
        records = store.list(limit=limit)
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(COLUMNS + ("delivered_per_channel", "peak_ua_per_channel", "sha256"))
        for rec in records:
            row = record_row(rec)
            out.writerow([row[c] for c in COLUMNS] + [json.dumps(rec.delivered), json.dumps(rec.peak_ua), rec.sha256])
        return
    if not records:
        click.echo("no session records yet")
        return
    rows = [{k: str(v) for k, v in record_row(r).items()} for r in records]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    click.echo("  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip())
    for r in rows:
        click.echo("  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip())
