"""The setup sheet as one self-contained, printable HTML page (inline CSS and SVG, nothing fetched).

Laid out for print: one A4/Letter page for a single-channel protocol, two for several channels (the print
CSS sets the page, the sizes and where a page may break). :func:`render` is a pure function of a
:class:`~stimscript.sheet.model.Sheet`.
"""
from __future__ import annotations

import html as _html
import re

from .body import body_svg
from .model import Sheet

CSS = """
:root { --ink:#1d2733; --mute:#56616d; --line:#c3ccd6; --band:#eef3f8; --warnbg:#fff4e0; }
* { box-sizing: border-box; }
html { font: 9pt/1.25 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
       color: var(--ink); }
body { margin: 0 auto; max-width: 190mm; padding: 8mm 0; background: #fff; }
h1 { font-size: 14pt; margin: 0; line-height: 1.15; }
h2 { font-size: 10pt; margin: 2.6mm 0 1.1mm; padding-bottom: 0.6mm; border-bottom: 1.5px solid var(--ink);
     break-after: avoid; page-break-after: avoid; }
p { margin: 1mm 0; }
.head { display: grid; grid-template-columns: 1fr 62mm; gap: 4mm; align-items: start; }
.sub { color: var(--mute); margin: 0.8mm 0 1.5mm; }
.who { border: 1.5px solid var(--ink); border-radius: 2px; padding: 1.5mm 2.5mm; }
.who div { border-bottom: 1px solid var(--line); padding: 1.2mm 0 0.4mm; font-size: 8.5pt; color: var(--mute); }
.who div:last-child { border-bottom: none; }
.who strong { color: var(--ink); font-size: 9.5pt; }
.meta { display: grid; grid-template-columns: 19mm 1fr; gap: 0.3mm 3mm; margin: 0; font-size: 8.5pt; }
.meta dt { font-weight: 600; color: var(--mute); }
.meta dd { margin: 0; }
table { width: 100%; border-collapse: collapse; margin: 0.8mm 0 1.2mm; font-size: 8.3pt; }
th, td { border: 1px solid var(--line); padding: 0.7mm 1.5mm; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.setup { display: grid; grid-template-columns: 46mm 1fr; gap: 3mm; align-items: start; }
svg.body { width: 46mm; height: auto; display: block; }
svg.timeline { width: 100%; height: auto; display: block; margin: 0.5mm 0 1mm; }
.ch { border-left: 4px solid var(--c); padding: 0.3mm 0 0.3mm 2mm; margin: 0 0 1.6mm; break-inside: avoid;
      page-break-inside: avoid; }
.ch .name { font-weight: 700; font-size: 9.5pt; }
.ch .grid { display: grid; grid-template-columns: 19mm 1fr; gap: 0 2mm; font-size: 8.5pt; }
.ch .grid > span:nth-child(odd) { color: var(--mute); }
.note { color: var(--mute); font-size: 7.8pt; }
.landmarks { font-size: 7.3pt; line-height: 1.22; color: #2c3640; margin: 0.5mm 0 0; }
.landmarks p { margin: 0 0 0.8mm; }
.changed { background: #fff1c9; font-weight: 600; }
table.weeks .now { border-left: 2px solid var(--ink); border-right: 2px solid var(--ink); }
.warn { background: var(--warnbg); border-left: 3px solid #d08a00; padding: 0.6mm 2mm; margin: 0 0 0.8mm;
        font-size: 8.2pt; }
.checks { display: grid; grid-template-columns: 1.1fr 1fr; gap: 0 4mm; break-inside: avoid; page-break-inside: avoid; }
.checks h3 { font-size: 8.8pt; margin: 0.6mm 0 0.4mm; }
.checks ul { list-style: none; padding: 0; margin: 0; }
.checks li { font-size: 7.8pt; line-height: 1.22; padding-left: 4.5mm; text-indent: -4.5mm; margin: 0 0 0.4mm; }
.box { display: inline-block; width: 3mm; height: 3mm; border: 1px solid var(--ink); margin-right: 2mm;
       vertical-align: -0.4mm; }
table.sign { margin-top: 1.5mm; table-layout: fixed; }
table.sign td { border: none; border-bottom: 1px solid var(--ink); height: 7.5mm; width: 25%; font-size: 7.8pt;
                color: var(--mute); padding: 0.3mm 2mm 0 0; }
table.sign td.notes { height: 12mm; }
.code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 8pt; }
.foot { color: var(--mute); font-size: 6.8pt; margin-top: 1.2mm; border-top: 1px solid var(--line); padding-top: 0.8mm; }
section { break-inside: avoid; page-break-inside: avoid; }
section.long { break-inside: auto; page-break-inside: auto; }
@media print {
  body { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def _timeline(sheet: Sheet) -> str:
    """Each channel's blocks as bars on one time axis (pauses left empty), the block numbers above."""
    chans = [c for c in sheet.channels]
    if not chans or not sheet.duration_us:
        return ""
    left, width, lane = 60.0, 520.0, 9.0
    height = 12 + lane * len(chans) + 12
    total = sheet.duration_us
    out = [f"<svg class='timeline' viewBox='0 0 600 {height:g}' xmlns='http://www.w3.org/2000/svg' role='img' "
           "aria-label='the blocks of the session on a time axis, one lane per channel'>"]
    for b in sheet.blocks:
        x0 = left + width * b.start_us / total
        x1 = left + width * b.end_us / total
        if x1 - x0 >= 7 and len(sheet.blocks) <= 40:
            out.append(f"<text x='{(x0 + x1) / 2:.1f}' y='8' font-size='7' text-anchor='middle' fill='#56616d'>"
                       f"{b.number}</text>")
        out.append(f"<line x1='{x0:.1f}' y1='10' x2='{x0:.1f}' y2='{height - 11:g}' stroke='#c3ccd6' stroke-width='0.5'/>")
    for j, ch in enumerate(chans):
        y = 12 + lane * j
        out.append(f"<text x='{left - 4}' y='{y + lane - 2.5:g}' font-size='7' text-anchor='end' fill='{ch.color}'>"
                   f"{ch.number} {_e(ch.name)}</text>")
        for b in sheet.blocks:
            if ch.number not in b.channels:
                continue
            x0 = left + width * b.start_us / total
            x1 = left + width * b.end_us / total
            out.append(f"<rect x='{x0:.1f}' y='{y + 1:g}' width='{max(0.6, x1 - x0 - 0.6):.1f}' height='{lane - 2:g}' "
                       f"fill='{ch.color}' fill-opacity='0.55'/>")
    y = height - 4
    out.append(f"<text x='{left}' y='{y:g}' font-size='7' fill='#56616d'>0:00</text>"
               f"<text x='{left + width}' y='{y:g}' font-size='7' text-anchor='end' fill='#56616d'>{_e(sheet.length)}</text>")
    out.append("</svg>")
    return "".join(out)


_SET = re.compile(r"^set (\d+)/(\d+) · ")


def _unset(label: str) -> str:
    return _SET.sub("", label)


def _set_of(label: str) -> str:
    m = _SET.match(label)
    return m.group(1) + "/" + m.group(2) if m else ""


def _runs(blocks) -> list[list]:
    """The session table's rows: the same block in successive passes of a set shares one row (its numbers
    and start times listed), so a long session of many sets stays short; anything else has its own row."""
    groups: dict = {}
    order = []
    for b in blocks:
        key = (_unset(b.label), b.what, b.length, b.kind) if _SET.match(b.label) else ("#", b.number)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(b)
    return [groups[k] for k in order]


PAPER = {"a4": "A4", "letter": "letter"}


def render(sheet: Sheet, paper: str = "a4") -> str:
    """The page, for ``paper`` 'a4' (210 × 297 mm) or 'letter' (8.5 × 11 in)."""
    out: list[str] = []
    w = out.append
    of = f" of {sheet.sessions}" if sheet.sessions else ""
    w("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>\n")
    w(f"<title>{_e(sheet.title)} — setup sheet, session {sheet.session}</title>\n<style>{CSS}@page {{ size: {PAPER[paper]}; margin: 7mm 10mm 6mm; }}</style>\n</head>\n<body>\n")

    # --- head: protocol and who/when ---
    w("<header class='head'><div>")
    w(f"<h1>{_e(sheet.title)}</h1>")
    w(f"<div class='sub'>Setup sheet · session {sheet.session}{of} ({_e(sheet.plan)}) · week {sheet.week} · "
      f"session length {_e(sheet.length)}</div>")
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in sheet.fields)
    for p in sheet.params:   # the settings of this session, with what the protocol allows
        extra = [f"default {p.default}"] + ([f"range {p.range}"] if p.range else []) + (
            [p.description] if p.description else [])
        mark = " (set for this session)" if p.overridden else ""
        meta += (f"<dt class='code'>{_e(p.name)}</dt><dd><strong>{_e(p.value)}</strong>{_e(mark)} "
                 f"<span class='note'>{_e('; '.join(extra))}</span></dd>")
    w(f"<dl class='meta'>{meta}</dl>")
    w("</div><div><div class='who'>")
    w(f"<div>Patient <strong>{_e(sheet.patient)}</strong></div>" if sheet.patient else "<div>Patient</div>")
    w("<div>Date and time</div><div>Clinician</div><div>Treated side / position</div></div>"
      "<p class='note'>Start low, raise to tolerance, stop at once on pain. The stimulator's instructions for "
      "use apply.</p></div></header>\n")

    # --- channels on the body ---
    w("<section class='long'><h2>Electrodes and channels</h2><div class='setup'><div>")
    marks = [(c.marker[0], c.marker[1], c.marker[2], c.color, str(c.number)) for c in sheet.channels if c.marker]
    w(body_svg(marks))
    unplaced = [c for c in sheet.channels if not c.marker]
    if unplaced:
        w("<p class='note'>Not drawn: " + "; ".join(f"{c.number} {_e(c.name)} ({_e(c.site)})" for c in unplaced)
          + "</p>")
    w("</div><div>")
    for c in sheet.channels:
        w(f"<div class='ch' style='--c:{c.color}'><div class='name'>Channel {c.number} · {_e(c.name)} — "
          f"{_e(c.site)} <span class='note'>{_e(c.site_note)}</span></div><div class='grid'>")
        if c.cathode:
            w(f"<span>electrodes</span><span><strong>{_e(c.cathode)}</strong> (−) → <strong>{_e(c.anode)}</strong> (+)"
              "</span>")
        w(f"<span>pulse</span><span>{_e(c.pulse)}</span>")
        w(f"<span>frequency</span><span>{_e(c.frequency)}</span>")
        note = f" <span class='note'>({_e(c.amplitude_note)})</span>" if c.amplitude_note else ""
        w(f"<span>amplitude</span><span><strong>{_e(c.amplitude)}</strong> at full output{note}</span>")
        w(f"<span>pulses</span><span>{c.pulses:,} this session</span></div></div>")
    w("<p class='note'>(−) cathode, (+) anode of the leading phase (they swap in a biphasic pulse's second "
      "phase).</p>")
    if sheet.landmarks:
        w("<div class='landmarks'>")
        for lm in sheet.landmarks:
            w(f"<p><strong>{_e(lm.site)}</strong> (channel {_e(lm.channels)}): {_e(lm.landmark)} "
              f"Electrodes: {_e(lm.typical_electrode)}. <span class='note'>Source: {_e(lm.source)}</span></p>")
        w("</div>")
    w("</div></div>")
    w("</section>\n")

    # --- the session ---
    w("<section class='long'><h2>The session</h2>")
    w(_timeline(sheet))
    w("<table><tr><th class='num'>#</th><th class='num'>starts</th><th class='num'>length</th><th style='width:24%'>block</th>"
      "<th>channels: cycle · frequency · amplitude</th></tr>")
    for rows in _runs(sheet.blocks):
        b = rows[0]
        numbers = ", ".join(str(r.number) for r in rows)
        starts = ", ".join(r.start for r in rows)
        label = b.label if len(rows) == 1 else f"{_unset(b.label)} (sets {_set_of(b.label)}–{_set_of(rows[-1].label)})"
        what = _e(b.what) if b.kind != "pause" else "<span class=note>pause: no output</span>"
        w(f"<tr><td class='num'>{numbers}</td><td class='num'>{_e(starts)}</td><td class='num'>{_e(b.length)}</td>"
          f"<td>{_e(label)}</td><td>{what}</td></tr>")
    w("</table><p class='note'>cycle: ramp up ↗ hold ↘ ramp down, then rest; amplitudes at full output.</p>"
      "</section>\n")

    # --- weeks: one column per week, one row per value the progression changes ---
    if sheet.weeks is not None:
        wk = sheet.weeks
        w("<section><h2>Week by week</h2><table class='weeks'><tr><th>week</th>"
          + "".join(f"<th class='num{' now' if week == wk.this_week else ''}'>{week}</th>" for week, *_ in wk.rows)
          + "</tr><tr><td class='note'>sessions</td>"
          + "".join(f"<td class='num note{' now' if week == wk.this_week else ''}'>{_e(sessions)}</td>"
                    for week, sessions, _, _ in wk.rows) + "</tr>")
        for k, target in enumerate(wk.targets):
            cells = "".join(
                f"<td class='num{' changed' if changed[k] else ''}{' now' if week == wk.this_week else ''}'>"
                f"{_e(values[k])}</td>" for week, _, values, changed in wk.rows)
            w(f"<tr><td class='code'>{_e(target)}</td>{cells}</tr>")
        w("</table>")
        written = ""
        if sheet.progression:
            written = " As written: " + " · ".join(f"<span class='code'>{_e(s)}</span>" for s in sheet.progression)
        w("<p class='note'>Highlighted: a value that changes from the week before; framed: this session's week."
          f"{written}</p></section>\n")

    # --- warnings ---
    if sheet.warnings:
        w("<section><h2>Checker warnings</h2>")
        for wn in sheet.warnings:
            w(f"<div class='warn'><strong>warning[{_e(wn.code)}]</strong> {_e(wn.message)}"
              + (f" <span class='note'>{_e(wn.where)}</span>" if wn.where else "")
              + (f"<br><span class='note'>hint: {_e(wn.hint)}</span>" if wn.hint else "") + "</div>")
        w("</section>\n")


    # --- checks and sign-off ---
    def items(rows) -> str:
        return "<ul>" + "".join(f"<li><span class='box'></span>{_e(r)}</li>" for r in rows) + "</ul>"

    w("<section><h2>Before stimulating: tick each check, or do not stimulate</h2><div class='checks'><div>")
    w("<h3>Contraindications and precautions</h3>" + items(sheet.contraindications))
    w("</div><div><h3>Skin, before the session</h3>" + items(sheet.skin_before))
    w("<h3>Skin, after the session</h3>" + items(sheet.skin_after) + "</div></div>")
    fields = [f"Tolerated, ch {c.number} {_e(c.name)}: ______ mA" for c in sheet.channels]
    fields += ["Perceived exertion (RPE)", "Completed? yes / no — why"]
    fields += [""] * (-len(fields) % 4)
    w("<table class='sign'>")
    for i in range(0, len(fields), 4):
        w("<tr>" + "".join(f"<td>{f}</td>" for f in fields[i:i + 4]) + "</tr>")
    w("<tr><td colspan='2' class='notes'>Notes (adverse events, skin reaction, what the patient reported)</td>"
      "<td>Clinician (name)</td><td>Signature</td></tr>")
    w("</table></section>\n")

    checked = "" if sheet.warnings else " · the checker reported no warnings"
    w(f"<div class='foot'>{_e(sheet.footer)}{checked}.</div>\n</body>\n</html>\n")
    return "".join(out)
