"""The setup sheet: one printable, self-contained HTML page for the treating clinician.

    >>> proto = stimscript.load("examples/tka_quadriceps.stim")
    >>> html = build_sheet(proto, session=1, params={"intensity": "45 mA"})

It shows the protocol (title, reference, indication, plan), every channel (sites with the atlas's landmark
description and its source, electrode sizes, pulse shape, frequency, amplitude with its param and range),
the cycles and the session timeline (the plot, inline SVG), what changes week by week, the safety warnings
and a box for notes and a signature. Everything is inline (CSS, SVG): no external resource is fetched, so
the file prints the same anywhere and can be archived with the treatment record.
"""
from __future__ import annotations

import datetime as _dt
import html
import inspect
import io
import re
from fractions import Fraction
from typing import Any, Optional

__all__ = ["build_sheet", "write_sheet"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


# --- small formatting helpers -------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _fmt_num(x: Fraction | float | int, digits: int = 4) -> str:
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    for d in range(1, digits + 1):
        if (x * 10**d).denominator == 1:
            return f"{float(x):.{d}f}"
    return f"{float(x):.{digits}g}"


def _fmt_ma(ua) -> str:
    return f"{_fmt_num(Fraction(ua) / 1000, 3)} mA"


def _fmt_hz(hz) -> str:
    hz = Fraction(hz)
    return f"{_fmt_num(hz / 1000)} kHz" if hz >= 1000 else f"{_fmt_num(hz)} Hz"


def _fmt_dur(us: int) -> str:
    """'45 s', '1 min 30 s', '1 h 05 min', '250 µs', '12.5 ms'."""
    us = int(us)
    if us < 1000:
        return f"{us} µs"
    if us < 1_000_000:
        return f"{_fmt_num(Fraction(us, 1000))} ms"
    s = Fraction(us, 1_000_000)
    if s < 60:
        return f"{_fmt_num(s, 3)} s"
    total = round(s)
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min" + (f" {sec:02d} s" if sec else "")
    return f"{m} min" + (f" {sec:02d} s" if sec else "")


def _clock(us: int) -> str:
    total = round(us / 1_000_000)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt_quantity(q) -> str:
    try:
        from .compiler.evaluate import fmt

        return fmt(q)
    except Exception:
        return str(q)


def _expr(expr) -> str:
    if expr is None:
        return ""
    try:
        from .dsl.formatter import format_expr

        return format_expr(expr)
    except Exception:
        return str(expr)


def _pulse_text(pulse) -> str:
    if pulse is None:
        return ""
    try:
        from .dsl.formatter import format_pulse_inline

        return format_pulse_inline(pulse)
    except Exception:
        return getattr(pulse, "kind", str(pulse))


def _call(fn, **kw):
    """Call ``fn`` with only the keywords its signature accepts."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return fn(**kw)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn(**kw)
    return fn(**{k: v for k, v in kw.items() if k in params})


# --- protocol facts (from the checked protocol, falling back to its AST) ----------------------------------
def _header_fields(proto) -> dict[str, str]:
    fields: dict[str, str] = {}
    ast_header = getattr(getattr(proto, "ast", None), "header", None)
    for f in getattr(ast_header, "fields", ()) or ():
        fields.setdefault(f.key, f.value)
    header = getattr(proto, "header", None)
    if isinstance(header, dict):
        for k, v in header.items():
            if isinstance(v, str):
                fields.setdefault(k, v)
    elif header is not None and header is not ast_header:
        for f in getattr(header, "fields", ()) or ():
            fields.setdefault(f.key, f.value)
    return fields


def _title(proto, schedule) -> str:
    for cand in (getattr(proto, "title", None), getattr(getattr(getattr(proto, "ast", None), "header", None), "title", None),
                 getattr(schedule, "title", None), getattr(schedule, "source_name", None)):
        if cand:
            return str(cand)
    return "stimscript protocol"


def _plan(proto):
    plan = getattr(proto, "plan", None)
    if plan is not None and hasattr(plan, "sessions_of"):
        return plan
    return None


def _plan_text(proto) -> str:
    plan = _plan(proto)
    if plan is not None:
        text = f"{plan.sessions} session{'s' if plan.sessions != 1 else ''} per {plan.per}, {plan.weeks} week{'s' if plan.weeks != 1 else ''}"
        return text + f" ({plan.total_sessions} sessions in all)"
    ast_plan = getattr(getattr(getattr(proto, "ast", None), "header", None), "plan", None)
    if ast_plan is not None:
        return f"{_expr(ast_plan.sessions)} sessions per {ast_plan.per}, {_expr(ast_plan.weeks)} weeks"
    return "single session (no plan given)"


def _atlas(name: str):
    try:
        from .compiler import atlas

        return atlas.lookup(name)
    except Exception:  # pragma: no cover - the atlas ships with the package
        return None


def _channel_ast(proto) -> dict[int, Any]:
    return {ch.number: ch for ch in getattr(getattr(proto, "ast", None), "channels", ()) or ()}


def _body(ch, cls_name: str, key: Optional[str] = None):
    for stmt in getattr(ch, "body", ()):
        if type(stmt).__name__ == cls_name and (key is None or getattr(stmt, "key", None) == key):
            return stmt
    return None


def _electrode_decls(proto) -> dict[str, Any]:
    return {e.name: e for e in getattr(getattr(proto, "ast", None), "electrodes", ()) or ()}


def _electrode_text(decl, area_cm2=None) -> str:
    if decl is None:
        return ""
    if decl.width is not None and decl.height is not None:
        size = f"{_expr(decl.width)} × {_expr(decl.height)}"
    elif decl.area is not None:
        size = _expr(decl.area)
    else:
        size = ""
    if area_cm2 is not None and decl.area is None:
        size += f" = {float(area_cm2):.1f} cm²"
    return size


def _param_decls(proto) -> dict[str, Any]:
    return {p.name: p for p in getattr(getattr(proto, "ast", None), "params", ()) or ()}


def _shape_phases(shape) -> str:
    parts = []
    for d, a in getattr(shape, "phases", ()):
        if a == 0:
            parts.append(f"gap {_fmt_dur(d)}")
        else:
            rel = "+" if a > 0 else "−"
            mag = abs(a)
            parts.append(f"{rel}{'' if mag == 1 else _fmt_num(Fraction(mag).limit_denominator(1000)) + '×'}{_fmt_dur(d)}")
    if len(parts) > 8:
        return f"{len(parts)} phases, {_fmt_dur(sum(d for d, _ in shape.phases))}"
    return " · ".join(parts)


# --- week-by-week progression ------------------------------------------------------------------------------
def _week_state(obj, channel_names: dict[int, str]) -> dict[str, str]:
    """Displayable values of one resolved session (ResolvedSession or Schedule): what a week can change."""
    out: dict[str, str] = {}
    for name, q in sorted((getattr(obj, "params", None) or {}).items()):
        out[f"{name}"] = _fmt_quantity(q)
    for info in sorted(getattr(obj, "channels", ()) or (), key=lambda c: c.number):
        label = channel_names.get(info.number, info.name)
        if info.frequency_hz:
            out[f"{label} frequency"] = _fmt_hz(info.frequency_hz)
        if info.amplitude_ua:
            out[f"{label} amplitude"] = _fmt_ma(info.amplitude_ua)
    by_channel: dict[int, list] = {}
    for tr in getattr(obj, "trains", ()) or ():
        by_channel.setdefault(tr.channel, []).append(tr)
    for number, trains in sorted(by_channel.items()):
        label = channel_names.get(number, f"ch {number}")
        cycles = []
        for tr in trains:
            text = f"{_fmt_dur(tr.on_us)} on / {_fmt_dur(tr.cycle_us - tr.on_us)} off"
            if text not in cycles:
                cycles.append(text)
        out[f"{label} cycle"] = "; ".join(cycles)
        out[f"{label} contractions"] = str(sum(tr.cycles for tr in trains))
    duration = getattr(obj, "duration_us", None)
    if duration is not None:
        out["session length"] = _fmt_dur(duration)
    return out


def _progression(proto, params: dict, channel_names: dict[int, str]) -> tuple[list, list[str], Optional[str]]:
    """([(week label, {key: value}), ...], changing keys, note). Empty list when not computable."""
    plan = _plan(proto)
    if plan is None or plan.weeks < 1:
        return [], [], None
    getter = getattr(proto, "resolve", None)
    how = "resolve"
    if getter is None:
        getter, how = getattr(proto, "compile", None), "compile"
    if getter is None:
        return [], [], "the checker cannot resolve sessions yet"
    rows = []
    for week in range(1, plan.weeks + 1):
        first, last = plan.sessions_of(week)
        try:
            obj = _call(getter, session=first, params=params or None)
        except Exception as exc:  # a week that fails to resolve is shown, not hidden
            rows.append((week, first, last, {"error": _strip_ansi(str(exc)).splitlines()[0]}))
            continue
        rows.append((week, first, last, _week_state(obj, channel_names)))
    keys: list[str] = []
    for _, _, _, state in rows:
        for k in state:
            if k not in keys:
                keys.append(k)
    changing = [k for k in keys if len({state.get(k) for _, _, _, state in rows}) > 1]
    # channels that change in lock-step share one column: 'quad_l, quad_r amplitude'
    merged: list[str] = []
    column: dict[str, list[str]] = {}
    for k in changing:
        series = tuple(state.get(k) for _, _, _, state in rows)
        suffix = k.rsplit(" ", 1)[-1] if any(k.startswith(n + " ") for n in channel_names.values()) else None
        group = next((m for m in merged if suffix and m.rsplit(" ", 1)[-1] == suffix
                      and tuple(state.get(column[m][0]) for _, _, _, state in rows) == series), None)
        if group is None:
            merged.append(k)
            column[k] = [k]
        else:
            column[group].append(k)
    final = []
    for m in merged:
        keys_m = column[m]
        if len(keys_m) == 1:
            final.append(m)
            continue
        label = ", ".join(x.rsplit(" ", 1)[0] for x in keys_m) + " " + m.rsplit(" ", 1)[-1]
        for _, _, _, state in rows:
            state[label] = state.get(m)
        final.append(label)
    changing = final
    return rows, changing, None if how == "resolve" else "values from compiling the first session of each week"


def _progression_source(proto) -> list[str]:
    lines = []
    for prog in getattr(getattr(proto, "ast", None), "progressions", ()) or ():
        for block in prog.weeks:
            if type(block).__name__ == "Week":
                head = f"week {block.first}" if block.first == block.last else \
                    f"weeks {block.first}–end of plan" if block.last is None else f"weeks {block.first}–{block.last}"
            else:
                head = "every week (from week 2)"
            stmts = []
            for a in block.assignments:
                text = f"{'.'.join(a.target.path)} {a.op} {_expr(a.value)}"
                if a.bound is not None:
                    text += f" {a.bound_kind} to {_expr(a.bound)}"
                stmts.append(text)
            lines.append(f"{head}: " + "; ".join(stmts))
    return lines


# --- the plot ------------------------------------------------------------------------------------------
def _inline_svg(schedule) -> str:
    from .plotting import plot_schedule

    fig = plot_schedule(schedule, title=False, width=9.0)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", facecolor="white", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    # scale with the page: keep the viewBox, drop the fixed size
    svg = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r'\1 class="plot" role="img" '
                 r'aria-label="amplitude envelope per channel over the session"', svg, count=1)
    return svg


# --- the page ------------------------------------------------------------------------------------------
_CSS = """
:root { --ink:#1d2733; --mute:#5b6773; --line:#c9d1da; --band:#eef3f8; --warn:#8a4b00; --warnbg:#fff4e0; }
* { box-sizing: border-box; }
html { font: 10.5pt/1.38 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; color: var(--ink); }
body { margin: 0 auto; max-width: 980px; padding: 18px 22px 40px; background: #fff; }
h1 { font-size: 19pt; margin: 0 0 2px; line-height: 1.2; }
h2 { font-size: 12.5pt; margin: 20px 0 6px; padding-bottom: 3px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 11pt; margin: 12px 0 4px; }
p { margin: 4px 0; }
.sub { color: var(--mute); margin-bottom: 10px; }
.meta { display: grid; grid-template-columns: 9.5em 1fr; gap: 2px 12px; margin: 8px 0 4px; }
.meta dt { font-weight: 600; color: var(--mute); }
.meta dd { margin: 0; }
.badges { margin: 8px 0 0; }
.badge { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 1px 7px; margin: 0 4px 4px 0;
         background: var(--band); font-size: 9.5pt; }
table { width: 100%; border-collapse: collapse; margin: 4px 0 8px; font-size: 9.5pt; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.channel { border: 1px solid var(--line); border-left: 5px solid var(--c, #1f77b4); border-radius: 4px; padding: 8px 10px 6px;
           margin: 0 0 10px; break-inside: avoid; page-break-inside: avoid; }
.channel h3 { margin: 0 0 6px; }
.channel .grid { display: grid; grid-template-columns: 8.5em 1fr; gap: 3px 10px; }
.channel .grid > div:nth-child(odd) { color: var(--mute); font-weight: 600; }
.landmark { background: #fafbfc; border: 1px dashed var(--line); padding: 5px 7px; margin: 2px 0; }
.source { color: var(--mute); font-size: 8.8pt; margin-top: 3px; }
.plotbox { border: 1px solid var(--line); padding: 4px; break-inside: avoid; page-break-inside: avoid; }
svg.plot { width: 100%; height: auto; display: block; }
.changed { background: #fff1c9; font-weight: 600; }
.warnings li { background: var(--warnbg); border-left: 4px solid #d08a00; padding: 5px 8px; margin: 0 0 5px; list-style: none; }
.warnings ul { padding: 0; margin: 4px 0; }
.warnings code { font-size: 9pt; }
.ok { color: #2c6e2f; }
.code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; }
.sign { border: 2px solid var(--ink); border-radius: 4px; padding: 10px 12px; break-inside: avoid; page-break-inside: avoid; }
.sign .row { display: grid; grid-template-columns: 1fr 1fr; gap: 10px 24px; margin-bottom: 10px; }
.field { border-bottom: 1px solid var(--ink); min-height: 2.1em; padding-top: 2px; font-size: 9pt; color: var(--mute); }
.lines { margin-top: 8px; }
.lines div { border-bottom: 1px solid var(--line); height: 1.9em; }
.foot { color: var(--mute); font-size: 8.5pt; margin-top: 18px; border-top: 1px solid var(--line); padding-top: 5px; }
.caution { border: 1px solid #d08a00; background: var(--warnbg); padding: 6px 9px; margin: 10px 0; font-size: 9.5pt; }
@page { size: A4; margin: 13mm 12mm 14mm; }
@media print {
  html { font-size: 9.5pt; }
  body { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, tr { break-inside: avoid; page-break-inside: avoid; }
  .plotbox, .sign, .channel { break-inside: avoid; }
  .noprint { display: none; }
  a { color: inherit; text-decoration: none; }
}
"""

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _warnings(proto, schedule) -> list:
    seen, out = set(), []
    for d in list(getattr(proto, "warnings", ()) or ()) + list(getattr(schedule, "warnings", ()) or ()):
        key = (getattr(d, "code", ""), getattr(d, "message", str(d)), str(getattr(d, "span", "")))
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return out


def _warning_html(d) -> str:
    code = getattr(d, "code", "")
    message = _strip_ansi(getattr(d, "message", None) or str(d))
    span = getattr(d, "span", None)
    where = ""
    if span is not None:
        line = getattr(span, "line", None)
        where = f"line {line}" if line else str(span)
        try:
            src = span.source.line(span.line).strip()
            where += f": <span class='code'>{_e(src)}</span>"
        except Exception:
            pass
    hint = getattr(d, "hint", None)
    severity = getattr(d, "severity", "warning")
    parts = [f"<strong>{_e(severity)}{'[' + _e(code) + ']' if code else ''}</strong> {_e(message)}"]
    if where:
        parts.append(f"<div class='source'>{where}</div>")
    if hint:
        parts.append(f"<div class='source'>hint: {_e(_strip_ansi(hint))}</div>")
    return "<li>" + "".join(parts) + "</li>"


def build_sheet(proto, session: int = 1, params: Optional[dict] = None, schedule=None,
                generated: Optional[str] = None) -> str:
    """The setup sheet of ``session`` of a CheckedProtocol as one self-contained HTML document."""
    params = dict(params or {})
    if schedule is None:
        schedule = proto.compile(session=session, params=params)
    fields = _header_fields(proto)
    title = _title(proto, schedule)
    ch_ast = _channel_ast(proto)
    decls = _electrode_decls(proto)
    pdecls = _param_decls(proto)
    infos = {c.number: c for c in getattr(schedule, "channels", ()) or ()}
    numbers = sorted(set(infos) | set(ch_ast))
    names = {n: (infos[n].name if n in infos else ch_ast[n].name) for n in numbers}
    used_params = dict(getattr(schedule, "params", None) or {})

    # electrode areas from the resolved session, when the checker gives them
    areas: dict[str, Fraction] = {}
    resolved = None
    if hasattr(proto, "resolve"):
        try:
            resolved = _call(proto.resolve, session=session, params=params or None)
        except Exception:
            resolved = None
    for use in getattr(resolved, "uses", ()) or ():
        for el in getattr(use, "electrodes", ()) or ():
            areas[el.name] = el.area_cm2

    try:
        counts = schedule.counts()
    except Exception:
        counts = {}

    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>\n")
    w(f"<title>{_e(title)} — setup sheet, session {_e(getattr(schedule, 'session', session))}</title>\n")
    w(f"<style>{_CSS}</style>\n</head>\n<body>\n")

    # --- protocol ---
    week = getattr(schedule, "week", 1)
    plan = _plan(proto)
    of = f" of {plan.total_sessions}" if plan is not None else ""
    w(f"<header><h1>{_e(title)}</h1>\n")
    w(f"<div class='sub'>Setup sheet · session {_e(getattr(schedule, 'session', session))}{of} · week {_e(week)}"
      f" · session length {_e(_fmt_dur(schedule.duration_us))}</div>\n")
    w("<dl class='meta'>")
    rows = [("Reference", fields.get("reference")), ("Indication", fields.get("indication")),
            ("Plan", _plan_text(proto))]
    for key in ("population", "description", "author", "version", "notes"):
        if fields.get(key):
            rows.append((key.capitalize(), fields[key]))
    src = getattr(schedule, "source_name", "") or getattr(proto, "name", "") or getattr(proto, "path", "")
    if src:
        rows.append(("Protocol file", src))
    sha = getattr(schedule, "sha256", "")
    if sha:
        rows.append(("SHA-256", sha[:16] + "…"))
    for k, v in rows:
        w(f"<dt>{_e(k)}</dt><dd>{_e(v) if v else '<span class=source>not given</span>'}</dd>")
    w("</dl>\n")
    badges = [f"{len(numbers)} channel{'s' if len(numbers) != 1 else ''}",
              f"session length {_fmt_dur(schedule.duration_us)}"]
    if counts:
        badges.append(f"{sum(counts.values()):,} pulses")
    if used_params:
        badges += [f"{k} = {_fmt_quantity(v)}" for k, v in used_params.items()]
    w("<div class='badges'>" + "".join(f"<span class='badge'>{_e(b)}</span>" for b in badges) + "</div>\n")
    w("</header>\n")

    # --- parameters ---
    if pdecls or used_params:
        w("<section><h2>Parameters</h2>\n<table><tr><th>param</th><th>this session</th><th>default</th>"
          "<th>allowed range</th><th>meaning</th></tr>\n")
        for name in list(pdecls) + [n for n in used_params if n not in pdecls]:
            decl = pdecls.get(name)
            value = _fmt_quantity(used_params[name]) if name in used_params else _expr(getattr(decl, "default", None))
            rng = ""
            if decl is not None and (decl.low is not None or decl.high is not None):
                rng = f"{_expr(decl.low)} … {_expr(decl.high)}"
            override = name in params
            w(f"<tr><td class='code'>{_e(name)}</td><td class='nowrap'><strong>{_e(value)}</strong>"
              f"{' <span class=source>(set for this session)</span>' if override else ''}</td>"
              f"<td class='nowrap'>{_e(_expr(getattr(decl, 'default', None)))}</td><td class='nowrap'>{_e(rng)}</td>"
              f"<td>{_e(getattr(decl, 'description', '') or '')}</td></tr>\n")
        w("</table></section>\n")

    # --- channels ---
    w("<section><h2>Channels and electrode placement</h2>\n")
    shown_sites: dict[str, int] = {}
    for i, number in enumerate(numbers):
        info, ch = infos.get(number), ch_ast.get(number)
        color = _COLORS[i % len(_COLORS)]
        site_stmt = _body(ch, "Site") if ch is not None else None
        site = getattr(info, "site", "") or (site_stmt.text if site_stmt is not None else "")
        side = getattr(info, "side", "") or (getattr(site_stmt, "side", "") or "")
        entry = _atlas(site) if site else None
        pair = _body(ch, "ElectrodePair") if ch is not None else None
        el_names = (pair.first.name, pair.second.name) if pair is not None else tuple(
            n for n in getattr(info, "electrodes", ()) if n)
        pulse = _body(ch, "Pulse") if ch is not None else None
        freq = _body(ch, "Setting", "frequency") if ch is not None else None
        amp = _body(ch, "Setting", "amplitude") if ch is not None else None

        w(f"<div class='channel' style='--c:{color}'>")
        w(f"<h3>Channel {number} · {_e(names.get(number, ''))}</h3><div class='grid'>")
        # site
        custom = getattr(info, "site_custom", False)
        site_text = (entry.muscle if entry is not None else site if custom
                     else site.replace("_", " "))
        if side:
            site_text += f", {side} side"
        w(f"<div>Site</div><div><strong>{_e(site_text)}</strong>"
          f"{' <span class=source>(' + _e(site) + (', ' + _e(entry.region) if entry is not None else '') + ')</span>' if site and not custom else ''}")
        if entry is not None and entry.name in shown_sites:
            w(f"<div class='source'>Landmarks and source: as for channel {shown_sites[entry.name]} above"
              f"{' (mirror them on the ' + _e(side) + ' side)' if side else ''}.</div>")
        elif entry is not None:
            shown_sites[entry.name] = number
            w(f"<div class='landmark'>{_e(entry.landmark)}</div>"
              f"<div class='source'>Source: {_e(entry.source)}</div>")
        elif site and getattr(info, "site_custom", False):
            w("<div class='source'>custom placement, as written in the protocol: not checked against the "
              "motor-point atlas</div>")
        elif site:
            w("<div class='source'>not in the motor-point atlas</div>")
        w("</div>")
        # electrodes
        if el_names:
            parts = []
            for k, en in enumerate(el_names):
                role = "cathode (−) of the leading phase" if k == 0 else "anode (+) of the leading phase"
                size = _electrode_text(decls.get(en), areas.get(en))
                parts.append(f"<span class='code'>{_e(en)}</span> {_e(size)} <span class='source'>({role})</span>")
            typical = f"<div class='source'>Atlas suggests: {_e(entry.typical_electrode)}</div>" if entry is not None else ""
            w(f"<div>Electrodes</div><div>{'<br>'.join(parts)}{typical}</div>")
        # pulse
        shape = None
        if info is not None and getattr(schedule, "shapes", None) and info.shape < len(schedule.shapes):
            shape = schedule.shapes[info.shape]
        pulse_text = _pulse_text(pulse)
        if shape is not None:
            w(f"<div>Pulse</div><div><strong>{_e(shape.kind)}: {_e(_shape_phases(shape))}</strong>"
              f"{' <span class=source>(as written: ' + _e(pulse_text) + ')</span>' if pulse_text else ''}</div>")
        else:
            w(f"<div>Pulse</div><div>{_e(pulse_text) or '&nbsp;'}</div>")
        # frequency
        ftext = _fmt_hz(info.frequency_hz) if info is not None and info.frequency_hz else _expr(getattr(freq, "value", None))
        fexpr = _expr(getattr(freq, "value", None))
        w(f"<div>Frequency</div><div><strong>{_e(ftext)}</strong>"
          f"{' <span class=source>(' + _e(fexpr) + ')</span>' if fexpr and fexpr != ftext else ''}</div>")
        # amplitude
        aexpr = _expr(getattr(amp, "value", None))
        atext = _fmt_ma(info.amplitude_ua) if info is not None and info.amplitude_ua else aexpr
        pname = getattr(info, "param", None)
        if not pname and amp is not None and type(amp.value).__name__ in ("Name", "PercentOf"):
            pname = amp.value.name if type(amp.value).__name__ == "Name" else amp.value.name.name
        extra = []
        if aexpr and aexpr != atext:
            extra.append(f"amplitude {aexpr}")
        if pname:
            decl = pdecls.get(pname)
            rng = f", range {_expr(decl.low)} … {_expr(decl.high)}" if decl is not None and decl.low is not None else ""
            extra.append(f"param {pname}{rng}")
        w(f"<div>Amplitude</div><div><strong>{_e(atext)}</strong> at full output"
          f"{' <span class=source>(' + _e('; '.join(extra)) + ')</span>' if extra else ''}</div>")
        if counts.get(number) is not None:
            w(f"<div>Pulses</div><div>{counts[number]:,} this session</div>")
        w("</div></div>\n")
    w("</section>\n")

    # --- cycles and the session ---
    w("<section><h2>Cycle and session timeline</h2>\n")
    # the cycles as this session runs them (after the week's progression), from the lowered trains
    seg_of = {}
    for k, seg in enumerate(getattr(schedule, "segments", ()) or (), 1):
        seg_of[(seg.start_us, seg.end_us)] = k
    lines: dict[tuple, list] = {}
    for tr in getattr(schedule, "trains", ()) or ():
        hold = tr.on_us - tr.ramp_up_us - tr.ramp_down_us
        block = next((k for (a, b), k in seg_of.items() if a <= tr.start_us < b), "")
        key = (block, tr.ramp_up_us, hold, tr.ramp_down_us, tr.cycle_us - tr.on_us, tr.cycles,
               Fraction(tr.period_den * 1_000_000, tr.period_num))
        chans = lines.setdefault(key, [])
        if names.get(tr.channel, str(tr.channel)) not in chans:
            chans.append(names.get(tr.channel, str(tr.channel)))
    if lines:
        w(f"<h3>Cycles in this session (week {_e(week)})</h3>")
        w("<table><tr><th>block</th><th>channels</th><th class='num'>ramp up</th><th class='num'>hold</th>"
          "<th class='num'>ramp down</th><th class='num'>rest</th><th class='num'>cycles</th>"
          "<th class='num'>frequency</th></tr>\n")
        for (block, up, hold, down, rest, n_cycles, hz), chans in lines.items():
            w(f"<tr><td class='num'>{_e(block)}</td><td>{_e(', '.join(chans))}</td>"
              + "".join(f"<td class='num'>{_e(_fmt_dur(v) if v else '0 s')}</td>" for v in (up, hold, down, rest))
              + f"<td class='num'>{n_cycles}</td><td class='num'>{_e(_fmt_hz(hz))}</td></tr>\n")
        w("</table>\n")
    segments = getattr(schedule, "segments", ()) or ()
    if segments:
        w("<h3>Session timeline</h3>")
        w("<table><tr><th>#</th><th>block</th><th class='num'>starts</th><th class='num'>ends</th>"
          "<th class='num'>length</th></tr>\n")
        for k, seg in enumerate(segments, 1):
            w(f"<tr><td class='num'>{k}</td><td>{_e(seg.label)}{' <span class=source>(pause)</span>' if seg.kind == 'pause' and 'pause' not in seg.label else ''}</td>"
              f"<td class='num'>{_clock(seg.start_us)}</td><td class='num'>{_clock(seg.end_us)}</td>"
              f"<td class='num'>{_e(_fmt_dur(seg.end_us - seg.start_us))}</td></tr>\n")
        w("</table>\n")
    w("<div class='plotbox'>" + _inline_svg(schedule) + "</div>\n")
    w("<p class='source'>Each lane shows the largest pulse amplitude over time (mA) for one channel; "
      "the lower panel shows one pulse of each shape at the channel's full amplitude.</p>\n")
    w("</section>\n")

    # --- progression ---
    w("<section><h2>Progression week by week</h2>\n")
    prog_rows, changing, note = _progression(proto, params, names)
    source_lines = _progression_source(proto)
    if prog_rows and changing:
        w("<table><tr><th>week</th><th>sessions</th>" + "".join(f"<th>{_e(k)}</th>" for k in changing) + "</tr>\n")
        prev: dict = {}
        for week_no, first, last, state in prog_rows:
            here = " style='outline:2px solid var(--ink)'" if week_no == week else ""
            cells = []
            for k in changing:
                v = state.get(k, "—")
                cls = " class='changed'" if prev and prev.get(k) != v else ""
                cells.append(f"<td{cls}>{_e(v)}</td>")
            w(f"<tr{here}><td class='num'>{week_no}</td><td class='nowrap'>{first}–{last}</td>{''.join(cells)}</tr>\n")
            prev = state
        w("</table>\n<p class='source'>Highlighted: a value that changes from the week before. "
          f"The framed row is this session's week.{' ' + _e(note) + '.' if note else ''}</p>\n")
    elif prog_rows:
        w("<p class='ok'>Nothing changes from week to week: every session of the plan is the same.</p>\n")
    elif note:
        w(f"<p class='source'>{_e(note)}.</p>\n")
    if source_lines:
        w("<h3>As written in the protocol</h3><ul>" + "".join(
            f"<li class='code'>{_e(s)}</li>" for s in source_lines) + "</ul>\n")
    elif not prog_rows:
        w("<p>No progression: every session is the same.</p>\n")
    w("</section>\n")

    # --- safety ---
    w("<section class='warnings'><h2>Safety warnings</h2>\n")
    warns = _warnings(proto, schedule)
    if warns:
        w("<ul>" + "".join(_warning_html(d) for d in warns) + "</ul>\n")
    else:
        w("<p class='ok'>The checker reported no warnings for this protocol.</p>\n")
    w("<div class='caution'>Check the skin under each electrode before and after the session. Start low and "
      "raise the intensity gradually to the patient's tolerance; stop at once on pain, skin reaction, or an "
      "unexpected response. This sheet does not replace the stimulator's instructions for use.</div>\n")
    w("</section>\n")

    # --- notes & signature ---
    w("<section><h2>Notes and signature</h2><div class='sign'>\n<div class='row'>"
      "<div class='field'>Patient / ID</div><div class='field'>Date and time</div></div>\n<div class='row'>"
      "<div class='field'>Treated side / positioning</div><div class='field'>Skin check before / after</div></div>\n"
      "<div class='row'>" + "".join(
          f"<div class='field'>Tolerated intensity, channel {n} ({_e(names.get(n, ''))}): ______ mA</div>"
          for n in numbers) + "</div>\n"
      "<div class='row'><div class='field'>Perceived exertion (RPE)</div><div class='field'>Session completed? "
      "yes / no — reason</div></div>\n"
      "<div class='source'>Notes</div><div class='lines'><div></div><div></div><div></div><div></div></div>\n"
      "<div class='row' style='margin-top:14px'><div class='field'>Clinician (name)</div>"
      "<div class='field'>Signature</div></div>\n</div></section>\n")

    stamp = generated or _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    w(f"<div class='foot'>Generated by stimscript on {_e(stamp)} from {_e(src or title)}"
      f"{' (SHA-256 ' + _e(sha[:12]) + '…)' if sha else ''}. Session {_e(getattr(schedule, 'session', session))}, "
      f"week {_e(week)}.</div>\n")
    w("</body>\n</html>\n")
    return "".join(out)


def write_sheet(proto, path, session: int = 1, params: Optional[dict] = None) -> str:
    """Build the sheet and write it (UTF-8); returns the path."""
    text = build_sheet(proto, session=session, params=params)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return str(path)
