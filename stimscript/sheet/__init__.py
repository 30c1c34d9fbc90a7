"""The setup sheet: one printable, self-contained HTML page for the treating clinician.

    >>> proto = stimscript.load("examples/tka_quadriceps.stim")
    >>> html = build_sheet(proto, session=1, params={"intensity": "45 mA"}, patient="P-001")

Two steps, one module each: :mod:`.model` reads the checked protocol through its typed read API into a
:class:`~stimscript.sheet.model.Sheet` (every value as shown), :mod:`.html` lays it out for print (one A4/Letter
page for one channel, two for several) with :mod:`.body`'s outline of the electrode sites. The sheet holds
the protocol's title, plan and settings, each channel's site (atlas landmarks and source), electrodes,
pulse, frequency and amplitude, the session's blocks, the week-by-week values, the checker's warnings, the
contraindication and skin checks a clinician ticks, and fields for the patient, the tolerated intensity and a
signature. Everything is inline: the file prints the same anywhere and can be archived with the record.
"""
from __future__ import annotations

from typing import Optional

from .html import render
from .model import Sheet, build

__all__ = ["Sheet", "build", "build_sheet", "render", "write_sheet"]


def build_sheet(proto, session: int = 1, params: Optional[dict] = None, patient: Optional[str] = None,
                generated: Optional[str] = None, schedule=None, paper: str = "a4") -> str:
    """The setup sheet of ``session`` of a CheckedProtocol as one self-contained HTML document
    (``paper``: 'a4' or 'letter'; ``schedule``: its compile warnings are listed too)."""
    warnings = tuple(schedule.warnings) if schedule is not None else ()
    return render(build(proto, session=session, params=params, patient=patient, generated=generated,
                        warnings=warnings), paper=paper)


def write_sheet(proto, path, session: int = 1, params: Optional[dict] = None, patient: Optional[str] = None,
                paper: str = "a4") -> str:
    """Build the sheet and write it (UTF-8); returns the path."""
    text = build_sheet(proto, session=session, params=params, patient=patient, paper=paper)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return str(path)
