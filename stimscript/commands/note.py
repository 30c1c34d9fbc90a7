"""``stimscript note ID --rpe N [--scale cr10|borg20] [--text ...] [--adverse ...]``: annotate a record."""
from __future__ import annotations

import click

from ..runtime.records import RecordError
from ..textsafe import MAX_RECORD_ID, utf8_argument
from ._common import handle_errors

SCALES = {"cr10": "Borg CR10, 0-10, decimals allowed", "borg20": "Borg RPE 6-20, whole numbers"}


def parse_rpe(value: str, scale: str) -> float:
    """Validate an RPE rating for its scale: CR10 0-10 (decimals allowed), Borg RPE 6-20 (integers)."""
    try:
        x = float(value.replace(",", "."))
    except ValueError:
        raise RecordError(f"--rpe expects a number, got {value!r}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise RecordError(f"--rpe expects a number, got {value!r}")
    if scale == "cr10":
        if not 0 <= x <= 10:
            raise RecordError(f"RPE {value} is outside the CR10 scale (0 to 10; decimals such as 4.5 are allowed)")
    else:
        if x != int(x):
            raise RecordError(f"RPE {value}: the Borg 6-20 scale has whole numbers only")
        if not 6 <= x <= 20:
            raise RecordError(f"RPE {value} is outside the Borg scale (6 to 20)")
    return x


def describe(note) -> str:
    """One note as a short line (also used by ``history``)."""
    if note.kind == "rpe":
        scale = "CR10" if note.rpe_scale == "cr10" else "Borg 6-20"
        head = f"RPE {note.rpe_value:g} ({scale})"
        return head + (f": {note.text}" if note.text else "")
    if note.kind == "adverse_event":
        return f"ADVERSE EVENT: {note.text}"
    return note.text


@click.command("note")
@click.argument("session_id", metavar="ID", type=click.IntRange(1, MAX_RECORD_ID))
@click.option("--rpe", default=None, metavar="N",
              help="Rating of perceived exertion (CR10: 0-10, decimals allowed; Borg: 6-20 whole numbers).")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default="cr10", show_default=True,
              help="RPE scale: cr10 (Borg CR10, 0-10) or borg20 (Borg RPE, 6-20).")
@click.option("--text", "text", default=None, metavar="TEXT", help="Free-text note (put it in quotes).",
              callback=utf8_argument)
@click.option("--adverse", default=None, metavar="TEXT",
              help="Record an adverse event (e.g. skin redness under the distal electrode).", callback=utf8_argument)
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Records database (default: $STIMSCRIPT_DB or the user data directory).")
@handle_errors
def note(session_id: int, rpe: str | None, scale: str, text: str | None, adverse: str | None, db: str | None) -> None:
    """Add a note to session record ID (the id column of `stimscript history`).

    \b
    Examples:
      stimscript note 12 --rpe 5 --text "strong contraction, mild tingling"
      stimscript note 12 --rpe 13 --scale borg20
      stimscript note 12 --adverse "skin redness under the distal electrode"
    """
    from ..runtime.records import RecordStore

    if rpe is None and text is None and adverse is None:
        raise RecordError("nothing to add: give --rpe N, --text TEXT and/or --adverse TEXT")
    value = parse_rpe(rpe, scale) if rpe is not None else None
    if adverse is not None and not adverse.strip():
        raise RecordError("--adverse needs a description of the event")
    with RecordStore(db) as store:
        rec = store.get(session_id)   # unknown id -> RecordError, exit 1
        added = []
        if value is not None:
            added.append(store.add_note(session_id, text or "", rpe=value, rpe_scale=scale, patient_id=rec.patient_id))
        elif text is not None:
            added.append(store.add_note(session_id, text, patient_id=rec.patient_id))
        if adverse is not None:
            added.append(store.add_note(session_id, adverse.strip(), kind="adverse_event", patient_id=rec.patient_id))
    from ..formatting import local_time

    click.echo(f"session record #{rec.id} ({rec.title}, session {rec.session}, {local_time(rec.started_at)}"
               + (f", patient {rec.patient_id}" if rec.patient_id else "") + "):")
    for n in added:
        click.echo(f"  added {describe(n)}")
