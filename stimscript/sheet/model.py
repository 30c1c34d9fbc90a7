"""What the setup sheet says, as plain values: built from the protocol's typed read API
(``CheckedProtocol.describe`` and ``weeks``), never from its syntax tree, so the page (``html.py``) only lays
text out and the numbers on it are the ones the session runs with.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Optional

from ..formatting import duration, duration_text, hz, local_time, ma, pulse_time
from .body import marker_for

#: The colour of each channel, everywhere on the sheet (the lane colours of ``stimscript plot``).
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

#: Checked and initialled by the clinician before the first pulse (the contraindications and precautions of
#: electrical stimulation in the clinical guidance, e.g. Houghton PE et al., Electrophysical agents:
#: contraindications and precautions, Physiother Can 2010;62(5):1-80).
CONTRAINDICATIONS = (
    "No implanted electronic device (pacemaker, defibrillator, stimulator, pump)",
    "Not over the front of the neck, the eyes, the head or across the chest",
    "Not over a malignancy, a deep vein thrombosis or thrombophlebitis",
    "Not over the abdomen, pelvis or low back in pregnancy",
    "Not over bleeding, infected or recently irradiated tissue",
    "Epilepsy, heart disease, poor sensation or communication: considered",
)
SKIN_BEFORE = (
    "Skin intact under each electrode: no wound, rash, burn or irritation",
    "Sensation tested (sharp / blunt) under each site, and felt",
    "Skin clean and dry; electrodes intact and adhering fully",
)
SKIN_AFTER = (
    "Skin under each electrode inspected after removal",
    "Only redness that fades within the hour (a blister, burn or broken skin: adverse event)",
)


@dataclass(frozen=True)
class ParamRow:
    name: str
    value: str
    default: str
    range: str
    description: str
    overridden: bool


@dataclass(frozen=True)
class ChannelRow:
    number: int
    name: str
    color: str
    site: str                 # 'vastus medialis, right side'
    site_note: str            # 'atlas: vastus_medialis, thigh' / 'custom placement, not in the atlas'
    cathode: str              # 'prox 7.6 cm × 12.7 cm'
    anode: str
    pulse: str                # 'biphasic 250 µs, gap 50 µs'
    frequency: str
    amplitude: str            # '45 mA'
    amplitude_note: str       # 'intensity, range 10 mA … 100 mA'
    pulses: int
    marker: Optional[tuple]   # (view, x, y) on the body outline, None for a custom site


@dataclass(frozen=True)
class Landmark:
    site: str
    channels: str             # '1, 2'
    landmark: str
    typical_electrode: str
    source: str


@dataclass(frozen=True)
class BlockRow:
    number: int
    label: str
    kind: str
    start: str
    length: str
    what: str                 # 'quad: contraction 3 s ↗ 12 s ↘ 0 s, rest 45 s · 50 Hz · 45 mA · 15 contractions'
    start_us: int
    end_us: int
    channels: tuple           # channel numbers active in the block


@dataclass(frozen=True)
class WeekRows:
    targets: tuple[str, ...]
    rows: tuple[tuple[int, str, tuple[str, ...], tuple[bool, ...]], ...]   # week, sessions, values, changed
    this_week: int


@dataclass(frozen=True)
class Warning:
    code: str
    message: str
    where: str
    hint: str


@dataclass(frozen=True)
class Sheet:
    title: str
    session: int
    sessions: Optional[int]
    week: int
    length: str
    patient: str
    plan: str                                # '3 sessions per week, 6 weeks' / 'a single session'
    fields: tuple[tuple[str, str], ...]      # (label, text): reference, indication, ...
    params: tuple[ParamRow, ...]
    channels: tuple[ChannelRow, ...]
    landmarks: tuple[Landmark, ...]
    blocks: tuple[BlockRow, ...]
    duration_us: int
    weeks: Optional[WeekRows]
    progression: tuple[str, ...]
    warnings: tuple[Warning, ...]
    contraindications: tuple[str, ...]
    skin_before: tuple[str, ...]
    skin_after: tuple[str, ...]
    footer: str


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _plain(text: str) -> str:
    return _ANSI.sub("", text or "")


def pulse_text(shape) -> str:
    """'biphasic 250 µs, gap 50 µs' / 'burst 10 × 200 µs' from the delivered phases."""
    phases = tuple(shape.phases)
    kind = shape.kind
    width = phases[0][0] if phases else 0
    gaps = [d for d, a in phases if a == 0]
    if kind in ("biphasic", "monophasic"):
        return f"{kind} {pulse_time(width)}" + (f", gap {pulse_time(gaps[0])}" if gaps else "")
    if kind == "asymmetric":
        second = next((d for d, a in phases[1:] if a != 0), 0)
        return f"asymmetric {pulse_time(width)} / {pulse_time(second)}" + (f", gap {pulse_time(gaps[0])}" if gaps else "")
    if kind == "burst":
        return f"burst of {len([1 for _, a in phases if a > 0])} × {pulse_time(width)}, {pulse_time(shape.duration_us)}"
    return f"{kind}: {len(phases)} phases, {pulse_time(shape.duration_us)}"


def _step(us: int) -> str:
    return duration_text(us) if us else "0 s"


def _cycle_text(c) -> str:
    if c.continuous:
        return "continuous"
    return (f"{c.name} {_step(c.ramp_up_us)} ↗ {_step(c.hold_us)} ↘ {_step(c.ramp_down_us)}, "
            f"rest {_step(c.rest_us)}")


def build(proto, session: int = 1, params: Optional[dict] = None, patient: Optional[str] = None,
          generated: Optional[str] = None, warnings=()) -> Sheet:
    """The sheet of ``session`` of a CheckedProtocol (``params``: ``--set`` overrides)."""
    from ..compiler.evaluate import fmt

    params = dict(params or {})
    d = proto.describe(session=session, params=params)
    used = proto.parse_params(params)
    plan = proto.plan

    fields: list[tuple[str, str]] = []
    for key in ("reference", "indication", "population", "description"):
        if proto.header.get(key):
            fields.append((key.capitalize(), proto.header[key]))
    if proto.header.get("notes"):
        fields.append(("Notes", proto.header["notes"]))

    plan_text = (f"{plan.sessions} session{'s' if plan.sessions != 1 else ''} per {plan.per}, "
                 f"{plan.weeks} week{'s' if plan.weeks != 1 else ''}" if plan is not None
                 else "a single session (no plan)")

    prows = []
    for name, info in proto.params.items():
        value = used.get(name, info.default)
        rng = f"{fmt(info.low)} … {fmt(info.high)}" if info.range is not None else ""
        prows.append(ParamRow(name, fmt(value), fmt(info.default), rng, info.description or "", name in used))

    channels: list[ChannelRow] = []
    landmarks: dict[str, list] = {}
    for i, ch in enumerate(d.channels):
        color = COLORS[i % len(COLORS)]
        site, note, marker = "not given", "", None
        if ch.site is not None:
            site = ch.site.text
            if ch.site.custom:
                note = "custom placement, as written (not in the motor-point atlas)"
            elif ch.site.atlas is not None:
                entry = ch.site.atlas
                note = f"atlas: {entry.name}, {entry.region}"
                marker = marker_for(entry.name, ch.site.side)
                lm = landmarks.setdefault(entry.name, [entry, []])
                lm[1].append(str(ch.number))
            else:
                note = "not in the motor-point atlas"
        amp_note = []
        if ch.amplitude_text and ch.amplitude_text.replace(" ", "") != ma(round(ch.amplitude_ua)).replace(" ", ""):
            amp_note.append(f"amplitude {ch.amplitude_text}")
        if ch.param and ch.param in proto.params and proto.params[ch.param].range is not None:
            p = proto.params[ch.param]
            amp_note.append(f"{ch.param} range {fmt(p.low)} … {fmt(p.high)}")
        channels.append(ChannelRow(
            ch.number, ch.name, color, site, note,
            f"{ch.cathode.name} {ch.cathode.size_text}" if ch.cathode else "",
            f"{ch.anode.name} {ch.anode.size_text}" if ch.anode else "",
            pulse_text(ch.pulse), hz(ch.frequency_hz), ma(round(ch.amplitude_ua)),
            "; ".join(amp_note), ch.pulses, marker))

    names = {c.number: c.name for c in d.channels}
    blocks = []
    for b in d.blocks:
        parts = []
        groups: dict = {}
        for bc in b.channels:   # channels that run the same thing share one line
            same = (_cycle_text(bc.cycle), bc.frequency_hz, bc.amplitude_ua, bc.contractions)
            groups.setdefault(same, []).append(names.get(bc.number, str(bc.number)))
        for (cyc, f, a, n), chans in groups.items():
            count = "" if cyc == "continuous" else f" · {n} contraction{'s' if n != 1 else ''}"
            parts.append(f"{', '.join(chans)}: {cyc} · {hz(f)} · {ma(round(a))}{count}")
        blocks.append(BlockRow(b.number, b.label, b.kind, duration(b.start_us), duration_text(b.duration_us),
                               "; ".join(parts) if parts else "no output", b.start_us, b.end_us,
                               tuple(bc.number for bc in b.channels)))

    weeks = None
    if plan is not None and plan.weeks > 1 and d.weeks.targets:
        rows, prev = [], None
        for row in d.weeks.rows:
            values = tuple(fmt(row.values[t]) if t in row.values else "–" for t in d.weeks.targets)
            changed = tuple(v != p for v, p in zip(values, prev)) if prev is not None else (False,) * len(values)
            sessions = str(row.first_session) if row.first_session == row.last_session else \
                f"{row.first_session}–{row.last_session}"
            rows.append((row.week, sessions, values, changed))
            prev = values
        weeks = WeekRows(d.weeks.targets, tuple(rows), d.week)

    warns, seen = [], set()
    for w in tuple(proto.warnings) + tuple(warnings):
        seen_key = (w.code, w.message, w.span.line if w.span else None)
        if seen_key in seen:
            continue
        seen.add(seen_key)
        where = ""
        if w.span is not None:
            where = f"line {w.span.line}: {w.span.source.line(w.span.line).strip()}"
        warns.append(Warning(w.code, _plain(w.message), where, _plain(w.hint or "")))

    stamp = generated or local_time(_dt.datetime.now(_dt.timezone.utc).isoformat())
    footer = (f"stimscript, {stamp} · “{proto.title or 'untitled'}”"
              + (f" version {proto.header['version']}" if proto.header.get("version") else "")
              + (f" by {proto.header['author']}" if proto.header.get("author") else "")
              + f" · SHA-256 {proto.sha256[:12]}… · session {d.session}, week {d.week}")
    return Sheet(
        title=proto.title or "Untitled protocol", session=d.session,
        sessions=plan.total_sessions if plan is not None else None, week=d.week,
        length=duration_text(d.duration_us), patient=patient or "", plan=plan_text, fields=tuple(fields), params=tuple(prows),
        channels=tuple(channels),
        landmarks=tuple(Landmark(e.muscle, ", ".join(chs), e.landmark, e.typical_electrode, e.source)
                        for e, chs in landmarks.values()),
        blocks=tuple(blocks), duration_us=d.duration_us, weeks=weeks, progression=d.progression,
        warnings=tuple(warns), contraindications=CONTRAINDICATIONS, skin_before=SKIN_BEFORE, skin_after=SKIN_AFTER,
        footer=footer)


__all__ = ["Sheet", "build", "COLORS", "CONTRAINDICATIONS", "SKIN_BEFORE", "SKIN_AFTER", "pulse_text"]
