"""``stimscript void ID --reason TEXT``: mark a session record void. Records are never deleted."""
from __future__ import annotations

import click

from ..textsafe import MAX_RECORD_ID, utf8_argument
from ._common import handle_errors


@click.command("void")
@click.argument("record_id", metavar="ID", type=click.IntRange(1, MAX_RECORD_ID))
@click.option("--reason", required=True, metavar="TEXT",
              help="Why the record is void (e.g. \"wrong patient selected\"); stored with it.", callback=utf8_argument)
@click.option("--operator", default=None, metavar="ID", help="Who voids it (stored with the record).",
              callback=utf8_argument)
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@handle_errors
def void(record_id: int, reason: str, operator: str | None, db: str | None) -> None:
    """Mark session record ID void: it is kept (with the reason, time and operator) and hidden from
    `stimscript history` unless --all. Nothing is deleted.

    \b
    Example:
      stimscript void 12 --reason "ran under the wrong patient id"
    """
    from ..formatting import local_time
    from ..runtime.records import RecordStore

    with RecordStore(db) as store:
        rec = store.void(record_id, reason, by=operator)
    click.echo(f"session record #{rec.id} ({rec.title}, session {rec.session}, {local_time(rec.started_at)}"
               + (f", patient {rec.patient_id}" if rec.patient_id else "") + ") is now void: "
               + f"{rec.void_reason}")
    click.echo(f"it is kept; see it with: stimscript history {rec.id}")
